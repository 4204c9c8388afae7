//! The client side over HTTP/2: a WebSocket opened with extended CONNECT (RFC 8441) on a
//! hyper HTTP/2 connection, next to the application's other requests.

use std::error::Error as StdError;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{Method, Request, Uri, Version};
use http_body_util::{BodyExt, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::TokioIo;
use sockeye_engine::{RejectedResponse, RequestExtras, Settings};
use sockeye_proto::handshake::client::check_connect_response;
use sockeye_proto::handshake::{ClientRequest, Header, Response, WriteError};
use sockeye_proto::Role;
use sockeye_tokio::Error;

use crate::server::WebSocket;

/// Opens a WebSocket to `uri` (`https://host/path`, or `http://` for h2c) as a stream of
/// the HTTP/2 connection `sender` belongs to, with extended CONNECT (RFC 8441): the
/// subprotocols and headers of `extras`, and permessage-deflate offered when
/// `settings.compression` is set.
///
/// The server must have announced extended CONNECT (`SETTINGS_ENABLE_CONNECT_PROTOCOL`,
/// RFC 8441 §3: hyper's client `Connection::is_extended_connect_protocol_enabled` tells),
/// or the request fails with [`Error::Io`]. Fails with [`Error::Rejected`] for a non-`2xx` answer
/// (with its body, up to [`HeadLimits::max_rejection_body`]), [`Error::Response`] for an
/// answer that does not fit the request, and [`Error::HandshakeTimeout`] after
/// `settings.handshake_timeout`.
///
/// [`HeadLimits::max_rejection_body`]: sockeye_proto::handshake::HeadLimits::max_rejection_body
///
/// ```no_run
/// use http_body_util::Empty;
/// use hyper_util::rt::{TokioExecutor, TokioIo};
/// use sockeye_hyper::{connect_h2, Message, RequestExtras, Settings};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let tcp = tokio::net::TcpStream::connect("127.0.0.1:8080").await?;
/// let (mut sender, connection) =
///     hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await?;
/// tokio::spawn(connection);
/// let uri = "http://127.0.0.1:8080/chat".parse()?;
/// let extras = RequestExtras::new().with_protocol("chat");
/// let mut ws = connect_h2::<Empty<bytes::Bytes>>(&mut sender, uri, &extras, Settings::default()).await?;
/// ws.send(Message::text("hello over HTTP/2")).await?;
/// # Ok(()) }
/// ```
pub async fn connect_h2<B>(
    sender: &mut SendRequest<B>,
    uri: Uri,
    extras: &RequestExtras,
    settings: impl Into<Settings>,
) -> Result<WebSocket, Error>
where
    B: hyper::body::Body + Default + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let settings = settings.into();
    let open = open(sender, uri, extras, settings);
    match settings.handshake_timeout {
        Some(limit) => tokio::time::timeout(limit, open)
            .await
            .unwrap_or(Err(Error::HandshakeTimeout)),
        None => open.await,
    }
}

async fn open<B>(
    sender: &mut SendRequest<B>,
    uri: Uri,
    extras: &RequestExtras,
    settings: Settings,
) -> Result<WebSocket, Error>
where
    B: hyper::body::Body + Default + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    sender.ready().await.map_err(io_error)?;
    let (protocols, headers) = extras.borrowed();
    let offer = ClientRequest::new("", "")
        .with_protocols(&protocols)
        .with_deflate(settings.compression)
        .with_headers(&headers);

    let mut request = Request::new(B::default());
    *request.method_mut() = Method::CONNECT;
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_2;
    request
        .extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    let mut invalid = false;
    offer
        .connect_fields(|name, value| {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_bytes(value),
            ) {
                (Ok(name), Ok(value)) => {
                    request.headers_mut().append(name, value);
                }
                _ => invalid = true,
            }
        })
        .map_err(Error::Request)?;
    if invalid {
        return Err(Error::Request(WriteError::InvalidField));
    }

    let response = sender.send_request(request).await.map_err(io_error)?;
    let fields: Vec<Header<'_>> = response
        .headers()
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str(),
            value: value.as_bytes(),
        })
        .collect();
    let agreed = match check_connect_response(&offer, response.status().as_u16(), &fields)
        .map_err(Error::Response)?
    {
        Response::Accepted(accepted) => Ok((
            accepted.protocol().map(String::from),
            accepted.deflate().zip(settings.compression),
        )),
        Response::Rejected(_) => Err(()),
    };
    drop(fields);
    let (protocol, compression) = match agreed {
        Ok(agreed) => agreed,
        Err(()) => return Err(Error::Rejected(rejected(response, &settings).await)),
    };
    let upgraded = hyper::upgrade::on(response).await.map_err(io_error)?;
    WebSocket::from_upgraded(
        TokioIo::new(upgraded),
        Role::Client,
        settings,
        protocol,
        compression,
    )
}

/// The owned rejection, with as much of its body as the limit allows.
async fn rejected(
    response: http::Response<hyper::body::Incoming>,
    settings: &Settings,
) -> RejectedResponse {
    let (parts, body) = response.into_parts();
    let limit = settings.head_limits.max_rejection_body;
    let (body, body_complete) = match Limited::new(body, limit).collect().await {
        Ok(collected) => (collected.to_bytes(), true),
        Err(_) => (Bytes::new(), false),
    };
    RejectedResponse {
        status: parts.status.as_u16(),
        reason: String::from(parts.status.canonical_reason().unwrap_or("")),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (String::from(name.as_str()), value.as_bytes().to_vec()))
            .collect(),
        body: body.to_vec(),
        body_complete,
    }
}

fn io_error(error: hyper::Error) -> Error {
    Error::Io(std::io::Error::other(error))
}
