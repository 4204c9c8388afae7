//! A buffered driver around [`Connection`] for `std` adapters (feature `std`).
//!
//! The runtime adapters (tokio, smol, mio) share everything but the I/O calls, and that
//! shared part lives here rather than behind a runtime trait: [`Driver`] owns the read
//! buffer, assembles whole owned [`Message`]s, and keeps a send queue that coalesces small
//! frames into one write and hands large payloads to a vectored write without copying.
//! Control frames from [`Connection::poll_transmit`] are moved into the send queue after
//! every core call, so Pongs and Close replies go out whenever the adapter flushes.
//!
//! Large binary frames (see [`DriverConfig::direct_read_threshold`]) skip the read buffer:
//! [`Driver::read_with`] hands the adapter's read the rest of the frame inside the message
//! being assembled, so their payload is never copied in user space. That applies to
//! [`Driver::poll_message`]; the streaming [`Driver::poll_event_with`] always reads through
//! the read buffer.
//!
//! Memory: read buffers come from a small per-thread pool and go back to it whenever no
//! partial frame is left, and the send queue frees its buffers when it drains, so an idle
//! connection holds no buffer at all. Large message buffers, once written out, are kept
//! per thread for the next large message (eight of 4 KiB to 1 MiB, and one larger of up
//! to 64 MiB), so that an echo or a proxy does not allocate and zero one per message.
//! A new large buffer is asked of the allocator already zeroed (fresh pages are), and a
//! buffer that must grow is zeroed only a step (1 MiB) ahead of the bytes received: a
//! frame header announcing 16 MiB commits about what actually arrived, not 16 MiB.
//!
//! The driver does no I/O: the adapter calls [`Driver::read_with`] with a closure that
//! performs one non-blocking read into the buffer it is given (returning
//! `Poll::Pending` when the socket has nothing), and writes [`Driver::write_slices`] with a
//! vectored write, then reports progress with [`Driver::advance`].

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::string::String;
use std::task::Poll;
use std::vec::Vec;

use crate::close::{CloseCode, CloseFrame};
use crate::connection::{Boundary, Closed, Connection, DataKind, Event, Transmit};
use crate::error::{ProtocolError, SendError};
use crate::frame::FrameHead;
use crate::time::Instant;
use crate::{copy, MIN_INPUT_BUFFER, MIN_TRANSMIT_BUFFER};

mod error;
pub mod handshake;
pub mod reconnect;
pub use error::Error;
pub use handshake::{
    AnswersAtOnce, ClientAnswer, ClientUpgrade, Decider, IntoRequest, Refusal, RejectedResponse,
    RequestExtras, RequestHead, ServerAnswer, ServerUpgrade, Settings, Verdict,
};

/// An owned WebSocket message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A Ping (the Pong is sent automatically).
    Ping(Vec<u8>),
    /// A Pong.
    Pong(Vec<u8>),
    /// The peer's Close: the connection is half-closed and our reply is on its way.
    Close(Option<CloseReason>),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message.
    pub fn binary(bytes: impl Into<Vec<u8>>) -> Self {
        Message::Binary(bytes.into())
    }

    /// Whether this is a text or binary message.
    pub fn is_data(&self) -> bool {
        matches!(self, Message::Text(_) | Message::Binary(_))
    }

    /// The payload bytes (the reason for a Close).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes,
            Message::Close(Some(close)) => close.reason.as_bytes(),
            Message::Close(None) => &[],
        }
    }
}

/// A close code with its reason, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseReason {
    /// The close code.
    pub code: CloseCode,
    /// The reason (UTF-8, at most 123 bytes).
    pub reason: String,
}

impl CloseReason {
    /// A close code with a reason.
    pub fn new(code: CloseCode, reason: impl Into<String>) -> Self {
        CloseReason {
            code,
            reason: reason.into(),
        }
    }

    fn from_frame(frame: &CloseFrame<'_>) -> Option<Self> {
        frame.code.map(|code| CloseReason::new(code, frame.reason))
    }
}

/// What the driver read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// A whole message (or a control frame).
    Message(Message),
    /// The connection is over: the last item.
    Closed(Closed),
}

/// Buffer and queue settings of a [`Driver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Size of a read buffer (taken from the per-thread pool). Larger frames stream
    /// through it in chunks. Default 64 KiB; at least [`MIN_INPUT_BUFFER`].
    pub read_buffer_size: usize,
    /// Payloads up to this size are copied into the coalescing write buffer (many small
    /// frames per write); larger ones are written from where they are. Default 16 KiB.
    pub coalesce_limit: usize,
    /// Backpressure: [`Driver::is_writable`] is false while more than this many bytes wait
    /// to be written. Default 1 MiB.
    pub max_pending_bytes: usize,
    /// Binary frames with at least this many payload bytes are read straight into the
    /// message being assembled by [`Driver::poll_message`] instead of through the read
    /// buffer, which saves copying them. Default 16 KiB; `usize::MAX` turns it off.
    ///
    /// While such frames keep coming, reads into the read buffer (for the next frame's
    /// header) take at most 256 bytes, so that little of the next payload lands there and
    /// has to be copied.
    pub direct_read_threshold: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig::DEFAULT
    }
}

