//! `mynacard apdu`: explain APDU bytes.
//!
//! `decode` reads hex and says what it is: two bytes are a status word; anything else is tried as
//! a command APDU (case, class byte, instruction, parameters, lengths, and the application or
//! file it names), then as a response APDU. The data of commands that carry a PIN or password is
//! never printed.

use std::fmt;

use clap::{Args, Subcommand};
use mynacard_apdu::commands::{self, KeyRef};
use mynacard_apdu::{Case, Command, LengthEncoding, Parsed, Response, StatusCategory, StatusWord};
use mynacard_card::catalogue::{SignScheme, aid, common, jpki, text, visual};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::exit::CliError;
use crate::output::Output;

/// `mynacard apdu …`
#[derive(Debug, Subcommand)]
pub(crate) enum ApduCommand {
    /// Explain a command or response APDU given in hex.
    ///
    /// Exactly two bytes are read as a status word (SW1-SW2). Otherwise the bytes are read as a
    /// command APDU when they parse as one, and as a response APDU (data, SW1, SW2) otherwise;
    /// --response forces the latter. The data of VERIFY and other commands that carry a PIN is
    /// shown as redacted.
    Decode(DecodeArgs),
}

/// Arguments of `mynacard apdu decode`.
#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The APDU in hex, e.g. `00A4040C0AD392F000260100000001` or `"63 C2"`. Spaces and colons
    /// are ignored and the bytes may be split over several arguments; a leading 0x is allowed.
    #[arg(value_name = "HEX", required = true, num_args = 1..)]
    hex: Vec<String>,

    /// Decode as a response APDU (data followed by SW1-SW2) even if the bytes parse as a command.
    #[arg(long)]
    response: bool,
}

/// Runs `mynacard apdu …`.
pub(crate) fn run(command: ApduCommand, out: &Output) -> Result<(), CliError> {
    match command {
        ApduCommand::Decode(args) => {
            let bytes = parse_hex(&args.hex)?;
            out.print(&decode(&bytes, args.response)?)
        }
    }
}

/// Hex digits to bytes. Separators (whitespace, `:`) and a `0x` prefix per argument are allowed.
fn parse_hex(parts: &[String]) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut digits = Zeroizing::new(String::new());
    for part in parts {
        let part = part.trim();
        let part = part
            .strip_prefix("0x")
            .or_else(|| part.strip_prefix("0X"))
            .unwrap_or(part);
        digits.extend(part.chars().filter(|c| !c.is_whitespace() && *c != ':'));
    }
    if digits.is_empty() {
        return Err(CliError::usage("HEX is empty: give the APDU bytes in hex"));
    }
    hex::decode(digits.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| CliError::usage("HEX is not a hex string").with_source(e))
}

/// Decides what the bytes are and explains them.
fn decode(bytes: &[u8], force_response: bool) -> Result<Decoded, CliError> {
    if force_response || bytes.len() == 2 {
        let response = Response::parse(bytes)
            .map_err(|e| CliError::usage("HEX is not a response APDU").with_source(e))?;
        return Ok(Decoded::Response(explain_response(&response)));
    }
    match Command::parse(bytes) {
        Ok(parsed) => Ok(Decoded::Command(Box::new(explain_command(&parsed, bytes)))),
        Err(command_error) => {
            // Not a command: data followed by an ISO status word reads as a response.
            match Response::parse(bytes) {
                Ok(response) if response.sw.category() != StatusCategory::Unknown => {
                    Ok(Decoded::Response(explain_response(&response)))
                }
                _ => Err(CliError::usage(
                    "HEX is neither a command APDU nor a response APDU ending in an ISO status word",
                )
                .with_source(command_error)),
            }
        }
    }
}

/// What `decode` found.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Decoded {
    /// A command APDU.
    Command(Box<CommandReport>),
    /// A response APDU or a bare status word.
    Response(ResponseReport),
}

impl fmt::Display for Decoded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decoded::Command(c) => c.fmt(f),
            Decoded::Response(r) => r.fmt(f),
        }
    }
}

/// One header byte and what it means.
#[derive(Debug, Serialize)]
struct ByteReport {
    /// The byte in hex.
    value: String,
    /// Its meaning, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    meaning: Option<String>,
}

impl ByteReport {
    fn new(value: u8, meaning: Option<String>) -> Self {
        ByteReport {
            value: format!("{value:02X}"),
            meaning,
        }
    }
}

/// The class byte (ISO/IEC 7816-4 §5.4.1).
#[derive(Debug, Serialize)]
struct ClaReport {
    value: String,
    /// `interindustry`, `further_interindustry`, `proprietary`, `reserved` or `invalid`.
    class: &'static str,
    /// More commands of the chain follow (bit `10`).
    chaining: bool,
    /// Secure-messaging indication.
    secure_messaging: &'static str,
    /// Logical channel number.
    #[serde(skip_serializing_if = "Option::is_none")]
    logical_channel: Option<u8>,
}

/// A length field and the number it encodes.
#[derive(Debug, Serialize)]
struct LengthReport {
    /// The field bytes in hex.
    field: String,
    /// Nc (for Lc) or Ne (for Le).
    value: u32,
}

/// The command data field.
#[derive(Debug, Serialize)]
struct DataReport {
    /// Length in bytes.
    len: usize,
    /// The bytes in hex; absent when redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    hex: Option<String>,
    /// Whether the bytes are a PIN or password and were left out.
    redacted: bool,
    /// What the data is, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    meaning: Option<String>,
}

