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
    /// asking, when the card says. Returns the digits, or `null`/`nil` when the person
    /// cancels; a value that is not a PIN is asked again. The library takes the digits into
    /// its zeroizing PIN at once; the app should clear its own copy.
    fn pin(&self, retries_left: Option<u8>) -> Option<String>;
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
        self.0.pin(retries_left).map(Zeroizing::new)
    }
}

/// How a flow ended, for the app to show.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Outcome {
    /// The outcome's kind, the library's stable name (`registered`, `already_registered`,
    /// `wrong_pin`, `consent_declined`, …; one per `mynacard_registration::OutcomeKind`).
    pub kind: String,
    /// Whether the flow reached what it was for (registered, or eligible).
    pub success: bool,
    /// The service's registration id, for the kinds that carry one.
    pub registration_id: Option<String>,
    /// PIN tries left, after a wrong PIN.
    pub retries_left: Option<u8>,
    /// What to tell the person, in the registration's locale.
    pub message: String,
    /// Command APDUs sent to the card.
    pub apdu_count: u32,
}

impl Outcome {
    fn new(outcome: &mynacard_registration::Outcome, apdu_count: u32, locale: &str) -> Outcome {
        use mynacard_registration::Outcome as O;
        let registration_id = match outcome {
            O::Registered {
                registration_id, ..
            }
            | O::AlreadyRegistered {
                registration_id, ..
            }
            | O::RelinkedAfterReissue {
                registration_id, ..
            }
            | O::Deregistered { registration_id } => Some(registration_id.clone()),
            _ => None,
        };
        let retries_left = match outcome {
            O::WrongPin { retries_left } => Some(*retries_left),
            _ => None,
        };
        Outcome {
            kind: outcome.kind().as_str().to_owned(),
            success: outcome.is_success(),
            registration_id,
            retries_left,
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
