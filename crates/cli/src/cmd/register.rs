//! `mynacard register`: register the card for health-insurance use, as a smartphone app, an
//! ATM or an accredited face-recognition kiosk would. Also the pieces `eligibility` and
//! `deregister` share: the terminal (consent screen, PIN pad, OCR, camera, attestation key), the
//! run over the chosen card and service, and the printed result.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use clap::{Args, ValueEnum};
use mynacard_registration::attestation::SoftwareAttestationKey;
use mynacard_registration::driver::{self, RunReport, Terminal, Wait};
use mynacard_registration::http::{HttpClient, HttpClientError};
use mynacard_registration::machine::{ConsentPrompt, FlowConfig, Machine};
use mynacard_registration::messages::{FaceDecision, FaceMatch, Operation, TerminalKind};
use mynacard_registration::{Outcome, RegistrationPending};
use mynacard_sim::image::CardImage;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::cmd::card_select::{self, CardOptions, SecretInput};
use crate::exit::{CliError, ExitCode};
use crate::input;
use crate::output::Output;

/// Where registration happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Channel {
    /// A smartphone app reading the card over NFC; the auth PIN.
    App,
    /// A bank ATM; the auth PIN on its PIN pad.
    Atm,
    /// An accredited face-recognition kiosk; no PIN.
    Kiosk,
}

impl Channel {
    fn kind(self) -> TerminalKind {
        match self {
            Channel::App => TerminalKind::App,
            Channel::Atm => TerminalKind::Atm,
            Channel::Kiosk => TerminalKind::Kiosk,
        }
    }

    fn default_terminal(self) -> &'static str {
        match self {
            Channel::App => "app-0001",
            Channel::Atm => "atm-0001",
            Channel::Kiosk => "kiosk-0001",
        }
    }
}

/// Options every registration-service command shares.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServiceArgs {
    /// The registration service, e.g. `http://127.0.0.1:8600` (see `mynacard registry serve`).
    #[arg(long, value_name = "URL")]
    pub(crate) service: String,

    /// This terminal's id as the service knows it (default: one of the test terminals).
    #[arg(long, value_name = "ID")]
    pub(crate) terminal_id: Option<String>,

    /// Language of the consent text and messages: `ja` or `en`.
    #[arg(long, value_name = "LANG", default_value = "ja")]
    pub(crate) locale: String,

    /// Agree to the consent without asking (the text is still printed to stderr).
    #[arg(long)]
    pub(crate) yes: bool,

    /// Read the PIN (and 照合番号B) from stdin, one per line, instead of prompting.
    #[arg(long)]
    pub(crate) pin_stdin: bool,

    /// Allow the VERIFY when only one try is left (a wrong PIN then blocks it).
    #[arg(long)]
    pub(crate) allow_last_attempt: bool,

    /// Face terminals: the attestation key, PKCS#8 DER. Without it, a simulated card uses the
    /// test key of the terminal id (which only a test service accepts).
    #[arg(long, value_name = "FILE")]
    pub(crate) attestation_key: Option<PathBuf>,

    /// PEM file of the CA that signed the service's TLS certificate, trusted instead of the
    /// public web roots (https:// services only).
    #[arg(long, value_name = "FILE")]
    pub(crate) service_ca: Option<PathBuf>,

    /// PEM file with this terminal's client certificate (and any intermediates) and its PKCS#8
    /// private key, for a service that identifies terminals by mutual TLS (https:// only); the
    /// certificate's common name must be the terminal id.
    #[arg(long, value_name = "FILE")]
    pub(crate) client_cert: Option<PathBuf>,
}

