//! The flows as sans-I/O state machines.
//!
//! A [`Machine`] never talks to a card, a network or a person. It says what to do next
//! ([`Machine::next_action`]) and the caller feeds back what happened (`feed_*`). A phone app
//! drives it with its own NFC and HTTP stacks, a C host through callbacks, the `driver` module
//! with a `CardChannel` and the HTTP binding.
//!
//! ```text
//! loop {
//!     match machine.next_action() {
//!         Action::SendCard(c)        => machine.feed_card_response(&nfc.transmit(c.bytes())?)?,
//!         Action::ShowConsent(p)     => machine.feed_consent(ui.ask(&p.document))?,
//!         Action::AskPin { .. }      => machine.feed_pin(ui.pin_pad())?,
//!         Action::SendHttp(r)        => machine.feed_http_response(http.send(&r)?)?,
//!         Action::Done(outcome)      => break outcome,
//!         …
//!     }
//! }
//! ```
//!
//! Constructors: [`Machine::register_with_pin`] (app, ATM), [`Machine::register_with_face`]
//! (accredited kiosk), [`Machine::check_eligibility_with_pin`],
//! [`Machine::check_eligibility_with_face`] (point of use), [`Machine::deregister`].
//!
//! PIN safety (protocol §7.1): the tries left are read before the PIN is asked; with one try left
//! the machine stops unless [`FlowConfig::allow_last_attempt`]; VERIFY is sent at most once; a
//! link lost during VERIFY ends in [`Outcome::CardRemoved`] with
//! `attempt_may_have_been_counted`; the PIN is held zeroized and dropped right after VERIFY.
//!
//! Files and keys are addressed by short EF identifier (card facts B.3–B.5): READ BINARY
//! `00 B0 (80|SFI)`, VERIFY `00 20 00 (80|SFI)` and COMPUTE DIGITAL SIGNATURE `80 2A 00 97` need
//! no SELECT EF before them, so the PIN registration's card side is five APDUs on a link with
//! extended length. A card that refuses one of these forms with `6A86` (bad P1-P2, refused
//! before any PIN is checked) gets SELECT EF and the current-EF form instead, for the rest of the
//! run. Only the first 256 bytes of a file can be read by identifier: a longer file on a short
//! link is selected after its first chunk and read on by offset.
//!
//! The auth certificate is read first, as a card gives it without the PIN. A smartphone token
//! (`JPKIAPGPSETOKEN`) answers that read with `6982` until the PIN is verified: the PIN flows
//! then go on to the consent, the tries left, the PIN and VERIFY as usual, read the certificate
//! after VERIFY and build the intent from it before signing. A card pays nothing for this.

use std::fmt;
use std::sync::Arc;

use mynacard_apdu::{Command, CommandBytes, Response, StatusWord};
use mynacard_card::catalogue::{self, SignScheme};
use mynacard_card::ops::{
    self, Exchange, Extent, Link, PinStatusRead, PresenceSign, ReadFile, SelectApplication, Sign,
    VerifyOnce, check_attempt,
};
use mynacard_card::visual::SignedFace;
use mynacard_card::{Application, AttemptPolicy, CollationB, Pin, PinKind, PinStatus};
use zeroize::Zeroizing;

use crate::consent::ConsentDocument;
use crate::errors::ErrorBody;
use crate::intent::sha256_digest_info;
use crate::messages::{
    ATTESTATION_ALG_ES256, Challenge, ConsentResponse, DeregistrationResult, EligibilityResult,
    FaceDecision, FaceEvidence, FaceMatch, Intent, Method, Operation, Proof, RegistrationPending,
    RegistrationResult, RegistrationStatus, RegistrationStatusDocument, StartSession,
    TerminalAttestation, TerminalKind, is_valid_identifier, paths,
};
use crate::outcome::Outcome;
use crate::wire::{Bytes, Sha256Digest, UtcTime, V1};

/// The length of an RSA-2048 signature.
const RSA_2048_LEN: usize = 256;
/// How long after the service's deadline for a pending registration the machine still polls:
/// the service fails the registration at its deadline, and its worker may need a moment.
const POLL_AFTER_DEADLINE_SECS: i64 = 60;
/// The shortest pause between two polls, whatever the service says.
const MIN_POLL_SECS: u32 = 1;

/// A clock: the machine needs the time for the intent's `signed_at`.
pub type Clock = Arc<dyn Fn() -> UtcTime + Send + Sync>;

/// Settings of a flow.
#[derive(Clone)]
#[non_exhaustive]
pub struct FlowConfig {
    /// The terminal's id as the service knows it.
    pub terminal_id: String,
    /// The kind of terminal.
    pub terminal_kind: TerminalKind,
    /// The person's language (`ja` or `en`).
    pub locale: String,
    /// Whether VERIFY may spend the last remaining try (default: no).
    pub allow_last_attempt: bool,
    /// READ BINARY chunk size: 256 for short APDUs (default), up to 65536 when the link carries
    /// extended length.
    pub read_chunk: u32,
    /// How often a proof is resent after the connection broke (it is idempotent, protocol §10).
    pub proof_retries: u8,
    /// Delay before the first resend of a proof, doubled for each further one.
    pub proof_retry_delay_ms: u32,
    /// Whether a registration proof asks the service to answer `202` and finish in the
    /// background when an upstream is slow (`Prefer: respond-async`, protocol §16). On by
    /// default; off, a slow upstream is answered `E_UPSTREAM_*` as in protocol 1.0.
    pub accept_pending: bool,
    /// The time source.
    pub clock: Clock,
}

impl FlowConfig {
    /// Defaults for a terminal.
    pub fn new(terminal_id: impl Into<String>, terminal_kind: TerminalKind) -> Self {
        FlowConfig {
            terminal_id: terminal_id.into(),
            terminal_kind,
            locale: "ja".to_owned(),
            allow_last_attempt: false,
            read_chunk: 256,
            proof_retries: 4,
            proof_retry_delay_ms: 500,
            accept_pending: true,
            clock: Arc::new(UtcTime::now),
        }
    }

    /// The same settings with another locale.
    #[must_use]
    pub fn with_locale(mut self, locale: impl Into<String>) -> Self {
        self.locale = locale.into();
        self
    }

    /// The same settings allowing (or not) the last PIN try.
    #[must_use]
    pub fn with_allow_last_attempt(mut self, allow: bool) -> Self {
        self.allow_last_attempt = allow;
        self
    }

