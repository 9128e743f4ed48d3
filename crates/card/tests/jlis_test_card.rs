//! The records of a real J-LIS test card (`crates/sim/images/jlis-test-card/`, bytes read from
//! the card; provenance and licence beside them): every record parses, verifies under its
//! application's certificate, and that certificate verifies under the J-LIS test authority, only
//! with the test opt-in. Any one changed byte of what is signed (signature, signed data, photo,
//! key) is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ops::Range;
use std::path::PathBuf;

use mynacard_apdu::tlv::ber;
use mynacard_card::cvc::{Anchor, Checked, CvcRefusal, CvcScope, CvcTrust, TrustedCvc};
use mynacard_card::text::{Attributes, IntegrityRecord, Sex};
use mynacard_card::visual::{AgeRecord, CardFace, MyNumberImage};
use mynacard_card::{CvCertificate, Date};

fn file(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../sim/images/jlis-test-card")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn test_trust() -> CvcTrust {
    CvcTrust::production().allow_test_hierarchy()
}

/// Where the value of `tag` (an object inside the record `outer`) lies in `bytes`.
fn value_range(bytes: &[u8], outer: u32, tag: u32) -> Range<usize> {
    let record = ber::find(bytes, outer).unwrap().unwrap().value;
    let found = ber::iter(record)
        .map(Result::unwrap)
        .find(|t| t.tag == tag)
        .unwrap()
        .value;
    let start = found.as_ptr() as usize - bytes.as_ptr() as usize;
    start..start + found.len()
}

fn flipped(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at] ^= 0x01;
    out
}

/// A certificate whose key is `key_objects` (`90`/`91`): to check a record under another key.
fn cvc_with_key(key_objects: &[u8]) -> CvCertificate {
    let mut body = vec![b'6'; 32];
    body.extend_from_slice(key_objects);
    let inner = [
        ber::to_vec(0x5F4E, &body).unwrap(),
        ber::to_vec(0x5F37, &[0; 256]).unwrap(),
    ]
    .concat();
    CvCertificate::parse(&ber::to_vec(0x7F21, &inner).unwrap()).unwrap()
}

fn trusted_name(anchor: &Anchor) -> String {
    match anchor {
        Anchor::Trusted(TrustedCvc { authority, .. }) => authority.to_string(),
        Anchor::Unanchored(refusal) => panic!("unanchored: {refusal}"),
    }
}

/// Parses and checks the card face, as `VerifiedVisual::read_face_checked` does.
fn check_face(face: &[u8], cvc: &[u8], trust: &CvcTrust) -> mynacard_card::Result<CardFace> {
    let face = CardFace::parse(face)?;
    let cvc = CvCertificate::parse(cvc)?;
    Checked::new(
        face,
        cvc,
        trust,
        CvcScope::Visual,
        CardFace::verify_signature,
    )?
    .into_trusted()
}

#[test]
fn the_visual_certificate_verifies_under_the_jlis_test_authority_only_on_opt_in() {
    let cvc = CvCertificate::parse(&file("surface-0004.bin")).unwrap();
    assert_eq!(cvc.issuer().to_string(), "6000023/001");
    assert_eq!(&cvc.subject_key_id[..7], b"1322121");
    let trusted = test_trust().verify(&cvc, CvcScope::Visual).unwrap();
    assert_eq!(trusted.authority.to_string(), "6000023/001");
    assert_eq!(
        CvcTrust::production().verify(&cvc, CvcScope::Visual),
        Err(CvcRefusal::TestHierarchyNotTrusted {
            issuer: cvc.issuer()
        })
    );
    // The visual authority does not vouch for a text AP certificate.
    assert!(matches!(
        test_trust().verify(&cvc, CvcScope::Text),
        Err(CvcRefusal::WrongScope { .. })
    ));
    let text = CvCertificate::parse(&file("text-0004.bin")).unwrap();
    assert_eq!(
        test_trust()
            .verify(&text, CvcScope::Text)
            .unwrap()
            .authority
            .to_string(),
        "6000033/001"
    );
    // One changed byte of the body (ids, key) or of the signature: refused.
    let bytes = file("surface-0004.bin");
    let body = {
        let outer = ber::find(&bytes, 0x7F21).unwrap().unwrap().value;
        let v = ber::find(outer, 0x5F4E).unwrap().unwrap().value;
        let start = v.as_ptr() as usize - bytes.as_ptr() as usize;
        start..start + v.len()
    };
    for at in [
        body.start + 20,
        body.start + 100,
        body.end - 1,
        bytes.len() - 1,
    ] {
        // A key made unusable (an even modulus) is already refused by the parser.
        let Ok(changed) = CvCertificate::parse(&flipped(&bytes, at)) else {
            continue;
        };
        assert!(
            matches!(
                test_trust().verify(&changed, CvcScope::Visual),
                Err(CvcRefusal::SignatureInvalid { .. } | CvcRefusal::UnknownIssuer { .. })
            ),
            "byte {at}"
        );
    }
}

