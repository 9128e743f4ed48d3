//! Fault injection: link latency, slow RSA, a card pulled mid-session, a reset, a corrupted
//! byte, and the NFC tag lost while a VERIFY is under way.
//!
//! A [`Faults`] value is plain configuration; give it to
//! [`SimCard::set_faults`](crate::inprocess::SimCard::set_faults). APDUs are numbered from 1 in
//! the order they reach the card after the faults were set, through any harness.
//!
//! Latency does not block the caller's executor: the in-process channel's future completes
//! after the delay, which a short-lived helper thread measures. The vpcd bridge, which runs on
//! its own thread, simply sleeps.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// Which response byte to damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corruption {
    /// The APDU whose response is damaged (1 = the first APDU after the faults were set).
    pub apdu: u64,
    /// Index of the byte in the response APDU (data and status word); beyond the end, nothing
    /// is damaged.
    pub byte: usize,
    /// Bits to flip (`0xFF` inverts the byte; 0 is replaced by `0x01`).
    pub xor: u8,
}

/// What goes wrong, and when.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Added to every APDU (protocol turnaround, reader overhead).
    pub latency_per_apdu: Duration,
    /// Added per byte of command and response (the link's bit rate: about 87 µs at 115.2 kbit/s
    /// contact, 40 µs at 212 kbit/s NFC).
    pub latency_per_byte: Duration,
    /// Added per RSA private-key operation (a real card takes hundreds of milliseconds).
    pub latency_per_rsa_operation: Duration,
    /// The card is pulled after this many APDUs: the next one and all after fail with
    /// `CardRemoved`, until the card is inserted again. Counters stay on the card.
    pub pull_after_apdus: Option<u64>,
    /// The card is reset (by another program, or a power glitch) just before this APDU, which
    /// fails with `CardReset` in-process and reaches the fresh card through vpcd.
    pub reset_before_apdu: Option<u64>,
    /// One damaged response byte.
    pub corrupt: Option<Corruption>,
    /// The n-th VERIFY carrying data (1-based) is processed by the card, attempt counted, but
    /// the tag is lost before the answer arrives: the host sees `CardRemoved`.
    pub tag_loss_on_verify: Option<u64>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// A contact reader at 115.2 kbit/s T=1 with a slow card: ~0.5 ms per APDU, ~87 µs per byte,
    /// 300 ms per RSA signature.
    pub fn contact_link() -> Faults {
        Faults {
            latency_per_apdu: Duration::from_micros(500),
            latency_per_byte: Duration::from_micros(87),
            latency_per_rsa_operation: Duration::from_millis(300),
            ..Faults::default()
        }
    }

    /// A phone's NFC link at 212 kbit/s: ~2 ms per APDU, ~40 µs per byte, 500 ms per RSA
    /// signature.
    pub fn nfc_link() -> Faults {
        Faults {
            latency_per_apdu: Duration::from_millis(2),
            latency_per_byte: Duration::from_micros(40),
            latency_per_rsa_operation: Duration::from_millis(500),
            ..Faults::default()
        }
    }
}

/// What happens to one APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Before {
    /// Process it.
    Deliver,
    /// The card is gone before this APDU.
    Pull,
    /// The card is reset before this APDU.
    Reset,
}

/// Fault bookkeeping for one card.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    plan: Faults,
    apdus: u64,
    verifies: u64,
}

impl FaultState {
    pub(crate) fn new(plan: Faults) -> Self {
        FaultState {
            plan,
            apdus: 0,
            verifies: 0,
        }
    }

    /// Numbers the next APDU and says what happens before it reaches the card.
    pub(crate) fn before(&mut self) -> (u64, Before) {
        self.apdus += 1;
        let n = self.apdus;
        if self.plan.pull_after_apdus.is_some_and(|after| n > after) {
            // Pulled once: later APDUs meet an empty reader, not a second pull.
            self.plan.pull_after_apdus = None;
            return (n, Before::Pull);
        }
        if self.plan.reset_before_apdu == Some(n) {
            return (n, Before::Reset);
        }
        (n, Before::Deliver)
    }

    /// Whether the tag is lost before the answer to this command arrives.
    pub(crate) fn tag_lost(&mut self, command: &[u8]) -> bool {
        let is_verify_with_data = matches!(command, [cla, 0x20, _, _, _, ..] if cla & 0x80 == 0);
        if !is_verify_with_data {
            return false;
        }
        self.verifies += 1;
        self.plan.tag_loss_on_verify == Some(self.verifies)
    }

