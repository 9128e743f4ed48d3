//! Test certificates for HTTPS and mutual TLS, made with rcgen: a service CA with a server
//! certificate for 127.0.0.1, a terminal CA with client certificates for seeded terminals, and
//! an unrelated CA whose client certificate names a seeded terminal too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::sync::OnceLock;

use mynacard_registration::http::HttpClient;
use mynacard_registry::TlsSettings;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// Terminal A: the ATM of the built-in seed.
pub(crate) const TERMINAL_A: &str = "atm-0001";
/// Terminal B: the kiosk of the built-in seed.
pub(crate) const TERMINAL_B: &str = "kiosk-0001";

/// All the PEM material of one test run.
pub(crate) struct TestPki {
    /// The CA that issued the service's certificate (what clients trust).
    pub(crate) service_ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    /// The CA terminals' client certificates chain to.
    pub(crate) terminal_ca_pem: String,
    /// Certificate and key (PEM) of terminal A, from the terminal CA.
    pub(crate) terminal_a: String,
    /// Certificate and key (PEM) of terminal B, from the terminal CA.
    pub(crate) terminal_b: String,
    /// Certificate and key (PEM) naming terminal A, from an unrelated CA.
    pub(crate) unrelated: String,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

fn client(issuer: &CertifiedIssuer<'static, KeyPair>, terminal: &str) -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "mynacard test terminals");
    dn.push(DnType::CommonName, terminal);
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate().expect("key");
    let cert = params
        .signed_by(&key, &**issuer)
        .expect("client certificate");
    format!("{}{}", cert.pem(), key.serialize_pem())
}

impl TestPki {
    fn generate() -> TestPki {
        let service_ca = ca("mynacard test service CA");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "registry.test");
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate().expect("key");
        let server = params.signed_by(&server_key, &*service_ca).expect("server");
        let terminal_ca = ca("mynacard test terminal CA");
        let unrelated_ca = ca("somebody else's CA");
        TestPki {
            service_ca_pem: service_ca.pem(),
            server_cert_pem: server.pem(),
            server_key_pem: server_key.serialize_pem(),
            terminal_ca_pem: terminal_ca.pem(),
            terminal_a: client(&terminal_ca, TERMINAL_A),
            terminal_b: client(&terminal_ca, TERMINAL_B),
            unrelated: client(&unrelated_ca, TERMINAL_A),
        }
    }

    /// One set per test binary.
    pub(crate) fn shared() -> &'static TestPki {
        static PKI: OnceLock<TestPki> = OnceLock::new();
        PKI.get_or_init(TestPki::generate)
    }

    /// The service's settings: its certificate, and the terminal CA (client certificates
    /// optional, or required with `require`).
    pub(crate) fn settings(&self, require: bool) -> TlsSettings {
        TlsSettings::new(
            self.server_cert_pem.clone().into_bytes(),
            self.server_key_pem.clone().into_bytes(),
        )
        .with_terminal_ca(self.terminal_ca_pem.clone().into_bytes(), require)
    }

    /// The server certificate and key as files in `dir` (for the program's options).
    pub(crate) fn write_files(&self, dir: &std::path::Path) -> [std::path::PathBuf; 3] {
        let cert = dir.join("server.pem");
        let key = dir.join("server.key");
        let ca = dir.join("terminal-ca.pem");
        std::fs::write(&cert, &self.server_cert_pem).expect("write");
        std::fs::write(&key, &self.server_key_pem).expect("write");
        std::fs::write(&ca, &self.terminal_ca_pem).expect("write");
        [cert, key, ca]
    }

    /// The protocol client over HTTPS, trusting the service CA, presenting `identity`.
    pub(crate) fn http_client(&self, base: &str, identity: Option<&str>) -> HttpClient {
        let mut builder = HttpClient::builder(base)
            .trust_only(self.service_ca_pem.as_bytes())
            .expect("trust");
        if let Some(identity) = identity {
            builder = builder
                .client_identity(identity.as_bytes())
                .expect("identity");
        }
        builder.build().expect("client")
    }

    /// A raw HTTPS client (TLS 1.3) trusting the service CA, presenting `identity`.
    pub(crate) fn raw_client(&self, identity: Option<&str>) -> reqwest::Client {
        self.raw_builder(identity)
            .min_tls_version(reqwest::tls::Version::TLS_1_3)
            .build()
            .expect("client")
    }

    /// A raw client builder trusting only the service CA, presenting `identity`.
    pub(crate) fn raw_builder(&self, identity: Option<&str>) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.service_ca_pem.as_bytes()).expect("CA"),
            )
            .timeout(std::time::Duration::from_secs(20));
        if let Some(identity) = identity {
            builder =
                builder.identity(reqwest::Identity::from_pem(identity.as_bytes()).expect("id"));
        }
        builder
    }
}
