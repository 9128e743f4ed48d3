//! The C ABI called from Rust as a C host calls it: NULL pointers, messages on handles, panics
//! in host callbacks and in the library, the PIN buffer's zeroization, and whole registrations
//! over the simulated card against the embedded reference service.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::{null, null_mut};

use mynacard_ffi::*;

/// A C string's text, or `None` for NULL.
fn text(s: *const c_char) -> Option<String> {
    // SAFETY: the library returns NULL or a NUL-terminated string that is still alive here.
    (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned())
}

/// The embedded service, a simulated card and its transport.
struct Rig {
    service: *mut MynacardSimService,
    card: *mut MynacardSimCard,
}

impl Rig {
    fn new(profile: &str) -> Rig {
        let mut service = null_mut();
        let mut card = null_mut();
        let profile = CString::new(profile).unwrap();
        // SAFETY: valid out-pointers and a NUL-terminated profile name.
        unsafe {
            assert_eq!(mynacard_sim_service_start(&mut service), MynacardStatus::Ok);
            assert_eq!(
                mynacard_sim_card_new(profile.as_ptr(), &mut card),
                MynacardStatus::Ok
            );
        }
        Rig { service, card }
    }

    fn transport(&self) -> MynacardTransport {
        MynacardTransport {
            ctx: self.card.cast(),
            transmit: Some(mynacard_sim_transmit),
            extended_length: 1,
            max_response_len: 0,
            contactless: 0,
        }
    }

    fn client(&self, terminal_id: &str, kind: MynacardTerminalKind) -> *mut MynacardClient {
        let mut client = null_mut();
        let id = CString::new(terminal_id).unwrap();
        // SAFETY: the service is live, the strings are NUL-terminated, `client` is writable.
        let status = unsafe {
            mynacard_client_new(
                mynacard_sim_service_url(self.service),
                id.as_ptr(),
                kind as i32,
                &mut client,
            )
        };
        assert_eq!(status, MynacardStatus::Ok);
        client
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // SAFETY: both were made by the library and are freed once.
        unsafe {
            mynacard_sim_card_free(self.card);
            mynacard_sim_service_free(self.service);
        }
    }
}

/// What the host's PIN pad does: the values typed, in order, and what it saw.
#[derive(Default)]
struct Keypad {
    typed: Vec<&'static str>,
    asked: Vec<i32>,
    /// The library's buffer at each request, and whether it was all zero on entry.
    buffers: Vec<(usize, bool)>,
    panic: bool,
}

unsafe extern "C-unwind" fn agree(_ctx: *mut c_void, text: *const c_char) -> i32 {
    assert!(!text.is_null());
    1
}

unsafe extern "C-unwind" fn keypad_pin(
    ctx: *mut c_void,
    retries_left: i32,
    pin: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the test passes a `Keypad` as `ctx`.
    let keypad = unsafe { &mut *ctx.cast::<Keypad>() };
    if keypad.panic {
        panic!("the PIN pad driver failed");
    }
    keypad.asked.push(retries_left);
    // SAFETY: the library passes `cap` readable and writable bytes.
    let buffer = unsafe { std::slice::from_raw_parts_mut(pin.cast::<u8>(), cap) };
    keypad
        .buffers
        .push((pin as usize, buffer.iter().all(|&b| b == 0)));
    if keypad.typed.is_empty() {
        return 0;
    }
    let value = keypad.typed.remove(0);
    buffer[..value.len()].copy_from_slice(value.as_bytes());
    // SAFETY: `len` is writable.
    unsafe { len.write(value.len()) };
    1
}

fn terminal(keypad: &mut Keypad) -> MynacardTerminal {
    MynacardTerminal {
        ctx: (keypad as *mut Keypad).cast(),
        consent: Some(agree),
        pin: Some(keypad_pin),
        collation_number_b: None,
        match_face: None,
        attest: None,
    }
}

/// Runs a PIN registration; the status and the outcome (NULL unless OK).
fn run(
    client: *mut MynacardClient,
    transport: &MynacardTransport,
    keypad: &mut Keypad,
) -> (MynacardStatus, *mut MynacardOutcome) {
    let terminal = terminal(keypad);
    let mut outcome = null_mut();
    // SAFETY: a live client, transport and terminal whose contexts outlive the call.
    let status = unsafe {
        mynacard_client_run(
            client,
            MynacardFlow::PinRegistration as i32,
            transport,
            &terminal,
            &mut outcome,
        )
    };
    (status, outcome)
}

