//! Rate limiting by what a client cannot choose, the peer address ([`peer_key`]), and by
//! terminal (429 + `Retry-After`); the ceiling on open challenges ([`OpenChallenges`]); and the
//! maintenance switch (503 + `Retry-After`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Instant;

/// Token-bucket limits applied to each key (a terminal id, or a peer address).
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

/// The default per-peer limit: room for the terminals of a clinic or shop behind one address
/// (each registration is two or three requests), far below a flood.
pub const DEFAULT_PEER_RATE_LIMIT: RateLimit = RateLimit {
    per_second: 50.0,
    burst: 100,
};

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One token bucket per key (terminal id or [`peer_key`]), at most [`MAX_BUCKETS`] of them.
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

/// Most keys remembered (bounds memory under a flood of invented ids or addresses): when full,
/// idle buckets are dropped, and if none is idle all are, so a flood of more distinct keys than
/// this at once starts every bucket anew (the open-challenge ceiling still holds). About 100
/// bytes a bucket: some 10 MB.
pub const MAX_BUCKETS: usize = 100_000;

/// The rate-limit key of a peer address: an IPv4 address as it is, an IPv6 address by its /64
/// prefix (one subscriber or host is commonly given a whole /64, so per-address keys would let
/// it invent 2^64 of them). An IPv4-mapped IPv6 address counts as the IPv4 address.
pub fn peer_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

impl RateLimiter {
    /// A limiter with these limits.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Number of keys remembered.
    pub fn len(&self) -> usize {
        match self.buckets.lock() {
            Ok(guard) => guard.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
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

/// The ceiling on open challenges (issued, not used, not expired) of this service instance, so
/// that no number of clients grows the challenge table without bound: past it a StartSession is
/// answered `E_RATE_LIMITED` with `Retry-After` until the next open challenge expires.
///
/// Kept in memory, one entry per expiry time (at most the ceiling's worth), loaded once from the
/// store's unused challenges so that a restart does not forget them.
#[derive(Debug)]
pub struct OpenChallenges {
    ceiling: usize,
    state: Mutex<OpenState>,
}

#[derive(Debug, Default)]
struct OpenState {
    // Expiry (Unix ms) → number of open challenges expiring then.
    expiries: BTreeMap<i64, u32>,
    count: usize,
    loaded: bool,
}

impl OpenState {
    fn prune(&mut self, now_ms: i64) {
        let live = self.expiries.split_off(&now_ms.saturating_add(1));
        let gone: usize = self.expiries.values().map(|&n| n as usize).sum();
        self.count = self.count.saturating_sub(gone);
        self.expiries = live;
    }

    fn add(&mut self, expires_at: i64) {
        *self.expiries.entry(expires_at).or_insert(0) += 1;
        self.count += 1;
    }
}

impl OpenChallenges {
    /// At most `ceiling` open challenges (0: no ceiling).
    pub fn new(ceiling: usize) -> Self {
        OpenChallenges {
            ceiling,
            state: Mutex::new(OpenState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OpenState> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The ceiling (0: none).
    pub fn ceiling(&self) -> usize {
        self.ceiling
    }

    /// Whether the open challenges of the store are still to be loaded ([`Self::load`]).
    pub fn needs_load(&self) -> bool {
        self.ceiling > 0 && !self.lock().loaded
    }

    /// Counts the store's open challenges by their expiry times (Unix ms), once.
    pub fn load(&self, expiries: impl IntoIterator<Item = i64>) {
        let mut state = self.lock();
        if state.loaded {
            return;
        }
        for expires_at in expiries {
            state.add(expires_at);
        }
        state.loaded = true;
    }

    /// Takes a place for a challenge expiring at `expires_at`; `Err(seconds)` until the next
    /// open challenge expires when the ceiling is reached.
    pub fn admit(&self, now_ms: i64, expires_at: i64) -> Result<(), u32> {
        if self.ceiling == 0 {
            return Ok(());
        }
        let mut state = self.lock();
        state.prune(now_ms);
        if state.count >= self.ceiling {
            let next = state.expiries.keys().next().copied().unwrap_or(now_ms);
            let wait = (next.saturating_sub(now_ms) + 999) / 1000;
            return Err(u32::try_from(wait).unwrap_or(u32::MAX).max(1));
        }
        state.add(expires_at);
        Ok(())
    }

    /// Gives back the place of a challenge expiring at `expires_at` (used, or never stored).
    pub fn release(&self, expires_at: i64) {
        if self.ceiling == 0 {
            return;
        }
        let mut state = self.lock();
        if let Some(n) = state.expiries.get_mut(&expires_at) {
            *n -= 1;
            if *n == 0 {
                state.expiries.remove(&expires_at);
            }
            state.count = state.count.saturating_sub(1);
        }
    }

    /// Open challenges at `now_ms`.
    pub fn open(&self, now_ms: i64) -> usize {
        let mut state = self.lock();
        state.prune(now_ms);
        state.count
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
    fn buckets_are_bounded_even_when_none_is_idle() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 0.001,
            burst: 2,
        });
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS + 10 {
            let _ = limiter.check(&i.to_string(), t0);
            assert!(limiter.len() <= MAX_BUCKETS);
        }
    }

    #[test]
    fn peers_are_keyed_by_ipv4_address_and_ipv6_slash_64() {
        let key = |s: &str| peer_key(s.parse().unwrap());
        assert_eq!(key("192.0.2.7"), "192.0.2.7");
        assert_eq!(key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn open_challenges_stop_at_the_ceiling_until_one_expires_or_is_used() {
        let open = OpenChallenges::new(2);
        assert!(open.needs_load());
        open.load([10_000]);
        assert!(!open.needs_load());
        assert_eq!(open.admit(0, 20_000), Ok(()));
        // Full: the next place frees when the first challenge expires, 10 s on.
        assert_eq!(open.admit(0, 20_000), Err(10));
        assert_eq!(open.open(0), 2);
        open.release(20_000);
        assert_eq!(open.admit(0, 20_000), Ok(()));
        assert_eq!(open.admit(500, 20_000), Err(10));
        // Past the first expiry a place is free again.
        assert_eq!(open.admit(10_000, 20_000), Ok(()));
        assert_eq!(open.open(10_000), 2);
        assert_eq!(OpenChallenges::new(0).admit(0, 1), Ok(()));
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