/// A decoded command APDU.
#[derive(Debug, Serialize)]
struct CommandReport {
    /// The APDU in hex, secret data replaced by `**` per byte.
    apdu: String,
    /// One line saying what the command does.
    summary: String,
    /// 1 to 4 (ISO/IEC 7816-3 §12.1.2).
    case: u8,
    /// `short` or `extended`.
    length_encoding: &'static str,
    cla: ClaReport,
    ins: ByteReport,
    p1: ByteReport,
    p2: ByteReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    lc: Option<LengthReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<DataReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    le: Option<LengthReport>,
    /// A note when the bytes could also be read another way.
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

/// A decoded response APDU.
#[derive(Debug, Serialize)]
struct ResponseReport {
    /// SW1-SW2 in hex.
    sw: String,
    /// The name of the status word.
    status: String,
    /// `normal`, `warning`, `execution_error`, `checking_error` or `unknown`.
    category: &'static str,
    /// What the status word means.
    meaning: String,
    /// `63Cx`: tries remaining.
    #[serde(skip_serializing_if = "Option::is_none")]
    retries_remaining: Option<u8>,
    /// Whether the word says the PIN or key is blocked.
    blocked: bool,
    /// What a host sends next (`61xx`, `6Cxx`).
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    /// Response data length.
    data_len: usize,
    /// Response data in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<String>,
}

fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn explain_response(response: &Response) -> ResponseReport {
    let sw = response.sw;
    let (meaning, next) = match sw {
        StatusWord::RetriesRemaining(0) => (
            "verification failed: no tries remain, the PIN or key is blocked".to_owned(),
            None,
        ),
        StatusWord::RetriesRemaining(1) => (
            "verification failed or retry counter: 1 try remains".to_owned(),
            None,
        ),
        StatusWord::RetriesRemaining(n) => (
            format!("verification failed or retry counter: {n} tries remain"),
            None,
        ),
        StatusWord::BytesRemaining(n) => {
            let ne = if n == 0 { 256 } else { u32::from(n) };
            let amount = if n == 0 {
                "256 or more".to_owned()
            } else {
                ne.to_string()
            };
            (
                format!("success; {amount} more response bytes are available with GET RESPONSE"),
                command_hex(&commands::get_response(ne)),
            )
        }
        StatusWord::WrongLe(n) => {
            let ne = if n == 0 { 256 } else { u32::from(n) };
            (
                format!(
                    "wrong Le: {ne} bytes are available; resend the same command with Le = {n:02X}"
                ),
                Some(format!("the same command again with Le = {n:02X}")),
            )
        }
        other => (other.description().to_owned(), None),
    };
    let name = format!("{sw:?}");
    let status = name.split('(').next().unwrap_or_default().to_owned();
    ResponseReport {
        sw: format!("{:04X}", sw.to_u16()),
        status,
        category: match sw.category() {
            StatusCategory::Normal => "normal",
            StatusCategory::Warning => "warning",
            StatusCategory::ExecutionError => "execution_error",
            StatusCategory::CheckingError => "checking_error",
            StatusCategory::Unknown => "unknown",
        },
        meaning,
        retries_remaining: sw.retries(),
        blocked: sw.is_blocked(),
        next,
        data_len: response.data.len(),
        data: (!response.data.is_empty()).then(|| spaced_hex(&response.data)),
    }
}

fn command_hex(command: &Command) -> Option<String> {
    command
        .to_bytes(LengthEncoding::Auto)
        .ok()
        .map(|b| spaced_hex(&b))
}

impl fmt::Display for ResponseReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "response APDU: {} {}", self.sw, self.meaning)?;
        writeln!(
            f,
            "  SW1-SW2  {} {}  {} ({})",
            &self.sw[..2],
            &self.sw[2..],
            self.status,
            self.category.replace('_', " ")
        )?;
        if let Some(n) = self.retries_remaining {
            writeln!(f, "  tries    {n} remaining")?;
        }
        if self.blocked {
            writeln!(f, "  blocked  yes")?;
        }
        if let Some(next) = &self.next {
            writeln!(f, "  next     {next}")?;
        }
        match &self.data {
            Some(data) => write!(f, "  data     {} bytes: {data}", self.data_len),
            None => write!(f, "  data     none"),
        }
    }
}

