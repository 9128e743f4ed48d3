//! `mynacard info`, `cert read` and `pin status|change` against the simulated card, as a user runs
//! them. `--sim-state` keeps the simulated card's counters between invocations, so a wrong PIN
//! can be followed across processes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

mod support;

use support::{assert_exit, json, mynacard};

fn state_file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mynacard-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.state"));
    let _ = std::fs::remove_file(&path);
    path
}

fn retries(doc: &serde_json::Value) -> (i64, i64, i64) {
    let r = |k: &str| doc[k]["retries"].as_i64().unwrap_or(-1);
    (r("auth"), r("sign"), r("text"))
}

#[test]
fn fresh_card_pin_status() {
    let out = mynacard(&["--card", "sim", "pin", "status", "--json"], "");
    assert_exit(&out, 0);
    assert_eq!(retries(&json(&out)), (3, 5, 3));
}

#[test]
fn a_wrong_pin_lowers_exactly_one_counter_by_one_across_invocations() {
    let state = state_file("wrong-pin");
    let s = state.to_str().unwrap();
    let base = ["--card", "sim:adult", "--sim-state", s];
    let status = |_: ()| {
        json(&mynacard(
            &[&base[..], &["pin", "status", "--json"]].concat(),
            "",
        ))
    };
    assert_eq!(retries(&status(())), (3, 5, 3));
    let out = mynacard(
        &[
            &base[..],
            &["pin", "change", "--kind", "auth", "--pin-stdin", "--json"],
        ]
        .concat(),
        "9999\n1111\n",
    );
    assert_eq!(out.status.code(), Some(4), "wrong PIN exit code");
    assert_eq!(json(&out)["error"]["kind"], "wrong_pin");
    assert_eq!(retries(&status(())), (2, 5, 3));
}

#[test]
fn the_last_try_needs_allow_last_attempt() {
    let state = state_file("last-try");
    let s = state.to_str().unwrap();
    let base = ["--card", "sim:adult", "--sim-state", s];
    let change = |extra: &[&str], input: &str| {
        mynacard(
            &[
                &base[..],
                &["pin", "change", "--kind", "text", "--pin-stdin"],
                extra,
            ]
            .concat(),
            input,
        )
    };
    for _ in 0..2 {
        assert_eq!(change(&[], "0000\n1111\n").status.code(), Some(4));
    }
    let refused = change(&["--json"], "1234\n1111\n");
    assert_exit(&refused, 1);
    assert!(
        json(&refused)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--allow-last-attempt")
    );
    let doc = json(&mynacard(
        &[&base[..], &["pin", "status", "--json"]].concat(),
        "",
    ));
    assert_eq!(retries(&doc), (3, 5, 1), "the refusal spent nothing");
    let allowed = change(&["--allow-last-attempt"], "1234\n4321\n");
    assert_eq!(
        allowed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let doc = json(&mynacard(
        &[&base[..], &["pin", "status", "--json"]].concat(),
        "",
    ));
    assert_eq!(retries(&doc), (3, 5, 3));
}

#[test]
fn a_blocked_pin_has_its_exit_code() {
    let out = mynacard(
        &[
            "--card",
            "sim:blocked-auth-pin",
            "pin",
            "change",
            "--kind",
            "auth",
            "--pin-stdin",
            "--allow-last-attempt",
        ],
        "1234\n1111\n",
    );
    assert_exit(&out, 5);
}

#[test]
fn info_reports_kind_certificates_and_pins() {
    let out = mynacard(&["--card", "sim:under15", "info", "--json"], "");
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["card_kind"], "my-number-card");
    assert_eq!(doc["certificates"]["auth"], true);
    assert_eq!(doc["certificates"]["sign"], false);
    assert_eq!(doc["pins"]["sign"]["status"], "not-set");
    let phone = json(&mynacard(
        &["--card", "sim:smartphone", "info", "--json"],
        "",
    ));
    assert_eq!(phone["card_kind"], "android-se");
    assert_eq!(phone["pins"]["text"]["status"], "not-set");
}

#[test]
fn cert_read_pem_der_and_sign() {
    let out = mynacard(&["--card", "sim", "cert", "read", "--kind", "auth-ca"], "");
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("-----BEGIN CERTIFICATE-----"));
    let der = mynacard(
        &[
            "--card", "sim", "cert", "read", "--kind", "auth", "--format", "der",
        ],
        "",
    );
    assert_exit(&der, 0);
    assert_eq!(der.stdout[0], 0x30);
    let path = state_file("sign-cert").with_extension("der");
    let sign = mynacard(
        &[
            "--card",
            "sim",
            "cert",
            "read",
            "--kind",
            "sign",
            "--format",
            "der",
            "--pin-stdin",
            "--out",
            path.to_str().unwrap(),
        ],
        "abc123\n",
    );
    assert_eq!(
        sign.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&sign.stderr)
    );
    assert_eq!(std::fs::read(&path).unwrap()[0], 0x30);
    // The Android token asks for the PIN for its authentication certificate.
    let phone = mynacard(
        &[
            "--card",
            "sim:smartphone",
            "cert",
            "read",
            "--kind",
            "auth",
            "--pin-stdin",
        ],
        "1234\n",
    );
    assert_eq!(
        phone.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&phone.stderr)
    );
}

#[test]
fn pins_never_come_from_the_command_line_and_a_card_must_be_chosen() {
    let out = mynacard(
        &[
            "--card", "sim", "pin", "change", "--kind", "auth", "--pin", "1234",
        ],
        "",
    );
    assert_exit(&out, 2);
    let out = mynacard(&["pin", "status"], "");
    assert_exit(&out, 2);
}
