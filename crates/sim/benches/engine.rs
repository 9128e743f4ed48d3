//! APDUs per second through the engine and the in-process channel.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mynacard_sim::engine::Card;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use mynacard_transport::blocking::BlockingChannel;

const SELECT_JPKI: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01,
];
const SELECT_AUTH_CERT: [u8; 7] = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A];
const READ_256: [u8; 5] = [0x00, 0xB0, 0x00, 0x00, 0x00];
const PIN_STATUS: [u8; 4] = [0x00, 0x20, 0x00, 0x98];
const READ_CERT_BY_SFI: [u8; 7] = [0x00, 0xB0, 0x8A, 0x00, 0x00, 0x00, 0x00];

fn image() -> CardImage {
    CardImage::from_profile_name("adult").expect("built-in profile")
}

fn sign_apdu() -> Vec<u8> {
    let mut apdu = vec![0x80, 0x2A, 0x00, 0x97, 0x33];
    apdu.extend_from_slice(&mynacard_cert::digest_info::sha256_digest_info(&[0xAB; 32]));
    apdu.push(0x00);
    apdu
}

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    let mut card = Card::new(image());
    group.throughput(Throughput::Elements(4));
    group.bench_function("select+select-ef+read256+pin-status", |b| {
        b.iter(|| {
            black_box(card.process(&SELECT_JPKI));
            black_box(card.process(&SELECT_AUTH_CERT));
            black_box(card.process(&READ_256));
            black_box(card.process(&PIN_STATUS));
        });
    });
    group.throughput(Throughput::Elements(1));
    card.process(&SELECT_JPKI);
    group.bench_function("whole-auth-cert-by-sfi", |b| {
        b.iter(|| black_box(card.process(&READ_CERT_BY_SFI)));
    });
    let sign = sign_apdu();
    card.process(&[0x00, 0x20, 0x00, 0x98, 0x04, b'1', b'2', b'3', b'4']);
    group.bench_function("rsa2048-sign", |b| {
        b.iter(|| black_box(card.process(&sign)));
    });
    group.finish();
}

fn channel(c: &mut Criterion) {
    let mut group = c.benchmark_group("inprocess-channel");
    let sim = SimCard::from_image(image());
    sim.log().keeping_entries(false);
    let mut channel = BlockingChannel::new(sim.channel());
    channel.transmit(&SELECT_JPKI).unwrap();
    channel.transmit(&SELECT_AUTH_CERT).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("read256", |b| {
        b.iter(|| black_box(channel.transmit(&READ_256).unwrap()));
    });
    group.finish();
}

criterion_group!(benches, engine, channel);
criterion_main!(benches);
