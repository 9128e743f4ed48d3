//! PC/SC transport for mynacard.
//!
//! - [`list_readers`]: the readers and what each holds.
//! - [`CardWait`]: wait for a card to arrive or leave, with a timeout, cancellable, watching
//!   readers plugged in later.
//! - [`PcscTransport`] / [`PcscChannel`]: a [`mynacard_transport::Transport`] over one reader;
//!   shared or exclusive, recovery from resets by other programs, capabilities (extended
//!   length, contact or contactless) from the reader.
//! - Transactions: by default a channel holds one PC/SC transaction from open to close, so no
//!   other program's commands land between ours. With
//!   [`PcscOptions::hold_transaction`]`(false)`, [`PcscChannel::transaction`] groups commands
//!   in a [`PcscTransaction`] guard instead, ended with a [`TransactionEnd`] (leave, reset,
//!   unpower) or dropped, and other programs use the card between groups.
//!
//! Every blocking PC/SC call runs on a thread of its own (one per open channel and one per
//! wait); the futures only wait for those threads, so they run on any executor, or on none
//! through [`mynacard_transport::blocking`].
//!
//! ```no_run
//! use mynacard_pcsc::{PcscTransport, list_readers};
//! use mynacard_transport::{blocking::block_on, CardChannel};
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), mynacard_transport::TransportError> {
//! for reader in list_readers()? {
//!     println!("{} {:?}", reader.name, reader.card);
//! }
//! let transport = PcscTransport::any();
//! let reader = block_on(transport.wait_for_card(Some(Duration::from_secs(30))))?;
//! let mut channel = block_on(PcscTransport::new(reader.name).open_channel())?;
//! let response = block_on(channel.transmit(&[0x00, 0xA4, 0x04, 0x0C, 0x0A,
//!     0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]))?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! | PC/SC | [`mynacard_transport::TransportError`] |
//! |---|---|
//! | `RemovedCard`; `NoSmartcard` in an open channel | `CardRemoved` |
//! | `NoSmartcard` when opening | `NoCard` |
//! | `ResetCard`, `UnpoweredCard` | `CardReset`, after reconnecting and selecting the application again |
//! | `SharingViolation` | `SharingViolation` |
//! | `UnknownReader`, `ReaderUnavailable`, `NoReadersAvailable` | `NoReader` |
//! | `Cancelled` | `Cancelled` |
//! | `NotTransacted`, `CommError`, `UnresponsiveCard`, `CommDataLost`, or an empty response | `CardRemoved` when the reader shows the card gone within [`PcscOptions::removal_settle`]; otherwise `Backend` (or `MalformedResponse` for the empty response) |
//! | no answer within [`PcscOptions::command_timeout`] | `Timeout` |
//! | anything else (`NoService`, `ServiceStopped`, …) | `Backend { backend: "pcsc", source: PcscError::Pcsc { source: pcsc::Error, .. } }` |
//!
//! [`pcsc_error_of`] digs the PC/SC code out of a `Backend` error.
//!
//! # Readers and cards coming and going
//!
//! - A card arriving or leaving: [`CardWait`] resolves on it, an open channel reports a card
//!   that left as `CardRemoved`, and a new channel opens to the card inserted next. Tested
//!   through pcscd with simulated cards attached and pulled (also mid-command and inside a
//!   transaction).
//! - A reader plugged in while a [`CardWait`] runs: the wait watches PC/SC's plug-and-play
//!   notification and adds the new reader. A reader unplugged under an open channel: PC/SC
//!   reports `RemovedCard` or `ReaderUnavailable`, mapped as in the table above. Neither is
//!   tested: the virtual readers used in the tests exist from pcscd's start to its end.

mod channel;
mod detect;
mod error;
mod options;
mod readers;
mod reply;
mod transaction;

pub use channel::{PcscChannel, PcscTransport};
pub use detect::detect_interface;
pub use error::{Operation, PcscError, pcsc_error_of};
pub use options::{CloseAction, ExtendedLength, PcscOptions, Share};
pub use readers::{CardPresence, CardWait, ReaderInfo, WaitCanceller, list_readers};
pub use transaction::{PcscTransaction, TransactionEnd};

/// The PC/SC error codes, as kept in [`PcscError::Pcsc`].
pub use pcsc::Error as PcscCode;
