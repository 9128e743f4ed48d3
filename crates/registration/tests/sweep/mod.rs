//! The fault sweep: every flow is run once fault-free to count its APDUs (N) and HTTP requests
//! (M), then once per fault at every index, and each run is checked against the rules a
//! cardholder relies on. The checks are plain functions returning violations, so the sweep's
//! own test can feed them a deliberately broken client.
//!
//! It extends the mocked-channel sweep of `mynacard-card` (`crates/card/tests/mock.rs`: a
//! transport failure at each of the five APDUs of a PIN registration) to every flow, over the
//! simulator's fault injection and the reference service.
//!
//! Neither `mynacard_card::Session` nor the registration driver has a per-APDU deadline; the
//! sweep adds one in its channel (as a PC/SC reader's timeout would, answering
//! `TransportError::Timeout`) and makes the simulator's latency fault exceed it.

#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_card::{AttemptPolicy, CollationB, CvcTrust, HashAlgorithm, Pin, Session};
use mynacard_registration::Outcome;
use mynacard_registration::OutcomeKind;
use mynacard_registration::driver::{self, ServiceClient, Terminal};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::{
    Action, CardFailure, HttpFailure, HttpRequest, HttpResponse, Machine, MachineError,
};
use mynacard_sim::fault::{Corruption, Faults};
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_sim::state::SecretId;
use mynacard_transport::{Capabilities, CardChannel, TransportError};
use zeroize::Zeroizing;

use crate::common::{self, SimTerminal, SqliteService};

/// The per-APDU deadline the sweep's channel enforces.
pub const DEADLINE: Duration = Duration::from_millis(60);
/// The simulator's latency for a late APDU: past the deadline.
const LATE_BY: Duration = Duration::from_millis(90);
/// Sampled byte positions per response, besides its first byte and its status word.
pub const CORRUPT_SAMPLE: usize = 3;
/// Responses up to this length have every byte corrupted in turn.
const ALL_BYTES_UP_TO: usize = CORRUPT_SAMPLE + 3;
/// Environment variable fixing the sampling seed (to replay a run).
pub const SEED_VAR: &str = "MYNACARD_SWEEP_SEED";

const PIN: &str = "1234";
const WRONG_PIN: &str = "9999";

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// The card is pulled before APDU i.
    Pull,
    /// The card is reset before APDU i.
    Reset,
    /// One byte of the response to APDU i is inverted.
    Corrupt,
    /// The response to APDU i comes after the deadline (the card did process it).
    Late,
    /// HTTP request j finds the service down (connection refused; nothing sent).
    Down,
    /// HTTP request j is answered `502` by a gateway (not forwarded).
    Gateway5xx,
    /// HTTP request j times out before it reaches the service.
    Timeout,
    /// The connection drops after request j reached the service, before the answer.
    Dropped,
}

impl FaultKind {
    /// The card faults, applied at every APDU index.
    pub const CARD: [FaultKind; 4] = [
        FaultKind::Pull,
        FaultKind::Reset,
        FaultKind::Corrupt,
        FaultKind::Late,
    ];
    /// The HTTP faults, applied at every request index.
    pub const HTTP: [FaultKind; 4] = [
        FaultKind::Down,
        FaultKind::Gateway5xx,
        FaultKind::Timeout,
        FaultKind::Dropped,
    ];

    fn name(self) -> &'static str {
        match self {
            FaultKind::Pull => "pull",
            FaultKind::Reset => "reset",
            FaultKind::Corrupt => "corrupt",
            FaultKind::Late => "late",
            FaultKind::Down => "http-down",
            FaultKind::Gateway5xx => "http-5xx",
            FaultKind::Timeout => "http-timeout",
            FaultKind::Dropped => "http-dropped",
        }
    }
}

/// One fault: its kind, the APDU or request index (from 1) and, for corruption, the byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// What goes wrong.
    pub kind: FaultKind,
    /// Which APDU or HTTP request (1-based).
    pub index: u32,
    /// The corrupted byte.
    pub byte: Option<usize>,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.kind.name(), self.index)?;
        if let Some(byte) = self.byte {
            write!(f, " byte {byte}")?;
        }
        Ok(())
    }
}

/// How a flow is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Path {
    /// `mynacard_card::Session` directly.
    Session,
    /// The sans-I/O machine, driven step by step here.
    Machine,
    /// `mynacard_registration::driver::run`.
    Driver,
}

/// The flows swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flow {
    /// The three JPKI public certificates.
    Certificates,
    /// The auth PIN's tries, then VERIFY.
    PinVerify,
    /// VERIFY, then a signature with the auth key.
    Signing,
    /// The text AP's attributes under secure messaging, after the text PIN.
    TextAttributes,
    /// The visual AP: its CVC, 照合番号B, the checked card face.
    VisualFace,
    /// VERIFY, then CHANGE REFERENCE DATA (to the same PIN, so every run starts alike).
    PinChange,
    /// VERIFY with a wrong PIN: the one flow that spends an attempt when all goes well.
    WrongPin,
    /// Registration from the smartphone app with the PIN.
    AppPin,
    /// Registration at an ATM with the PIN.
    AtmPin,
    /// Registration at an accredited kiosk by face.
    KioskFace,
    /// Eligibility at a clinic with the PIN.
    EligibilityPin,
    /// Eligibility at a clinic by face.
    EligibilityFace,
    /// Withdrawal from the smartphone app.
    Deregistration,
    /// Registration from the app with a wrong PIN.
    AppWrongPin,
}

