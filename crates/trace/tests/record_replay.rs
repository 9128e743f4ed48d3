//! Recording through a wrapped channel, then replaying the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use mynacard_trace::format::Event;
use mynacard_trace::{
    Recorder, Redaction, ReplayChannel, ReplayError, ReplayTransport, Trace, TraceError,
};
use mynacard_transport::blocking::block_on;
use mynacard_transport::{Capabilities, CardChannel, Interface, Transport, TransportError};
use proptest::prelude::*;

/// A tiny card: answers by command, reports one reset after the command `00 EE`.
struct ToyCard {
    reset: bool,
    ef: u8,
}

const CERT: [u8; 8] = [0x30, 0x82, 0x00, 0x04, 0x01, 0x02, 0x03, 0x04];
const SIGN_CERT: [u8; 8] = [0x30, 0x82, 0x00, 0x04, 0xDE, 0xAD, 0xBE, 0xEF];
const NAME: &[u8] = "山田太郎".as_bytes();

#[async_trait]
impl CardChannel for ToyCard {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let ok = |data: &[u8]| {
            let mut v = data.to_vec();
            v.extend_from_slice(&[0x90, 0x00]);
            v
        };
        match command {
            [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, ef] => {
                self.ef = *ef;
                Ok(ok(&[]))
            }
            [0x00, 0xA4, ..] => Ok(ok(&[])),
            [0x00, 0x20, 0x00, 0x80] => Ok(vec![0x63, 0xC3]),
            [0x00, 0x20, 0x00, 0x80, 0x04, ..] => Ok(ok(&[])),
            [0x00, 0xB0, 0x00, 0x00, _] if self.ef == 0x01 => Ok(ok(&SIGN_CERT)),
            [0x00, 0xB0, 0x00, 0x00, _] => Ok(ok(&CERT)),
            [0x00, 0xB0, 0x82, 0x00, _] => Ok(ok(NAME)),
            [0x00, 0xEE, ..] => {
                self.reset = true;
                Err(TransportError::CardReset)
            }
            [0x00, 0xDD, ..] => Err(TransportError::CardRemoved),
            _ => Ok(vec![0x6D, 0x00]),
        }
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::extended(Interface::Contact, vec![0x3B, 0x80, 0x80, 0x01, 0x01])
    }
    fn was_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset)
    }
}

struct ToyTransport;

#[async_trait]
impl Transport for ToyTransport {
    fn name(&self) -> String {
        "Toy Reader 00 00".into()
    }
    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        Ok(Box::new(ToyCard {
            reset: false,
            ef: 0,
        }))
    }
}

/// A writer whose bytes the test can read back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn select(aid: &[u8]) -> Vec<u8> {
    let mut c = vec![0x00, 0xA4, 0x04, 0x0C, aid.len() as u8];
    c.extend_from_slice(aid);
    c
}
const JPKI: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
const TEXT: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
const SELECT_SIGN_CERT: [u8; 7] = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x01];
const SELECT_AUTH_CERT: [u8; 7] = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A];
const READ: [u8; 5] = [0x00, 0xB0, 0x00, 0x00, 0x00];
const VERIFY_1234: [u8; 9] = [0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];

fn send(channel: &mut Box<dyn CardChannel>, out: &mut Vec<Result<Vec<u8>, String>>, c: &[u8]) {
    out.push(block_on(channel.transmit(c)).map_err(|e| e.to_string()));
}

/// Runs a session through a recording transport and returns the trace text and the responses.
fn record_session(redaction: Redaction) -> (String, Vec<Result<Vec<u8>, String>>) {
    let buffer = Buffer::default();
    let recorder = Recorder::new(buffer.clone(), redaction, Some("toy".into())).unwrap();
    let transport = recorder.wrap_transport(ToyTransport);
    let mut channel = block_on(transport.open()).unwrap();
    let mut outcomes = Vec::new();
    send(&mut channel, &mut outcomes, &select(&JPKI));
    send(&mut channel, &mut outcomes, &SELECT_AUTH_CERT);
    send(&mut channel, &mut outcomes, &READ);
    send(&mut channel, &mut outcomes, &[0x00, 0x20, 0x00, 0x80]);
    send(&mut channel, &mut outcomes, &VERIFY_1234);
    send(&mut channel, &mut outcomes, &SELECT_SIGN_CERT);
    send(&mut channel, &mut outcomes, &READ);
    send(&mut channel, &mut outcomes, &select(&TEXT));
    send(&mut channel, &mut outcomes, &[0x00, 0xB0, 0x82, 0x00, 0x00]);
    send(&mut channel, &mut outcomes, &[0x00, 0xEE, 0x00, 0x00]);
    assert!(channel.was_reset());
    assert!(!channel.was_reset());
    send(&mut channel, &mut outcomes, &[0x00, 0xDD, 0x00, 0x00]);
    recorder.finish().unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (text, outcomes)
}

