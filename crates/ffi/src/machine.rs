//! The sans-I/O registration machine, for hosts that bring their own HTTP stack (and card
//! I/O): the host asks for the next action, performs it, and feeds the result back.

use std::ffi::{CString, c_char};

use mynacard_card::{CollationB, Pin};
use mynacard_registration::driver::RunReport;
use mynacard_registration::machine::{Action, CardFailure, HttpFailure, HttpMethod, HttpResponse};
use mynacard_registration::messages::{FaceDecision, FaceMatch};
use mynacard_registration::{FlowConfig, Machine, MachineError};
use zeroize::Zeroize;

use crate::client::{MynacardFaceMatch, MynacardTerminalKind, flow_machine};
use crate::error::{ErrorSlot, FfiError, MynacardStatus, guard, on_handle, write_out};
use crate::outcome::MynacardOutcome;

/// What the host must do next ([`mynacard_machine_next_action`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MynacardActionKind {
    /// An action this header does not know: cancel the machine.
    Unknown = 0,
    /// Send `data` (a command APDU) to the card; feed the response with
    /// `mynacard_machine_feed_card_response` (or `mynacard_machine_feed_card_failure`).
    SendCard = 1,
    /// Show `text` (the consent); feed the answer with `mynacard_machine_feed_consent`.
    ShowConsent = 2,
    /// Ask the authentication PIN (`retries_left`); `mynacard_machine_feed_pin` or
    /// `mynacard_machine_cancel`.
    AskPin = 3,
    /// Read 照合番号B (`retries_left`); `mynacard_machine_feed_collation_number_b`.
    AskCollationNumberB = 4,
    /// Match the live face against the photo in `data`; `mynacard_machine_feed_face_match`.
    MatchFace = 5,
    /// Sign `data` with the attestation key; `mynacard_machine_feed_attestation`.
    SignAttestation = 6,
    /// Send the HTTP request (`http_method`, `http_path`, the headers of
    /// `mynacard_machine_http_header`, JSON body `data` if not NULL) after `delay_ms`; feed the
    /// answer with `mynacard_machine_feed_http_response` (or `..._http_failure`).
    SendHttp = 7,
    /// Poll a pending registration: the request as for `SendHttp`, after `delay_ms`; or end the
    /// flow with `mynacard_machine_stop_waiting`.
    Poll = 8,
    /// The flow has ended: `mynacard_machine_outcome`.
    Done = 9,
}

/// The next action, written by [`mynacard_machine_next_action`]. Its pointers belong to the
/// machine and live until the next call on it (or its free); unused fields are NULL, 0 or -1.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MynacardAction {
    /// What to do.
    pub kind: MynacardActionKind,
    /// `SEND_CARD`: the command APDU; `MATCH_FACE`: the photo; `SIGN_ATTESTATION`: the message;
    /// `SEND_HTTP`/`POLL`: the JSON body, NULL without one.
    pub data: *const u8,
    /// Bytes at `data`.
    pub data_len: usize,
    /// `ASK_PIN`/`ASK_COLLATION_NUMBER_B`: tries left, -1 when the card does not say.
    pub retries_left: i32,
    /// `SHOW_CONSENT`: the consent as plain text (UTF-8).
    pub text: *const c_char,
    /// `SEND_HTTP`/`POLL`: `"GET"` or `"POST"`.
    pub http_method: *const c_char,
    /// `SEND_HTTP`/`POLL`: path and query, starting with `/v1/`, to append to the base URL.
    pub http_path: *const c_char,
    /// `SEND_HTTP`/`POLL`: headers beside `Content-Type: application/json` and `Accept:
    /// application/json` (which the host sets), read with `mynacard_machine_http_header`.
    pub http_header_count: usize,
    /// `SEND_HTTP`/`POLL`: milliseconds to wait before sending.
    pub delay_ms: u32,
}

/// The C strings of the current action, kept alive for the host.
#[derive(Debug, Default)]
struct ActionStrings {
    text: Option<CString>,
    method: Option<CString>,
    path: Option<CString>,
    headers: Vec<(CString, CString)>,
}

