//! A PC/SC card channel: one thread per open card, so blocking PC/SC calls never run on the
//! caller's executor.

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, Transport, TransportError};
use pcsc::{Card, Context, Disposition, Protocols, ReaderState, ShareMode, State, Transaction};
use zeroize::Zeroizing;

use crate::detect;
use crate::error::{Operation, PcscError, Phase, backend, map};
use crate::options::{CloseAction, ExtendedLength, PcscOptions, Share};
use crate::readers::{CardPresence, CardWait, establish, snapshot};
use crate::reply::{Responder, pair};
use crate::transaction::{PcscTransaction, TransactionEnd};

/// A PC/SC reader as a [`Transport`]: a named reader, or whichever reader holds a card.
#[derive(Debug, Clone)]
pub struct PcscTransport {
    reader: Option<String>,
    options: PcscOptions,
}

impl PcscTransport {
    /// The reader with this PC/SC name (as listed by [`crate::list_readers`]).
    pub fn new(reader: impl Into<String>) -> Self {
        PcscTransport {
            reader: Some(reader.into()),
            options: PcscOptions::default(),
        }
    }

    /// The first reader (in PC/SC's order) that holds a responsive card when a channel opens.
    pub fn any() -> Self {
        PcscTransport {
            reader: None,
            options: PcscOptions::default(),
        }
    }

    /// Replaces the options.
    #[must_use]
    pub fn with_options(mut self, options: PcscOptions) -> Self {
        self.options = options;
        self
    }

    /// The reader name, if one was given.
    pub fn reader(&self) -> Option<&str> {
        self.reader.as_deref()
    }

    /// The options in use.
    pub fn options(&self) -> &PcscOptions {
        &self.options
    }

    /// Waits for a card in this reader (or any reader); see [`CardWait`].
    pub fn wait_for_card(&self, timeout: Option<Duration>) -> CardWait {
        CardWait::arrival(self.reader.as_deref(), timeout)
    }

    /// Opens a channel to the card and returns the concrete type (for [`PcscChannel::close`]
    /// and [`PcscChannel::reader_name`]).
    ///
    /// # Errors
    /// As [`Transport::open`]; [`TransportError::Timeout`] after
    /// [`PcscOptions::open_timeout`].
    pub async fn open_channel(&self) -> Result<PcscChannel, TransportError> {
        PcscChannel::open(self.reader.clone(), self.options.clone()).await
    }
}

#[async_trait]
impl Transport for PcscTransport {
    fn name(&self) -> String {
        self.reader
            .clone()
            .unwrap_or_else(|| "first PC/SC reader with a card".to_owned())
    }

    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        Ok(Box::new(self.open_channel().await?))
    }
}

/// What the card thread is asked to do; served strictly in order.
pub(crate) enum Request {
    Transmit {
        command: Zeroizing<Vec<u8>>,
        reply: Responder<Vec<u8>>,
    },
    /// Begin an explicit transaction.
    Begin {
        reply: Responder<()>,
    },
    /// End the explicit transaction; no reply when its guard was dropped.
    End {
        how: TransactionEnd,
        reply: Option<Responder<()>>,
    },
    Close {
        reply: Responder<()>,
    },
}

struct Opened {
    reader: String,
    capabilities: Capabilities,
}

/// An open card in a PC/SC reader. Commands run one at a time on the channel's own thread.
///
/// Dropping the channel closes it in the background ([`PcscOptions::on_close`]); call
/// [`PcscChannel::close`] to wait until the card is released (needed before opening the same
/// card again in [`Share::Exclusive`] mode).
///
/// # Transactions
///
/// By default ([`PcscOptions::hold_transaction`]) the channel holds one PC/SC transaction from
/// open to close: other programs' commands (with pcsc-lite even their connects, in
/// [`Share::Shared`] mode) wait until this channel closes. To let other programs (a reader vendor's middleware, say) use the
/// card between groups of commands, open with `hold_transaction(false)` and group commands with
/// [`PcscChannel::transaction`]; commands sent outside a group are each atomic on their own, and
/// another program may reset the card between them (reported as after any reset).
pub struct PcscChannel {
    requests: mpsc::Sender<Request>,
    capabilities: Capabilities,
    reader: String,
    was_reset: Arc<AtomicBool>,
    command_timeout: Option<Duration>,
    open_timeout: Option<Duration>,
}

