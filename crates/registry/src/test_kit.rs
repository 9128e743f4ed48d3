//! What tests share to start the reference service (feature `test-kit`, which brings
//! `dev-sim`): fresh databases ([`sqlite`], [`postgres`]), the configuration for the simulated
//! cards ([`config`]), and the service as a child process ([`ServiceProcess`]). The tests of
//! this crate, of `mynacard-registration` and of the `mynacard` command use it.
//!
//! Test code: every function panics when its setup fails, with what failed.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use crate::Config;

/// Environment variable with the URL of a PostgreSQL server the tests may create databases on
/// (`scripts/test.sh` starts a private cluster and sets it).
pub const POSTGRES_ENV: &str = "MYNACARD_TEST_POSTGRES_URL";

/// A fresh database URL, and what to clean up when it is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The URL to connect to.
    pub url: String,
    dir: Option<PathBuf>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name no other database of this or another test process has.
fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A new SQLite file in a new temporary directory (removed on drop).
pub fn sqlite() -> TestDb {
    let dir = std::env::temp_dir().join(unique("mynacard_registry_test"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("registry.db").display());
    TestDb {
        url,
        dir: Some(dir),
    }
}

/// A new, empty PostgreSQL database on the server named by [`POSTGRES_ENV`]. Panics when the
/// variable is missing: the PostgreSQL tests are compiled only with their features, and then
/// they must run, not skip.
pub async fn postgres() -> TestDb {
    let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
        panic!("{POSTGRES_ENV} must name a PostgreSQL server for the PostgreSQL tests")
    });
    let name = unique("mynacard_test");
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    let url = match base.rfind('/') {
        Some(slash)
            if base[..slash].contains("://") && slash > base.find("://").unwrap_or(0) + 2 =>
        {
            let (head, tail) = base.split_at(slash);
            let query = tail.find('?').map(|q| &tail[q..]).unwrap_or("");
            format!("{head}/{name}{query}")
        }
        _ => format!("{base}/{name}"),
    };
    TestDb { url, dir: None }
}

/// The service for the simulated cards on `database_url`: the built-in seed, the simulator's
/// roots, CVC authorities and CRL as of `now`, rate limiting (per terminal and per peer) off,
/// the clock starting at `now`.
pub fn config(database_url: &str, now: SystemTime) -> Config {
    let mut config = Config::new(database_url);
    config.seed = crate::Seed::builtin().expect("built-in seed");
    crate::options::simulator_trust(now)
        .expect("simulator trust")
        .apply_to(&mut config);
    config.rate_limit = None;
    config.peer_rate_limit = None;
    config.start_time = Some(now);
    config
}

/// The reference service as a child process: the `mynacard-registry` program, or
/// `mynacard registry serve`. Killed and reaped when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    /// The process.
    pub child: Child,
    /// Where it listens (`http://ADDR` or `https://ADDR`).
    pub base_url: String,
}

impl ServiceProcess {
    /// Starts `command` (the program and any subcommand, e.g. `mynacard registry serve`) on
    /// the database `db`, listening on `listen` (`127.0.0.1:0` for a free port), with test
    /// roots allowed, no rate limit (per terminal or per peer), the options `extra`, and the test faults `fault` in
    /// `MYNACARD_REGISTRY_FAULT` (feature `fault-injection`; none: the seeded upstreams
    /// answer). Returns once the service says where it listens. Standard error is what
    /// `command` says (inherited unless set).
    pub fn start(
        mut command: Command,
        db: &str,
        listen: &str,
        fault: Option<&str>,
        extra: &[&str],
    ) -> ServiceProcess {
        command
            .args([
                "--db",
                db,
                "--listen",
                listen,
                "--allow-test-roots",
                "--rate-limit",
                "0",
                "--peer-rate-limit",
                "0",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped());
        #[cfg(feature = "fault-injection")]
        match fault {
            Some(f) => command.env(crate::options::FAULT_ENV, f),
            None => command.env_remove(crate::options::FAULT_ENV),
        };
        #[cfg(not(feature = "fault-injection"))]
        assert!(
            fault.is_none(),
            "test faults need the fault-injection feature"
        );
        let mut child = command.spawn().expect("start the service");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the service's address");
        let base_url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("the service said {line:?}"))
            .to_owned();
        ServiceProcess { child, base_url }
    }

