//! Store behaviour that must hold on every backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::sync::Arc;

use mynacard_registry::store::{
    Applied, CardKey, ChallengeRecord, Effect, PendingRecord, RegistrationRecord, Settled, Store,
};

fn challenge(session: &str, now: i64) -> ChallengeRecord {
    ChallengeRecord {
        session_id: session.to_owned(),
        nonce: format!("nonce-{session}"),
        terminal_id: "atm-0001".to_owned(),
        purpose: "register_insurance_use".to_owned(),
        methods: "pin_signature".to_owned(),
        consent_version: "1.0".to_owned(),
        consent_sha256: "c".repeat(43),
        issued_at: now,
        expires_at: now + 120_000,
        used_at: None,
        proof_sha256: None,
        outcome: None,
        bound_terminal_id: None,
    }
}

/// A session's binding to a terminal (mutual TLS) is stored with its challenge and read back;
/// an unbound session reads back unbound.
pub(crate) async fn bound_sessions_keep_their_terminal(url: &str) {
    let store = Store::connect(url, 2).await.expect("connect");
    let mut bound = challenge("bound", 1_000_000);
    bound.bound_terminal_id = Some("atm-0001".to_owned());
    store.insert_challenge(&bound).await.expect("bound");
    store
        .insert_challenge(&challenge("free", 1_000_000))
        .await
        .expect("unbound");
    let read = store
        .challenge("bound")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(read, bound);
    let read = store.challenge("free").await.expect("read").expect("found");
    assert_eq!(read.bound_terminal_id, None);
    store.close().await;
}

fn card(serial: &str) -> CardKey {
    CardKey {
        root_id: "test-root".to_owned(),
        serial: serial.to_owned(),
    }
}

fn registration(id: &str, serial: &str, now: i64) -> RegistrationRecord {
    RegistrationRecord {
        registration_id: id.to_owned(),
        card: card(serial),
        cert_sha256: format!("sha-{serial}"),
        linkage_code: "LNK-1".to_owned(),
        terminal_id: "atm-0001".to_owned(),
        method: "pin_signature".to_owned(),
        consent_version: "1.0".to_owned(),
        registered_at: now,
        relinked_at: None,
    }
}

fn label(applied: &Applied) -> String {
    match applied {
        Applied::Nothing => "nothing".into(),
        Applied::Registered(r) => format!("registered:{}", r.registration_id),
        Applied::AlreadyRegistered(r) => format!("already:{}", r.registration_id),
        Applied::Relinked(r) => format!("relinked:{}", r.registration_id),
        Applied::Found {
            registration,
            relinked,
        } => format!("found:{}:{relinked}", registration.registration_id),
        Applied::Lapsed(r) => format!("lapsed:{}", r.registration_id),
        Applied::Deregistered(r) => format!("deregistered:{}", r.registration_id),
        Applied::NotRegistered => "not_registered".into(),
        Applied::Pending => "pending".into(),
    }
}

async fn register(
    store: &Store,
    session: &str,
    reg_id: &str,
    serial: &str,
    relink: Vec<CardKey>,
) -> Settled {
    let now = 1_000_000;
    store
        .settle(
            session,
            &format!("proof-{session}"),
            now,
            Effect::Register {
                registration: registration(reg_id, serial, now),
                relink_from: relink,
                linked: Vec::new(),
            },
            label,
        )
        .await
        .expect("settle")
}

/// Sixteen sessions register the same card at once: one row, one `registered`, fifteen
/// `already_registered` naming the same registration.
pub(crate) async fn concurrent_registrations_of_one_card_end_as_one(url: &str) {
    let store = Arc::new(Store::connect(url, 8).await.expect("connect"));
    for i in 0..16 {
        store
            .insert_challenge(&challenge(&format!("s{i}"), 1_000_000))
            .await
            .expect("challenge");
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            register(
                &store,
                &format!("s{i}"),
                &format!("reg-{i}"),
                "0a01",
                Vec::new(),
            )
            .await
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Settled::Fresh { outcome, .. } => outcomes.push(outcome),
            Settled::Earlier(_) => panic!("each session was used once"),
        }
    }
    let registered: Vec<_> = outcomes
        .iter()
        .filter(|o| o.starts_with("registered:"))
        .collect();
    assert_eq!(registered.len(), 1, "{outcomes:?}");
    let id = registered[0].trim_start_matches("registered:").to_owned();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == format!("already:{id}"))
            .count(),
        15,
        "{outcomes:?}"
    );
    assert_eq!(store.registration_count().await.expect("count"), 1);
    store.close().await;
}

