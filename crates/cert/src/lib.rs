//! JPKI certificates of the My Number Card (マイナンバーカード).
//!
//! - [`JpkiCertificate`] parses a DER or PEM certificate and tells the two kinds apart
//!   ([`CertKind`]: 利用者証明用 authentication, 署名用 signing, and their CAs) from the issuer,
//!   the key usage and the certificate policy.
//! - [`PersonalData`] decodes the signing certificate's subjectAltName `otherName` entries
//!   (`1.2.392.200149.8.5.5.1`–`.6`) into typed fields. Values it does not recognise are kept, not
//!   rejected. Its `Debug` output is redacted.
//! - [`roots`] embeds the six J-LIS production roots; [`TrustPolicy`] decides which anchors count
//!   (production only, unless the caller opts in to the `O=JPKI-TEST` hierarchy and supplies its
//!   roots).
//! - [`verify_chain`] checks a certificate against the anchors **by signature** (all generations of
//!   a root share one name), at a caller-given time, with key usage and basic constraints, and
//!   reports which root and generation matched.
//! - [`Crl`] and the [`RevocationSource`] trait give a [`RevocationStatus`] that is `Good`,
//!   `Revoked` (with reason and date) or `Unchecked` — never silently good.
//!
//! ```
//! use mynacard_cert::{TrustPolicy, roots};
//!
//! let policy = TrustPolicy::production();
//! assert_eq!(policy.anchors().len(), roots::JLIS_ROOTS.len());
//! ```
#![forbid(unsafe_code)]

pub mod calendar;
mod certificate;
mod chain;
mod crl;
pub mod digest_info;
mod error;
mod kind;
mod names;
mod personal;
mod revocation;
pub mod roots;
mod sigalg;
mod time;
mod trust;

pub use calendar::Era;
pub use certificate::{JpkiCertificate, KeyUsageFlags};
pub use chain::{
    ChainError, MatchedRoot, Verification, VerifiedChain, identify_issuer, verify, verify_chain,
};
pub use crl::{Crl, CrlError, RevokedEntry};
pub use error::ParseError;
pub use kind::{CertKind, Hierarchy, KindEvidence, Purpose};
pub use names::format_name;
pub use personal::{
    BirthDate, EraDate, PersonalData, PersonalValue, Sex, UnrecognizedEntry, oid as personal_oid,
};
pub use revocation::{
    CallbackSource, CrlSource, NoRevocationCheck, RevocationError, RevocationQuery,
    RevocationReason, RevocationSource, RevocationStatus, UncheckedReason, UnknownReasonName,
};
pub use sigalg::SignatureError;
pub use time::format_rfc3339;
pub use trust::{AnchorOrigin, TrustAnchor, TrustError, TrustPolicy};

/// Re-exported so callers can name the parsed X.509 types without a direct dependency.
pub use x509_cert;
