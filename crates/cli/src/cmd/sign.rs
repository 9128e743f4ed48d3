//! `mynacard sign`: sign a file with one of the card's JPKI keys.
//!
//! The PIN (authentication key) or signing password (signing key) is prompted for without echo,
//! or read from stdin with `--pin-stdin`; the card's retry counter is read first and the last
//! try is not used unless `--allow-last-attempt` is given. Output is a CMS `SignedData` (attached,
//! or `--detached`) or the raw PKCS#1 v1.5 signature over the file's DigestInfo.

use std::fmt;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mynacard_card::{AttemptPolicy, Pin, SignPassword};
use mynacard_cert::JpkiCertificate;
use mynacard_sign::{
    DigestInfo, DigestInfoSigner, HashAlgorithm, SignerError,
    card::{CardSigner, CardSignerError, VerifiedKey},
    cms::{CmsError, CmsOptions, sign_cms},
};
use mynacard_transport::blocking::block_on;
use serde::Serialize;

use crate::cmd::card_select::{CardOptions, SecretInput, card_error, open_session};
use crate::exit::{CliError, ExitCode};
use crate::input::{self, read_bounded};
use crate::output::Output;

/// Which card key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyChoice {
    /// 利用者証明用: the authentication key, unlocked by the 4-digit PIN.
    Auth,
    /// 署名用: the signing key, unlocked by the signing password.
    Sign,
}

/// What `mynacard sign` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SignFormat {
    /// CMS SignedData (DER), with content-type, message-digest, signing-time and
    /// signing-certificate-v2 signed attributes.
    Cms,
    /// The bare RSA PKCS#1 v1.5 signature over the file's DigestInfo (256 bytes).
    Raw,
}

/// A hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum HashChoice {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl From<HashChoice> for HashAlgorithm {
    fn from(h: HashChoice) -> Self {
        match h {
            HashChoice::Sha256 => HashAlgorithm::Sha256,
            HashChoice::Sha384 => HashAlgorithm::Sha384,
            HashChoice::Sha512 => HashAlgorithm::Sha512,
        }
    }
}

/// Arguments of `mynacard sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The key to sign with.
    #[arg(long, value_enum)]
    key: KeyChoice,

    /// The file to sign.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,

    /// Where to write the signature.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,

    /// Output format.
    #[arg(long, value_enum, default_value = "cms")]
    format: SignFormat,

    /// Leave the content out of the CMS message (a signature file to keep next to FILE).
    #[arg(long)]
    detached: bool,

    /// Hash function.
    #[arg(long, value_enum, default_value = "sha256")]
    hash: HashChoice,

    /// Read the PIN or password from stdin (one line) instead of prompting.
    #[arg(long)]
    pin_stdin: bool,

    /// Allow the VERIFY when the card says only one try is left (a wrong PIN then blocks it).
    #[arg(long)]
    allow_last_attempt: bool,
}

enum Secret {
    Pin(Pin),
    Password(SignPassword),
}

