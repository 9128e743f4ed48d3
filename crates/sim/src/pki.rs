//! The test PKI: an `O=JPKI-TEST` hierarchy that issues certificates shaped like JPKI's.
//!
//! **Everything here is a test hierarchy.** No production verifier trusts it, and nothing it
//! issues is a J-LIS certificate. It mirrors the public facts about the real one so that parsers
//! and verifiers meet realistic input:
//!
//! - one self-signed root per purpose ([`CaKind::Auth`] for 利用者証明用, [`CaKind::Sign`] for
//!   署名用), no intermediates; RSA-2048, e = 65537, sha256WithRSAEncryption;
//! - root DN `C=JP, O=JPKI-TEST, OU=JPKI for user authentication | JPKI for digital signature,
//!   OU=Japan Agency for Local Authority Information Systems` (the real roots say `O=JPKI`);
//!   root extensions as on the real roots: key usage keyCertSign + cRLSign (critical), basic
//!   constraints CA:TRUE (critical), a subject alternative name that is a directory name in
//!   Japanese, a CRL distribution point that is a directory name (the CA's own DN, no URL), and a
//!   subject key identifier (SHA-1 of the public key);
//! - leaves: the authentication certificate's subject is `C=JP, CN=<opaque 23-character id>` and
//!   carries no personal data; the signing certificate's subject adds the holder's locality
//!   (`C=JP, L=<locality>, CN=<opaque id>`), and its subject alternative name carries the six
//!   `1.2.392.200149.8.5.5.x` otherNames (name, name substitute positions, sex, birth date
//!   `EYYYYMMDD`, address, address substitute positions) followed by a directory name with the
//!   holder's name. The extensions follow a real card's authentication certificate (the cert
//!   crate's `tests/fixtures/real-card`, whose test checks order and criticality): key usage
//!   digitalSignature (auth) or digitalSignature + nonRepudiation (sign), critical; extended key
//!   usage clientAuth (auth only); certificate policy `1.2.392.200149.8.5.1.3.30` (auth) or
//!   `1.2.392.200149.8.5.1.1.20` (sign), critical, with J-LIS's CPS address as qualifier; issuer
//!   alternative name (a directory name); a CRL distribution point naming the municipality's
//!   partition (`…, OU=CRL Distribution Points, CN=<municipality> CRLDP`); an OCSP address (auth
//!   only, under `.invalid`); authority key identifier with key id, issuer name and serial;
//!   subject key identifier. The signing certificate's own profile is not public, so it follows
//!   the same pattern;
//! - CRLs (v2) signed by the root of the kind, with a CRL number, the authority key identifier,
//!   and a reason code on every entry.
//!
//! ## String types
//!
//! Distinguished names use PrintableString for `C` and UTF8String for everything else, as the
//! real roots do. The otherName values are `[0] EXPLICIT UTF8String` for all six fields, including
//! sex and birth date: the published descriptions of the real profile read every field as
//! UTF-8 text, and a verifier that accepts UTF8String there reads the digits unchanged.
//!
//! ## Determinism
//!
//! A [`TestPki`] is a pure function of its seed: keys come from [`TestPki::key`] (derived from
//! the seed and a label, see the key cache below), serial numbers and opaque names from SHA-256
//! over the seed and a label, validity from dates the caller gives. PKCS#1 v1.5 signatures are
//! deterministic, so the same seed and inputs give the same DER bytes on every run and machine
//! (for the pinned `rsa` version, whose prime search defines the keys).
//!
//! ## Key cache
//!
//! RSA key generation is slow, so every key is cached in memory for the process and as a PKCS#8
//! file on disk for the machine: `$MYNACARD_SIM_CACHE` if set (`off` disables the disk cache),
//! else `<temp dir>/mynacard-sim-keys/`. See [`key_cache_dir`].

mod keys;

use crate::cvc::{self, CardCvcs, CvcRole};
use std::sync::OnceLock;
use std::time::Duration;

use der::asn1::{Any, OctetString, PrintableStringRef, Uint, Utf8StringRef};
use der::pem::LineEnding;
use der::referenced::OwnedToRef as _;
use der::{Decode as _, Encode as _, EncodePem as _};
use rsa::pkcs1v15::SigningKey;
use rsa::{PrivateKey, PublicKey};
use sha2::{Digest as _, Sha256};
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder as _, CertificateBuilder, CrlBuilder};
use x509_cert::certificate::TbsCertificate;
use x509_cert::crl::RevokedCert;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName, OtherName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, CrlNumber, ExtendedKeyUsage, IssuerAltName,
    KeyUsage, KeyUsages, SubjectAltName, SubjectKeyIdentifier,
    certpolicy::{PolicyInformation, PolicyQualifierInfo},
};
use x509_cert::ext::{Extension, ToExtension as _};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef};
use x509_cert::time::{Time, Validity};

