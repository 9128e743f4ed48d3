//! `mynacard apdu decode` as a user runs it: output, JSON documents and exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{assert_exit, json, mynacard, stdout};

#[test]
fn status_word_63c2_says_two_retries_remain() {
    let out = mynacard(&["apdu", "decode", "63C2", "--json"], None);
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["kind"], "response");
    assert_eq!(doc["sw"], "63C2");
    assert_eq!(doc["retries_remaining"], 2);
    assert_eq!(doc["blocked"], false);
    assert!(doc["meaning"].as_str().unwrap().contains("2 tries remain"));
}

#[test]
fn status_word_6a82_is_file_not_found() {
    let out = mynacard(&["apdu", "decode", "6A82"], None);
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("file or application not found"));
    assert!(out.stderr.is_empty());
}

#[test]
fn malformed_hex_is_a_usage_error() {
    for bad in ["6A8", "XYZW", "00 A4 0G"] {
        let out = mynacard(&["apdu", "decode", bad], None);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: HEX is not a hex string"), "{err}");
        assert!(!err.contains("panicked"));
    }
}

#[test]
fn malformed_hex_with_json_is_one_error_document() {
    let out = mynacard(&["--json", "apdu", "decode", "6A8"], None);
    assert_exit(&out, 2);
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "usage");
    assert_eq!(doc["error"]["exit_code"], 2);
    assert!(out.stderr.is_empty());
}

#[test]
fn clap_usage_errors_exit_2_also_in_json() {
    let out = mynacard(&["apdu", "decode"], None);
    assert_exit(&out, 2);
    let out = mynacard(&["no-such-command"], None);
    assert_exit(&out, 2);
    let out = mynacard(
        &["apdu", "decode", "9000", "--no-such-flag", "--json"],
        None,
    );
    assert_exit(&out, 2);
    let doc = json(&out);
    assert_eq!(doc["error"]["kind"], "usage");
}

#[test]
fn help_documents_exit_codes_and_exits_0() {
    let out = mynacard(&["--help"], None);
    assert_exit(&out, 0);
    let text = stdout(&out);
    for line in [
        "0  success",
        "2  usage error",
        "3  card absent",
        "4  wrong PIN",
        "5  PIN blocked",
        "6  verification failed",
        "7  service error",
        "8  still pending",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
}

#[test]
fn select_jpki_ap_is_explained() {
    let out = mynacard(
        &[
            "apdu",
            "decode",
            "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01",
            "--json",
        ],
        None,
    );
    assert_exit(&out, 0);
    let doc = json(&out);
    assert_eq!(doc["kind"], "command");
    assert_eq!(doc["case"], 3);
    assert_eq!(doc["ins"]["meaning"], "SELECT");
    assert_eq!(doc["cla"]["chaining"], false);
    assert_eq!(doc["lc"]["value"], 10);
    assert!(doc["summary"].as_str().unwrap().contains("JPKI AP"));
    assert!(doc.get("le").is_none());
}

#[test]
fn verify_pin_is_never_printed() {
    for json_flag in [false, true] {
        let mut args = vec!["apdu", "decode", "00200080", "04", "39383736"];
        if json_flag {
            args.push("--json");
        }
        let out = mynacard(&args, None);
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(!text.contains("39"), "{text}");
        assert!(text.contains("redacted"), "{text}");
    }
}

#[test]
fn extended_read_binary_and_signing() {
    let doc = json(&mynacard(
        &["apdu", "decode", "00B08A00000000", "--json"],
        None,
    ));
    assert_eq!(doc["length_encoding"], "extended");
    assert_eq!(doc["le"]["value"], 65_536);
    assert_eq!(doc["p1"]["value"], "8A");
    let mut sign = String::from("802A0080333031300D060960864801650304020105000420");
    sign.push_str(&"00".repeat(32));
    sign.push_str("00");
    let doc = json(&mynacard(&["apdu", "decode", &sign, "--json"], None));
    assert_eq!(doc["case"], 4);
    assert_eq!(doc["ins"]["meaning"], "COMPUTE DIGITAL SIGNATURE");
    assert_eq!(doc["data"]["meaning"], "DigestInfo with a SHA-256 hash");
}

#[test]
fn response_flag_forces_response_decoding() {
    let doc = json(&mynacard(
        &["apdu", "decode", "--response", "0102039000", "--json"],
        None,
    ));
    assert_eq!(doc["kind"], "response");
    assert_eq!(doc["data_len"], 3);
    assert_eq!(doc["sw"], "9000");
}

#[test]
fn get_response_is_suggested_for_61xx() {
    let doc = json(&mynacard(&["apdu", "decode", "6120", "--json"], None));
    assert_eq!(doc["next"], "00 C0 00 00 20");
}
