//! Verification of proofs: the card's signature, the certificate's chain, validity, kind and
//! revocation, and for face registration the terminal's attestation and the card's evidence.
//!
//! Chains are checked by `mynacard-cert` (production J-LIS roots by default; the `O=JPKI-TEST`
//! roots of the simulated card only when the operator allows them), signatures by
//! `mynacard-sign` (RSASSA-PKCS1-v1_5 over a DigestInfo). Trust comes before work: a
//! certificate's size and key size are bounded ([`MAX_CERT_DER_LEN`], [`MIN_KEY_BITS`],
//! [`MAX_KEY_BITS`]) and its chain verified before its key is used for anything. Only
//! certificates whose chain verified are cached, by the SHA-256 of the DER
//! ([`TRUSTED_CACHE_LIMIT`]), so a card seen again costs one signature check; validity and
//! revocation are still decided per request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mynacard_card::CardPublicKey;
use mynacard_card::cvc::{CvCertificate, CvcScope, CvcTrust};
use mynacard_cert::digest_info::card_face;
use mynacard_cert::{
    CertKind, ChainError, Crl, Hierarchy, JpkiCertificate, RevocationError, RevocationQuery,
    RevocationSource, RevocationStatus, TrustPolicy, verify_chain,
};
use mynacard_protocol::errors::{ErrorCode, RevocationReason as WireReason};
use mynacard_protocol::messages::{
    ATTESTATION_ALG_ES256, FaceDecision, FaceEvidence, TerminalAttestation,
};
use mynacard_protocol::wire::Sha256Digest;
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
    pub cert_sha256: mynacard_protocol::wire::Sha256Digest,
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

/// A certificate proven to chain to a configured root, with its key: the only kind the cache
/// keeps, so that what a client invents costs one parse and one chain check and is then
/// forgotten.
pub struct TrustedCert {
    cert: JpkiCertificate,
    // Of the DER, kept so that a proof hashes its certificate once.
    sha256: Sha256Digest,
    key: RsaPublicKey,
    chain: CachedChain,
}

impl core::fmt::Debug for TrustedCert {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TrustedCert")
            .field("root_id", &self.chain.root_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct CachedChain {
    root_id: String,
    anchor: usize,
    valid_from: SystemTime,
    valid_to: SystemTime,
}

/// A certificate's DER with its SHA-256, hashed once when made: what a proof compares with its
/// intent is also the certificate cache's key.
#[derive(Debug, Clone, Copy)]
pub struct HashedDer<'a> {
    der: &'a [u8],
    sha256: Sha256Digest,
}

impl<'a> HashedDer<'a> {
    /// Hashes `der`.
    pub fn new(der: &'a [u8]) -> Self {
        HashedDer {
            der,
            sha256: Sha256Digest::of(der),
        }
    }

    /// The DER.
    pub fn der(&self) -> &'a [u8] {
        self.der
    }

    /// SHA-256 of the DER.
    pub fn sha256(&self) -> &Sha256Digest {
        &self.sha256
    }
}

/// Largest certificate accepted, DER bytes. A JPKI authentication certificate is about 1.5 KB;
/// anything much larger is not one, and is refused before it is parsed.
pub const MAX_CERT_DER_LEN: usize = 8 * 1024;

/// Smallest card key accepted, in bits (JPKI card keys are 2048-bit RSA).
pub const MIN_KEY_BITS: usize = 2048;

/// Largest card key accepted, in bits: the card crate's bound ([`CardPublicKey::MAX_MODULUS_BITS`]),
/// so that no certificate makes a signature check arbitrarily slow.
pub const MAX_KEY_BITS: usize = CardPublicKey::MAX_MODULUS_BITS;

/// Most trusted certificates cached; the cache is emptied when it fills (each card then costs
/// one chain check again). A few KB an entry (the parsed certificate and its key): tens of MB
/// at most.
pub const TRUSTED_CACHE_LIMIT: usize = 10_000;

