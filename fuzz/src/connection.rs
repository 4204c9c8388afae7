//! The whole connection: a stream of peer bytes in each role, an arbitrary list of
//! operations, and a client/server round trip.
//!
//! Invariants checked on every call, by [`Side`]:
//! - `consumed` never exceeds the input, and event data lies inside the input;
//! - every text chunk is valid UTF-8, every chunk of a message has its kind, and no
//!   message grows beyond `max_message_size` (memory bounded by the limits);
//! - nothing is reported after the terminal report, which comes exactly once (the `Err`
//!   of `handle_input` counts as the report), and `outcome()` agrees with it;
//! - nothing but the end follows the peer's Close;
//! - progress: a read buffer of `MIN_INPUT_BUFFER` bytes or more never fills up with
//!   nothing consumed;
//! - at most four transmits per drain (the control slots are bounded), none after
//!   `Transmit::Shutdown`, none larger than `MIN_TRANSMIT_BUFFER`;
//! - right after `handle_timeout(now)` no deadline lies at or before `now`, and calling it
//!   early changes nothing;
//! - what a side writes is a valid frame stream for its role (masking, control frames,
//!   nothing after its Close), which a peer connection reads without a protocol error.
//!
//! And per target: the same stream cut differently gives the same transcript and the same
//! bytes back (`connection_server`, `connection_client`); what one side sends, the other
//! receives identically (`round_trip`, and `connection_ops` through a mirror peer).

use core::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use sockeye_proto::frame::{apply_mask, Header, OpCode};
use sockeye_proto::{
    Boundary, CloseCode, CloseFrame, Closed, Config, Connection, DataKind, Event, Instant,
    KeepAlive, Role, SendError, Status, Transmit, MIN_INPUT_BUFFER, MIN_TRANSMIT_BUFFER,
};

/// What a side saw, owned; messages whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// A whole message.
    Message(DataKind, Vec<u8>),
    /// A Ping.
    Ping(Vec<u8>),
    /// A Pong.
    Pong(Vec<u8>),
    /// The peer's Close.
    Close(Option<u16>, String),
    /// The terminal report.
    End(Closed),
}

/// One connection with a fixed read buffer, recording what it sees and writes, and
/// checking the invariants listed in the module docs.
pub struct Side {
    conn: Connection,
    role: Role,
    buf: Vec<u8>,
    filled: usize,
    /// Everything written to the transport.
    pub wrote: Vec<u8>,
    /// Whether `Transmit::Shutdown` came.
    pub shut_down: bool,
    /// What was seen.
    pub log: Log,
    eof: bool,
    scratch: Vec<u8>,
}

/// What a [`Side`] saw, with the order invariants checked as events come.
#[derive(Debug, Default)]
pub struct Log {
    /// Everything seen, in order.
    pub seen: Vec<Seen>,
    partial: Option<(DataKind, Vec<u8>)>,
    close_seen: bool,
    ended: Option<Closed>,
    max_message: u64,
}

