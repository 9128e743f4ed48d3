//! The state machines fed with recorded card and service bytes: every command the machine
//! sends is compared byte for byte with the script.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::collections::VecDeque;
use std::sync::Arc;

use mynacard_card::{CollationB, Pin};
use mynacard_registration::consent;
use mynacard_registration::intent::sha256_digest_info;
use mynacard_registration::machine::{
    Action, CardFailure, FlowConfig, HttpFailure, HttpMethod, HttpRequest, HttpResponse, Machine,
    MachineError, PollStep,
};
use mynacard_registration::messages::{
    Challenge, ConsentResponse, FaceDecision, FaceMatch, FailedState, Method, Operation,
    PendingState, PollInfo, Proof, RegistrationFailed, RegistrationPending, RegistrationResult,
    RegistrationStatus, TerminalKind,
};
use mynacard_registration::{
    ErrorBody, ErrorCode, Intent, Outcome, PollToken, RevocationReason, Sha256Digest, UtcTime, V1,
};
use proptest::prelude::*;

const SIGNED_AT: i64 = 1_775_035_805; // 2026-04-01T09:30:05Z
const SESSION: &str = "ses_01HZX5T7Q9M3";

/// SELECT the JPKI AP by name.
const SELECT_JPKI: &str = "00A4040C0AD392F000260100000001";
/// SELECT the visual AP by name.
const SELECT_VISUAL: &str = "00A4040C0AD3921000310001010402";
/// The auth PIN's tries left by short EF identifier: P2 = 80|18, no SELECT EF.
const AUTH_PIN_TRIES: &str = "00200098";
/// VERIFY of the auth PIN by short EF identifier, with 1234 and with 9999.
const VERIFY_1234: &str = "002000980431323334";
const VERIFY_9999: &str = "002000980439393939";
const SW_OK: &[u8] = &[0x90, 0x00];
/// "Incorrect P1-P2": a card without short-EF-identifier addressing for that command.
const SW_NO_SFI: &[u8] = &[0x6A, 0x86];
/// "Security status not satisfied": a smartphone token's certificate before VERIFY.
const SW_LOCKED: &[u8] = &[0x69, 0x82];
const THREE_TRIES: &[u8] = &[0x63, 0xC3];

fn config() -> FlowConfig {
    FlowConfig::new("atm-0001", TerminalKind::Atm)
        .with_clock(Arc::new(|| UtcTime::from_unix(SIGNED_AT)))
        .with_proof_retries(2, 100)
}

/// A DER SEQUENCE of 300 content bytes (304 in all): two READ BINARY chunks at 256.
fn fake_cert() -> Vec<u8> {
    let mut c = vec![0x30, 0x82, 0x01, 0x2C];
    c.extend((0..300u32).map(|i| (i % 251) as u8));
    c
}

fn ok(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.extend_from_slice(SW_OK);
    v
}

fn challenge(op: Operation) -> Challenge {
    Challenge {
        v: V1,
        session_id: SESSION.into(),
        op,
        nonce: Sha256Digest(core::array::from_fn(|i| i as u8)),
        issued_at: UtcTime::from_unix(SIGNED_AT - 5),
        expires_at: UtcTime::from_unix(SIGNED_AT + 115),
        consent: consent::current().reference().unwrap(),
        accepted_methods: vec![Method::PinSignature],
        accepted_roots: vec![],
    }
}

fn json<T: serde::Serialize>(status: u16, v: &T) -> HttpResponse {
    HttpResponse {
        status,
        retry_after: None,
        body: serde_json::to_vec(v).unwrap(),
    }
}

fn with_retry_after(mut r: HttpResponse, secs: u32) -> HttpResponse {
    r.retry_after = Some(secs);
    r
}

fn consent_response() -> HttpResponse {
    let doc = consent::current();
    json(
        200,
        &ConsentResponse {
            v: V1,
            consent: doc.reference().unwrap(),
            document: doc,
        },
    )
}

/// The intent the terminal signs for `challenge`: the fake certificate, at `SIGNED_AT`.
fn intent(challenge: &Challenge) -> Intent {
    Intent::for_challenge(
        challenge,
        "atm-0001",
        &fake_cert(),
        UtcTime::from_unix(SIGNED_AT),
    )
}

/// COMPUTE DIGITAL SIGNATURE over the intent's DigestInfo with the key `p2` names: 97 the auth
/// key by short EF identifier (80|17), 80 the current key EF, 00 the visual AP's own key.
fn sign_command(intent: &Intent, p2: u8) -> String {
    let digest_info = sha256_digest_info(&intent.sha256().unwrap());
    format!("802A00{p2:02X}33{}00", hex::encode_upper(digest_info))
}

// ---- Steps of a script --------------------------------------------------------------------

fn expect_card(m: &mut Machine, command_hex: &str, response: &[u8]) {
    match m.next_action() {
        Action::SendCard(c) => {
            assert_eq!(
                hex::encode_upper(c.bytes.as_slice()),
                command_hex.replace(' ', ""),
                "{}",
                c.purpose
            );
            m.feed_card_response(response).unwrap();
        }
        other => panic!("expected card command {command_hex}, got {other:?}"),
    }
}

fn expect_http(
    m: &mut Machine,
    method: HttpMethod,
    path: &str,
    response: HttpResponse,
) -> Option<Vec<u8>> {
    match m.next_action() {
        Action::SendHttp(r) => {
            assert_eq!((r.method, r.path.as_str()), (method, path));
            m.feed_http_response(response).unwrap();
            r.body
        }
        other => panic!("expected HTTP {path}, got {other:?}"),
    }
}

/// The session start posted to `path`, answered with `challenge`; the request's body.
fn expect_start(m: &mut Machine, path: &str, challenge: &Challenge) -> Vec<u8> {
    expect_http(m, HttpMethod::Post, path, json(201, challenge)).expect("a start has a body")
}

/// The next action is a request to the service, not yet answered.
fn expect_request(m: &Machine) -> HttpRequest {
    match m.next_action() {
        Action::SendHttp(r) => r,
        other => panic!("expected an HTTP request, got {other:?}"),
    }
}

/// The consent document fetched and shown as the service sent it, and the person's answer.
fn answer_consent(m: &mut Machine, agree: bool) {
    expect_http(m, HttpMethod::Get, "/v1/consent", consent_response());
    match m.next_action() {
        Action::ShowConsent(p) => {
            assert_eq!(p.document, consent::current());
            m.feed_consent(agree).unwrap();
        }
        other => panic!("expected the consent before any PIN, got {other:?}"),
    }
}

fn expect_pin_prompt(m: &Machine, retries_left: u8) {
    match m.next_action() {
        Action::AskPin { retries_left: r } => assert_eq!(r, Some(retries_left)),
        other => panic!("expected the PIN prompt, got {other:?}"),
    }
}

