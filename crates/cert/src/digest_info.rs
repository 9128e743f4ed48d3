//! `DigestInfo` (RFC 8017 §9.2): what the card's keys sign with PKCS#1 v1.5, in every form the
//! workspace uses. This is the one place its bytes are written down.
//!
//! - [`HashAlgorithm`] names the hash functions JPKI signing and the card's records use (SHA-256/384/512),
//!   with their identifiers and the DER prefix of a DigestInfo around their digest.
//! - [`SHA1_PREFIX`] is only for recognising what older tools send ([`name_of`]); nothing here
//!   builds a SHA-1 DigestInfo.
//! - [`card_face`] is the form of the visual AP's card-face signature (`DF28`): a DigestInfo that
//!   names SHA-256 but whose digest field holds the three segment digests, 96 bytes, as they are.

use der::oid::ObjectIdentifier;
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use x509_cert::spki::AlgorithmIdentifierOwned;

/// DigestInfo prefix for SHA-1 (`30 21 30 09 06 05 2B 0E 03 02 1A 05 00 04 14`), followed by
/// the 20-byte digest. Recognised, never built.
pub const SHA1_PREFIX: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2B, 0x0E, 0x03, 0x02, 0x1A, 0x05, 0x00, 0x04, 0x14,
];

/// DigestInfo prefix for SHA-256
/// (`30 31 30 0D 06 09 60 86 48 01 65 03 04 02 01 05 00 04 20`), followed by the 32-byte digest.
pub const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// DigestInfo prefix for SHA-384, followed by the 48-byte digest.
pub const SHA384_PREFIX: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];

/// DigestInfo prefix for SHA-512, followed by the 64-byte digest.
pub const SHA512_PREFIX: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// A hash function whose DigestInfo the card's keys sign. Exhaustive, so that the crates that
/// pick an implementation per hash (the signature verifier, CMS) match every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashAlgorithm {
    /// SHA-256: JPKI certificates, the card's own hashing and its records.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl HashAlgorithm {
    /// All of them.
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

    /// The DER that precedes the digest in this hash's DigestInfo (RFC 8017 §9.2 note 1).
    pub const fn prefix(self) -> &'static [u8; 19] {
        match self {
            HashAlgorithm::Sha256 => &SHA256_PREFIX,
            HashAlgorithm::Sha384 => &SHA384_PREFIX,
            HashAlgorithm::Sha512 => &SHA512_PREFIX,
        }
    }

    /// `SHA-256`, `SHA-384` or `SHA-512`.
    pub const fn display_name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha384 => "SHA-384",
            HashAlgorithm::Sha512 => "SHA-512",
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

    /// The DER DigestInfo around `digest`, or `None` when the digest has the wrong length.
    pub fn digest_info(self, digest: &[u8]) -> Option<Vec<u8>> {
        (digest.len() == self.output_len()).then(|| [&self.prefix()[..], digest].concat())
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

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The 51-byte DER DigestInfo around a SHA-256 digest.
pub fn sha256_digest_info(digest: &[u8; 32]) -> [u8; 51] {
    let mut out = [0u8; 51];
    out[..19].copy_from_slice(&SHA256_PREFIX);
    out[19..].copy_from_slice(digest);
    out
}

/// The name of the hash (`SHA-1`, `SHA-256`, …) when `data` is exactly a DER DigestInfo with
/// NULL parameters of a known hash: its prefix and a digest of that hash's length.
pub fn name_of(data: &[u8]) -> Option<&'static str> {
    let known = [(&SHA1_PREFIX[..], "SHA-1")]
        .into_iter()
        .chain(HashAlgorithm::ALL.map(|h| (&h.prefix()[..], h.display_name())));
    known
        .into_iter()
        .find(|(prefix, _)| {
            // The last prefix byte is the digest length.
            let len = usize::from(prefix[prefix.len() - 1]);
            data.len() == prefix.len() + len && data.starts_with(prefix)
        })
        .map(|(_, name)| name)
}

/// The card-face signature's form: three SHA-256 segment digests.
pub mod card_face {
    use super::{SHA256_PREFIX, sha256};

    /// Length of the three concatenated SHA-256 digests the DigestInfo carries.
    pub const DIGESTS_LEN: usize = 96;

    /// Length of the whole DigestInfo.
    pub const LEN: usize = 115;

