//! What one client can make the service spend in connections and time, over real sockets on
//! loopback: thousands of connections stalled in their headers or bodies are closed by the
//! timeouts while an honest registration goes through (plain HTTP and TLS), the shutdown
//! returns within its grace with them still open (in-process and on SIGTERM), the connection
//! cap refuses and recovers and logs once, and the cap per peer evicts a peer's own stalled
//! connections for its new ones.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use mynacard_registration::driver::{self, ServiceClient, Wait};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::Machine;
use mynacard_registration::messages::{TerminalKind, paths};
use mynacard_registration::outcome::Outcome;
use mynacard_registry::{ConnectionLimits, RunningService};
use rustls_pki_types::pem::PemObject as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use common::e2e::{ATM, PinTerminal, card, flow};
use common::tls::{TERMINAL_A, TestPki};
use mynacard_registry::test_kit as db;

/// Stalled connections per test over plain HTTP (half in the headers, half in the body).
const STALLED: usize = 2000;
/// Over TLS, where each costs a handshake.
const STALLED_TLS: usize = 200;
/// Descriptors this test binary may hold at once: its tests run in parallel, two of them with
/// both ends of [`STALLED`] sockets in this process, one with its client ends, and the rest.
const DESCRIPTORS: u64 = 5 * STALLED as u64 + 4 * STALLED_TLS as u64 + 2048;

/// Raises this process's soft descriptor limit to its hard limit when it is below `needed`;
/// fails, never skips, when the hard limit is too low. Child processes inherit it.
fn raise_descriptor_limit(needed: u64) {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().expect("read RLIMIT_NOFILE");
    assert!(
        hard >= needed,
        "these tests hold {needed} sockets open, but the hard RLIMIT_NOFILE is {hard}: raise it \
         (e.g. `ulimit -Hn {needed}` as root, or `nofile` in /etc/security/limits.conf)"
    );
    if soft < needed {
        Resource::NOFILE
            .set(hard, hard)
            .expect("raise the soft RLIMIT_NOFILE to the hard limit");
    }
}

/// How a hostile connection stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// Half a request line and header, then nothing.
    Headers,
    /// Headers announcing 100 MB, 1 KB of body, then nothing.
    Body,
}

impl Stall {
    fn of(i: usize) -> Stall {
        if i.is_multiple_of(2) {
            Stall::Headers
        } else {
            Stall::Body
        }
    }

    fn bytes(self) -> Vec<u8> {
        match self {
            Stall::Headers => format!(
                "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
                paths::REGISTRATIONS
            )
            .into_bytes(),
            Stall::Body => {
                let mut bytes = format!(
                    "POST {} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                     Content-Length: 100000000\r\n\r\n",
                    paths::REGISTRATIONS
                )
                .into_bytes();
                bytes.extend(std::iter::repeat_n(b' ', 1024));
                bytes
            }
        }
    }
}

/// When the service closed one stalled connection, and what it had answered before.
#[derive(Debug)]
struct Closed {
    stall: Stall,
    opened: Instant,
    closed: Instant,
    answer: Vec<u8>,
}

/// Reads `stream` until the service closes it (end of stream or reset).
async fn until_closed<S: AsyncRead + Unpin>(
    mut stream: S,
    stall: Stall,
    opened: Instant,
) -> Closed {
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    Closed {
        stall,
        opened,
        closed: Instant::now(),
        answer,
    }
}

/// Opens `n` plain connections to `addr`, each stalled as [`Stall::of`] its index, and
/// watches each until the service closes it.
async fn stall_plain(addr: SocketAddr, n: usize) -> JoinSet<Closed> {
    let mut watching = JoinSet::new();
    for i in 0..n {
        let stall = Stall::of(i);
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let opened = Instant::now();
        stream.write_all(&stall.bytes()).await.expect("send");
        watching.spawn(until_closed(stream, stall, opened));
    }
    watching
}

/// As [`stall_plain`], over TLS 1.3 without a client certificate.
async fn stall_tls(addr: SocketAddr, n: usize) -> JoinSet<Closed> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(
        TestPki::shared().service_ca_pem.as_bytes(),
    ) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .expect("TLS 1.3")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1").expect("name");
    let mut watching = JoinSet::new();
    for i in 0..n {
        let stall = Stall::of(i);
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let opened = Instant::now();
        let mut tls = connector
            .connect(name.clone(), tcp)
            .await
            .expect("TLS handshake");
        tls.write_all(&stall.bytes()).await.expect("send");
        tls.flush().await.expect("flush");
        watching.spawn(until_closed(tls, stall, opened));
    }
    watching
}