#[test]
fn an_atm_registration_over_the_simulated_card_ends_registered() {
    let rig = Rig::new("contact");
    let client = rig.client("atm-0001", MynacardTerminalKind::Atm);
    let mut keypad = Keypad {
        typed: vec!["1234", "1234"],
        ..Keypad::default()
    };
    let (status, first) = run(client, &rig.transport(), &mut keypad);
    assert_eq!(status, MynacardStatus::Ok);
    // SAFETY: `first` is a live outcome until freed below; the message is freed once.
    unsafe {
        assert_eq!(
            mynacard_outcome_kind(first),
            MynacardOutcomeKind::Registered
        );
        assert_eq!(
            text(mynacard_outcome_kind_name(first)).as_deref(),
            Some("registered")
        );
        assert_eq!(mynacard_outcome_retries_left(first), -1);
        assert_eq!(mynacard_outcome_apdu_count(first), 5);
        let message = mynacard_outcome_message(first, c"en".as_ptr());
        assert!(text(message).is_some_and(|m| m.starts_with("Registered")));
        mynacard_string_free(message);
    }
    // SAFETY: as above.
    let id = text(unsafe { mynacard_outcome_registration_id(first) }).expect("a registration id");
    assert!(!id.is_empty());
    assert_eq!(keypad.asked, [3], "tries left are shown before the PIN");

    // The same card again: nothing new, the same registration.
    let (status, again) = run(client, &rig.transport(), &mut keypad);
    assert_eq!(status, MynacardStatus::Ok);
    // SAFETY: live outcomes and client, each freed once.
    unsafe {
        assert_eq!(
            mynacard_outcome_kind(again),
            MynacardOutcomeKind::AlreadyRegistered
        );
        assert_eq!(
            text(mynacard_outcome_registration_id(again)).as_deref(),
            Some(id.as_str())
        );
        mynacard_outcome_free(first);
        mynacard_outcome_free(again);
        mynacard_client_free(client);
    }
}

#[test]
fn a_wrong_pin_is_an_outcome_with_the_tries_left() {
    let rig = Rig::new("contact");
    let client = rig.client("atm-0001", MynacardTerminalKind::Atm);
    let mut keypad = Keypad {
        typed: vec!["9999"],
        ..Keypad::default()
    };
    let (status, outcome) = run(client, &rig.transport(), &mut keypad);
    assert_eq!(status, MynacardStatus::Ok);
    // SAFETY: live outcome and client, each freed once.
    unsafe {
        assert_eq!(
            mynacard_outcome_kind(outcome),
            MynacardOutcomeKind::WrongPin
        );
        assert_eq!(mynacard_outcome_retries_left(outcome), 2);
        assert!(mynacard_outcome_registration_id(outcome).is_null());
        mynacard_outcome_free(outcome);
        mynacard_client_free(client);
    }
}

#[test]
fn the_pin_buffer_is_zeroized_after_each_use() {
    let rig = Rig::new("contact");
    let client = rig.client("atm-0001", MynacardTerminalKind::Atm);
    // "12a4" is not a PIN: the library asks again, in the same buffer, which it must have
    // zeroized after copying the first value out.
    let mut keypad = Keypad {
        typed: vec!["12a4", "1234"],
        ..Keypad::default()
    };
    let (status, outcome) = run(client, &rig.transport(), &mut keypad);
    assert_eq!(status, MynacardStatus::Ok);
    assert_eq!(keypad.buffers.len(), 2, "the PIN is asked twice");
    let (first, _) = keypad.buffers[0];
    let (second, zero) = keypad.buffers[1];
    assert_eq!(first, second, "the same library buffer both times");
    assert!(zero, "the buffer still held the first value");
    // SAFETY: live outcome and client, each freed once.
    unsafe {
        assert_eq!(
            mynacard_outcome_kind(outcome),
            MynacardOutcomeKind::Registered
        );
        mynacard_outcome_free(outcome);
        mynacard_client_free(client);
    }
}

unsafe extern "C-unwind" fn panicking_transmit(
    _ctx: *mut c_void,
    _command: *const u8,
    _command_len: usize,
    _response: *mut u8,
    _response_cap: usize,
    _response_len: *mut usize,
) -> i32 {
    panic!("the reader driver failed");
}

unsafe extern "C-unwind" fn card_gone(
    _ctx: *mut c_void,
    _command: *const u8,
    _command_len: usize,
    _response: *mut u8,
    _response_cap: usize,
    _response_len: *mut usize,
) -> i32 {
    MynacardStatus::CardRemoved as i32
}

fn callback_transport(transmit: MynacardTransmitFn) -> MynacardTransport {
    MynacardTransport {
        ctx: null_mut(),
        transmit,
        extended_length: 0,
        max_response_len: 0,
        contactless: 1,
    }
}

#[test]
fn a_panic_in_the_transmit_callback_is_a_status_and_a_message() {
    let transport = callback_transport(Some(panicking_transmit));
    let mut session = null_mut();
    let mut tries = 7;
    // SAFETY: a valid transport and out-pointers; the session is freed once.
    unsafe {
        assert_eq!(
            mynacard_session_open(&transport, &mut session),
            MynacardStatus::Ok
        );
        assert_eq!(
            mynacard_session_auth_pin_tries_left(session, &mut tries),
            MynacardStatus::Panic
        );
        assert_eq!(tries, 7, "nothing written on failure");
        let message = text(mynacard_session_last_error(session)).expect("a message");
        assert!(message.contains("transmit"), "{message}");
        mynacard_session_free(session);
    }

    // The same through a whole run.
    let rig = Rig::new("contact");
    let client = rig.client("atm-0001", MynacardTerminalKind::Atm);
    let mut keypad = Keypad::default();
    let (status, outcome) = run(client, &transport, &mut keypad);
    assert_eq!(status, MynacardStatus::Panic);
    assert!(outcome.is_null());
    // SAFETY: a live client, freed once.
    unsafe {
        let message = text(mynacard_client_last_error(client)).expect("a message");
        assert!(message.contains("transmit"), "{message}");
        mynacard_client_free(client);
    }
}

