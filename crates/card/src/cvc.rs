//! Card-verifiable certificates (CVCs) and the J-LIS authorities that sign them.
//!
//! The text and visual APs each carry a CVC in EF `0004` that certifies the key signing that
//! application's records; the MF level carries a two-link chain (GET DATA `00F8`, root →
//! intermediate, and `7F21`, the certificate below it). A record whose signature verifies under
//! a CVC's key proves something only when the CVC itself verifies under a trusted authority:
//! [`CvcTrust`] holds those authorities (the three J-LIS production keys by default, the three
//! J-LIS test keys and any caller-supplied test keys only after an explicit opt-in), and
//! [`Checked`] carries a record together with the answer, [`Anchor::Trusted`] or
//! [`Anchor::Unanchored`], so a record is never reported as good on an untrusted key.
//!
//! Format (checked on a real test card's files): `7F21 { 5F4E body · 5F37 signature }`, the body
//! being the 16-byte issuer key id, the 16-byte subject key id and the subject key as `90`/`91`
//! objects; the signature is RSASSA-PKCS1-v1_5 with SHA-256 over the body's **value**. The MF
//! objects carry the template's contents only, after a `4D` header list.

use core::fmt;
use std::sync::OnceLock;

use mynacard_apdu::tlv::ber;

use crate::crypto::{CardPublicKey, HashAlgorithm, sha256};
use crate::{Error, Result};

mod authorities;

/// A 16-byte CVC key id: seven ASCII digits, `08 05`, a three-digit generation and four padding
/// bytes (the last one not always zero). A leading `5` marks the production hierarchy, `6` the
/// test one. Ids are compared on all 16 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 16]);

impl KeyId {
    /// The seven-digit name (`6000023`), when the id has the usual shape.
    pub fn name(&self) -> Option<&str> {
        let digits = &self.0[..7];
        digits
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| core::str::from_utf8(digits).ok())
            .flatten()
    }

    /// The three-digit generation (`001`), when the id has the usual shape.
    pub fn generation(&self) -> Option<&str> {
        let digits = &self.0[9..12];
        (self.0[7..9] == [0x08, 0x05] && digits.iter().all(u8::is_ascii_digit))
            .then(|| core::str::from_utf8(digits).ok())
            .flatten()
    }

    /// Which hierarchy the id's leading digit names.
    pub fn hierarchy(&self) -> Option<CvcHierarchy> {
        match self.0[0] {
            b'5' => Some(CvcHierarchy::Production),
            b'6' => Some(CvcHierarchy::Test),
            _ => None,
        }
    }

    /// All 16 bytes as upper-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02X}")).collect()
    }
}

impl fmt::Display for KeyId {
    /// `6000023/001` for a well-shaped id, the hex of all 16 bytes otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.name(), self.generation()) {
            (Some(name), Some(generation)) => write!(f, "{name}/{generation}"),
            _ => f.write_str(&self.to_hex()),
        }
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self} {})", self.to_hex())
    }
}

/// A card-verifiable certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvCertificate {
    /// Issuer key id (`"NNNNNNN" 08 05 "GGG"` + padding; a leading `5` means production).
    pub issuer_key_id: [u8; 16],
    /// Subject key id.
    pub subject_key_id: [u8; 16],
    /// The certified key, which signs the application's records (or, in the MF chain, the next
    /// certificate).
    pub public_key: CardPublicKey,
    /// The issuer's signature over the body's value.
    pub signature: Vec<u8>,
    /// The `5F4E` value: what the signature covers.
    body: Vec<u8>,
}

impl CvCertificate {
    /// Parses a certificate as the applications' EF `0004` holds it: `7F21 { 5F4E · 5F37 }`.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`], [`Error::Malformed`] or [`Error::PublicKey`].
    pub fn parse(bytes: &[u8]) -> Result<CvCertificate> {
        const WHAT: &str = "card-verifiable certificate";
        let (outer, _) = ber::parse_one(bytes).map_err(Error::tlv(WHAT))?;
        if outer.tag != 0x7F21 {
            return Err(Error::Malformed {
                what: "card-verifiable certificate tag is not 7F21",
            });
        }
        Self::parse_contents(outer.value)
    }

