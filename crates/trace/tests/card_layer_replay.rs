//! A card-layer session recorded against the simulated card replays against the card layer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use std::io::Write;
use std::sync::{Arc, Mutex};

use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_card::{AttemptPolicy, HashAlgorithm, Pin, PinStatus, Session};
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_trace::{Recorder, Redaction, ReplayChannel, ReplayError, Trace};
use mynacard_transport::CardChannel;
use mynacard_transport::blocking::block_on;

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

/// Reads the auth certificate, the PIN status, verifies the PIN and signs.
async fn flow<C: CardChannel>(
    session: &mut Session<C>,
    pin: &str,
) -> mynacard_card::Result<(Vec<u8>, PinStatus, Vec<u8>)> {
    let mut ap = session.jpki().await?;
    let cert = ap
        .read_certificate(PublicCertificate::Auth)
        .await?
        .into_der();
    let status = ap.pin_status(JpkiKey::Auth).await?;
    let pin = Pin::new(pin).expect("pin format");
    let mut verified = ap.verify_auth(&pin, AttemptPolicy::KeepLastAttempt).await?;
    let signature = verified.sign(HashAlgorithm::Sha256, b"replayed").await?;
    Ok((cert, status, signature))
}

#[test]
fn a_redacted_recording_replays_through_the_card_layer() {
    let card = SimCard::from_image(CardImage::from_profile_name("adult").unwrap());
    let buffer = Buffer::default();
    let recorder = Recorder::new(buffer.clone(), Redaction::PersonalData, None).unwrap();
    let mut session = Session::new(recorder.wrap_channel("sim", card.channel()));
    let recorded = block_on(flow(&mut session, "1234")).unwrap();
    recorder.finish().unwrap();
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(!text.contains("31323334"), "the PIN is not in the trace");

    let trace = Trace::read(text.as_bytes()).unwrap();
    // The card layer, replayed, gets the same certificate, status and signature; the PIN it sends
    // need not be the recorded one, which the trace does not hold.
    let mut session = Session::new(ReplayChannel::first(&trace).unwrap());
    let replayed = block_on(flow(&mut session, "5678")).unwrap();
    assert_eq!(replayed, recorded);
    session.into_channel().finish().unwrap();
}

#[test]
fn a_card_layer_that_sends_something_else_gets_a_typed_mismatch() {
    let card = SimCard::from_image(CardImage::from_profile_name("adult").unwrap());
    let buffer = Buffer::default();
    let recorder = Recorder::new(buffer.clone(), Redaction::PersonalData, None).unwrap();
    block_on(async {
        let mut session = Session::new(recorder.wrap_channel("sim", card.channel()));
        let mut ap = session.jpki().await.unwrap();
        ap.read_certificate(PublicCertificate::AuthCa)
            .await
            .unwrap();
    });
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let trace = Trace::read(text.as_bytes()).unwrap();
    let replay = ReplayChannel::first(&trace).unwrap();
    let err = block_on(async {
        let mut session = Session::new(replay);
        let mut ap = session.jpki().await?;
        ap.read_certificate(PublicCertificate::Auth).await
    })
    .unwrap_err();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut found = false;
    while let Some(e) = source {
        if let Some(ReplayError::CommandMismatch { .. }) = e.downcast_ref::<ReplayError>() {
            found = true;
        }
        source = e.source();
    }
    assert!(found, "expected a command mismatch in {err:?}");
}
