//! `mynacard verify`: check a signature over a file and the trust of its signer.
//!
//! The signature is a CMS `SignedData` (detached or attached; DER) or a raw PKCS#1 v1.5
//! signature, which needs `--cert`. The signer's certificate must then chain to a J-LIS root (or,
//! with `--allow-test-roots`, a given test root) at `--at` (default now) and not be revoked on the
//! given CRLs. Exit 0 only when all of that holds.

use std::fmt;
use std::path::PathBuf;

use clap::Args;
use mynacard_cert::{JpkiCertificate, format_rfc3339};
use mynacard_sign::{
    HashAlgorithm,
    cms::{is_signed_data, verify_cms},
    verify_pkcs1v15_message,
};
use serde::Serialize;

use crate::cmd::cert::{TrustArgs, TrustReport, check_trust, read_certificate};
use crate::cmd::sign::HashChoice;
use crate::exit::{CliError, ExitCode};
use crate::input::{self, read_bounded};
use crate::output::Output;

/// Arguments of `mynacard verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The signed file (for an attached CMS message, the content it must carry).
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,

    /// The signature: CMS (DER) or a raw RSA signature.
    #[arg(long, value_name = "FILE")]
    sig: PathBuf,

    /// The signer's certificate (DER or PEM): required for a raw signature, optional for CMS
    /// (which normally carries it).
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,

    /// Hash of a raw signature.
    #[arg(long, value_enum, default_value = "sha256")]
    hash: HashChoice,

    #[command(flatten)]
    trust: TrustArgs,
}

/// Runs `mynacard verify`.
pub(crate) fn run(args: VerifyArgs, out: &Output) -> Result<(), CliError> {
    let content = read_bounded(&args.input, input::CONTENT)?;
    let sig = read_bounded(&args.sig, input::SIGNATURE)?;
    let given: Vec<JpkiCertificate> = match &args.cert {
        Some(path) => vec![read_certificate(path)?],
        None => Vec::new(),
    };
    let bad = |what: &str| CliError::new(ExitCode::VerificationFailed, what.to_owned());

    let (format, hash, signer, signing_time) = if is_signed_data(&sig) {
        let checked = verify_cms(&sig, Some(&content), &given)
            .map_err(|e| bad("the CMS signature does not verify").with_source(e))?;
        (
            "cms",
            checked.hash,
            checked.signer,
            checked.signing_time.map(format_rfc3339),
        )
    } else {
        let Some(cert) = given.into_iter().next() else {
            return Err(CliError::usage(
                "the signature is not CMS; a raw signature needs --cert",
            ));
        };
        let hash = HashAlgorithm::from(args.hash);
        let key = cert.rsa_public_key().map_err(|e| {
            CliError::new(ExitCode::Failure, "the certificate's key is unusable").with_source(e)
        })?;
        verify_pkcs1v15_message(&key, hash, &content, &sig)
            .map_err(|e| bad("the signature does not verify").with_source(e))?;
        ("raw", hash, cert, None)
    };

    let trust = check_trust(&signer, &args.trust)?;
    out.print(&Verified {
        signature: "valid",
        format,
        hash: hash.name(),
        signer_kind: signer.kind().as_str(),
        signer_serial: signer.serial_hex(),
        signer_issuer: signer.issuer_text(),
        signing_time,
        certificate: trust,
    })
}

/// `mynacard verify` output.
#[derive(Debug, Serialize)]
struct Verified {
    signature: &'static str,
    format: &'static str,
    hash: &'static str,
    signer_kind: &'static str,
    signer_serial: String,
    signer_issuer: String,
    /// The signer's claimed signing time (CMS signing-time attribute), not a timestamp.
    signing_time: Option<String>,
    certificate: TrustReport,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "signature:  valid ({}, {})", self.format, self.hash)?;
        writeln!(
            f,
            "signer:     {} certificate, serial {}",
            self.signer_kind, self.signer_serial
        )?;
        if let Some(t) = &self.signing_time {
            writeln!(f, "signed at:  {t} (as claimed by the signer)")?;
        }
        write!(f, "{}", self.certificate)
    }
}