/// A registration or eligibility flow as a state machine the host drives. Opaque; made by
/// [`mynacard_machine_new`], freed by [`mynacard_machine_free`].
#[derive(Debug)]
pub struct MynacardMachine {
    machine: Machine,
    /// The action last handed out; its bytes back the pointers of [`MynacardAction`].
    action: Option<Action>,
    strings: ActionStrings,
    error: ErrorSlot,
}

impl MynacardMachine {
    fn slot(&mut self) -> &mut ErrorSlot {
        &mut self.error
    }

    /// Runs a feed on the machine: the action handed out is used up.
    fn feed(
        &mut self,
        f: impl FnOnce(&mut Machine) -> Result<(), MachineError>,
    ) -> Result<(), FfiError> {
        f(&mut self.machine).map_err(FfiError::Machine)?;
        self.action = None;
        self.strings = ActionStrings::default();
        Ok(())
    }
}

/// A machine for `flow` (a `MynacardFlow`) at the terminal `terminal_id` of `kind` (a
/// `MynacardTerminalKind`); `allow_last_attempt` non-zero lets a PIN flow spend the card's
/// last try. On success `*out` holds it.
///
/// Thread safety: any thread. The machine may then be used from any thread, one call at a
/// time.
///
/// # Safety
/// `terminal_id` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_new(
    flow: i32,
    terminal_id: *const c_char,
    kind: i32,
    allow_last_attempt: i32,
    out: *mut *mut MynacardMachine,
) -> MynacardStatus {
    guard(|| {
        if terminal_id.is_null() || out.is_null() {
            return MynacardStatus::NullArgument;
        }
        let made = (|| {
            // SAFETY: non-NULL and NUL-terminated, as the caller promises.
            let id = unsafe { crate::utf8(terminal_id, "terminal_id") }?;
            let kind = MynacardTerminalKind::from_raw(kind).ok_or_else(|| {
                FfiError::Invalid(format!("{kind} is not a MynacardTerminalKind"))
            })?;
            let config = FlowConfig::new(id, kind).with_allow_last_attempt(allow_last_attempt != 0);
            let machine = flow_machine(flow, config)?;
            let handle = MynacardMachine {
                machine,
                action: None,
                strings: ActionStrings::default(),
                error: ErrorSlot::default(),
            };
            write_out(out, Box::into_raw(Box::new(handle)))
        })();
        match made {
            Ok(()) => MynacardStatus::Ok,
            Err(e) => e.status(),
        }
    })
}

/// Sets the READ BINARY chunk (1–65536 bytes) for the reads still to come. The default, 256,
/// suits any reader; a reader that carries extended-length APDUs passes the response data it
/// can return (65536 for most) so that a file is read in one command. A card that refuses a
/// long read is read in 256-byte chunks from then on.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_set_read_chunk(
    machine: *mut MynacardMachine,
    chunk: u32,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        m.machine.set_read_chunk(chunk);
        Ok(())
    })
}

