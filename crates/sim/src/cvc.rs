//! The simulated card's card-verifiable certificates (CVCs) and the test authorities that issue
//! them, shaped as a real J-LIS test card's (`../shared/data/jlis-test-card/`).
//!
//! A real card carries six distinct keys around its CVCs: the visual AP's record-signing key
//! (certified by the visual AP CVC, EF `0004`), the text AP's record-signing key (text AP EF
//! `0004`), the card key (`DF24` = `DF12` = `DF42`, which answers the presence challenge), the
//! text AP's own key (`DF51` of EF `0007`), and the two keys of the MF-level chain (`00F8`
//! certifies an intermediate key per issuing municipality, `7F21` a key below it). The simulator
//! keeps them distinct in the same way.
//!
//! The simulator's authorities have **key ids of their own** (`6900020`, `6900023`, `6900033`):
//! test-hierarchy ids (leading `6`) that collide with no published J-LIS id, so a client that
//! trusts the J-LIS test keys reports an unknown authority for them, never a forged J-LIS
//! certificate. They are trusted only where a caller adds them on a test opt-in.
//!
//! Encoding (checked on the real test card's files): `7F21 { 5F4E body · 5F37 signature }`; the
//! body is issuer key id ‖ subject key id ‖ `90 e · 91 n`; the signature is RSASSA-PKCS1-v1_5
//! with SHA-256 over the **value** of `5F4E`. The MF objects carry the template's contents after
//! a `4D` header list that announces `42` (16), `5F20` (16) and `5F49` (the key's length).

use rsa::PrivateKey;
use rsa::traits::PublicKeyParts;

use crate::engine::records::{public_key_do, sign_sha256, tlv};

/// What a simulated CVC authority certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CvcRole {
    /// The MF-level chain (GET DATA `00F8`).
    CardChain,
    /// The visual AP's record-signing key (EF `0004`).
    Visual,
    /// The text AP's record-signing key (EF `0004`).
    Text,
}

impl CvcRole {
    /// All three roles.
    pub const ALL: [CvcRole; 3] = [CvcRole::CardChain, CvcRole::Visual, CvcRole::Text];

    /// The seven digits of the simulator's authority for this role (J-LIS uses `600002x`/
    /// `600003x` on test cards; these collide with none of them).
    pub const fn authority_digits(self) -> &'static str {
        match self {
            CvcRole::CardChain => "6900020",
            CvcRole::Visual => "6900023",
            CvcRole::Text => "6900033",
        }
    }

    /// The two digits after the municipality code in subject ids (`21` visual, `31` text and
    /// `30` the MF intermediate on the real test card).
    pub(crate) const fn subject_suffix(self) -> &'static str {
        match self {
            CvcRole::CardChain => "30",
            CvcRole::Visual => "21",
            CvcRole::Text => "31",
        }
    }

    /// The key label in the test PKI.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            CvcRole::CardChain => "card-chain",
            CvcRole::Visual => "visual",
            CvcRole::Text => "text",
        }
    }

    /// The key id of the simulator's authority for this role.
    pub fn authority_id(self) -> [u8; 16] {
        key_id(self.authority_digits(), "001")
    }
}

