//! PINs, passwords and collation numbers: validated before anything is sent, zeroized on drop,
//! redacted in `Debug`. Also the names and states of the card's PINs.

use core::fmt;

use zeroize::Zeroizing;

use crate::date::Date;

/// Why a PIN, password or collation number was refused before it reached the card.
///
/// The messages never contain the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PinFormatError {
    /// Wrong number of characters.
    #[error("{what} must be {min}-{max} characters, got {actual}")]
    Length {
        /// What kind of value.
        what: &'static str,
        /// Fewest characters allowed.
        min: usize,
        /// Most characters allowed.
        max: usize,
        /// Characters given.
        actual: usize,
    },
    /// A character outside the allowed set (digits, or A-Z and digits for the signing password).
    #[error("{what}: character {position} is not allowed")]
    Character {
        /// What kind of value.
        what: &'static str,
        /// 1-based position of the first offending character.
        position: usize,
    },
    /// The check digit of a 12-digit individual number is wrong.
    #[error("individual number check digit is wrong")]
    CheckDigit,
    /// A date that cannot be written as the card expects (before 明治 or after 9999).
    #[error("date outside the supported range")]
    Date,
}

fn digits(
    what: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, PinFormatError> {
    let actual = value.chars().count();
    if !(min..=max).contains(&actual) {
        return Err(PinFormatError::Length {
            what,
            min,
            max,
            actual,
        });
    }
    if let Some(position) = value.chars().position(|c| !c.is_ascii_digit()) {
        return Err(PinFormatError::Character {
            what,
            position: position + 1,
        });
    }
    Ok(Zeroizing::new(value.as_bytes().to_vec()))
}

macro_rules! secret_debug {
    ($t:ty, $name:literal) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!($name, "(<redacted>)"))
            }
        }
    };
}

/// A 4-digit PIN: the JPKI authentication PIN (利用者証明用), the text AP PIN
/// (券面事項入力補助用) or the common AP PIN (個人番号カード用).
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<Vec<u8>>);
secret_debug!(Pin, "Pin");

impl Pin {
    /// Validates a PIN: exactly four ASCII digits.
    ///
    /// # Errors
    /// [`PinFormatError`] without sending anything.
    pub fn new(pin: &str) -> Result<Pin, PinFormatError> {
        digits("PIN", pin, 4, 4).map(Pin)
    }

    pub(crate) fn bytes(&self) -> Zeroizing<Vec<u8>> {
        self.0.clone()
    }

    /// The digits, moved out: the PIN's one copy goes where it is used.
    pub(crate) fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.0
    }
}

/// The signing password (署名用パスワード): 6–16 characters of A–Z and 0–9.
///
/// Lower-case letters are upper-cased, because the card compares the bytes as sent and expects
/// upper case; a lower-case password would otherwise spend an attempt.
#[derive(Clone, PartialEq, Eq)]
pub struct SignPassword(Zeroizing<Vec<u8>>);
secret_debug!(SignPassword, "SignPassword");

