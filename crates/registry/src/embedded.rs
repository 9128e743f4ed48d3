//! The reference service embedded in a host program for demonstrations and binding tests
//! (feature `dev-sim`): its own runtime, a fresh SQLite database in a temporary directory, the
//! built-in seed and the simulator's test roots. The C ABI's and the phone interface's test aids
//! are thin wrappers of [`EmbeddedService`].

use std::path::PathBuf;
use std::time::SystemTime;

use crate::seed::Seed;
use crate::{Config, RunningService};

/// Why the embedded service could not start or answer.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct EmbeddedError {
    /// The step that failed.
    pub what: &'static str,
    /// Its cause.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl EmbeddedError {
    fn at(what: &'static str) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Self {
        move |source| EmbeddedError { what, source }
    }
}

/// A running embedded reference service. Dropping it stops it (requests in flight finish) and
/// removes its database.
#[derive(Debug)]
pub struct EmbeddedService {
    service: Option<RunningService>,
    url: String,
    dir: PathBuf,
    /// Declared last: dropped after the service's tasks are shut down.
    runtime: tokio::runtime::Runtime,
}

impl EmbeddedService {
    /// Starts the service on its own runtime (one worker thread), its database in a new
    /// temporary directory named after `label`.
    ///
    /// # Errors
    /// [`EmbeddedError`] naming the step that failed (runtime, database directory, seed, test
    /// trust, service).
    pub fn start(label: &str) -> Result<EmbeddedService, EmbeddedError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| EmbeddedError::at("runtime")(Box::new(e)))?;
        let now = SystemTime::now();
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| EmbeddedError::at("database directory")(Box::new(e)))?;
        let started = (|| {
            let mut config = Config::new(format!("sqlite://{}", dir.join("registry.db").display()));
            config.seed = Seed::builtin().map_err(|e| EmbeddedError::at("seed")(Box::new(e)))?;
            crate::options::simulator_trust(now)
                .map_err(|e| EmbeddedError::at("test trust")(Box::new(e)))?
                .apply_to(&mut config);
            runtime
                .block_on(crate::spawn(config))
                .map_err(|e| EmbeddedError::at("service")(Box::new(e)))
        })();
        match started {
            Ok(service) => Ok(EmbeddedService {
                url: service.base_url(),
                service: Some(service),
                dir,
                runtime,
            }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    /// The service's base URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.url
    }

    /// Registrations stored so far.
    ///
    /// # Errors
    /// [`EmbeddedError`] when the service was stopped or its database fails.
    pub fn registration_count(&self) -> Result<i64, EmbeddedError> {
        let service = self.service.as_ref().ok_or_else(|| {
            EmbeddedError::at("registration count")("the service was stopped".into())
        })?;
        self.runtime
            .block_on(service.registration_count())
            .map_err(|e| EmbeddedError::at("registration count")(Box::new(e)))
    }

    /// Stops the service (requests in flight finish) and removes its database. A second stop
    /// does nothing.
    pub fn stop(&mut self) {
        if let Some(running) = self.service.take() {
            self.runtime.block_on(running.shutdown());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for EmbeddedService {
    fn drop(&mut self) {
        self.stop();
    }
}
