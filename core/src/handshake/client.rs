//! The client side: write the upgrade request (RFC 6455 §4.1) and check the server's
//! response.

use core::fmt;
use core::time::Duration;

use super::body::{body_length, BodyError, BodyLength};
use super::key::{encode_nonce, AcceptKey};
use super::write::{headers_ok, is_token, is_visible_ascii, items_ok, write_head, WriteError};
use super::{
    eq_ignore_case, find, has_token, incomplete, item_name, single, window, Head, HeadLimits,
    Header, Items, RawItems, TokenList,
};
use crate::extension::{DeflateConfig, DeflateParams, ExtensionError, PERMESSAGE_DEFLATE};
use crate::Status;

/// The client's half of one handshake: the `Sec-WebSocket-Key` made from a 16-byte nonce and
/// the `Sec-WebSocket-Accept` the server must answer with.
///
/// The nonce must be fresh and random for each connection (RFC 6455 §4.1); it is an argument
/// because the core has no RNG.
///
/// ```
/// use sockeye_proto::handshake::{ClientHandshake, ClientRequest, Response, EMPTY_HEADER};
/// use sockeye_proto::Status;
///
/// let client = ClientHandshake::new(*b"the sample nonce");
/// assert_eq!(client.key(), "dGhlIHNhbXBsZSBub25jZQ==");
///
/// let request = ClientRequest::new("server.example.com", "/chat")
///     .with_headers(&[("Origin", b"http://example.com")]);
/// let mut out = [0u8; 256];
/// let n = client.write_request(&request, &mut out).unwrap();
/// assert_eq!(
///     &out[..n],
///     b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
///       Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///       Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n\r\n"
/// );
///
/// // A refusal is an answer, not an error.
/// let reply = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
/// let mut headers = [EMPTY_HEADER; 16];
/// match client.parse_response(&request, reply, &mut headers) {
///     Ok(Status::Complete(Response::Rejected(rejected))) => {
///         assert_eq!((rejected.status(), rejected.reason()), (403, "Forbidden"));
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientHandshake {
    key: [u8; 24],
    accept: AcceptKey,
}

impl ClientHandshake {
    /// A handshake whose `Sec-WebSocket-Key` is the base64 of `nonce`.
    pub fn new(nonce: [u8; 16]) -> Self {
        let key = encode_nonce(&nonce);
        ClientHandshake {
            key,
            accept: AcceptKey::derive(&key),
        }
    }

    /// The `Sec-WebSocket-Key` value (24 base64 characters).
    pub fn key(&self) -> &str {
        // Base64 output is ASCII.
        core::str::from_utf8(&self.key).unwrap_or_default()
    }

    /// The `Sec-WebSocket-Accept` value the server must send back.
    pub fn expected_accept(&self) -> AcceptKey {
        self.accept
    }

    /// Writes the upgrade request into `out` and returns its length; on error nothing is
    /// written.
    ///
    /// The request is `GET {resource} HTTP/1.1`, `Host`, `Upgrade: websocket`,
    /// `Connection: Upgrade`, `Sec-WebSocket-Key`, `Sec-WebSocket-Version: 13`, then
    /// `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when lists are given, then the
    /// extra headers. Errors: [`WriteError::InvalidField`] for an empty or non-printable host
    /// or resource, a subprotocol that is not a token, an empty or control-character extension,
    /// a malformed extra header or one of `Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-Key`, `Sec-WebSocket-Version`, `Sec-WebSocket-Protocol`,
    /// `Sec-WebSocket-Extensions`, `Content-Length`, `Transfer-Encoding`, or an extension
    /// naming permessage-deflate while [`ClientRequest::deflate`] is set;
    /// [`WriteError::BufferTooSmall`].
    ///
    /// With [`ClientRequest::deflate`] the permessage-deflate offer
    /// ([`DeflateConfig::offer`]) comes first in `Sec-WebSocket-Extensions`.
    #[inline]
    pub fn write_request(
        &self,
        request: &ClientRequest<'_>,
        out: &mut [u8],
    ) -> Result<usize, WriteError> {
        // The offer is passed on by reference, so that a caller whose request never offers
        // (the embedded adapter) leaves the code that writes one out of its image.
        self.write_request_offering(request, request.deflate.as_ref(), out)
    }

