//! The flows counted: each runs through the workspace's own code (the card session, or the
//! registration machine and driver against the embedded reference service) over the simulated
//! card, every APDU recorded. From the record come our counts, the physical minimum the card's
//! protocol allows for the same work, and the sequence common tools send for it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_card::text::TextKey;
use mynacard_card::{AttemptPolicy, Pin, Session};
use mynacard_registration::attestation::SoftwareAttestationKey;
use mynacard_registration::driver::{self, Terminal};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::ConsentPrompt;
use mynacard_registration::messages::{FaceDecision, FaceMatch};
use mynacard_registration::{FlowConfig, Machine, OutcomeKind, TerminalKind};
use mynacard_registry::embedded::EmbeddedService;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_transport::{Capabilities, CardChannel, TransportError};
use zeroize::Zeroizing;

/// Why a flow could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// A built-in simulator profile is missing or broken.
    #[error("simulated card profile {profile}: {reason}")]
    Profile {
        /// The profile's name.
        profile: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The card session failed.
    #[error("{flow}: card: {source}")]
    Card {
        /// The flow.
        flow: &'static str,
        /// The card error.
        #[source]
        source: mynacard_card::Error,
    },
    /// The embedded service, the client or the driver failed.
    #[error("{flow}: {reason}")]
    Service {
        /// The flow.
        flow: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The flow ended otherwise than it should, so its counts would not be the flow's.
    #[error("{flow}: ended {got:?}, expected {expected:?}")]
    Outcome {
        /// The flow.
        flow: &'static str,
        /// How it ended.
        got: OutcomeKind,
        /// How it should have ended.
        expected: OutcomeKind,
    },
}

/// One command and the length of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The command APDU.
    pub command: Vec<u8>,
    /// The response, status word included.
    pub response_len: usize,
}

/// A channel that records every exchange of the channel it wraps.
#[derive(Debug)]
pub struct Recording<C> {
    inner: C,
    /// The exchanges so far.
    pub log: Vec<Exchange>,
}

impl<C> Recording<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Self {
        Recording {
            inner,
            log: Vec::new(),
        }
    }
}

#[async_trait]
impl<C: CardChannel> CardChannel for Recording<C> {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let response = self.inner.transmit(command).await?;
        self.log.push(Exchange {
            command: command.to_vec(),
            response_len: response.len(),
        });
        Ok(response)
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn was_reset(&mut self) -> bool {
        self.inner.was_reset()
    }
}

/// APDUs and bytes (both directions, status words included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Command APDUs.
    pub apdus: u64,
    /// Command bytes plus response bytes.
    pub bytes: u64,
    /// On-card RSA private-key operations.
    pub rsa_ops: u64,
}

impl Cost {
    fn add(&mut self, command: usize, response: usize) {
        self.apdus += 1;
        self.bytes += (command + response) as u64;
    }
}

/// What a flow needs of the card, recovered from its record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// AP selections (switches from one AP to another), as (command, response) lengths.
    pub ap_selects: Vec<(usize, usize)>,
    /// Bytes needed from each file read, by (AP, short EF id).
    pub files: BTreeMap<(Vec<u8>, u8), usize>,
    /// VERIFYs with a secret, by (command, response) lengths.
    pub verifies: Vec<(usize, usize)>,
    /// Retry-counter queries (VERIFY without data) of keys the flow does not also verify.
    pub status_queries: Vec<(usize, usize)>,
    /// Private-key commands (signature, internal authenticate, key exchange).
    pub rsa: Vec<(usize, usize)>,
    /// Every other command, kept as sent.
    pub other: Vec<(usize, usize)>,
}

const SELECT: u8 = 0xA4;
const READ_BINARY: u8 = 0xB0;
const GET_RESPONSE: u8 = 0xC0;
const VERIFY: u8 = 0x20;
/// PERFORM SECURITY OPERATION (compute digital signature), INTERNAL AUTHENTICATE and the text
/// AP's key exchange: each one RSA-2048 private-key operation on the card.
const RSA_INS: [u8; 3] = [0x2A, 0x88, 0xAE];

