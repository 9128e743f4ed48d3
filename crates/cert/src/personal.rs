//! The holder's personal data in a signing certificate (基本4情報 and their substitutes).
//!
//! J-LIS puts them into subjectAltName `otherName` entries under `1.2.392.200149.8.5.5`, each value
//! an `[0]`-wrapped string. The birth date is `EYYYYMMDD`: an era digit followed by the Gregorian
//! date. Every type here redacts itself in `Debug` and wipes its text when dropped.

use core::fmt;

use der::{Decode, Encode, asn1::Any, oid::ObjectIdentifier};
use x509_cert::ext::pkix::{SubjectAltName, name::GeneralName};
use zeroize::Zeroizing;

use crate::{
    calendar::{Date, Era},
    error::ParseError,
    kind::starts_with,
    names,
};

/// Object identifiers of the personal-data `otherName` entries: the workspace's one table.
///
/// `.2` and `.6` are not the name and address again: they say, one ASCII digit per character of
/// 氏名 (`.1`) and 住所 (`.5`), which characters were replaced by a substitute (`0` where the
/// character is written as registered). The real J-LIS test card's signing certificate carries
/// `00000` for its five-character name (family and given name with U+3000 between) and eighteen
/// `0`s for its eighteen-character address.
pub mod oid {
    use der::oid::ObjectIdentifier;

    /// `jpki-personalData`, the arc all six live under.
    pub const PERSONAL_DATA_ARC: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5");
    /// `.1` 氏名: the holder's name (family and given name separated by U+3000).
    pub const NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.1");
    /// `.2` 氏名代替文字: the substitute-character positions of the name, one digit per
    /// character of [`NAME`].
    pub const NAME_SUBSTITUTE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.2");
    /// `.3` 性別: sex code.
    pub const SEX: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.3");
    /// `.4` 生年月日: birth date as `EYYYYMMDD`.
    pub const BIRTH_DATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.4");
    /// `.5` 住所: address.
    pub const ADDRESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.5");
    /// `.6` 住所代替文字: the substitute-character positions of the address, one digit per
    /// character of [`ADDRESS`].
    pub const ADDRESS_SUBSTITUTE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.5.6");
}

const REDACTED: &str = "<redacted>";

/// One personal-data value: its text when it is a string type, otherwise the DER of the value as
/// found (kept rather than rejected).
#[derive(Clone, PartialEq, Eq)]
pub enum PersonalValue {
    /// A UTF8String, PrintableString, IA5String, BMPString, … decoded to text.
    Text(Zeroizing<String>),
    /// Some other ASN.1 value, as its DER.
    Raw(Zeroizing<Vec<u8>>),
}

impl PersonalValue {
    /// Wraps a text value.
    pub fn text(s: impl Into<String>) -> PersonalValue {
        PersonalValue::Text(Zeroizing::new(s.into()))
    }

    fn from_any(value: &Any) -> PersonalValue {
        match names::attribute_text(value) {
            Some(text) => PersonalValue::Text(Zeroizing::new(text)),
            None => PersonalValue::Raw(Zeroizing::new(value.to_der().unwrap_or_default())),
        }
    }

    /// The text, if the value was a string.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            PersonalValue::Text(t) => Some(t.as_str()),
            PersonalValue::Raw(_) => None,
        }
    }

    /// The DER of a value that was not a string.
    pub fn as_raw(&self) -> Option<&[u8]> {
        match self {
            PersonalValue::Text(_) => None,
            PersonalValue::Raw(r) => Some(r.as_slice()),
        }
    }
}

impl fmt::Debug for PersonalValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// 性別, as the sex code the certificate carries (`1` male, `2` female, `9` not applicable, `0`
/// not known). Any other value is kept as found.
#[derive(Clone, PartialEq, Eq)]
pub enum Sex {
    /// `1`.
    Male,
    /// `2`.
    Female,
    /// `9`.
    NotApplicable,
    /// `0`.
    NotKnown,
    /// Anything else, kept.
    Unrecognized(PersonalValue),
}

impl Sex {
    /// Reads a sex code.
    pub fn from_value(value: PersonalValue) -> Sex {
        match value.as_text() {
            Some("1") => Sex::Male,
            Some("2") => Sex::Female,
            Some("9") => Sex::NotApplicable,
            Some("0") => Sex::NotKnown,
            _ => Sex::Unrecognized(value),
        }
    }

