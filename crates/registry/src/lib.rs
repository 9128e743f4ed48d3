//! The reference health-insurance-use registration service for the My Number Card
//! (`docs/protocol.md`).
//!
//! - HTTP API ([`http`]): start a session for registration, eligibility or deregistration, get a
//!   challenge with the consent document, post a proof, get a typed result or error.
//! - A real database ([`store`]): embedded SQLite (one file) by default, PostgreSQL when the
//!   URL says `postgres://`; one set of migrations; every state change in one transaction.
//! - Upstreams behind traits ([`upstream`]): identity (J-LIS role) and insurance (fee-fund
//!   role), seeded from a fixture file ([`seed`]).
//! - Verification ([`verify`]) with `mynacard-cert` and `mynacard-sign`: chain to the
//!   configured roots, validity, revocation, the card's signature over the canonical intent,
//!   the terminal attestation for face registration.
//! - Rate limiting per peer address and per terminal, a ceiling on open challenges, and a
//!   maintenance switch ([`limits`]).
//! - One connection layer for plain HTTP and HTTPS ([`server`]): timeouts for the handshake,
//!   headers, body, idle keep-alive and response writes, caps on open connections (in all and
//!   per peer address), a shutdown that waits for requests in flight only up to a deadline.
//! - HTTPS ([`tls`]): TLS 1.3 only, optionally with terminal client certificates whose subject
//!   commonName is the terminal id; a session started with one is bound to that terminal.
//! - Registrations that wait for a slow upstream ([`pending`], protocol §16): accepted with
//!   `202`, finished by a background worker that resumes from the database after a restart,
//!   polled by the terminal with its token.
//! - For tests (feature `test-kit`): `test_kit` starts the service on fresh SQLite and
//!   PostgreSQL databases, configured for the simulated cards, in-process or as a child process.
//!
//! Stored per registration: issuer root, serial, certificate hash, linkage code, terminal,
//! method, consent version and times. Never the My Number, a PIN, a raw certificate, a photo or
//! an insured number.
//!
//! ```no_run
//! # async fn run() -> Result<(), mynacard_registry::ServiceError> {
//! let mut config = mynacard_registry::Config::new("sqlite://registry.db");
//! config.listen = "127.0.0.1:0".parse().expect("address");
//! let service = mynacard_registry::spawn(config).await?;
//! println!("listening on {}", service.base_url());
//! service.shutdown().await;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod dev_pki;
#[cfg(feature = "dev-sim")]
pub mod embedded;
pub mod http;
pub mod limits;
pub mod options;
pub mod pending;
pub mod seed;
pub mod server;
pub mod service;
pub mod store;
#[cfg(feature = "test-kit")]
pub mod test_kit;
pub mod tls;
pub mod upstream;
pub mod verify;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use limits::RateLimit;
pub use pending::PendingPolicy;
pub use seed::Seed;
pub use server::{ConnectionLimits, ConnectionStats};
#[cfg(feature = "fault-injection")]
pub use service::Fault;
pub use service::Registry;
pub use store::{Backend, Store};
pub use tls::{ClientTerminal, TlsSettings};
pub use upstream::{IdentityProvider, InsuranceProvider};

/// The most a challenge may live (protocol: at most 120 s).
pub const MAX_CHALLENGE_TTL: Duration = Duration::from_secs(120);

/// The default ceiling on open challenges ([`Config::max_open_challenges`]).
pub const DEFAULT_MAX_OPEN_CHALLENGES: usize = 10_000;

