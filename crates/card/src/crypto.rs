//! Hashing, DigestInfo and RSA verification of what the card signs.
//!
//! Every signature the card returns is checked here before it reaches the caller: a signature
//! shorter than the modulus or one that does not verify is an error, never a result.

use der::Decode;
use der::Encode;
use mynacard_apdu::tlv::ber;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, Pkcs1v15Sign, PublicKey};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Hash functions the card's keys are used with (the card itself only hashes with SHA-256): the
/// workspace's one DigestInfo table, [`mynacard_cert::digest_info`].
pub use mynacard_cert::digest_info::HashAlgorithm;

/// The DER DigestInfo for a digest computed with `alg`.
///
/// # Errors
/// [`Error::InvalidInput`] when `digest` has the wrong length.
pub(crate) fn digest_info(alg: HashAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
    alg.digest_info(digest).ok_or(Error::InvalidInput {
        what: "digest length does not match the hash algorithm",
    })
}

pub(crate) use mynacard_cert::digest_info::sha256;

/// An RSA public key of the card: from an X.509 certificate, or from the card's own `90`/`91`
/// (exponent/modulus) data objects.
#[derive(Clone, PartialEq, Eq)]
pub struct CardPublicKey {
    key: PublicKey,
}

impl core::fmt::Debug for CardPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CardPublicKey")
            .field("bits", &(self.modulus_len() * 8))
            .finish()
    }
}

