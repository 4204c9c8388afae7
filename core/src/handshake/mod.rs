//! The HTTP/1.1 upgrade handshake (RFC 6455 §4), both roles, as pure functions.
//!
//! Nothing here reads a socket, a clock or an RNG, and nothing allocates: parsers work over
//! the caller's bytes and header array (as [`httparse`] does) and writers fill the caller's
//! output buffer.
//!
//! - Server: [`parse_request`] returns [`Status::Partial`](crate::Status::Partial) until the
//!   request head is complete, then a validated [`UpgradeRequest`] or a [`RequestError`] whose
//!   [`rejection`](RequestError::rejection) is the HTTP response to send.
//!   [`UpgradeRequest::accept`] writes the `101 Switching Protocols` response; an application
//!   that turns a valid request down (401, 403, 404 ...) writes a [`Rejection::custom`].
//! - Client: [`ClientHandshake`] writes the `GET` request for a [`ClientRequest`] (see [`Url`]
//!   to build one from `ws://` / `wss://` URLs) and parses the server's [`Response`].
//!
//! Writers either write the whole head and return its length, or write nothing and return a
//! [`WriteError`] (most often [`WriteError::BufferTooSmall`] with the size needed).
//!
//! ```
//! use sockeye_proto::handshake::{
//!     parse_request, Accept, ClientHandshake, ClientRequest, Response, EMPTY_HEADER,
//! };
//! use sockeye_proto::Status;
//!
//! // Client: write the upgrade request (the nonce comes from the caller's RNG).
//! let client = ClientHandshake::new([7; 16]);
//! let request = ClientRequest::new("example.com", "/chat").with_protocols(&["chat"]);
//! let mut wire = [0u8; 512];
//! let n = client.write_request(&request, &mut wire).unwrap();
//!
//! // Server: parse it and accept with the offered subprotocol.
//! let mut headers = [EMPTY_HEADER; 32];
//! let Status::Complete(upgrade) = parse_request(&wire[..n], &mut headers).unwrap() else {
//!     panic!("the request is complete");
//! };
//! assert_eq!(upgrade.path(), "/chat");
//! let protocol = upgrade.select_protocol(&["superchat", "chat"]);
//! let mut reply = [0u8; 512];
//! let m = upgrade.accept(&Accept::new().with_protocol(protocol), &mut reply).unwrap();
//!
//! // Client: check the server's answer.
//! let mut headers = [EMPTY_HEADER; 32];
//! match client.parse_response(&request, &reply[..m], &mut headers).unwrap() {
//!     Status::Complete(Response::Accepted(accepted)) => {
//!         assert_eq!(accepted.protocol(), Some("chat"));
//!         assert_eq!(accepted.consumed(), m);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

pub mod body;
pub mod client;
pub mod date;
pub mod key;
pub mod server;
pub mod url;
pub(crate) mod write;

pub use client::{Accepted, ClientHandshake, ClientRequest, Rejected, Response, ResponseError};
pub use httparse::{Header, EMPTY_HEADER};
pub use key::AcceptKey;
pub use server::{
    parse_request, parse_request_with, validate_extended_connect, validate_request, Accept,
    Rejection, RequestError, UpgradeRequest,
};
pub use url::{Url, UrlError};
pub use write::WriteError;

/// The only `Sec-WebSocket-Version` this crate speaks (RFC 6455).
pub const VERSION: u8 = 13;

/// Limits applied while parsing a request or response head, and to the body of a
/// rejection the client keeps.
///
/// ```
/// use sockeye_proto::handshake::HeadLimits;
///
/// let limits = HeadLimits::DEFAULT
///     .with_max_head_bytes(2048)
///     .with_max_rejection_body(0);
/// assert_eq!(limits.max_head_bytes, 2048);
/// assert_eq!(limits.max_rejection_body, 0);
/// assert_eq!(HeadLimits::default().max_head_bytes, 8 * 1024);
/// assert_eq!(HeadLimits::default().max_rejection_body, 64 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeadLimits {
    /// The largest head accepted, in bytes, from the first byte up to and including the empty
    /// line that ends it. A head still incomplete after this many bytes is an error at once
    /// (431 for a request), so a peer cannot make the caller buffer forever.
    pub max_head_bytes: usize,
    /// The most body bytes a client keeps from a server's rejection (`401` with a JSON
    /// error, `503` with a maintenance page); a longer body is cut there. `0`: the body
    /// is not read at all. Used by the driver's `ClientUpgrade`, not by the parsers.
    pub max_rejection_body: usize,
}

impl HeadLimits {
    /// 8 KiB heads, 64 KiB of a rejection's body.
    pub const DEFAULT: HeadLimits = HeadLimits {
        max_head_bytes: 8 * 1024,
        max_rejection_body: 64 * 1024,
    };

