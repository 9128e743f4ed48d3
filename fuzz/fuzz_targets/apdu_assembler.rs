//! The response assembler fed arbitrary card answers: it never panics, never resends secret data,
//! and asks only for commands that encode.
//!
//! Input layout: one length byte and that many bytes of command (parsed with `Command::parse`),
//! then answers, each a length byte followed by that many bytes (parsed with `Response::parse`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_apdu::{AssemblerLimits, Command, LengthEncoding, Response, ResponseAssembler, Step};

fn take<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&len, rest) = input.split_first()?;
    let len = usize::from(len).min(rest.len());
    let (chunk, rest) = rest.split_at(len);
    *input = rest;
    Some(chunk)
}

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    let Some(first) = take(&mut input) else {
        return;
    };
    let Ok(parsed) = Command::parse(first) else {
        return;
    };
    let limits = AssemblerLimits {
        max_total_len: 4096,
        max_rounds: 64,
    };
    let mut asm = ResponseAssembler::with_limits(&parsed.command, limits);
    let mut collected = 0usize;
    while let Some(answer) = take(&mut input) {
        let Ok(response) = Response::parse(answer) else {
            continue;
        };
        let len = response.data.len();
        match asm.feed(response) {
            Ok(Step::GetResponse(get)) => {
                collected += len;
                assert!(collected <= limits.max_total_len);
                assert!(get.to_bytes(LengthEncoding::Short).is_ok());
            }
            Ok(Step::Resend(again)) => {
                assert!(!again.data().is_sensitive());
                assert!(again.to_bytes(LengthEncoding::Auto).is_ok());
            }
            Ok(Step::Done(done)) => {
                assert!(done.data.len() <= limits.max_total_len);
                asm = ResponseAssembler::with_limits(&parsed.command, limits);
                collected = 0;
            }
            Err(_) => return,
        }
    }
});
