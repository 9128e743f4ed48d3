//! The end-to-end scenarios, run over HTTP against the real service with simulated cards, on
//! any database the caller names (SQLite in `e2e_sqlite.rs`, PostgreSQL in `e2e_postgres.rs`).

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use mynacard_registration::driver::{self, RunReport, ServiceClient};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::{HttpFailure, HttpMethod, HttpRequest, HttpResponse, Machine};
use mynacard_registration::messages::{
    EligibilityResult, Method, RegistrationResult, StartSession, TerminalKind,
};
use mynacard_registration::{ErrorBody, ErrorCode, Outcome, RevocationReason, V1};
use mynacard_registry::RunningService;

use super::*;

type Hook<'a> = Box<dyn Fn(&HttpRequest, &HttpResponse) + Send + Sync + 'a>;

/// A service client that keeps every exchange and can act after an answer arrives.
pub struct Recorder<'a> {
    inner: HttpClient,
    pub log: Mutex<Vec<(HttpRequest, Option<HttpResponse>)>>,
    hook: Option<Hook<'a>>,
}

impl<'a> Recorder<'a> {
    pub fn new(base_url: &str) -> Self {
        Recorder {
            inner: HttpClient::new(base_url).expect("client"),
            log: Mutex::new(Vec::new()),
            hook: None,
        }
    }

    pub fn with_hook(
        mut self,
        hook: impl Fn(&HttpRequest, &HttpResponse) + Send + Sync + 'a,
    ) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    pub fn last_proof(&self) -> (String, Vec<u8>) {
        let log = self.log.lock().expect("log");
        let (req, _) = log
            .iter()
            .rev()
            .find(|(r, _)| r.path.ends_with("/proof"))
            .expect("a proof was sent");
        (req.path.clone(), req.body.clone().expect("body"))
    }
}

#[async_trait]
impl ServiceClient for Recorder<'_> {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let answer = self.inner.send(request).await;
        if let (Some(hook), Ok(response)) = (&self.hook, &answer) {
            hook(request, response);
        }
        self.log
            .lock()
            .expect("log")
            .push((request.clone(), answer.as_ref().ok().cloned()));
        answer
    }
}

async fn spawn(db: &str, allow_test_roots: bool) -> RunningService {
    mynacard_registry::spawn(service_config(db, allow_test_roots))
        .await
        .expect("service starts")
}

/// Checks how many registrations the service holds, then stops it.
async fn stop_with_registrations(service: RunningService, expected: i64) {
    assert_eq!(service.registration_count().await.expect("count"), expected);
    service.shutdown().await;
}

async fn run_with(
    machine: Machine,
    sim: &SimCard,
    client: &Recorder<'_>,
    terminal: &mut SimTerminal,
) -> RunReport {
    let mut channel = sim.channel();
    driver::run(machine, &mut channel, client, terminal)
        .await
        .expect("driver")
}

/// The id of a new registration with the adult's insurer.
fn registered(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Registered {
            registration_id,
            insurer_name,
        } => {
            assert_eq!(insurer_name.as_deref(), Some("みらい健康保険組合"));
            registration_id.clone()
        }
        other => panic!("expected registered, got {other:?}"),
    }
}

/// The registration `id` with the adult's insurer, found already there.
fn already_registered(id: &str) -> Outcome {
    Outcome::AlreadyRegistered {
        registration_id: id.into(),
        insurer_name: Some("みらい健康保険組合".into()),
    }
}

fn eligible(outcome: &Outcome) -> &EligibilityResult {
    match outcome {
        Outcome::Eligible(r) => r,
        other => panic!("expected eligible, got {other:?}"),
    }
}

/// Smartphone app and ATM registrations with the PIN; a repeat is `already_registered`.
pub async fn smartphone_and_atm_registration(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();

    let (adult, _) = card("adult");
    let mut phone = SimTerminal::with_pin("1234");
    let report = run(pin_registration_in_app(), &adult, &url, &mut phone).await;
    let id = registered(&report.outcome);
    assert_eq!(
        phone.consents_shown, 1,
        "consent shown once, before the PIN"
    );
    assert_eq!(
        phone.pins_asked,
        vec![Some(3)],
        "tries left read before the PIN was asked"
    );
    // SELECT AP, one extended READ by short EF identifier, tries left, VERIFY, SIGN: files
    // and keys by identifier, no SELECT EF.
    assert_eq!(report.apdus, 5, "{report:?}");

    let report = run_with_pin(pin_registration_in_app(), &adult, &url, "1234").await;
    assert_eq!(report.outcome, already_registered(&id));

    let (child, _) = card("under15");
    let report = run_with_pin(pin_registration_at_atm(), &child, &url, "1234").await;
    assert_ne!(registered(&report.outcome), id);
    stop_with_registrations(service, 2).await;
}