use crate::image::{Date, Person};
use mynacard_cert::personal_oid;

pub use der::DateTime;

/// The seed of the default test PKI ([`TestPki::default_seed`], [`TestPki::shared`]).
pub const DEFAULT_SEED: &[u8] = b"mynacard-sim default JPKI-TEST hierarchy";

/// The organisation every name of the test hierarchy carries. Never `JPKI`.
pub const TEST_ORGANIZATION: &str = "JPKI-TEST";

/// `OU` naming the operator, as on the real roots.
const OPERATOR_OU: &str = "Japan Agency for Local Authority Information Systems";
/// The operator in Japanese, for the roots' subject alternative name.
const OPERATOR_OU_JA: &str = "地方公共団体情報システム機構";

/// The service's name in a leaf's issuer alternative name. Real certificates carry
/// `C=JP, O=公的個人認証サービス`; here it is an `OU` under `O=JPKI-TEST`, so that no `O`
/// anywhere in the test hierarchy could be read as a production one.
const SERVICE_NAME_JA: &str = "公的個人認証サービス";

/// The certification practice statement named by the policy qualifier (J-LIS's published one).
const CPS_URI: &str = "http://www.jpki.go.jp/cps.html";

/// The OCSP responder of authentication certificates. Real certificates name J-LIS's responder;
/// a test hierarchy must not send anyone there, so this host is under `.invalid` (RFC 2606).
const OCSP_AUTH_URI: &str = "http://ocspauthnorm.jpki-test.invalid";

// Attribute types (RFC 4519).
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_L: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
const OID_O: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const OID_OU: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");
const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// Object identifiers of the certificate profile other than the personal data (those are
/// [`mynacard_cert::personal_oid`]).
pub mod oid {
    use x509_cert::spki::ObjectIdentifier;

    /// `1.2.392.200149.8.5.1.1.20`: certificate policy of signing certificates ("class 20").
    pub const POLICY_SIGN: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.1.20");
    /// `1.2.392.200149.8.5.1.3.30`: certificate policy of authentication certificates ("class
    /// 30"), as on a real card's certificate.
    pub const POLICY_AUTH: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.392.200149.8.5.1.3.30");
    /// `id-qt-cps`: the policy qualifier naming the certification practice statement.
    pub const QT_CPS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.2.1");
    /// `id-ad-ocsp`: an OCSP responder in the authority information access.
    pub const AD_OCSP: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1");
    /// `id-kp-clientAuth`: the extended key usage of authentication certificates.
    pub const KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
}

/// Which of the two JPKI hierarchies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CaKind {
    /// 利用者証明用: user authentication.
    Auth,
    /// 署名用: digital signature.
    Sign,
}

impl CaKind {
    /// Both kinds, auth first.
    pub const ALL: [CaKind; 2] = [CaKind::Auth, CaKind::Sign];

    /// The purpose `OU` of the CA's distinguished name.
    pub const fn purpose_ou(self) -> &'static str {
        match self {
            CaKind::Auth => "JPKI for user authentication",
            CaKind::Sign => "JPKI for digital signature",
        }
    }

    const fn purpose_ou_ja(self) -> &'static str {
        match self {
            CaKind::Auth => "公的個人認証サービス利用者証明用",
            CaKind::Sign => "公的個人認証サービス署名用",
        }
    }

    const fn label(self) -> &'static str {
        match self {
            CaKind::Auth => "auth",
            CaKind::Sign => "sign",
        }
    }

    const fn policy(self) -> ObjectIdentifier {
        match self {
            CaKind::Auth => oid::POLICY_AUTH,
            CaKind::Sign => oid::POLICY_SIGN,
        }
    }
}

