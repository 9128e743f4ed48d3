//! Host CPU per operation, measured in this process: certificate parse, chain check, CMS
//! build and each step of the registration machine. Each figure is the median of many timed
//! runs on one thread (so wall time is the thread's CPU time, the machine otherwise idle).

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use mynacard_cert::x509_cert::der::DateTime;
use mynacard_cert::{JpkiCertificate, TrustPolicy, verify_chain};
use mynacard_registration::machine::{Action, HttpResponse};
use mynacard_registration::messages::{ConsentResponse, RegistrationStatus};
use mynacard_registration::{
    Challenge, FlowConfig, Machine, Method, Operation, Outcome, RegistrationResult, Sha256Digest,
    TerminalKind, UtcTime, V1, consent,
};
use mynacard_sign::SoftwareSigner;
use mynacard_sign::cms::{CmsOptions, sign_cms};
use mynacard_sim::engine::Card;
use mynacard_sim::image::CardImage;
use mynacard_sim::pki::TestPki;

/// Why a host measurement could not be made.
#[derive(Debug, thiserror::Error)]
#[error("host CPU, {what}: {reason}")]
pub struct HostError {
    /// The operation.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> HostError {
    move |e| HostError {
        what,
        reason: e.to_string(),
    }
}

/// One measured operation.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOp {
    /// What was measured (the report's row).
    pub name: String,
    /// Median time, µs.
    pub median_us: f64,
    /// Timed runs.
    pub runs: usize,
}

/// The median of `samples` in µs.
pub fn median_us(samples: &mut [Duration]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let mid = samples.len() / 2;
    let m = if samples.len().is_multiple_of(2) {
        (samples[mid - 1] + samples[mid]) / 2
    } else {
        samples[mid]
    };
    m.as_secs_f64() * 1e6
}

fn time<T>(name: &str, runs: usize, mut f: impl FnMut() -> T) -> HostOp {
    // One unmeasured run warms caches and lazy state.
    black_box(f());
    let mut samples: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .collect();
    HostOp {
        name: name.to_owned(),
        median_us: median_us(&mut samples),
        runs,
    }
}

/// The simulated card every host operation uses.
const PROFILE: &str = "adult";

/// Measures every host operation, `runs` timed runs each.
///
/// # Errors
/// [`HostError`] when the simulated card's material does not set up.
pub fn measure(runs: usize) -> Result<Vec<HostOp>, HostError> {
    let image = CardImage::from_profile_name(PROFILE).map_err(err("card image"))?;
    let pki = TestPki::shared().map_err(err("test PKI"))?;
    let roots = pki
        .root_ders()
        .into_iter()
        .map(JpkiCertificate::from_der)
        .collect::<Result<Vec<_>, _>>()
        .map_err(err("test roots"))?;
    let policy = TrustPolicy::production()
        .allow_test_hierarchy(roots)
        .map_err(err("trust policy"))?;
    let der = image.auth.cert_der.clone();
    let cert = JpkiCertificate::from_der(&der).map_err(err("auth certificate"))?;
    // The built-in profiles' reference date, when every certificate of theirs is valid.
    let at: SystemTime = DateTime::new(2026, 6, 1, 0, 0, 0)
        .map_err(err("date"))?
        .to_system_time();
    verify_chain(&cert, &policy, at).map_err(err("chain"))?;

    let mut ops = vec![
        time("certificate parse (auth certificate DER)", runs, || {
            JpkiCertificate::from_der(&der).is_ok()
        }),
        time(
            "chain check to the simulator's roots (one RSA-2048 verification)",
            runs,
            || verify_chain(&cert, &policy, at).is_ok(),
        ),
    ];

    let sign = image
        .sign
        .as_ref()
        .ok_or_else(|| err("sign key")("the profile has none"))?;
    let sign_cert = JpkiCertificate::from_der(&sign.cert_der).map_err(err("sign certificate"))?;
    let signer = SoftwareSigner::new(sign.key.clone(), sign_cert).map_err(err("signer"))?;
    let options = CmsOptions::default();
    let content = [0x5Au8; 1024];
    pollster::block_on(sign_cms(&content, &signer, &options)).map_err(err("CMS"))?;
    ops.push(time(
        "CMS build, 1 KiB attached (software RSA-2048 signature in place of the card's)",
        runs,
        || pollster::block_on(sign_cms(&content, &signer, &options)).is_ok(),
    ));

    ops.extend(machine_steps(&image, runs)?);
    Ok(ops)
}

/// The service's three answers of a PIN registration (consent document, challenge, result),
/// built from the protocol's own types: what a flow measured without HTTP or a database is fed.
#[derive(Debug, Clone)]
pub struct ServiceAnswers {
    consent: Vec<u8>,
    challenge: Vec<u8>,
    result: Vec<u8>,
}

