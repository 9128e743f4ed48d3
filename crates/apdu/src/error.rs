use thiserror::Error;

/// Why bytes could not become an APDU value, or a value could not become bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ApduError {
    /// A command APDU shorter than its four header bytes.
    #[error("command APDU of {len} bytes is shorter than the 4-byte header")]
    CommandTooShort {
        /// Length received.
        len: usize,
    },
    /// The length fields of a command APDU do not match its total length.
    #[error("command APDU length fields are inconsistent with its {len} bytes")]
    InconsistentLength {
        /// Total length received.
        len: usize,
    },
    /// A response APDU shorter than the two status bytes.
    #[error("response APDU of {len} bytes has no status word")]
    ResponseTooShort {
        /// Length received.
        len: usize,
    },
    /// Command data longer than the chosen encoding can carry.
    #[error("command data of {len} bytes exceeds the {max}-byte limit of this encoding")]
    DataTooLong {
        /// Data length.
        len: usize,
        /// Limit of the encoding.
        max: usize,
    },
    /// Expected response length (Ne) outside the range of the chosen encoding.
    #[error("expected length Ne = {ne} is outside 1..={max} for this encoding")]
    NeOutOfRange {
        /// Requested Ne.
        ne: u32,
        /// Limit of the encoding.
        max: u32,
    },
    /// The response assembler was fed more than its limits allow (a looping or hostile card).
    #[error("response assembly exceeded its limit: {what}")]
    AssemblyLimit {
        /// Which limit was exceeded.
        what: &'static str,
    },
    /// A `6Cxx` answer arrived to a command that was already resent with the card's Le.
    #[error("card asked twice for a different Le (6Cxx after resend)")]
    RepeatedWrongLe,
    /// A command parameter outside its range.
    #[error("invalid command parameter: {what}")]
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
    },
    /// A chunk size of zero was asked for when chaining.
    #[error("chain chunk size must be at least 1")]
    ZeroChunk,
    /// A TLV structure could not be parsed.
    #[error("TLV: {0}")]
    Tlv(#[from] crate::tlv::TlvError),
}
