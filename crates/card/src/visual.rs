//! 券面事項確認AP (visual AP): the card-face record opened with 照合番号B, its signature, the
//! card-presence challenge, and — only through [`VerifiedVisual::read_my_number_image`], after
//! 照合番号A — the picture of the individual number.

use core::fmt;

use crate::catalogue::visual;
use mynacard_apdu::commands;
use mynacard_apdu::tlv::Tlv;
use mynacard_transport::CardChannel;
use zeroize::Zeroizing;

use crate::crypto::{CardPublicKey, HashAlgorithm, sha256};
use crate::cvc::{Checked, CvCertificate, CvcScope, CvcTrust};
use crate::date::Date;
use crate::ops::PresenceSign;
use crate::pin::{AttemptPolicy, BirthDateKey, CollationB, MyNumber, PinKind, PinStatus};
use crate::session::{Application, Extent, How, Session};
use crate::text::{Sex, field, objects, record};
use crate::{Error, Result};
use mynacard_cert::digest_info::card_face;

/// The visual AP's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VisualKey {
    /// Birth-date key (`0011`): opens the age record.
    BirthDate,
    /// 照合番号B (`0012`): opens the card face.
    CollationB,
    /// 照合番号A (`0013`): opens the card face and the rendered individual number.
    CollationA,
}

impl VisualKey {
    const fn pin(self) -> PinKind {
        match self {
            VisualKey::BirthDate => PinKind::VisualBirthDate,
            VisualKey::CollationB => PinKind::VisualCollationB,
            VisualKey::CollationA => PinKind::VisualCollationA,
        }
    }
}

/// The signed parts of the card-face record (EF `0002`), as a verifier needs them: the three
/// segments the `DF28` signature covers (`DF22`–`DF24`, `DF25`–`DF26`, `DF27`, each a run of
/// consecutive objects as encoded, card facts B.7), the signature, the card key's objects and the
/// photo. [`CardFace::parse`] reads the rest; the registration flows send these as evidence.
/// Personal data: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedFace {
    /// The three covered segments, as encoded on the card.
    pub segments: [Zeroizing<Vec<u8>>; 3],
    /// The signature (`DF28`).
    pub signature: Vec<u8>,
    /// The card key's objects (`DF24` value: `90` exponent, `91` modulus).
    pub card_key: Vec<u8>,
    /// The photo (`DF27` value).
    pub photo: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for SignedFace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedFace")
            .field("photo_len", &self.photo.len())
            .finish_non_exhaustive()
    }
}

impl SignedFace {
    /// Finds the signed parts of `FF20 { … }` by tag. Each segment must be a run of
    /// consecutive objects: the signature covers byte ranges of the file, not objects picked
    /// from anywhere in it.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`] or [`Error::Malformed`].
    pub fn parse(bytes: &[u8]) -> Result<SignedFace> {
        const WHAT: &str = "card face";
        let value = record(bytes, 0xFF20, WHAT)?;
        let objs = objects(value, WHAT)?;
        let index = |tag: u32| {
            objs.iter()
                .position(|(t, _)| t.tag == tag)
                .ok_or(Error::Malformed {
                    what: "card face lacks a signed field",
                })
        };
        let segment = |first: u32, last: u32| -> Result<Zeroizing<Vec<u8>>> {
            let (a, b) = (index(first)?, index(last)?);
            if b < a {
                return Err(Error::Malformed {
                    what: "card-face segment out of order",
                });
            }
            // `objects` keeps the objects in file order, each as encoded, so a run of indices
            // is a run of bytes.
            Ok(Zeroizing::new(
                objs[a..=b]
                    .iter()
                    .flat_map(|(_, enc)| enc.iter().copied())
                    .collect(),
            ))
        };
        Ok(SignedFace {
            segments: [
                segment(0xDF22, 0xDF24)?,
                segment(0xDF25, 0xDF26)?,
                segment(0xDF27, 0xDF27)?,
            ],
            signature: field(&objs, 0xDF28)?.to_vec(),
            card_key: field(&objs, 0xDF24)?.to_vec(),
            photo: Zeroizing::new(field(&objs, 0xDF27)?.to_vec()),
        })
    }

    /// SHA-256 of each covered segment.
    pub fn digests(&self) -> [[u8; 32]; 3] {
        [
            sha256(&self.segments[0]),
            sha256(&self.segments[1]),
            sha256(&self.segments[2]),
        ]
    }

