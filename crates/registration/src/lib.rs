//! Health-insurance-use registration (健康保険証利用登録) and point-of-use eligibility for the
//! My Number Card: the client half of the open protocol in `docs/protocol.md`.
//!
//! - [`machine`]: the flows as sans-I/O state machines ([`Machine`]): the caller feeds card
//!   responses, service responses, the consent answer and the PIN; the machine says what to do
//!   next. [`Outcome`] is how a flow ended, typed for a terminal to show.
//! - `driver` (feature `driver`): runs a machine over a `CardChannel`, a service client and a
//!   terminal UI. `http` (feature `http`): the service client over reqwest + rustls.
//! - [`messages`], [`errors`], [`wire`], [`jcs`], [`intent`], [`consent`], [`attestation`]: the
//!   protocol's shared types (messages, error codes, wire encodings, RFC 8785 canonical JSON, the
//!   signed intent `DigestInfo(SHA-256, SHA-256(JCS(intent)))`, the consent document, ES256
//!   terminal attestation keys), defined in `mynacard-protocol` and re-exported here under
//!   the same paths.
//!
//! # For service implementers
//!
//! Depend on `mynacard-protocol`, not on this crate: the message types, error codes, JCS,
//! intents, the consent document and the attestation check need no card, no async runtime and
//! no HTTP stack. The reference service `mynacard-registry` does so.

#[cfg(feature = "driver")]
pub mod driver;
#[cfg(feature = "http")]
pub mod http;
pub mod machine;
pub mod outcome;

// The protocol's shared types live in `mynacard-protocol`; they keep their paths here.
pub use mynacard_protocol::{attestation, consent, errors, intent, jcs, messages, wire};

pub use consent::ConsentDocument;
pub use errors::{ErrorBody, ErrorCode, RetryAdvice, RevocationReason};
pub use machine::{Action, FlowConfig, Machine, MachineError};
pub use messages::{
    Challenge, ConsentRef, DeregistrationResult, EligibilityResult, FaceEvidence, Intent, Method,
    Operation, PollToken, Proof, RegistrationPending, RegistrationResult,
    RegistrationStatusDocument, StartSession, TerminalAttestation, TerminalKind,
};
pub use outcome::{Outcome, OutcomeKind};
pub use wire::{Bytes, Sha256Digest, UtcTime, V1};
