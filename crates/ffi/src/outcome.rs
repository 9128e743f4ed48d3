//! How a run ended, as a handle with accessors.

use std::ffi::{CString, c_char};

use mynacard_registration::driver::RunReport;
use mynacard_registration::{Outcome, OutcomeKind};

use crate::error::{MynacardStatus, guard};

/// Which outcome a run ended with (`mynacard_registration::OutcomeKind`). The values are
/// stable; [`MynacardOutcomeKind::Unknown`] stands for a kind added after this header was made.
/// [`mynacard_outcome_kind_name`] gives the stable snake-case name (`registered`, `wrong_pin`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MynacardOutcomeKind {
    /// A kind this header does not know: read the name and the message.
    Unknown = 0,
    /// `registered`.
    Registered = 1,
    /// `already_registered`.
    AlreadyRegistered = 2,
    /// `relinked_after_reissue`.
    RelinkedAfterReissue = 3,
    /// `eligible`.
    Eligible = 4,
    /// `deregistered`.
    Deregistered = 5,
    /// `pending`.
    Pending = 6,
    /// `upstream_timed_out`.
    UpstreamTimedOut = 7,
    /// `not_registered`.
    NotRegistered = 8,
    /// `registration_lapsed`.
    RegistrationLapsed = 9,
    /// `no_insurance_record`.
    NoInsuranceRecord = 10,
    /// `person_not_found`.
    PersonNotFound = 11,
    /// `multiple_insurance_records`.
    MultipleInsuranceRecords = 12,
    /// `registration_restricted`.
    RegistrationRestricted = 13,
    /// `certificate_expired`.
    CertificateExpired = 14,
    /// `certificate_revoked`.
    CertificateRevoked = 15,
    /// `certificate_untrusted`.
    CertificateUntrusted = 16,
    /// `certificate_wrong_type`.
    CertificateWrongType = 17,
    /// `wrong_pin`.
    WrongPin = 18,
    /// `pin_blocked`.
    PinBlocked = 19,
    /// `last_attempt_refused`.
    LastAttemptRefused = 20,
    /// `no_auth_pin`.
    NoAuthPin = 21,
    /// `collation_number_wrong`.
    CollationNumberWrong = 22,
    /// `collation_number_blocked`.
    CollationNumberBlocked = 23,
    /// `collation_last_attempt_refused`.
    CollationLastAttemptRefused = 24,
    /// `face_not_matched`.
    FaceNotMatched = 25,
    /// `consent_declined`.
    ConsentDeclined = 26,
    /// `cancelled`.
    Cancelled = 27,
    /// `card_removed`.
    CardRemoved = 28,
    /// `card_error`.
    CardError = 29,
    /// `service_busy`.
    ServiceBusy = 30,
    /// `maintenance`.
    Maintenance = 31,
    /// `service_unreachable`.
    ServiceUnreachable = 32,
    /// `session_expired`.
    SessionExpired = 33,
    /// `terminal_not_accepted`.
    TerminalNotAccepted = 34,
    /// `consent_changed`.
    ConsentChanged = 35,
    /// `rejected`.
    Rejected = 36,
    /// `protocol_error`.
    ProtocolError = 37,
}

