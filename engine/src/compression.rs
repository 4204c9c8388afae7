//! permessage-deflate on the driver: inflating what arrives, compressing what is sent.
//!
//! A compressed message arrives from the core as [`Event::Compressed`] chunks. Each
//! chunk is inflated into a fixed scratch buffer (pooled, held only while a message is
//! being inflated), text is checked as it comes out, and the inflated size is held to
//! the message limit, so a compression bomb costs at most the limit. What did not fit
//! the scratch waits in a backlog and is inflated by the next poll, before any new input.

use std::vec::Vec;

use sockeye_proto::deflate::{DeflateEngine, Deflater, InflateEngine, Inflated, Inflater};
use sockeye_proto::utf8;
use sockeye_proto::{Boundary, DataKind, DeflateConfig, DeflateParams, Event, ProtocolError, Role};

use crate::buffers::pool;

/// Inflates `input` for the message `rx` into `out`.
fn inflate(
    inflater: &mut Inflater,
    rx: &Inflating,
    input: &[u8],
    out: &mut [u8],
) -> Result<Inflated, ProtocolError> {
    if rx.fin && !rx.any_input && input.is_empty() {
        // A compressed message with no payload at all is empty (not a deflate stream
        // cut short): some peers send it so.
        return Ok(Inflated {
            consumed: 0,
            produced: 0,
            done: true,
        });
    }
    inflater
        .inflate(input, rx.fin, out)
        .map_err(|_| ProtocolError::InvalidCompressedData)
}

/// Inflated output per step: the most one event carries.
const SCRATCH: usize = 16 * 1024;

/// Codec engines between messages, a few per thread (see
/// `sockeye_proto::deflate`'s `reuse`): without context takeover each message would
/// otherwise build its engines anew, about 280 KiB to compress and 46 KiB to inflate,
/// allocated and initialised, more than half the codec's time on 1 KiB messages. An
/// idle connection holds none; a thread holds at most [`engines::MAX_DEFLATE`]
/// compressors and [`engines::MAX_INFLATE`] inflaters (about 750 KiB), whatever the
/// number of connections.
pub(crate) mod engines {
    use core::cell::RefCell;
    use std::vec::Vec;

    use super::{DeflateEngine, Deflater, InflateEngine, Inflater};

    /// Compressing is done whole within one call: one engine per thread serves every
    /// connection of one level and window; two allow a second setting.
    pub(crate) const MAX_DEFLATE: usize = 2;
    /// An inflater is held for as long as a message takes to arrive, so several may be
    /// busy at once on one thread.
    pub(crate) const MAX_INFLATE: usize = 4;

    std::thread_local! {
        static DEFLATE: RefCell<Vec<DeflateEngine>> = const { RefCell::new(Vec::new()) };
        static INFLATE: RefCell<Vec<InflateEngine>> = const { RefCell::new(Vec::new()) };
    }

    /// Gives `deflater` a pooled engine of its level and window if it needs one.
    pub(crate) fn lend_deflate(deflater: &mut Deflater) {
        if !deflater.needs_engine() {
            return;
        }
        let key = (deflater.level(), deflater.direction().window_bits);
        let pooled = DEFLATE
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                let index = pool.iter().position(|engine| engine.key() == key)?;
                Some(pool.swap_remove(index))
            })
            .ok()
            .flatten();
        if let Some(engine) = pooled {
            if let Some(engine) = deflater.adopt_engine(engine) {
                keep_deflate(engine);
            }
        }
    }

    /// Takes `deflater`'s engine back between messages (freed if it cannot travel or
    /// the pool is full).
    pub(crate) fn reclaim_deflate(deflater: &mut Deflater) {
        if let Some(engine) = deflater.release_engine() {
            keep_deflate(engine);
        }
        deflater.release();
    }

    fn keep_deflate(engine: DeflateEngine) {
        let _ = DEFLATE.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < MAX_DEFLATE {
                pool.push(engine);
            }
        });
    }

    /// Gives `inflater` a pooled engine if it needs one and can use it.
    pub(crate) fn lend_inflate(inflater: &mut Inflater) {
        if !inflater.needs_engine() {
            return;
        }
        let pooled = INFLATE
            .try_with(|pool| pool.borrow_mut().pop())
            .ok()
            .flatten();
        if let Some(engine) = pooled {
            if let Some(engine) = inflater.adopt_engine(engine) {
                keep_inflate(engine);
            }
        }
    }

    /// Takes `inflater`'s engine back between messages (freed if it cannot travel or
    /// the pool is full).
    pub(crate) fn reclaim_inflate(inflater: &mut Inflater) {
        if let Some(engine) = inflater.release_engine() {
            keep_inflate(engine);
        }
        inflater.release();
    }

    fn keep_inflate(engine: InflateEngine) {
        let _ = INFLATE.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < MAX_INFLATE {
                pool.push(engine);
            }
        });
    }
}