/// Two submissions to one session at once: one applies, the other finds it used.
pub(crate) async fn one_session_takes_one_proof(url: &str) {
    let store = Arc::new(Store::connect(url, 8).await.expect("connect"));
    store
        .insert_challenge(&challenge("only", 1_000_000))
        .await
        .expect("challenge");
    let a = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { register(&store, "only", "reg-a", "0b01", Vec::new()).await })
    };
    let b = {
        let store = Arc::clone(&store);
        tokio::spawn(async move { register(&store, "only", "reg-b", "0b02", Vec::new()).await })
    };
    let (a, b) = (a.await.expect("a"), b.await.expect("b"));
    let fresh = [&a, &b]
        .iter()
        .filter(|s| matches!(s, Settled::Fresh { .. }))
        .count();
    assert_eq!(fresh, 1, "{a:?} {b:?}");
    let earlier = [&a, &b]
        .into_iter()
        .find_map(|s| match s {
            Settled::Earlier(c) => Some(c.clone()),
            Settled::Fresh { .. } => None,
        })
        .expect("one earlier");
    assert!(earlier.used_at.is_some());
    assert!(earlier.outcome.is_some());
    assert_eq!(store.registration_count().await.expect("count"), 1);
    store.close().await;
}

/// A reissued card (new serial) relinks the earlier registration; the id stays.
pub(crate) async fn relink_moves_the_registration(url: &str) {
    let store = Store::connect(url, 4).await.expect("connect");
    store
        .insert_challenge(&challenge("r1", 1_000_000))
        .await
        .expect("challenge");
    store
        .insert_challenge(&challenge("r2", 1_000_000))
        .await
        .expect("challenge");
    register(&store, "r1", "reg-old", "0c01", Vec::new()).await;
    let settled = store
        .settle(
            "r2",
            "proof-r2",
            2_000_000,
            Effect::Eligibility {
                card: card("0c02"),
                cert_sha256: "sha-new".into(),
                relink_from: vec![card("0c01")],
                linked: Vec::new(),
                lapse: false,
            },
            label,
        )
        .await
        .expect("settle");
    match settled {
        Settled::Fresh { outcome, .. } => assert_eq!(outcome, "found:reg-old:true"),
        other => panic!("{other:?}"),
    }
    assert!(
        store
            .registration(&card("0c01"))
            .await
            .expect("old")
            .is_none()
    );
    let moved = store
        .registration(&card("0c02"))
        .await
        .expect("new")
        .expect("moved");
    assert_eq!(moved.registration_id, "reg-old");
    assert_eq!(moved.cert_sha256, "sha-new");
    assert_eq!(moved.relinked_at, Some(2_000_000));
    assert_eq!(store.registration_count().await.expect("count"), 1);
    store.close().await;
}

