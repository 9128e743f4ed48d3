//! 券面事項入力補助AP (text AP): the four attributes (name, address, birth date, sex), their
//! integrity record, and the individual number.
//!
//! The individual number is read only by [`VerifiedText::read_my_number`] and
//! [`SecureText::read_my_number`]; nothing else in this crate reads EF `0001`.
//!
//! # Reading over secure messaging (recommended on contactless links)
//!
//! Read in clear, the card answers the name, address, birth date and sex as plain UTF-8 that any
//! receiver in radio range can record. [`VerifiedText::secure_session`] opens a secure-messaging
//! session (after the PIN) and returns a [`SecureText`] whose reads travel AES-encrypted; see
//! [`crate::sm`] for what that protects and what it does not (the PIN itself is sent in clear
//! before, as the card demands).
//!
//! ```no_run
//! # async fn demo<C: mynacard_transport::CardChannel>(channel: C) -> Result<(), mynacard_card::Error> {
//! use mynacard_card::{AttemptPolicy, CvcTrust, Pin, Session};
//! let mut session = Session::new(channel);
//! let mut text = session.text().await?;
//! let pin = Pin::new("1234").map_err(|_| mynacard_card::Error::InvalidInput { what: "PIN" })?;
//! let mut verified = text.verify_pin(&pin, AttemptPolicy::KeepLastAttempt).await?;
//! let mut secure = verified.secure_session().await?;
//! // Production cards' certificates only: a test card's are reported as unanchored.
//! let attributes = secure
//!     .read_attributes_checked(&CvcTrust::production())
//!     .await?
//!     .into_trusted()?;
//! # let _ = attributes;
//! # Ok(())
//! # }
//! ```

use core::fmt;

use crate::catalogue::text;
use mynacard_apdu::tlv::{Tlv, ber};
use mynacard_apdu::{LengthEncoding, StatusWord};
use mynacard_transport::CardChannel;

use crate::crypto::{HashAlgorithm, sha256};
use crate::cvc::{Checked, CvCertificate, CvcScope, CvcTrust};
use crate::date::Date;
use crate::pin::{AttemptPolicy, CollationB, MyNumber, Pin, PinKind, PinStatus};
use crate::session::{Application, Extent, How, Session};
use crate::sm::{self, Seed, SmChannel, SmError};
use crate::{CardPublicKey, Error, Result};

/// The text AP's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextKey {
    /// The 4-digit PIN (`0011`): opens everything.
    Pin,
    /// 照合番号A (`0014`, the individual number): opens the individual number.
    CollationA,
    /// 照合番号B (`0015`): opens the attributes.
    CollationB,
}

impl TextKey {
    const fn pin(self) -> PinKind {
        match self {
            TextKey::Pin => PinKind::TextPin,
            TextKey::CollationA => PinKind::TextCollationA,
            TextKey::CollationB => PinKind::TextCollationB,
        }
    }
}

/// 性別 as the card codes it (JIS X 0303 style). Unknown codes are kept, not rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Sex {
    /// `1`.
    Male,
    /// `2`.
    Female,
    /// `0`: not known.
    NotKnown,
    /// `9`: not applicable.
    NotApplicable,
    /// Any other byte.
    Other(u8),
}

impl Sex {
    /// Decodes the card's ASCII code.
    pub const fn from_code(code: u8) -> Sex {
        match code {
            b'1' => Sex::Male,
            b'2' => Sex::Female,
            b'0' => Sex::NotKnown,
            b'9' => Sex::NotApplicable,
            other => Sex::Other(other),
        }
    }

    /// `male`, `female`, `not-known`, `not-applicable` or `other` (the names
    /// `mynacard-cert` gives the certificate's codes, where they exist).
    pub const fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::NotKnown => "not-known",
            Sex::NotApplicable => "not-applicable",
            Sex::Other(_) => "other",
        }
    }
}

/// The four attributes (基本4情報) of EF `0002`. Personal data: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Attributes {
    /// 氏名 (family and given name separated by U+3000).
    pub name: String,
    /// 住所.
    pub address: String,
    /// 生年月日.
    pub birth_date: Date,
    /// 性別.
    pub sex: Sex,
    digest_source: Vec<u8>,
}

impl fmt::Debug for Attributes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Attributes(<redacted>)")
    }
}

