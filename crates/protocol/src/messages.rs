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
//! | `GET /v1/registrations/{session_id}` | — | `200` [`RegistrationStatusDocument`] |
//!
//! Since protocol 1.1 a registration proof sent with `Prefer: respond-async` may be answered
//! `202` [`RegistrationPending`] when an upstream is slow; the terminal then polls the status
//! with the [`PollToken`] (protocol §16).
//!
//! Every non-2xx answer carries an [`ErrorBody`].

use serde::{Deserialize, Serialize};

use crate::consent::ConsentDocument;
use crate::errors::ErrorBody;
use crate::wire::{Bytes, Nonce, Sha256Digest, UtcTime, V1, WireError};

/// The operation a session is for; it names the endpoint family and is part of the signed
/// intent, so a proof for one operation can never be used for another.
///
/// Not `#[non_exhaustive]`: a new value is a protocol revision that terminals and services
/// must handle, and exhaustive matches make the compiler say where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

    /// The status of the registration submitted in `session_id` (protocol §16).
    pub fn registration_status(session_id: &str) -> String {
        format!("{REGISTRATIONS}/{session_id}")
    }
}

/// The `Prefer` header of a registration proof that accepts a pending answer (RFC 7240,
/// protocol §16).
pub const PREFER_RESPOND_ASYNC: &str = "respond-async";

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
    /// Methods the terminal can perform. Methods this version does not know are skipped when
    /// parsed (protocol §4.2): a terminal offering a newer method beside a known one is
    /// served with the known one.
    #[serde(deserialize_with = "known_methods")]
    pub methods_supported: Vec<Method>,
}

/// The known methods of a list, skipping names this version does not know (any other kind of
/// value is still refused).
fn known_methods<'de, D>(deserializer: D) -> Result<Vec<Method>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let names = Vec::<String>::deserialize(deserializer)?;
    Ok(names
        .iter()
        .filter_map(|name| {
            Method::deserialize(
                serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name),
            )
            .ok()
        })
        .collect())
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
///
/// No member beyond these is allowed in version 1 (protocol §5): one is refused when parsed,
/// since the card signs exactly these.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// The first signed segment as the card encodes it: the `DF22` (birth date), `DF23` (sex)
    /// and `DF24` (card key) objects (revision 1.2). Its SHA-256 is the first digest; the service
    /// checks that and that its `DF24` value is [`FaceEvidence::card_public_key`], so the key that
    /// answered the presence challenge is the one the signed record covers. Personal data: the
    /// service uses it in memory for that check only, never stores or logs it. Empty from
    /// clients before revision 1.2, whose face proofs are then refused.
    #[serde(default, skip_serializing_if = "Bytes::is_empty")]
    pub card_face_covered: Bytes,
    /// The record's signature (tag `DF28`) by the key the CVC below certifies (not the card
    /// key): RSASSA-PKCS1-v1_5 over a SHA-256 DigestInfo whose digest field holds the three
    /// digests concatenated (96 bytes, not hashed again), as real cards sign it.
    pub card_face_signature: Bytes,
    /// The card's own public key: the `DF24` value, `90 L exponent 91 L modulus`; it made the
    /// presence signature.
    pub card_public_key: Bytes,
    /// The visual AP's card-verifiable certificate (EF `0004`), issued by J-LIS' visual AP
    /// authority; it certifies the key that made `card_face_signature`.
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
///
/// Not `#[non_exhaustive]`: a new value is a protocol revision that terminals and services
/// must handle, and exhaustive matches make the compiler say where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// The `status` of a [`RegistrationPending`]: always `"pending"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingState {
    /// The proof was accepted; an upstream has not answered yet.
    #[default]
    Pending,
}

/// The `status` of a [`RegistrationFailed`]: always `"failed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailedState {
    /// The registration ended without registering.
    #[default]
    Failed,
}

/// The terminal's credential for polling a pending registration (protocol §16.3): 32 bytes,
/// base64url on the wire, sent as `Authorization: Bearer <token>`. Only its holder can read the
/// status, so `Debug` does not show it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PollToken(pub [u8; 32]);

/// The domain separator of [`PollToken::for_proof`].
const POLL_TOKEN_DOMAIN: &[u8] = b"mynacard-poll-token-v1\0";

impl PollToken {
    /// The token the reference service gives for a proof: `SHA-256("mynacard-poll-token-v1"
    /// ‖ 0x00 ‖ JCS(proof))`. It depends on the proof's signatures, which only the submitting
    /// terminal and the service have seen, and it is the same for a resubmission of the same
    /// proof, so the service need not keep it (it keeps only its hash).
    pub fn for_proof(proof_jcs: &[u8]) -> PollToken {
        use sha2::Digest as _;
        // Hashed in two parts rather than copied into one buffer: a proof is a few kilobytes.
        let digest = sha2::Sha256::new()
            .chain_update(POLL_TOKEN_DOMAIN)
            .chain_update(proof_jcs)
            .finalize();
        let mut out = [0u8; 32];
        out.copy_from_slice(&digest);
        PollToken(out)
    }

