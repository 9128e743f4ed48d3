//! The state machines fed with recorded card and service bytes: every command the machine
//! sends is compared byte for byte with the script.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::collections::VecDeque;
use std::sync::Arc;

use mynacard_registration::consent;
use mynacard_registration::intent::sha256_digest_info;
use mynacard_registration::machine::{
    Action, CardFailure, FlowConfig, HttpFailure, HttpMethod, HttpResponse, Machine, MachineError,
    PollStep,
};
use mynacard_registration::messages::{
    Challenge, ConsentResponse, FaceDecision, FaceMatch, FailedState, Method, Operation,
    PendingState, PollInfo, Proof, RegistrationFailed, RegistrationPending, RegistrationResult,
    RegistrationStatus, TerminalKind,
};
use mynacard_registration::{
    ErrorBody, ErrorCode, Outcome, PollToken, RevocationReason, Sha256Digest, UtcTime, V1,
};
use proptest::prelude::*;
use zeroize::Zeroizing;

const SIGNED_AT: i64 = 1_775_035_805; // 2026-04-01T09:30:05Z

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
    v.extend_from_slice(&[0x90, 0x00]);
    v
}

fn challenge(op: Operation) -> Challenge {
    Challenge {
        v: V1,
        session_id: "ses_01HZX5T7Q9M3".into(),
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

fn done(m: &Machine) -> Outcome {
    match m.next_action() {
        Action::Done(o) => o,
        other => panic!("expected the end, got {other:?}"),
    }
}

/// Runs a PIN flow up to the PIN prompt: select, read certificate, consent, tries left.
fn up_to_pin(m: &mut Machine, tries: &[u8]) {
    let cert = fake_cert();
    expect_card(m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(m, "00B08A0000", &ok(&cert[..256]));
    expect_card(m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(m, "00B0010030", &ok(&cert[256..]));
    if m.operation() != Operation::DeregisterInsuranceUse {
        expect_http(m, HttpMethod::Get, "/v1/consent", consent_response());
        match m.next_action() {
            Action::ShowConsent(p) => {
                assert_eq!(p.document, consent::current());
                m.feed_consent(true).unwrap();
            }
            other => panic!("expected consent, got {other:?}"),
        }
    }
    // The tries left by short EF identifier: P2 = 80|18, no SELECT EF.
    expect_card(m, "00200098", tries);
}

#[test]
fn pin_registration_sends_exactly_the_recorded_apdus_and_a_verifiable_proof() {
    let mut m = Machine::register_with_pin(config());
    up_to_pin(&mut m, &[0x63, 0xC3]);
    assert!(matches!(
        m.next_action(),
        Action::AskPin {
            retries_left: Some(3)
        }
    ));
    assert_eq!(
        m.feed_pin(Zeroizing::new("12a4".into())),
        Err(MachineError::PinFormat)
    );
    assert!(
        matches!(m.next_action(), Action::AskPin { .. }),
        "a bad PIN format spends nothing"
    );
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    let start = expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations",
        json(201, &challenge(Operation::RegisterInsuranceUse)),
    )
    .unwrap();
    let start: serde_json::Value = serde_json::from_slice(&start).unwrap();
    assert_eq!(
        start["methods_supported"],
        serde_json::json!(["pin_signature"])
    );
    expect_card(&mut m, "002000980431323334", &[0x90, 0x00]);

    let intent = mynacard_registration::Intent::for_challenge(
        &challenge(Operation::RegisterInsuranceUse),
        "atm-0001",
        &fake_cert(),
        UtcTime::from_unix(SIGNED_AT),
    );
    let di = sha256_digest_info(&intent.sha256().unwrap());
    // The auth key by short EF identifier: P2 = 80|17.
    let sign_cmd = format!("802A009733{}00", hex::encode_upper(di));
    let signature = vec![0x5A; 256];
    // The card hands the signature out in two parts (61xx, GET RESPONSE).
    expect_card(
        &mut m,
        &sign_cmd,
        &[&signature[..200], &[0x61, 56][..]].concat(),
    );
    expect_card(&mut m, "00C0000038", &ok(&signature[200..]));

    let result = RegistrationResult {
        v: V1,
        session_id: "ses_01HZX5T7Q9M3".into(),
        status: RegistrationStatus::Registered,
        registration_id: "reg_1".into(),
        insurer_name: Some("みらい健康保険組合".into()),
        consent_version: "1.0".into(),
        registered_at: UtcTime::from_unix(SIGNED_AT + 1),
    };
    let proof = expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations/ses_01HZX5T7Q9M3/proof",
        json(200, &result),
    )
    .unwrap();
    let proof: Proof = serde_json::from_slice(&proof).unwrap();
    match proof {
        Proof::PinSignature {
            intent: sent,
            auth_cert,
            signature: sig,
            ..
        } => {
            assert_eq!(sent, intent);
            assert_eq!(auth_cert.0, fake_cert());
            assert_eq!(sig.0, signature);
            assert_eq!(sent.cert_sha256, Sha256Digest::of(&fake_cert()));
        }
        other => panic!("{other:?}"),
    }
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
    assert!(matches!(
        m.next_action(),
        Action::AskPin {
            retries_left: Some(1)
        }
    ));
}

#[test]
fn blocked_pin_is_never_asked() {
    for sw in [[0x63, 0xC0], [0x69, 0x84]] {
        let mut m = Machine::register_with_pin(config());
        up_to_pin(&mut m, &sw);
        assert_eq!(done(&m), Outcome::PinBlocked);
    }
}

fn up_to_verify(m: &mut Machine) {
    up_to_pin(m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("9999".into())).unwrap();
    expect_http(
        m,
        HttpMethod::Post,
        "/v1/registrations",
        json(201, &challenge(Operation::RegisterInsuranceUse)),
    );
}

#[test]
fn wrong_pin_ends_the_flow_after_one_verify() {
    let mut m = Machine::register_with_pin(config());
    up_to_verify(&mut m);
    expect_card(&mut m, "002000980439393939", &[0x63, 0xC2]);
    assert_eq!(done(&m), Outcome::WrongPin { retries_left: 2 });
}

#[test]
fn link_lost_during_verify_may_have_counted_the_attempt() {
    let mut m = Machine::register_with_pin(config());
    up_to_verify(&mut m);
    match m.next_action() {
        Action::SendCard(c) => {
            assert!(c.spends_attempt);
            assert!(
                format!("{:?}", c.bytes).contains("redacted"),
                "the PIN never shows in Debug"
            );
        }
        other => panic!("{other:?}"),
    }
    m.feed_card_failure(CardFailure::Removed).unwrap();
    assert_eq!(
        done(&m),
        Outcome::CardRemoved {
            attempt_may_have_been_counted: true
        }
    );
}

#[test]
fn face_card_without_auth_pin_is_sent_to_a_face_terminal() {
    let mut m = Machine::register_with_pin(config());
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(true).unwrap();
    // No PIN behind identifier 18 (6A88 referenced data not found; 6A82 from some cards).
    expect_card(&mut m, "00200098", &[0x6A, 0x88]);
    assert_eq!(done(&m), Outcome::NoAuthPin);

    let mut m = Machine::register_with_pin(config());
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(true).unwrap();
    expect_card(&mut m, "00200098", &[0x6A, 0x82]);
    assert_eq!(done(&m), Outcome::NoAuthPin);
}

#[test]
fn declined_consent_asks_no_pin() {
    let mut m = Machine::register_with_pin(config());
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(false).unwrap();
    assert_eq!(done(&m), Outcome::ConsentDeclined);
    assert!(m.feed_pin(Zeroizing::new("1234".into())).is_err());
}

#[test]
fn a_tampered_consent_document_is_refused() {
    let mut m = Machine::register_with_pin(config());
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
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

fn to_proof(m: &mut Machine) {
    up_to_verify(m);
    expect_card(m, "002000980439393939", &[0x90, 0x00]);
    match m.next_action() {
        Action::SendCard(_) => m.feed_card_response(&ok(&[1; 256])).unwrap(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_interrupted_proof_is_resent_unchanged_then_given_up() {
    let mut m = Machine::register_with_pin(config());
    to_proof(&mut m);
    let first = match m.next_action() {
        Action::SendHttp(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(first.attempt, 1);
    m.feed_http_failure(HttpFailure::Interrupted).unwrap();
    let second = match m.next_action() {
        Action::SendHttp(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!((second.attempt, second.delay_ms), (2, 100));
    assert_eq!(second.body, first.body, "a resend is byte-identical");
    assert_eq!(m.proof_body(), first.body.as_deref());
    m.feed_http_failure(HttpFailure::Connect).unwrap();
    let third = match m.next_action() {
        Action::SendHttp(r) => r,
        other => panic!("{other:?}"),
    };
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
        let mut m = Machine::register_with_pin(config());
        to_proof(&mut m);
        let status = body.http_status();
        m.feed_http_response(HttpResponse {
            status,
            retry_after: header,
            body: serde_json::to_vec(&body).unwrap(),
        })
        .unwrap();
        assert_eq!(done(&m), expected);
    }
}

#[test]
fn rate_limit_on_start_says_when_to_come_back() {
    let mut m = Machine::register_with_pin(config());
    up_to_pin(&mut m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    let body = ErrorBody::new(ErrorCode::RateLimited, "slow down").with_retry_after(5);
    expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations",
        HttpResponse {
            status: 429,
            retry_after: Some(5),
            body: serde_json::to_vec(&body).unwrap(),
        },
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
    up_to_pin(&mut m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/deregistrations",
        json(201, &challenge(Operation::DeregisterInsuranceUse)),
    );
    expect_card(&mut m, "002000980431323334", &[0x90, 0x00]);
}

#[test]
fn a_challenge_for_another_operation_is_refused() {
    let mut m = Machine::check_eligibility_with_pin(config());
    up_to_pin(&mut m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/eligibility",
        json(201, &challenge(Operation::RegisterInsuranceUse)),
    );
    assert!(matches!(done(&m), Outcome::ProtocolError { .. }));
}

#[test]
fn face_method_refused_by_the_challenge_means_terminal_not_accepted() {
    let mut m = Machine::register_with_pin(config());
    up_to_pin(&mut m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    let mut c = challenge(Operation::RegisterInsuranceUse);
    c.accepted_methods = vec![Method::AccreditedFace];
    expect_http(&mut m, HttpMethod::Post, "/v1/registrations", json(201, &c));
    assert_eq!(done(&m), Outcome::TerminalNotAccepted);
}

/// A smartphone token (`JPKIAPGPSETOKEN`) up to the PIN prompt: its auth certificate answers
/// `6982`, and the flow goes on to the consent and the tries left without it.
fn smartphone_up_to_pin(m: &mut Machine, tries: &[u8]) -> u32 {
    let mut consents = 0;
    expect_card(m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(m, "00B08A0000", &[0x69, 0x82]);
    expect_http(m, HttpMethod::Get, "/v1/consent", consent_response());
    match m.next_action() {
        Action::ShowConsent(_) => {
            consents += 1;
            m.feed_consent(true).unwrap();
        }
        other => panic!("expected the consent before any PIN, got {other:?}"),
    }
    expect_card(m, "00200098", tries);
    consents
}

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
        assert_eq!(smartphone_up_to_pin(&mut m, &[0x63, 0xC3]), 1);
        assert!(matches!(
            m.next_action(),
            Action::AskPin {
                retries_left: Some(3)
            }
        ));
        m.feed_pin(Zeroizing::new("1234".into())).unwrap();
        expect_http(
            &mut m,
            HttpMethod::Post,
            start_path,
            json(201, &challenge(op)),
        );
        expect_card(&mut m, "002000980431323334", &[0x90, 0x00]);
        // Now the certificate opens: read it, then the signature.
        let cert = fake_cert();
        expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
        expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
        expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
        let intent = mynacard_registration::Intent::for_challenge(
            &challenge(op),
            "atm-0001",
            &cert,
            UtcTime::from_unix(SIGNED_AT),
        );
        let di = sha256_digest_info(&intent.sha256().unwrap());
        let signature = vec![0x3C; 256];
        expect_card(
            &mut m,
            &format!("802A009733{}00", hex::encode_upper(di)),
            &ok(&signature),
        );
        let proof = match m.next_action() {
            Action::SendHttp(r) => {
                assert_eq!(r.path, format!("{start_path}/ses_01HZX5T7Q9M3/proof"));
                r.body.unwrap()
            }
            other => panic!("{other:?}"),
        };
        match serde_json::from_slice::<Proof>(&proof).unwrap() {
            Proof::PinSignature {
                intent: sent,
                auth_cert,
                signature: sig,
                ..
            } => {
                assert_eq!(sent, intent);
                assert_eq!(sent.cert_sha256, Sha256Digest::of(&cert));
                assert_eq!(auth_cert.0, cert);
                assert_eq!(sig.0, signature);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn smartphone_token_wrong_pin_reads_no_certificate_and_verifies_once() {
    let mut m = Machine::register_with_pin(config());
    smartphone_up_to_pin(&mut m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("9999".into())).unwrap();
    expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations",
        json(201, &challenge(Operation::RegisterInsuranceUse)),
    );
    expect_card(&mut m, "002000980439393939", &[0x63, 0xC2]);
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
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &[0x69, 0x82]);
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(false).unwrap();
    assert_eq!(done(&m), Outcome::ConsentDeclined);
    // A certificate still refused after VERIFY is a card error, never a second VERIFY.
    let mut m = Machine::register_with_pin(config());
    smartphone_up_to_pin(&mut m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations",
        json(201, &challenge(Operation::RegisterInsuranceUse)),
    );
    expect_card(&mut m, "002000980431323334", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &[0x69, 0x82]);
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
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &[0x69, 0x82]);
    assert!(matches!(done(&m), Outcome::CardError { .. }));
    // The face method cannot open the certificate without a PIN.
    let mut m = Machine::register_with_face(config());
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &[0x69, 0x82]);
    assert!(matches!(done(&m), Outcome::CardError { .. }));
}

#[test]
fn smartphone_token_withdrawal_asks_no_consent() {
    let mut m = Machine::deregister(config());
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &[0x69, 0x82]);
    expect_card(&mut m, "00200098", &[0x63, 0xC3]);
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
                Input::Pin(p) => m.feed_pin(Zeroizing::new(p)),
                Input::CollationB(b) => m.feed_collation_number_b(Zeroizing::new(b)),
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

#[test]
fn extended_reads_fall_back_to_short_ones_when_refused() {
    let mut m = Machine::register_with_pin(config());
    m.set_read_chunk(65_536);
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    // One extended READ BINARY by SFI (Le = 00 00: as much as there is) …
    expect_card(&mut m, "00B08A00000000", &[0x67, 0x00]);
    // … refused, so the file is read in short chunks: the first by SFI, the rest by offset.
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    assert!(matches!(m.next_action(), Action::SendHttp(_)));

    let mut m = Machine::register_with_pin(config());
    m.set_read_chunk(65_536);
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    // The whole certificate in one command, no SELECT EF; the card says it hit the end of the
    // file.
    expect_card(
        &mut m,
        "00B08A00000000",
        &[&cert[..], &[0x62, 0x82][..]].concat(),
    );
    assert!(matches!(m.next_action(), Action::SendHttp(_)));
}

/// A card that answers `6A86` to every short-EF-identifier form: the machine falls back to
/// SELECT EF and the current-EF forms, once per form, and the PIN goes to the card once.
#[test]
fn a_card_refusing_short_ef_identifiers_is_driven_by_select() {
    let refused = [0x6A, 0x86];
    let mut m = Machine::register_with_pin(config());
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &refused);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(true).unwrap();
    expect_card(&mut m, "00200098", &refused);
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(&mut m, "00200080", &[0x63, 0xC3]);
    assert!(matches!(
        m.next_action(),
        Action::AskPin {
            retries_left: Some(3)
        }
    ));
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    expect_http(
        &mut m,
        HttpMethod::Post,
        "/v1/registrations",
        json(201, &challenge(Operation::RegisterInsuranceUse)),
    );
    // The card already refused the SFI form of VERIFY: SELECT EF, then the one VERIFY.
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    let verify = match m.next_action() {
        Action::SendCard(c) => c,
        other => panic!("{other:?}"),
    };
    assert!(verify.spends_attempt);
    expect_card(&mut m, "002000800431323334", &[0x90, 0x00]);
    let intent = mynacard_registration::Intent::for_challenge(
        &challenge(Operation::RegisterInsuranceUse),
        "atm-0001",
        &cert,
        UtcTime::from_unix(SIGNED_AT),
    );
    let di = hex::encode_upper(sha256_digest_info(&intent.sha256().unwrap()));
    expect_card(&mut m, &format!("802A009733{di}00"), &refused);
    expect_card(&mut m, "00A4020C020017", &[0x90, 0x00]);
    let signature = vec![0x77; 256];
    expect_card(&mut m, &format!("802A008033{di}00"), &ok(&signature));
    let proof = match m.next_action() {
        Action::SendHttp(r) => r.body.unwrap(),
        other => panic!("{other:?}"),
    };
    match serde_json::from_slice::<Proof>(&proof).unwrap() {
        Proof::PinSignature {
            intent: sent,
            auth_cert,
            signature: sig,
            ..
        } => {
            assert_eq!(sent, intent);
            assert_eq!(auth_cert.0, cert);
            assert_eq!(sig.0, signature);
        }
        other => panic!("{other:?}"),
    }
}

/// Up to the VERIFY by SFI of a PIN registration whose tries were read by SFI.
fn up_to_sfi_verify(m: &mut Machine, pin: &str) {
    up_to_pin(m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new(pin.into())).unwrap();
    expect_http(
        m,
        HttpMethod::Post,
        "/v1/registrations",
        json(201, &challenge(Operation::RegisterInsuranceUse)),
    );
}

#[test]
fn a_verify_refused_for_its_p2_is_sent_once_more_by_select_and_never_again() {
    // 6A86 before any PIN check: SELECT EF, then VERIFY by current EF, whose answer stands.
    let mut m = Machine::register_with_pin(config());
    up_to_sfi_verify(&mut m, "9999");
    expect_card(&mut m, "002000980439393939", &[0x6A, 0x86]);
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(&mut m, "002000800439393939", &[0x63, 0xC2]);
    assert_eq!(done(&m), Outcome::WrongPin { retries_left: 2 });

    // The current-EF form refused as well: that is the end, no third VERIFY.
    let mut m = Machine::register_with_pin(config());
    up_to_sfi_verify(&mut m, "9999");
    expect_card(&mut m, "002000980439393939", &[0x6A, 0x86]);
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(&mut m, "002000800439393939", &[0x6A, 0x86]);
    assert_eq!(
        done(&m),
        Outcome::CardError {
            what: "verify auth PIN",
            sw: Some(0x6A86)
        }
    );

    // The link lost during the second VERIFY: the attempt may have been counted.
    let mut m = Machine::register_with_pin(config());
    up_to_sfi_verify(&mut m, "9999");
    expect_card(&mut m, "002000980439393939", &[0x6A, 0x86]);
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    match m.next_action() {
        Action::SendCard(c) => {
            assert!(c.spends_attempt);
            assert!(format!("{:?}", c.bytes).contains("redacted"));
        }
        other => panic!("{other:?}"),
    }
    m.feed_card_failure(CardFailure::Removed).unwrap();
    assert_eq!(
        done(&m),
        Outcome::CardRemoved {
            attempt_may_have_been_counted: true
        }
    );
}

#[test]
fn any_other_answer_to_the_sfi_verify_ends_the_flow_without_a_second_verify() {
    for sw in [
        [0x6B, 0x00],
        [0x6A, 0x88],
        [0x69, 0x82],
        [0x69, 0x85],
        [0x67, 0x00],
        [0x6F, 0x00],
        [0x6D, 0x00],
    ] {
        let mut m = Machine::register_with_pin(config());
        up_to_sfi_verify(&mut m, "1234");
        expect_card(&mut m, "002000980431323334", &sw);
        assert_eq!(
            done(&m),
            Outcome::CardError {
                what: "verify auth PIN",
                sw: Some(u16::from_be_bytes(sw))
            },
            "{sw:02X?}"
        );
    }
    // Lost during the VERIFY by SFI: counted or not, it is not sent again.
    let mut m = Machine::register_with_pin(config());
    up_to_sfi_verify(&mut m, "1234");
    m.feed_card_failure(CardFailure::Transport).unwrap();
    assert_eq!(
        done(&m),
        Outcome::CardRemoved {
            attempt_may_have_been_counted: true
        }
    );
}

#[test]
fn a_signature_refused_after_a_6a86_fallback_is_not_retried_again() {
    let mut m = Machine::register_with_pin(config());
    up_to_sfi_verify(&mut m, "1234");
    expect_card(&mut m, "002000980431323334", &[0x90, 0x00]);
    let intent = mynacard_registration::Intent::for_challenge(
        &challenge(Operation::RegisterInsuranceUse),
        "atm-0001",
        &fake_cert(),
        UtcTime::from_unix(SIGNED_AT),
    );
    let di = hex::encode_upper(sha256_digest_info(&intent.sha256().unwrap()));
    expect_card(&mut m, &format!("802A009733{di}00"), &[0x6A, 0x86]);
    expect_card(&mut m, "00A4020C020017", &[0x90, 0x00]);
    expect_card(&mut m, &format!("802A008033{di}00"), &[0x6A, 0x86]);
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

/// The face registration from the matched face to the proof: CVC, start, presence signature,
/// attestation. `cvc_commands` are the CVC read's commands and answers.
fn face_to_proof(m: &mut Machine, cvc_commands: &[(&str, Vec<u8>)]) -> Proof {
    m.feed_face_match(face_match()).unwrap();
    for (command, answer) in cvc_commands {
        expect_card(m, command, answer);
    }
    expect_http(
        m,
        HttpMethod::Post,
        "/v1/registrations",
        json(201, &face_challenge()),
    );
    let intent = mynacard_registration::Intent::for_challenge(
        &face_challenge(),
        "atm-0001",
        &fake_cert(),
        UtcTime::from_unix(SIGNED_AT),
    );
    let di = hex::encode_upper(sha256_digest_info(&intent.sha256().unwrap()));
    // The visual AP's own key (P2 00): there is no key file to name, and no SFI form.
    expect_card(m, &format!("802A000033{di}00"), &ok(&[0x66; 256]));
    match m.next_action() {
        Action::SignAttestation { .. } => m.feed_attestation(vec![9; 64]).unwrap(),
        other => panic!("{other:?}"),
    }
    let proof = match m.next_action() {
        Action::SendHttp(r) => r.body.unwrap(),
        other => panic!("{other:?}"),
    };
    let proof: Proof = serde_json::from_slice(&proof).unwrap();
    match &proof {
        Proof::AccreditedFace { face_evidence, .. } => assert_eq!(face_evidence.intent, intent),
        other => panic!("{other:?}"),
    }
    proof
}

fn check_face_evidence(proof: &Proof) {
    let (_, segments) = face_record();
    match proof {
        Proof::AccreditedFace {
            auth_cert,
            face_evidence,
            ..
        } => {
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
    let cert = fake_cert();
    let (face, _) = face_record();
    assert!(face.len() > 256 && face.len() < 512, "{}", face.len());
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(true).unwrap();
    expect_card(&mut m, "00A4040C0AD3921000310001010402", &[0x90, 0x00]);
    // 照合番号B (EF 0012) by identifier: P2 = 80|12.
    expect_card(&mut m, "00200092", &[0x63, 0xCA]);
    assert!(matches!(
        m.next_action(),
        Action::AskCollationNumberB {
            retries_left: Some(10)
        }
    ));
    m.feed_collation_number_b(Zeroizing::new(COLLATION_B.into()))
        .unwrap();
    match m.next_action() {
        Action::SendCard(c) => {
            assert!(c.spends_attempt);
            assert!(format!("{:?}", c.bytes).contains("redacted"));
        }
        other => panic!("{other:?}"),
    }
    expect_card(
        &mut m,
        &format!("002000920E{}", hex::encode_upper(COLLATION_B)),
        &[0x90, 0x00],
    );
    // The card face: the first 256 bytes by identifier 02, the rest after SELECT EF.
    expect_card(&mut m, "00B0820000", &ok(&face[..256]));
    expect_card(&mut m, "00A4020C020002", &[0x90, 0x00]);
    expect_card(
        &mut m,
        &format!("00B00100{:02X}", face.len() - 256),
        &ok(&face[256..]),
    );
    assert!(matches!(m.next_action(), Action::MatchFace { .. }));
    // The CVC (EF 0004) fits one read by identifier; the card says it hit the end.
    let proof = face_to_proof(
        &mut m,
        &[("00B0840000", [&cvc()[..], &[0x62, 0x82][..]].concat())],
    );
    check_face_evidence(&proof);
}

#[test]
fn face_registration_on_a_card_refusing_short_identifiers_selects_each_file() {
    let refused = vec![0x6A, 0x86];
    let mut m = Machine::register_with_face(config());
    let cert = fake_cert();
    let (face, _) = face_record();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &refused);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(true).unwrap();
    expect_card(&mut m, "00A4040C0AD3921000310001010402", &[0x90, 0x00]);
    expect_card(&mut m, "00200092", &refused);
    expect_card(&mut m, "00A4020C020012", &[0x90, 0x00]);
    expect_card(&mut m, "00200080", &[0x63, 0xCA]);
    m.feed_collation_number_b(Zeroizing::new(COLLATION_B.into()))
        .unwrap();
    // EF 0012 is current from the status query: one VERIFY by current EF.
    expect_card(
        &mut m,
        &format!("002000800E{}", hex::encode_upper(COLLATION_B)),
        &[0x90, 0x00],
    );
    // READ BINARY by SFI is not tried again in this run.
    expect_card(&mut m, "00A4020C020002", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &ok(&face[..256]));
    expect_card(
        &mut m,
        &format!("00B00100{:02X}", face.len() - 256),
        &ok(&face[256..]),
    );
    assert!(matches!(m.next_action(), Action::MatchFace { .. }));
    let proof = face_to_proof(
        &mut m,
        &[
            ("00A4020C020004", vec![0x90, 0x00]),
            ("00B0000000", ok(&cvc())),
        ],
    );
    check_face_evidence(&proof);
}

#[test]
fn a_collation_verify_refused_for_its_p2_is_sent_once_more_by_select() {
    let mut m = Machine::register_with_face(config());
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00B08A0000", &ok(&cert[..256]));
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(true).unwrap();
    expect_card(&mut m, "00A4040C0AD3921000310001010402", &[0x90, 0x00]);
    expect_card(&mut m, "00200092", &[0x63, 0xCA]);
    m.feed_collation_number_b(Zeroizing::new("11111111111111".into()))
        .unwrap();
    expect_card(
        &mut m,
        "002000920E3131313131313131313131313131",
        &[0x6A, 0x86],
    );
    expect_card(&mut m, "00A4020C020012", &[0x90, 0x00]);
    expect_card(
        &mut m,
        "002000800E3131313131313131313131313131",
        &[0x63, 0xC9],
    );
    assert_eq!(done(&m), Outcome::CollationNumberWrong { retries_left: 9 });
}

// ---- Registrations that wait for an upstream (protocol §16) ----

const SESSION: &str = "ses_01HZX5T7Q9M3";

/// Runs a PIN flow of `op` up to the proof and returns the proof request.
fn up_to_proof(m: &mut Machine, op: Operation) -> mynacard_registration::machine::HttpRequest {
    up_to_pin(m, &[0x63, 0xC3]);
    m.feed_pin(Zeroizing::new("1234".into())).unwrap();
    expect_http(
        m,
        HttpMethod::Post,
        op.start_path(),
        json(201, &challenge(op)),
    );
    expect_card(m, "002000980431323334", &[0x90, 0x00]);
    match m.next_action() {
        Action::SendCard(c) => {
            assert_eq!(c.command.ins, 0x2A);
            m.feed_card_response(&ok(&[0x5A; 256])).unwrap();
        }
        other => panic!("expected the signature, got {other:?}"),
    }
    match m.next_action() {
        Action::SendHttp(r) => {
            assert_eq!(r.path, op.proof_path(SESSION));
            r
        }
        other => panic!("expected the proof, got {other:?}"),
    }
}

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

fn with_retry_after(mut r: HttpResponse, secs: u32) -> HttpResponse {
    r.retry_after = Some(secs);
    r
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
    let mut m = Machine::register_with_pin(config());
    let proof = up_to_proof(&mut m, Operation::RegisterInsuranceUse);
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
        m.feed_card_response(&[0x90, 0x00]),
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
    let mut m = Machine::register_with_pin(config());
    up_to_proof(&mut m, Operation::RegisterInsuranceUse);
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
    let failed = RegistrationFailed {
        v: V1,
        session_id: SESSION.into(),
        status: FailedState::Failed,
        error: ErrorBody::new(ErrorCode::UpstreamTimeout, "deadline passed"),
    };
    later.feed_http_response(json(200, &failed)).unwrap();
    assert_eq!(done(&later), Outcome::UpstreamTimedOut);

    // Cancelling while polling only stops the waiting: the service has the registration.
    let mut cancelled = Machine::poll_registration(config(), *kept).unwrap();
    cancelled.cancel().unwrap();
    assert!(matches!(done(&cancelled), Outcome::Pending(_)));
}

#[test]
fn failures_and_unknown_status_end_the_polling() {
    let mut m = Machine::poll_registration(config(), pending_doc(5)).unwrap();
    let failed = RegistrationFailed {
        v: V1,
        session_id: SESSION.into(),
        status: FailedState::Failed,
        error: ErrorBody::new(ErrorCode::NoInsuranceRecord, "not yet"),
    };
    m.feed_http_response(json(200, &failed)).unwrap();
    assert_eq!(done(&m), Outcome::NoInsuranceRecord);

    let mut m = Machine::poll_registration(config(), pending_doc(5)).unwrap();
    let gone = ErrorBody::new(ErrorCode::SessionNotFound, "no status");
    m.feed_http_response(json(404, &gone)).unwrap();
    assert!(matches!(
        done(&m),
        Outcome::Rejected {
            code: ErrorCode::SessionNotFound,
            ..
        }
    ));

    let mut m = Machine::poll_registration(config(), pending_doc(5)).unwrap();
    let mut other = registered_result();
    other.session_id = "ses_other".into();
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
        let mut m = Machine::register_with_pin(config());
        up_to_proof(&mut m, Operation::RegisterInsuranceUse);
        m.feed_http_response(json(202, &doc)).unwrap();
        assert!(matches!(done(&m), Outcome::ProtocolError { .. }), "{url}");
    }
    // A pending status for another session.
    let mut doc = pending_doc(5);
    doc.session_id = "ses_other".into();
    doc.poll.url = "/v1/registrations/ses_other".into();
    let mut m = Machine::register_with_pin(config());
    up_to_proof(&mut m, Operation::RegisterInsuranceUse);
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
    let mut m = Machine::register_with_pin(config());
    up_to_proof(&mut m, Operation::RegisterInsuranceUse);
    m.feed_http_failure(HttpFailure::Interrupted).unwrap();
    match m.next_action() {
        Action::SendHttp(r) => {
            assert_eq!(r.attempt, 2);
            assert_eq!(r.header("prefer"), Some("respond-async"));
        }
        other => panic!("{other:?}"),
    }
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
        let mut m = Machine::poll_registration(config(), pending_doc(5)).unwrap();
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
