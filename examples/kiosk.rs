//! A clinic's accredited face-recognition kiosk (顔認証付きカードリーダー at reception).
//!
//! A patient with a face-authentication card (顔認証マイナンバーカード: no PIN) puts it on the
//! kiosk's contactless reader. The kiosk registers the card for health-insurance use without a
//! PIN: its camera reads 照合番号B off the card face, the card-face record's photo is matched
//! against the live face, the card signs the service's challenge (card presence) and the kiosk
//! attests to what it saw with its own key. Then, as at every later visit, it checks the
//! patient's eligibility the same way.
//!
//! The reference service runs in this process; the card is the simulated `face-auth` card on a
//! contactless link. Run with `cargo run --example kiosk`.

use async_trait::async_trait;
use mynacard::registration::attestation::SoftwareAttestationKey;
use mynacard::registration::driver::{self, RunReport, Terminal};
use mynacard::registration::http::HttpClient;
use mynacard::registration::machine::ConsentPrompt;
use mynacard::registration::messages::{FaceDecision, FaceMatch};
use mynacard::registration::{FlowConfig, Machine, Outcome, TerminalKind};
use mynacard::sim::image::CardImage;
use mynacard::sim::inprocess::SimCard;
use mynacard::transport::Interface;
use mynacard_registry::dev_pki::DevPki;
use zeroize::Zeroizing;

// The service bootstrap is shared with the other examples; the workspace's tests bring their
// own copy of the same module and include this file as a module.
#[cfg(not(test))]
mod support;
use crate::support::{BoxError, ReferenceService, runtime, terminal_client};

/// This kiosk's id at the service (a face-approved terminal of the built-in seed).
pub(crate) const KIOSK_ID: &str = "kiosk-0001";

/// The ATR a contactless PC/SC reader synthesises for the card (ISO 14443-4, NFC-B).
const CONTACTLESS_ATR: [u8; 13] = [
    0x3B, 0x88, 0x80, 0x01, 0x00, 0x00, 0x05, 0xE0, 0xB3, 0x81, 0xA1, 0x00, 0x7F,
];

/// The face threshold of the kiosk's matcher, in thousandths.
const FACE_THRESHOLD: u16 = 900;

/// What the kiosk's screen showed during one flow.
#[derive(Debug, Clone, Default)]
pub(crate) struct Screen {
    /// Titles of the consent documents shown.
    pub(crate) consent_titles: Vec<String>,
    /// 照合番号B tries left, as the card reported them before the number was used.
    pub(crate) collation_tries: Vec<Option<u8>>,
    /// Face-match results.
    pub(crate) face_matches: Vec<FaceMatch>,
    /// Attestation signatures made.
    pub(crate) attestations: u32,
}

/// The kiosk's hardware: camera (OCR and face), screen and attestation key.
struct Kiosk {
    /// 照合番号B as the camera read it from the card face.
    collation_b: Option<Zeroizing<String>>,
    /// The face in front of the camera (here: the card holder's own photo).
    live_face: Zeroizing<Vec<u8>>,
    attestation: SoftwareAttestationKey,
    screen: Screen,
}

#[async_trait]
impl Terminal for Kiosk {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        self.screen
            .consent_titles
            .push(prompt.document.title.ja.clone());
        // The patient taps 同意する on the touch screen.
        true
    }

    async fn pin(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        // A face kiosk has no PIN pad in face mode.
        None
    }

    async fn collation_number_b(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.screen.collation_tries.push(retries_left);
        self.collation_b.clone()
    }

    async fn match_face(&mut self, photo: &[u8]) -> Option<FaceMatch> {
        // Stands in for the kiosk's certified matcher: the patient in front of the camera is
        // the card holder exactly when the photos agree.
        let same = !photo.is_empty() && photo == self.live_face.as_slice();
        let result = FaceMatch {
            decision: if same {
                FaceDecision::Match
            } else {
                FaceDecision::NoMatch
            },
            score_permille: if same { 962 } else { 118 },
            threshold_permille: FACE_THRESHOLD,
        };
        self.screen.face_matches.push(result);
        Some(result)
    }

    async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        self.screen.attestations += 1;
        Some(self.attestation.sign(message))
    }
}

/// 照合番号B as printed on the card face: birth date in the Japanese era year (`YYMMDD`),
/// the card's expiry year and the 4-digit security code.
fn read_card_face(image: &CardImage) -> Option<Zeroizing<String>> {
    let b = image.collation_number_b().ok()?;
    Some(Zeroizing::new(b.expose().to_owned()))
}

