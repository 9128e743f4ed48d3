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

use mynacard_apdu::commands::{self, KeyRef, SignScheme};
use mynacard_apdu::tlv::ber;
use mynacard_apdu::{
    Command, CommandBytes, LengthEncoding, Response, ResponseAssembler, StatusWord, Step,
};
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

/// Largest file the machine reads (the card-face record with its photo is the largest, a few KiB).
const MAX_FILE_LEN: usize = 0x7FFF;
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
    SendCard(CardCommand),
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
    /// A PIN that is not four digits (nothing was sent to the card).
    #[error("the PIN must be 4 digits")]
    PinFormat,
    /// A 照合番号B that is not 14 digits (nothing was sent to the card).
    #[error("照合番号B must be 14 digits")]
    CollationNumberFormat,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Card {
    SelectJpki,
    ReadAuthCert,
    /// SELECT EF before reading by offset (the SFI read was refused, or the file is longer
    /// than one SFI read reaches); likewise for the other `Select*` steps of files.
    SelectAuthCert,
    ReadAuthCertAfterPin,
    SelectAuthCertAfterPin,
    PinStatus,
    /// SELECT EF of a key or PIN: only after the card refused its SFI form.
    SelectPinForStatus,
    SelectPinForVerify,
    VerifyPin,
    SelectAuthKey,
    SignIntent,
    SelectVisual,
    BStatus,
    SelectBForStatus,
    VerifyB,
    SelectBForVerify,
    ReadFace,
    SelectFace,
    ReadCvc,
    SelectCvc,
    PresenceSign,
}

impl Card {
    fn purpose(self) -> &'static str {
        match self {
            Card::SelectJpki => "select JPKI application",
            Card::SelectAuthCert | Card::SelectAuthCertAfterPin => "select auth certificate",
            Card::ReadAuthCert | Card::ReadAuthCertAfterPin => "read auth certificate",
            Card::SelectPinForStatus | Card::SelectPinForVerify => "select auth PIN",
            Card::PinStatus => "read PIN tries left",
            Card::VerifyPin => "verify auth PIN",
            Card::SelectAuthKey => "select auth key",
            Card::SignIntent => "sign intent",
            Card::SelectVisual => "select visual application",
            Card::SelectBForStatus | Card::SelectBForVerify => "select collation number B",
            Card::BStatus => "read collation number tries left",
            Card::VerifyB => "verify collation number B",
            Card::SelectFace => "select card face",
            Card::ReadFace => "read card face",
            Card::SelectCvc => "select card-verifiable certificate",
            Card::ReadCvc => "read card-verifiable certificate",
            Card::PresenceSign => "card presence signature",
        }
    }

    /// For a file read: the file and the step that selects it.
    fn file(self) -> Option<(u16, Card)> {
        match self {
            Card::ReadAuthCert => Some((commands::jpki::AUTH_CERT, Card::SelectAuthCert)),
            Card::ReadAuthCertAfterPin => {
                Some((commands::jpki::AUTH_CERT, Card::SelectAuthCertAfterPin))
            }
            Card::ReadFace => Some((commands::visual::FACE, Card::SelectFace)),
            Card::ReadCvc => Some((commands::visual::CVC, Card::SelectCvc)),
            _ => None,
        }
    }

    /// For a SELECT EF before reading by offset: the read it precedes.
    fn read_after_select(self) -> Option<Card> {
        match self {
            Card::SelectAuthCert => Some(Card::ReadAuthCert),
            Card::SelectAuthCertAfterPin => Some(Card::ReadAuthCertAfterPin),
            Card::SelectFace => Some(Card::ReadFace),
            Card::SelectCvc => Some(Card::ReadCvc),
            _ => None,
        }
    }
}

