//! The test PKI: determinism, the JPKI certificate profile, CRLs, and OpenSSL's opinion.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use der::asn1::{PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode, Tagged};
use mynacard_cert::personal_oid;
use mynacard_sim::image::Date;
use mynacard_sim::pki::{
    self, CaKind, CrlSpec, HolderAttributes, LeafSpec, PkiError, Revocation, RevocationReason,
    TestPki, oid, utc,
};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier;
use sha2::Sha256;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, CrlDistributionPoints,
    CrlReason, IssuerAltName, KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::spki::ObjectIdentifier;

const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_L: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");

fn d(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn holder() -> HolderAttributes {
    HolderAttributes {
        name: "番号　花子".into(),
        name_substitutes: "00000".into(),
        sex: "2".into(),
        birth_date: "319800217".into(),
        address: "東京都清瀬市試験町一丁目２番３号".into(),
        address_substitutes: "0".repeat(16),
    }
}

fn leaf(pki: &TestPki, kind: CaKind, label: &str) -> LeafSpec {
    let key = pki.key(label).unwrap();
    LeafSpec {
        kind,
        serial: pki.serial(label),
        common_name: pki.opaque_common_name(label, "13221"),
        locality: (kind == CaKind::Sign).then(|| "Kiyose-shi".to_owned()),
        crl_partition: Some("Kiyose-shi".to_owned()),
        not_before: utc(d(2025, 10, 27), 0, 0, 0).unwrap(),
        not_after: utc(d(2030, 2, 17), 14, 59, 59).unwrap(),
        holder: (kind == CaKind::Sign).then(holder),
        public_key: key.to_public_key(),
    }
}

fn parse(der: &[u8]) -> Certificate {
    Certificate::from_der(der).unwrap()
}

fn ext<'a, T: Decode<'a> + der::oid::AssociatedOid>(cert: &'a Certificate) -> Option<(bool, T)> {
    cert.tbs_certificate().get_extension::<T>().unwrap()
}

fn attr_strings(name: &Name, oid: ObjectIdentifier) -> Vec<String> {
    name.iter()
        .filter(|atv| atv.oid == oid)
        .map(|atv| {
            Utf8StringRef::try_from(&atv.value)
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    PrintableStringRef::try_from(&atv.value).map(|s| s.as_str().to_owned())
                })
                .unwrap()
        })
        .collect()
}

/// A fresh directory under the system temp dir for files handed to openssl.
fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mynacard-sim-pki-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn pem(label: &str, der: &[u8]) -> String {
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).unwrap()
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect(
        "the openssl command must be installed for these tests (Debian: apt-get install openssl)",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.to_str().unwrap().to_owned()
}

fn epoch(date: Date) -> String {
    utc(date, 12, 0, 0)
        .unwrap()
        .unix_duration()
        .as_secs()
        .to_string()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = TestPki::new(b"determinism").unwrap();
    let b = TestPki::new(b"determinism").unwrap();
    let c = TestPki::new(b"determinism, other").unwrap();
    for kind in CaKind::ALL {
        assert_eq!(a.root_der(kind), b.root_der(kind));
        assert_ne!(a.root_der(kind), c.root_der(kind));
    }
    assert_ne!(a.root_der(CaKind::Auth), a.root_der(CaKind::Sign));
    let spec = leaf(&a, CaKind::Sign, "det/sign");
    assert_eq!(a.issue(&spec).unwrap(), b.issue(&spec).unwrap());
    assert_eq!(a.serial("x"), b.serial("x"));
    assert_ne!(a.serial("x"), c.serial("x"));
    assert_eq!(
        a.opaque_common_name("x", "13221"),
        b.opaque_common_name("x", "13221")
    );
}

#[test]
fn cached_keys_equal_freshly_generated_keys() {
    let pki = TestPki::new(b"cache check").unwrap();
    let cached = pki.key("cache/auth").unwrap();
    assert_eq!(cached, pki.key_uncached("cache/auth").unwrap());
    assert_ne!(cached, pki.key("cache/sign").unwrap());
    // The key was written to the machine's cache (unless the cache is switched off).
    if let Some(dir) = pki::key_cache_dir() {
        assert!(
            std::fs::read_dir(&dir)
                .unwrap()
                .any(|e| { e.unwrap().path().extension().is_some_and(|x| x == "p8") })
        );
    }
    use rsa::traits::PublicKeyParts;
    assert_eq!(cached.size(), 256);
    assert_eq!(&*cached.e_bytes(), &[1, 0, 1]);
}