    /// The base64url text (43 characters).
    pub fn to_base64url(&self) -> String {
        Sha256Digest(self.0).to_base64url()
    }

    /// Parses base64url text of exactly 32 bytes.
    ///
    /// # Errors
    /// [`WireError`] for anything else.
    pub fn from_base64url(text: &str) -> Result<Self, WireError> {
        Sha256Digest::from_base64url(text).map(|d| PollToken(d.0))
    }

    /// SHA-256 of the token, what a service keeps to check a poll.
    pub fn sha256(&self) -> Sha256Digest {
        Sha256Digest::of(&self.0)
    }

    /// The `Authorization` header value: `Bearer <token>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.to_base64url())
    }

    /// The token of an `Authorization` header value (`Bearer <token>`, scheme case-insensitive).
    pub fn from_bearer(header: &str) -> Option<PollToken> {
        let (scheme, token) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        PollToken::from_base64url(token.trim()).ok()
    }
}

impl core::fmt::Debug for PollToken {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PollToken(<redacted>)")
    }
}

impl Serialize for PollToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for PollToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PollToken::from_base64url(&text).map_err(serde::de::Error::custom)
    }
}

/// Where and how to poll a pending registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollInfo {
    /// The status path relative to the service's base URL: `/v1/registrations/{session_id}`.
    pub url: String,
    /// The credential for the poll.
    pub token: PollToken,
    /// Seconds to wait before the next poll (also the `Retry-After` header).
    pub retry_after: u32,
}

/// `202` answer to a registration proof sent with `Prefer: respond-async` when an upstream did
/// not answer in time, and `200` answer to a poll while the service still works on it
/// (protocol §16.2). The proof was valid and its session is used: resend the same proof or
/// poll, never a new proof for this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationPending {
    /// Protocol version.
    pub v: V1,
    /// The session.
    pub session_id: String,
    /// `"pending"`.
    pub status: PendingState,
    /// When the service accepted the proof.
    pub accepted_at: UtcTime,
    /// When the service gives up: after it, the registration ends `E_UPSTREAM_TIMEOUT`.
    pub deadline: UtcTime,
    /// How to poll.
    pub poll: PollInfo,
}

/// The status of a registration that ended without registering (protocol §16.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationFailed {
    /// Protocol version.
    pub v: V1,
    /// The session.
    pub session_id: String,
    /// `"failed"`.
    pub status: FailedState,
    /// Why, exactly as the synchronous answer's error body.
    pub error: ErrorBody,
}

/// `200` answer to `GET /v1/registrations/{session_id}` (protocol §16.4): still pending,
/// finished (the same members as the synchronous [`RegistrationResult`]), or failed.
///
/// Not `#[non_exhaustive]`: a new value is a protocol revision that terminals and services
/// must handle, and exhaustive matches make the compiler say where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RegistrationStatusDocument {
    /// The service still waits for an upstream.
    Pending(RegistrationPending),
    /// Registered, already registered or relinked.
    Finished(RegistrationResult),
    /// Ended without registering.
    Failed(RegistrationFailed),
}

/// Whether a session id or terminal id is of the allowed alphabet and length (protocol §4.1).
pub fn is_valid_identifier(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTENT: &str = r#"{"v":"1","op":"register_insurance_use","session_id":"ses_01HZX5T7Q9M3",
        "nonce":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8","terminal_id":"atm-0001",
        "consent_sha256":"8cghPl7hmUTMh6cNeWwjEGMhSis-KU81ikyWN1iJ03M",
        "cert_sha256":"3yk35Ctq0n2McOvjdpDkekN84hh2GcIEcc8291CWAbs",
        "signed_at":"2026-04-01T09:30:05Z""#;

    #[test]
    fn an_intent_with_a_member_of_its_own_is_refused() {
        let exact: Result<Intent, _> = serde_json::from_str(&format!("{INTENT}}}"));
        assert!(exact.is_ok(), "{exact:?}");
        let extra: Result<Intent, _> = serde_json::from_str(&format!(r#"{INTENT},"note":"x"}}"#));
        assert!(extra.is_err());
    }

    fn start(methods: &str) -> Result<StartSession, serde_json::Error> {
        serde_json::from_str(&format!(
            r#"{{"v":"1","terminal_id":"atm-0001","terminal_kind":"atm","locale":"ja","methods_supported":{methods}}}"#
        ))
    }

    #[test]
    fn unknown_methods_are_skipped_and_known_ones_kept() {
        let both = start(r#"["iris_scan","pin_signature"]"#).expect("parses");
        assert_eq!(both.methods_supported, vec![Method::PinSignature]);
        let none = start(r#"["iris_scan"]"#).expect("parses");
        assert!(none.methods_supported.is_empty());
        assert!(start(r#"[1]"#).is_err());
        assert!(start(r#""pin_signature""#).is_err());
    }
}
