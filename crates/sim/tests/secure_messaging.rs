//! Secure messaging of the text AP in the engine, driven by the card layer's host-side codec:
//! SET SESSION KEY and its refusals, SM SELECT / VERIFY / READ BINARY, the message counter, and
//! the state rules (a wrong counter ends the session, SELECT / reset / power clear it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mynacard_apdu::{Command, LengthEncoding, StatusWord};
use mynacard_card::sm::{self, Seed, SmChannel, Wrapped};
use mynacard_sim::engine::Card;
use mynacard_sim::state::SecretId;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use support::*;

const SELECT_JUKI: &str = "00A4040C0AD3921000310001010401";
const SELECT_GP_ISD: &str = "00A4040C07A0000001510000";

fn seed(byte: u8) -> Seed {
    Seed::from_bytes(core::array::from_fn(|i| byte.wrapping_add(i as u8)))
}

/// The SET SESSION KEY APDU delivering `seed` under `key` (extended Lc: 256 bytes of data).
fn set_session_key_with(key: &rsa::PrivateKey, seed: &Seed) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let delivery = sm::encrypt_key_delivery(&key.to_public_key(), seed, &mut rng).unwrap();
    bytes(&sm::set_session_key_command(delivery))
}

fn set_session_key(seed: &Seed) -> Vec<u8> {
    set_session_key_with(&keys()[5], seed)
}

/// SET SESSION KEY with a raw plaintext instead of `A0 22 80 20 <seed>`.
fn set_session_key_raw(plain: &[u8]) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed([4; 32]);
    let key = keys()[5].to_public_key();
    let delivery = key
        .encrypt(&mut rng, rsa::Oaep::<sha2::Sha256>::new(), plain)
        .unwrap();
    bytes(&sm::set_session_key_command(delivery))
}

fn bytes(command: &Command) -> Vec<u8> {
    command
        .to_bytes(LengthEncoding::Extended)
        .unwrap()
        .as_slice()
        .to_vec()
}

fn send(card: &mut Card, wrapped: &Wrapped) -> (Vec<u8>, u16) {
    tx(card, &bytes(&wrapped.command))
}

/// The text AP with the PIN verified.
fn verified_text() -> Card {
    let mut card = card();
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x91, TEXT_PIN)).1, 0x9000);
    card
}

/// A card with an open session and the host side of it.
fn open_session(seed_byte: u8) -> (Card, SmChannel) {
    let mut card = verified_text();
    let seed = seed(seed_byte);
    assert_eq!(sw_bytes(&mut card, &set_session_key(&seed)), 0x9000);
    assert_eq!(card.secure_messaging_counter(), Some(1));
    (card, SmChannel::new(seed.session_key()))
}

fn sw_bytes(card: &mut Card, command: &[u8]) -> u16 {
    let (data, sw) = tx(card, command);
    assert!(data.is_empty(), "unexpected data {data:02X?}");
    sw
}

/// SM READ BINARY and the decrypted answer.
fn sm_read(card: &mut Card, channel: &mut SmChannel, p1: u8, p2: u8, len: u16) -> (Vec<u8>, u16) {
    let wrapped = channel.read_binary(p1, p2, len).unwrap();
    let (data, sw) = send(card, &wrapped);
    let unwrapped = channel
        .unwrap(wrapped.counter, &data, StatusWord::from_u16(sw))
        .unwrap();
    (unwrapped.data.to_vec(), sw)
}

fn plain_file(card: &mut Card, fid: u16) -> Vec<u8> {
    assert_eq!(tx(card, &select_ef(fid)).1, 0x9000);
    let (data, sw) = tx(card, &[0x00, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x00]);
    assert_eq!(sw, 0x9000);
    data
}

#[test]
fn set_session_key_needs_the_pin() {
    let mut card = card();
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    let command = set_session_key(&seed(1));
    assert_eq!(sw_bytes(&mut card, &command), 0x6982, "nothing verified");
    assert_eq!(tx(&mut card, &verify(0x94, MY_NUMBER)).1, 0x9000);
    assert_eq!(
        sw_bytes(&mut card, &command),
        0x6982,
        "照合番号A does not open it"
    );
    assert_eq!(tx(&mut card, &verify(0x95, COLLATION_B)).1, 0x9000);
    assert_eq!(sw_bytes(&mut card, &command), 0x6982, "nor does 照合番号B");
    assert_eq!(card.rsa_operations(), 0, "refused before decrypting");
    assert_eq!(tx(&mut card, &verify(0x91, TEXT_PIN)).1, 0x9000);
    assert_eq!(sw_bytes(&mut card, &command), 0x9000);
    assert_eq!(card.rsa_operations(), 1, "one RSA decryption");
    assert_eq!(card.secure_messaging_counter(), Some(1));
    let pin = card.secret_status(SecretId::TextPin).unwrap();
    assert_eq!(pin.remaining, pin.limit, "no attempt spent");
}