/// Readers that cap answers at 128 bytes without saying so. One that leaves the rest to GET
/// RESPONSE registers as any other (the certificate read by SFI, every extra APDU a GET
/// RESPONSE); one that drops the rest still gives the whole certificate (read on at its
/// offset), but the cut signature ends the flow with a card error and nothing is registered.
pub async fn registration_through_capped_readers(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();

    let (plain, _) = card("contactless");
    let (get_response, _) = card("capped-reader");
    let report = run_with_pin(pin_registration_in_app(), &get_response, &url, "1234").await;
    registered(&report.outcome);
    let get_responses = get_response
        .log()
        .entries()
        .iter()
        .filter(|e| e.command.get(1) == Some(&0xC0))
        .count() as u32;
    assert!(get_responses > 0);
    assert_eq!(report.apdus, 5 + get_responses, "{report:?}");

    let (dropped, _) = card("capped-reader-dropped");
    let report = run_with_pin(pin_registration_at_atm(), &dropped, &url, "1234").await;
    assert!(
        matches!(report.outcome, Outcome::CardError { .. }),
        "{:?}",
        report.outcome
    );
    // The signature was asked for once; the certificate was read whole before it.
    let signs = dropped
        .log()
        .entries()
        .iter()
        .filter(|e| e.command.get(1) == Some(&0x2A))
        .count();
    assert_eq!(signs, 1);
    // And a reader that does not cap costs the five APDUs of every PIN registration.
    let report = run_with_pin(pin_registration_in_app(), &plain, &url, "1234").await;
    assert_eq!(report.apdus, 5, "{report:?}");
    stop_with_registrations(service, 1).await;
}

/// A smartphone token (`JPKIAPGPSETOKEN`) keeps its auth certificate behind the PIN. It
/// registers through the app (consent, tries left, PIN, VERIFY, then the certificate, then the
/// signature); the registration is the person's, so their card finds it, and the phone checks
/// eligibility at the point of use.
pub async fn smartphone_token_registration(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (phone_sim, phone_image) = card("smartphone");
    let mut phone = SimTerminal::with_pin("1234");
    let report = run(pin_registration_in_app(), &phone_sim, &url, &mut phone).await;
    let id = registered(&report.outcome);
    assert_eq!(
        phone.consents_shown, 1,
        "consent shown once, before the PIN"
    );
    assert_eq!(phone.pins_asked, vec![Some(3)], "tries left read first");
    // SELECT AP, READ by identifier (6982), tries left, VERIFY, the certificate in 256-byte
    // READs (no extended length: the first by identifier, then SELECT EF and the rest by
    // offset), SIGN.
    let cert_reads = u32::try_from(phone_image.auth.cert_der.len().div_ceil(256)).unwrap();
    assert_eq!(report.apdus, 6 + cert_reads, "{report:?}");

    // The card of the same person finds the registration.
    let (adult, _) = card("adult");
    let report = run_with_pin(pin_registration_at_atm(), &adult, &url, "1234").await;
    assert_eq!(report.outcome, already_registered(&id));

    // Point of use with the phone.
    let report = run_with_pin(pin_check_at_clinic(), &phone_sim, &url, "1234").await;
    let r = eligible(&report.outcome);
    assert_eq!(r.registration_id, id);
    assert!(!r.grace && !r.relinked, "{r:?}");
    assert_eq!(r.insurance.number, "3456");

    // A wrong PIN spends one try, once, and the certificate is never read.
    let report = run_with_pin(pin_check_at_clinic(), &phone_sim, &url, "9999").await;
    assert_eq!(report.outcome, Outcome::WrongPin { retries_left: 2 });
    // SELECT AP, READ (6982), tries left, VERIFY.
    assert_eq!(report.apdus, 4, "{report:?}");
    stop_with_registrations(service, 1).await;
}

