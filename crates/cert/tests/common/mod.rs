//! Building certificates and CRLs for tests: any name, any key, any extension.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::{str::FromStr, sync::OnceLock};

use der::{
    Encode, Sequence,
    asn1::{Any, BitString, OctetString},
    oid::ObjectIdentifier,
};
use rsa::{
    PrivateKey,
    pkcs1v15::SigningKey,
    pkcs8::EncodePublicKey,
    signature::{SignatureEncoding, Signer},
};
use sha2::Sha256;
use x509_cert::{
    certificate::Version,
    crl::{CertificateList, RevokedCert, TbsCertList},
    ext::{
        Extension,
        pkix::{
            BasicConstraints, CertificatePolicies, KeyUsage, KeyUsages, SubjectAltName,
            certpolicy::PolicyInformation,
            name::{GeneralName, OtherName},
        },
    },
    name::Name,
    serial_number::SerialNumber,
    spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned},
    time::{Time, Validity},
};

pub const AUTH_OU: &str = "JPKI for user authentication";
pub const SIGN_OU: &str = "JPKI for digital signature";
const AGENCY_OU: &str = "Japan Agency for Local Authority Information Systems";

/// RSA-2048 keys, generated once per test binary.
pub fn key(index: usize) -> &'static PrivateKey {
    static KEYS: OnceLock<Vec<PrivateKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..4)
            .map(|_| PrivateKey::new(&mut getrandom::SysRng, 2048).expect("key generation"))
            .collect()
    });
    &keys[index]
}

pub fn spki(key: &PrivateKey) -> SubjectPublicKeyInfoOwned {
    let der = key.to_public_key().to_public_key_der().unwrap();
    der::Decode::from_der(der.as_bytes()).unwrap()
}

pub fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
        parameters: Some(Any::null()),
    }
}

/// A JPKI-style CA name: `C=JP, O=<org>, OU=<purpose>, OU=<agency>`.
pub fn ca_name(org: &str, purpose_ou: &str) -> Name {
    // RFC 4514 strings list the last RDN first.
    Name::from_str(&format!("OU={AGENCY_OU},OU={purpose_ou},O={org},C=JP")).unwrap()
}

pub fn name(rfc4514: &str) -> Name {
    Name::from_str(rfc4514).unwrap()
}

pub fn time(rfc3339: &str) -> Time {
    Time::from(der::DateTime::from_str(rfc3339).unwrap())
}

pub fn system_time(rfc3339: &str) -> std::time::SystemTime {
    der::DateTime::from_str(rfc3339).unwrap().to_system_time()
}

fn ext(oid: ObjectIdentifier, critical: bool, value: impl Encode) -> Extension {
    Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value.to_der().unwrap()).unwrap(),
    }
}

pub fn key_usage(bits: &[KeyUsages]) -> Extension {
    let mut usage = KeyUsage(bits[0].into());
    for b in &bits[1..] {
        usage.0 |= *b;
    }
    ext(ObjectIdentifier::new_unwrap("2.5.29.15"), true, usage)
}

pub fn basic_constraints(ca: bool) -> Extension {
    ext(
        ObjectIdentifier::new_unwrap("2.5.29.19"),
        true,
        BasicConstraints {
            ca,
            path_len_constraint: None,
        },
    )
}

pub fn policy(oid: &str) -> Extension {
    ext(
        ObjectIdentifier::new_unwrap("2.5.29.32"),
        false,
        CertificatePolicies(vec![PolicyInformation {
            policy_identifier: ObjectIdentifier::new_unwrap(oid),
            policy_qualifiers: None,
        }]),
    )
}

pub fn raw_extension(oid: &str, critical: bool, value_der: Vec<u8>) -> Extension {
    Extension {
        extn_id: ObjectIdentifier::new_unwrap(oid),
        critical,
        extn_value: OctetString::new(value_der).unwrap(),
    }
}

/// A UTF8String otherName.
pub fn other_name(oid: &str, text: &str) -> GeneralName {
    other_name_any(
        oid,
        Any::new(der::Tag::Utf8String, text.as_bytes().to_vec()).unwrap(),
    )
}

pub fn other_name_any(oid: &str, value: Any) -> GeneralName {
    GeneralName::OtherName(OtherName {
        type_id: ObjectIdentifier::new_unwrap(oid),
        value,
    })
}

pub fn san(names: Vec<GeneralName>) -> Extension {
    ext(
        ObjectIdentifier::new_unwrap("2.5.29.17"),
        false,
        SubjectAltName(names),
    )
}

/// The six personal-data entries with the given values; the substitute-character positions
/// (`.2`, `.6`) say that no character was substituted.
pub fn personal_san(
    name: &str,
    sex: &str,
    birth: &str,
    address: &str,
    extra: Vec<GeneralName>,
) -> Extension {
    let none_substituted = |s: &str| "0".repeat(s.chars().count());
    let mut names = vec![
        other_name("1.2.392.200149.8.5.5.1", name),
        other_name("1.2.392.200149.8.5.5.2", &none_substituted(name)),
        other_name("1.2.392.200149.8.5.5.3", sex),
        other_name("1.2.392.200149.8.5.5.4", birth),
        other_name("1.2.392.200149.8.5.5.5", address),
        other_name("1.2.392.200149.8.5.5.6", &none_substituted(address)),
    ];
    names.extend(extra);
    san(names)
}

