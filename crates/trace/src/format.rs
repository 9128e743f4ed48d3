//! The trace file format, version 1: JSON Lines, one event per line, bytes in upper-case hex.
//!
//! ```text
//! {"type":"header","format":"mynacard-trace","version":1,"created_unix_ms":1767225600000,"redaction":"personal-data"}
//! {"type":"open","t_us":12,"transport":"Virtual PCD 00 00","capabilities":{"max_command_len":65544,"max_response_len":65538,"extended_length":true,"interface":"contact","atr":"3BE000FF8131FE4514"}}
//! {"type":"exchange","seq":0,"t_us":40,"took_us":131,"command":"00A4040C0AD392F000260100000001","response":"9000"}
//! {"type":"exchange","seq":1,"t_us":260,"took_us":120,"command":"00200080","command_redacted":true,"response":"63C3"}
//! {"type":"exchange","seq":2,"t_us":500,"took_us":97,"command":"00B0000000","response":"30820410000000…9000","response_redacted":true}
//! {"type":"reset","t_us":900}
//! {"type":"exchange","seq":3,"t_us":950,"took_us":1500011,"command":"00B0000000","error":{"kind":"card_removed","message":"card removed"}}
//! ```
//!
//! - `header` is the first line. Readers reject another `format` or a `version` they do not
//!   know; fields they do not know are ignored, so version 1 readers read files with additions.
//! - `t_us` counts microseconds from the creation of the recorder; `took_us` is the time the
//!   transport took.
//! - `open` starts a channel (a card session); the exchanges after it belong to it. A failed
//!   open has `error` instead of `capabilities`.
//! - `command_redacted`: the command carried a PIN or password; only its 4 header bytes are
//!   recorded (not even the length).
//! - `response_redacted`: the response data was personal (text/visual/common AP files, the JPKI
//!   signing certificate); it is replaced by zero bytes of the same length, the status word and
//!   a certificate's outer DER header kept.
//! - `reset`: the channel reported a card reset before the next exchange.
//! - `error.kind` is one of `no_reader`, `no_card`, `card_removed`, `card_reset`,
//!   `sharing_violation`, `timeout` (with `timeout_ms`), `cancelled`, `command_too_long`,
//!   `malformed_response`, `backend`; `message` is the error's text with its sources.

use serde::{Deserialize, Serialize};

/// The value of the header's `format` field.
pub const FORMAT_NAME: &str = "mynacard-trace";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// How much a trace hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Redaction {
    /// PIN and password bytes and personal-data responses are replaced. The default; the only
    /// choice for a real card.
    #[default]
    PersonalData,
    /// Nothing is replaced. Only for simulated or test cards, whose data is not anyone's.
    None,
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// The first line.
    Header(Header),
    /// A channel was opened (or failed to open).
    Open(Open),
    /// One command and its outcome.
    Exchange(Exchange),
    /// The channel reported a card reset.
    Reset(Reset),
}

/// The header line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Header {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Wall-clock creation time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// What was redacted.
    pub redaction: Redaction,
    /// Free text from whoever recorded the trace (reader model, symptom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A channel opening.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Open {
    /// Microseconds since the recorder started.
    pub t_us: u64,
    /// The transport's name (reader name).
    pub transport: String,
    /// The channel's capabilities, when it opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<CapabilitiesRecord>,
    /// Why it did not open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
}

/// [`mynacard_transport::Capabilities`] as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CapabilitiesRecord {
    /// Longest command.
    pub max_command_len: usize,
    /// Longest response.
    pub max_response_len: usize,
    /// Extended length passes.
    pub extended_length: bool,
    /// `contact`, `contactless` or `unknown`.
    pub interface: String,
    /// The ATR, hex.
    #[serde(with = "hex_bytes")]
    pub atr: Vec<u8>,
}

/// One exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Exchange {
    /// Position in the file, from 0.
    pub seq: u64,
    /// Microseconds since the recorder started, when the command was handed to the transport.
    pub t_us: u64,
    /// Microseconds until the transport answered.
    pub took_us: u64,
    /// The command (only the header when `command_redacted`).
    #[serde(with = "hex_bytes")]
    pub command: Vec<u8>,
    /// The command's data was secret and is left out.
    #[serde(default, skip_serializing_if = "is_false")]
    pub command_redacted: bool,
    /// The response, data and status word.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_hex_bytes"
    )]
    pub response: Option<Vec<u8>>,
    /// The response's data was personal and is replaced.
    #[serde(default, skip_serializing_if = "is_false")]
    pub response_redacted: bool,
    /// The transport's error instead of a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorRecord>,
}

/// A reset report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Reset {
    /// Microseconds since the recorder started.
    pub t_us: u64,
}

/// A [`mynacard_transport::TransportError`] as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorRecord {
    /// The variant, in snake case.
    pub kind: String,
    /// The error's text followed by its sources.
    pub message: String,
    /// For `timeout`: the limit in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// For `command_too_long` and `malformed_response`: the length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<usize>,
    /// For `command_too_long`: the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<usize>,
    /// For `no_reader`: the reader asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode_upper(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    // serde's `with` hands the field as `&Option<Vec<u8>>`.
    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&hex::encode_upper(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(s) => hex::decode(s).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}
