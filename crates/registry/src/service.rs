//! What the service does with a start and a proof, apart from HTTP.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mynacard_protocol::errors::{ErrorBody, ErrorCode};
use mynacard_protocol::messages::{
    Challenge, ConsentRef, DeregistrationResult, DeregistrationStatus, EligibilityResult,
    EligibilityStatus, FailedState, InsuranceRecord as WireInsurance, Method, Operation,
    PendingState, PollInfo, PollToken, Proof, RegistrationFailed, RegistrationPending,
    RegistrationResult, RegistrationStatus, StartSession, is_valid_identifier, paths,
};
use mynacard_protocol::wire::{Sha256Digest, UtcTime, V1};
use mynacard_protocol::{ConsentDocument, jcs};
use serde::{Deserialize, Serialize};

use crate::limits::{Maintenance, RateLimiter};
use crate::pending::PendingPolicy;
use crate::store::{
    Applied, CardKey, ChallengeRecord, Effect, PendingRecord, PendingStatus, RegistrationRecord,
    Settled, Store, StoreError,
};
use crate::upstream::{
    CertificateForm, IdentityProvider, InsuranceLookup, InsuranceProvider, InsuranceRecord,
    LinkageCode, PersonLookup, UpstreamError,
};
use crate::verify::{CertFailure, CheckedCert, Terminal, Verifier};

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

/// What the answer to a request is: a status and a JSON body, plus `Retry-After` for 429/503.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
    /// Seconds for the `Retry-After` header.
    pub retry_after: Option<u32>,
}

impl Answer {
    fn json<T: Serialize>(status: u16, value: &T) -> Answer {
        match serde_json::to_string(value) {
            Ok(body) => Answer {
                status,
                body,
                retry_after: None,
            },
            Err(_) => Answer::error(ErrorBody::new(ErrorCode::Internal, "cannot encode answer")),
        }
    }

    /// The answer for an error body (status from its code).
    pub fn error(body: ErrorBody) -> Answer {
        let retry_after = body.retry_after;
        let status = body.http_status();
        let text = serde_json::to_string(&body).unwrap_or_else(|_| {
            r#"{"v":"1","code":"E_INTERNAL","message":"cannot encode error","retry":"backoff"}"#
                .to_owned()
        });
        Answer {
            status,
            body: text,
            retry_after,
        }
    }
}

fn err(code: ErrorCode, message: &str) -> ErrorBody {
    ErrorBody::new(code, message)
}

/// The first answer to a proof, as stored with the challenge. It holds no personal data: the
/// insurance fields are looked up again when a retry asks for the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredOutcome {
    Registration(RegistrationResult),
    Eligible {
        session_id: String,
        registration_id: String,
        grace: bool,
        relinked: bool,
        checked_at: UtcTime,
    },
    Deregistration(DeregistrationResult),
    Error(ErrorBody),
    /// A registration waiting for an upstream (protocol §16); its row in
    /// `pending_registrations` says more, and a worker replaces this with the result.
    Pending,
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

fn terminal_mismatch() -> ErrorBody {
    err(
        ErrorCode::TerminalMismatch,
        "the message names another terminal than the client certificate",
    )
}

/// Whether a request over a connection of terminal `client` may see this session: a session
/// bound to a terminal is seen only by that terminal, an unbound one by anyone (protocol §3).
fn reachable_by(challenge: &ChallengeRecord, client: Option<&str>) -> bool {
    match challenge.bound_terminal_id.as_deref() {
        Some(bound) => client == Some(bound),
        None => true,
    }
}

/// Every terminal id a proof names: its intent's, and the attestation's for a face proof.
fn proof_terminals(proof: &Proof) -> impl Iterator<Item = &str> {
    let attestation = match proof {
        Proof::AccreditedFace { attestation, .. } => Some(attestation.terminal_id.as_str()),
        _ => None,
    };
    std::iter::once(proof.intent().terminal_id.as_str()).chain(attestation)
}