#[test]
fn a_panic_in_a_terminal_callback_is_a_status_and_a_message() {
    let rig = Rig::new("contact");
    let client = rig.client("atm-0001", MynacardTerminalKind::Atm);
    let mut keypad = Keypad {
        panic: true,
        ..Keypad::default()
    };
    let (status, outcome) = run(client, &rig.transport(), &mut keypad);
    assert_eq!(status, MynacardStatus::Panic);
    assert!(outcome.is_null());
    // SAFETY: a live client, freed once.
    unsafe {
        let message = text(mynacard_client_last_error(client)).expect("a message");
        assert!(message.contains("pin"), "{message}");
        mynacard_client_free(client);
    }
}

#[test]
fn a_panic_inside_the_library_becomes_the_panic_status() {
    // Every entry point runs its body under this guard.
    assert_eq!(guard(|| panic!("a library bug")), MynacardStatus::Panic);
    assert_eq!(guard(|| MynacardStatus::Card), MynacardStatus::Card);
}

#[test]
fn a_removed_card_is_reported_with_its_status_and_message() {
    let transport = callback_transport(Some(card_gone));
    let mut session = null_mut();
    let mut der = null_mut();
    let mut len = 0;
    // SAFETY: valid arguments; the session is freed once.
    unsafe {
        assert_eq!(
            mynacard_session_open(&transport, &mut session),
            MynacardStatus::Ok
        );
        assert!(mynacard_session_last_error(session).is_null());
        assert_eq!(
            mynacard_session_read_auth_certificate(session, &mut der, &mut len),
            MynacardStatus::CardRemoved
        );
        assert!(der.is_null());
        let message = text(mynacard_session_last_error(session)).expect("a message");
        assert!(message.contains("removed"), "{message}");
        mynacard_session_free(session);
    }
}

#[test]
fn the_simulated_card_reads_through_a_session() {
    let rig = Rig::new("contact");
    let transport = rig.transport();
    let mut session = null_mut();
    let mut der = null_mut();
    let mut len = 0;
    let mut tries = -2;
    // SAFETY: valid arguments; the certificate and the session are freed once.
    unsafe {
        assert_eq!(
            mynacard_session_open(&transport, &mut session),
            MynacardStatus::Ok
        );
        assert_eq!(
            mynacard_session_read_auth_certificate(session, &mut der, &mut len),
            MynacardStatus::Ok
        );
        let cert = std::slice::from_raw_parts(der, len);
        assert_eq!(cert[0], 0x30, "a DER SEQUENCE");
        assert!(len > 500);
        mynacard_bytes_free(der, len);
        assert_eq!(
            mynacard_session_auth_pin_tries_left(session, &mut tries),
            MynacardStatus::Ok
        );
        assert_eq!(tries, 3);
        mynacard_session_free(session);
    }
}

#[test]
fn errors_are_read_from_the_handle_and_cleared_by_a_success() {
    let mut client = null_mut();
    // SAFETY: NUL-terminated strings and a writable out-pointer; the client is freed once.
    unsafe {
        assert_eq!(
            mynacard_client_new(
                c"ftp://nowhere".as_ptr(),
                c"atm-0001".as_ptr(),
                2,
                &mut client
            ),
            MynacardStatus::InvalidArgument
        );
        assert!(client.is_null());
        assert_eq!(
            mynacard_client_new(
                c"http://127.0.0.1:9".as_ptr(),
                c"atm-0001".as_ptr(),
                42,
                &mut client
            ),
            MynacardStatus::InvalidArgument,
            "42 is no terminal kind"
        );
        assert_eq!(
            mynacard_client_new(
                c"http://127.0.0.1:9".as_ptr(),
                c"atm-0001".as_ptr(),
                2,
                &mut client
            ),
            MynacardStatus::Ok
        );
        let transport = callback_transport(Some(card_gone));
        let mut keypad = Keypad::default();
        let terminal = terminal(&mut keypad);
        let mut outcome = null_mut();
        assert_eq!(
            mynacard_client_run(client, 99, &transport, &terminal, &mut outcome),
            MynacardStatus::InvalidArgument
        );
        let message = text(mynacard_client_last_error(client)).expect("a message");
        assert!(message.contains("99 is not a MynacardFlow"), "{message}");
        assert_eq!(
            mynacard_client_set_allow_last_attempt(client, 1),
            MynacardStatus::Ok
        );
        assert!(mynacard_client_last_error(client).is_null());
        mynacard_client_free(client);
    }
}

