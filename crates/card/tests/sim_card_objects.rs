//! The card-level identification, the card-level certificates, the rendered individual number
//! and the common AP PIN change, against the simulated card on extended and short links, with
//! the APDUs each costs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::StatusWord;
use mynacard_card::visual::VisualKey;
use mynacard_card::{
    AttemptPolicy, CollationB, Date, Error, MyNumber, Pin, PinKind, PinStatus, Session,
};
use mynacard_sim::image::{CardImage, MY_NUMBER_IMAGE_SIZE, digit_ink};
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_sim::state::SecretId;
use pollster::block_on;

fn card(profile: &str) -> (SimCard, Session<SimChannel>) {
    let image = CardImage::from_profile_name(profile).expect("built-in profile");
    let sim = SimCard::from_image(image);
    let session = Session::new(sim.channel());
    (sim, session)
}

fn pin(s: &str) -> Pin {
    Pin::new(s).unwrap()
}

/// Commands the card saw with this CLA and INS.
fn sent(sim: &SimCard, cla: u8, ins: u8) -> Vec<Vec<u8>> {
    sim.log()
        .entries()
        .iter()
        .filter(|e| e.command.first() == Some(&cla) && e.command.get(1) == Some(&ins))
        .map(|e| e.command.clone())
        .collect()
}

/// Whether the card ever saw a READ BINARY of the visual AP's EF 0005 (by SFI or after SELECT).
fn read_my_number_image_sent(sim: &SimCard) -> bool {
    let entries = sim.log().entries();
    entries.iter().enumerate().any(|(i, e)| {
        let c = &e.command;
        let by_sfi = c.len() >= 3 && c[1] == 0xB0 && c[2] == 0x85;
        let after_select = c.len() >= 2
            && c[1] == 0xB0
            && entries[..i]
                .iter()
                .rev()
                .find(|p| p.command.get(1) == Some(&0xA4))
                .is_some_and(|p| p.command.ends_with(&[0x02, 0x0C, 0x02, 0x00, 0x05]));
        by_sfi || after_select
    })
}

// ---- card identification (MF GET DATA) ----

#[test]
fn card_identification_in_five_apdus_on_every_link() {
    for profile in ["adult", "no-extended", "contactless", "contact", "reissued"] {
        let (sim, mut session) = card(profile);
        let image = sim.with_card(|c| c.image().clone());
        let id = block_on(session.card_identification()).unwrap();
        assert_eq!(id.card_number.expose(), image.face.serial, "{profile}");
        assert_eq!(id.municipality_code, image.face.municipality_code);
        let e = image.face.expiry;
        assert_eq!(id.expiry, Date::new(e.year, e.month, e.day).unwrap());
        assert_eq!(&id.issuer_id[..7], b"6000020");
        assert_eq!(
            session.stats().commands,
            5,
            "{profile}: SELECT ISD + 4 GET DATA"
        );
        assert!(
            sent(&sim, 0x00, 0xCA).iter().all(|c| c.len() == 5),
            "short Le only"
        );
        let shown = format!("{id:?}");
        assert!(!shown.contains(&image.face.serial), "{shown}");
    }
}

#[test]
fn card_identification_leaves_an_application_and_it_reopens() {
    let (sim, mut session) = card("adult");
    block_on(async {
        let mut text = session.text().await.unwrap();
        let v = text
            .verify_pin(&pin("1234"), AttemptPolicy::default())
            .await
            .unwrap();
        drop(v);
        let id = session.card_identification().await.unwrap();
        assert_eq!(id.municipality_code, "13221");
        assert_eq!(sim.with_card(|c| c.current_application()), None);
        // The next application handle selects its application again.
        let mut text = session.text().await.unwrap();
        assert_eq!(
            text.pin_status(mynacard_card::text::TextKey::Pin)
                .await
                .unwrap(),
            PinStatus::Remaining(3)
        );
    });
}

