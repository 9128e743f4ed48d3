//! PINs, passwords and collation keys with their retry counters: the part of the card that
//! survives power-off.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::image::{CardImage, Secret};
use crate::state::{PersistentState, STATE_FORMAT, SavedSecret, SecretId, StateError};
use mynacard_card::BirthDateKey;

/// What a new reference value must look like (B.2, B.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Exactly four ASCII digits (JPKI auth PIN, text AP PIN).
    FourDigits,
    /// 6–16 characters of A–Z and 0–9 (JPKI signing password).
    SignPassword,
}

impl Format {
    /// The form a holder-changeable secret takes; `None` for the keys a holder cannot change
    /// (collation keys, derived from card data, and the text AP's blocked key).
    pub(crate) const fn of(id: SecretId) -> Option<Format> {
        match id {
            SecretId::JpkiAuthPin | SecretId::TextPin | SecretId::CommonPin | SecretId::JukiPin => {
                Some(Format::FourDigits)
            }
            SecretId::JpkiSignPassword => Some(Format::SignPassword),
            _ => None,
        }
    }

    pub(crate) fn accepts(self, value: &[u8]) -> bool {
        match self {
            Format::FourDigits => value.len() == 4 && value.iter().all(u8::is_ascii_digit),
            Format::SignPassword => {
                (6..=16).contains(&value.len())
                    && value
                        .iter()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            }
        }
    }
}

/// The secret whose value the common AP and 住基AP PINs start with: the text AP PIN, else the
/// auth PIN; `None` on a card without PINs (face authentication only).
pub(crate) fn card_pin_source(image: &CardImage) -> Option<&Secret> {
    image.text_pin.as_ref().or(image.auth_pin.as_ref())
}

/// Retry limit of the common AP and 住基AP PINs (`001C`).
pub(crate) const CARD_PIN_LIMIT: u8 = 3;

struct Slot {
    value: Zeroizing<Vec<u8>>,
    limit: u8,
    remaining: u8,
    /// `None` for keys the holder cannot change (collation keys, derived from card data).
    format: Option<Format>,
    changed: bool,
}

/// The result of presenting a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Correct; the counter is back at its limit.
    Accepted,
    /// Wrong; this many tries remain (0: this attempt exhausted the counter).
    Rejected(u8),
    /// Already blocked; nothing was spent.
    Blocked,
}

/// Why CHANGE REFERENCE DATA was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeRefusal {
    /// The key cannot be changed by the holder.
    NotChangeable,
    /// The new value does not have the required form.
    BadValue,
    /// The key is blocked.
    Blocked,
}

/// All secrets of one card.
pub(crate) struct Secrets {
    slots: BTreeMap<SecretId, Slot>,
    /// Bumped on every change of non-volatile state, so harnesses know when to save.
    generation: u64,
}

fn slot_from(secret: &Secret, format: Format) -> Slot {
    Slot {
        value: secret.value.clone(),
        limit: secret.limit,
        remaining: secret.remaining.min(secret.limit),
        format: Some(format),
        changed: false,
    }
}

fn collation(value: String, limit: u8) -> Slot {
    Slot {
        value: Zeroizing::new(value.into_bytes()),
        limit,
        remaining: limit,
        format: None,
        changed: false,
    }
}

impl Secrets {
    /// The secrets of a recorded image, each with the limit and tries left it was recorded with.
    pub(crate) fn from_recorded(secrets: &[(SecretId, Secret)]) -> Self {
        let slots = secrets
            .iter()
            .map(|(id, secret)| {
                let slot = Slot {
                    value: secret.value.clone(),
                    limit: secret.limit,
                    remaining: secret.remaining.min(secret.limit),
                    format: Format::of(*id),
                    changed: false,
                };
                (*id, slot)
            })
            .collect();
        Secrets {
            slots,
            generation: 0,
        }
    }

    pub(crate) fn from_image(image: &CardImage) -> Self {
        let mut slots = BTreeMap::new();
        if let Some(pin) = &image.auth_pin {
            slots.insert(SecretId::JpkiAuthPin, slot_from(pin, Format::FourDigits));
        }
        if let Some(password) = &image.sign_password {
            slots.insert(
                SecretId::JpkiSignPassword,
                slot_from(password, Format::SignPassword),
            );
        }
        if let Some(pin) = &image.text_pin {
            slots.insert(SecretId::TextPin, slot_from(pin, Format::FourDigits));
        }
        // B.3: the common AP and the 住基AP each hold a 4-digit PIN `001C` (3 tries) that user
        // interfaces present as one 個人番号カード用 PIN. A profile has no field for it, so both
        // start with the value of the text AP PIN (else the auth PIN) and a fresh counter.
        if let Some(pin) = card_pin_source(image) {
            for id in [SecretId::CommonPin, SecretId::JukiPin] {
                let mut slot = slot_from(pin, Format::FourDigits);
                slot.limit = CARD_PIN_LIMIT;
                slot.remaining = CARD_PIN_LIMIT;
                slots.insert(id, slot);
            }
        }
        // B.6: key 0012 of the text AP answers 63C0 on every card examined.
        slots.insert(
            SecretId::TextBlockedKey,
            Slot {
                value: Zeroizing::new(Vec::new()),
                limit: 3,
                remaining: 0,
                format: None,
                changed: false,
            },
        );
        let limit = image.collation_limit;
        // B.7: the birth-date key is the era-year YYMMDD, 照合番号B that followed by the expiry
        // year and the security code (both derived by the card crate). A face that cannot form
        // them (an image built by hand with a bad security code) leaves a key no input opens.
        let birth = BirthDateKey::new(image.person.birth_date)
            .map(|k| k.expose().to_owned())
            .unwrap_or_default();
        let b = image
            .collation_number_b()
            .map(|b| b.expose().to_owned())
            .unwrap_or_default();
        let a = image.person.my_number.as_str().to_owned();
        slots.insert(SecretId::TextCollationA, collation(a.clone(), limit));
        slots.insert(SecretId::TextCollationB, collation(b.clone(), limit));
        slots.insert(SecretId::VisualCollationA, collation(a, limit));
        slots.insert(SecretId::VisualCollationB, collation(b, limit));
        slots.insert(SecretId::VisualBirthDate, collation(birth, limit));
        Secrets {
            slots,
            generation: 0,
        }
    }

