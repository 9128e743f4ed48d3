//! 公的個人認証AP (JPKI): certificates, token information, the two keys and their PINs (B.2),
//! and COMPUTE DIGITAL SIGNATURE with the P1 `00`–`05` schemes (B.5).

use mynacard_apdu::StatusWord;
use mynacard_card::catalogue::jpki as fid;
use rand_chacha::ChaCha20Rng;
use rsa::pss::Pss;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};

use super::files::{Body, Ef, Files, KeySlot};
use crate::image::{CardImage, TokenKind};
use crate::state::SecretId;

/// Length of EF `0006` (`CK_TOKEN_INFO` with 32-bit big-endian `CK_ULONG`s).
pub(crate) const TOKEN_INFO_LEN: usize = 160;

/// The files of the JPKI AP for an image.
pub(super) fn files(image: &CardImage) -> Files {
    let mut efs = Vec::with_capacity(12);
    // B.2: the auth certificate is free on a card but behind the auth PIN on an Android phone.
    let auth_cert_gate: &'static [SecretId] = match image.token {
        TokenKind::AndroidSe => &[SecretId::JpkiAuthPin],
        TokenKind::Card | TokenKind::Ios => &[],
    };
    efs.push(Ef::gated(
        fid::AUTH_CERT,
        auth_cert_gate,
        Body::Binary(image.auth.cert_der.clone()),
    ));
    efs.push(Ef::free(
        fid::AUTH_CA_CERT,
        Body::Binary(image.auth_ca_cert.clone()),
    ));
    efs.push(Ef::free(fid::AUTH_KEY, Body::Key(KeySlot::JpkiAuth)));
    if image.auth_pin.is_some() {
        efs.push(Ef::free(fid::AUTH_PIN, Body::Secret(SecretId::JpkiAuthPin)));
    }
    if let Some(sign) = &image.sign {
        // B.2: the signing certificate only after the signing password (else 6982).
        efs.push(Ef::gated(
            fid::SIGN_CERT,
            &[SecretId::JpkiSignPassword],
            Body::Binary(sign.cert_der.clone()),
        ));
        efs.push(Ef::free(fid::SIGN_KEY, Body::Key(KeySlot::JpkiSign)));
    }
    if image.sign_password.is_some() {
        efs.push(Ef::free(
            fid::SIGN_PIN,
            Body::Secret(SecretId::JpkiSignPassword),
        ));
    }
    efs.push(Ef::free(
        fid::SIGN_CA_CERT,
        Body::Binary(image.sign_ca_cert.clone()),
    ));
    efs.push(Ef::free(fid::TOKEN_INFO, Body::Binary(token_info(image))));
    efs.push(Ef::free(
        fid::AVAILABILITY,
        Body::Binary(availability(image).to_vec()),
    ));
    Files(efs)
}

/// EF `0008`: `8F 8F 00` when both certificates are present; a first byte other than `8F`
/// means no signing certificate (B.2).
fn availability(image: &CardImage) -> [u8; 3] {
    let sign = if image.sign.is_some() { 0x8F } else { 0x00 };
    [sign, 0x8F, 0x00]
}

/// EF `0006`: a PKCS#11 `CK_TOKEN_INFO` with 32-bit big-endian integers; the label is the token
/// kind, space-padded to 32 bytes, and the version slots hold ASCII `"03"`/`"01"` (B.2).
fn token_info(image: &CardImage) -> Vec<u8> {
    fn padded(text: &str, len: usize) -> impl Iterator<Item = u8> + '_ {
        text.bytes().chain(std::iter::repeat(b' ')).take(len)
    }
    let mut out = Vec::with_capacity(TOKEN_INFO_LEN);
    out.extend(padded(image.token.label(), 32)); // label
    out.extend(padded("J-LIS TEST", 32)); // manufacturerID
    out.extend(padded("mynacard-sim", 16)); // model
    out.extend(padded("", 16)); // serialNumber: not the card serial
    // flags: CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_TOKEN_INITIALIZED
    out.extend_from_slice(&0x0000_040Cu32.to_be_bytes());
    let (min_pin, max_pin) = (4u32, 16u32);
    for value in [
        0u32, // ulMaxSessionCount
        0,    // ulSessionCount
        0,    // ulMaxRwSessionCount
        0,    // ulRwSessionCount
        max_pin, min_pin, 0, 0, 0, 0, // memory counters unknown
    ] {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out.extend_from_slice(b"03"); // hardwareVersion
    out.extend_from_slice(b"01"); // firmwareVersion
    out.extend(padded("", 16)); // utcTime
    out
}

/// COMPUTE DIGITAL SIGNATURE with the scheme of P1 (B.5). Returns the signature, or the status
/// word the card answers for bad parameters or input sizes.
pub(super) fn compute_signature(
    key: &PrivateKey,
    p1: u8,
    data: &[u8],
    rng: &mut ChaCha20Rng,
) -> Result<Vec<u8>, StatusWord> {
    let max_digest_info = key.size().saturating_sub(11);
    let signed = match p1 {
        // Pad the supplied bytes (normally a DigestInfo).
        0x00 => {
            if data.is_empty() || data.len() > max_digest_info {
                return Err(StatusWord::WrongLength);
            }
            key.sign(Pkcs1v15Sign::new_unprefixed(), data)
        }
        // The card hashes and pads the bare hash.
        0x01 => {
            if data.is_empty() {
                return Err(StatusWord::WrongLength);
            }
            key.sign(Pkcs1v15Sign::new_unprefixed(), &Sha256::digest(data))
        }
        // A supplied SHA-256 hash, wrapped in a DigestInfo by the card.
        0x02 => {
            if data.len() != 32 {
                return Err(StatusWord::WrongLength);
            }
            key.sign(Pkcs1v15Sign::new::<Sha256>(), data)
        }
        // The card hashes (input up to 255 bytes) and builds the DigestInfo.
        0x03 => {
            if data.is_empty() || data.len() > 255 {
                return Err(StatusWord::WrongLength);
            }
            key.sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(data))
        }
        // RSASSA-PSS over a supplied SHA-256 hash (random salt of the hash length).
        0x04 => {
            if data.len() != 32 {
                return Err(StatusWord::WrongLength);
            }
            key.sign_with_rng(rng, Pss::<Sha256>::new(), data)
        }
        // The card hashes, then RSASSA-PSS.
        0x05 => {
            if data.is_empty() {
                return Err(StatusWord::WrongLength);
            }
            key.sign_with_rng(rng, Pss::<Sha256>::new(), &Sha256::digest(data))
        }
        _ => return Err(StatusWord::IncorrectP1P2),
    };
    signed.map_err(|_| StatusWord::ConditionsNotSatisfied)
}
