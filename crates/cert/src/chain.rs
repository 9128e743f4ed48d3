//! Chain verification: JPKI leaves are issued directly by a root, so a chain is leaf → anchor.

use std::{sync::Arc, time::SystemTime};

use der::oid::ObjectIdentifier;

use crate::{
    certificate::JpkiCertificate,
    kind::{Hierarchy, Purpose},
    revocation::{RevocationQuery, RevocationSource, RevocationStatus, UncheckedReason},
    sigalg::{self, SignatureError},
    time::format_rfc3339,
    trust::{TrustAnchor, TrustPolicy},
};

/// The root a certificate chained to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRoot {
    /// `signca03`, `authca01`, … for J-LIS roots; `test-root-N` for caller-supplied test roots.
    pub label: String,
    /// Production or test.
    pub hierarchy: Hierarchy,
    /// What the root issues.
    pub purpose: Option<Purpose>,
    /// J-LIS generation (1–3); `None` for test roots.
    pub generation: Option<u8>,
    /// SHA-256 of the root's DER.
    pub sha256: [u8; 32],
    /// The root's subject (shared by all generations of one kind).
    pub subject: String,
}

/// A certificate that chains to a trusted root at the given time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedChain {
    /// The matched root.
    pub root: MatchedRoot,
    /// The time the chain was checked at.
    pub at: SystemTime,
    /// True when the certificate is itself one of the anchors.
    pub certificate_is_anchor: bool,
    anchor_index: usize,
}

/// Why a certificate is not trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The certificate claims the `O=JPKI-TEST` hierarchy and the policy does not accept it.
    #[error("test-hierarchy (O=JPKI-TEST) certificate, and the test hierarchy was not allowed")]
    TestHierarchyNotAccepted,
    /// No anchor carries the issuer's name.
    #[error("no trusted root named {issuer}")]
    UnknownIssuer {
        /// The certificate's issuer.
        issuer: String,
    },
    /// Anchors with the issuer's name exist, but none of their keys made the signature: the
    /// certificate was signed by some other key under a borrowed name, or altered.
    #[error("signature does not verify with any of the {candidates} trusted roots named {issuer}")]
    SignatureMismatch {
        /// The certificate's issuer.
        issuer: String,
        /// How many anchors carry that name.
        candidates: usize,
        /// The failure against the last candidate.
        #[source]
        source: SignatureError,
    },
    /// The certificate's validity starts after the verification time.
    #[error("not valid until {}", format_rfc3339(*.not_before))]
    NotYetValid {
        /// Start of validity.
        not_before: SystemTime,
    },
    /// The certificate's validity ended before the verification time.
    #[error("expired at {}", format_rfc3339(*.not_after))]
    Expired {
        /// End of validity.
        not_after: SystemTime,
    },
    /// The matched root was not valid at the verification time.
    #[error("root {label} is not valid at the verification time")]
    RootNotValid {
        /// The root's label.
        label: String,
    },
    /// The matched root is not marked as a CA allowed to sign certificates.
    #[error("root {label} is not a CA allowed to sign certificates")]
    RootCannotSignCertificates {
        /// The root's label.
        label: String,
    },
    /// An end-entity certificate is marked as a CA.
    #[error("end-entity certificate is marked as a CA")]
    EndEntityIsCa,
    /// The key usage lacks a bit this kind of certificate needs, or is absent.
    #[error("key usage does not allow {required}")]
    KeyUsage {
        /// The missing bit.
        required: &'static str,
    },
    /// The certificate's kind does not match what its root issues.
    #[error("a {certificate} certificate under a root that issues {root} certificates")]
    PurposeMismatch {
        /// What the root issues.
        root: &'static str,
        /// What the certificate is.
        certificate: &'static str,
    },
    /// A critical extension this verifier does not process.
    #[error("unhandled critical extension {0}")]
    UnhandledCriticalExtension(ObjectIdentifier),
}

