//! The last 2^bits bytes of one direction's uncompressed data, kept so that a released
//! codec can be rebuilt with set-dictionary.
//!
//! The engine cannot hand its window back without `unsafe`, so the codec keeps its own
//! copy: a ring buffer written as data passes, which costs one `memcpy` of at most the
//! window per call.

use alloc::vec::Vec;

/// A ring of at most `cap` bytes: the most recent data, oldest first once linearised.
#[derive(Debug)]
pub(super) struct Window {
    buf: Vec<u8>,
    /// Once `buf` is full: where the oldest byte is (and the next write goes).
    pos: usize,
    cap: usize,
}

impl Window {
    /// An empty window of `cap` bytes; allocates nothing until the first push.
    pub(super) const fn new(cap: usize) -> Self {
        Window {
            buf: Vec::new(),
            pos: 0,
            cap,
        }
    }

    /// Remembers `data` as the most recent bytes.
    pub(super) fn push(&mut self, mut data: &[u8]) {
        if data.len() > self.cap {
            data = &data[data.len() - self.cap..];
        }
        if data.is_empty() {
            return;
        }
        if self.buf.len() < self.cap {
            // Exactly the window, once: `extend` alone could double past it.
            self.buf.reserve_exact(self.cap - self.buf.len());
            let take = (self.cap - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            // Filled in order so far: the oldest byte is at 0.
            self.pos = 0;
        }
        while !data.is_empty() {
            let n = (self.cap - self.pos).min(data.len());
            self.buf[self.pos..self.pos + n].copy_from_slice(&data[..n]);
            self.pos = (self.pos + n) % self.cap;
            data = &data[n..];
        }
    }

    /// The remembered bytes, oldest first.
    pub(super) fn contents(&mut self) -> &[u8] {
        self.buf.rotate_left(self.pos);
        self.pos = 0;
        &self.buf
    }

    /// Forgets everything and frees the buffer.
    pub(super) fn clear(&mut self) {
        self.buf = Vec::new();
        self.pos = 0;
    }

    /// Heap bytes held.
    pub(super) fn held_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::Window;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keeps_the_last_cap_bytes(
            cap in 1usize..40,
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..60), 0..12),
        ) {
            let mut window = Window::new(cap);
            let mut all = Vec::new();
            for piece in &pieces {
                window.push(piece);
                all.extend_from_slice(piece);
                let expect = &all[all.len().saturating_sub(cap)..];
                prop_assert_eq!(window.contents(), expect);
                prop_assert!(window.held_bytes() <= cap);
            }
        }
    }
}