/// An accredited kiosk registers a face-authentication card (no PIN at all).
pub async fn kiosk_face_registration(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (sim, image) = card("face-auth");
    let mut kiosk = SimTerminal::face(&image, KIOSK);
    let report = run(face_registration_at_kiosk(), &sim, &url, &mut kiosk).await;
    match &report.outcome {
        Outcome::Registered { insurer_name, .. } => {
            assert_eq!(insurer_name.as_deref(), Some("さくら市国民健康保険"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        kiosk.photo_len > 0,
        "the photo went to the terminal's matcher"
    );
    assert!(kiosk.pins_asked.is_empty());

    // The same card through PIN mode is sent to a face terminal instead.
    let report = run_with_pin(pin_registration_at_atm(), &sim, &url, "1234").await;
    assert_eq!(report.outcome, Outcome::NoAuthPin);

    // At the point of use, the clinic's face reader confirms eligibility.
    let mut clinic = SimTerminal::face(&image, CLINIC);
    let report = run(face_check_at_clinic(), &sim, &url, &mut clinic).await;
    assert_eq!(eligible(&report.outcome).insurance.number, "1122");
    service.shutdown().await;
}

/// A face registration from a terminal the service does not know is refused, and so is a
/// forged attestation from a known one.
pub async fn face_from_unknown_terminal_rejected(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (sim, image) = card("face-auth");
    let mut rogue = SimTerminal::face(&image, ROGUE_KIOSK);
    let report = run(
        Machine::register_with_face(flow(ROGUE_KIOSK, TerminalKind::Kiosk)),
        &sim,
        &url,
        &mut rogue,
    )
    .await;
    assert_eq!(report.outcome, Outcome::TerminalNotAccepted);

    // Known terminal id, wrong key.
    let mut forged = SimTerminal::face(&image, KIOSK);
    forged.attestation = Some(ROGUE_KIOSK.into());
    let report = run(face_registration_at_kiosk(), &sim, &url, &mut forged).await;
    assert!(
        matches!(
            &report.outcome,
            Outcome::Rejected {
                code: ErrorCode::AttestationInvalid,
                ..
            }
        ),
        "{:?}",
        report.outcome
    );
    stop_with_registrations(service, 0).await;
}

/// After a reissue, the new card's first eligibility check relinks the registration.
pub async fn eligibility_after_reissue_relinks(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (old, _) = card("adult");
    let report = run_with_pin(pin_registration_in_app(), &old, &url, "1234").await;
    let id = registered(&report.outcome);

    let (new, _) = card("reissued");
    let report = run_with_pin(pin_check_at_clinic(), &new, &url, "1234").await;
    let r = eligible(&report.outcome);
    assert!(r.relinked, "{r:?}");
    assert!(!r.grace);
    assert_eq!(r.registration_id, id);
    assert_eq!(r.qualification_validity, 1);
    assert_eq!(
        (
            r.insurance.insurer_number.as_str(),
            r.insurance.branch.as_str()
        ),
        ("06139999", "01")
    );
    let report = run_with_pin(pin_check_at_clinic(), &new, &url, "1234").await;
    assert!(!eligible(&report.outcome).relinked);
    // Registering the new card now finds the registration it was moved to.
    let report = run_with_pin(pin_registration_in_app(), &new, &url, "1234").await;
    assert!(
        matches!(report.outcome, Outcome::AlreadyRegistered { ref registration_id, .. } if *registration_id == id),
        "{:?}",
        report.outcome
    );
    stop_with_registrations(service, 1).await;
}

/// A revoked certificate is refused with its reason.
pub async fn revoked_certificate_rejected(db: String) {
    let service = spawn(&db, true).await;
    let (sim, _) = card("revoked-auth");
    let report = run_with_pin(pin_registration_in_app(), &sim, &service.base_url(), "1234").await;
    assert_eq!(
        report.outcome,
        Outcome::CertificateRevoked {
            reason: Some(RevocationReason::KeyCompromise)
        }
    );
    stop_with_registrations(service, 0).await;
}

/// A service configured with the production roots only refuses a test-hierarchy card.
pub async fn test_card_rejected_by_production_service(db: String) {
    let service = spawn(&db, false).await;
    let (sim, _) = card("adult");
    let report = run_with_pin(pin_registration_in_app(), &sim, &service.base_url(), "1234").await;
    assert_eq!(report.outcome, Outcome::CertificateUntrusted);
    stop_with_registrations(service, 0).await;
}

async fn post(client: &HttpClient, path: &str, body: Vec<u8>) -> HttpResponse {
    client
        .send(&HttpRequest {
            method: HttpMethod::Post,
            path: path.into(),
            headers: Vec::new(),
            body: Some(body),
            delay_ms: 0,
            attempt: 1,
        })
        .await
        .expect("answer")
}

/// Resending a proof to its session returns the first result; the same proof in another
/// session is a replay and is refused.
pub async fn replayed_proof_rejected(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (sim, _) = card("adult");
    let recorder = Recorder::new(&url);
    let report = run_with(
        pin_registration_in_app(),
        &sim,
        &recorder,
        &mut SimTerminal::with_pin("1234"),
    )
    .await;
    let id = registered(&report.outcome);
    let (path, proof) = recorder.last_proof();
    let client = HttpClient::new(&url).expect("client");

    let again = post(&client, &path, proof.clone()).await;
    assert_eq!(again.status, 200);
    let result: RegistrationResult = serde_json::from_slice(&again.body).expect("result");
    assert_eq!(result.registration_id, id);

    let start = StartSession {
        v: V1,
        terminal_id: APP.into(),
        terminal_kind: TerminalKind::App,
        locale: "ja".into(),
        methods_supported: vec![Method::PinSignature],
    };
    let challenge = post(
        &client,
        "/v1/registrations",
        serde_json::to_vec(&start).expect("json"),
    )
    .await;
    assert_eq!(challenge.status, 201);
    let challenge: mynacard_registration::Challenge =
        serde_json::from_slice(&challenge.body).expect("challenge");
    let replay = post(
        &client,
        &format!("/v1/registrations/{}/proof", challenge.session_id),
        proof,
    )
    .await;
    assert_eq!(replay.status, 409);
    let body: ErrorBody = serde_json::from_slice(&replay.body).expect("error body");
    assert_eq!(body.code, ErrorCode::NonceReplay);
    stop_with_registrations(service, 1).await;
}

/// A proof that arrives after the challenge expired is refused.
pub async fn proof_after_expiry_rejected(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (sim, _) = card("adult");
    let recorder = Recorder::new(&url).with_hook(|req, resp| {
        if req.path == "/v1/registrations" && resp.status == 201 {
            service.advance_clock(Duration::from_secs(121));
        }
    });
    let report = run_with(
        pin_registration_in_app(),
        &sim,
        &recorder,
        &mut SimTerminal::with_pin("1234"),
    )
    .await;
    assert_eq!(report.outcome, Outcome::SessionExpired);
    drop(recorder);
    stop_with_registrations(service, 0).await;
}

/// A wrong PIN spends one try and ends the flow; the next flow shows the count and succeeds.
pub async fn wrong_pin_then_registration(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (sim, _) = card("adult");
    let report = run_with_pin(pin_registration_in_app(), &sim, &url, "9999").await;
    assert_eq!(report.outcome, Outcome::WrongPin { retries_left: 2 });
    let mut terminal = SimTerminal::with_pin("1234");
    let report = run(pin_registration_in_app(), &sim, &url, &mut terminal).await;
    registered(&report.outcome);
    assert_eq!(terminal.pins_asked, vec![Some(2)]);

    let (blocked, _) = card("blocked-auth-pin");
    let mut terminal = SimTerminal::with_pin("1234");
    let report = run(pin_registration_in_app(), &blocked, &url, &mut terminal).await;
    assert_eq!(report.outcome, Outcome::PinBlocked);
    assert!(
        terminal.pins_asked.is_empty(),
        "a blocked PIN is never asked"
    );
    service.shutdown().await;
}

/// Deregistration withdraws the registration; eligibility then finds none.
pub async fn deregistration(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (sim, _) = card("adult");
    let report = run_with_pin(pin_registration_in_app(), &sim, &url, "1234").await;
    let id = registered(&report.outcome);
    let mut terminal = SimTerminal::with_pin("1234");
    let report = run(deregistration_in_app(), &sim, &url, &mut terminal).await;
    assert_eq!(
        report.outcome,
        Outcome::Deregistered {
            registration_id: id
        }
    );
    assert_eq!(terminal.consents_shown, 0);
    let report = run_with_pin(pin_check_at_clinic(), &sim, &url, "1234").await;
    assert_eq!(report.outcome, Outcome::NotRegistered);
    service.shutdown().await;
}

/// Maintenance mode answers 503 with Retry-After before any card operation spends anything.
pub async fn maintenance(db: String) {
    let service = spawn(&db, true).await;
    service.set_maintenance(true);
    let (sim, _) = card("adult");
    let report = run_with_pin(pin_registration_in_app(), &sim, &service.base_url(), "1234").await;
    assert!(
        matches!(
            report.outcome,
            Outcome::Maintenance {
                retry_after: Some(_)
            }
        ),
        "{:?}",
        report.outcome
    );
    service.shutdown().await;
}

/// Two terminals register the same card at the same moment: one registration results, and
/// both are told its id.
pub async fn concurrent_registrations_of_one_card(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    // Two handles on the same card data (as if the card were read twice).
    let (first, image) = card("adult");
    let second = SimCard::from_image(image);
    let run_one = |sim: SimCard, machine: Machine| {
        let url = url.clone();
        async move { run_with_pin(machine, &sim, &url, "1234").await.outcome }
    };
    let (a, b) = tokio::join!(
        tokio::spawn(run_one(first, pin_registration_in_app())),
        tokio::spawn(run_one(second, pin_registration_at_atm())),
    );
    let (a, b) = (a.expect("task"), b.expect("task"));
    let id = |o: &Outcome| match o {
        Outcome::Registered {
            registration_id, ..
        }
        | Outcome::AlreadyRegistered {
            registration_id, ..
        } => registration_id.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(id(&a), id(&b));
    let new = [&a, &b]
        .iter()
        .filter(|o| matches!(o, Outcome::Registered { .. }))
        .count();
    assert_eq!(new, 1, "{a:?} {b:?}");
    stop_with_registrations(service, 1).await;
}

/// How [`ProofFault`] fails a proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LostProof {
    /// Never sent: no connection (a service that is down).
    NeverSent,
    /// The first one reaches the service and its answer is lost (the service died after
    /// committing); later ones find no connection.
    AnswerLost,
}

/// A service client whose proofs fail as `mode` says; everything else reaches the service.
struct ProofFault {
    inner: HttpClient,
    mode: LostProof,
    proofs: Mutex<u32>,
}

#[async_trait]
impl ServiceClient for ProofFault {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure> {
        if !request.path.ends_with("/proof") {
            return self.inner.send(request).await;
        }
        let first = {
            let mut proofs = self.proofs.lock().expect("count");
            *proofs += 1;
            *proofs == 1
        };
        if self.mode == LostProof::AnswerLost && first {
            // It arrives and is committed; the answer does not come back.
            let _ = self.inner.send(request).await;
            return Err(HttpFailure::Interrupted);
        }
        Err(HttpFailure::Connect)
    }
}

/// A proof whose answer was lost may have registered the card: the outcome says so and the
/// report names the session. A proof that never left cannot have: the outcome says that.
pub async fn lost_proof_answers_are_told_from_proofs_never_sent(db: String) {
    let service = spawn(&db, true).await;
    let url = service.base_url();
    let (adult, _) = card("adult");
    for (mode, may_have_arrived, registrations) in [
        (LostProof::NeverSent, false, 0),
        (LostProof::AnswerLost, true, 1),
    ] {
        let client = ProofFault {
            inner: HttpClient::new(&url).expect("client"),
            mode,
            proofs: Mutex::new(0),
        };
        // Quick resends: three proofs in all.
        let machine =
            Machine::register_with_pin(flow(APP, TerminalKind::App).with_proof_retries(2, 10));
        let mut channel = adult.channel();
        let report = driver::run(
            machine,
            &mut channel,
            &client,
            &mut SimTerminal::with_pin("1234"),
        )
        .await
        .expect("driver");
        assert_eq!(
            report.outcome,
            Outcome::ServiceUnreachable {
                proof_may_have_arrived: may_have_arrived
            },
            "{mode:?}"
        );
        assert_eq!(*client.proofs.lock().expect("count"), 3, "{mode:?}: resent");
        let session = report.session_id.clone().expect("the session is named");
        assert!(!session.is_empty());
        assert_eq!(
            service.registration_count().await.expect("count"),
            registrations,
            "{mode:?}"
        );
    }
    // What the outcome says to do: the card is registered, and a new run finds it so.
    let report = run_with_pin(pin_registration_in_app(), &adult, &url, "1234").await;
    assert!(
        matches!(report.outcome, Outcome::AlreadyRegistered { .. }),
        "{report:?}"
    );
    stop_with_registrations(service, 1).await;
}