impl CardPublicKey {
    /// The subject public key of a DER X.509 certificate.
    ///
    /// # Errors
    /// [`Error::MalformedDer`] or [`Error::PublicKey`].
    pub fn from_certificate(der_bytes: &[u8]) -> Result<CardPublicKey> {
        let what = "certificate";
        let cert = x509_cert::Certificate::from_der(der_bytes)
            .map_err(|source| Error::MalformedDer { what, source })?;
        let spki = cert
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|source| Error::MalformedDer { what, source })?;
        let key = PublicKey::from_public_key_der(&spki).map_err(|_| Error::Malformed {
            what: "certificate key is not an RSA key",
        })?;
        Ok(CardPublicKey { key })
    }

    /// A key written as consecutive `90` (public exponent) and `91` (modulus) objects, the form
    /// used inside the card's own records and card-verifiable certificates.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`], [`Error::Malformed`] or [`Error::PublicKey`].
    pub fn from_card_objects(bytes: &[u8]) -> Result<CardPublicKey> {
        let what = "card public key";
        let e = ber::find(bytes, 0x90)
            .map_err(Error::tlv(what))?
            .ok_or(Error::Malformed {
                what: "public key without exponent (90)",
            })?;
        let n = ber::find(bytes, 0x91)
            .map_err(Error::tlv(what))?
            .ok_or(Error::Malformed {
                what: "public key without modulus (91)",
            })?;
        CardPublicKey::from_parts(n.value, e.value)
    }

    /// The largest modulus accepted, in bits: a key object from a card (or from a terminal that
    /// forwards one) never makes verification arbitrarily slow.
    pub const MAX_MODULUS_BITS: usize = 4096;

    /// A key from its big-endian modulus and public exponent. Leading zero bytes are ignored;
    /// the modulus may have at most [`MAX_MODULUS_BITS`](Self::MAX_MODULUS_BITS), the exponent
    /// at most 64 bits.
    ///
    /// # Errors
    /// [`Error::Malformed`] or [`Error::PublicKey`].
    pub fn from_parts(modulus: &[u8], exponent: &[u8]) -> Result<CardPublicKey> {
        let what = "card public key";
        let strip = |b: &[u8]| {
            let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
            b[start..].to_vec()
        };
        let (modulus, exponent) = (strip(modulus), strip(exponent));
        if modulus.is_empty()
            || exponent.is_empty()
            || exponent.len() > 8
            || modulus.len() * 8 > Self::MAX_MODULUS_BITS
        {
            return Err(Error::Malformed {
                what: "public key size",
            });
        }
        let key = PublicKey::new(
            BoxedUint::from_be_slice_vartime(&modulus),
            BoxedUint::from_be_slice_vartime(&exponent),
        )
        .map_err(|source| Error::PublicKey { what, source })?;
        Ok(CardPublicKey { key })
    }

    /// The modulus length in bytes (the length of every signature made with the key).
    pub fn modulus_len(&self) -> usize {
        self.key.size()
    }

    /// The RSA key.
    pub fn rsa(&self) -> &PublicKey {
        &self.key
    }

    /// Checks the length and then the PKCS#1 v1.5 signature over `encoded` (a DigestInfo, or the
    /// bare bytes the card padded).
    pub(crate) fn verify_pkcs1(
        &self,
        encoded: &[u8],
        signature: &[u8],
        what: &'static str,
    ) -> Result<()> {
        self.check_len(signature)?;
        self.key
            .verify(Pkcs1v15Sign::new_unprefixed(), encoded, signature)
            .map_err(|_| Error::SignatureInvalid { what })
    }

    /// Checks the length and then an RSASSA-PSS (SHA-256, MGF1-SHA-256, any salt length)
    /// signature over a SHA-256 hash.
    pub(crate) fn verify_pss_sha256(
        &self,
        hash: &[u8],
        signature: &[u8],
        what: &'static str,
    ) -> Result<()> {
        self.check_len(signature)?;
        let scheme = rsa::pss::Pss::<Sha256> {
            blinded: false,
            digest: Sha256::new(),
            salt_len: None,
        };
        self.key
            .verify(scheme, hash, signature)
            .map_err(|_| Error::SignatureInvalid { what })
    }

    fn check_len(&self, signature: &[u8]) -> Result<()> {
        if signature.len() != self.modulus_len() {
            return Err(Error::SignatureLength {
                expected: self.modulus_len(),
                actual: signature.len(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_info_refuses_a_digest_of_the_wrong_length() {
        assert!(digest_info(HashAlgorithm::Sha256, &[0; 31]).is_err());
        let d = HashAlgorithm::Sha256.digest(b"abc");
        let info = digest_info(HashAlgorithm::Sha256, &d).unwrap();
        let (tlv, rest) = ber::parse_one(&info).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            ber::find(tlv.value, 0x04).unwrap().unwrap().value,
            d.as_slice()
        );
    }

    #[test]
    fn key_objects_ignore_leading_zeros_and_refuse_oversized_moduli() {
        // A 2048-bit modulus (top bit set, odd) with e = 65537, once as is and once with a
        // leading zero byte as DER integers write it.
        let mut n = vec![0xC5u8; 256];
        n[255] = 0x01;
        let objects = |n: &[u8]| {
            let mut out = vec![0x90, 0x03, 0x01, 0x00, 0x01, 0x91, 0x82];
            out.extend_from_slice(&(n.len() as u16).to_be_bytes());
            out.extend_from_slice(n);
            out
        };
        let plain = CardPublicKey::from_card_objects(&objects(&n)).unwrap();
        let padded = CardPublicKey::from_card_objects(&objects(&[&[0][..], &n].concat())).unwrap();
        assert_eq!(plain, padded);
        assert_eq!(plain.modulus_len(), 256);
        let huge = vec![0xC5u8; CardPublicKey::MAX_MODULUS_BITS / 8 + 1];
        assert!(CardPublicKey::from_card_objects(&objects(&huge)).is_err());
        assert!(CardPublicKey::from_parts(&n, &[0; 4]).is_err());
    }

    #[test]
    fn card_objects_need_both_parts() {
        assert!(CardPublicKey::from_card_objects(&[0x90, 0x03, 1, 0, 1]).is_err());
        assert!(CardPublicKey::from_card_objects(&[]).is_err());
        assert!(CardPublicKey::from_card_objects(&[0x91, 0x01, 0x05, 0x90, 0x01, 0x03]).is_err());
    }
}
