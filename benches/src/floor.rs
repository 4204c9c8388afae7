//! The reference echo server's framing: what the kernel's share of an echo costs,
//! with no WebSocket work on top.
//!
//! `peer_echo --impl tcp-floor` answers the upgrade, then echoes each client frame
//! once it has arrived whole (store and forward, as a message echo must), turning it
//! into a server frame in place: the header loses its mask bit and key, the payload
//! is sent back still masked, neither unmasked nor validated. The load generator
//! never looks at echoed payload bytes, only at lengths, so it counts these echoes
//! like any other. In the compressed scenarios the floor accepts permessage-deflate
//! (no context takeover either way) and echoes the client's compressed frames as they
//! came, RSV1 kept: each is a whole deflate stream, so a valid compressed echo of the
//! same size a level-1 server would send; only each connection's first data frame is
//! unmasked, since the load generator inflates that one to check the server. The same bytes cross the same sockets as with a real server, so
//! its CPU per message is the floor no WebSocket library on this kernel can go
//! under: a real server adds at least the unmasking.

use std::ops::Range;

/// The largest frame the floor accepts; the load generator's largest is 16 MiB.
pub const MAX_FRAME: u64 = 1 << 30;

/// What [`rewrite_frames`] found in the received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Where the first incomplete frame starts (`filled` if none is pending).
    pub next: usize,
    /// The whole size of that incomplete frame, once its header is in.
    pub pending_frame_len: Option<usize>,
    /// A Close frame was among the rewritten ones: nothing after it is echoed.
    pub closed: bool,
}

