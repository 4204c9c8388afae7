//! The server side: parse and validate the client's upgrade request (RFC 6455 §4.2.1), then
//! accept it (§4.2.2) or write the HTTP response that turns it down.

use core::fmt;

use super::key::{is_valid_key, AcceptKey};
use super::write::{headers_ok, is_field_value, items_ok, write_head, WriteError};
use super::{
    eq_ignore_case, find, has_token, incomplete, item_name, window, Head, HeadLimits, Header,
    Items, TokenList,
};
use crate::extension::{
    deflate_offers, negotiate, DeflateConfig, DeflateOffers, DeflateParams, ExtensionHeader,
};
use crate::Status;

/// Parses a client's upgrade request with the [default limits](HeadLimits::DEFAULT) (8 KiB
/// head).
///
/// Returns [`Status::Partial`] while the head is incomplete (call again with more bytes), the
/// validated [`UpgradeRequest`] once it is complete, or a [`RequestError`] whose
/// [`rejection`](RequestError::rejection) is the response to send. `headers` receives the
/// parsed header lines (as in `httparse`); more header lines than it holds is
/// [`RequestError::TooManyHeaders`] (431). Bytes after the head (frames the client sent early)
/// are not consumed: they start at [`UpgradeRequest::head_len`].
///
/// ```
/// use sockeye_proto::handshake::{parse_request, RequestError, EMPTY_HEADER};
/// use sockeye_proto::Status;
///
/// let request = b"GET /chat?room=1 HTTP/1.1\r\n\
///     Host: example.com\r\n\
///     Upgrade: websocket\r\n\
///     Connection: keep-alive, Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\
///     Sec-WebSocket-Protocol: chat, superchat\r\n\
///     \r\n\x81\x80";
/// let mut headers = [EMPTY_HEADER; 16];
///
/// // Not all there yet.
/// assert_eq!(parse_request(&request[..40], &mut headers), Ok(Status::Partial));
///
/// let Status::Complete(upgrade) = parse_request(request, &mut headers).unwrap() else {
///     panic!("complete");
/// };
/// assert_eq!(upgrade.path(), "/chat?room=1");
/// assert_eq!(upgrade.query(), Some("room=1"));
/// assert_eq!(upgrade.host(), "example.com");
/// assert!(upgrade.protocols().eq(["chat", "superchat"]));
/// assert_eq!(upgrade.head_len(), request.len() - 2); // the early frame bytes stay
///
/// // A plain HTTP request is turned down with 400.
/// let plain = b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
/// let error = parse_request(plain, &mut headers).unwrap_err();
/// assert_eq!(error, RequestError::NotUpgrade);
/// assert_eq!(error.rejection().status(), 400);
/// ```
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
) -> Result<Status<UpgradeRequest<'h, 'b>>, RequestError> {
    parse_request_with(buf, headers, HeadLimits::DEFAULT)
}

/// [`parse_request`] with explicit limits.
///
/// A head that has not ended within `limits.max_head_bytes` is
/// [`RequestError::HeadTooLarge`] (431) as soon as that many bytes are buffered.
///
/// ```
/// use sockeye_proto::handshake::{parse_request_with, HeadLimits, RequestError, EMPTY_HEADER};
///
/// let limits = HeadLimits::DEFAULT.with_max_head_bytes(32);
/// let mut headers = [EMPTY_HEADER; 16];
/// let long = b"GET / HTTP/1.1\r\nHost: a-rather-long-host-name.example\r\n";
/// assert_eq!(
///     parse_request_with(long, &mut headers, limits),
///     Err(RequestError::HeadTooLarge)
/// );
/// ```
pub fn parse_request_with<'h, 'b>(
    buf: &'b [u8],
    headers: &'h mut [Header<'b>],
    limits: HeadLimits,
) -> Result<Status<UpgradeRequest<'h, 'b>>, RequestError> {
    let mut request = httparse::Request::new(headers);
    let head_len = match request.parse(window(buf, &limits)) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return match incomplete(buf.len(), &limits) {
                Head::Partial => Ok(Status::Partial),
                Head::TooLarge => Err(RequestError::HeadTooLarge),
            }
        }
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::TooManyHeaders),
        Err(_) => return Err(RequestError::Malformed),
    };
    let method = request.method.unwrap_or_default();
    let path = request.path.unwrap_or_default();
    let minor_version = request.version.unwrap_or_default();
    let headers: &'h [Header<'b>] = request.headers;
    validate(method, path, minor_version, headers, head_len).map(Status::Complete)
}

/// Validates an upgrade request whose head was parsed by another HTTP implementation
/// (hyper, an embedded server), by the same rules as [`parse_request`].
///
/// `target` is the request target as sent (`/chat?room=1`) and `minor_version` the `x` of
/// `HTTP/1.x`; `headers` are the request's header lines, in any case. The result's
/// [`head_len`](UpgradeRequest::head_len) is 0.
///
/// ```
/// use sockeye_proto::handshake::{validate_request, Header, RequestError};
///
/// let headers = [
///     Header { name: "host", value: b"example.com" },
///     Header { name: "upgrade", value: b"websocket" },
///     Header { name: "connection", value: b"Upgrade" },
///     Header { name: "sec-websocket-key", value: b"dGhlIHNhbXBsZSBub25jZQ==" },
///     Header { name: "sec-websocket-version", value: b"13" },
/// ];
/// let upgrade = validate_request("GET", "/chat", 1, &headers).unwrap();
/// assert_eq!(upgrade.accept_key().unwrap().as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
///
/// // An upgrade with another method is answered 405, a plain POST 400.
/// let error = validate_request("POST", "/chat", 1, &headers).unwrap_err();
/// assert_eq!(error.rejection().status(), 405);
/// let error = validate_request("POST", "/chat", 1, &headers[..1]).unwrap_err();
/// assert_eq!(error, RequestError::NotUpgrade);
/// ```
pub fn validate_request<'h, 'b>(
    method: &'b str,
    target: &'b str,
    minor_version: u8,
    headers: &'h [Header<'b>],
) -> Result<UpgradeRequest<'h, 'b>, RequestError> {
    validate(method, target, minor_version, headers, 0)
}

