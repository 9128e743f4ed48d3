//! The vpcd bridge against a stand-in for vpcd on loopback that speaks its wire protocol:
//! framing, control bytes, ATR at any time, APDUs, power and reset, pulling the card, stopping,
//! reconnecting, faults through the bridge.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use mynacard_sim::fault::Faults;
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::state::SecretId;
use mynacard_sim::vpcd::{self, Ended, VpcdError, VpcdOptions};
use support::*;

/// The vpcd side of one connection.
struct FakeVpcd {
    stream: TcpStream,
}

impl FakeVpcd {
    fn accept(listener: &TcpListener) -> FakeVpcd {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        FakeVpcd { stream }
    }

    /// Sends the length and the payload in two writes, as Debian's vpcd does.
    fn send(&mut self, payload: &[u8]) {
        self.stream
            .write_all(&(payload.len() as u16).to_be_bytes())
            .unwrap();
        self.stream.write_all(payload).unwrap();
    }

    /// The next frame, or `None` at end of stream.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 2];
        match self.stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
            Err(e) => panic!("{e}"),
        }
        let mut payload = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut payload).unwrap();
        Some(payload)
    }

    fn apdu(&mut self, command: &[u8]) -> Vec<u8> {
        self.send(command);
        self.recv().expect("a response frame")
    }
}

fn listen() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn options() -> VpcdOptions {
    VpcdOptions {
        connect_timeout: Some(Duration::from_secs(10)),
        retry_interval: Duration::from_millis(10),
        reconnect: false,
        poll_interval: Duration::from_millis(10),
    }
}

#[test]
fn startup_sequence_apdus_power_and_reset() {
    let listener = listen();
    let sim = SimCard::from_image(image());
    let handle = vpcd::spawn(listener.local_addr().unwrap(), sim.clone(), options()).unwrap();
    let mut vpcd = FakeVpcd::accept(&listener);
    // What pcscd does at startup: GET ATR, GET ATR, POWER ON, GET ATR.
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR.to_vec());
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR.to_vec());
    vpcd.send(&[0x01]);
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR.to_vec());

    assert_eq!(vpcd.apdu(&h("00A4040007A0000000030000")), h("6A82"));
    assert_eq!(vpcd.apdu(&h(SELECT_JPKI)), h("9000"));
    assert_eq!(vpcd.apdu(&verify(0x98, AUTH_PIN)), h("9000"));
    // The whole certificate in one extended read comes back in one frame.
    let cert = vpcd.apdu(&h("00B08A00000000"));
    assert_eq!(&cert[..cert.len() - 2], image().auth.cert_der.as_slice());
    // ATR between APDUs does not disturb the security state.
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR.to_vec());
    assert!(sim.with_card(|c| c.is_verified(SecretId::JpkiAuthPin)));
    // A warm reset (as the pcsc crate does on disconnect) clears it.
    vpcd.send(&[0x02]);
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR.to_vec());
    assert!(!sim.with_card(|c| c.is_verified(SecretId::JpkiAuthPin)));
    assert_eq!(vpcd.apdu(&h(SELECT_JPKI)), h("9000"));
    assert_eq!(vpcd.apdu(&verify(0x98, AUTH_PIN)), h("9000"));
    // Power off clears it too.
    vpcd.send(&[0x00]);
    vpcd.send(&[0x01]);
    vpcd.send(&[0x04]);
    vpcd.recv().unwrap();
    assert!(!sim.with_card(|c| c.is_verified(SecretId::JpkiAuthPin)));
    assert_eq!(sim.log().counters().apdus, 6);

    handle.stop();
    assert_eq!(handle.join().unwrap(), Ended::Stopped);
    // The card closed its connection: to vpcd the card is gone.
    assert_eq!(vpcd.recv(), None);
}

