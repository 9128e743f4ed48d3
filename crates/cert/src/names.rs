//! Distinguished names as text, and the attributes the JPKI classification reads.

use std::fmt::Write as _;

use der::{Tag, Tagged, asn1::Any, oid::ObjectIdentifier};
use x509_cert::name::Name;

pub(crate) const ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
pub(crate) const ORGANIZATIONAL_UNIT: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.11");

/// Short names for the attribute types JPKI and common CAs use; others print as dotted OIDs.
fn short_name(oid: &ObjectIdentifier) -> Option<&'static str> {
    Some(match oid.to_string().as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.4" => "SN",
        "2.5.4.5" => "serialNumber",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "street",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.12" => "title",
        "2.5.4.42" => "GN",
        "1.2.840.113549.1.9.1" => "emailAddress",
        "0.9.2342.19200300.100.1.25" => "DC",
        _ => return None,
    })
}

/// The text of a directory-string value, if it is one of the string types.
pub(crate) fn attribute_text(value: &Any) -> Option<String> {
    string_value(value.tag(), value.value())
}

/// Decodes the string types that appear in names and otherName values.
pub(crate) fn string_value(tag: Tag, bytes: &[u8]) -> Option<String> {
    match tag {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::VisibleString
        | Tag::NumericString => std::str::from_utf8(bytes).ok().map(str::to_owned),
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        _ => None,
    }
}

/// Formats a name in encoding order, `C=JP, O=JPKI, OU=…`, the order `openssl x509 -text` uses.
///
/// Multi-valued RDNs are joined with ` + `; RFC 4514 special characters are escaped with a
/// backslash; values that are not strings print as `#` and the hex of their DER.
pub fn format_name(name: &Name) -> String {
    let mut out = String::new();
    for (i, rdn) in name.iter_rdn().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push_str(" + ");
            }
            match short_name(&atv.oid) {
                Some(short) => out.push_str(short),
                None => {
                    let _ = write!(out, "{}", atv.oid);
                }
            }
            out.push('=');
            match attribute_text(&atv.value) {
                Some(text) => escape_into(&mut out, &text),
                None => {
                    out.push('#');
                    if let Ok(der) = der::Encode::to_der(&atv.value) {
                        for b in der {
                            let _ = write!(out, "{b:02X}");
                        }
                    }
                }
            }
        }
    }
    out
}

fn escape_into(out: &mut String, text: &str) {
    let last = text.chars().count().saturating_sub(1);
    for (i, c) in text.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

/// All values of one attribute type, in order.
pub(crate) fn values_of(name: &Name, oid: ObjectIdentifier) -> Vec<String> {
    name.iter()
        .filter(|atv| atv.oid == oid)
        .filter_map(|atv| attribute_text(&atv.value))
        .collect()
}

/// The first `O=` value.
pub(crate) fn organization(name: &Name) -> Option<String> {
    values_of(name, ORGANIZATION).into_iter().next()
}
