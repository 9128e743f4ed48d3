//! The secure-messaging codec on arbitrary input: answers never panic, every failure is typed
//! and ends the host session, and whatever the codec wraps it unwraps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::StatusWord;
use mynacard_card::sm::{self, SessionKey, SmChannel, SmError};
use proptest::prelude::*;

fn key(bytes: [u8; 16]) -> SessionKey {
    SessionKey::from_bytes(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_answers_never_panic(
        k in any::<[u8; 16]>(),
        counter in any::<u32>(),
        sw in any::<u16>(),
        data in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let key = key(k);
        let _ = sm::unwrap_response_data(&key, counter, &data);
        let _ = sm::parse_cryptogram_object(&data);
        let _ = sm::unpad(&data);
        let mut channel = SmChannel::new(key);
        match channel.unwrap(counter, &data, StatusWord::from_u16(sw)) {
            Ok(answer) => {
                prop_assert!(!channel.is_broken());
                prop_assert_eq!(answer.sw.to_u16(), sw);
            }
            Err(_) => prop_assert!(channel.is_broken()),
        }
    }

    #[test]
    fn cryptograms_with_arbitrary_content_never_panic(
        counter in any::<u32>(),
        cipher in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let key = key([0x5A; 16]);
        let object = sm::cryptogram_object(&cipher);
        prop_assert_eq!(sm::parse_cryptogram_object(&object).unwrap(), cipher.as_slice());
        match sm::unwrap_response_data(&key, counter, &object) {
            // The padding has one form only: what decrypts re-encrypts to the same bytes.
            Ok(plain) => prop_assert_eq!(key.encrypt(counter, &plain), cipher),
            Err(SmError::NotBlockAligned { len }) => prop_assert_eq!(len, cipher.len()),
            Err(SmError::Padding) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn wrapped_answers_round_trip(
        k in any::<[u8; 16]>(),
        counter in 1..u32::MAX,
        plain in proptest::collection::vec(any::<u8>(), 0..700),
    ) {
        let key = key(k);
        let object = sm::cryptogram_object(&key.encrypt(counter, &plain));
        let mut channel = SmChannel::new(key);
        let answer = channel.unwrap(counter, &object, StatusWord::Success).unwrap();
        prop_assert_eq!(answer.data.as_slice(), plain.as_slice());
        // Cut anywhere, the object is a typed error.
        for cut in [1, object.len() / 2, object.len() - 1] {
            let mut fresh = SmChannel::new(SessionKey::from_bytes(k));
            let truncated = fresh.unwrap(counter, &object[..cut], StatusWord::Success);
            prop_assert!(
                matches!(truncated, Err(SmError::Object(_) | SmError::NotBlockAligned { .. } | SmError::PaddingIndicator { .. } | SmError::Padding)),
                "{:?}", truncated
            );
        }
    }
}

#[test]
fn secure_messaging_status_words_end_the_session() {
    for sw in [0x6882, 0x6987, 0x6988, 0x69FC] {
        let mut channel = SmChannel::new(key([1; 16]));
        let err = channel
            .unwrap(1, &[], StatusWord::from_u16(sw))
            .unwrap_err();
        assert!(
            matches!(err, SmError::SessionEnded { sw: s } if s.to_u16() == sw),
            "{err:?}"
        );
        assert!(channel.is_broken());
    }
    for sw in [0x9000, 0x6282, 0x6982, 0x63C2, 0x6A82, 0x6B00] {
        let mut channel = SmChannel::new(key([1; 16]));
        let answer = channel.unwrap(1, &[], StatusWord::from_u16(sw)).unwrap();
        assert!(answer.data.is_empty());
        assert!(!channel.is_broken(), "{sw:04X}");
    }
}