fn type_pin(m: &mut Machine, pin: &str) {
    m.feed_pin(Pin::new(pin).unwrap()).unwrap();
}

/// The next action is a VERIFY that spends a try and never shows its secret in `Debug`.
fn expect_secret_verify(m: &Machine) {
    match m.next_action() {
        Action::SendCard(c) => {
            assert!(c.spends_attempt);
            assert!(
                format!("{:?}", c.bytes).contains("redacted"),
                "the secret never shows in Debug"
            );
        }
        other => panic!("expected a VERIFY, got {other:?}"),
    }
}

/// The link fails while a VERIFY is out: the flow ends saying the try may have been counted.
fn lose_link_during_verify(m: &mut Machine, failure: CardFailure) {
    m.feed_card_failure(failure).unwrap();
    assert_eq!(
        done(m),
        Outcome::CardRemoved {
            attempt_may_have_been_counted: true
        }
    );
}

fn done(m: &Machine) -> Outcome {
    match m.next_action() {
        Action::Done(o) => o,
        other => panic!("expected the end, got {other:?}"),
    }
}

/// A PIN-signature proof: its intent, the fake certificate it binds, and `signature`.
fn check_pin_signature_proof(body: &[u8], intent: &Intent, signature: &[u8]) {
    match serde_json::from_slice::<Proof>(body).unwrap() {
        Proof::PinSignature {
            intent: sent,
            auth_cert,
            signature: sig,
            ..
        } => {
            assert_eq!(&sent, intent);
            assert_eq!(auth_cert.0, fake_cert());
            assert_eq!(sig.0, signature);
            assert_eq!(sent.cert_sha256, Sha256Digest::of(&fake_cert()));
        }
        other => panic!("expected a PIN signature proof, got {other:?}"),
    }
}

// ---- Script prefixes ----------------------------------------------------------------------

/// The auth certificate by short EF identifier: the first 256 bytes by identifier 0A, the rest
/// after SELECT EF.
fn read_cert_by_sfi(m: &mut Machine) {
    let cert = fake_cert();
    expect_card(m, "00B08A0000", &ok(&cert[..256]));
    expect_card(m, "00A4020C02000A", SW_OK);
    expect_card(m, "00B0010030", &ok(&cert[256..]));
}

fn select_jpki_and_read_cert(m: &mut Machine) {
    expect_card(m, SELECT_JPKI, SW_OK);
    read_cert_by_sfi(m);
}

/// The same on a card that refuses READ BINARY by identifier: SELECT EF, both chunks by offset.
fn select_jpki_and_read_cert_by_select(m: &mut Machine) {
    let cert = fake_cert();
    expect_card(m, SELECT_JPKI, SW_OK);
    expect_card(m, "00B08A0000", SW_NO_SFI);
    expect_card(m, "00A4020C02000A", SW_OK);
    expect_card(m, "00B0000000", &ok(&cert[..256]));
    expect_card(m, "00B0010030", &ok(&cert[256..]));
}

/// A smartphone token (`JPKIAPGPSETOKEN`): its auth certificate answers `6982` before VERIFY.
fn select_token_cert_locked(m: &mut Machine) {
    expect_card(m, SELECT_JPKI, SW_OK);
    expect_card(m, "00B08A0000", SW_LOCKED);
}

/// Runs a PIN flow up to the PIN prompt: select, read certificate, consent, tries left.
fn up_to_pin(m: &mut Machine, tries: &[u8]) {
    select_jpki_and_read_cert(m);
    if m.operation() != Operation::DeregisterInsuranceUse {
        answer_consent(m, true);
    }
    expect_card(m, AUTH_PIN_TRIES, tries);
}

/// A PIN flow with three tries left, `pin` typed: next comes the session start.
fn up_to_start(m: &mut Machine, pin: &str) {
    up_to_pin(m, THREE_TRIES);
    type_pin(m, pin);
}

/// A PIN registration up to its VERIFY by short EF identifier, with `pin`.
fn up_to_verify(m: &mut Machine, pin: &str) {
    up_to_start(m, pin);
    expect_start(
        m,
        "/v1/registrations",
        &challenge(Operation::RegisterInsuranceUse),
    );
}

/// Runs a PIN flow of `op` (PIN 1234) up to the proof and returns the proof request.
fn up_to_proof(m: &mut Machine, op: Operation) -> HttpRequest {
    up_to_start(m, "1234");
    expect_start(m, op.start_path(), &challenge(op));
    expect_card(m, VERIFY_1234, SW_OK);
    match m.next_action() {
        Action::SendCard(c) => {
            assert_eq!(c.command.ins, 0x2A);
            m.feed_card_response(&ok(&[0x5A; 256])).unwrap();
        }
        other => panic!("expected the signature, got {other:?}"),
    }
    let proof = expect_request(m);
    assert_eq!(proof.path, op.proof_path(SESSION));
    proof
}

/// A PIN registration (default configuration) whose proof is out; the proof request.
fn registration_at_proof() -> (Machine, HttpRequest) {
    let mut m = Machine::register_with_pin(config());
    let proof = up_to_proof(&mut m, Operation::RegisterInsuranceUse);
    (m, proof)
}

/// A smartphone token up to the PIN prompt: without its certificate, the flow goes on to the
/// consent and the tries left.
fn smartphone_up_to_pin(m: &mut Machine, tries: &[u8]) {
    select_token_cert_locked(m);
    answer_consent(m, true);
    expect_card(m, AUTH_PIN_TRIES, tries);
}

// ---- PIN flows ----------------------------------------------------------------------------

#[test]
fn pin_registration_sends_exactly_the_recorded_apdus_and_a_verifiable_proof() {
    let mut m = Machine::register_with_pin(config());
    up_to_pin(&mut m, THREE_TRIES);
    expect_pin_prompt(&m, 3);
    // A value that is not a PIN cannot even be made, so it never reaches the machine.
    assert!(Pin::new("12a4").is_err());
    assert!(
        matches!(m.next_action(), Action::AskPin { .. }),
        "a bad PIN format spends nothing"
    );
    type_pin(&mut m, "1234");
    let start = expect_start(
        &mut m,
        "/v1/registrations",
        &challenge(Operation::RegisterInsuranceUse),
    );
    let start: serde_json::Value = serde_json::from_slice(&start).unwrap();
    assert_eq!(
        start["methods_supported"],
        serde_json::json!(["pin_signature"])
    );
    expect_card(&mut m, VERIFY_1234, SW_OK);

    let intent = intent(&challenge(Operation::RegisterInsuranceUse));
    let signature = vec![0x5A; 256];
    // The card hands the signature out in two parts (61xx, GET RESPONSE).
    expect_card(
        &mut m,
        &sign_command(&intent, 0x97),
        &[&signature[..200], &[0x61, 56][..]].concat(),
    );
    expect_card(&mut m, "00C0000038", &ok(&signature[200..]));

    let result = RegistrationResult {
        registration_id: "reg_1".into(),
        registered_at: UtcTime::from_unix(SIGNED_AT + 1),
        ..registered_result()
    };
    let proof = expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations/ses_01HZX5T7Q9M3/proof",
        json(200, &result),
    )
    .unwrap();
    check_pin_signature_proof(&proof, &intent, &signature);
    assert_eq!(
        done(&m),
        Outcome::Registered {
            registration_id: "reg_1".into(),
            insurer_name: Some("みらい健康保険組合".into())
        }
    );
}

