//! Personal data from the signing certificate's subjectAltName.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use der::{Decode, Encode, Tag, asn1::Any};
use mynacard_cert::{
    BirthDate, CertKind, Era, EraDate, JpkiCertificate, PersonalData, Purpose, Sex,
};
use x509_cert::ext::pkix::name::GeneralName;

fn leaf_with_san(san_ext: x509_cert::ext::Extension) -> JpkiCertificate {
    JpkiCertificate::from_der(&build_cert(CertSpec {
        serial: 1,
        issuer: ca_name("JPKI-TEST", SIGN_OU),
        subject: name("CN=X,L=Chiyoda-ku,C=JP"),
        not_before: "2024-01-01T00:00:00Z",
        not_after: "2029-01-01T00:00:00Z",
        subject_key: key(0),
        signer: key(0),
        extensions: vec![san_ext],
    }))
    .unwrap()
}

#[test]
fn the_six_fields_decode_into_types() {
    let dir = GeneralName::DirectoryName(name("CN=試験　花子,C=JP"));
    let cert = leaf_with_san(personal_san(
        "試験　花子",
        "2",
        "319800229",
        "東京都千代田区永田町一丁目",
        vec![dir],
    ));
    assert_eq!(cert.kind(), CertKind::Signing);
    assert_eq!(cert.kind_evidence().personal_data, Some(Purpose::Signing));
    let p = cert.personal_data().unwrap();
    assert_eq!(p.name().unwrap().as_text(), Some("試験　花子"));
    assert_eq!(p.name_substitute().unwrap().as_text(), Some("00000"));
    assert_eq!(p.sex(), Some(&Sex::Female));
    let date = p.birth_date().unwrap().date().unwrap();
    assert_eq!(date.era(), Era::Showa);
    assert_eq!((date.year(), date.month(), date.day()), (1980, 2, 29));
    assert_eq!(date.era_year(), Some(55));
    assert_eq!(date.to_iso8601(), "1980-02-29");
    assert_eq!(
        p.address().unwrap().as_text(),
        Some("東京都千代田区永田町一丁目")
    );
    assert_eq!(
        p.address_substitute().unwrap().as_text(),
        Some("0000000000000")
    );
    assert_eq!(
        p.directory_names().collect::<Vec<_>>(),
        ["C=JP, CN=試験　花子"]
    );
    assert!(p.unrecognized().is_empty());
}

