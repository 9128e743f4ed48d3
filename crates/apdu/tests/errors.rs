//! Impossible combinations and malformed bytes are typed errors; secrets stay out of `Debug`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::tlv::{TlvError, ber, simple};
use mynacard_apdu::{ApduError, Command, CommandData, LengthEncoding, Response, StatusWord};
use zeroize::Zeroizing;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

#[test]
fn ne_out_of_range() {
    let c = Command::new(0, 0xB0, 0, 0);
    assert_eq!(
        c.clone().with_ne(0).to_bytes(LengthEncoding::Auto),
        Err(ApduError::NeOutOfRange { ne: 0, max: 256 })
    );
    assert_eq!(
        c.clone().with_ne(65_537).to_bytes(LengthEncoding::Auto),
        Err(ApduError::NeOutOfRange {
            ne: 65_537,
            max: 65_536
        })
    );
    assert_eq!(
        c.clone().with_ne(257).to_bytes(LengthEncoding::Short),
        Err(ApduError::NeOutOfRange { ne: 257, max: 256 })
    );
    assert_eq!(
        c.with_ne(0).to_bytes(LengthEncoding::Extended),
        Err(ApduError::NeOutOfRange { ne: 0, max: 65_536 })
    );
}

#[test]
fn data_too_long() {
    let c = Command::new(0, 0xD6, 0, 0);
    assert_eq!(
        c.clone()
            .with_data(vec![0; 256])
            .to_bytes(LengthEncoding::Short),
        Err(ApduError::DataTooLong { len: 256, max: 255 })
    );
    assert_eq!(
        c.clone()
            .with_data(vec![0; 65_536])
            .to_bytes(LengthEncoding::Auto),
        Err(ApduError::DataTooLong {
            len: 65_536,
            max: 65_535
        })
    );
    // The largest of each form encodes.
    assert_eq!(
        c.clone()
            .with_data(vec![0; 65_535])
            .with_ne(65_536)
            .to_bytes(LengthEncoding::Auto)
            .unwrap()
            .len(),
        4 + 3 + 65_535 + 2
    );
    assert_eq!(
        c.with_data(vec![0; 255])
            .with_ne(256)
            .to_bytes(LengthEncoding::Auto)
            .unwrap()
            .len(),
        4 + 1 + 255 + 1
    );
}

#[test]
fn inconsistent_command_lengths() {
    for (bytes, err) in [
        ("", ApduError::CommandTooShort { len: 0 }),
        ("00 A4 04", ApduError::CommandTooShort { len: 3 }),
        // Lc says 10, 9 bytes follow.
        (
            "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00",
            ApduError::InconsistentLength { len: 14 },
        ),
        // Lc says 2, four bytes follow (neither case 3 nor 4).
        (
            "00 A4 02 0C 02 00 18 00 00",
            ApduError::InconsistentLength { len: 9 },
        ),
        // A body of two bytes starting with 00 is no valid case.
        (
            "00 B0 00 00 00 01",
            ApduError::InconsistentLength { len: 6 },
        ),
        // Extended Lc of zero.
        (
            "00 D6 00 00 00 00 00 01",
            ApduError::InconsistentLength { len: 8 },
        ),
        // Extended Lc 1 with one byte of data and a one-byte Le.
        (
            "00 D6 00 00 00 00 01 AA 00",
            ApduError::InconsistentLength { len: 9 },
        ),
    ] {
        assert_eq!(Command::parse(&h(bytes)), Err(err), "{bytes}");
    }
}

#[test]
fn response_too_short() {
    assert_eq!(
        Response::parse(&[]),
        Err(ApduError::ResponseTooShort { len: 0 })
    );
    assert_eq!(
        Response::parse(&[0x90]),
        Err(ApduError::ResponseTooShort { len: 1 })
    );
    let r = Response::parse(&h("01 02 90 00")).unwrap();
    assert_eq!(r, Response::new([1, 2], StatusWord::Success));
    assert_eq!(r.to_bytes(), h("01 02 90 00"));
}

