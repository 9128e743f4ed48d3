//! 共通カードAP (common AP): the record with the card serial, municipality code and expiry, and
//! the internal-authentication key `0019` (B.8).
//!
//! The AP's own PIN (`001C`, changed with the JICSAP `80 32`) is not simulated.

use mynacard_apdu::commands::common as fid;

use super::files::{Body, Ef, Files, KeySlot};
use super::records::yyyymmdd;
use crate::image::CardImage;

/// Record 1 of EF `0001`: simple-TLV `01 1C` + serial (15) ‖ municipality code (5) ‖ expiry
/// `YYYYMMDD` (8), all ASCII digits.
pub(super) fn serial_record(image: &CardImage) -> Vec<u8> {
    let digits = format!(
        "{}{}{}",
        image.face.serial,
        image.face.municipality_code,
        yyyymmdd(image.face.expiry)
    );
    let mut record = vec![0x01, digits.len().min(0xFE) as u8];
    record.extend_from_slice(digits.as_bytes());
    record
}

/// The files of the common AP for an image.
pub(super) fn files(image: &CardImage) -> Files {
    Files(vec![
        Ef::free(
            fid::SERIAL_RECORD,
            Body::Records(vec![serial_record(image)]),
        ),
        Ef::free(
            fid::INTERNAL_AUTH_KEY,
            Body::Key(KeySlot::CommonInternalAuth),
        ),
    ])
}