impl ServiceAnswers {
    /// Builds the answers, valid for two minutes from now.
    ///
    /// # Errors
    /// [`HostError`] when one does not serialize.
    pub fn new() -> Result<ServiceAnswers, HostError> {
        let document = consent::current();
        let reference = document.reference().map_err(err("consent"))?;
        let now = UtcTime::now();
        let consent = serde_json::to_vec(&ConsentResponse {
            v: V1,
            consent: reference.clone(),
            document,
        })
        .map_err(err("consent JSON"))?;
        let challenge = serde_json::to_vec(&Challenge {
            v: V1,
            session_id: "perf-session".to_owned(),
            op: Operation::RegisterInsuranceUse,
            nonce: Sha256Digest::of(b"perf nonce"),
            issued_at: now,
            expires_at: UtcTime::from_unix(now.unix() + 120),
            consent: reference.clone(),
            accepted_methods: vec![Method::PinSignature],
            accepted_roots: Vec::new(),
        })
        .map_err(err("challenge JSON"))?;
        let result = serde_json::to_vec(&RegistrationResult {
            v: V1,
            session_id: "perf-session".to_owned(),
            status: RegistrationStatus::Registered,
            registration_id: "perf-registration".to_owned(),
            insurer_name: None,
            consent_version: reference.version,
            registered_at: now,
        })
        .map_err(err("result JSON"))?;
        Ok(ServiceAnswers {
            consent,
            challenge,
            result,
        })
    }

    /// The answer to the machine's request after `requests_so_far` earlier ones.
    pub fn answer(&self, requests_so_far: u32) -> HttpResponse {
        let (status, body) = match requests_so_far {
            0 => (200, &self.consent),
            1 => (201, &self.challenge),
            _ => (200, &self.result),
        };
        HttpResponse {
            status,
            retry_after: None,
            body: body.clone(),
        }
    }
}

/// One PIN registration (app, extended length), each machine call timed alone; the card's
/// own processing is outside the timings. Returns the step names and their times.
fn one_registration(
    image: &CardImage,
    answers: &ServiceAnswers,
) -> Result<Vec<(String, Duration)>, HostError> {
    let mut card = Card::new(image.clone());
    // The chunk a driver picks for an extended-length link, as in the counted flows.
    let chunk = u32::try_from(image.link.max_response_data.min(65_536)).unwrap_or(256);
    let config = FlowConfig::new("app-0001", TerminalKind::App).with_read_chunk(chunk);
    let start = Instant::now();
    let mut machine = Machine::register_with_pin(config);
    let mut steps = vec![("machine step: start".to_owned(), start.elapsed())];
    let mut requests = 0;
    let mut apdus = 0;
    let bad = |e: mynacard_registration::MachineError| err("machine")(e);
    loop {
        let action = machine.next_action();
        let start;
        let name = match action {
            Action::SendCard(command) => {
                let response = card.process(command.bytes.as_slice());
                apdus += 1;
                start = Instant::now();
                machine.feed_card_response(&response).map_err(bad)?;
                format!("card response {apdus}")
            }
            Action::ShowConsent(_) => {
                start = Instant::now();
                machine.feed_consent(true).map_err(bad)?;
                "consent agreed".to_owned()
            }
            Action::AskPin { .. } => {
                let pin =
                    crate::flows::secret(PROFILE, image.auth_pin.as_ref()).map_err(err("PIN"))?;
                start = Instant::now();
                machine.feed_pin(pin).map_err(bad)?;
                "PIN entered".to_owned()
            }
            Action::SendHttp(_) => {
                let name = match requests {
                    0 => "consent document received",
                    1 => "challenge received",
                    _ => "result received (proof built before)",
                };
                let response = answers.answer(requests);
                requests += 1;
                start = Instant::now();
                machine.feed_http_response(response).map_err(bad)?;
                name.to_owned()
            }
            Action::Done(Outcome::Registered { .. }) => return Ok(steps),
            other => return Err(err("machine")(format!("did not register: {other:?}"))),
        };
        // The next action is computed in `next_action`: part of the step.
        black_box(machine.next_action());
        steps.push((format!("machine step: {name}"), start.elapsed()));
    }
}

fn machine_steps(image: &CardImage, runs: usize) -> Result<Vec<HostOp>, HostError> {
    let answers = ServiceAnswers::new()?;
    let first = one_registration(image, &answers)?;
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); first.len()];
    for _ in 0..runs {
        let run = one_registration(image, &answers)?;
        for (i, (_, d)) in run.into_iter().enumerate() {
            if let Some(s) = samples.get_mut(i) {
                s.push(d);
            }
        }
    }
    Ok(first
        .into_iter()
        .zip(samples)
        .map(|((name, _), mut s)| HostOp {
            name: format!("{name} (PIN registration)"),
            median_us: median_us(&mut s),
            runs,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        let ms = Duration::from_millis;
        assert_eq!(median_us(&mut [ms(3), ms(1), ms(2)]), 2000.0);
        assert_eq!(median_us(&mut [ms(4), ms(1), ms(2), ms(3)]), 2500.0);
        assert_eq!(median_us(&mut []), 0.0);
    }
}