impl Side {
    /// A side of `role` with `config`, a read buffer of `buffer` bytes, at `now`.
    pub fn new(role: Role, config: Config, buffer: usize, seed: [u8; 32], now: Instant) -> Side {
        Side {
            conn: Connection::new(role, config, seed, now),
            role,
            buf: vec![0; buffer.max(MIN_INPUT_BUFFER)],
            filled: 0,
            wrote: Vec::new(),
            shut_down: false,
            log: Log {
                max_message: config.max_message_size,
                ..Log::default()
            },
            eof: false,
            scratch: Vec::new(),
        }
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The terminal report, once it came.
    pub fn ended(&self) -> Option<Closed> {
        self.log.ended
    }

    /// Whole messages seen.
    pub fn messages(&self) -> Vec<(DataKind, Vec<u8>)> {
        self.log
            .seen
            .iter()
            .filter_map(|s| match s {
                Seen::Message(kind, bytes) => Some((*kind, bytes.clone())),
                _ => None,
            })
            .collect()
    }

    /// Feeds `bytes` as reads as large as the buffer allows.
    pub fn receive(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            if self.filled == self.buf.len() {
                // Lazy reads may have left a full buffer unprocessed.
                self.process(now);
            }
            let free = self.buf.len() - self.filled;
            assert!(
                free > 0,
                "stuck: a full read buffer and no progress: {:?}",
                self.conn
            );
            let n = free.min(bytes.len());
            self.buf[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            self.process(now);
        }
    }

    /// Calls `handle_input` until it makes no progress.
    pub fn process(&mut self, now: Instant) {
        while self.step(now) {}
    }

    /// One read as a lazy adapter does it: copies what fits of `bytes` into the buffer,
    /// then calls `handle_input` once. Returns how many bytes were taken.
    pub fn read_once(&mut self, bytes: &[u8], now: Instant) -> usize {
        let n = (self.buf.len() - self.filled).min(bytes.len());
        self.buf[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
        self.filled += n;
        self.step(now);
        n
    }

    /// One `handle_input` call on the buffered bytes; returns whether it made progress.
    pub fn step(&mut self, now: Instant) -> bool {
        {
            let filled = self.filled;
            let start = self.buf.as_ptr() as usize;
            let result = self.conn.handle_input(&mut self.buf[..filled], now);
            let (consumed, progress) = match result {
                Ok(input) => {
                    assert!(
                        input.consumed <= filled,
                        "consumed {} of {filled}",
                        input.consumed
                    );
                    if let Some(event) = input.event {
                        inside(&event, start, start + filled);
                        self.log.record(event);
                    }
                    (input.consumed, input.consumed > 0 || input.event.is_some())
                }
                Err(error) => {
                    assert!(self.log.ended.is_none(), "error after the end: {error:?}");
                    self.log.end(Closed::Failed(error));
                    (0, true)
                }
            };
            if let Some(ended) = self.log.ended {
                assert_eq!(self.conn.outcome(), Some(ended));
            }
            self.drain();
            self.buf.copy_within(consumed..filled, 0);
            self.filled -= consumed;
            progress
        }
    }

    /// End of stream.
    pub fn eof(&mut self, now: Instant) {
        if self.eof {
            return;
        }
        self.eof = true;
        if let Some(event) = self.conn.handle_eof(now) {
            self.log.record(event);
        }
        // Every end of stream ends the connection, reported exactly once.
        assert!(
            self.log.ended.is_some(),
            "end of stream without a terminal report"
        );
        assert_eq!(self.conn.outcome(), self.log.ended);
        self.drain();
    }

    /// Fires timers at `now`, checking the deadline invariants.
    pub fn timeout(&mut self, now: Instant) {
        let before = self.conn.poll_timeout();
        let event = self.conn.handle_timeout(now);
        if before.is_none_or(|at| at > now) {
            assert_eq!(event, None, "a timer fired early");
            assert_eq!(
                self.conn.poll_timeout(),
                before,
                "early handle_timeout changed a deadline"
            );
        }
        if let Some(event) = event {
            self.log.record(event);
        }
        if let Some(at) = self.conn.poll_timeout() {
            assert!(at > now, "deadline {at:?} not after {now:?}");
            assert!(self.log.ended.is_none());
        }
        self.drain();
    }

    /// Drains `poll_transmit` into [`Side::wrote`].
    pub fn drain(&mut self) {
        let mut out = [0u8; 256];
        let mut count = 0;
        while let Some(transmit) = self.conn.poll_transmit(&mut out) {
            count += 1;
            assert!(count <= 4, "unbounded transmit queue");
            assert!(!self.shut_down, "{transmit:?} after Shutdown");
            match transmit {
                Transmit::Bytes(n) => {
                    assert!(n > 0 && n <= MIN_TRANSMIT_BUFFER);
                    self.wrote.extend_from_slice(&out[..n]);
                }
                Transmit::Shutdown => self.shut_down = true,
            }
        }
    }

    /// Sends one data frame; writes it unless refused.
    pub fn send(&mut self, kind: DataKind, fin: bool, payload: &[u8]) -> Result<(), SendError> {
        self.scratch.clear();
        self.scratch.extend_from_slice(payload);
        let head = self.conn.send(kind, fin, &mut self.scratch)?;
        assert!(!self.shut_down, "a data frame accepted after Shutdown");
        self.wrote.extend_from_slice(&head);
        self.wrote.extend_from_slice(&self.scratch);
        Ok(())
    }
}

impl Log {
    fn end(&mut self, closed: Closed) {
        assert!(self.ended.is_none(), "a second terminal report {closed:?}");
        self.ended = Some(closed);
        self.partial = None;
        self.seen.push(Seen::End(closed));
    }

    fn data(&mut self, kind: DataKind, bytes: &[u8], end: Boundary) {
        assert!(!self.close_seen, "data after the peer's Close");
        let (current, so_far) = self.partial.get_or_insert_with(|| (kind, Vec::new()));
        assert_eq!(*current, kind, "a chunk of another kind inside a message");
        so_far.extend_from_slice(bytes);
        assert!(
            so_far.len() as u64 <= self.max_message,
            "message over the limit"
        );
        if kind == DataKind::Text {
            // Whole characters so far, always.
            assert!(core::str::from_utf8(so_far).is_ok());
        }
        if end == Boundary::MessageEnd {
            let (kind, bytes) = self.partial.take().expect("in progress");
            self.seen.push(Seen::Message(kind, bytes));
        }
    }

    /// Records an event, checking the order invariants.
    fn record(&mut self, event: Event<'_>) {
        assert!(
            self.ended.is_none(),
            "{event:?} after the end {:?}",
            self.ended
        );
        match event {
            Event::Text { text, end } => {
                assert!(core::str::from_utf8(text.as_bytes()).is_ok());
                self.data(DataKind::Text, text.as_bytes(), end);
            }
            Event::Binary { bytes, end } => self.data(DataKind::Binary, bytes, end),
            Event::Compressed { .. } => panic!("a compressed chunk without compression"),
            Event::Ping(payload) => {
                assert!(!self.close_seen && payload.len() <= 125);
                self.seen.push(Seen::Ping(payload.to_vec()));
            }
            Event::Pong(payload) => {
                assert!(!self.close_seen && payload.len() <= 125);
                self.seen.push(Seen::Pong(payload.to_vec()));
            }
            Event::Close(frame) => {
                assert!(!self.close_seen, "a second Close");
                self.close_seen = true;
                if let Some(code) = frame.code {
                    assert!(code.is_valid_on_wire());
                }
                self.seen.push(Seen::Close(
                    frame.code.map(|c| c.0),
                    frame.reason.to_owned(),
                ));
            }
            Event::Closed(closed) => self.end(closed),
        }
    }
}

/// Asserts that the event's data lies in `start..end`.
fn inside(event: &Event<'_>, start: usize, end: usize) {
    let slice: &[u8] = match event {
        Event::Text { text, .. } => text.as_bytes(),
        Event::Binary { bytes, .. } | Event::Compressed { bytes, .. } => bytes,
        Event::Ping(p) | Event::Pong(p) => p,
        Event::Close(frame) => frame.reason.as_bytes(),
        Event::Closed(_) => &[],
    };
    if !slice.is_empty() {
        let at = slice.as_ptr() as usize;
        assert!(
            at >= start && at + slice.len() <= end,
            "event data outside the input"
        );
    }
}

/// Checks that `bytes`, written by a `role` side, is a valid frame stream: masked by
/// clients only, control frames final and at most 125 bytes, no RSV bits, a valid Close
/// payload, and nothing after the Close. A trailing partial frame is not allowed either.
pub fn check_written(role: Role, bytes: &[u8]) {
    let mut at = 0;
    let mut closed = false;
    while at < bytes.len() {
        assert!(!closed, "bytes after our Close");
        let (header, n) = match Header::decode(&bytes[at..]) {
            Ok(Status::Complete(decoded)) => decoded,
            other => panic!("we wrote a bad header: {other:?}"),
        };
        assert_eq!(
            header.mask.is_some(),
            role == Role::Client,
            "masking by role"
        );
        assert_eq!(header.rsv, 0);
        let len = usize::try_from(header.payload_len).unwrap();
        let end = at + n + len;
        assert!(end <= bytes.len(), "we wrote a truncated frame");
        if header.opcode.is_control() {
            assert!(header.fin && len <= 125);
        }
        if header.opcode == OpCode::Close {
            let mut payload = bytes[at + n..end].to_vec();
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            CloseFrame::parse(&payload).expect("we wrote a valid Close");
            closed = true;
        }
        at = end;
    }
}

/// A tiny deterministic generator for chunk sizes.
#[derive(Clone, Copy)]
struct Rng(u64);

impl Rng {
    fn next(&mut self, max: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        1 + (self.0 % max.max(1) as u64) as usize
    }
}

fn small_limits(config: Config) -> Config {
    config.with_max_frame_size(1000).with_max_message_size(3000)
}

/// Feeds a byte stream from the peer to a fresh `role` connection, cut into reads by a
/// generator seeded from the input, and compares with the same stream read whole.
///
/// Layout: byte 0 chooses the buffer size (bits 0-5), small limits (bit 6) and end of
/// stream at the end (bit 7); byte 1 seeds the chunk sizes; the rest is the stream.
fn stream(role: Role, data: &[u8]) {
    let (flags, seed, bytes) = match data {
        [flags, seed, rest @ ..] => (*flags, *seed, rest),
        _ => (0, 0, data),
    };
    let buffer = MIN_INPUT_BUFFER + usize::from(flags & 0x3F) * 7;
    let config = if flags & 0x40 != 0 {
        small_limits(Config::default())
    } else {
        Config::default()
    };
    let eof = flags & 0x80 != 0;
    let now = Instant::ZERO;

    let mut cut = Side::new(role, config, buffer, [seed; 32], now);
    let mut rng = Rng(u64::from(seed) * 0x9E37_79B9 + 1);
    let max = usize::from(seed % 64) + 1;
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = rng.next(max).min(rest.len());
        cut.receive(&rest[..n], now);
        rest = &rest[n..];
    }
    let mut whole = Side::new(role, config, 1 << 16, [seed; 32], now);
    whole.receive(bytes, now);
    if eof {
        cut.eof(now);
        whole.eof(now);
    }
    assert_eq!(
        cut.log.seen, whole.log.seen,
        "the transcript depends on the chunking"
    );
    assert_eq!(
        cut.wrote, whole.wrote,
        "the bytes written depend on the chunking"
    );
    assert_eq!(cut.shut_down, whole.shut_down);
    assert_eq!(
        whole.log.seen,
        model(role, &config, bytes, eof),
        "the connection disagrees with the reference model"
    );
    check_written(role, &cut.wrote);
    // Whatever happened, end of stream ends it, once.
    cut.eof(now);
    assert!(cut.log.ended.is_some());
}

/// A reference model of the receive side: RFC 6455's rules applied to the whole stream
/// at once, frame by frame, written for clarity rather than speed (it reuses only the
/// header decoder, which `frame_header` checks bit by bit). It gives what a `role`
/// connection must report for `bytes` (followed by end of stream if `eof`), including
/// which error ends it when several rules are broken at once (the order in which the
/// connection checks them: masking, RSV bits, control-frame rules, continuation rules,
/// frame size, message size, UTF-8, close payload).
pub fn model(role: Role, config: &Config, bytes: &[u8], eof: bool) -> Vec<Seen> {
    use sockeye_proto::ProtocolError as E;
    let mut seen = Vec::new();
    let fail = |mut seen: Vec<Seen>, error: E| {
        seen.push(Seen::End(Closed::Failed(error)));
        seen
    };
    let mut message: Option<(DataKind, Vec<u8>)> = None;
    let mut message_len = 0u64;
    let mut at = 0;
    loop {
        let rest = &bytes[at..];
        let (header, n) = match Header::decode(rest) {
            Err(error) => return fail(seen, error),
            Ok(Status::Partial) => break,
            Ok(Status::Complete(decoded)) => decoded,
        };
        match (role, header.mask) {
            (Role::Server, None) => return fail(seen, E::UnmaskedFrame),
            (Role::Client, Some(_)) => return fail(seen, E::MaskedFrame),
            _ => {}
        }
        if header.rsv != 0 {
            return fail(seen, E::ReservedBits);
        }
        let len = header.payload_len;
        let unmask = |payload: &[u8], offset: usize| -> Vec<u8> {
            let key = header.mask.unwrap_or([0; 4]);
            payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[(offset + i) % 4])
                .collect()
        };
        if header.opcode.is_control() {
            if !header.fin {
                return fail(seen, E::FragmentedControlFrame);
            }
            if len > 125 {
                return fail(seen, E::ControlFrameTooLong);
            }
            let len = len as usize;
            if rest.len() < n + len {
                break;
            }
            let payload = unmask(&rest[n..n + len], 0);
            match header.opcode {
                OpCode::Ping => seen.push(Seen::Ping(payload)),
                OpCode::Pong => seen.push(Seen::Pong(payload)),
                _ => {
                    let code = match payload.as_slice() {
                        [] => None,
                        [_] => return fail(seen, E::CloseFrameTooShort),
                        [high, low, ..] => Some(u16::from_be_bytes([*high, *low])),
                    };
                    if let Some(code) = code {
                        if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                            return fail(seen, E::InvalidCloseCode(code));
                        }
                    }
                    let reason = payload.get(2..).unwrap_or(&[]);
                    let Ok(reason) = core::str::from_utf8(reason) else {
                        return fail(seen, E::InvalidUtf8);
                    };
                    seen.push(Seen::Close(code, reason.to_owned()));
                    // The server ends at once; the client once the server closes TCP.
                    // Nothing after the Close is read.
                    if role == Role::Server || eof {
                        let code = code.map(CloseCode);
                        seen.push(Seen::End(Closed::Clean(sockeye_proto::CleanClose {
                            sent: code,
                            received: code,
                            initiated_locally: false,
                        })));
                    }
                    return seen;
                }
            }
            at += n + len;
            continue;
        }
        let kind = match (header.opcode, &message) {
            (OpCode::Continuation, None) => return fail(seen, E::UnexpectedContinuation),
            (OpCode::Continuation, Some((kind, _))) => *kind,
            (_, Some(_)) => return fail(seen, E::ExpectedContinuation),
            (OpCode::Text, None) => DataKind::Text,
            (_, None) => DataKind::Binary,
        };
        if len > config.max_frame_size {
            return fail(seen, E::FrameTooLarge);
        }
        if message_len + len > config.max_message_size {
            return fail(seen, E::MessageTooLarge);
        }
        message_len += len;
        let available = (rest.len() - n).min(len as usize);
        let payload = unmask(&rest[n..n + available], 0);
        let so_far = &mut message.get_or_insert_with(|| (kind, Vec::new())).1;
        so_far.extend_from_slice(&payload);
        // Fail fast: bytes that no continuation can make valid.
        let complete = available as u64 == len;
        if kind == DataKind::Text {
            if let Err(error) = core::str::from_utf8(so_far) {
                if error.error_len().is_some() || (complete && header.fin) {
                    return fail(seen, E::InvalidUtf8);
                }
            }
        }
        if !complete {
            break;
        }
        if header.fin {
            let (kind, bytes) = message.take().expect("in progress");
            seen.push(Seen::Message(kind, bytes));
            message_len = 0;
        }
        at += n + available;
    }
    if eof {
        seen.push(Seen::End(Closed::Abnormal));
    }
    seen
}