/// How long an upstream call may take by default.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// How the service is set up.
#[derive(Clone)]
pub struct Config {
    /// `sqlite://PATH` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Persons and terminals.
    pub seed: Seed,
    /// `O=JPKI-TEST` roots to accept beside the production roots (empty: production only).
    pub test_roots: Vec<Vec<u8>>,
    /// Authorities of the visual AP certificates a face proof must carry (protocol §7.2): the
    /// J-LIS production one by default; the test hierarchy only on an explicit opt-in.
    pub cvc_trust: mynacard_card::CvcTrust,
    /// CRLs (DER or PEM), each verified against a configured root.
    pub crls: Vec<Vec<u8>>,
    /// Refuse certificates whose issuer has no current CRL (fail closed). On by default.
    pub require_revocation: bool,
    /// Challenge lifetime (at most [`MAX_CHALLENGE_TTL`]).
    pub challenge_ttl: Duration,
    /// Per-terminal rate limit; `None` turns limiting off.
    pub rate_limit: Option<RateLimit>,
    /// While this file exists the service answers 503 (maintenance).
    pub maintenance_file: Option<PathBuf>,
    /// `Retry-After` seconds sent in maintenance.
    pub maintenance_retry_after: u32,
    /// Database connections.
    pub max_connections: u32,
    /// Replaces the seeded identity upstream.
    pub identity: Option<Arc<dyn IdentityProvider>>,
    /// Replaces the seeded insurance upstream.
    pub insurance: Option<Arc<dyn InsuranceProvider>>,
    /// Test-only fault point (feature `fault-injection`).
    #[cfg(feature = "fault-injection")]
    pub fault: Option<Fault>,
    /// Start the service's clock at this time instead of the system clock's (it then runs
    /// on); for tests and demonstrations at a fixed date.
    pub start_time: Option<std::time::SystemTime>,
    /// How long one upstream call may take before it counts as unavailable.
    pub upstream_timeout: Duration,
    /// How registrations that wait for an upstream are finished (protocol §16).
    pub pending: PendingPolicy,
    /// Serve HTTPS (TLS 1.3, optionally with terminal client certificates) instead of plain
    /// HTTP.
    pub tls: Option<TlsSettings>,
    /// Rate limit per peer address (an IPv6 peer by its /64, [`limits::peer_key`]), on every
    /// `/v1` request before its body is read; `None` turns it off.
    pub peer_rate_limit: Option<RateLimit>,
    /// Most open challenges (issued, not used, not expired) at once; past it a StartSession is
    /// answered `E_RATE_LIMITED` with `Retry-After`. 0 turns the ceiling off.
    pub max_open_challenges: usize,
    /// What one client can make the service spend in connections and time: timeouts,
    /// connection caps, the shutdown grace.
    pub connection_limits: ConnectionLimits,
}

impl core::fmt::Debug for Config {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut f = f.debug_struct("Config");
        f.field("listen", &self.listen)
            .field("test_roots", &self.test_roots.len())
            .field(
                "cvc_test_hierarchy",
                &self.cvc_trust.accepts_test_hierarchy(),
            )
            .field("crls", &self.crls.len())
            .field("require_revocation", &self.require_revocation)
            .field("challenge_ttl", &self.challenge_ttl)
            .field("rate_limit", &self.rate_limit);
        #[cfg(feature = "fault-injection")]
        f.field("fault", &self.fault);
        f.field("upstream_timeout", &self.upstream_timeout)
            .field("pending", &self.pending)
            .field("tls", &self.tls)
            .field("peer_rate_limit", &self.peer_rate_limit)
            .field("max_open_challenges", &self.max_open_challenges)
            .field("connection_limits", &self.connection_limits)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults for a database URL: loopback on a free port, the built-in seed, production
    /// roots only, 120 s challenges, the default rate limit, 5 s upstream timeout, the default
    /// [`PendingPolicy`], the default [`ConnectionLimits`].
    pub fn new(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: Seed::default(),
            test_roots: Vec::new(),
            cvc_trust: mynacard_card::CvcTrust::production(),
            crls: Vec::new(),
            require_revocation: true,
            challenge_ttl: MAX_CHALLENGE_TTL,
            rate_limit: Some(RateLimit::default()),
            maintenance_file: None,
            maintenance_retry_after: 60,
            max_connections: 8,
            identity: None,
            insurance: None,
            #[cfg(feature = "fault-injection")]
            fault: None,
            start_time: None,
            upstream_timeout: DEFAULT_UPSTREAM_TIMEOUT,
            pending: PendingPolicy::default(),
            tls: None,
            peer_rate_limit: Some(limits::DEFAULT_PEER_RATE_LIMIT),
            max_open_challenges: DEFAULT_MAX_OPEN_CHALLENGES,
            connection_limits: ConnectionLimits::default(),
        }
    }
}

