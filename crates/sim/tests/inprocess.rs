//! The in-process harness: the transport traits, capabilities, removal and reset, every fault,
//! the APDU log and the state file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use mynacard_sim::engine::Card;
use mynacard_sim::fault::{Corruption, Faults};
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::state::{SecretId, StateError, StateFile};
use mynacard_transport::blocking::{BlockingChannel, block_on};
use mynacard_transport::{Interface, Transport, TransportError};
use support::*;

fn remaining(sim: &SimCard, id: SecretId) -> u8 {
    sim.with_card(|c| c.secret_status(id).unwrap().remaining)
}

fn sign_auth() -> Vec<u8> {
    let di = digest_info(b"x");
    let mut apdu = vec![0x80, 0x2A, 0x00, 0x97, di.len() as u8];
    apdu.extend_from_slice(&di);
    apdu.push(0x00);
    apdu
}

#[test]
fn transport_opens_a_channel_that_reports_the_link() {
    let sim = SimCard::from_image(image());
    let transport = sim.transport();
    assert!(transport.name().contains("test-standard"));
    let mut channel = BlockingChannel::new(block_on(transport.open()).unwrap());
    let caps = channel.capabilities();
    assert!(caps.extended_length);
    assert_eq!(caps.interface, Interface::Contact);
    assert_eq!(caps.atr, ATR.to_vec());
    assert_eq!(caps.max_response_len, 65_538);
    assert_eq!(channel.transmit(&h(SELECT_JPKI)).unwrap(), h("9000"));
    assert!(!channel.was_reset());

    let short = SimCard::from_image(short_image(253));
    let caps = short.channel().capabilities_for_test();
    assert!(!caps.extended_length);
    assert_eq!(caps.interface, Interface::Contactless);
    assert_eq!(caps.max_response_len, 255);
    assert_eq!(caps.max_command_len, 261);
}

/// The trait method, reached through a local extension to keep the test readable.
trait CapsForTest {
    fn capabilities_for_test(&self) -> mynacard_transport::Capabilities;
}
impl CapsForTest for mynacard_sim::inprocess::SimChannel {
    fn capabilities_for_test(&self) -> mynacard_transport::Capabilities {
        mynacard_transport::CardChannel::capabilities(self)
    }
}

#[test]
fn a_removed_card_is_absent_until_inserted_and_keeps_its_counters() {
    let sim = SimCard::from_image(image());
    let mut channel = BlockingChannel::new(sim.channel());
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    assert_eq!(channel.transmit(&verify(0x98, "0000")).unwrap(), h("63C2"));
    sim.remove();
    assert!(matches!(
        channel.transmit(&h("00200098")),
        Err(TransportError::CardRemoved)
    ));
    assert!(matches!(
        block_on(sim.transport().open()),
        Err(TransportError::NoCard)
    ));
    sim.insert();
    // Power was lost: the channel says so once, the AP must be selected again, the counter stayed.
    assert!(channel.was_reset());
    assert!(!channel.was_reset());
    assert_eq!(channel.transmit(&h("00200098")).unwrap(), h("6A88"));
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    assert_eq!(channel.transmit(&h("00200098")).unwrap(), h("63C2"));
}

#[test]
fn card_pulled_after_n_apdus() {
    let sim = SimCard::from_image(image());
    sim.set_faults(Faults {
        pull_after_apdus: Some(2),
        ..Faults::none()
    });
    let mut channel = BlockingChannel::new(sim.channel());
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    assert_eq!(channel.transmit(&verify(0x98, "0000")).unwrap(), h("63C2"));
    for _ in 0..3 {
        assert!(matches!(
            channel.transmit(&h("00200098")),
            Err(TransportError::CardRemoved)
        ));
    }
    assert!(!sim.is_present());
    assert_eq!(remaining(&sim, SecretId::JpkiAuthPin), 2);
    assert_eq!(sim.log().counters().apdus, 2);
}