/// `mynacard register`.
#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// Where the registration happens.
    #[arg(long, value_enum, required_unless_present = "resume")]
    channel: Option<Channel>,

    #[command(flatten)]
    service: ServiceArgs,

    /// Do not wait when the service accepts the registration but finishes it later (an
    /// upstream is slow): print the pending status (outcome `pending`, with the poll URL and,
    /// in --json, the poll token and deadline) and exit 0; --resume finishes it later from
    /// the --json document. Without it the command polls until the registration ends; if it
    /// is still pending when --max-wait runs out it prints the same pending status and exits 8.
    #[arg(long)]
    no_wait: bool,

    /// Wait at most this many seconds for a registration the service finishes later
    /// (default: until the service's own deadline).
    #[arg(long, value_name = "SECS", conflicts_with = "no_wait")]
    max_wait: Option<u64>,

    /// Finish a registration an earlier `register --no-wait --json` left pending: FILE is the
    /// JSON document it printed (`-` reads it from stdin). No card, PIN or consent is involved
    /// (that part is done); the status is polled at --service, which must be the service the
    /// document's poll URL names, for as long as --max-wait allows. Exit 0 when registered
    /// (also already registered or relinked), 7 when the registration failed or the service
    /// refused the poll (e.g. `E_SESSION_NOT_FOUND` for a wrong token), 8 when it is still
    /// pending as the wait ends (the pending status is printed again; resume it later), 2 when
    /// FILE is not such a pending status or names another service.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "no_wait", "channel", "terminal_id", "pin_stdin", "allow_last_attempt",
            "attestation_key",
        ]
    )]
    resume: Option<PathBuf>,
}

/// The parts of a `register --no-wait --json` document a resume needs; the rest is ignored.
#[derive(Debug, Deserialize)]
struct PendingDocument {
    operation: Option<String>,
    outcome: Option<String>,
    terminal_id: Option<String>,
    pending: Option<RegistrationPending>,
    poll_url: Option<String>,
}

/// Runs `mynacard register`.
///
/// # Errors
/// Usage, card and service errors; a flow that ends without registering maps to its exit code.
pub(crate) fn run(card: &CardOptions, args: RegisterArgs, out: &Output) -> Result<(), CliError> {
    let wait = match (args.no_wait, args.max_wait) {
        (true, _) => Wait::No,
        (false, Some(secs)) => Wait::at_most(std::time::Duration::from_secs(secs)),
        (false, None) => Wait::ForService,
    };
    if let Some(path) = &args.resume {
        if card.record().is_some() {
            return Err(CliError::usage(
                "--record records a card's APDUs, and `register --resume` talks to no card \
                 (the card's part is done): drop --record",
            ));
        }
        return resume(path, &args.service, out, wait);
    }
    // clap requires --channel without --resume.
    let Some(channel) = args.channel else {
        return Err(CliError::usage("--channel is required"));
    };
    let terminal_id = args
        .service
        .terminal_id
        .clone()
        .unwrap_or_else(|| channel.default_terminal().to_owned());
    let config = flow_config(&args.service, &terminal_id, channel.kind());
    let machine = match channel {
        Channel::Kiosk => Machine::register_with_face(config),
        Channel::App | Channel::Atm => Machine::register_with_pin(config),
    };
    run_and_print_waiting(card, &args.service, &terminal_id, machine, out, wait)
}

/// `register --resume`: polls the registration a pending-status document names until it ends
/// or `wait` runs out, and prints the result as a registration would.
fn resume(
    path: &std::path::Path,
    args: &ServiceArgs,
    out: &Output,
    wait: Wait,
) -> Result<(), CliError> {
    let doc = read_pending_document(path)?;
    let client = service_client(args)?;
    let not_pending = |what: &str| {
        CliError::usage(format!(
            "{} is not a pending registration as `register --no-wait --json` prints it: {what}",
            source_name(path)
        ))
    };
    if doc.operation.as_deref() != Some(Operation::RegisterInsuranceUse.as_str()) {
        return Err(not_pending("not a registration"));
    }
    if doc.outcome.as_deref() != Some("pending") {
        return Err(not_pending("its outcome is not `pending`"));
    }
    let (Some(pending), Some(poll_url), Some(terminal_id)) =
        (doc.pending, doc.poll_url, doc.terminal_id)
    else {
        return Err(not_pending("no pending status, poll URL or terminal id"));
    };
    // The token goes only to the service named on the command line, and only if the document
    // was printed for that service.
    let expected = format!("{}{}", client.base_url(), pending.poll.url);
    if poll_url != expected {
        return Err(CliError::usage(format!(
            "the poll URL {poll_url} is not the status of session {} at --service {}",
            pending.session_id,
            client.base_url()
        )));
    }
    // A poll sends no terminal kind; the config's is unused.
    let config = flow_config(args, &terminal_id, TerminalKind::App);
    let machine = Machine::poll_registration(config, pending)
        .map_err(|e| not_pending("its poll URL is not the session's status path").with_source(e))?;
    let report = runtime()?
        .block_on(driver::poll(machine, &client, wait))
        .map_err(|e| CliError::new(ExitCode::Failure, "the flow stopped").with_source(e))?;
    print_report(
        out,
        Operation::RegisterInsuranceUse,
        &terminal_id,
        &report,
        &args.locale,
        &client,
        wait,
    )
}

