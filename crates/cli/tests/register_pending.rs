//! `mynacard register` against a service whose identity upstream is down (protocol §16): with
//! `--no-wait` the pending status is the result (exit 0, outcome `pending`, poll URL and
//! token); waiting with `--max-wait` that runs out is a service error (exit 7). The token the
//! command printed then reads the status from the service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use support::{assert_exit, json, mynacard, scratch};

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `mynacard registry serve` with the identity upstream down; returns it and its URL.
fn serve_with_identity_down() -> (Service, String) {
    let dir = scratch();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mynacard"))
        .args([
            "registry",
            "serve",
            "--allow-test-roots",
            "--rate-limit",
            "0",
            "--listen",
            "127.0.0.1:0",
            "--upstream-timeout-ms",
            "200",
            "--pending-deadline",
            "60",
        ])
        .arg("--db")
        .arg(format!("sqlite://{}", dir.join("registry.db").display()))
        .env("MYNACARD_REGISTRY_FAULT", "identity-down")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the service");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("service said {line:?}"))
        .to_owned();
    (Service(child), url)
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
fn no_wait_prints_the_pending_status_and_max_wait_gives_up_with_exit_7() {
    let (_service, url) = serve_with_identity_down();
    let register = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "--card",
            "sim:adult",
            "register",
            "--channel",
            "atm",
            "--service",
            &url,
            "--yes",
            "--pin-stdin",
        ];
        args.extend_from_slice(extra);
        mynacard(&args, "1234\n")
    };

    let out = register(&["--no-wait"]);
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

    // Waiting, but not long enough: still pending, a service error.
    let out = register(&["--max-wait", "2"]);
    assert_exit(&out, 7);
    let doc = json(&out);
    let error = &doc["error"];
    assert_eq!(error["kind"], "service_error", "{doc}");
    assert!(
        error.to_string().contains("pending"),
        "the cause names the outcome: {doc}"
    );

    // The options exclude each other (refused before anything is read).
    let out = mynacard(
        &[
            "--card",
            "sim:adult",
            "register",
            "--channel",
            "atm",
            "--service",
            &url,
            "--no-wait",
            "--max-wait",
            "5",
        ],
        None,
    );
    assert_exit(&out, 2);
}
