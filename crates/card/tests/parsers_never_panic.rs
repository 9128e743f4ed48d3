//! Card bytes are untrusted: every parser and the session's read path take arbitrary input
//! without panicking.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_card::common::CardIdentity;
use mynacard_card::jpki::{CertificateAvailability, PublicCertificate, TokenInfo};
use mynacard_card::text::{Attributes, IntegrityRecord};
use mynacard_card::visual::CardFace;
use mynacard_card::{AttemptPolicy, CardPublicKey, CvCertificate, HashAlgorithm, Pin, Session};
use mynacard_transport::{Capabilities, Interface, MockCardChannel};
use proptest::prelude::*;

proptest! {
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = TokenInfo::parse(&bytes);
        let _ = CertificateAvailability::parse(&bytes);
        let _ = Attributes::parse(&bytes);
        let _ = IntegrityRecord::parse(&bytes);
        let _ = CardFace::parse(&bytes);
        let _ = CvCertificate::parse(&bytes);
        let _ = CardIdentity::parse(&bytes);
        let _ = CardPublicKey::from_card_objects(&bytes);
        let _ = CardPublicKey::from_certificate(&bytes);
    }

    #[test]
    fn records_with_a_valid_header_never_panic(tag in prop_oneof![Just(0xFF20u32), Just(0xFF30), Just(0x7F21)],
                                               body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let file = mynacard_apdu::tlv::ber::to_vec(tag, &body).unwrap();
        let _ = Attributes::parse(&file);
        let _ = IntegrityRecord::parse(&file);
        let _ = CardFace::parse(&file);
        let _ = CvCertificate::parse(&file);
    }

    /// A card answering arbitrary bytes to everything: the whole registration flow returns an
    /// error or a checked result, never a panic, and never sends a PIN twice.
    #[test]
    fn the_session_survives_any_card(answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..12),
                                      extended in any::<bool>()) {
        let caps = if extended {
            Capabilities::extended(Interface::Contact, vec![])
        } else {
            Capabilities::short(Interface::Contactless, vec![])
        };
        let mut mock = MockCardChannel::new();
        mock.expect_capabilities().return_const(caps);
        mock.expect_was_reset().return_const(false);
        let verifies = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&verifies);
        let mut n = 0usize;
        mock.expect_transmit().returning(move |cmd| {
            if cmd[1] == 0x20 && cmd.len() > 5 {
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let mut a = answers[n % answers.len()].clone();
            n += 1;
            if a.len() < 2 {
                a.extend_from_slice(&[0x90, 0x00]);
            }
            Ok(a)
        });
        let mut session = Session::new(mock);
        let _ = pollster::block_on(async {
            let mut ap = session.jpki().await?;
            let _ = ap.token_info().await;
            let _ = ap.read_certificate(PublicCertificate::Auth).await;
            let mut v = ap.verify_auth(&Pin::new("1234").unwrap(), AttemptPolicy::default()).await?;
            v.sign(HashAlgorithm::Sha256, b"x").await
        });
        prop_assert!(verifies.load(std::sync::atomic::Ordering::SeqCst) <= 1);
    }
}
