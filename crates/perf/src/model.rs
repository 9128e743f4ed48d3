//! The time model at the counter: each flow's APDUs, bytes and on-card RSA operations priced on
//! a link. Every parameter is in [`LINKS`] and [`RSA_SIGN_MS`] with its source or marked as an
//! assumption; the report prints them beside the figures.

use crate::flows::Cost;

/// One link and its cost parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Link {
    /// Short name (a column of the report).
    pub name: &'static str,
    /// Bit rate, bit/s.
    pub bit_rate: f64,
    /// Bits on the air or wire per byte of payload, framing included.
    pub bits_per_byte: f64,
    /// Frame bytes added per APDU in each direction (block prologue and epilogue).
    pub frame_bytes_per_apdu: f64,
    /// Per-APDU turnaround: the reader's and card's fixed time per command, ms.
    pub turnaround_ms: f64,
    /// Where the figures come from.
    pub source: &'static str,
}

/// On-card RSA-2048 private-key operation, ms. **Assumption**: smart-card RSA-2048 CRT
/// signatures are commonly quoted between 100 and 300 ms; this takes a middle value.
pub const RSA_SIGN_MS: f64 = 150.0;

/// The links modelled.
pub const LINKS: [Link; 5] = [
    Link {
        name: "contact T=1 115.2 kbit/s",
        bit_rate: 115_200.0,
        // ISO/IEC 7816-3 character: start, 8 data, parity, 1 etu guard time (T=1) = 11 etu.
        bits_per_byte: 11.0,
        // T=1 block: NAD, PCB, LEN prologue and an LRC, both ways.
        frame_bytes_per_apdu: 4.0,
        turnaround_ms: 1.0,
        source: "ISO/IEC 7816-3 (11 etu per character, T=1 block of 4 framing bytes); the 115.2 kbit/s rate (Fi/Di 372/32 at 3.57 MHz, what readers negotiate) and the 1 ms turnaround are assumptions",
    },
    Link {
        name: "NFC 106 kbit/s",
        bit_rate: 105_937.5,
        // ISO/IEC 14443-3 type B character: start, 8 data, stop = 10 etu.
        bits_per_byte: 10.0,
        // SOF/EOF (about 2 bytes' time), PCB and CRC_B (2) per I-block.
        frame_bytes_per_apdu: 5.0,
        turnaround_ms: 3.0,
        source: "ISO/IEC 14443-2/3 type B (fc/128, 10 etu per character, PCB + CRC_B + SOF/EOF per block); the 3 ms turnaround (frame waiting, reader and host stack) is an assumption",
    },
    Link {
        name: "NFC 212 kbit/s",
        bit_rate: 211_875.0,
        bits_per_byte: 10.0,
        frame_bytes_per_apdu: 5.0,
        turnaround_ms: 3.0,
        source: "as NFC 106 kbit/s at fc/64",
    },
    Link {
        name: "NFC 424 kbit/s",
        bit_rate: 423_750.0,
        bits_per_byte: 10.0,
        frame_bytes_per_apdu: 5.0,
        turnaround_ms: 3.0,
        source: "as NFC 106 kbit/s at fc/32",
    },
    Link {
        name: "NFC 848 kbit/s",
        bit_rate: 847_500.0,
        bits_per_byte: 10.0,
        frame_bytes_per_apdu: 5.0,
        turnaround_ms: 3.0,
        source: "as NFC 106 kbit/s at fc/16",
    },
];

impl Link {
    /// Milliseconds per byte on this link.
    pub fn byte_ms(&self) -> f64 {
        self.bits_per_byte / self.bit_rate * 1000.0
    }

    /// Modelled time of `cost` on this link, ms: APDUs × turnaround + (bytes + framing) ×
    /// per-byte time + RSA operations × [`RSA_SIGN_MS`].
    pub fn time_ms(&self, cost: &Cost) -> f64 {
        let apdus = cost.apdus as f64;
        let bytes = cost.bytes as f64 + apdus * 2.0 * self.frame_bytes_per_apdu;
        apdus * self.turnaround_ms + bytes * self.byte_ms() + cost.rsa_ops as f64 * RSA_SIGN_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_turnaround_plus_bytes_plus_rsa() {
        let link = Link {
            name: "t",
            bit_rate: 10_000.0,
            bits_per_byte: 10.0,
            frame_bytes_per_apdu: 1.0,
            turnaround_ms: 2.0,
            source: "test",
        };
        assert!((link.byte_ms() - 1.0).abs() < 1e-12);
        let cost = Cost {
            apdus: 3,
            bytes: 100,
            rsa_ops: 1,
        };
        // 3 × 2 ms + (100 + 3 × 2 × 1) × 1 ms + 150 ms.
        let expected = 6.0 + 106.0 + RSA_SIGN_MS;
        assert!((link.time_ms(&cost) - expected).abs() < 1e-9);
    }

    #[test]
    fn faster_links_are_faster() {
        let cost = Cost {
            apdus: 10,
            bytes: 3000,
            rsa_ops: 0,
        };
        let times: Vec<f64> = LINKS[1..].iter().map(|l| l.time_ms(&cost)).collect();
        assert!(times.windows(2).all(|w| w[0] > w[1]));
    }
}
