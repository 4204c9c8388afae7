//! Errors shared by several parts of the core.
//!
//! Errors are split by who caused them: the peer ([`ProtocolError`], and the handshake's
//! `RequestError` / `ResponseError`) or the local caller ([`SendError`], [`BufferTooSmall`]).
//! Each is a small `Copy` value; a normal close is an event, never an error.

use core::fmt;

/// The output buffer cannot hold what had to be written; nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// How many bytes the write needed.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output buffer too small: {} bytes needed", self.needed)
    }
}

impl core::error::Error for BufferTooSmall {}
