//! How many APDUs each flow sends to the simulated card, with the reference service on SQLite:
//! on a link with extended length and on a short-only link (the `no-extended` profile's link),
//! compared with `mynacard-card` doing the same card work, and on a card that refuses the
//! short-EF-identifier forms with `6A86`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod common;

use async_trait::async_trait;
use common::*;
use mynacard_apdu::commands::{self, KeyRef};
use mynacard_apdu::tlv::ber;
use mynacard_card::{AttemptPolicy, CollationB, HashAlgorithm, Pin, Session};
use mynacard_registration::Outcome;
use mynacard_registration::driver::{self, RunReport};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::Machine;
use mynacard_sim::image::{CardImage, LinkProfile};
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::state::SecretId;
use mynacard_transport::{Capabilities, CardChannel, TransportError};
use zeroize::Zeroizing;

/// Fails unless the run ended with an outcome of `pattern`, showing the whole report.
macro_rules! assert_outcome {
    ($report:expr, $pattern:pat) => {
        assert!(matches!($report.outcome, $pattern), "{:?}", $report)
    };
}

/// The two links measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Extended-length APDUs (contact reader, most PC/SC readers).
    Extended,
    /// Short APDUs only (many phones), as in the `no-extended` profile.
    Short,
}

const LINKS: [Link; 2] = [Link::Extended, Link::Short];

/// The link of a contact reader with extended length, as the `adult` profile has it.
fn extended_link() -> LinkProfile {
    CardImage::from_profile_name("adult").expect("adult").link
}

fn short_link() -> LinkProfile {
    let link = CardImage::from_profile_name("no-extended")
        .expect("no-extended")
        .link;
    assert!(!link.extended_length && link.max_response_data == 256);
    link
}

/// The card of `profile` on `link`.
fn image(profile: &str, link: Link) -> CardImage {
    let mut image = CardImage::from_profile_name(profile).expect("profile");
    image.link = match link {
        Link::Extended => extended_link(),
        Link::Short => short_link(),
    };
    image
}

/// The card of `profile` on `link`, and a simulated card holding it.
fn card_on(profile: &str, link: Link) -> (CardImage, SimCard) {
    let image = image(profile, link);
    let sim = SimCard::from_image(image.clone());
    (image, sim)
}

/// APDUs to read a TLV file of `len` bytes by short EF identifier: one command with extended
/// length; on a short link one when it fits 256 bytes, else the first 256 by identifier, SELECT
/// EF, and the rest by offset in 256-byte chunks.
fn sfi_reads(len: usize, link: Link) -> u32 {
    let n = match link {
        Link::Extended => 1,
        Link::Short if len <= 256 => 1,
        Link::Short => 1 + len.div_ceil(256),
    };
    u32::try_from(n).unwrap()
}

/// APDUs to read it the old way: SELECT EF, then READ BINARY by offset.
fn select_reads(len: usize, link: Link) -> u32 {
    let n = match link {
        Link::Extended => 2,
        Link::Short => 1 + len.div_ceil(256),
    };
    u32::try_from(n).unwrap()
}

/// The TLV length of a visual AP file, read with plain SELECT EF and READ BINARY on a copy of
/// the card (照合番号B first for the card face).
async fn visual_file_len(image: &CardImage, fid: u16) -> usize {
    let mut image = image.clone();
    image.link = extended_link();
    let sim = SimCard::from_image(image.clone());
    let mut channel = sim.channel();
    let mut send = async |command: mynacard_apdu::Command| {
        let bytes = command
            .to_bytes(mynacard_apdu::LengthEncoding::Auto)
            .unwrap();
        let answer = channel.transmit(bytes.as_slice()).await.unwrap();
        let (data, sw) = answer.split_at(answer.len() - 2);
        assert_eq!(sw, [0x90, 0x00], "{command:?}");
        data.to_vec()
    };
    send(commands::select_df(&mynacard_card::catalogue::aid::VISUAL)).await;
    send(commands::select_ef(mynacard_card::catalogue::visual::PIN_B)).await;
    let b = Zeroizing::new(collation_number_b(&image).into_bytes());
    send(commands::verify(KeyRef::Current, b)).await;
    send(commands::select_ef(fid)).await;
    let data = send(commands::read_binary(0, 65_536).unwrap()).await;
    let (_, header, len) = ber::parse_header(&data).unwrap();
    header + len
}

