//! The `mynacard` command: parse the command line, run one subcommand, map its outcome to a
//! documented exit code.
//!
//! Adding a subcommand: write `cmd/<name>.rs` with a clap `Args` (or `Subcommand`) type and a
//! `run(args, &Output) -> Result<(), CliError>` function, declare it in `cmd/mod.rs`, and add one
//! variant to [`Command`] and one arm to [`dispatch`].

mod cmd;
mod exit;
mod input;
mod output;

use clap::{Parser, Subcommand};

use crate::exit::{CliError, ExitCode};
use crate::output::Output;

/// Use the Japanese My Number Card (マイナンバーカード): readers, certificates, PINs, signing,
/// the simulated card and health-insurance-use registration.
#[derive(Debug, Parser)]
#[command(name = "mynacard", version, after_long_help = exit::help_text())]
struct Cli {
    /// Print exactly one JSON document on stdout (errors included) instead of readable text.
    #[arg(long, global = true)]
    json: bool,

    #[command(flatten)]
    card: cmd::card_select::CardOptions,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explain APDUs: command and response bytes, status words.
    #[command(subcommand)]
    Apdu(cmd::apdu::ApduCommand),
    /// Card kind, token, which certificates exist, and the tries left for every PIN.
    Info(cmd::card::InfoArgs),
    /// Read certificates from the card; inspect and verify certificate files.
    #[command(subcommand)]
    Cert(cmd::cert::CertCommand),
    /// PIN status and PIN change.
    #[command(subcommand)]
    Pin(cmd::card::PinCommand),
    /// The visual AP (券面事項確認AP): the card face opened with 照合番号B.
    #[command(subcommand)]
    Visual(cmd::personal::VisualCommand),
    /// The text AP (券面事項入力補助AP): the four attributes opened with the PIN.
    #[command(subcommand)]
    Text(cmd::personal::TextCommand),
    /// Sign a file with the card's authentication or signing key (CMS or raw).
    Sign(cmd::sign::SignArgs),
    /// Verify a signature over a file (CMS or raw) and the trust of its signer.
    Verify(cmd::verify::VerifyArgs),
    /// The simulated card: attach it to pcscd through vsmartcard's vpcd.
    #[command(subcommand)]
    Sim(cmd::sim::SimCommand),
    /// The PC/SC readers and what each holds (with --wait-card, waits for a card first).
    Readers(cmd::readers::ReadersArgs),
    /// Register the card for health-insurance use (smartphone app, ATM, or face kiosk).
    Register(cmd::register::RegisterArgs),
    /// Check eligibility at the point of use (PIN or accredited face).
    Eligibility(cmd::eligibility::EligibilityArgs),
    /// Withdraw the card's health-insurance-use registration.
    Deregister(cmd::deregister::DeregisterArgs),
    /// The reference registration service (SQLite or PostgreSQL).
    #[command(subcommand)]
    Registry(cmd::registry::RegistryCommand),
    /// Run the whole job on this machine: the reference service on SQLite, simulated cards,
    /// and every registration channel; prints a summary.
    Demo(cmd::demo::DemoArgs),
}

impl Command {
    /// Whether the command exchanges APDUs with the card `--card` or `--reader` names (and so
    /// can honour `--record`).
    fn talks_to_a_card(&self) -> bool {
        match self {
            Command::Info(_)
            | Command::Pin(_)
            | Command::Visual(_)
            | Command::Text(_)
            | Command::Sign(_)
            | Command::Register(_)
            | Command::Eligibility(_)
            | Command::Deregister(_)
            | Command::Cert(cmd::cert::CertCommand::Read(_)) => true,
            // `sim vpcd` serves the card to pcscd: its exchanges are another process's.
            Command::Apdu(_)
            | Command::Cert(_)
            | Command::Verify(_)
            | Command::Sim(_)
            | Command::Readers(_)
            | Command::Registry(_)
            | Command::Demo(_) => false,
        }
    }

    /// The subcommand as typed.
    fn name(&self) -> &'static str {
        match self {
            Command::Apdu(_) => "apdu",
            Command::Info(_) => "info",
            Command::Cert(_) => "cert",
            Command::Pin(_) => "pin",
            Command::Visual(_) => "visual",
            Command::Text(_) => "text",
            Command::Sign(_) => "sign",
            Command::Verify(_) => "verify",
            Command::Sim(_) => "sim vpcd",
            Command::Readers(_) => "readers",
            Command::Register(_) => "register",
            Command::Eligibility(_) => "eligibility",
            Command::Deregister(_) => "deregister",
            Command::Registry(_) => "registry",
            Command::Demo(_) => "demo",
        }
    }
}

/// Runs the chosen subcommand.
fn dispatch(
    command: Command,
    card: &cmd::card_select::CardOptions,
    out: &Output,
) -> Result<(), CliError> {
    if card.record().is_some() && !command.talks_to_a_card() {
        // Ignoring it would leave a diagnosis without the trace it asked for.
        return Err(CliError::usage(format!(
            "--record records the APDUs of a command that talks to a card, and `{}` talks to \
             none here (record the PC/SC client's command instead, e.g. `mynacard --reader NAME \
             --record FILE info`)",
            command.name()
        )));
    }
    match command {
        Command::Apdu(args) => cmd::apdu::run(args, out),
        Command::Info(args) => cmd::card::run_info(card, args, out),
        Command::Cert(command) => cmd::cert::run(card, command, out),
        Command::Pin(command) => cmd::card::run_pin(card, command, out),
        Command::Visual(command) => cmd::personal::run_visual(card, command, out),
        Command::Text(command) => cmd::personal::run_text(card, command, out),
        Command::Sign(args) => cmd::sign::run(card, args, out),
        Command::Verify(args) => cmd::verify::run(args, out),
        Command::Sim(command) => cmd::sim::run(command, out),
        Command::Readers(args) => cmd::readers::run(card, &args, out),
        Command::Register(args) => cmd::register::run(card, args, out),
        Command::Eligibility(args) => cmd::eligibility::run(card, args, out),
        Command::Deregister(args) => cmd::deregister::run(card, args, out),
        Command::Registry(command) => cmd::registry::run(command, out),
        Command::Demo(args) => cmd::demo::run(args, out),
    }
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return report_clap_error(err),
    };
    let out = Output::new(cli.json);
    match dispatch(cli.command, &cli.card, &out) {
        Ok(()) => ExitCode::Success.into(),
        Err(err) => {
            out.error(&err);
            err.exit_code().into()
        }
    }
}

/// Help and version go to stdout with 0; usage errors exit 2, as one JSON document when `--json`
/// was among the arguments.
fn report_clap_error(err: clap::Error) -> std::process::ExitCode {
    if !err.use_stderr() {
        let _ = err.print();
        return ExitCode::Success.into();
    }
    // The parse failed, so `--json` is looked for by hand (before a `--` that ends options).
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if json {
        let rendered = err.render().to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first).to_owned();
        Output::new(true).error(&CliError::usage(message).with_source(err));
    } else {
        let _ = err.print();
    }
    ExitCode::Usage.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn long_help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit codes:"));
        assert!(help.contains("5  PIN blocked"));
    }
}
