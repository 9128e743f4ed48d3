//! The card's catalogue and the ISO command constructors against the byte strings of the
//! project's card-protocol notes, and the codec's parser on the same bytes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mynacard_apdu::commands::{self, KeyRef};
use mynacard_apdu::{Case, Command, LengthEncoding, StatusWord};
use mynacard_card::catalogue::{self, SignScheme, aid, jpki};
use zeroize::Zeroizing;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// Encodes `command`, compares with `golden`, parses `golden` back and compares the fields.
fn check(command: &Command, golden: &str, case: Case, encoding: LengthEncoding) {
    let golden = h(golden);
    let bytes = command.to_bytes(LengthEncoding::Auto).unwrap();
    assert_eq!(bytes.as_slice(), golden.as_slice(), "{command:?}");
    assert_eq!(command.case(), case);
    let parsed = Command::parse(&golden).unwrap();
    assert_eq!(parsed.encoding, encoding);
    let back = parsed.command;
    assert_eq!(
        (back.cla, back.ins, back.p1, back.p2),
        (command.cla, command.ins, command.p1, command.p2)
    );
    assert_eq!(back.data_bytes(), command.data_bytes());
    assert_eq!(back.data().is_sensitive(), command.data().is_sensitive());
    assert_eq!(back.ne(), command.ne());
    assert_eq!(back.case(), case);
}

/// B.1: SELECT of the JPKI AP.
#[test]
fn select_jpki_ap() {
    check(
        &commands::select_df(&aid::JPKI),
        "00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01",
        Case::Case3,
        LengthEncoding::Short,
    );
}

/// B.1: SELECT of the other applications and of the GlobalPlatform ISD.
#[test]
fn select_other_aps() {
    for (aid, golden) in [
        (
            &aid::TEXT[..],
            "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08",
        ),
        (
            &aid::VISUAL[..],
            "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 02",
        ),
        (
            &aid::COMMON[..],
            "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 01 00",
        ),
        (&aid::GP_ISD[..], "00 A4 04 0C 07 A0 00 00 01 51 00 00"),
    ] {
        check(
            &commands::select_df(aid),
            golden,
            Case::Case3,
            LengthEncoding::Short,
        );
    }
}

/// B.1: SELECT EF by file id.
#[test]
fn select_ef() {
    check(
        &commands::select_ef(jpki::AUTH_PIN),
        "00 A4 02 0C 02 00 18",
        Case::Case3,
        LengthEncoding::Short,
    );
    check(
        &commands::select_ef(jpki::AUTH_CERT),
        "00 A4 02 0C 02 00 0A",
        Case::Case3,
        LengthEncoding::Short,
    );
}

/// B.3: VERIFY without data asks the retry counter.
#[test]
fn empty_verify() {
    check(
        &commands::verify_status(KeyRef::Current),
        "00 20 00 80",
        Case::Case1,
        LengthEncoding::Short,
    );
    check(
        &commands::verify_status(KeyRef::for_file(jpki::AUTH_PIN)),
        "00 20 00 98",
        Case::Case1,
        LengthEncoding::Short,
    );
}

/// B.3: VERIFY with the PIN as ASCII; the data is secret both ways.
#[test]
fn verify() {
    let pin = Zeroizing::new(b"1234".to_vec());
    let cmd = commands::verify(KeyRef::Current, pin);
    assert!(cmd.data().is_sensitive());
    check(
        &cmd,
        "00 20 00 80 04 31 32 33 34",
        Case::Case3,
        LengthEncoding::Short,
    );
    let sign = commands::verify(
        KeyRef::for_file(jpki::SIGN_PIN),
        Zeroizing::new(b"ABC123".to_vec()),
    );
    check(
        &sign,
        "00 20 00 9B 06 41 42 43 31 32 33",
        Case::Case3,
        LengthEncoding::Short,
    );
}

/// B.3: CHANGE REFERENCE DATA, replacement only.
#[test]
fn change_reference_data() {
    let cmd = commands::change_reference_data(KeyRef::Current, Zeroizing::new(b"5678".to_vec()));
    check(
        &cmd,
        "00 24 01 80 04 35 36 37 38",
        Case::Case3,
        LengthEncoding::Short,
    );
}

/// B.4: READ BINARY at an offset, short Le.
#[test]
fn read_binary_with_offset() {
    check(
        &commands::read_binary(0, 7).unwrap(),
        "00 B0 00 00 07",
        Case::Case2,
        LengthEncoding::Short,
    );
    check(
        &commands::read_binary(0x0100, 256).unwrap(),
        "00 B0 01 00 00",
        Case::Case2,
        LengthEncoding::Short,
    );
    check(
        &commands::read_binary(0x7FFF, 1).unwrap(),
        "00 B0 7F FF 01",
        Case::Case2,
        LengthEncoding::Short,
    );
}

/// B.4: READ BINARY by SFI, short and with the extended whole-file Le `00 00 00`.
#[test]
fn read_binary_with_sfi() {
    check(
        &commands::read_binary_sfi(0x0A, 0, 256).unwrap(),
        "00 B0 8A 00 00",
        Case::Case2,
        LengthEncoding::Short,
    );
    check(
        &commands::read_binary_sfi(0x0B, 0, 65_536).unwrap(),
        "00 B0 8B 00 00 00 00",
        Case::Case2,
        LengthEncoding::Extended,
    );
}