    /// Parses the contents of a `7F21` template, the form MF-level GET DATA answers (`00F8`,
    /// `7F21`): an optional `4D` header list, then `5F4E` and `5F37`.
    ///
    /// # Errors
    /// As [`CvCertificate::parse`].
    pub fn parse_contents(contents: &[u8]) -> Result<CvCertificate> {
        const WHAT: &str = "card-verifiable certificate";
        let body = ber::find(contents, 0x5F4E)
            .map_err(Error::tlv(WHAT))?
            .ok_or(Error::Malformed {
                what: "card-verifiable certificate without body (5F4E)",
            })?;
        let signature = ber::find(contents, 0x5F37)
            .map_err(Error::tlv(WHAT))?
            .ok_or(Error::Malformed {
                what: "card-verifiable certificate without signature (5F37)",
            })?;
        let (ids, key) = body.value.split_at_checked(32).ok_or(Error::Malformed {
            what: "card-verifiable certificate body too short",
        })?;
        let mut issuer_key_id = [0; 16];
        let mut subject_key_id = [0; 16];
        issuer_key_id.copy_from_slice(&ids[..16]);
        subject_key_id.copy_from_slice(&ids[16..]);
        Ok(CvCertificate {
            issuer_key_id,
            subject_key_id,
            public_key: CardPublicKey::from_card_objects(key)?,
            signature: signature.value.to_vec(),
            body: body.value.to_vec(),
        })
    }

    /// The issuer key id.
    pub fn issuer(&self) -> KeyId {
        KeyId(self.issuer_key_id)
    }

    /// The subject key id.
    pub fn subject(&self) -> KeyId {
        KeyId(self.subject_key_id)
    }

    /// Whether the issuer key id marks a production key (`5…`) rather than a test key (`6…`).
    pub fn is_production(&self) -> bool {
        self.issuer().hierarchy() == Some(CvcHierarchy::Production)
    }

    /// The signed bytes: the value of `5F4E`.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Checks the certificate's signature under `issuer_key` (PKCS#1 v1.5, SHA-256 over the
    /// `5F4E` value), without asking whether that key is trusted.
    ///
    /// # Errors
    /// [`Error::SignatureLength`] or [`Error::SignatureInvalid`].
    pub fn verify_under(&self, issuer_key: &CardPublicKey) -> Result<()> {
        let info = crate::crypto::digest_info(HashAlgorithm::Sha256, &sha256(&self.body))?;
        issuer_key.verify_pkcs1(&info, &self.signature, "card-verifiable certificate")
    }
}

/// Production or test hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CvcHierarchy {
    /// Production cards (key ids `5…`).
    Production,
    /// J-LIS test cards and the simulated card (key ids `6…`).
    Test,
}

/// What an authority certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CvcScope {
    /// The MF-level chain (`00F8`).
    CardChain,
    /// The visual AP's record-signing key (券面事項確認AP, EF `0004`).
    Visual,
    /// The text AP's record-signing key (券面事項入力補助AP, EF `0004`).
    Text,
}

impl CvcScope {
    /// The scope's role in J-LIS key names: the last two digits (`20`, `23`, `33`).
    const fn suffix(self) -> &'static str {
        match self {
            CvcScope::CardChain => "20",
            CvcScope::Visual => "23",
            CvcScope::Text => "33",
        }
    }
}

impl fmt::Display for CvcScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CvcScope::CardChain => "card-level chain",
            CvcScope::Visual => "visual AP",
            CvcScope::Text => "text AP",
        })
    }
}

/// Where an authority's key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthorityOrigin {
    /// Embedded J-LIS key.
    Jlis,
    /// A test key the caller supplied (e.g. the simulated card's CVC root).
    Caller,
}

