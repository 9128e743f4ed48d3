//! 共通カードAP (common AP) and the card level above the applications (B.8).
//!
//! - [`CommonAp`]: the card serial, the issuing municipality and the card's expiry (record 1 of
//!   EF `0001`); the 4-digit PIN `001C`, changed with JICSAP CHANGE KEY (`80 32`).
//! - [`Session::card_identification`]: the MF-level GET DATA objects that identify the card
//!   (card identification number, municipality code, expiry, issuer id), and
//!   [`Session::card_certificates`] the card-level CVC chain.

use core::fmt;

use crate::catalogue::{self, aid, common, mf};
use mynacard_apdu::commands::{self, KeyRef};
use mynacard_apdu::tlv::simple;
use mynacard_apdu::{LengthEncoding, MAX_NE, StatusWord};
use mynacard_transport::CardChannel;
use zeroize::Zeroizing;

use crate::cvc::CvCertificate;
use crate::date::Date;
use crate::pin::{AttemptPolicy, Pin, PinKind, PinStatus};
use crate::session::{Application, How, Session};
use crate::{Error, Result};

/// Record 1 of EF `0001`: simple-TLV `01 1C` with 28 ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardIdentity {
    /// The 15-digit card serial.
    pub serial: String,
    /// The 5-digit municipality code (全国地方公共団体コード).
    pub municipality_code: String,
    /// The card's expiry date.
    pub expiry: Date,
}

impl CardIdentity {
    /// Parses the record.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`] or [`Error::Malformed`].
    pub fn parse(bytes: &[u8]) -> Result<CardIdentity> {
        let (tlv, _) = simple::parse_one(bytes).map_err(Error::tlv("card identity record"))?;
        let v = tlv.value;
        if tlv.tag != 0x01 || v.len() != 28 || !v.iter().all(u8::is_ascii_digit) {
            return Err(Error::Malformed {
                what: "card identity record is not 28 digits under tag 01",
            });
        }
        let text = |r: core::ops::Range<usize>| String::from_utf8_lossy(&v[r]).into_owned();
        Ok(CardIdentity {
            serial: text(0..15),
            municipality_code: text(15..20),
            expiry: Date::parse_yyyymmdd(&v[20..28]).ok_or(Error::Malformed {
                what: "card identity expiry is not a date",
            })?,
        })
    }
}

/// The common AP, selected.
#[derive(Debug)]
pub struct CommonAp<'s, C> {
    session: &'s mut Session<C>,
    epoch: u64,
}

impl<C: CardChannel> Session<C> {
    /// Selects the common AP.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn common(&mut self) -> Result<CommonAp<'_, C>> {
        let epoch = self.open(Application::Common).await?;
        Ok(CommonAp {
            session: self,
            epoch,
        })
    }
}

impl<C: CardChannel> CommonAp<'_, C> {
    /// The retry counter of the PIN `001C` (3 tries). Spends nothing.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn pin_status(&mut self) -> Result<PinStatus> {
        self.session.ensure(Application::Common, self.epoch).await?;
        self.session.pin_status(PinKind::CommonPin).await
    }

    /// Verifies the PIN `001C` (retry counter first; refuses when blocked or, unless allowed, on
    /// the last try; sent once).
    ///
    /// This is the common AP's key only: the 住基AP holds a separate key reference that user
    /// interfaces present as the same 個人番号カード用 PIN.
    ///
    /// # Errors
    /// As [`crate::jpki::JpkiAp::verify_auth`].
    pub async fn verify_pin(
        &mut self,
        pin: &Pin,
        policy: AttemptPolicy,
    ) -> Result<VerifiedCommon<'_, C>> {
        self.session.ensure(Application::Common, self.epoch).await?;
        self.session
            .verify(PinKind::CommonPin, pin.bytes(), policy)
            .await?;
        Ok(VerifiedCommon {
            session: &mut *self.session,
            epoch: self.epoch,
        })
    }

    /// Reads the card serial, municipality code and expiry (SELECT EF, READ RECORD 1).
    ///
    /// # Errors
    /// Card, transport and parse errors.
    pub async fn read_identity(&mut self) -> Result<CardIdentity> {
        const OP: &str = "card identity record";
        self.session.ensure(Application::Common, self.epoch).await?;
        let r = self
            .session
            .exchange(&commands::select_ef(common::SERIAL_RECORD), How::plain(OP))
            .await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, OP));
        }
        let r = self
            .session
            .exchange(&commands::read_record(1, 256), How::plain(OP))
            .await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, OP));
        }
        CardIdentity::parse(&r.data)
    }
}

