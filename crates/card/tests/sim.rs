//! Every card operation against the simulated card, on every built-in profile where it applies.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use mynacard_apdu::StatusWord;
use mynacard_card::jpki::{JpkiAp, JpkiKey, PublicCertificate, TokenKind};
use mynacard_card::text::{Sex, TextKey};
use mynacard_card::visual::VisualKey;
use mynacard_card::{
    AttemptPolicy, CollationB, Date, Error, ExtendedLength, HashAlgorithm, Pin, PinKind, PinStatus,
    Session, SessionOptions, SignPassword, SignScheme,
};
use mynacard_sim::fault::Faults;
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_sim::state::SecretId;
use pollster::block_on;
use support::{
    MY_NUMBER, NAME, PIN, SimSession, assert_matches, card, card_with_options,
    collation_b_with_code, password, pin, remaining, rsa_operations, sim_cvc_trust,
    verifies_with_data, verify_auth_pin, verify_text_collation_a, verify_text_collation_b,
    verify_visual_collation_b, with_text_pin_verified,
};

/// Runs `body` on the JPKI AP of `session`.
fn with_jpki<R>(
    session: &mut SimSession,
    body: impl AsyncFnOnce(&mut JpkiAp<'_, SimChannel>) -> R,
) -> R {
    block_on(async {
        let mut ap = session.jpki().await.unwrap();
        body(&mut ap).await
    })
}

const ALL_PROFILES: [&str; 11] = [
    "adult",
    "under15",
    "face-auth",
    "expired-auth",
    "revoked-auth",
    "blocked-auth-pin",
    "reissued",
    "smartphone",
    "no-extended",
    "contact",
    "contactless",
];

#[test]
fn every_profile_answers_token_availability_and_pin_status() {
    for profile in ALL_PROFILES {
        let (_sim, mut session) = card(profile);
        with_jpki(&mut session, async |ap| {
            let token = ap.token_info().await.unwrap();
            let expected = if profile == "smartphone" {
                TokenKind::AndroidSe
            } else {
                TokenKind::MyNumberCard
            };
            assert_eq!(token.kind, expected, "{profile}");
            let availability = ap.availability().await.unwrap();
            assert!(availability.auth, "{profile}");
            assert_eq!(
                availability.sign,
                !matches!(profile, "under15" | "face-auth"),
                "{profile}"
            );
            let auth = ap.pin_status(JpkiKey::Auth).await.unwrap();
            let sign = ap.pin_status(JpkiKey::Sign).await.unwrap();
            match profile {
                "face-auth" => assert_eq!(auth, PinStatus::NotSet),
                "blocked-auth-pin" => assert_eq!(auth, PinStatus::Blocked),
                _ => assert_eq!(auth, PinStatus::Remaining(3), "{profile}"),
            }
            if matches!(profile, "under15" | "face-auth") {
                assert_eq!(sign, PinStatus::NotSet, "{profile}");
            } else {
                assert_eq!(sign, PinStatus::Remaining(5), "{profile}");
            }
            for which in [PublicCertificate::AuthCa, PublicCertificate::SignCa] {
                let cert = ap.read_certificate(which).await.unwrap();
                cert.public_key().unwrap();
            }
            let auth_cert = ap.read_certificate(PublicCertificate::Auth).await;
            if profile == "smartphone" {
                let err = auth_cert.unwrap_err();
                assert!(err.is_security_status_not_satisfied(), "{err:?}");
            } else {
                assert_eq!(auth_cert.unwrap().public_key().unwrap().modulus_len(), 256);
            }
        });
    }
}

#[test]
fn fresh_card_pin_counters() {
    let (_sim, mut session) = card("adult");
    block_on(async {
        let mut ap = session.jpki().await.unwrap();
        assert_eq!(
            ap.pin_status(JpkiKey::Auth).await.unwrap().retries(),
            Some(3)
        );
        assert_eq!(
            ap.pin_status(JpkiKey::Sign).await.unwrap().retries(),
            Some(5)
        );
        let mut text = session.text().await.unwrap();
        assert_eq!(
            text.pin_status(TextKey::Pin).await.unwrap(),
            PinStatus::Remaining(3)
        );
        assert_eq!(
            text.pin_status(TextKey::CollationB).await.unwrap(),
            PinStatus::Remaining(10)
        );
    });
}

#[test]
fn auth_certificate_in_two_apdus_with_extended_length() {
    let (_sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        let cert = ap.read_certificate(PublicCertificate::Auth).await.unwrap();
        assert!(
            cert.der().len() > 256,
            "the certificate needs more than one short read"
        );
        assert!(
            cert.to_pem()
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    });
    assert_eq!(
        session.stats().commands,
        2,
        "SELECT AP + READ BINARY by SFI"
    );
    assert!(session.uses_extended_length());
}

#[test]
fn pin_registration_card_side_in_five_apdus() {
    let (sim, mut session) = card("adult");
    let signature = with_jpki(&mut session, async |ap| {
        ap.read_certificate(PublicCertificate::Auth).await.unwrap();
        verify_auth_pin(ap)
            .await
            .sign(HashAlgorithm::Sha256, b"registration nonce")
            .await
            .unwrap()
    });
    assert_eq!(session.stats().commands, 5);
    assert_eq!(signature.len(), 256);
    // The card computed exactly one signature.
    assert_eq!(rsa_operations(&sim), 1);
}

#[test]
fn short_apdus_read_a_certificate_in_one_plus_ceil_size_over_256() {
    for profile in ["no-extended", "smartphone", "adult"] {
        let options = if profile == "adult" {
            SessionOptions::default().with_extended_length(ExtendedLength::Never)
        } else {
            SessionOptions::default()
        };
        let (sim, mut session) = card_with_options(profile, options);
        block_on(async {
            session.jpki().await.unwrap();
            for which in [PublicCertificate::AuthCa, PublicCertificate::SignCa] {
                let start = session.stats();
                // Already selected: no SELECT AP is sent.
                let mut ap = session.jpki().await.unwrap();
                let cert = ap.read_certificate(which).await.unwrap();
                let used = (session.stats() - start).commands;
                let bound = 1 + cert.der().len().div_ceil(256) as u64;
                assert!(
                    used <= bound,
                    "{profile}: {used} APDUs for {} bytes",
                    cert.der().len()
                );
                assert!(cert.der().len() > 512);
            }
        });
        assert!(!session.uses_extended_length(), "{profile}");
        // No command longer than a short APDU went out.
        assert!(sim.log().entries().iter().all(|e| e.command.len() <= 261));
    }
}

#[test]
fn a_card_that_refuses_extended_length_falls_back_to_short_apdus() {
    // The reader claims extended length, the card answers 6700: the session must still work.
    let mut image = CardImage::from_profile_name("adult").unwrap();
    image.link.extended_length = false;
    let sim = SimCard::from_image(image);
    let channel = ClaimsExtended(sim.channel());
    let mut session = Session::new(channel);
    block_on(async {
        let mut ap = session.jpki().await.unwrap();
        let cert = ap.read_certificate(PublicCertificate::Auth).await.unwrap();
        cert.public_key().unwrap();
        let mut v = ap
            .verify_auth(&pin(PIN), AttemptPolicy::default())
            .await
            .unwrap();
        v.sign(HashAlgorithm::Sha256, b"x").await.unwrap();
    });
    assert!(!session.uses_extended_length());
}

/// A channel that reports extended length whatever the card does.
struct ClaimsExtended(SimChannel);

#[async_trait::async_trait]
impl mynacard_transport::CardChannel for ClaimsExtended {
    async fn transmit(
        &mut self,
        command: &[u8],
    ) -> Result<Vec<u8>, mynacard_transport::TransportError> {
        self.0.transmit(command).await
    }
    fn capabilities(&self) -> mynacard_transport::Capabilities {
        let caps = self.0.capabilities();
        mynacard_transport::Capabilities::extended(caps.interface, caps.atr)
    }
    fn was_reset(&mut self) -> bool {
        self.0.was_reset()
    }
}

#[test]
fn a_wrong_pin_lowers_exactly_one_counter_by_one() {
    let (sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        let err = ap
            .verify_auth(&pin("9999"), AttemptPolicy::default())
            .await
            .unwrap_err();
        assert_matches!(
            err,
            Error::WrongPin {
                key: PinKind::JpkiAuth,
                retries_left: 2
            }
        );
        assert_eq!(err.status_word(), Some(StatusWord::RetriesRemaining(2)));
    });
    assert_eq!(remaining(&sim, SecretId::JpkiAuthPin), 2);
    for other in SecretId::ALL
        .into_iter()
        .filter(|s| *s != SecretId::JpkiAuthPin)
    {
        let fresh = CardImage::from_profile_name("adult").unwrap();
        let untouched = SimCard::from_image(fresh).with_card(|c| c.secret_status(other));
        assert_eq!(
            sim.with_card(|c| c.secret_status(other)),
            untouched,
            "{other:?}"
        );
    }
    assert_eq!(verifies_with_data(&sim), 1);
}

