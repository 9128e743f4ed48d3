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
//! `attempt_may_have_been_counted`; the PIN is held zeroized, moves into its one VERIFY and is
//! wiped once the card has answered.
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
//!
//! # Steps as types
//!
//! The machine keeps what holds for the whole flow (settings, operation, PIN or face, the card
//! link); everything else belongs to the step the flow is at, and moves into the next step
//! when it is done. Nothing is optional because it is "not there yet": a step that has no
//! challenge has no field for one. The machine is not `Clone`, so nothing in it is ever
//! duplicated, and its `Debug` names the step only.
//!
//! | Step | Owns | Waits for | Next |
//! |------|------|-----------|------|
//! | SELECT JPKI, READ auth certificate | — | card | consent request (withdrawal: PIN tries) |
//! | consent request | the certificate, or "after the PIN" (token) | HTTP | consent on screen |
//! | consent on screen | the document, its hash, the certificate | person | PIN tries / SELECT visual |
//! | PIN tries | certificate, agreed hash (or withdrawal) | card | PIN pad |
//! | PIN pad | tries left, certificate, agreed hash | person | Start with the PIN |
//! | Start (PIN) | certificate, agreed hash, **the PIN** | HTTP | VERIFY (the PIN moves into it) |
//! | VERIFY | challenge, and the intent with its certificate (token: neither yet) | card | signature (token: READ certificate) |
//! | READ certificate (token) | challenge | card | signature |
//! | signature | certificate, challenge, intent | card | proof |
//! | SELECT visual, 照合番号B tries | certificate, agreed hash | card | 照合番号B |
//! | 照合番号B, its VERIFY, READ face | certificate, agreed hash | person, card | face match |
//! | face match | the face record (birth-date segment zeroized), **the photo** (shared, zeroized) | terminal | READ CVC (the photo goes) |
//! | READ CVC | face record, match result | card | Start (face) |
//! | Start (face) | face record, match result, CVC | HTTP | card presence signature |
//! | card presence signature | face record, match, CVC, challenge, intent | card | attestation |
//! | attestation | certificate, challenge, face evidence and its JCS | terminal | proof |
//! | proof | challenge; the request's body is the proof | HTTP | end, resend, or polling |
//! | polling | the pending status (poll token) | HTTP | end |
//! | end | the [`Outcome`] | — | — |
//!
//! A refusal, a cancellation or a lost card ends the flow from any step; what the step held
//! is dropped with it (and wiped, for the PIN, the birth-date segment and the photo).

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
use zeroize::{Zeroize, Zeroizing};

use crate::consent::ConsentDocument;
use crate::errors::ErrorBody;
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
    /// [`Machine::feed_face_match`]. The photo is shared, not copied, and wiped once the
    /// machine has moved on and the caller has dropped this action.
    MatchFace {
        /// The photo.
        photo: Arc<Zeroizing<Vec<u8>>>,
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

// ---- What the steps own ----------------------------------------------------------------------

/// The auth certificate on the PIN path.
enum AuthCert {
    /// Read before the consent (a card).
    Read(Vec<u8>),
    /// Kept behind the PIN (a smartphone token): read after VERIFY.
    AfterPin,
}

/// The way on from the first certificate read, with the certificate as that way has it. The
/// face path refuses a certificate behind a PIN, so it always holds one.
enum Route {
    Pin(AuthCert),
    Face(Vec<u8>),
}

/// What the challenge's consent is checked against.
#[derive(Clone, Copy)]
enum Agreed {
    /// The hash of the document shown and agreed to.
    Consent(Sha256Digest),
    /// A withdrawal shows no consent.
    Withdrawal,
}

/// The consent on screen.
struct ConsentStep {
    document: ConsentDocument,
    /// Its hash, checked against the consent reference when the document arrived.
    digest: Sha256Digest,
    route: Route,
}

/// The PIN pad, after the tries left were read.
struct PinAsk {
    retries_left: Option<u8>,
    cert: AuthCert,
    agreed: Agreed,
}

/// The face path's data between the consent and the card face.
struct FaceSoFar {
    cert: Vec<u8>,
    agreed: Sha256Digest,
}

/// 照合番号B asked, after its tries left were read.
struct BAsk {
    retries_left: Option<u8>,
    so_far: FaceSoFar,
}

/// The card-face record's parts the evidence needs. Not `Clone`: the covered segment exists
/// once, zeroized.
struct FaceRecord {
    digests: [Sha256Digest; 3],
    /// The first signed segment (`DF22`–`DF24` as encoded): birth date and sex.
    covered: Zeroizing<Vec<u8>>,
    signature: Vec<u8>,
    public_key: Vec<u8>,
}

impl FaceRecord {
    /// Splits a parsed card face into the record the evidence needs and the photo, moving
    /// each part (the segments not signed over for the evidence are dropped, so wiped).
    fn split(face: SignedFace) -> (FaceRecord, Zeroizing<Vec<u8>>) {
        let digests = face.digests().map(Sha256Digest);
        let SignedFace {
            segments,
            signature,
            card_key,
            photo,
            ..
        } = face;
        let [covered, _, _] = segments;
        let record = FaceRecord {
            digests,
            covered,
            signature,
            public_key: card_key,
        };
        (record, photo)
    }
}

/// The live face matched against the card photo. The photo is this step's alone: shared
/// with [`Action::MatchFace`] without a copy, and gone with the step.
struct MatchStep {
    so_far: FaceSoFar,
    face: FaceRecord,
    photo: Arc<Zeroizing<Vec<u8>>>,
}

/// The face path once the face matched.
struct Matched {
    so_far: FaceSoFar,
    face: FaceRecord,
    face_match: FaceMatch,
}

/// The face path waiting for the challenge.
struct FaceStart {
    matched: Matched,
    cvc: Vec<u8>,
}

/// What the Start request carries on to the challenge.
enum StartStep {
    /// The PIN, typed and held until the challenge lets VERIFY go.
    Pin {
        cert: AuthCert,
        agreed: Agreed,
        pin: Pin,
    },
    Face(Box<FaceStart>),
}

/// The intent built, ready for the auth key.
struct Signing {
    cert: Vec<u8>,
    challenge: Challenge,
    intent: Intent,
}

/// What follows a VERIFY of the auth PIN.
enum AfterVerify {
    /// Sign the intent made from the certificate read before.
    Sign(Signing),
    /// A smartphone token: read the certificate, then make the intent.
    ReadCert(Challenge),
}

/// The face path's card presence signature.
struct Presence {
    cert: Vec<u8>,
    face: FaceRecord,
    face_match: FaceMatch,
    cvc: Vec<u8>,
    challenge: Challenge,
    intent: Intent,
}

/// The terminal's attestation of the face evidence.
struct AttestStep {
    cert: Vec<u8>,
    challenge: Challenge,
    /// The evidence without its covered segment, which waits zeroized beside it.
    evidence: FaceEvidence,
    covered: Zeroizing<Vec<u8>>,
    /// `JCS(evidence)`, with the segment.
    message: Zeroizing<Vec<u8>>,
}

/// What an HTTP request is for, with what its answer moves on with.
enum HttpStep {
    Consent {
        route: Route,
    },
    Start(StartStep),
    /// The request's body is the proof: its one copy.
    Proof {
        challenge: Challenge,
    },
}

/// A request to the service under way.
struct HttpWait {
    request: HttpRequest,
    step: HttpStep,
}

/// A pending registration polled.
struct PollWait {
    pending: Box<RegistrationPending>,
    request: HttpRequest,
    at: UtcTime,
}

/// The flow's steps on the card, each with what it hands on. Each runs one of the card
/// crate's operations ([`mynacard_card::ops`]), which own the card's rules and fall-backs.
enum CardStep {
    SelectJpki,
    ReadAuthCert,
    PinStatus { cert: AuthCert, agreed: Agreed },
    VerifyPin(Box<AfterVerify>),
    ReadAuthCertAfterPin(Box<Challenge>),
    SignIntent(Box<Signing>),
    SelectVisual(FaceSoFar),
    BStatus(FaceSoFar),
    VerifyB(FaceSoFar),
    ReadFace(FaceSoFar),
    ReadCvc(Box<Matched>),
    PresenceSign(Box<Presence>),
}

impl CardStep {
    fn purpose(&self) -> &'static str {
        match self {
            CardStep::SelectJpki => "select JPKI application",
            CardStep::ReadAuthCert | CardStep::ReadAuthCertAfterPin(_) => "read auth certificate",
            CardStep::PinStatus { .. } => "read PIN tries left",
            CardStep::VerifyPin(_) => "verify auth PIN",
            CardStep::SignIntent(_) => "sign intent",
            CardStep::SelectVisual(_) => "select visual application",
            CardStep::BStatus(_) => "read collation number tries left",
            CardStep::VerifyB(_) => "verify collation number B",
            CardStep::ReadFace(_) => "read card face",
            CardStep::ReadCvc(_) => "read card-verifiable certificate",
            CardStep::PresenceSign(_) => "card presence signature",
        }
    }

    /// Whether the step's key is 照合番号B rather than the auth PIN.
    fn collation(&self) -> bool {
        matches!(self, CardStep::BStatus(_) | CardStep::VerifyB(_))
    }

    fn challenge(&self) -> Option<&Challenge> {
        match self {
            CardStep::VerifyPin(after) => match &**after {
                AfterVerify::Sign(s) => Some(&s.challenge),
                AfterVerify::ReadCert(c) => Some(c),
            },
            CardStep::ReadAuthCertAfterPin(c) => Some(c),
            CardStep::SignIntent(s) => Some(&s.challenge),
            CardStep::PresenceSign(p) => Some(&p.challenge),
            _ => None,
        }
    }
}