#[test]
fn the_card_level_chain_verifies_link_by_link_only_on_opt_in() {
    let upper = CvCertificate::parse_contents(&file("mf-do-F8.bin")).unwrap();
    let lower = CvCertificate::parse_contents(&file("mf-do-7F21.bin")).unwrap();
    let chain = test_trust()
        .verify_card_chain(&upper, Some(&lower))
        .unwrap();
    assert_eq!(chain.root.authority.to_string(), "6000020/001");
    assert_eq!(chain.intermediate.to_string(), "1322130/002");
    assert_eq!(chain.lower.unwrap().to_string(), "0000050/001");
    assert!(matches!(
        CvcTrust::production().verify_card_chain(&upper, Some(&lower)),
        Err(CvcRefusal::TestHierarchyNotTrusted { .. })
    ));
    // The lower link must name the upper's subject and verify under its key.
    assert!(matches!(
        test_trust().verify_card_chain(&upper, Some(&upper)),
        Err(CvcRefusal::ChainBroken { .. })
    ));
    let bytes = file("mf-do-7F21.bin");
    let tampered = CvCertificate::parse_contents(&flipped(&bytes, bytes.len() - 1)).unwrap();
    assert!(matches!(
        test_trust().verify_card_chain(&upper, Some(&tampered)),
        Err(CvcRefusal::SignatureInvalid { .. })
    ));
}

#[test]
fn the_card_face_verifies_under_the_certificate_key_not_under_the_card_key() {
    let (face_bytes, cvc) = (file("surface-0002.bin"), file("surface-0004.bin"));
    let face = check_face(&face_bytes, &cvc, &test_trust()).unwrap();
    assert_eq!(face.birth_date, Date::new(1980, 2, 17).unwrap());
    assert_eq!(face.sex, Sex::Male);
    assert_eq!(face.expiry, Date::new(2035, 2, 17).unwrap());
    // JPEG 2000 codestream in its file format box.
    assert!(
        face.photo
            .starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' '])
    );
    // Without the opt-in the record is unanchored, never good.
    let checked = Checked::new(
        CardFace::parse(&face_bytes).unwrap(),
        CvCertificate::parse(&cvc).unwrap(),
        &CvcTrust::production(),
        CvcScope::Visual,
        CardFace::verify_signature,
    )
    .unwrap();
    assert!(!checked.is_trusted());
    assert!(matches!(
        checked.into_trusted(),
        Err(mynacard_card::Error::Unanchored(
            CvcRefusal::TestHierarchyNotTrusted { .. }
        ))
    ));
    // DF28 is not made by the card key DF24.
    let df24 = &face_bytes[value_range(&face_bytes, 0xFF20, 0xDF24)];
    assert!(face.verify_signature(&cvc_with_key(df24)).is_err());
}

#[test]
fn any_changed_byte_of_the_signed_card_face_is_refused() {
    let (face, cvc) = (file("surface-0002.bin"), file("surface-0004.bin"));
    let trust = test_trust();
    for (what, tag) in [
        ("birth date", 0xDF22),
        ("sex", 0xDF23),
        ("card key", 0xDF24),
        ("name image", 0xDF25),
        ("address image", 0xDF26),
        ("photo", 0xDF27),
        ("signature", 0xDF28),
    ] {
        let range = value_range(&face, 0xFF20, tag);
        for at in [range.start, (range.start + range.end) / 2, range.end - 1] {
            assert!(
                check_face(&flipped(&face, at), &cvc, &trust).is_err(),
                "{what}: byte {at}"
            );
        }
    }
    // The certificate's key: the signature no longer verifies under it.
    let key = {
        let outer = ber::find(&cvc, 0x7F21).unwrap().unwrap().value;
        let body = ber::find(outer, 0x5F4E).unwrap().unwrap().value;
        body.as_ptr() as usize - cvc.as_ptr() as usize + 200
    };
    assert!(check_face(&face, &flipped(&cvc, key), &trust).is_err());
    // The expiry follows the signature and is not covered by it (as on every card): a change
    // there is not detected by the record's signature.
    let expiry = value_range(&face, 0xFF20, 0xDF29);
    let changed = check_face(&flipped(&face, expiry.start + 3), &cvc, &trust).unwrap();
    assert_eq!(changed.expiry, Date::new(2034, 2, 17).unwrap());
}