/// Which short-EF-identifier forms the machine still uses. Each is given up for the rest of the
/// run the first time the card refuses it with `6A86`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SfiForms {
    /// READ BINARY `00 B0 (80|SFI) 00`.
    read: bool,
    /// VERIFY (with and without data) `00 20 00 (80|SFI)`.
    key: bool,
    /// COMPUTE DIGITAL SIGNATURE `80 2A 00 (80|SFI)`.
    sign: bool,
}

impl Default for SfiForms {
    fn default() -> Self {
        SfiForms {
            read: true,
            key: true,
            sign: true,
        }
    }
}

/// Whether `command` addresses its file or key by short EF identifier (and so may be answered
/// `6A86` by a card without that addressing).
fn addressed_by_sfi(command: &Command) -> bool {
    match command.ins {
        0xB0 => command.p1 & 0x80 != 0,
        0x20 | 0x2A => (0x81..=0x9E).contains(&command.p2),
        _ => false,
    }
}

/// Reads one TLV file in chunks; its length comes from the header of the first chunk.
#[derive(Debug, Clone, Default)]
struct FileRead {
    data: Vec<u8>,
    total: Option<usize>,
    /// The file was selected with SELECT EF, so it can be read at any offset.
    selected: bool,
}

#[derive(Debug, Clone)]
enum State {
    Card {
        step: Card,
        current: CardCommand,
        assembler: ResponseAssembler,
    },
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

/// A registration, eligibility or deregistration flow. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Machine {
    config: FlowConfig,
    op: Operation,
    way: Way,
    state: State,
    read: FileRead,
    sfi: SfiForms,
    auth_cert: Vec<u8>,
    /// The token keeps its auth certificate behind the PIN: read it after VERIFY.
    cert_after_pin: bool,
    consent: Option<ConsentDocument>,
    pin: Option<Zeroizing<Vec<u8>>>,
    collation_b: Option<Zeroizing<Vec<u8>>>,
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
            config,
            op,
            way,
            state: State::Consent,
            read: FileRead::default(),
            sfi: SfiForms::default(),
            auth_cert: Vec::new(),
            cert_after_pin: false,
            consent: None,
            pin: None,
            collation_b: None,
            face: None,
            face_match: None,
            cvc: Vec::new(),
            challenge: None,
            intent: None,
            evidence: None,
            proof_body: None,
        };
        m.card(Card::SelectJpki, commands::select_df(&commands::aid::JPKI));
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
    }

    /// The challenge, once received.
    pub fn challenge(&self) -> Option<&Challenge> {
        self.challenge.as_ref()
    }

    /// What to do next. Calling it again without feeding anything returns the same action.
    pub fn next_action(&self) -> Action {
        match &self.state {
            State::Card { current, .. } => Action::SendCard(current.clone()),
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
            State::Card { .. } => "a card response",
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
        self.collation_b = None;
        self.face = None;
        self.state = State::Done(outcome);
    }

    fn card_error(&mut self, what: &'static str, sw: Option<StatusWord>) {
        self.finish(Outcome::CardError {
            what,
            sw: sw.map(StatusWord::to_u16),
        });
    }

    fn card(&mut self, step: Card, command: Command) {
        let spends_attempt = matches!(step, Card::VerifyPin | Card::VerifyB);
        match command.to_bytes(LengthEncoding::Auto) {
            Ok(bytes) => {
                let assembler = ResponseAssembler::new(&command);
                self.state = State::Card {
                    step,
                    current: CardCommand {
                        command,
                        bytes,
                        purpose: step.purpose(),
                        spends_attempt,
                    },
                    assembler,
                };
            }
            Err(_) => self.card_error(step.purpose(), None),
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

    /// Starts reading the file of `step` (one of the `Read*` steps).
    fn start_read(&mut self, step: Card) {
        self.read = FileRead::default();
        self.read_next(step);
    }

    /// The next command of a file read: READ BINARY by SFI for the first chunk; SELECT EF and
    /// READ BINARY by offset for the rest, or for all of it once the card refused the SFI form.
    fn read_next(&mut self, step: Card) {
        let Some((fid, select)) = step.file() else {
            return self.card_error(step.purpose(), None);
        };
        let offset = self.read.data.len();
        let want = match self.read.total {
            Some(total) => total.saturating_sub(offset),
            None => self.config.read_chunk as usize,
        };
        let ne = want.clamp(1, self.config.read_chunk as usize) as u32;
        if !self.read.selected {
            if offset == 0 && self.sfi.read {
                match commands::read_binary_sfi((fid & 0x1F) as u8, 0, ne) {
                    Ok(cmd) => self.card(step, cmd),
                    Err(_) => self.card_error(step.purpose(), None),
                }
            } else {
                // An SFI read only carries an 8-bit offset: the rest by SELECT and offset.
                self.card(select, commands::select_ef(fid));
            }
            return;
        }
        let Ok(offset) = u16::try_from(offset) else {
            return self.card_error(step.purpose(), None);
        };
        match commands::read_binary(offset, ne) {
            Ok(cmd) => self.card(step, cmd),
            Err(_) => self.card_error(step.purpose(), None),
        }
    }

    /// Feeds the card's response (data and SW1-SW2) to the last command sent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no card command is outstanding.
    pub fn feed_card_response(&mut self, bytes: &[u8]) -> Result<(), MachineError> {
        let State::Card {
            step,
            current,
            assembler,
        } = &mut self.state
        else {
            return Err(self.unexpected("a card response"));
        };
        let step = *step;
        let by_sfi = addressed_by_sfi(&current.command);
        let Ok(response) = Response::parse(bytes) else {
            self.card_error(step.purpose(), None);
            return Ok(());
        };
        match assembler.feed(response) {
            Ok(Step::Done(response)) => self.on_card(step, response, by_sfi),
            Ok(Step::GetResponse(cmd) | Step::Resend(cmd)) => {
                let assembler = match &self.state {
                    State::Card { assembler, .. } => assembler.clone(),
                    _ => ResponseAssembler::new(&cmd),
                };
                match cmd.to_bytes(LengthEncoding::Auto) {
                    Ok(bytes) => {
                        self.state = State::Card {
                            step,
                            current: CardCommand {
                                command: cmd,
                                bytes,
                                purpose: step.purpose(),
                                spends_attempt: false,
                            },
                            assembler,
                        };
                    }
                    Err(_) => self.card_error(step.purpose(), None),
                }
            }
            Err(_) => self.card_error(step.purpose(), None),
        }
        Ok(())
    }

    /// Feeds a failure of the card link for the last command sent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no card command is outstanding.
    pub fn feed_card_failure(&mut self, failure: CardFailure) -> Result<(), MachineError> {
        let State::Card { current, .. } = &self.state else {
            return Err(self.unexpected("a card failure"));
        };
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

    fn on_card(&mut self, step: Card, r: Response, by_sfi: bool) {
        let ok = r.sw.is_success();
        // 6A86 to a command addressed by SFI: the card rejected P1-P2 before doing anything
        // (no PIN was checked, nothing signed), so the SELECT form may follow.
        let sfi_refused = by_sfi && r.sw == StatusWord::IncorrectP1P2;
        match step {
            Card::SelectJpki if ok => self.start_read(Card::ReadAuthCert),
            Card::ReadAuthCert
                if r.sw == StatusWord::SecurityStatusNotSatisfied
                    && self.way == Way::Pin
                    && self.read.data.is_empty() =>
            {
                // A smartphone token: the certificate comes after VERIFY.
                self.read = FileRead::default();
                self.cert_after_pin = true;
                self.after_auth_cert();
            }
            Card::ReadAuthCert | Card::ReadAuthCertAfterPin | Card::ReadFace | Card::ReadCvc => {
                self.on_read(step, r, sfi_refused);
            }
            Card::SelectAuthCert
            | Card::SelectAuthCertAfterPin
            | Card::SelectFace
            | Card::SelectCvc
                if ok =>
            {
                self.read.selected = true;
                match step.read_after_select() {
                    Some(read) => self.read_next(read),
                    None => self.card_error(step.purpose(), None),
                }
            }
            Card::PinStatus if sfi_refused => {
                self.sfi.key = false;
                self.ask_pin_status();
            }
            Card::SelectPinForStatus if ok => {
                self.card(Card::PinStatus, commands::verify_status(KeyRef::Current));
            }
            Card::SelectPinForStatus if r.sw == StatusWord::FileNotFound => {
                self.finish(Outcome::NoAuthPin);
            }
            // No auth PIN on the card (a face-authentication card): by SFI the key is not found.
            Card::PinStatus
                if matches!(
                    r.sw,
                    StatusWord::FileNotFound | StatusWord::ReferencedDataNotFound
                ) =>
            {
                self.finish(Outcome::NoAuthPin);
            }
            Card::PinStatus => match retries(r.sw) {
                Ok(Some(0)) | Err(true) => self.finish(Outcome::PinBlocked),
                Ok(Some(1)) if !self.config.allow_last_attempt => {
                    self.finish(Outcome::LastAttemptRefused);
                }
                Ok(n) => self.state = State::AskPin(n),
                Err(false) => self.card_error(step.purpose(), Some(r.sw)),
            },
            Card::SelectPinForVerify if ok => match self.pin.clone() {
                Some(pin) => self.card(Card::VerifyPin, commands::verify(KeyRef::Current, pin)),
                None => self.card_error(step.purpose(), None),
            },
            // Refused for its P2 before the PIN was looked at: no attempt was counted, so the
            // same PIN goes once more with SELECT EF. A VERIFY by current EF is never resent.
            Card::VerifyPin if sfi_refused => {
                self.sfi.key = false;
                self.verify_pin();
            }
            Card::VerifyPin => {
                self.pin = None;
                match r.sw {
                    StatusWord::Success if self.cert_after_pin => {
                        self.start_read(Card::ReadAuthCertAfterPin);
                    }
                    StatusWord::Success => self.sign_intent(),
                    StatusWord::RetriesRemaining(0)
                    | StatusWord::ReferenceDataBlocked
                    | StatusWord::AuthenticationMethodBlocked => self.finish(Outcome::PinBlocked),
                    StatusWord::RetriesRemaining(n) => {
                        self.finish(Outcome::WrongPin { retries_left: n });
                    }
                    sw => self.card_error(step.purpose(), Some(sw)),
                }
            }
            Card::SelectAuthKey if ok => match self.digest_info() {
                Some(di) => self.card(
                    Card::SignIntent,
                    commands::compute_signature(
                        SignScheme::Pkcs1DigestInfo,
                        KeyRef::Current,
                        di.to_vec(),
                    ),
                ),
                None => self.card_error(step.purpose(), None),
            },
            // Refused before computing anything: sign by the selected key instead.
            Card::SignIntent if sfi_refused => {
                self.sfi.sign = false;
                self.sign_intent();
            }
            Card::SignIntent if ok && r.data.len() == RSA_2048_LEN => self.submit_pin_proof(r.data),
            Card::SelectVisual if ok => self.ask_b_status(),
            Card::BStatus if sfi_refused => {
                self.sfi.key = false;
                self.ask_b_status();
            }
            Card::SelectBForStatus if ok => {
                self.card(Card::BStatus, commands::verify_status(KeyRef::Current));
            }
            Card::BStatus => match retries(r.sw) {
                Ok(Some(0)) | Err(true) => self.finish(Outcome::CollationNumberBlocked),
                Ok(Some(1)) if !self.config.allow_last_attempt => {
                    self.finish(Outcome::CollationLastAttemptRefused);
                }
                Ok(n) => self.state = State::AskB(n),
                Err(false) => self.card_error(step.purpose(), Some(r.sw)),
            },
            Card::SelectBForVerify if ok => match self.collation_b.clone() {
                Some(b) => self.card(Card::VerifyB, commands::verify(KeyRef::Current, b)),
                None => self.card_error(step.purpose(), None),
            },
            // As for the PIN: refused for its P2, counted nothing; once more with SELECT EF.
            Card::VerifyB if sfi_refused => {
                self.sfi.key = false;
                self.card(
                    Card::SelectBForVerify,
                    commands::select_ef(commands::visual::PIN_B),
                );
            }
            Card::VerifyB => {
                self.collation_b = None;
                match r.sw {
                    StatusWord::Success => self.start_read(Card::ReadFace),
                    StatusWord::RetriesRemaining(0)
                    | StatusWord::ReferenceDataBlocked
                    | StatusWord::AuthenticationMethodBlocked => {
                        self.finish(Outcome::CollationNumberBlocked);
                    }
                    StatusWord::RetriesRemaining(n) => {
                        self.finish(Outcome::CollationNumberWrong { retries_left: n });
                    }
                    sw => self.card_error(step.purpose(), Some(sw)),
                }
            }
            Card::PresenceSign if ok && !r.data.is_empty() => self.attest(r.data),
            _ => self.card_error(step.purpose(), Some(r.sw)),
        }
    }

    fn on_read(&mut self, step: Card, r: Response, sfi_refused: bool) {
        if r.sw == StatusWord::WrongLength && self.config.read_chunk > 256 {
            // The card (or reader) does not take extended length: short reads from now on.
            self.config.read_chunk = 256;
            return self.read_next(step);
        }
        if sfi_refused && self.read.data.is_empty() {
            // No reading by short EF identifier on this card: SELECT EF and offsets from now on.
            self.sfi.read = false;
            return self.read_next(step);
        }
        let end_of_file = matches!(r.sw, StatusWord::EndOfFileWarning) || r.sw.to_u16() == 0x6B00;
        if !(r.sw.is_success() || end_of_file) || r.data.is_empty() {
            return self.card_error(step.purpose(), Some(r.sw));
        }
        self.read.data.extend_from_slice(&r.data);
        if self.read.total.is_none() {
            match ber::parse_header(&self.read.data) {
                Ok((_, header, len)) => {
                    let total = header.saturating_add(len);
                    if total > MAX_FILE_LEN {
                        return self.card_error(step.purpose(), None);
                    }
                    self.read.total = Some(total);
                }
                Err(_) if self.read.data.len() < 8 && !end_of_file => {}
                Err(_) => return self.card_error(step.purpose(), None),
            }
        }
        let have = self.read.data.len();
        match self.read.total {
            Some(total) if have >= total => {
                let mut data = std::mem::take(&mut self.read.data);
                data.truncate(total);
                self.read = FileRead::default();
                self.on_file(step, data);
            }
            _ if end_of_file => self.card_error(step.purpose(), Some(r.sw)),
            _ => self.read_next(step),
        }
    }

    fn on_file(&mut self, step: Card, data: Vec<u8>) {
        match step {
            Card::ReadAuthCert => {
                self.auth_cert = data;
                self.after_auth_cert();
            }
            Card::ReadAuthCertAfterPin => {
                self.auth_cert = data;
                self.make_intent();
                self.sign_intent();
            }
            Card::ReadFace => match parse_face_record(&data) {
                Some(record) => {
                    self.face = Some(record);
                    self.state = State::MatchFace;
                }
                None => self.card_error(step.purpose(), None),
            },
            Card::ReadCvc => {
                self.cvc = data;
                self.start_session();
            }
            _ => self.card_error(step.purpose(), None),
        }
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

    /// COMPUTE DIGITAL SIGNATURE of the intent with the auth key: by SFI (`P2 = 97`), or after
    /// SELECT EF once the card refused that.
    fn sign_intent(&mut self) {
        if !self.sfi.sign {
            return self.card(
                Card::SelectAuthKey,
                commands::select_ef(commands::jpki::AUTH_KEY),
            );
        }
        match self.digest_info() {
            Some(di) => self.card(
                Card::SignIntent,
                commands::compute_signature(
                    SignScheme::Pkcs1DigestInfo,
                    KeyRef::for_file(commands::jpki::AUTH_KEY),
                    di.to_vec(),
                ),
            ),
            None => self.card_error(Card::SignIntent.purpose(), None),
        }
    }

    /// VERIFY of the auth PIN held: by SFI (`P2 = 98`), or SELECT EF and the current-EF form
    /// once the card refused that. Called once per PIN, and once more only after a `6A86`.
    fn verify_pin(&mut self) {
        if !self.sfi.key {
            return self.card(
                Card::SelectPinForVerify,
                commands::select_ef(commands::jpki::AUTH_PIN),
            );
        }
        match self.pin.clone() {
            Some(pin) => self.card(
                Card::VerifyPin,
                commands::verify(KeyRef::for_file(commands::jpki::AUTH_PIN), pin),
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
        if self.sfi.key {
            self.card(
                Card::PinStatus,
                commands::verify_status(KeyRef::for_file(commands::jpki::AUTH_PIN)),
            );
        } else {
            self.card(
                Card::SelectPinForStatus,
                commands::select_ef(commands::jpki::AUTH_PIN),
            );
        }
    }

    /// 照合番号B's tries left (an empty VERIFY, which spends nothing).
    fn ask_b_status(&mut self) {
        if self.sfi.key {
            self.card(
                Card::BStatus,
                commands::verify_status(KeyRef::for_file(commands::visual::PIN_B)),
            );
        } else {
            self.card(
                Card::SelectBForStatus,
                commands::select_ef(commands::visual::PIN_B),
            );
        }
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
                    commands::select_df(&commands::aid::VISUAL),
                ),
            }
        }
        Ok(())
    }

    /// Feeds the PIN the person typed. The machine then asks for the challenge and sends VERIFY
    /// once.
    ///
    /// # Errors
    /// [`MachineError::PinFormat`] (nothing sent; ask again) or [`MachineError::Unexpected`].
    pub fn feed_pin(&mut self, pin: Zeroizing<String>) -> Result<(), MachineError> {
        if !matches!(self.state, State::AskPin(_)) {
            return Err(self.unexpected("a PIN"));
        }
        if pin.len() != 4 || !pin.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MachineError::PinFormat);
        }
        self.pin = Some(Zeroizing::new(pin.as_bytes().to_vec()));
        self.start_session();
        Ok(())
    }

    /// Feeds 照合番号B as read from the card face (14 digits).
    ///
    /// # Errors
    /// [`MachineError::CollationNumberFormat`] (nothing sent) or [`MachineError::Unexpected`].
    pub fn feed_collation_number_b(&mut self, b: Zeroizing<String>) -> Result<(), MachineError> {
        if !matches!(self.state, State::AskB(_)) {
            return Err(self.unexpected("collation number B"));
        }
        if b.len() != 14 || !b.bytes().all(|c| c.is_ascii_digit()) {
            return Err(MachineError::CollationNumberFormat);
        }
        let value = Zeroizing::new(b.as_bytes().to_vec());
        self.collation_b = Some(value.clone());
        let key = if self.sfi.key {
            KeyRef::for_file(commands::visual::PIN_B)
        } else {
            // The status query selected EF 0012, which is still the current EF.
            KeyRef::Current
        };
        self.card(Card::VerifyB, commands::verify(key, value));
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
            self.start_read(Card::ReadCvc);
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
                Some(di) => self.card(Card::PresenceSign, presence_signature(di.to_vec())),
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
        self.collation_b = None;
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

/// COMPUTE DIGITAL SIGNATURE with the current 券面 AP's own key, no credential: `80 2A 00 00 Lc
/// DigestInfo 00` (card fact B.5). P2 `00` names no key file, which [`KeyRef`] cannot express.
fn presence_signature(digest_info: Vec<u8>) -> Command {
    Command::new(0x80, 0x2A, SignScheme::Pkcs1DigestInfo.p1(), 0x00)
        .with_data(digest_info)
        .with_ne(256)
}

/// `Ok(Some(n))` for `63Cx`, `Ok(None)` when the card does not report a count, `Err(true)` for
/// blocked, `Err(false)` for anything else.
fn retries(sw: StatusWord) -> Result<Option<u8>, bool> {
    match sw {
        StatusWord::RetriesRemaining(n) => Ok(Some(n)),
        StatusWord::Success | StatusWord::WarningNvChanged => Ok(None),
        StatusWord::ReferenceDataBlocked | StatusWord::AuthenticationMethodBlocked => Err(true),
        _ => Err(false),
    }
}

/// Splits the card-face record `FF20 { DF21 … DF2A }` (card fact B.7) into what the evidence
/// needs: the three signed segments' digests, the signature, the public key and the photo.
fn parse_face_record(file: &[u8]) -> Option<FaceRecord> {
    let (outer, _) = ber::parse_one(file).ok()?;
    if outer.tag != 0xFF20 {
        return None;
    }
    let body = outer.value;
    let base = outer.header_len;
    let mut spans: Vec<(u32, usize, usize, &[u8])> = Vec::new();
    let mut at = 0usize;
    for item in ber::iter(body) {
        let tlv = item.ok()?;
        let len = tlv.total_len();
        spans.push((tlv.tag, base + at, base + at + len, tlv.value));
        at += len;
    }
    let find = |tag: u32| spans.iter().position(|s| s.0 == tag);
    let segment = |first: u32, last: u32| -> Option<&[u8]> {
        let (a, b) = (find(first)?, find(last)?);
        // The signed segments are runs of consecutive objects.
        if b < a || (a..b).any(|i| spans[i].2 != spans[i + 1].1) {
            return None;
        }
        file.get(spans[a].1..spans[b].2)
    };
    let covered = segment(0xDF22, 0xDF24)?;
    let digests = [
        Sha256Digest::of(covered),
        Sha256Digest::of(segment(0xDF25, 0xDF26)?),
        Sha256Digest::of(segment(0xDF27, 0xDF27)?),
    ];
    let value = |tag: u32| find(tag).map(|i| spans[i].3.to_vec());
    Some(FaceRecord {
        digests,
        covered: Zeroizing::new(covered.to_vec()),
        signature: value(0xDF28)?,
        public_key: value(0xDF24)?,
        photo: Zeroizing::new(value(0xDF27)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn face_record_parts_are_found_by_tag() {
        let tlv = |tag: u32, v: &[u8]| ber::to_vec(tag, v).unwrap();
        let seg1 = [
            tlv(0xDF22, b"19800217"),
            tlv(0xDF23, b"1"),
            tlv(0xDF24, &[0x90, 1, 3]),
        ]
        .concat();
        let seg2 = [tlv(0xDF25, b"name"), tlv(0xDF26, b"addr")].concat();
        let seg3 = tlv(0xDF27, b"photo");
        let inner = [
            tlv(0xDF21, &[0; 18]),
            seg1.clone(),
            seg2.clone(),
            seg3.clone(),
            tlv(0xDF28, &[7; 256]),
            tlv(0xDF29, b"20340217"),
        ]
        .concat();
        let file = tlv(0xFF20, &inner);
        let r = parse_face_record(&file).unwrap();
        assert_eq!(r.digests[0], Sha256Digest::of(&seg1));
        assert_eq!(r.digests[1], Sha256Digest::of(&seg2));
        assert_eq!(r.digests[2], Sha256Digest::of(&seg3));
        assert_eq!(r.signature, vec![7; 256]);
        assert_eq!(r.public_key, vec![0x90, 1, 3]);
        assert_eq!(&r.photo[..], b"photo");
        assert!(parse_face_record(&file[..file.len() - 3]).is_none());
        assert!(parse_face_record(&tlv(0xFF10, &inner)).is_none());
    }
}
