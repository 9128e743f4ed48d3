//! Verification of proofs: the card's signature, the certificate's chain, validity, kind and
//! revocation, and for face registration the terminal's attestation and the card's evidence.
//!
//! Chains are checked by `mynacard-cert` (production J-LIS roots by default; the `O=JPKI-TEST`
//! roots of the simulated card only when the operator allows them), signatures by
//! `mynacard-sign` (RSASSA-PKCS1-v1_5 over a DigestInfo). Parsed certificates and their verified chains are cached by the SHA-256 of
//! the DER, so a card seen again costs one signature check; validity and revocation are still
//! decided per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mynacard_cert::{
    CertKind, ChainError, Crl, Hierarchy, JpkiCertificate, RevocationError, RevocationQuery,
    RevocationSource, RevocationStatus, TrustPolicy, verify_chain,
};
use mynacard_registration::errors::{ErrorCode, RevocationReason as WireReason};
use mynacard_registration::messages::{
    ATTESTATION_ALG_ES256, FaceDecision, FaceEvidence, TerminalAttestation,
};
use rsa::PublicKey as RsaPublicKey;

use crate::store::CardKey;
use crate::upstream::serial_from_bytes;

/// A terminal known to the service.
#[derive(Clone)]
pub struct Terminal {
    /// Terminal id.
    pub id: String,
    /// Terminal kind (`kiosk`, `atm`, `app`, `face_reader`).
    pub kind: String,
    /// Approved for face matching (特定利用者証明検証者).
    pub face_approved: bool,
    /// The attestation key (P-256 SubjectPublicKeyInfo DER), if the terminal has one.
    pub attestation_key: Option<Vec<u8>>,
}

impl core::fmt::Debug for Terminal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Terminal")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("face_approved", &self.face_approved)
            .field("has_attestation_key", &self.attestation_key.is_some())
            .finish()
    }
}

impl Terminal {
    /// Whether the terminal may register or check with face matching.
    pub fn may_use_face(&self) -> bool {
        self.face_approved && self.attestation_key.is_some()
    }
}

/// Why a certificate is refused (after the proof itself held together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertFailure {
    /// Not chained to a configured root (includes test cards at a production service).
    Untrusted,
    /// Not an authentication certificate.
    WrongType,
    /// Not yet valid.
    NotYetValid,
    /// Revoked, with the reason.
    Revoked(WireReason),
    /// No revocation answer could be had (fail closed).
    RevocationUnavailable,
}

/// A certificate that chains to a configured root (possibly expired: see `not_after`).
#[derive(Debug, Clone)]
pub struct CheckedCert {
    /// Root id and serial.
    pub card: CardKey,
    /// SHA-256 of the DER.
    pub cert_sha256: mynacard_registration::wire::Sha256Digest,
    /// End of validity, Unix seconds.
    pub not_after: i64,
}

/// Why a face proof is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaceFailure {
    /// Not ES256, or not made by the session's terminal.
    AttestationInvalid,
    /// The face did not match, or the card-presence signature fails.
    EvidenceInvalid,
}

impl FaceFailure {
    /// The protocol error code.
    pub fn code(self) -> ErrorCode {
        match self {
            FaceFailure::AttestationInvalid => ErrorCode::AttestationInvalid,
            FaceFailure::EvidenceInvalid => ErrorCode::FaceEvidenceInvalid,
        }
    }

    /// A message without personal data.
    pub fn message(self) -> &'static str {
        match self {
            FaceFailure::AttestationInvalid => "the terminal attestation does not verify",
            FaceFailure::EvidenceInvalid => "the face evidence does not hold",
        }
    }
}

/// A configuration of roots or CRLs that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustConfigError {
    /// A test root does not parse.
    #[error("test root {index} does not parse")]
    TestRoot {
        /// Position in the list.
        index: usize,
        /// The parser's error.
        #[source]
        source: mynacard_cert::ParseError,
    },
    /// The test roots were refused.
    #[error("test roots refused")]
    Trust(#[from] mynacard_cert::TrustError),
    /// A CRL does not parse.
    #[error("CRL {index} does not parse")]
    Crl {
        /// Position in the list.
        index: usize,
        /// The parser's error.
        #[source]
        source: mynacard_cert::CrlError,
    },
    /// A CRL is not signed by any configured root.
    #[error("CRL {index} is not issued by a configured root")]
    CrlIssuer {
        /// Position in the list.
        index: usize,
    },
}

