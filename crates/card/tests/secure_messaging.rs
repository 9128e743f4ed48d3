//! The text AP over secure messaging against the in-process simulated card: the same attributes
//! as in clear, no plaintext on the wire, the APDU cost, and the typed errors (short link, wrong
//! key, a card that ended the session, a reset).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fmt::Debug;

use mynacard_apdu::StatusWord;
use mynacard_card::sm::SmError;
use mynacard_card::text::SecureText;
use mynacard_card::{Error, ExtendedLength, SessionOptions};
use mynacard_sim::fault::{Corruption, Faults};
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_sim::state::SecretId;
use pollster::block_on;
use support::{
    NAME, SimSession, assert_matches, card, card_with_options, sim_cvc_trust,
    verify_text_collation_a, verify_text_collation_b, with_text_pin_verified, without_sending,
};

/// Runs `body` in a secure-messaging session opened on the text AP after the issued PIN.
fn with_secure_session<R>(
    session: &mut SimSession,
    body: impl AsyncFnOnce(&mut SecureText<'_, SimChannel>) -> R,
) -> R {
    with_text_pin_verified(session, async move |verified| {
        let mut secure = verified.secure_session().await.unwrap();
        body(&mut secure).await
    })
}

/// The secure-messaging error in `result`; fails the test on success or on any other error.
fn sm_error<T: Debug>(result: Result<T, Error>) -> SmError {
    match result {
        Err(Error::SecureMessaging(err)) => err,
        other => panic!("expected a secure-messaging error, got {other:?}"),
    }
}

/// A card of `profile` whose log keeps the responses too.
fn card_logging_responses(profile: &str) -> (SimCard, SimSession) {
    let (sim, session) = card(profile);
    sim.log().capturing_responses(true);
    (sim, session)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether any command or response in the log contains `needle`.
fn on_the_wire(sim: &SimCard, needle: &[u8]) -> bool {
    sim.log().entries().iter().any(|e| {
        contains(&e.command, needle) || e.response.as_deref().is_some_and(|r| contains(r, needle))
    })
}

#[test]
fn attributes_over_sm_equal_those_read_in_clear() {
    for profile in ["adult", "contact", "contactless"] {
        let (sim, mut session) = card(profile);
        with_text_pin_verified(&mut session, async |verified| {
            let clear = verified
                .read_attributes_checked(&sim_cvc_trust())
                .await
                .unwrap()
                .into_trusted()
                .unwrap();
            let clear_integrity = verified.read_integrity().await.unwrap();
            let clear_number = verified
                .read_my_number(&sim_cvc_trust())
                .await
                .unwrap()
                .into_trusted()
                .unwrap();

            let mut secure = verified.secure_session().await.unwrap();
            assert_eq!(secure.next_counter(), 1);
            let over_sm = secure
                .read_attributes_checked(&sim_cvc_trust())
                .await
                .unwrap()
                .into_trusted()
                .unwrap();
            assert_eq!(over_sm, clear, "{profile}");
            assert_eq!(over_sm.name, NAME);
            assert_eq!(secure.read_integrity().await.unwrap(), clear_integrity);
            assert_eq!(
                secure
                    .read_my_number(&sim_cvc_trust())
                    .await
                    .unwrap()
                    .into_trusted()
                    .unwrap()
                    .expose(),
                clear_number.expose()
            );
            // Two reads in read_attributes_checked, one integrity read, then the individual
            // number and its integrity record.
            assert_eq!(secure.next_counter(), 6, "{profile}");
            assert!(!secure.is_broken());
        });
        assert_eq!(
            sim.with_card(|c| c.secure_messaging_counter()),
            Some(6),
            "card and host agree on the counter ({profile})"
        );
    }
}

#[test]
fn no_personal_data_crosses_the_link_in_clear() {
    let (sim, mut session) = card_logging_responses("contactless");
    let person = sim.with_card(|c| c.image().unwrap().person.clone());
    let secrets: [&[u8]; 4] = [
        person.name.as_bytes(),
        person.address.as_bytes(),
        b"19800217",
        person.my_number.as_bytes(),
    ];
    with_secure_session(&mut session, async |secure| {
        let attributes = secure
            .read_attributes_checked(&sim_cvc_trust())
            .await
            .unwrap()
            .into_trusted()
            .unwrap();
        assert_eq!(attributes.name, person.name);
        assert_eq!(attributes.address, person.address);
        secure
            .read_my_number(&sim_cvc_trust())
            .await
            .unwrap()
            .into_trusted()
            .unwrap();
    });
    assert!(sim.log().entries().iter().all(|e| e.response.is_some()));
    for secret in secrets {
        assert!(
            !on_the_wire(&sim, secret),
            "{} bytes of personal data seen in clear",
            secret.len()
        );
    }
    // The same check on a clear read sees them, so it can fail.
    let (sim, mut session) = card_logging_responses("contactless");
    with_text_pin_verified(&mut session, async |verified| {
        verified.read_attributes().await.unwrap();
    });
    assert!(on_the_wire(&sim, person.name.as_bytes()));
    assert!(on_the_wire(&sim, person.address.as_bytes()));
}

/// APDUs and bytes for one way of reading the attributes, from a fresh session.
fn cost(secure: bool, checked: bool) -> (u64, u64, u64) {
    let (sim, mut session) = card("contactless");
    with_text_pin_verified(&mut session, async |verified| match (secure, checked) {
        (false, false) => drop(verified.read_attributes().await.unwrap()),
        (false, true) => drop(
            verified
                .read_attributes_checked(&sim_cvc_trust())
                .await
                .unwrap()
                .into_trusted()
                .unwrap(),
        ),
        (true, false) => {
            let mut s = verified.secure_session().await.unwrap();
            drop(s.read_attributes().await.unwrap());
        }
        (true, true) => {
            let mut s = verified.secure_session().await.unwrap();
            drop(
                s.read_attributes_checked(&sim_cvc_trust())
                    .await
                    .unwrap()
                    .into_trusted()
                    .unwrap(),
            );
        }
    });
    let stats = session.stats();
    let log = sim.log().counters();
    assert_eq!(
        stats.commands, log.apdus,
        "session and card count the same APDUs"
    );
    (stats.commands, stats.bytes_sent, stats.bytes_received)
}

#[test]
fn apdu_cost_of_secure_messaging() {
    let plain = cost(false, false);
    let secure = cost(true, false);
    let plain_checked = cost(false, true);
    let secure_checked = cost(true, true);
    eprintln!(
        "attributes: clear {plain:?}, SM {secure:?}; checked: clear {plain_checked:?}, SM \
         {secure_checked:?} (APDUs, bytes sent, bytes received)"
    );
    // SELECT AP, PIN status, VERIFY, READ by SFI.
    assert_eq!(plain.0, 4);
    // + READ EF 0006, SET SESSION KEY, then SELECT EF + SM READ instead of the READ.
    assert_eq!(secure.0, 7);
    // + READ 0003 and READ 0004.
    assert_eq!(plain_checked.0, 6);
    // + SELECT EF + SM READ for 0003, READ 0004 in clear.
    assert_eq!(secure_checked.0, 10);
    // The key delivery alone sends a 256-byte RSA block.
    assert!(secure.1 > plain.1 + 256);
}

#[test]
fn a_short_link_is_a_typed_error_before_anything_is_sent() {
    let (sim, mut session) = card("no-extended");
    with_text_pin_verified(&mut session, async |verified| {
        let refused = without_sending(&sim, verified.secure_session()).await;
        assert_matches!(sm_error(refused), SmError::ExtendedLengthRequired);
        // The clear path still works on that link.
        assert_eq!(verified.read_attributes().await.unwrap().name, NAME);
    });
    // A session told never to use extended length says the same on an extended link.
    let options = SessionOptions::default().with_extended_length(ExtendedLength::Never);
    let (_sim, mut session) = card_with_options("contactless", options);
    with_text_pin_verified(&mut session, async |verified| {
        let refused = verified.secure_session().await;
        assert_matches!(sm_error(refused), SmError::ExtendedLengthRequired);
    });
}

#[test]
fn only_the_pin_opens_a_session() {
    let (sim, mut session) = card("adult");
    block_on(async {
        let mut text = session.text().await.unwrap();
        let mut verified = verify_text_collation_a(&mut text).await;
        let refused = without_sending(&sim, verified.secure_session()).await;
        assert_matches!(refused, Err(Error::InvalidInput { .. }));
        drop(verified);
        let mut verified = verify_text_collation_b(&mut text).await;
        let err = verified.secure_session().await.unwrap_err();
        assert_eq!(
            err.status_word(),
            Some(StatusWord::SecurityStatusNotSatisfied),
            "{err:?}"
        );
    });
    let pin_status = sim
        .with_card(|c| c.secret_status(SecretId::TextPin))
        .unwrap();
    assert_eq!(
        pin_status.remaining, pin_status.limit,
        "no PIN attempt spent"
    );
}

#[test]
fn a_session_the_card_ended_is_reported_and_not_used_again() {
    let (sim, mut session) = card("contactless");
    with_text_pin_verified(&mut session, async |verified| {
        let mut secure = verified.secure_session().await.unwrap();
        secure.read_attributes().await.unwrap();
        // Another terminal (or an attacker) sends an SM command the card cannot decrypt: the
        // card ends its session.
        let answer = sim.with_card(|c| {
            c.process(&[
                0x08, 0xA4, 0x02, 0x0C, 0x13, 0x86, 0x11, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0,
            ])
        });
        assert_eq!(answer, vec![0x69, 0x88]);
        assert_matches!(
            sm_error(secure.read_attributes().await),
            SmError::SessionEnded {
                sw: StatusWord::SmSessionError
            }
        );
        assert!(secure.is_broken());
        // Nothing is sent once broken.
        let refused = without_sending(&sim, secure.read_integrity()).await;
        assert_matches!(sm_error(refused), SmError::SessionBroken);
        drop(secure);
        // A new session works again on the same verified handle.
        let mut secure = verified.secure_session().await.unwrap();
        assert_eq!(secure.read_attributes().await.unwrap().name, NAME);
    });
}

#[test]
fn a_host_counter_out_of_step_fails_to_decrypt() {
    let (sim, mut session) = card("contactless");
    with_secure_session(&mut session, async |secure| {
        // An SM command that reaches the card behind the handle's back (a plain SELECT would
        // not count): the card is one step ahead of the host.
        let answer = sim.with_card(|c| {
            c.process(&[
                0x08, 0xB0, 0x85, 0x00, 0x00, 0x00, 0x05, 0x96, 0x03, 0x00, 0x00, 0x02, 0x00, 0x00,
            ])
        });
        assert_eq!(&answer[answer.len() - 2..], &[0x90, 0x00]);
        // The host decrypts the next answer with the wrong IV: only the first block is garbage
        // (CBC), and that is where the record tag is.
        assert_matches!(sm_error(secure.read_attributes().await), SmError::Garbled);
        assert!(
            secure.is_broken(),
            "no further command with an unknown counter"
        );
        let refused = secure.read_attributes().await;
        assert_matches!(sm_error(refused), SmError::SessionBroken);
    });
}

#[test]
fn a_damaged_answer_is_a_typed_error_and_ends_the_handle() {
    let (sim, mut session) = card("contactless");
    with_secure_session(&mut session, async |secure| {
        // APDU 1 is the SELECT EF, 2 the SM READ: its first byte is the cryptogram's tag.
        sim.set_faults(Faults {
            corrupt: Some(Corruption {
                apdu: 2,
                byte: 0,
                xor: 0xFF,
            }),
            ..Faults::default()
        });
        assert_matches!(
            sm_error(secure.read_attributes().await),
            SmError::UnexpectedTag { .. } | SmError::Object(_)
        );
        assert!(secure.is_broken());
    });
}

#[test]
fn a_reset_ends_the_secure_handle() {
    let (sim, mut session) = card("contactless");
    with_secure_session(&mut session, async |secure| {
        secure.read_attributes().await.unwrap();
        sim.set_faults(Faults {
            reset_before_apdu: Some(1),
            ..Faults::default()
        });
        assert_matches!(secure.read_attributes().await, Err(Error::CardReset));
        // The handle stays ended.
        assert_matches!(secure.read_attributes().await, Err(Error::CardReset));
    });
    assert_eq!(sim.with_card(|c| c.secure_messaging_counter()), None);
}

#[test]
fn debug_shows_no_key_and_dropping_keeps_the_verified_handle() {
    let (_sim, mut session) = card("contactless");
    with_text_pin_verified(&mut session, async |verified| {
        let mut secure = verified.secure_session().await.unwrap();
        let attributes = secure.read_attributes().await.unwrap();
        let shown = format!("{secure:?} {attributes:?}");
        assert_eq!(
            shown,
            "SecureText { next_counter: 2, broken: false, .. } Attributes(<redacted>)"
        );
        drop(secure);
        assert_eq!(verified.read_attributes().await.unwrap(), attributes);
    });
}