impl DriverConfig {
    /// The default settings (64 KiB reads, 16 KiB coalescing, 1 MiB backpressure, frames
    /// of 16 KiB and more read straight into their message).
    pub const DEFAULT: DriverConfig = DriverConfig {
        read_buffer_size: 64 * 1024,
        coalesce_limit: 16 * 1024,
        max_pending_bytes: 1024 * 1024,
        direct_read_threshold: 16 * 1024,
    };

    /// Sets [`DriverConfig::read_buffer_size`] (raised to [`MIN_INPUT_BUFFER`] if smaller).
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(MIN_INPUT_BUFFER);
        self
    }

    /// Sets [`DriverConfig::max_pending_bytes`].
    pub fn with_max_pending_bytes(mut self, bytes: usize) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// Sets [`DriverConfig::coalesce_limit`].
    pub fn with_coalesce_limit(mut self, bytes: usize) -> Self {
        self.coalesce_limit = bytes;
        self
    }

    /// Sets [`DriverConfig::direct_read_threshold`] (`usize::MAX`: never read directly).
    pub fn with_direct_read_threshold(mut self, bytes: usize) -> Self {
        self.direct_read_threshold = bytes;
        self
    }

    /// While large frames keep coming: how far a direct read runs past its frame, and
    /// how much a read into the read buffer takes. Enough for the next frame's header (so
    /// a stream of large frames takes one read per frame) and a little of what follows,
    /// but no more, because those bytes are copied (into the read buffer, then into the
    /// next message). It fits in the read buffer.
    fn lookahead(&self) -> usize {
        LOOKAHEAD.min(self.read_buffer_size)
    }
}

/// How far past the received bytes a growing message buffer is zeroed for direct
/// reads (each read then fills at most this much).
const ZEROED_AHEAD: usize = 1 << 20;

/// See [`DriverConfig::lookahead`]: a header is at most 14 bytes; the rest leaves room
/// for a control frame or two.
const LOOKAHEAD: usize = 256;

/// The per-thread pool of read buffers, so idle connections hold none.
mod pool {
    use super::*;

    const MAX_POOLED: usize = 16;

    std::thread_local! {
        static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// A buffer of exactly `size` initialized bytes (zeros if new, old input if pooled:
    /// reads overwrite them).
    pub(super) fn take(size: usize) -> Vec<u8> {
        let pooled = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                let index = pool.iter().rposition(|buf| buf.len() == size)?;
                Some(pool.swap_remove(index))
            })
            .ok()
            .flatten();
        pooled.unwrap_or_else(|| std::vec![0u8; size])
    }

    pub(super) fn give(buf: Vec<u8>) {
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < MAX_POOLED {
                pool.push(buf);
            }
        });
    }

    /// Message buffers smaller than this come from the allocator (which is fast for
    /// them); a pooled buffer is never handed out for much less than its size.
    pub(super) const MIN_RECYCLED: usize = 4 * 1024;
    const MAX_RECYCLED: usize = 1024 * 1024;
    const MAX_RECYCLED_COUNT: usize = 8;
    /// Beside those, one larger buffer (up to the default `max_message_size`) is kept
    /// for the next large message: without it, each one is allocated and zeroed anew
    /// (a 16 MiB `memset` was a tenth of the server's time echoing 16 MiB messages).
    const MAX_RECYCLED_LARGE: usize = 64 << 20;

    std::thread_local! {
        /// Emptied message buffers: a payload written out comes back as the next
        /// message's buffer. Without it, every large message frees its buffer after the
        /// write and the next one regrows the heap (brk, page faults), which costs more
        /// than the copies.
        static RECYCLED: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
        /// The one kept buffer of more than `MAX_RECYCLED` bytes; a newer one replaces it.
        static RECYCLED_LARGE: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    }

    /// Whether `buf` may be handed out for a message of `capacity` bytes: big enough,
    /// and not much bigger.
    fn fits(buf: &Vec<u8>, capacity: usize) -> bool {
        buf.capacity() >= capacity && buf.capacity() / 2 <= capacity
    }

    /// An empty buffer with room for at least `capacity` bytes.
    pub(super) fn buffer(capacity: usize) -> Vec<u8> {
        let mut buf = recycled(capacity).unwrap_or_else(|| Vec::with_capacity(capacity));
        buf.clear();
        buf
    }

    /// A buffer with room for at least `capacity` bytes whose length (its initialized
    /// bytes, which are left over from an earlier message) is up to `capacity`, so that
    /// reads can go straight into it without zeroing it first.
    pub(super) fn message_buffer(capacity: usize) -> Vec<u8> {
        if let Some(mut buf) = recycled(capacity) {
            buf.truncate(capacity);
            return buf;
        }
        if capacity > MAX_RECYCLED {
            // Asked for zeroed memory, the allocator can hand out fresh pages, which
            // the kernel has zeroed already; an empty buffer would be zeroed by
            // `resize` before the first read, every byte (a message the application
            // keeps never comes back to lend its buffer to the next).
            return std::vec![0; capacity];
        }
        Vec::with_capacity(capacity)
    }

    fn recycled(capacity: usize) -> Option<Vec<u8>> {
        if (MIN_RECYCLED..=MAX_RECYCLED).contains(&capacity) {
            RECYCLED
                .try_with(|pool| {
                    let mut pool = pool.borrow_mut();
                    let index = pool.iter().rposition(|buf| fits(buf, capacity))?;
                    Some(pool.swap_remove(index))
                })
                .ok()
                .flatten()
        } else if capacity <= MAX_RECYCLED_LARGE {
            RECYCLED_LARGE
                .try_with(|slot| {
                    let mut slot = slot.borrow_mut();
                    slot.take_if(|buf| fits(buf, capacity))
                })
                .ok()
                .flatten()
        } else {
            None
        }
    }

    /// Keeps `buf` for a later [`buffer`] call if it is worth keeping. Its contents stay
    /// (as initialized bytes for [`message_buffer`]); nothing hands them out again.
    pub(super) fn recycle(buf: Vec<u8>) {
        if buf.capacity() > MAX_RECYCLED && buf.capacity() <= MAX_RECYCLED_LARGE {
            let _ = RECYCLED_LARGE.try_with(|slot| *slot.borrow_mut() = Some(buf));
            return;
        }
        if !(MIN_RECYCLED..=MAX_RECYCLED).contains(&buf.capacity()) {
            return;
        }
        let _ = RECYCLED.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < MAX_RECYCLED_COUNT {
                pool.push(buf);
            }
        });
    }
}