/// Errors of the test PKI.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// RSA key generation failed.
    #[error("RSA key generation failed")]
    KeyGeneration(#[source] rsa::Error),
    /// A value could not be DER-encoded (an invalid date, an over-long string, ...).
    #[error("DER encoding failed")]
    Der(#[from] der::Error),
    /// A public key could not be encoded.
    #[error("public key encoding failed")]
    PublicKey(#[from] x509_cert::spki::Error),
    /// Certificate or CRL assembly or signing failed.
    #[error("certificate or CRL building failed")]
    Build(#[from] x509_cert::builder::Error),
    /// The leaf request contradicts the JPKI profile.
    #[error("leaf certificate request rejected: {0}")]
    InvalidLeaf(&'static str),
    /// A date outside the range the profile can express (e.g. a birth date before 明治).
    #[error("date {0:?} is outside the supported range")]
    DateOutOfRange(Date),
}

/// The birth date as the signing certificate writes it: `EYYYYMMDD`, the era code followed by
/// the **Gregorian** date (1980-02-17 → `319800217`).
pub fn jpki_birth_date(date: Date) -> Result<String, PkiError> {
    mynacard_cert::Era::of(date)
        .and_then(|era| mynacard_cert::EraDate::new(era, date.year, date.month, date.day))
        .map(|d| d.to_code())
        .ok_or(PkiError::DateOutOfRange(date))
}

/// The sex code of the signing certificate (`1` male, `2` female, `3` unknown) for the card's
/// JIS X 0303-style code (`1`, `2`, `9` not applicable, `0` unknown).
pub fn jpki_sex_code(card_code: u8) -> &'static str {
    match card_code {
        b'1' => "1",
        b'2' => "2",
        _ => "3",
    }
}

/// The six personal-data values of a signing certificate's subject alternative name.
#[derive(Clone, PartialEq, Eq)]
pub struct HolderAttributes {
    /// `.1` 氏名.
    pub name: String,
    /// `.2` substitute-character positions of the name, one digit per character.
    pub name_substitutes: String,
    /// `.3` sex code (`1`, `2`, `3`).
    pub sex: String,
    /// `.4` birth date `EYYYYMMDD`.
    pub birth_date: String,
    /// `.5` 住所.
    pub address: String,
    /// `.6` substitute-character positions of the address, one digit per character.
    pub address_substitutes: String,
}

impl core::fmt::Debug for HolderAttributes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HolderAttributes(<redacted>)")
    }
}

impl HolderAttributes {
    /// The attributes of a person whose name and address need no substitute characters.
    pub fn from_person(person: &Person) -> Result<Self, PkiError> {
        Ok(Self {
            name: person.name.clone(),
            name_substitutes: no_substitutes(&person.name),
            sex: jpki_sex_code(person.sex.0).to_owned(),
            birth_date: jpki_birth_date(person.birth_date)?,
            address: person.address.clone(),
            address_substitutes: no_substitutes(&person.address),
        })
    }

    /// The values in the order the real profile lists them, with their OIDs.
    pub fn fields(&self) -> [(ObjectIdentifier, &str); 6] {
        [
            (personal_oid::NAME, &self.name),
            (personal_oid::BIRTH_DATE, &self.birth_date),
            (personal_oid::SEX, &self.sex),
            (personal_oid::ADDRESS, &self.address),
            (personal_oid::NAME_SUBSTITUTE, &self.name_substitutes),
            (personal_oid::ADDRESS_SUBSTITUTE, &self.address_substitutes),
        ]
    }
}

/// A position string of all `0`s: one per character of `value`.
pub fn no_substitutes(value: &str) -> String {
    "0".repeat(value.chars().count())
}

/// A UTC date-time from a calendar date and a time of day.
pub fn utc(date: Date, hour: u8, minute: u8, second: u8) -> Result<DateTime, PkiError> {
    Ok(DateTime::new(
        date.year, date.month, date.day, hour, minute, second,
    )?)
}

/// What a leaf certificate says. See [`TestPki::issue`].
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Which root issues it, and so which profile (auth or sign) it follows.
    pub kind: CaKind,
    /// Serial number (positive).
    pub serial: u64,
    /// The opaque subject common name (23 characters on real cards).
    pub common_name: String,
    /// The holder's locality, romanised (sign certificates only, e.g. `Kiyose-shi`).
    pub locality: Option<String>,
    /// The municipality, romanised, whose CRL partition lists this certificate: the CRL
    /// distribution point becomes `…, OU=CRL Distribution Points, CN=<it> CRLDP`, as on real
    /// certificates. `None` names the CA itself.
    pub crl_partition: Option<String>,
    /// notBefore.
    pub not_before: DateTime,
    /// notAfter.
    pub not_after: DateTime,
    /// The personal data of a signing certificate; must be `None` for auth.
    pub holder: Option<HolderAttributes>,
    /// The certified key.
    pub public_key: PublicKey,
}

/// Why a certificate was revoked: the cert crate's RFC 5280 reasons (the JPKI uses codes 0–6).
pub use mynacard_cert::RevocationReason;

/// The DER of a CRL entry's reason code: `ENUMERATED` with the reason's code.
fn crl_reason_der(reason: RevocationReason) -> Vec<u8> {
    let code = reason.code();
    if code < 0x80 {
        vec![0x0A, 0x01, code]
    } else {
        vec![0x0A, 0x02, 0x00, code]
    }
}

/// One CRL entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// Serial number of the revoked certificate.
    pub serial: u64,
    /// When it was revoked.
    pub date: DateTime,
    /// Why.
    pub reason: RevocationReason,
}

