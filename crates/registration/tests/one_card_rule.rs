//! The card rules on which the session and the registration machine once disagreed now exist
//! once, in `mynacard_card::ops`. Each rule here runs through both: `mynacard-card`'s
//! `Session` and the registration `Machine` (driven against the reference service on SQLite),
//! in front of a simulated card whose habits are changed for one kind of command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod common;

use async_trait::async_trait;
use common::*;
use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_card::{AttemptPolicy, Error, HashAlgorithm, Pin, PinStatus, Session};
use mynacard_registration::Outcome;
use mynacard_registration::driver::{self, RunReport};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::Machine;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_transport::blocking::block_on;
use mynacard_transport::{Capabilities, CardChannel, TransportError};

/// A card with other habits for some commands: `habit` answers those itself; the rest reach
/// the simulated card. Every command is recorded.
struct Habit<F> {
    inner: SimChannel,
    habit: F,
    seen: Vec<Vec<u8>>,
}

impl<F: FnMut(&[u8]) -> Option<Vec<u8>> + Send> Habit<F> {
    fn new(sim: &SimCard, habit: F) -> Self {
        Habit {
            inner: sim.channel(),
            habit,
            seen: Vec::new(),
        }
    }

    /// How many commands with this INS were sent.
    fn count(&self, ins: u8) -> usize {
        self.seen.iter().filter(|c| c.get(1) == Some(&ins)).count()
    }
}

#[async_trait]
impl<F: FnMut(&[u8]) -> Option<Vec<u8>> + Send> CardChannel for Habit<F> {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.seen.push(command.to_vec());
        match (self.habit)(command) {
            Some(answer) => Ok(answer),
            None => self.inner.transmit(command).await,
        }
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn was_reset(&mut self) -> bool {
        self.inner.was_reset()
    }
}

/// READ BINARY by short EF identifier (`P1 = 80|SFI`).
fn sfi_read(c: &[u8]) -> bool {
    matches!(c, [_, 0xB0, p1, ..] if p1 & 0x80 != 0)
}

/// VERIFY without data by short EF identifier (a retry-counter query).
fn sfi_tries(c: &[u8]) -> bool {
    matches!(c, [0x00, 0x20, 0x00, p2] if (0x81..=0x9E).contains(p2))
}

/// COMPUTE DIGITAL SIGNATURE, any form.
fn signature(c: &[u8]) -> bool {
    matches!(c, [0x80, 0x2A, ..])
}

/// A PIN registration (PIN 1234) in the app through `channel`.
async fn register<C: CardChannel>(channel: &mut C) -> RunReport {
    let service = SqliteService::start().await;
    let running = &service.running;
    let client = HttpClient::new(&running.base_url()).expect("client");
    let report = driver::run(
        pin_registration_in_app(),
        channel,
        &client,
        &mut SimTerminal::with_pin("1234"),
    )
    .await
    .expect("driver");
    service.stop().await;
    report
}

fn auth_certificate(sim: &SimCard) -> Vec<u8> {
    let mut session = Session::new(sim.channel());
    block_on(async {
        let mut ap = session.jpki().await.expect("JPKI AP");
        ap.read_certificate(PublicCertificate::Auth)
            .await
            .expect("certificate")
            .der()
            .to_vec()
    })
}

/// Rule: a READ BINARY by identifier refused with `6A86` is read by SELECT EF and offsets
/// instead (once only the machine did this; the session failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_refused_for_its_identifier_is_read_by_select_in_both() {
    let (sim, _) = card("adult");
    let expected = auth_certificate(&sim);
    let refuse = |c: &[u8]| sfi_read(c).then(|| vec![0x6A, 0x86]);

    let mut channel = Habit::new(&sim, refuse);
    let der = block_on(async {
        let mut session = Session::new(&mut channel);
        let mut ap = session.jpki().await.expect("JPKI AP");
        let cert = ap.read_certificate(PublicCertificate::Auth).await;
        cert.expect("read by SELECT EF").der().to_vec()
    });
    assert_eq!(der, expected);
    // One identifier read refused, then SELECT AP and EF: never a second identifier read.
    assert_eq!(channel.seen.iter().filter(|c| sfi_read(c)).count(), 1);

    let (sim, _) = card("adult");
    let mut channel = Habit::new(&sim, refuse);
    let report = register(&mut channel).await;
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "{report:?}"
    );
    assert_eq!(channel.seen.iter().filter(|c| sfi_read(c)).count(), 1);
}

/// Rule: a retry-counter query by identifier answered `6B00` (wrong P1-P2) falls back to SELECT
/// EF of the key (once only the session did this; the machine ended the flow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tries_refused_with_6b00_are_read_by_select_in_both() {
    let refuse = |c: &[u8]| sfi_tries(c).then(|| vec![0x6B, 0x00]);
    let (sim, _) = card("adult");
    let mut channel = Habit::new(&sim, refuse);
    let status = block_on(async {
        let mut session = Session::new(&mut channel);
        let mut ap = session.jpki().await.expect("JPKI AP");
        ap.pin_status(JpkiKey::Auth).await.expect("tries")
    });
    assert_eq!(status, PinStatus::Remaining(3));

    let (sim, _) = card("adult");
    let mut channel = Habit::new(&sim, refuse);
    let report = register(&mut channel).await;
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "{report:?}"
    );
    // The one VERIFY with the PIN went by current EF, after the SELECT of the tries query.
    let verifies: Vec<_> = channel
        .seen
        .iter()
        .filter(|c| c.get(1) == Some(&0x20) && c.len() > 4)
        .collect();
    assert_eq!(verifies.len(), 1);
    assert_eq!(verifies[0][3], 0x80);
}

