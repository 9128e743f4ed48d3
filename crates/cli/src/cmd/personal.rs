//! The two personal-data applications: `mynacard visual face` (券面事項確認AP, opened with
//! 照合番号B) and `mynacard text attributes` (券面事項入力補助AP, opened with the PIN). Each
//! record is checked under its application's card-verifiable certificate (CVC), and that
//! certificate under the J-LIS authority: production only, unless `--allow-test-roots` (the
//! J-LIS test authorities and the simulated card's). A record that does not verify, or whose
//! certificate is not anchored, is printed with its status and exits 6.
//!
//! The individual number is not read by either command.

use std::fmt;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use mynacard_card::cvc::{Anchor, Checked, CvcHierarchy, CvcTrust};
use mynacard_card::visual::CardFace;
use mynacard_card::{CollationB, Pin};
use mynacard_transport::blocking::block_on;
use serde::Serialize;

use crate::cmd::card::PinArgs;
use crate::cmd::card_select::{CardOptions, SecretInput, card_error, open_session};
use crate::exit::{CliError, ExitCode};
use crate::output::Output;

/// What opens the records, and which authorities are trusted.
#[derive(Debug, Args)]
pub(crate) struct RecordArgs {
    #[command(flatten)]
    pin: PinArgs,

    /// Also trust the CVC test authorities: J-LIS test cards and the simulated card.
    #[arg(long)]
    allow_test_roots: bool,
}

impl RecordArgs {
    fn trust(&self) -> Result<CvcTrust, CliError> {
        if !self.allow_test_roots {
            return Ok(CvcTrust::production());
        }
        mynacard_registry::options::simulator_cvc_trust().map_err(|e| {
            CliError::new(ExitCode::Failure, "cannot build the test CVC trust").with_source(e)
        })
    }
}

/// `mynacard visual …`
#[derive(Debug, Subcommand)]
pub(crate) enum VisualCommand {
    /// The card face (opened with 照合番号B): birth date, sex, expiry, the record's signature and
    /// certificate; with --out-dir, the photo and the name, address and security-code images.
    Face(FaceArgs),
}

/// Arguments of `mynacard visual face`.
#[derive(Debug, Args)]
pub(crate) struct FaceArgs {
    #[command(flatten)]
    record: RecordArgs,

    /// Write the photo (`photo.jp2`), `name.png`, `address.png` and `security-code.png` here
    /// (created if missing). They show the person: keep them as you would the card.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// `mynacard text …`
#[derive(Debug, Subcommand)]
pub(crate) enum TextCommand {
    /// The four attributes (opened with the text AP PIN): name, address, birth date, sex, and
    /// the integrity record's status.
    Attributes(RecordArgs),
}

/// How a record's signature and certificate came out.
#[derive(Debug, Serialize)]
struct RecordStatus {
    /// `verified`: the record verified under the certificate's key, and the certificate under a
    /// trusted authority; `unanchored`: the record verified, the certificate did not.
    status: &'static str,
    /// The certificate's issuer key id (`6000023/001`).
    cvc_issuer: String,
    /// The certificate's subject key id.
    cvc_subject: String,
    /// `production` or `test`, when the certificate verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    hierarchy: Option<&'static str>,
    /// Why the certificate is not anchored.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl<T> From<&Checked<T>> for RecordStatus {
    fn from(checked: &Checked<T>) -> Self {
        let (status, hierarchy, reason) = match &checked.anchor {
            Anchor::Trusted(trusted) => (
                "verified",
                Some(match trusted.hierarchy {
                    CvcHierarchy::Production => "production",
                    CvcHierarchy::Test => "test",
                }),
                None,
            ),
            Anchor::Unanchored(refusal) => ("unanchored", None, Some(refusal.to_string())),
        };
        RecordStatus {
            status,
            cvc_issuer: checked.cvc.issuer().to_string(),
            cvc_subject: checked.cvc.subject().to_string(),
            hierarchy,
            reason,
        }
    }
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (certificate {} issued by {}",
            self.status, self.cvc_subject, self.cvc_issuer
        )?;
        if let Some(h) = self.hierarchy {
            write!(f, ", {h} hierarchy")?;
        }
        if let Some(r) = &self.reason {
            write!(f, ": {r}")?;
        }
        f.write_str(")")
    }
}

/// What `mynacard visual face` prints.
#[derive(Debug, Serialize)]
struct FaceReport {
    birth_date: String,
    sex: &'static str,
    expiry: String,
    record: RecordStatus,
    /// Files written with --out-dir.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<String>,
}

