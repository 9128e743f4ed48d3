//! Certificates and CRLs from arbitrary bytes (DER or PEM): parsing, classification, personal
//! data, name formatting and chain verification must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_cert::{Crl, JpkiCertificate, TrustPolicy, identify_issuer, verify_chain};

fuzz_target!(|data: &[u8]| {
    if let Ok(cert) = JpkiCertificate::from_der_or_pem(data) {
        let _ = cert.subject_text();
        let _ = cert.issuer_text();
        let _ = cert.kind();
        let _ = cert.personal_data();
        let _ = cert.rsa_public_key();
        let policy = TrustPolicy::production();
        let _ = identify_issuer(&cert, &policy);
        let _ = verify_chain(&cert, &policy, std::time::SystemTime::UNIX_EPOCH);
    }
    if let Ok(crl) = Crl::from_der_or_pem(data) {
        let _ = crl.entries();
        let _ = crl.issuer_text();
    }
});