/// A stream of peer bytes to a server.
pub fn connection_server(data: &[u8]) {
    stream(Role::Server, data);
}

/// A stream of peer bytes to a client.
pub fn connection_client(data: &[u8]) {
    stream(Role::Client, data);
}

/// A frame the fuzzed peer writes.
#[derive(Arbitrary, Debug)]
struct PeerFrame {
    /// Low 4 bits: the opcode; 0x10: FIN clear; 0x20: wrong masking for the role; 0x40:
    /// an RSV bit; 0x80: the 64-bit length form.
    flags: u8,
    payload: Vec<u8>,
}

/// One step of [`connection_ops`].
#[derive(Arbitrary, Debug)]
enum Op {
    /// The peer writes a frame (queued, not yet read).
    Frame(PeerFrame),
    /// The peer writes raw bytes.
    Raw(Vec<u8>),
    /// The peer writes a Close with this code and reason.
    PeerClose(u16, String),
    /// Up to this many queued peer bytes arrive, as one read or two.
    Feed(u16, u8),
    /// Up to this many queued peer bytes arrive, and `handle_input` is called only once
    /// (an adapter that stops after one event).
    FeedLazy(u16),
    /// One `handle_input` call on the bytes buffered so far.
    Step,
    /// The clock moves on by this many milliseconds.
    Advance(u16),
    /// `handle_timeout` at the current time.
    Timeout,
    /// The clock jumps to the next deadline and fires it.
    ToDeadline,
    /// Send a data frame (text made valid; `split` cuts it into two frames).
    Send {
        text: bool,
        fin: bool,
        split: u8,
        payload: Vec<u8>,
    },
    /// Queue a Ping.
    Ping(Vec<u8>),
    /// Queue an unsolicited Pong.
    Pong(Vec<u8>),
    /// Start the close handshake.
    Close(u16, String),
    /// End of stream.
    Eof,
    /// Drain `poll_transmit` (otherwise control frames wait in their slots).
    Drain,
}