#[test]
fn one_try_left_is_not_spent_unless_allowed() {
    let mut m = Machine::register_with_pin(config());
    up_to_pin(&mut m, &[0x63, 0xC1]);
    assert_eq!(done(&m), Outcome::LastAttemptRefused);

    let mut m = Machine::register_with_pin(config().with_allow_last_attempt(true));
    up_to_pin(&mut m, &[0x63, 0xC1]);
    expect_pin_prompt(&m, 1);
}

#[test]
fn blocked_pin_is_never_asked() {
    for sw in [[0x63, 0xC0], [0x69, 0x84]] {
        let mut m = Machine::register_with_pin(config());
        up_to_pin(&mut m, &sw);
        assert_eq!(done(&m), Outcome::PinBlocked);
    }
}

#[test]
fn wrong_pin_ends_the_flow_after_one_verify() {
    let mut m = Machine::register_with_pin(config());
    up_to_verify(&mut m, "9999");
    expect_card(&mut m, VERIFY_9999, &[0x63, 0xC2]);
    assert_eq!(done(&m), Outcome::WrongPin { retries_left: 2 });
}

#[test]
fn link_lost_during_verify_may_have_counted_the_attempt() {
    let mut m = Machine::register_with_pin(config());
    up_to_verify(&mut m, "9999");
    expect_secret_verify(&m);
    lose_link_during_verify(&mut m, CardFailure::Removed);
}

#[test]
fn face_card_without_auth_pin_is_sent_to_a_face_terminal() {
    // No PIN behind identifier 18 (6A88 referenced data not found; 6A82 from some cards).
    for sw in [[0x6A, 0x88], [0x6A, 0x82]] {
        let mut m = Machine::register_with_pin(config());
        up_to_pin(&mut m, &sw);
        assert_eq!(done(&m), Outcome::NoAuthPin, "{sw:02X?}");
    }
}

#[test]
fn declined_consent_asks_no_pin() {
    let mut m = Machine::register_with_pin(config());
    select_jpki_and_read_cert(&mut m);
    answer_consent(&mut m, false);
    assert_eq!(done(&m), Outcome::ConsentDeclined);
    assert!(m.feed_pin(Pin::new("1234").unwrap()).is_err());
}

#[test]
fn a_tampered_consent_document_is_refused() {
    let mut m = Machine::register_with_pin(config());
    select_jpki_and_read_cert(&mut m);
    let mut doc = consent::current();
    let reference = doc.reference().unwrap();
    doc.sections[0].text.ja.push_str("追加");
    expect_http(
        &mut m,
        HttpMethod::Get,
        "/v1/consent",
        json(
            200,
            &ConsentResponse {
                v: V1,
                consent: reference,
                document: doc,
            },
        ),
    );
    assert!(matches!(done(&m), Outcome::ProtocolError { .. }));
}

#[test]
fn an_interrupted_proof_is_resent_unchanged_then_given_up() {
    let (mut m, first) = registration_at_proof();
    assert_eq!(first.attempt, 1);
    m.feed_http_failure(HttpFailure::Interrupted).unwrap();
    let second = expect_request(&m);
    assert_eq!((second.attempt, second.delay_ms), (2, 100));
    assert_eq!(second.body, first.body, "a resend is byte-identical");
    assert_eq!(m.proof_body(), first.body.as_deref());
    m.feed_http_failure(HttpFailure::Connect).unwrap();
    let third = expect_request(&m);
    assert_eq!((third.attempt, third.delay_ms), (3, 200));
    m.feed_http_failure(HttpFailure::Connect).unwrap();
    assert_eq!(
        done(&m),
        Outcome::ServiceUnreachable {
            proof_may_have_arrived: true
        }
    );
    assert!(m.cancel().is_err());
}

#[test]
fn service_errors_become_typed_outcomes() {
    let cases: Vec<(ErrorBody, Option<u32>, Outcome)> = vec![
        (
            ErrorBody::new(ErrorCode::CertRevoked, "revoked")
                .with_reason(RevocationReason::KeyCompromise),
            None,
            Outcome::CertificateRevoked {
                reason: Some(RevocationReason::KeyCompromise),
            },
        ),
        (
            ErrorBody::new(ErrorCode::CertUntrusted, "test card"),
            None,
            Outcome::CertificateUntrusted,
        ),
        (
            ErrorBody::new(ErrorCode::NoInsuranceRecord, "none"),
            None,
            Outcome::NoInsuranceRecord,
        ),
        (
            ErrorBody::new(ErrorCode::SessionExpired, "late"),
            None,
            Outcome::SessionExpired,
        ),
        (
            ErrorBody::new(ErrorCode::Maintenance, "m").with_retry_after(60),
            Some(90),
            Outcome::Maintenance {
                retry_after: Some(90),
            },
        ),
        (
            ErrorBody::new(ErrorCode::NonceReplay, "replay"),
            None,
            Outcome::Rejected {
                code: ErrorCode::NonceReplay,
                message: "replay".into(),
            },
        ),
    ];
    for (body, header, expected) in cases {
        let (mut m, _) = registration_at_proof();
        m.feed_http_response(HttpResponse {
            retry_after: header,
            ..json(body.http_status(), &body)
        })
        .unwrap();
        assert_eq!(done(&m), expected);
    }
}

#[test]
fn rate_limit_on_start_says_when_to_come_back() {
    let mut m = Machine::register_with_pin(config());
    up_to_start(&mut m, "1234");
    let body = ErrorBody::new(ErrorCode::RateLimited, "slow down").with_retry_after(5);
    expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations",
        with_retry_after(json(429, &body), 5),
    );
    assert_eq!(
        done(&m),
        Outcome::ServiceBusy {
            retry_after: Some(5)
        }
    );
}

#[test]
fn deregistration_shows_no_consent_and_binds_the_challenge_hash() {
    let mut m = Machine::deregister(config());
    up_to_start(&mut m, "1234");
    expect_start(
        &mut m,
        "/v1/deregistrations",
        &challenge(Operation::DeregisterInsuranceUse),
    );
    expect_card(&mut m, VERIFY_1234, SW_OK);
}

