//! Status codes, the library's error type, and the guard every entry point runs under.

use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use mynacard_transport::TransportError;

/// What a call did. `MYNACARD_STATUS_OK` (0) is success; on any other status the handle the
/// call was made on (if any) holds a message (`*_last_error`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MynacardStatus {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 1,
    /// An argument was malformed: not UTF-8, not a URL, an unknown profile or value.
    InvalidArgument = 2,
    /// A buffer was too small. A transmit callback returns it when the response does not fit.
    BufferTooSmall = 3,
    /// The card was removed (or the NFC tag left the field). A transmit callback returns it
    /// when its reader reports so.
    CardRemoved = 4,
    /// The transport failed: the reader, the NFC stack or the host's transmit callback.
    Transport = 5,
    /// The card refused or answered something the library cannot use.
    Card = 6,
    /// The registration service or the HTTP stack failed, or the flow could not go on.
    Service = 7,
    /// A panic inside the library or inside a host callback was caught; the handle's message
    /// says where. The handle may still be freed, and should not be used otherwise.
    Panic = 8,
}

/// Why a call failed, before it becomes a status and a message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FfiError {
    /// A required pointer was NULL.
    #[error("{0} is NULL")]
    Null(&'static str),
    /// A string argument is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// An argument has a value the call does not accept.
    #[error("{0}")]
    Invalid(String),
    /// A card-layer failure.
    #[error("card: {0}")]
    Card(#[from] mynacard_card::Error),
    /// A transport failure outside the card layer.
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// The service client or the flow failed.
    #[error("service: {0}")]
    Service(String),
    /// The machine refused an input (it asked for something else, or the value has the wrong
    /// form); its state is unchanged.
    #[error("the flow refused the input")]
    Machine(#[source] mynacard_registration::MachineError),
    /// A host callback panicked; the panic was caught where the library called it.
    #[error("a host callback panicked in {0}")]
    CallbackPanic(&'static str),
}

impl FfiError {
    /// The status this error is reported with.
    pub(crate) fn status(&self) -> MynacardStatus {
        match self {
            FfiError::Null(_) => MynacardStatus::NullArgument,
            FfiError::NotUtf8(_) | FfiError::Invalid(_) | FfiError::Machine(_) => {
                MynacardStatus::InvalidArgument
            }
            FfiError::Card(mynacard_card::Error::Transport(e)) | FfiError::Transport(e) => {
                transport_status(e)
            }
            FfiError::Card(_) => MynacardStatus::Card,
            FfiError::Service(_) => MynacardStatus::Service,
            FfiError::CallbackPanic(_) => MynacardStatus::Panic,
        }
    }
}

fn transport_status(e: &TransportError) -> MynacardStatus {
    if e.is_card_gone() {
        MynacardStatus::CardRemoved
    } else {
        MynacardStatus::Transport
    }
}

/// The message of a handle's last failure (`*_last_error`).
#[derive(Debug, Default)]
pub(crate) struct ErrorSlot(Option<CString>);

impl ErrorSlot {
    /// Records `message` (an interior NUL, which no message has, would be cut there).
    pub(crate) fn set(&mut self, message: &str) {
        let bytes: Vec<u8> = message.bytes().take_while(|&b| b != 0).collect();
        self.0 = CString::new(bytes).ok();
    }

    /// Forgets the last message: a successful call clears it.
    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    /// The message as a borrowed C string, or NULL.
    pub(crate) fn as_ptr(&self) -> *const c_char {
        self.0.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
    }
}

/// Runs an entry point's body, turning a panic into [`MynacardStatus::Panic`]. Every exported
/// function that does more than read a field runs under it or under `on_handle` (which catches
/// panics the same way and records them on the handle).
pub fn guard(f: impl FnOnce() -> MynacardStatus) -> MynacardStatus {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(MynacardStatus::Panic)
}

/// Runs `f` on a handle's error slot and body: NULL is refused, a failure is recorded in the
/// slot, a panic is caught and recorded.
pub(crate) fn on_handle<H, F>(
    handle: *mut H,
    slot: fn(&mut H) -> &mut ErrorSlot,
    f: F,
) -> MynacardStatus
where
    F: FnOnce(&mut H) -> Result<(), FfiError>,
{
    if handle.is_null() {
        return MynacardStatus::NullArgument;
    }
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: non-NULL (checked above); the caller passes a live handle of this library
        // and makes no other call on it meanwhile (each function's thread-safety rule).
        let h = unsafe { &mut *handle };
        f(h)
    }));
    // SAFETY: as above; the closure's borrow ended with it.
    let h = unsafe { &mut *handle };
    match result {
        Ok(Ok(())) => {
            slot(h).clear();
            MynacardStatus::Ok
        }
        Ok(Err(e)) => {
            slot(h).set(&chain(&e));
            e.status()
        }
        Err(_) => {
            slot(h).set("internal error: a panic was caught at the C boundary");
            MynacardStatus::Panic
        }
    }
}

/// An error and its sources, `outer: inner: innermost`.
fn chain(e: &FfiError) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let text = inner.to_string();
        // `#[error(transparent)]`-like wrappers repeat their source's text.
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

/// Stores `value` through an out-pointer after checking it.
pub(crate) fn write_out<T>(out: *mut T, value: T) -> Result<(), FfiError> {
    if out.is_null() {
        return Err(FfiError::Null("an out-pointer"));
    }
    // SAFETY: non-NULL; the caller passes a writable pointer to a `T`.
    unsafe { out.write(value) };
    Ok(())
}
