//! The response assembler (61xx / 6Cxx) and the chaining splitter as pure values.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::chain::{self, CLA_CHAINING};
use mynacard_apdu::commands::{self, KeyRef};
use mynacard_apdu::{
    ApduError, AssemblerLimits, Command, LengthEncoding, Response, ResponseAssembler, StatusWord,
    Step,
};
use proptest::collection::vec;
use proptest::prelude::*;
use zeroize::Zeroizing;

fn bytes_of(c: &Command) -> Vec<u8> {
    c.to_bytes(LengthEncoding::Auto).unwrap().to_vec()
}

#[test]
fn done_at_once() {
    let read = commands::read_binary(0, 4).unwrap();
    let mut asm = ResponseAssembler::new(&read);
    let step = asm
        .feed(Response::new([1, 2, 3, 4], StatusWord::Success))
        .unwrap();
    assert_eq!(
        step,
        Step::Done(Response::new([1, 2, 3, 4], StatusWord::Success))
    );
    // Errors are returned as done too: the caller reads the status word.
    let mut asm = ResponseAssembler::new(&read);
    assert_eq!(
        asm.feed(Response::status(StatusWord::SecurityStatusNotSatisfied))
            .unwrap(),
        Step::Done(Response::status(StatusWord::SecurityStatusNotSatisfied))
    );
}

#[test]
fn get_response_rounds_collect_all_data() {
    // A proprietary-class command with data and Le, as a card signature is.
    let sign = Command::new(0x80, 0x2A, 0x02, KeyRef::Current.p2())
        .with_data([0u8; 32])
        .with_ne(256);
    let mut asm = ResponseAssembler::new(&sign);
    // 61 00: 256 or more bytes wait.
    let Step::GetResponse(get) = asm
        .feed(Response::status(StatusWord::BytesRemaining(0)))
        .unwrap()
    else {
        panic!("expected GET RESPONSE")
    };
    assert_eq!(bytes_of(&get), [0x00, 0xC0, 0x00, 0x00, 0x00]);
    let Step::GetResponse(get) = asm
        .feed(Response::new(
            vec![0xAA; 256],
            StatusWord::BytesRemaining(0x10),
        ))
        .unwrap()
    else {
        panic!("expected GET RESPONSE")
    };
    assert_eq!(bytes_of(&get), [0x00, 0xC0, 0x00, 0x00, 0x10]);
    let Step::Done(done) = asm
        .feed(Response::new(vec![0xBB; 0x10], StatusWord::Success))
        .unwrap()
    else {
        panic!("expected done")
    };
    assert_eq!(done.sw, StatusWord::Success);
    assert_eq!(done.data.len(), 256 + 16);
    assert!(done.data[..256].iter().all(|b| *b == 0xAA));
    assert!(done.data[256..].iter().all(|b| *b == 0xBB));
}

#[test]
fn wrong_le_resends_once_with_the_cards_length() {
    let read = commands::read_binary(0x0010, 256).unwrap();
    let mut asm = ResponseAssembler::new(&read);
    let Step::Resend(again) = asm
        .feed(Response::status(StatusWord::WrongLe(0x23)))
        .unwrap()
    else {
        panic!("expected resend")
    };
    assert_eq!(bytes_of(&again), [0x00, 0xB0, 0x00, 0x10, 0x23]);
    // A second 6Cxx to the resend is a card fault, not a loop.
    assert_eq!(
        asm.feed(Response::status(StatusWord::WrongLe(0x22))),
        Err(ApduError::RepeatedWrongLe)
    );
    // 6C00 means 256.
    let mut asm = ResponseAssembler::new(&commands::read_binary(0, 1).unwrap());
    let Step::Resend(again) = asm.feed(Response::status(StatusWord::WrongLe(0))).unwrap() else {
        panic!("expected resend")
    };
    assert_eq!(again.ne(), Some(256));
}

