//! Load benchmark of the reference registration service over loopback HTTP.
//!
//! ```text
//! cargo build --release -p mynacard-registry --features dev-sim --bins --examples
//! target/release/examples/load [--db sqlite | --db postgres://…] [--short]
//!     [--registrations N] [--checks N] [--terminals N] [--service-cpus LIST] [--json FILE]
//! ```
//!
//! The service runs as its own process (the `mynacard-registry` program next to this example),
//! so its CPU time is read from `/proc/<pid>/stat` apart from the generator's. Many simulated
//! terminals (concurrent HTTP clients) drive it in phases:
//!
//! 1. setup (not timed): a pool of simulated cards, each with its own `O=JPKI-TEST` auth
//!    certificate and serial (sharing one RSA key, so the pool is cheap to make), and a seed file
//!    that tells the identity and insurance upstreams about every card;
//! 2. registration challenges (timed): `POST /v1/registrations`;
//! 3. signing (not timed): every intent signed ahead of time, as the cards would, with RSASSA-
//!    PKCS1-v1_5 over `DigestInfo(SHA-256(JCS(intent)))`, so the generator's RSA work does not
//!    hide the service's cost;
//! 4. registration proofs (timed): `POST /v1/registrations/{id}/proof`, each a new registration;
//! 5. and 6. the same for eligibility checks of the registered cards.
//!
//! Each timed phase reports requests per second, p50/p99 latency, and the service's CPU time per
//! request (and, on PostgreSQL, the CPU time of the database backends serving it).
//!
//! After the phases, the generator times, on one thread, the RSA work the service cannot avoid
//! for one eligibility proof (the card's signature over the intent, with the key of a
//! certificate already proven trusted), over the same certificates and signatures, in CPU
//! time as the service's is measured, and prints
//! the service's CPU per eligibility proof against it (`eligibility-cpu service=… rsa=…
//! ratio=…`). `--json FILE` writes the figures in a form scripts read (`"schema": 1`).

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mynacard_registration::messages::{Challenge, Intent, Proof};
use mynacard_registration::wire::{Bytes, UtcTime, V1};
use mynacard_sim::image::Date;
use mynacard_sim::pki::{CaKind, LeafSpec, TestPki, utc};

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    db: String,
    registrations: usize,
    checks: usize,
    terminals: usize,
    service_cpus: Option<String>,
    json: Option<PathBuf>,
}

fn options() -> Result<Options, Error> {
    let mut o = Options {
        db: "sqlite".into(),
        registrations: 5000,
        checks: 10_000,
        terminals: 64,
        service_cpus: None,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--db" => o.db = value()?,
            "--short" => {
                o.registrations = 400;
                o.checks = 800;
                o.terminals = 16;
            }
            "--registrations" => o.registrations = value()?.parse()?,
            "--checks" => o.checks = value()?.parse()?,
            "--terminals" => o.terminals = value()?.parse()?,
            "--service-cpus" => o.service_cpus = Some(value()?),
            "--json" => o.json = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    Ok(o)
}

/// CPU time (user + system) of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Peak resident set of a process, KiB (`VmHWM` of `/proc/<pid>/status`).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_service(db: &str, seed: &std::path::Path, cpus: Option<&str>) -> Result<Service, Error> {
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or("cannot locate the target directory")?;
    let program = dir.join("mynacard-registry");
    if !program.exists() {
        return Err(format!(
            "{} is missing: build it first (cargo build -p mynacard-registry --features dev-sim --bins)",
            program.display()
        )
        .into());
    }
    let args = [
        "--db",
        db,
        "--listen",
        "127.0.0.1:0",
        "--allow-test-roots",
        "--rate-limit",
        "0",
        "--peer-rate-limit",
        "0",
        "--db-connections",
        "16",
        "--seed",
        seed.to_str().ok_or("seed path")?,
    ];
    let mut command = match cpus {
        Some(list) => {
            let mut c = Command::new("taskset");
            c.args(["-c", list]).arg(&program);
            c
        }
        None => Command::new(&program),
    };
    command
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or("stdout")?).read_line(&mut line)?;
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .ok_or_else(|| format!("unexpected service output {line:?}"))?
        .to_owned();
    Ok(Service { child, base })
}

/// A card of the pool: its certificate (one per card) and the shared key.
struct Pool {
    certs: Vec<Vec<u8>>,
    key: rsa::PrivateKey,
}

