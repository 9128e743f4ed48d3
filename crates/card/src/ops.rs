//! The card's operations as sans-I/O values: the one place where the card's rules live.
//!
//! Each operation says which command to send next ([`Step::Send`]) and takes the card's answer
//! ([`Operation::feed`]) until it returns a typed result ([`Step::Done`]). None of them does I/O.
//! [`Session`](crate::Session) runs them over a [`CardChannel`](mynacard_transport::CardChannel);
//! the registration flows embed the same values in their own sans-I/O machine. Every fall-back
//! and refusal therefore exists once:
//!
//! - A command addressed by short EF identifier that the card refuses with `6A86` (bad P1-P2,
//!   refused before anything was done) is sent again in the SELECT EF form, and that form is kept
//!   for the rest of the session: per family ([`Link`]: reads, keys, signing keys).
//!   A retry-counter read by identifier answered `6B00` (wrong P1-P2) is treated the same way.
//! - A whole-file read uses one READ BINARY by identifier with the largest Le the link takes,
//!   then SELECT EF and offsets for what remains (an identifier read carries only an 8-bit
//!   offset); a `6700` to an extended read ends extended length for the session.
//! - A key without its EF (`6A82`, `6A88`) is [`PinStatus::NotSet`].
//! - VERIFY is sent once. Only a `6A86` to its identifier form, which the card answers before
//!   looking at the value, lets the same value go once more in the SELECT EF form.
//! - Neither VERIFY nor a signature is ever resent after `6Cxx` ([`CardCommand::resend`]).
//!
//! ```
//! use mynacard_apdu::{Response, StatusWord};
//! use mynacard_card::ops::{Link, Operation, PinStatusRead, Step};
//! use mynacard_card::{PinKind, PinStatus};
//!
//! let mut link = Link::short();
//! let mut op = PinStatusRead::new(PinKind::JpkiAuth);
//! let Step::Send(command) = op.start(&mut link)? else { unreachable!() };
//! assert_eq!(command.command.to_bytes(Default::default())?.as_slice(), [0x00, 0x20, 0x00, 0x98]);
//! let done = op.feed(&mut link, Response::status(StatusWord::RetriesRemaining(3)))?;
//! assert!(matches!(done, Step::Done(PinStatus::Remaining(3))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;

use mynacard_apdu::commands::{self, KeyRef};
use mynacard_apdu::tlv::ber;
use mynacard_apdu::{
    Command, CommandBytes, LengthEncoding, MAX_NE, Response, ResponseAssembler, StatusWord,
    Step as AssemblerStep, chain,
};
use mynacard_transport::Capabilities;
use zeroize::Zeroizing;

use crate::catalogue::{self, SignScheme};
use crate::pin::{AttemptPolicy, PinKind, PinStatus};
use crate::session::{Application, ExtendedLength};
use crate::{Error, Result};

/// What the session knows about the link and the card's addressing, shared by every operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    max_command_len: usize,
    max_response_data: usize,
    extended: bool,
    extended_refused: bool,
    read_by_sfi: bool,
    key_by_sfi: bool,
    sign_by_sfi: bool,
    current_ef: Option<u16>,
}

impl Link {
    /// A link with these capabilities, using extended length as `policy` allows.
    pub fn new(caps: &Capabilities, policy: ExtendedLength) -> Link {
        Link {
            max_command_len: caps.max_command_len,
            max_response_data: caps.max_response_data().max(1),
            extended: policy != ExtendedLength::Never && caps.extended_length,
            extended_refused: false,
            read_by_sfi: true,
            key_by_sfi: true,
            sign_by_sfi: true,
            current_ef: None,
        }
    }

    /// A link of short APDUs only (261-byte commands, 256 bytes of response data).
    pub fn short() -> Link {
        Link::new(
            &Capabilities::short(mynacard_transport::Interface::Contactless, Vec::new()),
            ExtendedLength::Auto,
        )
    }

    /// A link whose answers carry at most `max_read` data bytes (1–65536): extended length when
    /// that is more than 256.
    pub fn with_max_read(max_read: usize) -> Link {
        let max_read = max_read.clamp(1, MAX_NE as usize);
        let iface = mynacard_transport::Interface::Contactless;
        let caps = if max_read > 256 {
            Capabilities::extended(iface, Vec::new())
        } else {
            Capabilities::short(iface, Vec::new())
        };
        Link {
            max_response_data: max_read,
            ..Link::new(&caps, ExtendedLength::Auto)
        }
    }

    /// Whether extended-length APDUs are in use.
    pub fn extended_usable(&self) -> bool {
        self.extended && !self.extended_refused
    }

