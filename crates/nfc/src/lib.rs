//! A transport for phone NFC stacks: the host app supplies `transceive`.
//!
//! On a phone the platform owns the radio: Android's `IsoDep`, iOS's `NFCISO7816Tag`. The host
//! app discovers the card, connects, and hands this crate an [`NfcTag`]: a `transceive` that
//! sends one command APDU and returns the response, and the session's limits ([`TagInfo`]).
//! [`NfcTransport`] turns that into a [`mynacard_transport::Transport`], so the whole card layer
//! runs unchanged over the phone's NFC.
//!
//! # Timeouts
//!
//! On-card RSA signing over NFC takes from a few hundred milliseconds to several seconds (the
//! card draws its power from the field). Android's default `IsoDep` timeout is far too short for
//! it; phone apps set 5–20 s. [`NfcTransport::open`](mynacard_transport::Transport::open) asks the
//! host to set [`NfcOptions::timeout`] (default 20 s) through [`NfcTag::set_timeout`]. iOS has no
//! per-command timeout (the reader session as a whole times out after 60 s), so an iOS host
//! ignores the call.
//!
//! # Tag loss
//!
//! When the card leaves the field the host reports [`NfcError::TagLost`]; the channel returns
//! [`TransportError::CardRemoved`] and the transport refuses new channels
//! ([`TransportError::NoCard`]) until the host supplies a new tag. A VERIFY interrupted by tag loss
//! may or may not have been counted by the card: the card layer never retries it on its own.
//!
//! # Threads
//!
//! `transceive` is `async`, so a host with a callback API (iOS `sendCommand`) completes a future.
//! Android's `IsoDep.transceive` blocks and must not run on the main thread; the usual pattern is
//! to run the whole card session on the thread Android calls `onTagDiscovered` on, driving it
//! with [`mynacard_transport::blocking::block_on`], and to let `transceive` block there.
//!
//! See the crate's README for Kotlin and Swift sketches of the host side and the iOS AID
//! entitlement list.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, Interface, Transport, TransportError};

/// What the host's NFC session allows.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TagInfo {
    /// Longest command APDU the host can send (Android `IsoDep.getMaxTransceiveLength()`; iOS:
    /// 261, or 65544 when extended length is supported).
    pub max_transceive_length: usize,
    /// Whether extended-length APDUs pass (Android `IsoDep.isExtendedLengthApduSupported()`).
    pub extended_length: bool,
    /// Identification bytes for diagnostics: the ISO 14443-4 Type B higher-layer response
    /// (`IsoDep.getHiLayerResponse()`) or Type A historical bytes; reported as the channel's ATR.
    /// Never used to identify the card.
    pub identification: Vec<u8>,
}

impl TagInfo {
    /// A session with these limits and no identification bytes.
    pub fn new(max_transceive_length: usize, extended_length: bool) -> Self {
        TagInfo {
            max_transceive_length,
            extended_length,
            identification: Vec::new(),
        }
    }

    /// Sets [`TagInfo::identification`].
    #[must_use]
    pub fn with_identification(mut self, bytes: Vec<u8>) -> Self {
        self.identification = bytes;
        self
    }
}

/// A host NFC failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NfcError {
    /// The card left the field (Android `TagLostException`, iOS `NFCReaderError` tag connection
    /// lost).
    #[error("the tag left the field")]
    TagLost,
    /// The host's timeout expired before the card answered.
    #[error("the tag did not answer in time")]
    Timeout,
    /// The host's reader session ended (iOS session invalidated, Android reader mode disabled).
    #[error("the NFC session ended")]
    SessionEnded,
    /// Any other host failure, with its source kept.
    #[error("host NFC failure")]
    Host(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// The host side of an NFC session with one card: implemented by the app (or an FFI binding).
#[async_trait]
pub trait NfcTag: Send + Sync {
    /// The session's limits.
    fn info(&self) -> TagInfo;

    /// Sets the host's per-command timeout (Android `IsoDep.setTimeout`). Hosts without one
    /// return `Ok(())`.
    ///
    /// # Errors
    /// [`NfcError`] when the host cannot set it.
    fn set_timeout(&self, timeout: Duration) -> Result<(), NfcError>;

    /// Sends one command APDU and returns the whole response APDU (data and SW1-SW2).
    ///
    /// # Errors
    /// [`NfcError::TagLost`] when the card left the field; other [`NfcError`]s as they come.
    async fn transceive(&self, command: &[u8]) -> Result<Vec<u8>, NfcError>;
}

/// Options for an [`NfcTransport`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NfcOptions {
    /// Per-command timeout asked of the host. Default 20 s, long enough for on-card RSA over a
    /// weak field.
    pub timeout: Duration,
    /// Never use extended length, whatever the host reports (for phones that report it and then
    /// fail). Default `false`.
    pub force_short: bool,
}