impl Flow {
    /// The card flows, through `Session`.
    pub const CARD: [Flow; 7] = [
        Flow::Certificates,
        Flow::PinVerify,
        Flow::Signing,
        Flow::TextAttributes,
        Flow::VisualFace,
        Flow::PinChange,
        Flow::WrongPin,
    ];
    /// The registration channels, through the machine and the driver.
    pub const CHANNELS: [Flow; 7] = [
        Flow::AppPin,
        Flow::AtmPin,
        Flow::KioskFace,
        Flow::EligibilityPin,
        Flow::EligibilityFace,
        Flow::Deregistration,
        Flow::AppWrongPin,
    ];

    /// The name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Flow::Certificates => "certificates",
            Flow::PinVerify => "pin status + verify",
            Flow::Signing => "signing",
            Flow::TextAttributes => "text AP (SM)",
            Flow::VisualFace => "visual AP (CVC, face)",
            Flow::PinChange => "PIN change",
            Flow::WrongPin => "wrong PIN",
            Flow::AppPin => "app (PIN)",
            Flow::AtmPin => "ATM (PIN)",
            Flow::KioskFace => "kiosk (face)",
            Flow::EligibilityPin => "eligibility (PIN)",
            Flow::EligibilityFace => "eligibility (face)",
            Flow::Deregistration => "deregistration",
            Flow::AppWrongPin => "app (wrong PIN)",
        }
    }

    fn profile(self) -> &'static str {
        match self {
            Flow::KioskFace | Flow::EligibilityFace => "face-auth",
            _ => "adult",
        }
    }

    fn uses_service(self) -> bool {
        !Flow::CARD.contains(&self)
    }

    /// Whether the card must be registered before the flow runs.
    fn needs_registration(self) -> bool {
        matches!(
            self,
            Flow::EligibilityPin | Flow::EligibilityFace | Flow::Deregistration
        )
    }

    fn machine(self) -> Machine {
        match self {
            Flow::AtmPin => common::pin_registration_at_atm(),
            Flow::KioskFace => common::face_registration_at_kiosk(),
            Flow::EligibilityPin => common::pin_check_at_clinic(),
            Flow::EligibilityFace => common::face_check_at_clinic(),
            Flow::Deregistration => common::deregistration_in_app(),
            _ => common::pin_registration_in_app(),
        }
    }

    fn terminal(self, image: &CardImage) -> SimTerminal {
        match self {
            Flow::KioskFace => SimTerminal::face(image, common::KIOSK),
            Flow::EligibilityFace => SimTerminal::face(image, common::CLINIC),
            Flow::AppWrongPin => SimTerminal::with_pin(WRONG_PIN),
            _ => SimTerminal::with_pin(PIN),
        }
    }

    /// Outcomes as good as the fault-free one once an earlier attempt may have done the work.
    fn equivalents(self) -> &'static [OutcomeKind] {
        match self {
            Flow::AppPin | Flow::AtmPin | Flow::KioskFace => &[OutcomeKind::AlreadyRegistered],
            Flow::Deregistration => &[OutcomeKind::NotRegistered],
            _ => &[],
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Ended {
    /// A registration flow's outcome.
    Outcome(Outcome),
    /// A card flow finished.
    CardDone,
    /// The card answered that the PIN was wrong.
    CardWrongPin {
        /// Tries left.
        retries_left: u8,
    },
    /// A card flow failed with a typed error.
    CardError {
        /// The error says the attempt may have been counted.
        attempt_may_have_been_counted: bool,
        /// The error, for the report.
        text: String,
    },
    /// The machine refused an input.
    Refused(String),
    /// The run panicked.
    Panicked(String),
}

impl Ended {
    fn from_card(result: mynacard_card::Result<()>) -> Ended {
        match result {
            Ok(()) => Ended::CardDone,
            Err(mynacard_card::Error::WrongPin { retries_left, .. }) => {
                Ended::CardWrongPin { retries_left }
            }
            Err(e) => Ended::CardError {
                attempt_may_have_been_counted: matches!(
                    e,
                    mynacard_card::Error::AttemptMayHaveBeenCounted { .. }
                        | mynacard_card::Error::AttemptUnclear { .. }
                ),
                text: e.to_string(),
            },
        }
    }

    /// Whether the end tells the person that a PIN attempt may have been counted.
    pub fn says_attempt_may_have_been_counted(&self) -> bool {
        match self {
            Ended::Outcome(Outcome::CardRemoved {
                attempt_may_have_been_counted,
            }) => *attempt_may_have_been_counted,
            // The card's answer to the VERIFY came: the person is told its result.
            Ended::Outcome(
                Outcome::WrongPin { .. }
                | Outcome::PinBlocked
                | Outcome::CollationNumberWrong { .. }
                | Outcome::CollationNumberBlocked,
            ) => true,
            Ended::CardError {
                attempt_may_have_been_counted,
                ..
            } => *attempt_may_have_been_counted,
            Ended::CardWrongPin { .. } => true,
            _ => false,
        }
    }

    /// A short name for the summary.
    fn label(&self) -> &'static str {
        match self {
            Ended::Outcome(Outcome::CardRemoved {
                attempt_may_have_been_counted: true,
            }) => "CardRemoved(maybe counted)",
            Ended::Outcome(Outcome::ServiceUnreachable {
                proof_may_have_arrived: true,
            }) => "Unreachable(may have arrived)",
            Ended::Outcome(Outcome::ServiceUnreachable { .. }) => "Unreachable",
            Ended::Outcome(o) => kind_name(o.kind()),
            Ended::CardDone => "done",
            Ended::CardWrongPin { .. } => "WrongPin",
            Ended::CardError {
                attempt_may_have_been_counted: true,
                ..
            } => "error(maybe counted)",
            Ended::CardError { .. } => "error",
            Ended::Refused(_) => "REFUSED",
            Ended::Panicked(_) => "PANIC",
        }
    }

    fn kind(&self) -> Option<OutcomeKind> {
        match self {
            Ended::Outcome(o) => Some(o.kind()),
            _ => None,
        }
    }

    /// The service may have acted and the flow cannot tell.
    fn uncertain(&self) -> bool {
        matches!(
            self,
            Ended::Outcome(
                Outcome::ServiceUnreachable {
                    proof_may_have_arrived: true
                } | Outcome::Pending(_)
            )
        )
    }
}