impl Needs {
    /// Recovers the needs from a record.
    pub fn of(log: &[Exchange]) -> Needs {
        let mut needs = Needs::default();
        let mut ap: Vec<u8> = Vec::new();
        let mut ef: Option<u8> = None;
        let mut last_read: Option<((Vec<u8>, u8), usize)> = None;
        let verified: Vec<u8> = log
            .iter()
            .filter(|e| e.command.get(1) == Some(&VERIFY) && e.command.len() > 5)
            .filter_map(|e| e.command.get(3).copied())
            .collect();
        for e in log {
            let c = &e.command;
            let (Some(&ins), Some(&p1), Some(&p2)) = (c.get(1), c.get(2), c.get(3)) else {
                needs.other.push((c.len(), e.response_len));
                continue;
            };
            let data = e.response_len.saturating_sub(2);
            if ins != GET_RESPONSE {
                last_read = None;
            }
            match ins {
                SELECT if p1 == 0x04 => {
                    let aid = c.get(5..).unwrap_or_default().to_vec();
                    let aid = aid
                        .get(..usize::from(c.get(4).copied().unwrap_or(0)))
                        .map(<[u8]>::to_vec)
                        .unwrap_or(aid);
                    if aid != ap {
                        needs.ap_selects.push((c.len(), e.response_len));
                        ap = aid;
                    }
                    ef = None;
                }
                // An EF selection: never needed, a short EF id in the command selects it.
                SELECT => ef = c.get(6).map(|low| low & 0x1F),
                READ_BINARY => {
                    let (file, offset) = if p1 & 0x80 != 0 {
                        (p1 & 0x1F, usize::from(p2))
                    } else {
                        (
                            ef.unwrap_or(0),
                            usize::from(p1 & 0x7F) << 8 | usize::from(p2),
                        )
                    };
                    if p1 & 0x80 != 0 {
                        ef = Some(file);
                    }
                    let key = (ap.clone(), file);
                    let end = offset + data;
                    let size = needs.files.entry(key.clone()).or_default();
                    *size = (*size).max(end);
                    last_read = Some((key, end));
                }
                GET_RESPONSE => match &mut last_read {
                    Some((key, end)) => {
                        *end += data;
                        let size = needs.files.entry(key.clone()).or_default();
                        *size = (*size).max(*end);
                    }
                    None => needs.other.push((c.len(), e.response_len)),
                },
                VERIFY if c.len() > 5 => needs.verifies.push((c.len(), e.response_len)),
                VERIFY if !verified.contains(&p2) => {
                    needs.status_queries.push((c.len(), e.response_len))
                }
                // A retry-counter check before a VERIFY: the VERIFY itself answers the tries.
                VERIFY => {}
                i if RSA_INS.contains(&i) => needs.rsa.push((c.len(), e.response_len)),
                _ => needs.other.push((c.len(), e.response_len)),
            }
        }
        needs
    }

    /// The fewest APDUs and bytes the card's protocol allows for these needs: one AP selection
    /// per switch, each file in reads of the largest answer the link carries (the first by
    /// short EF id, so no SELECT EF), the secrets and private-key commands as they are, no
    /// retry-counter check before a VERIFY.
    pub fn minimum(&self, link: &LinkLimits) -> Cost {
        let mut cost = self.fixed(false);
        for &size in self.files.values() {
            let chunk = link.max_answer();
            let reads = size.div_ceil(chunk).max(1);
            // `00 B0 P1 P2 Le`: 5 bytes, or 7 with an extended Le.
            let command = if link.extended_length { 7 } else { 5 };
            cost.apdus += reads as u64;
            cost.bytes += (reads * (command + 2) + size) as u64;
        }
        cost
    }

