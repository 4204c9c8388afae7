//! One side of a connection, driven the way an adapter drives the core.

use sockeye_proto::{
    CloseCode, Closed, Config, Connection, DataKind, Event, Instant, Role, SendError, Transmit,
    MIN_TRANSMIT_BUFFER,
};

use crate::pair::{Chunker, Chunking};
use crate::transcript::{Recorder, Tally, Transcript};
use crate::wire::{parse_frames, WireFrame};

/// A byte pipe: written at the back, read from the front, never shrinking its allocation
/// (so a steady state allocates nothing).
#[derive(Clone, Debug, Default)]
pub struct Pipe {
    bytes: Vec<u8>,
    start: usize,
}

impl Pipe {
    /// A pipe with room for `capacity` bytes before it grows.
    pub fn with_capacity(capacity: usize) -> Self {
        Pipe {
            bytes: Vec::with_capacity(capacity),
            start: 0,
        }
    }

    /// Unread bytes.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unread bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Appends bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.bytes.len() + bytes.len() > self.bytes.capacity() {
            self.compact();
        }
        self.bytes.extend_from_slice(bytes);
    }

    /// Drops `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len());
        self.start += n;
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
    }

    fn compact(&mut self) {
        self.bytes.copy_within(self.start.., 0);
        self.bytes.truncate(self.bytes.len() - self.start);
        self.start = 0;
    }
}

/// Counters of how an [`Endpoint`] was driven.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Reads: times bytes were put into the read buffer.
    pub reads: u64,
    /// Calls to `handle_input`.
    pub input_calls: u64,
    /// Control frames written by `poll_transmit`.
    pub control_frames: u64,
    /// Data frames written by `send`.
    pub data_frames: u64,
}

/// One [`Connection`] with a fixed-size read buffer, an outbound [`Pipe`] and a
/// [`Recorder`], driven like an adapter drives it:
///
/// - bytes are read into the free end of the buffer, then `handle_input` is called until
///   it makes no progress, unconsumed bytes moved to the front for the next read;
/// - `poll_transmit` is drained into the outbound pipe after every call;
///   `Transmit::Shutdown` marks the pipe finished (the peer then reads end of stream);
/// - sending copies the payload to a scratch buffer (the client masks it in place) and
///   writes `[head, payload]` to the pipe.
///
/// Invariants are asserted on the way: `consumed` within the input, event slices inside
/// the read buffer, progress whenever the buffer is full, nothing written after
/// Shutdown, at most four transmits per drain (the control slots are bounded), no
/// deadline at or before `now` right after `handle_timeout(now)`, and the connection's
/// `outcome()` equal to the terminal report.
#[derive(Debug)]
pub struct Endpoint {
    conn: Connection,
    buf: Vec<u8>,
    filled: usize,
    recorder: Recorder,
    outbound: Pipe,
    sent_log: Option<Vec<u8>>,
    tx: Vec<u8>,
    scratch: Vec<u8>,
    shutdown_sent: bool,
    eof_received: bool,
    stats: Stats,
}

/// The default read buffer size.
pub const DEFAULT_READ_BUFFER: usize = 4096;

/// The seed given to client connections unless another is chosen.
pub const DEFAULT_SEED: [u8; 32] = [7; 32];

impl Endpoint {
    /// An endpoint of `role` with a 4 KiB read buffer, recording a full transcript.
    pub fn new(role: Role, config: Config, now: Instant) -> Endpoint {
        Endpoint::with_seed(role, config, DEFAULT_SEED, now)
    }

    /// Like [`Endpoint::new`], with the masking-key seed.
    pub fn with_seed(role: Role, config: Config, seed: [u8; 32], now: Instant) -> Endpoint {
        Endpoint {
            conn: Connection::new(role, config, seed, now),
            buf: vec![0; DEFAULT_READ_BUFFER],
            filled: 0,
            recorder: Recorder::new(),
            outbound: Pipe::with_capacity(64 << 10),
            sent_log: Some(Vec::new()),
            tx: vec![0; MIN_TRANSMIT_BUFFER.max(256)],
            scratch: Vec::with_capacity(64 << 10),
            shutdown_sent: false,
            eof_received: false,
            stats: Stats::default(),
        }
    }

    /// Uses a read buffer of `size` bytes (before any input).
    pub fn read_buffer(mut self, size: usize) -> Self {
        assert_eq!(self.filled, 0, "resize the read buffer before any input");
        self.buf = vec![0; size];
        self
    }

    /// Counts instead of keeping a transcript, and keeps no log of sent bytes: nothing
    /// allocates in a steady state.
    pub fn counting(mut self) -> Self {
        self.recorder = Recorder::counting();
        self.sent_log = None;
        self
    }