#[test]
fn the_last_attempt_is_refused_unless_allowed() {
    let (sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        for left in [2, 1] {
            assert_matches!(
                ap.verify_auth(&pin("0000"), AttemptPolicy::default()).await,
                Err(Error::WrongPin { retries_left, .. }) if retries_left == left
            );
        }
        assert_matches!(
            ap.verify_auth(&pin(PIN), AttemptPolicy::KeepLastAttempt)
                .await,
            Err(Error::LastAttemptRefused {
                retries_left: 1,
                ..
            })
        );
        assert_eq!(
            verifies_with_data(&sim),
            2,
            "the refused attempt sent nothing"
        );
        assert_eq!(
            ap.pin_status(JpkiKey::Auth).await.unwrap(),
            PinStatus::Remaining(1)
        );
        ap.verify_auth(&pin(PIN), AttemptPolicy::AllowLastAttempt)
            .await
            .unwrap();
        assert_eq!(
            ap.pin_status(JpkiKey::Auth).await.unwrap(),
            PinStatus::Remaining(3)
        );
    });
}

#[test]
fn a_blocked_pin_is_refused_without_sending_it() {
    let (sim, mut session) = card("blocked-auth-pin");
    with_jpki(&mut session, async |ap| {
        let err = ap
            .verify_auth(&pin(PIN), AttemptPolicy::AllowLastAttempt)
            .await
            .unwrap_err();
        assert!(err.is_blocked(), "{err:?}");
        // The signing password still works.
        let mut v = ap
            .verify_sign(&password("abc123"), AttemptPolicy::default())
            .await
            .unwrap();
        v.sign(HashAlgorithm::Sha256, b"still signs").await.unwrap();
    });
    assert_eq!(
        verifies_with_data(&sim),
        1,
        "only the signing password was sent"
    );
}

