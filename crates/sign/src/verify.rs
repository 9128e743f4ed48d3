//! Verifying RSA signatures: PKCS#1 v1.5 over a DigestInfo, and PSS.

use rsa::{Pkcs1v15Sign, PublicKey, pss::Pss};
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::{digest_info::DigestInfo, hash::HashAlgorithm};

/// A signature did not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature is not valid for this key and data.
    #[error("signature does not verify")]
    BadSignature(#[source] rsa::Error),
    /// The digest has the wrong length for its algorithm.
    #[error("{algorithm} digest must be {expected} bytes, got {actual}")]
    DigestLength {
        /// The algorithm.
        algorithm: &'static str,
        /// Its output length.
        expected: usize,
        /// The length given.
        actual: usize,
    },
}

/// Verifies an RSASSA-PKCS1-v1_5 signature whose encoded message carries `digest_info` — the
/// signature the card's `80 2A 00 80` operation (P1 `00`) returns.
pub fn verify_pkcs1v15(
    key: &PublicKey,
    digest_info: &DigestInfo,
    signature: &[u8],
) -> Result<(), VerifyError> {
    key.verify(
        Pkcs1v15Sign::new_unprefixed(),
        &digest_info.to_der(),
        signature,
    )
    .map_err(VerifyError::BadSignature)
}

/// Hashes `message` and verifies an RSASSA-PKCS1-v1_5 signature over it.
pub fn verify_pkcs1v15_message(
    key: &PublicKey,
    algorithm: HashAlgorithm,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    verify_pkcs1v15(key, &DigestInfo::of(algorithm, message), signature)
}

/// Verifies an RSASSA-PSS signature (MGF1 with the same hash) over a digest.
///
/// `salt_len` `None` accepts any salt length, as needed for the card's PSS schemes whose salt
/// length is not published.
pub fn verify_pss(
    key: &PublicKey,
    algorithm: HashAlgorithm,
    digest: &[u8],
    signature: &[u8],
    salt_len: Option<usize>,
) -> Result<(), VerifyError> {
    if digest.len() != algorithm.output_len() {
        return Err(VerifyError::DigestLength {
            algorithm: algorithm.name(),
            expected: algorithm.output_len(),
            actual: digest.len(),
        });
    }
    let result = match algorithm {
        HashAlgorithm::Sha256 => key.verify(pss::<Sha256>(salt_len), digest, signature),
        HashAlgorithm::Sha384 => key.verify(pss::<Sha384>(salt_len), digest, signature),
        HashAlgorithm::Sha512 => key.verify(pss::<Sha512>(salt_len), digest, signature),
    };
    result.map_err(VerifyError::BadSignature)
}

fn pss<D: Digest>(salt_len: Option<usize>) -> Pss<D> {
    Pss {
        blinded: false,
        digest: D::new(),
        salt_len,
    }
}
