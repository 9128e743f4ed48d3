//! End-to-end over HTTP to the real service on PostgreSQL, with simulated cards. Built only with
//! the `postgres-tests` feature; then `MYNACARD_TEST_POSTGRES_URL` must name a server (the tests
//! fail, never skip, without it).
#![cfg(feature = "postgres-tests")]

mod common;

use common::{db, e2e_scenarios as s};

macro_rules! e2e {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = db::postgres().await;
            s::$name(db.url.clone()).await;
        }
    )*};
}

e2e!(
    killed_between_proof_and_answer,
    grace_then_lapse,
    smartphone_certificate_has_no_grace,
    reissue_relinks_the_registration,
    no_insurance_record_and_idempotency,
    concurrent_registrations_over_http,
    nothing_personal_is_stored,
    limits_and_protocol_errors,
);