/// The common AP with its PIN verified. Dropping it re-selects the application on next use,
/// which clears the card's security status.
#[derive(Debug)]
pub struct VerifiedCommon<'v, C> {
    session: &'v mut Session<C>,
    epoch: u64,
}

impl<C> Drop for VerifiedCommon<'_, C> {
    fn drop(&mut self) {
        self.session.forget_selection();
    }
}

impl<C: CardChannel> VerifiedCommon<'_, C> {
    /// Replaces the PIN `001C` with JICSAP CHANGE KEY (`SELECT EF 001C`, then
    /// `80 32 00 80 Lc new`, the form the card is known to take). Sent once.
    ///
    /// Only the common AP's key changes; the 住基AP's key of the same PIN keeps its value.
    ///
    /// # Errors
    /// [`Error::CardReset`] when the card was reset since the VERIFY;
    /// [`Error::AttemptMayHaveBeenCounted`], card and transport errors.
    pub async fn change_pin(&mut self, new: &Pin) -> Result<()> {
        const OP: &str = "CHANGE KEY";
        self.session
            .ensure_verified(Application::Common, self.epoch)?;
        let r = self
            .session
            .exchange(&commands::select_ef(common::PIN), How::plain("SELECT PIN"))
            .await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, "SELECT PIN"));
        }
        let key = PinKind::CommonPin;
        let how = How {
            attempt: Some(key),
            ..How::once(OP)
        };
        let r = self
            .session
            .exchange(&catalogue::change_key(KeyRef::Current, new.bytes()), how)
            .await?;
        match r.sw {
            StatusWord::Success => Ok(()),
            StatusWord::RetriesRemaining(0)
            | StatusWord::ReferenceDataBlocked
            | StatusWord::AuthenticationMethodBlocked => Err(Error::Blocked { key }),
            sw => Err(Error::card(sw, OP)),
        }
    }
}

/// The card identification number (MF GET DATA `0045`), ASCII. It identifies the card and so,
/// indirectly, its holder: zeroized on drop and redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct CardNumber(Zeroizing<String>);

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardNumber(<redacted>)")
    }
}

impl CardNumber {
    /// The number as the card stores it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// What the card says about itself at the MF level, without any PIN: GET DATA `0045` (card
/// identification number), `00F0` (issuing municipality), `00F2` (card expiry) and `0042`
/// (issuer id). Nothing here names the holder, but the card number identifies the card, so
/// `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardIdentification {
    /// Card identification number (`0045`).
    pub card_number: CardNumber,
    /// 全国地方公共団体コード of the issuing municipality (`00F0`, 5 digits).
    pub municipality_code: String,
    /// The card's expiry (`00F2`).
    pub expiry: Date,
    /// Issuer identification (`0042`): a 16-byte key id, `"NNNNNNN" 08 05 "GGG"` + padding.
    pub issuer_id: [u8; 16],
}

impl fmt::Debug for CardIdentification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardIdentification")
            .field("card_number", &self.card_number)
            .field("municipality_code", &self.municipality_code)
            .field("expiry", &self.expiry)
            .field("issuer_id", &self.issuer_id)
            .finish()
    }
}