/// The fault-free run of a flow.
#[derive(Debug, Clone)]
pub struct Baseline {
    /// APDUs (N).
    pub apdus: u32,
    /// Response length of each APDU.
    pub response_lens: Vec<usize>,
    /// HTTP requests (M).
    pub http_requests: u32,
    /// VERIFYs with data that reached the card.
    pub verifies: u32,
    /// Their APDU indexes.
    pub verify_indexes: Vec<u32>,
    /// How it ended.
    pub ended: Ended,
    /// Registrations before and after.
    pub registrations: Option<(i64, i64)>,
}

/// What one faulted run did, and the fresh attempt after it.
#[derive(Debug, Clone)]
pub struct Observation {
    /// How the faulted run ended.
    pub ended: Ended,
    /// VERIFYs with data that reached the card.
    pub verifies_reached: u32,
    /// VERIFYs whose answer reached the flow.
    pub verifies_answered: u32,
    /// The indexes, among the APDUs that reached the card, of the VERIFYs with data.
    pub verify_indexes: Vec<u32>,
    /// Tries left of every secret before the run.
    pub tries_before: Vec<(SecretId, u8)>,
    /// Tries left after it.
    pub tries_after: Vec<(SecretId, u8)>,
    /// Registrations before and after (flows with a service).
    pub registrations: Option<(i64, i64)>,
    /// How the attempt on a fresh link, without faults, ended.
    pub retry: Ended,
}

/// The rules a faulted run must keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// It ends in a typed error or an outcome: no panic, no refused input.
    Ends,
    /// It sends no VERIFY beyond those of the fault-free flow.
    NoExtraVerify,
    /// No attempt is spent except by a VERIFY that reached the card.
    NoAttemptWithoutVerify,
    /// A VERIFY whose answer was lost, or an attempt spent, is reported as maybe counted.
    AttemptReported,
    /// The service holds all of the change or none of it, as the outcome says.
    NoPartialRegistration,
    /// The next attempt on a fresh link succeeds.
    RetrySucceeds,
}

/// A broken rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The path and flow.
    pub flow: String,
    /// The fault.
    pub fault: Fault,
    /// The rule.
    pub rule: Rule,
    /// What went wrong.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} | {} | {:?}: {}",
            self.flow, self.fault, self.rule, self.what
        )
    }
}

fn kind_name(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Registered => "Registered",
        OutcomeKind::AlreadyRegistered => "AlreadyRegistered",
        OutcomeKind::Eligible => "Eligible",
        OutcomeKind::Deregistered => "Deregistered",
        OutcomeKind::NotRegistered => "NotRegistered",
        OutcomeKind::WrongPin => "WrongPin",
        OutcomeKind::CardRemoved => "CardRemoved",
        OutcomeKind::CardError => "CardError",
        OutcomeKind::ServiceBusy => "ServiceBusy",
        OutcomeKind::Maintenance => "Maintenance",
        OutcomeKind::ProtocolError => "ProtocolError",
        OutcomeKind::Pending => "Pending",
        OutcomeKind::Rejected => "Rejected",
        OutcomeKind::CertificateUntrusted => "CertificateUntrusted",
        OutcomeKind::CertificateWrongType => "CertificateWrongType",
        OutcomeKind::FaceNotMatched => "FaceNotMatched",
        OutcomeKind::SessionExpired => "SessionExpired",
        OutcomeKind::LastAttemptRefused => "LastAttemptRefused",
        _ => "other",
    }
}

fn is_success(flow: Flow, baseline: &Baseline, ended: &Ended) -> bool {
    match (ended, &baseline.ended) {
        (Ended::CardDone, Ended::CardDone)
        | (Ended::CardWrongPin { .. }, Ended::CardWrongPin { .. }) => true,
        (Ended::Outcome(o), Ended::Outcome(b)) => {
            o.kind() == b.kind() || flow.equivalents().contains(&o.kind())
        }
        _ => false,
    }
}

/// The run ended in a typed error or a correct outcome.
pub fn check_ending(ended: &Ended) -> Option<(Rule, String)> {
    match ended {
        Ended::Panicked(message) => Some((Rule::Ends, format!("panicked: {message}"))),
        Ended::Refused(e) => Some((
            Rule::Ends,
            format!("the machine refused the driver's input: {e}"),
        )),
        _ => None,
    }
}

/// No PIN attempt is spent except by a VERIFY that reached the card, the flow sends no VERIFY
/// of its own accord, and a VERIFY whose answer was lost is reported as maybe counted.
pub fn check_pin(baseline: &Baseline, obs: &Observation) -> Vec<(Rule, String)> {
    let mut found = Vec::new();
    if obs.verifies_reached > baseline.verifies {
        found.push((
            Rule::NoExtraVerify,
            format!(
                "{} VERIFYs reached the card; the fault-free flow sends {}",
                obs.verifies_reached, baseline.verifies
            ),
        ));
    }
    let spent: u32 = obs
        .tries_before
        .iter()
        .map(|(id, before)| {
            let after = obs
                .tries_after
                .iter()
                .find(|(a, _)| a == id)
                .map_or(*before, |(_, after)| *after);
            u32::from(before.saturating_sub(after))
        })
        .sum();
    if spent > obs.verifies_reached {
        found.push((
            Rule::NoAttemptWithoutVerify,
            format!(
                "{spent} attempts spent by {} VERIFYs that reached the card",
                obs.verifies_reached
            ),
        ));
    }
    if obs.ended.says_attempt_may_have_been_counted() {
        return found;
    }
    if obs.verifies_reached > obs.verifies_answered {
        found.push((
            Rule::AttemptReported,
            format!(
                "a VERIFY reached the card, its answer did not reach the flow, and the end \
                 does not say the attempt may have been counted: {:?}",
                obs.ended
            ),
        ));
    } else if spent > 0 {
        found.push((
            Rule::AttemptReported,
            format!(
                "{spent} attempt spent and the end does not say so: {:?}",
                obs.ended
            ),
        ));
    }
    found
}