/// Writes the next action to `*action`. Asking again without feeding anything gives the same
/// action.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `action` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_next_action(
    machine: *mut MynacardMachine,
    action: *mut MynacardAction,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        if action.is_null() {
            return Err(FfiError::Null("action"));
        }
        let next = m.machine.next_action();
        let mut strings = ActionStrings::default();
        let mut out = MynacardAction {
            kind: MynacardActionKind::Unknown,
            data: std::ptr::null(),
            data_len: 0,
            retries_left: -1,
            text: std::ptr::null(),
            http_method: std::ptr::null(),
            http_path: std::ptr::null(),
            http_header_count: 0,
            delay_ms: 0,
        };
        let c = |s: &str| CString::new(s.bytes().filter(|&b| b != 0).collect::<Vec<u8>>()).ok();
        let data = |out: &mut MynacardAction, bytes: &[u8]| {
            out.data = bytes.as_ptr();
            out.data_len = bytes.len();
        };
        match &next {
            Action::SendCard(cmd) => {
                out.kind = MynacardActionKind::SendCard;
                data(&mut out, cmd.bytes.as_slice());
            }
            Action::ShowConsent(prompt) => {
                out.kind = MynacardActionKind::ShowConsent;
                strings.text = c(&prompt.document.render(&prompt.locale, prompt.op));
            }
            Action::AskPin { retries_left } => {
                out.kind = MynacardActionKind::AskPin;
                out.retries_left = retries_left.map_or(-1, i32::from);
            }
            Action::AskCollationNumberB { retries_left } => {
                out.kind = MynacardActionKind::AskCollationNumberB;
                out.retries_left = retries_left.map_or(-1, i32::from);
            }
            Action::MatchFace { photo } => {
                out.kind = MynacardActionKind::MatchFace;
                data(&mut out, photo);
            }
            Action::SignAttestation { message } => {
                out.kind = MynacardActionKind::SignAttestation;
                data(&mut out, message);
            }
            Action::SendHttp(_) | Action::Poll(_) => {
                let (kind, request) = match &next {
                    Action::Poll(step) => (MynacardActionKind::Poll, &step.request),
                    Action::SendHttp(request) => (MynacardActionKind::SendHttp, request),
                    _ => return Err(FfiError::Invalid("unreachable action".to_owned())),
                };
                out.kind = kind;
                if let Some(body) = &request.body {
                    data(&mut out, body);
                }
                out.delay_ms = request.delay_ms;
                strings.method = c(match request.method {
                    HttpMethod::Get => "GET",
                    HttpMethod::Post => "POST",
                });
                strings.path = c(&request.path);
                strings.headers = request
                    .headers
                    .iter()
                    .filter_map(|(n, v)| Some((c(n)?, c(v)?)))
                    .collect();
                out.http_header_count = strings.headers.len();
            }
            Action::Done(_) => out.kind = MynacardActionKind::Done,
            _ => {}
        }
        let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        out.text = ptr(&strings.text);
        out.http_method = ptr(&strings.method);
        out.http_path = ptr(&strings.path);
        // The pointers above point into `next` and `strings`, which the handle now keeps (moving
        // a Vec or CString does not move its heap bytes).
        m.action = Some(next);
        m.strings = strings;
        write_out(action, out)
    })
}

/// The `index`-th header of the current `SEND_HTTP`/`POLL` action: `*name` (lower case) and
/// `*value`, owned by the machine until the next call on it. An `authorization` value is a
/// credential: never log it.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `name` and `value` are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_http_header(
    machine: *mut MynacardMachine,
    index: usize,
    name: *mut *const c_char,
    value: *mut *const c_char,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        if name.is_null() || value.is_null() {
            return Err(FfiError::Null("name or value"));
        }
        let (n, v) = m
            .strings
            .headers
            .get(index)
            .ok_or_else(|| FfiError::Invalid(format!("the action has no header {index}")))?;
        let (n, v) = (n.as_ptr(), v.as_ptr());
        write_out(name, n)?;
        write_out(value, v)
    })
}

/// Reads `len` bytes at `ptr` (NULL only with `len` 0).
///
/// # Safety
/// `ptr` is NULL or holds `len` readable bytes that outlive `'a`.
unsafe fn bytes<'a>(ptr: *const u8, len: usize, what: &'static str) -> Result<&'a [u8], FfiError> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(FfiError::Null(what))
        };
    }
    // SAFETY: as the caller promises.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Feeds the card's response APDU (data and SW1-SW2) to a `SEND_CARD`.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `response` is NULL or holds `response_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_card_response(
    machine: *mut MynacardMachine,
    response: *const u8,
    response_len: usize,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        // SAFETY: as the caller promises.
        let response = unsafe { bytes(response, response_len, "response") }?;
        m.feed(|machine| machine.feed_card_response(response))
    })
}