#[test]
fn reset_before_an_apdu_loses_the_security_state() {
    let sim = SimCard::from_image(image());
    sim.set_faults(Faults {
        reset_before_apdu: Some(3),
        ..Faults::none()
    });
    let mut channel = BlockingChannel::new(sim.channel());
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    assert_eq!(
        channel.transmit(&verify(0x98, AUTH_PIN)).unwrap(),
        h("9000")
    );
    assert!(matches!(
        channel.transmit(&sign_auth()),
        Err(TransportError::CardReset)
    ));
    assert!(channel.was_reset());
    assert!(!channel.was_reset());
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    assert_eq!(channel.transmit(&sign_auth()).unwrap(), h("6982"));
    assert_eq!(sim.with_card(|c| c.rsa_operations()), 0);
}

#[test]
fn a_corrupted_response_byte() {
    let sim = SimCard::from_image(image());
    sim.set_faults(Faults {
        corrupt: Some(Corruption {
            apdu: 3,
            byte: 1,
            xor: 0xFF,
        }),
        ..Faults::none()
    });
    let mut channel = BlockingChannel::new(sim.channel());
    assert_eq!(channel.transmit(&h(SELECT_JPKI)).unwrap(), h("9000"));
    assert_eq!(channel.transmit(&select_ef(0x000A)).unwrap(), h("9000"));
    let clean = &image().auth.cert_der[..4];
    let damaged = channel.transmit(&h("00B0000004")).unwrap();
    assert_eq!(damaged[0], clean[0]);
    assert_eq!(damaged[1], !clean[1]);
    assert_eq!(&damaged[2..], &[clean[2], clean[3], 0x90, 0x00]);
    // Only the chosen APDU is damaged.
    assert_eq!(&channel.transmit(&h("00B0000004")).unwrap()[..4], clean);
}

#[test]
fn tag_lost_during_verify_counts_the_attempt() {
    let sim = SimCard::from_image(image());
    sim.set_faults(Faults {
        tag_loss_on_verify: Some(1),
        ..Faults::none()
    });
    let mut channel = BlockingChannel::new(sim.channel());
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    // The status query is not a VERIFY with data.
    assert_eq!(channel.transmit(&h("00200098")).unwrap(), h("63C3"));
    assert!(matches!(
        channel.transmit(&verify(0x98, "0000")),
        Err(TransportError::CardRemoved)
    ));
    assert_eq!(remaining(&sim, SecretId::JpkiAuthPin), 2);
    let last = sim.log().entries().pop().unwrap();
    assert_eq!(last.sw, None);
    assert_eq!(last.redacted, 4);
}

#[test]
fn latency_per_apdu_byte_and_rsa_operation() {
    let sim = SimCard::from_image(image());
    sim.set_faults(Faults {
        latency_per_apdu: Duration::from_millis(5),
        latency_per_byte: Duration::from_micros(100),
        latency_per_rsa_operation: Duration::from_millis(60),
        ..Faults::none()
    });
    let mut channel = BlockingChannel::new(sim.channel());
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    channel.transmit(&verify(0x98, AUTH_PIN)).unwrap();
    let started = Instant::now();
    let signature = channel.transmit(&sign_auth()).unwrap();
    // 5 ms + (57 + 258 bytes) × 100 µs + 60 ms.
    assert!(started.elapsed() >= Duration::from_micros(5_000 + 31_500 + 60_000));
    assert_eq!(signature.len(), 258);
    let entry = sim.log().entries().pop().unwrap();
    assert!(entry.elapsed >= Duration::from_micros(96_500));
}

