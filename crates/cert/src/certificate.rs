//! A parsed JPKI certificate with its kind, hierarchy and personal data worked out once.

use core::fmt;
use std::time::SystemTime;

use der::{Decode, Encode};
use rsa::PublicKey;
use sha2::{Digest, Sha256};
use x509_cert::{
    Certificate,
    ext::pkix::{BasicConstraints, CertificatePolicies, KeyUsage, KeyUsages, SubjectAltName},
    name::Name,
    spki::SubjectPublicKeyInfoOwned,
};

use crate::{
    error::ParseError,
    kind::{self, CertKind, Hierarchy, KindEvidence, Purpose},
    names,
    personal::PersonalData,
    sigalg,
};

/// The key usage bits of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[allow(missing_docs)] // The field names are RFC 5280's bit names.
pub struct KeyUsageFlags {
    pub digital_signature: bool,
    pub non_repudiation: bool,
    pub key_encipherment: bool,
    pub data_encipherment: bool,
    pub key_agreement: bool,
    pub key_cert_sign: bool,
    pub crl_sign: bool,
    pub encipher_only: bool,
    pub decipher_only: bool,
}

impl KeyUsageFlags {
    fn from_x509(ku: &KeyUsage) -> KeyUsageFlags {
        let has = |u| ku.0.contains(u);
        KeyUsageFlags {
            digital_signature: has(KeyUsages::DigitalSignature),
            non_repudiation: has(KeyUsages::NonRepudiation),
            key_encipherment: has(KeyUsages::KeyEncipherment),
            data_encipherment: has(KeyUsages::DataEncipherment),
            key_agreement: has(KeyUsages::KeyAgreement),
            key_cert_sign: has(KeyUsages::KeyCertSign),
            crl_sign: has(KeyUsages::CRLSign),
            encipher_only: has(KeyUsages::EncipherOnly),
            decipher_only: has(KeyUsages::DecipherOnly),
        }
    }

    /// The names of the set bits, in RFC 5280 order (`digitalSignature`, `nonRepudiation`, …).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.digital_signature, "digitalSignature"),
            (self.non_repudiation, "nonRepudiation"),
            (self.key_encipherment, "keyEncipherment"),
            (self.data_encipherment, "dataEncipherment"),
            (self.key_agreement, "keyAgreement"),
            (self.key_cert_sign, "keyCertSign"),
            (self.crl_sign, "cRLSign"),
            (self.encipher_only, "encipherOnly"),
            (self.decipher_only, "decipherOnly"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    }
}

/// A parsed certificate from a My Number Card (or a JPKI CA).
///
/// `Debug` shows kind, hierarchy, serial and validity only: a signing certificate's subject and
/// subjectAltName carry personal data.
#[derive(Clone)]
pub struct JpkiCertificate {
    der: Vec<u8>,
    cert: Certificate,
    kind: CertKind,
    evidence: KindEvidence,
    hierarchy: Hierarchy,
    key_usage: Option<KeyUsageFlags>,
    basic_constraints: Option<BasicConstraints>,
    personal: Option<PersonalData>,
}

impl JpkiCertificate {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<JpkiCertificate, ParseError> {
        let cert = Certificate::from_der(der).map_err(ParseError::Der)?;
        JpkiCertificate::analyse(der.to_vec(), cert)
    }

    /// Parses the first `-----BEGIN CERTIFICATE-----` block of a PEM text; text around it is
    /// ignored.
    pub fn from_pem(pem: &[u8]) -> Result<JpkiCertificate, ParseError> {
        let der = pem_block(pem, "CERTIFICATE")?;
        JpkiCertificate::from_der(&der)
    }

    /// Parses DER, or PEM when the bytes do not start like DER.
    pub fn from_der_or_pem(bytes: &[u8]) -> Result<JpkiCertificate, ParseError> {
        if bytes.first() == Some(&0x30) {
            JpkiCertificate::from_der(bytes)
        } else {
            JpkiCertificate::from_pem(bytes)
        }
    }

    fn analyse(der: Vec<u8>, cert: Certificate) -> Result<JpkiCertificate, ParseError> {
        let tbs = cert.tbs_certificate();
        let ext_err = |extension| move |source| ParseError::Extension { extension, source };

        let key_usage = tbs
            .get_extension::<KeyUsage>()
            .map_err(ext_err("keyUsage"))?
            .map(|(_, ku)| KeyUsageFlags::from_x509(&ku));
        let basic_constraints = tbs
            .get_extension::<BasicConstraints>()
            .map_err(ext_err("basicConstraints"))?
            .map(|(_, bc)| bc);
        let policies = tbs
            .get_extension::<CertificatePolicies>()
            .map_err(ext_err("certificatePolicies"))?
            .map(|(_, p)| p);
        let san = tbs
            .get_extension::<SubjectAltName>()
            .map_err(ext_err("subjectAltName"))?
            .map(|(_, san)| san);

        let is_ca = basic_constraints.as_ref().is_some_and(|bc| bc.ca);
        let personal = san
            .as_ref()
            .and_then(|san| PersonalData::from_general_names(&san.0));

        let issuer_ous = names::values_of(tbs.issuer(), names::ORGANIZATIONAL_UNIT);
        let evidence = KindEvidence {
            issuer: kind::purpose_from_ous(issuer_ous.iter().map(String::as_str)),
            policy: policies.as_ref().and_then(|p| {
                let mut found =
                    p.0.iter()
                        .filter_map(|pi| kind::purpose_from_policy(&pi.policy_identifier));
                let first = found.next()?;
                found.all(|p| p == first).then_some(first)
            }),
            key_usage: match key_usage {
                Some(ku) if !is_ca && ku.non_repudiation => Some(Purpose::Signing),
                Some(ku) if !is_ca && ku.digital_signature => Some(Purpose::Authentication),
                _ => None,
            },
            personal_data: personal.as_ref().map(|_| Purpose::Signing),
        };
        let kind = match (evidence.agreed(), is_ca) {
            (Some(Purpose::Authentication), false) => CertKind::Authentication,
            (Some(Purpose::Signing), false) => CertKind::Signing,
            (Some(Purpose::Authentication), true) => CertKind::AuthenticationCa,
            (Some(Purpose::Signing), true) => CertKind::SigningCa,
            (None, _) => CertKind::Unknown,
        };
        let hierarchy = Hierarchy::from_organization(names::organization(tbs.issuer()).as_deref());

        Ok(JpkiCertificate {
            der,
            cert,
            kind,
            evidence,
            hierarchy,
            key_usage,
            basic_constraints,
            personal,
        })
    }

