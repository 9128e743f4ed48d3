//! A thin async driver: runs a [`Machine`] over a [`CardChannel`], a [`ServiceClient`] and a
//! [`Terminal`] (the screen, PIN pad, camera and attestation key). It adds no card logic of its
//! own: every APDU comes from the machine.
//!
//! It needs no particular async runtime; the HTTP binding ([`crate::http`]) runs on tokio.
//!
//! A registration the service finishes in the background (protocol §16) is polled with the
//! pause the service asks for, through [`ServiceClient::send`] and the request's `delay_ms`,
//! for as long as [`Wait`] allows; [`poll`] takes up a registration a terminal stopped waiting
//! for.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use mynacard_card::{CollationB, Pin};
use mynacard_transport::{CardChannel, TransportError};
use zeroize::Zeroizing;

use crate::machine::{
    Action, CardFailure, ConsentPrompt, HttpFailure, HttpRequest, HttpResponse, Machine,
    MachineError, PollStep,
};
use crate::messages::FaceMatch;
use crate::outcome::Outcome;

/// Sends the machine's requests to the service.
#[async_trait]
pub trait ServiceClient: Send + Sync {
    /// Waits `request.delay_ms`, sends the request and returns the answer.
    ///
    /// # Errors
    /// [`HttpFailure`] when no answer came.
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure>;
}

/// The person-facing side of a terminal.
#[async_trait]
pub trait Terminal: Send {
    /// Shows the consent; returns whether the person agreed.
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool;

    /// Asks the auth PIN on the terminal's PIN pad; `None` when the person cancels.
    async fn pin(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>>;

    /// Reads 照合番号B from the card face; `None` when it cannot.
    async fn collation_number_b(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        let _ = retries_left;
        None
    }

    /// Matches the live face against the card photo; `None` when the terminal has no camera.
    async fn match_face(&mut self, photo: &[u8]) -> Option<FaceMatch> {
        let _ = photo;
        None
    }

    /// Signs face evidence with the terminal's attestation key (ES256, 64 bytes); `None` when
    /// the terminal has none.
    async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        let _ = message;
        None
    }
}

/// What a run did: its outcome and the card traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// How the flow ended.
    pub outcome: Outcome,
    /// Command APDUs sent (GET RESPONSE included).
    pub apdus: u32,
    /// Command bytes sent.
    pub bytes_sent: u64,
    /// Response bytes received.
    pub bytes_received: u64,
    /// HTTP requests sent (resends included).
    pub http_requests: u32,
    /// The service's session of the run, once its challenge came: with an outcome that is
    /// unknown (a proof sent and never answered) it names what to ask about.
    pub session_id: Option<String>,
}

/// The driver could not go on: the machine refused what the terminal gave it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The machine refused an input.
    #[error("the flow refused an input")]
    Machine(#[from] MachineError),
}

fn card_failure(e: &TransportError) -> CardFailure {
    match e {
        TransportError::CardRemoved | TransportError::NoCard => CardFailure::Removed,
        TransportError::CardReset => CardFailure::Reset,
        _ => CardFailure::Transport,
    }
}

/// How long a run waits for a registration the service accepted with `202` and finishes in the
/// background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wait {
    /// Not at all: the run ends with [`Outcome::Pending`] at the `202`.
    No,
    /// Until this instant: a poll that would be sent later is not sent, and the run ends with
    /// [`Outcome::Pending`].
    Until(Instant),
    /// For as long as the service may take: until its deadline for the registration, plus a
    /// margin for its last attempt.
    ForService,
}

impl Wait {
    /// Waiting for at most `limit` from now.
    pub fn at_most(limit: Duration) -> Wait {
        match Instant::now().checked_add(limit) {
            Some(until) => Wait::Until(until),
            None => Wait::ForService,
        }
    }
}

fn empty_report() -> RunReport {
    RunReport {
        outcome: Outcome::Cancelled,
        apdus: 0,
        bytes_sent: 0,
        bytes_received: 0,
        http_requests: 0,
        session_id: None,
    }
}

