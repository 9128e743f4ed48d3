//! What a simulated card holds: its files, keys, secrets and abilities, as plain data.
//!
//! A [`CardImage`] is built from a profile and the test PKI, and loaded into the card engine.
//! It is the contract between the two: the engine never generates keys or certificates, the PKI
//! never answers APDUs.

use rsa::PrivateKey as RsaPrivateKey;
use zeroize::Zeroizing;

/// A calendar date (Gregorian): the card crate's.
pub use mynacard_card::Date;

/// Sex code as written on the card (JIS X 0303 style: `1` male, `2` female, `9` not applicable,
/// `0` unknown); kept as the card's ASCII digit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SexCode(pub u8);

/// The person the card was issued to. Test data only.
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    /// 氏名: family and given name separated by U+3000.
    pub name: String,
    /// 住所.
    pub address: String,
    /// 生年月日.
    pub birth_date: Date,
    /// 性別.
    pub sex: SexCode,
    /// The 12-digit individual number (a test value with a valid check digit).
    pub my_number: Zeroizing<String>,
}

impl core::fmt::Debug for Person {
    // Test data still never goes to logs by default.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Person(<redacted>)")
    }
}

/// Facts printed on the card face and held by the common AP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardFace {
    /// Card expiry date (the face's 有効期限).
    pub expiry: Date,
    /// 4-digit security code printed on the face (part of 照合番号B).
    pub security_code: Zeroizing<String>,
    /// 15-digit card serial (common AP record).
    pub serial: String,
    /// 5-digit municipality code (全国地方公共団体コード).
    pub municipality_code: String,
    /// Face photo bytes (JPEG 2000 greyscale on a real card; any bytes here).
    pub photo: Vec<u8>,
    /// Name image (PNG).
    pub name_image: Vec<u8>,
    /// Address image (PNG).
    pub address_image: Vec<u8>,
    /// Security-code image (PNG).
    pub security_code_image: Vec<u8>,
}

/// Token label of JPKI EF `0006`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// `JPKIAPICCTOKEN2`: the My Number Card.
    Card,
    /// `JPKIAPGPSETOKEN`: the Android smartphone certificate (auth certificate behind the PIN).
    AndroidSe,
    /// `JPKIAPIOSTOKEN`: the iPhone certificate.
    Ios,
}

impl TokenKind {
    /// The ASCII label.
    pub const fn label(self) -> &'static str {
        match self {
            TokenKind::Card => "JPKIAPICCTOKEN2",
            TokenKind::AndroidSe => "JPKIAPGPSETOKEN",
            TokenKind::Ios => "JPKIAPIOSTOKEN",
        }
    }
}

/// A key on the card with its certificate.
#[derive(Clone)]
pub struct Credential {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key.
    pub key: RsaPrivateKey,
}

impl core::fmt::Debug for Credential {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Credential")
            .field("cert_der_len", &self.cert_der.len())
            .finish_non_exhaustive()
    }
}

/// A PIN or password with its retry limit and the tries left when the card is made.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// The value as the card compares it (ASCII bytes).
    pub value: Zeroizing<Vec<u8>>,
    /// Retry limit (3, 5 or 10).
    pub limit: u8,
    /// Tries left at issue (equal to `limit` for a fresh card, 0 for a blocked one).
    pub remaining: u8,
}

impl core::fmt::Debug for Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Secret")
            .field("limit", &self.limit)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

/// How the card and its reader carry APDUs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkProfile {
    /// The ATR the card (or the reader, for contactless) presents.
    pub atr: Vec<u8>,
    /// Contact or contactless.
    pub contactless: bool,
    /// Whether extended-length APDUs are accepted (a `6700` answers them otherwise).
    pub extended_length: bool,
    /// The most response data in one response; longer answers come as `61xx` + GET RESPONSE.
    pub max_response_data: usize,
    /// A reader or phone NFC stack that caps answers without saying so (the capabilities it
    /// reports do not show it); `None` for one that carries what the card sends.
    pub answer_cap: Option<AnswerCap>,
}

/// How a capping reader shortens answers longer than its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerCap {
    /// The most data bytes it passes on in one response.
    pub max: usize,
    /// What becomes of the rest.
    pub rest: CappedRest,
}

/// What a capping reader does with the bytes beyond its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CappedRest {
    /// `61xx`: the rest waits for GET RESPONSE.
    GetResponse,
    /// Dropped, with the card's status word (`9000`): a file read comes back short before its
    /// end, and the rest must be read at its offset; a signature cannot be recovered.
    Dropped,
}

