//! Databases for tests: a fresh SQLite file, or a fresh schema-less PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::path::PathBuf;

/// Environment variable with the URL of a PostgreSQL server the tests may create databases on.
pub(crate) const POSTGRES_ENV: &str = "MYNACARD_TEST_POSTGRES_URL";

/// A fresh database URL and what to clean up.
pub(crate) struct TestDb {
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

static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A new SQLite file in a new temporary directory.
pub(crate) fn sqlite() -> TestDb {
    let dir = std::env::temp_dir().join(unique("mynacard_registry_test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("registry.db").display());
    TestDb {
        url,
        dir: Some(dir),
    }
}

/// A new, empty PostgreSQL database on the server named by [`POSTGRES_ENV`]. Panics when the
/// variable is missing: these tests are compiled only with the `postgres-tests` feature, and
/// then they must run, not skip.
pub(crate) async fn postgres() -> TestDb {
    let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!("{POSTGRES_ENV} must name a PostgreSQL server for the postgres-tests feature")
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