#[test]
fn a_pin_command_is_never_resent() {
    let verify = commands::verify(KeyRef::Current, Zeroizing::new(b"1234".to_vec()));
    let mut asm = ResponseAssembler::new(&verify);
    assert_eq!(
        asm.feed(Response::status(StatusWord::WrongLe(4))).unwrap(),
        Step::Done(Response::status(StatusWord::WrongLe(4)))
    );
}

#[test]
fn get_response_stays_on_the_logical_channel_without_chaining_or_sm() {
    for (cla, want) in [
        (0x00, 0x00),
        (0x03, 0x03),
        (0x13, 0x03),
        (0x0D, 0x01),
        (0x80, 0x00),
        (0x41, 0x41),
        (0x6F, 0x4F),
    ] {
        let cmd = Command::new(cla, 0xB0, 0, 0).with_ne(256);
        let mut asm = ResponseAssembler::new(&cmd);
        let Step::GetResponse(get) = asm
            .feed(Response::status(StatusWord::BytesRemaining(1)))
            .unwrap()
        else {
            panic!("expected GET RESPONSE")
        };
        assert_eq!(get.cla, want, "after CLA {cla:02X}");
    }
}

#[test]
fn limits_stop_a_looping_card() {
    let cmd = commands::read_binary(0, 256).unwrap();
    let limits = AssemblerLimits {
        max_total_len: 1_000,
        max_rounds: 3,
    };
    let mut asm = ResponseAssembler::with_limits(&cmd, limits);
    for _ in 0..3 {
        assert!(matches!(
            asm.feed(Response::new([0], StatusWord::BytesRemaining(1))),
            Ok(Step::GetResponse(_))
        ));
    }
    assert_eq!(
        asm.feed(Response::new([0], StatusWord::BytesRemaining(1))),
        Err(ApduError::AssemblyLimit {
            what: "GET RESPONSE rounds"
        })
    );
    let mut asm = ResponseAssembler::with_limits(&cmd, limits);
    assert!(
        asm.feed(Response::new(vec![0; 600], StatusWord::BytesRemaining(0)))
            .is_ok()
    );
    assert_eq!(
        asm.feed(Response::new(vec![0; 401], StatusWord::Success)),
        Err(ApduError::AssemblyLimit {
            what: "total response length"
        })
    );
}