/// How errors name the `--resume` document.
fn source_name(path: &std::path::Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Reads and parses the document `--resume` names (`-`: stdin).
fn read_pending_document(path: &std::path::Path) -> Result<PendingDocument, CliError> {
    let text = if path.as_os_str() == "-" {
        input::read_bounded_from(std::io::stdin().lock(), "stdin", input::PENDING_DOCUMENT, 0)?
    } else {
        input::read_bounded(path, input::PENDING_DOCUMENT)?
    };
    // serde_json's messages quote a value only when its type is wrong, and a token of the
    // wrong type is no token, so the cause never shows a usable one.
    serde_json::from_slice(&text).map_err(|e| {
        CliError::usage(format!(
            "{} is not the JSON document `register --no-wait --json` prints",
            source_name(path)
        ))
        .with_source(e)
    })
}

pub(crate) fn flow_config(args: &ServiceArgs, terminal_id: &str, kind: TerminalKind) -> FlowConfig {
    FlowConfig::new(terminal_id, kind)
        .with_locale(args.locale.clone())
        .with_allow_last_attempt(args.allow_last_attempt)
}

/// Runs a machine over the chosen card and service and prints the result.
///
/// # Errors
/// As [`run`].
pub(crate) fn run_and_print(
    card: &CardOptions,
    args: &ServiceArgs,
    terminal_id: &str,
    machine: Machine,
    out: &Output,
) -> Result<(), CliError> {
    run_and_print_waiting(card, args, terminal_id, machine, out, Wait::ForService)
}

/// As [`run_and_print`], waiting for a pending registration as `wait` allows; with
/// [`Wait::No`] a pending registration is printed as the result (exit 0).
///
/// # Errors
/// As [`run`].
pub(crate) fn run_and_print_waiting(
    card: &CardOptions,
    args: &ServiceArgs,
    terminal_id: &str,
    machine: Machine,
    out: &Output,
    wait: Wait,
) -> Result<(), CliError> {
    let face = machine.method() == mynacard_registration::Method::AccreditedFace;
    let image = match card.sim_profile() {
        Some(profile) => Some(CardImage::from_profile_name(&profile).map_err(|e| {
            CliError::usage(format!("no simulated card profile {profile:?}")).with_source(e)
        })?),
        None => None,
    };
    if face && image.is_none() {
        return Err(CliError::usage(
            "face registration needs the kiosk's camera; this command offers it only with the \
             simulated card (--card sim:PROFILE)",
        ));
    }
    let attestation = if face {
        Some(match &args.attestation_key {
            Some(path) => {
                let der = Zeroizing::new(input::read_bounded(path, input::PKCS8_KEY)?);
                SoftwareAttestationKey::from_pkcs8_der(&der).map_err(|e| {
                    CliError::usage(format!("{} is not a P-256 PKCS#8 key", path.display()))
                        .with_source(e)
                })?
            }
            None => SoftwareAttestationKey::for_testing(terminal_id),
        })
    } else {
        None
    };
    let client = service_client(args)?;
    let mut channel = card_select::open_channel(card)?;
    let op = machine.operation();
    let mut terminal = CliTerminal {
        yes: args.yes,
        pin_stdin: args.pin_stdin,
        image,
        attestation,
        error: None,
    };
    let runtime = runtime()?;
    let report = runtime
        .block_on(driver::run_waiting(
            machine,
            &mut channel,
            &client,
            &mut terminal,
            wait,
        ))
        .map_err(|e| CliError::new(ExitCode::Failure, "the flow stopped").with_source(e))?;
    if let Some(e) = terminal.error.take() {
        return Err(e);
    }
    print_report(out, op, terminal_id, &report, &args.locale, &client, wait)
}

/// The HTTP client (reqwest over rustls) for `--service`, with `--service-ca` and
/// `--client-cert` when given.
fn service_client(args: &ServiceArgs) -> Result<HttpClient, CliError> {
    // A PEM file of an option; it may hold a private key, so the copy is wiped when dropped.
    let pem = |option: &str, path: &std::path::Path| {
        input::read_bounded(path, input::PEM_BUNDLE)
            .map(Zeroizing::new)
            .map_err(|e| e.prefixed(option))
    };
    let unusable = |option: &str, path: &std::path::Path, what: &str| {
        let message = format!("{option}: {} is not {what}", path.display());
        move |e: HttpClientError| CliError::usage(message).with_source(e)
    };
    let mut builder = HttpClient::builder(&args.service);
    if let Some(path) = &args.service_ca {
        builder = builder
            .trust_only(&pem("--service-ca", path)?)
            .map_err(unusable("--service-ca", path, "a PEM CA certificate"))?;
    }
    if let Some(path) = &args.client_cert {
        builder = builder
            .client_identity(&pem("--client-cert", path)?)
            .map_err(unusable(
                "--client-cert",
                path,
                "a PEM certificate with its PKCS#8 key",
            ))?;
    }
    builder.build().map_err(|e| {
        let message = match e {
            HttpClientError::TlsOverPlainHttp => {
                "--service-ca and --client-cert need an https:// --service".to_owned()
            }
            _ => format!("--service {:?} is not an http(s) URL", args.service),
        };
        CliError::usage(message).with_source(e)
    })
}

/// Prints a finished run, or ends the command with its outcome's error. A pending
/// registration is a result only when `wait` was [`Wait::No`].
fn print_report(
    out: &Output,
    op: Operation,
    terminal_id: &str,
    report: &RunReport,
    locale: &str,
    client: &HttpClient,
    wait: Wait,
) -> Result<(), CliError> {
    let mut result = FlowResult::new(op, terminal_id, report, locale);
    let pending = matches!(report.outcome, Outcome::Pending(_));
    if pending {
        result.poll_url = result
            .pending
            .as_ref()
            .map(|p| format!("{}{}", client.base_url(), p.poll.url));
    }
    if report.outcome.is_success() || (pending && wait == Wait::No) {
        // Asked not to wait, a pending registration is what was asked for.
        out.print(&result)
    } else if pending {
        // The wait ran out, but the service goes on and may still register the card: the
        // status (with its poll token) is printed so that `--resume` can take it up.
        out.print(&result)?;
        Err(CliError::new(
            ExitCode::StillPending,
            format!(
                "the registration is still pending: the service finishes it when its upstream \
                 answers; resume later with `mynacard register --resume FILE --service {}`, \
                 FILE being this command's --json output",
                client.base_url()
            ),
        )
        .after_printed_result())
    } else if let Outcome::ServiceUnreachable {
        proof_may_have_arrived: true,
    } = report.outcome
    {
        Err(unknown_outcome_error(
            op,
            report.session_id.as_deref(),
            locale,
        ))
    } else {
        Err(outcome_error(&report.outcome, locale))
    }
}

/// The error of a flow whose proof was sent and never answered: the service may have done it,
/// so the message says what to run to find out (protocol §10: a proof is idempotent, and a
/// second registration of the same card answers `already_registered`).
fn unknown_outcome_error(op: Operation, session: Option<&str>, locale: &str) -> CliError {
    let session = session.map_or_else(String::new, |id| format!(" of session {id}"));
    let next = match op {
        Operation::RegisterInsuranceUse => {
            "the card may be registered. Once the service answers, run the same `mynacard \
             register` again: it answers `already_registered` (with the registration id) if \
             this one arrived, and registers the card if not; `mynacard eligibility` also shows \
             whether it is registered"
        }
        Operation::DeregisterInsuranceUse => {
            "the registration may be withdrawn. Once the service answers, `mynacard eligibility` \
             answers `not_registered` if this one arrived; run `mynacard deregister` again if \
             not"
        }
        _ => "a check changes nothing: run `mynacard eligibility` again once the service answers",
    };
    CliError::new(
        ExitCode::OutcomeUnknown,
        format!(
            "the outcome is unknown: the proof{session} was sent and the service stopped \
             answering before its answer, so {next}"
        ),
    )
    .with_source(OutcomeDetail(format!(
        "service_unreachable: {}",
        Outcome::ServiceUnreachable {
            proof_may_have_arrived: true
        }
        .message(locale)
    )))
}

/// A tokio runtime for the HTTP client (and, in the demo, the service).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            CliError::new(ExitCode::Failure, "cannot start the async runtime").with_source(e)
        })
}

