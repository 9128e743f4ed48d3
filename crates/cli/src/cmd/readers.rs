//! `mynacard readers`: the PC/SC readers and what each holds.
//!
//! With `--wait-card`, first waits (up to `--timeout`) for a card in the `--reader` or in any
//! reader, saying so on stderr.

use std::fmt;

use clap::Args;
use mynacard_pcsc::{CardPresence, ReaderInfo, detect_interface, list_readers};
use mynacard_transport::Interface;
use serde::Serialize;

use crate::cmd::card_select::{CardOptions, pcsc_unavailable, wait_for_card};
use crate::exit::CliError;
use crate::output::Output;

/// Arguments of `mynacard readers`.
#[derive(Debug, Args)]
pub(crate) struct ReadersArgs {
    /// Wait until a card is in the reader given with --reader (or in any reader) before listing.
    #[arg(long)]
    wait_card: bool,
}

/// One reader as printed.
#[derive(Debug, Serialize)]
struct ReaderRow {
    name: String,
    /// `present`, `mute`, `empty` or `unavailable`.
    card: &'static str,
    /// The ATR in hex, when a card is there.
    atr: Option<String>,
    /// `contact`, `contactless` or `unknown`, guessed from the ATR and the reader name.
    interface: Option<&'static str>,
    in_use: bool,
    exclusive: bool,
}

/// The list as printed.
#[derive(Debug, Serialize)]
struct Readers {
    readers: Vec<ReaderRow>,
}

fn presence(p: CardPresence) -> &'static str {
    match p {
        CardPresence::Present => "present",
        CardPresence::Mute => "mute",
        CardPresence::Empty => "empty",
        _ => "unavailable",
    }
}

fn row(info: ReaderInfo) -> ReaderRow {
    let has_card = matches!(info.card, CardPresence::Present | CardPresence::Mute);
    let interface = has_card.then(|| match detect_interface(&info.atr, &info.name) {
        Interface::Contact => "contact",
        Interface::Contactless => "contactless",
        _ => "unknown",
    });
    ReaderRow {
        card: presence(info.card),
        atr: has_card.then(|| hex::encode_upper(&info.atr)),
        interface,
        in_use: info.in_use,
        exclusive: info.exclusive,
        name: info.name,
    }
}

impl fmt::Display for Readers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.readers.is_empty() {
            return write!(f, "no PC/SC readers");
        }
        for (i, r) in self.readers.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: card {}", r.name, r.card)?;
            if let Some(interface) = r.interface {
                write!(f, " ({interface})")?;
            }
            if let Some(atr) = &r.atr {
                write!(f, ", ATR {atr}")?;
            }
            if r.exclusive {
                write!(f, ", held exclusively by another program")?;
            } else if r.in_use {
                write!(f, ", in use")?;
            }
        }
        Ok(())
    }
}

/// Runs `mynacard readers`.
pub(crate) fn run(card: &CardOptions, args: &ReadersArgs, out: &Output) -> Result<(), CliError> {
    if args.wait_card {
        wait_for_card(card.reader(), card.wait_limit())?;
    }
    let readers = list_readers().map_err(pcsc_unavailable)?;
    out.print(&Readers {
        readers: readers.into_iter().map(row).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_say_what_is_in_each_reader() {
        let listed = Readers {
            readers: vec![
                ReaderRow {
                    name: "Virtual PCD 00 00".into(),
                    card: "present",
                    atr: Some("3BE000FF8131FE4514".into()),
                    interface: Some("contact"),
                    in_use: true,
                    exclusive: false,
                },
                ReaderRow {
                    name: "Virtual PCD 00 01".into(),
                    card: "empty",
                    atr: None,
                    interface: None,
                    in_use: false,
                    exclusive: false,
                },
            ],
        };
        assert_eq!(
            listed.to_string(),
            "Virtual PCD 00 00: card present (contact), ATR 3BE000FF8131FE4514, in use\n\
             Virtual PCD 00 01: card empty"
        );
        let json = serde_json::to_value(&listed).unwrap();
        assert_eq!(json["readers"][1]["card"], "empty");
        assert!(json["readers"][1]["atr"].is_null());
        assert_eq!(Readers { readers: vec![] }.to_string(), "no PC/SC readers");
    }
}
