//! Recorded images: a card assembled from EF contents and GET DATA objects read from a real card,
//! described by a TOML file beside them.
//!
//! A [`RecordedImage`] holds what the card answered and which secrets it accepts, and no private
//! key: the engine ([`crate::engine::Card::from_recorded`]) serves its files as a card would and
//! answers every command that needs a key with [`crate::engine::NO_KEY`]. The crate ships the
//! J-LIS test card as one (`images/jlis-test-card/`, see [`JLIS_TEST_CARD`]).
//!
//! # File format
//!
//! `card.toml` (or any file given by path) names every file relative to its own folder:
//!
//! ```toml
//! format = 1
//! name = "jlis-test-card"          # state files carry profile "image:jlis-test-card"
//! description = "one line"         # optional
//! serial = ""                      # optional; part of the state-file identity
//!
//! [link]                           # as in a profile (atr, contactless, extended_length,
//! atr = "3B C5 FF 81 31 FB 45 80 73 C6 01 00 00"   # max_response_data)
//! contactless = false
//! extended_length = true
//! max_response_data = 65536
//!
//! [mf]                             # GET DATA objects: tag (4 hex digits) = file
//! "00F8" = "mf-do-F8.bin"
//!
//! [jpki]                           # also [text], [visual], [common], [juki]
//! keys = ["0017", "001A"]          # key EFs that exist; the image holds no key for them
//! [jpki.files]                     # EF id (4 hex digits) = file, readable after any one
//! "000A" = { file = "jpki-auth-cert.der" }              # of `read_after` (empty: free)
//! "0001" = { file = "jpki-sign-cert.der", read_after = ["jpki-sign-password"] }
//!
//! [secrets]                        # by state-file name (crate::state::SecretId::name)
//! jpki-auth-pin = { value = "1234", limit = 3 }          # remaining defaults to limit
//! ```
//!
//! Every secret's key EF is placed where the card keeps it (JPKI `0018`, text AP `0014`, ...).
//! EFs not listed answer `6A82` and GET DATA objects not listed `6A88`, as on a card. Unknown
//! keys are errors; every data file must be at most [`MAX_FILE_LEN`] bytes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::engine::Application;
use crate::engine::recorded::{accepts_value, is_key_ef, secret_home};
use crate::image::{LinkProfile, Secret};
use crate::profile::{LinkSpec, SecretSpec};
use crate::state::SecretId;

/// The description file looked for when a folder is given.
pub const DESCRIPTION_FILE: &str = "card.toml";

/// The description format this build reads.
pub const RECORDED_FORMAT: u32 = 1;

/// The largest data file (and description) accepted: far above any EF of the card (the card
/// face, about 3 KiB, is the largest), so a wrong path cannot pull a huge file into memory.
pub const MAX_FILE_LEN: u64 = 64 * 1024;

/// The folder of the J-LIS test card image inside this crate's sources.
pub const JLIS_TEST_CARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/images/jlis-test-card");

/// Why a recorded image could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordedError {
    /// The description or a data file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than [`MAX_FILE_LEN`].
    #[error("{path} is larger than {MAX_FILE_LEN} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The description is not UTF-8 TOML of the expected shape (a missing or unknown key, a
    /// wrong type).
    #[error("{path} is not a valid recorded-image description")]
    Toml {
        /// The description.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: toml::de::Error,
    },
    /// A value breaks a rule of the format or of the card.
    #[error("{path}: {key}: {problem}")]
    Invalid {
        /// The description.
        path: PathBuf,
        /// The offending key, as a dotted path (`jpki.files.0001.read_after`).
        key: String,
        /// What is wrong with it.
        problem: &'static str,
    },
}

/// One recorded EF: its contents as READ BINARY returned them, and who may read it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedEf {
    /// The application holding it.
    pub application: Application,
    /// The file id.
    pub fid: u16,
    /// Secrets of which any one, verified, opens it; empty = free.
    pub read_after: Vec<SecretId>,
    /// The contents.
    pub contents: Vec<u8>,
}

impl core::fmt::Debug for RecordedEf {
    // EFs hold personal data: lengths only.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordedEf")
            .field("application", &self.application)
            .field("fid", &format_args!("{:04X}", self.fid))
            .field("read_after", &self.read_after)
            .field("len", &self.contents.len())
            .finish()
    }
}

/// A card as recorded: files, GET DATA objects, secrets, link; no private keys.
#[derive(Clone)]
pub struct RecordedImage {
    /// The image's name; its state files carry profile [`RecordedImage::profile_name`].
    pub name: String,
    /// One line about the card.
    pub description: String,
    /// Serial the state files carry (empty when the image does not record one).
    pub serial: String,
    /// How the card reaches the host.
    pub link: LinkProfile,
    /// The EFs with contents, no two of one application with the same id.
    pub files: Vec<RecordedEf>,
    /// Key EFs that exist on the card (selectable, never readable); their keys are not here.
    pub key_files: Vec<(Application, u16)>,
    /// MF-level GET DATA objects by tag, as GET DATA returns them.
    pub mf_objects: Vec<(u16, Vec<u8>)>,
    /// The secrets the card accepts, with limits and tries left.
    pub secrets: Vec<(SecretId, Secret)>,
}