/// Validates a WebSocket request made with HTTP/2's extended CONNECT (RFC 8441 §4–5), or
/// HTTP/3's (RFC 9220, the same fields), from its pseudo-header and header fields: the
/// same rules as an HTTP/1.1 upgrade where they apply (`Sec-WebSocket-Version: 13`,
/// subprotocol and extension offers, `Origin`), without `Sec-WebSocket-Key`.
///
/// `method` is `:method` (it must be `CONNECT`), `protocol` is `:protocol` (it must be
/// `websocket`), `target` is `:path` and `authority` is `:authority` (or, without it, the
/// `host` header is used). `headers` are the regular fields. The answer is `200` with the
/// fields of [`UpgradeRequest::answer`]; the stream then carries the WebSocket frames.
///
/// ```
/// use sockeye_proto::handshake::{validate_extended_connect, Accept, Header};
///
/// let headers = [
///     Header { name: "sec-websocket-version", value: b"13" },
///     Header { name: "sec-websocket-protocol", value: b"chat" },
/// ];
/// let upgrade = validate_extended_connect(
///     "CONNECT", Some("websocket"), "/chat", Some("example.com"), &headers,
/// ).unwrap();
/// assert!(upgrade.is_extended_connect());
/// assert_eq!(upgrade.key(), None);
///
/// let mut fields = Vec::new();
/// let accept = Accept::new().with_protocol(upgrade.select_protocol(&["chat"]));
/// let status = upgrade
///     .answer(&accept, |name, value| fields.push((name.to_owned(), value.to_vec())))
///     .unwrap();
/// assert_eq!(status, 200);
/// assert_eq!(fields, [("Sec-WebSocket-Protocol".to_owned(), b"chat".to_vec())]);
/// ```
pub fn validate_extended_connect<'h, 'b>(
    method: &'b str,
    protocol: Option<&'b str>,
    target: &'b str,
    authority: Option<&'b str>,
    headers: &'h [Header<'b>],
) -> Result<UpgradeRequest<'h, 'b>, RequestError> {
    if !protocol.is_some_and(|p| p.eq_ignore_ascii_case("websocket")) {
        return Err(RequestError::NotUpgrade);
    }
    if method != "CONNECT" {
        return Err(RequestError::MethodNotConnect);
    }
    if target.is_empty() {
        return Err(RequestError::Malformed);
    }
    let host = match authority {
        Some(authority) => authority.as_bytes(),
        None => single(headers, "Host")?.ok_or(RequestError::MissingHost)?,
    };
    let host = match core::str::from_utf8(host.trim_ascii()) {
        Ok(host) if !host.is_empty() => host,
        _ => return Err(RequestError::InvalidHost),
    };
    check_version(headers)?;
    Ok(UpgradeRequest {
        path: target,
        host,
        key: None,
        origin: origin(headers)?,
        headers,
        head_len: 0,
    })
}

/// RFC 6455 §4.2.1, in the order that picks the most helpful response: a request that is
/// no upgrade at all is told so (400) whatever its method; an upgrade with the wrong
/// method gets 405.
fn validate<'h, 'b>(
    method: &'b str,
    path: &'b str,
    minor_version: u8,
    headers: &'h [Header<'b>],
    head_len: usize,
) -> Result<UpgradeRequest<'h, 'b>, RequestError> {
    if !has_token(headers, "Upgrade", "websocket") {
        return Err(RequestError::NotUpgrade);
    }
    if method != "GET" {
        return Err(RequestError::MethodNotGet);
    }
    if minor_version != 1 {
        return Err(RequestError::HttpVersion);
    }
    if !has_token(headers, "Connection", "upgrade") {
        return Err(RequestError::ConnectionNotUpgrade);
    }

    let host = single(headers, "Host")?.ok_or(RequestError::MissingHost)?;
    let host = match core::str::from_utf8(host) {
        Ok(host) if !host.is_empty() => host,
        _ => return Err(RequestError::InvalidHost),
    };

    check_version(headers)?;

    let key = single(headers, "Sec-WebSocket-Key")?.ok_or(RequestError::MissingKey)?;
    if !is_valid_key(key) {
        return Err(RequestError::InvalidKey);
    }
    // A valid key is 24 base64 characters.
    let key = core::str::from_utf8(key).map_err(|_| RequestError::InvalidKey)?;

    Ok(UpgradeRequest {
        path,
        host,
        key: Some(key),
        origin: origin(headers)?,
        headers,
        head_len,
    })
}

fn check_version(headers: &[Header<'_>]) -> Result<(), RequestError> {
    let version = single(headers, "Sec-WebSocket-Version")?.ok_or(RequestError::MissingVersion)?;
    if version != b"13" {
        return Err(RequestError::UnsupportedVersion);
    }
    Ok(())
}

fn origin<'b>(headers: &[Header<'b>]) -> Result<Option<&'b str>, RequestError> {
    match single(headers, "Origin")? {
        Some(origin) => Ok(Some(
            core::str::from_utf8(origin).map_err(|_| RequestError::InvalidOrigin)?,
        )),
        None => Ok(None),
    }
}

/// The trimmed value of a header that may appear at most once.
fn single<'b>(headers: &[Header<'b>], name: &str) -> Result<Option<&'b [u8]>, RequestError> {
    super::single(headers, name).map_err(|_| RequestError::DuplicateHeader)
}

