//! Kotlin and Swift bindings of mynacard for phone apps, generated with UniFFI from this
//! crate's interface (described once, here, with UniFFI's proc-macros).
//!
//! The app supplies two callback interfaces:
//!
//! - [`NfcTag`]: the phone's NFC session with the card (Android `IsoDep`, iOS
//!   `NFCISO7816Tag`), mapped onto [`mynacard_nfc::NfcTag`], so the card layer runs over it
//!   with the phone's limits (command length, extended length, timeout, tag loss);
//! - [`PhoneTerminal`]: the app's screens: the consent and the PIN pad.
//!
//! [`Registration`] is the app's connection to one registration service; its
//! [`register_with_pin`](Registration::register_with_pin) and
//! [`check_eligibility`](Registration::check_eligibility) run a whole flow and block until it
//! ends (call them off the main thread). How it ended is an [`Outcome`]; a wrong PIN, a declined
//! consent or a refusal by the service is an outcome, not an error.
//!
//! The feature `sim` adds test aids: a [`SimulatedCard`](sim::SimulatedCard) and the embedded
//! reference service [`SimService`](sim::SimService). Never in an app build.

mod registration;
#[cfg(feature = "sim")]
pub mod sim;
mod tag;

pub use registration::{Outcome, OutcomeKind, PhoneTerminal, Registration};
pub use tag::{NfcTag, TagError};

uniffi::setup_scaffolding!();

/// Why a call into the library failed (not how a flow ended: that is an [`Outcome`]).
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
#[non_exhaustive]
pub enum MobileError {
    /// An argument the library cannot use (a malformed service URL, an empty app id).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The library could not run the flow (no runtime, a flow that refused the app's input).
    #[error("the flow could not run: {0}")]
    Flow(String),
    /// A test aid failed (feature `sim` only).
    #[error("test aid: {0}")]
    Sim(String),
}
