//! What the service does with a start, a proof and a status request, apart from HTTP.
//!
//! One module per job: `checks` validates a request and its proof before any work (protocol
//! §9 in order, the first failure answers); `plan` decides what a checked proof writes (the
//! upstream lookups, outside the transaction); `response` builds the answers (the stored
//! outcome of a proof, rendered again for a retry, and the pending status documents). This
//! module holds the service's state and runs the three in turn.

mod checks;
mod plan;
mod response;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mynacard_protocol::errors::{ErrorBody, ErrorCode};
use mynacard_protocol::messages::{
    Challenge, ConsentRef, Method, Operation, PollToken, Proof, StartSession, is_valid_identifier,
};
use mynacard_protocol::wire::{Sha256Digest, UtcTime, V1};
use mynacard_protocol::{ConsentDocument, jcs};

use crate::limits::{Maintenance, OpenChallenges, RateLimiter};
use crate::pending::PendingPolicy;
use crate::store::{Applied, ChallengeRecord, Store, StoreError};
use crate::upstream::{IdentityProvider, InsuranceProvider};
use crate::verify::{Terminal, Verifier};

use checks::{CheckedProof, ProofCheck};
pub(crate) use plan::{Plan, Upstream};
pub use response::Answer;
pub(crate) use response::pending_outcome;
use response::{Replay, stored_outcome};

/// The service's clock: the system clock plus an offset that tests may move forward.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// Now, in Unix milliseconds.
    pub fn now_ms(&self) -> i64 {
        let base = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(_) => 0,
        };
        base.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// A clock that reads `start` now and runs on from there.
    pub fn starting_at(start: SystemTime) -> Clock {
        let clock = Clock::default();
        let target = match start.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        clock.advance_ms(target.saturating_sub(clock.now_ms()));
        clock
    }

    /// Moves the clock forward (or back, with a negative value) by `ms` milliseconds.
    pub fn advance_ms(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

fn err(code: ErrorCode, message: &str) -> ErrorBody {
    ErrorBody::new(code, message)
}

/// Test-only fault points (feature `fault-injection`).
#[cfg(feature = "fault-injection")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Exit the process right after a proof's transaction commits, before answering it.
    ExitAfterCommit,
}

/// Everything a request handler needs.
pub struct Registry {
    pub(crate) store: Store,
    pub(crate) identity: Arc<dyn IdentityProvider>,
    pub(crate) insurance: Arc<dyn InsuranceProvider>,
    pub(crate) verifier: Verifier,
    pub(crate) terminals: HashMap<String, Terminal>,
    pub(crate) consent: ConsentDocument,
    pub(crate) consent_ref: ConsentRef,
    pub(crate) limiter: Option<RateLimiter>,
    pub(crate) maintenance: Maintenance,
    pub(crate) clock: Clock,
    pub(crate) challenge_ttl_secs: i64,
    #[cfg(feature = "fault-injection")]
    pub(crate) fault: Option<Fault>,
    pub(crate) upstream_timeout: std::time::Duration,
    pub(crate) pending: PendingPolicy,
    pub(crate) peer_limiter: Option<RateLimiter>,
    pub(crate) open_challenges: OpenChallenges,
}

impl core::fmt::Debug for Registry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Registry")
            .field("backend", &self.store.backend())
            .field("terminals", &self.terminals.len())
            .finish_non_exhaustive()
    }
}

/// How long a used challenge (and its stored answer) is kept for retries after it expires.
pub(crate) const RETRY_RETENTION_MS: i64 = 24 * 3600 * 1000;

/// How long a challenge never used is kept after it expires (a late proof is then answered
/// `E_SESSION_EXPIRED` rather than `E_SESSION_NOT_FOUND`); it holds no answer to keep.
pub(crate) const UNUSED_RETENTION_MS: i64 = 10 * 60 * 1000;

/// The grace period after expiry of an auth certificate: until the end of the third month after
/// the month of expiry (domain facts §1.6), counted in Japan time.
pub fn grace_end_unix(not_after: i64) -> i64 {
    const JST: i64 = 9 * 3600;
    let (year, month, ..) = UtcTime::from_unix(not_after + JST).to_civil();
    // First day of the fourth month after expiry, 00:00 JST, minus one second.
    let months = year * 12 + i64::from(month) - 1 + 4;
    let (y, m) = (months.div_euclid(12), (months.rem_euclid(12) + 1) as u8);
    match UtcTime::from_civil(y, m, 1, 0, 0, 0) {
        Some(t) => t.unix() - JST - 1,
        None => not_after,
    }
}