/// The read buffer: bytes `start..end` are read but not yet consumed by the core.
#[derive(Debug, Default)]
struct RecvBuffer {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl RecvBuffer {
    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn release_if_empty(&mut self) {
        if self.is_empty() && !self.buf.is_empty() {
            pool::give(core::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Spare room after the unconsumed bytes, taking a buffer and compacting as needed.
    fn spare(&mut self, size: usize) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = pool::take(size);
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < MIN_INPUT_BUFFER || self.start == self.end {
            copy::move_to_front(&mut self.buf, self.start..self.end);
            self.end -= self.start;
            self.start = 0;
        }
        &mut self.buf[self.end..]
    }

    /// Appends as much of `bytes` as fits; returns how many did.
    fn push(&mut self, bytes: &[u8], size: usize) -> usize {
        let spare = self.spare(size);
        let n = spare.len().min(bytes.len());
        copy::copy(&mut spare[..n], &bytes[..n]);
        self.end += n;
        n
    }
}

impl Drop for RecvBuffer {
    /// A connection that ends holding its read buffer (it stopped at its Close, or failed)
    /// hands it to the next one instead of freeing it: a new 64 KiB buffer is zeroed,
    /// which cost a busy server a few µs per connection.
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            pool::give(core::mem::take(&mut self.buf));
        }
    }
}

/// One piece of the send queue.
#[derive(Debug)]
enum Segment {
    /// Frame heads, control frames and small payloads, coalesced into one buffer.
    Coalesced(Vec<u8>),
    /// A large payload written from its own allocation (no copy).
    Payload(Vec<u8>),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Coalesced(bytes) | Segment::Payload(bytes) => bytes,
        }
    }

    fn recycle(self) {
        match self {
            Segment::Coalesced(bytes) | Segment::Payload(bytes) => pool::recycle(bytes),
        }
    }
}

/// Bytes waiting to be written, in order.
#[derive(Debug, Default)]
struct SendQueue {
    segments: VecDeque<Segment>,
    /// Bytes of the front segment already written.
    written: usize,
    pending: usize,
}

impl SendQueue {
    /// The coalescing buffer at the back of the queue, made if needed.
    fn coalesced(&mut self, room: usize) -> &mut Vec<u8> {
        let usable = matches!(self.segments.back(), Some(Segment::Coalesced(buf)) if buf.capacity() - buf.len() >= room || buf.len() < 64 * 1024);
        if !usable {
            self.segments.push_back(Segment::Coalesced(pool::buffer(
                room.max(pool::MIN_RECYCLED),
            )));
        }
        match self.segments.back_mut() {
            Some(Segment::Coalesced(buf)) => buf,
            _ => unreachable_coalesced(),
        }
    }

    fn push_small(&mut self, bytes: &[u8]) {
        copy::extend(self.coalesced(bytes.len()), bytes);
        self.pending += bytes.len();
    }

    fn push_frame(&mut self, head: &FrameHead, payload: Vec<u8>, coalesce_limit: usize) {
        if payload.len() <= coalesce_limit {
            let buf = self.coalesced(head.len() + payload.len());
            buf.extend_from_slice(head);
            copy::extend(buf, &payload);
            self.pending += head.len() + payload.len();
        } else {
            self.push_small(head);
            self.pending += payload.len();
            self.segments.push_back(Segment::Payload(payload));
        }
    }

    fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (index, segment) in self.segments.iter().enumerate() {
            if count == out.len() {
                break;
            }
            let bytes = segment.bytes();
            let bytes = if index == 0 {
                &bytes[self.written..]
            } else {
                bytes
            };
            if !bytes.is_empty() {
                out[count] = IoSlice::new(bytes);
                count += 1;
            }
        }
        count
    }

    fn advance(&mut self, mut n: usize) {
        n = n.min(self.pending);
        self.pending -= n;
        while n > 0 {
            let Some(front) = self.segments.front() else {
                break;
            };
            let left = front.bytes().len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            if let Some(done) = self.segments.pop_front() {
                done.recycle();
            }
            self.written = 0;
        }
        // Drop fully written segments (and free the queue itself once idle).
        while matches!(self.segments.front(), Some(s) if s.bytes().len() == self.written) {
            if let Some(done) = self.segments.pop_front() {
                done.recycle();
            }
            self.written = 0;
        }
        if self.segments.is_empty() {
            self.segments = VecDeque::new();
        }
    }
}

#[cold]
fn unreachable_coalesced() -> ! {
    // `coalesced` pushes a Coalesced segment right before looking at the back.
    unreachable!("the send queue's back segment is a coalescing buffer")
}

/// A message being assembled from chunks.
#[derive(Debug)]
enum Partial {
    Text(String),
    /// `buf[..filled]` is the message so far; the rest of `buf` is initialized room (old
    /// bytes) that reads may fill directly.
    Binary {
        buf: Vec<u8>,
        filled: usize,
    },
}

/// [`DriverConfig`] as every driver keeps it: sizes as `u32` (larger values saturate),
/// 16 bytes instead of 32 in each connection.
#[derive(Clone, Copy, Debug)]
struct Tuning {
    read_buffer_size: u32,
    coalesce_limit: u32,
    max_pending_bytes: u32,
    direct_read_threshold: u32,
}

impl Tuning {
    fn new(config: DriverConfig) -> Self {
        let narrow = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
        Tuning {
            read_buffer_size: narrow(config.read_buffer_size.max(MIN_INPUT_BUFFER)),
            coalesce_limit: narrow(config.coalesce_limit),
            max_pending_bytes: narrow(config.max_pending_bytes),
            direct_read_threshold: narrow(config.direct_read_threshold),
        }
    }

    fn config(self) -> DriverConfig {
        let widen = |bytes: u32| usize::try_from(bytes).unwrap_or(usize::MAX);
        DriverConfig {
            read_buffer_size: widen(self.read_buffer_size),
            coalesce_limit: widen(self.coalesce_limit),
            max_pending_bytes: widen(self.max_pending_bytes),
            direct_read_threshold: widen(self.direct_read_threshold),
        }
    }
}

/// A [`Connection`] with its buffers: the shared engine of the `std` adapters.
#[derive(Debug)]
pub struct Driver {
    connection: Connection,
    tuning: Tuning,
    recv: RecvBuffer,
    send: SendQueue,
    partial: Option<Partial>,
    /// Bytes read straight into the partial binary message after its `filled` bytes,
    /// not yet passed to the core (a direct read is at most `u32::MAX` bytes).
    direct: u32,
    /// Whether the current (or last) data frame is at least
    /// [`DriverConfig::direct_read_threshold`] long.
    large_frame: bool,
    /// Whether the caller assembles whole messages ([`Driver::poll_message`]) rather than
    /// streaming events, so reads may go straight into the message.
    assembling: bool,
    eof: bool,
    shutdown: bool,
    finished: bool,
}

impl Driver {
    /// A driver around `connection`. Bytes that arrived after the handshake head (early
    /// frames) can be handed over with [`Driver::push_bytes`].
    pub fn new(connection: Connection, config: DriverConfig) -> Self {
        Driver {
            connection,
            tuning: Tuning::new(config),
            recv: RecvBuffer::default(),
            send: SendQueue::default(),
            partial: None,
            direct: 0,
            large_frame: false,
            assembling: false,
            eof: false,
            shutdown: false,
            finished: false,
        }
    }

    /// The connection inside (state, outcome, the peer's Close).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The buffer settings (sizes over `u32::MAX` read back as `u32::MAX`).
    pub fn config(&self) -> DriverConfig {
        self.tuning.config()
    }

    /// Adds bytes that were read elsewhere (e.g. frames that followed the handshake).
    pub fn push_bytes(&mut self, mut bytes: &[u8]) {
        let size = self.tuning.config().read_buffer_size;
        while !bytes.is_empty() {
            let n = self.recv.push(bytes, size);
            bytes = &bytes[n..];
            if n == 0 {
                break;
            }
        }
    }

    /// Whether unprocessed input is buffered (call [`Driver::poll_message`] before reading).
    pub fn has_buffered_input(&self) -> bool {
        !self.recv.is_empty() || self.direct > 0
    }