/// The simulated face-authentication card on the kiosk's contactless reader.
pub(crate) fn face_card_on_contactless_reader() -> Result<(SimCard, CardImage), BoxError> {
    let mut image = CardImage::from_profile_name("face-auth")?;
    image.link.atr = CONTACTLESS_ATR.to_vec();
    image.link.contactless = true;
    Ok((SimCard::from_image(image.clone()), image))
}

/// One flow at the kiosk: how it ended and what the screen showed.
pub(crate) struct KioskFlow {
    /// Outcome and card traffic.
    pub(crate) report: RunReport,
    /// What the screen showed.
    pub(crate) screen: Screen,
}

/// One patient at the kiosk.
pub(crate) struct KioskVisit {
    /// The registration flow.
    pub(crate) registration: KioskFlow,
    /// The eligibility check that followed.
    pub(crate) eligibility: KioskFlow,
    /// Whether the reader reported a contactless link.
    pub(crate) contactless: bool,
}

/// Registers the face card at the service through `client`, then checks eligibility.
pub(crate) async fn kiosk_visit(
    card: &SimCard,
    image: &CardImage,
    client: &HttpClient,
) -> Result<KioskVisit, BoxError> {
    let mut kiosk = Kiosk {
        collation_b: read_card_face(image),
        live_face: Zeroizing::new(image.face.photo.clone()),
        attestation: SoftwareAttestationKey::for_testing(KIOSK_ID),
        screen: Screen::default(),
    };
    let mut channel = card.channel();
    let contactless = card.capabilities().interface == Interface::Contactless;

    let config = FlowConfig::new(KIOSK_ID, TerminalKind::Kiosk);
    let report = driver::run(
        Machine::register_with_face(config.clone()),
        &mut channel,
        client,
        &mut kiosk,
    )
    .await?;
    let registration = KioskFlow {
        report,
        screen: std::mem::take(&mut kiosk.screen),
    };
    let report = driver::run(
        Machine::check_eligibility_with_face(config),
        &mut channel,
        client,
        &mut kiosk,
    )
    .await?;
    let eligibility = KioskFlow {
        report,
        screen: kiosk.screen,
    };
    Ok(KioskVisit {
        registration,
        eligibility,
        contactless,
    })
}

fn show(step: &str, flow: &KioskFlow) {
    println!("{step}");
    for title in &flow.screen.consent_titles {
        println!("  consent shown: {title}");
    }
    for tries in &flow.screen.collation_tries {
        match tries {
            Some(n) => println!("  照合番号B read from the card face ({n} tries left on the card)"),
            None => println!("  照合番号B read from the card face"),
        }
    }
    for m in &flow.screen.face_matches {
        println!(
            "  face match: {:?}, score {}/1000 (threshold {})",
            m.decision, m.score_permille, m.threshold_permille
        );
    }
    println!(
        "  terminal attestations signed: {}",
        flow.screen.attestations
    );
    let report = &flow.report;
    println!("  画面: {}", report.outcome.message("ja"));
    println!("  screen: {}", report.outcome.message("en"));
    println!(
        "  card: {} APDUs, {} bytes sent, {} bytes received; service: {} requests",
        report.apdus, report.bytes_sent, report.bytes_received, report.http_requests
    );
}

fn main() -> Result<(), BoxError> {
    runtime()?.block_on(async {
        let pki = DevPki::generate(&["127.0.0.1"], &[KIOSK_ID])?;
        let service = ReferenceService::start_tls(&pki).await?;
        let client = terminal_client(&service.base_url(), &pki, KIOSK_ID)?;
        println!("clinic reception kiosk {KIOSK_ID} (accredited face recognition)");
        println!(
            "registration service: {} (TLS 1.3, this kiosk's client certificate)",
            service.base_url()
        );

        let (card, image) = face_card_on_contactless_reader()?;
        let visit = kiosk_visit(&card, &image, &client).await?;
        println!(
            "card on the reader: {} link, face-authentication card (no PIN)",
            if visit.contactless {
                "contactless"
            } else {
                "contact"
            }
        );
        println!();
        show(
            "1. registration (health-insurance use)",
            &visit.registration,
        );
        show("2. eligibility check", &visit.eligibility);
        if let Outcome::Eligible(result) = &visit.eligibility.report.outcome {
            println!(
                "  insurer: {} ({}), qualification validity {}",
                result.insurance.insurer_name,
                result.insurance.insurer_number,
                result.qualification_validity
            );
        }
        println!();
        println!(
            "registrations stored at the service: {}",
            service.registration_count().await?
        );
        service.stop().await;
        Ok(())
    })
}
