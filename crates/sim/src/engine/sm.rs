//! Secure messaging of the text AP, card side: SET SESSION KEY and the `08` class commands.
//!
//! The rules (sources in the crate README, "Secure messaging"): SET SESSION KEY
//! `80 AE 00 00 Lc <RSA-OAEP-SHA256(A0 22 80 20 <32-byte seed>)>` under the EF `0006` key, after
//! the 4-digit PIN; AES-128 key = first 16 seed bytes; every `08` command takes the next message
//! counter (from 1), whose IV is AES-128(key, counter as 16 big-endian bytes); SELECT and VERIFY
//! carry `86 L 01‖ciphertext`, READ BINARY carries `96 03 00 LeHi LeLo` and answers
//! `86 L 01‖ciphertext` with the status word in clear; a cryptogram that does not unpad (a wrong
//! counter) answers `6988` and ends the session, after which `08` commands answer `69FC`.

use mynacard_apdu::tlv::ber;
use mynacard_apdu::{Command, StatusWord};
use rsa::Oaep;
use rsa::traits::PublicKeyParts;
use sha2::Sha256;
use zeroize::Zeroizing;

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit};

use super::{Application, Card, Reply};
use crate::state::SecretId;

const BLOCK: usize = 16;
/// The key-delivery plaintext: `A0 22 80 20` and the 32-byte seed.
const KEY_DELIVERY_HEADER: [u8; 4] = [0xA0, 0x22, 0x80, 0x20];
const KEY_DELIVERY_LEN: usize = 4 + 32;

/// The text AP's secure-messaging state. Selecting an application, reset and power-off return it
/// to [`SmState::Idle`].
pub(super) enum SmState {
    /// No session was opened: `08`/`0C` commands get the refusals of the other APs.
    Idle,
    /// A session is open.
    Live(SmSession),
    /// The session died on an SM error: `08`/`0C` commands answer `69FC` until SET SESSION KEY.
    Ended,
}

/// A live session: the AES-128 key and the counter the next `08` command takes.
pub(super) struct SmSession {
    key: Zeroizing<[u8; BLOCK]>,
    next: u32,
}

impl SmSession {
    fn new(seed: &[u8]) -> SmSession {
        let mut key = Zeroizing::new([0u8; BLOCK]);
        key.copy_from_slice(&seed[..BLOCK]);
        SmSession { key, next: 1 }
    }

    /// The counter the next command takes.
    pub(super) fn next_counter(&self) -> u32 {
        self.next
    }

    fn iv(&self, counter: u32) -> [u8; BLOCK] {
        let mut block = [0u8; BLOCK];
        block[BLOCK - 4..].copy_from_slice(&counter.to_be_bytes());
        let mut block = block.into();
        Aes128::new(&(*self.key).into()).encrypt_block(&mut block);
        block.into()
    }