/// Rule: a key whose EF the card does not have (`6A82` to the query by identifier) is not set:
/// one APDU, no SELECT EF (once the session selected the key first, and the machine did not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_not_set_after_one_query_in_both() {
    let missing = |c: &[u8]| sfi_tries(c).then(|| vec![0x6A, 0x82]);
    let (sim, _) = card("adult");
    let mut channel = Habit::new(&sim, missing);
    let status = block_on(async {
        let mut session = Session::new(&mut channel);
        let mut ap = session.jpki().await.expect("JPKI AP");
        ap.pin_status(JpkiKey::Auth).await.expect("tries")
    });
    assert_eq!(status, PinStatus::NotSet);
    assert_eq!(channel.count(0xA4), 1, "only the SELECT of the AP");

    let (sim, _) = card("adult");
    let mut channel = Habit::new(&sim, missing);
    let report = register(&mut channel).await;
    assert_eq!(report.outcome, Outcome::NoAuthPin);
    assert_eq!(channel.count(0x20), 1, "no VERIFY after the query");
}

/// Rule: a signature is never resent, not even when the card answers `6Cxx` (once the machine
/// would have resent it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_answered_6cxx_is_not_resent_in_both() {
    let wrong_le = |c: &[u8]| signature(c).then(|| vec![0x6C, 0x80]);
    let (sim, _) = card("adult");
    let mut channel = Habit::new(&sim, wrong_le);
    let err = block_on(async {
        let mut session = Session::new(&mut channel);
        let mut ap = session.jpki().await.expect("JPKI AP");
        let pin = Pin::new("1234").expect("PIN");
        let mut verified = ap
            .verify_auth(&pin, AttemptPolicy::KeepLastAttempt)
            .await
            .expect("verified");
        verified
            .sign(HashAlgorithm::Sha256, b"message")
            .await
            .expect_err("no signature")
    });
    assert!(matches!(err, Error::Card { .. }), "{err:?}");
    assert_eq!(channel.count(0x2A), 1);

    let (sim, _) = card("adult");
    let mut channel = Habit::new(&sim, wrong_le);
    let report = register(&mut channel).await;
    assert_eq!(
        report.outcome,
        Outcome::CardError {
            what: "sign intent",
            sw: Some(0x6C80)
        }
    );
    assert_eq!(channel.count(0x2A), 1);
}

/// Rule: a PIN is four ASCII digits, checked once by `mynacard_card::Pin` before anything is
/// sent (once the machine had its own check and its own error). The driver asks the terminal
/// again for a value that is not a PIN, and the card sees one VERIFY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_is_checked_by_one_type_in_both() {
    for bad in ["12a4", "123", "12345", "１２３４"] {
        assert!(Pin::new(bad).is_err(), "{bad}");
    }
    assert!(Pin::new("0000").is_ok());

    /// Types a wrong-form PIN first, then the right one.
    struct Clumsy(SimTerminal, Vec<&'static str>);
    #[async_trait]
    impl mynacard_registration::driver::Terminal for Clumsy {
        async fn consent(&mut self, p: &mynacard_registration::machine::ConsentPrompt) -> bool {
            self.0.consent(p).await
        }
        async fn pin(&mut self, _retries_left: Option<u8>) -> Option<zeroize::Zeroizing<String>> {
            self.1.pop().map(|p| zeroize::Zeroizing::new(p.to_owned()))
        }
        async fn collation_number_b(
            &mut self,
            r: Option<u8>,
        ) -> Option<zeroize::Zeroizing<String>> {
            self.0.collation_number_b(r).await
        }
        async fn match_face(
            &mut self,
            photo: &[u8],
        ) -> Option<mynacard_registration::messages::FaceMatch> {
            self.0.match_face(photo).await
        }
        async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
            self.0.attest(message).await
        }
    }
    let (sim, _) = card("adult");
    let service = SqliteService::start().await;
    let running = &service.running;
    let client = HttpClient::new(&running.base_url()).expect("client");
    let mut channel = Habit::new(&sim, |_: &[u8]| None);
    let mut terminal = Clumsy(SimTerminal::default(), vec!["1234", "12a4"]);
    let report = driver::run(
        Machine::register_with_pin(flow(APP, mynacard_registration::TerminalKind::App)),
        &mut channel,
        &client,
        &mut terminal,
    )
    .await
    .expect("driver");
    service.stop().await;
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "{report:?}"
    );
    let with_data = channel
        .seen
        .iter()
        .filter(|c| c.get(1) == Some(&0x20) && c.len() > 4)
        .count();
    assert_eq!(with_data, 1);
}