#[test]
fn roots_mirror_the_real_root_profile() {
    let pki = TestPki::shared().unwrap();
    for kind in CaKind::ALL {
        let root = parse(pki.root_der(kind));
        let tbs = root.tbs_certificate();
        assert_eq!(tbs.subject(), tbs.issuer(), "self-signed");
        assert_eq!(attr_strings(tbs.subject(), OID_C), ["JP"]);
        assert_eq!(attr_strings(tbs.subject(), OID_O), ["JPKI-TEST"]);
        let ous = attr_strings(tbs.subject(), ObjectIdentifier::new_unwrap("2.5.4.11"));
        assert_eq!(
            ous,
            [
                kind.purpose_ou(),
                "Japan Agency for Local Authority Information Systems"
            ]
        );

        let (critical, ku) = ext::<KeyUsage>(&root).unwrap();
        assert!(critical);
        assert_eq!(ku.0, KeyUsages::KeyCertSign | KeyUsages::CRLSign);
        let (critical, bc) = ext::<BasicConstraints>(&root).unwrap();
        assert!(critical && bc.ca);
        let (_, SubjectAltName(san)) = ext::<SubjectAltName>(&root).unwrap();
        assert!(matches!(san.as_slice(), [GeneralName::DirectoryName(_)]));
        let (_, dp) = ext::<CrlDistributionPoints>(&root).unwrap();
        assert_eq!(crl_dp_name(&dp), tbs.subject());
        assert!(ext::<SubjectKeyIdentifier>(&root).is_some());
        assert!(
            ext::<AuthorityKeyIdentifier>(&root).is_none(),
            "real roots carry no AKI"
        );

        // RSA-2048, e = 65537, sha256WithRSAEncryption, self-signature verifies.
        assert_eq!(
            root.signature_algorithm().oid,
            ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11")
        );
        verify_signed(
            pki.root_key(kind).to_public_key(),
            &tbs.to_der().unwrap(),
            root.signature().raw_bytes(),
        );
    }
}

fn crl_dp_name(dp: &CrlDistributionPoints) -> &Name {
    match dp.0.as_slice() {
        [point] => match &point.distribution_point {
            Some(DistributionPointName::FullName(names)) => match names.as_slice() {
                [GeneralName::DirectoryName(n)] => n,
                other => panic!("unexpected CRL DP names {other:?}"),
            },
            other => panic!("unexpected CRL DP {other:?}"),
        },
        other => panic!("unexpected CRL DPs {other:?}"),
    }
}

fn verify_signed(key: rsa::PublicKey, message: &[u8], signature: &[u8]) {
    let vk = VerifyingKey::<Sha256>::new(key);
    vk.verify(message, &Signature::try_from(signature).unwrap())
        .expect("signature verifies");
}

#[test]
fn auth_leaf_carries_no_personal_data() {
    let pki = TestPki::shared().unwrap();
    let der = pki
        .issue(&leaf(pki, CaKind::Auth, "profile-test/auth"))
        .unwrap();
    let cert = parse(&der);
    let tbs = cert.tbs_certificate();
    let cn = attr_strings(tbs.subject(), OID_CN);
    assert_eq!(cn.len(), 1);
    assert_eq!(cn[0].chars().count(), 23);
    assert!(cn[0].contains("13221"));
    assert_eq!(attr_strings(tbs.subject(), OID_C), ["JP"]);
    assert!(attr_strings(tbs.subject(), OID_L).is_empty());
    assert_eq!(tbs.subject().iter().count(), 2);
    assert!(ext::<SubjectAltName>(&cert).is_none());

    let (critical, ku) = ext::<KeyUsage>(&cert).unwrap();
    assert!(critical);
    assert_eq!(
        ku.0,
        der::flagset::FlagSet::from(KeyUsages::DigitalSignature)
    );
    assert!(ext::<BasicConstraints>(&cert).is_none());
    let (_, policies) = ext::<CertificatePolicies>(&cert).unwrap();
    assert_eq!(policies.0[0].policy_identifier, oid::POLICY_AUTH);
    check_chain_extensions(pki, CaKind::Auth, &cert);
}

