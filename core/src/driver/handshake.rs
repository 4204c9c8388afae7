//! Handshake helpers shared by the `std` adapters: buffer a request or response head,
//! ask the application about a request, and produce the bytes to answer with. No I/O:
//! the adapter reads with `read_with` (as for [`Driver::read_with`](super::Driver::read_with))
//! and writes what comes out.
//!
//! - [`Settings`]: everything an adapter connection is configured with (the core
//!   [`Config`], buffer sizes, handshake and connect timeouts, head limits).
//! - [`ServerUpgrade`]: reads the request head; [`ServerUpgrade::poll`] validates it, asks
//!   the application's [`Verdict`], and returns a [`ServerAnswer`]: the `101` response
//!   (plus any frames the client sent early) or the refusal to write before closing.
//! - [`ClientUpgrade`]: writes the request for a nonce; [`ClientUpgrade::poll`] checks the
//!   server's response and returns a [`ClientAnswer`] (accepted, or the server's refusal
//!   as an owned [`RejectedResponse`]).

use core::fmt;
use core::time::Duration;
use std::string::String;
use std::task::Poll;
use std::vec::Vec;

use super::{DriverConfig, Error};
use crate::config::Config;
use crate::handshake::{
    parse_request_with, Accept, ClientHandshake, ClientRequest, HeadLimits, Header, Rejection,
    RequestError, Response, ResponseError, UpgradeRequest, Url, WriteError, EMPTY_HEADER,
};
use crate::Status;

/// How many header lines a request or response head may have (more is a 431).
pub const MAX_HEADERS: usize = 64;

/// The settings of one adapter connection: the protocol [`Config`], buffer sizes, and the
/// handshake's timeouts and limits. Every field has a safe default; a core [`Config`]
/// converts into `Settings` with the other defaults.
///
/// ```
/// use core::time::Duration;
/// use sockeye_proto::driver::Settings;
/// use sockeye_proto::Config;
///
/// let settings = Settings::from(Config::default().with_max_message_size(1 << 20))
///     .with_handshake_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(settings.protocol.max_message_size, 1 << 20);
/// assert_eq!(settings.connect_timeout, Some(Duration::from_secs(10)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Limits and timers of the connection itself.
    pub protocol: Config,
    /// Read buffer, write coalescing and backpressure.
    pub buffers: DriverConfig,
    /// How long the whole opening handshake may take (a server drops a peer that never
    /// finishes its request: slowloris). Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// How long a client may take to open the TCP connection. Default 10 s.
    pub connect_timeout: Option<Duration>,
    /// The largest request or response head. Default 8 KiB.
    pub head_limits: HeadLimits,
}

impl Settings {
    /// The default settings.
    pub const DEFAULT: Settings = Settings {
        protocol: Config::DEFAULT,
        buffers: DriverConfig::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(10)),
        connect_timeout: Some(Duration::from_secs(10)),
        head_limits: HeadLimits::DEFAULT,
    };

    /// Sets [`Settings::protocol`].
    pub fn with_protocol(mut self, config: Config) -> Self {
        self.protocol = config;
        self
    }

    /// Sets [`Settings::buffers`].
    pub fn with_buffers(mut self, buffers: DriverConfig) -> Self {
        self.buffers = buffers;
        self
    }

    /// Sets [`Settings::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`Settings::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Settings::head_limits`].
    pub fn with_head_limits(mut self, limits: HeadLimits) -> Self {
        self.head_limits = limits;
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::DEFAULT
    }
}

impl From<Config> for Settings {
    fn from(config: Config) -> Self {
        Settings::DEFAULT.with_protocol(config)
    }
}

/// A head being read: bytes `..len` of `buf`, growing up to the head limit.
#[derive(Debug)]
struct HeadBuffer {
    buf: Vec<u8>,
    len: usize,
    limit: usize,
}

impl HeadBuffer {
    fn new(limits: HeadLimits) -> Self {
        HeadBuffer {
            buf: Vec::new(),
            len: 0,
            limit: limits.max_head_bytes.max(1),
        }
    }

    fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        if self.len >= self.limit {
            // The parser refuses a head this long; nothing more is read.
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

fn owned_headers(headers: &[Header<'_>]) -> OwnedHeaders {
    headers
        .iter()
        .map(|h| (String::from(h.name), h.value.to_vec()))
        .collect()
}

fn borrowed_headers(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_slice()))
        .collect()
}

/// The application's answer to a valid upgrade request (see [`ServerUpgrade::poll`]).
///
/// ```
/// use sockeye_proto::driver::Verdict;
///
/// let yes = Verdict::accept().with_protocol("chat").with_header("Server", "sockeye");
/// let no = Verdict::reject(403, "Forbidden");
/// assert!(matches!(no, Verdict::Reject { status: 403, .. }));
/// # let _ = yes;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accept, with a subprotocol the client offered (or none) and extra response headers.
    Accept {
        /// The chosen subprotocol.
        protocol: Option<String>,
        /// Extra response headers (`Server`, `Set-Cookie` ...).
        headers: OwnedHeaders,
    },
    /// Turn the request down with this HTTP status (401, 403, 404 ...).
    Reject {
        /// The status code (200..=999).
        status: u16,
        /// The reason phrase.
        reason: String,
        /// Extra response headers (`WWW-Authenticate` ...).
        headers: OwnedHeaders,
        /// The response body (empty: none).
        body: Vec<u8>,
    },
}

impl Verdict {
    /// Accept without a subprotocol or extra headers.
    pub fn accept() -> Self {
        Verdict::Accept {
            protocol: None,
            headers: Vec::new(),
        }
    }

