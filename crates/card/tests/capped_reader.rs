//! Readers and phone NFC stacks that cap answers without saying so: every certificate still
//! comes back whole (its length is known from its TLV header) and both keys still sign, and a
//! reader that does not cap costs no APDU more.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unused_macros,
    unused_imports
)]

mod support;

use mynacard_card::jpki::PublicCertificate;
use mynacard_card::{AttemptPolicy, HashAlgorithm};
use mynacard_sim::inprocess::SimCard;
use mynacard_transport::blocking::block_on;
use support::{PIN, card, password, pin, rsa_operations, sent};

/// What one session reads and signs: the four certificates and a signature with each key.
struct Run {
    certificates: Vec<Vec<u8>>,
    signatures: Vec<Result<Vec<u8>, String>>,
    commands: u64,
}

fn run(profile: &str) -> (Run, SimCard) {
    let (sim, mut session) = card(profile);
    let (certificates, signatures) = block_on(async {
        let mut ap = session.jpki().await.unwrap();
        let mut certificates = Vec::new();
        for which in [
            PublicCertificate::Auth,
            PublicCertificate::AuthCa,
            PublicCertificate::SignCa,
        ] {
            certificates.push(ap.read_certificate(which).await.unwrap().der().to_vec());
        }
        let mut signatures = Vec::new();
        {
            let mut auth = ap
                .verify_auth(&pin(PIN), AttemptPolicy::default())
                .await
                .unwrap();
            signatures.push(
                auth.sign(HashAlgorithm::Sha256, b"capped")
                    .await
                    .map_err(|e| format!("{e:?}")),
            );
        }
        let mut ap = session.jpki().await.unwrap();
        let mut sign = ap
            .verify_sign(&password("ABC123"), AttemptPolicy::default())
            .await
            .unwrap();
        certificates.push(sign.read_sign_certificate().await.unwrap().der().to_vec());
        signatures.push(
            sign.sign(HashAlgorithm::Sha256, b"capped")
                .await
                .map_err(|e| format!("{e:?}")),
        );
        (certificates, signatures)
    });
    let commands = session.stats().commands;
    (
        Run {
            certificates,
            signatures,
            commands,
        },
        sim,
    )
}

#[test]
fn a_reader_that_leaves_the_rest_to_get_response_gives_every_certificate_and_signature() {
    let (plain, _) = run("contactless");
    let (capped, sim) = run("capped-reader");
    assert_eq!(capped.certificates, plain.certificates);
    assert!(capped.certificates.iter().all(|c| c.len() > 1000));
    for signature in &capped.signatures {
        assert_eq!(signature.as_ref().map(Vec::len), Ok(256));
    }
    // The rest of each answer over 128 bytes came by GET RESPONSE, and each signature once.
    assert!(!sent(&sim, 0x00, 0xC0).is_empty());
    assert_eq!(rsa_operations(&sim), 2);
    // The same commands as on a reader that does not cap, plus the GET RESPONSEs.
    assert_eq!(
        capped.commands,
        plain.commands + sent(&sim, 0x00, 0xC0).len() as u64
    );
}

#[test]
fn a_reader_that_drops_the_rest_still_gives_every_certificate_whole() {
    let (plain, _) = run("contactless");
    let (dropped, sim) = run("capped-reader-dropped");
    assert_eq!(dropped.certificates, plain.certificates);
    // Each certificate: the first (capped) read, one SELECT EF, then reads by offset.
    let reads = sent(&sim, 0x00, 0xB0).len();
    let expected: usize = plain
        .certificates
        .iter()
        .map(|c| 1 + (c.len() - 128).div_ceil(128))
        .sum();
    assert_eq!(reads, expected);
    assert_eq!(
        dropped.commands,
        plain.commands + (reads - 4) as u64 + 4,
        "one SELECT EF and the extra reads per certificate"
    );
    // A signature cut short cannot be recovered: a typed error, the card signed once each time,
    // and nothing was sent again.
    for signature in &dropped.signatures {
        let error = signature.as_ref().unwrap_err();
        assert!(error.starts_with("SignatureLength"), "{error}");
    }
    assert_eq!(rsa_operations(&sim), 2);
    assert_eq!(sent(&sim, 0x80, 0x2A).len(), 2);
}

#[test]
fn a_reader_that_does_not_cap_reads_each_certificate_in_one_command() {
    let (plain, sim) = run("contactless");
    // One READ BINARY per certificate, no SELECT EF, no GET RESPONSE.
    assert_eq!(sent(&sim, 0x00, 0xB0).len(), 4);
    assert!(sent(&sim, 0x00, 0xC0).is_empty());
    assert!(
        sent(&sim, 0x00, 0xA4)
            .iter()
            .all(|c| c.get(2) == Some(&0x04)),
        "only application SELECTs"
    );
    // SELECT, 3 reads, tries + VERIFY + sign with each key, the signing certificate: 12, as
    // before readers that cap were handled.
    assert_eq!(plain.commands, 12);
    assert!(plain.signatures.iter().all(Result::is_ok));
}