fn random_b64(len: usize) -> Result<String, ErrorBody> {
    let mut buf = vec![0u8; len];
    getrandom::fill(&mut buf).map_err(|_| err(ErrorCode::Internal, "no randomness"))?;
    Ok(mynacard_protocol::wire::Bytes(buf).to_base64url())
}

/// A random identifier (16 bytes, base64url), or `None` without randomness.
pub(crate) fn random_id() -> Option<String> {
    random_b64(16).ok()
}

fn store_failure(e: &StoreError) -> ErrorBody {
    tracing::error!(error = %e, source = ?std::error::Error::source(e), "database failure");
    err(
        ErrorCode::Internal,
        "storage failure; nothing was committed",
    )
}

impl Registry {
    /// Ends the process (exit status 86) when [`Fault::ExitAfterCommit`] is set: a proof's
    /// transaction has committed and its answer is not sent.
    #[cfg(feature = "fault-injection")]
    fn exit_after_commit(&self) {
        if self.fault == Some(Fault::ExitAfterCommit) {
            tracing::warn!("fault injection: exiting after commit, before answering");
            std::process::exit(86);
        }
    }

    /// `Some(retry_after)` while in maintenance.
    pub fn maintenance(&self) -> Option<u32> {
        self.maintenance.active(self.clock.now_ms() / 1000)
    }

    /// `POST /v1/{registrations|eligibility|deregistrations}`. `client` is the terminal the
    /// connection's client certificate names (mutual TLS): the message must name the same
    /// terminal, and the session is then bound to it.
    pub async fn start(&self, op: Operation, start: StartSession, client: Option<&str>) -> Answer {
        match self.start_inner(op, start, client).await {
            Ok(challenge) => Answer::json(201, &challenge),
            Err(e) => Answer::error(e),
        }
    }

    async fn start_inner(
        &self,
        op: Operation,
        start: StartSession,
        client: Option<&str>,
    ) -> Result<Challenge, ErrorBody> {
        let accepted = self.check_start(&start, client)?;
        let now = self.clock.now_ms();
        let issued_at = UtcTime::from_unix(now.div_euclid(1000));
        let expires_at = issued_at.plus(self.challenge_ttl_secs);
        let expires_ms = expires_at.unix() * 1000;
        self.admit_challenge(now, expires_ms).await?;
        let session_id = match random_b64(16) {
            Ok(id) => id,
            Err(e) => {
                self.open_challenges.release(expires_ms);
                return Err(e);
            }
        };
        let mut nonce = [0u8; 32];
        if getrandom::fill(&mut nonce).is_err() {
            self.open_challenges.release(expires_ms);
            return Err(err(ErrorCode::Internal, "no randomness"));
        }
        let nonce = Sha256Digest(nonce);
        let record = ChallengeRecord {
            session_id: session_id.clone(),
            nonce: nonce.to_base64url(),
            terminal_id: start.terminal_id.clone(),
            purpose: op.as_str().to_owned(),
            methods: accepted
                .iter()
                .map(|m| method_name(*m))
                .collect::<Vec<_>>()
                .join(","),
            consent_version: self.consent_ref.version.clone(),
            consent_sha256: self.consent_ref.sha256.to_base64url(),
            issued_at: issued_at.unix() * 1000,
            expires_at: expires_ms,
            used_at: None,
            proof_sha256: None,
            outcome: None,
            bound_terminal_id: client.map(str::to_owned),
        };
        if let Err(e) = self.store.insert_challenge(&record).await {
            self.open_challenges.release(expires_ms);
            return Err(store_failure(&e));
        }
        tracing::info!(
            op = op.as_str(),
            terminal_id = %start.terminal_id,
            session_id = %session_id,
            bound = client.is_some(),
            "challenge issued"
        );
        Ok(Challenge {
            v: V1,
            session_id,
            op,
            nonce,
            issued_at,
            expires_at,
            consent: self.consent_ref.clone(),
            accepted_methods: accepted,
            accepted_roots: self.verifier.accepted_root_names(),
        })
    }

