//! The server side: a request hyper received becomes a WebSocket, over HTTP/1.1 (`101`)
//! or HTTP/2 (extended CONNECT, `200`).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use sockeye_engine::handshake::{answer_fields, refuse_fields, Agreed, FieldAnswer, Refusal};
use sockeye_engine::{RequestHead, Settings, Verdict};
use sockeye_proto::handshake::{
    validate_extended_connect, validate_request, Header, RequestError, UpgradeRequest,
};
use sockeye_proto::Role;
use sockeye_tokio::Error;

/// The stream a WebSocket runs on once hyper hands the connection over.
pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// A Sockeye [`WebSocket`](sockeye_tokio::WebSocket) on a connection hyper upgraded.
pub type WebSocket = sockeye_tokio::WebSocket<Upgraded>;

/// The body of every response this crate builds: the (usually empty) bytes of a
/// refusal. Map it (`response.map(..)`) if your service uses another body type.
pub type Body = Full<Bytes>;

/// Whether `request` asks for a WebSocket: an HTTP/1.1 upgrade (`Upgrade: websocket`,
/// `Connection: upgrade`) or an HTTP/2 extended CONNECT with `:protocol` `websocket`. A
/// cheap test for routing; [`IncomingUpgrade::from_request`] checks everything else.
pub fn is_upgrade_request<B>(request: &Request<B>) -> bool {
    is_upgrade(
        request.method(),
        request.version(),
        request.headers(),
        request.extensions().get::<hyper::ext::Protocol>(),
    )
}

fn is_upgrade(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    protocol: Option<&hyper::ext::Protocol>,
) -> bool {
    if version >= Version::HTTP_2 {
        return method == Method::CONNECT
            && protocol.is_some_and(|p| p.as_str().eq_ignore_ascii_case("websocket"));
    }
    let lists = |name| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .collect::<Vec<_>>()
    };
    lists(http::header::UPGRADE)
        .iter()
        .any(|token| token.eq_ignore_ascii_case(b"websocket"))
        && lists(http::header::CONNECTION)
            .iter()
            .any(|token| token.eq_ignore_ascii_case(b"upgrade"))
}

/// Accepts the WebSocket `request` asks for, with the default [`Settings`] (no
/// subprotocol; permessage-deflate only if the settings enable it): returns the response
/// for hyper to send and the future of the [`WebSocket`], or the refusal to send instead.
///
/// ```no_run
/// use std::convert::Infallible;
/// use hyper::body::Incoming;
/// use hyper::{Request, Response};
/// use sockeye_hyper::{Body, Message};
///
/// async fn service(mut request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
///     let (response, upgrade) = match sockeye_hyper::upgrade(&mut request) {
///         Ok(accepted) => accepted,
///         Err(rejected) => return Ok(rejected.into_response()),
///     };
///     tokio::spawn(async move {
///         let Ok(mut ws) = upgrade.await else { return };
///         while let Some(message) = ws.recv().await {
///             if let Message::Text(_) | Message::Binary(_) = message {
///                 if ws.send(message).await.is_err() {
///                     break;
///                 }
///             }
///         }
///     });
///     Ok(response)
/// }
/// ```
pub fn upgrade<B>(request: &mut Request<B>) -> Result<(Response<Body>, UpgradeFut), Rejected> {
    upgrade_with(request, Settings::default())
}

/// [`upgrade`] with these settings (limits, keepalive, compression policy).
pub fn upgrade_with<B>(
    request: &mut Request<B>,
    settings: impl Into<Settings>,
) -> Result<(Response<Body>, UpgradeFut), Rejected> {
    match IncomingUpgrade::from_request(request)?.answer(Verdict::accept(), settings) {
        Answer::Accept {
            response, upgrade, ..
        } => Ok((response, upgrade)),
        Answer::Refuse { response, refusal } => Err(Rejected {
            error: match refusal {
                Refusal::Invalid(error) => Some(error),
                _ => None,
            },
            response: Box::new(response),
        }),
    }
}

/// A request that is a valid WebSocket upgrade (HTTP/1.1) or extended CONNECT (HTTP/2),
/// waiting for the application's [`Verdict`]: look at it with [`head`](Self::head), then
/// [`answer`](Self::answer) (accept with a subprotocol, headers, a compression policy,
/// or refuse with any status).
pub struct IncomingUpgrade {
    head: RequestHead,
    on_upgrade: OnUpgrade,
    version: Version,
    parts: RequestParts,
}

