//! Handshake helpers shared by the `std` adapters: buffer a request or response head,
//! ask the application about a request, and produce the bytes to answer with. No I/O:
//! the adapter reads with `read_with` (as for [`Driver::read_with`](crate::Driver::read_with))
//! and writes what comes out.
//!
//! - [`Settings`](crate::Settings): everything an adapter connection is configured with (the core
//!   [`Config`](sockeye_proto::Config), buffer sizes, handshake and connect timeouts, head limits).
//! - [`ServerUpgrade`]: reads the request head; [`ServerUpgrade::poll_head`] validates it, asks
//!   the application's [`Verdict`], and returns a [`ServerAnswer`]: the `101` response
//!   (plus any frames the client sent early) or the refusal to write before closing.
//! - [`ClientUpgrade`]: writes the request for a nonce; [`ClientUpgrade::poll`] checks the
//!   server's response and returns a [`ClientAnswer`] (accepted, or the server's refusal
//!   as an owned [`RejectedResponse`], with its body once that has ended).

use core::fmt;

use std::string::String;
use std::task::Poll;
use std::vec::Vec;

use crate::verdict::{Reject, Verdict};
use crate::Error;

use sockeye_proto::extension::deflate_offers;
use sockeye_proto::handshake::body::{BodyLength, ChunkedDecoder};
use sockeye_proto::handshake::{
    parse_request_with, ClientHandshake, ClientRequest, HeadLimits, Header, Rejection,
    RequestError, Response, ResponseError, UpgradeRequest, Url, WriteError, EMPTY_HEADER,
};
use sockeye_proto::{DeflateConfig, DeflateParams, Status};

/// How many header lines a request or response head may have (more is a 431).
pub const MAX_HEADERS: usize = 64;

/// A head being read (and, for a client turned down, the body after it): bytes `..len`
/// of `buf`, growing up to `limit`.
#[derive(Debug)]
struct HeadBuffer {
    buf: Vec<u8>,
    len: usize,
    limit: usize,
    /// A read returned end of stream.
    eof: bool,
}

impl HeadBuffer {
    fn new(limits: HeadLimits) -> Self {
        HeadBuffer {
            buf: Vec::new(),
            len: 0,
            limit: limits.max_head_bytes.max(1),
            eof: false,
        }
    }

    fn is_full(&self) -> bool {
        self.len >= self.limit
    }

    fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        if self.is_full() {
            // The parser refuses a head this long (or a rejection's body has reached
            // its limit); nothing more is read.
            return Poll::Ready(Ok(0));
        }
        if self.len == self.buf.len() {
            let size = (self.buf.len() * 2).max(1024).min(self.limit);
            self.buf.resize(size, 0);
        }
        let spare = &mut self.buf[self.len..];
        let room = spare.len();
        let result = read(spare);
        if let Poll::Ready(Ok(n)) = &result {
            self.len += (*n).min(room);
            self.eof |= *n == 0;
        }
        result
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Writes a head with `write`, growing the buffer as the writer asks.
fn write_grown(
    mut write: impl FnMut(&mut [u8]) -> Result<usize, WriteError>,
) -> Result<Vec<u8>, WriteError> {
    let mut out = std::vec![0u8; 512];
    loop {
        match write(&mut out) {
            Ok(n) => {
                out.truncate(n);
                return Ok(out);
            }
            Err(WriteError::BufferTooSmall { needed }) if needed > out.len() => {
                out.resize(needed, 0);
            }
            Err(error) => return Err(error),
        }
    }
}

/// Extra header lines, owned.
pub type OwnedHeaders = Vec<(String, Vec<u8>)>;

/// The permessage-deflate both ends agreed, with this end's policy: what
/// [`Driver::enable_compression`](crate::Driver::enable_compression) takes.
pub type Agreed = (DeflateParams, DeflateConfig);

fn owned_headers(headers: &[Header<'_>]) -> OwnedHeaders {
    headers
        .iter()
        .map(|h| (String::from(h.name), h.value.to_vec()))
        .collect()
}

/// The value of the first of `headers` called `name` (ASCII case-insensitive).
fn owned_header<'h>(headers: &'h OwnedHeaders, name: &str) -> Option<&'h [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn borrowed_headers(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect()
}

/// Why the server turned a handshake down (the response is in [`ServerAnswer::Refuse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The request is not a valid upgrade: 400, 426 or 431 from
    /// [`RequestError::rejection`].
    Invalid(RequestError),
    /// The application rejected a valid request with this status.
    Rejected(u16),
    /// The application's [`Verdict`] could not be written (a subprotocol the client did
    /// not offer, a malformed header): answered with 500.
    BadVerdict(WriteError),
}

impl Refusal {
    /// The HTTP status that was sent.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Invalid(error) => error.rejection().status(),
            Refusal::Rejected(status) => *status,
            Refusal::BadVerdict(_) => 500,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Invalid(error) => write!(f, "{} ({error})", self.status()),
            Refusal::Rejected(status) => write!(f, "{status} (rejected by the application)"),
            Refusal::BadVerdict(error) => write!(f, "500 (the verdict cannot be written: {error})"),
        }
    }
}

/// What the server answers, once the request head is complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAnswer<T = ()> {
    /// Write `response` (the `101`), then run the connection; `early` holds frames the
    /// client sent right after its request (pass them to
    /// [`Driver::push_bytes`](crate::Driver::push_bytes)).
    Accept {
        /// The `101 Switching Protocols` response.
        response: Vec<u8>,
        /// The chosen subprotocol.
        protocol: Option<String>,
        /// The permessage-deflate agreed, if any (give it to
        /// [`Driver::enable_compression`](crate::Driver::enable_compression)).
        compression: Option<Agreed>,
        /// Bytes after the request head.
        early: Vec<u8>,
        /// The application's data from its [`Accept`](crate::verdict::Accept).
        data: T,
    },
    /// Write `response`, flush, close the connection, and report `refusal`.
    Refuse {
        /// The HTTP response (400, 426, 431, the application's status, or 500).
        response: Vec<u8>,
        /// Why.
        refusal: Refusal,
    },
}

/// The server's side of the opening handshake, without I/O.
///
/// ```
/// use std::task::Poll;
/// use sockeye_engine::{ServerAnswer, ServerUpgrade, Verdict};
/// use sockeye_proto::handshake::HeadLimits;
///
/// let request = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
/// let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
/// let _ = upgrade.read_with(|buf| {
///     buf[..request.len()].copy_from_slice(request);
///     Poll::<Result<usize, ()>>::Ready(Ok(request.len()))
/// });
/// let Some(Ok(head)) = upgrade.poll_head() else { panic!() };
/// assert_eq!(head.path(), "/chat");
/// let verdict = Verdict::accept().with_protocol("chat");
/// let Some(ServerAnswer::Accept { response, protocol, .. }) = upgrade.answer(verdict) else {
///     panic!()
/// };
/// assert!(response.starts_with(b"HTTP/1.1 101 "));
/// assert_eq!(protocol.as_deref(), Some("chat"));
/// ```
#[derive(Debug)]
pub struct ServerUpgrade {
    head: HeadBuffer,
    limits: HeadLimits,
    compression: Option<DeflateConfig>,
}

impl ServerUpgrade {
    /// A handshake reading a request head of at most `limits.max_head_bytes`.
    pub fn new(limits: HeadLimits) -> Self {
        ServerUpgrade {
            head: HeadBuffer::new(limits),
            limits,
            compression: None,
        }
    }