    /// The sequence common tools send: SELECT EF before each file, PIN and key, then
    /// 256-byte READ BINARYs; a retry-counter check before each VERIFY.
    pub fn common(&self) -> Cost {
        // `00 A4 02 0C 02 FID FID` answered by a status word.
        const SELECT_EF: (usize, usize) = (7, 2);
        let mut cost = self.fixed(true);
        for _ in 0..self.verifies.len() + self.rsa.len() {
            cost.add(SELECT_EF.0, SELECT_EF.1);
        }
        for &size in self.files.values() {
            cost.add(SELECT_EF.0, SELECT_EF.1);
            let reads = size.div_ceil(256).max(1);
            cost.apdus += reads as u64;
            cost.bytes += (reads * (5 + 2) + size) as u64;
        }
        cost
    }

    /// The commands every sequence sends alike.
    fn fixed(&self, status_before_verify: bool) -> Cost {
        let mut cost = Cost::default();
        let status = if status_before_verify {
            // `00 20 00 P2` answered by `63Cx`.
            vec![(4usize, 2usize); self.verifies.len()]
        } else {
            Vec::new()
        };
        for &(c, r) in self
            .ap_selects
            .iter()
            .chain(&self.verifies)
            .chain(&self.status_queries)
            .chain(&status)
            .chain(&self.rsa)
            .chain(&self.other)
        {
            cost.add(c, r);
        }
        cost.rsa_ops = self.rsa.len() as u64;
        cost
    }

    /// One line saying how the minimum was derived.
    pub fn reason(&self, link: &LinkLimits) -> String {
        let files: Vec<String> = self
            .files
            .values()
            .map(|size| {
                format!(
                    "{size} B in {}",
                    plural(size.div_ceil(link.max_answer()).max(1), "read")
                )
            })
            .collect();
        let mut parts = vec![plural(self.ap_selects.len(), "AP selection")];
        if !files.is_empty() {
            parts.push(format!(
                "{} by short EF id ({}; {} B answers)",
                plural(files.len(), "file"),
                files.join(", "),
                link.max_answer()
            ));
        }
        if !self.verifies.is_empty() {
            parts.push(format!(
                "{} without a retry-counter check",
                plural(self.verifies.len(), "VERIFY")
            ));
        }
        if !self.status_queries.is_empty() {
            parts.push(plural(self.status_queries.len(), "retry-counter query"));
        }
        if !self.rsa.is_empty() {
            parts.push(plural(self.rsa.len(), "private-key command"));
        }
        if !self.other.is_empty() {
            parts.push(plural(self.other.len(), "other command"));
        }
        parts.join("; ")
    }
}