/// Why a request is not an acceptable WebSocket upgrade: one variant per cause.
///
/// [`rejection`](RequestError::rejection) is the HTTP response to send before closing:
///
/// | error | response |
/// | --- | --- |
/// | [`MissingVersion`](Self::MissingVersion) | [`Rejection::BAD_REQUEST_WITH_VERSION`]: 400 + `Sec-WebSocket-Version: 13` |
/// | [`UnsupportedVersion`](Self::UnsupportedVersion) | [`Rejection::UPGRADE_REQUIRED`]: 426 |
/// | [`MethodNotGet`](Self::MethodNotGet) | [`Rejection::METHOD_NOT_ALLOWED`]: 405 + `Allow: GET` |
/// | [`MethodNotConnect`](Self::MethodNotConnect) | [`Rejection::CONNECT_ONLY`]: 405 + `Allow: CONNECT` |
/// | [`HeadTooLarge`](Self::HeadTooLarge), [`TooManyHeaders`](Self::TooManyHeaders) | [`Rejection::REQUEST_HEADER_FIELDS_TOO_LARGE`]: 431 |
/// | every other variant | [`Rejection::BAD_REQUEST`]: 400 |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestError {
    /// The bytes are not an HTTP/1.x request head.
    Malformed,
    /// The head did not end within the head size limit.
    HeadTooLarge,
    /// The head has more header lines than the caller's header array holds.
    TooManyHeaders,
    /// An HTTP/1.1 upgrade whose method is not `GET`.
    MethodNotGet,
    /// An extended CONNECT for `websocket` (HTTP/2, RFC 8441) whose method is not `CONNECT`.
    MethodNotConnect,
    /// The request is not HTTP/1.1 (HTTP/1.0, for instance).
    HttpVersion,
    /// No `Upgrade` header lists `websocket`: a plain HTTP request.
    NotUpgrade,
    /// No `Connection` header lists `upgrade`.
    ConnectionNotUpgrade,
    /// No `Host` header.
    MissingHost,
    /// The `Host` header is empty or not UTF-8.
    InvalidHost,
    /// `Host`, `Origin`, `Sec-WebSocket-Key` or `Sec-WebSocket-Version` appears more than once.
    DuplicateHeader,
    /// No `Sec-WebSocket-Version` header.
    MissingVersion,
    /// `Sec-WebSocket-Version` is not `13`.
    UnsupportedVersion,
    /// No `Sec-WebSocket-Key` header.
    MissingKey,
    /// `Sec-WebSocket-Key` is not the base64 of exactly 16 bytes.
    InvalidKey,
    /// The `Origin` header is not UTF-8.
    InvalidOrigin,
}

impl RequestError {
    /// The HTTP response to send for this error (see the table on [`RequestError`]).
    pub const fn rejection(&self) -> Rejection<'static> {
        // A table copied from, rather than each answer built in its own arm of the match:
        // smaller code.
        const ANSWERS: [Rejection<'static>; 6] = [
            Rejection::BAD_REQUEST,
            Rejection::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Rejection::BAD_REQUEST_WITH_VERSION,
            Rejection::UPGRADE_REQUIRED,
            Rejection::METHOD_NOT_ALLOWED,
            Rejection::CONNECT_ONLY,
        ];
        ANSWERS[match self {
            RequestError::HeadTooLarge | RequestError::TooManyHeaders => 1,
            RequestError::MissingVersion => 2,
            RequestError::UnsupportedVersion => 3,
            RequestError::MethodNotGet => 4,
            RequestError::MethodNotConnect => 5,
            RequestError::Malformed
            | RequestError::HttpVersion
            | RequestError::NotUpgrade
            | RequestError::ConnectionNotUpgrade
            | RequestError::MissingHost
            | RequestError::InvalidHost
            | RequestError::DuplicateHeader
            | RequestError::MissingKey
            | RequestError::InvalidKey
            | RequestError::InvalidOrigin => 0,
        }]
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RequestError::Malformed => "malformed HTTP request",
            RequestError::HeadTooLarge => "request head too large",
            RequestError::TooManyHeaders => "too many request headers",
            RequestError::MethodNotGet => "upgrade request method is not GET",
            RequestError::MethodNotConnect => "extended CONNECT for websocket is not a CONNECT",
            RequestError::HttpVersion => "upgrade request is not HTTP/1.1",
            RequestError::NotUpgrade => "not a WebSocket upgrade (no `Upgrade: websocket`)",
            RequestError::ConnectionNotUpgrade => "`Connection` header does not list `upgrade`",
            RequestError::MissingHost => "missing `Host` header",
            RequestError::InvalidHost => "empty or non-UTF-8 `Host` header",
            RequestError::DuplicateHeader => "repeated single-valued header",
            RequestError::MissingVersion => "missing `Sec-WebSocket-Version` header",
            RequestError::UnsupportedVersion => "unsupported `Sec-WebSocket-Version` (not 13)",
            RequestError::MissingKey => "missing `Sec-WebSocket-Key` header",
            RequestError::InvalidKey => "`Sec-WebSocket-Key` is not base64 of 16 bytes",
            RequestError::InvalidOrigin => "non-UTF-8 `Origin` header",
        })
    }
}

impl core::error::Error for RequestError {}

/// A validated WebSocket upgrade request, borrowing the caller's buffer (`'b`) and header
/// array (`'h`).
///
/// Every method is `GET`, every version HTTP/1.1 and `Sec-WebSocket-Version` 13; the key is
/// valid. Returned by [`parse_request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpgradeRequest<'h, 'b> {
    path: &'b str,
    host: &'b str,
    /// `None` for an extended CONNECT, which has no key.
    key: Option<&'b str>,
    origin: Option<&'b str>,
    headers: &'h [Header<'b>],
    head_len: usize,
}

/// The first of the `offered` subprotocols, in the client's order of preference, that
/// `supported` holds.
pub fn first_supported<'s, 'o>(
    offered: impl IntoIterator<Item = &'o str>,
    supported: &[&'s str],
) -> Option<&'s str> {
    offered
        .into_iter()
        .find_map(|offered| supported.iter().copied().find(|s| *s == offered))
}

