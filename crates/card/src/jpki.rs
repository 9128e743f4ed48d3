//! 公的個人認証AP (JPKI): token, certificates, PIN status, VERIFY, signing and PIN change.
//!
//! Signing is only reachable through [`VerifiedAuth`] and [`VerifiedSign`], which a successful
//! VERIFY returns. They borrow the application handle mutably, so nothing else reaches the card
//! while a PIN is verified, and they stop working after a card reset.

use core::fmt;

use crate::catalogue::{SignScheme, jpki};
use mynacard_transport::CardChannel;

use crate::crypto::{CardPublicKey, HashAlgorithm, sha256};
use crate::ops::Sign;
use crate::pin::{AttemptPolicy, Pin, PinKind, PinStatus, SignPassword};
use crate::session::{Application, Extent, Session};
use crate::{Error, Result};

/// The JPKI keys and their PINs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JpkiKey {
    /// 利用者証明用: authentication key (`0017`), PIN `0018`.
    Auth,
    /// 署名用: signing key (`001A`), password `001B`.
    Sign,
}

impl JpkiKey {
    /// The PIN protecting the key.
    pub const fn pin(self) -> PinKind {
        match self {
            JpkiKey::Auth => PinKind::JpkiAuth,
            JpkiKey::Sign => PinKind::JpkiSign,
        }
    }

    const fn key_file(self) -> u16 {
        match self {
            JpkiKey::Auth => jpki::AUTH_KEY,
            JpkiKey::Sign => jpki::SIGN_KEY,
        }
    }
}

/// The certificates readable without any PIN on a physical card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublicCertificate {
    /// 利用者証明用電子証明書 (`000A`). On the Android smartphone token it needs the auth PIN:
    /// use [`VerifiedAuth::read_auth_certificate`] there.
    Auth,
    /// 利用者証明用CA証明書 (`000B`).
    AuthCa,
    /// 署名用CA証明書 (`0002`).
    SignCa,
}

impl PublicCertificate {
    const fn file(self) -> (u16, &'static str) {
        match self {
            PublicCertificate::Auth => (jpki::AUTH_CERT, "authentication certificate"),
            PublicCertificate::AuthCa => (jpki::AUTH_CA_CERT, "authentication CA certificate"),
            PublicCertificate::SignCa => (jpki::SIGN_CA_CERT, "signing CA certificate"),
        }
    }
}

/// A DER certificate read from the card. The signing certificate names its holder, so `Debug`
/// shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("der_len", &self.der.len())
            .finish()
    }
}

impl Certificate {
    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The DER bytes, consuming the value.
    pub fn into_der(self) -> Vec<u8> {
        self.der
    }

    /// PEM text (`-----BEGIN CERTIFICATE-----`, LF line endings).
    ///
    /// # Errors
    /// [`Error::Malformed`] if the encoder fails.
    pub fn to_pem(&self) -> Result<String> {
        der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, &self.der).map_err(|_| {
            Error::Malformed {
                what: "certificate cannot be PEM-encoded",
            }
        })
    }

    /// The certificate's RSA public key.
    ///
    /// # Errors
    /// [`Error::MalformedDer`] or [`Error::Malformed`].
    pub fn public_key(&self) -> Result<CardPublicKey> {
        CardPublicKey::from_certificate(&self.der)
    }
}

/// What kind of JPKI token answered (the label of EF `0006`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// `JPKIAPICCTOKEN2`: a My Number Card.
    MyNumberCard,
    /// `JPKIAPICCTOKEN`: an old 住基カード.
    JukiCard,
    /// `JPKIAPGPSETOKEN`: the Android smartphone certificate (secure element).
    AndroidSe,
    /// `JPKIAPIOSTOKEN`: the iPhone certificate.
    Ios,
    /// Any other label.
    Unknown(String),
}

impl TokenKind {
    /// A stable short name for machine-readable output.
    pub fn short_name(&self) -> &str {
        match self {
            TokenKind::MyNumberCard => "my-number-card",
            TokenKind::JukiCard => "juki-card",
            TokenKind::AndroidSe => "android-se",
            TokenKind::Ios => "ios",
            TokenKind::Unknown(_) => "unknown",
        }
    }
}

/// The token information of EF `0006` (a PKCS#11 `CK_TOKEN_INFO` with big-endian integers).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenInfo {
    /// The label, trailing spaces removed.
    pub label: String,
    /// What the label says the token is.
    pub kind: TokenKind,
    /// `manufacturerID`, when the file is long enough to hold it.
    pub manufacturer: Option<String>,
    /// `model`, when present.
    pub model: Option<String>,
}

