//! ISO/IEC 7816-4 APDU codec.
//!
//! This crate only turns values into bytes and bytes into values; it performs no I/O. It is
//! `no_std` + `alloc`, so the same codec serves the card session, the simulated card's command
//! parser, the fuzzers and embedded hosts.
//!
//! - [`Command`]: command APDUs of all four cases, short and extended length, encoded with
//!   [`Command::to_bytes`] and parsed with [`Command::parse`].
//! - [`Response`] and [`StatusWord`]: response APDUs and one status-word enum covering
//!   ISO 7816-4.
//! - [`ResponseAssembler`]: the `61xx` / `6Cxx` conventions as a pure value that *returns* the
//!   next command to send instead of sending it.
//! - [`chain`]: command chaining as a pure splitter.
//! - [`tlv`]: BER-TLV and the card's simple-TLV.
//! - [`commands`]: constructors for the ISO 7816-4 commands, each naming its clause.
//!
//! Nothing here knows a particular card: which applications, files and proprietary commands a
//! card has is that card's crate's business (for the My Number Card, `mynacard-card`).
//!
//! ```
//! use mynacard_apdu::{commands, LengthEncoding};
//! // SELECT by DF name, no response data (ISO 7816-4 §11.2.2), of a 5-byte RID.
//! let select = commands::select_df(&[0xA0, 0x00, 0x00, 0x00, 0x01]);
//! assert_eq!(
//!     select.to_bytes(LengthEncoding::Auto)?.as_slice(),
//!     [0x00, 0xA4, 0x04, 0x0C, 0x05, 0xA0, 0x00, 0x00, 0x00, 0x01]
//! );
//! # Ok::<(), mynacard_apdu::ApduError>(())
//! ```
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod assembler;
pub mod chain;
mod command;
pub mod commands;
mod error;
mod response;
mod status;
pub mod tlv;

pub use assembler::{AssemblerLimits, ResponseAssembler, Step};
pub use command::{Case, Command, CommandBytes, CommandData, LengthEncoding, MAX_NE, Parsed};
pub use error::ApduError;
pub use response::Response;
pub use status::{StatusCategory, StatusWord};