/// The agreed compression of one connection and its codec state.
#[derive(Debug)]
pub(crate) struct Compression {
    params: DeflateParams,
    config: DeflateConfig,
    inflater: Inflater,
    deflater: Deflater,
    /// The message being inflated, if any.
    rx: Option<Inflating>,
    /// Inflated output; the last event borrowed `scratch[..shown]`.
    scratch: Vec<u8>,
    /// Compressed bytes of the current message not inflated yet (`backlog[taken..]`).
    backlog: Vec<u8>,
    taken: usize,
}

#[derive(Debug)]
struct Inflating {
    kind: DataKind,
    /// The message's last compressed bytes have arrived.
    fin: bool,
    /// Inflated bytes so far, against the message limit.
    inflated: u64,
    /// The inflater may hold output it could not write (the scratch was full).
    more_output: bool,
    /// Some compressed bytes of this message arrived.
    any_input: bool,
    /// After the last event: bytes `[shown..filled]` of the scratch are the start of a
    /// character, to be moved to the front before the next step.
    shown: usize,
    filled: usize,
}

impl Compression {
    pub(crate) fn new(role: Role, params: DeflateParams, config: DeflateConfig) -> Self {
        let mut outgoing = params.outgoing(role);
        // This end may always use a smaller window than agreed (RFC 7692 §7.1.2.1).
        outgoing.window_bits = outgoing.window_bits.min(config.compress_window_bits);
        Compression {
            params,
            config,
            inflater: Inflater::new(params.incoming(role)).keeping_engine(),
            deflater: Deflater::new(outgoing, config.level),
            rx: None,
            scratch: Vec::new(),
            backlog: Vec::new(),
            taken: 0,
        }
    }

    pub(crate) fn params(&self) -> DeflateParams {
        self.params
    }

    /// Whether a compressed message still has output to hand out before new input is
    /// read.
    pub(crate) fn has_backlog(&self) -> bool {
        match &self.rx {
            Some(rx) => rx.more_output || rx.fin || self.taken < self.backlog.len(),
            None => false,
        }
    }

