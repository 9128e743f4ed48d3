//! Reading what the command takes as input (files, stdin), each with a bound suited to its
//! kind, so that a wrong path (`/dev/zero`, a disk image, a log) ends with a clear error instead
//! of taking all the memory.
//!
//! Every input file and stdin document goes through [`read_bounded`] or
//! [`read_bounded_from`]; a failure is a usage error (exit 2): the input named is not usable.

use std::io::Read;
use std::path::Path;

use crate::exit::CliError;

/// A kind of input: what it is called in messages and the most bytes one may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InputKind {
    /// How messages name it ("not a {what}").
    pub(crate) what: &'static str,
    /// The most bytes accepted.
    pub(crate) limit: u64,
}

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A certificate, DER or PEM (JPKI certificates are under 2 KiB; a PEM chain is a few).
pub(crate) const CERTIFICATE: InputKind = InputKind {
    what: "certificate",
    limit: 64 * KIB,
};

/// A certificate revocation list, DER or PEM (J-LIS CRLs run to megabytes).
pub(crate) const CRL: InputKind = InputKind {
    what: "CRL",
    limit: 256 * MIB,
};

/// A file to sign or whose signature is checked; it is held in memory whole.
pub(crate) const CONTENT: InputKind = InputKind {
    what: "file to sign or verify (held in memory)",
    limit: 512 * MIB,
};

/// A signature, raw or CMS (a CMS message carries a few certificates).
pub(crate) const SIGNATURE: InputKind = InputKind {
    what: "signature",
    limit: MIB,
};

/// The pending-status document `register --no-wait --json` prints (well under a KiB).
pub(crate) const PENDING_DOCUMENT: InputKind = InputKind {
    what: "pending registration status",
    limit: 64 * KIB,
};

/// A P-256 PKCS#8 private key, DER (about 140 bytes).
pub(crate) const PKCS8_KEY: InputKind = InputKind {
    what: "PKCS#8 key",
    limit: 16 * KIB,
};

/// A PEM bundle: a CA bundle or a client certificate chain with its key.
pub(crate) const PEM_BUNDLE: InputKind = InputKind {
    what: "PEM file",
    limit: MIB,
};

/// The registry's seed file (TOML: the simulated upstreams' persons and terminals).
pub(crate) const SEED: InputKind = InputKind {
    what: "seed file",
    limit: 16 * MIB,
};

/// A simulated card's state file (PIN counters and PINs, a few hundred bytes).
pub(crate) const STATE_FILE: InputKind = InputKind {
    what: "simulated card state file",
    limit: mynacard_sim::state::MAX_STATE_FILE,
};

/// One line of a secret (PIN, password, 照合番号B) or an answer typed on stdin.
pub(crate) const STDIN_LINE: InputKind = InputKind {
    what: "line of input (a PIN, password or answer)",
    limit: 1024,
};

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InputError {
    /// Opening or reading failed.
    #[error("cannot read {name}")]
    Io {
        /// The input's name.
        name: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// More bytes than its kind may have.
    #[error("{name}: larger than {limit} bytes, not a {what}")]
    TooLarge {
        /// The input's name.
        name: String,
        /// The bound of its kind.
        limit: u64,
        /// The kind.
        what: &'static str,
    },
}

impl From<InputError> for CliError {
    fn from(err: InputError) -> Self {
        let message = err.to_string();
        match err {
            // The message already says what; the cause is the system's reason.
            InputError::Io { source, .. } => CliError::usage(message).with_source(source),
            InputError::TooLarge { .. } => CliError::usage(message),
        }
    }
}

/// Reads the file at `path` whole, refusing more than `kind.limit` bytes.
///
/// # Errors
/// [`InputError`] (as a usage error): the file cannot be read or is too large for its kind.
pub(crate) fn read_bounded(path: &Path, kind: InputKind) -> Result<Vec<u8>, CliError> {
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| InputError::Io {
        name: name.clone(),
        source,
    })?;
    let too_large = || InputError::TooLarge {
        name: name.clone(),
        limit: kind.limit,
        what: kind.what,
    };
    // A regular file says its length: one too long is refused unread. Devices and pipes say 0
    // and are cut off by the bounded read below.
    let claimed = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    };
    if claimed > kind.limit {
        return Err(too_large().into());
    }
    // As `std::fs::read` does, the buffer is sized once from the length the file claims (so a
    // key is not left behind in grown-out copies).
    let capacity = claimed.saturating_add(1);
    Ok(read_bounded_from(
        file,
        &name,
        kind,
        usize::try_from(capacity).unwrap_or(0),
    )?)
}

/// Reads `reader` to its end (stdin, an open file), refusing more than `kind.limit` bytes;
/// `name` names it in errors, `capacity` is the buffer's first size.
///
/// # Errors
/// [`InputError`].
pub(crate) fn read_bounded_from(
    reader: impl Read,
    name: &str,
    kind: InputKind,
    capacity: usize,
) -> Result<Vec<u8>, InputError> {
    let mut bytes = Vec::with_capacity(capacity);
    reader
        .take(kind.limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| InputError::Io {
            name: name.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > kind.limit {
        return Err(InputError::TooLarge {
            name: name.to_owned(),
            limit: kind.limit,
            what: kind.what,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_is_inclusive_and_named() {
        let at_limit = vec![b'x'; 1024];
        let read = read_bounded_from(at_limit.as_slice(), "stdin", STDIN_LINE, 0).unwrap();
        assert_eq!(read.len(), 1024);
        let over = vec![b'x'; 1025];
        let err = read_bounded_from(over.as_slice(), "stdin", STDIN_LINE, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "stdin: larger than 1024 bytes, not a line of input (a PIN, password or answer)"
        );
    }

    #[test]
    fn an_endless_source_stops_at_the_bound() {
        let err = read_bounded_from(std::io::repeat(0), "zeros", CERTIFICATE, 0).unwrap_err();
        assert!(matches!(err, InputError::TooLarge { limit, .. } if limit == 64 * 1024));
    }
}