impl SignPassword {
    /// Validates and upper-cases a signing password.
    ///
    /// # Errors
    /// [`PinFormatError`] without sending anything.
    pub fn new(password: &str) -> Result<SignPassword, PinFormatError> {
        const WHAT: &str = "signing password";
        let actual = password.chars().count();
        if !(6..=16).contains(&actual) {
            return Err(PinFormatError::Length {
                what: WHAT,
                min: 6,
                max: 16,
                actual,
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(actual));
        for (i, c) in password.chars().enumerate() {
            let c = c.to_ascii_uppercase();
            if !(c.is_ascii_uppercase() || c.is_ascii_digit()) {
                return Err(PinFormatError::Character {
                    what: WHAT,
                    position: i + 1,
                });
            }
            // ASCII checked above, so the cast keeps the character.
            out.push(c as u8);
        }
        Ok(SignPassword(out))
    }

    pub(crate) fn bytes(&self) -> Zeroizing<Vec<u8>> {
        self.0.clone()
    }
}

/// The 12-digit individual number (個人番号). Personal data: zeroized on drop, redacted in
/// `Debug`, never read from the card unless a method named after it is called.
#[derive(Clone, PartialEq, Eq)]
pub struct MyNumber(Zeroizing<String>);
secret_debug!(MyNumber, "MyNumber");

impl MyNumber {
    /// Validates an individual number: 12 digits with a correct check digit.
    ///
    /// # Errors
    /// [`PinFormatError`].
    pub fn new(number: &str) -> Result<MyNumber, PinFormatError> {
        digits("individual number", number, 12, 12)?;
        // Twelve ASCII digits, so both halves are digits.
        if my_number_check_digit(&number[..11]) != Some(number.as_bytes()[11] - b'0') {
            return Err(PinFormatError::CheckDigit);
        }
        Ok(MyNumber(Zeroizing::new(number.to_owned())))
    }

    /// The twelve digits. Handle with care: this is the value the law restricts.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.as_bytes().to_vec())
    }
}

/// The check digit (検査用数字) of an individual number from its first 11 digits; `None`
/// unless `first11` is exactly 11 ASCII digits.
///
/// The formula of 番号法施行令 第8条, set out in 総務省令第85号 (2014) 第5条: with P(n) the
/// n-th digit counted leftwards from the 11th, Q(n) = n + 1 for n ≤ 6 and n − 5 for n ≥ 7, and
/// r = Σ P(n)·Q(n) mod 11, the check digit is 0 when r ≤ 1, else 11 − r. The specimen number
/// `12345678901` has the check digit 8.
pub fn my_number_check_digit(first11: &str) -> Option<u8> {
    let digits = first11.as_bytes();
    if digits.len() != 11 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let n = i as u32 + 1;
            let q = if n <= 6 { n + 1 } else { n - 5 };
            u32::from(d - b'0') * q
        })
        .sum();
    let r = sum % 11;
    Some(if r <= 1 { 0 } else { (11 - r) as u8 })
}

/// 照合番号B: birth date (`YYMMDD` in the Japanese era year) ‖ card expiry year (4 digits) ‖
/// 4-digit security code, 14 digits. It opens the card-face records without a PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct CollationB(Zeroizing<Vec<u8>>);
secret_debug!(CollationB, "CollationB");

impl CollationB {
    /// Builds 照合番号B from what is printed on the card.
    ///
    /// # Errors
    /// [`PinFormatError`] for a security code that is not four digits or an unsupported date.
    pub fn new(
        birth_date: Date,
        expiry_year: u16,
        security_code: &str,
    ) -> Result<CollationB, PinFormatError> {
        let code = digits("security code", security_code, 4, 4)?;
        if !(1000..=9999).contains(&expiry_year) {
            return Err(PinFormatError::Date);
        }
        let mut out = BirthDateKey::new(birth_date)?.0;
        out.extend_from_slice(format!("{expiry_year:04}").as_bytes());
        out.extend_from_slice(&code);
        Ok(CollationB(out))
    }

    /// Takes 14 digits as they are (for example read by a camera from the card face).
    ///
    /// # Errors
    /// [`PinFormatError`].
    pub fn from_digits(digits14: &str) -> Result<CollationB, PinFormatError> {
        digits("collation number B", digits14, 14, 14).map(CollationB)
    }

    /// The fourteen digits, for the party that presents them to the card (a simulated card, a
    /// reader that takes the code as text). Handle with care: it opens the card-face records.
    pub fn expose(&self) -> &str {
        // Built from ASCII digits only.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub(crate) fn bytes(&self) -> Zeroizing<Vec<u8>> {
        self.0.clone()
    }
}

/// The visual AP's birth-date key: `YYMMDD` with the Japanese era year (the first six digits of
/// 照合番号B). It opens only the age record.
#[derive(Clone, PartialEq, Eq)]
pub struct BirthDateKey(Zeroizing<Vec<u8>>);
secret_debug!(BirthDateKey, "BirthDateKey");

impl BirthDateKey {
    /// The key for a birth date.
    ///
    /// # Errors
    /// [`PinFormatError::Date`] for dates before 明治 or invalid dates.
    pub fn new(birth_date: Date) -> Result<BirthDateKey, PinFormatError> {
        let (_, era_year) = birth_date.era().ok_or(PinFormatError::Date)?;
        let text = Zeroizing::new(format!(
            "{:02}{:02}{:02}",
            era_year % 100,
            birth_date.month,
            birth_date.day
        ));
        Ok(BirthDateKey(Zeroizing::new(text.as_bytes().to_vec())))
    }