#[derive(Sequence)]
struct Tbs {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: Version,
    serial: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

#[derive(Sequence)]
struct SignedCert {
    tbs: Tbs,
    algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

pub struct CertSpec<'a> {
    pub serial: u64,
    pub issuer: Name,
    pub subject: Name,
    pub not_before: &'a str,
    pub not_after: &'a str,
    pub subject_key: &'a PrivateKey,
    pub signer: &'a PrivateKey,
    pub extensions: Vec<Extension>,
}

fn sign(signer: &PrivateKey, tbs: &[u8]) -> Vec<u8> {
    SigningKey::<Sha256>::new(signer.clone()).sign(tbs).to_vec()
}

pub fn build_cert(spec: CertSpec<'_>) -> Vec<u8> {
    let tbs = Tbs {
        version: Version::V3,
        serial: SerialNumber::new(&spec.serial.to_be_bytes()).unwrap(),
        signature: sha256_with_rsa(),
        issuer: spec.issuer,
        validity: Validity::new(time(spec.not_before), time(spec.not_after)),
        subject: spec.subject,
        spki: spki(spec.subject_key),
        extensions: (!spec.extensions.is_empty()).then_some(spec.extensions),
    };
    let tbs_der = tbs.to_der().unwrap();
    let signature = sign(spec.signer, &tbs_der);
    SignedCert {
        tbs,
        algorithm: sha256_with_rsa(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}

/// A self-signed JPKI-style root.
pub fn root(org: &str, purpose_ou: &str, key: &PrivateKey, serial: u64) -> Vec<u8> {
    build_cert(CertSpec {
        serial,
        issuer: ca_name(org, purpose_ou),
        subject: ca_name(org, purpose_ou),
        not_before: "2019-01-01T00:00:00Z",
        not_after: "2035-12-31T23:59:59Z",
        subject_key: key,
        signer: key,
        extensions: vec![
            key_usage(&[KeyUsages::KeyCertSign, KeyUsages::CRLSign]),
            basic_constraints(true),
        ],
    })
}

/// An authentication leaf: `C=JP, CN=<id>`, digitalSignature, auth policy.
pub fn auth_leaf(
    issuer: Name,
    signer: &PrivateKey,
    serial: u64,
    not_before: &str,
    not_after: &str,
) -> Vec<u8> {
    build_cert(CertSpec {
        serial,
        issuer,
        subject: name("CN=TESTAUTH0000000000000001,C=JP"),
        not_before,
        not_after,
        subject_key: key(3),
        signer,
        extensions: vec![
            key_usage(&[KeyUsages::DigitalSignature]),
            policy("1.2.392.200149.8.5.1.3.30"),
        ],
    })
}

/// A signing leaf with personal data.
pub fn sign_leaf(issuer: Name, signer: &PrivateKey, serial: u64) -> Vec<u8> {
    build_cert(CertSpec {
        serial,
        issuer,
        subject: name("CN=TESTSIGN0000000000000001,L=Chiyoda-ku,ST=Tokyo-to,C=JP"),
        not_before: "2024-01-01T00:00:00Z",
        not_after: "2029-01-01T00:00:00Z",
        subject_key: key(3),
        signer,
        extensions: vec![
            key_usage(&[KeyUsages::DigitalSignature, KeyUsages::NonRepudiation]),
            policy("1.2.392.200149.8.5.1.1.20"),
            personal_san(
                "試験　花子",
                "2",
                "319800101",
                "東京都千代田区永田町一丁目",
                vec![],
            ),
        ],
    })
}

pub struct Revoked<'a> {
    pub serial: u64,
    pub date: &'a str,
    pub reason: Option<u8>,
}

pub fn build_crl(
    issuer: Name,
    signer: &PrivateKey,
    this_update: &str,
    next_update: Option<&str>,
    revoked: &[Revoked<'_>],
) -> Vec<u8> {
    let entries = revoked
        .iter()
        .map(|r| RevokedCert {
            serial_number: SerialNumber::<x509_cert::certificate::Rfc5280>::new(
                &r.serial.to_be_bytes(),
            )
            .unwrap(),
            revocation_date: time(r.date),
            crl_entry_extensions: r
                .reason
                .map(|code| vec![raw_extension("2.5.29.21", false, vec![0x0A, 0x01, code])]),
        })
        .collect::<Vec<_>>();
    let tbs = TbsCertList {
        version: Version::V2,
        signature: sha256_with_rsa(),
        issuer,
        this_update: time(this_update),
        next_update: next_update.map(time),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: None,
    };
    let signature = sign(signer, &tbs.to_der().unwrap());
    CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: sha256_with_rsa(),
        signature: BitString::from_bytes(&signature).unwrap(),
    }
    .to_der()
    .unwrap()
}
