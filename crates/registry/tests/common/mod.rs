//! Shared test helpers.

pub(crate) mod db;
pub(crate) mod e2e;
pub(crate) mod e2e_scenarios;
pub(crate) mod store_scenarios;
