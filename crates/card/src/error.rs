//! The card layer's error type.

use mynacard_apdu::{ApduError, StatusWord, tlv::TlvError};
use mynacard_transport::TransportError;

use crate::pin::PinKind;

/// Why a card operation failed.
///
/// PIN outcomes have their own variants ([`Error::WrongPin`], [`Error::Blocked`],
/// [`Error::LastAttemptRefused`], [`Error::AttemptMayHaveBeenCounted`]) so that callers never
/// have to decode status words to protect a cardholder's PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The card rejected the PIN or password; `retries_left` tries remain (`63Cx`, x > 0).
    #[error("wrong {key}: {} left", tries(*retries_left))]
    WrongPin {
        /// Which PIN.
        key: PinKind,
        /// Tries remaining on the card.
        retries_left: u8,
    },
    /// The PIN or password is blocked (`63C0`, `6984`); only the municipal office can unblock it.
    #[error("{key} is blocked")]
    Blocked {
        /// Which PIN.
        key: PinKind,
    },
    /// The session refused to send a VERIFY because only `retries_left` tries remain and the
    /// caller did not allow the last attempt. No attempt was spent.
    #[error("{key}: only {} left; refusing to use the last attempt", tries(*retries_left))]
    LastAttemptRefused {
        /// Which PIN.
        key: PinKind,
        /// Tries remaining on the card.
        retries_left: u8,
    },
    /// The channel failed while a VERIFY (or CHANGE REFERENCE DATA) was on its way: the card may
    /// or may not have counted the attempt. The library does not repeat it; read the retry
    /// counter before trying again.
    #[error("{key}: the link failed during verification; the attempt may have been counted")]
    AttemptMayHaveBeenCounted {
        /// Which PIN.
        key: PinKind,
        /// The transport failure.
        #[source]
        source: TransportError,
    },
    /// A VERIFY (or CHANGE REFERENCE DATA) reached the card and was answered with a status word
    /// that neither accepts the value nor refuses the command before checking it (a damaged
    /// answer, an unknown code): the card may have counted the attempt. The library does not
    /// repeat it; read the retry counter before trying again.
    #[error("{key}: {operation} answered {sw}; the attempt may have been counted")]
    AttemptUnclear {
        /// Which PIN.
        key: PinKind,
        /// The command.
        operation: &'static str,
        /// The status word the card (or the link) gave.
        sw: StatusWord,
    },
    /// The key has no reference data on this card (for example no signing password on an
    /// under-15 card, no PIN on a face-authentication-only card).
    #[error("{key} is not set on this card")]
    PinNotSet {
        /// Which PIN.
        key: PinKind,
    },
    /// The card answered a status word that the operation does not accept.
    #[error("{operation}: card answered {sw}")]
    Card {
        /// The status word.
        sw: StatusWord,
        /// What was being done.
        operation: &'static str,
    },
    /// The transport failed.
    #[error("transport failure")]
    Transport(#[source] TransportError),
    /// The card was reset (or replaced) since this handle was made: selections and verified PINs
    /// are gone. Open the application again.
    #[error("the card was reset; application selection and verified PINs are gone")]
    CardReset,
    /// A command could not be encoded, or a response could not be assembled.
    #[error("APDU encoding or assembly failed")]
    Apdu(#[from] ApduError),
    /// A file's TLV structure is malformed.
    #[error("{what}: malformed TLV")]
    MalformedTlv {
        /// Which file or object.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: TlvError,
    },
    /// A certificate or key structure is not valid DER.
    #[error("{what}: malformed DER")]
    MalformedDer {
        /// Which object.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: der::Error,
    },
    /// Card data does not have the expected content.
    #[error("malformed card data: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
    },
    /// A public key could not be used (not RSA, bad size).
    #[error("{what}: unusable public key")]
    PublicKey {
        /// Which key.
        what: &'static str,
        /// The RSA library's error.
        #[source]
        source: rsa::Error,
    },
    /// The card returned a signature whose length differs from the key's modulus. It is never
    /// returned to the caller.
    #[error("signature of {actual} bytes does not match the {expected}-byte modulus")]
    SignatureLength {
        /// Modulus length in bytes.
        expected: usize,
        /// Length received.
        actual: usize,
    },
    /// A signature did not verify against the key that should have made it.
    #[error("{what}: signature does not verify")]
    SignatureInvalid {
        /// Which signature.
        what: &'static str,
    },
    /// A digest in an integrity record does not match the data.
    #[error("{what}: digest does not match the data")]
    DigestMismatch {
        /// Which digest.
        what: &'static str,
    },
    /// An argument is outside what the card accepts; nothing was sent.
    #[error("invalid input: {what}")]
    InvalidInput {
        /// What is wrong.
        what: &'static str,
    },
    /// Secure messaging of the text AP failed (see [`crate::sm`]).
    #[error("secure messaging")]
    SecureMessaging(#[from] crate::sm::SmError),
    /// A file is larger than a READ BINARY offset can address.
    #[error("{what}: file of {len} bytes is too large to read")]
    FileTooLarge {
        /// Which file.
        what: &'static str,
        /// Its announced length.
        len: usize,
    },
    /// A record verified under its application's certificate, but that certificate is not
    /// anchored in a trusted authority (see [`crate::cvc`]).
    #[error("the record's certificate is not anchored")]
    Unanchored(#[source] crate::cvc::CvcRefusal),
}

fn tries(n: u8) -> String {
    if n == 1 {
        "1 try".to_owned()
    } else {
        format!("{n} tries")
    }
}

/// Result with the card layer's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// The card's status word behind this error, when there is one.
    pub fn status_word(&self) -> Option<StatusWord> {
        match self {
            Error::Card { sw, .. } | Error::AttemptUnclear { sw, .. } => Some(*sw),
            Error::WrongPin { retries_left, .. } => {
                Some(StatusWord::RetriesRemaining(*retries_left))
            }
            _ => None,
        }
    }

    /// Whether trying the operation again (after re-opening the application or the channel) may
    /// succeed without any change by the user. PIN outcomes are never retryable: a new attempt
    /// needs a new decision by the cardholder.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.is_retryable(),
            Error::CardReset => true,
            _ => false,
        }
    }

    /// Whether the error says the PIN is blocked.
    pub fn is_blocked(&self) -> bool {
        matches!(self, Error::Blocked { .. })
    }

    /// Whether the card refused access because a PIN has not been verified (`6982`).
    pub fn is_security_status_not_satisfied(&self) -> bool {
        matches!(
            self,
            Error::Card {
                sw: StatusWord::SecurityStatusNotSatisfied,
                ..
            }
        )
    }

    pub(crate) fn card(sw: StatusWord, operation: &'static str) -> Error {
        Error::Card { sw, operation }
    }

    pub(crate) fn tlv(what: &'static str) -> impl FnOnce(TlvError) -> Error {
        move |source| Error::MalformedTlv { what, source }
    }
}