/// Feeds a failed card exchange to a `SEND_CARD`: `MYNACARD_STATUS_CARD_REMOVED` when the card
/// left the reader, any other status for another reader failure.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_card_failure(
    machine: *mut MynacardMachine,
    status: i32,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        let failure = if status == MynacardStatus::CardRemoved as i32 {
            CardFailure::Removed
        } else {
            CardFailure::Transport
        };
        m.feed(|machine| machine.feed_card_failure(failure))
    })
}

/// Feeds the person's answer to `SHOW_CONSENT` (non-zero: agreed).
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_consent(
    machine: *mut MynacardMachine,
    agreed: i32,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        m.feed(|machine| machine.feed_consent(agreed != 0))
    })
}

/// Takes a secret from the caller's buffer and overwrites the buffer with zeros.
///
/// # Safety
/// `ptr` is non-NULL and holds `len` readable and writable bytes.
unsafe fn take_secret(ptr: *mut u8, len: usize) -> zeroize::Zeroizing<String> {
    // SAFETY: as the caller promises.
    let buffer = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    let value = zeroize::Zeroizing::new(std::str::from_utf8(buffer).unwrap_or_default().to_owned());
    buffer.zeroize();
    value
}

/// Feeds the PIN to `ASK_PIN`: `pin_len` ASCII digits in the caller's buffer. The library
/// copies them into its zeroizing PIN, never keeps the buffer, and overwrites the buffer's
/// `pin_len` bytes with zeros before returning (also when it refuses the value).
/// `MYNACARD_STATUS_INVALID_ARGUMENT` when it is not a PIN (ask again).
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `pin` is NULL or holds `pin_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_pin(
    machine: *mut MynacardMachine,
    pin: *mut u8,
    pin_len: usize,
) -> MynacardStatus {
    if pin.is_null() {
        return MynacardStatus::NullArgument;
    }
    // SAFETY: non-NULL, `pin_len` writable bytes as the caller promises. Taken before the
    // machine check so that the buffer is zeroized on every path.
    let typed = guard_secret(|| unsafe { take_secret(pin, pin_len) });
    on_handle(machine, MynacardMachine::slot, |m| {
        let typed = typed.ok_or(FfiError::Invalid(
            "the PIN buffer could not be read".to_owned(),
        ))?;
        let pin = Pin::new(&typed).map_err(|e| FfiError::Invalid(e.to_string()))?;
        m.feed(|machine| machine.feed_pin(pin))
    })
}

/// Feeds 照合番号B (14 digits in the caller's buffer) to `ASK_COLLATION_NUMBER_B`; the buffer
/// is handled as `mynacard_machine_feed_pin`'s.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `digits` is NULL or holds `digits_len` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_collation_number_b(
    machine: *mut MynacardMachine,
    digits: *mut u8,
    digits_len: usize,
) -> MynacardStatus {
    if digits.is_null() {
        return MynacardStatus::NullArgument;
    }
    // SAFETY: non-NULL, `digits_len` writable bytes as the caller promises.
    let read = guard_secret(|| unsafe { take_secret(digits, digits_len) });
    on_handle(machine, MynacardMachine::slot, |m| {
        let read = read.ok_or(FfiError::Invalid("the buffer could not be read".to_owned()))?;
        let b = CollationB::from_digits(&read).map_err(|e| FfiError::Invalid(e.to_string()))?;
        m.feed(|machine| machine.feed_collation_number_b(b))
    })
}

/// Runs `f` under `catch_unwind`.
fn guard_secret<R>(f: impl FnOnce() -> R) -> Option<R> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}

/// Feeds the face matcher's result to `MATCH_FACE`.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `result` is NULL or readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_face_match(
    machine: *mut MynacardMachine,
    result: *const MynacardFaceMatch,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        if result.is_null() {
            return Err(FfiError::Null("result"));
        }
        // SAFETY: non-NULL and readable, as the caller promises.
        let r = unsafe { *result };
        let face = FaceMatch {
            decision: if r.matched != 0 {
                FaceDecision::Match
            } else {
                FaceDecision::NoMatch
            },
            score_permille: r.score_permille,
            threshold_permille: r.threshold_permille,
        };
        m.feed(|machine| machine.feed_face_match(face))
    })
}

/// Feeds the attestation signature (64 bytes, `r || s`) to `SIGN_ATTESTATION`.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `signature` is NULL or holds `signature_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_attestation(
    machine: *mut MynacardMachine,
    signature: *const u8,
    signature_len: usize,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        // SAFETY: as the caller promises.
        let signature = unsafe { bytes(signature, signature_len, "signature") }?.to_vec();
        m.feed(|machine| machine.feed_attestation(signature))
    })
}

