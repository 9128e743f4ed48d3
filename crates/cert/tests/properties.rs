//! Arbitrary input never panics the parsers; `EYYYYMMDD` round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mynacard_cert::{Crl, Era, EraDate, JpkiCertificate, PersonalData, roots::JLIS_ROOTS};
use proptest::prelude::*;

proptest! {
    #[test]
    fn certificate_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = JpkiCertificate::from_der_or_pem(&bytes);
        let _ = JpkiCertificate::from_der(&bytes);
    }

    #[test]
    fn mutated_roots_never_panic(index in 0usize..6, pos in 0usize..1400, byte in any::<u8>()) {
        let mut der = JLIS_ROOTS[index].der.to_vec();
        let pos = pos % der.len();
        der[pos] = byte;
        if let Ok(cert) = JpkiCertificate::from_der(&der) {
            let _ = cert.subject_text();
            let _ = cert.personal_data();
        }
    }

    #[test]
    fn san_and_crl_parsing_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let _ = PersonalData::from_san_der(&bytes);
        let _ = Crl::from_der_or_pem(&bytes);
    }

    #[test]
    fn birth_date_parsing_never_panics(s in "\\PC{0,12}") {
        let _ = EraDate::parse(&s);
    }

    #[test]
    fn era_dates_round_trip(digit in 0u8..10, year in 0u16..10000, month in 1u8..13, day in 1u8..32) {
        match EraDate::new(Era::from_digit(digit), year, month, day) {
            Some(date) => {
                let code = date.to_code();
                prop_assert_eq!(code.len(), 9);
                prop_assert_eq!(EraDate::parse(&code), Some(date));
            }
            None => prop_assert!(day > 28),
        }
    }

    #[test]
    fn nine_digit_codes_round_trip_when_they_parse(code in "[0-9]{9}") {
        if let Some(date) = EraDate::parse(&code) {
            prop_assert_eq!(date.to_code(), code);
        }
    }
}
