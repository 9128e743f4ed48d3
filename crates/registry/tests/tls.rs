//! HTTPS and mutual TLS (protocol §3, §16.4) over real TLS on loopback, with SQLite: TLS 1.3
//! only, terminal client certificates that name the terminal, sessions bound to the terminal
//! that started them, and the program's TLS options.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use mynacard_registration::ErrorCode;
use mynacard_registration::driver::{self, RunReport, ServiceClient, Wait};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::{HttpFailure, HttpRequest, HttpResponse, Machine};
use mynacard_registration::messages::{RegistrationPending, TerminalKind, paths};
use mynacard_registration::outcome::Outcome;
use mynacard_registry::upstream::{UpstreamMode, UpstreamSwitch};
use mynacard_registry::{Config, RunningService};

use common::e2e::{PinTerminal, card, code, config, flow, registration_id};
use common::pending_scenarios::{pending_config, send_raw_with, switched_identity};
use common::tls::{TERMINAL_A, TERMINAL_B, TestPki};
use mynacard_registry::test_kit::{self as db, ServiceProcess};

fn pki() -> &'static TestPki {
    TestPki::shared()
}

/// The service on `config` with TLS: client certificates optional, or required.
async fn spawn_tls(mut config: Config, require: bool) -> RunningService {
    config.tls = Some(pki().settings(require));
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    assert!(service.base_url().starts_with("https://127.0.0.1:"));
    service
}

/// A PIN registration as terminal A.
async fn register_pin(service: &dyn ServiceClient, now: SystemTime) -> RunReport {
    register_pin_waiting(service, now, Wait::ForService).await
}

/// A PIN registration as terminal A, waiting for a pending one as `wait` allows.
async fn register_pin_waiting(
    service: &dyn ServiceClient,
    now: SystemTime,
    wait: Wait,
) -> RunReport {
    let sim = card("adult");
    let mut channel = sim.channel();
    let mut terminal = PinTerminal("1234");
    driver::run_waiting(
        Machine::register_with_pin(flow(TERMINAL_A, TerminalKind::Atm, now)),
        &mut channel,
        service,
        &mut terminal,
        wait,
    )
    .await
    .expect("flow runs")
}

/// Sends proofs through one client and everything else through another, recording what was
/// sent and answered; optionally tells when the first proof goes out.
struct Routed {
    other: HttpClient,
    proofs: HttpClient,
    log: Mutex<Vec<(HttpRequest, Option<HttpResponse>)>>,
    proof_sent: Option<Arc<tokio::sync::Notify>>,
}

impl Routed {
    fn new(other: HttpClient, proofs: HttpClient) -> Routed {
        Routed {
            other,
            proofs,
            log: Mutex::new(Vec::new()),
            proof_sent: None,
        }
    }

    fn first_proof(&self) -> (HttpRequest, Option<HttpResponse>) {
        self.log
            .lock()
            .expect("lock")
            .iter()
            .find(|(r, _)| r.path.ends_with("/proof"))
            .cloned()
            .expect("a proof was sent")
    }
}

#[async_trait]
impl ServiceClient for Routed {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let proof = request.path.ends_with("/proof");
        if proof && let Some(notify) = &self.proof_sent {
            notify.notify_one();
        }
        let client = if proof { &self.proofs } else { &self.other };
        let answer = client.send(request).await;
        self.log
            .lock()
            .expect("lock")
            .push((request.clone(), answer.as_ref().ok().cloned()));
        answer
    }
}

/// Status and body of a raw request.
async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> (u16, String) {
    let raw = send_raw_with(client, method, url, headers, body).await;
    (raw.status, raw.body)
}

fn start_body(terminal: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": "1",
        "terminal_id": terminal,
        "terminal_kind": "atm",
        "locale": "ja",
        "methods_supported": ["pin_signature"],
    }))
    .expect("json")
}

