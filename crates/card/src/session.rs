//! The card session: ISO 7816 plumbing over one [`CardChannel`].
//!
//! The session owns the channel, so everything sent to the card goes through it: `61xx` GET
//! RESPONSE rounds, `6Cxx` resends (never for commands that spend a PIN attempt or compute a
//! signature), command chaining, the choice between extended and short length, reset detection,
//! and the APDU and byte counters.

use mynacard_apdu::commands::{self, KeyRef};
use mynacard_apdu::tlv::ber;
use mynacard_apdu::{
    Command, LengthEncoding, MAX_NE, Response, ResponseAssembler, StatusWord, Step, chain,
};
use mynacard_transport::{Capabilities, CardChannel, TransportError};
use zeroize::Zeroizing;

use crate::crypto::CardPublicKey;
use crate::pin::{AttemptPolicy, PinKind, PinStatus};
use crate::{Error, Result};

/// Whether the session may use extended-length APDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ExtendedLength {
    /// Use them when the transport says it can carry them, and fall back to short APDUs for the
    /// rest of the session the first time the card (`6700`) or the transport refuses one.
    #[default]
    Auto,
    /// Never use them (some phones claim support and then lose the tag).
    Never,
}

/// Session settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SessionOptions {
    /// Extended-length policy.
    pub extended_length: ExtendedLength,
}

impl SessionOptions {
    /// The same options with another extended-length policy.
    #[must_use]
    pub fn with_extended_length(mut self, extended_length: ExtendedLength) -> Self {
        self.extended_length = extended_length;
        self
    }
}

/// What the session has sent and received so far: every command APDU (GET RESPONSE, resends and
/// chained parts included) and the bytes in each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ApduStats {
    /// Command APDUs transmitted.
    pub commands: u64,
    /// Command bytes transmitted.
    pub bytes_sent: u64,
    /// Response bytes received (status words included).
    pub bytes_received: u64,
}

impl core::ops::Sub for ApduStats {
    type Output = ApduStats;
    fn sub(self, rhs: ApduStats) -> ApduStats {
        ApduStats {
            commands: self.commands.saturating_sub(rhs.commands),
            bytes_sent: self.bytes_sent.saturating_sub(rhs.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(rhs.bytes_received),
        }
    }
}

/// The card applications this crate speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Application {
    /// 公的個人認証AP.
    Jpki,
    /// 券面事項入力補助AP.
    Text,
    /// 券面事項確認AP.
    Visual,
    /// 共通カードAP.
    Common,
}

impl Application {
    /// The application identifier.
    pub const fn aid(self) -> &'static [u8] {
        use crate::catalogue::aid;
        match self {
            Application::Jpki => &aid::JPKI,
            Application::Text => &aid::TEXT,
            Application::Visual => &aid::VISUAL,
            Application::Common => &aid::COMMON,
        }
    }
}

/// How much of a file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Extent {
    /// One BER/DER object: its length comes from its header; padding after it is not read.
    Tlv,
    /// Everything up to the end of the file.
    Physical,
    /// Exactly this many bytes.
    Exact(usize),
}

/// How one logical command is exchanged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct How {
    /// What is being done (for errors).
    pub(crate) operation: &'static str,
    /// The command may spend an attempt of this PIN: transport failures become
    /// [`Error::AttemptMayHaveBeenCounted`].
    pub(crate) attempt: Option<PinKind>,
    /// Whether a `6Cxx` answer may be followed by resending the command.
    pub(crate) resend: bool,
    /// Whether the command relies on an earlier selection (everything but SELECT AP).
    pub(crate) needs_state: bool,
    /// Forced length encoding.
    pub(crate) encoding: Option<LengthEncoding>,
}

impl How {
    pub(crate) const fn plain(operation: &'static str) -> How {
        How {
            operation,
            attempt: None,
            resend: true,
            needs_state: true,
            encoding: None,
        }
    }

