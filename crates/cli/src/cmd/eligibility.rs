//! `mynacard eligibility`: check at the point of use (a clinic's or pharmacy's card reader)
//! that the card is registered and the person insured, with the PIN or, on an accredited face
//! reader, with the face.

use clap::Args;
use mynacard_registration::machine::Machine;
use mynacard_registration::messages::TerminalKind;

use crate::cmd::card_select::CardOptions;
use crate::cmd::register::{ServiceArgs, flow_config, run_and_print};
use crate::exit::CliError;
use crate::output::Output;

/// `mynacard eligibility`.
#[derive(Debug, Args)]
pub(crate) struct EligibilityArgs {
    /// Use face matching on an accredited face reader instead of the PIN.
    #[arg(long)]
    face: bool,

    #[command(flatten)]
    service: ServiceArgs,
}

/// Runs `mynacard eligibility`.
///
/// # Errors
/// Usage, card and service errors; a card that is not eligible maps to its exit code.
pub(crate) fn run(card: &CardOptions, args: EligibilityArgs, out: &Output) -> Result<(), CliError> {
    let terminal_id = args
        .service
        .terminal_id
        .clone()
        .unwrap_or_else(|| "clinic-0001".to_owned());
    let config = flow_config(&args.service, &terminal_id, TerminalKind::FaceReader);
    let machine = if args.face {
        Machine::check_eligibility_with_face(config)
    } else {
        Machine::check_eligibility_with_pin(config)
    };
    run_and_print(card, &args.service, &terminal_id, machine, out)
}
