//! Which card a command talks to: `--card sim[:PROFILE]` (the simulated card, in this process),
//! `--card image:PATH` (a recorded card image served by the simulator, in this process) or
//! `--reader NAME` (PC/SC). Also the PIN input shared by the card commands: a no-echo prompt,
//! or `--pin-stdin` for automation. PINs are never taken from the command line.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use mynacard_card::{Error as CardError, Session};
use mynacard_sim::engine::Card;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::recorded::RecordedImage;
use mynacard_sim::state::{PersistentState, STATE_FORMAT, StateFile};
use mynacard_transport::blocking::block_on;
use mynacard_transport::{CardChannel, Transport, TransportError};
use zeroize::Zeroizing;

use crate::exit::{CliError, ExitCode};
use crate::input;

/// Card selection, global to every card command.
#[derive(Debug, Clone, Args)]
pub(crate) struct CardOptions {
    /// The simulated card: `sim` (the `adult` profile), `sim:PROFILE` (e.g. `sim:under15`,
    /// `sim:no-extended`), or `image:PATH`, a recorded card image (its folder or description
    /// file, e.g. `image:crates/sim/images/jlis-test-card`), which reads as the recorded card did
    /// and cannot sign. It lives in this process only, unless --sim-state keeps its counters.
    #[arg(
        long,
        global = true,
        value_name = "sim[:PROFILE]|image:PATH",
        conflicts_with = "reader"
    )]
    card: Option<String>,

    /// The PC/SC reader to use, by name (`mynacard readers` lists them). Without a card in it,
    /// the command waits for one (see --timeout).
    #[arg(long, global = true, value_name = "NAME")]
    reader: Option<String>,

    /// Record every APDU exchange with timings to FILE (JSON Lines), for diagnosing a reader.
    /// PINs, passwords and personal data are replaced before anything is written.
    #[arg(long, global = true, value_name = "FILE")]
    record: Option<PathBuf>,

    /// Seconds to wait for a card (or reader) to appear before giving up.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,

    /// Keep the simulated card's PIN counters and PINs in FILE across invocations (created when
    /// missing); for a profile and for a recorded image alike.
    #[arg(long, global = true, value_name = "FILE", requires = "card")]
    sim_state: Option<PathBuf>,
}

/// The transport the options name.
///
/// # Errors
/// A usage error for a malformed `--card`, an unknown profile or an unreadable state file.
pub(crate) fn transport(options: &CardOptions) -> Result<Box<dyn Transport>, CliError> {
    match (&options.card, &options.reader) {
        (Some(spec), _) => sim_transport(spec, options.sim_state.as_ref()),
        (None, Some(name)) => Ok(Box::new(mynacard_pcsc::PcscTransport::new(name.clone()))),
        (None, None) => Err(CliError::usage(
            "no card chosen: give --card sim[:PROFILE], --card image:PATH or --reader NAME",
        )),
    }
}

/// A simulated card: a generated profile or a recorded image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SimSource {
    /// A built-in profile by name.
    Profile(String),
    /// A recorded image: its folder or description file.
    Image(PathBuf),
}

impl SimSource {
    /// `sim`, `sim:PROFILE` or `image:PATH`; `None` for anything else.
    pub(crate) fn parse(spec: &str) -> Option<SimSource> {
        match spec.split_once(':') {
            None if spec == "sim" => Some(SimSource::Profile("adult".to_owned())),
            Some(("sim", profile)) if !profile.is_empty() => {
                Some(SimSource::Profile(profile.to_owned()))
            }
            Some(("image", path)) if !path.is_empty() => Some(SimSource::Image(path.into())),
            _ => None,
        }
    }

    /// How messages name it.
    fn describe(&self) -> String {
        match self {
            SimSource::Profile(name) => format!("profile {name}"),
            SimSource::Image(path) => format!("image {}", path.display()),
        }
    }
}

