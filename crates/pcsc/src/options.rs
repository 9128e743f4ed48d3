//! How a [`crate::PcscTransport`] connects and behaves.

use std::time::Duration;

use mynacard_transport::Interface;

/// How the card is shared with other programs while a channel is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Share {
    /// Other programs may connect too (`SCARD_SHARE_SHARED`). With
    /// [`PcscOptions::hold_transaction`] (the default) they still cannot interleave commands with
    /// ours while the channel is open: their commands, and with pcsc-lite even their connects,
    /// wait until it closes (measured with pcscd 1.9.9).
    #[default]
    Shared,
    /// Nobody else may connect while the channel is open (`SCARD_SHARE_EXCLUSIVE`); opening fails
    /// with `SharingViolation` while another program is connected.
    Exclusive,
}

/// What happens to the card when a channel closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CloseAction {
    /// Warm reset: every selection and verified PIN on the card is cleared, so the next program
    /// cannot use a PIN this one verified. The default.
    #[default]
    Reset,
    /// Leave the card as it is (verified PINs stay verified while the card stays powered).
    Leave,
    /// Power the card down.
    Unpower,
}

/// Whether the reader passes extended-length APDUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExtendedLength {
    /// Ask the reader driver (PC/SC part 10 `GET_TLV_PROPERTIES`, property
    /// `dwMaxAPDUDataSize`): a non-zero value means extended APDUs with that much data pass.
    /// Readers that do not answer are looked up in a short table of readers known by name
    /// (vsmartcard's `Virtual PCD`, whose driver does not answer the query but frames up to
    /// 65535 bytes); any other is taken as short-only. Configure [`ExtendedLength::Supported`]
    /// for a reader known to pass extended APDUs that does not say so.
    #[default]
    Auto,
    /// The reader is known to pass extended APDUs (a configured value for a reader that does not
    /// report it).
    Supported,
    /// Short APDUs only, whatever the reader says.
    ShortOnly,
}

/// Options for opening PC/SC channels. Build with [`PcscOptions::default`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PcscOptions {
    /// Sharing mode; default [`Share::Shared`].
    pub share: Share,
    /// Hold one PC/SC transaction for the whole life of a channel, so no other program's
    /// commands land between ours (another program selecting an application would drop our
    /// verified PIN). Default `true`. Set it to `false` to share the card between groups of
    /// commands made with [`crate::PcscChannel::transaction`].
    pub hold_transaction: bool,
    /// Extended-length detection; default [`ExtendedLength::Auto`].
    pub extended_length: ExtendedLength,
    /// Contact or contactless, when known better than the built-in detection (ATR shape and
    /// reader name). Default `None` (detect).
    pub interface: Option<Interface>,
    /// How long one command may take before the channel reports
    /// [`mynacard_transport::TransportError::Timeout`]. On-card RSA signing takes up to a few
    /// seconds on slow readers. Default 30 s; `None` waits forever.
    ///
    /// PC/SC cannot abort a command: when a card or reader stops answering, the caller is
    /// released at the deadline, while the call stays blocked on the channel's thread until the
    /// card answers or leaves. Whether the card processed the command is then unknown.
    /// Commands sent on the same channel meanwhile wait behind it, each with its own deadline,
    /// and commands whose caller gave up are never sent. A new channel to the same reader
    /// opens once the stuck command returns (pcscd makes connects to that reader wait,
    /// measured), so close or drop the stuck channel and open a new one.
    pub command_timeout: Option<Duration>,
    /// How long opening (connect, and the transaction when another program holds one) may take,
    /// and how long [`crate::PcscChannel::transaction`] may wait for another program's
    /// transaction. Default 30 s.
    pub open_timeout: Option<Duration>,
    /// After an ambiguous failure (an empty response, `NotTransacted`), how long to watch the
    /// reader for the card leaving before calling it an I/O error. pcscd notices removal within
    /// one 400 ms poll. Default 1.5 s.
    pub removal_settle: Duration,
    /// After a reset by someone else, select again the application that was selected. Default
    /// `true`. PINs are never re-verified; [`mynacard_transport::CardChannel::was_reset`] reports
    /// the reset either way.
    pub restore_selection: bool,
    /// What happens to the card on close; default [`CloseAction::Reset`].
    pub on_close: CloseAction,
}

impl Default for PcscOptions {
    fn default() -> Self {
        PcscOptions {
            share: Share::Shared,
            hold_transaction: true,
            extended_length: ExtendedLength::Auto,
            interface: None,
            command_timeout: Some(Duration::from_secs(30)),
            open_timeout: Some(Duration::from_secs(30)),
            removal_settle: Duration::from_millis(1500),
            restore_selection: true,
            on_close: CloseAction::Reset,
        }
    }
}

impl PcscOptions {
    /// Sets [`PcscOptions::share`].
    #[must_use]
    pub fn share(mut self, share: Share) -> Self {
        self.share = share;
        self
    }
    /// Sets [`PcscOptions::hold_transaction`].
    #[must_use]
    pub fn hold_transaction(mut self, hold: bool) -> Self {
        self.hold_transaction = hold;
        self
    }
    /// Sets [`PcscOptions::extended_length`].
    #[must_use]
    pub fn extended_length(mut self, extended: ExtendedLength) -> Self {
        self.extended_length = extended;
        self
    }
    /// Sets [`PcscOptions::interface`].
    #[must_use]
    pub fn interface(mut self, interface: Interface) -> Self {
        self.interface = Some(interface);
        self
    }
    /// Sets [`PcscOptions::command_timeout`].
    #[must_use]
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.command_timeout = timeout;
        self
    }
    /// Sets [`PcscOptions::open_timeout`].
    #[must_use]
    pub fn open_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.open_timeout = timeout;
        self
    }
    /// Sets [`PcscOptions::removal_settle`].
    #[must_use]
    pub fn removal_settle(mut self, settle: Duration) -> Self {
        self.removal_settle = settle;
        self
    }
    /// Sets [`PcscOptions::restore_selection`].
    #[must_use]
    pub fn restore_selection(mut self, restore: bool) -> Self {
        self.restore_selection = restore;
        self
    }
    /// Sets [`PcscOptions::on_close`].
    #[must_use]
    pub fn on_close(mut self, action: CloseAction) -> Self {
        self.on_close = action;
        self
    }
}
