//! End-to-end scenarios over HTTP with simulated cards, run on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::time::Duration;

use mynacard_registration::machine::Machine;
use mynacard_registration::messages::TerminalKind;
use mynacard_registration::outcome::Outcome;
use mynacard_registry::Store;

use super::e2e::{
    APP, ATM, CLINIC, Client, at, card, code, config, flow, post, registration_id, run,
};

async fn count(db: &str) -> i64 {
    let store = Store::connect(db, 1).await.expect("connect");
    let n = store.registration_count().await.expect("count");
    store.close().await;
    n
}

/// The service is killed after committing a proof and before answering; restarted on the same
/// database, it answers the client's resent proof with the first result: one registration.
#[cfg(feature = "fault-injection")]
pub(crate) async fn killed_between_proof_and_answer(db: String) {
    use std::sync::{Arc, Mutex};
    use std::time::SystemTime;

    use super::e2e::{ServiceProcess, service};

    let first = service(&db, "127.0.0.1:0", Some("exit-after-commit"));
    let base = first.base_url.clone();
    let first = Arc::new(Mutex::new(Some(first)));
    let second: Arc<Mutex<Option<ServiceProcess>>> = Arc::new(Mutex::new(None));
    let exit_code = Arc::new(Mutex::new(None));
    let client = {
        let (first, second, exit_code, db) = (
            Arc::clone(&first),
            Arc::clone(&second),
            Arc::clone(&exit_code),
            db.clone(),
        );
        Client::new(&base).on_failure(move |failures| {
            if failures != 1 {
                return None;
            }
            // The first service died on its own after the commit; start another on the same
            // database.
            if let Some(dead) = first.lock().expect("lock").take() {
                *exit_code.lock().expect("lock") = Some(dead.wait());
            }
            let restarted = service(&db, "127.0.0.1:0", None);
            let url = restarted.base_url.clone();
            *second.lock().expect("lock") = Some(restarted);
            Some(url)
        })
    };
    let now = SystemTime::now();
    let sim = card("adult");
    let report = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
        &sim,
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "the retry returns the first result: {:?}",
        report.outcome
    );
    assert_eq!(
        *exit_code.lock().expect("lock"),
        Some(Some(86)),
        "fault exit after commit"
    );
    let proofs: Vec<_> = client
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/proof"))
        .collect();
    assert_eq!(proofs.len(), 2, "sent once, resent once");
    assert_eq!(proofs[0].body, proofs[1].body, "the same proof was resent");
    assert_eq!(
        count(&db).await,
        1,
        "one registration, not two and not none"
    );

    // The card registers again in a new session: already registered, the same id.
    let base = second
        .lock()
        .expect("lock")
        .as_ref()
        .map(|s| s.base_url.clone())
        .expect("restarted");
    let again = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
        &card("adult"),
        &Client::new(&base),
        "1234",
    )
    .await;
    assert!(
        matches!(again.outcome, Outcome::AlreadyRegistered { .. }),
        "{:?}",
        again.outcome
    );
    assert_eq!(
        registration_id(&again.outcome),
        registration_id(&report.outcome)
    );
    assert_eq!(count(&db).await, 1);
}

/// Expired certificate at the point of use: eligibility with `grace` until the end of the third
/// month after expiry (JST), then the link is cancelled (`E_REG_LAPSED`), then not registered.
pub(crate) async fn grace_then_lapse(db: String) {
    // expired-auth: valid 2019-12-02 .. 2024-06-01 14:59:59Z.
    let before = at(2024, 5, 1, 3);
    let service = mynacard_registry::spawn(config(&db, before))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let registered = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, before)),
        &card("expired-auth"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(registered.outcome, Outcome::Registered { .. }),
        "{:?}",
        registered.outcome
    );
    let id = registration_id(&registered.outcome);
    service.shutdown().await;

    let in_grace = at(2024, 8, 15, 3);
    let service = mynacard_registry::spawn(config(&db, in_grace))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let checked = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, in_grace)),
        &card("expired-auth"),
        &client,
        "1234",
    )
    .await;
    match &checked.outcome {
        Outcome::Eligible(result) => {
            assert!(result.grace, "eligibility only, in the grace period");
            assert!(!result.relinked);
            assert_eq!(result.registration_id, id);
            assert_eq!(result.insurance.insurer_number, "06139999");
            assert_eq!(result.insurance.number, "4567");
            assert_eq!(result.qualification_validity, 1);
        }
        other => panic!("{other:?}"),
    }
    // Registering with the expired certificate is refused.
    let refused = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, in_grace)),
        &card("expired-auth"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(refused.outcome, Outcome::CertificateExpired),
        "{:?}",
        refused.outcome
    );
    service.shutdown().await;

    // Grace ends 2024-09-30 24:00 JST = 2024-09-30 15:00Z.
    let after = at(2024, 9, 30, 16);
    let service = mynacard_registry::spawn(config(&db, after))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let lapsed = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, after)),
        &card("expired-auth"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(lapsed.outcome, Outcome::RegistrationLapsed),
        "{:?}",
        lapsed.outcome
    );
    assert_eq!(
        service.registration_count().await.expect("count"),
        0,
        "link cancelled"
    );
    let gone = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, after)),
        &card("expired-auth"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(gone.outcome, Outcome::NotRegistered),
        "{:?}",
        gone.outcome
    );
    service.shutdown().await;
}

