//! Which exchanges carry secrets or personal data.
//!
//! The redactor follows the card's selection state from the exchanges themselves (SELECT by DF
//! name, SELECT EF, short file identifiers in READ BINARY / READ RECORD, resets), so it works
//! under any card layer without being told what it is doing.

use mynacard_card::catalogue::{aid, jpki};

/// The application the card has selected, as far as the exchanges show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Application {
    /// Power-on state (MF level) or unknown.
    None,
    Jpki,
    /// Any other application: the text, visual, common and 住基 APs hold personal data in
    /// every readable file, and an unknown one is treated the same way.
    PersonalData,
}

/// What the trace must hide in one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Redactions {
    /// The command's data is a PIN, password or 照合番号: only the 4-byte header is recorded.
    pub command_data: bool,
    /// The response's data is personal: it is replaced by zero bytes of the same length (status
    /// word kept).
    pub response_data: bool,
}

/// The redaction state machine.
#[derive(Debug, Clone)]
pub struct Redactor {
    application: Application,
    /// The current EF, when known.
    file: Option<u16>,
    /// The last command read personal data, so a following GET RESPONSE carries more of it.
    reading_personal: bool,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

/// Whether a command carries reference data (PIN, password, 照合番号) in its data field, by
/// [`mynacard_apdu::commands::carries_reference_data`].
pub fn is_secret_command(command: &[u8]) -> bool {
    match command {
        [cla, ins, _, _, _, ..] => mynacard_apdu::commands::carries_reference_data(*cla, *ins),
        _ => false,
    }
}

fn is_read(ins: u8) -> bool {
    matches!(ins, 0xB0 | 0xB1 | 0xB2 | 0xB3 | 0xCA | 0xCB)
}

fn succeeded(response: &[u8]) -> bool {
    matches!(response, [.., 0x90, 0x00] | [.., 0x61 | 0x62, _])
}

impl Redactor {
    /// A redactor for a card in its power-on state.
    pub fn new() -> Self {
        Redactor {
            application: Application::None,
            file: None,
            reading_personal: false,
        }
    }

    /// Forgets the selection (the card was reset or the channel reopened).
    pub fn reset(&mut self) {
        *self = Redactor::new();
    }

    /// Classifies a command before it is sent.
    pub fn classify(&mut self, command: &[u8]) -> Redactions {
        let [cla, ins, p1, p2, ..] = *command else {
            return Redactions::default();
        };
        let command_data = is_secret_command(command);
        if cla & 0x80 == 0 && ins == 0xC0 {
            return Redactions {
                command_data,
                response_data: self.reading_personal,
            };
        }
        let mut file = self.file;
        if cla & 0x80 == 0 && matches!(ins, 0xB0 | 0xB1) && p1 & 0x80 != 0 {
            file = Some(u16::from(p1 & 0x1F));
        }
        if cla & 0x80 == 0 && matches!(ins, 0xB2 | 0xB3) && p2 >> 3 != 0 {
            file = Some(u16::from(p2 >> 3));
        }
        let personal = is_read(ins)
            && match self.application {
                Application::Jpki => file == Some(jpki::SIGN_CERT),
                Application::PersonalData | Application::None => true,
            };
        self.reading_personal = personal;
        Redactions {
            command_data,
            response_data: personal,
        }
    }

