//! End-to-end support: the reference service configured for the simulated cards, a simulated
//! terminal (PIN pad, OCR, camera, attestation key), and a runner.

#![allow(dead_code, unreachable_pub)]

pub mod scenarios;

use async_trait::async_trait;
use mynacard_registration::Sha256Digest;
use mynacard_registration::attestation::SoftwareAttestationKey;
use mynacard_registration::driver::{self, RunReport, Terminal};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::{ConsentPrompt, FlowConfig, Machine};
use mynacard_registration::messages::{FaceDecision, FaceMatch, TerminalKind};
use mynacard_registry::seed::{Seed, SeedCertificate, SeedInsurance, SeedPerson, SeedTerminal};
use mynacard_registry::test_kit::TestDb;
use mynacard_registry::upstream::CertificateForm;
use mynacard_registry::{Config, RunningService};
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::pki::{CaKind, TestPki};
use mynacard_sim::profile::Catalogue;
use zeroize::Zeroizing;

/// Terminals of the seed.
pub const APP: &str = "app-0001";
pub const ATM: &str = "atm-0001";
pub const KIOSK: &str = "kiosk-0001";
pub const CLINIC: &str = "clinic-0001";
/// A face terminal the service does not know (it has a key, but no seed entry).
pub const ROGUE_KIOSK: &str = "kiosk-9999";

pub fn pki() -> &'static TestPki {
    TestPki::shared().expect("test PKI")
}

pub fn catalogue() -> Catalogue {
    Catalogue::builtin().expect("built-in profiles")
}

/// The id the service stores a test-root registration under.
pub fn test_root_id() -> String {
    let fp = Sha256Digest::of(pki().root_der(CaKind::Auth));
    format!("test-{}", hex::encode(&fp.as_bytes()[..8]))
}

fn serial_hex(profile: &str) -> String {
    let serial = catalogue()
        .get(profile)
        .expect("profile")
        .serial(CaKind::Auth, pki())
        .expect("auth serial");
    format!("{serial:x}")
}

fn insurance(number: &str, name: &str) -> SeedInsurance {
    SeedInsurance {
        insurer_number: "06139999".into(),
        symbol: "12".into(),
        number: number.into(),
        branch: "01".into(),
        insurer_name: name.into(),
    }
}

fn person(code: &str, profiles: &[&str], insured: Vec<SeedInsurance>) -> SeedPerson {
    SeedPerson {
        linkage_code: code.into(),
        note: Some(profiles.join(", ")),
        restricted: false,
        form: CertificateForm::Card,
        certificates: profiles
            .iter()
            .map(|p| SeedCertificate {
                root: test_root_id(),
                serial: serial_hex(p),
            })
            .collect(),
        insurance: insured,
    }
}

pub fn attestation_key(terminal: &str) -> SoftwareAttestationKey {
    SoftwareAttestationKey::for_testing(terminal)
}

fn terminal(id: &str, kind: &str, face: bool) -> SeedTerminal {
    SeedTerminal {
        id: id.into(),
        kind: kind.into(),
        face_approved: face,
        attestation_key: face.then(|| attestation_key(id).public_key_base64url().expect("key")),
    }
}

/// The persons behind the simulated cards, and the terminals.
pub fn seed() -> Seed {
    Seed {
        persons: vec![
            person(
                "LNK-ADULT",
                &["adult", "reissued"],
                vec![insurance("3456", "みらい健康保険組合")],
            ),
            // The adult's smartphone certificate, linked to the card's.
            SeedPerson {
                form: CertificateForm::Smartphone,
                ..person("LNK-ADULT", &["smartphone"], Vec::new())
            },
            person(
                "LNK-CHILD",
                &["under15"],
                vec![insurance("7788", "みらい健康保険組合")],
            ),
            person(
                "LNK-FACE",
                &["face-auth"],
                vec![insurance("1122", "さくら市国民健康保険")],
            ),
            person(
                "LNK-REVOKED",
                &["revoked-auth"],
                vec![insurance("9900", "みらい健康保険組合")],
            ),
            person(
                "LNK-BLOCKED",
                &["blocked-auth-pin"],
                vec![insurance("5544", "みらい健康保険組合")],
            ),
        ],
        terminals: vec![
            terminal(APP, "app", false),
            terminal(ATM, "atm", false),
            terminal(KIOSK, "kiosk", true),
            terminal(CLINIC, "face_reader", true),
        ],
    }
}

/// The service for the simulated cards on `database_url` (the test kit's), with this seed:
/// the test hierarchy and the simulator's CRL accepted when `allow_test_roots`, rate
/// limiting off.
pub fn service_config(database_url: &str, allow_test_roots: bool) -> Config {
    let mut config = if allow_test_roots {
        mynacard_registry::test_kit::config(database_url, std::time::SystemTime::now())
    } else {
        Config::new(database_url)
    };
    config.seed = seed();
    config.rate_limit = None;
    config
}