/// The card crate's count for a PIN registration's card work: SELECT AP, the auth certificate,
/// VERIFY (its tries first), one signature.
async fn card_crate_pin_registration(image: &CardImage) -> u64 {
    let mut session = Session::new(SimCard::from_image(image.clone()).channel());
    let mut ap = session.jpki().await.unwrap();
    let cert = ap
        .read_certificate(mynacard_card::jpki::PublicCertificate::Auth)
        .await;
    let mut verified = ap
        .verify_auth(&Pin::new("1234").unwrap(), AttemptPolicy::default())
        .await
        .unwrap();
    if cert.is_err() {
        // The smartphone token: the certificate opens with the PIN.
        verified.read_auth_certificate().await.unwrap();
    }
    verified
        .sign(HashAlgorithm::Sha256, b"intent")
        .await
        .unwrap();
    drop(verified);
    session.stats().commands
}

/// The card crate's count for a face flow's card work: SELECT JPKI, the auth certificate,
/// SELECT visual AP, VERIFY 照合番号B (its tries first), the card face, the CVC, the card
/// presence signature.
async fn card_crate_face_flow(image: &CardImage) -> u64 {
    let mut session = Session::new(SimCard::from_image(image.clone()).channel());
    session
        .jpki()
        .await
        .unwrap()
        .read_certificate(mynacard_card::jpki::PublicCertificate::Auth)
        .await
        .unwrap();
    let mut visual = session.visual().await.unwrap();
    let b = CollationB::from_digits(&collation_number_b(image)).unwrap();
    let mut verified = visual
        .verify_collation_b(&b, AttemptPolicy::default())
        .await
        .unwrap();
    // Only the APDUs count here: the simulator's certificate is not anchored in production
    // trust, and the record's own signature is still checked.
    let face = verified
        .read_face_checked(&mynacard_card::CvcTrust::production())
        .await
        .unwrap()
        .record;
    verified
        .prove_presence(&face.card_key, b"intent")
        .await
        .unwrap();
    drop(verified);
    session.stats().commands
}

