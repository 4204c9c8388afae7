//! Owned messages, and how chunks of one are put together.

use std::string::String;
use std::vec::Vec;

use bytes::Bytes;
use sockeye_proto::{Boundary, CloseCode, CloseFrame, Closed, Event};

use crate::buffers::pool;
use crate::copy;
use crate::Utf8Bytes;

/// An owned WebSocket message.
///
/// Payloads are shared bytes ([`Bytes`], and [`Utf8Bytes`] for text): cloning a message
/// copies no payload, so one message can be sent to many connections, and a received
/// message can be sent on as it is. A received text or binary payload is the buffer the
/// message was assembled in (no copy after the read buffer; a large binary frame is
/// read straight into it), and a payload sent as the only reference to its buffer goes
/// back to the driver's buffer pool once written, for the next message to be read into.
///
/// The constructors take the common owned types without a copy, and borrowed text by
/// copying it:
///
/// ```
/// # use sockeye_engine::{Bytes, Message, Utf8Bytes};
/// let hello = Message::text("hello"); // a `&str`: copied
/// let owned = Message::text(format!("{} + {}", 1, 2)); // a `String`: its buffer
/// let literal = Message::text(Utf8Bytes::from_static("hi")); // no copy, no allocation
/// let binary = Message::binary(vec![1, 2, 3]); // a `Vec<u8>`: its buffer
/// let shared = Message::binary(Bytes::from_static(b"\x00\x01")); // no copy
/// assert_eq!(hello, Message::from("hello"));
/// assert_eq!(binary.as_bytes(), [1, 2, 3]);
/// assert_eq!(literal.as_text(), Some("hi"));
///
/// match owned {
///     // `Utf8Bytes` compares with `&str` and reads as one (`Deref<Target = str>`).
///     Message::Text(text) => assert!(text == "1 + 2" && text.ends_with('2')),
///     _ => unreachable!(),
/// }
/// // Sending to many: clones share the payload.
/// let copies = vec![shared; 3];
/// assert!(copies.iter().all(|m| m.as_bytes().as_ptr() == copies[0].as_bytes().as_ptr()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A Ping (the Pong is sent automatically).
    Ping(Bytes),
    /// A Pong.
    Pong(Bytes),
    /// The peer's Close: the connection is half-closed and our reply is on its way.
    Close(Option<CloseReason>),
}

impl Message {
    /// A text message: a `String`, `Box<str>` or [`Utf8Bytes`] without a copy, a `&str`
    /// copied ([`Utf8Bytes::from_static`] takes a literal without one).
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Message::Text(text.into())
    }

    /// A binary message: anything that becomes [`Bytes`] (a `Vec<u8>`, `Box<[u8]>`,
    /// `&'static [u8]` or `Bytes` itself) without a copy. Borrowed bytes are copied by
    /// the caller (`Bytes::copy_from_slice`, `to_vec`).
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Message::Binary(bytes.into())
    }

    /// A Ping (at most 125 bytes).
    pub fn ping(payload: impl Into<Bytes>) -> Self {
        Message::Ping(payload.into())
    }

    /// A Pong (at most 125 bytes).
    pub fn pong(payload: impl Into<Bytes>) -> Self {
        Message::Pong(payload.into())
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

    /// The text of a text message (its bytes are checked again, see [`Utf8Bytes`]).
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Message::Text(text) => Some(text.as_str()),
            _ => None,
        }
    }

    /// The payload (the reason for a Close), shared: no copy but a Close's.
    pub fn into_payload(self) -> Bytes {
        match self {
            Message::Text(text) => text.into_bytes(),
            Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes,
            Message::Close(Some(close)) => Bytes::from(close.reason.into_bytes()),
            Message::Close(None) => Bytes::new(),
        }
    }
}

/// A text message.
impl From<Utf8Bytes> for Message {
    fn from(text: Utf8Bytes) -> Self {
        Message::Text(text)
    }
}

/// A text message, without a copy.
impl From<String> for Message {
    fn from(text: String) -> Self {
        Message::Text(text.into())
    }
}

/// A text message (the text copied).
impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Message::Text(text.into())
    }
}

/// A binary message.
impl From<Bytes> for Message {
    fn from(bytes: Bytes) -> Self {
        Message::Binary(bytes)
    }
}

/// A binary message, without a copy.
impl From<Vec<u8>> for Message {
    fn from(bytes: Vec<u8>) -> Self {
        Message::Binary(bytes.into())
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

    pub(crate) fn from_frame(frame: &CloseFrame<'_>) -> Option<Self> {
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

/// A message being assembled from chunks.
#[derive(Debug)]
pub(crate) enum Partial {
    Text(String),
    /// `buf[..filled]` is the message so far; the rest of `buf` is initialized room (old
    /// bytes) that reads may fill directly.
    Binary {
        buf: Vec<u8>,
        filled: usize,
    },
}

/// Adds a data chunk to the message being assembled; returns what the application sees.
///
/// `frame_remaining` (payload bytes of this frame still to come) sizes the buffer once,
/// so a large frame is copied once instead of being regrown (and recopied) chunk by chunk.
///
/// A binary message gets `slack` bytes of spare capacity beyond its first frame (the
/// room a direct read of a large frame overshoots into).
pub(crate) fn assemble(
    partial: &mut Option<Partial>,
    event: Event<'_>,
    frame_remaining: usize,
    slack: usize,
) -> Option<Received> {
    let message = match event {
        Event::Closed(closed) => return Some(Received::Closed(closed)),
        // The driver inflates compressed chunks before they get here.
        Event::Compressed { .. } => return None,
        Event::Ping(payload) => Message::Ping(Bytes::copy_from_slice(payload)),
        Event::Pong(payload) => Message::Pong(Bytes::copy_from_slice(payload)),
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
            // The message's own buffer becomes its payload: no copy.
            Message::Text(Utf8Bytes::from(text))
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
            // No copy (a small header is allocated when the buffer has spare room).
            Message::Binary(Bytes::from(buf))
        }
    };
    Some(Received::Message(message))
}
