//! The signing certificate's personal-data decoder: a subjectAltName extension value from
//! arbitrary bytes, and `EYYYYMMDD` birth dates from arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_cert::{EraDate, PersonalData};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(p)) = PersonalData::from_san_der(data) {
        let _ = p.name().and_then(|v| v.as_text());
        let _ = p
            .birth_date()
            .and_then(|b| b.date())
            .map(|d| (d.to_code(), d.era_year()));
        let _ = p.sex().map(|s| s.code());
        let _ = p.directory_names().count();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(date) = EraDate::parse(text) {
            assert_eq!(date.to_code(), text);
        }
    }
});