    /// Ends extended length for the rest of the session (the card or the link refused it).
    pub fn refuse_extended(&mut self) {
        self.extended_refused = true;
    }

    /// The largest Ne of one read.
    pub fn max_read(&self) -> usize {
        if self.extended_usable() {
            self.max_response_data.min(MAX_NE as usize)
        } else {
            self.max_response_data.min(256)
        }
    }

    /// The longest command data one APDU carries; longer data is chained.
    pub fn max_command_data(&self, extended: bool) -> usize {
        if extended {
            self.max_command_len.saturating_sub(9).clamp(1, 65_535)
        } else {
            self.max_command_len.saturating_sub(6).clamp(1, 255)
        }
    }

    /// An application was selected: its keys are tried by identifier again, and no EF is
    /// current.
    pub fn application_selected(&mut self) {
        self.key_by_sfi = true;
        self.current_ef = None;
    }

    /// The card was reset: as after selecting an application.
    pub fn card_reset(&mut self) {
        self.application_selected();
    }

    /// Something outside these operations talked to the card: no EF is known to be current.
    pub fn forget_current_ef(&mut self) {
        self.current_ef = None;
    }

    /// The reference of `key` in the current application's addressing.
    pub(crate) fn key_ref(&self, key: PinKind) -> KeyRef {
        if self.key_by_sfi {
            KeyRef::for_file(key.file_id())
        } else {
            KeyRef::Current
        }
    }
}

/// One logical command and how it may be exchanged.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CardCommand {
    /// The command.
    pub command: Command,
    /// What it does, for errors and traces.
    pub purpose: &'static str,
    /// The key whose attempt the command may spend: a link lost during it leaves the attempt
    /// possibly counted.
    pub attempt: Option<PinKind>,
    /// Whether a `6Cxx` answer may be followed by resending the command. Never for VERIFY or
    /// a signature.
    pub resend: bool,
    /// A forced length encoding.
    pub encoding: Option<LengthEncoding>,
}

impl CardCommand {
    /// `command`, resent after `6Cxx` if the card asks, spending no attempt.
    pub fn new(command: Command, purpose: &'static str) -> CardCommand {
        CardCommand {
            command,
            purpose,
            attempt: None,
            resend: true,
            encoding: None,
        }
    }

    /// The same command, marked as possibly spending an attempt of `key`.
    #[must_use]
    pub fn spending(mut self, key: Option<PinKind>) -> CardCommand {
        self.attempt = key;
        self
    }

    /// The same command, resent after `6Cxx` or not.
    #[must_use]
    pub fn resending(mut self, resend: bool) -> CardCommand {
        self.resend = resend;
        self
    }

    /// The same command with a forced length encoding.
    #[must_use]
    pub fn encoded(mut self, encoding: Option<LengthEncoding>) -> CardCommand {
        self.encoding = encoding;
        self
    }

    fn plain(command: Command, purpose: &'static str) -> CardCommand {
        CardCommand::new(command, purpose)
    }

    fn once(command: Command, purpose: &'static str) -> CardCommand {
        CardCommand::new(command, purpose).resending(false)
    }

    /// The command encoded as it goes on `link` (extended only where the link takes it).
    ///
    /// # Errors
    /// [`Error::Apdu`] when the command does not fit the encoding.
    pub fn to_bytes(&self, link: &Link) -> Result<CommandBytes> {
        Ok(self.command.to_bytes(self.length_encoding(link))?)
    }

    /// The length encoding on `link`.
    pub fn length_encoding(&self, link: &Link) -> LengthEncoding {
        self.encoding.unwrap_or(if link.extended_usable() {
            LengthEncoding::Auto
        } else {
            LengthEncoding::Short
        })
    }
}

/// What an operation wants next.
#[derive(Debug)]
#[must_use]
pub enum Step<T> {
    /// Exchange this command ([`Exchange`]) and feed the assembled answer.
    Send(CardCommand),
    /// The operation is over.
    Done(T),
}

/// A card operation as a value.
pub trait Operation {
    /// What the operation returns.
    type Output;

    /// The first step.
    ///
    /// # Errors
    /// The operation's typed error; nothing was sent.
    fn start(&mut self, link: &mut Link) -> Result<Step<Self::Output>>;

    /// Feeds the answer to the command of the last [`Step::Send`].
    ///
    /// # Errors
    /// The card's refusal, typed.
    fn feed(&mut self, link: &mut Link, response: Response) -> Result<Step<Self::Output>>;
}