/// A 16-byte CVC key id as cards write it: 7 ASCII digits, `08 05`, a 3-digit generation and 4
/// padding bytes.
pub fn key_id(digits: &str, generation: &str) -> [u8; 16] {
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

/// The subject key id of a key certified for `role` by the authority of an issuing
/// municipality: its 5-digit code, the role's two digits, `08 05`, generation `000` (`002` for
/// the MF intermediate), as on the real test card (`1322121`, `1322131`, `1322130`).
pub fn subject_id(role: CvcRole, municipality_code: &str) -> [u8; 16] {
    let digits = format!("{municipality_code:0>5.5}{}", role.subject_suffix());
    let generation = if role == CvcRole::CardChain {
        "002"
    } else {
        "000"
    };
    key_id(&digits, generation)
}

/// The subject key id of the lower MF-level CVC (`7F21`), as on the real test card.
pub fn lower_subject_id() -> [u8; 16] {
    key_id("0000050", "001")
}

/// The `5F4E` and `5F37` objects of a CVC of `subject_key`, signed by `issuer_key` over the
/// `5F4E` value.
fn signed_objects(
    issuer: &[u8; 16],
    subject: &[u8; 16],
    subject_key: &PrivateKey,
    issuer_key: &PrivateKey,
) -> Vec<u8> {
    let mut body = Vec::with_capacity(300);
    body.extend_from_slice(issuer);
    body.extend_from_slice(subject);
    body.extend_from_slice(&public_key_do(subject_key));
    let signature = sign_sha256(issuer_key, &body);
    let mut out = tlv(&[0x5F, 0x4E], &body);
    out.extend_from_slice(&tlv(&[0x5F, 0x37], &signature));
    out
}

/// A CVC as the applications' EF `0004` holds it: `7F21 { 5F4E · 5F37 }`.
pub fn ef_cvc(
    issuer: &[u8; 16],
    subject: &[u8; 16],
    subject_key: &PrivateKey,
    issuer_key: &PrivateKey,
) -> Vec<u8> {
    tlv(
        &[0x7F, 0x21],
        &signed_objects(issuer, subject, subject_key, issuer_key),
    )
}

/// A CVC as MF-level GET DATA answers it (`00F8`, `7F21`): the template's contents, with the
/// `4D` header list first.
pub fn mf_cvc_contents(
    issuer: &[u8; 16],
    subject: &[u8; 16],
    subject_key: &PrivateKey,
    issuer_key: &PrivateKey,
) -> Vec<u8> {
    let key_len = public_key_do(subject_key).len();
    // 5F49's length as the card writes it: the long form with two bytes (82 01 09 for 265).
    let mut headers = vec![0x42, 0x10, 0x5F, 0x20, 0x10, 0x5F, 0x49, 0x82];
    headers.extend_from_slice(&(key_len as u16).to_be_bytes());
    let mut out = tlv(&[0x4D], &headers);
    out.extend_from_slice(&signed_objects(issuer, subject, subject_key, issuer_key));
    out
}

/// The CVCs one simulated card holds, issued when the image is built (the engine never signs
/// with an authority's key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardCvcs {
    /// Visual AP EF `0004`: certifies the visual record-signing key.
    pub visual: Vec<u8>,
    /// Text AP EF `0004`: certifies the text record-signing key.
    pub text: Vec<u8>,
    /// MF GET DATA `00F8`: the chain root certifies the municipality's intermediate key.
    pub mf_upper: Vec<u8>,
    /// MF GET DATA `7F21`: the intermediate key certifies the card's lower chain key.
    pub mf_lower: Vec<u8>,
}

/// The public modulus of a key, left-padded to the key size (for callers that build trust
/// material from the simulator's authorities).
pub fn modulus(key: &PrivateKey) -> Vec<u8> {
    let mut n = key.n_bytes().into_vec();
    let size = key.size();
    if n.len() < size {
        let mut padded = vec![0; size - n.len()];
        padded.extend_from_slice(&n);
        n = padded;
    }
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ids_have_the_card_shape_and_collide_with_no_jlis_id() {
        let id = key_id("6000033", "001");
        assert_eq!(&id[..7], b"6000033");
        assert_eq!(&id[7..9], &[0x08, 0x05]);
        assert_eq!(&id[9..12], b"001");
        assert_eq!(&id[12..], &[0, 0, 0, 0]);
        for role in CvcRole::ALL {
            let digits = role.authority_digits();
            assert!(digits.starts_with('6'));
            assert!(!["6000020", "6000023", "6000033"].contains(&digits));
            assert!(!["5000020", "5000023", "5000033"].contains(&digits));
        }
        assert_eq!(&subject_id(CvcRole::Visual, "13221")[..7], b"1322121");
        assert_eq!(&subject_id(CvcRole::CardChain, "13221")[9..12], b"002");
    }
}