/// What a CRL says. See [`TestPki::crl_der`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlSpec {
    /// CRL number extension value.
    pub number: u64,
    /// thisUpdate.
    pub this_update: DateTime,
    /// nextUpdate (the J-LIS CRL is refreshed daily).
    pub next_update: Option<DateTime>,
    /// Entries; written sorted by serial so the bytes do not depend on the caller's order.
    pub revoked: Vec<Revocation>,
}

impl CrlSpec {
    /// CRL number 1, issued at `this_update`, next update one day later.
    pub fn daily(this_update: DateTime, revoked: Vec<Revocation>) -> Result<Self, PkiError> {
        let next = DateTime::from_unix_duration(
            this_update.unix_duration() + Duration::from_secs(24 * 60 * 60),
        )?;
        Ok(Self {
            number: 1,
            this_update,
            next_update: Some(next),
            revoked,
        })
    }
}

/// One root: its key, certificate and the names derived from it.
#[derive(Clone)]
struct Root {
    key: PrivateKey,
    cert: Certificate,
    cert_der: Vec<u8>,
    name: Name,
    key_id: OctetString,
}

/// The public half of one of the simulator's CVC authorities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvcAuthorityKey {
    /// What it certifies.
    pub role: CvcRole,
    /// The key id CVCs name as issuer.
    pub key_id: [u8; 16],
    /// RSA modulus, big-endian, key size.
    pub modulus: Vec<u8>,
    /// RSA public exponent, big-endian.
    pub exponent: Vec<u8>,
}

/// The deterministic `O=JPKI-TEST` hierarchy: two roots, leaf issuance and CRLs.
#[derive(Clone)]
pub struct TestPki {
    seed: Vec<u8>,
    auth: Root,
    sign: Root,
}

impl core::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TestPki").finish_non_exhaustive()
    }
}

/// Where the on-disk key cache lives, or `None` when `MYNACARD_SIM_CACHE=off`.
pub fn key_cache_dir() -> Option<std::path::PathBuf> {
    keys::cache_dir()
}

impl TestPki {
    /// notBefore of both roots: 2019-09-14T00:00:00Z.
    pub const ROOT_NOT_BEFORE: Date = Date {
        year: 2019,
        month: 9,
        day: 14,
    };
    /// notAfter date of both roots (at 14:59:59Z, the end of the day in Japan): 2034-09-13.
    pub const ROOT_NOT_AFTER: Date = Date {
        year: 2034,
        month: 9,
        day: 13,
    };

    /// The hierarchy derived from `seed`. Costs two key look-ups (cached) and two signatures.
    pub fn new(seed: &[u8]) -> Result<Self, PkiError> {
        let auth = Self::make_root(seed, CaKind::Auth)?;
        let sign = Self::make_root(seed, CaKind::Sign)?;
        Ok(Self {
            seed: seed.to_vec(),
            auth,
            sign,
        })
    }

    /// The hierarchy of [`DEFAULT_SEED`].
    pub fn default_seed() -> Result<Self, PkiError> {
        Self::new(DEFAULT_SEED)
    }

