//! Certificates for developing a terminal against the reference service over TLS: a service CA
//! with a server certificate for loopback names, and a terminal CA with one client certificate
//! per terminal id (its common name, protocol §3).
//!
//! Never for production: every key is made on the spot and written out in the clear, and the
//! CAs exist nowhere else. A vendor's real service uses certificates from its own PKI.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use mynacard_registry::dev_pki::DevPki;
//! let pki = DevPki::generate(&["127.0.0.1", "localhost"], &["atm-0001"])?;
//! let settings = pki.tls_settings(true);
//! assert!(settings.require_client_certificate);
//! assert!(pki.terminal("atm-0001").is_some());
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use mynacard_protocol::messages::is_valid_identifier;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use zeroize::Zeroizing;

use crate::tls::TlsSettings;

/// Why the certificates could not be made or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevPkiError {
    /// A key or certificate could not be made (e.g. a host name that is not a DNS name or IP).
    #[error("cannot make the {what}")]
    Generate {
        /// Which certificate.
        what: String,
        /// The generator's error.
        #[source]
        source: rcgen::Error,
    },
    /// A terminal id that is not a protocol identifier, or would name a hidden file.
    #[error(
        "terminal id {0:?} must be 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    TerminalId(String),
    /// A file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A terminal's client certificate and its private key.
pub struct TerminalIdentity {
    /// The terminal id: the certificate's common name.
    pub terminal_id: String,
    /// The certificate, then the PKCS#8 private key (PEM): what a client presents.
    pub pem: Zeroizing<String>,
}

impl core::fmt::Debug for TerminalIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TerminalIdentity")
            .field("terminal_id", &self.terminal_id)
            .finish_non_exhaustive()
    }
}

/// A development PKI: what the service and its terminals need for HTTPS and mutual TLS.
pub struct DevPki {
    /// The CA that issued the service's certificate (PEM): what terminals trust.
    pub service_ca_pem: String,
    /// The service's certificate (PEM).
    pub server_cert_pem: String,
    /// The service's private key (PKCS#8 PEM).
    pub server_key_pem: Zeroizing<String>,
    /// The CA the terminals' certificates chain to (PEM): what the service trusts.
    pub terminal_ca_pem: String,
    /// One identity per terminal id, in the order asked for.
    pub terminals: Vec<TerminalIdentity>,
}

impl core::fmt::Debug for DevPki {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DevPki")
            .field("terminals", &self.terminals)
            .finish_non_exhaustive()
    }
}

impl DevPki {
    /// Makes both CAs, a server certificate for `hosts` (DNS names or IP addresses) and a client
    /// certificate for each of `terminal_ids`. ECDSA P-256 keys.
    ///
    /// # Errors
    /// [`DevPkiError::Generate`] for a host that is not a name or address,
    /// [`DevPkiError::TerminalId`] for a terminal id that is not a plain name.
    pub fn generate(hosts: &[&str], terminal_ids: &[&str]) -> Result<DevPki, DevPkiError> {
        // A protocol identifier (the service takes no other commonName), and no hidden file.
        if let Some(id) = terminal_ids
            .iter()
            .find(|id| !is_valid_identifier(id) || id.starts_with('.'))
        {
            return Err(DevPkiError::TerminalId((*id).to_owned()));
        }
        let service_ca = ca("mynacard development service CA")?;
        let hosts: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut params = CertificateParams::new(hosts).map_err(generate("server certificate"))?;
        params.distinguished_name = name("mynacard development registry");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().map_err(generate("server key"))?;
        let server = params
            .signed_by(&server_key, &*service_ca)
            .map_err(generate("server certificate"))?;
        let terminal_ca = ca("mynacard development terminal CA")?;
        let terminals = terminal_ids
            .iter()
            .map(|id| terminal(&terminal_ca, id))
            .collect::<Result<_, _>>()?;
        Ok(DevPki {
            service_ca_pem: service_ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: Zeroizing::new(server_key.serialize_pem()),
            terminal_ca_pem: terminal_ca.pem(),
            terminals,
        })
    }

    /// The identity of `terminal_id`, if it was made.
    pub fn terminal(&self, terminal_id: &str) -> Option<&TerminalIdentity> {
        self.terminals.iter().find(|t| t.terminal_id == terminal_id)
    }