    /// [`write_request`](Self::write_request) with the permessage-deflate policy to offer
    /// (`request.deflate`).
    fn write_request_offering(
        &self,
        request: &ClientRequest<'_>,
        deflate: Option<&DeflateConfig>,
        out: &mut [u8],
    ) -> Result<usize, WriteError> {
        let resource = match request.resource {
            "" => "/",
            resource => resource,
        };
        if !is_visible_ascii(request.host.as_bytes())
            || !is_visible_ascii(resource.as_bytes())
            || !request.lists_ok(deflate)
        {
            return Err(WriteError::InvalidField);
        }
        let offer = deflate.map(|config| config.offer());
        let bracket = request.port.is_some()
            && request.host.bytes().any(|b| b == b':')
            && !request.host.starts_with('[');
        write_head(out, |c| {
            c.str("GET ");
            if !resource.starts_with('/') {
                c.str("/");
            }
            c.str(resource);
            c.str(" HTTP/1.1\r\nHost: ");
            if bracket {
                c.str("[");
            }
            c.str(request.host);
            if bracket {
                c.str("]");
            }
            if let Some(port) = request.port {
                c.str(":");
                c.decimal(u32::from(port));
            }
            c.str("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
            c.header("Sec-WebSocket-Key", &self.key);
            c.str("Sec-WebSocket-Version: 13\r\n");
            c.list("Sec-WebSocket-Protocol", None, request.protocols);
            let offer = offer.as_ref().map(|o| o.as_str());
            c.list("Sec-WebSocket-Extensions", offer, request.extensions);
            c.headers(request.headers);
            c.end();
        })
    }

    /// Parses the server's response with the [default limits](HeadLimits::DEFAULT) (8 KiB
    /// head).
    ///
    /// `request` is the one written by [`write_request`](Self::write_request): the answer's
    /// subprotocol and extensions are checked against it. Returns [`Status::Partial`] while
    /// the head is incomplete, [`Response::Accepted`] for a valid `101`,
    /// [`Response::Rejected`] for any other final status (a normal outcome: "the server said
    /// 403"), or a [`ResponseError`] for a malformed response or a `101` that breaks RFC 6455
    /// §4.1. Interim `1xx` responses before the final one are skipped. Bytes after the head
    /// start at [`Response::consumed`]: the first frames after a `101`, the body (if any)
    /// after a rejection.
    #[inline]
    pub fn parse_response<'h, 'b>(
        &self,
        request: &ClientRequest<'_>,
        buf: &'b [u8],
        headers: &'h mut [Header<'b>],
    ) -> Result<Status<Response<'h, 'b>>, ResponseError> {
        self.parse_response_with(request, buf, headers, HeadLimits::DEFAULT)
    }

    /// [`parse_response`](Self::parse_response) with explicit limits. A head that has not
    /// ended within `limits.max_head_bytes` is [`ResponseError::HeadTooLarge`].
    #[inline]
    pub fn parse_response_with<'h, 'b>(
        &self,
        request: &ClientRequest<'_>,
        buf: &'b [u8],
        headers: &'h mut [Header<'b>],
        limits: HeadLimits,
    ) -> Result<Status<Response<'h, 'b>>, ResponseError> {
        // As in `write_request`: the policy travels by reference, so that a caller that
        // never offers leaves the checks of an answer out of its image.
        self.parse_final(request, request.deflate.as_ref(), buf, headers, limits)
    }

    /// [`parse_response_with`](Self::parse_response_with), with the permessage-deflate
    /// policy offered (`request.deflate`).
    fn parse_final<'h, 'b>(
        &self,
        request: &ClientRequest<'_>,
        deflate: Option<&DeflateConfig>,
        buf: &'b [u8],
        headers: &'h mut [Header<'b>],
        limits: HeadLimits,
    ) -> Result<Status<Response<'h, 'b>>, ResponseError> {
        let window = window(buf, &limits);
        // Find the final response: skip interim 1xx responses other than 101.
        let mut start = 0;
        loop {
            let mut response = httparse::Response::new(&mut *headers);
            match response.parse(&window[start..]) {
                Ok(httparse::Status::Complete(len)) => {
                    let code = response.code.unwrap_or_default();
                    if (100..200).contains(&code) && code != 101 {
                        start += len;
                        continue;
                    }
                    break;
                }
                Ok(httparse::Status::Partial) => {
                    return match incomplete(buf.len(), &limits) {
                        Head::Partial => Ok(Status::Partial),
                        Head::TooLarge => Err(ResponseError::HeadTooLarge),
                    };
                }
                Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::TooManyHeaders),
                Err(_) => return Err(ResponseError::Malformed),
            }
        }
        // Parse it again, now lending the header array for the caller's lifetime.
        let mut response = httparse::Response::new(headers);
        let Ok(httparse::Status::Complete(len)) = response.parse(&window[start..]) else {
            return Err(ResponseError::Malformed);
        };
        let consumed = start + len;
        let status = response.code.unwrap_or_default();
        let reason = response.reason.unwrap_or_default();
        let minor_version = response.version.unwrap_or_default();
        let headers: &'h [Header<'b>] = response.headers;
        if status < 100 {
            return Err(ResponseError::Malformed);
        }
        if status != 101 {
            return Ok(Status::Complete(Response::Rejected(Rejected {
                status,
                reason,
                headers,
                consumed,
            })));
        }
        self.validate_accepted(request, deflate, minor_version, headers, consumed)
            .map(|accepted| Status::Complete(Response::Accepted(accepted)))
    }

    /// RFC 6455 §4.1, the client's checks of a `101` response.
    fn validate_accepted<'h, 'b>(
        &self,
        request: &ClientRequest<'_>,
        deflate: Option<&DeflateConfig>,
        minor_version: u8,
        headers: &'h [Header<'b>],
        consumed: usize,
    ) -> Result<Accepted<'h, 'b>, ResponseError> {
        if minor_version != 1 {
            return Err(ResponseError::HttpVersion);
        }
        if !has_token(headers, "Upgrade", "websocket") {
            return Err(ResponseError::NotUpgrade);
        }
        if !has_token(headers, "Connection", "upgrade") {
            return Err(ResponseError::ConnectionNotUpgrade);
        }
        let accept = single(headers, "Sec-WebSocket-Accept")
            .map_err(|_| ResponseError::AcceptMismatch)?
            .ok_or(ResponseError::MissingAccept)?;
        if accept != self.accept.as_bytes() {
            return Err(ResponseError::AcceptMismatch);
        }

        let (protocol, deflate) = negotiated(request, deflate, headers)?;
        Ok(Accepted {
            protocol,
            deflate,
            headers,
            consumed,
        })
    }
}