/// Why a certificate is refused before its chain is checked: nothing here verifies a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inadmissible {
    /// Over [`MAX_CERT_DER_LEN`].
    TooLarge,
    /// Not a certificate, or no RSA key.
    Malformed,
    /// The key is under [`MIN_KEY_BITS`] or over [`MAX_KEY_BITS`].
    KeySize,
}

/// Parses a certificate and its key within the size bounds, without any signature check.
fn admit(der: &[u8]) -> Result<(JpkiCertificate, RsaPublicKey), Inadmissible> {
    if der.len() > MAX_CERT_DER_LEN {
        return Err(Inadmissible::TooLarge);
    }
    let cert = JpkiCertificate::from_der(der).map_err(|_| Inadmissible::Malformed)?;
    let key = cert.rsa_public_key().map_err(|_| Inadmissible::Malformed)?;
    let bits = rsa::traits::PublicKeyParts::size(&key) * 8;
    if !(MIN_KEY_BITS..=MAX_KEY_BITS).contains(&bits) {
        return Err(Inadmissible::KeySize);
    }
    Ok((cert, key))
}

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

    /// Revocation of `certificate` at `at` by the CRL of the policy's anchor `issuer` (an index
    /// into its anchors): for a chain already verified, whose root is known, so the issuer is
    /// not hashed again to find it.
    fn status_by_anchor(
        &self,
        issuer: usize,
        certificate: &JpkiCertificate,
        at: SystemTime,
    ) -> Result<RevocationStatus, RevocationError> {
        let Some((this_update, next_update)) = self.windows.get(&issuer) else {
            return Ok(unchecked_no_crl());
        };
        let serial = strip_zeros(certificate.serial()).to_vec();
        if let Some(entry) = self.revoked.get(&(issuer, serial))
            && entry.reason != Some(mynacard_cert::RevocationReason::RemoveFromCrl)
            && entry.date <= at
        {
            return Ok(RevocationStatus::Revoked {
                reason: entry.reason,
                date: entry.date,
            });
        }
        if next_update.is_some_and(|next| at > next) {
            return Err(RevocationError::new("the CRL is past its next update"));
        }
        Ok(RevocationStatus::Good {
            source: format!("CRL issued {}", mynacard_cert::format_rfc3339(*this_update)),
        })
    }
}

impl RevocationSource for PreparedCrls {
    fn status(&self, query: &RevocationQuery<'_>) -> Result<RevocationStatus, RevocationError> {
        match self.anchor_index(query.issuer) {
            Some(issuer) => self.status_by_anchor(issuer, query.certificate, query.at),
            None => Ok(unchecked_no_crl()),
        }
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
    cvc_trust: CvcTrust,
    root_names: Vec<String>,
    revocation: PreparedCrls,
    require_revocation: bool,
    // Only certificates whose chain verified, by the SHA-256 of their DER.
    cache: Mutex<HashMap<[u8; 32], Arc<TrustedCert>>>,
    // Signature verifications done (chains and card signatures), for tests of what is refused
    // before any.
    signature_checks: AtomicU64,
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

/// When a certificate is checked: `now`, or for an expired one its last valid second.
fn check_time(cert: &JpkiCertificate, now: i64) -> SystemTime {
    if now > to_unix(cert.not_after()) {
        cert.not_after()
    } else {
        from_unix(now)
    }
}

/// The JPKI's reasons as they are; any other (or none) as `unspecified` (protocol §8.2).
fn wire_reason(reason: Option<mynacard_cert::RevocationReason>) -> WireReason {
    match reason {
        Some(r) if r.is_jpki() => r,
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
            cvc_trust: CvcTrust::production(),
            revocation,
            require_revocation,
            cache: Mutex::new(HashMap::new()),
            signature_checks: AtomicU64::new(0),
        })
    }

