//! Kotlin and Swift bindings of mynacard for phone apps, generated with UniFFI from this
//! crate's interface (described once, here, with UniFFI's proc-macros; the generated sources
//! are committed under `bindings/`).
//!
//! The app implements two callback interfaces:
//!
//! - [`NfcTag`]: the phone's NFC session with the card (Android `IsoDep`, iOS
//!   `NFCISO7816Tag`). It is adapted to `mynacard_nfc::NfcTag`, so the card layer runs over it
//!   with the phone's limits (command length, extended length, timeout, tag loss);
//! - [`PhoneTerminal`]: the app's screens: the consent text and the PIN pad, which is shown
//!   the card's PIN tries left, read before any VERIFY.
//!
//! [`Registration`] is the app's connection to one registration service; its
//! [`register_with_pin`](Registration::register_with_pin) and
//! [`check_eligibility`](Registration::check_eligibility) run a whole flow (the
//! `mynacard-registration` driver over the tag and its HTTP binding) and return an
//! [`Outcome`]. A wrong PIN, a declined consent or a refusal by the service is an outcome, not
//! an error; [`MobileError`] is for calls that cannot run at all.
//!
//! # Threads
//!
//! Every call blocks until the flow ends, and the callbacks are called on the calling thread
//! during the call. Call from a background thread, never the UI thread: Kotlin
//! `withContext(Dispatchers.IO)` (or the thread Android's `onTagDiscovered` runs on), Swift a
//! `DispatchQueue` of its own. On iOS that queue must not be the reader session's, since the
//! tag's `transceive` waits there for `sendCommand`'s completion. A [`Registration`] may be
//! shared between threads; each call runs its flow on the caller's thread.
//!
//! # PINs
//!
//! The PIN comes back from [`PhoneTerminal::pin`] as a string in its own buffer, which the
//! library takes over without a copy as a zeroizing value and wipes when the flow ends; the
//! app's own copy (a Kotlin or Swift string) is the app's to drop. The PIN is never logged. The card's last try is never spent
//! (the outcome is then `LastAttemptRefused`).
//!
//! # Test aids
//!
//! The feature `sim` adds `SimulatedCard` (a simulated card whose `transmit` a test's tag
//! forwards to) and `SimService` (the embedded reference service). Never in an app build: the
//! committed Kotlin and Swift bindings are generated without it, the Python ones with it.

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
