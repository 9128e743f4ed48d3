//! The machine the report ran on, read from the kernel and the toolchain.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use mynacard_registration::UtcTime;

/// The machine and the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    /// CPU model name.
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Total memory.
    pub memory: String,
    /// Kernel name and release.
    pub kernel: String,
    /// `rustc -V`.
    pub rustc: String,
    /// `release` or `debug`.
    pub profile: &'static str,
    /// When the report was made (UTC).
    pub date: String,
}

fn first_value(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
}

impl MachineInfo {
    /// Reads the machine's description. Unknown parts say `unknown`.
    pub fn read() -> MachineInfo {
        let unknown = || "unknown".to_owned();
        let memory = first_value("/proc/meminfo", "MemTotal")
            .and_then(|v| v.trim_end_matches(" kB").trim().parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
            .unwrap_or_else(unknown);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|r| format!("{} {}", std::env::consts::OS, r.trim()))
            .unwrap_or_else(|_| unknown());
        let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
            .arg("-V")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(unknown);
        MachineInfo {
            cpu: first_value("/proc/cpuinfo", "model name").unwrap_or_else(unknown),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory,
            kernel,
            rustc,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            date: utc_date(SystemTime::now()),
        }
    }
}

/// `YYYY-MM-DD HH:MM UTC` of `t`.
pub fn utc_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day, hour, minute, _) =
        UtcTime::from_unix(i64::try_from(secs).unwrap_or(i64::MAX)).to_civil();
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02} UTC")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        assert_eq!(utc_date(UNIX_EPOCH), "1970-01-01 00:00 UTC");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_210_096); // 2024-02-29 12:34:56
        assert_eq!(utc_date(t), "2024-02-29 12:34 UTC");
    }
}