    /// The service's TLS settings: its certificate and key, and the terminal CA (client
    /// certificates required with `require_client_certificate`, else optional).
    pub fn tls_settings(&self, require_client_certificate: bool) -> TlsSettings {
        TlsSettings::new(
            self.server_cert_pem.clone().into_bytes(),
            self.server_key_pem.as_bytes().to_vec(),
        )
        .with_terminal_ca(
            self.terminal_ca_pem.clone().into_bytes(),
            require_client_certificate,
        )
    }

    /// Writes the files into `dir` (created if missing) and returns their paths:
    /// `service-ca.pem`, `server.pem`, `server.key`, `terminal-ca.pem`, then `<terminal>.pem`
    /// (certificate and key) per terminal. Key files are readable by the owner only.
    ///
    /// # Errors
    /// [`DevPkiError::Write`].
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, DevPkiError> {
        std::fs::create_dir_all(dir).map_err(|source| DevPkiError::Write {
            path: dir.to_owned(),
            source,
        })?;
        let mut files: Vec<(String, &str, bool)> = vec![
            ("service-ca.pem".to_owned(), &self.service_ca_pem, false),
            ("server.pem".to_owned(), &self.server_cert_pem, false),
            ("server.key".to_owned(), &self.server_key_pem, true),
            ("terminal-ca.pem".to_owned(), &self.terminal_ca_pem, false),
        ];
        for t in &self.terminals {
            files.push((format!("{}.pem", t.terminal_id), &t.pem, true));
        }
        files
            .into_iter()
            .map(|(file, text, secret)| {
                let path = dir.join(file);
                write_file(&path, text.as_bytes(), secret)
                    .map_err(|source| DevPkiError::Write {
                        path: path.clone(),
                        source,
                    })
                    .map(|()| path)
            })
            .collect()
    }
}

fn generate(what: &'static str) -> impl Fn(rcgen::Error) -> DevPkiError {
    move |source| DevPkiError::Generate {
        what: what.to_owned(),
        source,
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "mynacard development");
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca(common_name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, DevPkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generate("CA"))?;
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().map_err(generate("CA key"))?;
    CertifiedIssuer::self_signed(params, key).map_err(generate("CA"))
}

fn terminal(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    terminal_id: &str,
) -> Result<TerminalIdentity, DevPkiError> {
    let mut params =
        CertificateParams::new(Vec::<String>::new()).map_err(generate("client certificate"))?;
    params.distinguished_name = name(terminal_id);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().map_err(generate("client key"))?;
    let cert = params
        .signed_by(&key, &**issuer)
        .map_err(generate("client certificate"))?;
    let mut pem = Zeroizing::new(cert.pem());
    pem.push_str(&key.serialize_pem());
    Ok(TerminalIdentity {
        terminal_id: terminal_id.to_owned(),
        pem,
    })
}

#[cfg(unix)]
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    if secret {
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(not(unix))]
fn write_file(path: &Path, bytes: &[u8], _secret: bool) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn terminal_ids_must_be_plain_names() {
        for bad in ["", "../etc/x", "a/b", ".hidden", "端末"] {
            assert!(
                matches!(
                    DevPki::generate(&["127.0.0.1"], &[bad]),
                    Err(DevPkiError::TerminalId(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn files_hold_what_they_say_and_keys_are_private() {
        let pki = DevPki::generate(&["127.0.0.1", "localhost"], &["atm-0001", "kiosk-0001"])
            .expect("pki");
        let dir = std::env::temp_dir().join(format!("mynacard-dev-pki-{}", std::process::id()));
        let files = pki.write_to(&dir).expect("write");
        let names: Vec<_> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                "service-ca.pem",
                "server.pem",
                "server.key",
                "terminal-ca.pem",
                "atm-0001.pem",
                "kiosk-0001.pem"
            ]
        );
        let atm = std::fs::read_to_string(dir.join("atm-0001.pem")).unwrap();
        assert!(atm.contains("BEGIN CERTIFICATE") && atm.contains("BEGIN PRIVATE KEY"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            for secret in ["server.key", "atm-0001.pem"] {
                let mode = std::fs::metadata(dir.join(secret))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o077, 0, "{secret}: {mode:o}");
            }
        }
        // Debug shows no key material.
        let shown = format!("{pki:?}");
        assert!(!shown.contains("PRIVATE"), "{shown}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
