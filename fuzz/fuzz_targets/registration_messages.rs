//! Protocol messages from arbitrary bytes (what a service receives and a client is answered):
//! no panic; whatever parses canonicalises (RFC 8785) and parses back to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_protocol::messages::{
    Challenge, Proof, RegistrationStatusDocument, StartSession,
};
use mynacard_protocol::{ErrorBody, jcs};

fuzz_target!(|data: &[u8]| {
    if let Ok(proof) = serde_json::from_slice::<Proof>(data) {
        let canonical = jcs::to_vec(&proof).expect("a parsed proof canonicalises");
        let again: Proof = serde_json::from_slice(&canonical).expect("canonical form parses");
        assert_eq!(again, proof);
        let _ = proof.intent().signed_digest_info();
    }
    let _ = serde_json::from_slice::<Challenge>(data);
    let _ = serde_json::from_slice::<StartSession>(data);
    let _ = serde_json::from_slice::<ErrorBody>(data);
    if let Ok(status) = serde_json::from_slice::<RegistrationStatusDocument>(data) {
        let canonical = jcs::to_vec(&status).expect("a parsed status canonicalises");
        let again: RegistrationStatusDocument =
            serde_json::from_slice(&canonical).expect("canonical form parses");
        assert_eq!(again, status);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jcs::canonicalize_text(text);
        let _ = mynacard_protocol::UtcTime::parse(text);
        let _ = mynacard_protocol::PollToken::from_bearer(text);
    }
});
