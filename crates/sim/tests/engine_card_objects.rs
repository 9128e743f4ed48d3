//! The objects added to the simulated card: the visual AP's rendered My Number (EF `0005`) and
//! EF `0006`, the text AP's EFs `0005`–`0008`, the common AP and 住基AP PIN `001C` with JICSAP
//! CHANGE KEY, MF-level GET DATA, and the secure-messaging class bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mynacard_apdu::tlv::ber;
use mynacard_sim::engine::Card;
use mynacard_sim::image::{MY_NUMBER_IMAGE_SIZE, digit_ink};
use mynacard_sim::state::SecretId;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};
use support::*;

const SELECT_JUKI: &str = "00A4040C0AD3921000310001010401";
const SELECT_GP_ISD: &str = "00A4040C07A0000001510000";

fn open(select: &str) -> Card {
    let mut card = card();
    assert_eq!(sw(&mut card, select), 0x9000);
    card
}

fn read(card: &mut Card, fid: u16) -> (Vec<u8>, u16) {
    assert_eq!(tx(card, &select_ef(fid)).1, 0x9000, "SELECT EF {fid:04X}");
    read_all_short(card)
}

fn value(tlv: &[u8], tag: u32) -> Vec<u8> {
    ber::find(tlv, tag)
        .unwrap()
        .unwrap_or_else(|| panic!("no {tag:X}"))
        .value
        .to_vec()
}

/// The card's `90 e · 91 n` encoding of a key's public half.
fn key_objects(key: &PrivateKey) -> Vec<u8> {
    let mut modulus = key.n_bytes().into_vec();
    while modulus.len() < 256 {
        modulus.insert(0, 0);
    }
    let e = key.e_bytes();
    let mut out = vec![0x90, e.len() as u8];
    out.extend_from_slice(&e);
    out.extend_from_slice(&[0x91, 0x82, 0x01, 0x00]);
    out.extend_from_slice(&modulus);
    out
}

fn verify_sha256(key: &PrivateKey, message: &[u8], signature: &[u8]) {
    key.to_public_key()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(message),
            signature,
        )
        .expect("signature verifies");
}

/// The bytes of a record before the object with `tag` (what its signature covers).
fn before(inner: &[u8], tag: u32) -> Vec<u8> {
    let end = inner.len() - ber::find(inner, tag).unwrap().unwrap().total_len();
    inner[..end].to_vec()
}

fn change_key(p2: u8, new: &str) -> Vec<u8> {
    let mut out = vec![0x80, 0x32, 0x00, p2, new.len() as u8];
    out.extend_from_slice(new.as_bytes());
    out
}

// ---- visual AP ----

#[test]
fn rendered_my_number_opens_with_collation_a_only() {
    // Nothing verified, the birth-date key and 照合番号B: 6982.
    let mut card = open(SELECT_VISUAL);
    assert_eq!(read(&mut card, 0x0005).1, 0x6982);
    assert_eq!(tx(&mut card, &verify(0x91, "550217")).1, 0x9000);
    assert_eq!(read(&mut card, 0x0005).1, 0x6982);
    let mut card = open(SELECT_VISUAL);
    assert_eq!(tx(&mut card, &verify(0x92, COLLATION_B)).1, 0x9000);
    assert_eq!(read(&mut card, 0x0002).1, 0x9000, "B opens the face");
    assert_eq!(read(&mut card, 0x0005).1, 0x6982, "but not the number");
    // By SFI as well.
    assert_eq!(tx(&mut card, &h("00B0850000")).1, 0x6982);

    let mut card = open(SELECT_VISUAL);
    assert_eq!(tx(&mut card, &verify(0x93, MY_NUMBER)).1, 0x9000);
    let (file, sw) = read(&mut card, 0x0005);
    assert_eq!(sw, 0x9000);
    let (outer, rest) = ber::parse_one(&file).unwrap();
    assert_eq!(outer.tag, 0xFF40);
    assert!(rest.is_empty(), "no padding after the record");
    let inner = outer.value;
    assert_eq!(value(inner, 0xDF42), key_objects(&keys()[3]));
    // Signed by the record key the CVC certifies, not by the card key DF42.
    verify_sha256(
        &record_keys().0,
        &before(inner, 0xDF43),
        &value(inner, 0xDF43),
    );

    // DF41 is a real 1-bit greyscale PNG of 72×12 that shows the twelve digits.
    let png_bytes = value(inner, 0xDF41);
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG decoder accepts it");
    let info = reader.info();
    assert_eq!((info.width, info.height), MY_NUMBER_IMAGE_SIZE);
    assert_eq!(info.bit_depth, png::BitDepth::One);
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).expect("image data decodes");
    let (width, height) = MY_NUMBER_IMAGE_SIZE;
    let mut ink = 0;
    for y in 0..height {
        for x in 0..width {
            let byte = pixels[y as usize * frame.line_size + (x / 8) as usize];
            let black = byte & (0x80 >> (x % 8)) == 0;
            assert_eq!(black, digit_ink(MY_NUMBER.as_bytes(), x, y), "({x},{y})");
            ink += usize::from(black);
        }
    }
    assert!(ink > 12 * 8, "every digit leaves ink: {ink}");
}

