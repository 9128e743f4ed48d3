//! Arbitrary bytes never panic any parser, and what parses is consistent with its input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::tlv::{TlvError, ber, simple};
use mynacard_apdu::{Command, LengthEncoding, Response, ResponseAssembler};
use proptest::collection::vec;
use proptest::prelude::*;

/// Bytes biased towards the values that steer the parsers (length and tag markers).
fn steering_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(
        prop_oneof![
            4 => any::<u8>(),
            1 => prop::sample::select(vec![0x00u8, 0x01, 0x1F, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0xFF]),
        ],
        0..max,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn command_parse_never_panics(bytes in steering_bytes(400)) {
        if let Ok(parsed) = Command::parse(&bytes) {
            prop_assert_eq!(&bytes[..4], &[parsed.command.cla, parsed.command.ins, parsed.command.p1, parsed.command.p2]);
            prop_assert!(parsed.command.data_bytes().len() <= bytes.len() - 4);
            let _ = parsed.command.to_bytes(LengthEncoding::Auto);
            let _ = format!("{parsed:?}");
        }
    }

    #[test]
    fn response_parse_never_panics(bytes in steering_bytes(300)) {
        match Response::parse(&bytes) {
            Ok(r) => {
                prop_assert_eq!(r.data.len() + 2, bytes.len());
                prop_assert_eq!(r.to_bytes(), bytes);
            }
            Err(_) => prop_assert!(bytes.len() < 2),
        }
    }

    #[test]
    fn ber_parsers_never_panic(bytes in steering_bytes(300), tag in any::<u32>()) {
        let _ = ber::parse_header(&bytes);
        if let Ok((tlv, rest)) = ber::parse_one(&bytes) {
            prop_assert_eq!(tlv.total_len() + rest.len(), bytes.len());
        }
        let mut consumed = 0;
        for item in ber::iter(&bytes) {
            match item {
                Ok(tlv) => consumed += tlv.total_len(),
                Err(TlvError::Truncated { offset }
                    | TlvError::IndefiniteLength { offset }
                    | TlvError::UnsupportedLength { offset }
                    | TlvError::TagTooLong { offset }) => {
                    prop_assert!(offset >= consumed && offset <= bytes.len(), "offset {} outside {}..={}", offset, consumed, bytes.len());
                }
                Err(_) => {}
            }
        }
        prop_assert!(consumed <= bytes.len());
        let _ = ber::parse_all(&bytes);
        let _ = ber::find(&bytes, tag);
        let _ = ber::tag_bytes(tag);
        // Nested parsing of every constructed value, as a card-data parser would do.
        if let Ok(all) = ber::parse_all(&bytes) {
            for tlv in all.iter().filter(|t| t.is_constructed()) {
                let _ = ber::parse_all(tlv.value);
            }
        }
    }

    #[test]
    fn simple_parsers_never_panic(bytes in steering_bytes(300)) {
        if let Ok((tlv, rest)) = simple::parse_one(&bytes) {
            prop_assert_eq!(tlv.total_len() + rest.len(), bytes.len());
        }
        if let Ok(all) = simple::parse_all(&bytes) {
            prop_assert_eq!(all.iter().map(|t| t.total_len()).sum::<usize>(), bytes.len());
        }
    }

    /// Whatever the card answers, in whatever order, the assembler returns a value or an error.
    #[test]
    fn assembler_never_panics(command in steering_bytes(40), answers in vec(steering_bytes(20), 0..20)) {
        let Ok(parsed) = Command::parse(&command) else { return Ok(()) };
        let mut asm = ResponseAssembler::new(&parsed.command);
        for answer in answers {
            let Ok(response) = Response::parse(&answer) else { continue };
            let _ = asm.feed(response);
        }
    }
}

/// Every prefix of a valid encoding is an error, never a panic or a wrong success.
#[test]
fn truncated_encodings_are_errors() {
    let long = ber::to_vec(0x7F21, &[0x42; 300]).unwrap();
    for end in 0..long.len() {
        assert!(ber::parse_one(&long[..end]).is_err(), "prefix {end}");
    }
    let mut simple_long = Vec::new();
    simple::encode(0x01, &[0x42; 300], &mut simple_long).unwrap();
    for end in 0..simple_long.len() {
        assert!(
            simple::parse_one(&simple_long[..end]).is_err(),
            "prefix {end}"
        );
    }
}
