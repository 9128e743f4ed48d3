//! The simulated card's engine takes any sequence of command bytes without panicking and always
//! answers a status word, within vpcd's frame limit.
//!
//! Input: a sequence of `[len][len bytes]` commands; a zero length resets the card.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use mynacard_sim::engine::Card;
use mynacard_sim::image::CardImage;

fn card() -> &'static Mutex<Card> {
    static CARD: OnceLock<Mutex<Card>> = OnceLock::new();
    CARD.get_or_init(|| {
        let image = CardImage::from_profile_name("adult").expect("built-in profile");
        Mutex::new(Card::new(image))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut card = card().lock().unwrap_or_else(|e| e.into_inner());
    card.reset();
    let mut rest = data;
    while let [len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (apdu, next) = tail.split_at(len);
        rest = next;
        if apdu.is_empty() {
            card.reset();
            continue;
        }
        let response = card.process(apdu);
        assert!(response.len() >= 2 && response.len() <= 65_535);
    }
});
