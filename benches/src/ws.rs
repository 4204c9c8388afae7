//! A minimal WebSocket codec for the load generator (and the handshake of the
//! fastwebsockets peer server): just what an echo benchmark needs, written to
//! cost the client as little CPU as possible.
//!
//! - client side: [`client_request`], [`check_response`], [`masked_frame`]
//!   (frames are built and masked once, then written again and again), and
//!   [`EchoDecoder`], which counts the echoed messages in the server's
//!   unmasked frames without copying their payload;
//! - server side: [`server_response`] answers an upgrade request head.

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID of RFC 6455 §1.3 appended to the key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Key` the load generator sends (the RFC 6455 §1.3 sample nonce).
pub const CLIENT_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The mask key of every frame the load generator sends.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// Frame opcodes (RFC 6455 §5.2).
pub mod opcode {
    /// Continuation frame.
    pub const CONTINUATION: u8 = 0x0;
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The upgrade request the load generator sends to `host` (`HOST:PORT`).
pub fn client_request(host: &str, path: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .into_bytes()
}

/// The permessage-deflate offer of the load generator: no context takeover either way
/// (so that its messages can be compressed once and sent again and again, and the
/// server compresses every echo on its own), 15-bit windows, as Sockeye's default.
pub const DEFLATE_OFFER: &str =
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover";

/// [`client_request`] with a `Sec-WebSocket-Extensions` offer.
pub fn client_request_with_extensions(host: &str, path: &str, extensions: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {CLIENT_KEY}\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
    )
    .into_bytes()
}

/// The `Sec-WebSocket-Extensions` value of a response head, if any (several headers
/// joined with `, `).
pub fn response_extensions(head: &[u8]) -> Option<String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    resp.parse(head).ok()?;
    let values: Vec<String> = resp
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_string())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

/// Checks that a server's `Sec-WebSocket-Extensions` answer accepts [`DEFLATE_OFFER`]
/// as offered: permessage-deflate with `server_no_context_takeover` (which the offer
/// asked for), and with no window smaller than 15 bits for the client.
pub fn check_deflate_answer(answer: Option<&str>) -> Result<(), String> {
    let Some(answer) = answer else {
        return Err("the server declined permessage-deflate (no Sec-WebSocket-Extensions)".into());
    };
    let mut params = answer.split(';').map(str::trim);
    if !params
        .next()
        .is_some_and(|name| name.eq_ignore_ascii_case("permessage-deflate"))
        || answer.contains(',')
    {
        return Err(format!("unexpected extensions answer {answer:?}"));
    }
    let params: Vec<&str> = params.collect();
    if !params.contains(&"server_no_context_takeover") {
        return Err(format!("server keeps its context: {answer:?}"));
    }
    for p in &params {
        if let Some(bits) = p.strip_prefix("client_max_window_bits=") {
            if bits.trim_matches('"') != "15" {
                return Err(format!(
                    "server asks for a smaller client window: {answer:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Raw deflate of one message as permessage-deflate sends it without context takeover
/// (RFC 7692 §7.2.1): compressed on its own at `level`, sync-flushed, the trailing
/// `00 00 ff ff` removed. The load generator's own engine (flate2), not Sockeye's.
pub fn deflate_message(message: &[u8], level: u32) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
    let mut out = Vec::with_capacity(message.len() + 64);
    loop {
        let before = c.total_in() as usize;
        c.compress_vec(&message[before..], &mut out, flate2::FlushCompress::Sync)
            .expect("deflate");
        if c.total_in() as usize == message.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "sync flush tail");
    out.truncate(out.len() - 4);
    out
}

/// Inflates one permessage-deflate payload sent without context takeover (appends the
/// `00 00 ff ff` tail); `None` if it is not valid deflate data.
pub fn inflate_message(payload: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut d = flate2::Decompress::new(false);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 4 + 64);
    loop {
        let before = d.total_in() as usize;
        let status = d
            .decompress_vec(&input[before..], &mut out, flate2::FlushDecompress::Sync)
            .ok()?;
        if out.len() > limit {
            return None;
        }
        let done = d.total_in() as usize == input.len() && out.len() < out.capacity();
        if done || status == flate2::Status::StreamEnd {
            return Some(out);
        }
        out.reserve(out.capacity().max(1024));
    }
}

/// Position just past the `\r\n\r\n` ending an HTTP head in `buf`, if complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Checks a complete response head: status 101 and the right `Sec-WebSocket-Accept`.
pub fn check_response(head: &[u8]) -> Result<(), String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete response head".into()),
        Err(e) => return Err(format!("bad response head: {e}")),
    }
    if resp.code != Some(101) {
        return Err(format!("server answered {:?}, not 101", resp.code));
    }
    let want = accept_key(CLIENT_KEY);
    let got = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"))
        .map(|h| String::from_utf8_lossy(h.value).trim().to_string());
    match got {
        Some(g) if g == want => Ok(()),
        other => Err(format!("bad Sec-WebSocket-Accept {other:?}")),
    }
}

/// Answers a complete upgrade request head: the `101 Switching Protocols`
/// response, or an error for anything that is not a WebSocket upgrade.
pub fn server_response(head: &[u8]) -> Result<Vec<u8>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err("incomplete request head".into()),
        Err(e) => return Err(format!("bad request head: {e}")),
    }
    let key = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .ok_or("no Sec-WebSocket-Key")?;
    Ok(format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        accept_key(key)
    )
    .into_bytes())
}

/// One client frame (FIN set) carrying `payload`, masked with `mask`.
pub fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let len = payload.len();
    let mut f = Vec::with_capacity(len + 14);
    f.push(0x80 | opcode);
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    let start = f.len();
    f.extend_from_slice(payload);
    xor_key(&mut f[start..], mask);
    f
}

/// XORs `bytes` with `key` repeated from its first byte: masks a payload, or unmasks
/// one (this crate's own loop, so that the harness never relies on the code it measures).
pub fn xor_key(bytes: &mut [u8], key: [u8; 4]) {
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

/// `count` copies of [`masked_frame`] back to back (one write sends many messages).
pub fn masked_frames(opcode: u8, payload: &[u8], count: usize) -> Vec<u8> {
    masked_frame(opcode, payload, MASK).repeat(count.max(1))
}

/// One client frame (FIN and RSV1 set: a compressed message) carrying `payload`,
/// masked with `mask`.
pub fn compressed_masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = masked_frame(opcode, payload, mask);
    f[0] |= 0x40;
    f
}

/// A masked Close frame with status 1000 (normal closure).
pub fn close_frame() -> Vec<u8> {
    masked_frame(opcode::CLOSE, &1000u16.to_be_bytes(), MASK)
}

/// A payload of `len` printable ASCII bytes (valid as text and as binary).
pub fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// What went wrong in the server's frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The server sent a Close frame (with its status code, if any).
    Closed(Option<u16>),
    /// A server frame was masked, had RSV bits, or an unknown opcode.
    BadFrame(u8, u8),
    /// An echoed message had a different length than the one sent.
    WrongLength {
        /// The length sent.
        expected: u64,
        /// The length echoed.
        got: u64,
    },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Closed(code) => write!(f, "server sent Close (code {code:?})"),
            DecodeError::BadFrame(b0, b1) => write!(f, "bad server frame head {b0:#04x} {b1:#04x}"),
            DecodeError::WrongLength { expected, got } => {
                write!(f, "echoed message of {got} bytes, sent {expected}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Counts echoed messages in a stream of server (unmasked) frames, skipping
/// payloads without copying them. Messages may arrive fragmented; Ping and
/// Pong frames are skipped; a Close frame is an error.
#[derive(Debug, Clone)]
pub struct EchoDecoder {
    expected_len: u64,
    head: [u8; 10],
    head_len: usize,
    payload_left: u64,
    frame_opcode: u8,
    frame_fin: bool,
    close_code: Vec<u8>,
    message_len: u64,
    /// permessage-deflate was agreed: RSV1 may start a message.
    compressed_ok: bool,
    /// The message being received is compressed (RSV1 on its first frame).
    message_compressed: bool,
    /// Payload bytes of every data message completed so far, as they came on the wire.
    wire_bytes: u64,
    /// Data messages completed so far, and how many of them were compressed.
    messages: u64,
    compressed: u64,
}

impl EchoDecoder {
    /// A decoder for echoes of messages of `expected_len` bytes each.
    pub fn new(expected_len: u64) -> Self {
        EchoDecoder {
            expected_len,
            head: [0; 10],
            head_len: 0,
            payload_left: 0,
            frame_opcode: 0,
            frame_fin: false,
            close_code: Vec::new(),
            message_len: 0,
            compressed_ok: false,
            message_compressed: false,
            wire_bytes: 0,
            messages: 0,
            compressed: 0,
        }
    }

    /// A decoder for a connection with permessage-deflate: a message whose first frame
    /// has RSV1 is compressed, and its length cannot be checked without inflating it
    /// (the load generator verifies the content of some echoes separately); the others
    /// are checked as usual.
    pub fn with_compression(expected_len: u64) -> Self {
        EchoDecoder {
            compressed_ok: true,
            ..Self::new(expected_len)
        }
    }

    /// Payload bytes of every data message completed so far, as they came on the wire,
    /// the number of those messages, and how many of them were compressed.
    pub fn wire_totals(&self) -> (u64, u64, u64) {
        (self.wire_bytes, self.messages, self.compressed)
    }

    /// True between frames and between messages (nothing partially received).
    pub fn is_idle(&self) -> bool {
        self.head_len == 0 && self.payload_left == 0 && self.message_len == 0
    }

    /// Feeds received bytes; returns the number of messages they completed.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<u64, DecodeError> {
        let mut done = 0;
        while !data.is_empty() {
            if self.payload_left > 0 {
                let n = (self.payload_left.min(data.len() as u64)) as usize;
                if self.frame_opcode == opcode::CLOSE {
                    self.close_code.extend_from_slice(&data[..n]);
                }
                data = &data[n..];
                done += self.consume_payload(n as u64)?;
                continue;
            }
            // Fast path: a whole 2-byte head with a small payload.
            if self.head_len == 0 && data.len() >= 2 && data[1] < 126 {
                let (b0, b1) = (data[0], data[1]);
                data = &data[2..];
                self.start_frame(b0, b1, u64::from(b1))?;
                if self.payload_left == 0 {
                    done += self.end_frame()?;
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
                10 => u64::from_be_bytes(self.head[2..10].try_into().unwrap_or([0; 8])),
                _ => u64::from(self.head[1] & 0x7f),
            };
            self.head_len = 0;
            self.start_frame(self.head[0], self.head[1], len)?;
            if self.payload_left == 0 {
                done += self.end_frame()?;
            }
        }
        Ok(done)
    }

    /// Payload bytes of the frame being received that the decoder never looks
    /// at (it keeps only a Close frame's payload, for the code): the caller may
    /// drop them unread (`sys::discard`) and report them with [`EchoDecoder::skip`].
    pub fn skippable(&self) -> u64 {
        if self.frame_opcode == opcode::CLOSE {
            0
        } else {
            self.payload_left
        }
    }

    /// Accounts for `n` payload bytes the caller dropped unread (at most
    /// [`EchoDecoder::skippable`]); returns the number of messages they completed.
    pub fn skip(&mut self, n: u64) -> Result<u64, DecodeError> {
        let n = n.min(self.skippable());
        if n == 0 {
            return Ok(0);
        }
        self.consume_payload(n)
    }

    fn consume_payload(&mut self, n: u64) -> Result<u64, DecodeError> {
        self.payload_left -= n;
        if self.payload_left == 0 {
            self.end_frame()
        } else {
            Ok(0)
        }
    }

    fn start_frame(&mut self, b0: u8, b1: u8, len: u64) -> Result<(), DecodeError> {
        let op = b0 & 0x0f;
        let bad_op = !matches!(
            op,
            opcode::CONTINUATION
                | opcode::TEXT
                | opcode::BINARY
                | opcode::CLOSE
                | opcode::PING
                | opcode::PONG
        );
        // RSV1 only on the first frame of a data message, and only with compression.
        let first_data = op == opcode::TEXT || op == opcode::BINARY;
        let rsv1_ok = self.compressed_ok && first_data;
        if b0 & 0x30 != 0 || (b0 & 0x40 != 0 && !rsv1_ok) || b1 & 0x80 != 0 || bad_op {
            return Err(DecodeError::BadFrame(b0, b1));
        }
        if first_data {
            self.message_compressed = b0 & 0x40 != 0;
        }
        self.frame_opcode = op;
        self.close_code.clear();
        self.frame_fin = b0 & 0x80 != 0;
        self.payload_left = len;
        if op < opcode::CLOSE {
            self.message_len += len;
        }
        Ok(())
    }

    fn end_frame(&mut self) -> Result<u64, DecodeError> {
        match self.frame_opcode {
            opcode::CLOSE => {
                let code = (self.close_code.len() >= 2)
                    .then(|| u16::from_be_bytes([self.close_code[0], self.close_code[1]]));
                Err(DecodeError::Closed(code))
            }
            opcode::PING | opcode::PONG => Ok(0),
            _ if !self.frame_fin => Ok(0),
            _ => {
                let got = std::mem::take(&mut self.message_len);
                self.wire_bytes += got;
                self.messages += 1;
                if self.message_compressed {
                    self.compressed += 1;
                    return Ok(1);
                }
                if got != self.expected_len {
                    return Err(DecodeError::WrongLength {
                        expected: self.expected_len,
                        got,
                    });
                }
                Ok(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = masked_frame(op, payload, [0; 4]);
        // Unmask: clear the MASK bit and drop the (all-zero) key.
        f[0] = if fin { f[0] } else { f[0] & 0x7f };
        f[1] &= 0x7f;
        let key_at = match f[1] {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        f.drain(key_at..key_at + 4);
        f
    }

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(accept_key(CLIENT_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn handshake_round_trip() {
        let req = client_request("127.0.0.1:9001", "/");
        let resp = server_response(&req).unwrap();
        assert_eq!(head_end(&resp), Some(resp.len()));
        check_response(&resp).unwrap();
        assert!(check_response(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
    }

    #[test]
    fn masked_frames_unmask_to_payload() {
        for len in [0usize, 16, 125, 126, 65535, 65536, 70000] {
            let p = payload(len);
            let f = masked_frame(opcode::BINARY, &p, MASK);
            let off = f.len() - len;
            let key = &f[off - 4..off];
            let un: Vec<u8> = f[off..]
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i & 3])
                .collect();
            assert_eq!(un, p, "len {len}");
        }
        assert_eq!(masked_frames(opcode::TEXT, b"hi", 3).len(), 3 * 8);
    }

    #[test]
    fn decoder_counts_every_split() {
        let mut stream = Vec::new();
        for len in [16usize, 200, 70000] {
            stream.extend(server_frame(true, opcode::BINARY, &payload(len)));
        }
        for split in [1usize, 2, 3, 7, 100, 4096, usize::MAX] {
            let mut d16 = EchoDecoder::new(16);
            let r = stream
                .chunks(split.min(stream.len()))
                .try_fold(0, |n, c| d16.feed(c).map(|k| n + k));
            assert!(matches!(r, Err(DecodeError::WrongLength { .. })));
        }
        let mut one = Vec::new();
        for _ in 0..5 {
            one.extend(server_frame(false, opcode::TEXT, &payload(10)));
            one.extend(server_frame(true, opcode::PING, b"x"));
            one.extend(server_frame(true, opcode::CONTINUATION, &payload(6)));
        }
        for split in [1usize, 2, 3, 5, 1000] {
            let mut d = EchoDecoder::new(16);
            let n: u64 = one.chunks(split).map(|c| d.feed(c).unwrap()).sum();
            assert_eq!(n, 5, "split {split}");
            assert!(d.is_idle());
        }
        let mut d = EchoDecoder::new(16);
        let close = server_frame(true, opcode::CLOSE, &1001u16.to_be_bytes());
        assert_eq!(d.feed(&close), Err(DecodeError::Closed(Some(1001))));
        let mut d = EchoDecoder::new(16);
        assert!(matches!(
            d.feed(&[0x83, 0x00]),
            Err(DecodeError::BadFrame(..))
        ));
    }

    /// Feeds `stream`, dropping every payload byte the decoder allows after
    /// reading at most `head_read` bytes at a time, as the load generator does.
    fn feed_skipping(
        d: &mut EchoDecoder,
        stream: &[u8],
        head_read: usize,
    ) -> Result<u64, DecodeError> {
        let (mut at, mut done) = (0, 0);
        while at < stream.len() {
            let skippable = usize::try_from(d.skippable()).unwrap();
            if skippable > 0 {
                let n = skippable.min(stream.len() - at);
                done += d.skip(n as u64)?;
                at += n;
            } else {
                let n = head_read.min(stream.len() - at);
                done += d.feed(&stream[at..at + n])?;
                at += n;
            }
        }
        Ok(done)
    }

    #[test]
    fn skipped_payloads_count_like_fed_ones() {
        let mut stream = Vec::new();
        for _ in 0..3 {
            stream.extend(server_frame(false, opcode::BINARY, &payload(40_000)));
            stream.extend(server_frame(true, opcode::PONG, b"p"));
            stream.extend(server_frame(true, opcode::CONTINUATION, &payload(30_000)));
        }
        for head_read in [1usize, 3, 14, 256, 100_000] {
            let mut d = EchoDecoder::new(70_000);
            assert_eq!(
                feed_skipping(&mut d, &stream, head_read),
                Ok(3),
                "head_read {head_read}"
            );
            assert!(d.is_idle());
            assert_eq!(d.skip(5), Ok(0), "nothing to skip between frames");
        }
        // The length check still applies to skipped payloads.
        let mut d = EchoDecoder::new(69_999);
        assert!(matches!(
            feed_skipping(&mut d, &stream, 256),
            Err(DecodeError::WrongLength { got: 70_000, .. })
        ));
    }

    #[test]
    fn compressed_echoes_are_counted_with_their_wire_bytes() {
        let message = crate::json::records(1024, 3);
        let packed = deflate_message(&message, 1);
        assert!(packed.len() < message.len() / 2);
        assert_eq!(
            inflate_message(&packed, 1 << 20).as_deref(),
            Some(&message[..])
        );
        let mut compressed = server_frame(true, opcode::TEXT, &packed);
        compressed[0] |= 0x40;
        let plain = server_frame(true, opcode::TEXT, &message);
        // Without compression agreed, RSV1 is an error.
        assert!(matches!(
            EchoDecoder::new(1024).feed(&compressed),
            Err(DecodeError::BadFrame(..))
        ));
        let mut d = EchoDecoder::with_compression(1024);
        let stream = [&compressed[..], &plain, &compressed].concat();
        for chunk in stream.chunks(7) {
            d.feed(chunk).unwrap();
        }
        let wire = 2 * packed.len() as u64 + 1024;
        assert_eq!(d.wire_totals(), (wire, 3, 2));
        // RSV1 on a continuation frame is an error even with compression.
        let mut cont = server_frame(true, opcode::CONTINUATION, b"x");
        cont[0] |= 0x40;
        let mut first = server_frame(false, opcode::TEXT, b"y");
        first[0] |= 0x40;
        let mut d = EchoDecoder::with_compression(2);
        assert_eq!(d.feed(&first), Ok(0));
        assert!(matches!(d.feed(&cont), Err(DecodeError::BadFrame(..))));
    }

    #[test]
    fn the_deflate_answer_must_accept_the_offer() {
        assert!(check_deflate_answer(Some(
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        ))
        .is_ok());
        assert!(check_deflate_answer(None).is_err());
        assert!(check_deflate_answer(Some("permessage-deflate")).is_err());
        assert!(check_deflate_answer(Some(
            "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
        ))
        .is_err());
        let req = client_request_with_extensions("h:1", "/", DEFLATE_OFFER);
        assert!(String::from_utf8(req)
            .unwrap()
            .contains("\r\nSec-WebSocket-Extensions: permessage-deflate;"));
    }

    #[test]
    fn a_close_payload_is_never_skippable() {
        let mut d = EchoDecoder::new(16);
        let close = server_frame(true, opcode::CLOSE, &1008u16.to_be_bytes());
        assert_eq!(d.feed(&close[..2]), Ok(0));
        assert_eq!(d.skippable(), 0);
        assert_eq!(d.skip(2), Ok(0));
        assert_eq!(d.feed(&close[2..]), Err(DecodeError::Closed(Some(1008))));
    }
}
