//! `Response::parse` on arbitrary bytes: never panics, and encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_apdu::{Response, StatusWord};

fuzz_target!(|data: &[u8]| {
    let Ok(response) = Response::parse(data) else {
        assert!(data.len() < 2);
        return;
    };
    assert_eq!(response.to_bytes(), data);
    let sw = response.sw;
    assert_eq!(StatusWord::from_u16(sw.to_u16()), sw);
    let _ = (sw.description(), sw.category(), sw.is_blocked(), format!("{sw}"));
});
