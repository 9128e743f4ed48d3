//! What the simulated-card tests share: a card of a built-in profile with a session on it, the
//! credentials those profiles are issued with, questions about what reached the card, and an
//! assertion on error variants.

#![allow(dead_code)] // every test file uses its own part of this

use std::future::Future;

use mynacard_card::CardPublicKey;
use mynacard_card::cvc::{CvcAuthority, CvcScope, CvcTrust};
use mynacard_card::jpki::{JpkiAp, VerifiedAuth};
use mynacard_card::text::{TextAp, VerifiedText};
use mynacard_card::visual::{VerifiedVisual, VisualAp};
use mynacard_card::{
    AttemptPolicy, CollationB, Date, MyNumber, Pin, Session, SessionOptions, SignPassword,
};
use mynacard_sim::image::CardImage;
use mynacard_sim::inprocess::{SimCard, SimChannel};
use mynacard_sim::state::SecretId;

/// A session on the in-process simulated card.
pub(crate) type SimSession = Session<SimChannel>;

/// The simulated card of the built-in `profile`, and a session on it.
pub(crate) fn card(profile: &str) -> (SimCard, SimSession) {
    card_with_options(profile, SessionOptions::default())
}

/// The simulated card of the built-in `profile`, and a session on it with `options`.
pub(crate) fn card_with_options(profile: &str, options: SessionOptions) -> (SimCard, SimSession) {
    let image = CardImage::from_profile_name(profile).expect("built-in profile");
    let sim = SimCard::from_image(image);
    let session = Session::with_options(sim.channel(), options);
    (sim, session)
}

/// The 4-digit PIN the built-in profiles are issued with (text, common and JPKI authentication).
pub(crate) const PIN: &str = "1234";

/// The individual number of the built-in person, which is also its 照合番号A.
pub(crate) const MY_NUMBER: &str = "123456789018";

/// The name of the built-in person.
pub(crate) const NAME: &str = "番号\u{3000}花子";

/// A 4-digit PIN.
pub(crate) fn pin(digits: &str) -> Pin {
    Pin::new(digits).unwrap()
}

/// A JPKI signing password.
pub(crate) fn password(text: &str) -> SignPassword {
    SignPassword::new(text).unwrap()
}

/// 照合番号A of the built-in person.
pub(crate) fn collation_a() -> MyNumber {
    MyNumber::new(MY_NUMBER).unwrap()
}

/// 照合番号B of the built-in person (born 1980-02-17, card valid to 2035) with this security
/// code; the issued one is "2285".
pub(crate) fn collation_b_with_code(code: &str) -> CollationB {
    CollationB::new(Date::new(1980, 2, 17).unwrap(), 2035, code).unwrap()
}

/// The issued 照合番号B of the built-in person.
pub(crate) fn collation_b() -> CollationB {
    collation_b_with_code("2285")
}

/// Runs `body` on the text AP of `session` with the issued PIN verified.
pub(crate) fn with_text_pin_verified<R>(
    session: &mut SimSession,
    body: impl AsyncFnOnce(&mut VerifiedText<'_, SimChannel>) -> R,
) -> R {
    pollster::block_on(async {
        let mut text = session.text().await.unwrap();
        let mut verified = text
            .verify_pin(&pin(PIN), AttemptPolicy::default())
            .await
            .unwrap();
        body(&mut verified).await
    })
}

/// Verifies the built-in person's 照合番号A on the text AP, which must succeed.
pub(crate) async fn verify_text_collation_a<'a>(
    text: &'a mut TextAp<'_, SimChannel>,
) -> VerifiedText<'a, SimChannel> {
    text.verify_collation_a(&collation_a(), AttemptPolicy::default())
        .await
        .unwrap()
}