    /// The DER before the 96 digest bytes: `SEQUENCE (113) { SEQUENCE { id-sha256, NULL },
    /// OCTET STRING (96) }`. Bar its two lengths, [`SHA256_PREFIX`].
    pub const PREFIX: [u8; 19] = {
        let mut p = SHA256_PREFIX;
        p[1] = (LEN - 2) as u8;
        p[18] = DIGESTS_LEN as u8;
        p
    };

    /// The DigestInfo around three concatenated segment digests, as they are (not hashed again).
    pub fn digest_info(digests: &[u8; DIGESTS_LEN]) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..PREFIX.len()].copy_from_slice(&PREFIX);
        out[PREFIX.len()..].copy_from_slice(digests);
        out
    }

    /// SHA-256 of each segment, concatenated: the card face's segments are the TLV-encoded
    /// `DF22‖DF23‖DF24`, `DF25‖DF26` and `DF27`.
    pub fn digests(segments: [&[u8]; 3]) -> [u8; DIGESTS_LEN] {
        let mut out = [0u8; DIGESTS_LEN];
        for (slot, segment) in out.chunks_exact_mut(32).zip(segments) {
            slot.copy_from_slice(&sha256(segment));
        }
        out
    }

    /// The DigestInfo the card-face signature covers, from the three segments.
    pub fn of_segments(segments: [&[u8]; 3]) -> [u8; LEN] {
        digest_info(&digests(segments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Sequence, asn1::OctetString};
    use x509_cert::spki::AlgorithmIdentifierOwned;

    #[derive(Sequence)]
    struct DigestInfoAsn1 {
        algorithm: AlgorithmIdentifierOwned,
        digest: OctetString,
    }

    fn decode(der: &[u8]) -> (String, bool, Vec<u8>) {
        let info = DigestInfoAsn1::from_der(der).unwrap();
        let null = info
            .algorithm
            .parameters
            .as_ref()
            .is_some_and(|p| p.is_null());
        (
            info.algorithm.oid.to_string(),
            null,
            info.digest.as_bytes().to_vec(),
        )
    }

    #[test]
    fn prefixes_decode_as_der_with_the_rfc_8017_identifiers() {
        for (hash, oid) in [
            (HashAlgorithm::Sha256, "2.16.840.1.101.3.4.2.1"),
            (HashAlgorithm::Sha384, "2.16.840.1.101.3.4.2.2"),
            (HashAlgorithm::Sha512, "2.16.840.1.101.3.4.2.3"),
        ] {
            assert_eq!(hash.oid().to_string(), oid);
            let digest = hash.digest(b"abc");
            let mut pieces = hash.hasher();
            pieces.update(b"a");
            pieces.update(b"bc");
            assert_eq!(pieces.finalize(), digest);
            let info = hash.digest_info(&digest).unwrap();
            assert_eq!(decode(&info), (oid.to_owned(), true, digest.clone()));
            assert_eq!(name_of(&info), Some(hash.display_name()));
            assert!(hash.digest_info(&digest[1..]).is_none());
        }
        let sha1 = [&SHA1_PREFIX[..], &[0u8; 20]].concat();
        assert_eq!(
            decode(&sha1),
            ("1.3.14.3.2.26".to_owned(), true, vec![0; 20])
        );
        assert_eq!(name_of(&sha1), Some("SHA-1"));
        assert_eq!(name_of(&sha1[..34]), None);
    }

    #[test]
    fn the_sha256_prefix_is_the_one_the_card_signs() {
        assert_eq!(
            hex(&SHA256_PREFIX),
            "3031300d060960864801650304020105000420"
        );
        let d = sha256(b"x");
        assert_eq!(
            sha256_digest_info(&d).to_vec(),
            HashAlgorithm::Sha256.digest_info(&d).unwrap()
        );
    }

    #[test]
    fn the_card_face_form_carries_96_bytes_as_they_are() {
        let digests: [u8; 96] = core::array::from_fn(|i| i as u8);
        let info = card_face::digest_info(&digests);
        assert_eq!(
            decode(&info),
            ("2.16.840.1.101.3.4.2.1".to_owned(), true, digests.to_vec())
        );
        assert_eq!(
            hex(&card_face::PREFIX),
            "3071300d060960864801650304020105000460"
        );
        let segments: [&[u8]; 3] = [b"a", b"bc", b"def"];
        let of = card_face::of_segments(segments);
        assert_eq!(&of[19..51], &sha256(b"a"));
        assert_eq!(&of[83..], &sha256(b"def"));
        assert_eq!(name_of(&info), None);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