/// The objects inside a constructed record, in order, with their encoded bytes. Filler (`00` or
/// `FF` where a tag would start) ends the list.
pub(crate) fn objects<'a>(value: &'a [u8], what: &'static str) -> Result<Vec<(Tlv<'a>, &'a [u8])>> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(&first) = rest.first() {
        if first == 0x00 || (first == 0xFF && rest.get(1).is_none_or(|b| *b == 0xFF)) {
            break;
        }
        let (tlv, after) = ber::parse_one(rest).map_err(Error::tlv(what))?;
        let encoded = &rest[..tlv.total_len()];
        out.push((tlv, encoded));
        rest = after;
    }
    Ok(out)
}

/// The value of the record with `tag` at the start of `bytes`.
pub(crate) fn record<'a>(bytes: &'a [u8], tag: u32, what: &'static str) -> Result<&'a [u8]> {
    let (outer, _) = ber::parse_one(bytes).map_err(Error::tlv(what))?;
    if outer.tag != tag {
        return Err(Error::Malformed {
            what: "record has an unexpected tag",
        });
    }
    Ok(outer.value)
}

pub(crate) fn field<'a>(objects: &[(Tlv<'a>, &'a [u8])], tag: u32) -> Result<&'a [u8]> {
    objects
        .iter()
        .find(|(t, _)| t.tag == tag)
        .map(|(t, _)| t.value)
        .ok_or(Error::Malformed {
            what: "record lacks a required field",
        })
}

fn utf8(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Malformed {
        what: "text field is not UTF-8",
    })
}

impl Attributes {
    /// Parses EF `0002` (`FF20 { DF21 offsets, DF22 name, DF23 address, DF24 birth date,
    /// DF25 sex }`), by tag: the offset table is not trusted.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`] or [`Error::Malformed`].
    pub fn parse(bytes: &[u8]) -> Result<Attributes> {
        const WHAT: &str = "attributes";
        let value = record(bytes, 0xFF20, WHAT)?;
        let objs = objects(value, WHAT)?;
        // The integrity digest covers the record's value without the offset table.
        let digest_source = match objs.first() {
            Some((t, enc)) if t.tag == 0xDF21 => value[enc.len()..].to_vec(),
            _ => value.to_vec(),
        };
        Ok(Attributes {
            name: utf8(field(&objs, 0xDF22)?)?,
            address: utf8(field(&objs, 0xDF23)?)?,
            birth_date: Date::parse_yyyymmdd(field(&objs, 0xDF24)?).ok_or(Error::Malformed {
                what: "birth date is not YYYYMMDD",
            })?,
            sex: Sex::from_code(*field(&objs, 0xDF25)?.first().ok_or(Error::Malformed {
                what: "sex is empty",
            })?),
            digest_source,
        })
    }
}

/// The integrity record of EF `0003`: SHA-256 of the individual-number file (as stored, padding
/// included), SHA-256 of the attributes (without the offset table), and a signature over both
/// made by the key certified in EF `0004`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IntegrityRecord {
    /// `DF31`.
    pub my_number_digest: [u8; 32],
    /// `DF32`.
    pub attributes_digest: [u8; 32],
    /// `DF33`.
    pub signature: Vec<u8>,
    signed: Vec<u8>,
}

impl IntegrityRecord {
    /// Parses EF `0003`.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`] or [`Error::Malformed`].
    pub fn parse(bytes: &[u8]) -> Result<IntegrityRecord> {
        const WHAT: &str = "integrity record";
        let value = record(bytes, 0xFF30, WHAT)?;
        let objs = objects(value, WHAT)?;
        let digest = |tag| -> Result<[u8; 32]> {
            field(&objs, tag)?.try_into().map_err(|_| Error::Malformed {
                what: "integrity digest is not 32 bytes",
            })
        };
        let mut signed = Vec::new();
        for (t, enc) in &objs {
            if t.tag == 0xDF33 {
                break;
            }
            signed.extend_from_slice(enc);
        }
        Ok(IntegrityRecord {
            my_number_digest: digest(0xDF31)?,
            attributes_digest: digest(0xDF32)?,
            signature: field(&objs, 0xDF33)?.to_vec(),
            signed,
        })
    }