    /// The certificate as it was parsed (DER).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The underlying X.509 structure.
    pub fn x509(&self) -> &Certificate {
        &self.cert
    }

    /// The kind worked out from the evidence.
    pub fn kind(&self) -> CertKind {
        self.kind
    }

    /// The signals the kind was worked out from.
    pub fn kind_evidence(&self) -> KindEvidence {
        self.evidence
    }

    /// The hierarchy named by the issuer's `O=` (a claim; only [`crate::verify_chain`] proves it).
    pub fn hierarchy(&self) -> Hierarchy {
        self.hierarchy
    }

    /// Serial number bytes, big-endian, leading zeros stripped.
    pub fn serial(&self) -> &[u8] {
        self.cert.tbs_certificate().serial_number().as_bytes()
    }

    /// Serial number as upper-case hex (`0133C349`).
    pub fn serial_hex(&self) -> String {
        self.serial().iter().map(|b| format!("{b:02X}")).collect()
    }

    /// Issuer name.
    pub fn issuer(&self) -> &Name {
        self.cert.tbs_certificate().issuer()
    }

    /// Subject name.
    pub fn subject(&self) -> &Name {
        self.cert.tbs_certificate().subject()
    }

    /// Issuer as text (see [`crate::format_name`]).
    pub fn issuer_text(&self) -> String {
        names::format_name(self.issuer())
    }

    /// Subject as text (see [`crate::format_name`]). For a signing certificate this includes the
    /// holder's locality.
    pub fn subject_text(&self) -> String {
        names::format_name(self.subject())
    }

    /// Start of validity.
    pub fn not_before(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_before
            .to_system_time()
    }

    /// End of validity (inclusive).
    pub fn not_after(&self) -> SystemTime {
        self.cert
            .tbs_certificate()
            .validity()
            .not_after
            .to_system_time()
    }

    /// Whether `at` lies within the validity period (both ends inclusive).
    pub fn is_valid_at(&self, at: SystemTime) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }

    /// Key usage bits, if the extension is present.
    pub fn key_usage(&self) -> Option<KeyUsageFlags> {
        self.key_usage
    }

    /// Whether basic constraints mark this a CA certificate.
    pub fn is_ca(&self) -> bool {
        self.basic_constraints.as_ref().is_some_and(|bc| bc.ca)
    }

    /// Whether issuer and subject names are the same (a root candidate).
    pub fn is_self_issued(&self) -> bool {
        self.issuer() == self.subject()
    }

    /// The signing certificate's personal data, if the subjectAltName carries any.
    pub fn personal_data(&self) -> Option<&PersonalData> {
        self.personal.as_ref()
    }

    /// SHA-256 of the DER.
    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// The subject public key info.
    pub fn subject_public_key_info(&self) -> &SubjectPublicKeyInfoOwned {
        self.cert.tbs_certificate().subject_public_key_info()
    }

    /// The subject's RSA public key.
    pub fn rsa_public_key(&self) -> Result<PublicKey, ParseError> {
        sigalg::rsa_public_key(self.subject_public_key_info()).map_err(ParseError::PublicKey)
    }

    /// The DER of the issuer name, as needed for CMS `IssuerAndSerialNumber`.
    pub fn issuer_der(&self) -> Result<Vec<u8>, der::Error> {
        self.issuer().to_der()
    }
}

impl fmt::Debug for JpkiCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JpkiCertificate")
            .field("kind", &self.kind)
            .field("hierarchy", &self.hierarchy)
            .field("serial", &self.serial_hex())
            .field("not_before", &crate::format_rfc3339(self.not_before()))
            .field("not_after", &crate::format_rfc3339(self.not_after()))
            .finish_non_exhaustive()
    }
}

impl PartialEq for JpkiCertificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for JpkiCertificate {}

/// Extracts the DER of the first PEM block with `label`, ignoring text before and after it.
pub(crate) fn pem_block(text: &[u8], label: &str) -> Result<Vec<u8>, ParseError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let not_found = || ParseError::Pem(der::Error::from(der::ErrorKind::Failed));
    let start = find(text, begin.as_bytes()).ok_or_else(not_found)?;
    let stop = find(&text[start..], end.as_bytes()).ok_or_else(not_found)? + start + end.len();
    let (found_label, der) =
        der::pem::decode_vec(&text[start..stop]).map_err(|e| ParseError::Pem(e.into()))?;
    if found_label != label {
        return Err(not_found());
    }
    Ok(der)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
