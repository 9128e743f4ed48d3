//! Profiles: what kind of card to simulate, as a TOML file, and how to build its [`CardImage`].
//!
//! The built-in profiles ([`BUILTIN_PROFILES`], `profiles/builtin.toml` in the crate) cover the
//! cases a My Number Card integration meets:
//!
//! | name | card |
//! |---|---|
//! | `adult` | both certificates, fresh PINs, contact ATR |
//! | `under15` | no signing certificate, no signing password |
//! | `face-auth` | 顔認証 card: no PINs at all, no signing certificate |
//! | `expired-auth` | certificates past notAfter at the reference date; card still valid |
//! | `revoked-auth` | authentication certificate on the simulator's CRL (key compromise) |
//! | `blocked-auth-pin` | authentication PIN with 0 tries left |
//! | `reissued` | the `adult` person on a new card: new keys, serials, face |
//! | `smartphone` | `JPKIAPGPSETOKEN`: auth certificate behind the PIN, no text AP, short APDUs |
//! | `no-extended` | the `adult` card behind a reader without extended length (256-byte answers) |
//! | `contact` | the `adult` card with the other chip vendor's contact ATR |
//! | `contactless` | the `adult` card on a contactless reader (NFC-B ATR) |
//!
//! Profiles that share a `card_id` are the same card: `contact`, `contactless` and
//! `no-extended` carry the `adult` card's keys and certificates byte for byte.
//!
//! # File format
//!
//! One table per profile under `[profile.<name>]`; see `profiles/builtin.toml` for every field.
//! A profile may start from another (`base = "adult"`): the tables are merged key by key, the
//! profile's own values winning, then the dotted paths listed in `remove` are deleted (that is
//! how `under15` drops `sign` and `pins.sign`). A user file loaded with [`Catalogue::load`] may
//! base its profiles on the built-in ones. Unknown keys are errors.
//!
//! # Dates and the clock
//!
//! Nothing here reads the system clock. Each profile names a `reference_date`, the "now" at which
//! it shows what it is meant to show (e.g. `expired-auth` is expired then). Certificates are valid
//! from `issued` at 00:00:00Z to `expires` at 14:59:59Z (the end of that day in Japan, as on the
//! real roots); `expires` defaults to the holder's 5th birthday after issue, capped by the card's
//! expiry (a 29 February birthday falls on 28 February in common years). A signing certificate
//! never outlives the authentication certificate of the same card.

pub mod jp2;
pub mod png;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::cvc::CvcRole;
use crate::image::{
    AnswerCap, CappedRest, CardFace, CardImage, Credential, Date, LinkProfile, Person, Secret,
    SexCode, TokenKind,
};
use crate::pki::{
    CaKind, CrlSpec, DateTime, HolderAttributes, LeafSpec, PkiError, Revocation, RevocationReason,
    TestPki, no_substitutes, utc,
};

/// The built-in profile file (`profiles/builtin.toml`).
pub const BUILTIN_PROFILES: &str = include_str!("../profiles/builtin.toml");

/// Errors loading, resolving, validating or building a profile.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read profile file {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not TOML.
    #[error("profile file is not valid TOML")]
    Toml(#[source] toml::de::Error),
    /// The file has no `[profile.*]` tables, or `profile` is not a table.
    #[error("profile file has no [profile.<name>] tables")]
    NoProfiles,
    /// A profile's fields do not match the schema (a missing or unknown key, a wrong type).
    #[error("profile {profile:?} does not match the schema")]
    Schema {
        /// The profile.
        profile: String,
        /// The deserialiser's complaint.
        #[source]
        source: toml::de::Error,
    },
    /// No profile of that name.
    #[error("no profile named {0:?}")]
    UnknownProfile(String),
    /// `base` names a profile that does not exist.
    #[error("profile {profile:?} is based on unknown profile {base:?}")]
    UnknownBase {
        /// The profile.
        profile: String,
        /// The missing base.
        base: String,
    },
    /// Profiles inherit from each other in a loop.
    #[error("profile {0:?} inherits from itself")]
    BaseCycle(String),
    /// `base` or `remove` has the wrong type, or a `remove` path does not exist.
    #[error("profile {profile:?}: bad `{key}` entry")]
    BadDirective {
        /// The profile.
        profile: String,
        /// `base` or `remove`, or the offending path.
        key: String,
    },
    /// A value breaks a rule of the card (a 5-digit PIN, a wrong check digit, ...).
    #[error("profile {profile:?}: {field}: {problem}")]
    Invalid {
        /// The profile.
        profile: String,
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The test PKI failed.
    #[error("profile {profile:?}: certificate issuance failed")]
    Pki {
        /// The profile.
        profile: String,
        /// The PKI's error.
        #[source]
        source: PkiError,
    },
}

/// The token kind a profile asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TokenSetting {
    /// `JPKIAPICCTOKEN2`.
    Card,
    /// `JPKIAPGPSETOKEN`.
    AndroidSe,
    /// `JPKIAPIOSTOKEN`.
    Ios,
}

