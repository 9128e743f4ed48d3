//! What a connected reader and card can do: extended length and contact or contactless.

use mynacard_transport::{Capabilities, Interface};

use crate::options::ExtendedLength;

/// `FEATURE_GET_TLV_PROPERTIES` in the PC/SC part 10 feature list.
const FEATURE_GET_TLV_PROPERTIES: u8 = 0x12;
/// `PCSCv2_PART10_PROPERTY_dwMaxAPDUDataSize`.
const PROPERTY_MAX_APDU_DATA_SIZE: u8 = 0x0A;
/// `CM_IOCTL_GET_FEATURE_REQUEST` function number.
const GET_FEATURE_REQUEST: u32 = 3400;

/// Finds the control code of a feature in a `CM_IOCTL_GET_FEATURE_REQUEST` answer: a list of
/// `tag, 4, code (big-endian)` entries.
pub(crate) fn feature_code(features: &[u8], wanted: u8) -> Option<u32> {
    let mut rest = features;
    while let [tag, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let (value, after) = tail.split_at_checked(len)?;
        if *tag == wanted {
            let bytes: [u8; 4] = value.try_into().ok()?;
            return Some(u32::from_be_bytes(bytes));
        }
        rest = after;
    }
    None
}

/// Reads `dwMaxAPDUDataSize` from a `GET_TLV_PROPERTIES` answer: `tag, len, value
/// (little-endian)` entries.
pub(crate) fn max_apdu_data_size(properties: &[u8]) -> Option<u32> {
    let mut rest = properties;
    while let [tag, len, tail @ ..] = rest {
        let len = usize::from(*len);
        let (value, after) = tail.split_at_checked(len)?;
        if *tag == PROPERTY_MAX_APDU_DATA_SIZE {
            return match *value {
                [a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d])),
                [a, b] => Some(u32::from(u16::from_le_bytes([a, b]))),
                [a] => Some(u32::from(a)),
                _ => None,
            };
        }
        rest = after;
    }
    None
}

/// Asks the reader driver for its extended-APDU data size; `None` when it does not say.
pub(crate) fn query_max_apdu_data_size(card: &pcsc::Card) -> Option<u32> {
    let mut buf = [0u8; 256];
    let features = card
        .control(pcsc::ctl_code(GET_FEATURE_REQUEST.into()), &[], &mut buf)
        .ok()?
        .to_vec();
    let code = feature_code(&features, FEATURE_GET_TLV_PROPERTIES)?;
    let properties = card.control(code.into(), &[], &mut buf).ok()?;
    max_apdu_data_size(properties)
}

/// Readers known to pass extended APDUs although their driver does not answer the part 10
/// query, with the data size they carry: vsmartcard's vpcd frames APDUs with a 16-bit length.
const KNOWN_READERS: &[(&str, u32)] = &[("Virtual PCD", 65_535 - 9)];

/// The extended-APDU data size of a reader known by name (see [`KNOWN_READERS`]).
pub(crate) fn known_reader_max_data(reader: &str) -> Option<u32> {
    KNOWN_READERS
        .iter()
        .find(|(prefix, _)| reader.starts_with(prefix))
        .map(|(_, n)| *n)
}

/// The channel's capabilities from the configured or reported extended-length ability.
pub(crate) fn capabilities(
    setting: ExtendedLength,
    reported_max_data: Option<u32>,
    interface: Interface,
    atr: Vec<u8>,
) -> Capabilities {
    match (setting, reported_max_data) {
        (ExtendedLength::ShortOnly, _) | (ExtendedLength::Auto, None | Some(0)) => {
            Capabilities::short(interface, atr)
        }
        (ExtendedLength::Supported, _) => Capabilities::extended(interface, atr),
        (ExtendedLength::Auto, Some(n)) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let full = Capabilities::extended(interface, atr);
            let command = full.max_command_len.min(4 + 3 + n.min(65_535) + 2);
            let response = full.max_response_len.min(n.min(65_536) + 2);
            full.with_limits(command, response)
        }
    }
}

