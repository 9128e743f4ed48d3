//! Terminal attestation keys (ES256: ECDSA P-256 with SHA-256), protocol §7.2.
//!
//! A terminal signs the canonical face evidence
//! ([`FaceEvidence::canonical_bytes`](crate::messages::FaceEvidence::canonical_bytes)); a kiosk
//! whose key lives in a TPM or HSM does so with its own signer. [`SoftwareAttestationKey`] is the
//! software key for tests, the demo and terminals that keep the key in a file; a service checks
//! the signature with [`verify_es256`].

use core::fmt;

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _, EncodePublicKey as _};

use crate::wire::Bytes;

/// Why a key or signature could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// Not a P-256 private key (PKCS#8 DER or a 32-byte scalar).
    #[error("not a P-256 private key")]
    PrivateKey,
    /// Not a P-256 SubjectPublicKeyInfo.
    #[error("not a P-256 public key")]
    PublicKey,
    /// Not a 64-byte `r ‖ s` signature.
    #[error("not a 64-byte ES256 signature")]
    Signature,
}

/// A terminal attestation key held in memory.
#[derive(Clone)]
pub struct SoftwareAttestationKey {
    key: SigningKey,
}

impl fmt::Debug for SoftwareAttestationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SoftwareAttestationKey(<secret>)")
    }
}

impl SoftwareAttestationKey {
    /// From a PKCS#8 DER private key.
    ///
    /// # Errors
    /// [`AttestationError::PrivateKey`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, AttestationError> {
        SigningKey::from_pkcs8_der(der)
            .map(|key| SoftwareAttestationKey { key })
            .map_err(|_| AttestationError::PrivateKey)
    }

    /// From a 32-byte big-endian scalar.
    ///
    /// # Errors
    /// [`AttestationError::PrivateKey`] for zero or a value not below the group order.
    pub fn from_scalar(bytes: &[u8]) -> Result<Self, AttestationError> {
        SigningKey::from_slice(bytes)
            .map(|key| SoftwareAttestationKey { key })
            .map_err(|_| AttestationError::PrivateKey)
    }

    /// A key derived from a label: the same label always gives the same key. **For tests and
    /// demonstrations only**: anyone who knows the label has the key.
    pub fn for_testing(label: &str) -> Self {
        let mut counter = 0u32;
        loop {
            let mut input = b"mynacard test attestation key\0".to_vec();
            input.extend_from_slice(label.as_bytes());
            input.extend_from_slice(&counter.to_be_bytes());
            let scalar = crate::wire::Sha256Digest::of(&input);
            if let Ok(key) = Self::from_scalar(scalar.as_bytes()) {
                return key;
            }
            // Practically unreachable (probability about 2^-32): try the next counter.
            counter = counter.wrapping_add(1);
        }
    }

    /// Signs `message` (SHA-256 inside): 64 bytes `r ‖ s`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        signature.to_bytes().to_vec()
    }

    /// The public key as SubjectPublicKeyInfo DER (what a service lists for the terminal).
    ///
    /// # Errors
    /// [`AttestationError::PublicKey`] (encoding a valid key does not fail).
    pub fn public_key_der(&self) -> Result<Vec<u8>, AttestationError> {
        self.key
            .verifying_key()
            .to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|_| AttestationError::PublicKey)
    }

    /// The public key as base64url SubjectPublicKeyInfo DER (the form of a service seed file).
    ///
    /// # Errors
    /// As [`SoftwareAttestationKey::public_key_der`].
    pub fn public_key_base64url(&self) -> Result<String, AttestationError> {
        Ok(Bytes(self.public_key_der()?).to_base64url())
    }
}

/// Verifies an ES256 attestation: `signature` (64 bytes `r ‖ s`) over `message` by the key in
/// `public_key_der` (SubjectPublicKeyInfo).
///
/// # Errors
/// [`AttestationError::PublicKey`] or [`AttestationError::Signature`] when the inputs are
/// malformed; `Ok(false)` when the signature does not verify.
pub fn verify_es256(
    public_key_der: &[u8],
    message: &[u8],
    signature: &[u8],
) -> Result<bool, AttestationError> {
    let key = VerifyingKey::from_public_key_der(public_key_der)
        .map_err(|_| AttestationError::PublicKey)?;
    let signature = Signature::from_slice(signature).map_err(|_| AttestationError::Signature)?;
    Ok(key.verify(message, &signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let key = SoftwareAttestationKey::for_testing("kiosk-0001");
        let again = SoftwareAttestationKey::for_testing("kiosk-0001");
        assert_eq!(
            key.public_key_der().unwrap(),
            again.public_key_der().unwrap()
        );
        let spki = key.public_key_der().unwrap();
        let sig = key.sign(b"evidence");
        assert_eq!(sig.len(), 64);
        assert!(verify_es256(&spki, b"evidence", &sig).unwrap());
        assert!(!verify_es256(&spki, b"evidencE", &sig).unwrap());
        let other = SoftwareAttestationKey::for_testing("kiosk-0002");
        assert!(!verify_es256(&other.public_key_der().unwrap(), b"evidence", &sig).unwrap());
        assert!(verify_es256(&spki, b"evidence", &sig[..63]).is_err());
        assert!(verify_es256(b"junk", b"evidence", &sig).is_err());
    }
}
