//! The JPKI AP and the ISO plumbing of the engine: SELECT routing, READ BINARY, VERIFY and the
//! retry counters, security state, COMPUTE DIGITAL SIGNATURE schemes, CHANGE REFERENCE DATA,
//! `61xx`, and every status-word path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mynacard_sim::engine::{Application, Card};
use mynacard_sim::image::TokenKind;
use mynacard_sim::state::SecretId;
use rsa::pss::Pss;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};
use support::*;

fn jpki() -> Card {
    let mut card = card();
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    card
}

fn read_ef(card: &mut Card, fid: u16) -> (Vec<u8>, u16) {
    let select = tx(card, &select_ef(fid)).1;
    assert_eq!(select, 0x9000, "SELECT EF {fid:04X}");
    read_all_short(card)
}

fn auth_key() -> &'static PrivateKey {
    &keys()[0]
}
fn sign_key() -> &'static PrivateKey {
    &keys()[1]
}

// ---- SELECT ----

#[test]
fn select_routes_full_aids_and_refuses_others() {
    let mut card = card();
    // Before any AP: select MF answers 6A86, an EF is not found.
    assert_eq!(sw(&mut card, "00A40000"), 0x6A86);
    assert_eq!(tx(&mut card, &select_ef(0x000A)).1, 0x6A82);
    // Unknown and partial AIDs (OpenSC probes) are not found, whatever P2.
    assert_eq!(sw(&mut card, "00A4040007A0000000030000"), 0x6A82);
    assert_eq!(sw(&mut card, "00A4040C09D392F0002601000000"), 0x6A82);
    assert_eq!(card.current_application(), None);
    for (hex, app) in [
        (SELECT_JPKI, Application::Jpki),
        (SELECT_TEXT, Application::Text),
        (SELECT_VISUAL, Application::Visual),
        (SELECT_COMMON, Application::Common),
        ("00A4040C0AD3921000310001010401", Application::Juki),
    ] {
        assert_eq!(sw(&mut card, hex), 0x9000, "{hex}");
        assert_eq!(card.current_application(), Some(app));
    }
    // A known AID with an unsupported P2, a bad P1.
    assert_eq!(sw(&mut card, "00A40404 0AD392F000260100000001"), 0x6A86);
    assert_eq!(sw(&mut card, "00A4010C020001"), 0x6A86);
    // A failed SELECT leaves the current AP.
    assert_eq!(card.current_application(), Some(Application::Juki));
    // The GP issuer security domain restores the power-on state.
    assert_eq!(sw(&mut card, "00A4040007A0000001510000"), 0x9000);
    assert_eq!(card.current_application(), None);
}

#[test]
fn select_ef_needs_p2_0c_and_two_bytes() {
    let mut card = jpki();
    assert_eq!(sw(&mut card, "00A4020C02000A"), 0x9000);
    assert_eq!(sw(&mut card, "00A40200 02000A"), 0x6A86);
    assert_eq!(sw(&mut card, "00A4020C0100"), 0x6700);
    assert_eq!(sw(&mut card, "00A4020C020099"), 0x6A82);
    // Once an AP is current, "select MF" answers 9000 without changing anything; 3F00 is not found.
    assert_eq!(sw(&mut card, "00A40000"), 0x9000);
    assert_eq!(card.current_application(), Some(Application::Jpki));
    assert_eq!(sw(&mut card, "00A4000C023F00"), 0x6A82);
}

// ---- READ BINARY ----

#[test]
fn certificates_read_in_short_chunks_and_in_one_extended_read_by_sfi() {
    let image = image();
    let mut card = jpki();
    let (auth, sw) = read_ef(&mut card, 0x000A);
    assert_eq!(sw, 0x9000);
    assert_eq!(auth, image.auth.cert_der);
    assert_eq!(read_ef(&mut card, 0x000B).0, image.auth_ca_cert);
    assert_eq!(read_ef(&mut card, 0x0002).0, image.sign_ca_cert);

    // OpenSC sizes a certificate from its first four bytes.
    assert_eq!(sw_of(&mut card, "00A4020C02000A"), 0x9000);
    let (head, sw) = tx(&mut card, &h("00B0000004"));
    assert_eq!((head.as_slice(), sw), (&image.auth.cert_der[..4], 0x9000));

    // B.4: `00 B0 8A 00 00 00 00` reads the whole auth certificate in one command.
    let mut fresh = jpki();
    let (whole, sw) = tx(&mut fresh, &h("00B08A00000000"));
    assert_eq!(sw, 0x9000);
    assert_eq!(whole, image.auth.cert_der);
    // The SFI read selected the EF: a plain offset read continues in it.
    let (tail, _) = tx(&mut fresh, &h("00B0000004"));
    assert_eq!(tail, &image.auth.cert_der[..4]);
}

