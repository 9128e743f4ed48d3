//! `mynacard cert`: read certificates from the card (see `card.rs`), and inspect and verify
//! certificate files.
//!
//! `inspect` prints what a certificate says (kind, serial, names, validity, the signing
//! certificate's personal data) and which root's key made its signature. `verify` decides trust:
//! production J-LIS roots only unless `--allow-test-roots` is given with the test roots, at a
//! chosen time, with CRLs when given. It exits 0 only when the certificate is trusted and not
//! revoked.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use mynacard_cert::{
    BirthDate, Crl, CrlSource, JpkiCertificate, MatchedRoot, NoRevocationCheck, PersonalData,
    PersonalValue, RevocationSource, RevocationStatus, TrustPolicy, format_rfc3339,
    identify_issuer, verify,
};
use serde::Serialize;

use crate::cmd::card_select::CardOptions;
use crate::exit::{CliError, ExitCode};
use crate::input::{self, read_bounded};
use crate::output::Output;

/// `mynacard cert …`
#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// Read a certificate from the card.
    Read(crate::cmd::card::CertReadArgs),
    /// Show a certificate (DER or PEM): kind, serial, issuer, subject, validity, the personal
    /// data of a signing certificate, and the root whose key signed it.
    Inspect(InspectArgs),
    /// Decide whether a certificate (DER or PEM) is trusted: chain to a J-LIS root by signature,
    /// validity at a time, key usage, and revocation when CRLs are given. Exits 0 only when
    /// trusted and not revoked.
    Verify(VerifyArgs),
}

/// Arguments of `mynacard cert inspect`.
#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The certificate file.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    /// Also look for the signing root among these test roots (identification only, not trust).
    #[arg(long = "test-root", value_name = "FILE")]
    test_roots: Vec<PathBuf>,
}

/// Trust options shared by `cert verify` and `verify`.
#[derive(Debug, Args)]
pub(crate) struct TrustArgs {
    /// Check at this time instead of now (RFC 3339, e.g. 2024-05-01T00:00:00Z or
    /// 2024-05-01T09:00:00+09:00), within the range of certificate times: 1970-01-01T00:00:00Z
    /// to 9999-12-31T23:59:59Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    at: Option<SystemTime>,

    /// Accept the O=JPKI-TEST hierarchy of test cards and the simulated card, with the roots
    /// given by --test-root. Never use this to decide about a real cardholder.
    #[arg(long)]
    allow_test_roots: bool,

    /// A test root certificate (DER or PEM); repeatable; requires --allow-test-roots.
    #[arg(long = "test-root", value_name = "FILE", requires = "allow_test_roots")]
    test_roots: Vec<PathBuf>,

    /// A CRL (DER or PEM) to check revocation against; repeatable. Without one the revocation
    /// status is reported as unchecked.
    #[arg(long = "crl", value_name = "FILE")]
    crls: Vec<PathBuf>,
}

/// Arguments of `mynacard cert verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The certificate file.
    #[arg(value_name = "FILE")]
    file: PathBuf,

    #[command(flatten)]
    trust: TrustArgs,
}

/// Runs `mynacard cert …`.
pub(crate) fn run(card: &CardOptions, command: CertCommand, out: &Output) -> Result<(), CliError> {
    match command {
        CertCommand::Read(args) => {
            crate::cmd::card::run_cert(card, crate::cmd::card::CertCommand::Read(args), out)
        }
        CertCommand::Inspect(args) => {
            let cert = read_certificate(&args.file)?;
            let mut policy = TrustPolicy::production();
            if !args.test_roots.is_empty() {
                let roots = read_certificates(&args.test_roots)?;
                policy = policy.allow_test_hierarchy(roots).map_err(|e| {
                    CliError::usage("a --test-root is not a test root").with_source(e)
                })?;
            }
            out.print(&Inspection::new(&cert, &policy))
        }
        CertCommand::Verify(args) => {
            let cert = read_certificate(&args.file)?;
            let report = check_trust(&cert, &args.trust)?;
            out.print(&report)
        }
    }
}

/// Reads a DER or PEM certificate.
pub(crate) fn read_certificate(path: &Path) -> Result<JpkiCertificate, CliError> {
    let bytes = read_bounded(path, input::CERTIFICATE)?;
    JpkiCertificate::from_der_or_pem(&bytes).map_err(|e| {
        CliError::usage(format!("{} is not a certificate", path.display())).with_source(e)
    })
}

fn read_certificates(paths: &[PathBuf]) -> Result<Vec<JpkiCertificate>, CliError> {
    paths.iter().map(|p| read_certificate(p)).collect()
}

