//! Test aids behind the `sim` feature: a simulated card a test's tag forwards its APDUs to,
//! and the embedded reference service that accepts the simulated cards. Never in an app build.

use std::sync::{Arc, Mutex};

use mynacard_registry::embedded::EmbeddedService;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_sim::state::SecretId;
use mynacard_transport::CardChannel;
use mynacard_transport::blocking::block_on;

use crate::{MobileError, NfcTag, TagError};

/// A simulated My Number Card (test aid): what a test's [`NfcTag`] sends the
/// APDUs to, so the flow crosses the callback interface as on a phone. The card's link (answer
/// caps, extended length) is that of its profile.
#[derive(Debug, uniffi::Object)]
pub struct SimulatedCard {
    /// The card's one channel; the lock keeps two flows from interleaving their APDUs.
    channel: Mutex<SimChannel>,
    card: SimCard,
}

#[uniffi::export]
impl SimulatedCard {
    /// A card of a built-in profile of `mynacard-sim` (`"contactless"`: the adult card over
    /// NFC, PIN 1234; `"no-extended"`: the same behind a link without extended length;
    /// `"smartphone"`: the Android smartphone certificate; …).
    ///
    /// # Errors
    /// [`MobileError::InvalidArgument`] for an unknown profile.
    #[uniffi::constructor]
    pub fn new(profile: String) -> Result<Arc<SimulatedCard>, MobileError> {
        let image = CardImage::from_profile_name(&profile)
            .map_err(|e| MobileError::InvalidArgument(format!("profile {profile:?}: {e}")))?;
        let card = SimCard::from_image(image);
        Ok(Arc::new(SimulatedCard {
            channel: Mutex::new(card.channel()),
            card,
        }))
    }

    /// Processes one command APDU and returns the card's response (data and SW1-SW2), as a
    /// phone's `transceive` would.
    ///
    /// # Errors
    /// [`TagError::TagLost`] once the card was [removed](SimulatedCard::remove);
    /// [`TagError::Host`] for a command longer than the link takes.
    pub fn transmit(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TagError> {
        let mut channel = self.channel.lock().map_err(|_| TagError::Host {
            reason: "the simulated card is poisoned".to_owned(),
        })?;
        block_on(channel.transmit(&apdu)).map_err(|e| {
            if e.is_card_gone() {
                TagError::TagLost
            } else {
                TagError::Host {
                    reason: e.to_string(),
                }
            }
        })
    }

    /// Whether the card's link takes extended-length APDUs (what the test's tag reports).
    pub fn extended_length_supported(&self) -> bool {
        self.card.capabilities().extended_length
    }

    /// The longest command APDU the card's link takes (what the test's tag reports).
    pub fn max_transceive_length(&self) -> u32 {
        u32::try_from(self.card.capabilities().max_command_len).unwrap_or(u32::MAX)
    }

    /// Takes the card out of the field: it loses power and every later
    /// [`transmit`](SimulatedCard::transmit) fails with [`TagError::TagLost`].
    pub fn remove(&self) {
        self.card.remove();
    }

    /// This card as a tag, as if the app's tag were the card itself (no callback into the
    /// app for the APDUs: what a test that is not about the callback uses).
    pub fn as_tag(self: Arc<Self>) -> Arc<dyn NfcTag> {
        self
    }

    /// The authentication PIN's tries left, read from the card engine (not over the link);
    /// `null`/`nil` for a card without one.
    pub fn auth_pin_retries(&self) -> Option<u8> {
        self.card
            .with_card(|card| card.secret_status(SecretId::JpkiAuthPin))
            .map(|status| status.remaining)
    }
}

/// The embedded reference service (test aid) on loopback over plain HTTP, on a fresh SQLite
/// file, with the built-in seed (the persons of the simulated cards and the test terminals such
/// as the app `app-0001`) and the simulator's test roots accepted.
#[derive(Debug, uniffi::Object)]
pub struct SimService {
    /// Kept apart from the service, so it can be read after a stop.
    url: String,
    service: Mutex<EmbeddedService>,
}

#[uniffi::export]
impl SimService {
    /// Starts the service on its own runtime (one worker thread).
    ///
    /// # Errors
    /// [`MobileError::Sim`] when it cannot start.
    #[uniffi::constructor]
    pub fn start() -> Result<Arc<SimService>, MobileError> {
        let service = EmbeddedService::start("mynacard-mobile")
            .map_err(|e| MobileError::Sim(e.to_string()))?;
        Ok(Arc::new(SimService {
            url: service.base_url().to_owned(),
            service: Mutex::new(service),
        }))
    }

    /// The service's base URL (`http://127.0.0.1:PORT`), for [`Registration`](crate::Registration).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Registrations stored so far.
    ///
    /// # Errors
    /// [`MobileError::Sim`] when the service was stopped or its database fails.
    pub fn registration_count(&self) -> Result<i64, MobileError> {
        self.service
            .lock()
            .map_err(|_| MobileError::Sim("the service is poisoned".to_owned()))?
            .registration_count()
            .map_err(|e| MobileError::Sim(e.to_string()))
    }

    /// Stops the service (requests in flight finish, the database is closed and removed). A
    /// second stop does nothing; dropping the service stops it too.
    pub fn stop(&self) {
        if let Ok(mut service) = self.service.lock() {
            service.stop();
        }
    }
}

// The simulated card behind the tag interface, with its link's limits; it needs no timeout.
impl NfcTag for SimulatedCard {
    fn transceive(&self, apdu: Vec<u8>) -> Result<Vec<u8>, TagError> {
        self.transmit(apdu)
    }

    fn max_transceive_length(&self) -> u32 {
        SimulatedCard::max_transceive_length(self)
    }

    fn extended_length_supported(&self) -> bool {
        SimulatedCard::extended_length_supported(self)
    }

    fn set_timeout(&self, _millis: u32) -> Result<(), TagError> {
        Ok(())
    }
}