    /// Negotiates permessage-deflate with this policy ([`Settings::compression`]) unless
    /// the verdict's [`Accept`](crate::verdict::Accept) chooses otherwise.
    ///
    /// [`Settings::compression`]: crate::Settings::compression
    ///
    /// ```
    /// use std::task::Poll;
    /// use sockeye_engine::{ServerAnswer, ServerUpgrade, Verdict};
    /// use sockeye_proto::handshake::HeadLimits;
    /// use sockeye_proto::DeflateConfig;
    ///
    /// let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    /// let mut upgrade =
    ///     ServerUpgrade::new(HeadLimits::DEFAULT).with_compression(Some(DeflateConfig::default()));
    /// let _ = upgrade.read_with(|buf| {
    ///     buf[..request.len()].copy_from_slice(request);
    ///     Poll::<Result<usize, ()>>::Ready(Ok(request.len()))
    /// });
    /// let Some(Ok(head)) = upgrade.poll_head() else { panic!() };
    /// assert!(head.deflate_offered());
    /// let Some(ServerAnswer::Accept { compression, .. }) = upgrade.answer(Verdict::accept()) else {
    ///     panic!()
    /// };
    /// let (params, _config) = compression.unwrap();
    /// assert!(params.server_no_context_takeover);
    /// ```
    pub fn with_compression(mut self, compression: Option<DeflateConfig>) -> Self {
        self.compression = compression;
        self
    }

    /// Reads once into free buffer space (see [`Driver::read_with`](crate::Driver::read_with));
    /// `Ready(Ok(0))` is end of stream. Call [`poll_head`](Self::poll_head) after every read.
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        self.head.read_with(read)
    }

    /// `None` while the head is incomplete; then the valid request, owned, to decide on
    /// (at once, or later: a session looked up, an authorization service asked) and give
    /// its verdict to [`answer`](Self::answer), or the refusal to write for an invalid
    /// one, which the application never sees.
    ///
    /// ```
    /// use std::task::Poll;
    /// use sockeye_engine::{ServerAnswer, ServerUpgrade, Verdict};
    /// use sockeye_proto::handshake::HeadLimits;
    ///
    /// let request = b"GET /room/7 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    ///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    ///     Sec-WebSocket-Version: 13\r\nCookie: session=x\r\n\r\n";
    /// let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
    /// let _ = upgrade.read_with(|buf| {
    ///     buf[..request.len()].copy_from_slice(request);
    ///     Poll::<Result<usize, ()>>::Ready(Ok(request.len()))
    /// });
    /// let Some(Ok(head)) = upgrade.poll_head() else { panic!() };
    /// // ... later, once the session store has answered:
    /// assert_eq!((head.path(), head.header("cookie")), ("/room/7", Some(&b"session=x"[..])));
    /// let verdict: Verdict = Verdict::reject(401, "Unauthorized").with_body("session expired").into();
    /// let Some(ServerAnswer::Refuse { response, .. }) = upgrade.answer(verdict) else {
    ///     panic!()
    /// };
    /// assert!(response.starts_with(b"HTTP/1.1 401 Unauthorized\r\n"));
    /// ```
    pub fn poll_head(&mut self) -> Option<Result<RequestHead, ServerAnswer>> {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let bytes = self.head.bytes();
        match parse_request_with(bytes, &mut headers, self.limits) {
            Ok(Status::Partial) => None,
            Ok(Status::Complete(request)) => Some(Ok(RequestHead::of(&request))),
            Err(error) if is_plain(error) => match RequestHead::plain(bytes) {
                Some(head) => Some(Ok(head)),
                None => Some(Err(invalid(error))),
            },
            Err(error) => Some(Err(invalid(error))),
        }
    }

    /// The answer to write for the request [`poll_head`](Self::poll_head) returned, with
    /// `verdict`. `None` if the head is not complete yet.
    ///
    /// A request that is not an upgrade (see [`RequestHead::is_upgrade`]) cannot be
    /// accepted: an acceptance gets the `400` it would have had; a rejection is written
    /// as given (a 404, a health check's 200, a redirect).
    pub fn answer<T>(&mut self, verdict: impl Into<Verdict<T>>) -> Option<ServerAnswer<T>> {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let bytes = self.head.bytes();
        match (
            parse_request_with(bytes, &mut headers, self.limits),
            verdict.into(),
        ) {
            (Ok(Status::Partial), _) => None,
            (Ok(Status::Complete(request)), verdict) => {
                let answer = respond(&request, bytes, verdict, self.compression);
                trace_answer(request.path(), &answer);
                Some(answer)
            }
            (Err(error), Verdict::Reject(reject)) if is_plain(error) => {
                let answer = reject_with(reject);
                trace_answer("", &answer);
                Some(answer)
            }
            (Err(error), _) => Some(invalid(error)),
        }
    }
}

/// A valid upgrade request, owned: what the application decides on (see
/// [`ServerUpgrade::poll_head`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    method: String,
    upgrade: bool,
    target: String,
    host: String,
    origin: Option<String>,
    protocols: Vec<String>,
    extensions: Vec<String>,
    headers: OwnedHeaders,
}

impl RequestHead {
    /// The owned view of a validated request (an HTTP/1.1 upgrade or an extended
    /// CONNECT), for adapters whose HTTP server parsed it (see [`answer_fields`]).
    pub fn of(request: &UpgradeRequest<'_, '_>) -> Self {
        let method = if request.is_extended_connect() {
            "CONNECT"
        } else {
            "GET"
        };
        RequestHead {
            method: String::from(method),
            upgrade: true,
            target: String::from(request.path()),
            host: String::from(request.host()),
            origin: request.origin().map(String::from),
            protocols: request.protocols().map(String::from).collect(),
            extensions: request.extensions().map(String::from).collect(),
            headers: owned_headers(request.headers()),
        }
    }

    /// A well-formed HTTP request that is not an upgrade (`None` if `bytes` do not hold
    /// one).
    fn plain(bytes: &[u8]) -> Option<Self> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        request.parse(bytes).ok()?.is_complete().then_some(())?;
        let trimmed = |name: &str| {
            let value = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))?
                .value;
            core::str::from_utf8(value)
                .ok()
                .map(|v| String::from(v.trim()))
        };
        Some(RequestHead {
            method: String::from(request.method?),
            upgrade: false,
            target: String::from(request.path?),
            host: trimmed("host").unwrap_or_default(),
            origin: trimmed("origin"),
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: request
                .headers
                .iter()
                .map(|h| (String::from(h.name), h.value.to_vec()))
                .collect(),
        })
    }

    /// Whether this is a WebSocket upgrade. A plain HTTP request (a browser tab, a health
    /// check, a scanner) is `false`: answer it with a
    /// [`Verdict::reject`](crate::Verdict::reject) of any status (404, 200 with a body, a
    /// redirect); accepting it answers `400`.
    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }

    /// The method (`GET` for every HTTP/1.1 upgrade, `CONNECT` for an HTTP/2 one).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path, without the query (`/chat` for `/chat?room=1`).
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(&self.target, |(path, _)| path)
    }

    /// The query, after the first `?`, if any (`room=1` for `/chat?room=1`).
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, query)| query)
    }

    /// The request target as sent: the path with its query (`/chat?room=1`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The `Host` header value (trimmed; may include a port).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The `Origin` header value (trimmed), sent by browsers; `None` if absent.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The first subprotocol, in the client's order of preference, that `supported`
    /// holds (as [`UpgradeRequest::select_protocol`]).
    pub fn select_protocol<'s>(&self, supported: &[&'s str]) -> Option<&'s str> {
        sockeye_proto::handshake::server::first_supported(
            self.protocols.iter().map(String::as_str),
            supported,
        )
    }

    /// The extension offers (`Sec-WebSocket-Extensions`), each with its parameters
    /// (`permessage-deflate; client_max_window_bits`), across repeated header lines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Whether the client offers permessage-deflate (in at least one valid offer), so
    /// that an [`Accept::with_compression`](crate::verdict::Accept::with_compression)
    /// can take effect.
    pub fn deflate_offered(&self) -> bool {
        deflate_offers(self.extensions.iter().map(String::as_str)).any(|offer| offer.is_ok())
    }

    /// Every header line of the request.
    pub fn headers(&self) -> &OwnedHeaders {
        &self.headers
    }

    /// The value of the first header called `name` (ASCII case-insensitive), untrimmed.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        owned_header(&self.headers, name)
    }
}