fn op_of(purpose: &str) -> Option<Operation> {
    [
        Operation::RegisterInsuranceUse,
        Operation::CheckEligibility,
        Operation::DeregisterInsuranceUse,
    ]
    .into_iter()
    .find(|op| op.as_str() == purpose)
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

    fn rate_limit(&self, terminal_id: &str) -> Result<(), ErrorBody> {
        match &self.limiter {
            Some(limiter) => limiter.check(terminal_id, Instant::now()).map_err(|secs| {
                err(
                    ErrorCode::RateLimited,
                    "too many requests from this terminal",
                )
                .with_retry_after(secs)
            }),
            None => Ok(()),
        }
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
        if !is_valid_identifier(&start.terminal_id) {
            return Err(err(
                ErrorCode::BadRequest,
                "terminal_id is not a valid identifier",
            ));
        }
        // Before the rate limit, so that one terminal cannot spend another's budget.
        if client.is_some_and(|c| c != start.terminal_id) {
            return Err(terminal_mismatch());
        }
        self.rate_limit(&start.terminal_id)?;
        let terminal = self.terminals.get(&start.terminal_id);
        let mut accepted = Vec::new();
        if start.methods_supported.contains(&Method::PinSignature) {
            accepted.push(Method::PinSignature);
        }
        if start.methods_supported.contains(&Method::AccreditedFace)
            && terminal.is_some_and(Terminal::may_use_face)
        {
            accepted.push(Method::AccreditedFace);
        }
        if accepted.is_empty() {
            return Err(if terminal.is_none() {
                err(
                    ErrorCode::TerminalUnknown,
                    "face matching needs a terminal the service knows",
                )
            } else {
                err(
                    ErrorCode::MethodNotAllowed,
                    "none of the terminal's methods is allowed for it",
                )
            });
        }
        let now = self.clock.now_ms();
        let issued_at = UtcTime::from_unix(now.div_euclid(1000));
        let expires_at = issued_at.plus(self.challenge_ttl_secs);
        let session_id = random_b64(16)?;
        let mut nonce = [0u8; 32];
        getrandom::fill(&mut nonce).map_err(|_| err(ErrorCode::Internal, "no randomness"))?;
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
            expires_at: expires_at.unix() * 1000,
            used_at: None,
            proof_sha256: None,
            outcome: None,
            bound_terminal_id: client.map(str::to_owned),
        };
        self.store
            .insert_challenge(&record)
            .await
            .map_err(|e| store_failure(&e))?;
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
            terminal_id = %proof.intent().terminal_id,
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
        // Protocol §9, in order; the first failure answers.
        let challenge = self
            .store
            .challenge(session_id)
            .await
            .map_err(|e| store_failure(&e))?
            .filter(|c| op_of(&c.purpose) == Some(op) && reachable_by(c, client))
            .ok_or_else(|| {
                err(
                    ErrorCode::SessionNotFound,
                    "no such session for this operation",
                )
            })?;
        if let Some(client) = client
            && proof_terminals(proof).any(|t| t != client)
        {
            return Err(terminal_mismatch());
        }
        if challenge.used_at.is_some() {
            return self.earlier_answer(&challenge, &replay).await;
        }
        if intent.session_id != challenge.session_id
            || intent.nonce.to_base64url() != challenge.nonce
        {
            return Err(err(
                ErrorCode::NonceReplay,
                "the intent was made for another session",
            ));
        }
        let cert_der = proof.auth_cert();
        if intent.op != op
            || intent.terminal_id != challenge.terminal_id
            || intent.cert_sha256 != Sha256Digest::of(cert_der)
        {
            return Err(err(
                ErrorCode::IntentMismatch,
                "the intent does not match the session",
            ));
        }
        let now = self.clock.now_ms();
        if now >= challenge.expires_at {
            return Err(err(ErrorCode::SessionExpired, "the challenge has expired"));
        }
        if intent.consent_sha256.to_base64url() != challenge.consent_sha256
            || intent.consent_sha256 != self.consent_ref.sha256
        {
            return Err(err(
                ErrorCode::ConsentMismatch,
                "the consent hash is not the current document's",
            ));
        }
        let method = proof.method();
        let terminal = self.terminals.get(&intent.terminal_id);
        if !challenge
            .methods
            .split(',')
            .any(|m| m == method_name(method))
        {
            return Err(if method == Method::AccreditedFace && terminal.is_none() {
                err(
                    ErrorCode::TerminalUnknown,
                    "the terminal is not known to the service",
                )
            } else {
                err(
                    ErrorCode::MethodNotAllowed,
                    "the method was not accepted for this session",
                )
            });
        }
        if let Proof::AccreditedFace {
            face_evidence,
            attestation,
            ..
        } = proof
        {
            let terminal = terminal.ok_or_else(|| {
                err(
                    ErrorCode::TerminalUnknown,
                    "the terminal is not known to the service",
                )
            })?;
            if !terminal.may_use_face() {
                return Err(err(
                    ErrorCode::MethodNotAllowed,
                    "the terminal is not approved for face matching",
                ));
            }
            self.verifier
                .verify_face(terminal, face_evidence, attestation)
                .map_err(|e| err(e.code(), e.message()))?;
        }
        let cert = self.verifier.check_certificate(cert_der, now / 1000);
        // Possession: a PIN proof's signature must verify before the session is consumed, so
        // that a forged proof cannot use up someone's session. (A face proof's card signatures
        // were checked above.)
        let possession = match proof {
            Proof::PinSignature { signature, .. } => {
                intent.signed_digest_info().ok().is_some_and(|d| {
                    self.verifier
                        .verify_card_signature(cert_der, &d, signature.as_slice())
                        .is_ok()
                })
            }
            Proof::AccreditedFace { .. } => true,
            _ => false,
        };
        let cert_failure = match &cert {
            Ok(_) => None,
            Err(CertFailure::Untrusted) => Some(err(
                ErrorCode::CertUntrusted,
                "the certificate does not chain to a trusted root",
            )),
            Err(CertFailure::WrongType) => Some(err(
                ErrorCode::CertWrongType,
                "an authentication certificate is required",
            )),
            Err(CertFailure::Revoked(reason)) => {
                Some(err(ErrorCode::CertRevoked, "the certificate is revoked").with_reason(*reason))
            }
            Err(CertFailure::NotYetValid) => Some(err(
                ErrorCode::CertExpired,
                "the certificate is not yet valid",
            )),
            Err(CertFailure::RevocationUnavailable) => {
                // Not stored: the same proof may succeed once revocation data is back.
                return Err(err(
                    ErrorCode::UpstreamJlis,
                    "revocation status unavailable",
                ));
            }
        };
        if !possession {
            return Err(cert_failure
                .unwrap_or_else(|| err(ErrorCode::SigInvalid, "the signature does not verify")));
        }
        // From here on the outcome is stored with the session and answered again to a retry.
        let (effect, failure) = match (&cert, cert_failure) {
            (Ok(cert), None) => match self.plan(op, cert, &challenge, method, now).await? {
                Plan::Apply(effect) => (effect, None),
                Plan::Fail(body) => (Effect::None, Some(body)),
                Plan::Wait(upstream) if respond_async => (
                    Effect::Pending(PendingRecord {
                        session_id: challenge.session_id.clone(),
                        token_sha256: token.sha256().to_base64url(),
                        waiting_on: upstream.as_str().to_owned(),
                        card: cert.card.clone(),
                        cert_sha256: cert.cert_sha256.to_base64url(),
                        not_after: cert.not_after,
                        terminal_id: challenge.terminal_id.clone(),
                        method: method_name(method).to_owned(),
                        consent_version: challenge.consent_version.clone(),
                        attempts: 0,
                        accepted_at: now,
                        next_attempt_at: now.saturating_add(self.pending.first_retry_ms()),
                        deadline: now.saturating_add(self.pending.deadline_ms()),
                    }),
                    None,
                ),
                // Protocol 1.0: nothing committed, the terminal resends later.
                Plan::Wait(upstream) => return Err(upstream.unavailable()),
            },
            (_, failure) => (Effect::None, failure),
        };
        let session = challenge.session_id.clone();
        let checked_at = UtcTime::from_unix(now.div_euclid(1000));
        let grace = match &cert {
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
        match settled {
            Settled::Fresh {
                applied: Applied::Pending,
                ..
            } => {
                tracing::info!(
                    session_id = %session,
                    terminal_id = %challenge.terminal_id,
                    "registration pending: an upstream did not answer in time"
                );
                #[cfg(feature = "fault-injection")]
                self.exit_after_commit();
                let status = PendingStatus {
                    token_sha256: token.sha256().to_base64url(),
                    done: false,
                    waiting_on: String::new(),
                    accepted_at: now,
                    deadline: now.saturating_add(self.pending.deadline_ms()),
                };
                Ok(self.pending_answer(202, &session, &token, &status))
            }
            Settled::Fresh { outcome, applied } => {
                #[cfg(feature = "fault-injection")]
                self.exit_after_commit();
                let stored: StoredOutcome = serde_json::from_str(&outcome)
                    .map_err(|_| err(ErrorCode::Internal, "stored answer unreadable"))?;
                let linkage = match applied {
                    Applied::Registered(row)
                    | Applied::AlreadyRegistered(row)
                    | Applied::Relinked(row)
                    | Applied::Found {
                        registration: row, ..
                    } => Some(row.linkage_code),
                    _ => None,
                };
                self.render(stored, linkage).await
            }
            Settled::Earlier(earlier) => self.earlier_answer(&earlier, &replay).await,
        }
    }

    /// The answer to a proof for a challenge that is already used (or, for a registration that
    /// just went pending, the `202`).
    async fn earlier_answer(
        &self,
        challenge: &ChallengeRecord,
        replay: &Replay<'_>,
    ) -> Result<Answer, ErrorBody> {
        if challenge.proof_sha256.as_deref() != Some(replay.proof_hash) {
            return Err(err(
                ErrorCode::NonceReplay,
                "the session was already used by another proof",
            ));
        }
        let Some(outcome) = &challenge.outcome else {
            // Claimed and committed together, so this cannot happen; answer as a replay.
            return Err(err(ErrorCode::NonceReplay, "the session was already used"));
        };
        let stored: StoredOutcome = serde_json::from_str(outcome)
            .map_err(|_| err(ErrorCode::Internal, "stored answer unreadable"))?;
        if let StoredOutcome::Pending = stored {
            let status = self
                .store
                .pending_status(&challenge.session_id)
                .await
                .map_err(|e| store_failure(&e))?
                .ok_or_else(|| err(ErrorCode::Internal, "pending registration not found"))?;
            return Ok(if replay.respond_async {
                self.pending_answer(202, &challenge.session_id, replay.token, &status)
            } else {
                // A terminal of protocol 1.0: it backs off and resends, and gets the result
                // once there is one (protocol §16.5).
                Answer::error(
                    Upstream::from_name(&status.waiting_on)
                        .unavailable()
                        .with_retry_after(self.pending.poll_after_secs()),
                )
            });
        }
        self.render(stored, None).await
    }

    /// The status document of a pending registration.
    fn pending_answer(
        &self,
        status_code: u16,
        session_id: &str,
        token: &PollToken,
        status: &PendingStatus,
    ) -> Answer {
        let retry_after = self.pending.poll_after_secs();
        let document = RegistrationPending {
            v: V1,
            session_id: session_id.to_owned(),
            status: PendingState::Pending,
            accepted_at: utc_ms(status.accepted_at),
            deadline: utc_ms(status.deadline),
            poll: PollInfo {
                url: paths::registration_status(session_id),
                token: *token,
                retry_after,
            },
        };
        let mut answer = Answer::json(status_code, &document);
        answer.retry_after = Some(retry_after);
        answer
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
        let not_found = || {
            err(
                ErrorCode::SessionNotFound,
                "no registration status for this session and token",
            )
        };
        if !is_valid_identifier(session_id) {
            return Err(not_found());
        }
        let token = authorization
            .and_then(PollToken::from_bearer)
            .ok_or_else(not_found)?;
        let status = self
            .store
            .pending_status(session_id)
            .await
            .map_err(|e| store_failure(&e))?
            .ok_or_else(not_found)?;
        if !same_bytes(
            token.sha256().to_base64url().as_bytes(),
            status.token_sha256.as_bytes(),
        ) {
            return Err(not_found());
        }
        let challenge = self
            .store
            .challenge(session_id)
            .await
            .map_err(|e| store_failure(&e))?
            .filter(|c| {
                op_of(&c.purpose) == Some(Operation::RegisterInsuranceUse)
                    && reachable_by(c, client)
            })
            .ok_or_else(not_found)?;
        self.rate_limit(&challenge.terminal_id)?;
        let stored: StoredOutcome = challenge
            .outcome
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .ok_or_else(|| err(ErrorCode::Internal, "stored answer unreadable"))?;
        match stored {
            StoredOutcome::Pending => Ok(self.pending_answer(200, session_id, &token, &status)),
            StoredOutcome::Error(error) => Ok(Answer::json(
                200,
                &RegistrationFailed {
                    v: V1,
                    session_id: session_id.to_owned(),
                    status: FailedState::Failed,
                    error,
                },
            )),
            // A failure here is the service's own (E_INTERNAL): the poller tries again.
            finished @ StoredOutcome::Registration(_) => self.render(finished, None).await,
            _ => Err(not_found()),
        }
    }

    /// Turns a stored outcome into the HTTP answer, looking the personal fields up again.
    async fn render(
        &self,
        stored: StoredOutcome,
        linkage: Option<String>,
    ) -> Result<Answer, ErrorBody> {
        // The linkage code of the registration: known when this request applied the effect,
        // read again for a retried proof.
        let linkage_of = |registration_id: String| async move {
            match linkage {
                Some(code) => Ok(Some(code)),
                None => self
                    .store
                    .registration_by_id(&registration_id)
                    .await
                    .map(|row| row.map(|r| r.linkage_code))
                    .map_err(|e| store_failure(&e)),
            }
        };
        match stored {
            StoredOutcome::Error(body) => Ok(Answer::error(body)),
            StoredOutcome::Pending => Err(err(
                ErrorCode::Internal,
                "a pending registration has no answer yet",
            )),
            StoredOutcome::Deregistration(result) => Ok(Answer::json(200, &result)),
            StoredOutcome::Registration(mut result) => {
                if let Some(code) = linkage_of(result.registration_id.clone()).await?
                    && let Ok(InsuranceLookup::Found(record)) =
                        self.ask(self.insurance.lookup(&LinkageCode(code))).await
                {
                    result.insurer_name = Some(record.insurer_name);
                }
                Ok(Answer::json(200, &result))
            }
            StoredOutcome::Eligible {
                session_id,
                registration_id,
                grace,
                relinked,
                checked_at,
            } => {
                let code = linkage_of(registration_id.clone()).await?.ok_or_else(|| {
                    err(ErrorCode::NotRegistered, "the registration was withdrawn")
                })?;
                let record = match self.ask(self.insurance.lookup(&LinkageCode(code))).await {
                    Ok(InsuranceLookup::Found(record)) => record,
                    Ok(InsuranceLookup::NoRecord) => {
                        return Err(err(ErrorCode::NoInsuranceRecord, "no insurance record"));
                    }
                    Ok(InsuranceLookup::Multiple) => {
                        return Err(err(
                            ErrorCode::MultipleMatch,
                            "more than one insurance record",
                        ));
                    }
                    Err(_) => {
                        return Err(err(
                            ErrorCode::UpstreamSsk,
                            "insurance upstream unavailable",
                        ));
                    }
                };
                Ok(Answer::json(
                    200,
                    &EligibilityResult {
                        v: V1,
                        session_id,
                        status: EligibilityStatus::Eligible,
                        qualification_validity: 1,
                        grace,
                        relinked,
                        registration_id,
                        insurance: wire_insurance(record),
                        checked_at,
                    },
                ))
            }
        }
    }

    /// Decides what registering a card means, from the upstreams: a new registration, an
    /// existing one, a relink, a definite refusal, or [`Plan::Wait`] when an upstream does not
    /// answer within the upstream timeout. Used for a proof and again by the pending worker.
    pub(crate) async fn plan_registration(
        &self,
        card: &CardKey,
        cert_sha256: &str,
        terminal_id: &str,
        consent_version: &str,
        method: &str,
        now: i64,
    ) -> Result<Plan, ErrorBody> {
        let existing = self
            .store
            .registration(card)
            .await
            .map_err(|e| store_failure(&e))?;
        let linkage = match existing {
            Some(row) => LinkageCode(row.linkage_code),
            None => match self.ask(self.identity.resolve(card)).await {
                Ok(PersonLookup::Found(code)) => code,
                Ok(PersonLookup::NotFound) => {
                    return Ok(Plan::Fail(err(
                        ErrorCode::PersonNotFound,
                        "the identity upstream does not know this certificate",
                    )));
                }
                Ok(PersonLookup::Restricted) => {
                    return Ok(Plan::Fail(err(
                        ErrorCode::RegistrationRestricted,
                        "registration is restricted for this person",
                    )));
                }
                Err(Unanswered) => return Ok(Plan::Wait(Upstream::Identity)),
            },
        };
        match self.ask(self.insurance.lookup(&linkage)).await {
            Ok(InsuranceLookup::Found(_)) => {}
            Ok(InsuranceLookup::NoRecord) => {
                return Ok(Plan::Fail(err(
                    ErrorCode::NoInsuranceRecord,
                    "the insurer has not registered the person yet",
                )));
            }
            Ok(InsuranceLookup::Multiple) => {
                return Ok(Plan::Fail(err(
                    ErrorCode::MultipleMatch,
                    "more than one insurance record matched",
                )));
            }
            Err(Unanswered) => return Ok(Plan::Wait(Upstream::Insurance)),
        }
        let Ok(relink_from) = self.ask(self.identity.previous_certificates(card)).await else {
            return Ok(Plan::Wait(Upstream::Identity));
        };
        let Ok(linked) = self.ask(self.identity.linked_certificates(card)).await else {
            return Ok(Plan::Wait(Upstream::Identity));
        };
        Ok(Plan::Apply(Effect::Register {
            linked,
            registration: RegistrationRecord {
                registration_id: format!("reg_{}", random_b64(12)?),
                card: card.clone(),
                cert_sha256: cert_sha256.to_owned(),
                linkage_code: linkage.0,
                terminal_id: terminal_id.to_owned(),
                method: method.to_owned(),
                consent_version: consent_version.to_owned(),
                registered_at: now,
                relinked_at: None,
            },
            relink_from,
        }))
    }

    /// One upstream call, cut short after the upstream timeout: a call that does not answer in
    /// time is treated as the upstream being unavailable.
    pub(crate) async fn ask<T>(
        &self,
        call: impl core::future::Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, Unanswered> {
        match tokio::time::timeout(self.upstream_timeout, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) | Err(_) => Err(Unanswered),
        }
    }

    /// Decides the effect of a verified proof: upstream lookups happen here, outside the
    /// transaction.
    async fn plan(
        &self,
        op: Operation,
        cert: &CheckedCert,
        challenge: &ChallengeRecord,
        method: Method,
        now: i64,
    ) -> Result<Plan, ErrorBody> {
        let now_s = now / 1000;
        match op {
            Operation::RegisterInsuranceUse => {
                if cert.not_after < now_s {
                    return Ok(Plan::Fail(err(
                        ErrorCode::CertExpired,
                        "the certificate has expired; renew it before registering",
                    )));
                }
                self.plan_registration(
                    &cert.card,
                    &cert.cert_sha256.to_base64url(),
                    &challenge.terminal_id,
                    &challenge.consent_version,
                    method_name(method),
                    now,
                )
                .await
            }
            Operation::CheckEligibility => {
                let expired = cert.not_after < now_s;
                // Smartphone certificates get no grace period (domain facts §1.6). Which one
                // this is, the identity upstream's link information tells; it is asked only
                // once the certificate has expired. The person's registration is left alone:
                // their card still reaches it.
                if expired {
                    match self.ask(self.identity.certificate_form(&cert.card)).await {
                        Ok(CertificateForm::Smartphone) => {
                            return Ok(Plan::Fail(err(
                                ErrorCode::CertExpired,
                                "the smartphone certificate has expired; smartphone \
                                 certificates have no grace period",
                            )));
                        }
                        Ok(_) => {}
                        Err(_) => {
                            return Err(err(
                                ErrorCode::UpstreamJlis,
                                "identity upstream unavailable",
                            ));
                        }
                    }
                }
                let lapse = expired && now_s > grace_end_unix(cert.not_after);
                let registered = self
                    .store
                    .registration(&cert.card)
                    .await
                    .map_err(|e| store_failure(&e))?;
                // Old-serial search only when this certificate is not registered itself.
                let (relink_from, linked) = match registered {
                    // Its own registration, nothing to cancel: a pure read, settled by claiming
                    // the challenge alone.
                    Some(registration) if !lapse => {
                        return Ok(Plan::Apply(Effect::Read(Applied::Found {
                            registration,
                            relinked: false,
                        })));
                    }
                    Some(_) => (Vec::new(), Vec::new()),
                    None => {
                        let upstream = |_| Upstream::Identity.unavailable();
                        let relink_from = self
                            .ask(self.identity.previous_certificates(&cert.card))
                            .await
                            .map_err(upstream)?;
                        let linked = self
                            .ask(self.identity.linked_certificates(&cert.card))
                            .await
                            .map_err(upstream)?;
                        if relink_from.is_empty() && linked.is_empty() {
                            // No earlier or sibling certificate that could hold the registration.
                            return Ok(Plan::Apply(Effect::Read(Applied::NotRegistered)));
                        }
                        (relink_from, linked)
                    }
                };
                Ok(Plan::Apply(Effect::Eligibility {
                    linked,
                    card: cert.card.clone(),
                    cert_sha256: cert.cert_sha256.to_base64url(),
                    relink_from,
                    lapse,
                }))
            }
            Operation::DeregisterInsuranceUse => {
                if cert.not_after < now_s {
                    return Ok(Plan::Fail(err(
                        ErrorCode::CertExpired,
                        "the certificate has expired",
                    )));
                }
                Ok(Plan::Apply(Effect::Deregister {
                    card: cert.card.clone(),
                }))
            }
        }
    }
}