/// Waits until the service counts at least `n` open connections.
async fn until_open(service: &RunningService, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while service.connection_stats().open < n {
        assert!(
            Instant::now() < deadline,
            "only {:?} of {n} connections were accepted",
            service.connection_stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A PIN registration as the seeded ATM through `client`; returns when it ended.
async fn register(client: &dyn ServiceClient, terminal: &str, now: SystemTime) -> Instant {
    let sim = card("adult");
    let mut channel = sim.channel();
    let report = driver::run_waiting(
        Machine::register_with_pin(flow(terminal, TerminalKind::Atm, now)),
        &mut channel,
        client,
        &mut PinTerminal("1234"),
        Wait::ForService,
    )
    .await
    .expect("flow runs");
    assert!(
        matches!(report.outcome, Outcome::Registered { .. }),
        "{:?}",
        report.outcome
    );
    Instant::now()
}

/// Limits with `timeout` for headers and bodies and caps high enough for every stalled
/// connection, so that the timeouts alone close them.
fn timeouts_only(timeout: Duration) -> ConnectionLimits {
    ConnectionLimits {
        header_timeout: timeout,
        body_timeout: timeout,
        max_connections: 3 * STALLED,
        max_connections_per_peer: None,
        ..ConnectionLimits::default()
    }
}

/// Checks that every stalled connection was closed between `timeout` and `timeout` plus a
/// margin after it was opened, only after `registered` (so the registration ran while all
/// were open), and that the stalled bodies were answered `400` first.
async fn assert_closed_by_timeouts(
    mut watching: JoinSet<Closed>,
    n: usize,
    timeout: Duration,
    registered: Instant,
) {
    let margin = Duration::from_secs(6);
    let mut closed = Vec::new();
    while let Some(c) = tokio::time::timeout(
        timeout + margin + Duration::from_secs(5),
        watching.join_next(),
    )
    .await
    .expect("the service closes every stalled connection")
    {
        closed.push(c.expect("watcher"));
    }
    assert_eq!(closed.len(), n);
    let mut held = Vec::new();
    for c in &closed {
        let after = c.closed - c.opened;
        held.push(after);
        // The client's clock starts a little before the service's.
        assert!(
            after + Duration::from_millis(100) >= timeout,
            "{:?} closed after {after:?}, before {timeout:?}",
            c.stall
        );
        assert!(
            after <= timeout + margin,
            "{:?} held for {after:?}",
            c.stall
        );
        assert!(
            c.closed > registered,
            "a stalled connection closed before the registration ended"
        );
        match c.stall {
            Stall::Headers => assert!(
                c.answer.is_empty(),
                "{:?}",
                String::from_utf8_lossy(&c.answer)
            ),
            Stall::Body => assert!(
                c.answer.starts_with(b"HTTP/1.1 400"),
                "{:?}",
                String::from_utf8_lossy(&c.answer)
            ),
        }
    }
    held.sort();
    eprintln!(
        "{n} stalled connections held by the service: min {:?}, median {:?}, max {:?} (timeout {timeout:?})",
        held[0],
        held[n / 2],
        held[n - 1]
    );
}

/// 2,000 connections stalled in their headers or bodies over plain HTTP are all held open at
/// once, an honest registration succeeds meanwhile, and the header and body timeouts close
/// every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_timed_out_while_a_registration_succeeds() {
    raise_descriptor_limit(DESCRIPTORS);
    let now = SystemTime::now();
    let store = db::sqlite();
    let timeout = Duration::from_secs(3);
    let mut config = db::config(&store.url, now);
    config.connection_limits = timeouts_only(timeout);
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let watching = stall_plain(service.addr(), STALLED).await;
    until_open(&service, STALLED as u64).await;
    let started = Instant::now();
    let client =
        HttpClient::with_timeout(&service.base_url(), Duration::from_secs(10)).expect("client");
    let registered = register(&client, ATM, now).await;
    eprintln!(
        "registration beside {STALLED} stalled connections: {} ms",
        (registered - started).as_millis()
    );
    assert!(service.connection_stats().open > STALLED as u64);
    assert_closed_by_timeouts(watching, STALLED, timeout, registered).await;
    let stats = service.connection_stats();
    assert!(stats.timed_out >= STALLED as u64, "{stats:?}");
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert_eq!(service.registration_count().await.expect("count"), 1);
    service.shutdown().await;
}

/// The same over TLS (fewer sockets: each costs a handshake), the registration with the
/// terminal's client certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_connections_are_timed_out_while_a_registration_succeeds() {
    raise_descriptor_limit(DESCRIPTORS);
    let now = SystemTime::now();
    let store = db::sqlite();
    let timeout = Duration::from_secs(3);
    let mut config = db::config(&store.url, now);
    config.connection_limits = timeouts_only(timeout);
    config.tls = Some(TestPki::shared().settings(false));
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let watching = stall_tls(service.addr(), STALLED_TLS).await;
    until_open(&service, STALLED_TLS as u64).await;
    let client =
        TestPki::shared().http_client(&service.base_url(), Some(&TestPki::shared().terminal_a));
    let registered = register(&client, TERMINAL_A, now).await;
    assert_closed_by_timeouts(watching, STALLED_TLS, timeout, registered).await;
    assert!(service.connection_stats().timed_out >= STALLED_TLS as u64);
    service.shutdown().await;
}

/// With 2,000 stalled connections open (their timeouts far away), `shutdown` closes those
/// stalled in their headers at once, gives the requests in flight (the stalled bodies) its 1 s
/// grace, and then returns, having closed them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_within_its_grace_with_stalled_connections_open() {
    raise_descriptor_limit(DESCRIPTORS);
    let store = db::sqlite();
    // Long enough that closing a thousand idle sockets on a loaded machine (the other tests of
    // this file run beside it) stays well inside half of it.
    let grace = Duration::from_secs(3);
    let mut config = db::config(&store.url, SystemTime::now());
    config.connection_limits = ConnectionLimits {
        shutdown_grace: grace,
        ..timeouts_only(Duration::from_secs(120))
    };
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let mut watching = stall_plain(service.addr(), STALLED).await;
    until_open(&service, STALLED as u64).await;
    // Open is not yet in flight: on a loaded machine the service may not have read every
    // stalled body's headers when the sockets count as open, and a request it never saw is
    // rightly closed at once. Give it time to read them before the shutdown is timed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    service.shutdown().await;
    let elapsed = started.elapsed();
    eprintln!(
        "shutdown with {STALLED} stalled connections open: {} ms",
        elapsed.as_millis()
    );
    // The stalled bodies are requests in flight: they get the grace, not more.
    assert!(
        elapsed >= grace,
        "returned after {elapsed:?}, before the grace"
    );
    assert!(
        elapsed < grace + Duration::from_secs(2),
        "returned after {elapsed:?}"
    );
    let mut closed = 0;
    while let Some(c) = tokio::time::timeout(Duration::from_secs(5), watching.join_next())
        .await
        .expect("every connection is closed")
    {
        let c = c.expect("watcher");
        let after = c.closed - started;
        match c.stall {
            // No request with the handlers: nothing to wait for.
            Stall::Headers => assert!(after < grace / 2, "headers: closed after {after:?}"),
            // A request in flight: it gets the grace, then its connection is dropped.
            Stall::Body => assert!(
                after + Duration::from_millis(50) >= grace
                    && after < grace + Duration::from_secs(2),
                "body: closed after {after:?}"
            ),
        }
        closed += 1;
    }
    assert_eq!(closed, STALLED);
}