fn sw_of(card: &mut Card, hex: &str) -> u16 {
    tx(card, &h(hex)).1
}

#[test]
fn end_of_file_and_length_errors() {
    let image = image();
    let len = image.auth.cert_der.len();
    let mut card = jpki();
    assert_eq!(sw(&mut card, "00A4020C02000A"), 0x9000);
    // An offset at the end of the file: 6B00.
    let [p1, p2] = (len as u16).to_be_bytes();
    assert_eq!(tx(&mut card, &[0x00, 0xB0, p1, p2, 0x10]).1, 0x6B00);
    // Fewer bytes than an explicit Le: the rest and 6282.
    let [p1, p2] = ((len - 4) as u16).to_be_bytes();
    let (data, sw) = tx(&mut card, &[0x00, 0xB0, p1, p2, 0x10]);
    assert_eq!(
        (data.as_slice(), sw),
        (&image.auth.cert_der[len - 4..], 0x6282)
    );
    // Le = 00 means "up to 256": the rest and 9000.
    let (data, sw) = tx(&mut card, &[0x00, 0xB0, p1, p2, 0x00]);
    assert_eq!((data.len(), sw), (4, 0x9000));
    // No Le, or data in a READ BINARY: 6700. An inconsistent APDU: 6700.
    assert_eq!(sw_of(&mut card, "00B00000"), 0x6700);
    assert_eq!(sw_of(&mut card, "00B0000001AA00"), 0x6700);
    assert_eq!(sw_of(&mut card, "00B0000002AA"), 0x6700);
    assert_eq!(sw_of(&mut card, "00B0"), 0x6700);
    // SFI with the reserved bits, SFI 0, an absent SFI.
    assert_eq!(sw_of(&mut card, "00B0CA0000"), 0x6A86);
    assert_eq!(sw_of(&mut card, "00B0800000"), 0x6A86);
    assert_eq!(sw_of(&mut card, "00B0850000"), 0x6A82);
}

#[test]
fn read_binary_without_ef_or_of_a_key_or_pin() {
    let mut card = jpki();
    assert_eq!(sw_of(&mut card, "00B0000004"), 0x6986);
    for fid in [0x0017, 0x0018, 0x001A, 0x001B] {
        assert_eq!(tx(&mut card, &select_ef(fid)).1, 0x9000);
        assert_eq!(sw_of(&mut card, "00B0000004"), 0x6981, "{fid:04X}");
    }
}

#[test]
fn token_info_and_availability() {
    let mut card = jpki();
    let (info, sw) = read_ef(&mut card, 0x0006);
    assert_eq!(sw, 0x9000);
    assert_eq!(info.len(), 160);
    assert_eq!(&info[..32], b"JPKIAPICCTOKEN2                 ");
    assert_eq!(&info[140..144], b"0301");
    assert_eq!(read_ef(&mut card, 0x0008).0, vec![0x8F, 0x8F, 0x00]);
}

#[test]
fn signing_certificate_only_after_the_signing_password() {
    let image = image();
    let mut card = jpki();
    assert_eq!(tx(&mut card, &select_ef(0x0001)).1, 0x9000);
    assert_eq!(sw_of(&mut card, "00B0000004"), 0x6982);
    assert_eq!(sw_of(&mut card, "00B08100000000"), 0x6982);
    // The auth PIN does not open it.
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(sw_of(&mut card, "00B0000004"), 0x6982);
    assert_eq!(tx(&mut card, &verify(0x9B, SIGN_PASSWORD)).1, 0x9000);
    assert_eq!(read_ef(&mut card, 0x0001).0, image.sign.unwrap().cert_der);
}

// ---- VERIFY and counters ----