#[test]
fn pins_and_personal_data_never_reach_the_file() {
    let (text, _) = record_session(Redaction::PersonalData);
    assert!(!text.contains("31323334"), "PIN bytes in the trace");
    assert!(
        !text.contains(&hex::encode_upper(NAME)),
        "name in the trace"
    );
    assert!(
        !text.contains("DEADBEEF"),
        "signing certificate body in the trace"
    );
    let trace = Trace::read(text.as_bytes()).unwrap();
    let xs: Vec<_> = trace.exchanges().collect();
    assert_eq!(xs.len(), 11);
    // The auth certificate is not personal and is recorded as read.
    assert_eq!(
        xs[2].response.as_deref(),
        Some(&[&CERT[..], &[0x90, 0x00]].concat()[..])
    );
    assert!(!xs[2].response_redacted);
    // The empty VERIFY (retry counter) is whole; the VERIFY with the PIN is its header only.
    assert_eq!(xs[3].command, [0x00, 0x20, 0x00, 0x80]);
    assert!(!xs[3].command_redacted);
    assert_eq!(xs[4].command, [0x00, 0x20, 0x00, 0x80]);
    assert!(xs[4].command_redacted);
    // The signing certificate keeps its DER header and length; the rest is zeros.
    assert!(xs[6].response_redacted);
    assert_eq!(
        xs[6].response.as_deref(),
        Some(&[0x30, 0x82, 0x00, 0x04, 0, 0, 0, 0, 0x90, 0x00][..])
    );
    // The text AP read keeps only its length and status word.
    assert!(xs[8].response_redacted);
    assert_eq!(xs[8].response.as_ref().unwrap().len(), NAME.len() + 2);
    assert!(
        xs[8].response.as_ref().unwrap()[..NAME.len()]
            .iter()
            .all(|b| *b == 0)
    );
    // Errors and the reset are recorded.
    assert_eq!(xs[9].error.as_ref().unwrap().kind, "card_reset");
    assert_eq!(xs[10].error.as_ref().unwrap().kind, "card_removed");
    assert!(trace.events.iter().any(|e| matches!(e, Event::Reset(_))));
    // Timings are monotonic.
    assert!(xs.windows(2).all(|w| w[0].t_us <= w[1].t_us));
    assert_eq!(trace.header.note.as_deref(), Some("toy"));
}

#[test]
fn replay_serves_the_recording_to_the_same_commands() {
    let (text, recorded) = record_session(Redaction::PersonalData);
    let trace = Trace::read(text.as_bytes()).unwrap();
    let transport = ReplayTransport::new(&trace);
    let mut channel = block_on(transport.open()).unwrap();
    assert!(channel.capabilities().extended_length);
    assert_eq!(channel.capabilities().atr, [0x3B, 0x80, 0x80, 0x01, 0x01]);
    let mut replayed = Vec::new();
    send(&mut channel, &mut replayed, &select(&JPKI));
    send(&mut channel, &mut replayed, &SELECT_AUTH_CERT);
    send(&mut channel, &mut replayed, &READ);
    send(&mut channel, &mut replayed, &[0x00, 0x20, 0x00, 0x80]);
    // Another PIN matches the redacted VERIFY: only the header was recorded.
    send(
        &mut channel,
        &mut replayed,
        &[0x00, 0x20, 0x00, 0x80, 0x04, b'9', b'9', b'9', b'9'],
    );
    send(&mut channel, &mut replayed, &SELECT_SIGN_CERT);
    send(&mut channel, &mut replayed, &READ);
    send(&mut channel, &mut replayed, &select(&TEXT));
    send(&mut channel, &mut replayed, &[0x00, 0xB0, 0x82, 0x00, 0x00]);
    send(&mut channel, &mut replayed, &[0x00, 0xEE, 0x00, 0x00]);
    assert!(channel.was_reset());
    send(&mut channel, &mut replayed, &[0x00, 0xDD, 0x00, 0x00]);
    // Same outcomes, except the redacted personal data.
    for (i, (a, b)) in recorded.iter().zip(&replayed).enumerate() {
        if i == 6 || i == 8 {
            assert_eq!(a.as_ref().unwrap().len(), b.as_ref().unwrap().len());
        } else {
            assert_eq!(a, b, "exchange {i}");
        }
    }
    // The recording is used up.
    let err = block_on(channel.transmit(&READ)).unwrap_err();
    assert!(matches!(
        err,
        TransportError::Backend { backend: "replay", ref source }
            if matches!(source.downcast_ref::<ReplayError>(), Some(ReplayError::Exhausted { sent: 11 }))
    ));
}

