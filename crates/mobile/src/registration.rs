//! Whole flows against a registration service: the driver over the app's tag, the HTTP
//! binding and the app's terminal callbacks.

use std::sync::Arc;

use async_trait::async_trait;
use mynacard_nfc::NfcTransport;
use mynacard_registration::driver::{self, RunReport, Terminal};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::ConsentPrompt;
use mynacard_registration::{FlowConfig, Machine, TerminalKind};
use zeroize::Zeroizing;

use crate::MobileError;
use crate::tag::{HostTag, NfcTag};

/// The app's screens, implemented by the app. Called on the thread that runs the flow.
#[uniffi::export(with_foreign)]
pub trait PhoneTerminal: Send + Sync {
    /// Shows the consent `text` (plain text with line breaks, in the registration's locale);
    /// returns whether the person agreed.
    fn consent(&self, text: String) -> bool;

    /// Asks the authentication PIN (4 digits). `retries_left` is the card's count, read before
    /// asking (before any VERIFY), when the card says. Returns the digits, or an empty string
    /// when the person cancels; a value that is not a PIN is asked again. The library moves the
    /// digits into its zeroizing PIN without a copy (a plain string crosses the boundary in its
    /// own buffer; an optional one would be copied out of a serialised one); the app should
    /// clear its own copy.
    fn pin(&self, retries_left: Option<u8>) -> String;
}

/// The app's terminal callbacks as the driver's terminal. An app has no camera matcher, no
/// 照合番号B reader and no attestation key: the PIN flows need none of them.
struct AppTerminal(Arc<dyn PhoneTerminal>);

#[async_trait]
impl Terminal for AppTerminal {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        self.0
            .consent(prompt.document.render(&prompt.locale, prompt.op))
    }

    async fn pin(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        let pin = Zeroizing::new(self.0.pin(retries_left));
        (!pin.is_empty()).then_some(pin)
    }
}

/// Which outcome a flow ended with: one per `mynacard_registration::OutcomeKind`, whose stable
/// snake-case name is [`Outcome::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum OutcomeKind {
    /// `registered`.
    Registered,
    /// `already_registered`.
    AlreadyRegistered,
    /// `relinked_after_reissue`.
    RelinkedAfterReissue,
    /// `eligible`.
    Eligible,
    /// `deregistered`.
    Deregistered,
    /// `pending`.
    Pending,
    /// `upstream_timed_out`.
    UpstreamTimedOut,
    /// `not_registered`.
    NotRegistered,
    /// `registration_lapsed`.
    RegistrationLapsed,
    /// `no_insurance_record`.
    NoInsuranceRecord,
    /// `person_not_found`.
    PersonNotFound,
    /// `multiple_insurance_records`.
    MultipleInsuranceRecords,
    /// `registration_restricted`.
    RegistrationRestricted,
    /// `certificate_expired`.
    CertificateExpired,
    /// `certificate_revoked`.
    CertificateRevoked,
    /// `certificate_untrusted`.
    CertificateUntrusted,
    /// `certificate_wrong_type`.
    CertificateWrongType,
    /// `wrong_pin`.
    WrongPin,
    /// `pin_blocked`.
    PinBlocked,
    /// `last_attempt_refused`.
    LastAttemptRefused,
    /// `no_auth_pin`.
    NoAuthPin,
    /// `collation_number_wrong`.
    CollationNumberWrong,
    /// `collation_number_blocked`.
    CollationNumberBlocked,
    /// `collation_last_attempt_refused`.
    CollationLastAttemptRefused,
    /// `face_not_matched`.
    FaceNotMatched,
    /// `consent_declined`.
    ConsentDeclined,
    /// `cancelled`.
    Cancelled,
    /// `card_removed`.
    CardRemoved,
    /// `card_error`.
    CardError,
    /// `service_busy`.
    ServiceBusy,
    /// `maintenance`.
    Maintenance,
    /// `service_unreachable`.
    ServiceUnreachable,
    /// `session_expired`.
    SessionExpired,
    /// `terminal_not_accepted`.
    TerminalNotAccepted,
    /// `consent_changed`.
    ConsentChanged,
    /// `rejected`.
    Rejected,
    /// `protocol_error`.
    ProtocolError,
    /// A kind added to the library after these bindings were generated: show
    /// [`Outcome::message`].
    Unknown,
}