/// A registration's count equals the card crate's for the same card work.
fn assert_as_the_card_crate(report: &RunReport, card_crate: u64, link: Link) {
    assert_eq!(u64::from(report.apdus), card_crate, "{link:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_flows_send_five_apdus_with_extended_length_as_the_card_crate_does() {
    for link in LINKS {
        let service = SqliteService::start().await;
        let url = service.url();
        let (image, sim) = card_on("adult", link);
        let cert = image.auth.cert_der.len();
        assert!(cert > 256, "a certificate takes several short reads");
        // SELECT AP, the certificate, tries left, VERIFY, COMPUTE DIGITAL SIGNATURE.
        let expected = 1 + sfi_reads(cert, link) + 3;

        let report = run_with_pin(pin_registration_in_app(), &sim, &url, "1234").await;
        assert_outcome!(report, Outcome::Registered { .. });
        assert_eq!(report.apdus, expected, "registration, {link:?}");
        if link == Link::Extended {
            assert_eq!(report.apdus, 5);
        }
        assert_as_the_card_crate(&report, card_crate_pin_registration(&image).await, link);

        let report = run_with_pin(pin_check_at_clinic(), &sim, &url, "1234").await;
        assert_outcome!(report, Outcome::Eligible(_));
        assert_eq!(report.apdus, expected, "eligibility, {link:?}");

        let report = run_with_pin(deregistration_in_app(), &sim, &url, "1234").await;
        assert_outcome!(report, Outcome::Deregistered { .. });
        assert_eq!(report.apdus, expected, "deregistration, {link:?}");

        // A wrong PIN: SELECT AP, the certificate, tries left, VERIFY.
        let report = run_with_pin(pin_check_at_clinic(), &sim, &url, "9999").await;
        assert_eq!(report.outcome, Outcome::WrongPin { retries_left: 2 });
        assert_eq!(report.apdus, expected - 1, "wrong PIN, {link:?}");
        service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn face_flows_address_visual_files_and_keys_by_short_identifier() {
    for link in LINKS {
        let service = SqliteService::start().await;
        let url = service.url();
        let (image, sim) = card_on("face-auth", link);
        let cert = image.auth.cert_der.len();
        let face = visual_file_len(&image, mynacard_card::catalogue::visual::FACE).await;
        let cvc = visual_file_len(&image, mynacard_card::catalogue::visual::CVC).await;
        assert!(face > 256 && cvc > 256, "{face} {cvc}");
        // SELECT JPKI, the certificate, SELECT visual AP, tries left of 照合番号B, VERIFY, the
        // card face, the CVC, the presence signature.
        let expected =
            1 + sfi_reads(cert, link) + 1 + 2 + sfi_reads(face, link) + sfi_reads(cvc, link) + 1;

        let mut kiosk = SimTerminal::face(&image, KIOSK);
        let report = run(face_registration_at_kiosk(), &sim, &url, &mut kiosk).await;
        assert_outcome!(report, Outcome::Registered { .. });
        assert_eq!(report.apdus, expected, "face registration, {link:?}");
        if link == Link::Extended {
            assert_eq!(report.apdus, 8);
        }
        assert_as_the_card_crate(&report, card_crate_face_flow(&image).await, link);

        let mut reader = SimTerminal::face(&image, CLINIC);
        let report = run(face_check_at_clinic(), &sim, &url, &mut reader).await;
        assert_outcome!(report, Outcome::Eligible(_));
        assert_eq!(report.apdus, expected, "face eligibility, {link:?}");
        service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smartphone_token_reads_its_certificate_by_identifier_after_verify() {
    let service = SqliteService::start().await;
    let url = service.url();
    let image = CardImage::from_profile_name("smartphone").expect("profile");
    assert!(!image.link.extended_length);
    let sim = SimCard::from_image(image.clone());
    let cert = image.auth.cert_der.len();
    let report = run_with_pin(pin_registration_in_app(), &sim, &url, "1234").await;
    assert_outcome!(report, Outcome::Registered { .. });
    // SELECT AP, the refused read (6982), tries left, VERIFY, the certificate, the signature.
    assert_eq!(report.apdus, 1 + 1 + 2 + sfi_reads(cert, Link::Short) + 1);
    assert_as_the_card_crate(
        &report,
        card_crate_pin_registration(&image).await,
        Link::Short,
    );

    let report = run_with_pin(pin_check_at_clinic(), &sim, &url, "9999").await;
    assert_eq!(report.outcome, Outcome::WrongPin { retries_left: 2 });
    assert_eq!(report.apdus, 4);
    service.stop().await;
}

/// Which short-EF-identifier forms the card in front of the simulator refuses with `6A86`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refuse {
    /// READ BINARY, VERIFY (with or without data) and COMPUTE DIGITAL SIGNATURE by SFI.
    All,
    /// Only VERIFY with reference data by SFI.
    VerifyWithData,
}

/// A card that has no short-EF-identifier addressing for some commands: it answers `6A86`
/// to them without processing them; everything else reaches the simulated card.
struct RefusesSfi {
    inner: mynacard_sim::inprocess::SimChannel,
    refuse: Refuse,
    refused: u32,
}

fn by_sfi(command: &[u8]) -> Option<(u8, bool)> {
    let [_, ins, p1, p2, rest @ ..] = command else {
        return None;
    };
    let sfi = match ins {
        0xB0 => p1 & 0x80 != 0,
        0x20 | 0x2A => (0x81..=0x9E).contains(p2),
        _ => false,
    };
    sfi.then_some((*ins, !rest.is_empty()))
}

#[async_trait]
impl CardChannel for RefusesSfi {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let refuse = match (self.refuse, by_sfi(command)) {
            (Refuse::All, Some(_)) => true,
            (Refuse::VerifyWithData, Some((0x20, with_data))) => with_data,
            _ => false,
        };
        if refuse {
            self.refused += 1;
            return Ok(vec![0x6A, 0x86]);
        }
        self.inner.transmit(command).await
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn was_reset(&mut self) -> bool {
        self.inner.was_reset()
    }
}

/// VERIFY commands with reference data that reached the simulated card.
fn verifies_with_data(sim: &SimCard) -> usize {
    sim.log()
        .entries()
        .iter()
        .filter(|e| e.command.get(1) == Some(&0x20) && e.redacted > 0)
        .count()
}

fn auth_pin_tries(sim: &SimCard) -> u8 {
    sim.with_card(|c| c.secret_status(SecretId::JpkiAuthPin))
        .expect("auth PIN")
        .remaining
}

/// One run on a fresh card of `image` that refuses `refuse`: the report, how many commands
/// were refused, and the simulated card behind the refusals.
async fn run_refusing(
    machine: Machine,
    image: &CardImage,
    refuse: Refuse,
    url: &str,
    terminal: &mut SimTerminal,
) -> (RunReport, u32, SimCard) {
    let sim = SimCard::from_image(image.clone());
    let client = HttpClient::new(url).expect("client");
    let mut channel = RefusesSfi {
        inner: sim.channel(),
        refuse,
        refused: 0,
    };
    let report = driver::run(machine, &mut channel, &client, terminal)
        .await
        .expect("driver");
    (report, channel.refused, sim)
}

/// The PIN reached the card in one VERIFY, and the card holds `tries` tries.
fn assert_one_pin_verify(sim: &SimCard, tries: u8) {
    assert_eq!(verifies_with_data(sim), 1);
    assert_eq!(auth_pin_tries(sim), tries);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_refusing_short_identifiers_gets_select_and_one_verify() {
    for link in LINKS {
        let service = SqliteService::start().await;
        let url = service.url();
        let image = image("adult", link);
        let cert = image.auth.cert_der.len();
        // The old forms: SELECT AP, SELECT EF and the certificate by offset, SELECT PIN and
        // tries left, VERIFY of the PIN EF still current, SELECT key and the signature.
        let select_forms = 1 + select_reads(cert, link) + 2 + 1 + 2;

        let (report, refused, sim) = run_refusing(
            pin_registration_in_app(),
            &image,
            Refuse::All,
            &url,
            &mut SimTerminal::with_pin("1234"),
        )
        .await;
        assert_outcome!(report, Outcome::Registered { .. });
        // Each SFI form is tried once (READ BINARY, VERIFY, COMPUTE DIGITAL SIGNATURE), then
        // not again in the run.
        assert_eq!(refused, 3, "{link:?}");
        assert_eq!(report.apdus, select_forms + 3, "{link:?}");
        assert_one_pin_verify(&sim, 3);

        // A wrong PIN on that card: one try spent.
        let (report, _, sim) = run_refusing(
            pin_check_at_clinic(),
            &image,
            Refuse::All,
            &url,
            &mut SimTerminal::with_pin("9999"),
        )
        .await;
        assert_eq!(report.outcome, Outcome::WrongPin { retries_left: 2 });
        assert_one_pin_verify(&sim, 2);

        // A card that reads tries by SFI but refuses VERIFY with data that way: the PIN goes
        // once more, after SELECT EF, and the counter moves once.
        let (report, refused, sim) = run_refusing(
            pin_check_at_clinic(),
            &image,
            Refuse::VerifyWithData,
            &url,
            &mut SimTerminal::with_pin("9999"),
        )
        .await;
        assert_eq!(report.outcome, Outcome::WrongPin { retries_left: 2 });
        assert_eq!(refused, 1);
        // SELECT AP, the certificate, tries left, VERIFY (refused), SELECT PIN, VERIFY.
        assert_eq!(report.apdus, 1 + sfi_reads(cert, link) + 1 + 1 + 2);
        assert_one_pin_verify(&sim, 2);
        service.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_face_card_refusing_short_identifiers_gets_select_and_one_verify() {
    let service = SqliteService::start().await;
    let url = service.url();
    let image = image("face-auth", Link::Extended);
    let mut kiosk = SimTerminal::face(&image, KIOSK);
    let (report, refused, sim) = run_refusing(
        face_registration_at_kiosk(),
        &image,
        Refuse::All,
        &url,
        &mut kiosk,
    )
    .await;
    assert_outcome!(report, Outcome::Registered { .. });
    // READ BINARY and VERIFY by SFI refused once each; the old forms for the rest: SELECT
    // JPKI, SELECT EF + READ, SELECT visual AP, SELECT 0012 + tries, VERIFY, SELECT EF + READ
    // twice, the presence signature.
    assert_eq!(refused, 2);
    assert_eq!(report.apdus, 12 + 2);
    assert_eq!(verifies_with_data(&sim), 1);
    let tries = sim
        .with_card(|c| c.secret_status(SecretId::VisualCollationB))
        .expect("照合番号B")
        .remaining;
    assert_eq!(tries, 10);
    service.stop().await;
}
