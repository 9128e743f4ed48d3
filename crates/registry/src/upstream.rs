//! The two upstreams a registration needs, behind traits: identity (the J-LIS role) and
//! insurance (the fee-fund role), with implementations seeded from a fixture file.
//!
//! A real deployment puts network clients behind these traits; the service treats every call as
//! slow and fallible and maps failures to `E_UPSTREAM_JLIS` / `E_UPSTREAM_SSK`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::seed::Seed;
use crate::store::CardKey;

/// An upstream could not answer (network, timeout, maintenance on its side).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream is unavailable.
    #[error("upstream unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// The service's own code for a person, from the identity upstream. Never a My Number or a
/// resident code: those stay inside the identity backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LinkageCode(pub String);

/// What the identity upstream says about one certificate serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonLookup {
    /// The serial belongs to this person.
    Found(LinkageCode),
    /// No person is known for this serial.
    NotFound,
    /// First registration is blocked for this person (protection order).
    Restricted,
}

/// What kind of holder an authentication certificate lives in, as the identity upstream's link
/// information tells it (J-LIS links a smartphone certificate to the card's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CertificateForm {
    /// The My Number Card itself.
    #[default]
    Card,
    /// A smartphone certificate (スマホ用電子証明書: Android secure element or iPhone). It gets
    /// no grace period after expiry.
    Smartphone,
}

/// The identity upstream (J-LIS role).
#[async_trait]
pub trait IdentityProvider: Send + Sync {
    /// Resolves a certificate serial to the person's linkage code.
    async fn resolve(&self, card: &CardKey) -> Result<PersonLookup, UpstreamError>;

    /// Earlier authentication certificates of the same person (old↔new serial links after
    /// renewal or reissue), newest first. Empty when there are none or the serial is unknown.
    async fn previous_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError>;

    /// Certificates of the same person that are valid beside this one without replacing it
    /// (the card's certificate and a smartphone certificate linked to it), newest first.
    async fn linked_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError> {
        let _ = card;
        Ok(Vec::new())
    }

    /// Whether the certificate is the card's or a smartphone's. The service asks only about an
    /// expired certificate at the point of use, where the two are treated differently; an
    /// unknown serial is [`CertificateForm::Card`].
    async fn certificate_form(&self, card: &CardKey) -> Result<CertificateForm, UpstreamError>;
}

/// One insured-person record (the fee-fund role). Personal data: returned at the point of use,
/// never stored by the service and never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct InsuranceRecord {
    /// 保険者番号: 8 digits (6-digit national health insurance numbers are padded).
    pub insurer_number: String,
    /// 記号.
    pub symbol: String,
    /// 番号.
    pub number: String,
    /// 枝番: two digits.
    pub branch: String,
    /// 保険者名.
    pub insurer_name: String,
}

impl core::fmt::Debug for InsuranceRecord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InsuranceRecord")
            .field("insurer_name", &self.insurer_name)
            .finish_non_exhaustive()
    }
}

/// What the insurance upstream says about a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsuranceLookup {
    /// Exactly one record.
    Found(InsuranceRecord),
    /// The insurer has not (yet) registered the person.
    NoRecord,
    /// More than one record matched; staff must resolve it.
    Multiple,
}

/// The insurance upstream (fee-fund role).
#[async_trait]
pub trait InsuranceProvider: Send + Sync {
    /// The person's insurance record.
    async fn lookup(&self, person: &LinkageCode) -> Result<InsuranceLookup, UpstreamError>;
}

/// Identity upstream answering from the seed file.
///
/// Each seed entry is one chain of certificates, oldest first: a later one replaces the earlier
/// (reissue, renewal). Entries that share a linkage code are chains of the same person that
/// coexist (the card's and a smartphone's certificates).
#[derive(Debug, Clone, Default)]
pub struct SeededIdentity {
    // card → (person, restricted, index of its chain)
    by_card: HashMap<CardKey, (LinkageCode, bool, usize)>,
    chains: Vec<(LinkageCode, Vec<CardKey>, CertificateForm)>,
}

impl SeededIdentity {
    /// Builds the lookup tables from the seed.
    pub fn from_seed(seed: &Seed) -> Self {
        let mut by_card = HashMap::new();
        let mut chains = Vec::new();
        for person in &seed.persons {
            let code = LinkageCode(person.linkage_code.clone());
            let mut cards = Vec::with_capacity(person.certificates.len());
            for cert in &person.certificates {
                let key = CardKey {
                    root_id: cert.root.clone(),
                    serial: normalise_serial(&cert.serial),
                };
                by_card.insert(key.clone(), (code.clone(), person.restricted, chains.len()));
                cards.push(key);
            }
            chains.push((code, cards, person.form));
        }
        SeededIdentity { by_card, chains }
    }
}

#[async_trait]
impl IdentityProvider for SeededIdentity {
    async fn resolve(&self, card: &CardKey) -> Result<PersonLookup, UpstreamError> {
        Ok(match self.by_card.get(card) {
            Some((_, true, _)) => PersonLookup::Restricted,
            Some((code, false, _)) => PersonLookup::Found(code.clone()),
            None => PersonLookup::NotFound,
        })
    }