#[test]
fn debug_output_carries_no_personal_data() {
    let cert = leaf_with_san(personal_san(
        "試験　花子",
        "2",
        "319800101",
        "東京都千代田区",
        vec![GeneralName::DirectoryName(name("CN=試験　花子,C=JP"))],
    ));
    let p = cert.personal_data().unwrap();
    let shown = format!(
        "{cert:?} {p:?} {:?} {:?} {:?} {:?}",
        p.name(),
        p.sex(),
        p.birth_date(),
        p.birth_date().unwrap().date()
    );
    for secret in [
        "試験",
        "花子",
        "1980",
        "319800101",
        "東京",
        "Chiyoda",
        "Female",
        "female",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    assert!(shown.contains("<redacted>"));
}

#[test]
fn unknown_values_are_kept_not_rejected() {
    let cert = leaf_with_san(san(vec![
        other_name("1.2.392.200149.8.5.5.3", "7"),
        other_name("1.2.392.200149.8.5.5.4", "720200101"),
        other_name("1.2.392.200149.8.5.5.1", "一郎"),
        // A repeat and an unknown sub-arc land in `unrecognized`.
        other_name("1.2.392.200149.8.5.5.1", "二郎"),
        other_name("1.2.392.200149.8.5.5.9", "x"),
        // A non-string value is kept as DER.
        other_name_any(
            "1.2.392.200149.8.5.5.5",
            Any::new(Tag::Integer, vec![0x05]).unwrap(),
        ),
        // A BMPString decodes.
        other_name_any(
            "1.2.392.200149.8.5.5.6",
            Any::new(Tag::BmpString, vec![0x67, 0x71, 0x4E, 0xAC]).unwrap(),
        ),
        // Outside the arc: not personal data, ignored.
        other_name("1.2.3.4", "ignored"),
    ]));
    let p = cert.personal_data().unwrap();
    match p.sex() {
        Some(Sex::Unrecognized(v)) => assert_eq!(v.as_text(), Some("7")),
        other => panic!("unexpected {other:?}"),
    }
    let date = p.birth_date().unwrap().date().unwrap();
    assert_eq!(date.era(), Era::Unknown(7));
    assert_eq!(date.era_year(), None);
    assert_eq!(date.to_code(), "720200101");
    assert_eq!(p.name().unwrap().as_text(), Some("一郎"));
    assert_eq!(p.unrecognized().len(), 2);
    assert_eq!(p.unrecognized()[0].value.as_text(), Some("二郎"));
    assert_eq!(
        p.unrecognized()[1].oid.to_string(),
        "1.2.392.200149.8.5.5.9"
    );
    assert_eq!(p.address().unwrap().as_raw(), Some(&[0x02, 0x01, 0x05][..]));
    assert_eq!(p.address_substitute().unwrap().as_text(), Some("東京"));
}

#[test]
fn malformed_birth_dates_are_kept_as_found() {
    for bad in [
        "31980021",
        "3198002300",
        "319801301",
        "319800230",
        "3l9800101",
        "",
        "４19800101",
    ] {
        let cert = leaf_with_san(san(vec![other_name("1.2.392.200149.8.5.5.4", bad)]));
        match cert.personal_data().unwrap().birth_date() {
            Some(BirthDate::Unrecognized(v)) => assert_eq!(v.as_text(), Some(bad)),
            other => panic!("{bad}: unexpected {other:?}"),
        }
    }
}

#[test]
fn sex_codes() {
    use mynacard_cert::PersonalValue;
    let cases = [
        ("1", Sex::Male, "male"),
        ("2", Sex::Female, "female"),
        ("9", Sex::NotApplicable, "not-applicable"),
        ("0", Sex::NotKnown, "not-known"),
    ];
    for (code, sex, text) in cases {
        let got = Sex::from_value(PersonalValue::text(code));
        assert_eq!(got, sex);
        assert_eq!(got.code(), Some(code));
        assert_eq!(got.as_str(), text);
    }
    assert_eq!(
        Sex::from_value(PersonalValue::text("M")).as_str(),
        "unrecognized"
    );
}

#[test]
fn era_boundaries_and_years() {
    assert_eq!(Era::of_date(2019, 4, 30), Some(Era::Heisei));
    assert_eq!(Era::of_date(2019, 5, 1), Some(Era::Reiwa));
    assert_eq!(Era::of_date(1989, 1, 7), Some(Era::Showa));
    assert_eq!(Era::of_date(1989, 1, 8), Some(Era::Heisei));
    // 明治元年 begins on 慶応4年1月1日 (1868-01-25), not on the edict's day (1868-10-23).
    assert_eq!(Era::of_date(1868, 10, 22), Some(Era::Meiji));
    assert_eq!(Era::of_date(1868, 1, 25), Some(Era::Meiji));
    assert_eq!(Era::of_date(1868, 1, 24), None);
    assert_eq!(Era::Showa.first_day(), Some((1926, 12, 25)));
    assert_eq!(Era::Unknown(7).first_day(), None);
    assert_eq!(Era::Showa.year_in_era(1980), Some(55));
    assert_eq!(Era::Reiwa.year_in_era(2018), None);
    assert_eq!(Era::Unknown(0).year_in_era(2000), None);
}

#[test]
fn eras_and_their_digits() {
    let eras = [
        (1, Era::Meiji, "明治", 1868),
        (2, Era::Taisho, "大正", 1912),
        (3, Era::Showa, "昭和", 1926),
        (4, Era::Heisei, "平成", 1989),
        (5, Era::Reiwa, "令和", 2019),
    ];
    for (digit, era, ja, first) in eras {
        assert_eq!(Era::from_digit(digit), era);
        assert_eq!(era.digit(), digit);
        assert_eq!(era.name_ja(), Some(ja));
        assert_eq!(era.first_year(), Some(first));
    }
    assert_eq!(Era::from_digit(0), Era::Unknown(0));
    assert_eq!(Era::from_digit(9).name_ja(), None);
    let reiwa = EraDate::parse("520190501").unwrap();
    assert_eq!(reiwa.era_year(), Some(1));
    assert!(
        EraDate::parse("519000229").is_none(),
        "1900 is not a leap year"
    );
    assert!(EraDate::parse("520000229").is_some(), "2000 is");
}

#[test]
fn the_san_decoder_works_on_extension_bytes() {
    let ext = personal_san("名前", "1", "419890108", "住所", vec![]);
    let p = PersonalData::from_san_der(ext.extn_value.as_bytes())
        .unwrap()
        .unwrap();
    assert_eq!(p.sex(), Some(&Sex::Male));
    assert_eq!(p.birth_date().unwrap().date().unwrap().era(), Era::Heisei);
    // A SAN with only a directory name (like the J-LIS roots') is not personal data.
    let roots_like = san(vec![GeneralName::DirectoryName(name(
        "O=公的個人認証サービス,C=JP",
    ))]);
    assert!(
        PersonalData::from_san_der(roots_like.extn_value.as_bytes())
            .unwrap()
            .is_none()
    );
    assert!(PersonalData::from_san_der(&[0x30, 0x03, 0xA0, 0x01]).is_err());
    // The extension round-trips through der, so the bytes are what a CA would emit.
    let reparsed = x509_cert::ext::Extension::from_der(&ext.to_der().unwrap()).unwrap();
    assert_eq!(reparsed, ext);
}
