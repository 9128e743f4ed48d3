//! The examples' flows, run end to end through the facade against the reference service, with
//! their outcomes checked: the kiosk's face registration and eligibility check, the ATM's PIN
//! registration (and its PIN safety), and the phone app's hand-driven machine on short APDUs.
//!
//! The examples' files are included as modules, so these are the very functions
//! `cargo run --example …` runs.

#[path = "../examples/support/mod.rs"]
mod support;

// Each example's `main` and screen-only fields are not used here.
#[allow(dead_code)]
#[path = "../examples/atm.rs"]
mod atm;
#[allow(dead_code)]
#[path = "../examples/kiosk.rs"]
mod kiosk;
#[allow(dead_code)]
#[path = "../examples/smartphone_host.rs"]
mod smartphone_host;

use mynacard::registration::Outcome;
use mynacard::registration::messages::FaceDecision;
use mynacard::sim::state::SecretId;
use mynacard_registry::dev_pki::DevPki;
use zeroize::Zeroizing;

use support::{BoxError, ReferenceService};

fn pin(digits: &str) -> Zeroizing<String> {
    Zeroizing::new(digits.to_owned())
}

fn registration_id_of(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Registered {
            registration_id, ..
        }
        | Outcome::AlreadyRegistered {
            registration_id, ..
        } => Some(registration_id),
        _ => None,
    }
}

fn auth_pin_tries(card: &mynacard::sim::inprocess::SimCard) -> Option<u8> {
    card.with_card(|c| c.secret_status(SecretId::JpkiAuthPin))
        .map(|s| s.remaining)
}

#[test]
fn kiosk_registers_a_face_card_then_finds_it_eligible() -> Result<(), BoxError> {
    support::runtime()?.block_on(async {
        let pki = DevPki::generate(&["127.0.0.1"], &[kiosk::KIOSK_ID])?;
        let service = ReferenceService::start_tls(&pki).await?;
        let client = support::terminal_client(&service.base_url(), &pki, kiosk::KIOSK_ID)?;
        let (card, image) = kiosk::face_card_on_contactless_reader()?;
        let visit = kiosk::kiosk_visit(&card, &image, &client).await?;

        assert!(visit.contactless, "the kiosk reads the card contactless");
        let Outcome::Registered {
            registration_id,
            insurer_name,
        } = &visit.registration.report.outcome
        else {
            panic!("registration: {:?}", visit.registration.report.outcome);
        };
        assert_eq!(insurer_name.as_deref(), Some("さくら市国民健康保険"));
        let Outcome::Eligible(eligible) = &visit.eligibility.report.outcome else {
            panic!("eligibility: {:?}", visit.eligibility.report.outcome);
        };
        assert_eq!(&eligible.registration_id, registration_id);
        assert_eq!(eligible.insurance.insurer_name, "さくら市国民健康保険");
        assert!(!eligible.grace && !eligible.relinked);

        // Both flows went the face way: the consent shown, 照合番号B with its tries read
        // first, a matched face and one attestation each; the card answered every APDU.
        for flow in [&visit.registration, &visit.eligibility] {
            assert_eq!(flow.screen.consent_titles.len(), 1);
            assert_eq!(flow.screen.collation_tries, vec![Some(10)]);
            assert_eq!(flow.screen.face_matches.len(), 1);
            assert_eq!(flow.screen.face_matches[0].decision, FaceDecision::Match);
            assert_eq!(flow.screen.attestations, 1);
            assert!(flow.report.apdus > 0);
            assert_eq!(flow.report.http_requests, 3);
        }
        assert_eq!(service.registration_count().await?, 1);

        // The same patient at the next visit: the card is already registered.
        let again = kiosk::kiosk_visit(&card, &image, &client).await?;
        assert!(
            matches!(&again.registration.report.outcome,
                Outcome::AlreadyRegistered { registration_id: id, .. } if id == registration_id),
            "{:?}",
            again.registration.report.outcome
        );
        assert!(matches!(
            again.eligibility.report.outcome,
            Outcome::Eligible(_)
        ));
        assert_eq!(service.registration_count().await?, 1);
        service.stop().await;
        Ok(())
    })
}

