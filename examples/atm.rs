//! A bank ATM that registers the My Number Card for health-insurance use (マイナ保険証の利用登録).
//!
//! The customer inserts the card into the ATM's contact reader, agrees to the consent on the
//! screen and types the 4-digit authentication PIN (利用者証明用電子証明書の暗証番号) on the
//! ATM's own PIN pad. Before the PIN is asked, the screen shows how many tries the card has
//! left: the card reports it without spending one. The flow ends in a typed outcome the ATM
//! turns into its screen.
//!
//! The ATM reaches the service over HTTPS with its own client certificate (mutual TLS): the
//! certificate names the terminal, so no other machine can act as this ATM, and a registration
//! it started can only be finished or polled by it.
//!
//! The PIN here is a constant (the simulated card's PIN) held in a zeroizing string, as the
//! keypad driver would hand it over. The reference service runs in this process with
//! certificates from a development PKI made on the spot; the card is the simulated `contact`
//! card. Run with `cargo run --example atm`.

use async_trait::async_trait;
use mynacard::registration::driver::{self, RunReport, Terminal};
use mynacard::registration::http::HttpClient;
use mynacard::registration::machine::ConsentPrompt;
use mynacard::registration::{FlowConfig, Machine, Outcome, TerminalKind};
use mynacard::sim::image::CardImage;
use mynacard::sim::inprocess::SimCard;
use mynacard::transport::Interface;
use mynacard_registry::dev_pki::DevPki;
use zeroize::Zeroizing;

// The service bootstrap is shared with the other examples; the workspace's tests bring their
// own copy of the same module and include this file as a module.
#[cfg(not(test))]
mod support;
use crate::support::{BoxError, ReferenceService, runtime, terminal_client};

/// This ATM's id at the service (a terminal of the built-in seed).
pub(crate) const ATM_ID: &str = "atm-0001";

/// What the customer types on the PIN pad in this demonstration.
const KEYPAD_PIN: &str = "1234";

/// The ATM's screen and PIN pad.
struct Atm {
    /// The digits typed on the PIN pad for this transaction (taken once).
    keypad: Option<Zeroizing<String>>,
    /// Print screens as they appear.
    echo: bool,
    /// Tries left shown before each PIN request.
    tries_shown: Vec<Option<u8>>,
    consent_shown: bool,
}

impl Atm {
    fn screen(&self, line: &str) {
        if self.echo {
            println!("  [screen] {line}");
        }
    }
}

#[async_trait]
impl Terminal for Atm {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        self.consent_shown = true;
        self.screen(&format!("{} ― 同意する", prompt.document.title.ja));
        true
    }

    async fn pin(&mut self, retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        self.tries_shown.push(retries_left);
        match retries_left {
            Some(n) => self.screen(&format!(
                "暗証番号（4桁）を入力してください。残り{n}回 / Enter your 4-digit PIN ({n} tries left)"
            )),
            None => self.screen("暗証番号（4桁）を入力してください / Enter your 4-digit PIN"),
        }
        let pin = self.keypad.take();
        if pin.is_some() {
            self.screen("****");
        }
        // No digits: the customer pressed 取消 (cancel).
        pin
    }
}

/// The ATM's screen for an outcome: each case the customer can act on gets its own words.
pub(crate) fn atm_screen(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Registered { insurer_name, .. } => format!(
            "登録が完了しました。保険者: {} / Registration complete.",
            insurer_name.as_deref().unwrap_or("-")
        ),
        Outcome::AlreadyRegistered { .. } => {
            "このカードは登録済みです。/ This card is already registered.".to_owned()
        }
        Outcome::WrongPin { retries_left } => format!(
            "暗証番号が違います。残り{retries_left}回 / Wrong PIN, {retries_left} tries left."
        ),
        Outcome::LastAttemptRefused => {
            "残り1回のため、このATMでは入力できません。市区町村窓口へ / \
             One try left: not used here. Please visit your municipal office."
                .to_owned()
        }
        Outcome::PinBlocked => "暗証番号がロックされています。市区町村窓口で再設定してください / \
             The PIN is locked. Reset it at your municipal office."
            .to_owned(),
        Outcome::NoAuthPin => "顔認証マイナンバーカードはATMでは登録できません / \
             Face-authentication cards register at a face-recognition kiosk."
            .to_owned(),
        Outcome::CardRemoved {
            attempt_may_have_been_counted,
        } => {
            if *attempt_may_have_been_counted {
                "カードが抜かれました。暗証番号の入力が1回数えられた可能性があります / \
                 The card was removed; one PIN try may have been counted."
                    .to_owned()
            } else {
                "カードが抜かれました / The card was removed.".to_owned()
            }
        }
        Outcome::ServiceBusy { retry_after } | Outcome::Maintenance { retry_after } => format!(
            "ただいま混み合っています（{}秒後に再度お試しください）/ Busy, try again later.",
            retry_after.unwrap_or(60)
        ),
        other => other.message("ja"),
    }
}

