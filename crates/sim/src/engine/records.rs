//! Byte encodings shared by the card applications: BER-TLV framing and the `90`/`91` public-key
//! encoding (card-verifiable certificates: [`crate::cvc`]).

use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};

/// A BER-TLV data object: `tag` bytes as given, definite length, value.
pub(crate) fn tlv(tag: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tag.len() + 5 + value.len());
    out.extend_from_slice(tag);
    push_len(value.len(), &mut out);
    out.extend_from_slice(value);
    out
}

/// A BER length as the card writes it (checked on a real test card's files): the short form
/// below 128, otherwise `82` and two bytes, never `81` (169 is `82 00 A9`); three bytes only
/// beyond 65535.
fn push_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else if let Ok(two) = u16::try_from(len) {
        out.push(0x82);
        out.extend_from_slice(&two.to_be_bytes());
    } else {
        let bytes = (len as u64).to_be_bytes();
        let significant = bytes.iter().skip_while(|b| **b == 0).count();
        out.push(0x80 | significant as u8);
        out.extend_from_slice(&bytes[bytes.len() - significant..]);
    }
}

/// RSA public key as the card encodes it inside records and CVCs: `90 exponent` `91 modulus`.
pub(crate) fn public_key_do(key: &PrivateKey) -> Vec<u8> {
    let modulus = crate::cvc::modulus(key);
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

/// RSASSA-PKCS1-v1_5 over the card-face DigestInfo
/// ([`mynacard_cert::digest_info::card_face`]): it names SHA-256 but carries the three segment
/// digests. A failure gives an empty signature, as in [`sign_sha256`].
pub(crate) fn sign_card_face(key: &PrivateKey, segments: [&[u8]; 3]) -> Vec<u8> {
    let info = mynacard_cert::digest_info::card_face::of_segments(segments);
    key.sign(Pkcs1v15Sign::new_unprefixed(), &info)
        .unwrap_or_default()
}

pub(crate) use mynacard_cert::digest_info::sha256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_lengths_use_the_two_byte_form_above_127() {
        assert_eq!(tlv(&[0xDF, 0x25], b"1"), vec![0xDF, 0x25, 0x01, b'1']);
        assert_eq!(tlv(&[0xDF, 0x25], &[0; 127])[..3], [0xDF, 0x25, 0x7F]);
        let long = tlv(&[0x91], &[0u8; 256]);
        assert_eq!(&long[..4], &[0x91, 0x82, 0x01, 0x00]);
        // As the real card writes DF25 (169 bytes): 82 00 A9, not 81 A9.
        let mid = tlv(&[0x91], &[0u8; 169]);
        assert_eq!(&mid[..4], &[0x91, 0x82, 0x00, 0xA9]);
        assert_eq!(
            tlv(&[0x91], &vec![0; 70_000])[..5],
            [0x91, 0x83, 0x01, 0x11, 0x70]
        );
    }
}
