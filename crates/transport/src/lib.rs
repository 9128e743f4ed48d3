//! The transport seam of mynacard: traits and types only.
//!
//! A [`Transport`] (a PC/SC reader, a phone's NFC stack, the simulated card) opens a
//! [`CardChannel`]: exclusive use of one card, through which command APDUs travel as bytes.
//! Backends only move bytes, report [`Capabilities`] and resets; all ISO 7816 plumbing
//! (GET RESPONSE, chaining, extended length choice, status words) lives above them.
//!
//! Everything is `async` through `async-trait` and independent of any runtime. Synchronous
//! callers drive it with [`blocking::block_on`] or wrap a channel in
//! [`blocking::BlockingChannel`].
//!
//! With the `mock` feature, `MockCardChannel` (mockall) is available for tests.

mod caps;
mod error;

pub mod blocking;

pub use caps::{Capabilities, Interface};
pub use error::TransportError;

use async_trait::async_trait;

/// A source of cards: a reader, an NFC session, a simulated card.
#[async_trait]
pub trait Transport: Send + Sync {
    /// A human-readable name (the reader name, "NFC", "simulated card").
    fn name(&self) -> String;

    /// Opens exclusive use of the card currently present.
    ///
    /// # Errors
    /// [`TransportError::NoCard`] when no card is present, [`TransportError::NoReader`] when the
    /// reader is gone, [`TransportError::SharingViolation`] when another program holds the card.
    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError>;
}

/// Exclusive use of one card: command bytes in, response bytes out.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait CardChannel: Send {
    /// Sends one command APDU and returns the whole response APDU (data followed by SW1-SW2).
    ///
    /// Implementations never retransmit on their own, and return an error rather than a response
    /// shorter than two bytes.
    ///
    /// # Errors
    /// [`TransportError`]; after [`TransportError::CardRemoved`] or a timeout the caller cannot
    /// know whether the card processed the command.
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// What this channel can carry.
    fn capabilities(&self) -> Capabilities;

    /// Whether the card was reset (by another program, the reader or a power loss) since the last
    /// call; reading the flag clears it. After a reset every application selection and every
    /// verified PIN on the card is gone.
    fn was_reset(&mut self) -> bool;
}

#[async_trait]
impl<T: Transport + ?Sized> Transport for Box<T> {
    fn name(&self) -> String {
        (**self).name()
    }
    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        (**self).open().await
    }
}

#[async_trait]
impl<C: CardChannel + ?Sized> CardChannel for Box<C> {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command).await
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn was_reset(&mut self) -> bool {
        (**self).was_reset()
    }
}

/// A borrowed channel is a channel: a card-layer session can run over a channel (or a PC/SC
/// transaction guard) that the caller keeps and uses again afterwards.
#[async_trait]
impl<C: CardChannel + ?Sized> CardChannel for &mut C {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit(command).await
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn was_reset(&mut self) -> bool {
        (**self).was_reset()
    }
}
