//! `mynacard visual face` and `mynacard text attributes` against the simulated card: the
//! records, their certificates' trust (exit 6 when not anchored), the pictures written with
//! --out-dir.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{assert_exit, json, mynacard, scratch};

/// 照合番号B of the simulated adult card: 1980-02-17 is 昭和55, expiry 2035, code 2285.
const ADULT_B: &str = "55021720352285\n";

#[test]
fn visual_face_shows_the_record_verified_under_the_simulators_authority() {
    let out = mynacard(
        &[
            "--json",
            "--card",
            "sim",
            "visual",
            "face",
            "--pin-stdin",
            "--allow-test-roots",
        ],
        ADULT_B,
    );
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["birth_date"], "1980-02-17", "{doc}");
    assert_eq!(doc["sex"], "female");
    assert_eq!(doc["expiry"], "2035-02-17");
    assert_eq!(doc["record"]["status"], "verified");
    assert_eq!(doc["record"]["cvc_issuer"], "6900023/001");
    assert_eq!(doc["record"]["cvc_subject"], "1322121/000");
    assert_eq!(doc["record"]["hierarchy"], "test");
}

#[test]
fn visual_face_without_the_test_opt_in_is_unanchored_and_exits_6() {
    let out = mynacard(
        &["--json", "--card", "sim", "visual", "face", "--pin-stdin"],
        ADULT_B,
    );
    assert_exit(&out, 6);
    let doc = json(&out);
    // The record is printed with its status, never as good.
    assert_eq!(doc["record"]["status"], "unanchored", "{doc}");
    assert!(
        doc["record"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a known authority")),
        "{doc}"
    );
}

#[test]
fn visual_face_with_a_wrong_collation_number_exits_4_and_writes_nothing() {
    let dir = scratch();
    let out_dir = dir.join("face");
    let out = mynacard(
        &[
            "--card",
            "sim",
            "visual",
            "face",
            "--pin-stdin",
            "--out-dir",
            out_dir.to_str().unwrap_or_default(),
        ],
        "55021720350000\n",
    );
    assert_exit(&out, 4);
    assert!(!out_dir.exists());
}

#[test]
fn visual_face_writes_the_photo_and_the_pictures() {
    let dir = scratch();
    let out_dir = dir.join("face");
    let out = mynacard(
        &[
            "--json",
            "--card",
            "sim",
            "visual",
            "face",
            "--pin-stdin",
            "--allow-test-roots",
            "--out-dir",
            out_dir.to_str().unwrap_or_default(),
        ],
        ADULT_B,
    );
    assert_exit(&out, 0);
    assert_eq!(json(&out)["files"].as_array().map(Vec::len), Some(4));
    let photo = std::fs::read(out_dir.join("photo.jp2")).unwrap_or_default();
    assert!(photo.starts_with(&[0, 0, 0, 0x0C, b'j', b'P', b' ', b' ']));
    for name in ["name.png", "address.png", "security-code.png"] {
        let png = std::fs::read(out_dir.join(name)).unwrap_or_default();
        assert!(png.starts_with(b"\x89PNG"), "{name}");
    }
}

#[test]
fn text_attributes_show_the_four_attributes_and_their_integrity() {
    let out = mynacard(
        &[
            "--json",
            "--card",
            "sim",
            "text",
            "attributes",
            "--pin-stdin",
            "--allow-test-roots",
        ],
        "1234\n",
    );
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["name"], "番号\u{3000}花子", "{doc}");
    assert_eq!(doc["address"], "東京都清瀬市試験町一丁目２番３号");
    assert_eq!(doc["birth_date"], "1980-02-17");
    assert_eq!(doc["integrity"]["status"], "verified");
    assert_eq!(doc["integrity"]["cvc_issuer"], "6900033/001");
    // No individual number in the output.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("123456789018"));

    let out = mynacard(
        &["--card", "sim", "text", "attributes", "--pin-stdin"],
        "1234\n",
    );
    assert_exit(&out, 6);
}

/// The recorded J-LIS test card, from the workspace root as a user would name it.
fn image_card() -> String {
    format!(
        "image:{}/../sim/images/jlis-test-card",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn the_real_test_cards_face_verifies_under_the_jlis_test_authority_only_on_opt_in() {
    let card = image_card();
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "--json",
            "--card",
            card.as_str(),
            "visual",
            "face",
            "--pin-stdin",
        ];
        args.extend_from_slice(extra);
        args
    };
    let out = mynacard(&args(&["--allow-test-roots"]), "55021720350000\n");
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["birth_date"], "1980-02-17", "{doc}");
    assert_eq!(doc["sex"], "male");
    assert_eq!(doc["expiry"], "2035-02-17");
    assert_eq!(doc["record"]["status"], "verified");
    assert_eq!(doc["record"]["cvc_issuer"], "6000023/001");

    let out = mynacard(&args(&[]), "55021720350000\n");
    assert_exit(&out, 6);
    assert_eq!(json(&out)["record"]["status"], "unanchored");
}

#[test]
fn the_real_test_cards_attributes_verify_through_the_integrity_record() {
    let card = image_card();
    let out = mynacard(
        &[
            "--json",
            "--card",
            card.as_str(),
            "text",
            "attributes",
            "--pin-stdin",
            "--allow-test-roots",
        ],
        "1234\n",
    );
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["name"], "黒桐\u{3000}幹也", "{doc}");
    let attributes = std::fs::read(format!(
        "{}/../sim/images/jlis-test-card/text-0002.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap_or_default();
    let address = doc["address"].as_str().unwrap_or_default();
    assert!(!address.is_empty());
    assert!(
        attributes
            .windows(address.len())
            .any(|w| w == address.as_bytes()),
        "the address is text-0002.bin's DF23: {address}"
    );
    assert_eq!(doc["integrity"]["status"], "verified");
    assert_eq!(doc["integrity"]["cvc_issuer"], "6000033/001");
}
