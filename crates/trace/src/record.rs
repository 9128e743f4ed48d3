//! Recording: wrap any transport or channel; every exchange goes to the trace as it happens.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, Interface, Transport, TransportError};

use crate::error::TraceError;
use crate::format::{
    CapabilitiesRecord, ErrorRecord, Event, Exchange, FORMAT_NAME, FORMAT_VERSION, Header, Open,
    Redaction, Reset,
};
use crate::redact::{Redactions, Redactor, redact_response};

struct Sink {
    writer: Box<dyn Write + Send>,
    seq: u64,
    /// The first write failure; later events are dropped and [`Recorder::finish`] reports it.
    failed: Option<std::io::Error>,
}

struct Shared {
    sink: Mutex<Sink>,
    start: Instant,
    redaction: Redaction,
}

/// Writes a trace. Cheap to clone; every clone appends to the same file.
///
/// A failure to write the trace never fails a card operation: the first write error is kept and
/// returned by [`Recorder::finish`].
#[derive(Clone)]
pub struct Recorder {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("redaction", &self.shared.redaction)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates (or truncates) a trace file with personal data redacted.
    ///
    /// # Errors
    /// [`TraceError::Io`] when the file cannot be created or the header written.
    pub fn create(path: impl AsRef<Path>) -> Result<Recorder, TraceError> {
        let file = File::create(path).map_err(TraceError::Io)?;
        Recorder::new(BufWriter::new(file), Redaction::PersonalData, None)
    }

    /// A recorder writing to any writer; `note` goes into the header (reader model, symptom).
    ///
    /// # Errors
    /// [`TraceError::Io`] when the header cannot be written.
    pub fn new(
        writer: impl Write + Send + 'static,
        redaction: Redaction,
        note: Option<String>,
    ) -> Result<Recorder, TraceError> {
        let recorder = Recorder {
            shared: Arc::new(Shared {
                sink: Mutex::new(Sink {
                    writer: Box::new(writer),
                    seq: 0,
                    failed: None,
                }),
                start: Instant::now(),
                redaction,
            }),
        };
        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        recorder.write(Event::Header(Header {
            format: FORMAT_NAME.to_owned(),
            version: FORMAT_VERSION,
            created_unix_ms,
            redaction,
            note,
        }));
        let failed = recorder.sink().failed.take();
        match failed {
            Some(e) => Err(TraceError::Io(e)),
            None => Ok(recorder),
        }
    }

    /// Wraps a channel already open on `transport_name`; writes an `open` event.
    pub fn wrap_channel<C: CardChannel>(
        &self,
        transport_name: &str,
        channel: C,
    ) -> RecordingChannel<C> {
        self.write(Event::Open(Open {
            t_us: self.now_us(),
            transport: transport_name.to_owned(),
            capabilities: Some(capabilities_record(&channel.capabilities())),
            error: None,
        }));
        RecordingChannel {
            inner: channel,
            recorder: self.clone(),
            redactor: Redactor::new(),
            reset_seen: false,
        }
    }

    /// Wraps a transport: every channel it opens is recorded.
    pub fn wrap_transport<T: Transport>(&self, transport: T) -> RecordingTransport<T> {
        RecordingTransport {
            inner: transport,
            recorder: self.clone(),
        }
    }

    /// Flushes the trace and reports the first write failure, if any.
    ///
    /// # Errors
    /// [`TraceError::Io`].
    pub fn finish(&self) -> Result<(), TraceError> {
        let mut sink = self.sink();
        if let Some(e) = sink.failed.take() {
            return Err(TraceError::Io(e));
        }
        sink.writer.flush().map_err(TraceError::Io)
    }

    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.shared
            .sink
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_us(&self) -> u64 {
        micros(self.shared.start.elapsed())
    }

    fn redacting(&self) -> bool {
        self.shared.redaction == Redaction::PersonalData
    }

    fn write(&self, event: Event) {
        let mut sink = self.sink();
        if sink.failed.is_some() {
            return;
        }
        let event = match event {
            Event::Exchange(mut x) => {
                x.seq = sink.seq;
                sink.seq += 1;
                Event::Exchange(x)
            }
            other => other,
        };
        // Each line is flushed at once so a trace survives a crash of the program recording it.
        let outcome = serde_json::to_writer(&mut sink.writer, &event)
            .map_err(std::io::Error::from)
            .and_then(|()| sink.writer.write_all(b"\n"))
            .and_then(|()| sink.writer.flush());
        if let Err(e) = outcome {
            sink.failed = Some(e);
        }
    }
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

pub(crate) fn interface_name(interface: Interface) -> &'static str {
    match interface {
        Interface::Contact => "contact",
        Interface::Contactless => "contactless",
        _ => "unknown",
    }
}

