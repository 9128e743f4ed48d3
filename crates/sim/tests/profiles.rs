//! The built-in profiles and the profile file format.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use der::Decode;
use der::referenced::OwnedToRef;
use mynacard_sim::image::{CardImage, Date, TokenKind};
use mynacard_sim::pki::{CaKind, TestPki, utc};
use mynacard_sim::profile::{Catalogue, ProfileError, is_valid_my_number};
use proptest::prelude::*;
use x509_cert::Certificate;
use x509_cert::crl::CertificateList;

const BUILTIN_NAMES: [&str; 13] = [
    "adult",
    "blocked-auth-pin",
    "capped-reader",
    "capped-reader-dropped",
    "contact",
    "contactless",
    "expired-auth",
    "face-auth",
    "no-extended",
    "reissued",
    "revoked-auth",
    "smartphone",
    "under15",
];

fn d(year: u16, month: u8, day: u8) -> Date {
    Date { year, month, day }
}

fn image(name: &str) -> CardImage {
    CardImage::from_profile_name(name).unwrap()
}

fn serial_of(der: &[u8]) -> Vec<u8> {
    Certificate::from_der(der)
        .unwrap()
        .tbs_certificate()
        .serial_number()
        .as_bytes()
        .to_vec()
}

fn not_after(der: &[u8]) -> std::time::Duration {
    Certificate::from_der(der)
        .unwrap()
        .tbs_certificate()
        .validity()
        .not_after
        .to_unix_duration()
}

fn unix(date: Date) -> std::time::Duration {
    utc(date, 0, 0, 0).unwrap().unix_duration()
}

fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

