//! The card's non-volatile state: retry counters and changed PINs, optionally kept in a JSON
//! file so that a simulated card keeps its counters across restarts (as a real card does).
//!
//! Only what a real card keeps in EEPROM is here. Selections and verified flags are volatile and
//! never saved. A PIN changed with CHANGE REFERENCE DATA or CHANGE KEY is saved (it is the card's reference
//! data); the file is created readable by its owner only.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Every PIN, password and collation key the simulated card holds, across its applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum SecretId {
    /// JPKI `0018`: authentication PIN (4 digits, 3 tries).
    JpkiAuthPin,
    /// JPKI `001B`: signing password (6–16 of A–Z/0–9, 5 tries).
    JpkiSignPassword,
    /// Text AP `0011`: 4-digit PIN (3 tries).
    TextPin,
    /// Text AP `0012`: blocked at issue on every card.
    TextBlockedKey,
    /// Text AP `0014`: 照合番号A (the My Number).
    TextCollationA,
    /// Text AP `0015`: 照合番号B (era birth date, expiry year, security code).
    TextCollationB,
    /// Visual AP `0011`: birth-date key (era `YYMMDD`).
    VisualBirthDate,
    /// Visual AP `0012`: 照合番号B.
    VisualCollationB,
    /// Visual AP `0013`: 照合番号A.
    VisualCollationA,
    /// Common AP `001C`: 4-digit PIN (3 tries), changed with JICSAP CHANGE KEY.
    CommonPin,
    /// 住基AP `001C`: 4-digit PIN (3 tries), a key separate from the common AP's.
    JukiPin,
}

impl SecretId {
    /// All secrets, in a fixed order.
    pub const ALL: [SecretId; 11] = [
        SecretId::JpkiAuthPin,
        SecretId::JpkiSignPassword,
        SecretId::TextPin,
        SecretId::TextBlockedKey,
        SecretId::TextCollationA,
        SecretId::TextCollationB,
        SecretId::VisualBirthDate,
        SecretId::VisualCollationB,
        SecretId::VisualCollationA,
        SecretId::CommonPin,
        SecretId::JukiPin,
    ];

    /// The stable name used in state files.
    pub const fn name(self) -> &'static str {
        match self {
            SecretId::JpkiAuthPin => "jpki-auth-pin",
            SecretId::JpkiSignPassword => "jpki-sign-password",
            SecretId::TextPin => "text-pin",
            SecretId::TextBlockedKey => "text-blocked-key",
            SecretId::TextCollationA => "text-collation-a",
            SecretId::TextCollationB => "text-collation-b",
            SecretId::VisualBirthDate => "visual-birth-date",
            SecretId::VisualCollationB => "visual-collation-b",
            SecretId::VisualCollationA => "visual-collation-a",
            SecretId::CommonPin => "common-pin",
            SecretId::JukiPin => "juki-pin",
        }
    }

    /// The secret of a state-file name.
    pub fn from_name(name: &str) -> Option<SecretId> {
        SecretId::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// One secret's saved state.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedSecret {
    /// Tries left.
    pub remaining: u8,
    /// The reference value, present only when it was changed on the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Drop for SavedSecret {
    fn drop(&mut self) {
        if let Some(value) = &mut self.value {
            value.zeroize();
        }
    }
}

impl core::fmt::Debug for SavedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SavedSecret")
            .field("remaining", &self.remaining)
            .field("changed", &self.value.is_some())
            .finish()
    }
}

/// The non-volatile state of one card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistentState {
    /// Format version of this structure (currently 1).
    pub format: u32,
    /// The profile the card was built from.
    pub profile: String,
    /// The card serial (common AP), to refuse a state file of another card.
    pub serial: String,
    /// Secrets by [`SecretId::name`].
    pub secrets: BTreeMap<String, SavedSecret>,
}

/// The current state-file format.
pub const STATE_FORMAT: u32 = 1;