/// Checks the answer to an extended CONNECT (HTTP/2, RFC 8441; HTTP/3, RFC 9220) sent with
/// [`ClientRequest::connect_fields`]: a `2xx` `status` is [`Response::Accepted`] once its
/// subprotocol and extensions fit the request (the same checks as for a `101`), any other
/// status is [`Response::Rejected`] (with an empty reason: HTTP/2 has none). `headers` are
/// the response's header fields; [`Response::consumed`] is 0.
///
/// ```
/// use sockeye_proto::handshake::client::check_connect_response;
/// use sockeye_proto::handshake::{ClientRequest, Header, Response};
///
/// let request = ClientRequest::new("example.com", "/chat").with_protocols(&["chat"]);
/// let headers = [Header { name: "sec-websocket-protocol", value: b"chat" }];
/// let Ok(Response::Accepted(accepted)) = check_connect_response(&request, 200, &headers) else {
///     panic!("accepted");
/// };
/// assert_eq!(accepted.protocol(), Some("chat"));
/// assert!(matches!(check_connect_response(&request, 404, &[]), Ok(Response::Rejected(_))));
/// ```
pub fn check_connect_response<'h, 'b>(
    request: &ClientRequest<'_>,
    status: u16,
    headers: &'h [Header<'b>],
) -> Result<Response<'h, 'b>, ResponseError> {
    if !(200..300).contains(&status) {
        return Ok(Response::Rejected(Rejected {
            status,
            reason: "",
            headers,
            consumed: 0,
        }));
    }
    let (protocol, deflate) = negotiated(request, request.deflate.as_ref(), headers)?;
    Ok(Response::Accepted(Accepted {
        protocol,
        deflate,
        headers,
        consumed: 0,
    }))
}

/// The subprotocol and permessage-deflate of an accepting answer, checked against the
/// request (RFC 6455 §4.1, RFC 7692 §5); `deflate_offered` is `request.deflate`.
fn negotiated<'b>(
    request: &ClientRequest<'_>,
    deflate_offered: Option<&DeflateConfig>,
    headers: &[Header<'b>],
) -> Result<(Option<&'b str>, Option<DeflateParams>), ResponseError> {
    let protocol = match single(headers, "Sec-WebSocket-Protocol") {
        Ok(None) => None,
        Ok(Some(value)) => match core::str::from_utf8(value) {
            Ok(value) if request.protocols.contains(&value) => Some(value),
            _ => return Err(ResponseError::ProtocolNotRequested),
        },
        // Several answers.
        Err(_) => return Err(ResponseError::ProtocolNotRequested),
    };

    let requested = |name: &str| {
        request.extensions.iter().any(|list| {
            Items::new(list.as_bytes()).any(|offer| eq_ignore_case(item_name(offer), name))
        })
    };
    let mut deflate = None;
    for header in headers {
        if !eq_ignore_case(header.name, "Sec-WebSocket-Extensions") {
            continue;
        }
        for item in RawItems::new(header.value) {
            let Ok(item) = core::str::from_utf8(item) else {
                return Err(ResponseError::ExtensionNotRequested);
            };
            let name = item_name(item);
            match deflate_offered {
                Some(config) if name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) => {
                    if deflate.is_some() {
                        return Err(ResponseError::Extension(ExtensionError::MultipleAnswers));
                    }
                    let params = config
                        .check_answer(item)
                        .map_err(ResponseError::Extension)?;
                    deflate = Some(params);
                }
                _ if requested(name) => {}
                _ => return Err(ResponseError::ExtensionNotRequested),
            }
        }
    }

    Ok((protocol, deflate))
}

/// What the client asks for: where (host, port, resource), which subprotocols and extensions,
/// and extra headers (`Origin`, `Authorization`, `Cookie` ...). Built with
/// [`ClientRequest::new`] and the `with_*` methods, or from a URL with [`Url::request`].
///
/// [`Url::request`]: super::Url::request
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientRequest<'a> {
    /// The host for the `Host` header: a name or an IP address (IPv6 with or without
    /// brackets). Without a [`port`](Self::port) it is written as given, so it may also be a
    /// whole `host:port` authority (as [`Url::host_header`](super::Url::host_header) gives).
    pub host: &'a str,
    /// The port to add to the `Host` header; `None` for the scheme's default port.
    pub port: Option<u16>,
    /// The resource: path and query (`/chat?room=1`); empty means `/`, and a `/` is added in
    /// front of one that lacks it.
    pub resource: &'a str,
    /// The subprotocols offered, in order of preference (`Sec-WebSocket-Protocol`).
    pub protocols: &'a [&'a str],
    /// The extension offers with their parameters (`Sec-WebSocket-Extensions`), as
    /// written; the server's answer is checked only for their names.
    pub extensions: &'a [&'a str],
    /// Offer permessage-deflate with this policy, and check the server's answer against
    /// it (see [`Accepted::deflate`]). `None`: not offered (unless written in
    /// [`extensions`](Self::extensions)).
    pub deflate: Option<DeflateConfig>,
    /// Extra request headers, written in order.
    pub headers: &'a [(&'a str, &'a [u8])],
}

