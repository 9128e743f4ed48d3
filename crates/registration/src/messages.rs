//! The protocol's messages (protocol §4–§7), as serde types.
//!
//! Every message carries `v: "1"` ([`V1`]); binary values are unpadded base64url ([`Bytes`],
//! [`Sha256Digest`]); times are `YYYY-MM-DDTHH:MM:SSZ` ([`UtcTime`]). Unknown fields are
//! ignored on input (additive changes stay compatible, protocol §10).
//!
//! | Endpoint | Body | 2xx answer |
//! |---|---|---|
//! | `POST /v1/registrations` | [`StartSession`] | `201` [`Challenge`] |
//! | `POST /v1/registrations/{session_id}/proof` | [`Proof`] | `200` [`RegistrationResult`] |
//! | `POST /v1/eligibility` | [`StartSession`] | `201` [`Challenge`] |
//! | `POST /v1/eligibility/{session_id}/proof` | [`Proof`] | `200` [`EligibilityResult`] |
//! | `POST /v1/deregistrations` | [`StartSession`] | `201` [`Challenge`] |
//! | `POST /v1/deregistrations/{session_id}/proof` | [`Proof`] | `200` [`DeregistrationResult`] |
//! | `GET /v1/consent` | — | `200` [`ConsentResponse`] |
//!
//! Every non-2xx answer carries an [`ErrorBody`](crate::ErrorBody).

use serde::{Deserialize, Serialize};

use crate::consent::ConsentDocument;
use crate::wire::{Bytes, Nonce, Sha256Digest, UtcTime, V1};

/// The operation a session is for; it names the endpoint family and is part of the signed
/// intent, so a proof for one operation can never be used for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// Register the card for health-insurance use.
    RegisterInsuranceUse,
    /// Check eligibility at the point of use (a clinic or pharmacy).
    CheckEligibility,
    /// Withdraw the registration.
    DeregisterInsuranceUse,
}

impl Operation {
    /// The wire name, e.g. `"register_insurance_use"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::RegisterInsuranceUse => "register_insurance_use",
            Operation::CheckEligibility => "check_eligibility",
            Operation::DeregisterInsuranceUse => "deregister_insurance_use",
        }
    }

    /// The path that starts a session for this operation, e.g. `/v1/registrations`.
    pub fn start_path(self) -> &'static str {
        match self {
            Operation::RegisterInsuranceUse => paths::REGISTRATIONS,
            Operation::CheckEligibility => paths::ELIGIBILITY,
            Operation::DeregisterInsuranceUse => paths::DEREGISTRATIONS,
        }
    }

    /// The path a proof for `session_id` is posted to.
    pub fn proof_path(self, session_id: &str) -> String {
        format!("{}/{}/proof", self.start_path(), session_id)
    }
}

/// Request paths (protocol §4).
pub mod paths {
    /// Start a registration session.
    pub const REGISTRATIONS: &str = "/v1/registrations";
    /// Start an eligibility session.
    pub const ELIGIBILITY: &str = "/v1/eligibility";
    /// Start a deregistration session.
    pub const DEREGISTRATIONS: &str = "/v1/deregistrations";
    /// The current consent document.
    pub const CONSENT: &str = "/v1/consent";
}

/// The kind of terminal a session runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TerminalKind {
    /// A smartphone app reading the card over NFC.
    App,
    /// A bank ATM with a card reader and PIN pad.
    Atm,
    /// An accredited registration kiosk with face recognition.
    Kiosk,
    /// A clinic or pharmacy face-recognition card reader (point of use).
    FaceReader,
}

impl TerminalKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminalKind::App => "app",
            TerminalKind::Atm => "atm",
            TerminalKind::Kiosk => "kiosk",
            TerminalKind::FaceReader => "face_reader",
        }
    }
}

/// How the person proves they hold the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Method {
    /// The auth PIN unlocks the card's auth key, which signs the intent.
    PinSignature,
    /// An accredited terminal matches the face against the card's photo and attests to it.
    AccreditedFace,
}

/// `POST /v1/{registrations|eligibility|deregistrations}`: asks for a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartSession {
    /// Protocol version.
    pub v: V1,
    /// The terminal's identifier, as the service knows it (1–64 of `A–Z a–z 0–9 - _ .`).
    pub terminal_id: String,
    /// The kind of terminal.
    pub terminal_kind: TerminalKind,
    /// The language the person reads, BCP 47 (`ja` or `en`).
    pub locale: String,
    /// Methods the terminal can perform.
    pub methods_supported: Vec<Method>,
}

