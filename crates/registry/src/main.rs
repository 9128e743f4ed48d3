//! `mynacard-registry`: the reference registration service as a standalone program (the same
//! options as `mynacard registry serve`).

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use mynacard_registry::options::{ServeArgs, builtin_test_trust};

// Each request allocates and frees many small buffers across the runtime's and the database
// workers' threads; the system allocator spent about a quarter of a check's CPU on that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The reference health-insurance-use registration service.
#[derive(Debug, Parser)]
#[command(name = "mynacard-registry", version)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

fn report(error: &dyn std::error::Error) -> ExitCode {
    let mut text = format!("mynacard-registry: {error}");
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(&format!(": {cause}"));
        next = cause.source();
    }
    eprintln!("{text}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mynacard_registry::init_logging(cli.serve.log_json);
    let config = match cli.serve.to_config(builtin_test_trust) {
        Ok(config) => config,
        Err(e) => return report(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&e),
    };
    runtime.block_on(async move {
        let service = match mynacard_registry::spawn(config).await {
            Ok(service) => service,
            Err(e) => return report(&e),
        };
        // The one line on stdout: where to reach the service (port 0 picks one).
        println!("listening on {}", service.base_url());
        let _ = std::io::stdout().flush();
        mynacard_registry::shutdown_signal().await;
        service.shutdown().await;
        ExitCode::SUCCESS
    })
}
