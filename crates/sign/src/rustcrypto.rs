//! RustCrypto `signature` traits for card keys, so generic code (x509-cert builders, protocol
//! libraries) can sign with the card.

use core::marker::PhantomData;

use der::{asn1::Any, oid::AssociatedOid};
use mynacard_cert::ParseError;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use sha2::{Digest, Sha256, Sha384, Sha512};
use signature::{AsyncSigner, Keypair};
use x509_cert::spki::{AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier};

use crate::{digest_info::DigestInfo, hash::HashAlgorithm, signer::DigestInfoSigner};

mod sealed {
    pub trait Sealed {}
    impl Sealed for sha2::Sha256 {}
    impl Sealed for sha2::Sha384 {}
    impl Sealed for sha2::Sha512 {}
}

/// A hash [`CardRsaSigner`] can use: SHA-256, SHA-384 or SHA-512.
pub trait SupportedHash: Digest + AssociatedOid + sealed::Sealed {
    /// The matching [`HashAlgorithm`].
    const ALGORITHM: HashAlgorithm;
}

impl SupportedHash for Sha256 {
    const ALGORITHM: HashAlgorithm = HashAlgorithm::Sha256;
}
impl SupportedHash for Sha384 {
    const ALGORITHM: HashAlgorithm = HashAlgorithm::Sha384;
}
impl SupportedHash for Sha512 {
    const ALGORITHM: HashAlgorithm = HashAlgorithm::Sha512;
}

/// A [`DigestInfoSigner`] (such as a card key) as a RustCrypto RSASSA-PKCS1-v1_5 signer with hash
/// `D`: [`signature::AsyncSigner`], [`signature::Keypair`] and
/// [`x509_cert::spki::DynSignatureAlgorithmIdentifier`].
pub struct CardRsaSigner<S, D: SupportedHash = Sha256> {
    signer: S,
    verifying_key: VerifyingKey<D>,
    _hash: PhantomData<D>,
}

impl<S: DigestInfoSigner, D: SupportedHash> CardRsaSigner<S, D> {
    /// Wraps `signer`; the verifying key comes from its certificate.
    pub fn new(signer: S) -> Result<Self, ParseError> {
        let public = signer.certificate().rsa_public_key()?;
        Ok(CardRsaSigner {
            signer,
            verifying_key: VerifyingKey::new(public),
            _hash: PhantomData,
        })
    }

    /// The wrapped signer.
    pub fn inner(&self) -> &S {
        &self.signer
    }
}

impl<S, D: SupportedHash> core::fmt::Debug for CardRsaSigner<S, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CardRsaSigner")
            .field("hash", &D::ALGORITHM)
            .finish_non_exhaustive()
    }
}

impl<S: DigestInfoSigner, D: SupportedHash> AsyncSigner<Signature> for CardRsaSigner<S, D> {
    async fn sign_async(&self, msg: &[u8]) -> Result<Signature, signature::Error> {
        let digest_info = DigestInfo::of(D::ALGORITHM, msg);
        let bytes = self
            .signer
            .sign_digest_info(&digest_info)
            .await
            .map_err(signature::Error::from_source)?;
        Signature::try_from(bytes.as_slice())
    }
}

impl<S, D: SupportedHash> Keypair for CardRsaSigner<S, D> {
    type VerifyingKey = VerifyingKey<D>;

    fn verifying_key(&self) -> VerifyingKey<D> {
        self.verifying_key.clone()
    }
}

impl<S, D: SupportedHash> DynSignatureAlgorithmIdentifier for CardRsaSigner<S, D> {
    fn signature_algorithm_identifier(&self) -> x509_cert::spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: D::ALGORITHM.rsa_signature_oid(),
            parameters: Some(Any::null()),
        })
    }
}
