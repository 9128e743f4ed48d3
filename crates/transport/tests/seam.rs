//! The transport seam without any backend: a hand-written channel and transport, the blocking
//! adapter, capabilities and error classification.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Duration;

use async_trait::async_trait;
use mynacard_transport::blocking::{BlockingChannel, block_on};
use mynacard_transport::{Capabilities, CardChannel, Interface, Transport, TransportError};

/// A card that answers `9000` to everything, records what it got, and can be "reset".
struct EchoCard {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    reset: bool,
}

#[async_trait]
impl CardChannel for EchoCard {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.seen.lock().unwrap().push(command.to_vec());
        if command.len() > 261 {
            return Err(TransportError::CommandTooLong {
                len: command.len(),
                max: 261,
            });
        }
        Ok(vec![0x90, 0x00])
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::short(Interface::Contactless, vec![0x3B, 0x88])
    }
    fn was_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset)
    }
}

struct OneCardReader {
    present: bool,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

#[async_trait]
impl Transport for OneCardReader {
    fn name(&self) -> String {
        "test reader".to_owned()
    }
    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        if !self.present {
            return Err(TransportError::NoCard);
        }
        Ok(Box::new(EchoCard {
            seen: Arc::clone(&self.seen),
            reset: true,
        }))
    }
}

#[test]
fn transport_opens_boxed_channels_that_work_through_the_blocking_adapter() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let reader = OneCardReader {
        present: true,
        seen: Arc::clone(&seen),
    };
    let dyn_reader: &dyn Transport = &reader;
    assert_eq!(dyn_reader.name(), "test reader");
    let channel = block_on(dyn_reader.open()).unwrap();
    // `Box<dyn CardChannel>` is itself a `CardChannel`.
    let mut blocking = BlockingChannel::new(channel);
    assert!(blocking.was_reset(), "first read reports the reset");
    assert!(!blocking.was_reset(), "reading the flag clears it");
    assert_eq!(
        blocking.transmit(&[0x00, 0x20, 0x00, 0x80]).unwrap(),
        [0x90, 0x00]
    );
    let err = blocking.transmit(&[0u8; 300]).unwrap_err();
    assert!(matches!(
        err,
        TransportError::CommandTooLong { len: 300, max: 261 }
    ));
    assert_eq!(blocking.capabilities().interface, Interface::Contactless);
    assert_eq!(seen.lock().unwrap().len(), 2);
    let absent = OneCardReader {
        present: false,
        seen,
    };
    assert!(matches!(
        block_on(absent.open()),
        Err(TransportError::NoCard)
    ));
}

/// A future that is pending until another thread completes it and wakes the waiter.
struct CompletedElsewhere {
    done: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    started: bool,
}

impl Future for CompletedElsewhere {
    type Output = &'static str;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.done.load(Ordering::SeqCst) {
            return Poll::Ready("answered");
        }
        *self.waker.lock().unwrap() = Some(cx.waker().clone());
        if !self.started {
            self.started = true;
            let done = Arc::clone(&self.done);
            let waker = Arc::clone(&self.waker);
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                done.store(true, Ordering::SeqCst);
                if let Some(w) = waker.lock().unwrap().take() {
                    w.wake();
                }
            });
        }
        Poll::Pending
    }
}

#[test]
fn block_on_parks_until_a_backend_thread_wakes_it() {
    let future = CompletedElsewhere {
        done: Arc::new(AtomicBool::new(false)),
        waker: Arc::new(Mutex::new(None)),
        started: false,
    };
    assert_eq!(block_on(future), "answered");
}