    /// Takes a place under the open-challenge ceiling for a challenge expiring at
    /// `expires_ms`, counting the store's open challenges first if this instance has not yet.
    async fn admit_challenge(&self, now: i64, expires_ms: i64) -> Result<(), ErrorBody> {
        if self.open_challenges.needs_load() {
            let open = self
                .store
                .open_challenge_expiries(now, self.open_challenges.ceiling())
                .await
                .map_err(|e| store_failure(&e))?;
            self.open_challenges.load(open);
        }
        self.open_challenges.admit(now, expires_ms).map_err(|secs| {
            tracing::warn!(
                ceiling = self.open_challenges.ceiling(),
                "open-challenge ceiling reached"
            );
            err(
                ErrorCode::RateLimited,
                "too many open sessions; try again later",
            )
            .with_retry_after(secs)
        })
    }

    /// `GET /v1/consent`.
    pub fn consent(&self) -> Answer {
        Answer::json(
            200,
            &mynacard_protocol::messages::ConsentResponse {
                v: V1,
                consent: self.consent_ref.clone(),
                document: self.consent.clone(),
            },
        )
    }

    /// `POST /v1/{…}/{session_id}/proof`. With `respond_async` (the request's
    /// `Prefer: respond-async`), a registration whose upstreams do not answer in time is
    /// accepted and answered `202` (protocol §16). `client` is the terminal the connection's
    /// client certificate names: a session bound to another terminal (or bound, and `client`
    /// is `None`) is not found, and every terminal the proof names must be `client`.
    pub async fn proof(
        &self,
        op: Operation,
        session_id: &str,
        proof: Proof,
        respond_async: bool,
        client: Option<&str>,
    ) -> Answer {
        let started = Instant::now();
        // Identifiers the client chose reach neither a log line nor the store unless they are
        // protocol identifiers; a refused one is logged escaped and cut short.
        if !is_valid_identifier(session_id) {
            tracing::info!(
                op = op.as_str(),
                session_id = %Escaped(session_id),
                "proof for an invalid session id refused"
            );
            return Answer::error(err(
                ErrorCode::SessionNotFound,
                "no such session for this operation",
            ));
        }
        let terminal_id = &proof.intent().terminal_id;
        if !is_valid_identifier(terminal_id) {
            tracing::info!(
                op = op.as_str(),
                session_id = %session_id,
                terminal_id = %Escaped(terminal_id),
                "proof with an invalid terminal id refused"
            );
            return Answer::error(err(
                ErrorCode::BadRequest,
                "terminal_id is not a valid identifier",
            ));
        }
        let answer = match self
            .proof_inner(op, session_id, &proof, respond_async, client)
            .await
        {
            Ok(answer) => answer,
            Err(e) => Answer::error(e),
        };
        tracing::info!(
            op = op.as_str(),
            session_id = %session_id,
            terminal_id = %terminal_id,
            method = ?proof.method(),
            status = answer.status,
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "proof answered"
        );
        answer
    }

    async fn proof_inner(
        &self,
        op: Operation,
        session_id: &str,
        proof: &Proof,
        respond_async: bool,
        client: Option<&str>,
    ) -> Result<Answer, ErrorBody> {
        let intent = proof.intent();
        // A certified terminal is limited as itself, whatever the message claims.
        self.rate_limit(client.unwrap_or(&intent.terminal_id))?;
        let proof_jcs = jcs::to_vec(proof)
            .map_err(|_| err(ErrorCode::BadRequest, "proof cannot be canonicalised"))?;
        let proof_hash = Sha256Digest::of(&proof_jcs).to_base64url();
        // Only a registration waits for its upstreams (protocol §16.1).
        let respond_async = respond_async && op == Operation::RegisterInsuranceUse;
        let token = PollToken::for_proof(&proof_jcs);
        let replay = Replay {
            proof_hash: &proof_hash,
            token: &token,
            respond_async,
        };
        let (checked, cert_failure) = match self.check_proof(op, session_id, proof, client).await? {
            ProofCheck::Used(challenge) => return self.earlier_answer(&challenge, &replay).await,
            ProofCheck::Checked(checked, cert_failure) => (checked, cert_failure),
        };
        // From here on the outcome is stored with the session and answered again to a retry.
        let (effect, failure) = self
            .decide(op, &checked, cert_failure, &token, respond_async)
            .await?;
        let CheckedProof {
            challenge,
            now,
            cert,
            ..
        } = &checked;
        let now = *now;
        let session = challenge.session_id.clone();
        let checked_at = UtcTime::from_unix(now.div_euclid(1000));
        let grace = match cert {
            Ok(c) => op == Operation::CheckEligibility && c.not_after < now / 1000,
            Err(_) => false,
        };
        let answer = |applied: &Applied| -> String {
            let stored = stored_outcome(op, &session, failure, applied, checked_at, grace);
            serde_json::to_string(&stored).unwrap_or_default()
        };
        let settled = self
            .store
            .settle(&session, &proof_hash, now, effect, answer)
            .await
            .map_err(|e| store_failure(&e))?;
        if matches!(settled, crate::store::Settled::Fresh { .. }) {
            // A used challenge is no longer open.
            self.open_challenges.release(challenge.expires_at);
        }
        self.settled_answer(settled, challenge, now, &replay).await
    }

