//! Explicit PC/SC transactions: a group of commands no other program can interleave with.
//!
//! [`PcscChannel::transaction`] returns a [`PcscTransaction`] guard that borrows the channel, so
//! it cannot outlive it (nor the card handle the channel's thread owns), and commands go through
//! the guard, which is itself a [`CardChannel`]. [`PcscTransaction::end`] takes the guard by
//! value, so a transaction cannot be ended twice; dropping the guard ends it leaving the card as
//! it is.
//!
//! Ending is queued on the channel's thread like every command, so a command sent on the channel
//! after the guard is gone always runs after the transaction ended, even when the guard was only
//! dropped.
//!
//! ```compile_fail
//! # use mynacard_pcsc::{PcscChannel, TransactionEnd};
//! # async fn f(mut channel: PcscChannel) {
//! let tx = channel.transaction().await.unwrap();
//! tx.end(TransactionEnd::Reset).await.unwrap();
//! tx.end(TransactionEnd::Leave).await.unwrap(); // ended already: `tx` was moved
//! # }
//! ```
//!
//! ```compile_fail
//! # use mynacard_pcsc::PcscChannel;
//! # async fn f(mut channel: PcscChannel) {
//! let tx = channel.transaction().await.unwrap();
//! drop(channel); // the transaction borrows the channel
//! drop(tx);
//! # }
//! ```

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, TransportError};

use crate::channel::{PcscChannel, Request};
use crate::error::{PcscError, backend};
use crate::reply::pair;

/// What happens to the card when an explicit transaction ends (the disposition of
/// `SCardEndTransaction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransactionEnd {
    /// Leave the card as it is: selections and verified PINs stay for whoever uses the card
    /// next, this program or another. The default, and what dropping the guard does.
    #[default]
    Leave,
    /// Warm reset before the transaction is released: every selection and verified PIN is
    /// cleared before another program can send a command.
    Reset,
    /// Power the card down and up again before the transaction is released (clears the same
    /// state as a reset, by a cold start).
    Unpower,
}

/// An explicit PC/SC transaction on a [`PcscChannel`]; see [`PcscChannel::transaction`].
///
/// Send commands through the guard (it is a [`CardChannel`], and so is `&mut` the guard: a
/// card-layer session can run over a borrow of it), then [`end`](PcscTransaction::end) it or
/// drop it. It is `Send`, like the channel.
#[must_use = "dropping the guard ends the transaction at once"]
pub struct PcscTransaction<'a> {
    channel: &'a mut PcscChannel,
    /// Whether the guard still has to end the transaction when dropped.
    open: bool,
}

impl std::fmt::Debug for PcscTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransaction")
            .field("reader", &self.channel.reader_name())
            .finish_non_exhaustive()
    }
}

impl<'a> PcscTransaction<'a> {
    /// A guard for a transaction whose begin was just queued on `channel`.
    pub(crate) fn new(channel: &'a mut PcscChannel) -> Self {
        PcscTransaction {
            channel,
            open: true,
        }
    }

    /// The PC/SC name of the reader holding the card.
    pub fn reader_name(&self) -> &str {
        self.channel.reader_name()
    }

    /// Ends the transaction, disposing of the card as asked, and waits until that is done.
    ///
    /// With [`TransactionEnd::Reset`] or [`TransactionEnd::Unpower`] the card is reset while the
    /// transaction is still held, so no other program sees the card before its state is
    /// cleared; the channel then reports [`CardChannel::was_reset`] and selects again the
    /// application that was selected (when [`crate::PcscOptions::restore_selection`] is on),
    /// as after any reset.
    ///
    /// # Errors
    /// The transaction is over whatever the outcome. [`TransportError::CardRemoved`] when the
    /// card left; [`TransportError::Timeout`] after [`crate::PcscOptions::command_timeout`] (the
    /// card thread is still busy with an earlier command; the end runs when it returns);
    /// `Backend` for other PC/SC failures (`Operation::Reconnect` for the reset,
    /// `Operation::EndTransaction` for the release).
    pub async fn end(mut self, how: TransactionEnd) -> Result<(), TransportError> {
        self.open = false;
        let (responder, reply) = pair();
        self.channel
            .request(Request::End {
                how,
                reply: Some(responder),
            })
            .map_err(|_| backend(PcscError::WorkerStopped))?;
        reply.deadline(self.channel.command_timeout())?.await
    }
}

impl Drop for PcscTransaction<'_> {
    fn drop(&mut self) {
        if self.open {
            // Queued behind the transaction's commands; a stopped card thread has no transaction
            // left to end.
            let _ = self.channel.request(Request::End {
                how: TransactionEnd::Leave,
                reply: None,
            });
        }
    }
}

#[async_trait]
impl CardChannel for PcscTransaction<'_> {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.channel.transmit(command).await
    }

    fn capabilities(&self) -> Capabilities {
        self.channel.capabilities()
    }

    fn was_reset(&mut self) -> bool {
        self.channel.was_reset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn the_guard_is_send_and_leave_is_the_default() {
        assert_send::<PcscTransaction<'static>>();
        assert_send::<PcscChannel>();
        assert_eq!(TransactionEnd::default(), TransactionEnd::Leave);
    }
}
