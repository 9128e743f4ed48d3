//! End-to-end through the real PC/SC stack: pcscd + vsmartcard's vpcd + the simulated card.
//!
//! Needs a running pcscd with the vpcd reader configured (`Virtual PCD 00 00` on TCP 35963 and
//! `Virtual PCD 00 01` on 35964) and both slots free: the tests attach their own simulated cards
//! through `mynacard_sim::vpcd`, in-process, so they can pull them. Built only with the
//! `pcscd-tests` feature; without pcscd every test fails with a message saying so.
//!
//! Results through pcscd are compared byte for byte with the same card profile in-process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_card::{AttemptPolicy, HashAlgorithm, Pin, PinStatus, Session, SignPassword};
use mynacard_pcsc::{
    CardPresence, CardWait, ExtendedLength, PcscChannel, PcscOptions, PcscTransport, Share,
    TransactionEnd, list_readers,
};
use mynacard_sim::engine::Application;
use mynacard_sim::fault::Faults;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::state::SecretId;
use mynacard_sim::vpcd::{self, Ended, VpcdHandle, VpcdOptions};
use mynacard_transport::blocking::block_on;
use mynacard_transport::{CardChannel, Interface, TransportError};

const READER_0: &str = "Virtual PCD 00 00";
const READER_1: &str = "Virtual PCD 00 01";
const WAIT: Duration = Duration::from_secs(10);

/// The tests share vpcd's two slots: one test at a time.
static SLOTS: Mutex<()> = Mutex::new(());

fn slots() -> MutexGuard<'static, ()> {
    let guard = SLOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let readers = list_readers().unwrap_or_else(|e| {
        panic!(
            "pcscd is not reachable ({e}, {:?}); start it first: see crates/pcsc/README.md",
            mynacard_pcsc::pcsc_error_of(&e)
        )
    });
    for name in [READER_0, READER_1] {
        let reader = readers
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("reader {name:?} missing: is vsmartcard-vpcd installed?"));
        // A test that failed dropped its bridge, which stops it: pcscd sees that card leave
        // within its polling time. A card still there after that belongs to someone else.
        if reader.card != CardPresence::Empty {
            let left = block_on(CardWait::removal(name, Some(WAIT)));
            assert!(
                left.is_ok(),
                "{name} already holds a card: stop other virtual cards before these tests"
            );
        }
    }
    guard
}

fn sim(profile: &str) -> SimCard {
    SimCard::from_image(CardImage::from_profile_name(profile).expect("built-in profile"))
}

fn port(reader: &str) -> u16 {
    if reader == READER_0 {
        vpcd::DEFAULT_PORT
    } else {
        vpcd::DEFAULT_PORT + 1
    }
}

/// Attaches `card` to the reader and waits until PC/SC shows it present.
fn attach(card: &SimCard, reader: &str) -> VpcdHandle {
    let addr = ([127, 0, 0, 1], port(reader)).into();
    let handle = vpcd::spawn(addr, card.clone(), VpcdOptions::default()).expect("bridge thread");
    let info = block_on(CardWait::arrival(Some(reader), Some(WAIT))).expect("card appears");
    assert_eq!(info.card, CardPresence::Present);
    handle
}

/// Pulls the card and waits until PC/SC shows the reader empty.
fn detach(handle: VpcdHandle, reader: &str) {
    handle.stop();
    let _ = handle.join();
    block_on(CardWait::removal(reader, Some(WAIT))).expect("card leaves");
}

fn open(reader: &str, options: PcscOptions) -> PcscChannel {
    block_on(
        PcscTransport::new(reader)
            .with_options(options)
            .open_channel(),
    )
    .expect("open")
}

/// Everything the comparison covers, from one card.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    certificates: Vec<Vec<u8>>,
    sign_certificate: Vec<u8>,
    auth_status: PinStatus,
    sign_status: PinStatus,
    auth_signature: Vec<u8>,
    sign_signature: Vec<u8>,
}

