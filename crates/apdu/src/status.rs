//! Status words (ISO/IEC 7816-4 §5.6, Tables 5 and 6) and the words the My Number Card answers.

use core::fmt;

macro_rules! status_words {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $text:literal; )*) => {
        /// One status word (SW1-SW2).
        ///
        /// Every `u16` maps to exactly one value and back: named arms for the ISO/IEC 7816-4 table
        /// and the words the My Number Card uses, payload arms for `61xx`, `63Cx` and `6Cxx`, and
        /// [`StatusWord::Other`] for the rest. [`StatusWord::from_u16`] never builds an `Other`
        /// holding a value that has a named arm.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StatusWord {
            $( $(#[$doc])* $name, )*
            /// `61xx`: the command succeeded and `xx` more response bytes are available with GET
            /// RESPONSE (`61 00`: 256 or more).
            BytesRemaining(u8),
            /// `63Cx`: verification failed or counter reported; `x` (0–15) tries remain.
            RetriesRemaining(u8),
            /// `6Cxx`: wrong Le; resend the same command with Le = `xx` (`6C 00`: 256).
            WrongLe(u8),
            /// Any other status word.
            Other(u16),
        }

        impl StatusWord {
            /// Decodes SW1-SW2.
            pub const fn from_u16(sw: u16) -> StatusWord {
                match sw {
                    $( $code => StatusWord::$name, )*
                    0x6100..=0x61FF => StatusWord::BytesRemaining((sw & 0xFF) as u8),
                    0x63C0..=0x63CF => StatusWord::RetriesRemaining((sw & 0x0F) as u8),
                    0x6C00..=0x6CFF => StatusWord::WrongLe((sw & 0xFF) as u8),
                    other => StatusWord::Other(other),
                }
            }

            /// Encodes SW1-SW2.
            pub const fn to_u16(self) -> u16 {
                match self {
                    $( StatusWord::$name => $code, )*
                    StatusWord::BytesRemaining(n) => 0x6100 | n as u16,
                    StatusWord::RetriesRemaining(n) => 0x63C0 | (n & 0x0F) as u16,
                    StatusWord::WrongLe(n) => 0x6C00 | n as u16,
                    StatusWord::Other(sw) => sw,
                }
            }

            /// A short English description of the status word's meaning.
            pub const fn description(self) -> &'static str {
                match self {
                    $( StatusWord::$name => $text, )*
                    StatusWord::BytesRemaining(_) => "more response bytes available (GET RESPONSE)",
                    StatusWord::RetriesRemaining(_) => "verification failed or counter: tries remaining given in the low nibble",
                    StatusWord::WrongLe(_) => "wrong Le: resend with the exact length given in SW2",
                    StatusWord::Other(sw) => StatusWord::describe_range(sw),
                }
            }
        }
    };
}

