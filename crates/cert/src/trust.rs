//! Which roots a verification accepts.

use std::sync::OnceLock;

use crate::{
    certificate::JpkiCertificate,
    kind::{Hierarchy, Purpose},
    names, roots, sigalg,
};

/// Where a trust anchor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorOrigin {
    /// One of the embedded J-LIS production roots.
    Jlis(&'static roots::JlisRoot),
    /// A test root the caller supplied, by its position in the list given to
    /// [`TrustPolicy::allow_test_hierarchy`].
    Test {
        /// Position in the caller's list, from 0.
        index: usize,
    },
}

/// A root certificate a chain may end at.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    cert: JpkiCertificate,
    origin: AnchorOrigin,
}

impl TrustAnchor {
    /// The root certificate.
    pub fn certificate(&self) -> &JpkiCertificate {
        &self.cert
    }

    /// Where it came from.
    pub fn origin(&self) -> AnchorOrigin {
        self.origin
    }

    /// `signca03` for an embedded root, `test-root-1` for the first caller-supplied test root.
    pub fn label(&self) -> String {
        match self.origin {
            AnchorOrigin::Jlis(r) => r.label().to_owned(),
            AnchorOrigin::Test { index } => format!("test-root-{}", index + 1),
        }
    }

    /// The J-LIS generation (1–3); `None` for test roots.
    pub fn generation(&self) -> Option<u8> {
        match self.origin {
            AnchorOrigin::Jlis(r) => Some(r.generation),
            AnchorOrigin::Test { .. } => None,
        }
    }

    /// Production for J-LIS roots, test for caller-supplied ones.
    pub fn hierarchy(&self) -> Hierarchy {
        match self.origin {
            AnchorOrigin::Jlis(_) => Hierarchy::Production,
            AnchorOrigin::Test { .. } => Hierarchy::Test,
        }
    }

    /// What the root issues, from the embedded table or the root's `OU=`.
    pub fn purpose(&self) -> Option<Purpose> {
        match self.origin {
            AnchorOrigin::Jlis(r) => Some(r.purpose),
            AnchorOrigin::Test { .. } => self.cert.kind().purpose(),
        }
    }
}

/// A supplied test root was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// Opting in to the test hierarchy needs at least one test root.
    #[error("no test roots were supplied")]
    NoTestRoots,
    /// Only `O=JPKI-TEST` roots can be added; production trust is fixed at build time.
    #[error("test root {index} is not an O=JPKI-TEST certificate (subject {subject})")]
    NotTestHierarchy {
        /// Position in the caller's list.
        index: usize,
        /// Its subject.
        subject: String,
    },
    /// A root must be a self-signed CA certificate.
    #[error("test root {index} is not a self-signed CA certificate")]
    NotSelfSignedCa {
        /// Position in the caller's list.
        index: usize,
        /// Why the self-signature failed, if it was checked.
        #[source]
        source: Option<sigalg::SignatureError>,
    },
}

/// The set of roots a verification accepts.
///
/// [`TrustPolicy::production`] (also `Default`) holds the six embedded J-LIS roots and nothing
/// else. The `O=JPKI-TEST` hierarchy of test cards and the simulated card is accepted only after
/// [`TrustPolicy::allow_test_hierarchy`] with the test roots.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    anchors: Vec<TrustAnchor>,
    test_hierarchy: bool,
}

impl Default for TrustPolicy {
    fn default() -> Self {
        TrustPolicy::production()
    }
}

fn production_anchors() -> &'static [TrustAnchor] {
    static ANCHORS: OnceLock<Vec<TrustAnchor>> = OnceLock::new();
    ANCHORS.get_or_init(|| {
        // The embedded bytes are fixed and a test proves every one parses.
        roots::JLIS_ROOTS
            .iter()
            .filter_map(|root| {
                Some(TrustAnchor {
                    cert: JpkiCertificate::from_der(root.der).ok()?,
                    origin: AnchorOrigin::Jlis(root),
                })
            })
            .collect()
    })
}

impl TrustPolicy {
    /// The six J-LIS production roots only.
    pub fn production() -> TrustPolicy {
        TrustPolicy {
            anchors: production_anchors().to_vec(),
            test_hierarchy: false,
        }
    }

    /// Opts in to the `O=JPKI-TEST` hierarchy, adding the given test roots.
    ///
    /// Each must be a self-signed CA certificate with `O=JPKI-TEST` in its subject.
    pub fn allow_test_hierarchy(
        mut self,
        test_roots: impl IntoIterator<Item = JpkiCertificate>,
    ) -> Result<TrustPolicy, TrustError> {
        let before = self.anchors.len();
        for (index, cert) in test_roots.into_iter().enumerate() {
            if names::organization(cert.subject()).as_deref() != Some("JPKI-TEST") {
                return Err(TrustError::NotTestHierarchy {
                    index,
                    subject: cert.subject_text(),
                });
            }
            if !cert.is_ca() || !cert.is_self_issued() {
                return Err(TrustError::NotSelfSignedCa {
                    index,
                    source: None,
                });
            }
            sigalg::verify_signed_der(cert.der(), cert.subject_public_key_info()).map_err(|e| {
                TrustError::NotSelfSignedCa {
                    index,
                    source: Some(e),
                }
            })?;
            self.anchors.push(TrustAnchor {
                cert,
                origin: AnchorOrigin::Test { index },
            });
        }
        if self.anchors.len() == before {
            return Err(TrustError::NoTestRoots);
        }
        self.test_hierarchy = true;
        Ok(self)
    }

    /// All anchors, production first.
    pub fn anchors(&self) -> &[TrustAnchor] {
        &self.anchors
    }

    /// Whether the caller opted in to the test hierarchy.
    pub fn accepts_test_hierarchy(&self) -> bool {
        self.test_hierarchy
    }
}
