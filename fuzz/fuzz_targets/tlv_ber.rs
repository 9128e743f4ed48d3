//! BER-TLV parsing of arbitrary card bytes, nested one level as card-data parsers do; what parses
//! re-encodes (minimal length form) to an object with the same tag and value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_apdu::tlv::ber;

fuzz_target!(|data: &[u8]| {
    let _ = ber::parse_header(data);
    if let Ok((tlv, rest)) = ber::parse_one(data) {
        assert_eq!(tlv.total_len() + rest.len(), data.len());
        if let Ok(encoded) = ber::to_vec(tlv.tag, tlv.value) {
            let (again, tail) = ber::parse_one(&encoded).expect("re-encoded object parses");
            assert_eq!((again.tag, again.value), (tlv.tag, tlv.value));
            assert!(tail.is_empty());
        }
    }
    for tlv in ber::iter(data).flatten() {
        if tlv.is_constructed() {
            for inner in ber::iter(tlv.value).flatten() {
                let _ = ber::find(inner.value, 0xDF21);
            }
        }
    }
});
