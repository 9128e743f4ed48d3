//! `mynacard cert inspect|verify`, `sign` and `verify` as a user runs them, checked against
//! OpenSSL: the same serial, names and validity as `openssl x509 -text`; CMS that
//! `openssl cms -verify` accepts; trust decisions and their exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

mod support;

use support::{assert_exit, json, mynacard, scratch, write};

use mynacard_cert::roots::JLIS_ROOTS;
use mynacard_cert::x509_cert::der::DateTime;
use mynacard_sim::image::CardImage;
use mynacard_sim::pki::{CaKind, TestPki};
use mynacard_sim::profile::Catalogue;

const VERIFICATION_FAILED: i32 = 6;
/// The simulator's reference "now" (every built-in profile but `expired-auth` is valid then).
const REFERENCE: &str = "2026-06-01T00:00:00Z";
const REFERENCE_UNIX: &str = "1780272000";

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl must be installed for these tests")
}

fn month(name: &str) -> u32 {
    [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == name)
    .unwrap() as u32
        + 1
}

/// `Oct 20 03:08:13 2015 GMT` → `2015-10-20T03:08:13Z`.
fn openssl_time(text: &str) -> String {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let day: u32 = parts[1].parse().unwrap();
    format!(
        "{}-{:02}-{:02}T{}Z",
        parts[3],
        month(parts[0]),
        day,
        parts[2]
    )
}

struct OpensslView {
    serial: String,
    issuer: String,
    subject: String,
    not_before: String,
    not_after: String,
}

fn openssl_view(der_path: &str) -> OpensslView {
    let out = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        der_path,
        "-noout",
        "-text",
        "-nameopt",
        "oneline,-esc_msb",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let field = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("{prefix} missing in {text}"))
            .trim()
            .replace(" = ", "=")
    };
    // `Serial Number: 1 (0x1)` or `Serial Number:` followed by `01:33:c3:49`.
    let i = lines
        .iter()
        .position(|l| l.trim().starts_with("Serial Number:"))
        .unwrap();
    let same_line = lines[i].trim().trim_start_matches("Serial Number:").trim();
    let serial = if let Some(hex) = same_line.split("(0x").nth(1) {
        hex.trim_end_matches(')').to_owned()
    } else {
        lines[i + 1].trim().replace(':', "")
    };
    OpensslView {
        serial: serial.trim_start_matches('0').to_ascii_uppercase(),
        issuer: field("Issuer:"),
        subject: field("Subject:"),
        not_before: openssl_time(&field("Not Before:")),
        not_after: openssl_time(&field("Not After :")),
    }
}

fn assert_inspect_agrees_with_openssl(der: &[u8], label: &str) {
    let dir = scratch();
    let path = write(&dir, "cert.der", der);
    let out = mynacard(&["cert", "inspect", &path, "--json"], None);
    assert_eq!(out.status.code(), Some(0), "{label}");
    let doc = json(&out);
    let view = openssl_view(&path);
    let serial = doc["serial"].as_str().unwrap().trim_start_matches('0');
    assert_eq!(serial, view.serial, "{label} serial");
    assert_eq!(doc["issuer"], view.issuer, "{label} issuer");
    assert_eq!(doc["subject"], view.subject, "{label} subject");
    assert_eq!(doc["not_before"], view.not_before, "{label} notBefore");
    assert_eq!(doc["not_after"], view.not_after, "{label} notAfter");
}

#[test]
fn inspect_agrees_with_openssl_on_the_six_jlis_roots() {
    for root in &JLIS_ROOTS {
        assert_inspect_agrees_with_openssl(root.der, root.file);
        let dir = scratch();
        let path = write(&dir, root.file, root.der);
        let doc = json(&mynacard(&["cert", "inspect", &path, "--json"], None));
        assert_eq!(doc["matched_root"]["label"], root.label());
        assert_eq!(doc["matched_root"]["generation"], root.generation);
        assert_eq!(doc["sha256"], root.sha256_hex);
        assert!(doc["personal_data"].is_null());
    }
}

