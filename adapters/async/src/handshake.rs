//! The opening handshake over a runtime's stream: [`accept`], [`accept_with`],
//! [`accept_with_async`], [`connect`], [`connect_url`], [`connect_url_with`]. The HTTP
//! work is the engine's ([`ServerUpgrade`], [`ClientUpgrade`]); this module moves bytes
//! and applies the timeouts.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use sockeye_engine::{
    ClientAnswer, ClientUpgrade, IntoRequest, RequestExtras, RequestHead, ServerAnswer,
    ServerUpgrade, Settings, Verdict,
};
use sockeye_proto::handshake::{ClientRequest, Url};
use sockeye_proto::Role;

use crate::connection::Core;
use crate::runtime::{Runtime, Timer, Transport};
use crate::{Error, WebSocket};

/// How much of what a refused client still sends is read (and dropped) before closing.
const LINGER_BYTES: usize = 64 * 1024;

/// `work`, or `on_timeout` once `timeout` has passed.
pub(crate) async fn within<R: Runtime, T>(
    timeout: Option<Duration>,
    on_timeout: Error,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let Some(timeout) = timeout else {
        return work.await;
    };
    let mut timer = R::timer(R::now() + timeout);
    let mut work = pin!(work);
    let mut on_timeout = Some(on_timeout);
    poll_fn(|cx| {
        if let Poll::Ready(result) = work.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        ready!(timer.poll_fire(cx));
        Poll::Ready(Err(on_timeout.take().unwrap_or(Error::Closed)))
    })
    .await
}