impl From<TokenSetting> for TokenKind {
    fn from(t: TokenSetting) -> Self {
        match t {
            TokenSetting::Card => TokenKind::Card,
            TokenSetting::AndroidSe => TokenKind::AndroidSe,
            TokenSetting::Ios => TokenKind::Ios,
        }
    }
}

/// The holder. Test data only; `Debug` redacts it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonSpec {
    /// 氏名, family and given name separated by U+3000.
    pub name: String,
    /// Substitute-character positions of the name (`0`/`1` per character); all `0` if absent.
    #[serde(default)]
    pub name_substitutes: Option<String>,
    /// 住所.
    pub address: String,
    /// Substitute-character positions of the address; all `0` if absent.
    #[serde(default)]
    pub address_substitutes: Option<String>,
    /// The municipality, romanised, for the signing certificate's `L=` (e.g. `Kiyose-shi`).
    pub locality: String,
    /// 生年月日.
    #[serde(deserialize_with = "de_date")]
    pub birth_date: Date,
    /// Sex code, one ASCII digit (`1`, `2`, `9`, `0`).
    pub sex: String,
    /// The individual number: 11 digits (the check digit is appended) or 12 (checked).
    pub my_number: String,
}

impl core::fmt::Debug for PersonSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PersonSpec(<redacted>)")
    }
}

/// Facts on the card face and in the common AP.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaceSpec {
    /// Card expiry.
    #[serde(deserialize_with = "de_date")]
    pub expiry: Date,
    /// 4-digit security code.
    pub security_code: String,
    /// 15-digit card serial.
    pub serial: String,
    /// 5-digit municipality code.
    pub municipality_code: String,
}

/// A revocation written into a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSpec {
    /// Revocation date (00:00:00Z).
    #[serde(deserialize_with = "de_date")]
    pub date: Date,
    /// Reason: one of the seven the JPKI uses, by its RFC 5280 name, kebab-case
    /// (`key-compromise`, `superseded`, `affiliation-changed`, ...).
    #[serde(deserialize_with = "de_reason")]
    pub reason: RevocationReason,
}

/// One certificate of the card.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertSpec {
    /// Issue date: notBefore.
    #[serde(deserialize_with = "de_date")]
    pub issued: Date,
    /// notAfter date; default: 5th birthday after issue, capped by the card expiry.
    #[serde(default, deserialize_with = "de_opt_date")]
    pub expires: Option<Date>,
    /// Listed on the simulator's CRL when present.
    #[serde(default)]
    pub revoked: Option<RevocationSpec>,
    /// Key label override (default `<card_id>/auth` or `<card_id>/sign`).
    #[serde(default)]
    pub key: Option<String>,
    /// Serial override (default derived from the PKI seed and the key label).
    #[serde(default)]
    pub serial: Option<u64>,
}

/// A PIN or password. `Debug` redacts the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSpec {
    /// The value.
    pub value: String,
    /// Retry limit.
    pub limit: u8,
    /// Tries left at issue; defaults to `limit`.
    #[serde(default)]
    pub remaining: Option<u8>,
}

impl core::fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecretSpec")
            .field("limit", &self.limit)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// The card's PINs; an absent one does not exist on the card.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinsSpec {
    /// Authentication PIN (4 digits).
    #[serde(default)]
    pub auth: Option<SecretSpec>,
    /// Signing password (6–16 of A–Z, 0–9); present exactly when the signing certificate is.
    #[serde(default)]
    pub sign: Option<SecretSpec>,
    /// Text AP PIN (4 digits).
    #[serde(default)]
    pub text: Option<SecretSpec>,
    /// Retry limit of 照合番号A/B.
    #[serde(default = "default_collation_limit")]
    pub collation_limit: u8,
}

impl Default for PinsSpec {
    fn default() -> Self {
        Self {
            auth: None,
            sign: None,
            text: None,
            collation_limit: default_collation_limit(),
        }
    }
}

fn default_collation_limit() -> u8 {
    10
}