/// The service holds the fault-free run's registrations or none of the change, consistent
/// with the outcome.
pub fn check_registrations(
    flow: Flow,
    baseline: &Baseline,
    obs: &Observation,
) -> Vec<(Rule, String)> {
    let (Some((_, expected)), Some((before, after))) = (baseline.registrations, obs.registrations)
    else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    if after != before && after != expected {
        found.push(format!(
            "{after} registrations stored: neither {before} (none of the change) nor {expected}"
        ));
    } else if is_success(flow, baseline, &obs.ended) {
        if after != expected {
            found.push(format!(
                "{:?} but {after} registrations (expected {expected})",
                obs.ended.kind()
            ));
        }
    } else if !obs.ended.uncertain() && after != before {
        found.push(format!(
            "the flow ended {:?}, which says nothing changed, yet {after} registrations \
             (were {before})",
            obs.ended
        ));
    }
    found
        .into_iter()
        .map(|what| (Rule::NoPartialRegistration, what))
        .collect()
}

/// The attempt on a fresh link succeeds.
pub fn check_retry(flow: Flow, baseline: &Baseline, obs: &Observation) -> Option<(Rule, String)> {
    (!is_success(flow, baseline, &obs.retry)).then(|| {
        (
            Rule::RetrySucceeds,
            format!("the next attempt did not succeed: {:?}", obs.retry),
        )
    })
}

/// Every rule, for one faulted run.
pub fn check(
    label: &str,
    flow: Flow,
    fault: Fault,
    baseline: &Baseline,
    obs: &Observation,
) -> Vec<Violation> {
    let mut found: Vec<(Rule, String)> = Vec::new();
    found.extend(check_ending(&obs.ended));
    found.extend(check_pin(baseline, obs));
    found.extend(check_registrations(flow, baseline, obs));
    found.extend(check_retry(flow, baseline, obs));
    found
        .into_iter()
        .map(|(rule, what)| Violation {
            flow: label.to_owned(),
            fault,
            rule,
            what,
        })
        .collect()
}

/// A finding the sweep shows and the code does not fix yet. It is kept apart from the
/// violations and listed in the summary; one that no longer occurs fails the sweep, so the list
/// cannot outlive the fix.
#[derive(Debug)]
pub struct Known {
    /// What is wrong, and where.
    pub why: &'static str,
    /// Whether a violation is this finding.
    pub matches: fn(&Violation, &Baseline) -> bool,
}

/// The known findings: none open.
pub const KNOWN: &[Known] = &[];

/// Splits a case's violations into the known findings (with their index in [`KNOWN`]) and the
/// rest.
pub fn triage(
    found: Vec<Violation>,
    baseline: &Baseline,
) -> (Vec<(usize, Violation)>, Vec<Violation>) {
    let mut known = Vec::new();
    let mut rest = Vec::new();
    for v in found {
        match KNOWN.iter().position(|k| (k.matches)(&v, baseline)) {
            Some(i) => known.push((i, v)),
            None => rest.push(v),
        }
    }
    (known, rest)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_verify_with_data(command: &[u8]) -> bool {
    matches!(command, [cla, 0x20, _, _, _, ..] if cla & 0x80 == 0)
}

/// What the sweep's channel saw.
#[derive(Debug, Default)]
pub struct ChannelStats {
    /// APDUs the flow sent.
    pub apdus: u32,
    /// VERIFYs with data whose answer reached the flow.
    pub verifies_answered: u32,
}

/// A deliberately broken client rule for the sweep's own test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// None: the channel passes commands through.
    None,
    /// After a failed exchange, the channel sends the last VERIFY again (an attempt nobody
    /// asked for).
    ResendVerifyAfterFault,
}

/// The channel between a flow and the simulated card: numbers APDUs, enforces [`DEADLINE`],
/// makes APDU `late_at` late with the simulator's latency fault.
pub struct SweepChannel {
    inner: SimChannel,
    sim: SimCard,
    late_at: Option<u32>,
    stats: Arc<Mutex<ChannelStats>>,
    breakage: Breakage,
    last_verify: Option<Zeroizing<Vec<u8>>>,
}

impl SweepChannel {
    fn new(
        sim: &SimCard,
        late_at: Option<u32>,
        breakage: Breakage,
        stats: Arc<Mutex<ChannelStats>>,
    ) -> Self {
        SweepChannel {
            inner: sim.channel(),
            sim: sim.clone(),
            late_at,
            stats,
            breakage,
            last_verify: None,
        }
    }
}