async fn write_all<S: Transport<R>, R: Runtime>(
    stream: &mut S,
    mut bytes: &[u8],
) -> io::Result<()> {
    while !bytes.is_empty() {
        match poll_fn(|cx| stream.poll_write_vectored(cx, &[IoSlice::new(bytes)])).await {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    loop {
        match poll_fn(|cx| stream.poll_flush(cx)).await {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// One read, retried while a signal cuts it short (std's convention).
fn poll_read<S: Transport<R>, R: Runtime>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    loop {
        match ready!(stream.poll_read(cx, buf)) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            other => return Poll::Ready(other),
        }
    }
}

/// Accepts a WebSocket on `stream` (server side), whatever the path and subprotocols.
/// A bad request gets its 400 / 426 / 431 written before the stream is closed, and
/// [`Error::Refused`]; a handshake slower than [`Settings::handshake_timeout`] is
/// [`Error::HandshakeTimeout`].
pub fn accept<S: Transport<R>, R: Runtime>(
    stream: S,
    settings: impl Into<Settings>,
) -> impl Future<Output = Result<WebSocket<S, R>, Error>> {
    accept_with(stream, settings, |_: &RequestHead| Verdict::accept())
}

/// [`accept`], with `decide` looking at the request first: pick a subprotocol, or
/// answer with any other status (and a body). A plain HTTP request (not an upgrade:
/// [`RequestHead::is_upgrade`]) is shown too, so a 404 or a health check's 200 can
/// answer it; accepting it answers `400`. An invalid upgrade is refused without asking.
pub fn accept_with<S, R, F, V>(
    stream: S,
    settings: impl Into<Settings>,
    decide: F,
) -> impl Future<Output = Result<WebSocket<S, R>, Error>>
where
    S: Transport<R>,
    R: Runtime,
    F: FnOnce(&RequestHead) -> V,
    V: Into<Verdict>,
{
    let accepting = accept_with_data(stream, settings, decide);
    async move { accepting.await.map(|(ws, ())| ws) }
}

/// [`accept_with`], handing back the data the acceptance carried
/// ([`Accept::with_data`](sockeye_engine::verdict::Accept::with_data)): what was decided
/// from the request (a room from the path, a user from a cookie) for the connection's
/// task.
pub fn accept_with_data<S, R, F, V, T>(
    stream: S,
    settings: impl Into<Settings>,
    decide: F,
) -> impl Future<Output = Result<(WebSocket<S, R>, T), Error>>
where
    S: Transport<R>,
    R: Runtime,
    F: FnOnce(&RequestHead) -> V,
    V: Into<Verdict<T>>,
{
    accept_with_data_async(stream, settings, move |head: RequestHead| {
        std::future::ready(decide(&head))
    })
}

/// [`accept_with`] for a decision that has to wait (a session looked up, an
/// authorization service asked): `decide` gets the request owned and answers with a
/// future. The wait counts toward the handshake timeout.
pub fn accept_with_async<S, R, F, Fut>(
    stream: S,
    settings: impl Into<Settings>,
    decide: F,
) -> impl Future<Output = Result<WebSocket<S, R>, Error>>
where
    S: Transport<R>,
    R: Runtime,
    F: FnOnce(RequestHead) -> Fut,
    Fut: Future,
    Fut::Output: Into<Verdict>,
{
    let accepting = accept_with_data_async(stream, settings, decide);
    async move { accepting.await.map(|(ws, ())| ws) }
}

/// [`accept_with_async`], handing back the data the acceptance carried.
pub fn accept_with_data_async<S, R, F, Fut, T>(
    stream: S,
    settings: impl Into<Settings>,
    decide: F,
) -> impl Future<Output = Result<(WebSocket<S, R>, T), Error>>
where
    S: Transport<R>,
    R: Runtime,
    F: FnOnce(RequestHead) -> Fut,
    Fut: Future,
    Fut::Output: Into<Verdict<T>>,
{
    // Boxed, and returned as it is rather than awaited in an `async fn` (whose future
    // would keep the stream and the settings besides the box): the handshake's state
    // (buffers, timers) is freed once it is done, and a task that accepts and then
    // waits in `recv` holds only a pointer for it.
    Box::pin(server_handshake(stream, settings.into(), decide))
}

async fn server_handshake<S, R, F, Fut, T>(
    mut stream: S,
    settings: Settings,
    decide: F,
) -> Result<(WebSocket<S, R>, T), Error>
where
    S: Transport<R>,
    R: Runtime,
    F: FnOnce(RequestHead) -> Fut,
    Fut: Future,
    Fut::Output: Into<Verdict<T>>,
{
    let handshake = async {
        let mut upgrade =
            ServerUpgrade::new(settings.head_limits).with_compression(settings.compression);
        let mut decide = Some(decide);
        let answer = loop {
            let n = poll_fn(|cx| upgrade.read_with(|buf| poll_read(&mut stream, cx, buf))).await?;
            match upgrade.poll_head() {
                Some(Err(ServerAnswer::Refuse { response, refusal })) => {
                    break ServerAnswer::Refuse { response, refusal }
                }
                // `poll_head` only ever refuses.
                Some(Err(ServerAnswer::Accept { .. })) => return Err(Error::Closed),
                Some(Ok(head)) => {
                    let Some(decide) = decide.take() else {
                        return Err(Error::Closed);
                    };
                    let verdict = decide(head).await.into();
                    if let Some(answer) = upgrade.answer(verdict) {
                        break answer;
                    }
                    return Err(Error::Closed);
                }
                None if n == 0 => return Err(Error::Io(io::ErrorKind::UnexpectedEof.into())),
                None => {}
            }
        };
        match answer {
            ServerAnswer::Accept {
                response,
                protocol,
                compression,
                early,
                data,
            } => {
                write_all(&mut stream, &response).await?;
                Ok(Ok((protocol, compression, early, data)))
            }
            ServerAnswer::Refuse { response, refusal } => {
                // The refusal was decided: whether the peer stayed to read it or not,
                // the answer is the refusal.
                let _ = write_all(&mut stream, &response).await;
                Ok(Err(refusal))
            }
        }
    };
    let answer = within::<R, _>(
        settings.handshake_timeout,
        Error::HandshakeTimeout,
        handshake,
    )
    .await?;
    match answer {
        Ok((protocol, compression, early, data)) => Ok((
            WebSocket::from_core(Core::new(
                stream,
                Role::Server,
                &settings,
                protocol,
                compression,
                &early,
            )?),
            data,
        )),
        Err(refusal) => {
            let _ = poll_fn(|cx| stream.poll_shutdown(cx)).await;
            // Read what the client still sends until it closes, briefly, so that
            // closing does not reset the connection before the response was read.
            // The linger comes after the handshake timeout, not inside it.
            let drain = async {
                let mut sink = [0u8; 1024];
                let mut left = LINGER_BYTES;
                while left > 0 {
                    match poll_fn(|cx| poll_read(&mut stream, cx, &mut sink)).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
                Ok(())
            };
            let _ = within::<R, _>(
                Some(settings.refusal_linger),
                Error::HandshakeTimeout,
                drain,
            )
            .await;
            Err(Error::Refused(refusal))
        }
    }
}

/// Opens a WebSocket over `stream` (client side): `request` is a URL (`&str`, [`Url`])
/// or a [`ClientRequest`] with subprotocols and headers. A non-`101` answer is
/// [`Error::Rejected`], with the status, headers and body. permessage-deflate is offered
/// with [`ClientRequest::deflate`], or else [`Settings::compression`]; an answer that
/// does not fit the offer is [`Error::Response`] with
/// [`ResponseError::Extension`](sockeye_proto::ResponseError::Extension).
pub async fn connect<'a, S, R, Q>(
    stream: S,
    request: Q,
    settings: impl Into<Settings>,
) -> Result<WebSocket<S, R>, Error>
where
    S: Transport<R>,
    R: Runtime,
    Q: IntoRequest<'a>,
{
    // Boxed for the same reason as `accept_with_async`.
    Box::pin(client_handshake(
        stream,
        request.into_request()?,
        settings.into(),
    ))
    .await
}

async fn client_handshake<S: Transport<R>, R: Runtime>(
    mut stream: S,
    request: ClientRequest<'_>,
    settings: Settings,
) -> Result<WebSocket<S, R>, Error> {
    let nonce: [u8; 16] = crate::random()?;
    let request = request.with_deflate(request.deflate.or(settings.compression));
    let (mut upgrade, bytes) =
        ClientUpgrade::new(nonce, &request, settings.head_limits).map_err(Error::Request)?;
    let handshake = async {
        write_all(&mut stream, &bytes).await?;
        loop {
            let n = poll_fn(|cx| upgrade.read_with(|buf| poll_read(&mut stream, cx, buf))).await?;
            if let Some(answer) = upgrade.poll().map_err(Error::Response)? {
                return Ok(answer);
            }
            if n == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
            }
        }
    };
    let answer = match within::<R, _>(
        settings.handshake_timeout,
        Error::HandshakeTimeout,
        handshake,
    )
    .await
    {
        // A server that said no but never finished its body still said no.
        Err(Error::HandshakeTimeout) => return Err(upgrade.timed_out()),
        other => other?,
    };
    match answer {
        ClientAnswer::Accepted {
            protocol,
            compression,
            early,
            ..
        } => Ok(WebSocket::from_core(Core::new(
            stream,
            Role::Client,
            &settings,
            protocol,
            compression,
            &early,
        )?)),
        ClientAnswer::Rejected(rejected) => Err(Error::Rejected(rejected)),
    }
}

/// Connects to a `ws://` URL over plain TCP (a `wss://` URL is [`Error::TlsRequired`]:
/// open the TLS stream yourself and use [`connect`]).
pub async fn connect_url<R: Runtime>(
    url: &str,
    settings: impl Into<Settings>,
) -> Result<WebSocket<R::TcpStream, R>, Error> {
    connect_url_with(url, &RequestExtras::new(), settings).await
}

/// [`connect_url`] with subprotocols and headers (`Authorization`, `Cookie`).
pub async fn connect_url_with<R: Runtime>(
    url: &str,
    extras: &RequestExtras,
    settings: impl Into<Settings>,
) -> Result<WebSocket<R::TcpStream, R>, Error> {
    let parsed = Url::parse(url)?;
    if parsed.is_tls() {
        return Err(Error::TlsRequired);
    }
    let open = R::connect_tcp(parsed.host().to_owned(), parsed.port());
    connect_over(open, parsed, extras, settings.into()).await
}

/// Opens the stream with `open` (within the connect timeout), then the WebSocket.
pub(crate) async fn connect_over<S: Transport<R>, R: Runtime>(
    open: impl Future<Output = io::Result<S>>,
    url: Url<'_>,
    extras: &RequestExtras,
    settings: Settings,
) -> Result<WebSocket<S, R>, Error> {
    let open = async { Ok(open.await?) };
    let stream = within::<R, _>(settings.connect_timeout, Error::ConnectTimeout, open).await?;
    let (protocols, headers) = extras.borrowed();
    let request = url
        .request()
        .with_protocols(&protocols)
        .with_headers(&headers);
    connect(stream, request, settings).await
}