impl From<OutcomeKind> for MynacardOutcomeKind {
    fn from(kind: OutcomeKind) -> Self {
        match kind {
            OutcomeKind::Registered => MynacardOutcomeKind::Registered,
            OutcomeKind::AlreadyRegistered => MynacardOutcomeKind::AlreadyRegistered,
            OutcomeKind::RelinkedAfterReissue => MynacardOutcomeKind::RelinkedAfterReissue,
            OutcomeKind::Eligible => MynacardOutcomeKind::Eligible,
            OutcomeKind::Deregistered => MynacardOutcomeKind::Deregistered,
            OutcomeKind::Pending => MynacardOutcomeKind::Pending,
            OutcomeKind::UpstreamTimedOut => MynacardOutcomeKind::UpstreamTimedOut,
            OutcomeKind::NotRegistered => MynacardOutcomeKind::NotRegistered,
            OutcomeKind::RegistrationLapsed => MynacardOutcomeKind::RegistrationLapsed,
            OutcomeKind::NoInsuranceRecord => MynacardOutcomeKind::NoInsuranceRecord,
            OutcomeKind::PersonNotFound => MynacardOutcomeKind::PersonNotFound,
            OutcomeKind::MultipleInsuranceRecords => MynacardOutcomeKind::MultipleInsuranceRecords,
            OutcomeKind::RegistrationRestricted => MynacardOutcomeKind::RegistrationRestricted,
            OutcomeKind::CertificateExpired => MynacardOutcomeKind::CertificateExpired,
            OutcomeKind::CertificateRevoked => MynacardOutcomeKind::CertificateRevoked,
            OutcomeKind::CertificateUntrusted => MynacardOutcomeKind::CertificateUntrusted,
            OutcomeKind::CertificateWrongType => MynacardOutcomeKind::CertificateWrongType,
            OutcomeKind::WrongPin => MynacardOutcomeKind::WrongPin,
            OutcomeKind::PinBlocked => MynacardOutcomeKind::PinBlocked,
            OutcomeKind::LastAttemptRefused => MynacardOutcomeKind::LastAttemptRefused,
            OutcomeKind::NoAuthPin => MynacardOutcomeKind::NoAuthPin,
            OutcomeKind::CollationNumberWrong => MynacardOutcomeKind::CollationNumberWrong,
            OutcomeKind::CollationNumberBlocked => MynacardOutcomeKind::CollationNumberBlocked,
            OutcomeKind::CollationLastAttemptRefused => {
                MynacardOutcomeKind::CollationLastAttemptRefused
            }
            OutcomeKind::FaceNotMatched => MynacardOutcomeKind::FaceNotMatched,
            OutcomeKind::ConsentDeclined => MynacardOutcomeKind::ConsentDeclined,
            OutcomeKind::Cancelled => MynacardOutcomeKind::Cancelled,
            OutcomeKind::CardRemoved => MynacardOutcomeKind::CardRemoved,
            OutcomeKind::CardError => MynacardOutcomeKind::CardError,
            OutcomeKind::ServiceBusy => MynacardOutcomeKind::ServiceBusy,
            OutcomeKind::Maintenance => MynacardOutcomeKind::Maintenance,
            OutcomeKind::ServiceUnreachable => MynacardOutcomeKind::ServiceUnreachable,
            OutcomeKind::SessionExpired => MynacardOutcomeKind::SessionExpired,
            OutcomeKind::TerminalNotAccepted => MynacardOutcomeKind::TerminalNotAccepted,
            OutcomeKind::ConsentChanged => MynacardOutcomeKind::ConsentChanged,
            OutcomeKind::Rejected => MynacardOutcomeKind::Rejected,
            OutcomeKind::ProtocolError => MynacardOutcomeKind::ProtocolError,
            _ => MynacardOutcomeKind::Unknown,
        }
    }
}

/// How a run ended. Opaque; made by `mynacard_client_run`, read with the `mynacard_outcome_*`
/// accessors, freed by [`mynacard_outcome_free`]. Immutable: its accessors may be called from
/// any number of threads at once.
#[derive(Debug)]
pub struct MynacardOutcome {
    outcome: Outcome,
    apdus: u32,
    registration_id: Option<CString>,
    kind_name: CString,
}

impl MynacardOutcome {
    /// The handle for a run's report.
    pub(crate) fn new(report: RunReport) -> MynacardOutcome {
        let registration_id = match &report.outcome {
            Outcome::Registered {
                registration_id, ..
            }
            | Outcome::AlreadyRegistered {
                registration_id, ..
            }
            | Outcome::RelinkedAfterReissue {
                registration_id, ..
            }
            | Outcome::Deregistered { registration_id } => {
                CString::new(registration_id.as_str()).ok()
            }
            _ => None,
        };
        let kind_name = CString::new(report.outcome.kind().as_str()).unwrap_or_default();
        MynacardOutcome {
            kind_name,
            outcome: report.outcome,
            apdus: report.apdus,
            registration_id,
        }
    }
}