    /// The default hierarchy, built once per process and shared.
    pub fn shared() -> Result<&'static TestPki, PkiError> {
        static SHARED: OnceLock<TestPki> = OnceLock::new();
        if let Some(pki) = SHARED.get() {
            return Ok(pki);
        }
        // Racing builders produce identical values; whichever lands first is kept.
        let built = Self::default_seed()?;
        Ok(SHARED.get_or_init(|| built))
    }

    /// The seed this hierarchy was derived from.
    pub fn seed(&self) -> &[u8] {
        &self.seed
    }

    /// The private key of the simulator's CVC authority for `role` (key id
    /// [`CvcRole::authority_id`]). A verifier trusts its public half only on a test opt-in.
    pub fn cvc_authority_key(&self, role: CvcRole) -> Result<PrivateKey, PkiError> {
        self.key(&format!("cvc-authority/{}", role.label()))
    }

    /// The public halves of the simulator's three CVC authorities, what a verifier adds to its
    /// trust on a test opt-in (never in production).
    pub fn cvc_authorities(&self) -> Result<Vec<CvcAuthorityKey>, PkiError> {
        CvcRole::ALL
            .into_iter()
            .map(|role| {
                let key = self.cvc_authority_key(role)?;
                Ok(CvcAuthorityKey {
                    role,
                    key_id: role.authority_id(),
                    modulus: cvc::modulus(&key),
                    exponent: rsa::traits::PublicKeyParts::e_bytes(&key).into_vec(),
                })
            })
            .collect()
    }

    /// The record-signing key of `role` (visual or text AP) for cards issued by the
    /// municipality `municipality_code`: on a real card the CVC subject names the issuing
    /// municipality, so cards of one municipality share it.
    pub fn record_key(
        &self,
        role: CvcRole,
        municipality_code: &str,
    ) -> Result<PrivateKey, PkiError> {
        self.key(&format!("cvc-subject/{}/{municipality_code}", role.label()))
    }

    /// Issues the CVCs of a card: the visual and text AP certificates of the record keys, and
    /// the MF chain (the municipality's intermediate key under the chain authority, then a
    /// card key `card_label` under the intermediate one).
    pub fn issue_card_cvcs(
        &self,
        municipality_code: &str,
        card_label: &str,
        visual_record_key: &PrivateKey,
        text_record_key: &PrivateKey,
    ) -> Result<CardCvcs, PkiError> {
        let ap = |role: CvcRole, subject_key: &PrivateKey| -> Result<Vec<u8>, PkiError> {
            Ok(cvc::ef_cvc(
                &role.authority_id(),
                &cvc::subject_id(role, municipality_code),
                subject_key,
                &self.cvc_authority_key(role)?,
            ))
        };
        let intermediate = self.record_key(CvcRole::CardChain, municipality_code)?;
        let lower = self.key(&format!("{card_label}/card-chain-lower"))?;
        let intermediate_id = cvc::subject_id(CvcRole::CardChain, municipality_code);
        Ok(CardCvcs {
            visual: ap(CvcRole::Visual, visual_record_key)?,
            text: ap(CvcRole::Text, text_record_key)?,
            mf_upper: cvc::mf_cvc_contents(
                &CvcRole::CardChain.authority_id(),
                &intermediate_id,
                &intermediate,
                &self.cvc_authority_key(CvcRole::CardChain)?,
            ),
            mf_lower: cvc::mf_cvc_contents(
                &intermediate_id,
                &cvc::lower_subject_id(),
                &lower,
                &intermediate,
            ),
        })
    }

    fn root(&self, kind: CaKind) -> &Root {
        match kind {
            CaKind::Auth => &self.auth,
            CaKind::Sign => &self.sign,
        }
    }

    /// The root certificate of `kind`, DER.
    pub fn root_der(&self, kind: CaKind) -> &[u8] {
        &self.root(kind).cert_der
    }

    /// The root certificate of `kind`, PEM.
    pub fn root_pem(&self, kind: CaKind) -> Result<String, PkiError> {
        Ok(self.root(kind).cert.to_pem(LineEnding::LF)?)
    }

    /// Both root certificates, DER, auth first: the trust anchors a verifier opts into for tests.
    pub fn root_ders(&self) -> [&[u8]; 2] {
        [self.root_der(CaKind::Auth), self.root_der(CaKind::Sign)]
    }

    /// The root's private key.
    pub fn root_key(&self, kind: CaKind) -> &PrivateKey {
        &self.root(kind).key
    }

    /// The root's distinguished name (also the CRL distribution point of its leaves).
    pub fn root_name(&self, kind: CaKind) -> &Name {
        &self.root(kind).name
    }

    /// The RSA-2048 key derived from this hierarchy's seed and `label` (cached; see the module
    /// documentation). The same label always gives the same key.
    pub fn key(&self, label: &str) -> Result<PrivateKey, PkiError> {
        keys::derived_key(&self.seed, label)
    }

    /// The same key as [`TestPki::key`], generated afresh without either cache (slow; for
    /// checking that the cache returns what generation gives).
    pub fn key_uncached(&self, label: &str) -> Result<PrivateKey, PkiError> {
        keys::generate_uncached(&self.seed, label)
    }

    /// A positive serial number derived from the seed and `label`.
    pub fn serial(&self, label: &str) -> u64 {
        let d = self.digest("serial", label);
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        // Clear the top bit (positive), keep the value well away from zero.
        (u64::from_be_bytes(b) & 0x7fff_ffff_ffff_ffff) | 0x0100_0000_0000_0000
    }

    /// An opaque 23-character subject common name derived from the seed and `label`, in the
    /// shape of a real card's (`997794E9AGCIEG13221003A`): 14 opaque characters, the
    /// 5-digit municipality code, then four more.
    pub fn opaque_common_name(&self, label: &str, municipality_code: &str) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let d = self.digest("common-name", label);
        let mut pick = d.iter().map(|b| char::from(ALPHABET[usize::from(*b) % 36]));
        let mut cn: String = pick.by_ref().take(14).collect();
        cn.extend(municipality_code.chars().take(5));
        cn.extend(pick.take(23usize.saturating_sub(cn.chars().count())));
        cn
    }

    fn digest(&self, purpose: &str, label: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update((self.seed.len() as u64).to_be_bytes());
        h.update(&self.seed);
        h.update(purpose.as_bytes());
        h.update([0]);
        h.update(label.as_bytes());
        h.finalize().into()
    }

    fn make_root(seed: &[u8], kind: CaKind) -> Result<Root, PkiError> {
        let key = keys::derived_key(seed, &format!("root/{}", kind.label()))?;
        let name = ca_name(kind)?;
        let spki = SubjectPublicKeyInfoOwned::from_key(&key.to_public_key())?;
        let ski = SubjectKeyIdentifier::try_from(spki.owned_to_ref())?;

        let mut serial_seed = Sha256::new();
        serial_seed.update(seed);
        serial_seed.update(b"root serial ");
        serial_seed.update(kind.label());
        let d = serial_seed.finalize();
        // Four-byte positive serials, like the real roots'.
        let serial = u32::from_be_bytes([d[0] & 0x7f | 0x01, d[1], d[2], d[3]]);

        let extensions = vec![
            ext(true, &KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?,
            ext(
                false,
                &SubjectAltName(vec![GeneralName::DirectoryName(ca_name_ja(kind)?)]),
            )?,
            ext(
                true,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
            )?,
            ext(false, &crl_distribution_point(&name))?,
            ext(false, &ski)?,
        ];
        let validity = Validity::new(
            Time::from(utc(Self::ROOT_NOT_BEFORE, 0, 0, 0)?),
            Time::from(utc(Self::ROOT_NOT_AFTER, 14, 59, 59)?),
        );
        let profile = FixedProfile {
            issuer: name.clone(),
            subject: name.clone(),
            extensions,
        };
        let builder = CertificateBuilder::new(profile, SerialNumber::from(serial), validity, spki)?;
        let signer = SigningKey::<Sha256>::new(key.clone());
        let cert = builder.build::<_, rsa::pkcs1v15::Signature>(&signer)?;
        let cert_der = cert.to_der()?;
        Ok(Root {
            key,
            cert,
            cert_der,
            name,
            key_id: ski.0,
        })
    }

    /// Issue a leaf certificate under the root of `spec.kind`. Returns DER.
    ///
    /// Rejects an auth certificate with holder attributes or a locality (real ones carry no
    /// personal data), a sign certificate without holder attributes, and notAfter ≤ notBefore.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Vec<u8>, PkiError> {
        match (spec.kind, &spec.holder, &spec.locality) {
            (CaKind::Auth, Some(_), _) | (CaKind::Auth, _, Some(_)) => {
                return Err(PkiError::InvalidLeaf(
                    "an authentication certificate carries no personal data",
                ));
            }
            (CaKind::Sign, None, _) => {
                return Err(PkiError::InvalidLeaf(
                    "a signing certificate carries the holder attributes",
                ));
            }
            _ => {}
        }
        if spec.not_after <= spec.not_before {
            return Err(PkiError::InvalidLeaf("notAfter is not after notBefore"));
        }
        let root = self.root(spec.kind);

        let mut subject = vec![(OID_C, printable("JP")?)];
        if let Some(locality) = &spec.locality {
            subject.push((OID_L, utf8(locality)?));
        }
        subject.push((OID_CN, utf8(&spec.common_name)?));
        let subject = name(subject)?;

        let spki = SubjectPublicKeyInfoOwned::from_key(&spec.public_key)?;
        let ski = SubjectKeyIdentifier::try_from(spki.owned_to_ref())?;
        // Key id, issuer name and serial, as on real certificates.
        let aki = AuthorityKeyIdentifier {
            key_identifier: Some(root.key_id.clone()),
            authority_cert_issuer: Some(vec![GeneralName::DirectoryName(root.name.clone())]),
            authority_cert_serial_number: Some(root.cert.tbs_certificate().serial_number().clone()),
        };
        let key_usage = match spec.kind {
            CaKind::Auth => KeyUsage(KeyUsages::DigitalSignature.into()),
            CaKind::Sign => KeyUsage(KeyUsages::DigitalSignature | KeyUsages::NonRepudiation),
        };
        let policies = CertificatePolicies(vec![PolicyInformation {
            policy_identifier: spec.kind.policy(),
            policy_qualifiers: Some(vec![PolicyQualifierInfo {
                policy_qualifier_id: oid::QT_CPS,
                qualifier: Some(ia5(CPS_URI)?),
            }]),
        }]);

        // The order and criticality of a real authentication certificate's extensions.
        let mut extensions = vec![ext(true, &key_usage)?];
        if spec.kind == CaKind::Auth {
            extensions.push(ext(false, &ExtendedKeyUsage(vec![oid::KP_CLIENT_AUTH]))?);
        }
        extensions.push(ext(true, &policies)?);
        if let Some(holder) = &spec.holder {
            let mut names = holder
                .fields()
                .iter()
                .map(|(type_id, value)| {
                    Ok(GeneralName::OtherName(OtherName {
                        type_id: *type_id,
                        value: utf8(value)?,
                    }))
                })
                .collect::<Result<Vec<_>, PkiError>>()?;
            names.push(GeneralName::DirectoryName(name(vec![(
                OID_CN,
                utf8(&holder.name)?,
            )])?));
            extensions.push(ext(false, &SubjectAltName(names))?);
        }
        extensions.push(ext(
            false,
            &IssuerAltName(vec![GeneralName::DirectoryName(name(vec![
                (OID_C, printable("JP")?),
                (OID_O, utf8(TEST_ORGANIZATION)?),
                (OID_OU, utf8(SERVICE_NAME_JA)?),
            ])?)]),
        )?);
        let crl_dp = match &spec.crl_partition {
            Some(municipality) => crl_partition_name(spec.kind, municipality)?,
            None => root.name.clone(),
        };
        extensions.push(ext(false, &crl_distribution_point(&crl_dp))?);
        if spec.kind == CaKind::Auth {
            let ocsp = AuthorityInfoAccessSyntax(vec![AccessDescription {
                access_method: oid::AD_OCSP,
                access_location: GeneralName::UniformResourceIdentifier(der::asn1::Ia5String::new(
                    OCSP_AUTH_URI,
                )?),
            }]);
            extensions.push(ext(false, &ocsp)?);
        }
        extensions.push(ext(false, &aki)?);
        extensions.push(ext(false, &ski)?);

        let profile = FixedProfile {
            issuer: root.name.clone(),
            subject,
            extensions,
        };
        let validity = Validity::new(Time::from(spec.not_before), Time::from(spec.not_after));
        let builder =
            CertificateBuilder::new(profile, SerialNumber::from(spec.serial), validity, spki)?;
        let signer = SigningKey::<Sha256>::new(root.key.clone());
        let cert = builder.build::<_, rsa::pkcs1v15::Signature>(&signer)?;
        Ok(cert.to_der()?)
    }

    /// A v2 CRL signed by the root of `kind`. Returns DER.
    pub fn crl_der(&self, kind: CaKind, spec: &CrlSpec) -> Result<Vec<u8>, PkiError> {
        let root = self.root(kind);
        let mut revoked = spec.revoked.clone();
        revoked.sort_by_key(|r| r.serial);
        revoked.dedup_by_key(|r| r.serial);
        let entries = revoked
            .iter()
            .map(|r| {
                let reason = Extension {
                    extn_id: ObjectIdentifier::new_unwrap("2.5.29.21"),
                    critical: false,
                    extn_value: OctetString::new(crl_reason_der(r.reason))?,
                };
                Ok(RevokedCert {
                    serial_number: SerialNumber::from(r.serial),
                    revocation_date: Time::from(r.date),
                    crl_entry_extensions: Some(vec![reason]),
                })
            })
            .collect::<Result<Vec<_>, PkiError>>()?;
        let number = CrlNumber(Uint::new(&spec.number.to_be_bytes())?);
        let builder =
            CrlBuilder::new_with_this_update(&root.cert, number, Time::from(spec.this_update))?
                .with_next_update(spec.next_update.map(Time::from));
        let builder = if entries.is_empty() {
            builder
        } else {
            builder.with_certificates(entries.into_iter())
        };
        let signer = SigningKey::<Sha256>::new(root.key.clone());
        let crl = builder.build::<_, rsa::pkcs1v15::Signature>(&signer)?;
        Ok(crl.to_der()?)
    }
}

