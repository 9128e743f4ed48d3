//! A PC/SC card channel: one thread per open card, so blocking PC/SC calls never run on the
//! caller's executor.

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, Transport, TransportError};
use pcsc::{Card, Context, Disposition, Protocols, ReaderState, ShareMode, State};
use zeroize::Zeroizing;

use crate::detect;
use crate::error::{Operation, PcscError, Phase, backend, map};
use crate::options::{CloseAction, ExtendedLength, PcscOptions, Share};
use crate::readers::{CardPresence, CardWait, establish, snapshot};
use crate::reply::{Responder, pair};

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

enum Request {
    Transmit {
        command: Zeroizing<Vec<u8>>,
        reply: Responder<Vec<u8>>,
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
pub struct PcscChannel {
    requests: mpsc::Sender<Request>,
    capabilities: Capabilities,
    reader: String,
    was_reset: Arc<AtomicBool>,
    command_timeout: Option<Duration>,
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
        })
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
    fn reconnect(&mut self, share: ShareMode) -> Result<(), pcsc::Error>;
}

impl Handle for Card {
    fn card(&self) -> &Card {
        self
    }
    fn reconnect(&mut self, share: ShareMode) -> Result<(), pcsc::Error> {
        Card::reconnect(self, share, Protocols::ANY, Disposition::LeaveCard)
    }
}

impl Handle for pcsc::Transaction<'_> {
    fn card(&self) -> &Card {
        self
    }
    fn reconnect(&mut self, share: ShareMode) -> Result<(), pcsc::Error> {
        pcsc::Transaction::reconnect(self, share, Protocols::ANY, Disposition::LeaveCard)
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
    let capabilities = probe_capabilities(&card, &reader, &options);
    let mut session = Session {
        ctx: &ctx,
        reader: &reader,
        reader_c: &reader_c,
        options: &options,
        was_reset: &was_reset,
        last_select: None,
        buffer: Zeroizing::new(vec![0u8; pcsc::MAX_BUFFER_SIZE_EXTENDED]),
    };
    let mut opened = Some(opened);
    let mut announce = |capabilities: Capabilities| {
        if let Some(opened) = opened.take() {
            opened.send(Ok(Opened {
                reader: reader.clone(),
                capabilities,
            }));
        }
    };
    let served = if options.hold_transaction {
        match begin_transaction(&mut card, share) {
            Ok(mut tx) => {
                announce(capabilities);
                let close_reply = session.serve(&mut tx, &inbox);
                // Ending may fail when the card left; the disconnect below cleans up either way.
                let _ = tx.end(Disposition::LeaveCard);
                Ok(close_reply)
            }
            Err(e) => Err(e),
        }
    } else {
        announce(capabilities);
        Ok(session.serve(&mut card, &inbox))
    };
    let close_reply = match served {
        Ok(close_reply) => close_reply,
        Err(e) => {
            if let Some(opened) = opened.take() {
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
    let outcome = card
        .disconnect(disposition(options.on_close))
        .map_err(|(card, e)| {
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

impl Session<'_> {
    /// Serves requests until the channel is dropped or closed; returns the close request's
    /// responder, answered once the card is released.
    fn serve<H: Handle>(
        &mut self,
        handle: &mut H,
        inbox: &mpsc::Receiver<Request>,
    ) -> Option<Responder<()>> {
        while let Ok(request) = inbox.recv() {
            match request {
                Request::Transmit { command, reply } => {
                    // A caller that timed out or went away must not have its command sent later.
                    if reply.is_abandoned() {
                        continue;
                    }
                    let outcome = self.transmit(handle, &command);
                    reply.send(outcome);
                }
                Request::Close { reply } => return Some(reply),
            }
        }
        None
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
        let mut reconnected = handle.reconnect(share);
        if let Err(pcsc::Error::ResetCard) = reconnected {
            reconnected = handle.reconnect(share);
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
        if self.options.restore_selection
            && let Some(select) = self.last_select.take()
        {
            let restored = handle.card().transmit(&select, &mut self.buffer);
            if matches!(restored, Ok(r) if is_success(r)) {
                self.last_select = Some(select);
            }
        }
        Err(TransportError::CardReset)
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
