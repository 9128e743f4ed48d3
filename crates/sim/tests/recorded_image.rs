//! Recorded images: the loader (description, data files, typed errors) and the J-LIS test card
//! served from `images/jlis-test-card/`: byte-identical files, the card's access rules, its PIN
//! counters, the recorded MF objects, and `6D00` wherever a private key would be needed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};

use mynacard_card::{AttemptPolicy, HashAlgorithm, Pin, Session, SignPassword};
use mynacard_sim::engine::{Card, NO_KEY, SecretStatus};
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::recorded::{JLIS_TEST_CARD, MAX_FILE_LEN, RecordedError, RecordedImage};
use mynacard_sim::state::SecretId;
use pollster::block_on;
use sha2::{Digest, Sha256};
use support::{
    SELECT_COMMON, SELECT_JPKI, SELECT_TEXT, SELECT_VISUAL, digest_info, h, read_all_short,
    select_ef, sw, tx, verify,
};

const MY_NUMBER: &str = "537686677188";
const COLLATION_B: &str = "55021720350000";

fn file(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(JLIS_TEST_CARD).join(name)).unwrap()
}

fn card() -> Card {
    Card::from_recorded(RecordedImage::jlis_test_card().unwrap())
}

fn read_ef(card: &mut Card, fid: u16) -> (Vec<u8>, u16) {
    let select = tx(card, &select_ef(fid)).1;
    assert_eq!(select, 0x9000, "SELECT EF {fid:04X}");
    read_all_short(card)
}

fn sw_of(card: &mut Card, command: &[u8]) -> u16 {
    tx(card, command).1
}

fn status(card: &Card, id: SecretId) -> (u8, u8) {
    let SecretStatus { remaining, limit } = card.secret_status(id).unwrap();
    (remaining, limit)
}