impl Default for NfcOptions {
    fn default() -> Self {
        NfcOptions {
            timeout: Duration::from_secs(20),
            force_short: false,
        }
    }
}

impl NfcOptions {
    /// Sets [`NfcOptions::timeout`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`NfcOptions::force_short`].
    #[must_use]
    pub fn force_short(mut self, force: bool) -> Self {
        self.force_short = force;
        self
    }
}

/// The state one tag session shares between the transport and its channel.
#[derive(Debug, Default)]
struct TagState {
    /// A channel is open: the card is used by one session at a time.
    in_use: AtomicBool,
    /// The tag left the field; it never comes back in this session.
    lost: AtomicBool,
}

/// One card presented to the phone, as a [`Transport`].
pub struct NfcTransport {
    tag: Arc<dyn NfcTag>,
    options: NfcOptions,
    state: Arc<TagState>,
}

impl std::fmt::Debug for NfcTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcTransport")
            .field("options", &self.options)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl NfcTransport {
    /// A transport over the host's tag, with default options.
    pub fn new(tag: Arc<dyn NfcTag>) -> Self {
        NfcTransport::with_options(tag, NfcOptions::default())
    }

    /// A transport over the host's tag.
    pub fn with_options(tag: Arc<dyn NfcTag>, options: NfcOptions) -> Self {
        NfcTransport {
            tag,
            options,
            state: Arc::new(TagState::default()),
        }
    }

    /// Whether the tag left the field.
    pub fn is_lost(&self) -> bool {
        self.state.lost.load(Ordering::SeqCst)
    }

    /// Opens the channel and returns its concrete type.
    ///
    /// # Errors
    /// As [`Transport::open`].
    pub fn open_channel(&self) -> Result<NfcChannel, TransportError> {
        if self.is_lost() {
            return Err(TransportError::NoCard);
        }
        if self.state.in_use.swap(true, Ordering::SeqCst) {
            return Err(TransportError::SharingViolation);
        }
        if let Err(e) = self.tag.set_timeout(self.options.timeout) {
            self.state.in_use.store(false, Ordering::SeqCst);
            return Err(map_error(e, self.options.timeout, &self.state));
        }
        Ok(NfcChannel {
            tag: Arc::clone(&self.tag),
            capabilities: capabilities(&self.tag.info(), self.options.force_short),
            timeout: self.options.timeout,
            state: Arc::clone(&self.state),
        })
    }
}

/// The channel's capabilities from what the host reports.
pub fn capabilities(info: &TagInfo, force_short: bool) -> Capabilities {
    let atr = info.identification.clone();
    if info.extended_length && !force_short {
        let full = Capabilities::extended(Interface::Contactless, atr);
        let command = full.max_command_len.min(info.max_transceive_length);
        let response = full.max_response_len;
        full.with_limits(command, response)
    } else {
        let short = Capabilities::short(Interface::Contactless, atr);
        let command = short.max_command_len.min(info.max_transceive_length);
        let response = short.max_response_len;
        short.with_limits(command, response)
    }
}

fn map_error(err: NfcError, timeout: Duration, state: &TagState) -> TransportError {
    match err {
        NfcError::TagLost | NfcError::SessionEnded => {
            state.lost.store(true, Ordering::SeqCst);
            TransportError::CardRemoved
        }
        NfcError::Timeout => TransportError::Timeout(timeout),
        other => TransportError::backend("nfc", other),
    }
}

#[async_trait]
impl Transport for NfcTransport {
    fn name(&self) -> String {
        "NFC".to_owned()
    }

    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        Ok(Box::new(self.open_channel()?))
    }
}

/// An open NFC channel. Dropping it lets the transport open another.
pub struct NfcChannel {
    tag: Arc<dyn NfcTag>,
    capabilities: Capabilities,
    timeout: Duration,
    state: Arc<TagState>,
}

impl std::fmt::Debug for NfcChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NfcChannel")
            .field("capabilities", &self.capabilities)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Drop for NfcChannel {
    fn drop(&mut self) {
        self.state.in_use.store(false, Ordering::SeqCst);
    }
}

#[async_trait]
impl CardChannel for NfcChannel {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.state.lost.load(Ordering::SeqCst) {
            return Err(TransportError::CardRemoved);
        }
        if command.len() > self.capabilities.max_command_len {
            return Err(TransportError::CommandTooLong {
                len: command.len(),
                max: self.capabilities.max_command_len,
            });
        }
        let response = self
            .tag
            .transceive(command)
            .await
            .map_err(|e| map_error(e, self.timeout, &self.state))?;
        if response.len() < 2 {
            return Err(TransportError::MalformedResponse {
                len: response.len(),
            });
        }
        Ok(response)
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    /// Always `false`: over NFC a card that lost power left the field, which is reported as
    /// [`TransportError::CardRemoved`] and ends the session.
    fn was_reset(&mut self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests;