impl<'h, 'b> UpgradeRequest<'h, 'b> {
    /// The request target as sent: the resource with its query (`/chat?room=1`).
    pub fn path(&self) -> &'b str {
        self.path
    }

    /// The query of [`path`](Self::path), after the first `?`, if any.
    pub fn query(&self) -> Option<&'b str> {
        self.path.split_once('?').map(|(_, query)| query)
    }

    /// The `Host` header value (trimmed; may include a port).
    pub fn host(&self) -> &'b str {
        self.host
    }

    /// The `Sec-WebSocket-Key` value (trimmed, 24 base64 characters); `None` for an
    /// extended CONNECT (HTTP/2), which has no key.
    pub fn key(&self) -> Option<&'b str> {
        self.key
    }

    /// Whether this is an extended CONNECT (HTTP/2 or HTTP/3, see
    /// [`validate_extended_connect`]) rather than an HTTP/1.1 upgrade: it is answered with
    /// [`answer`](Self::answer)'s fields and status 200, never with [`accept`](Self::accept).
    pub fn is_extended_connect(&self) -> bool {
        self.key.is_none()
    }

    /// The `Origin` header value (trimmed), sent by browsers; `None` if absent.
    pub fn origin(&self) -> Option<&'b str> {
        self.origin
    }

    /// The `Sec-WebSocket-Version` the client asked for: always [`VERSION`](super::VERSION).
    pub fn version(&self) -> u8 {
        super::VERSION
    }

    /// The subprotocols the client offers (`Sec-WebSocket-Protocol`), in its order of
    /// preference, across repeated header lines.
    pub fn protocols(&self) -> TokenList<'h, 'b> {
        TokenList::new(self.headers, "Sec-WebSocket-Protocol")
    }

    /// The extension offers (`Sec-WebSocket-Extensions`), each with its parameters
    /// (`permessage-deflate; client_max_window_bits`), across repeated header lines.
    pub fn extensions(&self) -> TokenList<'h, 'b> {
        TokenList::new(self.headers, "Sec-WebSocket-Extensions")
    }

    /// The permessage-deflate offers among [`extensions`](Self::extensions), each parsed
    /// (see [`deflate_offers`]).
    pub fn deflate_offers(&self) -> DeflateOffers<TokenList<'h, 'b>> {
        deflate_offers(self.extensions())
    }

    /// The permessage-deflate parameters to accept with: the answer to the first offer
    /// `config` can honour (see [`negotiate`]); give them to [`Accept::with_deflate`].
    ///
    /// ```
    /// # use sockeye_proto::handshake::{parse_request, Accept, EMPTY_HEADER};
    /// # use sockeye_proto::DeflateConfig;
    /// let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\n\
    ///     Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
    /// let mut headers = [EMPTY_HEADER; 16];
    /// let upgrade = parse_request(request, &mut headers).unwrap().complete().unwrap();
    /// let deflate = upgrade.negotiate_deflate(&DeflateConfig::default());
    /// let mut out = [0u8; 256];
    /// let n = upgrade.accept(&Accept::new().with_deflate(deflate), &mut out).unwrap();
    /// let response = core::str::from_utf8(&out[..n]).unwrap();
    /// assert!(response.contains(
    ///     "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
    ///      client_no_context_takeover\r\n"
    /// ));
    /// ```
    pub fn negotiate_deflate(&self, config: &DeflateConfig) -> Option<DeflateParams> {
        negotiate(self.extensions(), config)
    }

    /// The first subprotocol, in the client's order of preference, that `supported` holds.
    ///
    /// ```
    /// # use sockeye_proto::handshake::{parse_request, EMPTY_HEADER};
    /// # let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    /// #     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    /// #     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v2, v1\r\n\r\n";
    /// # let mut headers = [EMPTY_HEADER; 16];
    /// # let upgrade = parse_request(request, &mut headers).unwrap().complete().unwrap();
    /// // The client offered "v2, v1".
    /// assert_eq!(upgrade.select_protocol(&["v1", "v2"]), Some("v2"));
    /// assert_eq!(upgrade.select_protocol(&["v3"]), None);
    /// ```
    pub fn select_protocol<'s>(&self, supported: &[&'s str]) -> Option<&'s str> {
        first_supported(self.protocols(), supported)
    }

    /// Every header line of the request.
    pub fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }

    /// The value of the first header called `name` (ASCII case-insensitive), untrimmed.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        find(self.headers, name)
    }

    /// The length of the request head in bytes: what the handshake consumed. Bytes after it
    /// belong to the WebSocket connection.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// The `Sec-WebSocket-Accept` value for this request's key (`None` for an extended
    /// CONNECT).
    pub fn accept_key(&self) -> Option<AcceptKey> {
        self.key.map(|key| AcceptKey::derive(key.as_bytes()))
    }

    /// Writes the `101 Switching Protocols` response that completes the handshake into `out`
    /// and returns its length; on error nothing is written.
    ///
    /// The response holds `Upgrade: websocket`, `Connection: Upgrade`,
    /// `Sec-WebSocket-Accept`, then the chosen subprotocol and extensions if any (the
    /// permessage-deflate answer of [`Accept::deflate`] first), then the extra
    /// headers. Errors: [`WriteError::ProtocolNotOffered`] if the subprotocol is not one the
    /// client offered (exact match), [`WriteError::ExtensionNotOffered`] if an extension's name
    /// is not the name of an offer (case-insensitive), [`WriteError::InvalidField`] for
    /// [`Accept::deflate`] with a window size outside 8–15 or along with an extension string
    /// naming permessage-deflate, for an
    /// extra header that is malformed or one of `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Accept`, `Sec-WebSocket-Protocol`, `Sec-WebSocket-Extensions`,
    /// `Content-Length`, `Transfer-Encoding`, and [`WriteError::BufferTooSmall`].
    ///
    /// ```
    /// use sockeye_proto::handshake::{parse_request, Accept, EMPTY_HEADER};
    ///
    /// let request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
    ///     Upgrade: websocket\r\nConnection: Upgrade\r\n\
    ///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    /// let mut headers = [EMPTY_HEADER; 16];
    /// let upgrade = parse_request(request, &mut headers).unwrap().complete().unwrap();
    ///
    /// let mut out = [0u8; 256];
    /// let n = upgrade.accept(&Accept::new(), &mut out).unwrap();
    /// assert_eq!(
    ///     &out[..n],
    ///     b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    ///       Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    /// );
    /// ```
    pub fn accept(&self, accept: &Accept<'_>, out: &mut [u8]) -> Result<usize, WriteError> {
        let key = self.accept_key().ok_or(WriteError::ExtendedConnect)?;
        let deflate = self.check(accept)?;
        write_head(out, |c| {
            c.str(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
            );
            c.header("Sec-WebSocket-Accept", key.as_bytes());
            if let Some(protocol) = accept.protocol {
                c.header("Sec-WebSocket-Protocol", protocol.as_bytes());
            }
            let deflate = deflate.as_ref().map(|d| d.as_str());
            c.list("Sec-WebSocket-Extensions", deflate, accept.extensions);
            c.headers(accept.headers);
            c.end();
        })
    }

    /// The answer that completes the handshake as a status and header fields, for an HTTP
    /// implementation that writes responses itself (hyper, h2, an HTTP/3 stack): calls
    /// `field(name, value)` for each header field in order and returns the status, after
    /// the checks of [`accept`](Self::accept); on error no field is given.
    ///
    /// An HTTP/1.1 upgrade is answered `101` with `Upgrade`, `Connection` and
    /// `Sec-WebSocket-Accept`; an extended CONNECT `200` without them (RFC 8441 §5). Then
    /// come `Sec-WebSocket-Protocol`, one `Sec-WebSocket-Extensions` field per accepted
    /// extension list (the permessage-deflate answer first), and the extra headers.
    ///
    /// ```
    /// use sockeye_proto::handshake::{parse_request, Accept, EMPTY_HEADER};
    ///
    /// let request = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\n\
    ///     Upgrade: websocket\r\nConnection: Upgrade\r\n\
    ///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    /// let mut headers = [EMPTY_HEADER; 16];
    /// let upgrade = parse_request(request, &mut headers).unwrap().complete().unwrap();
    /// let mut names = Vec::new();
    /// let status = upgrade.answer(&Accept::new(), |name, _| names.push(name.to_owned())).unwrap();
    /// assert_eq!(status, 101);
    /// assert_eq!(names, ["Upgrade", "Connection", "Sec-WebSocket-Accept"]);
    /// ```
    pub fn answer(
        &self,
        accept: &Accept<'_>,
        mut field: impl FnMut(&str, &[u8]),
    ) -> Result<u16, WriteError> {
        let deflate = self.check(accept)?;
        let status = match self.accept_key() {
            Some(key) => {
                field("Upgrade", b"websocket");
                field("Connection", b"Upgrade");
                field("Sec-WebSocket-Accept", key.as_bytes());
                101
            }
            None => 200,
        };
        if let Some(protocol) = accept.protocol {
            field("Sec-WebSocket-Protocol", protocol.as_bytes());
        }
        if let Some(deflate) = &deflate {
            field("Sec-WebSocket-Extensions", deflate.as_str().as_bytes());
        }
        for list in accept.extensions {
            field("Sec-WebSocket-Extensions", list.as_bytes());
        }
        for (name, value) in accept.headers {
            field(name, value);
        }
        Ok(status)
    }

    /// The checks of [`accept`](Self::accept), and the permessage-deflate answer to give.
    fn check(&self, accept: &Accept<'_>) -> Result<Option<ExtensionHeader>, WriteError> {
        const RESERVED: &[&str] = &[
            "Upgrade",
            "Connection",
            "Sec-WebSocket-Accept",
            "Sec-WebSocket-Protocol",
            "Sec-WebSocket-Extensions",
            "Content-Length",
            "Transfer-Encoding",
        ];
        if !items_ok(accept.extensions) || !headers_ok(accept.headers, RESERVED) {
            return Err(WriteError::InvalidField);
        }
        let deflate = match accept.deflate {
            None => None,
            Some(_) if super::client::names_deflate(accept.extensions) => {
                return Err(WriteError::InvalidField)
            }
            Some(params) => {
                let asked = self
                    .deflate_offers()
                    .filter_map(Result::ok)
                    .any(|offer| offer.server_max_window_bits.is_some());
                Some(
                    params
                        .answer_stating(asked)
                        .ok_or(WriteError::InvalidField)?,
                )
            }
        };
        if let Some(protocol) = accept.protocol {
            if !self.protocols().any(|offered| offered == protocol) {
                return Err(WriteError::ProtocolNotOffered);
            }
        }
        let offered = |name: &str| {
            self.extensions()
                .any(|offer| eq_ignore_case(item_name(offer), name))
        };
        let mut accepted = accept
            .extensions
            .iter()
            .flat_map(|list| Items::new(list.as_bytes()));
        if !accepted.all(|item| offered(item_name(item)))
            || (deflate.is_some() && !offered(crate::extension::PERMESSAGE_DEFLATE))
        {
            return Err(WriteError::ExtensionNotOffered);
        }
        Ok(deflate)
    }
}