    /// Reads once: `read` gets free buffer space and returns how many bytes it put there
    /// (`Ready(Ok(0))` is end of stream) or `Pending` if nothing is available. When it
    /// is pending and no partial frame is buffered, the buffer goes back to the pool, so
    /// a connection waiting for data holds no read buffer.
    ///
    /// Returns `Ready(Ok(n))` with the byte count (0 at EOF, which is then fed to the core
    /// by the next [`Driver::poll_message`]).
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        if self.eof || self.finished {
            return Poll::Ready(Ok(0));
        }
        if let Some((region, frame_part)) = self.direct_region() {
            let region_len = region.len();
            let result = read(region);
            if let Poll::Ready(Ok(n)) = result {
                let n = n.min(region_len);
                self.eof |= n == 0;
                self.settle_direct_read(frame_part, n);
                return Poll::Ready(Ok(n));
            }
            return result;
        }
        let config = self.tuning.config();
        let limit = if self.assembling && self.large_frame {
            config.lookahead()
        } else {
            usize::MAX
        };
        let spare = self.recv.spare(config.read_buffer_size);
        let spare_len = spare.len().min(limit);
        let result = read(&mut spare[..spare_len]);
        match result {
            Poll::Ready(Ok(n)) => {
                let n = n.min(spare_len);
                if n == 0 {
                    self.eof = true;
                }
                self.recv.end += n;
                self.recv.release_if_empty();
                Poll::Ready(Ok(n))
            }
            other => {
                self.recv.release_if_empty();
                other
            }
        }
    }

    /// Where the next read goes when it can skip the read buffer: the rest of the current
    /// large binary frame, inside the message being assembled, and after it a few bytes
    /// of room (the message's spare capacity, see `lookahead`) for what follows
    /// the frame, so one read also brings the next header.
    /// Only with the read buffer empty, so the core sees the bytes in order.
    ///
    /// Returns the region and how many of its bytes belong to the current frame.
    fn direct_region(&mut self) -> Option<(&mut [u8], usize)> {
        if !self.assembling || !self.large_frame || self.direct != 0 || !self.recv.is_empty() {
            return None;
        }
        let config = self.tuning.config();
        let overshoot = config.lookahead();
        // One read fills at most `u32::MAX` bytes (what `direct` counts); the rest of a
        // larger frame comes with the next reads.
        let most = usize::try_from(u32::MAX).unwrap_or(usize::MAX) - overshoot;
        let remaining = usize::try_from(self.connection.frame_remaining())
            .unwrap_or(usize::MAX)
            .min(most);
        if remaining == 0 {
            return None;
        }
        let Some(Partial::Binary { buf, filled }) = &mut self.partial else {
            return None;
        };
        let frame_end = filled.checked_add(remaining)?;
        // Never grow the buffer for the overshoot (`assemble` reserved room for it).
        let end = frame_end.max(buf.capacity().min(frame_end.saturating_add(overshoot)));
        if buf.len() < end {
            // A buffer that must grow (a shorter recycled one, or a message's next
            // frame) is zeroed only a step ahead of the bytes that arrived: a header
            // can announce 16 MiB that never come, and zeroed memory is resident.
            let step = filled.saturating_add(ZEROED_AHEAD).max(buf.len());
            buf.resize(end.min(step), 0);
        }
        let end = end.min(buf.len());
        Some((&mut buf[*filled..end], remaining.min(end - *filled)))
    }

    /// After a direct read of `n` bytes into [`Driver::direct_region`]: the bytes past
    /// the first `frame_part` belong to the next frames and move to the read buffer
    /// (empty before the read, and at least as large as the overshoot).
    fn settle_direct_read(&mut self, frame_part: usize, n: usize) {
        self.direct = u32::try_from(n.min(frame_part)).unwrap_or(u32::MAX);
        let Some(Partial::Binary { buf, filled }) = &self.partial else {
            return;
        };
        if let Some(excess) = buf.get(filled + frame_part..filled + n) {
            let size = self.tuning.config().read_buffer_size;
            self.recv.push(excess, size);
        }
    }

    /// Passes the bytes read straight into the partial message to the core (which
    /// unmasks them where they are). Returns the message once it is complete.
    fn consume_direct(&mut self, now: Instant) -> Result<Option<Received>, ProtocolError> {
        let direct = usize::try_from(core::mem::take(&mut self.direct)).unwrap_or(0);
        let Some(Partial::Binary { buf, filled }) = &mut self.partial else {
            return Ok(None);
        };
        let input = &mut buf[*filled..*filled + direct];
        let read = self.connection.handle_input(input, now);
        Self::drain_transmits(&mut self.connection, &mut self.send, &mut self.shutdown);
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                self.finished = true;
                self.partial = None;
                return Err(error);
            }
        };
        match read.event {
            Some(Event::Binary { bytes, end }) => {
                *filled += bytes.len();
                if end != Boundary::MessageEnd {
                    return Ok(None);
                }
                let Some(Partial::Binary { mut buf, filled }) = self.partial.take() else {
                    return Ok(None);
                };
                buf.truncate(filled);
                Ok(Some(Received::Message(Message::Binary(buf))))
            }
            Some(Event::Closed(closed)) => {
                // A timer ended the connection before these bytes were looked at.
                self.finished = true;
                Ok(Some(Received::Closed(closed)))
            }
            // Payload bytes make no other event; the core may have stopped reading.
            _ => Ok(None),
        }
    }

    /// Marks end of stream (for adapters that learn of it outside [`Driver::read_with`]).
    pub fn set_eof(&mut self) {
        self.eof = true;
    }

    /// The next whole message or the end, from buffered input. `Ok(None)` means more
    /// input is needed. A protocol error is returned once: the connection has failed,
    /// its Close is queued; flush, and the driver then asks for shutdown.
    pub fn poll_message(&mut self, now: Instant) -> Result<Option<Received>, ProtocolError> {
        self.assembling = true;
        if self.direct > 0 && !self.finished {
            if let Some(received) = self.consume_direct(now)? {
                return Ok(Some(received));
            }
        }
        let mut partial = self.partial.take();
        let overshoot = self.tuning.config().lookahead();
        let result = loop {
            match self.poll_event_hinted(now, |event, frame_remaining, large_frame| {
                let slack = if large_frame { overshoot } else { 0 };
                assemble(&mut partial, event, frame_remaining, slack)
            }) {
                Ok(Some(None)) => continue,
                Ok(Some(Some(received))) => break Ok(Some(received)),
                Ok(None) => break Ok(None),
                Err(error) => break Err(error),
            }
        };
        self.partial = partial;
        result
    }

    /// Passes the next raw event from buffered input to `f`, borrowing the read buffer:
    /// the streaming API (a large message in chunks, never whole in memory). `Ok(None)`
    /// means more input is needed. Do not mix with [`Driver::poll_message`] inside one
    /// message.
    pub fn poll_event_with<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(Event<'_>) -> R,
    ) -> Result<Option<R>, ProtocolError> {
        self.assembling = false;
        self.poll_event_hinted(now, |event, _, _| f(event))
    }

    /// [`Driver::poll_event_with`], also telling `f` how many payload bytes of the current
    /// frame are still to come (to reserve a message's size once) and whether the frame
    /// is large enough to be read directly.
    fn poll_event_hinted<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(Event<'_>, usize, bool) -> R,
    ) -> Result<Option<R>, ProtocolError> {
        if self.finished {
            return Ok(None);
        }
        loop {
            let frame_start = self.connection.frame_remaining() == 0;
            let input = &mut self.recv.buf[self.recv.start..self.recv.end];
            let read = match self.connection.handle_input(input, now) {
                Ok(read) => read,
                Err(error) => {
                    self.finished = true;
                    self.recv.start = self.recv.end;
                    self.recv.release_if_empty();
                    Self::drain_transmits(&mut self.connection, &mut self.send, &mut self.shutdown);
                    return Err(error);
                }
            };
            self.recv.start += read.consumed;
            Self::drain_transmits(&mut self.connection, &mut self.send, &mut self.shutdown);
            if let Some(event) = read.event {
                self.finished |= matches!(event, Event::Closed(_));
                let frame_remaining =
                    usize::try_from(self.connection.frame_remaining()).unwrap_or(usize::MAX);
                if frame_start {
                    // Only binary payloads are read directly; text is validated as it is
                    // copied into its `String`, through the read buffer at full size.
                    self.large_frame = match &event {
                        Event::Binary { bytes, .. } => {
                            bytes.len().saturating_add(frame_remaining)
                                >= self.tuning.config().direct_read_threshold
                        }
                        _ => false,
                    };
                }
                return Ok(Some(f(event, frame_remaining, self.large_frame)));
            }
            if read.consumed == 0 {
                break;
            }
        }
        self.recv.release_if_empty();
        if self.eof {
            if let Some(event) = self.connection.handle_eof(now) {
                self.finished = true;
                self.recv = RecvBuffer::default();
                Self::drain_transmits(&mut self.connection, &mut self.send, &mut self.shutdown);
                return Ok(Some(f(event, 0, false)));
            }
        }
        Ok(None)
    }

    /// How the connection ended, once the core has decided it (owned, with the peer's
    /// reason).
    pub fn outcome(&self) -> Option<Outcome> {
        self.connection
            .outcome()
            .map(|closed| Outcome::from_closed(closed, &self.connection))
    }

    /// The transport failed (a read or write error): the connection is over, nothing more
    /// is read or written, and both buffers are freed. Returns the end to report: the
    /// core's own when it had already decided one (say a clean close whose last write
    /// failed), otherwise [`Abnormal::Io`].
    pub fn fail_io(&mut self, kind: std::io::ErrorKind) -> Outcome {
        self.finished = true;
        self.shutdown = false;
        self.recv = RecvBuffer::default();
        self.send = SendQueue::default();
        self.partial = None;
        self.direct = 0;
        self.outcome()
            .unwrap_or(Outcome::Abnormal(Abnormal::Io(kind)))
    }

    /// Whether the end was reported (or the connection failed): nothing more will be read.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Queues a whole message (text, binary, ping, pong or close). Text and binary are
    /// masked in place on the client and written without a copy when large; Ping and
    /// Close go through the core's control slots; a Pong is sent as given.
    pub fn send(&mut self, message: Message, now: Instant) -> Result<(), SendError> {
        match message {
            Message::Text(text) => self.send_frame(DataKind::Text, true, text.into_bytes()),
            Message::Binary(bytes) => self.send_frame(DataKind::Binary, true, bytes),
            Message::Ping(payload) => self.ping(&payload, now),
            Message::Pong(payload) => self.pong(&payload),
            Message::Close(reason) => {
                let (code, reason) = match &reason {
                    Some(close) => (close.code, close.reason.as_str()),
                    None => (CloseCode::NORMAL, ""),
                };
                self.close(code, reason, now)
            }
        }
    }

    /// Queues one data frame (for fragmented sends: `fin == false` continues the message).
    pub fn send_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        mut payload: Vec<u8>,
    ) -> Result<(), SendError> {
        let head = self.connection.send(kind, fin, &mut payload)?;
        self.send
            .push_frame(&head, payload, self.tuning.config().coalesce_limit);
        Ok(())
    }

    /// Queues a Ping.
    pub fn ping(&mut self, payload: &[u8], now: Instant) -> Result<(), SendError> {
        self.connection.ping(payload, now)?;
        self.drain();
        Ok(())
    }

    /// Sends an unsolicited Pong (a unidirectional heartbeat, RFC 6455 §5.5.3).
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.connection.pong(payload)?;
        self.drain();
        Ok(())
    }

    /// Starts the close handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        self.connection.close(code, reason, now)?;
        self.drain();
        Ok(())
    }

    /// Fires expired timers. Returns the end if a timer ended the connection.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Closed> {
        let event = self.connection.handle_timeout(now);
        self.drain();
        match event {
            Some(Event::Closed(closed)) => {
                self.finished = true;
                Some(closed)
            }
            _ => None,
        }
    }

    /// The next deadline for [`Driver::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.connection.poll_timeout()
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.send.pending
    }

    /// Whether there is something to write.
    pub fn wants_write(&self) -> bool {
        self.send.pending > 0
    }

    /// Backpressure: whether the send queue is below [`DriverConfig::max_pending_bytes`].
    pub fn is_writable(&self) -> bool {
        self.send.pending <= self.tuning.config().max_pending_bytes
    }

    /// Fills `out` with the bytes to write next, for a vectored write; returns how many
    /// slices were filled (0 when there is nothing to write).
    pub fn write_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        self.send.slices(out)
    }

    /// `n` bytes from [`Driver::write_slices`] were written.
    pub fn advance(&mut self, n: usize) {
        self.send.advance(n);
    }

    /// Whether the transport should now be shut down: the core asked for it and every
    /// queued byte is written.
    pub fn wants_shutdown(&self) -> bool {
        self.shutdown && self.send.pending == 0
    }

    /// Whether the connection is completely over: the end was reported and the
    /// transport may be dropped once [`Driver::wants_shutdown`] was honoured.
    pub fn is_done(&self) -> bool {
        self.finished && self.send.pending == 0
    }

    /// Moves queued control frames into the send queue (called after every core call).
    fn drain(&mut self) {
        Self::drain_transmits(&mut self.connection, &mut self.send, &mut self.shutdown);
    }

    fn drain_transmits(connection: &mut Connection, send: &mut SendQueue, shutdown: &mut bool) {
        let mut frame = [0u8; MIN_TRANSMIT_BUFFER];
        while let Some(transmit) = connection.poll_transmit(&mut frame) {
            match transmit {
                Transmit::Bytes(n) => send.push_small(&frame[..n]),
                Transmit::Shutdown => *shutdown = true,
            }
        }
    }
}