fn make_pool(pki: &TestPki, n: usize) -> Result<Pool, Error> {
    let key = pki.key("load-benchmark-card")?;
    let public = key.to_public_key();
    let d = |year, month, day| Date { year, month, day };
    let not_before = utc(d(2025, 1, 1), 0, 0, 0)?;
    let not_after = utc(d(2030, 1, 1), 14, 59, 59)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = AtomicUsize::new(0);
    let mut certs: Vec<Option<Vec<u8>>> = vec![None; n];
    let chunks: Vec<Vec<(usize, Vec<u8>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return out;
                        }
                        let label = format!("load-card-{i}");
                        let spec = LeafSpec {
                            kind: CaKind::Auth,
                            serial: pki.serial(&label),
                            common_name: pki.opaque_common_name(&label, "13221"),
                            locality: None,
                            crl_partition: Some("Kiyose-shi".to_owned()),
                            not_before,
                            not_after,
                            holder: None,
                            public_key: public.clone(),
                        };
                        if let Ok(der) = pki.issue(&spec) {
                            out.push((i, der));
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (i, der) in chunks.into_iter().flatten() {
        certs[i] = Some(der);
    }
    let certs: Option<Vec<Vec<u8>>> = certs.into_iter().collect();
    Ok(Pool {
        certs: certs.ok_or("a certificate could not be issued")?,
        key,
    })
}

fn seed_file(pki: &TestPki, pool: &Pool, dir: &std::path::Path) -> Result<PathBuf, Error> {
    use std::fmt::Write as _;
    let root = format!(
        "test-{}",
        &mynacard_registration::Sha256Digest::of(pki.root_der(CaKind::Auth)).to_hex()[..16]
    );
    let mut text =
        String::from("# Generated by the load benchmark: one person per simulated card.\n");
    for i in 0..pool.certs.len() {
        let serial = pki.serial(&format!("load-card-{i}"));
        write!(
            text,
            "[[person]]\nlinkage_code = \"LOAD-{i}\"\ncertificates = [{{ root = \"{root}\", serial = \"{serial:x}\" }}]\n\
             [[person.insurance]]\ninsurer_number = \"06139999\"\nsymbol = \"12\"\nnumber = \"{i}\"\nbranch = \"01\"\n\
             insurer_name = \"みらい健康保険組合\"\n"
        )?;
    }
    let path = dir.join("seed.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

struct PhaseResult {
    name: &'static str,
    requests: usize,
    ok: usize,
    wall: Duration,
    latencies_us: Vec<u64>,
    service_cpu: f64,
    db_cpu: Option<f64>,
    generator_cpu: f64,
    /// Answers other than the expected one, by status (0: no answer), with the first body.
    unexpected: std::collections::BTreeMap<u16, usize>,
    first_unexpected: Option<String>,
}

impl PhaseResult {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.wall.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        self.latencies_us[i] as f64 / 1000.0
    }

    fn per_request(&self, cpu: f64) -> f64 {
        cpu * 1e6 / self.requests.max(1) as f64
    }

    /// The phase in the `--json` form.
    fn json(&self) -> serde_json::Value {
        let round = |x: f64| (x * 10.0).round() / 10.0;
        serde_json::json!({
            "name": self.name.replace(' ', "-"),
            "requests": self.requests,
            "seconds": (self.wall.as_secs_f64() * 1000.0).round() / 1000.0,
            "per_second": round(self.rate()),
            "p50_ms": (self.percentile(0.50) * 100.0).round() / 100.0,
            "p99_ms": (self.percentile(0.99) * 100.0).round() / 100.0,
            "service_cpu_us_per_request": round(self.per_request(self.service_cpu)),
            "db_cpu_us_per_request": self.db_cpu.map(|db| round(self.per_request(db))),
        })
    }

    fn print(&self) {
        let per = |cpu: f64| self.per_request(cpu);
        let mut line = format!(
            "{:<26} {:>6} req {:>6} ok {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  service CPU {:>6.0} µs/req",
            self.name,
            self.requests,
            self.ok,
            self.rate(),
            self.percentile(0.50),
            self.percentile(0.99),
            per(self.service_cpu),
        );
        if let Some(db) = self.db_cpu {
            line.push_str(&format!("  PostgreSQL server CPU {:>6.0} µs/req", per(db)));
        }
        line.push_str(&format!(
            "  generator CPU {:>6.0} µs/req",
            per(self.generator_cpu)
        ));
        println!("{line}");
        if !self.unexpected.is_empty() {
            let statuses: Vec<String> = self
                .unexpected
                .iter()
                .map(|(status, n)| format!("{status}: {n}"))
                .collect();
            println!(
                "  unexpected answers by status (0: none) {}; the first: {}",
                statuses.join(", "),
                self.first_unexpected.as_deref().unwrap_or("-")
            );
        }
    }
}

/// Sends every body in `requests` (path, body) with `terminals` concurrent clients.
#[allow(clippy::too_many_arguments)] // one call site per phase; a struct would only rename them
async fn phase(
    name: &'static str,
    client: &reqwest::Client,
    base: &str,
    requests: Vec<(String, Vec<u8>)>,
    terminals: usize,
    expect: u16,
    service_pid: u32,
    db_pids: &dyn Fn() -> Option<f64>,
) -> (PhaseResult, Vec<Option<Vec<u8>>>) {
    let total = requests.len();
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu0 = cpu_seconds(service_pid);
    let db0 = db_pids();
    let gen0 = cpu_seconds(std::process::id());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..terminals {
        let (client, base, requests, next) = (
            client.clone(),
            base.to_owned(),
            Arc::clone(&requests),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((path, body)) = requests.get(i) else {
                    return out;
                };
                let sent = Instant::now();
                let answer = client
                    .post(format!("{base}{path}"))
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let (status, bytes) = match answer {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        (status, r.bytes().await.map(|b| b.to_vec()).ok())
                    }
                    Err(_) => (0, None),
                };
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                out.push((i, micros, status, bytes));
            }
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut bodies = vec![None; total];
    let mut ok = 0;
    let mut unexpected = std::collections::BTreeMap::new();
    let mut first_unexpected = None;
    for t in tasks {
        if let Ok(results) = t.await {
            for (i, micros, status, bytes) in results {
                latencies.push(micros);
                if status == expect {
                    ok += 1;
                    bodies[i] = bytes;
                } else {
                    *unexpected.entry(status).or_insert(0) += 1;
                    if first_unexpected.is_none() {
                        let body = bytes.unwrap_or_default();
                        let shown = &body[..body.len().min(300)];
                        first_unexpected = Some(String::from_utf8_lossy(shown).into_owned());
                    }
                }
            }
        }
    }
    let wall = start.elapsed();
    latencies.sort_unstable();
    let result = PhaseResult {
        name,
        requests: total,
        ok,
        wall,
        latencies_us: latencies,
        service_cpu: cpu_seconds(service_pid) - cpu0,
        db_cpu: match (db0, db_pids()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        generator_cpu: cpu_seconds(std::process::id()) - gen0,
        unexpected,
        first_unexpected,
    };
    (result, bodies)
}

/// Signs the intents of `challenges` with the pool's key, `cards[i]` for challenge `i`, in
/// parallel. Returns (proof path, proof body).
fn sign_all(
    pool: &Pool,
    challenges: &[Challenge],
    cards: &[usize],
    terminal: impl Fn(usize) -> String + Sync,
) -> Vec<(String, Vec<u8>)> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = AtomicUsize::new(0);
    let mut out: Vec<Option<(String, Vec<u8>)>> = vec![None; challenges.len()];
    type Signed = (usize, (String, Vec<u8>));
    let parts: Vec<Vec<Signed>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(challenge) = challenges.get(i) else {
                            return done;
                        };
                        let cert = &pool.certs[cards[i]];
                        let intent =
                            Intent::for_challenge(challenge, &terminal(i), cert, UtcTime::now());
                        let Ok(digest_info) = intent.signed_digest_info() else {
                            continue;
                        };
                        let Ok(signature) = pool
                            .key
                            .sign(rsa::Pkcs1v15Sign::new_unprefixed(), &digest_info)
                        else {
                            continue;
                        };
                        let proof = Proof::PinSignature {
                            v: V1,
                            intent,
                            auth_cert: Bytes(cert.clone()),
                            signature: Bytes(signature),
                        };
                        if let Ok(body) = serde_json::to_vec(&proof) {
                            done.push((i, (challenge.op.proof_path(&challenge.session_id), body)));
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    for (i, item) in parts.into_iter().flatten() {
        out[i] = Some(item);
    }
    out.into_iter().flatten().collect()
}

/// What the service verifies with RSA for one eligibility proof of a card whose certificate it
/// already trusts: the card's signature over `DigestInfo(SHA-256(JCS(intent)))`.
struct CardSignature {
    key: rsa::PublicKey,
    digest_info: mynacard_sign::DigestInfo,
    signature: Vec<u8>,
}

fn card_signatures(proofs: &[(String, Vec<u8>)]) -> Result<Vec<CardSignature>, Error> {
    proofs
        .iter()
        .map(|(_, body)| {
            let proof: Proof = serde_json::from_slice(body)?;
            let Proof::PinSignature {
                intent,
                auth_cert,
                signature,
                ..
            } = proof
            else {
                return Err("not a PIN signature proof".into());
            };
            let cert = mynacard_cert::JpkiCertificate::from_der(auth_cert.as_slice())?;
            Ok(CardSignature {
                key: cert.rsa_public_key()?,
                digest_info: mynacard_sign::DigestInfo::from_der(&intent.signed_digest_info()?)?,
                signature: signature.0,
            })
        })
        .collect()
}

/// CPU time this thread has run, in seconds (`/proc/thread-self/schedstat`, nanoseconds), so
/// that time taken by other processes on the core is not counted; wall time without it.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// Microseconds of CPU per eligibility proof of its RSA work, on this thread: every signature
/// in turn (at least `min_iterations` verifications, the list repeated as needed), each
/// verified as the service does. CPU time, as the service's is measured.
fn rsa_us_per_proof(signatures: &[CardSignature], min_iterations: usize) -> Result<f64, Error> {
    if signatures.is_empty() {
        return Err("no eligibility proof to time".into());
    }
    let iterations = min_iterations.max(signatures.len());
    let (cpu0, start) = (thread_cpu_seconds(), Instant::now());
    for s in signatures.iter().cycle().take(iterations) {
        mynacard_sign::verify_pkcs1v15(&s.key, &s.digest_info, &s.signature)
            .map_err(|e| format!("a card signature does not verify: {e}"))?;
    }
    let seconds = match (cpu0, thread_cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => start.elapsed().as_secs_f64(),
    };
    Ok(seconds * 1e6 / iterations as f64)
}

fn start_bodies(path: &str, n: usize, kind: &str, terminals: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let body = format!(
                r#"{{"v":"1","terminal_id":"{kind}-{:04}","terminal_kind":"{kind}","locale":"ja","methods_supported":["pin_signature"]}}"#,
                i % terminals
            );
            (path.to_owned(), body.into_bytes())
        })
        .collect()
}

fn challenges(bodies: Vec<Option<Vec<u8>>>) -> Vec<Challenge> {
    bodies
        .into_iter()
        .flatten()
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect()
}

async fn fresh_postgres_database(base: &str) -> Result<(String, String), Error> {
    use sqlx::Connection as _;
    let name = format!("mynacard_load_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(base).await?;
    sqlx::Executor::execute(
        &mut admin,
        format!("DROP DATABASE IF EXISTS {name}").as_str(),
    )
    .await?;
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str()).await?;
    let (head, _) = base
        .rsplit_once('/')
        .ok_or("PostgreSQL URL without a database")?;
    Ok((format!("{head}/{name}"), name))
}

/// CPU seconds of every `postgres` process on this machine (the benchmark's own cluster:
/// server, backends, WAL writer, checkpointer).
fn postgres_cpu_seconds() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_seconds)
        .sum()
}

