//! Command chaining (ISO/IEC 7816-4 §5.3.3) as a pure splitter.

use alloc::vec::Vec;

use crate::{ApduError, Command};

/// The chaining bit of the class byte.
pub const CLA_CHAINING: u8 = 0x10;

/// Splits `command` into a chain whose data fields hold at most `max_chunk` bytes each.
///
/// Every command but the last has the chaining bit (`CLA | 0x10`) set and no Le; the last keeps
/// the original class and Ne. A command whose data already fits is returned alone, unchanged.
/// Secret data stays secret in every chunk.
///
/// # Errors
/// [`ApduError::ZeroChunk`] when `max_chunk` is 0.
pub fn split(command: &Command, max_chunk: usize) -> Result<Vec<Command>, ApduError> {
    if max_chunk == 0 {
        return Err(ApduError::ZeroChunk);
    }
    let data = command.data_bytes();
    if data.len() <= max_chunk {
        return Ok(alloc::vec![command.clone()]);
    }
    let chunks: Vec<&[u8]> = data.chunks(max_chunk).collect();
    let last = chunks.len() - 1;
    Ok(chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let part = command.with_same_kind_data(chunk.to_vec());
            if i == last {
                part
            } else {
                let mut part = part.without_ne();
                part.cla |= CLA_CHAINING;
                part
            }
        })
        .collect())
}
