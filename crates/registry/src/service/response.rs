//! Building the answers: the first answer to a proof as stored with its session (no personal
//! data), rendered again for a retry with the insurance fields looked up afresh; the pending
//! status documents (protocol §16).

use mynacard_protocol::errors::{ErrorBody, ErrorCode};
use mynacard_protocol::messages::{
    DeregistrationResult, DeregistrationStatus, EligibilityResult, EligibilityStatus, FailedState,
    InsuranceRecord as WireInsurance, Operation, PendingState, PollInfo, PollToken,
    RegistrationFailed, RegistrationPending, RegistrationResult, RegistrationStatus, paths,
};
use mynacard_protocol::wire::{UtcTime, V1};
use serde::{Deserialize, Serialize};

use super::{Registry, Upstream, err, store_failure, utc_ms};
use crate::store::{Applied, ChallengeRecord, PendingStatus, RegistrationRecord, Settled};
use crate::upstream::{InsuranceLookup, InsuranceRecord, LinkageCode};

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
    pub(super) fn json<T: Serialize>(status: u16, value: &T) -> Answer {
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

/// The first answer to a proof, as stored with the challenge. It holds no personal data: the
/// insurance fields are looked up again when a retry asks for the answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum StoredOutcome {
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

/// What an earlier or a fresh submission of a proof needs for the answer.
pub(super) struct Replay<'a> {
    pub(super) proof_hash: &'a str,
    pub(super) token: &'a PollToken,
    pub(super) respond_async: bool,
}

impl Registry {
    /// The answer to a fresh or earlier settlement of a proof: the `202` of a registration
    /// that went pending, the stored outcome rendered, or the earlier submission's answer.
    pub(super) async fn settled_answer(
        &self,
        settled: Settled,
        challenge: &ChallengeRecord,
        now: i64,
        replay: &Replay<'_>,
    ) -> Result<Answer, ErrorBody> {
        let (session, token) = (&challenge.session_id, replay.token);
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
                Ok(self.pending_answer(202, session, token, &status))
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
            Settled::Earlier(earlier) => self.earlier_answer(&earlier, replay).await,
        }
    }

    /// The answer to a proof for a challenge that is already used (or, for a registration that
    /// just went pending, the `202`).
    pub(super) async fn earlier_answer(
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

    /// The status document of a checked poll: pending, failed or finished.
    pub(super) async fn status_answer(
        &self,
        session_id: &str,
        token: &PollToken,
        status: &PendingStatus,
        challenge: &ChallengeRecord,
    ) -> Result<Answer, ErrorBody> {
        let not_found = || {
            err(
                ErrorCode::SessionNotFound,
                "no registration status for this session and token",
            )
        };
        let stored: StoredOutcome = challenge
            .outcome
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok())
            .ok_or_else(|| err(ErrorCode::Internal, "stored answer unreadable"))?;
        match stored {
            StoredOutcome::Pending => Ok(self.pending_answer(200, session_id, token, status)),
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

pub(super) fn stored_outcome(
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