    /// The same settings with another clock.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The same settings with another READ BINARY chunk size (1–65536).
    #[must_use]
    pub fn with_read_chunk(mut self, chunk: u32) -> Self {
        self.read_chunk = chunk.clamp(1, 65_536);
        self
    }

    /// The same settings accepting (or not) a pending answer to a registration proof.
    #[must_use]
    pub fn with_accept_pending(mut self, accept: bool) -> Self {
        self.accept_pending = accept;
        self
    }

    /// The same settings with another proof-resend policy.
    #[must_use]
    pub fn with_proof_retries(mut self, retries: u8, first_delay_ms: u32) -> Self {
        self.proof_retries = retries;
        self.proof_retry_delay_ms = first_delay_ms;
        self
    }
}

impl fmt::Debug for FlowConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowConfig")
            .field("terminal_id", &self.terminal_id)
            .field("terminal_kind", &self.terminal_kind)
            .field("locale", &self.locale)
            .field("allow_last_attempt", &self.allow_last_attempt)
            .field("read_chunk", &self.read_chunk)
            .field("proof_retries", &self.proof_retries)
            .field("accept_pending", &self.accept_pending)
            .finish_non_exhaustive()
    }
}

/// A command for the card.
#[derive(Debug, Clone)]
pub struct CardCommand {
    /// The command.
    pub command: Command,
    /// Its encoding (redacted in `Debug` when it carries a PIN).
    pub bytes: CommandBytes,
    /// What it is for, for traces.
    pub purpose: &'static str,
    /// Whether it may spend a PIN or 照合番号 attempt.
    pub spends_attempt: bool,
}

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    Post,
}

/// A request for the service.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Method.
    pub method: HttpMethod,
    /// Path and query, starting with `/v1/`.
    pub path: String,
    /// Request headers beside `Content-Type` and `Accept` (which a client sets for JSON):
    /// `Prefer` on a registration proof, `Authorization` on a poll. Names are lower case.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Option<Vec<u8>>,
    /// Wait this long before sending (resends of a proof, polls).
    pub delay_ms: u32,
    /// Which attempt this is (1 for the first send).
    pub attempt: u8,
}

impl HttpRequest {
    /// The value of header `name` (lower case), if the request has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A poll token is a credential: never in traces.
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                if n.eq_ignore_ascii_case("authorization") {
                    (*n, "<redacted>")
                } else {
                    (*n, v.as_str())
                }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("body", &self.body.as_ref().map(Vec::len))
            .field("delay_ms", &self.delay_ms)
            .field("attempt", &self.attempt)
            .finish()
    }
}

pub use mynacard_protocol::messages::PREFER_RESPOND_ASYNC;

/// A poll of a pending registration: send `request` at `at` (or later) and feed the answer
/// with [`Machine::feed_http_response`] (or [`Machine::feed_http_failure`]), or end the flow
/// with [`Machine::stop_waiting`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollStep {
    /// `GET /v1/registrations/{session_id}` with the poll token; its `delay_ms` is the time
    /// from now to `at`.
    pub request: HttpRequest,
    /// When to send it, by the flow's clock (the service's `Retry-After` from now).
    pub at: UtcTime,
    /// The service's last word on the registration.
    pub pending: RegistrationPending,
}

/// The service's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// The `Retry-After` header in seconds, if present.
    pub retry_after: Option<u32>,
    /// Body.
    pub body: Vec<u8>,
}

/// Why an HTTP exchange produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpFailure {
    /// No connection could be made: the request did not arrive.
    Connect,
    /// The connection broke or timed out after the request was sent: it may have arrived.
    Interrupted,
}

/// Why the card exchange produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CardFailure {
    /// The card was removed or the link (NFC field) was lost.
    Removed,
    /// The card was reset by someone else.
    Reset,
    /// Any other transport failure.
    Transport,
}

/// What the consent screen shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentPrompt {
    /// The document.
    pub document: ConsentDocument,
    /// The operation (which sections to show: [`ConsentDocument::sections_for`]).
    pub op: Operation,
    /// The person's locale.
    pub locale: String,
}

/// What the caller must do next.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Action {
    /// Send this command to the card and feed the response with
    /// [`Machine::feed_card_response`] (or [`Machine::feed_card_failure`]).
    SendCard(Arc<CardCommand>),
    /// Show the consent and feed the answer with [`Machine::feed_consent`].
    ShowConsent(ConsentPrompt),
    /// Ask the person for the auth PIN on the terminal's own PIN pad; feed it with
    /// [`Machine::feed_pin`] (or [`Machine::cancel`]).
    AskPin {
        /// Tries left (`None` when the card does not say).
        retries_left: Option<u8>,
    },
    /// Read 照合番号B from the card face (OCR); feed it with [`Machine::feed_collation_number_b`].
    AskCollationNumberB {
        /// Tries left (`None` when the card does not say).
        retries_left: Option<u8>,
    },
    /// Match the live face against this photo (JPEG 2000 from the card); feed the result with
    /// [`Machine::feed_face_match`]. The photo is wiped when the machine moves on.
    MatchFace {
        /// The photo.
        photo: Zeroizing<Vec<u8>>,
    },
    /// Sign `message` with the terminal's attestation key (ES256, 64-byte `r ‖ s`); feed the
    /// signature with [`Machine::feed_attestation`].
    SignAttestation {
        /// `JCS(face_evidence)`.
        message: Vec<u8>,
    },
    /// Send this request to the service and feed the answer with
    /// [`Machine::feed_http_response`] (or [`Machine::feed_http_failure`]).
    SendHttp(HttpRequest),
    /// The service accepted the registration and finishes it in the background: poll it at
    /// the time given, or stop waiting ([`Machine::stop_waiting`]) and keep the
    /// [`Outcome::Pending`] to poll later. The card is no longer needed.
    Poll(PollStep),
    /// The flow has ended.
    Done(Outcome),
}

/// Misuse of a machine: feeding something it did not ask for, or a value of the wrong form.
/// The machine's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    /// The machine waits for something else.
    #[error("the machine waits for {expected}, not {got}")]
    Unexpected {
        /// What the machine waits for.
        expected: &'static str,
        /// What was fed.
        got: &'static str,
    },
    /// A face score above 1000.
    #[error("face scores are in thousandths (0-1000)")]
    FaceScore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Pin,
    Face,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Http {
    Consent,
    Start,
    Proof,
}