    /// These limits with another head size limit.
    pub const fn with_max_head_bytes(mut self, max_head_bytes: usize) -> Self {
        self.max_head_bytes = max_head_bytes;
        self
    }

    /// These limits with another limit on a rejection's body.
    pub const fn with_max_rejection_body(mut self, max_rejection_body: usize) -> Self {
        self.max_rejection_body = max_rejection_body;
        self
    }
}

impl Default for HeadLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The outcome of running `httparse` over at most `max_head_bytes` of `buf`.
pub(crate) enum Head {
    /// Nothing to report yet: more bytes are needed.
    Partial,
    /// The head is longer than the limit.
    TooLarge,
}

/// Decides what an incomplete parse means: wait for more bytes, or give up because the head
/// already reached the limit without ending.
pub(crate) fn incomplete(buf_len: usize, limits: &HeadLimits) -> Head {
    if buf_len >= limits.max_head_bytes {
        Head::TooLarge
    } else {
        Head::Partial
    }
}

/// The part of `buf` the parser may look at.
pub(crate) fn window<'b>(buf: &'b [u8], limits: &HeadLimits) -> &'b [u8] {
    &buf[..buf.len().min(limits.max_head_bytes)]
}

/// ASCII case-insensitive equality, of header names and list tokens. Not inlined: the
/// handshake compares names in many places, and one loop is smaller than one at each.
#[inline(never)]
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The value of the first header called `name` (ASCII case-insensitive).
pub(crate) fn find<'b>(headers: &[Header<'b>], name: &str) -> Option<&'b [u8]> {
    headers
        .iter()
        .find(|h| eq_ignore_case(h.name, name))
        .map(|h| h.value)
}

/// A header that may appear at most once appears more than once.
pub(crate) struct Repeated;

/// The trimmed value of the header called `name` (ASCII case-insensitive) that may appear
/// at most once: `None` when it is absent, [`Repeated`] when it appears more than once.
/// Both roles check their single-valued headers with it.
pub(crate) fn single<'b>(headers: &[Header<'b>], name: &str) -> Result<Option<&'b [u8]>, Repeated> {
    let mut found = None;
    for header in headers {
        if eq_ignore_case(header.name, name) {
            if found.is_some() {
                return Err(Repeated);
            }
            found = Some(trim(header.value));
        }
    }
    Ok(found)
}

/// Whether the comma-separated lists of every `name` header hold `token` (case-insensitive).
pub(crate) fn has_token(headers: &[Header<'_>], name: &'static str, token: &str) -> bool {
    TokenList::new(headers, name).any(|t| eq_ignore_case(t, token))
}

/// The name of a list item such as an extension offer: the part before the first `;`,
/// trimmed (`permessage-deflate; client_max_window_bits` → `permessage-deflate`).
pub(crate) fn item_name(item: &str) -> &str {
    // A byte search: `;` is ASCII, and smaller code than `split_once`'s char searcher.
    let end = item.bytes().position(|b| b == b';').unwrap_or(item.len());
    // The trimmed bytes of a `str` cut at an ASCII byte are UTF-8: `from_utf8` only
    // checks again, in less code than trimming the `str` itself here.
    core::str::from_utf8(trim(&item.as_bytes()[..end])).unwrap_or_default()
}

/// `bytes` without leading and trailing ASCII whitespace. Not inlined: the handshake
/// trims in several places.
#[inline(never)]
pub(crate) fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// The items of a comma-separated header list, across every header line of that name.
///
/// Items are trimmed; empty items (`a,,b`, a trailing comma) are skipped, and so are items that
/// are not UTF-8. Commas inside a quoted string (`ext; p="a,b"`) do not split. Returned by
/// [`UpgradeRequest::protocols`], [`UpgradeRequest::extensions`] and
/// [`Accepted::extensions`].
///
/// ```
/// use sockeye_proto::handshake::{Header, TokenList};
///
/// let headers = [
///     Header { name: "Sec-WebSocket-Protocol", value: b" chat, ,superchat " },
///     Header { name: "Host", value: b"example.com" },
///     Header { name: "sec-websocket-protocol", value: b"v2.chat" },
/// ];
/// let list = TokenList::new(&headers, "Sec-WebSocket-Protocol");
/// assert!(list.eq(["chat", "superchat", "v2.chat"]));
/// ```
#[derive(Clone, Debug)]
pub struct TokenList<'h, 'b> {
    headers: core::slice::Iter<'h, Header<'b>>,
    name: &'static str,
    items: Items<'b>,
}

impl<'h, 'b> TokenList<'h, 'b> {
    /// The items of every header called `name` (ASCII case-insensitive) in `headers`.
    pub fn new(headers: &'h [Header<'b>], name: &'static str) -> Self {
        TokenList {
            headers: headers.iter(),
            name,
            items: Items::new(&[]),
        }
    }
}

