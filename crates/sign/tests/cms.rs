//! CMS SignedData: built here, verified here and by OpenSSL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../cert/tests/common/mod.rs"]
mod common;

use std::{path::PathBuf, process::Command};

use common::*;
use mynacard_cert::JpkiCertificate;
use mynacard_sign::{
    DigestInfoSigner, HashAlgorithm, SoftwareSigner, SoftwareSignerError,
    cms::{CmsError, CmsOptions, is_signed_data, sign_cms, sign_cms_detached_digest, verify_cms},
};

struct Fixture {
    root: JpkiCertificate,
    signer: SoftwareSigner,
}

fn fixture() -> Fixture {
    let root = JpkiCertificate::from_der(&root("JPKI-TEST", SIGN_OU, key(1), 1)).unwrap();
    let leaf = JpkiCertificate::from_der(&sign_leaf(root.subject().clone(), key(1), 0x51)).unwrap();
    let signer = SoftwareSigner::new(key(3).clone(), leaf).unwrap();
    Fixture { root, signer }
}

fn options(detached: bool, hash: HashAlgorithm) -> CmsOptions {
    CmsOptions {
        detached,
        hash,
        signing_time: Some(system_time("2026-05-01T09:00:00Z")),
        extra_certificates: vec![],
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mynacard-sign-cms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Runs `openssl cms -verify`; true when OpenSSL accepts the message.
fn openssl_verifies(tag: &str, cms: &[u8], content: Option<&[u8]>, root: &JpkiCertificate) -> bool {
    let cms_path = scratch(&format!("{tag}.p7s"));
    let root_path = scratch(&format!("{tag}-root.pem"));
    std::fs::write(&cms_path, cms).unwrap();
    let pem = der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, root.der()).unwrap();
    std::fs::write(&root_path, pem).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
        .arg(&cms_path)
        .arg("-CAfile")
        .arg(&root_path)
        // The test certificates are dated; check them at a time inside their validity.
        .args(["-attime", "1780000000", "-out"])
        .arg(scratch(&format!("{tag}.out")));
    if let Some(content) = content {
        let content_path = scratch(&format!("{tag}.bin"));
        std::fs::write(&content_path, content).unwrap();
        cmd.arg("-content").arg(content_path);
    }
    let out = cmd
        .output()
        .expect("openssl must be installed for this test");
    out.status.success()
}

#[test]
fn detached_cms_verifies_here_and_in_openssl_and_a_changed_byte_fails_both() {
    let f = fixture();
    let content = b"%PDF-1.7 a document to be signed by the card\n".to_vec();
    let cms = pollster::block_on(sign_cms(
        &content,
        &f.signer,
        &options(true, HashAlgorithm::Sha256),
    ))
    .unwrap();

    assert!(is_signed_data(&cms));
    assert!(!is_signed_data(&[0x30; 256]));
    let v = verify_cms(&cms, Some(&content), &[]).unwrap();
    assert_eq!(v.signer, *f.signer.certificate());
    assert_eq!(v.hash, HashAlgorithm::Sha256);
    assert_eq!(v.signing_time, Some(system_time("2026-05-01T09:00:00Z")));
    assert!(v.signing_certificate_v2);
    assert!(v.attached_content.is_none());
    assert!(openssl_verifies("detached", &cms, Some(&content), &f.root));

    let mut changed = content.clone();
    changed[5] ^= 0x01;
    assert!(matches!(
        verify_cms(&cms, Some(&changed), &[]),
        Err(CmsError::MessageDigestMismatch)
    ));
    assert!(!openssl_verifies(
        "detached-changed",
        &cms,
        Some(&changed),
        &f.root
    ));
    assert!(matches!(
        verify_cms(&cms, None, &[]),
        Err(CmsError::NoContent)
    ));
}

#[test]
fn attached_cms_carries_the_content() {
    let f = fixture();
    let content = b"attached content".to_vec();
    let cms = pollster::block_on(sign_cms(
        &content,
        &f.signer,
        &options(false, HashAlgorithm::Sha256),
    ))
    .unwrap();
    let v = verify_cms(&cms, None, &[]).unwrap();
    assert_eq!(v.attached_content.as_deref(), Some(&content[..]));
    assert!(openssl_verifies("attached", &cms, None, &f.root));
    assert!(matches!(
        verify_cms(&cms, Some(b"other content"), &[]),
        Err(CmsError::ContentMismatch)
    ));
}

#[test]
fn sha384_and_sha512_messages_verify_in_openssl_too() {
    let f = fixture();
    for hash in [HashAlgorithm::Sha384, HashAlgorithm::Sha512] {
        let cms = pollster::block_on(sign_cms(b"data", &f.signer, &options(true, hash))).unwrap();
        assert_eq!(verify_cms(&cms, Some(b"data"), &[]).unwrap().hash, hash);
        assert!(openssl_verifies(hash.name(), &cms, Some(b"data"), &f.root));
    }
}

#[test]
fn a_tampered_signature_or_signed_attribute_is_refused() {
    let f = fixture();
    let cms = pollster::block_on(sign_cms(
        b"data",
        &f.signer,
        &options(true, HashAlgorithm::Sha256),
    ))
    .unwrap();
    // The signature is the last 256 bytes of the message.
    let mut bad_sig = cms.clone();
    let n = bad_sig.len();
    bad_sig[n - 10] ^= 0x80;
    assert!(matches!(
        verify_cms(&bad_sig, Some(b"data"), &[]),
        Err(CmsError::Signature(_))
    ));
    assert!(!openssl_verifies(
        "bad-sig",
        &bad_sig,
        Some(b"data"),
        &f.root
    ));
    // Changing the signing time (inside the signed attributes) breaks the signature too.
    let when = b"260501090000Z";
    let pos = cms.windows(when.len()).position(|w| w == when).unwrap();
    let mut bad_time = cms.clone();
    bad_time[pos + 1] = b'7';
    assert!(matches!(
        verify_cms(&bad_time, Some(b"data"), &[]),
        Err(CmsError::Signature(_))
    ));
}

#[test]
fn the_signer_certificate_can_be_supplied_and_must_be_the_one_signed_for() {
    let f = fixture();
    let cms = pollster::block_on(sign_cms(
        b"data",
        &f.signer,
        &options(true, HashAlgorithm::Sha256),
    ))
    .unwrap();
    // Re-issued certificate: same issuer, serial and key, different contents. The
    // signing-certificate-v2 attribute pins the original.
    let reissued = JpkiCertificate::from_der(&build_cert(CertSpec {
        serial: 0x51,
        issuer: f.root.subject().clone(),
        subject: name("CN=REISSUED,C=JP"),
        not_before: "2024-01-01T00:00:00Z",
        not_after: "2029-01-01T00:00:00Z",
        subject_key: key(3),
        signer: key(1),
        extensions: vec![],
    }))
    .unwrap();
    assert!(matches!(
        verify_cms(&cms, Some(b"data"), &[reissued]),
        Err(CmsError::SigningCertificateMismatch)
    ));
}

#[test]
fn detached_by_digest_equals_detached_by_content_in_what_it_proves() {
    let f = fixture();
    let content = vec![0x5Au8; 100_000];
    let digest = HashAlgorithm::Sha256.digest(&content);
    let cms = pollster::block_on(sign_cms_detached_digest(
        &digest,
        &f.signer,
        &options(false, HashAlgorithm::Sha256),
    ))
    .unwrap();
    verify_cms(&cms, Some(&content), &[]).unwrap();
    assert!(
        pollster::block_on(sign_cms_detached_digest(
            &digest[..31],
            &f.signer,
            &CmsOptions::default()
        ))
        .is_err()
    );
}

#[test]
fn extra_certificates_and_no_signing_time() {
    let f = fixture();
    let opts = CmsOptions {
        detached: true,
        hash: HashAlgorithm::Sha256,
        signing_time: None,
        extra_certificates: vec![f.root.clone()],
    };
    let cms = pollster::block_on(sign_cms(b"x", &f.signer, &opts)).unwrap();
    let v = verify_cms(&cms, Some(b"x"), &[]).unwrap();
    assert_eq!(v.signing_time, None);
    // Both certificates are in the message.
    let count = |needle: &[u8]| cms.windows(needle.len()).filter(|w| *w == needle).count();
    assert_eq!(count(f.root.der()), 1);
    assert_eq!(count(f.signer.certificate().der()), 1);
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused() {
    let f = fixture();
    assert!(matches!(
        SoftwareSigner::new(key(0).clone(), f.signer.certificate().clone()),
        Err(SoftwareSignerError::KeyMismatch)
    ));
}

#[test]
fn not_a_cms_message() {
    assert!(verify_cms(&[0x30, 0x03, 0x02, 0x01, 0x00], None, &[]).is_err());
    let root_der = mynacard_cert::roots::JLIS_ROOTS[0].der;
    assert!(verify_cms(root_der, None, &[]).is_err());
}
