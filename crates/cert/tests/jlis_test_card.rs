//! The certificates of a real J-LIS test card (the recorded image `crates/sim/images/
//! jlis-test-card/`, one copy of the bytes for the whole workspace): both parse as what they are,
//! chain to their self-signed `O=JPKI-TEST` roots only with the opt-in, the signing certificate's
//! personal data decode, and one flipped byte breaks the chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::SystemTime;

use common::system_time;
use mynacard_cert::{
    BirthDate, CertKind, ChainError, Era, Hierarchy, JpkiCertificate, Purpose, Sex, TrustPolicy,
    personal_oid, verify_chain,
};
use mynacard_sim::recorded::JLIS_TEST_CARD;

fn der(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(JLIS_TEST_CARD).join(name)).unwrap()
}

fn cert(name: &str) -> JpkiCertificate {
    JpkiCertificate::from_der(&der(name)).unwrap()
}

/// Inside both certificates' validity (2025-10-27 to 2030-02-17).
fn at() -> SystemTime {
    system_time("2026-06-01T00:00:00Z")
}

fn test_roots() -> TrustPolicy {
    TrustPolicy::production()
        .allow_test_hierarchy([cert("jpki-auth-ca-cert.der"), cert("jpki-sign-ca-cert.der")])
        .unwrap()
}

#[test]
fn both_certificates_parse_as_test_hierarchy_leaves_of_their_kind() {
    let auth = cert("jpki-auth-cert.der");
    assert_eq!(auth.kind(), CertKind::Authentication);
    assert_eq!(auth.hierarchy(), Hierarchy::Test);
    assert!(!auth.is_ca() && auth.personal_data().is_none());
    assert_eq!(auth.serial_hex(), "227B13");
    assert_eq!(auth.subject_text(), "C=JP, CN=997794E9AGCIEG13221003A");

    let sign = cert("jpki-sign-cert.der");
    assert_eq!(sign.kind(), CertKind::Signing);
    assert_eq!(sign.hierarchy(), Hierarchy::Test);
    assert_eq!(sign.serial_hex(), "1EE607");
    let ku = sign.key_usage().unwrap();
    assert!(ku.digital_signature && ku.non_repudiation);
    for root in ["jpki-auth-ca-cert.der", "jpki-sign-ca-cert.der"] {
        let root = cert(root);
        assert!(root.is_ca() && root.is_self_issued());
        assert_eq!(root.hierarchy(), Hierarchy::Test);
    }
}

#[test]
fn they_chain_to_their_own_test_roots_with_the_opt_in() {
    let policy = test_roots();
    let auth = verify_chain(&cert("jpki-auth-cert.der"), &policy, at()).unwrap();
    assert_eq!(auth.root.hierarchy, Hierarchy::Test);
    assert_eq!(auth.root.purpose, Some(Purpose::Authentication));
    assert_eq!(auth.root.label, "test-root-1");
    let sign = verify_chain(&cert("jpki-sign-cert.der"), &policy, at()).unwrap();
    assert_eq!(sign.root.purpose, Some(Purpose::Signing));
    assert_eq!(sign.root.label, "test-root-2");

    // Each root verifies its own leaf only.
    let auth_only = TrustPolicy::production()
        .allow_test_hierarchy([cert("jpki-auth-ca-cert.der")])
        .unwrap();
    assert!(verify_chain(&cert("jpki-sign-cert.der"), &auth_only, at()).is_err());
}

#[test]
fn they_are_refused_without_the_opt_in() {
    for name in ["jpki-auth-cert.der", "jpki-sign-cert.der"] {
        let refused = verify_chain(&cert(name), &TrustPolicy::production(), at()).unwrap_err();
        assert!(
            matches!(refused, ChainError::TestHierarchyNotAccepted),
            "{name}: {refused:?}"
        );
    }
    // Nor is a test root itself trusted by default.
    let root = cert("jpki-sign-ca-cert.der");
    assert!(verify_chain(&root, &TrustPolicy::production(), at()).is_err());
}

#[test]
fn the_signing_certificate_names_the_test_holder() {
    let sign = cert("jpki-sign-cert.der");
    let personal = sign.personal_data().unwrap();
    assert_eq!(
        personal.name().and_then(|v| v.as_text()),
        Some("黒桐\u{3000}幹也")
    );
    let address = personal.address().and_then(|v| v.as_text()).unwrap();
    assert!(address.starts_with("東京都清瀬市"), "{address}");
    assert!(matches!(personal.sex(), Some(Sex::Male)));
    let Some(BirthDate::Date(birth)) = personal.birth_date() else {
        panic!("birth date does not decode");
    };
    assert_eq!(birth.to_iso8601(), "1980-02-17");
    assert_eq!(birth.era(), Era::Showa);
    assert_eq!(birth.era_year(), Some(55));
}

#[test]
fn the_substitute_entries_are_one_digit_per_character() {
    // `.2` and `.6` are position strings over the name and the address, not a second spelling
    // of them: on the real card `.2` is `00000` for the five characters of 黒桐　幹也.
    let sign = cert("jpki-sign-cert.der");
    let personal = sign.personal_data().unwrap();
    fn text(v: Option<&mynacard_cert::PersonalValue>) -> &str {
        v.and_then(|v| v.as_text()).unwrap()
    }
    let name = text(personal.name());
    let address = text(personal.address());
    assert_eq!(text(personal.name_substitute()), "00000");
    assert_eq!(name.chars().count(), 5);
    assert_eq!(
        text(personal.address_substitute()),
        "0".repeat(address.chars().count())
    );
    assert_eq!(address.chars().count(), 18);
    assert!(personal.unrecognized().is_empty());
    // Each field sits under the OID the table gives it.
    let der = der("jpki-sign-cert.der");
    for (oid, value) in [
        (personal_oid::NAME, name),
        (personal_oid::NAME_SUBSTITUTE, "00000"),
        (personal_oid::BIRTH_DATE, "319800217"),
        (personal_oid::SEX, "1"),
        (personal_oid::ADDRESS, address),
    ] {
        let oid_der = der::Encode::to_der(&oid).unwrap();
        let at = der
            .windows(oid_der.len())
            .position(|w| w == oid_der.as_slice())
            .unwrap_or_else(|| panic!("{oid} not in the certificate"));
        // otherName: OID, then [0] { UTF8String value }.
        let after = &der[at + oid_der.len()..];
        let value_at = after
            .windows(value.len())
            .position(|w| w == value.as_bytes())
            .unwrap();
        assert!(value_at <= 4, "{oid}: its value follows it");
    }
}

#[test]
fn one_flipped_byte_breaks_the_chain() {
    let policy = test_roots();
    for (name, marker) in [
        ("jpki-auth-cert.der", &b"997794E9AGCIEG13221003A"[..]),
        ("jpki-sign-cert.der", &b"202510161726000013413221003A"[..]),
    ] {
        let mut bytes = der(name);
        let at_marker = bytes
            .windows(marker.len())
            .position(|w| w == marker)
            .unwrap();
        bytes[at_marker] ^= 0x01;
        // Still a certificate, no longer the one the root signed.
        let altered = JpkiCertificate::from_der(&bytes).unwrap();
        let refused = verify_chain(&altered, &policy, at()).unwrap_err();
        assert!(
            matches!(refused, ChainError::SignatureMismatch { .. }),
            "{name}: {refused:?}"
        );
    }
}