/// Explains a parsed command. `raw` are the bytes it was parsed from.
fn explain_command(parsed: &Parsed, raw: &[u8]) -> CommandReport {
    let command = &parsed.command;
    let extended = parsed.encoding == LengthEncoding::Extended;
    let data = command.data_bytes();
    let sensitive = command.data().is_sensitive();
    let cla = explain_cla(command.cla);
    let ins_name = ins_name(command.cla, command.ins);
    let detail = explain_parameters(command, cla.secure_messaging != "none");

    // Field positions: header, Lc field, data, Le field.
    let lc_len = match (data.is_empty(), extended) {
        (true, _) => 0,
        (false, false) => 1,
        (false, true) => 3,
    };
    let lc = (!data.is_empty()).then(|| LengthReport {
        field: spaced_hex(raw.get(4..4 + lc_len).unwrap_or_default()),
        value: u32::try_from(data.len()).unwrap_or(u32::MAX),
    });
    let le_start = 4 + lc_len + data.len();
    let le = command.ne().map(|ne| LengthReport {
        field: spaced_hex(raw.get(le_start..).unwrap_or_default()),
        value: ne,
    });
    let data_report = (!data.is_empty()).then(|| DataReport {
        len: data.len(),
        hex: (!sensitive).then(|| spaced_hex(data)),
        redacted: sensitive,
        meaning: if sensitive {
            Some("PIN or password (redacted)".to_owned())
        } else {
            detail.data.clone()
        },
    });
    let mut apdu = spaced_hex(raw.get(..4 + lc_len).unwrap_or_default());
    if !data.is_empty() {
        apdu.push(' ');
        apdu.push_str(&if sensitive {
            vec!["**"; data.len()].join(" ")
        } else {
            spaced_hex(data)
        });
    }
    if let Some(le) = &le {
        apdu.push(' ');
        apdu.push_str(&le.field);
    }
    let summary = match (&detail.summary, ins_name) {
        (Some(s), _) => s.clone(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => format!("instruction {:02X} (not a known instruction)", command.ins),
    };
    let trailing_sw = raw
        .len()
        .checked_sub(2)
        .and_then(|i| raw.get(i..))
        .map(|sw| StatusWord::from_bytes(sw[0], sw[1]));
    let hint = trailing_sw
        .filter(|sw| matches!(sw, StatusWord::Success | StatusWord::BytesRemaining(_)))
        .map(|_| {
            "the last two bytes also read as a status word: use --response to decode as a response"
                .to_owned()
        });
    CommandReport {
        apdu,
        summary,
        case: match command.case() {
            Case::Case1 => 1,
            Case::Case2 => 2,
            Case::Case3 => 3,
            Case::Case4 => 4,
        },
        length_encoding: if extended { "extended" } else { "short" },
        cla,
        ins: ByteReport::new(command.ins, ins_name.map(str::to_owned)),
        p1: ByteReport::new(command.p1, detail.p1),
        p2: ByteReport::new(command.p2, detail.p2),
        lc,
        data: data_report,
        le,
        hint,
    }
}

impl fmt::Display for CommandReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "command APDU, case {} ({}): {}",
            self.case, self.length_encoding, self.summary
        )?;
        writeln!(f, "  bytes  {}", self.apdu)?;
        let mut cla = vec![self.cla.class.replace('_', " ")];
        cla.push(
            if self.cla.chaining {
                "chained: more commands follow"
            } else {
                "last or only command of a chain"
            }
            .to_owned(),
        );
        cla.push(match self.cla.secure_messaging {
            "none" => "no secure messaging".to_owned(),
            sm => format!("secure messaging: {}", sm.replace('_', " ")),
        });
        if let Some(ch) = self.cla.logical_channel {
            cla.push(format!("logical channel {ch}"));
        }
        writeln!(f, "  CLA    {}  {}", self.cla.value, cla.join("; "))?;
        for (label, field) in [("INS", &self.ins), ("P1", &self.p1), ("P2", &self.p2)] {
            match &field.meaning {
                Some(m) => writeln!(f, "  {label:<5}  {}  {m}", field.value)?,
                None => writeln!(f, "  {label:<5}  {}", field.value)?,
            }
        }
        match (&self.lc, &self.data) {
            (Some(lc), Some(data)) => {
                writeln!(f, "  Lc     {}  {} bytes of data", lc.field, lc.value)?;
                let shown = data
                    .hex
                    .clone()
                    .unwrap_or_else(|| format!("<{} bytes redacted>", data.len));
                writeln!(f, "  data   {shown}")?;
                if let Some(m) = &data.meaning {
                    writeln!(f, "         {m}")?;
                }
            }
            _ => writeln!(f, "  Lc     absent (no command data)")?,
        }
        match &self.le {
            Some(le) => write!(
                f,
                "  Le     {}  up to {} response bytes",
                le.field, le.value
            )?,
            None => write!(f, "  Le     absent (no response data expected)")?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  note   {hint}")?;
        }
        Ok(())
    }
}

fn explain_cla(cla: u8) -> ClaReport {
    // First interindustry coding (000x xxxx), also used by the card's proprietary class 80.
    let first = |class| ClaReport {
        value: format!("{cla:02X}"),
        class,
        chaining: cla & 0x10 != 0,
        secure_messaging: match cla & 0x0C {
            0x00 => "none",
            0x04 => "proprietary",
            0x08 => "header_not_authenticated",
            _ => "header_authenticated",
        },
        logical_channel: Some(cla & 0x03),
    };
    match cla {
        0x00..=0x1F => first("interindustry"),
        0x40..=0x7F => ClaReport {
            value: format!("{cla:02X}"),
            class: "further_interindustry",
            chaining: cla & 0x10 != 0,
            secure_messaging: if cla & 0x20 != 0 {
                "header_not_authenticated"
            } else {
                "none"
            },
            logical_channel: Some(4 + (cla & 0x0F)),
        },
        0x20..=0x3F => ClaReport {
            value: format!("{cla:02X}"),
            class: "reserved",
            chaining: false,
            secure_messaging: "unknown",
            logical_channel: None,
        },
        0xFF => ClaReport {
            value: "FF".to_owned(),
            class: "invalid",
            chaining: false,
            secure_messaging: "unknown",
            logical_channel: None,
        },
        _ => first("proprietary"),
    }
}

