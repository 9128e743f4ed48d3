//! CMS `SignedData` (RFC 5652), attached or detached, with signed attributes: content type,
//! message digest, signing time and ESS signing-certificate-v2 (RFC 5035).
//!
//! The signature is made by a [`DigestInfoSigner`] over the DER of the signed attributes, so a
//! card key signs once per document and the content itself never goes to the card.

use std::time::SystemTime;

use cms::{
    cert::{CertificateChoices, IssuerAndSerialNumber},
    content_info::{CmsVersion, ContentInfo},
    signed_data::{
        CertificateSet, EncapsulatedContentInfo, SignedAttributes, SignedData, SignerIdentifier,
        SignerInfo, SignerInfos,
    },
};
use der::{
    Decode, Encode, Sequence,
    asn1::{Any, OctetString, SetOfVec},
    oid::ObjectIdentifier,
};
use mynacard_cert::JpkiCertificate;
use x509_cert::{
    attr::Attribute, ext::pkix::name::GeneralName, serial_number::SerialNumber,
    spki::AlgorithmIdentifierOwned, time::Time,
};

use crate::{
    digest_info::DigestInfo,
    hash::HashAlgorithm,
    signer::{DigestInfoSigner, SignerError},
    verify::{VerifyError, verify_pkcs1v15},
};

/// OIDs used here.
pub mod oid {
    use der::oid::ObjectIdentifier;

    /// `id-data`.
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    /// `id-signedData`.
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// `id-contentType`.
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// `id-messageDigest`.
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// `id-signingTime`.
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    /// `id-aa-signingCertificateV2`.
    pub const SIGNING_CERTIFICATE_V2: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// `rsaEncryption`.
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
}

/// `ESSCertIDv2` (RFC 5035). `hashAlgorithm` is absent when SHA-256, its DEFAULT.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct EssCertIdV2 {
    hash_algorithm: Option<AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    issuer_serial: Option<IssuerSerial>,
}

/// `IssuerSerial ::= SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct IssuerSerial {
    issuer: Vec<GeneralName>,
    serial_number: SerialNumber,
}

/// `SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies … OPTIONAL }`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    policies: Option<Vec<Any>>,
}

/// Building or checking a CMS message failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CmsError {
    /// Encoding or decoding failed.
    #[error("malformed CMS")]
    Der(#[source] der::Error),
    /// The outer content type is not `signedData`.
    #[error("not a CMS SignedData message (content type {0})")]
    NotSignedData(ObjectIdentifier),
    /// There is no SignerInfo.
    #[error("the message has no signer")]
    NoSigners,
    /// The message is detached and no content was given.
    #[error("the content is detached and was not supplied")]
    NoContent,
    /// Both an attached content and a different detached one were given.
    #[error("the supplied content differs from the attached content")]
    ContentMismatch,
    /// The signer's certificate is neither in the message nor among the supplied ones.
    #[error("signer certificate not found")]
    SignerCertificateNotFound,
    /// A certificate in the message could not be parsed.
    #[error("unusable certificate")]
    Certificate(#[source] mynacard_cert::ParseError),
    /// The digest algorithm is not SHA-256/384/512.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedDigest(ObjectIdentifier),
    /// The signature algorithm is not RSA PKCS#1 v1.5.
    #[error("unsupported signature algorithm {0}")]
    UnsupportedSignatureAlgorithm(ObjectIdentifier),
    /// Signed attributes are required (and always written by this crate).
    #[error("signed attributes are missing")]
    NoSignedAttributes,
    /// A required signed attribute is missing or malformed.
    #[error("signed attribute {0} is missing or malformed")]
    Attribute(&'static str),
    /// The content-type attribute differs from the encapsulated content type.
    #[error("content-type attribute does not match the content")]
    ContentTypeMismatch,
    /// The message-digest attribute is not the digest of the content.
    #[error("message digest does not match the content")]
    MessageDigestMismatch,
    /// The signing-certificate-v2 attribute names another certificate.
    #[error("signing-certificate-v2 attribute does not match the signer certificate")]
    SigningCertificateMismatch,
    /// The signature does not verify.
    #[error("CMS signature does not verify")]
    Signature(#[source] VerifyError),
    /// The signer failed.
    #[error("signer failed")]
    Signer(#[source] SignerError),
}

impl From<der::Error> for CmsError {
    fn from(e: der::Error) -> Self {
        CmsError::Der(e)
    }
}

/// How to build the message.
#[derive(Debug, Clone)]
pub struct CmsOptions {
    /// Leave the content out (a `.p7s` next to the file).
    pub detached: bool,
    /// Digest for the content and the signed attributes.
    pub hash: HashAlgorithm,
    /// The signing-time attribute; `None` leaves it out.
    pub signing_time: Option<SystemTime>,
    /// More certificates to include after the signer's (e.g. its CA certificate).
    pub extra_certificates: Vec<JpkiCertificate>,
}

impl Default for CmsOptions {
    /// Attached, SHA-256, signing time now, signer certificate only.
    fn default() -> Self {
        CmsOptions {
            detached: false,
            hash: HashAlgorithm::Sha256,
            signing_time: Some(SystemTime::now()),
            extra_certificates: Vec::new(),
        }
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, CmsError> {
    let mut values = SetOfVec::new();
    values.insert(value)?;
    Ok(Attribute { oid, values })
}

fn any_of(value: &impl Encode) -> Result<Any, CmsError> {
    Ok(Any::from_der(&value.to_der()?)?)
}

fn signing_certificate_v2(
    cert: &JpkiCertificate,
    hash: HashAlgorithm,
) -> Result<SigningCertificateV2, CmsError> {
    Ok(SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: (hash != HashAlgorithm::Sha256).then(|| hash.algorithm_identifier()),
            cert_hash: OctetString::new(hash.digest(cert.der()))?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(cert.issuer().clone())],
                serial_number: cert.x509().tbs_certificate().serial_number().clone(),
            }),
        }],
        policies: None,
    })
}

