//! The card commands: `mynacard info`, `mynacard cert read`, `mynacard pin status`,
//! `mynacard pin change`.

use std::fmt;
use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use mynacard_card::jpki::{Certificate, JpkiKey, PublicCertificate};
use mynacard_card::text::TextKey;
use mynacard_card::{AttemptPolicy, Pin, PinKind, PinStatus, Session, SignPassword};
use mynacard_transport::CardChannel;
use mynacard_transport::blocking::block_on;
use serde::Serialize;

use crate::cmd::card_select::{CardOptions, SecretInput, card_error, open_session};
use crate::exit::CliError;
use crate::output::Output;

type CardSession = Session<Box<dyn CardChannel>>;

/// PIN input and the last-attempt guard, shared by commands that verify a PIN.
#[derive(Debug, Args)]
pub(crate) struct PinArgs {
    /// Read PINs and passwords from stdin, one per line, instead of prompting (for automation).
    #[arg(long)]
    pub(crate) pin_stdin: bool,

    /// Allow the VERIFY when the card says only one try is left (a wrong PIN then blocks it).
    #[arg(long)]
    allow_last_attempt: bool,
}

impl PinArgs {
    pub(crate) fn policy(&self) -> AttemptPolicy {
        if self.allow_last_attempt {
            AttemptPolicy::AllowLastAttempt
        } else {
            AttemptPolicy::KeepLastAttempt
        }
    }
}

fn pin(input: &mut SecretInput, prompt: &str) -> Result<Pin, CliError> {
    let text = input.read(prompt)?;
    Pin::new(&text)
        .map_err(|e| CliError::usage(format!("{prompt}: not a valid PIN")).with_source(e))
}

fn password(input: &mut SecretInput, prompt: &str) -> Result<SignPassword, CliError> {
    let text = input.read(prompt)?;
    SignPassword::new(&text).map_err(|e| {
        CliError::usage(format!("{prompt}: not a valid signing password")).with_source(e)
    })
}

// ---------------------------------------------------------------------------------------------
// pin status

/// One PIN's state, for output.
#[derive(Debug, Serialize)]
struct PinReport {
    /// `remaining`, `blocked`, `unlimited`, `not-reported`, `not-set`.
    status: &'static str,
    /// Tries left, when the card reports them.
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<u8>,
}

impl From<PinStatus> for PinReport {
    fn from(s: PinStatus) -> Self {
        let status = match s {
            PinStatus::Remaining(_) => "remaining",
            PinStatus::Blocked => "blocked",
            PinStatus::Unlimited => "unlimited",
            PinStatus::NotReported => "not-reported",
            _ => "not-set",
        };
        PinReport {
            status,
            retries: s.retries(),
        }
    }
}

impl fmt::Display for PinReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.status, self.retries) {
            ("remaining", Some(1)) => f.write_str("1 try left"),
            ("remaining", Some(n)) => write!(f, "{n} tries left"),
            ("blocked", _) => f.write_str("BLOCKED"),
            (s, _) => f.write_str(s),
        }
    }
}

/// Retry counters of every PIN.
#[derive(Debug, Serialize)]
struct PinStatusReport {
    auth: PinReport,
    sign: PinReport,
    text: PinReport,
}

impl fmt::Display for PinStatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "authentication PIN: {}", self.auth)?;
        writeln!(f, "signing password:   {}", self.sign)?;
        write!(f, "text AP PIN:        {}", self.text)
    }
}

/// Reads every retry counter (empty VERIFYs: nothing is spent). A token without the text AP (the
/// smartphone certificate) reports its text PIN as not set.
fn pin_status(session: &mut CardSession) -> Result<PinStatusReport, CliError> {
    block_on(async {
        let mut ap = session.jpki().await?;
        let auth = ap.pin_status(JpkiKey::Auth).await?;
        let sign = ap.pin_status(JpkiKey::Sign).await?;
        let text = match session.text().await {
            Ok(mut text) => text.pin_status(TextKey::Pin).await?,
            Err(e) if e.status_word() == Some(mynacard_apdu::StatusWord::FileNotFound) => {
                PinStatus::NotSet
            }
            Err(e) => return Err(e),
        };
        Ok(PinStatusReport {
            auth: auth.into(),
            sign: sign.into(),
            text: text.into(),
        })
    })
    .map_err(card_error)
}

// ---------------------------------------------------------------------------------------------
// info

/// What `mynacard info` reports.
#[derive(Debug, Serialize)]
struct InfoReport {
    /// `my-number-card`, `android-se`, ...
    card_kind: String,
    token_label: String,
    certificates: CertPresence,
    pins: PinStatusReport,
}

#[derive(Debug, Serialize)]
struct CertPresence {
    auth: bool,
    sign: bool,
    auth_ca: bool,
    sign_ca: bool,
}

