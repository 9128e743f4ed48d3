//! End-to-end support: the service configured for the simulated cards, a PIN terminal, a
//! recording HTTP client, and the service as a child process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use mynacard_registration::UtcTime;
use mynacard_registration::driver::{self, RunReport, ServiceClient, Terminal};
use mynacard_registration::http::HttpClient;
use mynacard_registration::machine::{
    ConsentPrompt, FlowConfig, HttpFailure, HttpRequest, HttpResponse, Machine,
};
use mynacard_registration::messages::TerminalKind;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::SimCard;
use zeroize::Zeroizing;

pub(crate) const ATM: &str = "atm-0001";
pub(crate) const APP: &str = "app-0001";
pub(crate) const CLINIC: &str = "clinic-0002";

/// The service for the simulated cards: the test kit's configuration.
pub(crate) use mynacard_registry::test_kit::config;

/// A date at 00:00 UTC plus `hours`.
pub(crate) fn at(year: i64, month: u8, day: u8, hours: u8) -> SystemTime {
    let t = UtcTime::from_civil(year, month, day, hours, 0, 0).expect("date");
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.unix()).expect("after 1970"))
}

/// A simulated card of a built-in profile.
pub(crate) fn card(profile: &str) -> SimCard {
    SimCard::from_image(CardImage::from_profile_name(profile).expect("profile"))
}

/// A terminal whose person agrees and types `pin`.
pub(crate) struct PinTerminal(pub(crate) &'static str);

#[async_trait]
impl Terminal for PinTerminal {
    async fn consent(&mut self, prompt: &ConsentPrompt) -> bool {
        let _ = prompt;
        true
    }

    async fn pin(&mut self, _retries_left: Option<u8>) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(self.0.to_owned()))
    }
}

/// A client whose base URL can change (a restarted service) and that records what it sent.
pub(crate) struct Client {
    base: Mutex<String>,
    sent: Mutex<Vec<HttpRequest>>,
    /// Called after a failed send with the number of failures so far.
    on_failure: Box<dyn Fn(u32) -> Option<String> + Send + Sync>,
    failures: Mutex<u32>,
}

impl Client {
    pub(crate) fn new(base: &str) -> Self {
        Client {
            base: Mutex::new(base.to_owned()),
            sent: Mutex::new(Vec::new()),
            on_failure: Box::new(|_| None),
            failures: Mutex::new(0),
        }
    }

    /// On a failed exchange, `hook` may return a new base URL (the service was restarted).
    pub(crate) fn on_failure(
        mut self,
        hook: impl Fn(u32) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.on_failure = Box::new(hook);
        self
    }

    pub(crate) fn requests(&self) -> Vec<HttpRequest> {
        self.sent.lock().expect("lock").clone()
    }

    /// The body of the last proof sent.
    pub(crate) fn last_proof(&self) -> (String, Vec<u8>) {
        self.requests()
            .into_iter()
            .rev()
            .find(|r| r.path.ends_with("/proof"))
            .map(|r| (r.path, r.body.unwrap_or_default()))
            .expect("a proof was sent")
    }
}

#[async_trait]
impl ServiceClient for Client {
    async fn send(&self, request: &HttpRequest) -> Result<HttpResponse, HttpFailure> {
        self.sent.lock().expect("lock").push(request.clone());
        let base = self.base.lock().expect("lock").clone();
        let http = HttpClient::with_timeout(&base, Duration::from_secs(20)).expect("client");
        let answer = http.send(request).await;
        if answer.is_err() {
            let failures = {
                let mut f = self.failures.lock().expect("lock");
                *f += 1;
                *f
            };
            if let Some(new_base) = (self.on_failure)(failures) {
                *self.base.lock().expect("lock") = new_base;
            }
        }
        answer
    }
}

/// Runs one flow with a simulated card.
pub(crate) async fn run(
    machine: Machine,
    card: &SimCard,
    client: &Client,
    pin: &'static str,
) -> RunReport {
    let mut channel = card.channel();
    let mut terminal = PinTerminal(pin);
    driver::run(machine, &mut channel, client, &mut terminal)
        .await
        .expect("flow runs")
}

/// A flow configuration whose clock is the service's (`start` then running on).
pub(crate) fn flow(terminal: &str, kind: TerminalKind, start: SystemTime) -> FlowConfig {
    let offset = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
        - UtcTime::now().unix();
    FlowConfig::new(terminal, kind)
        .with_clock(Arc::new(move || UtcTime::now().plus(offset)))
        .with_proof_retries(6, 200)
}

/// POSTs raw bytes; returns status, `Retry-After` and body.
pub(crate) async fn post(base: &str, path: &str, body: Vec<u8>) -> (u16, Option<String>, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry_after, response.text().await.expect("body"))
}

/// The registration id of a registered, already registered or relinked outcome.
pub(crate) fn registration_id(outcome: &mynacard_registration::outcome::Outcome) -> String {
    use mynacard_registration::outcome::Outcome;
    match outcome {
        Outcome::Registered {
            registration_id, ..
        }
        | Outcome::AlreadyRegistered {
            registration_id, ..
        }
        | Outcome::RelinkedAfterReissue {
            registration_id, ..
        } => registration_id.clone(),
        other => panic!("not a registration: {other:?}"),
    }
}

/// The error code of an error body.
pub(crate) fn code(body: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(body).expect("json body");
    value["code"].as_str().unwrap_or_default().to_owned()
}

/// The `mynacard-registry` program as a child process (the test kit's).
pub(crate) use mynacard_registry::test_kit::ServiceProcess;

/// Starts the `mynacard-registry` program on `db` (listening on `listen`), with `fault` in its
/// environment, and waits for its address.
pub(crate) fn service(db: &str, listen: &str, fault: Option<&str>) -> ServiceProcess {
    service_with(db, listen, fault, &[])
}

/// As [`service`], with more command-line options.
pub(crate) fn service_with(
    db: &str,
    listen: &str,
    fault: Option<&str>,
    extra: &[&str],
) -> ServiceProcess {
    let program = Command::new(env!("CARGO_BIN_EXE_mynacard-registry"));
    ServiceProcess::start(program, db, listen, fault, extra)
}