/// The service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The database could not be opened or migrated.
    #[error("database")]
    Store(#[from] store::StoreError),
    /// Roots or CRLs are unusable.
    #[error("trust configuration")]
    Trust(#[from] verify::TrustConfigError),
    /// A terminal's attestation key is not a base64url P-256 SubjectPublicKeyInfo.
    #[error("terminal {terminal}: attestation key is not a P-256 public key")]
    TerminalKey {
        /// The terminal id.
        terminal: String,
    },
    /// The consent document cannot be hashed.
    #[error("consent document")]
    Consent(#[from] mynacard_protocol::jcs::JcsError),
    /// The challenge lifetime is over 120 s or zero.
    #[error("challenge lifetime must be 1 to 120 seconds")]
    ChallengeTtl,
    /// The upstream timeout or the pending deadline is zero.
    #[error("the upstream timeout and the pending deadline must be more than zero")]
    Timeouts,
    /// The listening socket could not be opened.
    #[error("cannot listen")]
    Listen(#[source] std::io::Error),
    /// The TLS settings are unusable.
    #[error("TLS settings")]
    Tls(#[from] tls::TlsError),
    /// A connection timeout or cap is zero.
    #[error("connection limits")]
    ConnectionLimits(#[from] server::ConnectionLimitsError),
}

fn terminals(seed: &Seed) -> Result<HashMap<String, verify::Terminal>, ServiceError> {
    use p256::pkcs8::DecodePublicKey as _;
    let mut out = HashMap::new();
    for t in &seed.terminals {
        let attestation_key = match &t.attestation_key {
            Some(text) => {
                let der =
                    URL_SAFE_NO_PAD
                        .decode(text.trim())
                        .map_err(|_| ServiceError::TerminalKey {
                            terminal: t.id.clone(),
                        })?;
                // Parsed once here so that a bad key stops the start, not a kiosk later.
                p256::ecdsa::VerifyingKey::from_public_key_der(&der).map_err(|_| {
                    ServiceError::TerminalKey {
                        terminal: t.id.clone(),
                    }
                })?;
                Some(der)
            }
            None => None,
        };
        out.insert(
            t.id.clone(),
            verify::Terminal {
                id: t.id.clone(),
                kind: t.kind.clone(),
                face_approved: t.face_approved,
                attestation_key,
            },
        );
    }
    Ok(out)
}

/// Builds the registry (database connected and migrated) without serving it.
pub async fn build(config: &Config) -> Result<Registry, ServiceError> {
    if config.challenge_ttl.is_zero() || config.challenge_ttl > MAX_CHALLENGE_TTL {
        return Err(ServiceError::ChallengeTtl);
    }
    if config.upstream_timeout.is_zero() || config.pending.deadline.is_zero() {
        return Err(ServiceError::Timeouts);
    }
    config.connection_limits.validate()?;
    let policy = verify::Verifier::policy(&config.test_roots)?;
    let verifier = verify::Verifier::new(policy, &config.crls, config.require_revocation)?
        .with_cvc_trust(config.cvc_trust.clone());
    let store = Store::connect(&config.database_url, config.max_connections).await?;
    let consent = mynacard_protocol::consent::current();
    let consent_ref = consent.reference()?;
    let identity = match &config.identity {
        Some(i) => Arc::clone(i),
        None => Arc::new(upstream::SeededIdentity::from_seed(&config.seed)),
    };
    let insurance = match &config.insurance {
        Some(i) => Arc::clone(i),
        None => Arc::new(upstream::SeededInsurance::from_seed(&config.seed)),
    };
    Ok(Registry {
        store,
        identity,
        insurance,
        verifier,
        terminals: terminals(&config.seed)?,
        consent,
        consent_ref,
        limiter: config.rate_limit.map(limits::RateLimiter::new),
        maintenance: limits::Maintenance::new(
            config.maintenance_file.clone(),
            config.maintenance_retry_after,
        ),
        clock: match config.start_time {
            Some(start) => service::Clock::starting_at(start),
            None => service::Clock::default(),
        },
        challenge_ttl_secs: i64::try_from(config.challenge_ttl.as_secs()).unwrap_or(120),
        #[cfg(feature = "fault-injection")]
        fault: config.fault,
        upstream_timeout: config.upstream_timeout,
        pending: config.pending,
        peer_limiter: config.peer_rate_limit.map(limits::RateLimiter::new),
        open_challenges: limits::OpenChallenges::new(config.max_open_challenges),
    })
}

/// A service running on a background task.
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    https: bool,
    registry: Arc<Registry>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    janitor: JoinHandle<()>,
    stop_worker: watch::Sender<bool>,
    worker: JoinHandle<()>,
    connections: Arc<server::Counters>,
}

impl RunningService {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, or `https://ADDR` with TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The registry (for tests: clock, maintenance, store).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Turns maintenance mode on or off.
    pub fn set_maintenance(&self, on: bool) {
        self.registry.maintenance.set(on);
    }

    /// Moves the service's clock forward (tests of expiry and grace periods).
    pub fn advance_clock(&self, by: Duration) {
        self.registry
            .clock
            .advance_ms(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
    }

    /// Counts of client connections: open now, accepted, refused at a cap, evicted, timed out.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.connections.snapshot()
    }

    /// Number of registration rows.
    pub async fn registration_count(&self) -> Result<i64, store::StoreError> {
        self.registry.store.registration_count().await
    }

    /// Numbers of registrations still pending and of those that ended after pending.
    pub async fn pending_counts(&self) -> Result<(i64, i64), store::StoreError> {
        self.registry.store.pending_counts().await
    }

    /// Stops accepting, finishes requests in flight (up to the shutdown grace of
    /// [`ConnectionLimits`]; connections still open then are dropped) and the pending
    /// registration in hand (the others stay pending in the database), closes the database.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.stop_worker.send(true);
        let _ = (&mut self.task).await;
        let _ = (&mut self.worker).await;
        self.janitor.abort();
        self.registry.store.close().await;
    }
}

/// Binds `config.listen`, connects the database and serves on a background task: HTTPS when
/// `config.tls` is set, plain HTTP otherwise (with a warning on a non-loopback address).
pub async fn spawn(config: Config) -> Result<RunningService, ServiceError> {
    // Checked before binding, so that bad TLS files do not leave a port taken.
    let acceptor = match &config.tls {
        Some(settings) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(
            settings,
        )?)),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(ServiceError::Listen)?;
    let addr = listener.local_addr().map_err(ServiceError::Listen)?;
    if acceptor.is_none() && !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "serving plain HTTP on a non-loopback address: terminals' traffic is not \
             encrypted; use TLS (--tls-cert, --tls-key) outside a trusted network"
        );
    }
    let registry = Arc::new(build(&config).await?);
    let (tx, rx) = oneshot::channel::<()>();
    let app = http::router(Arc::clone(&registry));
    let https = acceptor.is_some();
    let connections = Arc::new(server::Counters::default());
    let task = tokio::spawn(server::serve(
        listener,
        acceptor,
        app,
        config.connection_limits,
        Arc::clone(&connections),
        rx,
    ));
    let janitor = tokio::spawn(janitor(Arc::clone(&registry)));
    // Takes up whatever is pending in the database, also what a previous run left.
    let (stop_worker, stop) = watch::channel(false);
    let worker = tokio::spawn(pending::worker(Arc::clone(&registry), stop));
    tracing::info!(%addr, https, backend = ?registry.store.backend(), "registry listening");
    Ok(RunningService {
        addr,
        https,
        registry,
        shutdown: Some(tx),
        task,
        janitor,
        stop_worker,
        worker,
        connections,
    })
}

/// Deletes challenges whose retry retention is over, and unused ones soon after they expire,
/// once a minute.
async fn janitor(registry: Arc<Registry>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        let before = registry.clock.now_ms() - service::RETRY_RETENTION_MS;
        match registry.store.purge_challenges(before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "old challenges purged"),
            Err(e) => tracing::warn!(error = %e, "purging challenges failed"),
        }
        let unused = registry.clock.now_ms() - service::UNUSED_RETENTION_MS;
        if let Err(e) = registry.store.purge_unused_challenges(unused).await {
            tracing::warn!(error = %e, "purging unused challenges failed");
        }
    }
}

/// Serves until Ctrl-C (or SIGTERM on Unix), then shuts down gracefully.
pub async fn serve(config: Config) -> Result<(), ServiceError> {
    let service = spawn(config).await?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    service.shutdown().await;
    Ok(())
}

/// Sends `tracing` events to stderr: readable text, or JSON lines with `json`; the level comes
/// from `RUST_LOG` (default `info`). Does nothing if a subscriber is already set.
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Resolves on Ctrl-C (or SIGTERM on Unix).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
