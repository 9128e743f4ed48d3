//! The card-verifiable certificate (EF `0004` of the text and visual APs) that certifies the key
//! signing those applications' records.

use mynacard_apdu::tlv::ber;

use crate::crypto::CardPublicKey;
use crate::{Error, Result};

/// A card-verifiable certificate: `7F21 { 5F4E body ; 5F37 signature }`, where the body is the
/// 16-byte issuer key id, the 16-byte subject key id and the subject key as `90`/`91` objects.
///
/// Its own signature is made by J-LIS' card-verifiable root, which is not on the card's
/// applications; this type gives the certified key but does not check that signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CvCertificate {
    /// Issuer key id (`"NNNNNNN" 08 05 "GGG"` + padding; a leading `5` means production).
    pub issuer_key_id: [u8; 16],
    /// Subject key id.
    pub subject_key_id: [u8; 16],
    /// The certified key, which signs the application's records.
    pub public_key: CardPublicKey,
    /// The issuer's signature over the body.
    pub signature: Vec<u8>,
}

impl CvCertificate {
    /// Parses the certificate.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`], [`Error::Malformed`] or [`Error::PublicKey`].
    pub fn parse(bytes: &[u8]) -> Result<CvCertificate> {
        const WHAT: &str = "card-verifiable certificate";
        let (outer, _) = ber::parse_one(bytes).map_err(Error::tlv(WHAT))?;
        if outer.tag != 0x7F21 {
            return Err(Error::Malformed {
                what: "card-verifiable certificate tag is not 7F21",
            });
        }
        let body = ber::find(outer.value, 0x5F4E)
            .map_err(Error::tlv(WHAT))?
            .ok_or(Error::Malformed {
                what: "card-verifiable certificate without body (5F4E)",
            })?;
        let signature = ber::find(outer.value, 0x5F37)
            .map_err(Error::tlv(WHAT))?
            .ok_or(Error::Malformed {
                what: "card-verifiable certificate without signature (5F37)",
            })?;
        let (ids, key) = body.value.split_at_checked(32).ok_or(Error::Malformed {
            what: "card-verifiable certificate body too short",
        })?;
        let mut issuer_key_id = [0; 16];
        let mut subject_key_id = [0; 16];
        issuer_key_id.copy_from_slice(&ids[..16]);
        subject_key_id.copy_from_slice(&ids[16..]);
        Ok(CvCertificate {
            issuer_key_id,
            subject_key_id,
            public_key: CardPublicKey::from_card_objects(key)?,
            signature: signature.value.to_vec(),
        })
    }

    /// Whether the issuer key id marks a production key (`5…`) rather than a test key (`6…`).
    pub fn is_production(&self) -> bool {
        self.issuer_key_id[0] == b'5'
    }
}