#[test]
fn null_pointers_give_a_status_and_never_crash() {
    let transport = callback_transport(Some(card_gone));
    let no_callback = callback_transport(None);
    let mut session = null_mut();
    let mut client = null_mut();
    let mut tries = 0;
    // SAFETY: every pointer is NULL or valid; NULL is what is being tested.
    unsafe {
        assert_eq!(
            mynacard_session_open(null(), &mut session),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_session_open(&transport, null_mut()),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_session_open(&no_callback, &mut session),
            MynacardStatus::NullArgument
        );
        assert!(session.is_null());
        assert_eq!(
            mynacard_session_read_auth_certificate(null_mut(), null_mut(), null_mut()),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_session_auth_pin_tries_left(null_mut(), &mut tries),
            MynacardStatus::NullArgument
        );
        assert!(mynacard_session_last_error(null()).is_null());
        mynacard_session_free(null_mut());

        assert_eq!(
            mynacard_client_new(null(), c"atm-0001".as_ptr(), 2, &mut client),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_client_run(null_mut(), 1, &transport, null(), null_mut()),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_client_set_allow_last_attempt(null_mut(), 0),
            MynacardStatus::NullArgument
        );
        assert!(mynacard_client_last_error(null()).is_null());
        mynacard_client_free(null_mut());

        assert_eq!(
            mynacard_client_new(
                c"http://127.0.0.1:9".as_ptr(),
                c"atm-0001".as_ptr(),
                2,
                &mut client
            ),
            MynacardStatus::Ok
        );
        let mut keypad = Keypad::default();
        let terminal = terminal(&mut keypad);
        let mut outcome = null_mut();
        assert_eq!(
            mynacard_client_run(client, 1, null(), &terminal, &mut outcome),
            MynacardStatus::NullArgument
        );
        assert!(text(mynacard_client_last_error(client)).is_some_and(|m| m.contains("transport")));
        assert_eq!(
            mynacard_client_run(client, 1, &transport, null(), &mut outcome),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_client_run(client, 1, &transport, &terminal, null_mut()),
            MynacardStatus::NullArgument
        );
        mynacard_client_free(client);

        assert_eq!(mynacard_outcome_kind(null()), MynacardOutcomeKind::Unknown);
        assert!(mynacard_outcome_kind_name(null()).is_null());
        assert!(mynacard_outcome_registration_id(null()).is_null());
        assert_eq!(mynacard_outcome_retries_left(null()), -1);
        assert_eq!(mynacard_outcome_apdu_count(null()), 0);
        assert!(mynacard_outcome_message(null(), null()).is_null());
        mynacard_outcome_free(null_mut());
        mynacard_string_free(null_mut());
        mynacard_bytes_free(null_mut(), 3);

        let mut card = null_mut();
        assert_eq!(
            mynacard_sim_card_new(null(), &mut card),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_sim_card_new(c"no-such-profile".as_ptr(), &mut card),
            MynacardStatus::InvalidArgument
        );
        assert!(card.is_null());
        assert_eq!(
            mynacard_sim_service_start(null_mut()),
            MynacardStatus::NullArgument
        );
        assert!(mynacard_sim_service_url(null()).is_null());
        let mut len = 0;
        let mut response = [0u8; 4];
        assert_eq!(
            mynacard_sim_transmit(
                null_mut(),
                [0u8; 4].as_ptr(),
                4,
                response.as_mut_ptr(),
                4,
                &mut len
            ),
            MynacardStatus::NullArgument as i32
        );
        mynacard_sim_card_free(null_mut());
        mynacard_sim_service_free(null_mut());
    }
}

#[test]
fn tls_settings_are_checked_when_the_client_is_made() {
    let pki = mynacard_registry::dev_pki::DevPki::generate(&["127.0.0.1"], &["atm-0001"])
        .expect("a development PKI");
    let ca = pki.service_ca_pem.as_bytes();
    let identity = pki
        .terminal("atm-0001")
        .expect("the ATM's identity")
        .pem
        .as_bytes();
    let mut client = null_mut();
    let new = |url: &CStr, ca: &[u8], identity: &[u8], out: &mut *mut MynacardClient| {
        // SAFETY: NUL-terminated strings, buffers of the lengths passed, a writable out.
        unsafe {
            mynacard_client_new_tls(
                url.as_ptr(),
                c"atm-0001".as_ptr(),
                MynacardTerminalKind::Atm as i32,
                ca.as_ptr(),
                ca.len(),
                identity.as_ptr(),
                identity.len(),
                out,
            )
        }
    };
    assert_eq!(
        new(
            c"https://127.0.0.1:8600",
            b"not a certificate",
            identity,
            &mut client
        ),
        MynacardStatus::InvalidArgument
    );
    assert_eq!(
        new(c"http://127.0.0.1:8600", ca, identity, &mut client),
        MynacardStatus::InvalidArgument,
        "TLS settings with plain HTTP"
    );
    assert!(client.is_null());
    assert_eq!(
        new(c"https://127.0.0.1:8600", ca, identity, &mut client),
        MynacardStatus::Ok
    );
    assert!(!client.is_null());
    // SAFETY: a live client, freed once.
    unsafe { mynacard_client_free(client) };
}

