//! A fake phone host whose "radio" is the simulated card engine, in-process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_card::{AttemptPolicy, HashAlgorithm, Pin, PinStatus, Session};
use mynacard_nfc::{NfcError, NfcTag, NfcTransport, TagInfo};
use mynacard_sim::fault::Faults;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_transport::blocking::block_on;
use mynacard_transport::{CardChannel, Transport, TransportError};

/// What an Android host does: IsoDep limits, timeout, TagLostException.
struct PhoneHost {
    link: Mutex<SimChannel>,
    info: TagInfo,
    timeout: Mutex<Option<Duration>>,
}

#[async_trait]
impl NfcTag for PhoneHost {
    fn info(&self) -> TagInfo {
        self.info.clone()
    }
    fn set_timeout(&self, timeout: Duration) -> Result<(), NfcError> {
        *self.timeout.lock().unwrap() = Some(timeout);
        Ok(())
    }
    async fn transceive(&self, command: &[u8]) -> Result<Vec<u8>, NfcError> {
        let mut link = self.link.lock().unwrap();
        match block_on(link.transmit(command)) {
            Ok(r) => Ok(r),
            Err(TransportError::CardRemoved) => Err(NfcError::TagLost),
            Err(e) => Err(NfcError::Host(Box::new(e))),
        }
    }
}

fn phone(card: &SimCard, info: TagInfo) -> Arc<PhoneHost> {
    Arc::new(PhoneHost {
        link: Mutex::new(card.channel()),
        info,
        timeout: Mutex::new(None),
    })
}

fn card() -> SimCard {
    SimCard::from_image(CardImage::from_profile_name("adult").unwrap())
}

async fn read_and_sign<C: CardChannel>(
    channel: C,
    pin: &str,
) -> mynacard_card::Result<(Vec<u8>, Vec<u8>)> {
    let mut session = Session::new(channel);
    let mut ap = session.jpki().await?;
    let cert = ap
        .read_certificate(PublicCertificate::Auth)
        .await?
        .into_der();
    let pin = Pin::new(pin).expect("pin");
    let mut verified = ap.verify_auth(&pin, AttemptPolicy::KeepLastAttempt).await?;
    let signature = verified.sign(HashAlgorithm::Sha256, b"nfc").await?;
    Ok((cert, signature))
}

#[test]
fn short_only_phone_reads_and_signs_like_the_card_itself() {
    let expected = block_on(read_and_sign(card().channel(), "1234")).unwrap();
    let card = card();
    let host = phone(&card, TagInfo::new(261, false));
    let transport = NfcTransport::new(host.clone());
    let channel = block_on(transport.open()).unwrap();
    assert!(!channel.capabilities().extended_length);
    let got = block_on(read_and_sign(channel, "1234")).unwrap();
    assert_eq!(got, expected);
    assert_eq!(*host.timeout.lock().unwrap(), Some(Duration::from_secs(20)));
    // Every command the phone was given fits its transceive length.
    assert!(card.log().entries().iter().all(|e| e.command.len() <= 261));
}

#[test]
fn tag_lost_during_verify_is_card_removed_and_never_retried() {
    let card = card();
    card.set_faults(Faults {
        tag_loss_on_verify: Some(1),
        ..Faults::none()
    });
    let transport = NfcTransport::new(phone(&card, TagInfo::new(65_279, true)));
    let channel = block_on(transport.open()).unwrap();
    // A wrong PIN, so that the counted attempt shows in the retry counter.
    let err = block_on(read_and_sign(channel, "9999")).unwrap_err();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut removed = false;
    while let Some(e) = source {
        removed |= matches!(
            e.downcast_ref::<TransportError>(),
            Some(TransportError::CardRemoved)
        );
        source = e.source();
    }
    assert!(removed, "expected CardRemoved inside {err:?}");
    assert!(transport.is_lost());
    assert!(matches!(
        block_on(transport.open()),
        Err(TransportError::NoCard)
    ));
    // The one VERIFY that reached the card counted (the fault lets the card process it); the
    // library sent no second one.
    let status = block_on(async {
        card.insert();
        let mut session = Session::new(card.channel());
        let mut ap = session.jpki().await.unwrap();
        ap.pin_status(JpkiKey::Auth).await.unwrap()
    });
    assert_eq!(status, PinStatus::Remaining(2));
}