/// `StartSession` for `POST /v1/registrations`.
pub type StartRegistration = StartSession;

/// A reference to a consent document by id, version and hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConsentRef {
    /// Document id, e.g. `mynacard-insurance-use`.
    pub doc_id: String,
    /// Document version, e.g. `1.0`.
    pub version: String,
    /// SHA-256 of the JCS of the document (protocol §6).
    pub sha256: Sha256Digest,
}

/// The answer to [`StartSession`]: a fresh nonce bound to one session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Protocol version.
    pub v: V1,
    /// The session id (1–64 of `A–Z a–z 0–9 - _`).
    pub session_id: String,
    /// What the session is for.
    pub op: Operation,
    /// 32 random bytes, used once.
    pub nonce: Nonce,
    /// When the challenge was issued.
    pub issued_at: UtcTime,
    /// After this, a proof is refused with `E_SESSION_EXPIRED` (at most 120 s after `issued_at`).
    pub expires_at: UtcTime,
    /// The consent document in force. The client compares its hash with the document it
    /// showed (fetched with `GET /v1/consent` before any PIN was asked).
    pub consent: ConsentRef,
    /// Methods this terminal may use in this session.
    pub accepted_methods: Vec<Method>,
    /// Names of the certificate roots the service accepts (informational, e.g. `JPKI auth CA 2023`).
    pub accepted_roots: Vec<String>,
}

/// `GET /v1/consent`: the consent document in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentResponse {
    /// Protocol version.
    pub v: V1,
    /// Id, version and hash.
    pub consent: ConsentRef,
    /// The document.
    pub document: ConsentDocument,
}

/// The statement the card (or, for face registration, the terminal) signs (protocol §5).
///
/// The signed bytes are `DigestInfo(SHA-256, SHA-256(JCS(intent)))`; see
/// [`Intent::signed_digest_info`](crate::intent).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Intent {
    /// Protocol version.
    pub v: V1,
    /// The operation, equal to the challenge's.
    pub op: Operation,
    /// The session id, equal to the challenge's.
    pub session_id: String,
    /// The challenge's nonce.
    pub nonce: Nonce,
    /// The terminal, equal to the one that started the session.
    pub terminal_id: String,
    /// The hash of the consent document the person agreed to.
    pub consent_sha256: Sha256Digest,
    /// SHA-256 of the auth certificate's DER.
    pub cert_sha256: Sha256Digest,
    /// When the terminal built the intent.
    pub signed_at: UtcTime,
}

/// The face-match decision of an accredited terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FaceDecision {
    /// The live face matches the card photo.
    Match,
    /// It does not.
    NoMatch,
}

/// The face matcher's result (protocol §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaceMatch {
    /// The decision.
    pub decision: FaceDecision,
    /// The similarity score in thousandths (0–1000).
    pub score_permille: u16,
    /// The threshold the terminal applied, in thousandths.
    pub threshold_permille: u16,
}

/// What an accredited terminal saw, as one canonical object it signs (protocol §7.2).
///
/// No photo, no 照合番号B and no My Number are part of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceEvidence {
    /// Protocol version.
    pub v: V1,
    /// The intent, exactly as it would be signed in the PIN method.
    pub intent: Intent,
    /// The three SHA-256 digests the card-face record's signature covers (visual AP EF `0002`,
    /// card fact B.7): of the `DF22`–`DF24` objects, of `DF25`–`DF26`, and of `DF27` (the photo
    /// the face was matched against), each over the objects as encoded (headers included).
    pub card_face_digests: Vec<Sha256Digest>,
    /// The record's signature (tag `DF28`) by the card key below: RSASSA-PKCS1-v1_5 over a
    /// SHA-256 DigestInfo whose digest field holds the three digests concatenated (96 bytes, not
    /// hashed again), as real cards sign it.
    pub card_face_signature: Bytes,
    /// The record's card public key: the `DF24` value, `90 L exponent 91 L modulus`.
    pub card_public_key: Bytes,
    /// The visual AP's card-verifiable certificate (EF `0004`).
    pub cvc: Bytes,
    /// The visual AP's signature (`80 2A 00 00`) over `DigestInfo(SHA-256, SHA-256(JCS(intent)))`,
    /// made with the card key above: proof that this card was present in this session.
    pub presence_signature: Bytes,
    /// The face-match result.
    pub face_match: FaceMatch,
}

/// The terminal's signature over the JCS of a [`FaceEvidence`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TerminalAttestation {
    /// `"ES256"`: ECDSA P-256 with SHA-256, signature as 64 bytes `r ‖ s`.
    pub alg: String,
    /// The terminal id whose registered key made the signature.
    pub terminal_id: String,
    /// The signature.
    pub signature: Bytes,
}