fn padded_text(bytes: &[u8]) -> Option<String> {
    let trimmed = bytes
        .iter()
        .rposition(|b| *b != b' ' && *b != 0)
        .map_or(&bytes[..0], |end| &bytes[..=end]);
    (trimmed.iter().all(|b| (0x20..0x7F).contains(b)))
        .then(|| String::from_utf8_lossy(trimmed).into_owned())
}

impl TokenInfo {
    /// Parses EF `0006`. Files cut short (older tools saw only the label) are accepted.
    ///
    /// # Errors
    /// [`Error::Malformed`] when the label is empty or not printable ASCII.
    pub fn parse(bytes: &[u8]) -> Result<TokenInfo> {
        let label = padded_text(bytes.get(..32).unwrap_or(bytes))
            .filter(|l| !l.is_empty())
            .ok_or(Error::Malformed {
                what: "token label is empty or not ASCII",
            })?;
        let kind = match label.as_str() {
            "JPKIAPICCTOKEN2" => TokenKind::MyNumberCard,
            "JPKIAPICCTOKEN" => TokenKind::JukiCard,
            "JPKIAPGPSETOKEN" => TokenKind::AndroidSe,
            "JPKIAPIOSTOKEN" => TokenKind::Ios,
            other => TokenKind::Unknown(other.to_owned()),
        };
        Ok(TokenInfo {
            label,
            kind,
            manufacturer: bytes.get(32..64).and_then(padded_text),
            model: bytes.get(64..80).and_then(padded_text),
        })
    }
}

/// Which certificates the token holds (EF `0008`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertificateAvailability {
    /// The signing certificate exists (first byte `8F`); absent for under-15 holders.
    pub sign: bool,
    /// The authentication certificate exists (second byte `8F`).
    pub auth: bool,
    /// The three bytes as read.
    pub raw: [u8; 3],
}

impl CertificateAvailability {
    /// Parses EF `0008`.
    ///
    /// # Errors
    /// [`Error::Malformed`] unless exactly three bytes are given.
    pub fn parse(bytes: &[u8]) -> Result<CertificateAvailability> {
        let raw: [u8; 3] = bytes.try_into().map_err(|_| Error::Malformed {
            what: "certificate availability is not 3 bytes",
        })?;
        Ok(CertificateAvailability {
            sign: raw[0] == 0x8F,
            auth: raw[1] == 0x8F,
            raw,
        })
    }
}

/// The JPKI application, selected.
#[derive(Debug)]
pub struct JpkiAp<'s, C> {
    session: &'s mut Session<C>,
    epoch: u64,
}

impl<C: CardChannel> Session<C> {
    /// Selects the JPKI application (one SELECT, skipped when it is already selected).
    ///
    /// # Errors
    /// [`Error::Card`] with `6A82` when the card has no JPKI application, or transport errors.
    pub async fn jpki(&mut self) -> Result<JpkiAp<'_, C>> {
        let epoch = self.open(Application::Jpki).await?;
        Ok(JpkiAp {
            session: self,
            epoch,
        })
    }
}

