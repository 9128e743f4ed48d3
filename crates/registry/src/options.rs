//! Command-line options of `mynacard registry serve` and of the `mynacard-registry` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Config, ConnectionLimits, RateLimit, Seed};

/// Environment variable naming test-only faults (feature `fault-injection`), comma-separated: `exit-after-commit` (exit
/// right after a proof's transaction commits), `identity-down`, `insurance-down` (the seeded
/// upstream answers every call as unavailable), `identity-slow`, `insurance-slow` (it never
/// answers within the upstream timeout).
#[cfg(feature = "fault-injection")]
pub const FAULT_ENV: &str = "MYNACARD_REGISTRY_FAULT";

/// Test trust material, as `simulator_trust` (feature `dev-sim`) returns it.
#[derive(Debug, Clone)]
pub struct TrustMaterial {
    /// `O=JPKI-TEST` roots, DER.
    pub roots: Vec<Vec<u8>>,
    /// CRLs of those roots, DER.
    pub crls: Vec<Vec<u8>>,
    /// CVC authorities: the J-LIS test hierarchy and any other test authority.
    pub cvc_trust: mynacard_card::CvcTrust,
}

impl TrustMaterial {
    /// Opts `config` in to this material: its test roots, its CRLs beside any configured, its
    /// CVC trust.
    pub fn apply_to(self, config: &mut crate::Config) {
        config.test_roots = self.roots;
        config.crls.extend(self.crls);
        config.cvc_trust = self.cvc_trust;
    }
}

/// Options for serving the registry.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Database URL: `sqlite://PATH` (one file, created if missing) or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long,
        value_name = "URL",
        default_value = "sqlite://mynacard-registry.db"
    )]
    pub db: String,

    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8600")]
    pub listen: SocketAddr,

    /// Seed file (TOML) with the persons and terminals of the simulated upstreams; the
    /// built-in seed matches the simulated card's profiles.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,

    /// Also accept the simulated card's `O=JPKI-TEST` hierarchy (and its CRL). Never in
    /// production.
    #[arg(long)]
    pub allow_test_roots: bool,

    /// A CRL (DER or PEM) to check revocation against; repeatable.
    #[arg(long = "crl", value_name = "FILE")]
    pub crls: Vec<PathBuf>,

    /// Accept certificates whose issuer has no current CRL (revocation unchecked).
    #[arg(long)]
    pub allow_unchecked_revocation: bool,

    /// Challenge lifetime in seconds (1–120).
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub challenge_ttl: u64,

    /// Requests per second allowed to each terminal (burst: twice as many); 0 turns limiting off.
    #[arg(long, value_name = "N", default_value_t = 20.0)]
    pub rate_limit: f64,

    /// Answer 503 (maintenance) while this file exists.
    #[arg(long, value_name = "FILE")]
    pub maintenance_file: Option<PathBuf>,

    /// Database connections.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub db_connections: u32,

    /// Write logs as JSON lines (default: readable text). Logs go to stderr.
    #[arg(long)]
    pub log_json: bool,

    /// How long one call to the identity or insurance upstream may take, in milliseconds;
    /// a registration whose upstream takes longer waits in the background (protocol §16).
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    pub upstream_timeout_ms: u64,

    /// Seconds after which a registration waiting for an upstream fails (E_UPSTREAM_TIMEOUT).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub pending_deadline: u64,

    /// Milliseconds before the first background attempt of a waiting registration (doubled
    /// for each further one, up to 60 s).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub pending_retry_ms: u64,

    /// Serve HTTPS (TLS 1.3 only) with this certificate chain (PEM: the service's certificate,
    /// then intermediates). Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Accept terminal client certificates (mutual TLS) that chain to the CA certificates in
    /// this PEM file; a certificate's subject commonName is the terminal id. Needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,

    /// Refuse connections without a client certificate from --client-ca (without this,
    /// terminals may connect without one).
    #[arg(long, requires = "client_ca")]
    pub require_client_cert: bool,

    /// Requests per second allowed to each peer address, an IPv6 peer counted by its /64
    /// (burst: twice as many), before the request body is read; 0 turns it off.
    #[arg(long, value_name = "N", default_value_t = crate::limits::DEFAULT_PEER_RATE_LIMIT.per_second)]
    pub peer_rate_limit: f64,

    /// Most open challenges (issued, not used, not expired) at once; past it a new session is
    /// answered 429 with Retry-After. 0 turns the ceiling off.
    #[arg(long, value_name = "N", default_value_t = crate::DEFAULT_MAX_OPEN_CHALLENGES)]
    pub max_open_challenges: usize,

    /// Timeouts and caps of client connections.
    #[command(flatten)]
    pub connections: ConnectionArgs,
}

