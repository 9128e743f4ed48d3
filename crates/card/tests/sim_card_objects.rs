//! The card-level identification, the card-level certificates, the rendered individual number
//! and the common AP PIN change, against the simulated card on extended and short links, with
//! the APDUs each costs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mynacard_apdu::StatusWord;
use mynacard_card::common::{CommonAp, VerifiedCommon};
use mynacard_card::cvc::{CvcRefusal, CvcTrust};
use mynacard_card::text::TextKey;
use mynacard_card::visual::VisualKey;
use mynacard_card::{AttemptPolicy, Date, Error, PinKind, PinStatus};
use mynacard_sim::image::{MY_NUMBER_IMAGE_SIZE, digit_ink};
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_sim::state::SecretId;
use pollster::block_on;
use support::{
    PIN, apdus_seen, assert_matches, card, collation_a, pin, remaining, sent, sim_cvc_trust,
    verify_visual_collation_b, with_text_pin_verified, without_sending,
};

/// Verifies `digits` as the common AP PIN, which must succeed.
async fn verify_common_pin<'a>(
    common: &'a mut CommonAp<'_, SimChannel>,
    digits: &str,
) -> VerifiedCommon<'a, SimChannel> {
    common
        .verify_pin(&pin(digits), AttemptPolicy::default())
        .await
        .unwrap()
}

/// VERIFY commands with a PIN in them (not the bare counter queries) the card saw.
fn verifies_with_a_pin(sim: &SimCard) -> usize {
    sent(sim, 0x00, 0x20).iter().filter(|c| c.len() > 4).count()
}

/// Asserts that `png` is the rendered individual number `digits`: its size, and every pixel black
/// exactly where the digits are inked.
fn assert_png_shows_number(png: &[u8], digits: &str) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png.to_vec()));
    let mut reader = decoder.read_info().unwrap();
    let (width, height) = MY_NUMBER_IMAGE_SIZE;
    assert_eq!((reader.info().width, reader.info().height), (width, height));
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    for y in 0..height {
        for x in 0..width {
            let byte = pixels[y as usize * frame.line_size + (x / 8) as usize];
            let black = byte & (0x80 >> (x % 8)) == 0;
            assert_eq!(black, digit_ink(digits.as_bytes(), x, y));
        }
    }
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
        let image = sim.with_card(|c| c.image().unwrap().clone());
        let id = block_on(session.card_identification()).unwrap();
        assert_eq!(id.card_number.expose(), image.face.serial, "{profile}");
        assert_eq!(id.municipality_code, image.face.municipality_code);
        let e = image.face.expiry;
        assert_eq!(id.expiry, Date::new(e.year, e.month, e.day).unwrap());
        assert_eq!(&id.issuer_id[..7], b"6900020");
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
    with_text_pin_verified(&mut session, async |_| {});
    block_on(async {
        let id = session.card_identification().await.unwrap();
        assert_eq!(id.municipality_code, "13221");
        assert_eq!(sim.with_card(|c| c.current_application()), None);
        // The next application handle selects its application again.
        let mut text = session.text().await.unwrap();
        assert_eq!(
            text.pin_status(TextKey::Pin).await.unwrap(),
            PinStatus::Remaining(3)
        );
    });
}

