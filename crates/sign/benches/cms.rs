//! What a CMS signature costs on the host: building SignedData around one RSA-2048 signature
//! (a software key standing in for the card, whose own time is the card's), and verifying it,
//! for a small and a 1 MiB document.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mynacard_cert::JpkiCertificate;
use mynacard_sign::{
    SoftwareSigner,
    cms::{CmsOptions, sign_cms, verify_cms},
};
use mynacard_sim::image::CardImage;

fn benches(c: &mut Criterion) {
    let image = CardImage::from_profile_name("adult").expect("adult profile");
    let sign = image.sign.expect("signing credential");
    let cert = JpkiCertificate::from_der(&sign.cert_der).expect("certificate");
    let signer = SoftwareSigner::new(sign.key, cert).expect("key matches");
    let options = CmsOptions {
        detached: true,
        ..CmsOptions::default()
    };
    let mut group = c.benchmark_group("cms");
    for size in [1024usize, 1 << 20] {
        let content = vec![0xA5u8; size];
        let message = pollster::block_on(sign_cms(&content, &signer, &options)).expect("sign");
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("sign_detached", size), &content, |b, c| {
            b.iter(|| pollster::block_on(sign_cms(black_box(c), &signer, &options)))
        });
        group.bench_with_input(
            BenchmarkId::new("verify_detached", size),
            &content,
            |b, c| b.iter(|| verify_cms(black_box(&message), Some(c), &[])),
        );
    }
    group.finish();
}

criterion_group!(cms, benches);
criterion_main!(cms);
