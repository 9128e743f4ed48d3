//! The built-in seed names exactly the simulator's certificates and the test terminals' keys.
#![allow(clippy::expect_used)]

use mynacard_registration::attestation::SoftwareAttestationKey;
use mynacard_registry::Seed;
use mynacard_registry::upstream::{CertificateForm, normalise_serial};
use mynacard_sim::image::{CardImage, TokenKind};
use mynacard_sim::pki::{CaKind, TestPki};
use mynacard_sim::profile::Catalogue;
use sha2::Digest as _;

fn auth_serial(profile: &str) -> String {
    let pki = TestPki::shared().expect("pki");
    let catalogue = Catalogue::builtin().expect("profiles");
    let serial = catalogue
        .get(profile)
        .expect("profile")
        .serial(CaKind::Auth, pki)
        .expect("auth certificate");
    normalise_serial(&format!("{serial:x}"))
}

/// The seed's entries in order: linkage code and the simulator profiles of its certificates.
fn expected_profiles() -> [(&'static str, Vec<&'static str>); 7] {
    [
        ("LNK-ADULT", vec!["adult", "reissued"]),
        ("LNK-ADULT", vec!["smartphone"]),
        ("LNK-CHILD", vec!["under15"]),
        ("LNK-FACE", vec!["face-auth"]),
        ("LNK-EXPIRED", vec!["expired-auth"]),
        ("LNK-REVOKED", vec!["revoked-auth"]),
        ("LNK-BLOCKED", vec!["blocked-auth-pin"]),
    ]
}

#[test]
fn fixture_matches_the_simulator() {
    let seed = Seed::builtin().expect("built-in seed parses");
    let pki = TestPki::shared().expect("pki");
    let root = format!(
        "test-{}",
        hex::encode(&sha2::Sha256::digest(pki.root_der(CaKind::Auth))[..8])
    );
    let chains: Vec<(String, Vec<String>)> = seed
        .persons
        .iter()
        .map(|p| {
            for c in &p.certificates {
                assert_eq!(c.root, root, "{}", p.linkage_code);
            }
            (
                p.linkage_code.clone(),
                p.certificates
                    .iter()
                    .map(|c| normalise_serial(&c.serial))
                    .collect(),
            )
        })
        .collect();
    let expected: Vec<(String, Vec<String>)> = expected_profiles()
        .iter()
        .map(|(code, profiles)| {
            (
                (*code).to_owned(),
                profiles.iter().map(|p| auth_serial(p)).collect(),
            )
        })
        .collect();
    assert_eq!(chains, expected);
    // An entry is marked smartphone exactly when its profile is a smartphone token.
    for (person, (_, profiles)) in seed.persons.iter().zip(expected_profiles()) {
        let phone = profiles
            .iter()
            .all(|p| CardImage::from_profile_name(p).expect("profile").token != TokenKind::Card);
        let expected_form = if phone {
            CertificateForm::Smartphone
        } else {
            CertificateForm::Card
        };
        assert_eq!(person.form, expected_form, "{profiles:?}");
    }
    // The card profiles that share the adult's card have its serial.
    for same in ["contact", "contactless", "no-extended"] {
        assert_eq!(auth_serial(same), auth_serial("adult"));
    }
    // The child has no insurance record; everyone else exactly one (across their entries).
    let records = |code: &str| {
        seed.persons
            .iter()
            .filter(|p| p.linkage_code == code)
            .map(|p| p.insurance.len())
            .sum::<usize>()
    };
    assert_eq!(records("LNK-CHILD"), 0);
    for code in [
        "LNK-ADULT",
        "LNK-FACE",
        "LNK-EXPIRED",
        "LNK-REVOKED",
        "LNK-BLOCKED",
    ] {
        assert_eq!(records(code), 1, "{code}");
    }
}

#[test]
fn terminal_keys_are_the_test_keys() {
    let seed = Seed::builtin().expect("seed");
    let mut face = 0;
    for t in &seed.terminals {
        match &t.attestation_key {
            Some(key) => {
                face += 1;
                assert!(t.face_approved, "{}", t.id);
                let expected = SoftwareAttestationKey::for_testing(&t.id)
                    .public_key_base64url()
                    .expect("key");
                assert_eq!(key, &expected, "{}", t.id);
            }
            None => assert!(!t.face_approved, "{}", t.id),
        }
    }
    assert_eq!(face, 2);
}

#[test]
fn seed_rules_are_enforced() {
    assert!(Seed::parse("[[person]]\nlinkage_code = \"\"\n").is_err());
    let twice = "[[person]]\nlinkage_code = \"A\"\ncertificates = [{ root = \"r\", serial = \"01\" }]\n\
                 [[person]]\nlinkage_code = \"B\"\ncertificates = [{ root = \"r\", serial = \"1\" }]\n";
    assert!(Seed::parse(twice).is_err(), "one certificate, two persons");
    let bad_branch = "[[person]]\nlinkage_code = \"A\"\n[[person.insurance]]\ninsurer_number = \"06139999\"\n\
                      symbol = \"1\"\nnumber = \"2\"\nbranch = \"1\"\ninsurer_name = \"x\"\n";
    assert!(Seed::parse(bad_branch).is_err());
    assert!(Seed::parse("[[terminal]]\nid = \"t\"\nkind = \"app\"\nextra = 1\n").is_err());
}
