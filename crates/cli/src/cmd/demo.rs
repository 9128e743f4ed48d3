//! `mynacard demo`: the whole registration job on this machine, with nothing but this binary.
//!
//! Starts the reference registration service on an embedded SQLite file (loopback, a free
//! port, HTTPS with development certificates, the simulated card's test hierarchy accepted),
//! then runs with simulated cards, the ATM, kiosk and clinic presenting their terminal client
//! certificates (mutual TLS) and the app without one (it attests instead):
//! a smartphone registration, an ATM registration, a kiosk registration of a face-authentication
//! card, and a clinic's eligibility check with the replacement card of the first person (which
//! relinks the registration). Prints what each ended in.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use async_trait::async_trait;
use clap::Args;
use mynacard_registration::attestation::SoftwareAttestationKey;
use mynacard_registration::driver::{self, Terminal};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::{ConsentPrompt, FlowConfig, Machine};
use mynacard_registration::messages::{FaceDecision, FaceMatch, TerminalKind};
use mynacard_registration::{Outcome, Sha256Digest};
use mynacard_registry::dev_pki::DevPki;
use mynacard_registry::seed::{Seed, SeedCertificate, SeedInsurance, SeedPerson};
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::pki::{CaKind, TestPki};
use mynacard_sim::profile::Catalogue;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::cmd::register::{FlowResult, outcome_kind, runtime, simulated_collation_number_b};
use crate::exit::{CliError, ExitCode};
use crate::output::Output;

/// A second adult, defined here, so the ATM registration is a different person's.
const DEMO_PROFILES: &str = r#"
[profile.demo-atm]
base = "adult"
description = "Demo: a second adult, who registers at an ATM."
card_id = "demo-atm"

[profile.demo-atm.person]
name = "見本　次子"
birth_date = 1988-09-12
sex = "2"
my_number = "98765432109"

[profile.demo-atm.face]
expiry = 2034-09-12
security_code = "4471"
serial = "131000000000090"

[profile.demo-atm.auth]
issued = 2025-04-01

[profile.demo-atm.sign]
issued = 2025-04-01
"#;

/// `mynacard demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Database URL (default: a new SQLite file in a temporary directory, removed afterwards).
    #[arg(long, value_name = "URL")]
    db: Option<String>,

    /// Language of the messages: `ja` or `en`.
    #[arg(long, value_name = "LANG", default_value = "en")]
    locale: String,
}

#[derive(Debug, Serialize)]
struct DemoFlow {
    step: u8,
    title: &'static str,
    card_profile: &'static str,
    expected: &'static str,
    as_expected: bool,
    consent_shown: bool,
    /// The terminal presented its client certificate (mutual TLS).
    client_certificate: bool,
    #[serde(flatten)]
    result: FlowResult,
}

#[derive(Debug, Serialize)]
struct DemoSummary {
    service_url: String,
    database: String,
    consent: mynacard_registration::ConsentRef,
    flows: Vec<DemoFlow>,
    registrations_stored: i64,
    ok: bool,
}

impl fmt::Display for DemoSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "mynacard demo")?;
        writeln!(
            f,
            "  service:  {} (reference registry, TLS 1.3, terminal client certificates)",
            self.service_url
        )?;
        writeln!(f, "  database: {}", self.database)?;
        writeln!(
            f,
            "  consent:  {} {} sha256 {}",
            self.consent.doc_id,
            self.consent.version,
            self.consent.sha256.to_hex()
        )?;
        for flow in &self.flows {
            writeln!(f)?;
            writeln!(
                f,
                "{}. {}  [card: sim:{}{}]  {}",
                flow.step,
                flow.title,
                flow.card_profile,
                if flow.client_certificate {
                    ", client certificate"
                } else {
                    ""
                },
                if flow.as_expected { "ok" } else { "UNEXPECTED" }
            )?;
            for line in flow.result.to_string().lines() {
                writeln!(f, "   {line}")?;
            }
        }
        writeln!(f)?;
        write!(
            f,
            "{} registrations stored. {}",
            self.registrations_stored,
            if self.ok {
                "Every flow ended as expected."
            } else {
                "Some flows did not end as expected."
            }
        )
    }
}

/// The demo's terminals: they agree to the consent, type the simulated card's PIN, read
/// 照合番号B off the card face, see the card holder in the camera and attest with the test key
/// of their terminal id.
struct DemoTerminal {
    image: CardImage,
    attestation: SoftwareAttestationKey,
    consent_shown: bool,
}