impl<'b> Iterator for TokenList<'_, 'b> {
    type Item = &'b str;

    fn next(&mut self) -> Option<&'b str> {
        loop {
            if let Some(item) = self.items.next() {
                return Some(item);
            }
            let name = self.name;
            let header = self.headers.find(|h| eq_ignore_case(h.name, name))?;
            self.items = Items::new(header.value);
        }
    }
}

/// The items of one comma-separated list (trimmed; empty and non-UTF-8 items skipped; commas
/// inside quoted strings do not split).
#[derive(Clone, Debug)]
pub(crate) struct Items<'b> {
    raw: RawItems<'b>,
}

impl<'b> Items<'b> {
    pub(crate) fn new(list: &'b [u8]) -> Self {
        Items {
            raw: RawItems::new(list),
        }
    }
}

impl<'b> Iterator for Items<'b> {
    type Item = &'b str;

    fn next(&mut self) -> Option<&'b str> {
        self.raw.find_map(|item| core::str::from_utf8(item).ok())
    }
}

/// The items of one comma-separated list as bytes (trimmed; empty items skipped; commas inside
/// quoted strings do not split).
#[derive(Clone, Debug)]
pub(crate) struct RawItems<'b> {
    rest: &'b [u8],
}

impl<'b> RawItems<'b> {
    pub(crate) fn new(list: &'b [u8]) -> Self {
        RawItems { rest: list }
    }
}

impl<'b> Iterator for RawItems<'b> {
    type Item = &'b [u8];

    fn next(&mut self) -> Option<&'b [u8]> {
        while !self.rest.is_empty() {
            let (item, rest) = split_item(self.rest);
            self.rest = rest;
            let item = trim(item);
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    }
}

/// Splits `list` at its first comma outside a quoted string: (item, rest after the comma).
fn split_item(list: &[u8]) -> (&[u8], &[u8]) {
    match unquoted(list, b',') {
        Some(i) => (&list[..i], &list[i + 1..]),
        None => (list, &[]),
    }
}

/// Where the first `separator` outside a quoted string (RFC 9110 §5.6.4, with its
/// backslash escapes) is in `bytes`.
pub(crate) fn unquoted(bytes: &[u8], separator: u8) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == separator && !quoted {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list<'b>(headers: &[Header<'b>], name: &'static str) -> ([&'b str; 8], usize) {
        let mut out = [""; 8];
        let mut n = 0;
        for item in TokenList::new(headers, name) {
            out[n] = item;
            n += 1;
        }
        (out, n)
    }

    #[test]
    fn token_lists_split_trim_and_skip_empty_items() {
        let headers = [
            Header {
                name: "Connection",
                value: b"keep-alive,  Upgrade ,",
            },
            Header {
                name: "X",
                value: b"ignored",
            },
            Header {
                name: "CONNECTION",
                value: b"",
            },
            Header {
                name: "connection",
                value: b",,\t close\t",
            },
        ];
        let (items, n) = list(&headers, "connection");
        assert_eq!(&items[..n], ["keep-alive", "Upgrade", "close"]);
        assert!(has_token(&headers, "Connection", "upgrade"));
        assert!(!has_token(&headers, "Connection", "websocket"));
        assert!(single(&headers, "connection").is_err());
        assert_eq!(single(&headers, "x").ok(), Some(Some(&b"ignored"[..])));
        assert_eq!(single(&headers, "missing").ok(), Some(None));
        assert_eq!(find(&headers, "x"), Some(&b"ignored"[..]));
        assert_eq!(find(&headers, "missing"), None);
    }

    #[test]
    fn token_lists_keep_quoted_commas_and_skip_non_utf8() {
        let headers = [Header {
            name: "Sec-WebSocket-Extensions",
            value: b"a; p=\"x,\\\"y\", \xff\xfe, b",
        }];
        let (items, n) = list(&headers, "sec-websocket-extensions");
        assert_eq!(&items[..n], ["a; p=\"x,\\\"y\"", "b"]);
        assert_eq!(item_name(items[0]), "a");
        assert_eq!(item_name(" b "), "b");
    }

    #[test]
    fn limits() {
        let limits = HeadLimits::DEFAULT.with_max_head_bytes(4);
        assert_eq!(window(b"abcdef", &limits), b"abcd");
        assert_eq!(window(b"ab", &limits), b"ab");
        assert!(matches!(incomplete(3, &limits), Head::Partial));
        assert!(matches!(incomplete(4, &limits), Head::TooLarge));
    }
}
