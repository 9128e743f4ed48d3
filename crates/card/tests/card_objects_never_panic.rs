//! The parsers of the card-level identification and of the rendered individual number take
//! arbitrary card bytes without panicking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_card::common::CardIdentification;
use mynacard_card::visual::MyNumberImage;
use proptest::prelude::*;

proptest! {
    #[test]
    fn card_identification_never_panics(
        number in proptest::collection::vec(any::<u8>(), 0..40),
        municipality in proptest::collection::vec(any::<u8>(), 0..8),
        expiry in proptest::collection::vec(any::<u8>(), 0..10),
        issuer in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        let parsed = CardIdentification::from_objects(&number, &municipality, &expiry, &issuer);
        if let Ok(id) = parsed {
            prop_assert_eq!(id.card_number.expose().as_bytes(), number.as_slice());
            prop_assert_eq!(id.municipality_code.as_bytes(), municipality.as_slice());
            prop_assert_eq!(&id.issuer_id[..], issuer.as_slice());
        }
    }

    #[test]
    fn digit_objects_parse(number in "[0-9A-Z]{1,32}", municipality in "[0-9]{5}",
                           year in 1000u16..=9999, month in 1u8..=12, day in 1u8..=28) {
        let expiry = format!("{year:04}{month:02}{day:02}");
        let id = CardIdentification::from_objects(
            number.as_bytes(), municipality.as_bytes(), expiry.as_bytes(), &[0x36; 16],
        ).unwrap();
        prop_assert_eq!(id.card_number.expose(), number.as_str());
        prop_assert_eq!(id.expiry.year, year);
    }

    #[test]
    fn age_records_and_certificates_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = mynacard_card::visual::AgeRecord::parse(&bytes);
        let trust = mynacard_card::CvcTrust::production().allow_test_hierarchy();
        let parsed = [
            mynacard_card::CvCertificate::parse(&bytes),
            mynacard_card::CvCertificate::parse_contents(&bytes),
        ];
        for cvc in parsed.iter().flatten() {
            // Arbitrary bytes never verify under an authority.
            prop_assert!(trust.verify(cvc, mynacard_card::cvc::CvcScope::Visual).is_err());
            prop_assert!(trust.verify_card_chain(cvc, Some(cvc)).is_err());
        }
    }

    #[test]
    fn my_number_image_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        let _ = MyNumberImage::parse(&bytes);
    }

    #[test]
    fn my_number_image_with_a_valid_header_never_panics(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        png_first in any::<bool>(),
    ) {
        let mut value = Vec::new();
        if png_first {
            let png = [&b"\x89PNG\r\n\x1a\n"[..], &body[..body.len().min(20)]].concat();
            value = mynacard_apdu::tlv::ber::to_vec(0xDF41, &png).unwrap();
        }
        value.extend_from_slice(&body);
        let file = mynacard_apdu::tlv::ber::to_vec(0xFF40, &value).unwrap();
        let _ = MyNumberImage::parse(&file);
    }
}
