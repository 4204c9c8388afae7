//! Errors shared by several parts of the core.
//!
//! Errors are split by who caused them: the peer ([`ProtocolError`], and the handshake's
//! `RequestError` / `ResponseError`) or the local caller ([`SendError`], [`BufferTooSmall`]).
//! Each is a small `Copy` value; a normal close is an event, never an error.

use core::fmt;

use crate::close::CloseCode;

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

/// The peer broke the protocol. The connection has failed: the Close frame with
/// [`ProtocolError::close_code`] is queued, and after it the transport should be shut down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// A server received a frame without a mask (RFC 6455 §5.1).
    UnmaskedFrame,
    /// A client received a masked frame (RFC 6455 §5.1).
    MaskedFrame,
    /// RSV1-3 set without an extension that defines them.
    ReservedBits,
    /// An opcode reserved for future use (3-7, 11-15).
    ReservedOpcode(u8),
    /// A control frame without FIN.
    FragmentedControlFrame,
    /// A control frame with more than 125 bytes of payload.
    ControlFrameTooLong,
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new Text/Binary frame while a fragmented message is in progress.
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set.
    InvalidLength,
    /// A frame longer than the configured maximum frame size.
    FrameTooLarge,
    /// A message longer than the configured maximum message size.
    MessageTooLarge,
    /// Text (or a close reason) that is not valid UTF-8.
    InvalidUtf8,
    /// A Close payload of exactly one byte.
    CloseFrameTooShort,
    /// A close code not allowed on the wire.
    InvalidCloseCode(u16),
    /// A compressed message (permessage-deflate) whose data does not inflate.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code sent to the peer for this error (RFC 6455 §7.4.1).
    pub const fn close_code(&self) -> CloseCode {
        match self {
            ProtocolError::FrameTooLarge | ProtocolError::MessageTooLarge => CloseCode::TOO_BIG,
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            _ => CloseCode::PROTOCOL,
        }
    }

    /// A short static description, also used as the reason in the Close frame.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ProtocolError::UnmaskedFrame => "unmasked frame from client",
            ProtocolError::MaskedFrame => "masked frame from server",
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::ControlFrameTooLong => "control frame too long",
            ProtocolError::UnexpectedContinuation => "continuation without a message",
            ProtocolError::ExpectedContinuation => "new message inside a fragmented one",
            ProtocolError::InvalidLength => "invalid payload length",
            ProtocolError::FrameTooLarge => "frame too large",
            ProtocolError::MessageTooLarge => "message too large",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::CloseFrameTooShort => "one-byte close payload",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            other => f.write_str(other.as_str()),
        }?;
        write!(f, " (close code {})", self.close_code())
    }
}

impl core::error::Error for ProtocolError {}

/// A local call that cannot be carried out. Nothing was queued or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The connection is closing or closed: no more data (or a second Close) may be sent.
    Closed,
    /// A fragmented message of the other kind is in progress; finish it first.
    MessageInProgress,
    /// A control payload longer than 125 bytes (or a close reason over 123 bytes).
    ControlTooLong,
    /// A close code that may not be sent (1005, 1006, 1015, < 1000, ...).
    InvalidCloseCode(u16),
    /// A compressed frame, but permessage-deflate was not negotiated.
    CompressionNotNegotiated,
    /// A frame prepared without a mask, on a client, which must mask every frame with
    /// a key of its own ([`Connection::send_prepared`](crate::Connection::send_prepared)).
    MaskRequired,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("connection is closing or closed"),
            SendError::MessageInProgress => {
                f.write_str("a fragmented message of another kind is in progress")
            }
            SendError::ControlTooLong => {
                f.write_str("control payload over 125 bytes (close reason over 123)")
            }
            SendError::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            SendError::CompressionNotNegotiated => {
                f.write_str("permessage-deflate was not negotiated")
            }
            SendError::MaskRequired => {
                f.write_str("a client masks every frame: a prepared frame cannot be shared")
            }
        }
    }
}

impl core::error::Error for SendError {}