/// What [`IncomingUpgrade::answer`] validates the request from again (the core's view
/// borrows the fields, so it is rebuilt rather than kept).
struct RequestParts {
    method: Method,
    uri: Uri,
    protocol: Option<hyper::ext::Protocol>,
    headers: HeaderMap,
}

impl RequestParts {
    fn validate<'h, 'b>(
        &'b self,
        version: Version,
        fields: &'h mut Vec<Header<'b>>,
    ) -> Result<UpgradeRequest<'h, 'b>, RequestError> {
        fields.extend(self.headers.iter().map(|(name, value)| Header {
            name: name.as_str(),
            value: value.as_bytes(),
        }));
        let target = self.uri.path_and_query().map_or("/", |p| p.as_str());
        if version >= Version::HTTP_2 {
            validate_extended_connect(
                self.method.as_str(),
                self.protocol.as_ref().map(|p| p.as_str()),
                target,
                self.uri.authority().map(|a| a.as_str()),
                fields,
            )
        } else {
            let minor_version = if version == Version::HTTP_11 { 1 } else { 0 };
            validate_request(self.method.as_str(), target, minor_version, fields)
        }
    }
}

impl fmt::Debug for IncomingUpgrade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingUpgrade")
            .field("head", &self.head)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl IncomingUpgrade {
    /// Validates `request` (RFC 6455 §4.2.1 for HTTP/1.1, RFC 8441 §4–5 for HTTP/2) and
    /// takes hyper's upgrade handle out of it. A request that is not a valid upgrade is
    /// [`Rejected`], with the `400` / `405` / `426` response to send.
    pub fn from_request<B>(request: &mut Request<B>) -> Result<Self, Rejected> {
        let version = request.version();
        let parts = RequestParts {
            method: request.method().clone(),
            uri: request.uri().clone(),
            protocol: request.extensions().get::<hyper::ext::Protocol>().cloned(),
            headers: request.headers().clone(),
        };
        Self::from(parts, version, request.extensions_mut())
    }

    /// [`from_request`](Self::from_request) for the head of a request (as axum's
    /// extractors see it).
    pub fn from_parts(parts: &mut Parts) -> Result<Self, Rejected> {
        let request = RequestParts {
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            protocol: parts.extensions.get::<hyper::ext::Protocol>().cloned(),
            headers: parts.headers.clone(),
        };
        Self::from(request, parts.version, &mut parts.extensions)
    }

    fn from(
        request: RequestParts,
        version: Version,
        extensions: &mut http::Extensions,
    ) -> Result<Self, Rejected> {
        let mut fields = Vec::with_capacity(request.headers.len());
        let head = match request.validate(version, &mut fields) {
            Ok(upgrade) => RequestHead::of(&upgrade),
            Err(error) => {
                return Err(Rejected {
                    error: Some(error),
                    response: Box::new(invalid_response(error, version)),
                })
            }
        };
        drop(fields);
        // hyper attaches the handle to every request that may upgrade; without it (a
        // request built by hand, a server without upgrades) there is nothing to take over.
        let Some(on_upgrade) = extensions.remove::<OnUpgrade>() else {
            return Err(Rejected {
                error: None,
                response: Box::new(invalid_response(RequestError::UnsupportedVersion, version)),
            });
        };
        Ok(IncomingUpgrade {
            head,
            on_upgrade,
            version,
            parts: request,
        })
    }

    /// The request, as the other adapters' verdict functions see it: path, query, host,
    /// origin, subprotocols, extension offers, headers.
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The HTTP version: `HTTP/1.1`, or `HTTP/2` for an extended CONNECT.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Answers with `verdict`. An acceptance negotiates permessage-deflate with its own
    /// policy or else `settings.compression`, and gives the response (`101`, or `200`
    /// over HTTP/2) and the [`UpgradeFut`] that yields the [`WebSocket`] once hyper has
    /// sent it; a rejection gives the response to send (the application's status,
    /// headers and body; a verdict that cannot be written as given is a `500`).
    pub fn answer<T>(
        self,
        verdict: impl Into<Verdict<T>>,
        settings: impl Into<Settings>,
    ) -> Answer<T> {
        let settings = settings.into();
        let mut fields = Vec::with_capacity(self.parts.headers.len());
        let answer = match self.parts.validate(self.version, &mut fields) {
            Ok(request) => answer_fields(&request, verdict, settings.compression),
            // The same request was valid when it came in.
            Err(error) => refuse_fields(error),
        };
        match answer {
            FieldAnswer::Accept {
                status,
                headers,
                protocol,
                compression,
                data,
            } => {
                let mut response = Response::new(Body::default());
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::SWITCHING_PROTOCOLS);
                append_headers(response.headers_mut(), &headers, self.version);
                Answer::Accept {
                    response,
                    upgrade: UpgradeFut::new(self.on_upgrade, settings, protocol, compression),
                    data,
                }
            }
            FieldAnswer::Refuse {
                status,
                headers,
                body,
                refusal,
                ..
            } => Answer::Refuse {
                response: refusal_response(status, &headers, body, self.version),
                refusal,
            },
        }
    }
}