#[test]
fn card_certificates_need_extended_length() {
    let (sim, mut session) = card("adult");
    let chain = block_on(session.card_certificates()).unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(&chain[0].issuer_key_id[..7], b"6900020");
    assert_eq!(chain[0].subject_key_id, chain[1].issuer_key_id);
    assert_eq!(&chain[1].subject_key_id[..7], b"0000050");
    // The chain verifies link by link under the simulator's chain authority, trusted only on
    // the test opt-in; the visual AP's certificate is issued by a distinct authority.
    let trusted = sim_cvc_trust()
        .verify_card_chain(&chain[0], Some(&chain[1]))
        .unwrap();
    assert_eq!(trusted.root.authority.to_string(), "6900020/001");
    assert_eq!(trusted.lower, Some(chain[1].subject()));
    assert_matches!(
        CvcTrust::production().verify_card_chain(&chain[0], Some(&chain[1])),
        Err(CvcRefusal::UnknownIssuer { .. })
    );
    let visual_cvc = block_on(async { session.visual().await.unwrap().read_cvc().await.unwrap() });
    assert_eq!(&visual_cvc.issuer_key_id[..7], b"6900023");
    assert_ne!(chain[1].public_key, visual_cvc.public_key);
    assert_ne!(chain[0].public_key, chain[1].public_key);
    // SELECT ISD, then per certificate a refused short GET DATA and an extended one.
    let get_data = sent(&sim, 0x00, 0xCA);
    assert_eq!(get_data.len(), 4);
    assert_eq!(get_data[0], [0x00, 0xCA, 0x00, 0xF8, 0x00]);
    assert_eq!(get_data[1], [0x00, 0xCA, 0x00, 0xF8, 0x00, 0x00, 0x00]);
    assert_eq!(get_data[3], [0x00, 0xCA, 0x7F, 0x21, 0x00, 0x00, 0x00]);

    let (sim, mut session) = card("no-extended");
    assert_matches!(
        block_on(session.card_certificates()),
        Err(Error::Card {
            sw: StatusWord::WrongLength,
            ..
        })
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
        let number = collation_a();
        block_on(async {
            let mut visual = session.visual().await.unwrap();
            // Reading the face after 照合番号B never touches EF 0005.
            let mut v = verify_visual_collation_b(&mut visual).await;
            v.read_face_checked(&sim_cvc_trust())
                .await
                .unwrap()
                .into_trusted()
                .unwrap();
            assert_matches!(
                without_sending(&sim, v.read_my_number_image(&sim_cvc_trust())).await,
                Err(Error::InvalidInput { .. })
            );
            drop(v);
            assert!(!read_my_number_image_sent(&sim), "{profile}");

            let mut v = visual
                .verify_collation_a(&number, AttemptPolicy::default())
                .await
                .unwrap();
            let start = apdus_seen(&sim);
            let image = v
                .read_my_number_image(&sim_cvc_trust())
                .await
                .unwrap()
                .into_trusted()
                .unwrap();
            let apdus = apdus_seen(&sim) - start;
            // EF 0005 (about 730 bytes) and the CVC (555): one read each with extended length;
            // on a 256-byte link each is a read by SFI, a SELECT and two reads by offset.
            let expected = if profile == "adult" { 2 } else { 8 };
            assert_eq!(apdus, expected, "{profile}");
            assert!(!format!("{image:?}").contains("PNG"));
            assert_png_shows_number(&image.png, number.expose());
        });
        assert!(read_my_number_image_sent(&sim));
        assert_eq!(remaining(&sim, SecretId::VisualCollationA), 10);
    }
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
            assert_matches!(
                common
                    .verify_pin(&pin("0000"), AttemptPolicy::default())
                    .await,
                Err(Error::WrongPin {
                    key: PinKind::CommonPin,
                    retries_left: 2
                })
            );
            session.reset_stats();
            let mut common = session.common().await.unwrap();
            let mut v = verify_common_pin(&mut common, PIN).await;
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
            verify_common_pin(&mut common, "2468").await;
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
        assert_matches!(
            common
                .verify_pin(&pin("0000"), AttemptPolicy::default())
                .await,
            Err(Error::LastAttemptRefused { .. })
        );
        assert_matches!(
            common
                .verify_pin(&pin("0000"), AttemptPolicy::AllowLastAttempt)
                .await,
            Err(Error::Blocked {
                key: PinKind::CommonPin
            })
        );
        let with_data = verifies_with_a_pin(&sim);
        let err = common
            .verify_pin(&pin(PIN), AttemptPolicy::AllowLastAttempt)
            .await
            .unwrap_err();
        assert!(err.is_blocked());
        assert_eq!(
            verifies_with_a_pin(&sim),
            with_data,
            "no VERIFY with data once blocked"
        );
    });

    // A card without PINs has no 001C.
    let (_sim, mut session) = card("face-auth");
    block_on(async {
        let mut common = session.common().await.unwrap();
        assert_eq!(common.pin_status().await.unwrap(), PinStatus::NotSet);
        assert_matches!(
            common.verify_pin(&pin(PIN), AttemptPolicy::default()).await,
            Err(Error::PinNotSet { .. })
        );
    });

    // A reset between VERIFY and the change ends the handle: nothing is sent.
    let (sim, mut session) = card("adult");
    block_on(async {
        let mut common = session.common().await.unwrap();
        let mut v = verify_common_pin(&mut common, PIN).await;
        sim.with_card(|c| c.reset());
        assert_matches!(v.change_pin(&pin("2468")).await, Err(Error::CardReset));
    });
    assert!(sent(&sim, 0x80, 0x32).is_empty());
}