/// A C string the machine handed out, as text.
fn owned(s: *const c_char) -> String {
    text(s).expect("a string")
}

#[test]
fn a_host_driven_machine_registers_and_zeroizes_the_callers_pin() {
    use mynacard_registration::driver::ServiceClient;
    use mynacard_registration::http::HttpClient;
    use mynacard_registration::machine::{HttpMethod, HttpRequest};

    let rig = Rig::new("contact");
    // SAFETY: a live service.
    let url = owned(unsafe { mynacard_sim_service_url(rig.service) });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The host's own HTTP stack, here the registration crate's client.
    let http = {
        let _inside = runtime.enter();
        HttpClient::new(&url).unwrap()
    };
    let mut machine = null_mut();
    // SAFETY: a NUL-terminated id and a writable out-pointer.
    let status = unsafe {
        mynacard_machine_new(
            MynacardFlow::PinRegistration as i32,
            c"atm-0001".as_ptr(),
            MynacardTerminalKind::Atm as i32,
            0,
            &mut machine,
        )
    };
    assert_eq!(status, MynacardStatus::Ok);
    // The simulated reader carries extended length: whole files in one READ BINARY.
    // SAFETY: a live machine.
    let status = unsafe { mynacard_machine_set_read_chunk(machine, 65_536) };
    assert_eq!(status, MynacardStatus::Ok);
    let mut pin_buffers = Vec::new();
    let mut apdus = 0;
    for _ in 0..100 {
        let mut action = std::mem::MaybeUninit::<MynacardAction>::uninit();
        // SAFETY: a live machine and a writable action.
        let action = unsafe {
            assert_eq!(
                mynacard_machine_next_action(machine, action.as_mut_ptr()),
                MynacardStatus::Ok
            );
            action.assume_init()
        };
        // SAFETY: the action's pointers are valid until the next call on the machine; the
        // feeds get valid buffers.
        let fed = unsafe {
            match action.kind {
                MynacardActionKind::SendCard => {
                    apdus += 1;
                    let mut response = vec![0u8; 65_538];
                    let mut len = 0;
                    let status = mynacard_sim_transmit(
                        rig.card.cast(),
                        action.data,
                        action.data_len,
                        response.as_mut_ptr(),
                        response.len(),
                        &mut len,
                    );
                    assert_eq!(status, MynacardStatus::Ok as i32);
                    mynacard_machine_feed_card_response(machine, response.as_ptr(), len)
                }
                MynacardActionKind::ShowConsent => {
                    assert!(owned(action.text).len() > 100);
                    mynacard_machine_feed_consent(machine, 1)
                }
                MynacardActionKind::AskPin => {
                    assert_eq!(action.retries_left, 3);
                    let mut typed = *b"1234";
                    let status = mynacard_machine_feed_pin(machine, typed.as_mut_ptr(), 4);
                    pin_buffers.push(typed);
                    status
                }
                MynacardActionKind::SendHttp => {
                    let mut headers = Vec::new();
                    for i in 0..action.http_header_count {
                        let (mut n, mut v) = (null(), null());
                        assert_eq!(
                            mynacard_machine_http_header(machine, i, &mut n, &mut v),
                            MynacardStatus::Ok
                        );
                        let name: &'static str = Box::leak(owned(n).into_boxed_str());
                        headers.push((name, owned(v)));
                    }
                    let request = HttpRequest {
                        method: if owned(action.http_method) == "POST" {
                            HttpMethod::Post
                        } else {
                            HttpMethod::Get
                        },
                        path: owned(action.http_path),
                        headers,
                        body: (!action.data.is_null()).then(|| {
                            std::slice::from_raw_parts(action.data, action.data_len).to_vec()
                        }),
                        delay_ms: action.delay_ms,
                        attempt: 1,
                    };
                    let response = runtime.block_on(http.send(&request)).expect("an answer");
                    mynacard_machine_feed_http_response(
                        machine,
                        response.status,
                        response.retry_after.map_or(-1, i64::from),
                        response.body.as_ptr(),
                        response.body.len(),
                    )
                }
                MynacardActionKind::Done => break,
                other => panic!("unexpected action {other:?}"),
            }
        };
        assert_eq!(
            fed,
            MynacardStatus::Ok,
            "{:?}",
            text(unsafe {
                // SAFETY: a live machine.
                mynacard_machine_last_error(machine)
            })
        );
    }
    assert_eq!(apdus, 5, "the card side of a PIN registration");
    assert_eq!(
        pin_buffers,
        [[0u8; 4]],
        "the caller's PIN buffer is zeroized"
    );
    let mut outcome = null_mut();
    // SAFETY: live handles, each freed once.
    unsafe {
        assert_eq!(
            mynacard_machine_outcome(machine, &mut outcome),
            MynacardStatus::Ok
        );
        assert_eq!(
            mynacard_outcome_kind(outcome),
            MynacardOutcomeKind::Registered
        );
        assert!(!mynacard_outcome_registration_id(outcome).is_null());
        mynacard_outcome_free(outcome);
        mynacard_machine_free(machine);
    }
}