#[test]
fn shipped_files_match_their_sha256sums() {
    let sums = String::from_utf8(file("SHA256SUMS")).unwrap();
    let mut checked = 0;
    for line in sums.lines() {
        let (hash, name) = line.split_once("  ").unwrap();
        assert_eq!(hex::encode(Sha256::digest(file(name))), hash, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 18);
    // Every EF and object the image serves is one of those files.
    let image = RecordedImage::jlis_test_card().unwrap();
    assert_eq!(image.files.len() + image.mf_objects.len(), 18);
    for ef in &image.files {
        let hash = hex::encode(Sha256::digest(&ef.contents));
        assert!(sums.contains(&hash), "{ef:?} is not a listed file");
    }
    assert!(
        Path::new(JLIS_TEST_CARD)
            .join("LICENSE-MIT-myna-card")
            .is_file()
    );
}

#[test]
fn jpki_certificates_are_the_files_byte_for_byte() {
    let mut card = card();
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    for (fid, name) in [
        (0x000A, "jpki-auth-cert.der"),
        (0x000B, "jpki-auth-ca-cert.der"),
        (0x0002, "jpki-sign-ca-cert.der"),
    ] {
        assert_eq!(read_ef(&mut card, fid), (file(name), 0x9000), "{name}");
    }
    // B.2: the signing certificate only after the signing password.
    assert_eq!(read_ef(&mut card, 0x0001).1, 0x6982);
    assert_eq!(sw_of(&mut card, &verify(0x9B, "ABC123")), 0x9000);
    assert_eq!(
        read_ef(&mut card, 0x0001),
        (file("jpki-sign-cert.der"), 0x9000)
    );
    // One extended READ BINARY by SFI returns a whole certificate.
    let (data, sw) = tx(&mut card, &h("00B08B00000000"));
    assert_eq!((data, sw), (file("jpki-auth-ca-cert.der"), 0x9000));
}

#[test]
fn efs_the_image_does_not_list_are_not_found() {
    let mut card = card();
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    // Token information and availability were not recorded.
    for fid in [0x0006, 0x0008, 0x0009] {
        assert_eq!(sw_of(&mut card, &select_ef(fid)), 0x6A82, "{fid:04X}");
    }
    // The key EFs exist.
    assert_eq!(sw_of(&mut card, &select_ef(0x0017)), 0x9000);
    assert_eq!(sw_of(&mut card, &select_ef(0x001A)), 0x9000);
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(sw_of(&mut card, &select_ef(0x0008)), 0x6A82);
    assert_eq!(sw(&mut card, SELECT_COMMON), 0x9000);
    assert_eq!(sw_of(&mut card, &select_ef(0x0001)), 0x6A82);
}

#[test]
fn operations_needing_a_private_key_answer_instruction_not_supported() {
    assert_eq!(NO_KEY.to_u16(), 0x6D00);
    let mut card = card();
    assert!(!card.has_private_keys());
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(sw_of(&mut card, &verify(0x9B, "ABC123")), 0x9000);
    assert_eq!(sw_of(&mut card, &verify(0x98, "1234")), 0x9000);
    let info = digest_info(b"message");
    for p2 in [0x9A, 0x97] {
        let mut command = vec![0x80, 0x2A, 0x00, p2, info.len() as u8];
        command.extend_from_slice(&info);
        command.push(0x00);
        assert_eq!(tx(&mut card, &command), (Vec::new(), 0x6D00), "P2 {p2:02X}");
    }
    // The card-presence signature of the visual AP, INTERNAL AUTHENTICATE of the common AP and
    // SET SESSION KEY of the text AP need keys too.
    assert_eq!(sw(&mut card, SELECT_VISUAL), 0x9000);
    let mut presence = vec![0x80, 0x2A, 0x00, 0x00, info.len() as u8];
    presence.extend_from_slice(&info);
    presence.push(0x00);
    assert_eq!(sw_of(&mut card, &presence), 0x6D00);
    assert_eq!(sw(&mut card, SELECT_COMMON), 0x9000);
    assert_eq!(sw_of(&mut card, &h("0088009908000102030405060700")), 0x6D00);
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(sw_of(&mut card, &verify(0x91, "1234")), 0x9000);
    let mut key_delivery = h("80AE0000000100");
    key_delivery.extend_from_slice(&[0x55; 256]);
    assert_eq!(sw_of(&mut card, &key_delivery), 0x6D00);
    assert_eq!(card.rsa_operations(), 0);
    // Challenges need no key.
    assert_eq!(tx(&mut card, &h("0084000010")).0.len(), 16);
}

#[test]
fn get_data_answers_the_recorded_objects() {
    let mut card = card();
    let (upper, sw) = tx(&mut card, &h("00CA00F8000000"));
    assert_eq!((upper, sw), (file("mf-do-F8.bin"), 0x9000));
    let (lower, sw) = tx(&mut card, &h("00CA7F21000000"));
    assert_eq!((lower, sw), (file("mf-do-7F21.bin"), 0x9000));
    // 575 bytes need an extended Le (B.4).
    assert_eq!(sw_of(&mut card, &h("00CA00F800")), 0x6700);
    // Not recorded: the contact ATR, the card id.
    assert_eq!(sw_of(&mut card, &h("00CA5F5100")), 0x6A88);
    assert_eq!(sw_of(&mut card, &h("00CA004500")), 0x6A88);
}

#[test]
fn counters_start_as_described_and_move_as_on_a_card() {
    let mut card = card();
    assert_eq!(status(&card, SecretId::JpkiAuthPin), (3, 3));
    assert_eq!(status(&card, SecretId::JpkiSignPassword), (5, 5));
    assert_eq!(status(&card, SecretId::TextCollationB), (10, 10));
    assert_eq!(status(&card, SecretId::TextBlockedKey), (0, 3));
    assert_eq!(card.secret_status(SecretId::CommonPin), None);
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    // A status query spends nothing.
    assert_eq!(sw(&mut card, "00200098"), 0x63C3);
    assert_eq!(sw(&mut card, "00200098"), 0x63C3);
    assert_eq!(sw_of(&mut card, &verify(0x98, "9999")), 0x63C2);
    assert_eq!(status(&card, SecretId::JpkiAuthPin), (2, 3));
    assert_eq!(sw_of(&mut card, &verify(0x98, "1234")), 0x9000);
    assert_eq!(status(&card, SecretId::JpkiAuthPin), (3, 3));
    assert_eq!(sw_of(&mut card, &verify(0x9B, "abc123")), 0x63C4);
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(sw(&mut card, "00200092"), 0x63C0);
    assert_eq!(sw_of(&mut card, &verify(0x92, "0000")), 0x6984);
    // The state a harness saves belongs to the image, not to any generated profile.
    let state = card.persistent_state();
    assert_eq!(state.profile, "image:jlis-test-card");
    let again =
        Card::from_recorded_with_state(RecordedImage::jlis_test_card().unwrap(), &state).unwrap();
    assert_eq!(status(&again, SecretId::JpkiSignPassword), (4, 5));
    let adult = mynacard_sim::image::CardImage::from_profile_name("no-extended").unwrap();
    assert!(Card::with_state(adult, &state).is_err());
}

#[test]
fn text_and_visual_files_open_with_the_keys_the_card_accepts() {
    let mut card = card();
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(sw_of(&mut card, &verify(0x94, MY_NUMBER)), 0x9000);
    assert_eq!(
        read_ef(&mut card, 0x0001),
        (file("text-0001-physical.bin"), 0x9000)
    );
    // B.6: 照合番号A does not open the attributes; B does.
    assert_eq!(read_ef(&mut card, 0x0002).1, 0x6982);
    assert_eq!(sw(&mut card, SELECT_TEXT), 0x9000);
    assert_eq!(sw_of(&mut card, &verify(0x95, COLLATION_B)), 0x9000);
    assert_eq!(read_ef(&mut card, 0x0002), (file("text-0002.bin"), 0x9000));
    assert_eq!(read_ef(&mut card, 0x0001).1, 0x6982);
    assert_eq!(read_ef(&mut card, 0x0004), (file("text-0004.bin"), 0x9000));

    assert_eq!(sw(&mut card, SELECT_VISUAL), 0x9000);
    assert_eq!(read_ef(&mut card, 0x0001).1, 0x6982);
    assert_eq!(sw_of(&mut card, &verify(0x91, "550217")), 0x9000);
    assert_eq!(
        read_ef(&mut card, 0x0001),
        (file("surface-0001.bin"), 0x9000)
    );
    assert_eq!(sw_of(&mut card, &verify(0x92, COLLATION_B)), 0x9000);
    assert_eq!(
        read_ef(&mut card, 0x0002),
        (file("surface-0002.bin"), 0x9000)
    );
    // B.7: the rendered My Number with 照合番号A only.
    assert_eq!(read_ef(&mut card, 0x0005).1, 0x6982);
    assert_eq!(sw_of(&mut card, &verify(0x93, MY_NUMBER)), 0x9000);
    assert_eq!(
        read_ef(&mut card, 0x0005),
        (file("surface-0005.bin"), 0x9000)
    );
}

#[test]
fn the_card_layer_reads_the_image_and_gets_a_typed_error_for_signing() {
    let sim = SimCard::new(card());
    let mut session = Session::new(sim.channel());
    block_on(async {
        let mut ap = session.jpki().await.unwrap();
        let auth = ap
            .read_certificate(mynacard_card::jpki::PublicCertificate::Auth)
            .await
            .unwrap();
        assert_eq!(auth.der(), file("jpki-auth-cert.der"));
        let password = SignPassword::new("ABC123").unwrap();
        let mut verified = ap
            .verify_sign(&password, AttemptPolicy::default())
            .await
            .unwrap();
        let sign = verified.read_sign_certificate().await.unwrap();
        assert_eq!(sign.der(), file("jpki-sign-cert.der"));
        let refused = verified
            .sign(HashAlgorithm::Sha256, b"message")
            .await
            .unwrap_err();
        assert!(
            matches!(
                refused,
                mynacard_card::Error::Card {
                    sw: mynacard_apdu::StatusWord::InsNotSupported,
                    ..
                }
            ),
            "{refused:?}"
        );
    });
    // The real card's text AP data passes the card layer's integrity check.
    block_on(async {
        let mut text = session.text().await.unwrap();
        let pin = Pin::new("1234").unwrap();
        let mut verified = text
            .verify_pin(&pin, AttemptPolicy::default())
            .await
            .unwrap();
        // The real card's CVC is issued by the J-LIS test authority.
        let trust = mynacard_card::CvcTrust::production().allow_test_hierarchy();
        let attributes = verified
            .read_attributes_checked(&trust)
            .await
            .unwrap()
            .into_trusted()
            .unwrap();
        assert_eq!(attributes.name, "黒桐\u{3000}幹也");
    });
    assert_eq!(
        sim.with_card(|c| c.secret_status(SecretId::JpkiSignPassword)),
        Some(SecretStatus {
            remaining: 5,
            limit: 5
        })
    );
}

// ---- the loader ----

/// A scratch copy of the shipped image whose description is `edit(original)`.
fn edited(name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mynacard-recorded-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(JLIS_TEST_CARD).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let description = std::fs::read_to_string(dir.join("card.toml")).unwrap();
    std::fs::write(dir.join("card.toml"), edit(description)).unwrap();
    dir
}

fn load_edited(name: &str, edit: impl FnOnce(String) -> String) -> RecordedError {
    let dir = edited(name, edit);
    let result = RecordedImage::load(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    result.unwrap_err()
}

fn invalid_key(error: &RecordedError) -> &str {
    match error {
        RecordedError::Invalid { key, .. } => key,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn the_description_file_itself_loads_as_the_folder_does() {
    let by_file = RecordedImage::load(&Path::new(JLIS_TEST_CARD).join("card.toml")).unwrap();
    let by_folder = RecordedImage::jlis_test_card().unwrap();
    assert_eq!(by_file.files, by_folder.files);
    assert_eq!(by_file.name, "jlis-test-card");
    assert_eq!(
        by_file
            .secret(SecretId::TextCollationA)
            .unwrap()
            .value
            .as_slice(),
        MY_NUMBER.as_bytes()
    );
}

#[test]
fn a_missing_description_or_data_file_is_an_io_error_naming_it() {
    let missing = RecordedImage::load(Path::new("/nonexistent/card.toml")).unwrap_err();
    assert!(matches!(&missing, RecordedError::Io { path, .. } if path.ends_with("card.toml")));
    let error = load_edited("missing", |d| {
        d.replace("text-0004.bin", "text-0004-gone.bin")
    });
    match error {
        RecordedError::Io { path, .. } => assert!(path.ends_with("text-0004-gone.bin")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_descriptions_are_typed_errors() {
    let not_toml = load_edited("not-toml", |d| d.replace("format = 1", "format = "));
    assert!(
        matches!(not_toml, RecordedError::Toml { .. }),
        "{not_toml:?}"
    );
    let unknown = load_edited("unknown-key", |d| {
        d.replace("[link]", "[link]\nspeed = 9600")
    });
    assert!(matches!(unknown, RecordedError::Toml { .. }), "{unknown:?}");
    let cases: [(&str, &str, &str, &str); 9] = [
        ("format", "format = 1", "format = 2", "format"),
        ("atr", "3B C5 FF", "XX C5 FF", "link.atr"),
        ("fid", "\"000A\" =", "\"0A\" =", "jpki.files.0A"),
        (
            "secret-name",
            "jpki-auth-pin =",
            "jpki-auth-pim =",
            "secrets.jpki-auth-pim",
        ),
        (
            "gate",
            "read_after = [\"jpki-sign-password\"]",
            "read_after = [\"jpki-sign-pass\"]",
            "jpki.files.0001.read_after",
        ),
        (
            "foreign-gate",
            "read_after = [\"jpki-sign-password\"]",
            "read_after = [\"text-pin\"]",
            "jpki.files.0001.read_after",
        ),
        (
            "key",
            "keys = [\"0017\", \"001A\"]",
            "keys = [\"0017\", \"0018\"]",
            "jpki.keys",
        ),
        (
            "pin-form",
            "{ value = \"1234\", limit = 3 }\njpki-sign",
            "{ value = \"12345\", limit = 3 }\njpki-sign",
            "secrets.jpki-auth-pin",
        ),
        (
            "path",
            "\"text-0004.bin\"",
            "\"../text-0004.bin\"",
            "text.files.0004.file",
        ),
    ];
    for (name, from, to, key) in cases {
        let error = load_edited(name, |d| {
            assert!(d.contains(from), "{name}: {from:?} not in the description");
            d.replacen(from, to, 1)
        });
        assert_eq!(invalid_key(&error), key, "{name}: {error}");
    }
    // A file id used by a secret cannot be a data file too.
    let clash = load_edited("clash", |d| {
        d.replace(
            "[jpki.files]",
            "[jpki.files]\n\"0018\" = { file = \"text-0004.bin\" }",
        )
    });
    assert_eq!(invalid_key(&clash), "jpki.files.0018");
}

#[test]
fn data_files_over_the_limit_are_refused() {
    let dir = edited("large", |d| d);
    let big = vec![0u8; usize::try_from(MAX_FILE_LEN).unwrap() + 1];
    std::fs::write(dir.join("text-0004.bin"), big).unwrap();
    let error = RecordedImage::load(&dir).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        matches!(&error, RecordedError::TooLarge { path } if path.ends_with("text-0004.bin")),
        "{error:?}"
    );
}