#[test]
fn inspect_agrees_with_openssl_on_every_simulator_certificate() {
    let pki = TestPki::shared().unwrap();
    let mut n = 0;
    for kind in CaKind::ALL {
        assert_inspect_agrees_with_openssl(pki.root_der(kind), "test root");
        n += 1;
    }
    for profile in Catalogue::builtin().unwrap().profiles() {
        let image = profile.build_image(pki).unwrap();
        assert_inspect_agrees_with_openssl(&image.auth.cert_der, &profile.name);
        n += 1;
        if let Some(sign) = &image.sign {
            assert_inspect_agrees_with_openssl(&sign.cert_der, &profile.name);
            n += 1;
        }
    }
    assert!(n >= 17, "{n} certificates");
}

#[test]
fn inspect_shows_the_signing_certificates_personal_data_and_accepts_pem() {
    let image = CardImage::from_profile_name("adult").unwrap();
    let dir = scratch();
    let der = image.sign.as_ref().unwrap().cert_der.clone();
    let der_path = write(&dir, "sign.der", &der);
    let pem_path = dir.join("sign.pem");
    let conv = openssl(&[
        "x509",
        "-inform",
        "DER",
        "-in",
        &der_path,
        "-out",
        pem_path.to_str().unwrap(),
    ]);
    assert!(conv.status.success());
    let root_path = write(
        &dir,
        "root.der",
        TestPki::shared().unwrap().root_der(CaKind::Sign),
    );
    let doc = json(&mynacard(
        &[
            "cert",
            "inspect",
            pem_path.to_str().unwrap(),
            "--test-root",
            &root_path,
            "--json",
        ],
        None,
    ));
    assert_eq!(doc["kind"], "signing");
    assert_eq!(doc["hierarchy"], "test");
    let p = &doc["personal_data"];
    assert_eq!(p["name"], image.person.name.as_str());
    assert_eq!(p["address"], image.person.address.as_str());
    assert_eq!(p["sex"]["code"], "2");
    assert_eq!(p["sex"]["meaning"], "female");
    assert_eq!(p["birth_date"]["date"], "1980-02-17");
    assert_eq!(p["birth_date"]["era"], "昭和");
    assert_eq!(p["birth_date"]["era_year"], 55);
    assert_eq!(doc["matched_root"]["label"], "test-root-1");
    // Readable output too.
    let text = String::from_utf8(mynacard(&["cert", "inspect", &der_path], None).stdout).unwrap();
    assert!(
        text.contains("birth date:    1980-02-17 (昭和 55)"),
        "{text}"
    );
}

fn sim_files(dir: &Path) -> (String, String) {
    let pki = TestPki::shared().unwrap();
    (
        write(dir, "auth-root.der", pki.root_der(CaKind::Auth)),
        write(dir, "sign-root.der", pki.root_der(CaKind::Sign)),
    )
}

#[test]
fn verify_needs_the_opt_in_for_the_test_hierarchy() {
    let dir = scratch();
    let (auth_root, _) = sim_files(&dir);
    let image = CardImage::from_profile_name("adult").unwrap();
    let cert = write(&dir, "auth.der", &image.auth.cert_der);
    let out = mynacard(&["cert", "verify", &cert, "--at", REFERENCE], None);
    assert_exit(&out, VERIFICATION_FAILED);
    assert!(String::from_utf8_lossy(&out.stderr).contains("test hierarchy was not allowed"));

    let out = mynacard(
        &[
            "cert",
            "verify",
            &cert,
            "--at",
            REFERENCE,
            "--allow-test-roots",
            "--test-root",
            &auth_root,
            "--json",
        ],
        None,
    );
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["trusted"], true);
    assert_eq!(doc["root"]["hierarchy"], "test");
    assert_eq!(doc["revocation"]["status"], "unchecked");

    // --test-root without the opt-in is a usage error.
    let out = mynacard(&["cert", "verify", &cert, "--test-root", &auth_root], None);
    assert_exit(&out, 2);
}

#[test]
fn an_expired_certificate_is_refused_after_expiry_and_accepted_inside_validity() {
    let dir = scratch();
    let (auth_root, _) = sim_files(&dir);
    let image = CardImage::from_profile_name("expired-auth").unwrap();
    let cert = write(&dir, "expired.der", &image.auth.cert_der);
    let not_after = json(&mynacard(&["cert", "inspect", &cert, "--json"], None))["not_after"]
        .as_str()
        .unwrap()
        .to_owned();
    let trust = ["--allow-test-roots", "--test-root", &auth_root];
    let after = mynacard(
        &[&["cert", "verify", &cert, "--at", REFERENCE][..], &trust].concat(),
        None,
    );
    assert_exit(&after, VERIFICATION_FAILED);
    assert!(String::from_utf8_lossy(&after.stderr).contains(&format!("expired at {not_after}")));
    let inside = mynacard(
        &[&["cert", "verify", &cert, "--at", &not_after][..], &trust].concat(),
        None,
    );
    assert_exit(&inside, 0);
}

