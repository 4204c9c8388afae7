//! Whole messages from chunks (feature `alloc`).
//!
//! [`Connection`](crate::Connection) hands out messages in chunks that borrow the read
//! buffer. [`Assembler`] joins them into whole messages with a size limit. A message that
//! arrives in one chunk is passed through without copying; otherwise the chunks are
//! gathered in a buffer that is reused, and released after a large message so an idle
//! connection keeps no big allocation.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::connection::{Boundary, Event};
use crate::copy;

/// A whole message, borrowed from the input chunk or from the assembler's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl Message<'_> {
    /// The message's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Message::Text(text) => text.as_bytes(),
            Message::Binary(bytes) => bytes,
        }
    }

    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A message grew past the assembler's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageTooLarge {
    /// The limit in bytes.
    pub limit: usize,
}

impl fmt::Display for MessageTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message larger than {} bytes", self.limit)
    }
}

impl core::error::Error for MessageTooLarge {}

/// Joins data chunks into whole messages.
///
/// ```
/// use sockeye_proto::message::{Assembler, Message};
/// use sockeye_proto::{Boundary, Event};
///
/// let mut assembler = Assembler::new(1024);
/// let first = Event::Text { text: "hel", end: Boundary::FrameEnd };
/// assert_eq!(assembler.push(first), Ok(None));
/// let last = Event::Text { text: "lo", end: Boundary::MessageEnd };
/// assert_eq!(assembler.push(last), Ok(Some(Message::Text("hello"))));
/// ```
#[derive(Debug, Default)]
pub struct Assembler {
    text: String,
    binary: Vec<u8>,
    in_progress: bool,
    /// The buffers hold a finished message that was handed out; clear before reuse.
    finished: bool,
    max_message_size: usize,
    retain_capacity: usize,
}

impl Assembler {
    /// Capacity kept between messages by default; larger buffers are released.
    pub const DEFAULT_RETAINED_CAPACITY: usize = 4096;

    /// An assembler refusing messages over `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Self {
        Assembler {
            max_message_size,
            retain_capacity: Self::DEFAULT_RETAINED_CAPACITY,
            ..Assembler::default()
        }
    }

    /// Keeps at most `bytes` of buffer capacity between messages (0 releases every time).
    pub fn with_retained_capacity(mut self, bytes: usize) -> Self {
        self.retain_capacity = bytes;
        self
    }

    /// Whether a message is partly assembled.
    pub fn is_in_progress(&self) -> bool {
        self.in_progress
    }

    /// Bytes of buffer currently allocated.
    pub fn capacity(&self) -> usize {
        self.text.capacity() + self.binary.capacity()
    }

    /// Drops a partial message and releases large buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.binary.clear();
        self.in_progress = false;
        self.finished = false;
        if self.text.capacity() > self.retain_capacity {
            self.text = String::new();
        }
        if self.binary.capacity() > self.retain_capacity {
            self.binary = Vec::new();
        }
    }

    /// Feeds one event. Returns the whole message when `event` ends one; other events
    /// (control frames, the end) give `Ok(None)` and are left to the caller.
    pub fn push<'a>(
        &'a mut self,
        event: Event<'a>,
    ) -> Result<Option<Message<'a>>, MessageTooLarge> {
        if self.finished {
            self.clear();
        }
        let (chunk, end) = match event {
            Event::Text { text, end } => (Message::Text(text), end),
            Event::Binary { bytes, end } => (Message::Binary(bytes), end),
            _ => return Ok(None),
        };
        let limit = self.max_message_size;
        let so_far = self.text.len() + self.binary.len();
        if so_far.saturating_add(chunk.len()) > limit {
            self.clear();
            return Err(MessageTooLarge { limit });
        }
        if end == Boundary::MessageEnd && !self.in_progress {
            return Ok(Some(chunk));
        }
        if self.text.is_empty() && self.binary.is_empty() {
            let reserve = match end {
                Boundary::MessageEnd => chunk.len(),
                _ => chunk.len().max(256),
            };
            match chunk {
                Message::Text(_) => self.text.reserve(reserve),
                Message::Binary(_) => self.binary.reserve(reserve),
            }
        }
        match chunk {
            Message::Text(text) => copy::push_str(&mut self.text, text),
            Message::Binary(bytes) => copy::extend(&mut self.binary, bytes),
        }
        self.in_progress = true;
        if end != Boundary::MessageEnd {
            return Ok(None);
        }
        self.in_progress = false;
        self.finished = true;
        Ok(Some(match chunk {
            Message::Text(_) => Message::Text(&self.text),
            Message::Binary(_) => Message::Binary(&self.binary),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_fragments_and_reuses_the_buffer() {
        let mut assembler = Assembler::new(100);
        for round in 0..3 {
            let parts = ["ab", "c", "", "dé"];
            for (i, part) in parts.iter().enumerate() {
                let end = if i + 1 == parts.len() {
                    Boundary::MessageEnd
                } else {
                    Boundary::Continues
                };
                let got = assembler.push(Event::Text { text: part, end }).unwrap();
                if i + 1 == parts.len() {
                    assert_eq!(got, Some(Message::Text("abcdé")), "round {round}");
                } else {
                    assert_eq!(got, None);
                }
            }
        }
        assert!(assembler.capacity() <= Assembler::DEFAULT_RETAINED_CAPACITY);
    }

    #[test]
    fn single_chunk_passes_through_without_allocating() {
        let mut assembler = Assembler::new(10);
        let got = assembler.push(Event::Binary {
            bytes: b"xyz",
            end: Boundary::MessageEnd,
        });
        assert_eq!(got, Ok(Some(Message::Binary(b"xyz"))));
        assert_eq!(assembler.capacity(), 0);
    }

    #[test]
    fn limit_is_enforced_and_resets() {
        let mut assembler = Assembler::new(4);
        let chunk = |bytes| Event::Binary {
            bytes,
            end: Boundary::Continues,
        };
        assert_eq!(assembler.push(chunk(b"abc")), Ok(None));
        assert_eq!(
            assembler.push(chunk(b"de")),
            Err(MessageTooLarge { limit: 4 })
        );
        assert!(!assembler.is_in_progress());
        let last = Event::Binary {
            bytes: b"abcd",
            end: Boundary::MessageEnd,
        };
        assert_eq!(assembler.push(last), Ok(Some(Message::Binary(b"abcd"))));
    }

    #[test]
    fn large_buffers_are_released_after_the_message() {
        let mut assembler = Assembler::new(1 << 20).with_retained_capacity(64);
        let big = [7u8; 10_000];
        let _ = assembler.push(Event::Binary {
            bytes: &big,
            end: Boundary::FrameEnd,
        });
        let _ = assembler.push(Event::Binary {
            bytes: &big,
            end: Boundary::MessageEnd,
        });
        assert!(assembler.capacity() >= 20_000);
        let _ = assembler.push(Event::Ping(b""));
        assert_eq!(assembler.capacity(), 0);
    }
}
