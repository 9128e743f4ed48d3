//! HTTPS for the service (protocol §3): TLS 1.3 only, with optional client certificates
//! (mutual TLS) that name the terminal.
//!
//! A terminal's client certificate must chain to the configured terminal CA; its subject
//! commonName is the terminal id. Each accepted connection's terminal id is put into every
//! request of that connection as a [`ClientTerminal`] extension, where the handlers check it
//! against the terminal ids the messages name and against the terminal a session is bound to.

use std::sync::Arc;
use std::time::Duration;

use mynacard_cert::x509_cert;
use mynacard_protocol::messages::is_valid_identifier;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use zeroize::Zeroizing;

/// The service's TLS configuration: its certificate and key, and the terminal CA that client
/// certificates must chain to.
///
/// Only TLS 1.3 is offered. The key's PEM text is wiped from memory when the settings are
/// dropped, and `Debug` never shows it.
///
/// ```
/// # fn pem() -> Vec<u8> { Vec::new() }
/// let settings = mynacard_registry::TlsSettings::new(pem(), pem())
///     .with_terminal_ca(pem(), true);
/// assert!(settings.require_client_certificate);
/// ```
#[derive(Clone)]
pub struct TlsSettings {
    /// The service's certificate, then any intermediates (PEM).
    pub cert_chain_pem: Vec<u8>,
    /// The service's private key (PEM: PKCS#8, SEC1 or PKCS#1).
    pub key_pem: Zeroizing<Vec<u8>>,
    /// The CA certificates (PEM, one or more) that terminals' client certificates must chain
    /// to; `None` asks for no client certificate.
    pub terminal_ca_pem: Option<Vec<u8>>,
    /// Refuse a handshake without a client certificate that chains to the terminal CA. When
    /// false, clients without one (apps, which attest instead) may connect; a certificate that
    /// is presented must still chain to the terminal CA.
    pub require_client_certificate: bool,
}

impl core::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert_chain_pem_bytes", &self.cert_chain_pem.len())
            .field("key_pem", &"<redacted>")
            .field("terminal_ca", &self.terminal_ca_pem.is_some())
            .field(
                "require_client_certificate",
                &self.require_client_certificate,
            )
            .finish()
    }
}

impl TlsSettings {
    /// Server certificate chain and key (both PEM), no client certificates.
    pub fn new(cert_chain_pem: Vec<u8>, key_pem: Vec<u8>) -> TlsSettings {
        TlsSettings {
            cert_chain_pem,
            key_pem: Zeroizing::new(key_pem),
            terminal_ca_pem: None,
            require_client_certificate: false,
        }
    }

    /// Accepts client certificates that chain to `ca_pem`; with `require`, only clients with
    /// one may connect.
    #[must_use]
    pub fn with_terminal_ca(mut self, ca_pem: Vec<u8>, require: bool) -> TlsSettings {
        self.terminal_ca_pem = Some(ca_pem);
        self.require_client_certificate = require;
        self
    }
}