#[test]
fn capabilities_presets_and_limits() {
    let short = Capabilities::short(Interface::Contact, vec![]);
    assert_eq!((short.max_command_len, short.max_response_len), (261, 258));
    assert!(!short.extended_length);
    assert_eq!(short.max_response_data(), 256);
    let ext = Capabilities::extended(Interface::Contact, vec![0x3B]);
    assert!(ext.extended_length);
    assert_eq!(ext.max_command_len, 65_544);
    assert_eq!(ext.max_response_data(), 65_536);
    // A phone that transceives at most 1024 bytes still carries extended APDUs.
    let phone = ext.clone().with_limits(1024, 1024);
    assert!(phone.extended_length);
    assert_eq!(phone.max_response_data(), 1022);
    // Limits that fit short APDUs turn extended length off.
    let tiny = ext.with_limits(261, 258);
    assert!(!tiny.extended_length);
    assert_eq!(
        Capabilities::short(Interface::Unknown, vec![])
            .with_limits(0, 1)
            .max_response_data(),
        0
    );
}

#[test]
fn errors_classify_and_keep_their_source() {
    let backend = TransportError::backend("pcsc", std::io::Error::other("SCARD_E_NO_SERVICE"));
    assert_eq!(backend.to_string(), "pcsc transport failure");
    let source = std::error::Error::source(&backend).unwrap();
    assert_eq!(source.to_string(), "SCARD_E_NO_SERVICE");
    assert!(!backend.is_retryable());
    assert!(!backend.is_card_gone());

    assert!(TransportError::NoCard.is_card_gone());
    assert!(TransportError::CardRemoved.is_card_gone());
    assert!(!TransportError::CardReset.is_card_gone());
    for retryable in [
        TransportError::CardReset,
        TransportError::SharingViolation,
        TransportError::Timeout(Duration::from_secs(5)),
        TransportError::CardRemoved,
        TransportError::NoCard,
    ] {
        assert!(retryable.is_retryable(), "{retryable:?}");
    }
    for not_retryable in [
        TransportError::Cancelled,
        TransportError::NoReader { name: None },
        TransportError::CommandTooLong { len: 9, max: 5 },
        TransportError::MalformedResponse { len: 1 },
    ] {
        assert!(!not_retryable.is_retryable(), "{not_retryable:?}");
    }
    assert_eq!(
        TransportError::NoReader {
            name: Some("ACS ACR39U".to_owned())
        }
        .to_string(),
        "no reader named \"ACS ACR39U\""
    );
    assert_eq!(
        TransportError::NoReader { name: None }.to_string(),
        "no reader"
    );
}

/// The traits are usable across threads, as the async card layer needs.
#[test]
fn channels_and_transports_are_send() {
    fn assert_send<T: Send>() {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send::<Box<dyn CardChannel>>();
    assert_send_sync::<Box<dyn Transport>>();
    assert_send::<BlockingChannel<Box<dyn CardChannel>>>();
}

/// Something that takes its channel by value, as a card-layer session does.
async fn exchange_twice<C: CardChannel>(mut channel: C) -> Vec<u8> {
    channel.transmit(&[0x00, 0xA4, 0x04, 0x0C]).await.unwrap();
    channel.transmit(&[0x00, 0xB0, 0x8A, 0x00]).await.unwrap()
}

#[test]
fn a_borrowed_channel_serves_a_session_and_is_usable_afterwards() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut card = EchoCard {
        seen: Arc::clone(&seen),
        reset: true,
    };
    assert_eq!(block_on(exchange_twice(&mut card)), [0x90, 0x00]);
    // The borrow forwards the reset flag and capabilities of the channel it borrows.
    fn reset_flag<C: CardChannel>(mut channel: C) -> bool {
        channel.was_reset()
    }
    fn capabilities_of<C: CardChannel>(channel: C) -> Capabilities {
        channel.capabilities()
    }
    assert!(reset_flag(&mut card));
    assert!(!card.was_reset());
    let expected = card.capabilities();
    assert_eq!(capabilities_of(&mut card), expected);
    // The caller still owns the channel and goes on with it.
    block_on(card.transmit(&[0x00, 0x20, 0x00, 0x98])).unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
}
