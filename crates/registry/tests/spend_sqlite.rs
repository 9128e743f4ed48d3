//! What a client can make the service spend, over real sockets against the in-process service
//! on SQLite: memory for certificates it invents, challenge rows, and the answers to messages
//! the protocol does not allow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use common::e2e::{ATM, Client, card, code, config, flow, post, run};
use mynacard_protocol::wire::{Bytes, Sha256Digest};
use mynacard_registration::driver::ServiceClient;
use mynacard_registration::machine::{HttpFailure, HttpRequest, HttpResponse, Machine};
use mynacard_registration::messages::TerminalKind;
use mynacard_registration::outcome::Outcome;
use mynacard_registry::test_kit::{self as db, forge};
use mynacard_registry::{RateLimit, Store};

/// Proofs with invented certificates sent to one session.
const FORGED_PROOFS: usize = 10_000;
/// Sent first, so that buffers and pools the service keeps anyway are already there.
const WARM_UP: usize = 500;
/// Most the service's resident memory may grow over [`FORGED_PROOFS`] (the old cache kept
/// every parsed certificate: some 90 KB each, hundreds of MB here).
const MAX_GROWTH_KB: u64 = 64 * 1024;

fn resident_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

async fn challenge_rows(url: &str) -> i64 {
    let store = Store::connect(url, 1).await.expect("connect");
    let n = store.challenge_count().await.expect("count");
    store.close().await;
    n
}

/// What the forged proofs found.
#[derive(Debug, Default)]
struct Flood {
    growth_kb: u64,
    refused: usize,
    elapsed: Duration,
}

/// A terminal in the middle: before the honest proof goes out, it sends the same session
/// proofs whose certificates it made itself (a real certificate with filler, so that each is
/// another one of 2 to 40 KB, still naming the real issuer), then lets the honest proof through.
struct Hostile {
    inner: Client,
    base: String,
    sent: AtomicBool,
    flood: std::sync::Mutex<Option<Flood>>,
}

/// Certificate sizes: half within the service's size bound (parsed, one chain check each),
/// half over it (refused unparsed), 2 to 40 KB.
fn filler_len(i: usize) -> usize {
    if i.is_multiple_of(2) {
        500 + (i * 13) % 6_000
    } else {
        8_000 + (i * 7_919) % 32_000
    }
}