/// A builder profile that writes exactly the names and extensions it was given, in order.
struct FixedProfile {
    issuer: Name,
    subject: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

fn ext<T>(critical: bool, value: &T) -> Result<Extension, PkiError>
where
    T: der::oid::AssociatedOid + der::Encode,
{
    // The subject only matters to extensions that pick their own criticality; ours are explicit.
    Ok((critical, value).to_extension(&Name::default(), &[])?)
}

fn printable(s: &str) -> Result<Any, PkiError> {
    Ok(Any::encode_from(&PrintableStringRef::new(s)?)?)
}

fn utf8(s: &str) -> Result<Any, PkiError> {
    Ok(Any::encode_from(&Utf8StringRef::new(s)?)?)
}

/// A name with one attribute per RDN, in the given order.
fn name(attrs: Vec<(ObjectIdentifier, Any)>) -> Result<Name, PkiError> {
    let mut rdns = RdnSequence::default();
    for (oid, value) in attrs {
        rdns.push(RelativeDistinguishedName::try_from(vec![
            AttributeTypeAndValue { oid, value },
        ])?);
    }
    // Through DER because `Name`'s direct constructor is feature-gated; the encodings are equal.
    Ok(Name::from_der(&rdns.to_der()?)?)
}

fn ca_name(kind: CaKind) -> Result<Name, PkiError> {
    name(vec![
        (OID_C, printable("JP")?),
        (OID_O, utf8(TEST_ORGANIZATION)?),
        (OID_OU, utf8(kind.purpose_ou())?),
        (OID_OU, utf8(OPERATOR_OU)?),
    ])
}

/// The Japanese form of the CA name used in the roots' SAN and the leaves' issuer alternative
/// name. The real one says `O=公的個人認証サービス`; the test hierarchy keeps `O=JPKI-TEST`.
fn ca_name_ja(kind: CaKind) -> Result<Name, PkiError> {
    name(vec![
        (OID_C, printable("JP")?),
        (OID_O, utf8(TEST_ORGANIZATION)?),
        (OID_OU, utf8(kind.purpose_ou_ja())?),
        (OID_OU, utf8(OPERATOR_OU_JA)?),
    ])
}

/// `C=JP, O=JPKI-TEST, OU=<purpose>, OU=CRL Distribution Points, CN=<municipality> CRLDP`: the
/// CRL partition of one municipality (real certificates add the prefecture as another `OU`).
fn crl_partition_name(kind: CaKind, municipality: &str) -> Result<Name, PkiError> {
    name(vec![
        (OID_C, printable("JP")?),
        (OID_O, utf8(TEST_ORGANIZATION)?),
        (OID_OU, utf8(kind.purpose_ou())?),
        (OID_OU, utf8("CRL Distribution Points")?),
        (OID_CN, utf8(&format!("{municipality} CRLDP"))?),
    ])
}

fn ia5(s: &str) -> Result<Any, PkiError> {
    Ok(Any::encode_from(&der::asn1::Ia5StringRef::new(s)?)?)
}

fn crl_distribution_point(ca: &Name) -> CrlDistributionPoints {
    CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![
            GeneralName::DirectoryName(ca.clone()),
        ])),
        reasons: None,
        crl_issuer: None,
    }])
}