#[test]
fn rendered_my_number_differs_per_person_and_is_deterministic() {
    let a = image();
    let mut b = image();
    b.person.my_number = zeroize::Zeroizing::new("000000000019".into());
    assert_eq!(a.my_number_image(), image().my_number_image());
    assert_ne!(a.my_number_image(), b.my_number_image());
    // Each glyph is distinct, so each digit string renders differently.
    for (d1, d2) in (b'0'..=b'9').flat_map(|d| (b'0'..=b'9').map(move |e| (d, e))) {
        let differs =
            (0..6).any(|x| (0..12).any(|y| digit_ink(&[d1], x, y) != digit_ink(&[d2], x, y)));
        assert_eq!(differs, d1 != d2, "{} {}", d1 as char, d2 as char);
    }
}

#[test]
fn visual_0006_and_text_0008_are_sixteen_ff_and_free() {
    let mut card = open(SELECT_VISUAL);
    assert_eq!(read(&mut card, 0x0006), (vec![0xFF; 16], 0x9000));
    let mut card = open(SELECT_TEXT);
    assert_eq!(read(&mut card, 0x0008), (vec![0xFF; 16], 0x9000));
}

// ---- text AP ----

#[test]
fn text_basic_info_is_free_with_its_trailing_block() {
    let mut card = open(SELECT_TEXT);
    let (file, sw) = read(&mut card, 0x0005);
    assert_eq!(sw, 0x9000);
    let inner = value(&file, 0xFF40);
    assert_eq!(value(&inner, 0xDF41).len(), 4);
    // DF42 names the same key id as the subject of the AP's CVC.
    let (cvc, _) = read(&mut card, 0x0004);
    let body = value(&value(&cvc, 0x7F21), 0x5F4E);
    assert_eq!(value(&inner, 0xDF42), body[16..32]);
    let trailing = value(&inner, 0xDF43);
    assert_eq!(trailing.len(), 128);
    assert!(trailing[32..].iter().all(|b| *b == 0xFF));
    assert!(trailing[..32].iter().any(|b| *b != 0xFF));
}

#[test]
fn text_sm_key_and_signed_key_open_with_the_pin_or_either_collation_number() {
    let mut card = open(SELECT_TEXT);
    for fid in [0x0006, 0x0007] {
        assert_eq!(read(&mut card, fid).1, 0x6982, "{fid:04X}");
    }
    for (p2, secret) in [(0x91, TEXT_PIN), (0x94, MY_NUMBER), (0x95, COLLATION_B)] {
        let mut card = open(SELECT_TEXT);
        assert_eq!(tx(&mut card, &verify(p2, secret)).1, 0x9000);

        let (sm, sw) = read(&mut card, 0x0006);
        assert_eq!(sw, 0x9000);
        let (outer, rest) = ber::parse_one(&sm).unwrap();
        assert!(rest.is_empty());
        assert_eq!(outer.tag, 0xA1);
        assert_eq!(outer.value, key_objects(&keys()[5]).as_slice());
        assert_ne!(keys()[5].n_bytes(), keys()[2].n_bytes());

        let (signed, sw) = read(&mut card, 0x0007);
        assert_eq!(sw, 0x9000);
        let inner = value(&signed, 0xFF50);
        assert_eq!(value(&inner, 0xDF51), key_objects(&keys()[2]));
        verify_sha256(
            &record_keys().1,
            &before(&inner, 0xDF52),
            &value(&inner, 0xDF52),
        );
    }
}

// ---- the common AP and 住基AP PIN 001C ----