async fn flood(base: &str, path: &str, honest: &[u8]) -> Flood {
    let honest: serde_json::Value = serde_json::from_slice(honest).expect("proof json");
    let real = Bytes::from_base64url(honest["auth_cert"].as_str().expect("auth_cert"))
        .expect("base64url")
        .0;
    let http = reqwest::Client::new();
    let url = format!("{base}{path}");
    let send = |i: usize| {
        let der = forge::with_filler(&real, filler_len(i), i as u64);
        let mut proof = honest.clone();
        proof["auth_cert"] = Bytes(der.clone()).to_base64url().into();
        proof["intent"]["cert_sha256"] = Sha256Digest::of(&der).to_base64url().into();
        let body = serde_json::to_vec(&proof).expect("json");
        let http = http.clone();
        let url = url.clone();
        async move {
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("send");
            let status = response.status().as_u16();
            (status, response.text().await.expect("body"))
        }
    };
    let run_batch = |range: std::ops::Range<usize>| {
        let send = &send;
        async move {
            let mut refused = 0;
            // Four at a time, as several terminals would.
            for chunk in range.collect::<Vec<_>>().chunks(4) {
                let answers = futures_join(chunk.iter().map(|&i| send(i)).collect()).await;
                for (status, body) in answers {
                    assert_eq!((status, code(&body).as_str()), (401, "E_CERT_UNTRUSTED"));
                    refused += 1;
                }
            }
            refused
        }
    };
    // First a certificate made with a key of one's own, the signature made with that key: it
    // proves possession of that key, not of a card, and leaves the session too.
    let (status, body) = {
        use rsa::traits::PublicKeyParts;
        let key = mynacard_sim::pki::TestPki::shared()
            .expect("pki")
            .key("registry-spend/self-made")
            .expect("key");
        let der = forge::with_rsa_key(&real, &key.n_bytes());
        let mut intent: mynacard_protocol::messages::Intent =
            serde_json::from_value(honest["intent"].clone()).expect("intent");
        intent.cert_sha256 = Sha256Digest::of(&der);
        let signature = key
            .sign(
                rsa::Pkcs1v15Sign::new_unprefixed(),
                &intent.signed_digest_info().expect("digest info"),
            )
            .expect("sign");
        // The signature does verify under the certificate's key: only trust is missing.
        let cert_key = mynacard_cert::JpkiCertificate::from_der(&der)
            .expect("parses")
            .rsa_public_key()
            .expect("key");
        let digest_info =
            mynacard_sign::DigestInfo::from_der(&intent.signed_digest_info().expect("digest info"))
                .expect("digest info");
        mynacard_sign::verify_pkcs1v15(&cert_key, &digest_info, &signature).expect("verifies");
        let mut proof = honest.clone();
        proof["intent"] = serde_json::to_value(&intent).expect("json");
        proof["auth_cert"] = Bytes(der).to_base64url().into();
        proof["signature"] = Bytes(signature).to_base64url().into();
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&proof).expect("json"))
            .send()
            .await
            .expect("send");
        (
            response.status().as_u16(),
            response.text().await.expect("body"),
        )
    };
    assert_eq!((status, code(&body).as_str()), (401, "E_CERT_UNTRUSTED"));
    let mut refused = run_batch(0..WARM_UP).await;
    let before = resident_kb();
    let started = Instant::now();
    refused += run_batch(WARM_UP..WARM_UP + FORGED_PROOFS).await;
    let elapsed = started.elapsed();
    let after = resident_kb();
    Flood {
        growth_kb: after.saturating_sub(before),
        refused,
        elapsed,
    }
}

/// Runs the futures at once and returns their outputs in order.
async fn futures_join<F: std::future::Future<Output = T> + Send + 'static, T: Send + 'static>(
    futures: Vec<F>,
) -> Vec<T> {
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[async_trait]
impl ServiceClient for Hostile {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure> {
        if request.path.ends_with("/proof") && !self.sent.swap(true, Ordering::SeqCst) {
            let body = request.body.as_deref().expect("a proof has a body");
            let found = flood(&self.base, &request.path, body).await;
            *self.flood.lock().expect("lock") = Some(found);
        }
        self.inner.send(request).await
    }
}

/// Ten thousand proofs with distinct invented certificates to one session (and one whose
/// self-made certificate's key did sign the intent): each is refused `E_CERT_UNTRUSTED`, the
/// service's memory does not grow with them, and the session is still there for the card's
/// honest proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_certificates_cost_no_memory_and_leave_the_session() {
    let db = db::sqlite();
    let now = SystemTime::now();
    let service = mynacard_registry::spawn(config(&db.url, now))
        .await
        .expect("spawn");
    let base = service.base_url();
    let hostile = Hostile {
        inner: Client::new(&base),
        base: base.clone(),
        sent: AtomicBool::new(false),
        flood: std::sync::Mutex::new(None),
    };
    let mut channel = card("adult").channel();
    let mut terminal = common::e2e::PinTerminal("1234");
    let report = mynacard_registration::driver::run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
        &mut channel,
        &hostile,
        &mut terminal,
    )
    .await
    .expect("flow runs");
    let found = hostile.flood.lock().expect("lock").take().expect("flooded");
    eprintln!(
        "{} forged proofs in {:?}: resident memory grew {} KB",
        FORGED_PROOFS, found.elapsed, found.growth_kb
    );
    assert_eq!(found.refused, WARM_UP + FORGED_PROOFS);
    assert!(
        found.growth_kb < MAX_GROWTH_KB,
        "resident memory grew {} KB",
        found.growth_kb
    );
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "{:?}",
        report.outcome
    );
    assert_eq!(service.registration_count().await.expect("count"), 1);
    service.shutdown().await;
}