    /// Takes six digits as they are.
    ///
    /// # Errors
    /// [`PinFormatError`].
    pub fn from_digits(digits6: &str) -> Result<BirthDateKey, PinFormatError> {
        digits("birth-date key", digits6, 6, 6).map(BirthDateKey)
    }

    /// The six digits.
    pub fn expose(&self) -> &str {
        // Built from ASCII digits only.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub(crate) fn bytes(&self) -> Zeroizing<Vec<u8>> {
        self.0.clone()
    }
}

/// The PINs and keys the card protects with a retry counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PinKind {
    /// JPKI authentication PIN (`0018`, 4 digits, 3 tries).
    JpkiAuth,
    /// JPKI signing password (`001B`, 6–16 characters, 5 tries).
    JpkiSign,
    /// Text AP PIN (`0011`, 4 digits, 3 tries).
    TextPin,
    /// Text AP 照合番号A (`0014`).
    TextCollationA,
    /// Text AP 照合番号B (`0015`).
    TextCollationB,
    /// Visual AP birth-date key (`0011`).
    VisualBirthDate,
    /// Visual AP 照合番号B (`0012`).
    VisualCollationB,
    /// Visual AP 照合番号A (`0013`).
    VisualCollationA,
    /// Common AP PIN (`001C`, 4 digits, 3 tries; part of the 個人番号カード用 PIN).
    CommonPin,
}

impl PinKind {
    /// The key's file id within its application.
    pub const fn file_id(self) -> u16 {
        use crate::catalogue::{common, jpki, text, visual};
        match self {
            PinKind::JpkiAuth => jpki::AUTH_PIN,
            PinKind::JpkiSign => jpki::SIGN_PIN,
            PinKind::TextPin => text::PIN,
            PinKind::TextCollationA => text::PIN_A,
            PinKind::TextCollationB => text::PIN_B,
            PinKind::VisualBirthDate => visual::BIRTH_DATE_KEY,
            PinKind::VisualCollationB => visual::PIN_B,
            PinKind::VisualCollationA => visual::PIN_A,
            PinKind::CommonPin => common::PIN,
        }
    }

    /// A stable short name (`auth`, `sign`, `text`, ...), used in machine-readable output.
    pub const fn short_name(self) -> &'static str {
        match self {
            PinKind::JpkiAuth => "auth",
            PinKind::JpkiSign => "sign",
            PinKind::TextPin => "text",
            PinKind::TextCollationA => "text-collation-a",
            PinKind::TextCollationB => "text-collation-b",
            PinKind::VisualBirthDate => "visual-birth-date",
            PinKind::VisualCollationB => "visual-collation-b",
            PinKind::VisualCollationA => "visual-collation-a",
            PinKind::CommonPin => "common",
        }
    }
}

impl fmt::Display for PinKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PinKind::JpkiAuth => "authentication PIN",
            PinKind::JpkiSign => "signing password",
            PinKind::TextPin => "text AP PIN",
            PinKind::TextCollationA => "text AP collation number A",
            PinKind::TextCollationB => "text AP collation number B",
            PinKind::VisualBirthDate => "visual AP birth-date key",
            PinKind::VisualCollationB => "visual AP collation number B",
            PinKind::VisualCollationA => "visual AP collation number A",
            PinKind::CommonPin => "common AP PIN",
        })
    }
}

/// What the card says about a PIN's retry counter (the answer to an empty VERIFY, which spends
/// nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PinStatus {
    /// `63Cx`: `x` tries remain (x > 0).
    Remaining(u8),
    /// `63C0` or `6984`: blocked.
    Blocked,
    /// `6300`: the key has no retry limit.
    Unlimited,
    /// `9000`: the card does not report the counter (some cards answer so after a successful
    /// VERIFY).
    NotReported,
    /// `6A88`/`6A82`: the key does not exist on this card.
    NotSet,
}

impl PinStatus {
    /// Tries remaining, when the card reported a count (0 when blocked).
    pub const fn retries(self) -> Option<u8> {
        match self {
            PinStatus::Remaining(n) => Some(n),
            PinStatus::Blocked => Some(0),
            _ => None,
        }
    }
}