    /// Waits for the process to end by itself; returns its exit code.
    pub fn wait(mut self) -> Option<i32> {
        self.child.wait().expect("wait").code()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Certificates a client can make without any key of the hierarchy: a real certificate's DER
/// changed so that it still parses (and still names its real issuer) but no longer verifies.
/// For tests of what such certificates cost the service.
pub mod forge {
    /// `1.3.6.1.4.1.32473.1`: under the private enterprise number set aside for documentation
    /// (RFC 5612); no verifier knows it.
    const FILLER_OID: [u8; 9] = [0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xFD, 0x59, 0x01];

    /// The header length and content length of the DER element at the start of `der`.
    fn header(der: &[u8]) -> (usize, usize) {
        let first = der[1];
        if first < 0x80 {
            return (2, usize::from(first));
        }
        let n = usize::from(first & 0x7F);
        let len = der[2..2 + n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (2 + n, len)
    }

    /// The elements of a constructed element's content, each with its header.
    fn children(content: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        let mut rest = content;
        while !rest.is_empty() {
            let (h, len) = header(rest);
            out.push(&rest[..h + len]);
            rest = &rest[h + len..];
        }
        out
    }

    fn content(der: &[u8]) -> &[u8] {
        let (h, len) = header(der);
        &der[h..h + len]
    }

    /// A DER element of `tag` around `content`.
    pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n if n < 0x80 => out.push(n as u8),
            n => {
                let bytes = n.to_be_bytes();
                let skip = bytes.iter().take_while(|&&b| b == 0).count();
                out.push(0x80 | (bytes.len() - skip) as u8);
                out.extend_from_slice(&bytes[skip..]);
            }
        }
        out.extend_from_slice(content);
        out
    }

    /// The certificate with its TBS changed by `change` (its elements, in order), the
    /// signature kept (so it no longer verifies).
    fn with_tbs(cert: &[u8], change: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
        let parts = children(content(cert));
        let mut tbs: Vec<Vec<u8>> = children(content(parts[0]))
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        change(&mut tbs);
        let tbs = tlv(0x30, &tbs.concat());
        tlv(0x30, &[tbs.as_slice(), parts[1], parts[2]].concat())
    }

    /// `cert` with one more non-critical extension holding `filler_len` bytes that begin with
    /// `salt`, so that each salt gives another certificate of about `cert.len() + filler_len`
    /// bytes.
    pub fn with_filler(cert: &[u8], filler_len: usize, salt: u64) -> Vec<u8> {
        let mut filler = vec![0x5Au8; filler_len.max(8)];
        filler[..8].copy_from_slice(&salt.to_be_bytes());
        let extension = tlv(
            0x30,
            &[tlv(0x06, &FILLER_OID), tlv(0x04, &tlv(0x04, &filler))].concat(),
        );
        with_tbs(cert, |tbs| {
            let last = tbs.last_mut().expect("a TBS has elements");
            assert_eq!(last[0], 0xA3, "the certificate has extensions");
            let mut extensions: Vec<u8> = content(content(last)).to_vec();
            extensions.extend_from_slice(&extension);
            *last = tlv(0xA3, &tlv(0x30, &extensions));
        })
    }

    /// `cert` with its subject public key replaced by the RSA key (`modulus`, 65537).
    pub fn with_rsa_key(cert: &[u8], modulus: &[u8]) -> Vec<u8> {
        let mut n = vec![0u8];
        n.extend_from_slice(modulus);
        let key = tlv(
            0x30,
            &[tlv(0x02, &n), tlv(0x02, &[0x01, 0x00, 0x01])].concat(),
        );
        let mut bits = vec![0u8];
        bits.extend_from_slice(&key);
        // rsaEncryption, NULL parameters.
        let algorithm = tlv(
            0x30,
            &[
                tlv(
                    0x06,
                    &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01],
                ),
                vec![0x05, 0x00],
            ]
            .concat(),
        );
        let spki = tlv(0x30, &[algorithm, tlv(0x03, &bits)].concat());
        with_tbs(cert, |tbs| {
            // version [0], serial, signature, issuer, validity, subject, then the key.
            let at = if tbs[0][0] == 0xA0 { 6 } else { 5 };
            tbs[at] = spki;
        })
    }

    /// An odd modulus of exactly `bits` bits (a multiple of 8) that no one has the key of.
    pub fn modulus(bits: usize) -> Vec<u8> {
        let mut n = vec![0xC5u8; bits / 8];
        n[0] |= 0x80;
        if let Some(last) = n.last_mut() {
            *last |= 1;
        }
        n
    }
}
