//! The service's error codes, their HTTP status and retry advice (protocol §8), and the error
//! body `{v, code, message, retry, ...}` every non-2xx answer carries.

use core::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::wire::V1;

/// What a client should do after an error (protocol §8, column "retry").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RetryAdvice {
    /// Do not retry: the same request will fail the same way.
    No,
    /// Start a new session (new challenge) and try again.
    NewSession,
    /// Retry the same request after the `Retry-After` delay.
    After,
    /// Retry later with exponential backoff (an upstream is unavailable).
    Backoff,
    /// The person must wait until the record exists upstream (hours or days), then try again.
    Later,
    /// A staff member must resolve it; the person cannot.
    Staff,
    /// The person must register the card (again) before this can succeed.
    Register,
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, $status:literal, $retry:ident; )*) => {
        /// An error code of protocol §8.
        ///
        /// Unknown codes from a newer service parse as [`ErrorCode::Other`], so that a client
        /// keeps working (and shows the message) when the service adds codes.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )*
            /// A code this version does not know.
            Other(String),
        }

        impl ErrorCode {
            /// Every code this version knows, in the order of the specification's table.
            pub const ALL: &'static [ErrorCode] = &[$( ErrorCode::$name, )*];

            /// The code as sent on the wire, e.g. `"E_NONCE_REPLAY"`.
            pub fn as_str(&self) -> &str {
                match self {
                    $( ErrorCode::$name => $text, )*
                    ErrorCode::Other(s) => s,
                }
            }

            /// The code for a wire string.
            pub fn parse(text: &str) -> ErrorCode {
                match text {
                    $( $text => ErrorCode::$name, )*
                    other => ErrorCode::Other(other.to_owned()),
                }
            }

            /// The HTTP status the service answers with.
            pub fn http_status(&self) -> u16 {
                match self {
                    $( ErrorCode::$name => $status, )*
                    ErrorCode::Other(_) => 500,
                }
            }

            /// What the client should do.
            pub fn retry(&self) -> RetryAdvice {
                match self {
                    $( ErrorCode::$name => RetryAdvice::$retry, )*
                    ErrorCode::Other(_) => RetryAdvice::No,
                }
            }
        }
    };
}

error_codes! {
    /// The request body is not a valid message of this protocol version.
    BadRequest = "E_BAD_REQUEST", 400, No;
    /// The message's `v` is not a version this service speaks.
    UnsupportedVersion = "E_UNSUPPORTED_VERSION", 400, No;
    /// No session with this id (never existed, or purged after its retention).
    SessionNotFound = "E_SESSION_NOT_FOUND", 404, NewSession;
    /// The challenge expired before the proof arrived.
    SessionExpired = "E_SESSION_EXPIRED", 410, NewSession;
    /// The proof's nonce or session was already used by a different proof, or belongs to
    /// another session.
    NonceReplay = "E_NONCE_REPLAY", 409, No;
    /// The intent does not match the session (operation, terminal, certificate hash).
    IntentMismatch = "E_INTENT_MISMATCH", 400, No;
    /// The consent hash is not the current consent document's.
    ConsentMismatch = "E_CONSENT_MISMATCH", 409, NewSession;
    /// The signature over the intent does not verify with the certificate's key.
    SigInvalid = "E_SIG_INVALID", 401, No;
    /// The certificate does not chain to a root the service trusts (includes test cards at a
    /// production service).
    CertUntrusted = "E_CERT_UNTRUSTED", 401, No;
    /// The certificate is outside its validity period (registration refused).
    CertExpired = "E_CERT_EXPIRED", 401, No;
    /// The certificate is revoked; the body's `reason` names the RFC 5280 reason.
    CertRevoked = "E_CERT_REVOKED", 401, No;
    /// A signing certificate (or a certificate without digitalSignature) was sent.
    CertWrongType = "E_CERT_WRONG_TYPE", 400, No;
    /// The method (e.g. `accredited_face`) is not allowed for this terminal.
    MethodNotAllowed = "E_METHOD_NOT_ALLOWED", 403, No;
    /// The terminal is not known to the service.
    TerminalUnknown = "E_TERMINAL_UNKNOWN", 403, No;
    /// The terminal a message names is not the one its connection's client certificate names
    /// (mutual TLS).
    TerminalMismatch = "E_TERMINAL_MISMATCH", 403, No;
    /// The terminal attestation signature does not verify.
    AttestationInvalid = "E_ATTESTATION_INVALID", 401, No;
    /// The face evidence does not hold (no match, or the card-presence signature fails).
    FaceEvidenceInvalid = "E_FACE_EVIDENCE_INVALID", 401, No;
    /// The identity upstream could not resolve the certificate serial.
    PersonNotFound = "E_PERSON_NOT_FOUND", 422, Later;
    /// The insurer has not (yet) registered the person.
    NoInsuranceRecord = "E_NO_INSURANCE_RECORD", 422, Later;
    /// More than one insurance record matched.
    MultipleMatch = "E_MULTIPLE_MATCH", 409, Staff;
    /// First registration is blocked for this person (protection order).
    RegistrationRestricted = "E_REGISTRATION_RESTRICTED", 403, No;
    /// The card is not registered for insurance use (eligibility, deregistration).
    NotRegistered = "E_NOT_REGISTERED", 404, Register;
    /// The certificate expired and the grace period is over; the link was cancelled.
    RegLapsed = "E_REG_LAPSED", 410, Register;
    /// The identity upstream is unavailable.
    UpstreamJlis = "E_UPSTREAM_JLIS", 503, Backoff;
    /// The insurance upstream is unavailable.
    UpstreamSsk = "E_UPSTREAM_SSK", 503, Backoff;
    /// A pending registration's upstreams did not answer before its deadline; nothing was
    /// registered (protocol §16.6).
    UpstreamTimeout = "E_UPSTREAM_TIMEOUT", 504, Later;
    /// Too many requests; wait for `Retry-After`.
    RateLimited = "E_RATE_LIMITED", 429, After;
    /// The service is in maintenance; wait for `Retry-After`.
    Maintenance = "E_MAINTENANCE", 503, After;
    /// The request body is larger than the service accepts.
    PayloadTooLarge = "E_PAYLOAD_TOO_LARGE", 413, No;
    /// An unexpected failure in the service; nothing was committed.
    Internal = "E_INTERNAL", 500, Backoff;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(ErrorCode::parse(&text))
    }
}