fn plural(n: usize, what: &str) -> String {
    match (n, what.strip_suffix('y')) {
        (1, _) => format!("1 {what}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}

/// What the link lets one answer carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkLimits {
    /// Extended-length APDUs are carried.
    pub extended_length: bool,
    /// The most response data the card sends in one answer.
    pub max_response_data: usize,
}

impl LinkLimits {
    /// The largest answer one READ BINARY can have on this link.
    pub fn max_answer(&self) -> usize {
        let cap = if self.extended_length { 65_536 } else { 256 };
        self.max_response_data.clamp(1, cap)
    }
}

/// One counted flow.
#[derive(Debug, Clone)]
pub struct FlowCount {
    /// The flow's name (the report's row).
    pub name: &'static str,
    /// The simulated card's profile.
    pub profile: &'static str,
    /// Ours, as recorded.
    pub ours: Cost,
    /// The physical minimum.
    pub minimum: Cost,
    /// The common tools' sequence.
    pub common: Cost,
    /// How the minimum was derived.
    pub reason: String,
    /// The link's limits.
    pub link: LinkLimits,
}

impl FlowCount {
    fn new(name: &'static str, profile: &'static str, image: &CardImage, log: &[Exchange]) -> Self {
        let link = LinkLimits {
            extended_length: image.link.extended_length,
            max_response_data: image.link.max_response_data,
        };
        let needs = Needs::of(log);
        let mut ours = Cost::default();
        for e in log {
            ours.add(e.command.len(), e.response_len);
        }
        ours.rsa_ops = needs.rsa.len() as u64;
        FlowCount {
            name,
            profile,
            ours,
            minimum: needs.minimum(&link),
            common: needs.common(),
            reason: needs.reason(&link),
            link,
        }
    }
}

fn image(profile: &'static str) -> Result<CardImage, FlowError> {
    CardImage::from_profile_name(profile).map_err(|e| FlowError::Profile {
        profile,
        reason: e.to_string(),
    })
}

pub(crate) fn secret(
    profile: &'static str,
    s: Option<&mynacard_sim::image::Secret>,
) -> Result<Pin, FlowError> {
    let bad = |reason: &str| FlowError::Profile {
        profile,
        reason: reason.to_owned(),
    };
    let s = s.ok_or_else(|| bad("no PIN"))?;
    let text = std::str::from_utf8(&s.value).map_err(|_| bad("PIN not text"))?;
    Pin::new(text).map_err(|_| bad("PIN of the wrong form"))
}

/// The flows that use the card session alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardFlow {
    /// Reading the auth certificate.
    AuthCert,
    /// Reading the two CA certificates.
    CaCerts,
    /// Reading the text AP's attributes after its PIN.
    TextAp,
    /// Reading the visual AP's card face after 照合番号B.
    VisualAp,
    /// PIN status of the auth, sign and text PINs.
    PinStatus,
}

impl CardFlow {
    /// Every card-only flow, in the report's order.
    pub const ALL: [CardFlow; 5] = [
        CardFlow::AuthCert,
        CardFlow::CaCerts,
        CardFlow::TextAp,
        CardFlow::VisualAp,
        CardFlow::PinStatus,
    ];

    /// The report's row name.
    pub fn name(self) -> &'static str {
        match self {
            CardFlow::AuthCert => "read auth certificate",
            CardFlow::CaCerts => "read CA certificates (auth, sign)",
            CardFlow::TextAp => "read text AP attributes (PIN)",
            CardFlow::VisualAp => "read visual AP card face (照合番号B)",
            CardFlow::PinStatus => "PIN status (auth, sign, text)",
        }
    }
}

/// A card-only flow: the session's operations on one fresh card.
async fn card_flow(flow: CardFlow, profile: &'static str) -> Result<FlowCount, FlowError> {
    let name = flow.name();
    let image = image(profile)?;
    let card = |source| FlowError::Card { flow: name, source };
    let mut session = Session::new(Recording::new(SimCard::from_image(image.clone()).channel()));
    match flow {
        CardFlow::AuthCert => {
            let mut ap = session.jpki().await.map_err(card)?;
            ap.read_certificate(PublicCertificate::Auth)
                .await
                .map_err(card)?;
        }
        CardFlow::CaCerts => {
            let mut ap = session.jpki().await.map_err(card)?;
            ap.read_certificate(PublicCertificate::AuthCa)
                .await
                .map_err(card)?;
            ap.read_certificate(PublicCertificate::SignCa)
                .await
                .map_err(card)?;
        }
        CardFlow::PinStatus => {
            let mut ap = session.jpki().await.map_err(card)?;
            ap.pin_status(JpkiKey::Auth).await.map_err(card)?;
            ap.pin_status(JpkiKey::Sign).await.map_err(card)?;
            let mut text = session.text().await.map_err(card)?;
            text.pin_status(TextKey::Pin).await.map_err(card)?;
        }
        CardFlow::TextAp => {
            let pin = secret(profile, image.text_pin.as_ref())?;
            let mut text = session.text().await.map_err(card)?;
            let mut verified = text
                .verify_pin(&pin, AttemptPolicy::default())
                .await
                .map_err(card)?;
            verified.read_attributes().await.map_err(card)?;
        }
        CardFlow::VisualAp => {
            let code = image.collation_number_b().map_err(|e| FlowError::Profile {
                profile,
                reason: e.to_string(),
            })?;
            let mut visual = session.visual().await.map_err(card)?;
            let mut verified = visual
                .verify_collation_b(&code, AttemptPolicy::default())
                .await
                .map_err(card)?;
            verified.read_face().await.map_err(card)?;
        }
    }
    let log = session.into_channel().log;
    Ok(FlowCount::new(name, profile, &image, &log))
}