    /// Inflates a chunk the core passed on. Returns the inflated event, if this step
    /// produced one; `Ok(None)` means the chunk is taken and more input is needed.
    pub(crate) fn inflate_chunk(
        &mut self,
        kind: DataKind,
        bytes: &[u8],
        end: Boundary,
        limit: u64,
    ) -> Result<Option<Event<'_>>, ProtocolError> {
        let rx = self.rx.get_or_insert(Inflating {
            kind,
            fin: false,
            inflated: 0,
            more_output: false,
            any_input: false,
            shown: 0,
            filled: 0,
        });
        rx.fin = end == Boundary::MessageEnd;
        self.step(Some(bytes), limit)
    }

    /// Inflates more of the backlog (see [`Compression::has_backlog`]).
    pub(crate) fn inflate_backlog(
        &mut self,
        limit: u64,
    ) -> Result<Option<Event<'_>>, ProtocolError> {
        self.step(None, limit)
    }

    /// One inflate step from `fresh` bytes (or the backlog), into the scratch.
    fn step(
        &mut self,
        fresh: Option<&[u8]>,
        limit: u64,
    ) -> Result<Option<Event<'_>>, ProtocolError> {
        let Some(rx) = self.rx.as_mut() else {
            return Ok(None);
        };
        if self.scratch.is_empty() {
            self.scratch = pool::take(SCRATCH);
        }
        engines::lend_inflate(&mut self.inflater);
        // The start of a character left from the last event goes to the front.
        let carry = rx.filled - rx.shown;
        self.scratch.copy_within(rx.shown..rx.filled, 0);
        // One byte over the limit is enough to know the message is too large.
        let allowed = limit.saturating_sub(rx.inflated).saturating_add(1);
        let room = (SCRATCH - carry).min(usize::try_from(allowed).unwrap_or(usize::MAX));
        let out = &mut self.scratch[carry..carry + room];
        // Fresh bytes are inflated where they are only when nothing older waits.
        let direct = match fresh {
            Some(bytes) if self.taken == self.backlog.len() => Some(bytes),
            Some(bytes) => {
                self.backlog.extend_from_slice(bytes);
                None
            }
            None => None,
        };
        let (inflated, input_len) = match direct {
            Some(bytes) => {
                let inflated = inflate(&mut self.inflater, rx, bytes, out)?;
                if inflated.consumed < bytes.len() {
                    self.backlog.clear();
                    self.taken = 0;
                    self.backlog.extend_from_slice(&bytes[inflated.consumed..]);
                }
                (inflated, bytes.len())
            }
            None => {
                let input = &self.backlog[self.taken..];
                let input_len = input.len();
                let inflated = inflate(&mut self.inflater, rx, input, out)?;
                self.taken += inflated.consumed;
                if self.taken == self.backlog.len() {
                    self.backlog.clear();
                    self.taken = 0;
                }
                (inflated, input_len)
            }
        };
        rx.any_input |= input_len > 0;
        rx.inflated = rx.inflated.saturating_add(inflated.produced as u64);
        if rx.inflated > limit {
            return Err(ProtocolError::MessageTooLarge);
        }
        let stalled = inflated.consumed == 0 && inflated.produced == 0 && !inflated.done;
        if stalled && (rx.fin || input_len > 0) {
            // Given input, or the message's end, and room, the inflater went no further:
            // the deflate stream is truncated or broken (never loop on it).
            return Err(ProtocolError::InvalidCompressedData);
        }
        rx.more_output = inflated.produced == room && !inflated.done;
        let kind = rx.kind;
        let done = inflated.done;
        let filled = carry + inflated.produced;
        if done {
            self.finish_message();
        }
        let end = if done {
            Boundary::MessageEnd
        } else {
            Boundary::Continues
        };
        let out = &self.scratch[..filled];
        let (event, shown) = match kind {
            DataKind::Binary => (Event::Binary { bytes: out, end }, filled),
            DataKind::Text => {
                let text = utf8::complete_prefix(out).map_err(|_| ProtocolError::InvalidUtf8)?;
                if done && text.len() != filled {
                    return Err(ProtocolError::InvalidUtf8);
                }
                (Event::Text { text, end }, text.len())
            }
        };
        if let Some(rx) = self.rx.as_mut() {
            rx.shown = shown;
            rx.filled = filled;
        }
        if shown == 0 && !done {
            return Ok(None);
        }
        Ok(Some(event))
    }

    /// The message is whole: nothing of it is kept (the scratch stays borrowed by the
    /// last event until the next step, which takes a fresh one from the pool; without
    /// context takeover the inflater drops its engine by itself).
    fn finish_message(&mut self) {
        self.rx = None;
        engines::reclaim_inflate(&mut self.inflater);
        self.backlog = Vec::new();
        self.taken = 0;
    }

    /// Gives the scratch back to the pool once the last event is consumed: called before
    /// reading new input, never while an event borrows it.
    pub(crate) fn settle(&mut self) {
        if self.rx.is_none() && !self.scratch.is_empty() {
            pool::give(core::mem::take(&mut self.scratch));
        }
    }

    /// Whether a message compressed elsewhere with a `window_bits` window and no
    /// context (a prepared message) can go out on this connection as it is: only when
    /// this end sends without context takeover (so its own window owes nothing to what
    /// it sends) and the peer's window is at least as large.
    pub(crate) fn can_share(&self, window_bits: u8) -> bool {
        let outgoing = self.deflater.direction();
        !outgoing.context_takeover && self.params.outgoing(Role::Server).window_bits >= window_bits
    }

    /// Whether a message of `len` bytes is worth compressing.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.config.threshold
    }

    /// Compresses a whole message. `None` when compressing does not pay (the output is
    /// no smaller) and the message may go out as it is: only without context takeover,
    /// since with it the peer's window must see every byte this end compressed.
    pub(crate) fn compress(&mut self, payload: &[u8]) -> Option<Vec<u8>> {
        let mut out = pool::buffer(payload.len() / 2 + 64);
        engines::lend_deflate(&mut self.deflater);
        if self.deflater.compress(payload, true, &mut out).is_err() {
            // The codec failed: start over from an empty window, which the peer can
            // always follow, and send this message as it is.
            self.deflater = Deflater::new(self.deflater.direction(), self.config.level);
            return None;
        }
        if !self.deflater.direction().context_takeover {
            engines::reclaim_deflate(&mut self.deflater);
            if out.len() >= payload.len() {
                return None;
            }
        }
        Some(out)
    }

    /// Frees codec state an idle connection does not need (with context takeover, all
    /// but the windows).
    pub(crate) fn release_idle(&mut self) {
        if self.rx.is_none() {
            engines::reclaim_inflate(&mut self.inflater);
        }
        engines::reclaim_deflate(&mut self.deflater);
    }

    /// Heap bytes held for compression now.
    pub(crate) fn held_bytes(&self) -> usize {
        self.inflater.held_bytes()
            + self.deflater.held_bytes()
            + self.scratch.capacity()
            + self.backlog.capacity()
    }
}
