//! A tiny no-alloc HTTP/1.1 head writer shared by both roles.
//!
//! Every head is emitted twice by the same code: once to count its length, then, only if it
//! fits, into the caller's buffer. So a buffer that is too small is left untouched.

use core::fmt;

use crate::error::BufferTooSmall;

/// Why a handshake head could not be written. Nothing was written to the buffer.
///
/// These are local faults (the caller's buffer or arguments), never the peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// The buffer cannot hold the head; `needed` bytes would.
    BufferTooSmall {
        /// How many bytes the head needs.
        needed: usize,
    },
    /// An argument cannot be written as given: a header name that is not an HTTP token, a
    /// header value, reason phrase, host or resource holding a control character (CR or LF
    /// would split the head), a status code outside 200..=999, a subprotocol that is not a
    /// token, or an extra header the writer sets itself (such as `Sec-WebSocket-Accept`,
    /// `Content-Length` or `Transfer-Encoding`; each writer lists its own).
    InvalidField,
    /// [`Accept`](super::Accept) chose a subprotocol the client did not offer.
    ProtocolNotOffered,
    /// [`Accept`](super::Accept) listed an extension the client did not offer.
    ExtensionNotOffered,
    /// An HTTP/1.1 head was asked for an extended CONNECT (HTTP/2), which is answered with
    /// header fields instead (see [`UpgradeRequest::answer`](super::UpgradeRequest::answer)).
    ExtendedConnect,
}

impl WriteError {
    /// The buffer size needed, for [`WriteError::BufferTooSmall`].
    pub fn needed(&self) -> Option<usize> {
        match self {
            WriteError::BufferTooSmall { needed } => Some(*needed),
            _ => None,
        }
    }
}

impl From<BufferTooSmall> for WriteError {
    fn from(e: BufferTooSmall) -> Self {
        WriteError::BufferTooSmall { needed: e.needed }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::BufferTooSmall { needed } => BufferTooSmall { needed: *needed }.fmt(f),
            WriteError::InvalidField => {
                f.write_str("a header, status, host or resource cannot be written as given")
            }
            WriteError::ProtocolNotOffered => {
                f.write_str("the chosen subprotocol was not offered by the client")
            }
            WriteError::ExtensionNotOffered => {
                f.write_str("an accepted extension was not offered by the client")
            }
            WriteError::ExtendedConnect => {
                f.write_str("an extended CONNECT is answered with fields, not an HTTP/1.1 head")
            }
        }
    }
}

impl core::error::Error for WriteError {}

/// A cursor over the output buffer that counts past its end instead of failing.
pub(crate) struct Cursor<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl Cursor<'_> {
    /// Appends raw bytes.
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.out.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    /// Appends text.
    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Appends a number in decimal.
    pub(crate) fn decimal(&mut self, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.bytes(&digits[i..]);
    }

    /// Appends `name: value\r\n`.
    pub(crate) fn header(&mut self, name: &str, value: &[u8]) {
        self.str(name);
        self.bytes(b": ");
        self.bytes(value);
        self.bytes(b"\r\n");
    }

    /// Appends `name: first, a, b\r\n` (the items of `items` after `first`, if any),
    /// unless there is no item at all.
    pub(crate) fn list(&mut self, name: &str, first: Option<&str>, items: &[&str]) {
        if first.is_none() && items.is_empty() {
            return;
        }
        self.str(name);
        let mut separator = ": ";
        for item in first.iter().chain(items) {
            self.str(separator);
            self.str(item);
            separator = ", ";
        }
        self.bytes(b"\r\n");
    }

    /// Appends each `(name, value)` as a header line.
    pub(crate) fn headers(&mut self, headers: &[(&str, &[u8])]) {
        for (name, value) in headers {
            self.header(name, value);
        }
    }

    /// Appends the empty line that ends a head.
    pub(crate) fn end(&mut self) {
        self.bytes(b"\r\n");
    }
}