/// One logical command on the wire: chained parts, `61xx` GET RESPONSE rounds and (when the
/// command allows) one `6Cxx` resend.
#[derive(Debug, Clone)]
pub struct Exchange {
    rest: VecDeque<Command>,
    current: Command,
    encoding: LengthEncoding,
    assembler: Option<ResponseAssembler>,
    purpose: &'static str,
    resend: bool,
}

impl Exchange {
    /// Starts exchanging `command` on `link`.
    ///
    /// # Errors
    /// [`Error::Apdu`] when the command cannot be split for the link.
    pub fn new(link: &Link, command: &CardCommand) -> Result<Exchange> {
        let encoding = command.length_encoding(link);
        let extended = encoding != LengthEncoding::Short;
        let mut rest: VecDeque<Command> =
            chain::split(&command.command, link.max_command_data(extended))?.into();
        let current = rest.pop_front().ok_or(Error::InvalidInput {
            what: "empty command chain",
        })?;
        let assembler = rest.is_empty().then(|| ResponseAssembler::new(&current));
        Ok(Exchange {
            rest,
            current,
            encoding,
            assembler,
            purpose: command.purpose,
            resend: command.resend,
        })
    }

    /// The APDU to transmit now.
    pub fn apdu(&self) -> &Command {
        &self.current
    }

    /// Its length encoding.
    pub fn encoding(&self) -> LengthEncoding {
        self.encoding
    }

    /// The APDU to transmit now, encoded.
    ///
    /// # Errors
    /// [`Error::Apdu`].
    pub fn apdu_bytes(&self) -> Result<CommandBytes> {
        Ok(self.current.to_bytes(self.encoding)?)
    }

    /// Feeds the card's answer to [`Exchange::apdu`]: `Some` answer when the logical command is
    /// done, `None` when [`Exchange::apdu`] now holds the next APDU to send.
    ///
    /// # Errors
    /// A chained part refused, a `6Cxx` to a command that is never resent, or a looping card.
    pub fn feed(&mut self, response: Response) -> Result<Option<Response>> {
        let Some(assembler) = &mut self.assembler else {
            if !response.is_success() {
                return Err(Error::card(response.sw, self.purpose));
            }
            self.current = self.rest.pop_front().ok_or(Error::InvalidInput {
                what: "empty command chain",
            })?;
            if self.rest.is_empty() {
                self.assembler = Some(ResponseAssembler::new(&self.current));
            }
            return Ok(None);
        };
        match assembler.feed(response)? {
            AssemblerStep::Done(r) => Ok(Some(r)),
            AssemblerStep::GetResponse(get) => {
                self.current = get;
                Ok(None)
            }
            AssemblerStep::Resend(again) => {
                if !self.resend {
                    let le = again.ne().unwrap_or(0) as u8;
                    return Err(Error::card(StatusWord::WrongLe(le), self.purpose));
                }
                self.current = again;
                Ok(None)
            }
        }
    }
}

/// SELECT of one of the card's applications by its AID.
#[derive(Debug, Clone)]
pub struct SelectApplication {
    app: Application,
}

impl SelectApplication {
    /// SELECT of `app`.
    pub fn new(app: Application) -> SelectApplication {
        SelectApplication { app }
    }
}

impl Operation for SelectApplication {
    type Output = ();

    fn start(&mut self, _link: &mut Link) -> Result<Step<()>> {
        Ok(Step::Send(CardCommand::plain(
            commands::select_df(self.app.aid()),
            "SELECT application",
        )))
    }

    fn feed(&mut self, link: &mut Link, r: Response) -> Result<Step<()>> {
        if !r.is_success() {
            return Err(Error::card(r.sw, "SELECT application"));
        }
        link.application_selected();
        Ok(Step::Done(()))
    }
}

/// How much of a file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Extent {
    /// One BER/DER object: its length comes from its header; padding after it is not read.
    Tlv,
    /// Everything up to the end of the file.
    Physical,
    /// Exactly this many bytes.
    Exact(usize),
}

/// How a READ BINARY answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// As much as was asked for.
    Full,
    /// Fewer bytes with `9000`: the end of the file, or a reader that caps answers (the file's
    /// length, when known, tells which).
    Short,
    /// `6282`: the card says the file ended.
    EndOfFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    /// READ BINARY by identifier of the first chunk, extended or short.
    First { ne: usize, extended: bool },
    /// SELECT EF before reading by offset.
    Select,
    /// READ BINARY at an offset.
    Offset { ne: usize },
}

