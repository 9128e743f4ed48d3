//! The generated performance report of the workspace (`docs/performance.md` and its chart):
//! APDUs and bytes per flow beside the physical minimum and the common tools' sequence, the
//! modelled time at the counter on contact and NFC links, host CPU per operation, the
//! reference service under load on SQLite and PostgreSQL, and peak memory. Every figure is
//! measured or computed in the run that writes the report; [`run`] is the `report` command.

pub mod flows;
pub mod host;
pub mod machine;
pub mod memory;
pub mod model;
pub mod report;
pub mod service;
pub mod svg;

use std::path::{Path, PathBuf};

use report::{Report, ServiceRun};

/// Why the report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    /// A program the report runs is not built.
    #[error("{path} is missing ({what}): build it with `{build}`")]
    Missing {
        /// The program.
        path: PathBuf,
        /// What it is.
        what: &'static str,
        /// The command that builds it.
        build: &'static str,
    },
    /// A flow could not be counted.
    #[error(transparent)]
    Flow(#[from] flows::FlowError),
    /// A host measurement failed.
    #[error(transparent)]
    Host(#[from] host::HostError),
    /// The service benchmark failed.
    #[error(transparent)]
    Service(#[from] service::ServiceError),
    /// The demo's peak memory could not be measured.
    #[error(transparent)]
    Memory(#[from] memory::MemoryError),
    /// The committed report's rows differ.
    #[error(transparent)]
    Check(#[from] report::CheckError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PerfError + '_ {
    move |source| PerfError::Io {
        path: path.to_owned(),
        source,
    }
}

/// What the `report` command was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fewer iterations and requests: for CI on a debug build.
    pub short: bool,
    /// Where the Markdown goes.
    pub out: PathBuf,
    /// Where the SVG chart goes.
    pub svg: PathBuf,
    /// A committed report whose row structure must match this run's.
    pub check: Option<PathBuf>,
    /// A PostgreSQL URL to run the service benchmark on as well.
    pub postgres: Option<String>,
    /// The directory of the `mynacard` binary and of `examples/load` (this program's own).
    pub bin_dir: PathBuf,
}

/// The release builds of what the report runs.
pub const RELEASE_BUILD: &str = "cargo build --release -p mynacard-perf -p mynacard-cli && cargo build --release -p mynacard-registry --features dev-sim --bins --examples";

/// The debug builds of what the report runs (its short mode in CI).
pub const DEBUG_BUILD: &str = "cargo build -p mynacard-perf -p mynacard-cli && cargo build -p mynacard-registry --features dev-sim --bins --examples";

/// The `cargo build` that makes what the report runs, for this build's profile.
pub fn build_hint() -> &'static str {
    if cfg!(debug_assertions) {
        DEBUG_BUILD
    } else {
        RELEASE_BUILD
    }
}

/// Runs every measurement, writes the report and the chart, and checks the committed report's
/// rows when asked.
///
/// # Errors
/// [`PerfError`] of the first step that fails.
pub fn run(options: &Options) -> Result<Report, PerfError> {
    let cli = options.bin_dir.join("mynacard");
    let load = options.bin_dir.join("examples").join("load");
    for (path, what) in [
        (&cli, "the `mynacard` command"),
        (&load, "the load benchmark"),
    ] {
        if !path.is_file() {
            return Err(PerfError::Missing {
                path: path.clone(),
                what,
                build: build_hint(),
            });
        }
    }
    // First child of this process: the kernel's peak over waited-for children is the demo's.
    eprintln!("mynacard-perf: peak memory of `mynacard demo`");
    let demo_peak_rss_kib = memory::peak_rss_kib(&cli, &["demo"])?;
    let machine = machine::MachineInfo::read();

    eprintln!("mynacard-perf: counting the flows");
    let flows = flows::count_all()?;

    eprintln!("mynacard-perf: host CPU per operation");
    let host = host::measure(if options.short { 15 } else { 400 })?;

    let scratch = std::env::temp_dir().join(format!("mynacard-perf-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(io(&scratch))?;
    eprintln!("mynacard-perf: the service on SQLite");
    let sqlite = service::run(&load, "sqlite", options.short, &scratch);
    let postgres = match &options.postgres {
        Some(url) => {
            eprintln!("mynacard-perf: the service on PostgreSQL");
            Some(service::run(&load, url, options.short, &scratch))
        }
        None => None,
    };
    let _ = std::fs::remove_dir_all(&scratch);
    let sqlite = ServiceRun::Measured(sqlite?);
    let postgres = match postgres {
        Some(r) => ServiceRun::Measured(r?),
        None => ServiceRun::NotMeasured("no `--postgres URL` was given".to_owned()),
    };

    let svg_name = options.svg.file_name().map_or_else(
        || "performance.svg".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let report = Report {
        machine,
        short: options.short,
        flows,
        host,
        sqlite,
        postgres,
        demo_peak_rss_kib,
        svg_name,
    };
    let markdown = report.markdown();
    std::fs::write(&options.out, &markdown).map_err(io(&options.out))?;
    std::fs::write(&options.svg, svg::chart(&report.flows)).map_err(io(&options.svg))?;
    if let Some(committed) = &options.check {
        let text = std::fs::read_to_string(committed).map_err(io(committed))?;
        report::check(&text, &markdown)?;
    }
    Ok(report)
}
