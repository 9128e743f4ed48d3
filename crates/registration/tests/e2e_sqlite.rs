//! End-to-end, over HTTP to the real service on an embedded SQLite file, with simulated cards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod common;

use common::scenarios;

macro_rules! e2e {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = mynacard_registry::test_kit::sqlite();
            scenarios::$name(db.url.clone()).await;
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
    lost_proof_answers_are_told_from_proofs_never_sent,
);
