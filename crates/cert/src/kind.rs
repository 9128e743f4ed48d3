//! Telling authentication and signing certificates apart, and production from test.

use der::oid::ObjectIdentifier;

/// What a JPKI key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// 利用者証明用: proves the holder is present (log-in). Card key `0017`, auth PIN.
    Authentication,
    /// 署名用: signs documents; its certificate carries the holder's personal data. Card key
    /// `001A`, signing password.
    Signing,
}

impl Purpose {
    /// `"authentication"` or `"signing"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Purpose::Authentication => "authentication",
            Purpose::Signing => "signing",
        }
    }
}

/// The kind of a JPKI certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CertKind {
    /// 利用者証明用電子証明書 (end entity).
    Authentication,
    /// 署名用電子証明書 (end entity).
    Signing,
    /// The CA that issues authentication certificates.
    AuthenticationCa,
    /// The CA that issues signing certificates.
    SigningCa,
    /// Not recognisably either, or the signals disagree (see [`KindEvidence`]).
    Unknown,
}

impl CertKind {
    /// A stable lower-case name: `authentication`, `signing`, `authentication-ca`, `signing-ca`,
    /// `unknown`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CertKind::Authentication => "authentication",
            CertKind::Signing => "signing",
            CertKind::AuthenticationCa => "authentication-ca",
            CertKind::SigningCa => "signing-ca",
            CertKind::Unknown => "unknown",
        }
    }

    /// The purpose, if the kind is known.
    pub const fn purpose(self) -> Option<Purpose> {
        match self {
            CertKind::Authentication | CertKind::AuthenticationCa => Some(Purpose::Authentication),
            CertKind::Signing | CertKind::SigningCa => Some(Purpose::Signing),
            CertKind::Unknown => None,
        }
    }

    /// Whether this is a CA certificate kind.
    pub const fn is_ca(self) -> bool {
        matches!(self, CertKind::AuthenticationCa | CertKind::SigningCa)
    }
}

/// The hierarchy a certificate belongs to, from its issuer's `O=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hierarchy {
    /// `O=JPKI`: real cards.
    Production,
    /// `O=JPKI-TEST`: J-LIS test cards and the simulated card. Never trusted by default.
    Test,
    /// Neither: not a JPKI certificate.
    Other,
}

impl Hierarchy {
    /// `production`, `test` or `other`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Hierarchy::Production => "production",
            Hierarchy::Test => "test",
            Hierarchy::Other => "other",
        }
    }

    pub(crate) fn from_organization(o: Option<&str>) -> Hierarchy {
        match o {
            Some("JPKI") => Hierarchy::Production,
            Some("JPKI-TEST") => Hierarchy::Test,
            _ => Hierarchy::Other,
        }
    }
}

/// The independent signals a classification was made from. Each is `None` when that signal is
/// absent or says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KindEvidence {
    /// From the issuer's `OU=JPKI for user authentication | JPKI for digital signature`.
    pub issuer: Option<Purpose>,
    /// From a certificate policy under `1.2.392.200149.8.5.1.3` (auth) or `.1.1` (sign).
    pub policy: Option<Purpose>,
    /// From the key usage of an end entity: nonRepudiation means signing, digitalSignature alone
    /// means authentication.
    pub key_usage: Option<Purpose>,
    /// Signing, when the subjectAltName carries JPKI personal data.
    pub personal_data: Option<Purpose>,
}

impl KindEvidence {
    /// The purpose all present signals agree on; `None` when there is none or they disagree.
    pub fn agreed(&self) -> Option<Purpose> {
        let mut agreed = None;
        for p in [self.issuer, self.policy, self.key_usage, self.personal_data]
            .into_iter()
            .flatten()
        {
            match agreed {
                None => agreed = Some(p),
                Some(q) if q == p => {}
                Some(_) => return None,
            }
        }
        agreed
    }
}

/// `OU` texts of the two JPKI CAs.
pub(crate) const OU_AUTH: &str = "JPKI for user authentication";
pub(crate) const OU_SIGN: &str = "JPKI for digital signature";

pub(crate) fn purpose_from_ous<'a>(ous: impl IntoIterator<Item = &'a str>) -> Option<Purpose> {
    let mut found = None;
    for ou in ous {
        let p = match ou {
            OU_AUTH => Purpose::Authentication,
            OU_SIGN => Purpose::Signing,
            _ => continue,
        };
        match found {
            None => found = Some(p),
            Some(q) if q == p => {}
            Some(_) => return None,
        }
    }
    found
}

const POLICY_SIGN_ARC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.1");
const POLICY_AUTH_ARC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.3");

pub(crate) fn purpose_from_policy(oid: &ObjectIdentifier) -> Option<Purpose> {
    if starts_with(oid, &POLICY_SIGN_ARC) {
        Some(Purpose::Signing)
    } else if starts_with(oid, &POLICY_AUTH_ARC) {
        Some(Purpose::Authentication)
    } else {
        None
    }
}

/// Whether `oid` is `arc` or below it.
pub(crate) fn starts_with(oid: &ObjectIdentifier, arc: &ObjectIdentifier) -> bool {
    let (o, a) = (oid.as_bytes(), arc.as_bytes());
    // Every encoded sub-identifier ends on a byte with the top bit clear, so a byte prefix that
    // is itself a complete OID encoding ends on a sub-identifier boundary.
    o.len() >= a.len() && &o[..a.len()] == a
}