impl core::fmt::Debug for RecordedImage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecordedImage")
            .field("name", &self.name)
            .field("link", &self.link)
            .field("files", &self.files)
            .field("key_files", &self.key_files)
            .field(
                "mf_objects",
                &self.mf_objects.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            )
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Description {
    format: u32,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    serial: String,
    link: LinkSpec,
    #[serde(default)]
    mf: BTreeMap<String, String>,
    #[serde(default)]
    jpki: Option<AppSpec>,
    #[serde(default)]
    text: Option<AppSpec>,
    #[serde(default)]
    visual: Option<AppSpec>,
    #[serde(default)]
    common: Option<AppSpec>,
    #[serde(default)]
    juki: Option<AppSpec>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppSpec {
    #[serde(default)]
    files: BTreeMap<String, EfSpec>,
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EfSpec {
    file: String,
    #[serde(default)]
    read_after: Vec<String>,
}

/// The section name of an application in the description.
const fn section(app: Application) -> &'static str {
    match app {
        Application::Jpki => "jpki",
        Application::Text => "text",
        Application::Visual => "visual",
        Application::Common => "common",
        Application::Juki => "juki",
    }
}

/// Reads a file of at most [`MAX_FILE_LEN`] bytes.
fn read_bounded(path: &Path) -> Result<Vec<u8>, RecordedError> {
    let io = |source| RecordedError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(RecordedError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(bytes)
}

/// Four hex digits.
fn parse_id(text: &str) -> Option<u16> {
    (text.len() == 4 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u16::from_str_radix(text, 16).ok())
        .flatten()
}

/// The loader's context: the description's path (for errors) and folder (for data files).
struct Loader {
    path: PathBuf,
    base: PathBuf,
}

impl Loader {
    fn invalid(&self, key: impl Into<String>, problem: &'static str) -> RecordedError {
        RecordedError::Invalid {
            path: self.path.clone(),
            key: key.into(),
            problem,
        }
    }

    /// A data file named relative to the description's folder.
    fn data(&self, key: &str, name: &str) -> Result<Vec<u8>, RecordedError> {
        let relative = Path::new(name);
        let plain = relative
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
        if name.is_empty() || !plain {
            return Err(self.invalid(key, "a file name relative to the description, without .."));
        }
        read_bounded(&self.base.join(relative))
    }

    fn secrets(&self, d: &Description) -> Result<Vec<(SecretId, Secret)>, RecordedError> {
        let mut secrets = Vec::with_capacity(d.secrets.len());
        for (name, spec) in &d.secrets {
            let key = format!("secrets.{name}");
            let id =
                SecretId::from_name(name).ok_or_else(|| self.invalid(&key, "no such secret"))?;
            let remaining = spec.remaining.unwrap_or(spec.limit);
            // 63Cx carries at most 15.
            if !(1..=15).contains(&spec.limit) {
                return Err(self.invalid(&key, "limit must be 1-15"));
            }
            if remaining > spec.limit {
                return Err(self.invalid(&key, "remaining must not exceed limit"));
            }
            // A blocked key (the text AP's 0012) may go without a value: none can be tried.
            let value = spec.value.as_bytes();
            if (value.is_empty() && remaining > 0)
                || (!value.is_empty() && !accepts_value(id, value))
            {
                return Err(self.invalid(&key, "value does not have the form the card requires"));
            }
            secrets.push((
                id,
                Secret {
                    value: Zeroizing::new(value.to_vec()),
                    limit: spec.limit,
                    remaining,
                },
            ));
        }
        Ok(secrets)
    }

    fn application(
        &self,
        app: Application,
        spec: &AppSpec,
        secrets: &[(SecretId, Secret)],
        image: &mut RecordedImage,
    ) -> Result<(), RecordedError> {
        let name = section(app);
        // Secret EFs of this application are taken by the secrets.
        let mut taken: Vec<u16> = secrets
            .iter()
            .map(|(id, _)| secret_home(*id))
            .filter(|(a, _)| *a == app)
            .map(|(_, fid)| fid)
            .collect();
        for text in &spec.keys {
            let key = format!("{name}.keys");
            let fid =
                parse_id(text).ok_or_else(|| self.invalid(&key, "file ids are 4 hex digits"))?;
            if !is_key_ef(app, fid) {
                return Err(self.invalid(&key, "no private key lives at this file id"));
            }
            if taken.contains(&fid) {
                return Err(self.invalid(&key, "file id listed twice"));
            }
            taken.push(fid);
            image.key_files.push((app, fid));
        }
        for (text, ef) in &spec.files {
            let key = format!("{name}.files.{text}");
            let fid =
                parse_id(text).ok_or_else(|| self.invalid(&key, "file ids are 4 hex digits"))?;
            if taken.contains(&fid) {
                return Err(self.invalid(&key, "file id taken by a key or secret"));
            }
            taken.push(fid);
            let mut read_after = Vec::with_capacity(ef.read_after.len());
            for secret in &ef.read_after {
                let gate_key = format!("{key}.read_after");
                let id = SecretId::from_name(secret)
                    .ok_or_else(|| self.invalid(&gate_key, "no such secret"))?;
                if secret_home(id).0 != app {
                    // Selecting another application clears the security state: it could
                    // never open this file.
                    return Err(self.invalid(&gate_key, "names a secret of another application"));
                }
                if !secrets.iter().any(|(s, _)| *s == id) {
                    return Err(self.invalid(&gate_key, "names a secret not in [secrets]"));
                }
                read_after.push(id);
            }
            let contents = self.data(&format!("{key}.file"), &ef.file)?;
            image.files.push(RecordedEf {
                application: app,
                fid,
                read_after,
                contents,
            });
        }
        Ok(())
    }
}

impl RecordedImage {
    /// Loads a recorded image from its description file, or from a folder holding
    /// [`DESCRIPTION_FILE`]. Data files are read relative to the description.
    ///
    /// # Errors
    /// [`RecordedError`], naming the file and key at fault.
    pub fn load(path: &Path) -> Result<RecordedImage, RecordedError> {
        let path = if path.is_dir() {
            path.join(DESCRIPTION_FILE)
        } else {
            path.to_owned()
        };
        let bytes = read_bounded(&path)?;
        let text = String::from_utf8_lossy(&bytes);
        let base = path.parent().map(Path::to_owned).unwrap_or_default();
        RecordedImage::parse(&text, &path, &base)
    }

    /// The J-LIS test card shipped with this crate ([`JLIS_TEST_CARD`]).
    ///
    /// # Errors
    /// As [`RecordedImage::load`] (only when the crate's sources are incomplete).
    pub fn jlis_test_card() -> Result<RecordedImage, RecordedError> {
        RecordedImage::load(Path::new(JLIS_TEST_CARD))
    }

    /// Parses a description whose data files are relative to `base`; `path` names the
    /// description in errors.
    ///
    /// # Errors
    /// As [`RecordedImage::load`].
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<RecordedImage, RecordedError> {
        let loader = Loader {
            path: path.to_owned(),
            base: base.to_owned(),
        };
        let d: Description = toml::from_str(text).map_err(|source| RecordedError::Toml {
            path: path.to_owned(),
            source,
        })?;
        if d.format != RECORDED_FORMAT {
            return Err(loader.invalid("format", "this build reads format 1"));
        }
        if d.name.is_empty() || d.name.contains(char::is_whitespace) {
            return Err(loader.invalid("name", "a name without spaces"));
        }
        let link = d
            .link
            .link_profile()
            .map_err(|e| loader.invalid(e.field, e.problem))?;
        let secrets = loader.secrets(&d)?;
        let mut image = RecordedImage {
            name: d.name.clone(),
            description: d.description.clone(),
            serial: d.serial.clone(),
            link,
            files: Vec::new(),
            key_files: Vec::new(),
            mf_objects: Vec::with_capacity(d.mf.len()),
            secrets: Vec::new(),
        };
        for (text, file) in &d.mf {
            let key = format!("mf.{text}");
            let tag =
                parse_id(text).ok_or_else(|| loader.invalid(&key, "tags are 4 hex digits"))?;
            image.mf_objects.push((tag, loader.data(&key, file)?));
        }
        let apps = [
            (Application::Jpki, &d.jpki),
            (Application::Text, &d.text),
            (Application::Visual, &d.visual),
            (Application::Common, &d.common),
            (Application::Juki, &d.juki),
        ];
        for (app, spec) in apps {
            if let Some(spec) = spec {
                loader.application(app, spec, &secrets, &mut image)?;
            }
        }
        image.secrets = secrets;
        Ok(image)
    }

    /// The profile name of this card's state files: `image:NAME`, which no generated profile
    /// has, so a state file of one never fits the other.
    pub fn profile_name(&self) -> String {
        format!("image:{}", self.name)
    }

    /// The value and counters of a secret the image holds.
    pub fn secret(&self, id: SecretId) -> Option<&Secret> {
        self.secrets.iter().find(|(s, _)| *s == id).map(|(_, s)| s)
    }
}
