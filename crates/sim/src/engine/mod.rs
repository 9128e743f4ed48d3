//! The card engine: a synchronous, deterministic My Number Card that answers command APDUs.
//!
//! [`Card::process`] takes command bytes and returns response bytes (data and status word);
//! [`Card::power_on`], [`Card::power_off`] and [`Card::reset`] model the contacts or field. The
//! engine does no I/O and never panics on any input. The harnesses in [`crate::inprocess`] and
//! [`crate::vpcd`] carry its APDUs.
//!
//! What lives where: this module routes SELECT and the ISO commands and keeps the volatile state
//! (current application, current EF, verified secrets, pending `61xx` data, the text AP's
//! secure-messaging session, whose commands live in `sm`); one module per card
//! application builds that application's files (`jpki`, `text`, `visual`, `common`, `juki`),
//! `mf` the data objects GET DATA answers at the MF level; the retry counters are the
//! non-volatile part ([`crate::state`]).
//!
//! A card is built either from a generated [`CardImage`] ([`Card::new`]), which holds a private
//! key for every key EF, or from a [`RecordedImage`] ([`Card::from_recorded`]), whose files,
//! objects and secrets come from a real card and which holds no private key at all: the commands
//! that would need one answer [`NO_KEY`].

mod common;
mod files;
mod jpki;
mod juki;
mod mf;
pub(crate) mod recorded;
pub(crate) mod records;
mod secrets;
mod sm;
mod text;
mod visual;

use mynacard_apdu::{Command, LengthEncoding, StatusWord};
use mynacard_card::catalogue::aid;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha2::{Digest, Sha256};

use self::files::{Body, Ef, Files, KeySlot};
use self::secrets::{ChangeRefusal, Secrets, Verdict};
use crate::image::{CappedRest, CardImage, LinkProfile};
use crate::recorded::RecordedImage;
use crate::state::{PersistentState, SecretId, StateError};

/// The applications of the card (B.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Application {
    /// 公的個人認証AP.
    Jpki,
    /// 券面事項入力補助AP.
    Text,
    /// 券面事項確認AP.
    Visual,
    /// 共通カードAP.
    Common,
    /// 住基AP: selectable; only its PIN `001C` is simulated.
    Juki,
}

impl Application {
    /// All applications.
    pub const ALL: [Application; 5] = [
        Application::Jpki,
        Application::Text,
        Application::Visual,
        Application::Common,
        Application::Juki,
    ];

    /// The full AID (SELECT by DF name).
    pub const fn aid(self) -> &'static [u8] {
        match self {
            Application::Jpki => &aid::JPKI,
            Application::Text => &aid::TEXT,
            Application::Visual => &aid::VISUAL,
            Application::Common => &aid::COMMON,
            Application::Juki => &aid::JUKI,
        }
    }

    /// The application with exactly this AID (no prefix matching).
    pub fn from_aid(aid: &[u8]) -> Option<Application> {
        Application::ALL.into_iter().find(|a| a.aid() == aid)
    }

    const fn index(self) -> usize {
        match self {
            Application::Jpki => 0,
            Application::Text => 1,
            Application::Visual => 2,
            Application::Common => 3,
            Application::Juki => 4,
        }
    }
}

/// Tries left and the retry limit of one secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretStatus {
    /// Tries left (0: blocked).
    pub remaining: u8,
    /// Retry limit.
    pub limit: u8,
}

/// Largest response data in one frame: vpcd frames carry at most 65535 bytes, SW included.
const MAX_FRAME_DATA: usize = 65_533;

/// What a card without the private key answers COMPUTE DIGITAL SIGNATURE, INTERNAL
/// AUTHENTICATE and SET SESSION KEY: `6D00`, instruction not supported, the answer a card gives
/// an operation it does not offer (`card-protocol.md` B.9) and the one this engine already gives
/// COMPUTE DIGITAL SIGNATURE outside the APs that sign. Never a made-up signature.
pub const NO_KEY: StatusWord = StatusWord::InsNotSupported;

/// A response under construction.
struct Reply {
    data: Vec<u8>,
    sw: StatusWord,
}

impl Reply {
    fn sw(sw: StatusWord) -> Reply {
        Reply {
            data: Vec::new(),
            sw,
        }
    }
    fn ok(data: Vec<u8>) -> Reply {
        Reply {
            data,
            sw: StatusWord::Success,
        }
    }
}

