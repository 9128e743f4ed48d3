//! Identifiers a client chooses (the session id in the URL, the intent's `terminal_id`) cannot
//! write lines or terminal escape sequences into the service's text log. The in-process
//! service logs through a subscriber of the text format `init_logging` sets up (no colours, as
//! when the log is not a terminal), writing into a buffer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use common::e2e::{ATM, code, config, post};
use mynacard_protocol::wire::Sha256Digest;
use mynacard_registry::test_kit as db;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

const FORGED: &str = "FORGED-LINE";

/// A proof for `session_id` whose intent names `terminal_id`.
fn proof_body(session_id: &str, terminal_id: &str) -> Vec<u8> {
    let zero = Sha256Digest([0; 32]).to_base64url();
    serde_json::to_vec(&serde_json::json!({
        "v": "1",
        "method": "pin_signature",
        "intent": {
            "v": "1", "op": "register_insurance_use", "session_id": session_id,
            "nonce": zero, "terminal_id": terminal_id, "consent_sha256": zero,
            "cert_sha256": zero, "signed_at": "2026-06-01T00:00:00Z"
        },
        "auth_cert": "AAAA",
        "signature": "AAAA"
    }))
    .expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_identifiers_reach_the_text_log_escaped_or_not_at_all() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(buffer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let db = db::sqlite();
    let service = mynacard_registry::spawn(config(&db.url, SystemTime::now()))
        .await
        .expect("spawn");
    let base = service.base_url();
    let injected = format!("x\n2026-01-01T00:00:00Z  INFO {FORGED} \u{1b}[2J\u{1b}]0;owned\u{7}");

    // In the URL: newline and ESC percent-encoded.
    let path = "/v1/registrations/ses%0A2026-01-01T00:00:00Z%20%20INFO%20FORGED-LINE%1B%5B2J/proof";
    let (status, _, body) = post(&base, path, proof_body("ses", ATM)).await;
    assert_eq!((status, code(&body).as_str()), (404, "E_SESSION_NOT_FOUND"));

    // In the intent of a proof for a real session.
    let (status, _, body) = post(
        &base,
        "/v1/registrations",
        br#"{"v":"1","terminal_id":"atm-0001","terminal_kind":"atm","locale":"ja","methods_supported":["pin_signature"]}"#.to_vec(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let session: serde_json::Value = serde_json::from_str(&body).expect("challenge");
    let session = session["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let (status, _, body) = post(
        &base,
        &format!("/v1/registrations/{session}/proof"),
        proof_body(&session, &injected),
    )
    .await;
    assert_eq!((status, code(&body).as_str()), (400, "E_BAD_REQUEST"));

    // In a StartSession.
    let start = serde_json::json!({
        "v": "1", "terminal_id": injected, "terminal_kind": "atm", "locale": "ja",
        "methods_supported": ["pin_signature"]
    });
    let (status, _, body) = post(
        &base,
        "/v1/registrations",
        serde_json::to_vec(&start).expect("json"),
    )
    .await;
    assert_eq!((status, code(&body).as_str()), (400, "E_BAD_REQUEST"));
    service.shutdown().await;

    let log = String::from_utf8(buffer.0.lock().expect("lock").clone()).expect("utf-8 log");
    assert!(
        !log.contains('\u{1b}'),
        "an ESC byte reached the log:\n{log}"
    );
    assert!(!log.contains('\u{7}'), "a BEL byte reached the log:\n{log}");
    for line in log.lines() {
        assert!(
            !line.trim_start().starts_with("2026-01-01T00:00:00Z"),
            "a forged line reached the log:\n{log}"
        );
    }
    // The refusals are logged, escaped.
    assert!(
        log.lines()
            .any(|l| l.contains("invalid session id") && l.contains(r"\n")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("invalid terminal id") && l.contains(FORGED)),
        "{log}"
    );
}