#[test]
fn card_pins_have_three_tries_and_are_separate_keys() {
    let mut card = open(SELECT_COMMON);
    assert_eq!(sw(&mut card, "0020009C"), 0x63C3);
    assert_eq!(tx(&mut card, &verify(0x9C, "0000")).1, 0x63C2);
    assert_eq!(
        card.secret_status(SecretId::CommonPin).unwrap().remaining,
        2
    );
    // The 住基AP's key did not move.
    assert_eq!(sw(&mut card, SELECT_JUKI), 0x9000);
    assert_eq!(tx(&mut card, &select_ef(0x001C)).1, 0x9000);
    assert_eq!(sw(&mut card, "00200080"), 0x63C3);
    assert_eq!(tx(&mut card, &verify(0x80, TEXT_PIN)).1, 0x9000);
    // The right value restores the common AP's counter.
    assert_eq!(sw(&mut card, SELECT_COMMON), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x9C, TEXT_PIN)).1, 0x9000);
    assert_eq!(sw(&mut card, "0020009C"), 0x63C3);
    // The 住基AP has no other file.
    assert_eq!(sw(&mut card, SELECT_JUKI), 0x9000);
    assert_eq!(tx(&mut card, &select_ef(0x0001)).1, 0x6A82);
}

#[test]
fn change_key_replaces_one_card_pin_after_verify() {
    let mut card = open(SELECT_COMMON);
    // Not verified yet.
    assert_eq!(tx(&mut card, &change_key(0x9C, "2468")).1, 0x6982);
    assert_eq!(tx(&mut card, &verify(0x9C, TEXT_PIN)).1, 0x9000);
    // Wrong P1, no data, bad new values.
    assert_eq!(sw(&mut card, "8032019C0431313131"), 0x6A86);
    assert_eq!(sw(&mut card, "8032009C"), 0x6700);
    assert_eq!(tx(&mut card, &change_key(0x9C, "12a4")).1, 0x6A80);
    assert_eq!(tx(&mut card, &change_key(0x9C, "12345")).1, 0x6A80);
    // CHANGE REFERENCE DATA is not how this key changes.
    assert_eq!(sw(&mut card, "0024019C0432323232"), 0x6985);
    // P2 80 names the current EF: SELECT it, as the public tools do.
    assert_eq!(tx(&mut card, &change_key(0x80, "2468")).1, 0x6986);
    assert_eq!(tx(&mut card, &select_ef(0x001C)).1, 0x9000);
    assert_eq!(tx(&mut card, &change_key(0x80, "2468")).1, 0x9000);

    // The new value works after a power cycle; the old one is wrong; the 住基AP is unchanged.
    card.reset();
    assert_eq!(sw(&mut card, SELECT_COMMON), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x9C, TEXT_PIN)).1, 0x63C2);
    assert_eq!(tx(&mut card, &verify(0x9C, "2468")).1, 0x9000);
    assert_eq!(sw(&mut card, SELECT_JUKI), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x9C, "2468")).1, 0x63C2);
    assert_eq!(tx(&mut card, &verify(0x9C, TEXT_PIN)).1, 0x9000);
    assert_eq!(tx(&mut card, &change_key(0x9C, "1357")).1, 0x9000);

    // The changed values are the card's non-volatile state.
    let state = card.persistent_state();
    assert_eq!(state.secrets["common-pin"].value.as_deref(), Some("2468"));
    assert_eq!(state.secrets["juki-pin"].value.as_deref(), Some("1357"));
    let restored = Card::with_state(image(), &state).unwrap();
    drop(restored);
}

#[test]
fn change_key_refuses_other_keys_and_blocked_pins() {
    // JPKI and text AP PINs change with CHANGE REFERENCE DATA only.
    let mut card = open(SELECT_JPKI);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(tx(&mut card, &change_key(0x98, "1111")).1, 0x6985);
    let mut card = open(SELECT_TEXT);
    assert_eq!(tx(&mut card, &change_key(0x94, "1111")).1, 0x6985);

    let mut card = open(SELECT_JUKI);
    for left in [0x63C2, 0x63C1, 0x63C0] {
        assert_eq!(tx(&mut card, &verify(0x9C, "0000")).1, left);
    }
    assert_eq!(tx(&mut card, &verify(0x9C, TEXT_PIN)).1, 0x6984);
    assert_eq!(sw(&mut card, "0020009C"), 0x63C0);
    assert_eq!(tx(&mut card, &change_key(0x9C, "1111")).1, 0x6984);
    // The common AP's key is still usable.
    assert_eq!(sw(&mut card, SELECT_COMMON), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x9C, TEXT_PIN)).1, 0x9000);
}

