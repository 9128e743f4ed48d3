//! `mynacard` under careless or hostile use: every input has a size bound and says so past it,
//! the same bad input exits with the same code in every command (the README's table), a
//! `--record` is honoured or refused (never ignored), a prompt without a terminal names
//! `--pin-stdin`, `--at` outside the range of certificate times says which range, and the
//! registration commands tell a registration whose answer was lost from a service that was
//! never reached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use mynacard_sim::image::CardImage;
use support::{assert_exit, json, mynacard, scratch, serve, write};

/// The documented codes these tests expect (README table, `mynacard --help`).
const USAGE: i32 = 2;
const STILL_PENDING: i32 = 8;
const OUTCOME_UNKNOWN: i32 = 9;

/// A file of `len` bytes that takes no disk space (a hole): the command must refuse it without
/// reading it all.
fn sparse(dir: &Path, name: &str, len: u64) -> String {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(len))
        .expect("sparse file");
    path.to_str().expect("UTF-8 path").to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Eight GiB: more than a test machine would hand out.
const HUGE: u64 = 8 << 30;

#[test]
fn every_kind_of_input_is_read_with_a_bound_and_says_so_past_it() {
    let dir = scratch();
    let big = sparse(&dir, "big", HUGE);
    let image = CardImage::from_profile_name("adult").unwrap();
    let cert = write(&dir, "auth.der", &image.auth.cert_der);
    let small = write(&dir, "small", b"content");
    let image_dir = dir.join("image");
    std::fs::create_dir_all(&image_dir).unwrap();
    sparse(&image_dir, "card.toml", HUGE);
    let image_spec = format!("image:{}", image_dir.display());
    let db = format!("sqlite://{}", dir.join("registry.db").display());
    // (what is fed, the command, stdin, what the message must say)
    let cases: Vec<(&str, Vec<&str>, Option<&str>, String)> = vec![
        (
            "certificate",
            vec!["cert", "inspect", &big],
            None,
            format!("{big}: larger than 65536 bytes, not a certificate"),
        ),
        (
            "certificate to verify",
            vec!["cert", "verify", &big],
            None,
            format!("{big}: larger than 65536 bytes, not a certificate"),
        ),
        (
            "CRL",
            vec!["cert", "verify", &cert, "--crl", &big],
            None,
            format!("{big}: larger than 268435456 bytes, not a CRL"),
        ),
        (
            "file to sign",
            vec![
                "--card",
                "sim",
                "sign",
                "--key",
                "auth",
                "--in",
                &big,
                "--out",
                &small,
                "--pin-stdin",
            ],
            Some("1234\n"),
            format!("{big}: larger than 536870912 bytes, not a file to sign or verify"),
        ),
        (
            "signed file",
            vec!["verify", "--in", &big, "--sig", &small],
            None,
            format!("{big}: larger than 536870912 bytes, not a file to sign or verify"),
        ),
        (
            "signature",
            vec!["verify", "--in", &small, "--sig", &big],
            None,
            format!("{big}: larger than 1048576 bytes, not a signature"),
        ),
        (
            "pending status document",
            vec![
                "register",
                "--service",
                "http://127.0.0.1:9",
                "--resume",
                &big,
            ],
            None,
            format!("{big}: larger than 65536 bytes, not a pending registration status"),
        ),
        (
            "attestation key",
            vec![
                "--card",
                "sim:face-auth",
                "register",
                "--channel",
                "kiosk",
                "--service",
                "http://127.0.0.1:9",
                "--yes",
                "--attestation-key",
                &big,
            ],
            None,
            format!("{big}: larger than 16384 bytes, not a PKCS#8 key"),
        ),
        (
            "service CA",
            vec![
                "--card",
                "sim",
                "register",
                "--channel",
                "app",
                "--service",
                "https://127.0.0.1:9",
                "--service-ca",
                &big,
            ],
            None,
            format!("--service-ca: {big}: larger than 1048576 bytes, not a PEM file"),
        ),
        (
            "client certificate",
            vec![
                "--card",
                "sim",
                "register",
                "--channel",
                "app",
                "--service",
                "https://127.0.0.1:9",
                "--client-cert",
                &big,
            ],
            None,
            format!("--client-cert: {big}: larger than 1048576 bytes, not a PEM file"),
        ),
        (
            "simulated card state",
            vec!["--card", "sim", "--sim-state", &big, "info"],
            None,
            format!("--sim-state: {big}: larger than 1048576 bytes, not a simulated card state"),
        ),
        (
            "registry seed",
            vec![
                "registry",
                "serve",
                "--db",
                &db,
                "--listen",
                "127.0.0.1:0",
                "--seed",
                &big,
            ],
            None,
            format!("--seed: {big}: larger than 16777216 bytes, not a seed file"),
        ),
        (
            "registry CRL",
            vec![
                "registry",
                "serve",
                "--db",
                &db,
                "--listen",
                "127.0.0.1:0",
                "--crl",
                "/dev/zero",
            ],
            None,
            "--crl: /dev/zero: larger than 268435456 bytes, not a CRL".to_owned(),
        ),
        (
            "registry TLS key",
            vec![
                "registry",
                "serve",
                "--db",
                &db,
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                &big,
                "--tls-key",
                &big,
            ],
            None,
            format!("--tls-cert: {big}: larger than 1048576 bytes, not a PEM file"),
        ),
        (
            "recorded image description",
            vec!["--card", &image_spec, "info"],
            None,
            "is larger than 65536 bytes".to_owned(),
        ),
    ];
    for (what, args, stdin, message) in &cases {
        let started = Instant::now();
        let out = mynacard(args, *stdin);
        assert_exit(&out, USAGE);
        let text = stderr(&out);
        assert!(text.contains(message.as_str()), "{what}: {text}");
        // Refused before reading gigabytes.
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: took {:?}",
            started.elapsed()
        );
    }

    // Stdin documents and lines are bounded as well.
    let long_document = "x".repeat(70_000);
    let out = mynacard(
        &[
            "--json",
            "register",
            "--service",
            "http://127.0.0.1:9",
            "--resume",
            "-",
        ],
        long_document.as_str(),
    );
    assert_exit(&out, USAGE);
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "usage");
    assert_eq!(
        doc["error"]["message"],
        "stdin: larger than 65536 bytes, not a pending registration status"
    );
    let long_pin = "7".repeat(5000);
    let out = mynacard(
        &[
            "--card",
            "sim",
            "sign",
            "--key",
            "auth",
            "--in",
            &small,
            "--out",
            &small,
            "--pin-stdin",
        ],
        long_pin.as_str(),
    );
    assert_exit(&out, USAGE);
    let text = stderr(&out);
    assert!(
        text.contains("larger than 1024 bytes, not a line of input"),
        "{text}"
    );
    assert!(
        !text.contains(&long_pin[..16]),
        "the input is not echoed: {text}"
    );
}

