use std::collections::VecDeque;
use std::sync::Mutex;

use mynacard_transport::blocking::block_on;

use super::*;

/// A host whose answers are scripted, recording what it was asked.
struct ScriptedTag {
    info: TagInfo,
    answers: Mutex<VecDeque<Result<Vec<u8>, NfcError>>>,
    sent: Mutex<Vec<Vec<u8>>>,
    timeout: Mutex<Option<Duration>>,
    refuse_timeout: bool,
}

impl ScriptedTag {
    fn new(info: TagInfo, answers: Vec<Result<Vec<u8>, NfcError>>) -> Arc<Self> {
        Arc::new(ScriptedTag {
            info,
            answers: Mutex::new(answers.into()),
            sent: Mutex::new(Vec::new()),
            timeout: Mutex::new(None),
            refuse_timeout: false,
        })
    }
}

#[async_trait]
impl NfcTag for ScriptedTag {
    fn info(&self) -> TagInfo {
        self.info.clone()
    }
    fn set_timeout(&self, timeout: Duration) -> Result<(), NfcError> {
        if self.refuse_timeout {
            return Err(NfcError::Host("timeout refused".into()));
        }
        *self.timeout.lock().unwrap() = Some(timeout);
        Ok(())
    }
    async fn transceive(&self, command: &[u8]) -> Result<Vec<u8>, NfcError> {
        self.sent.lock().unwrap().push(command.to_vec());
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Err(NfcError::TagLost))
    }
}

const SELECT_JPKI: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
];

#[test]
fn transceive_passes_bytes_both_ways_and_sets_the_rsa_timeout() {
    let tag = ScriptedTag::new(TagInfo::new(261, false), vec![Ok(vec![0x90, 0x00])]);
    let transport = NfcTransport::new(tag.clone());
    let mut channel = transport.open_channel().unwrap();
    assert_eq!(*tag.timeout.lock().unwrap(), Some(Duration::from_secs(20)));
    assert_eq!(
        block_on(channel.transmit(&SELECT_JPKI)).unwrap(),
        [0x90, 0x00]
    );
    assert_eq!(tag.sent.lock().unwrap()[0], SELECT_JPKI);
}

#[test]
fn short_only_phone_reports_short_capabilities() {
    let info = TagInfo::new(261, false).with_identification(vec![0x00, 0x11]);
    let caps = capabilities(&info, false);
    assert!(!caps.extended_length);
    assert_eq!(caps.max_command_len, 261);
    assert_eq!(caps.max_response_len, 258);
    assert_eq!(caps.interface, Interface::Contactless);
    assert_eq!(caps.atr, [0x00, 0x11]);
}

#[test]
fn extended_phone_is_limited_by_its_transceive_length() {
    let caps = capabilities(&TagInfo::new(65_279, true), false);
    assert!(caps.extended_length);
    assert_eq!(caps.max_command_len, 65_279);
    assert_eq!(caps.max_response_len, 65_538);
    let caps = capabilities(&TagInfo::new(65_279, true), true);
    assert!(!caps.extended_length);
    assert_eq!(caps.max_command_len, 261);
}

#[test]
fn too_long_command_never_reaches_the_host() {
    let tag = ScriptedTag::new(TagInfo::new(261, false), vec![]);
    let transport = NfcTransport::new(tag.clone());
    let mut channel = transport.open_channel().unwrap();
    let err = block_on(channel.transmit(&[0u8; 300])).unwrap_err();
    assert!(matches!(
        err,
        TransportError::CommandTooLong { len: 300, max: 261 }
    ));
    assert!(tag.sent.lock().unwrap().is_empty());
}

#[test]
fn tag_loss_is_card_removed_and_ends_the_session() {
    let tag = ScriptedTag::new(
        TagInfo::new(261, false),
        vec![Ok(vec![0x90, 0x00]), Err(NfcError::TagLost)],
    );
    let transport = NfcTransport::new(tag.clone());
    let mut channel = transport.open_channel().unwrap();
    block_on(channel.transmit(&SELECT_JPKI)).unwrap();
    let verify = [0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'];
    assert!(matches!(
        block_on(channel.transmit(&verify)),
        Err(TransportError::CardRemoved)
    ));
    // Nothing more is sent to a lost tag: in particular the VERIFY is not retried.
    assert!(matches!(
        block_on(channel.transmit(&verify)),
        Err(TransportError::CardRemoved)
    ));
    assert_eq!(tag.sent.lock().unwrap().len(), 2);
    drop(channel);
    assert!(transport.is_lost());
    assert!(matches!(
        transport.open_channel(),
        Err(TransportError::NoCard)
    ));
}

#[test]
fn host_timeout_and_other_failures_are_typed_with_sources() {
    let tag = ScriptedTag::new(
        TagInfo::new(261, false),
        vec![
            Err(NfcError::Timeout),
            Err(NfcError::Host("io".into())),
            Ok(vec![0x90]),
        ],
    );
    let transport =
        NfcTransport::with_options(tag, NfcOptions::default().timeout(Duration::from_secs(5)));
    let mut channel = transport.open_channel().unwrap();
    assert!(matches!(
        block_on(channel.transmit(&SELECT_JPKI)),
        Err(TransportError::Timeout(d)) if d == Duration::from_secs(5)
    ));
    let err = block_on(channel.transmit(&SELECT_JPKI)).unwrap_err();
    let TransportError::Backend { backend, source } = err else {
        panic!("expected a backend error, got {err:?}");
    };
    assert_eq!(backend, "nfc");
    assert!(matches!(
        source.downcast_ref::<NfcError>(),
        Some(NfcError::Host(_))
    ));
    assert!(matches!(
        block_on(channel.transmit(&SELECT_JPKI)),
        Err(TransportError::MalformedResponse { len: 1 })
    ));
}

#[test]
fn one_channel_at_a_time() {
    let tag = ScriptedTag::new(TagInfo::new(261, false), vec![]);
    let transport = NfcTransport::new(tag);
    let first = transport.open_channel().unwrap();
    assert!(matches!(
        transport.open_channel(),
        Err(TransportError::SharingViolation)
    ));
    drop(first);
    assert!(transport.open_channel().is_ok());
}

#[test]
fn a_host_that_cannot_set_the_timeout_fails_the_open() {
    let tag = Arc::new(ScriptedTag {
        info: TagInfo::new(261, false),
        answers: Mutex::new(VecDeque::new()),
        sent: Mutex::new(Vec::new()),
        timeout: Mutex::new(None),
        refuse_timeout: true,
    });
    let transport = NfcTransport::new(tag);
    assert!(matches!(
        transport.open_channel(),
        Err(TransportError::Backend { backend: "nfc", .. })
    ));
    // The failed open does not leave the transport marked busy.
    assert!(!transport.state.in_use.load(Ordering::SeqCst));
}