    /// Accepts visual AP certificates issued by these authorities (by default the J-LIS
    /// production one only).
    #[must_use]
    pub fn with_cvc_trust(mut self, trust: CvcTrust) -> Self {
        self.cvc_trust = trust;
        self
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

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<TrustedCert>>> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        }
    }

    /// The certificate, if it is an authentication certificate within the size bounds that
    /// chains to a configured root at `now` (Unix seconds; an expired one as of its last valid
    /// second). Trust comes before work: its key is used for nothing until then, and only a
    /// certificate that passed is cached.
    pub fn trusted_certificate(
        &self,
        cert: HashedDer<'_>,
        now: i64,
    ) -> Result<Arc<TrustedCert>, CertFailure> {
        let cert_der = cert.der();
        if cert_der.len() > MAX_CERT_DER_LEN {
            return Err(CertFailure::Untrusted);
        }
        let sha256 = *cert.sha256();
        let fp = sha256.0;
        let hit = self.lock_cache().get(&fp).map(Arc::clone);
        if let Some(hit) = hit {
            let at = check_time(&hit.cert, now);
            if at >= hit.chain.valid_from && at <= hit.chain.valid_to {
                return Ok(hit);
            }
        }
        let (cert, key) = admit(cert_der).map_err(|_| CertFailure::Untrusted)?;
        if cert.kind() != CertKind::Authentication {
            return Err(if cert.kind() == CertKind::Signing {
                CertFailure::WrongType
            } else {
                CertFailure::Untrusted
            });
        }
        let at = check_time(&cert, now);
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        let verified = verify_chain(&cert, &self.policy, at).map_err(|e| match e {
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
        let trusted = Arc::new(TrustedCert {
            cert,
            sha256,
            key,
            chain,
        });
        let mut cache = self.lock_cache();
        if cache.len() >= TRUSTED_CACHE_LIMIT && !cache.contains_key(&fp) {
            cache.clear();
        }
        cache.insert(fp, Arc::clone(&trusted));
        Ok(trusted)
    }

    /// Verifies the card's RSASSA-PKCS1-v1_5 signature over `digest_info` with the key of a
    /// certificate already proven trusted ([`Self::trusted_certificate`]).
    pub fn verify_card_signature(
        &self,
        trusted: &TrustedCert,
        digest_info: &[u8],
        signature: &[u8],
    ) -> Result<(), CertFailure> {
        let digest_info =
            mynacard_sign::DigestInfo::from_der(digest_info).map_err(|_| CertFailure::Untrusted)?;
        self.signature_checks.fetch_add(1, Ordering::Relaxed);
        mynacard_sign::verify_pkcs1v15(&trusted.key, &digest_info, signature)
            .map_err(|_| CertFailure::Untrusted)
    }

    /// Checks chain, kind, validity window and revocation at `now` (Unix seconds). An expired
    /// certificate whose chain held while it was valid is returned with its `not_after`, so
    /// that the point of use can apply the grace period.
    pub fn check_certificate(&self, cert_der: &[u8], now: i64) -> Result<CheckedCert, CertFailure> {
        let trusted = self.trusted_certificate(HashedDer::new(cert_der), now)?;
        self.check_revocation(&trusted, now)
    }

    /// Revocation of a trusted certificate at `now` (Unix seconds; an expired one as of its
    /// last valid second), and what is stored of it.
    pub fn check_revocation(
        &self,
        trusted: &TrustedCert,
        now: i64,
    ) -> Result<CheckedCert, CertFailure> {
        let cert = &trusted.cert;
        let chain = &trusted.chain;
        let not_after = to_unix(cert.not_after());
        let at = check_time(cert, now);
        match self.revocation.status_by_anchor(chain.anchor, cert, at) {
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
                root_id: chain.root_id.clone(),
                serial: serial_from_bytes(cert.serial()),
            },
            cert_sha256: trusted.sha256,
            not_after,
        })
    }

    /// Checks a face proof: the terminal's ES256 attestation over `JCS(face_evidence)`, a
    /// matching decision at or above the terminal's threshold, the visual AP's certificate under
    /// the J-LIS visual AP authority, the card-face signature under the key that certificate
    /// certifies, that the signed record covers the card key, and the presence signature over
    /// the intent with that card key. The covered segment (birth date, sex) is used here, in
    /// memory, and nowhere else.
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
        let verified = mynacard_protocol::attestation::verify_es256(
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
        // Trust before work: the certificate must come from a trusted authority before any key
        // it or the terminal names is used.
        let cvc = CvCertificate::parse(evidence.cvc.as_slice())
            .map_err(|_| FaceFailure::EvidenceInvalid)?;
        self.cvc_trust
            .verify(&cvc, CvcScope::Visual)
            .map_err(|_| FaceFailure::EvidenceInvalid)?;
        if evidence.card_face_digests.len() != 3 {
            return Err(FaceFailure::EvidenceInvalid);
        }
        let mut digests = [0u8; card_face::DIGESTS_LEN];
        for (slot, digest) in digests
            .chunks_exact_mut(32)
            .zip(&evidence.card_face_digests)
        {
            slot.copy_from_slice(digest.as_bytes());
        }
        record_key(&cvc)?
            .verify(
                rsa::Pkcs1v15Sign::new_unprefixed(),
                &card_face::digest_info(&digests),
                evidence.card_face_signature.as_slice(),
            )
            .map_err(|_| FaceFailure::EvidenceInvalid)?;
        // The signed first segment covers exactly this card key.
        let covered = evidence.card_face_covered.as_slice();
        if mynacard_protocol::wire::Sha256Digest::of(covered).0 != digests[..32]
            || covered_card_key(covered) != Some(evidence.card_public_key.as_slice())
        {
            return Err(FaceFailure::EvidenceInvalid);
        }
        let card_key = parse_card_public_key(evidence.card_public_key.as_slice())
            .ok_or(FaceFailure::EvidenceInvalid)?;
        let digest_info = evidence
            .intent
            .signed_digest_info()
            .map_err(|_| FaceFailure::EvidenceInvalid)?;
        let digest_info = mynacard_sign::DigestInfo::from_der(&digest_info)
            .map_err(|_| FaceFailure::EvidenceInvalid)?;
        mynacard_sign::verify_pkcs1v15(
            &card_key,
            &digest_info,
            evidence.presence_signature.as_slice(),
        )
        .map_err(|_| FaceFailure::EvidenceInvalid)
    }
}

