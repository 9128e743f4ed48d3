//! A recorded image as the engine's files, MF objects and secrets: the counterpart of the
//! per-application modules for a card whose contents come from a real card (see
//! [`crate::recorded`]) rather than from a generated [`crate::image::CardImage`].

use mynacard_card::catalogue::{common, jpki, text, visual};

use super::files::{Body, Ef, Files, KeySlot};
use super::secrets::{Format, Secrets};
use super::{Application, Contents};
use crate::recorded::RecordedImage;
use crate::state::SecretId;

/// Where the key EF of a secret lives: its application and file id (B.2, B.3, B.6, B.7, B.8).
pub(crate) const fn secret_home(id: SecretId) -> (Application, u16) {
    match id {
        SecretId::JpkiAuthPin => (Application::Jpki, jpki::AUTH_PIN),
        SecretId::JpkiSignPassword => (Application::Jpki, jpki::SIGN_PIN),
        SecretId::TextPin => (Application::Text, text::PIN),
        // B.6: key 0012, blocked at issue.
        SecretId::TextBlockedKey => (Application::Text, 0x0012),
        SecretId::TextCollationA => (Application::Text, text::PIN_A),
        SecretId::TextCollationB => (Application::Text, text::PIN_B),
        SecretId::VisualBirthDate => (Application::Visual, visual::BIRTH_DATE_KEY),
        SecretId::VisualCollationB => (Application::Visual, visual::PIN_B),
        SecretId::VisualCollationA => (Application::Visual, visual::PIN_A),
        SecretId::CommonPin => (Application::Common, common::PIN),
        SecretId::JukiPin => (Application::Juki, common::PIN),
    }
}

/// The private-key slot of a key EF, `None` when no key lives at that file id.
pub(crate) const fn key_slot(app: Application, fid: u16) -> Option<KeySlot> {
    match (app, fid) {
        (Application::Jpki, jpki::AUTH_KEY) => Some(KeySlot::JpkiAuth),
        (Application::Jpki, jpki::SIGN_KEY) => Some(KeySlot::JpkiSign),
        (Application::Common, common::INTERNAL_AUTH_KEY) => Some(KeySlot::CommonInternalAuth),
        _ => None,
    }
}

/// Whether a private key can live at this file id (a recorded image may list it as present).
pub(crate) const fn is_key_ef(app: Application, fid: u16) -> bool {
    key_slot(app, fid).is_some()
}

/// Whether `value` has the form the card requires of this secret (4 digits for the PINs, 6–16
/// of A–Z/0–9 for the signing password); any value for the collation keys.
pub(crate) fn accepts_value(id: SecretId, value: &[u8]) -> bool {
    Format::of(id).is_none_or(|format| format.accepts(value))
}

/// What the engine serves for a recorded image. The loader has checked that no two EFs of an
/// application share a file id.
pub(super) fn contents(image: RecordedImage) -> Contents {
    let profile = image.profile_name();
    let mut apps: [Files; 5] = core::array::from_fn(|_| Files(Vec::new()));
    for ef in image.files {
        apps[ef.application.index()].0.push(Ef::gated(
            ef.fid,
            &ef.read_after,
            Body::Binary(ef.contents),
        ));
    }
    for (app, fid) in image.key_files {
        if let Some(slot) = key_slot(app, fid) {
            apps[app.index()].0.push(Ef::free(fid, Body::Key(slot)));
        }
    }
    for (id, _) in &image.secrets {
        let (app, fid) = secret_home(*id);
        apps[app.index()].0.push(Ef::free(fid, Body::Secret(*id)));
    }
    Contents {
        profile,
        serial: image.serial,
        link: image.link,
        apps,
        mf_objects: image.mf_objects,
        secrets: Secrets::from_recorded(&image.secrets),
    }
}
