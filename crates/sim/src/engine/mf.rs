//! MF level (B.8): the data objects GET DATA `00 CA P1 P2 Le` answers in the power-on state or
//! after selecting the GP issuer security domain. No EF is readable at this level.
//!
//! The card answers each object's value without its tag. Objects longer than 256 bytes (the two
//! CVCs) need an extended Le: a short one is refused with `6700` (B.4).
//!
//! What the simulator puts in them: `0045` is the 15-digit card serial of the common AP record
//! (the public sources say only "card identification number, ASCII"), `00F0`/`00F2` the
//! municipality code and expiry, `0042` the key id of the simulator's chain authority. The CVC
//! chain is issued with the image ([`crate::cvc`]): `00F8`, the chain authority certifying the
//! municipality's intermediate key (`00F7`), and `7F21`, that key certifying a key of the card,
//! each with the `4D` header list a real card writes.

use mynacard_card::catalogue::mf as tag;

use crate::cvc::{CvcRole, subject_id};
use crate::image::CardImage;

/// GlobalPlatform card recognition data (the contents of tag `66`): the GP RID OID, card
/// management type and version (GP 2.1.1), card identification scheme and SCP02 `i=15`.
const CARD_RECOGNITION: [u8; 49] = [
    0x73, 0x2F, // card recognition data
    0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01, // 1.2.840.114283.1
    0x60, 0x0C, 0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x02, 0x02, 0x01, 0x01, 0x63, 0x09,
    0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x03, //
    0x64, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x04, 0x02, 0x15,
];

/// The MF-level data objects of an image, by tag.
pub(super) fn objects(image: &CardImage) -> Vec<(u16, Vec<u8>)> {
    let atr = image.contact_atr();
    vec![
        (tag::ISSUER_ID, CvcRole::CardChain.authority_id().to_vec()),
        (tag::CARD_ID, image.face.serial.as_bytes().to_vec()),
        (tag::CARD_RECOGNITION, CARD_RECOGNITION.to_vec()),
        (
            tag::MUNICIPALITY_CODE,
            image.face.municipality_code.as_bytes().to_vec(),
        ),
        (tag::EXPIRY, image.face.expiry.to_yyyymmdd().into_bytes()),
        (
            tag::INTERMEDIATE_KEY_ID,
            subject_id(CvcRole::CardChain, &image.face.municipality_code).to_vec(),
        ),
        (tag::UPPER_CVC, image.cvcs.mf_upper.clone()),
        (tag::LOWER_CVC, image.cvcs.mf_lower.clone()),
        (tag::CONTACT_ATR, atr.get(1..).unwrap_or_default().to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use mynacard_apdu::tlv::ber;

    #[test]
    fn card_recognition_data_is_one_well_formed_object() {
        let (outer, rest) = ber::parse_one(&CARD_RECOGNITION).unwrap();
        assert!(rest.is_empty());
        assert_eq!(outer.tag, 0x73);
        let mut inner = outer.value;
        let mut tags = Vec::new();
        while !inner.is_empty() {
            let (t, after) = ber::parse_one(inner).unwrap();
            tags.push(t.tag);
            inner = after;
        }
        assert_eq!(tags, [0x06, 0x60, 0x63, 0x64]);
    }
}