/// Instruction names of ISO/IEC 7816-4 (and -8, -9), and of the card's proprietary class `80`.
fn ins_name(cla: u8, ins: u8) -> Option<&'static str> {
    let proprietary = (0x80..=0xFE).contains(&cla);
    Some(match (proprietary, ins) {
        (true, 0x2A) => "COMPUTE DIGITAL SIGNATURE",
        (true, 0x32) => "CHANGE KEY",
        (true, 0xA2) => "VERIFY CERTIFICATE",
        (true, 0xAE) => "SET SESSION KEY",
        (_, 0x04) => "DEACTIVATE FILE",
        (_, 0x0E) => "ERASE BINARY",
        (_, 0x20 | 0x21) => "VERIFY",
        (_, 0x22) => "MANAGE SECURITY ENVIRONMENT",
        (_, 0x24) => "CHANGE REFERENCE DATA",
        (_, 0x26) => "DISABLE VERIFICATION REQUIREMENT",
        (_, 0x28) => "ENABLE VERIFICATION REQUIREMENT",
        (_, 0x2A) => "PERFORM SECURITY OPERATION",
        (_, 0x2C) => "RESET RETRY COUNTER",
        (_, 0x44) => "ACTIVATE FILE",
        (_, 0x46) => "GENERATE ASYMMETRIC KEY PAIR",
        (_, 0x70) => "MANAGE CHANNEL",
        (_, 0x82) => "EXTERNAL AUTHENTICATE",
        (_, 0x84) => "GET CHALLENGE",
        (_, 0x86 | 0x87) => "GENERAL AUTHENTICATE",
        (_, 0x88) => "INTERNAL AUTHENTICATE",
        (_, 0xA0 | 0xA1) => "SEARCH BINARY",
        (_, 0xA2) => "SEARCH RECORD",
        (_, 0xA4) => "SELECT",
        (_, 0xB0 | 0xB1) => "READ BINARY",
        (_, 0xB2 | 0xB3) => "READ RECORD",
        (_, 0xC0) => "GET RESPONSE",
        (_, 0xC2 | 0xC3) => "ENVELOPE",
        (_, 0xCA | 0xCB) => "GET DATA",
        (_, 0xD0 | 0xD1) => "WRITE BINARY",
        (_, 0xD2) => "WRITE RECORD",
        (_, 0xD6 | 0xD7) => "UPDATE BINARY",
        (_, 0xDA | 0xDB) => "PUT DATA",
        (_, 0xDC | 0xDD) => "UPDATE RECORD",
        (_, 0xE0) => "CREATE FILE",
        (_, 0xE2) => "APPEND RECORD",
        (_, 0xE4) => "DELETE FILE",
        (_, 0xE6) => "TERMINATE DF",
        (_, 0xE8) => "TERMINATE EF",
        (_, 0xFE) => "TERMINATE CARD USAGE",
        _ => return None,
    })
}

/// What P1, P2 and the data of one command mean, and a one-line summary.
#[derive(Debug, Default)]
struct Detail {
    summary: Option<String>,
    p1: Option<String>,
    p2: Option<String>,
    data: Option<String>,
}

fn explain_parameters(command: &Command, secure_messaging: bool) -> Detail {
    let (cla, ins, p1, p2) = (command.cla, command.ins, command.p1, command.p2);
    let data = command.data_bytes();
    let proprietary = (0x80..=0xFE).contains(&cla);
    let mut d = match (proprietary, ins) {
        (_, 0xA4) => select(p1, p2, data),
        (_, 0x20) => verify(p1, p2, data.is_empty()),
        (_, 0x24) => change_reference_data(p1, p2),
        (_, 0x2C) => reset_retry_counter(p1, p2),
        (_, 0xB0) => read_binary(p1, p2),
        (_, 0xB2) => read_record(p1, p2),
        (_, 0xC0) => get_response(p1, p2, command.ne()),
        (_, 0x84) => Detail {
            summary: command
                .ne()
                .map(|n| format!("GET CHALLENGE: {n} random bytes from the card")),
            p1: Some(zero_expected(p1)),
            p2: Some(zero_expected(p2)),
            data: None,
        },
        (_, 0xCA) => get_data(p1, p2),
        (_, 0x88) => Detail {
            summary: Some(format!(
                "INTERNAL AUTHENTICATE: the card signs the challenge with {}",
                key_ref(p2)
            )),
            p1: Some(if p1 == 0 {
                "no algorithm information (implied by the key)".to_owned()
            } else {
                format!("algorithm reference {p1:02X}")
            }),
            p2: Some(key_ref(p2)),
            data: Some("challenge".to_owned()),
        },
        (true, 0x2A) => compute_signature(p1, p2, data),
        (false, 0x2A) => perform_security_operation(p1, p2),
        (true, 0x32) => Detail {
            summary: Some(format!("CHANGE KEY: set a new value for {}", key_ref(p2))),
            p1: None,
            p2: Some(key_ref(p2)),
            data: None,
        },
        (_, 0x70) => Detail {
            summary: Some(
                match p1 {
                    0x00 => "MANAGE CHANNEL: open a logical channel",
                    0x80 => "MANAGE CHANNEL: close a logical channel",
                    _ => "MANAGE CHANNEL",
                }
                .to_owned(),
            ),
            p1: Some(
                match p1 {
                    0x00 => "open",
                    0x80 => "close",
                    _ => "reserved",
                }
                .to_owned(),
            ),
            p2: Some(format!("logical channel {p2} (0: the card assigns one)")),
            data: None,
        },
        _ => Detail::default(),
    };
    if secure_messaging && !data.is_empty() {
        d.data = Some("secure-messaging data objects (encrypted or protected)".to_owned());
    }
    d
}

fn zero_expected(b: u8) -> String {
    if b == 0 {
        "00 (as required)".to_owned()
    } else {
        format!("{b:02X} (should be 00)")
    }
}