/// Longest card identification number accepted.
const MAX_CARD_NUMBER: usize = 32;

impl CardIdentification {
    /// Builds the identification from the four GET DATA values as the card answers them
    /// (values only, no tags).
    ///
    /// # Errors
    /// [`Error::Malformed`] for a card number that is not 1–32 printable ASCII characters, a
    /// municipality code that is not 5 digits, an expiry that is not `YYYYMMDD`, or an issuer id
    /// that is not 16 bytes.
    pub fn from_objects(
        card_number: &[u8],
        municipality_code: &[u8],
        expiry: &[u8],
        issuer_id: &[u8],
    ) -> Result<CardIdentification> {
        if card_number.is_empty()
            || card_number.len() > MAX_CARD_NUMBER
            || !card_number.iter().all(u8::is_ascii_graphic)
        {
            return Err(Error::Malformed {
                what: "card identification number is not 1-32 printable ASCII characters",
            });
        }
        if municipality_code.len() != 5 || !municipality_code.iter().all(u8::is_ascii_digit) {
            return Err(Error::Malformed {
                what: "municipality code is not 5 digits",
            });
        }
        let expiry = Date::parse_yyyymmdd(expiry).ok_or(Error::Malformed {
            what: "card expiry is not YYYYMMDD",
        })?;
        let issuer_id = issuer_id.try_into().map_err(|_| Error::Malformed {
            what: "issuer id is not 16 bytes",
        })?;
        // All checked as ASCII above, so the lossy conversions change nothing.
        Ok(CardIdentification {
            card_number: CardNumber(Zeroizing::new(
                String::from_utf8_lossy(card_number).into_owned(),
            )),
            municipality_code: String::from_utf8_lossy(municipality_code).into_owned(),
            expiry,
            issuer_id,
        })
    }
}

/// GET DATA of an MF-level object: a short Le first; the card refuses it with `6700` for objects
/// over 256 bytes, and then an extended Le follows when the link carries one (B.4).
async fn get_data<C: CardChannel>(
    session: &mut Session<C>,
    tag: u16,
    what: &'static str,
) -> Result<Vec<u8>> {
    let short = How {
        encoding: Some(LengthEncoding::Short),
        ..How::plain(what)
    };
    let mut r = session
        .exchange(&commands::get_data(tag, 256), short)
        .await?;
    if r.sw == StatusWord::WrongLength && session.uses_extended_length() {
        let extended = How {
            encoding: Some(LengthEncoding::Extended),
            ..How::plain(what)
        };
        r = session
            .exchange(&commands::get_data(tag, MAX_NE), extended)
            .await?;
    }
    if !r.is_success() {
        return Err(Error::card(r.sw, what));
    }
    Ok(r.data)
}

impl<C: CardChannel> Session<C> {
    /// Selects the GP issuer security domain, which leaves any application and restores the
    /// card's power-on (MF) state, where GET DATA answers (B.1, B.8).
    async fn select_card_level(&mut self) -> Result<()> {
        const OP: &str = "SELECT issuer security domain";
        // `transmit` forgets the current application: the card leaves it too.
        let r = self.transmit(&commands::select_df(&aid::GP_ISD)).await?;
        if !r.is_success() {
            return Err(Error::card(r.sw, OP));
        }
        Ok(())
    }

    /// Reads the card identification at the MF level: SELECT of the GP issuer security domain
    /// and four GET DATA (`0045`, `00F0`, `00F2`, `0042`), 5 APDUs on any link. Needs no PIN;
    /// any application selected before is left (and its verified PINs with it).
    ///
    /// # Errors
    /// [`Error::Card`] when the card lacks an object (`6A88`), parse and transport errors.
    pub async fn card_identification(&mut self) -> Result<CardIdentification> {
        self.select_card_level().await?;
        let number = Zeroizing::new(
            get_data(self, mf::CARD_ID, "GET DATA card identification number").await?,
        );
        let municipality = get_data(self, mf::MUNICIPALITY_CODE, "GET DATA municipality").await?;
        let expiry = get_data(self, mf::EXPIRY, "GET DATA expiry").await?;
        let issuer = get_data(self, mf::ISSUER_ID, "GET DATA issuer id").await?;
        CardIdentification::from_objects(&number, &municipality, &expiry, &issuer)
    }