/// After the grace period the link is cancelled; deregistration removes it; both only once.
pub(crate) async fn lapse_and_deregistration_remove_the_row(url: &str) {
    let store = Store::connect(url, 4).await.expect("connect");
    for s in ["l1", "l2", "l3", "l4"] {
        store
            .insert_challenge(&challenge(s, 1_000_000))
            .await
            .expect("challenge");
    }
    register(&store, "l1", "reg-l", "0d01", Vec::new()).await;
    let lapse = |session: &'static str| {
        let store = store.clone();
        async move {
            store
                .settle(
                    session,
                    "p",
                    3_000_000,
                    Effect::Eligibility {
                        card: card("0d01"),
                        cert_sha256: "sha-0d01".into(),
                        relink_from: Vec::new(),
                        linked: Vec::new(),
                        lapse: true,
                    },
                    label,
                )
                .await
                .expect("settle")
        }
    };
    match lapse("l2").await {
        Settled::Fresh { outcome, .. } => assert_eq!(outcome, "lapsed:reg-l"),
        other => panic!("{other:?}"),
    }
    match lapse("l3").await {
        Settled::Fresh { outcome, .. } => assert_eq!(outcome, "not_registered"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.registration_count().await.expect("count"), 0);
    store
        .insert_challenge(&challenge("l5", 1_000_000))
        .await
        .expect("challenge");
    register(&store, "l5", "reg-l2", "0d01", Vec::new()).await;
    match store
        .settle(
            "l4",
            "p",
            4_000_000,
            Effect::Deregister { card: card("0d01") },
            label,
        )
        .await
        .expect("settle")
    {
        Settled::Fresh { outcome, .. } => assert_eq!(outcome, "deregistered:reg-l2"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.registration_count().await.expect("count"), 0);
    store.close().await;
}

/// Challenges and results survive closing and reopening the database; old ones are purged.
pub(crate) async fn challenges_survive_a_restart(url: &str) {
    let store = Store::connect(url, 2).await.expect("connect");
    store
        .insert_challenge(&challenge("keep", 1_000_000))
        .await
        .expect("challenge");
    register(&store, "keep", "reg-k", "0e01", Vec::new()).await;
    store.close().await;
    let store = Store::connect(url, 2).await.expect("reconnect");
    let kept = store.challenge("keep").await.expect("read").expect("kept");
    assert_eq!(kept.proof_sha256.as_deref(), Some("proof-keep"));
    assert_eq!(kept.outcome.as_deref(), Some("registered:reg-k"));
    assert_eq!(
        store
            .purge_challenges(1_000_000 + 120_000)
            .await
            .expect("purge"),
        0
    );
    assert_eq!(
        store
            .purge_challenges(1_000_000 + 120_001)
            .await
            .expect("purge"),
        1
    );
    assert!(store.challenge("keep").await.expect("read").is_none());
    assert_eq!(store.registration_count().await.expect("count"), 1);
    store.close().await;
}

/// A smartphone certificate linked to a registered card: registration reports the card's
/// registration, point of use finds it without relinking.
pub(crate) async fn linked_certificates_share_the_registration(url: &str) {
    let store = Store::connect(url, 2).await.expect("connect");
    for sn in ["p1", "p2", "p3"] {
        store
            .insert_challenge(&challenge(sn, 1_000_000))
            .await
            .expect("challenge");
    }
    register(&store, "p1", "reg-card", "0f01", Vec::new()).await;
    let phone = store
        .settle(
            "p2",
            "p",
            1_000_001,
            Effect::Register {
                registration: registration("reg-phone", "0f99", 1_000_001),
                relink_from: Vec::new(),
                linked: vec![card("0f01")],
            },
            label,
        )
        .await
        .expect("settle");
    match phone {
        Settled::Fresh { outcome, .. } => assert_eq!(outcome, "already:reg-card"),
        other => panic!("{other:?}"),
    }
    let check = store
        .settle(
            "p3",
            "p",
            1_000_002,
            Effect::Eligibility {
                card: card("0f99"),
                cert_sha256: "sha-phone".into(),
                relink_from: Vec::new(),
                linked: vec![card("0f01")],
                lapse: false,
            },
            label,
        )
        .await
        .expect("settle");
    match check {
        Settled::Fresh { outcome, .. } => assert_eq!(outcome, "found:reg-card:false"),
        other => panic!("{other:?}"),
    }
    let row = store
        .registration(&card("0f01"))
        .await
        .expect("read")
        .expect("the card stays registered");
    assert_eq!(row.relinked_at, None);
    assert_eq!(store.registration_count().await.expect("count"), 1);
    store.close().await;
}

/// A read-only answer (point-of-use check of a registered card) claims the challenge once: of two
/// concurrent submissions one is fresh and the other gets its stored answer; nothing else changes.
pub(crate) async fn a_read_only_answer_claims_the_challenge_once(url: &str) {
    let store = Arc::new(Store::connect(url, 8).await.expect("connect"));
    store
        .insert_challenge(&challenge("reg", 1_000_000))
        .await
        .expect("challenge");
    register(&store, "reg", "reg-read", "0e01", Vec::new()).await;
    store
        .insert_challenge(&challenge("check", 1_000_000))
        .await
        .expect("challenge");
    let found = store
        .registration(&card("0e01"))
        .await
        .expect("read")
        .expect("registered");
    let submit = |store: Arc<Store>, proof: &'static str, found: RegistrationRecord| async move {
        store
            .settle(
                "check",
                proof,
                2_000_000,
                Effect::Read(Applied::Found {
                    registration: found,
                    relinked: false,
                }),
                label,
            )
            .await
            .expect("settle")
    };
    let a = tokio::spawn(submit(Arc::clone(&store), "proof-a", found.clone()));
    let b = tokio::spawn(submit(Arc::clone(&store), "proof-b", found.clone()));
    let (a, b) = (a.await.expect("a"), b.await.expect("b"));
    let fresh: Vec<_> = [&a, &b]
        .into_iter()
        .filter_map(|s| match s {
            Settled::Fresh { applied, outcome } => Some((applied.clone(), outcome.clone())),
            Settled::Earlier(_) => None,
        })
        .collect();
    assert_eq!(fresh.len(), 1, "{a:?} {b:?}");
    assert_eq!(fresh[0].1, "found:reg-read:false");
    let stored = store
        .challenge("check")
        .await
        .expect("read")
        .expect("challenge");
    assert_eq!(stored.used_at, Some(2_000_000));
    assert_eq!(stored.outcome.as_deref(), Some("found:reg-read:false"));
    let winner = stored.proof_sha256.clone().expect("proof recorded");
    assert!(winner == "proof-a" || winner == "proof-b", "{winner}");
    // A later retry of either proof is answered from the record, unchanged.
    match submit(Arc::clone(&store), "proof-c", found).await {
        Settled::Earlier(c) => assert_eq!(c.outcome.as_deref(), Some("found:reg-read:false")),
        other => panic!("expected the earlier record, got {other:?}"),
    }
    assert_eq!(store.registration_count().await.expect("count"), 1);
    store.close().await;
}