#[async_trait]
impl CardChannel for SweepChannel {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let n = {
            let mut stats = lock(&self.stats);
            stats.apdus += 1;
            stats.apdus
        };
        if self.late_at == Some(n) {
            self.sim.set_faults(Faults {
                latency_per_apdu: LATE_BY,
                ..Faults::none()
            });
        }
        let answer = match tokio::time::timeout(DEADLINE, self.inner.transmit(command)).await {
            Ok(answer) => answer,
            Err(_) => Err(TransportError::Timeout(DEADLINE)),
        };
        let verify = is_verify_with_data(command);
        if verify {
            if answer.is_ok() {
                lock(&self.stats).verifies_answered += 1;
            }
            if self.breakage == Breakage::ResendVerifyAfterFault {
                self.last_verify = Some(Zeroizing::new(command.to_vec()));
            }
        }
        if answer.is_err()
            && let Some(again) = self.last_verify.take()
        {
            let _ = self.inner.transmit(&again).await;
        }
        answer
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn was_reset(&mut self) -> bool {
        self.inner.was_reset()
    }
}

/// A service client that counts requests and injects one HTTP fault.
pub struct SweepClient {
    inner: HttpClient,
    fault: Option<(u32, FaultKind)>,
    sent: Mutex<u32>,
}

impl SweepClient {
    fn new(url: &str, fault: Option<(u32, FaultKind)>) -> Self {
        SweepClient {
            inner: HttpClient::new(url).expect("client"),
            fault,
            sent: Mutex::new(0),
        }
    }
}

#[async_trait]
impl ServiceClient for SweepClient {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure> {
        let n = {
            let mut sent = lock(&self.sent);
            *sent += 1;
            *sent
        };
        match self.fault {
            Some((at, FaultKind::Down)) if at == n => Err(HttpFailure::Connect),
            Some((at, FaultKind::Gateway5xx)) if at == n => Ok(HttpResponse {
                status: 502,
                retry_after: None,
                body: b"<html>502 Bad Gateway</html>".to_vec(),
            }),
            Some((at, FaultKind::Timeout)) if at == n => Err(HttpFailure::Interrupted),
            Some((at, FaultKind::Dropped)) if at == n => {
                let _ = self.inner.send(request).await;
                Err(HttpFailure::Interrupted)
            }
            _ => self.inner.send(request).await,
        }
    }
}

