//! Tiny, valid, deterministic PNG files for the card-face images.
//!
//! The simulated card has no font renderer: its name, address and security-code images are
//! patterns derived from the text they stand for (a different text gives a different image), and
//! the photo is a greyscale gradient. They are real PNGs (stored deflate blocks, correct CRCs and
//! Adler-32), so a client that decodes them succeeds.

use sha2::{Digest as _, Sha256};

/// A 1-bit greyscale PNG of `width` × `height` whose pixels are derived from `text`.
pub fn text_image(text: &str, width: u32, height: u32) -> Vec<u8> {
    let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
    // A one-pixel white border, then bars: one 32-bit hash word picks each column's ink.
    bilevel(width, height, |x, y| {
        if x == 0 || y == 0 || x + 1 == width || y + 1 == height {
            return false;
        }
        let bit = (x as usize).wrapping_mul(7).wrapping_add(y as usize / 4) % 256;
        digest[bit / 8] & (1 << (bit % 8)) != 0
    })
}

/// An 8-bit greyscale PNG of `width` × `height`: a diagonal gradient shifted by `seed`.
pub fn photo(seed: &str, width: u32, height: u32) -> Vec<u8> {
    let shift = Sha256::digest(seed.as_bytes())[0];
    let mut raw = Vec::with_capacity(((width + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // filter type None
        for x in 0..width {
            raw.push(((x + y) as u8).wrapping_mul(4).wrapping_add(shift));
        }
    }
    encode(width, height, 8, 0, &raw)
}

/// A 1-bit greyscale image; `ink(x, y)` true paints black.
pub fn bilevel(width: u32, height: u32, ink: impl Fn(u32, u32) -> bool) -> Vec<u8> {
    let row_bytes = width.div_ceil(8) as usize;
    let mut raw = Vec::with_capacity((row_bytes + 1) * height as usize);
    for y in 0..height {
        raw.push(0); // filter type None
        let mut row = vec![0xFFu8; row_bytes]; // 1 = white in greyscale
        for x in 0..width {
            if ink(x, y) {
                row[(x / 8) as usize] &= !(0x80 >> (x % 8));
            }
        }
        raw.extend_from_slice(&row);
    }
    encode(width, height, 1, 0, &raw)
}

fn encode(width: u32, height: u32, bit_depth: u8, colour_type: u8, raw: &[u8]) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, colour_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib_stored(raw));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// zlib stream of uncompressed deflate blocks (RFC 1950/1951): no compressor needed.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut blocks = data.chunks(0xFFFF).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(block) = blocks.next() {
        out.push(u8::from(blocks.peek().is_none()));
        let len = block.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn images_are_deterministic_and_text_dependent() {
        assert_eq!(text_image("a", 24, 12), text_image("a", 24, 12));
        assert_ne!(text_image("a", 24, 12), text_image("b", 24, 12));
        let png = photo("x", 16, 20);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
    }
}
