//! `Command::parse` on arbitrary bytes: never panics, and what parses re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_apdu::{Command, LengthEncoding, chain};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = Command::parse(data) else {
        return;
    };
    let again = parsed
        .command
        .to_bytes(parsed.encoding)
        .expect("a parsed command encodes in its own encoding");
    assert_eq!(again.as_slice(), data);
    let _ = parsed.command.to_bytes(LengthEncoding::Auto);
    let _ = format!("{parsed:?}");
    if let Some(&chunk) = data.first() {
        let _ = chain::split(&parsed.command, usize::from(chunk));
    }
});