async fn observe<C: CardChannel>(channel: C) -> Observed {
    let mut session = Session::new(channel);
    let mut ap = session.jpki().await.expect("JPKI AP");
    let mut certificates = Vec::new();
    for which in [
        PublicCertificate::Auth,
        PublicCertificate::AuthCa,
        PublicCertificate::SignCa,
    ] {
        certificates.push(
            ap.read_certificate(which)
                .await
                .expect("certificate")
                .into_der(),
        );
    }
    let auth_status = ap.pin_status(JpkiKey::Auth).await.expect("auth status");
    let sign_status = ap.pin_status(JpkiKey::Sign).await.expect("sign status");
    let pin = Pin::new("1234").expect("pin");
    let mut verified = ap
        .verify_auth(&pin, AttemptPolicy::KeepLastAttempt)
        .await
        .expect("verify auth");
    let auth_signature = verified
        .sign(HashAlgorithm::Sha256, b"through pcscd")
        .await
        .expect("auth signature");
    drop(verified);
    let mut ap = session.jpki().await.expect("JPKI AP again");
    let password = SignPassword::new("ABC123").expect("password");
    let mut verified = ap
        .verify_sign(&password, AttemptPolicy::KeepLastAttempt)
        .await
        .expect("verify sign");
    let sign_certificate = verified
        .read_sign_certificate()
        .await
        .expect("sign certificate")
        .into_der();
    let sign_signature = verified
        .sign(HashAlgorithm::Sha256, b"through pcscd")
        .await
        .expect("sign signature");
    Observed {
        certificates,
        sign_certificate,
        auth_status,
        sign_status,
        auth_signature,
        sign_signature,
    }
}

fn transport_error(err: &mynacard_card::Error) -> Option<&TransportError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(t) = e.downcast_ref::<TransportError>() {
            return Some(t);
        }
        source = e.source();
    }
    None
}

#[test]
fn pcscd_gives_the_same_bytes_and_signatures_as_the_in_process_card() {
    let _slots = slots();
    let expected = block_on(observe(sim("adult").channel()));

    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let channel = open(READER_0, PcscOptions::default());
    let caps = channel.capabilities();
    assert!(caps.extended_length, "vpcd passes extended APDUs");
    assert_eq!(caps.interface, Interface::Contact);
    assert_eq!(caps.atr, card.with_card(|c| c.atr().to_vec()));
    let through_pcscd = block_on(observe(channel));
    assert_eq!(through_pcscd, expected);
    assert_eq!(through_pcscd.auth_status, PinStatus::Remaining(3));

    // Short APDUs only (a reader that does not pass extended length): still the same bytes.
    let short = open(
        READER_0,
        PcscOptions::default().extended_length(ExtendedLength::ShortOnly),
    );
    assert!(!short.capabilities().extended_length);
    let through_short = block_on(observe(short));
    assert_eq!(through_short.certificates, expected.certificates);
    assert_eq!(through_short.sign_signature, expected.sign_signature);
    detach(bridge, READER_0);
}

/// Commands the card received, GET RESPONSE apart: (others, GET RESPONSEs).
fn commands_seen(card: &SimCard) -> (usize, usize) {
    let entries = card.log().entries();
    let get_responses = entries
        .iter()
        .filter(|e| e.command.get(1) == Some(&0xC0))
        .count();
    (entries.len() - get_responses, get_responses)
}

/// Behind a reader that caps answers at 128 bytes without saying so, every certificate and
/// both signatures come back exactly as from the card itself, with the same commands plus the
/// GET RESPONSEs the reader makes necessary; a reader that drops the rest still gives every
/// certificate whole.
#[test]
fn readers_that_cap_answers_at_128_bytes_give_whole_certificates_and_signatures() {
    let _slots = slots();
    let expected = block_on(observe(sim("adult").channel()));

    let plain = sim("contactless");
    let bridge = attach(&plain, READER_0);
    assert_eq!(
        block_on(observe(open(READER_0, PcscOptions::default()))),
        expected
    );
    detach(bridge, READER_0);
    let (plain_commands, plain_get_responses) = commands_seen(&plain);
    assert_eq!(plain_get_responses, 0);

    let capped = sim("capped-reader");
    let bridge = attach(&capped, READER_0);
    let channel = open(READER_0, PcscOptions::default());
    // Nothing in the reader's capabilities tells of the cap.
    assert!(channel.capabilities().max_response_len > 128 + 2);
    assert_eq!(block_on(observe(channel)), expected);
    detach(bridge, READER_0);
    let (capped_commands, get_responses) = commands_seen(&capped);
    assert_eq!(
        capped_commands, plain_commands,
        "no command more than on a plain reader"
    );
    assert!(get_responses >= 4 * 10, "{get_responses} GET RESPONSEs");

    let dropped = sim("capped-reader-dropped");
    let bridge = attach(&dropped, READER_0);
    let certificates = block_on(async {
        let mut session = Session::new(open(READER_0, PcscOptions::default()));
        let mut ap = session.jpki().await.expect("JPKI AP");
        let mut out = Vec::new();
        for which in [
            PublicCertificate::Auth,
            PublicCertificate::AuthCa,
            PublicCertificate::SignCa,
        ] {
            out.push(
                ap.read_certificate(which)
                    .await
                    .expect("certificate")
                    .into_der(),
            );
        }
        out
    });
    detach(bridge, READER_0);
    assert_eq!(certificates, expected.certificates);
}