/// Whether `error` means a well-formed HTTP request that is simply not an upgrade (a
/// browser tab, a health check, a scanner): the application may answer it.
fn is_plain(error: RequestError) -> bool {
    matches!(
        error,
        RequestError::NotUpgrade | RequestError::ConnectionNotUpgrade | RequestError::MethodNotGet
    )
}

/// The `tracing` event for the answer to a request for `path`.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
fn trace_answer<T>(path: &str, answer: &ServerAnswer<T>) {
    match answer {
        ServerAnswer::Accept {
            protocol,
            compression,
            ..
        } => crate::trace::debug!(
            path,
            ?protocol,
            compression = ?compression.map(|(params, _)| params),
            "upgrade accepted"
        ),
        ServerAnswer::Refuse { refusal, .. } => {
            crate::trace::debug!(path, %refusal, "upgrade refused")
        }
    }
}

/// The refusal of a request that is not a valid upgrade.
fn invalid<T>(error: RequestError) -> ServerAnswer<T> {
    crate::trace::debug!(%error, status = error.rejection().status(), "upgrade refused");
    refuse(|out| error.rejection().write(out), Refusal::Invalid(error))
}

/// The answer to a valid `request` (read from `bytes`) with `verdict`; `compression` is
/// the policy unless the verdict has its own.
fn respond<T>(
    request: &UpgradeRequest<'_, '_>,
    bytes: &[u8],
    verdict: Verdict<T>,
    compression: Option<DeflateConfig>,
) -> ServerAnswer<T> {
    match verdict {
        Verdict::Accept(accept) => {
            let extra = borrowed_headers(&accept.headers);
            let agreed = agree(request, accept.compression, compression);
            let params = sockeye_proto::Accept::new()
                .with_protocol(accept.protocol.as_deref())
                .with_deflate(agreed.map(|(params, _)| params))
                .with_headers(&extra);
            match write_grown(|out| request.accept(&params, out)) {
                Ok(response) => ServerAnswer::Accept {
                    response,
                    protocol: accept.protocol,
                    compression: agreed,
                    early: bytes[request.head_len()..].to_vec(),
                    data: accept.data,
                },
                Err(error) => refuse(
                    |out| Rejection::custom(500, "Internal Server Error", &[]).write(out),
                    Refusal::BadVerdict(error),
                ),
            }
        }
        Verdict::Reject(reject) => reject_with(reject),
    }
}

/// The answer to a request as a status and header fields, for an adapter over an HTTP
/// server that writes its responses itself (hyper, over HTTP/1.1 and HTTP/2): see
/// [`answer_fields`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldAnswer<T = ()> {
    /// Answer `status` (`101` for HTTP/1.1, `200` for an extended CONNECT) with
    /// `headers`, then run the connection on the upgraded stream.
    Accept {
        /// `101` or `200`.
        status: u16,
        /// The response's header fields, in order.
        headers: OwnedHeaders,
        /// The chosen subprotocol.
        protocol: Option<String>,
        /// The permessage-deflate agreed, if any.
        compression: Option<Agreed>,
        /// The application's data from its [`Accept`](crate::verdict::Accept).
        data: T,
    },
    /// Answer with this status, headers and body; there is no WebSocket.
    Refuse {
        /// The status code.
        status: u16,
        /// The reason phrase (HTTP/1.1 only).
        reason: String,
        /// The header fields, in order. Those that only HTTP/1.1 knows (`Connection`,
        /// `Upgrade`) must be dropped for HTTP/2.
        headers: OwnedHeaders,
        /// The body.
        body: Vec<u8>,
        /// Why.
        refusal: Refusal,
    },
}

/// The answer to a validated `request` with `verdict`, as fields (see [`FieldAnswer`]);
/// `compression` is the policy unless the verdict has its own. The same rules as
/// [`ServerUpgrade::answer`]: a verdict that cannot be written as given (a subprotocol
/// the client did not offer, a malformed header) is a `500`,
/// [`Refusal::BadVerdict`].
///
/// ```
/// use sockeye_engine::handshake::{answer_fields, FieldAnswer};
/// use sockeye_engine::{RequestHead, Verdict};
/// use sockeye_proto::handshake::{validate_extended_connect, Header};
///
/// let fields = [Header { name: "sec-websocket-version", value: b"13" }];
/// let request =
///     validate_extended_connect("CONNECT", Some("websocket"), "/", Some("a"), &fields).unwrap();
/// assert_eq!(RequestHead::of(&request).method(), "CONNECT");
/// let FieldAnswer::Accept { status, headers, .. } = answer_fields(&request, Verdict::accept(), None)
/// else {
///     panic!("accepted")
/// };
/// assert_eq!((status, headers.len()), (200, 0));
/// ```
pub fn answer_fields<T>(
    request: &UpgradeRequest<'_, '_>,
    verdict: impl Into<Verdict<T>>,
    compression: Option<DeflateConfig>,
) -> FieldAnswer<T> {
    match verdict.into() {
        Verdict::Accept(accept) => {
            let extra = borrowed_headers(&accept.headers);
            let agreed = agree(request, accept.compression, compression);
            let params = sockeye_proto::Accept::new()
                .with_protocol(accept.protocol.as_deref())
                .with_deflate(agreed.map(|(params, _)| params))
                .with_headers(&extra);
            let mut headers = OwnedHeaders::new();
            match request.answer(&params, |name, value| {
                headers.push((String::from(name), value.to_vec()))
            }) {
                Ok(status) => {
                    crate::trace::debug!(
                        path = request.path(),
                        protocol = ?accept.protocol,
                        compression = ?agreed.map(|(params, _)| params),
                        extended_connect = request.is_extended_connect(),
                        "upgrade accepted"
                    );
                    FieldAnswer::Accept {
                        status,
                        headers,
                        protocol: accept.protocol,
                        compression: agreed,
                        data: accept.data,
                    }
                }
                Err(error) => internal_error(Refusal::BadVerdict(error)),
            }
        }
        Verdict::Reject(reject) => {
            let extra = borrowed_headers(&reject.headers);
            let rejection = Rejection::custom(reject.status, &reject.reason, &extra);
            crate::trace::debug!(
                path = request.path(),
                status = reject.status,
                "upgrade refused"
            );
            match rejection.with_body(&reject.body).check() {
                Ok(()) => FieldAnswer::Refuse {
                    status: reject.status,
                    refusal: Refusal::Rejected(reject.status),
                    reason: reject.reason,
                    headers: reject.headers,
                    body: reject.body,
                },
                Err(error) => internal_error(Refusal::BadVerdict(error)),
            }
        }
    }
}

