//! Shared test support: card images with keys generated once per test binary, and a small
//! APDU driver.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::sync::OnceLock;

use mynacard_sim::cvc::{CardCvcs, CvcRole};
use mynacard_sim::engine::Card;
use mynacard_sim::image::{
    CardFace, CardImage, Credential, Date, LinkProfile, Person, Secret, SexCode, TokenKind,
};
use mynacard_sim::pki::TestPki;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::PrivateKey;
use zeroize::Zeroizing;

pub const AUTH_PIN: &str = "1234";
pub const SIGN_PASSWORD: &str = "ABC123";
pub const TEXT_PIN: &str = "5678";
pub const MY_NUMBER: &str = "123456789018";
pub const SECURITY_CODE: &str = "4321";
/// 照合番号B of the test person: 1980-02-17 is 昭和55 → 550217, expiry 2030, code 4321.
pub const COLLATION_B: &str = "55021720304321";

pub const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];

/// Six RSA-2048 keys: auth, sign, text AP, visual AP, common AP, text AP SM key delivery.
pub fn keys() -> &'static [PrivateKey; 6] {
    static KEYS: OnceLock<[PrivateKey; 6]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = ChaCha20Rng::from_seed([7; 32]);
        std::array::from_fn(|_| PrivateKey::new(&mut rng, 2048).unwrap())
    })
}

/// A DER-looking blob: `30 82 LL LL` and `len` content bytes derived from `tag`.
pub fn der_blob(tag: u8, len: usize) -> Vec<u8> {
    let mut out = vec![0x30, 0x82, (len >> 8) as u8, len as u8];
    out.extend((0..len).map(|i| tag.wrapping_mul(31).wrapping_add(i as u8)));
    out
}

fn secret(value: &str, limit: u8) -> Option<Secret> {
    Some(Secret {
        value: Zeroizing::new(value.as_bytes().to_vec()),
        limit,
        remaining: limit,
    })
}

/// The record-signing keys of municipality 13101 and the CVCs of the test card, issued by the
/// shared test PKI's CVC authorities.
pub fn record_keys() -> &'static (PrivateKey, PrivateKey, CardCvcs) {
    static KEYS: OnceLock<(PrivateKey, PrivateKey, CardCvcs)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pki = TestPki::shared().unwrap();
        let visual = pki.record_key(CvcRole::Visual, "13101").unwrap();
        let text = pki.record_key(CvcRole::Text, "13101").unwrap();
        let cvcs = pki
            .issue_card_cvcs("13101", "test-standard", &visual, &text)
            .unwrap();
        (visual, text, cvcs)
    })
}

/// A standard card: both certificates, all PINs, extended length, large responses.
pub fn image() -> CardImage {
    let [auth, sign, text, visual, common, text_sm] = keys().clone();
    let (visual_record, text_record, cvcs) = record_keys();
    let cvcs = cvcs.clone();
    CardImage {
        profile: "test-standard".into(),
        token: TokenKind::Card,
        auth: Credential {
            cert_der: der_blob(1, 1200),
            key: auth,
        },
        auth_ca_cert: der_blob(2, 1000),
        sign: Some(Credential {
            cert_der: der_blob(3, 1500),
            key: sign,
        }),
        sign_ca_cert: der_blob(4, 1000),
        auth_pin: secret(AUTH_PIN, 3),
        sign_password: secret(SIGN_PASSWORD, 5),
        text_pin: secret(TEXT_PIN, 3),
        collation_limit: 10,
        person: Person {
            name: "試験\u{3000}花子".into(),
            address: "東京都千代田区霞が関１－２－３".into(),
            birth_date: Date {
                year: 1980,
                month: 2,
                day: 17,
            },
            sex: SexCode(b'2'),
            my_number: Zeroizing::new(MY_NUMBER.into()),
        },
        face: CardFace {
            expiry: Date {
                year: 2030,
                month: 2,
                day: 17,
            },
            security_code: Zeroizing::new(SECURITY_CODE.into()),
            serial: "000123456789012".into(),
            municipality_code: "13101".into(),
            photo: vec![0x5A; 3000],
            name_image: vec![0x4E; 400],
            address_image: vec![0x41; 500],
            security_code_image: vec![0x53; 60],
        },
        text_ap_key: text,
        card_key: visual,
        visual_record_key: visual_record.clone(),
        text_record_key: text_record.clone(),
        cvcs,
        common_ap_key: common,
        text_sm_key: text_sm,
        link: LinkProfile {
            atr: ATR.to_vec(),
            contactless: false,
            extended_length: true,
            max_response_data: 65_536,
            answer_cap: None,
        },
    }
}

/// A card on a short-APDU link that returns at most `max` data bytes per response.
pub fn short_image(max: usize) -> CardImage {
    let mut image = image();
    image.profile = "test-short".into();
    image.link.extended_length = false;
    image.link.contactless = true;
    image.link.max_response_data = max;
    image
}

pub fn card() -> Card {
    Card::new(image())
}

pub fn h(hex_text: &str) -> Vec<u8> {
    let clean: String = hex_text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).unwrap()
}

/// Sends `command` and returns (data, SW).
pub fn tx(card: &mut Card, command: &[u8]) -> (Vec<u8>, u16) {
    let mut response = card.process(command);
    assert!(response.len() >= 2, "response shorter than a status word");
    let sw2 = response.pop().unwrap();
    let sw1 = response.pop().unwrap();
    (response, u16::from_be_bytes([sw1, sw2]))
}

/// Sends hex and returns the SW, asserting no data.
pub fn sw(card: &mut Card, command_hex: &str) -> u16 {
    let (data, sw) = tx(card, &h(command_hex));
    assert!(
        data.is_empty(),
        "unexpected data for {command_hex}: {data:02X?}"
    );
    sw
}

pub const SELECT_JPKI: &str = "00A4040C0AD392F000260100000001";
pub const SELECT_TEXT: &str = "00A4040C0AD3921000310001010408";
pub const SELECT_VISUAL: &str = "00A4040C0AD3921000310001010402";
pub const SELECT_COMMON: &str = "00A4040C0AD3921000310001010100";

pub fn select_ef(fid: u16) -> Vec<u8> {
    let [hi, lo] = fid.to_be_bytes();
    vec![0x00, 0xA4, 0x02, 0x0C, 0x02, hi, lo]
}

/// VERIFY with P2 and ASCII data.
pub fn verify(p2: u8, pin: &str) -> Vec<u8> {
    let mut out = vec![0x00, 0x20, 0x00, p2, pin.len() as u8];
    out.extend_from_slice(pin.as_bytes());
    out
}

/// READ BINARY of the whole current EF with short reads (as older tools do).
pub fn read_all_short(card: &mut Card) -> (Vec<u8>, u16) {
    let mut out = Vec::new();
    loop {
        let offset = out.len() as u16;
        let [p1, p2] = offset.to_be_bytes();
        let (data, sw) = tx(card, &[0x00, 0xB0, p1, p2, 0x00]);
        if sw != 0x9000 {
            return (out, sw);
        }
        let done = data.len() < 256;
        out.extend_from_slice(&data);
        if done {
            return (out, sw);
        }
    }
}

/// A SHA-256 DigestInfo of `message`.
pub fn digest_info(message: &[u8]) -> Vec<u8> {
    use mynacard_cert::digest_info::{sha256, sha256_digest_info};
    sha256_digest_info(&sha256(message)).to_vec()
}