/// The flow's steps on the card. Each runs one of the card crate's operations
/// ([`mynacard_card::ops`]), which own the card's rules and fall-backs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    SelectJpki,
    ReadAuthCert,
    ReadAuthCertAfterPin,
    PinStatus,
    VerifyPin,
    SignIntent,
    SelectVisual,
    BStatus,
    VerifyB,
    ReadFace,
    ReadCvc,
    PresenceSign,
}

impl Card {
    fn purpose(self) -> &'static str {
        match self {
            Card::SelectJpki => "select JPKI application",
            Card::ReadAuthCert | Card::ReadAuthCertAfterPin => "read auth certificate",
            Card::PinStatus => "read PIN tries left",
            Card::VerifyPin => "verify auth PIN",
            Card::SignIntent => "sign intent",
            Card::SelectVisual => "select visual application",
            Card::BStatus => "read collation number tries left",
            Card::VerifyB => "verify collation number B",
            Card::ReadFace => "read card face",
            Card::ReadCvc => "read card-verifiable certificate",
            Card::PresenceSign => "card presence signature",
        }
    }
}

/// The card operation a step runs.
#[derive(Debug, Clone)]
enum CardOp {
    Select(SelectApplication),
    Read(ReadFile),
    Status(PinStatusRead),
    Verify(VerifyOnce),
    Sign(Sign),
    Presence(PresenceSign),
}

/// What a card operation gave.
enum CardResult {
    Done,
    File(Vec<u8>),
    Status(PinStatus),
    Signature(Vec<u8>),
}

/// Starts (`None`) or feeds an operation.
fn advance<O: ops::Operation>(
    op: &mut O,
    link: &mut Link,
    response: Option<Response>,
    wrap: impl FnOnce(O::Output) -> CardResult,
) -> mynacard_card::Result<ops::Step<CardResult>> {
    let step = match response {
        None => op.start(link)?,
        Some(r) => op.feed(link, r)?,
    };
    Ok(match step {
        ops::Step::Send(command) => ops::Step::Send(command),
        ops::Step::Done(output) => ops::Step::Done(wrap(output)),
    })
}

impl CardOp {
    fn advance(
        &mut self,
        link: &mut Link,
        response: Option<Response>,
    ) -> mynacard_card::Result<ops::Step<CardResult>> {
        match self {
            CardOp::Select(op) => advance(op, link, response, |()| CardResult::Done),
            CardOp::Read(op) => advance(op, link, response, CardResult::File),
            CardOp::Status(op) => advance(op, link, response, CardResult::Status),
            CardOp::Verify(op) => advance(op, link, response, |()| CardResult::Done),
            CardOp::Sign(op) => advance(op, link, response, CardResult::Signature),
            CardOp::Presence(op) => advance(op, link, response, CardResult::Signature),
        }
    }
}

/// A card operation waiting for the answer to its current APDU.
#[derive(Debug, Clone)]
struct CardWait {
    step: Card,
    op: CardOp,
    exchange: Exchange,
    /// Shared with every [`Action::SendCard`] of this APDU, so a PIN in it is held once.
    current: Arc<CardCommand>,
}

#[derive(Debug, Clone)]
enum State {
    Card(Box<CardWait>),
    Consent,
    AskPin(Option<u8>),
    AskB(Option<u8>),
    MatchFace,
    Attest(Vec<u8>),
    Http {
        kind: Http,
        request: HttpRequest,
    },
    Poll {
        pending: Box<RegistrationPending>,
        request: HttpRequest,
        at: UtcTime,
    },
    Done(Outcome),
}

/// The card-face record's parts the evidence needs.
#[derive(Debug, Clone)]
struct FaceRecord {
    digests: [Sha256Digest; 3],
    /// The first signed segment (`DF22`–`DF24` as encoded): birth date and sex, so wiped.
    covered: Zeroizing<Vec<u8>>,
    signature: Vec<u8>,
    public_key: Vec<u8>,
    photo: Zeroizing<Vec<u8>>,
}

impl From<SignedFace> for FaceRecord {
    fn from(face: SignedFace) -> FaceRecord {
        FaceRecord {
            digests: face.digests().map(Sha256Digest),
            covered: face.segments[0].clone(),
            signature: face.signature,
            public_key: face.card_key,
            photo: face.photo,
        }
    }
}

/// A registration, eligibility or deregistration flow. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Machine {
    config: FlowConfig,
    op: Operation,
    way: Way,
    state: State,
    link: Link,
    auth_cert: Vec<u8>,
    /// The token keeps its auth certificate behind the PIN: read it after VERIFY.
    cert_after_pin: bool,
    consent: Option<ConsentDocument>,
    /// Typed, until its VERIFY takes it.
    pin: Option<Pin>,
    face: Option<FaceRecord>,
    face_match: Option<FaceMatch>,
    cvc: Vec<u8>,
    challenge: Option<Challenge>,
    intent: Option<Intent>,
    evidence: Option<FaceEvidence>,
    proof_body: Option<Vec<u8>>,
}

impl Machine {
    fn new(config: FlowConfig, op: Operation, way: Way) -> Machine {
        let mut m = Machine {
            link: Link::with_max_read(config.read_chunk as usize),
            config,
            op,
            way,
            state: State::Consent,
            auth_cert: Vec::new(),
            cert_after_pin: false,
            consent: None,
            pin: None,
            face: None,
            face_match: None,
            cvc: Vec::new(),
            challenge: None,
            intent: None,
            evidence: None,
            proof_body: None,
        };
        m.card(
            Card::SelectJpki,
            CardOp::Select(SelectApplication::new(Application::Jpki)),
        );
        m
    }

    /// Registration with the auth PIN (smartphone app, ATM).
    pub fn register_with_pin(config: FlowConfig) -> Machine {
        Machine::new(config, Operation::RegisterInsuranceUse, Way::Pin)
    }

    /// Registration at an accredited face-recognition kiosk (no PIN).
    pub fn register_with_face(config: FlowConfig) -> Machine {
        Machine::new(config, Operation::RegisterInsuranceUse, Way::Face)
    }

    /// Eligibility at the point of use, PIN mode.
    pub fn check_eligibility_with_pin(config: FlowConfig) -> Machine {
        Machine::new(config, Operation::CheckEligibility, Way::Pin)
    }

    /// Eligibility at the point of use, accredited face mode.
    pub fn check_eligibility_with_face(config: FlowConfig) -> Machine {
        Machine::new(config, Operation::CheckEligibility, Way::Face)
    }

    /// Withdrawal of the registration (PIN).
    pub fn deregister(config: FlowConfig) -> Machine {
        Machine::new(config, Operation::DeregisterInsuranceUse, Way::Pin)
    }