    pub(crate) fn holds(&self, id: SecretId) -> bool {
        self.slots.contains_key(&id)
    }

    /// Tries left and the limit.
    pub(crate) fn status(&self, id: SecretId) -> Option<(u8, u8)> {
        self.slots.get(&id).map(|s| (s.remaining, s.limit))
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Presents a value; spends one try when it is wrong.
    pub(crate) fn verify(&mut self, id: SecretId, candidate: &[u8]) -> Verdict {
        let Some(slot) = self.slots.get_mut(&id) else {
            return Verdict::Blocked;
        };
        if slot.remaining == 0 {
            return Verdict::Blocked;
        }
        if constant_time_eq(&slot.value, candidate) {
            if slot.remaining != slot.limit {
                slot.remaining = slot.limit;
                self.generation += 1;
            }
            Verdict::Accepted
        } else {
            slot.remaining = slot.remaining.saturating_sub(1);
            self.generation += 1;
            Verdict::Rejected(slot.remaining)
        }
    }

    /// Replaces a reference value (the caller has checked that it was verified).
    pub(crate) fn change(&mut self, id: SecretId, new: &[u8]) -> Result<(), ChangeRefusal> {
        let Some(slot) = self.slots.get_mut(&id) else {
            return Err(ChangeRefusal::NotChangeable);
        };
        let Some(format) = slot.format else {
            return Err(ChangeRefusal::NotChangeable);
        };
        if slot.remaining == 0 {
            return Err(ChangeRefusal::Blocked);
        }
        if !format.accepts(new) {
            return Err(ChangeRefusal::BadValue);
        }
        slot.value = Zeroizing::new(new.to_vec());
        slot.remaining = slot.limit;
        slot.changed = true;
        self.generation += 1;
        Ok(())
    }

    /// The non-volatile state to save.
    pub(crate) fn save(&self, profile: &str, serial: &str) -> PersistentState {
        let secrets = self
            .slots
            .iter()
            .map(|(id, slot)| {
                let value = slot
                    .changed
                    .then(|| String::from_utf8_lossy(&slot.value).into_owned());
                (
                    id.name().to_owned(),
                    SavedSecret {
                        remaining: slot.remaining,
                        value,
                    },
                )
            })
            .collect();
        PersistentState {
            format: STATE_FORMAT,
            profile: profile.to_owned(),
            serial: serial.to_owned(),
            secrets,
        }
    }

    /// Applies a saved state. Counters are clamped to their limits, so a state file can lower a
    /// counter but never raise one above what the card allows.
    pub(crate) fn restore(&mut self, state: &PersistentState) -> Result<(), StateError> {
        // Validate everything before changing anything.
        let mut updates = Vec::with_capacity(state.secrets.len());
        for (name, saved) in &state.secrets {
            let unknown = || StateError::UnknownSecret { name: name.clone() };
            let id = SecretId::from_name(name).ok_or_else(unknown)?;
            let slot = self.slots.get(&id).ok_or_else(unknown)?;
            if let Some(value) = &saved.value {
                let valid = slot.format.is_some_and(|f| f.accepts(value.as_bytes()));
                if !valid {
                    return Err(StateError::InvalidValue { name: name.clone() });
                }
            }
            updates.push((id, saved));
        }
        for (id, saved) in updates {
            if let Some(slot) = self.slots.get_mut(&id) {
                slot.remaining = saved.remaining.min(slot.limit);
                if let Some(value) = &saved.value {
                    slot.value = Zeroizing::new(value.as_bytes().to_vec());
                    slot.changed = true;
                }
            }
        }
        self.generation += 1;
        Ok(())
    }
}

/// Compares without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert!(Format::FourDigits.accepts(b"0000"));
        assert!(!Format::FourDigits.accepts(b"123"));
        assert!(!Format::FourDigits.accepts(b"12a4"));
        assert!(Format::SignPassword.accepts(b"ABC123"));
        assert!(Format::SignPassword.accepts(b"ABCDEFGHIJ123456"));
        assert!(!Format::SignPassword.accepts(b"abc123"));
        assert!(!Format::SignPassword.accepts(b"ABC12"));
        assert!(!Format::SignPassword.accepts(b"ABCDEFGHIJ1234567"));
        assert!(!Format::SignPassword.accepts(b"ABC-123"));
    }

    #[test]
    fn constant_time_eq_compares_contents_and_length() {
        assert!(constant_time_eq(b"1234", b"1234"));
        assert!(!constant_time_eq(b"1234", b"1235"));
        assert!(!constant_time_eq(b"1234", b"12345"));
    }
}
