//! Chain verification with certificates built here: forged names, test hierarchy, time, usage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mynacard_cert::{
    CertKind, ChainError, Hierarchy, JpkiCertificate, Purpose, TrustError, TrustPolicy,
    roots::JLIS_ROOTS, verify_chain,
};
use x509_cert::ext::pkix::KeyUsages;

fn parse(der: &[u8]) -> JpkiCertificate {
    JpkiCertificate::from_der(der).unwrap()
}

fn test_root(purpose_ou: &str, key_index: usize, serial: u64) -> JpkiCertificate {
    parse(&root("JPKI-TEST", purpose_ou, key(key_index), serial))
}

fn test_policy(roots: Vec<JpkiCertificate>) -> TrustPolicy {
    TrustPolicy::production()
        .allow_test_hierarchy(roots)
        .unwrap()
}

const INSIDE: &str = "2026-06-01T00:00:00Z";

#[test]
fn a_leaf_signed_under_a_jlis_name_by_another_key_is_rejected() {
    let jlis_sign = parse(JLIS_ROOTS[5].der);
    let leaf = parse(&sign_leaf(jlis_sign.subject().clone(), key(0), 7));
    assert_eq!(leaf.kind(), CertKind::Signing);
    assert_eq!(leaf.hierarchy(), Hierarchy::Production);
    let err = verify_chain(&leaf, &TrustPolicy::production(), system_time(INSIDE)).unwrap_err();
    match err {
        ChainError::SignatureMismatch { candidates, .. } => assert_eq!(candidates, 3),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_forged_root_with_a_jlis_name_is_rejected_and_cannot_be_added() {
    let jlis = parse(JLIS_ROOTS[2].der);
    let forged = parse(&build_cert(CertSpec {
        serial: 0x06D18006,
        issuer: jlis.subject().clone(),
        subject: jlis.subject().clone(),
        not_before: "2023-07-16T01:01:04Z",
        not_after: "2033-07-15T14:59:59Z",
        subject_key: key(0),
        signer: key(0),
        extensions: vec![
            key_usage(&[KeyUsages::KeyCertSign, KeyUsages::CRLSign]),
            basic_constraints(true),
        ],
    }));
    assert_eq!(forged.subject(), jlis.subject());
    assert!(matches!(
        verify_chain(&forged, &TrustPolicy::production(), system_time(INSIDE)),
        Err(ChainError::SignatureMismatch { .. })
    ));
    // Nor does a leaf issued by the forged root chain anywhere.
    let leaf = parse(&auth_leaf(
        jlis.subject().clone(),
        key(0),
        9,
        "2024-01-01T00:00:00Z",
        "2029-01-01T00:00:00Z",
    ));
    assert!(matches!(
        verify_chain(&leaf, &TrustPolicy::production(), system_time(INSIDE)),
        Err(ChainError::SignatureMismatch { .. })
    ));
    // The test-root door does not take production names.
    assert!(matches!(
        TrustPolicy::production().allow_test_hierarchy([forged]),
        Err(TrustError::NotTestHierarchy { index: 0, .. })
    ));
}

#[test]
fn the_test_hierarchy_needs_the_opt_in_and_its_roots() {
    let root = test_root(AUTH_OU, 1, 1);
    let leaf = parse(&auth_leaf(
        root.subject().clone(),
        key(1),
        42,
        "2024-01-01T00:00:00Z",
        "2029-01-01T00:00:00Z",
    ));
    assert_eq!(leaf.hierarchy(), Hierarchy::Test);
    assert_eq!(leaf.kind(), CertKind::Authentication);

    let at = system_time(INSIDE);
    assert!(matches!(
        verify_chain(&leaf, &TrustPolicy::production(), at),
        Err(ChainError::TestHierarchyNotAccepted)
    ));

    let policy = test_policy(vec![root]);
    let chain = verify_chain(&leaf, &policy, at).unwrap();
    assert_eq!(chain.root.hierarchy, Hierarchy::Test);
    assert_eq!(chain.root.label, "test-root-1");
    assert_eq!(chain.root.generation, None);
    assert_eq!(chain.root.purpose, Some(Purpose::Authentication));
    assert!(!chain.certificate_is_anchor);
}

#[test]
fn opting_in_without_roots_or_with_a_bad_root_fails() {
    assert!(matches!(
        TrustPolicy::production().allow_test_hierarchy([]),
        Err(TrustError::NoTestRoots)
    ));
    // A JPKI-TEST "root" whose signature was made by another key.
    let bad = parse(&build_cert(CertSpec {
        serial: 5,
        issuer: ca_name("JPKI-TEST", SIGN_OU),
        subject: ca_name("JPKI-TEST", SIGN_OU),
        not_before: "2019-01-01T00:00:00Z",
        not_after: "2035-01-01T00:00:00Z",
        subject_key: key(1),
        signer: key(2),
        extensions: vec![basic_constraints(true)],
    }));
    assert!(matches!(
        TrustPolicy::production().allow_test_hierarchy([bad]),
        Err(TrustError::NotSelfSignedCa {
            index: 0,
            source: Some(_)
        })
    ));
}

#[test]
fn the_generation_is_decided_by_signature_not_name() {
    // Two test roots with one name and different keys, as the J-LIS generations are.
    let gen_a = test_root(SIGN_OU, 1, 1);
    let gen_b = test_root(SIGN_OU, 2, 2);
    assert_eq!(gen_a.subject(), gen_b.subject());
    let policy = test_policy(vec![gen_a.clone(), gen_b]);
    let leaf_b = parse(&sign_leaf(gen_a.subject().clone(), key(2), 100));
    let leaf_a = parse(&sign_leaf(gen_a.subject().clone(), key(1), 101));
    let at = system_time(INSIDE);
    assert_eq!(
        verify_chain(&leaf_b, &policy, at).unwrap().root.label,
        "test-root-2"
    );
    assert_eq!(
        verify_chain(&leaf_a, &policy, at).unwrap().root.label,
        "test-root-1"
    );
    // Signed by a key that is neither: refused.
    let leaf_x = parse(&sign_leaf(gen_a.subject().clone(), key(0), 102));
    assert!(matches!(
        verify_chain(&leaf_x, &policy, at),
        Err(ChainError::SignatureMismatch { candidates: 2, .. })
    ));
}

#[test]
fn validity_is_checked_at_the_callers_time() {
    let root = test_root(AUTH_OU, 1, 1);
    let leaf = parse(&auth_leaf(
        root.subject().clone(),
        key(1),
        43,
        "2020-01-01T00:00:00Z",
        "2021-01-01T00:00:00Z",
    ));
    let policy = test_policy(vec![root]);
    assert!(verify_chain(&leaf, &policy, system_time("2020-06-01T00:00:00Z")).is_ok());
    // Both ends are inclusive.
    assert!(verify_chain(&leaf, &policy, system_time("2021-01-01T00:00:00Z")).is_ok());
    assert!(matches!(
        verify_chain(&leaf, &policy, system_time("2021-01-01T00:00:01Z")),
        Err(ChainError::Expired { .. })
    ));
    assert!(matches!(
        verify_chain(&leaf, &policy, system_time("2019-12-31T23:59:59Z")),
        Err(ChainError::NotYetValid { .. })
    ));
    // A time outside the root's own validity is refused even if the leaf would be fine.
    let long_leaf = parse(&auth_leaf(
        ca_name("JPKI-TEST", AUTH_OU),
        key(1),
        44,
        "2018-01-01T00:00:00Z",
        "2040-01-01T00:00:00Z",
    ));
    assert!(matches!(
        verify_chain(&long_leaf, &policy, system_time("2036-06-01T00:00:00Z")),
        Err(ChainError::RootNotValid { .. })
    ));
}

fn leaf_with(
    root: &JpkiCertificate,
    extensions: Vec<x509_cert::ext::Extension>,
) -> JpkiCertificate {
    parse(&build_cert(CertSpec {
        serial: 77,
        issuer: root.subject().clone(),
        subject: name("CN=LEAF,C=JP"),
        not_before: "2024-01-01T00:00:00Z",
        not_after: "2029-01-01T00:00:00Z",
        subject_key: key(3),
        signer: key(1),
        extensions,
    }))
}

#[test]
fn key_usage_and_basic_constraints_are_enforced() {
    let root = test_root(SIGN_OU, 1, 1);
    let policy = test_policy(vec![root.clone()]);
    let at = system_time(INSIDE);

    let no_ku = leaf_with(&root, vec![]);
    assert!(matches!(
        verify_chain(&no_ku, &policy, at),
        Err(ChainError::KeyUsage {
            required: "digitalSignature"
        })
    ));
    let wrong_ku = leaf_with(&root, vec![key_usage(&[KeyUsages::KeyEncipherment])]);
    assert!(matches!(
        verify_chain(&wrong_ku, &policy, at),
        Err(ChainError::KeyUsage {
            required: "digitalSignature"
        })
    ));
    // Under a signing root, nonRepudiation is required.
    let auth_ku = leaf_with(&root, vec![key_usage(&[KeyUsages::DigitalSignature])]);
    assert!(verify_chain(&auth_ku, &policy, at).is_err());
    let ca_leaf = leaf_with(
        &root,
        vec![
            key_usage(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]),
            basic_constraints(true),
        ],
    );
    assert!(matches!(
        verify_chain(&ca_leaf, &policy, at),
        Err(ChainError::EndEntityIsCa)
    ));
    let good = leaf_with(
        &root,
        vec![key_usage(&[
            KeyUsages::DigitalSignature,
            KeyUsages::NonRepudiation,
        ])],
    );
    assert!(verify_chain(&good, &policy, at).is_ok());
}

#[test]
fn an_unknown_critical_extension_is_refused() {
    let root = test_root(AUTH_OU, 1, 1);
    let policy = test_policy(vec![root.clone()]);
    let leaf = leaf_with(
        &root,
        vec![
            key_usage(&[KeyUsages::DigitalSignature]),
            raw_extension("1.2.3.4.5", true, vec![0x05, 0x00]),
        ],
    );
    assert!(matches!(
        verify_chain(&leaf, &policy, system_time(INSIDE)),
        Err(ChainError::UnhandledCriticalExtension(_))
    ));
    // The same extension marked non-critical is ignored.
    let leaf = leaf_with(
        &root,
        vec![
            key_usage(&[KeyUsages::DigitalSignature]),
            raw_extension("1.2.3.4.5", false, vec![0x05, 0x00]),
        ],
    );
    assert!(verify_chain(&leaf, &policy, system_time(INSIDE)).is_ok());
}

#[test]
fn a_signing_certificate_under_an_authentication_root_is_refused() {
    let auth_root = test_root(AUTH_OU, 1, 1);
    let policy = test_policy(vec![auth_root.clone()]);
    let leaf = parse(&sign_leaf(auth_root.subject().clone(), key(1), 8));
    // Issuer OU says authentication while key usage, policy and SAN say signing.
    assert_eq!(leaf.kind(), CertKind::Unknown);
    let evidence = leaf.kind_evidence();
    assert_eq!(evidence.issuer, Some(Purpose::Authentication));
    assert_eq!(evidence.policy, Some(Purpose::Signing));
    assert!(matches!(
        verify_chain(&leaf, &policy, system_time(INSIDE)),
        Err(ChainError::PurposeMismatch {
            root: "authentication",
            certificate: "signing"
        })
    ));
}

#[test]
fn an_unknown_issuer_is_reported_by_name() {
    let leaf = parse(&auth_leaf(
        name("CN=Someone Else,O=Elsewhere,C=JP"),
        key(0),
        1,
        "2024-01-01T00:00:00Z",
        "2029-01-01T00:00:00Z",
    ));
    match verify_chain(&leaf, &TrustPolicy::production(), system_time(INSIDE)) {
        Err(ChainError::UnknownIssuer { issuer }) => {
            assert_eq!(issuer, "C=JP, O=Elsewhere, CN=Someone Else")
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn identify_issuer_names_the_signing_root_without_judging_trust() {
    let gen_a = test_root(SIGN_OU, 1, 1);
    let gen_b = test_root(SIGN_OU, 2, 2);
    let policy = test_policy(vec![gen_a.clone(), gen_b]);
    // Expired long ago, still identified by its signature.
    let old = parse(&build_cert(CertSpec {
        serial: 5,
        issuer: gen_a.subject().clone(),
        subject: name("CN=OLD,C=JP"),
        not_before: "2019-02-01T00:00:00Z",
        not_after: "2019-03-01T00:00:00Z",
        subject_key: key(3),
        signer: key(2),
        extensions: vec![],
    }));
    assert!(verify_chain(&old, &policy, system_time(INSIDE)).is_err());
    let found = mynacard_cert::identify_issuer(&old, &policy).unwrap();
    assert_eq!(found.label, "test-root-2");
    // Without the test roots, or signed by an unknown key: nothing.
    assert!(mynacard_cert::identify_issuer(&old, &TrustPolicy::production()).is_none());
    let stranger = parse(&sign_leaf(gen_a.subject().clone(), key(0), 9));
    assert!(mynacard_cert::identify_issuer(&stranger, &policy).is_none());
    // A J-LIS root identifies as itself.
    let root = parse(JLIS_ROOTS[4].der);
    let found = mynacard_cert::identify_issuer(&root, &TrustPolicy::production()).unwrap();
    assert_eq!(
        (found.label.as_str(), found.generation),
        ("signca02", Some(2))
    );
}