impl fmt::Display for InfoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "present" } else { "absent" };
        writeln!(f, "card kind:   {} ({})", self.card_kind, self.token_label)?;
        writeln!(f, "certificates:")?;
        writeln!(f, "  authentication:    {}", yes(self.certificates.auth))?;
        writeln!(f, "  signing:           {}", yes(self.certificates.sign))?;
        writeln!(f, "  authentication CA: {}", yes(self.certificates.auth_ca))?;
        writeln!(f, "  signing CA:        {}", yes(self.certificates.sign_ca))?;
        writeln!(f, "PINs:")?;
        for line in self.pins.to_string().lines() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

fn info(session: &mut CardSession) -> Result<InfoReport, CliError> {
    let (token, availability) = block_on(async {
        let mut ap = session.jpki().await?;
        let token = ap.token_info().await?;
        let availability = ap.availability().await?;
        Ok((token, availability))
    })
    .map_err(card_error)?;
    let pins = pin_status(session)?;
    Ok(InfoReport {
        card_kind: token.kind.short_name().to_owned(),
        token_label: token.label,
        certificates: CertPresence {
            auth: availability.auth,
            sign: availability.sign,
            // The CA certificates are on every token.
            auth_ca: true,
            sign_ca: true,
        },
        pins,
    })
}

// ---------------------------------------------------------------------------------------------
// cert read

/// Which certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CertKind {
    /// 利用者証明用電子証明書 (no PIN on a card; the PIN on the Android token).
    Auth,
    /// 署名用電子証明書 (needs the signing password).
    Sign,
    /// 利用者証明用CA証明書.
    AuthCa,
    /// 署名用CA証明書.
    SignCa,
}

/// Output encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum CertFormat {
    /// DER bytes.
    Der,
    /// PEM text.
    Pem,
}

/// `mynacard cert …`
#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Read a certificate from the card.
    Read(CertReadArgs),
}

/// Arguments of `mynacard cert read`.
#[derive(Debug, Args)]
pub(crate) struct CertReadArgs {
    /// Which certificate.
    #[arg(long, value_enum)]
    kind: CertKind,
    /// Output encoding.
    #[arg(long, value_enum, default_value = "pem")]
    format: CertFormat,
    /// Write to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    pin: PinArgs,
}

fn read_cert(session: &mut CardSession, args: &CertReadArgs) -> Result<Certificate, CliError> {
    let mut input = SecretInput::new(args.pin.pin_stdin);
    let policy = args.pin.policy();
    let public = match args.kind {
        CertKind::Auth => Some(PublicCertificate::Auth),
        CertKind::AuthCa => Some(PublicCertificate::AuthCa),
        CertKind::SignCa => Some(PublicCertificate::SignCa),
        CertKind::Sign => None,
    };
    if let Some(which) = public {
        let first = block_on(async { session.jpki().await?.read_certificate(which).await });
        match first {
            Ok(cert) => return Ok(cert),
            // The smartphone token guards its authentication certificate with the PIN.
            Err(e) if which == PublicCertificate::Auth && e.is_security_status_not_satisfied() => {}
            Err(e) => return Err(card_error(e)),
        }
        let pin = pin(&mut input, "Authentication PIN (4 digits)")?;
        return block_on(async {
            let mut ap = session.jpki().await?;
            let mut v = ap.verify_auth(&pin, policy).await?;
            v.read_auth_certificate().await
        })
        .map_err(card_error);
    }
    let password = password(&mut input, "Signing password")?;
    block_on(async {
        let mut ap = session.jpki().await?;
        let mut v = ap.verify_sign(&password, policy).await?;
        v.read_sign_certificate().await
    })
    .map_err(card_error)
}

/// What `cert read` prints.
#[derive(Debug, Serialize)]
struct CertReport {
    kind: CertKind,
    format: CertFormat,
    bytes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<PathBuf>,
    /// PEM text when written to stdout as PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pem: Option<String>,
    /// Hex of the DER when written to stdout as DER in JSON mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    der_hex: Option<String>,
}

impl fmt::Display for CertReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.pem, &self.path) {
            (Some(pem), _) => f.write_str(pem.trim_end()),
            (None, Some(path)) => write!(f, "wrote {} bytes to {}", self.bytes, path.display()),
            (None, None) => write!(f, "{} bytes", self.bytes),
        }
    }
}

