//! The text AP integrity record and the visual AP card-face record, signed the way test cards
//! sign them (as established against a JPKI test card's files in public sources): verification
//! accepts them, and rejects any change to the covered data.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::tlv::ber;
use mynacard_card::text::{Attributes, IntegrityRecord};
use mynacard_card::visual::CardFace;
use mynacard_card::{CvCertificate, HashAlgorithm};
use mynacard_sim::pki::TestPki;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};

fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    ber::to_vec(tag, value).unwrap()
}

fn key() -> PrivateKey {
    TestPki::shared()
        .unwrap()
        .key("record-signature-test")
        .unwrap()
}

fn key_objects(key: &PrivateKey) -> Vec<u8> {
    [tlv(0x90, &key.e_bytes()), tlv(0x91, &key.n_bytes())].concat()
}

fn cvc(key: &PrivateKey) -> CvCertificate {
    let mut body = vec![b'6'; 32];
    body.extend(key_objects(key));
    let inner = [tlv(0x5F4E, &body), tlv(0x5F37, &[0; 256])].concat();
    CvCertificate::parse(&tlv(0x7F21, &inner)).unwrap()
}

fn sign_encoded(key: &PrivateKey, encoded: &[u8]) -> Vec<u8> {
    key.sign(Pkcs1v15Sign::new_unprefixed(), encoded).unwrap()
}

#[test]
fn card_face_signed_over_three_digests_in_one_digest_info() {
    let key = key();
    let fields = [
        tlv(0xDF22, b"19800217"),
        tlv(0xDF23, b"1"),
        tlv(0xDF24, &key_objects(&key)),
        tlv(0xDF25, b"\x89PNG name"),
        tlv(0xDF26, b"\x89PNG address"),
        tlv(0xDF27, b"\x00\x00\x00\x0CjP  photo"),
    ];
    let digests = [
        Sha256::digest(fields[..3].concat()),
        Sha256::digest(fields[3..5].concat()),
        Sha256::digest(&fields[5]),
    ]
    .concat();
    // DigestInfo { sha256, OCTET STRING (96 bytes) }.
    let mut info = vec![
        0x30, 0x71, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x60,
    ];
    info.extend_from_slice(&digests);
    let signature = sign_encoded(&key, &info);
    let build = |photo: &[u8], signature: &[u8]| {
        let mut objects = vec![tlv(0xDF21, &[0; 18])];
        objects.extend(fields[..5].iter().cloned());
        objects.push(tlv(0xDF27, photo));
        objects.push(tlv(0xDF28, signature));
        objects.push(tlv(0xDF29, b"20350217"));
        objects.push(tlv(0xDF2A, b"\x89PNG code"));
        tlv(0xFF20, &objects.concat())
    };
    let cvc = cvc(&key);
    let face = CardFace::parse(&build(b"\x00\x00\x00\x0CjP  photo", &signature)).unwrap();
    face.verify_signature(&cvc).unwrap();
    let tampered = CardFace::parse(&build(b"\x00\x00\x00\x0CjP  phot0", &signature)).unwrap();
    assert!(tampered.verify_signature(&cvc).is_err());

    // SHA-256 over the 96 digest bytes, in an ordinary DigestInfo, is another message: refused.
    let hashed_info = HashAlgorithm::Sha256
        .digest_info(&HashAlgorithm::Sha256.digest(&digests))
        .unwrap();
    let hashed = sign_encoded(&key, &hashed_info);
    let other_form = CardFace::parse(&build(b"\x00\x00\x00\x0CjP  photo", &hashed)).unwrap();
    assert!(matches!(
        other_form.verify_signature(&cvc),
        Err(mynacard_card::Error::SignatureInvalid { .. })
    ));
}

#[test]
fn integrity_record_signed_over_the_digest_objects() {
    let key = key();
    let attributes_value = [
        tlv(0xDF22, "番号\u{3000}花子".as_bytes()),
        tlv(0xDF23, "東京都".as_bytes()),
        tlv(0xDF24, b"19800217"),
        tlv(0xDF25, b"2"),
    ]
    .concat();
    let attributes_file = tlv(
        0xFF20,
        &[tlv(0xDF21, &[0; 8]), attributes_value.clone()].concat(),
    );
    let attributes = Attributes::parse(&attributes_file).unwrap();
    let digests = [
        tlv(0xDF31, &[7; 32]),
        tlv(0xDF32, &Sha256::digest(&attributes_value)),
    ]
    .concat();
    let info = HashAlgorithm::Sha256
        .digest_info(&HashAlgorithm::Sha256.digest(&digests))
        .unwrap();
    let signature = sign_encoded(&key, &info);
    let record = IntegrityRecord::parse(&tlv(
        0xFF30,
        &[digests.clone(), tlv(0xDF33, &signature)].concat(),
    ))
    .unwrap();
    let cvc = cvc(&key);
    record.verify_signature(&cvc).unwrap();
    record.check_attributes(&attributes).unwrap();

    let other = Attributes::parse(&tlv(
        0xFF20,
        &[
            tlv(0xDF22, b"x"),
            tlv(0xDF23, b"y"),
            tlv(0xDF24, b"19800217"),
            tlv(0xDF25, b"2"),
        ]
        .concat(),
    ))
    .unwrap();
    assert!(record.check_attributes(&other).is_err());
    let mut forged = digests.clone();
    forged[5] ^= 1;
    let bad =
        IntegrityRecord::parse(&tlv(0xFF30, &[forged, tlv(0xDF33, &signature)].concat())).unwrap();
    assert!(bad.verify_signature(&cvc).is_err());
    assert_eq!(key.size(), 256);

    // A signature over the two bare digests (headers left out) is refused.
    let bare = [
        [7u8; 32].to_vec(),
        Sha256::digest(&attributes_value).to_vec(),
    ]
    .concat();
    let bare_info = HashAlgorithm::Sha256
        .digest_info(&HashAlgorithm::Sha256.digest(&bare))
        .unwrap();
    let bare_signature = sign_encoded(&key, &bare_info);
    let other_form = IntegrityRecord::parse(&tlv(
        0xFF30,
        &[digests, tlv(0xDF33, &bare_signature)].concat(),
    ))
    .unwrap();
    assert!(matches!(
        other_form.verify_signature(&cvc),
        Err(mynacard_card::Error::SignatureInvalid { .. })
    ));
}
