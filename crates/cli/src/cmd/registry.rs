//! `mynacard registry serve`: the reference registration service.

use std::fmt;

use mynacard_registry::options::{ServeArgs, simulator_trust};
use serde::Serialize;

use crate::exit::{CliError, ExitCode};
use crate::output::Output;

/// The reference registration service.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum RegistryCommand {
    /// Serve the registration API until Ctrl-C or SIGTERM. Prints the address it listens on.
    Serve(ServeArgs),
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

/// Runs a registry subcommand.
pub(crate) fn run(command: RegistryCommand, out: &Output) -> Result<(), CliError> {
    let RegistryCommand::Serve(args) = command;
    mynacard_registry::init_logging(args.log_json);
    let config = args
        .to_config(|| simulator_trust(std::time::SystemTime::now()))
        .map_err(|e| failure("invalid service options")(Box::new(e)))?;
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