/// The algorithm name of [`TerminalAttestation::alg`].
pub const ATTESTATION_ALG_ES256: &str = "ES256";

/// `POST …/{session_id}/proof`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Proof {
    /// The card's auth key signed the intent after the PIN.
    PinSignature {
        /// Protocol version.
        v: V1,
        /// The signed intent.
        intent: Intent,
        /// The auth certificate, DER.
        auth_cert: Bytes,
        /// RSASSA-PKCS1-v1_5 signature (256 bytes) over `DigestInfo(SHA-256, SHA-256(JCS(intent)))`.
        signature: Bytes,
    },
    /// An accredited terminal matched the face and attests to the evidence.
    AccreditedFace {
        /// Protocol version.
        v: V1,
        /// The auth certificate, DER.
        auth_cert: Bytes,
        /// The evidence (its `intent` is the session's intent).
        face_evidence: FaceEvidence,
        /// The terminal's signature over `JCS(face_evidence)`.
        attestation: TerminalAttestation,
    },
}

impl Proof {
    /// The method.
    pub fn method(&self) -> Method {
        match self {
            Proof::PinSignature { .. } => Method::PinSignature,
            Proof::AccreditedFace { .. } => Method::AccreditedFace,
        }
    }

    /// The intent the proof is for.
    pub fn intent(&self) -> &Intent {
        match self {
            Proof::PinSignature { intent, .. } => intent,
            Proof::AccreditedFace { face_evidence, .. } => &face_evidence.intent,
        }
    }

    /// The auth certificate, DER.
    pub fn auth_cert(&self) -> &[u8] {
        match self {
            Proof::PinSignature { auth_cert, .. } | Proof::AccreditedFace { auth_cert, .. } => {
                auth_cert.as_slice()
            }
        }
    }
}

/// How a registration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RegistrationStatus {
    /// A new registration.
    Registered,
    /// This certificate was already registered; nothing changed.
    AlreadyRegistered,
    /// An earlier certificate of the same person was registered; the registration now follows
    /// this one (after a reissue or renewal).
    Relinked,
}

/// `200` answer to a registration proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationResult {
    /// Protocol version.
    pub v: V1,
    /// The session.
    pub session_id: String,
    /// The outcome.
    pub status: RegistrationStatus,
    /// The service's id for the registration (stable across relinks).
    pub registration_id: String,
    /// The insurer's name, for the person to confirm (the insured number is never returned to a
    /// registration terminal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insurer_name: Option<String>,
    /// The consent version the registration was made under.
    pub consent_version: String,
    /// When the registration was first made.
    pub registered_at: UtcTime,
}

/// The insurance record the point of use receives (the fields of the insurance card).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InsuranceRecord {
    /// 保険者番号 (6 or 8 digits).
    pub insurer_number: String,
    /// 保険者名.
    pub insurer_name: String,
    /// 被保険者証記号.
    pub symbol: String,
    /// 被保険者証番号.
    pub number: String,
    /// 枝番 (two digits).
    pub branch: String,
}

/// Whether a registration is valid at the point of use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EligibilityStatus {
    /// The person is insured and the card may be used.
    Eligible,
}

/// `200` answer to an eligibility proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityResult {
    /// Protocol version.
    pub v: V1,
    /// The session.
    pub session_id: String,
    /// The outcome.
    pub status: EligibilityStatus,
    /// OQS `QualificationValidity` code (1 = valid).
    pub qualification_validity: u8,
    /// The certificate expired less than the grace period ago: eligibility only, the person
    /// must renew the certificate.
    pub grace: bool,
    /// The registration was moved to this certificate during this check (reissue or renewal).
    pub relinked: bool,
    /// The registration.
    pub registration_id: String,
    /// The insurance record.
    pub insurance: InsuranceRecord,
    /// When the check was made.
    pub checked_at: UtcTime,
}

/// How a deregistration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeregistrationStatus {
    /// The registration was withdrawn.
    Deregistered,
}

/// `200` answer to a deregistration proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeregistrationResult {
    /// Protocol version.
    pub v: V1,
    /// The session.
    pub session_id: String,
    /// The outcome.
    pub status: DeregistrationStatus,
    /// The registration that was withdrawn.
    pub registration_id: String,
    /// When.
    pub deregistered_at: UtcTime,
}

/// Whether a session id or terminal id is of the allowed alphabet and length (protocol §4.1).
pub fn is_valid_identifier(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
