//! How a smartphone app drives the registration by hand: the sans-I/O machine says what to do
//! next, the app does it with its own NFC and its own HTTP client and feeds back the result.
//!
//! This is the loop a Kotlin (Android `IsoDep`) or Swift (Core NFC) host reproduces around the
//! machine. Here the app's "NFC" is the simulated card's engine called directly as the
//! transceive, limited to short APDUs (261-byte commands) as on the many phones without extended
//! length, and its HTTP client (OkHttp / URLSession in a real app) is the library's rustls
//! client against the reference service running in this process. APDUs, bytes and requests are
//! counted and printed.
//!
//! Run with `cargo run --example smartphone_host`.

use mynacard::registration::driver::ServiceClient as _;
use mynacard::registration::http::HttpClient;
use mynacard::registration::machine::{Action, CardFailure, HttpMethod, MachineError};
use mynacard::registration::{FlowConfig, Machine, Outcome, TerminalKind};
use mynacard::sim::engine::Card;
use mynacard::sim::image::CardImage;
use zeroize::Zeroizing;

// The service bootstrap is shared with the other examples; the workspace's tests bring their
// own copy of the same module and include this file as a module.
#[cfg(not(test))]
mod support;
use crate::support::{BoxError, ReferenceService, runtime};

/// This app installation's id at the service (a terminal of the built-in seed).
pub(crate) const APP_ID: &str = "app-0001";

/// The longest command a short-only phone transceives: 4 + 1 + 255 + 1 bytes.
pub(crate) const SHORT_APDU_MAX: usize = 261;

/// The PIN the person types into the app in this demonstration.
const TYPED_PIN: &str = "1234";

/// The phone's NFC as the app sees it (`IsoDep.transceive` / `NFCISO7816Tag.sendCommand`).
pub(crate) struct PhoneNfc {
    /// The card in the field: the simulated card's engine.
    card: Card,
    /// `IsoDep.getMaxTransceiveLength()` of a phone without extended length.
    max_transceive: usize,
    /// What went over the air so far.
    pub(crate) traffic: Traffic,
}

/// What went over the air and the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    /// Command APDUs sent.
    pub(crate) apdus: u32,
    /// Command bytes sent.
    pub(crate) bytes_sent: u64,
    /// Response bytes received (status words included).
    pub(crate) bytes_received: u64,
    /// The longest command sent.
    pub(crate) longest_command: usize,
    /// The longest response received.
    pub(crate) longest_response: usize,
    /// HTTP requests sent.
    pub(crate) http_requests: u32,
}

/// The phone refused to send a command (Android throws, iOS reports an error).
#[derive(Debug)]
pub(crate) struct TransceiveTooLong;

impl PhoneNfc {
    /// A short-only phone with `image`'s card in its field.
    pub(crate) fn new(image: CardImage) -> PhoneNfc {
        PhoneNfc {
            card: Card::new(image),
            max_transceive: SHORT_APDU_MAX,
            traffic: Traffic::default(),
        }
    }

    /// One APDU over the air.
    fn transceive(&mut self, command: &[u8]) -> Result<Vec<u8>, TransceiveTooLong> {
        if command.len() > self.max_transceive {
            return Err(TransceiveTooLong);
        }
        let response = self.card.process(command);
        let t = &mut self.traffic;
        t.apdus += 1;
        t.bytes_sent += command.len() as u64;
        t.bytes_received += response.len() as u64;
        t.longest_command = t.longest_command.max(command.len());
        t.longest_response = t.longest_response.max(response.len());
        Ok(response)
    }
}

/// One step of the loop, for the app's log (never a PIN or personal data).
pub(crate) type StepLog = Vec<String>;

/// How one registration went.
pub(crate) struct PhoneRun {
    /// How it ended.
    pub(crate) outcome: Outcome,
    /// Over the air and over the network.
    pub(crate) traffic: Traffic,
    /// Tries left shown before the PIN was asked.
    pub(crate) tries_shown: Vec<Option<u8>>,
    /// What the loop did, step by step.
    pub(crate) log: StepLog,
}