/// The key a verified CVC certifies, as an RSA key of at most
/// [`CardPublicKey::MAX_MODULUS_BITS`].
fn record_key(cvc: &CvCertificate) -> Result<RsaPublicKey, FaceFailure> {
    let key = cvc.public_key.rsa();
    if rsa::traits::PublicKeyParts::size(key) * 8 > CardPublicKey::MAX_MODULUS_BITS {
        return Err(FaceFailure::EvidenceInvalid);
    }
    Ok(key.clone())
}

/// The `DF24` value of the first signed segment (`DF22 · DF23 · DF24`, in that order and
/// nothing else), or `None` when the segment has another shape.
fn covered_card_key(covered: &[u8]) -> Option<&[u8]> {
    use mynacard_apdu::tlv::ber;
    let objects = ber::parse_all(covered).ok()?;
    match objects.as_slice() {
        [a, b, c] if a.tag == 0xDF22 && b.tag == 0xDF23 && c.tag == 0xDF24 => Some(c.value),
        _ => None,
    }
}

/// Parses the visual AP's card public key, the `DF24` value `90 L exponent 91 L modulus`, with
/// the card crate's parser ([`CardPublicKey::from_card_objects`], at most
/// [`CardPublicKey::MAX_MODULUS_BITS`]). `None` for anything else (never panics on arbitrary
/// bytes).
pub fn parse_card_public_key(bytes: &[u8]) -> Option<RsaPublicKey> {
    CardPublicKey::from_card_objects(bytes)
        .ok()
        .map(|key| key.rsa().clone())
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

    /// A face proof as a card makes it: the record signed by the key the visual AP's CVC
    /// certifies, the presence by the card key the record covers.
    struct FaceCase {
        terminal: Terminal,
        attestation_key: mynacard_protocol::attestation::SoftwareAttestationKey,
        intent: mynacard_protocol::messages::Intent,
        card_key: rsa::PrivateKey,
        record_key: rsa::PrivateKey,
        #[cfg_attr(not(feature = "dev-sim"), allow(dead_code))]
        other_key: rsa::PrivateKey,
        cvc: Vec<u8>,
    }

    /// What a face proof varies in the cases below.
    struct Variant<'a> {
        face_signer: &'a rsa::PrivateKey,
        digest_info: fn(&[u8; 96]) -> Vec<u8>,
        covered_key: &'a rsa::PrivateKey,
        presented_key: &'a rsa::PrivateKey,
        cvc: &'a [u8],
        send_covered: bool,
    }

    fn key_objects(key: &rsa::PrivateKey) -> Vec<u8> {
        use rsa::traits::PublicKeyParts;
        let tlv = |tag: u32, v: &[u8]| mynacard_apdu::tlv::ber::to_vec(tag, v).expect("tlv");
        [tlv(0x90, &key.e_bytes()), tlv(0x91, &key.n_bytes())].concat()
    }

    impl FaceCase {
        fn new() -> FaceCase {
            use mynacard_protocol::attestation::SoftwareAttestationKey;
            use mynacard_protocol::messages::{Intent, Operation};
            use mynacard_protocol::wire::{Sha256Digest, UtcTime, V1};
            use mynacard_sim::cvc::{CvcRole, ef_cvc, subject_id};
            let pki = mynacard_sim::pki::TestPki::shared().expect("pki");
            let key = |label: &str| pki.key(label).expect("key");
            let record_key = key("registry-face/record");
            let cvc = ef_cvc(
                &CvcRole::Visual.authority_id(),
                &subject_id(CvcRole::Visual, "13221"),
                &record_key,
                &pki.cvc_authority_key(CvcRole::Visual).expect("authority"),
            );
            let attestation_key = SoftwareAttestationKey::for_testing("kiosk-face-form");
            let terminal = Terminal {
                id: "kiosk-face-form".into(),
                kind: "kiosk".into(),
                face_approved: true,
                attestation_key: Some(attestation_key.public_key_der().expect("spki")),
            };
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
            FaceCase {
                terminal,
                attestation_key,
                intent,
                card_key: key("registry-face/card"),
                record_key,
                other_key: key("registry-face/other"),
                cvc,
            }
        }

        fn honest(&self) -> Variant<'_> {
            Variant {
                face_signer: &self.record_key,
                digest_info: |d| card_face::digest_info(d).to_vec(),
                covered_key: &self.card_key,
                presented_key: &self.card_key,
                cvc: &self.cvc,
                send_covered: true,
            }
        }

        fn check(&self, verifier: &Verifier, v: &Variant<'_>) -> Result<(), FaceFailure> {
            use mynacard_protocol::messages::FaceMatch;
            use mynacard_protocol::wire::{Bytes, Sha256Digest, V1};
            use rsa::Pkcs1v15Sign;
            let tlv = |tag: u32, v: &[u8]| mynacard_apdu::tlv::ber::to_vec(tag, v).expect("tlv");
            let covered = [
                tlv(0xDF22, b"19800217"),
                tlv(0xDF23, b"1"),
                tlv(0xDF24, &key_objects(v.covered_key)),
            ]
            .concat();
            let digests = [
                Sha256Digest::of(&covered),
                Sha256Digest::of(b"DF25-DF26"),
                Sha256Digest::of(b"DF27"),
            ];
            let mut all = [0u8; 96];
            for (slot, d) in all.chunks_exact_mut(32).zip(&digests) {
                slot.copy_from_slice(d.as_bytes());
            }
            let sign = |key: &rsa::PrivateKey, encoded: &[u8]| {
                key.sign(Pkcs1v15Sign::new_unprefixed(), encoded)
                    .expect("sign")
            };
            let presence = sign(
                v.presented_key,
                &self.intent.signed_digest_info().expect("digest info"),
            );
            let evidence = FaceEvidence {
                v: V1,
                intent: self.intent.clone(),
                card_face_digests: digests.to_vec(),
                card_face_covered: Bytes(if v.send_covered { covered } else { Vec::new() }),
                card_face_signature: Bytes(sign(v.face_signer, &(v.digest_info)(&all))),
                card_public_key: Bytes(key_objects(v.presented_key)),
                cvc: Bytes(v.cvc.to_vec()),
                presence_signature: Bytes(presence),
                face_match: FaceMatch {
                    decision: FaceDecision::Match,
                    score_permille: 950,
                    threshold_permille: 900,
                },
            };
            let attestation = TerminalAttestation {
                alg: ATTESTATION_ALG_ES256.to_owned(),
                terminal_id: self.terminal.id.clone(),
                signature: Bytes(
                    self.attestation_key
                        .sign(&evidence.canonical_bytes().expect("jcs")),
                ),
            };
            verifier.verify_face(&self.terminal, &evidence, &attestation)
        }
    }

    // The simulator's CVC trust is the library's own (feature `dev-sim`).
    #[cfg(feature = "dev-sim")]
    fn test_verifier() -> Verifier {
        Verifier::new(mynacard_cert::TrustPolicy::production(), &[], false)
            .expect("verifier")
            .with_cvc_trust(crate::options::simulator_cvc_trust().expect("trust"))
    }

    /// The card-face record signature is checked in the form real cards use, under the key the
    /// CVC certifies; SHA-256 over the three digests (a form of this workspace's earlier
    /// simulator) is refused.
    #[cfg(feature = "dev-sim")]
    #[test]
    fn face_evidence_needs_the_real_card_face_signature_form() {
        use mynacard_cert::digest_info::{sha256, sha256_digest_info};
        let case = FaceCase::new();
        let verifier = test_verifier();
        assert_eq!(case.check(&verifier, &case.honest()), Ok(()));
        let hashed = Variant {
            digest_info: |d| sha256_digest_info(&sha256(d)).to_vec(),
            ..case.honest()
        };
        assert_eq!(
            case.check(&verifier, &hashed),
            Err(FaceFailure::EvidenceInvalid)
        );
    }

    /// A real card's `DF28` does not verify under `DF24`: a record signed by the card key, or
    /// a proof whose card key is not the one the record covers, is refused.
    #[cfg(feature = "dev-sim")]
    #[test]
    fn face_evidence_binds_the_record_key_and_the_covered_card_key() {
        let case = FaceCase::new();
        let verifier = test_verifier();
        let refused = |v: Variant<'_>| {
            assert_eq!(case.check(&verifier, &v), Err(FaceFailure::EvidenceInvalid));
        };
        // DF28 made with the card key (the old simulator's form).
        refused(Variant {
            face_signer: &case.card_key,
            ..case.honest()
        });
        // DF24 swapped: another key answers the presence challenge.
        refused(Variant {
            presented_key: &case.other_key,
            ..case.honest()
        });
        // The record covers another key than the one that answered.
        refused(Variant {
            covered_key: &case.other_key,
            ..case.honest()
        });
        // A client before revision 1.2 sends no covered segment.
        refused(Variant {
            send_covered: false,
            ..case.honest()
        });
        // No certificate, or one with a changed byte.
        refused(Variant {
            cvc: &[],
            ..case.honest()
        });
        let mut tampered = case.cvc.clone();
        tampered[40] ^= 1;
        refused(Variant {
            cvc: &tampered,
            ..case.honest()
        });
    }

    /// A production-configured service trusts the J-LIS production authority only: a
    /// certificate of the test hierarchy (here the simulator's) is refused.
    #[test]
    fn face_evidence_with_a_test_certificate_is_refused_in_production() {
        let case = FaceCase::new();
        let production =
            Verifier::new(mynacard_cert::TrustPolicy::production(), &[], false).expect("verifier");
        assert_eq!(
            case.check(&production, &case.honest()),
            Err(FaceFailure::EvidenceInvalid)
        );
        let jlis_test_only = Verifier::new(mynacard_cert::TrustPolicy::production(), &[], false)
            .expect("verifier")
            .with_cvc_trust(mynacard_card::CvcTrust::production().allow_test_hierarchy());
        assert_eq!(
            case.check(&jlis_test_only, &case.honest()),
            Err(FaceFailure::EvidenceInvalid)
        );
    }

    /// A verifier over the simulator's authentication root, and a real card's certificate with
    /// a time inside its validity.
    #[cfg(feature = "test-kit")]
    fn simulator_case() -> (Verifier, Vec<u8>, i64) {
        use mynacard_sim::pki::{CaKind, TestPki};
        let root = TestPki::shared()
            .expect("pki")
            .root_der(CaKind::Auth)
            .to_vec();
        let verifier = Verifier::new(Verifier::policy(&[root]).expect("policy"), &[], false)
            .expect("verifier");
        let image = mynacard_sim::image::CardImage::from_profile_name("adult").expect("profile");
        let cert = image.auth.cert_der;
        let parsed = JpkiCertificate::from_der(&cert).expect("parses");
        let now = to_unix(parsed.not_before()) + 86_400;
        (verifier, cert, now)
    }

    #[cfg(feature = "test-kit")]
    fn checks(verifier: &Verifier) -> u64 {
        verifier.signature_checks.load(Ordering::Relaxed)
    }

    /// An 8,192-bit (or 1,024-bit) card key is refused before any signature is checked, and
    /// leaves nothing in the cache; a real card's certificate costs one chain check, once.
    #[cfg(feature = "test-kit")]
    #[test]
    fn key_size_is_refused_before_any_signature_check() {
        use crate::test_kit::forge;
        let (verifier, real, now) = simulator_case();
        for bits in [8192, 1024] {
            let odd = forge::with_rsa_key(&real, &forge::modulus(bits));
            assert_eq!(
                admit(&odd).map(|_| ()),
                Err(Inadmissible::KeySize),
                "{bits}"
            );
            assert_eq!(
                verifier.check_certificate(&odd, now).map(|_| ()),
                Err(CertFailure::Untrusted)
            );
        }
        assert_eq!(checks(&verifier), 0);
        assert!(verifier.lock_cache().is_empty());
        // The real certificate: one chain check, then cached.
        assert!(verifier.check_certificate(&real, now).is_ok());
        assert!(verifier.check_certificate(&real, now).is_ok());
        assert_eq!(checks(&verifier), 1);
        assert_eq!(verifier.lock_cache().len(), 1);
    }

    /// A certificate over the size bound is refused unparsed; a forged one within it costs one
    /// chain check each time and is not cached.
    #[cfg(feature = "test-kit")]
    #[test]
    fn untrusted_certificates_are_not_cached() {
        use crate::test_kit::forge;
        let (verifier, real, now) = simulator_case();
        let large = forge::with_filler(&real, MAX_CERT_DER_LEN, 1);
        assert_eq!(admit(&large).map(|_| ()), Err(Inadmissible::TooLarge));
        assert_eq!(
            verifier.check_certificate(&large, now).map(|_| ()),
            Err(CertFailure::Untrusted)
        );
        assert_eq!(checks(&verifier), 0);
        for salt in 0..3 {
            let forged = forge::with_filler(&real, 2_000, salt);
            assert!(admit(&forged).is_ok(), "a forged certificate still parses");
            assert_eq!(
                verifier.check_certificate(&forged, now).map(|_| ()),
                Err(CertFailure::Untrusted)
            );
        }
        assert_eq!(checks(&verifier), 3);
        assert!(verifier.lock_cache().is_empty());
    }

    #[test]
    fn card_public_key_refuses_malformed_objects() {
        assert!(parse_card_public_key(&[]).is_none());
        assert!(parse_card_public_key(&[0x90, 0x03, 1, 0, 1]).is_none());
        assert!(parse_card_public_key(&[0x90, 0x03, 1, 0, 1, 0x91, 0x00]).is_none());
        assert!(parse_card_public_key(&[0x90, 0x03, 1, 0, 1, 0x91, 0x05, 1]).is_none());
    }
}