/// The trust decision for `cert`, as a printable report; `Err` with the verification-failed code
/// when it is not trusted or is revoked.
pub(crate) fn check_trust(
    cert: &JpkiCertificate,
    args: &TrustArgs,
) -> Result<TrustReport, CliError> {
    let mut policy = TrustPolicy::production();
    if args.allow_test_roots {
        let roots = read_certificates(&args.test_roots)?;
        policy = policy.allow_test_hierarchy(roots).map_err(|e| {
            CliError::usage("--allow-test-roots needs valid O=JPKI-TEST roots via --test-root")
                .with_source(e)
        })?;
    }
    let crls = args
        .crls
        .iter()
        .map(|p| {
            Crl::from_der_or_pem(&read_bounded(p, input::CRL)?).map_err(|e| {
                CliError::usage(format!("{} is not a CRL", p.display())).with_source(e)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let source: Box<dyn RevocationSource> = if crls.is_empty() {
        Box::new(NoRevocationCheck)
    } else {
        Box::new(CrlSource::new(crls))
    };
    let at = args.at.unwrap_or_else(SystemTime::now);
    let verification = verify(cert, &policy, at, source.as_ref()).map_err(|e| {
        CliError::new(ExitCode::VerificationFailed, "certificate is not trusted").with_source(e)
    })?;
    if let RevocationStatus::Revoked { .. } = &verification.revocation {
        return Err(CliError::new(
            ExitCode::VerificationFailed,
            format!("certificate is {}", verification.revocation),
        ));
    }
    Ok(TrustReport {
        trusted: true,
        at: format_rfc3339(at),
        root: RootJson::from(&verification.chain.root),
        revocation: RevocationJson::from(&verification.revocation),
    })
}

/// `cert verify` output.
#[derive(Debug, Serialize)]
pub(crate) struct TrustReport {
    trusted: bool,
    at: String,
    root: RootJson,
    revocation: RevocationJson,
}

impl fmt::Display for TrustReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trusted:    yes, at {}", self.at)?;
        writeln!(f, "root:       {}", self.root)?;
        write!(f, "revocation: {}", self.revocation.text)
    }
}

#[derive(Debug, Serialize)]
struct RootJson {
    label: String,
    hierarchy: &'static str,
    purpose: Option<&'static str>,
    generation: Option<u8>,
    sha256: String,
    subject: String,
}

impl From<&MatchedRoot> for RootJson {
    fn from(r: &MatchedRoot) -> Self {
        RootJson {
            label: r.label.clone(),
            hierarchy: r.hierarchy.as_str(),
            purpose: r.purpose.map(|p| p.as_str()),
            generation: r.generation,
            sha256: hex::encode(r.sha256),
            subject: r.subject.clone(),
        }
    }
}

impl fmt::Display for RootJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.label, self.hierarchy)?;
        if let Some(g) = self.generation {
            write!(f, ", generation {g}")?;
        }
        write!(f, ")")
    }
}

#[derive(Debug, Serialize)]
struct RevocationJson {
    status: &'static str,
    reason: Option<&'static str>,
    date: Option<String>,
    text: String,
}

impl From<&RevocationStatus> for RevocationJson {
    fn from(s: &RevocationStatus) -> Self {
        let (status, reason, date) = match s {
            RevocationStatus::Good { .. } => ("good", None, None),
            RevocationStatus::Revoked { reason, date } => (
                "revoked",
                reason.map(|r| r.as_str()),
                Some(format_rfc3339(*date)),
            ),
            _ => ("unchecked", None, None),
        };
        RevocationJson {
            status,
            reason,
            date,
            text: s.to_string(),
        }
    }
}

/// `cert inspect` output.
#[derive(Debug, Serialize)]
struct Inspection {
    kind: &'static str,
    hierarchy: &'static str,
    serial: String,
    issuer: String,
    subject: String,
    not_before: String,
    not_after: String,
    key_usage: Vec<&'static str>,
    ca: bool,
    sha256: String,
    personal_data: Option<PersonalJson>,
    /// The root whose key made the signature (identification, not a trust decision).
    matched_root: Option<RootJson>,
}