/// A known application identifier, or a prefix of one.
fn aid_name(data: &[u8]) -> Option<String> {
    let known: [(&[u8], &str); 6] = [
        (&aid::JPKI, "JPKI AP (公的個人認証AP)"),
        (&aid::TEXT, "text AP (券面事項入力補助AP)"),
        (&aid::VISUAL, "visual AP (券面事項確認AP)"),
        (&aid::COMMON, "common card AP (共通カードAP)"),
        (&aid::JUKI, "住基AP"),
        (
            &aid::GP_ISD,
            "GlobalPlatform issuer security domain (restores the power-on state)",
        ),
    ];
    if let Some((_, name)) = known.iter().find(|(a, _)| *a == data) {
        return Some((*name).to_owned());
    }
    let prefix_of: Vec<&str> = known
        .iter()
        .filter(|(a, _)| !data.is_empty() && a.starts_with(data))
        .map(|(_, name)| *name)
        .collect();
    (!prefix_of.is_empty()).then(|| {
        format!(
            "a prefix of: {} (the card matches name prefixes; send the full AID)",
            prefix_of.join(", ")
        )
    })
}

/// What a file identifier names in each application of the card.
fn file_name(fid: u16) -> Option<String> {
    let known: [(&str, u16, &str); 31] = [
        ("JPKI AP", jpki::SIGN_CERT, "signing certificate"),
        ("JPKI AP", jpki::SIGN_CA_CERT, "signing CA certificate"),
        ("JPKI AP", jpki::TOKEN_INFO, "token information"),
        ("JPKI AP", jpki::AVAILABILITY, "certificate availability"),
        ("JPKI AP", jpki::AUTH_CERT, "authentication certificate"),
        (
            "JPKI AP",
            jpki::AUTH_CA_CERT,
            "authentication CA certificate",
        ),
        ("JPKI AP", jpki::AUTH_KEY, "authentication private key"),
        ("JPKI AP", jpki::AUTH_PIN, "authentication PIN"),
        ("JPKI AP", jpki::SIGN_KEY, "signing private key"),
        ("JPKI AP", jpki::SIGN_PIN, "signing password"),
        ("text AP", text::MY_NUMBER, "My Number"),
        ("text AP", text::ATTRIBUTES, "the four attributes"),
        ("text AP", text::INTEGRITY, "integrity record"),
        ("text AP", text::CVC, "card-verifiable certificate"),
        ("text AP", text::BASIC_INFO, "AP basic information"),
        ("text AP", text::PIN, "4-digit PIN"),
        ("text AP", text::PIN_A, "照合番号A"),
        ("text AP", text::PIN_B, "照合番号B"),
        ("visual AP", visual::AGE, "age record"),
        ("visual AP", visual::FACE, "card face record"),
        ("visual AP", visual::BASIC_DATA, "AP basic data"),
        ("visual AP", visual::CVC, "card-verifiable certificate"),
        ("visual AP", visual::MY_NUMBER_IMAGE, "rendered My Number"),
        ("visual AP", visual::BIRTH_DATE_KEY, "birth-date key"),
        ("visual AP", visual::PIN_B, "照合番号B"),
        ("visual AP", visual::PIN_A, "照合番号A"),
        ("common AP", common::SERIAL_RECORD, "serial number record"),
        (
            "common AP",
            common::INTERNAL_AUTH_KEY,
            "internal-authentication key",
        ),
        ("common AP", 0x001C, "PIN"),
        ("住基AP", 0x001C, "PIN"),
        ("MF", 0x3F00, "master file"),
    ];
    let names: Vec<String> = known
        .iter()
        .filter(|(_, f, _)| *f == fid)
        .map(|(ap, _, name)| format!("{ap}: {name}"))
        .collect();
    (!names.is_empty()).then(|| names.join("; "))
}

/// A key or PIN reference in P2 (ISO/IEC 7816-4 §7.5.1; the card uses `80 | SFI`).
fn key_ref(p2: u8) -> String {
    match p2 {
        0x00 => "no key reference given".to_owned(),
        0x80 => "the key or PIN EF selected before".to_owned(),
        p if p & 0xE0 == 0x80 => {
            let sfi = p & 0x1F;
            let jpki_name = [
                (jpki::AUTH_KEY, "authentication private key"),
                (jpki::AUTH_PIN, "authentication PIN"),
                (jpki::SIGN_KEY, "signing private key"),
                (jpki::SIGN_PIN, "signing password"),
            ]
            .into_iter()
            .find(|(fid, _)| KeyRef::for_file(*fid).p2() == p)
            .map(|(_, name)| format!("; in the JPKI AP: {name}"))
            .unwrap_or_default();
            format!("the key or PIN EF with short identifier {sfi:02X} (EF 00{sfi:02X}{jpki_name})")
        }
        p if p & 0x80 == 0 && p & 0x60 == 0 => format!("global reference {:02X}", p & 0x1F),
        p => format!("reference {p:02X} (reserved coding)"),
    }
}

