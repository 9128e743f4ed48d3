//! Time helpers: certificates speak `x509_cert::time::Time`, callers speak [`SystemTime`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::DateTime;

/// Formats a time as RFC 3339 in UTC with second precision (`2025-10-19T14:59:59Z`).
///
/// Times outside the range X.509 can express are clamped to its ends.
pub fn format_rfc3339(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    match DateTime::from_unix_duration(since_epoch) {
        Ok(dt) => dt.to_string(),
        Err(_) => "9999-12-31T23:59:59Z".to_owned(),
    }
}
