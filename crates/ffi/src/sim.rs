//! Test aids behind the `sim` feature: a simulated card whose transmit function has the
//! callback signature, what a face kiosk's devices see of it (the card face's 照合番号B, the
//! holder's face at the camera), a test attestation key, and the embedded reference service
//! that accepts the simulated cards. Never part of a production build.

use std::ffi::{CString, c_char, c_void};
use std::sync::Mutex;

use mynacard_card::CollationB;
use mynacard_registration::attestation::SoftwareAttestationKey;
use mynacard_registry::embedded::EmbeddedService;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_transport::CardChannel;
use mynacard_transport::blocking::block_on;

use crate::error::{FfiError, MynacardStatus, guard, write_out};

/// A simulated My Number Card (test aid). Opaque; made by [`mynacard_sim_card_new`], used as
/// the `ctx` of [`mynacard_sim_transmit`], freed by [`mynacard_sim_card_free`].
#[derive(Debug)]
pub struct MynacardSimCard {
    /// The card's one channel; the lock keeps two runs from interleaving their APDUs.
    channel: Mutex<SimChannel>,
    /// 照合番号B as printed on the card face; `None` when the face cannot form one.
    collation_b: Option<CollationB>,
    /// The face photo in the chip, which is also the holder's face at a kiosk's camera.
    photo: Vec<u8>,
    _card: SimCard,
}

/// A simulated card from a built-in profile of `mynacard-sim` (`"contact"`: the adult card in a
/// contact reader, PIN 1234, as an ATM sees it; `"adult"`, `"face-auth"`, …). On success
/// `*out` holds the card. `MYNACARD_STATUS_INVALID_ARGUMENT` for an unknown profile.
///
/// Thread safety: any thread. The card may be used from any thread; its transmit calls are
/// serialised.
///
/// # Safety
/// `profile` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_card_new(
    profile: *const c_char,
    out: *mut *mut MynacardSimCard,
) -> MynacardStatus {
    guard(|| {
        if profile.is_null() || out.is_null() {
            return MynacardStatus::NullArgument;
        }
        let made = (|| {
            // SAFETY: non-NULL and NUL-terminated, as the caller promises.
            let name = unsafe { crate::utf8(profile, "profile") }?;
            let image = CardImage::from_profile_name(name)
                .map_err(|e| FfiError::Invalid(format!("profile {name:?}: {e}")))?;
            let collation_b = image.collation_number_b().ok();
            let photo = image.face.photo.clone();
            let card = SimCard::from_image(image);
            let handle = MynacardSimCard {
                channel: Mutex::new(card.channel()),
                collation_b,
                photo,
                _card: card,
            };
            write_out(out, Box::into_raw(Box::new(handle)))
        })();
        match made {
            Ok(()) => MynacardStatus::Ok,
            Err(e) => e.status(),
        }
    })
}

/// The simulated card's transmit, with the signature of `MynacardTransmitFn`: pass it as a
/// transport's `transmit` with the card as `ctx` (extended length, contact).
///
/// Thread safety: any thread; calls on one card are serialised.
///
/// # Safety
/// As `MynacardTransmitFn`, with `ctx` NULL or a live `MynacardSimCard`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn mynacard_sim_transmit(
    ctx: *mut c_void,
    command: *const u8,
    command_len: usize,
    response: *mut u8,
    response_cap: usize,
    response_len: *mut usize,
) -> i32 {
    let status = guard(|| {
        if ctx.is_null() || command.is_null() || response.is_null() || response_len.is_null() {
            return MynacardStatus::NullArgument;
        }
        // SAFETY: `ctx` is a live card, as the caller promises; only shared access is taken.
        let card = unsafe { &*ctx.cast::<MynacardSimCard>() };
        // SAFETY: `command` holds `command_len` readable bytes during the call.
        let command = unsafe { std::slice::from_raw_parts(command, command_len) };
        let Ok(mut channel) = card.channel.lock() else {
            return MynacardStatus::Transport;
        };
        match block_on(channel.transmit(command)) {
            Ok(bytes) if bytes.len() <= response_cap => {
                // SAFETY: `response` holds `response_cap` writable bytes, `response_len` is
                // writable; the response fits.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), response, bytes.len());
                    response_len.write(bytes.len());
                }
                MynacardStatus::Ok
            }
            Ok(_) => MynacardStatus::BufferTooSmall,
            Err(e) if e.is_card_gone() => MynacardStatus::CardRemoved,
            Err(_) => MynacardStatus::Transport,
        }
    });
    status as i32
}

