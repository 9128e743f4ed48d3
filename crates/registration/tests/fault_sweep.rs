//! The fault sweep (see `sweep/mod.rs`): every card flow through `mynacard_card::Session`, every
//! registration channel through the sans-I/O machine and the driver, with the card pulled, reset,
//! a response byte corrupted and a response late at every APDU, and (driver) the service down,
//! a 5xx, a timeout and a dropped connection at every HTTP request. Prints its summary; fails on
//! any violation. `scripts/test.sh sweep` runs it with `--nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod common;
mod sweep;

use std::time::Instant;

use sweep::{Breakage, FaultKind, Flow, Path, Sampler, Sweep, sweep_flow};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_survives_a_fault_at_every_apdu_and_every_request() {
    let started = Instant::now();
    let mut sampler = Sampler::from_env();
    let seed = sampler.seed();
    let mut sweep = Sweep::default();
    for flow in Flow::CARD {
        sweep_flow(&mut sweep, &mut sampler, Path::Session, flow, Breakage::None).await;
    }
    for flow in Flow::CHANNELS {
        for path in [Path::Machine, Path::Driver] {
            sweep_flow(&mut sweep, &mut sampler, path, flow, Breakage::None).await;
        }
    }
    let summary = sweep.summary(seed, started.elapsed());
    println!("{summary}");
    // Every flow, every fault kind swept; HTTP faults on every driver flow.
    for flow in Flow::CHANNELS {
        for kind in FaultKind::HTTP {
            let row = &sweep.rows[&(Path::Driver, flow, kind)];
            assert!(row.cases >= 1 && row.indexes >= 1, "{flow:?} {kind:?}");
        }
    }
    assert!(
        sweep.violations.is_empty(),
        "{} violations (replay with {}={seed}):\n{summary}",
        sweep.violations.len(),
        sweep::SEED_VAR
    );
    assert_eq!(sweep.held(), sweep.cases());
}

/// The sweep catches a client that, after a fault, sends the last VERIFY again: an attempt
/// nobody asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_reports_a_client_that_resends_verify_after_a_fault() {
    let mut sampler = Sampler::from_env();
    for (path, flow) in [(Path::Session, Flow::Signing), (Path::Driver, Flow::AppPin)] {
        let mut sweep = Sweep::default();
        sweep_flow(
            &mut sweep,
            &mut sampler,
            path,
            flow,
            Breakage::ResendVerifyAfterFault,
        )
        .await;
        println!("{}", sweep.summary(sampler.seed(), std::time::Duration::ZERO));
        let label = format!("{} {}", format!("{path:?}").to_lowercase(), flow.name());
        // The VERIFY is APDU 4 of a PIN flow (SELECT, certificate, tries, VERIFY, ...) or 2
        // of signing (SELECT, VERIFY): a late answer to it, or a reset before the signature,
        // is a fault after which the broken client sends it again.
        let verify_at = if flow == Flow::Signing { 3 } else { 4 };
        let resent = sweep.violations.iter().find(|v| {
            v.flow == label
                && v.fault.kind == FaultKind::Late
                && v.fault.index == verify_at
                && v.what.contains("VERIFYs reached the card")
        });
        assert!(
            resent.is_some(),
            "{label}: the re-sent VERIFY is reported: {:#?}",
            sweep.violations
        );
        assert!(sweep.held() < sweep.cases());
    }
}