/// The host loop: asks the machine what to do next, does it, feeds back the result, until the
/// machine says the flow is done. Everything platform-specific is in `nfc`, `http` and the
/// three UI answers (consent, PIN, cancel).
pub(crate) async fn register_from_phone(
    mut machine: Machine,
    nfc: &mut PhoneNfc,
    http: &HttpClient,
    pin_pad: Zeroizing<String>,
) -> Result<PhoneRun, MachineError> {
    let mut pin_pad = Some(pin_pad);
    let mut tries_shown = Vec::new();
    let mut http_requests = 0;
    let mut log = StepLog::new();
    loop {
        match machine.next_action() {
            Action::SendCard(command) => {
                let sent = command.bytes.len();
                match nfc.transceive(command.bytes.as_slice()) {
                    Ok(response) => {
                        log.push(format!(
                            "nfc   {:<36} {sent:>4} B -> {:>4} B",
                            command.purpose,
                            response.len()
                        ));
                        machine.feed_card_response(&response)?;
                    }
                    Err(TransceiveTooLong) => {
                        log.push(format!("nfc   {} refused by the phone", command.purpose));
                        machine.feed_card_failure(CardFailure::Transport)?;
                    }
                }
            }
            Action::ShowConsent(prompt) => {
                log.push(format!("ui    consent: {}", prompt.document.title.ja));
                machine.feed_consent(true)?;
            }
            Action::AskPin { retries_left } => {
                tries_shown.push(retries_left);
                log.push(match retries_left {
                    Some(n) => format!("ui    PIN requested ({n} tries left shown)"),
                    None => "ui    PIN requested".to_owned(),
                });
                match pin_pad.take() {
                    // The pad's digits become a PIN; anything else is never sent.
                    Some(typed) => match mynacard::card::Pin::new(&typed) {
                        Ok(pin) => machine.feed_pin(pin)?,
                        Err(_) => machine.cancel()?,
                    },
                    None => machine.cancel()?,
                }
            }
            Action::SendHttp(request) => {
                http_requests += 1;
                let method = match request.method {
                    HttpMethod::Get => "GET",
                    HttpMethod::Post => "POST",
                };
                match http.send(&request).await {
                    Ok(response) => {
                        log.push(format!(
                            "http  {method} {} -> {} ({} B)",
                            request.path,
                            response.status,
                            response.body.len()
                        ));
                        machine.feed_http_response(response)?;
                    }
                    Err(failure) => {
                        log.push(format!("http  {method} {} -> {failure:?}", request.path));
                        machine.feed_http_failure(failure)?;
                    }
                }
            }
            Action::Done(outcome) => {
                return Ok(PhoneRun {
                    outcome,
                    traffic: Traffic {
                        http_requests,
                        ..nfc.traffic
                    },
                    tries_shown,
                    log,
                });
            }
            // Face matching, 照合番号B and terminal attestation belong to accredited kiosks; an
            // app has none of them.
            _ => machine.cancel()?,
        }
    }
}

/// The simulated card held to a short-only phone: the adult card behind a link without
/// extended length.
pub(crate) fn phone_with_card() -> Result<PhoneNfc, BoxError> {
    Ok(PhoneNfc::new(CardImage::from_profile_name("no-extended")?))
}

/// A registration with the PIN from this app.
pub(crate) fn app_machine() -> Machine {
    // Short reads: 256 bytes per READ BINARY (the default chunk).
    Machine::register_with_pin(FlowConfig::new(APP_ID, TerminalKind::App))
}

fn main() -> Result<(), BoxError> {
    runtime()?.block_on(async {
        let service = ReferenceService::start().await?;
        println!("smartphone app {APP_ID}: registration driven by the host loop");
        println!("registration service: {}", service.base_url());
        println!();
        let mut nfc = phone_with_card()?;
        let http = HttpClient::new(&service.base_url())?;
        let pin = Zeroizing::new(TYPED_PIN.to_owned());
        let run = register_from_phone(app_machine(), &mut nfc, &http, pin).await?;
        for line in &run.log {
            println!("{line}");
        }
        let t = run.traffic;
        println!();
        println!("outcome: {}", run.outcome.message("en"));
        println!("         {}", run.outcome.message("ja"));
        println!(
            "NFC: {} APDUs, {} bytes sent, {} bytes received; longest command {} B (limit {}), longest response {} B",
            t.apdus,
            t.bytes_sent,
            t.bytes_received,
            t.longest_command,
            SHORT_APDU_MAX,
            t.longest_response
        );
        println!("HTTP: {} requests", t.http_requests);
        println!(
            "PIN asked {} time(s); registrations stored at the service: {}",
            run.tries_shown.len(),
            service.registration_count().await?
        );
        service.stop().await;
        Ok(())
    })
}
