//! 券面事項入力補助AP (text AP): the My Number, the four attributes with their offset table,
//! the integrity record, the CVC, AP basic information, the secure-messaging key-delivery key
//! and the signed AP key (B.6).
//!
//! Secure messaging (SET SESSION KEY under the EF `0006` key, then `08` class SELECT, VERIFY
//! and READ BINARY) lives in the `sm` module.

use mynacard_card::catalogue::text as fid;

use super::files::{Body, Ef, Files};
use super::records::{public_key_do, sha256, sign_sha256, tlv};
use crate::cvc::{CvcRole, subject_id};
use crate::image::CardImage;
use crate::state::SecretId;

/// Builds `outer_tag { table_tag <offsets> · objects… }`: a record whose objects are located by
/// 16-bit big-endian offsets from the start of the file (B.6 `0002`, B.7 `0002`).
pub(super) fn offset_record(outer_tag: &[u8], table_tag: &[u8], objects: &[Vec<u8>]) -> Vec<u8> {
    let table_len = 2 * objects.len();
    let table_do_len = table_tag.len() + 1 + table_len;
    let inner_len = table_do_len + objects.iter().map(Vec::len).sum::<usize>();
    // The outer header length depends only on the inner length.
    let header_len = tlv(outer_tag, &vec![0; inner_len]).len() - inner_len;
    let mut offsets = Vec::with_capacity(objects.len());
    let mut at = header_len + table_do_len;
    for object in objects {
        offsets.push(at);
        at += object.len();
    }
    let table: Vec<u8> = offsets
        .iter()
        .flat_map(|o| (*o as u16).to_be_bytes())
        .collect();
    let mut inner = tlv(table_tag, &table);
    for object in objects {
        inner.extend_from_slice(object);
    }
    tlv(outer_tag, &inner)
}

/// EF `0001`: `FF 10 0C <12 digits>` followed by `FF FF` (17 bytes, B.6).
fn my_number_file(image: &CardImage) -> Vec<u8> {
    let mut file = tlv(&[0xFF, 0x10], image.person.my_number.as_bytes());
    file.extend_from_slice(&[0xFF, 0xFF]);
    file
}

