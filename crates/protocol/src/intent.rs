//! The exact bytes that are signed (protocol §5).
//!
//! For an [`Intent`]: `DigestInfo(SHA-256, SHA-256(JCS(intent)))`, the 51-byte DER structure of
//! RFC 8017 §9.2 that the card pads and signs with RSASSA-PKCS1-v1_5 (`80 2A 00 80`, card fact
//! B.5). For [`FaceEvidence`]: the terminal signs `JCS(face_evidence)` with ECDSA P-256/SHA-256.

use crate::jcs::{self, JcsError};
use crate::messages::{Challenge, FaceEvidence, Intent};
use crate::wire::{Sha256Digest, UtcTime, V1};

/// `DigestInfo(SHA-256, digest)`: 51 bytes ([`mynacard_cert::digest_info::sha256_digest_info`]).
pub fn sha256_digest_info(digest: &Sha256Digest) -> [u8; 51] {
    mynacard_cert::digest_info::sha256_digest_info(&digest.0)
}

impl Intent {
    /// The intent for a challenge, the auth certificate and the time of signing.
    pub fn for_challenge(
        challenge: &Challenge,
        terminal_id: &str,
        cert_der: &[u8],
        signed_at: UtcTime,
    ) -> Intent {
        Intent {
            v: V1,
            op: challenge.op,
            session_id: challenge.session_id.clone(),
            nonce: challenge.nonce,
            terminal_id: terminal_id.to_owned(),
            consent_sha256: challenge.consent.sha256,
            cert_sha256: Sha256Digest::of(cert_der),
            signed_at,
        }
    }

    /// `JCS(intent)`.
    ///
    /// # Errors
    /// [`JcsError`] (never for an intent, which holds only strings).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, JcsError> {
        jcs::to_vec(self)
    }

    /// `SHA-256(JCS(intent))`.
    ///
    /// # Errors
    /// As [`Intent::canonical_bytes`].
    pub fn sha256(&self) -> Result<Sha256Digest, JcsError> {
        Ok(Sha256Digest::of(&self.canonical_bytes()?))
    }

    /// The bytes the card signs: `DigestInfo(SHA-256, SHA-256(JCS(intent)))`.
    ///
    /// # Errors
    /// As [`Intent::canonical_bytes`].
    pub fn signed_digest_info(&self) -> Result<[u8; 51], JcsError> {
        Ok(sha256_digest_info(&self.sha256()?))
    }
}

impl FaceEvidence {
    /// `JCS(face_evidence)`: the bytes the terminal attestation key signs.
    ///
    /// # Errors
    /// [`JcsError`] (the evidence holds only strings and small integers).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, JcsError> {
        jcs::to_vec(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Operation;

    #[test]
    fn digest_info_prefix_is_the_rfc8017_sha256_one() {
        let di = sha256_digest_info(&Sha256Digest::of(b""));
        assert_eq!(
            hex::encode(di),
            "3031300d060960864801650304020105000420\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn intent_members_are_sorted_and_unspaced() {
        let intent = Intent {
            v: V1,
            op: Operation::CheckEligibility,
            session_id: "s".into(),
            nonce: Sha256Digest([0; 32]),
            terminal_id: "t".into(),
            consent_sha256: Sha256Digest([1; 32]),
            cert_sha256: Sha256Digest([2; 32]),
            signed_at: UtcTime::from_unix(0),
        };
        let text = String::from_utf8(intent.canonical_bytes().unwrap()).unwrap();
        assert_eq!(
            text,
            "{\"cert_sha256\":\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI\",\
             \"consent_sha256\":\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE\",\
             \"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\
             \"op\":\"check_eligibility\",\"session_id\":\"s\",\
             \"signed_at\":\"1970-01-01T00:00:00Z\",\"terminal_id\":\"t\",\"v\":\"1\"}"
        );
    }
}