impl<'a> ClientRequest<'a> {
    /// A request for `resource` on `host`, with nothing else.
    pub const fn new(host: &'a str, resource: &'a str) -> Self {
        ClientRequest {
            host,
            port: None,
            resource,
            protocols: &[],
            extensions: &[],
            deflate: None,
            headers: &[],
        }
    }

    /// With this port in the `Host` header.
    pub const fn with_port(mut self, port: Option<u16>) -> Self {
        self.port = port;
        self
    }

    /// Offering these subprotocols.
    pub const fn with_protocols(mut self, protocols: &'a [&'a str]) -> Self {
        self.protocols = protocols;
        self
    }

    /// Offering these extensions.
    pub const fn with_extensions(mut self, extensions: &'a [&'a str]) -> Self {
        self.extensions = extensions;
        self
    }

    /// Offering permessage-deflate with this policy (or not, with `None`).
    ///
    /// ```
    /// use sockeye_proto::handshake::{ClientHandshake, ClientRequest};
    /// use sockeye_proto::DeflateConfig;
    ///
    /// let request =
    ///     ClientRequest::new("example.com", "/").with_deflate(Some(DeflateConfig::default()));
    /// let mut out = [0u8; 512];
    /// let n = ClientHandshake::new([7; 16]).write_request(&request, &mut out).unwrap();
    /// let head = core::str::from_utf8(&out[..n]).unwrap();
    /// assert!(head.contains(
    ///     "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; \
    ///      server_no_context_takeover; client_no_context_takeover\r\n"
    /// ));
    /// ```
    pub const fn with_deflate(mut self, deflate: Option<DeflateConfig>) -> Self {
        self.deflate = deflate;
        self
    }

    /// With these extra headers.
    pub const fn with_headers(mut self, headers: &'a [(&'a str, &'a [u8])]) -> Self {
        self.headers = headers;
        self
    }

    /// The header fields of this request as an extended CONNECT (HTTP/2, RFC 8441; HTTP/3,
    /// RFC 9220), for the HTTP implementation to send: calls `field(name, value)` for
    /// `Sec-WebSocket-Version: 13`, one `Sec-WebSocket-Protocol` per subprotocol, one
    /// `Sec-WebSocket-Extensions` per offer (permessage-deflate's first) and the extra
    /// headers, after the checks of [`ClientHandshake::write_request`]; on error no field is
    /// given. The pseudo-header fields are the HTTP implementation's: `:method` =
    /// `CONNECT`, `:protocol` = `websocket`, `:scheme`, `:path` = [`resource`](Self::resource)
    /// and `:authority` = [`host`](Self::host) with the [`port`](Self::port). Check the
    /// answer with [`check_connect_response`].
    ///
    /// ```
    /// use sockeye_proto::handshake::ClientRequest;
    ///
    /// let request = ClientRequest::new("example.com", "/chat").with_protocols(&["v2", "v1"]);
    /// let mut fields = Vec::new();
    /// request.connect_fields(|name, value| fields.push(format!("{name}: {}", std::str::from_utf8(value).unwrap()))).unwrap();
    /// assert_eq!(
    ///     fields,
    ///     ["Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: v2", "Sec-WebSocket-Protocol: v1"]
    /// );
    /// ```
    pub fn connect_fields(&self, mut field: impl FnMut(&str, &[u8])) -> Result<(), WriteError> {
        if !self.lists_ok(self.deflate.as_ref()) {
            return Err(WriteError::InvalidField);
        }
        field("Sec-WebSocket-Version", b"13");
        for protocol in self.protocols {
            field("Sec-WebSocket-Protocol", protocol.as_bytes());
        }
        if let Some(offer) = self.deflate.map(|config| config.offer()) {
            field("Sec-WebSocket-Extensions", offer.as_str().as_bytes());
        }
        for list in self.extensions {
            field("Sec-WebSocket-Extensions", list.as_bytes());
        }
        for (name, value) in self.headers {
            field(name, value);
        }
        Ok(())
    }
}

/// Headers a client request sets itself, in either form (HTTP/1.1 or extended CONNECT).
const RESERVED: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
    "Sec-WebSocket-Extensions",
    "Content-Length",
    "Transfer-Encoding",
];

impl ClientRequest<'_> {
    /// Whether the subprotocols, extensions and extra headers can be sent as given (the
    /// checks both request forms share); `deflate` is `self.deflate`.
    fn lists_ok(&self, deflate: Option<&DeflateConfig>) -> bool {
        self.protocols.iter().all(|p| is_token(p.as_bytes()))
            && items_ok(self.extensions)
            && headers_ok(self.headers, RESERVED)
            && !(deflate.is_some() && names_deflate(self.extensions))
    }
}

/// Whether any of the extension `lists` has an item naming permessage-deflate.
pub(crate) fn names_deflate(lists: &[&str]) -> bool {
    lists
        .iter()
        .flat_map(|list| Items::new(list.as_bytes()))
        .any(|item| item_name(item).eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
}

/// The server's final answer to the upgrade request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'h, 'b> {
    /// `101 Switching Protocols`, checked: the connection is now a WebSocket.
    Accepted(Accepted<'h, 'b>),
    /// Any other final status: the server turned the handshake down.
    Rejected(Rejected<'h, 'b>),
}

impl<'h, 'b> Response<'h, 'b> {
    /// The bytes the response head took (interim `1xx` responses included).
    pub fn consumed(&self) -> usize {
        match self {
            Response::Accepted(a) => a.consumed,
            Response::Rejected(r) => r.consumed,
        }
    }

