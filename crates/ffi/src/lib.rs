//! A C ABI for mynacard, for kiosk, ATM and clinic software written in C, C++ or C#.
//!
//! The host brings the card reader: it supplies a `transmit` callback ([`MynacardTransport`])
//! through which the library sends command APDUs, so a PC/SC reader (WinSCard on Windows), a
//! vendor reader SDK or an NFC stack carries them. Over it the library offers
//!
//! - a card session ([`MynacardSession`]): the authentication certificate, the PIN tries left;
//! - whole registration and eligibility flows against a registration service
//!   ([`MynacardClient`], [`mynacard_client_run`]), asking the person through terminal
//!   callbacks ([`MynacardTerminal`]) and ending in an outcome handle ([`MynacardOutcome`]);
//! - the sans-I/O registration machine ([`MynacardMachine`]) for hosts that bring their own
//!   HTTP stack: next action, perform it, feed the result.
//!
//! With the `sim` feature (a test aid, off by default) a simulated card, what a face kiosk's
//! devices read of it (照合番号B, the holder's face), a test attestation key and the embedded
//! reference service are available too (`mynacard_sim_*`).
//!
//! # Rules of the ABI
//!
//! - Every function returns a [`MynacardStatus`] (or a value documented for its failures) and
//!   checks every pointer argument for NULL. A failure on a handle leaves a message on that
//!   handle, read with its `*_last_error` function; there is no global error state.
//! - No panic crosses the boundary: each entry point and each call of a host callback runs
//!   under `catch_unwind`; a panic becomes [`MynacardStatus::Panic`].
//! - Everything the library allocates has its free function; strings the library returns as
//!   `const char *` are borrowed from a handle and live as long as the function's documentation
//!   says.
//! - Handles are not shared between threads: a handle may be used from any thread, one call at
//!   a time. Each function's documentation states its rule.
//! - PINs and 照合番号B are zeroized after use: the library's buffer passed to a terminal
//!   callback, and the caller's buffer passed to `mynacard_machine_feed_pin`.
//!
//! The header `include/mynacard.h` is generated from this crate by cbindgen
//! (`tests/header.rs` checks that the committed one is current).

mod client;
mod error;
mod machine;
mod outcome;
mod session;
#[cfg(feature = "sim")]
mod sim;
mod transport;

use std::ffi::{CStr, c_char};

pub use client::{
    MynacardClient, MynacardFaceMatch, MynacardFlow, MynacardTerminal, MynacardTerminalKind,
    mynacard_client_free, mynacard_client_last_error, mynacard_client_new, mynacard_client_new_tls,
    mynacard_client_run, mynacard_client_set_allow_last_attempt,
};
pub use error::{MynacardStatus, guard};
pub use machine::{
    MynacardAction, MynacardActionKind, MynacardMachine, mynacard_machine_cancel,
    mynacard_machine_feed_attestation, mynacard_machine_feed_card_failure,
    mynacard_machine_feed_card_response, mynacard_machine_feed_collation_number_b,
    mynacard_machine_feed_consent, mynacard_machine_feed_face_match,
    mynacard_machine_feed_http_failure, mynacard_machine_feed_http_response,
    mynacard_machine_feed_pin, mynacard_machine_free, mynacard_machine_http_header,
    mynacard_machine_last_error, mynacard_machine_new, mynacard_machine_next_action,
    mynacard_machine_outcome, mynacard_machine_set_read_chunk, mynacard_machine_stop_waiting,
};
pub use outcome::{
    MynacardOutcome, MynacardOutcomeKind, mynacard_outcome_apdu_count, mynacard_outcome_free,
    mynacard_outcome_kind, mynacard_outcome_kind_name, mynacard_outcome_message,
    mynacard_outcome_registration_id, mynacard_outcome_retries_left,
};
pub use session::{
    MynacardSession, mynacard_session_auth_pin_tries_left, mynacard_session_free,
    mynacard_session_last_error, mynacard_session_open, mynacard_session_read_auth_certificate,
};
#[cfg(feature = "sim")]
pub use sim::{
    MynacardSimAttestationKey, MynacardSimCard, MynacardSimService, mynacard_sim_attest,
    mynacard_sim_attestation_key_free, mynacard_sim_attestation_key_new, mynacard_sim_card_free,
    mynacard_sim_card_new, mynacard_sim_collation_number_b, mynacard_sim_holder_face,
    mynacard_sim_service_free, mynacard_sim_service_start, mynacard_sim_service_url,
    mynacard_sim_transmit,
};
pub use transport::{MynacardTransmitFn, MynacardTransport};

/// Frees a string the library returned as `char *` (for example [`mynacard_outcome_message`]).
/// NULL is ignored.
///
/// Thread safety: any thread; each string is freed once.
///
/// # Safety
/// `s` is NULL or a string returned as `char *` by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: the caller passes a pointer from `CString::into_raw` in this library, once.
        drop(unsafe { std::ffi::CString::from_raw(s) });
        MynacardStatus::Ok
    });
}

/// Frees a byte buffer the library returned with its length (for example the certificate of
/// [`mynacard_session_read_auth_certificate`]). NULL is ignored.
///
/// Thread safety: any thread; each buffer is freed once.
///
/// # Safety
/// `bytes` is NULL or a buffer returned by this library with exactly this `len`, not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_bytes_free(bytes: *mut u8, len: usize) {
    if bytes.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: the buffer came from `Box<[u8]>::into_raw` of `len` bytes in this library.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(bytes, len)) });
        MynacardStatus::Ok
    });
}

/// Hands a byte vector to C as a pointer and length, freed by [`mynacard_bytes_free`].
fn bytes_into_raw(bytes: Vec<u8>) -> (*mut u8, usize) {
    let boxed = bytes.into_boxed_slice();
    let len = boxed.len();
    (Box::into_raw(boxed).cast::<u8>(), len)
}

/// A caller's NUL-terminated string as UTF-8.
///
/// # Safety
/// `s` is non-NULL and points to a NUL-terminated string that lives for `'a`.
unsafe fn utf8<'a>(s: *const c_char, what: &'static str) -> Result<&'a str, error::FfiError> {
    // SAFETY: as the caller promises.
    let s = unsafe { CStr::from_ptr(s) };
    s.to_str().map_err(|_| error::FfiError::NotUtf8(what))
}
