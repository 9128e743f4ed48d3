//! A thin async driver: runs a [`Machine`] over a [`CardChannel`], a [`ServiceClient`] and a
//! [`Terminal`] (the screen, PIN pad, camera and attestation key). It adds no card logic of its
//! own: every APDU comes from the machine.
//!
//! It needs no particular async runtime; the HTTP binding ([`crate::http`]) runs on tokio.

use async_trait::async_trait;
use mynacard_transport::{CardChannel, TransportError};
use zeroize::Zeroizing;

use crate::machine::{
    Action, CardFailure, ConsentPrompt, HttpFailure, HttpRequest, HttpResponse, Machine,
    MachineError,
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

/// Runs `machine` to its end.
///
/// A PIN or 照合番号B of the wrong form is asked again (nothing reached the card). Every other
/// refusal by the machine is a programming error and ends the run with [`DriverError`].
///
/// # Errors
/// [`DriverError`].
pub async fn run<C, S, T>(
    mut machine: Machine,
    channel: &mut C,
    service: &S,
    terminal: &mut T,
) -> Result<RunReport, DriverError>
where
    C: CardChannel + ?Sized,
    S: ServiceClient + ?Sized,
    T: Terminal + ?Sized,
{
    let mut report = RunReport {
        outcome: Outcome::Cancelled,
        apdus: 0,
        bytes_sent: 0,
        bytes_received: 0,
        http_requests: 0,
    };
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
                Some(pin) => match machine.feed_pin(pin) {
                    Err(MachineError::PinFormat) => continue,
                    other => other?,
                },
                None => machine.cancel()?,
            },
            Action::AskCollationNumberB { retries_left } => {
                match terminal.collation_number_b(retries_left).await {
                    Some(b) => match machine.feed_collation_number_b(b) {
                        Err(MachineError::CollationNumberFormat) => continue,
                        other => other?,
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
                report.http_requests += 1;
                match service.send(&request).await {
                    Ok(response) => machine.feed_http_response(response)?,
                    Err(failure) => machine.feed_http_failure(failure)?,
                }
            }
            Action::Done(outcome) => {
                report.outcome = outcome;
                return Ok(report);
            }
        }
    }
}