#[test]
fn empty_verify_reports_and_spends_nothing_for_both_pins() {
    let mut card = jpki();
    for _ in 0..10 {
        assert_eq!(tx(&mut card, &select_ef(0x0018)).1, 0x9000);
        assert_eq!(sw(&mut card, "00200080"), 0x63C3);
        assert_eq!(tx(&mut card, &select_ef(0x001B)).1, 0x9000);
        assert_eq!(sw(&mut card, "00200080"), 0x63C5);
        assert_eq!(sw(&mut card, "00200098"), 0x63C3);
        assert_eq!(sw(&mut card, "0020009B"), 0x63C5);
    }
    let status = card.secret_status(SecretId::JpkiAuthPin).unwrap();
    assert_eq!((status.remaining, status.limit), (3, 3));
    // Still 63Cx after a successful VERIFY.
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(sw(&mut card, "00200098"), 0x63C3);
}

#[test]
fn wrong_pins_count_down_then_the_pin_blocks() {
    let mut card = jpki();
    assert_eq!(tx(&mut card, &verify(0x98, "0000")).1, 0x63C2);
    assert_eq!(tx(&mut card, &verify(0x98, "0000")).1, 0x63C1);
    // The attempt that exhausts the counter answers 63C0.
    assert_eq!(tx(&mut card, &verify(0x98, "0000")).1, 0x63C0);
    // Blocked: 6984 even for the right PIN, and nothing changes; the status query says 63C0.
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x6984);
    assert_eq!(tx(&mut card, &verify(0x98, "0000")).1, 0x6984);
    assert_eq!(sw(&mut card, "00200098"), 0x63C0);
    assert!(!card.is_verified(SecretId::JpkiAuthPin));
    // Blocked survives power cycles.
    card.power_off();
    card.power_on();
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x6984);
    // The signing password is independent, with 5 tries.
    for remaining in (0..5).rev() {
        assert_eq!(tx(&mut card, &verify(0x9B, "WRONG1")).1, 0x63C0 | remaining);
    }
    assert_eq!(tx(&mut card, &verify(0x9B, SIGN_PASSWORD)).1, 0x6984);
}

#[test]
fn a_right_pin_restores_the_counter() {
    let mut card = jpki();
    assert_eq!(tx(&mut card, &verify(0x98, "9999")).1, 0x63C2);
    assert_eq!(tx(&mut card, &verify(0x98, "9999")).1, 0x63C1);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(sw(&mut card, "00200098"), 0x63C3);
    // A wrong attempt after a right one also drops the verified state.
    assert_eq!(tx(&mut card, &verify(0x98, "9999")).1, 0x63C2);
    assert!(!card.is_verified(SecretId::JpkiAuthPin));
}

#[test]
fn the_signing_password_is_compared_as_sent() {
    let mut card = jpki();
    assert_eq!(tx(&mut card, &verify(0x9B, "abc123")).1, 0x63C4);
    assert_eq!(tx(&mut card, &verify(0x9B, SIGN_PASSWORD)).1, 0x9000);
}

#[test]
fn verify_parameter_errors() {
    let mut card = jpki();
    assert_eq!(sw(&mut card, "00200180"), 0x6A86);
    assert_eq!(sw(&mut card, "00200000"), 0x6A86);
    assert_eq!(sw(&mut card, "00200080"), 0x6986); // no current EF
    assert_eq!(sw(&mut card, "00200085"), 0x6A88); // no EF with SFI 5
    assert_eq!(sw(&mut card, "0020008A"), 0x6A88); // a certificate, not a PIN
    assert_eq!(tx(&mut card, &select_ef(0x000A)).1, 0x9000);
    assert_eq!(sw(&mut card, "00200080"), 0x6A88);
    // In the MF no PIN is reachable.
    card.reset();
    assert_eq!(sw(&mut card, "00200098"), 0x6A88);
}

// ---- security state ----

fn sign_with_auth_key(card: &mut Card) -> (Vec<u8>, u16) {
    let mut apdu = h("802A0097");
    let di = digest_info(b"message");
    apdu.push(di.len() as u8);
    apdu.extend_from_slice(&di);
    apdu.push(0x00);
    tx(card, &apdu)
}

#[test]
fn security_state_lasts_while_powered_and_the_ap_stays_selected() {
    let mut card = jpki();
    assert_eq!(sign_with_auth_key(&mut card).1, 0x6982);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(sign_with_auth_key(&mut card).1, 0x9000);
    // Selecting EFs inside the AP keeps it.
    assert_eq!(tx(&mut card, &select_ef(0x000A)).1, 0x9000);
    assert_eq!(sign_with_auth_key(&mut card).1, 0x9000);

    // Selecting another AP clears it.
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(sign_with_auth_key(&mut card).1, 0x6982);

    // Re-selecting the same AP clears it (OpenSC's logout).
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(sign_with_auth_key(&mut card).1, 0x6982);

    // Power-off and reset clear it.
    for lose in [Card::power_off as fn(&mut Card), Card::reset] {
        assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
        lose(&mut card);
        assert_eq!(card.current_application(), None);
        assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
        assert_eq!(sign_with_auth_key(&mut card).1, 0x6982);
    }
}

