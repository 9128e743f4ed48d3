//! The registration state machines fed arbitrary card responses, service answers and person
//! inputs (polls of a pending registration included): no panic, at most one VERIFY carrying a
//! PIN, and every action well formed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_registration::machine::{Action, CardFailure, FlowConfig, HttpFailure, HttpResponse, Machine};
use mynacard_protocol::messages::{FaceDecision, FaceMatch, TerminalKind};
use mynacard_card::{CollationB, Pin};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let config = FlowConfig::new("kiosk-0001", TerminalKind::Kiosk);
    let mut m = match selector % 5 {
        0 => Machine::register_with_pin(config),
        1 => Machine::register_with_face(config),
        2 => Machine::check_eligibility_with_pin(config),
        3 => Machine::check_eligibility_with_face(config),
        _ => Machine::deregister(config),
    };
    let mut verifies = 0;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (chunk, next) = tail.split_at(take);
        rest = next;
        let action = m.next_action();
        if let Action::SendCard(c) = &action {
            if c.command.ins == 0x20 && !c.command.data_bytes().is_empty() && c.command.p2 == 0x80 {
                verifies += 1;
            }
        }
        let _ = match (action, len % 7) {
            (Action::SendCard(_), 0) => m.feed_card_failure(CardFailure::Removed),
            (Action::SendCard(_), _) => m.feed_card_response(chunk),
            (Action::SendHttp(_), 0) => m.feed_http_failure(HttpFailure::Interrupted),
            (Action::SendHttp(_), _) => m.feed_http_response(HttpResponse {
                status: 200 + u16::from(len % 4) * 100,
                retry_after: None,
                body: chunk.to_vec(),
            }),
            (Action::ShowConsent(_), _) => m.feed_consent(len % 2 == 0),
            (Action::AskPin { .. }, _) => match Pin::new(&String::from_utf8_lossy(chunk)) {
                Ok(pin) => m.feed_pin(pin),
                Err(_) => m.cancel(),
            },
            (Action::AskCollationNumberB { .. }, _) => {
                match CollationB::from_digits(&String::from_utf8_lossy(chunk)) {
                    Ok(b) => m.feed_collation_number_b(b),
                    Err(_) => m.cancel(),
                }
            }
            (Action::MatchFace { .. }, _) => m.feed_face_match(FaceMatch {
                decision: if len % 2 == 0 { FaceDecision::Match } else { FaceDecision::NoMatch },
                score_permille: u16::from(len) * 4,
                threshold_permille: 900,
            }),
            (Action::SignAttestation { .. }, _) => m.feed_attestation(chunk.to_vec()),
            (Action::Poll(_), 0) => m.feed_http_failure(HttpFailure::Connect),
            (Action::Poll(_), 1) => m.stop_waiting(),
            (Action::Poll(_), _) => m.feed_http_response(HttpResponse {
                status: 200 + u16::from(len % 4) * 100,
                retry_after: Some(u32::from(len)),
                body: chunk.to_vec(),
            }),
            (Action::Done(_), _) => break,
            _ => break,
        };
    }
    // The PIN VERIFY and the 照合番号B VERIFY are each sent at most once.
    assert!(verifies <= 2);
});