/// What [`IncomingUpgrade::answer`] gives.
#[derive(Debug)]
pub enum Answer<T = ()> {
    /// Send `response` (`101` or `200`); `upgrade` then yields the WebSocket.
    Accept {
        /// The response for hyper to send.
        response: Response<Body>,
        /// The WebSocket, once hyper has handed the connection over.
        upgrade: UpgradeFut,
        /// The application's data from its [`Accept`](sockeye_engine::verdict::Accept).
        data: T,
    },
    /// Send `response`; there is no WebSocket.
    Refuse {
        /// The refusal for hyper to send.
        response: Response<Body>,
        /// Why.
        refusal: Refusal,
    },
}

/// A request turned down before any verdict: not a valid upgrade. Send
/// [`into_response`](Self::into_response).
#[derive(Debug)]
pub struct Rejected {
    error: Option<RequestError>,
    // Boxed: it travels in the `Err` of every `Result` here.
    response: Box<Response<Body>>,
}

impl Rejected {
    /// Why: the core's [`RequestError`] (its [`rejection`](RequestError::rejection) is
    /// the response); `None` when the request was valid but hyper gave no upgrade handle
    /// for it (answered `426`).
    pub fn error(&self) -> Option<RequestError> {
        self.error
    }

    /// The status of the response (`400`, `405`, `426`, `431`).
    pub fn status(&self) -> StatusCode {
        self.response.status()
    }

    /// The response to send.
    pub fn into_response(self) -> Response<Body> {
        *self.response
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error {
            Some(error) => write!(f, "{} ({error})", self.status()),
            None => write!(f, "{} (the connection cannot be upgraded)", self.status()),
        }
    }
}

impl std::error::Error for Rejected {}

/// The future of an accepted WebSocket: resolves once hyper has sent the response and
/// handed the connection over (spawn a task to await it, after returning the response).
/// Fails with [`Error::Io`] if the connection ended first.
pub struct UpgradeFut {
    inner: Pin<Box<dyn Future<Output = Result<WebSocket, Error>> + Send>>,
}

impl UpgradeFut {
    fn new(
        on_upgrade: OnUpgrade,
        settings: Settings,
        protocol: Option<String>,
        compression: Option<Agreed>,
    ) -> Self {
        UpgradeFut {
            inner: Box::pin(async move {
                let upgraded = on_upgrade.await.map_err(|error| {
                    Error::Io(std::io::Error::new(std::io::ErrorKind::BrokenPipe, error))
                })?;
                WebSocket::from_upgraded(
                    TokioIo::new(upgraded),
                    Role::Server,
                    settings,
                    protocol,
                    compression,
                )
            }),
        }
    }
}

impl Future for UpgradeFut {
    type Output = Result<WebSocket, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for UpgradeFut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradeFut").finish_non_exhaustive()
    }
}

/// The response for a refusal.
fn refusal_response(
    status: u16,
    headers: &[(String, Vec<u8>)],
    body: Vec<u8>,
    version: Version,
) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    append_headers(response.headers_mut(), headers, version);
    response
}

/// The response for a request that is not a valid upgrade.
fn invalid_response(error: RequestError, version: Version) -> Response<Body> {
    match refuse_fields::<()>(error) {
        FieldAnswer::Refuse {
            status,
            headers,
            body,
            ..
        } => refusal_response(status, &headers, body, version),
        FieldAnswer::Accept { .. } => refusal_response(500, &[], Vec::new(), version),
    }
}

/// Appends the answer's fields; HTTP/2 forbids the connection-specific ones (RFC 9113
/// §8.2.2), which only an HTTP/1.1 refusal carries.
fn append_headers(map: &mut HeaderMap, headers: &[(String, Vec<u8>)], version: Version) {
    const HTTP1_ONLY: &[&str] = &[
        "connection",
        "upgrade",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
    ];
    for (name, value) in headers {
        if version >= Version::HTTP_2 && HTTP1_ONLY.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            continue;
        }
        // The engine checked every field; one http cannot represent is left out rather
        // than turned into a panic.
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            map.append(name, value);
        }
    }
}