    /// Reserves room so that payloads up to `bytes` and that much outbound backlog never
    /// allocate.
    pub fn reserve(&mut self, bytes: usize) {
        self.scratch.reserve(bytes);
        self.outbound.bytes.reserve(bytes + 256);
    }

    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection, for direct calls; call [`drain`](Self::drain) afterwards.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// What this side saw.
    pub fn transcript(&self) -> &Transcript {
        self.recorder.transcript()
    }

    /// Counts of what this side saw.
    pub fn tally(&self) -> &Tally {
        self.recorder.tally()
    }

    /// The recorder.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The terminal report, once it came.
    pub fn outcome(&self) -> Option<Closed> {
        self.recorder.outcome()
    }

    /// Driving counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Bytes waiting to go to the peer.
    pub fn outbound(&self) -> &Pipe {
        &self.outbound
    }

    /// Bytes waiting to go to the peer, to take them.
    pub fn outbound_mut(&mut self) -> &mut Pipe {
        &mut self.outbound
    }

    /// Everything this side wrote (not kept by a counting endpoint).
    pub fn sent(&self) -> &[u8] {
        self.sent_log.as_deref().unwrap_or(&[])
    }

    /// Everything this side wrote, decoded.
    pub fn sent_frames(&self) -> Vec<WireFrame> {
        parse_frames(self.sent())
    }

    /// Whether this side shut its transport down.
    pub fn shutdown_sent(&self) -> bool {
        self.shutdown_sent
    }

    /// Whether this side read end of stream.
    pub fn eof_received(&self) -> bool {
        self.eof_received
    }

    /// Bytes in the read buffer not yet consumed.
    pub fn buffered(&self) -> usize {
        self.filled
    }

    /// The read buffer's size.
    pub fn read_buffer_size(&self) -> usize {
        self.buf.len()
    }

    /// Free room in the read buffer.
    pub fn free(&self) -> usize {
        self.buf.len() - self.filled
    }

