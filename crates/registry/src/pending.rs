//! Registrations that wait for an upstream (protocol §16): the policy and the background worker
//! that finishes them.
//!
//! A registration proof whose upstreams do not answer in time is committed as pending (see
//! [`crate::store::Effect::Pending`]). A worker per service instance claims due items from the
//! database with a lease ([`crate::store::Store::claim_pending`]), asks the upstreams again, and
//! either commits the result with the session ([`crate::store::Store::finish_pending`]) or gives
//! the item back for a later attempt, with exponential backoff, until the deadline. Everything
//! lives in the database: a restarted service takes up what was pending, and instances sharing
//! a database never apply one item twice.

use std::sync::Arc;
use std::time::Duration;

use mynacard_protocol::errors::{ErrorBody, ErrorCode};
use tokio::sync::watch;

use crate::service::{Plan, Registry, Upstream, pending_outcome};
use crate::store::{Applied, CardKey, Effect, PendingRecord};

/// How pending registrations are finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PendingPolicy {
    /// Delay before the first background attempt; each further one doubles it.
    pub first_retry: Duration,
    /// The longest delay between two attempts.
    pub max_retry: Duration,
    /// Background attempts before the registration fails with `E_UPSTREAM_TIMEOUT`.
    pub max_attempts: u32,
    /// How long after accepting the proof the service gives up (`E_UPSTREAM_TIMEOUT`).
    pub deadline: Duration,
    /// The `Retry-After` given to pollers.
    pub poll_after: Duration,
    /// How often the worker looks for due items.
    pub scan_interval: Duration,
}