    /// Checks the record's signature with the key of the application's certificate:
    /// PKCS#1 v1.5 with SHA-256 over the `DF31` and `DF32` objects as written (tag and length
    /// headers included), the form real cards carry.
    ///
    /// # Errors
    /// [`Error::SignatureLength`] or [`Error::SignatureInvalid`].
    pub fn verify_signature(&self, cvc: &CvCertificate) -> Result<()> {
        let info = crate::crypto::digest_info(HashAlgorithm::Sha256, &sha256(&self.signed))?;
        cvc.public_key
            .verify_pkcs1(&info, &self.signature, "text AP integrity record")
    }

    /// Checks the attributes' digest.
    ///
    /// # Errors
    /// [`Error::DigestMismatch`].
    pub fn check_attributes(&self, attributes: &Attributes) -> Result<()> {
        if sha256(&attributes.digest_source) != self.attributes_digest {
            return Err(Error::DigestMismatch { what: "attributes" });
        }
        Ok(())
    }

    fn check_my_number_file(&self, physical: &[u8]) -> Result<()> {
        if sha256(physical) != self.my_number_digest {
            return Err(Error::DigestMismatch {
                what: "individual number",
            });
        }
        Ok(())
    }
}

/// The text AP, selected.
#[derive(Debug)]
pub struct TextAp<'s, C> {
    session: &'s mut Session<C>,
    epoch: u64,
}

impl<C: CardChannel> Session<C> {
    /// Selects the text AP.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn text(&mut self) -> Result<TextAp<'_, C>> {
        let epoch = self.open(Application::Text).await?;
        Ok(TextAp {
            session: self,
            epoch,
        })
    }
}

impl<C: CardChannel> TextAp<'_, C> {
    /// The retry counter of a key. Spends nothing.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn pin_status(&mut self, key: TextKey) -> Result<PinStatus> {
        self.session.ensure(Application::Text, self.epoch).await?;
        self.session.pin_status(key.pin()).await
    }

    /// Reads the application's card-verifiable certificate (free).
    ///
    /// # Errors
    /// Card, transport and parse errors.
    pub async fn read_cvc(&mut self) -> Result<CvCertificate> {
        self.session.ensure(Application::Text, self.epoch).await?;
        let bytes = self
            .session
            .read_file(text::CVC, Extent::Tlv, "text AP certificate")
            .await?;
        CvCertificate::parse(&bytes)
    }

    async fn verify(
        &mut self,
        key: TextKey,
        value: zeroize::Zeroizing<Vec<u8>>,
        policy: AttemptPolicy,
    ) -> Result<VerifiedText<'_, C>> {
        self.session.ensure(Application::Text, self.epoch).await?;
        self.session.verify(key.pin(), value, policy).await?;
        Ok(VerifiedText {
            session: &mut *self.session,
            epoch: self.epoch,
            key,
        })
    }

    /// Verifies the 4-digit PIN (retry counter first; refuses when blocked or, unless allowed, on
    /// the last try).
    ///
    /// # Errors
    /// As [`crate::jpki::JpkiAp::verify_auth`].
    pub async fn verify_pin(
        &mut self,
        pin: &Pin,
        policy: AttemptPolicy,
    ) -> Result<VerifiedText<'_, C>> {
        self.verify(TextKey::Pin, pin.bytes(), policy).await
    }

    /// Verifies 照合番号B, which opens the attributes but not the individual number.
    ///
    /// # Errors
    /// As [`TextAp::verify_pin`].
    pub async fn verify_collation_b(
        &mut self,
        code: &CollationB,
        policy: AttemptPolicy,
    ) -> Result<VerifiedText<'_, C>> {
        self.verify(TextKey::CollationB, code.bytes(), policy).await
    }

    /// Verifies 照合番号A (the individual number itself), which opens the individual number
    /// file but not the attributes.
    ///
    /// # Errors
    /// As [`TextAp::verify_pin`].
    pub async fn verify_collation_a(
        &mut self,
        my_number: &MyNumber,
        policy: AttemptPolicy,
    ) -> Result<VerifiedText<'_, C>> {
        self.verify(TextKey::CollationA, my_number.bytes(), policy)
            .await
    }
}

/// The text AP with a key verified.
#[derive(Debug)]
pub struct VerifiedText<'v, C> {
    session: &'v mut Session<C>,
    epoch: u64,
    key: TextKey,
}

impl<C> Drop for VerifiedText<'_, C> {
    fn drop(&mut self) {
        self.session.forget_selection();
    }
}