    async fn previous_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError> {
        let Some((_, _, chain)) = self.by_card.get(card) else {
            return Ok(Vec::new());
        };
        let Some((_, cards, _)) = self.chains.get(*chain) else {
            return Ok(Vec::new());
        };
        let position = cards.iter().position(|c| c == card).unwrap_or(0);
        Ok(cards[..position].iter().rev().cloned().collect())
    }

    async fn linked_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError> {
        let Some((code, _, chain)) = self.by_card.get(card) else {
            return Ok(Vec::new());
        };
        Ok(self
            .chains
            .iter()
            .enumerate()
            .filter(|(i, (other, ..))| i != chain && other == code)
            .flat_map(|(_, (_, cards, _))| cards.iter().rev().cloned())
            .collect())
    }

    async fn certificate_form(&self, card: &CardKey) -> Result<CertificateForm, UpstreamError> {
        Ok(self
            .by_card
            .get(card)
            .and_then(|(_, _, chain)| self.chains.get(*chain))
            .map_or(CertificateForm::Card, |(_, _, form)| *form))
    }
}

/// Insurance upstream answering from the seed file.
#[derive(Debug, Clone, Default)]
pub struct SeededInsurance {
    records: HashMap<LinkageCode, Vec<InsuranceRecord>>,
}

impl SeededInsurance {
    /// Builds the lookup table from the seed.
    pub fn from_seed(seed: &Seed) -> Self {
        let mut records: HashMap<LinkageCode, Vec<InsuranceRecord>> = HashMap::new();
        for p in &seed.persons {
            // A person may appear in several entries (one per certificate chain); their records
            // add up.
            records
                .entry(LinkageCode(p.linkage_code.clone()))
                .or_default()
                .extend(p.insurance.iter().map(|r| InsuranceRecord {
                    insurer_number: r.insurer_number.clone(),
                    symbol: r.symbol.clone(),
                    number: r.number.clone(),
                    branch: r.branch.clone(),
                    insurer_name: r.insurer_name.clone(),
                }));
        }
        SeededInsurance { records }
    }
}

#[async_trait]
impl InsuranceProvider for SeededInsurance {
    async fn lookup(&self, person: &LinkageCode) -> Result<InsuranceLookup, UpstreamError> {
        Ok(match self.records.get(person).map(Vec::as_slice) {
            None | Some([]) => InsuranceLookup::NoRecord,
            Some([one]) => InsuranceLookup::Found(one.clone()),
            Some(_) => InsuranceLookup::Multiple,
        })
    }
}

/// How a [`UpstreamSwitch`] lets calls through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamMode {
    /// Calls reach the upstream.
    Up,
    /// Every call fails at once as unavailable.
    Down,
    /// Every call waits [`UpstreamSwitch::SLOW`] before it reaches the upstream (the service's
    /// upstream timeout cuts it short).
    Slow,
}

/// A switch in front of an upstream, for tests and demonstrations: up, down or slow, turned
/// while the service runs, and a count of the calls that reached the upstream. Clones share the
/// switch.
#[derive(Debug, Clone, Default)]
pub struct UpstreamSwitch {
    mode: Arc<AtomicU8>,
    reached: Arc<AtomicU64>,
}

impl UpstreamSwitch {
    /// How long a call waits in [`UpstreamMode::Slow`].
    pub const SLOW: Duration = Duration::from_secs(3600);

    /// A switch in `mode`.
    pub fn new(mode: UpstreamMode) -> Self {
        let switch = UpstreamSwitch::default();
        switch.set(mode);
        switch
    }

    /// Turns the switch.
    pub fn set(&self, mode: UpstreamMode) {
        let value = match mode {
            UpstreamMode::Up => 0,
            UpstreamMode::Down => 1,
            UpstreamMode::Slow => 2,
        };
        self.mode.store(value, Ordering::SeqCst);
    }

    /// The current mode.
    pub fn mode(&self) -> UpstreamMode {
        match self.mode.load(Ordering::SeqCst) {
            1 => UpstreamMode::Down,
            2 => UpstreamMode::Slow,
            _ => UpstreamMode::Up,
        }
    }

    /// How many calls reached the upstream.
    pub fn reached(&self) -> u64 {
        self.reached.load(Ordering::SeqCst)
    }