/// Runs a machine by hand: every action is answered here, as a terminal without the driver
/// would (the driver's reset check and its re-asking of malformed PINs are not repeated).
async fn run_by_hand<C, S>(
    mut machine: Machine,
    channel: &mut C,
    service: &S,
    terminal: &mut SimTerminal,
) -> Result<Outcome, MachineError>
where
    C: CardChannel + ?Sized,
    S: ServiceClient + ?Sized,
{
    loop {
        match machine.next_action() {
            Action::SendCard(cmd) => match channel.transmit(cmd.bytes.as_slice()).await {
                Ok(response) => machine.feed_card_response(&response)?,
                Err(TransportError::CardReset) => machine.feed_card_failure(CardFailure::Reset)?,
                Err(TransportError::CardRemoved | TransportError::NoCard) => {
                    machine.feed_card_failure(CardFailure::Removed)?;
                }
                Err(_) => machine.feed_card_failure(CardFailure::Transport)?,
            },
            Action::ShowConsent(prompt) => {
                let agreed = terminal.consent(&prompt).await;
                machine.feed_consent(agreed)?;
            }
            Action::AskPin { retries_left } => match terminal.pin(retries_left).await {
                Some(typed) => machine.feed_pin(Pin::new(&typed).expect("the sweep's PIN"))?,
                None => machine.cancel()?,
            },
            Action::AskCollationNumberB { retries_left } => {
                match terminal.collation_number_b(retries_left).await {
                    Some(read) => machine.feed_collation_number_b(
                        CollationB::from_digits(&read).expect("the card's 照合番号B"),
                    )?,
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
            Action::SendHttp(request) => match service.send(&request).await {
                Ok(response) => machine.feed_http_response(response)?,
                Err(failure) => machine.feed_http_failure(failure)?,
            },
            Action::Poll(step) => match service.send(&step.request).await {
                Ok(response) => machine.feed_http_response(response)?,
                Err(failure) => machine.feed_http_failure(failure)?,
            },
            Action::Done(outcome) => return Ok(outcome),
            // A new kind of step this loop does not know: end as a terminal would.
            _ => machine.cancel()?,
        }
    }
}

/// The card work of a card flow.
async fn card_flow(
    flow: Flow,
    channel: SweepChannel,
    image: &CardImage,
) -> mynacard_card::Result<()> {
    let pin = Pin::new(PIN).expect("the sweep's PIN");
    let policy = AttemptPolicy::default();
    let mut session = Session::new(channel);
    match flow {
        Flow::Certificates => {
            let mut ap = session.jpki().await?;
            for which in [
                PublicCertificate::Auth,
                PublicCertificate::AuthCa,
                PublicCertificate::SignCa,
            ] {
                ap.read_certificate(which).await?;
            }
        }
        Flow::PinVerify => {
            let mut ap = session.jpki().await?;
            ap.pin_status(JpkiKey::Auth).await?;
            ap.verify_auth(&pin, policy).await?;
        }
        Flow::Signing => {
            let mut ap = session.jpki().await?;
            let mut verified = ap.verify_auth(&pin, policy).await?;
            verified.sign(HashAlgorithm::Sha256, b"fault sweep").await?;
        }
        Flow::TextAttributes => {
            let mut text = session.text().await?;
            let mut verified = text.verify_pin(&pin, policy).await?;
            let mut secure = verified.secure_session().await?;
            secure.read_attributes().await?;
        }
        Flow::VisualFace => {
            let mut visual = session.visual().await?;
            visual.read_cvc().await?;
            let b = CollationB::from_digits(&common::collation_number_b(image))
                .expect("the card's 照合番号B");
            let mut verified = visual.verify_collation_b(&b, policy).await?;
            verified.read_face_checked(&CvcTrust::production()).await?;
        }
        Flow::PinChange => {
            let mut ap = session.jpki().await?;
            let mut verified = ap.verify_auth(&pin, policy).await?;
            verified.change_pin(&pin).await?;
        }
        Flow::WrongPin => {
            let mut ap = session.jpki().await?;
            ap.verify_auth(&Pin::new(WRONG_PIN).expect("a PIN"), policy)
                .await?;
        }
        _ => unreachable!("{flow:?} is a registration flow"),
    }
    Ok(())
}

/// One run's set-up.
#[derive(Debug, Clone, Copy)]
struct Setup {
    late_at: Option<u32>,
    http_fault: Option<(u32, FaultKind)>,
    breakage: Breakage,
}

impl Setup {
    const CLEAN: Setup = Setup {
        late_at: None,
        http_fault: None,
        breakage: Breakage::None,
    };
}

/// Runs a flow once in its own task: a panic is caught as a `JoinError`.
async fn run_once(
    path: Path,
    flow: Flow,
    sim: &SimCard,
    image: &CardImage,
    url: Option<&str>,
    setup: Setup,
) -> (Ended, Arc<Mutex<ChannelStats>>, u32) {
    let stats = Arc::new(Mutex::new(ChannelStats::default()));
    let channel = SweepChannel::new(sim, setup.late_at, setup.breakage, Arc::clone(&stats));
    let image = image.clone();
    let client = url.map(|url| Arc::new(SweepClient::new(url, setup.http_fault)));
    let task_client = client.clone();
    let task = tokio::spawn(async move {
        let mut channel = channel;
        match (path, task_client) {
            (Path::Session, _) => Ended::from_card(card_flow(flow, channel, &image).await),
            (Path::Driver, Some(client)) => {
                let mut terminal = flow.terminal(&image);
                match driver::run(flow.machine(), &mut channel, &*client, &mut terminal).await {
                    Ok(report) => Ended::Outcome(report.outcome),
                    Err(e) => Ended::Refused(format!("{e:?}")),
                }
            }
            (Path::Machine, Some(client)) => {
                let mut terminal = flow.terminal(&image);
                match run_by_hand(flow.machine(), &mut channel, &*client, &mut terminal).await {
                    Ok(outcome) => Ended::Outcome(outcome),
                    Err(e) => Ended::Refused(format!("{e:?}")),
                }
            }
            (_, None) => Ended::Refused("no service for a registration flow".into()),
        }
    });
    let ended = match task.await {
        Ok(ended) => ended,
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Ended::Panicked(message)
        }
        Err(e) => Ended::Panicked(format!("task failed: {e}")),
    };
    let requests = client.map_or(0, |c| *lock(&c.sent));
    (ended, stats, requests)
}

fn tries(sim: &SimCard) -> Vec<(SecretId, u8)> {
    sim.with_card(|card| {
        SecretId::ALL
            .iter()
            .filter_map(|id| card.secret_status(*id).map(|s| (*id, s.remaining)))
            .collect()
    })
}

fn verifies_reached(sim: &SimCard) -> u32 {
    let n = sim
        .log()
        .entries()
        .iter()
        .filter(|e| {
            is_verify_with_data(&e.command) || (e.command.get(1) == Some(&0x20) && e.redacted > 0)
        })
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A xorshift generator for the sampled byte positions: reproducible from the printed seed.
pub struct Sampler(u64);

impl Sampler {
    /// From `MYNACARD_SWEEP_SEED`, else from the clock.
    pub fn from_env() -> Sampler {
        let seed = std::env::var(SEED_VAR)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        Sampler(seed.max(1))
    }

    /// The seed (print it to replay).
    pub fn seed(&self) -> u64 {
        self.0
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// The byte positions of a response of `len` bytes to corrupt: all of a short one; of a
    /// long one, the first byte, the status word and [`CORRUPT_SAMPLE`] others.
    pub fn positions(&mut self, len: usize) -> Vec<usize> {
        if len <= ALL_BYTES_UP_TO {
            return (0..len).collect();
        }
        let mut picked = vec![0, len - 2, len - 1];
        while picked.len() < CORRUPT_SAMPLE + 3 {
            let p = 1 + usize::try_from(self.next() % (len as u64 - 3)).unwrap_or(0);
            if !picked.contains(&p) {
                picked.push(p);
            }
        }
        picked.sort_unstable();
        picked
    }
}

/// One row of the summary.
#[derive(Debug, Default, Clone)]
pub struct Row {
    /// Indexes swept (N or M).
    pub indexes: u32,
    /// Cases run.
    pub cases: u32,
    /// Cases where every rule held.
    pub held: u32,
    /// Cases that broke a rule only as a known finding.
    pub known: u32,
    /// How the faulted runs ended.
    pub ends: std::collections::BTreeSet<&'static str>,
}

/// The sweep's results.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Per path, flow and fault kind.
    pub rows: BTreeMap<(Path, Flow, FaultKind), Row>,
    /// Every violation.
    pub violations: Vec<Violation>,
    /// Every known finding met, with its index in [`KNOWN`].
    pub known: Vec<(usize, Violation)>,
    /// Time per path and flow.
    pub times: BTreeMap<(Path, Flow), Duration>,
}

impl Sweep {
    fn record(
        &mut self,
        path: Path,
        flow: Flow,
        fault: Fault,
        baseline: &Baseline,
        ended: &Ended,
        found: Vec<Violation>,
    ) {
        let (known, found) = triage(found, baseline);
        let row = self.rows.entry((path, flow, fault.kind)).or_default();
        row.ends.insert(ended.label());
        row.indexes = if FaultKind::CARD.contains(&fault.kind) {
            baseline.apdus
        } else {
            baseline.http_requests
        };
        row.cases += 1;
        if found.is_empty() && known.is_empty() {
            row.held += 1;
        } else if found.is_empty() {
            row.known += 1;
        }
        self.violations.extend(found);
        self.known.extend(known);
    }

    /// Cases that broke a rule only as a known finding.
    pub fn known_cases(&self) -> u32 {
        self.rows.values().map(|r| r.known).sum()
    }

    /// The known findings that did not occur.
    pub fn stale_known(&self) -> Vec<&'static str> {
        KNOWN
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.known.iter().any(|(k, _)| k == i))
            .map(|(_, k)| k.why)
            .collect()
    }

    /// Cases run.
    pub fn cases(&self) -> u32 {
        self.rows.values().map(|r| r.cases).sum()
    }

    /// Cases held.
    pub fn held(&self) -> u32 {
        self.rows.values().map(|r| r.held).sum()
    }

    /// The summary table.
    pub fn summary(&self, seed: u64, elapsed: Duration) -> String {
        use fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "fault sweep (seed {seed}, {CORRUPT_SAMPLE} sampled bytes per long response, \
             deadline {} ms)",
            DEADLINE.as_millis()
        );
        let _ = writeln!(
            out,
            "{:<8} | {:<22} | {:<12} | {:>7} | {:>5} | {:>5} | {:>5} | ends",
            "path", "flow", "fault", "indexes", "cases", "held", "known"
        );
        let mut last = None;
        for ((path, flow, kind), row) in &self.rows {
            if last.is_some_and(|l| l != (*path, *flow))
                && let Some(t) = last.and_then(|l| self.times.get(&l))
            {
                let _ = writeln!(
                    out,
                    "{:<8} | {:<22} | time {:.1} s",
                    "",
                    "",
                    t.as_secs_f64()
                );
            }
            last = Some((*path, *flow));
            let _ = writeln!(
                out,
                "{:<8} | {:<22} | {:<12} | {:>7} | {:>5} | {:>5} | {:>5} | {}",
                format!("{path:?}").to_lowercase(),
                flow.name(),
                kind.name(),
                row.indexes,
                row.cases,
                row.held,
                row.known,
                row.ends.iter().copied().collect::<Vec<_>>().join(", ")
            );
        }
        if let Some(t) = last.and_then(|l| self.times.get(&l)) {
            let _ = writeln!(
                out,
                "{:<8} | {:<22} | time {:.1} s",
                "",
                "",
                t.as_secs_f64()
            );
        }
        let _ = writeln!(
            out,
            "total: {} cases, {} held, {} violations, {} known findings not fixed, {:.1} s",
            self.cases(),
            self.held(),
            self.violations.len(),
            self.known_cases(),
            elapsed.as_secs_f64()
        );
        for (i, k) in KNOWN.iter().enumerate() {
            let cases: Vec<String> = self
                .known
                .iter()
                .filter(|(n, _)| *n == i)
                .map(|(_, v)| format!("{} | {}", v.flow, v.fault))
                .collect();
            if cases.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "KNOWN FINDING (not fixed, {} cases): {}\n    {}",
                cases.len(),
                k.why,
                cases.join("\n    ")
            );
        }
        for v in &self.violations {
            let _ = writeln!(out, "VIOLATION {v}");
        }
        out
    }
}

