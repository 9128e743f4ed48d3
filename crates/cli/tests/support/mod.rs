//! What the command-line tests share: running the `mynacard` binary, reading its one JSON
//! document, checking exit codes, scratch files, and the reference service as a process (through
//! the registry's test kit).

#![allow(dead_code)] // every test file uses its own part of this

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs `mynacard` with `args`, feeding `stdin` (a PIN, say) or nothing, and waits for it.
pub(crate) fn mynacard<'a>(args: &[&str], stdin: impl Into<Option<&'a str>>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mynacard"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mynacard");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    if let Some(text) = stdin.into() {
        // A command refused before it reads stdin may exit first: its input is then unread,
        // which is what the test checks through the exit code, not a failure to run it.
        match pipe.write_all(text.as_bytes()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            result => result.expect("write stdin"),
        }
    }
    drop(pipe);
    child.wait_with_output().expect("wait for mynacard")
}

/// Standard output as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 stdout")
}

/// The one JSON document on standard output (`--json`).
pub(crate) fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Asserts the exit code, showing standard error when it differs.
#[track_caller]
pub(crate) fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh directory of this test process.
pub(crate) fn scratch() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "mynacard-cli-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// Writes `bytes` to `dir/name` and returns the path as text (for arguments).
pub(crate) fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write scratch file");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// `mynacard registry serve` running as a child process (the registry's test kit); killed and
/// reaped when dropped.
pub(crate) use mynacard_registry::test_kit::ServiceProcess as Service;

/// Starts `mynacard registry serve` (test roots allowed, no rate limit) on the SQLite file `db`,
/// listening on `listen` (`127.0.0.1:0` for a free port), with the options `extra` and the test
/// fault `fault` (none: the seeded upstreams answer). Returns once the service says where it
/// listens, with its URL.
pub(crate) fn serve(
    db: &Path,
    listen: &str,
    fault: Option<&str>,
    extra: &[&str],
) -> (Service, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mynacard"));
    command.args(["registry", "serve"]).stderr(Stdio::null());
    let service = Service::start(
        command,
        &format!("sqlite://{}", db.display()),
        listen,
        fault,
        extra,
    );
    let url = service.base_url.clone();
    (service, url)
}
