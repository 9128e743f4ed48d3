//! The text, visual and common APs: records, their digests and signatures, the PIN and the
//! collation keys that open them, card-presence signing and internal authentication.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mynacard_apdu::tlv::ber;
use mynacard_sim::engine::Card;
use mynacard_sim::state::SecretId;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};
use support::*;

fn text_key() -> &'static PrivateKey {
    &keys()[2]
}
fn visual_key() -> &'static PrivateKey {
    &keys()[3]
}
fn common_key() -> &'static PrivateKey {
    &keys()[4]
}
/// The keys the CVCs certify, which sign the records (not the AP keys, as on a real card).
fn visual_record_key() -> &'static PrivateKey {
    &record_keys().0
}
fn text_record_key() -> &'static PrivateKey {
    &record_keys().1
}
fn signs_sha256(key: &PrivateKey, message: &[u8], signature: &[u8]) -> bool {
    key.to_public_key()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        )
        .is_ok()
}

fn open(select: &str) -> Card {
    let mut card = card();
    assert_eq!(sw(&mut card, select), 0x9000);
    card
}

fn read(card: &mut Card, fid: u16) -> (Vec<u8>, u16) {
    let sw = tx(card, &select_ef(fid)).1;
    assert_eq!(sw, 0x9000, "SELECT EF {fid:04X}");
    read_all_short(card)
}

fn verify_sha256(key: &PrivateKey, message: &[u8], signature: &[u8]) {
    key.to_public_key()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        )
        .unwrap();
}

fn value(tlv: &[u8], tag: u32) -> Vec<u8> {
    ber::find(tlv, tag).unwrap().unwrap().value.to_vec()
}

// ---- text AP ----

#[test]
fn text_ap_files_are_closed_until_the_pin() {
    let mut card = open(SELECT_TEXT);
    for fid in [0x0001, 0x0002, 0x0003] {
        assert_eq!(tx(&mut card, &select_ef(fid)).1, 0x9000);
        assert_eq!(tx(&mut card, &h("00B0000004")).1, 0x6982, "{fid:04X}");
    }
    // The CVC and the basic information are free.
    let (cvc, sw) = read(&mut card, 0x0004);
    assert_eq!(sw, 0x9000);
    let body = ber::find(&cvc, 0x7F21).unwrap().unwrap().value.to_vec();
    assert_eq!(value(&body, 0x5F4E).len(), 297);
    assert_eq!(value(&body, 0x5F37).len(), 256);
    let (info, _) = read(&mut card, 0x0005);
    assert_eq!(
        value(&info, 0xFF40).len(),
        // DF43 (128 bytes) has its length as 82 00 80, as the card writes it.
        (2 + 1 + 4) + (2 + 1 + 16) + (2 + 3 + 128)
    );
}