/// The service and card of one flow, brought back to the flow's starting state between runs.
struct Bench {
    flow: Flow,
    sim: SimCard,
    image: CardImage,
    service: Option<SqliteService>,
}

impl Bench {
    async fn new(flow: Flow) -> Bench {
        let (sim, image) = common::card(flow.profile());
        let service = if flow.uses_service() {
            Some(SqliteService::start().await)
        } else {
            None
        };
        let mut bench = Bench {
            flow,
            sim,
            image,
            service,
        };
        bench.restore().await;
        bench
    }

    fn url(&self) -> Option<String> {
        self.service.as_ref().map(SqliteService::url)
    }

    async fn registrations(&self) -> Option<i64> {
        match &self.service {
            Some(s) => Some(s.running.registration_count().await.expect("count")),
            None => None,
        }
    }

    /// The card back in the reader without faults, and the service in the flow's starting
    /// state: the card registered for the flows that need it, else a fresh database.
    async fn restore(&mut self) {
        self.sim.set_faults(Faults::none());
        self.sim.insert();
        let spent = self.sim.with_card(|card| {
            card.secret_status(SecretId::JpkiAuthPin)
                .is_some_and(|s| s.remaining < s.limit)
        });
        if spent {
            // A right PIN sets the counter back (a wrong-PIN flow spent one or two).
            let mut session = Session::new(self.sim.channel());
            let mut ap = session.jpki().await.expect("SELECT");
            ap.verify_auth(
                &Pin::new(PIN).expect("a PIN"),
                AttemptPolicy::AllowLastAttempt,
            )
            .await
            .expect("the right PIN");
        }
        let Some(service) = self.service.take() else {
            return;
        };
        let count = service.running.registration_count().await.expect("count");
        let wanted = i64::from(self.flow.needs_registration());
        let service = if count == wanted && (wanted == 0 || self.flow != Flow::Deregistration) {
            service
        } else {
            service.stop().await;
            SqliteService::start().await
        };
        if wanted == 1 && service.running.registration_count().await.expect("count") == 0 {
            let register = if self.flow.profile() == "face-auth" {
                Flow::KioskFace
            } else {
                Flow::AppPin
            };
            let url = service.url();
            let (ended, _, _) = run_once(
                Path::Driver,
                register,
                &self.sim,
                &self.image,
                Some(&url),
                Setup::CLEAN,
            )
            .await;
            assert!(
                matches!(ended, Ended::Outcome(Outcome::Registered { .. })),
                "set-up registration: {ended:?}"
            );
        }
        self.service = Some(service);
        self.sim.set_faults(Faults::none());
        self.sim.insert();
        self.sim.log().clear();
    }