/// The files of the text AP for an image.
pub(super) fn files(image: &CardImage) -> Files {
    let person = &image.person;
    let my_number = my_number_file(image);
    let attributes: Vec<Vec<u8>> = vec![
        tlv(&[0xDF, 0x22], person.name.as_bytes()),
        tlv(&[0xDF, 0x23], person.address.as_bytes()),
        tlv(&[0xDF, 0x24], person.birth_date.to_yyyymmdd().as_bytes()),
        tlv(&[0xDF, 0x25], &[person.sex.0]),
    ];
    let attributes_file = offset_record(&[0xFF, 0x20], &[0xDF, 0x21], &attributes);

    // EF 0003: digests of EF 0001 as stored (padding included) and of EF 0002's attribute
    // objects (offset table skipped). As on real cards, the AP key signs SHA-256 over the DF31
    // and DF32 objects as written, tag and length headers included; the key is the record key
    // the CVC certifies.
    let h1 = sha256(&my_number);
    let h2 = sha256(&attributes.concat());
    let mut integrity = tlv(&[0xDF, 0x31], &h1);
    integrity.extend_from_slice(&tlv(&[0xDF, 0x32], &h2));
    let signature = sign_sha256(&image.text_record_key, &integrity);
    integrity.extend_from_slice(&tlv(&[0xDF, 0x33], &signature));
    let integrity = tlv(&[0xFF, 0x30], &integrity);

    let subject = subject_id(CvcRole::Text, &image.face.municipality_code);

    let basic_info = basic_info(image, &subject);
    // EF 0006: the bare public key a terminal encrypts an SM session key to, under tag A1.
    let sm_key = tlv(&[0xA1], &public_key_do(&image.text_sm_key));
    // EF 0007: the AP key (the one answering 80 2A) and a signature over its DF51 object by the
    // record key the CVC certifies (so on the real test card).
    let mut signed_key = tlv(&[0xDF, 0x51], &public_key_do(&image.text_ap_key));
    let signature = sign_sha256(&image.text_record_key, &signed_key);
    signed_key.extend_from_slice(&tlv(&[0xDF, 0x52], &signature));
    let signed_key = tlv(&[0xFF, 0x50], &signed_key);
    const PIN_OR_COLLATION: &[SecretId] = &[
        SecretId::TextPin,
        SecretId::TextCollationA,
        SecretId::TextCollationB,
    ];

    let mut efs = vec![
        Ef::gated(
            fid::MY_NUMBER,
            &[SecretId::TextPin, SecretId::TextCollationA],
            Body::Binary(my_number),
        ),
        // B.6: 照合番号A does not open the attributes.
        Ef::gated(
            fid::ATTRIBUTES,
            &[SecretId::TextPin, SecretId::TextCollationB],
            Body::Binary(attributes_file),
        ),
        Ef::gated(fid::INTEGRITY, PIN_OR_COLLATION, Body::Binary(integrity)),
        Ef::free(fid::CVC, Body::Binary(image.cvcs.text.clone())),
        Ef::free(fid::BASIC_INFO, Body::Binary(basic_info)),
        Ef::gated(fid::SM_KEY, PIN_OR_COLLATION, Body::Binary(sm_key)),
        Ef::gated(fid::SIGNED_KEY, PIN_OR_COLLATION, Body::Binary(signed_key)),
        Ef::free(0x0008, Body::Binary(vec![0xFF; 16])),
        Ef::free(0x0012, Body::Secret(SecretId::TextBlockedKey)),
        Ef::free(fid::PIN_A, Body::Secret(SecretId::TextCollationA)),
        Ef::free(fid::PIN_B, Body::Secret(SecretId::TextCollationB)),
    ];
    if image.text_pin.is_some() {
        efs.push(Ef::free(fid::PIN, Body::Secret(SecretId::TextPin)));
    }
    Files(efs)
}

/// EF `0005`, AP basic information: `FF40 { DF41 AP id · DF42 key id · DF43 128 bytes }`, the
/// 128 bytes being 32 opaque bytes then 96 × `FF` as on real cards (nothing signs them).
fn basic_info(image: &CardImage, subject: &[u8; 16]) -> Vec<u8> {
    // The AP id as the real test card writes it.
    let mut body = tlv(&[0xDF, 0x41], &[0x01, 0x03, 0x0E, 0x01]);
    body.extend_from_slice(&tlv(&[0xDF, 0x42], subject));
    let mut trailing = sha256(&public_key_do(&image.text_ap_key)).to_vec();
    trailing.resize(128, 0xFF);
    body.extend_from_slice(&tlv(&[0xDF, 0x43], &trailing));
    tlv(&[0xFF, 0x40], &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mynacard_apdu::tlv::ber;

    #[test]
    fn offset_table_points_at_each_object() {
        let objects = vec![
            tlv(&[0xDF, 0x22], "山田\u{3000}花子".as_bytes()),
            tlv(&[0xDF, 0x23], &[b'x'; 200]),
            tlv(&[0xDF, 0x24], b"19800217"),
            tlv(&[0xDF, 0x25], b"2"),
        ];
        let file = offset_record(&[0xFF, 0x20], &[0xDF, 0x21], &objects);
        let (outer, rest) = ber::parse_one(&file).unwrap();
        assert!(rest.is_empty());
        assert_eq!(outer.tag, 0xFF20);
        let table = ber::find(outer.value, 0xDF21).unwrap().unwrap();
        assert_eq!(table.value.len(), 8);
        for (i, object) in objects.iter().enumerate() {
            let at = usize::from(u16::from_be_bytes([
                table.value[2 * i],
                table.value[2 * i + 1],
            ]));
            assert_eq!(&file[at..at + object.len()], object.as_slice());
        }
    }
}