    /// Reject with `status` and `reason`.
    pub fn reject(status: u16, reason: impl Into<String>) -> Self {
        Verdict::Reject {
            status,
            reason: reason.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Sets the subprotocol (an [`Accept`](Verdict::Accept) only).
    pub fn with_protocol(mut self, chosen: impl Into<String>) -> Self {
        if let Verdict::Accept { protocol, .. } = &mut self {
            *protocol = Some(chosen.into());
        }
        self
    }

    /// Sets the response body (a [`Reject`](Verdict::Reject) only; an accepted upgrade has
    /// none). Give its `Content-Type` with [`with_header`](Self::with_header);
    /// `Content-Length` is written for it.
    ///
    /// ```
    /// use sockeye_proto::driver::Verdict;
    ///
    /// let no = Verdict::reject(401, "Unauthorized")
    ///     .with_header("WWW-Authenticate", "Bearer")
    ///     .with_header("Content-Type", "text/plain")
    ///     .with_body("log in first");
    /// assert!(matches!(&no, Verdict::Reject { body, .. } if body.as_slice() == b"log in first"));
    /// ```
    pub fn with_body(mut self, content: impl Into<Vec<u8>>) -> Self {
        if let Verdict::Reject { body, .. } = &mut self {
            *body = content.into();
        }
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        match &mut self {
            Verdict::Accept { headers, .. } | Verdict::Reject { headers, .. } => {
                headers.push((name.into(), value.into()));
            }
        }
        self
    }
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
pub enum ServerAnswer {
    /// Write `response` (the `101`), then run the connection; `early` holds frames the
    /// client sent right after its request (pass them to
    /// [`Driver::push_bytes`](super::Driver::push_bytes)).
    Accept {
        /// The `101 Switching Protocols` response.
        response: Vec<u8>,
        /// The chosen subprotocol.
        protocol: Option<String>,
        /// Bytes after the request head.
        early: Vec<u8>,
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
/// use sockeye_proto::driver::{ServerAnswer, ServerUpgrade, Verdict};
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
/// let mut decide = Some(|req: &sockeye_proto::UpgradeRequest<'_, '_>| {
///     assert_eq!(req.path(), "/chat");
///     Verdict::accept().with_protocol("chat")
/// });
/// let Some(ServerAnswer::Accept { response, protocol, .. }) = upgrade.poll(&mut decide) else {
///     panic!()
/// };
/// assert!(response.starts_with(b"HTTP/1.1 101 "));
/// assert_eq!(protocol.as_deref(), Some("chat"));
/// ```
#[derive(Debug)]
pub struct ServerUpgrade {
    head: HeadBuffer,
    limits: HeadLimits,
}

impl ServerUpgrade {
    /// A handshake reading a request head of at most `limits.max_head_bytes`.
    pub fn new(limits: HeadLimits) -> Self {
        ServerUpgrade {
            head: HeadBuffer::new(limits),
            limits,
        }
    }

    /// Reads once into free buffer space (see [`Driver::read_with`](super::Driver::read_with));
    /// `Ready(Ok(0))` is end of stream. Call [`poll`](Self::poll) after every read.
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        self.head.read_with(read)
    }

    /// `None` while the head is incomplete. Once it is complete, a valid request is shown
    /// to `decide` (taken from the option; with none left the request is accepted without
    /// a subprotocol), and the answer to write is returned.
    pub fn poll<F>(&mut self, decide: &mut Option<F>) -> Option<ServerAnswer>
    where
        F: FnOnce(&UpgradeRequest<'_, '_>) -> Verdict,
    {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let bytes = self.head.bytes();
        let request = match parse_request_with(bytes, &mut headers, self.limits) {
            Ok(Status::Partial) => return None,
            Ok(Status::Complete(request)) => request,
            Err(error) => {
                return Some(refuse(
                    |out| error.rejection().write(out),
                    Refusal::Invalid(error),
                ))
            }
        };
        let verdict = match decide.take() {
            Some(decide) => decide(&request),
            None => Verdict::accept(),
        };
        Some(match verdict {
            Verdict::Accept { protocol, headers } => {
                let extra = borrowed_headers(&headers);
                let accept = Accept::new()
                    .with_protocol(protocol.as_deref())
                    .with_headers(&extra);
                match write_grown(|out| request.accept(&accept, out)) {
                    Ok(response) => ServerAnswer::Accept {
                        response,
                        protocol,
                        early: bytes[request.head_len()..].to_vec(),
                    },
                    Err(error) => refuse(
                        |out| Rejection::custom(500, "Internal Server Error", &[]).write(out),
                        Refusal::BadVerdict(error),
                    ),
                }
            }
            Verdict::Reject {
                status,
                reason,
                headers,
                body,
            } => {
                let extra = borrowed_headers(&headers);
                let rejection = Rejection::custom(status, &reason, &extra).with_body(&body);
                match write_grown(|out| rejection.write(out)) {
                    Ok(response) => ServerAnswer::Refuse {
                        response,
                        refusal: Refusal::Rejected(status),
                    },
                    Err(error) => refuse(
                        |out| Rejection::custom(500, "Internal Server Error", &[]).write(out),
                        Refusal::BadVerdict(error),
                    ),
                }
            }
        })
    }
}

fn refuse(
    write: impl FnMut(&mut [u8]) -> Result<usize, WriteError>,
    refusal: Refusal,
) -> ServerAnswer {
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
}

impl RejectedResponse {
    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// How long the server asked the client to wait before trying again: its
    /// `Retry-After` header, when that is a number of seconds (see
    /// [`retry_after`](crate::handshake::client::retry_after)).
    pub fn retry_after(&self) -> Option<core::time::Duration> {
        self.header("Retry-After")
            .and_then(crate::handshake::client::retry_after)
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
        /// Every header line of the response.
        headers: OwnedHeaders,
        /// Frames that followed the response (pass them to
        /// [`Driver::push_bytes`](super::Driver::push_bytes)).
        early: Vec<u8>,
    },
    /// Any other final status.
    Rejected(RejectedResponse),
}

/// The client's side of the opening handshake, without I/O.
#[derive(Debug)]
pub struct ClientUpgrade {
    handshake: ClientHandshake,
    head: HeadBuffer,
    limits: HeadLimits,
}

impl ClientUpgrade {
    /// A handshake with this `nonce` (16 fresh random bytes); returns it with the request
    /// bytes to write.
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
                head: HeadBuffer::new(limits),
                limits,
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

    /// `Ok(None)` while the response head is incomplete; then the server's answer, checked
    /// against `request` (the one given to [`new`](Self::new)).
    pub fn poll(
        &mut self,
        request: &ClientRequest<'_>,
    ) -> Result<Option<ClientAnswer>, ResponseError> {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let bytes = self.head.bytes();
        let response =
            match self
                .handshake
                .parse_response_with(request, bytes, &mut headers, self.limits)?
            {
                Status::Partial => return Ok(None),
                Status::Complete(response) => response,
            };
        Ok(Some(match response {
            Response::Accepted(accepted) => ClientAnswer::Accepted {
                protocol: accepted.protocol().map(String::from),
                headers: owned_headers(accepted.headers()),
                early: bytes[accepted.consumed()..].to_vec(),
            },
            Response::Rejected(rejected) => ClientAnswer::Rejected(RejectedResponse {
                status: rejected.status(),
                reason: String::from(rejected.reason()),
                headers: owned_headers(rejected.headers()),
            }),
        }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ClientRequest;
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
        let mut decide = verdict.map(|v| move |_: &UpgradeRequest<'_, '_>| v);
        upgrade.poll(&mut decide).expect("complete")
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
            server_answer(REQUEST, Some(Verdict::reject(403, "Forbidden")))
        else {
            panic!()
        };
        assert_eq!((refusal, refusal.status()), (Refusal::Rejected(403), 403));
        assert!(response.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));

        let ServerAnswer::Refuse { response, refusal } =
            server_answer(REQUEST, Some(Verdict::accept().with_protocol("nope")))
        else {
            panic!()
        };
        assert_eq!(refusal, Refusal::BadVerdict(WriteError::ProtocolNotOffered));
        assert!(response.starts_with(b"HTTP/1.1 500 "));
    }

    #[test]
    fn server_refuses_a_head_over_the_limit() {
        let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT.with_max_head_bytes(64));
        feed(&mut |f| upgrade.read_with(f), &[b'a'; 64]);
        let Some(ServerAnswer::Refuse { refusal, .. }) =
            upgrade.poll::<fn(&UpgradeRequest<'_, '_>) -> Verdict>(&mut None)
        else {
            panic!()
        };
        assert_eq!(refusal.status(), 431);
        // Nothing more is read once the head is at its limit.
        let read = upgrade.read_with(|_| Poll::<Result<usize, ()>>::Ready(Ok(5)));
        assert_eq!(read, Poll::Ready(Ok(0)));
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
                    .with_header("X-A", "1"),
            ),
        );
        let ServerAnswer::Accept { response, .. } = answer else {
            panic!()
        };
        let mut wire = response.clone();
        wire.extend_from_slice(b"\x81\x00");
        feed(&mut |f| client.read_with(f), &wire[..10]);
        assert_eq!(client.poll(&request), Ok(None));
        feed(&mut |f| client.read_with(f), &wire[10..]);
        let Ok(Some(ClientAnswer::Accepted {
            protocol,
            headers,
            early,
        })) = client.poll(&request)
        else {
            panic!()
        };
        assert_eq!(protocol.as_deref(), Some("chat"));
        assert!(headers.iter().any(|(n, v)| n == "X-A" && v == b"1"));
        assert_eq!(early, b"\x81\x00");

        let (mut client, _) = ClientUpgrade::new([9; 16], &request, HeadLimits::DEFAULT).unwrap();
        feed(
            &mut |f| client.read_with(f),
            b"HTTP/1.1 503 Busy\r\nRetry-After: 3\r\n\r\n",
        );
        let Ok(Some(ClientAnswer::Rejected(rejected))) = client.poll(&request) else {
            panic!()
        };
        assert_eq!((rejected.status, rejected.reason.as_str()), (503, "Busy"));
        assert_eq!(rejected.header("retry-after"), Some(&b"3"[..]));
        assert_eq!(rejected.to_string(), "503 Busy");
    }
}