/// Why the floor gave up on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A client frame without the mask bit (RFC 6455 §5.1 requires it).
    Unmasked,
    /// A frame longer than [`MAX_FRAME`].
    TooLong(u64),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Unmasked => write!(f, "client frame without a mask"),
            FrameError::TooLong(len) => write!(f, "frame of {len} bytes"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Rewrites every complete client frame in `buf[start..filled]` into a server frame
/// in place and pushes the range each one now occupies onto `out` (consecutive
/// frames leave 4-byte gaps, where their keys were). Control frames are unmasked
/// (a Close code must read right) and a Ping becomes a Pong; data payloads stay
/// as they came (their RSV1 bit too), but for the next one while `unmask_data` is
/// set, which is unmasked and clears it.
pub fn rewrite_frames(
    buf: &mut [u8],
    mut start: usize,
    filled: usize,
    out: &mut Vec<Range<usize>>,
    unmask_data: &mut bool,
) -> Result<Scan, FrameError> {
    while filled - start >= 2 {
        let (b0, b1) = (buf[start], buf[start + 1]);
        if b1 & 0x80 == 0 {
            return Err(FrameError::Unmasked);
        }
        let extended = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let header_len = 2 + extended + 4;
        if filled - start < header_len {
            break;
        }
        let length_bytes = &buf[start + 2..start + 2 + extended];
        let payload_len = match extended {
            0 => u64::from(b1 & 0x7f),
            _ => length_bytes
                .iter()
                .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        };
        if payload_len > MAX_FRAME {
            return Err(FrameError::TooLong(payload_len));
        }
        let frame_len = header_len + payload_len as usize;
        if filled - start < frame_len {
            return Ok(Scan {
                next: start,
                pending_frame_len: Some(frame_len),
                closed: false,
            });
        }
        let payload = start + header_len..start + frame_len;
        let opcode = b0 & 0x0f;
        let mut first = b0;
        if opcode >= crate::ws::opcode::CLOSE || std::mem::take(unmask_data) {
            let mut key = [0; 4];
            key.copy_from_slice(&buf[start + header_len - 4..start + header_len]);
            crate::ws::xor_key(&mut buf[payload.clone()], key);
            if opcode == crate::ws::opcode::PING {
                first = (b0 & 0xf0) | crate::ws::opcode::PONG;
            }
        }
        // The server header is the client's without the key, so it fits right
        // before the payload, where the key was: one contiguous slice per frame.
        let head_start = start + 4;
        buf.copy_within(start + 2..start + 2 + extended, head_start + 2);
        buf[head_start] = first;
        buf[head_start + 1] = b1 & 0x7f;
        out.push(head_start..payload.end);
        start = payload.end;
        if opcode == crate::ws::opcode::CLOSE {
            return Ok(Scan {
                next: start,
                pending_frame_len: None,
                closed: true,
            });
        }
    }
    Ok(Scan {
        next: start,
        pending_frame_len: None,
        closed: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{masked_frame, opcode, EchoDecoder, MASK};

    fn rewrite_all(bytes: &[u8]) -> (Vec<u8>, Scan) {
        let mut buf = bytes.to_vec();
        let mut out = Vec::new();
        let scan = rewrite_frames(&mut buf, 0, bytes.len(), &mut out, &mut false).unwrap();
        let echoed = out.iter().flat_map(|r| buf[r.clone()].to_vec()).collect();
        (echoed, scan)
    }

    #[test]
    fn echoes_decode_as_server_frames_of_the_same_lengths() {
        for len in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
            let payload = crate::ws::payload(len);
            let frames = [
                masked_frame(opcode::BINARY, &payload, MASK),
                masked_frame(opcode::TEXT, &payload, MASK),
            ]
            .concat();
            let (echoed, scan) = rewrite_all(&frames);
            assert_eq!(scan.next, frames.len());
            assert_eq!(scan.pending_frame_len, None);
            assert_eq!(echoed.len(), frames.len() - 8, "two keys dropped");
            let mut decoder = EchoDecoder::new(len as u64);
            assert_eq!(decoder.feed(&echoed), Ok(2), "length {len}");
            assert!(decoder.is_idle());
        }
    }

    #[test]
    fn a_partial_frame_reports_its_whole_length_once_the_header_is_in() {
        let frame = masked_frame(opcode::BINARY, &[7; 300], MASK);
        let mut buf = frame.clone();
        let mut out = Vec::new();
        let scan = rewrite_frames(&mut buf, 0, 3, &mut out, &mut false).unwrap();
        assert_eq!((scan.next, scan.pending_frame_len), (0, None));
        let scan = rewrite_frames(&mut buf, 0, 100, &mut out, &mut false).unwrap();
        assert_eq!((scan.next, scan.pending_frame_len), (0, Some(frame.len())));
        assert!(out.is_empty());
        assert_eq!(buf, frame, "nothing is rewritten before the frame is whole");
    }

    #[test]
    fn close_is_unmasked_and_ends_the_scan() {
        let close = masked_frame(opcode::CLOSE, &1000u16.to_be_bytes(), MASK);
        let after = masked_frame(opcode::BINARY, b"late", MASK);
        let (echoed, scan) = rewrite_all(&[close.clone(), after].concat());
        assert!(scan.closed);
        assert_eq!(scan.next, close.len());
        assert_eq!(echoed, [0x88, 2, 0x03, 0xe8]);
    }

    #[test]
    fn ping_becomes_pong() {
        let (echoed, _) = rewrite_all(&masked_frame(opcode::PING, b"hi", MASK));
        assert_eq!(echoed, [0x8a, 2, b'h', b'i']);
    }

    #[test]
    fn unmasked_and_oversized_frames_are_refused() {
        let mut out = Vec::new();
        assert_eq!(
            rewrite_frames(&mut [0x82, 0x01, 0], 0, 3, &mut out, &mut false),
            Err(FrameError::Unmasked)
        );
        let mut huge = vec![0x82, 0xff];
        huge.extend_from_slice(&(MAX_FRAME + 1).to_be_bytes());
        huge.extend_from_slice(&MASK);
        let len = huge.len();
        assert_eq!(
            rewrite_frames(&mut huge, 0, len, &mut out, &mut false),
            Err(FrameError::TooLong(MAX_FRAME + 1))
        );
    }

    #[test]
    fn the_first_data_frame_is_unmasked_when_asked_and_rsv1_kept() {
        let payload = b"compressed bytes";
        let mut frame = masked_frame(opcode::TEXT, payload, MASK);
        frame[0] |= 0x40; // RSV1: a compressed message
        let mut bytes = masked_frame(opcode::PING, b"p", MASK);
        bytes.extend_from_slice(&frame);
        bytes.extend_from_slice(&frame);
        let mut buf = bytes.clone();
        let (mut out, mut unmask) = (Vec::new(), true);
        rewrite_frames(&mut buf, 0, bytes.len(), &mut out, &mut unmask).unwrap();
        assert!(!unmask);
        assert_eq!(out.len(), 3);
        let (first, second) = (&buf[out[1].clone()], &buf[out[2].clone()]);
        assert_eq!(first[0], 0xc0 | opcode::TEXT);
        assert_eq!(&first[2..], payload, "the first data frame is unmasked");
        assert_eq!(second[0], 0xc0 | opcode::TEXT);
        assert_ne!(&second[2..], payload, "the next one stays masked");
    }
}