#[test]
fn card_pulled_mid_read_is_card_removed_spends_no_pin_attempt_and_a_new_session_works() {
    let _slots = slots();
    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let short_only = PcscOptions::default().extended_length(ExtendedLength::ShortOnly);

    // SELECT AP, then READ BINARY chunks: the card leaves after the second APDU, mid-read.
    card.set_faults(Faults {
        pull_after_apdus: Some(2),
        ..Faults::none()
    });
    let channel = open(READER_0, short_only.clone());
    let err = block_on(async {
        let mut session = Session::new(channel);
        let mut ap = session.jpki().await?;
        ap.read_certificate(PublicCertificate::Auth).await
    })
    .expect_err("the read must fail");
    assert!(
        matches!(transport_error(&err), Some(TransportError::CardRemoved)),
        "expected CardRemoved, got {err:?}"
    );
    assert_eq!(bridge.join().expect("bridge"), Ended::CardPulled);
    block_on(CardWait::removal(READER_0, Some(WAIT))).expect("reader empty");

    // Pulled while the VERIFY is on its way: the card never processes it.
    card.insert();
    card.set_faults(Faults::none());
    let bridge = attach(&card, READER_0);
    let channel = open(READER_0, short_only.clone());
    let before = card.with_card(|c| c.persistent_state());
    let err = block_on(async {
        let mut session = Session::new(channel);
        let mut ap = session.jpki().await?;
        ap.pin_status(JpkiKey::Auth).await?;
        // SELECT AP and the empty VERIFY are done; the next APDU (SELECT PIN EF or VERIFY) is lost.
        session_pull(&card);
        let pin = Pin::new("9999").expect("pin");
        ap.verify_auth(&pin, AttemptPolicy::KeepLastAttempt)
            .await
            .map(|_| ())
    })
    .expect_err("the verify must fail");
    assert!(
        transport_error(&err).is_some(),
        "a transport failure, got {err:?}"
    );
    let _ = bridge.join();
    block_on(CardWait::removal(READER_0, Some(WAIT))).expect("reader empty");
    assert_eq!(
        card.with_card(|c| c.persistent_state()),
        before,
        "no PIN attempt spent"
    );

    // Re-inserted: a new session reads the certificate and sees all three tries.
    card.insert();
    card.set_faults(Faults::none());
    let bridge = attach(&card, READER_0);
    let channel = open(READER_0, PcscOptions::default());
    let (cert, status) = block_on(async {
        let mut session = Session::new(channel);
        let mut ap = session.jpki().await.expect("JPKI AP");
        let cert = ap
            .read_certificate(PublicCertificate::Auth)
            .await
            .expect("cert");
        (
            cert.into_der(),
            ap.pin_status(JpkiKey::Auth).await.expect("status"),
        )
    });
    assert_eq!(status, PinStatus::Remaining(3));
    let expected = block_on(async {
        let mut session = Session::new(sim("adult").channel());
        let mut ap = session.jpki().await.expect("AP");
        ap.read_certificate(PublicCertificate::Auth)
            .await
            .expect("cert")
            .into_der()
    });
    assert_eq!(cert, expected);
    detach(bridge, READER_0);
}

/// Arms the card to be pulled on the next APDU it receives.
fn session_pull(card: &SimCard) {
    card.set_faults(Faults {
        pull_after_apdus: Some(0),
        ..Faults::none()
    });
}