#[async_trait]
impl Terminal for DemoTerminal {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        self.consent_shown = prompt.document.sections_for(prompt.op).next().is_some();
        true
    }

    async fn pin(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.image
            .auth_pin
            .as_ref()
            .and_then(|p| String::from_utf8(p.value.to_vec()).ok())
            .map(Zeroizing::new)
    }

    async fn collation_number_b(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        simulated_collation_number_b(&self.image)
    }

    async fn match_face(&mut self, photo: &[u8]) -> Option<FaceMatch> {
        let matched = !photo.is_empty() && photo == self.image.face.photo.as_slice();
        Some(FaceMatch {
            decision: if matched {
                FaceDecision::Match
            } else {
                FaceDecision::NoMatch
            },
            score_permille: if matched { 962 } else { 120 },
            threshold_permille: 900,
        })
    }

    async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        Some(self.attestation.sign(message))
    }
}

fn failure(
    message: &str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> CliError + '_ {
    move |e| CliError::new(ExitCode::Failure, message).with_source(e)
}

/// The service's seed: the built-in persons and terminals, plus the demo's ATM user.
fn seed(catalogue: &Catalogue, pki: &TestPki) -> Result<Seed, CliError> {
    let mut seed = Seed::builtin().map_err(|e| failure("built-in seed")(Box::new(e)))?;
    let fp = Sha256Digest::of(pki.root_der(CaKind::Auth));
    let root = format!("test-{}", hex::encode(&fp.as_bytes()[..8]));
    let serial = catalogue
        .get("demo-atm")
        .ok()
        .and_then(|p| p.serial(CaKind::Auth, pki))
        .ok_or_else(|| CliError::new(ExitCode::Failure, "demo profile has no auth certificate"))?;
    seed.persons.push(SeedPerson {
        linkage_code: "LNK-DEMO-ATM".into(),
        note: Some("mynacard demo: the ATM user".into()),
        restricted: false,
        form: Default::default(),
        certificates: vec![SeedCertificate {
            root,
            serial: format!("{serial:x}"),
        }],
        insurance: vec![SeedInsurance {
            insurer_number: "06270011".into(),
            symbol: "7".into(),
            number: "2024".into(),
            branch: "00".into(),
            insurer_name: "あおば銀行健康保険組合".into(),
        }],
    });
    Ok(seed)
}

struct Step {
    title: &'static str,
    profile: &'static str,
    terminal_id: &'static str,
    kind: TerminalKind,
    machine: fn(FlowConfig) -> Machine,
    expected: &'static str,
}

const STEPS: [Step; 4] = [
    Step {
        title: "Smartphone app registration (auth PIN over NFC)",
        profile: "adult",
        terminal_id: "app-0001",
        kind: TerminalKind::App,
        machine: Machine::register_with_pin,
        expected: "registered",
    },
    Step {
        title: "ATM registration (auth PIN on the ATM's PIN pad)",
        profile: "demo-atm",
        terminal_id: "atm-0001",
        kind: TerminalKind::Atm,
        machine: Machine::register_with_pin,
        expected: "registered",
    },
    Step {
        title: "Face-recognition kiosk registration (face-authentication card, no PIN)",
        profile: "face-auth",
        terminal_id: "kiosk-0001",
        kind: TerminalKind::Kiosk,
        machine: Machine::register_with_face,
        expected: "registered",
    },
    Step {
        title: "Clinic eligibility check with the reissued card of step 1",
        profile: "reissued",
        terminal_id: "clinic-0001",
        kind: TerminalKind::FaceReader,
        machine: Machine::check_eligibility_with_pin,
        expected: "eligible",
    },
];

