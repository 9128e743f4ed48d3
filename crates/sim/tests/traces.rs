//! Replays the command/response traces in `tests/traces/*.apdu` against the engine.
//!
//! Format, one item per line (`#` starts a comment):
//! - `> HEX` a command APDU (spaces allowed);
//! - `< PATTERN` the expected response: hex bytes, `..` for any one byte, `*N` for any N bytes,
//!   `*` for any number of bytes (at most once per line);
//! - `! power-off`, `! power-on`, `! reset` card events;
//! - `@ profile NAME` the card to replay against: a test image of this suite (`test-standard`,
//!   `test-short-253`) or a built-in profile (`adult`, …); must come first.
//!
//! Key-dependent bytes (certificates, signatures) are matched by length, status words exactly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};

use mynacard_sim::engine::Card;
use mynacard_sim::image::CardImage;
use support::*;

#[derive(Debug, PartialEq)]
enum Token {
    Byte(u8),
    Any,
    AnyN(usize),
    Rest,
}

fn parse_pattern(text: &str) -> Vec<Token> {
    text.split_whitespace()
        .flat_map(|word| -> Vec<Token> {
            if word == ".." {
                vec![Token::Any]
            } else if word == "*" {
                vec![Token::Rest]
            } else if let Some(n) = word.strip_prefix('*') {
                vec![Token::AnyN(n.parse().expect("*N"))]
            } else {
                hex::decode(word)
                    .unwrap_or_else(|_| panic!("bad hex {word:?}"))
                    .into_iter()
                    .map(Token::Byte)
                    .collect()
            }
        })
        .collect()
}

fn matches(pattern: &[Token], bytes: &[u8]) -> bool {
    match pattern.split_first() {
        None => bytes.is_empty(),
        Some((Token::Byte(b), rest)) => bytes.first() == Some(b) && matches(rest, &bytes[1..]),
        Some((Token::Any, rest)) => !bytes.is_empty() && matches(rest, &bytes[1..]),
        Some((Token::AnyN(n), rest)) => bytes.len() >= *n && matches(rest, &bytes[*n..]),
        Some((Token::Rest, rest)) => (0..=bytes.len()).any(|skip| matches(rest, &bytes[skip..])),
    }
}

fn card_for(profile: &str) -> Card {
    match profile {
        "test-standard" => Card::new(image()),
        "test-short-253" => Card::new(short_image(253)),
        builtin => Card::new(
            CardImage::from_profile_name(builtin)
                .unwrap_or_else(|e| panic!("trace profile {builtin:?}: {e}")),
        ),
    }
}

/// Replays one trace; returns the number of exchanges checked.
fn replay(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let mut card: Option<Card> = None;
    let mut last: Option<(usize, Vec<u8>)> = None;
    let mut checked = 0;
    for (number, raw) in text.lines().enumerate() {
        let line_no = number + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let where_ = format!("{}:{line_no}", path.display());
        let (kind, rest) = line.split_at(1);
        let rest = rest.trim();
        if kind == "@" {
            let name = rest.strip_prefix("profile").expect("@ profile NAME").trim();
            card = Some(card_for(name));
            continue;
        }
        let card = card
            .as_mut()
            .unwrap_or_else(|| panic!("{where_}: no `@ profile` before the first item"));
        match kind {
            ">" => {
                assert!(
                    last.is_none(),
                    "{where_}: command without an expected response before it"
                );
                let command = h(rest);
                last = Some((line_no, card.process(&command)));
            }
            "<" => {
                let (command_line, response) = last
                    .take()
                    .unwrap_or_else(|| panic!("{where_}: response without command"));
                assert!(
                    matches(&parse_pattern(rest), &response),
                    "{where_} (command on line {command_line}): got {}",
                    hex::encode_upper(&response)
                );
                checked += 1;
            }
            "!" => match rest {
                "power-off" => card.power_off(),
                "power-on" => card.power_on(),
                "reset" => card.reset(),
                other => panic!("{where_}: unknown event {other:?}"),
            },
            _ => panic!("{where_}: cannot read {line:?}"),
        }
    }
    assert!(
        last.is_none(),
        "{}: last command has no response",
        path.display()
    );
    checked
}

fn traces() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "apdu"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_trace_replays() {
    let files = traces();
    assert!(files.len() >= 5, "trace corpus missing: {files:?}");
    for file in files {
        let checked = replay(&file);
        assert!(checked > 0, "{} checks nothing", file.display());
    }
}

#[test]
fn patterns_match_what_they_say() {
    let p = parse_pattern("30 82 .. .. * 90 00");
    assert!(matches(&p, &h("30820102AABBCC9000")));
    assert!(matches(&p, &h("308201029000")));
    assert!(!matches(&p, &h("308201029001")));
    assert!(!matches(&p, &h("3082019000")));
    let n = parse_pattern("*3 6282");
    assert!(matches(&n, &h("0102036282")));
    assert!(!matches(&n, &h("01026282")));
    assert!(!matches(&n, &h("010203046282")));
}

#[test]
fn a_wrong_expectation_fails_the_replay() {
    let dir = std::env::temp_dir().join(format!("mynacard-sim-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wrong.apdu");
    std::fs::write(
        &file,
        "@ profile test-standard\n> 00A4040C0AD392F000260100000001\n< 6A82\n",
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| replay(&file));
    assert!(result.is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
