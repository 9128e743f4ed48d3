//! The My Number Card's catalogue: its applications, files, keys and proprietary commands.
//!
//! One owner for these facts: the session, the registration machine, the simulated card, the
//! trace redactor and the CLI's APDU explainer all take them from here. Sections `B.x` are the
//! project's card-protocol notes (`docs/card-protocol.md`).

use mynacard_apdu::Command;
use mynacard_apdu::commands::KeyRef;
use zeroize::Zeroizing;

/// Application identifiers (B.1).
pub mod aid {
    /// 公的個人認証AP (JPKI).
    pub const JPKI: [u8; 10] = [0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
    /// 券面事項入力補助AP (text AP).
    pub const TEXT: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x08];
    /// 券面事項確認AP (visual AP).
    pub const VISUAL: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x02];
    /// 共通カードAP (common AP).
    pub const COMMON: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x01, 0x00];
    /// 住基AP.
    pub const JUKI: [u8; 10] = [0xD3, 0x92, 0x10, 0x00, 0x31, 0x00, 0x01, 0x01, 0x04, 0x01];
    /// GlobalPlatform issuer security domain; selecting it restores the power-on state.
    pub const GP_ISD: [u8; 7] = [0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00];
}

/// Elementary files and key references of the JPKI AP (B.2).
pub mod jpki {
    /// 署名用電子証明書: readable only after the signing password.
    pub const SIGN_CERT: u16 = 0x0001;
    /// 署名用CA証明書.
    pub const SIGN_CA_CERT: u16 = 0x0002;
    /// Token information (`CK_TOKEN_INFO`, 160 bytes).
    pub const TOKEN_INFO: u16 = 0x0006;
    /// Certificate availability (3 bytes; `8F 8F 00` = both certificates).
    pub const AVAILABILITY: u16 = 0x0008;
    /// 利用者証明用電子証明書.
    pub const AUTH_CERT: u16 = 0x000A;
    /// 利用者証明用CA証明書.
    pub const AUTH_CA_CERT: u16 = 0x000B;
    /// Authentication private key.
    pub const AUTH_KEY: u16 = 0x0017;
    /// Authentication PIN (4 digits, 3 tries).
    pub const AUTH_PIN: u16 = 0x0018;
    /// Signing private key.
    pub const SIGN_KEY: u16 = 0x001A;
    /// Signing password (6–16 of A–Z/0–9, 5 tries).
    pub const SIGN_PIN: u16 = 0x001B;
}

/// Elementary files and key references of the text AP (B.6).
pub mod text {
    /// My Number (`FF 10 0C` + 12 digits + `FF FF`).
    pub const MY_NUMBER: u16 = 0x0001;
    /// The four attributes (`FF 20 …`).
    pub const ATTRIBUTES: u16 = 0x0002;
    /// Integrity record (`FF 30 …`).
    pub const INTEGRITY: u16 = 0x0003;
    /// Card-verifiable certificate.
    pub const CVC: u16 = 0x0004;
    /// AP basic information.
    pub const BASIC_INFO: u16 = 0x0005;
    /// Public key a terminal delivers a secure-messaging session key to (`A1 { 90 · 91 }`).
    pub const SM_KEY: u16 = 0x0006;
    /// The AP's signing key with a signature over it (`FF50 { DF51 · DF52 }`).
    pub const SIGNED_KEY: u16 = 0x0007;
    /// 4-digit PIN (3 tries).
    pub const PIN: u16 = 0x0011;
    /// 照合番号A (the My Number).
    pub const PIN_A: u16 = 0x0014;
    /// 照合番号B (birth date + expiry year + security code).
    pub const PIN_B: u16 = 0x0015;
}

/// Elementary files and key references of the visual AP (B.7).
pub mod visual {
    /// Age record.
    pub const AGE: u16 = 0x0001;
    /// Card face record.
    pub const FACE: u16 = 0x0002;
    /// AP basic data.
    pub const BASIC_DATA: u16 = 0x0003;
    /// Card-verifiable certificate.
    pub const CVC: u16 = 0x0004;
    /// Rendered My Number.
    pub const MY_NUMBER_IMAGE: u16 = 0x0005;
    /// Birth-date key.
    pub const BIRTH_DATE_KEY: u16 = 0x0011;
    /// 照合番号B.
    pub const PIN_B: u16 = 0x0012;
    /// 照合番号A.
    pub const PIN_A: u16 = 0x0013;
}