    /// Updates the selection state from a command and its response.
    pub fn observe(&mut self, command: &[u8], response: &[u8]) {
        let [cla, ins, p1, p2, ..] = *command else {
            return;
        };
        if cla & 0x80 != 0 || !succeeded(response) {
            return;
        }
        let data = command_data(command);
        match (ins, p1) {
            (0xA4, 0x04) => {
                self.application = if data == aid::JPKI.as_slice() {
                    Application::Jpki
                } else if data == aid::GP_ISD.as_slice() {
                    Application::None
                } else {
                    Application::PersonalData
                };
                self.file = None;
            }
            (0xA4, 0x00 | 0x02) => match data {
                [0x3F, 0x00] => {
                    self.application = Application::None;
                    self.file = None;
                }
                [hi, lo] => self.file = Some(u16::from_be_bytes([*hi, *lo])),
                _ => {}
            },
            (0xB0 | 0xB1, _) if p1 & 0x80 != 0 => self.file = Some(u16::from(p1 & 0x1F)),
            (0xB2 | 0xB3, _) if p2 >> 3 != 0 => self.file = Some(u16::from(p2 >> 3)),
            _ => {}
        }
    }
}

/// The data field of a short or extended command (empty when there is none or it cannot be
/// told).
fn command_data(command: &[u8]) -> &[u8] {
    match command.get(4..) {
        Some([lc, rest @ ..]) if *lc != 0 && rest.len() >= usize::from(*lc) => {
            &rest[..usize::from(*lc)]
        }
        Some([0, hi, lo, rest @ ..]) => {
            let n = usize::from(u16::from_be_bytes([*hi, *lo]));
            rest.get(..n).unwrap_or(&[])
        }
        _ => &[],
    }
}

/// The response with its data replaced by zero bytes, keeping the status word. A DER outer
/// header at the start of a certificate (`30 82 hi lo`) is kept, so that length discovery still
/// works when the trace is replayed.
pub fn redact_response(command: &[u8], response: &[u8]) -> Vec<u8> {
    let split = response.len().saturating_sub(2);
    let (data, sw) = response.split_at(split);
    let at_file_start = match command {
        [_, 0xB0, p1, p2, ..] if p1 & 0x80 != 0 => *p2 == 0,
        [_, 0xB0, p1, p2, ..] => *p1 == 0 && *p2 == 0,
        _ => false,
    };
    let keep = match data {
        [0x30, n @ 0x81..=0x83, ..] if at_file_start => 2 + usize::from(n & 0x7F),
        _ => 0,
    }
    .min(data.len());
    let mut out = Vec::with_capacity(response.len());
    out.extend_from_slice(&data[..keep]);
    out.resize(data.len(), 0);
    out.extend_from_slice(sw);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn select(aid: &[u8]) -> Vec<u8> {
        let mut c = vec![0x00, 0xA4, 0x04, 0x0C, aid.len() as u8];
        c.extend_from_slice(aid);
        c
    }
    const OK: [u8; 2] = [0x90, 0x00];

    #[test]
    fn pins_and_passwords_are_secret() {
        assert!(is_secret_command(&[
            0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4'
        ]));
        assert!(is_secret_command(&[
            0x00, 0x24, 0x01, 0x80, 0x04, b'5', b'6', b'7', b'8'
        ]));
        assert!(is_secret_command(&[
            0x80, 0x32, 0x00, 0x80, 0x04, 1, 2, 3, 4
        ]));
        // The retry-counter query has no data.
        assert!(!is_secret_command(&[0x00, 0x20, 0x00, 0x80]));
        assert!(!is_secret_command(&[0x00, 0xB0, 0x00, 0x00, 0x00]));
    }

    #[test]
    fn jpki_sign_cert_is_personal_auth_cert_is_not() {
        let mut r = Redactor::new();
        r.classify(&select(&aid::JPKI));
        r.observe(&select(&aid::JPKI), &OK);
        let sel_auth = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x0A];
        r.classify(&sel_auth);
        r.observe(&sel_auth, &OK);
        assert!(!r.classify(&[0x00, 0xB0, 0x00, 0x00, 0x00]).response_data);
        let sel_sign = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x01];
        r.classify(&sel_sign);
        r.observe(&sel_sign, &OK);
        assert!(r.classify(&[0x00, 0xB0, 0x00, 0x00, 0x00]).response_data);
        // GET RESPONSE continues the personal read.
        assert!(r.classify(&[0x00, 0xC0, 0x00, 0x00, 0x00]).response_data);
        // READ BINARY by SFI: 1 is the sign cert, 0x0A the auth cert.
        assert!(r.classify(&[0x00, 0xB0, 0x81, 0x00, 0x00]).response_data);
        assert!(!r.classify(&[0x00, 0xB0, 0x8A, 0x00, 0x00]).response_data);
        assert!(!r.classify(&[0x00, 0xC0, 0x00, 0x00, 0x00]).response_data);
    }

    #[test]
    fn every_read_in_text_and_visual_aps_is_personal() {
        for ap in [aid::TEXT, aid::VISUAL, aid::COMMON, aid::JUKI] {
            let mut r = Redactor::new();
            r.observe(&select(&ap), &OK);
            let sel = [0x00, 0xA4, 0x02, 0x0C, 0x02, 0x00, 0x04];
            r.observe(&sel, &OK);
            assert!(r.classify(&[0x00, 0xB0, 0x00, 0x00, 0x00]).response_data);
            assert!(r.classify(&[0x00, 0xB2, 0x01, 0x04, 0x00]).response_data);
        }
    }

    #[test]
    fn failed_select_keeps_the_state_and_reset_clears_it() {
        let mut r = Redactor::new();
        r.observe(&select(&aid::JPKI), &OK);
        r.observe(&select(&[0xA0, 0x00, 0x00, 0x00, 0x03]), &[0x6A, 0x82]);
        assert!(!r.classify(&[0x00, 0xB0, 0x8A, 0x00, 0x00]).response_data);
        r.reset();
        assert!(r.classify(&[0x00, 0xB0, 0x8A, 0x00, 0x00]).response_data);
    }

    #[test]
    fn redacted_response_keeps_length_sw_and_der_header() {
        let rsp = [0x30, 0x82, 0x04, 0x10, 0xAA, 0xBB, 0x90, 0x00];
        let out = redact_response(&[0x00, 0xB0, 0x00, 0x00, 0x00], &rsp);
        assert_eq!(out, [0x30, 0x82, 0x04, 0x10, 0, 0, 0x90, 0x00]);
        let out = redact_response(&[0x00, 0xB0, 0x01, 0x00, 0x00], &rsp);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0x90, 0x00]);
        let out = redact_response(&[0x00, 0xB0, 0x00, 0x00, 0x00], &[0x6A, 0x82]);
        assert_eq!(out, [0x6A, 0x82]);
    }

    proptest! {
        #[test]
        fn arbitrary_exchanges_never_panic(
            cmds in proptest::collection::vec(
                (proptest::collection::vec(any::<u8>(), 0..24), proptest::collection::vec(any::<u8>(), 0..8)),
                0..16)
        ) {
            let mut r = Redactor::new();
            for (c, rsp) in &cmds {
                let red = r.classify(c);
                r.observe(c, rsp);
                let out = redact_response(c, rsp);
                prop_assert_eq!(out.len(), rsp.len());
                let _ = red;
            }
        }
    }
}
