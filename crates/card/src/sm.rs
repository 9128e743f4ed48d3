//! Secure messaging (SM) of the text AP (券面事項入力補助AP): the codec.
//!
//! Pure functions and a small state machine with no I/O: build the key-delivery block and the
//! wrapped commands, unwrap the card's answers, track the message counter. The APDU exchange
//! lives in [`crate::text::SecureText`], which is what applications use.
//!
//! # What secure messaging gives, and when to use it
//!
//! Over a contactless link (a kiosk's NFC reader, a phone) anything within radio range can record
//! the exchange. Read in clear, the text AP answers the holder's name, address, birth date and sex
//! as plain UTF-8. Under secure messaging those answers travel AES-128-CBC encrypted under a
//! session key that the host generated and delivered RSA-OAEP encrypted to a key of the card.
//!
//! It protects against a **passive** listener only:
//! - the 4-digit PIN must be presented **in clear** before the card accepts a session key, so the
//!   PIN is exposed to a listener either way;
//! - there is no integrity (no cryptographic checksum): an active attacker can alter commands
//!   and answers undetected, apart from what the padding and the record signatures catch;
//! - the key-delivery key of EF `0006` is not signed by anything on the card, so an attacker who
//!   can rewrite the link can substitute their own key.
//!
//! Use it on contactless links. On a contact reader in the user's own hands it buys little for
//! its cost: three more APDUs for the four attributes and one RSA decryption on the card. Counts:
//! see [`crate::text::SecureText`].
//!
//! # Facts used, with sources
//!
//! Sources: the project's protocol notes (`card-protocol.md` §B.6, §B.8, §B.9, tag "MC"), and the
//! module documentation of the open-source Rust crate myna-card (soltia48/myna-card,
//! `src/sm.rs` and `src/ap/text.rs`), whose authors state they measured these behaviours on
//! cards. Each fact below says where it comes from.
//!
//! | fact | source |
//! |---|---|
//! | SET SESSION KEY is `80 AE 00 00 Lc <RSA-OAEP-SHA256 ciphertext>` under the EF `0006` key | §B.6 |
//! | the delivered plaintext is `A0 22 80 20 <32-byte seed>`; AES-128 key = first 16 seed bytes | §B.6; myna-card `sm.rs` |
//! | EF `0006` is `A1 { 90 exponent · 91 modulus }`, a bare RSA-2048 key with no signature | myna-card `text.rs` (`SessionKeyPublicKey`) |
//! | the session opens only after the 4-digit PIN; nothing verified or only 照合番号A → `6982` | myna-card `sm.rs`, `text.rs` |
//! | right access, wrong key → `6A80`; `A0 { 81 … }` and `A0 { 80 …, 81 … }` → `6A80` | myna-card `text.rs`, `sm.rs` |
//! | SM class byte `08` (no header authentication); `0C` answers `6987` | §B.6; myna-card `sm.rs` |
//! | command data is exactly one data object: `86 L 01‖ciphertext` for SELECT and VERIFY, `96 03 00 LeHi LeLo` for READ BINARY; swapped, extra or duplicated objects → `6988`; length may be short or long form | myna-card `sm.rs` |
//! | READ BINARY goes with extended Le; the length `00 00` in `96` asks for the whole file from the offset, filler included | §B.6; myna-card `sm.rs` |
//! | the answer data is the same `86 L 01‖ciphertext` object; the status word stays in clear | myna-card `sm.rs` |
//! | IV = AES-128(key, IV = 0) over the counter as 16 big-endian bytes, the same counter for the command and its answer | §B.6; myna-card `sm.rs` |
//! | the counter starts at 1 after SET SESSION KEY and advances on every SM command (SELECT and VERIFY too, also when refused, e.g. `6984`); plain commands in between do not advance it | §B.6; myna-card `sm.rs` |
//! | a wrong counter shows as a padding failure on the card: `6988`, the session is gone, later SM commands answer `69FC` | §B.6; myna-card `sm.rs` |
//! | ISO/IEC 7816-4 padding `80 00…`, always added (an aligned plaintext grows by one block) | §B.6; myna-card `sm.rs` |
//! | the session lives on the card like the security status: selecting an application or losing the field ends it | myna-card `sm.rs` |
//! | other applications answer SET SESSION KEY with `66F1` (common, visual) or `6982` (JPKI, 住基) | §B.6; myna-card `text.rs` |
//!
//! Inferred, not sourced:
//! - the counter is 32 bits wide in practice (it fills the last four bytes of the IV block);
//!   this codec refuses to wrap past `u32::MAX` rather than guess what the card does;
//! - whether READ BINARY by short EF identifier (`P1 = 80|SFI`) works under SM is not known, so
//!   [`crate::text::SecureText`] selects the EF in clear (a sourced, counter-free step) and reads
//!   by offset;
//! - a short-length link cannot carry SM reads (the facts only describe extended Le), so the card
//!   layer refuses with [`SmError::ExtendedLengthRequired`] before sending anything;
//! - `6882` and `6987` end the session for the host as well (the card's behaviour after them is
//!   not documented, so the host stops trusting its counter).
//!
//! A wrong counter on a READ BINARY cannot be noticed by the card, which receives no ciphertext;
//! the host then decrypts with the wrong IV. In CBC only the first block depends on the IV, so
//! a one-block answer fails the padding check ([`SmError::Padding`]) while a longer one comes
//! back with a garbled first block; [`crate::text::SecureText`] checks that the decrypted file
//! starts with the record tag it holds ([`SmError::Garbled`]) and ends the session otherwise.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};
use mynacard_apdu::tlv::{TlvError, ber};
use mynacard_apdu::{Command, MAX_NE, StatusWord};
use rsa::rand_core::TryCryptoRng;
use zeroize::Zeroizing;

