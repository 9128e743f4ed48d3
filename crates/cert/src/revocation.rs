//! Revocation: where the status comes from, and the three outcomes.
//!
//! J-LIS hands revocation data only to registered verifiers and platform operators, so this crate
//! never assumes it has it. A [`RevocationSource`] answers `Good`, `Revoked` or `Unchecked`; when
//! nothing answers, the outcome is `Unchecked`, never `Good`.

use std::{error::Error, fmt, sync::Arc, time::SystemTime};

use crate::{certificate::JpkiCertificate, crl::Crl, time::format_rfc3339};

/// Revocation reason codes (RFC 5280 §5.3.1). Codes outside the list are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    /// 0 — for JPKI: destroyed before issue.
    Unspecified,
    /// 1 — the holder's key was compromised.
    KeyCompromise,
    /// 2 — the CA's key was compromised.
    CaCompromise,
    /// 3 — for JPKI: the four attributes changed (move, name change).
    AffiliationChanged,
    /// 4 — renewed.
    Superseded,
    /// 5 — no longer needed.
    CessationOfOperation,
    /// 6 — suspended (JPKI never lifts a hold).
    CertificateHold,
    /// 8 — delta-CRL removal.
    RemoveFromCrl,
    /// 9.
    PrivilegeWithdrawn,
    /// 10.
    AaCompromise,
    /// Any other code.
    Other(u8),
}

impl RevocationReason {
    /// From the ENUMERATED value.
    pub const fn from_code(code: u8) -> RevocationReason {
        match code {
            0 => RevocationReason::Unspecified,
            1 => RevocationReason::KeyCompromise,
            2 => RevocationReason::CaCompromise,
            3 => RevocationReason::AffiliationChanged,
            4 => RevocationReason::Superseded,
            5 => RevocationReason::CessationOfOperation,
            6 => RevocationReason::CertificateHold,
            8 => RevocationReason::RemoveFromCrl,
            9 => RevocationReason::PrivilegeWithdrawn,
            10 => RevocationReason::AaCompromise,
            other => RevocationReason::Other(other),
        }
    }

    /// The ENUMERATED value.
    pub const fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::CaCompromise => 2,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
            RevocationReason::CertificateHold => 6,
            RevocationReason::RemoveFromCrl => 8,
            RevocationReason::PrivilegeWithdrawn => 9,
            RevocationReason::AaCompromise => 10,
            RevocationReason::Other(c) => c,
        }
    }

    /// The RFC 5280 name (`keyCompromise`, …; `other` for unknown codes).
    pub const fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "keyCompromise",
            RevocationReason::CaCompromise => "cACompromise",
            RevocationReason::AffiliationChanged => "affiliationChanged",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessationOfOperation",
            RevocationReason::CertificateHold => "certificateHold",
            RevocationReason::RemoveFromCrl => "removeFromCRL",
            RevocationReason::PrivilegeWithdrawn => "privilegeWithdrawn",
            RevocationReason::AaCompromise => "aACompromise",
            RevocationReason::Other(_) => "other",
        }
    }

    /// The reasons RFC 5280 names, in code order (code 7 is unused).
    pub const NAMED: [RevocationReason; 10] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::CaCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
        RevocationReason::CertificateHold,
        RevocationReason::RemoveFromCrl,
        RevocationReason::PrivilegeWithdrawn,
        RevocationReason::AaCompromise,
    ];

    /// The reason an RFC 5280 name stands for ([`as_str`](Self::as_str)), matched ignoring
    /// ASCII case, `-` and `_`, so that `cACompromise`, `ca-compromise` and `CA_COMPROMISE`
    /// all read; `None` for any other text (`other` included).
    pub fn from_name(name: &str) -> Option<RevocationReason> {
        let folded = |s: &str| {
            s.chars()
                .filter(|c| !matches!(c, '-' | '_'))
                .map(|c| c.to_ascii_lowercase())
                .collect::<String>()
        };
        let wanted = folded(name);
        RevocationReason::NAMED
            .into_iter()
            .find(|r| folded(r.as_str()) == wanted)
    }

    /// Whether the JPKI uses this reason: the seven the platform operators expose (codes 0–6).
    /// The wire protocol's reasons are these.
    pub const fn is_jpki(self) -> bool {
        self.code() <= 6
    }
}

