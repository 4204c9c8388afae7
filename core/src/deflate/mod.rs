//! The permessage-deflate (RFC 7692) codec: one [`Deflater`] per direction this end
//! sends, one [`Inflater`] per direction it receives. Feature `deflate` (needs `alloc`,
//! not `std`).
//!
//! Both work on one message at a time, in pieces if need be, and follow the
//! [`Direction`] both ends agreed: the window (8–15 bits) and whether the context is
//! kept from one message to the next. The engine is `zlib-rs` (raw deflate), chosen by
//! measurement over `miniz_oxide`: it honours every window size, restores a window
//! with set-dictionary, and ran 1.6–3x faster here (figures in `ENGINE.md` beside this
//! file).
//!
//! ## Memory
//!
//! Nothing is allocated until the first message. While a message is worked on, a
//! [`Deflater`] holds about 280 KiB at 15 bits down to about 150 KiB at 8 bits (the
//! engine's 128 KiB hash table does not shrink with the window) and an [`Inflater`]
//! about 46 KiB whatever the window. Between messages, `release()` frees the engine:
//! without context takeover nothing is left; with it, only the window
//! (2^`window_bits` bytes), restored with set-dictionary when the next message starts.
//! [`Deflater::held_bytes`] and [`Inflater::held_bytes`] say what is held now.
//!
//! Building an engine is much of the work on small messages: without context takeover,
//! a caller serving many connections can hand engines from one message (and codec) to
//! the next instead, with `release_engine` and `adopt_engine` ([`DeflateEngine`],
//! [`InflateEngine`]); the std engine keeps a few per thread.
//!
//! ```
//! use sockeye_proto::deflate::{Deflater, Inflater};
//! use sockeye_proto::extension::Direction;
//!
//! let direction = Direction { window_bits: 15, context_takeover: true };
//! let mut deflater = Deflater::new(direction, 1);
//! let mut inflater = Inflater::new(direction);
//!
//! for message in [&b"{\"hello\":\"world\"}"[..], b"{\"hello\":\"again\"}"] {
//!     // The payload of one compressed message (the frame's RSV1 bit is the caller's).
//!     let mut payload = Vec::new();
//!     deflater.compress(message, true, &mut payload).unwrap();
//!
//!     // Inflate it into a bounded buffer, as often as needed.
//!     let (mut input, mut text) = (&payload[..], Vec::new());
//!     let mut out = [0u8; 8];
//!     loop {
//!         let step = inflater.inflate(input, true, &mut out).unwrap();
//!         input = &input[step.consumed..];
//!         text.extend_from_slice(&out[..step.produced]);
//!         if step.done {
//!             break;
//!         }
//!     }
//!     assert_eq!(text, message);
//!
//!     // Idle: keep only the window each way.
//!     deflater.release();
//!     inflater.release();
//!     assert_eq!(deflater.held_bytes(), 1 << 15);
//! }
//! ```

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use zlib_rs::{DeflateConfig, DeflateFlush, InflateFlush, Status};

use crate::extension::{Direction, MAX_WINDOW_BITS, MIN_WINDOW_BITS};

mod reuse;
mod window;
pub use reuse::{DeflateEngine, InflateEngine};
use window::Window;

#[cfg(test)]
mod tests;

/// The empty stored block a sync flush ends with: stripped from every compressed
/// message, appended again before inflating (RFC 7692 §7.2.1, §7.2.2).
pub const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// zlib's memLevel for the compressor: the symbol buffer holds 2^(memLevel + 6)
/// symbols. 5 (2,048 symbols) is ~100 KiB smaller than zlib's default 8 and compressed
/// the 64 KiB benchmark within 1% as well, at the same speed (`ENGINE.md`).
const MEM_LEVEL: i32 = 5;

/// Heap bytes of a zlib-rs compressor of `bits` (effective) window and [`MEM_LEVEL`]:
/// the fixed 64 Ki-entry hash head (128 KiB), the window and `prev` chain (4 bytes
/// per window byte), 7 bytes per symbol-buffer entry, and the state itself. Measured
/// on a 64-bit target with a counting allocator (`core/tests/deflate_memory.rs`).
const fn deflate_state_bytes(bits: u8) -> usize {
    134_272 + 4 * (1 << bits) + 7 * (1 << (MEM_LEVEL + 6))
}