/// What the driver saw of a flow's proof sends, to tell an outcome that is unknown (a proof
/// left on a connection that then broke) from one that is not (no proof ever left).
#[derive(Debug, Default)]
struct ProofSends {
    /// A proof was sent and its connection broke or timed out before the answer.
    unanswered: bool,
}

impl ProofSends {
    /// Sends `request` and feeds the answer or the failure to `machine`.
    async fn send<S>(
        &mut self,
        machine: &mut Machine,
        request: &HttpRequest,
        service: &S,
        report: &mut RunReport,
    ) -> Result<(), DriverError>
    where
        S: ServiceClient + ?Sized,
    {
        report.http_requests += 1;
        match service.send(request).await {
            Ok(response) => machine.feed_http_response(response)?,
            Err(failure) => {
                // Every proof endpoint ends in `/proof` (protocol §4).
                if failure == HttpFailure::Interrupted && request.path.ends_with("/proof") {
                    self.unanswered = true;
                }
                machine.feed_http_failure(failure)?;
            }
        }
        Ok(())
    }

    /// The outcome as the run ends: the machine counts any failed proof as one that may have
    /// arrived; when every proof send failed to connect, none did.
    fn settle(&self, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::ServiceUnreachable {
                proof_may_have_arrived: true,
            } if !self.unanswered => Outcome::ServiceUnreachable {
                proof_may_have_arrived: false,
            },
            other => other,
        }
    }
}

/// Sends one poll, or stops waiting when `wait` does not reach the time the poll is due.
///
/// A `first` poll of a registration taken up again ([`poll`]) is sent in any case, brought
/// forward to the end of the wait when that comes sooner: the pause it would keep was asked for
/// by an answer of an earlier run, and a take-up that never asks would learn nothing.
async fn poll_once<S>(
    machine: &mut Machine,
    mut step: PollStep,
    service: &S,
    wait: Wait,
    first: bool,
    report: &mut RunReport,
) -> Result<(), DriverError>
where
    S: ServiceClient + ?Sized,
{
    let now = Instant::now();
    let due = now.checked_add(Duration::from_millis(u64::from(step.request.delay_ms)));
    let in_time = match (wait, due) {
        (Wait::No, _) => false,
        (Wait::ForService, _) => true,
        (Wait::Until(until), Some(due)) => due <= until,
        (Wait::Until(_), None) => false,
    };
    if !in_time && first {
        let left = match wait {
            Wait::Until(until) => until.saturating_duration_since(now),
            _ => Duration::ZERO,
        };
        step.request.delay_ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
    } else if !in_time {
        machine.stop_waiting()?;
        return Ok(());
    }
    report.http_requests += 1;
    match service.send(&step.request).await {
        Ok(response) => machine.feed_http_response(response)?,
        Err(failure) => machine.feed_http_failure(failure)?,
    }
    Ok(())
}

/// Runs `machine` to its end, waiting for a pending registration for as long as the service
/// may take ([`Wait::ForService`]).
///
/// A PIN or 照合番号B of the wrong form is asked again (nothing reached the card). Every other
/// refusal by the machine is a programming error and ends the run with [`DriverError`].
///
/// # Errors
/// [`DriverError`].
pub async fn run<C, S, T>(
    machine: Machine,
    channel: &mut C,
    service: &S,
    terminal: &mut T,
) -> Result<RunReport, DriverError>
where
    C: CardChannel + ?Sized,
    S: ServiceClient + ?Sized,
    T: Terminal + ?Sized,
{
    run_waiting(machine, channel, service, terminal, Wait::ForService).await
}

