//! ISO/IEC 7816-4 APDU codec for the My Number Card.
//!
//! This crate only turns values into bytes and bytes into values; it performs no I/O. It is
//! `no_std` + `alloc`, so the same codec serves the card session, the simulated card's command
//! parser, the fuzzers and embedded hosts.
//!
//! - [`Command`]: command APDUs of all four cases, short and extended length, encoded with
//!   [`Command::to_bytes`] and parsed with [`Command::parse`].
//! - [`Response`] and [`StatusWord`]: response APDUs and one status-word enum covering
//!   ISO 7816-4 and the words the My Number Card answers.
//! - [`ResponseAssembler`]: the `61xx` / `6Cxx` conventions as a pure value that *returns* the
//!   next command to send instead of sending it.
//! - [`chain`]: command chaining as a pure splitter.
//! - [`tlv`]: BER-TLV and the card's simple-TLV.
//! - [`commands`]: constructors for the commands the card understands, each naming its source.
//!
//! ```
//! use mynacard_apdu::{commands, LengthEncoding};
//! let select = commands::select_df(&commands::aid::JPKI);
//! assert_eq!(
//!     select.to_bytes(LengthEncoding::Auto)?.as_slice(),
//!     [0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]
//! );
//! # Ok::<(), mynacard_apdu::ApduError>(())
//! ```
#![no_std]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

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
