//! `DigestInfo` (RFC 8017 §9.2): what the card's PKCS#1 v1.5 operation signs.

use der::{Decode, Sequence, asn1::OctetString, oid::ObjectIdentifier};
use x509_cert::spki::AlgorithmIdentifierOwned;

use crate::hash::HashAlgorithm;

/// A `DigestInfo` could not be built or parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestInfoError {
    /// The hash algorithm is not SHA-256/384/512.
    #[error("unsupported digest algorithm {0}")]
    UnsupportedAlgorithm(ObjectIdentifier),
    /// The digest has the wrong length for its algorithm.
    #[error("{algorithm} digest must be {expected} bytes, got {actual}")]
    WrongLength {
        /// The algorithm.
        algorithm: &'static str,
        /// Its output length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// Parameters other than NULL or absent.
    #[error("digest algorithm parameters must be NULL or absent")]
    Parameters,
    /// Not DER.
    #[error("malformed DigestInfo")]
    Der(#[source] der::Error),
}

#[derive(Sequence)]
struct DigestInfoAsn1 {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

/// `DigestInfo ::= SEQUENCE { digestAlgorithm AlgorithmIdentifier, digest OCTET STRING }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestInfo {
    algorithm: HashAlgorithm,
    digest: Vec<u8>,
}

impl DigestInfo {
    /// Wraps a digest computed elsewhere, checking its length.
    pub fn new(
        algorithm: HashAlgorithm,
        digest: impl Into<Vec<u8>>,
    ) -> Result<Self, DigestInfoError> {
        let digest = digest.into();
        if digest.len() != algorithm.output_len() {
            return Err(DigestInfoError::WrongLength {
                algorithm: algorithm.name(),
                expected: algorithm.output_len(),
                actual: digest.len(),
            });
        }
        Ok(DigestInfo { algorithm, digest })
    }

    /// Hashes `data` and wraps the digest.
    pub fn of(algorithm: HashAlgorithm, data: &[u8]) -> Self {
        DigestInfo {
            algorithm,
            digest: algorithm.digest(data),
        }
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> HashAlgorithm {
        self.algorithm
    }

    /// The digest.
    pub fn digest(&self) -> &[u8] {
        &self.digest
    }

    /// DER, with NULL parameters (the form RFC 8017 §9.2 fixes): 51 bytes for SHA-256.
    pub fn to_der(&self) -> Vec<u8> {
        // SEQUENCE { SEQUENCE { OID (9 bytes), NULL }, OCTET STRING digest }; every length fits
        // one byte because a digest is at most 64 bytes.
        let oid = self.algorithm.oid();
        let oid = oid.as_bytes();
        let n = self.digest.len() as u8;
        let alg_len = 2 + oid.len() as u8 + 2;
        let mut out = Vec::with_capacity(4 + usize::from(alg_len) + self.digest.len() + 2);
        out.extend_from_slice(&[
            0x30,
            2 + alg_len + 2 + n,
            0x30,
            alg_len,
            0x06,
            oid.len() as u8,
        ]);
        out.extend_from_slice(oid);
        out.extend_from_slice(&[0x05, 0x00, 0x04, n]);
        out.extend_from_slice(&self.digest);
        out
    }

    /// Parses DER; parameters may be NULL or absent.
    pub fn from_der(der: &[u8]) -> Result<Self, DigestInfoError> {
        let asn1 = DigestInfoAsn1::from_der(der).map_err(DigestInfoError::Der)?;
        let algorithm = HashAlgorithm::from_oid(&asn1.algorithm.oid)
            .ok_or(DigestInfoError::UnsupportedAlgorithm(asn1.algorithm.oid))?;
        match &asn1.algorithm.parameters {
            None => {}
            Some(p) if p.is_null() => {}
            Some(_) => return Err(DigestInfoError::Parameters),
        }
        DigestInfo::new(algorithm, asn1.digest.as_bytes())
    }
}
