//! Calendar dates as the card writes them (`YYYYMMDD` ASCII) and the Japanese era years used by
//! the visual AP's keys.

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

/// The Japanese eras (元号) from 明治 on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Era {
    /// 明治, from 1868-01-25 (the first day the calendar counts for birth dates).
    Meiji,
    /// 大正, from 1912-07-30.
    Taisho,
    /// 昭和, from 1926-12-25.
    Showa,
    /// 平成, from 1989-01-08.
    Heisei,
    /// 令和, from 2019-05-01.
    Reiwa,
}

const ERAS: [(Era, Date); 5] = [
    (
        Era::Reiwa,
        Date {
            year: 2019,
            month: 5,
            day: 1,
        },
    ),
    (
        Era::Heisei,
        Date {
            year: 1989,
            month: 1,
            day: 8,
        },
    ),
    (
        Era::Showa,
        Date {
            year: 1926,
            month: 12,
            day: 25,
        },
    ),
    (
        Era::Taisho,
        Date {
            year: 1912,
            month: 7,
            day: 30,
        },
    ),
    (
        Era::Meiji,
        Date {
            year: 1868,
            month: 1,
            day: 25,
        },
    ),
];

impl Date {
    /// A date, checked for a valid month and day.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        (1..=days)
            .contains(&day)
            .then_some(Date { year, month, day })
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

    /// The era and the year within it (1 for the era's first year), or `None` before 明治.
    pub fn era(self) -> Option<(Era, u16)> {
        ERAS.iter()
            .find(|(_, start)| self >= *start)
            .map(|(era, start)| (*era, self.year - start.year + 1))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_card_dates() {
        assert_eq!(Date::parse_yyyymmdd(b"19800217"), Date::new(1980, 2, 17));
        assert_eq!(Date::parse_yyyymmdd(b"19800230"), None);
        assert_eq!(Date::parse_yyyymmdd(b"1980021"), None);
        assert_eq!(Date::parse_yyyymmdd(b"1980-2-1"), None);
        assert_eq!(Date::parse_yyyymmdd(b"20000229"), Date::new(2000, 2, 29));
        assert_eq!(Date::parse_yyyymmdd(b"19000229"), None);
    }

    #[test]
    fn era_years() {
        let d = |y, m, dd| Date::new(y, m, dd).unwrap();
        assert_eq!(d(1980, 2, 17).era(), Some((Era::Showa, 55)));
        assert_eq!(d(2019, 4, 30).era(), Some((Era::Heisei, 31)));
        assert_eq!(d(2019, 5, 1).era(), Some((Era::Reiwa, 1)));
        assert_eq!(d(2020, 2, 24).era(), Some((Era::Reiwa, 2)));
        assert_eq!(d(1926, 12, 24).era(), Some((Era::Taisho, 15)));
        assert_eq!(d(1926, 12, 25).era(), Some((Era::Showa, 1)));
        assert_eq!(d(1800, 1, 1).era(), None);
    }
}