/// The program on SIGTERM: with 2,000 stalled connections open it exits, successfully, within
/// its `--shutdown-grace-ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_exits_within_its_grace_on_sigterm() {
    raise_descriptor_limit(DESCRIPTORS);
    let store = db::sqlite();
    let service = common::e2e::service_with(
        &store.url,
        "127.0.0.1:0",
        None,
        &[
            "--shutdown-grace-ms",
            "1000",
            "--header-timeout-ms",
            "120000",
            "--body-timeout-ms",
            "120000",
            "--max-client-connections",
            "10000",
            "--max-connections-per-peer",
            "0",
        ],
    );
    let addr: SocketAddr = service
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let mut watching = stall_plain(addr, STALLED).await;
    // Every one is held: none has been closed after a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(100), watching.join_next())
            .await
            .is_err(),
        "the service closed a stalled connection before the shutdown"
    );
    let pid = service.child.id().to_string();
    let started = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let code = tokio::task::spawn_blocking(move || service.wait())
        .await
        .expect("wait");
    let elapsed = started.elapsed();
    eprintln!(
        "exit on SIGTERM with {STALLED} stalled connections open: {} ms",
        elapsed.as_millis()
    );
    assert_eq!(code, Some(0));
    assert!(elapsed < Duration::from_secs(3), "exited after {elapsed:?}");
}

