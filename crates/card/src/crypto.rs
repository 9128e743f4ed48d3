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
use sha2::{Digest, Sha256, Sha384, Sha512};

use crate::{Error, Result};

/// Hash functions the card's keys are used with (the card itself only hashes with SHA-256).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

// DER prefixes of DigestInfo { AlgorithmIdentifier { id-sha*, NULL }, OCTET STRING } (RFC 8017
// §9.2 note 1).
const PREFIX_SHA256: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const PREFIX_SHA384: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const PREFIX_SHA512: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

impl HashAlgorithm {
    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// Hashes `message`.
    pub fn digest(self, message: &[u8]) -> Vec<u8> {
        match self {
            HashAlgorithm::Sha256 => Sha256::digest(message).to_vec(),
            HashAlgorithm::Sha384 => Sha384::digest(message).to_vec(),
            HashAlgorithm::Sha512 => Sha512::digest(message).to_vec(),
        }
    }

    /// The DER DigestInfo for a digest computed with this algorithm.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `digest` has the wrong length.
    pub fn digest_info(self, digest: &[u8]) -> Result<Vec<u8>> {
        if digest.len() != self.output_len() {
            return Err(Error::InvalidInput {
                what: "digest length does not match the hash algorithm",
            });
        }
        let prefix: &[u8] = match self {
            HashAlgorithm::Sha256 => &PREFIX_SHA256,
            HashAlgorithm::Sha384 => &PREFIX_SHA384,
            HashAlgorithm::Sha512 => &PREFIX_SHA512,
        };
        let mut out = Vec::with_capacity(prefix.len() + digest.len());
        out.extend_from_slice(prefix);
        out.extend_from_slice(digest);
        Ok(out)
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A DigestInfo over arbitrary content under the SHA-256 identifier (used by the card-face
/// record, whose "digest" is three SHA-256 values concatenated).
pub(crate) fn sha256_digest_info_raw(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_SHA256.len() + content.len());
    // DigestInfo lengths fit in one byte for the content this is used with (≤ 96 bytes).
    let inner = 15 + 2 + content.len();
    out.extend_from_slice(&[0x30, inner as u8]);
    out.extend_from_slice(&PREFIX_SHA256[2..18]);
    out.push(content.len() as u8);
    out.extend_from_slice(content);
    out
}

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

    /// A key from its big-endian modulus and public exponent.
    ///
    /// # Errors
    /// [`Error::Malformed`] or [`Error::PublicKey`].
    pub fn from_parts(modulus: &[u8], exponent: &[u8]) -> Result<CardPublicKey> {
        let what = "card public key";
        if modulus.is_empty() || exponent.is_empty() || exponent.len() > 8 {
            return Err(Error::Malformed {
                what: "public key size",
            });
        }
        let key = PublicKey::new(
            BoxedUint::from_be_slice_vartime(modulus),
            BoxedUint::from_be_slice_vartime(exponent),
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
    fn digest_info_prefixes_are_der() {
        for alg in [
            HashAlgorithm::Sha256,
            HashAlgorithm::Sha384,
            HashAlgorithm::Sha512,
        ] {
            let info = alg.digest_info(&alg.digest(b"abc")).unwrap();
            let (tlv, rest) = ber::parse_one(&info).unwrap();
            assert!(rest.is_empty());
            assert_eq!(tlv.tag, 0x30);
            let octets = ber::find(tlv.value, 0x04).unwrap().unwrap();
            assert_eq!(octets.value, alg.digest(b"abc").as_slice());
        }
        assert!(HashAlgorithm::Sha256.digest_info(&[0; 31]).is_err());
    }

    #[test]
    fn raw_sha256_digest_info_matches_the_prefix_for_one_digest() {
        let d = HashAlgorithm::Sha256.digest(b"x");
        assert_eq!(
            sha256_digest_info_raw(&d),
            HashAlgorithm::Sha256.digest_info(&d).unwrap()
        );
        let three = [0u8; 96];
        let info = sha256_digest_info_raw(&three);
        let (tlv, rest) = ber::parse_one(&info).unwrap();
        assert!(rest.is_empty());
        assert_eq!(ber::find(tlv.value, 0x04).unwrap().unwrap().value.len(), 96);
    }

    #[test]
    fn card_objects_need_both_parts() {
        assert!(CardPublicKey::from_card_objects(&[0x90, 0x03, 1, 0, 1]).is_err());
        assert!(CardPublicKey::from_card_objects(&[]).is_err());
        assert!(CardPublicKey::from_card_objects(&[0x91, 0x01, 0x05, 0x90, 0x01, 0x03]).is_err());
    }
}
