//! Round trip through pcscd + vpcd + the simulated card, against the same card in-process.
//!
//! Needs a running pcscd with the vpcd reader and `Virtual PCD 00 00` free (see README.md):
//!
//! ```sh
//! cargo bench -p mynacard-pcsc --features pcscd-tests
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is the report

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mynacard_apdu::LengthEncoding;
use mynacard_apdu::commands::select_df;
use mynacard_card::Session;
use mynacard_card::catalogue::aid;
use mynacard_card::jpki::PublicCertificate;
use mynacard_pcsc::{CardPresence, CardWait, PcscTransport, list_readers};
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_sim::vpcd::{self, VpcdOptions};
use mynacard_transport::CardChannel;
use mynacard_transport::blocking::block_on;

const READER: &str = "Virtual PCD 00 00";

fn read_auth_certificate<C: CardChannel>(channel: C) -> (C, usize) {
    block_on(async {
        let mut session = Session::new(channel);
        let len = {
            let mut ap = session.jpki().await.expect("JPKI AP");
            ap.read_certificate(PublicCertificate::Auth)
                .await
                .expect("certificate")
                .der()
                .len()
        };
        (session.into_channel(), len)
    })
}

fn bench(c: &mut Criterion) {
    let readers = list_readers().expect("pcscd must be running (see crates/pcsc/README.md)");
    let reader = readers
        .iter()
        .find(|r| r.name == READER)
        .expect("the vpcd reader must be configured");
    assert_eq!(reader.card, CardPresence::Empty, "{READER} must be free");

    let image = CardImage::from_profile_name("adult").expect("profile");
    let card = SimCard::from_image(image.clone());
    let bridge = vpcd::spawn(
        ([127, 0, 0, 1], vpcd::DEFAULT_PORT).into(),
        card,
        VpcdOptions::default(),
    )
    .expect("bridge");
    block_on(CardWait::arrival(
        Some(READER),
        Some(Duration::from_secs(10)),
    ))
    .expect("card");

    let select = select_df(&aid::JPKI)
        .to_bytes(LengthEncoding::Short)
        .expect("encode");
    let mut pcsc = block_on(PcscTransport::new(READER).open_channel()).expect("open");
    let mut local = SimCard::from_image(image).channel();

    let mut group = c.benchmark_group("round_trip");
    group.bench_function("select_jpki_through_pcscd", |b| {
        b.iter(|| block_on(pcsc.transmit(select.as_slice())).expect("select"));
    });
    group.bench_function("select_jpki_in_process", |b| {
        b.iter(|| block_on(local.transmit(select.as_slice())).expect("select"));
    });
    group.finish();

    let mut group = c.benchmark_group("read_auth_certificate");
    let mut slot = Some(pcsc);
    group.bench_function("through_pcscd", |b| {
        b.iter(|| {
            let channel = slot.take().expect("channel");
            let (channel, len) = read_auth_certificate(channel);
            slot = Some(channel);
            len
        });
    });
    let mut slot_local = Some(local);
    group.bench_function("in_process", |b| {
        b.iter(|| {
            let channel = slot_local.take().expect("channel");
            let (channel, len) = read_auth_certificate(channel);
            slot_local = Some(channel);
            len
        });
    });
    group.finish();

    if let Some(channel) = slot {
        let _ = block_on(channel.close());
    }
    bridge.stop();
    let _ = bridge.join();
}

criterion_group!(benches, bench);
criterion_main!(benches);