impl<C: CardChannel> VerifiedText<'_, C> {
    fn check(&mut self) -> Result<()> {
        self.session.ensure_verified(Application::Text, self.epoch)
    }

    async fn read_attributes_file(&mut self) -> Result<Attributes> {
        self.check()?;
        let bytes = self
            .session
            .read_file(text::ATTRIBUTES, Extent::Tlv, "attributes")
            .await?;
        Attributes::parse(&bytes)
    }

    /// Reads the four attributes without checking them.
    ///
    /// # Errors
    /// Card (`6982` after 照合番号A), transport and parse errors.
    pub async fn read_attributes(&mut self) -> Result<Attributes> {
        self.read_attributes_file().await
    }

    /// Reads the integrity record.
    ///
    /// # Errors
    /// Card, transport and parse errors.
    pub async fn read_integrity(&mut self) -> Result<IntegrityRecord> {
        self.check()?;
        let bytes = self
            .session
            .read_file(text::INTEGRITY, Extent::Tlv, "integrity record")
            .await?;
        IntegrityRecord::parse(&bytes)
    }

    /// Reads the four attributes and checks them: the digest in the integrity record, the
    /// record's signature with the key of the application's certificate, and that certificate
    /// under `trust` (the answer is in [`Checked::anchor`]).
    ///
    /// # Errors
    /// [`Error::DigestMismatch`], [`Error::SignatureInvalid`], card, transport and parse errors.
    pub async fn read_attributes_checked(
        &mut self,
        trust: &CvcTrust,
    ) -> Result<Checked<Attributes>> {
        let attributes = self.read_attributes_file().await?;
        let integrity = self.read_integrity().await?;
        let cvc = read_cvc(self.session).await?;
        check_attributes(attributes, &integrity, cvc, trust)
    }

    /// Reads the 12-digit individual number (個人番号) and checks it against the integrity record,
    /// its signature and the application's certificate under `trust`. This is the only method
    /// that reads it; the value is never kept by the session.
    ///
    /// # Errors
    /// Card (`6982` after 照合番号B), transport, parse and integrity errors.
    pub async fn read_my_number(&mut self, trust: &CvcTrust) -> Result<Checked<MyNumber>> {
        self.check()?;
        // The digest covers the file as stored, padding included: read it whole.
        let physical = zeroize::Zeroizing::new(
            self.session
                .read_file(text::MY_NUMBER, Extent::Physical, "individual number")
                .await?,
        );
        let number = parse_my_number_file(&physical)?;
        let integrity = self.read_integrity().await?;
        let cvc = read_cvc(self.session).await?;
        check_my_number(number, &physical, &integrity, cvc, trust)
    }

    /// Replaces the 4-digit PIN (only after [`TextAp::verify_pin`]; sent once).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the handle was opened with a collation number;
    /// [`Error::AttemptMayHaveBeenCounted`], card and transport errors.
    pub async fn change_pin(&mut self, new: &Pin) -> Result<()> {
        self.check()?;
        if self.key != TextKey::Pin {
            return Err(Error::InvalidInput {
                what: "the PIN can only be changed after verifying the PIN",
            });
        }
        self.session
            .change_reference_data(PinKind::TextPin, new.bytes())
            .await
    }
}

/// What EF `0006` holds: `A1 { 90 exponent · 91 modulus }`.
fn parse_key_delivery_key(bytes: &[u8]) -> Result<CardPublicKey> {
    CardPublicKey::from_card_objects(record(bytes, 0xA1, "SM key-delivery key")?)
}

const SET_SESSION_KEY: &str = "SET SESSION KEY";