fn select(p1: u8, p2: u8, data: &[u8]) -> Detail {
    let how = match p1 {
        0x00 => "by file identifier (the MF when there is no data)",
        0x01 => "child DF by file identifier",
        0x02 => "EF under the current DF by file identifier",
        0x03 => "parent DF of the current DF",
        0x04 => "by DF name (application identifier)",
        0x08 => "by path from the MF",
        0x09 => "by path from the current DF",
        _ => "reserved selection method",
    };
    let occurrence = match p2 & 0x03 {
        0x00 => "first or only occurrence",
        0x01 => "last occurrence",
        0x02 => "next occurrence",
        _ => "previous occurrence",
    };
    let answer = match p2 & 0x0C {
        0x00 => "return FCI",
        0x04 => "return FCP template",
        0x08 => "return FMD template",
        _ => "no response data",
    };
    let mut p2_text = format!("{occurrence}; {answer}");
    if p2 & 0xF0 != 0 {
        p2_text.push_str("; reserved bits set");
    }
    let target = match p1 {
        0x04 => aid_name(data),
        0x00..=0x02 if data.len() == 2 => file_name(u16::from_be_bytes([data[0], data[1]])),
        _ => None,
    };
    let what = match (p1, data.len()) {
        (0x04, _) => format!(
            "SELECT by DF name: {}",
            target.as_deref().unwrap_or("an application")
        ),
        (0x00..=0x02, 2) => format!(
            "SELECT file {}{}",
            spaced_hex(data).replace(' ', ""),
            target
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        ),
        _ => format!("SELECT {how}"),
    };
    Detail {
        summary: Some(format!("{what}, {answer}")),
        p1: Some(format!("select {how}")),
        p2: Some(p2_text),
        data: target,
    }
}

fn verify(p1: u8, p2: u8, empty: bool) -> Detail {
    let summary = if empty {
        format!(
            "VERIFY without data: asks the retry counter of {} (spends no attempt; the card answers 63Cx)",
            key_ref(p2)
        )
    } else {
        format!("VERIFY: presents the PIN or password for {}", key_ref(p2))
    };
    Detail {
        summary: Some(summary),
        p1: Some(zero_expected(p1)),
        p2: Some(key_ref(p2)),
        data: None,
    }
}

fn change_reference_data(p1: u8, p2: u8) -> Detail {
    let p1_text = match p1 {
        0x00 => "data = current value followed by the new value",
        0x01 => "data = new value only (replacement after VERIFY)",
        _ => "reserved",
    };
    Detail {
        summary: Some(format!("CHANGE REFERENCE DATA of {}", key_ref(p2))),
        p1: Some(p1_text.to_owned()),
        p2: Some(key_ref(p2)),
        data: None,
    }
}

fn reset_retry_counter(p1: u8, p2: u8) -> Detail {
    let p1_text = match p1 {
        0x00 => "data = resetting code followed by new reference data",
        0x01 => "data = resetting code only",
        0x02 => "data = new reference data only",
        0x03 => "no data",
        _ => "reserved",
    };
    Detail {
        summary: Some(format!("RESET RETRY COUNTER of {}", key_ref(p2))),
        p1: Some(p1_text.to_owned()),
        p2: Some(key_ref(p2)),
        data: None,
    }
}

fn read_binary(p1: u8, p2: u8) -> Detail {
    if p1 & 0x80 != 0 {
        if p1 & 0x60 != 0 {
            return Detail {
                summary: Some("READ BINARY with a reserved P1 coding".to_owned()),
                p1: Some("reserved coding (bit 8 set, bits 7-6 not 00)".to_owned()),
                ..Detail::default()
            };
        }
        let sfi = p1 & 0x1F;
        return Detail {
            summary: Some(format!(
                "READ BINARY of the EF with short identifier {sfi:02X} (EF 00{sfi:02X}) from offset {p2}"
            )),
            p1: Some(format!(
                "short EF identifier {sfi:02X}: selects EF 00{sfi:02X} and reads it"
            )),
            p2: Some(format!("offset {p2} (8 bits with an SFI)")),
            data: None,
        };
    }
    let offset = u16::from_be_bytes([p1, p2]);
    Detail {
        summary: Some(format!(
            "READ BINARY of the current EF from offset {offset} (0x{offset:04X})"
        )),
        p1: Some(format!("offset high byte (offset {offset})")),
        p2: Some("offset low byte".to_owned()),
        data: None,
    }
}

fn read_record(p1: u8, p2: u8) -> Detail {
    let sfi = p2 >> 3;
    let file = match sfi {
        0 => "the current EF".to_owned(),
        31 => "a reserved file reference".to_owned(),
        s => format!("the EF with short identifier {s:02X}"),
    };
    let records = match p2 & 0x07 {
        0x04 => format!("record {p1}"),
        0x05 => format!("records {p1} to the last"),
        0x06 => format!("records from the last to {p1}"),
        _ => format!("record with identifier {p1:02X}"),
    };
    Detail {
        summary: Some(format!("READ RECORD: {records} of {file}")),
        p1: Some(if p1 == 0 {
            "record 0: the current record".to_owned()
        } else {
            format!("record number {p1}")
        }),
        p2: Some(format!("{file}; {records}")),
        data: None,
    }
}

fn get_response(p1: u8, p2: u8, ne: Option<u32>) -> Detail {
    Detail {
        summary: Some(match ne {
            Some(n) => format!("GET RESPONSE: fetch up to {n} waiting response bytes"),
            None => "GET RESPONSE without Le".to_owned(),
        }),
        p1: Some(zero_expected(p1)),
        p2: Some(zero_expected(p2)),
        data: None,
    }
}

