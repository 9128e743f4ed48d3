//! The session against a mocked channel: transport failures at every step give typed errors and
//! never spend a PIN attempt, except in a VERIFY that reached the card; the traps other tools fell
//! into (`61 00`, last-chunk Le, resending a signature) are avoided.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use mynacard_apdu::StatusWord;
use mynacard_card::jpki::PublicCertificate;
use mynacard_card::text::TextKey;
use mynacard_card::{AttemptPolicy, Error, HashAlgorithm, Pin, PinKind, Session};
use mynacard_transport::{Capabilities, Interface, MockCardChannel, TransportError};
use pollster::block_on;

const CERT: &[u8] = include_bytes!("data/authca03.cer");

#[derive(Default)]
struct Log {
    commands: Vec<Vec<u8>>,
}

impl Log {
    fn verifies_with_data(&self) -> usize {
        self.commands
            .iter()
            .filter(|c| c[1] == 0x20 && c.len() > 5)
            .count()
    }
    fn count(&self, cla: u8, ins: u8) -> usize {
        self.commands
            .iter()
            .filter(|c| c[0] == cla && c[1] == ins)
            .count()
    }
}

type Answer = Box<dyn FnMut(&[u8]) -> Vec<u8> + Send>;

/// A plausible card: SELECT ok, READ BINARY serves `CERT`, empty VERIFY answers `63C3`, VERIFY
/// and CHANGE REFERENCE DATA succeed, COMPUTE DIGITAL SIGNATURE answers 256 bytes.
fn card_answer() -> Answer {
    Box::new(|cmd: &[u8]| {
        let ok = |mut d: Vec<u8>| {
            d.extend_from_slice(&[0x90, 0x00]);
            d
        };
        match (cmd[0], cmd[1], cmd[2]) {
            (0x00, 0xA4, _) => ok(vec![]),
            (0x00, 0xB0, p1) => {
                let offset = if p1 & 0x80 != 0 {
                    usize::from(cmd[3])
                } else {
                    usize::from(u16::from_be_bytes([cmd[2], cmd[3]]))
                };
                let le = match &cmd[4..] {
                    [0] => 256,
                    [n] => usize::from(*n),
                    [0, 0, 0] => 65536,
                    [0, hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                    _ => 0,
                };
                let end = CERT.len().min(offset + le);
                ok(CERT[offset.min(end)..end].to_vec())
            }
            (0x00, 0x20, _) if cmd.len() == 4 => vec![0x63, 0xC3],
            (0x00, 0x20, _) | (0x00, 0x24, _) => ok(vec![]),
            (0x80, 0x2A, _) => ok(vec![0x5A; 256]),
            _ => vec![0x6D, 0x00],
        }
    })
}

/// A mocked channel answering with `answer`, failing with `failure` at the `fail_at`-th command
/// (1-based), logging every command.
fn channel(
    caps: Capabilities,
    mut answer: Answer,
    fail_at: Option<(usize, fn() -> TransportError)>,
) -> (MockCardChannel, Arc<Mutex<Log>>) {
    let log = Arc::new(Mutex::new(Log::default()));
    let mut mock = MockCardChannel::new();
    mock.expect_capabilities().return_const(caps);
    mock.expect_was_reset().return_const(false);
    let seen = Arc::clone(&log);
    mock.expect_transmit().returning(move |cmd| {
        let mut log = seen.lock().unwrap();
        log.commands.push(cmd.to_vec());
        match fail_at {
            Some((n, failure)) if log.commands.len() == n => Err(failure()),
            _ => Ok(answer(cmd)),
        }
    });
    (mock, log)
}

fn extended() -> Capabilities {
    Capabilities::extended(Interface::Contact, vec![])
}

fn short() -> Capabilities {
    Capabilities::short(Interface::Contactless, vec![])
}

/// The card side of a PIN registration: SELECT, READ BINARY, empty VERIFY, VERIFY, SIGN.
async fn registration(session: &mut Session<MockCardChannel>) -> Result<Vec<u8>, Error> {
    let mut ap = session.jpki().await?;
    ap.read_certificate(PublicCertificate::Auth).await?;
    let mut v = ap
        .verify_auth(&Pin::new("1234").unwrap(), AttemptPolicy::default())
        .await?;
    v.sign(HashAlgorithm::Sha256, b"nonce").await
}

#[test]
fn a_transport_failure_at_each_step_is_typed_and_spends_no_attempt_before_verify() {
    for (step, name) in ["SELECT", "READ BINARY", "retry counter", "VERIFY", "SIGN"]
        .iter()
        .enumerate()
    {
        let step = step + 1;
        let (mock, log) = channel(
            extended(),
            card_answer(),
            Some((step, || TransportError::CardRemoved)),
        );
        let mut session = Session::new(mock);
        let err = block_on(registration(&mut session)).unwrap_err();
        let log = log.lock().unwrap();
        assert_eq!(
            log.commands.len(),
            step,
            "{name}: nothing is sent after the failure"
        );
        match step {
            4 => {
                assert!(
                    matches!(
                        &err,
                        Error::AttemptMayHaveBeenCounted {
                            key: PinKind::JpkiAuth,
                            source: TransportError::CardRemoved
                        }
                    ),
                    "{name}: {err:?}"
                );
                assert_eq!(log.verifies_with_data(), 1);
            }
            _ => {
                assert!(
                    matches!(&err, Error::Transport(TransportError::CardRemoved)),
                    "{name}: {err:?}"
                );
                assert!(err.is_retryable());
                let expected = usize::from(step > 4);
                assert_eq!(log.verifies_with_data(), expected, "{name}");
            }
        }
        assert!(
            log.count(0x80, 0x2A) <= 1,
            "{name}: never a second signature"
        );
    }
}

#[test]
fn a_reset_reported_at_each_step_is_a_card_reset_unless_during_verify() {
    for step in 1..=5 {
        let (mock, log) = channel(
            extended(),
            card_answer(),
            Some((step, || TransportError::CardReset)),
        );
        let mut session = Session::new(mock);
        let err = block_on(registration(&mut session)).unwrap_err();
        if step == 4 {
            assert!(
                matches!(err, Error::AttemptMayHaveBeenCounted { .. }),
                "{err:?}"
            );
        } else {
            assert!(matches!(err, Error::CardReset), "step {step}: {err:?}");
        }
        assert_eq!(log.lock().unwrap().commands.len(), step);
    }
}

#[test]
fn a_reset_flag_after_verify_stops_the_signature() {
    let log = Arc::new(Mutex::new(Log::default()));
    let mut mock = MockCardChannel::new();
    mock.expect_capabilities().return_const(extended());
    let seen = Arc::clone(&log);
    let mut answer = card_answer();
    mock.expect_transmit().returning(move |cmd| {
        seen.lock().unwrap().commands.push(cmd.to_vec());
        Ok(answer(cmd))
    });
    // The card is reset (by another program) right after the VERIFY.
    let seen = Arc::clone(&log);
    let reported = Arc::new(Mutex::new(false));
    mock.expect_was_reset().returning(move || {
        let mut done = reported.lock().unwrap();
        if !*done && seen.lock().unwrap().verifies_with_data() == 1 {
            *done = true;
            return true;
        }
        false
    });
    let mut session = Session::new(mock);
    let err = block_on(registration(&mut session)).unwrap_err();
    assert!(matches!(err, Error::CardReset), "{err:?}");
    let log = log.lock().unwrap();
    assert_eq!(log.verifies_with_data(), 1);
    assert_eq!(
        log.count(0x80, 0x2A),
        0,
        "nothing is signed on a card that lost its PIN state"
    );
}

#[test]
fn pin_change_failure_in_change_reference_data_may_have_counted() {
    let (mock, log) = channel(
        extended(),
        card_answer(),
        Some((4, || {
            TransportError::Timeout(std::time::Duration::from_secs(5))
        })),
    );
    let mut session = Session::new(mock);
    let err = block_on(async {
        let mut text = session.text().await?;
        let mut v = text
            .verify_pin(&Pin::new("1234").unwrap(), AttemptPolicy::default())
            .await?;
        v.change_pin(&Pin::new("5678").unwrap()).await
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::AttemptMayHaveBeenCounted {
                key: PinKind::TextPin,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.lock().unwrap().count(0x00, 0x24), 1);
}

#[test]
fn one_try_left_is_refused_without_sending_the_pin() {
    let mut inner = card_answer();
    let answer: Answer = Box::new(move |cmd: &[u8]| {
        if cmd[1] == 0x20 && cmd.len() == 4 {
            vec![0x63, 0xC1]
        } else {
            inner(cmd)
        }
    });
    let (mock, log) = channel(extended(), answer, None);
    let mut session = Session::new(mock);
    let err = block_on(async {
        let mut text = session.text().await?;
        text.verify_pin(&Pin::new("1234").unwrap(), AttemptPolicy::KeepLastAttempt)
            .await
            .map(|_| ())
    })
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::LastAttemptRefused {
                key: PinKind::TextPin,
                retries_left: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.lock().unwrap().verifies_with_data(), 0);
}

#[test]
fn wrong_and_blocked_status_words() {
    for (sw, check) in [
        (
            [0x63, 0xC2],
            (|e: &Error| {
                matches!(
                    e,
                    Error::WrongPin {
                        retries_left: 2,
                        ..
                    }
                )
            }) as fn(&Error) -> bool,
        ),
        ([0x63, 0xC0], |e: &Error| e.is_blocked()),
        ([0x69, 0x84], |e: &Error| e.is_blocked()),
    ] {
        let mut inner = card_answer();
        let answer: Answer = Box::new(move |cmd: &[u8]| {
            if cmd[1] == 0x20 && cmd.len() > 5 {
                sw.to_vec()
            } else {
                inner(cmd)
            }
        });
        let (mock, log) = channel(extended(), answer, None);
        let mut session = Session::new(mock);
        let err = block_on(async {
            let mut ap = session.jpki().await?;
            ap.verify_auth(&Pin::new("1234").unwrap(), AttemptPolicy::default())
                .await
                .map(|_| ())
        })
        .unwrap_err();
        assert!(check(&err), "{sw:02X?}: {err:?}");
        assert_eq!(
            log.lock().unwrap().verifies_with_data(),
            1,
            "never repeated"
        );
    }
}

#[test]
fn blocked_before_verify_sends_no_pin() {
    let mut inner = card_answer();
    let answer: Answer = Box::new(move |cmd: &[u8]| {
        if cmd[1] == 0x20 && cmd.len() == 4 {
            vec![0x63, 0xC0]
        } else {
            inner(cmd)
        }
    });
    let (mock, log) = channel(extended(), answer, None);
    let mut session = Session::new(mock);
    let err = block_on(async {
        let mut ap = session.jpki().await?;
        ap.verify_auth(&Pin::new("1234").unwrap(), AttemptPolicy::AllowLastAttempt)
            .await
            .map(|_| ())
    })
    .unwrap_err();
    assert!(err.is_blocked());
    assert_eq!(log.lock().unwrap().verifies_with_data(), 0);
}

fn signing_session(
    sign_answer: fn(&[u8]) -> Vec<u8>,
) -> (Session<MockCardChannel>, Arc<Mutex<Log>>) {
    let mut inner = card_answer();
    let answer: Answer = Box::new(move |cmd: &[u8]| {
        if cmd[1] == 0x2A || cmd[1] == 0xC0 {
            sign_answer(cmd)
        } else {
            inner(cmd)
        }
    });
    let (mock, log) = channel(extended(), answer, None);
    (Session::new(mock), log)
}

#[test]
fn a_short_signature_is_never_returned() {
    let (mut session, log) = signing_session(|_| {
        let mut d = vec![0x5A; 255];
        d.extend_from_slice(&[0x90, 0x00]);
        d
    });
    let err = block_on(registration(&mut session)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SignatureLength {
                expected: 256,
                actual: 255
            }
        ),
        "{err:?}"
    );
    assert_eq!(log.lock().unwrap().count(0x80, 0x2A), 1);
}

#[test]
fn a_signature_that_does_not_verify_is_never_returned() {
    let (mut session, _log) = signing_session(|_| {
        let mut d = vec![0x5A; 256];
        d.extend_from_slice(&[0x90, 0x00]);
        d
    });
    let err = block_on(registration(&mut session)).unwrap_err();
    assert!(matches!(err, Error::SignatureInvalid { .. }), "{err:?}");
}

#[test]
fn sixty_one_zero_means_256_more_bytes() {
    // A reader that caps responses: 0 bytes and 61 00, then GET RESPONSE with Le 00.
    let (mut session, log) = signing_session(|cmd| {
        if cmd[1] == 0x2A {
            vec![0x61, 0x00]
        } else {
            let mut d = vec![0x5A; 256];
            d.extend_from_slice(&[0x90, 0x00]);
            d
        }
    });
    let err = block_on(registration(&mut session)).unwrap_err();
    // The assembled 256 bytes reached the verification (and failed it as garbage).
    assert!(matches!(err, Error::SignatureInvalid { .. }), "{err:?}");
    let log = log.lock().unwrap();
    assert!(log.commands.contains(&vec![0x00, 0xC0, 0x00, 0x00, 0x00]));
    assert_eq!(log.count(0x80, 0x2A), 1);
}

#[test]
fn a_wrong_le_answer_to_signing_is_not_resent() {
    let (mut session, log) = signing_session(|_| vec![0x6C, 0x10]);
    let err = block_on(registration(&mut session)).unwrap_err();
    assert_eq!(err.status_word(), Some(StatusWord::WrongLe(0x10)));
    assert_eq!(
        log.lock().unwrap().count(0x80, 0x2A),
        1,
        "one COMPUTE DIGITAL SIGNATURE, always"
    );
}

#[test]
fn short_reads_ask_exactly_for_the_remainder() {
    let (mock, log) = channel(short(), card_answer(), None);
    let mut session = Session::new(mock);
    let cert = block_on(async {
        let mut ap = session.jpki().await?;
        ap.read_certificate(PublicCertificate::Auth).await
    })
    .unwrap();
    assert_eq!(cert.der(), CERT);
    let log = log.lock().unwrap();
    let reads: Vec<&Vec<u8>> = log.commands.iter().filter(|c| c[1] == 0xB0).collect();
    assert_eq!(reads.len(), CERT.len().div_ceil(256));
    assert_eq!(reads[0][..4], [0x00, 0xB0, 0x8A, 0x00], "first read by SFI");
    let last = reads.last().unwrap();
    assert_eq!(
        usize::from(last[4]),
        CERT.len() % 256,
        "Le of the last chunk is the remainder"
    );
    assert!(log.commands.iter().all(|c| c.len() <= 261));
    // SELECT AP, READ by SFI, SELECT EF, the rest by offset.
    assert_eq!(log.commands.len(), 2 + CERT.len().div_ceil(256));
}

#[test]
fn pin_status_falls_back_to_select_when_sfi_addressing_is_refused() {
    let mut inner = card_answer();
    let answer: Answer = Box::new(move |cmd: &[u8]| match cmd {
        [0x00, 0x20, 0x00, p2] if *p2 != 0x80 => vec![0x6A, 0x86],
        [0x00, 0x20, 0x00, 0x80] => vec![0x63, 0xC3],
        _ => inner(cmd),
    });
    let (mock, log) = channel(extended(), answer, None);
    let mut session = Session::new(mock);
    block_on(async {
        let mut text = session.text().await.unwrap();
        assert_eq!(
            text.pin_status(TextKey::Pin).await.unwrap().retries(),
            Some(3)
        );
        text.verify_pin(&Pin::new("1234").unwrap(), AttemptPolicy::default())
            .await
            .unwrap();
    });
    let log = log.lock().unwrap();
    assert!(
        log.commands
            .contains(&vec![0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x11])
    );
    let verify = log
        .commands
        .iter()
        .find(|c| c[1] == 0x20 && c.len() > 5)
        .unwrap();
    assert_eq!(verify[3], 0x80, "VERIFY uses the addressing that worked");
}
