//! Wire encodings shared by every message: the protocol version marker, base64url binary
//! values, SHA-256 digests and UTC timestamps.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol version every message carries in its `v` field.
pub const PROTOCOL_VERSION: &str = "1";

/// The `v` field: serialises as `"1"` and refuses any other value, so that a message of another
/// protocol version never parses as this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(PROTOCOL_VERSION)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = String::deserialize(d)?;
        if v == PROTOCOL_VERSION {
            Ok(V1)
        } else {
            Err(serde::de::Error::custom(format_args!(
                "unsupported protocol version {v:?} (this implementation speaks \"1\")"
            )))
        }
    }
}

/// Binary data carried as base64url without padding (RFC 4648 §5).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    /// The raw bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The base64url text.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.0)
    }

    /// Parses base64url text (no padding).
    ///
    /// # Errors
    /// [`base64::DecodeError`] for anything that is not unpadded base64url.
    pub fn from_base64url(text: &str) -> Result<Self, base64::DecodeError> {
        URL_SAFE_NO_PAD.decode(text).map(Bytes)
    }
}

impl From<Vec<u8>> for Bytes {
    fn from(v: Vec<u8>) -> Self {
        Bytes(v)
    }
}

impl From<&[u8]> for Bytes {
    fn from(v: &[u8]) -> Self {
        Bytes(v.to_vec())
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Bytes {
    // Binary fields may be certificates or signatures: show the length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes(<{} bytes>)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Bytes::from_base64url(&text).map_err(serde::de::Error::custom)
    }
}

/// A SHA-256 digest, carried as base64url without padding (43 characters).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        let out = sha2::Sha256::digest(data);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&out);
        Sha256Digest(bytes)
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The base64url text.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Lower-case hexadecimal, for people and logs.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses base64url text of exactly 32 bytes.
    ///
    /// # Errors
    /// [`WireError::Base64`] or [`WireError::DigestLength`].
    pub fn from_base64url(text: &str) -> Result<Self, WireError> {
        let raw = URL_SAFE_NO_PAD.decode(text).map_err(WireError::Base64)?;
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| WireError::DigestLength { len: raw.len() })?;
        Ok(Sha256Digest(bytes))
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64url())
    }
}

impl Serialize for Sha256Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for Sha256Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Sha256Digest::from_base64url(&text).map_err(serde::de::Error::custom)
    }
}

/// A 32-byte server nonce, carried as base64url.
pub type Nonce = Sha256Digest;

/// Why a wire value did not parse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not unpadded base64url.
    #[error("not base64url")]
    Base64(#[source] base64::DecodeError),
    /// A digest or nonce that is not 32 bytes.
    #[error("expected 32 bytes, got {len}")]
    DigestLength {
        /// Bytes decoded.
        len: usize,
    },
    /// A timestamp that is not `YYYY-MM-DDTHH:MM:SSZ`.
    #[error("timestamp is not of the form YYYY-MM-DDTHH:MM:SSZ")]
    Timestamp,
}

/// A point in time in whole seconds, UTC, written as RFC 3339 `YYYY-MM-DDTHH:MM:SSZ` (the only
/// form this protocol uses, so that a signed timestamp has exactly one spelling).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UtcTime(i64);

impl UtcTime {
    /// From seconds since 1970-01-01T00:00:00Z.
    pub const fn from_unix(secs: i64) -> Self {
        UtcTime(secs)
    }

    /// Seconds since 1970-01-01T00:00:00Z.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// The current time from the system clock.
    pub fn now() -> Self {
        let secs = match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        UtcTime(secs)
    }

    /// This time plus `secs` seconds (saturating).
    #[must_use]
    pub const fn plus(self, secs: i64) -> Self {
        UtcTime(self.0.saturating_add(secs))
    }

    /// The calendar date and time of day: (year, month, day, hour, minute, second).
    pub fn to_civil(self) -> (i64, u8, u8, u8, u8, u8) {
        let days = self.0.div_euclid(86_400);
        let rem = self.0.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        (
            y,
            m,
            d,
            (rem / 3600) as u8,
            ((rem % 3600) / 60) as u8,
            (rem % 60) as u8,
        )
    }