fn get_data(p1: u8, p2: u8) -> Detail {
    let tag = u16::from_be_bytes([p1, p2]);
    let name = match tag {
        0x0042 => Some("issuer identification number"),
        0x0045 => Some("card identification data"),
        0x0066 => Some("card recognition data (GlobalPlatform)"),
        0x00F0 => Some("municipality code"),
        0x00F2 => Some("expiry date"),
        0x00F7 => Some("intermediate key identifier"),
        0x00F8 => Some("root-to-intermediate card-verifiable certificate"),
        0x7F21 => Some("card-verifiable certificate"),
        0x5F51 => Some("contact ATR"),
        _ => None,
    };
    let what = name.map(|n| format!(" ({n})")).unwrap_or_default();
    Detail {
        summary: Some(format!("GET DATA of the data object {tag:04X}{what}")),
        p1: Some(format!("tag {tag:04X}{what}, high byte")),
        p2: Some("tag low byte".to_owned()),
        data: None,
    }
}

fn compute_signature(p1: u8, p2: u8, data: &[u8]) -> Detail {
    let scheme = SignScheme::from_p1(p1);
    let p1_text = match scheme {
        Some(SignScheme::Pkcs1DigestInfo) => "PKCS#1 v1.5 padding of the supplied DigestInfo",
        Some(SignScheme::Pkcs1CardSha256Bare) => {
            "the card hashes with SHA-256, PKCS#1 v1.5 over the bare hash"
        }
        Some(SignScheme::Pkcs1Sha256Hash) => {
            "supplied SHA-256 hash; the card builds the DigestInfo (PKCS#1 v1.5)"
        }
        Some(SignScheme::Pkcs1CardSha256) => {
            "the card hashes with SHA-256 and builds the DigestInfo (PKCS#1 v1.5)"
        }
        Some(SignScheme::PssSha256Hash) => "RSASSA-PSS over the supplied SHA-256 hash",
        Some(SignScheme::PssCardSha256) => "the card hashes with SHA-256, then RSASSA-PSS",
        None => "unknown signing scheme (the card answers 6A86)",
    };
    let key = if p2 == 0x00 {
        "the application's own key (券面 APs)".to_owned()
    } else {
        key_ref(p2)
    };
    let data_text = match scheme {
        Some(SignScheme::Pkcs1DigestInfo) => {
            Some(digest_info_name(data).unwrap_or_else(|| "bytes to pad and sign".to_owned()))
        }
        Some(SignScheme::Pkcs1Sha256Hash | SignScheme::PssSha256Hash) => {
            Some(if data.len() == 32 {
                "SHA-256 hash".to_owned()
            } else {
                format!("{} bytes, but a SHA-256 hash has 32", data.len())
            })
        }
        Some(
            SignScheme::Pkcs1CardSha256Bare
            | SignScheme::Pkcs1CardSha256
            | SignScheme::PssCardSha256,
        ) => Some("message for the card to hash".to_owned()),
        None => None,
    };
    Detail {
        summary: Some(format!("COMPUTE DIGITAL SIGNATURE with {key}")),
        p1: Some(p1_text.to_owned()),
        p2: Some(key),
        data: data_text,
    }
}

/// Names a DER DigestInfo by its algorithm prefix (RFC 8017 §9.2 note 1).
fn digest_info_name(data: &[u8]) -> Option<String> {
    mynacard_cert::digest_info::name_of(data).map(|name| format!("DigestInfo with a {name} hash"))
}