// ---- MF-level GET DATA ----

fn get_data(card: &mut Card, tag: u16, extended: bool) -> (Vec<u8>, u16) {
    let [p1, p2] = tag.to_be_bytes();
    let mut apdu = vec![0x00, 0xCA, p1, p2, 0x00];
    if extended {
        apdu.extend_from_slice(&[0x00, 0x00]);
    }
    tx(card, &apdu)
}

#[test]
fn get_data_answers_the_mf_objects_at_power_on() {
    let image = image();
    let mut card = card();
    assert_eq!(
        get_data(&mut card, 0x0045, false),
        (image.face.serial.clone().into_bytes(), 0x9000)
    );
    assert_eq!(
        get_data(&mut card, 0x00F0, false),
        (b"13101".to_vec(), 0x9000)
    );
    assert_eq!(
        get_data(&mut card, 0x00F2, false),
        (b"20300217".to_vec(), 0x9000)
    );
    let (issuer, status) = get_data(&mut card, 0x0042, false);
    assert_eq!((issuer.len(), status), (16, 0x9000));
    // The simulator's chain authority: a test id of its own, no published J-LIS one.
    assert_eq!(&issuer[..7], b"6900020");
    assert_eq!(&issuer[7..9], &[0x08, 0x05]);
    let (recognition, status) = get_data(&mut card, 0x0066, false);
    assert_eq!(status, 0x9000);
    let gp = value(&recognition, 0x73);
    assert_eq!(value(&gp, 0x06), [0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01]);
    assert_eq!(
        get_data(&mut card, 0x5F51, false),
        (ATR[1..].to_vec(), 0x9000)
    );
    // Absent objects.
    for tag in [0x0000, 0x0043, 0x00F1, 0x9F7F, 0xFFFF] {
        assert_eq!(
            get_data(&mut card, tag, false),
            (Vec::new(), 0x6A88),
            "{tag:04X}"
        );
    }
    // Le shorter than a small object: 6Cxx with its length; no Le or a data field: 6700.
    assert_eq!(sw(&mut card, "00CA00F002"), 0x6C05);
    assert_eq!(tx(&mut card, &h("00CA00F005")), (b"13101".to_vec(), 0x9000));
    assert_eq!(sw(&mut card, "00CA00F0"), 0x6700);
    assert_eq!(sw(&mut card, "00CA00F00100"), 0x6700);
    assert_eq!(sw(&mut card, "00CB3FFF00"), 0x6D00);
}

#[test]
fn get_data_chain_certificates_need_extended_le_and_verify_link_by_link() {
    let mut card = card();
    for tag in [0x00F8, 0x7F21] {
        assert_eq!(
            get_data(&mut card, tag, false),
            (Vec::new(), 0x6700),
            "{tag:04X}"
        );
    }
    let (intermediate, _) = get_data(&mut card, 0x00F7, false);
    let (upper, status) = get_data(&mut card, 0x00F8, true);
    assert_eq!(status, 0x9000);
    assert!(upper.len() > 256);
    let (lower, status) = get_data(&mut card, 0x7F21, true);
    assert_eq!(status, 0x9000);
    // The values are the contents of the 7F21 template: the 4D header list, 5F4E, 5F37.
    assert_eq!(
        value(&upper, 0x4D),
        [0x42, 0x10, 0x5F, 0x20, 0x10, 0x5F, 0x49, 0x82, 0x01, 0x09]
    );
    assert_eq!(value(&lower, 0x4D), value(&upper, 0x4D));
    let upper_body = value(&upper, 0x5F4E);
    let lower_body = value(&lower, 0x5F4E);
    assert_eq!(upper_body.len(), 297);
    assert_eq!(&upper_body[..7], b"6900020");
    assert_eq!(upper_body[16..32], intermediate[..]);
    // Shaped as on the real test card: municipality code, 30, generation 002.
    assert_eq!(&intermediate[..7], b"1310130");
    assert_eq!(&intermediate[9..12], b"002");
    assert_eq!(lower_body[..16], intermediate[..]);
    assert_eq!(&lower_body[16..23], b"0000050");
    // The upper CVC verifies under the simulator's chain authority, over the 5F4E value.
    let pki = mynacard_sim::pki::TestPki::shared().unwrap();
    let authority = pki
        .cvc_authority_key(mynacard_sim::cvc::CvcRole::CardChain)
        .unwrap();
    verify_sha256(&authority, &upper_body, &value(&upper, 0x5F37));
    // The lower CVC verifies under the key the upper one certifies, over its 5F4E value.
    let certified = rsa::PublicKey::new(
        rsa::BoxedUint::from_be_slice_vartime(&value(&upper_body[32..], 0x91)),
        rsa::BoxedUint::from_be_slice_vartime(&value(&upper_body[32..], 0x90)),
    );
    certified
        .unwrap()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&lower_body),
            &value(&lower, 0x5F37),
        )
        .expect("lower CVC verifies under the upper CVC's key");
    // An explicit extended Le too small for the object: 6700.
    assert_eq!(sw(&mut card, "00CA00F8000100"), 0x6700);
}