#[test]
fn missing_pins_are_reported_as_not_set() {
    let (_sim, mut session) = card("under15");
    with_jpki(&mut session, async |ap| {
        assert_matches!(
            ap.verify_sign(&password("ABC123"), AttemptPolicy::default())
                .await,
            Err(Error::PinNotSet {
                key: PinKind::JpkiSign
            })
        );
        verify_auth_pin(ap).await;
    });
    let (_sim, mut session) = card("face-auth");
    with_jpki(&mut session, async |ap| {
        assert_matches!(
            ap.verify_auth(&pin(PIN), AttemptPolicy::default()).await,
            Err(Error::PinNotSet {
                key: PinKind::JpkiAuth
            })
        );
    });
}

#[test]
fn every_signing_scheme_verifies_against_the_certificate() {
    let (sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        let mut v = verify_auth_pin(ap).await;
        let hash = HashAlgorithm::Sha256.digest(b"message");
        let info = HashAlgorithm::Sha256.digest_info(&hash).unwrap();
        for (scheme, input) in [
            (SignScheme::Pkcs1DigestInfo, info.as_slice()),
            (SignScheme::Pkcs1CardSha256Bare, b"message".as_slice()),
            (SignScheme::Pkcs1Sha256Hash, hash.as_slice()),
            (SignScheme::Pkcs1CardSha256, b"message".as_slice()),
            (SignScheme::PssSha256Hash, hash.as_slice()),
            (SignScheme::PssCardSha256, b"message".as_slice()),
        ] {
            let sig = v.sign_with_scheme(scheme, input).await.unwrap();
            assert_eq!(sig.len(), 256, "{scheme:?}");
        }
        for alg in [HashAlgorithm::Sha384, HashAlgorithm::Sha512] {
            v.sign(alg, b"message").await.unwrap();
        }
    });
    assert_eq!(rsa_operations(&sim), 8, "one computation per signature");
}

#[test]
fn signing_key_and_certificate_after_the_password() {
    let (_sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        // Lower case is upper-cased before it is sent.
        let mut v = ap
            .verify_sign(&password("abc123"), AttemptPolicy::default())
            .await
            .unwrap();
        let cert = v.read_sign_certificate().await.unwrap();
        let sig = v.sign(HashAlgorithm::Sha256, b"document").await.unwrap();
        let key = cert.public_key().unwrap();
        assert_eq!(key.modulus_len(), sig.len());
    });
}

