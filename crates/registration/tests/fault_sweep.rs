//! The fault sweep (see `sweep/mod.rs`): every card flow through `mynacard_card::Session`, every
//! registration channel through the sans-I/O machine and the driver, with the card pulled, reset,
//! a response byte corrupted and a response late at every APDU, and (driver) the service down,
//! a 5xx, a timeout and a dropped connection at every HTTP request. Prints its summary; fails on
//! any violation. `scripts/test.sh sweep` runs it with `--nocapture`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure is a finding

mod common;
mod sweep;

use std::time::Instant;

use sweep::{Breakage, FaultKind, Flow, Path, Rule, Sampler, Sweep, sweep_flow};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_survives_a_fault_at_every_apdu_and_every_request() {
    let started = Instant::now();
    let mut sampler = Sampler::from_env();
    let seed = sampler.seed();
    let mut sweep = Sweep::default();
    for flow in Flow::CARD {
        sweep_flow(
            &mut sweep,
            &mut sampler,
            Path::Session,
            flow,
            Breakage::None,
        )
        .await;
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
    assert_eq!(sweep.held() + sweep.known_cases(), sweep.cases());
    let stale = sweep.stale_known();
    assert!(
        stale.is_empty(),
        "known findings that no longer occur (remove them from sweep::KNOWN): {stale:#?}"
    );
}

/// The sweep catches a client that, after a fault, sends the last VERIFY again: an attempt
/// nobody asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_reports_a_client_that_resends_verify_after_a_fault() {
    let mut sampler = Sampler::from_env();
    println!("the sweep's own test: a client that re-sends VERIFY after a fault (must fail)");
    for (path, flow) in [(Path::Session, Flow::Signing), (Path::Driver, Flow::AppPin)] {
        let started = Instant::now();
        let mut sweep = Sweep::default();
        sweep_flow(
            &mut sweep,
            &mut sampler,
            path,
            flow,
            Breakage::ResendVerifyAfterFault,
        )
        .await;
        println!("{}", sweep.summary(sampler.seed(), started.elapsed()));
        let label = format!("{} {}", format!("{path:?}").to_lowercase(), flow.name());
        // The VERIFY is APDU 4 of a registration (SELECT, certificate, tries, VERIFY, ...) and
        // 3 of signing (SELECT, tries, VERIFY): a late answer to it is a fault after which the
        // broken client sends it again.
        let verify_at = if flow == Flow::Signing { 3 } else { 4 };
        let resent = sweep.violations.iter().find(|v| {
            v.flow == label
                && v.fault.kind == FaultKind::Late
                && v.fault.index == verify_at
                && v.rule == Rule::NoExtraVerify
        });
        assert!(
            resent.is_some(),
            "{label}: the re-sent VERIFY is reported: {:#?}",
            sweep.violations
        );
        assert!(sweep.held() < sweep.cases());
    }
}

/// The checks on observations made up by hand: an attempt spent with no VERIFY at the card, a
/// registration stored while the outcome says nothing happened, a failed next attempt.
#[test]
fn the_checks_report_each_broken_rule() {
    use mynacard_registration::Outcome;
    use mynacard_sim::state::SecretId;
    use sweep::{Baseline, Ended, Fault, Observation, check};

    let baseline = Baseline {
        apdus: 5,
        response_lens: vec![2, 1000, 2, 2, 258],
        http_requests: 3,
        verifies: 1,
        verify_indexes: vec![4],
        ended: Ended::Outcome(Outcome::Registered {
            registration_id: "r".into(),
            insurer_name: None,
        }),
        registrations: Some((0, 1)),
    };
    let fault = Fault {
        kind: FaultKind::Pull,
        index: 2,
        byte: None,
    };
    let held = Observation {
        ended: Ended::Outcome(Outcome::CardRemoved {
            attempt_may_have_been_counted: false,
        }),
        verifies_reached: 0,
        verifies_answered: 0,
        verify_indexes: vec![],
        tries_before: vec![(SecretId::JpkiAuthPin, 3)],
        tries_after: vec![(SecretId::JpkiAuthPin, 3)],
        registrations: Some((0, 0)),
        retry: baseline.ended.clone(),
    };
    assert_eq!(check("f", Flow::AppPin, fault, &baseline, &held), vec![]);

    let broken = Observation {
        tries_after: vec![(SecretId::JpkiAuthPin, 2)],
        registrations: Some((0, 1)),
        retry: Ended::Panicked("boom".into()),
        ..held.clone()
    };
    let rules: Vec<Rule> = check("f", Flow::AppPin, fault, &baseline, &broken)
        .into_iter()
        .map(|v| {
            assert_eq!((v.flow.as_str(), v.fault), ("f", fault));
            v.rule
        })
        .collect();
    assert_eq!(
        rules,
        vec![
            Rule::NoAttemptWithoutVerify,
            Rule::AttemptReported,
            Rule::NoPartialRegistration,
            Rule::RetrySucceeds
        ]
    );

    let panicked = Observation {
        ended: Ended::Panicked("index out of bounds".into()),
        ..held
    };
    let rules: Vec<Rule> = check("f", Flow::AppPin, fault, &baseline, &panicked)
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(rules, vec![Rule::Ends]);
}