/// Signs `content` into a CMS `SignedData` (DER).
pub async fn sign_cms<S: DigestInfoSigner + ?Sized>(
    content: &[u8],
    signer: &S,
    options: &CmsOptions,
) -> Result<Vec<u8>, CmsError> {
    let digest = options.hash.digest(content);
    let attached = (!options.detached).then_some(content);
    build(attached, &digest, signer, options).await
}

/// Signs a detached content given only its digest (for contents too large to hold in memory).
/// `options.detached` is ignored.
pub async fn sign_cms_detached_digest<S: DigestInfoSigner + ?Sized>(
    content_digest: &[u8],
    signer: &S,
    options: &CmsOptions,
) -> Result<Vec<u8>, CmsError> {
    if content_digest.len() != options.hash.output_len() {
        return Err(CmsError::MessageDigestMismatch);
    }
    build(None, content_digest, signer, options).await
}

async fn build<S: DigestInfoSigner + ?Sized>(
    attached: Option<&[u8]>,
    content_digest: &[u8],
    signer: &S,
    options: &CmsOptions,
) -> Result<Vec<u8>, CmsError> {
    let cert = signer.certificate();
    let hash = options.hash;

    let mut attrs = vec![
        attribute(oid::CONTENT_TYPE, any_of(&oid::DATA)?)?,
        attribute(
            oid::MESSAGE_DIGEST,
            any_of(&OctetString::new(content_digest.to_vec())?)?,
        )?,
        attribute(
            oid::SIGNING_CERTIFICATE_V2,
            any_of(&signing_certificate_v2(cert, hash)?)?,
        )?,
    ];
    if let Some(t) = options.signing_time {
        let dt = der::DateTime::from_system_time(t)?;
        attrs.push(attribute(oid::SIGNING_TIME, any_of(&Time::from(dt))?)?);
    }
    // SET OF sorts into DER order; the signature covers exactly this encoding.
    let signed_attrs: SignedAttributes = SetOfVec::try_from(attrs)?;
    let to_sign = signed_attrs.to_der()?;
    let signature = signer
        .sign_digest_info(&DigestInfo::of(hash, &to_sign))
        .await
        .map_err(CmsError::Signer)?;

    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: cert.issuer().clone(),
            serial_number: cert.x509().tbs_certificate().serial_number().clone(),
        }),
        digest_alg: hash.algorithm_identifier(),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: AlgorithmIdentifierOwned {
            oid: oid::RSA_ENCRYPTION,
            parameters: Some(Any::null()),
        },
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };

    let mut certs = SetOfVec::new();
    for c in std::iter::once(cert).chain(options.extra_certificates.iter()) {
        certs.insert(CertificateChoices::Certificate(c.x509().clone()))?;
    }
    let mut digest_algorithms = SetOfVec::new();
    digest_algorithms.insert(hash.algorithm_identifier())?;
    let mut signer_infos = SetOfVec::new();
    signer_infos.insert(signer_info)?;

    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oid::DATA,
            econtent: match attached {
                Some(content) => Some(any_of(&OctetString::new(content.to_vec())?)?),
                None => None,
            },
        },
        certificates: Some(CertificateSet(certs)),
        crls: None,
        signer_infos: SignerInfos(signer_infos),
    };
    let info = ContentInfo {
        content_type: oid::SIGNED_DATA,
        content: any_of(&signed_data)?,
    };
    Ok(info.to_der()?)
}