#[test]
fn an_endless_device_is_refused_as_a_certificate() {
    let started = Instant::now();
    let out = mynacard(&["cert", "inspect", "/dev/zero"], None);
    assert_exit(&out, USAGE);
    let text = stderr(&out);
    assert!(
        text.contains("/dev/zero: larger than 65536 bytes, not a certificate"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// `mynacard --help`'s exit-code table: (code, description) per line.
fn help_table() -> Vec<(String, String)> {
    let out = mynacard(&["--help"], None);
    assert_exit(&out, 0);
    let help = String::from_utf8(out.stdout).unwrap();
    let table = help.split("Exit codes:\n").nth(1).expect("exit-code table");
    table
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let (code, description) = l.trim().split_once("  ").expect("code and meaning");
            (code.to_owned(), description.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_readme_table_is_the_help_table() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let table = help_table();
    assert_eq!(table.len(), 10, "{table:?}");
    for (i, (code, description)) in table.iter().enumerate() {
        assert_eq!(code, &i.to_string());
        let row = format!("| {code} | {description} |");
        assert!(readme.contains(&row), "README lacks the row {row}");
    }
}

/// Bad input of one kind, fed to several commands: each exits with the same code.
#[test]
fn the_same_bad_input_exits_with_the_same_code_everywhere() {
    let dir = scratch();
    let missing = dir.join("missing").to_str().unwrap().to_owned();
    let garbage = write(&dir, "garbage", b"\x00\x01 not what it should be {");
    let folder = dir.to_str().unwrap().to_owned();
    let image = CardImage::from_profile_name("adult").unwrap();
    let cert = write(&dir, "auth.der", &image.auth.cert_der);
    let small = write(&dir, "small", b"content");
    let service = "http://127.0.0.1:9";
    // Every command that reads an input file, with `FILE` where the input goes.
    let commands: Vec<Vec<&str>> = vec![
        vec!["cert", "inspect", "FILE"],
        vec!["cert", "verify", "FILE"],
        vec!["cert", "verify", &cert, "--crl", "FILE"],
        vec![
            "cert",
            "verify",
            &cert,
            "--allow-test-roots",
            "--test-root",
            "FILE",
        ],
        vec!["verify", "--in", &small, "--sig", "FILE", "--cert", &cert],
        vec!["verify", "--in", &small, "--sig", &small, "--cert", "FILE"],
        vec!["register", "--service", service, "--resume", "FILE"],
        vec![
            "--card",
            "sim:face-auth",
            "register",
            "--channel",
            "kiosk",
            "--service",
            service,
            "--yes",
            "--attestation-key",
            "FILE",
        ],
        vec![
            "--card",
            "sim",
            "register",
            "--channel",
            "app",
            "--service",
            "https://127.0.0.1:9",
            "--service-ca",
            "FILE",
        ],
        vec!["--card", "sim", "--sim-state", "FILE", "info"],
    ];
    // The missing file is no error for --sim-state (it is created), so it gets the others.
    let kinds = [
        ("missing", &missing),
        ("a folder", &folder),
        ("garbage", &garbage),
    ];
    for (kind, file) in kinds {
        for command in &commands {
            // A signature that is no CMS is checked as a raw one, and fails to verify (6):
            // garbage there is not an unreadable input.
            let skip = (kind == "missing" && command.contains(&"--sim-state"))
                || (kind == "garbage" && command.get(3) == Some(&"--sig"));
            if skip {
                continue;
            }
            let mut args: Vec<&str> = vec!["--json"];
            args.extend(
                command
                    .iter()
                    .map(|a| if *a == "FILE" { file.as_str() } else { a }),
            );
            let out = mynacard(&args, None);
            assert_eq!(
                out.status.code(),
                Some(USAGE),
                "{kind} to {command:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
            let doc = json(&out);
            assert_eq!(doc["error"]["kind"], "usage", "{kind} to {command:?}");
            assert_eq!(doc["error"]["exit_code"], USAGE);
        }
    }
    // A recorded image that is missing, a folder without a description, or garbage.
    for spec in [
        format!("image:{missing}"),
        format!("image:{folder}"),
        format!("image:{garbage}"),
    ] {
        let out = mynacard(&["--json", "--card", &spec, "info"], None);
        assert_exit(&out, USAGE);
        assert_eq!(json(&out)["error"]["kind"], "usage", "{spec}");
    }
}

#[test]
fn at_outside_the_range_of_certificate_times_names_the_range() {
    let dir = scratch();
    let image = CardImage::from_profile_name("adult").unwrap();
    let cert = write(&dir, "auth.der", &image.auth.cert_der);
    let out = mynacard(
        &["cert", "verify", &cert, "--at", "1900-01-01T00:00:00Z"],
        None,
    );
    assert_exit(&out, USAGE);
    let text = stderr(&out);
    assert!(
        text.contains("is before 1970-01-01T00:00:00Z, outside the range of certificate times"),
        "{text}"
    );
    assert!(
        text.contains("(1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z)"),
        "{text}"
    );
    assert!(!text.contains("not an RFC 3339 time"), "{text}");
    // What is not RFC 3339 is still called so.
    let out = mynacard(&["cert", "verify", &cert, "--at", "1900-01-01"], None);
    assert_exit(&out, USAGE);
    assert!(stderr(&out).contains("is not an RFC 3339 time"));
}

/// Runs `mynacard` in a session of its own, without a controlling terminal (as a service or a
/// job in a container runs it), stdin closed.
fn without_terminal(args: &[&str]) -> Output {
    Command::new("setsid")
        .arg("--wait")
        .arg(env!("CARGO_BIN_EXE_mynacard"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run mynacard under setsid")
}

#[test]
fn a_prompt_without_a_terminal_names_pin_stdin() {
    let dir = scratch();
    let content = write(&dir, "content", b"to sign");
    let out_file = dir.join("sig").to_str().unwrap().to_owned();
    for (what, args) in [
        (
            "Authentication PIN",
            vec![
                "--card", "sim", "sign", "--key", "auth", "--in", &content, "--out", &out_file,
            ],
        ),
        ("照合番号B", vec!["--card", "sim", "visual", "face"]),
        ("text AP PIN", vec!["--card", "sim", "text", "attributes"]),
    ] {
        let out = without_terminal(&args);
        assert_exit(&out, USAGE);
        let text = stderr(&out);
        assert!(text.contains("no terminal to type the"), "{what}: {text}");
        assert!(text.contains(what), "{what}: {text}");
        assert!(text.contains("--pin-stdin"), "{what}: {text}");
        assert!(!text.contains("error: No such device"), "{what}: {text}");
    }

    // The consent question reads stdin: when it ends before an answer, that is no person's
    // "no", and the message says how to agree without asking.
    let (_service, url) = serve(&scratch().join("registry.db"), "127.0.0.1:0", None, &[]);
    let out = without_terminal(&[
        "--card",
        "sim",
        "register",
        "--channel",
        "app",
        "--service",
        &url,
    ]);
    assert_exit(&out, USAGE);
    let text = stderr(&out);
    assert!(text.contains("no answer to the consent"), "{text}");
    assert!(text.contains("--yes"), "{text}");
}

#[test]
fn record_is_honoured_by_every_card_command_and_refused_by_the_others() {
    let (_service, url) = serve(&scratch().join("registry.db"), "127.0.0.1:0", None, &[]);
    let dir = scratch();
    let flows: [(&str, Vec<&str>); 3] = [
        ("register", vec!["register", "--channel", "app"]),
        ("eligibility", vec!["eligibility"]),
        ("deregister", vec!["deregister"]),
    ];
    for (name, command) in flows {
        let trace = dir.join(format!("{name}.jsonl"));
        let trace_arg = trace.to_str().unwrap();
        let mut args = vec!["--json", "--card", "sim", "--record", trace_arg];
        args.extend(command);
        args.extend(["--service", url.as_str(), "--yes", "--pin-stdin"]);
        let out = mynacard(&args, "1234\n");
        assert_exit(&out, 0);
        let doc = json(&out);
        let recorded = mynacard_trace::Trace::from_path(&trace)
            .unwrap_or_else(|e| panic!("{name}: no trace: {e}"));
        let apdus = doc["apdus"].as_u64().expect("apdus");
        assert!(apdus > 0, "{doc}");
        assert_eq!(
            recorded.exchanges().count() as u64,
            apdus,
            "{name}: every APDU is in the trace"
        );
        let text = std::fs::read_to_string(&trace).unwrap();
        // The VERIFY's PIN (ASCII "1234") is replaced.
        assert!(
            !text.contains("31323334"),
            "{name}: the PIN is in the trace"
        );
    }

    // Commands that exchange no APDUs refuse it (and create no file).
    let image = CardImage::from_profile_name("adult").unwrap();
    let cert = write(&dir, "auth.der", &image.auth.cert_der);
    let pending = write(&dir, "pending.json", b"{}");
    let refused = dir.join("refused.jsonl");
    let refused_arg = refused.to_str().unwrap();
    for (name, command) in [
        (
            "sim vpcd",
            vec!["sim", "vpcd", "--port", "9", "--connect-timeout", "1"],
        ),
        ("cert", vec!["cert", "inspect", &cert]),
        ("apdu", vec!["apdu", "decode", "9000"]),
        ("demo", vec!["demo"]),
    ] {
        let mut args = vec!["--record", refused_arg];
        args.extend(command);
        let out = mynacard(&args, None);
        assert_exit(&out, USAGE);
        let text = stderr(&out);
        assert!(
            text.contains(&format!("--record records the APDUs of a command that talks to a card, and `{name}` talks to none")),
            "{name}: {text}"
        );
        assert!(!refused.exists(), "{name} created the trace file");
    }
    let out = mynacard(
        &[
            "--record",
            refused_arg,
            "register",
            "--service",
            &url,
            "--resume",
            &pending,
        ],
        None,
    );
    assert_exit(&out, USAGE);
    assert!(stderr(&out).contains("`register --resume` talks to no card"));
    assert!(!refused.exists());
}

/// `mynacard registry serve` with the identity upstream down, its pending registrations polled
/// every 5 s (the default `Retry-After`); returns it and its URL.
fn serve_pending(db: &Path, listen: &str, fault: Option<&str>) -> (support::Service, String) {
    serve(
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

#[test]
fn resume_with_a_wait_shorter_than_retry_after_still_asks_once() {
    let db = scratch().join("registry.db");
    let (service, url) = serve_pending(&db, "127.0.0.1:0", Some("identity-down"));
    let out = mynacard(
        &[
            "--json",
            "--card",
            "sim",
            "register",
            "--channel",
            "atm",
            "--service",
            &url,
            "--yes",
            "--pin-stdin",
            "--no-wait",
        ],
        "1234\n",
    );
    assert_exit(&out, 0);
    let pending = json(&out);
    let retry_after = pending["pending"]["poll"]["retry_after"]
        .as_u64()
        .expect("retry_after");
    assert!(
        retry_after >= 2,
        "the test needs a wait below it: {pending}"
    );
    let dir = scratch();
    let doc_file = write(&dir, "pending.json", &out.stdout);
    let max_wait = (retry_after - 1).to_string();

    // Still pending: one poll within the wait, then exit 8 with how to resume.
    let started = Instant::now();
    let out = mynacard(
        &[
            "--json",
            "register",
            "--service",
            &url,
            "--resume",
            &doc_file,
            "--max-wait",
            &max_wait,
        ],
        None,
    );
    let took = started.elapsed();
    assert_exit(&out, STILL_PENDING);
    let again = json(&out);
    assert_eq!(again["outcome"], "pending", "{again}");
    assert_eq!(again["http_requests"], 1, "asked exactly once: {again}");
    assert!(
        took < Duration::from_secs(retry_after - 1) + Duration::from_secs(3),
        "waited {took:?} for a --max-wait of {max_wait} s"
    );
    // Readable, the reason goes to stderr with the command that resumes it.
    let out = mynacard(
        &[
            "register",
            "--service",
            &url,
            "--resume",
            &doc_file,
            "--max-wait",
            "1",
        ],
        None,
    );
    assert_exit(&out, STILL_PENDING);
    assert!(String::from_utf8_lossy(&out.stdout).contains("outcome:        pending"));
    let text = stderr(&out);
    assert!(text.contains("still pending"), "{text}");
    assert!(
        text.contains(&format!(
            "resume later with `mynacard register --resume FILE --service {url}`"
        )),
        "{text}"
    );

    // With the upstream back, a resume that may not wait at all asks and learns the result.
    drop(service);
    let listen = url.strip_prefix("http://").expect("http URL");
    let (_service, again_url) = serve_pending(&db, listen, None);
    assert_eq!(again_url, url);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = mynacard(
            &[
                "--json",
                "register",
                "--service",
                &url,
                "--resume",
                &doc_file,
                "--max-wait",
                "0",
            ],
            None,
        );
        let doc = json(&out);
        assert_eq!(doc["http_requests"], 1, "{doc}");
        if out.status.code() == Some(0) {
            assert_eq!(doc["outcome"], "registered", "{doc}");
            break;
        }
        assert_exit(&out, STILL_PENDING);
        assert!(Instant::now() < deadline, "never registered: {doc}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Runs a registration against `url` with the PIN on stdin, returning its process.
fn spawn_register(url: &str) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mynacard"))
        .args([
            "--json",
            "--card",
            "sim",
            "register",
            "--channel",
            "atm",
            "--service",
            url,
            "--yes",
            "--pin-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"1234\n")
        .expect("PIN");
    child
}

#[test]
fn a_service_that_dies_after_committing_leaves_an_unknown_outcome_not_unreachable() {
    let db = scratch().join("registry.db");
    let (mut service, url) = serve(&db, "127.0.0.1:0", Some("exit-after-commit"), &[]);
    let client = spawn_register(&url);
    let out = client.wait_with_output().expect("client");
    // The fault point was reached: the service is gone, the registration committed.
    let status = service.child.wait().expect("service");
    assert_eq!(
        status.code(),
        Some(86),
        "the service exited after its commit"
    );
    assert_exit(&out, OUTCOME_UNKNOWN);
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "outcome_unknown", "{doc}");
    assert_eq!(doc["error"]["exit_code"], OUTCOME_UNKNOWN);
    let message = doc["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("the outcome is unknown"), "{message}");
    assert!(message.contains("the proof of session "), "{message}");
    assert!(message.contains("`already_registered`"), "{message}");
    assert!(!message.contains("cannot be reached"), "{message}");

    // A service never reached is told apart: nothing was sent, exit 7.
    let nobody = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let out = spawn_register(&nobody).wait_with_output().expect("client");
    assert_exit(&out, 7);
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "service_error", "{doc}");
    assert!(
        doc["error"]["causes"]
            .to_string()
            .contains("service_unreachable"),
        "{doc}"
    );

    // What the message says to do finds it out: the registration exists.
    let listen = url.strip_prefix("http://").expect("http URL");
    let (_again, again_url) = serve(&db, listen, None, &[]);
    assert_eq!(again_url, url);
    let out = spawn_register(&url).wait_with_output().expect("client");
    assert_exit(&out, 0);
    assert_eq!(json(&out)["outcome"], "already_registered");
}