/// What the server accepts a request with: the chosen subprotocol and extensions and extra
/// response headers. Built with [`Accept::new`] and the `with_*` methods.
///
/// ```
/// use sockeye_proto::handshake::Accept;
///
/// let accept = Accept::new()
///     .with_protocol(Some("chat"))
///     .with_extensions(&["permessage-deflate; server_no_context_takeover"])
///     .with_headers(&[("Server", b"sockeye")]);
/// assert_eq!(accept.protocol, Some("chat"));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accept<'a> {
    /// The chosen subprotocol, one the client offered (see
    /// [`UpgradeRequest::select_protocol`]).
    pub protocol: Option<&'a str>,
    /// The accepted extensions with their parameters, written as one comma-separated
    /// `Sec-WebSocket-Extensions` header; each name must be one the client offered.
    pub extensions: &'a [&'a str],
    /// The agreed permessage-deflate parameters (see
    /// [`UpgradeRequest::negotiate_deflate`]), written as its answer
    /// ([`DeflateParams::answer`]); the client must have offered permessage-deflate.
    pub deflate: Option<DeflateParams>,
    /// Extra response headers (`Server`, `Set-Cookie` ...), written in order.
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> Accept<'a> {
    /// No subprotocol, no extensions, no extra headers.
    pub const fn new() -> Self {
        Accept {
            protocol: None,
            extensions: &[],
            deflate: None,
            headers: &[],
        }
    }

    /// With this subprotocol (or none).
    pub const fn with_protocol(mut self, protocol: Option<&'a str>) -> Self {
        self.protocol = protocol;
        self
    }

    /// With these extensions.
    pub const fn with_extensions(mut self, extensions: &'a [&'a str]) -> Self {
        self.extensions = extensions;
        self
    }

    /// With permessage-deflate on these parameters (or without, with `None`).
    pub const fn with_deflate(mut self, deflate: Option<DeflateParams>) -> Self {
        self.deflate = deflate;
        self
    }

    /// With these extra headers.
    pub const fn with_headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }
}

/// An HTTP response that turns a handshake down; the connection is closed after it.
///
/// [`RequestError::rejection`] picks one of the constants; an application that refuses a
/// valid request (authentication, unknown path, origin policy) builds its own with
/// [`Rejection::custom`].
///
/// ```
/// use sockeye_proto::handshake::Rejection;
///
/// let mut out = [0u8; 128];
/// let n = Rejection::UPGRADE_REQUIRED.write(&mut out).unwrap();
/// assert_eq!(
///     &out[..n],
///     b"HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
///       Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
/// );
///
/// let challenge: &[(&str, &[u8])] = &[("WWW-Authenticate", b"Bearer")];
/// let unauthorized = Rejection::custom(401, "Unauthorized", challenge);
/// let n = unauthorized.write(&mut out).unwrap();
/// assert_eq!(
///     &out[..n],
///     b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nConnection: close\r\n\
///       Content-Length: 0\r\n\r\n"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection<'a> {
    status: u16,
    reason: &'a str,
    headers: &'a [(&'a str, &'a [u8])],
    body: &'a [u8],
}

