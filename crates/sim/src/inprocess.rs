//! The simulated card behind the transport traits, in the same process.
//!
//! A [`SimCard`] is a shared handle to one card in one reader: the engine, whether the card is
//! inserted, its faults, its APDU log and optionally its state file. [`SimTransport`] implements
//! [`Transport`] over it and opens [`SimChannel`]s implementing [`CardChannel`]. The same handle
//! feeds the vpcd bridge, so faults and logging behave the same in both harnesses.
//!
//! The channel reports the card's link as [`Capabilities`]: extended length or not, and the
//! longest response; answers longer than the link carries come as `61xx` + GET RESPONSE from the
//! engine itself.
//!
//! ```
//! use mynacard_sim::image::CardImage;
//! use mynacard_sim::inprocess::SimCard;
//! use mynacard_transport::blocking::BlockingChannel;
//!
//! fn select_jpki(image: CardImage) -> bool {
//!     let sim = SimCard::from_image(image);
//!     let mut channel = BlockingChannel::new(sim.channel());
//!     let select = [0x00, 0xA4, 0x04, 0x0C, 0x0A, 0xD3, 0x92, 0xF0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01];
//!     channel.transmit(&select).ok() == Some(vec![0x90, 0x00])
//! }
//! ```

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use mynacard_transport::{Capabilities, CardChannel, Interface, Transport, TransportError};

use crate::engine::Card;
use crate::fault::{Before, Delay, FaultState, Faults};
use crate::image::CardImage;
use crate::log::ApduLog;
use crate::state::{StateError, StateFile};

/// What reached the host for one command.
#[derive(Debug)]
pub(crate) enum Delivered {
    /// The response APDU.
    Response(Vec<u8>),
    /// The card is not (or no longer) in the reader.
    Removed,
    /// The card was reset before the command; it was not processed.
    Reset,
}

/// One exchange as the harnesses see it.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) delivered: Delivered,
    /// Injected latency still to be waited by the harness.
    pub(crate) latency: Duration,
    /// The state file could not be written after this command changed a counter.
    pub(crate) state_error: Option<StateError>,
}

struct Slot {
    card: Card,
    present: bool,
    faults: FaultState,
    state_file: Option<StateFile>,
    saved_generation: u64,
}

/// A shared handle to one simulated card in one reader. Clones refer to the same card.
#[derive(Clone)]
pub struct SimCard {
    slot: Arc<Mutex<Slot>>,
    log: ApduLog,
}

impl core::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let slot = self.lock();
        f.debug_struct("SimCard")
            .field("card", &slot.card)
            .field("present", &slot.present)
            .finish_non_exhaustive()
    }
}

impl SimCard {
    /// A card, inserted, with no faults.
    pub fn new(card: Card) -> SimCard {
        let saved_generation = card.state_generation();
        SimCard {
            slot: Arc::new(Mutex::new(Slot {
                card,
                present: true,
                faults: FaultState::default(),
                state_file: None,
                saved_generation,
            })),
            log: ApduLog::new(),
        }
    }

    /// A fresh card built from an image.
    pub fn from_image(image: CardImage) -> SimCard {
        SimCard::new(Card::new(image))
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        // The engine never panics; should a caller's closure have, the card data is still whole.
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the engine (to inspect counters, power it, or process APDUs directly).
    pub fn with_card<R>(&self, f: impl FnOnce(&mut Card) -> R) -> R {
        f(&mut self.lock().card)
    }

    /// The APDU log of this card.
    pub fn log(&self) -> &ApduLog {
        &self.log
    }

    /// Replaces the fault plan; APDU numbering starts again from 1.
    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = FaultState::new(faults);
    }

    /// Saves the card's non-volatile state to `file` whenever a counter or PIN changes.
    pub fn set_state_file(&self, file: StateFile) {
        let mut slot = self.lock();
        slot.saved_generation = slot.card.state_generation().wrapping_sub(1);
        slot.state_file = Some(file);
    }

    /// Takes the card out of the reader: it loses power (selections and verified PINs) and keeps
    /// its counters.
    pub fn remove(&self) {
        let mut slot = self.lock();
        slot.present = false;
        slot.card.power_off();
    }

    /// Puts the card (back) into the reader, unpowered.
    pub fn insert(&self) {
        self.lock().present = true;
    }

    /// Whether the card is in the reader.
    pub fn is_present(&self) -> bool {
        self.lock().present
    }

    /// A transport for this card's reader.
    pub fn transport(&self) -> SimTransport {
        SimTransport { card: self.clone() }
    }

    /// A channel to the card, without going through [`Transport::open`] (the card need not be
    /// present; transmits then fail with `CardRemoved`).
    pub fn channel(&self) -> SimChannel {
        let seen_resets = self.with_card(|card| card.reset_count());
        SimChannel {
            card: self.clone(),
            seen_resets,
        }
    }