/// The simulated card of `source`, its counters kept in `state` when given (`state_flag` names
/// that option in messages).
///
/// # Errors
/// A usage error for an unknown profile, an image that does not load, or a state file that
/// cannot be read or belongs to another card.
pub(crate) fn load_sim_card(
    source: &SimSource,
    state: Option<&Path>,
    state_flag: &str,
) -> Result<SimCard, CliError> {
    let saved = match state {
        Some(path) => load_state(path, state_flag)?,
        None => None,
    };
    let restored = match source {
        SimSource::Profile(name) => {
            let image = CardImage::from_profile_name(name).map_err(|e| {
                CliError::usage(format!("no such simulated card profile {name:?}")).with_source(e)
            })?;
            match &saved {
                Some(saved) => Card::with_state(image, saved),
                None => Ok(Card::new(image)),
            }
        }
        SimSource::Image(path) => {
            let image = RecordedImage::load(path).map_err(|e| {
                CliError::usage(format!("{} is not a usable recorded image", path.display()))
                    .with_source(e)
            })?;
            match &saved {
                Some(saved) => Card::from_recorded_with_state(image, saved),
                None => Ok(Card::from_recorded(image)),
            }
        }
    };
    // Only a saved state can be refused.
    let card = restored.map_err(|e| {
        let path = state.map(|p| p.display().to_string()).unwrap_or_default();
        CliError::usage(format!(
            "{state_flag} {path} belongs to another card than {}",
            source.describe()
        ))
        .with_source(e)
    })?;
    let sim = SimCard::new(card);
    if let Some(path) = state {
        sim.set_state_file(StateFile::new(path));
    }
    Ok(sim)
}

/// Reads a state file as [`StateFile::load`] does, with the bound of its kind: `None` when it
/// does not exist yet (it is created on the first change).
fn load_state(path: &Path, state_flag: &str) -> Result<Option<PersistentState>, CliError> {
    if !path.try_exists().unwrap_or(true) {
        return Ok(None);
    }
    let unusable =
        |what: &str| CliError::usage(format!("{state_flag} {}: not a {what}", path.display()));
    let bytes = input::read_bounded(path, input::STATE_FILE).map_err(|e| e.prefixed(state_flag))?;
    let state: PersistentState = serde_json::from_slice(&bytes)
        .map_err(|e| unusable(input::STATE_FILE.what).with_source(e))?;
    if state.format != STATE_FORMAT {
        return Err(unusable(&format!(
            "{} of format {STATE_FORMAT} (it has format {})",
            input::STATE_FILE.what,
            state.format
        )));
    }
    Ok(Some(state))
}

fn sim_transport(spec: &str, state: Option<&PathBuf>) -> Result<Box<dyn Transport>, CliError> {
    let source = SimSource::parse(spec).ok_or_else(|| {
        CliError::usage(format!(
            "--card {spec:?}: expected sim, sim:PROFILE or image:PATH"
        ))
    })?;
    let sim = load_sim_card(&source, state.map(PathBuf::as_path), "--sim-state")?;
    Ok(Box::new(sim.transport()))
}

/// Opens the chosen card and a session over it.
///
/// # Errors
/// As [`open_channel`].
pub(crate) fn open_session(
    options: &CardOptions,
) -> Result<Session<Box<dyn CardChannel>>, CliError> {
    Ok(Session::new(open_channel(options)?))
}

/// Opens the chosen card's channel, its exchanges recorded to `--record` when given, after
/// waiting for a card in `--reader`.
///
/// # Errors
/// As [`transport`], a usage error when the `--record` file cannot be created, and
/// card-absent errors from opening the channel.
pub(crate) fn open_channel(options: &CardOptions) -> Result<Box<dyn CardChannel>, CliError> {
    let mut transport = transport(options)?;
    if let Some(path) = &options.record {
        let recorder = mynacard_trace::Recorder::create(path).map_err(|e| {
            CliError::usage(format!("cannot create --record {}", path.display())).with_source(e)
        })?;
        transport = Box::new(recorder.wrap_transport(transport));
    }
    if let Some(reader) = &options.reader {
        wait_for_card(Some(reader), options.wait_limit())?;
    }
    block_on(transport.open()).map_err(|e| transport_error("cannot open the card", e))
}

