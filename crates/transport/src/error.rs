use std::time::Duration;

/// Why a transport could not move the bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The named reader, or any reader, is not there.
    #[error("no reader{}", name.as_ref().map(|n| format!(" named {n:?}")).unwrap_or_default())]
    NoReader {
        /// The reader asked for, if a name was given.
        name: Option<String>,
    },
    /// The reader is there but holds no card.
    #[error("no card in the reader")]
    NoCard,
    /// The card was removed (or the NFC tag was lost) while in use.
    #[error("card removed")]
    CardRemoved,
    /// The card was reset by someone else; selections and verified PINs are gone.
    #[error("card was reset")]
    CardReset,
    /// Another program holds the card exclusively.
    #[error("card is in use by another program")]
    SharingViolation,
    /// No answer within the time allowed.
    #[error("no answer from the card within {0:?}")]
    Timeout(Duration),
    /// The caller cancelled the wait.
    #[error("cancelled")]
    Cancelled,
    /// The command is longer than the channel can carry.
    #[error("command of {len} bytes exceeds the channel's {max}-byte limit")]
    CommandTooLong {
        /// Command length.
        len: usize,
        /// Channel limit.
        max: usize,
    },
    /// The backend answered with fewer than the two status bytes.
    #[error("response of {len} bytes has no status word")]
    MalformedResponse {
        /// Bytes received.
        len: usize,
    },
    /// Any other backend failure, with its source kept.
    #[error("{backend} transport failure")]
    Backend {
        /// Which backend (`"pcsc"`, `"nfc"`, `"sim"`).
        backend: &'static str,
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl TransportError {
    /// A backend failure with its source.
    pub fn backend(
        backend: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        TransportError::Backend {
            backend,
            source: source.into(),
        }
    }

    /// Whether the card is gone from the reader (as opposed to a reader or backend failure).
    pub fn is_card_gone(&self) -> bool {
        matches!(self, TransportError::CardRemoved | TransportError::NoCard)
    }

    /// Whether opening a new channel and trying again may succeed. The card layer still never
    /// repeats a command that spends a PIN attempt.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::CardReset
                | TransportError::SharingViolation
                | TransportError::Timeout(_)
                | TransportError::CardRemoved
                | TransportError::NoCard
        )
    }
}