#[test]
fn a_revoked_certificate_is_refused_with_its_reason() {
    let dir = scratch();
    let (auth_root, _) = sim_files(&dir);
    let pki = TestPki::shared().unwrap();
    let catalogue = Catalogue::builtin().unwrap();
    let crl = catalogue
        .crl_der(
            CaKind::Auth,
            pki,
            DateTime::new(2026, 6, 1, 0, 0, 0).unwrap(),
        )
        .unwrap();
    let crl = write(&dir, "auth.crl", &crl);
    let revoked = CardImage::from_profile_name("revoked-auth").unwrap();
    let revoked = write(&dir, "revoked.der", &revoked.auth.cert_der);
    let trust = [
        "--allow-test-roots",
        "--test-root",
        &auth_root,
        "--crl",
        &crl,
    ];
    let out = mynacard(
        &[
            &[
                "cert",
                "verify",
                &revoked,
                "--at",
                "2026-06-01T12:00:00Z",
                "--json",
            ][..],
            &trust,
        ]
        .concat(),
        None,
    );
    assert_exit(&out, VERIFICATION_FAILED);
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "verification_failed");
    assert_eq!(
        doc["error"]["message"],
        "certificate is revoked (keyCompromise, 2026-05-10T00:00:00Z)"
    );
    // The adult card is on no list: good.
    let adult = CardImage::from_profile_name("adult").unwrap();
    let adult = write(&dir, "adult.der", &adult.auth.cert_der);
    let out = mynacard(
        &[
            &[
                "cert",
                "verify",
                &adult,
                "--at",
                "2026-06-01T12:00:00Z",
                "--json",
            ][..],
            &trust,
        ]
        .concat(),
        None,
    );
    assert_exit(&out, 0);
    assert_eq!(json(&out)["revocation"]["status"], "good");
}

#[test]
fn a_certificate_signed_by_another_key_under_a_jlis_name_is_refused() {
    let dir = scratch();
    let subject = "/C=JP/O=JPKI/OU=JPKI for user authentication/OU=Japan Agency for Local Authority Information Systems";
    let root = dir.join("forged-root.pem");
    let key = dir.join("forged.key");
    let made = openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        key.to_str().unwrap(),
        "-subj",
        subject,
        "-days",
        "3650",
        "-out",
        root.to_str().unwrap(),
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
    ]);
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    // Same name as the J-LIS roots…
    let forged = json(&mynacard(
        &["cert", "inspect", root.to_str().unwrap(), "--json"],
        None,
    ));
    assert_eq!(
        forged["subject"],
        json(&mynacard(
            &[
                "cert",
                "inspect",
                &write(&dir, "authca03.cer", JLIS_ROOTS[2].der),
                "--json"
            ],
            None
        ))["subject"]
    );
    assert!(forged["matched_root"].is_null());
    // …but not their key.
    let out = mynacard(&["cert", "verify", root.to_str().unwrap()], None);
    assert_exit(&out, VERIFICATION_FAILED);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("does not verify with any of the 3 trusted roots")
    );

    // A leaf it issued is refused the same way.
    let leaf_key = dir.join("leaf.key");
    let csr = dir.join("leaf.csr");
    let leaf = dir.join("leaf.pem");
    let ext = write(&dir, "leaf.ext", b"keyUsage=critical,digitalSignature\n");
    assert!(
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            leaf_key.to_str().unwrap(),
            "-subj",
            "/C=JP/CN=FORGED0000000000000000A",
            "-out",
            csr.to_str().unwrap(),
        ])
        .status
        .success()
    );
    assert!(
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            root.to_str().unwrap(),
            "-CAkey",
            key.to_str().unwrap(),
            "-CAcreateserial",
            "-days",
            "365",
            "-extfile",
            &ext,
            "-out",
            leaf.to_str().unwrap(),
        ])
        .status
        .success()
    );
    let out = mynacard(&["cert", "verify", leaf.to_str().unwrap(), "--json"], None);
    assert_exit(&out, VERIFICATION_FAILED);
    assert_eq!(
        json(&out)["error"]["causes"][0].as_str().unwrap(),
        "signature does not verify with any of the 3 trusted roots named C=JP, O=JPKI, OU=JPKI for user authentication, OU=Japan Agency for Local Authority Information Systems"
    );
}