#[test]
fn card_certificates_need_extended_length() {
    let (sim, mut session) = card("adult");
    let chain = block_on(session.card_certificates()).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(&chain[0].issuer_key_id[..7], b"6000020");
    assert_eq!(chain[0].subject_key_id, chain[1].issuer_key_id);
    assert_eq!(&chain[1].subject_key_id[..7], b"6000023");
    // Each link is signed by the key the one above certifies, and the lower one certifies the
    // key that issues the visual AP's certificate.
    let visual_cvc = block_on(async { session.visual().await.unwrap().read_cvc().await.unwrap() });
    assert_eq!(chain[1].subject_key_id, visual_cvc.issuer_key_id);
    assert_eq!(chain[1].public_key, visual_cvc.public_key);
    assert_eq!(chain[0].public_key, chain[1].public_key);
    // SELECT ISD, then per certificate a refused short GET DATA and an extended one.
    let get_data = sent(&sim, 0x00, 0xCA);
    assert_eq!(get_data.len(), 4);
    assert_eq!(get_data[0], [0x00, 0xCA, 0x00, 0xF8, 0x00]);
    assert_eq!(get_data[1], [0x00, 0xCA, 0x00, 0xF8, 0x00, 0x00, 0x00]);
    assert_eq!(get_data[3], [0x00, 0xCA, 0x7F, 0x21, 0x00, 0x00, 0x00]);

    let (sim, mut session) = card("no-extended");
    let err = block_on(session.card_certificates()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Card {
                sw: StatusWord::WrongLength,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        session.stats().commands,
        2,
        "no extended APDU on a short link"
    );
    assert_eq!(sent(&sim, 0x00, 0xCA).len(), 1);
}

// ---- the rendered individual number ----

#[test]
fn my_number_image_after_collation_a_only_on_explicit_request() {
    for profile in ["adult", "no-extended"] {
        let (sim, mut session) = card(profile);
        let number = MyNumber::new("123456789018").unwrap();
        block_on(async {
            let mut visual = session.visual().await.unwrap();
            // Reading the face after 照合番号B never touches EF 0005.
            let birth = Date::new(1980, 2, 17).unwrap();
            let b = CollationB::new(birth, 2035, "2285").unwrap();
            let mut v = visual
                .verify_collation_b(&b, AttemptPolicy::default())
                .await
                .unwrap();
            v.read_face_checked().await.unwrap();
            let before = sim.log().entries().len();
            let err = v.read_my_number_image().await.unwrap_err();
            assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
            assert_eq!(sim.log().entries().len(), before, "nothing sent");
            drop(v);
            assert!(!read_my_number_image_sent(&sim), "{profile}");

            let mut v = visual
                .verify_collation_a(&number, AttemptPolicy::default())
                .await
                .unwrap();
            let start = v_stats(&sim);
            let image = v.read_my_number_image().await.unwrap();
            let apdus = v_stats(&sim) - start;
            // EF 0005 (about 730 bytes) and the CVC (555): one read each with extended length;
            // on a 256-byte link each is a read by SFI, a SELECT and two reads by offset.
            let expected = if profile == "adult" { 2 } else { 8 };
            assert_eq!(apdus, expected, "{profile}");
            assert!(!format!("{image:?}").contains("PNG"));
            let decoder = png::Decoder::new(std::io::Cursor::new(image.png.to_vec()));
            let mut reader = decoder.read_info().unwrap();
            let (width, height) = MY_NUMBER_IMAGE_SIZE;
            assert_eq!((reader.info().width, reader.info().height), (width, height));
            let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
            let frame = reader.next_frame(&mut pixels).unwrap();
            for y in 0..height {
                for x in 0..width {
                    let byte = pixels[y as usize * frame.line_size + (x / 8) as usize];
                    let black = byte & (0x80 >> (x % 8)) == 0;
                    assert_eq!(black, digit_ink(number.expose().as_bytes(), x, y));
                }
            }
        });
        assert!(read_my_number_image_sent(&sim));
        assert_eq!(
            sim.with_card(|c| c.secret_status(SecretId::VisualCollationA))
                .unwrap()
                .remaining,
            10
        );
    }
}

fn v_stats(sim: &SimCard) -> usize {
    sim.log().entries().len()
}

#[test]
fn my_number_image_pin_status_is_read_before_verify() {
    let (sim, mut session) = card("adult");
    block_on(async {
        let mut visual = session.visual().await.unwrap();
        assert_eq!(
            visual.pin_status(VisualKey::CollationA).await.unwrap(),
            PinStatus::Remaining(10)
        );
    });
    assert_eq!(sent(&sim, 0x00, 0x20).len(), 1);
}

// ---- the common AP PIN ----

#[test]
fn common_pin_change_with_change_key() {
    for profile in ["adult", "no-extended"] {
        let (sim, mut session) = card(profile);
        block_on(async {
            let mut common = session.common().await.unwrap();
            assert_eq!(common.pin_status().await.unwrap(), PinStatus::Remaining(3));
            let err = common
                .verify_pin(&pin("0000"), AttemptPolicy::default())
                .await
                .unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::WrongPin {
                        key: PinKind::CommonPin,
                        retries_left: 2
                    }
                ),
                "{err:?}"
            );
            session.reset_stats();
            let mut common = session.common().await.unwrap();
            let mut v = common
                .verify_pin(&pin("1234"), AttemptPolicy::default())
                .await
                .unwrap();
            v.change_pin(&pin("2468")).await.unwrap();
        });
        // Counter status + VERIFY + SELECT EF + CHANGE KEY; the application was still selected.
        assert_eq!(session.stats().commands, 4, "{profile}");
        let change = sent(&sim, 0x80, 0x32);
        assert_eq!(change.len(), 1);
        assert_eq!(change[0][..5], [0x80, 0x32, 0x00, 0x80, 0x04]);
        let state = sim.with_card(|c| c.persistent_state());
        assert_eq!(state.secrets["common-pin"].value.as_deref(), Some("2468"));
        assert_eq!(
            state.secrets["common-pin"].remaining, 3,
            "restored by the right PIN"
        );
        // The 住基AP's key of the same PIN is a separate key: unchanged.
        assert_eq!(state.secrets["juki-pin"].value, None);

        // The new PIN verifies, the old one is wrong.
        block_on(async {
            let mut common = session.common().await.unwrap();
            common
                .verify_pin(&pin("2468"), AttemptPolicy::default())
                .await
                .unwrap();
        });
    }
}

