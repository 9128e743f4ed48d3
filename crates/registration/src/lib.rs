//! Health-insurance-use registration (健康保険証利用登録) and point-of-use eligibility for the
//! My Number Card: the client half of the open protocol in `docs/protocol.md`.
//!
//! - [`messages`], [`errors`], [`wire`]: the protocol's messages as serde types, the error
//!   codes with their HTTP status and retry advice, and the wire encodings (`v: "1"`,
//!   base64url binary, `YYYY-MM-DDTHH:MM:SSZ` times).
//! - [`jcs`] and [`intent`]: RFC 8785 canonical JSON and the exact bytes the card signs,
//!   `DigestInfo(SHA-256, SHA-256(JCS(intent)))`.
//! - [`consent`]: the consent document (Japanese with an English rendering), its version and
//!   hash.
//! - [`machine`]: the flows as sans-I/O state machines ([`Machine`]): the caller feeds card
//!   responses, service responses, the consent answer and the PIN; the machine says what to do
//!   next. [`Outcome`] is how a flow ended, typed for a terminal to show.
//! - [`attestation`]: ES256 terminal attestation keys for accredited face terminals.
//! - `driver` (feature `driver`): runs a machine over a `CardChannel`, a service client and a
//!   terminal UI. `http` (feature `http`): the service client over reqwest + rustls.
//!
//! # For service implementers
//!
//! Depend on this crate with `default-features = false`: the message types, error codes,
//! JCS, intents and the consent document need no async runtime and no HTTP stack. Take the
//! consent document from [`consent::current`] (the texts in `docs/consent/` are compiled in),
//! answer errors with [`ErrorBody`] and [`ErrorCode::http_status`], and verify a PIN proof by
//! checking the RSASSA-PKCS1-v1_5 signature over [`Intent::signed_digest_info`] and a face proof
//! by checking the ES256 attestation over [`FaceEvidence::canonical_bytes`].
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod attestation;
pub mod consent;
#[cfg(feature = "driver")]
pub mod driver;
pub mod errors;
#[cfg(feature = "http")]
pub mod http;
pub mod intent;
pub mod jcs;
pub mod machine;
pub mod messages;
pub mod outcome;
pub mod wire;

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