/// A key that signs CVCs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvcAuthority {
    key_id: KeyId,
    key: CardPublicKey,
    scope: CvcScope,
    hierarchy: CvcHierarchy,
    origin: AuthorityOrigin,
}

impl CvcAuthority {
    /// A test authority supplied by the caller: its key id must mark the test hierarchy (`6…`).
    ///
    /// # Errors
    /// [`CvcTrustError::NotTestHierarchy`].
    pub fn test(
        key_id: [u8; 16],
        key: CardPublicKey,
        scope: CvcScope,
    ) -> core::result::Result<CvcAuthority, CvcTrustError> {
        let key_id = KeyId(key_id);
        if key_id.hierarchy() != Some(CvcHierarchy::Test) {
            return Err(CvcTrustError::NotTestHierarchy { key_id });
        }
        Ok(CvcAuthority {
            key_id,
            key,
            scope,
            hierarchy: CvcHierarchy::Test,
            origin: AuthorityOrigin::Caller,
        })
    }

    /// The key id certificates name as issuer.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The public key.
    pub fn key(&self) -> &CardPublicKey {
        &self.key
    }

    /// What it certifies.
    pub fn scope(&self) -> CvcScope {
        self.scope
    }

    /// Production or test.
    pub fn hierarchy(&self) -> CvcHierarchy {
        self.hierarchy
    }

    /// Embedded or caller-supplied.
    pub fn origin(&self) -> AuthorityOrigin {
        self.origin
    }
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The embedded J-LIS authorities (a unit test proves every entry decodes).
fn jlis_authorities() -> &'static [CvcAuthority] {
    static ALL: OnceLock<Vec<CvcAuthority>> = OnceLock::new();
    ALL.get_or_init(|| {
        authorities::AUTHORITIES
            .iter()
            .filter_map(|def| {
                let id: [u8; 16] = hex_bytes(def.key_id)?.try_into().ok()?;
                let key =
                    CardPublicKey::from_parts(&hex_bytes(def.modulus)?, &authorities::EXPONENT)
                        .ok()?;
                let key_id = KeyId(id);
                let hierarchy = key_id.hierarchy()?;
                let scope = [CvcScope::CardChain, CvcScope::Visual, CvcScope::Text]
                    .into_iter()
                    .find(|s| def.name.ends_with(s.suffix()))?;
                Some(CvcAuthority {
                    key_id,
                    key,
                    scope,
                    hierarchy,
                    origin: AuthorityOrigin::Jlis,
                })
            })
            .collect()
    })
}

/// A CVC trust configuration could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CvcTrustError {
    /// Only test keys (`6…`) can be added; production trust is fixed at build time.
    #[error("CVC authority {key_id} is not in the test hierarchy")]
    NotTestHierarchy {
        /// The offered key id.
        key_id: KeyId,
    },
    /// A caller-supplied key id equals one already trusted (e.g. a published J-LIS id).
    #[error("CVC authority {key_id} is already trusted")]
    Duplicate {
        /// The offered key id.
        key_id: KeyId,
    },
    /// Test authorities need the test opt-in first.
    #[error("CVC test authorities need the test hierarchy opt-in")]
    TestHierarchyNotAllowed,
}

/// Why a CVC is not anchored in a trusted authority.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CvcRefusal {
    /// No trusted authority has this key id.
    #[error("CVC issued by {issuer}, which is not a known authority")]
    UnknownIssuer {
        /// The certificate's issuer key id.
        issuer: KeyId,
    },
    /// The issuer is a J-LIS test key and the test hierarchy was not opted in to.
    #[error("CVC issued by the test authority {issuer}; test cards are not trusted here")]
    TestHierarchyNotTrusted {
        /// The certificate's issuer key id.
        issuer: KeyId,
    },
    /// The issuer certifies something else (e.g. a text-AP authority on a visual-AP CVC).
    #[error(
        "CVC issued by {issuer}, an authority for the {actual}, where the {expected} was expected"
    )]
    WrongScope {
        /// The certificate's issuer key id.
        issuer: KeyId,
        /// What was being checked.
        expected: CvcScope,
        /// What the issuer signs.
        actual: CvcScope,
    },
    /// The signature does not verify under the issuer's key.
    #[error("CVC signature does not verify under {issuer}")]
    SignatureInvalid {
        /// The certificate's issuer key id.
        issuer: KeyId,
    },
    /// A link of the MF chain does not name the key above it as issuer.
    #[error("CVC chain broken: issued by {issuer}, but the certificate above certifies {expected}")]
    ChainBroken {
        /// The key the upper certificate certifies.
        expected: KeyId,
        /// The issuer the lower certificate names.
        issuer: KeyId,
    },
}