/// How the card reaches the host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// ATR as hex, spaces allowed.
    pub atr: String,
    /// Contactless or contact.
    pub contactless: bool,
    /// Extended-length APDUs accepted.
    pub extended_length: bool,
    /// Most response data in one response.
    pub max_response_data: usize,
    /// A reader that caps answers at this many data bytes without announcing it.
    #[serde(default)]
    pub answer_cap: Option<usize>,
    /// What the capping reader does with the rest: `get-response` (`61xx`, the default) or
    /// `dropped` (the answer ends short with the card's `9000`).
    #[serde(default)]
    pub capped_rest: Option<String>,
}

/// A field that breaks a rule of the card, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidField {
    /// The field, as a dotted path (`link.atr`).
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

impl LinkSpec {
    /// The link these settings describe, or the field (`link.…`) that breaks a rule and how.
    ///
    /// # Errors
    /// An ATR that is not hex or not 2–33 bytes starting with `3B`/`3F`; a largest response
    /// outside 1–65536, or above 256 without extended length.
    pub fn link_profile(&self) -> Result<LinkProfile, InvalidField> {
        let invalid = |field, problem| InvalidField { field, problem };
        let atr = parse_hex(&self.atr).ok_or(invalid("link.atr", "not hex"))?;
        if !(2..=33).contains(&atr.len()) || !matches!(atr.first(), Some(0x3B | 0x3F)) {
            return Err(invalid("link.atr", "2-33 bytes starting with 3B or 3F"));
        }
        if self.max_response_data == 0 || self.max_response_data > 65_536 {
            return Err(invalid("link.max_response_data", "must be 1-65536"));
        }
        if !self.extended_length && self.max_response_data > 256 {
            return Err(invalid(
                "link.max_response_data",
                "at most 256 without extended length",
            ));
        }
        let rest = match self.capped_rest.as_deref() {
            None | Some("get-response") => CappedRest::GetResponse,
            Some("dropped") => CappedRest::Dropped,
            Some(_) => {
                return Err(invalid("link.capped_rest", "get-response or dropped"));
            }
        };
        if self.capped_rest.is_some() && self.answer_cap.is_none() {
            return Err(invalid("link.capped_rest", "needs link.answer_cap"));
        }
        let answer_cap = match self.answer_cap {
            None => None,
            Some(max) if (1..=65_536).contains(&max) => Some(AnswerCap { max, rest }),
            Some(_) => return Err(invalid("link.answer_cap", "must be 1-65536")),
        };
        Ok(LinkProfile {
            atr,
            contactless: self.contactless,
            extended_length: self.extended_length,
            max_response_data: self.max_response_data,
            answer_cap,
        })
    }
}

/// One resolved profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Profile {
    /// The profile's name (the `[profile.<name>]` key).
    #[serde(skip)]
    pub name: String,
    /// One line about the card.
    #[serde(default)]
    pub description: String,
    /// Identity of the physical card: keys, serials and opaque names derive from it.
    pub card_id: String,
    /// The fixed "now" at which the profile shows its case.
    #[serde(deserialize_with = "de_date")]
    pub reference_date: Date,
    /// Token kind.
    pub token: TokenSetting,
    /// The holder.
    pub person: PersonSpec,
    /// Card face.
    pub face: FaceSpec,
    /// Authentication certificate.
    pub auth: CertSpec,
    /// Signing certificate, if the card has one.
    #[serde(default)]
    pub sign: Option<CertSpec>,
    /// PINs.
    #[serde(default)]
    pub pins: PinsSpec,
    /// Link.
    pub link: LinkSpec,
}

fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
    /// Takes a TOML date, or the same text quoted (merged tables hand dates over as strings).
    struct DateVisitor;

    impl<'de> serde::de::Visitor<'de> for DateVisitor {
        type Value = toml::value::Datetime;

        fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("a date such as 1980-02-17")
        }

        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            s.parse().map_err(E::custom)
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            toml::value::Datetime::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }

    let dt = d.deserialize_any(DateVisitor)?;
    match (dt.date, dt.time, dt.offset) {
        (Some(date), None, None) => Ok(Date {
            year: date.year,
            month: date.month,
            day: date.day,
        }),
        _ => Err(D::Error::custom("expected a date such as 1980-02-17")),
    }
}

fn de_reason<'de, D: Deserializer<'de>>(d: D) -> Result<RevocationReason, D::Error> {
    let name = String::deserialize(d)?;
    RevocationReason::from_name(&name)
        .filter(|r| r.is_jpki())
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown revocation reason `{name}` (key-compromise, superseded, ...)"
            ))
        })
}

fn de_opt_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
    de_date(d).map(Some)
}

/// The check digit of an individual number: the card crate's.
pub use mynacard_card::my_number_check_digit;