fn openssl_cms_verify(dir: &Path, sig: &str, content: &str, root_pem: &str) -> bool {
    openssl(&[
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        sig,
        "-content",
        content,
        "-CAfile",
        root_pem,
        "-attime",
        REFERENCE_UNIX,
        "-out",
        dir.join("out.bin").to_str().unwrap(),
    ])
    .status
    .success()
}

#[test]
fn a_detached_cms_from_the_simulated_card_verifies_in_openssl_and_here_and_a_changed_byte_fails_both()
 {
    let dir = scratch();
    let root_pem = write(
        &dir,
        "sign-root.pem",
        TestPki::shared()
            .unwrap()
            .root_pem(CaKind::Sign)
            .unwrap()
            .as_bytes(),
    );
    let doc: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let content = write(&dir, "doc.bin", &doc);
    let sig = dir.join("doc.p7s").to_str().unwrap().to_owned();
    let out = mynacard(
        &[
            "sign",
            "--card",
            "sim",
            "--key",
            "sign",
            "--in",
            &content,
            "--out",
            &sig,
            "--detached",
            "--pin-stdin",
            "--json",
        ],
        Some("ABC123\n"),
    );
    assert_exit(&out, 0);
    assert_eq!(json(&out)["format"], "cms");

    assert!(openssl_cms_verify(&dir, &sig, &content, &root_pem));
    let trust = [
        "--allow-test-roots",
        "--test-root",
        &root_pem,
        "--at",
        REFERENCE,
    ];
    let ok = mynacard(
        &[
            &["verify", "--in", &content, "--sig", &sig, "--json"][..],
            &trust,
        ]
        .concat(),
        None,
    );
    assert_exit(&ok, 0);
    let report = json(&ok);
    assert_eq!(report["signature"], "valid");
    assert_eq!(report["signer_kind"], "signing");
    assert_eq!(report["certificate"]["root"]["hierarchy"], "test");

    let mut changed_doc = doc.clone();
    changed_doc[2500] ^= 0x01;
    let changed = write(&dir, "changed.bin", &changed_doc);
    assert!(!openssl_cms_verify(&dir, &sig, &changed, &root_pem));
    let bad = mynacard(
        &[&["verify", "--in", &changed, "--sig", &sig][..], &trust].concat(),
        None,
    );
    assert_exit(&bad, VERIFICATION_FAILED);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("message digest does not match"));

    // Without the opt-in the same good signature is not trusted.
    let untrusted = mynacard(&["verify", "--in", &content, "--sig", &sig], None);
    assert_exit(&untrusted, VERIFICATION_FAILED);
}

