//! The host's transport: a `transmit` callback, as a [`CardChannel`].

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, Interface, TransportError};

use crate::error::MynacardStatus;

/// Sends one command APDU to the card and writes the whole response APDU (data and SW1-SW2).
///
/// `ctx` is the transport's `ctx`. `command` holds `command_len` bytes. The callback writes at
/// most `response_cap` bytes to `response`, stores their number in `*response_len` and returns
/// `MYNACARD_STATUS_OK`; or it returns `MYNACARD_STATUS_CARD_REMOVED` when the card left the
/// reader, `MYNACARD_STATUS_BUFFER_TOO_SMALL` when the response does not fit, any other
/// non-zero value for another reader failure. It never retransmits on its own.
///
/// The library calls it only on the thread that made the library call, during that call. It
/// must not unwind: a C++ exception leaving it is undefined behaviour (a Rust panic is caught).
pub type MynacardTransmitFn = Option<
    unsafe extern "C-unwind" fn(
        ctx: *mut c_void,
        command: *const u8,
        command_len: usize,
        response: *mut u8,
        response_cap: usize,
        response_len: *mut usize,
    ) -> i32,
>;

/// The host's card reader, passed by pointer and copied by the library: a context pointer, the
/// transmit callback, and what the reader can carry.
///
/// `ctx` must stay valid for as long as the session or run that copied it.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MynacardTransport {
    /// Passed to `transmit` unchanged.
    pub ctx: *mut c_void,
    /// Sends one APDU. Required.
    pub transmit: MynacardTransmitFn,
    /// Non-zero when the reader carries extended-length APDUs (most contact readers and the My
    /// Number Card do: fewer, larger reads).
    pub extended_length: i32,
    /// The longest response APDU (status word included) the reader returns; 0 for the default
    /// (65538 with extended length, 258 without). It is also the `response_cap` passed to
    /// `transmit`.
    pub max_response_len: usize,
    /// Non-zero for a contactless (NFC) link, 0 for a contact reader.
    pub contactless: i32,
}

/// A [`CardChannel`] over the host's callback.
#[derive(Debug)]
pub(crate) struct CallbackChannel {
    transport: MynacardTransport,
    capabilities: Capabilities,
    /// Set when the callback panicked: the call that drove the channel reports `Panic`.
    panicked: Arc<AtomicBool>,
}

// SAFETY: the channel only calls the host's callback with its `ctx`, and only on the thread of
// the library call that owns it, during that call (the runs are driven on a current-thread
// runtime on the calling thread). Moving it between such calls is what the host allows by
// using a handle from another thread, one call at a time (the documented rule).
unsafe impl Send for CallbackChannel {}

impl CallbackChannel {
    /// A channel over `transport`; `None` without a transmit callback.
    pub(crate) fn new(transport: MynacardTransport) -> Option<CallbackChannel> {
        transport.transmit?;
        let interface = if transport.contactless != 0 {
            Interface::Contactless
        } else {
            Interface::Contact
        };
        let full = if transport.extended_length != 0 {
            Capabilities::extended(interface, Vec::new())
        } else {
            Capabilities::short(interface, Vec::new())
        };
        let response = match transport.max_response_len {
            0 => full.max_response_len,
            n => n.max(2),
        };
        let command = full.max_command_len;
        Some(CallbackChannel {
            transport,
            capabilities: full.with_limits(command, response),
            panicked: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A flag that turns true when the host's callback panics.
    pub(crate) fn panic_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.panicked)
    }

    fn call(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let Some(transmit) = self.transport.transmit else {
            return Err(TransportError::backend("ffi", "no transmit callback"));
        };
        let mut response = vec![0u8; self.capabilities.max_response_len];
        let mut len = 0usize;
        let ctx = self.transport.ctx;
        let status = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the host supplied this callback for this `ctx`; the command and response
            // pointers are valid for the lengths passed during the call, `len` is writable.
            unsafe {
                transmit(
                    ctx,
                    command.as_ptr(),
                    command.len(),
                    response.as_mut_ptr(),
                    response.len(),
                    &mut len,
                )
            }
        }));
        let Ok(status) = status else {
            self.panicked.store(true, Ordering::SeqCst);
            return Err(TransportError::backend(
                "ffi",
                "the host's transmit callback panicked",
            ));
        };
        match status {
            s if s == MynacardStatus::Ok as i32 => {}
            s if s == MynacardStatus::CardRemoved as i32 => {
                return Err(TransportError::CardRemoved);
            }
            s => {
                return Err(TransportError::backend(
                    "ffi",
                    format!("the host's transmit callback returned status {s}"),
                ));
            }
        }
        if len > response.len() {
            return Err(TransportError::backend(
                "ffi",
                "the host's transmit callback reported more bytes than the buffer holds",
            ));
        }
        if len < 2 {
            return Err(TransportError::MalformedResponse { len });
        }
        response.truncate(len);
        Ok(response)
    }
}

#[async_trait]
impl CardChannel for CallbackChannel {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if command.len() > self.capabilities.max_command_len {
            return Err(TransportError::CommandTooLong {
                len: command.len(),
                max: self.capabilities.max_command_len,
            });
        }
        self.call(command)
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    /// Always `false`: the callback has no way to report a reset; a reader that sees one
    /// reports the card as removed.
    fn was_reset(&mut self) -> bool {
        false
    }
}

/// Copies the host's transport description.
///
/// # Safety
/// `transport` is NULL or points to a readable `MynacardTransport`.
pub(crate) unsafe fn read_transport(
    transport: *const MynacardTransport,
) -> Result<CallbackChannel, crate::error::FfiError> {
    if transport.is_null() {
        return Err(crate::error::FfiError::Null("transport"));
    }
    // SAFETY: non-NULL and readable as the caller promises.
    let copy = unsafe { *transport };
    CallbackChannel::new(copy).ok_or(crate::error::FfiError::Null("transport->transmit"))
}