#[test]
fn common_pin_blocked_not_set_and_reset() {
    let (sim, mut session) = card("adult");
    block_on(async {
        let mut common = session.common().await.unwrap();
        for _ in 0..2 {
            assert!(
                common
                    .verify_pin(&pin("0000"), AttemptPolicy::default())
                    .await
                    .is_err()
            );
        }
        let err = common
            .verify_pin(&pin("0000"), AttemptPolicy::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LastAttemptRefused { .. }), "{err:?}");
        let err = common
            .verify_pin(&pin("0000"), AttemptPolicy::AllowLastAttempt)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Blocked {
                    key: PinKind::CommonPin
                }
            ),
            "{err:?}"
        );
        let with_data = sent(&sim, 0x00, 0x20)
            .iter()
            .filter(|c| c.len() > 4)
            .count();
        let err = common
            .verify_pin(&pin("1234"), AttemptPolicy::AllowLastAttempt)
            .await
            .unwrap_err();
        assert!(err.is_blocked());
        let after = sent(&sim, 0x00, 0x20)
            .iter()
            .filter(|c| c.len() > 4)
            .count();
        assert_eq!(with_data, after, "no VERIFY with data once blocked");
    });

    // A card without PINs has no 001C.
    let (_sim, mut session) = card("face-auth");
    block_on(async {
        let mut common = session.common().await.unwrap();
        assert_eq!(common.pin_status().await.unwrap(), PinStatus::NotSet);
        let err = common
            .verify_pin(&pin("1234"), AttemptPolicy::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::PinNotSet { .. }), "{err:?}");
    });

    // A reset between VERIFY and the change ends the handle: nothing is sent.
    let (sim, mut session) = card("adult");
    block_on(async {
        let mut common = session.common().await.unwrap();
        let mut v = common
            .verify_pin(&pin("1234"), AttemptPolicy::default())
            .await
            .unwrap();
        sim.with_card(|c| c.reset());
        let err = v.change_pin(&pin("2468")).await.unwrap_err();
        assert!(matches!(err, Error::CardReset), "{err:?}");
    });
    assert!(sent(&sim, 0x80, 0x32).is_empty());
}
