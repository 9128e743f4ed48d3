//! `mynacard register` over TLS: the `--service-ca` and `--client-cert` options. Wrong files and
//! TLS options for a plain-HTTP service are usage errors (exit 2), refused before the card is
//! touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod support;

use support::{assert_exit, json, mynacard, scratch, write};

/// `mynacard --json --card sim:adult register --channel atm --yes --pin-stdin` with `extra`.
fn register(extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--json",
        "--card",
        "sim:adult",
        "register",
        "--channel",
        "atm",
        "--yes",
        "--pin-stdin",
    ];
    args.extend_from_slice(extra);
    mynacard(&args, "1234\n")
}

#[test]
fn tls_options_with_unusable_files_or_plain_http_are_usage_errors() {
    let dir = scratch();
    let not_pem = write(&dir, "not.pem", b"this is not a certificate\n");
    let missing = dir.join("missing.pem").display().to_string();

    let cases: [(&[&str], &str); 3] = [
        (
            &["--service", "https://127.0.0.1:9", "--service-ca", &not_pem],
            "--service-ca",
        ),
        (
            &["--service", "https://127.0.0.1:9", "--service-ca", &missing],
            "cannot read",
        ),
        (
            &[
                "--service",
                "https://127.0.0.1:9",
                "--client-cert",
                &not_pem,
            ],
            "--client-cert",
        ),
    ];
    for (extra, says) in cases {
        let out = register(extra);
        assert_exit(&out, 2);
        let doc = json(&out);
        assert_eq!(doc["error"]["kind"], "usage", "{extra:?}: {doc}");
        let message = doc["error"]["message"].as_str().expect("message");
        assert!(message.contains(says), "{extra:?}: {message}");
        assert_eq!(doc.get("apdus"), None, "nothing was run: {doc}");
    }
}