    async fn pass(&self) -> Result<(), UpstreamError> {
        match self.mode() {
            UpstreamMode::Up => {}
            UpstreamMode::Down => return Err(UpstreamError::Unavailable(Box::new(SwitchedOff))),
            UpstreamMode::Slow => {
                tokio::time::sleep(Self::SLOW).await;
                // Still switched? The call goes through only if the switch says so now.
                if self.mode() == UpstreamMode::Down {
                    return Err(UpstreamError::Unavailable(Box::new(SwitchedOff)));
                }
            }
        }
        self.reached.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// The error of a switched-off upstream.
#[derive(Debug, thiserror::Error)]
#[error("upstream switched off")]
struct SwitchedOff;

/// An identity upstream behind an [`UpstreamSwitch`].
pub struct SwitchedIdentity {
    inner: Arc<dyn IdentityProvider>,
    switch: UpstreamSwitch,
}

impl SwitchedIdentity {
    /// `inner` behind `switch`.
    pub fn new(inner: Arc<dyn IdentityProvider>, switch: UpstreamSwitch) -> Self {
        SwitchedIdentity { inner, switch }
    }
}

#[async_trait]
impl IdentityProvider for SwitchedIdentity {
    async fn resolve(&self, card: &CardKey) -> Result<PersonLookup, UpstreamError> {
        self.switch.pass().await?;
        self.inner.resolve(card).await
    }

    async fn previous_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError> {
        self.switch.pass().await?;
        self.inner.previous_certificates(card).await
    }

    async fn linked_certificates(&self, card: &CardKey) -> Result<Vec<CardKey>, UpstreamError> {
        self.switch.pass().await?;
        self.inner.linked_certificates(card).await
    }

    async fn certificate_form(&self, card: &CardKey) -> Result<CertificateForm, UpstreamError> {
        self.switch.pass().await?;
        self.inner.certificate_form(card).await
    }
}

/// An insurance upstream behind an [`UpstreamSwitch`].
pub struct SwitchedInsurance {
    inner: Arc<dyn InsuranceProvider>,
    switch: UpstreamSwitch,
}

impl SwitchedInsurance {
    /// `inner` behind `switch`.
    pub fn new(inner: Arc<dyn InsuranceProvider>, switch: UpstreamSwitch) -> Self {
        SwitchedInsurance { inner, switch }
    }
}

#[async_trait]
impl InsuranceProvider for SwitchedInsurance {
    async fn lookup(&self, person: &LinkageCode) -> Result<InsuranceLookup, UpstreamError> {
        self.switch.pass().await?;
        self.inner.lookup(person).await
    }
}

/// Lowercase hex without leading zero bytes: one spelling per serial, whatever the source wrote.
pub fn normalise_serial(text: &str) -> String {
    let hex: String = text
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    let trimmed = hex.trim_start_matches('0');
    if trimmed.is_empty() {
        "0".to_owned()
    } else if trimmed.len() % 2 == 1 {
        format!("0{trimmed}")
    } else {
        trimmed.to_owned()
    }
}

/// The serial of a DER INTEGER body (big-endian, possibly with a sign byte), normalised.
pub fn serial_from_bytes(bytes: &[u8]) -> String {
    normalise_serial(&hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(serial: &str) -> CardKey {
        CardKey {
            root_id: "r".into(),
            serial: serial.into(),
        }
    }

    #[tokio::test]
    async fn seeded_identity_tells_replaced_from_linked_certificates() {
        let seed = Seed::parse(
            r#"
            [[person]]
            linkage_code = "P"
            certificates = [{ root = "r", serial = "01" }, { root = "r", serial = "02" }, { root = "r", serial = "03" }]
            [[person]]
            linkage_code = "P"
            form = "smartphone"
            certificates = [{ root = "r", serial = "0a" }]
            [[person]]
            linkage_code = "Q"
            restricted = true
            certificates = [{ root = "r", serial = "0b" }]
            "#,
        )
        .unwrap();
        let id = SeededIdentity::from_seed(&seed);
        assert_eq!(
            id.resolve(&key("02")).await.unwrap(),
            PersonLookup::Found(LinkageCode("P".into()))
        );
        assert_eq!(
            id.resolve(&key("0b")).await.unwrap(),
            PersonLookup::Restricted
        );
        assert_eq!(
            id.resolve(&key("0c")).await.unwrap(),
            PersonLookup::NotFound
        );
        assert_eq!(
            id.previous_certificates(&key("03")).await.unwrap(),
            vec![key("02"), key("01")]
        );
        assert!(
            id.previous_certificates(&key("01"))
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            id.previous_certificates(&key("0a"))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            id.linked_certificates(&key("0a")).await.unwrap(),
            vec![key("03"), key("02"), key("01")]
        );
        assert_eq!(
            id.linked_certificates(&key("01")).await.unwrap(),
            vec![key("0a")]
        );
        assert_eq!(
            id.certificate_form(&key("0a")).await.unwrap(),
            CertificateForm::Smartphone
        );
        for card in ["01", "03", "0b", "0c"] {
            assert_eq!(
                id.certificate_form(&key(card)).await.unwrap(),
                CertificateForm::Card,
                "{card}"
            );
        }
    }

    #[test]
    fn serials_have_one_spelling() {
        assert_eq!(normalise_serial("00:AB:cd"), "abcd");
        assert_eq!(normalise_serial("0133C349"), "0133c349");
        assert_eq!(normalise_serial("00"), "0");
        assert_eq!(serial_from_bytes(&[0x00, 0x80, 0x01]), "8001");
        assert_eq!(serial_from_bytes(&[0x06, 0xD1]), "06d1");
    }
}