    /// Damages the response of APDU `n` when planned.
    pub(crate) fn corrupt(&self, n: u64, response: &mut [u8]) {
        if let Some(c) = self.plan.corrupt.filter(|c| c.apdu == n)
            && let Some(byte) = response.get_mut(c.byte)
        {
            *byte ^= if c.xor == 0 { 0x01 } else { c.xor };
        }
    }

    /// Latency of one exchange.
    pub(crate) fn latency(&self, bytes: usize, rsa_operations: u64) -> Duration {
        let per_byte = self
            .plan
            .latency_per_byte
            .saturating_mul(u32::try_from(bytes).unwrap_or(u32::MAX));
        let rsa = self
            .plan
            .latency_per_rsa_operation
            .saturating_mul(u32::try_from(rsa_operations).unwrap_or(u32::MAX));
        self.plan
            .latency_per_apdu
            .saturating_add(per_byte)
            .saturating_add(rsa)
    }
}

struct DelayShared {
    done: bool,
    waker: Option<Waker>,
}

/// A future that completes after a duration, timed by a helper thread; no runtime needed.
pub(crate) struct Delay {
    duration: Duration,
    shared: Option<Arc<Mutex<DelayShared>>>,
}

impl Delay {
    pub(crate) fn new(duration: Duration) -> Delay {
        Delay {
            duration,
            shared: None,
        }
    }
}

impl Future for Delay {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.duration.is_zero() {
            return Poll::Ready(());
        }
        if let Some(shared) = &self.shared {
            let mut guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
            if guard.done {
                return Poll::Ready(());
            }
            guard.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let shared = Arc::new(Mutex::new(DelayShared {
            done: false,
            waker: Some(cx.waker().clone()),
        }));
        let timer = Arc::clone(&shared);
        let duration = self.duration;
        let spawned = std::thread::Builder::new()
            .name("mynacard-sim-latency".into())
            .spawn(move || {
                std::thread::sleep(duration);
                let mut guard = timer.lock().unwrap_or_else(PoisonError::into_inner);
                guard.done = true;
                if let Some(waker) = guard.waker.take() {
                    waker.wake();
                }
            });
        if spawned.is_err() {
            // No thread to time the delay: wait here rather than lose the latency.
            std::thread::sleep(duration);
            return Poll::Ready(());
        }
        self.shared = Some(shared);
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn latency_adds_up() {
        let state = FaultState::new(Faults {
            latency_per_apdu: Duration::from_millis(1),
            latency_per_byte: Duration::from_micros(10),
            latency_per_rsa_operation: Duration::from_millis(100),
            ..Faults::default()
        });
        assert_eq!(state.latency(100, 0), Duration::from_millis(2));
        assert_eq!(state.latency(0, 2), Duration::from_millis(201));
    }

    #[test]
    fn pull_happens_once_after_n() {
        let mut state = FaultState::new(Faults {
            pull_after_apdus: Some(2),
            ..Faults::default()
        });
        assert_eq!(state.before(), (1, Before::Deliver));
        assert_eq!(state.before(), (2, Before::Deliver));
        assert_eq!(state.before(), (3, Before::Pull));
        assert_eq!(state.before(), (4, Before::Deliver));
    }

    #[test]
    fn only_verifies_with_data_count_for_tag_loss() {
        let mut state = FaultState::new(Faults {
            tag_loss_on_verify: Some(2),
            ..Faults::default()
        });
        assert!(!state.tag_lost(&[0x00, 0x20, 0x00, 0x80]));
        assert!(!state.tag_lost(&[0x00, 0x20, 0x00, 0x80, 0x01, 0x31]));
        assert!(!state.tag_lost(&[0x00, 0xB0, 0x00, 0x00, 0x01]));
        assert!(state.tag_lost(&[0x00, 0x20, 0x00, 0x80, 0x01, 0x31]));
        assert!(!state.tag_lost(&[0x00, 0x20, 0x00, 0x80, 0x01, 0x31]));
    }

    #[test]
    fn corruption_flips_the_chosen_byte_only() {
        let state = FaultState::new(Faults {
            corrupt: Some(Corruption {
                apdu: 2,
                byte: 1,
                xor: 0xFF,
            }),
            ..Faults::default()
        });
        let mut response = vec![0x01, 0x02, 0x90, 0x00];
        state.corrupt(1, &mut response);
        assert_eq!(response, vec![0x01, 0x02, 0x90, 0x00]);
        state.corrupt(2, &mut response);
        assert_eq!(response, vec![0x01, 0xFD, 0x90, 0x00]);
        let mut short = vec![0x90, 0x00];
        state.corrupt(2, &mut short);
        assert_eq!(short, vec![0x90, 0xFF]);
    }

    #[test]
    fn delay_waits_without_a_runtime() {
        let started = Instant::now();
        mynacard_transport::blocking::block_on(Delay::new(Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
}
