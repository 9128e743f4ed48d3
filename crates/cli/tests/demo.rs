//! `mynacard demo`, the README's main job, end to end: the reference service on an embedded
//! SQLite file over HTTPS, and the four flows with simulated cards (the ATM, kiosk and clinic
//! with their client certificates, the app without).

use std::process::Command;

#[test]
fn demo_runs_every_flow_with_the_expected_outcome() {
    let out = Command::new(env!("CARGO_BIN_EXE_mynacard"))
        .args(["demo", "--json"])
        .output()
        .expect("run mynacard demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "demo failed: {stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let flows = doc["flows"].as_array().expect("flows");
    let outcomes: Vec<(&str, &str)> = flows
        .iter()
        .map(|f| {
            (
                f["card_profile"].as_str().unwrap_or_default(),
                f["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("adult", "registered"),
            ("demo-atm", "registered"),
            ("face-auth", "registered"),
            ("reissued", "eligible"),
        ]
    );
    for flow in flows {
        assert_eq!(flow["consent_shown"], true, "{flow}");
        assert_eq!(flow["http_requests"], 3, "{flow}");
    }
    assert!(
        doc["service_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://127.0.0.1:")),
        "{doc}"
    );
    let certified: Vec<bool> = flows
        .iter()
        .map(|f| f["client_certificate"].as_bool().unwrap_or_default())
        .collect();
    assert_eq!(
        certified,
        [false, true, true, true],
        "only the app goes without"
    );
    // The reissued card reaches the registration made with the first card: relinked, same id.
    let reissue = &flows[3];
    assert_eq!(reissue["eligibility"]["relinked"], true);
    assert_eq!(reissue["registration_id"], flows[0]["registration_id"]);
}
