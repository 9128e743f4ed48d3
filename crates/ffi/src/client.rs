//! Whole flows against a registration service: the driver over the host's transport, the HTTP
//! binding and the host's terminal callbacks.

use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use mynacard_registration::driver::{self, Terminal};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::ConsentPrompt;
use mynacard_registration::messages::{FaceDecision, FaceMatch};
use mynacard_registration::{FlowConfig, Machine, TerminalKind};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{ErrorSlot, FfiError, MynacardStatus, guard, on_handle, write_out};
use crate::outcome::MynacardOutcome;
use crate::transport::{MynacardTransport, read_transport};

/// The kind of terminal a client speaks for (the `kind` of [`mynacard_client_new`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MynacardTerminalKind {
    /// A smartphone app reading the card over NFC.
    App = 1,
    /// A bank ATM with a card reader and PIN pad.
    Atm = 2,
    /// An accredited registration kiosk with face recognition.
    Kiosk = 3,
    /// A clinic or pharmacy face-recognition card reader (point of use).
    FaceReader = 4,
}

impl MynacardTerminalKind {
    pub(crate) fn from_raw(raw: i32) -> Option<TerminalKind> {
        Some(match raw {
            1 => TerminalKind::App,
            2 => TerminalKind::Atm,
            3 => TerminalKind::Kiosk,
            4 => TerminalKind::FaceReader,
            _ => return None,
        })
    }
}

/// Which flow [`mynacard_client_run`] runs.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MynacardFlow {
    /// Health-insurance-use registration with the authentication PIN (an ATM, an app).
    PinRegistration = 1,
    /// Registration by face match and 照合番号B (an accredited kiosk).
    FaceRegistration = 2,
    /// Eligibility check at the point of use with the PIN.
    PinEligibility = 3,
    /// Eligibility check at the point of use by face match.
    FaceEligibility = 4,
}

/// The face matcher's result, written by the `match_face` callback.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MynacardFaceMatch {
    /// Non-zero when the live face matches the card photo.
    pub matched: i32,
    /// The similarity score in thousandths (0–1000).
    pub score_permille: u16,
    /// The threshold the matcher applied, in thousandths.
    pub threshold_permille: u16,
}

/// The person-facing side of the terminal: callbacks the library calls during
/// [`mynacard_client_run`], on the thread of that call. A NULL callback means the terminal has
/// no such device; a flow that needs it ends `cancelled` (`consent_declined` without `consent`).
///
/// Secrets (the PIN, 照合番号B) are written by the host into a buffer the library owns and
/// passes to the callback; the library copies them into its zeroizing values and zeroizes the
/// buffer right after the callback returns. The host should clear its own copies.
///
/// No callback may unwind: a C++ exception leaving one is undefined behaviour.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MynacardTerminal {
    /// Passed to every callback unchanged; must outlive the run.
    pub ctx: *mut c_void,
    /// Shows the consent `text` (UTF-8, NUL-terminated, plain text with line breaks); returns
    /// non-zero when the person agreed.
    pub consent: Option<unsafe extern "C-unwind" fn(ctx: *mut c_void, text: *const c_char) -> i32>,
    /// Asks the authentication PIN. `retries_left` is the card's count, read before asking
    /// (-1 when unknown). The host writes the digits (ASCII, no NUL needed) into `pin`, at most
    /// `pin_cap` bytes, stores their number in `*pin_len` and returns non-zero; it returns 0
    /// when the person cancels. A value that is not a PIN is asked again.
    pub pin: Option<
        unsafe extern "C-unwind" fn(
            ctx: *mut c_void,
            retries_left: i32,
            pin: *mut c_char,
            pin_cap: usize,
            pin_len: *mut usize,
        ) -> i32,
    >,
    /// Reads 照合番号B (14 digits) from the card face; as `pin`.
    pub collation_number_b: Option<
        unsafe extern "C-unwind" fn(
            ctx: *mut c_void,
            retries_left: i32,
            digits: *mut c_char,
            digits_cap: usize,
            digits_len: *mut usize,
        ) -> i32,
    >,
    /// Matches the live face against the card photo (`photo_len` bytes at `photo`, valid during
    /// the call), writes `*result` and returns non-zero; 0 when it cannot.
    pub match_face: Option<
        unsafe extern "C-unwind" fn(
            ctx: *mut c_void,
            photo: *const u8,
            photo_len: usize,
            result: *mut MynacardFaceMatch,
        ) -> i32,
    >,
    /// Signs `message` with the terminal's attestation key (ES256, the 64-byte `r || s`),
    /// writes it to `signature` (at most `signature_cap` bytes), its length to
    /// `*signature_len`, and returns non-zero; 0 when the terminal has no key.
    pub attest: Option<
        unsafe extern "C-unwind" fn(
            ctx: *mut c_void,
            message: *const u8,
            message_len: usize,
            signature: *mut u8,
            signature_cap: usize,
            signature_len: *mut usize,
        ) -> i32,
    >,
}