/// A smartphone certificate gets no grace period after expiry (domain facts §1.6): once it has
/// expired the point of use refuses it (`E_CERT_EXPIRED`) and leaves the registration alone,
/// while the person's card, expired the same day, is still in its grace period. The service
/// knows the phone's certificate from the identity upstream (`form = "smartphone"` in the seed).
pub(crate) async fn smartphone_certificate_has_no_grace(db: String) {
    use mynacard_sim::image::Date;
    use mynacard_sim::pki::CaKind;
    let catalogue = mynacard_sim::profile::Catalogue::builtin().expect("profiles");
    let expiry = |profile: &str| {
        catalogue
            .get(profile)
            .expect("profile")
            .validity(CaKind::Auth)
            .expect("auth certificate")
            .1
    };
    let last_day = Date {
        year: 2030,
        month: 2,
        day: 17,
    };
    assert_eq!(expiry("smartphone"), last_day);
    assert_eq!(expiry("adult"), last_day);

    let before = at(2026, 6, 1, 3);
    let service = mynacard_registry::spawn(config(&db, before))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let registered = run(
        Machine::register_with_pin(flow(APP, TerminalKind::App, before)),
        &card("smartphone"),
        &client,
        "1234",
    )
    .await;
    let id = registration_id(&registered.outcome);
    let checked = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, before)),
        &card("smartphone"),
        &client,
        "1234",
    )
    .await;
    match &checked.outcome {
        Outcome::Eligible(result) => {
            assert!(!result.grace);
            assert_eq!(result.registration_id, id);
        }
        other => panic!("{other:?}"),
    }
    service.shutdown().await;

    // Four weeks after both certificates expired: the card's grace runs to 2030-05-31 JST.
    let expired = at(2030, 3, 15, 3);
    let service = mynacard_registry::spawn(config(&db, expired))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let phone = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, expired)),
        &card("smartphone"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(phone.outcome, Outcome::CertificateExpired),
        "no grace for a smartphone certificate: {:?}",
        phone.outcome
    );
    assert_eq!(
        service.registration_count().await.expect("count"),
        1,
        "the registration stays"
    );
    let card_check = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, expired)),
        &card("adult"),
        &client,
        "1234",
    )
    .await;
    match &card_check.outcome {
        Outcome::Eligible(result) => {
            assert!(result.grace, "the card is in its grace period");
            assert_eq!(result.registration_id, id);
            assert_eq!(result.insurance.number, "3456");
        }
        other => panic!("{other:?}"),
    }
    service.shutdown().await;
}

