//! Registrations that wait for a slow upstream (protocol §16), over HTTP to the real service
//! with the real client, on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use mynacard_registration::driver::{self, RunReport, Wait};
use mynacard_registration::machine::{FlowConfig, Machine};
use mynacard_registration::messages::{
    RegistrationPending, RegistrationStatusDocument, TerminalKind, paths,
};
use mynacard_registration::outcome::Outcome;
use mynacard_registration::{ErrorCode, PollToken};
use mynacard_registry::store::CardKey;
use mynacard_registry::upstream::{
    CertificateForm, IdentityProvider, PersonLookup, SeededIdentity, SeededInsurance,
    SwitchedIdentity, SwitchedInsurance, UpstreamError, UpstreamMode, UpstreamSwitch,
};
use mynacard_registry::{Config, PendingPolicy, RunningService};
use mynacard_sim::inprocess::SimCard;

use super::e2e::{ATM, Client, PinTerminal, card, code, config, flow, registration_id};

/// Short timeouts so that the scenarios take seconds: upstream calls cut at 300 ms, background
/// attempts from 100 ms doubling to 400 ms, polls every second, a scan every 50 ms.
pub(crate) fn pending_config(db: &str, now: SystemTime, deadline: Duration) -> Config {
    let mut config = config(db, now);
    config.upstream_timeout = Duration::from_millis(300);
    config.pending = PendingPolicy::default()
        .with_deadline(deadline)
        .with_retry(Duration::from_millis(100), Duration::from_millis(400))
        .with_polling(Duration::from_secs(1), Duration::from_millis(50));
    config
}

pub(crate) fn switched_identity(config: &mut Config, switch: &UpstreamSwitch) {
    config.identity = Some(Arc::new(SwitchedIdentity::new(
        Arc::new(SeededIdentity::from_seed(&config.seed)),
        switch.clone(),
    )));
}

fn flow_now(now: SystemTime) -> FlowConfig {
    flow(ATM, TerminalKind::Atm, now)
}

/// Registers `sim` with the PIN, waiting for a pending registration as `wait` allows.
async fn register(sim: &SimCard, client: &Client, now: SystemTime, wait: Wait) -> RunReport {
    let mut channel = sim.channel();
    let mut terminal = PinTerminal("1234");
    driver::run_waiting(
        Machine::register_with_pin(flow_now(now)),
        &mut channel,
        client,
        &mut terminal,
        wait,
    )
    .await
    .expect("flow runs")
}

fn pending_of(report: &RunReport) -> RegistrationPending {
    match &report.outcome {
        Outcome::Pending(p) => (**p).clone(),
        other => panic!("expected pending, got {other:?}"),
    }
}

/// Polls a registration the terminal stopped waiting for, through `base`.
async fn poll(base: &str, pending: &RegistrationPending, now: SystemTime, wait: Wait) -> Outcome {
    let machine =
        Machine::poll_registration(flow_now(now), pending.clone()).expect("a poll target");
    driver::poll(machine, &Client::new(base), wait)
        .await
        .expect("poll runs")
        .outcome
}

/// What a raw request got back.
pub(crate) struct Raw {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
    pub(crate) preference_applied: Option<String>,
    pub(crate) body: String,
}