fn start_body(terminal: &str) -> Vec<u8> {
    format!(
        r#"{{"v":"1","terminal_id":"{terminal}","terminal_kind":"atm","locale":"ja","methods_supported":["pin_signature"]}}"#
    )
    .into_bytes()
}

/// One peer inventing a terminal id per request is held to the per-peer limit: 429s with
/// `Retry-After`, and no more challenge rows than the limit let through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_terminal_ids_from_one_peer_are_rate_limited() {
    let db = db::sqlite();
    let mut config = config(&db.url, SystemTime::now());
    let limit = RateLimit {
        per_second: 20.0,
        burst: 40,
    };
    config.rate_limit = Some(RateLimit::default());
    config.peer_rate_limit = Some(limit);
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let base = service.base_url();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let (mut issued, mut limited) = (0u32, 0u32);
    for i in 0..600 {
        let response = http
            .post(format!("{base}/v1/registrations"))
            .header("content-type", "application/json")
            .body(start_body(&format!("flood-{i}")))
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").cloned();
        let body = response.text().await.expect("body");
        match status {
            201 => issued += 1,
            429 => {
                assert_eq!(code(&body), "E_RATE_LIMITED");
                assert!(retry_after.is_some(), "429 without Retry-After");
                limited += 1;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = f64::from(limit.burst) + elapsed * limit.per_second + 1.0;
    eprintln!("{issued} challenges issued, {limited} limited in {elapsed:.1} s");
    assert!(limited > 0, "no request was limited");
    assert!(
        f64::from(issued) <= allowed,
        "{issued} challenges in {elapsed:.1} s"
    );
    assert_eq!(challenge_rows(&db.url).await, i64::from(issued));
    service.shutdown().await;
}

/// Past the ceiling on open challenges, StartSessions from any terminal are refused with
/// `E_RATE_LIMITED` and `Retry-After` until one expires; a restarted service counts the open
/// challenges it finds in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_challenge_ceiling_holds_across_keys_and_restarts() {
    let db = db::sqlite();
    let now = SystemTime::now();
    let mut config = config(&db.url, now);
    config.max_open_challenges = 3;
    let service = mynacard_registry::spawn(config.clone())
        .await
        .expect("spawn");
    let base = service.base_url();
    for i in 0..3 {
        let (status, _, body) = post(
            &base,
            "/v1/registrations",
            start_body(&format!("kiosk-{i}")),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, retry_after, body) = post(&base, "/v1/eligibility", start_body("other")).await;
    assert_eq!((status, code(&body).as_str()), (429, "E_RATE_LIMITED"));
    let secs: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=120).contains(&secs), "{secs}");
    service.shutdown().await;

    let restarted = mynacard_registry::spawn(config).await.expect("spawn");
    let base = restarted.base_url();
    let (status, _, body) = post(&base, "/v1/registrations", start_body("after-restart")).await;
    assert_eq!((status, code(&body).as_str()), (429, "E_RATE_LIMITED"));
    // Once they expire, there is room again.
    restarted.advance_clock(Duration::from_secs(121));
    let (status, _, body) = post(&base, "/v1/registrations", start_body("after-restart")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(challenge_rows(&db.url).await, 4);
    restarted.shutdown().await;
}

/// A well-formed proof for `session` whose intent has `terminal_id`, plus `extra` members in the
/// intent (`,"k":v` form).
fn proof_body(session: &str, nonce: &str, terminal_id: &str, extra: &str) -> Vec<u8> {
    let zero = Sha256Digest([0; 32]).to_base64url();
    format!(
        r#"{{"v":"1","method":"pin_signature","intent":{{"v":"1","op":"register_insurance_use","session_id":"{session}","nonce":"{nonce}","terminal_id":{terminal},"consent_sha256":"{zero}","cert_sha256":"{zero}","signed_at":"2026-06-01T00:00:00Z"{extra}}},"auth_cert":"AAAA","signature":"AAAA"}}"#,
        terminal = serde_json::to_string(terminal_id).expect("json"),
    )
    .into_bytes()
}

/// Each error the service answers is the protocol's JSON body: 404 and 405 from routing, 400
/// for a path that cannot be decoded and for an intent member the protocol does not allow;
/// and a StartSession offering an unknown method beside a known one is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_the_protocols_json_and_unknown_methods_are_skipped() {
    let db = db::sqlite();
    let service = mynacard_registry::spawn(config(&db.url, SystemTime::now()))
        .await
        .expect("spawn");
    let base = service.base_url();
    let http = reqwest::Client::new();
    let answer = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let json = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v == "application/json");
        let body = r.text().await.expect("body");
        let parsed: mynacard_protocol::errors::ErrorBody =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body}: {e}"));
        assert!(json, "{status} without a JSON content type");
        (status, parsed.code.as_str().to_owned())
    };
    let get = http
        .get(format!("{base}/v1/registrations"))
        .send()
        .await
        .expect("send");
    assert_eq!(answer(get).await, (405, "E_BAD_REQUEST".to_owned()));
    let put = http
        .put(format!("{base}/v1/consent"))
        .send()
        .await
        .expect("send");
    assert_eq!(answer(put).await.0, 405);
    let missing = http
        .get(format!("{base}/v1/nothing-here"))
        .send()
        .await
        .expect("send");
    assert_eq!(answer(missing).await, (404, "E_BAD_REQUEST".to_owned()));
    let undecodable = http
        .post(format!("{base}/v1/registrations/%FF%FE/proof"))
        .body(proof_body("x", "x", ATM, ""))
        .send()
        .await
        .expect("send");
    assert_eq!(answer(undecodable).await, (400, "E_BAD_REQUEST".to_owned()));

    let (status, _, body) = post(
        &base,
        "/v1/registrations",
        br#"{"v":"1","terminal_id":"atm-0001","terminal_kind":"atm","locale":"ja","methods_supported":["iris_scan","pin_signature"]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let challenge: mynacard_protocol::messages::Challenge =
        serde_json::from_str(&body).expect("challenge");
    assert_eq!(
        challenge.accepted_methods,
        vec![mynacard_protocol::messages::Method::PinSignature]
    );
    let (status, _, body) = post(
        &base,
        "/v1/registrations",
        br#"{"v":"1","terminal_id":"atm-0001","terminal_kind":"atm","locale":"ja","methods_supported":["iris_scan"]}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (403, "E_METHOD_NOT_ALLOWED")
    );

    let path = format!("/v1/registrations/{}/proof", challenge.session_id);
    let nonce = challenge.nonce.to_base64url();
    let extra = proof_body(&challenge.session_id, &nonce, ATM, r#","note":"hello""#);
    let (status, _, body) = post(&base, &path, extra).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "E_BAD_REQUEST"),
        "{body}"
    );
    // The same proof without the member gets as far as the intent's certificate hash.
    let plain = proof_body(&challenge.session_id, &nonce, ATM, "");
    let (status, _, body) = post(&base, &path, plain).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "E_INTENT_MISMATCH"),
        "{body}"
    );
    service.shutdown().await;
}

/// The open-challenge count does not outlive its sessions: a used session gives its place back;
/// an unused challenge's row is purged soon after it expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_session_gives_back_its_place_under_the_ceiling() {
    let db = db::sqlite();
    let now = SystemTime::now();
    let mut config = config(&db.url, now);
    config.max_open_challenges = 1;
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let base = service.base_url();
    let client = Client::new(&base);
    let report = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
        &card("adult"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "{:?}",
        report.outcome
    );
    let (status, _, body) = post(&base, "/v1/eligibility", start_body(ATM)).await;
    assert_eq!(status, 201, "{body}");
    service.shutdown().await;
    // The unused challenge goes soon after it expires; the used one stays for retries.
    let store = Store::connect(&db.url, 1).await.expect("connect");
    let day_later = now + Duration::from_secs(86_400);
    let day_later_ms = day_later
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let purged = store
        .purge_unused_challenges(i64::try_from(day_later_ms).expect("ms"))
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert_eq!(store.challenge_count().await.expect("count"), 1);
    store.close().await;
}