/// Milliseconds of a default, for the flags' help.
fn ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Options for what one client can make the service spend in connections and time
/// ([`ConnectionLimits`], whose fields tell each one's purpose and default).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Client connections")]
pub struct ConnectionArgs {
    /// Milliseconds a client may take for the TLS handshake.
    #[arg(long, value_name = "MS", default_value_t = ms(ConnectionLimits::default().handshake_timeout))]
    pub handshake_timeout_ms: u64,

    /// Milliseconds a client may take to send a request's line and headers.
    #[arg(long, value_name = "MS", default_value_t = ms(ConnectionLimits::default().header_timeout))]
    pub header_timeout_ms: u64,

    /// Milliseconds a request's whole body may take to arrive after its headers.
    #[arg(long, value_name = "MS", default_value_t = ms(ConnectionLimits::default().body_timeout))]
    pub body_timeout_ms: u64,

    /// Milliseconds a kept-alive connection may wait for its next request.
    #[arg(long, value_name = "MS", default_value_t = ms(ConnectionLimits::default().idle_timeout))]
    pub idle_timeout_ms: u64,

    /// Milliseconds a response write may make no progress (a client that does not read).
    #[arg(long, value_name = "MS", default_value_t = ms(ConnectionLimits::default().write_timeout))]
    pub write_timeout_ms: u64,

    /// Client connections open at once; more are closed at once. Keep it well below the
    /// descriptor limit (`ulimit -n`).
    #[arg(long, value_name = "N", default_value_t = ConnectionLimits::default().max_connections)]
    pub max_client_connections: usize,

    /// Client connections open at once from one peer address (a peer at its cap that connects
    /// again closes its own oldest unanswered connection); 0 turns the cap off.
    #[arg(
        long,
        value_name = "N",
        default_value_t = ConnectionLimits::default().max_connections_per_peer.unwrap_or(0)
    )]
    pub max_connections_per_peer: usize,

    /// On shutdown (SIGTERM, Ctrl-C), milliseconds requests in flight may take to finish
    /// before their connections are dropped.
    #[arg(long, value_name = "MS", default_value_t = ms(ConnectionLimits::default().shutdown_grace))]
    pub shutdown_grace_ms: u64,
}

impl ConnectionArgs {
    /// The limits these options describe (`ServeArgs::to_config` checks them with
    /// [`ConnectionLimits::validate`]).
    pub fn to_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            handshake_timeout: Duration::from_millis(self.handshake_timeout_ms),
            header_timeout: Duration::from_millis(self.header_timeout_ms),
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            write_timeout: Duration::from_millis(self.write_timeout_ms),
            max_connections: self.max_client_connections,
            max_connections_per_peer: (self.max_connections_per_peer > 0)
                .then_some(self.max_connections_per_peer),
            shutdown_grace: Duration::from_millis(self.shutdown_grace_ms),
        }
    }
}