/// Opens `n` connections stalled in their headers; returns them.
async fn hold(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(&Stall::Headers.bytes())
            .await
            .expect("send");
        held.push(stream);
    }
    held
}

/// Whether the service closes `stream` within `within` without answering.
async fn closed_within<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    within: Duration,
) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// With the cap at 50, the 51st connection and those after it are closed at once, the 50 stay
/// open, the counter says how many were refused, and once the 50 have closed a new connection
/// is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_refuses_beyond_it_and_serves_again_below_it() {
    let store = db::sqlite();
    let mut config = db::config(&store.url, SystemTime::now());
    config.connection_limits = ConnectionLimits {
        max_connections: 50,
        max_connections_per_peer: None,
        ..timeouts_only(Duration::from_secs(120))
    };
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let mut held = hold(service.addr(), 50).await;
    until_open(&service, 50).await;
    for _ in 0..10 {
        let mut extra = TcpStream::connect(service.addr()).await.expect("connect");
        assert!(
            closed_within(&mut extra, Duration::from_secs(2)).await,
            "not refused"
        );
    }
    for stream in &mut held {
        assert!(
            !closed_within(stream, Duration::from_millis(10)).await,
            "a held one closed"
        );
    }
    let stats = service.connection_stats();
    assert_eq!(
        (stats.open, stats.accepted, stats.refused),
        (50, 50, 10),
        "{stats:?}"
    );
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while service.connection_stats().open > 0 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            service.connection_stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let consent = reqwest::get(format!("{}{}", service.base_url(), paths::CONSENT))
        .await
        .expect("served below the cap");
    assert_eq!(consent.status(), 200);
    assert_eq!(service.connection_stats().refused, 10);
    service.shutdown().await;
}

/// The program with `--max-client-connections 50` logs the refusals of a flood in one line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_is_logged_once() {
    let store = db::sqlite();
    let mut program = Command::new(env!("CARGO_BIN_EXE_mynacard-registry"));
    program.stderr(Stdio::piped());
    let mut service = db::ServiceProcess::start(
        program,
        &store.url,
        "127.0.0.1:0",
        None,
        &[
            "--max-client-connections",
            "50",
            "--max-connections-per-peer",
            "0",
            "--header-timeout-ms",
            "120000",
        ],
    );
    let stderr = service.child.stderr.take().expect("stderr");
    let lines = Arc::new(Mutex::new(Vec::new()));
    let reader = {
        let lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().expect("lock").push(line);
            }
        })
    };
    let addr: SocketAddr = service
        .base_url
        .trim_start_matches("http://")
        .parse()
        .expect("address");
    let held = hold(addr, 50).await;
    // The 50 are accepted before the flood (the accept loop takes them in order).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..200 {
        let mut extra = TcpStream::connect(addr).await.expect("connect");
        assert!(
            closed_within(&mut extra, Duration::from_secs(2)).await,
            "not refused"
        );
    }
    drop(held);
    drop(service);
    reader.join().expect("reader");
    let lines = lines.lock().expect("lock");
    let cap_lines: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("connection cap reached"))
        .collect();
    assert_eq!(cap_lines.len(), 1, "{lines:#?}");
    assert!(cap_lines[0].contains("refused=1"), "{}", cap_lines[0]);
}