/// The engines' handles, boxed so that handing an engine from one codec to another
/// (see `reuse`) moves a pointer rather than copying the handle each time.
const BOXED_DEFLATE: usize = core::mem::size_of::<zlib_rs::Deflate>();
const BOXED_INFLATE: usize = core::mem::size_of::<zlib_rs::Inflate>();

/// Heap bytes of a zlib-rs inflater: its state and a 32 KiB window whatever the
/// window bits (measured as for [`deflate_state_bytes`]).
const INFLATE_STATE_BYTES: usize = 47_552;

/// `direction` with its window bits within 8–15 (parameters come from negotiation, which
/// already checked them; this keeps the engine's assertions unreachable whatever the
/// caller passes), and the window it keeps between messages: 2^bits bytes with context
/// takeover, none without.
fn clamped(direction: Direction) -> (Direction, Window) {
    let direction = Direction {
        window_bits: direction
            .window_bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS),
        ..direction
    };
    let cap = if direction.context_takeover {
        1 << direction.window_bits
    } else {
        0
    };
    (direction, Window::new(cap))
}

/// Compressing failed: the engine reported an error it should never report for the
/// parameters the codec gives it. Not caused by the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeflateError {
    /// The engine refused (an allocation failure or a bug); the deflater is reset, the
    /// message is lost.
    Engine,
}

impl fmt::Display for DeflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeflateError::Engine => f.write_str("the deflate engine failed"),
        }
    }
}

impl core::error::Error for DeflateError {}

/// Inflating failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InflateError {
    /// The payload is not valid DEFLATE data, or refers further back than the agreed
    /// window (close with 1007, invalid payload data). The inflater stays failed: every
    /// later call returns this again.
    Corrupt,
    /// The engine refused (an allocation failure or a bug), not the data's fault.
    Engine,
}

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InflateError::Corrupt => f.write_str("invalid compressed data"),
            InflateError::Engine => f.write_str("the inflate engine failed"),
        }
    }
}

impl core::error::Error for InflateError {}

/// Compresses the messages of one direction (RFC 7692 §7.2.1).
///
/// Each message is compressed with [`compress`](Self::compress), in one call or in
/// pieces, and ends with `fin == true`. Between messages [`release`](Self::release)
/// frees the working state.
pub struct Deflater {
    direction: Direction,
    level: u8,
    /// The engine, only while there is work (created at the first message, and again
    /// after `release`).
    engine: Option<Box<zlib_rs::Deflate>>,
    /// With context takeover: the last 2^bits bytes of input, to rebuild the engine
    /// after `release`. Stays empty without it.
    window: Window,
    /// A message was started (`compress` with `fin == false`) and not ended.
    in_message: bool,
}

impl fmt::Debug for Deflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deflater")
            .field("direction", &self.direction)
            .field("level", &self.level)
            .field("working", &self.engine.is_some())
            .field("in_message", &self.in_message)
            .field("held_bytes", &self.held_bytes())
            .finish()
    }
}

impl Deflater {
    /// A compressor for `direction` (window bits clamped to 8–15) at `level` (0 = store
    /// only … 9 = smallest, clamped). Allocates nothing until the first message.
    pub fn new(direction: Direction, level: u8) -> Self {
        let (direction, window) = clamped(direction);
        Deflater {
            direction,
            level: level.min(9),
            engine: None,
            window,
            in_message: false,
        }
    }

    /// The direction this compresses for.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// The compression level (0-9).
    pub fn level(&self) -> u8 {
        self.level
    }