/// What a verified proof leads to.
pub(crate) enum Plan {
    /// Apply this effect.
    Apply(Effect),
    /// Refuse with this answer (stored with the session).
    Fail(ErrorBody),
    /// An upstream did not answer: a registration may wait for it (protocol §16).
    Wait(Upstream),
}

/// An upstream call that failed or did not answer in time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unanswered;

/// Which upstream a registration waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upstream {
    /// The identity upstream (J-LIS role).
    Identity,
    /// The insurance upstream (fee-fund role).
    Insurance,
}

impl Upstream {
    /// The name kept in the database and logs.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Upstream::Identity => "identity",
            Upstream::Insurance => "insurance",
        }
    }

    pub(crate) fn from_name(name: &str) -> Upstream {
        if name == "insurance" {
            Upstream::Insurance
        } else {
            Upstream::Identity
        }
    }

    /// The protocol 1.0 answer: unavailable, retry with backoff.
    pub(crate) fn unavailable(self) -> ErrorBody {
        match self {
            Upstream::Identity => err(ErrorCode::UpstreamJlis, "identity upstream unavailable"),
            Upstream::Insurance => err(ErrorCode::UpstreamSsk, "insurance upstream unavailable"),
        }
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::PinSignature => "pin_signature",
        Method::AccreditedFace => "accredited_face",
        _ => "other",
    }
}