/// Whether `number` is 12 digits with a correct check digit.
pub fn is_valid_my_number(number: &str) -> bool {
    mynacard_card::MyNumber::new(number).is_ok()
}

/// Whether `date` is a real calendar date (years 1868–9999).
pub fn is_valid_date(date: Date) -> bool {
    (1868..=9999).contains(&date.year) && date.is_valid()
}

/// The holder's birthday in `year` (29 February → 28 February in common years).
fn birthday_in(birth: Date, year: u16) -> Date {
    let day = birth
        .day
        .min(mynacard_cert::calendar::days_in_month(year, birth.month));
    Date {
        year,
        month: birth.month,
        day,
    }
}

/// The `n`-th birthday strictly after `after`.
pub fn nth_birthday_after(birth: Date, after: Date, n: u16) -> Date {
    let first_year = if birthday_in(birth, after.year) > after {
        after.year
    } else {
        after.year.saturating_add(1)
    };
    birthday_in(birth, first_year.saturating_add(n.saturating_sub(1)))
}

/// Parse hex with optional spaces (`3B C5 FF`).
fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let compact: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !compact.len().is_multiple_of(2) {
        return None;
    }
    compact
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

fn all_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

impl Profile {
    fn invalid(&self, field: &'static str, problem: &'static str) -> ProfileError {
        ProfileError::Invalid {
            profile: self.name.clone(),
            field,
            problem,
        }
    }

    fn pki_error(&self, source: PkiError) -> ProfileError {
        ProfileError::Pki {
            profile: self.name.clone(),
            source,
        }
    }