#[test]
fn ber_rejects_indefinite_and_oversized_lengths() {
    assert_eq!(
        ber::parse_one(&h("30 80 02 01 01 00 00")),
        Err(TlvError::IndefiniteLength { offset: 1 })
    );
    assert_eq!(
        ber::parse_one(&h("5F 4E 85 00 00 00 00 01 AA")),
        Err(TlvError::UnsupportedLength { offset: 2 })
    );
    assert_eq!(
        ber::parse_one(&h("04 FF")),
        Err(TlvError::UnsupportedLength { offset: 1 })
    );
    // A tag of five bytes.
    assert_eq!(
        ber::parse_one(&h("5F 81 82 83 04 00")),
        Err(TlvError::TagTooLong { offset: 0 })
    );
    // The error offset points into the enclosing input.
    assert_eq!(
        ber::parse_all(&h("04 01 AA 30 80")),
        Err(TlvError::IndefiniteLength { offset: 4 })
    );
}

#[test]
fn ber_long_form_lengths() {
    for (hex, len) in [
        ("04 81 80", 0x80usize),
        ("04 82 01 00", 0x100),
        ("04 83 01 00 00", 0x1_0000),
        ("04 84 00 01 00 00", 0x1_0000),
    ] {
        let mut bytes = h(hex);
        let header = bytes.len();
        assert_eq!(ber::parse_header(&bytes).unwrap(), (0x04, header, len));
        bytes.resize(header + len, 0xEE);
        let (tlv, rest) = ber::parse_one(&bytes).unwrap();
        assert_eq!(tlv.value.len(), len);
        assert!(rest.is_empty());
        // One byte short is truncated, not a panic.
        assert!(matches!(
            ber::parse_one(&bytes[..bytes.len() - 1]),
            Err(TlvError::Truncated { .. })
        ));
    }
}

#[test]
fn ber_multi_byte_tags_of_the_card() {
    // Text AP EF 0002: FF 20 { DF 21 … DF 22 … }; CVC 7F 21 { 5F 4E … 5F 37 … }.
    let bytes = h("FF 20 08 DF 21 01 AA DF 22 01 BB FF FF");
    let (outer, rest) = ber::parse_one(&bytes).unwrap();
    assert_eq!(outer.tag, 0xFF20);
    assert_eq!(rest, [0xFF, 0xFF], "file padding stays after the object");
    let inner = ber::parse_all(outer.value).unwrap();
    assert_eq!(
        inner.iter().map(|t| t.tag).collect::<Vec<_>>(),
        [0xDF21, 0xDF22]
    );
    assert_eq!(
        ber::find(outer.value, 0xDF22).unwrap().unwrap().value,
        [0xBB]
    );
    assert_eq!(ber::find(outer.value, 0xDF23).unwrap(), None);
    let cvc = ber::to_vec(0x7F21, &ber::to_vec(0x5F4E, &[1, 2, 3]).unwrap()).unwrap();
    assert_eq!(cvc, h("7F 21 06 5F 4E 03 01 02 03"));
}

#[test]
fn ber_invalid_tags_are_refused_when_encoding() {
    for tag in [0, 0x1F, 0x5F80, 0xDF8080, 0x3031, 0x1F80_8080] {
        assert_eq!(
            ber::to_vec(tag, &[]),
            Err(TlvError::InvalidTag { tag }),
            "{tag:X}"
        );
    }
}

