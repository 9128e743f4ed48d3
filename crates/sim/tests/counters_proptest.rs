//! Random APDU sequences never break the retry counters: no counter exceeds its limit, none
//! goes up except to its limit through an accepted VERIFY or CHANGE REFERENCE DATA, none goes
//! down by more than one per command or without a `63Cx` answer to a VERIFY with data, and a
//! blocked counter stays blocked. Arbitrary bytes never panic the engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mynacard_sim::engine::Card;
use mynacard_sim::state::SecretId;
use proptest::prelude::*;
use support::*;

#[derive(Debug, Clone)]
enum Step {
    Apdu(Vec<u8>),
    PowerOff,
    Reset,
}

const AIDS: [&str; 6] = [
    SELECT_JPKI,
    SELECT_TEXT,
    SELECT_VISUAL,
    SELECT_COMMON,
    "00A4040007A0000001510000",
    "00A4040C0AD392F000260100000002",
];

const FIDS: [u16; 17] = [
    0x0001, 0x0002, 0x0003, 0x0006, 0x0008, 0x000A, 0x000B, 0x0011, 0x0012, 0x0013, 0x0014, 0x0015,
    0x0017, 0x0018, 0x0019, 0x001A, 0x001B,
];

/// P2 values naming PINs and keys by SFI, and the current EF.
const P2S: [u8; 9] = [0x80, 0x91, 0x92, 0x93, 0x94, 0x95, 0x97, 0x98, 0x9B];

/// Values that are right for some secret, so that accepted VERIFYs happen too.
const RIGHT: [&str; 5] = [AUTH_PIN, SIGN_PASSWORD, TEXT_PIN, MY_NUMBER, COLLATION_B];

fn with_data(cla: u8, ins: u8, p1: u8, p2: u8, data: &[u8]) -> Vec<u8> {
    let mut apdu = vec![cla, ins, p1, p2];
    if !data.is_empty() {
        apdu.push(data.len() as u8);
        apdu.extend_from_slice(data);
    }
    apdu
}

fn step() -> impl Strategy<Value = Step> {
    let value = prop_oneof![
        prop::sample::select(RIGHT.to_vec()).prop_map(|v| v.as_bytes().to_vec()),
        prop::collection::vec(prop::sample::select(b"0123456789ABCabc".to_vec()), 0..18),
    ];
    prop_oneof![
        prop::sample::select(AIDS.to_vec()).prop_map(|a| Step::Apdu(h(a))),
        prop::sample::select(FIDS.to_vec()).prop_map(|f| Step::Apdu(select_ef(f))),
        (prop::sample::select(P2S.to_vec()), value.clone())
            .prop_map(|(p2, v)| Step::Apdu(with_data(0x00, 0x20, 0x00, p2, &v))),
        (any::<u8>(), prop::sample::select(P2S.to_vec()), value)
            .prop_map(|(p1, p2, v)| Step::Apdu(with_data(0x00, 0x24, p1 % 3, p2, &v))),
        (0u8..7, prop::sample::select(P2S.to_vec())).prop_map(|(p1, p2)| Step::Apdu(with_data(
            0x80,
            0x2A,
            p1,
            p2,
            &digest_info(b"m")
        ))),
        (any::<u8>(), any::<u8>()).prop_map(|(p1, p2)| Step::Apdu(vec![
            0x00,
            0xB0,
            p1 & 0x9F,
            p2,
            0x00
        ])),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..40)
        )
            .prop_map(|(cla, ins, p1, p2, d)| Step::Apdu(with_data(cla, ins, p1, p2, &d))),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Step::Apdu),
        Just(Step::PowerOff),
        Just(Step::Reset),
    ]
}

fn counters(card: &Card) -> Vec<(SecretId, u8, u8)> {
    SecretId::ALL
        .into_iter()
        .filter_map(|id| card.secret_status(id).map(|s| (id, s.remaining, s.limit)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn retry_counters_hold_under_any_apdu_sequence(steps in prop::collection::vec(step(), 1..60)) {
        let mut card = card();
        let mut before = counters(&card);
        let mut ever_blocked: Vec<SecretId> = before
            .iter()
            .filter(|(_, remaining, _)| *remaining == 0)
            .map(|(id, _, _)| *id)
            .collect();
        for step in &steps {
            let (ins, sw) = match step {
                Step::Apdu(apdu) => {
                    let response = card.process(apdu);
                    prop_assert!(response.len() >= 2);
                    let sw = u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]]);
                    let has_data = apdu.len() > 5;
                    (apdu.get(1).copied().filter(|_| has_data), Some(sw))
                }
                Step::PowerOff => { card.power_off(); (None, None) }
                Step::Reset => { card.reset(); (None, None) }
            };
            let after = counters(&card);
            prop_assert_eq!(before.len(), after.len());
            for ((id, old, limit), (_, new, _)) in before.iter().zip(&after) {
                prop_assert!(new <= limit, "{:?} above its limit", id);
                if ever_blocked.contains(id) {
                    prop_assert_eq!(*new, 0, "{:?} was unblocked", id);
                }
                if new > old {
                    prop_assert!(matches!(ins, Some(0x20 | 0x24)) && sw == Some(0x9000),
                        "{:?} went up without an accepted VERIFY/CHANGE", id);
                    prop_assert_eq!(new, limit);
                }
                if new < old {
                    prop_assert_eq!(*new, old - 1, "{:?} dropped by more than one", id);
                    prop_assert_eq!(ins, Some(0x20));
                    prop_assert_eq!(sw, Some(0x63C0 | u16::from(*new)));
                }
                if *new == 0 && !ever_blocked.contains(id) {
                    ever_blocked.push(*id);
                }
            }
            before = after;
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_always_answer_a_status_word(
        apdus in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..20)
    ) {
        let mut card = card();
        card.process(&h(SELECT_JPKI));
        for apdu in apdus {
            let response = card.process(&apdu);
            prop_assert!(response.len() >= 2);
            prop_assert!(response.len() <= 65_535);
        }
    }
}