    /// Check every value against the card's rules.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.card_id.is_empty() {
            return Err(self.invalid("card_id", "empty"));
        }
        if !is_valid_date(self.reference_date) {
            return Err(self.invalid("reference_date", "not a calendar date"));
        }
        let p = &self.person;
        if !p.name.contains('\u{3000}') {
            return Err(self.invalid(
                "person.name",
                "family and given name must be separated by U+3000",
            ));
        }
        if p.address.is_empty() {
            return Err(self.invalid("person.address", "empty"));
        }
        for (field, value, positions) in [
            ("person.name_substitutes", &p.name, &p.name_substitutes),
            (
                "person.address_substitutes",
                &p.address,
                &p.address_substitutes,
            ),
        ] {
            if let Some(pos) = positions
                && (pos.chars().count() != value.chars().count()
                    || !pos.bytes().all(|b| b == b'0' || b == b'1'))
            {
                return Err(self.invalid(field, "one 0 or 1 per character of the value"));
            }
        }
        if p.locality.is_empty() || !p.locality.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(self.invalid("person.locality", "romanised ASCII, no spaces"));
        }
        if !is_valid_date(p.birth_date) || p.birth_date.era().is_none() {
            return Err(self.invalid("person.birth_date", "not a calendar date from 明治 on"));
        }
        if p.sex.len() != 1 || !p.sex.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.invalid("person.sex", "one ASCII digit"));
        }
        self.my_number()?;
        let f = &self.face;
        if !is_valid_date(f.expiry) {
            return Err(self.invalid("face.expiry", "not a calendar date"));
        }
        if !all_digits(&f.security_code, 4) {
            return Err(self.invalid("face.security_code", "4 digits"));
        }
        if !all_digits(&f.serial, 15) {
            return Err(self.invalid("face.serial", "15 digits"));
        }
        if !all_digits(&f.municipality_code, 5) {
            return Err(self.invalid("face.municipality_code", "5 digits"));
        }
        for (field, cert) in [("auth", Some(&self.auth)), ("sign", self.sign.as_ref())] {
            let Some(cert) = cert else { continue };
            if !is_valid_date(cert.issued) {
                return Err(self.invalid(field, "issued is not a calendar date"));
            }
            if let Some(exp) = cert.expires
                && (!is_valid_date(exp) || exp <= cert.issued)
            {
                return Err(self.invalid(field, "expires must be a date after issued"));
            }
            if cert.revoked.is_some_and(|r| !is_valid_date(r.date)) {
                return Err(self.invalid(field, "revocation date is not a calendar date"));
            }
            if cert.serial == Some(0) {
                return Err(self.invalid(field, "serial must be positive"));
            }
        }
        let pins = &self.pins;
        let four_digits = |v: &str| all_digits(v, 4);
        let password = |v: &str| {
            (6..=16).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        };
        for (field, secret, format_ok, problem) in [
            (
                "pins.auth",
                &pins.auth,
                &four_digits as &dyn Fn(&str) -> bool,
                "4 digits",
            ),
            ("pins.text", &pins.text, &four_digits, "4 digits"),
            (
                "pins.sign",
                &pins.sign,
                &password,
                "6-16 characters of A-Z and 0-9",
            ),
        ] {
            let Some(s) = secret else { continue };
            if !format_ok(&s.value) {
                return Err(self.invalid(field, problem));
            }
            // The remaining count travels in the low nibble of 63Cx.
            if s.limit == 0 || s.limit > 15 {
                return Err(self.invalid(field, "limit must be 1-15"));
            }
            if s.remaining.is_some_and(|r| r > s.limit) {
                return Err(self.invalid(field, "remaining exceeds limit"));
            }
        }
        if pins.collation_limit == 0 || pins.collation_limit > 15 {
            return Err(self.invalid("pins.collation_limit", "must be 1-15"));
        }
        if self.sign.is_some() != pins.sign.is_some() {
            return Err(self.invalid(
                "pins.sign",
                "a signing password exists exactly when the signing certificate does",
            ));
        }
        self.link
            .link_profile()
            .map_err(|e| self.invalid(e.field, e.problem))?;
        Ok(())
    }

    /// The 12-digit individual number (check digit appended or verified).
    pub fn my_number(&self) -> Result<Zeroizing<String>, ProfileError> {
        let n = &self.person.my_number;
        if let Some(check) = my_number_check_digit(n) {
            return Ok(Zeroizing::new(format!("{n}{check}")));
        }
        if is_valid_my_number(n) {
            return Ok(Zeroizing::new(n.clone()));
        }
        Err(self.invalid(
            "person.my_number",
            "11 digits, or 12 digits with a correct check digit",
        ))
    }

    fn key_label(&self, kind: CaKind) -> String {
        let spec = match kind {
            CaKind::Auth => Some(&self.auth),
            CaKind::Sign => self.sign.as_ref(),
        };
        spec.and_then(|s| s.key.clone()).unwrap_or_else(|| {
            format!(
                "{}/{}",
                self.card_id,
                match kind {
                    CaKind::Auth => "auth",
                    CaKind::Sign => "sign",
                }
            )
        })
    }

    fn cert_spec(&self, kind: CaKind) -> Option<&CertSpec> {
        match kind {
            CaKind::Auth => Some(&self.auth),
            CaKind::Sign => self.sign.as_ref(),
        }
    }

    /// The serial number of the card's certificate of `kind`, if the card has one.
    pub fn serial(&self, kind: CaKind, pki: &TestPki) -> Option<u64> {
        let spec = self.cert_spec(kind)?;
        Some(
            spec.serial
                .unwrap_or_else(|| pki.serial(&self.key_label(kind))),
        )
    }

    /// notBefore and notAfter dates of the certificate of `kind`.
    pub fn validity(&self, kind: CaKind) -> Option<(Date, Date)> {
        let auth_end = self.auth.expires.unwrap_or_else(|| {
            nth_birthday_after(self.person.birth_date, self.auth.issued, 5).min(self.face.expiry)
        });
        let spec = self.cert_spec(kind)?;
        let end = match kind {
            CaKind::Auth => auth_end,
            CaKind::Sign => spec
                .expires
                .unwrap_or_else(|| {
                    nth_birthday_after(self.person.birth_date, spec.issued, 5).min(self.face.expiry)
                })
                .min(auth_end),
        };
        Some((spec.issued, end))
    }

    /// The CRL entries this profile contributes for `kind` (empty unless a certificate of that
    /// kind is marked revoked).
    pub fn revocations(
        &self,
        kind: CaKind,
        pki: &TestPki,
    ) -> Result<Vec<Revocation>, ProfileError> {
        let (Some(spec), Some(serial)) = (self.cert_spec(kind), self.serial(kind, pki)) else {
            return Ok(Vec::new());
        };
        let Some(rev) = spec.revoked else {
            return Ok(Vec::new());
        };
        Ok(vec![Revocation {
            serial,
            date: utc(rev.date, 0, 0, 0).map_err(|e| self.pki_error(e))?,
            reason: rev.reason,
        }])
    }

    /// The holder attributes the signing certificate carries.
    pub fn holder_attributes(&self) -> Result<HolderAttributes, ProfileError> {
        let p = &self.person;
        Ok(HolderAttributes {
            name: p.name.clone(),
            name_substitutes: p
                .name_substitutes
                .clone()
                .unwrap_or_else(|| no_substitutes(&p.name)),
            sex: crate::pki::jpki_sex_code(p.sex.as_bytes().first().copied().unwrap_or(b'0'))
                .to_owned(),
            birth_date: crate::pki::jpki_birth_date(p.birth_date).map_err(|e| self.pki_error(e))?,
            address: p.address.clone(),
            address_substitutes: p
                .address_substitutes
                .clone()
                .unwrap_or_else(|| no_substitutes(&p.address)),
        })
    }

    fn credential(&self, kind: CaKind, pki: &TestPki) -> Result<Option<Credential>, ProfileError> {
        let (Some((from, to)), Some(serial)) = (self.validity(kind), self.serial(kind, pki)) else {
            return Ok(None);
        };
        let label = self.key_label(kind);
        let key = pki.key(&label).map_err(|e| self.pki_error(e))?;
        let (locality, holder) = match kind {
            CaKind::Auth => (None, None),
            CaKind::Sign => (
                Some(self.person.locality.clone()),
                Some(self.holder_attributes()?),
            ),
        };
        let spec = LeafSpec {
            kind,
            serial,
            common_name: pki.opaque_common_name(&label, &self.face.municipality_code),
            locality,
            crl_partition: Some(self.person.locality.clone()),
            not_before: utc(from, 0, 0, 0).map_err(|e| self.pki_error(e))?,
            not_after: utc(to, 14, 59, 59).map_err(|e| self.pki_error(e))?,
            holder,
            public_key: key.to_public_key(),
        };
        let cert_der = pki.issue(&spec).map_err(|e| self.pki_error(e))?;
        Ok(Some(Credential { cert_der, key }))
    }

    fn secret(spec: &Option<SecretSpec>) -> Option<Secret> {
        spec.as_ref().map(|s| Secret {
            value: Zeroizing::new(s.value.as_bytes().to_vec()),
            limit: s.limit,
            remaining: s.remaining.unwrap_or(s.limit),
        })
    }

    /// Validate the profile and build the card it describes, issuing its certificates from
    /// `pki`. Deterministic: the same profile and PKI seed give the same image.
    pub fn build_image(&self, pki: &TestPki) -> Result<CardImage, ProfileError> {
        self.validate()?;
        let auth = self
            .credential(CaKind::Auth, pki)?
            .ok_or_else(|| self.invalid("auth", "missing"))?;
        let sign = self.credential(CaKind::Sign, pki)?;
        let ap_key = |purpose: &str| {
            pki.key(&format!("{}/{purpose}", self.card_id))
                .map_err(|e| self.pki_error(e))
        };
        let person = Person {
            name: self.person.name.clone(),
            address: self.person.address.clone(),
            birth_date: self.person.birth_date,
            sex: SexCode(self.person.sex.as_bytes().first().copied().unwrap_or(b'0')),
            my_number: self.my_number()?,
        };
        let face = CardFace {
            expiry: self.face.expiry,
            security_code: Zeroizing::new(self.face.security_code.clone()),
            serial: self.face.serial.clone(),
            municipality_code: self.face.municipality_code.clone(),
            // As on the real test card: a JPEG 2000 photo, name and address 12 pixels high.
            photo: jp2::photo(&self.card_id, 36, 45),
            name_image: png::text_image(&self.person.name, 216, 12),
            address_image: png::text_image(&self.person.address, 288, 12),
            security_code_image: png::text_image(&self.face.security_code, 24, 12),
        };
        let municipality = &self.face.municipality_code;
        let record_key = |role| {
            pki.record_key(role, municipality)
                .map_err(|e| self.pki_error(e))
        };
        let visual_record_key = record_key(CvcRole::Visual)?;
        let text_record_key = record_key(CvcRole::Text)?;
        let cvcs = pki
            .issue_card_cvcs(
                municipality,
                &self.card_id,
                &visual_record_key,
                &text_record_key,
            )
            .map_err(|e| self.pki_error(e))?;
        Ok(CardImage {
            profile: self.name.clone(),
            token: self.token.into(),
            auth,
            auth_ca_cert: pki.root_der(CaKind::Auth).to_vec(),
            sign,
            sign_ca_cert: pki.root_der(CaKind::Sign).to_vec(),
            auth_pin: Self::secret(&self.pins.auth),
            sign_password: Self::secret(&self.pins.sign),
            text_pin: Self::secret(&self.pins.text),
            collation_limit: self.pins.collation_limit,
            person,
            face,
            text_ap_key: ap_key("text-ap")?,
            card_key: ap_key("visual-ap")?,
            visual_record_key,
            text_record_key,
            cvcs,
            common_ap_key: ap_key("common-ap")?,
            text_sm_key: ap_key("text-sm")?,
            link: self
                .link
                .link_profile()
                .map_err(|e| self.invalid(e.field, e.problem))?,
        })
    }
}