    /// Every header line of the final response.
    pub fn headers(&self) -> &'h [Header<'b>] {
        match self {
            Response::Accepted(a) => a.headers,
            Response::Rejected(r) => r.headers,
        }
    }
}

/// A valid `101 Switching Protocols` answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted<'h, 'b> {
    protocol: Option<&'b str>,
    deflate: Option<DeflateParams>,
    headers: &'h [Header<'b>],
    consumed: usize,
}

impl<'h, 'b> Accepted<'h, 'b> {
    /// The subprotocol the server chose, one of those requested; `None` if it chose none.
    pub fn protocol(&self) -> Option<&'b str> {
        self.protocol
    }

    /// The permessage-deflate parameters the server agreed to, checked against
    /// [`ClientRequest::deflate`]; `None` when that was not set or the server declined.
    pub fn deflate(&self) -> Option<DeflateParams> {
        self.deflate
    }

    /// The extensions the server accepted, each with its parameters; every name was requested.
    pub fn extensions(&self) -> TokenList<'h, 'b> {
        TokenList::new(self.headers, "Sec-WebSocket-Extensions")
    }

    /// Every header line.
    pub fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }

    /// The value of the first header called `name` (ASCII case-insensitive), untrimmed.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        find(self.headers, name)
    }

    /// The bytes the handshake took; what follows is the first WebSocket frames.
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

/// A non-`101` final answer: the server turned the handshake down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected<'h, 'b> {
    status: u16,
    reason: &'b str,
    headers: &'h [Header<'b>],
    consumed: usize,
}

impl<'h, 'b> Rejected<'h, 'b> {
    /// The status code (`403`, `426` ...).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase (empty if none, or if it was not UTF-8).
    pub fn reason(&self) -> &'b str {
        self.reason
    }

    /// Every header line.
    pub fn headers(&self) -> &'h [Header<'b>] {
        self.headers
    }

    /// The value of the first header called `name` (ASCII case-insensitive), untrimmed.
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        find(self.headers, name)
    }

    /// How long the server asked the client to wait before trying again: its
    /// `Retry-After` header, when that is a number of seconds (see [`retry_after`]).
    pub fn retry_after(&self) -> Option<Duration> {
        self.header("Retry-After").and_then(retry_after)
    }

    /// The same, also reading an HTTP date against `now`, the current time in seconds
    /// since the Unix epoch (see [`retry_after_at`]).
    pub fn retry_after_at(&self, now: u64) -> Option<Duration> {
        self.header("Retry-After")
            .and_then(|value| retry_after_at(value, now))
    }

    /// The bytes the response head took; a body, if any, follows.
    pub fn consumed(&self) -> usize {
        self.consumed
    }

    /// How the body after the head is delimited (see [`body`](super::body)).
    pub fn body_length(&self) -> Result<BodyLength, BodyError> {
        body_length(self.status, self.headers)
    }
}

/// The delay in a `Retry-After` header value (RFC 9110 §10.2.3) given as
/// `delay-seconds`, a whole number of seconds; numbers too large for a `u64` saturate.
/// The other form, an HTTP date, gives `None` here: turning it into a delay needs the
/// current time, which [`retry_after_at`] takes.
///
/// ```
/// use core::time::Duration;
/// use sockeye_proto::handshake::client::retry_after;
///
/// assert_eq!(retry_after(b"120"), Some(Duration::from_secs(120)));
/// assert_eq!(retry_after(b" 5 "), Some(Duration::from_secs(5)));
/// assert_eq!(retry_after(b"Wed, 21 Oct 2026 07:28:00 GMT"), None);
/// assert_eq!(retry_after(b"-1"), None);
/// ```
pub fn retry_after(value: &[u8]) -> Option<Duration> {
    let digits = value.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let seconds = digits.iter().fold(0u64, |n, digit| {
        n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
    });
    Some(Duration::from_secs(seconds))
}

/// The delay in a `Retry-After` header value in either form: a number of seconds, or an
/// HTTP date (any of the three forms of [`http_date`](super::date::http_date)) less
/// `now`, the current time in seconds since the Unix epoch. A date already past is a
/// zero delay. The two ends' clocks may disagree; a policy should cap what it waits.
///
/// ```
/// use core::time::Duration;
/// use sockeye_proto::handshake::client::retry_after_at;
///
/// let now = 1_792_567_650; // 30 s before the date below
/// let date = b"Wed, 21 Oct 2026 07:28:00 GMT";
/// assert_eq!(retry_after_at(date, now), Some(Duration::from_secs(30)));
/// assert_eq!(retry_after_at(date, now + 3600), Some(Duration::ZERO));
/// assert_eq!(retry_after_at(b"120", now), Some(Duration::from_secs(120)));
/// assert_eq!(retry_after_at(b"soon", now), None);
/// ```
pub fn retry_after_at(value: &[u8], now: u64) -> Option<Duration> {
    retry_after(value).or_else(|| {
        let at = super::date::http_date(value.trim_ascii(), now)?;
        Some(Duration::from_secs(at.saturating_sub(now)))
    })
}

