//! # sockeye-mio: Sockeye WebSockets on mio, readiness-driven
//!
//! No futures, no threads: a [`Session`] is one WebSocket connection over a
//! [`mio::net::TcpStream`] that the application's own [`mio::Poll`] loop drives with
//! readiness events ([`Session::on_readable`], [`Session::on_writable`]) and deadlines
//! ([`Session::next_timeout`], [`Session::on_timeout`]). The protocol, buffers and send
//! queue are the core's [`Driver`](sockeye_proto::driver::Driver); the handshake runs as
//! a phase of the session (non-blocking, partial heads, rejections written then closed,
//! handshake timeout).
//!
//! [`Server`] runs many sessions on one `Poll` (a [`slab::Slab`] of sessions) with the
//! same rejections and timers, calling a [`Handler`] for each message.
//!
//! ```no_run
//! use sockeye_mio::{Message, Server, Session, Settings};
//!
//! let addr = "127.0.0.1:9001".parse().unwrap();
//! let echo = |session: &mut Session, message: Message| {
//!     if message.is_data() {
//!         let _ = session.send(message);
//!     }
//! };
//! let mut server = Server::bind(addr, Settings::default(), echo)?;
//! println!("listening on {}", server.local_addr()?);
//! server.run()?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! A client session in a hand-written loop:
//!
//! ```no_run
//! use std::time::Instant;
//! use mio::{Events, Poll, Token};
//! use sockeye_mio::{CloseCode, Message, Session, Settings};
//!
//! let mut poll = Poll::new()?;
//! let mut events = Events::with_capacity(16);
//! let mut ws = Session::connect_url("ws://127.0.0.1:9001/", Settings::default(), Instant::now())?;
//! ws.register(poll.registry(), Token(0))?;
//! let mut sent = false;
//! while !ws.is_done() {
//!     poll.poll(&mut events, ws.next_timeout(Instant::now()))?;
//!     let now = Instant::now();
//!     let reply = |ws: &mut Session, message: Message| {
//!         println!("< {message:?}");
//!         let _ = ws.close(CloseCode::NORMAL, "bye", Instant::now());
//!     };
//!     for event in events.iter() {
//!         if event.is_readable() {
//!             ws.on_readable(now, reply);
//!         }
//!         if event.is_writable() {
//!             ws.on_writable(now, reply);
//!         }
//!     }
//!     ws.on_timeout(now);
//!     if ws.is_open() && !sent {
//!         ws.send(Message::text("hello"))?;
//!         sent = true;
//!     }
//!     ws.update_interest(poll.registry(), Token(0))?;
//! }
//! println!("# closed {:?}", ws.outcome());
//! # Ok::<_, sockeye_mio::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod server;
mod session;

use std::fmt;
use std::io;

pub use server::{Handler, Server};
pub use session::Session;
pub use sockeye_proto;
pub use sockeye_proto::driver::{
    Abnormal, CloseReason, DriverConfig, Message, Outcome, Refusal, RejectedResponse, Settings,
    Verdict,
};
pub use sockeye_proto::handshake::{ClientRequest, UpgradeRequest, Url};
pub use sockeye_proto::{
    CloseCode, Config, DataKind, KeepAlive, ProtocolError, ResponseError, SendError, Timeout,
    UrlError, WriteError,
};

/// Everything that can go wrong, split by cause. A normal close is not an error: it is the
/// [`Outcome`] of the session.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (a peer that left in the middle of the handshake is
    /// `UnexpectedEof`; a TCP connect that took too long is `TimedOut`).
    Io(io::Error),
    /// Server: the request was turned down (invalid, or by the application's
    /// [`Verdict`]); the response was written and the connection closed.
    Refused(Refusal),
    /// Client: the server answered with a status other than `101`.
    Rejected(RejectedResponse),
    /// Client: the server's `101` breaks RFC 6455 §4.1, or is not HTTP.
    Response(ResponseError),
    /// Client: the URL cannot be used.
    Url(UrlError),
    /// Client: a `wss://` URL (this adapter speaks plain TCP).
    TlsUnsupported,
    /// Client: the request cannot be written (a malformed header, say).
    Request(WriteError),
    /// The opening handshake took longer than [`Settings::handshake_timeout`].
    HandshakeTimeout,
    /// The peer broke the protocol: our Close with the error's code was sent and the
    /// connection is over.
    Protocol(ProtocolError),
    /// A message that cannot be sent (a control payload over 125 bytes, a close code that
    /// may not be sent, sending after our Close ...).
    Send(SendError),
    /// The session is still in its opening handshake.
    Handshaking,
    /// The connection is over (see [`Session::outcome`]).
    Closed,
}

impl Error {
    /// The HTTP status of a handshake refusal (ours as a server, the server's as a
    /// client).
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Refused(refusal) => Some(refusal.status()),
            Error::Rejected(rejected) => Some(rejected.status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "i/o error: {error}"),
            Error::Refused(refusal) => write!(f, "handshake refused: {refusal}"),
            Error::Rejected(response) => write!(f, "server rejected the handshake: {response}"),
            Error::Response(error) => write!(f, "invalid handshake response: {error}"),
            Error::Url(error) => write!(f, "invalid URL: {error}"),
            Error::TlsUnsupported => f.write_str("wss:// is not supported by the mio adapter"),
            Error::Request(error) => write!(f, "cannot write the handshake request: {error}"),
            Error::HandshakeTimeout => f.write_str("handshake timed out"),
            Error::Protocol(error) => write!(f, "protocol error: {error}"),
            Error::Send(error) => write!(f, "cannot send: {error}"),
            Error::Handshaking => f.write_str("the opening handshake is not done"),
            Error::Closed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            Error::Response(error) => Some(error),
            Error::Protocol(error) => Some(error),
            Error::Send(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
    }
}
