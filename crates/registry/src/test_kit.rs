//! What tests share to start the reference service (feature `test-kit`, which brings
//! `dev-sim`): fresh databases ([`sqlite`], [`postgres`]), the configuration for the simulated
//! cards ([`config`]), and the service as a child process ([`ServiceProcess`]). The tests of
//! this crate, of `mynacard-registration` and of the `mynacard` command use it.
//!
//! Test code: every function panics when its setup fails, with what failed.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use crate::Config;

/// Environment variable with the URL of a PostgreSQL server the tests may create databases on
/// (`scripts/test.sh` starts a private cluster and sets it).
pub const POSTGRES_ENV: &str = "MYNACARD_TEST_POSTGRES_URL";

/// A fresh database URL, and what to clean up when it is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The URL to connect to.
    pub url: String,
    dir: Option<PathBuf>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other database of this or another test process has.
fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A new SQLite file in a new temporary directory (removed on drop).
pub fn sqlite() -> TestDb {
    let dir = std::env::temp_dir().join(unique("mynacard_registry_test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("registry.db").display());
    TestDb {
        url,
        dir: Some(dir),
    }
}

/// A new, empty PostgreSQL database on the server named by [`POSTGRES_ENV`]. Panics when the
/// variable is missing: the PostgreSQL tests are compiled only with their features, and then
/// they must run, not skip.
pub async fn postgres() -> TestDb {
    let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!("{POSTGRES_ENV} must name a PostgreSQL server for the PostgreSQL tests")
    });
    let name = unique("mynacard_test");
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let url = match base.rfind('/') {
        Some(slash)
            if base[..slash].contains("://") && slash > base.find("://").unwrap_or(0) + 2 =>
        {
            let (head, tail) = base.split_at(slash);
            let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
            format!("{head}/{name}{query}")
        }
        _ => format!("{base}/{name}"),
    };
    TestDb { url, dir: None }
}

/// The service for the simulated cards on `database_url`: the built-in seed, the simulator's
/// roots, CVC authorities and CRL as of `now`, rate limiting (per terminal and per peer) off,
/// the clock starting at `now`.
pub fn config(database_url: &str, now: SystemTime) -> Config {
    let mut config = Config::new(database_url);
    config.seed = crate::Seed::builtin().expect("built-in seed");
    crate::options::simulator_trust(now)
        .expect("simulator trust")
        .apply_to(&mut config);
    config.rate_limit = None;
    config.peer_rate_limit = None;
    config.start_time = Some(now);
    config
}

/// The reference service as a child process: the `mynacard-registry` program, or
/// `mynacard registry serve`. Killed and reaped when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    /// The process.
    pub child: Child,
    /// Where it listens (`http://ADDR` or `https://ADDR`).
    pub base_url: String,
}

impl ServiceProcess {
    /// Starts `command` (the program and any subcommand, e.g. `mynacard registry serve`) on
    /// the database `db`, listening on `listen` (`127.0.0.1:0` for a free port), with test
    /// roots allowed, no rate limit (per terminal or per peer), the options `extra`, and the test faults `fault` in
    /// `MYNACARD_REGISTRY_FAULT` (feature `fault-injection`; none: the seeded upstreams
    /// answer). Returns once the service says where it listens. Standard error is what
    /// `command` says (inherited unless set).
    pub fn start(
        mut command: Command,
        db: &str,
        listen: &str,
        fault: Option<&str>,
        extra: &[&str],
    ) -> ServiceProcess {
        command
            .args([
                "--db",
                db,
                "--listen",
                listen,
                "--allow-test-roots",
                "--rate-limit",
                "0",
                "--peer-rate-limit",
                "0",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped());
        #[cfg(feature = "fault-injection")]
        match fault {
            Some(f) => command.env(crate::options::FAULT_ENV, f),
            None => command.env_remove(crate::options::FAULT_ENV),
        };
        #[cfg(not(feature = "fault-injection"))]
        assert!(
            fault.is_none(),
            "test faults need the fault-injection feature"
        );
        let mut child = command.spawn().expect("start the service");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the service's address");
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("the service said {line:?}"))
            .to_owned();
        ServiceProcess { child, base_url }
    }

    /// Waits for the process to end by itself; returns its exit code.
    pub fn wait(mut self) -> Option<i32> {
        self.child.wait().expect("wait").code()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