/// A whole EF of the current application, with as few APDUs as the link allows.
///
/// With extended length: one READ BINARY by short EF identifier with the largest Le
/// (`00 B0 8x 00 00 00 00`), so no SELECT EF. Without: READ BINARY by identifier of the first
/// chunk, which also tells the length from the TLV header; if more is needed, SELECT EF and READ
/// BINARY at offsets, each asking exactly for what remains. A file of known length that comes
/// back short (a reader that caps answers, with `9000` or the card's `6282`) is read on at its
/// offset.
#[derive(Debug, Clone)]
pub struct ReadFile {
    fid: u16,
    extent: Extent,
    what: &'static str,
    data: Vec<u8>,
    total: Option<usize>,
    state: ReadState,
}

impl ReadFile {
    /// A read of EF `fid`; `what` names it in errors.
    pub fn new(fid: u16, extent: Extent, what: &'static str) -> ReadFile {
        ReadFile {
            fid,
            extent,
            what,
            data: Vec::new(),
            total: None,
            state: ReadState::Select,
        }
    }

    /// How many bytes of the file have arrived so far.
    pub fn bytes_read(&self) -> usize {
        self.data.len()
    }

    fn want(&self, max: usize) -> usize {
        match self.extent {
            Extent::Exact(n) => n.clamp(1, max),
            _ => max,
        }
    }

    fn first(&mut self, link: &Link) -> Result<Step<Vec<u8>>> {
        let ne = self.want(link.max_read());
        let extended = link.extended_usable() && ne > 256;
        let cmd = commands::read_binary_sfi((self.fid & 0x1F) as u8, 0, ne as u32)?;
        self.state = ReadState::First { ne, extended };
        let mut command = CardCommand::plain(cmd, self.what);
        if extended {
            command.encoding = Some(LengthEncoding::Extended);
        }
        Ok(Step::Send(command))
    }

    fn select(&mut self) -> Step<Vec<u8>> {
        self.state = ReadState::Select;
        Step::Send(CardCommand::plain(commands::select_ef(self.fid), self.what))
    }

    fn next_offset(&mut self, link: &Link) -> Result<Step<Vec<u8>>> {
        let total = self.total.unwrap_or(usize::MAX);
        let offset = u16::try_from(self.data.len())
            .ok()
            .filter(|o| *o <= 0x7FFF)
            .ok_or(Error::FileTooLarge {
                what: self.what,
                len: self.data.len(),
            })?;
        let ne = total.saturating_sub(self.data.len()).min(link.max_read());
        self.state = ReadState::Offset { ne };
        Ok(Step::Send(CardCommand::plain(
            commands::read_binary(offset, ne as u32)?,
            self.what,
        )))
    }

    fn answer(&self, r: Response, ne: usize) -> Result<(Vec<u8>, ReadEnd)> {
        match r.sw {
            StatusWord::Success if r.data.len() < ne => Ok((r.data, ReadEnd::Short)),
            StatusWord::Success => Ok((r.data, ReadEnd::Full)),
            StatusWord::EndOfFileWarning => Ok((r.data, ReadEnd::EndOfFile)),
            sw => Err(Error::card(sw, self.what)),
        }
    }

    fn finish(&mut self) -> Result<Step<Vec<u8>>> {
        let mut data = std::mem::take(&mut self.data);
        if self.extent == Extent::Physical {
            return Ok(Step::Done(data));
        }
        let total = self.total.unwrap_or(0);
        if data.len() < total {
            return Err(Error::Malformed {
                what: "file ends before its announced length",
            });
        }
        data.truncate(total);
        Ok(Step::Done(data))
    }

    fn after_first(&mut self, link: &Link, end: ReadEnd) -> Result<Step<Vec<u8>>> {
        // Without a length to go by (a physical read), a short answer is the end.
        let total = match self.extent {
            Extent::Exact(n) => n,
            Extent::Physical if end != ReadEnd::Full => return self.finish(),
            Extent::Physical => usize::MAX,
            Extent::Tlv => self.announced_total()?,
        };
        self.total = (total != usize::MAX).then_some(total);
        if self.data.len() >= total {
            return self.finish();
        }
        if total != usize::MAX {
            self.addressable(link, total)?;
        }
        // The rest by offset: an identifier read only addresses the first 256 bytes.
        Ok(self.select())
    }
}

impl Operation for ReadFile {
    type Output = Vec<u8>;

    fn start(&mut self, link: &mut Link) -> Result<Step<Vec<u8>>> {
        self.data.clear();
        self.total = None;
        if link.read_by_sfi {
            self.first(link)
        } else {
            if let Extent::Exact(n) = self.extent {
                self.total = Some(n);
            }
            Ok(self.select())
        }
    }