#[test]
fn other_applications_refuse_set_session_key() {
    let command = set_session_key(&seed(2));
    let mut card = card();
    assert_eq!(sw_bytes(&mut card, &command), 0x66F1, "nothing selected");
    for (select, expected) in [
        (SELECT_COMMON, 0x66F1),
        (SELECT_VISUAL, 0x66F1),
        (SELECT_JPKI, 0x6982),
        (SELECT_JUKI, 0x6982),
    ] {
        assert_eq!(sw(&mut card, select), 0x9000);
        assert_eq!(sw_bytes(&mut card, &command), expected, "{select}");
        assert_eq!(card.secure_messaging_counter(), None);
    }
    // Even with the JPKI PIN verified.
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x98, AUTH_PIN)).1, 0x9000);
    assert_eq!(sw_bytes(&mut card, &command), 0x6982);
}

#[test]
fn malformed_key_deliveries_are_refused() {
    let mut card = verified_text();
    let mut seed32 = vec![0x11; 32];
    // Only an encryption key (80) may be delivered; a checksum key (81) is refused.
    let mut only_mac = vec![0xA0, 0x22, 0x81, 0x20];
    only_mac.append(&mut seed32.clone());
    let mut both = vec![0xA0, 0x44, 0x80, 0x20];
    both.extend_from_slice(&seed32);
    both.extend_from_slice(&[0x81, 0x20]);
    both.append(&mut seed32);
    for plain in [
        only_mac,
        both,
        vec![
            0xA0, 0x12, 0x80, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        vec![0x00; 36],
        Vec::new(),
    ] {
        assert_eq!(
            sw_bytes(&mut card, &set_session_key_raw(&plain)),
            0x6A80,
            "{plain:02X?}"
        );
    }
    // The right structure under another key does not decrypt.
    assert_eq!(
        sw_bytes(&mut card, &set_session_key_with(&keys()[2], &seed(3))),
        0x6A80
    );
    // A ciphertext at or above the modulus, and one of the wrong size.
    let mut above = vec![0x80, 0xAE, 0x00, 0x00, 0x00, 0x01, 0x00];
    above.extend([0xFF; 256]);
    assert_eq!(sw_bytes(&mut card, &above), 0x6F00);
    assert_eq!(sw_bytes(&mut card, &h("80AE0000 04 01020304")), 0x6700);
    let mut p1 = set_session_key(&seed(3));
    p1[2] = 0x01;
    assert_eq!(sw_bytes(&mut card, &p1), 0x6A86);
    assert_eq!(card.secure_messaging_counter(), None);

    // A refused delivery leaves an open session as it was.
    let seed = seed(4);
    assert_eq!(sw_bytes(&mut card, &set_session_key(&seed)), 0x9000);
    let mut channel = SmChannel::new(seed.session_key());
    let (_, sw) = sm_read(&mut card, &mut channel, 0x82, 0x00, 4);
    assert_eq!(sw, 0x9000);
    assert_eq!(sw_bytes(&mut card, &set_session_key_raw(&[0; 36])), 0x6A80);
    assert_eq!(card.secure_messaging_counter(), Some(2));
    let (data, sw) = sm_read(&mut card, &mut channel, 0x82, 0x00, 2);
    assert_eq!((data, sw), (vec![0xFF, 0x20], 0x9000));
}

#[test]
fn sm_reads_match_plain_reads_by_offset_and_by_sfi() {
    let (mut card, mut channel) = open_session(5);
    for fid in [0x0001u16, 0x0002, 0x0003, 0x0004, 0x0006, 0x0007] {
        let plain = plain_file(&mut card, fid);
        // By offset after a plain SELECT EF (which leaves the counter alone).
        let before = card.secure_messaging_counter();
        assert_eq!(tx(&mut card, &select_ef(fid)).1, 0x9000);
        assert_eq!(card.secure_messaging_counter(), before);
        let (data, sw) = sm_read(&mut card, &mut channel, 0x00, 0x00, 0);
        assert_eq!(sw, 0x9000, "{fid:04X}");
        assert_eq!(data, plain, "whole file by offset, {fid:04X}");
        // By short EF identifier.
        let (data, sw) = sm_read(&mut card, &mut channel, 0x80 | fid as u8, 0x00, 0);
        assert_eq!(
            (data.as_slice(), sw),
            (plain.as_slice(), 0x9000),
            "{fid:04X}"
        );
        // A part, at an offset.
        let (data, sw) = sm_read(&mut card, &mut channel, 0x00, 0x03, 5);
        assert_eq!((data.as_slice(), sw), (&plain[3..8], 0x9000));
    }
    assert_eq!(card.secure_messaging_counter(), Some(1 + 6 * 3));
    assert_eq!(channel.next_counter(), 1 + 6 * 3);
    // Past the end: the plain rules, in clear, with the counter step taken.
    assert_eq!(tx(&mut card, &select_ef(0x0002)).1, 0x9000);
    let plain = plain_file(&mut card, 0x0002);
    let (data, sw) = sm_read(&mut card, &mut channel, 0x00, 0x02, 0x0FFF);
    assert_eq!((data.as_slice(), sw), (&plain[2..], 0x6282));
    let wrapped = channel.read_binary(0x7F, 0x00, 0).unwrap();
    assert_eq!(send(&mut card, &wrapped), (Vec::new(), 0x6B00));
    assert_eq!(
        card.secure_messaging_counter(),
        Some(channel.next_counter())
    );
}

#[test]
fn answers_are_encrypted_on_the_wire() {
    let (mut card, mut channel) = open_session(6);
    let name = card.image().unwrap().person.name.clone();
    let address = card.image().unwrap().person.address.clone();
    let wrapped = channel.read_binary(0x82, 0x00, 0).unwrap();
    let (data, sw) = send(&mut card, &wrapped);
    assert_eq!(sw, 0x9000);
    assert_eq!(data[0], 0x86, "one cryptogram object");
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&data, name.as_bytes()));
    assert!(!contains(&data, address.as_bytes()));
    assert!(!contains(&data, b"19800217"));
    let plain = channel
        .unwrap(wrapped.counter, &data, StatusWord::Success)
        .unwrap();
    assert!(contains(&plain.data, name.as_bytes()));
}

