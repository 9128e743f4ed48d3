//! A one-shot reply slot between a worker thread and an awaiting future, with deadlines.
//!
//! The PC/SC calls block, so they run on threads; the caller's future only waits on a slot that
//! the worker, a deadline or a cancellation fills, whichever comes first. Nothing here needs a
//! particular async runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use mynacard_transport::TransportError;

use crate::error::PcscError;

type Outcome<T> = Result<T, TransportError>;

enum State<T> {
    Pending(Option<Waker>),
    Ready(Outcome<T>),
    Taken,
}

/// The shared slot: filled at most once.
pub(crate) struct Slot<T> {
    state: Mutex<State<T>>,
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    // A poisoned lock only means another thread panicked while holding it; the state is a plain
    // enum that is always consistent, so carry on.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<T> Slot<T> {
    /// Fills the slot unless it is already filled; returns whether this call filled it.
    pub(crate) fn complete(&self, outcome: Outcome<T>) -> bool {
        let mut state = lock(&self.state);
        match &mut *state {
            State::Pending(waker) => {
                let waker = waker.take();
                *state = State::Ready(outcome);
                drop(state);
                if let Some(w) = waker {
                    w.wake();
                }
                true
            }
            State::Ready(_) | State::Taken => false,
        }
    }

    /// Whether a result (or a timeout or cancellation) has already been decided.
    pub(crate) fn is_settled(&self) -> bool {
        !matches!(&*lock(&self.state), State::Pending(_))
    }
}

/// Creates a connected responder (for the worker) and reply future (for the caller).
pub(crate) fn pair<T>() -> (Responder<T>, Reply<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(State::Pending(None)),
    });
    (
        Responder {
            slot: Arc::clone(&slot),
        },
        Reply { slot },
    )
}

/// The worker's end. Dropping it unfilled (the worker stopped or panicked) fills the slot with
/// an error, so the caller never waits forever.
pub(crate) struct Responder<T> {
    slot: Arc<Slot<T>>,
}

impl<T> Responder<T> {
    /// Whether the caller already gave up (deadline, cancellation, future dropped): the worker
    /// must then not start the operation at all.
    pub(crate) fn is_abandoned(&self) -> bool {
        self.slot.is_settled()
    }

    /// Delivers the result.
    pub(crate) fn send(self, outcome: Outcome<T>) {
        self.slot.complete(outcome);
    }

    /// The slot, for cancellation handles.
    pub(crate) fn slot(&self) -> Arc<Slot<T>> {
        Arc::clone(&self.slot)
    }
}

impl<T> Drop for Responder<T> {
    fn drop(&mut self) {
        self.slot.complete(Err(TransportError::backend(
            "pcsc",
            PcscError::WorkerStopped,
        )));
    }
}

/// The caller's end: a future that resolves when the slot is filled. Dropping it marks the
/// request as abandoned so the worker skips it if it has not started yet.
pub(crate) struct Reply<T> {
    slot: Arc<Slot<T>>,
}

impl<T: Send + 'static> Reply<T> {
    /// Fills the slot with [`TransportError::Timeout`] after `after`, unless it is filled first.
    pub(crate) fn deadline(self, after: Option<Duration>) -> Result<Self, TransportError> {
        if let Some(after) = after {
            let weak: Weak<Slot<T>> = Arc::downgrade(&self.slot);
            timer()?.schedule(
                Instant::now() + after,
                Box::new(move || {
                    if let Some(slot) = weak.upgrade() {
                        slot.complete(Err(TransportError::Timeout(after)));
                    }
                }),
            );
        }
        Ok(self)
    }
}

impl<T> Future for Reply<T> {
    type Output = Outcome<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.slot.state);
        match std::mem::replace(&mut *state, State::Taken) {
            State::Ready(outcome) => Poll::Ready(outcome),
            State::Pending(_) => {
                *state = State::Pending(Some(cx.waker().clone()));
                Poll::Pending
            }
            State::Taken => Poll::Ready(Err(TransportError::backend(
                "pcsc",
                PcscError::WorkerStopped,
            ))),
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        self.slot.complete(Err(TransportError::Cancelled));
    }
}

type Alarm = Box<dyn FnOnce() + Send>;

/// One process-wide thread that fires deadlines; it sleeps while there are none.
pub(crate) struct Timer {
    alarms: Mutex<Vec<(Instant, Alarm)>>,
    changed: Condvar,
}

impl Timer {
    fn schedule(&self, at: Instant, alarm: Alarm) {
        lock(&self.alarms).push((at, alarm));
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut alarms = lock(&self.alarms);
        loop {
            let now = Instant::now();
            let mut due = Vec::new();
            let mut i = 0;
            while i < alarms.len() {
                if alarms[i].0 <= now {
                    due.push(alarms.swap_remove(i).1);
                } else {
                    i += 1;
                }
            }
            if !due.is_empty() {
                drop(alarms);
                for alarm in due {
                    alarm();
                }
                alarms = lock(&self.alarms);
                continue;
            }
            let next = alarms.iter().map(|(at, _)| *at).min();
            alarms = match next {
                None => self
                    .changed
                    .wait(alarms)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(at) => {
                    self.changed
                        .wait_timeout(alarms, at.saturating_duration_since(now))
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

fn timer() -> Result<&'static Timer, TransportError> {
    static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
    let timer = TIMER.get_or_init(|| {
        let timer: &'static Timer = Box::leak(Box::new(Timer {
            alarms: Mutex::new(Vec::new()),
            changed: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("mynacard-pcsc-timer".into())
            .spawn(move || timer.run())
            .ok()
            .map(|_| timer)
    });
    timer.ok_or_else(|| TransportError::backend("pcsc", PcscError::TimerUnavailable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mynacard_transport::blocking::block_on;

    #[test]
    fn worker_result_arrives() {
        let (tx, rx) = pair::<u8>();
        let h = std::thread::spawn(move || tx.send(Ok(7)));
        assert_eq!(block_on(rx).unwrap(), 7);
        h.join().unwrap();
    }

    #[test]
    fn deadline_fires_when_worker_is_stuck() {
        let (tx, rx) = pair::<u8>();
        let rx = rx.deadline(Some(Duration::from_millis(30))).unwrap();
        let err = block_on(rx).unwrap_err();
        assert!(matches!(err, TransportError::Timeout(d) if d == Duration::from_millis(30)));
        // The worker now sees that nobody waits any more.
        assert!(tx.is_abandoned());
    }

    #[test]
    fn dropped_responder_is_an_error_not_a_hang() {
        let (tx, rx) = pair::<u8>();
        drop(tx);
        let err = block_on(rx).unwrap_err();
        assert!(matches!(err, TransportError::Backend { .. }));
    }

    #[test]
    fn dropped_reply_abandons_the_request() {
        let (tx, rx) = pair::<u8>();
        drop(rx);
        assert!(tx.is_abandoned());
    }

    #[test]
    fn first_outcome_wins() {
        let (tx, rx) = pair::<u8>();
        let slot = tx.slot();
        assert!(slot.complete(Err(TransportError::Cancelled)));
        tx.send(Ok(1));
        assert!(matches!(block_on(rx), Err(TransportError::Cancelled)));
    }
}
