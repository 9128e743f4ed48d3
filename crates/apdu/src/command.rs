//! Command APDUs (ISO/IEC 7816-3 §12.1, ISO/IEC 7816-4 §5.1).

use alloc::vec::Vec;
use core::fmt;
use core::ops::Deref;
use zeroize::Zeroizing;

use crate::ApduError;

/// The largest expected response length an extended Le can express (`00 00` means 65536).
pub const MAX_NE: u32 = 65_536;
/// Largest command data an extended Lc can carry.
const MAX_NC_EXTENDED: usize = 65_535;
/// Largest command data a short Lc can carry.
const MAX_NC_SHORT: usize = 255;
/// Largest Ne a short Le can express (`00` means 256).
const MAX_NE_SHORT: u32 = 256;

/// The four command cases of ISO/IEC 7816-3 §12.1.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Case {
    /// No command data, no response data expected.
    Case1,
    /// No command data, response data expected (Le present).
    Case2,
    /// Command data, no response data expected (Lc present).
    Case3,
    /// Command data and response data expected (Lc and Le present).
    Case4,
}

/// How the Lc and Le fields are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LengthEncoding {
    /// Short when both Nc ≤ 255 and Ne ≤ 256, extended otherwise.
    #[default]
    Auto,
    /// Short length fields only (one byte each); larger values are an error.
    Short,
    /// Extended length fields (three bytes for the first, two for a following Le).
    Extended,
}

/// Command data: plain bytes, or secret bytes (PINs, passwords) that are never shown in `Debug`
/// and are zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub enum CommandData {
    /// Ordinary data.
    Plain(Vec<u8>),
    /// Secret data: redacted in `Debug`, zeroized on drop.
    Sensitive(Zeroizing<Vec<u8>>),
}

impl CommandData {
    /// The bytes, whatever their kind.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            CommandData::Plain(d) => d,
            CommandData::Sensitive(d) => d,
        }
    }

    /// Whether these bytes are secret.
    pub fn is_sensitive(&self) -> bool {
        matches!(self, CommandData::Sensitive(_))
    }

    fn same_kind(&self, bytes: Vec<u8>) -> CommandData {
        match self {
            CommandData::Plain(_) => CommandData::Plain(bytes),
            CommandData::Sensitive(_) => CommandData::Sensitive(Zeroizing::new(bytes)),
        }
    }
}

impl fmt::Debug for CommandData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandData::Plain(d) => {
                f.write_str("Plain(")?;
                write_hex(f, d)?;
                f.write_str(")")
            }
            CommandData::Sensitive(d) => write!(f, "Sensitive(<{} bytes redacted>)", d.len()),
        }
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{b:02X}")?;
    }
    Ok(())
}

/// A command APDU as a plain value: header, optional data, optional expected response length.
///
/// Build one with [`Command::new`] and the `with_*` methods (or the constructors in
/// [`crate::commands`]), encode it with [`Command::to_bytes`], parse one with [`Command::parse`].
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    data: CommandData,
    ne: Option<u32>,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("cla", &format_args!("{:02X}", self.cla))
            .field("ins", &format_args!("{:02X}", self.ins))
            .field("p1", &format_args!("{:02X}", self.p1))
            .field("p2", &format_args!("{:02X}", self.p2))
            .field("data", &self.data)
            .field("ne", &self.ne)
            .finish()
    }
}

/// A parsed command and the length encoding it arrived in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The command.
    pub command: Command,
    /// [`LengthEncoding::Short`] or [`LengthEncoding::Extended`] (case 1 reports `Short`).
    pub encoding: LengthEncoding,
}

