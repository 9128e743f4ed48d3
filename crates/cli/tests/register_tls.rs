//! `mynacard register` over TLS: certificates from `mynacard registry dev-pki`, the service
//! started with them and mutual TLS required, and the `--service-ca` and `--client-cert` options.
//! A terminal registers with its own certificate; another terminal's certificate is refused with
//! `E_TERMINAL_MISMATCH`. Wrong files and TLS options for a plain-HTTP service are usage errors
//! (exit 2), refused before the card is touched.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod support;

use support::{assert_exit, json, mynacard, scratch, serve, write};

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

#[test]
fn a_terminal_registers_over_mutual_tls_with_its_own_certificate_only() {
    let dir = scratch();
    let pki = dir.join("pki");
    let pki_dir = pki.to_str().expect("UTF-8 path");
    let out = mynacard(
        &[
            "--json",
            "registry",
            "dev-pki",
            "--out",
            pki_dir,
            "--terminal",
            "atm-0001",
            "--terminal",
            "kiosk-0001",
        ],
        None,
    );
    assert_exit(&out, 0);
    let written = json(&out);
    assert_eq!(
        written["files"].as_array().expect("files").len(),
        6,
        "{written}"
    );
    let file = |name: &str| pki.join(name).display().to_string();

    let (_service, url) = serve(
        &dir.join("registry.db"),
        "127.0.0.1:0",
        None,
        &[
            "--tls-cert",
            &file("server.pem"),
            "--tls-key",
            &file("server.key"),
            "--client-ca",
            &file("terminal-ca.pem"),
            "--require-client-cert",
        ],
    );
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let service_ca = file("service-ca.pem");
    // atm-0001 registering over TLS, presenting `certificate` (a file of the PKI) or none.
    let over_tls = |certificate: Option<&str>| {
        let identity = certificate.map(file);
        let mut extra = vec![
            "--service",
            url.as_str(),
            "--terminal-id",
            "atm-0001",
            "--service-ca",
            service_ca.as_str(),
        ];
        if let Some(identity) = &identity {
            extra.extend(["--client-cert", identity.as_str()]);
        }
        register(&extra)
    };

    // Another terminal's certificate: refused by the service (nothing registered: the next
    // attempt is the card's first registration).
    let out = over_tls(Some("kiosk-0001.pem"));
    assert_exit(&out, 7);
    let doc = json(&out);
    assert!(
        doc["error"]["causes"]
            .to_string()
            .contains("E_TERMINAL_MISMATCH"),
        "{doc}"
    );

    // Its own: registered.
    let out = over_tls(Some("atm-0001.pem"));
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["outcome"], "registered", "{doc}");

    // No client certificate: the handshake is refused.
    let out = over_tls(None);
    assert_exit(&out, 7);
    let doc = json(&out);
    assert!(
        doc["error"]["causes"]
            .to_string()
            .contains("service_unreachable"),
        "{doc}"
    );

    // TLS options for a plain-HTTP service are a usage error.
    let out = register(&[
        "--service",
        "http://127.0.0.1:9",
        "--service-ca",
        &service_ca,
    ]);
    assert_exit(&out, 2);
    let message = json(&out)["error"]["message"].to_string();
    assert!(message.contains("https://"), "{message}");
}