impl CardOptions {
    /// How long to wait for a card (`--timeout`).
    pub(crate) fn wait_limit(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The file named with `--record`.
    pub(crate) fn record(&self) -> Option<&Path> {
        self.record.as_deref()
    }

    /// The reader named with `--reader`.
    pub(crate) fn reader(&self) -> Option<&str> {
        self.reader.as_deref()
    }

    /// The simulated card's profile named with `--card sim[:PROFILE]` (`adult` for `sim`);
    /// `None` for a recorded image, whose card is not generated from a profile.
    pub(crate) fn sim_profile(&self) -> Option<String> {
        match SimSource::parse(self.card.as_deref()?)? {
            SimSource::Profile(name) => Some(name),
            SimSource::Image(_) => None,
        }
    }
}

/// Waits until a card answers in the reader (any reader for `None`). When none does yet, says so
/// on stderr (stdout stays clean for `--json`) and waits up to `limit`.
///
/// # Errors
/// Card absent when the time runs out; a failure when PC/SC is not running.
pub(crate) fn wait_for_card(
    reader: Option<&str>,
    limit: Duration,
) -> Result<mynacard_pcsc::ReaderInfo, CliError> {
    let readers = mynacard_pcsc::list_readers().map_err(pcsc_unavailable)?;
    let ready = readers.into_iter().find(|r| {
        r.card == mynacard_pcsc::CardPresence::Present && reader.is_none_or(|name| r.name == name)
    });
    if let Some(info) = ready {
        return Ok(info);
    }
    let place = reader.map_or_else(|| "a reader".to_owned(), |name| format!("{name:?}"));
    eprintln!(
        "Insert a My Number Card into {place} (waiting up to {} s, Ctrl-C to stop)…",
        limit.as_secs()
    );
    block_on(mynacard_pcsc::CardWait::arrival(reader, Some(limit))).map_err(|e| match e {
        TransportError::Timeout(_) => CliError::new(
            ExitCode::CardAbsent,
            format!("no card in {place} after {} s", limit.as_secs()),
        ),
        other => pcsc_unavailable(other),
    })
}

/// A PC/SC failure outside a card session (listing, waiting).
pub(crate) fn pcsc_unavailable(e: TransportError) -> CliError {
    let service_down = matches!(
        mynacard_pcsc::pcsc_error_of(&e),
        Some(mynacard_pcsc::PcscCode::NoService | mynacard_pcsc::PcscCode::ServiceStopped)
    );
    if service_down {
        CliError::new(
            ExitCode::Failure,
            "the PC/SC service is not running (start pcscd)",
        )
        .with_source(e)
    } else {
        transport_error("PC/SC failed", e)
    }
}

fn transport_error(message: &str, e: TransportError) -> CliError {
    let code = match e {
        TransportError::NoReader { .. } | TransportError::NoCard | TransportError::CardRemoved => {
            ExitCode::CardAbsent
        }
        _ => ExitCode::Failure,
    };
    CliError::new(code, message.to_owned()).with_source(e)
}

/// A card-layer error as the command's error, with the documented exit code.
pub(crate) fn card_error(e: CardError) -> CliError {
    let (code, message) = match &e {
        CardError::WrongPin { .. } => (ExitCode::WrongPin, e.to_string()),
        CardError::Blocked { key } => (
            ExitCode::PinBlocked,
            format!("the {key} is blocked; it can be reset at the municipal office"),
        ),
        CardError::LastAttemptRefused { key, .. } => (
            ExitCode::Failure,
            format!("the {key} has one try left; not using it without --allow-last-attempt"),
        ),
        CardError::AttemptMayHaveBeenCounted { key, .. } => (
            ExitCode::CardAbsent,
            format!(
                "the card was lost while checking the {key}; the attempt may have been counted \
                 (run `mynacard pin status` before trying again)"
            ),
        ),
        CardError::AttemptUnclear { key, sw, .. } => (
            ExitCode::Failure,
            format!(
                "the card answered {sw} while checking the {key}; the attempt may have been \
                 counted (run `mynacard pin status` before trying again)"
            ),
        ),
        CardError::Transport(
            TransportError::NoCard | TransportError::CardRemoved | TransportError::NoReader { .. },
        ) => (ExitCode::CardAbsent, "the card is not there".to_owned()),
        CardError::SignatureInvalid { .. }
        | CardError::SignatureLength { .. }
        | CardError::DigestMismatch { .. } => (
            ExitCode::VerificationFailed,
            "the card's data did not verify".to_owned(),
        ),
        CardError::PinNotSet { key } => (ExitCode::Failure, format!("this card has no {key}")),
        // What the simulator's recorded images answer where a private key would be needed.
        CardError::Card {
            sw: mynacard_apdu::StatusWord::InsNotSupported,
            operation,
        } => (
            ExitCode::Failure,
            format!(
                "the card does not support {operation} (a recorded card image holds no private \
                 keys)"
            ),
        ),
        _ => (ExitCode::Failure, "card operation failed".to_owned()),
    };
    CliError::new(code, message).with_source(e)
}

/// Where secrets come from.
pub(crate) struct SecretInput {
    from_stdin: bool,
    stdin: Option<std::io::StdinLock<'static>>,
}

impl SecretInput {
    /// From stdin lines (`--pin-stdin`), or from a no-echo prompt on the terminal.
    pub(crate) fn new(from_stdin: bool) -> Self {
        SecretInput {
            from_stdin,
            stdin: None,
        }
    }