#[test]
fn raw_signatures_with_the_auth_key_and_an_attached_cms() {
    let dir = scratch();
    let (auth_root, sign_root) = sim_files(&dir);
    let image = CardImage::from_profile_name("adult").unwrap();
    let auth_cert = write(&dir, "auth.der", &image.auth.cert_der);
    let content = write(&dir, "nonce.bin", b"server nonce 0123456789");
    let sig = dir.join("nonce.sig").to_str().unwrap().to_owned();
    let out = mynacard(
        &[
            "sign",
            "--card",
            "sim",
            "--key",
            "auth",
            "--format",
            "raw",
            "--in",
            &content,
            "--out",
            &sig,
            "--pin-stdin",
        ],
        Some("1234\n"),
    );
    assert_exit(&out, 0);
    assert_eq!(std::fs::read(&sig).unwrap().len(), 256);
    let trust = [
        "--allow-test-roots",
        "--test-root",
        &auth_root,
        "--at",
        REFERENCE,
    ];
    let needs_cert = mynacard(
        &[&["verify", "--in", &content, "--sig", &sig][..], &trust].concat(),
        None,
    );
    assert_exit(&needs_cert, 2);
    let ok = mynacard(
        &[
            &[
                "verify", "--in", &content, "--sig", &sig, "--cert", &auth_cert,
            ][..],
            &trust,
        ]
        .concat(),
        None,
    );
    assert_exit(&ok, 0);
    // OpenSSL agrees on the raw signature.
    let pubkey = dir.join("auth.pub");
    assert!(
        openssl(&[
            "x509",
            "-inform",
            "DER",
            "-in",
            &auth_cert,
            "-pubkey",
            "-noout",
            "-out",
            pubkey.to_str().unwrap()
        ])
        .status
        .success()
    );
    assert!(
        openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            pubkey.to_str().unwrap(),
            "-signature",
            &sig,
            &content
        ])
        .status
        .success()
    );

    // Attached CMS with the signing key, SHA-512.
    let p7m = dir.join("doc.p7m").to_str().unwrap().to_owned();
    let out = mynacard(
        &[
            "sign",
            "--card",
            "sim",
            "--key",
            "sign",
            "--hash",
            "sha512",
            "--in",
            &content,
            "--out",
            &p7m,
            "--pin-stdin",
        ],
        Some("abc123\n"),
    );
    assert_exit(&out, 0);
    let ok = mynacard(
        &[
            "verify",
            "--in",
            &content,
            "--sig",
            &p7m,
            "--allow-test-roots",
            "--test-root",
            &sign_root,
            "--at",
            REFERENCE,
            "--json",
        ],
        None,
    );
    assert_exit(&ok, 0);
    assert_eq!(json(&ok)["hash"], "sha512");
}

#[test]
fn a_wrong_pin_is_reported_with_its_exit_code_and_nothing_is_written() {
    let dir = scratch();
    let content = write(&dir, "doc.bin", b"x");
    let sig = dir.join("doc.sig");
    let out = mynacard(
        &[
            "sign",
            "--card",
            "sim",
            "--key",
            "auth",
            "--in",
            &content,
            "--out",
            sig.to_str().unwrap(),
            "--pin-stdin",
        ],
        Some("9999\n"),
    );
    assert_exit(&out, 4);
    assert!(!sig.exists());
    let usage = mynacard(
        &[
            "sign",
            "--card",
            "sim",
            "--key",
            "auth",
            "--format",
            "raw",
            "--detached",
            "--in",
            &content,
            "--out",
            sig.to_str().unwrap(),
        ],
        None,
    );
    assert_exit(&usage, 2);
}

/// The certificate and signature recorded from a real card (see the cert crate's
/// `tests/fixtures/real-card/README.md`).
fn real_card_file(dir: &Path, name: &str) -> String {
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../cert/tests/fixtures/real-card")
            .join(name),
    )
    .unwrap();
    write(dir, name, &bytes)
}

#[test]
fn a_real_cards_certificate_and_signature_verify_with_production_roots_only() {
    let dir = scratch();
    let cert = real_card_file(&dir, "auth-2019-authca01.cer");
    let message = real_card_file(&dir, "message1.bin");
    let sig = real_card_file(&dir, "message1.auth-sha256-pkcs1.sig");
    assert_inspect_agrees_with_openssl(&std::fs::read(&cert).unwrap(), "real auth");
    let doc = json(&mynacard(&["cert", "inspect", &cert, "--json"], None));
    assert_eq!(doc["matched_root"]["label"], "authca01");

    let inside = ["--at", "2020-01-01T00:00:00Z"];
    let ok = mynacard(&[&["cert", "verify", &cert][..], &inside].concat(), None);
    assert_exit(&ok, 0);
    let expired = mynacard(
        &["cert", "verify", &cert, "--at", "2025-01-01T00:00:00Z"],
        None,
    );
    assert_exit(&expired, VERIFICATION_FAILED);

    // The card's own PKCS#1 v1.5 signature over SHA-256 of the message.
    let verify = |content: &str| {
        mynacard(
            &[
                &["verify", "--in", content, "--sig", &sig, "--cert", &cert][..],
                &inside,
            ]
            .concat(),
            None,
        )
    };
    let good = verify(&message);
    assert_exit(&good, 0);
    let other = write(&dir, "message2.bin", b"message2");
    assert_eq!(verify(&other).status.code(), Some(VERIFICATION_FAILED));
}
