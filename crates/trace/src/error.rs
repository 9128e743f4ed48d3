//! Errors of reading traces and replaying them.

/// Reading or writing a trace file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file could not be read or written.
    #[error("trace file I/O failed")]
    Io(#[source] std::io::Error),
    /// A line is not a valid event.
    #[error("line {line} of the trace is not a valid event")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The first line is not a header.
    #[error("the trace does not start with a header line")]
    MissingHeader,
    /// The header names another format.
    #[error("not a mynacard trace (format {format:?})")]
    WrongFormat {
        /// The header's `format`.
        format: String,
    },
    /// The header's version is newer than this reader.
    #[error("trace format version {version} is not supported (this reader knows 1)")]
    UnsupportedVersion {
        /// The header's `version`.
        version: u32,
    },
    /// A second header line.
    #[error("line {line} is a second header")]
    SecondHeader {
        /// 1-based line number.
        line: usize,
    },
}

/// Replaying a trace diverged from the recording; kept as the source of
/// [`mynacard_transport::TransportError::Backend`] with backend `"replay"`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The card layer sent another command than the recording holds at this point.
    #[error(
        "command {seq} differs from the recording: expected {}, got {}",
        hex::encode_upper(expected),
        hex::encode_upper(actual)
    )]
    CommandMismatch {
        /// The recorded exchange's `seq`.
        seq: u64,
        /// The recorded command (only the header when the recording redacted it).
        expected: Vec<u8>,
        /// The command sent (only the header when it carries a PIN or password).
        actual: Vec<u8>,
    },
    /// More commands were sent than the recording holds.
    #[error("the recording ended; {sent} commands were served")]
    Exhausted {
        /// Commands served before this one.
        sent: usize,
    },
    /// No more channel openings were recorded.
    #[error("the recording holds no further channel")]
    NoMoreSessions,
    /// The recorded open event holds no capabilities.
    #[error("the recorded channel has no capabilities")]
    NoCapabilities,
    /// Exchanges of the recorded session were not replayed.
    #[error("{remaining} recorded exchanges were not replayed")]
    NotFinished {
        /// Exchanges left.
        remaining: usize,
    },
    /// The recording holds a backend failure at this point; replayed as such.
    #[error("recorded failure: {message}")]
    Recorded {
        /// The recorded text.
        message: String,
    },
}
