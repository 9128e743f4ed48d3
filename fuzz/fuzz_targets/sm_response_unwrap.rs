//! Secure-messaging answers of the text AP: arbitrary response data and status words unwrapped
//! under a fixed session key. Never panics; whatever decrypts re-encrypts to the same
//! cryptogram (the padding has one form only).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_apdu::StatusWord;
use mynacard_card::sm::{self, SessionKey, SmChannel};

fuzz_target!(|data: &[u8]| {
    let [c0, c1, c2, c3, sw1, sw2, response @ ..] = data else {
        return;
    };
    let counter = u32::from_be_bytes([*c0, *c1, *c2, *c3]);
    let key = SessionKey::from_bytes(*b"fuzzing-sm-key!!");
    if let Ok(plain) = sm::unwrap_response_data(&key, counter, response) {
        if let Ok(cipher) = sm::parse_cryptogram_object(response) {
            assert_eq!(key.encrypt(counter, &plain), cipher);
        } else {
            assert!(response.is_empty() && plain.is_empty());
        }
    }
    let mut channel = SmChannel::new(key);
    let sw = StatusWord::from_bytes(*sw1, *sw2);
    let outcome = channel.unwrap(counter, response, sw);
    if outcome.is_err() {
        assert!(channel.is_broken());
    }
});