/// Contact or contactless, from the ATR's shape and the reader's name.
///
/// PC/SC part 3 readers synthesise `3B 8n 80 01 <historical bytes> TCK` for ISO 14443-4 cards;
/// a Sony PaSoRi synthesises `3B F5 91 00 FF 91 81 71 FE 40 00 42 00 01 …`. Reader names of
/// contactless slots usually say so ("PICC", "Contactless", "CL Reader", "PaSoRi", "FeliCa",
/// "NFC"). Dual readers expose contact and contactless slots as separate readers.
pub fn detect_interface(atr: &[u8], reader_name: &str) -> Interface {
    let synthesised_part3 = matches!(atr, [0x3B, t0, 0x80, 0x01, ..] if t0 & 0xF0 == 0x80);
    let pasori = atr.starts_with(&[
        0x3B, 0xF5, 0x91, 0x00, 0xFF, 0x91, 0x81, 0x71, 0xFE, 0x40, 0x00, 0x42, 0x00, 0x01,
    ]);
    let name = reader_name.to_ascii_lowercase();
    let contactless_name = ["picc", "contactless", " cl ", "pasori", "felica", "nfc"]
        .iter()
        .any(|hint| name.contains(hint));
    if synthesised_part3 || pasori || contactless_name {
        Interface::Contactless
    } else if atr.first().is_some_and(|b| *b == 0x3B || *b == 0x3F) {
        Interface::Contact
    } else {
        Interface::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_tlv_properties_feature() {
        // VERIFY_PIN_DIRECT (06) then GET_TLV_PROPERTIES (12).
        let features = [
            0x06, 4, 0x42, 0x33, 0x00, 0x06, 0x12, 4, 0x42, 0x33, 0x00, 0x12,
        ];
        assert_eq!(feature_code(&features, 0x12), Some(0x4233_0012));
        assert_eq!(feature_code(&features, 0x13), None);
        assert_eq!(feature_code(&[0x12, 4, 1, 2], 0x12), None);
    }

    #[test]
    fn reads_max_apdu_data_size() {
        // wLcdLayout (01, 2 bytes), then dwMaxAPDUDataSize = 65536.
        let props = [0x01, 2, 0, 0, 0x0A, 4, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(max_apdu_data_size(&props), Some(65_536));
        assert_eq!(max_apdu_data_size(&[0x0A, 4, 0, 0, 0, 0]), Some(0));
        assert_eq!(max_apdu_data_size(&[0x01, 2, 0]), None);
    }

    #[test]
    fn capabilities_follow_the_reader() {
        let c = capabilities(
            ExtendedLength::Auto,
            Some(65_536),
            Interface::Contact,
            vec![],
        );
        assert!(c.extended_length);
        assert_eq!(c.max_command_len, 65_544);
        assert_eq!(c.max_response_len, 65_538);
        let c = capabilities(ExtendedLength::Auto, Some(1024), Interface::Contact, vec![]);
        assert!(c.extended_length);
        assert_eq!(c.max_response_data(), 1024);
        let c = capabilities(ExtendedLength::Auto, Some(0), Interface::Contact, vec![]);
        assert!(!c.extended_length);
        let c = capabilities(ExtendedLength::Auto, None, Interface::Contact, vec![]);
        assert!(!c.extended_length);
        let c = capabilities(
            ExtendedLength::ShortOnly,
            Some(65_536),
            Interface::Contact,
            vec![],
        );
        assert!(!c.extended_length);
        let c = capabilities(ExtendedLength::Supported, None, Interface::Contact, vec![]);
        assert!(c.extended_length);
    }

    #[test]
    fn tells_contact_from_contactless() {
        let contact = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];
        let contact2 = [
            0x3B, 0xC5, 0xFF, 0x81, 0x31, 0xFB, 0x45, 0x80, 0x73, 0xC6, 0x01, 0x00, 0x00,
        ];
        let cl = [
            0x3B, 0x88, 0x80, 0x01, 0x00, 0x00, 0x05, 0xE0, 0xB3, 0x81, 0xA1, 0x00, 0x7F,
        ];
        let pasori = [
            0x3B, 0xF5, 0x91, 0x00, 0xFF, 0x91, 0x81, 0x71, 0xFE, 0x40, 0x00, 0x42, 0x00, 0x01,
            0x00, 0xD1, 0xD6,
        ];
        assert_eq!(
            detect_interface(&contact, "Gemalto PC Twin Reader 00 00"),
            Interface::Contact
        );
        assert_eq!(
            detect_interface(&contact2, "Virtual PCD 00 00"),
            Interface::Contact
        );
        assert_eq!(
            detect_interface(&cl, "Virtual PCD 00 00"),
            Interface::Contactless
        );
        assert_eq!(detect_interface(&pasori, "x"), Interface::Contactless);
        assert_eq!(
            detect_interface(&contact, "ACS ACR1252 1S CL Reader PICC 0"),
            Interface::Contactless
        );
        assert_eq!(
            detect_interface(&[], "Virtual PCD 00 00"),
            Interface::Unknown
        );
    }

    #[test]
    fn vpcd_is_known_to_pass_extended_apdus() {
        let n = known_reader_max_data("Virtual PCD 00 01").unwrap();
        let c = capabilities(ExtendedLength::Auto, Some(n), Interface::Contact, vec![]);
        assert!(c.extended_length);
        assert!(c.max_command_len <= 65_535);
        assert_eq!(known_reader_max_data("Gemalto PC Twin Reader 00 00"), None);
    }

    proptest! {
        #[test]
        fn driver_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), t in any::<u8>()) {
            let _ = feature_code(&bytes, t);
            let _ = max_apdu_data_size(&bytes);
            let _ = detect_interface(&bytes, "r");
        }
    }
}