fn perform_security_operation(p1: u8, p2: u8) -> Detail {
    let tag_name = |t: u8| match t {
        0x00 => "none",
        0x80 => "plain value",
        0x82 | 0x84 | 0x86 => "cryptogram",
        0x8E => "cryptographic checksum",
        0x90 => "hash code",
        0x92 => "certificate",
        0x9A => "data to be signed",
        0x9E => "digital signature",
        0xA2 => "input template for verification",
        0xAC => "input template for signature",
        0xAE => "certificate body",
        _ => "other data object",
    };
    let operation = match (p1, p2) {
        (0x9E, 0x9A) => "compute digital signature",
        (0x90, 0x80) => "hash",
        (0x00, 0xA8) => "verify digital signature",
        (0x00, 0xAE) => "verify certificate",
        (0x86, 0x80) => "encipher",
        (0x80, 0x86) => "decipher",
        (0x00, 0xA2) => "verify cryptographic checksum",
        (0x8E, 0x80) => "compute cryptographic checksum",
        _ => "security operation",
    };
    Detail {
        summary: Some(format!("PERFORM SECURITY OPERATION: {operation}")),
        p1: Some(format!("output data object {p1:02X} ({})", tag_name(p1))),
        p2: Some(format!("input data object {p2:02X} ({})", tag_name(p2))),
        data: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_hex(s: &str) -> Result<Decoded, CliError> {
        let bytes = parse_hex(&[s.to_owned()])?;
        decode(&bytes, false)
    }

    fn command(s: &str) -> CommandReport {
        match decode_hex(s) {
            Ok(Decoded::Command(c)) => *c,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn response(s: &str) -> ResponseReport {
        match decode_hex(s) {
            Ok(Decoded::Response(r)) => r,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn hex_accepts_separators_prefix_and_split_arguments() {
        let parts = ["0x00 A4".to_owned(), "04:0c".to_owned()];
        assert_eq!(
            parse_hex(&parts).unwrap().as_slice(),
            [0x00, 0xA4, 0x04, 0x0C]
        );
    }

    #[test]
    fn malformed_hex_is_a_usage_error() {
        for bad in ["", "   ", "6A8", "6A8Z", "zz", "0x"] {
            let err = parse_hex(&[bad.to_owned()]).unwrap_err();
            assert_eq!(err.exit_code(), crate::exit::ExitCode::Usage, "{bad:?}");
        }
    }

    #[test]
    fn two_bytes_are_a_status_word() {
        let r = response("63C2");
        assert_eq!(r.retries_remaining, Some(2));
        assert!(r.meaning.contains("2 tries remain"), "{}", r.meaning);
        assert!(!r.blocked);
        let r = response("6A82");
        assert_eq!(r.meaning, "file or application not found");
        assert_eq!(r.category, "checking_error");
        let r = response("63C0");
        assert!(r.blocked);
        assert!(r.meaning.contains("blocked"));
    }

    #[test]
    fn get_response_is_proposed_for_61xx() {
        let r = response("6110");
        assert_eq!(r.next.as_deref(), Some("00 C0 00 00 10"));
        let r = response("6100");
        assert_eq!(r.next.as_deref(), Some("00 C0 00 00 00"));
        assert!(r.meaning.contains("256 or more"));
    }

    #[test]
    fn select_jpki_names_the_application() {
        let c = command("00A4040C0AD392F000260100000001");
        assert_eq!(c.case, 3);
        assert_eq!(c.length_encoding, "short");
        assert_eq!(c.ins.meaning.as_deref(), Some("SELECT"));
        assert_eq!(c.lc.as_ref().map(|l| l.value), Some(10));
        assert!(c.le.is_none());
        assert!(c.summary.contains("JPKI AP"), "{}", c.summary);
        assert!(
            c.p2.meaning
                .as_deref()
                .unwrap()
                .contains("no response data")
        );
    }

    #[test]
    fn select_by_aid_prefix_warns() {
        let c = command("00A4040C05D392F00026");
        assert!(c.summary.contains("prefix"), "{}", c.summary);
    }

    #[test]
    fn select_ef_names_the_file() {
        let c = command("00A4020C020018");
        assert!(
            c.summary.contains("JPKI AP: authentication PIN"),
            "{}",
            c.summary
        );
    }

    #[test]
    fn verify_never_shows_the_pin() {
        let c = command("002000800431323334");
        let data = c.data.as_ref().unwrap();
        assert!(data.redacted);
        assert!(data.hex.is_none());
        assert_eq!(c.apdu, "00 20 00 80 04 ** ** ** **");
        let text = c.to_string();
        let json = serde_json::to_string(&c).unwrap();
        for shown in [&text, &json] {
            assert!(!shown.contains("31 32"), "{shown}");
            assert!(!shown.contains("3132"), "{shown}");
        }
        assert!(text.contains("redacted"));
    }

    #[test]
    fn empty_verify_is_a_retry_query() {
        let c = command("00200080");
        assert_eq!(c.case, 1);
        assert!(c.summary.contains("spends no attempt"), "{}", c.summary);
        let c = command("00200098");
        assert!(c.summary.contains("authentication PIN"), "{}", c.summary);
    }

    #[test]
    fn read_binary_offsets_and_sfi() {
        let c = command("00B0010000");
        assert!(c.summary.contains("offset 256"), "{}", c.summary);
        assert_eq!(c.le.as_ref().map(|l| l.value), Some(256));
        let c = command("00B08A0000");
        assert!(c.summary.contains("short identifier 0A"), "{}", c.summary);
        let c = command("00B08B00000000");
        assert_eq!(c.length_encoding, "extended");
        assert_eq!(c.le.as_ref().map(|l| l.value), Some(65_536));
    }

    #[test]
    fn compute_signature_recognises_a_sha256_digest_info() {
        let mut hex = String::from("802A0080333031300D060960864801650304020105000420");
        hex.push_str(&"AB".repeat(32));
        hex.push_str("00");
        let c = command(&hex);
        assert_eq!(c.case, 4);
        assert_eq!(c.ins.meaning.as_deref(), Some("COMPUTE DIGITAL SIGNATURE"));
        assert_eq!(c.cla.class, "proprietary");
        assert_eq!(
            c.data.as_ref().and_then(|d| d.meaning.as_deref()),
            Some("DigestInfo with a SHA-256 hash")
        );
    }

    #[test]
    fn class_byte_bits() {
        let c = command("10A4040C01D3");
        assert!(c.cla.chaining);
        let c = command("0CB0000000");
        assert_eq!(c.cla.secure_messaging, "header_authenticated");
        let c = command("41B0000000");
        assert_eq!(c.cla.class, "further_interindustry");
        assert_eq!(c.cla.logical_channel, Some(5));
    }

    #[test]
    fn response_with_data_falls_back_from_command() {
        // 3 bytes cannot be a command.
        let r = response("019000");
        assert_eq!(r.data_len, 1);
        assert_eq!(r.status, "Success");
    }

    #[test]
    fn neither_command_nor_response_is_a_usage_error() {
        let err = match decode_hex("00A4040C0AD3") {
            Err(e) => e,
            Ok(d) => panic!("{d:?}"),
        };
        assert_eq!(err.exit_code(), crate::exit::ExitCode::Usage);
        assert!(!err.causes().is_empty());
    }

    #[test]
    fn forced_response() {
        let bytes = parse_hex(&["AABB9000".to_owned()]).unwrap();
        assert!(matches!(decode(&bytes, false), Ok(Decoded::Command(_))));
        match decode(&bytes, true) {
            Ok(Decoded::Response(r)) => assert_eq!(r.data_len, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn single_byte_is_rejected() {
        let bytes = parse_hex(&["90".to_owned()]).unwrap();
        assert!(decode(&bytes, false).is_err());
        assert!(decode(&bytes, true).is_err());
    }
}