    fn feed(&mut self, link: &mut Link, r: Response) -> Result<Step<Vec<u8>>> {
        match self.state {
            ReadState::First { extended: true, .. } if r.sw == StatusWord::WrongLength => {
                // The card or the reader does not take extended length: short from now on.
                link.refuse_extended();
                self.first(link)
            }
            ReadState::First { .. } if r.sw == StatusWord::IncorrectP1P2 => {
                // No reading by identifier on this card: SELECT EF and offsets from now on.
                link.read_by_sfi = false;
                link.current_ef = None;
                self.start(link)
            }
            ReadState::First { ne, .. } => {
                link.current_ef = None;
                let (data, end) = self.answer(r, ne)?;
                self.data = data;
                self.after_first(link, end)
            }
            ReadState::Select => {
                if !r.is_success() {
                    return Err(Error::card(r.sw, self.what));
                }
                link.current_ef = Some(self.fid);
                self.next_offset(link)
            }
            ReadState::Offset { ne } => {
                if r.sw == StatusWord::WrongP1P2 {
                    // 6B00: the offset is past the end of the file.
                    return self.finish();
                }
                let (chunk, end) = self.answer(r, ne)?;
                if chunk.is_empty() {
                    return self.finish();
                }
                self.data.extend_from_slice(&chunk);
                if self.total.is_none() && self.extent == Extent::Tlv {
                    // Read from offset 0 without the identifier form: the header is here now.
                    return self.after_offset_header(link);
                }
                let total = self.total.unwrap_or(usize::MAX);
                if self.data.len() >= total
                    || (self.extent == Extent::Physical && end != ReadEnd::Full)
                {
                    return self.finish();
                }
                self.next_offset(link)
            }
        }
    }
}

impl ReadFile {
    fn after_offset_header(&mut self, link: &Link) -> Result<Step<Vec<u8>>> {
        let total = self.announced_total()?;
        self.addressable(link, total)?;
        self.total = Some(total);
        if self.data.len() >= total {
            return self.finish();
        }
        self.next_offset(link)
    }

    /// The file's whole length as its TLV header (at the start of what has arrived) announces it.
    fn announced_total(&self) -> Result<usize> {
        let (_, header, len) =
            ber::parse_header(&self.data).map_err(|source| Error::MalformedTlv {
                what: self.what,
                source,
            })?;
        header.checked_add(len).ok_or(Error::FileTooLarge {
            what: self.what,
            len,
        })
    }

    /// Refuses a length past what READ BINARY offsets (15 bits) and one last read can reach.
    fn addressable(&self, link: &Link, total: usize) -> Result<()> {
        if total > 0x7FFF + link.max_read() {
            return Err(Error::FileTooLarge {
                what: self.what,
                len: total,
            });
        }
        Ok(())
    }
}

/// What a retry-counter answer says.
fn status_from(sw: StatusWord, operation: &'static str) -> Result<PinStatus> {
    Ok(match sw {
        StatusWord::RetriesRemaining(0)
        | StatusWord::ReferenceDataBlocked
        | StatusWord::AuthenticationMethodBlocked => PinStatus::Blocked,
        StatusWord::RetriesRemaining(n) => PinStatus::Remaining(n),
        StatusWord::WarningNvChanged => PinStatus::Unlimited,
        StatusWord::Success => PinStatus::NotReported,
        StatusWord::ReferencedDataNotFound | StatusWord::FileNotFound => PinStatus::NotSet,
        sw => return Err(Error::card(sw, operation)),
    })
}

/// What a VERIFY (or CHANGE REFERENCE DATA) answer says.
pub(crate) fn verify_outcome(key: PinKind, sw: StatusWord, operation: &'static str) -> Result<()> {
    match sw {
        StatusWord::Success => Ok(()),
        StatusWord::RetriesRemaining(0)
        | StatusWord::ReferenceDataBlocked
        | StatusWord::AuthenticationMethodBlocked => Err(Error::Blocked { key }),
        StatusWord::RetriesRemaining(n) => Err(Error::WrongPin {
            key,
            retries_left: n,
        }),
        StatusWord::ReferencedDataNotFound | StatusWord::FileNotFound => {
            Err(Error::PinNotSet { key })
        }
        sw if refused_unchecked(sw) => Err(Error::card(sw, operation)),
        // Anything else may follow a check of the value: a damaged answer to a wrong PIN, an
        // execution error. Never call it "not counted".
        sw => Err(Error::AttemptUnclear { key, operation, sw }),
    }
}

