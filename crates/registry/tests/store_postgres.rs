//! Store behaviour on PostgreSQL. Built only with the `postgres-tests` feature; then
//! `MYNACARD_TEST_POSTGRES_URL` must name a server (the tests fail, never skip, without it).
#![cfg(feature = "postgres-tests")]

mod common;

use common::store_scenarios as s;
use mynacard_registry::test_kit as db;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registrations_of_one_card_end_as_one() {
    let db = db::postgres().await;
    s::concurrent_registrations_of_one_card_end_as_one(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_session_takes_one_proof() {
    let db = db::postgres().await;
    s::one_session_takes_one_proof(&db.url).await;
}

#[tokio::test]
async fn relink_moves_the_registration() {
    let db = db::postgres().await;
    s::relink_moves_the_registration(&db.url).await;
}

#[tokio::test]
async fn lapse_and_deregistration_remove_the_row() {
    let db = db::postgres().await;
    s::lapse_and_deregistration_remove_the_row(&db.url).await;
}

#[tokio::test]
async fn challenges_survive_a_restart() {
    let db = db::postgres().await;
    s::challenges_survive_a_restart(&db.url).await;
}

#[tokio::test]
async fn linked_certificates_share_the_registration() {
    let db = db::postgres().await;
    s::linked_certificates_share_the_registration(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_answer_claims_the_challenge_once() {
    let db = db::postgres().await;
    s::a_read_only_answer_claims_the_challenge_once(&db.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_claim_each_pending_item_once() {
    let db = db::postgres().await;
    s::two_workers_claim_each_pending_item_once(&db.url).await;
}

#[tokio::test]
async fn a_lease_holds_until_it_runs_out() {
    let db = db::postgres().await;
    s::a_lease_holds_until_it_runs_out(&db.url).await;
}

#[tokio::test]
async fn pending_ends_once_and_is_not_purged_while_waiting() {
    let db = db::postgres().await;
    s::pending_ends_once_and_is_not_purged_while_waiting(&db.url).await;
}

#[tokio::test]
async fn bound_sessions_keep_their_terminal() {
    let db = db::postgres().await;
    s::bound_sessions_keep_their_terminal(&db.url).await;
}