impl<C: CardChannel> VerifiedText<'_, C> {
    /// Opens a secure-messaging session and returns the handle that reads over it.
    ///
    /// Reads EF `0006` (the card's RSA key for key delivery), draws a 32-byte seed from the
    /// operating system's generator, sends it RSA-OAEP-SHA256 encrypted with SET SESSION KEY, and
    /// keeps the first 16 bytes as the AES-128 session key (zeroized when the handle is dropped).
    /// Costs two APDUs on an extended-length link (one READ BINARY, one SET SESSION KEY) and one
    /// RSA operation on the card. No PIN attempt is spent.
    ///
    /// The card opens a session only after the 4-digit PIN ([`TextAp::verify_pin`]); after
    /// 照合番号A it refuses (`6982`), so this method refuses without sending anything. After
    /// 照合番号B the card decides (the simulator refuses with `6982`).
    ///
    /// The key of EF `0006` is not signed by anything on the card (EF `0007` signs the AP's
    /// signing key, not this one), so it is used unchecked: secure messaging protects against a
    /// listener, not against an attacker who rewrites the link.
    ///
    /// # Errors
    /// [`SmError::ExtendedLengthRequired`] (inside [`Error::SecureMessaging`]) on a link without
    /// extended length, before anything is sent; [`Error::InvalidInput`] after 照合番号A;
    /// [`Error::Card`] when the card refuses the key (`6982`, `6A80`); parse, transport and
    /// [`SmError::Random`] errors.
    pub async fn secure_session(&mut self) -> Result<SecureText<'_, C>> {
        self.check()?;
        if self.key == TextKey::CollationA {
            return Err(Error::InvalidInput {
                what: "secure messaging opens only after the PIN; the card refuses it after 照合番号A",
            });
        }
        if !self.session.uses_extended_length() {
            return Err(SmError::ExtendedLengthRequired.into());
        }
        let bytes = self
            .session
            .read_file(text::SM_KEY, Extent::Tlv, "SM key-delivery key")
            .await?;
        let key = parse_key_delivery_key(&bytes)?;
        let seed = Seed::random()?;
        let delivery = sm::encrypt_key_delivery(key.rsa(), &seed, &mut getrandom::SysRng)?;
        let how = How {
            encoding: Some(LengthEncoding::Extended),
            ..How::once(SET_SESSION_KEY)
        };
        let r = self
            .session
            .exchange(&sm::set_session_key_command(delivery), how)
            .await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, SET_SESSION_KEY));
        }
        Ok(SecureText {
            session: &mut *self.session,
            epoch: self.epoch,
            channel: SmChannel::new(seed.session_key()),
        })
    }
}

/// The text AP with a secure-messaging session: every read of personal data travels encrypted.
///
/// Made by [`VerifiedText::secure_session`]. Each file read costs two APDUs: a SELECT EF in
/// clear (the file identifier is no secret, and plain commands leave the message counter alone)
/// and one SM READ BINARY of the whole file with extended Le. So, from power-on, the four
/// attributes cost 7 APDUs over SM (SELECT AP, PIN status, VERIFY, READ EF `0006`, SET SESSION
/// KEY, SELECT EF, SM READ) against 4 in clear; [`SecureText::read_attributes_checked`] adds the
/// integrity record (2 APDUs) and the certificate (1, in clear: it is public).
///
/// The card's session ends when the application is re-selected, the card is reset or loses the
/// field, or after a secure-messaging error; the handle then answers [`SmError::SessionBroken`]
/// or [`Error::CardReset`]. After a link failure during an SM command the handle stops too, as
/// it cannot know whether the card counted the command. `Debug` shows the message counter and
/// the state only; the session key is zeroized on drop.
pub struct SecureText<'v, C> {
    session: &'v mut Session<C>,
    epoch: u64,
    channel: SmChannel,
}

impl<C> fmt::Debug for SecureText<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecureText")
            .field("next_counter", &self.channel.next_counter())
            .field("broken", &self.channel.is_broken())
            .finish_non_exhaustive()
    }
}