    /// Reads the card-level chain of card-verifiable certificates, upper (`00F8`) first, then
    /// the lower one (`7F21`) when the card has it (older cards answer `6A88`). Each is over 256
    /// bytes, so each costs a refused short GET DATA and an extended one: 5 APDUs with the SELECT
    /// of the issuer security domain. A link without extended length cannot carry them.
    /// [`crate::CvcTrust::verify_card_chain`] checks them.
    ///
    /// # Errors
    /// [`Error::Card`] (`6700` on a link without extended length), parse and transport errors.
    pub async fn card_certificates(&mut self) -> Result<Vec<CvCertificate>> {
        const WHAT: &str = "GET DATA card-level certificate";
        self.select_card_level().await?;
        let mut chain = Vec::with_capacity(2);
        for tag in [mf::UPPER_CVC, mf::LOWER_CVC] {
            let contents = match get_data(self, tag, WHAT).await {
                Ok(contents) => contents,
                Err(Error::Card {
                    sw: StatusWord::ReferencedDataNotFound,
                    ..
                }) if tag == mf::LOWER_CVC => break,
                Err(e) => return Err(e),
            };
            // GET DATA answers the contents of the 7F21 template.
            chain.push(CvCertificate::parse_contents(&contents)?);
        }
        Ok(chain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_record() {
        let mut rec = vec![0x01, 0x1C];
        rec.extend_from_slice(b"123456789012345131002035021");
        rec.push(b'7');
        let id = CardIdentity::parse(&rec).unwrap();
        assert_eq!(id.serial, "123456789012345");
        assert_eq!(id.municipality_code, "13100");
        assert_eq!(id.expiry, Date::new(2035, 2, 17).unwrap());
        rec[5] = b'x';
        assert!(CardIdentity::parse(&rec).is_err());
        assert!(CardIdentity::parse(&[0x01]).is_err());
    }

    #[test]
    fn builds_the_identification_from_the_get_data_values() {
        let issuer = *b"6000020\x08\x05001\0\0\0\0";
        let id =
            CardIdentification::from_objects(b"000123456789012", b"13101", b"20300217", &issuer)
                .unwrap();
        assert_eq!(id.card_number.expose(), "000123456789012");
        assert_eq!(id.municipality_code, "13101");
        assert_eq!(id.expiry, Date::new(2030, 2, 17).unwrap());
        assert_eq!(id.issuer_id, issuer);
        let shown = format!("{id:?}");
        assert!(!shown.contains("000123456789012"), "{shown}");
        assert!(shown.contains("13101"), "{shown}");

        let ok = |n: &[u8], m: &[u8], e: &[u8], i: &[u8]| {
            CardIdentification::from_objects(n, m, e, i).is_ok()
        };
        assert!(!ok(b"", b"13101", b"20300217", &issuer));
        assert!(!ok(&[b'1'; 33], b"13101", b"20300217", &issuer));
        assert!(!ok(b"12 34", b"13101", b"20300217", &issuer));
        assert!(!ok("１２".as_bytes(), b"13101", b"20300217", &issuer));
        assert!(!ok(b"1", b"1310", b"20300217", &issuer));
        assert!(!ok(b"1", b"1310x", b"20300217", &issuer));
        assert!(!ok(b"1", b"13101", b"20300230", &issuer));
        assert!(!ok(b"1", b"13101", b"20300217", &issuer[..15]));
        assert!(ok(b"A1", b"13101", b"20300217", &issuer));
    }
}