    /// ISO/IEC 7816-4 padding, then AES-128-CBC with the IV of `counter`.
    fn encrypt(&self, counter: u32, plain: &[u8]) -> Vec<u8> {
        let mut buffer = Zeroizing::new(plain.to_vec());
        buffer.push(0x80);
        let padded = buffer.len().div_ceil(BLOCK) * BLOCK;
        buffer.resize(padded, 0);
        let mut mode = cbc::Encryptor::<Aes128>::new(&(*self.key).into(), &self.iv(counter).into());
        for chunk in buffer.chunks_exact_mut(BLOCK) {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(chunk);
            let mut block = block.into();
            mode.encrypt_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        buffer.to_vec()
    }

    /// The plaintext of a cryptogram, `None` when it is not whole blocks or does not unpad.
    fn decrypt(&self, counter: u32, cipher: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if cipher.is_empty() || !cipher.len().is_multiple_of(BLOCK) {
            return None;
        }
        let mut buffer = Zeroizing::new(cipher.to_vec());
        let mut mode = cbc::Decryptor::<Aes128>::new(&(*self.key).into(), &self.iv(counter).into());
        for chunk in buffer.chunks_exact_mut(BLOCK) {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(chunk);
            let mut block = block.into();
            mode.decrypt_block(&mut block);
            chunk.copy_from_slice(&block);
        }
        let zeros = buffer.iter().rev().take_while(|b| **b == 0).count();
        let marker = buffer.len().checked_sub(zeros + 1)?;
        if buffer[marker] != 0x80 || zeros >= BLOCK {
            return None;
        }
        buffer.truncate(marker);
        Some(buffer)
    }
}

/// The one data object of a command's data field, `None` when there is not exactly one.
fn only_object(data: &[u8], tag: u32) -> Option<&[u8]> {
    let (object, rest) = ber::parse_one(data).ok()?;
    (object.tag == tag && rest.is_empty()).then_some(object.value)
}

/// The ciphertext of `86 L 01‖ciphertext` (short or long length form).
fn cryptogram(data: &[u8]) -> Option<&[u8]> {
    match only_object(data, 0x86)?.split_first()? {
        (0x01, cipher) => Some(cipher),
        _ => None,
    }
}

/// Ne from `96 03 00 LeHi LeLo` (`0` = the whole file from the offset).
fn expected_length(data: &[u8]) -> Option<u32> {
    match only_object(data, 0x96)? {
        [0x00, hi, lo] => Some(match u16::from_be_bytes([*hi, *lo]) {
            0 => 65_536,
            n => u32::from(n),
        }),
        _ => None,
    }
}

/// `86 L 01‖ciphertext`.
fn cryptogram_object(cipher: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(cipher.len() + 1);
    value.push(0x01);
    value.extend_from_slice(cipher);
    super::records::tlv(&[0x86], &value)
}

impl Card {
    /// The counter the card expects on the next `08` command, `None` without a session.
    pub fn secure_messaging_counter(&self) -> Option<u32> {
        match &self.sm {
            SmState::Live(session) => Some(session.next_counter()),
            SmState::Idle | SmState::Ended => None,
        }
    }

    /// SET SESSION KEY `80 AE 00 00 Lc <RSA-OAEP ciphertext>`.
    pub(super) fn set_session_key(&mut self, cmd: &Command) -> Reply {
        let Some(image) = self.image.as_ref() else {
            return super::NO_KEY.into();
        };
        match self.current {
            Some(Application::Text) => {}
            // No key delivery in these security environments (MC): 66F1; nothing selected is
            // answered the same way (a choice).
            Some(Application::Common | Application::Visual) | None => {
                return StatusWord::SmEnvironmentFaulty.into();
            }
            Some(Application::Jpki | Application::Juki) => {
                return StatusWord::SecurityStatusNotSatisfied.into();
            }
        }
        // A refused attempt leaves the state as it was (a choice); a successful one replaces it.
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return StatusWord::IncorrectP1P2.into();
        }
        // Access before decryption (MC): only the PIN opens it, 照合番号A does not.
        if !self.verified.contains(&SecretId::TextPin) {
            return StatusWord::SecurityStatusNotSatisfied.into();
        }
        let key = &image.text_sm_key;
        let data = cmd.data_bytes();
        if data.len() != key.size() {
            return StatusWord::WrongLength.into();
        }
        // A ciphertext at or above the modulus: 6F00 (MC). Same length, so byte order compares.
        let modulus = key.n_bytes();
        let pad = key.size().saturating_sub(modulus.len());
        let mut n = vec![0u8; pad];
        n.extend_from_slice(&modulus);
        if data >= n.as_slice() {
            return StatusWord::NoPreciseDiagnosis.into();
        }
        self.rsa_operations += 1;
        let Ok(plain) = key.decrypt(Oaep::<Sha256>::new(), data) else {
            return StatusWord::IncorrectData.into();
        };
        let plain = Zeroizing::new(plain);
        if plain.len() != KEY_DELIVERY_LEN || plain[..4] != KEY_DELIVERY_HEADER {
            return StatusWord::IncorrectData.into();
        }
        self.sm = SmState::Live(SmSession::new(&plain[4..]));
        Reply::ok(Vec::new())
    }