/// The authorities a CVC verification accepts.
///
/// [`CvcTrust::production`] (also `Default`) holds the three J-LIS production keys only.
/// [`CvcTrust::allow_test_hierarchy`] adds the three J-LIS test keys, and after it
/// [`CvcTrust::with_test_authority`] may add others (the simulated card's).
#[derive(Debug, Clone)]
pub struct CvcTrust {
    authorities: Vec<CvcAuthority>,
    test_hierarchy: bool,
}

impl Default for CvcTrust {
    fn default() -> Self {
        CvcTrust::production()
    }
}

/// A CVC that verified, with the authority that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCvc {
    /// Name of the authority (`5000023`) or its key id.
    pub authority: KeyId,
    /// Its hierarchy.
    pub hierarchy: CvcHierarchy,
    /// Its origin.
    pub origin: AuthorityOrigin,
}

/// The MF-level chain, verified: root → intermediate (`00F8`) → the key below it (`7F21`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedCardChain {
    /// The root that signed `00F8`.
    pub root: TrustedCvc,
    /// The intermediate key `00F8` certifies.
    pub intermediate: KeyId,
    /// The key `7F21` certifies, when the card has that object (older cards do not).
    pub lower: Option<KeyId>,
}

impl CvcTrust {
    /// The J-LIS production authorities only.
    pub fn production() -> CvcTrust {
        CvcTrust {
            authorities: jlis_authorities()
                .iter()
                .filter(|a| a.hierarchy == CvcHierarchy::Production)
                .cloned()
                .collect(),
            test_hierarchy: false,
        }
    }

    /// Adds the J-LIS test authorities (`6000020`, `6000023`, `6000033`), as a test card or a
    /// development setup needs. Never do this in production.
    #[must_use]
    pub fn allow_test_hierarchy(mut self) -> CvcTrust {
        if !self.test_hierarchy {
            self.authorities.extend(
                jlis_authorities()
                    .iter()
                    .filter(|a| a.hierarchy == CvcHierarchy::Test)
                    .cloned(),
            );
            self.test_hierarchy = true;
        }
        self
    }

    /// Adds a caller-supplied test authority (after [`CvcTrust::allow_test_hierarchy`]).
    ///
    /// # Errors
    /// [`CvcTrustError::TestHierarchyNotAllowed`] before the opt-in;
    /// [`CvcTrustError::Duplicate`] for a key id already trusted.
    pub fn with_test_authority(
        mut self,
        authority: CvcAuthority,
    ) -> core::result::Result<CvcTrust, CvcTrustError> {
        if !self.test_hierarchy {
            return Err(CvcTrustError::TestHierarchyNotAllowed);
        }
        if self.authority(&authority.key_id).is_some() {
            return Err(CvcTrustError::Duplicate {
                key_id: authority.key_id,
            });
        }
        self.authorities.push(authority);
        Ok(self)
    }

    /// Whether the test hierarchy was opted in to.
    pub fn accepts_test_hierarchy(&self) -> bool {
        self.test_hierarchy
    }

    /// Every trusted authority, production first.
    pub fn authorities(&self) -> &[CvcAuthority] {
        &self.authorities
    }

    /// The trusted authority with exactly this key id.
    pub fn authority(&self, key_id: &KeyId) -> Option<&CvcAuthority> {
        self.authorities.iter().find(|a| a.key_id == *key_id)
    }