/// Configuration of [`connection_ops`].
#[derive(Arbitrary, Debug)]
struct Setup {
    client: bool,
    buffer: u8,
    small_limits: bool,
    keepalive: Option<(u8, u8)>,
    idle: Option<u8>,
    close_timeout: Option<u8>,
}

impl Setup {
    fn config(&self) -> Config {
        let ms = |n: u8| Duration::from_millis(u64::from(n));
        let mut config = Config::default()
            .with_keepalive(self.keepalive.map(|(i, t)| KeepAlive::new(ms(i), ms(t))))
            .with_idle_timeout(self.idle.map(ms))
            .with_close_timeout(self.close_timeout.map(ms));
        if self.small_limits {
            config = small_limits(config);
        }
        config
    }
}

fn encode_peer_frame(frame: &PeerFrame, receiver: Role, key: u8, out: &mut Vec<u8>) {
    let flags = frame.flags;
    let payload = &frame.payload;
    let masked = (receiver == Role::Server) != (flags & 0x20 != 0);
    out.push(
        if flags & 0x10 != 0 { 0 } else { 0x80 }
            | if flags & 0x40 != 0 { 0x40 } else { 0 }
            | (flags & 0x0F),
    );
    let mask_bit = if masked { 0x80 } else { 0 };
    let len = payload.len();
    if flags & 0x80 != 0 {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    } else if len <= 125 {
        out.push(mask_bit | len as u8);
    } else {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    }
    if masked {
        let k = [key, key.wrapping_mul(3), 0x5A ^ key, 0xC3];
        out.extend_from_slice(&k);
        let at = out.len();
        out.extend_from_slice(payload);
        apply_mask(&mut out[at..], k, 0);
    } else {
        out.extend_from_slice(payload);
    }
}

