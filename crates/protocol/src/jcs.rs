//! RFC 8785 JSON Canonicalization Scheme (JCS), for the values this protocol signs.
//!
//! Supported: `null`, booleans, strings, arrays, objects and integers of magnitude at most
//! 2^53 (these print the same in every JSON implementation). Non-integer numbers are refused
//! with [`JcsError::UnsupportedNumber`] rather than risk a spelling that differs from RFC 8785
//! §3.2.2.3 (ECMAScript number formatting): the protocol signs no such numbers (protocol §5.1).
//!
//! - object members are sorted by the UTF-16 code units of their names (§3.2.3);
//! - strings escape only `"`, `\` and U+0000–U+001F, using `\b \t \n \f \r` where they exist and
//!   lower-case `\u00xx` otherwise; every other character is written as UTF-8 (§3.2.2.2);
//! - no whitespace anywhere.

use serde::Serialize;
use serde_json::Value;

/// The largest integer magnitude accepted (2^53, exactly representable as an IEEE double).
const MAX_SAFE: u64 = 1 << 53;

/// Why a value has no canonical form here.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JcsError {
    /// A number that is not an integer of magnitude at most 2^53.
    #[error("number {0} is not an integer within ±2^53; the protocol signs no such numbers")]
    UnsupportedNumber(String),
    /// The value could not be turned into JSON.
    #[error("value is not representable as JSON")]
    Serialize(#[source] serde_json::Error),
}

/// The canonical bytes of any serialisable value.
///
/// # Errors
/// [`JcsError`] as described in the module documentation.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, JcsError> {
    let value = serde_json::to_value(value).map_err(JcsError::Serialize)?;
    canonicalize(&value)
}

/// The canonical bytes of JSON text (parsed first; duplicate names keep the last value, as
/// serde_json does).
///
/// # Errors
/// [`JcsError::Serialize`] for text that is not JSON, and the errors of [`canonicalize`].
pub fn canonicalize_text(text: &str) -> Result<Vec<u8>, JcsError> {
    let value: Value = serde_json::from_str(text).map_err(JcsError::Serialize)?;
    canonicalize(&value)
}

/// The canonical bytes of a JSON value.
///
/// # Errors
/// [`JcsError::UnsupportedNumber`].
pub fn canonicalize(value: &Value) -> Result<Vec<u8>, JcsError> {
    let mut out = Vec::with_capacity(256);
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), JcsError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n)?,
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (name, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(out, name);
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) -> Result<(), JcsError> {
    if let Some(u) = n.as_u64() {
        if u <= MAX_SAFE {
            out.extend_from_slice(u.to_string().as_bytes());
            return Ok(());
        }
    } else if let Some(i) = n.as_i64() {
        if i.unsigned_abs() <= MAX_SAFE {
            out.extend_from_slice(i.to_string().as_bytes());
            return Ok(());
        }
    } else if let Some(f) = n.as_f64() {
        // An integral double (e.g. `1.0` or `-0.0`) has an unambiguous ECMAScript spelling.
        if f.is_finite() && f.fract() == 0.0 && f.abs() <= MAX_SAFE as f64 {
            let i = f as i64;
            out.extend_from_slice(i.to_string().as_bytes());
            return Ok(());
        }
    }
    Err(JcsError::UnsupportedNumber(n.to_string()))
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    // Runs that need no escape are copied whole: only ASCII bytes are ever escaped, and none
    // of them occurs inside a multi-byte UTF-8 sequence, so a run always ends on a boundary.
    let bytes = s.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0C => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1F => {
                out.extend_from_slice(&bytes[run..i]);
                out.extend_from_slice(format!("\\u{:04x}", b).as_bytes());
                run = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(escape);
        run = i + 1;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(text: &str) -> String {
        String::from_utf8(canonicalize_text(text).unwrap()).unwrap()
    }

    // RFC 8785 §3.2.3: sorting by UTF-16 code units, not by code points or UTF-8.
    #[test]
    fn rfc8785_sorting_example() {
        let input = r#"{
          "\u20ac": "Euro Sign",
          "\r": "Carriage Return",
          "\ufb33": "Hebrew Letter Dalet With Dagesh",
          "1": "One",
          "\ud83d\ude00": "Emoji: Grinning Face",
          "\u0080": "Control",
          "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let names: Vec<&str> = vec![
            "\r",
            "1",
            "\u{80}",
            "\u{f6}",
            "\u{20ac}",
            "\u{1f600}",
            "\u{fb33}",
        ];
        let value: Value = serde_json::from_str(&canon(input)).unwrap();
        let got: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        // serde_json's map re-sorts on parse, so check the order in the bytes instead.
        let text = canon(input);
        let mut last = 0;
        for name in &names {
            let quoted = serde_json::to_string(name).unwrap();
            let quoted = if *name == "\r" {
                "\"\\r\"".to_string()
            } else {
                quoted
            };
            let pos = text.find(&quoted).unwrap();
            assert!(pos >= last, "{name:?} out of order in {text}");
            last = pos;
        }
        assert_eq!(got.len(), 7);
        assert!(text.starts_with("{\"\\r\":\"Carriage Return\",\"1\":\"One\""));
        assert!(text.ends_with("\"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}"));
    }

    // RFC 8785 §3.2.2.2: the string example.
    #[test]
    fn rfc8785_string_example() {
        let input = r#""\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/""#;
        assert_eq!(canon(input), "\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"");
    }

    // RFC 8785 §3.2.2: literals, whitespace removal and nesting (numbers limited to integers).
    #[test]
    fn rfc8785_structure_example_without_fractions() {
        let input = r#"{
          "numbers": [333333333, 1e3, 4, 2, -0, 0],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"#;
        assert_eq!(
            canon(input),
            "{\"literals\":[null,true,false],\"numbers\":[333333333,1000,4,2,0,0],\"string\":\"€$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}"
        );
    }

    #[test]
    fn fractions_and_huge_integers_are_refused() {
        for bad in [
            "1.5",
            "1e30",
            "9007199254740993",
            "-9007199254740993",
            "0.000001",
        ] {
            assert!(
                matches!(canonicalize_text(bad), Err(JcsError::UnsupportedNumber(_))),
                "{bad}"
            );
        }
        assert_eq!(canon("9007199254740992"), "9007199254740992");
        assert_eq!(canon("-9007199254740992"), "-9007199254740992");
    }

    #[test]
    fn control_characters_use_lower_case_hex_and_del_is_literal() {
        assert_eq!(
            canon(r#""\u001f\u007f\u2028""#),
            "\"\\u001f\u{7f}\u{2028}\""
        );
        assert_eq!(canon(r#""\b\f\t""#), "\"\\b\\f\\t\"");
    }

    proptest! {
        // Canonical output is JSON that parses back to the same value, and is a fixed point.
        #[test]
        fn canonical_form_is_stable(map in proptest::collection::btree_map("\\PC{0,8}", "\\PC{0,12}", 0..6)) {
            let bytes = to_vec(&map).unwrap();
            let text = String::from_utf8(bytes.clone()).unwrap();
            let back: std::collections::BTreeMap<String, String> = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&back, &map);
            prop_assert_eq!(canonicalize_text(&text).unwrap(), bytes);
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
            let _ = canonicalize_text(&text);
        }
    }
}