    /// The working engine, created (and given the kept window) if need be.
    fn engine(&mut self) -> Result<&mut zlib_rs::Deflate, DeflateError> {
        if self.engine.is_none() {
            // zlib refuses a raw 8-bit window; 9 bits serves it, since zlib never
            // reaches further back than 2^bits - 262 bytes (250 < 256).
            let bits = self.direction.window_bits.max(9);
            let mut engine = zlib_rs::Deflate::new_with_config(DeflateConfig {
                level: i32::from(self.level),
                window_bits: -i32::from(bits),
                mem_level: MEM_LEVEL,
                ..DeflateConfig::default()
            });
            let dictionary = self.window.contents();
            if !dictionary.is_empty() {
                engine
                    .set_dictionary(dictionary)
                    .map_err(|_| DeflateError::Engine)?;
            }
            self.engine = Some(Box::new(engine));
        }
        self.engine.as_deref_mut().ok_or(DeflateError::Engine)
    }

    /// Compresses `input` and appends the compressed bytes to `out`.
    ///
    /// `fin == true` ends the message: the data is sync-flushed and the trailing
    /// `00 00 ff ff` stripped (RFC 7692 §7.2.1), so `out` then holds everything the
    /// message needs; an empty message is the single byte `0x00`. Without context
    /// takeover the next message starts from an empty window.
    ///
    /// `fin == false` compresses a piece of a longer message (to send it in fragments);
    /// the engine may keep some of it back until later pieces, so a piece's output can
    /// be empty.
    ///
    /// On an error the deflater is reset (the window is forgotten) and the message
    /// must not be sent.
    pub fn compress(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        let result = self.compress_inner(input, fin, out);
        if result.is_err() {
            // Whatever the engine holds is suspect: start the next message afresh.
            self.engine = None;
            self.window.clear();
            self.in_message = false;
        }
        result
    }

    fn compress_inner(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        let flush = if fin {
            DeflateFlush::SyncFlush
        } else {
            DeflateFlush::NoFlush
        };
        let start = out.len();
        let engine = self.engine()?;
        let mut rest = input;
        loop {
            // Room for about half the input, so most messages take one round; the
            // engine says when it needs more (a full `out`).
            let room = rest.len() / 2 + 64;
            let at = out.len();
            out.resize(at + room, 0);
            let (in_before, out_before) = (engine.total_in(), engine.total_out());
            let status = engine.compress(rest, &mut out[at..], flush);
            let used = usize::try_from(engine.total_in() - in_before).unwrap_or(usize::MAX);
            let wrote = usize::try_from(engine.total_out() - out_before).unwrap_or(usize::MAX);
            if used > rest.len() || wrote > room {
                return Err(DeflateError::Engine);
            }
            out.truncate(at + wrote);
            rest = &rest[used..];
            match status {
                Err(_) => return Err(DeflateError::Engine),
                // All input taken and `out` not filled: nothing more to come now.
                Ok(_) if rest.is_empty() && wrote < room => break,
                // No progress with input left and room given: a bug, not a loop.
                Ok(Status::BufError) if used == 0 && wrote == 0 => {
                    return Err(DeflateError::Engine)
                }
                Ok(_) => {}
            }
        }
        self.window.push(input);
        if !fin {
            self.in_message = true;
            return Ok(());
        }
        self.in_message = false;
        let produced = &out[start..];
        if produced.ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        } else if produced.is_empty() {
            // zlib flushes nothing when nothing is pending since the last flush (an
            // empty message after a flushed one): the empty message is one 0x00 byte
            // (BFINAL 0, stored; with the tail appended, an empty stored block).
            out.push(0x00);
        } else {
            return Err(DeflateError::Engine);
        }
        if !self.direction.context_takeover {
            if let Some(engine) = self.engine.as_mut() {
                // deflateReset: keeps the allocation for the next message.
                engine.reset();
            }
        }
        Ok(())
    }

    /// Frees the working state between messages.
    ///
    /// Without context takeover nothing is kept. With it only the last 2^`window_bits`
    /// bytes of input are, and the next message restores them with set-dictionary, so
    /// the compressed output is as if the state had never been freed. In the middle of
    /// a message (after `compress(.., false, ..)`) this does nothing: the message's
    /// state is still needed.
    pub fn release(&mut self) {
        if !self.in_message {
            self.engine = None;
        }
    }

    /// The heap bytes held now: the engine while working (an estimate from its
    /// allocation sizes, measured on 64-bit targets) and the kept window.
    pub fn held_bytes(&self) -> usize {
        let engine = match self.engine {
            Some(_) => deflate_state_bytes(self.direction.window_bits.max(9)) + BOXED_DEFLATE,
            None => 0,
        };
        engine + self.window.held_bytes()
    }
}