impl core::str::FromStr for RevocationReason {
    type Err = UnknownReasonName;

    /// [`RevocationReason::from_name`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RevocationReason::from_name(s).ok_or(UnknownReasonName)
    }
}

impl fmt::Display for RevocationReason {
    /// The RFC 5280 name; a code outside the list as `other(N)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevocationReason::Other(code) => write!(f, "other({code})"),
            named => f.write_str(named.as_str()),
        }
    }
}

/// A text that is not the name of an RFC 5280 revocation reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 5280 revocation reason name")]
pub struct UnknownReasonName;

/// A revocation source failed (network, platform operator error, …). The cause is kept.
#[derive(Debug, thiserror::Error)]
#[error("revocation source failed")]
pub struct RevocationError {
    #[source]
    source: Box<dyn Error + Send + Sync + 'static>,
}

impl RevocationError {
    /// Wraps the source's own error.
    pub fn new(source: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> RevocationError {
        RevocationError {
            source: source.into(),
        }
    }
}

/// Why no revocation answer was obtained.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum UncheckedReason {
    /// The caller asked for no revocation check.
    NotRequested,
    /// The certificate is a trust anchor itself.
    TrustAnchor,
    /// No CRL given was issued for this certificate's issuer.
    NoCrlFromIssuer,
    /// A CRL carries the issuer's name but its signature did not verify with the issuer's key.
    CrlNotFromIssuer,
    /// The newest CRL from the issuer had passed its next update at the verification time.
    CrlExpired {
        /// The CRL's next update.
        next_update: SystemTime,
    },
    /// The source could not say (for example an OCSP "unknown").
    Unknown,
    /// The source failed.
    SourceFailed(Arc<RevocationError>),
}

impl fmt::Display for UncheckedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UncheckedReason::NotRequested => f.write_str("no revocation source given"),
            UncheckedReason::TrustAnchor => f.write_str("the certificate is a trust anchor"),
            UncheckedReason::NoCrlFromIssuer => f.write_str("no CRL from the issuer"),
            UncheckedReason::CrlNotFromIssuer => {
                f.write_str("CRL signature does not verify with the issuer's key")
            }
            UncheckedReason::CrlExpired { next_update } => {
                write!(f, "CRL expired at {}", format_rfc3339(*next_update))
            }
            UncheckedReason::Unknown => f.write_str("the source does not know the certificate"),
            UncheckedReason::SourceFailed(e) => {
                write!(f, "revocation source failed")?;
                if let Some(cause) = e.source() {
                    write!(f, ": {cause}")?;
                }
                Ok(())
            }
        }
    }
}

/// The outcome of a revocation check.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RevocationStatus {
    /// Not revoked according to `source`.
    Good {
        /// What answered (`CRL issued 2025-01-01T00:00:00Z`, a caller's description, …).
        source: String,
    },
    /// Revoked.
    Revoked {
        /// The reason code, if the source gave one.
        reason: Option<RevocationReason>,
        /// When it was revoked.
        date: SystemTime,
    },
    /// No answer; the certificate must not be taken as good.
    Unchecked {
        /// Why not.
        reason: UncheckedReason,
    },
}

impl fmt::Display for RevocationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevocationStatus::Good { source } => write!(f, "good ({source})"),
            RevocationStatus::Revoked { reason, date } => write!(
                f,
                "revoked ({}, {})",
                reason.map_or("no reason given", RevocationReason::as_str),
                format_rfc3339(*date)
            ),
            RevocationStatus::Unchecked { reason } => write!(f, "unchecked ({reason})"),
        }
    }
}