impl Rejection<'static> {
    /// `400 Bad Request`.
    pub const BAD_REQUEST: Rejection<'static> = Rejection::custom(400, "Bad Request", &[]);
    /// `400 Bad Request` with `Sec-WebSocket-Version: 13`, for a request without a version.
    pub const BAD_REQUEST_WITH_VERSION: Rejection<'static> =
        Rejection::custom(400, "Bad Request", &[("Sec-WebSocket-Version", b"13")]);
    /// `426 Upgrade Required` with `Upgrade: websocket`, `Connection: Upgrade, close` and
    /// `Sec-WebSocket-Version: 13`, for a version other than 13 (RFC 6455 §4.4).
    pub const UPGRADE_REQUIRED: Rejection<'static> = Rejection::custom(
        426,
        "Upgrade Required",
        &[
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade, close"),
            ("Sec-WebSocket-Version", b"13"),
        ],
    );
    /// `405 Method Not Allowed` with `Allow: GET`, for an upgrade with another method.
    pub const METHOD_NOT_ALLOWED: Rejection<'static> =
        Rejection::custom(405, "Method Not Allowed", &[("Allow", b"GET")]);
    /// `405 Method Not Allowed` with `Allow: CONNECT`, for an extended CONNECT's
    /// `:protocol` on another method.
    pub const CONNECT_ONLY: Rejection<'static> =
        Rejection::custom(405, "Method Not Allowed", &[("Allow", b"CONNECT")]);
    /// `431 Request Header Fields Too Large`.
    pub const REQUEST_HEADER_FIELDS_TOO_LARGE: Rejection<'static> =
        Rejection::custom(431, "Request Header Fields Too Large", &[]);
}

