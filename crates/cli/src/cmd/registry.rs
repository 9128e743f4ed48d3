//! `mynacard registry serve`: the reference registration service; `mynacard registry dev-pki`:
//! certificates to develop a terminal against it over HTTPS and mutual TLS.

use std::fmt;
use std::path::PathBuf;

use mynacard_registry::dev_pki::DevPki;
use mynacard_registry::options::{ServeArgs, simulator_trust};
use serde::Serialize;

use crate::exit::{CliError, ExitCode};
use crate::input::{self, InputKind, read_bounded};
use crate::output::Output;

/// The reference registration service.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RegistryCommand {
    /// Serve the registration API until Ctrl-C or SIGTERM. Prints the address it listens on.
    // Boxed: the service's options are far larger than the other variant.
    Serve(Box<ServeArgs>),
    /// Make certificates to develop a terminal against this service over HTTPS and mutual TLS:
    /// a service CA and server certificate, a terminal CA and one client certificate per
    /// terminal (its common name is the terminal id). Keys are written in the clear: never for
    /// production.
    DevPki(DevPkiArgs),
}

/// `mynacard registry dev-pki`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevPkiArgs {
    /// The folder to write into (created if missing; files in it are replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// A DNS name or IP address the service is reached at (repeatable; default 127.0.0.1
    /// and localhost).
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,

    /// A terminal id to make a client certificate for (repeatable; default every terminal of
    /// the built-in seed).
    #[arg(long = "terminal", value_name = "ID")]
    terminals: Vec<String>,
}

#[derive(Serialize)]
struct DevPkiWritten {
    files: Vec<String>,
    serve: String,
    register: String,
}

impl fmt::Display for DevPkiWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            writeln!(f, "wrote {file}")?;
        }
        writeln!(f, "serve with:    {}", self.serve)?;
        write!(f, "register with: {}", self.register)
    }
}

/// `mynacard registry dev-pki`: writes the files and says how to use them.
fn dev_pki(args: DevPkiArgs, out: &Output) -> Result<(), CliError> {
    let hosts: Vec<&str> = if args.hosts.is_empty() {
        vec!["127.0.0.1", "localhost"]
    } else {
        args.hosts.iter().map(String::as_str).collect()
    };
    let seeded: Vec<String>;
    let terminals: Vec<&str> = if args.terminals.is_empty() {
        let seed = mynacard_registry::Seed::builtin()
            .map_err(|e| failure("cannot read the built-in seed")(Box::new(e)))?;
        seeded = seed.terminals.into_iter().map(|t| t.id).collect();
        seeded.iter().map(String::as_str).collect()
    } else {
        args.terminals.iter().map(String::as_str).collect()
    };
    let pki = DevPki::generate(&hosts, &terminals).map_err(|e| {
        CliError::usage("cannot make certificates for these hosts and terminals").with_source(e)
    })?;
    let files = pki
        .write_to(&args.out)
        .map_err(|e| failure("cannot write the certificates")(Box::new(e)))?;
    let dir = args.out.display();
    let first = terminals.first().copied().unwrap_or("TERMINAL");
    out.print(&DevPkiWritten {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        serve: format!(
            "mynacard registry serve --tls-cert {dir}/server.pem --tls-key {dir}/server.key \
             --client-ca {dir}/terminal-ca.pem --require-client-cert"
        ),
        register: format!(
            "mynacard register --channel CHANNEL --service https://{}:8600 \
             --service-ca {dir}/service-ca.pem --client-cert {dir}/{first}.pem \
             --terminal-id {first}",
            hosts.first().copied().unwrap_or("127.0.0.1")
        ),
    })
}

#[derive(Serialize)]
struct Listening {
    listening: String,
    database: &'static str,
    test_roots: bool,
}

impl fmt::Display for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "listening on {} ({}", self.listening, self.database)?;
        if self.test_roots {
            f.write_str(", test hierarchy accepted")?;
        }
        f.write_str(")")
    }
}

fn failure(
    message: &str,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> CliError + '_ {
    move |source| CliError::new(ExitCode::Failure, message).with_source(source)
}

/// Checks the files `registry serve` reads at start (the registry reads them itself) against
/// the bounds of their kinds, so that a wrong path such as `/dev/zero` ends with the same error
/// as anywhere else in the command instead of filling the memory.
fn check_input_bounds(args: &ServeArgs) -> Result<(), CliError> {
    let named = |option: &'static str, kind: InputKind| {
        move |path: &PathBuf| -> Result<(), CliError> {
            read_bounded(path, kind)
                .map(drop)
                .map_err(|e| e.prefixed(option))
        }
    };
    args.seed
        .iter()
        .try_for_each(named("--seed", input::SEED))?;
    args.crls.iter().try_for_each(named("--crl", input::CRL))?;
    args.tls_cert
        .iter()
        .try_for_each(named("--tls-cert", input::PEM_BUNDLE))?;
    args.tls_key
        .iter()
        .try_for_each(named("--tls-key", input::PEM_BUNDLE))?;
    args.client_ca
        .iter()
        .try_for_each(named("--client-ca", input::PEM_BUNDLE))
}

/// Runs a registry subcommand.
pub(crate) fn run(command: RegistryCommand, out: &Output) -> Result<(), CliError> {
    let args = match command {
        RegistryCommand::Serve(args) => args,
        RegistryCommand::DevPki(args) => return dev_pki(args, out),
    };
    check_input_bounds(&args)?;
    mynacard_registry::init_logging(args.log_json);
    let config = args
        .to_config(|| simulator_trust(std::time::SystemTime::now()))
        .map_err(|e| CliError::usage("invalid service options").with_source(e))?;
    let database = match mynacard_registry::Backend::from_url(&config.database_url) {
        Some(mynacard_registry::Backend::Postgres) => "PostgreSQL",
        _ => "SQLite",
    };
    let test_roots = !config.test_roots.is_empty();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| failure("cannot start the async runtime")(Box::new(e)))?;
    runtime.block_on(async move {
        let service = mynacard_registry::spawn(config)
            .await
            .map_err(|e| failure("the service could not start")(Box::new(e)))?;
        out.print(&Listening {
            listening: service.base_url(),
            database,
            test_roots,
        })?;
        mynacard_registry::shutdown_signal().await;
        service.shutdown().await;
        Ok(())
    })
}