// ---- COMPUTE DIGITAL SIGNATURE ----

fn sign_apdu(p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut apdu = vec![0x80, 0x2A, p1, p2, data.len() as u8];
    apdu.extend_from_slice(data);
    apdu.push(0x00);
    apdu
}

#[test]
fn p1_00_signs_a_digest_info_exactly_as_pkcs1_v1_5() {
    let mut card = jpki();
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    let hash = Sha256::digest(b"message");
    let (signature, sw) = tx(&mut card, &sign_apdu(0x00, 0x97, &digest_info(b"message")));
    assert_eq!(sw, 0x9000);
    assert_eq!(signature.len(), 256);
    let expected = auth_key()
        .sign(Pkcs1v15Sign::new::<Sha256>(), &hash)
        .unwrap();
    assert_eq!(signature, expected);
    auth_key()
        .to_public_key()
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &signature)
        .unwrap();
    // With the key EF selected and P2 = 80 the signature is byte-identical (B.5).
    assert_eq!(tx(&mut card, &select_ef(0x0017)).1, 0x9000);
    let (again, _) = tx(&mut card, &sign_apdu(0x00, 0x80, &digest_info(b"message")));
    assert_eq!(again, signature);
}

#[test]
fn p1_01_to_05_schemes() {
    let mut card = jpki();
    assert_eq!(tx(&mut card, &verify(0x9B, SIGN_PASSWORD)).1, 0x9000);
    let public = sign_key().to_public_key();
    let message = b"document to sign";
    let hash = Sha256::digest(message);

    // 01: card SHA-256, bare hash padded.
    let (sig, sw) = tx(&mut card, &sign_apdu(0x01, 0x9A, message));
    assert_eq!(sw, 0x9000);
    public
        .verify(Pkcs1v15Sign::new_unprefixed(), &hash, &sig)
        .unwrap();
    // 02: supplied hash, card wraps the DigestInfo; same bytes as 00 with the DigestInfo and 03.
    let (sig02, _) = tx(&mut card, &sign_apdu(0x02, 0x9A, &hash));
    let (sig00, _) = tx(&mut card, &sign_apdu(0x00, 0x9A, &digest_info(message)));
    let (sig03, _) = tx(&mut card, &sign_apdu(0x03, 0x9A, message));
    assert_eq!(sig02, sig00);
    assert_eq!(sig03, sig00);
    public
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig02)
        .unwrap();
    // 04 and 05: PSS with SHA-256.
    let (sig04, sw) = tx(&mut card, &sign_apdu(0x04, 0x9A, &hash));
    assert_eq!((sig04.len(), sw), (256, 0x9000));
    public.verify(Pss::<Sha256>::new(), &hash, &sig04).unwrap();
    let (sig05, _) = tx(&mut card, &sign_apdu(0x05, 0x9A, message));
    public.verify(Pss::<Sha256>::new(), &hash, &sig05).unwrap();
    assert_eq!(card.rsa_operations(), 6);
    // Other P1 values.
    assert_eq!(tx(&mut card, &sign_apdu(0x06, 0x9A, &hash)).1, 0x6A86);
}