/// Verifies the built-in person's 照合番号B on the text AP, which must succeed.
pub(crate) async fn verify_text_collation_b<'a>(
    text: &'a mut TextAp<'_, SimChannel>,
) -> VerifiedText<'a, SimChannel> {
    text.verify_collation_b(&collation_b(), AttemptPolicy::default())
        .await
        .unwrap()
}

/// Verifies the built-in person's 照合番号B on the visual AP, which must succeed.
pub(crate) async fn verify_visual_collation_b<'a>(
    visual: &'a mut VisualAp<'_, SimChannel>,
) -> VerifiedVisual<'a, SimChannel> {
    visual
        .verify_collation_b(&collation_b(), AttemptPolicy::default())
        .await
        .unwrap()
}

/// Verifies the issued JPKI authentication PIN, which must succeed.
pub(crate) async fn verify_auth_pin<'a>(
    ap: &'a mut JpkiAp<'_, SimChannel>,
) -> VerifiedAuth<'a, SimChannel> {
    ap.verify_auth(&pin(PIN), AttemptPolicy::default())
        .await
        .unwrap()
}

/// Tries left on one of the card's secrets.
pub(crate) fn remaining(sim: &SimCard, id: SecretId) -> u8 {
    sim.with_card(|c| c.secret_status(id))
        .expect("secret exists")
        .remaining
}

/// APDUs the card has seen so far.
pub(crate) fn apdus_seen(sim: &SimCard) -> u64 {
    sim.log().counters().apdus
}

/// Awaits `operation` and asserts that it sent nothing to the card.
pub(crate) async fn without_sending<T>(sim: &SimCard, operation: impl Future<Output = T>) -> T {
    let before = apdus_seen(sim);
    let outcome = operation.await;
    assert_eq!(apdus_seen(sim), before, "nothing sent");
    outcome
}

/// Commands the card saw with this CLA and INS.
pub(crate) fn sent(sim: &SimCard, cla: u8, ins: u8) -> Vec<Vec<u8>> {
    sim.log()
        .entries()
        .iter()
        .filter(|e| e.command.first() == Some(&cla) && e.command.get(1) == Some(&ins))
        .map(|e| e.command.clone())
        .collect()
}

/// VERIFY commands that carried a PIN, as the card saw them.
pub(crate) fn verifies_with_data(sim: &SimCard) -> usize {
    sim.log()
        .entries()
        .iter()
        .filter(|e| e.command.get(1) == Some(&0x20) && e.redacted > 0)
        .count()
}

/// Signatures the card has computed so far.
pub(crate) fn rsa_operations(sim: &SimCard) -> u64 {
    sim.with_card(|c| c.rsa_operations())
}

/// Asserts that `$value` matches `$pattern`, and shows the value when it does not.
macro_rules! assert_matches {
    ($value:expr, $pattern:pat $(if $guard:expr)? $(,)?) => {
        match $value {
            $pattern $(if $guard)? => {}
            ref other => panic!(
                "{other:?} does not match {}",
                stringify!($pattern $(if $guard)?)
            ),
        }
    };
}
pub(crate) use assert_matches;

/// CVC trust as a development setup has it: the J-LIS test keys and the simulator's own CVC
/// authorities, added on the test opt-in.
pub(crate) fn sim_cvc_trust() -> CvcTrust {
    let pki = mynacard_sim::pki::TestPki::shared().unwrap();
    let mut trust = CvcTrust::production().allow_test_hierarchy();
    for authority in pki.cvc_authorities().unwrap() {
        let scope = match authority.role {
            mynacard_sim::cvc::CvcRole::CardChain => CvcScope::CardChain,
            mynacard_sim::cvc::CvcRole::Visual => CvcScope::Visual,
            mynacard_sim::cvc::CvcRole::Text => CvcScope::Text,
        };
        let key = CardPublicKey::from_parts(&authority.modulus, &authority.exponent).unwrap();
        trust = trust
            .with_test_authority(CvcAuthority::test(authority.key_id, key, scope).unwrap())
            .unwrap();
    }
    trust
}