#[test]
fn my_number_with_padding_attributes_and_integrity_record() {
    let image = image();
    let mut card = open(SELECT_TEXT);
    assert_eq!(tx(&mut card, &verify(0x91, TEXT_PIN)).1, 0x9000);

    let (my_number, sw) = read(&mut card, 0x0001);
    assert_eq!(sw, 0x9000);
    let mut expected = vec![0xFF, 0x10, 0x0C];
    expected.extend_from_slice(MY_NUMBER.as_bytes());
    expected.extend_from_slice(&[0xFF, 0xFF]);
    assert_eq!(my_number, expected);

    let (attributes, _) = read(&mut card, 0x0002);
    let inner = value(&attributes, 0xFF20);
    let table = value(&inner, 0xDF21);
    assert_eq!(table.len(), 8);
    let object_at = |i: usize| {
        let at = usize::from(u16::from_be_bytes([table[2 * i], table[2 * i + 1]]));
        ber::parse_one(&attributes[at..]).unwrap().0
    };
    assert_eq!(object_at(0).tag, 0xDF22);
    assert_eq!(object_at(0).value, image.person.name.as_bytes());
    assert_eq!(object_at(1).value, image.person.address.as_bytes());
    assert_eq!(object_at(2).value, b"19800217");
    assert_eq!(object_at(3).value, b"2");

    let (integrity, _) = read(&mut card, 0x0003);
    let inner_integrity = value(&integrity, 0xFF30);
    let h1 = value(&inner_integrity, 0xDF31);
    let h2 = value(&inner_integrity, 0xDF32);
    let signature = value(&inner_integrity, 0xDF33);
    // The digest covers the 17 bytes as stored, padding included.
    assert_eq!(h1, Sha256::digest(&my_number).to_vec());
    // The attribute digest skips the offset table.
    let first = usize::from(u16::from_be_bytes([table[0], table[1]]));
    assert_eq!(h2, Sha256::digest(&attributes[first..]).to_vec());
    // DF33 signs the DF31 and DF32 objects as written, headers included (the real-card form).
    let signed_end = inner_integrity.len()
        - ber::find(&inner_integrity, 0xDF33)
            .unwrap()
            .unwrap()
            .total_len();
    let signed = &inner_integrity[..signed_end];
    assert_eq!(signed.len(), 2 * (2 + 1 + 32));
    assert_eq!(&signed[..3], &[0xDF, 0x31, 0x20]);
    assert_eq!(&signed[35..38], &[0xDF, 0x32, 0x20]);
    verify_sha256(text_record_key(), signed, &signature);
    // Not by the AP's own key (DF51).
    assert!(!signs_sha256(text_key(), signed, &signature));
    // The bare digests are not what is signed.
    assert!(
        text_record_key()
            .to_public_key()
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest([h1, h2].concat()),
                &signature,
            )
            .is_err()
    );
}

#[test]
fn collation_a_opens_the_number_and_b_the_attributes() {
    let mut card = open(SELECT_TEXT);
    assert_eq!(tx(&mut card, &verify(0x94, MY_NUMBER)).1, 0x9000);
    assert_eq!(read(&mut card, 0x0001).1, 0x9000);
    assert_eq!(read(&mut card, 0x0003).1, 0x9000);
    assert_eq!(tx(&mut card, &select_ef(0x0002)).1, 0x9000);
    assert_eq!(tx(&mut card, &h("00B0000004")).1, 0x6982);

    let mut card = open(SELECT_TEXT);
    assert_eq!(tx(&mut card, &verify(0x95, COLLATION_B)).1, 0x9000);
    assert_eq!(read(&mut card, 0x0002).1, 0x9000);
    assert_eq!(read(&mut card, 0x0003).1, 0x9000);
    assert_eq!(tx(&mut card, &select_ef(0x0001)).1, 0x9000);
    assert_eq!(tx(&mut card, &h("00B0000004")).1, 0x6982);
}

#[test]
fn text_pin_has_three_tries_and_key_0012_is_blocked() {
    let mut card = open(SELECT_TEXT);
    assert_eq!(sw(&mut card, "00200091"), 0x63C3);
    assert_eq!(tx(&mut card, &verify(0x91, "0000")).1, 0x63C2);
    assert_eq!(tx(&mut card, &verify(0x91, "0000")).1, 0x63C1);
    assert_eq!(tx(&mut card, &verify(0x91, "0000")).1, 0x63C0);
    assert_eq!(tx(&mut card, &verify(0x91, TEXT_PIN)).1, 0x6984);
    assert_eq!(sw(&mut card, "00200092"), 0x63C0);
    assert_eq!(tx(&mut card, &verify(0x92, "1234")).1, 0x6984);
    // Collation keys cannot be changed by the holder.
    assert_eq!(tx(&mut card, &verify(0x94, MY_NUMBER)).1, 0x9000);
    let mut change = h("0024019404");
    change.extend_from_slice(b"0000");
    assert_eq!(tx(&mut card, &change).1, 0x6985);
}

// ---- visual AP ----