/// Reads an outcome handle, or returns `default` for NULL or a panic.
fn read<T>(
    outcome: *const MynacardOutcome,
    default: T,
    f: impl FnOnce(&MynacardOutcome) -> T,
) -> T {
    if outcome.is_null() {
        return default;
    }
    let mut value = None;
    let status = guard(|| {
        // SAFETY: non-NULL; the caller passes a live outcome, which nothing mutates.
        value = Some(f(unsafe { &*outcome }));
        MynacardStatus::Ok
    });
    match (status, value) {
        (MynacardStatus::Ok, Some(v)) => v,
        _ => default,
    }
}

/// The outcome's kind; [`MynacardOutcomeKind::Unknown`] for NULL.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_outcome_kind(
    outcome: *const MynacardOutcome,
) -> MynacardOutcomeKind {
    read(outcome, MynacardOutcomeKind::Unknown, |o| {
        o.outcome.kind().into()
    })
}

/// The outcome kind's stable snake-case name (`"registered"`, `"wrong_pin"`, …). The string
/// belongs to the outcome and lives until its free; NULL for NULL.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_outcome_kind_name(
    outcome: *const MynacardOutcome,
) -> *const c_char {
    read(outcome, std::ptr::null(), |o| o.kind_name.as_ptr())
}

/// The service's registration id for `registered`, `already_registered`,
/// `relinked_after_reissue` and `deregistered`; NULL otherwise. The string belongs to the
/// outcome and lives until its free.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_outcome_registration_id(
    outcome: *const MynacardOutcome,
) -> *const c_char {
    read(outcome, std::ptr::null(), |o| {
        o.registration_id
            .as_ref()
            .map_or(std::ptr::null(), |s| s.as_ptr())
    })
}

/// The tries left for `wrong_pin` and `collation_number_wrong`; -1 otherwise (and for NULL).
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_outcome_retries_left(outcome: *const MynacardOutcome) -> i32 {
    read(outcome, -1, |o| match o.outcome {
        Outcome::WrongPin { retries_left } | Outcome::CollationNumberWrong { retries_left } => {
            i32::from(retries_left)
        }
        _ => -1,
    })
}

/// The command APDUs the run sent to the card (GET RESPONSE included); 0 for NULL.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `outcome` is NULL or a live outcome.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_outcome_apdu_count(outcome: *const MynacardOutcome) -> u32 {
    read(outcome, 0, |o| o.apdus)
}

/// A message for the person, in `locale` (`"ja"` or `"en"`; NULL for Japanese). A new string
/// the caller frees with `mynacard_string_free`; NULL for a NULL outcome or a locale that is not
/// UTF-8. It never contains a PIN or personal data.
///
/// Thread safety: any thread, concurrently.
///
/// # Safety
/// `outcome` is NULL or a live outcome; `locale` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_outcome_message(
    outcome: *const MynacardOutcome,
    locale: *const c_char,
) -> *mut c_char {
    read(outcome, std::ptr::null_mut(), |o| {
        let locale = if locale.is_null() {
            "ja"
        } else {
            // SAFETY: non-NULL and NUL-terminated, as the caller promises.
            match unsafe { crate::utf8(locale, "locale") } {
                Ok(l) => l,
                Err(_) => return std::ptr::null_mut(),
            }
        };
        let message: Vec<u8> = o
            .outcome
            .message(locale)
            .bytes()
            .filter(|&b| b != 0)
            .collect();
        CString::new(message).map_or(std::ptr::null_mut(), CString::into_raw)
    })
}

/// Frees an outcome. NULL is ignored.
///
/// Thread safety: not while another thread reads it; once.
///
/// # Safety
/// `outcome` is NULL or a live outcome from `mynacard_client_run`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn mynacard_outcome_free(outcome: *mut MynacardOutcome) {
    if outcome.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: made by `Box::into_raw` in `mynacard_client_run`, freed once.
        drop(unsafe { Box::from_raw(outcome) });
        MynacardStatus::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_kind_has_its_own_c_value() {
        let mut seen = std::collections::HashSet::new();
        for kind in OutcomeKind::ALL {
            let c = MynacardOutcomeKind::from(kind);
            assert_ne!(c, MynacardOutcomeKind::Unknown, "{kind} has no C value");
            assert!(seen.insert(c as i32), "{kind} shares its C value");
        }
    }
}