    /// The capabilities of the reader and card link.
    pub fn capabilities(&self) -> Capabilities {
        let slot = self.lock();
        let link = slot.card.link();
        let interface = if link.contactless {
            Interface::Contactless
        } else {
            Interface::Contact
        };
        let atr = link.atr.clone();
        let max_data = link.max_response_data.max(1);
        if link.extended_length {
            let caps = Capabilities::extended(interface, atr);
            let max_response = caps.max_response_len.min(max_data.saturating_add(2));
            let max_command = caps.max_command_len;
            caps.with_limits(max_command, max_response)
        } else {
            let caps = Capabilities::short(interface, atr);
            let max_command = caps.max_command_len;
            caps.with_limits(max_command, max_data.min(256) + 2)
        }
    }

    /// Runs one command through faults, engine, state file and log.
    ///
    /// With `report_reset`, a planned reset answers [`Delivered::Reset`] without processing the
    /// command (as PC/SC reports a reset by another program); without, the command reaches the
    /// freshly reset card.
    pub(crate) fn exchange(&self, command: &[u8], report_reset: bool) -> Exchange {
        let started = Instant::now();
        let mut slot = self.lock();
        if !slot.present {
            return Exchange {
                delivered: Delivered::Removed,
                latency: Duration::ZERO,
                state_error: None,
            };
        }
        let (n, before) = slot.faults.before();
        match before {
            Before::Pull => {
                slot.present = false;
                slot.card.power_off();
                return Exchange {
                    delivered: Delivered::Removed,
                    latency: Duration::ZERO,
                    state_error: None,
                };
            }
            Before::Reset => {
                slot.card.reset();
                if report_reset {
                    return Exchange {
                        delivered: Delivered::Reset,
                        latency: Duration::ZERO,
                        state_error: None,
                    };
                }
            }
            Before::Deliver => {}
        }
        let rsa_before = slot.card.rsa_operations();
        let mut response = slot.card.process(command);
        let rsa_operations = slot.card.rsa_operations().saturating_sub(rsa_before);
        let state_error = save_if_changed(&mut slot);
        let tag_lost = slot.faults.tag_lost(command);
        slot.faults.corrupt(n, &mut response);
        let latency = slot
            .faults
            .latency(command.len() + response.len(), rsa_operations);
        let processing = started.elapsed();
        let delivered = if tag_lost {
            slot.present = false;
            slot.card.power_off();
            self.log
                .record(started, processing + latency, command, None);
            Delivered::Removed
        } else {
            self.log
                .record(started, processing + latency, command, Some(&response));
            Delivered::Response(response)
        };
        Exchange {
            delivered,
            latency,
            state_error,
        }
    }
}

fn save_if_changed(slot: &mut Slot) -> Option<StateError> {
    let generation = slot.card.state_generation();
    if generation == slot.saved_generation {
        return None;
    }
    let file = slot.state_file.as_ref()?;
    match file.save(&slot.card.persistent_state()) {
        Ok(()) => {
            slot.saved_generation = generation;
            None
        }
        Err(e) => Some(e),
    }
}

/// The reader holding a [`SimCard`].
#[derive(Debug, Clone)]
pub struct SimTransport {
    card: SimCard,
}

impl SimTransport {
    /// The card in this reader.
    pub fn card(&self) -> &SimCard {
        &self.card
    }
}

#[async_trait]
impl Transport for SimTransport {
    fn name(&self) -> String {
        let profile = self.card.with_card(|c| c.profile().to_owned());
        format!("simulated card ({profile})")
    }

    async fn open(&self) -> Result<Box<dyn CardChannel>, TransportError> {
        if !self.card.is_present() {
            return Err(TransportError::NoCard);
        }
        self.card.with_card(Card::power_on);
        Ok(Box::new(self.card.channel()))
    }
}

/// A channel to a [`SimCard`].
#[derive(Debug)]
pub struct SimChannel {
    card: SimCard,
    seen_resets: u64,
}

#[async_trait]
impl CardChannel for SimChannel {
    async fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let max = self.card.capabilities().max_command_len;
        if command.len() > max {
            return Err(TransportError::CommandTooLong {
                len: command.len(),
                max,
            });
        }
        let exchange = self.card.exchange(command, true);
        Delay::new(exchange.latency).await;
        if let Some(error) = exchange.state_error {
            return Err(TransportError::backend("sim", error));
        }
        match exchange.delivered {
            Delivered::Response(response) if response.len() >= 2 => Ok(response),
            Delivered::Response(response) => Err(TransportError::MalformedResponse {
                len: response.len(),
            }),
            Delivered::Removed => Err(TransportError::CardRemoved),
            Delivered::Reset => Err(TransportError::CardReset),
        }
    }

    fn capabilities(&self) -> Capabilities {
        self.card.capabilities()
    }

    fn was_reset(&mut self) -> bool {
        let now = self.card.with_card(|card| card.reset_count());
        let reset = now != self.seen_resets;
        self.seen_resets = now;
        reset
    }
}