/// The answer to a request that is not a valid upgrade (see
/// [`RequestError::rejection`]), as fields.
pub fn refuse_fields<T>(error: RequestError) -> FieldAnswer<T> {
    let rejection = error.rejection();
    crate::trace::debug!(%error, status = rejection.status(), "upgrade refused");
    FieldAnswer::Refuse {
        status: rejection.status(),
        reason: String::from(rejection.reason()),
        headers: owned_pairs(rejection.headers()),
        body: rejection.body().to_vec(),
        refusal: Refusal::Invalid(error),
    }
}

fn internal_error<T>(refusal: Refusal) -> FieldAnswer<T> {
    FieldAnswer::Refuse {
        status: 500,
        reason: String::from("Internal Server Error"),
        headers: OwnedHeaders::new(),
        body: Vec::new(),
        refusal,
    }
}

fn owned_pairs(headers: &[(&str, &[u8])]) -> OwnedHeaders {
    headers
        .iter()
        .map(|(name, value)| (String::from(*name), value.to_vec()))
        .collect()
}

/// The permessage-deflate agreed with `request`: under the verdict's own policy if it
/// has one (`Some(None)` declines), else the settings' `policy`.
fn agree(
    request: &UpgradeRequest<'_, '_>,
    verdict: Option<Option<DeflateConfig>>,
    policy: Option<DeflateConfig>,
) -> Option<Agreed> {
    verdict
        .unwrap_or(policy)
        .and_then(|config| Some((request.negotiate_deflate(&config)?, config)))
}

/// The application's own status, headers and body.
fn reject_with<T>(reject: Reject) -> ServerAnswer<T> {
    let extra = borrowed_headers(&reject.headers);
    let rejection =
        Rejection::custom(reject.status, &reject.reason, &extra).with_body(&reject.body);
    match write_grown(|out| rejection.write(out)) {
        Ok(response) => ServerAnswer::Refuse {
            response,
            refusal: Refusal::Rejected(reject.status),
        },
        Err(error) => refuse(
            |out| Rejection::custom(500, "Internal Server Error", &[]).write(out),
            Refusal::BadVerdict(error),
        ),
    }
}

fn refuse<T>(
    write: impl FnMut(&mut [u8]) -> Result<usize, WriteError>,
    refusal: Refusal,
) -> ServerAnswer<T> {
    // The constant rejections always fit and are always valid.
    let response = write_grown(write).unwrap_or_default();
    ServerAnswer::Refuse { response, refusal }
}

/// A server's non-`101` answer, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedResponse {
    /// The status code (403, 503 ...).
    pub status: u16,
    /// The reason phrase.
    pub reason: String,
    /// Every header line.
    pub headers: OwnedHeaders,
    /// The body, with any chunked transfer coding undone: at most
    /// [`HeadLimits::max_rejection_body`] bytes. Often the server's reason in words
    /// (`{"error":"token expired"}`, a maintenance page).
    pub body: Vec<u8>,
    /// Whether `body` is all of it. False when it was cut at the limit, the server
    /// closed or the handshake timed out before it ended, or its length or chunks were
    /// malformed.
    pub body_complete: bool,
}

impl RejectedResponse {
    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        owned_header(&self.headers, name)
    }

    /// How long the server asked the client to wait before trying again: its
    /// `Retry-After` header, when that is a number of seconds (see
    /// [`retry_after`](sockeye_proto::handshake::client::retry_after)).
    pub fn retry_after(&self) -> Option<core::time::Duration> {
        self.header("Retry-After")
            .and_then(sockeye_proto::handshake::client::retry_after)
    }

    /// The same, also reading an HTTP date (`Retry-After: Wed, 21 Oct 2026 07:28:00
    /// GMT`) against `now`, the wall clock (see
    /// [`retry_after_at`](sockeye_proto::handshake::client::retry_after_at)). A `now` before
    /// 1970 counts as 1970.
    pub fn retry_after_at(&self, now: std::time::SystemTime) -> Option<core::time::Duration> {
        let now = now
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        self.header("Retry-After")
            .and_then(|value| sockeye_proto::handshake::client::retry_after_at(value, now))
    }
}

impl fmt::Display for RejectedResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.reason)
    }
}

/// The server's answer as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAnswer {
    /// A valid `101`: the connection is a WebSocket.
    Accepted {
        /// The subprotocol the server chose.
        protocol: Option<String>,
        /// The permessage-deflate the server agreed to, checked against the offer (give
        /// it to [`Driver::enable_compression`](crate::Driver::enable_compression)).
        compression: Option<Agreed>,
        /// Every header line of the response.
        headers: OwnedHeaders,
        /// Frames that followed the response (pass them to
        /// [`Driver::push_bytes`](crate::Driver::push_bytes)).
        early: Vec<u8>,
    },
    /// Any other final status.
    Rejected(RejectedResponse),
}

/// The client's side of the opening handshake, without I/O.
///
/// When the server turns the upgrade down, [`poll`](Self::poll) keeps reading its body
/// (up to [`HeadLimits::max_rejection_body`]) before it answers: the
/// [`RejectedResponse`] comes once the body has ended, the limit is reached or the
/// server has closed. An adapter whose handshake times out first ends it with
/// [`timed_out`](Self::timed_out), so that the rejection is not lost.
#[derive(Debug)]
pub struct ClientUpgrade {
    handshake: ClientHandshake,
    /// What the request offered (subprotocols, extensions), to check the answer against.
    offered_protocols: Vec<String>,
    offered_extensions: Vec<String>,
    offered_deflate: Option<DeflateConfig>,
    head: HeadBuffer,
    limits: HeadLimits,
    /// The rejection whose body is being read, once its head has been parsed.
    rejection: Option<RejectionBody>,
}

/// A rejection's head, and how far its body has been read.
#[derive(Debug)]
struct RejectionBody {
    response: RejectedResponse,
    framing: Framing,
    /// Bytes of the head buffer decoded so far.
    decoded_to: usize,
    /// The body went past the limit, and what did not fit was dropped.
    truncated: bool,
}

#[derive(Debug)]
enum Framing {
    /// `Content-Length`: this many bytes still to come.
    Remaining(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
    /// The body has ended or is cut off; the flag says whether it is whole.
    Finished(bool),
}

/// Room for chunk-size lines and trailers beyond a rejection body's limit.
const CHUNK_FRAMING_ALLOWANCE: usize = 4 * 1024;

impl ClientUpgrade {
    /// A handshake with this `nonce` (16 fresh random bytes); returns it with the request
    /// bytes to write. With [`ClientRequest::deflate`] the request offers
    /// permessage-deflate, and [`poll`](Self::poll) checks the answer against the offer:
    /// an answer that does not fit is [`ResponseError::Extension`].
    pub fn new(
        nonce: [u8; 16],
        request: &ClientRequest<'_>,
        limits: HeadLimits,
    ) -> Result<(Self, Vec<u8>), WriteError> {
        let handshake = ClientHandshake::new(nonce);
        let bytes = write_grown(|out| handshake.write_request(request, out))?;
        Ok((
            ClientUpgrade {
                handshake,
                offered_protocols: request.protocols.iter().map(|p| String::from(*p)).collect(),
                offered_extensions: request
                    .extensions
                    .iter()
                    .map(|e| String::from(*e))
                    .collect(),
                offered_deflate: request.deflate,
                head: HeadBuffer::new(limits),
                limits,
                rejection: None,
            },
            bytes,
        ))
    }