/// The card operation a step runs.
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
struct CardWait {
    step: CardStep,
    op: CardOp,
    exchange: Exchange,
    /// Shared with every [`Action::SendCard`] of this APDU, so a PIN in it is held once.
    current: Arc<CardCommand>,
}

/// Where the flow is, with what exists at that point and nothing else.
enum State {
    Card(Box<CardWait>),
    Consent(Box<ConsentStep>),
    AskPin(Box<PinAsk>),
    AskB(Box<BAsk>),
    MatchFace(Box<MatchStep>),
    Attest(Box<AttestStep>),
    Http(Box<HttpWait>),
    Poll(Box<PollWait>),
    Done(Outcome),
}

impl State {
    fn waiting_for(&self) -> &'static str {
        match self {
            State::Card(_) => "a card response",
            State::Consent(_) => "the consent answer",
            State::AskPin(_) => "the PIN",
            State::AskB(_) => "collation number B",
            State::MatchFace(_) => "the face match",
            State::Attest(_) => "the attestation signature",
            State::Http(_) => "an HTTP response",
            State::Poll(_) => "a poll answer",
            State::Done(_) => "nothing (the flow has ended)",
        }
    }
}

/// What holds for the whole flow: its settings, what it does, how, and the card link.
struct Flow {
    config: FlowConfig,
    op: Operation,
    way: Way,
    link: Link,
}

/// A registration, eligibility or deregistration flow. See the [module documentation](self).
///
/// Not `Clone`: a flow holds the typed PIN, the card photo and the birth-date segment once.
/// Its `Debug` shows the flow and the step, none of their data.
pub struct Machine {
    flow: Flow,
    state: State,
}

impl fmt::Debug for Machine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let step = match &self.state {
            State::Card(wait) => wait.step.purpose(),
            other => other.waiting_for(),
        };
        f.debug_struct("Machine")
            .field("config", &self.flow.config)
            .field("op", &self.flow.op)
            .field("method", &self.method())
            .field("step", &step)
            .finish_non_exhaustive()
    }
}

impl Flow {
    fn new(config: FlowConfig, op: Operation, way: Way) -> Flow {
        Flow {
            link: Link::with_max_read(config.read_chunk as usize),
            config,
            op,
            way,
        }
    }
}

impl Machine {
    fn new(config: FlowConfig, op: Operation, way: Way) -> Machine {
        let mut flow = Flow::new(config, op, way);
        let state = flow.card(
            CardStep::SelectJpki,
            CardOp::Select(SelectApplication::new(Application::Jpki)),
        );
        Machine { flow, state }
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
        self.flow.op
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.flow.method()
    }

    /// Sets the READ BINARY chunk size (1–65536) for the reads still to come: a driver whose
    /// link carries extended-length APDUs raises it to read a file in one command. A card that
    /// refuses a long read (`6700`) is read in 256-byte chunks from then on.
    pub fn set_read_chunk(&mut self, chunk: u32) {
        self.flow.config.read_chunk = chunk.clamp(1, 65_536);
        self.flow.link = Link::with_max_read(self.flow.config.read_chunk as usize);
    }

    /// The challenge, while the flow holds it: from the service's answer to the Start request
    /// until the answer to the proof.
    pub fn challenge(&self) -> Option<&Challenge> {
        match &self.state {
            State::Card(wait) => wait.step.challenge(),
            State::Attest(a) => Some(&a.challenge),
            State::Http(wait) => match &wait.step {
                HttpStep::Proof { challenge } => Some(challenge),
                _ => None,
            },
            _ => None,
        }
    }

