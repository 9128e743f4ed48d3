//! ISO/IEC 7816-4 commands as plain values.
//!
//! Each constructor names its ISO/IEC 7816-4 clause (and, where the card's behaviour is noted,
//! the section of the project's card-protocol notes, `B.x`). Which applications, files and keys
//! a particular card has, and its proprietary commands, belong to that card's crate.

use alloc::vec::Vec;
use zeroize::Zeroizing;

use crate::{ApduError, Command};

/// P2 of VERIFY / CHANGE REFERENCE DATA / COMPUTE DIGITAL SIGNATURE: the current EF (`80`), or a
/// short EF identifier (`80 | SFI`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRef {
    /// The key or PIN EF selected before (`P2 = 80`).
    Current,
    /// The key or PIN by short EF identifier (`P2 = 80 | sfi`, e.g. `98` for SFI `18`).
    Sfi(u8),
}

impl KeyRef {
    /// The reference for a file id whose low five bits are its short EF identifier.
    pub const fn for_file(fid: u16) -> KeyRef {
        KeyRef::Sfi((fid & 0x1F) as u8)
    }

    /// The P2 byte.
    pub const fn p2(self) -> u8 {
        match self {
            KeyRef::Current => 0x80,
            KeyRef::Sfi(sfi) => 0x80 | (sfi & 0x1F),
        }
    }
}

/// Whether a command with this CLA and INS carries reference data (a PIN, password or other
/// secret) in its data field: VERIFY (`20`, and `21` with BER-TLV data), CHANGE REFERENCE DATA
/// (`24`), RESET RETRY COUNTER (`2C`), all ISO 7816-4 §11.5, and the proprietary-class CHANGE KEY
/// of JICSAP (`80 32`), the Japanese IC-card standard. The one list: parsing, tracing and the
/// APDU explainer all ask here.
pub const fn carries_reference_data(cla: u8, ins: u8) -> bool {
    matches!(ins, 0x20 | 0x21 | 0x24 | 0x2C) || (cla & 0x80 != 0 && ins == 0x32)
}

/// SELECT by DF name with no response data: `00 A4 04 0C Lc AID` (B.1; 7816-4 §11.2.2).
pub fn select_df(aid: &[u8]) -> Command {
    Command::new(0x00, 0xA4, 0x04, 0x0C).with_data(aid)
}

/// SELECT EF by file id under the current DF: `00 A4 02 0C 02 FID` (B.1; 7816-4 §11.2.2).
pub fn select_ef(fid: u16) -> Command {
    Command::new(0x00, 0xA4, 0x02, 0x0C).with_data(fid.to_be_bytes())
}

/// VERIFY with reference data: `00 20 00 P2 Lc PIN` (B.3; 7816-4 §11.5.6). Secret data.
pub fn verify(key: KeyRef, pin: Zeroizing<Vec<u8>>) -> Command {
    Command::new(0x00, 0x20, 0x00, key.p2()).with_sensitive_data(pin)
}

/// VERIFY without data: asks for the retry counter (`63Cx`) and spends nothing (B.3;
/// JICSAP 6.4.9(5)).
pub fn verify_status(key: KeyRef) -> Command {
    Command::new(0x00, 0x20, 0x00, key.p2())
}

/// CHANGE REFERENCE DATA, replacement only: `00 24 01 P2 Lc NEW` after VERIFY of the old value
/// (B.3; 7816-4 §11.5.7). Secret data.
pub fn change_reference_data(key: KeyRef, new: Zeroizing<Vec<u8>>) -> Command {
    Command::new(0x00, 0x24, 0x01, key.p2()).with_sensitive_data(new)
}

/// READ BINARY of the current EF at a 15-bit offset: `00 B0 P1 P2 Le` (B.4; 7816-4 §11.3.3).
///
/// # Errors
/// [`ApduError::InvalidParameter`] for an offset above `7FFF`.
pub fn read_binary(offset: u16, ne: u32) -> Result<Command, ApduError> {
    if offset > 0x7FFF {
        return Err(ApduError::InvalidParameter {
            what: "READ BINARY offset above 7FFF",
        });
    }
    let [p1, p2] = offset.to_be_bytes();
    Ok(Command::new(0x00, 0xB0, p1, p2).with_ne(ne))
}

/// READ BINARY by short EF identifier, which selects the EF implicitly: `00 B0 (80|SFI) OFF Le`
/// (B.4; 7816-4 §11.3.3). Only an 8-bit offset remains.
///
/// # Errors
/// [`ApduError::InvalidParameter`] for an SFI outside 1–30.
pub fn read_binary_sfi(sfi: u8, offset: u8, ne: u32) -> Result<Command, ApduError> {
    if !(1..=30).contains(&sfi) {
        return Err(ApduError::InvalidParameter {
            what: "short EF identifier outside 1-30",
        });
    }
    Ok(Command::new(0x00, 0xB0, 0x80 | sfi, offset).with_ne(ne))
}

/// READ RECORD of the current EF: `00 B2 REC 04 Le` (B.8; 7816-4 §11.4.3).
pub fn read_record(record: u8, ne: u32) -> Command {
    Command::new(0x00, 0xB2, record, 0x04).with_ne(ne)
}

/// GET RESPONSE: `00 C0 00 00 Le` (7816-4 §11.7.1).
pub fn get_response(ne: u32) -> Command {
    Command::new(0x00, 0xC0, 0x00, 0x00).with_ne(ne)
}

/// GET CHALLENGE of `n` bytes: `00 84 00 00 Le` (B.5; 7816-4 §11.5.3).
pub fn get_challenge(n: u32) -> Command {
    Command::new(0x00, 0x84, 0x00, 0x00).with_ne(n)
}

/// GET DATA: `00 CA P1 P2 Le` (B.8; 7816-4 §11.4.4).
pub fn get_data(tag: u16, ne: u32) -> Command {
    let [p1, p2] = tag.to_be_bytes();
    Command::new(0x00, 0xCA, p1, p2).with_ne(ne)
}

/// INTERNAL AUTHENTICATE: `00 88 00 P2 Lc CHALLENGE 00` (B.5; 7816-4 §11.5.2).
pub fn internal_authenticate(key: KeyRef, challenge: impl Into<Vec<u8>>) -> Command {
    Command::new(0x00, 0x88, 0x00, key.p2())
        .with_data(challenge)
        .with_ne(256)
}