    /// Verifies `cvc` under the trusted authority it names, which must sign `scope`.
    ///
    /// # Errors
    /// A [`CvcRefusal`].
    pub fn verify(
        &self,
        cvc: &CvCertificate,
        scope: CvcScope,
    ) -> core::result::Result<TrustedCvc, CvcRefusal> {
        let issuer = cvc.issuer();
        let Some(authority) = self.authority(&issuer) else {
            let is_jlis_test = jlis_authorities().iter().any(|a| a.key_id == issuer);
            return Err(if is_jlis_test {
                CvcRefusal::TestHierarchyNotTrusted { issuer }
            } else {
                CvcRefusal::UnknownIssuer { issuer }
            });
        };
        if authority.scope != scope {
            return Err(CvcRefusal::WrongScope {
                issuer,
                expected: scope,
                actual: authority.scope,
            });
        }
        cvc.verify_under(&authority.key)
            .map_err(|_| CvcRefusal::SignatureInvalid { issuer })?;
        Ok(TrustedCvc {
            authority: issuer,
            hierarchy: authority.hierarchy,
            origin: authority.origin,
        })
    }

    /// Verifies the MF-level chain: `upper` (`00F8`) under a card-chain authority, then
    /// `lower` (`7F21`, if the card has it) under the key `upper` certifies.
    ///
    /// # Errors
    /// A [`CvcRefusal`].
    pub fn verify_card_chain(
        &self,
        upper: &CvCertificate,
        lower: Option<&CvCertificate>,
    ) -> core::result::Result<TrustedCardChain, CvcRefusal> {
        let root = self.verify(upper, CvcScope::CardChain)?;
        let lower = match lower {
            None => None,
            Some(lower) => {
                if lower.issuer() != upper.subject() {
                    return Err(CvcRefusal::ChainBroken {
                        expected: upper.subject(),
                        issuer: lower.issuer(),
                    });
                }
                lower.verify_under(&upper.public_key).map_err(|_| {
                    CvcRefusal::SignatureInvalid {
                        issuer: lower.issuer(),
                    }
                })?;
                Some(lower.subject())
            }
        };
        Ok(TrustedCardChain {
            root,
            intermediate: upper.subject(),
            lower,
        })
    }
}

/// Whether a record's signing key is anchored in a trusted authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Anchor {
    /// The CVC verified under a trusted authority.
    Trusted(TrustedCvc),
    /// The CVC did not verify: the record's signature proves nothing about its origin.
    Unanchored(CvcRefusal),
}

/// A record whose signature verified under its application's CVC key, with whether that CVC is
/// anchored. Only [`Anchor::Trusted`] makes the record good: see [`Checked::into_trusted`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked<T> {
    /// The record.
    pub record: T,
    /// The application's certificate, whose key the record's signature verified under.
    pub cvc: CvCertificate,
    /// Whether that certificate is anchored.
    pub anchor: Anchor,
}

impl<T> Checked<T> {
    /// Checks `record`'s signature with `verify_record` under `cvc`'s key, then anchors `cvc`.
    ///
    /// # Errors
    /// What `verify_record` returns (a record that does not verify under its own CVC key).
    pub fn new(
        record: T,
        cvc: CvCertificate,
        trust: &CvcTrust,
        scope: CvcScope,
        verify_record: impl FnOnce(&T, &CvCertificate) -> Result<()>,
    ) -> Result<Checked<T>> {
        verify_record(&record, &cvc)?;
        let anchor = match trust.verify(&cvc, scope) {
            Ok(trusted) => Anchor::Trusted(trusted),
            Err(refusal) => Anchor::Unanchored(refusal),
        };
        Ok(Checked {
            record,
            cvc,
            anchor,
        })
    }

    /// Whether the record's key is anchored in a trusted authority.
    pub fn is_trusted(&self) -> bool {
        matches!(self.anchor, Anchor::Trusted(_))
    }