status_words! {
    /// `9000`: normal processing.
    Success = 0x9000, "normal processing, no further qualification";
    /// `6200`: warning, state of non-volatile memory unchanged.
    WarningNoInformation = 0x6200, "warning: no information given (non-volatile memory unchanged)";
    /// `6281`: part of the returned data may be corrupted.
    DataMayBeCorrupted = 0x6281, "warning: part of returned data may be corrupted";
    /// `6282`: end of file or record reached before reading Ne bytes.
    EndOfFileWarning = 0x6282, "warning: end of file or record reached before reading Ne bytes";
    /// `6283`: selected file deactivated.
    FileDeactivated = 0x6283, "warning: selected file deactivated";
    /// `6284`: file control information not formatted correctly.
    FciNotFormatted = 0x6284, "warning: file control information not formatted according to 5.3.3";
    /// `6285`: selected file in termination state.
    FileTerminated = 0x6285, "warning: selected file in termination state";
    /// `6286`: no input data available from a sensor.
    NoSensorData = 0x6286, "warning: no input data available from a sensor on the card";
    /// `6300`: warning, non-volatile memory changed, no information (also: key without a retry limit).
    WarningNvChanged = 0x6300, "warning: non-volatile memory changed, no information given (key has no retry limit)";
    /// `6381`: file filled up by the last write.
    FileFilledUp = 0x6381, "warning: file filled up by the last write";
    /// `6400`: execution error, non-volatile memory unchanged.
    ExecutionError = 0x6400, "execution error: non-volatile memory unchanged";
    /// `6401`: immediate response required by the card.
    ImmediateResponseRequired = 0x6401, "execution error: immediate response required by the card";
    /// `6500`: execution error, non-volatile memory changed.
    ExecutionErrorNvChanged = 0x6500, "execution error: non-volatile memory changed";
    /// `6581`: memory failure.
    MemoryFailure = 0x6581, "execution error: memory failure";
    /// `6600`: security-related issue.
    SecurityIssue = 0x6600, "security-related issue";
    /// `66F1`: secure-messaging environment faulty (card-specific).
    SmEnvironmentFaulty = 0x66F1, "secure-messaging environment faulty (card-specific)";
    /// `6700`: wrong length.
    WrongLength = 0x6700, "wrong length (Lc or Le)";
    /// `6800`: function in CLA not supported.
    ClaFunctionNotSupported = 0x6800, "functions in CLA not supported";
    /// `6881`: logical channel not supported.
    LogicalChannelNotSupported = 0x6881, "logical channel not supported";
    /// `6882`: secure messaging not supported.
    SecureMessagingNotSupported = 0x6882, "secure messaging not supported";
    /// `6883`: last command of the chain expected.
    LastCommandOfChainExpected = 0x6883, "last command of the chain expected";
    /// `6884`: command chaining not supported.
    ChainingNotSupported = 0x6884, "command chaining not supported";
    /// `6900`: command not allowed.
    CommandNotAllowed = 0x6900, "command not allowed, no information given";
    /// `6981`: command incompatible with file structure.
    IncompatibleFileStructure = 0x6981, "command incompatible with file structure";
    /// `6982`: security status not satisfied (e.g. the signing certificate before the password).
    SecurityStatusNotSatisfied = 0x6982, "security status not satisfied";
    /// `6983`: authentication method blocked.
    AuthenticationMethodBlocked = 0x6983, "authentication method blocked";
    /// `6984`: reference data not usable (the PIN is blocked).
    ReferenceDataBlocked = 0x6984, "reference data not usable (PIN blocked)";
    /// `6985`: conditions of use not satisfied.
    ConditionsNotSatisfied = 0x6985, "conditions of use not satisfied";
    /// `6986`: command not allowed (no current EF).
    NoCurrentEf = 0x6986, "command not allowed (no current EF)";
    /// `6987`: expected secure-messaging data objects missing.
    SmObjectsMissing = 0x6987, "expected secure-messaging data objects missing";
    /// `6988`: incorrect secure-messaging data objects.
    SmObjectsIncorrect = 0x6988, "incorrect secure-messaging data objects";
    /// `69FC`: secure-messaging error (card-specific; the SM session is closed).
    SmSessionError = 0x69FC, "secure-messaging error, session closed (card-specific)";
    /// `6A00`: wrong parameters P1-P2, no information.
    WrongParameters = 0x6A00, "wrong parameters P1-P2, no information given";
    /// `6A80`: incorrect parameters in the data field.
    IncorrectData = 0x6A80, "incorrect parameters in the command data field";
    /// `6A81`: function not supported.
    FunctionNotSupported = 0x6A81, "function not supported";
    /// `6A82`: file or application not found.
    FileNotFound = 0x6A82, "file or application not found";
    /// `6A83`: record not found.
    RecordNotFound = 0x6A83, "record not found";
    /// `6A84`: not enough memory space in the file.
    NotEnoughMemory = 0x6A84, "not enough memory space in the file";
    /// `6A85`: Nc inconsistent with TLV structure.
    NcInconsistentWithTlv = 0x6A85, "Nc inconsistent with TLV structure";
    /// `6A86`: incorrect parameters P1-P2.
    IncorrectP1P2 = 0x6A86, "incorrect parameters P1-P2";
    /// `6A87`: Nc inconsistent with parameters P1-P2.
    NcInconsistentWithP1P2 = 0x6A87, "Nc inconsistent with parameters P1-P2";
    /// `6A88`: referenced data or data object not found.
    ReferencedDataNotFound = 0x6A88, "referenced data or reference data not found";
    /// `6A89`: file already exists.
    FileAlreadyExists = 0x6A89, "file already exists";
    /// `6A8A`: DF name already exists.
    DfNameAlreadyExists = 0x6A8A, "DF name already exists";
    /// `6B00`: wrong parameters P1-P2 (offset beyond the end of the file in JICSAP).
    WrongP1P2 = 0x6B00, "wrong parameters P1-P2 (offset beyond end of file)";
    /// `6D00`: instruction code not supported or invalid.
    InsNotSupported = 0x6D00, "instruction code not supported or invalid";
    /// `6E00`: class not supported.
    ClaNotSupported = 0x6E00, "class not supported";
    /// `6F00`: no precise diagnosis.
    NoPreciseDiagnosis = 0x6F00, "no precise diagnosis";
}