impl std::fmt::Debug for PcscChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscChannel")
            .field("reader", &self.reader)
            .field("capabilities", &self.capabilities)
            .finish_non_exhaustive()
    }
}

impl PcscChannel {
    async fn open(
        reader: Option<String>,
        options: PcscOptions,
    ) -> Result<PcscChannel, TransportError> {
        let (requests, inbox) = mpsc::channel();
        let (opened, reply) = pair::<Opened>();
        let was_reset = Arc::new(AtomicBool::new(false));
        let worker_reset = Arc::clone(&was_reset);
        let worker_options = options.clone();
        std::thread::Builder::new()
            .name("mynacard-pcsc-card".into())
            .spawn(move || worker(reader, worker_options, opened, inbox, worker_reset))
            .map_err(|e| backend(PcscError::Thread(e)))?;
        // If opening times out or this future is dropped, `requests` is dropped with it and the
        // worker, finding nobody to serve, releases the card.
        let opened = reply.deadline(options.open_timeout)?.await?;
        Ok(PcscChannel {
            requests,
            capabilities: opened.capabilities,
            reader: opened.reader,
            was_reset,
            command_timeout: options.command_timeout,
            open_timeout: options.open_timeout,
        })
    }

    /// Queues a request for the card thread.
    pub(crate) fn request(&self, request: Request) -> Result<(), TransportError> {
        self.requests
            .send(request)
            .map_err(|_| backend(PcscError::WorkerStopped))
    }

    /// [`PcscOptions::command_timeout`] of this channel.
    pub(crate) fn command_timeout(&self) -> Option<Duration> {
        self.command_timeout
    }

    /// Begins an explicit PC/SC transaction (`SCardBeginTransaction`): until the returned guard
    /// is ended or dropped, no other program's commands reach the card, so a group such as
    /// VERIFY then COMPUTE DIGITAL SIGNATURE runs without anything in between. Send the group's
    /// commands through the guard.
    ///
    /// - With `hold_transaction(false)` this begins a transaction, waiting while another program
    ///   holds one, for up to [`PcscOptions::open_timeout`]; ending it lets other programs in.
    /// - With [`PcscOptions::hold_transaction`] on (the default) the channel already holds one
    ///   for its whole life, so the guard only marks the group, and its end
    ///   ([`TransactionEnd::Reset`], [`TransactionEnd::Unpower`]) disposes of the card while
    ///   the channel keeps holding its transaction.
    ///
    /// If the card was reset by another program since the last command, the transaction begins
    /// after the channel reconnected and selected the application again, and
    /// [`CardChannel::was_reset`] reports it. Inside a transaction, a removed card gives
    /// [`TransportError::CardRemoved`], a reset (a power glitch)
    /// [`TransportError::CardReset`], a card that stops answering [`TransportError::Timeout`],
    /// as outside one.
    ///
    /// ```no_run
    /// use mynacard_pcsc::{PcscOptions, PcscTransport, TransactionEnd};
    /// use mynacard_transport::{blocking::block_on, CardChannel};
    ///
    /// # fn main() -> Result<(), mynacard_transport::TransportError> {
    /// let transport = PcscTransport::new("Reader 00 00")
    ///     .with_options(PcscOptions::default().hold_transaction(false));
    /// let mut channel = block_on(transport.open_channel())?;
    /// block_on(async {
    ///     let mut tx = channel.transaction().await?;
    ///     let _selected = tx.transmit(&[0x00, 0xA4, 0x04, 0x0C, 0x0A,
    ///         0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]).await?;
    ///     // ... VERIFY, COMPUTE DIGITAL SIGNATURE ...
    ///     tx.end(TransactionEnd::Reset).await // the verified PIN does not outlive the group
    /// })?;
    /// // Other programs may use the card here.
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`TransportError::Timeout`] after [`PcscOptions::open_timeout`] while another program
    /// keeps its transaction (the begin is abandoned: if it succeeds later the channel ends it
    /// at once); [`TransportError::CardRemoved`]; `Backend` with `Operation::BeginTransaction`
    /// for other PC/SC failures.
    pub async fn transaction(&mut self) -> Result<PcscTransaction<'_>, TransportError> {
        let (responder, reply) = pair();
        self.request(Request::Begin { reply: responder })?;
        let open_timeout = self.open_timeout;
        // The guard exists before the wait: if beginning fails, times out or this future is
        // dropped, its drop queues the end, so a transaction begun late is ended at once.
        let guard = PcscTransaction::new(self);
        reply.deadline(open_timeout)?.await?;
        Ok(guard)
    }

    /// The PC/SC name of the reader holding the card.
    pub fn reader_name(&self) -> &str {
        &self.reader
    }

    /// Ends the transaction, disposes of the card as configured and waits until that is done.
    ///
    /// # Errors
    /// [`TransportError`] when the card thread stopped or the disposition timed out.
    pub async fn close(self) -> Result<(), TransportError> {
        let (responder, reply) = pair();
        self.requests
            .send(Request::Close { reply: responder })
            .map_err(|_| backend(PcscError::WorkerStopped))?;
        reply.deadline(self.command_timeout)?.await
    }
}