    /// Reads one secret: the next stdin line, or a prompt without echo.
    ///
    /// # Errors
    /// Input errors, end of input.
    pub(crate) fn read(&mut self, prompt: &str) -> Result<Zeroizing<String>, CliError> {
        let mut line = Zeroizing::new(String::new());
        if self.from_stdin {
            let stdin = self.stdin.get_or_insert_with(|| std::io::stdin().lock());
            let n = read_line_bounded(stdin, &mut line).map_err(|e| {
                CliError::usage(format!("--pin-stdin: cannot read {prompt}")).with_source(e)
            })?;
            if n == 0 {
                return Err(CliError::usage(format!(
                    "--pin-stdin: no line for {prompt}"
                )));
            }
        } else {
            *line = rpassword::prompt_password(format!("{prompt}: "))
                .map_err(|e| prompt_error(prompt, e))?;
        }
        let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
        Ok(trimmed)
    }
}

/// Reads one line of stdin into `line`, at most [`input::STDIN_LINE`] bytes of it (a PIN is
/// a few): stdin fed from `/dev/zero` or a large file ends with an error, not a full memory.
///
/// # Errors
/// Read errors; [`std::io::ErrorKind::InvalidData`] for a line over the bound or not UTF-8.
pub(crate) fn read_line_bounded(
    stdin: &mut impl BufRead,
    line: &mut String,
) -> std::io::Result<usize> {
    let limit = input::STDIN_LINE.limit;
    let mut bytes = Zeroizing::new(Vec::new());
    let n = std::io::Read::take(&mut *stdin, limit + 1).read_until(b'\n', &mut bytes)?;
    if n as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {limit} bytes, not a {}",
                input::STDIN_LINE.what
            ),
        ));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))?;
    line.push_str(text);
    Ok(n)
}

/// The error of a prompt that could not be shown: without a terminal (a service, a pipe, a
/// container without a TTY) the system's own words ("No such device or address") say nothing
/// about what to do.
fn prompt_error(prompt: &str, e: std::io::Error) -> CliError {
    // ENXIO: no controlling terminal; ENOENT: no /dev/tty at all; ENOTTY: not a terminal.
    let no_terminal =
        matches!(e.raw_os_error(), Some(6 | 2 | 25)) || e.kind() == std::io::ErrorKind::NotFound;
    if no_terminal {
        CliError::usage(format!(
            "no terminal to type the {prompt} on: give --pin-stdin and write it as one line on \
             stdin"
        ))
        .with_source(e)
    } else {
        CliError::usage(format!("cannot read the {prompt} from the terminal")).with_source(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(card: Option<&str>, reader: Option<&str>) -> CardOptions {
        CardOptions {
            card: card.map(str::to_owned),
            reader: reader.map(str::to_owned),
            sim_state: None,
            record: None,
            timeout: 60,
        }
    }

    #[test]
    fn card_specs() {
        assert!(transport(&opts(Some("sim"), None)).is_ok());
        assert!(transport(&opts(Some("sim:under15"), None)).is_ok());
        let bad = transport(&opts(Some("sim:nope"), None)).err().unwrap();
        assert_eq!(bad.exit_code(), ExitCode::Usage);
        let image = format!("image:{}", mynacard_sim::recorded::JLIS_TEST_CARD);
        let recorded = transport(&opts(Some(&image), None)).unwrap();
        assert_eq!(recorded.name(), "simulated card (image:jlis-test-card)");
        for bad in ["image:", "image:/nonexistent/card.toml"] {
            let refused = transport(&opts(Some(bad), None)).err().unwrap();
            assert_eq!(refused.exit_code(), ExitCode::Usage, "{bad}");
        }
        assert_eq!(
            SimSource::parse("image:a/b"),
            Some(SimSource::Image("a/b".into()))
        );
        assert_eq!(opts(Some(&image), None).sim_profile(), None);
        assert_eq!(
            opts(Some("sim"), None).sim_profile().as_deref(),
            Some("adult")
        );
        assert_eq!(
            transport(&opts(Some("card"), None))
                .err()
                .unwrap()
                .exit_code(),
            ExitCode::Usage
        );
        assert_eq!(
            transport(&opts(None, None)).err().unwrap().exit_code(),
            ExitCode::Usage
        );
        let reader = transport(&opts(None, Some("ACS ACR39U"))).unwrap();
        assert_eq!(reader.name(), "ACS ACR39U");
    }
}