/// A client of the demo's service: trusting only its development CA, presenting the client
/// certificate of `terminal_id` when given.
fn demo_client(url: &str, tls: &DevPki, terminal_id: Option<&str>) -> Result<HttpClient, CliError> {
    let http = |e| failure("HTTP client")(Box::new(e));
    let mut builder = HttpClient::builder(url)
        .trust_only(tls.service_ca_pem.as_bytes())
        .map_err(http)?;
    if let Some(identity) = terminal_id.and_then(|id| tls.terminal(id)) {
        builder = builder
            .client_identity(identity.pem.as_bytes())
            .map_err(http)?;
    }
    builder.build().map_err(http)
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `mynacard demo`.
///
/// # Errors
/// When the service cannot start, or a flow does not end as expected.
pub(crate) fn run(args: DemoArgs, out: &Output) -> Result<(), CliError> {
    let pki = TestPki::shared().map_err(|e| failure("simulated card PKI")(Box::new(e)))?;
    let mut catalogue =
        Catalogue::builtin().map_err(|e| failure("simulated card profiles")(Box::new(e)))?;
    catalogue
        .extend_from_str(DEMO_PROFILES)
        .map_err(|e| failure("demo profile")(Box::new(e)))?;

    let (db, _temp) = match &args.db {
        Some(url) => (url.clone(), None),
        None => {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or_default();
            let dir =
                std::env::temp_dir().join(format!("mynacard-demo-{}-{nanos}", std::process::id()));
            std::fs::create_dir_all(&dir)
                .map_err(|e| failure("temporary directory")(Box::new(e)))?;
            (
                format!("sqlite://{}", dir.join("registry.db").display()),
                Some(TempDir(dir)),
            )
        }
    };

    let mut config = mynacard_registry::Config::new(db.clone());
    config.seed = seed(&catalogue, pki)?;
    mynacard_registry::options::simulator_trust(SystemTime::now())
        .map_err(|e| failure("simulated card trust")(Box::new(e)))?
        .apply_to(&mut config);
    // Development certificates for this run: the service's, and one per terminal of the steps.
    let terminal_ids: Vec<&str> = STEPS.iter().map(|s| s.terminal_id).collect();
    let tls = DevPki::generate(&["127.0.0.1"], &terminal_ids)
        .map_err(|e| failure("development certificates")(Box::new(e)))?;
    // Client certificates optional: the app connects without one.
    config.tls = Some(tls.tls_settings(false));

    let rt = runtime()?;
    let summary = rt.block_on(async {
        let service = mynacard_registry::spawn(config)
            .await
            .map_err(|e| failure("the registration service did not start")(Box::new(e)))?;
        let url = service.base_url();
        let mut flows = Vec::new();
        for (i, step) in STEPS.iter().enumerate() {
            let client_certificate = step.kind != TerminalKind::App;
            let client = demo_client(&url, &tls, client_certificate.then_some(step.terminal_id))?;
            let image = catalogue
                .get(step.profile)
                .and_then(|p| p.build_image(pki))
                .map_err(|e| failure("simulated card")(Box::new(e)))?;
            let sim = SimCard::from_image(image.clone());
            let mut channel = sim.channel();
            let mut terminal = DemoTerminal {
                image,
                attestation: SoftwareAttestationKey::for_testing(step.terminal_id),
                consent_shown: false,
            };
            let config =
                FlowConfig::new(step.terminal_id, step.kind).with_locale(args.locale.clone());
            let machine = (step.machine)(config);
            let op = machine.operation();
            let report = driver::run(machine, &mut channel, &client, &mut terminal)
                .await
                .map_err(|e| failure("the flow stopped")(Box::new(e)))?;
            let as_expected = outcome_kind(&report.outcome) == step.expected
                && match &report.outcome {
                    Outcome::Eligible(r) => r.relinked,
                    _ => true,
                };
            flows.push(DemoFlow {
                step: u8::try_from(i + 1).unwrap_or(u8::MAX),
                title: step.title,
                card_profile: step.profile,
                expected: step.expected,
                as_expected,
                consent_shown: terminal.consent_shown,
                client_certificate,
                result: FlowResult::new(op, step.terminal_id, &report, &args.locale),
            });
        }
        let registrations_stored = service
            .registration_count()
            .await
            .map_err(|e| failure("registration count")(Box::new(e)))?;
        service.shutdown().await;
        let consent = mynacard_registration::consent::current()
            .reference()
            .map_err(|e| failure("consent document")(Box::new(e)))?;
        let ok = flows.iter().all(|f| f.as_expected);
        Ok::<_, CliError>(DemoSummary {
            service_url: url,
            database: db.clone(),
            consent,
            flows,
            registrations_stored,
            ok,
        })
    })?;
    let ok = summary.ok;
    out.print(&summary)?;
    if ok {
        Ok(())
    } else {
        Err(CliError::new(
            ExitCode::Failure,
            "the demo did not end as expected",
        ))
    }
}