/// A reissued card registers as a relink of the old card's registration (same id, one row).
pub(crate) async fn reissue_relinks_the_registration(db: String) {
    let now = at(2026, 6, 1, 3);
    let service = mynacard_registry::spawn(config(&db, now))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let first = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
        &card("adult"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(first.outcome, Outcome::Registered { .. }),
        "{:?}",
        first.outcome
    );
    let id = registration_id(&first.outcome);

    let reissued = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
        &card("reissued"),
        &client,
        "1234",
    )
    .await;
    match &reissued.outcome {
        Outcome::RelinkedAfterReissue {
            registration_id,
            insurer_name,
        } => {
            assert_eq!(registration_id, &id);
            assert_eq!(insurer_name.as_deref(), Some("みらい健康保険組合"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(service.registration_count().await.expect("count"), 1);
    // The old card is no longer registered; the new one is.
    let old = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, now)),
        &card("adult"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(old.outcome, Outcome::NotRegistered),
        "{:?}",
        old.outcome
    );
    service.shutdown().await;
}

/// No insurance record: the typed refusal, stored with the session and answered again,
/// byte for byte, to the same proof; another proof for the session is a replay.
pub(crate) async fn no_insurance_record_and_idempotency(db: String) {
    let now = at(2026, 6, 1, 3);
    let service = mynacard_registry::spawn(config(&db, now))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let report = run(
        Machine::register_with_pin(flow(APP, TerminalKind::App, now)),
        &card("under15"),
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(report.outcome, Outcome::NoInsuranceRecord),
        "{:?}",
        report.outcome
    );
    let (path, body) = client.last_proof();
    let (status, _, first) = post(&service.base_url(), &path, body.clone()).await;
    assert_eq!(
        (status, code(&first).as_str()),
        (422, "E_NO_INSURANCE_RECORD")
    );
    // After the challenge's expiry the stored result still answers the same proof.
    service.advance_clock(Duration::from_secs(600));
    let (status, _, again) = post(&service.base_url(), &path, body.clone()).await;
    assert_eq!(status, 422);
    assert_eq!(again, first);
    // A different proof for the used session: replay.
    let mut tampered: serde_json::Value = serde_json::from_slice(&body).expect("proof json");
    // Any other signing time: the flow's own may be a second or two past the hour on a busy
    // machine, so the new one is chosen unlike it.
    let signed_at = tampered["intent"]["signed_at"].as_str().map(str::to_owned);
    let other = ["2026-06-01T03:00:01Z", "2026-06-01T03:00:02Z"]
        .into_iter()
        .find(|t| signed_at.as_deref() != Some(*t))
        .expect("one of two differs");
    tampered["intent"]["signed_at"] = serde_json::Value::from(other);
    let (status, _, replay) = post(
        &service.base_url(),
        &path,
        serde_json::to_vec(&tampered).expect("json"),
    )
    .await;
    assert_eq!((status, code(&replay).as_str()), (409, "E_NONCE_REPLAY"));
    assert_eq!(service.registration_count().await.expect("count"), 0);
    service.shutdown().await;
}

/// Several terminals register the same card at the same moment: one registration.
pub(crate) async fn concurrent_registrations_over_http(db: String) {
    let now = at(2026, 6, 1, 3);
    let service = mynacard_registry::spawn(config(&db, now))
        .await
        .expect("spawn");
    let base = service.base_url();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            let client = Client::new(&base);
            run(
                Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
                &card("adult"),
                &client,
                "1234",
            )
            .await
            .outcome
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.expect("task"));
    }
    let fresh = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Registered { .. }))
        .count();
    let already = outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::AlreadyRegistered { .. }))
        .count();
    assert_eq!((fresh, already), (1, 5), "{outcomes:?}");
    let ids: std::collections::HashSet<_> = outcomes.iter().map(registration_id).collect();
    assert_eq!(ids.len(), 1, "one registration id");
    assert_eq!(service.registration_count().await.expect("count"), 1);
    service.shutdown().await;
}

/// What the database holds after a registration and an eligibility check: no My Number, no
/// certificate, no insured number or insurer name.
/// Every stored value of both tables, as text.
async fn dump(db: &str) -> String {
    use sqlx::Row as _;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(db).await.expect("connect");
    let mut out = String::new();
    for (table, columns) in [
        (
            "registrations",
            "registration_id, root_id, serial, cert_sha256, linkage_code, terminal_id, method, \
             consent_version, registered_at, relinked_at",
        ),
        (
            "challenges",
            "session_id, nonce, terminal_id, purpose, methods, consent_version, consent_sha256, \
             issued_at, expires_at, used_at, proof_sha256, outcome",
        ),
    ] {
        let select = columns
            .split(',')
            .map(|c| format!("COALESCE(CAST({} AS TEXT), '')", c.trim()))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let rows = sqlx::query(&format!("SELECT {select} FROM {table}"))
            .fetch_all(&pool)
            .await
            .expect("select");
        for row in rows {
            out.push_str(&row.try_get::<String, _>(0).expect("text"));
            out.push('\n');
        }
    }
    pool.close().await;
    out
}