#[test]
fn android_token_needs_the_pin_for_its_auth_certificate() {
    let (_sim, mut session) = card("smartphone");
    with_jpki(&mut session, async |ap| {
        let mut v = verify_auth_pin(ap).await;
        let cert = v.read_auth_certificate().await.unwrap();
        assert!(cert.der().len() > 256);
        v.sign(HashAlgorithm::Sha256, b"phone").await.unwrap();
    });
    let (_sim, mut session) = card("smartphone");
    block_on(async {
        // Without reading the certificate first, signing reads it itself.
        let mut ap = session.jpki().await.unwrap();
        let mut v = verify_auth_pin(&mut ap).await;
        v.sign(HashAlgorithm::Sha256, b"phone").await.unwrap();
        drop(v);
        let mut text = session.text().await.unwrap();
        assert_eq!(
            text.pin_status(TextKey::Pin).await.unwrap(),
            PinStatus::NotSet
        );
    });
}

#[test]
fn pin_and_password_change() {
    let (sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        let mut v = verify_auth_pin(ap).await;
        v.change_pin(&pin("5678")).await.unwrap();
        drop(v);
        assert_matches!(
            ap.verify_auth(&pin(PIN), AttemptPolicy::default()).await,
            Err(Error::WrongPin {
                retries_left: 2,
                ..
            })
        );
        ap.verify_auth(&pin("5678"), AttemptPolicy::default())
            .await
            .unwrap();
        let mut s = ap
            .verify_sign(&password("ABC123"), AttemptPolicy::default())
            .await
            .unwrap();
        s.change_password(&password("newpass9")).await.unwrap();
        drop(s);
        ap.verify_sign(&password("NEWPASS9"), AttemptPolicy::default())
            .await
            .unwrap();
    });
    assert_eq!(remaining(&sim, SecretId::JpkiSignPassword), 5);
}

#[test]
fn text_ap_attributes_integrity_and_my_number() {
    let (sim, mut session) = card("adult");
    with_text_pin_verified(&mut session, async |v| {
        let a = v
            .read_attributes_checked(&sim_cvc_trust())
            .await
            .unwrap()
            .into_trusted()
            .unwrap();
        assert_eq!(a.name, NAME);
        assert_eq!(a.address, "東京都清瀬市試験町一丁目２番３号");
        assert_eq!(a.birth_date, Date::new(1980, 2, 17).unwrap());
        assert_eq!(a.sex, Sex::Female);
        let n = v
            .read_my_number(&sim_cvc_trust())
            .await
            .unwrap()
            .into_trusted()
            .unwrap();
        assert_eq!(n.expose(), MY_NUMBER);
        v.change_pin(&pin("4321")).await.unwrap();
    });
    assert_eq!(remaining(&sim, SecretId::TextPin), 3);
    let (_sim, mut session) = card("adult");
    block_on(async {
        let mut text = session.text().await.unwrap();
        let mut v = verify_text_collation_b(&mut text).await;
        v.read_attributes_checked(&sim_cvc_trust())
            .await
            .unwrap()
            .into_trusted()
            .unwrap();
        let err = v.read_my_number(&sim_cvc_trust()).await.unwrap_err();
        assert!(
            err.is_security_status_not_satisfied(),
            "B does not open the My Number: {err:?}"
        );
        drop(v);
        let mut v = verify_text_collation_a(&mut text).await;
        assert!(
            v.read_attributes()
                .await
                .unwrap_err()
                .is_security_status_not_satisfied()
        );
        assert_eq!(
            v.read_my_number(&sim_cvc_trust())
                .await
                .unwrap()
                .into_trusted()
                .unwrap()
                .expose(),
            MY_NUMBER
        );
    });
}

#[test]
fn visual_ap_face_signature_and_presence() {
    let (sim, mut session) = card("adult");
    block_on(async {
        let mut visual = session.visual().await.unwrap();
        let wrong = collation_b_with_code("0000");
        assert_matches!(
            visual
                .verify_collation_b(&wrong, AttemptPolicy::default())
                .await,
            Err(Error::WrongPin {
                key: PinKind::VisualCollationB,
                retries_left: 9
            })
        );
        let mut v = verify_visual_collation_b(&mut visual).await;
        let face = v
            .read_face_checked(&sim_cvc_trust())
            .await
            .unwrap()
            .into_trusted()
            .unwrap();
        assert_eq!(face.birth_date, Date::new(1980, 2, 17).unwrap());
        assert_eq!(face.expiry, Date::new(2035, 2, 17).unwrap());
        assert_eq!(face.sex, Sex::Female);
        assert!(
            !face.photo.is_empty() && !face.name_image.is_empty() && !face.address_image.is_empty()
        );
        let proof = v
            .prove_presence(&face.card_key, b"fresh challenge")
            .await
            .unwrap();
        assert_eq!(proof.signature.len(), 256);
        drop(v);
        // No credential is needed for the presence signature.
        visual
            .prove_presence(&face.card_key, b"another")
            .await
            .unwrap();
        assert_eq!(visual.get_challenge(16).await.unwrap().len(), 16);
        assert_eq!(
            visual.pin_status(VisualKey::CollationB).await.unwrap(),
            PinStatus::Remaining(10)
        );
    });
    assert_eq!(remaining(&sim, SecretId::VisualCollationB), 10);
}