#[test]
fn two_cards_in_two_readers_are_used_concurrently() {
    let _slots = slots();
    let adult = sim("adult");
    let other = sim("under15");
    let bridge_0 = attach(&adult, READER_0);
    let bridge_1 = attach(&other, READER_1);
    let read = |reader: &'static str| {
        std::thread::spawn(move || {
            let channel = open(reader, PcscOptions::default());
            block_on(async {
                let mut session = Session::new(channel);
                let mut ap = session.jpki().await.expect("AP");
                let mut certs = Vec::new();
                for _ in 0..5 {
                    certs.push(
                        ap.read_certificate(PublicCertificate::Auth)
                            .await
                            .expect("cert")
                            .into_der(),
                    );
                }
                certs
            })
        })
    };
    let (t0, t1) = (read(READER_0), read(READER_1));
    let (c0, c1) = (t0.join().expect("thread 0"), t1.join().expect("thread 1"));
    let expect = |profile: &str| {
        block_on(async {
            let mut session = Session::new(sim(profile).channel());
            let mut ap = session.jpki().await.expect("AP");
            ap.read_certificate(PublicCertificate::Auth)
                .await
                .expect("cert")
                .into_der()
        })
    };
    let (e0, e1) = (expect("adult"), expect("under15"));
    assert_ne!(e0, e1);
    assert!(c0.iter().all(|c| *c == e0));
    assert!(c1.iter().all(|c| *c == e1));
    detach(bridge_0, READER_0);
    detach(bridge_1, READER_1);
}

#[test]
fn reset_by_another_program_is_reported_and_recovered() {
    let _slots = slots();
    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    // Without a held transaction, another program may reset the card between our commands.
    let mut ours = open(READER_0, PcscOptions::default().hold_transaction(false));
    let select = mynacard_apdu::commands::select_df(&mynacard_card::catalogue::aid::JPKI)
        .to_bytes(mynacard_apdu::LengthEncoding::Short)
        .expect("encode");
    assert_eq!(
        block_on(ours.transmit(select.as_slice())).expect("select"),
        [0x90, 0x00]
    );
    assert!(!ours.was_reset());

    let ctx = pcsc::Context::establish(pcsc::Scope::User).expect("context");
    let reader = std::ffi::CString::new(READER_0).expect("name");
    let mut theirs = ctx
        .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
        .expect("second connection");
    theirs
        .reconnect(
            pcsc::ShareMode::Shared,
            pcsc::Protocols::ANY,
            pcsc::Disposition::ResetCard,
        )
        .expect("reset");
    let _ = theirs.disconnect(pcsc::Disposition::LeaveCard);

    let read_auth = [0x00, 0xB0, 0x8A, 0x00, 0x04];
    assert!(matches!(
        block_on(ours.transmit(&read_auth)),
        Err(TransportError::CardReset)
    ));
    assert!(ours.was_reset());
    assert!(!ours.was_reset(), "reading the flag clears it");
    // The JPKI AP was selected again, so a read by short file identifier works at once.
    let response = block_on(ours.transmit(&read_auth)).expect("read after recovery");
    assert_eq!(&response[response.len() - 2..], [0x90, 0x00]);
    assert_eq!(response[0], 0x30);
    block_on(ours.close()).expect("close");
    detach(bridge, READER_0);
}

#[test]
fn exclusive_mode_keeps_other_programs_out_and_waiting_times_out() {
    let _slots = slots();
    // No card in reader 1: a bounded wait times out, a cancelled one says so.
    let err = block_on(CardWait::arrival(
        Some(READER_1),
        Some(Duration::from_millis(600)),
    ))
    .expect_err("no card");
    assert!(matches!(err, TransportError::Timeout(_)));
    let wait = CardWait::arrival(Some(READER_1), None);
    let canceller = wait.canceller();
    let cancel = std::thread::spawn(move || canceller.cancel());
    assert!(matches!(block_on(wait), Err(TransportError::Cancelled)));
    cancel.join().expect("cancel thread");
    assert!(matches!(
        block_on(PcscTransport::new(READER_1).open_channel()),
        Err(TransportError::NoCard)
    ));
    assert!(matches!(
        block_on(PcscTransport::new("No Such Reader 00 00").open_channel()),
        Err(TransportError::NoReader { .. })
    ));

    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let exclusive = open(READER_0, PcscOptions::default().share(Share::Exclusive));
    assert!(matches!(
        block_on(PcscTransport::new(READER_0).open_channel()),
        Err(TransportError::SharingViolation)
    ));
    block_on(exclusive.close()).expect("close");
    let again = open(READER_0, PcscOptions::default().share(Share::Exclusive));
    block_on(again.close()).expect("close");
    detach(bridge, READER_0);
}