    /// One run, observed, and the fresh attempt after it.
    async fn observe(
        &mut self,
        path: Path,
        fault: Option<Fault>,
        breakage: Breakage,
    ) -> (Observation, Arc<Mutex<ChannelStats>>, u32, Vec<usize>) {
        self.restore().await;
        let before = self.registrations().await;
        let tries_before = tries(&self.sim);
        let mut setup = Setup {
            breakage,
            ..Setup::CLEAN
        };
        if let Some(fault) = fault {
            match fault.kind {
                FaultKind::Pull => self.sim.set_faults(Faults {
                    pull_after_apdus: Some(u64::from(fault.index) - 1),
                    ..Faults::none()
                }),
                FaultKind::Reset => self.sim.set_faults(Faults {
                    reset_before_apdu: Some(u64::from(fault.index)),
                    ..Faults::none()
                }),
                FaultKind::Corrupt => self.sim.set_faults(Faults {
                    corrupt: Some(Corruption {
                        apdu: u64::from(fault.index),
                        byte: fault.byte.unwrap_or(0),
                        xor: 0xFF,
                    }),
                    ..Faults::none()
                }),
                FaultKind::Late => setup.late_at = Some(fault.index),
                http => setup.http_fault = Some((fault.index, http)),
            }
        }
        let url = self.url();
        self.sim.log().clear();
        let (ended, stats, requests) = run_once(
            path,
            self.flow,
            &self.sim,
            &self.image,
            url.as_deref(),
            setup,
        )
        .await;
        let response_lens = self
            .sim
            .log()
            .entries()
            .iter()
            .map(|e| e.response_len)
            .collect();
        let verifies = verifies_reached(&self.sim);
        let verify_indexes = self
            .sim
            .log()
            .entries()
            .iter()
            .zip(1..)
            .filter(|(e, _)| is_verify_with_data(&e.command))
            .map(|(_, i)| i)
            .collect();
        let tries_after = tries(&self.sim);
        let after = self.registrations().await;
        // The next attempt: faults gone, the card back, a fresh link and session.
        self.sim.set_faults(Faults::none());
        self.sim.insert();
        let (retry, _, _) = run_once(
            path,
            self.flow,
            &self.sim,
            &self.image,
            url.as_deref(),
            Setup::CLEAN,
        )
        .await;
        let verifies_answered = lock(&stats).verifies_answered;
        let obs = Observation {
            ended,
            verifies_reached: verifies,
            verifies_answered,
            verify_indexes,
            tries_before,
            tries_after,
            registrations: before.zip(after),
            retry,
        };
        (obs, stats, requests, response_lens)
    }

    async fn baseline(&mut self, path: Path) -> Baseline {
        let (obs, stats, requests, response_lens) = self.observe(path, None, Breakage::None).await;
        let baseline = Baseline {
            apdus: lock(&stats).apdus,
            response_lens,
            http_requests: requests,
            verifies: obs.verifies_reached,
            verify_indexes: obs.verify_indexes.clone(),
            ended: obs.ended.clone(),
            registrations: obs.registrations,
        };
        assert!(
            matches!(
                baseline.ended,
                Ended::CardDone | Ended::CardWrongPin { retries_left: 2 }
            ) || matches!(
                &baseline.ended,
                Ended::Outcome(
                    Outcome::Registered { .. }
                        | Outcome::Eligible(_)
                        | Outcome::Deregistered { .. }
                        | Outcome::WrongPin { retries_left: 2 }
                )
            ),
            "{path:?} {flow:?} fault-free: {:?}",
            baseline.ended,
            flow = self.flow
        );
        assert_eq!(
            baseline.apdus as usize,
            baseline.response_lens.len(),
            "every fault-free APDU reached the card"
        );
        baseline
    }
}

/// Sweeps one flow on one path: every card fault at every APDU, and (driver and machine) every
/// HTTP fault at every request.
pub async fn sweep_flow(
    sweep: &mut Sweep,
    sampler: &mut Sampler,
    path: Path,
    flow: Flow,
    breakage: Breakage,
) {
    let started = Instant::now();
    let mut bench = Bench::new(flow).await;
    let baseline = bench.baseline(path).await;
    let label = format!("{} {}", format!("{path:?}").to_lowercase(), flow.name());
    let mut faults = Vec::new();
    for index in 1..=baseline.apdus {
        for kind in FaultKind::CARD {
            if kind == FaultKind::Corrupt {
                let len = baseline.response_lens[index as usize - 1];
                for byte in sampler.positions(len) {
                    faults.push(Fault {
                        kind,
                        index,
                        byte: Some(byte),
                    });
                }
            } else {
                faults.push(Fault {
                    kind,
                    index,
                    byte: None,
                });
            }
        }
    }
    if path == Path::Driver {
        for index in 1..=baseline.http_requests {
            for kind in FaultKind::HTTP {
                faults.push(Fault {
                    kind,
                    index,
                    byte: None,
                });
            }
        }
    }
    for fault in faults {
        let (obs, _, _, _) = bench.observe(path, Some(fault), breakage).await;
        let found = check(&label, flow, fault, &baseline, &obs);
        sweep.record(path, flow, fault, &baseline, &obs.ended, found);
    }
    if let Some(service) = bench.service.take() {
        service.stop().await;
    }
    *sweep.times.entry((path, flow)).or_default() += started.elapsed();
}
