//! A log of every exchange with the simulated card, with timings and counters, for tests and
//! benchmarks.
//!
//! The data of VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER and CHANGE KEY (`80 32`) is
//! never recorded: the entry keeps the header and the length field and notes how many bytes were
//! left out. Response data is recorded only when asked for ([`ApduLog::capturing_responses`]),
//! because the card returns personal data (the My Number, the four attributes); by default an
//! entry keeps the response length and status word.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// One command/response exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Sequence number, from 1.
    pub seq: u64,
    /// When the command arrived, from the creation of the log.
    pub at: Duration,
    /// Time until the response was ready (card processing plus injected latency).
    pub elapsed: Duration,
    /// Command bytes; PIN data is left out (see [`LogEntry::redacted`]).
    pub command: Vec<u8>,
    /// Number of secret data bytes left out of [`LogEntry::command`].
    pub redacted: usize,
    /// Status word, `None` when no response reached the host (card pulled, tag lost).
    pub sw: Option<u16>,
    /// Length of the response APDU in bytes (0 when none).
    pub response_len: usize,
    /// The response APDU, only when the log captures responses.
    pub response: Option<Vec<u8>>,
}

/// Totals over all exchanges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Command APDUs that reached the card.
    pub apdus: u64,
    /// Command bytes.
    pub command_bytes: u64,
    /// Response bytes.
    pub response_bytes: u64,
    /// Sum of [`LogEntry::elapsed`].
    pub busy: Duration,
}

struct Inner {
    origin: Instant,
    entries: Vec<LogEntry>,
    counters: Counters,
    capture_responses: bool,
    keep_entries: bool,
}

/// A shared APDU log: clones refer to the same log.
#[derive(Clone)]
pub struct ApduLog {
    inner: Arc<Mutex<Inner>>,
}

impl core::fmt::Debug for ApduLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ApduLog")
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl Default for ApduLog {
    fn default() -> Self {
        ApduLog::new()
    }
}

/// Whether an APDU carries reference data (a PIN, a password) and where that data starts.
pub(crate) fn secret_data_start(command: &[u8]) -> Option<usize> {
    let [cla, ins, _, _, body @ ..] = command else {
        return None;
    };
    if !mynacard_apdu::commands::carries_reference_data(*cla, *ins) || body.len() < 2 {
        return None;
    }
    // Short Lc is one byte; extended Lc is `00` and two bytes.
    if body[0] != 0 {
        Some(5)
    } else if body.len() > 3 {
        Some(7)
    } else {
        None
    }
}

/// The command with its secret data removed, and how many bytes were removed.
pub fn redact(command: &[u8]) -> (Vec<u8>, usize) {
    match secret_data_start(command) {
        Some(start) if start <= command.len() => (command[..start].to_vec(), command.len() - start),
        _ => (command.to_vec(), 0),
    }
}

impl ApduLog {
    /// An empty log that records entries without response data.
    pub fn new() -> Self {
        ApduLog {
            inner: Arc::new(Mutex::new(Inner {
                origin: Instant::now(),
                entries: Vec::new(),
                counters: Counters::default(),
                capture_responses: false,
                keep_entries: true,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data; keep logging.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records response data from now on (`true`) or not (`false`).
    pub fn capturing_responses(&self, capture: bool) -> &Self {
        self.lock().capture_responses = capture;
        self
    }

    /// Keeps individual entries (`true`, the default) or only the counters (`false`, for long
    /// benchmarks).
    pub fn keeping_entries(&self, keep: bool) -> &Self {
        self.lock().keep_entries = keep;
        self
    }

    /// Records one exchange that started at `started` and took `elapsed` (injected latency
    /// included); `response` is `None` when no answer reached the host.
    pub fn record(
        &self,
        started: Instant,
        elapsed: Duration,
        command: &[u8],
        response: Option<&[u8]>,
    ) {
        let mut inner = self.lock();
        inner.counters.apdus += 1;
        inner.counters.command_bytes += command.len() as u64;
        inner.counters.response_bytes += response.map_or(0, |r| r.len()) as u64;
        inner.counters.busy += elapsed;
        if !inner.keep_entries {
            return;
        }
        let (command, redacted) = redact(command);
        let sw = response.and_then(|r| match r {
            [.., sw1, sw2] => Some(u16::from_be_bytes([*sw1, *sw2])),
            _ => None,
        });
        let entry = LogEntry {
            seq: inner.counters.apdus,
            at: started.saturating_duration_since(inner.origin),
            elapsed,
            command,
            redacted,
            sw,
            response_len: response.map_or(0, <[u8]>::len),
            response: response
                .filter(|_| inner.capture_responses)
                .map(<[u8]>::to_vec),
        };
        inner.entries.push(entry);
    }

    /// The entries so far.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.lock().entries.clone()
    }

    /// The totals so far.
    pub fn counters(&self) -> Counters {
        self.lock().counters
    }

    /// Forgets all entries and zeroes the counters.
    pub fn clear(&self) {
        let mut inner = self.lock();
        inner.entries.clear();
        inner.counters = Counters::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_and_change_data_is_redacted_other_data_is_kept() {
        let verify = [0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
        assert_eq!(redact(&verify), (verify[..5].to_vec(), 4));
        let change = [0x00, 0x24, 0x01, 0x80, 0x04, b'9', b'9', b'9', b'9'];
        assert_eq!(redact(&change), (change[..5].to_vec(), 4));
        let extended = [0x00, 0x20, 0x00, 0x9B, 0x00, 0x00, 0x02, b'A', b'B'];
        assert_eq!(redact(&extended), (extended[..7].to_vec(), 2));
        let status = [0x00, 0x20, 0x00, 0x80];
        assert_eq!(redact(&status), (status.to_vec(), 0));
        let select = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x18];
        assert_eq!(redact(&select), (select.to_vec(), 0));
        let change_key = [0x80, 0x32, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
        assert_eq!(redact(&change_key).1, 4);
    }

    #[test]
    fn entries_and_counters() {
        let log = ApduLog::new();
        let started = Instant::now();
        log.record(
            started,
            Duration::ZERO,
            &[0x00, 0x20, 0x00, 0x80, 0x02, b'1', b'2'],
            Some(&[0x63, 0xC2]),
        );
        log.capturing_responses(true);
        log.record(
            started,
            Duration::ZERO,
            &[0x00, 0xB0, 0x00, 0x00, 0x02],
            Some(&[1, 2, 0x90, 0x00]),
        );
        log.record(
            started,
            Duration::ZERO,
            &[0x00, 0x20, 0x00, 0x80, 0x01, b'1'],
            None,
        );
        let entries = log.entries();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].command, vec![0x00, 0x20, 0x00, 0x80, 0x02]);
        assert_eq!(entries[0].redacted, 2);
        assert_eq!(entries[0].sw, Some(0x63C2));
        assert_eq!(entries[0].response, None);
        assert_eq!(entries[1].response, Some(vec![1, 2, 0x90, 0x00]));
        assert_eq!(entries[2].sw, None);
        assert_eq!(entries[2].seq, 3);
        let counters = log.counters();
        assert_eq!(counters.apdus, 3);
        assert_eq!(counters.command_bytes, 7 + 5 + 6);
        assert_eq!(counters.response_bytes, 2 + 4);
        log.clear();
        assert_eq!(log.counters(), Counters::default());
        assert!(log.entries().is_empty());
    }
}
