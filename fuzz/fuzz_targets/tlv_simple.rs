//! SIMPLE-TLV parsing of arbitrary bytes; what parses re-encodes to the same tag and value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_apdu::tlv::simple;

fuzz_target!(|data: &[u8]| {
    if let Ok((tlv, rest)) = simple::parse_one(data) {
        assert_eq!(tlv.total_len() + rest.len(), data.len());
        let tag = u8::try_from(tlv.tag).expect("simple-TLV tags are one byte");
        let mut encoded = Vec::new();
        simple::encode(tag, tlv.value, &mut encoded).expect("parsed object encodes");
        let (again, tail) = simple::parse_one(&encoded).expect("re-encoded object parses");
        assert_eq!((again.tag, again.value), (tlv.tag, tlv.value));
        assert!(tail.is_empty());
    }
    let _ = simple::parse_all(data);
});