/// Adds a data chunk to the message being assembled; returns what the application sees.
///
/// `frame_remaining` (payload bytes of this frame still to come) sizes the buffer once,
/// so a large frame is copied once instead of being regrown (and recopied) chunk by chunk.
///
/// A binary message gets `slack` bytes of spare capacity beyond its first frame (the
/// room a direct read of a large frame overshoots into).
fn assemble(
    partial: &mut Option<Partial>,
    event: Event<'_>,
    frame_remaining: usize,
    slack: usize,
) -> Option<Received> {
    let message = match event {
        Event::Closed(closed) => return Some(Received::Closed(closed)),
        Event::Ping(payload) => Message::Ping(payload.to_vec()),
        Event::Pong(payload) => Message::Pong(payload.to_vec()),
        Event::Close(frame) => Message::Close(CloseReason::from_frame(&frame)),
        Event::Text { text, end } => {
            let mut so_far = match partial.take() {
                Some(Partial::Text(so_far)) => so_far,
                // A message in one chunk is copied once, at its exact size.
                _ => {
                    let buffer = pool::buffer(text.len().saturating_add(frame_remaining));
                    // An empty buffer is valid UTF-8: no bytes are checked.
                    String::from_utf8(buffer).unwrap_or_default()
                }
            };
            so_far.reserve(text.len().saturating_add(frame_remaining));
            copy::push_str(&mut so_far, text);
            let text = so_far;
            if end != Boundary::MessageEnd {
                *partial = Some(Partial::Text(text));
                return None;
            }
            Message::Text(text)
        }
        Event::Binary { bytes, end } => {
            let (mut buf, filled) = match partial.take() {
                Some(Partial::Binary { buf, filled }) => (buf, filled),
                _ => {
                    let size = bytes.len().saturating_add(frame_remaining);
                    (pool::message_buffer(size.saturating_add(slack)), 0)
                }
            };
            let upto = filled + bytes.len();
            if let Some(dest) = buf.get_mut(filled..upto) {
                copy::copy(dest, bytes);
            } else {
                buf.truncate(filled);
                buf.reserve(bytes.len().saturating_add(frame_remaining));
                copy::extend(&mut buf, bytes);
            }
            if end != Boundary::MessageEnd {
                *partial = Some(Partial::Binary { buf, filled: upto });
                return None;
            }
            buf.truncate(upto);
            Message::Binary(buf)
        }
    };
    Some(Received::Message(message))
}