/// Frees a simulated card. NULL is ignored.
///
/// Thread safety: not during a transmit on it; once.
///
/// # Safety
/// `card` is NULL or a live card from `mynacard_sim_card_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_card_free(card: *mut MynacardSimCard) {
    if card.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw` in `mynacard_sim_card_new`, freed once.
        drop(unsafe { Box::from_raw(card) });
        MynacardStatus::Ok
    });
}

/// 照合番号B of the simulated card's face, as a kiosk's camera reads it, with the signature of
/// the terminal's `collation_number_b` callback (the card as `ctx`): writes the 14 digits and
/// returns 1; 0 when the card face forms none or the buffer is too small.
///
/// Thread safety: any thread.
///
/// # Safety
/// As the `collation_number_b` callback, with `ctx` NULL or a live `MynacardSimCard`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn mynacard_sim_collation_number_b(
    ctx: *mut c_void,
    retries_left: i32,
    digits: *mut c_char,
    digits_cap: usize,
    digits_len: *mut usize,
) -> i32 {
    // The card face reads the same at every try.
    let _ = retries_left;
    let status = guard(|| {
        if ctx.is_null() || digits.is_null() || digits_len.is_null() {
            return MynacardStatus::NullArgument;
        }
        // SAFETY: `ctx` is a live card, as the caller promises; only shared access is taken.
        let card = unsafe { &*ctx.cast::<MynacardSimCard>() };
        let Some(b) = card.collation_b.as_ref().map(CollationB::expose) else {
            return MynacardStatus::Card;
        };
        if b.len() > digits_cap {
            return MynacardStatus::BufferTooSmall;
        }
        // SAFETY: `digits` holds `digits_cap` writable bytes and `digits_len` is writable; the
        // digits fit.
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), digits.cast::<u8>(), b.len());
            digits_len.write(b.len());
        }
        MynacardStatus::Ok
    });
    i32::from(status == MynacardStatus::Ok)
}

/// The face of the simulated card's holder as a kiosk's camera captures it (test aid): the
/// person in front of the camera is the holder, so the capture is the card's own chip photo,
/// byte for byte. A kiosk's face matcher compares it with the photo the library passes to the
/// `match_face` callback; the capture of another simulated card's holder does not match.
///
/// `*face_len` is set to the capture's length. The capture is written to `face` when it fits
/// in `face_cap` bytes; otherwise nothing is written and the call returns
/// `MYNACARD_STATUS_BUFFER_TOO_SMALL` (call with `face` NULL and `face_cap` 0 to learn the
/// length). `MYNACARD_STATUS_CARD` when the card holds no photo.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `card` is NULL or a live card; `face` is NULL or holds `face_cap` writable bytes;
/// `face_len` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_holder_face(
    card: *const MynacardSimCard,
    face: *mut u8,
    face_cap: usize,
    face_len: *mut usize,
) -> MynacardStatus {
    guard(|| {
        if card.is_null() || face_len.is_null() || (face.is_null() && face_cap > 0) {
            return MynacardStatus::NullArgument;
        }
        // SAFETY: `card` is live, as the caller promises; only read.
        let photo = unsafe { &*card }.photo.as_slice();
        if photo.is_empty() {
            return MynacardStatus::Card;
        }
        // SAFETY: `face_len` is writable.
        unsafe { face_len.write(photo.len()) };
        if photo.len() > face_cap {
            return MynacardStatus::BufferTooSmall;
        }
        // SAFETY: `face` holds `face_cap` writable bytes (non-NULL: `face_cap` is at least the
        // non-zero length) and the capture fits.
        unsafe { std::ptr::copy_nonoverlapping(photo.as_ptr(), face, photo.len()) };
        MynacardStatus::Ok
    })
}

/// A test attestation key (test aid): the key the built-in seed lists for a test terminal such
/// as `kiosk-0001`, derived from its id. Opaque; made by [`mynacard_sim_attestation_key_new`],
/// used as the `ctx` of [`mynacard_sim_attest`], freed by [`mynacard_sim_attestation_key_free`].
#[derive(Debug)]
pub struct MynacardSimAttestationKey {
    key: SoftwareAttestationKey,
}

/// The test attestation key of the terminal `terminal_id` (the key the built-in seed lists for
/// `kiosk-0001`, `clinic-0001`, …; anyone who knows the id has it). On success `*out` holds it.
///
/// Thread safety: any thread. The key may be used from any thread.
///
/// # Safety
/// `terminal_id` is NULL or a NUL-terminated string; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_attestation_key_new(
    terminal_id: *const c_char,
    out: *mut *mut MynacardSimAttestationKey,
) -> MynacardStatus {
    guard(|| {
        if terminal_id.is_null() || out.is_null() {
            return MynacardStatus::NullArgument;
        }
        let made = (|| {
            // SAFETY: non-NULL and NUL-terminated, as the caller promises.
            let id = unsafe { crate::utf8(terminal_id, "terminal id") }?;
            let key = MynacardSimAttestationKey {
                key: SoftwareAttestationKey::for_testing(id),
            };
            write_out(out, Box::into_raw(Box::new(key)))
        })();
        match made {
            Ok(()) => MynacardStatus::Ok,
            Err(e) => e.status(),
        }
    })
}

/// Signs `message` with the test key (ES256, 64 bytes `r || s`), with the signature of the
/// terminal's `attest` callback (the key as `ctx`). Returns 1 with the signature written; 0
/// for NULL arguments or a buffer shorter than 64 bytes.
///
/// Thread safety: any thread.
///
/// # Safety
/// As the `attest` callback, with `ctx` NULL or a live `MynacardSimAttestationKey`.
#[unsafe(no_mangle)]
pub unsafe extern "C-unwind" fn mynacard_sim_attest(
    ctx: *mut c_void,
    message: *const u8,
    message_len: usize,
    signature: *mut u8,
    signature_cap: usize,
    signature_len: *mut usize,
) -> i32 {
    let status = guard(|| {
        if ctx.is_null() || message.is_null() || signature.is_null() || signature_len.is_null() {
            return MynacardStatus::NullArgument;
        }
        // SAFETY: `ctx` is a live key; `message` holds `message_len` bytes during the call.
        let (key, message) = unsafe {
            (
                &*ctx.cast::<MynacardSimAttestationKey>(),
                std::slice::from_raw_parts(message, message_len),
            )
        };
        let sig = key.key.sign(message);
        if sig.len() > signature_cap {
            return MynacardStatus::BufferTooSmall;
        }
        // SAFETY: `signature` holds `signature_cap` writable bytes, `signature_len` is
        // writable; the signature fits.
        unsafe {
            std::ptr::copy_nonoverlapping(sig.as_ptr(), signature, sig.len());
            signature_len.write(sig.len());
        }
        MynacardStatus::Ok
    });
    i32::from(status == MynacardStatus::Ok)
}

/// Frees a test attestation key. NULL is ignored.
///
/// Thread safety: not during a signature with it; once.
///
/// # Safety
/// `key` is NULL or a live key from `mynacard_sim_attestation_key_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_attestation_key_free(key: *mut MynacardSimAttestationKey) {
    if key.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw` in `mynacard_sim_attestation_key_new`, freed once.
        drop(unsafe { Box::from_raw(key) });
        MynacardStatus::Ok
    });
}

/// The embedded reference service (test aid), on loopback over plain HTTP, on a fresh SQLite
/// file, with the built-in seed (the persons of the simulated cards and the test terminals
/// such as `atm-0001`) and the simulator's test roots accepted. Opaque; made by
/// [`mynacard_sim_service_start`], stopped and freed by [`mynacard_sim_service_free`].
#[derive(Debug)]
pub struct MynacardSimService {
    /// Handed out by [`mynacard_sim_service_url`]; lives until the free.
    url: CString,
    /// Held for its lifetime only: dropping it stops the service and removes its database.
    _running: EmbeddedService,
}

/// Starts the embedded reference service on its own runtime (one worker thread). On success
/// `*out` holds it and [`mynacard_sim_service_url`] says where it listens.
///
/// Thread safety: any thread. The service runs until freed.
///
/// # Safety
/// `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_service_start(
    out: *mut *mut MynacardSimService,
) -> MynacardStatus {
    guard(|| {
        if out.is_null() {
            return MynacardStatus::NullArgument;
        }
        match start_service().and_then(|s| write_out(out, Box::into_raw(Box::new(s)))) {
            Ok(()) => MynacardStatus::Ok,
            Err(e) => e.status(),
        }
    })
}

fn start_service() -> Result<MynacardSimService, FfiError> {
    let service =
        EmbeddedService::start("mynacard-ffi").map_err(|e| FfiError::Service(e.to_string()))?;
    let url =
        CString::new(service.base_url()).map_err(|e| FfiError::Service(format!("url: {e}")))?;
    Ok(MynacardSimService {
        url,
        _running: service,
    })
}

/// The service's base URL (`http://127.0.0.1:PORT`), for `mynacard_client_new`. The string
/// belongs to the service and lives until its free; NULL for NULL.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `service` is NULL or a live service.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_service_url(
    service: *const MynacardSimService,
) -> *const c_char {
    if service.is_null() {
        return std::ptr::null();
    }
    // SAFETY: non-NULL and live, as the caller promises; only read.
    unsafe { &*service }.url.as_ptr()
}

/// Stops the service (requests in flight finish, the database is closed and removed) and
/// frees it. NULL is ignored.
///
/// Thread safety: not while a client uses the service from another thread; once.
///
/// # Safety
/// `service` is NULL or a live service from `mynacard_sim_service_start`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_sim_service_free(service: *mut MynacardSimService) {
    if service.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw` in `mynacard_sim_service_start`, freed once.
        // Dropping it stops the service and removes its database.
        drop(unsafe { Box::from_raw(service) });
        MynacardStatus::Ok
    });
}
