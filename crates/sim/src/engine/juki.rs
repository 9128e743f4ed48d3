//! 住基AP: selectable; the simulator holds its 4-digit PIN `001C` (3 tries), a key reference of
//! its own that user interfaces present together with the common AP's as one 個人番号カード用
//! PIN, changed with JICSAP CHANGE KEY `80 32` (B.3, B.8). Its files are not simulated.

use mynacard_card::catalogue::common::PIN;

use super::files::{Body, Ef, Files};
use super::secrets::card_pin_source;
use crate::image::CardImage;
use crate::state::SecretId;

/// The files of the 住基AP: only the PIN (none on a card without PINs).
pub(super) fn files(image: &CardImage) -> Files {
    if card_pin_source(image).is_some() {
        Files(vec![Ef::free(PIN, Body::Secret(SecretId::JukiPin))])
    } else {
        Files(Vec::new())
    }
}
