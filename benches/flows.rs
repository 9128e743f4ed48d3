//! What a flow costs at the card and in the verifier: APDUs, bytes and time of the card side of
//! a PIN registration on an extended-length link and on a short-only link, and the time of a
//! certificate chain verification. Everything runs through the facade.
//!
//! The card side is the registration machine driving the simulated card's engine directly; the
//! service's three answers (consent, challenge, result) are the performance report's
//! `ServiceAnswers`, built once from the protocol's own message types, so the figures hold the
//! card and the machine only, not HTTP or a database.
//!
//! `cargo bench --bench flows` prints the counts, then criterion's timings.

// A benchmark whose set-up fails has nothing to measure: stopping loudly is right.
#![allow(clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mynacard::cert::x509_cert::der::DateTime;
use mynacard::cert::{JpkiCertificate, TrustPolicy, verify_chain};
use mynacard::registration::machine::Action;
use mynacard::registration::{FlowConfig, Machine, Outcome, TerminalKind};
use mynacard::sim::engine::Card;
use mynacard::sim::image::CardImage;
use mynacard::sim::pki::TestPki;
use mynacard_perf::host::ServiceAnswers;

/// APDUs and bytes of one flow.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    apdus: u32,
    sent: u64,
    received: u64,
}

/// The card side of a PIN registration: the machine against the engine, to the end.
fn pin_registration(card: &mut Card, read_chunk: u32, service: &ServiceAnswers) -> Counts {
    let config = FlowConfig::new("app-0001", TerminalKind::App).with_read_chunk(read_chunk);
    let mut machine = Machine::register_with_pin(config);
    let mut counts = Counts::default();
    let mut requests = 0;
    loop {
        match machine.next_action() {
            Action::SendCard(command) => {
                let response = card.process(command.bytes.as_slice());
                counts.apdus += 1;
                counts.sent += command.bytes.len() as u64;
                counts.received += response.len() as u64;
                machine
                    .feed_card_response(&response)
                    .expect("card response");
            }
            Action::ShowConsent(_) => machine.feed_consent(true).expect("consent"),
            Action::AskPin { .. } => machine
                .feed_pin(mynacard::card::Pin::new("1234").expect("a PIN"))
                .expect("PIN"),
            Action::SendHttp(_) => {
                machine
                    .feed_http_response(service.answer(requests))
                    .expect("answer");
                requests += 1;
            }
            Action::Done(Outcome::Registered { .. }) => return counts,
            other => panic!("the flow did not register: {other:?}"),
        }
    }
}

/// A link: the profile and the READ BINARY chunk a driver would choose for it.
struct Link {
    name: &'static str,
    image: CardImage,
    read_chunk: u32,
}

fn links() -> Vec<Link> {
    [("extended", "adult"), ("short", "no-extended")]
        .into_iter()
        .map(|(name, profile)| {
            let image = CardImage::from_profile_name(profile).expect("built-in profile");
            let read_chunk = if image.link.extended_length {
                u32::try_from(image.link.max_response_data.min(65_536)).expect("chunk")
            } else {
                256
            };
            Link {
                name,
                image,
                read_chunk,
            }
        })
        .collect()
}

fn flows(c: &mut Criterion) {
    let service = ServiceAnswers::new().expect("service answers");
    let links = links();

    println!(
        "\n{:<40} {:<9} {:>6} {:>8} {:>9}",
        "flow", "link", "APDUs", "sent B", "recv B"
    );
    for link in &links {
        let mut card = Card::new(link.image.clone());
        let n = pin_registration(&mut card, link.read_chunk, &service);
        println!(
            "{:<40} {:<9} {:>6} {:>8} {:>9}",
            "PIN registration, card side", link.name, n.apdus, n.sent, n.received
        );
    }

    let mut group = c.benchmark_group("PIN registration, card side");
    for link in &links {
        group.bench_function(link.name, |b| {
            b.iter_batched(
                || Card::new(link.image.clone()),
                |mut card| pin_registration(&mut card, link.read_chunk, &service),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // Chain verification of the card's auth certificate: the J-LIS roots plus the simulator's
    // test roots as anchors, one RSA-2048 signature check against the matching root.
    let pki = TestPki::shared().expect("test PKI");
    let roots = pki
        .root_ders()
        .map(|der| JpkiCertificate::from_der(der).expect("test root"));
    let policy = TrustPolicy::production()
        .allow_test_hierarchy(roots)
        .expect("test roots");
    let image = &links[0].image;
    let cert = JpkiCertificate::from_der(&image.auth.cert_der).expect("auth certificate");
    // The built-in profiles' reference date, when every certificate of theirs is valid.
    let at = DateTime::new(2026, 6, 1, 0, 0, 0)
        .expect("date")
        .to_system_time();
    let chain = verify_chain(&cert, &policy, at).expect("chain verifies");
    println!(
        "{:<40} {:<9} {:>6} {:>8} {:>9}",
        "certificate chain verification",
        format!("{} B", image.auth.cert_der.len()),
        "-",
        "-",
        "-"
    );
    println!(
        "  anchors: {}, matched root: {}\n",
        policy.anchors().len(),
        chain.root.label
    );
    c.bench_function("verify_chain (auth certificate)", |b| {
        b.iter(|| verify_chain(black_box(&cert), &policy, at).expect("chain verifies"))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = flows
}
criterion_main!(benches);
