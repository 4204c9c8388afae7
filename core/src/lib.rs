//! # sockeye-proto: a sans-IO WebSocket core
//!
//! The WebSocket protocol (RFC 6455) as a state machine that never touches a socket, a
//! clock or a thread. Bytes and the current time go in; events, bytes to send and the
//! next deadline come out. It is `no_std`, has no `unsafe`, and allocates nothing per
//! frame: payloads are unmasked in place in the caller's buffer and handed out as
//! slices, control frames wait in fixed inline slots, timers are a fixed table.
//!
//! ## Method families
//!
//! - **Handshake** ([`handshake`]): `parse_request` / `accept` / `Rejection` on the server,
//!   `ClientHandshake` on the client, over caller-owned buffers (like `httparse`).
//! - **Inputs** return what they produced: [`Connection::handle_input`] (bytes; at most
//!   one event each call), [`Connection::handle_eof`], [`Connection::handle_timeout`].
//! - **Local calls**: [`Connection::send`] returns a frame head for a vectored write;
//!   [`Connection::ping`] and [`Connection::close`] queue control frames.
//! - **Outputs** are polled: [`Connection::poll_transmit`] (control frames, then
//!   [`Transmit::Shutdown`]) and [`Connection::poll_timeout`] (the next deadline).
//!
//! ## The driving loop
//!
//! After every call, drain `poll_transmit` (so Pongs and Close replies go out even when
//! the application only reads) and sleep until `poll_timeout`. Here a client and a server
//! talk through two in-memory pipes:
//!
//! ```
//! use sockeye_proto::{CloseCode, Config, Connection, DataKind, Event, Instant, Role, Transmit};
//!
//! let now = Instant::ZERO;
//! let mut client = Connection::new(Role::Client, Config::default(), [7; 32], now);
//! let mut server = Connection::new(Role::Server, Config::default(), [0; 32], now);
//!
//! // The client sends a text message: a vectored write of [head, payload].
//! let mut payload = *b"hello";
//! let head = client.send(DataKind::Text, true, &mut payload).unwrap();
//! let mut wire = [&head[..], &payload[..]].concat();
//!
//! // The server reads it, in place: the event borrows `wire`.
//! let read = server.handle_input(&mut wire, now).unwrap();
//! assert!(matches!(read.event, Some(Event::Text { text: "hello", .. })));
//! assert_eq!(read.consumed, wire.len());
//!
//! // The server closes; its Close frame comes out of poll_transmit.
//! server.close(CloseCode::NORMAL, "bye", now).unwrap();
//! let mut out = [0u8; 256];
//! let Some(Transmit::Bytes(n)) = server.poll_transmit(&mut out) else { panic!() };
//! let mut to_client = out[..n].to_vec();
//!
//! // The client sees the Close at once (half-closed) and its reply is queued.
//! let read = client.handle_input(&mut to_client, now).unwrap();
//! let Some(Event::Close(frame)) = read.event else { panic!() };
//! assert_eq!((frame.code, frame.reason), (Some(CloseCode::NORMAL), "bye"));
//! let Some(Transmit::Bytes(n)) = client.poll_transmit(&mut out) else { panic!() };
//! let mut reply = out[..n].to_vec();
//!
//! // The reply completes the handshake: the server shuts TCP down first.
//! let read = server.handle_input(&mut reply, now).unwrap();
//! assert!(matches!(read.event, Some(Event::Close(_))));
//! let read = server.handle_input(&mut [], now).unwrap();
//! let Some(Event::Closed(closed)) = read.event else { panic!() };
//! assert!(closed.is_clean());
//! assert_eq!(server.poll_transmit(&mut out), Some(Transmit::Shutdown));
//!
//! // The client ends cleanly when the server's FIN arrives.
//! let Some(Event::Closed(closed)) = client.handle_eof(now) else { panic!() };
//! assert!(closed.is_clean());
//! ```
//!
//! ## Call order and buffers
//!
//! - Pass unconsumed input again at the front of the next input: a character split
//!   across reads stays there until it is complete. The input buffer must hold at least
//!   [`MIN_INPUT_BUFFER`] bytes; frames larger than the buffer stream through in chunks
//!   ([`Boundary`]), so memory stays O(buffer) whatever the message size.
//! - `poll_transmit` needs [`MIN_TRANSMIT_BUFFER`] bytes and must only be called between
//!   data frames (never in the middle of writing a `send` payload).
//! - The end is reported once: [`Event::Closed`] with a [`Closed`] saying whether it was a
//!   clean close handshake, an abnormal end (EOF without Close), or a timeout; a protocol
//!   violation is the `Err` of `handle_input` (its Close is already queued).
//!
//! ## Features
//!
//! - `std` (default): [`StdClock`] and faster runtime-detected SIMD UTF-8 validation.
//! - `deflate`: the permessage-deflate (RFC 7692) codec, `deflate::Deflater` and
//!   `deflate::Inflater`. It needs an allocator (`alloc`), not `std`.
//!
//! With no features the crate needs no allocator and builds for bare-metal targets such
//! as `thumbv7em-none-eabihf`, with `deflate` too (given a global allocator). Nothing
//! but the `deflate` codec allocates.
//!
//! ## What is not here
//!
//! Buffers, owned messages, send queues and the connection's lifecycle around the
//! protocol (when to read, write, shut down, give up) are `sockeye-engine`'s, which every
//! `std` adapter drives; a `no_std` application drives [`Connection`] directly with
//! buffers of its own.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled (and the core's run) as doc tests, so the
// snippet shown on crates.io stays correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "std")]
extern crate std;
// Only the permessage-deflate codec allocates; without `deflate` the crate needs no
// allocator.
#[cfg(feature = "deflate")]
extern crate alloc;

pub mod close;
pub mod config;
pub mod connection;
#[cfg(feature = "deflate")]
#[cfg_attr(docsrs, doc(cfg(feature = "deflate")))]
pub mod deflate;
pub mod error;
pub mod extension;
pub mod frame;
pub mod handshake;
mod machine;
pub mod reconnect_policy;
pub mod time;
pub mod utf8;

pub use close::{CloseCode, CloseFrame};
pub use config::{Config, KeepAlive};
pub use connection::{
    Boundary, CleanClose, Closed, Connection, DataKind, Event, Input, Role, Timeout, Transmit,
    MIN_INPUT_BUFFER, MIN_TRANSMIT_BUFFER,
};
pub use error::{BufferTooSmall, ProtocolError, SendError};
pub use extension::{DeflateConfig, DeflateParams, ExtensionError};
pub use handshake::{
    parse_request, parse_request_with, Accept, AcceptKey, ClientHandshake, ClientRequest,
    Rejection, RequestError, ResponseError, UpgradeRequest, Url, UrlError, WriteError,
};
pub use machine::State;
pub use time::Instant;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use time::StdClock;

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
