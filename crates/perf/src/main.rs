//! `mynacard-perf report`: writes `docs/performance.md` and `docs/performance.svg` from one
//! run's measurements.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "mynacard-perf", about = "The generated performance report")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure everything and write the report and its chart.
    Report {
        /// Few iterations and a short load run (CI, debug builds).
        #[arg(long)]
        short: bool,
        /// The Markdown report.
        #[arg(long, default_value = "docs/performance.md")]
        out: PathBuf,
        /// The SVG chart.
        #[arg(long, default_value = "docs/performance.svg")]
        svg: PathBuf,
        /// Fail when this committed report's tables do not have this run's rows.
        #[arg(long, value_name = "FILE")]
        check: Option<PathBuf>,
        /// Also run the service benchmark on this PostgreSQL database.
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
}

fn main() -> ExitCode {
    let Command::Report {
        short,
        out,
        svg,
        check,
        postgres,
    } = Cli::parse().command;
    // The other programs the report runs are built next to this one.
    let bin_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    let options = mynacard_perf::Options {
        short,
        out,
        svg,
        check,
        postgres,
        bin_dir,
    };
    match mynacard_perf::run(&options) {
        Ok(_) => {
            eprintln!(
                "mynacard-perf: wrote {} and {}",
                options.out.display(),
                options.svg.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mynacard-perf: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
