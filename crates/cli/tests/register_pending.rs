//! `mynacard register` against a service whose identity upstream is down (protocol §16): with
//! `--no-wait` the pending status is the result (exit 0, outcome `pending`, poll URL and
//! token); waiting with `--max-wait` that runs out prints the same status and exits 8 (still
//! pending). The token the command printed then reads the status from the service, and
//! `register --resume` finishes the registration from the printed document once the upstream
//! is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod support;

use std::path::Path;
use std::process::Output;

use support::{Service, assert_exit, json, mynacard, scratch, stdout, write};

/// `mynacard registry serve` with the identity upstream down; returns it and its URL.
fn serve_with_identity_down() -> (Service, String) {
    serve(
        &scratch().join("registry.db"),
        "127.0.0.1:0",
        Some("identity-down"),
    )
}

/// `mynacard registry serve` on the SQLite database `db`, listening on `listen`, with the
/// test fault `fault` (none: the seeded upstreams answer), short upstream timeouts and quick
/// pending retries; returns it and its URL.
fn serve(db: &Path, listen: &str, fault: Option<&str>) -> (Service, String) {
    support::serve(
        db,
        listen,
        fault,
        &[
            "--upstream-timeout-ms",
            "200",
            "--pending-retry-ms",
            "100",
            "--pending-deadline",
            "60",
        ],
    )
}

/// `mynacard [--json] --card sim:adult register --channel atm --service URL --yes --pin-stdin`
/// with `extra` after it and the simulated card's PIN on stdin.
fn register_at_atm(url: &str, json_output: bool, extra: &[&str]) -> Output {
    let mut args = vec![
        "--card",
        "sim:adult",
        "register",
        "--channel",
        "atm",
        "--service",
        url,
        "--yes",
        "--pin-stdin",
    ];
    if json_output {
        args.insert(0, "--json");
    }
    args.extend_from_slice(extra);
    mynacard(&args, "1234\n")
}

/// A plain HTTP/1.1 GET on loopback: status code and body.
fn get(url: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("path"));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let code = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn no_wait_prints_the_pending_status_and_max_wait_gives_up_with_exit_8() {
    let (_service, url) = serve_with_identity_down();
    let out = register_at_atm(&url, true, &["--no-wait"]);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["outcome"], "pending", "{doc}");
    let session = doc["pending"]["session_id"].as_str().expect("session");
    let poll_url = doc["poll_url"].as_str().expect("poll URL");
    assert_eq!(poll_url, format!("{url}/v1/registrations/{session}"));
    let token = doc["pending"]["poll"]["token"].as_str().expect("token");
    assert_eq!(token.len(), 43);
    assert!(doc["pending"]["deadline"].is_string());
    assert!(doc.get("registration_id").is_none());

    // The printed token reads the status; it is still pending.
    let (code, body) = get(poll_url, Some(token));
    assert_eq!(code, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["status"], "pending", "{body}");
    assert_eq!(body["session_id"], session);
    let (code, _) = get(poll_url, None);
    assert_eq!(code, 404, "no token, no status");

    // Waiting, but not long enough: still pending (exit 8), and the one JSON document is the
    // pending status of this new session, which a later --resume can take up.
    let out = register_at_atm(&url, true, &["--max-wait", "2"]);
    assert_exit(&out, 8);
    let doc = json(&out);
    assert!(doc.get("error").is_none(), "{doc}");
    assert_eq!(doc["outcome"], "pending", "{doc}");
    let waited = doc["pending"]["session_id"].as_str().expect("session");
    assert_ne!(waited, session, "a new registration, a new session");
    let poll_url = doc["poll_url"].as_str().expect("poll URL");
    assert_eq!(poll_url, format!("{url}/v1/registrations/{waited}"));
    let token = doc["pending"]["poll"]["token"].as_str().expect("token");
    let (code, body) = get(poll_url, Some(token));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"pending\""), "{body}");
    // Without --json the status goes to stdout and the reason to stderr, with the same code.
    let out = register_at_atm(&url, false, &["--max-wait", "1"]);
    assert_exit(&out, 8);
    assert!(!stdout(&out).is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("still pending"), "{stderr}");

    // The options exclude each other (refused before anything is read).
    let out = register_at_atm(&url, false, &["--no-wait", "--max-wait", "5"]);
    assert_exit(&out, 2);
}

