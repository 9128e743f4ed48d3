//! A minimal JPEG 2000 file (ISO/IEC 15444-1 Annex I, JP2) for the simulated card's photo: real
//! cards hold the face photo as a JPEG 2000 greyscale image (card-protocol §B.7; the real test
//! card's `DF27` starts with the JP2 signature box).
//!
//! The codestream is the smallest a decoder accepts for one 8-bit greyscale component: one tile,
//! no wavelet decomposition, one quality layer, and a single empty packet, so every sample decodes
//! to the mid level. The bytes differ per seed only in a comment (`COM`) segment, which keeps
//! photos of different simulated cards distinct.

use sha2::{Digest, Sha256};

/// The JPEG 2000 signature box (I.5.1), as every JP2 file starts.
pub const SIGNATURE_BOX: [u8; 12] = [
    0, 0, 0, 0x0C, b'j', b'P', b' ', b' ', 0x0D, 0x0A, 0x87, 0x0A,
];

fn boxed(kind: &[u8; 4], contents: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + contents.len());
    out.extend_from_slice(&((8 + contents.len()) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(contents);
    out
}

fn segment(marker: u16, body: &[u8]) -> Vec<u8> {
    let mut out = marker.to_be_bytes().to_vec();
    out.extend_from_slice(&((2 + body.len()) as u16).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// The codestream (Annex A): SOC, SIZ, COD, QCD, COM, one tile-part with one empty packet, EOC.
fn codestream(seed: &str, width: u32, height: u32) -> Vec<u8> {
    let mut siz = vec![0, 0]; // Rsiz: no restrictions
    for v in [width, height, 0, 0, width, height, 0, 0] {
        siz.extend_from_slice(&v.to_be_bytes());
    }
    siz.extend_from_slice(&[0, 1, 0x07, 1, 1]); // one component, 8-bit unsigned, no subsampling
    // Scod 0; LRCP, 1 layer, no MCT; 0 decomposition levels, 64×64 code-blocks, style 0, 5-3.
    let cod = [0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x04, 0x04, 0x00, 0x01];
    // No quantization, 2 guard bits; the LL band's exponent is the bit depth (8).
    let qcd = [0x40, 0x40];
    let digest = Sha256::digest(seed.as_bytes());
    let mut com = vec![0x00, 0x01]; // Rcom: Latin-1 text
    com.extend_from_slice(b"mynacard-sim ");
    com.extend(
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .bytes(),
    );
    let mut out = vec![0xFF, 0x4F];
    out.extend(segment(0xFF51, &siz));
    out.extend(segment(0xFF52, &cod));
    out.extend(segment(0xFF5C, &qcd));
    out.extend(segment(0xFF64, &com));
    // SOT: tile 0, Psot = SOT segment (12) + SOD (2) + one packet byte, part 0 of 1.
    let psot: u32 = 12 + 2 + 1;
    let mut sot = vec![0, 0];
    sot.extend_from_slice(&psot.to_be_bytes());
    sot.extend_from_slice(&[0, 1]);
    out.extend(segment(0xFF90, &sot));
    out.extend_from_slice(&[0xFF, 0x93]);
    out.push(0x00); // an empty packet: its first header bit is 0
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A JP2 file of a `width` × `height` 8-bit greyscale image (all samples mid-grey).
pub fn photo(seed: &str, width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = Vec::with_capacity(14);
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&[0, 1, 0x07, 7, 0, 0]); // 1 component, 8 bit, JPEG 2000, known space
    let colr = [1, 0, 0, 0, 0, 0, 17]; // enumerated colour space 17: greyscale
    let header = [boxed(b"ihdr", &ihdr), boxed(b"colr", &colr)].concat();
    let mut ftyp = b"jp2 ".to_vec();
    ftyp.extend_from_slice(&[0, 0, 0, 0]);
    ftyp.extend_from_slice(b"jp2 ");
    [
        SIGNATURE_BOX.to_vec(),
        boxed(b"ftyp", &ftyp),
        boxed(b"jp2h", &header),
        boxed(b"jp2c", &codestream(seed, width, height)),
    ]
    .concat()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The boxes in order with their lengths adding up, and the codestream's markers in place.
    #[test]
    fn the_file_is_boxed_and_the_codestream_well_formed() {
        let file = photo("adult", 36, 45);
        assert!(file.starts_with(&SIGNATURE_BOX));
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < file.len() {
            let len = u32::from_be_bytes(file[at..at + 4].try_into().unwrap()) as usize;
            kinds.push(file[at + 4..at + 8].to_vec());
            at += len;
        }
        assert_eq!(at, file.len());
        assert_eq!(
            kinds,
            [
                b"jP  ".to_vec(),
                b"ftyp".to_vec(),
                b"jp2h".to_vec(),
                b"jp2c".to_vec()
            ]
        );
        let stream = codestream("adult", 36, 45);
        assert!(file.ends_with(&stream));
        assert_eq!(&stream[..4], &[0xFF, 0x4F, 0xFF, 0x51]);
        assert_eq!(&stream[stream.len() - 2..], &[0xFF, 0xD9]);
        // SIZ carries the size; the tile-part length covers SOT through the packet.
        assert_eq!(u32::from_be_bytes(stream[8..12].try_into().unwrap()), 36);
        assert_eq!(u32::from_be_bytes(stream[12..16].try_into().unwrap()), 45);
        let sot = stream.windows(2).position(|w| w == [0xFF, 0x90]).unwrap();
        let psot = u32::from_be_bytes(stream[sot + 6..sot + 10].try_into().unwrap()) as usize;
        assert_eq!(sot + psot, stream.len() - 2);
        assert_ne!(photo("a", 4, 4), photo("b", 4, 4));
    }
}
