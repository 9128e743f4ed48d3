//! `CardRsaSigner` as a RustCrypto signer: signatures verify with its `Keypair`, and generic
//! x509-cert code builds a certificate request with it that OpenSSL accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../cert/tests/common/mod.rs"]
mod common;

use std::{process::Command, str::FromStr};

use common::*;
use der::Encode;
use mynacard_cert::JpkiCertificate;
use mynacard_sign::{
    CardRsaSigner, SoftwareSigner,
    signature::{AsyncSigner, Keypair, Verifier},
};
use x509_cert::{
    builder::{AsyncBuilder, RequestBuilder},
    name::Name,
    spki::DynSignatureAlgorithmIdentifier,
};

fn signer() -> SoftwareSigner {
    let root = JpkiCertificate::from_der(&root("JPKI-TEST", AUTH_OU, key(1), 1)).unwrap();
    let leaf = JpkiCertificate::from_der(&auth_leaf(
        root.subject().clone(),
        key(1),
        3,
        "2024-01-01T00:00:00Z",
        "2029-01-01T00:00:00Z",
    ))
    .unwrap();
    SoftwareSigner::new(key(3).clone(), leaf).unwrap()
}

#[test]
fn signatures_verify_with_the_keypairs_verifying_key() {
    let s256: CardRsaSigner<_, sha2::Sha256> = CardRsaSigner::new(signer()).unwrap();
    let sig = pollster::block_on(s256.sign_async(b"message")).unwrap();
    s256.verifying_key().verify(b"message", &sig).unwrap();
    assert!(s256.verifying_key().verify(b"massage", &sig).is_err());
    assert_eq!(
        s256.signature_algorithm_identifier()
            .unwrap()
            .oid
            .to_string(),
        "1.2.840.113549.1.1.11"
    );

    let s512: CardRsaSigner<_, sha2::Sha512> = CardRsaSigner::new(signer()).unwrap();
    let sig = pollster::block_on(s512.sign_async(b"message")).unwrap();
    s512.verifying_key().verify(b"message", &sig).unwrap();
    // A SHA-512 signature is not a SHA-256 one.
    assert!(s256.verifying_key().verify(b"message", &sig).is_err());
}

#[test]
fn x509_cert_builds_a_request_openssl_accepts() {
    let s: CardRsaSigner<_, sha2::Sha256> = CardRsaSigner::new(signer()).unwrap();
    let builder = RequestBuilder::new(Name::from_str("CN=card holder,C=JP").unwrap()).unwrap();
    let csr = pollster::block_on(builder.build_async::<_, rsa::pkcs1v15::Signature>(&s)).unwrap();
    let der = csr.to_der().unwrap();
    let path = std::env::temp_dir().join(format!("mynacard-sign-csr-{}.der", std::process::id()));
    std::fs::write(&path, &der).unwrap();
    let out = Command::new("openssl")
        .args(["req", "-inform", "DER", "-in"])
        .arg(&path)
        .args(["-verify", "-noout"])
        .output()
        .expect("openssl must be installed for this test");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