impl<C: CardChannel> SecureText<'_, C> {
    /// The message counter the next SM command will use (1 right after opening).
    pub fn next_counter(&self) -> u32 {
        self.channel.next_counter()
    }

    /// Whether the session has ended (the card reported a secure-messaging error, or a link
    /// failure left the counter unknown).
    pub fn is_broken(&self) -> bool {
        self.channel.is_broken()
    }

    /// Reads a whole EF over SM: SELECT EF in clear, then `08 B0 00 00` with `96 03 00 00 00`
    /// (the whole file) and extended Le `00 00`. The decrypted file must start with the record
    /// tag `tag`: in CBC only the first block depends on the IV, so that is where a counter out
    /// of step shows.
    async fn read_secure(
        &mut self,
        fid: u16,
        tag: u32,
        extent: Extent,
        what: &'static str,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        self.session
            .ensure_verified(Application::Text, self.epoch)?;
        if self.channel.is_broken() {
            return Err(SmError::SessionBroken.into());
        }
        let r = self
            .session
            .exchange(&mynacard_apdu::commands::select_ef(fid), How::plain(what))
            .await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, what));
        }
        let wrapped = self.channel.read_binary(0x00, 0x00, 0)?;
        let how = How {
            encoding: Some(LengthEncoding::Extended),
            ..How::once(what)
        };
        let r = match self.session.exchange(&wrapped.command, how).await {
            Ok(r) => r,
            Err(e) => {
                self.channel.mark_broken();
                return Err(e);
            }
        };
        if r.sw == StatusWord::WrongLength {
            // The link or card refused the extended APDU; whether the card counted it is unknown.
            self.channel.mark_broken();
            return Err(SmError::ExtendedLengthRequired.into());
        }
        let unwrapped = self.channel.unwrap(wrapped.counter, &r.data, r.sw)?;
        if !matches!(
            unwrapped.sw,
            StatusWord::Success | StatusWord::EndOfFileWarning
        ) {
            return Err(Error::card(unwrapped.sw, what));
        }
        let mut data = unwrapped.data;
        if data.is_empty() {
            return Err(SmError::MissingCryptogram.into());
        }
        let (header_len, value_len) = match ber::parse_header(&data) {
            Ok((found, header_len, value_len)) if found == tag => (header_len, value_len),
            _ => {
                self.channel.mark_broken();
                return Err(SmError::Garbled.into());
            }
        };
        if extent == Extent::Tlv {
            let total = header_len.saturating_add(value_len);
            if total > data.len() {
                return Err(Error::Malformed {
                    what: "file ends before its announced length",
                });
            }
            data.truncate(total);
        }
        Ok(data)
    }

    /// Reads the four attributes over SM without checking them (2 APDUs).
    ///
    /// # Errors
    /// [`Error::SecureMessaging`], card (`6982` after 照合番号A), transport and parse errors.
    pub async fn read_attributes(&mut self) -> Result<Attributes> {
        let bytes = self
            .read_secure(text::ATTRIBUTES, 0xFF20, Extent::Tlv, "attributes")
            .await?;
        Attributes::parse(&bytes)
    }

    /// Reads the integrity record over SM (2 APDUs).
    ///
    /// # Errors
    /// As [`SecureText::read_attributes`].
    pub async fn read_integrity(&mut self) -> Result<IntegrityRecord> {
        let bytes = self
            .read_secure(text::INTEGRITY, 0xFF30, Extent::Tlv, "integrity record")
            .await?;
        IntegrityRecord::parse(&bytes)
    }

    /// Reads the four attributes and the integrity record over SM, the certificate in clear, and
    /// checks the digest, the record's signature and the certificate under `trust` (5 APDUs).
    ///
    /// # Errors
    /// [`Error::DigestMismatch`], [`Error::SignatureInvalid`] and the errors of
    /// [`SecureText::read_attributes`].
    pub async fn read_attributes_checked(
        &mut self,
        trust: &CvcTrust,
    ) -> Result<Checked<Attributes>> {
        let attributes = self.read_attributes().await?;
        let integrity = self.read_integrity().await?;
        // The certificate is public: read in clear.
        let cvc = read_cvc(self.session).await?;
        check_attributes(attributes, &integrity, cvc, trust)
    }

    /// Reads the 12-digit individual number over SM and checks it against the integrity record
    /// and its signature. Only on explicit request; the value is never kept.
    ///
    /// # Errors
    /// As [`VerifiedText::read_my_number`], and [`Error::SecureMessaging`].
    pub async fn read_my_number(&mut self, trust: &CvcTrust) -> Result<Checked<MyNumber>> {
        // The digest covers the file as stored, padding included.
        let physical = self
            .read_secure(
                text::MY_NUMBER,
                0xFF10,
                Extent::Physical,
                "individual number",
            )
            .await?;
        let number = parse_my_number_file(&physical)?;
        let integrity = self.read_integrity().await?;
        let cvc = read_cvc(self.session).await?;
        check_my_number(number, &physical, &integrity, cvc, trust)
    }
}

/// The text AP's certificate (free, read in clear also inside an SM session).
async fn read_cvc<C: CardChannel>(session: &mut Session<C>) -> Result<CvCertificate> {
    let bytes = session
        .read_file(text::CVC, Extent::Tlv, "text AP certificate")
        .await?;
    CvCertificate::parse(&bytes)
}

