//! CRLs and revocation sources: good, revoked (reason, date), unchecked — never silently good.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use mynacard_cert::{
    CallbackSource, Crl, CrlError, CrlSource, JpkiCertificate, NoRevocationCheck, RevocationError,
    RevocationReason, RevocationStatus, TrustPolicy, UncheckedReason, verify,
};

struct Setup {
    root: JpkiCertificate,
    leaf: JpkiCertificate,
    policy: TrustPolicy,
}

fn setup() -> Setup {
    let root = JpkiCertificate::from_der(&root("JPKI-TEST", SIGN_OU, key(1), 1)).unwrap();
    let leaf =
        JpkiCertificate::from_der(&sign_leaf(root.subject().clone(), key(1), 0x1234)).unwrap();
    let policy = TrustPolicy::production()
        .allow_test_hierarchy([root.clone()])
        .unwrap();
    Setup { root, leaf, policy }
}

fn crl_revoking(s: &Setup, signer: usize, reason: Option<u8>) -> Crl {
    Crl::from_der(&build_crl(
        s.root.subject().clone(),
        key(signer),
        "2026-05-01T00:00:00Z",
        Some("2026-05-02T00:00:00Z"),
        &[
            Revoked {
                serial: 0x99,
                date: "2025-01-01T00:00:00Z",
                reason: Some(4),
            },
            Revoked {
                serial: 0x1234,
                date: "2026-04-30T12:00:00Z",
                reason,
            },
        ],
    ))
    .unwrap()
}