#[async_trait]
impl CardChannel for PcscChannel {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if command.len() > self.capabilities.max_command_len {
            return Err(TransportError::CommandTooLong {
                len: command.len(),
                max: self.capabilities.max_command_len,
            });
        }
        let (responder, reply) = pair();
        self.requests
            .send(Request::Transmit {
                command: Zeroizing::new(command.to_vec()),
                reply: responder,
            })
            .map_err(|_| backend(PcscError::WorkerStopped))?;
        reply.deadline(self.command_timeout)?.await
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    fn was_reset(&mut self) -> bool {
        self.was_reset.swap(false, Ordering::SeqCst)
    }
}

/// A card handle with or without a transaction around it.
trait Handle {
    fn card(&self) -> &Card;
    fn reconnect(&mut self, share: ShareMode, how: Disposition) -> Result<(), pcsc::Error>;
}

impl Handle for Card {
    fn card(&self) -> &Card {
        self
    }
    fn reconnect(&mut self, share: ShareMode, how: Disposition) -> Result<(), pcsc::Error> {
        Card::reconnect(self, share, Protocols::ANY, how)
    }
}

impl Handle for Transaction<'_> {
    fn card(&self) -> &Card {
        self
    }
    fn reconnect(&mut self, share: ShareMode, how: Disposition) -> Result<(), pcsc::Error> {
        // pcsc-lite keeps the transaction across a reconnect by its holder (measured).
        Transaction::reconnect(self, share, Protocols::ANY, how)
    }
}

fn share_mode(share: Share) -> ShareMode {
    match share {
        Share::Exclusive => ShareMode::Exclusive,
        Share::Shared => ShareMode::Shared,
    }
}

fn disposition(action: CloseAction) -> Disposition {
    match action {
        CloseAction::Reset => Disposition::ResetCard,
        CloseAction::Leave => Disposition::LeaveCard,
        CloseAction::Unpower => Disposition::UnpowerCard,
    }
}

/// Everything the serving loop needs besides the handle.
struct Session<'a> {
    ctx: &'a Context,
    reader: &'a str,
    reader_c: &'a CString,
    options: &'a PcscOptions,
    was_reset: &'a AtomicBool,
    /// The last successful SELECT by DF name, replayed after a reset by someone else.
    last_select: Option<Vec<u8>>,
    /// The card was seen gone: closing then leaves the reader alone, since a reset would hit
    /// the next card inserted (pcscd then shows that card present even after it leaves).
    removed: bool,
    buffer: Zeroizing<Vec<u8>>,
}