    /// The operation.
    pub fn operation(&self) -> Operation {
        self.op
    }

    /// The method.
    pub fn method(&self) -> Method {
        match self.way {
            Way::Pin => Method::PinSignature,
            Way::Face => Method::AccreditedFace,
        }
    }

    /// Sets the READ BINARY chunk size (1–65536) for the reads still to come: a driver whose
    /// link carries extended-length APDUs raises it to read a file in one command. A card that
    /// refuses a long read (`6700`) is read in 256-byte chunks from then on.
    pub fn set_read_chunk(&mut self, chunk: u32) {
        self.config.read_chunk = chunk.clamp(1, 65_536);
        self.link = Link::with_max_read(self.config.read_chunk as usize);
    }

    /// The challenge, once received.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    /// What to do next. Calling it again without feeding anything returns the same action.
    pub fn next_action(&self) -> Action {
        match &self.state {
            State::Card(wait) => Action::SendCard(Arc::clone(&wait.current)),
            State::Consent => match &self.consent {
                Some(doc) => Action::ShowConsent(ConsentPrompt {
                    document: doc.clone(),
                    op: self.op,
                    locale: self.config.locale.clone(),
                }),
                None => Action::Done(Outcome::ProtocolError {
                    what: "no consent document".to_owned(),
                }),
            },
            State::AskPin(retries_left) => Action::AskPin {
                retries_left: *retries_left,
            },
            State::AskB(retries_left) => Action::AskCollationNumberB {
                retries_left: *retries_left,
            },
            State::MatchFace => Action::MatchFace {
                photo: self
                    .face
                    .as_ref()
                    .map(|f| f.photo.clone())
                    .unwrap_or_default(),
            },
            State::Attest(message) => Action::SignAttestation {
                message: message.clone(),
            },
            State::Http { request, .. } => Action::SendHttp(request.clone()),
            State::Poll {
                pending,
                request,
                at,
            } => Action::Poll(PollStep {
                request: request.clone(),
                at: *at,
                pending: (**pending).clone(),
            }),
            State::Done(outcome) => Action::Done(outcome.clone()),
        }
    }

    /// The outcome, once the flow has ended.
    pub fn outcome(&self) -> Option<&Outcome> {
        match &self.state {
            State::Done(o) => Some(o),
            _ => None,
        }
    }

