//! Owned messages, and how chunks of one are put together.

use std::string::String;
use std::vec::Vec;

use sockeye_proto::{Boundary, CloseCode, CloseFrame, Closed, Event};

use crate::buffers::pool;
use crate::copy;

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