/// The exit code for an outcome that is not success.
pub(crate) fn exit_code(outcome: &Outcome) -> ExitCode {
    match outcome {
        Outcome::WrongPin { .. } | Outcome::CollationNumberWrong { .. } => ExitCode::WrongPin,
        Outcome::PinBlocked
        | Outcome::LastAttemptRefused
        | Outcome::CollationNumberBlocked
        | Outcome::CollationLastAttemptRefused => ExitCode::PinBlocked,
        Outcome::CardRemoved { .. } => ExitCode::CardAbsent,
        Outcome::CertificateExpired
        | Outcome::CertificateRevoked { .. }
        | Outcome::CertificateUntrusted
        | Outcome::CertificateWrongType => ExitCode::VerificationFailed,
        Outcome::Pending(_) => ExitCode::StillPending,
        Outcome::ServiceUnreachable {
            proof_may_have_arrived: true,
        } => ExitCode::OutcomeUnknown,
        Outcome::CardError { .. }
        | Outcome::NoAuthPin
        | Outcome::FaceNotMatched
        | Outcome::ConsentDeclined
        | Outcome::Cancelled => ExitCode::Failure,
        _ => ExitCode::ServiceError,
    }
}

/// The outcome's name as printed in JSON (`wrong_pin`, `registered`, …).
pub(crate) fn outcome_kind(outcome: &Outcome) -> &'static str {
    outcome.kind().as_str()
}

