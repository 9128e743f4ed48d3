//! Response APDUs (ISO/IEC 7816-4 §5.1): data followed by SW1-SW2.

use alloc::vec::Vec;
use core::fmt;

use crate::{ApduError, StatusWord};

/// A response APDU: the data field and the status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// Response data (may be empty).
    pub data: Vec<u8>,
    /// SW1-SW2.
    pub sw: StatusWord,
}

impl Response {
    /// A response with data and a status word.
    pub fn new(data: impl Into<Vec<u8>>, sw: StatusWord) -> Self {
        Response {
            data: data.into(),
            sw,
        }
    }

    /// A data-less response with a status word.
    pub const fn status(sw: StatusWord) -> Self {
        Response {
            data: Vec::new(),
            sw,
        }
    }

    /// Parses a response APDU.
    ///
    /// # Errors
    /// [`ApduError::ResponseTooShort`] when fewer than two bytes arrive (a reader that lost the
    /// card can report success with an empty buffer).
    pub fn parse(bytes: &[u8]) -> Result<Response, ApduError> {
        match bytes {
            [data @ .., sw1, sw2] => Ok(Response {
                data: data.to_vec(),
                sw: StatusWord::from_bytes(*sw1, *sw2),
            }),
            _ => Err(ApduError::ResponseTooShort { len: bytes.len() }),
        }
    }

    /// Encodes data followed by SW1-SW2.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.len() + 2);
        out.extend_from_slice(&self.data);
        out.extend_from_slice(&self.sw.to_bytes());
        out
    }

    /// `9000`.
    pub fn is_success(&self) -> bool {
        self.sw.is_success()
    }
}

impl fmt::Debug for Response {
    // Response data may be personal data; only its length is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("data_len", &self.data.len())
            .field("sw", &format_args!("{:04X}", self.sw.to_u16()))
            .finish()
    }
}