/// Everything a simulated card holds.
#[derive(Debug, Clone)]
pub struct CardImage {
    /// Profile name this image was built from.
    pub profile: String,
    /// Token kind (EF `0006` label).
    pub token: TokenKind,
    /// Authentication certificate and key (`000A`/`0017`).
    pub auth: Credential,
    /// Authentication CA certificate (`000B`), DER.
    pub auth_ca_cert: Vec<u8>,
    /// Signing certificate and key (`0001`/`001A`); `None` for under-15 and face-auth cards.
    pub sign: Option<Credential>,
    /// Signing CA certificate (`0002`), DER.
    pub sign_ca_cert: Vec<u8>,
    /// Authentication PIN (`0018`); `None` for a face-authentication-only card.
    pub auth_pin: Option<Secret>,
    /// Signing password (`001B`); `None` when there is no signing certificate.
    pub sign_password: Option<Secret>,
    /// Text AP PIN (`0011`).
    pub text_pin: Option<Secret>,
    /// Limit and remaining tries for 照合番号A/B (value derived from the person and face).
    pub collation_limit: u8,
    /// The person.
    pub person: Person,
    /// The card face and common-AP facts.
    pub face: CardFace,
    /// The text AP's own key (`DF51` of EF `0007`), which answers `80 2A 00 00` there.
    pub text_ap_key: RsaPrivateKey,
    /// The card key (visual `DF24` = `DF12` = `DF42`), which answers the card-presence
    /// signature; covered by the signed card face, and distinct from the key that signs it.
    pub card_key: RsaPrivateKey,
    /// Key signing the visual AP's records (`DF13`, `DF28`, `DF43`), certified by the visual
    /// AP's CVC.
    pub visual_record_key: RsaPrivateKey,
    /// Key signing the text AP's integrity record (`DF33`) and `DF52`, certified by the text AP's
    /// CVC.
    pub text_record_key: RsaPrivateKey,
    /// The card-verifiable certificates, issued by the test PKI's CVC authorities.
    pub cvcs: crate::cvc::CardCvcs,
    /// Internal-authentication key of the common AP (`0019`).
    pub common_ap_key: RsaPrivateKey,
    /// Key a terminal delivers a secure-messaging session key to (text AP EF `0006` publishes
    /// its public half; SET SESSION KEY decrypts with it).
    pub text_sm_key: RsaPrivateKey,
    /// Link properties.
    pub link: LinkProfile,
}

/// Width and height of the rendered individual number (visual AP EF `0005`, B.7).
pub const MY_NUMBER_IMAGE_SIZE: (u32, u32) = (72, 12);

/// The contact ATR a contactless image answers in MF GET DATA `5F51` (a contactless reader
/// shows an ATR of its own, so the image's link ATR is not the chip's).
pub const DEFAULT_CONTACT_ATR: [u8; 13] = [
    0x3B, 0xC5, 0xFF, 0x81, 0x31, 0xFB, 0x45, 0x80, 0x73, 0xC6, 0x01, 0x00, 0x00,
];

/// 5×7 digit glyphs, one row per byte, the five low bits left to right.
const DIGIT_GLYPHS: [[u8; 7]; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
];

/// Whether pixel (`x`, `y`) of a 72×12 rendering of `digits` is ink: one 6×12 cell per digit,
/// the 5×7 glyph at column 0 and row 2 of its cell. Non-digits leave their cell blank.
pub fn digit_ink(digits: &[u8], x: u32, y: u32) -> bool {
    let (cell, col) = ((x / 6) as usize, x % 6);
    let Some(row) = y.checked_sub(2).filter(|r| *r < 7) else {
        return false;
    };
    if col >= 5 {
        return false;
    }
    match digits.get(cell) {
        Some(d) if d.is_ascii_digit() => {
            let glyph = DIGIT_GLYPHS[usize::from(d - b'0')];
            glyph[row as usize] & (0x10 >> col) != 0
        }
        _ => false,
    }
}

impl CardImage {
    /// The individual number as the visual AP renders it in EF `0005`: a 1-bit greyscale PNG of
    /// 72×12 pixels, the twelve digits in a 5×7 font (see [`digit_ink`]). Deterministic.
    pub fn my_number_image(&self) -> Vec<u8> {
        let digits = self.person.my_number.as_bytes();
        let (width, height) = MY_NUMBER_IMAGE_SIZE;
        crate::profile::png::bilevel(width, height, |x, y| digit_ink(digits, x, y))
    }

    /// 照合番号B as printed on this card's face (what a kiosk's camera reads): the birth date in
    /// its era year, the expiry year and the security code, derived by
    /// [`mynacard_card::CollationB::new`].
    ///
    /// # Errors
    /// [`mynacard_card::PinFormatError`] when the face cannot form one (a security code that is
    /// not four digits, a birth date before 明治).
    pub fn collation_number_b(
        &self,
    ) -> Result<mynacard_card::CollationB, mynacard_card::PinFormatError> {
        mynacard_card::CollationB::new(
            self.person.birth_date,
            self.face.expiry.year,
            &self.face.security_code,
        )
    }

    /// The chip's contact ATR: the link ATR on a contact link, [`DEFAULT_CONTACT_ATR`] behind a
    /// contactless reader.
    pub fn contact_atr(&self) -> &[u8] {
        if self.link.contactless || self.link.atr.first() != Some(&0x3B) {
            &DEFAULT_CONTACT_ATR
        } else {
            &self.link.atr
        }
    }
}