#[test]
fn signature_input_and_key_errors() {
    let mut card = jpki();
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    let ops = card.rsa_operations();
    // Too long for PKCS#1 v1.5 with a 2048-bit key, wrong hash sizes, empty, long input for 03.
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x97, &[1; 246])).1, 0x6700);
    assert_eq!(tx(&mut card, &sign_apdu(0x02, 0x97, &[1; 31])).1, 0x6700);
    assert_eq!(tx(&mut card, &sign_apdu(0x04, 0x97, &[1; 33])).1, 0x6700);
    assert_eq!(sw(&mut card, "802A0097"), 0x6700);
    let mut long = vec![0x80, 0x2A, 0x03, 0x97, 0x00, 0x01, 0x00];
    long.extend_from_slice(&[7; 256]);
    long.extend_from_slice(&[0x00, 0x00]);
    assert_eq!(tx(&mut card, &long).1, 0x6700);
    // An Le shorter than the signature.
    let mut short_le = sign_apdu(0x00, 0x97, &digest_info(b"m"));
    *short_le.last_mut().unwrap() = 0x10;
    assert_eq!(tx(&mut card, &short_le).1, 0x6700);
    // Key references: a certificate, an absent SFI, a P2 outside 80..9E, no current EF.
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x8A, &[1; 35])).1, 0x6A88);
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x85, &[1; 35])).1, 0x6A88);
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x00, &[1; 35])).1, 0x6A86);
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x80, &[1; 35])).1, 0x6986);
    // The signing key without the signing password.
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x9A, &[1; 35])).1, 0x6982);
    assert_eq!(card.rsa_operations(), ops, "no refused command may sign");
    // Outside an AP with keys the instruction does not exist; under CLA 00 neither.
    assert_eq!(sw(&mut card, SELECT_COMMON), 0x9000);
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x99, &[1; 35])).1, 0x6D00);
    card.reset();
    assert_eq!(tx(&mut card, &sign_apdu(0x00, 0x97, &[1; 35])).1, 0x6D00);
    let mut iso = sign_apdu(0x00, 0x97, &[1; 35]);
    iso[0] = 0x00;
    assert_eq!(tx(&mut card, &iso).1, 0x6D00);
}

// ---- CHANGE REFERENCE DATA ----

#[test]
fn change_reference_data_after_verify() {
    let mut card = jpki();
    let change = |p2: u8, new: &str| {
        let mut apdu = vec![0x00, 0x24, 0x01, p2, new.len() as u8];
        apdu.extend_from_slice(new.as_bytes());
        apdu
    };
    assert_eq!(tx(&mut card, &change(0x98, "9876")).1, 0x6982);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(tx(&mut card, &change(0x98, "98a6")).1, 0x6A80);
    assert_eq!(tx(&mut card, &change(0x98, "98765")).1, 0x6A80);
    assert_eq!(sw(&mut card, "00240198"), 0x6700);
    assert_eq!(sw(&mut card, "00240098 0439383736"), 0x6A86);
    assert_eq!(tx(&mut card, &change(0x98, "9876")).1, 0x9000);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x63C2);
    assert_eq!(tx(&mut card, &verify(0x98, "9876")).1, 0x9000);
    assert_eq!(sw(&mut card, "00200098"), 0x63C3);

    // The signing password: upper case and digits, 6-16.
    assert_eq!(tx(&mut card, &verify(0x9B, SIGN_PASSWORD)).1, 0x9000);
    assert_eq!(tx(&mut card, &change(0x9B, "newpass1")).1, 0x6A80);
    assert_eq!(tx(&mut card, &change(0x9B, "ABCDE")).1, 0x6A80);
    assert_eq!(tx(&mut card, &change(0x9B, "NEWPASS1")).1, 0x9000);
    assert_eq!(tx(&mut card, &verify(0x9B, "NEWPASS1")).1, 0x9000);

    // A blocked PIN cannot be changed.
    let mut blocked = jpki();
    for _ in 0..3 {
        tx(&mut blocked, &verify(0x98, "0000"));
    }
    assert_eq!(tx(&mut blocked, &change(0x98, "1111")).1, 0x6984);
}

// ---- 61xx and short links ----

#[test]
fn responses_longer_than_the_link_come_as_61xx() {
    let mut card = Card::new(short_image(253));
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    // No extended APDUs on this link.
    assert_eq!(sw_of(&mut card, "00B08A00000000"), 0x6700);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    let (first, sw) = tx(&mut card, &sign_apdu(0x00, 0x97, &digest_info(b"m")));
    assert_eq!((first.len(), sw), (253, 0x6103));
    let (rest, sw) = tx(&mut card, &h("00C0000003"));
    assert_eq!((rest.len(), sw), (3, 0x9000));
    let signature = [first, rest].concat();
    auth_key()
        .to_public_key()
        .verify(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(b"m"),
            &signature,
        )
        .unwrap();
    // Nothing pending now.
    assert_eq!(sw_of(&mut card, "00C0000010"), 0x6985);

    // A READ BINARY of 256 bytes on a 253-byte link, then GET RESPONSE in small steps.
    assert_eq!(tx(&mut card, &select_ef(0x000A)).1, 0x9000);
    let (part, sw) = tx(&mut card, &h("00B0000000"));
    assert_eq!((part.len(), sw), (253, 0x6103));
    let (one, sw) = tx(&mut card, &h("00C0000001"));
    assert_eq!((one.len(), sw), (1, 0x6102));
    // Any other command discards the pending data.
    assert_eq!(sw_of(&mut card, "00200098"), 0x63C3);
    assert_eq!(sw_of(&mut card, "00C0000002"), 0x6985);
    assert_eq!(image().auth.cert_der[253], one[0]);
}