/// Status words by which a card refuses a command before it looks at the value (its form,
/// class, parameters or security state), so no attempt was spent.
fn refused_unchecked(sw: StatusWord) -> bool {
    matches!(
        sw,
        StatusWord::WrongLength
            | StatusWord::ClaFunctionNotSupported
            | StatusWord::SecureMessagingNotSupported
            | StatusWord::CommandNotAllowed
            | StatusWord::SecurityStatusNotSatisfied
            | StatusWord::ConditionsNotSatisfied
            | StatusWord::NoCurrentEf
            | StatusWord::SmObjectsMissing
            | StatusWord::SmObjectsIncorrect
            | StatusWord::SmSessionError
            | StatusWord::WrongParameters
            | StatusWord::IncorrectData
            | StatusWord::FunctionNotSupported
            | StatusWord::IncorrectP1P2
            | StatusWord::WrongP1P2
            | StatusWord::InsNotSupported
            | StatusWord::ClaNotSupported
    )
}

/// The rule before any VERIFY: refused when the key is blocked or not set, and (unless the
/// policy allows it) on its last try. Returns the tries left when the card tells them.
///
/// # Errors
/// [`Error::Blocked`], [`Error::PinNotSet`] or [`Error::LastAttemptRefused`].
pub fn check_attempt(key: PinKind, status: PinStatus, policy: AttemptPolicy) -> Result<Option<u8>> {
    match status {
        PinStatus::Blocked => Err(Error::Blocked { key }),
        PinStatus::NotSet => Err(Error::PinNotSet { key }),
        PinStatus::Remaining(1) if policy == AttemptPolicy::KeepLastAttempt => {
            Err(Error::LastAttemptRefused {
                key,
                retries_left: 1,
            })
        }
        PinStatus::Remaining(n) => Ok(Some(n)),
        _ => Ok(None),
    }
}

const STATUS_OP: &str = "VERIFY (retry counter)";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    BySfi,
    Select,
    Current,
}

/// A key's retry counter, read with an empty VERIFY, which spends nothing.
///
/// By identifier first; when the card refuses that addressing, SELECT EF of the key and ask
/// again, keeping that addressing in this application.
#[derive(Debug, Clone)]
pub struct PinStatusRead {
    key: PinKind,
    state: KeyState,
}

impl PinStatusRead {
    /// The retry counter of `key` in the current application.
    pub fn new(key: PinKind) -> PinStatusRead {
        PinStatusRead {
            key,
            state: KeyState::BySfi,
        }
    }

    fn select(&mut self) -> Step<PinStatus> {
        self.state = KeyState::Select;
        Step::Send(CardCommand::plain(
            commands::select_ef(self.key.file_id()),
            "SELECT key",
        ))
    }

    fn ask_current(&mut self) -> Step<PinStatus> {
        self.state = KeyState::Current;
        Step::Send(CardCommand::plain(
            commands::verify_status(KeyRef::Current),
            STATUS_OP,
        ))
    }
}

impl Operation for PinStatusRead {
    type Output = PinStatus;

    fn start(&mut self, link: &mut Link) -> Result<Step<PinStatus>> {
        if link.key_by_sfi {
            self.state = KeyState::BySfi;
            return Ok(Step::Send(CardCommand::plain(
                commands::verify_status(link.key_ref(self.key)),
                STATUS_OP,
            )));
        }
        if link.current_ef == Some(self.key.file_id()) {
            return Ok(self.ask_current());
        }
        Ok(self.select())
    }

    fn feed(&mut self, link: &mut Link, r: Response) -> Result<Step<PinStatus>> {
        match self.state {
            KeyState::BySfi
                if matches!(r.sw, StatusWord::IncorrectP1P2 | StatusWord::WrongP1P2) =>
            {
                link.key_by_sfi = false;
                Ok(self.select())
            }
            KeyState::BySfi | KeyState::Current => status_from(r.sw, STATUS_OP).map(Step::Done),
            KeyState::Select => match r.sw {
                StatusWord::Success => {
                    link.current_ef = Some(self.key.file_id());
                    Ok(self.ask_current())
                }
                StatusWord::FileNotFound | StatusWord::ReferencedDataNotFound => {
                    Ok(Step::Done(PinStatus::NotSet))
                }
                sw => Err(Error::card(sw, "SELECT key")),
            },
        }
    }
}

/// One VERIFY with a value, after its retry counter was read ([`check_attempt`]).
///
/// Sent once. Only a `6A86` to the identifier form, which the card answers before it looks at
/// the value, lets the same value go once more after SELECT EF.
#[derive(Debug, Clone)]
pub struct VerifyOnce {
    key: PinKind,
    value: Zeroizing<Vec<u8>>,
    state: KeyState,
}

