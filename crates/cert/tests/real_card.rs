//! A certificate issued by J-LIS to a real card (see `fixtures/real-card/README.md`): it parses as
//! an authentication certificate, chains to the embedded first-generation root inside its validity
//! and not after it, and every extension it carries is one the verifier understands.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::system_time;
use mynacard_cert::{
    CertKind, ChainError, Hierarchy, JpkiCertificate, Purpose, TrustPolicy, verify_chain,
};
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest, Sha256};

const AUTH_2019: &[u8] = include_bytes!("fixtures/real-card/auth-2019-authca01.cer");

fn real_auth() -> JpkiCertificate {
    JpkiCertificate::from_der(AUTH_2019).unwrap()
}

#[test]
fn the_fixture_is_the_recorded_certificate() {
    // The fingerprint published beside the certificate where it was recorded.
    assert_eq!(
        hex::encode(Sha256::digest(AUTH_2019)),
        "449ef3f93be0c5425330af2b41c63769190aa75a713223d96839f6537104007e"
    );
}

#[test]
fn a_real_authentication_certificate_parses_as_one() {
    let cert = real_auth();
    assert_eq!(cert.kind(), CertKind::Authentication);
    assert_eq!(cert.hierarchy(), Hierarchy::Production);
    // Issuer, policy and key usage each say "authentication" on their own.
    let evidence = cert.kind_evidence();
    assert_eq!(evidence.issuer, Some(Purpose::Authentication));
    assert_eq!(evidence.policy, Some(Purpose::Authentication));
    assert_eq!(evidence.key_usage, Some(Purpose::Authentication));
    assert_eq!(evidence.personal_data, None);
    assert!(cert.personal_data().is_none());
    assert!(!cert.is_ca());
    assert_eq!(cert.serial_hex(), "012D57CA");
    assert_eq!(
        cert.issuer_text(),
        "C=JP, O=JPKI, OU=JPKI for user authentication, \
         OU=Japan Agency for Local Authority Information Systems"
    );
    let ku = cert.key_usage().unwrap();
    assert!(ku.digital_signature && !ku.non_repudiation && !ku.key_cert_sign);
    assert_eq!(cert.not_before(), system_time("2019-07-25T15:28:06Z"));
    assert_eq!(cert.not_after(), system_time("2024-05-02T14:59:59Z"));
    assert_eq!(cert.rsa_public_key().unwrap().size(), 256);
}

#[test]
fn it_chains_to_the_first_generation_auth_root_inside_its_validity() {
    let chain = verify_chain(
        &real_auth(),
        &TrustPolicy::production(),
        system_time("2020-01-01T00:00:00Z"),
    )
    .unwrap();
    assert_eq!(chain.root.label, "authca01");
    assert_eq!(chain.root.generation, Some(1));
    assert_eq!(chain.root.hierarchy, Hierarchy::Production);
    assert_eq!(chain.root.purpose, Some(Purpose::Authentication));
    assert!(!chain.certificate_is_anchor);
}

#[test]
fn it_is_refused_before_and_after_its_validity() {
    let policy = TrustPolicy::production();
    let cert = real_auth();
    match verify_chain(&cert, &policy, system_time("2024-05-02T15:00:00Z")) {
        Err(ChainError::Expired { not_after }) => assert_eq!(not_after, cert.not_after()),
        other => panic!("expected expiry, got {other:?}"),
    }
    match verify_chain(&cert, &policy, system_time("2019-07-25T15:28:05Z")) {
        Err(ChainError::NotYetValid { not_before }) => assert_eq!(not_before, cert.not_before()),
        other => panic!("expected not yet valid, got {other:?}"),
    }
}

#[test]
fn one_changed_byte_of_the_signed_part_breaks_the_chain() {
    // Flip a byte inside the subject's common name: still parses, no longer verifies.
    let mut der = AUTH_2019.to_vec();
    let at = der
        .windows(23)
        .position(|w| w == b"840444E37PAFHN08220003A")
        .unwrap();
    der[at] ^= 0x01;
    let cert = JpkiCertificate::from_der(&der).unwrap();
    let err = verify_chain(
        &cert,
        &TrustPolicy::production(),
        system_time("2020-01-01T00:00:00Z"),
    )
    .unwrap_err();
    assert!(
        matches!(err, ChainError::SignatureMismatch { candidates: 3, .. }),
        "{err:?}"
    );
}

/// (extension id, critical) in certificate order.
fn extension_profile(cert: &JpkiCertificate) -> Vec<(String, bool)> {
    cert.x509()
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .map(|e| (e.extn_id.to_string(), e.critical))
        .collect()
}

#[test]
fn the_simulators_auth_certificate_follows_the_real_profile() {
    let image = mynacard_sim::image::CardImage::from_profile_name("adult").unwrap();
    let simulated = JpkiCertificate::from_der(&image.auth.cert_der).unwrap();
    let real = real_auth();
    // Same extensions, same order, same criticality.
    assert_eq!(extension_profile(&simulated), extension_profile(&real));
    // The same policy, and the kind is told apart by the same signals.
    assert_eq!(simulated.kind_evidence(), real.kind_evidence());
    let policy = |c: &JpkiCertificate| {
        c.x509()
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::CertificatePolicies>()
            .unwrap()
            .unwrap()
            .1
            .0[0]
            .policy_identifier
            .to_string()
    };
    assert_eq!(policy(&simulated), "1.2.392.200149.8.5.1.3.30");
    assert_eq!(policy(&simulated), policy(&real));
    // Subject: C and an opaque 23-character CN, nothing else.
    let cn = |c: &JpkiCertificate| {
        let text = c.subject_text();
        text.strip_prefix("C=JP, CN=").map(str::len)
    };
    assert_eq!(cn(&simulated), Some(23));
    assert_eq!(cn(&real), Some(23));
    // Within a few percent of the real size, so short-link read counts are realistic.
    let (sim_len, real_len) = (image.auth.cert_der.len(), AUTH_2019.len());
    assert!(
        sim_len * 100 >= real_len * 90 && sim_len <= real_len,
        "{sim_len} vs {real_len}"
    );
}