    /// What `DF28` signs: a SHA-256 DigestInfo whose digest field holds the three digests,
    /// concatenated (96 bytes) — the form real cards carry.
    pub fn digest_info(&self) -> Vec<u8> {
        let [a, b, c] = &self.segments;
        card_face::of_segments([a, b, c]).to_vec()
    }
}

/// The card-face record of EF `0002`. Personal data: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CardFace {
    /// 生年月日 (`DF22`).
    pub birth_date: Date,
    /// 性別 (`DF23`).
    pub sex: Sex,
    /// The card's own key (`DF24`), which answers the card-presence challenge.
    pub card_key: CardPublicKey,
    /// 氏名 as printed, PNG (`DF25`).
    pub name_image: Vec<u8>,
    /// 住所 as printed, PNG (`DF26`).
    pub address_image: Vec<u8>,
    /// 顔写真, JPEG 2000 greyscale on real cards (`DF27`).
    pub photo: Vec<u8>,
    /// Signature over the record (`DF28`).
    pub signature: Vec<u8>,
    /// 有効期限 (`DF29`): after the signature, so not covered by it.
    pub expiry: Date,
    /// Security code as printed, PNG (`DF2A`): not covered by the signature either.
    pub security_code_image: Vec<u8>,
    /// What `DF28` signs ([`SignedFace::digest_info`]): digests only, so the photo and the
    /// signature are held once, in the fields above.
    signed_digest_info: Vec<u8>,
}

impl fmt::Debug for CardFace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardFace")
            .field("photo_len", &self.photo.len())
            .finish_non_exhaustive()
    }
}

impl CardFace {
    /// Parses EF `0002` by tag.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`], [`Error::Malformed`] or [`Error::PublicKey`].
    pub fn parse(bytes: &[u8]) -> Result<CardFace> {
        const WHAT: &str = "card face";
        let value = record(bytes, 0xFF20, WHAT)?;
        let objs = objects(value, WHAT)?;
        let date = |tag| {
            field(&objs, tag).and_then(|v| {
                Date::parse_yyyymmdd(v).ok_or(Error::Malformed {
                    what: "card-face date is not YYYYMMDD",
                })
            })
        };
        let signed_digest_info = SignedFace::parse(bytes)?.digest_info();
        Ok(CardFace {
            birth_date: date(0xDF22)?,
            sex: Sex::from_code(*field(&objs, 0xDF23)?.first().ok_or(Error::Malformed {
                what: "sex is empty",
            })?),
            card_key: CardPublicKey::from_card_objects(field(&objs, 0xDF24)?)?,
            name_image: field(&objs, 0xDF25)?.to_vec(),
            address_image: field(&objs, 0xDF26)?.to_vec(),
            photo: field(&objs, 0xDF27)?.to_vec(),
            signature: field(&objs, 0xDF28)?.to_vec(),
            expiry: date(0xDF29)?,
            security_code_image: field(&objs, 0xDF2A)?.to_vec(),
            signed_digest_info,
        })
    }

    /// Checks the record's signature with the key of the application's certificate: PKCS#1
    /// v1.5 over a SHA-256 DigestInfo whose digest field holds the three SHA-256 values of
    /// `DF22–DF24`, `DF25–DF26` and `DF27` (as encoded), concatenated — the form real cards
    /// carry.
    ///
    /// # Errors
    /// [`Error::SignatureLength`] or [`Error::SignatureInvalid`].
    pub fn verify_signature(&self, cvc: &CvCertificate) -> Result<()> {
        cvc.public_key.verify_pkcs1(
            &self.signed_digest_info,
            &self.signature,
            "card-face record",
        )
    }
}

/// EF `0001`: the age record, opened by the birth-date key alone. It proves a birth date (for
/// an age check) without the rest of the card face. Personal data: `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AgeRecord {
    /// 生年月日 (`DF11`).
    pub birth_date: Date,
    /// The card's own key (`DF12`).
    pub card_key: CardPublicKey,
    /// Signature over `DF11` and `DF12` as written (`DF13`).
    pub signature: Vec<u8>,
    signed: Vec<u8>,
}

impl fmt::Debug for AgeRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgeRecord").finish_non_exhaustive()
    }
}