/// The machine of a `MynacardFlow` value.
pub(crate) fn flow_machine(flow: i32, config: FlowConfig) -> Result<Machine, FfiError> {
    Ok(match flow {
        1 => Machine::register_with_pin(config),
        2 => Machine::register_with_face(config),
        3 => Machine::check_eligibility_with_pin(config),
        4 => Machine::check_eligibility_with_face(config),
        other => {
            return Err(FfiError::Invalid(format!("{other} is not a MynacardFlow")));
        }
    })
}

/// The size of the library's buffer for a PIN or 照合番号B (both are far shorter).
pub(crate) const SECRET_CAP: usize = 32;

/// The size of the library's buffer for an attestation signature.
const SIGNATURE_CAP: usize = 128;

/// The host's callbacks as the driver's [`Terminal`].
struct HostTerminal {
    callbacks: MynacardTerminal,
    /// Where the host writes a PIN or 照合番号B; zeroized after each use.
    secret: Box<Zeroizing<[u8; SECRET_CAP]>>,
    /// The first callback that panicked.
    panicked: Option<&'static str>,
}

// SAFETY: the terminal calls the host's callbacks only on the thread of the run that owns it,
// during that run (the run is driven on a current-thread runtime on the calling thread).
unsafe impl Send for HostTerminal {}

impl HostTerminal {
    /// Calls a host callback, catching a panic.
    fn call<R>(&mut self, name: &'static str, f: impl FnOnce() -> R) -> Option<R> {
        match catch_unwind(AssertUnwindSafe(f)) {
            Ok(r) => Some(r),
            Err(_) => {
                self.panicked.get_or_insert(name);
                None
            }
        }
    }

    /// Asks a secret through `cb` into the library's buffer, then zeroizes the buffer.
    fn secret(
        &mut self,
        name: &'static str,
        cb: Option<
            unsafe extern "C-unwind" fn(*mut c_void, i32, *mut c_char, usize, *mut usize) -> i32,
        >,
        retries_left: Option<u8>,
    ) -> Option<Zeroizing<String>> {
        let cb = cb?;
        let ctx = self.callbacks.ctx;
        let buffer = self.secret.as_mut_ptr().cast::<c_char>();
        let mut len = 0usize;
        let retries = retries_left.map_or(-1, i32::from);
        let given = self.call(name, || {
            // SAFETY: the host's callback for its `ctx`; the buffer holds SECRET_CAP writable
            // bytes and `len` is writable, both during the call.
            unsafe { cb(ctx, retries, buffer, SECRET_CAP, &mut len) }
        });
        let value = match given {
            Some(r) if r != 0 => {
                let typed = &self.secret[..len.min(SECRET_CAP)];
                // Not UTF-8 is not a PIN: an empty value is asked again.
                Some(Zeroizing::new(
                    std::str::from_utf8(typed).unwrap_or_default().to_owned(),
                ))
            }
            _ => None,
        };
        self.secret.zeroize();
        value
    }
}

