//! TLV encodings found on the card: BER-TLV (ISO/IEC 7816-4 §5.2.2, ISO/IEC 8825-1) and
//! SIMPLE-TLV (ISO/IEC 7816-4 §5.2.1).
//!
//! Parsers take untrusted card bytes: they never panic and never read past their input.

use thiserror::Error;

/// Why bytes are not a TLV structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TlvError {
    /// The input ended inside a tag, a length or a value.
    #[error("truncated TLV at offset {offset}")]
    Truncated {
        /// Offset where more bytes were needed.
        offset: usize,
    },
    /// BER indefinite length (`80`), which the card never uses.
    #[error("indefinite length at offset {offset} is not accepted")]
    IndefiniteLength {
        /// Offset of the length byte.
        offset: usize,
    },
    /// A length field longer than four bytes, or the reserved `FF`.
    #[error("unsupported length encoding at offset {offset}")]
    UnsupportedLength {
        /// Offset of the length byte.
        offset: usize,
    },
    /// A BER tag longer than four bytes.
    #[error("tag longer than four bytes at offset {offset}")]
    TagTooLong {
        /// Offset of the tag.
        offset: usize,
    },
    /// A tag that cannot be encoded (zero, or a BER tag value with an invalid first byte).
    #[error("invalid tag {tag:#X}")]
    InvalidTag {
        /// The tag.
        tag: u32,
    },
    /// A value too long for the encoding.
    #[error("value of {len} bytes is too long for this TLV encoding")]
    ValueTooLong {
        /// The value length.
        len: usize,
    },
}

/// One data object: its tag as the big-endian integer of its tag bytes (`0xDF21`, `0x7F21`,
/// `0x5F4E`, `0x30`), and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// Tag bytes as an integer.
    pub tag: u32,
    /// Value bytes.
    pub value: &'a [u8],
    /// Length of the tag and length fields before the value.
    pub header_len: usize,
}

impl Tlv<'_> {
    /// Whether the BER constructed bit (bit 6 of the first tag byte) is set.
    pub fn is_constructed(&self) -> bool {
        first_tag_byte(self.tag) & 0x20 != 0
    }

    /// Header plus value length.
    pub fn total_len(&self) -> usize {
        self.header_len + self.value.len()
    }
}

fn first_tag_byte(tag: u32) -> u8 {
    let bytes = tag.to_be_bytes();
    bytes.iter().copied().find(|b| *b != 0).unwrap_or(0)
}

/// BER-TLV.
pub mod ber {
    use super::{Tlv, TlvError};
    use alloc::vec::Vec;

    /// Parses the tag and length of the object at the start of `input` without needing its value:
    /// returns `(tag, header_len, value_len)`. Useful to learn a file's size from its first bytes.
    ///
    /// # Errors
    /// [`TlvError`] for truncated or unsupported headers.
    pub fn parse_header(input: &[u8]) -> Result<(u32, usize, usize), TlvError> {
        parse_header_at(input, 0)
    }

    fn parse_header_at(input: &[u8], base: usize) -> Result<(u32, usize, usize), TlvError> {
        let truncated = |o: usize| TlvError::Truncated { offset: base + o };
        let first = *input.first().ok_or(truncated(0))?;
        let mut tag = u32::from(first);
        let mut pos = 1;
        if first & 0x1F == 0x1F {
            loop {
                let b = *input.get(pos).ok_or(truncated(pos))?;
                if pos >= 4 {
                    return Err(TlvError::TagTooLong { offset: base });
                }
                tag = (tag << 8) | u32::from(b);
                pos += 1;
                if b & 0x80 == 0 {
                    break;
                }
            }
        }
        let len_byte = *input.get(pos).ok_or(truncated(pos))?;
        let len_offset = base + pos;
        pos += 1;
        let len = match len_byte {
            0x00..=0x7F => usize::from(len_byte),
            0x80 => return Err(TlvError::IndefiniteLength { offset: len_offset }),
            0x81..=0x84 => {
                let n = usize::from(len_byte & 0x7F);
                let bytes = input.get(pos..pos + n).ok_or(truncated(pos))?;
                pos += n;
                let v = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                usize::try_from(v)
                    .map_err(|_| TlvError::UnsupportedLength { offset: len_offset })?
            }
            _ => return Err(TlvError::UnsupportedLength { offset: len_offset }),
        };
        Ok((tag, pos, len))
    }

