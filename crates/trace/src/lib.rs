//! Trace recording and replay for field diagnosis.
//!
//! A [`Recorder`] wraps any [`mynacard_transport::Transport`] or
//! [`mynacard_transport::CardChannel`] and writes every exchange, with timings, to a trace file
//! as it happens. PIN and password bytes never reach the file, and responses holding personal
//! data are replaced by same-length placeholders (see [`redact`]), so a vendor can send the trace
//! of a failing reader. The file format is versioned JSON Lines, described in [`mod@format`].
//!
//! A recorded trace replays through [`ReplayChannel`] / [`ReplayTransport`]: the card layer runs
//! against it as against a card, and a command that differs from the recording fails with
//! [`ReplayError::CommandMismatch`] (inside `TransportError::Backend`, backend `"replay"`).
//!
//! ```
//! use mynacard_trace::{Recorder, Redaction, ReplayChannel, Trace};
//! # use mynacard_transport::{Capabilities, CardChannel, Interface, TransportError};
//! # struct Card;
//! # #[async_trait::async_trait]
//! # impl CardChannel for Card {
//! #     async fn transmit(&mut self, _: &[u8]) -> Result<Vec<u8>, TransportError> { Ok(vec![0x90, 0x00]) }
//! #     fn capabilities(&self) -> Capabilities { Capabilities::short(Interface::Contact, vec![]) }
//! #     fn was_reset(&mut self) -> bool { false }
//! # }
//! use mynacard_transport::blocking::block_on;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let file = std::env::temp_dir().join(format!("doc-{}.jsonl", std::process::id()));
//! let recorder = Recorder::create(&file)?;
//! let mut channel = recorder.wrap_channel("reader", Card);
//! block_on(channel.transmit(&[0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4']))?;
//! recorder.finish()?;
//!
//! let trace = Trace::from_path(&file)?;
//! assert!(!std::fs::read_to_string(&file)?.contains("31323334")); // the PIN is not there
//! let mut replay = ReplayChannel::first(&trace)?;
//! assert_eq!(block_on(replay.transmit(&[0x00, 0x20, 0x00, 0x80, 0x04, b'9', b'9', b'9', b'9']))?, [0x90, 0x00]);
//! # std::fs::remove_file(&file)?;
//! # Ok(())
//! # }
//! ```

mod error;
pub mod format;
mod record;
pub mod redact;
mod replay;

pub use error::{ReplayError, TraceError};
pub use format::{Event, Redaction};
pub use record::{Recorder, RecordingChannel, RecordingTransport, error_record};
pub use replay::{ReplayChannel, ReplayTransport, Session, Trace, transport_error};
