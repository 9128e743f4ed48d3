//! The engine loaded with every built-in profile: certificates read back as issued, the card's
//! keys match its certificates, PIN counters, availability and token label follow the profile,
//! and the link's extended-length setting is enforced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use der::{Decode, Encode};
use mynacard_sim::engine::Card;
use mynacard_sim::image::CardImage;
use mynacard_sim::profile::Catalogue;
use mynacard_sim::state::SecretId;
use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, PublicKey};
use sha2::{Digest, Sha256};
use support::*;

fn public_key_of(cert_der: &[u8]) -> PublicKey {
    let cert = x509_cert::Certificate::from_der(cert_der).unwrap();
    let spki = cert
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .unwrap();
    PublicKey::from_public_key_der(&spki).unwrap()
}

/// Reads the current EF to its end with short READ BINARYs, following `61xx`.
fn read_file(card: &mut Card, fid: u16) -> Vec<u8> {
    assert_eq!(tx(card, &select_ef(fid)).1, 0x9000, "SELECT {fid:04X}");
    let mut out = Vec::new();
    loop {
        let [p1, p2] = (out.len() as u16).to_be_bytes();
        let (mut data, mut sw) = tx(card, &[0x00, 0xB0, p1, p2, 0x00]);
        while sw >> 8 == 0x61 {
            let (more, next) = tx(card, &[0x00, 0xC0, 0x00, 0x00, sw as u8]);
            data.extend_from_slice(&more);
            sw = next;
        }
        if sw == 0x6B00 {
            return out;
        }
        assert!(
            sw == 0x9000 || sw == 0x6282,
            "READ BINARY {fid:04X}: {sw:04X}"
        );
        let done = data.len() < 256;
        out.extend_from_slice(&data);
        if done {
            return out;
        }
    }
}

fn check_profile(name: &str) {
    let mut image = CardImage::from_profile_name(name).unwrap();
    // A capping reader is the link, not the card: the card behind it is checked here on a link
    // that carries its answers whole; what the cap does is checked by the card layer's
    // tests on these profiles (crates/card/tests/capped_reader.rs) and through pcscd.
    if let Some(cap) = image.link.answer_cap.take() {
        assert_eq!(cap.max, 128, "{name}");
    }
    let mut card = Card::new(image.clone());
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000, "{name}");

    // Certificates as issued; the auth certificate's key is the card's auth key.
    if image.token == mynacard_sim::image::TokenKind::AndroidSe {
        let pin = image.auth_pin.as_ref().unwrap();
        let pin = std::str::from_utf8(&pin.value).unwrap().to_owned();
        assert_eq!(tx(&mut card, &verify(0x98, &pin)).1, 0x9000, "{name}");
    }
    assert_eq!(read_file(&mut card, 0x000A), image.auth.cert_der, "{name}");
    assert_eq!(read_file(&mut card, 0x000B), image.auth_ca_cert, "{name}");
    let info = read_file(&mut card, 0x0006);
    assert_eq!(info.len(), 160);
    assert!(info.starts_with(image.token.label().as_bytes()), "{name}");
    let availability = read_file(&mut card, 0x0008);
    assert_eq!(availability[0] == 0x8F, image.sign.is_some(), "{name}");

    // The PIN counter as the profile says.
    let status = sw(&mut card, "00200098");
    match &image.auth_pin {
        Some(pin) => assert_eq!(status, 0x63C0 | u16::from(pin.remaining), "{name}"),
        None => assert_eq!(status, 0x6A88, "{name}"),
    }

    // A signature with the auth key verifies against the auth certificate.
    if let Some(pin) = image.auth_pin.as_ref().filter(|p| p.remaining > 0) {
        let pin = std::str::from_utf8(&pin.value).unwrap().to_owned();
        assert_eq!(tx(&mut card, &verify(0x98, &pin)).1, 0x9000, "{name}");
        let di = digest_info(name.as_bytes());
        let mut apdu = vec![0x80, 0x2A, 0x00, 0x97, di.len() as u8];
        apdu.extend_from_slice(&di);
        apdu.push(0x00);
        let (mut signature, mut status) = tx(&mut card, &apdu);
        while status >> 8 == 0x61 {
            let (more, next) = tx(&mut card, &[0x00, 0xC0, 0x00, 0x00, status as u8]);
            signature.extend_from_slice(&more);
            status = next;
        }
        assert_eq!(status, 0x9000, "{name}");
        public_key_of(&image.auth.cert_der)
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(name.as_bytes()),
                &signature,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    // The signing certificate behind the password, matching the signing key.
    if let (Some(sign), Some(password)) = (&image.sign, &image.sign_password) {
        let password = std::str::from_utf8(&password.value).unwrap().to_owned();
        assert_eq!(tx(&mut card, &verify(0x9B, &password)).1, 0x9000, "{name}");
        assert_eq!(read_file(&mut card, 0x0001), sign.cert_der, "{name}");
        let (mut signature, mut status) = tx(
            &mut card,
            &[
                [0x80, 0x2A, 0x02, 0x9A, 0x20].as_slice(),
                &Sha256::digest(b"doc"),
                &[0x00],
            ]
            .concat(),
        );
        while status >> 8 == 0x61 {
            let (more, next) = tx(&mut card, &[0x00, 0xC0, 0x00, 0x00, status as u8]);
            signature.extend_from_slice(&more);
            status = next;
        }
        assert_eq!(status, 0x9000, "{name}");
        public_key_of(&sign.cert_der)
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(b"doc"),
                &signature,
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }

    // The link: no extended APDUs where the profile has none.
    let extended = tx(&mut card, &h("00B08B00000000")).1;
    if image.link.extended_length {
        assert_eq!(extended, 0x9000, "{name}");
    } else {
        assert_eq!(extended, 0x6700, "{name}");
    }

    // The card's secrets follow the image.
    if let Some(pin) = &image.text_pin {
        let status = card.secret_status(SecretId::TextPin).unwrap();
        assert_eq!(
            (status.remaining, status.limit),
            (pin.remaining, pin.limit),
            "{name}"
        );
    }
}

#[test]
fn every_builtin_profile_runs_on_the_engine() {
    let catalogue = Catalogue::builtin().unwrap();
    let names: Vec<String> = catalogue.names().map(str::to_owned).collect();
    assert!(names.len() >= 3, "{names:?}");
    for name in names {
        check_profile(&name);
    }
}
