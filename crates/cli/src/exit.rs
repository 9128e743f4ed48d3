//! Exit codes of the `mynacard` command and the error type that carries them.
//!
//! The codes are part of the command's interface: kiosk and ATM integrators branch on them, so a
//! code is never reused for another meaning. New codes are added at the end.

use std::error::Error;
use std::fmt;

/// The documented exit codes of `mynacard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ExitCode {
    /// 0: the command did what was asked.
    Success = 0,
    /// 1: a failure with no more specific code.
    Failure = 1,
    /// 2: the command line was wrong (clap's own usage errors use this code too).
    Usage = 2,
    /// 3: no reader, no card, or the card was removed.
    CardAbsent = 3,
    /// 4: the card rejected the PIN or password and tries remain.
    WrongPin = 4,
    /// 5: the PIN or password is blocked.
    PinBlocked = 5,
    /// 6: a certificate or signature did not verify.
    VerificationFailed = 6,
    /// 7: the registration or eligibility service failed or refused.
    ServiceError = 7,
    /// 8: the service accepted the registration but had not finished it when the wait ended.
    StillPending = 8,
    /// 9: the request reached the service and its answer was lost: it may have been done.
    OutcomeUnknown = 9,
}

impl ExitCode {
    /// Every code, in numeric order.
    pub(crate) const ALL: [ExitCode; 10] = [
        ExitCode::Success,
        ExitCode::Failure,
        ExitCode::Usage,
        ExitCode::CardAbsent,
        ExitCode::WrongPin,
        ExitCode::PinBlocked,
        ExitCode::VerificationFailed,
        ExitCode::ServiceError,
        ExitCode::StillPending,
        ExitCode::OutcomeUnknown,
    ];

    /// What the code means, as documented in `--help` and the README.
    pub(crate) const fn description(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Failure => "general failure (anything not listed below)",
            ExitCode::Usage => {
                "usage error or bad input: unknown option, missing or malformed argument (e.g. \
                 bad HEX), an option this command cannot honour, an input file or stdin that \
                 cannot be read, is over its size bound or is not what it should be, no \
                 terminal to prompt on"
            }
            ExitCode::CardAbsent => {
                "card absent: no reader, no card in the reader, or the card was removed"
            }
            ExitCode::WrongPin => "wrong PIN: the card rejected the PIN or password; tries remain",
            ExitCode::PinBlocked => {
                "PIN blocked: no tries remain (unblock at the municipal office)"
            }
            ExitCode::VerificationFailed => {
                "verification failed: a certificate or signature did not verify"
            }
            ExitCode::ServiceError => {
                "service error: the registration or eligibility service failed or refused"
            }
            ExitCode::StillPending => {
                "still pending: the service accepted the registration and finishes it later; \
                 `register --resume` waits for it"
            }
            ExitCode::OutcomeUnknown => {
                "outcome unknown: the request was sent and the service stopped answering; it \
                 may have been done (the message says how to find out)"
            }
        }
    }

    /// The process exit status.
    pub(crate) const fn code(self) -> u8 {
        self as u8
    }

    /// A stable machine-readable name, used as `error.kind` in JSON output.
    pub(crate) const fn kind(self) -> &'static str {
        match self {
            ExitCode::Success => "success",
            ExitCode::Failure => "failure",
            ExitCode::Usage => "usage",
            ExitCode::CardAbsent => "card_absent",
            ExitCode::WrongPin => "wrong_pin",
            ExitCode::PinBlocked => "pin_blocked",
            ExitCode::VerificationFailed => "verification_failed",
            ExitCode::ServiceError => "service_error",
            ExitCode::StillPending => "still_pending",
            ExitCode::OutcomeUnknown => "outcome_unknown",
        }
    }
}

/// The exit-code table shown at the end of `mynacard --help`.
pub(crate) fn help_text() -> String {
    let mut text = String::from("Exit codes:\n");
    for code in ExitCode::ALL {
        text.push_str(&format!("  {}  {}\n", code.code(), code.description()));
    }
    text.push_str(
        "\nWith --json, stdout carries exactly one JSON document, also on failure:\n  \
         {\"error\": {\"kind\": ..., \"exit_code\": ..., \"message\": ..., \"causes\": [...]}}",
    );
    text
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code.code())
    }
}

/// A failed command: what to tell the user, which exit code to end with, and the underlying error.
#[derive(Debug)]
pub(crate) struct CliError {
    code: ExitCode,
    message: String,
    source: Option<Box<dyn Error + Send + Sync + 'static>>,
    /// The command's result is already on stdout (it says what happened): with --json no
    /// error document follows, so stdout still carries exactly one document.
    result_printed: bool,
}

impl CliError {
    /// A failure with an explicit exit code.
    pub(crate) fn new(code: ExitCode, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
            source: None,
            result_printed: false,
        }
    }

    /// A usage error (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        CliError::new(ExitCode::Usage, message)
    }

    /// Keeps the error that caused this one; its chain is shown to the user.
    #[must_use]
    pub(crate) fn with_source(mut self, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Puts `prefix` (the option that named the input, say) before the message.
    #[must_use]
    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }

    /// Marks the command's result as printed already: with --json the error adds no document
    /// of its own (the printed result is the one), without it the message still goes to stderr.
    #[must_use]
    pub(crate) fn after_printed_result(mut self) -> Self {
        self.result_printed = true;
        self
    }

    /// Whether the command's result was printed before this error.
    pub(crate) fn result_printed(&self) -> bool {
        self.result_printed
    }

    /// The exit code this error ends the process with.
    pub(crate) fn exit_code(&self) -> ExitCode {
        self.code
    }

    /// The messages of the source chain, outermost first (this error's own message excluded).
    pub(crate) fn causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut next = self.source();
        while let Some(err) = next {
            out.push(err.to_string());
            next = err.source();
        }
        out
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for CliError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        CliError::new(ExitCode::Failure, "input/output error").with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_documented() {
        let help = help_text();
        for (i, a) in ExitCode::ALL.iter().enumerate() {
            assert_eq!(
                usize::from(a.code()),
                i,
                "codes are 0.. in declaration order"
            );
            let line = format!("  {}  {}", a.code(), a.description());
            assert!(help.contains(&line), "code {} missing from help", a.code());
            for b in &ExitCode::ALL[i + 1..] {
                assert_ne!(a.kind(), b.kind());
            }
        }
    }

    #[test]
    fn causes_follow_the_source_chain() {
        let inner = std::io::Error::other("disk on fire");
        let err = CliError::usage("bad input").with_source(inner);
        assert_eq!(err.exit_code(), ExitCode::Usage);
        assert_eq!(err.to_string(), "bad input");
        assert_eq!(err.causes(), vec!["disk on fire".to_owned()]);
    }
}