/// (a) A full PIN registration with a simulated card over HTTPS with terminal A's client
/// certificate ends `registered`. The same registration over plain HTTP is timed beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_registration_over_mutual_tls_ends_registered() {
    let now = SystemTime::now();
    let db = db::sqlite();
    let service = spawn_tls(config(&db.url, now), false).await;
    let started = Instant::now();
    let client = pki().http_client(&service.base_url(), Some(&pki().terminal_a));
    let report = register_pin(&client, now).await;
    let tls_elapsed = started.elapsed();
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(service.registration_count().await.expect("count"), 1);
    service.shutdown().await;

    let plain_db = db::sqlite();
    let plain = mynacard_registry::spawn(config(&plain_db.url, now))
        .await
        .expect("spawn");
    assert!(plain.base_url().starts_with("http://"));
    let started = Instant::now();
    let client = HttpClient::new(&plain.base_url()).expect("client");
    let report = register_pin(&client, now).await;
    let plain_elapsed = started.elapsed();
    assert!(matches!(report.outcome, Outcome::Registered { .. }));
    plain.shutdown().await;
    eprintln!(
        "PIN registration incl. connection setup: mutual TLS {} ms, plain HTTP {} ms",
        tls_elapsed.as_millis(),
        plain_elapsed.as_millis()
    );
}

