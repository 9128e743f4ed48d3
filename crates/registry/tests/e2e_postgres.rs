//! End-to-end over HTTP to the real service on PostgreSQL, with simulated cards. Built only with
//! the `postgres-tests` feature; then `MYNACARD_TEST_POSTGRES_URL` must name a server (the tests
//! fail, never skip, without it).
#![cfg(feature = "postgres-tests")]

#[macro_use]
mod common;

use common::e2e_scenarios as s;
use mynacard_registry::test_kit as db;

scenario_tests!(
    s, db::postgres().await;
    grace_then_lapse,
    smartphone_certificate_has_no_grace,
    reissue_relinks_the_registration,
    no_insurance_record_and_idempotency,
    concurrent_registrations_over_http,
    nothing_personal_is_stored,
    limits_and_protocol_errors,
);

// The service killed between commit and answer (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
scenario_tests!(s, db::postgres().await; killed_between_proof_and_answer);
