//! The open health-insurance-use registration protocol of the My Number Card
//! (`docs/protocol.md`): what a terminal and a service say to each other, and nothing that
//! talks to a card, a network or a person.
//!
//! - [`messages`], [`errors`], [`wire`]: the protocol's messages as serde types, the error
//!   codes with their HTTP status and retry advice, and the wire encodings (`v: "1"`,
//!   base64url binary, `YYYY-MM-DDTHH:MM:SSZ` times).
//! - [`jcs`] and [`intent`]: RFC 8785 canonical JSON and the exact bytes the card signs,
//!   `DigestInfo(SHA-256, SHA-256(JCS(intent)))`.
//! - [`consent`]: the consent document (Japanese with an English rendering), its version and
//!   hash; the texts in the crate's `consent/` folder are compiled in.
//! - [`attestation`]: ES256 terminal attestation: the software key and the verification.
//!
//! The terminal side (`mynacard-registration`) and the reference service
//! (`mynacard-registry`) both build on this crate; it needs no async runtime and no HTTP stack.
//!
//! # For service implementers
//!
//! Take the consent document from [`consent::current`], answer errors with [`ErrorBody`] and
//! [`ErrorCode::http_status`], and verify a PIN proof by checking the RSASSA-PKCS1-v1_5
//! signature over [`Intent::signed_digest_info`] and a face proof by checking the ES256
//! attestation ([`attestation::verify_es256`]) over [`FaceEvidence::canonical_bytes`]. A
//! registration proof sent with `Prefer:` [`PREFER_RESPOND_ASYNC`] may be answered `202`
//! [`RegistrationPending`] (protocol §16).

pub mod attestation;
pub mod consent;
pub mod errors;
pub mod intent;
pub mod jcs;
pub mod messages;
pub mod wire;

pub use consent::ConsentDocument;
pub use errors::{ErrorBody, ErrorCode, RetryAdvice, RevocationReason};
pub use messages::{
    Challenge, ConsentRef, DeregistrationResult, EligibilityResult, FaceEvidence, Intent, Method,
    Operation, PREFER_RESPOND_ASYNC, PollToken, Proof, RegistrationPending, RegistrationResult,
    RegistrationStatusDocument, StartSession, TerminalAttestation, TerminalKind,
};
pub use wire::{Bytes, Sha256Digest, UtcTime, V1};
