//! The `61xx` / `6Cxx` response conventions (ISO/IEC 7816-4 §5.3.4, ISO/IEC 7816-3 §12.2) as a
//! pure value: it never transmits, it says what to transmit next.

use alloc::vec::Vec;

use crate::{ApduError, Command, Response, StatusWord};

/// INS of GET RESPONSE.
const INS_GET_RESPONSE: u8 = 0xC0;

/// What to do after feeding a response to a [`ResponseAssembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The response is complete: its data is everything collected, with the final status word.
    Done(Response),
    /// `61xx`: send this GET RESPONSE (`00 C0 00 00 xx`) and feed its answer.
    GetResponse(Command),
    /// `6Cxx`: resend this command (the previous one with Le = `xx`) and feed its answer.
    Resend(Command),
}

/// Bounds that stop a faulty or hostile card from keeping the host in a loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssemblerLimits {
    /// The most response data to collect in all.
    pub max_total_len: usize,
    /// The most GET RESPONSE rounds.
    pub max_rounds: u32,
}

impl Default for AssemblerLimits {
    fn default() -> Self {
        AssemblerLimits {
            max_total_len: 1 << 20,
            max_rounds: 4096,
        }
    }
}

/// Collects one logical response across `61xx` GET RESPONSE rounds and `6Cxx` resends.
///
/// ```
/// use mynacard_apdu::{Command, Response, ResponseAssembler, Step, StatusWord};
/// let read = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(256);
/// let mut asm = ResponseAssembler::new(&read);
/// let next = asm.feed(Response::new([1, 2], StatusWord::BytesRemaining(3)))?;
/// let Step::GetResponse(get) = next else { panic!() };
/// assert_eq!((get.ins, get.ne()), (0xC0, Some(3)));
/// let done = asm.feed(Response::new([3, 4, 5], StatusWord::Success))?;
/// assert_eq!(done, Step::Done(Response::new([1, 2, 3, 4, 5], StatusWord::Success)));
/// # Ok::<(), mynacard_apdu::ApduError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResponseAssembler {
    last: Command,
    data: Vec<u8>,
    resent: bool,
    rounds: u32,
    limits: AssemblerLimits,
}

impl ResponseAssembler {
    /// An assembler for the answer to `command`, with default limits.
    pub fn new(command: &Command) -> Self {
        Self::with_limits(command, AssemblerLimits::default())
    }

    /// An assembler with explicit limits.
    pub fn with_limits(command: &Command, limits: AssemblerLimits) -> Self {
        ResponseAssembler {
            last: command.clone(),
            data: Vec::new(),
            resent: false,
            rounds: 0,
            limits,
        }
    }

    /// Feeds the card's answer to the last command sent and says what comes next.
    ///
    /// A command with secret data (VERIFY, CHANGE REFERENCE DATA) is never resent: a `6Cxx` to
    /// it is returned as [`Step::Done`], so that no PIN attempt is ever spent twice.
    ///
    /// # Errors
    /// [`ApduError::AssemblyLimit`] when the limits are exceeded, [`ApduError::RepeatedWrongLe`]
    /// when the card answers `6Cxx` to a resend.
    pub fn feed(&mut self, response: Response) -> Result<Step, ApduError> {
        let Response { data, sw } = response;
        if self.data.len().saturating_add(data.len()) > self.limits.max_total_len {
            return Err(ApduError::AssemblyLimit {
                what: "total response length",
            });
        }
        match sw {
            StatusWord::BytesRemaining(n) => {
                self.data.extend_from_slice(&data);
                self.rounds = self.rounds.saturating_add(1);
                if self.rounds > self.limits.max_rounds {
                    return Err(ApduError::AssemblyLimit {
                        what: "GET RESPONSE rounds",
                    });
                }
                let ne = if n == 0 { 256 } else { u32::from(n) };
                let get = Command::new(get_response_cla(self.last.cla), INS_GET_RESPONSE, 0, 0)
                    .with_ne(ne);
                self.last = get.clone();
                self.resent = false;
                Ok(Step::GetResponse(get))
            }
            StatusWord::WrongLe(n) if !self.last.data().is_sensitive() => {
                if self.resent {
                    return Err(ApduError::RepeatedWrongLe);
                }
                let ne = if n == 0 { 256 } else { u32::from(n) };
                let again = self.last.clone().with_ne(ne);
                self.last = again.clone();
                self.resent = true;
                Ok(Step::Resend(again))
            }
            sw => {
                let mut all = core::mem::take(&mut self.data);
                all.extend_from_slice(&data);
                Ok(Step::Done(Response { data: all, sw }))
            }
        }
    }
}

/// The class byte of a GET RESPONSE following a command of class `cla`: interindustry, no
/// chaining and no secure messaging, on the same logical channel (ISO/IEC 7816-4 §5.4.1).
fn get_response_cla(cla: u8) -> u8 {
    match cla {
        // Further interindustry classes carry channels 4-19 in their low four bits.
        0x40..=0x7F => 0x40 | (cla & 0x0F),
        _ => cla & 0x03,
    }
}