#[test]
fn the_log_counts_and_redacts() {
    let sim = SimCard::from_image(image());
    sim.log().capturing_responses(true);
    let mut channel = BlockingChannel::new(sim.channel());
    channel.transmit(&h(SELECT_JPKI)).unwrap();
    channel.transmit(&verify(0x9B, SIGN_PASSWORD)).unwrap();
    channel.transmit(&h("00B08A00000000")).unwrap();
    let entries = sim.log().entries();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1].command, h("0020009B06"));
    assert_eq!(entries[1].redacted, 6);
    let cert_len = image().auth.cert_der.len();
    assert_eq!(entries[2].response_len, cert_len + 2);
    assert_eq!(entries[2].sw, Some(0x9000));
    let counters = sim.log().counters();
    assert_eq!(counters.apdus, 3);
    assert_eq!(counters.command_bytes, 15 + 11 + 7);
    assert_eq!(counters.response_bytes, 2 + 2 + (cert_len as u64 + 2));
    // No PIN byte anywhere in the log.
    let text = format!("{entries:?}");
    assert!(!text.contains(&format!("{:?}", SIGN_PASSWORD.as_bytes())));
}

#[test]
fn counters_survive_restarts_through_the_state_file() {
    let dir = std::env::temp_dir().join(format!("mynacard-sim-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = StateFile::new(dir.join("card.json"));
    {
        let sim = SimCard::from_image(image());
        sim.set_state_file(file.clone());
        let mut channel = BlockingChannel::new(sim.channel());
        channel.transmit(&h(SELECT_JPKI)).unwrap();
        channel.transmit(&verify(0x98, "0000")).unwrap();
        channel.transmit(&verify(0x9B, SIGN_PASSWORD)).unwrap();
        let mut change = h("0024019B08");
        change.extend_from_slice(b"NEWPASS1");
        assert_eq!(channel.transmit(&change).unwrap(), h("9000"));
    }
    let state = file.load().unwrap().unwrap();
    let text = std::fs::read_to_string(file.path()).unwrap();
    assert!(text.contains("\"jpki-auth-pin\""));
    let mut card = Card::with_state(image(), &state).unwrap();
    assert_eq!(
        card.secret_status(SecretId::JpkiAuthPin).unwrap().remaining,
        2
    );
    assert_eq!(sw(&mut card, SELECT_JPKI), 0x9000);
    assert_eq!(tx(&mut card, &verify(0x9B, "NEWPASS1")).1, 0x9000);

    // A state cannot raise a counter above its limit, nor belong to another card.
    let mut raised = state.clone();
    raised.secrets.get_mut("jpki-auth-pin").unwrap().remaining = 9;
    let card = Card::with_state(image(), &raised).unwrap();
    assert_eq!(
        card.secret_status(SecretId::JpkiAuthPin).unwrap().remaining,
        3
    );
    let mut other = state.clone();
    other.serial = "999".into();
    assert!(matches!(
        Card::with_state(image(), &other),
        Err(StateError::OtherCard { .. })
    ));
    let mut bad = state;
    bad.secrets.get_mut("jpki-auth-pin").unwrap().value = Some("12".into());
    assert!(matches!(
        Card::with_state(image(), &bad),
        Err(StateError::InvalidValue { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_state_file_past_its_bound_is_refused_before_it_is_read_whole() {
    use mynacard_sim::state::MAX_STATE_FILE;
    let dir = std::env::temp_dir().join(format!("mynacard-sim-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("card.json");
    let limit = usize::try_from(MAX_STATE_FILE).unwrap();
    // At the bound the file is read, and is not a state document.
    std::fs::write(&path, vec![b' '; limit]).unwrap();
    assert!(matches!(
        StateFile::new(&path).load(),
        Err(StateError::Json { .. })
    ));
    // One byte more is refused as too large.
    std::fs::write(&path, vec![b' '; limit + 1]).unwrap();
    match StateFile::new(&path).load() {
        Err(StateError::TooLarge { limit, .. }) => assert_eq!(limit, MAX_STATE_FILE),
        other => panic!("{other:?}"),
    }
    // No file: no state yet.
    std::fs::remove_file(&path).unwrap();
    assert!(StateFile::new(&path).load().unwrap().is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