/// Runs `emit` once to measure the head, then again into `out` if it fits.
pub(crate) fn write_head(
    out: &mut [u8],
    emit: impl Fn(&mut Cursor<'_>),
) -> Result<usize, WriteError> {
    let mut count = Cursor {
        out: &mut [],
        len: 0,
    };
    emit(&mut count);
    let needed = count.len;
    if needed > out.len() {
        return Err(WriteError::BufferTooSmall { needed });
    }
    let mut cursor = Cursor { out, len: 0 };
    emit(&mut cursor);
    debug_assert_eq!(cursor.len, needed);
    Ok(needed)
}

/// `tchar` of RFC 9110 §5.6.2.
const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
}

/// Whether `s` is a non-empty HTTP token (a header name, a subprotocol).
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Whether `v` can be a header value or reason phrase: no control characters but HTAB
/// (obs-text, bytes >= 0x80, is allowed).
pub(crate) fn is_field_value(v: &[u8]) -> bool {
    v.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

/// Whether `s` is printable ASCII without spaces (a request target or a host).
pub(crate) fn is_visible_ascii(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| (0x21..0x7f).contains(&b))
}

/// Whether every extra header is well formed and none is one of `reserved`.
pub(crate) fn headers_ok(headers: &[(&str, &[u8])], reserved: &[&str]) -> bool {
    headers.iter().all(|(name, value)| {
        is_token(name.as_bytes())
            && is_field_value(value)
            && !reserved.iter().any(|r| super::eq_ignore_case(r, name))
    })
}

/// Whether each item is a non-empty field value. Used for extension offers, which carry
/// parameters and so are not tokens.
pub(crate) fn items_ok(items: &[&str]) -> bool {
    items
        .iter()
        .all(|item| !item.trim_ascii().is_empty() && is_field_value(item.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_small_writes_nothing() {
        let emit = |c: &mut Cursor<'_>| {
            c.str("HTTP/1.1 ");
            c.decimal(404);
            c.header("X", b"y");
            c.list("L", None, &["a", "b"]);
            c.list("M", None, &[]);
            c.end();
        };
        let mut small = [0xAAu8; 20];
        assert_eq!(
            write_head(&mut small, emit),
            Err(WriteError::BufferTooSmall { needed: 29 })
        );
        assert_eq!(small, [0xAA; 20]);
        let mut exact = [0u8; 29];
        assert_eq!(write_head(&mut exact, emit), Ok(29));
        assert_eq!(&exact, b"HTTP/1.1 404X: y\r\nL: a, b\r\n\r\n");
    }

    #[test]
    fn decimal() {
        for (n, text) in [(0u32, "0"), (7, "7"), (426, "426"), (65535, "65535")] {
            let mut buf = [0u8; 16];
            let len = write_head(&mut buf, |c| c.decimal(n)).unwrap();
            assert_eq!(&buf[..len], text.as_bytes());
        }
        let mut buf = [0u8; 16];
        let len = write_head(&mut buf, |c| c.decimal(u32::MAX)).unwrap();
        assert_eq!(&buf[..len], b"4294967295");
    }

    #[test]
    fn validators() {
        assert!(is_token(b"Sec-WebSocket-Protocol"));
        assert!(!is_token(b""));
        assert!(!is_token(b"a b"));
        assert!(!is_token(b"a:b"));
        assert!(is_field_value(b"Basic abc=\t\xff"));
        assert!(!is_field_value(b"a\r\nX-Injected: 1"));
        assert!(!is_field_value(b"a\0"));
        assert!(is_visible_ascii(b"/chat?x=1"));
        assert!(!is_visible_ascii(b"/a b"));
        assert!(!is_visible_ascii(b""));
        assert!(headers_ok(&[("Origin", b"http://a")], &["host"]));
        assert!(!headers_ok(&[("HOST", b"a")], &["host"]));
        assert!(!headers_ok(&[("Bad Name", b"a")], &[]));
        assert!(items_ok(&["permessage-deflate; client_max_window_bits"]));
        assert!(!items_ok(&[" "]));
        assert!(!items_ok(&["a\nb"]));
    }

    #[test]
    fn error_display() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            WriteError::from(BufferTooSmall { needed: 3 }).to_string(),
            "output buffer too small: 3 bytes needed"
        );
        assert_eq!(WriteError::BufferTooSmall { needed: 3 }.needed(), Some(3));
        assert_eq!(WriteError::InvalidField.needed(), None);
    }
}