    /// The record, only when anchored.
    ///
    /// # Errors
    /// [`Error::Unanchored`] with the reason.
    pub fn into_trusted(self) -> Result<T> {
        match self.anchor {
            Anchor::Trusted(_) => Ok(self.record),
            Anchor::Unanchored(refusal) => Err(Error::Unanchored(refusal)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn every_embedded_authority_decodes() {
        let all = jlis_authorities();
        assert_eq!(all.len(), 6);
        for (def, authority) in authorities::AUTHORITIES.iter().zip(all) {
            assert_eq!(authority.key_id.name(), Some(def.name));
            assert_eq!(authority.key.modulus_len(), 256, "{}", def.name);
        }
    }

    /// The table is the published JSON, entry by entry.
    #[test]
    fn table_matches_the_published_json() {
        let json: serde_json::Value =
            serde_json::from_str(include_str!("../data/cvc-ca-keys.json")).unwrap();
        let entries = json.as_array().unwrap();
        assert_eq!(entries.len(), authorities::AUTHORITIES.len());
        for (entry, def) in entries.iter().zip(&authorities::AUTHORITIES) {
            assert_eq!(entry["name"], def.name);
            assert_eq!(entry["key_id"], def.key_id);
            assert_eq!(entry["modulus"], def.modulus);
            assert_eq!(entry["exponent"], "010001");
        }
    }

    #[test]
    fn production_holds_only_production_keys() {
        let trust = CvcTrust::production();
        assert_eq!(trust.authorities().len(), 3);
        assert!(
            trust
                .authorities()
                .iter()
                .all(|a| a.hierarchy() == CvcHierarchy::Production
                    && a.key_id().name().is_some_and(|n| n.starts_with('5')))
        );
        let test = trust.allow_test_hierarchy();
        assert_eq!(test.authorities().len(), 6);
        assert!(test.accepts_test_hierarchy());
    }

    #[test]
    fn key_ids_print_name_and_generation() {
        let mut id = [0u8; 16];
        id[..7].copy_from_slice(b"6000023");
        id[7..9].copy_from_slice(&[8, 5]);
        id[9..12].copy_from_slice(b"001");
        assert_eq!(KeyId(id).to_string(), "6000023/001");
        assert_eq!(KeyId([0xFF; 16]).to_string(), "FF".repeat(16));
        assert_eq!(KeyId([0xFF; 16]).hierarchy(), None);
    }

    #[test]
    fn caller_authorities_must_be_test_and_new() {
        let jlis = &jlis_authorities()[1];
        let key = jlis.key().clone();
        let mut production_id = [b'5'; 16];
        production_id[1] = b'9';
        assert!(matches!(
            CvcAuthority::test(production_id, key.clone(), CvcScope::Visual),
            Err(CvcTrustError::NotTestHierarchy { .. })
        ));
        let mut own = [b'6'; 16];
        own[1] = b'9';
        let authority = CvcAuthority::test(own, key.clone(), CvcScope::Visual).unwrap();
        assert!(matches!(
            CvcTrust::production().with_test_authority(authority.clone()),
            Err(CvcTrustError::TestHierarchyNotAllowed)
        ));
        let trust = CvcTrust::production()
            .allow_test_hierarchy()
            .with_test_authority(authority.clone())
            .unwrap();
        assert!(matches!(
            trust.with_test_authority(authority),
            Err(CvcTrustError::Duplicate { .. })
        ));
        let jlis_test_id = jlis_authorities()[4].key_id().0;
        let clash = CvcAuthority::test(jlis_test_id, key, CvcScope::Visual).unwrap();
        assert!(matches!(
            CvcTrust::production()
                .allow_test_hierarchy()
                .with_test_authority(clash),
            Err(CvcTrustError::Duplicate { .. })
        ));
    }

    #[test]
    fn hex_decoding_refuses_odd_and_non_hex() {
        assert_eq!(hex_bytes("0aFF"), Some(vec![0x0A, 0xFF]));
        assert_eq!(hex_bytes("0"), None);
        assert_eq!(hex_bytes("zz"), None);
    }
}