fn cert_read(options: &CardOptions, args: CertReadArgs, out: &Output) -> Result<(), CliError> {
    let mut session = open_session(options)?;
    let cert = read_cert(&mut session, &args)?;
    let encoded: Vec<u8> = match args.format {
        CertFormat::Der => cert.der().to_vec(),
        CertFormat::Pem => cert.to_pem().map_err(card_error)?.into_bytes(),
    };
    let mut report = CertReport {
        kind: args.kind,
        format: args.format,
        bytes: encoded.len(),
        path: None,
        pem: None,
        der_hex: None,
    };
    if let Some(path) = args.out {
        std::fs::write(&path, &encoded)?;
        report.path = Some(path);
        return out.print(&report);
    }
    match args.format {
        CertFormat::Pem => {
            report.pem = Some(String::from_utf8_lossy(&encoded).into_owned());
            out.print(&report)
        }
        CertFormat::Der if out.is_json() => {
            report.der_hex = Some(hex::encode(&encoded));
            out.print(&report)
        }
        CertFormat::Der => {
            use std::io::Write;
            std::io::stdout().lock().write_all(&encoded)?;
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// pin status / pin change

/// `mynacard pin …`
#[derive(Debug, Subcommand)]
pub(crate) enum PinCommand {
    /// Show the tries left for every PIN (spends nothing).
    Status,
    /// Change a PIN or the signing password (asks for the current one, then the new one twice;
    /// with --pin-stdin: current, then new, one per line).
    Change(PinChangeArgs),
}

/// Which PIN to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PinChoice {
    /// Authentication PIN (4 digits).
    Auth,
    /// Signing password (6-16 of A-Z, 0-9).
    Sign,
    /// Text AP PIN (4 digits).
    Text,
}

/// Arguments of `mynacard pin change`.
#[derive(Debug, Args)]
pub(crate) struct PinChangeArgs {
    /// Which PIN.
    #[arg(long, value_enum)]
    kind: PinChoice,
    #[command(flatten)]
    pin: PinArgs,
}

#[derive(Debug, Serialize)]
struct Changed {
    changed: &'static str,
}

impl fmt::Display for Changed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} changed", self.changed)
    }
}

fn pin_change(options: &CardOptions, args: PinChangeArgs, out: &Output) -> Result<(), CliError> {
    let mut input = SecretInput::new(args.pin.pin_stdin);
    let policy = args.pin.policy();
    let kind = match args.kind {
        PinChoice::Auth => PinKind::JpkiAuth,
        PinChoice::Sign => PinKind::JpkiSign,
        PinChoice::Text => PinKind::TextPin,
    };
    let mut session = open_session(options)?;
    match args.kind {
        PinChoice::Auth | PinChoice::Text => {
            let old = pin(&mut input, "Current PIN")?;
            let new = pin(&mut input, "New PIN")?;
            confirm(&mut input, args.pin.pin_stdin, |s| {
                Pin::new(s).ok() == Some(new.clone())
            })?;
            block_on(async {
                if args.kind == PinChoice::Auth {
                    let mut ap = session.jpki().await?;
                    ap.verify_auth(&old, policy).await?.change_pin(&new).await
                } else {
                    let mut text = session.text().await?;
                    text.verify_pin(&old, policy).await?.change_pin(&new).await
                }
            })
            .map_err(card_error)?;
        }
        PinChoice::Sign => {
            let old = password(&mut input, "Current signing password")?;
            let new = password(&mut input, "New signing password")?;
            confirm(&mut input, args.pin.pin_stdin, |s| {
                SignPassword::new(s).ok() == Some(new.clone())
            })?;
            block_on(async {
                let mut ap = session.jpki().await?;
                ap.verify_sign(&old, policy)
                    .await?
                    .change_password(&new)
                    .await
            })
            .map_err(card_error)?;
        }
    }
    out.print(&Changed {
        changed: kind.short_name(),
    })
}

/// Asks for the new value again when prompting (automation gives it once).
fn confirm(
    input: &mut SecretInput,
    from_stdin: bool,
    same: impl Fn(&str) -> bool,
) -> Result<(), CliError> {
    if from_stdin {
        return Ok(());
    }
    let again = input.read("Repeat the new value")?;
    if same(&again) {
        Ok(())
    } else {
        Err(CliError::usage(
            "the two new values differ; nothing was changed",
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// entry points

/// Arguments of `mynacard info` (none besides the global card selection).
#[derive(Debug, Args)]
pub(crate) struct InfoArgs {}

/// Runs `mynacard info`.
pub(crate) fn run_info(
    options: &CardOptions,
    _args: InfoArgs,
    out: &Output,
) -> Result<(), CliError> {
    let mut session = open_session(options)?;
    out.print(&info(&mut session)?)
}

/// Runs `mynacard cert …`.
pub(crate) fn run_cert(
    options: &CardOptions,
    command: CertCommand,
    out: &Output,
) -> Result<(), CliError> {
    match command {
        CertCommand::Read(args) => cert_read(options, args, out),
    }
}

/// Runs `mynacard pin …`.
pub(crate) fn run_pin(
    options: &CardOptions,
    command: PinCommand,
    out: &Output,
) -> Result<(), CliError> {
    match command {
        PinCommand::Status => {
            let mut session = open_session(options)?;
            out.print(&pin_status(&mut session)?)
        }
        PinCommand::Change(args) => pin_change(options, args, out),
    }
}