#[test]
fn the_machine_refuses_what_it_did_not_ask_for_and_zeroizes_a_refused_pin() {
    let mut machine = null_mut();
    // SAFETY: valid arguments; NULLs where tested; the machine is freed once.
    unsafe {
        assert_eq!(
            mynacard_machine_new(9, c"atm-0001".as_ptr(), 2, 0, &mut machine),
            MynacardStatus::InvalidArgument
        );
        assert_eq!(
            mynacard_machine_new(1, c"atm-0001".as_ptr(), 2, 0, &mut machine),
            MynacardStatus::Ok
        );
        // The first action is the card's, not the PIN.
        let mut typed = *b"1234";
        assert_eq!(
            mynacard_machine_feed_pin(machine, typed.as_mut_ptr(), 4),
            MynacardStatus::InvalidArgument
        );
        assert_eq!(typed, [0; 4], "zeroized also when refused");
        assert!(text(mynacard_machine_last_error(machine)).is_some());
        let mut outcome = null_mut();
        assert_eq!(
            mynacard_machine_outcome(machine, &mut outcome),
            MynacardStatus::InvalidArgument
        );
        assert_eq!(mynacard_machine_cancel(machine), MynacardStatus::Ok);
        assert!(mynacard_machine_last_error(machine).is_null());
        assert_eq!(
            mynacard_machine_outcome(machine, &mut outcome),
            MynacardStatus::Ok
        );
        assert_eq!(
            mynacard_outcome_kind(outcome),
            MynacardOutcomeKind::Cancelled
        );
        mynacard_outcome_free(outcome);
        assert_eq!(
            mynacard_machine_next_action(null_mut(), null_mut()),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_machine_feed_pin(null_mut(), typed.as_mut_ptr(), 4),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_machine_feed_pin(machine, null_mut(), 4),
            MynacardStatus::NullArgument
        );
        mynacard_machine_free(machine);
        mynacard_machine_free(null_mut());
    }
}

/// A face kiosk's devices: the card face as its camera reads it, the person in front of it,
/// and its attestation key.
struct Kiosk {
    collation_b: String,
    live_face: Vec<u8>,
    key: mynacard_registration::attestation::SoftwareAttestationKey,
    attested: u32,
}

unsafe extern "C-unwind" fn kiosk_collation(
    ctx: *mut c_void,
    _retries_left: i32,
    digits: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the test passes a `Kiosk` as `ctx`; the library passes `cap` writable bytes.
    let kiosk = unsafe { &*ctx.cast::<Kiosk>() };
    let b = kiosk.collation_b.as_bytes();
    assert!(b.len() <= cap);
    // SAFETY: as above; `len` is writable.
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), digits.cast::<u8>(), b.len());
        len.write(b.len());
    }
    1
}

unsafe extern "C-unwind" fn kiosk_match(
    ctx: *mut c_void,
    photo: *const u8,
    photo_len: usize,
    result: *mut MynacardFaceMatch,
) -> i32 {
    // SAFETY: the test passes a `Kiosk`; the photo and result are valid during the call.
    let (kiosk, photo) = unsafe {
        (
            &*ctx.cast::<Kiosk>(),
            std::slice::from_raw_parts(photo, photo_len),
        )
    };
    let same = !photo.is_empty() && photo == kiosk.live_face.as_slice();
    let r = MynacardFaceMatch {
        matched: i32::from(same),
        score_permille: if same { 962 } else { 118 },
        threshold_permille: 800,
    };
    // SAFETY: writable during the call.
    unsafe { result.write(r) };
    1
}

unsafe extern "C-unwind" fn kiosk_attest(
    ctx: *mut c_void,
    message: *const u8,
    message_len: usize,
    signature: *mut u8,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the test passes a `Kiosk`; the buffers are valid during the call.
    let (kiosk, message) = unsafe {
        (
            &mut *ctx.cast::<Kiosk>(),
            std::slice::from_raw_parts(message, message_len),
        )
    };
    kiosk.attested += 1;
    let sig = kiosk.key.sign(message);
    assert!(sig.len() <= cap);
    // SAFETY: `cap` writable bytes and a writable `len`.
    unsafe {
        std::ptr::copy_nonoverlapping(sig.as_ptr(), signature, sig.len());
        len.write(sig.len());
    }
    1
}

