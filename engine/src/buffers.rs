//! The read buffer, the send queue, and the per-thread pools behind them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::IoSlice;
use std::vec::Vec;

use sockeye_proto::frame::FrameHead;
use sockeye_proto::MIN_INPUT_BUFFER;

use crate::copy;

/// The per-thread pool of read buffers, so idle connections hold none.
pub(crate) mod pool {
    use super::*;

    const MAX_POOLED: usize = 16;

    std::thread_local! {
        static POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    }

    /// A buffer of exactly `size` initialized bytes (zeros if new, old input if pooled:
    /// reads overwrite them).
    pub(crate) fn take(size: usize) -> Vec<u8> {
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

    pub(crate) fn give(buf: Vec<u8>) {
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < MAX_POOLED {
                pool.push(buf);
            }
        });
    }

    /// Message buffers smaller than this come from the allocator (which is fast for
    /// them); a pooled buffer is never handed out for much less than its size.
    pub(crate) const MIN_RECYCLED: usize = 4 * 1024;
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
    pub(crate) fn buffer(capacity: usize) -> Vec<u8> {
        let mut buf = recycled(capacity).unwrap_or_else(|| Vec::with_capacity(capacity));
        buf.clear();
        buf
    }

    /// A buffer with room for at least `capacity` bytes whose length (its initialized
    /// bytes, which are left over from an earlier message) is up to `capacity`, so that
    /// reads can go straight into it without zeroing it first.
    pub(crate) fn message_buffer(capacity: usize) -> Vec<u8> {
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

    /// Whether a buffer of `capacity` bytes is worth keeping.
    fn keeps(capacity: usize) -> bool {
        (MIN_RECYCLED..=MAX_RECYCLED_LARGE).contains(&capacity)
    }

    /// [`recycle`] for a payload of shared bytes: its buffer is kept when nothing else
    /// refers to it (the last of the messages sharing it to be written gives it back).
    /// A `Bytes` made from a `Vec`, as received payloads are, turns back into it
    /// without a copy.
    pub(crate) fn recycle_bytes(bytes: bytes::Bytes) {
        if let Ok(unique) = bytes.try_into_mut() {
            if keeps(unique.capacity()) {
                recycle(Vec::from(unique));
            }
        }
    }

    /// Keeps `buf` for a later [`buffer`] call if it is worth keeping. Its contents stay
    /// (as initialized bytes for [`message_buffer`]); nothing hands them out again.
    pub(crate) fn recycle(buf: Vec<u8>) {
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
pub(crate) struct RecvBuffer {
    pub(crate) buf: Vec<u8>,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl RecvBuffer {
    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn release_if_empty(&mut self) {
        if self.is_empty() && !self.buf.is_empty() {
            pool::give(core::mem::take(&mut self.buf));
            self.start = 0;
            self.end = 0;
        }
    }

    /// Spare room after the unconsumed bytes, taking a buffer and compacting as needed.
    pub(crate) fn spare(&mut self, size: usize) -> &mut [u8] {
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
    pub(crate) fn push(&mut self, bytes: &[u8], size: usize) -> usize {
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
pub(crate) enum Segment {
    /// Frame heads, control frames and small payloads, coalesced into one buffer.
    Coalesced(Vec<u8>),
    /// A large payload written from its own allocation (no copy).
    Payload(Vec<u8>),
    /// A large payload, or a whole frame (a prepared message), that other messages and
    /// connections may share.
    Shared(bytes::Bytes),
}

impl Segment {
    fn bytes(&self) -> &[u8] {
        match self {
            Segment::Coalesced(bytes) | Segment::Payload(bytes) => bytes,
            Segment::Shared(bytes) => bytes,
        }
    }

    fn recycle(self) {
        match self {
            Segment::Coalesced(bytes) | Segment::Payload(bytes) => pool::recycle(bytes),
            // Ours goes; the buffer comes back if that was the last reference.
            Segment::Shared(bytes) => pool::recycle_bytes(bytes),
        }
    }
}

/// Bytes waiting to be written, in order.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    pub(crate) segments: VecDeque<Segment>,
    /// Bytes of the front segment already written.
    pub(crate) written: usize,
    pub(crate) pending: usize,
}

impl SendQueue {
    /// The coalescing buffer at the back of the queue, made if needed.
    pub(crate) fn coalesced(&mut self, room: usize) -> &mut Vec<u8> {
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

    pub(crate) fn push_small(&mut self, bytes: &[u8]) {
        copy::extend(self.coalesced(bytes.len()), bytes);
        self.pending += bytes.len();
    }

    pub(crate) fn push_frame(&mut self, head: &FrameHead, payload: Vec<u8>, coalesce_limit: usize) {
        self.push_frame_as(head, payload, coalesce_limit, Segment::Payload);
    }

    /// Queues a frame of `head` and a payload of shared bytes: a small payload is copied
    /// beside its head, a large one queued by reference.
    pub(crate) fn push_bytes_frame(
        &mut self,
        head: &FrameHead,
        payload: bytes::Bytes,
        coalesce_limit: usize,
    ) {
        self.push_frame_as(head, payload, coalesce_limit, Segment::Shared);
    }

    /// Queues a frame: a payload of at most `coalesce_limit` bytes is copied beside its
    /// head (and its buffer dropped, not recycled: a small buffer is rarely worth
    /// keeping, and looking costs more), a larger one queued as its own `segment`.
    fn push_frame_as<P: AsRef<[u8]>>(
        &mut self,
        head: &FrameHead,
        payload: P,
        coalesce_limit: usize,
        segment: fn(P) -> Segment,
    ) {
        let len = payload.as_ref().len();
        if len <= coalesce_limit {
            let buf = self.coalesced(head.len() + len);
            buf.extend_from_slice(head);
            copy::extend(buf, payload.as_ref());
            self.pending += head.len() + len;
        } else {
            self.push_small(head);
            self.pending += len;
            self.segments.push_back(segment(payload));
        }
    }

    /// Queues a frame shared with other connections, by reference.
    pub(crate) fn push_shared(&mut self, frame: bytes::Bytes) {
        self.pending += frame.len();
        self.segments.push_back(Segment::Shared(frame));
    }

    pub(crate) fn slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
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

    pub(crate) fn advance(&mut self, mut n: usize) {
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
