//! The card layer's parsers of the card-level identification (four MF GET DATA values, cut from
//! the input by its first three bytes) and of the rendered individual number. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_card::common::CardIdentification;
use mynacard_card::visual::MyNumberImage;

fuzz_target!(|data: &[u8]| {
    let _ = MyNumberImage::parse(data);
    if let [a, b, c, rest @ ..] = data {
        let (number, rest) = rest.split_at(usize::from(*a).min(rest.len()));
        let (municipality, rest) = rest.split_at(usize::from(*b).min(rest.len()));
        let (expiry, issuer) = rest.split_at(usize::from(*c).min(rest.len()));
        let _ = CardIdentification::from_objects(number, municipality, expiry, issuer);
    }
});
