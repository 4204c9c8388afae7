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
pub use sockeye_proto::handshake::HeadLimits;
pub use sockeye_proto::handshake::{ClientRequest, UpgradeRequest, Url};
pub use sockeye_proto::{CloseCode, Config, DataKind, KeepAlive, Role, State, Timeout};
use sockeye_proto::{ResponseError, SendError, UrlError, WriteError};

/// A failed handshake, or a send that could not be done. The end of an open
/// connection is not an error: it is the session's [`Outcome`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (connect, read or write; a peer that left in the middle of
    /// the handshake is `UnexpectedEof`).
    Io(io::Error),
    /// The opening handshake did not finish within [`Settings::handshake_timeout`].
    HandshakeTimeout,
    /// The TCP connection did not open within [`Settings::connect_timeout`].
    ConnectTimeout,
    /// Server: the request was turned down and the response (400, 426, 431, the
    /// application's status, or 500) was written before closing.
    Refused(Refusal),
    /// Client: the URL cannot be used.
    Url(UrlError),
    /// Client: a `wss://` URL (this adapter opens plain TCP only).
    TlsRequired,
    /// Client: the request cannot be written (an invalid header, host or subprotocol).
    Request(WriteError),
    /// Client: the server's response is not a valid handshake answer.
    Response(ResponseError),
    /// Client: the server answered with a status other than `101` (its status, reason
    /// and headers are here).
    Rejected(RejectedResponse),
    /// Local misuse: a control payload over 125 bytes, a close code that cannot be sent,
    /// a message of another kind while a fragmented one is in progress.
    Send(SendError),
    /// The session is still in its opening handshake: nothing can be sent yet.
    Handshaking,
    /// The connection is closing or over: nothing more can be sent.
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
            Error::HandshakeTimeout => f.write_str("the opening handshake timed out"),
            Error::ConnectTimeout => f.write_str("connecting timed out"),
            Error::Refused(refusal) => write!(f, "handshake refused: {refusal}"),
            Error::Url(error) => write!(f, "invalid URL: {error}"),
            Error::TlsRequired => f.write_str("wss:// needs TLS, which the mio adapter lacks"),
            Error::Request(error) => write!(f, "invalid request: {error}"),
            Error::Response(error) => write!(f, "invalid handshake response: {error}"),
            Error::Rejected(rejected) => write!(f, "the server answered {rejected}"),
            Error::Send(error) => write!(f, "cannot send: {error}"),
            Error::Handshaking => f.write_str("the opening handshake is not done"),
            Error::Closed => f.write_str("the connection is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            Error::Url(error) => Some(error),
            Error::Request(error) => Some(error),
            Error::Response(error) => Some(error),
            Error::Send(error) => Some(error),
            _ => None,
        }
    }
}

impl From<SendError> for Error {
    fn from(error: SendError) -> Self {
        match error {
            SendError::Closed => Error::Closed,
            other => Error::Send(other),
        }
    }
}

impl From<UrlError> for Error {
    fn from(error: UrlError) -> Self {
        Error::Url(error)
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
    }
}