#[test]
fn a_challenge_for_another_operation_is_refused() {
    let mut m = Machine::check_eligibility_with_pin(config());
    up_to_start(&mut m, "1234");
    expect_start(
        &mut m,
        "/v1/eligibility",
        &challenge(Operation::RegisterInsuranceUse),
    );
    assert!(matches!(done(&m), Outcome::ProtocolError { .. }));
}

#[test]
fn face_method_refused_by_the_challenge_means_terminal_not_accepted() {
    let mut m = Machine::register_with_pin(config());
    up_to_start(&mut m, "1234");
    let c = Challenge {
        accepted_methods: vec![Method::AccreditedFace],
        ..challenge(Operation::RegisterInsuranceUse)
    };
    expect_start(&mut m, "/v1/registrations", &c);
    assert_eq!(done(&m), Outcome::TerminalNotAccepted);
}

// ---- Smartphone tokens --------------------------------------------------------------------

#[test]
fn smartphone_token_reads_its_certificate_after_verify_then_signs() {
    for (op, start_path) in [
        (Operation::RegisterInsuranceUse, "/v1/registrations"),
        (Operation::CheckEligibility, "/v1/eligibility"),
    ] {
        let mut m = match op {
            Operation::RegisterInsuranceUse => Machine::register_with_pin(config()),
            _ => Machine::check_eligibility_with_pin(config()),
        };
        smartphone_up_to_pin(&mut m, THREE_TRIES);
        expect_pin_prompt(&m, 3);
        type_pin(&mut m, "1234");
        expect_start(&mut m, start_path, &challenge(op));
        expect_card(&mut m, VERIFY_1234, SW_OK);
        // Now the certificate opens: read it, then the signature.
        read_cert_by_sfi(&mut m);
        let intent = intent(&challenge(op));
        let signature = vec![0x3C; 256];
        expect_card(&mut m, &sign_command(&intent, 0x97), &ok(&signature));
        let proof = expect_request(&m);
        assert_eq!(proof.path, format!("{start_path}/ses_01HZX5T7Q9M3/proof"));
        check_pin_signature_proof(&proof.body.unwrap(), &intent, &signature);
    }
}

#[test]
fn smartphone_token_wrong_pin_reads_no_certificate_and_verifies_once() {
    let mut m = Machine::register_with_pin(config());
    smartphone_up_to_pin(&mut m, THREE_TRIES);
    type_pin(&mut m, "9999");
    expect_start(
        &mut m,
        "/v1/registrations",
        &challenge(Operation::RegisterInsuranceUse),
    );
    expect_card(&mut m, VERIFY_9999, &[0x63, 0xC2]);
    assert_eq!(done(&m), Outcome::WrongPin { retries_left: 2 });
}

#[test]
fn smartphone_token_keeps_pin_safety() {
    // One try left: refused before the PIN is asked.
    let mut m = Machine::register_with_pin(config());
    smartphone_up_to_pin(&mut m, &[0x63, 0xC1]);
    assert_eq!(done(&m), Outcome::LastAttemptRefused);
    // Declined consent: no PIN, no card command after the refused read.
    let mut m = Machine::check_eligibility_with_pin(config());
    select_token_cert_locked(&mut m);
    answer_consent(&mut m, false);
    assert_eq!(done(&m), Outcome::ConsentDeclined);
    // A certificate still refused after VERIFY is a card error, never a second VERIFY.
    let mut m = Machine::register_with_pin(config());
    smartphone_up_to_pin(&mut m, THREE_TRIES);
    type_pin(&mut m, "1234");
    expect_start(
        &mut m,
        "/v1/registrations",
        &challenge(Operation::RegisterInsuranceUse),
    );
    expect_card(&mut m, VERIFY_1234, SW_OK);
    expect_card(&mut m, "00B08A0000", SW_LOCKED);
    assert_eq!(
        done(&m),
        Outcome::CardError {
            what: "read auth certificate",
            sw: Some(0x6982)
        }
    );
    // 6982 part-way through the certificate is not taken for a token.
    let mut m = Machine::register_with_pin(config());
    let cert = fake_cert();
    expect_card(&mut m, SELECT_JPKI, SW_OK);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", SW_OK);
    expect_card(&mut m, "00B0010030", SW_LOCKED);
    assert!(matches!(done(&m), Outcome::CardError { .. }));
    // The face method cannot open the certificate without a PIN.
    let mut m = Machine::register_with_face(config());
    select_token_cert_locked(&mut m);
    assert!(matches!(done(&m), Outcome::CardError { .. }));
}

#[test]
fn smartphone_token_withdrawal_asks_no_consent() {
    let mut m = Machine::deregister(config());
    select_token_cert_locked(&mut m);
    expect_card(&mut m, AUTH_PIN_TRIES, THREE_TRIES);
    assert!(matches!(m.next_action(), Action::AskPin { .. }));
}

#[derive(Debug, Clone)]
enum Input {
    Card(Vec<u8>),
    CardFailure,
    Http(u16, Vec<u8>),
    HttpFailure,
    Consent(bool),
    Pin(String),
    CollationB(String),
    Face(u16),
}

/// A VERIFY with reference data the machine sent, and what came back.
#[derive(Debug)]
struct SentVerify {
    p2: u8,
    /// SW1-SW2 of the answer; `None` for a link failure or an answer too short to carry one.
    sw: Option<[u8; 2]>,
}