/// (b) A client that speaks at most TLS 1.2 cannot connect; TLS 1.3 can.
#[tokio::test]
async fn tls_1_2_clients_are_refused() {
    let db = db::sqlite();
    let service = spawn_tls(config(&db.url, SystemTime::now()), false).await;
    let url = format!("{}{}", service.base_url(), paths::CONSENT);
    let old = pki()
        .raw_builder(None)
        .max_tls_version(reqwest::tls::Version::TLS_1_2)
        .build()
        .expect("client");
    let refused = old.get(&url).send().await;
    assert!(refused.is_err(), "TLS 1.2 was accepted: {refused:?}");
    let (status, _) = send(
        &pki().raw_client(None),
        reqwest::Method::GET,
        url,
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    service.shutdown().await;
}

/// (c) With client certificates required, a client without one or with one from an unrelated
/// CA gets no answer; terminal A's certificate is served. Without the requirement a client
/// without a certificate is served, and a certificate from an unrelated CA is still refused.
#[tokio::test]
async fn client_certificates_must_chain_to_the_terminal_ca() {
    let db = db::sqlite();
    let service = spawn_tls(config(&db.url, SystemTime::now()), true).await;
    let url = format!("{}{}", service.base_url(), paths::CONSENT);
    for identity in [None, Some(pki().unrelated.as_str())] {
        let answer = pki().raw_client(identity).get(&url).send().await;
        assert!(
            answer.is_err(),
            "served with {:?}: {answer:?}",
            identity.is_some()
        );
    }
    let client = pki().raw_client(Some(&pki().terminal_a));
    let (status, _) = send(&client, reqwest::Method::GET, url.clone(), &[], None).await;
    assert_eq!(status, 200);
    service.shutdown().await;

    let db = db::sqlite();
    let service = spawn_tls(config(&db.url, SystemTime::now()), false).await;
    let url = format!("{}{}", service.base_url(), paths::CONSENT);
    let (status, _) = send(
        &pki().raw_client(None),
        reqwest::Method::GET,
        url.clone(),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200);
    let answer = pki()
        .raw_client(Some(&pki().unrelated))
        .get(&url)
        .send()
        .await;
    assert!(answer.is_err(), "unrelated CA accepted: {answer:?}");
    service.shutdown().await;
}

/// (d) Terminal B's certificate with a StartSession naming terminal A: `403
/// E_TERMINAL_MISMATCH`, for the raw request and through the protocol client. The same message
/// with A's certificate, or without a certificate, starts a session.
#[tokio::test]
async fn a_start_naming_another_terminal_is_refused() {
    let now = SystemTime::now();
    let db = db::sqlite();
    let service = spawn_tls(config(&db.url, now), false).await;
    let url = format!("{}{}", service.base_url(), paths::REGISTRATIONS);
    let as_b = pki().raw_client(Some(&pki().terminal_b));
    let (status, body) = send(
        &as_b,
        reqwest::Method::POST,
        url.clone(),
        &[],
        Some(start_body(TERMINAL_A)),
    )
    .await;
    assert_eq!((status, code(&body).as_str()), (403, "E_TERMINAL_MISMATCH"));
    let value: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(value["retry"], "no");
    let (status, body) = send(
        &as_b,
        reqwest::Method::POST,
        url.clone(),
        &[],
        Some(start_body(TERMINAL_B)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    for identity in [Some(pki().terminal_a.as_str()), None] {
        let (status, body) = send(
            &pki().raw_client(identity),
            reqwest::Method::POST,
            url.clone(),
            &[],
            Some(start_body(TERMINAL_A)),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let client = pki().http_client(&service.base_url(), Some(&pki().terminal_b));
    let report = register_pin(&client, now).await;
    match &report.outcome {
        Outcome::Rejected { code, .. } => assert_eq!(code, &ErrorCode::TerminalMismatch),
        other => panic!("expected E_TERMINAL_MISMATCH, got {other:?}"),
    }
    assert_eq!(service.registration_count().await.expect("count"), 0);
    service.shutdown().await;
}

/// (e) A session started with terminal A's certificate is bound to A: its proof sent with B's
/// certificate, or without one, is answered exactly as an unknown session (`404
/// E_SESSION_NOT_FOUND`) and consumes nothing; A then finishes it. A proof naming A in an
/// unbound session, sent with B's certificate, is `E_TERMINAL_MISMATCH`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_session_takes_its_proof_only_from_its_terminal() {
    let now = SystemTime::now();
    let db = db::sqlite();
    let service = spawn_tls(config(&db.url, now), false).await;
    let base = service.base_url();
    let routed = Routed::new(
        pki().http_client(&base, Some(&pki().terminal_a)),
        pki().http_client(&base, Some(&pki().terminal_b)),
    );
    let report = register_pin(&routed, now).await;
    assert!(
        !matches!(report.outcome, Outcome::Registered { .. }),
        "{:?}",
        report.outcome
    );
    let (proof, answer) = routed.first_proof();
    let answer = answer.expect("the proof was answered");
    let answer_body = String::from_utf8(answer.body).expect("utf-8");
    let unknown_path = "/v1/registrations/no-such-session/proof";
    let (unknown_status, unknown_body) = send(
        &pki().raw_client(Some(&pki().terminal_b)),
        reqwest::Method::POST,
        format!("{base}{unknown_path}"),
        &[],
        proof.body.clone(),
    )
    .await;
    assert_eq!((answer.status, unknown_status), (404, 404));
    assert_eq!(answer_body, unknown_body, "no difference to learn from");
    assert_eq!(code(&answer_body), "E_SESSION_NOT_FOUND");
    // Without a certificate it is not found either.
    let url = format!("{base}{}", proof.path);
    let (status, body) = send(
        &pki().raw_client(None),
        reqwest::Method::POST,
        url.clone(),
        &[],
        proof.body.clone(),
    )
    .await;
    assert_eq!((status, body), (404, unknown_body));
    assert_eq!(service.registration_count().await.expect("count"), 0);
    // Nothing was consumed: the same proof from terminal A registers.
    let (status, body) = send(
        &pki().raw_client(Some(&pki().terminal_a)),
        reqwest::Method::POST,
        url,
        &[],
        proof.body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(value["status"], "registered");
    assert_eq!(service.registration_count().await.expect("count"), 1);

    // An unbound session (started without a certificate): B may reach it, but a proof naming
    // A over B's connection is refused as a mismatch, and nothing is consumed.
    let unbound = Routed::new(
        pki().http_client(&base, None),
        pki().http_client(&base, Some(&pki().terminal_b)),
    );
    let report = register_pin(&unbound, now).await;
    match &report.outcome {
        Outcome::Rejected { code, .. } => assert_eq!(code, &ErrorCode::TerminalMismatch),
        other => panic!("expected E_TERMINAL_MISMATCH, got {other:?}"),
    }
    let (proof, _) = unbound.first_proof();
    let (status, body) = send(
        &pki().raw_client(None),
        reqwest::Method::POST,
        format!("{base}{}", proof.path),
        &[],
        proof.body,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let value: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(value["status"], "already_registered");
    service.shutdown().await;
}

async fn poll_status(
    client: &reqwest::Client,
    base: &str,
    session_id: &str,
    token: &str,
) -> (u16, String) {
    send(
        client,
        reqwest::Method::GET,
        format!("{base}{}", paths::registration_status(session_id)),
        &[("authorization", token.to_owned())],
        None,
    )
    .await
}

fn pending_of(report: &RunReport) -> RegistrationPending {
    match &report.outcome {
        Outcome::Pending(p) => (**p).clone(),
        other => panic!("expected pending, got {other:?}"),
    }
}

/// (f) A registration started with terminal A's certificate goes pending (identity upstream
/// down). Its poll with A's certificate and the token answers 200; with B's certificate or
/// without a certificate, exactly as an unknown session (404). An unbound pending
/// registration polls as before, with or without a certificate. The upstream comes back and
/// A's poll ends `registered`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_pending_registration_is_polled_only_by_its_terminal() {
    let now = SystemTime::now();
    let db = db::sqlite();
    let switch = UpstreamSwitch::new(UpstreamMode::Down);
    let mut config = pending_config(&db.url, now, Duration::from_secs(120));
    switched_identity(&mut config, &switch);
    let service = spawn_tls(config, false).await;
    let base = service.base_url();
    let as_a = pki().http_client(&base, Some(&pki().terminal_a));
    let sim = card("adult");
    let mut channel = sim.channel();
    let mut terminal = PinTerminal("1234");
    let report = driver::run_waiting(
        Machine::register_with_pin(flow(TERMINAL_A, TerminalKind::Atm, now)),
        &mut channel,
        &as_a,
        &mut terminal,
        Wait::No,
    )
    .await
    .expect("flow runs");
    let bound = pending_of(&report);
    let token = bound.poll.token.bearer();

    let (status, body) = poll_status(
        &pki().raw_client(Some(&pki().terminal_a)),
        &base,
        &bound.session_id,
        &token,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"pending\""), "{body}");
    let unknown = poll_status(
        &pki().raw_client(Some(&pki().terminal_a)),
        &base,
        "no-such-session",
        &token,
    )
    .await;
    assert_eq!(unknown.0, 404);
    assert_eq!(code(&unknown.1), "E_SESSION_NOT_FOUND");
    for identity in [Some(pki().terminal_b.as_str()), None] {
        let refused = poll_status(
            &pki().raw_client(identity),
            &base,
            &bound.session_id,
            &token,
        )
        .await;
        assert_eq!(refused, unknown, "no difference to learn from");
    }

    // Unbound: started without a certificate (another card), polled by anyone with the token.
    let sim = card("reissued");
    let mut channel = sim.channel();
    let report = driver::run_waiting(
        Machine::register_with_pin(flow(TERMINAL_A, TerminalKind::Atm, now)),
        &mut channel,
        &pki().http_client(&base, None),
        &mut terminal,
        Wait::No,
    )
    .await
    .expect("flow runs");
    let unbound = pending_of(&report);
    for identity in [None, Some(pki().terminal_a.as_str())] {
        let (status, body) = poll_status(
            &pki().raw_client(identity),
            &base,
            &unbound.session_id,
            &unbound.poll.token.bearer(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    switch.set(UpstreamMode::Up);
    let machine = Machine::poll_registration(flow(TERMINAL_A, TerminalKind::Atm, now), bound)
        .expect("a poll target");
    let outcome = driver::poll(machine, &as_a, Wait::at_most(Duration::from_secs(30)))
        .await
        .expect("poll runs")
        .outcome;
    assert!(!registration_id(&outcome).is_empty());
    service.shutdown().await;
}

/// Shutting down an HTTPS service lets a request in flight finish (a proof waiting for a slow
/// identity upstream gets its answer, not a broken connection), then stops accepting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_requests_in_flight() {
    let now = SystemTime::now();
    let db = db::sqlite();
    let switch = UpstreamSwitch::new(UpstreamMode::Slow);
    let mut config = pending_config(&db.url, now, Duration::from_secs(120));
    config.upstream_timeout = Duration::from_millis(1500);
    switched_identity(&mut config, &switch);
    let service = spawn_tls(config, false).await;
    let base = service.base_url();
    let notify = Arc::new(tokio::sync::Notify::new());
    let mut routed = Routed::new(
        pki().http_client(&base, Some(&pki().terminal_a)),
        pki().http_client(&base, Some(&pki().terminal_a)),
    );
    routed.proof_sent = Some(Arc::clone(&notify));
    let routed = Arc::new(routed);
    let flow_client = Arc::clone(&routed);
    let flow_task =
        tokio::spawn(async move { register_pin_waiting(&*flow_client, now, Wait::No).await });
    notify.notified().await;
    // The proof is on its way; it waits 1.5 s for the identity upstream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shutting = Instant::now();
    service.shutdown().await;
    let report = flow_task.await.expect("flow");
    assert!(
        matches!(report.outcome, Outcome::Pending(_)),
        "{:?}",
        report.outcome
    );
    assert!(shutting.elapsed() < Duration::from_secs(10));
    let after = pki()
        .raw_client(Some(&pki().terminal_a))
        .get(format!("{base}{}", paths::CONSENT))
        .send()
        .await;
    assert!(after.is_err(), "still serving after shutdown");
}

/// The `mynacard-registry` program on `db`, listening on `listen`, with `extra` options and its
/// standard error captured.
fn program(db: &str, listen: &str, extra: &[&str]) -> ServiceProcess {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mynacard-registry"));
    command.stderr(std::process::Stdio::piped());
    ServiceProcess::start(command, db, listen, None, extra)
}

/// Stops the program; returns where it listened and what it wrote to standard error.
fn stop_and_read_stderr(mut service: ServiceProcess) -> (String, String) {
    let _ = service.child.kill();
    let _ = service.child.wait();
    let mut stderr = String::new();
    service
        .child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    (service.base_url.clone(), stderr)
}

/// The program with `--tls-cert`, `--tls-key`, `--client-ca`, `--require-client-cert` prints
/// an `https://` address that terminal A reaches; on a non-loopback address plain HTTP is
/// served with a warning on stderr, and TLS without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_serves_https_with_its_options() {
    let dir = db::sqlite();
    let folder = std::path::Path::new(dir.url.trim_start_matches("sqlite://"))
        .parent()
        .expect("folder")
        .to_owned();
    let [cert, key, ca] = pki().write_files(&folder);
    let (cert, key, ca) = (
        cert.to_str().expect("utf-8"),
        key.to_str().expect("utf-8"),
        ca.to_str().expect("utf-8"),
    );
    let service = program(
        &dir.url,
        "127.0.0.1:0",
        &[
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--client-ca",
            ca,
            "--require-client-cert",
        ],
    );
    let base = service.base_url.clone();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let (status, _) = send(
        &pki().raw_client(Some(&pki().terminal_a)),
        reqwest::Method::POST,
        format!("{base}{}", paths::REGISTRATIONS),
        &[],
        Some(start_body(TERMINAL_A)),
    )
    .await;
    assert_eq!(status, 201);
    let refused = pki()
        .raw_client(None)
        .get(format!("{base}{}", paths::CONSENT))
        .send()
        .await;
    assert!(refused.is_err(), "served without a client certificate");
    drop(service);

    let plain_db = db::sqlite();
    let (url, stderr) = stop_and_read_stderr(program(&plain_db.url, "0.0.0.0:0", &[]));
    assert!(url.starts_with("http://0.0.0.0:"), "{url}");
    assert!(stderr.contains("plain HTTP"), "no warning: {stderr:?}");

    let tls_db = db::sqlite();
    let (url, stderr) = stop_and_read_stderr(program(
        &tls_db.url,
        "0.0.0.0:0",
        &["--tls-cert", cert, "--tls-key", key],
    ));
    assert!(url.starts_with("https://0.0.0.0:"), "{url}");
    assert!(
        !stderr.contains("plain HTTP"),
        "warned with TLS: {stderr:?}"
    );

    let loopback_db = db::sqlite();
    let (_, stderr) = stop_and_read_stderr(program(&loopback_db.url, "127.0.0.1:0", &[]));
    assert!(
        !stderr.contains("plain HTTP"),
        "warned on loopback: {stderr:?}"
    );
}

/// Unusable TLS settings stop the start with a typed error.
#[tokio::test]
async fn unusable_tls_settings_stop_the_start() {
    let db = db::sqlite();
    let mut config = config(&db.url, SystemTime::now());
    let mut settings = pki().settings(false);
    settings.key_pem = zeroize::Zeroizing::new(b"not a key".to_vec());
    config.tls = Some(settings);
    let err = mynacard_registry::spawn(config.clone())
        .await
        .expect_err("no key");
    assert!(
        matches!(
            err,
            mynacard_registry::ServiceError::Tls(mynacard_registry::tls::TlsError::Key(_))
        ),
        "{err:?}"
    );
    let mut settings = pki().settings(true);
    settings.terminal_ca_pem = None;
    config.tls = Some(settings);
    let err = mynacard_registry::spawn(config).await.expect_err("no CA");
    assert!(
        matches!(
            err,
            mynacard_registry::ServiceError::Tls(
                mynacard_registry::tls::TlsError::RequireWithoutCa
            )
        ),
        "{err:?}"
    );
}