impl<C: CardChannel> JpkiAp<'_, C> {
    /// Reads the token information (EF `0006`).
    ///
    /// # Errors
    /// Card, transport and parse errors.
    pub async fn token_info(&mut self) -> Result<TokenInfo> {
        self.session.ensure(Application::Jpki, self.epoch).await?;
        let bytes = self
            .session
            .read_file(jpki::TOKEN_INFO, Extent::Physical, "token information")
            .await?;
        TokenInfo::parse(&bytes)
    }

    /// Reads which certificates exist (EF `0008`).
    ///
    /// # Errors
    /// Card, transport and parse errors.
    pub async fn availability(&mut self) -> Result<CertificateAvailability> {
        self.session.ensure(Application::Jpki, self.epoch).await?;
        let bytes = self
            .session
            .read_file(
                jpki::AVAILABILITY,
                Extent::Exact(3),
                "certificate availability",
            )
            .await?;
        CertificateAvailability::parse(&bytes)
    }

    /// Reads a certificate that needs no PIN. With extended length this is one READ BINARY by
    /// short EF identifier.
    ///
    /// # Errors
    /// [`Error::Card`] with `6982` when the token guards it (the Android token's auth
    /// certificate), `6A82` when absent; transport errors.
    pub async fn read_certificate(&mut self, which: PublicCertificate) -> Result<Certificate> {
        self.session.ensure(Application::Jpki, self.epoch).await?;
        let (fid, what) = which.file();
        let der = self.session.read_file(fid, Extent::Tlv, what).await?;
        if which == PublicCertificate::Auth {
            remember_auth_cert(self.session, &der);
        }
        Ok(Certificate { der })
    }

    /// The retry counter of a key's PIN. Spends nothing.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn pin_status(&mut self, key: JpkiKey) -> Result<PinStatus> {
        self.session.ensure(Application::Jpki, self.epoch).await?;
        self.session.pin_status(key.pin()).await
    }

    /// Verifies the authentication PIN: reads the retry counter, refuses when blocked or (unless
    /// `policy` allows it) when one try is left, then sends one VERIFY.
    ///
    /// # Errors
    /// [`Error::WrongPin`], [`Error::Blocked`], [`Error::LastAttemptRefused`],
    /// [`Error::AttemptMayHaveBeenCounted`], [`Error::PinNotSet`], card and transport errors.
    pub async fn verify_auth(
        &mut self,
        pin: &Pin,
        policy: AttemptPolicy,
    ) -> Result<VerifiedAuth<'_, C>> {
        self.session.ensure(Application::Jpki, self.epoch).await?;
        self.session
            .verify(PinKind::JpkiAuth, pin.bytes(), policy)
            .await?;
        Ok(VerifiedAuth {
            inner: Verified::new(self.session, self.epoch),
        })
    }

    /// Verifies the signing password (upper-cased by [`SignPassword`]), with the same checks as
    /// [`JpkiAp::verify_auth`].
    ///
    /// # Errors
    /// As [`JpkiAp::verify_auth`].
    pub async fn verify_sign(
        &mut self,
        password: &SignPassword,
        policy: AttemptPolicy,
    ) -> Result<VerifiedSign<'_, C>> {
        self.session.ensure(Application::Jpki, self.epoch).await?;
        self.session
            .verify(PinKind::JpkiSign, password.bytes(), policy)
            .await?;
        Ok(VerifiedSign {
            inner: Verified::new(self.session, self.epoch),
        })
    }
}

fn remember_auth_cert<C>(session: &mut Session<C>, der: &[u8]) {
    session.cache.auth_cert = Some(der.to_vec());
    session.cache.auth_key = CardPublicKey::from_certificate(der).ok();
}

/// The state shared by both verified handles.
#[derive(Debug)]
struct Verified<'v, C> {
    session: &'v mut Session<C>,
    epoch: u64,
    closed: bool,
}

impl<'v, C> Verified<'v, C> {
    fn new(session: &'v mut Session<C>, epoch: u64) -> Self {
        Verified {
            session,
            epoch,
            closed: false,
        }
    }
}

impl<C> Drop for Verified<'_, C> {
    fn drop(&mut self) {
        if !self.closed {
            // The next use of the session re-selects the application, which clears the PIN.
            self.session.forget_selection();
        }
    }
}

impl<C: CardChannel> Verified<'_, C> {
    fn check(&mut self) -> Result<()> {
        self.session.ensure_verified(Application::Jpki, self.epoch)
    }

    async fn public_key(&mut self, key: JpkiKey) -> Result<CardPublicKey> {
        match key {
            JpkiKey::Auth => {
                if let Some(k) = &self.session.cache.auth_key {
                    return Ok(k.clone());
                }
                let cert = self.read_auth_certificate().await?;
                cert.public_key()
            }
            JpkiKey::Sign => {
                if let Some(k) = &self.session.cache.sign_key {
                    return Ok(k.clone());
                }
                let cert = self.read_sign_certificate().await?;
                cert.public_key()
            }
        }
    }

    async fn read_auth_certificate(&mut self) -> Result<Certificate> {
        self.check()?;
        let der = self
            .session
            .read_file(jpki::AUTH_CERT, Extent::Tlv, "authentication certificate")
            .await?;
        remember_auth_cert(self.session, &der);
        Ok(Certificate { der })
    }

    async fn read_sign_certificate(&mut self) -> Result<Certificate> {
        self.check()?;
        let der = self
            .session
            .read_file(jpki::SIGN_CERT, Extent::Tlv, "signing certificate")
            .await?;
        self.session.cache.sign_key = CardPublicKey::from_certificate(&der).ok();
        Ok(Certificate { der })
    }

    async fn sign(&mut self, key: JpkiKey, scheme: SignScheme, input: &[u8]) -> Result<Vec<u8>> {
        self.check()?;
        let expected = Expected::for_scheme(scheme, input)?;
        let public = self.public_key(key).await?;
        let signature = self
            .session
            .run(Sign::new(
                key.key_file(),
                scheme,
                input,
                public.modulus_len(),
            ))
            .await?;
        expected.check(&public, &signature)?;
        Ok(signature)
    }

    async fn change(&mut self, key: PinKind, new: zeroize::Zeroizing<Vec<u8>>) -> Result<()> {
        self.check()?;
        self.session.change_reference_data(key, new).await
    }

    async fn logout(mut self) -> Result<()> {
        self.closed = true;
        self.session.forget_selection();
        self.session.ensure(Application::Jpki, self.epoch).await
    }
}

