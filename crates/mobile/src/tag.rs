//! The phone's NFC tag as a callback interface, and its adapter to `mynacard-nfc`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mynacard_nfc::{NfcError, TagInfo};

/// A failure of the phone's NFC stack, as the app reports it from [`NfcTag::transceive`].
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum TagError {
    /// The card left the field (Android `TagLostException`, iOS
    /// `readerTransceiveErrorTagConnectionLost`).
    #[error("the tag left the field")]
    TagLost,
    /// The phone's timeout expired before the card answered.
    #[error("the tag did not answer in time")]
    Timeout,
    /// The reader session ended (iOS session invalidated, Android reader mode disabled).
    #[error("the NFC session ended")]
    SessionEnded,
    /// Any other failure of the phone's NFC stack (also what a callback that throws anything
    /// else becomes).
    #[error("NFC failure: {reason}")]
    Host {
        /// What the phone said (for the app's log; never card data).
        reason: String,
    },
}

// A callback that throws something undeclared (or a binding failure) is a host failure.
impl From<uniffi::UnexpectedUniFFICallbackError> for TagError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TagError::Host { reason: e.reason }
    }
}

impl From<TagError> for NfcError {
    fn from(e: TagError) -> Self {
        match e {
            TagError::TagLost => NfcError::TagLost,
            TagError::Timeout => NfcError::Timeout,
            TagError::SessionEnded => NfcError::SessionEnded,
            other @ TagError::Host { .. } => NfcError::Host(Box::new(other)),
        }
    }
}

/// The phone's NFC session with one card, implemented by the app (Kotlin over `IsoDep`, Swift
/// over `NFCISO7816Tag`). Called on the thread that runs the flow.
#[uniffi::export(with_foreign)]
pub trait NfcTag: Send + Sync {
    /// Sends one command APDU and returns the whole response (data and SW1-SW2). Blocks until
    /// the card answers (Android `IsoDep.transceive`; iOS: wait for `sendCommand`'s completion).
    ///
    /// # Errors
    /// [`TagError::TagLost`] when the card left the field; another [`TagError`] as it comes.
    fn transceive(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TagError>;

    /// The longest command APDU the phone sends (Android `IsoDep.getMaxTransceiveLength()`;
    /// iOS 261, or 65544 with extended length).
    fn max_transceive_length(&self) -> u32;

    /// Whether extended-length APDUs pass (Android `IsoDep.isExtendedLengthApduSupported()`).
    fn extended_length_supported(&self) -> bool;

    /// Sets the per-command timeout (Android `IsoDep.setTimeout`); the library asks 20 000 ms,
    /// as on-card RSA over NFC takes seconds. iOS has none and returns at once.
    ///
    /// # Errors
    /// A [`TagError`] when the phone cannot set it.
    fn set_timeout(&self, millis: u32) -> Result<(), TagError>;
}

/// The app's tag as the NFC transport's host side.
pub(crate) struct HostTag(pub(crate) Arc<dyn NfcTag>);

#[async_trait]
impl mynacard_nfc::NfcTag for HostTag {
    fn info(&self) -> TagInfo {
        let max = usize::try_from(self.0.max_transceive_length()).unwrap_or(usize::MAX);
        TagInfo::new(max, self.0.extended_length_supported())
    }

    fn set_timeout(&self, timeout: Duration) -> Result<(), NfcError> {
        let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
        self.0.set_timeout(millis).map_err(NfcError::from)
    }

    async fn transceive(&self, command: &[u8]) -> Result<Vec<u8>, NfcError> {
        self.0.transceive(command.to_vec()).map_err(NfcError::from)
    }
}
