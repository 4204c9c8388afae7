//! Frame header codec.

use crate::error::{BufferTooSmall, ProtocolError};
use crate::Status;

/// The longest frame header: 2 bytes + 8 bytes of length + 4 bytes of mask key.
pub const MAX_HEADER_LEN: usize = 14;

/// A frame opcode (RFC 6455 §5.2). Reserved opcodes are refused when decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: the first frame of a text message.
    Text,
    /// 0x2: the first frame of a binary message.
    Binary,
    /// 0x8: Close.
    Close,
    /// 0x9: Ping.
    Ping,
    /// 0xA: Pong.
    Pong,
}

impl OpCode {
    /// The opcode's 4-bit wire value.
    pub const fn bits(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// The opcode for a 4-bit wire value, or the reserved-opcode error.
    pub const fn from_bits(bits: u8) -> Result<OpCode, ProtocolError> {
        Ok(match bits {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }

    /// Whether this is a control opcode (Close, Ping, Pong).
    pub const fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// FIN: this frame ends its message.
    pub fin: bool,
    /// RSV1, RSV2, RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, when the frame is masked.
    pub mask: Option<[u8; 4]>,
    /// The payload length in bytes.
    pub payload_len: u64,
}

impl Header {
    /// Decodes a header from the start of `buf`: the header and its length in bytes, or
    /// `Partial` when `buf` does not hold the whole header yet.
    ///
    /// Only the wire format is checked here (reserved opcodes, a 64-bit length with the
    /// top bit set); rules that depend on the connection (masking by role, RSV bits,
    /// control frame limits, fragmentation) are the connection's.
    ///
    /// ```
    /// use sockeye_proto::frame::{Header, OpCode};
    /// use sockeye_proto::Status;
    ///
    /// let (header, len) = Header::decode(&[0x81, 0x05, b'H']).unwrap().complete().unwrap();
    /// assert_eq!((header.opcode, header.fin, header.payload_len, len), (OpCode::Text, true, 5, 2));
    /// assert_eq!(Header::decode(&[0x82, 0x7e, 0x01]), Ok(Status::Partial));
    /// ```
    pub fn decode(buf: &[u8]) -> Result<Status<(Header, usize)>, ProtocolError> {
        let [first, second, rest @ ..] = buf else {
            return Ok(Status::Partial);
        };
        let opcode = OpCode::from_bits(first & 0x0F)?;
        let masked = second & 0x80 != 0;
        let (payload_len, len_bytes) = match second & 0x7F {
            126 => match rest {
                [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 2),
                _ => return Ok(Status::Partial),
            },
            127 => match rest.get(..8) {
                Some(bytes) => {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(bytes);
                    let len = u64::from_be_bytes(word);
                    if len >> 63 != 0 {
                        return Err(ProtocolError::InvalidLength);
                    }
                    (len, 8)
                }
                None => return Ok(Status::Partial),
            },
            short => (u64::from(short), 0),
        };
        let mut header_len = 2 + len_bytes;
        let mask = if masked {
            let Some(key) = rest.get(len_bytes..len_bytes + 4) else {
                return Ok(Status::Partial);
            };
            header_len += 4;
            Some([key[0], key[1], key[2], key[3]])
        } else {
            None
        };
        Ok(Status::Complete((
            Header {
                fin: first & 0x80 != 0,
                rsv: (first >> 4) & 0x07,
                opcode,
                mask,
                payload_len,
            },
            header_len,
        )))
    }

    /// The encoded length of this header (2 to 14 bytes), using the shortest length form.
    pub const fn encoded_len(&self) -> usize {
        let len_bytes = match self.payload_len {
            0..=125 => 0,
            126..=0xFFFF => 2,
            _ => 8,
        };
        2 + len_bytes + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Encodes this header (shortest length form) into the start of `out`.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let head = self.head();
        let bytes = head.as_bytes();
        let dest = out.get_mut(..bytes.len()).ok_or(BufferTooSmall {
            needed: bytes.len(),
        })?;
        dest.copy_from_slice(bytes);
        Ok(bytes.len())
    }

    /// Encodes this header into an inline [`FrameHead`].
    pub fn head(&self) -> FrameHead {
        let mut bytes = [0u8; MAX_HEADER_LEN];
        bytes[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x07) << 4) | self.opcode.bits();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = 2;
        match self.payload_len {
            short @ 0..=125 => bytes[1] = mask_bit | short as u8,
            medium @ 126..=0xFFFF => {
                bytes[1] = mask_bit | 126;
                bytes[2..4].copy_from_slice(&(medium as u16).to_be_bytes());
                len = 4;
            }
            long => {
                bytes[1] = mask_bit | 127;
                bytes[2..10].copy_from_slice(&long.to_be_bytes());
                len = 10;
            }
        }
        if let Some(key) = self.mask {
            bytes[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        FrameHead {
            bytes,
            len: len as u8,
        }
    }
}

/// An encoded frame header held inline (at most 14 bytes), for a vectored write of
/// `[head, payload]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHead {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl FrameHead {
    /// The header bytes to write before the payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl core::ops::Deref for FrameHead {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsRef<[u8]> for FrameHead {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(header: Header) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut buf).unwrap();
        assert_eq!(n, header.encoded_len());
        assert_eq!(Header::decode(&buf[..n]), Ok(Status::Complete((header, n))));
        for cut in 0..n {
            assert_eq!(
                Header::decode(&buf[..cut]),
                Ok(Status::Partial),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn every_length_form_round_trips() {
        for len in [0, 1, 125, 126, 127, 0xFFFF, 0x1_0000, u64::MAX >> 1] {
            for mask in [None, Some([1, 2, 3, 4])] {
                for opcode in [
                    OpCode::Text,
                    OpCode::Binary,
                    OpCode::Continuation,
                    OpCode::Ping,
                ] {
                    round_trip(Header {
                        fin: len % 2 == 0,
                        rsv: (len % 8) as u8,
                        opcode,
                        mask,
                        payload_len: len,
                    });
                }
            }
        }
    }

    #[test]
    fn rfc_examples_decode() {
        // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
        let (h, n) = Header::decode(&[0x81, 0x05]).unwrap().complete().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, h.mask, n),
            (true, OpCode::Text, 5, None, 2)
        );
        // A masked "Hello".
        let (h, n) = Header::decode(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d])
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!((h.mask, n), (Some([0x37, 0xfa, 0x21, 0x3d]), 6));
        // 256 bytes binary in a single unmasked frame, and 64 KiB.
        let (h, _) = Header::decode(&[0x82, 0x7E, 0x01, 0x00])
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(h.payload_len, 256);
        let (h, n) = Header::decode(&[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn top_bit_length_and_reserved_opcodes_are_refused() {
        assert_eq!(
            Header::decode(&[0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::InvalidLength)
        );
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                Header::decode(&[0x80 | op, 0]),
                Err(ProtocolError::ReservedOpcode(op))
            );
        }
    }

    #[test]
    fn encode_into_small_buffer_fails_cleanly() {
        let header = Header {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some([9; 4]),
            payload_len: 70_000,
        };
        let mut small = [0u8; 13];
        assert_eq!(
            header.encode(&mut small),
            Err(BufferTooSmall { needed: 14 })
        );
        assert_eq!(small, [0u8; 13]);
    }
}