/// One card insertion at the ATM.
pub(crate) struct AtmTransaction {
    /// How the registration ended and what it cost.
    pub(crate) report: RunReport,
    /// Tries left shown before each PIN request.
    pub(crate) tries_shown: Vec<Option<u8>>,
    /// Whether the consent was shown.
    pub(crate) consent_shown: bool,
    /// Whether the reader reported a contact link.
    pub(crate) contact: bool,
}

/// The simulated card in the ATM's contact reader.
pub(crate) fn card_in_contact_reader() -> Result<SimCard, BoxError> {
    Ok(SimCard::from_image(CardImage::from_profile_name(
        "contact",
    )?))
}

/// Runs one PIN registration with `keypad` as the typed PIN, sending through `client`. `echo`
/// prints the screens as they appear.
pub(crate) async fn atm_registration(
    card: &SimCard,
    keypad: Zeroizing<String>,
    client: &HttpClient,
    echo: bool,
) -> Result<AtmTransaction, BoxError> {
    let mut atm = Atm {
        keypad: Some(keypad),
        echo,
        tries_shown: Vec::new(),
        consent_shown: false,
    };
    let mut channel = card.channel();
    let contact = card.capabilities().interface == Interface::Contact;
    // The ATM never spends a customer's last try: with one left it sends them to the office.
    let config = FlowConfig::new(ATM_ID, TerminalKind::Atm).with_allow_last_attempt(false);
    let report = driver::run(
        Machine::register_with_pin(config),
        &mut channel,
        client,
        &mut atm,
    )
    .await?;
    Ok(AtmTransaction {
        report,
        tries_shown: atm.tries_shown,
        consent_shown: atm.consent_shown,
        contact,
    })
}

fn main() -> Result<(), BoxError> {
    runtime()?.block_on(async {
        let pki = DevPki::generate(&["127.0.0.1"], &[ATM_ID])?;
        let service = ReferenceService::start_tls(&pki).await?;
        let client = terminal_client(&service.base_url(), &pki, ATM_ID)?;
        println!("ATM {ATM_ID}: health-insurance-use registration");
        println!(
            "registration service: {} (TLS 1.3, this ATM's client certificate)",
            service.base_url()
        );
        let card = card_in_contact_reader()?;
        for visit in ["first visit", "the same card again"] {
            println!();
            println!("card inserted ({visit})");
            let keypad = Zeroizing::new(KEYPAD_PIN.to_owned());
            let t = atm_registration(&card, keypad, &client, true).await?;
            println!(
                "  link: {}; card: {} APDUs, {} bytes sent, {} bytes received; service: {} requests",
                if t.contact { "contact" } else { "contactless" },
                t.report.apdus,
                t.report.bytes_sent,
                t.report.bytes_received,
                t.report.http_requests
            );
            let asked: Vec<String> = t
                .tries_shown
                .iter()
                .map(|n| n.map_or_else(|| "?".to_owned(), |n| n.to_string()))
                .collect();
            println!(
                "  consent shown: {}; PIN asked {} time(s), tries left shown first: [{}]",
                if t.consent_shown { "yes" } else { "no" },
                t.tries_shown.len(),
                asked.join(", ")
            );
            println!("  [screen] {}", atm_screen(&t.report.outcome));
            println!("card returned");
        }
        println!();
        println!(
            "registrations stored at the service: {}",
            service.registration_count().await?
        );
        service.stop().await;
        Ok(())
    })
}