impl From<StatusWord> for Reply {
    fn from(sw: StatusWord) -> Self {
        Reply::sw(sw)
    }
}

/// Response data waiting for GET RESPONSE.
struct Pending {
    data: Vec<u8>,
    final_sw: StatusWord,
}

/// What a card serves, whatever its source (a generated or a recorded image).
struct Contents {
    /// The profile (or `image:NAME`) and serial a state file must match.
    profile: String,
    serial: String,
    link: LinkProfile,
    /// One entry per `Application::index`.
    apps: [Files; 5],
    mf_objects: Vec<(u16, Vec<u8>)>,
    secrets: Secrets,
}

/// A simulated My Number Card.
pub struct Card {
    /// The generated image, which also holds every private key; `None` for a recorded card.
    image: Option<CardImage>,
    /// The profile (or `image:NAME`) and serial a state file must match.
    profile: String,
    serial: String,
    link: LinkProfile,
    apps: [Files; 5],
    mf_objects: Vec<(u16, Vec<u8>)>,
    secrets: Secrets,
    powered: bool,
    current: Option<Application>,
    current_ef: Option<u16>,
    verified: Vec<SecretId>,
    pending: Option<Pending>,
    /// The text AP's secure-messaging session (volatile, like the security status).
    sm: sm::SmState,
    rng: ChaCha20Rng,
    rsa_operations: u64,
    resets: u64,
}

impl core::fmt::Debug for Card {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Card")
            .field("profile", &self.profile)
            .field("powered", &self.powered)
            .field("current", &self.current)
            .field("current_ef", &self.current_ef)
            .field("verified", &self.verified)
            .field(
                "secure_messaging",
                &self.secure_messaging_counter().is_some(),
            )
            .finish_non_exhaustive()
    }
}

impl Card {
    /// A fresh card, unpowered, with the counters of the image.
    pub fn new(image: CardImage) -> Card {
        let apps = [
            jpki::files(&image),
            text::files(&image),
            visual::files(&image),
            common::files(&image),
            juki::files(&image),
        ];
        let contents = Contents {
            profile: image.profile.clone(),
            serial: image.face.serial.clone(),
            link: image.link.clone(),
            apps,
            mf_objects: mf::objects(&image),
            secrets: Secrets::from_image(&image),
        };
        Card::assemble(contents, Some(image))
    }

    /// A fresh card, unpowered, serving a recorded image: its files, GET DATA objects and
    /// secrets with their counters, and no private key (signing answers [`NO_KEY`]). Its state
    /// files are those of profile `image:NAME`.
    pub fn from_recorded(image: RecordedImage) -> Card {
        Card::assemble(recorded::contents(image), None)
    }

    fn assemble(contents: Contents, image: Option<CardImage>) -> Card {
        let Contents {
            profile,
            serial,
            link,
            apps,
            mf_objects,
            secrets,
        } = contents;
        // Deterministic: the same image gives the same challenges and PSS salts.
        let seed = Sha256::new()
            .chain_update(profile.as_bytes())
            .chain_update([0])
            .chain_update(serial.as_bytes())
            .finalize();
        Card {
            profile,
            serial,
            link,
            apps,
            mf_objects,
            secrets,
            powered: false,
            current: None,
            current_ef: None,
            verified: Vec::new(),
            pending: None,
            sm: sm::SmState::Idle,
            rng: ChaCha20Rng::from_seed(seed.into()),
            rsa_operations: 0,
            resets: 0,
            image,
        }
    }

    /// A recorded card with the non-volatile state saved earlier, as [`Card::with_state`].
    ///
    /// # Errors
    /// As [`Card::with_state`].
    pub fn from_recorded_with_state(
        image: RecordedImage,
        state: &PersistentState,
    ) -> Result<Card, StateError> {
        let mut card = Card::from_recorded(image);
        card.restore(state)?;
        Ok(card)
    }

    /// A card with the non-volatile state saved earlier by [`Card::persistent_state`].
    ///
    /// # Errors
    /// [`StateError::OtherCard`] when the state belongs to another profile or serial,
    /// [`StateError::UnknownSecret`] or [`StateError::InvalidValue`] for a state this card
    /// could not have written.
    pub fn with_state(image: CardImage, state: &PersistentState) -> Result<Card, StateError> {
        let mut card = Card::new(image);
        card.restore(state)?;
        Ok(card)
    }