/// A terminal that agrees, types the card's PIN, reads 照合番号B off the card face, sees the
/// card holder and attests with its test key.
struct PerfTerminal {
    image: CardImage,
    attestation: SoftwareAttestationKey,
}

#[async_trait]
impl Terminal for PerfTerminal {
    async fn consent(&mut self, _prompt: &ConsentPrompt) -> bool {
        true
    }

    async fn pin(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.image
            .auth_pin
            .as_ref()
            .and_then(|p| String::from_utf8(p.value.to_vec()).ok())
            .map(Zeroizing::new)
    }

    async fn collation_number_b(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        let b = self.image.collation_number_b().ok()?;
        Some(Zeroizing::new(b.expose().to_owned()))
    }

    async fn match_face(&mut self, photo: &[u8]) -> Option<FaceMatch> {
        let matched = photo == self.image.face.photo.as_slice();
        Some(FaceMatch {
            decision: if matched {
                FaceDecision::Match
            } else {
                FaceDecision::NoMatch
            },
            score_permille: if matched { 960 } else { 100 },
            threshold_permille: 900,
        })
    }

    async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        Some(self.attestation.sign(message))
    }
}

/// A machine flow of the steps table.
struct Step {
    machine: fn(FlowConfig) -> Machine,
    terminal: &'static str,
    kind: TerminalKind,
    expected: OutcomeKind,
}

const REGISTER_PIN: Step = Step {
    machine: Machine::register_with_pin,
    terminal: "app-0001",
    kind: TerminalKind::App,
    expected: OutcomeKind::Registered,
};
const REGISTER_ATM: Step = Step {
    machine: Machine::register_with_pin,
    terminal: "atm-0001",
    kind: TerminalKind::Atm,
    expected: OutcomeKind::Registered,
};
const REGISTER_FACE: Step = Step {
    machine: Machine::register_with_face,
    terminal: "kiosk-0001",
    kind: TerminalKind::Kiosk,
    expected: OutcomeKind::Registered,
};
const ELIGIBILITY_PIN: Step = Step {
    machine: Machine::check_eligibility_with_pin,
    terminal: "clinic-0001",
    kind: TerminalKind::FaceReader,
    expected: OutcomeKind::Eligible,
};
const ELIGIBILITY_FACE: Step = Step {
    machine: Machine::check_eligibility_with_face,
    terminal: "kiosk-0001",
    kind: TerminalKind::Kiosk,
    expected: OutcomeKind::Eligible,
};
const DEREGISTER: Step = Step {
    machine: Machine::deregister,
    terminal: "app-0001",
    kind: TerminalKind::App,
    expected: OutcomeKind::Deregistered,
};