#[test]
fn a_kiosk_registers_a_face_card_and_then_checks_eligibility() {
    let image = mynacard_sim::image::CardImage::from_profile_name("face-auth").unwrap();
    let mut kiosk = Kiosk {
        collation_b: image.collation_number_b().unwrap().expose().to_owned(),
        live_face: image.face.photo.clone(),
        key: mynacard_registration::attestation::SoftwareAttestationKey::for_testing("kiosk-0001"),
        attested: 0,
    };
    let rig = Rig::new("face-auth");
    let client = rig.client("kiosk-0001", MynacardTerminalKind::Kiosk);
    let terminal = MynacardTerminal {
        ctx: (&mut kiosk as *mut Kiosk).cast(),
        consent: Some(agree),
        pin: None,
        collation_number_b: Some(kiosk_collation),
        match_face: Some(kiosk_match),
        attest: Some(kiosk_attest),
    };
    let transport = rig.transport();
    let mut kinds = Vec::new();
    for flow in [
        MynacardFlow::FaceRegistration,
        MynacardFlow::FaceEligibility,
    ] {
        let mut outcome = null_mut();
        // SAFETY: live client, transport and terminal; the outcome is freed once.
        unsafe {
            let status =
                mynacard_client_run(client, flow as i32, &transport, &terminal, &mut outcome);
            assert_eq!(
                status,
                MynacardStatus::Ok,
                "{:?}",
                text(mynacard_client_last_error(client))
            );
            kinds.push(owned(mynacard_outcome_kind_name(outcome)));
            mynacard_outcome_free(outcome);
        }
    }
    assert_eq!(kinds, ["registered", "eligible"]);
    assert_eq!(kiosk.attested, 2, "each face flow is attested");
    // SAFETY: a live client, freed once.
    unsafe { mynacard_client_free(client) };
}

/// The capture of a simulated card's holder at the kiosk's camera, read as a host reads it:
/// the length first, then the bytes.
fn holder_face(card: *const MynacardSimCard) -> Vec<u8> {
    let mut len = 0usize;
    // SAFETY: a live card; a NULL buffer of capacity 0 asks the length.
    let status = unsafe { mynacard_sim_holder_face(card, null_mut(), 0, &mut len) };
    assert_eq!(status, MynacardStatus::BufferTooSmall);
    assert!(len > 0, "the holder's face is not empty");
    let mut face = vec![0u8; len];
    // SAFETY: `face` holds `len` writable bytes.
    let status = unsafe { mynacard_sim_holder_face(card, face.as_mut_ptr(), len, &mut len) };
    assert_eq!(status, MynacardStatus::Ok);
    assert_eq!(len, face.len());
    face
}

/// A kiosk built on the `sim` test aids: the camera reads 照合番号B from the card face, the
/// kiosk's own matcher compares the person at the camera with the chip's photo, and the test
/// key signs.
struct SimKiosk {
    card: *mut MynacardSimCard,
    key: *mut MynacardSimAttestationKey,
    at_camera: Vec<u8>,
    photos_seen: u32,
}

unsafe extern "C-unwind" fn sim_kiosk_collation(
    ctx: *mut c_void,
    retries_left: i32,
    digits: *mut c_char,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the test passes a `SimKiosk`; the rest is forwarded as received.
    unsafe {
        let kiosk = &*ctx.cast::<SimKiosk>();
        mynacard_sim_collation_number_b(kiosk.card.cast(), retries_left, digits, cap, len)
    }
}

unsafe extern "C-unwind" fn sim_kiosk_match(
    ctx: *mut c_void,
    photo: *const u8,
    photo_len: usize,
    result: *mut MynacardFaceMatch,
) -> i32 {
    // SAFETY: the test passes a `SimKiosk`; the photo and result are valid during the call.
    let (kiosk, photo) = unsafe {
        (
            &mut *ctx.cast::<SimKiosk>(),
            std::slice::from_raw_parts(photo, photo_len),
        )
    };
    kiosk.photos_seen += 1;
    let same = photo == kiosk.at_camera.as_slice();
    let r = MynacardFaceMatch {
        matched: i32::from(same),
        score_permille: if same { 1000 } else { 0 },
        threshold_permille: 800,
    };
    // SAFETY: writable during the call.
    unsafe { result.write(r) };
    1
}

unsafe extern "C-unwind" fn sim_kiosk_attest(
    ctx: *mut c_void,
    message: *const u8,
    message_len: usize,
    signature: *mut u8,
    cap: usize,
    len: *mut usize,
) -> i32 {
    // SAFETY: the test passes a `SimKiosk`; the rest is forwarded as received.
    unsafe {
        let kiosk = &*ctx.cast::<SimKiosk>();
        mynacard_sim_attest(kiosk.key.cast(), message, message_len, signature, cap, len)
    }
}