/// The encoded objects before the one tagged `signature_tag`: what the age record and the
/// rendered number sign.
fn signed_prefix(objs: &[(Tlv<'_>, &[u8])], signature_tag: u32) -> Vec<u8> {
    objs.iter()
        .take_while(|(t, _)| t.tag != signature_tag)
        .flat_map(|(_, enc)| enc.iter().copied())
        .collect()
}

impl AgeRecord {
    /// Parses EF `0001` (`FF10 { DF11 YYYYMMDD · DF12 key · DF13 signature }`) by tag.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`], [`Error::Malformed`] or [`Error::PublicKey`].
    pub fn parse(bytes: &[u8]) -> Result<AgeRecord> {
        const WHAT: &str = "age record";
        let value = record(bytes, 0xFF10, WHAT)?;
        let objs = objects(value, WHAT)?;
        Ok(AgeRecord {
            birth_date: Date::parse_yyyymmdd(field(&objs, 0xDF11)?).ok_or(Error::Malformed {
                what: "age-record date is not YYYYMMDD",
            })?,
            card_key: CardPublicKey::from_card_objects(field(&objs, 0xDF12)?)?,
            signature: field(&objs, 0xDF13)?.to_vec(),
            signed: signed_prefix(&objs, 0xDF13),
        })
    }

    /// Checks the signature with the key of the application's certificate: PKCS#1 v1.5 with
    /// SHA-256 over the `DF11` and `DF12` objects as written.
    ///
    /// # Errors
    /// [`Error::SignatureLength`] or [`Error::SignatureInvalid`].
    pub fn verify_signature(&self, cvc: &CvCertificate) -> Result<()> {
        let info = crate::crypto::digest_info(HashAlgorithm::Sha256, &sha256(&self.signed))?;
        cvc.public_key
            .verify_pkcs1(&info, &self.signature, "age record")
    }
}

/// EF `0005`: the individual number (個人番号) rendered as printed on the card, a 1-bit PNG (72×12
/// on the cards examined), with the card key and a signature. **The picture shows the My
/// Number**: treat it as the number itself. The PNG is zeroized on drop and `Debug` is redacted;
/// the session never keeps it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MyNumberImage {
    /// The PNG (`DF41`).
    pub png: Zeroizing<Vec<u8>>,
    /// The card's own key (`DF42`).
    pub card_key: CardPublicKey,
    /// Signature over `DF41` and `DF42` as written (`DF43`).
    pub signature: Vec<u8>,
    signed: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for MyNumberImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MyNumberImage")
            .field("png", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The eight bytes every PNG starts with.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

impl MyNumberImage {
    /// Parses EF `0005` (`FF40 { DF41 PNG · DF42 key · DF43 signature }`) by tag.
    ///
    /// # Errors
    /// [`Error::MalformedTlv`], [`Error::Malformed`] (also for a `DF41` that is not a PNG) or
    /// [`Error::PublicKey`].
    pub fn parse(bytes: &[u8]) -> Result<MyNumberImage> {
        const WHAT: &str = "rendered individual number";
        let value = record(bytes, 0xFF40, WHAT)?;
        let objs = objects(value, WHAT)?;
        let png = field(&objs, 0xDF41)?;
        if !png.starts_with(&PNG_SIGNATURE) {
            return Err(Error::Malformed {
                what: "rendered individual number is not a PNG",
            });
        }
        let signed = Zeroizing::new(signed_prefix(&objs, 0xDF43));
        Ok(MyNumberImage {
            png: Zeroizing::new(png.to_vec()),
            card_key: CardPublicKey::from_card_objects(field(&objs, 0xDF42)?)?,
            signature: field(&objs, 0xDF43)?.to_vec(),
            signed,
        })
    }

    /// Checks the signature with the key of the application's certificate: PKCS#1 v1.5 with
    /// SHA-256 over the `DF41` and `DF42` objects as written, the form of the age record.
    ///
    /// # Errors
    /// [`Error::SignatureLength`] or [`Error::SignatureInvalid`].
    pub fn verify_signature(&self, cvc: &CvCertificate) -> Result<()> {
        let info = crate::crypto::digest_info(HashAlgorithm::Sha256, &sha256(&self.signed))?;
        cvc.public_key
            .verify_pkcs1(&info, &self.signature, "rendered individual number")
    }
}

/// A verified answer to the card-presence challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PresenceProof {
    /// The caller's challenge.
    pub challenge: Vec<u8>,
    /// The card's signature over it, already checked against the card key.
    pub signature: Vec<u8>,
}

/// The visual AP, selected.
#[derive(Debug)]
pub struct VisualAp<'s, C> {
    session: &'s mut Session<C>,
    epoch: u64,
}

impl<C: CardChannel> Session<C> {
    /// Selects the visual AP.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn visual(&mut self) -> Result<VisualAp<'_, C>> {
        let epoch = self.open(Application::Visual).await?;
        Ok(VisualAp {
            session: self,
            epoch,
        })
    }
}