/// The CPUs this process may run on (`Cpus_allowed_list` of `/proc/self/status`).
fn allowed_cpus() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("Cpus_allowed_list:")
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_else(|| "?".into())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Error> {
    let o = options()?;
    let dir = std::env::temp_dir().join(format!("mynacard-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (db, pg) = if o.db == "sqlite" {
        (
            format!("sqlite://{}", dir.join("registry.db").display()),
            None,
        )
    } else {
        let (url, name) = fresh_postgres_database(&o.db).await?;
        (url, Some(name))
    };
    let setup = Instant::now();
    let pki = TestPki::shared()?;
    let pool = make_pool(pki, o.registrations)?;
    let seed = seed_file(pki, &pool, &dir)?;
    let service = start_service(&db, &seed, o.service_cpus.as_deref())?;
    let pid = service.child.id();
    println!(
        "load: {} on {}; {} registrations, {} eligibility checks, {} concurrent terminals; generator sees {} cores; setup {:.1} s",
        if pg.is_some() { "PostgreSQL" } else { "SQLite" },
        service.base,
        o.registrations,
        o.checks,
        o.terminals,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        setup.elapsed().as_secs_f64()
    );
    println!(
        "load: generator on CPUs {}, service on CPUs {}{}; intents signed ahead of time (RSA not timed)",
        allowed_cpus(),
        o.service_cpus.as_deref().unwrap_or("any"),
        if pg.is_some() {
            ", PostgreSQL on any CPU"
        } else {
            ""
        },
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(o.terminals)
        .build()?;
    let db_cpu = {
        let pg = pg.is_some();
        move || -> Option<f64> { pg.then(postgres_cpu_seconds) }
    };
    // Warm-up (not reported): opens the service's database connections.
    let _ = phase(
        "warm-up",
        &client,
        &service.base,
        start_bodies("/v1/eligibility", o.terminals * 8, "warmup", o.terminals),
        o.terminals,
        201,
        pid,
        &db_cpu,
    )
    .await;
    // Registration: challenges, then proofs (each card once).
    let (r1, bodies) = phase(
        "registration challenge",
        &client,
        &service.base,
        start_bodies("/v1/registrations", o.registrations, "atm", o.terminals),
        o.terminals,
        201,
        pid,
        &db_cpu,
    )
    .await;
    let reg_challenges = challenges(bodies);
    let signing = Instant::now();
    let cards: Vec<usize> = (0..reg_challenges.len()).collect();
    let proofs = sign_all(&pool, &reg_challenges, &cards, |i| {
        format!("atm-{:04}", i % o.terminals)
    });
    let reg_signing = signing.elapsed();
    let (r2, _) = phase(
        "registration proof",
        &client,
        &service.base,
        proofs,
        o.terminals,
        200,
        pid,
        &db_cpu,
    )
    .await;
    // Eligibility: checks of the registered cards, round robin.
    let (e1, bodies) = phase(
        "eligibility challenge",
        &client,
        &service.base,
        start_bodies("/v1/eligibility", o.checks, "face_reader", o.terminals),
        o.terminals,
        201,
        pid,
        &db_cpu,
    )
    .await;
    let elig_challenges = challenges(bodies);
    let signing = Instant::now();
    let cards: Vec<usize> = (0..elig_challenges.len())
        .map(|i| i % pool.certs.len().max(1))
        .collect();
    let proofs = sign_all(&pool, &elig_challenges, &cards, |i| {
        format!("face_reader-{:04}", i % o.terminals)
    });
    let elig_signing = signing.elapsed();
    let signatures = card_signatures(&proofs)?;
    let (e2, _) = phase(
        "eligibility proof",
        &client,
        &service.base,
        proofs,
        o.terminals,
        200,
        pid,
        &db_cpu,
    )
    .await;
    println!();
    for r in [&r1, &r2, &e1, &e2] {
        r.print();
    }
    let combined = |a: &PhaseResult, b: &PhaseResult| 1.0 / (1.0 / a.rate() + 1.0 / b.rate());
    println!();
    println!(
        "registrations/s (challenge + proof back to back): {:.0}   target 500/s",
        combined(&r1, &r2)
    );
    println!(
        "eligibility checks/s (challenge + proof back to back): {:.0}   target 2000/s",
        combined(&e1, &e2)
    );
    println!(
        "pre-signing (not timed): {} registration intents in {:.1} s, {} eligibility intents in {:.1} s",
        r2.requests,
        reg_signing.as_secs_f64(),
        e2.requests,
        elig_signing.as_secs_f64()
    );
    let peak_rss = peak_rss_kib(pid);
    drop(service);
    // With the service stopped, so that the generator's thread has a core to itself as the
    // pinned service had.
    let rsa_us = rsa_us_per_proof(&signatures, 10_000)?;
    let service_us = e2.per_request(e2.service_cpu);
    let ratio = service_us / rsa_us;
    println!("eligibility-cpu service={service_us:.1}us rsa={rsa_us:.1}us ratio={ratio:.2}");
    if let Some(path) = &o.json {
        let round = |x: f64| (x * 10.0).round() / 10.0;
        let report = serde_json::json!({
            "schema": 1,
            "db": if pg.is_some() { "postgres" } else { "sqlite" },
            "terminals": o.terminals,
            "service_pinned": o.service_cpus.is_some(),
            "phases": [r1.json(), r2.json(), e1.json(), e2.json()],
            "eligibility_rsa_us_per_proof": round(rsa_us),
            "eligibility_cpu_ratio": (ratio * 100.0).round() / 100.0,
            "service_peak_rss_kib": peak_rss,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    let failed = [&r1, &r2, &e1, &e2]
        .iter()
        .map(|r| r.requests - r.ok)
        .sum::<usize>();
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 || r2.requests != o.registrations || e2.requests != o.checks {
        return Err(format!("{failed} requests did not get the expected answer").into());
    }
    Ok(())
}