impl From<mynacard_registration::OutcomeKind> for OutcomeKind {
    fn from(kind: mynacard_registration::OutcomeKind) -> Self {
        use mynacard_registration::OutcomeKind as K;
        match kind {
            K::Registered => OutcomeKind::Registered,
            K::AlreadyRegistered => OutcomeKind::AlreadyRegistered,
            K::RelinkedAfterReissue => OutcomeKind::RelinkedAfterReissue,
            K::Eligible => OutcomeKind::Eligible,
            K::Deregistered => OutcomeKind::Deregistered,
            K::Pending => OutcomeKind::Pending,
            K::UpstreamTimedOut => OutcomeKind::UpstreamTimedOut,
            K::NotRegistered => OutcomeKind::NotRegistered,
            K::RegistrationLapsed => OutcomeKind::RegistrationLapsed,
            K::NoInsuranceRecord => OutcomeKind::NoInsuranceRecord,
            K::PersonNotFound => OutcomeKind::PersonNotFound,
            K::MultipleInsuranceRecords => OutcomeKind::MultipleInsuranceRecords,
            K::RegistrationRestricted => OutcomeKind::RegistrationRestricted,
            K::CertificateExpired => OutcomeKind::CertificateExpired,
            K::CertificateRevoked => OutcomeKind::CertificateRevoked,
            K::CertificateUntrusted => OutcomeKind::CertificateUntrusted,
            K::CertificateWrongType => OutcomeKind::CertificateWrongType,
            K::WrongPin => OutcomeKind::WrongPin,
            K::PinBlocked => OutcomeKind::PinBlocked,
            K::LastAttemptRefused => OutcomeKind::LastAttemptRefused,
            K::NoAuthPin => OutcomeKind::NoAuthPin,
            K::CollationNumberWrong => OutcomeKind::CollationNumberWrong,
            K::CollationNumberBlocked => OutcomeKind::CollationNumberBlocked,
            K::CollationLastAttemptRefused => OutcomeKind::CollationLastAttemptRefused,
            K::FaceNotMatched => OutcomeKind::FaceNotMatched,
            K::ConsentDeclined => OutcomeKind::ConsentDeclined,
            K::Cancelled => OutcomeKind::Cancelled,
            K::CardRemoved => OutcomeKind::CardRemoved,
            K::CardError => OutcomeKind::CardError,
            K::ServiceBusy => OutcomeKind::ServiceBusy,
            K::Maintenance => OutcomeKind::Maintenance,
            K::ServiceUnreachable => OutcomeKind::ServiceUnreachable,
            K::SessionExpired => OutcomeKind::SessionExpired,
            K::TerminalNotAccepted => OutcomeKind::TerminalNotAccepted,
            K::ConsentChanged => OutcomeKind::ConsentChanged,
            K::Rejected => OutcomeKind::Rejected,
            K::ProtocolError => OutcomeKind::ProtocolError,
            // The library's kinds are non-exhaustive.
            _ => OutcomeKind::Unknown,
        }
    }
}

/// How a flow ended, for the app to show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Outcome {
    /// The outcome's kind.
    pub kind: OutcomeKind,
    /// The kind's stable snake-case name (`registered`, `wrong_pin`, …), for logs.
    pub name: String,
    /// Whether the flow reached what it was for (registered, or eligible).
    pub success: bool,
    /// The service's registration id, for the kinds that carry one.
    pub registration_id: Option<String>,
    /// The insurer's name, when the service gave it with a registration.
    pub insurer_name: Option<String>,
    /// PIN tries left, after a wrong PIN.
    pub retries_left: Option<u8>,
    /// Seconds to wait before trying again, when the service is busy or in maintenance and
    /// said so.
    pub retry_after_seconds: Option<u32>,
    /// The card left the field during VERIFY: the card may have counted the try.
    pub attempt_may_have_been_counted: bool,
    /// What to tell the person, in the registration's locale.
    pub message: String,
    /// Command APDUs sent to the card.
    pub apdu_count: u32,
}

impl Outcome {
    fn new(outcome: &mynacard_registration::Outcome, apdu_count: u32, locale: &str) -> Outcome {
        use mynacard_registration::Outcome as O;
        let (registration_id, insurer_name) = match outcome {
            O::Registered {
                registration_id,
                insurer_name,
            }
            | O::AlreadyRegistered {
                registration_id,
                insurer_name,
            }
            | O::RelinkedAfterReissue {
                registration_id,
                insurer_name,
            } => (Some(registration_id.clone()), insurer_name.clone()),
            O::Deregistered { registration_id } => (Some(registration_id.clone()), None),
            _ => (None, None),
        };
        let retries_left = match outcome {
            O::WrongPin { retries_left } => Some(*retries_left),
            _ => None,
        };
        let retry_after_seconds = match outcome {
            O::ServiceBusy { retry_after } | O::Maintenance { retry_after } => *retry_after,
            _ => None,
        };
        let attempt_may_have_been_counted = matches!(
            outcome,
            O::CardRemoved {
                attempt_may_have_been_counted: true
            }
        );
        let kind = outcome.kind();
        Outcome {
            kind: kind.into(),
            name: kind.as_str().to_owned(),
            success: outcome.is_success(),
            registration_id,
            insurer_name,
            retries_left,
            retry_after_seconds,
            attempt_may_have_been_counted,
            message: outcome.message(locale),
            apdu_count,
        }
    }
}

/// The app's connection to one registration service, with the runtime its flows run on.
#[derive(Debug, uniffi::Object)]
pub struct Registration {
    runtime: tokio::runtime::Runtime,
    http: HttpClient,
    app_id: String,
    locale: String,
}