#[test]
fn collation_b_uses_the_era_year_and_opens_the_face_record() {
    let image = image();
    let mut card = open(SELECT_VISUAL);
    assert_eq!(tx(&mut card, &select_ef(0x0002)).1, 0x9000);
    assert_eq!(tx(&mut card, &h("00B0000004")).1, 0x6982);
    // The Gregorian two-digit year is a wrong attempt.
    assert_eq!(tx(&mut card, &verify(0x92, "80021720304321")).1, 0x63C9);
    assert_eq!(tx(&mut card, &verify(0x92, COLLATION_B)).1, 0x9000);
    assert_eq!(sw(&mut card, "00200092"), 0x63CA);

    let (face, sw) = read(&mut card, 0x0002);
    assert_eq!(sw, 0x9000);
    let inner = value(&face, 0xFF20);
    let table = value(&inner, 0xDF21);
    let offset = |i: usize| usize::from(u16::from_be_bytes([table[2 * i], table[2 * i + 1]]));
    assert_eq!(table.len(), 18);
    let object = |i: usize| ber::parse_one(&face[offset(i)..]).unwrap().0;
    let tags: Vec<u32> = (0..9).map(|i| object(i).tag).collect();
    assert_eq!(
        tags,
        vec![
            0xDF22, 0xDF23, 0xDF24, 0xDF25, 0xDF26, 0xDF27, 0xDF28, 0xDF29, 0xDF2A
        ]
    );
    assert_eq!(object(0).value, b"19800217");
    assert_eq!(object(5).value, image.face.photo.as_slice());
    assert_eq!(object(7).value, b"20300217");
    // DF28 signs the three segments DF22-DF24, DF25-DF26, DF27, each hashed, with the three
    // digests together as the digest field of one SHA-256 DigestInfo (the real-card form).
    let digests = [
        Sha256::digest(&face[offset(0)..offset(3)]),
        Sha256::digest(&face[offset(3)..offset(5)]),
        Sha256::digest(&face[offset(5)..offset(6)]),
    ]
    .concat();
    let mut info = vec![
        0x30, 0x71, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x60,
    ];
    info.extend_from_slice(&digests);
    let face_key = visual_record_key().to_public_key();
    face_key
        .verify(Pkcs1v15Sign::new_unprefixed(), &info, object(6).value)
        .unwrap();
    // Not by the card key DF24 (a real card's DF28 does not verify under it either).
    assert!(
        visual_key()
            .to_public_key()
            .verify(Pkcs1v15Sign::new_unprefixed(), &info, object(6).value)
            .is_err()
    );
    // Not SHA-256 over the concatenated digests.
    assert!(
        face_key
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(&digests),
                object(6).value,
            )
            .is_err()
    );
    // DF24 is the card key: 90 exponent, 91 modulus.
    let key = object(2).value.to_vec();
    assert_eq!(value(&key, 0x90), vec![0x01, 0x00, 0x01]);
    assert_eq!(value(&key, 0x91).len(), 256);
}

#[test]
fn collation_a_opens_the_face_and_the_birth_date_key_the_age_record() {
    let mut card = open(SELECT_VISUAL);
    assert_eq!(tx(&mut card, &verify(0x93, MY_NUMBER)).1, 0x9000);
    assert_eq!(read(&mut card, 0x0002).1, 0x9000);
    assert_eq!(tx(&mut card, &select_ef(0x0001)).1, 0x9000);
    assert_eq!(tx(&mut card, &h("00B0000004")).1, 0x6982);
    // The birth-date key takes the era YYMMDD alone.
    assert_eq!(tx(&mut card, &verify(0x91, "550217")).1, 0x9000);
    let (age, sw) = read(&mut card, 0x0001);
    assert_eq!(sw, 0x9000);
    let inner = value(&age, 0xFF10);
    assert_eq!(value(&inner, 0xDF11), b"19800217");
    let signed_end = inner.len() - ber::find(&inner, 0xDF13).unwrap().unwrap().total_len();
    verify_sha256(
        visual_record_key(),
        &inner[..signed_end],
        &value(&inner, 0xDF13),
    );
    assert!(!signs_sha256(
        visual_key(),
        &inner[..signed_end],
        &value(&inner, 0xDF13)
    ));
    // Basic data and the CVC are free; EF 0005 exists but is closed.
    let mut fresh = open(SELECT_VISUAL);
    let (basic, _) = read(&mut fresh, 0x0003);
    assert_eq!(value(&value(&basic, 0xFF30), 0xDF34), b"13101");
    assert_eq!(read(&mut fresh, 0x0004).1, 0x9000);
    assert_eq!(tx(&mut fresh, &select_ef(0x0005)).1, 0x9000);
    assert_eq!(tx(&mut fresh, &h("00B0000004")).1, 0x6982);
}

