/// The physical interface between the reader and the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Interface {
    /// Contact (ISO/IEC 7816-3, T=1 for the My Number Card).
    Contact,
    /// Contactless (ISO/IEC 14443-4 Type B).
    Contactless,
    /// Not reported by the backend.
    #[default]
    Unknown,
}

/// What a channel can carry. Backends report what they know; the card layer intersects these
/// with the card's own abilities.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Longest command APDU the channel accepts, in bytes (header and length fields included).
    pub max_command_len: usize,
    /// Longest response APDU the channel can return, in bytes (status word included).
    pub max_response_len: usize,
    /// Whether extended-length APDUs pass through.
    pub extended_length: bool,
    /// Contact or contactless.
    pub interface: Interface,
    /// The answer-to-reset (or the reader's synthesised ATR for contactless cards). Never rely on
    /// it to identify the card.
    pub atr: Vec<u8>,
}

impl Capabilities {
    /// Short APDUs only: 261-byte commands (4 + 1 + 255 + 1), 258-byte responses.
    pub fn short(interface: Interface, atr: Vec<u8>) -> Self {
        Capabilities {
            max_command_len: 261,
            max_response_len: 258,
            extended_length: false,
            interface,
            atr,
        }
    }

    /// Extended APDUs: commands up to 65544 bytes, responses up to 65538 bytes.
    pub fn extended(interface: Interface, atr: Vec<u8>) -> Self {
        Capabilities {
            max_command_len: 4 + 3 + 65_535 + 2,
            max_response_len: 65_536 + 2,
            extended_length: true,
            interface,
            atr,
        }
    }

    /// The same capabilities with other length limits (for example a phone's maximum transceive
    /// length). Limits that cannot carry an extended APDU also clear `extended_length`.
    #[must_use]
    pub fn with_limits(mut self, max_command_len: usize, max_response_len: usize) -> Self {
        self.max_command_len = max_command_len;
        self.max_response_len = max_response_len;
        // An extended case-4 header alone is 9 bytes; below 262 bytes nothing needs extended length.
        if max_command_len <= 261 && max_response_len <= 258 {
            self.extended_length = false;
        }
        self
    }

    /// Response data bytes that fit in one response (status word excluded).
    pub fn max_response_data(&self) -> usize {
        self.max_response_len.saturating_sub(2)
    }
}
