//! The hash functions JPKI signing uses (SHA-2 family).

use der::oid::ObjectIdentifier;
use sha2::{Digest, Sha256, Sha384, Sha512};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// A supported hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HashAlgorithm {
    /// SHA-256 (what JPKI certificates and most card-signing tools use).
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// All supported algorithms.
    pub const ALL: [HashAlgorithm; 3] = [
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha384,
        HashAlgorithm::Sha512,
    ];

    /// The algorithm's OID (`2.16.840.1.101.3.4.2.1` …).
    pub const fn oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha256 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1"),
            HashAlgorithm::Sha384 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2"),
            HashAlgorithm::Sha512 => ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3"),
        }
    }

    /// The `shaNNNWithRSAEncryption` OID for this hash.
    pub const fn rsa_signature_oid(self) -> ObjectIdentifier {
        match self {
            HashAlgorithm::Sha256 => ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11"),
            HashAlgorithm::Sha384 => ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12"),
            HashAlgorithm::Sha512 => ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13"),
        }
    }

    /// Digest length in bytes.
    pub const fn output_len(self) -> usize {
        match self {
            HashAlgorithm::Sha256 => 32,
            HashAlgorithm::Sha384 => 48,
            HashAlgorithm::Sha512 => 64,
        }
    }

    /// `sha256`, `sha384` or `sha512`.
    pub const fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "sha256",
            HashAlgorithm::Sha384 => "sha384",
            HashAlgorithm::Sha512 => "sha512",
        }
    }

    /// From the OID.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<HashAlgorithm> {
        HashAlgorithm::ALL.into_iter().find(|h| h.oid() == *oid)
    }

    /// From `sha256`/`sha-256`/`SHA256` and the like.
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        let n = name.to_ascii_lowercase().replace('-', "");
        HashAlgorithm::ALL.into_iter().find(|h| h.name() == n)
    }

    /// Hashes `data` in one go.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finalize()
    }

    /// A hasher for data that comes in pieces.
    pub fn hasher(self) -> Hasher {
        Hasher(match self {
            HashAlgorithm::Sha256 => HasherState::Sha256(Sha256::new()),
            HashAlgorithm::Sha384 => HasherState::Sha384(Sha384::new()),
            HashAlgorithm::Sha512 => HasherState::Sha512(Sha512::new()),
        })
    }

    /// `AlgorithmIdentifier` with absent parameters, as RFC 5754 prefers for CMS.
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }
}

#[derive(Clone)]
enum HasherState {
    Sha256(Sha256),
    Sha384(Sha384),
    Sha512(Sha512),
}

/// An incremental hash computation (see [`HashAlgorithm::hasher`]).
#[derive(Clone)]
pub struct Hasher(HasherState);

impl Hasher {
    /// Feeds more data.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha384(h) => h.update(data),
            HasherState::Sha512(h) => h.update(data),
        }
    }

    /// The digest.
    pub fn finalize(self) -> Vec<u8> {
        match self.0 {
            HasherState::Sha256(h) => h.finalize().to_vec(),
            HasherState::Sha384(h) => h.finalize().to_vec(),
            HasherState::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

impl core::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let name = match self.0 {
            HasherState::Sha256(_) => "sha256",
            HasherState::Sha384(_) => "sha384",
            HasherState::Sha512(_) => "sha512",
        };
        f.debug_tuple("Hasher").field(&name).finish()
    }
}