#[test]
fn access_rules_hold_under_secure_messaging() {
    // The PIN opened the session; a wrong PIN afterwards drops the verified state, not the
    // session: reads are refused, in clear.
    let (mut card, mut channel) = open_session(7);
    assert_eq!(tx(&mut card, &verify(0x91, "0000")).1, 0x63C2);
    let wrapped = channel.read_binary(0x82, 0x00, 0).unwrap();
    assert_eq!(send(&mut card, &wrapped), (Vec::new(), 0x6982));
    // The free CVC still reads.
    let (data, sw) = sm_read(&mut card, &mut channel, 0x84, 0x00, 0);
    assert_eq!(sw, 0x9000);
    assert_eq!(&data[..2], &[0x7F, 0x21]);
}

#[test]
fn sm_verify_and_select_carry_encrypted_data() {
    let (mut card, mut channel) = open_session(8);
    // SM SELECT of EF 0001, then 照合番号A presented encrypted: it opens EF 0001.
    let select = channel.select_ef(0x0001).unwrap();
    let (_, sw) = send(&mut card, &select);
    assert_eq!(sw, 0x9000);
    let verify_a = channel.verify(0x94, MY_NUMBER.as_bytes()).unwrap();
    let wire = bytes(&verify_a.command);
    assert!(!wire.windows(12).any(|w| w == MY_NUMBER.as_bytes()));
    assert_eq!(send(&mut card, &verify_a).1, 0x9000);
    assert!(card.is_verified(SecretId::TextCollationA));
    let (data, sw) = sm_read(&mut card, &mut channel, 0x00, 0x00, 0);
    assert_eq!(sw, 0x9000);
    assert_eq!(&data[3..15], MY_NUMBER.as_bytes());
    // An SM SELECT of a missing EF is refused by the application and still takes its step.
    let missing = channel.select_ef(0x0099).unwrap();
    assert_eq!(send(&mut card, &missing).1, 0x6A82);
    // A wrong PIN under SM spends an attempt like one in clear, and takes its step.
    let wrong = channel.verify(0x91, b"9999").unwrap();
    assert_eq!(send(&mut card, &wrong).1, 0x63C2);
    assert_eq!(card.secret_status(SecretId::TextPin).unwrap().remaining, 2);
    // The empty VERIFY under SM reports the counter.
    let status = channel.verify(0x91, b"").unwrap();
    assert_eq!(send(&mut card, &status).1, 0x63C2);
    assert_eq!(
        card.secure_messaging_counter(),
        Some(channel.next_counter())
    );
    let (_, sw) = sm_read(&mut card, &mut channel, 0x85, 0x00, 4);
    assert_eq!(sw, 0x9000, "the session goes on");
}