fn pending(session: &str, serial: &str, now: i64) -> PendingRecord {
    PendingRecord {
        session_id: session.to_owned(),
        token_sha256: format!("token-{session}"),
        waiting_on: "identity".to_owned(),
        card: card(serial),
        cert_sha256: format!("sha-{serial}"),
        not_after: now / 1000 + 86_400,
        terminal_id: "atm-0001".to_owned(),
        method: "pin_signature".to_owned(),
        consent_version: "1.0".to_owned(),
        attempts: 0,
        accepted_at: now,
        next_attempt_at: now + 1000,
        deadline: now + 600_000,
    }
}

/// Claims the session and records it as pending, as a proof whose upstreams did not answer.
async fn go_pending(store: &Store, session: &str, serial: &str, now: i64) {
    store
        .insert_challenge(&challenge(session, now))
        .await
        .expect("challenge");
    let settled = store
        .settle(
            session,
            &format!("proof-{session}"),
            now,
            Effect::Pending(pending(session, serial, now)),
            |applied| format!("stored:{}", label(applied)),
        )
        .await
        .expect("settle");
    assert!(
        matches!(&settled, Settled::Fresh { applied: Applied::Pending, outcome } if outcome == "stored:pending"),
        "{settled:?}"
    );
}

/// Two instances (two pools) drain the same pending items at once, each claiming and ending
/// what it gets: every item is claimed by exactly one of them, and its result is that
/// instance's.
pub(crate) async fn two_workers_claim_each_pending_item_once(url: &str) {
    let now = 2_000_000;
    let setup = Store::connect(url, 2).await.expect("connect");
    let sessions: Vec<String> = (0..24).map(|i| format!("p{i}")).collect();
    for (i, session) in sessions.iter().enumerate() {
        go_pending(&setup, session, &format!("{:04x}", 0x0f00 + i), now).await;
    }
    setup.close().await;
    let mut tasks = Vec::new();
    for owner in ["worker-a", "worker-b"] {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let store = Store::connect(&url, 4).await.expect("connect");
            let later = now + 5_000;
            let mut mine = Vec::new();
            while let Some(item) = store
                .claim_pending(later, owner, later + 60_000)
                .await
                .expect("claim")
            {
                assert_eq!(item.attempts, 1, "claimed once: {}", item.session_id);
                let ended = store
                    .finish_pending(&item.session_id, owner, later, Effect::None, |_| {
                        format!("ended-by:{owner}")
                    })
                    .await
                    .expect("finish");
                assert_eq!(ended, Some(Applied::Nothing), "the holder ends it");
                mine.push(item.session_id);
                tokio::task::yield_now().await;
            }
            store.close().await;
            mine
        }));
    }
    let mut claimed = Vec::new();
    let mut per_owner = Vec::new();
    for task in tasks {
        let mine = task.await.expect("worker");
        per_owner.push(mine.len());
        claimed.extend(mine);
    }
    claimed.sort();
    let mut expected = sessions.clone();
    expected.sort();
    assert_eq!(claimed, expected, "every item once, none twice");
    let store = Store::connect(url, 2).await.expect("connect");
    assert_eq!(store.pending_counts().await.expect("counts"), (0, 24));
    for session in &sessions {
        let outcome = store
            .challenge(session)
            .await
            .expect("read")
            .expect("kept")
            .outcome
            .expect("outcome");
        assert!(outcome.starts_with("ended-by:worker-"), "{outcome}");
    }
    store.close().await;
    eprintln!("claims per worker: {per_owner:?}");
}