const SELECT_JPKI: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
];
const SELECT_AUTH_PIN: [u8; 7] = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x18];
const VERIFY_AUTH_1234: [u8; 9] = [0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
/// READ BINARY of the authentication certificate by short file identifier: works only while
/// the JPKI AP is selected.
const READ_AUTH_BY_SFI: [u8; 5] = [0x00, 0xB0, 0x8A, 0x00, 0x04];
const OK: [u8; 2] = [0x90, 0x00];

fn explicit() -> PcscOptions {
    PcscOptions::default().hold_transaction(false)
}

/// What the other program's thread reports, with whether our transaction had been released
/// (the flag is raised just before we end it) when its call returned.
#[derive(Debug)]
enum Theirs {
    Connected,
    Transmitted { response: Vec<u8>, released: bool },
    Began { released: bool },
    Done,
}

#[test]
fn a_channel_opened_as_the_last_one_is_dropped_finds_the_card_already_reset() {
    let _slots = slots();
    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let resets_before = card.with_card(|c| c.reset_count());
    // Dropping closes in the background; the next open, right behind it, must neither see the
    // reset land under its first command nor be told of it.
    const ROUNDS: u32 = 20;
    for round in 0..ROUNDS {
        let mut channel = open(READER_0, PcscOptions::default());
        let answer = block_on(channel.transmit(&SELECT_JPKI));
        assert_eq!(answer.expect("select"), OK, "round {round}");
        drop(channel);
    }
    let mut channel = open(READER_0, PcscOptions::default());
    assert_eq!(
        block_on(channel.transmit(&SELECT_JPKI)).expect("select"),
        OK
    );
    block_on(channel.close()).expect("close");
    // Every dropped channel did reset the card on its way out (the default close action).
    assert!(card.with_card(|c| c.reset_count()) - resets_before >= u64::from(ROUNDS));
    detach(bridge, READER_0);
}

#[test]
fn explicit_transaction_holds_off_another_connection_until_it_ends() {
    let _slots = slots();
    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let mut ours = open(READER_0, explicit());

    let first_released = Arc::new(AtomicBool::new(false));
    let second_released = Arc::new(AtomicBool::new(false));
    let (report, reports) = mpsc::channel::<Theirs>();
    let (go, go_rx) = mpsc::channel::<()>();

    // Another program: a shared connection of its own, on its own thread. It connects before
    // our transaction: pcsc-lite makes SCardConnect wait for a held transaction too.
    let theirs = {
        let (first, second) = (Arc::clone(&first_released), Arc::clone(&second_released));
        std::thread::spawn(move || {
            let mut channel = open(READER_0, explicit());
            report.send(Theirs::Connected).unwrap();
            go_rx.recv().unwrap();
            let response = block_on(channel.transmit(&SELECT_JPKI)).expect("their select");
            let released = first.load(Ordering::SeqCst);
            report
                .send(Theirs::Transmitted { response, released })
                .unwrap();
            go_rx.recv().unwrap();
            let mut tx = block_on(channel.transaction()).expect("their begin");
            let released = second.load(Ordering::SeqCst);
            report.send(Theirs::Began { released }).unwrap();
            assert_eq!(block_on(tx.transmit(&SELECT_JPKI)).expect("select"), OK);
            block_on(tx.end(TransactionEnd::Leave)).expect("their end");
            block_on(channel.close()).expect("their close");
            report.send(Theirs::Done).unwrap();
        })
    };

    assert!(matches!(reports.recv_timeout(WAIT), Ok(Theirs::Connected)));
    let mut tx = block_on(ours.transaction()).expect("begin");
    assert_eq!(block_on(tx.transmit(&SELECT_JPKI)).expect("select"), OK);
    go.send(()).unwrap();
    // A third program cannot even connect while the transaction is held.
    let third = PcscTransport::new(READER_0)
        .with_options(explicit().open_timeout(Some(Duration::from_millis(500))));
    assert!(matches!(
        block_on(third.open_channel()),
        Err(TransportError::Timeout(_))
    ));
    // Their command does not reach the card while ours keep going.
    for _ in 0..5 {
        assert_eq!(block_on(tx.transmit(&SELECT_JPKI)).expect("ours"), OK);
        assert!(matches!(reports.try_recv(), Err(TryRecvError::Empty)));
    }
    assert!(matches!(
        reports.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Timeout)
    ));
    // Dropping the guard ends the transaction; their command then runs, and only then.
    first_released.store(true, Ordering::SeqCst);
    drop(tx);
    match reports
        .recv_timeout(WAIT)
        .expect("their command after ours")
    {
        Theirs::Transmitted { response, released } => {
            assert_eq!(response, OK);
            assert!(released, "their command ran before our transaction ended");
        }
        other => panic!("unexpected {other:?}"),
    }

    // The same for their begin: it returns only after our second transaction ended.
    let mut tx = block_on(ours.transaction()).expect("begin again");
    go.send(()).unwrap();
    assert_eq!(block_on(tx.transmit(&SELECT_JPKI)).expect("ours"), OK);
    assert!(matches!(
        reports.recv_timeout(Duration::from_secs(1)),
        Err(RecvTimeoutError::Timeout)
    ));
    second_released.store(true, Ordering::SeqCst);
    block_on(tx.end(TransactionEnd::Leave)).expect("end");
    assert!(matches!(
        reports.recv_timeout(WAIT),
        Ok(Theirs::Began { released: true })
    ));
    assert!(matches!(reports.recv_timeout(WAIT), Ok(Theirs::Done)));
    theirs.join().expect("their thread");

    // Their channel reset the card when it closed (the default `on_close`), between our
    // groups: our next transaction begins all the same, reports the reset, and has selected
    // the JPKI AP again (a read by short file identifier works at once).
    let mut tx = block_on(ours.transaction()).expect("begin after their reset");
    assert!(tx.was_reset());
    let response = block_on(tx.transmit(&READ_AUTH_BY_SFI)).expect("read");
    assert_eq!(response[response.len() - 2..], OK);
    block_on(tx.end(TransactionEnd::Leave)).expect("end");
    block_on(ours.close()).expect("close");
    detach(bridge, READER_0);
}

