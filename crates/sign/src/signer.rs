//! The signer seam: anything that turns a `DigestInfo` into a PKCS#1 v1.5 signature.

use std::{error::Error, sync::Arc};

use async_trait::async_trait;
use mynacard_cert::JpkiCertificate;

use crate::digest_info::DigestInfo;

/// Signing failed. The cause (card error, wrong PIN state, transport loss, …) is kept.
#[derive(Debug, thiserror::Error)]
#[error("signing failed")]
pub struct SignerError {
    #[source]
    source: Box<dyn Error + Send + Sync + 'static>,
}

impl SignerError {
    /// Wraps the signer's own error.
    pub fn new(source: impl Into<Box<dyn Error + Send + Sync + 'static>>) -> SignerError {
        SignerError {
            source: source.into(),
        }
    }

    /// The signer's own error, for downcasting.
    pub fn inner(&self) -> &(dyn Error + Send + Sync + 'static) {
        self.source.as_ref()
    }

    /// The signer's own error, owned, for downcasting with `Box::downcast`.
    pub fn into_inner(self) -> Box<dyn Error + Send + Sync + 'static> {
        self.source
    }
}

/// A private key that makes RSASSA-PKCS1-v1_5 signatures over a caller-built `DigestInfo`, and
/// the certificate of that key.
///
/// This is what the card's JPKI keys do (`80 2A 00 80` with P1 `00`); a card session plugs in
/// here, and so does a software key ([`crate::SoftwareSigner`]). The CMS builder and the
/// RustCrypto adapter ([`crate::CardRsaSigner`]) work with any implementation.
#[async_trait]
pub trait DigestInfoSigner: Send + Sync {
    /// The certificate of the signing key.
    fn certificate(&self) -> &JpkiCertificate;

    /// Signs `digest_info`; returns the signature (as long as the modulus).
    async fn sign_digest_info(&self, digest_info: &DigestInfo) -> Result<Vec<u8>, SignerError>;
}

#[async_trait]
impl<T: DigestInfoSigner + ?Sized> DigestInfoSigner for &T {
    fn certificate(&self) -> &JpkiCertificate {
        (**self).certificate()
    }

    async fn sign_digest_info(&self, digest_info: &DigestInfo) -> Result<Vec<u8>, SignerError> {
        (**self).sign_digest_info(digest_info).await
    }
}

#[async_trait]
impl<T: DigestInfoSigner + ?Sized> DigestInfoSigner for Box<T> {
    fn certificate(&self) -> &JpkiCertificate {
        (**self).certificate()
    }

    async fn sign_digest_info(&self, digest_info: &DigestInfo) -> Result<Vec<u8>, SignerError> {
        (**self).sign_digest_info(digest_info).await
    }
}

#[async_trait]
impl<T: DigestInfoSigner + ?Sized> DigestInfoSigner for Arc<T> {
    fn certificate(&self) -> &JpkiCertificate {
        (**self).certificate()
    }

    async fn sign_digest_info(&self, digest_info: &DigestInfo) -> Result<Vec<u8>, SignerError> {
        (**self).sign_digest_info(digest_info).await
    }
}