/// B.5: COMPUTE DIGITAL SIGNATURE over a SHA-256 DigestInfo with the selected key.
#[test]
fn compute_digital_signature() {
    let digest_info = h(concat!(
        "3031300D060960864801650304020105000420",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    ));
    let cmd =
        catalogue::compute_signature(SignScheme::Pkcs1DigestInfo, KeyRef::Current, digest_info);
    let golden = concat!(
        "80 2A 00 80 33",
        "3031300D060960864801650304020105000420",
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "00"
    );
    check(&cmd, golden, Case::Case4, LengthEncoding::Short);
    // P2 = 80 | SFI names the key directly (9A: signing key).
    let by_sfi = catalogue::compute_signature(
        SignScheme::Pkcs1Sha256Hash,
        KeyRef::for_file(jpki::SIGN_KEY),
        [0u8; 32],
    );
    let bytes = by_sfi.to_bytes(LengthEncoding::Auto).unwrap();
    assert_eq!(&bytes[..5], [0x80, 0x2A, 0x02, 0x9A, 0x20]);
    assert_eq!(bytes.len(), 5 + 32 + 1);
    assert_eq!(bytes[bytes.len() - 1], 0x00);
}

/// 7816-4 §11.7.1 and B.4: GET RESPONSE `00 C0 00 00 xx`.
#[test]
fn get_response() {
    check(
        &commands::get_response(0x10),
        "00 C0 00 00 10",
        Case::Case2,
        LengthEncoding::Short,
    );
    check(
        &commands::get_response(256),
        "00 C0 00 00 00",
        Case::Case2,
        LengthEncoding::Short,
    );
}

/// B.8 and B.5: READ RECORD, GET DATA, GET CHALLENGE, INTERNAL AUTHENTICATE.
#[test]
fn other_card_commands() {
    check(
        &commands::read_record(1, 256),
        "00 B2 01 04 00",
        Case::Case2,
        LengthEncoding::Short,
    );
    check(
        &commands::get_data(0x0042, 256),
        "00 CA 00 42 00",
        Case::Case2,
        LengthEncoding::Short,
    );
    check(
        &commands::get_challenge(16),
        "00 84 00 00 10",
        Case::Case2,
        LengthEncoding::Short,
    );
    check(
        &commands::internal_authenticate(KeyRef::Sfi(0x19), [1, 2, 3, 4]),
        "00 88 00 99 04 01 02 03 04 00",
        Case::Case4,
        LengthEncoding::Short,
    );
}

/// Out-of-range constructor parameters are typed errors.
#[test]
fn constructor_parameter_errors() {
    assert!(matches!(
        commands::read_binary(0x8000, 1),
        Err(mynacard_apdu::ApduError::InvalidParameter { .. })
    ));
    for sfi in [0, 31, 0x80] {
        assert!(matches!(
            commands::read_binary_sfi(sfi, 0, 1),
            Err(mynacard_apdu::ApduError::InvalidParameter { .. })
        ));
    }
}

/// B.9: every status word the card is reported to answer has a named or payload arm.
#[test]
fn card_status_words_are_named() {
    let table = [
        (0x9000, StatusWord::Success),
        (0x63C3, StatusWord::RetriesRemaining(3)),
        (0x63C0, StatusWord::RetriesRemaining(0)),
        (0x6984, StatusWord::ReferenceDataBlocked),
        (0x6982, StatusWord::SecurityStatusNotSatisfied),
        (0x6A82, StatusWord::FileNotFound),
        (0x6A86, StatusWord::IncorrectP1P2),
        (0x6700, StatusWord::WrongLength),
        (0x6985, StatusWord::ConditionsNotSatisfied),
        (0x6B00, StatusWord::WrongP1P2),
        (0x6282, StatusWord::EndOfFileWarning),
        (0x6110, StatusWord::BytesRemaining(0x10)),
        (0x6C20, StatusWord::WrongLe(0x20)),
        (0x6A88, StatusWord::ReferencedDataNotFound),
        (0x66F1, StatusWord::SmEnvironmentFaulty),
        (0x6988, StatusWord::SmObjectsIncorrect),
        (0x69FC, StatusWord::SmSessionError),
        (0x6882, StatusWord::SecureMessagingNotSupported),
        (0x6D00, StatusWord::InsNotSupported),
        (0x6300, StatusWord::WarningNvChanged),
        (0x6983, StatusWord::AuthenticationMethodBlocked),
    ];
    for (code, word) in table {
        assert_eq!(StatusWord::from_u16(code), word, "{code:04X}");
        assert_eq!(word.to_u16(), code);
        assert!(!matches!(word, StatusWord::Other(_)));
    }
    assert_eq!(StatusWord::from_u16(0x63C2).retries(), Some(2));
    assert!(StatusWord::from_u16(0x63C0).is_blocked());
    assert!(StatusWord::from_u16(0x6984).is_blocked());
    assert!(!StatusWord::from_u16(0x63C1).is_blocked());
    assert_eq!(
        StatusWord::from_u16(0x6A82).to_string(),
        "6A82 (file or application not found)"
    );
}