/// An arbitrary list of operations on one connection: peer frames (valid or not) fed in
/// arbitrary pieces, time moving, sends, pings, pongs, close, end of stream, draining.
/// What this side writes goes to a mirror peer, which must read it without an error and
/// receive exactly the messages sent.
pub fn connection_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let role = if setup.client {
        Role::Client
    } else {
        Role::Server
    };
    let config = setup.config();
    let buffer = MIN_INPUT_BUFFER + usize::from(setup.buffer) * 4;
    let mut now = Instant::from_millis(1);
    let mut side = Side::new(role, config, buffer, [9; 32], now);
    let mut peer_bytes: Vec<u8> = Vec::new();
    let mut sent: Vec<(DataKind, Vec<u8>)> = Vec::new();
    let mut sending: Option<(DataKind, Vec<u8>)> = None;
    let mut frames = 0u8;
    for _ in 0..256 {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        match op {
            Op::Frame(frame) => {
                frames = frames.wrapping_add(1);
                encode_peer_frame(&frame, role, frames, &mut peer_bytes);
            }
            Op::Raw(bytes) => peer_bytes.extend_from_slice(&bytes),
            Op::PeerClose(code, reason) => {
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(reason.as_bytes());
                payload.truncate(125);
                let frame = PeerFrame {
                    flags: 0x08,
                    payload,
                };
                encode_peer_frame(&frame, role, 0x77, &mut peer_bytes);
            }
            Op::Feed(max, split) => {
                let n = usize::from(max).min(peer_bytes.len());
                let cut = if n == 0 {
                    0
                } else {
                    usize::from(split) % (n + 1)
                };
                if !side.eof {
                    side.receive(&peer_bytes[..cut], now);
                    side.receive(&peer_bytes[cut..n], now);
                }
                peer_bytes.drain(..n);
            }
            Op::FeedLazy(max) => {
                let n = usize::from(max).min(peer_bytes.len());
                if !side.eof {
                    let taken = side.read_once(&peer_bytes[..n], now);
                    peer_bytes.drain(..taken);
                }
            }
            Op::Step => {
                side.step(now);
            }
            Op::Advance(ms) => now = now + Duration::from_millis(u64::from(ms)),
            Op::Timeout => side.timeout(now),
            Op::ToDeadline => {
                if let Some(at) = side.conn.poll_timeout() {
                    now = now.max(at);
                    side.timeout(now);
                }
            }
            Op::Send {
                text,
                fin,
                split,
                payload,
            } => {
                let kind = if text {
                    DataKind::Text
                } else {
                    DataKind::Binary
                };
                let payload = if text {
                    String::from_utf8_lossy(&payload).into_owned().into_bytes()
                } else {
                    payload
                };
                let cut = usize::from(split).min(payload.len());
                let parts: [(&[u8], bool); 2] = [(&payload[..cut], false), (&payload[cut..], fin)];
                for (part, fin) in parts {
                    let in_progress = sending.as_ref().map(|(k, _)| *k);
                    match side.send(kind, fin, part) {
                        Ok(()) => {
                            let entry = sending.get_or_insert_with(|| (kind, Vec::new()));
                            entry.1.extend_from_slice(part);
                            if fin {
                                sent.extend(sending.take());
                            }
                        }
                        Err(SendError::Closed) => {
                            assert!(side.conn.state() != sockeye_proto::State::Open);
                            break;
                        }
                        Err(SendError::MessageInProgress) => {
                            assert!(in_progress.is_some_and(|k| k != kind));
                            break;
                        }
                        Err(other) => panic!("unexpected {other:?}"),
                    }
                }
            }
            Op::Ping(payload) => check_control(side.conn.ping(&payload, now), &payload, 125, &side),
            Op::Pong(payload) => check_control(side.conn.pong(&payload), &payload, 125, &side),
            Op::Close(code, reason) => {
                let result = side.conn.close(CloseCode(code), &reason, now);
                match result {
                    Ok(()) => assert!(CloseCode(code).is_valid_on_wire() && reason.len() <= 123),
                    Err(SendError::Closed) => {
                        assert!(side.conn.state() != sockeye_proto::State::Open)
                    }
                    Err(SendError::InvalidCloseCode(c)) => {
                        assert!(c == code && !CloseCode(c).is_sendable())
                    }
                    Err(SendError::ControlTooLong) => assert!(reason.len() > 123),
                    Err(other) => panic!("unexpected {other:?}"),
                }
            }
            Op::Eof => side.eof(now),
            Op::Drain => side.drain(),
        }
    }
    side.drain();
    side.eof(now);
    assert!(side.log.ended.is_some());
    assert_eq!(side.conn.poll_timeout(), None);
    let ends = side
        .log
        .seen
        .iter()
        .filter(|s| matches!(s, Seen::End(_)))
        .count();
    assert_eq!(ends, 1, "exactly one terminal report");
    check_written(role, &side.wrote);

    // The mirror reads what this side wrote: no error, the same messages.
    let mirror_role = match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    };
    let mut mirror = Side::new(mirror_role, Config::default(), 4096, [1; 32], Instant::ZERO);
    mirror.receive(&side.wrote, Instant::ZERO);
    if let Some(Closed::Failed(error)) = mirror.log.ended {
        panic!("the peer could not read what we wrote: {error:?}");
    }
    assert_eq!(
        mirror.messages(),
        sent,
        "the mirror received other messages"
    );
}