impl Inspection {
    fn new(cert: &JpkiCertificate, policy: &TrustPolicy) -> Self {
        Inspection {
            kind: cert.kind().as_str(),
            hierarchy: cert.hierarchy().as_str(),
            serial: cert.serial_hex(),
            issuer: cert.issuer_text(),
            subject: cert.subject_text(),
            not_before: format_rfc3339(cert.not_before()),
            not_after: format_rfc3339(cert.not_after()),
            key_usage: cert.key_usage().map(|k| k.names()).unwrap_or_default(),
            ca: cert.is_ca(),
            sha256: hex::encode(cert.sha256_fingerprint()),
            personal_data: cert.personal_data().map(PersonalJson::from),
            matched_root: identify_issuer(cert, policy).as_ref().map(RootJson::from),
        }
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<15}{} ({})", "kind:", self.kind, self.hierarchy)?;
        writeln!(f, "{:<15}{}", "serial:", self.serial)?;
        writeln!(f, "{:<15}{}", "issuer:", self.issuer)?;
        writeln!(f, "{:<15}{}", "subject:", self.subject)?;
        writeln!(f, "{:<15}{}", "not before:", self.not_before)?;
        writeln!(f, "{:<15}{}", "not after:", self.not_after)?;
        writeln!(f, "{:<15}{}", "key usage:", self.key_usage.join(", "))?;
        writeln!(f, "{:<15}{}", "sha256:", self.sha256)?;
        if let Some(p) = &self.personal_data {
            write!(f, "{p}")?;
        }
        match (&self.matched_root, self.hierarchy) {
            (Some(r), _) => write!(f, "{:<15}{r}", "signed by:"),
            (None, "test") => write!(
                f,
                "{:<15}no known root (give its --test-root)",
                "signed by:"
            ),
            (None, _) => write!(f, "{:<15}no known root", "signed by:"),
        }
    }
}

#[derive(Debug, Serialize)]
struct PersonalJson {
    name: Option<ValueJson>,
    name_substitute: Option<ValueJson>,
    sex: Option<SexJson>,
    birth_date: Option<BirthDateJson>,
    address: Option<ValueJson>,
    address_substitute: Option<ValueJson>,
    unrecognized: Vec<UnrecognizedJson>,
    directory_names: Vec<String>,
}

/// A value as text, or as hex DER when it was not a string.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ValueJson {
    Text(String),
    Raw { der_hex: String },
}

impl From<&PersonalValue> for ValueJson {
    fn from(v: &PersonalValue) -> Self {
        match (v.as_text(), v.as_raw()) {
            (Some(t), _) => ValueJson::Text(t.to_owned()),
            (None, raw) => ValueJson::Raw {
                der_hex: hex::encode(raw.unwrap_or_default()),
            },
        }
    }
}

impl fmt::Display for ValueJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueJson::Text(t) => f.write_str(t),
            ValueJson::Raw { der_hex } => write!(f, "(not text) {der_hex}"),
        }
    }
}

#[derive(Debug, Serialize)]
struct SexJson {
    code: Option<String>,
    meaning: &'static str,
}

#[derive(Debug, Serialize)]
struct BirthDateJson {
    /// `EYYYYMMDD` as found (or the unrecognised value).
    code: Option<String>,
    era: Option<&'static str>,
    era_digit: Option<u8>,
    era_year: Option<u16>,
    date: Option<String>,
}

#[derive(Debug, Serialize)]
struct UnrecognizedJson {
    oid: String,
    value: ValueJson,
}

impl From<&PersonalData> for PersonalJson {
    fn from(p: &PersonalData) -> Self {
        PersonalJson {
            name: p.name().map(ValueJson::from),
            name_substitute: p.name_substitute().map(ValueJson::from),
            sex: p.sex().map(|s| SexJson {
                code: s.code().map(str::to_owned),
                meaning: s.as_str(),
            }),
            birth_date: p.birth_date().map(|b| match b {
                BirthDate::Date(d) => BirthDateJson {
                    code: Some(d.to_code()),
                    era: d.era().name_ja(),
                    era_digit: Some(d.era().digit()),
                    era_year: d.era_year(),
                    date: Some(d.to_iso8601()),
                },
                BirthDate::Unrecognized(v) => BirthDateJson {
                    code: v.as_text().map(str::to_owned),
                    era: None,
                    era_digit: None,
                    era_year: None,
                    date: None,
                },
            }),
            address: p.address().map(ValueJson::from),
            address_substitute: p.address_substitute().map(ValueJson::from),
            unrecognized: p
                .unrecognized()
                .iter()
                .map(|u| UnrecognizedJson {
                    oid: u.oid.to_string(),
                    value: ValueJson::from(&u.value),
                })
                .collect(),
            directory_names: p.directory_names().map(str::to_owned).collect(),
        }
    }
}

impl fmt::Display for PersonalJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |f: &mut fmt::Formatter<'_>, label: &str, v: &Option<ValueJson>| match v {
            Some(v) => writeln!(f, "{label:<15}{v}"),
            None => Ok(()),
        };
        line(f, "name:", &self.name)?;
        line(f, "name (alt):", &self.name_substitute)?;
        if let Some(s) = &self.sex {
            writeln!(
                f,
                "{:<15}{} ({})",
                "sex:",
                s.code.as_deref().unwrap_or("?"),
                s.meaning
            )?;
        }
        if let Some(b) = &self.birth_date {
            match (&b.date, b.era, b.era_year) {
                (Some(d), Some(era), Some(y)) => {
                    writeln!(f, "{:<15}{d} ({era} {y})", "birth date:")?
                }
                (Some(d), _, _) => writeln!(f, "{:<15}{d}", "birth date:")?,
                _ => writeln!(
                    f,
                    "{:<15}{} (unrecognised)",
                    "birth date:",
                    b.code.as_deref().unwrap_or("?")
                )?,
            }
        }
        line(f, "address:", &self.address)?;
        line(f, "address (alt):", &self.address_substitute)?;
        for u in &self.unrecognized {
            writeln!(f, "{:<15}{} = {}", "other:", u.oid, u.value)?;
        }
        Ok(())
    }
}