pub(crate) async fn nothing_personal_is_stored(db: String) {
    let now = at(2026, 6, 1, 3);
    let service = mynacard_registry::spawn(config(&db, now))
        .await
        .expect("spawn");
    let client = Client::new(&service.base_url());
    let sim = card("adult");
    let registered = run(
        Machine::register_with_pin(flow(ATM, TerminalKind::Atm, now)),
        &sim,
        &client,
        "1234",
    )
    .await;
    assert!(matches!(registered.outcome, Outcome::Registered { .. }));
    let checked = run(
        Machine::check_eligibility_with_pin(flow(CLINIC, TerminalKind::FaceReader, now)),
        &sim,
        &client,
        "1234",
    )
    .await;
    assert!(
        matches!(checked.outcome, Outcome::Eligible(_)),
        "{:?}",
        checked.outcome
    );
    service.shutdown().await;
    let text = dump(&db).await;
    assert!(
        text.contains("LNK-ADULT"),
        "the dump holds the rows: {text}"
    );
    let image = mynacard_sim::image::CardImage::from_profile_name("adult").expect("image");
    let cert_b64 = mynacard_registration::Bytes(image.auth.cert_der.clone()).to_base64url();
    for forbidden in [
        image.person.my_number.as_str(),
        &cert_b64[..40],
        "06139999",
        "みらい健康保険組合",
        "番号",
    ] {
        assert!(
            !text.contains(forbidden),
            "{forbidden:?} must not be stored"
        );
    }
}

/// Rate limiting, maintenance and malformed requests, over HTTP.
pub(crate) async fn limits_and_protocol_errors(db: String) {
    let now = at(2026, 6, 1, 3);
    let mut config = config(&db, now);
    config.rate_limit = Some(mynacard_registry::RateLimit {
        per_second: 0.5,
        burst: 2,
    });
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let base = service.base_url();
    let start = |terminal: &str| {
        format!(
            r#"{{"v":"1","terminal_id":"{terminal}","terminal_kind":"atm","locale":"ja","methods_supported":["pin_signature"]}}"#
        )
        .into_bytes()
    };
    for _ in 0..2 {
        let (status, _, body) = post(&base, "/v1/registrations", start(ATM)).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, retry_after, body) = post(&base, "/v1/registrations", start(ATM)).await;
    assert_eq!((status, code(&body).as_str()), (429, "E_RATE_LIMITED"));
    assert_eq!(retry_after.as_deref(), Some("2"));
    // Other terminals are not held back.
    let (status, _, _) = post(&base, "/v1/eligibility", start(CLINIC)).await;
    assert_eq!(status, 201);

    service.set_maintenance(true);
    let (status, retry_after, body) = post(&base, "/v1/eligibility", start(APP)).await;
    assert_eq!((status, code(&body).as_str()), (503, "E_MAINTENANCE"));
    assert!(retry_after.is_some());
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("health");
    assert_eq!(
        health.status().as_u16(),
        200,
        "liveness answers in maintenance"
    );
    service.set_maintenance(false);

    let (status, _, body) = post(&base, "/v1/registrations", vec![b' '; 70 * 1024]).await;
    assert_eq!((status, code(&body).as_str()), (413, "E_PAYLOAD_TOO_LARGE"));
    let (status, _, body) = post(
        &base,
        "/v1/registrations",
        br#"{"v":"2","terminal_id":"x"}"#.to_vec(),
    )
    .await;
    assert_eq!(
        (status, code(&body).as_str()),
        (400, "E_UNSUPPORTED_VERSION")
    );
    let (status, _, body) = post(&base, "/v1/registrations", b"not json".to_vec()).await;
    assert_eq!((status, code(&body).as_str()), (400, "E_BAD_REQUEST"));
    let (status, _, body) = post(
        &base,
        "/v1/registrations/nosuchsession/proof",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!((status, code(&body).as_str()), (400, "E_BAD_REQUEST"));
    let face_only = br#"{"v":"1","terminal_id":"kiosk-4242","terminal_kind":"kiosk","locale":"ja","methods_supported":["accredited_face"]}"#;
    let (status, _, body) = post(&base, "/v1/registrations", face_only.to_vec()).await;
    assert_eq!((status, code(&body).as_str()), (403, "E_TERMINAL_UNKNOWN"));
    let face_unapproved = br#"{"v":"1","terminal_id":"clinic-0002","terminal_kind":"face_reader","locale":"ja","methods_supported":["accredited_face"]}"#;
    let (status, _, body) = post(&base, "/v1/eligibility", face_unapproved.to_vec()).await;
    assert_eq!(
        (status, code(&body).as_str()),
        (403, "E_METHOD_NOT_ALLOWED")
    );

    let consent = reqwest::get(format!("{base}/v1/consent"))
        .await
        .expect("consent")
        .text()
        .await
        .expect("body");
    let consent: mynacard_registration::messages::ConsentResponse =
        serde_json::from_str(&consent).expect("consent response");
    let current = mynacard_registration::consent::current();
    assert_eq!(consent.document, current);
    assert_eq!(consent.consent.sha256, current.sha256().expect("hash"));
    service.shutdown().await;
}