struct CachedCert {
    cert: JpkiCertificate,
    key: Option<RsaPublicKey>,
    // Chain result, kept once a chain verified: root id, anchor index, leaf/root windows.
    chain: Option<CachedChain>,
}

#[derive(Clone)]
struct CachedChain {
    root_id: String,
    anchor: usize,
    valid_from: SystemTime,
    valid_to: SystemTime,
}

/// Most cached certificates; the cache is emptied when it fills (one RSA check to refill).
const CACHE_LIMIT: usize = 200_000;

/// Revocation from CRLs verified once when loaded, looked up by issuer and serial per request.
#[derive(Debug, Default)]
pub struct PreparedCrls {
    // (issuer anchor index, serial without leading zeros) → entry; plus each issuer's window.
    revoked: HashMap<(usize, Vec<u8>), mynacard_cert::RevokedEntry>,
    windows: HashMap<usize, (SystemTime, Option<SystemTime>)>,
    anchors: Vec<[u8; 32]>,
}

impl PreparedCrls {
    /// Verifies each CRL against the policy's anchors and indexes its entries.
    pub fn new(policy: &TrustPolicy, crls: &[Vec<u8>]) -> Result<Self, TrustConfigError> {
        let anchors: Vec<[u8; 32]> = policy
            .anchors()
            .iter()
            .map(|a| a.certificate().sha256_fingerprint())
            .collect();
        let mut out = PreparedCrls {
            anchors,
            ..PreparedCrls::default()
        };
        for (index, der) in crls.iter().enumerate() {
            let crl = Crl::from_der_or_pem(der)
                .map_err(|source| TrustConfigError::Crl { index, source })?;
            let issuer = policy
                .anchors()
                .iter()
                .position(|a| crl.verify_issued_by(a.certificate()).is_ok())
                .ok_or(TrustConfigError::CrlIssuer { index })?;
            let this_update = crl.this_update();
            // The newest CRL of an issuer replaces older ones.
            if out
                .windows
                .get(&issuer)
                .is_some_and(|(seen, _)| *seen >= this_update)
            {
                continue;
            }
            out.revoked.retain(|(i, _), _| *i != issuer);
            out.windows.insert(issuer, (this_update, crl.next_update()));
            for entry in crl.entries() {
                let serial = strip_zeros(&entry.serial).to_vec();
                out.revoked.insert((issuer, serial), entry);
            }
        }
        Ok(out)
    }

    fn anchor_index(&self, issuer: &JpkiCertificate) -> Option<usize> {
        let fp = issuer.sha256_fingerprint();
        self.anchors.iter().position(|a| *a == fp)
    }
}

impl RevocationSource for PreparedCrls {
    fn status(&self, query: &RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError> {
        let Some(issuer) = self.anchor_index(query.issuer) else {
            return Ok(unchecked_no_crl());
        };
        let Some((this_update, next_update)) = self.windows.get(&issuer) else {
            return Ok(unchecked_no_crl());
        };
        let serial = strip_zeros(query.certificate.serial()).to_vec();
        if let Some(entry) = self.revoked.get(&(issuer, serial))
            && entry.reason != Some(mynacard_cert::RevocationReason::RemoveFromCrl)
            && entry.date <= query.at
        {
            return Ok(RevocationStatus::Revoked {
                reason: entry.reason,
                date: entry.date,
            });
        }
        if next_update.is_some_and(|next| query.at > next) {
            return Err(RevocationError::new("the CRL is past its next update"));
        }
        Ok(RevocationStatus::Good {
            source: format!("CRL issued {}", mynacard_cert::format_rfc3339(*this_update)),
        })
    }
}

fn unchecked_no_crl() -> RevocationStatus {
    RevocationStatus::Unchecked {
        reason: mynacard_cert::UncheckedReason::NoCrlFromIssuer,
    }
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

/// Checks proofs and certificates.
pub struct Verifier {
    policy: TrustPolicy,
    root_names: Vec<String>,
    revocation: PreparedCrls,
    require_revocation: bool,
    cache: Mutex<HashMap<[u8; 32], Arc<CachedCert>>>,
}

impl core::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Verifier")
            .field("anchors", &self.policy.anchors().len())
            .field("test_hierarchy", &self.policy.accepts_test_hierarchy())
            .field("require_revocation", &self.require_revocation)
            .finish_non_exhaustive()
    }
}