/// Options that cannot be turned into a configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The seed file is unusable.
    #[error("seed file")]
    Seed(#[from] crate::seed::SeedError),
    /// A CRL file cannot be read.
    #[error("cannot read CRL file {path}")]
    Crl {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The simulator's test hierarchy is unavailable.
    #[error("test hierarchy")]
    TestHierarchy(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A TLS certificate, key or CA file cannot be read.
    #[error("cannot read TLS file {path}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `--allow-test-roots` was given, and no test trust is available (this build has no
    /// `dev-sim` feature, or the caller supplies none).
    #[error("--allow-test-roots: this build has no test trust (feature dev-sim)")]
    NoTestTrust,
    /// A connection timeout or cap is zero.
    #[error("client connection options")]
    ConnectionLimits(#[from] crate::server::ConnectionLimitsError),
    /// The fault variable names no known fault.
    #[cfg(feature = "fault-injection")]
    #[error("{FAULT_ENV} names no known fault")]
    Fault,
}

impl ServeArgs {
    /// The service configuration these options describe. With `--allow-test-roots`, `test_trust`
    /// supplies the test roots and CRLs (the simulator's).
    pub fn to_config(
        &self,
        test_trust: impl FnOnce() -> Result<TrustMaterial, OptionsError>,
    ) -> Result<Config, OptionsError> {
        let mut config = Config::new(self.db.clone());
        config.listen = self.listen;
        config.seed = match &self.seed {
            Some(path) => Seed::load(path)?,
            None => Seed::builtin()?,
        };
        for path in &self.crls {
            config
                .crls
                .push(
                    read_bounded(path, MAX_CRL_FILE).map_err(|source| OptionsError::Crl {
                        path: path.clone(),
                        source,
                    })?,
                );
        }
        if self.allow_test_roots {
            test_trust()?.apply_to(&mut config);
        }
        config.require_revocation = !self.allow_unchecked_revocation;
        config.challenge_ttl = Duration::from_secs(self.challenge_ttl);
        config.rate_limit = per_second_limit(self.rate_limit);
        config.tls = self.tls_settings()?;
        config.connection_limits = self.connections.to_limits();
        config.connection_limits.validate()?;
        config.maintenance_file = self.maintenance_file.clone();
        config.max_connections = self.db_connections;
        config.upstream_timeout = Duration::from_millis(self.upstream_timeout_ms);
        let first_retry = Duration::from_millis(self.pending_retry_ms.max(1));
        config.pending = config
            .pending
            .with_deadline(Duration::from_secs(self.pending_deadline))
            .with_retry(first_retry, Duration::from_secs(60).max(first_retry));
        config.peer_rate_limit = per_second_limit(self.peer_rate_limit);
        config.max_open_challenges = self.max_open_challenges;
        #[cfg(feature = "fault-injection")]
        apply_faults(&mut config)?;
        Ok(config)
    }
}

/// `per_second` requests a second with a burst of twice as many; `None` for 0 (off).
fn per_second_limit(per_second: f64) -> Option<RateLimit> {
    (per_second > 0.0).then(|| RateLimit {
        per_second,
        burst: (per_second * 2.0).ceil().clamp(1.0, f64::from(u32::MAX)) as u32,
    })
}

/// Applies the faults [`FAULT_ENV`] names to `config`.
#[cfg(feature = "fault-injection")]
fn apply_faults(config: &mut Config) -> Result<(), OptionsError> {
    let faults = std::env::var(FAULT_ENV).unwrap_or_default();
    for fault in faults.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        use crate::upstream::{
            SeededIdentity, SeededInsurance, SwitchedIdentity, SwitchedInsurance, UpstreamMode,
            UpstreamSwitch,
        };
        let switch = |mode| UpstreamSwitch::new(mode);
        match fault {
            "exit-after-commit" => config.fault = Some(crate::Fault::ExitAfterCommit),
            "identity-down" | "identity-slow" => {
                let mode = if fault.ends_with("down") {
                    UpstreamMode::Down
                } else {
                    UpstreamMode::Slow
                };
                config.identity = Some(std::sync::Arc::new(SwitchedIdentity::new(
                    std::sync::Arc::new(SeededIdentity::from_seed(&config.seed)),
                    switch(mode),
                )));
            }
            "insurance-down" | "insurance-slow" => {
                let mode = if fault.ends_with("down") {
                    UpstreamMode::Down
                } else {
                    UpstreamMode::Slow
                };
                config.insurance = Some(std::sync::Arc::new(SwitchedInsurance::new(
                    std::sync::Arc::new(SeededInsurance::from_seed(&config.seed)),
                    switch(mode),
                )));
            }
            _ => return Err(OptionsError::Fault),
        }
    }
    Ok(())
}

/// Largest CRL file read (J-LIS CRLs run to tens of megabytes).
pub const MAX_CRL_FILE: u64 = 256 * 1024 * 1024;

/// Largest PEM file read: a certificate chain, a key or a CA bundle.
pub const MAX_PEM_FILE: u64 = 1024 * 1024;

/// Reads `path` whole, refusing (`InvalidData`) a file longer than `limit` bytes without
/// reading past the limit, so a wrong path such as `/dev/zero` cannot fill the memory.
pub fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

impl ServeArgs {
    /// The TLS settings the `--tls-*` and `--client-ca` options name, read from their files;
    /// `None` for plain HTTP.
    pub fn tls_settings(&self) -> Result<Option<crate::TlsSettings>, OptionsError> {
        let read = |path: &PathBuf| {
            read_bounded(path, MAX_PEM_FILE).map_err(|source| OptionsError::TlsFile {
                path: path.clone(),
                source,
            })
        };
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(None);
        };
        let mut settings = crate::TlsSettings::new(read(cert)?, read(key)?);
        if let Some(ca) = &self.client_ca {
            settings = settings.with_terminal_ca(read(ca)?, self.require_client_cert);
        }
        Ok(Some(settings))
    }
}

/// The test trust this build has for `--allow-test-roots`: the simulated card's as of now
/// (`simulator_trust`) with the `dev-sim` feature; [`OptionsError::NoTestTrust`] without it.
pub fn builtin_test_trust() -> Result<TrustMaterial, OptionsError> {
    #[cfg(feature = "dev-sim")]
    {
        simulator_trust(std::time::SystemTime::now())
    }
    #[cfg(not(feature = "dev-sim"))]
    {
        Err(OptionsError::NoTestTrust)
    }
}

/// The simulated card's trust material for `--allow-test-roots` (feature `dev-sim`): its `O=JPKI-TEST`
/// authentication root and today's CRL of the simulator (listing the `revoked-auth` card),
/// issued at `now`.
#[cfg(feature = "dev-sim")]
pub fn simulator_trust(now: std::time::SystemTime) -> Result<TrustMaterial, OptionsError> {
    use mynacard_sim::pki::{CaKind, TestPki};
    use mynacard_sim::profile::Catalogue;
    let boxed = |e: Box<dyn std::error::Error + Send + Sync>| OptionsError::TestHierarchy(e);
    let pki = TestPki::shared().map_err(|e| boxed(Box::new(e)))?;
    let catalogue = Catalogue::builtin().map_err(|e| boxed(Box::new(e)))?;
    let since_epoch = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| boxed(Box::new(e)))?;
    // Issued at the start of the current second, so the CRL is never dated after `now`.
    let this_update =
        mynacard_sim::pki::DateTime::from_unix_duration(Duration::from_secs(since_epoch.as_secs()))
            .map_err(|e| boxed(Box::new(e)))?;
    let crl = catalogue
        .crl_der(CaKind::Auth, pki, this_update)
        .map_err(|e| boxed(Box::new(e)))?;
    Ok(TrustMaterial {
        roots: vec![pki.root_der(CaKind::Auth).to_vec()],
        crls: vec![crl],
        cvc_trust: simulator_cvc_trust().map_err(|e| boxed(Box::new(e)))?,
    })
}

