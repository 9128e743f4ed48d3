//! `mynacard register`, `eligibility` and `deregister` end to end: the commands against
//! `mynacard registry serve` running as its own process on a SQLite file, with simulated cards.
//! Also the crash test: the service exits right after committing a proof and before answering;
//! restarted on the same database, the client's automatic resend gets exactly one registration.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod support;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::{scratch, serve};

const BIN: &str = env!("CARGO_BIN_EXE_mynacard");

/// Runs a client command with the PIN on stdin and returns (exit code, JSON document).
fn client(args: &[&str], pin: Option<&str>) -> (i32, serde_json::Value) {
    let mut child = spawn_client(args, pin);
    wait_client(&mut child)
}

fn spawn_client(args: &[&str], pin: Option<&str>) -> Child {
    let mut cmd = Command::new(BIN);
    cmd.arg("--json").args(args).arg("--yes");
    if pin.is_some() {
        cmd.arg("--pin-stdin");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the client");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(pin) = pin {
        writeln!(stdin, "{pin}").expect("write PIN");
    }
    drop(stdin);
    child
}

fn wait_client(child: &mut Child) -> (i32, serde_json::Value) {
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().expect("stdout"), &mut out).expect("read");
    let status = child.wait().expect("wait");
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (status.code().unwrap_or(-1), doc)
}

#[test]
fn register_check_and_deregister_through_the_commands() {
    let (_service, url) = serve(&scratch().join("registry.db"), "127.0.0.1:0", None, &[]);

    let (code, doc) = client(
        &[
            "--card",
            "sim",
            "register",
            "--channel",
            "app",
            "--service",
            &url,
        ],
        Some("1234"),
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["outcome"], "registered");
    let id = doc["registration_id"].as_str().expect("id").to_owned();

    let (code, doc) = client(
        &[
            "--card",
            "sim:face-auth",
            "register",
            "--channel",
            "kiosk",
            "--service",
            &url,
        ],
        None,
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["outcome"], "registered");
    assert_eq!(doc["insurer_name"], "さくら市国民健康保険");

    let (code, doc) = client(
        &["--card", "sim:reissued", "eligibility", "--service", &url],
        Some("1234"),
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["outcome"], "eligible");
    assert_eq!(doc["eligibility"]["relinked"], true);
    assert_eq!(doc["registration_id"], id.as_str());

    let (code, doc) = client(
        &[
            "--card",
            "sim:revoked-auth",
            "register",
            "--channel",
            "atm",
            "--service",
            &url,
        ],
        Some("1234"),
    );
    assert_eq!(code, 6, "{doc}");
    assert_eq!(doc["error"]["kind"], "verification_failed");

    let (code, doc) = client(
        &[
            "--card",
            "sim",
            "register",
            "--channel",
            "app",
            "--service",
            &url,
        ],
        Some("9999"),
    );
    assert_eq!(code, 4, "{doc}");
    assert!(
        doc["error"]["causes"].to_string().contains("wrong_pin"),
        "{doc}"
    );

    let (code, doc) = client(
        &["--card", "sim:reissued", "deregister", "--service", &url],
        Some("1234"),
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["outcome"], "deregistered");
    assert_eq!(doc["registration_id"], id.as_str());

    let (code, doc) = client(
        &["--card", "sim:reissued", "eligibility", "--service", &url],
        Some("1234"),
    );
    assert_eq!(code, 7, "{doc}");
    assert!(
        doc["error"]["causes"]
            .to_string()
            .contains("not_registered"),
        "{doc}"
    );
}

#[test]
fn service_killed_between_proof_and_answer_gives_one_registration() {
    let db = scratch().join("registry.db");
    let (mut first, url) = serve(&db, "127.0.0.1:0", Some("exit-after-commit"), &[]);

    let mut client_process = spawn_client(
        &[
            "--card",
            "sim",
            "register",
            "--channel",
            "atm",
            "--service",
            &url,
        ],
        Some("1234"),
    );
    // The service commits the registration, then exits without answering.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if first.child.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the fault point was never reached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Restarted on the same database and port, without the fault.
    let listen = url.strip_prefix("http://").expect("http URL");
    let (_second, again) = serve(&db, listen, None, &[]);
    assert_eq!(again, url);
    let (code, doc) = wait_client(&mut client_process);
    assert_eq!(code, 0, "the resent proof got an answer: {doc}");
    assert_eq!(doc["outcome"], "registered", "{doc}");
    assert!(
        doc["http_requests"].as_u64().expect("count") >= 4,
        "the proof was resent: {doc}"
    );
    let id = doc["registration_id"].as_str().expect("id").to_owned();

    // One registration, not two and not none: the card is registered, under the same id.
    let (code, doc) = client(
        &[
            "--card",
            "sim",
            "register",
            "--channel",
            "atm",
            "--service",
            &url,
        ],
        Some("1234"),
    );
    assert_eq!(code, 0, "{doc}");
    assert_eq!(doc["outcome"], "already_registered");
    assert_eq!(doc["registration_id"], id.as_str());
}
