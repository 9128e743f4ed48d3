//! Driving the async traits from synchronous code, without an async runtime.
//!
//! ```
//! use mynacard_transport::blocking::block_on;
//! assert_eq!(block_on(async { 40 + 2 }), 42);
//! ```

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use crate::{Capabilities, CardChannel, TransportError};

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs a future to completion on the calling thread, parking it while the future waits.
///
/// Suitable for the futures of this workspace, which wait on backend threads or on nothing;
/// futures that need a specific runtime's reactor (tokio sockets, timers) need that runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => thread::park(),
        }
    }
}

/// A synchronous face for any [`CardChannel`].
#[derive(Debug)]
pub struct BlockingChannel<C> {
    inner: C,
}

impl<C: CardChannel> BlockingChannel<C> {
    /// Wraps a channel.
    pub fn new(inner: C) -> Self {
        BlockingChannel { inner }
    }

    /// Sends one command APDU and waits for the response.
    ///
    /// # Errors
    /// As [`CardChannel::transmit`].
    pub fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        block_on(self.inner.transmit(command))
    }

    /// As [`CardChannel::capabilities`].
    pub fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// As [`CardChannel::was_reset`].
    pub fn was_reset(&mut self) -> bool {
        self.inner.was_reset()
    }

    /// The wrapped channel.
    pub fn into_inner(self) -> C {
        self.inner
    }
}