/// Feeds the service's answer to `SEND_HTTP` or `POLL`: the status code, the `Retry-After`
/// header in seconds (-1 without one) and the body.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `body` is NULL or holds `body_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_http_response(
    machine: *mut MynacardMachine,
    status: u16,
    retry_after: i64,
    body: *const u8,
    body_len: usize,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        // SAFETY: as the caller promises.
        let body = unsafe { bytes(body, body_len, "body") }?.to_vec();
        let response = HttpResponse {
            status,
            retry_after: u32::try_from(retry_after).ok(),
            body,
        };
        m.feed(|machine| machine.feed_http_response(response))
    })
}

/// Feeds a request that got no answer: `may_have_arrived` 0 when no connection was made,
/// non-zero when it broke or timed out after sending.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_feed_http_failure(
    machine: *mut MynacardMachine,
    may_have_arrived: i32,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        let failure = if may_have_arrived != 0 {
            HttpFailure::Interrupted
        } else {
            HttpFailure::Connect
        };
        m.feed(|machine| machine.feed_http_failure(failure))
    })
}

/// Cancels the flow (the person or the terminal gave up); the next action is `DONE`.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_cancel(machine: *mut MynacardMachine) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| m.feed(Machine::cancel))
}

/// Stops waiting for a pending registration at a `POLL`; the outcome is `pending`.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_stop_waiting(
    machine: *mut MynacardMachine,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        m.feed(Machine::stop_waiting)
    })
}

/// After `DONE`: `*out` holds how the flow ended (free it with `mynacard_outcome_free`; its
/// APDU count is 0, the host counts its own). `MYNACARD_STATUS_INVALID_ARGUMENT` before.
///
/// Thread safety: one call at a time on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_outcome(
    machine: *mut MynacardMachine,
    out: *mut *mut MynacardOutcome,
) -> MynacardStatus {
    on_handle(machine, MynacardMachine::slot, |m| {
        if out.is_null() {
            return Err(FfiError::Null("out"));
        }
        let outcome = m
            .machine
            .outcome()
            .cloned()
            .ok_or_else(|| FfiError::Invalid("the flow has not ended".to_owned()))?;
        let report = RunReport {
            outcome,
            apdus: 0,
            bytes_sent: 0,
            bytes_received: 0,
            http_requests: 0,
            session_id: None,
        };
        write_out(out, Box::into_raw(Box::new(MynacardOutcome::new(report))))
    })
}

/// The message of the machine's last failure, or NULL after a success. The string belongs to
/// the machine and lives until the next call on it or its free.
///
/// Thread safety: not during another call on this machine.
///
/// # Safety
/// `machine` is NULL or a live machine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_last_error(
    machine: *const MynacardMachine,
) -> *const c_char {
    if machine.is_null() {
        return std::ptr::null();
    }
    // SAFETY: non-NULL and live, as the caller promises; only read.
    unsafe { &*machine }.error.as_ptr()
}

/// Frees a machine (and the current action's buffers, zeroized where they held secrets). NULL
/// is ignored.
///
/// Thread safety: not during another call on this machine; once.
///
/// # Safety
/// `machine` is NULL or a live machine from `mynacard_machine_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_machine_free(machine: *mut MynacardMachine) {
    if machine.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw` in `mynacard_machine_new`, freed once.
        drop(unsafe { Box::from_raw(machine) });
        MynacardStatus::Ok
    });
}
