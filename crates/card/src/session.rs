//! The card session: ISO 7816 plumbing over one [`CardChannel`].
//!
//! The session owns the channel, so everything sent to the card goes through it: `61xx` GET
//! RESPONSE rounds, `6Cxx` resends (never for commands that spend a PIN attempt or compute a
//! signature), command chaining, the choice between extended and short length, reset detection,
//! and the APDU and byte counters.

use mynacard_apdu::commands;
use mynacard_apdu::{Command, LengthEncoding, Response, StatusWord};
use mynacard_transport::{Capabilities, CardChannel, TransportError};
use zeroize::Zeroizing;

use crate::crypto::CardPublicKey;
use crate::ops::{
    CardCommand, Exchange, Link, Operation, PinStatusRead, ReadFile, SelectApplication, Step,
    Verify, verify_outcome,
};
use crate::pin::{AttemptPolicy, PinKind, PinStatus};
use crate::{Error, Result};

pub(crate) use crate::ops::Extent;

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
    link: Link,
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
            link: Link::new(&caps, options.extended_length),
            channel,
            caps,
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
        self.link.extended_usable()
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
        self.link.forget_current_ef();
        let how = How {
            needs_state: false,
            ..How::plain("transmit")
        };
        self.exchange(command, how).await
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
        self.link.card_reset();
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
        self.run_op(SelectApplication::new(app), false).await?;
        self.current = Some(app);
        Ok(())
    }

    /// Runs a card operation to its end in the current application.
    pub(crate) async fn run<O: Operation>(&mut self, op: O) -> Result<O::Output> {
        self.run_op(op, true).await
    }

    async fn run_op<O: Operation>(&mut self, mut op: O, needs_state: bool) -> Result<O::Output> {
        let mut step = op.start(&mut self.link)?;
        loop {
            match step {
                Step::Done(output) => return Ok(output),
                Step::Send(command) => {
                    let r = self.exchange_card(&command, needs_state).await?;
                    step = op.feed(&mut self.link, r)?;
                }
            }
        }
    }

    /// One logical exchange: chaining, GET RESPONSE rounds and (when allowed) one `6Cxx` resend.
    pub(crate) async fn exchange(&mut self, command: &Command, how: How) -> Result<Response> {
        let card = CardCommand::new(command.clone(), how.operation)
            .spending(how.attempt)
            .resending(how.resend)
            .encoded(how.encoding);
        self.exchange_card(&card, how.needs_state).await
    }

    async fn exchange_card(
        &mut self,
        command: &CardCommand,
        needs_state: bool,
    ) -> Result<Response> {
        let epoch = self.epoch;
        self.poll_reset();
        if needs_state && self.epoch != epoch {
            return Err(Error::CardReset);
        }
        let mut exchange = Exchange::new(&self.link, command)?;
        loop {
            let sent = self
                .send(exchange.apdu(), exchange.encoding(), command.attempt)
                .await;
            let response = match sent {
                // The link cannot carry an extended APDU: for the operation, as the card's 6700.
                Err(Error::Transport(TransportError::CommandTooLong { .. }))
                    if exchange.encoding() == LengthEncoding::Extended =>
                {
                    Response::status(StatusWord::WrongLength)
                }
                other => other?,
            };
            if let Some(done) = exchange.feed(response)? {
                return Ok(done);
            }
        }
    }

    async fn send(
        &mut self,
        command: &Command,
        encoding: LengthEncoding,
        attempt: Option<PinKind>,
    ) -> Result<Response> {
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
        if let Some(key) = attempt {
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

    /// Reads an EF of the current application with as few APDUs as the link allows
    /// ([`ReadFile`]).
    pub(crate) async fn read_file(
        &mut self,
        fid: u16,
        extent: Extent,
        what: &'static str,
    ) -> Result<Vec<u8>> {
        self.run(ReadFile::new(fid, extent, what)).await
    }

    /// Reads a key's retry counter with an empty VERIFY, which spends nothing
    /// ([`PinStatusRead`]).
    pub(crate) async fn pin_status(&mut self, key: PinKind) -> Result<PinStatus> {
        self.run(PinStatusRead::new(key)).await
    }

    /// Reads the retry counter, refuses when blocked or (unless allowed) on the last try, then
    /// sends exactly one VERIFY ([`Verify`]). Never repeated.
    pub(crate) async fn verify(
        &mut self,
        key: PinKind,
        value: Zeroizing<Vec<u8>>,
        policy: AttemptPolicy,
    ) -> Result<()> {
        self.run(Verify::new(key, value, policy)).await
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
                &commands::change_reference_data(self.link.key_ref(key), new),
                how,
            )
            .await?;
        verify_outcome(key, r.sw, "CHANGE REFERENCE DATA")
    }
}
