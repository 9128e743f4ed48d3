//! RSA-2048 keys derived from (seed, label), cached in memory and on disk.
//!
//! Generating a 2048-bit key costs tens of milliseconds with optimised dependencies and far more
//! without; a test suite asks for the same few dozen keys over and over. Each key is therefore
//! derived deterministically (a ChaCha20 stream seeded from SHA-256 over a version tag, the PKI
//! seed and the label), kept in a process-wide map, and written once to a PKCS#8 DER file so the
//! next process on the same machine only parses it.
//!
//! The disk cache lives in `$MYNACARD_SIM_CACHE` when set (the value `off` disables it), else in
//! `<temp dir>/mynacard-sim-keys/`. Files are written to a temporary name and renamed into place,
//! so a parallel test never reads half a key. A file that does not parse, or holds a key of the
//! wrong size or exponent, is ignored and rewritten.

use std::collections::HashMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng as _;
use rsa::PrivateKey;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use sha2::{Digest as _, Sha256};

use super::PkiError;

/// Bumped whenever the derivation changes, so old cache files are never mistaken for new keys.
const DERIVATION_TAG: &[u8] = b"mynacard-sim/rsa-2048/v1";

/// Modulus size of every key on the card and in the test PKI.
pub(crate) const KEY_BITS: usize = 2048;

/// Environment variable naming the on-disk cache directory (`off` disables the disk cache).
pub(crate) const CACHE_ENV: &str = "MYNACARD_SIM_CACHE";

/// Identifies one derived key: SHA-256 over the tag, the seed and the label.
type KeyId = [u8; 32];

/// One in-memory slot; the per-slot mutex lets different keys be generated in parallel while the
/// same key is generated once.
type Slot = Arc<Mutex<Option<PrivateKey>>>;

fn slots() -> &'static Mutex<HashMap<KeyId, Slot>> {
    static SLOTS: OnceLock<Mutex<HashMap<KeyId, Slot>>> = OnceLock::new();
    SLOTS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn key_id(seed: &[u8], label: &str) -> KeyId {
    let mut h = Sha256::new();
    h.update(DERIVATION_TAG);
    // Length prefixes keep (seed, label) pairs from colliding when concatenated.
    h.update((seed.len() as u64).to_be_bytes());
    h.update(seed);
    h.update((label.len() as u64).to_be_bytes());
    h.update(label.as_bytes());
    h.finalize().into()
}

/// The directory of the on-disk cache, or `None` when it is disabled.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os(CACHE_ENV) {
        Some(v) if v == "off" => None,
        Some(v) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => Some(std::env::temp_dir().join("mynacard-sim-keys")),
    }
}

/// The key derived from `seed` and `label`: from memory, else from disk, else generated.
pub(crate) fn derived_key(seed: &[u8], label: &str) -> Result<PrivateKey, PkiError> {
    let id = key_id(seed, label);
    let slot = {
        let mut map = slots().lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(id).or_default())
    };
    let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = guard.as_ref() {
        return Ok(key.clone());
    }
    let dir = cache_dir();
    let file = dir.as_ref().map(|d| d.join(file_name(&id)));
    let key = match file.as_deref().and_then(load) {
        Some(key) => key,
        None => {
            let key = generate(&id)?;
            if let (Some(dir), Some(file)) = (dir.as_deref(), file.as_deref()) {
                // The disk cache is an optimisation: failing to write it costs time, not
                // correctness, so the error is dropped.
                let _ = store(dir, file, &key);
            }
            key
        }
    };
    *guard = Some(key.clone());
    Ok(key)
}

fn file_name(id: &KeyId) -> String {
    let mut name = String::with_capacity(id.len() * 2 + 4);
    for b in id {
        name.push_str(&format!("{b:02x}"));
    }
    name.push_str(".p8");
    name
}

/// The key for (`seed`, `label`) generated afresh, bypassing both caches.
pub(crate) fn generate_uncached(seed: &[u8], label: &str) -> Result<PrivateKey, PkiError> {
    generate(&key_id(seed, label))
}

fn generate(id: &KeyId) -> Result<PrivateKey, PkiError> {
    let mut rng = ChaCha20Rng::from_seed(*id);
    PrivateKey::new(&mut rng, KEY_BITS).map_err(PkiError::KeyGeneration)
}

fn load(file: &Path) -> Option<PrivateKey> {
    let der = fs::read(file).ok()?;
    let key = PrivateKey::from_pkcs8_der(&der).ok()?;
    (key.size() * 8 == KEY_BITS && *key.e_bytes() == [1, 0, 1]).then_some(key)
}

fn store(dir: &Path, file: &Path, key: &PrivateKey) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    create_private_dir(dir)?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        file.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(der.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    // Owner-only: the keys are test keys, but nobody else should swap them under us.
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_separate_seed_and_label() {
        assert_ne!(key_id(b"ab", "c"), key_id(b"a", "bc"));
        assert_ne!(key_id(b"a", "x"), key_id(b"b", "x"));
        assert_eq!(key_id(b"a", "x"), key_id(b"a", "x"));
    }

    #[test]
    fn store_then_load_round_trips_and_garbage_is_ignored() {
        let dir =
            std::env::temp_dir().join(format!("mynacard-sim-keys-test-{}", std::process::id()));
        let key = generate_uncached(b"unit", "round-trip").unwrap();
        let file = dir.join("k.p8");
        store(&dir, &file, &key).unwrap();
        assert_eq!(load(&file).unwrap(), key);
        fs::write(&file, b"not a key").unwrap();
        assert!(load(&file).is_none());
        // A well-formed key of the wrong size is refused too.
        let small = PrivateKey::new(&mut ChaCha20Rng::from_seed([7; 32]), 1024).unwrap();
        fs::write(&file, small.to_pkcs8_der().unwrap().as_bytes()).unwrap();
        assert!(load(&file).is_none());
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("k.p8")]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_names_are_hex() {
        let name = file_name(&[0xab; 32]);
        assert_eq!(name.len(), 64 + 3);
        assert!(name.starts_with("abab"));
    }
}
