//! # sockeye-proto: a sans-IO WebSocket core
//!
//! (crate docs: the driving loop, method families and call order are written with the
//! connection module.)
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod error;
pub mod handshake;
pub mod reconnect;
pub mod time;

pub use error::BufferTooSmall;
#[cfg(feature = "std")]
pub use time::StdClock;
pub use time::Instant;

/// The result of parsing input that may not be complete yet (as in `httparse`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// The input held a whole item.
    Complete(T),
    /// More bytes are needed; nothing was consumed.
    Partial,
}

impl<T> Status<T> {
    /// The completed value, if any.
    pub fn complete(self) -> Option<T> {
        match self {
            Status::Complete(value) => Some(value),
            Status::Partial => None,
        }
    }

    /// Whether more input is needed.
    pub fn is_partial(&self) -> bool {
        matches!(self, Status::Partial)
    }
}