#[test]
fn chain_sets_cla_10_on_all_but_the_last() {
    let data: Vec<u8> = (0..=255).chain(0..10).map(|b| b as u8).collect();
    let cmd = Command::new(0x80, 0x2A, 0x00, 0x80)
        .with_data(data.clone())
        .with_ne(256);
    let parts = chain::split(&cmd, 100).unwrap();
    assert_eq!(parts.len(), 3);
    for part in &parts[..2] {
        assert_eq!(part.cla, 0x90);
        assert_eq!(part.ne(), None);
        assert_eq!(part.data_bytes().len(), 100);
    }
    let last = &parts[2];
    assert_eq!(last.cla, 0x80);
    assert_eq!(last.ne(), Some(256));
    assert_eq!(last.data_bytes().len(), 66);
    let joined: Vec<u8> = parts.iter().flat_map(|p| p.data_bytes().to_vec()).collect();
    assert_eq!(joined, data);
    assert_eq!(chain::split(&cmd, 0), Err(ApduError::ZeroChunk));
    assert_eq!(chain::split(&cmd, 266).unwrap(), vec![cmd]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The splitter keeps the data in order, marks every part but the last, keeps Ne and secrecy.
    #[test]
    fn chain_split_properties(
        header in any::<[u8; 4]>(),
        data in vec(any::<u8>(), 0..1_200),
        chunk in 1usize..300,
        ne in proptest::option::of(1u32..=256),
        secret in any::<bool>(),
    ) {
        let [cla, ins, p1, p2] = header;
        let cla = cla & !CLA_CHAINING;
        let base = Command::new(cla, ins, p1, p2);
        let mut cmd = if secret {
            base.with_sensitive_data(Zeroizing::new(data.clone()))
        } else {
            base.with_data(data.clone())
        };
        if let Some(ne) = ne {
            cmd = cmd.with_ne(ne);
        }
        let parts = chain::split(&cmd, chunk).unwrap();
        let expected_parts = data.len().div_ceil(chunk).max(1);
        prop_assert_eq!(parts.len(), expected_parts);
        let (last, rest) = parts.split_last().unwrap();
        for part in rest {
            prop_assert_eq!(part.cla, cla | CLA_CHAINING);
            prop_assert!(part.is_chained());
            prop_assert_eq!(part.ne(), None);
            prop_assert_eq!(part.data_bytes().len(), chunk);
        }
        prop_assert_eq!(last.cla, cla);
        prop_assert!(!last.is_chained());
        prop_assert_eq!(last.ne(), ne);
        prop_assert!(last.data_bytes().len() <= chunk);
        for part in &parts {
            prop_assert_eq!((part.ins, part.p1, part.p2), (ins, p1, p2));
            prop_assert_eq!(part.data().is_sensitive(), secret);
        }
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.data_bytes().to_vec()).collect();
        prop_assert_eq!(joined, data);
    }

    /// Fed any sequence of answers, the assembler never panics, asks only for well-formed
    /// commands, and its finished response holds exactly the data of the rounds it asked for.
    #[test]
    fn assembler_follows_the_card(
        answers in vec((vec(any::<u8>(), 0..40), prop_oneof![
            any::<u16>(),
            (0u16..=0xFF).prop_map(|n| 0x6100 | n),
            (0u16..=0xFF).prop_map(|n| 0x6C00 | n),
            Just(0x9000u16),
        ]), 1..30),
        secret in any::<bool>(),
    ) {
        let first = if secret {
            Command::new(0, 0x20, 0, 0x80).with_sensitive_data(Zeroizing::new(b"1234".to_vec()))
        } else {
            Command::new(0, 0xB0, 0, 0).with_ne(256)
        };
        let limits = AssemblerLimits { max_total_len: 300, max_rounds: 10 };
        let mut asm = ResponseAssembler::with_limits(&first, limits);
        let mut last_sent = first.clone();
        let mut pending: Vec<u8> = Vec::new();
        for (data, sw) in answers {
            let sw = StatusWord::from_u16(sw);
            match asm.feed(Response::new(data.clone(), sw)) {
                Ok(Step::GetResponse(get)) => {
                    let StatusWord::BytesRemaining(n) = sw else {
                        return Err(TestCaseError::fail("GET RESPONSE without 61xx"));
                    };
                    prop_assert_eq!(get.ins, 0xC0);
                    prop_assert_eq!(get.ne(), Some(if n == 0 { 256 } else { u32::from(n) }));
                    prop_assert!(get.to_bytes(LengthEncoding::Short).is_ok());
                    pending.extend_from_slice(&data);
                    prop_assert!(pending.len() <= 300);
                    last_sent = get;
                }
                Ok(Step::Resend(again)) => {
                    let StatusWord::WrongLe(n) = sw else {
                        return Err(TestCaseError::fail("resend without 6Cxx"));
                    };
                    // Only commands without secret data are resent (a GET RESPONSE that
                    // followed a VERIFY may be).
                    prop_assert!(!again.data().is_sensitive(), "a PIN command was resent");
                    prop_assert_eq!(
                        (again.cla, again.ins, again.p1, again.p2, again.data_bytes()),
                        (last_sent.cla, last_sent.ins, last_sent.p1, last_sent.p2, last_sent.data_bytes())
                    );
                    prop_assert_eq!(again.ne(), Some(if n == 0 { 256 } else { u32::from(n) }));
                    last_sent = again;
                }
                Ok(Step::Done(done)) => {
                    pending.extend_from_slice(&data);
                    prop_assert_eq!(done.sw, sw);
                    prop_assert_eq!(&done.data, &pending);
                    pending.clear();
                    // The next answer belongs to a new exchange started by the same command.
                    asm = ResponseAssembler::with_limits(&first, limits);
                    last_sent = first.clone();
                }
                Err(ApduError::AssemblyLimit { .. } | ApduError::RepeatedWrongLe) => break,
                Err(other) => return Err(TestCaseError::fail(format!("unexpected {other:?}"))),
            }
        }
    }
}
