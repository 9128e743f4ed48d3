//! APDUs and bytes per card operation against the simulated card, with and without extended
//! length, followed by criterion timings of the same operations (in-process, so the timings
//! measure this crate and the simulated card, not a reader).

// A benchmark whose operation fails has nothing to measure: stopping loudly is right.
#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use mynacard_card::jpki::{JpkiKey, PublicCertificate};
use mynacard_card::text::TextKey;
use mynacard_card::{ApduStats, AttemptPolicy, HashAlgorithm, Pin, Session};
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use pollster::block_on;

type Op = fn(&mut Session<SimChannel>);

fn read_auth_cert(session: &mut Session<SimChannel>) {
    block_on(async {
        let mut ap = session.jpki().await.expect("select");
        ap.read_certificate(PublicCertificate::Auth)
            .await
            .expect("auth certificate");
    });
}

fn read_both_ca_certs(session: &mut Session<SimChannel>) {
    block_on(async {
        let mut ap = session.jpki().await.expect("select");
        ap.read_certificate(PublicCertificate::AuthCa)
            .await
            .expect("auth CA");
        ap.read_certificate(PublicCertificate::SignCa)
            .await
            .expect("sign CA");
    });
}

fn pin_status_all(session: &mut Session<SimChannel>) {
    block_on(async {
        let mut ap = session.jpki().await.expect("select");
        ap.pin_status(JpkiKey::Auth).await.expect("auth");
        ap.pin_status(JpkiKey::Sign).await.expect("sign");
        let mut text = session.text().await.expect("select text");
        text.pin_status(TextKey::Pin).await.expect("text");
    });
}

fn pin_registration(session: &mut Session<SimChannel>) {
    block_on(async {
        let mut ap = session.jpki().await.expect("select");
        ap.read_certificate(PublicCertificate::Auth)
            .await
            .expect("auth certificate");
        let pin = Pin::new("1234").expect("pin");
        let mut v = ap
            .verify_auth(&pin, AttemptPolicy::default())
            .await
            .expect("verify");
        v.sign(HashAlgorithm::Sha256, b"registration challenge")
            .await
            .expect("sign");
    });
}

const OPS: [(&str, Op); 4] = [
    ("read auth certificate", read_auth_cert),
    ("read both CA certificates", read_both_ca_certs),
    ("PIN status (auth, sign, text)", pin_status_all),
    ("PIN registration card side", pin_registration),
];

/// One fresh card and session per measurement, so cached selections do not flatter the counts.
fn measure(profile: &str, op: Op) -> ApduStats {
    let image = CardImage::from_profile_name(profile).expect("built-in profile");
    let mut session = Session::new(SimCard::from_image(image).channel());
    op(&mut session);
    session.stats()
}

fn counts(c: &mut Criterion) {
    println!(
        "\n{:<32} {:<12} {:>6} {:>10} {:>10}",
        "operation", "link", "APDUs", "sent", "received"
    );
    for (name, op) in OPS {
        for (profile, link) in [("adult", "extended"), ("no-extended", "short")] {
            let s = measure(profile, op);
            println!(
                "{name:<32} {link:<12} {:>6} {:>10} {:>10}",
                s.commands, s.bytes_sent, s.bytes_received
            );
        }
    }
    println!();
    let mut group = c.benchmark_group("card operations (simulated card)");
    group.sample_size(10);
    for (name, op) in OPS {
        for profile in ["adult", "no-extended"] {
            let image = CardImage::from_profile_name(profile).expect("built-in profile");
            group.bench_function(format!("{name} / {profile}"), |b| {
                b.iter(|| {
                    let mut session = Session::new(SimCard::from_image(image.clone()).channel());
                    op(&mut session);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, counts);
criterion_main!(benches);
