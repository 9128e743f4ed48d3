//! `mynacard sim`: the simulated card outside this process.
//!
//! `mynacard sim vpcd` attaches a simulated card to vsmartcard's vpcd reader driver, so that a
//! running pcscd lists it as a card in `Virtual PCD 00 00` (port 35963) or `Virtual PCD 00 01`
//! (port 35964) and any PC/SC program (OpenSC, the pcsc crate, browsers) can use it. The card is
//! a generated profile (`--profile`) or a recorded card image (`--image`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use mynacard_sim::vpcd::{self, Ended, StopSignal, VpcdError, VpcdOptions};
use serde::Serialize;

use crate::cmd::card_select::{SimSource, load_sim_card};
use crate::exit::{CliError, ExitCode};
use crate::output::Output;

/// The simulated card's subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SimCommand {
    /// Attach a simulated card to vsmartcard's vpcd, so that pcscd lists it as a reader.
    ///
    /// Runs until vpcd goes away (pcscd stopped) or the process is stopped. The card is removed
    /// from the reader when this process ends. With --state, PIN counters and changed PINs are
    /// saved on every change and survive restarts.
    Vpcd(VpcdArgs),
}

/// Options of `mynacard sim vpcd`.
#[derive(Debug, Args)]
pub(crate) struct VpcdArgs {
    /// Host where vpcd listens (pcscd's host).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// vpcd port: 35963 for `Virtual PCD 00 00`, 35964 for `Virtual PCD 00 01`.
    #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
    port: u16,

    /// Simulated card profile (e.g. adult, under15, no-extended).
    #[arg(long, default_value = "adult")]
    profile: String,

    /// Serve a recorded card image instead of a profile: its folder or description file (e.g.
    /// crates/sim/images/jlis-test-card). It reads as the recorded card did and cannot sign.
    #[arg(long, value_name = "PATH", conflicts_with = "profile")]
    image: Option<PathBuf>,

    /// Keep PIN counters and changed PINs in FILE (created when missing).
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,

    /// Give up when vpcd does not accept a connection within SECONDS (0: keep trying).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    connect_timeout: u64,

    /// End when vpcd closes the connection instead of waiting for pcscd to come back.
    #[arg(long)]
    once: bool,
}

/// What `sim vpcd` reports when it ends.
#[derive(Debug, Serialize)]
struct VpcdReport {
    profile: String,
    address: String,
    ended: &'static str,
    apdus: u64,
    command_bytes: u64,
    response_bytes: u64,
}

impl std::fmt::Display for VpcdReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "simulated card {} on vpcd {}: {}; {} APDUs, {} bytes in, {} bytes out",
            self.profile,
            self.address,
            self.ended,
            self.apdus,
            self.command_bytes,
            self.response_bytes
        )
    }
}

/// Runs a `sim` subcommand.
pub(crate) fn run(command: SimCommand, out: &Output) -> Result<(), CliError> {
    match command {
        SimCommand::Vpcd(args) => run_vpcd(args, out),
    }
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, CliError> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| CliError::usage(format!("--host {host:?}: cannot resolve")).with_source(e))?
        .next()
        .ok_or_else(|| CliError::usage(format!("--host {host:?}: no address")))
}

fn run_vpcd(args: VpcdArgs, out: &Output) -> Result<(), CliError> {
    let addr = resolve(&args.host, args.port)?;
    let source = match args.image {
        Some(path) => SimSource::Image(path),
        None => SimSource::Profile(args.profile),
    };
    let sim = load_sim_card(&source, args.state.as_deref(), "--state")?;
    let profile = sim.with_card(|card| card.profile().to_owned());
    // The log keeps counters only: this may run for days.
    sim.log().keeping_entries(false);
    let options = VpcdOptions {
        connect_timeout: (args.connect_timeout > 0)
            .then(|| Duration::from_secs(args.connect_timeout)),
        reconnect: !args.once,
        ..VpcdOptions::default()
    };
    eprintln!("mynacard: simulated card {profile} connecting to vpcd at {addr}");
    // The process ends by signal; the OS closes the socket and vpcd sees the card leave.
    let ended = vpcd::run(addr, &sim, &options, &StopSignal::new()).map_err(|e| match e {
        VpcdError::Connect { .. } => CliError::new(
            ExitCode::CardAbsent,
            format!("vpcd does not listen at {addr} (is pcscd with vsmartcard-vpcd running?)"),
        )
        .with_source(e),
        other => CliError::new(ExitCode::Failure, "the vpcd connection failed").with_source(other),
    })?;
    let counters = sim.log().counters();
    out.print(&VpcdReport {
        profile,
        address: addr.to_string(),
        ended: match ended {
            Ended::Stopped => "stopped",
            Ended::VpcdClosed => "vpcd closed the connection",
            Ended::CardPulled => "card pulled",
            _ => "ended",
        },
        apdus: counters.apdus,
        command_bytes: counters.command_bytes,
        response_bytes: counters.response_bytes,
    })
}