/// How a connection ended, owned and ready to show to an application: a normal
/// disconnect (the close handshake completed) or an abnormal one, told apart without
/// parsing strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The close handshake completed.
    Clean {
        /// The code of the Close we sent (`None` for an empty Close).
        sent: Option<CloseCode>,
        /// The peer's code and reason (`None` for an empty Close, i.e. 1005).
        received: Option<CloseReason>,
        /// Whether we sent our Close first.
        initiated_locally: bool,
    },
    /// The connection ended without a completed close handshake.
    Abnormal(Abnormal),
    /// A timer ended the connection.
    TimedOut(crate::connection::Timeout),
}

/// Why a connection ended abnormally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abnormal {
    /// End of stream without a close handshake (close code 1006).
    Eof,
    /// The transport failed.
    Io(std::io::ErrorKind),
    /// The peer broke the protocol; we sent a Close with the error's code.
    Protocol(ProtocolError),
}

impl Outcome {
    /// The outcome for the core's [`Closed`], with the peer's reason from `connection`.
    pub fn from_closed(closed: Closed, connection: &Connection) -> Self {
        match closed {
            Closed::Clean(clean) => Outcome::Clean {
                sent: clean.sent,
                received: connection
                    .peer_close()
                    .and_then(|frame| CloseReason::from_frame(&frame)),
                initiated_locally: clean.initiated_locally,
            },
            Closed::Abnormal => Outcome::Abnormal(Abnormal::Eof),
            Closed::Failed(error) => Outcome::Abnormal(Abnormal::Protocol(error)),
            Closed::TimedOut(timeout) => Outcome::TimedOut(timeout),
        }
    }