/// Elementary files of the common AP (B.8).
pub mod common {
    /// Record file holding the card serial, municipality code and expiry.
    pub const SERIAL_RECORD: u16 = 0x0001;
    /// Internal-authentication key.
    pub const INTERNAL_AUTH_KEY: u16 = 0x0019;
    /// The 4-digit PIN, changed with [`change_key`](super::change_key). The 住基AP holds a
    /// separate key under the same id.
    pub const PIN: u16 = 0x001C;
}

/// Data objects GET DATA answers at the MF level: in the power-on state or after selecting the
/// GP issuer security domain (B.8). The card answers the value without the tag.
pub mod mf {
    /// Issuer identification: a 16-byte key identifier.
    pub const ISSUER_ID: u16 = 0x0042;
    /// Card identification number (ASCII).
    pub const CARD_ID: u16 = 0x0045;
    /// GlobalPlatform card recognition data.
    pub const CARD_RECOGNITION: u16 = 0x0066;
    /// Issuing municipality code (5 ASCII digits).
    pub const MUNICIPALITY_CODE: u16 = 0x00F0;
    /// Card expiry (`YYYYMMDD`).
    pub const EXPIRY: u16 = 0x00F2;
    /// Key identifier of the intermediate CVC key.
    pub const INTERMEDIATE_KEY_ID: u16 = 0x00F7;
    /// CVC from the root to the intermediate key (large: needs extended Le).
    pub const UPPER_CVC: u16 = 0x00F8;
    /// CVC from the intermediate to the lower key (large; absent on older cards).
    pub const LOWER_CVC: u16 = 0x7F21;
    /// The contact-interface ATR without its initial `TS`.
    pub const CONTACT_ATR: u16 = 0x5F51;
}

/// The signing schemes of COMPUTE DIGITAL SIGNATURE, selected by P1 (B.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignScheme {
    /// `00`: PKCS#1 v1.5 padding of the supplied bytes (a DigestInfo, 1–245 bytes).
    Pkcs1DigestInfo,
    /// `01`: the card hashes with SHA-256 and pads the bare hash.
    Pkcs1CardSha256Bare,
    /// `02`: a supplied 32-byte SHA-256 hash; the card wraps it in a DigestInfo.
    Pkcs1Sha256Hash,
    /// `03`: the card hashes with SHA-256 and builds the DigestInfo (input ≤ 255 bytes).
    Pkcs1CardSha256,
    /// `04`: RSASSA-PSS over a supplied SHA-256 hash.
    PssSha256Hash,
    /// `05`: the card hashes with SHA-256, then RSASSA-PSS.
    PssCardSha256,
}

impl SignScheme {
    /// The P1 byte.
    pub const fn p1(self) -> u8 {
        match self {
            SignScheme::Pkcs1DigestInfo => 0x00,
            SignScheme::Pkcs1CardSha256Bare => 0x01,
            SignScheme::Pkcs1Sha256Hash => 0x02,
            SignScheme::Pkcs1CardSha256 => 0x03,
            SignScheme::PssSha256Hash => 0x04,
            SignScheme::PssCardSha256 => 0x05,
        }
    }

    /// The scheme of a P1 byte.
    pub const fn from_p1(p1: u8) -> Option<SignScheme> {
        Some(match p1 {
            0x00 => SignScheme::Pkcs1DigestInfo,
            0x01 => SignScheme::Pkcs1CardSha256Bare,
            0x02 => SignScheme::Pkcs1Sha256Hash,
            0x03 => SignScheme::Pkcs1CardSha256,
            0x04 => SignScheme::PssSha256Hash,
            0x05 => SignScheme::PssCardSha256,
            _ => return None,
        })
    }
}

/// COMPUTE DIGITAL SIGNATURE (proprietary, CLA 80): `80 2A P1 P2 Lc DATA 00` (B.5). With
/// [`KeyRef::Current`] the key EF must be selected first; `KeyRef::Sfi(0x17)` (`97`) or
/// `KeyRef::Sfi(0x1A)` (`9A`) name the key directly.
pub fn compute_signature(scheme: SignScheme, key: KeyRef, data: impl Into<Vec<u8>>) -> Command {
    Command::new(0x80, 0x2A, scheme.p1(), key.p2())
        .with_data(data)
        .with_ne(256)
}

/// JICSAP CHANGE KEY, the PIN change of the common AP and the 住基AP: `80 32 00 P2 Lc NEW`
/// after VERIFY of the old value (B.3). Secret data.
pub fn change_key(key: KeyRef, new: Zeroizing<Vec<u8>>) -> Command {
    Command::new(0x80, 0x32, 0x00, key.p2()).with_sensitive_data(new)
}
