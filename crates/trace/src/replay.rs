//! Replaying recorded traces against the card layer.

use std::collections::VecDeque;
use std::io::BufRead;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, Interface, Transport, TransportError};

use crate::error::{ReplayError, TraceError};
use crate::format::{ErrorRecord, Event, Exchange, FORMAT_NAME, FORMAT_VERSION, Header, Open};
use crate::redact::is_secret_command;

/// A parsed trace file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trace {
    /// The header line.
    pub header: Header,
    /// Every later line, in order.
    pub events: Vec<Event>,
}

/// One recorded channel: its `open` event and the exchanges and resets after it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// The opening.
    pub open: Open,
    /// Exchanges and resets, in order.
    pub events: Vec<Event>,
}

impl Trace {
    /// Parses a trace. Empty lines are skipped.
    ///
    /// # Errors
    /// [`TraceError`] for I/O, a line that is not an event, or a header of another format or a
    /// newer version.
    pub fn read(reader: impl BufRead) -> Result<Trace, TraceError> {
        let mut header = None;
        let mut events = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let line = line.map_err(TraceError::Io)?;
            if line.trim().is_empty() {
                continue;
            }
            let event: Event = serde_json::from_str(&line).map_err(|source| TraceError::Json {
                line: i + 1,
                source,
            })?;
            match (event, header.is_some()) {
                (Event::Header(h), false) => {
                    if h.format != FORMAT_NAME {
                        return Err(TraceError::WrongFormat { format: h.format });
                    }
                    if h.version > FORMAT_VERSION {
                        return Err(TraceError::UnsupportedVersion { version: h.version });
                    }
                    header = Some(h);
                }
                (Event::Header(_), true) => return Err(TraceError::SecondHeader { line: i + 1 }),
                (_, false) => return Err(TraceError::MissingHeader),
                (event, true) => events.push(event),
            }
        }
        Ok(Trace {
            header: header.ok_or(TraceError::MissingHeader)?,
            events,
        })
    }

    /// Parses a trace file.
    ///
    /// # Errors
    /// As [`Trace::read`].
    pub fn from_path(path: impl AsRef<Path>) -> Result<Trace, TraceError> {
        let file = std::fs::File::open(path).map_err(TraceError::Io)?;
        Trace::read(std::io::BufReader::new(file))
    }

    /// The recorded channels in order. Events before the first `open` are ignored.
    pub fn sessions(&self) -> Vec<Session> {
        let mut sessions: Vec<Session> = Vec::new();
        for event in &self.events {
            match event {
                Event::Open(open) => sessions.push(Session {
                    open: open.clone(),
                    events: Vec::new(),
                }),
                other => {
                    if let Some(s) = sessions.last_mut() {
                        s.events.push(other.clone());
                    }
                }
            }
        }
        sessions
    }

    /// All exchanges, in order.
    pub fn exchanges(&self) -> impl Iterator<Item = &Exchange> {
        self.events.iter().filter_map(|e| match e {
            Event::Exchange(x) => Some(x),
            _ => None,
        })
    }
}

fn replay_error(err: ReplayError) -> TransportError {
    TransportError::backend("replay", err)
}

/// The recorded error as the [`TransportError`] the card layer saw.
pub fn transport_error(record: &ErrorRecord) -> TransportError {
    match record.kind.as_str() {
        "no_reader" => TransportError::NoReader {
            name: record.reader.clone(),
        },
        "no_card" => TransportError::NoCard,
        "card_removed" => TransportError::CardRemoved,
        "card_reset" => TransportError::CardReset,
        "sharing_violation" => TransportError::SharingViolation,
        "timeout" => TransportError::Timeout(Duration::from_millis(record.timeout_ms.unwrap_or(0))),
        "cancelled" => TransportError::Cancelled,
        "command_too_long" => TransportError::CommandTooLong {
            len: record.len.unwrap_or(0),
            max: record.max.unwrap_or(0),
        },
        "malformed_response" => TransportError::MalformedResponse {
            len: record.len.unwrap_or(0),
        },
        _ => replay_error(ReplayError::Recorded {
            message: record.message.clone(),
        }),
    }
}