#[test]
fn vpcd_closing_ends_the_bridge_or_it_reconnects() {
    let listener = listen();
    let addr = listener.local_addr().unwrap();
    let sim = SimCard::from_image(image());
    let handle = vpcd::spawn(addr, sim.clone(), options()).unwrap();
    let vpcd = FakeVpcd::accept(&listener);
    drop(vpcd);
    assert_eq!(handle.join().unwrap(), Ended::VpcdClosed);

    let handle = vpcd::spawn(
        addr,
        sim.clone(),
        VpcdOptions {
            reconnect: true,
            ..options()
        },
    )
    .unwrap();
    let mut first = FakeVpcd::accept(&listener);
    first.send(&[0x01]);
    assert_eq!(first.apdu(&h(SELECT_JPKI)), h("9000"));
    drop(first);
    // The card comes back on a new connection, unpowered, as after a pcscd restart.
    let mut second = FakeVpcd::accept(&listener);
    assert!(sim.with_card(|c| c.current_application().is_none()));
    second.send(&[0x04]);
    assert_eq!(second.recv().unwrap(), ATR.to_vec());
    handle.stop();
    assert_eq!(handle.join().unwrap(), Ended::Stopped);
}

#[test]
fn pulling_the_card_closes_the_connection_and_keeps_counters() {
    let listener = listen();
    let sim = SimCard::from_image(image());
    let handle = vpcd::spawn(listener.local_addr().unwrap(), sim.clone(), options()).unwrap();
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.send(&[0x01]);
    assert_eq!(vpcd.apdu(&h(SELECT_JPKI)), h("9000"));
    assert_eq!(vpcd.apdu(&verify(0x98, "0000")), h("63C2"));
    while !handle.is_connected() {
        std::thread::sleep(Duration::from_millis(1));
    }
    handle.pull();
    assert_eq!(vpcd.recv(), None);
    assert_eq!(handle.join().unwrap(), Ended::CardPulled);
    assert!(!sim.is_present());
    assert_eq!(
        sim.with_card(|c| c.secret_status(SecretId::JpkiAuthPin).unwrap().remaining),
        2
    );
}

#[test]
fn tag_loss_during_verify_through_vpcd_closes_without_an_answer() {
    let listener = listen();
    let sim = SimCard::from_image(image());
    sim.set_faults(Faults {
        tag_loss_on_verify: Some(1),
        latency_per_apdu: Duration::from_millis(2),
        ..Faults::none()
    });
    let handle = vpcd::spawn(listener.local_addr().unwrap(), sim.clone(), options()).unwrap();
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.send(&[0x01]);
    assert_eq!(vpcd.apdu(&h(SELECT_JPKI)), h("9000"));
    vpcd.send(&verify(0x98, "0000"));
    // vpcd's recv returns 0: pcscd turns that into an empty answer, then "card removed".
    assert_eq!(vpcd.recv(), None);
    assert_eq!(handle.join().unwrap(), Ended::CardPulled);
    assert_eq!(
        sim.with_card(|c| c.secret_status(SecretId::JpkiAuthPin).unwrap().remaining),
        2
    );
}

#[test]
fn connecting_retries_until_vpcd_listens_and_gives_up_in_time() {
    // Reserve a port, close it, and start listening only after the bridge has tried.
    let addr = listen().local_addr().unwrap();
    let sim = SimCard::from_image(image());
    let handle = vpcd::spawn(addr, sim, options()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let listener = TcpListener::bind(addr).unwrap();
    let mut vpcd = FakeVpcd::accept(&listener);
    vpcd.send(&[0x04]);
    assert_eq!(vpcd.recv().unwrap(), ATR.to_vec());
    handle.stop();
    handle.join().unwrap();

    let nobody = listen().local_addr().unwrap();
    let result = vpcd::run(
        nobody,
        &SimCard::from_image(image()),
        &VpcdOptions {
            connect_timeout: Some(Duration::from_millis(50)),
            ..options()
        },
        &vpcd::StopSignal::new(),
    );
    assert!(matches!(result, Err(VpcdError::Connect { .. })));
}

#[test]
fn an_empty_atr_is_refused() {
    let mut image = image();
    image.link.atr.clear();
    let result = vpcd::run(
        listen().local_addr().unwrap(),
        &SimCard::from_image(image),
        &options(),
        &vpcd::StopSignal::new(),
    );
    assert!(matches!(result, Err(VpcdError::EmptyAtr)));
}
