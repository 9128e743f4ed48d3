//! How PC/SC failures become [`TransportError`]s.

use mynacard_transport::TransportError;

/// The PC/SC call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// `SCardEstablishContext`.
    EstablishContext,
    /// `SCardListReaders`.
    ListReaders,
    /// `SCardGetStatusChange`.
    GetStatusChange,
    /// `SCardConnect`.
    Connect,
    /// `SCardReconnect`.
    Reconnect,
    /// `SCardBeginTransaction`.
    BeginTransaction,
    /// `SCardEndTransaction`.
    EndTransaction,
    /// `SCardTransmit`.
    Transmit,
    /// `SCardStatus`.
    Status,
}

/// A failure of this backend, kept as the source of [`TransportError::Backend`] (backend
/// `"pcsc"`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PcscError {
    /// A PC/SC call failed with an error that has no more specific [`TransportError`] variant.
    #[error("PC/SC {operation:?} failed")]
    Pcsc {
        /// The call.
        operation: Operation,
        /// The PC/SC error code.
        #[source]
        source: pcsc::Error,
    },
    /// The card thread of this channel stopped; open a new channel.
    #[error("the card thread of this channel stopped")]
    WorkerStopped,
    /// No thread could be started for the card or the wait.
    #[error("could not start a PC/SC thread")]
    Thread(#[source] std::io::Error),
    /// The deadline thread could not be started, so no timeout could be armed.
    #[error("could not start the deadline thread")]
    TimerUnavailable,
    /// A reader name contains a NUL byte.
    #[error("reader name contains a NUL byte")]
    BadReaderName(#[source] std::ffi::NulError),
}

impl PcscError {
    /// The PC/SC error code, when this is one.
    pub fn pcsc_error(&self) -> Option<pcsc::Error> {
        match self {
            PcscError::Pcsc { source, .. } => Some(*source),
            _ => None,
        }
    }
}

/// Where the error happened, which changes what some codes mean: "no smart card" when opening is
/// [`TransportError::NoCard`], inside an open channel it means the card left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Opening,
    InChannel,
}

/// Maps a PC/SC error. Errors that name a situation the card layer acts on become their own
/// variant; every other code is kept as the source of [`TransportError::Backend`].
pub(crate) fn map(
    operation: Operation,
    err: pcsc::Error,
    phase: Phase,
    reader: Option<&str>,
) -> TransportError {
    use pcsc::Error as E;
    match err {
        E::RemovedCard => TransportError::CardRemoved,
        E::NoSmartcard if phase == Phase::InChannel => TransportError::CardRemoved,
        E::NoSmartcard => TransportError::NoCard,
        E::ResetCard | E::UnpoweredCard => TransportError::CardReset,
        E::SharingViolation => TransportError::SharingViolation,
        E::Cancelled | E::CancelledByUser => TransportError::Cancelled,
        E::UnknownReader | E::ReaderUnavailable | E::NoReadersAvailable => {
            TransportError::NoReader {
                name: reader.map(str::to_owned),
            }
        }
        source => backend(PcscError::Pcsc { operation, source }),
    }
}

pub(crate) fn backend(err: PcscError) -> TransportError {
    TransportError::backend("pcsc", err)
}

/// The PC/SC error kept in a [`TransportError`] produced by this crate, if any.
///
/// ```
/// use mynacard_transport::TransportError;
/// let none = TransportError::CardRemoved;
/// assert_eq!(mynacard_pcsc::pcsc_error_of(&none), None);
/// ```
pub fn pcsc_error_of(err: &TransportError) -> Option<pcsc::Error> {
    match err {
        TransportError::Backend { source, .. } => source
            .downcast_ref::<PcscError>()
            .and_then(PcscError::pcsc_error),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn removal_reset_and_sharing_have_their_own_variants() {
        let m = |e| map(Operation::Transmit, e, Phase::InChannel, Some("R"));
        assert!(matches!(
            m(pcsc::Error::RemovedCard),
            TransportError::CardRemoved
        ));
        assert!(matches!(
            m(pcsc::Error::NoSmartcard),
            TransportError::CardRemoved
        ));
        assert!(matches!(
            m(pcsc::Error::ResetCard),
            TransportError::CardReset
        ));
        assert!(matches!(
            m(pcsc::Error::UnpoweredCard),
            TransportError::CardReset
        ));
        assert!(matches!(
            m(pcsc::Error::SharingViolation),
            TransportError::SharingViolation
        ));
        assert!(matches!(
            m(pcsc::Error::Cancelled),
            TransportError::Cancelled
        ));
        assert!(
            matches!(m(pcsc::Error::UnknownReader), TransportError::NoReader { name: Some(n) } if n == "R")
        );
    }

    #[test]
    fn no_card_when_opening_is_no_card() {
        let e = map(
            Operation::Connect,
            pcsc::Error::NoSmartcard,
            Phase::Opening,
            None,
        );
        assert!(matches!(e, TransportError::NoCard));
    }

    #[test]
    fn other_codes_keep_their_source() {
        for code in [
            pcsc::Error::NoService,
            pcsc::Error::NotTransacted,
            pcsc::Error::CommError,
            pcsc::Error::ServiceStopped,
        ] {
            let e = map(Operation::Transmit, code, Phase::InChannel, None);
            assert_eq!(pcsc_error_of(&e), Some(code));
            let source = e.source().expect("source kept");
            let ours = source.downcast_ref::<PcscError>().expect("PcscError");
            let theirs = ours.source().expect("pcsc error kept");
            assert!(theirs.downcast_ref::<pcsc::Error>() == Some(&code));
        }
    }
}