fn capabilities_record(caps: &Capabilities) -> CapabilitiesRecord {
    CapabilitiesRecord {
        max_command_len: caps.max_command_len,
        max_response_len: caps.max_response_len,
        extended_length: caps.extended_length,
        interface: interface_name(caps.interface).to_owned(),
        atr: caps.atr.clone(),
    }
}

/// A transport error as recorded: its kind and its text with every source.
pub fn error_record(err: &TransportError) -> ErrorRecord {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    let mut record = ErrorRecord {
        kind: String::new(),
        message,
        timeout_ms: None,
        len: None,
        max: None,
        reader: None,
    };
    record.kind = match err {
        TransportError::NoReader { name } => {
            record.reader.clone_from(name);
            "no_reader"
        }
        TransportError::NoCard => "no_card",
        TransportError::CardRemoved => "card_removed",
        TransportError::CardReset => "card_reset",
        TransportError::SharingViolation => "sharing_violation",
        TransportError::Timeout(d) => {
            record.timeout_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            "timeout"
        }
        TransportError::Cancelled => "cancelled",
        TransportError::CommandTooLong { len, max } => {
            record.len = Some(*len);
            record.max = Some(*max);
            "command_too_long"
        }
        TransportError::MalformedResponse { len } => {
            record.len = Some(*len);
            "malformed_response"
        }
        _ => "backend",
    }
    .to_owned();
    record
}

/// A transport whose channels are recorded.
#[derive(Debug)]
pub struct RecordingTransport<T> {
    inner: T,
    recorder: Recorder,
}

impl<T> RecordingTransport<T> {
    /// The wrapped transport.
    pub fn inner(&self) -> &T {
        &self.inner
    }
}

#[async_trait]
impl<T: Transport> Transport for RecordingTransport<T> {
    fn name(&self) -> String {
        self.inner.name()
    }

    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        match self.inner.open().await {
            Ok(channel) => Ok(Box::new(
                self.recorder.wrap_channel(&self.inner.name(), channel),
            )),
            Err(e) => {
                self.recorder.write(Event::Open(Open {
                    t_us: self.recorder.now_us(),
                    transport: self.inner.name(),
                    capabilities: None,
                    error: Some(error_record(&e)),
                }));
                Err(e)
            }
        }
    }
}

/// A channel whose exchanges are recorded.
pub struct RecordingChannel<C> {
    inner: C,
    recorder: Recorder,
    redactor: Redactor,
    /// A reset the inner channel reported that the caller has not yet been told about.
    reset_seen: bool,
}

impl<C> std::fmt::Debug for RecordingChannel<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingChannel").finish_non_exhaustive()
    }
}

impl<C> RecordingChannel<C> {
    /// The wrapped channel.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C: CardChannel> RecordingChannel<C> {
    fn note_reset(&mut self) {
        if self.inner.was_reset() {
            self.reset_seen = true;
            self.redactor.reset();
            self.recorder.write(Event::Reset(Reset {
                t_us: self.recorder.now_us(),
            }));
        }
    }
}

#[async_trait]
impl<C: CardChannel> CardChannel for RecordingChannel<C> {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let redactions = if self.recorder.redacting() {
            self.redactor.classify(command)
        } else {
            Redactions::default()
        };
        let t_us = self.recorder.now_us();
        let started = Instant::now();
        let result = self.inner.transmit(command).await;
        let took_us = micros(started.elapsed());
        let recorded_command = if redactions.command_data {
            command.get(..4).unwrap_or(command).to_vec()
        } else {
            command.to_vec()
        };
        let (response, error) = match &result {
            Ok(rsp) if redactions.response_data => (Some(redact_response(command, rsp)), None),
            Ok(rsp) => (Some(rsp.clone()), None),
            Err(e) => (None, Some(error_record(e))),
        };
        self.recorder.write(Event::Exchange(Exchange {
            seq: 0,
            t_us,
            took_us,
            command: recorded_command,
            command_redacted: redactions.command_data,
            response,
            response_redacted: redactions.response_data && result.is_ok(),
            error,
        }));
        match &result {
            Ok(rsp) => self.redactor.observe(command, rsp),
            Err(TransportError::CardReset | TransportError::CardRemoved) => self.redactor.reset(),
            Err(_) => {}
        }
        self.note_reset();
        result
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn was_reset(&mut self) -> bool {
        self.note_reset();
        std::mem::take(&mut self.reset_seen)
    }
}
