//! The card session over the host's transport: the authentication certificate and the PIN's
//! retry counter.

use std::ffi::c_char;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use mynacard_card::Session;
use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_transport::blocking::block_on;

use crate::error::{ErrorSlot, FfiError, MynacardStatus, guard, on_handle, write_out};
use crate::transport::{CallbackChannel, MynacardTransport, read_transport};

/// A session with one card over the host's transport. Opaque; made by
/// [`mynacard_session_open`], freed by [`mynacard_session_free`].
#[derive(Debug)]
pub struct MynacardSession {
    session: Session<CallbackChannel>,
    panicked: Arc<AtomicBool>,
    error: ErrorSlot,
}

impl MynacardSession {
    fn slot(&mut self) -> &mut ErrorSlot {
        &mut self.error
    }

    /// A card-layer result, with a callback panic reported as such.
    fn check<T>(&self, result: mynacard_card::Result<T>) -> Result<T, FfiError> {
        if self.panicked.load(Ordering::SeqCst) {
            return Err(FfiError::CallbackPanic("transmit"));
        }
        Ok(result?)
    }
}

/// Opens a session over `transport` (copied; its `ctx` must outlive the session). Sends nothing
/// to the card yet. On success `*out` holds the session.
///
/// Thread safety: any thread. The session may then be used from any thread, one call at a
/// time; its transmit callback is called on the thread of each call.
///
/// # Safety
/// `transport` is NULL or points to a `MynacardTransport`; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_session_open(
    transport: *const MynacardTransport,
    out: *mut *mut MynacardSession,
) -> MynacardStatus {
    guard(|| {
        if out.is_null() {
            return MynacardStatus::NullArgument;
        }
        // SAFETY: `transport` is NULL or readable, as the caller promises.
        let channel = match unsafe { read_transport(transport) } {
            Ok(channel) => channel,
            Err(e) => return e.status(),
        };
        let panicked = channel.panic_flag();
        let handle = Box::new(MynacardSession {
            session: Session::new(channel),
            panicked,
            error: ErrorSlot::default(),
        });
        match write_out(out, Box::into_raw(handle)) {
            Ok(()) => MynacardStatus::Ok,
            Err(e) => e.status(),
        }
    })
}

/// Reads the authentication certificate (利用者証明用電子証明書), DER, without a PIN. On
/// success `*der` and `*der_len` hold a buffer the caller frees with `mynacard_bytes_free`.
///
/// Thread safety: one call at a time on this session.
///
/// # Safety
/// `session` is NULL or a live session; `der` and `der_len` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_session_read_auth_certificate(
    session: *mut MynacardSession,
    der: *mut *mut u8,
    der_len: *mut usize,
) -> MynacardStatus {
    on_handle(session, MynacardSession::slot, |s| {
        if der.is_null() || der_len.is_null() {
            return Err(FfiError::Null("der or der_len"));
        }
        let read = block_on(async {
            let mut jpki = s.session.jpki().await?;
            jpki.read_certificate(PublicCertificate::Auth).await
        });
        let cert = s.check(read)?;
        let (ptr, len) = crate::bytes_into_raw(cert.into_der());
        write_out(der, ptr)?;
        write_out(der_len, len)
    })
}

/// The tries left of the authentication PIN, read without spending one: `*tries_left` is the
/// count (0 when blocked), or -1 when the card does not report one.
///
/// Thread safety: one call at a time on this session.
///
/// # Safety
/// `session` is NULL or a live session; `tries_left` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_session_auth_pin_tries_left(
    session: *mut MynacardSession,
    tries_left: *mut i32,
) -> MynacardStatus {
    on_handle(session, MynacardSession::slot, |s| {
        if tries_left.is_null() {
            return Err(FfiError::Null("tries_left"));
        }
        let status = block_on(async {
            let mut jpki = s.session.jpki().await?;
            jpki.pin_status(JpkiKey::Auth).await
        });
        let status = s.check(status)?;
        write_out(tries_left, status.retries().map_or(-1, i32::from))
    })
}

/// The message of the session's last failure, or NULL after a success. The string belongs to
/// the session and lives until the next call on it or its free.
///
/// Thread safety: not during another call on this session.
///
/// # Safety
/// `session` is NULL or a live session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_session_last_error(
    session: *const MynacardSession,
) -> *const c_char {
    if session.is_null() {
        return std::ptr::null();
    }
    // SAFETY: non-NULL and live, as the caller promises; only read.
    unsafe { &*session }.error.as_ptr()
}

/// Frees a session (sends nothing to the card). NULL is ignored.
///
/// Thread safety: not during another call on this session; once.
///
/// # Safety
/// `session` is NULL or a live session from `mynacard_session_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_session_free(session: *mut MynacardSession) {
    if session.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw` in `mynacard_session_open`, freed once.
        drop(unsafe { Box::from_raw(session) });
        MynacardStatus::Ok
    });
}
