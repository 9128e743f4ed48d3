//! The service's figures: the registry's load benchmark (`examples/load`) run as a child
//! process in JSON mode, its document read back.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// Why the load benchmark gave no figures.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// It could not be started.
    #[error("running {path}: {source}")]
    Spawn {
        /// The program.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It failed.
    #[error("the load benchmark on {db} exited with {status}")]
    Failed {
        /// The database.
        db: String,
        /// Its exit status.
        status: std::process::ExitStatus,
    },
    /// Its document could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Its document is not the expected schema.
    #[error("the load benchmark's JSON: {0}")]
    Parse(#[from] serde_json::Error),
    /// Its document has another schema version.
    #[error("the load benchmark's JSON has schema {0}, this report reads schema 1")]
    Schema(u32),
}

/// One timed phase of the load benchmark.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Phase {
    /// `registration-challenge`, `registration-proof`, `eligibility-challenge` or
    /// `eligibility-proof`.
    pub name: String,
    /// Requests sent.
    pub requests: u64,
    /// Wall time of the phase.
    pub seconds: f64,
    /// Requests per second.
    pub per_second: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th-percentile latency, ms.
    pub p99_ms: f64,
    /// Service CPU time per request, µs.
    pub service_cpu_us_per_request: f64,
    /// Database backends' CPU time per request, µs (PostgreSQL only).
    pub db_cpu_us_per_request: Option<f64>,
}

/// The load benchmark's document (schema 1).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoadReport {
    /// Schema version.
    pub schema: u32,
    /// `sqlite` or `postgres`.
    pub db: String,
    /// Concurrent simulated terminals.
    pub terminals: u64,
    /// The service ran pinned to its CPUs.
    pub service_pinned: bool,
    /// The timed phases.
    pub phases: Vec<Phase>,
    /// One RSA-2048 signature verification measured in the same run, µs.
    pub eligibility_rsa_us_per_proof: f64,
    /// Service CPU per eligibility proof over the RSA verifications it must do.
    pub eligibility_cpu_ratio: f64,
    /// The service's peak resident memory, KiB.
    pub service_peak_rss_kib: u64,
}

impl LoadReport {
    /// Parses a document, refusing another schema version.
    ///
    /// # Errors
    /// [`ServiceError::Parse`], [`ServiceError::Schema`].
    pub fn parse(text: &str) -> Result<LoadReport, ServiceError> {
        let report: LoadReport = serde_json::from_str(text)?;
        if report.schema != 1 {
            return Err(ServiceError::Schema(report.schema));
        }
        Ok(report)
    }
}

/// Runs the load benchmark at `example` on `db` (`sqlite` or a PostgreSQL URL), pinned to the
/// first CPU when the machine has two or more (the service then gets its own).
///
/// # Errors
/// [`ServiceError`].
pub fn run(
    example: &Path,
    db: &str,
    short: bool,
    scratch: &Path,
) -> Result<LoadReport, ServiceError> {
    // Anything but `sqlite` is a PostgreSQL URL, which may hold a password: never printed.
    let label = if db == "sqlite" { "sqlite" } else { "postgres" };
    let json = scratch.join(format!("load-{label}.json"));
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut command = if cpus >= 2 && Path::new("/usr/bin/taskset").is_file() {
        let mut c = Command::new("/usr/bin/taskset");
        c.args(["-c", "0"])
            .arg(example)
            .args(["--service-cpus", "1"]);
        c
    } else {
        Command::new(example)
    };
    command.arg("--json").arg(&json).args(["--db", db]);
    if short {
        command.arg("--short");
    }
    let status = command.status().map_err(|source| ServiceError::Spawn {
        path: example.to_owned(),
        source,
    })?;
    if !status.success() {
        return Err(ServiceError::Failed {
            db: label.to_owned(),
            status,
        });
    }
    let text = std::fs::read_to_string(&json).map_err(|source| ServiceError::Read {
        path: json.clone(),
        source,
    })?;
    LoadReport::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"schema":1,"db":"sqlite","terminals":64,"service_pinned":true,
 "phases":[{"name":"registration-challenge","requests":5000,"seconds":0.4,"per_second":12599.0,"p50_ms":3.8,"p99_ms":23.9,"service_cpu_us_per_request":66.0,"db_cpu_us_per_request":null},
 {"name":"eligibility-proof","requests":10000,"seconds":1.1,"per_second":9000.5,"p50_ms":5.0,"p99_ms":30.1,"service_cpu_us_per_request":190.0,"db_cpu_us_per_request":12.5}],
 "eligibility_rsa_us_per_proof":90.7,"eligibility_cpu_ratio":2.1,
 "service_peak_rss_kib":80000}"#;

    #[test]
    fn parses_the_sample_document() {
        let r = LoadReport::parse(SAMPLE).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(r.db, "sqlite");
        assert_eq!(r.phases.len(), 2);
        assert_eq!(r.phases[0].db_cpu_us_per_request, None);
        assert_eq!(r.phases[1].db_cpu_us_per_request, Some(12.5));
        assert!((r.eligibility_cpu_ratio - 2.1).abs() < 1e-12);
        assert_eq!(r.service_peak_rss_kib, 80_000);
    }

    #[test]
    fn refuses_another_schema_and_missing_fields() {
        let other = SAMPLE.replacen("\"schema\":1", "\"schema\":2", 1);
        assert!(matches!(
            LoadReport::parse(&other),
            Err(ServiceError::Schema(2))
        ));
        let missing = SAMPLE.replacen("\"service_peak_rss_kib\":80000", "\"x\":1", 1);
        assert!(matches!(
            LoadReport::parse(&missing),
            Err(ServiceError::Parse(_))
        ));
    }
}
