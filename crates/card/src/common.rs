//! 共通カードAP (common AP): the card serial, the issuing municipality and the card's expiry.

use mynacard_apdu::commands::{self, common};
use mynacard_apdu::tlv::simple;
use mynacard_transport::CardChannel;

use crate::date::Date;
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
}