/// CVC trust for a development setup: the J-LIS test authorities (test cards) and the
/// simulated card's own (`6900020`, `6900023`, `6900033`), beside the production ones (feature
/// `dev-sim`).
///
/// # Errors
/// The simulator's key derivation failed.
#[cfg(feature = "dev-sim")]
pub fn simulator_cvc_trust() -> Result<mynacard_card::CvcTrust, SimulatorTrustError> {
    use mynacard_card::CardPublicKey;
    use mynacard_card::cvc::{CvcAuthority, CvcScope};
    use mynacard_sim::cvc::CvcRole;
    let pki = mynacard_sim::pki::TestPki::shared()?;
    let mut trust = mynacard_card::CvcTrust::production().allow_test_hierarchy();
    for authority in pki.cvc_authorities()? {
        let scope = match authority.role {
            CvcRole::CardChain => CvcScope::CardChain,
            CvcRole::Visual => CvcScope::Visual,
            CvcRole::Text => CvcScope::Text,
        };
        let key = CardPublicKey::from_parts(&authority.modulus, &authority.exponent)?;
        trust = trust.with_test_authority(CvcAuthority::test(authority.key_id, key, scope)?)?;
    }
    Ok(trust)
}

/// The simulator's CVC authorities could not be made into trust.
#[cfg(feature = "dev-sim")]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatorTrustError {
    /// Deriving the simulator's keys failed.
    #[error("simulated PKI")]
    Pki(#[from] mynacard_sim::pki::PkiError),
    /// A key did not make a usable RSA key.
    #[error("simulated CVC authority key")]
    Key(#[from] mynacard_card::Error),
    /// The authority was refused.
    #[error("simulated CVC authority")]
    Trust(#[from] mynacard_card::cvc::CvcTrustError),
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn files_are_read_with_a_bound() {
        let dir = std::env::temp_dir().join(format!("mynacard-bounded-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("big.pem");
        let file = std::fs::File::create(&path).expect("file");
        // Sparse: no disk is used.
        file.set_len(MAX_PEM_FILE + 1).expect("length");
        let err = read_bounded(&path, MAX_PEM_FILE).expect_err("too large");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            read_bounded(&path, MAX_PEM_FILE + 1).expect("fits").len() as u64,
            MAX_PEM_FILE + 1
        );
        let endless = read_bounded(std::path::Path::new("/dev/zero"), 4096).expect_err("endless");
        assert_eq!(endless.kind(), std::io::ErrorKind::InvalidData);
        let args = parse(&[
            "--tls-cert",
            path.to_str().expect("utf-8"),
            "--tls-key",
            path.to_str().expect("utf-8"),
        ])
        .expect("args");
        assert!(matches!(
            args.tls_settings(),
            Err(OptionsError::TlsFile { .. })
        ));
        let seed = crate::Seed::load(std::path::Path::new("/dev/zero")).expect_err("endless seed");
        assert!(matches!(seed, crate::seed::SeedError::Io(_)), "{seed:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("serve").chain(args.iter().copied())).map(|c| c.serve)
    }

    #[test]
    fn tls_options_come_in_the_right_combinations() {
        for args in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--client-ca", "ca.pem"],
            &[
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--require-client-cert",
            ],
        ] {
            let err = parse(args).expect_err("refused");
            assert_eq!(
                err.kind(),
                clap::error::ErrorKind::MissingRequiredArgument,
                "{args:?}"
            );
        }
        let plain = parse(&[]).expect("no TLS");
        assert!(plain.tls_settings().expect("nothing to read").is_none());
    }

    #[test]
    fn connection_options_default_to_the_connection_limits() {
        let args = parse(&[]).expect("defaults");
        assert_eq!(args.connections.to_limits(), ConnectionLimits::default());
    }

    #[test]
    fn connection_options_set_every_limit() {
        let args = parse(&[
            "--handshake-timeout-ms",
            "1500",
            "--header-timeout-ms",
            "2000",
            "--body-timeout-ms",
            "2500",
            "--idle-timeout-ms",
            "3000",
            "--write-timeout-ms",
            "3500",
            "--max-client-connections",
            "50",
            "--max-connections-per-peer",
            "7",
            "--shutdown-grace-ms",
            "0",
        ])
        .expect("parsed");
        let config = args
            .to_config(|| Err(OptionsError::NoTestTrust))
            .expect("config");
        assert_eq!(
            config.connection_limits,
            ConnectionLimits {
                handshake_timeout: Duration::from_millis(1500),
                header_timeout: Duration::from_secs(2),
                body_timeout: Duration::from_millis(2500),
                idle_timeout: Duration::from_secs(3),
                write_timeout: Duration::from_millis(3500),
                max_connections: 50,
                max_connections_per_peer: Some(7),
                shutdown_grace: Duration::ZERO,
            }
        );
        assert_eq!(config.connection_limits.validate(), Ok(()));
    }

    #[test]
    fn connection_options_turn_the_peer_cap_off_and_refuse_bad_values() {
        let off = parse(&["--max-connections-per-peer", "0"]).expect("parsed");
        assert_eq!(off.connections.to_limits().max_connections_per_peer, None);
        let zero = parse(&["--header-timeout-ms", "0"]).expect("parsed");
        let err = zero
            .to_config(|| Err(OptionsError::NoTestTrust))
            .expect_err("a zero timeout");
        assert!(
            matches!(&err, OptionsError::ConnectionLimits(e) if e.0 == "the header timeout"),
            "{err:?}"
        );
        let no_cap = parse(&["--max-client-connections", "0"]).expect("parsed");
        assert!(matches!(
            no_cap.to_config(|| Err(OptionsError::NoTestTrust)),
            Err(OptionsError::ConnectionLimits(_))
        ));
        for args in [
            &["--max-client-connections", "-1"][..],
            &["--body-timeout-ms", "soon"],
            &["--idle-timeout-ms"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn tls_options_read_their_files() {
        let dir = std::env::temp_dir().join(format!("mynacard-options-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path.display().to_string()
        };
        let (cert, key, ca) = (
            file("c.pem", "CERT"),
            file("k.pem", "KEY"),
            file("ca.pem", "CA"),
        );
        let args = parse(&[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--client-ca",
            &ca,
            "--require-client-cert",
        ])
        .expect("parsed");
        let settings = args.tls_settings().expect("read").expect("TLS");
        assert_eq!(settings.cert_chain_pem, b"CERT");
        assert_eq!(settings.key_pem.as_slice(), b"KEY");
        assert_eq!(settings.terminal_ca_pem.as_deref(), Some(&b"CA"[..]));
        assert!(settings.require_client_certificate);
        let optional = parse(&["--tls-cert", &cert, "--tls-key", &key, "--client-ca", &ca])
            .expect("parsed")
            .tls_settings()
            .expect("read")
            .expect("TLS");
        assert!(!optional.require_client_certificate);
        let missing = dir.join("missing.pem").display().to_string();
        let err = parse(&["--tls-cert", &cert, "--tls-key", &missing])
            .expect("parsed")
            .tls_settings()
            .expect_err("no key file");
        assert!(matches!(err, OptionsError::TlsFile { .. }), "{err:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
