//! The examples in `docs/protocol.md` marked `example:<name>` are checked byte for byte.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::collections::BTreeMap;

use mynacard_registration::messages::{
    Challenge, EligibilityResult, Intent, RegistrationResult, StartSession,
};
use mynacard_registration::{ErrorBody, consent, jcs};
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
