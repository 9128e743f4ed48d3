//! `mynacard deregister`: withdraw the card's health-insurance-use registration (the person's
//! own request, proven with the auth PIN).

use clap::Args;
use mynacard_registration::machine::Machine;
use mynacard_registration::messages::TerminalKind;

use crate::cmd::card_select::CardOptions;
use crate::cmd::register::{ServiceArgs, flow_config, run_and_print};
use crate::exit::CliError;
use crate::output::Output;

/// `mynacard deregister`.
#[derive(Debug, Args)]
pub(crate) struct DeregisterArgs {
    #[command(flatten)]
    service: ServiceArgs,
}

/// Runs `mynacard deregister`.
///
/// # Errors
/// Usage, card and service errors; a card with no registration maps to its exit code.
pub(crate) fn run(card: &CardOptions, args: DeregisterArgs, out: &Output) -> Result<(), CliError> {
    let terminal_id = args
        .service
        .terminal_id
        .clone()
        .unwrap_or_else(|| "app-0001".to_owned());
    let config = flow_config(&args.service, &terminal_id, TerminalKind::App);
    run_and_print(
        card,
        &args.service,
        &terminal_id,
        Machine::deregister(config),
        out,
    )
}