/// Bytes of key material SET SESSION KEY carries.
pub const SEED_LEN: usize = 32;
/// AES block size and session key length.
pub const BLOCK_LEN: usize = 16;
/// Class byte of an SM command without header authentication.
pub const CLA_SM: u8 = 0x08;
/// Instruction byte of SET SESSION KEY (class `80`).
pub const INS_SET_SESSION_KEY: u8 = 0xAE;

const TAG_CRYPTOGRAM: u32 = 0x86;
const TAG_EXPECTED_LENGTH: u8 = 0x96;
const PADDING_INDICATOR: u8 = 0x01;

/// Why secure messaging failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmError {
    /// The answer's data object is not valid BER.
    #[error("secure-messaging answer: malformed data object")]
    Object(#[source] TlvError),
    /// The answer carries another data object than the cryptogram `86`.
    #[error("secure-messaging answer: expected data object 86, found tag {tag:X}")]
    UnexpectedTag {
        /// The tag found.
        tag: u32,
    },
    /// Bytes follow the cryptogram object.
    #[error("secure-messaging answer: {len} bytes after the cryptogram")]
    TrailingBytes {
        /// How many.
        len: usize,
    },
    /// The cryptogram object does not start with the padding-content indicator `01`.
    #[error("secure-messaging answer: padding-content indicator {found:02X?}, expected 01")]
    PaddingIndicator {
        /// The byte found (`None` for an empty object).
        found: Option<u8>,
    },
    /// The cryptogram is empty or not a whole number of AES blocks.
    #[error("secure-messaging answer: cryptogram of {len} bytes is not whole AES blocks")]
    NotBlockAligned {
        /// Its length.
        len: usize,
    },
    /// The decrypted data does not end in `80 00…`: the message counter is out of step with the
    /// card, or the answer was altered.
    #[error("secure-messaging answer: bad padding (message counter out of step?)")]
    Padding,
    /// The decrypted answer does not start with the record the file holds: the message counter
    /// is out of step (only the first block depends on the IV), or the answer was altered.
    #[error(
        "secure-messaging answer: decrypted data is not the expected record (counter out of step?)"
    )]
    Garbled,
    /// The answer of a successful read carried no cryptogram.
    #[error("secure-messaging answer: no cryptogram in a successful answer")]
    MissingCryptogram,
    /// The message counter reached its largest value; open a new session.
    #[error("secure-messaging counter exhausted")]
    CounterExhausted,
    /// The session was ended earlier (by an SM error or a link failure); nothing was sent.
    #[error("the secure-messaging session has ended; open a new one")]
    SessionBroken,
    /// The card reported a secure-messaging error (`6882`, `6987`, `6988`, `69FC`); its session is
    /// gone.
    #[error("the card ended the secure-messaging session ({sw})")]
    SessionEnded {
        /// The status word.
        sw: StatusWord,
    },
    /// The link cannot carry extended-length APDUs, which SM reads need; nothing was sent.
    #[error("secure messaging needs extended-length APDUs, which this link does not carry")]
    ExtendedLengthRequired,
    /// Encrypting the key-delivery block failed.
    #[error("key delivery: RSA-OAEP encryption failed")]
    KeyDelivery(#[source] rsa::Error),
    /// The operating system's random number generator failed.
    #[error("no randomness from the operating system")]
    Random(#[source] getrandom::Error),
}

/// The 32 bytes of key material a host delivers with SET SESSION KEY. Zeroized on drop; `Debug`
/// shows nothing.
pub struct Seed(Zeroizing<[u8; SEED_LEN]>);

impl core::fmt::Debug for Seed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

impl Seed {
    /// A fresh seed from the operating system's random number generator. Every session needs a
    /// fresh one: the counter restarts at 1, so a repeated seed repeats every IV.
    ///
    /// # Errors
    /// [`SmError::Random`].
    pub fn random() -> Result<Seed, SmError> {
        let mut bytes = Zeroizing::new([0u8; SEED_LEN]);
        getrandom::fill(bytes.as_mut()).map_err(SmError::Random)?;
        Ok(Seed(bytes))
    }

    /// A seed from given bytes (tests, known-answer checks). Never use a predictable seed with a
    /// card.
    pub fn from_bytes(bytes: [u8; SEED_LEN]) -> Seed {
        Seed(Zeroizing::new(bytes))
    }

    /// The key-delivery plaintext `A0 22 80 20 <seed>`.
    pub fn key_delivery_block(&self) -> Zeroizing<Vec<u8>> {
        let mut block = Zeroizing::new(Vec::with_capacity(4 + SEED_LEN));
        block.extend_from_slice(&[0xA0, 2 + SEED_LEN as u8, 0x80, SEED_LEN as u8]);
        block.extend_from_slice(self.0.as_ref());
        block
    }

    /// The AES-128 session key: the first 16 bytes.
    pub fn session_key(&self) -> SessionKey {
        let mut key = [0u8; BLOCK_LEN];
        key.copy_from_slice(&self.0[..BLOCK_LEN]);
        SessionKey::from_bytes(key)
    }
}

/// The AES-128 session key. Zeroized on drop; `Debug` shows nothing.
#[derive(Clone)]
pub struct SessionKey(Zeroizing<[u8; BLOCK_LEN]>);

impl core::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// A key from its 16 bytes.
    pub fn from_bytes(bytes: [u8; BLOCK_LEN]) -> SessionKey {
        SessionKey(Zeroizing::new(bytes))
    }

    /// The IV of message `counter`: AES-128 under the session key of the counter written as 16
    /// big-endian bytes (one CBC block with a zero IV).
    pub fn iv(&self, counter: u32) -> [u8; BLOCK_LEN] {
        let cipher = Aes128::new(&(*self.0).into());
        let mut block = [0u8; BLOCK_LEN];
        block[BLOCK_LEN - 4..].copy_from_slice(&counter.to_be_bytes());
        let mut block = block.into();
        cipher.encrypt_block(&mut block);
        block.into()
    }

    /// Pads `plaintext` (ISO/IEC 7816-4) and encrypts it for message `counter`.
    pub fn encrypt(&self, counter: u32, plaintext: &[u8]) -> Vec<u8> {
        let mut buffer = pad(plaintext);
        let mut mode = cbc::Encryptor::<Aes128>::new(&(*self.0).into(), &self.iv(counter).into());
        for chunk in buffer.chunks_exact_mut(BLOCK_LEN) {
            let mut block = [0u8; BLOCK_LEN];
            block.copy_from_slice(chunk);
            let mut block = block.into();
            mode.encrypt_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        buffer.to_vec()
    }

    /// Decrypts a cryptogram of message `counter` and removes the padding.
    ///
    /// # Errors
    /// [`SmError::NotBlockAligned`] or [`SmError::Padding`].
    pub fn decrypt(&self, counter: u32, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, SmError> {
        if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
            return Err(SmError::NotBlockAligned {
                len: ciphertext.len(),
            });
        }
        let mut buffer = Zeroizing::new(ciphertext.to_vec());
        let mut mode = cbc::Decryptor::<Aes128>::new(&(*self.0).into(), &self.iv(counter).into());
        for chunk in buffer.chunks_exact_mut(BLOCK_LEN) {
            let mut block = [0u8; BLOCK_LEN];
            block.copy_from_slice(chunk);
            let mut block = block.into();
            mode.decrypt_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        let len = unpad(&buffer)?.len();
        buffer.truncate(len);
        Ok(buffer)
    }
}

/// ISO/IEC 7816-4 padding: `80`, then `00` up to a whole number of blocks; always added.
pub fn pad(data: &[u8]) -> Zeroizing<Vec<u8>> {
    let len = (data.len() / BLOCK_LEN + 1) * BLOCK_LEN;
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    out.extend_from_slice(data);
    out.push(0x80);
    out.resize(len, 0x00);
    out
}

/// The data without its ISO/IEC 7816-4 padding. Only the last block may hold padding.
///
/// # Errors
/// [`SmError::Padding`] when the data does not end in `80 00…` within its last block.
pub fn unpad(data: &[u8]) -> Result<&[u8], SmError> {
    let zeros = data.iter().rev().take_while(|b| **b == 0).count();
    let marker = data.len().checked_sub(zeros + 1).ok_or(SmError::Padding)?;
    if data[marker] != 0x80 || zeros >= BLOCK_LEN {
        return Err(SmError::Padding);
    }
    Ok(&data[..marker])
}

/// The command data object `86 L 01‖ciphertext` (shortest length form).
pub fn cryptogram_object(ciphertext: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + ciphertext.len());
    value.push(PADDING_INDICATOR);
    value.extend_from_slice(ciphertext);
    let mut out = Vec::with_capacity(value.len() + 4);
    out.push(TAG_CRYPTOGRAM as u8);
    ber::encode_len(value.len(), &mut out);
    out.extend_from_slice(&value);
    out
}

/// The ciphertext inside an answer's `86 L 01‖ciphertext` object. The data must be exactly that
/// one object.
///
/// # Errors
/// [`SmError::Object`], [`SmError::UnexpectedTag`], [`SmError::TrailingBytes`] or
/// [`SmError::PaddingIndicator`].
pub fn parse_cryptogram_object(data: &[u8]) -> Result<&[u8], SmError> {
    let (object, rest) = ber::parse_one(data).map_err(SmError::Object)?;
    if object.tag != TAG_CRYPTOGRAM {
        return Err(SmError::UnexpectedTag { tag: object.tag });
    }
    if !rest.is_empty() {
        return Err(SmError::TrailingBytes { len: rest.len() });
    }
    match object.value.split_first() {
        Some((&PADDING_INDICATOR, ciphertext)) => Ok(ciphertext),
        other => Err(SmError::PaddingIndicator {
            found: other.map(|(b, _)| *b),
        }),
    }
}

/// The plaintext of an answer's data field for message `counter`: empty for an empty field,
/// otherwise the decrypted, unpadded content of its one cryptogram object.
///
/// # Errors
/// As [`parse_cryptogram_object`] and [`SessionKey::decrypt`].
pub fn unwrap_response_data(
    key: &SessionKey,
    counter: u32,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SmError> {
    if data.is_empty() {
        return Ok(Zeroizing::new(Vec::new()));
    }
    key.decrypt(counter, parse_cryptogram_object(data)?)
}

/// The expected-length object `96 03 00 LeHi LeLo` of an SM READ BINARY (`0` = the whole file from
/// the offset).
pub fn expected_length_object(length: u16) -> [u8; 5] {
    let [hi, lo] = length.to_be_bytes();
    [TAG_EXPECTED_LENGTH, 0x03, 0x00, hi, lo]
}

/// RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) encryption of the key-delivery block under the
/// EF `0006` key.
///
/// # Errors
/// [`SmError::KeyDelivery`] (key too small for the block, or the generator failed).
pub fn encrypt_key_delivery<R: TryCryptoRng + ?Sized>(
    key: &rsa::PublicKey,
    seed: &Seed,
    rng: &mut R,
) -> Result<Vec<u8>, SmError> {
    key.encrypt(
        rng,
        rsa::Oaep::<sha2::Sha256>::new(),
        &seed.key_delivery_block(),
    )
    .map_err(SmError::KeyDelivery)
}

/// SET SESSION KEY `80 AE 00 00 Lc <delivery>` (no Le).
pub fn set_session_key_command(delivery: Vec<u8>) -> Command {
    Command::new(0x80, INS_SET_SESSION_KEY, 0x00, 0x00).with_data(delivery)
}

/// Whether a status word reports a secure-messaging failure, after which the card's session is
/// gone (or, for `6882`/`6987`, can no longer be trusted).
pub fn is_session_error(sw: StatusWord) -> bool {
    matches!(
        sw,
        StatusWord::SecureMessagingNotSupported
            | StatusWord::SmObjectsMissing
            | StatusWord::SmObjectsIncorrect
            | StatusWord::SmSessionError
    )
}

/// A wrapped command and the message counter it used (its answer is decrypted with the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The command to send.
    pub command: Command,
    /// Its message counter.
    pub counter: u32,
}

/// An unwrapped answer: the decrypted data (zeroized on drop) and the status word.
#[derive(Clone, PartialEq, Eq)]
pub struct Unwrapped {
    /// Decrypted response data (empty when the card sent none).
    pub data: Zeroizing<Vec<u8>>,
    /// The status word (sent in clear).
    pub sw: StatusWord,
}

impl core::fmt::Debug for Unwrapped {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Unwrapped")
            .field("data_len", &self.data.len())
            .field("sw", &self.sw)
            .finish()
    }
}