/// Why a server's response is not a usable answer to the upgrade request: one variant per
/// cause. The client should close the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseError {
    /// The bytes are not an HTTP/1.x response head (or the status is below 100).
    Malformed,
    /// The head did not end within the head size limit.
    HeadTooLarge,
    /// The head has more header lines than the caller's header array holds.
    TooManyHeaders,
    /// A `101` response that is not HTTP/1.1.
    HttpVersion,
    /// A `101` response without `Upgrade: websocket`.
    NotUpgrade,
    /// A `101` response whose `Connection` header does not list `upgrade`.
    ConnectionNotUpgrade,
    /// A `101` response without `Sec-WebSocket-Accept`.
    MissingAccept,
    /// `Sec-WebSocket-Accept` does not match the key sent (or is repeated).
    AcceptMismatch,
    /// The server chose a subprotocol that was not requested (or several).
    ProtocolNotRequested,
    /// The server accepted an extension that was not requested.
    ExtensionNotRequested,
    /// The server's permessage-deflate answer is invalid or does not fit the offer made
    /// with [`ClientRequest::deflate`] (RFC 7692 requires the client to fail then).
    Extension(ExtensionError),
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ResponseError::Extension(error) = self {
            return write!(f, "invalid permessage-deflate answer: {error}");
        }
        f.write_str(match self {
            ResponseError::Malformed => "malformed HTTP response",
            ResponseError::HeadTooLarge => "response head too large",
            ResponseError::TooManyHeaders => "too many response headers",
            ResponseError::HttpVersion => "101 response is not HTTP/1.1",
            ResponseError::NotUpgrade => "101 response without `Upgrade: websocket`",
            ResponseError::ConnectionNotUpgrade => {
                "101 response whose `Connection` header does not list `upgrade`"
            }
            ResponseError::MissingAccept => "101 response without `Sec-WebSocket-Accept`",
            ResponseError::AcceptMismatch => "`Sec-WebSocket-Accept` does not match the key",
            ResponseError::ProtocolNotRequested => "server chose a subprotocol not requested",
            ResponseError::ExtensionNotRequested => "server accepted an extension not requested",
            ResponseError::Extension(_) => "invalid permessage-deflate answer",
        })
    }
}