    /// Whether this was a normal disconnect.
    pub fn is_clean(&self) -> bool {
        matches!(self, Outcome::Clean { .. })
    }

    /// The close code an application would report: the peer's (or ours for a clean close
    /// without one), 1006 for an abnormal end, the error's code for a protocol error.
    pub fn code(&self) -> CloseCode {
        match self {
            Outcome::Clean { received, sent, .. } => received
                .as_ref()
                .map(|close| close.code)
                .or(*sent)
                .unwrap_or(CloseCode::NO_STATUS),
            Outcome::Abnormal(Abnormal::Protocol(error)) => error.close_code(),
            Outcome::Abnormal(_) | Outcome::TimedOut(_) => CloseCode::ABNORMAL,
        }
    }
}

impl core::fmt::Display for Outcome {
    /// `clean code=1000 reason=bye`, `abnormal: end of stream without a close handshake
    /// (1006)`, `timeout: keepalive`: the forms the example client prints.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use crate::connection::Timeout;
        match self {
            Outcome::Clean { received, sent, .. } => match received {
                Some(close) => write!(f, "clean code={} reason={}", close.code, close.reason),
                None => match sent {
                    Some(code) => write!(f, "clean code={code} (peer sent no code)"),
                    None => f.write_str("clean code=1005 (no code)"),
                },
            },
            Outcome::Abnormal(Abnormal::Eof) => {
                f.write_str("abnormal: end of stream without a close handshake (1006)")
            }
            Outcome::Abnormal(Abnormal::Io(kind)) => write!(f, "abnormal: i/o error: {kind}"),
            Outcome::Abnormal(Abnormal::Protocol(error)) => {
                write!(f, "abnormal: protocol error: {error}")
            }
            Outcome::TimedOut(Timeout::Close) => f.write_str("timeout: close handshake"),
            Outcome::TimedOut(Timeout::KeepAlive) => f.write_str("timeout: keepalive"),
            Outcome::TimedOut(Timeout::Idle) => f.write_str("timeout: idle"),
        }
    }
}