#[test]
fn the_age_record_and_the_rendered_number_verify_under_the_certificate_key() {
    let cvc = CvCertificate::parse(&file("surface-0004.bin")).unwrap();
    let trust = test_trust();
    let age_bytes = file("surface-0001.bin");
    let age = AgeRecord::parse(&age_bytes).unwrap();
    assert_eq!(age.birth_date, Date::new(1980, 2, 17).unwrap());
    let checked = Checked::new(
        age,
        cvc.clone(),
        &trust,
        CvcScope::Visual,
        AgeRecord::verify_signature,
    )
    .unwrap();
    assert_eq!(trusted_name(&checked.anchor), "6000023/001");
    // DF12 is the card key (the face's DF24), which does not sign the record.
    let face = CardFace::parse(&file("surface-0002.bin")).unwrap();
    assert_eq!(checked.record.card_key, face.card_key);
    let df12 = &age_bytes[value_range(&age_bytes, 0xFF10, 0xDF12)];
    assert!(
        checked
            .record
            .verify_signature(&cvc_with_key(df12))
            .is_err()
    );
    for tag in [0xDF11, 0xDF12, 0xDF13] {
        let range = value_range(&age_bytes, 0xFF10, tag);
        let changed = AgeRecord::parse(&flipped(&age_bytes, range.start + 1));
        assert!(
            changed.is_err() || changed.unwrap().verify_signature(&cvc).is_err(),
            "{tag:X}"
        );
    }

    let image_bytes = file("surface-0005.bin");
    let image = MyNumberImage::parse(&image_bytes).unwrap();
    image.verify_signature(&cvc).unwrap();
    assert_eq!(image.card_key, face.card_key);
    for tag in [0xDF41, 0xDF42, 0xDF43] {
        let range = value_range(&image_bytes, 0xFF40, tag);
        let changed = MyNumberImage::parse(&flipped(&image_bytes, range.end - 1));
        assert!(
            changed.is_err() || changed.unwrap().verify_signature(&cvc).is_err(),
            "{tag:X}"
        );
    }
}

#[test]
fn the_text_attributes_verify_through_the_integrity_record() {
    let (attributes, integrity, cvc) = (
        file("text-0002.bin"),
        file("text-0003.bin"),
        file("text-0004.bin"),
    );
    let check = |attributes: &[u8], integrity: &[u8], cvc: &[u8], trust: &CvcTrust| {
        let attributes = Attributes::parse(attributes)?;
        let integrity = IntegrityRecord::parse(integrity)?;
        integrity.check_attributes(&attributes)?;
        let cvc = CvCertificate::parse(cvc)?;
        Checked::new(attributes, cvc, trust, CvcScope::Text, |_, cvc| {
            integrity.verify_signature(cvc)
        })?
        .into_trusted()
    };
    let trust = test_trust();
    let good = check(&attributes, &integrity, &cvc, &trust).unwrap();
    assert_eq!(good.name, "黒桐\u{3000}幹也");
    assert_eq!(good.birth_date, Date::new(1980, 2, 17).unwrap());
    assert_eq!(good.sex, Sex::Male);
    let expected_address = {
        let range = value_range(&attributes, 0xFF20, 0xDF23);
        String::from_utf8(attributes[range].to_vec()).unwrap()
    };
    assert_eq!(good.address, expected_address);
    assert!(good.address.starts_with("東京都"), "{}", good.address);
    assert!(matches!(
        check(&attributes, &integrity, &cvc, &CvcTrust::production()),
        Err(mynacard_card::Error::Unanchored(_))
    ));
    for tag in [0xDF22, 0xDF23, 0xDF24, 0xDF25] {
        let range = value_range(&attributes, 0xFF20, tag);
        assert!(
            check(&flipped(&attributes, range.start), &integrity, &cvc, &trust).is_err(),
            "{tag:X}"
        );
    }
    for tag in [0xDF31, 0xDF32, 0xDF33] {
        let range = value_range(&integrity, 0xFF30, tag);
        assert!(
            check(&attributes, &flipped(&integrity, range.start), &cvc, &trust).is_err(),
            "{tag:X}"
        );
    }
}