proptest! {
    // Whatever the card and the service answer, no machine panics, and none sends the PIN or
    // 照合番号B a second time unless the card refused the first VERIFY, sent by short EF
    // identifier, with 6A86 (a P1-P2 rejection, before any check of the value).
    #[test]
    fn arbitrary_answers_never_panic_nor_repeat_verify(
        flow in 0u8..4,
        inputs in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(Input::Card),
                Just(Input::Card(vec![0x90, 0x00])),
                Just(Input::Card(vec![0x63, 0xC3])),
                // A smartphone token's auth certificate before VERIFY.
                Just(Input::Card(vec![0x69, 0x82])),
                // A card without short-EF-identifier addressing.
                Just(Input::Card(vec![0x6A, 0x86])),
                Just(Input::CardFailure),
                (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(s, b)| Input::Http(s, b)),
                Just(Input::HttpFailure),
                any::<bool>().prop_map(Input::Consent),
                "[0-9]{4}".prop_map(Input::Pin),
                "[0-9]{14}".prop_map(Input::CollationB),
                (0u16..1001).prop_map(Input::Face),
            ],
            0..80,
        ),
    ) {
        let mut m = match flow {
            0 => Machine::register_with_pin(config()),
            1 => Machine::check_eligibility_with_pin(config()),
            2 => Machine::deregister(config()),
            _ => Machine::register_with_face(config()),
        };
        let mut queue: VecDeque<Input> = inputs.into();
        let mut verifies: Vec<SentVerify> = Vec::new();
        while let Some(input) = queue.pop_front() {
            let verify_p2 = match m.next_action() {
                Action::SendCard(c)
                    if c.command.ins == 0x20 && !c.command.data_bytes().is_empty() =>
                {
                    prop_assert!(c.spends_attempt);
                    Some(c.command.p2)
                }
                _ => None,
            };
            let sw = match &input {
                Input::Card(b) if b.len() >= 2 => Some([b[b.len() - 2], b[b.len() - 1]]),
                _ => None,
            };
            let fed = match input {
                Input::Card(b) => m.feed_card_response(&b),
                Input::CardFailure => m.feed_card_failure(CardFailure::Transport),
                Input::Http(s, b) => m.feed_http_response(HttpResponse { status: s, retry_after: None, body: b }),
                Input::HttpFailure => m.feed_http_failure(HttpFailure::Interrupted),
                Input::Consent(a) => m.feed_consent(a),
                Input::Pin(p) => m.feed_pin(Pin::new(&p).unwrap()),
                Input::CollationB(b) => m.feed_collation_number_b(CollationB::from_digits(&b).unwrap()),
                Input::Face(score) => m.feed_face_match(FaceMatch {
                    decision: FaceDecision::Match,
                    score_permille: score,
                    threshold_permille: 500,
                }),
            };
            if let Some(p2) = verify_p2 {
                // Only a card answer or failure reaches the outstanding VERIFY.
                if fed.is_ok() {
                    verifies.push(SentVerify { p2, sw });
                }
            }
        }
        prop_assert!(verifies.len() <= 2, "{verifies:?}");
        if let [first, _second] = verifies.as_slice() {
            prop_assert!((0x81..=0x9E).contains(&first.p2), "{verifies:?}");
            prop_assert_eq!(first.sw, Some([0x6A, 0x86]), "{:?}", verifies);
        }
    }
}

// ---- Cards without extended length or short-EF-identifier addressing ----------------------

#[test]
fn extended_reads_fall_back_to_short_ones_when_refused() {
    let mut m = Machine::register_with_pin(config());
    m.set_read_chunk(65_536);
    expect_card(&mut m, SELECT_JPKI, SW_OK);
    // One extended READ BINARY by SFI (Le = 00 00: as much as there is) …
    expect_card(&mut m, "00B08A00000000", &[0x67, 0x00]);
    // … refused, so the file is read in short chunks: the first by SFI, the rest by offset.
    read_cert_by_sfi(&mut m);
    assert!(matches!(m.next_action(), Action::SendHttp(_)));

    let mut m = Machine::register_with_pin(config());
    m.set_read_chunk(65_536);
    expect_card(&mut m, SELECT_JPKI, SW_OK);
    // The whole certificate in one command, no SELECT EF; the card says it hit the end of the
    // file.
    expect_card(
        &mut m,
        "00B08A00000000",
        &[&fake_cert()[..], &[0x62, 0x82][..]].concat(),
    );
    assert!(matches!(m.next_action(), Action::SendHttp(_)));
}

/// A card that answers `6A86` to every short-EF-identifier form: the machine falls back to
/// SELECT EF and the current-EF forms, once per form, and the PIN goes to the card once.
#[test]
fn a_card_refusing_short_ef_identifiers_is_driven_by_select() {
    let mut m = Machine::register_with_pin(config());
    select_jpki_and_read_cert_by_select(&mut m);
    answer_consent(&mut m, true);
    expect_card(&mut m, AUTH_PIN_TRIES, SW_NO_SFI);
    expect_card(&mut m, "00A4020C020018", SW_OK);
    expect_card(&mut m, "00200080", THREE_TRIES);
    expect_pin_prompt(&m, 3);
    type_pin(&mut m, "1234");
    expect_start(
        &mut m,
        "/v1/registrations",
        &challenge(Operation::RegisterInsuranceUse),
    );
    // The card already refused the SFI form of VERIFY, and EF 0018 is still the current EF
    // from the status query: the one VERIFY by current EF, without selecting it again.
    expect_secret_verify(&m);
    expect_card(&mut m, "002000800431323334", SW_OK);
    let intent = intent(&challenge(Operation::RegisterInsuranceUse));
    expect_card(&mut m, &sign_command(&intent, 0x97), SW_NO_SFI);
    expect_card(&mut m, "00A4020C020017", SW_OK);
    let signature = vec![0x77; 256];
    expect_card(&mut m, &sign_command(&intent, 0x80), &ok(&signature));
    check_pin_signature_proof(&expect_request(&m).body.unwrap(), &intent, &signature);
}

/// A PIN registration whose VERIFY by short EF identifier (PIN 9999) was refused with `6A86`:
/// the machine selects the PIN's EF for the one retry.
fn verify_refused_for_its_p2(m: &mut Machine) {
    up_to_verify(m, "9999");
    expect_card(m, VERIFY_9999, SW_NO_SFI);
    expect_card(m, "00A4020C020018", SW_OK);
}

#[test]
fn a_verify_refused_for_its_p2_is_sent_once_more_by_select_and_never_again() {
    // 6A86 before any PIN check: SELECT EF, then VERIFY by current EF, whose answer stands.
    let mut m = Machine::register_with_pin(config());
    verify_refused_for_its_p2(&mut m);
    expect_card(&mut m, "002000800439393939", &[0x63, 0xC2]);
    assert_eq!(done(&m), Outcome::WrongPin { retries_left: 2 });

    // The current-EF form refused as well: that is the end, no third VERIFY.
    let mut m = Machine::register_with_pin(config());
    verify_refused_for_its_p2(&mut m);
    expect_card(&mut m, "002000800439393939", SW_NO_SFI);
    assert_eq!(
        done(&m),
        Outcome::CardError {
            what: "verify auth PIN",
            sw: Some(0x6A86)
        }
    );

    // The link lost during the second VERIFY: the attempt may have been counted.
    let mut m = Machine::register_with_pin(config());
    verify_refused_for_its_p2(&mut m);
    expect_secret_verify(&m);
    lose_link_during_verify(&mut m, CardFailure::Removed);
}

