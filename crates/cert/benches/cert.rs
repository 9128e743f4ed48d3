//! What certificate work costs: parsing (with classification and personal data), chain
//! verification by signature against the embedded roots plus test roots, and CRL lookup.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mynacard_cert::{
    Crl, CrlSource, JpkiCertificate, PersonalData, RevocationSource, TrustPolicy, verify,
    verify_chain,
};
use mynacard_sim::{
    image::CardImage,
    pki::{CaKind, TestPki},
    profile::Catalogue,
};

fn benches(c: &mut Criterion) {
    let pki = TestPki::shared().expect("test PKI");
    let image = CardImage::from_profile_name("adult").expect("adult profile");
    let sign_der = image.sign.expect("signing certificate").cert_der;
    let roots = pki
        .root_ders()
        .map(|d| JpkiCertificate::from_der(d).expect("root"));
    let policy = TrustPolicy::production()
        .allow_test_hierarchy(roots)
        .expect("test roots");
    let cert = JpkiCertificate::from_der(&sign_der).expect("certificate");
    let at = der::DateTime::new(2026, 6, 1, 0, 0, 0)
        .expect("date")
        .to_system_time();
    let crl = Catalogue::builtin()
        .expect("catalogue")
        .crl_der(
            CaKind::Sign,
            pki,
            der::DateTime::new(2026, 6, 1, 0, 0, 0).expect("date"),
        )
        .expect("crl");
    let source = CrlSource::new([Crl::from_der(&crl).expect("crl parses")]);
    let san = cert
        .x509()
        .tbs_certificate()
        .extensions()
        .into_iter()
        .flatten()
        .find(|e| e.extn_id.to_string() == "2.5.29.17")
        .expect("SAN")
        .extn_value
        .as_bytes()
        .to_vec();

    c.bench_function("parse signing certificate", |b| {
        b.iter(|| JpkiCertificate::from_der(black_box(&sign_der)))
    });
    c.bench_function("decode personal data (SAN)", |b| {
        b.iter(|| PersonalData::from_san_der(black_box(&san)))
    });
    c.bench_function("verify_chain (8 anchors, RSA-2048)", |b| {
        b.iter(|| verify_chain(black_box(&cert), &policy, at))
    });
    c.bench_function("verify with CRL", |b| {
        b.iter(|| {
            verify(
                black_box(&cert),
                &policy,
                at,
                &source as &dyn RevocationSource,
            )
        })
    });
    c.bench_function("TrustPolicy::production", |b| {
        b.iter(TrustPolicy::production)
    });
}

criterion_group!(cert, benches);
criterion_main!(cert);
