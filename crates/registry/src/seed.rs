//! The seed file: the persons the simulated upstreams know and the terminals the service knows.
//!
//! TOML, test data only. A person lists their authentication certificates oldest first (so a
//! reissued card's new serial follows the old one) and zero or more insurance records. Entries
//! that share a linkage code are certificates of one person that coexist; `form = "smartphone"`
//! marks an entry of smartphone certificates.
//!
//! ```toml
//! [[person]]
//! linkage_code = "LNK-0001"
//! certificates = [{ root = "test-auth", serial = "1001" }]
//! [[person.insurance]]
//! insurer_number = "06139999"
//! symbol = "12"
//! number = "3456"
//! branch = "01"
//! insurer_name = "Example Health Insurance Society"
//!
//! [[terminal]]
//! id = "kiosk-0001"
//! kind = "face_reader"
//! face_approved = true
//! attestation_key = "<base64url SubjectPublicKeyInfo DER>"
//! ```

use std::path::Path;

use serde::Deserialize;

/// The whole seed file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// Persons known to the identity and insurance upstreams.
    #[serde(default, rename = "person")]
    pub persons: Vec<SeedPerson>,
    /// Terminals known to the service.
    #[serde(default, rename = "terminal")]
    pub terminals: Vec<SeedTerminal>,
}

/// One person.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedPerson {
    /// The service's linkage code for the person (what the identity upstream returns).
    pub linkage_code: String,
    /// A note for people reading the file (e.g. the simulated card profile); never used.
    #[serde(default)]
    pub note: Option<String>,
    /// First registration is blocked (protection order).
    #[serde(default)]
    pub restricted: bool,
    /// Where this entry's certificates live: `card` (the default) or `smartphone` (a
    /// smartphone certificate linked to the person's card, which gets no grace period).
    #[serde(default)]
    pub form: crate::upstream::CertificateForm,
    /// The person's authentication certificates, oldest first.
    #[serde(default)]
    pub certificates: Vec<SeedCertificate>,
    /// Insurance records (none: `E_NO_INSURANCE_RECORD`; several: `E_MULTIPLE_MATCH`).
    #[serde(default)]
    pub insurance: Vec<SeedInsurance>,
}

/// A certificate named by root and serial.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCertificate {
    /// Root identifier as the verifier reports it.
    pub root: String,
    /// Serial in hex (any case, colons allowed).
    pub serial: String,
}

/// An insurance record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedInsurance {
    /// 保険者番号 (8 digits).
    pub insurer_number: String,
    /// 記号.
    pub symbol: String,
    /// 番号.
    pub number: String,
    /// 枝番 (2 digits).
    pub branch: String,
    /// 保険者名.
    pub insurer_name: String,
}

/// A terminal known to the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedTerminal {
    /// Terminal id as sent in `terminal_id`.
    pub id: String,
    /// `kiosk`, `atm`, `app`, `face_reader` or `clinic`.
    pub kind: String,
    /// Whether the operator holds approval as a 特定利用者証明検証者 (may use face matching).
    #[serde(default)]
    pub face_approved: bool,
    /// The terminal attestation public key: base64url SubjectPublicKeyInfo DER.
    #[serde(default)]
    pub attestation_key: Option<String>,
}

/// A seed file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// The file could not be read.
    #[error("cannot read seed file")]
    Io(#[from] std::io::Error),
    /// The file is not a valid seed.
    #[error("invalid seed file")]
    Toml(#[from] toml::de::Error),
    /// A value breaks a rule of the seed format.
    #[error("invalid seed entry: {0}")]
    Invalid(&'static str),
}

/// Largest seed file read.
pub const MAX_SEED_FILE: u64 = 16 * 1024 * 1024;

/// The seed that ships with the crate: the simulated card profiles and the test terminals.
pub const DEFAULT_SEED: &str = include_str!("../fixtures/seed.toml");

impl Seed {
    /// Parses and checks seed text.
    pub fn parse(text: &str) -> Result<Self, SeedError> {
        let seed: Seed = toml::from_str(text)?;
        seed.check()?;
        Ok(seed)
    }

    /// Reads and parses a seed file (at most [`MAX_SEED_FILE`] bytes).
    pub fn load(path: &Path) -> Result<Self, SeedError> {
        let bytes = crate::options::read_bounded(path, MAX_SEED_FILE)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "seed file is not UTF-8")
        })?;
        Seed::parse(&text)
    }

    /// The seed that ships with the crate.
    pub fn builtin() -> Result<Self, SeedError> {
        Seed::parse(DEFAULT_SEED)
    }

    fn check(&self) -> Result<(), SeedError> {
        let mut cards = std::collections::HashSet::new();
        for person in &self.persons {
            if person.linkage_code.is_empty() {
                return Err(SeedError::Invalid("empty linkage_code"));
            }
            for cert in &person.certificates {
                let key = (
                    cert.root.clone(),
                    crate::upstream::normalise_serial(&cert.serial),
                );
                if !cards.insert(key) {
                    return Err(SeedError::Invalid("a certificate is listed twice"));
                }
            }
            for r in &person.insurance {
                if r.insurer_number.len() != 8
                    || !r.insurer_number.bytes().all(|b| b.is_ascii_digit())
                {
                    return Err(SeedError::Invalid("insurer_number must be 8 digits"));
                }
                if r.branch.len() != 2 || !r.branch.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(SeedError::Invalid("branch must be 2 digits"));
                }
            }
        }
        let mut ids = std::collections::HashSet::new();
        for t in &self.terminals {
            if !ids.insert(t.id.as_str()) {
                return Err(SeedError::Invalid("a terminal id is listed twice"));
            }
        }
        Ok(())
    }
}