/// AKI = root SKI + root name + root serial, SKI present, CRL DP = the municipality's partition
/// under the root's purpose, IAN a directory name.
fn check_chain_extensions(pki: &TestPki, kind: CaKind, cert: &Certificate) {
    let root = parse(pki.root_der(kind));
    let (_, root_ski) = ext::<SubjectKeyIdentifier>(&root).unwrap();
    let (_, aki) = ext::<AuthorityKeyIdentifier>(cert).unwrap();
    assert_eq!(aki.key_identifier.as_ref(), Some(&root_ski.0));
    assert_eq!(
        aki.authority_cert_issuer,
        Some(vec![GeneralName::DirectoryName(
            root.tbs_certificate().subject().clone()
        )])
    );
    assert_eq!(
        aki.authority_cert_serial_number.as_ref(),
        Some(root.tbs_certificate().serial_number())
    );
    let (_, ski) = ext::<SubjectKeyIdentifier>(cert).unwrap();
    assert_ne!(ski.0, root_ski.0);
    let (_, dp) = ext::<CrlDistributionPoints>(cert).unwrap();
    assert_eq!(
        crl_dp_name(&dp).to_string(),
        format!(
            "CN=Kiyose-shi CRLDP,OU=CRL Distribution Points,OU={},O=JPKI-TEST,C=JP",
            kind.purpose_ou()
        )
    );
    let (_, IssuerAltName(ian)) = ext::<IssuerAltName>(cert).unwrap();
    assert!(matches!(ian.as_slice(), [GeneralName::DirectoryName(_)]));
    assert_eq!(
        cert.tbs_certificate().issuer(),
        root.tbs_certificate().subject()
    );
    verify_signed(
        pki.root_key(kind).to_public_key(),
        &cert.tbs_certificate().to_der().unwrap(),
        cert.signature().raw_bytes(),
    );
}

#[test]
fn sign_leaf_other_names_decode_back() {
    let pki = TestPki::shared().unwrap();
    let der = pki
        .issue(&leaf(pki, CaKind::Sign, "profile-test/sign"))
        .unwrap();
    let cert = parse(&der);
    let tbs = cert.tbs_certificate();
    assert_eq!(attr_strings(tbs.subject(), OID_L), ["Kiyose-shi"]);
    assert_eq!(attr_strings(tbs.subject(), OID_CN)[0].chars().count(), 23);

    let (critical, ku) = ext::<KeyUsage>(&cert).unwrap();
    assert!(critical);
    assert_eq!(
        ku.0,
        KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
    );
    let (_, policies) = ext::<CertificatePolicies>(&cert).unwrap();
    assert_eq!(policies.0[0].policy_identifier, oid::POLICY_SIGN);

    let (_, SubjectAltName(names)) = ext::<SubjectAltName>(&cert).unwrap();
    let h = holder();
    let expected = [
        (personal_oid::NAME, h.name.as_str()),
        (personal_oid::BIRTH_DATE, "319800217"),
        (personal_oid::SEX, "2"),
        (personal_oid::ADDRESS, h.address.as_str()),
        (personal_oid::NAME_SUBSTITUTE, "00000"),
        (
            personal_oid::ADDRESS_SUBSTITUTE,
            h.address_substitutes.as_str(),
        ),
    ];
    assert_eq!(names.len(), expected.len() + 1);
    for (name, (type_id, value)) in names.iter().zip(expected) {
        let GeneralName::OtherName(other) = name else {
            panic!("expected an otherName, got {name:?}");
        };
        assert_eq!(other.type_id, type_id);
        // `[0] EXPLICIT UTF8String`: the value decodes as UTF8String and nothing else.
        assert_eq!(other.value.tag(), der::Tag::Utf8String);
        assert_eq!(
            Utf8StringRef::try_from(&other.value).unwrap().as_str(),
            value
        );
    }
    let Some(GeneralName::DirectoryName(dn)) = names.last() else {
        panic!("the last SAN entry is the holder's directory name");
    };
    assert_eq!(attr_strings(dn, OID_CN), [h.name.as_str()]);
    check_chain_extensions(pki, CaKind::Sign, &cert);
}

