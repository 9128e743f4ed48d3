//! `MockCardChannel` (feature `mock`) as downstream crates use it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mockall::Sequence;
use mockall::predicate::eq;
use mynacard_transport::blocking::BlockingChannel;
use mynacard_transport::{Capabilities, CardChannel, Interface, MockCardChannel, TransportError};

#[test]
fn scripted_exchange_in_order() {
    let mut mock = MockCardChannel::new();
    let mut seq = Sequence::new();
    mock.expect_transmit()
        .with(eq(vec![0x00u8, 0x20, 0x00, 0x80]))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(vec![0x63, 0xC3]));
    mock.expect_transmit()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Err(TransportError::CardRemoved));
    mock.expect_capabilities()
        .returning(|| Capabilities::extended(Interface::Contact, vec![0x3B]));
    mock.expect_was_reset().return_const(false);

    let mut channel = BlockingChannel::new(mock);
    assert!(channel.capabilities().extended_length);
    assert!(!channel.was_reset());
    assert_eq!(
        channel.transmit(&[0x00, 0x20, 0x00, 0x80]).unwrap(),
        [0x63, 0xC3]
    );
    let err = channel
        .transmit(&[0x00, 0xB0, 0x00, 0x00, 0x00])
        .unwrap_err();
    assert!(err.is_card_gone());
}

#[test]
fn the_mock_is_a_boxed_card_channel() {
    let mut mock = MockCardChannel::new();
    mock.expect_transmit().returning(|c| {
        let mut r = c.to_vec();
        r.extend_from_slice(&[0x90, 0x00]);
        Ok(r)
    });
    let mut boxed: Box<dyn CardChannel> = Box::new(mock);
    let answer = mynacard_transport::blocking::block_on(boxed.transmit(&[1, 2]));
    assert_eq!(answer.unwrap(), [1, 2, 0x90, 0x00]);
}