/// `mynacard register --resume` takes up what `--no-wait` printed: refused (exit 2) for a
/// document that is not a pending registration or names another service; still pending when
/// the wait ends is exit 8 (with the status printed again); a wrong token is the service's
/// `E_SESSION_NOT_FOUND` (exit 7).
/// With the upstream back (the service restarted on the same database and address, without
/// the fault), the resume ends registered, from a file or stdin, with no card and no PIN, and
/// the card then finds itself already registered under the same id.
#[test]
fn resume_finishes_what_no_wait_left_pending() {
    let db = scratch().join("registry.db");
    let (service, url) = serve(&db, "127.0.0.1:0", Some("identity-down"));
    let out = register_at_atm(&url, true, &["--no-wait"]);
    assert_exit(&out, 0);
    let pending_doc = json(&out);
    assert_eq!(pending_doc["outcome"], "pending", "{pending_doc}");
    let token = pending_doc["pending"]["poll"]["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let session = pending_doc["pending"]["session_id"]
        .as_str()
        .expect("session")
        .to_owned();
    assert!(
        pending_doc["poll_url"]
            .as_str()
            .expect("poll URL")
            .ends_with(&format!("/v1/registrations/{session}"))
    );
    let dir = scratch();
    let doc_file = write(&dir, "pending.json", &out.stdout);
    // No --card: the card's part is over.
    let resume = |file: &str, service: &str, extra: &[&str], stdin: Option<&str>| {
        let mut args = vec!["register", "--service", service, "--resume", file];
        args.extend_from_slice(extra);
        mynacard(&args, stdin)
    };
    let variant = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut doc = pending_doc.clone();
        edit(&mut doc);
        write(&dir, name, doc.to_string().as_bytes())
    };

    // Not a pending registration, or not for this service: usage errors, nothing sent.
    let error_doc = write(
        &dir,
        "error.json",
        br#"{"error":{"kind":"service_error","exit_code":7,"message":"x","causes":[]}}"#,
    );
    let registered = variant("registered.json", &|d| d["outcome"] = "registered".into());
    let eligibility = variant("eligibility.json", &|d| {
        d["operation"] = "check_eligibility".into();
    });
    let no_poll_url = variant("no-poll-url.json", &|d| {
        d.as_object_mut().expect("object").remove("poll_url");
    });
    let elsewhere = variant("elsewhere.json", &|d| {
        d["pending"]["poll"]["url"] = "/v1/elsewhere".into();
        d["poll_url"] = format!("{url}/v1/elsewhere").into();
    });
    let not_json = write(&dir, "readable.txt", b"pending\n  outcome: pending\n");
    for file in [
        &error_doc,
        &registered,
        &eligibility,
        &no_poll_url,
        &elsewhere,
        &not_json,
    ] {
        let out = resume(file, &url, &["--json"], None);
        assert_exit(&out, 2);
        assert_eq!(json(&out)["error"]["kind"], "usage", "{file}");
    }
    let out = resume(&doc_file, "http://127.0.0.1:9", &[], None);
    assert_exit(&out, 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--service"), "{stderr}");
    assert!(!stderr.contains(&token), "the token is not shown: {stderr}");
    let out = resume(&doc_file, &url, &["--channel", "atm"], None);
    assert_exit(&out, 2);
    let out = resume(&doc_file, &url, &["--no-wait"], None);
    assert_exit(&out, 2);

    // The upstream is still down: still pending when the wait ends (exit 8), and what is
    // printed is again a document --resume takes (the same session).
    let out = resume(&doc_file, &url, &["--json", "--max-wait", "2"], None);
    assert_exit(&out, 8);
    let again = json(&out);
    assert_eq!(again["outcome"], "pending", "{again}");
    assert_eq!(
        again["pending"]["session_id"],
        pending_doc["pending"]["session_id"]
    );
    assert_eq!(again["poll_url"], pending_doc["poll_url"]);
    let again_file = write(&dir, "again.json", &out.stdout);
    let out = resume(&again_file, &url, &["--json", "--max-wait", "1"], None);
    assert_exit(&out, 8);

    // A wrong token: the service's 404, named, and no token shown.
    let mut tampered = token.clone();
    let first = if tampered.starts_with('A') { "B" } else { "A" };
    tampered.replace_range(..1, first);
    let wrong_token = variant("wrong-token.json", &|d| {
        d["pending"]["poll"]["token"] = tampered.clone().into();
    });
    let out = resume(&wrong_token, &url, &["--max-wait", "10"], None);
    assert_exit(&out, 7);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("E_SESSION_NOT_FOUND"), "{stderr}");
    assert!(!stderr.contains(&token) && !stderr.contains(&tampered));
    assert!(out.stdout.is_empty());

    // The upstream is back: the same database and address, without the fault.
    drop(service);
    let listen = url.strip_prefix("http://").expect("http URL");
    let (_service, again) = serve(&db, listen, None);
    assert_eq!(again, url);

    let out = resume(&doc_file, &url, &["--json", "--max-wait", "30"], None);
    assert_exit(&out, 0);
    let done = json(&out);
    assert_eq!(done["outcome"], "registered", "{done}");
    assert_eq!(done["operation"], "register_insurance_use");
    assert_eq!(done["terminal_id"], pending_doc["terminal_id"]);
    assert_eq!(done["apdus"], 0, "no card: {done}");
    assert!(done["http_requests"].as_u64().expect("count") >= 1);
    assert!(done.get("pending").is_none() && done.get("poll_url").is_none());
    let registration = done["registration_id"]
        .as_str()
        .expect("registration id")
        .to_owned();

    // From stdin, readable: the same finished registration, and no token.
    let text = std::fs::read_to_string(&doc_file).expect("document");
    let out = resume("-", &url, &["--max-wait", "30"], Some(&text));
    assert_exit(&out, 0);
    let readable = stdout(&out);
    assert!(
        readable.contains("outcome:        registered"),
        "{readable}"
    );
    assert!(readable.contains(&registration), "{readable}");
    assert!(!readable.contains(&token), "{readable}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));

    // One registration: the card finds itself registered under the same id.
    let out = register_at_atm(&url, true, &[]);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["outcome"], "already_registered", "{doc}");
    assert_eq!(doc["registration_id"], registration.as_str());
}