/// Runs `mynacard sign`.
pub(crate) fn run(card: &CardOptions, args: SignArgs, out: &Output) -> Result<(), CliError> {
    if args.detached && args.format == SignFormat::Raw {
        return Err(CliError::usage("--detached applies to --format cms only"));
    }
    let content = read_bounded(&args.input, input::CONTENT)?;
    let hash = HashAlgorithm::from(args.hash);
    let policy = if args.allow_last_attempt {
        AttemptPolicy::AllowLastAttempt
    } else {
        AttemptPolicy::KeepLastAttempt
    };
    let mut session = open_session(card)?;
    let mut input = SecretInput::new(args.pin_stdin);
    let secret = match args.key {
        KeyChoice::Auth => {
            let text = input.read("Authentication PIN (4 digits)")?;
            Secret::Pin(Pin::new(&text).map_err(|e| {
                CliError::usage("the authentication PIN must be 4 digits").with_source(e)
            })?)
        }
        KeyChoice::Sign => {
            let text = input.read("Signing password")?;
            Secret::Password(SignPassword::new(&text).map_err(|e| {
                CliError::usage("the signing password must be 6-16 letters and digits")
                    .with_source(e)
            })?)
        }
    };

    let (signature, certificate) = block_on(async {
        let mut ap = session.jpki().await.map_err(card_error)?;
        let (key, cert) = match &secret {
            Secret::Pin(pin) => {
                let mut v = ap.verify_auth(pin, policy).await.map_err(card_error)?;
                let cert = v.read_auth_certificate().await.map_err(card_error)?;
                (VerifiedKey::Auth(v), cert)
            }
            Secret::Password(password) => {
                let mut v = ap.verify_sign(password, policy).await.map_err(card_error)?;
                let cert = v.read_sign_certificate().await.map_err(card_error)?;
                (VerifiedKey::Sign(v), cert)
            }
        };
        let cert = JpkiCertificate::from_der(cert.der()).map_err(|e| {
            CliError::new(ExitCode::Failure, "the card's certificate does not parse").with_source(e)
        })?;
        let signer = CardSigner::new(key, cert.clone());
        let signature = match args.format {
            SignFormat::Cms => {
                let options = CmsOptions {
                    detached: args.detached,
                    hash,
                    ..CmsOptions::default()
                };
                sign_cms(&content, &signer, &options)
                    .await
                    .map_err(cms_error)?
            }
            SignFormat::Raw => signer
                .sign_digest_info(&DigestInfo::of(hash, &content))
                .await
                .map_err(signer_error)?,
        };
        Ok::<_, CliError>((signature, cert))
    })?;

    std::fs::write(&args.out, &signature).map_err(|e| {
        CliError::new(
            ExitCode::Failure,
            format!("cannot write {}", args.out.display()),
        )
        .with_source(e)
    })?;
    out.print(&Signed {
        format: match args.format {
            SignFormat::Cms => "cms",
            SignFormat::Raw => "raw",
        },
        detached: args.detached,
        key: match args.key {
            KeyChoice::Auth => "auth",
            KeyChoice::Sign => "sign",
        },
        hash: hash.name(),
        input: args.input.display().to_string(),
        out: args.out.display().to_string(),
        bytes: signature.len(),
        signer_serial: certificate.serial_hex(),
        signer_issuer: certificate.issuer_text(),
    })
}

fn signer_error(e: SignerError) -> CliError {
    match e.into_inner().downcast::<CardSignerError>() {
        Ok(boxed) => match *boxed {
            CardSignerError::Card(card) => card_error(card),
            other => CliError::new(ExitCode::Failure, "signing failed").with_source(other),
        },
        Err(other) => CliError::new(ExitCode::Failure, "signing failed").with_source(other),
    }
}

fn cms_error(e: CmsError) -> CliError {
    match e {
        CmsError::Signer(s) => signer_error(s),
        other => {
            CliError::new(ExitCode::Failure, "cannot build the CMS message").with_source(other)
        }
    }
}

/// `mynacard sign` output.
#[derive(Debug, Serialize)]
struct Signed {
    format: &'static str,
    detached: bool,
    key: &'static str,
    hash: &'static str,
    #[serde(rename = "in")]
    input: String,
    out: String,
    bytes: usize,
    signer_serial: String,
    signer_issuer: String,
}

impl fmt::Display for Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match (self.format, self.detached) {
            ("cms", true) => "detached CMS signature",
            ("cms", false) => "CMS signed data",
            _ => "raw signature",
        };
        writeln!(f, "wrote {} ({} bytes) to {}", what, self.bytes, self.out)?;
        writeln!(f, "key:    {} ({})", self.key, self.hash)?;
        write!(
            f,
            "signer: serial {} under {}",
            self.signer_serial, self.signer_issuer
        )
    }
}