#[test]
fn a_large_answer_announces_61_00() {
    let mut image = image();
    image.link.max_response_data = 200;
    let mut card = Card::new(image.clone());
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    let (part, sw) = tx(&mut card, &h("00B08A00000000"));
    assert_eq!((part.len(), sw), (200, 0x6100));
    let mut all = part;
    loop {
        let (chunk, sw) = tx(&mut card, &h("00C0000000"));
        all.extend_from_slice(&chunk);
        if sw == 0x9000 {
            break;
        }
        assert_eq!(sw >> 8, 0x61);
    }
    assert_eq!(all, image.auth.cert_der);
}

// ---- class and instruction errors ----

#[test]
fn class_and_instruction_errors() {
    let mut card = jpki();
    assert_eq!(sw(&mut card, "A0A4020C02000A"), 0x6E00);
    assert_eq!(sw(&mut card, "FFCA000000"), 0x6E00);
    assert_eq!(sw(&mut card, "0CA4040C0AD392F000260100000001"), 0x6882);
    assert_eq!(sw(&mut card, "0CB0000004"), 0x69FC);
    assert_eq!(sw(&mut card, "08200080"), 0x69FC);
    assert_eq!(sw(&mut card, "10A4020C02000A"), 0x6884);
    assert_eq!(sw(&mut card, "01A4020C02000A"), 0x6881);
    // GET DATA exists, but the MF-level objects do not answer with an AP selected.
    assert_eq!(sw(&mut card, "00CA010000"), 0x6A88);
    assert_eq!(sw(&mut card, "00CB3FFF00"), 0x6D00);
    assert_eq!(sw(&mut card, "00B1000004"), 0x6D00);
    // SET SESSION KEY exists card-wide; the JPKI AP refuses it for want of a credential (B.6).
    assert_eq!(sw(&mut card, "80AE000000"), 0x6982);
    assert_eq!(sw(&mut card, "00"), 0x6700);
}

#[test]
fn get_challenge() {
    let mut card = card();
    let (challenge, sw) = tx(&mut card, &h("0084000008"));
    assert_eq!((challenge.len(), sw), (8, 0x9000));
    let (next, _) = tx(&mut card, &h("0084000008"));
    assert_ne!(challenge, next);
    let (big, _) = tx(&mut card, &h("0084000000"));
    assert_eq!(big.len(), 256);
    assert_eq!(sw_of(&mut card, "008400000000 10"), 0x6985);
    assert_eq!(sw_of(&mut card, "0084010008"), 0x6A86);
    assert_eq!(sw_of(&mut card, "00840000"), 0x6700);
    // The same image gives the same challenges: the engine is deterministic.
    let mut twin = Card::new(image());
    assert_eq!(tx(&mut twin, &h("0084000008")).0, challenge);
}

// ---- card variants ----

#[test]
fn a_card_without_signing_certificate() {
    let mut image = image();
    image.sign = None;
    image.sign_password = None;
    let mut card = Card::new(image);
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    for fid in [0x0001, 0x001A, 0x001B] {
        assert_eq!(tx(&mut card, &select_ef(fid)).1, 0x6A82, "{fid:04X}");
    }
    assert_eq!(read_ef(&mut card, 0x0008).0, vec![0x00, 0x8F, 0x00]);
    assert_eq!(sw(&mut card, "0020009B"), 0x6A88);
}

#[test]
fn the_android_token_keeps_its_auth_certificate_behind_the_pin() {
    let mut image = image();
    image.token = TokenKind::AndroidSe;
    let expected = image.auth.cert_der.clone();
    let mut card = Card::new(image);
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(read_ef(&mut card, 0x0006).0[..15], *b"JPKIAPGPSETOKEN");
    assert_eq!(tx(&mut card, &select_ef(0x000A)).1, 0x9000);
    assert_eq!(sw_of(&mut card, "00B0000004"), 0x6982);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(read_ef(&mut card, 0x000A).0, expected);
}