impl<'a> Rejection<'a> {
    /// A response with this status (200..=999), reason phrase and extra headers.
    ///
    /// Arguments are checked by [`write`](Self::write).
    pub const fn custom(status: u16, reason: &'a str, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        Rejection {
            status,
            reason,
            headers,
            body: &[],
        }
    }

    /// The same response with a body (an explanation for a person or a program: set its
    /// `Content-Type` among the extra headers). Empty by default.
    ///
    /// ```
    /// use sockeye_proto::handshake::Rejection;
    ///
    /// let json: &[(&str, &[u8])] = &[("Content-Type", b"application/json")];
    /// let rejection =
    ///     Rejection::custom(403, "Forbidden", json).with_body(br#"{"error":"origin"}"#);
    /// let mut out = [0u8; 256];
    /// let n = rejection.write(&mut out).unwrap();
    /// assert_eq!(
    ///     &out[..n],
    ///     b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\n\
    ///       Content-Length: 18\r\n\r\n{\"error\":\"origin\"}"
    /// );
    /// ```
    pub const fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// The status code.
    pub const fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase.
    pub const fn reason(&self) -> &'a str {
        self.reason
    }

    /// The extra headers.
    pub const fn headers(&self) -> &'a [(&'a str, &'a [u8])] {
        self.headers
    }

    /// The body (empty unless set with [`with_body`](Self::with_body)).
    pub const fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The checks of [`write`](Self::write), for an HTTP implementation that sends the
    /// status, headers and body itself: [`WriteError::InvalidField`] if they cannot be sent
    /// as given.
    pub fn check(&self) -> Result<(), WriteError> {
        const RESERVED: &[&str] = &["Content-Length", "Transfer-Encoding"];
        if !(200..=999).contains(&self.status)
            || !is_field_value(self.reason.as_bytes())
            || !headers_ok(self.headers, RESERVED)
            || u32::try_from(self.body.len()).is_err()
        {
            return Err(WriteError::InvalidField);
        }
        Ok(())
    }

    /// Writes the complete response into `out` and returns its length; on error nothing is
    /// written.
    ///
    /// The response is the status line, the extra headers, `Connection: close` (unless an
    /// extra header is a `Connection` header), `Content-Length` (0 without a body), the
    /// empty line and the body. Errors: [`WriteError::InvalidField`] for a status outside
    /// 200..=999, a reason phrase with control characters, a malformed extra header or one
    /// called `Content-Length` or `Transfer-Encoding`, a body over 4 GiB;
    /// [`WriteError::BufferTooSmall`].
    pub fn write(&self, out: &mut [u8]) -> Result<usize, WriteError> {
        self.check()?;
        let Ok(body_len) = u32::try_from(self.body.len()) else {
            return Err(WriteError::InvalidField);
        };
        let has_connection = self
            .headers
            .iter()
            .any(|(name, _)| eq_ignore_case(name, "Connection"));
        write_head(out, |c| {
            c.str("HTTP/1.1 ");
            c.decimal(u32::from(self.status));
            c.str(" ");
            c.str(self.reason);
            c.str("\r\n");
            c.headers(self.headers);
            if !has_connection {
                c.str("Connection: close\r\n");
            }
            c.str("Content-Length: ");
            c.decimal(body_len);
            c.str("\r\n");
            c.end();
            c.bytes(self.body);
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::handshake::EMPTY_HEADER;

    const VALID: &[u8] = b"GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\
        \r\n";

    fn parse(request: &[u8]) -> Result<Status<UpgradeRequest<'_, '_>>, RequestError> {
        // Leak a header array per call: tests only.
        let headers = std::boxed::Box::leak(std::boxed::Box::new([EMPTY_HEADER; 32]));
        parse_request(request, headers)
    }

    fn error(request: &[u8]) -> RequestError {
        parse(request).unwrap_err()
    }

    #[test]
    fn a_server_window_asked_for_is_stated_even_at_15() {
        let request = [
            &VALID[..VALID.len() - 2],
            b"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15\r\n\r\n",
        ]
        .concat();
        let upgrade = parse(&request).unwrap().complete().unwrap();
        let config = DeflateConfig::DEFAULT.with_context_takeover(15);
        let accept = Accept::new().with_deflate(upgrade.negotiate_deflate(&config));
        let mut out = [0u8; 512];
        let n = upgrade.accept(&accept, &mut out).unwrap();
        let text = core::str::from_utf8(&out[..n]).unwrap();
        assert!(
            text.contains(
                "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15\r\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn deflate_is_negotiated_across_header_lines() {
        let request = [
            &VALID[..VALID.len() - 2],
            b"Sec-WebSocket-Extensions: x-foo, permessage-deflate; bogus\r\n\
              Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10\", \
              permessage-deflate\r\n\r\n",
        ]
        .concat();
        let upgrade = parse(&request).unwrap().complete().unwrap();
        assert_eq!(upgrade.deflate_offers().count(), 3);
        let config = DeflateConfig::DEFAULT.with_context_takeover(15);
        let deflate = upgrade.negotiate_deflate(&config);
        assert_eq!(deflate.map(|d| d.client_max_window_bits), Some(10));
        let accept = Accept::new()
            .with_deflate(deflate)
            .with_extensions(&["x-foo"]);
        let mut out = [0u8; 512];
        let n = upgrade.accept(&accept, &mut out).unwrap();
        let text = core::str::from_utf8(&out[..n]).unwrap();
        assert!(
            text.contains(
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10, x-foo\r\n"
            ),
            "{text}"
        );

        // Answering what was not offered, twice, or with a bad window is refused.
        let plain = parse(VALID).unwrap().complete().unwrap();
        let bare = Accept::new().with_deflate(Some(DeflateParams::BARE));
        assert_eq!(
            plain.accept(&bare, &mut out),
            Err(WriteError::ExtensionNotOffered)
        );
        let twice = bare.with_extensions(&["permessage-deflate"]);
        assert_eq!(
            upgrade.accept(&twice, &mut out),
            Err(WriteError::InvalidField)
        );
        let wide = Accept::new().with_deflate(Some(DeflateParams {
            server_max_window_bits: 16,
            ..DeflateParams::BARE
        }));
        assert_eq!(
            upgrade.accept(&wide, &mut out),
            Err(WriteError::InvalidField)
        );
        // Without a policy that fits, nothing is agreed.
        let small = DeflateConfig {
            decompress_window_bits: 9,
            ..config
        };
        assert_eq!(plain.negotiate_deflate(&small), None, "no offer at all");
    }

    /// `VALID` with the header line starting with `name` replaced by `line` (or removed).
    fn with(name: &str, line: Option<&str>) -> std::vec::Vec<u8> {
        let text = core::str::from_utf8(VALID).unwrap();
        let mut out = std::string::String::new();
        for l in text.split_inclusive("\r\n") {
            if l.to_ascii_lowercase()
                .starts_with(&name.to_ascii_lowercase())
            {
                if let Some(line) = line {
                    out.push_str(line);
                    out.push_str("\r\n");
                }
            } else {
                out.push_str(l);
            }
        }
        out.into_bytes()
    }

    #[test]
    fn parses_the_rfc_example() {
        let request = parse(VALID).unwrap().complete().unwrap();
        assert_eq!(request.path(), "/chat");
        assert_eq!(request.query(), None);
        assert_eq!(request.host(), "server.example.com");
        assert_eq!(request.key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(request.origin(), Some("http://example.com"));
        assert_eq!(request.version(), 13);
        assert!(request.protocols().eq(["chat", "superchat"]));
        assert_eq!(request.extensions().count(), 0);
        assert_eq!(request.headers().len(), 7);
        assert_eq!(request.header("HOST"), Some(&b"server.example.com"[..]));
        assert_eq!(request.head_len(), VALID.len());
        assert_eq!(
            request.accept_key().unwrap().as_str(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn partial_until_complete_and_early_frames_stay() {
        for end in 0..VALID.len() {
            assert_eq!(parse(&VALID[..end]), Ok(Status::Partial), "prefix {end}");
        }
        let mut with_frame = VALID.to_vec();
        with_frame.extend_from_slice(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
        let request = parse(&with_frame).unwrap().complete().unwrap();
        assert_eq!(request.head_len(), VALID.len());
    }

    #[test]
    fn names_are_case_insensitive_values_trimmed_lists_tokenized() {
        let request = b"GET / HTTP/1.1\r\n\
            hOsT:   a.example:8080  \r\n\
            upgrade: h2c, WebSocket\r\n\
            CONNECTION: keep-alive\r\n\
            connection: Upgrade\r\n\
            sec-websocket-key:\tdGhlIHNhbXBsZSBub25jZQ== \r\n\
            SEC-WEBSOCKET-VERSION:  13 \r\n\
            Sec-WebSocket-Protocol: a\r\n\
            Sec-WebSocket-Protocol: , b ,\r\n\
            Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
            \r\n";
        let request = parse(request).unwrap().complete().unwrap();
        assert_eq!(request.host(), "a.example:8080");
        assert_eq!(request.key(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(request.origin(), None);
        assert!(request.protocols().eq(["a", "b"]));
        assert!(request
            .extensions()
            .eq(["permessage-deflate; client_max_window_bits", "x-foo"]));
        assert_eq!(request.select_protocol(&["b", "a"]), Some("a"));
    }

    #[test]
    fn every_cause_has_its_error() {
        use RequestError::*;
        let cases: &[(&[u8], RequestError)] = &[
            (b"\x00\x01garbage\r\n\r\n", Malformed),
            (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", Malformed),
            (b"GET / HTTP/2.0\r\n\r\n", Malformed),
            // Not an upgrade at all, whatever the method: 400.
            (b"POST / HTTP/1.1\r\nHost: a\r\n\r\n", NotUpgrade),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
                MethodNotGet,
            ),
            (
                b"get / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
                MethodNotGet,
            ),
            (
                b"GET / HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\n\r\n",
                HttpVersion,
            ),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", NotUpgrade),
        ];
        for (request, expected) in cases {
            assert_eq!(
                error(request),
                *expected,
                "{:?}",
                std::str::from_utf8(request)
            );
        }
        assert_eq!(error(&with("Upgrade", None)), NotUpgrade);
        assert_eq!(error(&with("Upgrade", Some("Upgrade: h2c"))), NotUpgrade);
        assert_eq!(error(&with("Connection", None)), ConnectionNotUpgrade);
        assert_eq!(
            error(&with("Connection", Some("Connection: keep-alive"))),
            ConnectionNotUpgrade
        );
        assert_eq!(error(&with("Host", None)), MissingHost);
        assert_eq!(error(&with("Host", Some("Host: "))), InvalidHost);
        assert_eq!(
            error(&with("Host", Some("Host: a\r\nHost: b"))),
            DuplicateHeader
        );
        assert_eq!(error(&with("Sec-WebSocket-Version", None)), MissingVersion);
        assert_eq!(
            error(&with(
                "Sec-WebSocket-Version",
                Some("Sec-WebSocket-Version: 8")
            )),
            UnsupportedVersion
        );
        assert_eq!(
            error(&with(
                "Sec-WebSocket-Version",
                Some("Sec-WebSocket-Version: 13, 8")
            )),
            UnsupportedVersion
        );
        assert_eq!(error(&with("Sec-WebSocket-Key", None)), MissingKey);
        assert_eq!(
            error(&with(
                "Sec-WebSocket-Key",
                Some("Sec-WebSocket-Key: c2hvcnQ=")
            )),
            InvalidKey
        );
        assert_eq!(
            error(&with(
                "Sec-WebSocket-Key",
                Some(
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
                )
            )),
            DuplicateHeader
        );
        let mut bad_origin = with("Origin", None);
        let at = bad_origin.len() - 2;
        bad_origin.splice(at..at, b"Origin: \xff\r\n".iter().copied());
        assert_eq!(error(&bad_origin), InvalidOrigin);
    }

    #[test]
    fn head_limits_and_header_count() {
        let mut headers = [EMPTY_HEADER; 3];
        assert_eq!(
            parse_request(VALID, &mut headers),
            Err(RequestError::TooManyHeaders)
        );
        let mut headers = [EMPTY_HEADER; 32];
        // Exactly at the limit is fine; one byte less is too small.
        let limits = HeadLimits::DEFAULT.with_max_head_bytes(VALID.len());
        assert!(parse_request_with(VALID, &mut headers, limits).is_ok());
        let limits = HeadLimits::DEFAULT.with_max_head_bytes(VALID.len() - 1);
        assert_eq!(
            parse_request_with(VALID, &mut headers, limits),
            Err(RequestError::HeadTooLarge)
        );
        assert_eq!(
            parse_request_with(&VALID[..VALID.len() - 2], &mut headers, limits),
            Ok(Status::Partial)
        );
        // The default limit: an endless header is refused once 8 KiB are buffered.
        let mut endless = b"GET / HTTP/1.1\r\nX: ".to_vec();
        endless.resize(8 * 1024 - 1, b'a');
        assert_eq!(parse(&endless), Ok(Status::Partial));
        endless.push(b'a');
        assert_eq!(parse(&endless), Err(RequestError::HeadTooLarge));
    }

    #[test]
    fn rejections_map_as_documented() {
        use RequestError::*;
        for (e, status) in [
            (Malformed, 400),
            (HeadTooLarge, 431),
            (TooManyHeaders, 431),
            (MethodNotGet, 405),
            (MethodNotConnect, 405),
            (HttpVersion, 400),
            (NotUpgrade, 400),
            (ConnectionNotUpgrade, 400),
            (MissingHost, 400),
            (InvalidHost, 400),
            (DuplicateHeader, 400),
            (MissingVersion, 400),
            (UnsupportedVersion, 426),
            (MissingKey, 400),
            (InvalidKey, 400),
            (InvalidOrigin, 400),
        ] {
            assert_eq!(e.rejection().status(), status, "{e:?}");
            let mut out = [0u8; 512];
            assert!(e.rejection().write(&mut out).is_ok());
            assert!(!std::format!("{e}").is_empty());
        }
        assert_eq!(
            MissingVersion.rejection().headers(),
            &[("Sec-WebSocket-Version", &b"13"[..])]
        );
    }

    #[test]
    fn accept_checks_its_arguments() {
        let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Protocol: chat\r\n\
            Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
        let request = parse(request).unwrap().complete().unwrap();
        let mut out = [0u8; 512];
        let accept = Accept::new()
            .with_protocol(Some("chat"))
            .with_extensions(&["permessage-deflate; server_no_context_takeover"])
            .with_headers(&[("Server", b"sockeye")]);
        let n = request.accept(&accept, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
               Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
               Sec-WebSocket-Protocol: chat\r\n\
               Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
               Server: sockeye\r\n\r\n"[..]
        );
        for (accept, expected) in [
            (
                Accept::new().with_protocol(Some("Chat")),
                WriteError::ProtocolNotOffered,
            ),
            (
                Accept::new().with_extensions(&["x-other"]),
                WriteError::ExtensionNotOffered,
            ),
            (
                Accept::new().with_extensions(&["permessage-deflate, x-other"]),
                WriteError::ExtensionNotOffered,
            ),
            (
                Accept::new().with_extensions(&["a\r\nb"]),
                WriteError::InvalidField,
            ),
            (
                Accept::new().with_headers(&[("Sec-WebSocket-Accept", b"x")]),
                WriteError::InvalidField,
            ),
            (
                Accept::new().with_headers(&[("X", b"a\r\nInjected: 1")]),
                WriteError::InvalidField,
            ),
        ] {
            let mut out = [0xEEu8; 512];
            assert_eq!(request.accept(&accept, &mut out), Err(expected));
            assert_eq!(out, [0xEE; 512]);
        }
        let mut small = [0xEEu8; 100];
        assert_eq!(
            request.accept(&Accept::new(), &mut small),
            Err(WriteError::BufferTooSmall { needed: 129 })
        );
        assert_eq!(small, [0xEE; 100]);
    }

    #[test]
    fn custom_rejections_are_checked() {
        let mut out = [0u8; 256];
        for bad in [
            Rejection::custom(199, "Early", &[]),
            Rejection::custom(1000, "Big", &[]),
            Rejection::custom(404, "Not\r\nFound", &[]),
            Rejection::custom(404, "Not Found", &[("Content-Length", b"5")]),
            Rejection::custom(404, "Not Found", &[("Bad:Name", b"x")]),
            Rejection::custom(302, "Found", &[("Location", b"/x\r\nSet-Cookie: a=b")]),
        ] {
            assert_eq!(
                bad.write(&mut out),
                Err(WriteError::InvalidField),
                "{bad:?}"
            );
        }
        let keep: &[(&str, &[u8])] = &[("Connection", b"keep-alive")];
        let n = Rejection::custom(404, "", keep).write(&mut out).unwrap();
        assert_eq!(
            &out[..n],
            b"HTTP/1.1 404 \r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        );
        let mut small = [0u8; 10];
        assert_eq!(
            Rejection::BAD_REQUEST.write(&mut small),
            Err(WriteError::BufferTooSmall { needed: 66 })
        );
    }
}