async fn send_raw(
    base: &str,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Raw {
    let url = format!("{base}{path}");
    send_raw_with(&reqwest::Client::new(), method, url, headers, body).await
}

/// A request with `headers` and a JSON `body` through `client` (e.g. one with a client
/// certificate).
pub(crate) async fn send_raw_with(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    headers: &[(&str, String)],
    body: Option<Vec<u8>>,
) -> Raw {
    let mut request = client.request(method, url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("send");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (retry_after, preference_applied) = (header("retry-after"), header("preference-applied"));
    Raw {
        status: response.status().as_u16(),
        retry_after,
        preference_applied,
        body: response.text().await.expect("body"),
    }
}

async fn get_status(base: &str, session_id: &str, authorization: Option<String>) -> Raw {
    let headers: Vec<(&str, String)> = authorization
        .into_iter()
        .map(|a| ("authorization", a))
        .collect();
    send_raw(
        base,
        reqwest::Method::GET,
        &paths::registration_status(session_id),
        &headers,
        None,
    )
    .await
}

/// The identity upstream is down: the valid proof is accepted with 202 and the session is
/// used; resubmitting the same proof gives the same 202 (or, without `Prefer`, the 1.0 answer);
/// a poll with a wrong token learns nothing. The upstream comes back: the poll ends
/// `registered`, with one registration row.
pub(crate) async fn identity_down_then_back(db: String) {
    let now = SystemTime::now();
    let switch = UpstreamSwitch::new(UpstreamMode::Down);
    let mut config = pending_config(&db, now, Duration::from_secs(120));
    switched_identity(&mut config, &switch);
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let base = service.base_url();
    let client = Client::new(&base);
    let report = register(&card("adult"), &client, now, Wait::No).await;
    let pending = pending_of(&report);
    assert_eq!(
        pending.poll.url,
        paths::registration_status(&pending.session_id)
    );
    assert_eq!(pending.poll.retry_after, 1);
    assert_eq!(
        pending.deadline.unix() - pending.accepted_at.unix(),
        120,
        "the deadline is the service's"
    );
    // The proof asked for the pending answer; the token is the one derived from it.
    let proof = client
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/proof"))
        .expect("proof sent");
    assert_eq!(proof.header("prefer"), Some("respond-async"));
    let body = proof.body.clone().expect("proof body");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let canonical = mynacard_registration::jcs::to_vec(&value).expect("jcs");
    assert_eq!(pending.poll.token, PollToken::for_proof(&canonical));
    assert_eq!(service.registration_count().await.expect("count"), 0);
    assert_eq!(service.pending_counts().await.expect("pending"), (1, 0));

    // The same proof again, twice: the same 202, byte for byte.
    let prefer = [("prefer", "respond-async".to_owned())];
    let first = send_raw(
        &base,
        reqwest::Method::POST,
        &proof.path,
        &prefer,
        Some(body.clone()),
    )
    .await;
    let second = send_raw(
        &base,
        reqwest::Method::POST,
        &proof.path,
        &prefer,
        Some(body.clone()),
    )
    .await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert_eq!(first.retry_after.as_deref(), Some("1"));
    assert_eq!(first.preference_applied.as_deref(), Some("respond-async"));
    assert_eq!(first.body, second.body);
    let again: RegistrationPending = serde_json::from_str(&first.body).expect("pending");
    assert_eq!(again, pending);
    // Without Prefer, a 1.0 terminal is told to back off, as before.
    let plain = send_raw(
        &base,
        reqwest::Method::POST,
        &proof.path,
        &[],
        Some(body.clone()),
    )
    .await;
    assert_eq!(
        (plain.status, code(&plain.body).as_str()),
        (503, "E_UPSTREAM_JLIS")
    );
    assert_eq!(plain.retry_after.as_deref(), Some("1"));
    // Another proof for the used session is a replay.
    let mut other: serde_json::Value = serde_json::from_slice(&body).expect("json");
    other["intent"]["signed_at"] = serde_json::Value::from("2020-01-01T00:00:00Z");
    let replay = send_raw(
        &base,
        reqwest::Method::POST,
        &proof.path,
        &prefer,
        Some(serde_json::to_vec(&other).expect("json")),
    )
    .await;
    assert_eq!(
        (replay.status, code(&replay.body).as_str()),
        (409, "E_NONCE_REPLAY")
    );

    // Polls: the token sees the status; anything else gets one and the same 404.
    let seen = get_status(
        &base,
        &pending.session_id,
        Some(pending.poll.token.bearer()),
    )
    .await;
    assert_eq!(seen.status, 200, "{}", seen.body);
    assert_eq!(seen.retry_after.as_deref(), Some("1"));
    assert_eq!(
        serde_json::from_str::<RegistrationStatusDocument>(&seen.body).expect("status"),
        RegistrationStatusDocument::Pending(pending.clone())
    );
    let wrong = PollToken::for_proof(b"someone else's guess").bearer();
    let refusals = [
        get_status(&base, &pending.session_id, Some(wrong.clone())).await,
        get_status(&base, &pending.session_id, None).await,
        get_status(
            &base,
            &pending.session_id,
            Some("Bearer not-a-token".into()),
        )
        .await,
        get_status(&base, "no-such-session", Some(pending.poll.token.bearer())).await,
        get_status(&base, "no-such-session", Some(wrong)).await,
    ];
    for refused in &refusals {
        assert_eq!(refused.status, 404);
        assert_eq!(
            refused.body, refusals[0].body,
            "no difference to learn from"
        );
        assert!(!refused.body.contains("pending"));
    }
    assert_eq!(code(&refusals[0].body), "E_SESSION_NOT_FOUND");

    // The upstream is back: the worker finishes, the poll sees it.
    switch.set(UpstreamMode::Up);
    let started = Instant::now();
    let outcome = poll(&base, &pending, now, Wait::at_most(Duration::from_secs(30))).await;
    match &outcome {
        Outcome::Registered { insurer_name, .. } => {
            assert_eq!(insurer_name.as_deref(), Some("みらい健康保険組合"));
        }
        other => panic!("expected registered, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(service.registration_count().await.expect("count"), 1);
    assert_eq!(service.pending_counts().await.expect("pending"), (0, 1));
    // Afterwards the status and the resubmitted proof both give the result.
    let done = get_status(
        &base,
        &pending.session_id,
        Some(pending.poll.token.bearer()),
    )
    .await;
    let RegistrationStatusDocument::Finished(result) =
        serde_json::from_str::<RegistrationStatusDocument>(&done.body).expect("status")
    else {
        panic!("finished: {}", done.body);
    };
    assert_eq!(result.registration_id, registration_id(&outcome));
    assert_eq!(result.insurer_name.as_deref(), Some("みらい健康保険組合"));
    let resent = send_raw(
        &base,
        reqwest::Method::POST,
        &proof.path,
        &prefer,
        Some(body),
    )
    .await;
    assert_eq!(resent.status, 200, "{}", resent.body);
    assert!(resent.body.contains(&result.registration_id));
    // A new session of the same card: already registered, the same id, still one row.
    let again = register(&card("adult"), &Client::new(&base), now, Wait::No).await;
    assert_eq!(registration_id(&again.outcome), result.registration_id);
    assert!(matches!(again.outcome, Outcome::AlreadyRegistered { .. }));
    assert_eq!(service.registration_count().await.expect("count"), 1);
    service.shutdown().await;
}

/// The insurance upstream never answers within the upstream timeout: the registration waits,
/// the client polls, and at the deadline it fails with `E_UPSTREAM_TIMEOUT`; nothing is
/// registered. Eligibility, meanwhile, is answered at once.
pub(crate) async fn insurance_slow_beyond_the_deadline(db: String) {
    let now = SystemTime::now();
    let switch = UpstreamSwitch::new(UpstreamMode::Up);
    let mut config = pending_config(&db, now, Duration::from_secs(3));
    // The adult registered first, while the upstream was fine.
    config.insurance = Some(Arc::new(SwitchedInsurance::new(
        Arc::new(SeededInsurance::from_seed(&config.seed)),
        switch.clone(),
    )));
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let base = service.base_url();
    let first = register(&card("adult"), &Client::new(&base), now, Wait::No).await;
    assert!(
        matches!(first.outcome, Outcome::Registered { .. }),
        "{:?}",
        first.outcome
    );
    switch.set(UpstreamMode::Slow);

    // Point of use never waits: the clinic is told at once.
    let started = Instant::now();
    let mut channel = card("adult").channel();
    let checked = driver::run(
        Machine::check_eligibility_with_pin(
            flow(super::e2e::CLINIC, TerminalKind::FaceReader, now).with_proof_retries(1, 100),
        ),
        &mut channel,
        &Client::new(&base),
        &mut PinTerminal("1234"),
    )
    .await
    .expect("flow");
    assert!(
        matches!(checked.outcome, Outcome::ServiceBusy { .. }),
        "{:?}",
        checked.outcome
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(service.pending_counts().await.expect("pending"), (0, 0));

    let client = Client::new(&base);
    let started = Instant::now();
    let report = register(&card("reissued"), &client, now, Wait::ForService).await;
    let waited = started.elapsed();
    assert_eq!(report.outcome, Outcome::UpstreamTimedOut);
    assert!(
        waited >= Duration::from_secs(3),
        "it waited for the deadline: {waited:?}"
    );
    let polls = client
        .requests()
        .iter()
        .filter(|r| {
            r.method == mynacard_registration::machine::HttpMethod::Get
                && r.path.starts_with("/v1/registrations/")
        })
        .count();
    assert!(polls >= 2, "it polled: {polls}");
    assert_eq!(
        service.registration_count().await.expect("count"),
        1,
        "no relink"
    );
    assert_eq!(service.pending_counts().await.expect("pending"), (0, 1));
    // The status says failed, with the code; a resent proof gets the error itself.
    let proof = client
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.path.ends_with("/proof"))
        .expect("proof");
    let session = proof.path.split('/').nth(3).expect("session").to_owned();
    let body = proof.body.clone().expect("body");
    let value: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let token = PollToken::for_proof(&mynacard_registration::jcs::to_vec(&value).expect("jcs"));
    let status = get_status(&base, &session, Some(token.bearer())).await;
    match serde_json::from_str::<RegistrationStatusDocument>(&status.body).expect("status") {
        RegistrationStatusDocument::Failed(failed) => {
            assert_eq!(failed.error.code, ErrorCode::UpstreamTimeout);
        }
        other => panic!("{other:?}"),
    }
    let resent = send_raw(&base, reqwest::Method::POST, &proof.path, &[], Some(body)).await;
    assert_eq!(
        (resent.status, code(&resent.body).as_str()),
        (504, "E_UPSTREAM_TIMEOUT")
    );
    service.shutdown().await;
}

/// The service is killed while a registration is pending; a new process on the same database
/// takes it up and finishes it, and the terminal's poll to the new process sees it registered.
#[cfg(feature = "fault-injection")]
pub(crate) async fn killed_while_pending_resumes_after_restart(db: String) {
    use mynacard_registry::Store;

    use super::e2e::service_with;

    let now = SystemTime::now();
    let fast = [
        "--upstream-timeout-ms",
        "300",
        "--pending-retry-ms",
        "100",
        "--pending-deadline",
        "120",
    ];
    let first = service_with(&db, "127.0.0.1:0", Some("identity-down"), &fast);
    let report = register(&card("adult"), &Client::new(&first.base_url), now, Wait::No).await;
    let pending = pending_of(&report);
    let seen = get_status(
        &first.base_url,
        &pending.session_id,
        Some(pending.poll.token.bearer()),
    )
    .await;
    assert_eq!(seen.status, 200);
    // Killed, not stopped: whatever it held stays in the database.
    drop(first);
    let store = Store::connect(&db, 1).await.expect("connect");
    assert_eq!(store.pending_counts().await.expect("pending"), (1, 0));
    assert_eq!(store.registration_count().await.expect("count"), 0);
    store.close().await;

    let second = service_with(&db, "127.0.0.1:0", None, &fast);
    let outcome = poll(
        &second.base_url,
        &pending,
        now,
        Wait::at_most(Duration::from_secs(30)),
    )
    .await;
    assert!(matches!(outcome, Outcome::Registered { .. }), "{outcome:?}");
    drop(second);
    let store = Store::connect(&db, 1).await.expect("connect");
    assert_eq!(store.registration_count().await.expect("count"), 1);
    assert_eq!(store.pending_counts().await.expect("pending"), (0, 1));
    store.close().await;
}

/// Counts, for the identity upstream, the lookups of earlier certificates that reached it:
/// exactly one per registration that was applied.
struct Counting {
    inner: SwitchedIdentity,
    applied: Arc<AtomicU64>,
}

#[async_trait]
impl IdentityProvider for Counting {
    async fn resolve(&self, card: &CardKey) -> Result<PersonLookup, UpstreamError> {
        self.inner.resolve(card).await
    }

    async fn previous_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError> {
        let answer = self.inner.previous_certificates(card).await;
        if answer.is_ok() {
            // Slow enough that two workers on one item would overlap.
            tokio::time::sleep(Duration::from_millis(40)).await;
            self.applied.fetch_add(1, Ordering::SeqCst);
        }
        answer
    }

    async fn linked_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError> {
        self.inner.linked_certificates(card).await
    }

    async fn certificate_form(&self, card: &CardKey) -> Result<CertificateForm, UpstreamError> {
        self.inner.certificate_form(card).await
    }
}

async fn counted_service(
    db: &str,
    now: SystemTime,
    switch: &UpstreamSwitch,
    applied: &Arc<AtomicU64>,
) -> RunningService {
    let mut config = pending_config(db, now, Duration::from_secs(120));
    config.identity = Some(Arc::new(Counting {
        inner: SwitchedIdentity::new(
            Arc::new(SeededIdentity::from_seed(&config.seed)),
            switch.clone(),
        ),
        applied: Arc::clone(applied),
    }));
    mynacard_registry::spawn(config).await.expect("spawn")
}

/// Two service instances on one database, each with its worker: seven pending registrations
/// (six sessions of one card, one of a person without insurance) are each processed once —
/// one `registered`, five `already_registered` with the same id, one `E_NO_INSURANCE_RECORD`,
/// and exactly six registrations applied upstream-side.
pub(crate) async fn two_services_process_each_pending_item_once(db: String) {
    let now = SystemTime::now();
    let switch = UpstreamSwitch::new(UpstreamMode::Down);
    let applied = Arc::new(AtomicU64::new(0));
    let a = counted_service(&db, now, &switch, &applied).await;
    let b = counted_service(&db, now, &switch, &applied).await;
    let bases = [a.base_url(), b.base_url()];
    let mut pendings = Vec::new();
    for (i, profile) in [
        "adult", "adult", "under15", "adult", "adult", "adult", "adult",
    ]
    .into_iter()
    .enumerate()
    {
        let base = &bases[i % 2];
        let report = register(&card(profile), &Client::new(base), now, Wait::No).await;
        pendings.push((profile, pending_of(&report)));
    }
    assert_eq!(a.pending_counts().await.expect("pending"), (7, 0));
    assert_eq!(applied.load(Ordering::SeqCst), 0);
    switch.set(UpstreamMode::Up);
    let mut outcomes = Vec::new();
    for (i, (profile, pending)) in pendings.iter().enumerate() {
        // Polled through the other instance than the one that accepted it.
        let base = &bases[(i + 1) % 2];
        let outcome = poll(base, pending, now, Wait::at_most(Duration::from_secs(60))).await;
        outcomes.push((*profile, outcome));
    }
    let registered = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Registered { .. }))
        .count();
    let already = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::AlreadyRegistered { .. }))
        .count();
    assert_eq!((registered, already), (1, 5), "{outcomes:?}");
    let ids: std::collections::HashSet<String> = outcomes
        .iter()
        .filter(|(p, _)| *p == "adult")
        .map(|(_, o)| registration_id(o))
        .collect();
    assert_eq!(ids.len(), 1, "one registration id");
    assert!(
        outcomes
            .iter()
            .any(|(p, o)| *p == "under15" && *o == Outcome::NoInsuranceRecord),
        "{outcomes:?}"
    );
    assert_eq!(
        applied.load(Ordering::SeqCst),
        6,
        "each adult item was applied once, by one of the two workers"
    );
    assert_eq!(a.registration_count().await.expect("count"), 1);
    assert_eq!(b.pending_counts().await.expect("pending"), (0, 7));
    a.shutdown().await;
    b.shutdown().await;
}
