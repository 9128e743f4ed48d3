//! Test certificates for HTTPS and mutual TLS, made with rcgen: a service CA with a server
//! certificate for 127.0.0.1, a terminal CA with client certificates for seeded terminals, and
//! an unrelated CA whose client certificate names a seeded terminal too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::sync::OnceLock;

use mynacard_registration::http::HttpClient;
use mynacard_registry::TlsSettings;
use mynacard_registry::dev_pki::DevPki;

/// Terminal A: the ATM of the built-in seed.
pub(crate) const TERMINAL_A: &str = "atm-0001";
/// Terminal B: the kiosk of the built-in seed.
pub(crate) const TERMINAL_B: &str = "kiosk-0001";

/// All the PEM material of one test run.
pub(crate) struct TestPki {
    pki: DevPki,
    /// The CA that issued the service's certificate (what clients trust).
    pub(crate) service_ca_pem: String,
    /// The CA terminals' client certificates chain to.
    pub(crate) terminal_ca_pem: String,
    /// Certificate and key (PEM) of terminal A, from the terminal CA.
    pub(crate) terminal_a: String,
    /// Certificate and key (PEM) of terminal B, from the terminal CA.
    pub(crate) terminal_b: String,
    /// Certificate and key (PEM) naming terminal A, from an unrelated CA.
    pub(crate) unrelated: String,
}

impl TestPki {
    fn generate() -> TestPki {
        let identity = |pki: &DevPki, id: &str| pki.terminal(id).expect("made").pem.to_string();
        let pki = DevPki::generate(&["127.0.0.1"], &[TERMINAL_A, TERMINAL_B]).expect("PKI");
        // Another development PKI is somebody else's CA, with a certificate naming A.
        let other = DevPki::generate(&[], &[TERMINAL_A]).expect("other PKI");
        TestPki {
            service_ca_pem: pki.service_ca_pem.clone(),
            terminal_ca_pem: pki.terminal_ca_pem.clone(),
            terminal_a: identity(&pki, TERMINAL_A),
            terminal_b: identity(&pki, TERMINAL_B),
            unrelated: identity(&other, TERMINAL_A),
            pki,
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
        self.pki.tls_settings(require)
    }

    /// The server certificate, its key and the terminal CA as files in `dir` (for the
    /// program's options).
    pub(crate) fn write_files(&self, dir: &std::path::Path) -> [std::path::PathBuf; 3] {
        self.pki.write_to(dir).expect("write");
        ["server.pem", "server.key", "terminal-ca.pem"].map(|f| dir.join(f))
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
