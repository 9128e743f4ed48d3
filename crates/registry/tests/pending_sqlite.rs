//! Registrations that wait for a slow upstream (protocol §16), end to end over HTTP on an
//! embedded SQLite file: pending and polled, past the deadline, across a killed service, and
//! with two service instances on one database.

mod common;

use common::{db, pending_scenarios as s};

macro_rules! e2e {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let db = db::sqlite();
            s::$name(db.url.clone()).await;
        }
    )*};
}

e2e!(
    identity_down_then_back,
    insurance_slow_beyond_the_deadline,
    killed_while_pending_resumes_after_restart,
    two_services_process_each_pending_item_once,
);