impl Command {
    /// A case-1 command: header only.
    pub const fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: CommandData::Plain(Vec::new()),
            ne: None,
        }
    }

    /// Sets plain command data (an empty vector means no data field).
    #[must_use]
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = CommandData::Plain(data.into());
        self
    }

    /// Sets secret command data (PIN, password): redacted in `Debug`, zeroized on drop.
    #[must_use]
    pub fn with_sensitive_data(mut self, data: Zeroizing<Vec<u8>>) -> Self {
        self.data = CommandData::Sensitive(data);
        self
    }

    /// Sets the expected response length Ne (1..=65536). Ne is checked when encoding.
    #[must_use]
    pub const fn with_ne(mut self, ne: u32) -> Self {
        self.ne = Some(ne);
        self
    }

    /// Removes the expected response length (no Le field).
    #[must_use]
    pub const fn without_ne(mut self) -> Self {
        self.ne = None;
        self
    }

    /// The command data.
    pub fn data(&self) -> &CommandData {
        &self.data
    }

    /// The command data bytes.
    pub fn data_bytes(&self) -> &[u8] {
        self.data.as_bytes()
    }

    /// The expected response length, if any.
    pub const fn ne(&self) -> Option<u32> {
        self.ne
    }

    /// The command case implied by the data and Ne.
    pub fn case(&self) -> Case {
        match (self.data.as_bytes().is_empty(), self.ne.is_some()) {
            (true, false) => Case::Case1,
            (true, true) => Case::Case2,
            (false, false) => Case::Case3,
            (false, true) => Case::Case4,
        }
    }

    /// Whether the command would need extended length fields.
    pub fn needs_extended(&self) -> bool {
        self.data.as_bytes().len() > MAX_NC_SHORT || self.ne.is_some_and(|ne| ne > MAX_NE_SHORT)
    }

    /// Whether the chaining bit (CLA bit 5, `0x10`) is set.
    pub const fn is_chained(&self) -> bool {
        self.cla & 0x10 != 0
    }

    /// A copy with other data of the same kind (plain stays plain, secret stays secret).
    pub(crate) fn with_same_kind_data(&self, data: Vec<u8>) -> Self {
        Command {
            data: self.data.same_kind(data),
            ..self.clone()
        }
    }

    /// Encodes the command.
    ///
    /// # Errors
    /// [`ApduError::DataTooLong`] or [`ApduError::NeOutOfRange`] when the data or Ne do not fit
    /// the chosen encoding (or Ne is 0).
    pub fn to_bytes(&self, encoding: LengthEncoding) -> Result<CommandBytes, ApduError> {
        let extended = match encoding {
            LengthEncoding::Auto => self.needs_extended(),
            LengthEncoding::Short => false,
            LengthEncoding::Extended => true,
        };
        let data = self.data.as_bytes();
        let (max_nc, max_ne) = if extended {
            (MAX_NC_EXTENDED, MAX_NE)
        } else {
            (MAX_NC_SHORT, MAX_NE_SHORT)
        };
        if data.len() > max_nc {
            return Err(ApduError::DataTooLong {
                len: data.len(),
                max: max_nc,
            });
        }
        if let Some(ne) = self.ne
            && (ne == 0 || ne > max_ne)
        {
            return Err(ApduError::NeOutOfRange { ne, max: max_ne });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(4 + 3 + data.len() + 3));
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if !data.is_empty() {
            if extended {
                // Lengths are checked above, so the casts below cannot truncate.
                let nc = data.len() as u16;
                out.push(0);
                out.extend_from_slice(&nc.to_be_bytes());
            } else {
                out.push(data.len() as u8);
            }
            out.extend_from_slice(data);
        }
        if let Some(ne) = self.ne {
            if extended {
                let le = if ne == MAX_NE { 0 } else { ne as u16 };
                if data.is_empty() {
                    out.push(0);
                }
                out.extend_from_slice(&le.to_be_bytes());
            } else {
                out.push(if ne == MAX_NE_SHORT { 0 } else { ne as u8 });
            }
        }
        Ok(CommandBytes {
            bytes: out,
            sensitive: self.data.is_sensitive(),
        })
    }

    /// Parses a command APDU (ISO/IEC 7816-3 §12.1.3 decoding of the body).
    ///
    /// The data of the commands that carry reference data
    /// ([`carries_reference_data`](crate::commands::carries_reference_data)) is parsed as
    /// [`CommandData::Sensitive`].
    ///
    /// # Errors
    /// [`ApduError::CommandTooShort`] or [`ApduError::InconsistentLength`].
    pub fn parse(bytes: &[u8]) -> Result<Parsed, ApduError> {
        let len = bytes.len();
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ApduError::CommandTooShort { len });
        };
        let bad = ApduError::InconsistentLength { len };
        let short_ne = |b: u8| if b == 0 { MAX_NE_SHORT } else { u32::from(b) };
        let ext_ne = |hi: u8, lo: u8| match u16::from_be_bytes([hi, lo]) {
            0 => MAX_NE,
            n => u32::from(n),
        };
        let (data, ne, encoding): (&[u8], Option<u32>, LengthEncoding) = match body {
            [] => (&[], None, LengthEncoding::Short),
            [le] => (&[], Some(short_ne(*le)), LengthEncoding::Short),
            [b1, rest @ ..] if *b1 != 0 => {
                let nc = usize::from(*b1);
                if rest.len() == nc {
                    (rest, None, LengthEncoding::Short)
                } else if rest.len() == nc + 1 {
                    let (d, le) = rest.split_at(nc);
                    (d, Some(short_ne(le[0])), LengthEncoding::Short)
                } else {
                    return Err(bad);
                }
            }
            [0, hi, lo] => (&[], Some(ext_ne(*hi, *lo)), LengthEncoding::Extended),
            [0, hi, lo, rest @ ..] => {
                let nc = usize::from(u16::from_be_bytes([*hi, *lo]));
                if nc == 0 {
                    return Err(bad);
                }
                if rest.len() == nc {
                    (rest, None, LengthEncoding::Extended)
                } else if rest.len() == nc + 2 {
                    let (d, le) = rest.split_at(nc);
                    (d, Some(ext_ne(le[0], le[1])), LengthEncoding::Extended)
                } else {
                    return Err(bad);
                }
            }
            _ => return Err(bad),
        };
        let mut command = Command::new(*cla, *ins, *p1, *p2);
        command.ne = ne;
        if !data.is_empty() {
            command.data = if crate::commands::carries_reference_data(*cla, *ins) {
                CommandData::Sensitive(Zeroizing::new(data.to_vec()))
            } else {
                CommandData::Plain(data.to_vec())
            };
        }
        Ok(Parsed { command, encoding })
    }
}

/// Encoded command bytes. Zeroized on drop; `Debug` shows only the header when the command
/// carries secret data.
#[derive(Clone, PartialEq, Eq)]
pub struct CommandBytes {
    bytes: Zeroizing<Vec<u8>>,
    sensitive: bool,
}

impl CommandBytes {
    /// The bytes to transmit.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether the bytes contain secret data.
    pub fn is_sensitive(&self) -> bool {
        self.sensitive
    }
}

impl Deref for CommandBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for CommandBytes {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

impl fmt::Debug for CommandBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sensitive {
            f.write_str("CommandBytes(")?;
            write_hex(f, self.bytes.get(..4).unwrap_or(&self.bytes))?;
            write!(
                f,
                " <{} bytes redacted>)",
                self.bytes.len().saturating_sub(4)
            )
        } else {
            f.write_str("CommandBytes(")?;
            write_hex(f, &self.bytes)?;
            f.write_str(")")
        }
    }
}