#[async_trait]
impl Terminal for HostTerminal {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        let Some(cb) = self.callbacks.consent else {
            return false;
        };
        let text: Vec<u8> = prompt
            .document
            .render(&prompt.locale, prompt.op)
            .into_bytes()
            .into_iter()
            .filter(|&b| b != 0)
            .collect();
        let Ok(text) = CString::new(text) else {
            return false;
        };
        let ctx = self.callbacks.ctx;
        // SAFETY: the host's callback for its `ctx`; `text` lives during the call.
        let agreed = self.call("consent", || unsafe { cb(ctx, text.as_ptr()) });
        agreed.is_some_and(|a| a != 0)
    }

    async fn pin(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.secret("pin", self.callbacks.pin, retries_left)
    }

    async fn collation_number_b(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.secret(
            "collation_number_b",
            self.callbacks.collation_number_b,
            retries_left,
        )
    }

    async fn match_face(&mut self, photo: &[u8]) -> Option<FaceMatch> {
        let cb = self.callbacks.match_face?;
        let ctx = self.callbacks.ctx;
        let mut result = MynacardFaceMatch::default();
        // SAFETY: the host's callback for its `ctx`; `photo` and `result` are valid during it.
        let ok = self.call("match_face", || unsafe {
            cb(ctx, photo.as_ptr(), photo.len(), &mut result)
        })?;
        (ok != 0).then_some(FaceMatch {
            decision: if result.matched != 0 {
                FaceDecision::Match
            } else {
                FaceDecision::NoMatch
            },
            score_permille: result.score_permille,
            threshold_permille: result.threshold_permille,
        })
    }

    async fn attest(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        let cb = self.callbacks.attest?;
        let ctx = self.callbacks.ctx;
        let mut signature = vec![0u8; SIGNATURE_CAP];
        let mut len = 0usize;
        // SAFETY: the host's callback for its `ctx`; the message, the signature buffer of
        // SIGNATURE_CAP bytes and `len` are valid during it.
        let ok = self.call("attest", || unsafe {
            cb(
                ctx,
                message.as_ptr(),
                message.len(),
                signature.as_mut_ptr(),
                SIGNATURE_CAP,
                &mut len,
            )
        })?;
        if ok == 0 || len > SIGNATURE_CAP {
            return None;
        }
        signature.truncate(len);
        Some(signature)
    }
}

/// A terminal's connection to one registration service, with the runtime its runs are driven
/// on. Opaque; made by [`mynacard_client_new`], freed by [`mynacard_client_free`].
#[derive(Debug)]
pub struct MynacardClient {
    runtime: tokio::runtime::Runtime,
    http: HttpClient,
    terminal_id: String,
    kind: TerminalKind,
    allow_last_attempt: bool,
    error: ErrorSlot,
}

impl MynacardClient {
    fn slot(&mut self) -> &mut ErrorSlot {
        &mut self.error
    }
}

/// A client for the service at `service_url` (`http://` or `https://`; over HTTPS the public
/// web roots are trusted), for the terminal `terminal_id` of `kind` (a `MynacardTerminalKind`).
/// On success `*out` holds the client; the client owns a single-threaded runtime on which its
/// runs are driven, so every call blocks.
///
/// Returns `MYNACARD_STATUS_INVALID_ARGUMENT` for a URL, id or kind it cannot use.
///
/// Thread safety: any thread. The client may then be used from any thread, one call at a time.
///
/// # Safety
/// `service_url` and `terminal_id` are NULL or NUL-terminated strings; `out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_client_new(
    service_url: *const c_char,
    terminal_id: *const c_char,
    kind: i32,
    out: *mut *mut MynacardClient,
) -> MynacardStatus {
    guard(|| {
        if service_url.is_null() || terminal_id.is_null() || out.is_null() {
            return MynacardStatus::NullArgument;
        }
        // SAFETY: non-NULL and NUL-terminated, as the caller promises.
        let made = unsafe { new_client(service_url, terminal_id, kind, &Tls::default()) };
        match made.and_then(|client| write_out(out, Box::into_raw(Box::new(client)))) {
            Ok(()) => MynacardStatus::Ok,
            Err(e) => e.status(),
        }
    })
}

