//! A simulated My Number Card. **It is not a card**: everything it issues chains to an
//! `O=JPKI-TEST` hierarchy that no production verifier accepts.
//!
//! One card engine runs three ways: in-process behind the transport traits, behind a real pcscd
//! through vsmartcard's vpcd, and with faults injected.

pub mod cvc;
pub mod engine;
pub mod fault;
pub mod image;
pub mod inprocess;
pub mod log;
pub mod pki;
pub mod profile;
pub mod recorded;
pub mod state;
pub mod vpcd;