/// Whether `bytes` are a DER CMS `ContentInfo` holding `signedData` (as opposed to, say, a raw
/// signature).
pub fn is_signed_data(bytes: &[u8]) -> bool {
    ContentInfo::from_der(bytes).is_ok_and(|info| info.content_type == oid::SIGNED_DATA)
}

/// What a verified CMS message says.
#[derive(Debug, Clone)]
pub struct CmsVerified {
    /// The signer's certificate (its trust is not checked here; see `mynacard_cert::verify`).
    pub signer: JpkiCertificate,
    /// The digest algorithm.
    pub hash: HashAlgorithm,
    /// The signing-time attribute, if present (the signer's claim, not a timestamp).
    pub signing_time: Option<SystemTime>,
    /// Whether a signing-certificate-v2 attribute was present (and matched).
    pub signing_certificate_v2: bool,
    /// The attached content, if the message was not detached.
    pub attached_content: Option<Vec<u8>>,
}

/// Verifies a CMS `SignedData` (DER): every SignerInfo's signed attributes (content type, message
/// digest, signing-certificate-v2 when present) and its RSA PKCS#1 v1.5 signature.
///
/// `detached_content` supplies the content of a detached message. The signer certificate is taken
/// from the message or from `certificates`. Returns the first signer's details.
pub fn verify_cms(
    message: &[u8],
    detached_content: Option<&[u8]>,
    certificates: &[JpkiCertificate],
) -> Result<CmsVerified, CmsError> {
    let info = ContentInfo::from_der(message)?;
    if info.content_type != oid::SIGNED_DATA {
        return Err(CmsError::NotSignedData(info.content_type));
    }
    let sd: SignedData = info.content.decode_as()?;

    let attached = match &sd.encap_content_info.econtent {
        Some(any) => Some(any.decode_as::<OctetString>()?.as_bytes().to_vec()),
        None => None,
    };
    let content: &[u8] = match (&attached, detached_content) {
        (Some(a), Some(d)) if a.as_slice() != d => return Err(CmsError::ContentMismatch),
        (Some(a), _) => a,
        (None, Some(d)) => d,
        (None, None) => return Err(CmsError::NoContent),
    };

    let mut pool: Vec<JpkiCertificate> = certificates.to_vec();
    for choice in sd.certificates.iter().flat_map(|set| set.0.iter()) {
        if let CertificateChoices::Certificate(c) = choice {
            pool.push(JpkiCertificate::from_der(&c.to_der()?).map_err(CmsError::Certificate)?);
        }
    }

    let mut first = None;
    for si in sd.signer_infos.0.iter() {
        let verified = verify_signer(si, &sd.encap_content_info.econtent_type, content, &pool)?;
        first.get_or_insert(verified);
    }
    let (signer, hash, signing_time, signing_certificate_v2) = first.ok_or(CmsError::NoSigners)?;
    Ok(CmsVerified {
        signer,
        hash,
        signing_time,
        signing_certificate_v2,
        attached_content: attached,
    })
}

