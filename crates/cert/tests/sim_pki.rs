//! The simulated card's O=JPKI-TEST hierarchy: every built-in profile's certificates parse, are
//! refused without the opt-in, verify with it, and expired/revoked cases come out as such.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::SystemTime;

use mynacard_cert::{
    BirthDate, CertKind, ChainError, Crl, CrlSource, Era, Hierarchy, JpkiCertificate,
    NoRevocationCheck, Purpose, RevocationReason, RevocationStatus, Sex, TrustPolicy, verify,
    verify_chain,
};
use mynacard_sim::{
    image::Date,
    pki::{CaKind, TestPki},
    profile::Catalogue,
};

fn at(date: Date, hour: u8) -> SystemTime {
    der::DateTime::new(date.year, date.month, date.day, hour, 0, 0)
        .unwrap()
        .to_system_time()
}

fn test_policy() -> TrustPolicy {
    let pki = TestPki::shared().unwrap();
    let roots = pki
        .root_ders()
        .map(|der| JpkiCertificate::from_der(der).unwrap());
    TrustPolicy::production()
        .allow_test_hierarchy(roots)
        .unwrap()
}

#[test]
fn every_profile_certificate_parses_and_verifies_only_with_the_opt_in() {
    let pki = TestPki::shared().unwrap();
    let catalogue = Catalogue::builtin().unwrap();
    let policy = test_policy();
    let mut checked = 0;
    for profile in catalogue.profiles() {
        let image = profile.build_image(pki).unwrap();
        let mut certs = vec![(Purpose::Authentication, image.auth.cert_der.clone())];
        if let Some(sign) = &image.sign {
            certs.push((Purpose::Signing, sign.cert_der.clone()));
        }
        // The CA certificates on the card are the test roots.
        assert_eq!(image.auth_ca_cert, pki.root_der(CaKind::Auth));
        assert_eq!(image.sign_ca_cert, pki.root_der(CaKind::Sign));
        for (purpose, der) in certs {
            let cert = JpkiCertificate::from_der(&der).unwrap();
            let name = &profile.name;
            assert_eq!(cert.kind().purpose(), Some(purpose), "{name}");
            assert_eq!(cert.hierarchy(), Hierarchy::Test, "{name}");
            let when = at(profile.reference_date, 3);
            let inside = cert.not_before() + std::time::Duration::from_secs(3600);
            assert!(
                matches!(
                    verify_chain(&cert, &TrustPolicy::production(), inside),
                    Err(ChainError::TestHierarchyNotAccepted)
                ),
                "{name}"
            );
            let chain = verify_chain(&cert, &policy, inside).unwrap();
            assert_eq!(chain.root.hierarchy, Hierarchy::Test);
            assert_eq!(chain.root.purpose, Some(purpose));
            let expired = profile.name == "expired-auth";
            assert_eq!(
                verify_chain(&cert, &policy, when).is_err(),
                expired,
                "{name}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} certificates checked");
}

#[test]
fn the_expired_profile_is_refused_after_expiry_and_accepted_inside_validity() {
    let pki = TestPki::shared().unwrap();
    let profile = Catalogue::builtin()
        .unwrap()
        .get("expired-auth")
        .unwrap()
        .clone();
    let image = profile.build_image(pki).unwrap();
    let cert = JpkiCertificate::from_der(&image.auth.cert_der).unwrap();
    let policy = test_policy();
    assert!(matches!(
        verify_chain(&cert, &policy, at(profile.reference_date, 0)),
        Err(ChainError::Expired { .. })
    ));
    let (issued, _) = profile.validity(CaKind::Auth).unwrap();
    assert!(verify_chain(&cert, &policy, at(issued, 12)).is_ok());
}

#[test]
fn the_revoked_profile_is_revoked_on_the_simulators_crl() {
    let pki = TestPki::shared().unwrap();
    let catalogue = Catalogue::builtin().unwrap();
    let profile = catalogue.get("revoked-auth").unwrap().clone();
    let image = profile.build_image(pki).unwrap();
    let cert = JpkiCertificate::from_der(&image.auth.cert_der).unwrap();
    let this_update = der::DateTime::new(2026, 6, 1, 0, 0, 0).unwrap();
    let crl = Crl::from_der(&catalogue.crl_der(CaKind::Auth, pki, this_update).unwrap()).unwrap();
    let policy = test_policy();
    let source = CrlSource::new([crl]);
    let v = verify(&cert, &policy, at(profile.reference_date, 3), &source).unwrap();
    match v.revocation {
        RevocationStatus::Revoked { reason, date } => {
            assert_eq!(reason, Some(RevocationReason::KeyCompromise));
            assert_eq!(
                date,
                at(
                    Date {
                        year: 2026,
                        month: 5,
                        day: 10
                    },
                    0
                )
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // The adult card is not on the same CRL: good.
    let adult = Catalogue::builtin()
        .unwrap()
        .get("adult")
        .unwrap()
        .build_image(pki)
        .unwrap();
    let adult = JpkiCertificate::from_der(&adult.auth.cert_der).unwrap();
    let v = verify(&adult, &policy, at(profile.reference_date, 3), &source).unwrap();
    assert!(matches!(v.revocation, RevocationStatus::Good { .. }));
    let v = verify(
        &adult,
        &policy,
        at(profile.reference_date, 3),
        &NoRevocationCheck,
    )
    .unwrap();
    assert!(matches!(v.revocation, RevocationStatus::Unchecked { .. }));
}

#[test]
fn the_signing_certificate_carries_the_holders_data() {
    let pki = TestPki::shared().unwrap();
    let image = Catalogue::builtin()
        .unwrap()
        .get("adult")
        .unwrap()
        .build_image(pki)
        .unwrap();
    let cert = JpkiCertificate::from_der(&image.sign.unwrap().cert_der).unwrap();
    assert_eq!(cert.kind(), CertKind::Signing);
    let p = cert.personal_data().unwrap();
    assert_eq!(
        p.name().unwrap().as_text(),
        Some(image.person.name.as_str())
    );
    assert_eq!(
        p.address().unwrap().as_text(),
        Some(image.person.address.as_str())
    );
    assert_eq!(p.sex(), Some(&Sex::Female));
    match p.birth_date().unwrap() {
        BirthDate::Date(d) => {
            let b = image.person.birth_date;
            assert_eq!((d.year(), d.month(), d.day()), (b.year, b.month, b.day));
            assert_eq!(d.era(), Era::Showa);
        }
        other => panic!("unexpected {other:?}"),
    }
    // `.2`/`.6` are substitute positions, one digit per character, as on the real card.
    let zeros = |s: &str| "0".repeat(s.chars().count());
    assert_eq!(
        p.name_substitute().unwrap().as_text(),
        Some(zeros(&image.person.name).as_str())
    );
    assert_eq!(
        p.address_substitute().unwrap().as_text(),
        Some(zeros(&image.person.address).as_str())
    );
    assert!(p.unrecognized().is_empty());
    // The authentication certificate carries none.
    let auth = JpkiCertificate::from_der(&image.auth.cert_der).unwrap();
    assert!(auth.personal_data().is_none());
    assert_eq!(auth.kind(), CertKind::Authentication);
}