/// With a cap of 20 per peer, a peer's 100 stalled connections leave 20 open: each new one
/// closed its peer's oldest unanswered one. The same peer's honest registration still goes
/// through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_at_its_cap_displaces_its_own_stalled_connections() {
    let now = SystemTime::now();
    let store = db::sqlite();
    let mut config = db::config(&store.url, now);
    config.connection_limits = ConnectionLimits {
        max_connections_per_peer: Some(20),
        ..timeouts_only(Duration::from_secs(120))
    };
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let mut held = hold(service.addr(), 100).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while service.connection_stats().evicted < 80 {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            service.connection_stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (i, stream) in held.iter_mut().enumerate() {
        let closed = closed_within(
            stream,
            Duration::from_millis(if i < 80 { 2000 } else { 10 }),
        )
        .await;
        assert_eq!(closed, i < 80, "connection {i}");
    }
    let client =
        HttpClient::with_timeout(&service.base_url(), Duration::from_secs(10)).expect("client");
    register(&client, ATM, now).await;
    let stats = service.connection_stats();
    assert_eq!(stats.refused, 0, "{stats:?}");
    assert!(stats.open <= 20, "{stats:?}");
    assert_eq!(service.registration_count().await.expect("count"), 1);
    service.shutdown().await;
}

/// Sends a `GET /healthz` on `stream` and reads its whole answer (keeping the connection).
async fn answered(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("send");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().expect("length"))
                })
                .unwrap_or(0);
            if answer.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(n > 0, "closed before the answer");
        answer.extend_from_slice(&buf[..n]);
    }
}

/// A kept-alive connection is closed by the idle timeout (1 s), not the far longer header
/// timeout, once it has been answered; before that it is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_connection_is_closed_by_the_idle_timeout() {
    let store = db::sqlite();
    let mut config = db::config(&store.url, SystemTime::now());
    config.connection_limits = ConnectionLimits {
        idle_timeout: Duration::from_secs(1),
        ..timeouts_only(Duration::from_secs(120))
    };
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let mut stream = TcpStream::connect(service.addr()).await.expect("connect");
    assert!(answered(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(answered(&mut stream).await.starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    assert!(closed_within(&mut stream, Duration::from_secs(5)).await);
    let after = idle.elapsed();
    assert!(
        after + Duration::from_millis(100) >= Duration::from_secs(1)
            && after < Duration::from_secs(3),
        "closed after {after:?}"
    );
    assert_eq!(service.connection_stats().timed_out, 1);
    service.shutdown().await;
}

/// A peer at its cap whose connections have all been answered a request has nothing to
/// displace: its next connection is refused, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_at_its_cap_with_only_answered_connections_is_refused() {
    let store = db::sqlite();
    let mut config = db::config(&store.url, SystemTime::now());
    config.connection_limits = ConnectionLimits {
        max_connections_per_peer: Some(5),
        ..timeouts_only(Duration::from_secs(120))
    };
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let mut kept = Vec::new();
    for _ in 0..5 {
        let mut stream = TcpStream::connect(service.addr()).await.expect("connect");
        assert!(answered(&mut stream).await.starts_with("HTTP/1.1 200"));
        kept.push(stream);
    }
    let mut extra = TcpStream::connect(service.addr()).await.expect("connect");
    assert!(
        closed_within(&mut extra, Duration::from_secs(2)).await,
        "not refused"
    );
    for stream in &mut kept {
        assert!(answered(stream).await.starts_with("HTTP/1.1 200"));
    }
    let stats = service.connection_stats();
    assert_eq!(
        (stats.refused, stats.evicted, stats.open),
        (1, 0, 5),
        "{stats:?}"
    );
    service.shutdown().await;
}

/// A client that sends requests and never reads the answers: once the service's writes stop
/// making progress, the write timeout (1 s) closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_by_the_write_timeout() {
    let store = db::sqlite();
    let mut config = db::config(&store.url, SystemTime::now());
    config.connection_limits = ConnectionLimits {
        write_timeout: Duration::from_secs(1),
        ..timeouts_only(Duration::from_secs(120))
    };
    let service = mynacard_registry::spawn(config).await.expect("spawn");
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    // A small receive window fills soon.
    socket.set_recv_buffer_size(4096).expect("buffer size");
    let mut stream = socket.connect(service.addr()).await.expect("connect");
    let requests =
        format!("GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", paths::CONSENT).repeat(100);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    let ended = loop {
        match tokio::time::timeout_at(deadline, stream.write_all(requests.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => break e,
            Err(_) => panic!("still open after 60 s: {:?}", service.connection_stats()),
        }
    };
    eprintln!(
        "a client that does not read was closed after {} ms ({ended})",
        started.elapsed().as_millis()
    );
    let stats = service.connection_stats();
    assert_eq!(stats.timed_out, 1, "{stats:?}");
    service.shutdown().await;
}
