//! 券面事項確認AP (visual AP): the age record, the card-face record with its signature, AP basic
//! data and the CVC (B.7). Opened by 照合番号B or A; the birth-date key opens the age record.
//! Its key also answers `80 2A 00 00` without a PIN (card presence). EF `0005`, the My Number
//! rendered as a 72×12 1-bit PNG with the AP key and a signature, opens with 照合番号A only.

use mynacard_card::catalogue::visual as fid;

use super::files::{Body, Ef, Files};
use super::records::{public_key_do, sign_card_face, sign_sha256, tlv};
use super::text::offset_record;
use crate::cvc::{CvcRole, subject_id};
use crate::image::CardImage;
use crate::state::SecretId;

/// The card-face record `FF20` (B.7 `0002`). `DF24` is the card key; the `DF28` signature is
/// PKCS#1 v1.5 by the record key the CVC certifies (not the card key, as on a real card) over a SHA-256 DigestInfo whose digest field holds SHA-256(DF22–DF24) ‖ SHA-256(DF25–DF26) ‖
/// SHA-256(DF27), 96 bytes (the objects hashed as encoded, headers included), as real cards sign
/// it; the expiry (`DF29`) and the security-code image (`DF2A`) come after it and are not covered.
fn face_record(image: &CardImage) -> Vec<u8> {
    let card_key = &image.card_key;
    let face = &image.face;
    let segment1 = [
        tlv(
            &[0xDF, 0x22],
            image.person.birth_date.to_yyyymmdd().as_bytes(),
        ),
        tlv(&[0xDF, 0x23], &[image.person.sex.0]),
        tlv(&[0xDF, 0x24], &public_key_do(card_key)),
    ]
    .concat();
    let segment2 = [
        tlv(&[0xDF, 0x25], &face.name_image),
        tlv(&[0xDF, 0x26], &face.address_image),
    ]
    .concat();
    let segment3 = tlv(&[0xDF, 0x27], &face.photo);
    let signature = sign_card_face(&image.visual_record_key, [&segment1, &segment2, &segment3]);
    let objects = vec![
        tlv(
            &[0xDF, 0x22],
            image.person.birth_date.to_yyyymmdd().as_bytes(),
        ),
        tlv(&[0xDF, 0x23], &[image.person.sex.0]),
        tlv(&[0xDF, 0x24], &public_key_do(card_key)),
        tlv(&[0xDF, 0x25], &face.name_image),
        tlv(&[0xDF, 0x26], &face.address_image),
        segment3,
        tlv(&[0xDF, 0x28], &signature),
        tlv(&[0xDF, 0x29], face.expiry.to_yyyymmdd().as_bytes()),
        tlv(&[0xDF, 0x2A], &face.security_code_image),
    ];
    offset_record(&[0xFF, 0x20], &[0xDF, 0x21], &objects)
}

/// The age record `FF10 { DF11 birth date · DF12 public key · DF13 signature }`; the signature
/// covers the `DF11` and `DF12` objects and is made by the record key; `DF12` is the card key.
fn age_record(image: &CardImage) -> Vec<u8> {
    let mut signed = tlv(
        &[0xDF, 0x11],
        image.person.birth_date.to_yyyymmdd().as_bytes(),
    );
    signed.extend_from_slice(&tlv(&[0xDF, 0x12], &public_key_do(&image.card_key)));
    let signature = sign_sha256(&image.visual_record_key, &signed);
    signed.extend_from_slice(&tlv(&[0xDF, 0x13], &signature));
    tlv(&[0xFF, 0x10], &signed)
}

/// AP basic data `FF30 { DF31 AP id · DF32 key id · DF33 version · DF34 municipality code ·
/// DF35 key id ‖ signature }` (B.7 `0003`).
fn basic_data(image: &CardImage, subject: &[u8; 16]) -> Vec<u8> {
    let mut body = tlv(&[0xDF, 0x31], &[0x06, 0x03, 0x0E, 0x01]);
    body.extend_from_slice(&tlv(&[0xDF, 0x32], subject));
    // One byte, `00` on the real test card (its meaning is not known).
    body.extend_from_slice(&tlv(&[0xDF, 0x33], &[0x00]));
    body.extend_from_slice(&tlv(&[0xDF, 0x34], image.face.municipality_code.as_bytes()));
    let signature = sign_sha256(&image.visual_record_key, &body);
    let mut tail = subject.to_vec();
    tail.extend_from_slice(&signature);
    body.extend_from_slice(&tlv(&[0xDF, 0x35], &tail));
    tlv(&[0xFF, 0x30], &body)
}

/// The rendered My Number `FF40 { DF41 PNG · DF42 public key · DF43 signature }` (B.7 `0005`);
/// the signature covers the `DF41` and `DF42` objects, as the age record's does.
fn my_number_image_record(image: &CardImage) -> Vec<u8> {
    let mut signed = tlv(&[0xDF, 0x41], &image.my_number_image());
    signed.extend_from_slice(&tlv(&[0xDF, 0x42], &public_key_do(&image.card_key)));
    let signature = sign_sha256(&image.visual_record_key, &signed);
    signed.extend_from_slice(&tlv(&[0xDF, 0x43], &signature));
    tlv(&[0xFF, 0x40], &signed)
}

/// The files of the visual AP for an image.
pub(super) fn files(image: &CardImage) -> Files {
    let subject = subject_id(CvcRole::Visual, &image.face.municipality_code);
    Files(vec![
        Ef::gated(
            fid::AGE,
            &[SecretId::VisualBirthDate],
            Body::Binary(age_record(image)),
        ),
        Ef::gated(
            fid::FACE,
            &[SecretId::VisualCollationA, SecretId::VisualCollationB],
            Body::Binary(face_record(image)),
        ),
        Ef::free(fid::BASIC_DATA, Body::Binary(basic_data(image, &subject))),
        Ef::free(fid::CVC, Body::Binary(image.cvcs.visual.clone())),
        // B.7: 照合番号A only; B opens the face but not this.
        Ef::gated(
            fid::MY_NUMBER_IMAGE,
            &[SecretId::VisualCollationA],
            Body::Binary(my_number_image_record(image)),
        ),
        Ef::free(0x0006, Body::Binary(vec![0xFF; 16])),
        Ef::free(fid::BIRTH_DATE_KEY, Body::Secret(SecretId::VisualBirthDate)),
        Ef::free(fid::PIN_B, Body::Secret(SecretId::VisualCollationB)),
        Ef::free(fid::PIN_A, Body::Secret(SecretId::VisualCollationA)),
    ])
}
