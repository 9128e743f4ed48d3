//! The My Number Card session: ISO 7816 plumbing over any transport channel and one module per
//! card application.
//!
//! - [`Session`] runs over any [`mynacard_transport::CardChannel`]: `61xx`/`6Cxx`, command
//!   chaining, extended length when both the transport and the card take it (with a fall-back
//!   to short APDUs), whole-file reads with the fewest APDUs, reset detection, APDU counters.
//! - [`jpki`]: token, certificates, PIN status, VERIFY, signing, PIN change. Signing is only
//!   possible on a verified handle ([`jpki::VerifiedAuth`], [`jpki::VerifiedSign`]).
//! - [`text`]: the four attributes and their integrity record; the individual number only
//!   through a method named after it.
//!   [`text::SecureText`] reads them under secure messaging ([`sm`]), the recommended path on
//!   contactless links.
//! - [`visual`]: the card-face record opened with 照合番号B, its signature, the
//!   card-presence challenge; the picture of the individual number only through a method named
//!   after it, after 照合番号A.
//! - [`common`]: the card serial, municipality code and expiry; the common AP PIN and its change
//!   (JICSAP CHANGE KEY); the card-level identification and certificates (MF GET DATA).
//!
//! PIN safety is part of the API: [`Pin`] and [`SignPassword`] are validated before anything is
//! sent, zeroized and redacted; every VERIFY is preceded by a retry-counter read and refused when
//! the PIN is blocked or (unless [`AttemptPolicy::AllowLastAttempt`]) on the last try; no VERIFY
//! or signature is ever repeated by the library.
//!
//! ```no_run
//! # async fn demo<C: mynacard_transport::CardChannel>(channel: C) -> Result<(), mynacard_card::Error> {
//! use mynacard_card::{AttemptPolicy, HashAlgorithm, Pin, Session, jpki::PublicCertificate};
//! let mut session = Session::new(channel);
//! let mut ap = session.jpki().await?;
//! let cert = ap.read_certificate(PublicCertificate::Auth).await?;
//! let pin = Pin::new("1234").map_err(|_| mynacard_card::Error::InvalidInput { what: "PIN" })?;
//! let mut verified = ap.verify_auth(&pin, AttemptPolicy::KeepLastAttempt).await?;
//! let signature = verified.sign(HashAlgorithm::Sha256, b"challenge").await?;
//! # let _ = (cert, signature);
//! # Ok(())
//! # }
//! ```

pub mod catalogue;
mod crypto;
mod date;
mod error;
mod pin;
mod session;

pub mod common;
pub mod jpki;
pub mod ops;
pub mod sm;
pub mod text;
pub mod visual;

pub mod cvc;

pub use catalogue::SignScheme;
pub use crypto::{CardPublicKey, HashAlgorithm};
pub use cvc::{CvCertificate, CvcTrust};
pub use date::{Date, Era};
pub use error::{Error, Result};
pub use pin::{
    AttemptPolicy, BirthDateKey, CollationB, MyNumber, Pin, PinFormatError, PinKind, PinStatus,
    SignPassword, my_number_check_digit,
};
pub use session::{ApduStats, Application, ExtendedLength, Session, SessionOptions};
