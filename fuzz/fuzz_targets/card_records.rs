//! The card layer's parsers of card bytes: token information, certificate availability, the
//! text AP attributes and integrity record, the card-face record, card-verifiable certificates,
//! the common AP identity record, card public keys, the age record, and CVC trust decisions
//! (EF and MF forms, the card-level chain). None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_card::common::CardIdentity;
use mynacard_card::jpki::{CertificateAvailability, TokenInfo};
use mynacard_card::text::{Attributes, IntegrityRecord};
use mynacard_card::cvc::{CvcScope, CvcTrust};
use mynacard_card::visual::{AgeRecord, CardFace, SignedFace};
use mynacard_card::{CardPublicKey, CvCertificate};

fuzz_target!(|data: &[u8]| {
    let _ = TokenInfo::parse(data);
    let _ = CertificateAvailability::parse(data);
    let _ = Attributes::parse(data);
    let _ = IntegrityRecord::parse(data);
    let _ = CardFace::parse(data);
    let _ = SignedFace::parse(data);
    let _ = AgeRecord::parse(data);
    let trust = CvcTrust::production().allow_test_hierarchy();
    let ef = CvCertificate::parse(data);
    let mf = CvCertificate::parse_contents(data);
    if let Ok(cvc) = &ef {
        let _ = trust.verify(cvc, CvcScope::Visual);
    }
    if let Ok(upper) = &mf {
        let _ = trust.verify_card_chain(upper, ef.as_ref().ok());
    }
    let _ = CardIdentity::parse(data);
    let _ = CardPublicKey::from_card_objects(data);
    let _ = CardPublicKey::from_certificate(data);
});