#[test]
fn simple_tlv_edges() {
    // B.8: the common AP serial record, `01 1C` + 28 ASCII digits.
    let mut record = h("01 1C");
    record.extend_from_slice(b"1234567890123451310120301231");
    let (tlv, rest) = simple::parse_one(&record).unwrap();
    assert_eq!((tlv.tag, tlv.value.len(), rest.len()), (1, 28, 0));
    // FF and a two-byte length.
    let mut long = h("05 FF 01 00");
    long.resize(4 + 256, 7);
    let (tlv, _) = simple::parse_one(&long).unwrap();
    assert_eq!((tlv.value.len(), tlv.header_len), (256, 4));
    for (bytes, err) in [
        ("", TlvError::Truncated { offset: 0 }),
        ("00 00", TlvError::InvalidTag { tag: 0 }),
        ("FF 00", TlvError::InvalidTag { tag: 0xFF }),
        ("01", TlvError::Truncated { offset: 1 }),
        ("01 FF 00", TlvError::Truncated { offset: 2 }),
        ("01 03 AA", TlvError::Truncated { offset: 3 }),
    ] {
        assert_eq!(simple::parse_one(&h(bytes)), Err(err), "{bytes}");
    }
    let mut out = Vec::new();
    assert_eq!(
        simple::encode(1, &vec![0; 65_536], &mut out),
        Err(TlvError::ValueTooLong { len: 65_536 })
    );
    assert_eq!(
        simple::encode(0xFF, &[], &mut out),
        Err(TlvError::InvalidTag { tag: 0xFF })
    );
    assert!(out.is_empty(), "nothing written on error");
}

#[test]
fn tlv_errors_convert_into_apdu_errors_with_their_source() {
    let err: ApduError = TlvError::Truncated { offset: 3 }.into();
    assert_eq!(err, ApduError::Tlv(TlvError::Truncated { offset: 3 }));
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(source.as_deref(), Some("truncated TLV at offset 3"));
}

#[test]
fn sensitive_data_is_redacted_and_zeroizing() {
    let pin = Zeroizing::new(b"4321".to_vec());
    let cmd = Command::new(0x00, 0x20, 0x00, 0x80).with_sensitive_data(pin);
    let debug = format!("{cmd:?}");
    assert!(debug.contains("redacted"), "{debug}");
    assert!(!debug.contains("34 33"), "{debug}");
    let bytes = cmd.to_bytes(LengthEncoding::Auto).unwrap();
    assert!(bytes.is_sensitive());
    let debug = format!("{bytes:?}");
    assert_eq!(debug, "CommandBytes(00 20 00 80 <5 bytes redacted>)");
    // Parsing a VERIFY marks its data secret too.
    let parsed = Command::parse(&h("00 20 00 80 04 34 33 32 31")).unwrap();
    let debug = format!("{parsed:?}");
    assert!(!debug.contains("34 33"), "{debug}");
    match parsed.command.data() {
        // The secret bytes live in a `Zeroizing` buffer, which wipes them on drop.
        CommandData::Sensitive(buf) => {
            let _: &Zeroizing<Vec<u8>> = buf;
            assert_eq!(buf.as_slice(), b"4321");
        }
        CommandData::Plain(_) => panic!("VERIFY data parsed as plain"),
    }
    // CHANGE REFERENCE DATA, RESET RETRY COUNTER and CHANGE KEY (CLA 80) too; READ BINARY not.
    for (hex, secret) in [
        ("00 24 01 80 02 31 32", true),
        ("00 2C 02 80 02 31 32", true),
        ("80 32 00 80 02 31 32", true),
        ("00 32 00 80 02 31 32", false),
        ("00 D6 00 00 02 31 32", false),
    ] {
        let parsed = Command::parse(&h(hex)).unwrap();
        assert_eq!(parsed.command.data().is_sensitive(), secret, "{hex}");
    }
    // Plain data is shown.
    let plain = Command::new(0, 0xA4, 4, 0x0C).with_data([0xD3, 0x92]);
    assert!(format!("{plain:?}").contains("D3 92"));
}

#[test]
fn response_debug_hides_data() {
    let r = Response::new(b"secret".to_vec(), StatusWord::Success);
    let debug = format!("{r:?}");
    assert_eq!(debug, "Response { data_len: 6, sw: 9000 }");
}