    /// Feeds `bytes` as reads as large as the buffer allows.
    pub fn receive(&mut self, bytes: &[u8], now: Instant) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = self.read(rest, now);
            rest = &rest[n..];
        }
    }

    /// Feeds `bytes` in chunks chosen by `chunking` (each chunk one or more reads, as the
    /// buffer allows).
    pub fn receive_chunked(&mut self, bytes: &[u8], chunking: &Chunking, now: Instant) {
        let mut chunker = Chunker::default();
        let mut rest = bytes;
        while !rest.is_empty() {
            let want = chunker.next(chunking, rest.len());
            self.receive(&rest[..want], now);
            rest = &rest[want..];
        }
    }

    /// One read: copies as much of `bytes` as fits into the buffer and processes it.
    /// Returns how many bytes were taken (at least one when `bytes` is not empty).
    pub fn read(&mut self, bytes: &[u8], now: Instant) -> usize {
        if bytes.is_empty() {
            return 0;
        }
        let free = self.free();
        assert!(
            free > 0,
            "stuck: the {}-byte read buffer is full and the connection makes no progress \
             ({:?})",
            self.buf.len(),
            self.conn
        );
        let n = free.min(bytes.len());
        self.buf[self.filled..self.filled + n].copy_from_slice(&bytes[..n]);
        self.filled += n;
        self.stats.reads += 1;
        self.process(now);
        n
    }

    /// Calls `handle_input` until it makes no progress, recording events and draining
    /// transmits after every call.
    pub fn process(&mut self, now: Instant) {
        loop {
            let filled = self.filled;
            let buf_start = self.buf.as_ptr() as usize;
            let buf_end = buf_start + filled;
            self.stats.input_calls += 1;
            let result = self.conn.handle_input(&mut self.buf[..filled], now);
            let (consumed, progressed) = match result {
                Ok(input) => {
                    assert!(
                        input.consumed <= filled,
                        "consumed {} of {filled} bytes",
                        input.consumed
                    );
                    if let Some(event) = &input.event {
                        check_borrowed(event, buf_start, buf_end);
                        self.recorder.event(event);
                    }
                    (input.consumed, input.consumed > 0 || input.event.is_some())
                }
                Err(error) => {
                    self.recorder.error(error);
                    // The failed connection must swallow the rest without events; the
                    // next round checks that.
                    (0, true)
                }
            };
            if let Some(outcome) = self.recorder.outcome() {
                assert_eq!(
                    self.conn.outcome(),
                    Some(outcome),
                    "outcome() vs the report"
                );
            }
            self.drain();
            self.buf.copy_within(consumed..filled, 0);
            self.filled -= consumed;
            if !progressed {
                break;
            }
        }
    }

    /// The transport reached end of stream.
    pub fn eof(&mut self, now: Instant) {
        assert!(!self.eof_received, "end of stream delivered twice");
        self.eof_received = true;
        if let Some(event) = self.conn.handle_eof(now) {
            self.recorder.event(&event);
        }
        if let Some(outcome) = self.recorder.outcome() {
            assert_eq!(
                self.conn.outcome(),
                Some(outcome),
                "outcome() vs the report"
            );
        }
        self.drain();
    }

    /// Fires timers at `now` and checks that the next deadline lies after `now`.
    pub fn timeout(&mut self, now: Instant) {
        if let Some(event) = self.conn.handle_timeout(now) {
            self.recorder.event(&event);
        }
        if let Some(deadline) = self.conn.poll_timeout() {
            assert!(
                deadline > now,
                "deadline {deadline:?} not after now {now:?} right after handle_timeout"
            );
        }
        if self.recorder.outcome().is_some() {
            assert_eq!(self.conn.poll_timeout(), None, "a deadline after the end");
        }
        self.drain();
    }

    /// Drains `poll_transmit` into the outbound pipe.
    pub fn drain(&mut self) {
        let mut transmits = 0;
        while let Some(transmit) = self.conn.poll_transmit(&mut self.tx) {
            transmits += 1;
            assert!(transmits <= 4, "unbounded transmit queue");
            match transmit {
                Transmit::Bytes(n) => {
                    assert!(n > 0 && n <= self.tx.len());
                    self.stats.control_frames += 1;
                    let tx = &self.tx[..n];
                    write(
                        &mut self.outbound,
                        &mut self.sent_log,
                        self.shutdown_sent,
                        tx,
                    );
                }
                Transmit::Shutdown => {
                    assert!(!self.shutdown_sent, "Shutdown twice");
                    self.shutdown_sent = true;
                }
            }
        }
    }

    /// Sends one data frame (a copy of `payload`, masked in place by a client).
    pub fn send_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: &[u8],
    ) -> Result<(), SendError> {
        self.scratch.clear();
        self.scratch.extend_from_slice(payload);
        let head = self.conn.send(kind, fin, &mut self.scratch)?;
        self.stats.data_frames += 1;
        write(
            &mut self.outbound,
            &mut self.sent_log,
            self.shutdown_sent,
            &head,
        );
        write(
            &mut self.outbound,
            &mut self.sent_log,
            self.shutdown_sent,
            &self.scratch,
        );
        self.drain();
        Ok(())
    }

    /// Sends a whole message in one frame.
    pub fn send(&mut self, kind: DataKind, payload: &[u8]) -> Result<(), SendError> {
        self.send_frame(kind, true, payload)
    }

    /// Sends a message as these fragments (at least one).
    pub fn send_fragments(&mut self, kind: DataKind, fragments: &[&[u8]]) -> Result<(), SendError> {
        assert!(!fragments.is_empty());
        for (i, fragment) in fragments.iter().enumerate() {
            self.send_frame(kind, i + 1 == fragments.len(), fragment)?;
        }
        Ok(())
    }

    /// Queues a Ping and drains it.
    pub fn ping(&mut self, payload: &[u8], now: Instant) -> Result<(), SendError> {
        self.conn.ping(payload, now)?;
        self.drain();
        Ok(())
    }

    /// Starts the close handshake and drains the Close.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        self.conn.close(code, reason, now)?;
        self.drain();
        Ok(())
    }
}

fn write(pipe: &mut Pipe, log: &mut Option<Vec<u8>>, shut_down: bool, bytes: &[u8]) {
    assert!(!shut_down, "bytes written after Transmit::Shutdown");
    pipe.push(bytes);
    if let Some(log) = log {
        log.extend_from_slice(bytes);
    }
}

/// Asserts that the event's data lies inside the read buffer (zero copy, and nothing
/// handed out from beyond what was passed in).
fn check_borrowed(event: &Event<'_>, start: usize, end: usize) {
    let slice: &[u8] = match event {
        Event::Text { text, .. } => text.as_bytes(),
        Event::Binary { bytes, .. } | Event::Compressed { bytes, .. } => bytes,
        Event::Ping(payload) | Event::Pong(payload) => payload,
        Event::Close(frame) => frame.reason.as_bytes(),
        Event::Closed(_) => &[],
    };
    if slice.is_empty() {
        return;
    }
    let at = slice.as_ptr() as usize;
    assert!(
        at >= start && at + slice.len() <= end,
        "event data outside the input: {event:?}"
    );
}