fn wire_insurance(r: InsuranceRecord) -> WireInsurance {
    WireInsurance {
        insurer_number: r.insurer_number,
        insurer_name: r.insurer_name,
        symbol: r.symbol,
        number: r.number,
        branch: r.branch,
    }
}

fn utc_ms(ms: i64) -> UtcTime {
    UtcTime::from_unix(ms.div_euclid(1000))
}

fn stored_outcome(
    op: Operation,
    session_id: &str,
    failure: Option<ErrorBody>,
    applied: &Applied,
    checked_at: UtcTime,
    grace: bool,
) -> StoredOutcome {
    if let Some(body) = failure {
        return StoredOutcome::Error(body);
    }
    let registration = |status, row: &RegistrationRecord| {
        StoredOutcome::Registration(RegistrationResult {
            v: V1,
            session_id: session_id.to_owned(),
            status,
            registration_id: row.registration_id.clone(),
            insurer_name: None,
            consent_version: row.consent_version.clone(),
            registered_at: utc_ms(row.registered_at),
        })
    };
    match (op, applied) {
        (_, Applied::Registered(row)) => registration(RegistrationStatus::Registered, row),
        (_, Applied::AlreadyRegistered(row)) => {
            registration(RegistrationStatus::AlreadyRegistered, row)
        }
        (_, Applied::Relinked(row)) => registration(RegistrationStatus::Relinked, row),
        (
            _,
            Applied::Found {
                registration,
                relinked,
            },
        ) => StoredOutcome::Eligible {
            session_id: session_id.to_owned(),
            registration_id: registration.registration_id.clone(),
            grace,
            relinked: *relinked,
            checked_at,
        },
        (_, Applied::Lapsed(_)) => StoredOutcome::Error(err(
            ErrorCode::RegLapsed,
            "the certificate expired and the grace period is over; the registration was cancelled",
        )),
        (_, Applied::Deregistered(row)) => StoredOutcome::Deregistration(DeregistrationResult {
            v: V1,
            session_id: session_id.to_owned(),
            status: DeregistrationStatus::Deregistered,
            registration_id: row.registration_id.clone(),
            deregistered_at: checked_at,
        }),
        (_, Applied::NotRegistered) => StoredOutcome::Error(err(
            ErrorCode::NotRegistered,
            "the card is not registered for insurance use",
        )),
        (_, Applied::Nothing) => {
            StoredOutcome::Error(err(ErrorCode::Internal, "no effect was applied"))
        }
        (_, Applied::Pending) => StoredOutcome::Pending,
    }
}

/// What an earlier or a fresh submission of a proof needs for the answer.
struct Replay<'a> {
    proof_hash: &'a str,
    token: &'a PollToken,
    respond_async: bool,
}

/// Compares without stopping at the first difference (a poll token's hash).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The answer stored when a pending registration ends: the result, or `failure`.
pub(crate) fn pending_outcome(
    session_id: &str,
    failure: Option<ErrorBody>,
    applied: &Applied,
    at: i64,
) -> String {
    let stored = stored_outcome(
        Operation::RegisterInsuranceUse,
        session_id,
        failure,
        applied,
        utc_ms(at),
        false,
    );
    serde_json::to_string(&stored).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
