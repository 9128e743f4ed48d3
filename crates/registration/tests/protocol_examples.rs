//! The examples in `docs/protocol.md` marked `example:<name>` are checked byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::collections::BTreeMap;

use std::sync::Arc;

use mynacard_registration::machine::{Action, FlowConfig, HttpMethod, Machine};
use mynacard_registration::messages::{
    Challenge, EligibilityResult, Intent, PendingState, RegistrationFailed, RegistrationPending,
    RegistrationResult, RegistrationStatusDocument, StartSession, TerminalKind, paths,
};
use mynacard_registration::{ErrorBody, ErrorCode, PollToken, UtcTime, consent, jcs};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn examples() -> BTreeMap<String, String> {
    let doc = include_str!("../../../docs/protocol.md").replace("\r\n", "\n");
    let mut out = BTreeMap::new();
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let Some(name) = info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("example:"))
        else {
            continue;
        };
        let mut body = String::new();
        for l in lines.by_ref() {
            if l == "```" {
                break;
            }
            body.push_str(l);
            body.push('\n');
        }
        assert!(
            out.insert(name.to_owned(), body).is_none(),
            "duplicate example {name}"
        );
    }
    out
}

fn example(name: &str) -> String {
    examples()
        .remove(name)
        .unwrap_or_else(|| panic!("docs/protocol.md has no example:{name}"))
}

/// Parses an example as `T` and checks that the typed value serialises to the same canonical
/// JSON: no member is lost, renamed or re-spelled.
fn round_trip<T: Serialize + DeserializeOwned>(name: &str) -> T {
    let text = example(name);
    let value: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        String::from_utf8(jcs::to_vec(&value).unwrap()).unwrap(),
        String::from_utf8(jcs::canonicalize_text(&text).unwrap()).unwrap(),
        "{name}"
    );
    value
}

#[test]
fn every_example_is_checked() {
    let names: Vec<String> = examples().into_keys().collect();
    assert_eq!(
        names,
        [
            "challenge",
            "consent.sha256",
            "eligibility-result",
            "error",
            "intent",
            "intent.digestinfo",
            "intent.jcs",
            "intent.sha256",
            "poll-request",
            "registration-failed",
            "registration-pending",
            "registration-result",
            "start-session",
        ]
    );
}

#[test]
fn intent_canonical_bytes_hash_and_digest_info() {
    let intent: Intent = round_trip("intent");
    let jcs_text = example("intent.jcs");
    assert_eq!(
        intent.canonical_bytes().unwrap(),
        jcs_text.trim_end_matches('\n').as_bytes()
    );
    assert_eq!(
        intent.sha256().unwrap().to_hex(),
        example("intent.sha256").trim()
    );
    assert_eq!(
        hex::encode(intent.signed_digest_info().unwrap()),
        example("intent.digestinfo").trim()
    );
    // The example binds the consent document in force.
    assert_eq!(intent.consent_sha256, consent::current().sha256().unwrap());
}

#[test]
fn consent_hash_is_the_compiled_documents() {
    assert_eq!(
        consent::current().sha256().unwrap().to_base64url(),
        example("consent.sha256").trim()
    );
}

#[test]
fn message_examples_parse_and_round_trip() {
    let challenge: Challenge = round_trip("challenge");
    assert_eq!(challenge.consent, consent::current().reference().unwrap());
    assert_eq!(
        challenge.expires_at.unix() - challenge.issued_at.unix(),
        120
    );
    let start: StartSession = round_trip("start-session");
    assert_eq!(start.terminal_id, "atm-0001");
    let error: ErrorBody = round_trip("error");
    assert_eq!(error.http_status(), 401);
    let eligibility: EligibilityResult = round_trip("eligibility-result");
    assert_eq!(eligibility.insurance.branch.len(), 2);
    let registration: RegistrationResult = round_trip("registration-result");
    assert!(registration.insurer_name.is_some());
}

#[test]
fn pending_and_failed_status_documents_round_trip() {
    let pending: RegistrationPending = round_trip("registration-pending");
    assert_eq!(pending.status, PendingState::Pending);
    assert_eq!(
        pending.poll.url,
        paths::registration_status(&pending.session_id)
    );
    assert_eq!(pending.deadline.unix() - pending.accepted_at.unix(), 600);
    let as_status: RegistrationStatusDocument = round_trip("registration-pending");
    assert_eq!(as_status, RegistrationStatusDocument::Pending(pending));

    let failed: RegistrationFailed = round_trip("registration-failed");
    assert_eq!(failed.error.code, ErrorCode::UpstreamTimeout);
    assert_eq!(failed.error.retry, ErrorCode::UpstreamTimeout.retry());
    assert_eq!(ErrorCode::UpstreamTimeout.http_status(), 504);
    assert!(matches!(
        round_trip::<RegistrationStatusDocument>("registration-failed"),
        RegistrationStatusDocument::Failed(_)
    ));
    // A finished registration's status is the synchronous result, member for member.
    let result: RegistrationResult = round_trip("registration-result");
    assert_eq!(
        round_trip::<RegistrationStatusDocument>("registration-result"),
        RegistrationStatusDocument::Finished(result)
    );
}

/// The poll the reference client sends for the example's pending registration, as an HTTP/1.1
/// request head (`Accept` is what every JSON client adds), is the example's.
#[test]
fn poll_request_is_what_the_client_sends() {
    let pending: RegistrationPending = round_trip("registration-pending");
    let now = pending.accepted_at;
    let config = FlowConfig::new("atm-0001", TerminalKind::Atm).with_clock(Arc::new(move || now));
    let machine = Machine::poll_registration(config, pending.clone()).unwrap();
    let Action::Poll(step) = machine.next_action() else {
        panic!("a poll first");
    };
    assert_eq!(step.at, UtcTime::from_unix(now.unix() + 5));
    assert_eq!(step.request.delay_ms, 5000);
    assert_eq!(step.request.method, HttpMethod::Get);
    assert!(step.request.body.is_none());
    let capitalised = |name: &str| {
        name.split('-')
            .map(|part| {
                let mut c = part.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-")
    };
    let mut head = format!(
        "GET {} HTTP/1.1\nAccept: application/json\n",
        step.request.path
    );
    for (name, value) in &step.request.headers {
        head.push_str(&format!("{}: {value}\n", capitalised(name)));
    }
    assert_eq!(head, example("poll-request"));
    assert_eq!(
        PollToken::from_bearer(step.request.header("authorization").unwrap()),
        Some(pending.poll.token)
    );
    assert!(
        !format!("{:?}", step.request).contains(&pending.poll.token.to_base64url()),
        "the token never shows in Debug"
    );
}

#[test]
fn poll_token_is_derived_from_the_proof_and_only_its_hash_is_kept() {
    let a = PollToken::for_proof(br#"{"method":"pin_signature"}"#);
    let b = PollToken::for_proof(br#"{"method":"pin_signature"}"#);
    let c = PollToken::for_proof(br#"{"method":"accredited_face"}"#);
    assert_eq!(a, b, "the same proof, the same token");
    assert_ne!(a, c);
    assert_ne!(a.sha256().0, a.0, "what is kept is not the token");
    assert_eq!(PollToken::from_bearer(&a.bearer()), Some(a));
    assert_eq!(
        PollToken::from_bearer(&format!("bearer  {}", a.to_base64url())),
        Some(a)
    );
    assert_eq!(
        PollToken::from_bearer(&format!("Basic {}", a.to_base64url())),
        None
    );
    assert_eq!(PollToken::from_bearer("Bearer short"), None);
    assert_eq!(format!("{a:?}"), "PollToken(<redacted>)");
}