    /// A secure-messaging class byte in the text AP.
    pub(super) fn secure_command(&mut self, cmd: &Command, extended: bool) -> Reply {
        let SmState::Live(session) = &mut self.sm else {
            return StatusWord::SmSessionError.into();
        };
        // Every SM command takes a counter step, whatever becomes of it (MC).
        let counter = session.next;
        match session.next.checked_add(1) {
            Some(next) => session.next = next,
            None => return self.end_session(),
        }
        match cmd.cla & 0x0C {
            // Header authentication needs a checksum key this AP never has (MC: 6987).
            0x0C => return StatusWord::SmObjectsMissing.into(),
            0x04 => return StatusWord::SecureMessagingNotSupported.into(),
            _ => {}
        }
        match cmd.ins {
            0xA4 | 0x20 => {
                let plain = match cryptogram(cmd.data_bytes()) {
                    Some(cipher) => session.decrypt(counter, cipher),
                    None => None,
                };
                let Some(plain) = plain else {
                    return self.end_session();
                };
                let mut inner = Command::new(0x00, cmd.ins, cmd.p1, cmd.p2);
                if !plain.is_empty() {
                    inner = inner.with_sensitive_data(plain);
                }
                if let Some(ne) = cmd.ne() {
                    inner = inner.with_ne(ne);
                }
                if cmd.ins == 0xA4 {
                    self.select(&inner)
                } else {
                    self.verify(&inner)
                }
            }
            0xB0 => {
                let Some(ne) = expected_length(cmd.data_bytes()) else {
                    return self.end_session();
                };
                // The facts describe extended Le only; a short or missing Le is refused (a
                // choice).
                if !extended || cmd.ne().is_none() {
                    return StatusWord::WrongLength.into();
                }
                let reply =
                    self.read_binary(&Command::new(0x00, 0xB0, cmd.p1, cmd.p2).with_ne(ne), true);
                if reply.data.is_empty() {
                    return reply;
                }
                let SmState::Live(session) = &self.sm else {
                    return StatusWord::SmSessionError.into();
                };
                let plain = Zeroizing::new(reply.data);
                Reply {
                    data: cryptogram_object(&session.encrypt(counter, &plain)),
                    sw: reply.sw,
                }
            }
            // Other commands are not offered under SM (a choice; the counter step stands).
            _ => StatusWord::SecureMessagingNotSupported.into(),
        }
    }

    /// A secure-messaging fault: `6988`, and the session is gone.
    fn end_session(&mut self) -> Reply {
        self.sm = SmState::Ended;
        StatusWord::SmObjectsIncorrect.into()
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

    // Known answers from `openssl enc -aes-128-ecb/-aes-128-cbc -nopad`, key 00 01 … 0F.
    #[test]
    fn card_side_matches_known_answers() {
        let seed: Vec<u8> = (0..32).collect();
        let session = SmSession::new(&seed);
        assert_eq!(
            session.iv(1).to_vec(),
            hex("7346139595c0b41e497bbde365f42d0a")
        );
        assert_eq!(
            session.encrypt(1, &[0x00, 0x02]),
            hex("3f98d945be3a29ed6f2d3d81a89c24a5")
        );
        assert_eq!(
            session
                .decrypt(2, &hex("e5e4a3b25561c8aa29f59348b3730e25"))
                .unwrap()
                .as_slice(),
            b"Hello, SM!"
        );
        assert!(
            session
                .decrypt(1, &hex("e5e4a3b25561c8aa29f59348b3730e25"))
                .is_none()
        );
        assert!(session.decrypt(1, &[0; 15]).is_none());
    }

    #[test]
    fn data_objects_are_strict() {
        assert_eq!(
            cryptogram(&[0x86, 0x03, 0x01, 0xAA, 0xBB]),
            Some(&[0xAA, 0xBB][..])
        );
        assert_eq!(
            cryptogram(&[0x86, 0x81, 0x02, 0x01, 0xAA]),
            Some(&[0xAA][..])
        );
        assert_eq!(cryptogram(&[0x86, 0x02, 0x02, 0xAA]), None);
        assert_eq!(
            cryptogram(&[0x86, 0x02, 0x01, 0xAA, 0x86, 0x02, 0x01, 0xAA]),
            None
        );
        assert_eq!(cryptogram(&[0x96, 0x03, 0x00, 0x00, 0x00]), None);
        assert_eq!(
            expected_length(&[0x96, 0x03, 0x00, 0x00, 0x00]),
            Some(65_536)
        );
        assert_eq!(expected_length(&[0x96, 0x03, 0x00, 0x01, 0x00]), Some(256));
        assert_eq!(expected_length(&[0x96, 0x02, 0x01, 0x00]), None);
        assert_eq!(expected_length(&[0x86, 0x03, 0x00, 0x00, 0x00]), None);
    }
}