#[test]
fn the_sim_kiosk_devices_register_a_face_card_and_check_eligibility() {
    let rig = Rig::new("face-auth");
    let client = rig.client("kiosk-0001", MynacardTerminalKind::Kiosk);
    let id = CString::new("kiosk-0001").unwrap();
    let mut key = null_mut();
    // SAFETY: a NUL-terminated id and a writable out-pointer.
    let status = unsafe { mynacard_sim_attestation_key_new(id.as_ptr(), &mut key) };
    assert_eq!(status, MynacardStatus::Ok);
    let mut stranger_card = null_mut();
    let adult = CString::new("adult").unwrap();
    // SAFETY: a NUL-terminated profile and a writable out-pointer.
    let status = unsafe { mynacard_sim_card_new(adult.as_ptr(), &mut stranger_card) };
    assert_eq!(status, MynacardStatus::Ok);
    let stranger = holder_face(stranger_card);
    let holder = holder_face(rig.card);
    assert_ne!(holder, stranger, "two cards, two faces");
    let image = mynacard_sim::image::CardImage::from_profile_name("face-auth").unwrap();
    assert_eq!(
        holder, image.face.photo,
        "the holder's face is the chip's photo"
    );

    let mut kiosk = SimKiosk {
        card: rig.card,
        key,
        at_camera: holder,
        photos_seen: 0,
    };
    let terminal = MynacardTerminal {
        ctx: (&mut kiosk as *mut SimKiosk).cast(),
        consent: Some(agree),
        pin: None,
        collation_number_b: Some(sim_kiosk_collation),
        match_face: Some(sim_kiosk_match),
        attest: Some(sim_kiosk_attest),
    };
    let transport = rig.transport();
    let mut kinds = Vec::new();
    for (flow, at_camera) in [
        (MynacardFlow::FaceRegistration, None),
        (MynacardFlow::FaceEligibility, None),
        (MynacardFlow::FaceEligibility, Some(stranger)),
    ] {
        if let Some(face) = at_camera {
            kiosk.at_camera = face;
        }
        let mut outcome = null_mut();
        // SAFETY: live client, transport and terminal; the outcome is freed once.
        unsafe {
            let status =
                mynacard_client_run(client, flow as i32, &transport, &terminal, &mut outcome);
            assert_eq!(
                status,
                MynacardStatus::Ok,
                "{:?}",
                text(mynacard_client_last_error(client))
            );
            kinds.push(owned(mynacard_outcome_kind_name(outcome)));
            mynacard_outcome_free(outcome);
        }
    }
    assert_eq!(kinds, ["registered", "eligible", "face_not_matched"]);
    assert_eq!(
        kiosk.photos_seen, 3,
        "the library asked the kiosk's matcher each time"
    );

    // Each aid refuses what it cannot do instead of writing past a buffer.
    let mut small = [0u8; 13];
    let mut len = 0usize;
    let message = [1u8, 2, 3];
    // SAFETY: live cards and key, buffers of the lengths passed.
    unsafe {
        assert_eq!(
            mynacard_sim_collation_number_b(
                rig.card.cast(),
                -1,
                small.as_mut_ptr().cast(),
                small.len(),
                &mut len
            ),
            0,
            "13 bytes cannot hold 照合番号B"
        );
        assert_eq!(
            mynacard_sim_attest(
                key.cast(),
                message.as_ptr(),
                3,
                small.as_mut_ptr(),
                13,
                &mut len
            ),
            0,
            "13 bytes cannot hold a signature"
        );
        assert_eq!(len, 0, "nothing was written");
        assert_eq!(
            mynacard_sim_holder_face(rig.card, small.as_mut_ptr(), small.len(), &mut len),
            MynacardStatus::BufferTooSmall
        );
        assert_eq!(small, [0u8; 13], "nothing was written");
        assert_eq!(
            mynacard_sim_holder_face(rig.card, null_mut(), 4, &mut len),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_sim_holder_face(null(), null_mut(), 0, &mut len),
            MynacardStatus::NullArgument
        );
        assert_eq!(
            mynacard_sim_attestation_key_new(null(), &mut key),
            MynacardStatus::NullArgument
        );
        mynacard_sim_attestation_key_free(kiosk.key);
        mynacard_sim_attestation_key_free(null_mut());
        mynacard_sim_card_free(stranger_card);
        mynacard_client_free(client);
    }
}

#[test]
fn a_registered_card_is_eligible_at_a_pin_clinic_reader() {
    let rig = Rig::new("contact");
    let atm = rig.client("atm-0001", MynacardTerminalKind::Atm);
    let clinic = rig.client("clinic-0002", MynacardTerminalKind::FaceReader);
    let mut keypad = Keypad {
        typed: vec!["1234", "1234"],
        ..Keypad::default()
    };
    let (status, registered) = run(atm, &rig.transport(), &mut keypad);
    assert_eq!(status, MynacardStatus::Ok);
    let terminal = terminal(&mut keypad);
    let mut eligible = null_mut();
    // SAFETY: live handles, each freed once.
    unsafe {
        assert_eq!(
            mynacard_outcome_kind(registered),
            MynacardOutcomeKind::Registered
        );
        let status = mynacard_client_run(
            clinic,
            MynacardFlow::PinEligibility as i32,
            &rig.transport(),
            &terminal,
            &mut eligible,
        );
        assert_eq!(status, MynacardStatus::Ok);
        assert_eq!(
            mynacard_outcome_kind(eligible),
            MynacardOutcomeKind::Eligible
        );
        mynacard_outcome_free(registered);
        mynacard_outcome_free(eligible);
        mynacard_client_free(atm);
        mynacard_client_free(clinic);
    }
}