/// The id under which registrations of a root's certificates are stored: the J-LIS file label
/// (`authca03`) for production roots, `test-` and the first 8 bytes of the root's SHA-256 for a
/// test root (stable whatever order the roots are configured in).
pub fn root_id(policy: &TrustPolicy, anchor: usize) -> String {
    match policy.anchors().get(anchor) {
        Some(a) if a.hierarchy() == Hierarchy::Production => a.label(),
        Some(a) => format!(
            "test-{}",
            hex::encode(&a.certificate().sha256_fingerprint()[..8])
        ),
        None => "unknown".to_owned(),
    }
}

fn to_unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

fn from_unix(secs: i64) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

fn wire_reason(reason: Option<mynacard_cert::RevocationReason>) -> WireReason {
    use mynacard_cert::RevocationReason as R;
    match reason {
        Some(R::KeyCompromise) => WireReason::KeyCompromise,
        Some(R::CaCompromise) => WireReason::CaCompromise,
        Some(R::AffiliationChanged) => WireReason::AffiliationChanged,
        Some(R::Superseded) => WireReason::Superseded,
        Some(R::CessationOfOperation) => WireReason::CessationOfOperation,
        Some(R::CertificateHold) => WireReason::CertificateHold,
        _ => WireReason::Unspecified,
    }
}

