//! Validating a request and its proof before any work: nothing is written and no upstream is
//! asked until these pass.

use std::time::Instant;

use mynacard_protocol::errors::{ErrorBody, ErrorCode};
use mynacard_protocol::messages::{
    Method, Operation, PollToken, Proof, StartSession, is_valid_identifier,
};

use super::{Registry, err, method_name, store_failure};
use crate::store::{ChallengeRecord, PendingStatus};
use crate::verify::{CertFailure, CheckedCert, HashedDer, Terminal};

/// What the checks of a proof found.
pub(super) enum ProofCheck {
    /// The session was already used: its earlier answer (or a replay refusal) is due.
    Used(ChallengeRecord),
    /// Every check passed up to the certificate; the certificate's failure, if any, is stored
    /// with the session as its answer.
    Checked(CheckedProof, Option<ErrorBody>),
}

/// A proof that passed the checks: its session, method, the time of the checks, and the
/// certificate as checked.
pub(super) struct CheckedProof {
    /// The session the proof is for (not yet used).
    pub(super) challenge: ChallengeRecord,
    /// The proof's method, accepted for the session.
    pub(super) method: Method,
    /// When the checks ran, Unix milliseconds.
    pub(super) now: i64,
    /// The auth certificate, or why it is refused.
    pub(super) cert: Result<CheckedCert, CertFailure>,
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

/// Compares without stopping at the first difference (a poll token's hash).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The protocol error for a refused certificate.
fn cert_error(failure: CertFailure) -> ErrorBody {
    match failure {
        CertFailure::Untrusted => err(
            ErrorCode::CertUntrusted,
            "the certificate does not chain to a trusted root",
        ),
        CertFailure::WrongType => err(
            ErrorCode::CertWrongType,
            "an authentication certificate is required",
        ),
        CertFailure::Revoked(reason) => {
            err(ErrorCode::CertRevoked, "the certificate is revoked").with_reason(reason)
        }
        CertFailure::NotYetValid => err(ErrorCode::CertExpired, "the certificate is not yet valid"),
        CertFailure::RevocationUnavailable => {
            err(ErrorCode::UpstreamJlis, "revocation status unavailable")
        }
    }
}

impl Registry {
    pub(super) fn rate_limit(&self, terminal_id: &str) -> Result<(), ErrorBody> {
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

    /// What a start must show before a challenge is issued: a valid terminal id, the same
    /// terminal as the client certificate (before the rate limit, so that one terminal cannot
    /// spend another's budget), the rate limit; the methods accepted for the terminal, at
    /// least one.
    pub(super) fn check_start(
        &self,
        start: &StartSession,
        client: Option<&str>,
    ) -> Result<Vec<Method>, ErrorBody> {
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
        Ok(accepted)
    }

    /// Protocol §9 for a proof, in order, before anything is written: the session (known, for
    /// this operation, reachable over this connection), the terminals the proof names, the
    /// intent's binding to the session, expiry, the consent hash, the method, the face evidence
    /// and attestation, the certificate, and possession (a PIN proof's signature). The first
    /// failure answers; a session already used is handed back for its earlier answer.
    pub(super) async fn check_proof(
        &self,
        op: Operation,
        session_id: &str,
        proof: &Proof,
        client: Option<&str>,
    ) -> Result<ProofCheck, ErrorBody> {
        let intent = proof.intent();
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
            return Ok(ProofCheck::Used(challenge));
        }
        if intent.session_id != challenge.session_id
            || intent.nonce.to_base64url() != challenge.nonce
        {
            return Err(err(
                ErrorCode::NonceReplay,
                "the intent was made for another session",
            ));
        }
        // Hashed once: compared here, and the key of the trusted-certificate cache below.
        let cert_der = HashedDer::new(proof.auth_cert());
        if intent.op != op
            || intent.terminal_id != challenge.terminal_id
            || intent.cert_sha256 != *cert_der.sha256()
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
        // Trust before work: a certificate that does not chain to a configured root is refused
        // before its key is used, and does not use up the session (anyone can make one).
        let trusted = self
            .verifier
            .trusted_certificate(cert_der, now / 1000)
            .map_err(cert_error)?;
        let cert = self.verifier.check_revocation(&trusted, now / 1000);
        if let Err(CertFailure::RevocationUnavailable) = cert {
            // Not stored: the same proof may succeed once revocation data is back.
            return Err(err(
                ErrorCode::UpstreamJlis,
                "revocation status unavailable",
            ));
        }
        let cert_failure = cert.as_ref().err().map(|f| cert_error(*f));
        // Possession: a PIN proof's signature must verify before the session is consumed, so
        // that a forged proof cannot use up someone's session. (A face proof's card signatures
        // were checked above.)
        let possession = match proof {
            Proof::PinSignature { signature, .. } => {
                intent.signed_digest_info().ok().is_some_and(|d| {
                    self.verifier
                        .verify_card_signature(&trusted, &d, signature.as_slice())
                        .is_ok()
                })
            }
            Proof::AccreditedFace { .. } => true,
            _ => false,
        };
        if !possession {
            return Err(cert_failure
                .unwrap_or_else(|| err(ErrorCode::SigInvalid, "the signature does not verify")));
        }
        Ok(ProofCheck::Checked(
            CheckedProof {
                challenge,
                method,
                now,
                cert,
            },
            cert_failure,
        ))
    }

    /// What a status request must show before its answer (protocol §16.4): a valid session
    /// id, a bearer poll token whose hash is the pending registration's, a registration
    /// session reachable over this connection, within the terminal's rate limit. Every
    /// failure but the rate limit is the same 404.
    pub(super) async fn check_poll(
        &self,
        session_id: &str,
        authorization: Option<&str>,
        client: Option<&str>,
    ) -> Result<(PollToken, PendingStatus, ChallengeRecord), ErrorBody> {
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
        Ok((token, status, challenge))
    }
}