    /// Applies a saved state after checking that it is this card's.
    fn restore(&mut self, state: &PersistentState) -> Result<(), StateError> {
        if state.profile != self.profile || state.serial != self.serial {
            return Err(StateError::OtherCard {
                found_profile: state.profile.clone(),
                found_serial: state.serial.clone(),
                profile: self.profile.clone(),
                serial: self.serial.clone(),
            });
        }
        self.secrets.restore(state)
    }

    /// The non-volatile state (retry counters, changed PINs) to save.
    pub fn persistent_state(&self) -> PersistentState {
        self.secrets.save(&self.profile, &self.serial)
    }

    /// A number that changes whenever the non-volatile state changes; harnesses save the state
    /// when it differs from the last value they saw.
    pub fn state_generation(&self) -> u64 {
        self.secrets.generation()
    }

    /// The generated image the card was built from; `None` for a recorded card.
    pub fn image(&self) -> Option<&CardImage> {
        self.image.as_ref()
    }

    /// The profile name the card's state files carry (`image:NAME` for a recorded card).
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// Whether the card holds private keys (a generated card) or none (a recorded one).
    pub fn has_private_keys(&self) -> bool {
        self.image.is_some()
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &[u8] {
        &self.link.atr
    }

    /// The link properties (extended length, largest response).
    pub fn link(&self) -> &LinkProfile {
        &self.link
    }

    /// Whether the card is powered.
    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// Powers the card (no effect when already powered). A powered card starts with nothing
    /// selected and nothing verified.
    pub fn power_on(&mut self) {
        if !self.powered {
            self.powered = true;
            self.clear_volatile();
        }
    }

    /// Removes power: selections and verified secrets are lost; counters stay.
    pub fn power_off(&mut self) {
        if self.powered {
            self.resets += 1;
        }
        self.powered = false;
        self.clear_volatile();
    }

    /// A warm reset: as power-off and power-on.
    pub fn reset(&mut self) {
        self.resets += 1;
        self.powered = true;
        self.clear_volatile();
    }

    /// How many times the volatile state was lost to power-off or reset.
    pub fn reset_count(&self) -> u64 {
        self.resets
    }

    /// How many RSA private-key operations the card has performed (signatures, internal
    /// authentications).
    pub fn rsa_operations(&self) -> u64 {
        self.rsa_operations
    }

    /// The selected application.
    pub fn current_application(&self) -> Option<Application> {
        self.current
    }

    /// Tries left and the limit of a secret, `None` when the card does not hold it.
    pub fn secret_status(&self, id: SecretId) -> Option<SecretStatus> {
        self.secrets
            .status(id)
            .map(|(remaining, limit)| SecretStatus { remaining, limit })
    }

    /// Whether a secret is verified in the current security state.
    pub fn is_verified(&self, id: SecretId) -> bool {
        self.verified.contains(&id)
    }

    fn clear_volatile(&mut self) {
        self.current = None;
        self.current_ef = None;
        self.verified.clear();
        self.pending = None;
        self.sm = sm::SmState::Idle;
    }

    /// Processes one command APDU and returns the response APDU (data, SW1, SW2). An unpowered
    /// card is powered first.
    pub fn process(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.power_on();
        let pending = self.pending.take();
        let reply = self.dispatch(apdu, pending);
        let reply = self.chain(reply);
        let mut out = reply.data;
        out.extend_from_slice(&reply.sw.to_bytes());
        out
    }

    /// Most response data in one response on this card's link.
    fn max_response_data(&self) -> usize {
        let link = &self.link;
        let mut max = link.max_response_data.clamp(1, MAX_FRAME_DATA);
        if !link.extended_length {
            max = max.min(256);
        }
        max
    }

    /// Most response data that reaches the host in one response: the link's, or less behind a
    /// reader that caps answers.
    fn delivered_max(&self) -> usize {
        let max = self.max_response_data();
        match self.link.answer_cap {
            Some(cap) => max.min(cap.max.max(1)),
            None => max,
        }
    }

    /// Splits an answer longer than the link carries into `61xx` + GET RESPONSE; a capping
    /// reader's limit applies on top, unannounced, and may drop the rest instead.
    fn chain(&mut self, mut reply: Reply) -> Reply {
        let max = self.delivered_max();
        if self
            .link
            .answer_cap
            .is_some_and(|cap| cap.rest == CappedRest::Dropped)
        {
            reply.data.truncate(max);
        }
        if reply.data.len() <= max {
            return reply;
        }
        let rest = reply.data.split_off(max);
        let sw = bytes_remaining(rest.len());
        self.pending = Some(Pending {
            data: rest,
            final_sw: reply.sw,
        });
        Reply {
            data: reply.data,
            sw,
        }
    }

    fn dispatch(&mut self, apdu: &[u8], pending: Option<Pending>) -> Reply {
        let Ok(parsed) = Command::parse(apdu) else {
            return StatusWord::WrongLength.into();
        };
        let extended = parsed.encoding == LengthEncoding::Extended;
        if extended && !self.link.extended_length {
            return StatusWord::WrongLength.into();
        }
        let cmd = parsed.command;
        let cla = cmd.cla;
        if cla & 0x60 != 0 {
            return StatusWord::ClaNotSupported.into();
        }
        if cla & 0x10 != 0 {
            return StatusWord::ChainingNotSupported.into();
        }
        if cla & 0x03 != 0 {
            return StatusWord::LogicalChannelNotSupported.into();
        }
        let proprietary = cla & 0x80 != 0;
        if cla & 0x0C != 0 {
            let sm_opened = !matches!(self.sm, sm::SmState::Idle);
            if !proprietary && self.current == Some(Application::Text) && sm_opened {
                return self.secure_command(&cmd, extended);
            }
            // B.8: secure messaging outside the text AP.
            return match (proprietary, cmd.ins) {
                (false, 0xB0 | 0x20) => StatusWord::SmSessionError.into(),
                _ => StatusWord::SecureMessagingNotSupported.into(),
            };
        }
        match (proprietary, cmd.ins) {
            (false, 0xA4) => self.select(&cmd),
            (false, 0xB0) => self.read_binary(&cmd, extended),
            (false, 0xB2) => self.read_record(&cmd, extended),
            (false, 0x20) => self.verify(&cmd),
            (false, 0x24) => self.change_reference_data(&cmd),
            (false, 0x84) => self.get_challenge(&cmd, extended),
            (false, 0x88) => self.internal_authenticate(&cmd),
            (false, 0xC0) => self.get_response(&cmd, pending),
            (false, 0xCA) => self.get_data(&cmd, extended),
            (true, 0x2A) => self.compute_signature(&cmd),
            (true, 0x32) => self.change_key(&cmd),
            (true, 0xAE) => self.set_session_key(&cmd),
            _ => StatusWord::InsNotSupported.into(),
        }
    }

    fn files(&self, app: Application) -> &Files {
        // `apps` has one entry per `Application::index`.
        &self.apps[app.index()]
    }

    fn current_ef(&self) -> Option<&Ef> {
        let app = self.current?;
        self.files(app).by_fid(self.current_ef?)
    }

    fn may_read(&self, ef: &Ef) -> bool {
        ef.read_after.is_empty() || ef.read_after.iter().any(|s| self.verified.contains(s))
    }

    /// SELECT (B.1): by full AID with `P1=04`, EF by id with `P1=02 P2=0C`.
    fn select(&mut self, cmd: &Command) -> Reply {
        let data = cmd.data_bytes();
        match cmd.p1 {
            0x04 => {
                if data == aid::GP_ISD {
                    // Selecting the issuer security domain restores the power-on state.
                    self.clear_volatile();
                    return Reply::ok(Vec::new());
                }
                // Unknown AIDs first: OpenSC probes foreign applets with other P2 values and
                // must see 6A82.
                let Some(app) = Application::from_aid(data) else {
                    return StatusWord::FileNotFound.into();
                };
                if !matches!(cmd.p2, 0x0C | 0x00) {
                    return StatusWord::IncorrectP1P2.into();
                }
                // Selecting an AP, even the current one, clears its security state. Evidence
                // (card-protocol §B.3): the status survives a PC/SC reconnect only while the AP
                // stays selected and is cleared by selecting another AP (MS, MC), and OpenSC's
                // JPKI driver logs out by re-selecting the same AP, which works on real cards
                // only if that clears it. A warm reset clears it too ([`Card::reset`]): ISO/IEC
                // 7816-3 returns the card to its answer-to-reset state.
                self.clear_volatile();
                self.current = Some(app);
                Reply::ok(Vec::new())
            }
            0x02 => {
                if cmd.p2 != 0x0C {
                    return StatusWord::IncorrectP1P2.into();
                }
                let [hi, lo] = data else {
                    return StatusWord::WrongLength.into();
                };
                let fid = u16::from_be_bytes([*hi, *lo]);
                let found = self
                    .current
                    .is_some_and(|app| self.files(app).by_fid(fid).is_some());
                if !found {
                    return StatusWord::FileNotFound.into();
                }
                self.current_ef = Some(fid);
                Reply::ok(Vec::new())
            }
            // B.1: "select MF" answers 6A86 at power-on and 9000 without effect once an AP is
            // current; 3F00 is not found.
            0x00 if data.is_empty() => {
                if self.current.is_some() {
                    Reply::ok(Vec::new())
                } else {
                    StatusWord::IncorrectP1P2.into()
                }
            }
            0x00 => StatusWord::FileNotFound.into(),
            _ => StatusWord::IncorrectP1P2.into(),
        }
    }

    /// Resolves an EF by short EF identifier in the current application and makes it current.
    fn select_by_sfi(&mut self, sfi: u8) -> Result<u16, StatusWord> {
        let app = self.current.ok_or(StatusWord::FileNotFound)?;
        let fid = self
            .files(app)
            .by_sfi(sfi)
            .map(|ef| ef.fid)
            .ok_or(StatusWord::FileNotFound)?;
        self.current_ef = Some(fid);
        Ok(fid)
    }

    /// READ BINARY (B.4): 15-bit offset in P1-P2, or `P1 = 80|SFI` with an 8-bit offset.
    fn read_binary(&mut self, cmd: &Command, extended: bool) -> Reply {
        if !cmd.data_bytes().is_empty() {
            return StatusWord::WrongLength.into();
        }
        let Some(ne) = cmd.ne() else {
            return StatusWord::WrongLength.into();
        };
        let offset = if cmd.p1 & 0x80 != 0 {
            let sfi = cmd.p1 & 0x1F;
            if cmd.p1 & 0x60 != 0 || sfi == 0 {
                return StatusWord::IncorrectP1P2.into();
            }
            if let Err(sw) = self.select_by_sfi(sfi) {
                return sw.into();
            }
            usize::from(cmd.p2)
        } else {
            usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]))
        };
        let Some(ef) = self.current_ef() else {
            return StatusWord::NoCurrentEf.into();
        };
        let Body::Binary(content) = &ef.body else {
            return StatusWord::IncompatibleFileStructure.into();
        };
        if !self.may_read(ef) {
            return StatusWord::SecurityStatusNotSatisfied.into();
        }
        if offset >= content.len() {
            // JICSAP: an offset at or beyond the end of the file.
            return StatusWord::WrongP1P2.into();
        }
        let ne = ne as usize;
        let end = content.len().min(offset.saturating_add(ne));
        let data = content[offset..end].to_vec();
        let sw = if data.len() < ne && !is_max_ne(ne, extended) {
            StatusWord::EndOfFileWarning
        } else {
            StatusWord::Success
        };
        Reply { data, sw }
    }

    /// READ RECORD (B.8): record number in P1, `P2 = 04` (current EF) or `SFI<<3 | 04`.
    fn read_record(&mut self, cmd: &Command, extended: bool) -> Reply {
        if !cmd.data_bytes().is_empty() {
            return StatusWord::WrongLength.into();
        }
        let Some(ne) = cmd.ne() else {
            return StatusWord::WrongLength.into();
        };
        if cmd.p2 & 0x07 != 0x04 {
            return StatusWord::IncorrectP1P2.into();
        }
        let sfi = cmd.p2 >> 3;
        if sfi != 0
            && let Err(sw) = self.select_by_sfi(sfi)
        {
            return sw.into();
        }
        let Some(ef) = self.current_ef() else {
            return StatusWord::NoCurrentEf.into();
        };
        let Body::Records(records) = &ef.body else {
            return StatusWord::IncompatibleFileStructure.into();
        };
        if !self.may_read(ef) {
            return StatusWord::SecurityStatusNotSatisfied.into();
        }
        let Some(record) = usize::from(cmd.p1)
            .checked_sub(1)
            .and_then(|i| records.get(i))
        else {
            return StatusWord::RecordNotFound.into();
        };
        let ne = ne as usize;
        if record.len() > ne && !is_max_ne(ne, extended) {
            return StatusWord::WrongLe((record.len().min(256) % 256) as u8).into();
        }
        Reply::ok(record.iter().copied().take(ne).collect())
    }

    /// The secret a VERIFY or CHANGE REFERENCE DATA addresses: `P2 = 80` for the current EF,
    /// `80|SFI` for an EF by short identifier (B.3).
    fn secret_for(&self, p2: u8) -> Result<SecretId, StatusWord> {
        let ef = match p2 {
            0x80 => self.current_ef().ok_or(StatusWord::NoCurrentEf)?,
            0x81..=0x9E => {
                let app = self.current.ok_or(StatusWord::ReferencedDataNotFound)?;
                self.files(app)
                    .by_sfi(p2 & 0x1F)
                    .ok_or(StatusWord::ReferencedDataNotFound)?
            }
            _ => return Err(StatusWord::IncorrectP1P2),
        };
        match ef.body {
            Body::Secret(id) if self.secrets.holds(id) => Ok(id),
            _ => Err(StatusWord::ReferencedDataNotFound),
        }
    }

    /// VERIFY (B.3): without data reports the counter and spends nothing; with data spends one
    /// try when wrong.
    fn verify(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0x00 {
            return StatusWord::IncorrectP1P2.into();
        }
        let id = match self.secret_for(cmd.p2) {
            Ok(id) => id,
            Err(sw) => return sw.into(),
        };
        let data = cmd.data_bytes();
        if data.is_empty() {
            // The card keeps answering 63Cx after a successful VERIFY (B.3).
            let (remaining, _) = self.secrets.status(id).unwrap_or((0, 0));
            return StatusWord::RetriesRemaining(remaining.min(15)).into();
        }
        match self.secrets.verify(id, data) {
            Verdict::Accepted => {
                if !self.verified.contains(&id) {
                    self.verified.push(id);
                }
                Reply::ok(Vec::new())
            }
            Verdict::Rejected(remaining) => {
                self.verified.retain(|v| *v != id);
                StatusWord::RetriesRemaining(remaining.min(15)).into()
            }
            Verdict::Blocked => StatusWord::ReferenceDataBlocked.into(),
        }
    }

    /// CHANGE REFERENCE DATA, replacement only: `00 24 01 P2 Lc new` after VERIFY (B.3). The
    /// `001C` PINs of the common AP and the 住基AP change with CHANGE KEY instead (`6985`).
    fn change_reference_data(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0x01 {
            return StatusWord::IncorrectP1P2.into();
        }
        let id = match self.secret_for(cmd.p2) {
            Ok(id) => id,
            Err(sw) => return sw.into(),
        };
        if changes_with_change_key(id) {
            return StatusWord::ConditionsNotSatisfied.into();
        }
        self.replace_secret(id, cmd.data_bytes())
    }

    /// JICSAP CHANGE KEY `80 32 00 P2 Lc new` after VERIFY (B.3): the PIN change of the common
    /// AP and the 住基AP; every other key answers `6985`.
    fn change_key(&mut self, cmd: &Command) -> Reply {
        if cmd.p1 != 0x00 {
            return StatusWord::IncorrectP1P2.into();
        }
        let id = match self.secret_for(cmd.p2) {
            Ok(id) => id,
            Err(sw) => return sw.into(),
        };
        if !changes_with_change_key(id) {
            return StatusWord::ConditionsNotSatisfied.into();
        }
        self.replace_secret(id, cmd.data_bytes())
    }

    /// The common part of both PIN changes: blocked, then verified, then the new value's form.
    fn replace_secret(&mut self, id: SecretId, new: &[u8]) -> Reply {
        if new.is_empty() {
            return StatusWord::WrongLength.into();
        }
        if self.secrets.status(id).is_some_and(|(r, _)| r == 0) {
            return StatusWord::ReferenceDataBlocked.into();
        }
        if !self.verified.contains(&id) {
            return StatusWord::SecurityStatusNotSatisfied.into();
        }
        match self.secrets.change(id, new) {
            Ok(()) => Reply::ok(Vec::new()),
            Err(ChangeRefusal::NotChangeable) => StatusWord::ConditionsNotSatisfied.into(),
            Err(ChangeRefusal::BadValue) => StatusWord::IncorrectData.into(),
            Err(ChangeRefusal::Blocked) => StatusWord::ReferenceDataBlocked.into(),
        }
    }

    /// The key a COMPUTE DIGITAL SIGNATURE or INTERNAL AUTHENTICATE names: `P2 = 80` for the
    /// current EF, `80|SFI` by short identifier (`97` auth, `9A` sign).
    fn key_for(&self, p2: u8) -> Result<KeySlot, StatusWord> {
        let ef = match p2 {
            0x80 => self.current_ef().ok_or(StatusWord::NoCurrentEf)?,
            0x81..=0x9E => {
                let app = self.current.ok_or(StatusWord::ReferencedDataNotFound)?;
                self.files(app)
                    .by_sfi(p2 & 0x1F)
                    .ok_or(StatusWord::ReferencedDataNotFound)?
            }
            _ => return Err(StatusWord::IncorrectP1P2),
        };
        match ef.body {
            Body::Key(slot) => Ok(slot),
            _ => Err(StatusWord::ReferencedDataNotFound),
        }
    }

    /// COMPUTE DIGITAL SIGNATURE `80 2A` (B.5): JPKI keys after their PIN with P1 `00`–`05`;
    /// the 券面 APs sign a DigestInfo with their own key (`80 2A 00 00`) without any PIN.
    fn compute_signature(&mut self, cmd: &Command) -> Reply {
        let data = cmd.data_bytes();
        let Some(image) = self.image.as_ref() else {
            return NO_KEY.into();
        };
        match self.current {
            Some(Application::Jpki) => {
                let slot = match self.key_for(cmd.p2) {
                    Ok(KeySlot::CommonInternalAuth) => {
                        return StatusWord::ReferencedDataNotFound.into();
                    }
                    Ok(slot) => slot,
                    Err(sw) => return sw.into(),
                };
                if cmd.p1 > 0x05 {
                    return StatusWord::IncorrectP1P2.into();
                }
                if slot.gate().is_some_and(|g| !self.verified.contains(&g)) {
                    return StatusWord::SecurityStatusNotSatisfied.into();
                }
                let Some(key) = private_key(image, slot) else {
                    return StatusWord::ReferencedDataNotFound.into();
                };
                if data.is_empty() || cmd.ne().is_some_and(|ne| (ne as usize) < key.size()) {
                    return StatusWord::WrongLength.into();
                }
                match jpki::compute_signature(key, cmd.p1, data, &mut self.rng) {
                    Ok(signature) => {
                        self.rsa_operations += 1;
                        Reply::ok(signature)
                    }
                    Err(sw) => sw.into(),
                }
            }
            Some(app @ (Application::Text | Application::Visual)) => {
                if cmd.p1 != 0x00 || cmd.p2 != 0x00 {
                    return StatusWord::IncorrectP1P2.into();
                }
                let key = if app == Application::Text {
                    &image.text_ap_key
                } else {
                    &image.card_key
                };
                if data.is_empty()
                    || data.len() > key.size().saturating_sub(11)
                    || cmd.ne().is_some_and(|ne| (ne as usize) < key.size())
                {
                    return StatusWord::WrongLength.into();
                }
                match key.sign(Pkcs1v15Sign::new_unprefixed(), data) {
                    Ok(signature) => {
                        self.rsa_operations += 1;
                        Reply::ok(signature)
                    }
                    Err(_) => StatusWord::ConditionsNotSatisfied.into(),
                }
            }
            _ => StatusWord::InsNotSupported.into(),
        }
    }

    /// INTERNAL AUTHENTICATE (B.5): only the common AP key `0019` answers, without a PIN,
    /// with sha256WithRSA (PKCS#1 v1.5) over the challenge.
    fn internal_authenticate(&mut self, cmd: &Command) -> Reply {
        let Some(image) = self.image.as_ref() else {
            return NO_KEY.into();
        };
        if cmd.p1 != 0x00 {
            return StatusWord::IncorrectP1P2.into();
        }
        match self.key_for(cmd.p2) {
            Ok(KeySlot::CommonInternalAuth) => {}
            Ok(_) => return StatusWord::ReferencedDataNotFound.into(),
            Err(sw) => return sw.into(),
        }
        let challenge = cmd.data_bytes();
        let key = &image.common_ap_key;
        if challenge.is_empty() || cmd.ne().is_some_and(|ne| (ne as usize) < key.size()) {
            return StatusWord::WrongLength.into();
        }
        let digest = Sha256::digest(challenge);
        match key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest) {
            Ok(signature) => {
                self.rsa_operations += 1;
                Reply::ok(signature)
            }
            Err(_) => StatusWord::ConditionsNotSatisfied.into(),
        }
    }

    /// GET DATA `00 CA P1 P2 Le` (B.8): the MF-level objects, in the power-on state or after the
    /// GP ISD (`6A88` with an AP selected, except the contact ATR, which some cards answer only
    /// then); objects over 256 bytes need extended Le (`6700` otherwise, B.4).
    fn get_data(&mut self, cmd: &Command, extended: bool) -> Reply {
        if !cmd.data_bytes().is_empty() {
            return StatusWord::WrongLength.into();
        }
        let Some(ne) = cmd.ne() else {
            return StatusWord::WrongLength.into();
        };
        let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
        if self.current.is_some() && tag != mynacard_card::catalogue::mf::CONTACT_ATR {
            return StatusWord::ReferencedDataNotFound.into();
        }
        let Some((_, value)) = self.mf_objects.iter().find(|(t, _)| *t == tag) else {
            return StatusWord::ReferencedDataNotFound.into();
        };
        let (ne, len) = (ne as usize, value.len());
        if !extended && len > 256 {
            return StatusWord::WrongLength.into();
        }
        if len > ne && !is_max_ne(ne, extended) {
            return if len <= 256 {
                StatusWord::WrongLe((len % 256) as u8).into()
            } else {
                StatusWord::WrongLength.into()
            };
        }
        Reply::ok(value.clone())
    }

    /// GET CHALLENGE `00 84 00 00 Le` (B.5): 1–256 random bytes; extended Le refused with 6985.
    fn get_challenge(&mut self, cmd: &Command, extended: bool) -> Reply {
        if extended {
            return StatusWord::ConditionsNotSatisfied.into();
        }
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return StatusWord::IncorrectP1P2.into();
        }
        let Some(ne) = cmd.ne().filter(|_| cmd.data_bytes().is_empty()) else {
            return StatusWord::WrongLength.into();
        };
        let mut challenge = vec![0u8; ne as usize];
        self.rng.fill_bytes(&mut challenge);
        Reply::ok(challenge)
    }

    /// GET RESPONSE `00 C0 00 00 Le`: the next part of an answer announced with `61xx`.
    fn get_response(&mut self, cmd: &Command, pending: Option<Pending>) -> Reply {
        let Some(mut pending) = pending else {
            return StatusWord::ConditionsNotSatisfied.into();
        };
        if cmd.p1 != 0 || cmd.p2 != 0 {
            self.pending = Some(pending);
            return StatusWord::IncorrectP1P2.into();
        }
        let Some(ne) = cmd.ne().filter(|_| cmd.data_bytes().is_empty()) else {
            self.pending = Some(pending);
            return StatusWord::WrongLength.into();
        };
        let take = (ne as usize)
            .min(self.delivered_max())
            .min(pending.data.len());
        let rest = pending.data.split_off(take);
        let chunk = std::mem::replace(&mut pending.data, rest);
        if pending.data.is_empty() {
            Reply {
                data: chunk,
                sw: pending.final_sw,
            }
        } else {
            let sw = bytes_remaining(pending.data.len());
            self.pending = Some(pending);
            Reply { data: chunk, sw }
        }
    }
}

/// The private key in a key slot.
fn private_key(image: &CardImage, slot: KeySlot) -> Option<&PrivateKey> {
    match slot {
        KeySlot::JpkiAuth => Some(&image.auth.key),
        KeySlot::JpkiSign => image.sign.as_ref().map(|c| &c.key),
        KeySlot::CommonInternalAuth => Some(&image.common_ap_key),
    }
}

/// Whether a secret changes with JICSAP CHANGE KEY (the `001C` PINs) rather than CHANGE
/// REFERENCE DATA.
fn changes_with_change_key(id: SecretId) -> bool {
    matches!(id, SecretId::CommonPin | SecretId::JukiPin)
}

/// `61xx` for `remaining` bytes (`61 00`: 256 or more).
fn bytes_remaining(remaining: usize) -> StatusWord {
    StatusWord::BytesRemaining(if remaining >= 256 { 0 } else { remaining as u8 })
}

/// Whether Ne is the "as much as there is" value of its encoding (`00` short, `00 00` extended).
fn is_max_ne(ne: usize, extended: bool) -> bool {
    if extended { ne == 65_536 } else { ne == 256 }
}