    /// A command that must reach the card at most once (signing).
    pub(crate) const fn once(operation: &'static str) -> How {
        How {
            resend: false,
            ..How::plain(operation)
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// The authentication certificate (no personal data in it).
    pub(crate) auth_cert: Option<Vec<u8>>,
    pub(crate) auth_key: Option<CardPublicKey>,
    /// Only the key of the signing certificate is kept: the certificate names the holder.
    pub(crate) sign_key: Option<CardPublicKey>,
}

/// A session with one My Number Card over one channel.
///
/// Open an application with [`Session::jpki`], [`Session::text`], [`Session::visual`] or
/// [`Session::common`]. The handle borrows the session mutably, so nothing else can talk to the
/// card while it lives; a handle for a verified PIN borrows the application handle in turn, which
/// keeps the card exclusively in this code's hands while the PIN is verified.
///
/// All methods are `async` and runtime-independent; drive them with any executor, or with
/// [`mynacard_transport::blocking::block_on`].
#[derive(Debug)]
pub struct Session<C> {
    channel: C,
    caps: Capabilities,
    options: SessionOptions,
    extended_refused: bool,
    key_by_sfi: bool,
    current: Option<Application>,
    epoch: u64,
    stats: ApduStats,
    pub(crate) cache: Cache,
}

impl<C> Session<C> {
    /// Forgets the current selection so the next use re-selects the application, which clears
    /// the card's security status (used when a verified handle is dropped).
    pub(crate) fn forget_selection(&mut self) {
        self.current = None;
    }
}

impl<C: CardChannel> Session<C> {
    /// A session over `channel` with default options.
    pub fn new(channel: C) -> Self {
        Self::with_options(channel, SessionOptions::default())
    }

    /// A session with explicit options.
    pub fn with_options(channel: C, options: SessionOptions) -> Self {
        let caps = channel.capabilities();
        Session {
            channel,
            caps,
            options,
            extended_refused: false,
            key_by_sfi: true,
            current: None,
            epoch: 0,
            stats: ApduStats::default(),
            cache: Cache::default(),
        }
    }

    /// The channel's capabilities as reported when the session was made.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Whether the session currently uses extended-length reads.
    pub fn uses_extended_length(&self) -> bool {
        self.extended_usable()
    }

    /// APDUs and bytes exchanged since the session was made (or [`Session::reset_stats`]).
    pub fn stats(&self) -> ApduStats {
        self.stats
    }

    /// Sets the counters to zero.
    pub fn reset_stats(&mut self) {
        self.stats = ApduStats::default();
    }

    /// The channel, ending the session.
    pub fn into_channel(self) -> C {
        self.channel
    }

    /// Sends one command with the session's plumbing (GET RESPONSE, `6Cxx`, chaining, length
    /// choice) and returns the assembled response, whatever its status word.
    ///
    /// This is the escape hatch for commands this crate does not model. Afterwards the session
    /// assumes nothing about the card's current application.
    ///
    /// # Errors
    /// [`Error::Transport`], [`Error::CardReset`] or [`Error::Apdu`].
    pub async fn transmit(&mut self, command: &Command) -> Result<Response> {
        self.current = None;
        let how = How {
            needs_state: false,
            ..How::plain("transmit")
        };
        self.exchange(command, how).await
    }

    fn extended_usable(&self) -> bool {
        self.options.extended_length != ExtendedLength::Never
            && self.caps.extended_length
            && !self.extended_refused
    }

    /// Largest Ne for one read.
    fn max_read(&self) -> usize {
        let cap = self.caps.max_response_data().max(1);
        if self.extended_usable() {
            cap.min(MAX_NE as usize)
        } else {
            cap.min(256)
        }
    }

    /// Polls the channel's reset flag; on a reset forgets the selection and the cached keys.
    fn poll_reset(&mut self) {
        if self.channel.was_reset() {
            self.on_reset();
        }
    }

    fn on_reset(&mut self) {
        self.epoch += 1;
        self.current = None;
        self.key_by_sfi = true;
        self.cache = Cache::default();
    }

    /// Selects `app` unless it is already current; returns the epoch handles are bound to.
    pub(crate) async fn open(&mut self, app: Application) -> Result<u64> {
        self.poll_reset();
        if self.current != Some(app) {
            self.select(app).await?;
        }
        Ok(self.epoch)
    }

    /// Checks that a handle made in `epoch` is still valid, and re-selects `app` when a verified
    /// handle was dropped in between (which also clears the card's security status).
    pub(crate) async fn ensure(&mut self, app: Application, epoch: u64) -> Result<()> {
        self.poll_reset();
        if self.epoch != epoch {
            return Err(Error::CardReset);
        }
        if self.current != Some(app) {
            self.select(app).await?;
        }
        Ok(())
    }

    /// Checks a verified handle: any reset since `epoch` ends it.
    pub(crate) fn ensure_verified(&mut self, app: Application, epoch: u64) -> Result<()> {
        self.poll_reset();
        if self.epoch != epoch || self.current != Some(app) {
            return Err(Error::CardReset);
        }
        Ok(())
    }

    async fn select(&mut self, app: Application) -> Result<()> {
        self.current = None;
        let how = How {
            needs_state: false,
            ..How::plain("SELECT application")
        };
        let r = self.exchange(&commands::select_df(app.aid()), how).await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, "SELECT application"));
        }
        self.current = Some(app);
        self.key_by_sfi = true;
        Ok(())
    }

    /// One logical exchange: chaining, GET RESPONSE rounds and (when allowed) one `6Cxx` resend.
    pub(crate) async fn exchange(&mut self, command: &Command, how: How) -> Result<Response> {
        let epoch = self.epoch;
        self.poll_reset();
        if how.needs_state && self.epoch != epoch {
            return Err(Error::CardReset);
        }
        let extended = self.extended_usable() && how.encoding != Some(LengthEncoding::Short);
        let max_data = if extended {
            self.caps.max_command_len.saturating_sub(9).clamp(1, 65_535)
        } else {
            self.caps.max_command_len.saturating_sub(6).clamp(1, 255)
        };
        let parts = chain::split(command, max_data)?;
        let Some((last, init)) = parts.split_last() else {
            return Err(Error::InvalidInput {
                what: "empty command chain",
            });
        };
        for part in init {
            let r = self.send(part, how, extended).await?;
            if !r.is_success() {
                return Err(Error::card(r.sw, how.operation));
            }
        }
        let mut assembler = ResponseAssembler::new(last);
        let mut next = last.clone();
        loop {
            let response = self.send(&next, how, extended).await?;
            match assembler.feed(response)? {
                Step::Done(r) => return Ok(r),
                Step::GetResponse(get) => next = get,
                Step::Resend(again) => {
                    if !how.resend {
                        let le = again.ne().unwrap_or(0) as u8;
                        return Err(Error::card(StatusWord::WrongLe(le), how.operation));
                    }
                    next = again;
                }
            }
        }
    }

    async fn send(&mut self, command: &Command, how: How, extended: bool) -> Result<Response> {
        let encoding = how.encoding.unwrap_or(if extended {
            LengthEncoding::Auto
        } else {
            LengthEncoding::Short
        });
        let bytes = command.to_bytes(encoding)?;
        self.stats.commands += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        let result = self.channel.transmit(&bytes).await;
        let failure = match result {
            Ok(raw) => {
                self.stats.bytes_received += raw.len() as u64;
                match Response::parse(&raw) {
                    Ok(r) => return Ok(r),
                    Err(_) => TransportError::MalformedResponse { len: raw.len() },
                }
            }
            Err(e) => e,
        };
        let reset = matches!(failure, TransportError::CardReset);
        if reset {
            self.on_reset();
        }
        if let Some(key) = how.attempt {
            return Err(Error::AttemptMayHaveBeenCounted {
                key,
                source: failure,
            });
        }
        if reset {
            return Err(Error::CardReset);
        }
        Err(Error::Transport(failure))
    }

    /// Reads an EF of the current application with as few APDUs as the link allows.
    ///
    /// With extended length: one READ BINARY by short EF identifier with the largest Le
    /// (`00 B0 8x 00 00 00 00`), so no SELECT EF. Without: READ BINARY by SFI of the first
    /// chunk, which also tells the length from the TLV header; if more is needed, SELECT EF and
    /// READ BINARY at offsets (an SFI read only carries an 8-bit offset), each asking exactly for
    /// what remains.
    pub(crate) async fn read_file(
        &mut self,
        fid: u16,
        extent: Extent,
        what: &'static str,
    ) -> Result<Vec<u8>> {
        let sfi = (fid & 0x1F) as u8;
        let want = |max: usize| match extent {
            Extent::Exact(n) => n.clamp(1, max),
            _ => max,
        };
        let mut first: Option<(Vec<u8>, ReadEnd)> = None;
        if self.extended_usable() && want(self.max_read()) > 256 {
            let ne = want(self.max_read());
            let cmd = commands::read_binary_sfi(sfi, 0, ne as u32)?;
            let how = How {
                encoding: Some(LengthEncoding::Extended),
                ..How::plain(what)
            };
            match self.exchange(&cmd, how).await {
                Ok(r) if r.sw == StatusWord::WrongLength => self.extended_refused = true,
                Ok(r) => first = Some(read_answer(r, ne, what)?),
                Err(Error::Transport(TransportError::CommandTooLong { .. })) => {
                    self.extended_refused = true
                }
                Err(e) => return Err(e),
            }
        }
        let (mut data, end) = match first {
            Some(f) => f,
            None => {
                let ne = want(self.max_read());
                let cmd = commands::read_binary_sfi(sfi, 0, ne as u32)?;
                let r = self.exchange(&cmd, How::plain(what)).await?;
                read_answer(r, ne, what)?
            }
        };
        // Without a length to go by (a physical read), a short answer is the end. With one, an
        // answer short of it is read on at its offset: a reader that caps answers cuts them
        // short, with `9000`, or with the card's `6282` when Le was larger than the file; a
        // file that really ends early then answers `6B00` or nothing.
        let mut eof = false;
        let total = match extent {
            Extent::Exact(n) => n,
            Extent::Physical if end != ReadEnd::Full => return Ok(data),
            Extent::Physical => usize::MAX,
            Extent::Tlv => match ber::parse_header(&data) {
                Ok((_, header, len)) => header
                    .checked_add(len)
                    .ok_or(Error::FileTooLarge { what, len })?,
                Err(source) => return Err(Error::MalformedTlv { what, source }),
            },
        };
        if data.len() >= total {
            data.truncate(total);
            return Ok(data);
        }
        if eof {
            return Err(Error::Malformed {
                what: "file ends before its announced length",
            });
        }
        if total != usize::MAX && total > 0x7FFF + self.max_read() {
            return Err(Error::FileTooLarge { what, len: total });
        }
        // The rest by offset: an SFI read can only address the first 256 bytes.
        let r = self
            .exchange(&commands::select_ef(fid), How::plain(what))
            .await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, what));
        }
        while data.len() < total {
            let offset = u16::try_from(data.len())
                .ok()
                .filter(|o| *o <= 0x7FFF)
                .ok_or(Error::FileTooLarge {
                    what,
                    len: data.len(),
                })?;
            let ne = (total - data.len()).min(self.max_read());
            let r = self
                .exchange(&commands::read_binary(offset, ne as u32)?, How::plain(what))
                .await?;
            if r.sw == StatusWord::WrongP1P2 {
                // 6B00: the offset is past the end of the file.
                if extent == Extent::Physical {
                    return Ok(data);
                }
                break;
            }
            let (chunk, end) = read_answer(r, ne, what)?;
            if chunk.is_empty() {
                break;
            }
            data.extend_from_slice(&chunk);
            eof = extent == Extent::Physical && end != ReadEnd::Full;
            if eof {
                break;
            }
        }
        if extent == Extent::Physical {
            return Ok(data);
        }
        if data.len() < total {
            return Err(Error::Malformed {
                what: "file ends before its announced length",
            });
        }
        data.truncate(total);
        Ok(data)
    }

    /// The reference for a key: by SFI (`80|SFI`, no SELECT), or the current EF after the
    /// session fell back to selecting key EFs.
    fn key_ref(&self, key: PinKind) -> KeyRef {
        if self.key_by_sfi {
            KeyRef::for_file(key.file_id())
        } else {
            KeyRef::Current
        }
    }

    /// Reads a key's retry counter with an empty VERIFY, which spends nothing.
    ///
    /// By SFI first; if the card refuses that addressing, SELECT EF of the key and ask again, and
    /// keep using that addressing in this application.
    pub(crate) async fn pin_status(&mut self, key: PinKind) -> Result<PinStatus> {
        const OP: &str = "VERIFY (retry counter)";
        if self.key_by_sfi {
            let r = self
                .exchange(&commands::verify_status(self.key_ref(key)), How::plain(OP))
                .await?;
            if !matches!(
                r.sw,
                StatusWord::IncorrectP1P2 | StatusWord::WrongP1P2 | StatusWord::FileNotFound
            ) {
                return status_from(r.sw, OP);
            }
            self.key_by_sfi = false;
        }
        let r = self
            .exchange(
                &commands::select_ef(key.file_id()),
                How::plain("SELECT key"),
            )
            .await?;
        match r.sw {
            StatusWord::Success => {}
            StatusWord::FileNotFound | StatusWord::ReferencedDataNotFound => {
                return Ok(PinStatus::NotSet);
            }
            sw => return Err(Error::card(sw, "SELECT key")),
        }
        let r = self
            .exchange(&commands::verify_status(KeyRef::Current), How::plain(OP))
            .await?;
        status_from(r.sw, OP)
    }

    /// Reads the retry counter, refuses when blocked or (unless allowed) on the last try, then
    /// sends exactly one VERIFY. Never repeated.
    pub(crate) async fn verify(
        &mut self,
        key: PinKind,
        value: Zeroizing<Vec<u8>>,
        policy: AttemptPolicy,
    ) -> Result<()> {
        match self.pin_status(key).await? {
            PinStatus::Blocked => return Err(Error::Blocked { key }),
            PinStatus::NotSet => return Err(Error::PinNotSet { key }),
            PinStatus::Remaining(1) if policy == AttemptPolicy::KeepLastAttempt => {
                return Err(Error::LastAttemptRefused {
                    key,
                    retries_left: 1,
                });
            }
            _ => {}
        }
        let how = How {
            attempt: Some(key),
            ..How::once("VERIFY")
        };
        let r = self
            .exchange(&commands::verify(self.key_ref(key), value), how)
            .await?;
        verify_outcome(key, r.sw, "VERIFY")
    }

    /// CHANGE REFERENCE DATA after a successful VERIFY of the old value. Sent once.
    pub(crate) async fn change_reference_data(
        &mut self,
        key: PinKind,
        new: Zeroizing<Vec<u8>>,
    ) -> Result<()> {
        let how = How {
            attempt: Some(key),
            ..How::once("CHANGE REFERENCE DATA")
        };
        let r = self
            .exchange(
                &commands::change_reference_data(self.key_ref(key), new),
                how,
            )
            .await?;
        verify_outcome(key, r.sw, "CHANGE REFERENCE DATA")
    }
}

