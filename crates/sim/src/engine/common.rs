//! 共通カードAP (common AP): the record with the card serial, municipality code and expiry, the
//! internal-authentication key `0019` and the 4-digit PIN `001C` (B.8), which changes with JICSAP
//! CHANGE KEY `80 32` rather than CHANGE REFERENCE DATA (B.3).

use mynacard_card::catalogue::common as fid;

use super::files::{Body, Ef, Files, KeySlot};
use super::secrets::card_pin_source;
use crate::image::CardImage;
use crate::state::SecretId;

/// Record 1 of EF `0001`: simple-TLV `01 1C` + serial (15) ‖ municipality code (5) ‖ expiry
/// `YYYYMMDD` (8), all ASCII digits.
pub(super) fn serial_record(image: &CardImage) -> Vec<u8> {
    let digits = format!(
        "{}{}{}",
        image.face.serial,
        image.face.municipality_code,
        image.face.expiry.to_yyyymmdd()
    );
    let mut record = vec![0x01, digits.len().min(0xFE) as u8];
    record.extend_from_slice(digits.as_bytes());
    record
}

/// The files of the common AP for an image.
pub(super) fn files(image: &CardImage) -> Files {
    let mut efs = vec![
        Ef::free(
            fid::SERIAL_RECORD,
            Body::Records(vec![serial_record(image)]),
        ),
        Ef::free(
            fid::INTERNAL_AUTH_KEY,
            Body::Key(KeySlot::CommonInternalAuth),
        ),
    ];
    if card_pin_source(image).is_some() {
        efs.push(Ef::free(fid::PIN, Body::Secret(SecretId::CommonPin)));
    }
    Files(efs)
}