/// What a signature must verify against.
enum Expected {
    /// PKCS#1 v1.5 over these encoded bytes (a DigestInfo or a bare hash).
    Pkcs1(Vec<u8>),
    /// RSASSA-PSS over this SHA-256 hash.
    Pss([u8; 32]),
}

impl Expected {
    fn for_scheme(scheme: SignScheme, input: &[u8]) -> Result<Expected> {
        let hash32 = || -> Result<[u8; 32]> {
            input.try_into().map_err(|_| Error::InvalidInput {
                what: "this scheme takes a 32-byte SHA-256 hash",
            })
        };
        let card_hashed = || -> Result<[u8; 32]> {
            if input.len() > 255 {
                return Err(Error::InvalidInput {
                    what: "on-card hashing takes at most 255 bytes",
                });
            }
            Ok(sha256(input))
        };
        Ok(match scheme {
            SignScheme::Pkcs1DigestInfo => {
                if input.is_empty() || input.len() > 245 {
                    return Err(Error::InvalidInput {
                        what: "PKCS#1 v1.5 input must be 1-245 bytes",
                    });
                }
                Expected::Pkcs1(input.to_vec())
            }
            SignScheme::Pkcs1CardSha256Bare => Expected::Pkcs1(card_hashed()?.to_vec()),
            SignScheme::Pkcs1Sha256Hash => Expected::Pkcs1(crate::crypto::digest_info(
                HashAlgorithm::Sha256,
                &hash32()?,
            )?),
            SignScheme::Pkcs1CardSha256 => Expected::Pkcs1(crate::crypto::digest_info(
                HashAlgorithm::Sha256,
                &card_hashed()?,
            )?),
            SignScheme::PssSha256Hash => Expected::Pss(hash32()?),
            SignScheme::PssCardSha256 => Expected::Pss(card_hashed()?),
        })
    }

    fn check(&self, key: &CardPublicKey, signature: &[u8]) -> Result<()> {
        const WHAT: &str = "card signature";
        match self {
            Expected::Pkcs1(encoded) => key.verify_pkcs1(encoded, signature, WHAT),
            Expected::Pss(hash) => key.verify_pss_sha256(hash, signature, WHAT),
        }
    }
}

macro_rules! signing_methods {
    ($key:expr) => {
        /// Hashes `message` and signs its DigestInfo with PKCS#1 v1.5 (`80 2A 00 8x`). The
        /// signature is checked against the certificate's key before it is returned.
        ///
        /// # Errors
        /// [`Error::SignatureLength`], [`Error::SignatureInvalid`], [`Error::CardReset`], card
        /// and transport errors. The command is never repeated.
        pub async fn sign(&mut self, hash: HashAlgorithm, message: &[u8]) -> Result<Vec<u8>> {
            self.sign_digest(hash, &hash.digest(message)).await
        }

        /// Signs a digest computed by the caller (its DigestInfo, PKCS#1 v1.5).
        ///
        /// # Errors
        /// As `sign`; [`Error::InvalidInput`] when the digest length does not match `hash`.
        pub async fn sign_digest(&mut self, hash: HashAlgorithm, digest: &[u8]) -> Result<Vec<u8>> {
            let info = crate::crypto::digest_info(hash, digest)?;
            self.inner
                .sign($key, SignScheme::Pkcs1DigestInfo, &info)
                .await
        }

        /// Signs with one of the card's schemes (P1 `00`–`05`): PKCS#1 v1.5 of supplied bytes,
        /// on-card SHA-256 (bare, or wrapped in a DigestInfo), a supplied SHA-256 hash, or
        /// RSASSA-PSS. The result is checked against the certificate's key.
        ///
        /// # Errors
        /// As `sign`; [`Error::InvalidInput`] when `input` does not fit the scheme.
        pub async fn sign_with_scheme(
            &mut self,
            scheme: SignScheme,
            input: &[u8],
        ) -> Result<Vec<u8>> {
            self.inner.sign($key, scheme, input).await
        }

        /// Ends the verified state now by re-selecting the application (one SELECT). Dropping
        /// the handle has the same effect at the next use of the session.
        ///
        /// # Errors
        /// Card and transport errors.
        pub async fn logout(self) -> Result<()> {
            self.inner.logout().await
        }
    };
}

