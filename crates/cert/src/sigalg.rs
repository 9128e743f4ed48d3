//! Verifying the RSA signature on a certificate or CRL.

use der::{
    Decode, Encode, Sequence,
    asn1::{AnyRef, BitStringRef},
    oid::ObjectIdentifier,
};
use rsa::{Pkcs1v15Sign, PublicKey, pkcs8::DecodePublicKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

const SHA256_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
const SHA384_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
const SHA512_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");

/// A signature on a certificate or CRL did not check out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// Only sha256/384/512WithRSAEncryption are accepted (JPKI uses sha256WithRSAEncryption).
    #[error("unsupported signature algorithm {0}")]
    UnsupportedAlgorithm(ObjectIdentifier),
    /// The signed structure could not be split into its parts.
    #[error("malformed signed structure")]
    Malformed(#[source] der::Error),
    /// The signer's public key is not a usable RSA key.
    #[error("issuer public key is not a usable RSA key")]
    PublicKey(#[source] rsa::pkcs8::spki::Error),
    /// The signature does not verify with the key.
    #[error("signature does not verify")]
    Invalid(#[source] rsa::Error),
}

/// `SEQUENCE { tbs, signatureAlgorithm, signatureValue }`, with the signed part kept as found.
#[derive(Sequence)]
struct RawSigned<'a> {
    tbs: AnyRef<'a>,
    algorithm: AnyRef<'a>,
    signature: BitStringRef<'a>,
}

/// The parts of a signed X.509 structure: the DER of the signed part, the algorithm, the
/// signature bytes.
pub(crate) struct SignedParts {
    pub(crate) tbs: Vec<u8>,
    pub(crate) algorithm: AlgorithmIdentifierOwned,
    pub(crate) signature: Vec<u8>,
}

pub(crate) fn split_signed(der: &[u8]) -> Result<SignedParts, SignatureError> {
    let raw = RawSigned::from_der(der).map_err(SignatureError::Malformed)?;
    let algorithm = AlgorithmIdentifierOwned::from_der(
        &raw.algorithm.to_der().map_err(SignatureError::Malformed)?,
    )
    .map_err(SignatureError::Malformed)?;
    let signature = raw
        .signature
        .as_bytes()
        .ok_or(SignatureError::Malformed(
            der::ErrorKind::Noncanonical {
                tag: der::Tag::BitString,
            }
            .into(),
        ))?
        .to_vec();
    Ok(SignedParts {
        tbs: raw.tbs.to_der().map_err(SignatureError::Malformed)?,
        algorithm,
        signature,
    })
}

/// Verifies `signature` over `message` with the RSA key in `spki` under `algorithm`.
pub(crate) fn verify_rsa(
    spki: &SubjectPublicKeyInfoOwned,
    algorithm: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let (scheme, hash) = match algorithm.oid {
        SHA256_WITH_RSA => (
            Pkcs1v15Sign::new::<Sha256>(),
            Sha256::digest(message).to_vec(),
        ),
        SHA384_WITH_RSA => (
            Pkcs1v15Sign::new::<Sha384>(),
            Sha384::digest(message).to_vec(),
        ),
        SHA512_WITH_RSA => (
            Pkcs1v15Sign::new::<Sha512>(),
            Sha512::digest(message).to_vec(),
        ),
        other => return Err(SignatureError::UnsupportedAlgorithm(other)),
    };
    let key = rsa_public_key(spki).map_err(SignatureError::PublicKey)?;
    key.verify(scheme, &hash, signature)
        .map_err(SignatureError::Invalid)
}

/// Verifies the signature on a signed X.509 structure (certificate or CRL) given as DER.
pub(crate) fn verify_signed_der(
    der: &[u8],
    issuer: &SubjectPublicKeyInfoOwned,
) -> Result<(), SignatureError> {
    let parts = split_signed(der)?;
    verify_rsa(issuer, &parts.algorithm, &parts.tbs, &parts.signature)
}

pub(crate) fn rsa_public_key(
    spki: &SubjectPublicKeyInfoOwned,
) -> Result<PublicKey, rsa::pkcs8::spki::Error> {
    let der = spki.to_der()?;
    PublicKey::from_public_key_der(&der)
}