/// As [`mynacard_client_new`], over `https://` with the terminal's TLS settings: `ca_pem`
/// (`ca_pem_len` bytes, one or more PEM certificates) is the only CA trusted for the service's
/// certificate, NULL for the public web roots; `identity_pem` (`identity_pem_len` bytes: the
/// terminal's certificate, any intermediates and its PKCS#8 private key, PEM) is presented as
/// the client certificate (mutual TLS), NULL for none. The library copies both; the caller
/// clears its copy of the key.
///
/// Returns `MYNACARD_STATUS_INVALID_ARGUMENT` for a URL, id, kind or PEM it cannot use, or TLS
/// settings with an `http://` URL.
///
/// Thread safety: any thread. The client may then be used from any thread, one call at a time.
///
/// # Safety
/// As [`mynacard_client_new`]; `ca_pem` and `identity_pem` are NULL or hold their length in
/// readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_client_new_tls(
    service_url: *const c_char,
    terminal_id: *const c_char,
    kind: i32,
    ca_pem: *const u8,
    ca_pem_len: usize,
    identity_pem: *const u8,
    identity_pem_len: usize,
    out: *mut *mut MynacardClient,
) -> MynacardStatus {
    guard(|| {
        if service_url.is_null() || terminal_id.is_null() || out.is_null() {
            return MynacardStatus::NullArgument;
        }
        let tls = Tls {
            // SAFETY: NULL or `ca_pem_len` readable bytes, as the caller promises.
            ca_pem: (!ca_pem.is_null())
                .then(|| unsafe { std::slice::from_raw_parts(ca_pem, ca_pem_len) }),
            // SAFETY: NULL or `identity_pem_len` readable bytes, as the caller promises.
            identity_pem: (!identity_pem.is_null())
                .then(|| unsafe { std::slice::from_raw_parts(identity_pem, identity_pem_len) }),
        };
        // SAFETY: non-NULL and NUL-terminated, as the caller promises.
        let made = unsafe { new_client(service_url, terminal_id, kind, &tls) };
        match made.and_then(|client| write_out(out, Box::into_raw(Box::new(client)))) {
            Ok(()) => MynacardStatus::Ok,
            Err(e) => e.status(),
        }
    })
}

/// A client's TLS settings, borrowed from the caller.
#[derive(Default)]
struct Tls<'a> {
    ca_pem: Option<&'a [u8]>,
    identity_pem: Option<&'a [u8]>,
}

/// # Safety
/// Both strings are non-NULL and NUL-terminated.
unsafe fn new_client(
    service_url: *const c_char,
    terminal_id: *const c_char,
    kind: i32,
    tls: &Tls<'_>,
) -> Result<MynacardClient, FfiError> {
    // SAFETY: as the caller promises.
    let url = unsafe { crate::utf8(service_url, "service_url") }?;
    // SAFETY: as the caller promises.
    let id = unsafe { crate::utf8(terminal_id, "terminal_id") }?;
    if id.is_empty() {
        return Err(FfiError::Invalid("terminal_id is empty".to_owned()));
    }
    let kind = MynacardTerminalKind::from_raw(kind)
        .ok_or_else(|| FfiError::Invalid(format!("{kind} is not a MynacardTerminalKind")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| FfiError::Service(format!("cannot start the runtime: {e}")))?;
    let invalid = |e: mynacard_registration::http::HttpClientError| {
        FfiError::Invalid(format!("service client: {e}"))
    };
    let http = {
        let _inside = runtime.enter();
        let mut builder = HttpClient::builder(url);
        if let Some(pem) = tls.ca_pem {
            builder = builder.trust_only(pem).map_err(invalid)?;
        }
        if let Some(pem) = tls.identity_pem {
            builder = builder.client_identity(pem).map_err(invalid)?;
        }
        builder.build().map_err(invalid)?
    };
    Ok(MynacardClient {
        runtime,
        http,
        terminal_id: id.to_owned(),
        kind,
        allow_last_attempt: false,
        error: ErrorSlot::default(),
    })
}

/// Whether a PIN flow may spend the card's last PIN try (non-zero: yes). Default no: with one
/// try left the run ends `last_attempt_refused` and the person is sent to the municipal office.
///
/// Thread safety: one call at a time on this client.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_client_set_allow_last_attempt(
    client: *mut MynacardClient,
    allow: i32,
) -> MynacardStatus {
    on_handle(client, MynacardClient::slot, |c| {
        c.allow_last_attempt = allow != 0;
        Ok(())
    })
}