// Extensions this verifier reads, or that constrain nothing it relies on.
const HANDLED_EXTENSIONS: [ObjectIdentifier; 8] = [
    ObjectIdentifier::new_unwrap("2.5.29.15"), // keyUsage
    ObjectIdentifier::new_unwrap("2.5.29.19"), // basicConstraints
    ObjectIdentifier::new_unwrap("2.5.29.17"), // subjectAltName
    ObjectIdentifier::new_unwrap("2.5.29.18"), // issuerAltName
    ObjectIdentifier::new_unwrap("2.5.29.32"), // certificatePolicies
    ObjectIdentifier::new_unwrap("2.5.29.35"), // authorityKeyIdentifier
    ObjectIdentifier::new_unwrap("2.5.29.14"), // subjectKeyIdentifier
    ObjectIdentifier::new_unwrap("2.5.29.31"), // cRLDistributionPoints
];

fn check_critical_extensions(cert: &JpkiCertificate) -> Result<(), ChainError> {
    let extensions = cert.x509().tbs_certificate().extensions();
    for ext in extensions.into_iter().flatten() {
        if ext.critical && !HANDLED_EXTENSIONS.contains(&ext.extn_id) {
            return Err(ChainError::UnhandledCriticalExtension(ext.extn_id));
        }
    }
    Ok(())
}

fn check_validity(cert: &JpkiCertificate, at: SystemTime) -> Result<(), ChainError> {
    if at < cert.not_before() {
        return Err(ChainError::NotYetValid {
            not_before: cert.not_before(),
        });
    }
    if at > cert.not_after() {
        return Err(ChainError::Expired {
            not_after: cert.not_after(),
        });
    }
    Ok(())
}

fn matched(anchor: &TrustAnchor, at: SystemTime, index: usize, is_anchor: bool) -> VerifiedChain {
    VerifiedChain {
        root: MatchedRoot {
            label: anchor.label(),
            hierarchy: anchor.hierarchy(),
            purpose: anchor.purpose(),
            generation: anchor.generation(),
            sha256: anchor.certificate().sha256_fingerprint(),
            subject: anchor.certificate().subject_text(),
        },
        at,
        certificate_is_anchor: is_anchor,
        anchor_index: index,
    }
}

/// The anchor of `policy` whose key made `cert`'s signature, found by name then signature, with
/// no check of time, usage or hierarchy opt-in. For display ("issued under signca02"); it is not
/// a trust decision — use [`verify_chain`] for that.
pub fn identify_issuer(cert: &JpkiCertificate, policy: &TrustPolicy) -> Option<MatchedRoot> {
    let anchors = policy.anchors();
    if let Some(index) = anchors.iter().position(|a| a.certificate() == cert) {
        return Some(matched(&anchors[index], SystemTime::UNIX_EPOCH, index, true).root);
    }
    let parts = sigalg::split_signed(cert.der()).ok()?;
    anchors.iter().enumerate().find_map(|(i, a)| {
        let root = a.certificate();
        (root.subject() == cert.issuer()
            && sigalg::verify_rsa(
                root.subject_public_key_info(),
                &parts.algorithm,
                &parts.tbs,
                &parts.signature,
            )
            .is_ok())
        .then(|| matched(a, SystemTime::UNIX_EPOCH, i, false).root)
    })
}