#[derive(Debug)]
struct OutcomeDetail(String);

impl fmt::Display for OutcomeDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OutcomeDetail {}

/// The error a flow that did not reach its goal ends the command with.
pub(crate) fn outcome_error(outcome: &Outcome, locale: &str) -> CliError {
    let detail = match outcome {
        Outcome::Rejected { code, message } => {
            format!("{}: {code}: {message}", outcome_kind(outcome))
        }
        Outcome::ProtocolError { what } => format!("protocol_error: {what}"),
        Outcome::CardError { what, sw } => format!(
            "card_error: {what}{}",
            sw.map(|s| format!(" (SW {s:04X})")).unwrap_or_default()
        ),
        other => outcome_kind(other).to_owned(),
    };
    CliError::new(exit_code(outcome), outcome.message(locale)).with_source(OutcomeDetail(detail))
}

/// A finished flow, as printed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FlowResult {
    pub(crate) operation: &'static str,
    pub(crate) terminal_id: String,
    pub(crate) outcome: &'static str,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) registration_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) insurer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) eligibility: Option<mynacard_registration::EligibilityResult>,
    /// A registration the service finishes later: its status, with the poll token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<mynacard_registration::RegistrationPending>,
    /// Where to poll it (the service's URL and the status path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) poll_url: Option<String>,
    pub(crate) apdus: u32,
    pub(crate) http_requests: u32,
}

impl FlowResult {
    pub(crate) fn new(op: Operation, terminal_id: &str, report: &RunReport, locale: &str) -> Self {
        let (registration_id, insurer_name, eligibility) = match &report.outcome {
            Outcome::Registered {
                registration_id,
                insurer_name,
            }
            | Outcome::AlreadyRegistered {
                registration_id,
                insurer_name,
            }
            | Outcome::RelinkedAfterReissue {
                registration_id,
                insurer_name,
            } => (Some(registration_id.clone()), insurer_name.clone(), None),
            Outcome::Eligible(r) => (
                Some(r.registration_id.clone()),
                Some(r.insurance.insurer_name.clone()),
                Some((**r).clone()),
            ),
            Outcome::Deregistered { registration_id } => {
                (Some(registration_id.clone()), None, None)
            }
            _ => (None, None, None),
        };
        FlowResult {
            operation: op.as_str(),
            terminal_id: terminal_id.to_owned(),
            outcome: outcome_kind(&report.outcome),
            message: report.outcome.message(locale),
            registration_id,
            insurer_name,
            eligibility,
            pending: match &report.outcome {
                Outcome::Pending(p) => Some((**p).clone()),
                _ => None,
            },
            poll_url: None,
            apdus: report.apdus,
            http_requests: report.http_requests,
        }
    }
}

