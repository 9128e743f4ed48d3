//! `--card image:PATH` with the recorded J-LIS test card: `cert read` gives the recorded files
//! byte for byte, the signing certificate's personal data decode with `cert inspect`, both
//! certificates are trusted only with `--allow-test-roots` and their own test roots, signing is
//! refused without spending anything, and `sim vpcd --image` loads the image.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod support;

use support::{assert_exit, json, mynacard, scratch, write};

use mynacard_sim::recorded::JLIS_TEST_CARD;

const VERIFICATION_FAILED: i32 = 6;
/// Inside both certificates' validity (2025-10-27 to 2030-02-17).
const AT: &str = "2026-06-01T00:00:00Z";

fn image_file(name: &str) -> PathBuf {
    Path::new(JLIS_TEST_CARD).join(name)
}

fn image_path(name: &str) -> String {
    image_file(name).to_str().unwrap().to_owned()
}

fn recorded(name: &str) -> Vec<u8> {
    std::fs::read(image_file(name)).unwrap()
}

fn card() -> String {
    format!("image:{JLIS_TEST_CARD}")
}

/// `mynacard ARGS` run from the workspace root, as the README shows it, with `stdin`.
fn from_workspace_root(args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mynacard"))
        .current_dir(root)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn cert_read_gives_the_recorded_files_byte_for_byte() {
    let relative = "image:crates/sim/images/jlis-test-card";
    let auth = from_workspace_root(
        &[
            "--card", relative, "cert", "read", "--kind", "auth", "--format", "der",
        ],
        "",
    );
    assert_exit(&auth, 0);
    assert_eq!(auth.stdout, recorded("jpki-auth-cert.der"));
    let sign = from_workspace_root(
        &[
            "--card",
            relative,
            "cert",
            "read",
            "--kind",
            "sign",
            "--format",
            "der",
            "--pin-stdin",
        ],
        "ABC123\n",
    );
    assert_exit(&sign, 0);
    assert_eq!(sign.stdout, recorded("jpki-sign-cert.der"));
    for (kind, name) in [
        ("auth-ca", "jpki-auth-ca-cert.der"),
        ("sign-ca", "jpki-sign-ca-cert.der"),
    ] {
        let out = mynacard(
            &[
                "--card",
                &card(),
                "cert",
                "read",
                "--kind",
                kind,
                "--format",
                "der",
            ],
            "",
        );
        assert_exit(&out, 0);
        assert_eq!(out.stdout, recorded(name), "{kind}");
    }
    // The description file names the image as well as its folder.
    let by_file = format!("image:{}", image_path("card.toml"));
    let out = mynacard(
        &[
            "--card", &by_file, "cert", "read", "--kind", "auth", "--format", "der",
        ],
        "",
    );
    assert_exit(&out, 0);
    assert_eq!(out.stdout, recorded("jpki-auth-cert.der"));
}

#[test]
fn the_signing_certificate_read_from_the_image_names_the_test_holder() {
    let dir = scratch();
    let path = dir.join("sign.der");
    let path_text = path.to_str().unwrap();
    let read = mynacard(
        &[
            "--card",
            &card(),
            "cert",
            "read",
            "--kind",
            "sign",
            "--format",
            "der",
            "--out",
            path_text,
            "--pin-stdin",
        ],
        "ABC123\n",
    );
    assert_exit(&read, 0);
    let inspect = mynacard(&["cert", "inspect", path_text, "--json"], "");
    assert_exit(&inspect, 0);
    let doc = json(&inspect);
    assert_eq!(doc["kind"], "signing");
    assert_eq!(doc["hierarchy"], "test");
    let personal = &doc["personal_data"];
    assert_eq!(personal["name"], "黒桐\u{3000}幹也");
    assert!(
        personal["address"]
            .as_str()
            .unwrap()
            .starts_with("東京都清瀬市"),
        "{personal}"
    );
    assert_eq!(personal["birth_date"]["date"], "1980-02-17");
    assert_eq!(personal["sex"]["meaning"], "male");
}

#[test]
fn both_certificates_are_trusted_only_with_their_test_roots() {
    let dir = scratch();
    for (leaf, root) in [
        ("jpki-auth-cert.der", "jpki-auth-ca-cert.der"),
        ("jpki-sign-cert.der", "jpki-sign-ca-cert.der"),
    ] {
        let path = write(&dir, leaf, &recorded(leaf));
        let refused = mynacard(&["cert", "verify", &path, "--at", AT], "");
        assert_exit(&refused, VERIFICATION_FAILED);
        let trusted = mynacard(
            &[
                "cert",
                "verify",
                &path,
                "--at",
                AT,
                "--allow-test-roots",
                "--test-root",
                &image_path(root),
                "--json",
            ],
            "",
        );
        assert_exit(&trusted, 0);
        let doc = json(&trusted);
        assert_eq!(doc["trusted"], true, "{leaf}");
        assert_eq!(doc["root"]["hierarchy"], "test", "{leaf}");
        // The other hierarchy's root does not sign this leaf.
        let other = if root.contains("auth") {
            "jpki-sign-ca-cert.der"
        } else {
            "jpki-auth-ca-cert.der"
        };
        let wrong = mynacard(
            &[
                "cert",
                "verify",
                &path,
                "--at",
                AT,
                "--allow-test-roots",
                "--test-root",
                &image_path(other),
            ],
            "",
        );
        assert_exit(&wrong, VERIFICATION_FAILED);
    }
}

#[test]
fn signing_with_the_image_is_refused_and_spends_nothing() {
    let dir = scratch();
    let state = dir.join("image.state");
    let state_text = state.to_str().unwrap();
    let input = write(&dir, "message.txt", b"hello");
    let output = dir.join("message.p7s");
    let sign = mynacard(
        &[
            "--card",
            &card(),
            "--sim-state",
            state_text,
            "sign",
            "--key",
            "sign",
            "--in",
            &input,
            "--out",
            output.to_str().unwrap(),
            "--pin-stdin",
        ],
        "ABC123\n",
    );
    assert_exit(&sign, 1);
    let stderr = String::from_utf8_lossy(&sign.stderr);
    assert!(stderr.contains("holds no private keys"), "{stderr}");
    assert!(!output.exists());

    // A wrong PIN is kept in the state file; the refused signature cost nothing.
    let wrong = mynacard(
        &[
            "--card",
            &card(),
            "--sim-state",
            state_text,
            "cert",
            "read",
            "--kind",
            "sign",
            "--pin-stdin",
        ],
        "WRONG1\n",
    );
    assert_exit(&wrong, 4);
    let status = mynacard(
        &[
            "--card",
            &card(),
            "--sim-state",
            state_text,
            "pin",
            "status",
            "--json",
        ],
        "",
    );
    assert_exit(&status, 0);
    let doc = json(&status);
    assert_eq!(doc["auth"]["retries"], 3);
    assert_eq!(doc["sign"]["retries"], 4);
    assert_eq!(doc["text"]["retries"], 3);

    // That state file is the image's: a generated profile refuses it.
    let other = mynacard(
        &["--card", "sim", "--sim-state", state_text, "pin", "status"],
        "",
    );
    assert_exit(&other, 2);
}

#[test]
fn bad_image_paths_are_usage_errors() {
    let dir = scratch();
    let description = write(&dir, "card.toml", b"format = 1\nname = \"x\"\n");
    for spec in [
        "image:".to_owned(),
        format!("image:{}", dir.join("nowhere").display()),
        format!("image:{description}"),
    ] {
        let out = mynacard(&["--card", &spec, "cert", "read", "--kind", "auth"], "");
        assert_exit(&out, 2);
    }
}

#[test]
fn sim_vpcd_loads_an_image() {
    // Nothing listens on this port: the image loads, then the connection is refused.
    let out = mynacard(
        &[
            "sim",
            "vpcd",
            "--image",
            JLIS_TEST_CARD,
            "--port",
            "9",
            "--connect-timeout",
            "1",
            "--once",
        ],
        "",
    );
    assert_exit(&out, 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("image:jlis-test-card"), "{stderr}");
    let bad = mynacard(
        &[
            "sim",
            "vpcd",
            "--image",
            "/nonexistent",
            "--connect-timeout",
            "1",
        ],
        "",
    );
    assert_exit(&bad, 2);
    let both = mynacard(
        &[
            "sim",
            "vpcd",
            "--image",
            JLIS_TEST_CARD,
            "--profile",
            "adult",
        ],
        "",
    );
    assert_exit(&both, 2);
}