    /// Reads once into free buffer space; `Ready(Ok(0))` is end of stream. Call
    /// [`poll`](Self::poll) after every read.
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        self.head.read_with(read)
    }

    /// `Ok(None)` while the response (a rejection's body included) is incomplete; then
    /// the server's answer, checked against what the request given to [`new`](Self::new)
    /// offered. After end of stream a rejection is always answered, with what came of
    /// its body; `Ok(None)` then means the head itself never ended.
    pub fn poll(&mut self) -> Result<Option<ClientAnswer>, ResponseError> {
        if self.rejection.is_none() {
            let mut headers = [EMPTY_HEADER; MAX_HEADERS];
            let bytes = self.head.bytes();
            let protocols: Vec<&str> = self.offered_protocols.iter().map(String::as_str).collect();
            let extensions: Vec<&str> =
                self.offered_extensions.iter().map(String::as_str).collect();
            let request = ClientRequest::new("", "")
                .with_protocols(&protocols)
                .with_extensions(&extensions)
                .with_deflate(self.offered_deflate);
            let response = match self.handshake.parse_response_with(
                &request,
                bytes,
                &mut headers,
                self.limits,
            )? {
                Status::Partial => return Ok(None),
                Status::Complete(response) => response,
            };
            let rejected = match response {
                Response::Accepted(accepted) => {
                    let config = self.offered_deflate;
                    crate::trace::debug!(
                        protocol = ?accepted.protocol(),
                        compression = ?accepted.deflate(),
                        "upgrade accepted by the server"
                    );
                    return Ok(Some(ClientAnswer::Accepted {
                        protocol: accepted.protocol().map(String::from),
                        compression: accepted.deflate().zip(config),
                        headers: owned_headers(accepted.headers()),
                        early: bytes[accepted.consumed()..].to_vec(),
                    }));
                }
                Response::Rejected(rejected) => {
                    crate::trace::debug!(
                        status = rejected.status(),
                        "upgrade refused by the server"
                    );
                    rejected
                }
            };
            let framing = match rejected.body_length() {
                Ok(BodyLength::Empty) | Ok(BodyLength::Bytes(0)) => Framing::Finished(true),
                Ok(BodyLength::Bytes(length)) => Framing::Remaining(length),
                Ok(BodyLength::Chunked) => Framing::Chunked(ChunkedDecoder::new()),
                Ok(BodyLength::UntilClose) => Framing::UntilClose,
                Err(_) => Framing::Finished(false),
            };
            let consumed = rejected.consumed();
            self.rejection = Some(RejectionBody {
                response: RejectedResponse {
                    status: rejected.status(),
                    reason: String::from(rejected.reason()),
                    headers: owned_headers(rejected.headers()),
                    body: Vec::new(),
                    body_complete: false,
                },
                framing,
                decoded_to: consumed,
                truncated: false,
            });
            self.head.limit = consumed
                .saturating_add(self.limits.max_rejection_body)
                .saturating_add(CHUNK_FRAMING_ALLOWANCE);
        }
        Ok(self.read_rejection_body())
    }

    /// The server's rejection as far as it has come, when its head has been read but its
    /// body has not ended (`body_complete` is then false): for an adapter whose
    /// handshake timed out while the body was still coming. `None` before the head
    /// has ended, and after `poll` has answered.
    pub fn take_rejection(&mut self) -> Option<RejectedResponse> {
        self.rejection.take().map(|mut pending| {
            pending.response.body_complete =
                matches!(pending.framing, Framing::Finished(true)) && !pending.truncated;
            pending.response
        })
    }

    /// What a handshake that ran out of time ends with: the server's rejection, as far as
    /// its body came, if its head arrived ([`take_rejection`](Self::take_rejection)), or
    /// else [`Error::HandshakeTimeout`].
    pub fn timed_out(&mut self) -> Error {
        match self.take_rejection() {
            Some(rejected) => Error::Rejected(rejected),
            None => Error::HandshakeTimeout,
        }
    }

    /// Decodes what has arrived of a rejection's body; the rejection once it has ended.
    fn read_rejection_body(&mut self) -> Option<ClientAnswer> {
        let limit = self.limits.max_rejection_body;
        let eof = self.head.eof;
        let full = self.head.is_full();
        let pending = self.rejection.as_mut()?;
        if limit == 0 {
            // Bodies are not read: the head is the answer, whatever came with it.
            return self.take_rejection().map(ClientAnswer::Rejected);
        }
        let input = &self.head.buf[pending.decoded_to..self.head.len];
        let body = &mut pending.response.body;
        let truncated = &mut pending.truncated;
        let mut keep = |piece: &[u8]| {
            let room = limit - body.len();
            *truncated |= piece.len() > room;
            body.extend_from_slice(&piece[..piece.len().min(room)]);
        };
        match &mut pending.framing {
            Framing::Remaining(left) => {
                let take = usize::try_from(*left).map_or(input.len(), |left| left.min(input.len()));
                keep(&input[..take]);
                pending.decoded_to += take;
                *left -= take as u64;
                if *left == 0 {
                    pending.framing = Framing::Finished(true);
                }
            }
            Framing::Chunked(decoder) => match decoder.decode(input, &mut keep) {
                Ok(used) => {
                    pending.decoded_to += used;
                    if decoder.is_done() {
                        pending.framing = Framing::Finished(true);
                    }
                }
                Err(_) => pending.framing = Framing::Finished(false),
            },
            Framing::UntilClose => {
                keep(input);
                pending.decoded_to += input.len();
                if eof {
                    pending.framing = Framing::Finished(true);
                }
            }
            Framing::Finished(_) => {}
        }
        let ended = matches!(pending.framing, Framing::Finished(_));
        // The body is cut off: it went past the limit (a body exactly as long as the
        // limit is still whole, so the answer does not depend on how reads split it), the
        // server left mid-body, or the buffer holds all the framing it may.
        let cut = pending.truncated || eof || full;
        if !ended && !cut {
            return None;
        }
        self.take_rejection().map(ClientAnswer::Rejected)
    }
}

/// What an adapter's `connect` can take as the request: a [`ClientRequest`] (or a
/// reference to one), a parsed [`Url`], or a `ws://` / `wss://` URL string (the scheme
/// only decides the default port: the stream is the caller's).
pub trait IntoRequest<'a> {
    /// The request, or why there is none.
    fn into_request(self) -> Result<ClientRequest<'a>, Error>;
}

impl<'a> IntoRequest<'a> for ClientRequest<'a> {
    fn into_request(self) -> Result<ClientRequest<'a>, Error> {
        Ok(self)
    }
}

impl<'a> IntoRequest<'a> for &ClientRequest<'a> {
    fn into_request(self) -> Result<ClientRequest<'a>, Error> {
        Ok(*self)
    }
}