impl VerifyOnce {
    pub(crate) fn new(key: PinKind, value: Zeroizing<Vec<u8>>) -> VerifyOnce {
        VerifyOnce {
            key,
            value,
            state: KeyState::BySfi,
        }
    }

    /// VERIFY of `key` with a PIN, which moves into the operation (and is wiped when the
    /// card has answered).
    pub fn pin(key: PinKind, pin: crate::Pin) -> VerifyOnce {
        VerifyOnce::new(key, pin.into_bytes())
    }

    /// VERIFY of the visual AP's 照合番号B.
    pub fn collation_b(b: &crate::CollationB) -> VerifyOnce {
        VerifyOnce::new(PinKind::VisualCollationB, b.bytes())
    }

    fn verify(&mut self, key: KeyRef) -> Step<()> {
        self.state = if key == KeyRef::Current {
            KeyState::Current
        } else {
            KeyState::BySfi
        };
        let mut command = CardCommand::once(commands::verify(key, self.value.clone()), "VERIFY");
        command.attempt = Some(self.key);
        Step::Send(command)
    }

    fn select(&mut self) -> Step<()> {
        self.state = KeyState::Select;
        Step::Send(CardCommand::plain(
            commands::select_ef(self.key.file_id()),
            "SELECT key",
        ))
    }
}

impl Operation for VerifyOnce {
    type Output = ();

    fn start(&mut self, link: &mut Link) -> Result<Step<()>> {
        if link.key_by_sfi {
            Ok(self.verify(link.key_ref(self.key)))
        } else if link.current_ef == Some(self.key.file_id()) {
            Ok(self.verify(KeyRef::Current))
        } else {
            Ok(self.select())
        }
    }

    fn feed(&mut self, link: &mut Link, r: Response) -> Result<Step<()>> {
        match self.state {
            KeyState::BySfi if r.sw == StatusWord::IncorrectP1P2 => {
                link.key_by_sfi = false;
                Ok(self.select())
            }
            KeyState::Select if r.is_success() => {
                link.current_ef = Some(self.key.file_id());
                Ok(self.verify(KeyRef::Current))
            }
            KeyState::Select => Err(Error::card(r.sw, "SELECT key")),
            KeyState::BySfi | KeyState::Current => {
                // The value is not needed any more, whatever the answer.
                self.value = Zeroizing::new(Vec::new());
                verify_outcome(self.key, r.sw, "VERIFY").map(Step::Done)
            }
        }
    }
}

/// The retry counter, the attempt rule, then one VERIFY ([`PinStatusRead`], [`check_attempt`],
/// [`VerifyOnce`]).
#[derive(Debug, Clone)]
pub struct Verify {
    key: PinKind,
    policy: AttemptPolicy,
    stage: VerifyStage,
}

#[derive(Debug, Clone)]
enum VerifyStage {
    /// Reading the retry counter; the value waits.
    Status(PinStatusRead, Zeroizing<Vec<u8>>),
    /// The VERIFY itself, which now holds the value.
    Verify(VerifyOnce),
}

impl Verify {
    pub(crate) fn new(key: PinKind, value: Zeroizing<Vec<u8>>, policy: AttemptPolicy) -> Verify {
        Verify {
            key,
            policy,
            stage: VerifyStage::Status(PinStatusRead::new(key), value),
        }
    }
}

impl Operation for Verify {
    type Output = ();

    fn start(&mut self, link: &mut Link) -> Result<Step<()>> {
        match &mut self.stage {
            VerifyStage::Status(status, _) => match status.start(link)? {
                Step::Send(c) => Ok(Step::Send(c)),
                Step::Done(_) => Err(Error::InvalidInput {
                    what: "retry counter read without a command",
                }),
            },
            VerifyStage::Verify(verify) => verify.start(link),
        }
    }

    fn feed(&mut self, link: &mut Link, r: Response) -> Result<Step<()>> {
        match &mut self.stage {
            VerifyStage::Status(status, value) => match status.feed(link, r)? {
                Step::Send(c) => Ok(Step::Send(c)),
                Step::Done(status) => {
                    check_attempt(self.key, status, self.policy)?;
                    let value = std::mem::replace(value, Zeroizing::new(Vec::new()));
                    let mut verify = VerifyOnce::new(self.key, value);
                    let step = verify.start(link);
                    self.stage = VerifyStage::Verify(verify);
                    step
                }
            },
            VerifyStage::Verify(verify) => verify.feed(link, r),
        }
    }
}

