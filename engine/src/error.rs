//! [`Error`]: what can go wrong in a handshake or a send, shared by every `std` adapter.
//! The end of an open connection is not an error: it is the
//! [`Outcome`](crate::Outcome) reported once when the connection is over.

use std::fmt;
use std::io;

use crate::handshake::{Refusal, RejectedResponse};
use sockeye_proto::handshake::{ResponseError, UrlError, WriteError};
use sockeye_proto::SendError;

/// A failed handshake, or a send that could not be done.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (connect, read or write).
    Io(io::Error),
    /// The opening handshake did not finish within
    /// [`Settings::handshake_timeout`](crate::Settings::handshake_timeout).
    HandshakeTimeout,
    /// The TCP connection did not open within
    /// [`Settings::connect_timeout`](crate::Settings::connect_timeout).
    ConnectTimeout,
    /// Server: the request was turned down and the response (400, 426, 431, the
    /// application's status, or 500) was written before closing.
    Refused(Refusal),
    /// Client: the URL cannot be used.
    Url(UrlError),
    /// Client: a `wss://` URL was given to an adapter's `connect_url`, which only opens
    /// plain TCP; open the TLS stream yourself and use the adapter's `connect`.
    TlsRequired,
    /// Client: the request cannot be written (an invalid header, host or subprotocol).
    Request(WriteError),
    /// Client: the server's response is not a valid handshake answer.
    Response(ResponseError),
    /// Client: the server answered with a status other than `101` (its status, reason,
    /// headers and body are here).
    Rejected(RejectedResponse),
    /// Local misuse: a control payload over 125 bytes, a close code that cannot be sent,
    /// a message of another kind while a fragmented one is in progress.
    Send(SendError),
    /// A readiness-driven session (mio) is still in its opening handshake: nothing can be
    /// sent yet.
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
            Error::TlsRequired => {
                f.write_str("wss:// needs TLS: connect a TLS stream and use `connect`")
            }
            Error::Request(error) => write!(f, "invalid request: {error}"),
            Error::Response(error) => write!(f, "invalid handshake response: {error}"),
            Error::Rejected(rejected) => write!(f, "the server answered {rejected}"),
            Error::Send(error) => write!(f, "cannot send: {error}"),
            Error::Handshaking => f.write_str("the opening handshake is not finished"),
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

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
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

impl From<Error> for io::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Io(error) => error,
            Error::HandshakeTimeout | Error::ConnectTimeout => {
                io::Error::new(io::ErrorKind::TimedOut, error)
            }
            Error::Closed => io::Error::new(io::ErrorKind::NotConnected, error),
            other => io::Error::other(other),
        }
    }
}
