//! Peak resident memory of a child process, from the kernel's accounting of waited-for
//! children (`getrusage(RUSAGE_CHILDREN)`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::sys::resource::{UsageWho, getrusage};

/// Why the peak could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// It could not be run.
    #[error("running {path}: {source}")]
    Spawn {
        /// The program.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It failed.
    #[error("{path} exited with {status}")]
    Failed {
        /// The program.
        path: PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// The kernel's accounting could not be read.
    #[error("getrusage: {0}")]
    Rusage(#[from] nix::Error),
}

/// Runs `program args`, waits for it and returns its peak resident memory in KiB.
///
/// The kernel keeps the largest peak of all waited-for children, so this is exact only for
/// the first child this process waits for; the report runs it first.
///
/// # Errors
/// [`MemoryError`].
pub fn peak_rss_kib(program: &Path, args: &[&str]) -> Result<u64, MemoryError> {
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .map_err(|source| MemoryError::Spawn {
            path: program.to_owned(),
            source,
        })?;
    if !status.success() {
        return Err(MemoryError::Failed {
            path: program.to_owned(),
            status,
        });
    }
    // Linux reports ru_maxrss in KiB.
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN)?;
    Ok(u64::try_from(usage.max_rss()).unwrap_or(0))
}