#[test]
fn every_builtin_profile_loads_and_builds() {
    let catalogue = Catalogue::builtin().unwrap();
    assert_eq!(catalogue.names().collect::<Vec<_>>(), BUILTIN_NAMES);
    let pki = TestPki::shared().unwrap();
    for profile in catalogue.profiles() {
        let img = profile.build_image(pki).unwrap();
        assert_eq!(img.profile, profile.name);
        assert!(
            is_valid_my_number(&img.person.my_number),
            "{}",
            profile.name
        );
        assert!(img.person.name.contains('\u{3000}'));
        assert_eq!(img.auth_ca_cert, pki.root_der(CaKind::Auth));
        assert_eq!(img.sign_ca_cert, pki.root_der(CaKind::Sign));
        // The certified key is the image's key.
        let cert = Certificate::from_der(&img.auth.cert_der).unwrap();
        let spki = cert.tbs_certificate().subject_public_key_info();
        let key = rsa::PublicKey::try_from(spki.owned_to_ref()).unwrap();
        assert_eq!(key, img.auth.key.to_public_key(), "{}", profile.name);
        assert_eq!(
            img.sign.is_some(),
            img.sign_password.is_some(),
            "{}",
            profile.name
        );
        // The photo is JPEG 2000, as on real cards.
        assert!(
            img.face
                .photo
                .starts_with(&mynacard_sim::profile::jp2::SIGNATURE_BOX)
        );
        for png in [
            &img.face.name_image,
            &img.face.address_image,
            &img.face.security_code_image,
        ] {
            check_png(png);
        }
        // The AP keys are distinct from each other and from the certified keys.
        let keys = [
            img.auth.key.clone(),
            img.text_ap_key.clone(),
            img.card_key.clone(),
            img.visual_record_key.clone(),
            img.text_record_key.clone(),
            img.common_ap_key.clone(),
            img.text_sm_key.clone(),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}

#[test]
fn adult_has_both_certificates_and_the_default_credentials() {
    let img = image("adult");
    assert_eq!(img.token, TokenKind::Card);
    assert!(img.sign.is_some());
    let pin = |s: &Option<mynacard_sim::image::Secret>| {
        let s = s.as_ref().unwrap();
        (s.value.to_vec(), s.limit, s.remaining)
    };
    assert_eq!(pin(&img.auth_pin), (b"1234".to_vec(), 3, 3));
    assert_eq!(pin(&img.text_pin), (b"1234".to_vec(), 3, 3));
    assert_eq!(pin(&img.sign_password), (b"ABC123".to_vec(), 5, 5));
    assert_eq!(img.collation_limit, 10);
    assert_eq!(&**img.person.my_number, "123456789018");
    assert_eq!(img.person.birth_date, d(1980, 2, 17));
    assert_eq!(img.face.expiry, d(2035, 2, 17));
    assert_eq!(img.face.serial.len(), 15);
    assert_eq!(img.face.municipality_code, "13221");
    assert_eq!(&**img.face.security_code, "2285");
    assert_eq!(img.link.atr, hex("3B C5 FF 81 31 FB 45 80 73 C6 01 00 00"));
    assert!(!img.link.contactless && img.link.extended_length);
    // Valid until the 5th birthday after issue, end of day in Japan.
    let end = utc(d(2030, 2, 17), 14, 59, 59).unwrap().unix_duration();
    assert_eq!(not_after(&img.auth.cert_der), end);
    assert_eq!(not_after(&img.sign.as_ref().unwrap().cert_der), end);
}

#[test]
fn under15_and_face_auth_have_no_signing_certificate() {
    let young = image("under15");
    assert!(young.sign.is_none() && young.sign_password.is_none());
    assert!(young.auth_pin.is_some() && young.text_pin.is_some());

    let face = image("face-auth");
    assert!(face.sign.is_none());
    assert!(face.auth_pin.is_none() && face.sign_password.is_none() && face.text_pin.is_none());
}

#[test]
fn expired_auth_is_expired_at_its_reference_date_while_the_card_is_not() {
    let catalogue = Catalogue::builtin().unwrap();
    let profile = catalogue.get("expired-auth").unwrap();
    let img = image("expired-auth");
    let now = unix(profile.reference_date);
    assert!(not_after(&img.auth.cert_der) < now);
    assert!(not_after(&img.sign.as_ref().unwrap().cert_der) < now);
    assert!(unix(img.face.expiry) > now);
    // Every other profile is valid at its reference date.
    for p in catalogue.profiles().filter(|p| p.name != "expired-auth") {
        let img = p.build_image(TestPki::shared().unwrap()).unwrap();
        assert!(
            not_after(&img.auth.cert_der) > unix(p.reference_date),
            "{}",
            p.name
        );
    }
}

#[test]
fn revoked_auth_is_on_the_simulators_crl_and_nobody_else_is() {
    let catalogue = Catalogue::builtin().unwrap();
    let pki = TestPki::shared().unwrap();
    let reference = catalogue.get("revoked-auth").unwrap().reference_date;
    let der = catalogue
        .crl_der(CaKind::Auth, pki, utc(reference, 0, 0, 0).unwrap())
        .unwrap();
    let crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&der).unwrap();
    let listed: Vec<Vec<u8>> = crl
        .tbs_cert_list
        .revoked_certificates
        .unwrap_or_default()
        .iter()
        .map(|r| r.serial_number.as_bytes().to_vec())
        .collect();
    assert_eq!(
        listed,
        vec![serial_of(&image("revoked-auth").auth.cert_der)]
    );
    assert!(!listed.contains(&serial_of(&image("adult").auth.cert_der)));
    // No signing certificate is revoked by the built-ins.
    let sign_crl = catalogue
        .crl_der(CaKind::Sign, pki, utc(reference, 0, 0, 0).unwrap())
        .unwrap();
    let sign_crl = CertificateList::<x509_cert::certificate::Rfc5280>::from_der(&sign_crl).unwrap();
    assert!(sign_crl.tbs_cert_list.revoked_certificates.is_none());
}

#[test]
fn blocked_auth_pin_has_no_tries_left() {
    let img = image("blocked-auth-pin");
    let pin = img.auth_pin.unwrap();
    assert_eq!((pin.limit, pin.remaining), (3, 0));
    let sign = img.sign_password.unwrap();
    assert_eq!(sign.remaining, 5);
}

#[test]
fn reissued_is_the_same_person_on_a_new_card() {
    let old = image("adult");
    let new = image("reissued");
    assert_eq!(old.person, new.person);
    assert_ne!(old.auth.key, new.auth.key);
    assert_ne!(serial_of(&old.auth.cert_der), serial_of(&new.auth.cert_der));
    assert_ne!(
        serial_of(&old.sign.as_ref().unwrap().cert_der),
        serial_of(&new.sign.as_ref().unwrap().cert_der)
    );
    assert_ne!(old.face.serial, new.face.serial);
    assert_ne!(old.text_ap_key, new.text_ap_key);
}

#[test]
fn smartphone_token() {
    let img = image("smartphone");
    assert_eq!(img.token, TokenKind::AndroidSe);
    assert!(img.auth_pin.is_some() && img.sign.is_some());
    assert!(img.text_pin.is_none());
    assert!(img.link.contactless && !img.link.extended_length);
}

#[test]
fn link_variants_are_the_adult_card_on_other_links() {
    let adult = image("adult");
    for (name, atr, contactless, extended, max) in [
        (
            "contact",
            "3B DA 13 FF 81 31 FB 46 80 12 39 2F 31 C1 73 C6 01 C0 3B",
            false,
            true,
            65_536,
        ),
        (
            "contactless",
            "3B 88 80 01 00 00 05 E0 B3 81 A1 00 7F",
            true,
            true,
            65_536,
        ),
        (
            "no-extended",
            "3B 88 80 01 00 00 41 E0 B3 81 A1 00 3B",
            true,
            false,
            256,
        ),
    ] {
        let img = image(name);
        assert_eq!(img.link.atr, hex(atr), "{name}");
        assert_eq!(img.link.contactless, contactless, "{name}");
        assert_eq!(img.link.extended_length, extended, "{name}");
        assert_eq!(img.link.max_response_data, max, "{name}");
        // Same card: byte-identical certificates and keys.
        assert_eq!(img.auth.cert_der, adult.auth.cert_der, "{name}");
        assert_eq!(
            img.sign.as_ref().unwrap().cert_der,
            adult.sign.as_ref().unwrap().cert_der
        );
        assert_eq!(img.common_ap_key, adult.common_ap_key);
    }
}

#[test]
fn building_twice_gives_identical_images() {
    let pki = TestPki::shared().unwrap();
    let catalogue = Catalogue::builtin().unwrap();
    let p = catalogue.get("adult").unwrap();
    let (a, b) = (p.build_image(pki).unwrap(), p.build_image(pki).unwrap());
    assert_eq!(a.auth.cert_der, b.auth.cert_der);
    assert_eq!(a.sign.unwrap().cert_der, b.sign.unwrap().cert_der);
    assert_eq!(a.face, b.face);
    // Another seed, another hierarchy.
    let other = TestPki::new(b"profiles: other seed").unwrap();
    let c = p.build_image(&other).unwrap();
    assert_ne!(c.auth.cert_der, a.auth.cert_der);
    assert_eq!(c.auth_ca_cert, other.root_der(CaKind::Auth));
}

const USER_FILE: &str = r#"
[profile.my-clinic-card]
base = "adult"
description = "The adult card with a used-up signing password counter"
card_id = "clinic"
remove = ["pins.text"]

[profile.my-clinic-card.pins]
sign = { value = "PASSWORD1", limit = 5, remaining = 1 }

[profile.my-clinic-card.person]
name = "試験　二郎"
my_number = "{MY_NUMBER}"
"#;

#[test]
fn user_files_extend_the_builtins() {
    let mut catalogue = Catalogue::builtin().unwrap();
    // A 12-digit number is checked rather than completed.
    let body = "99999999999";
    let check = mynacard_sim::profile::my_number_check_digit(body).unwrap();
    let text = USER_FILE.replace("{MY_NUMBER}", &format!("{body}{check}"));
    catalogue.extend_from_str(&text).unwrap();
    let p = catalogue.get("my-clinic-card").unwrap();
    let img = p.build_image(TestPki::shared().unwrap()).unwrap();
    assert_eq!(img.person.name, "試験　二郎");
    assert_eq!(
        img.person.address,
        image("adult").person.address,
        "inherited"
    );
    assert!(img.text_pin.is_none());
    let sign = img.sign_password.unwrap();
    assert_eq!((&sign.value[..], sign.remaining), (&b"PASSWORD1"[..], 1));
    assert_ne!(img.auth.cert_der, image("adult").auth.cert_der);
    assert!(catalogue.get("adult").is_ok(), "built-ins stay");

    let path =
        std::env::temp_dir().join(format!("mynacard-sim-profile-{}.toml", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let loaded = Catalogue::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.get("my-clinic-card").unwrap(), p);
    assert!(matches!(
        Catalogue::load(&path),
        Err(ProfileError::Io { .. })
    ));
}

fn parse_error(text: &str) -> ProfileError {
    let mut c = Catalogue::builtin().unwrap();
    c.extend_from_str(text).unwrap_err()
}

#[test]
fn bad_profiles_are_typed_errors() {
    assert!(matches!(parse_error("not = [toml"), ProfileError::Toml(_)));
    assert!(matches!(parse_error("x = 1"), ProfileError::NoProfiles));
    assert!(matches!(
        parse_error("[profile.x]\nbase = \"adult\"\ncolour = \"red\"\n"),
        ProfileError::Schema { .. }
    ));
    assert!(matches!(
        parse_error("[profile.x]\nbase = \"nope\"\n"),
        ProfileError::UnknownBase { .. }
    ));
    assert!(matches!(
        parse_error("[profile.a]\nbase = \"b\"\n[profile.b]\nbase = \"a\"\n"),
        ProfileError::BaseCycle(_)
    ));
    assert!(matches!(
        parse_error("[profile.x]\nbase = \"adult\"\nremove = [\"pins.nope\"]\n"),
        ProfileError::BadDirective { .. }
    ));
    let invalid = |body: &str| match parse_error(&format!("[profile.x]\nbase = \"adult\"\n{body}"))
    {
        ProfileError::Invalid { field, .. } => field,
        other => panic!("expected Invalid, got {other:?}"),
    };
    assert_eq!(
        invalid("[profile.x.person]\nmy_number = \"123456789017\"\n"),
        "person.my_number"
    );
    assert_eq!(
        invalid("[profile.x.person]\nname = \"番号 花子\"\n"),
        "person.name"
    );
    assert_eq!(
        invalid("[profile.x.pins]\nauth = { value = \"12345\", limit = 3 }\n"),
        "pins.auth"
    );
    assert_eq!(
        invalid("[profile.x.pins]\nsign = { value = \"abc123\", limit = 5 }\n"),
        "pins.sign"
    );
    assert_eq!(
        invalid("[profile.x.pins]\nauth = { value = \"1234\", limit = 3, remaining = 4 }\n"),
        "pins.auth"
    );
    assert_eq!(invalid("remove = [\"sign\"]\n"), "pins.sign");
    assert_eq!(
        invalid("[profile.x.face]\nserial = \"12\"\n"),
        "face.serial"
    );
    assert_eq!(invalid("[profile.x.link]\natr = \"3B 8\"\n"), "link.atr");
    assert_eq!(
        invalid("[profile.x.link]\nextended_length = false\n"),
        "link.max_response_data"
    );
    assert_eq!(invalid("[profile.x.auth]\nexpires = 2020-01-01\n"), "auth");
    assert!(matches!(
        CardImage::from_profile_name("no-such-card"),
        Err(ProfileError::UnknownProfile(_))
    ));
}

/// Check a PNG's signature, chunk CRCs, IHDR and that the stored zlib data has the right size.
fn check_png(png: &[u8]) {
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = (crc >> 1) ^ (0xEDB8_8320 & (!(crc & 1)).wrapping_add(1));
            }
        }
        !crc
    }
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut at = 8;
    let mut chunks = Vec::new();
    let mut idat = Vec::new();
    let mut expected_raw = 0;
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let body = &png[at + 4..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc32(body), crc);
        chunks.push(body[..4].to_vec());
        if &body[..4] == b"IDAT" {
            idat.extend_from_slice(&body[4..]);
        }
        if &body[..4] == b"IHDR" {
            let w = u32::from_be_bytes(body[4..8].try_into().unwrap()) as usize;
            let h = u32::from_be_bytes(body[8..12].try_into().unwrap()) as usize;
            let bits = usize::from(body[12]);
            // Raw size: per row a filter byte plus the packed pixels.
            expected_raw = ((w * bits).div_ceil(8) + 1) * h;
        }
        at += 12 + len;
    }
    assert_eq!(chunks.first().map(Vec::as_slice), Some(&b"IHDR"[..]));
    assert_eq!(chunks.last().map(Vec::as_slice), Some(&b"IEND"[..]));
    // Walk the stored deflate blocks.
    assert_eq!(idat[0] & 0x0F, 8, "deflate");
    assert_eq!((u16::from(idat[0]) << 8 | u16::from(idat[1])) % 31, 0);
    let mut i = 2;
    let mut total = 0;
    loop {
        let last = idat[i] & 1;
        assert_eq!(idat[i] & 0b110, 0, "stored block");
        let len = u16::from_le_bytes([idat[i + 1], idat[i + 2]]);
        let nlen = u16::from_le_bytes([idat[i + 3], idat[i + 4]]);
        assert_eq!(len, !nlen);
        total += usize::from(len);
        i += 5 + usize::from(len);
        if last == 1 {
            break;
        }
    }
    assert_eq!(i + 4, idat.len(), "Adler-32 ends the stream");
    assert_eq!(total, expected_raw, "IDAT holds every row");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_profile_text_never_panics(text in "\\PC{0,400}") {
        let _ = Catalogue::parse(&text);
    }

    #[test]
    fn arbitrary_profile_overrides_never_panic(
        key in "(pins\\.auth|person\\.sex|face\\.serial|link\\.atr|auth\\.issued|card_id)",
        value in "(\"[ -~]{0,20}\"|[0-9]{1,6}|true|2026-02-30|\\[\\])",
    ) {
        let text = format!("[profile.x]\nbase = \"adult\"\n{key} = {value}\n");
        let mut c = Catalogue::builtin().unwrap();
        if c.extend_from_str(&text).is_ok() {
            let _ = c.get("x").map(|p| p.build_image(TestPki::shared().unwrap()));
        }
    }
}
