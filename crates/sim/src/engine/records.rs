//! Byte encodings shared by the card applications: BER-TLV framing, dates, the Japanese-era
//! year, the `90`/`91` public-key encoding and card-verifiable certificates.

use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};

use crate::image::Date;

/// A BER-TLV data object: `tag` bytes as given, definite length, value.
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 5 + value.len());
    out.extend_from_slice(tag);
    push_len(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

fn push_len(len: usize, out: &mut Vec<u8>) {
    let bytes = (len as u64).to_be_bytes();
    let significant = bytes.iter().skip_while(|b| **b == 0).count();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        out.push(0x80 | significant as u8);
        out.extend_from_slice(&bytes[bytes.len() - significant..]);
    }
}

/// `YYYYMMDD` in ASCII.
pub(crate) fn yyyymmdd(date: Date) -> String {
    format!("{:04}{:02}{:02}", date.year, date.month, date.day)
}

/// The two-digit Japanese-era year of a date (B.7: 照合番号B uses the era year; 1980-02-17 is
/// 昭和55 → `55`).
pub(crate) fn era_year(date: Date) -> u16 {
    let key = (date.year, date.month, date.day);
    // First day of each era and the offset from the Gregorian year.
    let offset = if key >= (2019, 5, 1) {
        2018 // 令和
    } else if key >= (1989, 1, 8) {
        1988 // 平成
    } else if key >= (1926, 12, 25) {
        1925 // 昭和
    } else if key >= (1912, 7, 30) {
        1911 // 大正
    } else {
        1867 // 明治
    };
    date.year.saturating_sub(offset) % 100
}

/// `YYMMDD` with the Japanese-era year: the birth-date key and the start of 照合番号B.
pub(crate) fn era_yymmdd(date: Date) -> String {
    format!("{:02}{:02}{:02}", era_year(date), date.month, date.day)
}

/// RSA public key as the card encodes it inside records and CVCs: `90 exponent` `91 modulus`.
pub(crate) fn public_key_do(key: &PrivateKey) -> Vec<u8> {
    let mut modulus = key.n_bytes().into_vec();
    let size = key.size();
    if modulus.len() < size {
        let mut padded = vec![0; size - modulus.len()];
        padded.extend_from_slice(&modulus);
        modulus = padded;
    }
    let mut out = tlv(&[0x90], &key.e_bytes());
    out.extend_from_slice(&tlv(&[0x91], &modulus));
    out
}

/// RSASSA-PKCS1-v1_5 with SHA-256 over `message`. Signing with a valid key and a 32-byte hash
/// cannot fail; should it, the record carries an empty signature that no verifier accepts.
pub(crate) fn sign_sha256(key: &PrivateKey, message: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(message);
    key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
        .unwrap_or_default()
}

/// RSASSA-PKCS1-v1_5 over a DigestInfo that names SHA-256 but carries `content` in its digest
/// field: the form of the card-face record signature, whose "digest" is three SHA-256 values
/// concatenated. A failure gives an empty signature, as in [`sign_sha256`].
pub(crate) fn sign_sha256_digest_info_raw(key: &PrivateKey, content: &[u8]) -> Vec<u8> {
    // DigestInfo ::= SEQUENCE { SEQUENCE { OID id-sha256, NULL }, OCTET STRING content }.
    const ALGORITHM: [u8; 15] = [
        0x30, 0x0D, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
    ];
    let octets = tlv(&[0x04], content);
    let info = tlv(&[0x30], &[&ALGORITHM[..], &octets].concat());
    key.sign(Pkcs1v15Sign::new_unprefixed(), &info)
        .unwrap_or_default()
}

/// SHA-256 as an array.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A 16-byte CVC key identifier: 7 ASCII digits, `08 05`, a 3-digit generation, 4 padding bytes
/// (B.7).
pub(crate) fn key_id(digits: &str, generation: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (slot, b) in out
        .iter_mut()
        .zip(digits.bytes().chain(std::iter::repeat(b'0')).take(7))
    {
        *slot = b;
    }
    out[7] = 0x08;
    out[8] = 0x05;
    for (slot, b) in out[9..12]
        .iter_mut()
        .zip(generation.bytes().chain(std::iter::repeat(b'0')))
    {
        *slot = b;
    }
    out
}

/// A card-verifiable certificate `7F21 { 5F4E body · 5F37 signature }` (B.6 `0004`): the body is
/// issuer key id ‖ subject key id ‖ public key; the signature is PKCS#1 v1.5/SHA-256 over the
/// `5F4E` object by `signer`.
pub(crate) fn cvc(
    issuer: &[u8; 16],
    subject: &[u8; 16],
    key: &PrivateKey,
    signer: &PrivateKey,
) -> Vec<u8> {
    tlv(&[0x7F, 0x21], &cvc_contents(issuer, subject, key, signer))
}

/// The contents of a CVC's `7F21` template, `5F4E body · 5F37 signature`: the form MF-level
/// GET DATA answers (B.8).
pub(crate) fn cvc_contents(
    issuer: &[u8; 16],
    subject: &[u8; 16],
    key: &PrivateKey,
    signer: &PrivateKey,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(300);
    body.extend_from_slice(issuer);
    body.extend_from_slice(subject);
    body.extend_from_slice(&public_key_do(key));
    let body_do = tlv(&[0x5F, 0x4E], &body);
    let signature = sign_sha256(signer, &body_do);
    let mut inner = body_do;
    inner.extend_from_slice(&tlv(&[0x5F, 0x37], &signature));
    inner
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(year: u16, month: u8, day: u8) -> Date {
        Date { year, month, day }
    }

    #[test]
    fn era_years_follow_the_era_boundaries() {
        assert_eq!(era_yymmdd(d(1980, 2, 17)), "550217");
        assert_eq!(era_yymmdd(d(2020, 2, 24)), "020224");
        assert_eq!(era_year(d(2019, 4, 30)), 31); // 平成31
        assert_eq!(era_year(d(2019, 5, 1)), 1); // 令和元年
        assert_eq!(era_year(d(1989, 1, 7)), 64); // 昭和64
        assert_eq!(era_year(d(1989, 1, 8)), 1); // 平成元年
        assert_eq!(era_year(d(1926, 12, 24)), 15); // 大正15
    }

    #[test]
    fn tlv_lengths_use_the_long_form_above_127() {
        assert_eq!(tlv(&[0xDF, 0x25], b"1"), vec![0xDF, 0x25, 0x01, b'1']);
        let long = tlv(&[0x91], &[0u8; 256]);
        assert_eq!(&long[..4], &[0x91, 0x82, 0x01, 0x00]);
        let mid = tlv(&[0x91], &[0u8; 200]);
        assert_eq!(&mid[..3], &[0x91, 0x81, 200]);
    }

    #[test]
    fn key_ids_are_sixteen_bytes_in_the_card_format() {
        let id = key_id("6000033", "001");
        assert_eq!(&id[..7], b"6000033");
        assert_eq!(&id[7..9], &[0x08, 0x05]);
        assert_eq!(&id[9..12], b"001");
        assert_eq!(&id[12..], &[0, 0, 0, 0]);
    }
}