type SignerDetails = (JpkiCertificate, HashAlgorithm, Option<SystemTime>, bool);

fn verify_signer(
    si: &SignerInfo,
    econtent_type: &ObjectIdentifier,
    content: &[u8],
    pool: &[JpkiCertificate],
) -> Result<SignerDetails, CmsError> {
    let hash = HashAlgorithm::from_oid(&si.digest_alg.oid)
        .ok_or(CmsError::UnsupportedDigest(si.digest_alg.oid))?;
    let signer = find_signer(&si.sid, pool)?;
    match si.signature_algorithm.oid {
        oid::RSA_ENCRYPTION => {}
        o if o == hash.rsa_signature_oid() => {}
        o => return Err(CmsError::UnsupportedSignatureAlgorithm(o)),
    }
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or(CmsError::NoSignedAttributes)?;
    let single = |oid: ObjectIdentifier| {
        let mut found = attrs.iter().filter(|a| a.oid == oid);
        match (found.next(), found.next()) {
            (Some(a), None) if a.values.len() == 1 => a.values.iter().next(),
            _ => None,
        }
    };

    let content_type = single(oid::CONTENT_TYPE).ok_or(CmsError::Attribute("content-type"))?;
    let content_type: ObjectIdentifier = content_type
        .decode_as()
        .map_err(|_| CmsError::Attribute("content-type"))?;
    if content_type != *econtent_type {
        return Err(CmsError::ContentTypeMismatch);
    }

    let digest = single(oid::MESSAGE_DIGEST).ok_or(CmsError::Attribute("message-digest"))?;
    let digest: OctetString = digest
        .decode_as()
        .map_err(|_| CmsError::Attribute("message-digest"))?;
    if digest.as_bytes() != hash.digest(content).as_slice() {
        return Err(CmsError::MessageDigestMismatch);
    }

    let signing_time = match single(oid::SIGNING_TIME) {
        Some(v) => Some(
            v.decode_as::<Time>()
                .map_err(|_| CmsError::Attribute("signing-time"))?
                .to_system_time(),
        ),
        None => None,
    };

    let scv2 = single(oid::SIGNING_CERTIFICATE_V2);
    if let Some(v) = scv2 {
        let scv2: SigningCertificateV2 = v
            .decode_as()
            .map_err(|_| CmsError::Attribute("signing-certificate-v2"))?;
        let first = scv2
            .certs
            .first()
            .ok_or(CmsError::Attribute("signing-certificate-v2"))?;
        let cert_hash_alg = match &first.hash_algorithm {
            None => HashAlgorithm::Sha256,
            Some(a) => HashAlgorithm::from_oid(&a.oid).ok_or(CmsError::UnsupportedDigest(a.oid))?,
        };
        if first.cert_hash.as_bytes() != cert_hash_alg.digest(signer.der()).as_slice() {
            return Err(CmsError::SigningCertificateMismatch);
        }
    }

    let public = signer.rsa_public_key().map_err(CmsError::Certificate)?;
    let signed = attrs.to_der()?;
    verify_pkcs1v15(
        &public,
        &DigestInfo::of(hash, &signed),
        si.signature.as_bytes(),
    )
    .map_err(CmsError::Signature)?;
    Ok((signer, hash, signing_time, scv2.is_some()))
}

fn find_signer(
    sid: &SignerIdentifier,
    pool: &[JpkiCertificate],
) -> Result<JpkiCertificate, CmsError> {
    let found = match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => pool
            .iter()
            .find(|c| c.issuer() == &isn.issuer && c.serial() == isn.serial_number.as_bytes()),
        SignerIdentifier::SubjectKeyIdentifier(ski) => pool.iter().find(|c| {
            c.x509()
                .tbs_certificate()
                .get_extension::<x509_cert::ext::pkix::SubjectKeyIdentifier>()
                .ok()
                .flatten()
                .is_some_and(|(_, s)| s == *ski)
        }),
    };
    found.cloned().ok_or(CmsError::SignerCertificateNotFound)
}