#[test]
fn common_ap_identity() {
    let (_sim, mut session) = card("adult");
    block_on(async {
        let mut common = session.common().await.unwrap();
        let id = common.read_identity().await.unwrap();
        assert_eq!(id.serial, "131000000000001");
        assert_eq!(id.municipality_code, "13221");
        assert_eq!(id.expiry, Date::new(2035, 2, 17).unwrap());
    });
}

#[test]
fn a_reset_ends_the_verified_state() {
    let (sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        ap.read_certificate(PublicCertificate::Auth).await.unwrap();
        let mut v = verify_auth_pin(ap).await;
        sim.with_card(|c| c.reset());
        let err = v.sign(HashAlgorithm::Sha256, b"x").await.unwrap_err();
        assert_matches!(err, Error::CardReset);
        assert!(err.is_retryable());
        // The handle stays dead; the application handle too.
        assert_matches!(
            v.sign(HashAlgorithm::Sha256, b"x").await,
            Err(Error::CardReset)
        );
        drop(v);
        assert_matches!(ap.pin_status(JpkiKey::Auth).await, Err(Error::CardReset));
    });
    assert_eq!(
        rsa_operations(&sim),
        0,
        "nothing was signed after the reset"
    );
    // A new handle selects again and works.
    with_jpki(&mut session, async |ap| {
        assert_eq!(
            ap.pin_status(JpkiKey::Auth).await.unwrap(),
            PinStatus::Remaining(3)
        );
    });
}

#[test]
fn a_reset_reported_by_the_transport_is_a_card_reset() {
    let (sim, mut session) = card("adult");
    with_jpki(&mut session, async |ap| {
        let mut v = verify_auth_pin(ap).await;
        sim.set_faults(Faults {
            reset_before_apdu: Some(1),
            ..Faults::none()
        });
        assert_matches!(
            v.sign(HashAlgorithm::Sha256, b"x").await,
            Err(Error::CardReset)
        );
    });
    assert_eq!(rsa_operations(&sim), 0);
}

#[test]
fn tag_loss_during_verify_may_have_counted_and_is_not_repeated() {
    let (sim, mut session) = card("contactless");
    sim.set_faults(Faults {
        tag_loss_on_verify: Some(1),
        ..Faults::none()
    });
    with_jpki(&mut session, async |ap| {
        assert_matches!(
            ap.verify_auth(&pin("9999"), AttemptPolicy::default()).await,
            Err(Error::AttemptMayHaveBeenCounted {
                key: PinKind::JpkiAuth,
                ..
            })
        );
    });
    assert_eq!(verifies_with_data(&sim), 1, "the VERIFY was not repeated");
    assert_eq!(
        remaining(&sim, SecretId::JpkiAuthPin),
        2,
        "the card did count it"
    );
}

#[test]
fn pin_types_reject_bad_values_before_sending() {
    assert!(Pin::new("12345").is_err());
    assert!(SignPassword::new("abc").is_err());
    assert!(CollationB::from_digits("1234").is_err());
    assert!(!format!("{:?}", Pin::new("0000").unwrap()).contains("0000"));
}

#[test]
fn apdu_counters_count_every_byte() {
    let (sim, mut session) = card("no-extended");
    with_jpki(&mut session, async |ap| {
        ap.read_certificate(PublicCertificate::AuthCa)
            .await
            .unwrap();
    });
    let entries = sim.log().entries();
    let stats = session.stats();
    assert_eq!(stats.commands, entries.len() as u64);
    assert_eq!(
        stats.bytes_sent,
        entries
            .iter()
            .map(|e| (e.command.len() + e.redacted) as u64)
            .sum::<u64>()
    );
    session.reset_stats();
    assert_eq!(session.stats().commands, 0);
}