/// The JPKI application with the authentication PIN verified.
#[derive(Debug)]
pub struct VerifiedAuth<'v, C> {
    inner: Verified<'v, C>,
}

impl<C: CardChannel> VerifiedAuth<'_, C> {
    signing_methods!(JpkiKey::Auth);

    /// Reads the authentication certificate (needed on the Android token, where it is guarded
    /// by the PIN).
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn read_auth_certificate(&mut self) -> Result<Certificate> {
        self.inner.read_auth_certificate().await
    }

    /// Replaces the authentication PIN (CHANGE REFERENCE DATA, sent once).
    ///
    /// # Errors
    /// [`Error::AttemptMayHaveBeenCounted`] when the link fails on the way; card errors.
    pub async fn change_pin(&mut self, new: &Pin) -> Result<()> {
        self.inner.change(PinKind::JpkiAuth, new.bytes()).await
    }
}

/// The JPKI application with the signing password verified.
#[derive(Debug)]
pub struct VerifiedSign<'v, C> {
    inner: Verified<'v, C>,
}

impl<C: CardChannel> VerifiedSign<'_, C> {
    signing_methods!(JpkiKey::Sign);

    /// Reads the signing certificate (`0001`), which needs the password. It names the holder:
    /// handle it as personal data.
    ///
    /// # Errors
    /// Card and transport errors.
    pub async fn read_sign_certificate(&mut self) -> Result<Certificate> {
        self.inner.read_sign_certificate().await
    }

    /// Replaces the signing password (CHANGE REFERENCE DATA, sent once).
    ///
    /// # Errors
    /// [`Error::AttemptMayHaveBeenCounted`] when the link fails on the way; card errors.
    pub async fn change_password(&mut self, new: &SignPassword) -> Result<()> {
        self.inner.change(PinKind::JpkiSign, new.bytes()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_labels() {
        let mut file = b"JPKIAPICCTOKEN2                 ".to_vec();
        file.extend_from_slice(b"J-LIS                           ");
        file.resize(160, 0);
        let t = TokenInfo::parse(&file).unwrap();
        assert_eq!(t.kind, TokenKind::MyNumberCard);
        assert_eq!(t.manufacturer.as_deref(), Some("J-LIS"));
        assert_eq!(
            TokenInfo::parse(b"JPKIAPGPSETOKEN     ").unwrap().kind,
            TokenKind::AndroidSe
        );
        assert_eq!(
            TokenInfo::parse(b"JPKIAPICCTOKEN").unwrap().kind,
            TokenKind::JukiCard
        );
        assert!(matches!(
            TokenInfo::parse(b"OTHER").unwrap().kind,
            TokenKind::Unknown(_)
        ));
        assert!(TokenInfo::parse(b"        ").is_err());
        assert!(TokenInfo::parse(&[0xFF; 32]).is_err());
    }

    #[test]
    fn availability_bytes() {
        let a = CertificateAvailability::parse(&[0x8F, 0x8F, 0x00]).unwrap();
        assert!(a.sign && a.auth);
        let u15 = CertificateAvailability::parse(&[0x00, 0x8F, 0x00]).unwrap();
        assert!(!u15.sign && u15.auth);
        assert!(CertificateAvailability::parse(&[0x8F]).is_err());
    }

    #[test]
    fn scheme_inputs_are_checked_before_sending() {
        assert!(Expected::for_scheme(SignScheme::Pkcs1DigestInfo, &[]).is_err());
        assert!(Expected::for_scheme(SignScheme::Pkcs1DigestInfo, &[0; 246]).is_err());
        assert!(Expected::for_scheme(SignScheme::Pkcs1Sha256Hash, &[0; 31]).is_err());
        assert!(Expected::for_scheme(SignScheme::PssSha256Hash, &[0; 32]).is_ok());
        assert!(Expected::for_scheme(SignScheme::PssCardSha256, &[0; 256]).is_err());
        assert!(Expected::for_scheme(SignScheme::Pkcs1CardSha256, &[0; 255]).is_ok());
    }
}