#[test]
fn a_wrong_counter_ends_the_session_until_a_new_key() {
    let (mut card, mut channel) = open_session(9);
    // The host skips counter 1: the card decrypts with 1 and the padding fails.
    let _skipped = channel.select_ef(0x0002).unwrap();
    let out_of_step = channel.select_ef(0x0002).unwrap();
    assert_eq!(out_of_step.counter, 2);
    assert_eq!(send(&mut card, &out_of_step), (Vec::new(), 0x6988));
    assert_eq!(card.secure_messaging_counter(), None);
    // Every SM command now answers 69FC, without touching the card's state.
    let read = channel.read_binary(0x82, 0x00, 0).unwrap();
    assert_eq!(send(&mut card, &read), (Vec::new(), 0x69FC));
    let select = channel.select_ef(0x0002).unwrap();
    assert_eq!(send(&mut card, &select), (Vec::new(), 0x69FC));
    let before = card.secret_status(SecretId::TextPin).unwrap();
    let wrong = channel.verify(0x91, b"0000").unwrap();
    assert_eq!(send(&mut card, &wrong), (Vec::new(), 0x69FC));
    assert_eq!(card.secret_status(SecretId::TextPin).unwrap(), before);
    assert_eq!(sw(&mut card, "0CB0000004"), 0x69FC);
    // Plain reads still work, and the PIN is still verified.
    assert_eq!(plain_file(&mut card, 0x0002)[..2], [0xFF, 0x20]);
    // A new SET SESSION KEY starts again at 1.
    let fresh = seed(10);
    assert_eq!(sw_bytes(&mut card, &set_session_key(&fresh)), 0x9000);
    let mut channel = SmChannel::new(fresh.session_key());
    let (data, sw) = sm_read(&mut card, &mut channel, 0x82, 0x00, 2);
    assert_eq!((data, sw), (vec![0xFF, 0x20], 0x9000));
}

#[test]
fn a_reused_counter_is_refused_too() {
    let (mut card, mut channel) = open_session(11);
    let first = channel.select_ef(0x0002).unwrap();
    assert_eq!(send(&mut card, &first).1, 0x9000);
    // Sending the same command again: the card is at counter 2 now.
    assert_eq!(send(&mut card, &first), (Vec::new(), 0x6988));
    assert_eq!(card.secure_messaging_counter(), None);
}