    fn waiting_for(&self) -> &'static str {
        match self.state {
            State::Card(_) => "a card response",
            State::Consent => "the consent answer",
            State::AskPin(_) => "the PIN",
            State::AskB(_) => "collation number B",
            State::MatchFace => "the face match",
            State::Attest(_) => "the attestation signature",
            State::Http { .. } => "an HTTP response",
            State::Poll { .. } => "a poll answer",
            State::Done(_) => "nothing (the flow has ended)",
        }
    }

    fn unexpected(&self, got: &'static str) -> MachineError {
        MachineError::Unexpected {
            expected: self.waiting_for(),
            got,
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        // Secrets and the photo go as soon as the flow ends.
        self.pin = None;
        self.face = None;
        self.state = State::Done(outcome);
    }

    fn card_error(&mut self, what: &'static str, sw: Option<StatusWord>) {
        self.finish(Outcome::CardError {
            what,
            sw: sw.map(StatusWord::to_u16),
        });
    }

    fn attempt_policy(&self) -> AttemptPolicy {
        if self.config.allow_last_attempt {
            AttemptPolicy::AllowLastAttempt
        } else {
            AttemptPolicy::KeepLastAttempt
        }
    }

    /// Starts `op` for `step`.
    fn card(&mut self, step: Card, op: CardOp) {
        self.drive(step, op, None);
    }

    /// Starts or feeds `op`: its next command goes out, or its result moves the flow on.
    fn drive(&mut self, step: Card, mut op: CardOp, response: Option<Response>) {
        match op.advance(&mut self.link, response) {
            Ok(ops::Step::Send(command)) => match Exchange::new(&self.link, &command) {
                Ok(exchange) => self.emit(step, op, exchange, command.attempt.is_some()),
                Err(e) => self.on_card_error(step, &e),
            },
            Ok(ops::Step::Done(result)) => self.on_card(step, result),
            Err(e) => {
                let nothing_read = matches!(&op, CardOp::Read(read) if read.bytes_read() == 0);
                self.on_card_error_after(step, &e, nothing_read);
            }
        }
    }

    /// Waits for the answer to the exchange's current APDU.
    fn emit(&mut self, step: Card, op: CardOp, exchange: Exchange, spends_attempt: bool) {
        match exchange.apdu_bytes() {
            Ok(bytes) => {
                let current = Arc::new(CardCommand {
                    command: exchange.apdu().clone(),
                    bytes,
                    purpose: step.purpose(),
                    spends_attempt,
                });
                self.state = State::Card(Box::new(CardWait {
                    step,
                    op,
                    exchange,
                    current,
                }));
            }
            Err(e) => self.on_card_error(step, &e),
        }
    }

    fn http(&mut self, kind: Http, method: HttpMethod, path: String, body: Option<Vec<u8>>) {
        self.state = State::Http {
            kind,
            request: HttpRequest {
                method,
                path,
                headers: Vec::new(),
                body,
                delay_ms: 0,
                attempt: 1,
            },
        };
    }

    /// Reads the whole file of a `Read*` step.
    fn read(&mut self, step: Card) {
        let fid = match step {
            Card::ReadAuthCert | Card::ReadAuthCertAfterPin => catalogue::jpki::AUTH_CERT,
            Card::ReadFace => catalogue::visual::FACE,
            Card::ReadCvc => catalogue::visual::CVC,
            _ => return self.card_error(step.purpose(), None),
        };
        self.card(
            step,
            CardOp::Read(ReadFile::new(fid, Extent::Tlv, step.purpose())),
        );
    }

    /// Feeds the card's response (data and SW1-SW2) to the last command sent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no card command is outstanding.
    pub fn feed_card_response(&mut self, bytes: &[u8]) -> Result<(), MachineError> {
        if !matches!(self.state, State::Card(_)) {
            return Err(self.unexpected("a card response"));
        }
        let State::Card(wait) = std::mem::replace(&mut self.state, State::Consent) else {
            return Err(self.unexpected("a card response"));
        };
        let CardWait {
            step,
            op,
            mut exchange,
            ..
        } = *wait;
        let Ok(response) = Response::parse(bytes) else {
            self.card_error(step.purpose(), None);
            return Ok(());
        };
        match exchange.feed(response) {
            Ok(None) => self.emit(step, op, exchange, false),
            Ok(Some(response)) => self.drive(step, op, Some(response)),
            Err(e) => self.on_card_error(step, &e),
        }
        Ok(())
    }

    /// Feeds a failure of the card link for the last command sent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no card command is outstanding.
    pub fn feed_card_failure(&mut self, failure: CardFailure) -> Result<(), MachineError> {
        let State::Card(wait) = &self.state else {
            return Err(self.unexpected("a card failure"));
        };
        let current = &wait.current;
        let counted = current.spends_attempt;
        match failure {
            CardFailure::Removed | CardFailure::Reset => self.finish(Outcome::CardRemoved {
                attempt_may_have_been_counted: counted,
            }),
            CardFailure::Transport if counted => self.finish(Outcome::CardRemoved {
                attempt_may_have_been_counted: true,
            }),
            CardFailure::Transport => {
                let what = current.purpose;
                self.finish(Outcome::CardError { what, sw: None });
            }
        }
        Ok(())
    }

    /// A card operation finished: the flow moves on.
    fn on_card(&mut self, step: Card, result: CardResult) {
        match (step, result) {
            (Card::SelectJpki, CardResult::Done) => self.read(Card::ReadAuthCert),
            (Card::ReadAuthCert, CardResult::File(der)) => {
                self.auth_cert = der;
                self.after_auth_cert();
            }
            (Card::ReadAuthCertAfterPin, CardResult::File(der)) => {
                self.auth_cert = der;
                self.make_intent();
                self.sign_intent();
            }
            (Card::PinStatus, CardResult::Status(status)) => {
                match check_attempt(PinKind::JpkiAuth, status, self.attempt_policy()) {
                    Ok(retries_left) => self.state = State::AskPin(retries_left),
                    Err(e) => self.on_card_error(step, &e),
                }
            }
            (Card::VerifyPin, CardResult::Done) if self.cert_after_pin => {
                self.read(Card::ReadAuthCertAfterPin);
            }
            (Card::VerifyPin, CardResult::Done) => self.sign_intent(),
            (Card::SignIntent, CardResult::Signature(signature)) => {
                self.submit_pin_proof(signature);
            }
            (Card::SelectVisual, CardResult::Done) => self.card(
                Card::BStatus,
                CardOp::Status(PinStatusRead::new(PinKind::VisualCollationB)),
            ),
            (Card::BStatus, CardResult::Status(status)) => {
                match check_attempt(PinKind::VisualCollationB, status, self.attempt_policy()) {
                    Ok(retries_left) => self.state = State::AskB(retries_left),
                    Err(e) => self.on_card_error(step, &e),
                }
            }
            (Card::VerifyB, CardResult::Done) => self.read(Card::ReadFace),
            (Card::ReadFace, CardResult::File(data)) => match SignedFace::parse(&data) {
                Ok(face) => {
                    self.face = Some(face.into());
                    self.state = State::MatchFace;
                }
                Err(_) => self.card_error(step.purpose(), None),
            },
            (Card::ReadCvc, CardResult::File(data)) => {
                self.cvc = data;
                self.start_session();
            }
            (Card::PresenceSign, CardResult::Signature(signature)) => self.attest(signature),
            _ => self.card_error(step.purpose(), None),
        }
    }

    /// A card operation was refused: the typed outcome for the person.
    fn on_card_error(&mut self, step: Card, e: &mynacard_card::Error) {
        self.on_card_error_after(step, e, false);
    }

    /// As [`Machine::on_card_error`]; `nothing_read` when a file read failed before any of
    /// the file arrived.
    fn on_card_error_after(&mut self, step: Card, e: &mynacard_card::Error, nothing_read: bool) {
        use mynacard_card::Error as E;
        let collation = matches!(step, Card::BStatus | Card::VerifyB);
        let outcome = match e {
            // A smartphone token: the certificate comes after VERIFY.
            E::Card { sw, .. }
                if step == Card::ReadAuthCert
                    && nothing_read
                    && *sw == StatusWord::SecurityStatusNotSatisfied
                    && self.way == Way::Pin =>
            {
                self.cert_after_pin = true;
                return self.after_auth_cert();
            }
            E::Blocked { .. } if collation => Outcome::CollationNumberBlocked,
            E::Blocked { .. } => Outcome::PinBlocked,
            E::LastAttemptRefused { .. } if collation => Outcome::CollationLastAttemptRefused,
            E::LastAttemptRefused { .. } => Outcome::LastAttemptRefused,
            E::WrongPin { retries_left, .. } if collation => Outcome::CollationNumberWrong {
                retries_left: *retries_left,
            },
            E::WrongPin { retries_left, .. } => Outcome::WrongPin {
                retries_left: *retries_left,
            },
            E::PinNotSet { .. } if !collation => Outcome::NoAuthPin,
            e => Outcome::CardError {
                what: step.purpose(),
                sw: e.status_word().map(StatusWord::to_u16),
            },
        };
        self.finish(outcome);
    }

    /// After the first read of the auth certificate (or its `6982`): the consent, or for a
    /// withdrawal straight the tries left.
    fn after_auth_cert(&mut self) {
        match self.op {
            Operation::DeregisterInsuranceUse => self.ask_pin_status(),
            _ => self.http(
                Http::Consent,
                HttpMethod::Get,
                crate::messages::paths::CONSENT.to_owned(),
                None,
            ),
        }
    }

    /// COMPUTE DIGITAL SIGNATURE of the intent with the auth key.
    fn sign_intent(&mut self) {
        match self.digest_info() {
            Some(di) => self.card(
                Card::SignIntent,
                CardOp::Sign(Sign::new(
                    catalogue::jpki::AUTH_KEY,
                    SignScheme::Pkcs1DigestInfo,
                    &di,
                    RSA_2048_LEN,
                )),
            ),
            None => self.card_error(Card::SignIntent.purpose(), None),
        }
    }

    /// The one VERIFY of the auth PIN held; the PIN goes into it and is not kept here.
    fn verify_pin(&mut self) {
        match self.pin.take() {
            Some(pin) => self.card(
                Card::VerifyPin,
                CardOp::Verify(VerifyOnce::pin(PinKind::JpkiAuth, &pin)),
            ),
            None => self.card_error(Card::VerifyPin.purpose(), None),
        }
    }

    /// The intent for the challenge received and the auth certificate read.
    fn make_intent(&mut self) {
        if let Some(challenge) = &self.challenge {
            self.intent = Some(Intent::for_challenge(
                challenge,
                &self.config.terminal_id,
                &self.auth_cert,
                (self.config.clock)(),
            ));
        }
    }

    /// The auth PIN's tries left (an empty VERIFY, which spends nothing).
    fn ask_pin_status(&mut self) {
        self.card(
            Card::PinStatus,
            CardOp::Status(PinStatusRead::new(PinKind::JpkiAuth)),
        );
    }

    /// Feeds the person's answer to the consent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the machine is not showing the consent.
    pub fn feed_consent(&mut self, agreed: bool) -> Result<(), MachineError> {
        if !matches!(self.state, State::Consent) {
            return Err(self.unexpected("the consent answer"));
        }
        if !agreed {
            self.finish(Outcome::ConsentDeclined);
        } else {
            match self.way {
                Way::Pin => self.ask_pin_status(),
                Way::Face => self.card(
                    Card::SelectVisual,
                    CardOp::Select(SelectApplication::new(Application::Visual)),
                ),
            }
        }
        Ok(())
    }

    /// Feeds the PIN the person typed (a [`Pin`], checked when it was made). The machine then
    /// asks for the challenge and sends VERIFY once.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the machine does not wait for a PIN.
    pub fn feed_pin(&mut self, pin: Pin) -> Result<(), MachineError> {
        if !matches!(self.state, State::AskPin(_)) {
            return Err(self.unexpected("a PIN"));
        }
        self.pin = Some(pin);
        self.start_session();
        Ok(())
    }

    /// Feeds 照合番号B as read from the card face; it goes to the card once, at once.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the machine does not wait for it.
    pub fn feed_collation_number_b(&mut self, b: CollationB) -> Result<(), MachineError> {
        if !matches!(self.state, State::AskB(_)) {
            return Err(self.unexpected("collation number B"));
        }
        self.card(Card::VerifyB, CardOp::Verify(VerifyOnce::collation_b(&b)));
        Ok(())
    }

    /// Feeds the terminal's face-match result. A non-match ends the flow without contacting the
    /// service.
    ///
    /// # Errors
    /// [`MachineError::FaceScore`] or [`MachineError::Unexpected`].
    pub fn feed_face_match(&mut self, result: FaceMatch) -> Result<(), MachineError> {
        if !matches!(self.state, State::MatchFace) {
            return Err(self.unexpected("a face match"));
        }
        if result.score_permille > 1000 || result.threshold_permille > 1000 {
            return Err(MachineError::FaceScore);
        }
        if let Some(face) = &mut self.face {
            // The photo is no longer needed.
            face.photo = Zeroizing::new(Vec::new());
        }
        if result.decision != FaceDecision::Match
            || result.score_permille < result.threshold_permille
        {
            self.finish(Outcome::FaceNotMatched);
        } else {
            self.face_match = Some(result);
            self.read(Card::ReadCvc);
        }
        Ok(())
    }

    /// Feeds the attestation signature (64 bytes `r ‖ s`).
    ///
    /// # Errors
    /// [`MachineError::Unexpected`].
    pub fn feed_attestation(&mut self, signature: Vec<u8>) -> Result<(), MachineError> {
        if !matches!(self.state, State::Attest(_)) {
            return Err(self.unexpected("an attestation signature"));
        }
        let Some(evidence) = self.evidence.clone() else {
            self.card_error("face evidence", None);
            return Ok(());
        };
        let proof = Proof::AccreditedFace {
            v: V1,
            auth_cert: Bytes(self.auth_cert.clone()),
            face_evidence: evidence,
            attestation: TerminalAttestation {
                alg: ATTESTATION_ALG_ES256.to_owned(),
                terminal_id: self.config.terminal_id.clone(),
                signature: Bytes(signature),
            },
        };
        self.submit(&proof);
        Ok(())
    }

    /// Ends the flow at the person's or terminal's request. Not possible once a proof is on its
    /// way (its answer decides the outcome).
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] after the proof was sent or the flow ended.
    pub fn cancel(&mut self) -> Result<(), MachineError> {
        match &self.state {
            State::Done(_)
            | State::Http {
                kind: Http::Proof, ..
            } => Err(self.unexpected("a cancellation")),
            // The service has the registration; cancelling only stops the waiting.
            State::Poll { .. } => self.stop_waiting(),
            _ => {
                self.finish(Outcome::Cancelled);
                Ok(())
            }
        }
    }

    fn start_session(&mut self) {
        let start = StartSession {
            v: V1,
            terminal_id: self.config.terminal_id.clone(),
            terminal_kind: self.config.terminal_kind,
            locale: self.config.locale.clone(),
            methods_supported: vec![self.method()],
        };
        match serde_json::to_vec(&start) {
            Ok(body) => self.http(
                Http::Start,
                HttpMethod::Post,
                self.op.start_path().to_owned(),
                Some(body),
            ),
            Err(e) => self.finish(Outcome::ProtocolError {
                what: e.to_string(),
            }),
        }
    }

    fn digest_info(&self) -> Option<[u8; 51]> {
        self.intent
            .as_ref()
            .and_then(|i| i.sha256().ok())
            .map(|d| sha256_digest_info(&d))
    }

    fn submit_pin_proof(&mut self, signature: Vec<u8>) {
        let Some(intent) = self.intent.clone() else {
            return self.card_error("sign intent", None);
        };
        let proof = Proof::PinSignature {
            v: V1,
            intent,
            auth_cert: Bytes(self.auth_cert.clone()),
            signature: Bytes(signature),
        };
        self.submit(&proof);
    }

    fn attest(&mut self, presence_signature: Vec<u8>) {
        let (Some(intent), Some(face), Some(face_match)) =
            (self.intent.clone(), self.face.as_ref(), self.face_match)
        else {
            return self.card_error("card presence signature", None);
        };
        let evidence = FaceEvidence {
            v: V1,
            intent,
            card_face_digests: face.digests.to_vec(),
            card_face_covered: Bytes(face.covered.to_vec()),
            card_face_signature: Bytes(face.signature.clone()),
            card_public_key: Bytes(face.public_key.clone()),
            cvc: Bytes(self.cvc.clone()),
            presence_signature: Bytes(presence_signature),
            face_match,
        };
        match evidence.canonical_bytes() {
            Ok(message) => {
                self.evidence = Some(evidence);
                self.state = State::Attest(message);
            }
            Err(e) => self.finish(Outcome::ProtocolError {
                what: e.to_string(),
            }),
        }
    }

    fn submit(&mut self, proof: &Proof) {
        match serde_json::to_vec(proof) {
            Ok(body) => {
                let Some(challenge) = &self.challenge else {
                    return self.finish(Outcome::ProtocolError {
                        what: "no challenge".to_owned(),
                    });
                };
                let path = self.op.proof_path(&challenge.session_id);
                self.proof_body = Some(body.clone());
                self.http(Http::Proof, HttpMethod::Post, path, Some(body));
                // Only a registration may wait for its upstreams; a check at the point of use
                // is answered at once (protocol §16.1).
                if self.op == Operation::RegisterInsuranceUse
                    && self.config.accept_pending
                    && let State::Http { request, .. } = &mut self.state
                {
                    request
                        .headers
                        .push(("prefer", PREFER_RESPOND_ASYNC.to_owned()));
                }
            }
            Err(e) => self.finish(Outcome::ProtocolError {
                what: e.to_string(),
            }),
        }
    }

    /// Feeds the service's answer to the last request.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no request is outstanding.
    pub fn feed_http_response(&mut self, response: HttpResponse) -> Result<(), MachineError> {
        if let State::Poll { .. } = self.state {
            self.on_poll_answer(response);
            return Ok(());
        }
        let State::Http { kind, request } = &self.state else {
            return Err(self.unexpected("an HTTP response"));
        };
        let (kind, request) = (*kind, request.clone());
        if kind == Http::Proof && response.status == 202 && request.header("prefer").is_some() {
            self.on_pending(&response);
            return Ok(());
        }
        if !(200..300).contains(&response.status) {
            let body: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
            match body {
                // A proof that met an unexpected failure committed nothing: resend it.
                Some(b)
                    if kind == Http::Proof
                        && b.retry == crate::errors::RetryAdvice::Backoff
                        && request.attempt <= self.config.proof_retries =>
                {
                    self.resend(request);
                }
                Some(b) => self.finish(Outcome::from_error(b, response.retry_after)),
                None => match response.status {
                    429 => self.finish(Outcome::ServiceBusy {
                        retry_after: response.retry_after,
                    }),
                    503 => self.finish(Outcome::Maintenance {
                        retry_after: response.retry_after,
                    }),
                    status => self.finish(Outcome::ProtocolError {
                        what: format!("HTTP {status} without an error body"),
                    }),
                },
            }
            return Ok(());
        }
        match kind {
            Http::Consent => self.on_consent(&response.body),
            Http::Start => self.on_challenge(&response.body),
            Http::Proof => self.on_result(&response.body),
        }
        Ok(())
    }

    /// Feeds a failed HTTP exchange. A proof is resent (it is idempotent) up to
    /// [`FlowConfig::proof_retries`] times.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no request is outstanding.
    pub fn feed_http_failure(&mut self, failure: HttpFailure) -> Result<(), MachineError> {
        if let State::Poll { pending, .. } = &self.state {
            // A poll changes nothing at the service: ask again after the same pause.
            let pending = (**pending).clone();
            let delay = pending.poll.retry_after;
            self.schedule_poll(pending, delay);
            return Ok(());
        }
        let State::Http { kind, request } = &self.state else {
            return Err(self.unexpected("an HTTP failure"));
        };
        let (kind, request) = (*kind, request.clone());
        if kind == Http::Proof {
            if request.attempt <= self.config.proof_retries {
                self.resend(request);
            } else {
                self.finish(Outcome::ServiceUnreachable {
                    proof_may_have_arrived: true,
                });
            }
        } else {
            let _ = failure;
            self.finish(Outcome::ServiceUnreachable {
                proof_may_have_arrived: false,
            });
        }
        Ok(())
    }

    fn resend(&mut self, mut request: HttpRequest) {
        let shift = u32::from(request.attempt.saturating_sub(1)).min(16);
        request.delay_ms = self.config.proof_retry_delay_ms.saturating_mul(1 << shift);
        request.attempt = request.attempt.saturating_add(1);
        self.state = State::Http {
            kind: Http::Proof,
            request,
        };
    }

    fn protocol_error(&mut self, what: impl Into<String>) {
        self.finish(Outcome::ProtocolError { what: what.into() });
    }

    fn on_consent(&mut self, body: &[u8]) {
        let response: ConsentResponse = match serde_json::from_slice(body) {
            Ok(r) => r,
            Err(e) => return self.protocol_error(format!("consent: {e}")),
        };
        match response.document.sha256() {
            Ok(h) if h == response.consent.sha256 => {
                self.consent = Some(response.document);
                self.state = State::Consent;
            }
            _ => self.protocol_error("consent document does not match its hash"),
        }
    }

    fn on_challenge(&mut self, body: &[u8]) {
        let challenge: Challenge = match serde_json::from_slice(body) {
            Ok(c) => c,
            Err(e) => return self.protocol_error(format!("challenge: {e}")),
        };
        if challenge.op != self.op {
            return self.protocol_error("challenge is for another operation");
        }
        if !crate::messages::is_valid_identifier(&challenge.session_id) {
            return self.protocol_error("challenge has an invalid session id");
        }
        if let Some(doc) = &self.consent {
            match doc.sha256() {
                Ok(h) if h == challenge.consent.sha256 => {}
                _ => return self.finish(Outcome::ConsentChanged),
            }
        }
        if !challenge.accepted_methods.contains(&self.method()) {
            return self.finish(Outcome::TerminalNotAccepted);
        }
        self.challenge = Some(challenge);
        // Without the certificate yet (smartphone token), the intent is made once it is read.
        if !self.cert_after_pin {
            self.make_intent();
        }
        match self.way {
            Way::Pin => self.verify_pin(),
            Way::Face => match self.digest_info() {
                // The visual AP is still selected: its key signs the intent (card presence).
                Some(di) => self.card(
                    Card::PresenceSign,
                    CardOp::Presence(PresenceSign::new(&di, RSA_2048_LEN)),
                ),
                None => self.card_error("card presence signature", None),
            },
        }
    }

    fn on_result(&mut self, body: &[u8]) {
        let outcome = match self.op {
            Operation::RegisterInsuranceUse => {
                serde_json::from_slice::<RegistrationResult>(body).map(registration_outcome)
            }
            Operation::CheckEligibility => serde_json::from_slice::<EligibilityResult>(body)
                .map(|r| Outcome::Eligible(Box::new(r))),
            Operation::DeregisterInsuranceUse => {
                serde_json::from_slice::<DeregistrationResult>(body).map(|r| {
                    Outcome::Deregistered {
                        registration_id: r.registration_id,
                    }
                })
            }
        };
        match outcome {
            Ok(o) => self.finish(o),
            Err(e) => self.protocol_error(format!("result: {e}")),
        }
    }

    /// The `202` answer to a registration proof: the service finishes the registration in the
    /// background.
    fn on_pending(&mut self, response: &HttpResponse) {
        let pending: RegistrationPending = match serde_json::from_slice(&response.body) {
            Ok(p) => p,
            Err(e) => return self.protocol_error(format!("pending status: {e}")),
        };
        let ours = self
            .challenge
            .as_ref()
            .is_some_and(|c| c.session_id == pending.session_id);
        if !ours {
            return self.protocol_error("pending status is for another session");
        }
        if let Err(what) = check_poll_target(&pending) {
            return self.protocol_error(what);
        }
        // The secrets are of no further use: the card's part is over.
        self.pin = None;
        self.face = None;
        let delay = response.retry_after.unwrap_or(pending.poll.retry_after);
        self.schedule_poll(pending, delay);
    }

    /// Waits `delay_secs` (at least a second), then polls; or, once past the service's
    /// deadline with a margin, ends with [`Outcome::Pending`].
    fn schedule_poll(&mut self, pending: RegistrationPending, delay_secs: u32) {
        let delay = delay_secs.max(MIN_POLL_SECS);
        let at = (self.config.clock)().plus(i64::from(delay));
        if at.unix() > pending.deadline.unix() + POLL_AFTER_DEADLINE_SECS {
            return self.finish(Outcome::Pending(Box::new(pending)));
        }
        let attempt = match &self.state {
            State::Poll { request, .. } => request.attempt.saturating_add(1),
            _ => 1,
        };
        let request = HttpRequest {
            method: HttpMethod::Get,
            path: pending.poll.url.clone(),
            headers: vec![("authorization", pending.poll.token.bearer())],
            body: None,
            delay_ms: delay.saturating_mul(1000),
            attempt,
        };
        self.state = State::Poll {
            pending: Box::new(pending),
            request,
            at,
        };
    }

    fn on_poll_answer(&mut self, response: HttpResponse) {
        let State::Poll { pending, .. } = &self.state else {
            return;
        };
        let pending = (**pending).clone();
        if response.status == 200 {
            let document: RegistrationStatusDocument = match serde_json::from_slice(&response.body)
            {
                Ok(d) => d,
                Err(e) => return self.protocol_error(format!("registration status: {e}")),
            };
            return match document {
                RegistrationStatusDocument::Pending(now) => {
                    if now.session_id != pending.session_id {
                        return self.protocol_error("registration status is for another session");
                    }
                    let delay = response.retry_after.unwrap_or(now.poll.retry_after);
                    // The token and the path stay the ones first given; the pause is the
                    // latest.
                    let next = RegistrationPending {
                        poll: crate::messages::PollInfo {
                            retry_after: now.poll.retry_after,
                            ..pending.poll.clone()
                        },
                        ..now
                    };
                    self.schedule_poll(next, delay)
                }
                RegistrationStatusDocument::Finished(result) => {
                    if result.session_id != pending.session_id {
                        return self.protocol_error("registration status is for another session");
                    }
                    self.finish(registration_outcome(result))
                }
                RegistrationStatusDocument::Failed(failed) => {
                    self.finish(Outcome::from_error(failed.error, None))
                }
            };
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
        let transient = match &body {
            Some(b) => matches!(
                b.retry,
                crate::errors::RetryAdvice::After | crate::errors::RetryAdvice::Backoff
            ),
            None => matches!(response.status, 429 | 502 | 503 | 504),
        };
        if transient {
            // Rate limit, maintenance, a failure of the service: the registration goes on.
            let delay = response
                .retry_after
                .or(body.as_ref().and_then(|b| b.retry_after))
                .unwrap_or(pending.poll.retry_after);
            return self.schedule_poll(pending, delay);
        }
        match body {
            Some(b) => self.finish(Outcome::from_error(b, response.retry_after)),
            None => self.protocol_error(format!("HTTP {} without an error body", response.status)),
        }
    }

    /// Ends a flow that waits for a pending registration with [`Outcome::Pending`], which holds
    /// what is needed to poll later ([`Machine::poll_registration`]).
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the flow is not waiting for a pending registration.
    pub fn stop_waiting(&mut self) -> Result<(), MachineError> {
        let State::Poll { pending, .. } = &self.state else {
            return Err(self.unexpected("a stop of the waiting"));
        };
        let pending = pending.clone();
        self.finish(Outcome::Pending(pending));
        Ok(())
    }

    /// A flow that only polls a registration the service accepted earlier (the
    /// [`Outcome::Pending`] of a flow that stopped waiting, kept by the terminal). Its first
    /// action is the poll, after the pause the status asks for.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the status does not name a poll target of this protocol
    /// (the token is never sent anywhere else).
    pub fn poll_registration(
        config: FlowConfig,
        pending: RegistrationPending,
    ) -> Result<Machine, MachineError> {
        let mut m = Machine::new(config, Operation::RegisterInsuranceUse, Way::Pin);
        if check_poll_target(&pending).is_err() {
            return Err(MachineError::Unexpected {
                expected: "a pending registration of this protocol",
                got: "a status with another poll target",
            });
        }
        let delay = pending.poll.retry_after;
        m.schedule_poll(pending, delay);
        Ok(m)
    }

    /// The proof as sent (JSON), once built: a terminal may keep it to resend after a crash of
    /// its own.
    pub fn proof_body(&self) -> Option<&[u8]> {
        self.proof_body.as_deref()
    }
}

/// The outcome a registration result stands for.
fn registration_outcome(r: RegistrationResult) -> Outcome {
    let (registration_id, insurer_name) = (r.registration_id, r.insurer_name);
    match r.status {
        RegistrationStatus::Registered => Outcome::Registered {
            registration_id,
            insurer_name,
        },
        RegistrationStatus::AlreadyRegistered => Outcome::AlreadyRegistered {
            registration_id,
            insurer_name,
        },
        RegistrationStatus::Relinked => Outcome::RelinkedAfterReissue {
            registration_id,
            insurer_name,
        },
    }
}

/// A pending status may only send the poll token to this session's status path on the same
/// service (protocol §16.2).
fn check_poll_target(pending: &RegistrationPending) -> Result<(), &'static str> {
    if !is_valid_identifier(&pending.session_id) {
        return Err("pending status has an invalid session id");
    }
    if pending.poll.url != paths::registration_status(&pending.session_id) {
        return Err("pending status names another poll target");
    }
    Ok(())
}