async fn read_cvc<C: CardChannel>(session: &mut Session<C>) -> Result<CvCertificate> {
    let bytes = session
        .read_file(visual::CVC, Extent::Tlv, "visual AP certificate")
        .await?;
    CvCertificate::parse(&bytes)
}

/// Signs SHA-256(`challenge`) with the application's own key (`80 2A 00 00`, no credential
/// needed) and checks the signature against `card_key`.
async fn prove_presence<C: CardChannel>(
    session: &mut Session<C>,
    card_key: &CardPublicKey,
    challenge: &[u8],
) -> Result<PresenceProof> {
    if challenge.is_empty() {
        return Err(Error::InvalidInput {
            what: "the challenge is empty",
        });
    }
    let info = crate::crypto::digest_info(HashAlgorithm::Sha256, &sha256(challenge))?;
    let signature = session
        .run(PresenceSign::new(&info, card_key.modulus_len()))
        .await?;
    card_key.verify_pkcs1(&info, &signature, "card-presence signature")?;
    Ok(PresenceProof {
        challenge: challenge.to_vec(),
        signature,
    })
}

impl<C: CardChannel> VisualAp<'_, C> {
    /// The retry counter of a key. Spends nothing.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn pin_status(&mut self, key: VisualKey) -> Result<PinStatus> {
        self.session.ensure(Application::Visual, self.epoch).await?;
        self.session.pin_status(key.pin()).await
    }

    /// Reads the application's card-verifiable certificate (free).
    ///
    /// # Errors
    /// Card, transport and parse errors.
    pub async fn read_cvc(&mut self) -> Result<CvCertificate> {
        self.session.ensure(Application::Visual, self.epoch).await?;
        read_cvc(self.session).await
    }

    /// Asks the card for `len` random bytes (GET CHALLENGE, 1–256).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] outside 1–256; card and transport errors.
    pub async fn get_challenge(&mut self, len: usize) -> Result<Vec<u8>> {
        const OP: &str = "GET CHALLENGE";
        if !(1..=256).contains(&len) {
            return Err(Error::InvalidInput {
                what: "GET CHALLENGE length must be 1-256",
            });
        }
        self.session.ensure(Application::Visual, self.epoch).await?;
        let r = self
            .session
            .exchange(&commands::get_challenge(len as u32), How::plain(OP))
            .await?;
        if !r.is_success() || r.data.len() != len {
            return Err(Error::card(r.sw, OP));
        }
        Ok(r.data)
    }

    /// Has the card sign SHA-256(`challenge`) with its own key and checks the result against
    /// `card_key` — which must come from a record whose signature was checked
    /// ([`VerifiedVisual::read_face_checked`]), or the key proves nothing. Use a fresh random
    /// challenge each time.
    ///
    /// # Errors
    /// [`Error::SignatureInvalid`], [`Error::SignatureLength`], card and transport errors.
    pub async fn prove_presence(
        &mut self,
        card_key: &CardPublicKey,
        challenge: &[u8],
    ) -> Result<PresenceProof> {
        self.session.ensure(Application::Visual, self.epoch).await?;
        prove_presence(self.session, card_key, challenge).await
    }

    async fn verify(
        &mut self,
        key: VisualKey,
        value: zeroize::Zeroizing<Vec<u8>>,
        policy: AttemptPolicy,
    ) -> Result<VerifiedVisual<'_, C>> {
        self.session.ensure(Application::Visual, self.epoch).await?;
        self.session.verify(key.pin(), value, policy).await?;
        Ok(VerifiedVisual {
            session: &mut *self.session,
            epoch: self.epoch,
            key,
        })
    }

    /// Verifies 照合番号B (built with [`CollationB::new`] from the card face), which opens the
    /// card-face record. Retry counter first, as for every VERIFY.
    ///
    /// # Errors
    /// As [`crate::jpki::JpkiAp::verify_auth`].
    pub async fn verify_collation_b(
        &mut self,
        code: &CollationB,
        policy: AttemptPolicy,
    ) -> Result<VerifiedVisual<'_, C>> {
        self.verify(VisualKey::CollationB, code.bytes(), policy)
            .await
    }

    /// Verifies the birth-date key (the first six digits of 照合番号B), which opens only the
    /// age record.
    ///
    /// # Errors
    /// As [`crate::jpki::JpkiAp::verify_auth`].
    pub async fn verify_birth_date(
        &mut self,
        key: &BirthDateKey,
        policy: AttemptPolicy,
    ) -> Result<VerifiedVisual<'_, C>> {
        self.verify(VisualKey::BirthDate, key.bytes(), policy).await
    }

    /// Verifies 照合番号A (the individual number).
    ///
    /// # Errors
    /// As [`crate::jpki::JpkiAp::verify_auth`].
    pub async fn verify_collation_a(
        &mut self,
        my_number: &MyNumber,
        policy: AttemptPolicy,
    ) -> Result<VerifiedVisual<'_, C>> {
        self.verify(VisualKey::CollationA, my_number.bytes(), policy)
            .await
    }
}

