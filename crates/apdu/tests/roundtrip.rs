//! Encode-then-parse identities: commands of every case in short and extended form, status words
//! for all 65536 values, BER-TLV and simple-TLV.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::tlv::{ber, simple};
use mynacard_apdu::{ApduError, Case, Command, LengthEncoding, MAX_NE, StatusWord};
use proptest::collection::vec;
use proptest::prelude::*;
use zeroize::Zeroizing;

/// Command data of interesting lengths: none, short, just above short, and near the extended
/// maximum (filled from a seed, so that 64 KiB values stay cheap to generate).
fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(Vec::new()),
        4 => vec(any::<u8>(), 1..=255),
        2 => vec(any::<u8>(), 256..=600),
        1 => (601usize..=65_535, any::<u8>())
            .prop_map(|(n, seed)| (0..n).map(|i| seed.wrapping_add(i as u8)).collect()),
        1 => Just(vec![0xA5; 65_535]),
    ]
}

fn ne_strategy() -> impl Strategy<Value = Option<u32>> {
    prop_oneof![
        3 => Just(None),
        3 => (1u32..=256).prop_map(Some),
        2 => (257u32..=MAX_NE).prop_map(Some),
        1 => Just(Some(256)),
        1 => Just(Some(MAX_NE)),
    ]
}

fn command_strategy() -> impl Strategy<Value = Command> {
    (
        any::<[u8; 4]>(),
        data_strategy(),
        ne_strategy(),
        any::<bool>(),
    )
        .prop_map(|([cla, ins, p1, p2], data, ne, secret)| {
            let c = Command::new(cla, ins, p1, p2);
            let c = if secret {
                c.with_sensitive_data(Zeroizing::new(data))
            } else {
                c.with_data(data)
            };
            match ne {
                Some(ne) => c.with_ne(ne),
                None => c,
            }
        })
}

/// The fields that survive the wire (the plain/secret kind is chosen by the parser by INS).
fn wire_fields(c: &Command) -> (u8, u8, u8, u8, &[u8], Option<u32>) {
    (c.cla, c.ins, c.p1, c.p2, c.data_bytes(), c.ne())
}