/// Why a state file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Reading or writing the file failed.
    #[error("state file {path}: I/O error")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid state document.
    #[error("state file {path}: not a valid state document")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// The file is larger than any state document ([`MAX_STATE_FILE`]).
    #[error("state file {path}: larger than {limit} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
    /// The file has a format version this build does not know.
    #[error("state format {found} is not supported (expected {STATE_FORMAT})")]
    UnsupportedFormat {
        /// The version found.
        found: u32,
    },
    /// The state belongs to another card.
    #[error("state belongs to card {found_profile:?}/{found_serial:?}, not {profile:?}/{serial:?}")]
    OtherCard {
        /// Profile in the state.
        found_profile: String,
        /// Serial in the state.
        found_serial: String,
        /// Profile of this card.
        profile: String,
        /// Serial of this card.
        serial: String,
    },
    /// A secret name the card does not know, or one this card does not hold.
    #[error("state names a secret this card does not hold: {name:?}")]
    UnknownSecret {
        /// The name.
        name: String,
    },
    /// A changed reference value that the card would never have accepted.
    #[error("state holds an invalid reference value for {name:?}")]
    InvalidValue {
        /// The secret's name.
        name: String,
    },
}

/// The largest state file read: a card's counters and changed values take a few KiB, so
/// anything near this is not a state document, and is refused before it is read whole.
pub const MAX_STATE_FILE: u64 = 1024 * 1024;

/// A state file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// A state file at `path` (not touched until loaded or saved).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateFile { path: path.into() }
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the state, or `None` when the file does not exist yet.
    ///
    /// # Errors
    /// [`StateError::Io`], [`StateError::TooLarge`], [`StateError::Json`],
    /// [`StateError::UnsupportedFormat`].
    pub fn load(&self) -> Result<Option<PersistentState>, StateError> {
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let file = match fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io(source)),
        };
        // One byte past the bound tells a file that is too large from one that just fits.
        let mut text = Vec::new();
        file.take(MAX_STATE_FILE + 1)
            .read_to_end(&mut text)
            .map_err(io)?;
        if text.len() as u64 > MAX_STATE_FILE {
            return Err(StateError::TooLarge {
                path: self.path.clone(),
                limit: MAX_STATE_FILE,
            });
        }
        let state: PersistentState =
            serde_json::from_slice(&text).map_err(|source| StateError::Json {
                path: self.path.clone(),
                source,
            })?;
        if state.format != STATE_FORMAT {
            return Err(StateError::UnsupportedFormat {
                found: state.format,
            });
        }
        Ok(Some(state))
    }

    /// Writes the state atomically (a temporary file renamed over the old one).
    ///
    /// # Errors
    /// [`StateError::Io`], [`StateError::Json`].
    pub fn save(&self, state: &PersistentState) -> Result<(), StateError> {
        let io = |source| StateError::Io {
            path: self.path.clone(),
            source,
        };
        let json = Zeroizing::new(serde_json::to_vec_pretty(state).map_err(|source| {
            StateError::Json {
                path: self.path.clone(),
                source,
            }
        })?);
        let mut tmp_name = self.path.as_os_str().to_owned();
        tmp_name.push(".tmp");
        let tmp = PathBuf::from(tmp_name);
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(io)?;
        file.write_all(&json).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, &self.path).map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for id in SecretId::ALL {
            assert_eq!(SecretId::from_name(id.name()), Some(id));
        }
        assert_eq!(SecretId::from_name("nope"), None);
    }

    #[test]
    fn save_then_load_gives_the_same_state_and_missing_file_is_none() {
        let dir = std::env::temp_dir().join(format!("mynacard-sim-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = StateFile::new(dir.join("card.json"));
        assert!(file.load().unwrap().is_none());
        let mut secrets = BTreeMap::new();
        secrets.insert(
            "jpki-auth-pin".to_owned(),
            SavedSecret {
                remaining: 1,
                value: Some("4321".to_owned()),
            },
        );
        let state = PersistentState {
            format: STATE_FORMAT,
            profile: "p".into(),
            serial: "s".into(),
            secrets,
        };
        file.save(&state).unwrap();
        assert_eq!(file.load().unwrap(), Some(state));
        fs::write(file.path(), b"{not json").unwrap();
        assert!(matches!(file.load(), Err(StateError::Json { .. })));
        fs::remove_dir_all(&dir).unwrap();
    }
}
