//! Shared test helpers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub(crate) mod db;
pub(crate) mod e2e;
pub(crate) mod e2e_scenarios;
pub(crate) mod pending_scenarios;
pub(crate) mod store_scenarios;