/// What one [`Inflater::inflate`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Inflated {
    /// Input bytes consumed: pass the rest again in the next call.
    pub consumed: usize,
    /// Bytes written at the start of `out`.
    pub produced: usize,
    /// The message is complete: `fin` was given, all its input consumed and all its
    /// output produced. The next call starts the next message.
    pub done: bool,
}

/// Inflates the messages of one direction (RFC 7692 §7.2.2), into bounded output.
///
/// The caller counts `produced` to enforce its message size limit: a call never
/// writes more than `out.len()` bytes, and its work is bounded by its input and
/// `out.len()`, so a compression bomb only costs the caller's limit.
///
/// A peer's final block (BFINAL = 1, RFC 7692 §7.2.3.4) ends the message's data: what
/// follows it in the same message is consumed and ignored (RFC 7692's own example
/// follows it with a `0x00` byte). The window is carried over nonetheless when the
/// context is kept.
pub struct Inflater {
    direction: Direction,
    /// The engine, only while there is work.
    engine: Option<Box<zlib_rs::Inflate>>,
    /// With context takeover: the last 2^bits bytes of output, to rebuild the engine
    /// after `release` or after a final block. Stays empty without it.
    window: Window,
    /// How much of [`SYNC_TAIL`] the engine has taken for this message.
    tail_fed: usize,
    /// This message's data ended with a final block: ignore the rest of it.
    ended: bool,
    /// Some of this message was consumed or produced and it is not done.
    in_message: bool,
    /// A data error was seen: every call fails.
    failed: bool,
    /// Without context takeover, keep the engine (reset) after a message for
    /// [`Inflater::release_engine`] to hand out, instead of freeing it.
    keeps_engine: bool,
}

impl fmt::Debug for Inflater {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inflater")
            .field("direction", &self.direction)
            .field("working", &self.engine.is_some())
            .field("in_message", &self.in_message)
            .field("failed", &self.failed)
            .field("held_bytes", &self.held_bytes())
            .finish()
    }
}

impl Inflater {
    /// An inflater for `direction` (window bits clamped to 8–15). Allocates nothing
    /// until the first message.
    pub fn new(direction: Direction) -> Self {
        let (direction, window) = clamped(direction);
        Inflater {
            direction,
            engine: None,
            window,
            tail_fed: 0,
            ended: false,
            in_message: false,
            failed: false,
            keeps_engine: false,
        }
    }

    /// The direction this inflates.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Inflates the next piece of one message's payload into `out`.
    ///
    /// `fin` says that `input` ends the message's payload (the inflater appends the
    /// `00 00 ff ff` tail itself). Call again with the unconsumed input, and a fresh
    /// `out`, until [`Inflated::done`]; when `out` came back full, there may be more
    /// output even with no input left. An empty `out` makes no output, so the message
    /// is never done with one. Empty payloads and a lone `0x00` are empty messages.
    ///
    /// Errors: [`InflateError::Corrupt`] for data that is not DEFLATE or reaches
    /// further back than the agreed window; the inflater then stays failed.
    pub fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<Inflated, InflateError> {
        if self.failed {
            return Err(InflateError::Corrupt);
        }
        let result = self.inflate_inner(input, fin, out);
        if result.is_err() {
            self.failed = true;
            self.engine = None;
            self.window.clear();
        }
        result
    }