#[test]
fn get_data_answers_only_without_an_application_except_the_contact_atr() {
    for select in [
        SELECT_JPKI,
        SELECT_TEXT,
        SELECT_VISUAL,
        SELECT_COMMON,
        SELECT_JUKI,
    ] {
        let mut card = open(select);
        assert_eq!(
            get_data(&mut card, 0x0045, false),
            (Vec::new(), 0x6A88),
            "{select}"
        );
        assert_eq!(
            get_data(&mut card, 0x00F8, true),
            (Vec::new(), 0x6A88),
            "{select}"
        );
        assert_eq!(get_data(&mut card, 0x5F51, false).1, 0x9000, "{select}");
        // "SELECT MF" does not leave the application; the GP ISD does.
        assert_eq!(sw(&mut card, "00A40000"), 0x9000);
        assert_eq!(get_data(&mut card, 0x00F0, false).1, 0x6A88);
        assert_eq!(sw(&mut card, SELECT_GP_ISD), 0x9000);
        assert_eq!(
            get_data(&mut card, 0x00F0, false),
            (b"13101".to_vec(), 0x9000)
        );
    }
}

#[test]
fn get_data_on_a_short_link_cannot_reach_the_large_objects() {
    let mut card = Card::new(short_image(256));
    assert_eq!(
        get_data(&mut card, 0x00F0, false),
        (b"13101".to_vec(), 0x9000)
    );
    assert_eq!(get_data(&mut card, 0x00F8, false).1, 0x6700);
    assert_eq!(get_data(&mut card, 0x00F8, true).1, 0x6700);
    // A contactless image answers the chip's contact ATR, not the reader's.
    let atr = get_data(&mut card, 0x5F51, false).0;
    assert_eq!(atr, mynacard_sim::image::DEFAULT_CONTACT_ATR[1..]);
    assert_eq!(atr.iter().fold(0, |x, b| x ^ b), 0, "TCK checks");
}

// ---- secure-messaging class bytes ----

#[test]
fn secure_messaging_class_bytes_are_refused_everywhere_without_spending_tries() {
    let selects = [
        SELECT_JPKI,
        SELECT_VISUAL,
        SELECT_COMMON,
        SELECT_JUKI,
        SELECT_TEXT,
    ];
    for select in selects {
        let mut card = card();
        for cla in ["08", "0C"] {
            let sm_select = format!("{cla}{}", &select[2..]);
            assert_eq!(sw(&mut card, &sm_select), 0x6882, "{sm_select}");
        }
        assert_eq!(
            card.current_application(),
            None,
            "nothing selected by an SM SELECT"
        );
        assert_eq!(sw(&mut card, select), 0x9000);
        assert_eq!(sw(&mut card, "0CA4020C020001"), 0x6882);
        assert_eq!(sw(&mut card, "0CB0000004"), 0x69FC);
        assert_eq!(sw(&mut card, "08B0000004"), 0x69FC);
        let before = card.secret_status(SecretId::CommonPin).unwrap();
        assert_eq!(sw(&mut card, "082000010430303030"), 0x69FC);
        assert_eq!(sw(&mut card, "0C2000800430303030"), 0x69FC);
        assert_eq!(card.secret_status(SecretId::CommonPin).unwrap(), before);
        assert!(card.current_application().is_some(), "{select}");
    }
    // The text AP's own secure messaging needs the PIN before anything else is looked at
    // (tests/secure_messaging.rs covers the rest).
    let mut card = open(SELECT_TEXT);
    assert_eq!(sw(&mut card, "80AE000000"), 0x6982);
}