#[test]
fn unredacted_recording_replays_byte_for_byte() {
    let (text, recorded) = record_session(Redaction::None);
    assert!(text.contains("31323334"));
    let trace = Trace::read(text.as_bytes()).unwrap();
    let mut channel = ReplayChannel::first(&trace).unwrap();
    let sign = block_on(async {
        channel.transmit(&select(&JPKI)).await.unwrap();
        channel.transmit(&SELECT_AUTH_CERT).await.unwrap();
        channel.transmit(&READ).await.unwrap();
        channel.transmit(&[0x00, 0x20, 0x00, 0x80]).await.unwrap();
        channel.transmit(&VERIFY_1234).await.unwrap();
        channel.transmit(&SELECT_SIGN_CERT).await.unwrap();
        channel.transmit(&READ).await.unwrap()
    });
    assert_eq!(Ok(sign), recorded[6]);
    assert!(matches!(
        channel.finish(),
        Err(ReplayError::NotFinished { remaining: 4 })
    ));
}

#[test]
fn a_different_command_fails_with_a_typed_mismatch_that_hides_pins() {
    let (text, _) = record_session(Redaction::PersonalData);
    let trace = Trace::read(text.as_bytes()).unwrap();
    let mut channel = ReplayChannel::first(&trace).unwrap();
    let err = block_on(channel.transmit(&[0x00, 0x20, 0x00, 0x81, 0x04, b'5', b'6', b'7', b'8']))
        .unwrap_err();
    let TransportError::Backend { backend, source } = err else {
        panic!("expected a replay error");
    };
    assert_eq!(backend, "replay");
    match source.downcast_ref::<ReplayError>() {
        Some(ReplayError::CommandMismatch {
            seq,
            expected,
            actual,
        }) => {
            assert_eq!(*seq, 0);
            assert_eq!(*expected, select(&JPKI));
            assert_eq!(*actual, [0x00, 0x20, 0x00, 0x81]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(!source.to_string().contains("35363738"));
}

#[test]
fn files_round_trip_and_bad_files_are_typed_errors() {
    let dir = std::env::temp_dir().join(format!("mynacard-trace-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.jsonl");
    let recorder = Recorder::create(&path).unwrap();
    let mut channel = recorder.wrap_channel(
        "reader",
        ToyCard {
            reset: false,
            ef: 0,
        },
    );
    block_on(channel.transmit(&select(&JPKI))).unwrap();
    recorder.finish().unwrap();
    let trace = Trace::from_path(&path).unwrap();
    assert_eq!(trace.header.version, 1);
    assert_eq!(trace.header.redaction, Redaction::PersonalData);
    assert_eq!(trace.sessions().len(), 1);
    assert_eq!(trace.sessions()[0].open.transport, "reader");
    std::fs::remove_dir_all(&dir).unwrap();

    let no_header = r#"{"type":"reset","t_us":1}"#;
    assert!(matches!(
        Trace::read(no_header.as_bytes()),
        Err(TraceError::MissingHeader)
    ));
    let other =
        r#"{"type":"header","format":"pcap","version":1,"created_unix_ms":0,"redaction":"none"}"#;
    assert!(matches!(
        Trace::read(other.as_bytes()),
        Err(TraceError::WrongFormat { .. })
    ));
    let newer = r#"{"type":"header","format":"mynacard-trace","version":2,"created_unix_ms":0,"redaction":"none"}"#;
    assert!(matches!(
        Trace::read(newer.as_bytes()),
        Err(TraceError::UnsupportedVersion { version: 2 })
    ));
    let bad_hex = format!(
        "{}\n{}",
        r#"{"type":"header","format":"mynacard-trace","version":1,"created_unix_ms":0,"redaction":"none","extra":"ignored"}"#,
        r#"{"type":"exchange","seq":0,"t_us":0,"took_us":0,"command":"0G"}"#
    );
    assert!(matches!(
        Trace::read(bad_hex.as_bytes()),
        Err(TraceError::Json { line: 2, .. })
    ));
}

proptest! {
    #[test]
    fn arbitrary_trace_text_never_panics(text in ".{0,400}") {
        let _ = Trace::read(text.as_bytes());
    }

    #[test]
    fn arbitrary_lines_after_a_header_never_panic(lines in proptest::collection::vec(".{0,120}", 0..6)) {
        let mut text = String::from(r#"{"type":"header","format":"mynacard-trace","version":1,"created_unix_ms":0,"redaction":"none"}"#);
        for l in &lines {
            text.push('\n');
            text.push_str(l);
        }
        if let Ok(trace) = Trace::read(text.as_bytes()) {
            for session in trace.sessions() {
                if let Ok(mut ch) = ReplayChannel::new(session) {
                    let _ = block_on(ch.transmit(&[0x00, 0xA4, 0x04, 0x0C]));
                }
            }
        }
    }
}