fn check_control(result: Result<(), SendError>, payload: &[u8], max: usize, side: &Side) {
    match result {
        Ok(()) => assert!(payload.len() <= max),
        Err(SendError::ControlTooLong) => assert!(payload.len() > max),
        Err(SendError::Closed) => assert!(side.conn.state() != sockeye_proto::State::Open),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

/// One message or ping of [`round_trip`].
#[derive(Arbitrary, Debug)]
enum Item {
    /// A data message cut into fragments of these sizes (the rest in a last fragment).
    Message {
        from_client: bool,
        text: bool,
        payload: Vec<u8>,
        fragments: Vec<u8>,
    },
    /// A Ping (payload cut to 125 bytes).
    Ping { from_client: bool, payload: Vec<u8> },
    /// Carry the bytes in flight across now (otherwise they wait).
    Deliver,
}

/// What one side sends the other receives identically, whatever the fragmentation, the
/// chunking of reads and the read buffer sizes; each Ping comes back as a Pong; the close
/// handshake at the end is clean on both sides.
pub fn round_trip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(buffers), Ok(seeds), Ok(close_by_client)) = (
        <(u8, u8)>::arbitrary(&mut u),
        <(u8, u8)>::arbitrary(&mut u),
        bool::arbitrary(&mut u),
    ) else {
        return;
    };
    let now = Instant::ZERO;
    let mut client = Side::new(
        Role::Client,
        Config::default(),
        MIN_INPUT_BUFFER + usize::from(buffers.0) * 9,
        [seeds.0; 32],
        now,
    );
    let mut server = Side::new(
        Role::Server,
        Config::default(),
        MIN_INPUT_BUFFER + usize::from(buffers.1) * 9,
        [0; 32],
        now,
    );
    let mut links = [Link::new(seeds.0), Link::new(seeds.1)];
    // Expected: [what the server receives, what the client receives].
    let mut expected: [Vec<Seen>; 2] = [Vec::new(), Vec::new()];
    let mut pings: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..64 {
        let Ok(item) = Item::arbitrary(&mut u) else {
            break;
        };
        match item {
            Item::Message {
                from_client,
                text,
                payload,
                fragments,
            } => {
                let (kind, payload) = if text {
                    (
                        DataKind::Text,
                        String::from_utf8_lossy(&payload).into_owned().into_bytes(),
                    )
                } else {
                    (DataKind::Binary, payload)
                };
                let sender = if from_client {
                    &mut client
                } else {
                    &mut server
                };
                let mut rest = &payload[..];
                for size in fragments.iter().take(16) {
                    let n = usize::from(*size).min(rest.len());
                    sender.send(kind, false, &rest[..n]).expect("open");
                    rest = &rest[n..];
                }
                sender.send(kind, true, rest).expect("open");
                expected[usize::from(!from_client)].push(Seen::Message(kind, payload));
            }
            Item::Ping {
                from_client,
                mut payload,
            } => {
                payload.truncate(125);
                let sender = if from_client {
                    &mut client
                } else {
                    &mut server
                };
                sender.conn.ping(&payload, now).expect("open");
                sender.drain();
                expected[usize::from(!from_client)].push(Seen::Ping(payload.clone()));
                pings[usize::from(!from_client)].push(payload);
            }
            Item::Deliver => exchange(&mut client, &mut server, &mut links, now),
        }
    }
    exchange(&mut client, &mut server, &mut links, now);
    let (closer, code) = if close_by_client {
        (&mut client, 4321)
    } else {
        (&mut server, 1000)
    };
    closer
        .conn
        .close(CloseCode(code), "done", now)
        .expect("open");
    closer.drain();
    exchange(&mut client, &mut server, &mut links, now);

    for (receiver, expected, pings_sent) in [
        (&server, &expected[0], &pings[1]),
        (&client, &expected[1], &pings[0]),
    ] {
        let got: Vec<Seen> = receiver
            .log
            .seen
            .iter()
            .filter(|s| matches!(s, Seen::Message(..) | Seen::Ping(_)))
            .cloned()
            .collect();
        assert_eq!(&got, expected, "{:?} received other items", receiver.role);
        let pongs: Vec<&Vec<u8>> = receiver
            .log
            .seen
            .iter()
            .filter_map(|s| match s {
                Seen::Pong(p) => Some(p),
                _ => None,
            })
            .collect();
        assert_eq!(
            pongs,
            pings_sent.iter().collect::<Vec<_>>(),
            "{:?}: pongs",
            receiver.role
        );
        assert!(
            matches!(receiver.log.ended, Some(Closed::Clean(_))),
            "{:?} ended {:?}",
            receiver.role,
            receiver.log.ended
        );
        check_written(receiver.role, &receiver.wrote);
    }
}

/// One direction of [`round_trip`]'s transport: bytes read so far and a chunk generator.
struct Link {
    at: usize,
    rng: Rng,
    max: usize,
    eof: bool,
}

impl Link {
    fn new(seed: u8) -> Link {
        Link {
            at: 0,
            rng: Rng(u64::from(seed) * 0x2545_F491 + 7),
            max: usize::from(seed % 200) + 1,
            eof: false,
        }
    }

    /// Delivers what `from` wrote and `to` has not read yet; returns whether anything moved.
    fn carry(&mut self, from: &Side, to: &mut Side, now: Instant) -> bool {
        let mut moved = false;
        while self.at < from.wrote.len() {
            let n = self.rng.next(self.max).min(from.wrote.len() - self.at);
            to.receive(&from.wrote[self.at..self.at + n], now);
            self.at += n;
            moved = true;
        }
        if from.shut_down && !self.eof {
            self.eof = true;
            to.eof(now);
            moved = true;
        }
        moved
    }
}

fn exchange(client: &mut Side, server: &mut Side, links: &mut [Link; 2], now: Instant) {
    loop {
        let a = links[0].carry(client, server, now);
        let b = links[1].carry(server, client, now);
        if !a && !b {
            return;
        }
    }
}