#[test]
fn collation_keys_lock_after_ten_failures() {
    let mut card = open(SELECT_VISUAL);
    for remaining in (0..10u16).rev() {
        assert_eq!(
            tx(&mut card, &verify(0x92, "00000000000000")).1,
            0x63C0 | remaining
        );
    }
    assert_eq!(tx(&mut card, &verify(0x92, COLLATION_B)).1, 0x6984);
    let status = card.secret_status(SecretId::VisualCollationB).unwrap();
    assert_eq!((status.remaining, status.limit), (0, 10));
    // The visual AP's A is a separate key.
    assert_eq!(tx(&mut card, &verify(0x93, MY_NUMBER)).1, 0x9000);
}

#[test]
fn card_presence_signature_without_a_pin() {
    for (select, key) in [(SELECT_VISUAL, visual_key()), (SELECT_TEXT, text_key())] {
        let mut card = open(select);
        let (challenge, _) = tx(&mut card, &h("0084000010"));
        let di = digest_info(&challenge);
        let mut apdu = vec![0x80, 0x2A, 0x00, 0x00, di.len() as u8];
        apdu.extend_from_slice(&di);
        apdu.push(0x00);
        let (signature, sw) = tx(&mut card, &apdu);
        assert_eq!(sw, 0x9000);
        verify_sha256(key, &challenge, &signature);
        apdu[2] = 0x01;
        assert_eq!(tx(&mut card, &apdu).1, 0x6A86);
        apdu[2] = 0x00;
        apdu[3] = 0x80;
        assert_eq!(tx(&mut card, &apdu).1, 0x6A86);
    }
}

// ---- common AP ----

#[test]
fn common_ap_serial_record() {
    let mut card = open(SELECT_COMMON);
    // SELECT EF, then READ RECORD with P2 = 04; or by SFI 1 (P2 = 0C).
    assert_eq!(tx(&mut card, &select_ef(0x0001)).1, 0x9000);
    let (record, sw) = tx(&mut card, &h("00B2010400"));
    assert_eq!(sw, 0x9000);
    let mut expected = vec![0x01, 0x1C];
    expected.extend_from_slice(b"0001234567890121310120300217");
    assert_eq!(record, expected);
    let mut fresh = open(SELECT_COMMON);
    assert_eq!(tx(&mut fresh, &h("00B2010C00")).0, expected);
    // A record that does not exist, a bad P2, a record read of a transparent view, too short Le.
    assert_eq!(tx(&mut card, &h("00B2020400")).1, 0x6A83);
    assert_eq!(tx(&mut card, &h("00B2000400")).1, 0x6A83);
    assert_eq!(tx(&mut card, &h("00B2010500")).1, 0x6A86);
    assert_eq!(tx(&mut card, &h("00B2010410")).1, 0x6C1E);
    assert_eq!(tx(&mut card, &h("00B0000004")).1, 0x6981);
}

#[test]
fn internal_authenticate_with_the_common_ap_key_only() {
    let mut card = open(SELECT_COMMON);
    let challenge = [0x11u8; 16];
    let mut apdu = vec![0x00, 0x88, 0x00, 0x99, challenge.len() as u8];
    apdu.extend_from_slice(&challenge);
    apdu.push(0x00);
    let (signature, status) = tx(&mut card, &apdu);
    assert_eq!(status, 0x9000);
    verify_sha256(common_key(), &challenge, &signature);
    // The same with the key EF selected.
    assert_eq!(tx(&mut card, &select_ef(0x0019)).1, 0x9000);
    apdu[3] = 0x80;
    assert_eq!(tx(&mut card, &apdu).0, signature);
    assert_eq!(tx(&mut card, &h("00880080")).1, 0x6700);
    // The JPKI keys do not answer INTERNAL AUTHENTICATE.
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    apdu[3] = 0x97;
    assert_eq!(tx(&mut card, &apdu).1, 0x6A88);
}