#[test]
fn any_other_answer_to_the_sfi_verify_ends_the_flow_without_a_second_verify() {
    for sw in [
        [0x6B, 0x00],
        [0x69, 0x82],
        [0x69, 0x85],
        [0x67, 0x00],
        [0x6D, 0x00],
    ] {
        let mut m = Machine::register_with_pin(config());
        up_to_verify(&mut m, "1234");
        expect_card(&mut m, VERIFY_1234, &sw);
        assert_eq!(
            done(&m),
            Outcome::CardError {
                what: "verify auth PIN",
                sw: Some(u16::from_be_bytes(sw))
            },
            "{sw:02X?}"
        );
    }
    // An answer that neither accepts nor refuses before checking (6F00, a damaged 63Cx): the
    // attempt may have been counted, and the person is told so; still no second VERIFY.
    for sw in [[0x6F, 0x00], [0x64, 0x00], [0x63, 0x00], [0x6A, 0xC2]] {
        let mut m = Machine::register_with_pin(config());
        up_to_verify(&mut m, "1234");
        expect_card(&mut m, VERIFY_1234, &sw);
        assert_eq!(
            done(&m),
            Outcome::CardRemoved {
                attempt_may_have_been_counted: true
            },
            "{sw:02X?}"
        );
    }
    // A key that is not there (6A88, 6A82), after its tries were read: the card has no auth
    // PIN, as when the tries cannot be read; still no second VERIFY.
    for sw in [[0x6A, 0x88], [0x6A, 0x82]] {
        let mut m = Machine::register_with_pin(config());
        up_to_verify(&mut m, "1234");
        expect_card(&mut m, VERIFY_1234, &sw);
        assert_eq!(done(&m), Outcome::NoAuthPin, "{sw:02X?}");
    }
    // Lost during the VERIFY by SFI: counted or not, it is not sent again.
    let mut m = Machine::register_with_pin(config());
    up_to_verify(&mut m, "1234");
    lose_link_during_verify(&mut m, CardFailure::Transport);
}

#[test]
fn a_signature_refused_after_a_6a86_fallback_is_not_retried_again() {
    let mut m = Machine::register_with_pin(config());
    up_to_verify(&mut m, "1234");
    expect_card(&mut m, VERIFY_1234, SW_OK);
    let intent = intent(&challenge(Operation::RegisterInsuranceUse));
    expect_card(&mut m, &sign_command(&intent, 0x97), SW_NO_SFI);
    expect_card(&mut m, "00A4020C020017", SW_OK);
    expect_card(&mut m, &sign_command(&intent, 0x80), SW_NO_SFI);
    assert_eq!(
        done(&m),
        Outcome::CardError {
            what: "sign intent",
            sw: Some(0x6A86)
        }
    );
}

// ---- The accredited face flow -------------------------------------------------------------

const COLLATION_B: &str = "55021720352285";

fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    mynacard_apdu::tlv::ber::to_vec(tag, value).unwrap()
}

/// A card-face record `FF20 { DF21 … DF29 }` of 400-odd bytes (two short reads) and its three
/// signed segments.
fn face_record() -> (Vec<u8>, [Vec<u8>; 3]) {
    let seg1 = [
        tlv(0xDF22, b"19800217"),
        tlv(0xDF23, b"2"),
        tlv(0xDF24, &[0x90, 0x03, 1, 0, 1]),
    ]
    .concat();
    let seg2 = [tlv(0xDF25, &[0x11; 40]), tlv(0xDF26, &[0x22; 40])].concat();
    let seg3 = tlv(0xDF27, &[0x33; 100]);
    let inner = [
        tlv(0xDF21, &[0; 8]),
        seg1.clone(),
        seg2.clone(),
        seg3.clone(),
        tlv(0xDF28, &[0x44; 256]),
        tlv(0xDF29, b"20350217"),
    ]
    .concat();
    (tlv(0xFF20, &inner), [seg1, seg2, seg3])
}

/// A stand-in CVC `7F21 { … }` that fits one short read.
fn cvc() -> Vec<u8> {
    tlv(0x7F21, &[0x5E; 120])
}

fn face_challenge() -> Challenge {
    Challenge {
        accepted_methods: vec![Method::AccreditedFace],
        ..challenge(Operation::RegisterInsuranceUse)
    }
}

fn face_match() -> FaceMatch {
    FaceMatch {
        decision: FaceDecision::Match,
        score_permille: 950,
        threshold_permille: 900,
    }
}

/// VERIFY of 照合番号B `digits` on EF 0012, named by `p2`: 92 by short EF identifier (80|12),
/// 80 the current EF.
fn verify_collation_b(p2: u8, digits: &str) -> String {
    format!("002000{p2:02X}0E{}", hex::encode_upper(digits))
}

/// A face registration up to 照合番号B: the JPKI certificate, the consent, SELECT visual AP,
/// and the tries left of EF 0012 by identifier (ten).
fn face_up_to_collation_b(m: &mut Machine) {
    select_jpki_and_read_cert(m);
    answer_consent(m, true);
    expect_card(m, SELECT_VISUAL, SW_OK);
    expect_card(m, "00200092", &[0x63, 0xCA]);
}

/// The rest of the card face by offset, after its first 256 bytes: then the terminal is asked
/// to match the photo.
fn read_rest_of_face_up_to_match(m: &mut Machine, face: &[u8]) {
    expect_card(
        m,
        &format!("00B00100{:02X}", face.len() - 256),
        &ok(&face[256..]),
    );
    assert!(matches!(m.next_action(), Action::MatchFace { .. }));
}