/// Attributes checked against the integrity record, whose signature is checked under `cvc`,
/// which is anchored under `trust`.
fn check_attributes(
    attributes: Attributes,
    integrity: &IntegrityRecord,
    cvc: CvCertificate,
    trust: &CvcTrust,
) -> Result<Checked<Attributes>> {
    integrity.check_attributes(&attributes)?;
    Checked::new(attributes, cvc, trust, CvcScope::Text, |_, cvc| {
        integrity.verify_signature(cvc)
    })
}

/// The individual number checked as [`check_attributes`] checks the attributes.
fn check_my_number(
    number: MyNumber,
    physical: &[u8],
    integrity: &IntegrityRecord,
    cvc: CvCertificate,
    trust: &CvcTrust,
) -> Result<Checked<MyNumber>> {
    integrity.check_my_number_file(physical)?;
    Checked::new(number, cvc, trust, CvcScope::Text, |_, cvc| {
        integrity.verify_signature(cvc)
    })
}

/// The individual number in EF `0001` (`FF 10 0C <12 digits>`, padding after it ignored).
fn parse_my_number_file(physical: &[u8]) -> Result<MyNumber> {
    let value = record(physical, 0xFF10, "individual number")?;
    let digits = core::str::from_utf8(value).map_err(|_| Error::Malformed {
        what: "individual number is not ASCII digits",
    })?;
    MyNumber::new(digits).map_err(|_| Error::Malformed {
        what: "individual number is not 12 digits with a valid check digit",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
        ber::to_vec(tag, value).unwrap()
    }

    pub(crate) fn attributes_file(extra_before: &[u8]) -> Vec<u8> {
        let mut fields = Vec::new();
        fields.extend(extra_before);
        fields.extend(tlv(0xDF22, "山田\u{3000}花子".as_bytes()));
        fields.extend(tlv(0xDF23, "東京都千代田区１－２".as_bytes()));
        fields.extend(tlv(0xDF24, b"19800217"));
        fields.extend(tlv(0xDF25, b"2"));
        let mut value = tlv(0xDF21, &[0; 8]);
        value.extend(&fields);
        let mut file = tlv(0xFF20, &value);
        file.extend([0xFF, 0xFF]);
        file
    }

    #[test]
    fn parses_attributes_by_tag() {
        let a = Attributes::parse(&attributes_file(&[])).unwrap();
        assert_eq!(a.name, "山田\u{3000}花子");
        assert_eq!(a.birth_date, Date::new(1980, 2, 17).unwrap());
        assert_eq!(a.sex, Sex::Female);
        assert!(!format!("{a:?}").contains("山田"));
        // Order and unknown objects do not matter.
        let mut value = tlv(0xDF25, b"9");
        value.extend(tlv(0xDF2F, b"new"));
        value.extend(tlv(0xDF24, b"20000101"));
        value.extend(tlv(0xDF23, b"x"));
        value.extend(tlv(0xDF22, b"y"));
        let b = Attributes::parse(&tlv(0xFF20, &value)).unwrap();
        assert_eq!(b.sex, Sex::NotApplicable);
        assert_eq!(
            b.digest_source, value,
            "no offset table: the whole value is hashed"
        );
    }

    #[test]
    fn attributes_need_every_field() {
        let value = [
            tlv(0xDF22, b"a"),
            tlv(0xDF23, b"b"),
            tlv(0xDF24, b"19800217"),
        ]
        .concat();
        assert!(Attributes::parse(&tlv(0xFF20, &value)).is_err());
        assert!(Attributes::parse(&tlv(0xFF21, &value)).is_err());
        assert!(Attributes::parse(&[0xFF, 0x20, 0x05, 0xDF]).is_err());
    }

    #[test]
    fn integrity_record_parts() {
        let value = [
            tlv(0xDF31, &[1; 32]),
            tlv(0xDF32, &[2; 32]),
            tlv(0xDF33, &[3; 256]),
        ]
        .concat();
        let r = IntegrityRecord::parse(&tlv(0xFF30, &value)).unwrap();
        assert_eq!(r.my_number_digest, [1; 32]);
        assert_eq!(
            r.signed,
            [tlv(0xDF31, &[1; 32]), tlv(0xDF32, &[2; 32])].concat()
        );
        let short = [
            tlv(0xDF31, &[1; 31]),
            tlv(0xDF32, &[2; 32]),
            tlv(0xDF33, &[3; 256]),
        ]
        .concat();
        assert!(IntegrityRecord::parse(&tlv(0xFF30, &short)).is_err());
    }
}
