//! Printing results: readable text, or exactly one JSON document on stdout with `--json`.
//!
//! Commands build a value that is both [`Serialize`] (the JSON form) and [`fmt::Display`] (the
//! readable form) and hand it to [`Output::print`]. Nothing else in the command writes to stdout,
//! which is what keeps `--json` output a single document.

use std::fmt;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;

use crate::exit::CliError;

/// Where and how results and errors are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    json: bool,
}

impl Output {
    /// Readable output, or JSON when `json` is set.
    pub(crate) fn new(json: bool) -> Self {
        Output { json }
    }

    /// Whether `--json` is in effect.
    #[allow(dead_code)] // for commands that print progress to stderr only in readable mode
    pub(crate) fn is_json(&self) -> bool {
        self.json
    }

    /// Prints a command's result: its JSON document or its readable form, to stdout.
    ///
    /// # Errors
    /// A write error other than a closed pipe (a closed pipe means the reader has gone, which is
    /// not a failure of the command).
    pub(crate) fn print<T: Serialize + fmt::Display>(&self, value: &T) -> Result<(), CliError> {
        let text = if self.json {
            serde_json::to_string_pretty(value).map_err(|e| {
                CliError::new(crate::exit::ExitCode::Failure, "cannot encode JSON output")
                    .with_source(e)
            })?
        } else {
            value.to_string()
        };
        write_line(&mut io::stdout().lock(), &text)
    }

    /// Reports a failed command: one JSON document on stdout with `--json` (none when the
    /// command's result was printed instead), readable lines on stderr otherwise.
    pub(crate) fn error(&self, err: &CliError) {
        let _ = if self.json && err.result_printed() {
            Ok(())
        } else if self.json {
            write_line(&mut io::stdout().lock(), &error_document(err))
        } else {
            write_line(&mut io::stderr().lock(), &error_text(err))
        };
    }
}

/// The JSON document of an error.
pub(crate) fn error_document(err: &CliError) -> String {
    let code = err.exit_code();
    let doc = json!({
        "error": {
            "kind": code.kind(),
            "exit_code": code.code(),
            "message": err.to_string(),
            "causes": err.causes(),
        }
    });
    // A `Value` built from strings and integers always serializes.
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// The readable form of an error.
fn error_text(err: &CliError) -> String {
    let mut text = format!("error: {err}");
    for cause in err.causes() {
        text.push_str("\n  caused by: ");
        text.push_str(&cause);
    }
    text
}

fn write_line(w: &mut impl Write, text: &str) -> Result<(), CliError> {
    match writeln!(w, "{text}").and_then(|()| w.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::ExitCode;

    #[test]
    fn error_document_is_one_json_object_with_code_and_causes() {
        let err = CliError::new(ExitCode::PinBlocked, "PIN blocked")
            .with_source(io::Error::other("63C0"));
        let doc: serde_json::Value = serde_json::from_str(&error_document(&err)).unwrap();
        assert_eq!(doc["error"]["kind"], "pin_blocked");
        assert_eq!(doc["error"]["exit_code"], 5);
        assert_eq!(doc["error"]["message"], "PIN blocked");
        assert_eq!(doc["error"]["causes"][0], "63C0");
    }

    #[test]
    fn error_text_lists_causes() {
        let err = CliError::usage("bad HEX").with_source(io::Error::other("odd length"));
        assert_eq!(error_text(&err), "error: bad HEX\n  caused by: odd length");
    }
}