/// Verifies that `cert` chains to an anchor of `policy` at time `at`.
///
/// The issuer is looked up by name, then decided by signature: all generations of a J-LIS root
/// share one name, and a certificate signed by any other key under that name is refused. Checks:
/// the test hierarchy only when the policy opted in; both certificates valid at `at`; the root a
/// CA with `keyCertSign`; the leaf not a CA, with `digitalSignature` (and `nonRepudiation` under a
/// signing root); the leaf's policy, key usage and personal data agreeing with the root's purpose;
/// no unhandled critical extension.
///
/// A certificate byte-identical to an anchor verifies as that anchor (validity still checked).
/// Revocation is not checked here; see [`verify`].
pub fn verify_chain(
    cert: &JpkiCertificate,
    policy: &TrustPolicy,
    at: SystemTime,
) -> Result<VerifiedChain, ChainError> {
    let anchors = policy.anchors();
    if let Some(index) = anchors.iter().position(|a| a.certificate() == cert) {
        let anchor = &anchors[index];
        check_validity(cert, at).map_err(|_| ChainError::RootNotValid {
            label: anchor.label(),
        })?;
        return Ok(matched(anchor, at, index, true));
    }

    if cert.hierarchy() == Hierarchy::Test && !policy.accepts_test_hierarchy() {
        return Err(ChainError::TestHierarchyNotAccepted);
    }
    check_critical_extensions(cert)?;

    let candidates: Vec<usize> = (0..anchors.len())
        .filter(|&i| anchors[i].certificate().subject() == cert.issuer())
        .collect();
    if candidates.is_empty() {
        return Err(ChainError::UnknownIssuer {
            issuer: cert.issuer_text(),
        });
    }
    let parts =
        sigalg::split_signed(cert.der()).map_err(|source| ChainError::SignatureMismatch {
            issuer: cert.issuer_text(),
            candidates: candidates.len(),
            source,
        })?;
    let mut last_error = None;
    let mut found = None;
    for &i in &candidates {
        let key = anchors[i].certificate().subject_public_key_info();
        match sigalg::verify_rsa(key, &parts.algorithm, &parts.tbs, &parts.signature) {
            Ok(()) => {
                found = Some(i);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let Some(index) = found else {
        return Err(ChainError::SignatureMismatch {
            issuer: cert.issuer_text(),
            candidates: candidates.len(),
            source: last_error.unwrap_or(SignatureError::Malformed(der::ErrorKind::Failed.into())),
        });
    };
    let anchor = &anchors[index];
    let root = anchor.certificate();

    if !root.is_valid_at(at) {
        return Err(ChainError::RootNotValid {
            label: anchor.label(),
        });
    }
    if !root.is_ca() || root.key_usage().is_some_and(|ku| !ku.key_cert_sign) {
        return Err(ChainError::RootCannotSignCertificates {
            label: anchor.label(),
        });
    }

    check_validity(cert, at)?;
    if cert.is_ca() {
        return Err(ChainError::EndEntityIsCa);
    }
    let ku = cert.key_usage().ok_or(ChainError::KeyUsage {
        required: "digitalSignature",
    })?;
    if !ku.digital_signature {
        return Err(ChainError::KeyUsage {
            required: "digitalSignature",
        });
    }
    if let Some(root_purpose) = anchor.purpose() {
        if root_purpose == Purpose::Signing && !ku.non_repudiation {
            return Err(ChainError::KeyUsage {
                required: "nonRepudiation",
            });
        }
        // The issuer's name already says the root's purpose; every other signal must agree.
        let evidence = cert.kind_evidence();
        for purpose in [evidence.policy, evidence.key_usage, evidence.personal_data]
            .into_iter()
            .flatten()
        {
            if purpose != root_purpose {
                return Err(ChainError::PurposeMismatch {
                    root: root_purpose.as_str(),
                    certificate: purpose.as_str(),
                });
            }
        }
    }
    Ok(matched(anchor, at, index, false))
}

/// The result of [`verify`]: a trusted chain and the certificate's revocation status.
#[derive(Debug, Clone)]
pub struct Verification {
    /// The chain.
    pub chain: VerifiedChain,
    /// Good, revoked, or unchecked — never assumed good.
    pub revocation: RevocationStatus,
}

impl Verification {
    /// Trusted and not known to be revoked (good or unchecked).
    pub fn is_trusted_and_not_revoked(&self) -> bool {
        !matches!(self.revocation, RevocationStatus::Revoked { .. })
    }
}

/// [`verify_chain`], then asks `revocation` about the certificate.
///
/// A failing source gives [`RevocationStatus::Unchecked`] with the error kept; an anchor itself is
/// reported unchecked (roots are not on their own CRLs).
pub fn verify(
    cert: &JpkiCertificate,
    policy: &TrustPolicy,
    at: SystemTime,
    revocation: &dyn RevocationSource,
) -> Result<Verification, ChainError> {
    let chain = verify_chain(cert, policy, at)?;
    let issuer = policy.anchors().get(chain.anchor_index);
    let status = match issuer {
        Some(issuer) if !chain.certificate_is_anchor => {
            let issuer = issuer.certificate();
            let query = RevocationQuery {
                certificate: cert,
                issuer,
                at,
            };
            match revocation.status(&query) {
                Ok(status) => status,
                Err(e) => RevocationStatus::Unchecked {
                    reason: UncheckedReason::SourceFailed(Arc::new(e)),
                },
            }
        }
        _ => RevocationStatus::Unchecked {
            reason: UncheckedReason::TrustAnchor,
        },
    };
    Ok(Verification {
        chain,
        revocation: status,
    })
}