impl Verifier {
    /// A verifier over these roots and CRLs. With `require_revocation`, a certificate whose
    /// issuer has no current CRL is refused (`E_UPSTREAM_JLIS`) rather than taken as good.
    pub fn new(
        policy: TrustPolicy,
        crls: &[Vec<u8>],
        require_revocation: bool,
    ) -> Result<Self, TrustConfigError> {
        let revocation = PreparedCrls::new(&policy, crls)?;
        let root_names = (0..policy.anchors().len())
            .filter(|&i| {
                policy.anchors()[i].purpose() == Some(mynacard_cert::Purpose::Authentication)
            })
            .map(|i| root_id(&policy, i))
            .collect();
        Ok(Verifier {
            root_names,
            policy,
            revocation,
            require_revocation,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Production roots, or production plus the given `O=JPKI-TEST` roots.
    pub fn policy(test_roots: &[Vec<u8>]) -> Result<TrustPolicy, TrustConfigError> {
        if test_roots.is_empty() {
            return Ok(TrustPolicy::production());
        }
        let mut parsed = Vec::with_capacity(test_roots.len());
        for (index, der) in test_roots.iter().enumerate() {
            parsed.push(
                JpkiCertificate::from_der_or_pem(der)
                    .map_err(|source| TrustConfigError::TestRoot { index, source })?,
            );
        }
        Ok(TrustPolicy::production().allow_test_hierarchy(parsed)?)
    }

    /// Names of the authentication roots accepted, for the challenge.
    pub fn accepted_root_names(&self) -> Vec<String> {
        self.root_names.clone()
    }

    fn cached(&self, der: &[u8]) -> Result<Arc<CachedCert>, CertFailure> {
        let fp = mynacard_registration::wire::Sha256Digest::of(der).0;
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if let Some(hit) = cache.get(&fp) {
            return Ok(Arc::clone(hit));
        }
        drop(cache);
        let cert = JpkiCertificate::from_der(der).map_err(|_| CertFailure::Untrusted)?;
        let key = cert.rsa_public_key().ok();
        let entry = Arc::new(CachedCert {
            cert,
            key,
            chain: None,
        });
        cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        Ok(Arc::clone(cache.entry(fp).or_insert(entry)))
    }

    fn remember_chain(&self, der: &[u8], entry: &Arc<CachedCert>, chain: CachedChain) {
        let fp = mynacard_registration::wire::Sha256Digest::of(der).0;
        let updated = Arc::new(CachedCert {
            cert: entry.cert.clone(),
            key: entry.key.clone(),
            chain: Some(chain),
        });
        let mut cache = match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        };
        cache.insert(fp, updated);
    }

    /// Verifies the card's RSASSA-PKCS1-v1_5 signature over `digest_info` with the certificate's
    /// key.
    pub fn verify_card_signature(
        &self,
        cert_der: &[u8],
        digest_info: &[u8],
        signature: &[u8],
    ) -> Result<(), CertFailure> {
        let entry = self.cached(cert_der)?;
        let key = entry.key.as_ref().ok_or(CertFailure::Untrusted)?;
        let digest_info =
            mynacard_sign::DigestInfo::from_der(digest_info).map_err(|_| CertFailure::Untrusted)?;
        mynacard_sign::verify_pkcs1v15(key, &digest_info, signature)
            .map_err(|_| CertFailure::Untrusted)
    }

    /// Checks chain, kind, validity window and revocation at `now` (Unix seconds). An expired
    /// certificate whose chain held while it was valid is returned with its `not_after`, so
    /// that the point of use can apply the grace period.
    pub fn check_certificate(&self, cert_der: &[u8], now: i64) -> Result<CheckedCert, CertFailure> {
        let entry = self.cached(cert_der)?;
        let cert = &entry.cert;
        if cert.kind() != CertKind::Authentication {
            return Err(if cert.kind() == CertKind::Signing {
                CertFailure::WrongType
            } else {
                CertFailure::Untrusted
            });
        }
        let not_after = to_unix(cert.not_after());
        let at_now = from_unix(now);
        // Expired certificates are checked as of their last valid second.
        let at = if now > not_after {
            cert.not_after()
        } else {
            at_now
        };
        let chain = match &entry.chain {
            Some(chain) if at >= chain.valid_from && at <= chain.valid_to => chain.clone(),
            _ => {
                let verified = verify_chain(cert, &self.policy, at).map_err(|e| match e {
                    ChainError::NotYetValid { .. } => CertFailure::NotYetValid,
                    ChainError::KeyUsage { .. } | ChainError::PurposeMismatch { .. } => {
                        CertFailure::WrongType
                    }
                    _ => CertFailure::Untrusted,
                })?;
                let anchor = self
                    .policy
                    .anchors()
                    .iter()
                    .position(|a| a.certificate().sha256_fingerprint() == verified.root.sha256)
                    .ok_or(CertFailure::Untrusted)?;
                let root = self.policy.anchors()[anchor].certificate();
                let chain = CachedChain {
                    root_id: root_id(&self.policy, anchor),
                    anchor,
                    valid_from: cert.not_before().max(root.not_before()),
                    valid_to: cert.not_after().min(root.not_after()),
                };
                self.remember_chain(cert_der, &entry, chain.clone());
                chain
            }
        };
        let issuer = self.policy.anchors()[chain.anchor].certificate();
        let query = RevocationQuery {
            certificate: cert,
            issuer,
            at,
        };
        match self.revocation.status(&query) {
            Ok(RevocationStatus::Revoked { reason, .. }) => {
                return Err(CertFailure::Revoked(wire_reason(reason)));
            }
            Ok(RevocationStatus::Good { .. }) => {}
            Ok(_) | Err(_) => {
                if self.require_revocation {
                    return Err(CertFailure::RevocationUnavailable);
                }
            }
        }
        Ok(CheckedCert {
            card: CardKey {
                root_id: chain.root_id,
                serial: serial_from_bytes(cert.serial()),
            },
            cert_sha256: mynacard_registration::wire::Sha256Digest(cert.sha256_fingerprint()),
            not_after,
        })
    }

    /// Checks a face proof: the terminal's ES256 attestation over `JCS(face_evidence)`, a
    /// matching decision at or above the terminal's threshold, and the visual AP's presence
    /// signature over the intent with the card key.
    pub fn verify_face(
        &self,
        terminal: &Terminal,
        evidence: &FaceEvidence,
        attestation: &TerminalAttestation,
    ) -> Result<(), FaceFailure> {
        let key = terminal
            .attestation_key
            .as_ref()
            .ok_or(FaceFailure::AttestationInvalid)?;
        if attestation.alg != ATTESTATION_ALG_ES256 || attestation.terminal_id != terminal.id {
            return Err(FaceFailure::AttestationInvalid);
        }
        let signed = evidence
            .canonical_bytes()
            .map_err(|_| FaceFailure::AttestationInvalid)?;
        let verified = mynacard_registration::attestation::verify_es256(
            key,
            &signed,
            attestation.signature.as_slice(),
        );
        if !matches!(verified, Ok(true)) {
            return Err(FaceFailure::AttestationInvalid);
        }
        let face = &evidence.face_match;
        if face.decision != FaceDecision::Match || face.score_permille < face.threshold_permille {
            return Err(FaceFailure::EvidenceInvalid);
        }
        let digest_info = evidence
            .intent
            .signed_digest_info()
            .map_err(|_| FaceFailure::EvidenceInvalid)?;
        let card_key = parse_card_public_key(evidence.card_public_key.as_slice())
            .ok_or(FaceFailure::EvidenceInvalid)?;
        let digest_info = mynacard_sign::DigestInfo::from_der(&digest_info)
            .map_err(|_| FaceFailure::EvidenceInvalid)?;
        mynacard_sign::verify_pkcs1v15(
            &card_key,
            &digest_info,
            evidence.presence_signature.as_slice(),
        )
        .map_err(|_| FaceFailure::EvidenceInvalid)?;
        if evidence.card_face_digests.len() != 3 {
            return Err(FaceFailure::EvidenceInvalid);
        }
        let mut digests = [0u8; 96];
        for (slot, digest) in digests
            .chunks_exact_mut(32)
            .zip(&evidence.card_face_digests)
        {
            slot.copy_from_slice(digest.as_bytes());
        }
        card_key
            .verify(
                rsa::Pkcs1v15Sign::new_unprefixed(),
                &card_face_digest_info(&digests),
                evidence.card_face_signature.as_slice(),
            )
            .map_err(|_| FaceFailure::EvidenceInvalid)
    }
}

/// What the card-face record's signature (`DF28`) covers on real cards: a DigestInfo naming
/// SHA-256 whose digest field holds the three segment digests, 96 bytes, as they are (not hashed
/// again).
fn card_face_digest_info(digests: &[u8; 96]) -> [u8; 115] {
    // SEQUENCE (113) { SEQUENCE { OID id-sha256, NULL }, OCTET STRING (96) }.
    const PREFIX: [u8; 19] = [
        0x30, 0x71, 0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x60,
    ];
    let mut out = [0u8; 115];
    out[..19].copy_from_slice(&PREFIX);
    out[19..].copy_from_slice(digests);
    out
}

/// Largest card key accepted from the visual AP's public-key object.
const MAX_CARD_KEY_BITS: u32 = 4096;

/// Parses the visual AP's card public key, the `DF24` value `90 L exponent 91 L modulus`.
/// `None` for anything else (never panics on arbitrary bytes).
pub fn parse_card_public_key(bytes: &[u8]) -> Option<RsaPublicKey> {
    use mynacard_apdu::tlv::ber;
    let exponent = ber::find(bytes, 0x90).ok()??.value;
    let modulus = ber::find(bytes, 0x91).ok()??.value;
    let modulus = strip_zeros(modulus);
    let exponent = strip_zeros(exponent);
    if modulus.is_empty() || exponent.is_empty() || exponent.len() > 8 {
        return None;
    }
    let bits = u32::try_from(modulus.len() * 8).ok()?;
    if bits > MAX_CARD_KEY_BITS {
        return None;
    }
    let n = rsa::BoxedUint::from_be_slice(modulus, bits).ok()?;
    let e = rsa::BoxedUint::from_be_slice(exponent, 64).ok()?;
    RsaPublicKey::new(n, e).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn card_public_key_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse_card_public_key(&bytes);
        }
    }