/// Runs one whole `flow` (a `MynacardFlow`) with the card behind `transport`, asking the person
/// through `terminal`, and blocks until it ends. On `MYNACARD_STATUS_OK`, `*out` holds how it
/// ended (a wrong PIN, a declined consent or a refusal by the service are outcomes, not
/// failures); free it with `mynacard_outcome_free`. On any other status `*out` is untouched
/// and the client's last error says why; `MYNACARD_STATUS_PANIC` when a callback panicked.
///
/// `transport` and `terminal` are copied; their callbacks are called on this thread during
/// this call only.
///
/// Thread safety: one call at a time on this client.
///
/// # Safety
/// `client` is NULL or a live client; `transport` and `terminal` are NULL or point to their
/// structures, whose `ctx` pointers are valid for the callbacks during the call; `out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_client_run(
    client: *mut MynacardClient,
    flow: i32,
    transport: *const MynacardTransport,
    terminal: *const MynacardTerminal,
    out: *mut *mut MynacardOutcome,
) -> MynacardStatus {
    on_handle(client, MynacardClient::slot, |c| {
        if terminal.is_null() {
            return Err(FfiError::Null("terminal"));
        }
        if out.is_null() {
            return Err(FfiError::Null("out"));
        }
        // SAFETY: `transport` is NULL or readable, as the caller promises.
        let mut channel = unsafe { read_transport(transport) }?;
        let card_panicked = channel.panic_flag();
        let mut host = HostTerminal {
            // SAFETY: non-NULL and readable, as the caller promises.
            callbacks: unsafe { *terminal },
            secret: Box::new(Zeroizing::new([0u8; SECRET_CAP])),
            panicked: None,
        };
        let config = FlowConfig::new(c.terminal_id.as_str(), c.kind)
            .with_allow_last_attempt(c.allow_last_attempt);
        let machine = flow_machine(flow, config)?;
        let report = c
            .runtime
            .block_on(driver::run(machine, &mut channel, &c.http, &mut host));
        if card_panicked.load(Ordering::SeqCst) {
            return Err(FfiError::CallbackPanic("transmit"));
        }
        if let Some(name) = host.panicked {
            return Err(FfiError::CallbackPanic(name));
        }
        let report = report.map_err(|e| FfiError::Service(e.to_string()))?;
        write_out(out, Box::into_raw(Box::new(MynacardOutcome::new(report))))
    })
}

/// The message of the client's last failure, or NULL after a success. The string belongs to
/// the client and lives until the next call on it or its free.
///
/// Thread safety: not during another call on this client.
///
/// # Safety
/// `client` is NULL or a live client.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_client_last_error(
    client: *const MynacardClient,
) -> *const c_char {
    if client.is_null() {
        return std::ptr::null();
    }
    // SAFETY: non-NULL and live, as the caller promises; only read.
    unsafe { &*client }.error.as_ptr()
}

/// Frees a client and its runtime. NULL is ignored.
///
/// Thread safety: not during another call on this client; once.
///
/// # Safety
/// `client` is NULL or a live client from `mynacard_client_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_client_free(client: *mut MynacardClient) {
    if client.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw` in `mynacard_client_new`, freed once.
        drop(unsafe { Box::from_raw(client) });
        MynacardStatus::Ok
    });
}