/// Takes up a registration the terminal stopped waiting for (a machine from
/// [`Machine::poll_registration`]) and polls it as `wait` allows. No card and no person are
/// needed.
///
/// The first poll is sent even when `wait` ends before the pause the status asks for: it is
/// then sent as the wait ends (at once for [`Wait::No`]), so that a take-up always asks.
///
/// # Errors
/// [`DriverError`].
pub async fn poll<S>(
    mut machine: Machine,
    service: &S,
    wait: Wait,
) -> Result<RunReport, DriverError>
where
    S: ServiceClient + ?Sized,
{
    let mut report = empty_report();
    let mut proofs = ProofSends::default();
    let mut polls = 0_u32;
    loop {
        // The challenge is the machine's only while the proof is under way: note its session.
        if report.session_id.is_none() {
            report.session_id = machine.challenge().map(|c| c.session_id.clone());
        }
        match machine.next_action() {
            Action::Poll(step) => {
                poll_once(&mut machine, step, service, wait, polls == 0, &mut report).await?;
                polls += 1;
            }
            Action::SendHttp(request) => {
                proofs
                    .send(&mut machine, &request, service, &mut report)
                    .await?;
            }
            Action::Done(outcome) => {
                report.outcome = proofs.settle(outcome);
                return Ok(report);
            }
            // A poll-only flow never asks for the card or the person.
            _ => machine.cancel()?,
        }
    }
}

/// Runs `machine` to its end like [`run`], waiting for a pending registration as `wait`
/// allows.
///
/// # Errors
/// [`DriverError`].
pub async fn run_waiting<C, S, T>(
    mut machine: Machine,
    channel: &mut C,
    service: &S,
    terminal: &mut T,
    wait: Wait,
) -> Result<RunReport, DriverError>
where
    C: CardChannel + ?Sized,
    S: ServiceClient + ?Sized,
    T: Terminal + ?Sized,
{
    let mut report = empty_report();
    let mut proofs = ProofSends::default();
    // A reset before the flow starts is of no concern; one during it is.
    let _ = channel.was_reset();
    let caps = channel.capabilities();
    if caps.extended_length {
        let chunk = u32::try_from(caps.max_response_data()).unwrap_or(65_536);
        if chunk > 256 {
            machine.set_read_chunk(chunk);
        }
    }
    loop {
        // The challenge is the machine's only while the proof is under way: note its session.
        if report.session_id.is_none() {
            report.session_id = machine.challenge().map(|c| c.session_id.clone());
        }
        match machine.next_action() {
            Action::SendCard(cmd) => {
                if channel.was_reset() {
                    machine.feed_card_failure(CardFailure::Reset)?;
                    continue;
                }
                report.apdus += 1;
                report.bytes_sent += cmd.bytes.len() as u64;
                match channel.transmit(cmd.bytes.as_slice()).await {
                    Ok(response) => {
                        report.bytes_received += response.len() as u64;
                        machine.feed_card_response(&response)?;
                    }
                    Err(e) => machine.feed_card_failure(card_failure(&e))?,
                }
            }
            Action::ShowConsent(prompt) => {
                let agreed = terminal.consent(&prompt).await;
                machine.feed_consent(agreed)?;
            }
            Action::AskPin { retries_left } => match terminal.pin(retries_left).await {
                // A value that is not a PIN goes nowhere: ask again.
                Some(typed) => match Pin::new(&typed) {
                    Ok(pin) => machine.feed_pin(pin)?,
                    Err(_) => continue,
                },
                None => machine.cancel()?,
            },
            Action::AskCollationNumberB { retries_left } => {
                match terminal.collation_number_b(retries_left).await {
                    Some(read) => match CollationB::from_digits(&read) {
                        Ok(b) => machine.feed_collation_number_b(b)?,
                        Err(_) => continue,
                    },
                    None => machine.cancel()?,
                }
            }
            Action::MatchFace { photo } => match terminal.match_face(&photo).await {
                Some(result) => machine.feed_face_match(result)?,
                None => machine.cancel()?,
            },
            Action::SignAttestation { message } => match terminal.attest(&message).await {
                Some(signature) => machine.feed_attestation(signature)?,
                None => machine.cancel()?,
            },
            Action::SendHttp(request) => {
                proofs
                    .send(&mut machine, &request, service, &mut report)
                    .await?;
            }
            Action::Poll(step) => {
                // The service answered the proof with its pending status: no first poll to
                // bring forward.
                poll_once(&mut machine, step, service, wait, false, &mut report).await?;
            }
            Action::Done(outcome) => {
                report.outcome = proofs.settle(outcome);
                return Ok(report);
            }
        }
    }
}