fn capabilities(open: &Open) -> Result<Capabilities, ReplayError> {
    let rec = open
        .capabilities
        .as_ref()
        .ok_or(ReplayError::NoCapabilities)?;
    let interface = match rec.interface.as_str() {
        "contact" => Interface::Contact,
        "contactless" => Interface::Contactless,
        _ => Interface::Unknown,
    };
    let base = if rec.extended_length {
        Capabilities::extended(interface, rec.atr.clone())
    } else {
        Capabilities::short(interface, rec.atr.clone())
    };
    let mut caps = base.with_limits(rec.max_command_len, rec.max_response_len);
    caps.extended_length = rec.extended_length;
    Ok(caps)
}

/// A channel that serves a recorded session: each command must equal the recorded one (for a
/// redacted command, its 4 header bytes), and gets the recorded response or error.
#[derive(Debug)]
pub struct ReplayChannel {
    capabilities: Capabilities,
    events: VecDeque<Event>,
    served: usize,
    reset_pending: bool,
}

impl ReplayChannel {
    /// A channel over one recorded session.
    ///
    /// # Errors
    /// [`ReplayError::NoCapabilities`] when the recorded open failed.
    pub fn new(session: Session) -> Result<ReplayChannel, ReplayError> {
        Ok(ReplayChannel {
            capabilities: capabilities(&session.open)?,
            events: session.events.into(),
            served: 0,
            reset_pending: false,
        })
    }

    /// A channel over the first session of a trace.
    ///
    /// # Errors
    /// [`ReplayError::NoMoreSessions`] for a trace without one.
    pub fn first(trace: &Trace) -> Result<ReplayChannel, ReplayError> {
        let session = trace
            .sessions()
            .into_iter()
            .next()
            .ok_or(ReplayError::NoMoreSessions)?;
        ReplayChannel::new(session)
    }

    /// Recorded exchanges not yet replayed.
    pub fn remaining(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Exchange(_)))
            .count()
    }

    /// Checks that the whole session was replayed.
    ///
    /// # Errors
    /// [`ReplayError::NotFinished`].
    pub fn finish(&self) -> Result<(), ReplayError> {
        match self.remaining() {
            0 => Ok(()),
            remaining => Err(ReplayError::NotFinished { remaining }),
        }
    }

    fn take_resets(&mut self) {
        while let Some(Event::Reset(_)) = self.events.front() {
            self.events.pop_front();
            self.reset_pending = true;
        }
    }
}

#[async_trait]
impl CardChannel for ReplayChannel {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        loop {
            self.take_resets();
            match self.events.pop_front() {
                Some(Event::Exchange(x)) => {
                    let matches = if x.command_redacted {
                        command.get(..4) == Some(x.command.as_slice())
                    } else {
                        command == x.command.as_slice()
                    };
                    if !matches {
                        let actual = if is_secret_command(command) {
                            command.get(..4).unwrap_or(command).to_vec()
                        } else {
                            command.to_vec()
                        };
                        return Err(replay_error(ReplayError::CommandMismatch {
                            seq: x.seq,
                            expected: x.command,
                            actual,
                        }));
                    }
                    self.served += 1;
                    let result = match (x.response, x.error) {
                        (_, Some(err)) => Err(transport_error(&err)),
                        (Some(rsp), None) => Ok(rsp),
                        (None, None) => Err(TransportError::MalformedResponse { len: 0 }),
                    };
                    // Resets recorded right after this exchange belong to it.
                    self.take_resets();
                    return result;
                }
                Some(_) => continue,
                None => {
                    return Err(replay_error(ReplayError::Exhausted { sent: self.served }));
                }
            }
        }
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    fn was_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_pending)
    }
}

/// A transport that replays a trace's sessions in order: each `open` serves the next recorded
/// channel (or its recorded failure to open).
#[derive(Debug)]
pub struct ReplayTransport {
    name: String,
    sessions: Mutex<VecDeque<Session>>,
}

impl ReplayTransport {
    /// A transport over all sessions of a trace.
    pub fn new(trace: &Trace) -> ReplayTransport {
        let sessions: VecDeque<Session> = trace.sessions().into();
        let name = sessions.front().map_or_else(
            || "replay".to_owned(),
            |s| format!("replay of {}", s.open.transport),
        );
        ReplayTransport {
            name,
            sessions: Mutex::new(sessions),
        }
    }
}

#[async_trait]
impl Transport for ReplayTransport {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        let next = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front();
        let session = next.ok_or_else(|| replay_error(ReplayError::NoMoreSessions))?;
        if let Some(err) = &session.open.error {
            return Err(transport_error(err));
        }
        Ok(Box::new(ReplayChannel::new(session).map_err(replay_error)?))
    }
}