fn worker(
    reader: Option<String>,
    options: PcscOptions,
    opened: Responder<Opened>,
    inbox: mpsc::Receiver<Request>,
    was_reset: Arc<AtomicBool>,
) {
    let ctx = match establish() {
        Ok(ctx) => ctx,
        Err(e) => return opened.send(Err(e)),
    };
    let reader = match reader {
        Some(name) => name,
        None => match first_reader_with_card(&ctx) {
            Ok(name) => name,
            Err(e) => return opened.send(Err(e)),
        },
    };
    let reader_c = match CString::new(reader.clone()) {
        Ok(c) => c,
        Err(e) => return opened.send(Err(backend(PcscError::BadReaderName(e)))),
    };
    let share = share_mode(options.share);
    let mut card = match ctx.connect(&reader_c, share, Protocols::ANY) {
        Ok(card) => card,
        Err(e) => {
            return opened.send(Err(map(
                Operation::Connect,
                e,
                Phase::Opening,
                Some(&reader),
            )));
        }
    };
    // An opener that gave up while the connect waited (pcsc-lite makes it wait for another
    // program's transaction) must not have the card reset under whoever uses it now.
    if opened.is_abandoned() {
        let _ = card.disconnect(Disposition::LeaveCard);
        return;
    }
    let capabilities = probe_capabilities(&card, &reader, &options);
    let mut session = Session {
        ctx: &ctx,
        reader: &reader,
        reader_c: &reader_c,
        options: &options,
        was_reset: &was_reset,
        last_select: None,
        removed: false,
        buffer: Zeroizing::new(vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]),
    };
    let mut opened = Some(opened);
    // Whether the opener still waits (it may have given up while the transaction was awaited).
    let mut announce = |capabilities: Capabilities| match opened.take() {
        Some(opened) if opened.is_abandoned() => false,
        Some(opened) => {
            opened.send(Ok(Opened {
                reader: reader.clone(),
                capabilities,
            }));
            true
        }
        None => true,
    };
    // Whether the card still has to be disposed of when the connection ends.
    let mut disposed = false;
    let served = if options.hold_transaction {
        match begin_transaction(&mut card, share) {
            Ok(mut tx) if announce(capabilities) => {
                let close_reply = session.serve_held(&mut tx, &inbox);
                // Reset (or unpower) while still holding the transaction: a connect waiting on
                // it then finds the card already reset, never reset under it a moment later
                // (which pcsc-lite reports to that handle as a protocol mismatch, measured).
                if !session.removed && options.on_close != CloseAction::Leave {
                    let how = disposition(options.on_close);
                    let mut done = Handle::reconnect(&mut tx, share, how);
                    if let Err(pcsc::Error::ResetCard) = done {
                        done = Handle::reconnect(&mut tx, share, how);
                    }
                    disposed = done.is_ok();
                }
                // Ending may fail when the card left; the disconnect below cleans up either way.
                let _ = tx.end(Disposition::LeaveCard);
                Ok(close_reply)
            }
            Ok(_unused) => Err(None),
            Err(e) => Err(Some(e)),
        }
    } else if announce(capabilities) {
        Ok(session.serve_plain(&mut card, &inbox))
    } else {
        Err(None)
    };
    let close_reply = match served {
        Ok(close_reply) => close_reply,
        Err(e) => {
            if let (Some(opened), Some(e)) = (opened.take(), e) {
                opened.send(Err(map(
                    Operation::BeginTransaction,
                    e,
                    Phase::Opening,
                    Some(&reader),
                )));
            }
            // We never used the card: leave it as it is for whoever holds it.
            let _ = card.disconnect(Disposition::LeaveCard);
            return;
        }
    };
    let on_close = if session.removed || disposed {
        Disposition::LeaveCard
    } else {
        disposition(options.on_close)
    };
    let outcome = card.disconnect(on_close).map_err(|(card, e)| {
        // Leaving is the one disposition that cannot fail for a card that is still there.
        let _ = card.disconnect(Disposition::LeaveCard);
        e
    });
    if let Some(reply) = close_reply {
        reply.send(match outcome {
            Ok(()) | Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard) => Ok(()),
            Err(e) => Err(map(Operation::Connect, e, Phase::InChannel, Some(&reader))),
        });
    }
}

fn begin_transaction(
    card: &mut Card,
    share: ShareMode,
) -> Result<pcsc::Transaction<'_>, pcsc::Error> {
    match card.transaction2() {
        Ok(tx) => Ok(tx),
        // A reset by someone else before we started shows up here first: reconnect, try again.
        Err((card, pcsc::Error::ResetCard)) => {
            card.reconnect(share, Protocols::ANY, Disposition::LeaveCard)?;
            card.transaction()
        }
        Err((_, e)) => Err(e),
    }
}

fn first_reader_with_card(ctx: &Context) -> Result<String, TransportError> {
    let names = match ctx.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(e) => return Err(map(Operation::ListReaders, e, Phase::Opening, None)),
    };
    if names.is_empty() {
        return Err(TransportError::NoReader { name: None });
    }
    snapshot(ctx, &names)?
        .into_iter()
        .find(|r| r.card == CardPresence::Present)
        .map(|r| r.name)
        .ok_or(TransportError::NoCard)
}