/// SELECT AP, SELECT PIN EF, VERIFY with the right PIN, through any channel.
fn verify_auth_pin<C: CardChannel>(channel: &mut C) {
    for command in [&SELECT_JPKI[..], &SELECT_AUTH_PIN, &VERIFY_AUTH_1234] {
        assert_eq!(block_on(channel.transmit(command)).expect("command"), OK);
    }
}

#[test]
fn ending_a_transaction_with_reset_clears_the_card_and_reports_the_reset() {
    let _slots = slots();
    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let verified = || card.with_card(|c| c.is_verified(SecretId::JpkiAuthPin));
    let resets = || card.with_card(|c| c.reset_count());

    let mut channel = open(READER_0, explicit());
    // Leave: the verified PIN outlives the transaction, nothing is reported.
    let mut tx = block_on(channel.transaction()).expect("begin");
    verify_auth_pin(&mut tx);
    assert!(verified());
    let before = resets();
    block_on(tx.end(TransactionEnd::default())).expect("end");
    assert!(verified());
    assert_eq!(resets(), before);
    assert!(!channel.was_reset());

    // Reset: cleared before anyone else could use the card; the channel reports the reset and
    // selected the JPKI AP again, so a read by short file identifier works at once.
    let mut tx = block_on(channel.transaction()).expect("begin");
    verify_auth_pin(&mut tx);
    block_on(tx.end(TransactionEnd::Reset)).expect("end with reset");
    assert!(!verified(), "the reset cleared the verified PIN");
    assert_eq!(resets(), before + 1);
    assert_eq!(
        card.with_card(|c| c.current_application()),
        Some(Application::Jpki)
    );
    assert!(channel.was_reset());
    assert!(!channel.was_reset(), "reading the flag clears it");
    let response = block_on(channel.transmit(&READ_AUTH_BY_SFI)).expect("read after reset");
    assert_eq!(response[0], 0x30);
    assert_eq!(response[response.len() - 2..], OK);
    block_on(channel.close()).expect("close");

    // With the channel's own transaction (the default) the guard only groups, and its end
    // powers the card down and up while the channel keeps the card.
    let mut channel = open(READER_0, PcscOptions::default());
    let mut tx = block_on(channel.transaction()).expect("group");
    verify_auth_pin(&mut tx);
    let before = resets();
    block_on(tx.end(TransactionEnd::Unpower)).expect("end with unpower");
    assert!(!verified());
    assert!(resets() > before);
    assert!(channel.was_reset());
    let response = block_on(channel.transmit(&READ_AUTH_BY_SFI)).expect("read after unpower");
    assert_eq!(response[response.len() - 2..], OK);
    block_on(channel.close()).expect("close");
    detach(bridge, READER_0);
}