    /// The code for a recognised value (`"1"`, `"2"`, `"9"`, `"0"`), or the kept text.
    pub fn code(&self) -> Option<&str> {
        match self {
            Sex::Male => Some("1"),
            Sex::Female => Some("2"),
            Sex::NotApplicable => Some("9"),
            Sex::NotKnown => Some("0"),
            Sex::Unrecognized(v) => v.as_text(),
        }
    }

    /// `male`, `female`, `not-applicable`, `not-known` or `unrecognized`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::NotApplicable => "not-applicable",
            Sex::NotKnown => "not-known",
            Sex::Unrecognized(_) => "unrecognized",
        }
    }
}

impl fmt::Debug for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A birth date in the certificate's `EYYYYMMDD` form: era digit plus a valid Gregorian date.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct EraDate {
    era: Era,
    year: u16,
    month: u8,
    day: u8,
}

impl EraDate {
    /// Builds a date; `None` if the era digit is above 9, the year above 9999, or the month/day do
    /// not form a Gregorian date.
    pub fn new(era: Era, year: u16, month: u8, day: u8) -> Option<EraDate> {
        let valid = era.digit() <= 9 && year <= 9999 && Date::new(year, month, day).is_some();
        valid.then_some(EraDate {
            era,
            year,
            month,
            day,
        })
    }

    /// Parses exactly nine ASCII digits `EYYYYMMDD`.
    pub fn parse(code: &str) -> Option<EraDate> {
        let b = code.as_bytes();
        if b.len() != 9 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |r: core::ops::Range<usize>| {
            b[r].iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
        };
        let month = u8::try_from(num(5..7)).ok()?;
        let day = u8::try_from(num(7..9)).ok()?;
        EraDate::new(Era::from_digit(b[0] - b'0'), num(1..5), month, day)
    }

    /// The `EYYYYMMDD` form.
    pub fn to_code(&self) -> String {
        format!(
            "{}{:04}{:02}{:02}",
            self.era.digit(),
            self.year,
            self.month,
            self.day
        )
    }

    /// The Gregorian date.
    pub fn gregorian(&self) -> Date {
        Date {
            year: self.year,
            month: self.month,
            day: self.day,
        }
    }

    /// The era digit's meaning.
    pub fn era(&self) -> Era {
        self.era
    }

    /// Gregorian year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Month 1–12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// Day 1–31.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// The year counted in the era (元年 = 1), when the era is known and the year is not before it.
    pub fn era_year(&self) -> Option<u16> {
        self.era.year_in_era(self.year)
    }

    /// `YYYY-MM-DD`.
    pub fn to_iso8601(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl fmt::Debug for EraDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// 生年月日: a decoded date, or the value as found when it is not `EYYYYMMDD`.
#[derive(Clone, PartialEq, Eq)]
pub enum BirthDate {
    /// A well-formed `EYYYYMMDD`.
    Date(EraDate),
    /// Anything else, kept.
    Unrecognized(PersonalValue),
}

impl BirthDate {
    /// Reads a birth-date value.
    pub fn from_value(value: PersonalValue) -> BirthDate {
        match value.as_text().and_then(EraDate::parse) {
            Some(d) => BirthDate::Date(d),
            None => BirthDate::Unrecognized(value),
        }
    }

    /// The decoded date.
    pub fn date(&self) -> Option<&EraDate> {
        match self {
            BirthDate::Date(d) => Some(d),
            BirthDate::Unrecognized(_) => None,
        }
    }
}

impl fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A personal-data `otherName` this crate does not map to a field: an unknown sub-arc, or a
/// repeat of one already seen.
#[derive(Clone, PartialEq, Eq)]
pub struct UnrecognizedEntry {
    /// The `otherName` type id.
    pub oid: ObjectIdentifier,
    /// Its value.
    pub value: PersonalValue,
}

impl fmt::Debug for UnrecognizedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnrecognizedEntry")
            .field("oid", &self.oid)
            .field("value", &self.value)
            .finish()
    }
}

/// The holder's personal data from a signing certificate's subjectAltName.
///
/// `Debug` shows only which fields are present.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PersonalData {
    name: Option<PersonalValue>,
    name_substitute: Option<PersonalValue>,
    sex: Option<Sex>,
    birth_date: Option<BirthDate>,
    address: Option<PersonalValue>,
    address_substitute: Option<PersonalValue>,
    unrecognized: Vec<UnrecognizedEntry>,
    directory_names: Vec<Zeroizing<String>>,
}

