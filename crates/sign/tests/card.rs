//! Signing with the simulated card's keys through `CardSigner`: CMS that OpenSSL accepts, a
//! trusted chain under the test hierarchy, one card command per signature.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use mynacard_card::{AttemptPolicy, Pin, Session, SignPassword, jpki::PublicCertificate};
use mynacard_cert::{JpkiCertificate, NoRevocationCheck, Purpose, TrustPolicy, verify};
use mynacard_sign::{
    CardRsaSigner, DigestInfo, DigestInfoSigner, HashAlgorithm,
    card::{CardSigner, VerifiedKey},
    cms::{CmsError, CmsOptions, sign_cms, verify_cms},
    signature::{AsyncSigner, Keypair, Verifier},
    verify_pkcs1v15,
};
use mynacard_sim::{inprocess::SimCard, pki::TestPki};

fn sim(profile: &str) -> SimCard {
    SimCard::from_image(mynacard_sim::image::CardImage::from_profile_name(profile).unwrap())
}

fn test_policy() -> TrustPolicy {
    let roots = TestPki::shared()
        .unwrap()
        .root_ders()
        .map(|d| JpkiCertificate::from_der(d).unwrap());
    TrustPolicy::production()
        .allow_test_hierarchy(roots)
        .unwrap()
}

fn at_reference() -> std::time::SystemTime {
    der::DateTime::new(2026, 6, 1, 0, 0, 0)
        .unwrap()
        .to_system_time()
}

#[test]
fn the_signing_key_makes_a_cms_that_verifies_here_in_the_chain_and_in_openssl() {
    let card = sim("adult");
    let mut session = Session::new(card.channel());
    let content = b"contract: the undersigned agrees".to_vec();
    let cms = pollster::block_on(async {
        let mut ap = session.jpki().await.unwrap();
        let password = SignPassword::new("ABC123").unwrap();
        let mut verified = ap
            .verify_sign(&password, AttemptPolicy::KeepLastAttempt)
            .await
            .unwrap();
        let cert = verified.read_sign_certificate().await.unwrap();
        let cert = JpkiCertificate::from_der(cert.der()).unwrap();
        let signer = CardSigner::new(VerifiedKey::Sign(verified), cert);
        let options = CmsOptions {
            detached: true,
            ..CmsOptions::default()
        };
        sign_cms(&content, &signer, &options).await.unwrap()
    });

    let v = verify_cms(&cms, Some(&content), &[]).unwrap();
    assert_eq!(v.signer.kind().purpose(), Some(Purpose::Signing));
    let trusted = verify(
        &v.signer,
        &test_policy(),
        at_reference(),
        &NoRevocationCheck,
    )
    .unwrap();
    assert_eq!(trusted.chain.root.purpose, Some(Purpose::Signing));
    assert!(verify_chain_refuses_without_opt_in(&v.signer));

    let dir = std::env::temp_dir().join(format!("mynacard-sign-card-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let root = TestPki::shared()
        .unwrap()
        .root_pem(mynacard_sim::pki::CaKind::Sign)
        .unwrap();
    std::fs::write(dir.join("root.pem"), root).unwrap();
    std::fs::write(dir.join("doc.bin"), &content).unwrap();
    std::fs::write(dir.join("doc.p7s"), &cms).unwrap();
    let openssl = |content_file: &str| {
        Command::new("openssl")
            .args(["cms", "-verify", "-binary", "-inform", "DER", "-in"])
            .arg(dir.join("doc.p7s"))
            .arg("-content")
            .arg(dir.join(content_file))
            .arg("-CAfile")
            .arg(dir.join("root.pem"))
            .args(["-attime", "1780272000", "-out", "/dev/null"])
            .output()
            .expect("openssl must be installed for this test")
            .status
            .success()
    };
    assert!(openssl("doc.bin"));
    let mut changed = content.clone();
    changed[0] ^= 0x20;
    std::fs::write(dir.join("changed.bin"), &changed).unwrap();
    assert!(!openssl("changed.bin"));
    assert!(matches!(
        verify_cms(&cms, Some(&changed), &[]),
        Err(CmsError::MessageDigestMismatch)
    ));
}

fn verify_chain_refuses_without_opt_in(cert: &JpkiCertificate) -> bool {
    mynacard_cert::verify_chain(cert, &TrustPolicy::production(), at_reference()).is_err()
}

#[test]
fn one_signature_is_one_card_command_and_the_auth_key_works_through_rustcrypto() {
    let card = sim("adult");
    let mut session = Session::new(card.channel());
    pollster::block_on(async {
        let mut ap = session.jpki().await.unwrap();
        let cert = ap.read_certificate(PublicCertificate::Auth).await.unwrap();
        let cert = JpkiCertificate::from_der(cert.der()).unwrap();
        let pin = Pin::new("1234").unwrap();
        let verified = ap
            .verify_auth(&pin, AttemptPolicy::KeepLastAttempt)
            .await
            .unwrap();
        let signer = CardSigner::new(VerifiedKey::Auth(verified), cert.clone());

        let before = card.log().counters().apdus;
        let di = DigestInfo::of(HashAlgorithm::Sha256, b"challenge from the server");
        let sig = signer.sign_digest_info(&di).await.unwrap();
        assert_eq!(
            card.log().counters().apdus - before,
            1,
            "one APDU per signature"
        );
        // A whole CMS message is one signature too.
        let before = card.log().counters().apdus;
        let _ = sign_cms(b"document", &signer, &CmsOptions::default())
            .await
            .unwrap();
        assert_eq!(card.log().counters().apdus - before, 1);
        verify_pkcs1v15(&cert.rsa_public_key().unwrap(), &di, &sig).unwrap();

        let rc: CardRsaSigner<_, sha2::Sha256> = CardRsaSigner::new(&signer).unwrap();
        let signature = rc.sign_async(b"login nonce").await.unwrap();
        rc.verifying_key()
            .verify(b"login nonce", &signature)
            .unwrap();
        assert!(
            rc.verifying_key()
                .verify(b"login noncf", &signature)
                .is_err()
        );
    });
}