/// Whether a VERIFY may use the last remaining try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AttemptPolicy {
    /// Refuse (with [`crate::Error::LastAttemptRefused`]) when only one try is left. The default.
    #[default]
    KeepLastAttempt,
    /// The caller has confirmed with the cardholder that the last try may be used.
    AllowLastAttempt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_accepts_four_digits_only() {
        assert!(Pin::new("1234").is_ok());
        assert_eq!(
            Pin::new("123"),
            Err(PinFormatError::Length {
                what: "PIN",
                min: 4,
                max: 4,
                actual: 3
            })
        );
        assert_eq!(
            Pin::new("12a4"),
            Err(PinFormatError::Character {
                what: "PIN",
                position: 3
            })
        );
        assert!(
            Pin::new("１２３４").is_err(),
            "full-width digits are refused"
        );
    }

    #[test]
    fn sign_password_is_upper_cased_and_checked() {
        let p = SignPassword::new("abc123").unwrap();
        assert_eq!(p.bytes().as_slice(), b"ABC123");
        assert!(SignPassword::new("ABC12").is_err());
        assert!(SignPassword::new("ABCDEFGHIJ1234567").is_err());
        assert!(SignPassword::new("ABC-123").is_err());
        assert!(SignPassword::new("ÄBC123").is_err());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let p = Pin::new("9876").unwrap();
        let s = SignPassword::new("SECRET99").unwrap();
        let text = format!("{p:?} {s:?}");
        assert!(!text.contains("9876") && !text.contains("SECRET"), "{text}");
    }

    #[test]
    fn my_number_check_digit_of_the_specimen() {
        // 12345678901 → weights from the right: check digit 8 (the specimen card's
        // 123456789012 is not a valid number).
        assert_eq!(super::my_number_check_digit("12345678901"), Some(8));
        assert!(MyNumber::new("123456789012").is_err());
        assert_eq!(super::my_number_check_digit("1234567890"), None);
        assert_eq!(super::my_number_check_digit("1234567890a"), None);
        // r ≤ 1 gives 0: 00000000001 sums to 2 → r = 2 → 9; 00000000000 → r = 0 → 0.
        assert_eq!(super::my_number_check_digit("00000000000"), Some(0));
        assert_eq!(super::my_number_check_digit("00000000001"), Some(9));
        assert!(MyNumber::new("123456789018").is_ok());
        assert_eq!(
            MyNumber::new("123456789019"),
            Err(PinFormatError::CheckDigit)
        );
    }

    #[test]
    fn collation_b_uses_the_era_year() {
        let b = CollationB::new(Date::new(1980, 2, 17).unwrap(), 2035, "2285").unwrap();
        assert_eq!(b.bytes().as_slice(), b"55021720352285");
        let reiwa = BirthDateKey::new(Date::new(2020, 2, 24).unwrap()).unwrap();
        assert_eq!(reiwa.bytes().as_slice(), b"020224");
        // The first days of Heisei and Reiwa.
        let h1 = BirthDateKey::new(Date::new(1989, 1, 8).unwrap()).unwrap();
        assert_eq!(h1.bytes().as_slice(), b"010108");
        let s64 = BirthDateKey::new(Date::new(1989, 1, 7).unwrap()).unwrap();
        assert_eq!(s64.bytes().as_slice(), b"640107");
        assert!(CollationB::new(Date::new(1980, 2, 17).unwrap(), 2035, "22x5").is_err());
    }

    #[test]
    fn meiji_keys_count_from_1868_01_25() {
        // 明治元年 begins on 慶応4年1月1日 (1868-01-25); a table starting at the edict's day
        // (1868-10-23) refuses the spring of 明治元年.
        let spring = BirthDateKey::new(Date::new(1868, 5, 1).unwrap()).unwrap();
        assert_eq!(spring.expose(), "010501");
        assert_eq!(
            BirthDateKey::new(Date::new(1868, 1, 24).unwrap()),
            Err(PinFormatError::Date)
        );
        let b = CollationB::new(Date::new(1912, 7, 29).unwrap(), 2030, "0001").unwrap();
        assert_eq!(b.expose(), "45072920300001");
    }
}