impl Default for PendingPolicy {
    /// 1 s doubling to 60 s, 20 attempts, a 10-minute deadline, polls every 5 s, a scan every
    /// half second.
    fn default() -> Self {
        PendingPolicy {
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
            max_attempts: 20,
            deadline: Duration::from_secs(600),
            poll_after: Duration::from_secs(5),
            scan_interval: Duration::from_millis(500),
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl PendingPolicy {
    /// The same policy with another deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The same policy with other retry delays (first, longest).
    #[must_use]
    pub fn with_retry(mut self, first: Duration, max: Duration) -> Self {
        self.first_retry = first;
        self.max_retry = max.max(first);
        self
    }

    /// The same policy with another number of attempts.
    #[must_use]
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The same policy with another `Retry-After` for pollers and scan interval.
    #[must_use]
    pub fn with_polling(mut self, poll_after: Duration, scan_interval: Duration) -> Self {
        self.poll_after = poll_after;
        self.scan_interval = scan_interval;
        self
    }

    pub(crate) fn first_retry_ms(&self) -> i64 {
        millis(self.first_retry)
    }

    pub(crate) fn deadline_ms(&self) -> i64 {
        millis(self.deadline)
    }

    /// Whole seconds, at least one.
    pub(crate) fn poll_after_secs(&self) -> u32 {
        u32::try_from(self.poll_after.as_secs().max(1)).unwrap_or(u32::MAX)
    }

    /// The pause after attempt number `attempts` (1 for the first).
    fn backoff_ms(&self, attempts: i64) -> i64 {
        let shift = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        self.first_retry_ms()
            .saturating_mul(1i64 << shift)
            .min(millis(self.max_retry))
    }
}

/// The lease a worker takes on an item: longer than one attempt can last (four upstream calls,
/// each cut at the upstream timeout), so that no other worker takes over a live attempt.
fn lease_ms(upstream_timeout: Duration) -> i64 {
    millis(upstream_timeout)
        .saturating_mul(4)
        .saturating_add(2000)
}

fn timed_out() -> ErrorBody {
    ErrorBody::new(
        ErrorCode::UpstreamTimeout,
        "the upstreams did not answer before the deadline; nothing was registered",
    )
}

/// The worker of one service instance: claims due items until none is left, then waits a scan
/// interval. Returns when `stop` turns true (or its sender is gone), after the item in hand.
pub(crate) async fn worker(registry: Arc<Registry>, mut stop: watch::Receiver<bool>) {
    let owner = match crate::service::random_id() {
        Some(id) => id,
        None => {
            tracing::error!("no randomness for the pending-registration worker; not started");
            return;
        }
    };
    tracing::debug!(worker = %owner, "pending-registration worker started");
    let lease = lease_ms(registry.upstream_timeout);
    loop {
        loop {
            if *stop.borrow() {
                return;
            }
            let now = registry.clock.now_ms();
            match registry
                .store
                .claim_pending(now, &owner, now.saturating_add(lease))
                .await
            {
                Ok(Some(item)) => attempt(&registry, item, &owner).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming pending registrations failed");
                    break;
                }
            }
        }
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
            () = tokio::time::sleep(registry.pending.scan_interval) => {}
        }
    }
}

/// One attempt at a claimed item.
async fn attempt(registry: &Registry, item: PendingRecord, owner: &str) {
    let now = registry.clock.now_ms();
    tracing::info!(
        session_id = %item.session_id,
        attempt = item.attempts,
        waiting_on = %item.waiting_on,
        "pending registration: attempt"
    );
    if now >= item.deadline {
        return end(registry, &item, owner, now, Effect::None, Some(timed_out())).await;
    }
    let card = CardKey {
        root_id: item.card.root_id.clone(),
        serial: item.card.serial.clone(),
    };
    let plan = registry
        .plan_registration(
            &card,
            &item.cert_sha256,
            &item.terminal_id,
            &item.consent_version,
            &item.method,
            now,
        )
        .await;
    match plan {
        Ok(Plan::Apply(effect)) => end(registry, &item, owner, now, effect, None).await,
        Ok(Plan::Fail(body)) => end(registry, &item, owner, now, Effect::None, Some(body)).await,
        Ok(Plan::Wait(upstream)) => {
            let out_of_attempts = item.attempts >= i64::from(registry.pending.max_attempts);
            if out_of_attempts || now >= item.deadline {
                return end(registry, &item, owner, now, Effect::None, Some(timed_out())).await;
            }
            let next = now
                .saturating_add(registry.pending.backoff_ms(item.attempts))
                .min(item.deadline);
            give_back(registry, &item, owner, next, upstream).await;
        }
        // The database or the like: the item stays pending for the next attempt.
        Err(body) => {
            tracing::warn!(
                session_id = %item.session_id,
                code = %body.code,
                "pending registration: attempt failed inside the service"
            );
            let next = now.saturating_add(registry.pending.backoff_ms(item.attempts));
            let upstream = Upstream::from_name(&item.waiting_on);
            give_back(registry, &item, owner, next.min(item.deadline), upstream).await;
        }
    }
}

async fn give_back(
    registry: &Registry,
    item: &PendingRecord,
    owner: &str,
    next: i64,
    upstream: Upstream,
) {
    match registry
        .store
        .reschedule_pending(&item.session_id, owner, next, upstream.as_str())
        .await
    {
        Ok(true) => tracing::info!(
            session_id = %item.session_id,
            attempt = item.attempts,
            waiting_on = upstream.as_str(),
            retry_in_ms = next.saturating_sub(registry.clock.now_ms()),
            "pending registration: upstream still unavailable"
        ),
        Ok(false) => tracing::warn!(
            session_id = %item.session_id,
            "pending registration: lease lost; another worker has it"
        ),
        // The lease runs out by itself; the item is taken up again then.
        Err(e) => tracing::warn!(
            session_id = %item.session_id,
            error = %e,
            "pending registration: could not reschedule"
        ),
    }
}

async fn end(
    registry: &Registry,
    item: &PendingRecord,
    owner: &str,
    now: i64,
    effect: Effect,
    failure: Option<ErrorBody>,
) {
    let code = failure.as_ref().map(|b| b.code.to_string());
    let session = item.session_id.clone();
    let answer = |applied: &Applied| pending_outcome(&session, failure, applied, now);
    match registry
        .store
        .finish_pending(&item.session_id, owner, now, effect, answer)
        .await
    {
        Ok(Some(applied)) => {
            let result = match (&code, &applied) {
                (Some(code), _) => code.as_str(),
                (None, Applied::Registered(_)) => "registered",
                (None, Applied::AlreadyRegistered(_)) => "already_registered",
                (None, Applied::Relinked(_)) => "relinked",
                (None, _) => "other",
            };
            tracing::info!(
                session_id = %item.session_id,
                attempts = item.attempts,
                result,
                "pending registration finished"
            );
        }
        Ok(None) => tracing::warn!(
            session_id = %item.session_id,
            "pending registration: lease lost before the result was committed; another worker has it"
        ),
        Err(e) => {
            tracing::warn!(
                session_id = %item.session_id,
                error = %e,
                "pending registration: committing the result failed; trying again later"
            );
            let next = now.saturating_add(registry.pending.backoff_ms(item.attempts));
            give_back(
                registry,
                item,
                owner,
                next.min(item.deadline),
                Upstream::from_name(&item.waiting_on),
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_longest_delay() {
        let policy = PendingPolicy::default();
        let delays: Vec<i64> = (1..=9).map(|n| policy.backoff_ms(n)).collect();
        assert_eq!(
            delays,
            [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        assert_eq!(policy.backoff_ms(0), 1000);
        assert_eq!(policy.backoff_ms(i64::MAX), 60000);
        assert_eq!(policy.poll_after_secs(), 5);
        let fast = PendingPolicy::default().with_polling(Duration::from_millis(10), Duration::ZERO);
        assert_eq!(fast.poll_after_secs(), 1, "never less than a second");
    }

    #[test]
    fn a_lease_outlasts_an_attempt() {
        assert_eq!(lease_ms(Duration::from_secs(5)), 22_000);
        assert_eq!(lease_ms(Duration::from_millis(200)), 2_800);
    }
}