/// Build the card `profile` describes; see [`Profile::build_image`].
pub fn build_image(profile: &Profile, pki: &TestPki) -> Result<CardImage, ProfileError> {
    profile.build_image(pki)
}

impl CardImage {
    /// The built-in profile `name` built on the shared default test PKI.
    pub fn from_profile_name(name: &str) -> Result<CardImage, ProfileError> {
        let pki = TestPki::shared().map_err(|source| ProfileError::Pki {
            profile: name.to_owned(),
            source,
        })?;
        Catalogue::builtin()?.get(name)?.build_image(pki)
    }
}

/// A set of resolved profiles by name.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    /// Resolved TOML tables, kept so later files can use these profiles as a `base`.
    raw: BTreeMap<String, toml::Table>,
    profiles: BTreeMap<String, Profile>,
}

impl Catalogue {
    /// The built-in profiles (parsed once per process).
    pub fn builtin() -> Result<Catalogue, ProfileError> {
        static BUILTIN: OnceLock<Catalogue> = OnceLock::new();
        if let Some(c) = BUILTIN.get() {
            return Ok(c.clone());
        }
        let parsed = Self::parse(BUILTIN_PROFILES)?;
        Ok(BUILTIN.get_or_init(|| parsed).clone())
    }

    /// Profiles from TOML text alone (bases must be in the same text).
    pub fn parse(text: &str) -> Result<Catalogue, ProfileError> {
        let mut c = Catalogue::default();
        c.extend_from_str(text)?;
        Ok(c)
    }