fn probe_capabilities(card: &Card, reader: &str, options: &PcscOptions) -> Capabilities {
    let atr = card
        .status2_owned()
        .map(|s| s.atr().to_vec())
        .unwrap_or_default();
    let interface = options
        .interface
        .unwrap_or_else(|| detect::detect_interface(&atr, reader));
    let reported = match options.extended_length {
        ExtendedLength::Auto => {
            detect::query_max_apdu_data_size(card).or_else(|| detect::known_reader_max_data(reader))
        }
        _ => None,
    };
    detect::capabilities(options.extended_length, reported, interface, atr)
}

fn is_select_by_name(command: &[u8]) -> bool {
    matches!(command, [cla, 0xA4, 0x04, ..] if cla & 0x80 == 0)
}

fn is_success(response: &[u8]) -> bool {
    matches!(response, [.., 0x90, 0x00] | [.., 0x61, _])
}

/// Why [`Session::next`] stopped serving commands.
enum Exit {
    Begin(Responder<()>),
    End {
        how: TransactionEnd,
        reply: Option<Responder<()>>,
    },
    Close(Responder<()>),
    /// The channel was dropped.
    Dropped,
}

impl Session<'_> {
    /// Remembers that the card left.
    fn note<T>(&mut self, outcome: &Result<T, TransportError>) {
        if matches!(outcome, Err(TransportError::CardRemoved)) {
            self.removed = true;
        }
    }

    /// Serves commands until a request that is not a command arrives.
    fn next<H: Handle>(&mut self, handle: &mut H, inbox: &mpsc::Receiver<Request>) -> Exit {
        while let Ok(request) = inbox.recv() {
            match request {
                Request::Transmit { command, reply } => {
                    // A caller that timed out or went away must not have its command sent later.
                    if reply.is_abandoned() {
                        continue;
                    }
                    let outcome = self.transmit(handle, &command);
                    self.note(&outcome);
                    reply.send(outcome);
                }
                Request::Begin { reply } => return Exit::Begin(reply),
                Request::End { how, reply } => return Exit::End { how, reply },
                Request::Close { reply } => return Exit::Close(reply),
            }
        }
        Exit::Dropped
    }

    /// Serves a channel that holds its transaction for its whole life, until it is dropped or
    /// closed; returns the close request's responder, answered once the card is released.
    /// Explicit transactions only mark groups here; their end disposes of the card in place.
    fn serve_held(
        &mut self,
        tx: &mut Transaction<'_>,
        inbox: &mpsc::Receiver<Request>,
    ) -> Option<Responder<()>> {
        loop {
            match self.next(tx, inbox) {
                Exit::Begin(reply) => reply.send(Ok(())),
                Exit::End { how, reply } => {
                    let outcome = self.dispose(tx, how);
                    self.note(&outcome);
                    if let Some(reply) = reply {
                        reply.send(outcome);
                    }
                }
                Exit::Close(reply) => return Some(reply),
                Exit::Dropped => return None,
            }
        }
    }

    /// Serves a channel without a transaction of its own, beginning and ending explicit ones
    /// as asked, until it is dropped or closed.
    fn serve_plain(
        &mut self,
        card: &mut Card,
        inbox: &mpsc::Receiver<Request>,
    ) -> Option<Responder<()>> {
        loop {
            match self.next(card, inbox) {
                Exit::Begin(reply) => {
                    // The guard's end follows in the queue and finds no transaction.
                    if reply.is_abandoned() {
                        continue;
                    }
                    let mut tx = match self.begin(card) {
                        Ok(tx) => tx,
                        Err(e) => {
                            let failed = Err(e);
                            self.note::<()>(&failed);
                            reply.send(failed);
                            continue;
                        }
                    };
                    reply.send(Ok(()));
                    loop {
                        match self.next(&mut tx, inbox) {
                            // Already inside one (the guard borrows the channel, so the API
                            // cannot ask): nothing to begin.
                            Exit::Begin(reply) => reply.send(Ok(())),
                            Exit::End { how, reply } => {
                                let outcome = self.finish(tx, how);
                                self.note(&outcome);
                                if let Some(reply) = reply {
                                    reply.send(outcome);
                                }
                                break;
                            }
                            Exit::Close(reply) => {
                                let _ = tx.end(Disposition::LeaveCard);
                                return Some(reply);
                            }
                            Exit::Dropped => {
                                let _ = tx.end(Disposition::LeaveCard);
                                return None;
                            }
                        }
                    }
                }
                // Its begin failed or was abandoned: no transaction to end.
                Exit::End { reply, .. } => {
                    if let Some(reply) = reply {
                        reply.send(Ok(()));
                    }
                }
                Exit::Close(reply) => return Some(reply),
                Exit::Dropped => return None,
            }
        }
    }

    /// `SCardBeginTransaction`, after reconnecting when another program reset the card since
    /// the last command (then the reset is reported and the application selected again).
    fn begin<'c>(&mut self, card: &'c mut Card) -> Result<Transaction<'c>, TransportError> {
        let share = share_mode(self.options.share);
        let fail = |operation, e| map(operation, e, Phase::InChannel, Some(self.reader));
        let (mut tx, reset) = match card.transaction2() {
            Ok(tx) => (tx, false),
            Err((card, pcsc::Error::ResetCard | pcsc::Error::UnpoweredCard)) => {
                card.reconnect(share, Protocols::ANY, Disposition::LeaveCard)
                    .map_err(|e| fail(Operation::Reconnect, e))?;
                let tx = card
                    .transaction()
                    .map_err(|e| fail(Operation::BeginTransaction, e))?;
                (tx, true)
            }
            Err((_, e)) => return Err(fail(Operation::BeginTransaction, e)),
        };
        if reset {
            self.was_reset.store(true, Ordering::SeqCst);
            self.restore_selection(&mut tx);
        }
        Ok(tx)
    }

    /// Resets or powers the card down and up as asked, keeping the transaction held; the reset
    /// is reported and the application selected again, as after any reset.
    fn dispose<H: Handle>(
        &mut self,
        handle: &mut H,
        how: TransactionEnd,
    ) -> Result<(), TransportError> {
        let disposition = match how {
            TransactionEnd::Leave => return Ok(()),
            TransactionEnd::Reset => Disposition::ResetCard,
            TransactionEnd::Unpower => Disposition::UnpowerCard,
        };
        let share = share_mode(self.options.share);
        let mut done = handle.reconnect(share, disposition);
        // A reset by someone else still pending on our handle fails the first attempt.
        if let Err(pcsc::Error::ResetCard) = done {
            done = handle.reconnect(share, disposition);
        }
        done.map_err(|e| map(Operation::Reconnect, e, Phase::InChannel, Some(self.reader)))?;
        self.was_reset.store(true, Ordering::SeqCst);
        self.restore_selection(handle);
        Ok(())
    }

    /// Ends an explicit transaction: disposes of the card while still holding it, then
    /// releases it. The card is reset through a reconnect rather than
    /// `SCardEndTransaction(SCARD_RESET_CARD)`, after which pcsc-lite reports our own handle
    /// reset until it reconnects (measured).
    fn finish(
        &mut self,
        mut tx: Transaction<'_>,
        how: TransactionEnd,
    ) -> Result<(), TransportError> {
        let disposed = self.dispose(&mut tx, how);
        let ended = match tx.end(Disposition::LeaveCard) {
            Ok(()) => Ok(()),
            // Reset since the last command (a power glitch): pcsc-lite refuses to end until the
            // handle reconnected.
            Err((mut tx, pcsc::Error::ResetCard | pcsc::Error::UnpoweredCard)) => {
                let share = share_mode(self.options.share);
                if tx
                    .reconnect(share, Protocols::ANY, Disposition::LeaveCard)
                    .is_ok()
                {
                    self.was_reset.store(true, Ordering::SeqCst);
                    self.restore_selection(&mut tx);
                }
                tx.end(Disposition::LeaveCard).map_err(|(_, e)| e)
            }
            // A card that left: the transaction went with it (and the handle's drop or
            // disconnect releases whatever is left).
            Err((_, e)) => Err(e),
        };
        disposed?;
        ended.map_err(|e| {
            map(
                Operation::EndTransaction,
                e,
                Phase::InChannel,
                Some(self.reader),
            )
        })
    }

    fn transmit<H: Handle>(
        &mut self,
        handle: &mut H,
        command: &[u8],
    ) -> Result<Vec<u8>, TransportError> {
        let result = handle
            .card()
            .transmit(command, &mut self.buffer)
            .map(<[u8]>::to_vec);
        match result {
            Ok(response) if response.len() >= 2 => {
                if is_select_by_name(command) && is_success(&response) {
                    self.last_select = Some(command.to_vec());
                }
                Ok(response)
            }
            // vpcd reports a card that vanished mid-command as an empty success.
            Ok(response) => {
                if self.card_left(handle) {
                    Err(TransportError::CardRemoved)
                } else {
                    Err(TransportError::MalformedResponse {
                        len: response.len(),
                    })
                }
            }
            Err(pcsc::Error::ResetCard | pcsc::Error::UnpoweredCard) => self.recover(handle),
            Err(
                e @ (pcsc::Error::NotTransacted
                | pcsc::Error::CommError
                | pcsc::Error::UnresponsiveCard
                | pcsc::Error::CommDataLost),
            ) => {
                if self.card_left(handle) {
                    Err(TransportError::CardRemoved)
                } else {
                    Err(map(
                        Operation::Transmit,
                        e,
                        Phase::InChannel,
                        Some(self.reader),
                    ))
                }
            }
            Err(e) => Err(map(
                Operation::Transmit,
                e,
                Phase::InChannel,
                Some(self.reader),
            )),
        }
    }

    /// After a reset by someone else: reconnect, select the application again, report the reset.
    /// The failed command is not resent: it may depend on state the reset erased.
    fn recover<H: Handle>(&mut self, handle: &mut H) -> Result<Vec<u8>, TransportError> {
        let share = share_mode(self.options.share);
        let mut reconnected = handle.reconnect(share, Disposition::LeaveCard);
        if let Err(pcsc::Error::ResetCard) = reconnected {
            reconnected = handle.reconnect(share, Disposition::LeaveCard);
        }
        if let Err(e) = reconnected {
            return Err(map(
                Operation::Reconnect,
                e,
                Phase::InChannel,
                Some(self.reader),
            ));
        }
        self.was_reset.store(true, Ordering::SeqCst);
        self.restore_selection(handle);
        Err(TransportError::CardReset)
    }

    /// Selects again the application that was selected before a reset, when configured.
    fn restore_selection<H: Handle>(&mut self, handle: &mut H) {
        if self.options.restore_selection
            && let Some(select) = self.last_select.take()
        {
            let restored = handle.card().transmit(&select, &mut self.buffer);
            if matches!(restored, Ok(r) if is_success(r)) {
                self.last_select = Some(select);
            }
        }
    }

    /// Whether the card left the reader, watching it for up to [`PcscOptions::removal_settle`]:
    /// pcscd notices a removal only at its next poll.
    fn card_left<H: Handle>(&self, handle: &H) -> bool {
        let gone = |h: &H| {
            matches!(
                h.card().status2_owned(),
                Err(pcsc::Error::RemovedCard | pcsc::Error::NoSmartcard)
            )
        };
        let deadline = Instant::now() + self.options.removal_settle;
        let mut states = [ReaderState::new(self.reader_c.clone(), State::UNAWARE)];
        loop {
            if gone(handle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.ctx.get_status_change(left, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return gone(handle),
                Err(_) => return true,
            }
            let ev = states[0].event_state();
            if ev.intersects(State::EMPTY | State::UNAVAILABLE | State::UNKNOWN) {
                return true;
            }
            if left.is_zero() {
                return gone(handle);
            }
            states[0].sync_current_state();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_select_by_name() {
        assert!(is_select_by_name(&[
            0x00, 0xA4, 0x04, 0x0C, 0x02, 0xD3, 0x92
        ]));
        assert!(!is_select_by_name(&[
            0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A
        ]));
        assert!(!is_select_by_name(&[0x80, 0xA4, 0x04, 0x0C]));
        assert!(!is_select_by_name(&[0x00]));
        assert!(is_success(&[0x90, 0x00]));
        assert!(is_success(&[0x01, 0x61, 0x10]));
        assert!(!is_success(&[0x6A, 0x82]));
    }
}
