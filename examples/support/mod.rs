//! What every example needs around its terminal: the reference registration service, started
//! in this process on a fresh SQLite file, with the simulated cards' test hierarchy accepted.
//!
//! A real terminal talks to an operator's service over HTTPS; [`ReferenceService::start_tls`]
//! serves it that way, with terminal client certificates from a development PKI.

#![allow(dead_code)] // each example uses its own part of this

use std::error::Error;
use std::path::PathBuf;
use std::time::SystemTime;

use mynacard::registration::http::HttpClient;
use mynacard_registry::dev_pki::DevPki;
use mynacard_registry::seed::Seed;
use mynacard_registry::{Config, RunningService};

/// The examples' error type: anything, sendable across the service's tasks.
pub(crate) type BoxError = Box<dyn Error + Send + Sync>;

/// The reference service and the directory of its database.
pub(crate) struct ReferenceService {
    service: RunningService,
    _dir: TempDir,
}

/// A directory removed on drop, also when an example stops early.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl ReferenceService {
    /// Starts the service on loopback (a free port) with a new database, the built-in seed (the
    /// persons behind the simulated cards and the test terminals) and the simulator's
    /// `O=JPKI-TEST` root and CRL accepted besides the production roots.
    pub(crate) async fn start() -> Result<ReferenceService, BoxError> {
        Self::start_with(None).await
    }

    /// As [`start`](Self::start), over HTTPS (TLS 1.3) with `pki`'s server certificate, and
    /// only for terminals that present a client certificate of `pki`'s terminal CA (mutual TLS,
    /// as an ATM or kiosk connects to an operator's service).
    pub(crate) async fn start_tls(pki: &DevPki) -> Result<ReferenceService, BoxError> {
        Self::start_with(Some(pki)).await
    }

    async fn start_with(pki: Option<&DevPki>) -> Result<ReferenceService, BoxError> {
        let now = SystemTime::now();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("mynacard-example-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let dir = TempDir(dir);
        let mut config = Config::new(format!("sqlite://{}", dir.0.join("registry.db").display()));
        config.seed = Seed::builtin()?;
        mynacard_registry::options::simulator_trust(now)?.apply_to(&mut config);
        config.tls = pki.map(|pki| pki.tls_settings(true));
        let service = mynacard_registry::spawn(config).await?;
        Ok(ReferenceService { service, _dir: dir })
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub(crate) fn base_url(&self) -> String {
        self.service.base_url()
    }

    /// Registrations stored so far.
    pub(crate) async fn registration_count(&self) -> Result<i64, BoxError> {
        Ok(self.service.registration_count().await?)
    }

    /// Stops the service (requests in flight finish, the database is closed) and removes its
    /// database.
    pub(crate) async fn stop(self) {
        self.service.shutdown().await;
    }
}

/// A terminal's connection to the service at `service_url` (`https://`): it trusts only the CA
/// of the service's certificate and presents the client certificate of `terminal_id`, both from
/// `pki` (mutual TLS).
pub(crate) fn terminal_client(
    service_url: &str,
    pki: &DevPki,
    terminal_id: &str,
) -> Result<HttpClient, BoxError> {
    let identity = pki
        .terminal(terminal_id)
        .ok_or("no certificate for this terminal")?;
    Ok(HttpClient::builder(service_url)
        .trust_only(pki.service_ca_pem.as_bytes())?
        .client_identity(identity.pem.as_bytes())?
        .build()?)
}

/// A multi-threaded tokio runtime: the service and the HTTP client run on it.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