    fn inflate_inner(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut [u8],
    ) -> Result<Inflated, InflateError> {
        let mut step = Inflated::default();
        if fin && input.is_empty() && !self.in_message && self.tail_fed == 0 {
            // An empty payload is an empty message. Not fed to the engine: after a
            // sync flush the stream is byte-aligned, so the tail alone would start a
            // stored block whose LEN is `00 ff`.
            step.done = true;
            self.end_message();
            return Ok(step);
        }
        if self.ended {
            // After a final block: the rest of the message is ignored.
            step.consumed = input.len();
        } else {
            let mut tail_fed = self.tail_fed;
            let engine = self.engine()?;
            loop {
                let from_input = step.consumed < input.len();
                let source = if from_input {
                    &input[step.consumed..]
                } else if fin {
                    &SYNC_TAIL[tail_fed..]
                } else {
                    &[][..]
                };
                let (in_before, out_before) = (engine.total_in(), engine.total_out());
                // Empty `source` too: output held back by a full `out` comes now.
                let status =
                    engine.decompress(source, &mut out[step.produced..], InflateFlush::NoFlush);
                let used = usize::try_from(engine.total_in() - in_before).unwrap_or(usize::MAX);
                let wrote = usize::try_from(engine.total_out() - out_before).unwrap_or(usize::MAX);
                if used > source.len() || wrote > out.len() - step.produced {
                    return Err(InflateError::Engine);
                }
                if from_input {
                    step.consumed += used;
                } else if fin {
                    tail_fed += used;
                }
                step.produced += wrote;
                match status {
                    Ok(Status::StreamEnd) => {
                        // A final block: the rest of the message is ignored.
                        self.ended = true;
                        step.consumed = input.len();
                        break;
                    }
                    Ok(_) => {}
                    Err(
                        zlib_rs::InflateError::DataError | zlib_rs::InflateError::NeedDict { .. },
                    ) => return Err(InflateError::Corrupt),
                    Err(_) => return Err(InflateError::Engine),
                }
                if used == 0 && wrote == 0 {
                    // No progress: `out` is full, or the input is all taken.
                    break;
                }
            }
            self.tail_fed = tail_fed;
        }
        self.window.push(&out[..step.produced]);
        // Done when every byte is in and the engine stopped short of filling `out`, so
        // nothing is held back (or the data ended with a final block).
        step.done = fin
            && step.consumed == input.len()
            && (self.ended || (self.tail_fed == SYNC_TAIL.len() && step.produced < out.len()));
        if step.done {
            self.end_message();
        } else if step.consumed > 0 || step.produced > 0 || self.tail_fed > 0 {
            self.in_message = true;
        }
        Ok(step)
    }

    /// The working engine, created (and given the kept window) if need be.
    fn engine(&mut self) -> Result<&mut zlib_rs::Inflate, InflateError> {
        if self.engine.is_none() {
            let mut engine = zlib_rs::Inflate::new(false, self.direction.window_bits);
            let dictionary = self.window.contents();
            if !dictionary.is_empty() {
                engine
                    .set_dictionary(dictionary)
                    .map_err(|_| InflateError::Engine)?;
            }
            self.engine = Some(Box::new(engine));
        }
        self.engine.as_deref_mut().ok_or(InflateError::Engine)
    }

    fn end_message(&mut self) {
        if self.ended || !self.direction.context_takeover {
            // A fresh engine for the next message: without takeover it must start
            // empty; after a final block the engine's stream is over and the kept
            // window is restored into a new one. (Recreated rather than reset, since
            // zlib-rs resets to a 15-bit window, and the agreed one is enforced.)
            match self.engine.take() {
                Some(mut engine) if self.resets_in_place() && self.keeps_engine => {
                    engine.reset(false);
                    self.engine = Some(engine);
                }
                _ => {}
            }
        }
        self.tail_fed = 0;
        self.ended = false;
        self.in_message = false;
    }

    /// Frees the working state between messages: without context takeover nothing is
    /// kept; with it only the last 2^`window_bits` bytes of output, restored with
    /// set-dictionary when the next message starts. In the middle of a message this
    /// does nothing.
    pub fn release(&mut self) {
        if !self.in_message {
            self.engine = None;
        }
    }

    /// The heap bytes held now: the engine while working (an estimate from its
    /// allocation size, measured on 64-bit targets) and the kept window.
    pub fn held_bytes(&self) -> usize {
        let engine = match self.engine {
            Some(_) => INFLATE_STATE_BYTES + BOXED_INFLATE,
            None => 0,
        };
        engine + self.window.held_bytes()
    }
}