/// The visual AP with a collation number verified.
#[derive(Debug)]
pub struct VerifiedVisual<'v, C> {
    session: &'v mut Session<C>,
    epoch: u64,
    key: VisualKey,
}

impl<C> Drop for VerifiedVisual<'_, C> {
    fn drop(&mut self) {
        self.session.forget_selection();
    }
}

impl<C: CardChannel> VerifiedVisual<'_, C> {
    fn check(&mut self) -> Result<()> {
        self.session
            .ensure_verified(Application::Visual, self.epoch)
    }

    /// Reads the card-face record without checking its signature.
    ///
    /// # Errors
    /// Card, transport and parse errors.
    pub async fn read_face(&mut self) -> Result<CardFace> {
        self.check()?;
        let bytes = self
            .session
            .read_file(visual::FACE, Extent::Tlv, "card face")
            .await?;
        CardFace::parse(&bytes)
    }

    /// Reads the card-face record, checks its signature with the key of the application's
    /// certificate and that certificate under `trust` (the answer is in [`Checked::anchor`]).
    ///
    /// # Errors
    /// [`Error::SignatureInvalid`], card, transport and parse errors.
    pub async fn read_face_checked(&mut self, trust: &CvcTrust) -> Result<Checked<CardFace>> {
        let face = self.read_face().await?;
        let cvc = read_cvc(self.session).await?;
        Checked::new(
            face,
            cvc,
            trust,
            CvcScope::Visual,
            CardFace::verify_signature,
        )
    }

    /// Reads the age record (EF `0001`, opened by the birth-date key; 照合番号A or B do not open
    /// it on a card), checks its signature and the certificate under `trust`.
    ///
    /// # Errors
    /// [`Error::SignatureInvalid`], card (`6982` without the birth-date key), transport and
    /// parse errors.
    pub async fn read_age_record(&mut self, trust: &CvcTrust) -> Result<Checked<AgeRecord>> {
        self.check()?;
        let bytes = self
            .session
            .read_file(visual::AGE, Extent::Tlv, "age record")
            .await?;
        let record = AgeRecord::parse(&bytes)?;
        let cvc = read_cvc(self.session).await?;
        Checked::new(
            record,
            cvc,
            trust,
            CvcScope::Visual,
            AgeRecord::verify_signature,
        )
    }

    /// Reads EF `0005`, the picture of the **individual number (My Number)** as printed on the
    /// card, and checks its signature with the key of the application's certificate. Only after
    /// [`VisualAp::verify_collation_a`]; nothing else in this crate reads EF `0005`, and the
    /// session keeps nothing of it. 2 APDUs after the VERIFY with extended length (EF `0005` and
    /// the certificate, one read each), 8 on a link of short APDUs.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] (nothing sent) when the handle was opened with another key;
    /// [`Error::SignatureInvalid`], card, transport and parse errors.
    pub async fn read_my_number_image(
        &mut self,
        trust: &CvcTrust,
    ) -> Result<Checked<MyNumberImage>> {
        self.check()?;
        if self.key != VisualKey::CollationA {
            return Err(Error::InvalidInput {
                what: "the rendered individual number opens only with collation number A",
            });
        }
        let bytes = Zeroizing::new(
            self.session
                .read_file(
                    visual::MY_NUMBER_IMAGE,
                    Extent::Tlv,
                    "rendered individual number",
                )
                .await?,
        );
        let image = MyNumberImage::parse(&bytes)?;
        let cvc = read_cvc(self.session).await?;
        Checked::new(
            image,
            cvc,
            trust,
            CvcScope::Visual,
            MyNumberImage::verify_signature,
        )
    }

    /// As [`VisualAp::prove_presence`].
    ///
    /// # Errors
    /// As [`VisualAp::prove_presence`].
    pub async fn prove_presence(
        &mut self,
        card_key: &CardPublicKey,
        challenge: &[u8],
    ) -> Result<PresenceProof> {
        self.check()?;
        prove_presence(self.session, card_key, challenge).await
    }
}