    #[test]
    fn card_face_digest_info_is_der_with_the_digests_as_they_are() {
        let digests: [u8; 96] = core::array::from_fn(|i| i as u8);
        let info = card_face_digest_info(&digests);
        let (outer, rest) = mynacard_apdu::tlv::ber::parse_one(&info).unwrap();
        assert!(rest.is_empty());
        assert_eq!((outer.tag, outer.value.len()), (0x30, 113));
        let octets = mynacard_apdu::tlv::ber::find(outer.value, 0x04)
            .unwrap()
            .unwrap();
        assert_eq!(octets.value, &digests[..]);
        // The algorithm is SHA-256's: the same prefix as a one-digest DigestInfo bar the lengths.
        let one = mynacard_registration::intent::SHA256_DIGEST_INFO_PREFIX;
        assert_eq!(&info[2..17], &one[2..17]);
    }

    /// The card-face record signature is checked in the form real cards use; SHA-256 over the
    /// three digests (a form of this workspace's earlier simulator) is refused.
    #[test]
    fn face_evidence_needs_the_real_card_face_signature_form() {
        use mynacard_registration::attestation::SoftwareAttestationKey;
        use mynacard_registration::messages::{FaceMatch, Intent, Operation};
        use mynacard_registration::wire::{Bytes, Sha256Digest, UtcTime, V1};
        use rsa::Pkcs1v15Sign;
        use rsa::traits::PublicKeyParts;
        use sha2::{Digest, Sha256};

        let verifier =
            Verifier::new(mynacard_cert::TrustPolicy::production(), &[], false).expect("verifier");
        let attestation_key = SoftwareAttestationKey::for_testing("kiosk-face-form");
        let terminal = Terminal {
            id: "kiosk-face-form".into(),
            kind: "kiosk".into(),
            face_approved: true,
            attestation_key: Some(attestation_key.public_key_der().expect("spki")),
        };
        let card_key = mynacard_sim::pki::TestPki::shared()
            .expect("pki")
            .key("registry-face-signature-form")
            .expect("key");
        let tlv = |tag: u32, v: &[u8]| mynacard_apdu::tlv::ber::to_vec(tag, v).expect("tlv");
        let card_public_key = [
            tlv(0x90, &card_key.e_bytes()),
            tlv(0x91, &card_key.n_bytes()),
        ]
        .concat();
        let intent = Intent {
            v: V1,
            op: Operation::RegisterInsuranceUse,
            session_id: "ses_face_form".into(),
            nonce: Sha256Digest([9; 32]),
            terminal_id: terminal.id.clone(),
            consent_sha256: Sha256Digest([1; 32]),
            cert_sha256: Sha256Digest([2; 32]),
            signed_at: UtcTime::from_unix(1_775_035_805),
        };
        let presence = card_key
            .sign(
                Pkcs1v15Sign::new_unprefixed(),
                &intent.signed_digest_info().expect("digest info"),
            )
            .expect("sign");
        let digests = [
            Sha256Digest::of(b"DF22-DF24"),
            Sha256Digest::of(b"DF25-DF26"),
            Sha256Digest::of(b"DF27"),
        ];
        let mut covered = [0u8; 96];
        for (slot, d) in covered.chunks_exact_mut(32).zip(&digests) {
            slot.copy_from_slice(d.as_bytes());
        }
        let check = |face_signature: Vec<u8>| {
            let evidence = FaceEvidence {
                v: V1,
                intent: intent.clone(),
                card_face_digests: digests.to_vec(),
                card_face_signature: Bytes(face_signature),
                card_public_key: Bytes(card_public_key.clone()),
                cvc: Bytes(Vec::new()),
                presence_signature: Bytes(presence.clone()),
                face_match: FaceMatch {
                    decision: FaceDecision::Match,
                    score_permille: 950,
                    threshold_permille: 900,
                },
            };
            let attestation = TerminalAttestation {
                alg: ATTESTATION_ALG_ES256.to_owned(),
                terminal_id: terminal.id.clone(),
                signature: Bytes(attestation_key.sign(&evidence.canonical_bytes().expect("jcs"))),
            };
            verifier.verify_face(&terminal, &evidence, &attestation)
        };
        let real = card_key
            .sign(
                Pkcs1v15Sign::new_unprefixed(),
                &card_face_digest_info(&covered),
            )
            .expect("sign");
        assert_eq!(check(real), Ok(()));
        let hashed = card_key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(covered))
            .expect("sign");
        assert_eq!(check(hashed), Err(FaceFailure::EvidenceInvalid));
    }

    #[test]
    fn card_public_key_refuses_malformed_objects() {
        assert!(parse_card_public_key(&[]).is_none());
        assert!(parse_card_public_key(&[0x90, 0x03, 1, 0, 1]).is_none());
        assert!(parse_card_public_key(&[0x90, 0x03, 1, 0, 1, 0x91, 0x00]).is_none());
        assert!(parse_card_public_key(&[0x90, 0x03, 1, 0, 1, 0x91, 0x05, 1]).is_none());
    }
}