#[test]
fn card_pulled_inside_a_transaction_is_card_removed_and_the_guard_drops_cleanly() {
    let _slots = slots();
    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let mut channel = open(READER_0, explicit());
    let mut tx = block_on(channel.transaction()).expect("begin");
    assert_eq!(block_on(tx.transmit(&SELECT_JPKI)).expect("select"), OK);

    bridge.pull();
    assert_eq!(bridge.join().expect("bridge"), Ended::CardPulled);
    assert!(matches!(
        block_on(tx.transmit(&SELECT_JPKI)),
        Err(TransportError::CardRemoved)
    ));
    drop(tx);
    // The channel's thread is alive and says why: the card is gone.
    assert!(matches!(
        block_on(channel.transmit(&SELECT_JPKI)),
        Err(TransportError::CardRemoved)
    ));
    assert!(matches!(
        block_on(channel.transaction()),
        Err(TransportError::CardRemoved)
    ));
    block_on(channel.close()).expect("close after removal");
    block_on(CardWait::removal(READER_0, Some(WAIT))).expect("reader empty");

    // Re-inserted: a new channel's transaction works, and ending it after a removal says so.
    card.insert();
    let bridge = attach(&card, READER_0);
    let mut channel = open(READER_0, explicit());
    let mut tx = block_on(channel.transaction()).expect("begin");
    assert_eq!(block_on(tx.transmit(&SELECT_JPKI)).expect("select"), OK);
    bridge.pull();
    assert_eq!(bridge.join().expect("bridge"), Ended::CardPulled);
    block_on(CardWait::removal(READER_0, Some(WAIT))).expect("reader empty");
    assert!(matches!(
        block_on(tx.end(TransactionEnd::Reset)),
        Err(TransportError::CardRemoved)
    ));
    block_on(channel.close()).expect("close after removal");
}

/// Arms the card to stop answering for `stall` on the next APDU (it processes the APDU, then
/// answers late), as a frozen card or reader would.
fn stall_next_apdu(card: &SimCard, stall: Duration) {
    card.set_faults(Faults {
        latency_per_apdu: stall,
        ..Faults::none()
    });
}

