//! The fan-out scenario's pieces: the stamped messages the publisher sends, and the
//! decoder that hands each subscriber's messages out whole.
//!
//! A stamped message is JSON-like text of a fixed size carrying the broadcast's
//! sequence number and the time the load generator sent it (ns of its own monotonic
//! clock), at fixed places as fixed-width decimals, so that a subscriber reads both
//! without parsing JSON:
//!
//! `{"seq":00000000000000000042,"sent_ns":00000000001234567890,"tick":"ACME 101.25/101.50 XNAS ..."}`

use crate::ws::{opcode, DecodeError};

const SEQ_AT: usize = 7; // after `{"seq":`
const DIGITS: usize = 20;
const SENT_KEY: &[u8] = br#","sent_ns":"#;
const SENT_AT: usize = SEQ_AT + DIGITS + SENT_KEY.len();
const TICK_KEY: &[u8] = br#","tick":""#;
const FILLER: &[u8] = b"ACME 101.25/101.50 XNAS ";

/// The shortest stamped message.
pub const MIN_SIZE: usize = SENT_AT + DIGITS + TICK_KEY.len() + 2;

/// The largest message a subscriber accepts (the fan-out messages are small).
pub const MAX_MESSAGE: usize = 64 << 10;

/// A stamped message of exactly `size` bytes (at least [`MIN_SIZE`]).
pub fn stamp(seq: u64, sent_ns: u64, size: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(size.max(MIN_SIZE));
    m.extend_from_slice(br#"{"seq":"#);
    m.extend_from_slice(format!("{seq:020}").as_bytes());
    m.extend_from_slice(SENT_KEY);
    m.extend_from_slice(format!("{sent_ns:020}").as_bytes());
    m.extend_from_slice(TICK_KEY);
    let filler = size.max(MIN_SIZE) - m.len() - 2;
    m.extend(FILLER.iter().cycle().take(filler));
    m.extend_from_slice(b"\"}");
    m
}

/// The sequence number and send time of a stamped message, if it is one.
pub fn read_stamp(message: &[u8]) -> Option<(u64, u64)> {
    let digits = |at: usize| -> Option<u64> {
        let field = message.get(at..at + DIGITS)?;
        field.iter().try_fold(0u64, |n, &b| {
            b.is_ascii_digit()
                .then(|| n.wrapping_mul(10).wrapping_add(u64::from(b - b'0')))
        })
    };
    if !message.starts_with(br#"{"seq":"#) || message.get(SEQ_AT + DIGITS..SENT_AT)? != SENT_KEY {
        return None;
    }
    Some((digits(SEQ_AT)?, digits(SENT_AT)?))
}

/// Decodes a stream of server frames into whole data messages (reassembled from
/// fragments; Ping and Pong skipped, a Close an error), each handed out with whether it
/// was compressed (RSV1). Keeps the message being received, up to [`MAX_MESSAGE`].
#[derive(Debug, Default)]
pub struct MessageReader {
    head: [u8; 10],
    head_len: usize,
    payload_left: u64,
    frame_opcode: u8,
    frame_fin: bool,
    /// Payload of the data message being received, or of a control frame.
    message: Vec<u8>,
    control: Vec<u8>,
    compressed: bool,
    /// permessage-deflate was agreed: RSV1 may start a message.
    compressed_ok: bool,
}

impl MessageReader {
    /// A reader for a connection with (`compressed_ok`) or without permessage-deflate.
    pub fn new(compressed_ok: bool) -> Self {
        MessageReader {
            compressed_ok,
            ..Self::default()
        }
    }

    /// Feeds received bytes, calling `on_message(compressed, payload)` for each data
    /// message they complete; stops at the first error, its own or `on_message`'s.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        on_message: &mut impl FnMut(bool, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = self.payload_left.min(data.len() as u64) as usize;
                let into = if self.frame_opcode >= opcode::CLOSE {
                    &mut self.control
                } else {
                    &mut self.message
                };
                into.extend_from_slice(&data[..n]);
                data = &data[n..];
                self.payload_left -= n as u64;
                if self.payload_left == 0 {
                    self.end_frame(on_message)?;
                }
                continue;
            }
            self.head[self.head_len] = data[0];
            self.head_len += 1;
            data = &data[1..];
            if self.head_len < 2 {
                continue;
            }
            let need = match self.head[1] & 0x7f {
                126 => 4,
                127 => 10,
                _ => 2,
            };
            if self.head_len < need {
                continue;
            }
            let len = match need {
                4 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
                10 => u64::from_be_bytes(self.head[2..10].try_into().unwrap_or([0xff; 8])),
                _ => u64::from(self.head[1] & 0x7f),
            };
            self.head_len = 0;
            self.start_frame(self.head[0], self.head[1], len)?;
            if self.payload_left == 0 {
                self.end_frame(on_message)?;
            }
        }
        Ok(())
    }

    fn start_frame(&mut self, b0: u8, b1: u8, len: u64) -> Result<(), String> {
        let op = b0 & 0x0f;
        let data = op == opcode::TEXT || op == opcode::BINARY;
        let known = data
            || matches!(
                op,
                opcode::CONTINUATION | opcode::CLOSE | opcode::PING | opcode::PONG
            );
        let rsv1_ok = self.compressed_ok && data;
        if b0 & 0x30 != 0 || (b0 & 0x40 != 0 && !rsv1_ok) || b1 & 0x80 != 0 || !known {
            return Err(DecodeError::BadFrame(b0, b1).to_string());
        }
        if data {
            self.message.clear();
            self.compressed = b0 & 0x40 != 0;
        }
        if op >= opcode::CLOSE {
            self.control.clear();
        } else if self.message.len() as u64 + len > MAX_MESSAGE as u64 {
            return Err(format!("a message over {MAX_MESSAGE} bytes"));
        }
        self.frame_opcode = op;
        self.frame_fin = b0 & 0x80 != 0;
        self.payload_left = len;
        Ok(())
    }

    fn end_frame(
        &mut self,
        on_message: &mut impl FnMut(bool, &[u8]) -> Result<(), String>,
    ) -> Result<(), String> {
        match self.frame_opcode {
            opcode::CLOSE => {
                let code = (self.control.len() >= 2)
                    .then(|| u16::from_be_bytes([self.control[0], self.control[1]]));
                Err(DecodeError::Closed(code).to_string())
            }
            opcode::PING | opcode::PONG => Ok(()),
            _ if !self.frame_fin => Ok(()),
            _ => {
                let result = on_message(self.compressed, &self.message);
                self.message.clear();
                result
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![b0];
        match payload.len() {
            n if n < 126 => f.push(n as u8),
            n if n <= 0xffff => {
                f.push(126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_stamp_reads_back_at_any_size() {
        for size in [MIN_SIZE, 125, 1000] {
            let m = stamp(42, 1_234_567_890, size);
            assert_eq!(m.len(), size);
            assert!(std::str::from_utf8(&m).is_ok());
            assert_eq!(read_stamp(&m), Some((42, 1_234_567_890)));
        }
        assert_eq!(read_stamp(b"{\"seq\":12"), None);
        assert_eq!(read_stamp(&[b'x'; 125]), None);
    }

    #[test]
    fn messages_come_out_whole_from_any_split() {
        let a = stamp(1, 10, 125);
        let b = stamp(2, 20, 300);
        let mut stream = server_frame(0x81, &a);
        stream.extend(server_frame(0x89, b"ping"));
        // `b` in two fragments, a Pong between them.
        stream.extend(server_frame(0x01, &b[..100]));
        stream.extend(server_frame(0x8a, b""));
        stream.extend(server_frame(0x80, &b[100..]));
        for split in [1, 2, 3, 50, 126, 127, 1000] {
            let mut r = MessageReader::new(false);
            let mut got = Vec::new();
            for chunk in stream.chunks(split) {
                r.feed(chunk, &mut |compressed, m| {
                    got.push((compressed, read_stamp(m), m.len()));
                    Ok(())
                })
                .unwrap();
            }
            assert_eq!(
                got,
                [(false, Some((1, 10)), 125), (false, Some((2, 20)), 300)],
                "split {split}"
            );
        }
    }

    #[test]
    fn rsv1_marks_a_compressed_message_only_when_agreed() {
        let frame = server_frame(0xc1, b"xyz");
        let mut ok = |_: bool, _: &[u8]| Ok(());
        assert!(MessageReader::new(false).feed(&frame, &mut ok).is_err());
        let mut compressed = None;
        MessageReader::new(true)
            .feed(&frame, &mut |c, _| {
                compressed = Some(c);
                Ok(())
            })
            .unwrap();
        assert_eq!(compressed, Some(true));
    }

    #[test]
    fn a_close_is_an_error_with_its_code() {
        let close = server_frame(0x88, &1008u16.to_be_bytes());
        let err = MessageReader::new(false)
            .feed(&close, &mut |_, _| Ok(()))
            .unwrap_err();
        assert!(err.contains("1008"), "{err}");
    }
}