/// Parse a DER certificate (a convenience for callers holding bytes from this module).
pub fn parse_certificate(der: &[u8]) -> Result<Certificate, PkiError> {
    Ok(Certificate::from_der(der)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_and_birth_dates() {
        let d = |year, month, day| Date { year, month, day };
        assert_eq!(jpki_birth_date(d(1980, 2, 17)).unwrap(), "319800217");
        assert_eq!(jpki_birth_date(d(1989, 1, 7)).unwrap(), "319890107");
        assert_eq!(jpki_birth_date(d(1989, 1, 8)).unwrap(), "419890108");
        assert_eq!(jpki_birth_date(d(2019, 4, 30)).unwrap(), "420190430");
        assert_eq!(jpki_birth_date(d(2019, 5, 1)).unwrap(), "520190501");
        assert_eq!(jpki_birth_date(d(1926, 12, 24)).unwrap(), "219261224");
        // 明治元年 begins on 1868-01-25 (慶応4年1月1日), not on the edict's day 1868-10-23.
        assert_eq!(jpki_birth_date(d(1868, 10, 22)).unwrap(), "118681022");
        assert!(jpki_birth_date(d(1868, 1, 24)).is_err());
    }

    #[test]
    fn crl_reason_codes_are_the_rfc_5280_enumeration() {
        use x509_cert::ext::pkix::CrlReason;
        let rfc = [
            (RevocationReason::Unspecified, CrlReason::Unspecified),
            (RevocationReason::KeyCompromise, CrlReason::KeyCompromise),
            (RevocationReason::CaCompromise, CrlReason::CaCompromise),
            (
                RevocationReason::AffiliationChanged,
                CrlReason::AffiliationChanged,
            ),
            (RevocationReason::Superseded, CrlReason::Superseded),
            (
                RevocationReason::CessationOfOperation,
                CrlReason::CessationOfOperation,
            ),
            (
                RevocationReason::CertificateHold,
                CrlReason::CertificateHold,
            ),
            (RevocationReason::RemoveFromCrl, CrlReason::RemoveFromCRL),
            (
                RevocationReason::PrivilegeWithdrawn,
                CrlReason::PrivilegeWithdrawn,
            ),
            (RevocationReason::AaCompromise, CrlReason::AaCompromise),
        ];
        for (ours, theirs) in rfc {
            assert_eq!(crl_reason_der(ours), theirs.to_der().unwrap(), "{ours}");
        }
        assert_eq!(
            crl_reason_der(RevocationReason::Other(200)),
            [0x0A, 0x02, 0x00, 200]
        );
    }

    #[test]
    fn sex_codes_map_to_the_certificate_codes() {
        assert_eq!(jpki_sex_code(b'1'), "1");
        assert_eq!(jpki_sex_code(b'2'), "2");
        assert_eq!(jpki_sex_code(b'9'), "3");
        assert_eq!(jpki_sex_code(b'0'), "3");
    }

    #[test]
    fn substitute_positions_count_characters_not_bytes() {
        assert_eq!(no_substitutes("番号　花子"), "00000");
    }
}