/// The broad class of a status word (ISO/IEC 7816-4 Table 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusCategory {
    /// `9000`, `61xx`: normal processing.
    Normal,
    /// `62xx`, `63xx`: warning processing.
    Warning,
    /// `64xx`–`66xx`: execution error.
    ExecutionError,
    /// `67xx`–`6Fxx`: checking error.
    CheckingError,
    /// Anything else (not an ISO interindustry status word).
    Unknown,
}

impl StatusWord {
    /// SW1 and SW2 as bytes.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// Decodes SW1 and SW2.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> StatusWord {
        StatusWord::from_u16(u16::from_be_bytes([sw1, sw2]))
    }

    /// `9000`.
    pub const fn is_success(self) -> bool {
        matches!(self, StatusWord::Success)
    }

    /// The category of ISO/IEC 7816-4 Table 5.
    pub const fn category(self) -> StatusCategory {
        match self.to_u16() >> 8 {
            0x90 | 0x61 => StatusCategory::Normal,
            0x62 | 0x63 => StatusCategory::Warning,
            0x64..=0x66 => StatusCategory::ExecutionError,
            0x67..=0x6F => StatusCategory::CheckingError,
            _ => StatusCategory::Unknown,
        }
    }

    /// Tries remaining, when the word reports a retry counter (`63Cx`).
    pub const fn retries(self) -> Option<u8> {
        match self {
            StatusWord::RetriesRemaining(n) => Some(n),
            _ => None,
        }
    }

    /// Whether the word says the referenced PIN or key is blocked: `63C0`, `6983` or `6984`.
    pub const fn is_blocked(self) -> bool {
        matches!(
            self,
            StatusWord::RetriesRemaining(0)
                | StatusWord::ReferenceDataBlocked
                | StatusWord::AuthenticationMethodBlocked
        )
    }

    const fn describe_range(sw: u16) -> &'static str {
        match sw >> 8 {
            0x62 => "warning: state of non-volatile memory unchanged",
            0x63 => "warning: state of non-volatile memory changed",
            0x64 => "execution error: state of non-volatile memory unchanged",
            0x65 => "execution error: state of non-volatile memory changed",
            0x66 => "security-related issue",
            0x68 => "functions in CLA not supported",
            0x69 => "command not allowed",
            0x6A => "wrong parameters P1-P2",
            0x90 => "normal processing (proprietary qualification)",
            0x91..=0x9F => "proprietary status",
            _ => "unknown status word",
        }
    }
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> Self {
        StatusWord::from_u16(sw)
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> Self {
        sw.to_u16()
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.to_u16(), self.description())
    }
}
