//! Listing readers and waiting for a card to arrive or leave.

use std::ffi::CString;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use mynacard_transport::TransportError;
use pcsc::{Context, ReaderState, Scope, State};

use crate::error::{Operation, PcscError, Phase, backend, map};
use crate::reply::{Reply, Slot, pair};

/// Whether a reader holds a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardPresence {
    /// A card is in the reader and answered the reset.
    Present,
    /// A card is in the reader but does not answer (badly inserted, dead, or a contactless card
    /// at the edge of the field).
    Mute,
    /// No card.
    Empty,
    /// The reader is not usable (unplugged while listed, or its driver failed).
    Unavailable,
}

/// One reader and what is in it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReaderInfo {
    /// The reader's PC/SC name; pass it to [`crate::PcscTransport::new`].
    pub name: String,
    /// Card presence.
    pub card: CardPresence,
    /// The card's ATR (or the reader's synthesised one for contactless cards); empty without a
    /// card.
    pub atr: Vec<u8>,
    /// Another program (or this one) is connected to the card.
    pub in_use: bool,
    /// Another program holds the card exclusively.
    pub exclusive: bool,
}

impl ReaderInfo {
    fn from_state(state: &ReaderState) -> Self {
        let ev = state.event_state();
        let card = if ev.intersects(State::UNAVAILABLE | State::UNKNOWN | State::IGNORE) {
            CardPresence::Unavailable
        } else if ev.contains(State::PRESENT) && ev.contains(State::MUTE) {
            CardPresence::Mute
        } else if ev.contains(State::PRESENT) {
            CardPresence::Present
        } else {
            CardPresence::Empty
        };
        ReaderInfo {
            name: state.name().to_string_lossy().into_owned(),
            card,
            atr: if card == CardPresence::Empty {
                Vec::new()
            } else {
                state.atr().to_vec()
            },
            in_use: ev.contains(State::INUSE),
            exclusive: ev.contains(State::EXCLUSIVE),
        }
    }
}

pub(crate) fn establish() -> Result<Context, TransportError> {
    Context::establish(Scope::User)
        .map_err(|e| map(Operation::EstablishContext, e, Phase::Opening, None))
}

fn reader_names(ctx: &Context) -> Result<Vec<CString>, TransportError> {
    match ctx.list_readers_owned() {
        Ok(names) => Ok(names),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(map(Operation::ListReaders, e, Phase::Opening, None)),
    }
}

/// The current state of the given readers (no waiting).
pub(crate) fn snapshot(
    ctx: &Context,
    names: &[CString],
) -> Result<Vec<ReaderInfo>, TransportError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut states: Vec<ReaderState> = names
        .iter()
        .map(|n| ReaderState::new(n.clone(), State::UNAWARE))
        .collect();
    match ctx.get_status_change(Duration::ZERO, &mut states) {
        Ok(()) | Err(pcsc::Error::Timeout) => {}
        Err(e) => return Err(map(Operation::GetStatusChange, e, Phase::Opening, None)),
    }
    Ok(states.iter().map(ReaderInfo::from_state).collect())
}

/// Lists the readers and what each holds. A quick call to the PC/SC service; it does not wait
/// for cards.
///
/// # Errors
/// [`TransportError::Backend`] with [`PcscError`] source when the PC/SC service is not running
/// (`NoService`) or fails.
pub fn list_readers() -> Result<Vec<ReaderInfo>, TransportError> {
    let ctx = establish()?;
    let names = reader_names(&ctx)?;
    snapshot(&ctx, &names)
}

/// What a [`CardWait`] waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Goal {
    /// A responsive card in the named reader, or in any reader.
    Arrival(Option<String>),
    /// The named reader without a card (or gone).
    Removal(String),
}

/// Waiting for a card to arrive or leave, on its own thread. Resolves to the reader's state when
/// the event happens.
///
/// Readers plugged in while waiting are watched too (PC/SC's plug-and-play notification). Dropping
/// the future cancels the wait; so does [`WaitCanceller::cancel`] from anywhere.
#[must_use = "a wait does nothing unless awaited"]
pub struct CardWait {
    reply: Reply<ReaderInfo>,
    canceller: WaitCanceller,
}

/// Cancels a [`CardWait`] from another task or thread; the wait then resolves to
/// [`TransportError::Cancelled`].
#[derive(Clone)]
pub struct WaitCanceller {
    cancelled: Arc<AtomicBool>,
    context: Arc<Mutex<Option<Context>>>,
    slot: Arc<Slot<ReaderInfo>>,
}

impl std::fmt::Debug for WaitCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitCanceller")
            .field("cancelled", &self.cancelled.load(Ordering::Relaxed))
            .finish()
    }
}

impl std::fmt::Debug for CardWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardWait").finish_non_exhaustive()
    }
}