impl fmt::Display for FlowResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        writeln!(f, "  outcome:        {}", self.outcome)?;
        if let Some(id) = &self.registration_id {
            writeln!(f, "  registration:   {id}")?;
        }
        if let Some(e) = &self.eligibility {
            writeln!(
                f,
                "  insurance:      {} {} / {} {}-{} (validity {}{}{})",
                e.insurance.insurer_number,
                e.insurance.insurer_name,
                e.insurance.symbol,
                e.insurance.number,
                e.insurance.branch,
                e.qualification_validity,
                if e.grace { ", grace period" } else { "" },
                if e.relinked {
                    ", relinked to this card"
                } else {
                    ""
                },
            )?;
        } else if let Some(name) = &self.insurer_name {
            writeln!(f, "  insurer:        {name}")?;
        }
        if let Some(p) = &self.pending {
            writeln!(f, "  session:        {}", p.session_id)?;
            writeln!(f, "  deadline:       {}", p.deadline)?;
            if let Some(url) = &self.poll_url {
                writeln!(
                    f,
                    "  poll:           GET {url} (token in the --json output)"
                )?;
            }
        }
        write!(
            f,
            "  terminal {}: {} APDUs, {} HTTP requests",
            self.terminal_id, self.apdus, self.http_requests
        )
    }
}

/// The terminal as the command line plays it: consent and prompts on stderr, PIN without echo
/// (or from stdin), and, for a simulated card, the kiosk's OCR and camera.
struct CliTerminal {
    yes: bool,
    pin_stdin: bool,
    image: Option<CardImage>,
    attestation: Option<SoftwareAttestationKey>,
    error: Option<CliError>,
}

/// 照合番号B of a simulated card, as a kiosk's OCR reads it from the card face.
pub(crate) fn simulated_collation_number_b(image: &CardImage) -> Option<Zeroizing<String>> {
    let b = image.collation_number_b().ok()?;
    Some(Zeroizing::new(b.expose().to_owned()))
}

#[async_trait]
impl Terminal for CliTerminal {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", prompt.document.render(&prompt.locale, prompt.op));
        if self.yes {
            let _ = writeln!(err, "(agreed with --yes)");
            return true;
        }
        let _ = write!(err, "同意しますか / Do you agree? [y/N] ");
        let _ = err.flush();
        let mut line = String::new();
        match card_select::read_line_bounded(&mut std::io::stdin().lock(), &mut line) {
            Ok(0) => {
                // No one to answer (stdin closed, as under a service): not a person's "no".
                self.error = Some(CliError::usage(
                    "no answer to the consent: stdin ended before one (give --yes to agree \
                     without asking)",
                ));
                false
            }
            Ok(_) => matches!(line.trim(), "y" | "Y" | "yes" | "はい"),
            Err(e) => {
                self.error =
                    Some(CliError::usage("cannot read the answer to the consent").with_source(e));
                false
            }
        }
    }

    async fn pin(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        let prompt = match retries_left {
            Some(n) => format!("Auth PIN (4 digits, {n} tries left)"),
            None => "Auth PIN (4 digits)".to_owned(),
        };
        // The stdin lock is not Send, so each read takes its own (stdin's buffer is shared).
        match SecretInput::new(self.pin_stdin).read(&prompt) {
            Ok(pin) => Some(pin),
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }

    async fn collation_number_b(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.image.as_ref().and_then(simulated_collation_number_b)
    }

    async fn match_face(&mut self, photo: &[u8]) -> Option<FaceMatch> {
        // The simulated person is the one in front of the simulated camera: the photo must be
        // the simulated card's own.
        let image = self.image.as_ref()?;
        let matched = !photo.is_empty() && photo == image.face.photo.as_slice();
        Some(FaceMatch {
            decision: if matched {
                FaceDecision::Match
            } else {
                FaceDecision::NoMatch
            },
            score_permille: if matched { 962 } else { 120 },
            threshold_permille: 900,
        })
    }

    async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        self.attestation.as_ref().map(|k| k.sign(message))
    }
}