/// One secure-messaging session, host side: the key, the next message counter, and whether the
/// session has ended. `Debug` shows the counter and the state, never the key.
pub struct SmChannel {
    key: SessionKey,
    next: u32,
    broken: bool,
}

impl core::fmt::Debug for SmChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SmChannel")
            .field("next_counter", &self.next)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl SmChannel {
    /// A session right after a successful SET SESSION KEY: the first command uses counter 1.
    pub fn new(key: SessionKey) -> SmChannel {
        SmChannel {
            key,
            next: 1,
            broken: false,
        }
    }

    /// The counter the next wrapped command will use.
    pub fn next_counter(&self) -> u32 {
        self.next
    }

    /// Whether the session has ended (SM error from the card, or [`SmChannel::mark_broken`]).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Ends the session on the host side, e.g. after a link failure left it unknown whether the
    /// card counted a command.
    pub fn mark_broken(&mut self) {
        self.broken = true;
    }

    fn take_counter(&mut self) -> Result<u32, SmError> {
        if self.broken {
            return Err(SmError::SessionBroken);
        }
        let counter = self.next;
        self.next = counter.checked_add(1).ok_or(SmError::CounterExhausted)?;
        Ok(counter)
    }

    /// SM READ BINARY `08 B0 P1 P2 00 00 05 96 03 00 LeHi LeLo 00 00`: `p1`/`p2` as for a plain
    /// READ BINARY (offset, or `80|SFI`), `length` plaintext bytes (`0`: all to the end of the
    /// file). Takes a counter step.
    ///
    /// # Errors
    /// [`SmError::SessionBroken`] or [`SmError::CounterExhausted`].
    pub fn read_binary(&mut self, p1: u8, p2: u8, length: u16) -> Result<Wrapped, SmError> {
        let counter = self.take_counter()?;
        let command = Command::new(CLA_SM, 0xB0, p1, p2)
            .with_data(expected_length_object(length).to_vec())
            .with_ne(MAX_NE);
        Ok(Wrapped { command, counter })
    }

    /// SM SELECT EF `08 A4 02 0C Lc 86 L 01‖enc(FID)`. Takes a counter step.
    ///
    /// # Errors
    /// [`SmError::SessionBroken`] or [`SmError::CounterExhausted`].
    pub fn select_ef(&mut self, fid: u16) -> Result<Wrapped, SmError> {
        let counter = self.take_counter()?;
        let ciphertext = self.key.encrypt(counter, &fid.to_be_bytes());
        let command =
            Command::new(CLA_SM, 0xA4, 0x02, 0x0C).with_data(cryptogram_object(&ciphertext));
        Ok(Wrapped { command, counter })
    }

    /// SM VERIFY `08 20 00 P2 Lc 86 L 01‖enc(value)`: the value never crosses the link in clear.
    /// Takes a counter step.
    ///
    /// # Errors
    /// [`SmError::SessionBroken`] or [`SmError::CounterExhausted`].
    pub fn verify(&mut self, p2: u8, value: &[u8]) -> Result<Wrapped, SmError> {
        let counter = self.take_counter()?;
        let ciphertext = self.key.encrypt(counter, value);
        let command =
            Command::new(CLA_SM, 0x20, 0x00, p2).with_data(cryptogram_object(&ciphertext));
        Ok(Wrapped { command, counter })
    }

    /// Unwraps the answer to a command wrapped with `counter`. A secure-messaging status word
    /// ends the session; any other status word is returned with the decrypted data (empty when
    /// the card sent none).
    ///
    /// # Errors
    /// [`SmError::SessionEnded`], or the data errors of [`unwrap_response_data`].
    pub fn unwrap(
        &mut self,
        counter: u32,
        data: &[u8],
        sw: StatusWord,
    ) -> Result<Unwrapped, SmError> {
        if is_session_error(sw) {
            self.broken = true;
            return Err(SmError::SessionEnded { sw });
        }
        // Data that does not decrypt means the counters disagree (or the answer was altered):
        // the session cannot go on.
        let data = unwrap_response_data(&self.key, counter, data).inspect_err(|_| {
            self.broken = true;
        })?;
        Ok(Unwrapped { data, sw })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn test_key() -> SessionKey {
        SessionKey::from_bytes(core::array::from_fn(|i| i as u8))
    }

    // Known answers computed with `openssl enc -aes-128-ecb/-aes-128-cbc -nopad` for the key
    // 00 01 … 0F: an independent implementation of the IV rule and the CBC encryption.
    #[test]
    fn iv_and_encryption_match_known_answers() {
        let key = test_key();
        assert_eq!(key.iv(1).to_vec(), hex("7346139595c0b41e497bbde365f42d0a"));
        assert_eq!(key.iv(2).to_vec(), hex("49d68753999ba68ce3897a686081b09d"));
        assert_eq!(
            key.encrypt(1, &[0x00, 0x02]),
            hex("3f98d945be3a29ed6f2d3d81a89c24a5")
        );
        assert_eq!(
            key.encrypt(2, b"Hello, SM!"),
            hex("e5e4a3b25561c8aa29f59348b3730e25")
        );
        let aligned: Vec<u8> = (0..16).collect();
        assert_eq!(
            key.encrypt(2, &aligned),
            hex("a959cb9ce3b93919547c3b6de833413d83dc11fbcba3ed8f9dccfcc6fb3a539d")
        );
    }

    #[test]
    fn round_trip_at_every_length_around_block_boundaries() {
        let key = test_key();
        for len in 0..=48 {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let ct = key.encrypt(9, &plain);
            assert_eq!(ct.len(), (len / 16 + 1) * 16, "padding always added");
            assert_eq!(key.decrypt(9, &ct).unwrap().as_slice(), plain.as_slice());
            let object = cryptogram_object(&ct);
            assert_eq!(
                unwrap_response_data(&key, 9, &object).unwrap().as_slice(),
                plain.as_slice()
            );
        }
    }

    #[test]
    fn padding_rules() {
        assert_eq!(pad(b"1234").len(), 16);
        assert_eq!(pad(&[0; 16]).len(), 32);
        assert_eq!(unpad(&pad(b"")).unwrap(), b"");
        assert_eq!(unpad(&[1, 2, 0x80]).unwrap(), &[1, 2]);
        assert!(matches!(unpad(&[0; 16]), Err(SmError::Padding)));
        assert!(matches!(unpad(&[1; 16]), Err(SmError::Padding)));
        assert!(matches!(unpad(&[]), Err(SmError::Padding)));
        // The marker must sit in the last block.
        let mut long = vec![0x80];
        long.extend([0; 16]);
        assert!(matches!(unpad(&long), Err(SmError::Padding)));
    }

    #[test]
    fn wrong_counter_on_a_one_block_answer_is_a_padding_error() {
        let key = test_key();
        let ct = key.encrypt(1, &[0x00, 0x02]);
        assert!(matches!(key.decrypt(2, &ct), Err(SmError::Padding)));
        assert!(matches!(key.decrypt(0, &ct), Err(SmError::Padding)));
        // Longer answers: only the first block depends on the IV.
        let plain: Vec<u8> = (0..40).collect();
        let ct = key.encrypt(5, &plain);
        let wrong = key.decrypt(6, &ct).unwrap();
        assert_ne!(wrong[..16], plain[..16]);
        assert_eq!(wrong[16..], plain[16..]);
    }

    #[test]
    fn malformed_objects_are_typed_errors() {
        let key = test_key();
        let ct = key.encrypt(1, b"abc");
        let good = cryptogram_object(&ct);
        assert!(matches!(
            parse_cryptogram_object(&good[..good.len() - 1]),
            Err(SmError::Object(_))
        ));
        assert!(matches!(
            parse_cryptogram_object(&[0x86]),
            Err(SmError::Object(_))
        ));
        let mut other = good.clone();
        other[0] = 0x87;
        assert!(matches!(
            parse_cryptogram_object(&other),
            Err(SmError::UnexpectedTag { tag: 0x87 })
        ));
        let mut trailing = good.clone();
        trailing.extend([0x99, 0x02, 0x90, 0x00]);
        assert!(matches!(
            parse_cryptogram_object(&trailing),
            Err(SmError::TrailingBytes { len: 4 })
        ));
        let mut indicator = good.clone();
        indicator[2] = 0x02;
        assert!(matches!(
            parse_cryptogram_object(&indicator),
            Err(SmError::PaddingIndicator { found: Some(2) })
        ));
        assert!(matches!(
            parse_cryptogram_object(&[0x86, 0x00]),
            Err(SmError::PaddingIndicator { found: None })
        ));
        assert!(matches!(
            unwrap_response_data(&key, 1, &[0x86, 0x01, 0x01]),
            Err(SmError::NotBlockAligned { len: 0 })
        ));
        assert!(matches!(
            unwrap_response_data(&key, 1, &[0x86, 0x04, 0x01, 1, 2, 3]),
            Err(SmError::NotBlockAligned { len: 3 })
        ));
        assert!(unwrap_response_data(&key, 1, &[]).unwrap().is_empty());
    }

    #[test]
    fn long_form_lengths_are_written_and_read() {
        let ct = vec![0xAB; 400];
        let object = cryptogram_object(&ct);
        assert_eq!(&object[..5], &[0x86, 0x82, 0x01, 0x91, 0x01]);
        assert_eq!(parse_cryptogram_object(&object).unwrap(), ct.as_slice());
        let short = cryptogram_object(&[0xAB; 16]);
        assert_eq!(&short[..3], &[0x86, 0x11, 0x01]);
    }

    #[test]
    fn channel_counts_every_command_and_stops_after_a_session_error() {
        let mut channel = SmChannel::new(test_key());
        assert_eq!(channel.next_counter(), 1);
        let read = channel.read_binary(0x00, 0x00, 0).unwrap();
        assert_eq!(read.counter, 1);
        assert_eq!(
            read.command
                .to_bytes(mynacard_apdu::LengthEncoding::Extended)
                .unwrap()
                .as_slice(),
            &[
                0x08, 0xB0, 0x00, 0x00, 0x00, 0x00, 0x05, 0x96, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00
            ]
        );
        let select = channel.select_ef(0x0002).unwrap();
        assert_eq!(select.counter, 2);
        assert_eq!(&select.command.data_bytes()[..3], &[0x86, 0x11, 0x01]);
        assert_eq!(
            test_key()
                .decrypt(2, &select.command.data_bytes()[3..])
                .unwrap()
                .as_slice(),
            &[0x00, 0x02]
        );
        let verify = channel.verify(0x91, b"1234").unwrap();
        assert_eq!(verify.counter, 3);
        // An application refusal keeps the session.
        let refused = channel
            .unwrap(3, &[], StatusWord::RetriesRemaining(2))
            .unwrap();
        assert_eq!(refused.sw, StatusWord::RetriesRemaining(2));
        assert!(!channel.is_broken());
        assert!(matches!(
            channel.unwrap(4, &[], StatusWord::SmObjectsIncorrect),
            Err(SmError::SessionEnded {
                sw: StatusWord::SmObjectsIncorrect
            })
        ));
        assert!(channel.is_broken());
        assert!(matches!(
            channel.read_binary(0, 0, 0),
            Err(SmError::SessionBroken)
        ));
    }

    #[test]
    fn counter_exhaustion_is_refused() {
        let mut channel = SmChannel::new(test_key());
        channel.next = u32::MAX;
        assert!(matches!(
            channel.read_binary(0, 0, 0),
            Err(SmError::CounterExhausted)
        ));
    }

    #[test]
    fn seed_gives_key_and_delivery_block() {
        let seed = Seed::from_bytes(core::array::from_fn(|i| 0x40 + i as u8));
        let block = seed.key_delivery_block();
        assert_eq!(&block[..4], &[0xA0, 0x22, 0x80, 0x20]);
        assert_eq!(block.len(), 36);
        assert_eq!(block[4], 0x40);
        let key = seed.session_key();
        let expected = SessionKey::from_bytes(core::array::from_fn(|i| 0x40 + i as u8));
        assert_eq!(key.iv(1), expected.iv(1));
        assert_eq!(
            format!("{seed:?} {key:?}"),
            "Seed(<redacted>) SessionKey(<redacted>)"
        );
        let a = Seed::random().unwrap();
        let b = Seed::random().unwrap();
        assert_ne!(a.key_delivery_block(), b.key_delivery_block());
    }
}
