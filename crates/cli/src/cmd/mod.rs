//! One module per subcommand. Each exposes a clap argument type and
//! `run(args, &Output) -> Result<(), CliError>`; `main.rs` dispatches to it.

pub(crate) mod apdu;
pub(crate) mod card;
pub(crate) mod card_select;
pub(crate) mod cert;
pub(crate) mod demo;
pub(crate) mod deregister;
pub(crate) mod eligibility;
pub(crate) mod personal;
pub(crate) mod readers;
pub(crate) mod register;
pub(crate) mod registry;
pub(crate) mod sign;
pub(crate) mod sim;
pub(crate) mod verify;