#[test]
fn data_object_rules() {
    let (mut card, mut channel) = open_session(12);
    let key = seed(12).session_key();
    // Each case takes a fresh session: every 6988 ends it.
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // 86 on READ BINARY.
        ("86 on READ", {
            let mut c = vec![0x08, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x13];
            c.extend(sm::cryptogram_object(&key.encrypt(1, b"")));
            c.extend([0x00, 0x00]);
            c
        }),
        // 96 on SELECT.
        ("96 on SELECT", h("08A4020C 05 9603000000")),
        // A second object beside a correct one.
        (
            "two objects",
            h("08B00000 00000A 9603000000 9603000000 0000"),
        ),
        // Padding-content indicator 02.
        ("indicator", {
            let mut object = sm::cryptogram_object(&key.encrypt(1, &[0x00, 0x02]));
            object[2] = 0x02;
            let mut c = vec![0x08, 0xA4, 0x02, 0x0C, object.len() as u8];
            c.extend(object);
            c
        }),
        // No data object at all.
        ("no object", h("08B00000 000000")),
        // A cryptogram that is not whole blocks.
        ("not blocks", h("08A4020C 05 8603010203")),
    ];
    for (what, command) in cases {
        let (mut fresh, _) = open_session(12);
        assert_eq!(tx(&mut fresh, &command), (Vec::new(), 0x6988), "{what}");
        assert_eq!(fresh.secure_messaging_counter(), None, "{what}");
    }
    // Long-form length of the cryptogram object is accepted.
    let mut long = vec![0x08, 0xA4, 0x02, 0x0C, 0x14, 0x86, 0x81, 0x11, 0x01];
    long.extend(key.encrypt(1, &[0x00, 0x02]));
    assert_eq!(tx(&mut card, &long), (Vec::new(), 0x9000));
    let _ = channel.select_ef(0x0002).unwrap();
    // Header authentication (0C): 6987; other instructions: 6882; short Le on READ: 6700. The
    // session survives each, and each takes a counter step.
    assert_eq!(sw(&mut card, "0CB00000 000005 9603000000 0000"), 0x6987);
    let _ = channel.select_ef(0).unwrap();
    assert_eq!(sw(&mut card, "082A0000 05 9603000000"), 0x6882);
    let _ = channel.select_ef(0).unwrap();
    assert_eq!(sw(&mut card, "08B00000 05 9603000000 00"), 0x6700);
    let _ = channel.select_ef(0).unwrap();
    assert_eq!(
        card.secure_messaging_counter(),
        Some(channel.next_counter())
    );
    let (data, sw) = sm_read(&mut card, &mut channel, 0x00, 0x00, 2);
    assert_eq!((data, sw), (vec![0xFF, 0x20], 0x9000));
}

#[test]
fn selection_reset_and_power_end_the_session() {
    type Step = fn(&mut Card);
    let steps: [(&str, Step); 6] = [
        ("SELECT text AP again", |c| {
            assert_eq!(sw(c, SELECT_TEXT), 0x9000)
        }),
        ("SELECT another AP", |c| {
            assert_eq!(sw(c, SELECT_JPKI), 0x9000)
        }),
        ("SELECT GP ISD", |c| {
            assert_eq!(sw(c, SELECT_GP_ISD), 0x9000)
        }),
        ("SM SELECT of the AP", |c| {
            // A SELECT by AID inside SM selects, and so clears the session too.
            let aid = h("D3921000310001010408");
            let object = sm::cryptogram_object(&seed(13).session_key().encrypt(1, &aid));
            let mut command = vec![0x08, 0xA4, 0x04, 0x0C, object.len() as u8];
            command.extend(object);
            assert_eq!(tx(c, &command), (Vec::new(), 0x9000));
        }),
        ("reset", Card::reset),
        ("power off", Card::power_off),
    ];
    for (what, step) in steps {
        let mut card = verified_text();
        assert_eq!(sw_bytes(&mut card, &set_session_key(&seed(13))), 0x9000);
        step(&mut card);
        assert_eq!(card.secure_messaging_counter(), None, "{what}");
        assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
        // Back to the refusals of a card without a session (B.8).
        assert_eq!(
            sw(&mut card, "08B00000 000005 9603000000 0000"),
            0x69FC,
            "{what}"
        );
        assert_eq!(sw(&mut card, "08A4020C020001"), 0x6882, "{what}");
    }
}

#[test]
fn short_links_refuse_the_extended_sm_read() {
    let mut card = Card::new(short_image(256));
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x91, TEXT_PIN)).1, 0x9000);
    // SET SESSION KEY itself needs 256 bytes of data: an extended Lc.
    assert_eq!(sw_bytes(&mut card, &set_session_key(&seed(14))), 0x6700);
    assert_eq!(card.secure_messaging_counter(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Arbitrary commands in an open session never panic, always answer a status word, and
    /// leave the counter either advanced by one, or the session gone.
    #[test]
    fn arbitrary_sm_commands_never_panic(
        ins in any::<u8>(),
        p1 in any::<u8>(),
        p2 in any::<u8>(),
        data in proptest::collection::vec(any::<u8>(), 0..80),
        cla in prop_oneof![Just(0x08u8), Just(0x0C), Just(0x04)],
    ) {
        let (mut card, _) = open_session(15);
        let mut command = Command::new(cla, ins, p1, p2).with_ne(65_536);
        if !data.is_empty() {
            command = command.with_data(data);
        }
        let wire = bytes(&command);
        let response = card.process(&wire);
        prop_assert!(response.len() >= 2);
        let counter = card.secure_messaging_counter();
        prop_assert!(counter.is_none() || counter == Some(2), "{counter:?}");
    }
}