/// The TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate PEM holds no certificate.
    #[error("the server certificate file holds no certificate")]
    NoCertificate,
    /// The certificate PEM is malformed.
    #[error("the server certificate file cannot be read")]
    Certificate(#[source] rustls_pki_types::pem::Error),
    /// The key PEM holds no usable private key.
    #[error("the private key file holds no PKCS#8, SEC1 or PKCS#1 private key")]
    Key(#[source] rustls_pki_types::pem::Error),
    /// The terminal CA PEM is malformed.
    #[error("the terminal CA file cannot be read")]
    TerminalCa(#[source] rustls_pki_types::pem::Error),
    /// A terminal CA certificate is not usable as a trust anchor.
    #[error("a terminal CA certificate cannot be used as a trust anchor")]
    TerminalCaCertificate(#[source] rustls::Error),
    /// The terminal CA PEM holds no certificate.
    #[error("the terminal CA file holds no certificate")]
    NoTerminalCa,
    /// Client certificates are required, but no terminal CA is configured.
    #[error("client certificates are required but no terminal CA is configured")]
    RequireWithoutCa,
    /// The terminal CA cannot verify client certificates.
    #[error("the terminal CA cannot be used to verify client certificates")]
    ClientVerifier(#[source] rustls::server::VerifierBuilderError),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration refused")]
    Config(#[source] rustls::Error),
}

/// The terminal a connection's verified client certificate names (its subject commonName),
/// put into each request of that connection. Absent on connections without a client
/// certificate and on plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTerminal(pub String);

/// The rustls server configuration for `settings`: TLS 1.3 only, ring, HTTP/1.1.
pub fn server_config(settings: &TlsSettings) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = CertificateDer::pem_slice_iter(&settings.cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::Certificate)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(&settings.key_pem).map_err(TlsError::Key)?;
    let verifier = match &settings.terminal_ca_pem {
        Some(ca_pem) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca_pem) {
                let cert = cert.map_err(TlsError::TerminalCa)?;
                roots.add(cert).map_err(TlsError::TerminalCaCertificate)?;
            }
            if roots.is_empty() {
                return Err(TlsError::NoTerminalCa);
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            let builder = if settings.require_client_certificate {
                builder
            } else {
                builder.allow_unauthenticated()
            };
            builder.build().map_err(TlsError::ClientVerifier)?
        }
        None if settings.require_client_certificate => return Err(TlsError::RequireWithoutCa),
        None => WebPkiClientVerifier::no_client_auth(),
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Config)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(TlsError::Config)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The terminal id in a client certificate: its one subject commonName, which must be a valid
/// protocol identifier. `None` for a certificate that cannot name a terminal.
pub fn terminal_of_certificate(der: &[u8]) -> Option<String> {
    use x509_cert::der::{Decode as _, Tag, Tagged as _};
    const COMMON_NAME: x509_cert::der::oid::ObjectIdentifier =
        x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let mut names = cert
        .tbs_certificate()
        .subject()
        .iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .filter(|atv| atv.oid == COMMON_NAME);
    let cn = names.next()?;
    if names.next().is_some() {
        // Two commonNames would make the terminal ambiguous.
        return None;
    }
    let text = match cn.value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            std::str::from_utf8(cn.value.value()).ok()?
        }
        _ => return None,
    };
    is_valid_identifier(text).then(|| text.to_owned())
}

/// Why a TLS handshake gave no connection to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    /// The client did not finish it within the handshake timeout.
    TimedOut,
    /// It failed, or the client certificate names no terminal.
    Refused,
}

/// The TLS handshake on `tcp` within `timeout`, and the terminal its verified client
/// certificate names (`None` without one).
pub(crate) async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<(TlsStream<TcpStream>, Option<ClientTerminal>), HandshakeFailure> {
    let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            return Err(HandshakeFailure::Refused);
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            return Err(HandshakeFailure::TimedOut);
        }
    };
    let terminal = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => match terminal_of_certificate(cert.as_ref()) {
            Some(terminal) => Some(ClientTerminal(terminal)),
            None => {
                // Verified by the terminal CA but naming no terminal: fail closed.
                tracing::warn!("client certificate without a usable subject commonName");
                return Err(HandshakeFailure::Refused);
            }
        },
        None => None,
    };
    Ok((tls, terminal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        let settings = TlsSettings::new(b"CERT".to_vec(), b"SECRET-KEY-MATERIAL".to_vec())
            .with_terminal_ca(b"CA".to_vec(), true);
        let text = format!("{settings:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
        assert!(text.contains("require_client_certificate: true"), "{text}");
    }

    #[test]
    fn unusable_settings_are_typed_errors() {
        let settings = TlsSettings::new(Vec::new(), Vec::new());
        assert!(matches!(
            server_config(&settings),
            Err(TlsError::NoCertificate)
        ));
    }

    fn certificate_with(names: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        for (kind, value) in names {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_terminal_is_the_one_valid_common_name() {
        use rcgen::DnType::{CommonName, OrganizationName};
        let named = certificate_with(&[(OrganizationName, "Bank"), (CommonName, "atm-0001")]);
        assert_eq!(terminal_of_certificate(&named).as_deref(), Some("atm-0001"));
        let spaced = certificate_with(&[(CommonName, "atm 0001")]);
        assert_eq!(terminal_of_certificate(&spaced), None);
        let unnamed = certificate_with(&[(OrganizationName, "Bank")]);
        assert_eq!(terminal_of_certificate(&unnamed), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = terminal_of_certificate(&bytes);
        }
    }

    #[test]
    fn certificates_that_are_not_x509_name_no_terminal() {
        assert_eq!(terminal_of_certificate(b""), None);
        assert_eq!(
            terminal_of_certificate(&[0x30, 0x03, 0x02, 0x01, 0x00]),
            None
        );
    }
}
