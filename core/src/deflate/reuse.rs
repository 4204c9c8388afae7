//! Engines handed from one codec to another.
//!
//! Without context takeover a codec's engine is worth nothing between messages, so
//! [`release`](super::Deflater::release) frees it and the next message builds a new
//! one: for a compressor about 280 KiB allocated and its tables initialised, for an
//! inflater about 46 KiB, per message. Measured on 1 KiB messages, that was more than
//! half of the codec's time. A caller with many connections (the std engine keeps a
//! few per thread) can instead take the engine out, reset, with `release_engine` and
//! give it to the next codec that starts a message with `adopt_engine`: the output is
//! the same as with a new engine, since a reset engine starts from an empty window.
//! Only engines that a reset returns to their agreed state travel: compressors without
//! context takeover (the reset keeps the level and window), and inflaters without it
//! at the full 15-bit window (the one zlib-rs resets an inflater to).

use alloc::boxed::Box;
use core::fmt;

use crate::extension::MAX_WINDOW_BITS;

use super::{Deflater, Inflater};

/// A compressor's working state, reset, between two [`Deflater`]s with the same level
/// and window (see [`Deflater::release_engine`]).
pub struct DeflateEngine {
    engine: Box<zlib_rs::Deflate>,
    level: u8,
    window_bits: u8,
}

impl DeflateEngine {
    /// The compression level and window bits it works with: a [`Deflater`] adopts it
    /// only if both are its own.
    pub fn key(&self) -> (u8, u8) {
        (self.level, self.window_bits)
    }
}

impl fmt::Debug for DeflateEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeflateEngine")
            .field("level", &self.level)
            .field("window_bits", &self.window_bits)
            .finish_non_exhaustive()
    }
}

/// An inflater's working state, reset, between two [`Inflater`]s (see
/// [`Inflater::release_engine`]).
pub struct InflateEngine {
    engine: Box<zlib_rs::Inflate>,
}

impl fmt::Debug for InflateEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InflateEngine").finish_non_exhaustive()
    }
}

impl Deflater {
    /// Whether this deflater's engine can be reset and handed to another one.
    fn travels(&self) -> bool {
        !self.direction.context_takeover
    }

    /// [`release`](Self::release), handing the engine out (reset) instead of freeing
    /// it, for [`adopt_engine`](Self::adopt_engine) on this or another deflater with
    /// the same level and window. `None` when there is no engine, in the middle of a
    /// message, or with context takeover (then the engine is freed as by `release`).
    pub fn release_engine(&mut self) -> Option<DeflateEngine> {
        if self.in_message {
            return None;
        }
        let engine = self.engine.take()?;
        if !self.travels() {
            return None;
        }
        // Without context takeover every message ends with a reset (which clears the
        // 128 KiB hash table): the engine is ready as it is.
        Some(DeflateEngine {
            engine,
            level: self.level,
            window_bits: self.direction.window_bits,
        })
    }

    /// Whether the next message would build a new engine (this deflater holds none).
    pub fn needs_engine(&self) -> bool {
        self.engine.is_none()
    }

    /// Takes `engine` for the next message instead of building one; `None` when taken.
    /// Handed back when it does not fit: another level or window, context takeover, or
    /// an engine already held.
    pub fn adopt_engine(&mut self, engine: DeflateEngine) -> Option<DeflateEngine> {
        let fits = self.travels()
            && self.engine.is_none()
            && engine.key() == (self.level, self.direction.window_bits);
        if !fits {
            return Some(engine);
        }
        self.engine = Some(engine.engine);
        None
    }
}

impl Inflater {
    /// Whether this inflater's engine can be reset and handed to another one.
    pub(super) fn resets_in_place(&self) -> bool {
        !self.direction.context_takeover && self.direction.window_bits == MAX_WINDOW_BITS
    }

    /// Keeps the engine (reset) after each message instead of freeing it, where it can
    /// travel (no context takeover, a 15-bit window), so that
    /// [`release_engine`](Self::release_engine) can hand it out; until then it is held
    /// ([`held_bytes`](Self::held_bytes) counts it).
    pub fn keeping_engine(mut self) -> Self {
        self.keeps_engine = true;
        self
    }

    /// [`release`](Self::release), handing the engine out (reset) instead of freeing
    /// it, for [`adopt_engine`](Self::adopt_engine) on this or another inflater. `None`
    /// when there is no engine, in the middle of a message, or when it cannot travel
    /// (context takeover, a window under 15 bits; then it is freed as by `release`).
    pub fn release_engine(&mut self) -> Option<InflateEngine> {
        if self.in_message {
            return None;
        }
        let mut engine = self.engine.take()?;
        if !self.resets_in_place() {
            return None;
        }
        engine.reset(false);
        Some(InflateEngine { engine })
    }

    /// Whether the next message would build a new engine (this inflater holds none).
    pub fn needs_engine(&self) -> bool {
        self.engine.is_none()
    }

    /// Takes `engine` for the next message instead of building one; `None` when taken.
    /// Handed back when it does not fit: context takeover, a window under 15 bits, an
    /// engine already held, or a failed inflater.
    pub fn adopt_engine(&mut self, engine: InflateEngine) -> Option<InflateEngine> {
        if !self.resets_in_place() || self.engine.is_some() || self.failed || self.in_message {
            return Some(engine);
        }
        self.engine = Some(engine.engine);
        None
    }
}