    /// `GET /v1/registrations/{session_id}` with `Authorization: Bearer <poll token>`
    /// (protocol §16.4). Every way of not finding the status (unknown session, never pending,
    /// another operation, no or a wrong token) gets the same 404.
    ///
    /// `client` is the terminal the connection's client certificate names: a session bound to
    /// a terminal is only found through a connection of that terminal (protocol §16.4).
    pub async fn registration_status(
        &self,
        session_id: &str,
        authorization: Option<&str>,
        client: Option<&str>,
    ) -> Answer {
        match self
            .registration_status_inner(session_id, authorization, client)
            .await
        {
            Ok(answer) => answer,
            Err(e) => Answer::error(e),
        }
    }

    async fn registration_status_inner(
        &self,
        session_id: &str,
        authorization: Option<&str>,
        client: Option<&str>,
    ) -> Result<Answer, ErrorBody> {
        let (token, status, challenge) = self.check_poll(session_id, authorization, client).await?;
        self.status_answer(session_id, &token, &status, &challenge)
            .await
    }
}

/// Most characters of a refused identifier that reach a log line.
const LOGGED_ID_CHARS: usize = 80;

/// A client-chosen string as a log field: escaped (`{:?}`: no line break, no control byte
/// reaches the log) and cut at [`LOGGED_ID_CHARS`] characters.
pub(crate) struct Escaped<'a>(pub(crate) &'a str);

impl core::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let cut = self
            .0
            .char_indices()
            .nth(LOGGED_ID_CHARS)
            .map_or(self.0, |(i, _)| &self.0[..i]);
        write!(f, "{cut:?}")?;
        if cut.len() < self.0.len() {
            f.write_str("…")?;
        }
        Ok(())
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::PinSignature => "pin_signature",
        Method::AccreditedFace => "accredited_face",
        _ => "other",
    }
}

fn utc_ms(ms: i64) -> UtcTime {
    UtcTime::from_unix(ms.div_euclid(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_identifiers_have_no_control_bytes_and_are_cut_short() {
        let forged = format!("a\nINFO forged line\x1b[31m{}", "x".repeat(200));
        let shown = Escaped(&forged).to_string();
        assert!(!shown.contains('\n') && !shown.contains('\x1b'), "{shown}");
        assert!(
            shown.contains("\\n") && shown.contains("\\u{1b}"),
            "{shown}"
        );
        assert!(shown.chars().count() < LOGGED_ID_CHARS + 10, "{shown}");
        assert_eq!(Escaped("atm-0001").to_string(), "\"atm-0001\"");
    }

    #[test]
    fn grace_runs_to_the_end_of_the_third_month_in_japan_time() {
        // Expiry 2025-01-15 12:00 JST → grace until 2025-04-30 23:59:59 JST.
        let expiry = UtcTime::from_civil(2025, 1, 15, 3, 0, 0).unwrap().unix();
        let end = grace_end_unix(expiry);
        assert_eq!(UtcTime::from_unix(end).to_string(), "2025-04-30T14:59:59Z");
        // Expiry 2025-10-31 23:30 JST (14:30 UTC) → 2026-01-31 23:59:59 JST across a year end.
        let expiry = UtcTime::from_civil(2025, 10, 31, 14, 30, 0).unwrap().unix();
        assert_eq!(
            UtcTime::from_unix(grace_end_unix(expiry)).to_string(),
            "2026-01-31T14:59:59Z"
        );
        // 2025-11-30 16:00 UTC is already 1 December in Japan → grace until end of March.
        let expiry = UtcTime::from_civil(2025, 11, 30, 16, 0, 0).unwrap().unix();
        assert_eq!(
            UtcTime::from_unix(grace_end_unix(expiry)).to_string(),
            "2026-03-31T14:59:59Z"
        );
    }
}