impl WaitCanceller {
    /// Cancels the wait. The waiting future resolves at once; the PC/SC thread is released.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        self.slot.complete(Err(TransportError::Cancelled));
        let guard = self
            .context
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(ctx) = guard.as_ref() {
            // Interrupts a blocked SCardGetStatusChange; an error means nothing was waiting.
            let _ = ctx.cancel();
        }
    }
}

impl CardWait {
    /// Waits until a card answers in the named reader, or in any reader when `reader` is `None`.
    /// Resolves at once when one already does. `timeout: None` waits without limit.
    pub fn arrival(reader: Option<&str>, timeout: Option<Duration>) -> CardWait {
        CardWait::start(Goal::Arrival(reader.map(str::to_owned)), timeout)
    }

    /// Waits until the named reader holds no card (or the reader is gone).
    pub fn removal(reader: &str, timeout: Option<Duration>) -> CardWait {
        CardWait::start(Goal::Removal(reader.to_owned()), timeout)
    }

    /// A handle that cancels this wait.
    pub fn canceller(&self) -> WaitCanceller {
        self.canceller.clone()
    }

    fn start(goal: Goal, timeout: Option<Duration>) -> CardWait {
        let (responder, reply) = pair();
        let canceller = WaitCanceller {
            cancelled: Arc::new(AtomicBool::new(false)),
            context: Arc::new(Mutex::new(None)),
            slot: responder.slot(),
        };
        let worker = canceller.clone();
        let spawned = std::thread::Builder::new()
            .name("mynacard-pcsc-wait".into())
            .spawn(move || {
                let outcome = wait(&goal, timeout, &worker);
                responder.send(outcome);
            });
        if let Err(e) = spawned {
            canceller.slot.complete(Err(backend(PcscError::Thread(e))));
        }
        CardWait { reply, canceller }
    }
}

impl Future for CardWait {
    type Output = Result<ReaderInfo, TransportError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.reply).poll(cx)
    }
}

impl Drop for CardWait {
    fn drop(&mut self) {
        self.canceller.cancel();
    }
}

/// Longest single wait inside PC/SC, so a cancellation that raced the start of a wait is still
/// seen soon; cancellations normally interrupt the wait at once.
const SLICE: Duration = Duration::from_secs(1);

fn wait(
    goal: &Goal,
    timeout: Option<Duration>,
    canceller: &WaitCanceller,
) -> Result<ReaderInfo, TransportError> {
    let deadline = timeout.map(|t| Instant::now() + t);
    let ctx = establish()?;
    *canceller
        .context
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ctx.clone());
    let wanted = match goal {
        Goal::Arrival(name) => name.clone(),
        Goal::Removal(name) => Some(name.clone()),
    };
    loop {
        // (Re)build the watch list: the readers of interest plus the plug-and-play pseudo reader.
        let names: Vec<CString> = reader_names(&ctx)?
            .into_iter()
            .filter(|n| {
                wanted
                    .as_deref()
                    .is_none_or(|w| n.to_bytes() == w.as_bytes())
            })
            .collect();
        if let Goal::Removal(name) = goal
            && names.is_empty()
        {
            // The reader itself is gone, so the card is too.
            return Ok(ReaderInfo {
                name: name.clone(),
                card: CardPresence::Unavailable,
                atr: Vec::new(),
                in_use: false,
                exclusive: false,
            });
        }
        let mut states: Vec<ReaderState> = names
            .into_iter()
            .map(|n| ReaderState::new(n, State::UNAWARE))
            .collect();
        states.push(ReaderState::new(pcsc::PNP_NOTIFICATION(), State::UNAWARE));
        let pnp = states.len() - 1;
        let mut first = true;
        loop {
            if canceller.cancelled.load(Ordering::SeqCst) {
                return Err(TransportError::Cancelled);
            }
            let slice = if first {
                Duration::ZERO
            } else {
                match deadline {
                    Some(d) => {
                        let left = d.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            return Err(TransportError::Timeout(timeout.unwrap_or_default()));
                        }
                        left.min(SLICE)
                    }
                    None => SLICE,
                }
            };
            match ctx.get_status_change(slice, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => {
                    first = false;
                    continue;
                }
                Err(e) => {
                    return Err(map(
                        Operation::GetStatusChange,
                        e,
                        Phase::Opening,
                        wanted.as_deref(),
                    ));
                }
            }
            for state in &states[..pnp] {
                let info = ReaderInfo::from_state(state);
                let done = match goal {
                    Goal::Arrival(_) => info.card == CardPresence::Present,
                    Goal::Removal(_) => {
                        matches!(info.card, CardPresence::Empty | CardPresence::Unavailable)
                    }
                };
                if done {
                    return Ok(info);
                }
            }
            let readers_changed = !first && states[pnp].event_state().contains(State::CHANGED);
            for state in &mut states {
                state.sync_current_state();
            }
            first = false;
            if readers_changed {
                break;
            }
        }
    }
}