#[test]
fn a_revoked_certificate_is_reported_with_reason_and_date() {
    let s = setup();
    let source = CrlSource::new([crl_revoking(&s, 1, Some(1))]);
    let v = verify(
        &s.leaf,
        &s.policy,
        system_time("2026-05-01T06:00:00Z"),
        &source,
    )
    .unwrap();
    match &v.revocation {
        RevocationStatus::Revoked { reason, date } => {
            assert_eq!(*reason, Some(RevocationReason::KeyCompromise));
            assert_eq!(*date, system_time("2026-04-30T12:00:00Z"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!v.is_trusted_and_not_revoked());
    assert_eq!(
        v.revocation.to_string(),
        "revoked (keyCompromise, 2026-04-30T12:00:00Z)"
    );
}

#[test]
fn before_the_revocation_date_it_was_good() {
    let s = setup();
    let source = CrlSource::new([crl_revoking(&s, 1, Some(3))]);
    let v = verify(
        &s.leaf,
        &s.policy,
        system_time("2026-04-30T11:59:59Z"),
        &source,
    )
    .unwrap();
    assert!(
        matches!(v.revocation, RevocationStatus::Good { .. }),
        "{:?}",
        v.revocation
    );
}

#[test]
fn an_unlisted_certificate_is_good_while_the_crl_is_current_and_unchecked_after() {
    let s = setup();
    let crl = Crl::from_der(&build_crl(
        s.root.subject().clone(),
        key(1),
        "2026-05-01T00:00:00Z",
        Some("2026-05-02T00:00:00Z"),
        &[Revoked {
            serial: 0x99,
            date: "2025-01-01T00:00:00Z",
            reason: None,
        }],
    ))
    .unwrap();
    let source = CrlSource::new([crl]);
    let good = verify(
        &s.leaf,
        &s.policy,
        system_time("2026-05-01T12:00:00Z"),
        &source,
    )
    .unwrap();
    match &good.revocation {
        RevocationStatus::Good { source } => assert_eq!(source, "CRL issued 2026-05-01T00:00:00Z"),
        other => panic!("unexpected {other:?}"),
    }
    let stale = verify(
        &s.leaf,
        &s.policy,
        system_time("2026-05-03T00:00:00Z"),
        &source,
    )
    .unwrap();
    assert!(matches!(
        stale.revocation,
        RevocationStatus::Unchecked {
            reason: UncheckedReason::CrlExpired { .. }
        }
    ));
    assert!(stale.is_trusted_and_not_revoked());
}

#[test]
fn a_crl_signed_by_another_key_under_the_issuer_name_is_not_believed() {
    let s = setup();
    let forged = crl_revoking(&s, 2, Some(1));
    assert!(matches!(
        forged.verify_issued_by(&s.root),
        Err(CrlError::Signature(_))
    ));
    let source = CrlSource::new([forged]);
    let v = verify(
        &s.leaf,
        &s.policy,
        system_time("2026-05-01T06:00:00Z"),
        &source,
    )
    .unwrap();
    assert!(matches!(
        v.revocation,
        RevocationStatus::Unchecked {
            reason: UncheckedReason::CrlNotFromIssuer
        }
    ));
}

#[test]
fn no_source_or_no_matching_crl_is_unchecked() {
    let s = setup();
    let at = system_time("2026-05-01T06:00:00Z");
    let v = verify(&s.leaf, &s.policy, at, &NoRevocationCheck).unwrap();
    assert!(matches!(
        v.revocation,
        RevocationStatus::Unchecked {
            reason: UncheckedReason::NotRequested
        }
    ));
    let other_issuer = Crl::from_der(&build_crl(
        ca_name("JPKI-TEST", AUTH_OU),
        key(1),
        "2026-05-01T00:00:00Z",
        None,
        &[],
    ))
    .unwrap();
    let v = verify(&s.leaf, &s.policy, at, &CrlSource::new([other_issuer])).unwrap();
    assert!(matches!(
        v.revocation,
        RevocationStatus::Unchecked {
            reason: UncheckedReason::NoCrlFromIssuer
        }
    ));
}

#[test]
fn the_newest_valid_crl_wins() {
    let s = setup();
    let old_clean = Crl::from_der(&build_crl(
        s.root.subject().clone(),
        key(1),
        "2026-04-01T00:00:00Z",
        Some("2026-06-01T00:00:00Z"),
        &[],
    ))
    .unwrap();
    let newer = crl_revoking(&s, 1, Some(6));
    let source = CrlSource::new([old_clean, newer]);
    let v = verify(
        &s.leaf,
        &s.policy,
        system_time("2026-05-01T06:00:00Z"),
        &source,
    )
    .unwrap();
    assert!(matches!(
        v.revocation,
        RevocationStatus::Revoked {
            reason: Some(RevocationReason::CertificateHold),
            ..
        }
    ));
}

#[test]
fn callback_sources_answer_and_their_failures_are_unchecked() {
    let s = setup();
    let at = system_time("2026-05-01T06:00:00Z");
    let seen_serial = std::cell::RefCell::new(Vec::new());
    let ocsp = CallbackSource(|q: &mynacard_cert::RevocationQuery<'_>| {
        seen_serial
            .borrow_mut()
            .extend_from_slice(q.certificate.serial());
        assert_eq!(q.issuer, &s.root);
        Ok(RevocationStatus::Good {
            source: "OCSP".into(),
        })
    });
    let v = verify(&s.leaf, &s.policy, at, &ocsp).unwrap();
    assert!(matches!(v.revocation, RevocationStatus::Good { .. }));
    assert_eq!(*seen_serial.borrow(), [0x12, 0x34]);

    let failing = CallbackSource(|_: &mynacard_cert::RevocationQuery<'_>| {
        Err(RevocationError::new(std::io::Error::other(
            "operator unreachable",
        )))
    });
    let v = verify(&s.leaf, &s.policy, at, &failing).unwrap();
    match &v.revocation {
        RevocationStatus::Unchecked {
            reason: UncheckedReason::SourceFailed(e),
        } => {
            assert_eq!(
                std::error::Error::source(e.as_ref()).unwrap().to_string(),
                "operator unreachable"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(v.revocation.to_string().contains("operator unreachable"));
}

#[test]
fn crl_entries_keep_unknown_reason_codes() {
    let s = setup();
    let crl = crl_revoking(&s, 1, Some(7));
    let entry = crl.find(&[0x00, 0x12, 0x34]).unwrap();
    assert_eq!(entry.reason, Some(RevocationReason::Other(7)));
    assert_eq!(crl.entries().len(), 2);
    assert_eq!(crl.entries()[0].reason, Some(RevocationReason::Superseded));
    assert!(crl.find(&[0x56]).is_none());
    assert_eq!(crl.this_update(), system_time("2026-05-01T00:00:00Z"));
    let pem = der::pem::encode_string("X509 CRL", der::pem::LineEnding::LF, crl.der()).unwrap();
    assert_eq!(
        Crl::from_der_or_pem(pem.as_bytes()).unwrap().der(),
        crl.der()
    );
    assert!(crl.verify_issued_by(&s.root).is_ok());
    assert!(matches!(
        crl.verify_issued_by(&s.leaf),
        Err(CrlError::IssuerMismatch { .. })
    ));
}

#[test]
fn a_trust_anchor_is_not_checked_for_revocation() {
    let s = setup();
    let v = verify(
        &s.root,
        &s.policy,
        system_time("2026-05-01T06:00:00Z"),
        &NoRevocationCheck,
    )
    .unwrap();
    assert!(v.chain.certificate_is_anchor);
    assert!(matches!(
        v.revocation,
        RevocationStatus::Unchecked {
            reason: UncheckedReason::TrustAnchor
        }
    ));
}

#[test]
fn reason_codes_and_names_are_rfc_5280s() {
    // RFC 5280 §5.3.1: CRLReason ::= ENUMERATED, 7 unused.
    let table = [
        (0, "unspecified"),
        (1, "keyCompromise"),
        (2, "cACompromise"),
        (3, "affiliationChanged"),
        (4, "superseded"),
        (5, "cessationOfOperation"),
        (6, "certificateHold"),
        (8, "removeFromCRL"),
        (9, "privilegeWithdrawn"),
        (10, "aACompromise"),
    ];
    assert_eq!(RevocationReason::NAMED.len(), table.len());
    for ((code, name), reason) in table.into_iter().zip(RevocationReason::NAMED) {
        assert_eq!(reason.code(), code);
        assert_eq!(RevocationReason::from_code(code), reason);
        assert_eq!(reason.as_str(), name);
        assert_eq!(reason.to_string(), name);
        assert_eq!(RevocationReason::from_name(name), Some(reason));
        assert_eq!(name.parse::<RevocationReason>(), Ok(reason));
        assert_eq!(reason.is_jpki(), code <= 6);
    }
    // The simulator's profiles spell them in kebab-case.
    assert_eq!(
        RevocationReason::from_name("key-compromise"),
        Some(RevocationReason::KeyCompromise)
    );
    assert_eq!(
        RevocationReason::from_name("ca-compromise"),
        Some(RevocationReason::CaCompromise)
    );
    assert_eq!(RevocationReason::from_code(7), RevocationReason::Other(7));
    assert_eq!(RevocationReason::Other(7).to_string(), "other(7)");
    assert_eq!(RevocationReason::from_name("other"), None);
    assert_eq!(RevocationReason::from_name("lost"), None);
}