    /// From a calendar date and time of day (UTC); `None` when a field is out of range.
    pub fn from_civil(year: i64, month: u8, day: u8, hour: u8, min: u8, sec: u8) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || min > 59
            || sec > 59
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(UtcTime(
            days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec),
        ))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SSZ` (four-digit year, upper-case `T` and `Z`).
    ///
    /// # Errors
    /// [`WireError::Timestamp`] for any other spelling.
    pub fn parse(text: &str) -> Result<Self, WireError> {
        let b = text.as_bytes();
        if b.len() != 20
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
            || b[19] != b'Z'
        {
            return Err(WireError::Timestamp);
        }
        let num = |r: core::ops::Range<usize>| -> Result<i64, WireError> {
            let part = &b[r];
            if !part.iter().all(u8::is_ascii_digit) {
                return Err(WireError::Timestamp);
            }
            Ok(part
                .iter()
                .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0')))
        };
        let year = num(0..4)?;
        let small = |r| -> Result<u8, WireError> {
            u8::try_from(num(r)?).map_err(|_| WireError::Timestamp)
        };
        UtcTime::from_civil(
            year,
            small(5..7)?,
            small(8..10)?,
            small(11..13)?,
            small(14..16)?,
            small(17..19)?,
        )
        .ok_or(WireError::Timestamp)
    }
}

impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s) = self.to_civil();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }
}

impl fmt::Debug for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UtcTime({self})")
    }
}

impl Serialize for UtcTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UtcTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        UtcTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Days since 1970-01-01 of a proleptic Gregorian date (the well-known era-based algorithm).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn version_marker_refuses_other_versions() {
        assert_eq!(serde_json::to_string(&V1).unwrap(), "\"1\"");
        assert!(serde_json::from_str::<V1>("\"1\"").is_ok());
        assert!(serde_json::from_str::<V1>("\"2\"").is_err());
        assert!(serde_json::from_str::<V1>("1").is_err());
    }

    #[test]
    fn bytes_are_unpadded_base64url() {
        let b = Bytes(vec![0xFB, 0xFF, 0xFE]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"-__-\"");
        let b = Bytes(vec![0xFF]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"_w\"");
        assert!(serde_json::from_str::<Bytes>("\"_w==\"").is_err());
        assert!(serde_json::from_str::<Bytes>("\"/w\"").is_err());
    }

    #[test]
    fn digest_must_be_32_bytes() {
        let d = Sha256Digest::of(b"abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let text = serde_json::to_string(&d).unwrap();
        assert_eq!(text.len(), 43 + 2);
        assert_eq!(serde_json::from_str::<Sha256Digest>(&text).unwrap(), d);
        assert!(matches!(
            Sha256Digest::from_base64url("AAAA"),
            Err(WireError::DigestLength { len: 3 })
        ));
    }

    #[test]
    fn timestamps_have_one_spelling() {
        let t = UtcTime::parse("2026-04-01T09:30:00Z").unwrap();
        assert_eq!(t.unix(), 1_775_035_800);
        assert_eq!(t.to_string(), "2026-04-01T09:30:00Z");
        assert_eq!(UtcTime::from_unix(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(
            UtcTime::parse("2024-02-29T23:59:59Z").unwrap().to_string(),
            "2024-02-29T23:59:59Z"
        );
        for bad in [
            "2023-02-29T00:00:00Z",
            "2026-04-01T09:30:00+09:00",
            "2026-04-01t09:30:00z",
            "2026-04-01T09:30:00.5Z",
            "2026-13-01T09:30:00Z",
            "2026-04-01T24:00:00Z",
            "+026-04-01T09:30:00Z",
        ] {
            assert!(UtcTime::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn timestamps_round_trip(secs in -62_135_596_800i64..253_402_300_799i64) {
            let t = UtcTime::from_unix(secs);
            prop_assert_eq!(UtcTime::parse(&t.to_string()).unwrap(), t);
        }

        #[test]
        fn timestamp_parser_never_panics(text in "\\PC{0,24}") {
            let _ = UtcTime::parse(&text);
        }
    }
}
