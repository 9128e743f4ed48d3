//! Registrations that wait for a slow upstream (protocol §16), end to end over HTTP on an
//! embedded SQLite file: pending and polled, past the deadline, across a killed service, and
//! with two service instances on one database.

#[macro_use]
mod common;

use common::pending_scenarios as s;
use mynacard_registry::test_kit as db;

scenario_tests!(
    s, db::sqlite();
    identity_down_then_back,
    insurance_slow_beyond_the_deadline,
    two_services_process_each_pending_item_once,
);

// The service killed while a registration waits (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
scenario_tests!(s, db::sqlite(); killed_while_pending_resumes_after_restart);
