//! Shared test helpers.

pub(crate) mod db;
pub(crate) mod store_scenarios;