/// The face registration from the matched face to the proof: CVC, start, presence signature,
/// attestation; then the proof's evidence is checked. `cvc_commands` are the CVC read's
/// commands and answers.
fn face_match_to_proof(m: &mut Machine, cvc_commands: &[(&str, Vec<u8>)]) {
    m.feed_face_match(face_match()).unwrap();
    for (command, answer) in cvc_commands {
        expect_card(m, command, answer);
    }
    expect_start(m, "/v1/registrations", &face_challenge());
    let intent = intent(&face_challenge());
    // The visual AP's own key (P2 00): there is no key file to name, and no SFI form.
    expect_card(m, &sign_command(&intent, 0x00), &ok(&[0x66; 256]));
    match m.next_action() {
        Action::SignAttestation { .. } => m.feed_attestation(vec![9; 64]).unwrap(),
        other => panic!("{other:?}"),
    }
    let proof: Proof = serde_json::from_slice(&expect_request(m).body.unwrap()).unwrap();
    let (_, segments) = face_record();
    match &proof {
        Proof::AccreditedFace {
            auth_cert,
            face_evidence,
            ..
        } => {
            assert_eq!(face_evidence.intent, intent);
            assert_eq!(auth_cert.0, fake_cert());
            assert_eq!(
                face_evidence.card_face_digests,
                segments
                    .iter()
                    .map(|s| Sha256Digest::of(s))
                    .collect::<Vec<_>>()
            );
            assert_eq!(face_evidence.card_face_signature.0, vec![0x44; 256]);
            assert_eq!(face_evidence.cvc.0, cvc());
            assert_eq!(face_evidence.presence_signature.0, vec![0x66; 256]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn face_registration_addresses_every_file_and_key_by_short_identifier() {
    let mut m = Machine::register_with_face(config());
    let (face, _) = face_record();
    assert!(face.len() > 256 && face.len() < 512, "{}", face.len());
    // 照合番号B (EF 0012) by identifier: P2 = 80|12.
    face_up_to_collation_b(&mut m);
    assert!(matches!(
        m.next_action(),
        Action::AskCollationNumberB {
            retries_left: Some(10)
        }
    ));
    m.feed_collation_number_b(CollationB::from_digits(COLLATION_B).unwrap())
        .unwrap();
    expect_secret_verify(&m);
    expect_card(&mut m, &verify_collation_b(0x92, COLLATION_B), SW_OK);
    // The card face: the first 256 bytes by identifier 02, the rest after SELECT EF.
    expect_card(&mut m, "00B0820000", &ok(&face[..256]));
    expect_card(&mut m, "00A4020C020002", SW_OK);
    read_rest_of_face_up_to_match(&mut m, &face);
    // The CVC (EF 0004) fits one read by identifier; the card says it hit the end.
    face_match_to_proof(
        &mut m,
        &[("00B0840000", [&cvc()[..], &[0x62, 0x82][..]].concat())],
    );
}

#[test]
fn face_registration_on_a_card_refusing_short_identifiers_selects_each_file() {
    let mut m = Machine::register_with_face(config());
    let (face, _) = face_record();
    select_jpki_and_read_cert_by_select(&mut m);
    answer_consent(&mut m, true);
    expect_card(&mut m, SELECT_VISUAL, SW_OK);
    expect_card(&mut m, "00200092", SW_NO_SFI);
    expect_card(&mut m, "00A4020C020012", SW_OK);
    expect_card(&mut m, "00200080", &[0x63, 0xCA]);
    m.feed_collation_number_b(CollationB::from_digits(COLLATION_B).unwrap())
        .unwrap();
    // EF 0012 is current from the status query: one VERIFY by current EF.
    expect_card(&mut m, &verify_collation_b(0x80, COLLATION_B), SW_OK);
    // READ BINARY by SFI is not tried again in this run.
    expect_card(&mut m, "00A4020C020002", SW_OK);
    expect_card(&mut m, "00B0000000", &ok(&face[..256]));
    read_rest_of_face_up_to_match(&mut m, &face);
    face_match_to_proof(
        &mut m,
        &[
            ("00A4020C020004", SW_OK.to_vec()),
            ("00B0000000", ok(&cvc())),
        ],
    );
}

#[test]
fn a_collation_verify_refused_for_its_p2_is_sent_once_more_by_select() {
    let mut m = Machine::register_with_face(config());
    face_up_to_collation_b(&mut m);
    m.feed_collation_number_b(CollationB::from_digits("11111111111111").unwrap())
        .unwrap();
    expect_card(&mut m, "002000920E3131313131313131313131313131", SW_NO_SFI);
    expect_card(&mut m, "00A4020C020012", SW_OK);
    expect_card(
        &mut m,
        "002000800E3131313131313131313131313131",
        &[0x63, 0xC9],
    );
    assert_eq!(done(&m), Outcome::CollationNumberWrong { retries_left: 9 });
}

// ---- Registrations that wait for an upstream (protocol §16) ----

fn token() -> PollToken {
    PollToken(core::array::from_fn(|i| 0xA0 ^ i as u8))
}

fn pending_doc(retry_after: u32) -> RegistrationPending {
    RegistrationPending {
        v: V1,
        session_id: SESSION.into(),
        status: PendingState::Pending,
        accepted_at: UtcTime::from_unix(SIGNED_AT + 1),
        deadline: UtcTime::from_unix(SIGNED_AT + 601),
        poll: PollInfo {
            url: format!("/v1/registrations/{SESSION}"),
            token: token(),
            retry_after,
        },
    }
}

/// A machine that only polls the pending registration `pending_doc(5)` describes.
fn polling() -> Machine {
    Machine::poll_registration(config(), pending_doc(5)).unwrap()
}

fn failed(error: ErrorBody) -> RegistrationFailed {
    RegistrationFailed {
        v: V1,
        session_id: SESSION.into(),
        status: FailedState::Failed,
        error,
    }
}

/// The poll step: its exact request, when it is due, and what was fed so far.
fn expect_poll(m: &Machine, delay_secs: u32, attempt: u8) -> PollStep {
    match m.next_action() {
        Action::Poll(step) => {
            assert_eq!(step.request.method, HttpMethod::Get);
            assert_eq!(step.request.path, "/v1/registrations/ses_01HZX5T7Q9M3");
            assert_eq!(
                step.request.headers,
                vec![(
                    "authorization",
                    format!("Bearer {}", token().to_base64url())
                )],
                "the token, and nothing else"
            );
            assert_eq!(step.request.body, None);
            assert_eq!(step.request.delay_ms, delay_secs * 1000);
            assert_eq!(step.request.attempt, attempt);
            assert_eq!(
                step.at,
                UtcTime::from_unix(SIGNED_AT + i64::from(delay_secs))
            );
            step
        }
        other => panic!("expected a poll, got {other:?}"),
    }
}

fn registered_result() -> RegistrationResult {
    RegistrationResult {
        v: V1,
        session_id: SESSION.into(),
        status: RegistrationStatus::Registered,
        registration_id: "reg_9".into(),
        insurer_name: Some("みらい健康保険組合".into()),
        consent_version: "1.0".into(),
        registered_at: UtcTime::from_unix(SIGNED_AT + 30),
    }
}

#[test]
fn a_pending_registration_is_polled_until_it_is_registered() {
    let (mut m, proof) = registration_at_proof();
    assert_eq!(
        proof.headers,
        vec![("prefer", "respond-async".to_owned())],
        "a registration proof accepts a pending answer"
    );
    // 202 with Retry-After 3: the header wins over the body's 5.
    m.feed_http_response(with_retry_after(json(202, &pending_doc(5)), 3))
        .unwrap();
    expect_poll(&m, 3, 1);
    // Still pending, no header: the body's pause.
    m.feed_http_response(json(200, &pending_doc(2))).unwrap();
    expect_poll(&m, 2, 2);
    // Maintenance and a broken connection do not end the waiting.
    let maintenance = ErrorBody::new(ErrorCode::Maintenance, "maintenance").with_retry_after(7);
    m.feed_http_response(with_retry_after(json(503, &maintenance), 7))
        .unwrap();
    expect_poll(&m, 7, 3);
    m.feed_http_failure(HttpFailure::Connect).unwrap();
    expect_poll(&m, 2, 4);
    let busy = ErrorBody::new(ErrorCode::RateLimited, "slow down").with_retry_after(4);
    m.feed_http_response(json(429, &busy)).unwrap();
    expect_poll(&m, 4, 5);
    // Feeding a card answer now is misuse; the machine waits for the poll.
    assert!(matches!(
        m.feed_card_response(SW_OK),
        Err(MachineError::Unexpected { .. })
    ));
    m.feed_http_response(json(200, &registered_result()))
        .unwrap();
    assert_eq!(
        done(&m),
        Outcome::Registered {
            registration_id: "reg_9".into(),
            insurer_name: Some("みらい健康保険組合".into())
        }
    );
}

#[test]
fn a_terminal_may_stop_waiting_and_poll_later() {
    let (mut m, _) = registration_at_proof();
    m.feed_http_response(json(202, &pending_doc(5))).unwrap();
    expect_poll(&m, 5, 1);
    m.stop_waiting().unwrap();
    let Outcome::Pending(kept) = done(&m) else {
        panic!("pending")
    };
    assert_eq!(*kept, pending_doc(5));
    assert!(!done(&m).is_success());
    assert!(m.stop_waiting().is_err(), "nothing to stop any more");

    // Later, maybe after a restart of the terminal: a machine that only polls.
    let mut later = Machine::poll_registration(config(), *kept.clone()).unwrap();
    expect_poll(&later, 5, 1);
    let timed_out = failed(ErrorBody::new(
        ErrorCode::UpstreamTimeout,
        "deadline passed",
    ));
    later.feed_http_response(json(200, &timed_out)).unwrap();
    assert_eq!(done(&later), Outcome::UpstreamTimedOut);

    // Cancelling while polling only stops the waiting: the service has the registration.
    let mut cancelled = Machine::poll_registration(config(), *kept).unwrap();
    cancelled.cancel().unwrap();
    assert!(matches!(done(&cancelled), Outcome::Pending(_)));
}

#[test]
fn failures_and_unknown_status_end_the_polling() {
    let mut m = polling();
    let not_yet = failed(ErrorBody::new(ErrorCode::NoInsuranceRecord, "not yet"));
    m.feed_http_response(json(200, &not_yet)).unwrap();
    assert_eq!(done(&m), Outcome::NoInsuranceRecord);

    let mut m = polling();
    let gone = ErrorBody::new(ErrorCode::SessionNotFound, "no status");
    m.feed_http_response(json(404, &gone)).unwrap();
    assert!(matches!(
        done(&m),
        Outcome::Rejected {
            code: ErrorCode::SessionNotFound,
            ..
        }
    ));

    let mut m = polling();
    let other = RegistrationResult {
        session_id: "ses_other".into(),
        ..registered_result()
    };
    m.feed_http_response(json(200, &other)).unwrap();
    assert!(matches!(done(&m), Outcome::ProtocolError { .. }));
}

#[test]
fn the_token_goes_only_to_the_sessions_status_path() {
    for url in [
        "https://elsewhere.example/v1/registrations/ses_01HZX5T7Q9M3",
        "/v1/registrations/ses_other",
        "//elsewhere.example/v1/registrations/ses_01HZX5T7Q9M3",
    ] {
        let mut doc = pending_doc(5);
        doc.poll.url = url.into();
        assert!(
            Machine::poll_registration(config(), doc.clone()).is_err(),
            "{url}"
        );
        let (mut m, _) = registration_at_proof();
        m.feed_http_response(json(202, &doc)).unwrap();
        assert!(matches!(done(&m), Outcome::ProtocolError { .. }), "{url}");
    }
    // A pending status for another session.
    let mut doc = pending_doc(5);
    doc.session_id = "ses_other".into();
    doc.poll.url = "/v1/registrations/ses_other".into();
    let (mut m, _) = registration_at_proof();
    m.feed_http_response(json(202, &doc)).unwrap();
    assert!(matches!(done(&m), Outcome::ProtocolError { .. }));
}

#[test]
fn polling_ends_a_minute_after_the_services_deadline() {
    // The clock reads 40 s before the deadline's last minute runs out: a 5 s pause still fits,
    // a 45 s one does not.
    let late = SIGNED_AT + 601 + 60 - 40;
    let clock = FlowConfig::new("atm-0001", TerminalKind::Atm)
        .with_clock(Arc::new(move || UtcTime::from_unix(late)));
    let m = Machine::poll_registration(clock.clone(), pending_doc(5)).unwrap();
    assert!(matches!(m.next_action(), Action::Poll(_)));
    let mut m = Machine::poll_registration(clock, pending_doc(5)).unwrap();
    m.feed_http_response(json(200, &pending_doc(45))).unwrap();
    assert!(matches!(done(&m), Outcome::Pending(_)));
}

#[test]
fn only_registration_asks_for_a_pending_answer() {
    let mut m = Machine::register_with_pin(config().with_accept_pending(false));
    let proof = up_to_proof(&mut m, Operation::RegisterInsuranceUse);
    assert!(proof.headers.is_empty(), "protocol 1.0 behaviour");
    // A 202 nobody asked for is not this protocol.
    m.feed_http_response(json(202, &pending_doc(5))).unwrap();
    assert!(matches!(done(&m), Outcome::ProtocolError { .. }));

    let mut m = Machine::check_eligibility_with_pin(config());
    let proof = up_to_proof(&mut m, Operation::CheckEligibility);
    assert!(proof.headers.is_empty(), "the point of use never waits");

    // A resent proof keeps its header.
    let (mut m, _) = registration_at_proof();
    m.feed_http_failure(HttpFailure::Interrupted).unwrap();
    let resent = expect_request(&m);
    assert_eq!(resent.attempt, 2);
    assert_eq!(resent.header("prefer"), Some("respond-async"));
}

proptest! {
    // Whatever the service answers to polls, the machine never panics, keeps polling only the
    // session's status path with the token, and either polls or ends.
    #[test]
    fn arbitrary_poll_answers_never_panic_nor_move_the_token(
        answers in proptest::collection::vec(
            prop_oneof![
                (prop_oneof![Just(200u16), Just(202), Just(404), Just(429), Just(503), any::<u16>()],
                 proptest::collection::vec(any::<u8>(), 0..200),
                 proptest::option::of(any::<u32>()))
                    .prop_map(|(s, b, r)| Some(HttpResponse { status: s, retry_after: r, body: b })),
                (any::<u32>()).prop_map(|r| Some(json(200, &pending_doc(r)))),
                Just(None),
            ],
            0..40,
        ),
    ) {
        let mut m = polling();
        for answer in answers {
            match m.next_action() {
                Action::Poll(step) => {
                    prop_assert_eq!(step.request.path.as_str(), "/v1/registrations/ses_01HZX5T7Q9M3");
                    prop_assert!(step.request.delay_ms >= 1000);
                    match answer {
                        Some(r) => m.feed_http_response(r).unwrap(),
                        None => m.feed_http_failure(HttpFailure::Interrupted).unwrap(),
                    }
                }
                Action::Done(_) => break,
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