impl fmt::Display for FaceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "birth date: {}", self.birth_date)?;
        writeln!(f, "sex:        {}", self.sex)?;
        writeln!(
            f,
            "expiry:     {} (not covered by the signature)",
            self.expiry
        )?;
        write!(f, "record:     {}", self.record)?;
        for file in &self.files {
            write!(f, "\nwrote {file}")?;
        }
        Ok(())
    }
}

/// What `mynacard text attributes` prints.
#[derive(Debug, Serialize)]
struct AttributesReport {
    name: String,
    address: String,
    birth_date: String,
    sex: &'static str,
    integrity: RecordStatus,
}

impl fmt::Display for AttributesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "name:       {}", self.name)?;
        writeln!(f, "address:    {}", self.address)?;
        writeln!(f, "birth date: {}", self.birth_date)?;
        writeln!(f, "sex:        {}", self.sex)?;
        write!(f, "integrity:  {}", self.integrity)
    }
}

/// Prints the report; exit 6 when the record's certificate is not anchored.
fn print_checked<R: Serialize + fmt::Display>(
    out: &Output,
    report: &R,
    trusted: bool,
) -> Result<(), CliError> {
    out.print(report)?;
    if trusted {
        Ok(())
    } else {
        Err(CliError::new(
            ExitCode::VerificationFailed,
            "the record's certificate is not anchored in a trusted authority",
        )
        .after_printed_result())
    }
}

/// Runs `mynacard visual …`.
pub(crate) fn run_visual(
    card: &CardOptions,
    command: VisualCommand,
    out: &Output,
) -> Result<(), CliError> {
    let VisualCommand::Face(args) = command;
    let trust = args.record.trust()?;
    let mut input = SecretInput::new(args.record.pin.pin_stdin);
    let digits = input.read("照合番号B (14 digits)")?;
    let code = CollationB::from_digits(&digits)
        .map_err(|e| CliError::usage("照合番号B: expected 14 digits").with_source(e))?;
    drop(digits);
    let mut session = open_session(card)?;
    let checked = block_on(async {
        let mut visual = session.visual().await?;
        let mut verified = visual
            .verify_collation_b(&code, args.record.pin.policy())
            .await?;
        verified.read_face_checked(&trust).await
    })
    .map_err(card_error)?;
    let files = match &args.out_dir {
        Some(dir) => write_images(dir, &checked.record)?,
        None => Vec::new(),
    };
    let face = &checked.record;
    let report = FaceReport {
        birth_date: face.birth_date.to_string(),
        sex: face.sex.as_str(),
        expiry: face.expiry.to_string(),
        record: RecordStatus::from(&checked),
        files,
    };
    print_checked(out, &report, checked.is_trusted())
}

/// The JPEG 2000 file signature box (ISO/IEC 15444-1 I.5.1).
const JP2_SIGNATURE: [u8; 12] = [
    0, 0, 0, 0x0C, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A,
];

fn write_images(dir: &Path, face: &CardFace) -> Result<Vec<String>, CliError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(
            ExitCode::Failure,
            format!("cannot create {}", dir.display()),
        )
        .with_source(e)
    })?;
    // Real cards hold a JPEG 2000 photo; anything else keeps a neutral name.
    let photo = if face.photo.starts_with(&JP2_SIGNATURE) {
        "photo.jp2"
    } else {
        "photo.bin"
    };
    let mut written = Vec::new();
    for (name, bytes) in [
        (photo, &face.photo),
        ("name.png", &face.name_image),
        ("address.png", &face.address_image),
        ("security-code.png", &face.security_code_image),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| {
            CliError::new(
                ExitCode::Failure,
                format!("cannot write {}", path.display()),
            )
            .with_source(e)
        })?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

/// Runs `mynacard text …`.
pub(crate) fn run_text(
    card: &CardOptions,
    command: TextCommand,
    out: &Output,
) -> Result<(), CliError> {
    let TextCommand::Attributes(args) = command;
    let trust = args.trust()?;
    let mut input = SecretInput::new(args.pin.pin_stdin);
    let text = input.read("text AP PIN")?;
    let pin = Pin::new(&text)
        .map_err(|e| CliError::usage("text AP PIN: expected 4 digits").with_source(e))?;
    drop(text);
    let mut session = open_session(card)?;
    let checked = block_on(async {
        let mut ap = session.text().await?;
        let mut verified = ap.verify_pin(&pin, args.pin.policy()).await?;
        verified.read_attributes_checked(&trust).await
    })
    .map_err(card_error)?;
    let a = &checked.record;
    let report = AttributesReport {
        name: a.name.clone(),
        address: a.address.clone(),
        birth_date: a.birth_date.to_string(),
        sex: a.sex.as_str(),
        integrity: RecordStatus::from(&checked),
    };
    print_checked(out, &report, checked.is_trusted())
}