/// Runs `steps` in order against one fresh service, each with a fresh card of `profile`;
/// returns the record of the last.
fn machine_flow(
    name: &'static str,
    profile: &'static str,
    steps: &[Step],
) -> Result<FlowCount, FlowError> {
    let image = image(profile)?;
    let failed = |reason: String| FlowError::Service { flow: name, reason };
    // The service runs on its own runtime, so it starts and stops outside the client's;
    // dropping it stops it and removes its database.
    let service = EmbeddedService::start("mynacard-perf").map_err(|e| failed(e.to_string()))?;
    let client = HttpClient::new(service.base_url()).map_err(|e| failed(e.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let log = runtime.block_on(async {
        let mut log = Vec::new();
        for step in steps {
            let mut channel = Recording::new(SimCard::from_image(image.clone()).channel());
            let mut terminal = PerfTerminal {
                image: image.clone(),
                attestation: SoftwareAttestationKey::for_testing(step.terminal),
            };
            let machine = (step.machine)(FlowConfig::new(step.terminal, step.kind));
            let report = driver::run(machine, &mut channel, &client, &mut terminal)
                .await
                .map_err(|e| failed(e.to_string()))?;
            let got = report.outcome.kind();
            if got != step.expected {
                return Err(FlowError::Outcome {
                    flow: name,
                    got,
                    expected: step.expected,
                });
            }
            log = channel.log;
        }
        Ok(log)
    })?;
    drop(runtime);
    drop(service);
    Ok(FlowCount::new(name, profile, &image, &log))
}

/// Counts every flow. Not from within an async runtime: each registration flow starts the
/// embedded service (its own runtime) and a client runtime of its own.
///
/// # Errors
/// [`FlowError`] of the first flow that fails.
pub fn count_all() -> Result<Vec<FlowCount>, FlowError> {
    let mut out = vec![
        machine_flow(
            "PIN registration, app, extended length",
            "adult",
            &[REGISTER_PIN],
        )?,
        machine_flow(
            "PIN registration, app, short APDUs only",
            "no-extended",
            &[REGISTER_PIN],
        )?,
        machine_flow(
            "PIN registration, ATM, extended length",
            "adult",
            &[REGISTER_ATM],
        )?,
        machine_flow("face registration, kiosk", "face-auth", &[REGISTER_FACE])?,
        machine_flow(
            "eligibility by PIN",
            "adult",
            &[REGISTER_PIN, ELIGIBILITY_PIN],
        )?,
        machine_flow(
            "eligibility by face",
            "face-auth",
            &[REGISTER_FACE, ELIGIBILITY_FACE],
        )?,
        machine_flow("deregistration", "adult", &[REGISTER_PIN, DEREGISTER])?,
    ];
    for flow in CardFlow::ALL {
        out.push(pollster::block_on(card_flow(flow, "adult"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(command: &[u8], response_len: usize) -> Exchange {
        Exchange {
            command: command.to_vec(),
            response_len,
        }
    }

    #[test]
    fn needs_drop_ef_selects_and_status_checks_and_size_files() {
        let log = [
            ex(&[0, 0xA4, 4, 0x0C, 2, 0xD3, 0x92], 2),
            ex(&[0, 0xA4, 2, 0x0C, 2, 0x00, 0x0A], 2),
            ex(&[0, 0xB0, 0, 0, 0], 258),
            ex(&[0, 0xB0, 1, 0, 0], 102),
            ex(&[0, 0x20, 0, 0x98], 2),
            ex(&[0, 0x20, 0, 0x98, 4, 1, 2, 3, 4], 2),
            ex(&[0x80, 0x2A, 0, 0x80, 3, 1, 2, 3, 0], 258),
        ];
        let needs = Needs::of(&log);
        assert_eq!(needs.ap_selects.len(), 1);
        assert_eq!(needs.files.values().copied().collect::<Vec<_>>(), [356]);
        assert_eq!(needs.verifies.len(), 1);
        assert!(needs.status_queries.is_empty());
        assert_eq!(needs.rsa.len(), 1);

        let ext = LinkLimits {
            extended_length: true,
            max_response_data: 4096,
        };
        let min = needs.minimum(&ext);
        // AP select, one extended read, VERIFY, signature.
        assert_eq!(min.apdus, 4);
        assert_eq!(min.bytes, (7 + 2) + (7 + 2 + 356) + (9 + 2) + (9 + 258));
        let short = LinkLimits {
            extended_length: false,
            max_response_data: 4096,
        };
        assert_eq!(needs.minimum(&short).apdus, 5);
        // AP select, SELECT EF + 2 reads, status + SELECT EF + VERIFY, SELECT EF + signature.
        let common = needs.common();
        assert_eq!(common.apdus, 1 + 3 + 3 + 2);
        assert_eq!(common.rsa_ops, 1);
    }

    #[test]
    fn plurals() {
        assert_eq!(plural(1, "read"), "1 read");
        assert_eq!(plural(2, "read"), "2 reads");
        assert_eq!(plural(3, "retry-counter query"), "3 retry-counter queries");
    }
}