/// The length an encoding must have.
fn expected_len(c: &Command, extended: bool) -> usize {
    let nc = c.data_bytes().len();
    let lc = match (nc, extended) {
        (0, _) => 0,
        (_, false) => 1,
        (_, true) => 3,
    };
    let le = match (c.ne(), extended, nc) {
        (None, _, _) => 0,
        (Some(_), false, _) => 1,
        (Some(_), true, 0) => 3,
        (Some(_), true, _) => 2,
    };
    4 + lc + nc + le
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Auto encoding chooses short whenever it can, and parsing gives the command back.
    #[test]
    fn auto_encode_then_parse_is_identity(c in command_strategy()) {
        let bytes = c.to_bytes(LengthEncoding::Auto).unwrap();
        let extended = c.needs_extended();
        prop_assert_eq!(bytes.len(), expected_len(&c, extended));
        prop_assert_eq!(bytes.is_sensitive(), c.data().is_sensitive());
        let parsed = Command::parse(&bytes).unwrap();
        prop_assert_eq!(wire_fields(&parsed.command), wire_fields(&c));
        prop_assert_eq!(parsed.command.case(), c.case());
        let want = if extended && c.case() != Case::Case1 {
            LengthEncoding::Extended
        } else {
            LengthEncoding::Short
        };
        prop_assert_eq!(parsed.encoding, want);
    }

    /// Forced extended encoding of every case parses back to the same command.
    #[test]
    fn extended_encode_then_parse_is_identity(c in command_strategy()) {
        let bytes = c.to_bytes(LengthEncoding::Extended).unwrap();
        prop_assert_eq!(bytes.len(), expected_len(&c, true));
        let parsed = Command::parse(&bytes).unwrap();
        prop_assert_eq!(wire_fields(&parsed.command), wire_fields(&c));
        let want = if c.case() == Case::Case1 { LengthEncoding::Short } else { LengthEncoding::Extended };
        prop_assert_eq!(parsed.encoding, want);
        // And the parsed command encodes to the same bytes again.
        let again = parsed.command.to_bytes(parsed.encoding).unwrap();
        prop_assert_eq!(again.as_slice(), bytes.as_slice());
    }

    /// Forced short encoding works exactly when the command fits, with a typed error otherwise.
    #[test]
    fn short_encode_fits_or_fails_typed(c in command_strategy()) {
        match c.to_bytes(LengthEncoding::Short) {
            Ok(bytes) => {
                prop_assert!(!c.needs_extended());
                prop_assert_eq!(bytes.len(), expected_len(&c, false));
                let parsed = Command::parse(&bytes).unwrap();
                prop_assert_eq!(wire_fields(&parsed.command), wire_fields(&c));
                prop_assert_eq!(parsed.encoding, LengthEncoding::Short);
            }
            Err(ApduError::DataTooLong { len, max }) => {
                prop_assert_eq!((len, max), (c.data_bytes().len(), 255));
            }
            Err(ApduError::NeOutOfRange { ne, max }) => {
                prop_assert_eq!((Some(ne), max), (c.ne(), 256));
                prop_assert!(c.data_bytes().len() <= 255);
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    /// Bytes that parse re-encode to themselves in the encoding they arrived in.
    #[test]
    fn parse_then_encode_is_identity(bytes in vec(any::<u8>(), 0..300)) {
        if let Ok(parsed) = Command::parse(&bytes) {
            let again = parsed.command.to_bytes(parsed.encoding).unwrap();
            prop_assert_eq!(again.as_slice(), bytes.as_slice());
        }
    }

    /// Any status word value survives `to_u16` then `from_u16` when it is the canonical value for
    /// its code.
    #[test]
    fn status_word_value_round_trip(code in any::<u16>()) {
        let sw = StatusWord::from_u16(code);
        prop_assert_eq!(StatusWord::from_u16(sw.to_u16()), sw);
        let [sw1, sw2] = sw.to_bytes();
        prop_assert_eq!(StatusWord::from_bytes(sw1, sw2), sw);
        prop_assert_eq!(u16::from(sw), code);
    }
}

/// All 65536 values: `from_u16` then `to_u16` is the identity, `Other` never shadows a named or
/// payload arm, and the payload arms hold exactly their ranges.
#[test]
fn status_word_all_values_round_trip() {
    let mut others = 0u32;
    for code in 0..=u16::MAX {
        let sw = StatusWord::from_u16(code);
        assert_eq!(sw.to_u16(), code, "{code:04X}");
        match sw {
            StatusWord::Other(v) => {
                assert_eq!(v, code);
                others += 1;
            }
            StatusWord::BytesRemaining(n) => assert_eq!(code, 0x6100 | u16::from(n)),
            StatusWord::RetriesRemaining(n) => {
                assert!(n <= 15);
                assert_eq!(code, 0x63C0 | u16::from(n));
            }
            StatusWord::WrongLe(n) => assert_eq!(code, 0x6C00 | u16::from(n)),
            _ => {}
        }
        assert!(!sw.description().is_empty());
    }
    // 256 + 16 + 256 payload values and the named arms are not `Other`.
    assert!(others < 65_536 - 528, "{others}");
}

/// Valid BER tags: one byte (low five bits not all set, not zero), or a first byte with the low
/// five bits set followed by one to three bytes, all but the last with bit 8 set.
fn ber_tag_strategy() -> impl Strategy<Value = u32> {
    let single = (1u8..=0xFF)
        .prop_filter("single-byte tag", |b| b & 0x1F != 0x1F)
        .prop_map(u32::from);
    let multi =
        (0u8..8, vec(0x80u8..=0xFF, 0..=2), 0u8..=0x7F).prop_map(|(class, middle, last)| {
            let mut tag = u32::from((class << 5) | 0x1F);
            for b in middle {
                tag = (tag << 8) | u32::from(b);
            }
            (tag << 8) | u32::from(last)
        });
    prop_oneof![single, multi]
}

fn tlv_value_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => vec(any::<u8>(), 0..=300),
        1 => (65_536usize..=70_000).prop_map(|n| vec![0x5A; n]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ber_round_trip(tag in ber_tag_strategy(), value in tlv_value_strategy()) {
        let encoded = ber::to_vec(tag, &value).unwrap();
        let (tlv, rest) = ber::parse_one(&encoded).unwrap();
        prop_assert_eq!(tlv.tag, tag);
        prop_assert_eq!(tlv.value, value.as_slice());
        prop_assert!(rest.is_empty());
        prop_assert_eq!(tlv.total_len(), encoded.len());
        prop_assert_eq!(ber::parse_header(&encoded).unwrap(), (tag, tlv.header_len, value.len()));
        // Minimal length form: short below 128, else 81/82/83 with the fewest bytes.
        let len_bytes = tlv.header_len - ber::tag_bytes(tag).unwrap().len();
        let want = match value.len() { 0..=0x7F => 1, 0x80..=0xFF => 2, 0x100..=0xFFFF => 3, _ => 4 };
        prop_assert_eq!(len_bytes, want);
    }

    #[test]
    fn ber_sequence_round_trip(objects in vec((ber_tag_strategy(), vec(any::<u8>(), 0..200)), 0..8)) {
        let mut encoded = Vec::new();
        for (tag, value) in &objects {
            ber::encode(*tag, value, &mut encoded).unwrap();
        }
        let parsed = ber::parse_all(&encoded).unwrap();
        prop_assert_eq!(parsed.len(), objects.len());
        for (tlv, (tag, value)) in parsed.iter().zip(&objects) {
            prop_assert_eq!(tlv.tag, *tag);
            prop_assert_eq!(tlv.value, value.as_slice());
        }
        if let Some((tag, value)) = objects.first() {
            let found = ber::find(&encoded, *tag).unwrap().unwrap();
            prop_assert_eq!(found.value, value.as_slice());
        }
        // Wrapping the sequence in a constructed object keeps it intact.
        let outer = ber::to_vec(0x7F21, &encoded).unwrap();
        let (tlv, _) = ber::parse_one(&outer).unwrap();
        prop_assert!(tlv.is_constructed());
        prop_assert_eq!(ber::parse_all(tlv.value).unwrap(), parsed);
    }

    #[test]
    fn simple_round_trip(tag in 1u8..=0xFE, value in prop_oneof![
        6 => vec(any::<u8>(), 0..=600),
        1 => (600usize..=65_535).prop_map(|n| vec![0xC3; n]),
    ]) {
        let mut encoded = Vec::new();
        simple::encode(tag, &value, &mut encoded).unwrap();
        let header = if value.len() < 0xFF { 2 } else { 4 };
        prop_assert_eq!(encoded.len(), header + value.len());
        let (tlv, rest) = simple::parse_one(&encoded).unwrap();
        prop_assert_eq!(tlv.tag, u32::from(tag));
        prop_assert_eq!(tlv.value, value.as_slice());
        prop_assert_eq!(tlv.header_len, header);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn simple_sequence_round_trip(objects in vec((1u8..=0xFE, vec(any::<u8>(), 0..300)), 0..8)) {
        let mut encoded = Vec::new();
        for (tag, value) in &objects {
            simple::encode(*tag, value, &mut encoded).unwrap();
        }
        let parsed = simple::parse_all(&encoded).unwrap();
        prop_assert_eq!(parsed.len(), objects.len());
        for (tlv, (tag, value)) in parsed.iter().zip(&objects) {
            prop_assert_eq!(tlv.tag, u32::from(*tag));
            prop_assert_eq!(tlv.value, value.as_slice());
        }
    }
}