impl core::error::Error for ResponseError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            ResponseError::Extension(error) => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::handshake::EMPTY_HEADER;

    const NONCE: [u8; 16] = *b"the sample nonce";
    const REQUEST: ClientRequest<'static> = ClientRequest::new("server.example.com", "/chat")
        .with_protocols(&["chat", "superchat"])
        .with_extensions(&["permessage-deflate; client_max_window_bits", "x-foo"]);

    fn parse(response: &[u8]) -> Result<Status<Response<'_, '_>>, ResponseError> {
        let headers = std::boxed::Box::leak(std::boxed::Box::new([EMPTY_HEADER; 32]));
        ClientHandshake::new(NONCE).parse_response(&REQUEST, response, headers)
    }

    const OK: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
        Sec-WebSocket-Protocol: chat\r\n\
        \r\n";

    fn replace(from: &str, to: &str) -> std::vec::Vec<u8> {
        let text = core::str::from_utf8(OK).unwrap();
        assert!(text.contains(from));
        text.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn writes_the_request() {
        let client = ClientHandshake::new(NONCE);
        let mut out = [0u8; 512];
        let request = REQUEST.with_headers(&[("Origin", b"http://example.com")]);
        let n = client.write_request(&request, &mut out).unwrap();
        assert_eq!(
            core::str::from_utf8(&out[..n]).unwrap(),
            "GET /chat HTTP/1.1\r\n\
             Host: server.example.com\r\n\
             Upgrade: websocket\r\n\
             Connection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\n\
             Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
             Origin: http://example.com\r\n\
             \r\n"
        );
        let mut small = [0xEEu8; 64];
        assert_eq!(
            client.write_request(&request, &mut small),
            Err(WriteError::BufferTooSmall { needed: n })
        );
        assert_eq!(small, [0xEE; 64]);
    }

    const DEFLATE: ClientRequest<'static> = ClientRequest::new("server.example.com", "/chat")
        .with_extensions(&["x-foo"])
        .with_deflate(Some(DeflateConfig::DEFAULT));

    fn parse_deflate(answer: &str) -> Result<Option<DeflateParams>, ResponseError> {
        let end: &[u8] = if answer.is_empty() { b"" } else { b"\r\n" };
        let response = [&OK[..OK.len() - 2], answer.as_bytes(), end, b"\r\n"].concat();
        let response = std::boxed::Box::leak(response.into_boxed_slice());
        let headers = std::boxed::Box::leak(std::boxed::Box::new([EMPTY_HEADER; 32]));
        let request = DEFLATE.with_protocols(&["chat"]);
        match ClientHandshake::new(NONCE).parse_response(&request, response, headers)? {
            Status::Complete(Response::Accepted(accepted)) => Ok(accepted.deflate()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_deflate_offer_is_written_and_its_answer_checked() {
        let client = ClientHandshake::new(NONCE);
        let mut out = [0u8; 512];
        let n = client.write_request(&DEFLATE, &mut out).unwrap();
        let text = core::str::from_utf8(&out[..n]).unwrap();
        assert!(text.contains(
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits; \
             server_no_context_takeover; client_no_context_takeover, x-foo\r\n"
        ));
        // Offered twice is a caller's mistake.
        let twice = DEFLATE.with_extensions(&["permessage-deflate"]);
        assert_eq!(
            client.write_request(&twice, &mut out),
            Err(WriteError::InvalidField)
        );

        // No answer: no compression.
        assert_eq!(parse_deflate(""), Ok(None));
        assert_eq!(
            parse_deflate(
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 client_max_window_bits=9\r\nSec-WebSocket-Extensions: x-foo"
            ),
            Ok(Some(DeflateParams {
                server_no_context_takeover: true,
                client_max_window_bits: 9,
                ..DeflateParams::BARE
            }))
        );
        for (answer, error) in [
            (
                "Sec-WebSocket-Extensions: permessage-deflate",
                ResponseError::Extension(ExtensionError::MissingServerNoContextTakeover),
            ),
            (
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover, \
                 permessage-deflate; server_no_context_takeover",
                ResponseError::Extension(ExtensionError::MultipleAnswers),
            ),
            (
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover=x",
                ResponseError::Extension(ExtensionError::UnexpectedValue),
            ),
            (
                "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; \
                 client_max_window_bits=16",
                ResponseError::Extension(ExtensionError::InvalidWindowBits),
            ),
            (
                "Sec-WebSocket-Extensions: x-bar",
                ResponseError::ExtensionNotRequested,
            ),
        ] {
            assert_eq!(parse_deflate(answer), Err(error), "{answer}");
        }
        let error = ResponseError::Extension(ExtensionError::ServerWindowTooLarge);
        assert_eq!(
            std::format!("{error}"),
            "invalid permessage-deflate answer: `server_max_window_bits` larger than requested"
        );
        assert!(core::error::Error::source(&error).is_some());

        // Without a typed offer, a permessage-deflate string is checked by name only.
        let response = replace(
            "Protocol: chat\r\n",
            "Protocol: chat\r\nSec-WebSocket-Extensions: permessage-deflate; x=1\r\n",
        );
        let Status::Complete(Response::Accepted(accepted)) = parse(&response).unwrap() else {
            panic!()
        };
        assert_eq!(accepted.deflate(), None);
    }

    #[test]
    fn host_port_and_resource_forms() {
        let client = ClientHandshake::new(NONCE);
        for (request, start) in [
            (ClientRequest::new("a", ""), "GET / HTTP/1.1\r\nHost: a\r\n"),
            (
                ClientRequest::new("a", "?q=1"),
                "GET /?q=1 HTTP/1.1\r\nHost: a\r\n",
            ),
            (
                ClientRequest::new("a", "/x").with_port(Some(9001)),
                "GET /x HTTP/1.1\r\nHost: a:9001\r\n",
            ),
            (
                ClientRequest::new("::1", "/").with_port(Some(9001)),
                "GET / HTTP/1.1\r\nHost: [::1]:9001\r\n",
            ),
            (
                ClientRequest::new("[::1]", "/").with_port(Some(80)),
                "GET / HTTP/1.1\r\nHost: [::1]:80\r\n",
            ),
            (
                ClientRequest::new("[::1]:9001", "/"),
                "GET / HTTP/1.1\r\nHost: [::1]:9001\r\n",
            ),
        ] {
            let mut out = [0u8; 512];
            let n = client.write_request(&request, &mut out).unwrap();
            let text = core::str::from_utf8(&out[..n]).unwrap();
            assert!(text.starts_with(start), "{text}");
        }
    }

    #[test]
    fn bad_request_arguments_are_refused() {
        let client = ClientHandshake::new(NONCE);
        for request in [
            ClientRequest::new("", "/"),
            ClientRequest::new("a b", "/"),
            ClientRequest::new("a", "/x y"),
            ClientRequest::new("a", "/x\r\nEvil: 1"),
            ClientRequest::new("a", "/").with_protocols(&["a b"]),
            ClientRequest::new("a", "/").with_protocols(&[""]),
            ClientRequest::new("a", "/").with_extensions(&[""]),
            ClientRequest::new("a", "/").with_headers(&[("Sec-WebSocket-Key", b"x")]),
            ClientRequest::new("a", "/").with_headers(&[("host", b"x")]),
            ClientRequest::new("a", "/").with_headers(&[("X", b"\n")]),
        ] {
            let mut out = [0xEEu8; 512];
            assert_eq!(
                client.write_request(&request, &mut out),
                Err(WriteError::InvalidField),
                "{request:?}"
            );
            assert_eq!(out, [0xEE; 512]);
        }
    }

    #[test]
    fn accepts_a_valid_101() {
        let mut with_frame = OK.to_vec();
        with_frame.extend_from_slice(b"\x81\x02hi");
        let Status::Complete(Response::Accepted(accepted)) = parse(&with_frame).unwrap() else {
            panic!("accepted");
        };
        assert_eq!(accepted.protocol(), Some("chat"));
        assert_eq!(accepted.extensions().count(), 0);
        assert_eq!(accepted.consumed(), OK.len());
        assert_eq!(accepted.headers().len(), 4);
        assert_eq!(accepted.header("upgrade"), Some(&b"websocket"[..]));
        for end in 0..OK.len() {
            assert_eq!(parse(&OK[..end]), Ok(Status::Partial), "prefix {end}");
        }
    }

    #[test]
    fn lenient_where_the_rfc_is() {
        let response = b"HTTP/1.1 101 OK\r\n\
            upgrade: WebSocket\r\n\
            connection: keep-alive, upgrade\r\n\
            sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n\
            Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
            Sec-WebSocket-Extensions: X-Foo\r\n\
            \r\n";
        let Status::Complete(Response::Accepted(accepted)) = parse(response).unwrap() else {
            panic!("accepted");
        };
        assert_eq!(accepted.protocol(), None);
        assert!(accepted
            .extensions()
            .eq(["permessage-deflate; server_no_context_takeover", "X-Foo"]));
    }

    #[test]
    fn interim_responses_are_skipped() {
        let mut response = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n".to_vec();
        let interim = response.len();
        response.extend_from_slice(OK);
        let response = parse(&response).unwrap().complete().unwrap();
        assert_eq!(response.consumed(), interim + OK.len());
        assert!(matches!(response, Response::Accepted(_)));
        assert_eq!(
            parse(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 4"),
            Ok(Status::Partial)
        );
    }

    #[test]
    fn rejections_are_answers() {
        let response = b"HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\
            Content-Length: 5\r\n\r\nhello";
        let Status::Complete(Response::Rejected(rejected)) = parse(response).unwrap() else {
            panic!("rejected");
        };
        assert_eq!(rejected.status(), 426);
        assert_eq!(rejected.reason(), "Upgrade Required");
        assert_eq!(rejected.header("sec-websocket-version"), Some(&b"13"[..]));
        assert_eq!(rejected.consumed(), response.len() - 5);
        let Status::Complete(Response::Rejected(rejected)) =
            parse(b"HTTP/1.0 200\r\n\r\n").unwrap()
        else {
            panic!("rejected");
        };
        assert_eq!((rejected.status(), rejected.reason()), (200, ""));
        assert_eq!(rejected.retry_after(), None);
    }

    #[test]
    fn a_rejection_carries_the_servers_retry_after() {
        let response = b"HTTP/1.1 503 Service Unavailable\r\nretry-after:\t30 \r\n\r\n";
        let Status::Complete(Response::Rejected(rejected)) = parse(response).unwrap() else {
            panic!("rejected");
        };
        assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_takes_only_whole_seconds() {
        let secs = |n| Some(Duration::from_secs(n));
        assert_eq!(retry_after(b"0"), secs(0));
        assert_eq!(retry_after(b"007"), secs(7));
        assert_eq!(retry_after(b"\t86400 "), secs(86_400));
        assert_eq!(retry_after(b"99999999999999999999999"), secs(u64::MAX));
        for not_seconds in [
            &b""[..],
            b"   ",
            b"+5",
            b"-5",
            b"1.5",
            b"5s",
            b"1 2",
            b"0x10",
            b"Fri, 31 Dec 1999 23:59:59 GMT",
        ] {
            assert_eq!(retry_after(not_seconds), None, "{not_seconds:?}");
        }
    }

    #[test]
    fn every_cause_has_its_error() {
        use ResponseError::*;
        let cases = [
            (b"garbage\r\n\r\n".to_vec(), Malformed),
            (b"HTTP/1.1 099 Low\r\n\r\n".to_vec(), Malformed),
            (b"HTTP/1.1 101\r\nBad Header\r\n\r\n".to_vec(), Malformed),
            (replace("HTTP/1.1", "HTTP/1.0"), HttpVersion),
            (replace("Upgrade: websocket", "Upgrade: h2c"), NotUpgrade),
            (
                replace("Connection: Upgrade", "Connection: close"),
                ConnectionNotUpgrade,
            ),
            (
                replace("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", ""),
                MissingAccept,
            ),
            (
                replace(
                    "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
                    "s3pPLMBiTxaQ9kYGzzhZRbK+xOA=",
                ),
                AcceptMismatch,
            ),
            (
                replace(
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
                     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
                ),
                AcceptMismatch,
            ),
            (
                replace("Protocol: chat", "Protocol: other"),
                ProtocolNotRequested,
            ),
            (
                replace("Protocol: chat", "Protocol: Chat"),
                ProtocolNotRequested,
            ),
            (
                replace("Protocol: chat", "Protocol: chat, superchat"),
                ProtocolNotRequested,
            ),
            (
                replace("Protocol: chat", "Protocol: "),
                ProtocolNotRequested,
            ),
            (
                replace(
                    "Protocol: chat\r\n",
                    "Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n",
                ),
                ProtocolNotRequested,
            ),
            (
                replace(
                    "Protocol: chat\r\n",
                    "Protocol: chat\r\nSec-WebSocket-Extensions: x-bar\r\n",
                ),
                ExtensionNotRequested,
            ),
            (
                [
                    &OK[..OK.len() - 2],
                    b"Sec-WebSocket-Extensions: \xc3\x28\r\n\r\n",
                ]
                .concat(),
                ExtensionNotRequested,
            ),
        ];
        for (response, expected) in cases {
            assert_eq!(
                parse(&response),
                Err(expected),
                "{}",
                std::string::String::from_utf8_lossy(&response)
            );
            assert!(!std::format!("{expected}").is_empty());
        }
        let mut headers = [EMPTY_HEADER; 2];
        assert_eq!(
            ClientHandshake::new(NONCE).parse_response(&REQUEST, OK, &mut headers),
            Err(TooManyHeaders)
        );
        let mut headers = [EMPTY_HEADER; 8];
        let limits = HeadLimits::DEFAULT.with_max_head_bytes(16);
        assert_eq!(
            ClientHandshake::new(NONCE).parse_response_with(&REQUEST, OK, &mut headers, limits),
            Err(HeadTooLarge)
        );
    }
}
