//! Deciding what a checked proof writes: the upstream lookups (identity, insurance), outside
//! the transaction, and the effect the store then applies in one.

use mynacard_protocol::errors::{ErrorBody, ErrorCode};
use mynacard_protocol::messages::{Method, Operation, PollToken};

use super::checks::CheckedProof;
use super::{Registry, err, grace_end_unix, method_name, random_b64, store_failure};
use crate::store::{Applied, CardKey, ChallengeRecord, Effect, PendingRecord, RegistrationRecord};
use crate::upstream::{CertificateForm, InsuranceLookup, LinkageCode, PersonLookup, UpstreamError};
use crate::verify::CheckedCert;

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

impl Registry {
    /// What a checked proof writes: the effect to apply (after the upstream lookups, outside
    /// the transaction) and the refusal stored with the session, if any. A registration whose
    /// upstream does not answer in time waits (`respond_async`) or, for a terminal of protocol
    /// 1.0, is answered unavailable with nothing committed.
    pub(super) async fn decide(
        &self,
        op: Operation,
        checked: &CheckedProof,
        cert_failure: Option<ErrorBody>,
        token: &PollToken,
        respond_async: bool,
    ) -> Result<(Effect, Option<ErrorBody>), ErrorBody> {
        let CheckedProof {
            challenge,
            method,
            now,
            cert,
        } = checked;
        let (method, now) = (*method, *now);
        Ok(match (cert, cert_failure) {
            (Ok(cert), None) => match self.plan(op, cert, challenge, method, now).await? {
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
        })
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
    pub(super) async fn plan(
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