impl<'a> IntoRequest<'a> for Url<'a> {
    fn into_request(self) -> Result<ClientRequest<'a>, Error> {
        Ok(self.request())
    }
}

impl<'a> IntoRequest<'a> for &'a str {
    fn into_request(self) -> Result<ClientRequest<'a>, Error> {
        Ok(Url::parse(self)?.request())
    }
}

impl<'a> IntoRequest<'a> for &'a String {
    fn into_request(self) -> Result<ClientRequest<'a>, Error> {
        self.as_str().into_request()
    }
}

/// The subprotocols and headers an upgrade request carries besides what its URL gives,
/// owned: for `connect_url_with` and for a reconnecting client, which sends them on
/// every attempt (and lets a hook change them between attempts: a fresh token).
///
/// ```
/// # use sockeye_engine::RequestExtras;
/// # use sockeye_proto::handshake::{ClientHandshake, Url};
/// let mut extras = RequestExtras::new()
///     .with_protocol("graphql-transport-ws")
///     .with_header("Authorization", "Bearer old");
/// extras.set_header("Authorization", "Bearer new");
///
/// let (protocols, headers) = extras.borrowed();
/// let request = Url::parse("ws://api.example.com/graphql")?
///     .request()
///     .with_protocols(&protocols)
///     .with_headers(&headers);
/// let mut out = [0u8; 512];
/// let n = ClientHandshake::new([7; 16]).write_request(&request, &mut out).unwrap();
/// let head = std::str::from_utf8(&out[..n]).unwrap();
/// assert!(head.contains("Sec-WebSocket-Protocol: graphql-transport-ws\r\n"));
/// assert!(head.contains("Authorization: Bearer new\r\n"));
/// assert!(!head.contains("Bearer old"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestExtras {
    /// The subprotocols offered, in order of preference.
    pub protocols: Vec<String>,
    /// Extra headers, written in order. The handshake's own (`Host`, `Upgrade`,
    /// `Sec-WebSocket-*` ...) cannot be among them: writing the request fails with
    /// [`WriteError::InvalidField`], as it does for a name or value that cannot be
    /// written.
    pub headers: OwnedHeaders,
}

impl RequestExtras {
    /// No subprotocols, no headers.
    pub fn new() -> Self {
        RequestExtras::default()
    }

