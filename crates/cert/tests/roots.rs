//! The embedded J-LIS roots: bytes, table, parsing, self-verification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use mynacard_cert::{
    CertKind, ChainError, Hierarchy, JpkiCertificate, Purpose, TrustPolicy, format_rfc3339,
    roots::JLIS_ROOTS, verify_chain,
};
use sha2::{Digest, Sha256};

/// Rows of the table in `roots/README.md`: (file, generation, serial, sha256).
fn readme_table() -> Vec<(String, u8, String, String)> {
    let text = include_str!("../roots/README.md");
    text.lines()
        .filter(|l| l.starts_with("| ") && l.contains(".cer"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].to_owned(),
                cells[3].parse().unwrap(),
                cells[5].to_owned(),
                cells[6].to_owned(),
            )
        })
        .collect()
}

#[test]
fn roots_match_the_table() {
    let table = readme_table();
    assert_eq!(table.len(), 6);
    for (file, generation, _, sha) in &table {
        let root = JLIS_ROOTS.iter().find(|r| r.file == file).unwrap();
        assert_eq!(hex::encode(Sha256::digest(root.der)), *sha, "{file}");
        assert_eq!(root.sha256_hex, sha, "{file}");
        assert_eq!(root.generation, *generation, "{file}");
        let on_disk = std::fs::read(format!("{}/roots/{file}", env!("CARGO_MANIFEST_DIR")));
        assert_eq!(on_disk.unwrap(), root.der, "{file}");
    }
}

#[test]
fn roots_parse_with_their_kind_serial_and_validity() {
    for (file, _, serial, _) in readme_table() {
        let root = JLIS_ROOTS.iter().find(|r| r.file == file).unwrap();
        let cert = JpkiCertificate::from_der(root.der).unwrap();
        assert_eq!(cert.serial_hex(), serial.trim_start_matches("00"), "{file}");
        assert_eq!(cert.hierarchy(), Hierarchy::Production);
        assert!(cert.is_ca() && cert.is_self_issued());
        let expected_kind = match root.purpose {
            Purpose::Authentication => CertKind::AuthenticationCa,
            Purpose::Signing => CertKind::SigningCa,
        };
        assert_eq!(cert.kind(), expected_kind, "{file}");
        assert!(cert.personal_data().is_none());
        let ku = cert.key_usage().unwrap();
        assert!(ku.key_cert_sign && ku.crl_sign && !ku.digital_signature);
        let start = match root.generation {
            1 => "2015-10-20",
            2 => "2019-09-14",
            _ => "2023-07-16",
        };
        assert!(
            format_rfc3339(cert.not_before()).starts_with(start),
            "{file}"
        );
    }
}

#[test]
fn each_root_verifies_as_itself_at_a_time_inside_its_validity() {
    let policy = TrustPolicy::production();
    for root in &JLIS_ROOTS {
        let cert = JpkiCertificate::from_der(root.der).unwrap();
        let inside = cert.not_before() + std::time::Duration::from_secs(86_400);
        let chain = verify_chain(&cert, &policy, inside).unwrap();
        assert!(chain.certificate_is_anchor);
        assert_eq!(chain.root.generation, Some(root.generation));
        assert_eq!(chain.root.label, root.label());
        assert_eq!(chain.root.hierarchy, Hierarchy::Production);
        assert_eq!(hex::encode(chain.root.sha256), root.sha256_hex);
    }
}

#[test]
fn generation_one_is_refused_after_it_expired() {
    let policy = TrustPolicy::production();
    let gen1 = JpkiCertificate::from_der(JLIS_ROOTS[0].der).unwrap();
    let after = common::system_time("2025-10-20T00:00:00Z");
    assert!(matches!(
        verify_chain(&gen1, &policy, after),
        Err(ChainError::RootNotValid { .. })
    ));
    let before = common::system_time("2025-10-19T00:00:00Z");
    assert!(verify_chain(&gen1, &policy, before).is_ok());
}

#[test]
fn the_three_generations_of_a_kind_share_one_name() {
    for root in &JLIS_ROOTS {
        let cert = JpkiCertificate::from_der(root.der).unwrap();
        let same_name = JLIS_ROOTS
            .iter()
            .filter(|r| r.purpose == root.purpose)
            .map(|r| JpkiCertificate::from_der(r.der).unwrap())
            .collect::<Vec<_>>();
        assert_eq!(same_name.len(), 3);
        assert!(same_name.iter().all(|c| c.subject() == cert.subject()));
    }
}

#[test]
fn production_policy_holds_exactly_the_six_roots() {
    let policy = TrustPolicy::production();
    assert!(!policy.accepts_test_hierarchy());
    let labels: Vec<String> = policy.anchors().iter().map(|a| a.label()).collect();
    assert_eq!(
        labels,
        [
            "authca01", "authca02", "authca03", "signca01", "signca02", "signca03"
        ]
    );
}

#[test]
fn pem_and_der_parse_the_same() {
    let der = JLIS_ROOTS[5].der;
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der).unwrap();
    let noisy = format!("Subject: something\n{pem}trailing text\n");
    let a = JpkiCertificate::from_der_or_pem(der).unwrap();
    let b = JpkiCertificate::from_der_or_pem(noisy.as_bytes()).unwrap();
    assert_eq!(a, b);
    assert!(
        JpkiCertificate::from_pem(b"-----BEGIN X509 CRL-----\n-----END X509 CRL-----\n").is_err()
    );
}

#[test]
fn names_print_in_encoding_order() {
    let cert = JpkiCertificate::from_der(JLIS_ROOTS[3].der).unwrap();
    assert_eq!(
        cert.subject_text(),
        "C=JP, O=JPKI, OU=JPKI for digital signature, OU=Japan Agency for Local Authority Information Systems"
    );
    assert_eq!(cert.issuer_text(), cert.subject_text());
}