/// Data and end-of-file flag of a READ BINARY answer.
/// How a READ BINARY answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// As much as was asked for.
    Full,
    /// Fewer bytes with `9000`: the end of the file, or a reader that caps answers (the file's
    /// TLV length tells which).
    Short,
    /// `6282`: the card says the file ended.
    EndOfFile,
}

fn read_answer(r: Response, ne: usize, what: &'static str) -> Result<(Vec<u8>, ReadEnd)> {
    match r.sw {
        StatusWord::Success if r.data.len() < ne => Ok((r.data, ReadEnd::Short)),
        StatusWord::Success => Ok((r.data, ReadEnd::Full)),
        StatusWord::EndOfFileWarning => Ok((r.data, ReadEnd::EndOfFile)),
        sw => Err(Error::card(sw, what)),
    }
}

fn status_from(sw: StatusWord, operation: &'static str) -> Result<PinStatus> {
    Ok(match sw {
        StatusWord::RetriesRemaining(0)
        | StatusWord::ReferenceDataBlocked
        | StatusWord::AuthenticationMethodBlocked => PinStatus::Blocked,
        StatusWord::RetriesRemaining(n) => PinStatus::Remaining(n),
        StatusWord::WarningNvChanged => PinStatus::Unlimited,
        StatusWord::Success => PinStatus::NotReported,
        StatusWord::ReferencedDataNotFound => PinStatus::NotSet,
        sw => return Err(Error::card(sw, operation)),
    })
}

fn verify_outcome(key: PinKind, sw: StatusWord, operation: &'static str) -> Result<()> {
    match sw {
        StatusWord::Success => Ok(()),
        StatusWord::RetriesRemaining(0)
        | StatusWord::ReferenceDataBlocked
        | StatusWord::AuthenticationMethodBlocked => Err(Error::Blocked { key }),
        StatusWord::RetriesRemaining(n) => Err(Error::WrongPin {
            key,
            retries_left: n,
        }),
        StatusWord::ReferencedDataNotFound => Err(Error::PinNotSet { key }),
        sw => Err(Error::card(sw, operation)),
    }
}
