//! Shared test helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// One `#[tokio::test]` per named scenario: each gets a fresh database from `$db`
/// (`db::sqlite()` or `db::postgres().await`) and runs `$scenarios::<name>(url)`.
#[allow(unused_macros)] // the store tests call their scenarios by hand
macro_rules! scenario_tests {
    ($scenarios:ident, $db:expr; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = $db;
            $scenarios::$name(db.url.clone()).await;
        }
    )*};
}

pub(crate) mod e2e;
pub(crate) mod e2e_scenarios;
pub(crate) mod pending_scenarios;
pub(crate) mod store_scenarios;
pub(crate) mod tls;