    /// What to do next. Calling it again without feeding anything returns the same action.
    pub fn next_action(&self) -> Action {
        match &self.state {
            State::Card(wait) => Action::SendCard(Arc::clone(&wait.current)),
            State::Consent(step) => Action::ShowConsent(ConsentPrompt {
                document: step.document.clone(),
                op: self.flow.op,
                locale: self.flow.config.locale.clone(),
            }),
            State::AskPin(ask) => Action::AskPin {
                retries_left: ask.retries_left,
            },
            State::AskB(ask) => Action::AskCollationNumberB {
                retries_left: ask.retries_left,
            },
            State::MatchFace(step) => Action::MatchFace {
                photo: Arc::clone(&step.photo),
            },
            State::Attest(step) => Action::SignAttestation {
                message: step.message.to_vec(),
            },
            State::Http(wait) => Action::SendHttp(wait.request.clone()),
            State::Poll(poll) => Action::Poll(PollStep {
                request: poll.request.clone(),
                at: poll.at,
                pending: (*poll.pending).clone(),
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

    fn unexpected(&self, got: &'static str) -> MachineError {
        MachineError::Unexpected {
            expected: self.state.waiting_for(),
            got,
        }
    }

    /// Moves the state into `step`, which returns the next state, or gives it back unchanged
    /// (`Err`) when it is not the one `got` may be fed to.
    fn advance(
        &mut self,
        got: &'static str,
        step: impl FnOnce(&mut Flow, State) -> Result<State, State>,
    ) -> Result<(), MachineError> {
        // The placeholder is never seen: `step` has the state, and one of its two results
        // replaces the placeholder before this returns.
        let state = std::mem::replace(&mut self.state, State::Done(Outcome::Cancelled));
        match step(&mut self.flow, state) {
            Ok(next) => {
                self.state = next;
                Ok(())
            }
            Err(same) => {
                self.state = same;
                Err(self.unexpected(got))
            }
        }
    }

    /// Feeds the card's response (data and SW1-SW2) to the last command sent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no card command is outstanding.
    pub fn feed_card_response(&mut self, bytes: &[u8]) -> Result<(), MachineError> {
        self.advance("a card response", |flow, state| match state {
            State::Card(wait) => Ok(flow.on_card_response(*wait, bytes)),
            other => Err(other),
        })
    }

    /// Feeds a failure of the card link for the last command sent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no card command is outstanding.
    pub fn feed_card_failure(&mut self, failure: CardFailure) -> Result<(), MachineError> {
        self.advance("a card failure", |_, state| match state {
            State::Card(wait) => {
                let counted = wait.current.spends_attempt;
                Ok(State::Done(match failure {
                    CardFailure::Removed | CardFailure::Reset => Outcome::CardRemoved {
                        attempt_may_have_been_counted: counted,
                    },
                    CardFailure::Transport if counted => Outcome::CardRemoved {
                        attempt_may_have_been_counted: true,
                    },
                    CardFailure::Transport => Outcome::CardError {
                        what: wait.current.purpose,
                        sw: None,
                    },
                }))
            }
            other => Err(other),
        })
    }

    /// Feeds the person's answer to the consent.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the machine is not showing the consent.
    pub fn feed_consent(&mut self, agreed: bool) -> Result<(), MachineError> {
        self.advance("the consent answer", |flow, state| match state {
            State::Consent(_) if !agreed => Ok(State::Done(Outcome::ConsentDeclined)),
            State::Consent(step) => {
                let ConsentStep { digest, route, .. } = *step;
                Ok(match route {
                    Route::Pin(cert) => flow.ask_pin_status(cert, Agreed::Consent(digest)),
                    Route::Face(cert) => flow.card(
                        CardStep::SelectVisual(FaceSoFar {
                            cert,
                            agreed: digest,
                        }),
                        CardOp::Select(SelectApplication::new(Application::Visual)),
                    ),
                })
            }
            other => Err(other),
        })
    }

    /// Feeds the PIN the person typed (a [`Pin`], checked when it was made). The machine then
    /// asks for the challenge and sends VERIFY once; the PIN goes into that VERIFY and is not
    /// kept.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the machine does not wait for a PIN.
    pub fn feed_pin(&mut self, pin: Pin) -> Result<(), MachineError> {
        self.advance("a PIN", |flow, state| match state {
            State::AskPin(ask) => {
                let PinAsk { cert, agreed, .. } = *ask;
                Ok(flow.start_session(StartStep::Pin { cert, agreed, pin }))
            }
            other => Err(other),
        })
    }

    /// Feeds 照合番号B as read from the card face; it goes to the card once, at once.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the machine does not wait for it.
    pub fn feed_collation_number_b(&mut self, b: CollationB) -> Result<(), MachineError> {
        self.advance("collation number B", |flow, state| match state {
            State::AskB(ask) => Ok(flow.card(
                CardStep::VerifyB(ask.so_far),
                CardOp::Verify(VerifyOnce::collation_b(&b)),
            )),
            other => Err(other),
        })
    }

    /// Feeds the terminal's face-match result. A non-match ends the flow without contacting the
    /// service. Either way the photo is dropped.
    ///
    /// # Errors
    /// [`MachineError::FaceScore`] or [`MachineError::Unexpected`].
    pub fn feed_face_match(&mut self, result: FaceMatch) -> Result<(), MachineError> {
        if !matches!(self.state, State::MatchFace(_)) {
            return Err(self.unexpected("a face match"));
        }
        if result.score_permille > 1000 || result.threshold_permille > 1000 {
            return Err(MachineError::FaceScore);
        }
        self.advance("a face match", |flow, state| match state {
            State::MatchFace(step) => {
                let MatchStep { so_far, face, .. } = *step;
                if result.decision != FaceDecision::Match
                    || result.score_permille < result.threshold_permille
                {
                    return Ok(State::Done(Outcome::FaceNotMatched));
                }
                let matched = Matched {
                    so_far,
                    face,
                    face_match: result,
                };
                Ok(flow.read(CardStep::ReadCvc(Box::new(matched)), catalogue::visual::CVC))
            }
            other => Err(other),
        })
    }

    /// Feeds the attestation signature (64 bytes `r ‖ s`).
    ///
    /// # Errors
    /// [`MachineError::Unexpected`].
    pub fn feed_attestation(&mut self, signature: Vec<u8>) -> Result<(), MachineError> {
        self.advance("an attestation signature", |flow, state| match state {
            State::Attest(step) => {
                let AttestStep {
                    cert,
                    challenge,
                    mut evidence,
                    mut covered,
                    ..
                } = *step;
                evidence.card_face_covered = Bytes(std::mem::take(&mut *covered));
                let proof = Proof::AccreditedFace {
                    v: V1,
                    auth_cert: Bytes(cert),
                    face_evidence: evidence,
                    attestation: TerminalAttestation {
                        alg: ATTESTATION_ALG_ES256.to_owned(),
                        terminal_id: flow.config.terminal_id.clone(),
                        signature: Bytes(signature),
                    },
                };
                Ok(flow.submit(challenge, proof))
            }
            other => Err(other),
        })
    }

    /// Ends the flow at the person's or terminal's request. Not possible once a proof is on its
    /// way (its answer decides the outcome).
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] after the proof was sent or the flow ended.
    pub fn cancel(&mut self) -> Result<(), MachineError> {
        self.advance("a cancellation", |_, state| match state {
            State::Done(_) => Err(state),
            State::Http(wait) if matches!(wait.step, HttpStep::Proof { .. }) => {
                Err(State::Http(wait))
            }
            // The service has the registration; cancelling only stops the waiting.
            State::Poll(poll) => Ok(State::Done(Outcome::Pending(poll.pending))),
            // Whatever the step held (PIN, photo, evidence) goes with it.
            _ => Ok(State::Done(Outcome::Cancelled)),
        })
    }

    /// Feeds the service's answer to the last request.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no request is outstanding.
    pub fn feed_http_response(&mut self, response: HttpResponse) -> Result<(), MachineError> {
        self.advance("an HTTP response", |flow, state| match state {
            State::Poll(poll) => Ok(flow.on_poll_answer(*poll, response)),
            State::Http(wait) => Ok(flow.on_http_answer(*wait, response)),
            other => Err(other),
        })
    }

    /// Feeds a failed HTTP exchange. A proof is resent (it is idempotent) up to
    /// [`FlowConfig::proof_retries`] times.
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when no request is outstanding.
    pub fn feed_http_failure(&mut self, failure: HttpFailure) -> Result<(), MachineError> {
        // Whether the request may have arrived matters only for a proof, which is resent
        // either way; any other request is not resent.
        let _ = failure;
        self.advance("an HTTP failure", |flow, state| match state {
            State::Poll(poll) => {
                // A poll changes nothing at the service: ask again after the same pause.
                let PollWait {
                    pending, request, ..
                } = *poll;
                let delay = pending.poll.retry_after;
                Ok(flow.schedule_poll(pending, delay, request.attempt.saturating_add(1)))
            }
            State::Http(wait) => Ok(match wait.step {
                HttpStep::Proof { .. } if wait.request.attempt <= flow.config.proof_retries => {
                    flow.resend(*wait)
                }
                HttpStep::Proof { .. } => State::Done(Outcome::ServiceUnreachable {
                    proof_may_have_arrived: true,
                }),
                _ => State::Done(Outcome::ServiceUnreachable {
                    proof_may_have_arrived: false,
                }),
            }),
            other => Err(other),
        })
    }

    /// Ends a flow that waits for a pending registration with [`Outcome::Pending`], which holds
    /// what is needed to poll later ([`Machine::poll_registration`]).
    ///
    /// # Errors
    /// [`MachineError::Unexpected`] when the flow is not waiting for a pending registration.
    pub fn stop_waiting(&mut self) -> Result<(), MachineError> {
        self.advance("a stop of the waiting", |_, state| match state {
            State::Poll(poll) => Ok(State::Done(Outcome::Pending(poll.pending))),
            other => Err(other),
        })
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
        if check_poll_target(&pending).is_err() {
            return Err(MachineError::Unexpected {
                expected: "a pending registration of this protocol",
                got: "a status with another poll target",
            });
        }
        let flow = Flow::new(config, Operation::RegisterInsuranceUse, Way::Pin);
        let delay = pending.poll.retry_after;
        let state = flow.schedule_poll(Box::new(pending), delay, 1);
        Ok(Machine { flow, state })
    }

    /// The proof as sent (JSON), while it is on its way (sent, resent, or waiting for its
    /// answer): a terminal may keep it to resend after a crash of its own.
    pub fn proof_body(&self) -> Option<&[u8]> {
        match &self.state {
            State::Http(wait) if matches!(wait.step, HttpStep::Proof { .. }) => {
                wait.request.body.as_deref()
            }
            _ => None,
        }
    }

    /// Whether the machine holds a typed PIN (only between the PIN pad and the VERIFY).
    #[cfg(test)]
    fn holds_pin(&self) -> bool {
        matches!(&self.state, State::Http(wait)
            if matches!(wait.step, HttpStep::Start(StartStep::Pin { .. })))
    }

    /// Whether the machine holds the card photo (only while the face is matched).
    #[cfg(test)]
    fn holds_photo(&self) -> bool {
        matches!(&self.state, State::MatchFace(_))
    }
}

// ---- The transitions: each takes the step it leaves and returns the next -------------------

impl Flow {
    fn method(&self) -> Method {
        match self.way {
            Way::Pin => Method::PinSignature,
            Way::Face => Method::AccreditedFace,
        }
    }

    fn attempt_policy(&self) -> AttemptPolicy {
        if self.config.allow_last_attempt {
            AttemptPolicy::AllowLastAttempt
        } else {
            AttemptPolicy::KeepLastAttempt
        }
    }

    /// Starts `op` for `step`.
    fn card(&mut self, step: CardStep, op: CardOp) -> State {
        self.drive(step, op, None)
    }

    /// Reads the whole file `fid` for `step`.
    fn read(&mut self, step: CardStep, fid: u16) -> State {
        let purpose = step.purpose();
        self.card(step, CardOp::Read(ReadFile::new(fid, Extent::Tlv, purpose)))
    }

    /// Starts or feeds `op`: its next command goes out, or its result moves the flow on.
    fn drive(&mut self, step: CardStep, mut op: CardOp, response: Option<Response>) -> State {
        match op.advance(&mut self.link, response) {
            Ok(ops::Step::Send(command)) => match Exchange::new(&self.link, &command) {
                Ok(exchange) => emit(step, op, exchange, command.attempt.is_some()),
                Err(e) => self.on_card_error(step, &e, false),
            },
            Ok(ops::Step::Done(result)) => self.on_card(step, result),
            Err(e) => {
                let nothing_read = matches!(&op, CardOp::Read(read) if read.bytes_read() == 0);
                self.on_card_error(step, &e, nothing_read)
            }
        }
    }

    fn on_card_response(&mut self, wait: CardWait, bytes: &[u8]) -> State {
        let CardWait {
            step,
            op,
            mut exchange,
            ..
        } = wait;
        let Ok(response) = Response::parse(bytes) else {
            return card_error(step.purpose(), None);
        };
        match exchange.feed(response) {
            Ok(None) => emit(step, op, exchange, false),
            Ok(Some(response)) => self.drive(step, op, Some(response)),
            Err(e) => self.on_card_error(step, &e, false),
        }
    }

    /// A card operation finished: the flow moves on with what its step handed over.
    fn on_card(&mut self, step: CardStep, result: CardResult) -> State {
        let purpose = step.purpose();
        match (step, result) {
            (CardStep::SelectJpki, CardResult::Done) => {
                self.read(CardStep::ReadAuthCert, catalogue::jpki::AUTH_CERT)
            }
            (CardStep::ReadAuthCert, CardResult::File(der)) => {
                let route = match self.way {
                    Way::Pin => Route::Pin(AuthCert::Read(der)),
                    Way::Face => Route::Face(der),
                };
                self.after_auth_cert(route)
            }
            (CardStep::ReadAuthCertAfterPin(challenge), CardResult::File(der)) => {
                let intent = self.make_intent(&challenge, &der);
                self.sign_intent(Signing {
                    cert: der,
                    challenge: *challenge,
                    intent,
                })
            }
            (CardStep::PinStatus { cert, agreed }, CardResult::Status(status)) => {
                match check_attempt(PinKind::JpkiAuth, status, self.attempt_policy()) {
                    Ok(retries_left) => State::AskPin(Box::new(PinAsk {
                        retries_left,
                        cert,
                        agreed,
                    })),
                    Err(e) => card_outcome(purpose, false, &e),
                }
            }
            (CardStep::VerifyPin(after), CardResult::Done) => match *after {
                AfterVerify::Sign(signing) => self.sign_intent(signing),
                AfterVerify::ReadCert(challenge) => self.read(
                    CardStep::ReadAuthCertAfterPin(Box::new(challenge)),
                    catalogue::jpki::AUTH_CERT,
                ),
            },
            (CardStep::SignIntent(signing), CardResult::Signature(signature)) => {
                let Signing {
                    cert,
                    challenge,
                    intent,
                } = *signing;
                let proof = Proof::PinSignature {
                    v: V1,
                    intent,
                    auth_cert: Bytes(cert),
                    signature: Bytes(signature),
                };
                self.submit(challenge, proof)
            }
            (CardStep::SelectVisual(so_far), CardResult::Done) => self.card(
                CardStep::BStatus(so_far),
                CardOp::Status(PinStatusRead::new(PinKind::VisualCollationB)),
            ),
            (CardStep::BStatus(so_far), CardResult::Status(status)) => {
                match check_attempt(PinKind::VisualCollationB, status, self.attempt_policy()) {
                    Ok(retries_left) => State::AskB(Box::new(BAsk {
                        retries_left,
                        so_far,
                    })),
                    Err(e) => card_outcome(purpose, true, &e),
                }
            }
            (CardStep::VerifyB(so_far), CardResult::Done) => {
                self.read(CardStep::ReadFace(so_far), catalogue::visual::FACE)
            }
            (CardStep::ReadFace(so_far), CardResult::File(data)) => {
                // The whole record: name, address, birth date, photo.
                let data = Zeroizing::new(data);
                match SignedFace::parse(&data) {
                    Ok(face) => {
                        let (face, photo) = FaceRecord::split(face);
                        State::MatchFace(Box::new(MatchStep {
                            so_far,
                            face,
                            photo: Arc::new(photo),
                        }))
                    }
                    Err(_) => card_error(purpose, None),
                }
            }
            (CardStep::ReadCvc(matched), CardResult::File(cvc)) => {
                self.start_session(StartStep::Face(Box::new(FaceStart {
                    matched: *matched,
                    cvc,
                })))
            }
            (CardStep::PresenceSign(presence), CardResult::Signature(signature)) => {
                self.attest(*presence, signature)
            }
            _ => card_error(purpose, None),
        }
    }

    /// A card operation was refused: the typed outcome for the person, or for a smartphone
    /// token's certificate behind its PIN, the way on. `nothing_read` when a file read failed
    /// before any of the file arrived.
    fn on_card_error(
        &mut self,
        step: CardStep,
        e: &mynacard_card::Error,
        nothing_read: bool,
    ) -> State {
        match (step, e) {
            (CardStep::ReadAuthCert, mynacard_card::Error::Card { sw, .. })
                if nothing_read
                    && *sw == StatusWord::SecurityStatusNotSatisfied
                    && self.way == Way::Pin =>
            {
                self.after_auth_cert(Route::Pin(AuthCert::AfterPin))
            }
            (step, e) => card_outcome(step.purpose(), step.collation(), e),
        }
    }

    /// After the first read of the auth certificate (or its `6982`): the consent, or for a
    /// withdrawal straight the tries left.
    fn after_auth_cert(&mut self, route: Route) -> State {
        match (self.op, route) {
            (Operation::DeregisterInsuranceUse, Route::Pin(cert)) => {
                self.ask_pin_status(cert, Agreed::Withdrawal)
            }
            (_, route) => http(
                HttpStep::Consent { route },
                HttpMethod::Get,
                paths::CONSENT.to_owned(),
                None,
            ),
        }
    }

    /// The auth PIN's tries left (an empty VERIFY, which spends nothing).
    fn ask_pin_status(&mut self, cert: AuthCert, agreed: Agreed) -> State {
        self.card(
            CardStep::PinStatus { cert, agreed },
            CardOp::Status(PinStatusRead::new(PinKind::JpkiAuth)),
        )
    }

    /// The intent for `challenge` and the auth certificate read.
    fn make_intent(&self, challenge: &Challenge, cert: &[u8]) -> Intent {
        Intent::for_challenge(
            challenge,
            &self.config.terminal_id,
            cert,
            (self.config.clock)(),
        )
    }

    /// COMPUTE DIGITAL SIGNATURE of the intent with the auth key.
    fn sign_intent(&mut self, signing: Signing) -> State {
        match signing.intent.signed_digest_info() {
            Ok(di) => self.card(
                CardStep::SignIntent(Box::new(signing)),
                CardOp::Sign(Sign::new(
                    catalogue::jpki::AUTH_KEY,
                    SignScheme::Pkcs1DigestInfo,
                    &di,
                    RSA_2048_LEN,
                )),
            ),
            Err(_) => card_error("sign intent", None),
        }
    }

    fn start_session(&mut self, step: StartStep) -> State {
        let start = StartSession {
            v: V1,
            terminal_id: self.config.terminal_id.clone(),
            terminal_kind: self.config.terminal_kind,
            locale: self.config.locale.clone(),
            methods_supported: vec![self.method()],
        };
        match serde_json::to_vec(&start) {
            Ok(body) => http(
                HttpStep::Start(step),
                HttpMethod::Post,
                self.op.start_path().to_owned(),
                Some(body),
            ),
            Err(e) => protocol_error(e.to_string()),
        }
    }

    fn on_http_answer(&mut self, wait: HttpWait, response: HttpResponse) -> State {
        let HttpWait { request, step } = wait;
        let proof = matches!(step, HttpStep::Proof { .. });
        if let HttpStep::Proof { challenge } = &step
            && response.status == 202
            && request.header("prefer").is_some()
        {
            return self.on_pending(challenge, &response);
        }
        if !(200..300).contains(&response.status) {
            let body: Option<ErrorBody> = serde_json::from_slice(&response.body).ok();
            return match body {
                // A proof that met an unexpected failure committed nothing: resend it.
                Some(b)
                    if proof
                        && b.retry == crate::errors::RetryAdvice::Backoff
                        && request.attempt <= self.config.proof_retries =>
                {
                    self.resend(HttpWait { request, step })
                }
                Some(b) => State::Done(Outcome::from_error(b, response.retry_after)),
                None => State::Done(match response.status {
                    429 => Outcome::ServiceBusy {
                        retry_after: response.retry_after,
                    },
                    503 => Outcome::Maintenance {
                        retry_after: response.retry_after,
                    },
                    status => Outcome::ProtocolError {
                        what: format!("HTTP {status} without an error body"),
                    },
                }),
            };
        }
        match step {
            HttpStep::Consent { route } => on_consent(route, &response.body),
            HttpStep::Start(start) => self.on_challenge(start, &response.body),
            HttpStep::Proof { .. } => self.on_result(&response.body),
        }
    }

    /// The same request again, after a pause doubled for each resend.
    fn resend(&self, wait: HttpWait) -> State {
        let HttpWait { mut request, step } = wait;
        let shift = u32::from(request.attempt.saturating_sub(1)).min(16);
        request.delay_ms = self.config.proof_retry_delay_ms.saturating_mul(1 << shift);
        request.attempt = request.attempt.saturating_add(1);
        State::Http(Box::new(HttpWait { request, step }))
    }

    fn on_challenge(&mut self, step: StartStep, body: &[u8]) -> State {
        let challenge: Challenge = match serde_json::from_slice(body) {
            Ok(c) => c,
            Err(e) => return protocol_error(format!("challenge: {e}")),
        };
        if challenge.op != self.op {
            return protocol_error("challenge is for another operation");
        }
        if !is_valid_identifier(&challenge.session_id) {
            return protocol_error("challenge has an invalid session id");
        }
        let agreed = match &step {
            StartStep::Pin { agreed, .. } => *agreed,
            StartStep::Face(face) => Agreed::Consent(face.matched.so_far.agreed),
        };
        if let Agreed::Consent(digest) = agreed
            && digest != challenge.consent.sha256
        {
            return State::Done(Outcome::ConsentChanged);
        }
        if !challenge.accepted_methods.contains(&self.method()) {
            return State::Done(Outcome::TerminalNotAccepted);
        }
        match step {
            StartStep::Pin { cert, pin, .. } => {
                // Without the certificate yet (smartphone token), the intent is made once it
                // is read.
                let after = match cert {
                    AuthCert::Read(cert) => AfterVerify::Sign(Signing {
                        intent: self.make_intent(&challenge, &cert),
                        cert,
                        challenge,
                    }),
                    AuthCert::AfterPin => AfterVerify::ReadCert(challenge),
                };
                // The PIN moves into its one VERIFY: the step holds it no more.
                let verify = VerifyOnce::pin(PinKind::JpkiAuth, pin);
                self.card(CardStep::VerifyPin(Box::new(after)), CardOp::Verify(verify))
            }
            StartStep::Face(face) => {
                let FaceStart { matched, cvc } = *face;
                let intent = self.make_intent(&challenge, &matched.so_far.cert);
                let Ok(di) = intent.signed_digest_info() else {
                    return card_error("card presence signature", None);
                };
                let presence = Presence {
                    cert: matched.so_far.cert,
                    face: matched.face,
                    face_match: matched.face_match,
                    cvc,
                    challenge,
                    intent,
                };
                // The visual AP is still selected: its key signs the intent (card presence).
                self.card(
                    CardStep::PresenceSign(Box::new(presence)),
                    CardOp::Presence(PresenceSign::new(&di, RSA_2048_LEN)),
                )
            }
        }
    }

    /// The face evidence for the terminal to attest.
    fn attest(&self, presence: Presence, presence_signature: Vec<u8>) -> State {
        let Presence {
            cert,
            mut face,
            face_match,
            cvc,
            challenge,
            intent,
        } = presence;
        let mut evidence = FaceEvidence {
            v: V1,
            intent,
            card_face_digests: face.digests.to_vec(),
            // Moved, not copied, for the canonical form; then back into its zeroized home
            // until the proof is built.
            card_face_covered: Bytes(std::mem::take(&mut *face.covered)),
            card_face_signature: Bytes(face.signature),
            card_public_key: Bytes(face.public_key),
            cvc: Bytes(cvc),
            presence_signature: Bytes(presence_signature),
            face_match,
        };
        let message = evidence.canonical_bytes().map(Zeroizing::new);
        *face.covered = std::mem::take(&mut evidence.card_face_covered.0);
        match message {
            Ok(message) => State::Attest(Box::new(AttestStep {
                cert,
                challenge,
                evidence,
                covered: face.covered,
                message,
            })),
            Err(e) => protocol_error(e.to_string()),
        }
    }

    /// Sends the proof for `challenge`'s session.
    fn submit(&self, challenge: Challenge, mut proof: Proof) -> State {
        let body = serde_json::to_vec(&proof);
        // The request's body is the proof's one copy from here on.
        if let Proof::AccreditedFace { face_evidence, .. } = &mut proof {
            face_evidence.card_face_covered.0.zeroize();
        }
        let body = match body {
            Ok(body) => body,
            Err(e) => return protocol_error(e.to_string()),
        };
        let path = self.op.proof_path(&challenge.session_id);
        let mut request = first_request(HttpMethod::Post, path, Some(body));
        // Only a registration may wait for its upstreams; a check at the point of use is
        // answered at once (protocol §16.1).
        if self.op == Operation::RegisterInsuranceUse && self.config.accept_pending {
            request
                .headers
                .push(("prefer", PREFER_RESPOND_ASYNC.to_owned()));
        }
        State::Http(Box::new(HttpWait {
            request,
            step: HttpStep::Proof { challenge },
        }))
    }

    fn on_result(&self, body: &[u8]) -> State {
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
            Ok(o) => State::Done(o),
            Err(e) => protocol_error(format!("result: {e}")),
        }
    }

    /// The `202` answer to a registration proof: the service finishes the registration in the
    /// background. The card's part is over: the step's data goes.
    fn on_pending(&self, challenge: &Challenge, response: &HttpResponse) -> State {
        let pending: RegistrationPending = match serde_json::from_slice(&response.body) {
            Ok(p) => p,
            Err(e) => return protocol_error(format!("pending status: {e}")),
        };
        if challenge.session_id != pending.session_id {
            return protocol_error("pending status is for another session");
        }
        if let Err(what) = check_poll_target(&pending) {
            return protocol_error(what);
        }
        let delay = response.retry_after.unwrap_or(pending.poll.retry_after);
        self.schedule_poll(Box::new(pending), delay, 1)
    }

    /// Waits `delay_secs` (at least a second), then polls (its `attempt`); or, once past the
    /// service's deadline with a margin, ends with [`Outcome::Pending`].
    fn schedule_poll(
        &self,
        pending: Box<RegistrationPending>,
        delay_secs: u32,
        attempt: u8,
    ) -> State {
        let delay = delay_secs.max(MIN_POLL_SECS);
        let at = (self.config.clock)().plus(i64::from(delay));
        if at.unix() > pending.deadline.unix() + POLL_AFTER_DEADLINE_SECS {
            return State::Done(Outcome::Pending(pending));
        }
        let request = HttpRequest {
            method: HttpMethod::Get,
            path: pending.poll.url.clone(),
            headers: vec![("authorization", pending.poll.token.bearer())],
            body: None,
            delay_ms: delay.saturating_mul(1000),
            attempt,
        };
        State::Poll(Box::new(PollWait {
            pending,
            request,
            at,
        }))
    }

    fn on_poll_answer(&self, poll: PollWait, response: HttpResponse) -> State {
        let PollWait {
            pending, request, ..
        } = poll;
        let attempt = request.attempt.saturating_add(1);
        if response.status == 200 {
            let document: RegistrationStatusDocument = match serde_json::from_slice(&response.body)
            {
                Ok(d) => d,
                Err(e) => return protocol_error(format!("registration status: {e}")),
            };
            return match document {
                RegistrationStatusDocument::Pending(now) => {
                    if now.session_id != pending.session_id {
                        return protocol_error("registration status is for another session");
                    }
                    let delay = response.retry_after.unwrap_or(now.poll.retry_after);
                    // The token and the path stay the ones first given; the pause is the
                    // latest.
                    let next = RegistrationPending {
                        poll: crate::messages::PollInfo {
                            retry_after: now.poll.retry_after,
                            ..pending.poll
                        },
                        ..now
                    };
                    self.schedule_poll(Box::new(next), delay, attempt)
                }
                RegistrationStatusDocument::Finished(result) => {
                    if result.session_id != pending.session_id {
                        return protocol_error("registration status is for another session");
                    }
                    State::Done(registration_outcome(result))
                }
                RegistrationStatusDocument::Failed(failed) => {
                    State::Done(Outcome::from_error(failed.error, None))
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
            return self.schedule_poll(pending, delay, attempt);
        }
        match body {
            Some(b) => State::Done(Outcome::from_error(b, response.retry_after)),
            None => protocol_error(format!("HTTP {} without an error body", response.status)),
        }
    }
}

/// Waits for the answer to the exchange's current APDU.
fn emit(step: CardStep, op: CardOp, exchange: Exchange, spends_attempt: bool) -> State {
    match exchange.apdu_bytes() {
        Ok(bytes) => {
            let current = Arc::new(CardCommand {
                command: exchange.apdu().clone(),
                bytes,
                purpose: step.purpose(),
                spends_attempt,
            });
            State::Card(Box::new(CardWait {
                step,
                op,
                exchange,
                current,
            }))
        }
        Err(e) => card_outcome(step.purpose(), step.collation(), &e),
    }
}

/// A request as first sent.
fn first_request(method: HttpMethod, path: String, body: Option<Vec<u8>>) -> HttpRequest {
    HttpRequest {
        method,
        path,
        headers: Vec::new(),
        body,
        delay_ms: 0,
        attempt: 1,
    }
}

/// The first send of a request for `step`.
fn http(step: HttpStep, method: HttpMethod, path: String, body: Option<Vec<u8>>) -> State {
    State::Http(Box::new(HttpWait {
        request: first_request(method, path, body),
        step,
    }))
}

/// The consent document, checked against its reference, goes on screen.
fn on_consent(route: Route, body: &[u8]) -> State {
    let response: ConsentResponse = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return protocol_error(format!("consent: {e}")),
    };
    match response.document.sha256() {
        Ok(digest) if digest == response.consent.sha256 => State::Consent(Box::new(ConsentStep {
            document: response.document,
            digest,
            route,
        })),
        _ => protocol_error("consent document does not match its hash"),
    }
}

fn protocol_error(what: impl Into<String>) -> State {
    State::Done(Outcome::ProtocolError { what: what.into() })
}

fn card_error(what: &'static str, sw: Option<StatusWord>) -> State {
    State::Done(Outcome::CardError {
        what,
        sw: sw.map(StatusWord::to_u16),
    })
}

/// The typed outcome of a card refusal for the step `what` (`collation`: its key is
/// 照合番号B).
fn card_outcome(what: &'static str, collation: bool, e: &mynacard_card::Error) -> State {
    use mynacard_card::Error as E;
    State::Done(match e {
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
        // The VERIFY reached the card and its answer was lost to the link.
        E::AttemptUnclear { .. } => Outcome::CardRemoved {
            attempt_may_have_been_counted: true,
        },
        e => Outcome::CardError {
            what,
            sw: e.status_word().map(StatusWord::to_u16),
        },
    })
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

#[cfg(test)]
mod tests {
    //! Ownership rules the types alone do not show: where the PIN and the photo are held, and
    //! that `Debug` shows none of the secrets or personal data.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

    use super::*;
    use crate::consent;

    const PIN: &str = "1234";
    const COLLATION_B: &str = "55021720352285";
    const BIRTH_DATE: &[u8] = b"19800217";
    const PHOTO_BYTE: u8 = 0x33;

    fn config() -> FlowConfig {
        FlowConfig::new("kiosk-0001", TerminalKind::Kiosk)
            .with_clock(Arc::new(|| UtcTime::from_unix(1_775_035_805)))
    }

    fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
        mynacard_apdu::tlv::ber::to_vec(tag, value).unwrap()
    }

    /// A card with the auth certificate (EF 000A), the card face (EF 0002) and the CVC
    /// (EF 0004), each also reachable by the short EF identifier of the same number.
    struct Card {
        files: Vec<(u16, Vec<u8>)>,
        current: u16,
    }

    impl Card {
        fn new() -> Card {
            let mut cert = vec![0x30, 0x82, 0x01, 0x2C];
            cert.extend((0..300u32).map(|i| (i % 251) as u8));
            let covered = [
                tlv(0xDF22, BIRTH_DATE),
                tlv(0xDF23, b"2"),
                tlv(0xDF24, &[0x90, 0x03, 1, 0, 1]),
            ]
            .concat();
            let inner = [
                tlv(0xDF21, &[0; 8]),
                covered,
                tlv(0xDF25, &[0x11; 40]),
                tlv(0xDF26, &[0x22; 40]),
                tlv(0xDF27, &[PHOTO_BYTE; 100]),
                tlv(0xDF28, &[0x44; 256]),
                tlv(0xDF29, b"20350217"),
            ]
            .concat();
            Card {
                files: vec![
                    (0x000A, cert),
                    (0x0002, tlv(0xFF20, &inner)),
                    (0x0004, tlv(0x7F21, &[0x5E; 120])),
                ],
                current: 0,
            }
        }

        fn read(&self, fid: u16, offset: usize, le: usize) -> Vec<u8> {
            let file = &self.files.iter().find(|(f, _)| *f == fid).unwrap().1;
            let end = (offset + le).min(file.len());
            let mut answer = file[offset.min(end)..end].to_vec();
            let sw: &[u8] = if end - offset < le {
                &[0x62, 0x82]
            } else {
                &[0x90, 0x00]
            };
            answer.extend_from_slice(sw);
            answer
        }

        /// The card's answer to a short APDU.
        fn answer(&mut self, apdu: &[u8]) -> Vec<u8> {
            let le = |b: u8| if b == 0 { 256 } else { usize::from(b) };
            match (apdu[1], apdu.len()) {
                (0xA4, 7) if apdu[2] == 0x02 => {
                    self.current = u16::from_be_bytes([apdu[5], apdu[6]]);
                    vec![0x90, 0x00]
                }
                (0xA4, _) => vec![0x90, 0x00],
                (0xB0, 5) if apdu[2] & 0x80 != 0 => {
                    self.read(u16::from(apdu[2] & 0x1F), usize::from(apdu[3]), le(apdu[4]))
                }
                (0xB0, 5) => {
                    let offset = usize::from(u16::from_be_bytes([apdu[2], apdu[3]]));
                    self.read(self.current, offset, le(apdu[4]))
                }
                // The tries left: three of the PIN, ten of 照合番号B.
                (0x20, 4) if apdu[3] == 0x92 => vec![0x63, 0xCA],
                (0x20, 4) => vec![0x63, 0xC3],
                (0x20, _) => vec![0x90, 0x00],
                (0x2A, _) => [vec![0x5A; 256], vec![0x90, 0x00]].concat(),
                _ => panic!("unexpected APDU {apdu:02X?}"),
            }
        }
    }

    fn json<T: serde::Serialize>(v: &T) -> HttpResponse {
        HttpResponse {
            status: 200,
            retry_after: None,
            body: serde_json::to_vec(v).unwrap(),
        }
    }

    fn challenge(method: Method) -> Challenge {
        Challenge {
            v: V1,
            session_id: "ses_01HZX5T7Q9M3".into(),
            op: Operation::RegisterInsuranceUse,
            nonce: Sha256Digest([7; 32]),
            issued_at: UtcTime::from_unix(1_775_035_800),
            expires_at: UtcTime::from_unix(1_775_035_900),
            consent: consent::current().reference().unwrap(),
            accepted_methods: vec![method],
            accepted_roots: vec![],
        }
    }

    /// What one step showed of the machine.
    struct Seen {
        action: Action,
        debug: String,
        holds_pin: bool,
        holds_photo: bool,
    }

    /// Runs `m` with the card, the service and a person who agrees, types the PIN and
    /// matches, until `stop` holds for the next action or the proof's request is out; what
    /// each step showed.
    fn run_until(m: &mut Machine, stop: impl Fn(&Action) -> bool) -> Vec<Seen> {
        let mut card = Card::new();
        let mut seen = Vec::new();
        loop {
            let action = m.next_action();
            if stop(&action) {
                return seen;
            }
            seen.push(Seen {
                action: action.clone(),
                debug: format!("{m:?}"),
                holds_pin: m.holds_pin(),
                holds_photo: m.holds_photo(),
            });
            match action {
                Action::SendCard(c) => m.feed_card_response(&card.answer(c.bytes.as_slice())),
                Action::ShowConsent(_) => m.feed_consent(true),
                Action::AskPin { .. } => m.feed_pin(Pin::new(PIN).unwrap()),
                Action::AskCollationNumberB { .. } => {
                    m.feed_collation_number_b(CollationB::from_digits(COLLATION_B).unwrap())
                }
                Action::MatchFace { .. } => m.feed_face_match(matched()),
                Action::SignAttestation { .. } => m.feed_attestation(vec![9; 64]),
                Action::SendHttp(r) if r.path == paths::CONSENT => {
                    let document = consent::current();
                    m.feed_http_response(json(&ConsentResponse {
                        v: V1,
                        consent: document.reference().unwrap(),
                        document,
                    }))
                }
                Action::SendHttp(r) if r.path == m.operation().start_path() => {
                    m.feed_http_response(json(&challenge(m.method())))
                }
                Action::SendHttp(_) => return seen,
                other => panic!("unexpected {other:?}"),
            }
            .unwrap();
        }
    }

    fn run_to_proof(m: &mut Machine) -> Vec<Seen> {
        run_until(m, |_| false)
    }

    fn matched() -> FaceMatch {
        FaceMatch {
            decision: FaceDecision::Match,
            score_permille: 950,
            threshold_permille: 900,
        }
    }

    /// Whether `text` shows `secret` as text, as hex or as a `Debug` list of bytes.
    fn shows(text: &str, secret: &[u8]) -> bool {
        let list = format!("{secret:?}");
        let list = list.trim_start_matches('[').trim_end_matches(']');
        String::from_utf8(secret.to_vec()).is_ok_and(|s| text.contains(&s))
            || text.to_uppercase().contains(&hex_upper(secret))
            || text.contains(list)
    }

    fn hex_upper(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02X}")).collect()
    }

    fn is_verify(action: &Action) -> bool {
        matches!(action, Action::SendCard(c) if c.spends_attempt && c.command.ins == 0x20)
    }

    #[test]
    fn the_pin_is_held_only_from_the_pin_pad_to_its_verify() {
        let mut m = Machine::register_with_pin(config());
        let seen = run_to_proof(&mut m);
        let asked = seen
            .iter()
            .position(|s| matches!(s.action, Action::AskPin { .. }))
            .unwrap();
        let verify = seen.iter().position(|s| is_verify(&s.action)).unwrap();
        // The step after the PIN pad is the Start request, and only it holds the PIN.
        assert_eq!(verify, asked + 2, "PIN pad, Start, VERIFY");
        for (i, s) in seen.iter().enumerate() {
            assert_eq!(s.holds_pin, i == asked + 1, "step {i}: {:?}", s.action);
        }
        assert!(
            !m.holds_pin(),
            "nothing holds the PIN once the proof is out"
        );
    }

    #[test]
    fn the_verify_apdu_is_shared_not_copied_for_each_action() {
        let mut m = Machine::register_with_pin(config());
        run_until(&mut m, |a| matches!(a, Action::AskPin { .. }));
        m.feed_pin(Pin::new(PIN).unwrap()).unwrap();
        m.feed_http_response(json(&challenge(Method::PinSignature)))
            .unwrap();
        let (Action::SendCard(first), Action::SendCard(again)) = (m.next_action(), m.next_action())
        else {
            panic!("expected the VERIFY");
        };
        assert!(first.spends_attempt);
        assert!(Arc::ptr_eq(&first, &again), "one APDU with the PIN, shared");
        assert!(!m.holds_pin());
        drop(again);
        m.feed_card_response(&[0x90, 0x00]).unwrap();
        // Next is the signature: the machine let go of the APDU that carried the PIN.
        assert!(matches!(m.next_action(), Action::SendCard(c) if c.command.ins == 0x2A));
        assert_eq!(Arc::strong_count(&first), 1);
    }

    #[test]
    fn the_photo_is_shared_with_the_matcher_and_dropped_after_the_match() {
        let mut m = Machine::register_with_face(config());
        run_until(&mut m, |a| matches!(a, Action::MatchFace { .. }));
        let Action::MatchFace { photo } = m.next_action() else {
            panic!("expected the face match");
        };
        assert_eq!(photo.as_slice(), &[PHOTO_BYTE; 100][..]);
        let Action::MatchFace { photo: again } = m.next_action() else {
            panic!("expected the face match again");
        };
        assert!(
            Arc::ptr_eq(&photo, &again),
            "the photo is not copied per action"
        );
        drop(again);
        assert!(m.holds_photo());
        m.feed_face_match(matched()).unwrap();
        assert!(!m.holds_photo());
        assert_eq!(
            Arc::strong_count(&photo),
            1,
            "the machine let go of the photo"
        );
    }

    #[test]
    fn a_wrong_face_score_leaves_the_photo_where_it_was() {
        let mut m = Machine::register_with_face(config());
        run_until(&mut m, |a| matches!(a, Action::MatchFace { .. }));
        let refused = m.feed_face_match(FaceMatch {
            decision: FaceDecision::Match,
            score_permille: 1001,
            threshold_permille: 900,
        });
        assert_eq!(refused, Err(MachineError::FaceScore));
        assert!(m.holds_photo(), "a refused input changes nothing");
        assert_eq!(
            m.feed_pin(Pin::new(PIN).unwrap()),
            Err(MachineError::Unexpected {
                expected: "the face match",
                got: "a PIN",
            })
        );
        assert!(m.holds_photo());
    }

    #[test]
    fn debug_shows_no_pin_at_any_step() {
        let mut m = Machine::register_with_pin(config());
        let seen = run_to_proof(&mut m);
        assert!(seen.iter().any(|s| s.holds_pin));
        for s in &seen {
            assert!(!shows(&s.debug, PIN.as_bytes()), "{}", s.debug);
            assert!(s.debug.contains("Machine"), "{}", s.debug);
        }
    }

    #[test]
    fn debug_shows_no_card_face_data_at_any_step() {
        let mut m = Machine::register_with_face(config());
        let seen = run_to_proof(&mut m);
        assert!(seen.iter().any(|s| s.holds_photo));
        assert!(
            seen.iter()
                .any(|s| matches!(s.action, Action::SignAttestation { .. }))
        );
        for s in &seen {
            assert!(!shows(&s.debug, BIRTH_DATE), "{}", s.debug);
            assert!(!shows(&s.debug, &[PHOTO_BYTE; 8]), "{}", s.debug);
            assert!(!shows(&s.debug, COLLATION_B.as_bytes()), "{}", s.debug);
        }
    }

    #[test]
    fn the_covered_segment_reaches_the_attestation_and_the_proof_whole() {
        let mut m = Machine::register_with_face(config());
        let seen = run_to_proof(&mut m);
        let covered = [
            tlv(0xDF22, BIRTH_DATE),
            tlv(0xDF23, b"2"),
            tlv(0xDF24, &[0x90, 0x03, 1, 0, 1]),
        ]
        .concat();
        let message = seen
            .iter()
            .find_map(|s| match &s.action {
                Action::SignAttestation { message } => Some(message.clone()),
                _ => None,
            })
            .unwrap();
        let Action::SendHttp(proof) = m.next_action() else {
            panic!("expected the proof");
        };
        assert_eq!(m.proof_body(), proof.body.as_deref());
        let Proof::AccreditedFace { face_evidence, .. } =
            serde_json::from_slice(&proof.body.unwrap()).unwrap()
        else {
            panic!("expected a face proof");
        };
        assert_eq!(face_evidence.card_face_covered.0, covered);
        assert_eq!(
            face_evidence.card_face_digests[0],
            Sha256Digest::of(&covered)
        );
        assert_eq!(face_evidence.canonical_bytes().unwrap(), message);
    }

    #[test]
    fn the_probes_see_what_they_claim() {
        // The `shows` check finds each form it looks for, so the Debug tests can fail.
        assert!(shows("Pin(\"1234\")", PIN.as_bytes()));
        assert!(shows("[49, 50, 51, 52]", PIN.as_bytes()));
        assert!(shows("bytes: 31323334", PIN.as_bytes()));
        assert!(!shows("Pin(<redacted>)", PIN.as_bytes()));
    }
}
