//! Close codes (RFC 6455 §7.4) and Close frame payloads (§5.5.1).

use core::fmt;

use crate::error::ProtocolError;

/// A WebSocket close status code.
///
/// Any `u16` can be held; [`CloseCode::is_valid_on_wire`] says whether it may appear in a
/// Close frame, and [`CloseCode::is_sendable`] whether an application may send it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure, the purpose of the connection is fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: the connection closed without a Close frame (never sent on the wire).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (e.g. invalid UTF-8 in text).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message too big to process.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: the server met an unexpected condition.
    pub const INTERNAL: CloseCode = CloseCode(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: the gateway received an invalid response.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a Close frame: 1000-1003, 1007-1014 and 3000-4999.
    pub const fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }

    /// Whether a local application may send this code (the same set as on the wire).
    pub const fn is_sendable(self) -> bool {
        self.is_valid_on_wire()
    }

    /// Whether the code reports an error on the sender's side rather than a normal end
    /// (anything but 1000 and 1001).
    pub const fn is_error(self) -> bool {
        !matches!(self.0, 1000 | 1001)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> Self {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> Self {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The longest close reason that fits a control frame (125 - 2 bytes of code).
pub const MAX_REASON_LEN: usize = 123;

/// A Close frame as received: the code (absent when the payload was empty) and the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code, or `None` for an empty Close payload (reported as 1005).
    pub code: Option<CloseCode>,
    /// The UTF-8 reason, possibly empty.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parses and validates a Close payload (RFC 6455 §5.5.1, §7.4).
    ///
    /// An empty payload is a Close without a code; one byte is invalid (1002); a code not
    /// allowed on the wire is 1002; a reason that is not UTF-8 is 1007.
    ///
    /// ```
    /// use sockeye_proto::close::{CloseCode, CloseFrame};
    /// let frame = CloseFrame::parse(b"\x03\xf0bye").unwrap();
    /// assert_eq!(frame.code, Some(CloseCode(1008)));
    /// assert_eq!(frame.reason, "bye");
    /// assert!(CloseFrame::parse(b"\x03").is_err());
    /// ```
    pub fn parse(payload: &'a [u8]) -> Result<Self, ProtocolError> {
        match payload {
            [] => Ok(CloseFrame {
                code: None,
                reason: "",
            }),
            [_] => Err(ProtocolError::CloseFrameTooShort),
            [high, low, reason @ ..] => {
                let code = CloseCode(u16::from_be_bytes([*high, *low]));
                if !code.is_valid_on_wire() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason =
                    simdutf8::basic::from_utf8(reason).map_err(|_| ProtocolError::InvalidUtf8)?;
                Ok(CloseFrame {
                    code: Some(code),
                    reason,
                })
            }
        }
    }

    /// The code to report to an application: the received one, or 1005 when absent.
    pub fn code_or_no_status(&self) -> CloseCode {
        self.code.unwrap_or(CloseCode::NO_STATUS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_matches_rfc_ranges() {
        let valid = |c: u16| CloseCode(c).is_valid_on_wire();
        for c in 0..=999 {
            assert!(!valid(c), "{c}");
        }
        for c in [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
        ] {
            assert!(valid(c), "{c}");
        }
        for c in [1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
            assert!(!valid(c), "{c}");
        }
        assert!(valid(3000) && valid(4999));
    }

    #[test]
    fn parse_rejects_bad_payloads() {
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xed]),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(&[0x03, 0xe8, 0xff]),
            Err(ProtocolError::InvalidUtf8)
        );
        assert_eq!(
            CloseFrame::parse(&[0x03]),
            Err(ProtocolError::CloseFrameTooShort)
        );
        let empty = CloseFrame::parse(&[]).unwrap();
        assert_eq!(empty.code, None);
        assert_eq!(empty.code_or_no_status(), CloseCode::NO_STATUS);
    }
}
