//! How a connection ended.

use sockeye_proto::{CloseCode, Closed, ProtocolError};

use crate::message::CloseReason;

/// How a connection ended, owned and ready to show to an application: a normal
/// disconnect (the close handshake completed) or an abnormal one, told apart without
/// parsing strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The close handshake completed.
    Clean {
        /// The code of the Close we sent (`None` for an empty Close).
        sent: Option<CloseCode>,
        /// The peer's code and reason (`None` for an empty Close, i.e. 1005).
        received: Option<CloseReason>,
        /// Whether we sent our Close first.
        initiated_locally: bool,
    },
    /// The connection ended without a completed close handshake.
    Abnormal(Abnormal),
    /// A timer ended the connection.
    TimedOut(sockeye_proto::Timeout),
}

/// Why a connection ended abnormally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Abnormal {
    /// End of stream without a close handshake (close code 1006).
    Eof,
    /// The transport failed.
    Io(std::io::ErrorKind),
    /// The peer broke the protocol; we sent a Close with the error's code.
    Protocol(ProtocolError),
}

impl Outcome {
    /// The outcome for the core's [`Closed`], with the peer's reason from `connection`.
    pub fn from_closed(closed: Closed, received: Option<CloseReason>) -> Self {
        match closed {
            Closed::Clean(clean) => Outcome::Clean {
                sent: clean.sent,
                received,
                initiated_locally: clean.initiated_locally,
            },
            Closed::Abnormal => Outcome::Abnormal(Abnormal::Eof),
            Closed::Failed(error) => Outcome::Abnormal(Abnormal::Protocol(error)),
            Closed::TimedOut(timeout) => Outcome::TimedOut(timeout),
        }
    }

    /// Whether this was a normal disconnect.
    pub fn is_clean(&self) -> bool {
        matches!(self, Outcome::Clean { .. })
    }

    /// The close code an application would report: the peer's (or ours for a clean close
    /// without one), 1006 for an abnormal end, the error's code for a protocol error.
    pub fn code(&self) -> CloseCode {
        match self {
            Outcome::Clean { received, sent, .. } => received
                .as_ref()
                .map(|close| close.code)
                .or(*sent)
                .unwrap_or(CloseCode::NO_STATUS),
            Outcome::Abnormal(Abnormal::Protocol(error)) => error.close_code(),
            Outcome::Abnormal(_) | Outcome::TimedOut(_) => CloseCode::ABNORMAL,
        }
    }
}

impl core::fmt::Display for Outcome {
    /// `clean code=1000 reason=bye`, `abnormal: end of stream without a close handshake
    /// (1006)`, `timeout: keepalive`: the forms the example client prints.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use sockeye_proto::Timeout;
        match self {
            Outcome::Clean { received, sent, .. } => match received {
                Some(close) => write!(f, "clean code={} reason={}", close.code, close.reason),
                None => match sent {
                    Some(code) => write!(f, "clean code={code} (peer sent no code)"),
                    None => f.write_str("clean code=1005 (no code)"),
                },
            },
            Outcome::Abnormal(Abnormal::Eof) => {
                f.write_str("abnormal: end of stream without a close handshake (1006)")
            }
            Outcome::Abnormal(Abnormal::Io(kind)) => write!(f, "abnormal: i/o error: {kind}"),
            Outcome::Abnormal(Abnormal::Protocol(error)) => {
                write!(f, "abnormal: protocol error: {error}")
            }
            Outcome::TimedOut(Timeout::Close) => f.write_str("timeout: close handshake"),
            Outcome::TimedOut(Timeout::KeepAlive) => f.write_str("timeout: keepalive"),
            Outcome::TimedOut(Timeout::Idle) => f.write_str("timeout: idle"),
            Outcome::TimedOut(Timeout::WriteStall) => {
                f.write_str("timeout: the peer stopped reading (write stall)")
            }
        }
    }
}