#[test]
fn leaf_requests_that_break_the_profile_are_refused() {
    let pki = TestPki::shared().unwrap();
    let mut auth_with_name = leaf(pki, CaKind::Auth, "refuse/auth");
    auth_with_name.holder = Some(holder());
    assert!(matches!(
        pki.issue(&auth_with_name),
        Err(PkiError::InvalidLeaf(_))
    ));
    let mut auth_with_locality = leaf(pki, CaKind::Auth, "refuse/auth");
    auth_with_locality.locality = Some("Kiyose-shi".into());
    assert!(matches!(
        pki.issue(&auth_with_locality),
        Err(PkiError::InvalidLeaf(_))
    ));
    let mut sign_without_holder = leaf(pki, CaKind::Sign, "refuse/sign");
    sign_without_holder.holder = None;
    assert!(matches!(
        pki.issue(&sign_without_holder),
        Err(PkiError::InvalidLeaf(_))
    ));
    let mut backwards = leaf(pki, CaKind::Auth, "refuse/auth");
    std::mem::swap(&mut backwards.not_before, &mut backwards.not_after);
    assert!(matches!(
        pki.issue(&backwards),
        Err(PkiError::InvalidLeaf(_))
    ));
}

#[test]
fn crl_lists_revoked_serials_with_reasons_signed_by_the_right_root() {
    let pki = TestPki::shared().unwrap();
    let revoked = vec![
        Revocation {
            serial: 0x0123_4567_89AB_CDEF,
            date: utc(d(2026, 5, 10), 0, 0, 0).unwrap(),
            reason: RevocationReason::KeyCompromise,
        },
        Revocation {
            serial: 42,
            date: utc(d(2026, 4, 1), 0, 0, 0).unwrap(),
            reason: RevocationReason::AffiliationChanged,
        },
    ];
    let spec = CrlSpec::daily(utc(d(2026, 6, 1), 0, 0, 0).unwrap(), revoked).unwrap();
    let der = pki.crl_der(CaKind::Auth, &spec).unwrap();
    assert_eq!(
        der,
        pki.crl_der(CaKind::Auth, &spec).unwrap(),
        "deterministic"
    );
    let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der).unwrap();
    let root = parse(pki.root_der(CaKind::Auth));
    assert_eq!(&crl.tbs_cert_list.issuer, root.tbs_certificate().subject());
    let entries = crl.tbs_cert_list.revoked_certificates.as_ref().unwrap();
    let listed: Vec<(Vec<u8>, CrlReason)> = entries
        .iter()
        .map(|e| {
            let exts = e.crl_entry_extensions.as_ref().unwrap();
            assert_eq!(exts[0].extn_id, ObjectIdentifier::new_unwrap("2.5.29.21"));
            let reason = CrlReason::from_der(exts[0].extn_value.as_bytes()).unwrap();
            (e.serial_number.as_bytes().to_vec(), reason)
        })
        .collect();
    assert_eq!(
        listed,
        vec![
            (vec![42], CrlReason::AffiliationChanged),
            (
                0x0123_4567_89AB_CDEFu64.to_be_bytes().to_vec(),
                CrlReason::KeyCompromise
            ),
        ]
    );
    let tbs = crl.tbs_cert_list.to_der().unwrap();
    verify_signed(
        pki.root_key(CaKind::Auth).to_public_key(),
        &tbs,
        crl.signature.raw_bytes(),
    );
    // Not signed by the other root.
    let other = VerifyingKey::<Sha256>::new(pki.root_key(CaKind::Sign).to_public_key());
    assert!(
        other
            .verify(
                &tbs,
                &Signature::try_from(crl.signature.raw_bytes()).unwrap()
            )
            .is_err()
    );

    // OpenSSL reads it the same way.
    let dir = scratch_dir("crl");
    let crl_file = write(&dir, "auth.crl.pem", &pem("X509 CRL", &der));
    let root_file = write(&dir, "auth-root.pem", &pki.root_pem(CaKind::Auth).unwrap());
    let (ok, text) = openssl(&[
        "crl", "-in", &crl_file, "-noout", "-text", "-CAfile", &root_file,
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("verify OK"), "{text}");
    assert!(text.contains("Key Compromise"), "{text}");
    assert!(text.contains("Affiliation Changed"), "{text}");
    assert!(text.contains("0123456789ABCDEF"), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn openssl_verifies_leaves_and_honours_the_crl() {
    let pki = TestPki::shared().unwrap();
    let dir = scratch_dir("verify");
    let at = epoch(d(2026, 6, 1));
    for kind in CaKind::ALL {
        let label = format!("openssl/{kind:?}");
        let spec = leaf(pki, kind, &label);
        let der = pki.issue(&spec).unwrap();
        let root = write(
            &dir,
            &format!("{kind:?}-root.pem"),
            &pki.root_pem(kind).unwrap(),
        );
        let cert = write(
            &dir,
            &format!("{kind:?}-leaf.pem"),
            &pem("CERTIFICATE", &der),
        );
        let (ok, text) = openssl(&["verify", "-attime", &at, "-CAfile", &root, &cert]);
        assert!(ok && text.contains(": OK"), "{kind:?}: {text}");
        // The other root does not vouch for it.
        let other = if kind == CaKind::Auth {
            CaKind::Sign
        } else {
            CaKind::Auth
        };
        let other_root = write(&dir, "other-root.pem", &pki.root_pem(other).unwrap());
        let (ok, text) = openssl(&["verify", "-attime", &at, "-CAfile", &other_root, &cert]);
        assert!(!ok, "{kind:?} verified under the wrong root: {text}");
        // After notAfter it is expired.
        let late = epoch(d(2030, 2, 18));
        let (ok, text) = openssl(&["verify", "-attime", &late, "-CAfile", &root, &cert]);
        assert!(!ok && text.contains("expired"), "{kind:?}: {text}");

        // With a CRL listing it, revoked; with an empty CRL, fine.
        let now = utc(d(2026, 6, 1), 0, 0, 0).unwrap();
        let revoked = CrlSpec::daily(
            now,
            vec![Revocation {
                serial: spec.serial,
                date: now,
                reason: RevocationReason::KeyCompromise,
            }],
        )
        .unwrap();
        let crl = write(
            &dir,
            "revoked.crl.pem",
            &pem("X509 CRL", &pki.crl_der(kind, &revoked).unwrap()),
        );
        let (ok, text) = openssl(&[
            "verify",
            "-attime",
            &at,
            "-crl_check",
            "-CAfile",
            &root,
            "-CRLfile",
            &crl,
            &cert,
        ]);
        assert!(!ok && text.contains("revoked"), "{kind:?}: {text}");
        let empty = CrlSpec::daily(now, Vec::new()).unwrap();
        let crl = write(
            &dir,
            "empty.crl.pem",
            &pem("X509 CRL", &pki.crl_der(kind, &empty).unwrap()),
        );
        let (ok, text) = openssl(&[
            "verify",
            "-attime",
            &at,
            "-crl_check",
            "-CAfile",
            &root,
            "-CRLfile",
            &crl,
            &cert,
        ]);
        assert!(ok, "{kind:?}: {text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Every `O` attribute anywhere is `JPKI-TEST`, and the bare string `JPKI` never appears as a
/// directory string.
fn assert_test_organisation_only(der: &[u8]) {
    for (tag, len) in [(0x0C_u8, 4_u8), (0x13, 4)] {
        let needle = [tag, len, b'J', b'P', b'K', b'I'];
        assert!(
            !der.windows(needle.len()).any(|w| w == needle),
            "O=JPKI found"
        );
    }
    let mut found = 0;
    let o_oid = OID_O.as_bytes();
    // 06 03 55 04 0A followed by a string: every one must read JPKI-TEST.
    for (i, w) in der.windows(2 + o_oid.len()).enumerate() {
        if w[0] == 0x06 && usize::from(w[1]) == o_oid.len() && &w[2..] == o_oid {
            let rest = &der[i + 2 + o_oid.len()..];
            let len = usize::from(rest[1]);
            assert_eq!(&rest[2..2 + len], b"JPKI-TEST");
            found += 1;
        }
    }
    assert!(found > 0);
}

#[test]
fn every_organisation_is_jpki_test() {
    let pki = TestPki::shared().unwrap();
    for kind in CaKind::ALL {
        assert_test_organisation_only(pki.root_der(kind));
        assert_test_organisation_only(&pki.issue(&leaf(pki, kind, "org/check")).unwrap());
        let spec = CrlSpec::daily(utc(d(2026, 6, 1), 0, 0, 0).unwrap(), Vec::new()).unwrap();
        assert_test_organisation_only(&pki.crl_der(kind, &spec).unwrap());
    }
}