/// The reference service for the simulated cards on a fresh SQLite database of the test kit,
/// removed when stopped.
pub struct SqliteService {
    pub running: RunningService,
    db: TestDb,
}

impl SqliteService {
    /// Starts the service with the test roots allowed.
    pub async fn start() -> SqliteService {
        let db = mynacard_registry::test_kit::sqlite();
        let running = mynacard_registry::spawn(service_config(&db.url, true))
            .await
            .expect("service starts");
        SqliteService { running, db }
    }

    /// Where it listens.
    pub fn url(&self) -> String {
        self.running.base_url()
    }

    /// Stops the service, then removes its database.
    pub async fn stop(self) {
        self.running.shutdown().await;
        drop(self.db);
    }
}

/// A simulated card of a built-in profile.
pub fn card(profile: &str) -> (SimCard, CardImage) {
    let image = CardImage::from_profile_name(profile).expect("profile");
    (SimCard::from_image(image.clone()), image)
}

/// 照合番号B as a kiosk's OCR reads it from the card face: era-year birth date, expiry year,
/// security code.
pub fn collation_number_b(image: &CardImage) -> String {
    let b = image.collation_number_b().expect("collation number B");
    b.expose().to_owned()
}

/// A terminal that agrees, types a fixed PIN, reads 照合番号B, sees a matching face and
/// attests with its test key.
#[derive(Debug, Default)]
pub struct SimTerminal {
    pub pin: Option<String>,
    pub collation_b: Option<String>,
    pub attestation: Option<String>,
    pub decline: bool,
    pub face_score: u16,
    pub consents_shown: u32,
    pub pins_asked: Vec<Option<u8>>,
    pub photo_len: usize,
}

impl SimTerminal {
    pub fn with_pin(pin: &str) -> Self {
        SimTerminal {
            pin: Some(pin.into()),
            face_score: 950,
            ..Default::default()
        }
    }

    pub fn face(image: &CardImage, terminal_id: &str) -> Self {
        SimTerminal {
            collation_b: Some(collation_number_b(image)),
            attestation: Some(terminal_id.into()),
            face_score: 950,
            ..Default::default()
        }
    }
}

#[async_trait]
impl Terminal for SimTerminal {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        self.consents_shown += 1;
        assert!(!prompt.document.render(&prompt.locale, prompt.op).is_empty());
        !self.decline
    }

    async fn pin(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.pins_asked.push(retries_left);
        self.pin.take().map(Zeroizing::new)
    }

    async fn collation_number_b(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.collation_b.take().map(Zeroizing::new)
    }

    async fn match_face(&mut self, photo: &[u8]) -> Option<FaceMatch> {
        self.photo_len = photo.len();
        Some(FaceMatch {
            decision: if self.face_score >= 900 {
                FaceDecision::Match
            } else {
                FaceDecision::NoMatch
            },
            score_permille: self.face_score,
            threshold_permille: 900,
        })
    }

    async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        self.attestation
            .as_deref()
            .map(|id| attestation_key(id).sign(message))
    }
}

pub fn flow(terminal_id: &str, kind: TerminalKind) -> FlowConfig {
    FlowConfig::new(terminal_id, kind).with_proof_retries(6, 250)
}

/// A PIN registration from the smartphone app.
pub fn pin_registration_in_app() -> Machine {
    Machine::register_with_pin(flow(APP, TerminalKind::App))
}

/// A PIN registration at the ATM.
pub fn pin_registration_at_atm() -> Machine {
    Machine::register_with_pin(flow(ATM, TerminalKind::Atm))
}

/// A PIN eligibility check on the clinic's reader.
pub fn pin_check_at_clinic() -> Machine {
    Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader))
}

/// A withdrawal from the smartphone app.
pub fn deregistration_in_app() -> Machine {
    Machine::deregister(flow(APP, TerminalKind::App))
}

/// A face registration at the accredited kiosk.
pub fn face_registration_at_kiosk() -> Machine {
    Machine::register_with_face(flow(KIOSK, TerminalKind::Kiosk))
}

/// A face eligibility check on the clinic's reader.
pub fn face_check_at_clinic() -> Machine {
    Machine::check_eligibility_with_face(flow(CLINIC, TerminalKind::FaceReader))
}

/// Runs a machine against a simulated card and the service at `base_url`.
pub async fn run(
    machine: Machine,
    sim: &SimCard,
    base_url: &str,
    terminal: &mut SimTerminal,
) -> RunReport {
    let client = HttpClient::new(base_url).expect("client");
    let mut channel = sim.channel();
    driver::run(machine, &mut channel, &client, terminal)
        .await
        .expect("driver")
}

/// Runs a machine with a terminal that agrees and types `pin`.
pub async fn run_with_pin(machine: Machine, sim: &SimCard, base_url: &str, pin: &str) -> RunReport {
    run(machine, sim, base_url, &mut SimTerminal::with_pin(pin)).await
}
