//! The state machines fed with recorded card and service bytes: every command the machine
//! sends is compared byte for byte with the script.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

use std::collections::VecDeque;
use std::sync::Arc;

use mynacard_registration::consent;
use mynacard_registration::intent::sha256_digest_info;
use mynacard_registration::machine::{
    Action, CardFailure, FlowConfig, HttpFailure, HttpMethod, HttpResponse, Machine, MachineError,
};
use mynacard_registration::messages::{
    Challenge, ConsentResponse, Method, Operation, Proof, RegistrationResult, RegistrationStatus,
    TerminalKind,
};
use mynacard_registration::{
    ErrorBody, ErrorCode, Outcome, RevocationReason, Sha256Digest, UtcTime, V1,
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
    expect_card(m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(m, "00B0000000", &ok(&cert[..256]));
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
    expect_card(m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(m, "00200080", tries);
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
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(&mut m, "002000800431323334", &[0x90, 0x00]);
    expect_card(&mut m, "00A4020C020017", &[0x90, 0x00]);

    let intent = mynacard_registration::Intent::for_challenge(
        &challenge(Operation::RegisterInsuranceUse),
        "atm-0001",
        &fake_cert(),
        UtcTime::from_unix(SIGNED_AT),
    );
    let di = sha256_digest_info(&intent.sha256().unwrap());
    let sign_cmd = format!("802A008033{}00", hex::encode_upper(di));
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
    expect_card(m, "00A4020C020018", &[0x90, 0x00]);
}

#[test]
fn wrong_pin_ends_the_flow_after_one_verify() {
    let mut m = Machine::register_with_pin(config());
    up_to_verify(&mut m);
    expect_card(&mut m, "002000800439393939", &[0x63, 0xC2]);
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
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    expect_http(&mut m, HttpMethod::Get, "/v1/consent", consent_response());
    m.feed_consent(true).unwrap();
    expect_card(&mut m, "00A4020C020018", &[0x6A, 0x82]);
    assert_eq!(done(&m), Outcome::NoAuthPin);
}

#[test]
fn declined_consent_asks_no_pin() {
    let mut m = Machine::register_with_pin(config());
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
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
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
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
    expect_card(m, "002000800439393939", &[0x90, 0x00]);
    expect_card(m, "00A4020C020017", &[0x90, 0x00]);
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
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
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
    expect_card(m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(m, "00B0000000", &[0x69, 0x82]);
    expect_http(m, HttpMethod::Get, "/v1/consent", consent_response());
    match m.next_action() {
        Action::ShowConsent(_) => {
            consents += 1;
            m.feed_consent(true).unwrap();
        }
        other => panic!("expected the consent before any PIN, got {other:?}"),
    }
    expect_card(m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(m, "00200080", tries);
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
        expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
        expect_card(&mut m, "002000800431323334", &[0x90, 0x00]);
        // Now the certificate opens: SELECT and read it, then the key and the signature.
        let cert = fake_cert();
        expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
        expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
        expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
        expect_card(&mut m, "00A4020C020017", &[0x90, 0x00]);
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
            &format!("802A008033{}00", hex::encode_upper(di)),
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
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(&mut m, "002000800439393939", &[0x63, 0xC2]);
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
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &[0x69, 0x82]);
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
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(&mut m, "002000800431323334", &[0x90, 0x00]);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &[0x69, 0x82]);
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
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
    expect_card(&mut m, "00B0010030", &[0x69, 0x82]);
    assert!(matches!(done(&m), Outcome::CardError { .. }));
    // The face method cannot open the certificate without a PIN.
    let mut m = Machine::register_with_face(config());
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &[0x69, 0x82]);
    assert!(matches!(done(&m), Outcome::CardError { .. }));
}

#[test]
fn smartphone_token_withdrawal_asks_no_consent() {
    let mut m = Machine::deregister(config());
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    expect_card(&mut m, "00B0000000", &[0x69, 0x82]);
    expect_card(&mut m, "00A4020C020018", &[0x90, 0x00]);
    expect_card(&mut m, "00200080", &[0x63, 0xC3]);
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
}

proptest! {
    // Whatever the card and the service answer, the machine never panics, never sends a second
    // VERIFY with the PIN, and ends.
    #[test]
    fn arbitrary_answers_never_panic_nor_repeat_verify(
        inputs in proptest::collection::vec(
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..300).prop_map(Input::Card),
                Just(Input::Card(vec![0x90, 0x00])),
                Just(Input::Card(vec![0x63, 0xC3])),
                // A smartphone token's auth certificate before VERIFY.
                Just(Input::Card(vec![0x69, 0x82])),
                Just(Input::CardFailure),
                (any::<u16>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(s, b)| Input::Http(s, b)),
                Just(Input::HttpFailure),
                any::<bool>().prop_map(Input::Consent),
                "[0-9]{4}".prop_map(Input::Pin),
            ],
            0..60,
        ),
    ) {
        let mut m = Machine::register_with_pin(config());
        let mut queue: VecDeque<Input> = inputs.into();
        let mut verifies = 0;
        while let Some(input) = queue.pop_front() {
            if let Action::SendCard(c) = m.next_action()
                && c.command.ins == 0x20
                && !c.command.data_bytes().is_empty()
            {
                verifies += 1;
            }
            let _ = match input {
                Input::Card(b) => m.feed_card_response(&b),
                Input::CardFailure => m.feed_card_failure(CardFailure::Transport),
                Input::Http(s, b) => m.feed_http_response(HttpResponse { status: s, retry_after: None, body: b }),
                Input::HttpFailure => m.feed_http_failure(HttpFailure::Interrupted),
                Input::Consent(a) => m.feed_consent(a),
                Input::Pin(p) => m.feed_pin(Zeroizing::new(p)),
            };
        }
        prop_assert!(verifies <= 1);
    }
}

#[test]
fn extended_reads_fall_back_to_short_ones_when_refused() {
    let mut m = Machine::register_with_pin(config());
    m.set_read_chunk(65_536);
    let cert = fake_cert();
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    // One extended READ BINARY (Le = 00 00: as much as there is) …
    expect_card(&mut m, "00B00000000000", &[0x67, 0x00]);
    // … refused, so the file is read in short chunks.
    expect_card(&mut m, "00B0000000", &ok(&cert[..256]));
    expect_card(&mut m, "00B0010030", &ok(&cert[256..]));
    assert!(matches!(m.next_action(), Action::SendHttp(_)));

    let mut m = Machine::register_with_pin(config());
    m.set_read_chunk(65_536);
    expect_card(&mut m, "00A4040C0AD392F000260100000001", &[0x90, 0x00]);
    expect_card(&mut m, "00A4020C02000A", &[0x90, 0x00]);
    // The whole certificate in one command; the card says it hit the end of the file.
    expect_card(
        &mut m,
        "00B00000000000",
        &[&cert[..], &[0x62, 0x82][..]].concat(),
    );
    assert!(matches!(m.next_action(), Action::SendHttp(_)));
}
