//! Raw frames: build any frame, valid or not, and decode what a side wrote.

use sockeye_proto::frame::{apply_mask, Header, OpCode};
use sockeye_proto::{CloseCode, Role, Status};

/// How a [`Frame`]'s payload length is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// The shortest form (7-bit, 16-bit or 64-bit).
    Shortest,
    /// The 16-bit form (126 + 2 bytes), even for a short payload.
    Medium,
    /// The 64-bit form (127 + 8 bytes), even for a short payload.
    Long,
    /// The 64-bit form with this value, whatever the payload (a lying length, or the top
    /// bit set).
    Raw64(u64),
}

/// A frame to put on the wire, built field by field; nothing is checked.
///
/// ```
/// use sockeye_tests::Frame;
/// // RFC 6455 §5.7: a single-frame masked text message "Hello".
/// let bytes = Frame::text("Hello").masked([0x37, 0xfa, 0x21, 0x3d]).encode();
/// assert_eq!(bytes, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// FIN.
    pub fin: bool,
    /// RSV1-3 as the low three bits.
    pub rsv: u8,
    /// The 4-bit opcode, reserved values allowed.
    pub opcode: u8,
    /// The masking key, if masked.
    pub mask: Option<[u8; 4]>,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
    /// How the length is written.
    pub length: Length,
}

/// The key [`Frame::from_role`] masks client frames with.
pub const TEST_MASK: [u8; 4] = [0xA5, 0x3C, 0x0F, 0x96];

impl Frame {
    /// A final, unmasked frame with this opcode and payload.
    pub fn new(opcode: u8, payload: &[u8]) -> Frame {
        Frame {
            fin: true,
            rsv: 0,
            opcode,
            mask: None,
            payload: payload.to_vec(),
            length: Length::Shortest,
        }
    }

    /// A Text frame.
    pub fn text(text: &str) -> Frame {
        Frame::new(0x1, text.as_bytes())
    }

    /// A Text frame with arbitrary (maybe invalid) bytes.
    pub fn text_bytes(bytes: &[u8]) -> Frame {
        Frame::new(0x1, bytes)
    }

    /// A Binary frame.
    pub fn binary(bytes: &[u8]) -> Frame {
        Frame::new(0x2, bytes)
    }

    /// A Continuation frame.
    pub fn continuation(bytes: &[u8]) -> Frame {
        Frame::new(0x0, bytes)
    }

    /// A Ping.
    pub fn ping(payload: &[u8]) -> Frame {
        Frame::new(0x9, payload)
    }

    /// A Pong.
    pub fn pong(payload: &[u8]) -> Frame {
        Frame::new(0xA, payload)
    }

    /// A Close with a code and reason.
    pub fn close(code: u16, reason: &str) -> Frame {
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        Frame::new(0x8, &payload)
    }

    /// A Close with a raw payload (empty, one byte, invalid UTF-8 ...).
    pub fn close_raw(payload: &[u8]) -> Frame {
        Frame::new(0x8, payload)
    }

    /// Sets FIN.
    pub fn fin(mut self, fin: bool) -> Frame {
        self.fin = fin;
        self
    }

    /// Sets the RSV bits (low three bits).
    pub fn rsv(mut self, rsv: u8) -> Frame {
        self.rsv = rsv;
        self
    }

    /// Masks with `key`.
    pub fn masked(mut self, key: [u8; 4]) -> Frame {
        self.mask = Some(key);
        self
    }

    /// Masks with [`TEST_MASK`] when sent by a client (as the protocol wants), not when
    /// sent by a server.
    pub fn from_role(mut self, sender: Role) -> Frame {
        self.mask = match sender {
            Role::Client => Some(TEST_MASK),
            Role::Server => None,
        };
        self
    }

    /// Sets how the length is written.
    pub fn length(mut self, length: Length) -> Frame {
        self.length = length;
        self
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push((u8::from(self.fin) << 7) | ((self.rsv & 7) << 4) | (self.opcode & 0xF));
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let len = self.payload.len() as u64;
        let form = match self.length {
            Length::Shortest if len <= 125 => None,
            Length::Shortest if len <= 0xFFFF => Some(Length::Medium),
            Length::Shortest => Some(Length::Long),
            other => Some(other),
        };
        match form {
            None => out.push(mask_bit | len as u8),
            Some(Length::Medium) => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            Some(Length::Raw64(raw)) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&raw.to_be_bytes());
            }
            Some(_) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
        if let Some(key) = self.mask {
            out.extend_from_slice(&key);
        }
        let body = out.len();
        out.extend_from_slice(&self.payload);
        if let Some(key) = self.mask {
            apply_mask(&mut out[body..], key, 0);
        }
    }

    /// The encoded frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 14);
        self.encode_into(&mut out);
        out
    }
}

/// Concatenates encoded frames into one byte stream.
pub fn stream(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for frame in frames {
        frame.encode_into(&mut out);
    }
    out
}

/// A frame decoded from the wire, payload unmasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame {
    /// FIN.
    pub fin: bool,
    /// RSV bits.
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, if it was masked.
    pub mask: Option<[u8; 4]>,
    /// The payload, unmasked.
    pub payload: Vec<u8>,
}

impl WireFrame {
    /// For a Close frame: its code (`None` if empty).
    pub fn close_code(&self) -> Option<CloseCode> {
        assert_eq!(self.opcode, OpCode::Close, "not a Close frame");
        match self.payload.as_slice() {
            [a, b, ..] => Some(CloseCode(u16::from_be_bytes([*a, *b]))),
            _ => None,
        }
    }

    /// For a Close frame: its reason.
    pub fn close_reason(&self) -> &str {
        assert_eq!(self.opcode, OpCode::Close, "not a Close frame");
        core::str::from_utf8(self.payload.get(2..).unwrap_or(&[])).expect("close reason is UTF-8")
    }
}

/// Decodes every frame in `bytes` (which must hold whole frames only), panicking on a
/// malformed or truncated frame: this reads what our own side wrote.
pub fn parse_frames(bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (header, header_len) = match Header::decode(&bytes[at..]) {
            Ok(Status::Complete(decoded)) => decoded,
            other => panic!("bad frame header at {at}: {other:?}"),
        };
        let start = at + header_len;
        let end = start + usize::try_from(header.payload_len).unwrap();
        assert!(end <= bytes.len(), "truncated frame at {at}");
        let mut payload = bytes[start..end].to_vec();
        if let Some(key) = header.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push(WireFrame {
            fin: header.fin,
            rsv: header.rsv,
            opcode: header.opcode,
            mask: header.mask,
            payload,
        });
        at = end;
    }
    frames
}