impl PersonalData {
    /// Decodes a subjectAltName extension value (the DER inside the extension's OCTET STRING).
    ///
    /// Returns `Ok(None)` when the names hold no entry under the personal-data arc.
    pub fn from_san_der(der: &[u8]) -> Result<Option<PersonalData>, ParseError> {
        let san = SubjectAltName::from_der(der).map_err(|source| ParseError::Extension {
            extension: "subjectAltName",
            source,
        })?;
        Ok(PersonalData::from_general_names(&san.0))
    }

    pub(crate) fn from_general_names(names: &[GeneralName]) -> Option<PersonalData> {
        let mut data = PersonalData::default();
        let mut any_personal = false;
        for name in names {
            match name {
                GeneralName::OtherName(other)
                    if starts_with(&other.type_id, &oid::PERSONAL_DATA_ARC) =>
                {
                    any_personal = true;
                    data.put(other.type_id, PersonalValue::from_any(&other.value));
                }
                GeneralName::DirectoryName(dn) => {
                    data.directory_names
                        .push(Zeroizing::new(names::format_name(dn)));
                }
                _ => {}
            }
        }
        any_personal.then_some(data)
    }

    fn put(&mut self, type_id: ObjectIdentifier, value: PersonalValue) {
        fn set<T>(slot: &mut Option<T>, v: T) -> Option<T> {
            if slot.is_some() {
                Some(v)
            } else {
                *slot = Some(v);
                None
            }
        }
        let rejected = match type_id {
            oid::NAME => set(&mut self.name, value),
            oid::NAME_SUBSTITUTE => set(&mut self.name_substitute, value),
            oid::ADDRESS => set(&mut self.address, value),
            oid::ADDRESS_SUBSTITUTE => set(&mut self.address_substitute, value),
            oid::SEX if self.sex.is_none() => {
                self.sex = Some(Sex::from_value(value));
                None
            }
            oid::BIRTH_DATE if self.birth_date.is_none() => {
                self.birth_date = Some(BirthDate::from_value(value));
                None
            }
            _ => Some(value),
        };
        if let Some(value) = rejected {
            self.unrecognized.push(UnrecognizedEntry {
                oid: type_id,
                value,
            });
        }
    }

    /// 氏名.
    pub fn name(&self) -> Option<&PersonalValue> {
        self.name.as_ref()
    }

    /// 氏名代替文字: which characters of the name are substitutes, one digit per character.
    pub fn name_substitute(&self) -> Option<&PersonalValue> {
        self.name_substitute.as_ref()
    }

    /// 性別.
    pub fn sex(&self) -> Option<&Sex> {
        self.sex.as_ref()
    }

    /// 生年月日.
    pub fn birth_date(&self) -> Option<&BirthDate> {
        self.birth_date.as_ref()
    }

    /// 住所.
    pub fn address(&self) -> Option<&PersonalValue> {
        self.address.as_ref()
    }

    /// 住所代替文字: which characters of the address are substitutes, one digit per character.
    pub fn address_substitute(&self) -> Option<&PersonalValue> {
        self.address_substitute.as_ref()
    }

    /// Entries under the personal-data arc not mapped to a field, in order.
    pub fn unrecognized(&self) -> &[UnrecognizedEntry] {
        &self.unrecognized
    }

    /// `directoryName` entries of the same subjectAltName, formatted with [`crate::format_name`]
    /// (some issuers repeat the holder's name there).
    pub fn directory_names(&self) -> impl Iterator<Item = &str> {
        self.directory_names.iter().map(|s| s.as_str())
    }
}

impl fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |b: bool| if b { REDACTED } else { "absent" };
        f.debug_struct("PersonalData")
            .field("name", &present(self.name.is_some()))
            .field("name_substitute", &present(self.name_substitute.is_some()))
            .field("sex", &present(self.sex.is_some()))
            .field("birth_date", &present(self.birth_date.is_some()))
            .field("address", &present(self.address.is_some()))
            .field(
                "address_substitute",
                &present(self.address_substitute.is_some()),
            )
            .field("unrecognized", &self.unrecognized.len())
            .field("directory_names", &self.directory_names.len())
            .finish()
    }
}
