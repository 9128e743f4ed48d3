//! Per-terminal rate limiting (429 + `Retry-After`) and the maintenance switch (503 +
//! `Retry-After`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

/// Token-bucket limits applied to each terminal id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per terminal.
    pub per_second: f64,
    /// Requests a terminal may send at once after being idle.
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        // A kiosk serves one person at a time: a few requests a second is generous, and a
        // runaway terminal cannot crowd out the others.
        RateLimit {
            per_second: 20.0,
            burst: 40,
        }
    }
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One token bucket per terminal id.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl core::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

/// Most terminals ids remembered before idle buckets are dropped (bounds memory under a flood of
/// invented ids).
const MAX_BUCKETS: usize = 100_000;

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `terminal_id`; `Err(seconds)` says how long to wait when none is left.
    pub fn check(&self, terminal_id: &str, now: Instant) -> Result<(), u32> {
        let burst = f64::from(self.limit.burst.max(1));
        let rate = self.limit.per_second.max(f64::MIN_POSITIVE);
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            // A panic elsewhere while holding the lock leaves only token counts behind.
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(terminal_id) {
            buckets.retain(|_, b| {
                (now.saturating_duration_since(b.last).as_secs_f64() * rate + b.tokens) < burst
            });
        }
        let bucket = buckets.entry(terminal_id.to_owned()).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) / rate).ceil();
            // Retry-After is whole seconds, at least one.
            Err(if wait >= f64::from(u32::MAX) {
                u32::MAX
            } else {
                (wait as u32).max(1)
            })
        }
    }
}

/// The maintenance switch: on by call, or while a marker file exists.
#[derive(Debug)]
pub struct Maintenance {
    forced: AtomicBool,
    retry_after: u32,
    file: Option<PathBuf>,
    // Unix seconds of the last file check and its result, so a busy service stats the file at
    // most once a second.
    checked_at: AtomicI64,
    file_present: AtomicBool,
}

impl Maintenance {
    /// A switch, off, optionally also on while `file` exists.
    pub fn new(file: Option<PathBuf>, retry_after: u32) -> Self {
        Maintenance {
            forced: AtomicBool::new(false),
            retry_after: retry_after.max(1),
            file,
            checked_at: AtomicI64::new(i64::MIN),
            file_present: AtomicBool::new(false),
        }
    }

    /// Turns maintenance mode on or off.
    pub fn set(&self, on: bool) {
        self.forced.store(on, Ordering::SeqCst);
    }

    /// `Some(retry_after_seconds)` while in maintenance.
    pub fn active(&self, now_unix: i64) -> Option<u32> {
        if self.forced.load(Ordering::SeqCst) {
            return Some(self.retry_after);
        }
        let path = self.file.as_ref()?;
        let last = self.checked_at.load(Ordering::Relaxed);
        if last != now_unix {
            self.checked_at.store(now_unix, Ordering::Relaxed);
            self.file_present.store(path.exists(), Ordering::Relaxed);
        }
        self.file_present
            .load(Ordering::Relaxed)
            .then_some(self.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_asks_to_wait() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("k1", t0), Ok(()));
        }
        assert_eq!(limiter.check("k1", t0), Err(1));
        // Another terminal has its own bucket.
        assert_eq!(limiter.check("k2", t0), Ok(()));
        // Half a second refills one token at 2/s.
        assert_eq!(limiter.check("k1", t0 + Duration::from_millis(500)), Ok(()));
        assert_eq!(limiter.check("k1", t0 + Duration::from_millis(500)), Err(1));
    }

    #[test]
    fn slow_rate_reports_long_wait() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.1,
            burst: 1,
        });
        let t0 = Instant::now();
        assert_eq!(limiter.check("k", t0), Ok(()));
        assert_eq!(limiter.check("k", t0), Err(10));
    }

    #[test]
    fn maintenance_by_call_and_by_file() {
        let m = Maintenance::new(None, 30);
        assert_eq!(m.active(0), None);
        m.set(true);
        assert_eq!(m.active(0), Some(30));
        m.set(false);
        assert_eq!(m.active(0), None);

        let dir = std::env::temp_dir().join(format!("mynacard-maint-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let m = Maintenance::new(Some(dir.clone()), 5);
        assert_eq!(m.active(1), None);
        std::fs::write(&dir, b"").unwrap();
        // Checked at most once a second.
        assert_eq!(m.active(1), None);
        assert_eq!(m.active(2), Some(5));
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(m.active(3), None);
    }
}