/// COMPUTE DIGITAL SIGNATURE with a key EF of the current application: by identifier
/// (`P2 = 80|SFI`), or after SELECT EF once the card refused that. Sent once; the answer must be
/// a signature of the key's length.
#[derive(Debug, Clone)]
pub struct Sign {
    key_file: u16,
    scheme: SignScheme,
    input: Vec<u8>,
    signature_len: usize,
    state: KeyState,
}

const SIGN_OP: &str = "COMPUTE DIGITAL SIGNATURE";

impl Sign {
    /// A signature of `input` under `scheme` with the key in EF `key_file`, whose modulus is
    /// `signature_len` bytes.
    pub fn new(key_file: u16, scheme: SignScheme, input: &[u8], signature_len: usize) -> Sign {
        Sign {
            key_file,
            scheme,
            input: input.to_vec(),
            signature_len,
            state: KeyState::BySfi,
        }
    }

    fn sign(&mut self, key: KeyRef) -> Step<Vec<u8>> {
        self.state = if key == KeyRef::Current {
            KeyState::Current
        } else {
            KeyState::BySfi
        };
        Step::Send(CardCommand::once(
            catalogue::compute_signature(self.scheme, key, self.input.clone()),
            SIGN_OP,
        ))
    }

    fn select(&mut self) -> Step<Vec<u8>> {
        self.state = KeyState::Select;
        Step::Send(CardCommand::plain(
            commands::select_ef(self.key_file),
            "SELECT key",
        ))
    }
}

impl Operation for Sign {
    type Output = Vec<u8>;

    fn start(&mut self, link: &mut Link) -> Result<Step<Vec<u8>>> {
        if link.sign_by_sfi {
            Ok(self.sign(KeyRef::for_file(self.key_file)))
        } else if link.current_ef == Some(self.key_file) {
            Ok(self.sign(KeyRef::Current))
        } else {
            Ok(self.select())
        }
    }

    fn feed(&mut self, link: &mut Link, r: Response) -> Result<Step<Vec<u8>>> {
        match self.state {
            // Refused before computing anything: sign by the selected key instead.
            KeyState::BySfi if r.sw == StatusWord::IncorrectP1P2 => {
                link.sign_by_sfi = false;
                Ok(self.select())
            }
            KeyState::Select if r.is_success() => {
                link.current_ef = Some(self.key_file);
                Ok(self.sign(KeyRef::Current))
            }
            KeyState::Select => Err(Error::card(r.sw, "SELECT key")),
            KeyState::BySfi | KeyState::Current => {
                signature_answer(r, self.signature_len, SIGN_OP).map(Step::Done)
            }
        }
    }
}

fn signature_answer(r: Response, expected: usize, operation: &'static str) -> Result<Vec<u8>> {
    if !r.is_success() {
        return Err(Error::card(r.sw, operation));
    }
    if r.data.len() != expected {
        return Err(Error::SignatureLength {
            expected,
            actual: r.data.len(),
        });
    }
    Ok(r.data)
}

/// The card-presence signature of a 券面 AP: COMPUTE DIGITAL SIGNATURE with the application's
/// own key and no credential, `80 2A 00 00 Lc DigestInfo 00` (card facts B.5). Sent once.
#[derive(Debug, Clone)]
pub struct PresenceSign {
    digest_info: Vec<u8>,
    signature_len: usize,
}

const PRESENCE_OP: &str = "COMPUTE DIGITAL SIGNATURE (card presence)";

impl PresenceSign {
    /// A signature of `digest_info` by the key whose modulus is `signature_len` bytes.
    pub fn new(digest_info: &[u8], signature_len: usize) -> PresenceSign {
        PresenceSign {
            digest_info: digest_info.to_vec(),
            signature_len,
        }
    }
}

impl Operation for PresenceSign {
    type Output = Vec<u8>;

    fn start(&mut self, _link: &mut Link) -> Result<Step<Vec<u8>>> {
        let mut cmd = catalogue::compute_signature(
            SignScheme::Pkcs1DigestInfo,
            KeyRef::Current,
            self.digest_info.clone(),
        );
        // P2 = 00: the application's own key, not a key EF.
        cmd.p2 = 0x00;
        Ok(Step::Send(CardCommand::once(cmd, PRESENCE_OP)))
    }

    fn feed(&mut self, _link: &mut Link, r: Response) -> Result<Step<Vec<u8>>> {
        signature_answer(r, self.signature_len, PRESENCE_OP).map(Step::Done)
    }
}