#[test]
fn atm_registers_with_the_keypad_pin_then_knows_the_card() -> Result<(), BoxError> {
    support::runtime()?.block_on(async {
        let pki = DevPki::generate(&["127.0.0.1"], &[atm::ATM_ID])?;
        let service = ReferenceService::start_tls(&pki).await?;
        assert!(service.base_url().starts_with("https://"));
        let client = support::terminal_client(&service.base_url(), &pki, atm::ATM_ID)?;
        let card = atm::card_in_contact_reader()?;

        let first = atm::atm_registration(&card, pin("1234"), &client, false).await?;
        assert!(first.contact, "the ATM reads the card through contacts");
        assert!(first.consent_shown);
        assert_eq!(
            first.tries_shown,
            vec![Some(3)],
            "tries shown before the PIN"
        );
        let Outcome::Registered {
            registration_id,
            insurer_name,
        } = &first.report.outcome
        else {
            panic!("{:?}", first.report.outcome);
        };
        assert_eq!(insurer_name.as_deref(), Some("みらい健康保険組合"));
        assert!(atm::atm_screen(&first.report.outcome).contains("登録が完了しました"));
        assert_eq!(
            auth_pin_tries(&card),
            Some(3),
            "a right PIN keeps every try"
        );

        let second = atm::atm_registration(&card, pin("1234"), &client, false).await?;
        assert_eq!(
            registration_id_of(&second.report.outcome),
            Some(registration_id.as_str())
        );
        assert!(matches!(
            second.report.outcome,
            Outcome::AlreadyRegistered { .. }
        ));
        assert_eq!(service.registration_count().await?, 1);
        service.stop().await;
        Ok(())
    })
}

#[test]
fn atm_shows_the_tries_left_and_never_spends_the_last_one() -> Result<(), BoxError> {
    support::runtime()?.block_on(async {
        let pki = DevPki::generate(&["127.0.0.1"], &[atm::ATM_ID])?;
        let service = ReferenceService::start_tls(&pki).await?;
        let card = atm::card_in_contact_reader()?;
        let client = support::terminal_client(&service.base_url(), &pki, atm::ATM_ID)?;

        let wrong = atm::atm_registration(&card, pin("9999"), &client, false).await?;
        assert_eq!(wrong.tries_shown, vec![Some(3)]);
        assert_eq!(wrong.report.outcome, Outcome::WrongPin { retries_left: 2 });
        assert!(atm::atm_screen(&wrong.report.outcome).contains("残り2回"));

        let wrong = atm::atm_registration(&card, pin("0000"), &client, false).await?;
        assert_eq!(wrong.tries_shown, vec![Some(2)]);
        assert_eq!(wrong.report.outcome, Outcome::WrongPin { retries_left: 1 });
        assert_eq!(auth_pin_tries(&card), Some(1));

        // One try left: the ATM does not ask for the PIN and the card keeps its last try.
        let refused = atm::atm_registration(&card, pin("1234"), &client, false).await?;
        assert!(refused.tries_shown.is_empty(), "no PIN was asked");
        assert_eq!(refused.report.outcome, Outcome::LastAttemptRefused);
        assert_eq!(auth_pin_tries(&card), Some(1));
        assert_eq!(service.registration_count().await?, 0);
        service.stop().await;
        Ok(())
    })
}

#[test]
fn smartphone_host_loop_registers_over_short_apdus() -> Result<(), BoxError> {
    support::runtime()?.block_on(async {
        let service = ReferenceService::start().await?;
        let url = service.base_url();
        let http = mynacard::registration::http::HttpClient::new(&url)?;
        let mut nfc = smartphone_host::phone_with_card()?;

        let run = smartphone_host::register_from_phone(
            smartphone_host::app_machine(),
            &mut nfc,
            &http,
            pin("1234"),
        )
        .await?;
        let Outcome::Registered {
            registration_id, ..
        } = &run.outcome
        else {
            panic!("{:?}", run.outcome);
        };
        assert_eq!(run.tries_shown, vec![Some(3)]);
        let t = run.traffic;
        assert!(
            t.longest_command <= smartphone_host::SHORT_APDU_MAX,
            "a short APDU at most, got {}",
            t.longest_command
        );
        assert!(t.longest_response <= 258, "256 data bytes + SW at most");
        // consent, start, proof
        assert_eq!(t.http_requests, 3);
        assert_eq!(
            run.log.iter().filter(|l| l.starts_with("nfc")).count(),
            t.apdus as usize
        );

        // The same card in the ATM's contact reader (extended length; this service speaks
        // plain HTTP): already registered, with fewer APDUs for the same card work.
        let card = atm::card_in_contact_reader()?;
        let at_atm = atm::atm_registration(&card, pin("1234"), &http, false).await?;
        assert_eq!(
            registration_id_of(&at_atm.report.outcome),
            Some(registration_id.as_str())
        );
        assert!(matches!(
            at_atm.report.outcome,
            Outcome::AlreadyRegistered { .. }
        ));
        assert!(
            u64::from(at_atm.report.apdus) < u64::from(t.apdus),
            "extended length saves APDUs: {} vs {}",
            at_atm.report.apdus,
            t.apdus
        );
        assert_eq!(service.registration_count().await?, 1);
        service.stop().await;
        Ok(())
    })
}