    /// Also offering the subprotocol `protocol` (after those already offered).
    pub fn with_protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// With one more header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Replaces every header called `name` (ASCII case-insensitive) with one line
    /// `name: value`, where the first of them was (at the end if there was none).
    pub fn set_header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        let first = self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name));
        self.remove_header(name);
        // Nothing before the first match was removed, so its index still holds.
        let at = first.unwrap_or(self.headers.len());
        self.headers.insert(at, (String::from(name), value.into()));
    }

    /// Removes every header called `name` (ASCII case-insensitive).
    pub fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The lists as a [`ClientRequest`] borrows them:
    /// `request.with_protocols(&protocols).with_headers(&headers)`.
    pub fn borrowed(&self) -> (Vec<&str>, Vec<(&str, &[u8])>) {
        (
            self.protocols.iter().map(String::as_str).collect(),
            borrowed_headers(&self.headers),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ClientRequest;
    use crate::verdict::Accept;
    use std::string::ToString;

    type ReadFn<'a> = dyn FnMut(&mut [u8]) -> Poll<Result<usize, ()>> + 'a;

    /// Feeds `bytes` through a `read_with`-style function, as many reads as it takes.
    fn feed(read: &mut dyn FnMut(&mut ReadFn<'_>) -> Poll<Result<usize, ()>>, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            let mut step = |buf: &mut [u8]| {
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                Poll::Ready(Ok(n))
            };
            let Poll::Ready(Ok(n)) = read(&mut step) else {
                panic!()
            };
            assert!(n > 0);
            rest = &rest[n..];
        }
    }

    fn server_answer(request: &[u8], verdict: Option<Verdict>) -> ServerAnswer {
        let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
        feed(&mut |f| upgrade.read_with(f), request);
        match upgrade.poll_head().expect("complete") {
            Err(refusal) => refusal,
            Ok(_) => upgrade
                .answer(verdict.unwrap_or_else(|| Verdict::accept().into()))
                .expect("complete"),
        }
    }

    const REQUEST: &[u8] = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

    #[test]
    fn server_accepts_and_keeps_early_frames() {
        let mut request = REQUEST.to_vec();
        request.extend_from_slice(b"\x81\x80abcd");
        match server_answer(&request, None) {
            ServerAnswer::Accept {
                response,
                protocol,
                early,
                ..
            } => {
                assert!(response.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
                assert_eq!(protocol, None);
                assert_eq!(early, b"\x81\x80abcd");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn server_refusals_carry_their_response() {
        let plain = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let ServerAnswer::Refuse { response, refusal } = server_answer(plain, None) else {
            panic!()
        };
        assert_eq!(refusal, Refusal::Invalid(RequestError::NotUpgrade));
        assert!(response.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));

        let ServerAnswer::Refuse { response, refusal } =
            server_answer(REQUEST, Some(Verdict::reject(403, "Forbidden").into()))
        else {
            panic!()
        };
        assert_eq!((refusal, refusal.status()), (Refusal::Rejected(403), 403));
        assert!(response.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));

        let ServerAnswer::Refuse { response, refusal } = server_answer(
            REQUEST,
            Some(Verdict::accept().with_protocol("nope").into()),
        ) else {
            panic!()
        };
        assert_eq!(refusal, Refusal::BadVerdict(WriteError::ProtocolNotOffered));
        assert!(response.starts_with(b"HTTP/1.1 500 "));
    }

    #[test]
    fn server_refuses_a_head_over_the_limit() {
        let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT.with_max_head_bytes(64));
        feed(&mut |f| upgrade.read_with(f), &[b'a'; 64]);
        let Some(Err(ServerAnswer::Refuse { refusal, .. })) = upgrade.poll_head() else {
            panic!()
        };
        assert_eq!(refusal.status(), 431);
        // Nothing more is read once the head is at its limit.
        let read = upgrade.read_with(|_| Poll::<Result<usize, ()>>::Ready(Ok(5)));
        assert_eq!(read, Poll::Ready(Ok(0)));
    }

    #[test]
    fn a_decision_that_waits_sees_the_request_owned() {
        let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
        let with_origin = [
            &REQUEST[..REQUEST.len() - 2],
            b"Origin: https://a.example\r\nSec-WebSocket-Protocol: v2\r\n\r\n\x81\x80abcd",
        ]
        .concat();
        feed(&mut |f| upgrade.read_with(f), &with_origin[..20]);
        assert_eq!(upgrade.poll_head(), None);
        assert_eq!(upgrade.answer(Verdict::accept()), None);
        feed(&mut |f| upgrade.read_with(f), &with_origin[20..]);
        let Some(Ok(head)) = upgrade.poll_head() else {
            panic!()
        };
        assert_eq!(
            (head.path(), head.query(), head.host()),
            ("/chat", None, "a")
        );
        assert_eq!(head.origin(), Some("https://a.example"));
        assert_eq!(head.protocols(), ["chat", "v2"]);
        assert_eq!(head.select_protocol(&["v2", "chat"]), Some("chat"));
        assert_eq!(head.header("sec-websocket-version"), Some(&b"13"[..]));
        let Some(ServerAnswer::Accept {
            protocol, early, ..
        }) = upgrade.answer(Verdict::accept().with_protocol("v2"))
        else {
            panic!()
        };
        assert_eq!(
            (protocol.as_deref(), early.as_slice()),
            (Some("v2"), &b"\x81\x80abcd"[..])
        );

        // An invalid upgrade is refused without asking anyone.
        let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
        feed(
            &mut |f| upgrade.read_with(f),
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\n\r\n",
        );
        let Some(Err(ServerAnswer::Refuse { refusal, .. })) = upgrade.poll_head() else {
            panic!()
        };
        assert_eq!(refusal.status(), 400);

        // A plain HTTP request is shown, as such; accepting it answers 400, and any
        // other answer is written as given.
        for (verdict, status) in [
            (Verdict::from(Verdict::accept()), 400),
            (Verdict::from(Verdict::reject(404, "Not Found")), 404),
        ] {
            let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
            feed(
                &mut |f| upgrade.read_with(f),
                b"POST /form?a=1 HTTP/1.1\r\nHost: a\r\n\r\n",
            );
            let Some(Ok(head)) = upgrade.poll_head() else {
                panic!()
            };
            assert!(!head.is_upgrade());
            assert_eq!(
                (head.method(), head.path(), head.query()),
                ("POST", "/form", Some("a=1"))
            );
            let Some(ServerAnswer::Refuse { refusal, .. }) = upgrade.answer(verdict) else {
                panic!()
            };
            assert_eq!(refusal.status(), status);
        }
    }

    #[test]
    fn client_round_trip_and_rejection() {
        let request = ClientRequest::new("a", "/chat").with_protocols(&["chat"]);
        let (mut client, bytes) =
            ClientUpgrade::new([9; 16], &request, HeadLimits::DEFAULT).unwrap();
        let answer = server_answer(
            &bytes,
            Some(
                Verdict::accept()
                    .with_protocol("chat")
                    .with_header("X-A", "1")
                    .into(),
            ),
        );
        let ServerAnswer::Accept { response, .. } = answer else {
            panic!()
        };
        let mut wire = response.clone();
        wire.extend_from_slice(b"\x81\x00");
        feed(&mut |f| client.read_with(f), &wire[..10]);
        assert_eq!(client.poll(), Ok(None));
        feed(&mut |f| client.read_with(f), &wire[10..]);
        let Ok(Some(ClientAnswer::Accepted {
            protocol,
            headers,
            early,
            ..
        })) = client.poll()
        else {
            panic!()
        };
        assert_eq!(protocol.as_deref(), Some("chat"));
        assert!(headers.iter().any(|(n, v)| n == "X-A" && v == b"1"));
        assert_eq!(early, b"\x81\x00");

        let (mut client, _) = ClientUpgrade::new([9; 16], &request, HeadLimits::DEFAULT).unwrap();
        feed(
            &mut |f| client.read_with(f),
            b"HTTP/1.1 503 Busy\r\nRetry-After: 3\r\n\r\nBack soon",
        );
        // No Content-Length: the body runs until the server closes.
        assert_eq!(client.poll(), Ok(None));
        end_of_stream(&mut client);
        let Ok(Some(ClientAnswer::Rejected(rejected))) = client.poll() else {
            panic!()
        };
        assert_eq!((rejected.status, rejected.reason.as_str()), (503, "Busy"));
        assert_eq!(rejected.header("retry-after"), Some(&b"3"[..]));
        assert_eq!(
            (rejected.body.as_slice(), rejected.body_complete),
            (&b"Back soon"[..], true)
        );
        assert_eq!(rejected.to_string(), "503 Busy");
    }

    /// A client offering `client` and a server with policy `server` deciding with
    /// `verdict`: what each side agreed.
    fn negotiate(
        client: Option<DeflateConfig>,
        server: Option<DeflateConfig>,
        verdict: Accept,
    ) -> (Option<Agreed>, Option<Agreed>) {
        let request = ClientRequest::new("a", "/").with_deflate(client);
        let (mut client, bytes) =
            ClientUpgrade::new([3; 16], &request, HeadLimits::DEFAULT).unwrap();
        let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT).with_compression(server);
        feed(&mut |f| upgrade.read_with(f), &bytes);
        let Some(Ok(head)) = upgrade.poll_head() else {
            panic!()
        };
        assert_eq!(head.deflate_offered(), request.deflate.is_some());
        let Some(ServerAnswer::Accept {
            response,
            compression: on_server,
            ..
        }) = upgrade.answer(verdict)
        else {
            panic!()
        };
        feed(&mut |f| client.read_with(f), &response);
        let Ok(Some(ClientAnswer::Accepted {
            compression: on_client,
            ..
        })) = client.poll()
        else {
            panic!()
        };
        (on_client, on_server)
    }

    #[test]
    fn compression_is_negotiated_when_both_ends_want_it() {
        let client = DeflateConfig::default();
        let server = DeflateConfig::default().with_context_takeover(12);
        let (on_client, on_server) = negotiate(Some(client), Some(server), Verdict::accept());
        let (params, config) = on_server.expect("agreed");
        assert_eq!(on_client, Some((params, client)));
        assert_eq!(config, server);
        assert_eq!(params.client_max_window_bits, 12);
        assert_eq!(params.server_max_window_bits, 12);
        // The client asked for no context takeover on the server's side.
        assert!(params.server_no_context_takeover);

        // Off on either side: nothing.
        assert_eq!(
            negotiate(None, Some(server), Verdict::accept()),
            (None, None)
        );
        assert_eq!(
            negotiate(Some(client), None, Verdict::accept()),
            (None, None)
        );
    }

    #[test]
    fn a_verdict_decides_compression() {
        let client = Some(DeflateConfig::default());
        let server = Some(DeflateConfig::default());
        let declined = Verdict::accept().without_compression();
        assert_eq!(negotiate(client, server, declined), (None, None));
        // On for this request, though the settings have it off; with data too.
        let own = DeflateConfig::default().with_context_takeover(15);
        let chosen = Verdict::accept().with_compression(own).with_data(());
        let (on_client, on_server) = negotiate(client, None, chosen);
        assert_eq!(on_server.map(|(_, config)| config), Some(own));
        assert_eq!(
            on_client.map(|(params, _)| params),
            on_server.map(|(params, _)| params)
        );
    }

    #[test]
    fn a_bad_deflate_answer_fails_the_client() {
        let request = ClientRequest::new("a", "/").with_deflate(Some(DeflateConfig::default()));
        let (mut client, bytes) =
            ClientUpgrade::new([3; 16], &request, HeadLimits::DEFAULT).unwrap();
        let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
        feed(&mut |f| upgrade.read_with(f), &bytes);
        let Some(ServerAnswer::Accept { response, .. }) = upgrade.answer(Verdict::accept()) else {
            panic!()
        };
        let response = String::from_utf8(response).unwrap().replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        );
        feed(&mut |f| client.read_with(f), response.as_bytes());
        assert_eq!(
            client.poll(),
            Err(ResponseError::Extension(
                sockeye_proto::ExtensionError::MissingServerNoContextTakeover
            ))
        );
    }

    const JSON_401: &[u8] = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
        Content-Length: 25\r\n\r\n{\"error\":\"token expired\"}";

    fn end_of_stream(client: &mut ClientUpgrade) {
        let read = client.read_with(|_| Poll::<Result<usize, ()>>::Ready(Ok(0)));
        assert_eq!(read, Poll::Ready(Ok(0)));
    }

    /// Feeds `wire` to a fresh client `piece` bytes at a time, polling after each read;
    /// returns the first answer and how many bytes it took to get it.
    fn reject_in_pieces(
        wire: &[u8],
        piece: usize,
        limits: HeadLimits,
    ) -> (Option<RejectedResponse>, usize) {
        let request = ClientRequest::new("a", "/");
        let (mut client, _) = ClientUpgrade::new([1; 16], &request, limits).unwrap();
        for (i, chunk) in wire.chunks(piece).enumerate() {
            feed(&mut |f| client.read_with(f), chunk);
            match client.poll() {
                Ok(None) => {}
                Ok(Some(ClientAnswer::Rejected(rejected))) => {
                    return (Some(rejected), (i * piece + chunk.len()).min(wire.len()))
                }
                other => panic!("{other:?}"),
            }
        }
        (None, wire.len())
    }

    #[test]
    fn request_extras_set_and_remove_headers() {
        let mut extras = RequestExtras::new()
            .with_header("Cookie", "a=1")
            .with_header("X-Trace", "7")
            .with_header("cookie", "b=2");
        extras.set_header("COOKIE", "c=3");
        assert_eq!(
            extras.headers,
            [
                ("COOKIE".to_string(), b"c=3".to_vec()),
                ("X-Trace".to_string(), b"7".to_vec())
            ]
        );
        extras.set_header("Authorization", "Bearer t");
        extras.remove_header("x-trace");
        let (protocols, headers) = extras.borrowed();
        assert!(protocols.is_empty());
        assert_eq!(
            headers,
            [("COOKIE", &b"c=3"[..]), ("Authorization", &b"Bearer t"[..])]
        );
    }

    #[test]
    fn a_rejection_waits_for_its_whole_body() {
        for piece in [1, 5, 64, 4096] {
            let mut wire = JSON_401.to_vec();
            wire.extend_from_slice(b"HTTP/1.1 trailing garbage is not body");
            let (rejected, used) = reject_in_pieces(&wire, piece, HeadLimits::DEFAULT);
            let rejected = rejected.expect("answered");
            assert_eq!(rejected.status, 401);
            assert_eq!(rejected.body, br#"{"error":"token expired"}"#);
            assert!(rejected.body_complete);
            // Answered on the read that brought the body's last byte, not later.
            assert_eq!(
                used.div_ceil(piece),
                JSON_401.len().div_ceil(piece),
                "piece {piece}"
            );
        }
    }

    #[test]
    fn a_chunked_rejection_body_is_decoded() {
        let wire = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
            6\r\nclosed\r\n10;why=upgrade\r\n for maintenance\r\n0\r\nX-Until: 9\r\n\r\n";
        for piece in [1, 7, 1000] {
            let (rejected, _) = reject_in_pieces(wire, piece, HeadLimits::DEFAULT);
            let rejected = rejected.expect("answered");
            assert_eq!(rejected.body, b"closed for maintenance");
            assert!(rejected.body_complete);
        }
    }

    #[test]
    fn a_long_rejection_body_is_cut_at_the_limit() {
        let limits = HeadLimits::DEFAULT.with_max_rejection_body(8);
        let (rejected, used) = reject_in_pieces(JSON_401, 1, limits);
        let rejected = rejected.expect("answered");
        assert_eq!(
            (rejected.body.as_slice(), rejected.body_complete),
            (&br#"{"error""#[..], false)
        );
        // It does not wait for the rest: the byte past the limit ends it.
        assert_eq!(used, JSON_401.len() - 16);

        let chunked = b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n\
            5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n";
        let (rejected, _) = reject_in_pieces(chunked, 3, limits);
        let rejected = rejected.expect("answered");
        assert_eq!(
            (rejected.body.as_slice(), rejected.body_complete),
            (&b"abcdefgh"[..], false)
        );

        // A body as long as the limit is whole; one byte over is not, even when it all
        // comes in one read.
        for (limit, complete) in [(25, true), (24, false)] {
            let limits = HeadLimits::DEFAULT.with_max_rejection_body(limit);
            let (rejected, _) = reject_in_pieces(JSON_401, JSON_401.len(), limits);
            let rejected = rejected.expect("answered");
            assert_eq!(
                (rejected.body.len(), rejected.body_complete),
                (limit, complete)
            );
        }

        // A limit of 0 does not read bodies: the head is the answer.
        let limits = HeadLimits::DEFAULT.with_max_rejection_body(0);
        let (rejected, used) = reject_in_pieces(JSON_401, 1, limits);
        let rejected = rejected.expect("answered");
        assert_eq!((rejected.body.len(), rejected.body_complete), (0, false));
        assert_eq!(used, JSON_401.len() - 25);
    }

    #[test]
    fn bodiless_and_malformed_rejections_are_answered_at_the_head() {
        let cases: [(&[u8], bool); 4] = [
            (b"HTTP/1.1 204 No Content\r\n\r\n", true),
            (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", true),
            (
                b"HTTP/1.1 403 Forbidden\r\nContent-Length: 3, 4\r\n\r\nabc",
                false,
            ),
            (
                b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false,
            ),
        ];
        for (wire, complete) in cases {
            let (rejected, _) = reject_in_pieces(wire, wire.len(), HeadLimits::DEFAULT);
            let rejected = rejected.expect("answered");
            assert_eq!((rejected.body.len(), rejected.body_complete), (0, complete));
        }
    }

    #[test]
    fn a_server_that_leaves_mid_body_or_stalls_still_gives_its_rejection() {
        let request = ClientRequest::new("a", "/");
        let partial = &JSON_401[..JSON_401.len() - 10];
        let (mut client, _) = ClientUpgrade::new([1; 16], &request, HeadLimits::DEFAULT).unwrap();
        feed(&mut |f| client.read_with(f), partial);
        assert_eq!(client.poll(), Ok(None));
        end_of_stream(&mut client);
        let Ok(Some(ClientAnswer::Rejected(rejected))) = client.poll() else {
            panic!()
        };
        assert_eq!(
            (rejected.body.as_slice(), rejected.body_complete),
            (&br#"{"error":"token"#[..], false)
        );

        // A timeout in the adapter: what has come is taken, once.
        let (mut client, _) = ClientUpgrade::new([1; 16], &request, HeadLimits::DEFAULT).unwrap();
        assert_eq!(client.take_rejection(), None);
        feed(&mut |f| client.read_with(f), partial);
        assert_eq!(client.poll(), Ok(None));
        let Error::Rejected(rejected) = client.timed_out() else {
            panic!("the head has come")
        };
        assert_eq!(
            (rejected.status, rejected.body.len(), rejected.body_complete),
            (401, 15, false)
        );
        assert_eq!(client.take_rejection(), None);
        assert!(matches!(client.timed_out(), Error::HandshakeTimeout));

        // The head alone, cut by end of stream, is no answer.
        let (mut client, _) = ClientUpgrade::new([1; 16], &request, HeadLimits::DEFAULT).unwrap();
        feed(&mut |f| client.read_with(f), &JSON_401[..20]);
        end_of_stream(&mut client);
        assert_eq!(client.poll(), Ok(None));
        assert_eq!(client.take_rejection(), None);
    }
}