    /// The built-in profiles plus those of the file at `path`, which may base on built-ins and
    /// replace them by name.
    pub fn load(path: &Path) -> Result<Catalogue, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut c = Self::builtin()?;
        c.extend_from_str(&text)?;
        Ok(c)
    }

    /// Add (or replace) the profiles of `text`; their `base` may name profiles already here.
    pub fn extend_from_str(&mut self, text: &str) -> Result<(), ProfileError> {
        let mut doc: toml::Table = toml::from_str(text).map_err(ProfileError::Toml)?;
        let Some(toml::Value::Table(own)) = doc.remove("profile") else {
            return Err(ProfileError::NoProfiles);
        };
        let mut resolved: BTreeMap<String, toml::Table> = BTreeMap::new();
        for name in own.keys() {
            resolve(name, &own, &self.raw, &mut resolved, &mut Vec::new())?;
        }
        let mut profiles = BTreeMap::new();
        for (name, table) in &resolved {
            let mut profile: Profile =
                toml::Value::Table(table.clone())
                    .try_into()
                    .map_err(|source| ProfileError::Schema {
                        profile: name.clone(),
                        source,
                    })?;
            profile.name = name.clone();
            profile.validate()?;
            profiles.insert(name.clone(), profile);
        }
        self.raw.extend(resolved);
        self.profiles.extend(profiles);
        Ok(())
    }

    /// The profile `name`.
    pub fn get(&self, name: &str) -> Result<&Profile, ProfileError> {
        self.profiles
            .get(name)
            .ok_or_else(|| ProfileError::UnknownProfile(name.to_owned()))
    }

    /// Profile names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }

    /// All profiles, sorted by name.
    pub fn profiles(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }

    /// Every revocation of `kind` the profiles declare (each card once).
    pub fn revocations(
        &self,
        kind: CaKind,
        pki: &TestPki,
    ) -> Result<Vec<Revocation>, ProfileError> {
        let mut all = Vec::new();
        for p in self.profiles.values() {
            all.extend(p.revocations(kind, pki)?);
        }
        all.sort_by_key(|r| r.serial);
        all.dedup_by_key(|r| r.serial);
        Ok(all)
    }

    /// The CRL of `kind` the simulator publishes at `this_update`: every revocation of the
    /// catalogue, CRL number 1, next update a day later, signed by the root of `kind`.
    pub fn crl_der(
        &self,
        kind: CaKind,
        pki: &TestPki,
        this_update: DateTime,
    ) -> Result<Vec<u8>, ProfileError> {
        let wrap = |source| ProfileError::Pki {
            profile: String::from("<catalogue>"),
            source,
        };
        let spec = CrlSpec::daily(this_update, self.revocations(kind, pki)?).map_err(wrap)?;
        pki.crl_der(kind, &spec).map_err(wrap)
    }
}

