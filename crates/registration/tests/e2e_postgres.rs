//! The end-to-end scenarios on PostgreSQL: the same as `e2e_sqlite.rs`, each on a new database
//! of the server named by `MYNACARD_TEST_POSTGRES_URL` (`scripts/test.sh` installs and starts
//! one on loopback). Compiled only with the `postgres-e2e` feature; then the variable must be set.
#![cfg(feature = "postgres-e2e")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod common;

use common::scenarios;
use sqlx::Connection as _;

const ENV: &str = "MYNACARD_TEST_POSTGRES_URL";

/// A new, empty database on the server; its URL.
async fn database(name: &str) -> String {
    let base = std::env::var(ENV).unwrap_or_else(|_| panic!("{ENV} must name a PostgreSQL server"));
    let db = format!("e2e_{name}_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    sqlx::Executor::execute(&mut admin, format!("DROP DATABASE IF EXISTS {db}").as_str())
        .await
        .expect("drop");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {db}").as_str())
        .await
        .expect("create database");
    let (head, _) = base.rsplit_once('/').expect("URL with a database path");
    format!("{head}/{db}")
}

macro_rules! e2e {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let url = database(stringify!($name)).await;
            scenarios::$name(url).await;
        }
    )*};
}

e2e!(
    smartphone_and_atm_registration,
    registration_through_capped_readers,
    smartphone_token_registration,
    kiosk_face_registration,
    face_from_unknown_terminal_rejected,
    eligibility_after_reissue_relinks,
    revoked_certificate_rejected,
    test_card_rejected_by_production_service,
    replayed_proof_rejected,
    proof_after_expiry_rejected,
    wrong_pin_then_registration,
    deregistration,
    maintenance,
    concurrent_registrations_of_one_card,
);
