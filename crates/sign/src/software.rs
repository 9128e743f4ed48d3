//! A software RSA key behind the same seam as a card key.

use async_trait::async_trait;
use mynacard_cert::JpkiCertificate;
use rsa::{Pkcs1v15Sign, PrivateKey};

use crate::{
    digest_info::DigestInfo,
    signer::{DigestInfoSigner, SignerError},
};

/// The key does not belong to the certificate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SoftwareSignerError {
    /// The certificate's public key could not be read.
    #[error("certificate public key is unusable")]
    Certificate(#[source] mynacard_cert::ParseError),
    /// The private key's public half differs from the certificate's.
    #[error("private key does not match the certificate")]
    KeyMismatch,
}

/// An in-memory RSA key with its certificate: for servers, tests, and checking card output
/// against a known key. It signs exactly as the card does (PKCS#1 v1.5 over a DigestInfo).
pub struct SoftwareSigner {
    key: PrivateKey,
    certificate: JpkiCertificate,
}

impl SoftwareSigner {
    /// Pairs a key with its certificate, refusing a key that is not the certificate's.
    pub fn new(key: PrivateKey, certificate: JpkiCertificate) -> Result<Self, SoftwareSignerError> {
        let cert_key = certificate
            .rsa_public_key()
            .map_err(SoftwareSignerError::Certificate)?;
        if cert_key != key.to_public_key() {
            return Err(SoftwareSignerError::KeyMismatch);
        }
        Ok(SoftwareSigner { key, certificate })
    }
}

impl core::fmt::Debug for SoftwareSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SoftwareSigner")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl DigestInfoSigner for SoftwareSigner {
    fn certificate(&self) -> &JpkiCertificate {
        &self.certificate
    }

    async fn sign_digest_info(&self, digest_info: &DigestInfo) -> Result<Vec<u8>, SignerError> {
        self.key
            .sign(Pkcs1v15Sign::new_unprefixed(), &digest_info.to_der())
            .map_err(SignerError::new)
    }
}
