//! DigestInfo encoding, PKCS#1 v1.5 and PSS verification.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../cert/tests/common/mod.rs"]
mod common;

use mynacard_sign::{
    DigestInfo, DigestInfoError, HashAlgorithm, VerifyError, verify_pkcs1v15,
    verify_pkcs1v15_message, verify_pss,
};
use proptest::prelude::*;
use rsa::signature::{SignatureEncoding, Signer, hazmat::PrehashSigner};

// RFC 8017 §9.2, note 1.
const PREFIXES: [(HashAlgorithm, &str); 3] = [
    (
        HashAlgorithm::Sha256,
        "3031300d060960864801650304020105000420",
    ),
    (
        HashAlgorithm::Sha384,
        "3041300d060960864801650304020205000430",
    ),
    (
        HashAlgorithm::Sha512,
        "3051300d060960864801650304020305000440",
    ),
];

#[test]
fn digest_info_matches_the_rfc_prefixes() {
    for (alg, prefix) in PREFIXES {
        let di = DigestInfo::of(alg, b"abc");
        let der = di.to_der();
        assert_eq!(hex::encode(&der[..19]), prefix, "{alg:?}");
        assert_eq!(&der[19..], alg.digest(b"abc").as_slice());
        assert_eq!(DigestInfo::from_der(&der).unwrap(), di);
    }
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    assert_eq!(
        hex::encode(HashAlgorithm::Sha256.digest(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn digest_info_parsing_is_strict_about_what_matters() {
    // Absent parameters are accepted.
    let mut absent = hex::decode("302f300b0609608648016503040201").unwrap();
    absent.extend([0x04, 0x20]);
    absent.extend([0u8; 32]);
    let di = DigestInfo::from_der(&absent).unwrap();
    assert_eq!(di.algorithm(), HashAlgorithm::Sha256);
    // SHA-1 is refused.
    let mut sha1 = hex::decode("3021300906052b0e03021a05000414").unwrap();
    sha1.extend([0u8; 20]);
    assert!(matches!(
        DigestInfo::from_der(&sha1),
        Err(DigestInfoError::UnsupportedAlgorithm(_))
    ));
    // A digest of the wrong length is refused.
    assert!(matches!(
        DigestInfo::new(HashAlgorithm::Sha384, vec![0u8; 32]),
        Err(DigestInfoError::WrongLength {
            expected: 48,
            actual: 32,
            ..
        })
    ));
    assert!(matches!(
        DigestInfo::from_der(&[0x30, 0x00]),
        Err(DigestInfoError::Der(_))
    ));
}

#[test]
fn hash_names_and_streaming() {
    for alg in HashAlgorithm::ALL {
        assert_eq!(HashAlgorithm::from_name(alg.name()), Some(alg));
        assert_eq!(HashAlgorithm::from_oid(&alg.oid()), Some(alg));
        let mut h = alg.hasher();
        h.update(b"ab");
        h.update(b"c");
        assert_eq!(h.finalize(), alg.digest(b"abc"));
        assert_eq!(alg.digest(b"").len(), alg.output_len());
    }
    assert_eq!(
        HashAlgorithm::from_name("SHA-384"),
        Some(HashAlgorithm::Sha384)
    );
    assert_eq!(HashAlgorithm::from_name("sha1"), None);
}

#[test]
fn pkcs1v15_signatures_verify_and_tampering_is_caught() {
    let key = common::key(0);
    let public = key.to_public_key();
    let message = b"document to sign";
    let sig = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
        .sign(message)
        .to_vec();
    verify_pkcs1v15_message(&public, HashAlgorithm::Sha256, message, &sig).unwrap();
    verify_pkcs1v15(
        &public,
        &DigestInfo::of(HashAlgorithm::Sha256, message),
        &sig,
    )
    .unwrap();

    assert!(matches!(
        verify_pkcs1v15_message(&public, HashAlgorithm::Sha256, b"document to sigm", &sig),
        Err(VerifyError::BadSignature(_))
    ));
    let mut bad = sig.clone();
    bad[100] ^= 1;
    assert!(verify_pkcs1v15_message(&public, HashAlgorithm::Sha256, message, &bad).is_err());
    // Same bytes under another hash: refused.
    assert!(verify_pkcs1v15_message(&public, HashAlgorithm::Sha512, message, &sig).is_err());
    // Another key: refused.
    let other = common::key(1).to_public_key();
    assert!(verify_pkcs1v15_message(&other, HashAlgorithm::Sha256, message, &sig).is_err());
}

#[test]
fn pss_signatures_verify_with_known_or_any_salt_length() {
    let key = common::key(0);
    let public = key.to_public_key();
    let digest = HashAlgorithm::Sha256.digest(b"pss message");
    let signer = rsa::pss::SigningKey::<sha2::Sha256>::new_with_salt_len(key.clone(), 20);
    let sig = signer.sign_prehash(&digest).unwrap().to_vec();
    verify_pss(&public, HashAlgorithm::Sha256, &digest, &sig, None).unwrap();
    verify_pss(&public, HashAlgorithm::Sha256, &digest, &sig, Some(20)).unwrap();
    assert!(verify_pss(&public, HashAlgorithm::Sha256, &digest, &sig, Some(32)).is_err());
    let other = HashAlgorithm::Sha256.digest(b"pss messagf");
    assert!(verify_pss(&public, HashAlgorithm::Sha256, &other, &sig, None).is_err());
    assert!(matches!(
        verify_pss(&public, HashAlgorithm::Sha384, &digest, &sig, None),
        Err(VerifyError::DigestLength { expected: 48, .. })
    ));
    // A PKCS#1 v1.5 signature is not a PSS one.
    let v15 = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
        .sign(b"pss message")
        .to_vec();
    assert!(verify_pss(&public, HashAlgorithm::Sha256, &digest, &v15, None).is_err());
}

proptest! {
    #[test]
    fn digest_info_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = DigestInfo::from_der(&bytes);
    }

    #[test]
    fn digest_info_round_trips(which in 0usize..3, data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let di = DigestInfo::of(HashAlgorithm::ALL[which], &data);
        prop_assert_eq!(DigestInfo::from_der(&di.to_der()).unwrap(), di);
    }
}