/// Resolve `name` (merge its bases, apply `remove`) into `done`.
fn resolve(
    name: &str,
    own: &toml::Table,
    parent: &BTreeMap<String, toml::Table>,
    done: &mut BTreeMap<String, toml::Table>,
    stack: &mut Vec<String>,
) -> Result<toml::Table, ProfileError> {
    if let Some(t) = done.get(name) {
        return Ok(t.clone());
    }
    let directive = |key: &str| ProfileError::BadDirective {
        profile: name.to_owned(),
        key: key.to_owned(),
    };
    let Some(toml::Value::Table(table)) = own.get(name) else {
        return match parent.get(name) {
            Some(t) => Ok(t.clone()),
            None => Err(ProfileError::UnknownProfile(name.to_owned())),
        };
    };
    if stack.iter().any(|s| s == name) {
        return Err(ProfileError::BaseCycle(name.to_owned()));
    }
    stack.push(name.to_owned());
    let mut table = table.clone();
    let base = match table.remove("base") {
        None => None,
        Some(toml::Value::String(b)) => Some(b),
        Some(_) => return Err(directive("base")),
    };
    let remove = match table.remove("remove") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                toml::Value::String(s) => Ok(s),
                _ => Err(directive("remove")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(directive("remove")),
    };
    let mut merged = match base {
        Some(base) => {
            // A profile that names itself as base in a user file means the parent's version.
            let base_table = if base == name {
                parent.get(&base).cloned()
            } else if own.contains_key(&base) {
                Some(resolve(&base, own, parent, done, stack)?)
            } else {
                parent.get(&base).cloned()
            };
            let mut b = base_table.ok_or_else(|| ProfileError::UnknownBase {
                profile: name.to_owned(),
                base: base.clone(),
            })?;
            merge(&mut b, table);
            b
        }
        None => table,
    };
    for path in &remove {
        if !remove_path(&mut merged, path) {
            return Err(directive(path));
        }
    }
    stack.pop();
    done.insert(name.to_owned(), merged.clone());
    Ok(merged)
}

/// Deep-merge `over` into `base`: tables merge key by key, anything else replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Remove a dotted path; false if it was not there.
fn remove_path(table: &mut toml::Table, path: &str) -> bool {
    match path.split_once('.') {
        None => table.remove(path).is_some(),
        Some((head, rest)) => match table.get_mut(head) {
            Some(toml::Value::Table(inner)) => remove_path(inner, rest),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(year: u16, month: u8, day: u8) -> Date {
        Date { year, month, day }
    }

    #[test]
    fn check_digit_of_the_published_sample() {
        assert_eq!(my_number_check_digit("12345678901"), Some(8));
        assert!(is_valid_my_number("123456789018"));
        assert!(!is_valid_my_number("123456789017"));
        assert_eq!(my_number_check_digit("1234567890"), None);
        assert_eq!(my_number_check_digit("1234567890a"), None);
        assert!(!is_valid_my_number("１２３４５６７８９０１８"));
    }

    #[test]
    fn fifth_birthday_after_issue() {
        // The real test card: issued 2025-10-27, born 02-17, auth valid to 2030-02-17.
        assert_eq!(
            nth_birthday_after(d(1980, 2, 17), d(2025, 10, 27), 5),
            d(2030, 2, 17)
        );
        // A birthday on the issue day is not "after" it.
        assert_eq!(
            nth_birthday_after(d(1980, 2, 17), d(2025, 2, 17), 1),
            d(2026, 2, 17)
        );
        assert_eq!(
            nth_birthday_after(d(1980, 2, 17), d(2025, 2, 16), 1),
            d(2025, 2, 17)
        );
        assert_eq!(
            nth_birthday_after(d(2000, 2, 29), d(2020, 3, 1), 1),
            d(2021, 2, 28)
        );
        assert_eq!(
            nth_birthday_after(d(2000, 2, 29), d(2023, 3, 1), 1),
            d(2024, 2, 29)
        );
    }

    #[test]
    fn merge_and_remove() {
        let mut base: toml::Table = toml::from_str("a = 1\n[t]\nx = 1\ny = 2\n").unwrap();
        let over: toml::Table = toml::from_str("[t]\ny = 3\nz = 4\n").unwrap();
        merge(&mut base, over);
        assert_eq!(base["t"]["x"].as_integer(), Some(1));
        assert_eq!(base["t"]["y"].as_integer(), Some(3));
        assert_eq!(base["t"]["z"].as_integer(), Some(4));
        assert!(remove_path(&mut base, "t.x"));
        assert!(!remove_path(&mut base, "t.x"));
        assert!(!remove_path(&mut base, "a.b"));
        assert!(base["t"].get("x").is_none());
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(
            parse_hex("3B 80 80 01 01"),
            Some(vec![0x3B, 0x80, 0x80, 1, 1])
        );
        assert_eq!(parse_hex("3B8"), None);
        assert_eq!(parse_hex("zz"), None);
    }
}