#[test]
fn frozen_card_gives_timeout_at_the_deadline_spends_no_pin_attempt_and_recovers() {
    let _slots = slots();
    let card = sim("adult");
    let bridge = attach(&card, READER_0);
    let deadline = Duration::from_secs(1);
    let stall = Duration::from_secs(3);
    // Scheduling slack on a busy 2-core machine; the deadline thread itself is not late.
    let margin = Duration::from_millis(750);
    let options = PcscOptions::default().command_timeout(Some(deadline));

    let channel = open(READER_0, options.clone());
    let before = card.with_card(|c| c.persistent_state());
    let (outcome, elapsed) = block_on(async {
        let mut session = Session::new(channel);
        let mut ap = session.jpki().await.expect("JPKI AP");
        assert_eq!(
            ap.pin_status(JpkiKey::Auth).await.expect("status"),
            PinStatus::Remaining(3)
        );
        // The card freezes on the first command of the VERIFY sequence (reading the tries left).
        stall_next_apdu(&card, stall);
        let started = Instant::now();
        let pin = Pin::new("9999").expect("pin");
        let outcome = ap
            .verify_auth(&pin, AttemptPolicy::KeepLastAttempt)
            .await
            .map(|_| ());
        (outcome, started.elapsed())
    });
    card.set_faults(Faults::none());
    let err = outcome.expect_err("a frozen card cannot verify");
    assert!(
        matches!(transport_error(&err), Some(TransportError::Timeout(d)) if *d == deadline),
        "expected Timeout({deadline:?}), got {err:?}"
    );
    assert!(
        elapsed >= deadline && elapsed < deadline + margin,
        "released after {elapsed:?}"
    );
    eprintln!("frozen card: Timeout after {elapsed:?} (deadline {deadline:?}, stall {stall:?})");

    // Once the card answers again a new session works; the wrong PIN was never sent.
    let started = Instant::now();
    let channel = open(READER_0, options.clone());
    eprintln!(
        "new channel opened {:?} after the timeout (the old one held the card until the late answer)",
        started.elapsed()
    );
    let status = block_on(async {
        let mut session = Session::new(channel);
        let mut ap = session.jpki().await.expect("JPKI AP");
        ap.pin_status(JpkiKey::Auth).await.expect("status")
    });
    assert_eq!(status, PinStatus::Remaining(3));
    assert_eq!(card.with_card(|c| c.persistent_state()), before);

    // Frozen, then pulled while frozen: the caller is released at the deadline, the channel
    // then reports the removal, and a new channel to the re-inserted card works.
    let mut channel = open(READER_0, options.clone());
    assert_eq!(
        block_on(channel.transmit(&SELECT_JPKI)).expect("select"),
        OK
    );
    stall_next_apdu(&card, stall);
    let started = Instant::now();
    let err = block_on(channel.transmit(&READ_AUTH_BY_SFI)).expect_err("frozen");
    let elapsed = started.elapsed();
    assert!(
        matches!(err, TransportError::Timeout(d) if d == deadline),
        "{err:?}"
    );
    assert!(
        elapsed >= deadline && elapsed < deadline + margin,
        "released after {elapsed:?}"
    );
    bridge.pull();
    // The bridge ends once its stalled answer fails to go out.
    assert_eq!(bridge.join().expect("bridge"), Ended::CardPulled);
    block_on(CardWait::removal(READER_0, Some(WAIT))).expect("reader empty");
    assert!(matches!(
        block_on(channel.transmit(&SELECT_JPKI)),
        Err(TransportError::CardRemoved)
    ));
    block_on(channel.close()).expect("close after removal");
    card.insert();
    card.set_faults(Faults::none());
    let bridge = attach(&card, READER_0);
    let mut channel = open(READER_0, options);
    assert_eq!(
        block_on(channel.transmit(&SELECT_JPKI)).expect("select"),
        OK
    );
    let response = block_on(channel.transmit(&READ_AUTH_BY_SFI)).expect("read");
    assert_eq!(response[0], 0x30);
    assert_eq!(card.with_card(|c| c.persistent_state()), before);
    block_on(channel.close()).expect("close");
    detach(bridge, READER_0);
}

#[test]
fn card_arriving_while_waiting_is_seen_and_opened_through_any_reader() {
    let _slots = slots();
    // Both readers are empty (checked by `slots`): nothing to open yet.
    assert!(matches!(
        block_on(PcscTransport::any().open_channel()),
        Err(TransportError::NoCard)
    ));
    // Waiting starts before the card exists; it must not resolve until it arrives.
    let mut wait = Box::pin(PcscTransport::any().wait_for_card(Some(WAIT)));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    assert!(wait.as_mut().poll(&mut cx).is_pending());

    let card = sim("under15");
    let addr = ([127, 0, 0, 1], port(READER_1)).into();
    let bridge = vpcd::spawn(addr, card.clone(), VpcdOptions::default()).expect("bridge");
    let arrived = block_on(wait).expect("arrival");
    assert_eq!(arrived.name, READER_1);
    assert_eq!(arrived.card, CardPresence::Present);
    assert_eq!(arrived.atr, card.with_card(|c| c.atr().to_vec()));

    let mut channel = block_on(PcscTransport::any().open_channel()).expect("open any");
    assert_eq!(channel.reader_name(), READER_1);
    assert_eq!(
        block_on(channel.transmit(&SELECT_JPKI)).expect("select"),
        OK
    );

    // Leaving: a removal wait started while the card is in resolves when it goes, and the
    // open channel reports it.
    let removal = CardWait::removal(READER_1, Some(WAIT));
    bridge.pull();
    let left = block_on(removal).expect("removal");
    assert_eq!(left.card, CardPresence::Empty);
    assert!(matches!(
        block_on(channel.transmit(&SELECT_JPKI)),
        Err(TransportError::CardRemoved)
    ));
    let _ = bridge.join();
}
