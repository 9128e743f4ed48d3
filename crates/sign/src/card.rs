//! The card's JPKI keys as a [`DigestInfoSigner`] (feature `card`).
//!
//! A [`CardSigner`] holds a verified handle from `mynacard-card` — the authentication key after
//! the PIN, or the signing key after the signing password — together with the key's certificate.
//! Each [`DigestInfoSigner::sign_digest_info`] call sends one COMPUTE DIGITAL SIGNATURE; the card
//! layer checks the returned signature against the certificate's key before handing it back.
//! PIN entry stays with the caller: a `CardSigner` can only be made from an already verified
//! handle, so signing never spends a PIN attempt.

use std::sync::Mutex;

use async_trait::async_trait;
use mynacard_card::jpki::{VerifiedAuth, VerifiedSign};
use mynacard_cert::JpkiCertificate;
use mynacard_transport::CardChannel;

use crate::{
    digest_info::DigestInfo,
    signer::{DigestInfoSigner, SignerError},
};

/// A verified card key.
#[derive(Debug)]
pub enum VerifiedKey<'v, C> {
    /// The authentication key (`0017`), after the authentication PIN.
    Auth(VerifiedAuth<'v, C>),
    /// The signing key (`001A`), after the signing password.
    Sign(VerifiedSign<'v, C>),
}

/// Why the card could not sign.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardSignerError {
    /// Another signature is being made with this handle (the card does one at a time).
    #[error("the card key is busy with another signature")]
    Busy,
    /// The card or its link failed; the card error keeps the details (status word, transport).
    #[error("the card could not sign")]
    Card(#[source] mynacard_card::Error),
}

/// A verified card key with its certificate, usable wherever a [`DigestInfoSigner`] is.
///
/// Get the `mynacard_card::Error` of a failed signature with
/// `err.inner().downcast_ref::<CardSignerError>()`.
pub struct CardSigner<'v, C> {
    key: Mutex<Option<VerifiedKey<'v, C>>>,
    certificate: JpkiCertificate,
}

impl<'v, C> CardSigner<'v, C> {
    /// Pairs a verified key with its certificate (read from the card by the caller).
    pub fn new(key: VerifiedKey<'v, C>, certificate: JpkiCertificate) -> Self {
        CardSigner {
            key: Mutex::new(Some(key)),
            certificate,
        }
    }

    /// Gives the verified handle back (for `logout`, or more card operations).
    pub fn into_key(self) -> Option<VerifiedKey<'v, C>> {
        self.key.into_inner().ok().flatten()
    }
}

impl<C> core::fmt::Debug for CardSigner<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CardSigner")
            .field("certificate", &self.certificate)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<C: CardChannel> DigestInfoSigner for CardSigner<'_, C> {
    fn certificate(&self) -> &JpkiCertificate {
        &self.certificate
    }

    async fn sign_digest_info(&self, digest_info: &DigestInfo) -> Result<Vec<u8>, SignerError> {
        // The handle is taken out for the duration of the card operation so no lock is held
        // across the await; a concurrent call finds it gone and reports `Busy`.
        let taken = match self.key.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        let mut key = taken.ok_or_else(|| SignerError::new(CardSignerError::Busy))?;
        let hash = digest_info.algorithm();
        let result = match &mut key {
            VerifiedKey::Auth(k) => k.sign_digest(hash, digest_info.digest()).await,
            VerifiedKey::Sign(k) => k.sign_digest(hash, digest_info.digest()).await,
        };
        match self.key.lock() {
            Ok(mut slot) => *slot = Some(key),
            Err(poisoned) => *poisoned.into_inner() = Some(key),
        }
        result.map_err(|e| SignerError::new(CardSignerError::Card(e)))
    }
}