/// A lease keeps other workers off an item until it runs out; then another worker takes it
/// over, and the first one can neither reschedule nor end it any more.
pub(crate) async fn a_lease_holds_until_it_runs_out(url: &str) {
    let now = 3_000_000;
    let store = Store::connect(url, 2).await.expect("connect");
    go_pending(&store, "leased", "0c01", now).await;
    assert!(
        store
            .claim_pending(now, "a", now + 10_000)
            .await
            .expect("claim")
            .is_none(),
        "not due before its next attempt"
    );
    let due = now + 1000;
    let first = store
        .claim_pending(due, "a", due + 10_000)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(first.card, card("0c01"));
    assert_eq!(first.attempts, 1);
    assert!(
        store
            .claim_pending(due + 9_999, "b", due + 20_000)
            .await
            .expect("claim")
            .is_none(),
        "held by a"
    );
    let taken = store
        .claim_pending(due + 10_000, "b", due + 20_000)
        .await
        .expect("claim")
        .expect("lease over");
    assert_eq!(taken.attempts, 2);
    assert!(
        !store
            .reschedule_pending("leased", "a", due + 50_000, "insurance")
            .await
            .expect("reschedule"),
        "a lost it"
    );
    assert_eq!(
        store
            .finish_pending("leased", "a", due + 10_001, Effect::None, |_| "by-a".into())
            .await
            .expect("finish"),
        None
    );
    assert!(
        store
            .reschedule_pending("leased", "b", due + 30_000, "insurance")
            .await
            .expect("reschedule")
    );
    let status = store
        .pending_status("leased")
        .await
        .expect("status")
        .expect("row");
    assert_eq!(
        (status.done, status.waiting_on.as_str()),
        (false, "insurance")
    );
    // Given back: no lease, due again at the new time.
    let again = store
        .claim_pending(due + 30_000, "a", due + 40_000)
        .await
        .expect("claim")
        .expect("due again");
    assert_eq!(again.attempts, 3);
    store.close().await;
}

/// A pending item ends with a registration in the same transaction as its answer, its card
/// columns are cleared, and the challenge of a pending item is not purged while it waits.
pub(crate) async fn pending_ends_once_and_is_not_purged_while_waiting(url: &str) {
    let now = 4_000_000;
    let store = Store::connect(url, 2).await.expect("connect");
    go_pending(&store, "waits", "0d01", now).await;
    // Long after the challenge expired: still kept, it is pending.
    assert_eq!(
        store
            .purge_challenges(now + 10_000_000)
            .await
            .expect("purge"),
        0
    );
    assert!(store.challenge("waits").await.expect("read").is_some());
    let item = store
        .claim_pending(now + 1000, "w", now + 60_000)
        .await
        .expect("claim")
        .expect("due");
    let ended = store
        .finish_pending(
            &item.session_id,
            "w",
            now + 2000,
            Effect::Register {
                registration: registration("reg-p", "0d01", now + 2000),
                relink_from: Vec::new(),
                linked: Vec::new(),
            },
            label,
        )
        .await
        .expect("finish")
        .expect("held");
    assert_eq!(label(&ended), "registered:reg-p");
    assert_eq!(store.registration_count().await.expect("count"), 1);
    assert_eq!(
        store
            .challenge("waits")
            .await
            .expect("read")
            .expect("kept")
            .outcome
            .as_deref(),
        Some("registered:reg-p")
    );
    // Nothing can end it a second time.
    assert_eq!(
        store
            .finish_pending("waits", "w", now + 3000, Effect::None, |_| "again".into())
            .await
            .expect("finish"),
        None
    );
    assert!(
        store
            .claim_pending(now + 100_000, "x", now + 200_000)
            .await
            .expect("claim")
            .is_none()
    );
    use sqlx::Row as _;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(url).await.expect("connect");
    let row = sqlx::query(
        "SELECT COALESCE(root_id, ''), COALESCE(serial, ''), COALESCE(cert_sha256, ''), state \
         FROM pending_registrations WHERE session_id = 'waits'",
    )
    .fetch_one(&pool)
    .await
    .expect("row");
    let cleared: Vec<String> = (0..4).map(|i| row.try_get(i).expect("text")).collect();
    assert_eq!(cleared, ["", "", "", "done"], "the card is cleared");
    pool.close().await;
    // Ended: purged with its challenge.
    assert_eq!(store.pending_counts().await.expect("counts"), (0, 1));
    assert_eq!(
        store
            .purge_challenges(now + 10_000_000)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(store.pending_counts().await.expect("counts"), (0, 0));
    store.close().await;
}
