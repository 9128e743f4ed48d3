//! Gregorian dates as the card and its certificates write them, and the Japanese eras (元号)
//! their birth dates are counted in.
//!
//! This is the one era table of the workspace: the signing certificate's `EYYYYMMDD` birth date
//! leads with an era digit, and the visual AP's birth-date key and 照合番号B write the birth year
//! as the year within its era (1980-02-17 is 昭和55 → `550217`).
//!
//! 明治 begins on 1868-01-25, the Gregorian date of 慶応4年1月1日: the edict of 慶応4年9月8日
//! (1868-10-23) renamed the whole year 慶応4年 to 明治元年 (「改慶應四年爲明治元年」), so the era
//! counts from that New Year; JIS X 0301:2019 (Annex 1) gives the same first day. Later eras begin
//! on the day of the change of reign or the day after it (大正 1912-07-30, 昭和 1926-12-25, 平成
//! 1989-01-08, 令和 2019-05-01).

use core::fmt;

/// A Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, e.g. 1980.
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day, 1–31.
    pub day: u8,
}

impl Date {
    /// A date, checked for a valid month and day.
    pub const fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let date = Date { year, month, day };
        if date.is_valid() { Some(date) } else { None }
    }

    /// Whether the month and day form a Gregorian date.
    pub const fn is_valid(self) -> bool {
        self.day >= 1 && self.day <= days_in_month(self.year, self.month)
    }

    /// Parses the card's 8 ASCII digits `YYYYMMDD`.
    pub fn parse_yyyymmdd(bytes: &[u8]) -> Option<Date> {
        if bytes.len() != 8 || !bytes.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let num = |r: core::ops::Range<usize>| {
            bytes[r]
                .iter()
                .fold(0u16, |acc, b| acc * 10 + u16::from(b - b'0'))
        };
        Date::new(num(0..4), num(4..6) as u8, num(6..8) as u8)
    }

    /// The 8 ASCII digits `YYYYMMDD` the card writes.
    pub fn to_yyyymmdd(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// The era and the year within it (1 for the era's first year), or `None` before 明治.
    pub fn era(self) -> Option<(Era, u16)> {
        let era = Era::of(self)?;
        Some((era, era.year_in_era(self.year)?))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Whether `year` is a Gregorian leap year.
pub const fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// The number of days of `month` (1–12) in `year`; 0 for a month outside 1–12.
pub const fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A Japanese era (元号) from 明治 on, as the digit that leads the signing certificate's
/// `EYYYYMMDD` birth date (`1` 明治 … `5` 令和); another digit is kept as found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// `1`: 明治, from 1868-01-25.
    Meiji,
    /// `2`: 大正, from 1912-07-30.
    Taisho,
    /// `3`: 昭和, from 1926-12-25.
    Showa,
    /// `4`: 平成, from 1989-01-08.
    Heisei,
    /// `5`: 令和, from 2019-05-01.
    Reiwa,
    /// Any other digit, kept.
    Unknown(u8),
}

impl Era {
    /// The known eras, oldest first.
    pub const KNOWN: [Era; 5] = [Era::Meiji, Era::Taisho, Era::Showa, Era::Heisei, Era::Reiwa];

    /// The era for a digit `0`–`9`.
    pub const fn from_digit(digit: u8) -> Era {
        match digit {
            1 => Era::Meiji,
            2 => Era::Taisho,
            3 => Era::Showa,
            4 => Era::Heisei,
            5 => Era::Reiwa,
            d => Era::Unknown(d),
        }
    }

    /// The era digit.
    pub const fn digit(self) -> u8 {
        match self {
            Era::Meiji => 1,
            Era::Taisho => 2,
            Era::Showa => 3,
            Era::Heisei => 4,
            Era::Reiwa => 5,
            Era::Unknown(d) => d,
        }
    }

    /// The era's name (`明治` … `令和`), for known eras.
    pub const fn name_ja(self) -> Option<&'static str> {
        match self {
            Era::Meiji => Some("明治"),
            Era::Taisho => Some("大正"),
            Era::Showa => Some("昭和"),
            Era::Heisei => Some("平成"),
            Era::Reiwa => Some("令和"),
            Era::Unknown(_) => None,
        }
    }

    /// The era's first day, for known eras.
    pub const fn start(self) -> Option<Date> {
        let (year, month, day) = match self {
            Era::Meiji => (1868, 1, 25),
            Era::Taisho => (1912, 7, 30),
            Era::Showa => (1926, 12, 25),
            Era::Heisei => (1989, 1, 8),
            Era::Reiwa => (2019, 5, 1),
            Era::Unknown(_) => return None,
        };
        Some(Date { year, month, day })
    }

    /// The era's first day as Gregorian `(year, month, day)`, for known eras.
    pub const fn first_day(self) -> Option<(u16, u8, u8)> {
        match self.start() {
            Some(d) => Some((d.year, d.month, d.day)),
            None => None,
        }
    }

    /// The Gregorian year the era's first year (元年) falls in, for known eras.
    pub const fn first_year(self) -> Option<u16> {
        match self.start() {
            Some(d) => Some(d.year),
            None => None,
        }
    }

    /// The era a Gregorian date falls in, or `None` before 明治.
    pub fn of(date: Date) -> Option<Era> {
        // Newest first, so the first era that began on or before the date is the one.
        Era::KNOWN
            .into_iter()
            .rev()
            .find(|era| era.start().is_some_and(|start| date >= start))
    }

    /// The era of a Gregorian `(year, month, day)` (not validated), or `None` before 明治.
    pub fn of_date(year: u16, month: u8, day: u8) -> Option<Era> {
        Era::of(Date { year, month, day })
    }

    /// The year counted in this era (元年 = 1) of a Gregorian year, when the era is known and the
    /// year is not before it.
    pub const fn year_in_era(self, gregorian_year: u16) -> Option<u16> {
        match self.first_year() {
            Some(first) if gregorian_year >= first => Some(gregorian_year - first + 1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: u16, m: u8, dd: u8) -> Date {
        Date {
            year: y,
            month: m,
            day: dd,
        }
    }

    #[test]
    fn parses_card_dates() {
        assert_eq!(Date::parse_yyyymmdd(b"19800217"), Date::new(1980, 2, 17));
        assert_eq!(Date::parse_yyyymmdd(b"19800230"), None);
        assert_eq!(Date::parse_yyyymmdd(b"1980021"), None);
        assert_eq!(Date::parse_yyyymmdd(b"1980-2-1"), None);
        assert_eq!(Date::parse_yyyymmdd(b"20000229"), Date::new(2000, 2, 29));
        assert_eq!(Date::parse_yyyymmdd(b"19000229"), None);
        assert_eq!(d(1980, 2, 17).to_yyyymmdd(), "19800217");
        assert_eq!(d(1980, 2, 17).to_string(), "1980-02-17");
    }

    #[test]
    fn era_years() {
        assert_eq!(d(1980, 2, 17).era(), Some((Era::Showa, 55)));
        assert_eq!(d(2019, 4, 30).era(), Some((Era::Heisei, 31)));
        assert_eq!(d(2019, 5, 1).era(), Some((Era::Reiwa, 1)));
        assert_eq!(d(2020, 2, 24).era(), Some((Era::Reiwa, 2)));
        assert_eq!(d(1989, 1, 7).era(), Some((Era::Showa, 64)));
        assert_eq!(d(1989, 1, 8).era(), Some((Era::Heisei, 1)));
        assert_eq!(d(1926, 12, 24).era(), Some((Era::Taisho, 15)));
        assert_eq!(d(1926, 12, 25).era(), Some((Era::Showa, 1)));
        assert_eq!(d(1912, 7, 29).era(), Some((Era::Meiji, 45)));
        assert_eq!(d(1912, 7, 30).era(), Some((Era::Taisho, 1)));
        assert_eq!(d(1800, 1, 1).era(), None);
    }

    #[test]
    fn meiji_counts_from_the_new_year_of_keio_4() {
        // 慶応4年1月1日 = 1868-01-25: the whole year became 明治元年. The edict's own day,
        // 1868-10-23, is not the era's first day.
        assert_eq!(Era::Meiji.start(), Date::new(1868, 1, 25));
        assert_eq!(d(1868, 1, 24).era(), None);
        assert_eq!(d(1868, 1, 25).era(), Some((Era::Meiji, 1)));
        assert_eq!(d(1868, 5, 1).era(), Some((Era::Meiji, 1)));
        assert_eq!(d(1868, 10, 22).era(), Some((Era::Meiji, 1)));
        assert_eq!(d(1873, 1, 1).era(), Some((Era::Meiji, 6)));
    }
}