#[uniffi::export]
impl Registration {
    /// A connection to the service at `service_url` (`https://`, the public web roots trusted;
    /// `http://` for a local test service) for this app installation's id at the service,
    /// showing consent and messages in `locale` (`"ja"` or `"en"`).
    ///
    /// # Errors
    /// [`MobileError::InvalidArgument`] for a URL or id it cannot use; [`MobileError::Flow`]
    /// when the runtime cannot start.
    #[uniffi::constructor]
    pub fn new(
        service_url: String,
        app_id: String,
        locale: String,
    ) -> Result<Arc<Registration>, MobileError> {
        if app_id.is_empty() {
            return Err(MobileError::InvalidArgument("app_id is empty".to_owned()));
        }
        // One thread: the flow is driven on the caller's thread, where the tag's blocking
        // transceive runs too.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| MobileError::Flow(format!("cannot start the runtime: {e}")))?;
        let http = {
            let _inside = runtime.enter();
            HttpClient::new(&service_url)
                .map_err(|e| MobileError::InvalidArgument(format!("service client: {e}")))?
        };
        Ok(Arc::new(Registration {
            runtime,
            http,
            app_id,
            locale,
        }))
    }

    /// Registers the card on `tag` for health-insurance use with its authentication PIN, asked
    /// through `terminal`, and blocks until the flow ends. The card's last PIN try is never
    /// spent (the outcome is then `last_attempt_refused`).
    ///
    /// # Errors
    /// [`MobileError::Flow`] when the flow cannot run; how it ended otherwise is the outcome.
    pub fn register_with_pin(
        &self,
        tag: Arc<dyn NfcTag>,
        terminal: Arc<dyn PhoneTerminal>,
    ) -> Result<Outcome, MobileError> {
        self.run(Machine::register_with_pin(self.config()), tag, terminal)
    }

    /// Checks the eligibility of the card's holder with the PIN, as at the point of use, and
    /// blocks until the flow ends.
    ///
    /// # Errors
    /// As [`register_with_pin`](Registration::register_with_pin).
    pub fn check_eligibility(
        &self,
        tag: Arc<dyn NfcTag>,
        terminal: Arc<dyn PhoneTerminal>,
    ) -> Result<Outcome, MobileError> {
        self.run(
            Machine::check_eligibility_with_pin(self.config()),
            tag,
            terminal,
        )
    }
}

impl Registration {
    fn config(&self) -> FlowConfig {
        FlowConfig::new(self.app_id.as_str(), TerminalKind::App).with_locale(&self.locale)
    }

    fn run(
        &self,
        machine: Machine,
        tag: Arc<dyn NfcTag>,
        terminal: Arc<dyn PhoneTerminal>,
    ) -> Result<Outcome, MobileError> {
        let transport = NfcTransport::new(Arc::new(HostTag(tag)));
        let mut terminal = AppTerminal(terminal);
        // The phone would not take the timeout, or the tag is gone: nothing reached the card.
        let Ok(mut channel) = transport.open_channel() else {
            let removed = mynacard_registration::Outcome::CardRemoved {
                attempt_may_have_been_counted: false,
            };
            return Ok(Outcome::new(&removed, 0, &self.locale));
        };
        let report: RunReport = self
            .runtime
            .block_on(driver::run(
                machine,
                &mut channel,
                &self.http,
                &mut terminal,
            ))
            .map_err(|e| MobileError::Flow(e.to_string()))?;
        Ok(Outcome::new(&report.outcome, report.apdus, &self.locale))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn every_library_kind_has_its_own_binding_kind() {
        let all = mynacard_registration::OutcomeKind::ALL;
        let mapped: HashSet<OutcomeKind> = all.iter().map(|&k| OutcomeKind::from(k)).collect();
        assert_eq!(mapped.len(), all.len(), "two kinds share a binding kind");
        assert!(!mapped.contains(&OutcomeKind::Unknown));
    }

    #[test]
    fn a_wrong_pin_carries_its_tries_and_a_registration_its_id() {
        let wrong = mynacard_registration::Outcome::WrongPin { retries_left: 2 };
        let outcome = Outcome::new(&wrong, 4, "en");
        assert_eq!(outcome.kind, OutcomeKind::WrongPin);
        assert_eq!(outcome.name, "wrong_pin");
        assert_eq!(outcome.retries_left, Some(2));
        assert!(!outcome.success);
        assert_eq!(outcome.apdu_count, 4);

        let registered = mynacard_registration::Outcome::Registered {
            registration_id: "reg-1".to_owned(),
            insurer_name: Some("insurer".to_owned()),
        };
        let outcome = Outcome::new(&registered, 5, "en");
        assert_eq!(outcome.kind, OutcomeKind::Registered);
        assert!(outcome.success);
        assert_eq!(outcome.registration_id.as_deref(), Some("reg-1"));
        assert_eq!(outcome.insurer_name.as_deref(), Some("insurer"));
        assert_eq!(outcome.retries_left, None);
    }
}