/// The revocation reasons of RFC 5280 §5.3.1 (protocol §8.2), on the wire by their RFC 5280
/// names: the certificate layer's one table. The JPKI uses the seven of codes 0–6
/// ([`RevocationReason::is_jpki`]).
pub use mynacard_cert::RevocationReason;

/// The body of every non-2xx answer.
///
/// ```json
/// {"v":"1","code":"E_RATE_LIMITED","message":"too many requests","retry":"after","retry_after":5}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Protocol version.
    pub v: V1,
    /// The error code.
    pub code: ErrorCode,
    /// A short English explanation for logs and developers (never personal data).
    pub message: String,
    /// What the client should do.
    pub retry: RetryAdvice,
    /// Seconds to wait, for [`RetryAdvice::After`] (also sent as the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// The revocation reason, for `E_CERT_REVOKED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RevocationReason>,
}

impl ErrorBody {
    /// A body for `code` with the code's own retry advice.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            v: V1,
            retry: code.retry(),
            code,
            message: message.into(),
            retry_after: None,
            reason: None,
        }
    }

    /// Sets the delay in seconds (for 429 and 503).
    #[must_use]
    pub fn with_retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// Sets the revocation reason (for `E_CERT_REVOKED`).
    #[must_use]
    pub fn with_reason(mut self, reason: RevocationReason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// The HTTP status of this body's code.
    pub fn http_status(&self) -> u16 {
        self.code.http_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_survive() {
        for code in ErrorCode::ALL {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(&serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        let other: ErrorCode = serde_json::from_str("\"E_FUTURE\"").unwrap();
        assert_eq!(other, ErrorCode::Other("E_FUTURE".into()));
        assert_eq!(other.http_status(), 500);
    }

    #[test]
    fn status_table_matches_the_specification() {
        assert_eq!(ErrorCode::SessionExpired.http_status(), 410);
        assert_eq!(ErrorCode::NonceReplay.http_status(), 409);
        assert_eq!(ErrorCode::RateLimited.http_status(), 429);
        assert_eq!(ErrorCode::RateLimited.retry(), RetryAdvice::After);
        assert_eq!(ErrorCode::Maintenance.http_status(), 503);
        assert_eq!(ErrorCode::CertRevoked.retry(), RetryAdvice::No);
        assert_eq!(ErrorCode::RegLapsed.retry(), RetryAdvice::Register);
        assert_eq!(ErrorCode::TerminalMismatch.http_status(), 403);
        assert_eq!(ErrorCode::TerminalMismatch.retry(), RetryAdvice::No);
        assert_eq!(
            ErrorCode::parse("E_TERMINAL_MISMATCH"),
            ErrorCode::TerminalMismatch
        );
    }

    #[test]
    fn error_body_wire_form() {
        let body = ErrorBody::new(ErrorCode::CertRevoked, "certificate revoked")
            .with_reason(RevocationReason::KeyCompromise);
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"v":"1","code":"E_CERT_REVOKED","message":"certificate revoked","retry":"no","reason":"keyCompromise"}"#
        );
        let ca: RevocationReason = serde_json::from_str("\"cACompromise\"").unwrap();
        assert_eq!(ca, RevocationReason::CaCompromise);
    }
}

#[cfg(test)]
mod revocation_wire_tests {
    use super::RevocationReason;

    #[test]
    fn reasons_go_on_the_wire_by_their_rfc_5280_names() {
        for r in RevocationReason::NAMED {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<RevocationReason>(&json).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_string(&RevocationReason::KeyCompromise).unwrap(),
            "\"keyCompromise\""
        );
        assert!(serde_json::from_str::<RevocationReason>("\"stolen\"").is_err());
    }
}