/// The first time a certificate time can be (and a check be made at).
const FIRST_CERTIFICATE_TIME: &str = "1970-01-01T00:00:00Z";
/// The last time a certificate time can be: X.509's GeneralizedTime ends with year 9999.
const LAST_CERTIFICATE_TIME: &str = "9999-12-31T23:59:59Z";
/// [`LAST_CERTIFICATE_TIME`] in seconds since 1970.
const LAST_CERTIFICATE_UNIX: i64 = 253_402_300_799;

/// Parses an RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `t`/`z` and a space for
/// `T` are accepted. Fractions of a second are dropped.
pub(crate) fn parse_rfc3339(s: &str) -> Result<SystemTime, String> {
    let bad = || format!("{s:?} is not an RFC 3339 time such as 2024-05-01T00:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let sep_ok = b[4] == b'-'
        && b[7] == b'-'
        && matches!(b[10], b'T' | b't' | b' ')
        && b[13] == b':'
        && b[16] == b':';
    if !sep_ok {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && rest.is_ascii()
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let digits = |r: &str| -> Result<i64, String> {
                if r.bytes().all(|c| c.is_ascii_digit()) {
                    r.parse().map_err(|_| bad())
                } else {
                    Err(bad())
                }
            };
            let (hh, mm) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            if hh > 23 || mm > 59 {
                return Err(bad());
            }
            sign * (hh * 3600 + mm * 60)
        }
        _ => return Err(bad()),
    };
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap(year) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    // Days from 1970-01-01 (proleptic Gregorian; Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset;
    // A well-formed time, but outside what certificate times (der's DateTime) can express.
    let out_of_range = |side: &str| {
        format!(
            "{s:?} is {side}, outside the range of certificate times \
             ({FIRST_CERTIFICATE_TIME} to {LAST_CERTIFICATE_TIME})"
        )
    };
    if secs > LAST_CERTIFICATE_UNIX {
        return Err(out_of_range(&format!("after {LAST_CERTIFICATE_TIME}")));
    }
    let secs = u64::try_from(secs)
        .map_err(|_| out_of_range(&format!("before {FIRST_CERTIFICATE_TIME}")))?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        let t = |s| parse_rfc3339(s).map(format_rfc3339);
        assert_eq!(t("2024-05-01T00:00:00Z").unwrap(), "2024-05-01T00:00:00Z");
        assert_eq!(
            t("2024-05-01T09:00:00+09:00").unwrap(),
            "2024-05-01T00:00:00Z"
        );
        assert_eq!(
            t("2024-02-29 23:59:59.999-01:30").unwrap(),
            "2024-03-01T01:29:59Z"
        );
        assert_eq!(t("1970-01-01T00:00:00z").unwrap(), "1970-01-01T00:00:00Z");
        for bad in [
            "2024-05-01",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T00:00:00",
            "2024-05-01T00:00:00+9:00",
            "２024-05-01T00:00:00Z",
            "2024-05-01T00:00:00＋09",
            "2024-05-01T00:00:00+-9:00",
        ] {
            let err = parse_rfc3339(bad).unwrap_err();
            assert!(err.contains("is not an RFC 3339 time"), "{bad}: {err}");
        }
        // Well formed, but out of the range: the message says so, with the range.
        for (early, side) in [
            ("1969-12-31T23:59:59Z", "before 1970-01-01T00:00:00Z"),
            ("1900-01-01T00:00:00Z", "before 1970-01-01T00:00:00Z"),
            ("1970-01-01T00:00:00+00:01", "before 1970-01-01T00:00:00Z"),
            ("9999-12-31T23:59:59-00:01", "after 9999-12-31T23:59:59Z"),
        ] {
            let err = parse_rfc3339(early).unwrap_err();
            assert!(err.contains(side), "{early}: {err}");
            assert!(
                err.contains("(1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z)"),
                "{err}"
            );
        }
        assert_eq!(
            t("9999-12-31T23:59:59Z").unwrap(),
            LAST_CERTIFICATE_TIME,
            "the last time is in the range"
        );
        assert_eq!(
            format_rfc3339(UNIX_EPOCH + Duration::from_secs(LAST_CERTIFICATE_UNIX as u64)),
            LAST_CERTIFICATE_TIME
        );
    }
}