    /// Parses one object at the start of `input`; returns it and the bytes after it.
    ///
    /// # Errors
    /// [`TlvError`] when the object is malformed or truncated.
    pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
        parse_one_at(input, 0)
    }

    fn parse_one_at(input: &[u8], base: usize) -> Result<(Tlv<'_>, &[u8]), TlvError> {
        let (tag, header_len, len) = parse_header_at(input, base)?;
        let end = header_len
            .checked_add(len)
            .ok_or(TlvError::Truncated { offset: base })?;
        let value = input.get(header_len..end).ok_or(TlvError::Truncated {
            offset: base + input.len(),
        })?;
        Ok((
            Tlv {
                tag,
                value,
                header_len,
            },
            &input[end..],
        ))
    }

    /// Iterates over the consecutive objects in `input`. After the first error it stops.
    pub fn iter(input: &[u8]) -> Iter<'_> {
        Iter {
            rest: input,
            offset: 0,
            failed: false,
        }
    }

    /// Iterator returned by [`iter`].
    #[derive(Debug, Clone)]
    pub struct Iter<'a> {
        rest: &'a [u8],
        offset: usize,
        failed: bool,
    }

    impl<'a> Iterator for Iter<'a> {
        type Item = Result<Tlv<'a>, TlvError>;
        fn next(&mut self) -> Option<Self::Item> {
            if self.rest.is_empty() || self.failed {
                return None;
            }
            match parse_one_at(self.rest, self.offset) {
                Ok((tlv, rest)) => {
                    self.offset += tlv.total_len();
                    self.rest = rest;
                    Some(Ok(tlv))
                }
                Err(e) => {
                    self.failed = true;
                    Some(Err(e))
                }
            }
        }
    }

    /// Finds the first object with `tag` among the consecutive objects of `input`.
    ///
    /// # Errors
    /// [`TlvError`] when a malformed object comes before it.
    pub fn find(input: &[u8], tag: u32) -> Result<Option<Tlv<'_>>, TlvError> {
        for tlv in iter(input) {
            let tlv = tlv?;
            if tlv.tag == tag {
                return Ok(Some(tlv));
            }
        }
        Ok(None)
    }

    /// Parses all consecutive objects of `input`.
    ///
    /// # Errors
    /// The first [`TlvError`].
    pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
        iter(input).collect()
    }

    /// The tag bytes of `tag` (leading zero bytes dropped).
    ///
    /// # Errors
    /// [`TlvError::InvalidTag`] for 0 or a tag whose bytes are not a valid BER tag.
    pub fn tag_bytes(tag: u32) -> Result<Vec<u8>, TlvError> {
        let bytes = tag.to_be_bytes();
        let start = bytes
            .iter()
            .position(|b| *b != 0)
            .ok_or(TlvError::InvalidTag { tag })?;
        let t = &bytes[start..];
        let multi = t[0] & 0x1F == 0x1F;
        let valid = if t.len() == 1 {
            !multi
        } else {
            multi && t[1..t.len() - 1].iter().all(|b| b & 0x80 != 0) && t[t.len() - 1] & 0x80 == 0
        };
        if valid {
            Ok(t.to_vec())
        } else {
            Err(TlvError::InvalidTag { tag })
        }
    }

    /// Appends the minimal encoding of a length.
    pub fn encode_len(len: usize, out: &mut Vec<u8>) {
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = (len as u64).to_be_bytes();
            let start = bytes.iter().position(|b| *b != 0).unwrap_or(7);
            out.push(0x80 | (8 - start) as u8);
            out.extend_from_slice(&bytes[start..]);
        }
    }

    /// Appends one object (DER-style minimal length).
    ///
    /// # Errors
    /// [`TlvError::InvalidTag`], or [`TlvError::ValueTooLong`] beyond four length bytes.
    pub fn encode(tag: u32, value: &[u8], out: &mut Vec<u8>) -> Result<(), TlvError> {
        if value.len() > u32::MAX as usize {
            return Err(TlvError::ValueTooLong { len: value.len() });
        }
        out.extend_from_slice(&tag_bytes(tag)?);
        encode_len(value.len(), out);
        out.extend_from_slice(value);
        Ok(())
    }

    /// One object as a new vector.
    ///
    /// # Errors
    /// As [`encode`].
    pub fn to_vec(tag: u32, value: &[u8]) -> Result<Vec<u8>, TlvError> {
        let mut out = Vec::with_capacity(value.len() + 8);
        encode(tag, value, &mut out)?;
        Ok(out)
    }
}

/// SIMPLE-TLV: a one-byte tag (`01`–`FE`), a length of one byte (`00`–`FE`) or `FF` followed by
/// two bytes.
pub mod simple {
    use super::{Tlv, TlvError};
    use alloc::vec::Vec;

    /// Parses one object at the start of `input`; returns it and the bytes after it.
    ///
    /// # Errors
    /// [`TlvError`] when the object is malformed or truncated.
    pub fn parse_one(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
        let (&tag, rest) = input
            .split_first()
            .ok_or(TlvError::Truncated { offset: 0 })?;
        if tag == 0x00 || tag == 0xFF {
            return Err(TlvError::InvalidTag {
                tag: u32::from(tag),
            });
        }
        let (&l, rest) = rest
            .split_first()
            .ok_or(TlvError::Truncated { offset: 1 })?;
        let (len, header_len, rest) = if l == 0xFF {
            let ext = rest.get(..2).ok_or(TlvError::Truncated { offset: 2 })?;
            (
                usize::from(u16::from_be_bytes([ext[0], ext[1]])),
                4,
                &rest[2..],
            )
        } else {
            (usize::from(l), 2, rest)
        };
        let value = rest.get(..len).ok_or(TlvError::Truncated {
            offset: header_len + rest.len(),
        })?;
        Ok((
            Tlv {
                tag: u32::from(tag),
                value,
                header_len,
            },
            &rest[len..],
        ))
    }

    /// Parses all consecutive objects of `input`.
    ///
    /// # Errors
    /// The first [`TlvError`].
    pub fn parse_all(input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
        let mut out = Vec::new();
        let mut rest = input;
        while !rest.is_empty() {
            let (tlv, r) = parse_one(rest)?;
            out.push(tlv);
            rest = r;
        }
        Ok(out)
    }

    /// Appends one object.
    ///
    /// # Errors
    /// [`TlvError::InvalidTag`] for `00`/`FF`, [`TlvError::ValueTooLong`] beyond 65535 bytes.
    pub fn encode(tag: u8, value: &[u8], out: &mut Vec<u8>) -> Result<(), TlvError> {
        if tag == 0x00 || tag == 0xFF {
            return Err(TlvError::InvalidTag {
                tag: u32::from(tag),
            });
        }
        let len =
            u16::try_from(value.len()).map_err(|_| TlvError::ValueTooLong { len: value.len() })?;
        out.push(tag);
        if len < 0xFF {
            out.push(len as u8);
        } else {
            out.push(0xFF);
            out.extend_from_slice(&len.to_be_bytes());
        }
        out.extend_from_slice(value);
        Ok(())
    }
}