/// What a revocation source is asked: the certificate, the root that verified it, and the time.
#[derive(Debug, Clone, Copy)]
pub struct RevocationQuery<'a> {
    /// The certificate in question.
    pub certificate: &'a JpkiCertificate,
    /// Its verified issuer.
    pub issuer: &'a JpkiCertificate,
    /// The time the status is wanted for.
    pub at: SystemTime,
}

/// Somewhere revocation status comes from: CRLs, a caller's OCSP client, a platform operator.
pub trait RevocationSource {
    /// The status of `query.certificate` at `query.at`.
    fn status(&self, query: &RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError>;
}

/// Asks nobody: every certificate comes out [`UncheckedReason::NotRequested`].
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocationCheck;

impl RevocationSource for NoRevocationCheck {
    fn status(&self, _: &RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError> {
        Ok(RevocationStatus::Unchecked {
            reason: UncheckedReason::NotRequested,
        })
    }
}

/// A caller's function as a source — for an OCSP client or a platform operator's API.
pub struct CallbackSource<F>(pub F);

impl<F> fmt::Debug for CallbackSource<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackSource")
    }
}

impl<F> RevocationSource for CallbackSource<F>
where
    F: Fn(&RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError>,
{
    fn status(&self, query: &RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError> {
        (self.0)(query)
    }
}

/// Checks against CRLs the caller has (J-LIS CRLs come through a contract, not a URL).
///
/// Only CRLs whose issuer name matches and whose signature verifies with the verified issuer's key
/// count; of those the newest is used. A listed serial revoked at or before the query time is
/// `Revoked`; an unlisted one is `Good` unless the CRL's next update has passed, which is
/// `Unchecked`.
#[derive(Debug, Clone, Default)]
pub struct CrlSource {
    crls: Vec<Crl>,
}

impl CrlSource {
    /// A source over these CRLs.
    pub fn new(crls: impl IntoIterator<Item = Crl>) -> CrlSource {
        CrlSource {
            crls: crls.into_iter().collect(),
        }
    }
}

impl RevocationSource for CrlSource {
    fn status(&self, query: &RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError> {
        let same_name: Vec<&Crl> = self
            .crls
            .iter()
            .filter(|crl| crl.issuer() == query.certificate.issuer())
            .collect();
        if same_name.is_empty() {
            return Ok(RevocationStatus::Unchecked {
                reason: UncheckedReason::NoCrlFromIssuer,
            });
        }
        let Some(crl) = same_name
            .into_iter()
            .filter(|crl| crl.verify_issued_by(query.issuer).is_ok())
            .max_by_key(|crl| crl.this_update())
        else {
            return Ok(RevocationStatus::Unchecked {
                reason: UncheckedReason::CrlNotFromIssuer,
            });
        };
        if let Some(entry) = crl.find(query.certificate.serial()) {
            let removed = entry.reason == Some(RevocationReason::RemoveFromCrl);
            if !removed && entry.date <= query.at {
                return Ok(RevocationStatus::Revoked {
                    reason: entry.reason,
                    date: entry.date,
                });
            }
        }
        if let Some(next_update) = crl.next_update()
            && query.at > next_update
        {
            return Ok(RevocationStatus::Unchecked {
                reason: UncheckedReason::CrlExpired { next_update },
            });
        }
        Ok(RevocationStatus::Good {
            source: format!("CRL issued {}", format_rfc3339(crl.this_update())),
        })
    }
}

/// By its RFC 5280 name; a code RFC 5280 does not name is written `unspecified`.
#[cfg(feature = "serde")]
impl serde::Serialize for RevocationReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let name = match self {
            RevocationReason::Other(_) => RevocationReason::Unspecified.as_str(),
            named => named.as_str(),
        };
        serializer.serialize_str(name)
    }
}

/// From an RFC 5280 name ([`RevocationReason::from_name`]).
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for RevocationReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        RevocationReason::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom("not an RFC 5280 revocation reason"))
    }
}
