//! The opening handshake over a runtime's stream: [`accept`], [`accept_with`],
//! [`accept_with_async`], [`connect`], [`connect_url`], [`connect_url_with`]. The HTTP
//! work is the engine's ([`ServerUpgrade`], [`ClientUpgrade`]); this module moves bytes
//! and applies the timeouts.

use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant as StdInstant};

use sockeye_engine::opening::{Opening, Step};
use sockeye_engine::{Driver, IntoRequest, RequestExtras, RequestHead, Settings, Verdict};
use sockeye_proto::handshake::{ClientRequest, Url};
use sockeye_proto::Instant;

use crate::connection::Core;
use crate::runtime::{Runtime, Timer, Transport};
use crate::{Error, WebSocket};

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
    let epoch = R::now();
    let opening = Opening::server(settings, Instant::ZERO);
    let (driver, data) = open(&mut stream, opening, epoch, decide).await?;
    let mut websocket = WebSocket::from_core(Core::with_driver(stream, *driver, epoch));
    // The `101` is queued in the driver: out before the task gets the connection, within
    // the write-stall timeout.
    websocket.flush().await?;
    Ok((websocket, data.ok_or(Error::Closed)?))
}

/// Runs the opening handshake over `stream` as [`Opening`] says (times from `epoch` on
/// the runtime's clock) until the connection is open or the handshake failed; `decide`
/// answers a server's request, and its acceptance's data comes back with the driver.
async fn open<S, R, F, Fut, T>(
    stream: &mut S,
    mut opening: Opening,
    epoch: StdInstant,
    decide: F,
) -> Result<(Box<Driver>, Option<T>), Error>
where
    S: Transport<R>,
    R: Runtime,
    F: FnOnce(RequestHead) -> Fut,
    Fut: Future,
    Fut::Output: Into<Verdict<T>>,
{
    let (mut decide, mut deciding, mut data) = (Some(decide), None, None);
    let mut timer: Option<R::Timer> = None;
    poll_fn(|cx| loop {
        let now = Instant::ZERO + R::now().saturating_duration_since(epoch);
        let io = match opening.poll(now) {
            Step::Io(io) => io,
            Step::Decide(head) => {
                deciding = decide.take().map(|decide| Box::pin(decide(head)));
                continue;
            }
            Step::Shutdown => {
                let _ = ready!(stream.poll_shutdown(cx));
                opening.shutdown_done(now);
                continue;
            }
            Step::Open { driver, .. } => return Poll::Ready(Ok((driver, data.take()))),
            Step::Failed(error) => return Poll::Ready(Err(error)),
        };
        if let Some(Poll::Ready(verdict)) = deciding.as_mut().map(|f| f.as_mut().poll(cx)) {
            deciding = None;
            data = opening.answer_with(verdict, now);
            continue;
        }
        if io.write {
            if let Poll::Ready(written) =
                stream.poll_write_vectored(cx, &[IoSlice::new(opening.pending())])
            {
                match written {
                    Ok(0) => opening.fail_io(io::ErrorKind::WriteZero.into()),
                    Ok(n) => opening.advance(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) => opening.fail_io(error),
                }
                continue;
            }
        }
        if io.read {
            if let Poll::Ready(read) = opening.read_with(|buf| poll_read(stream, cx, buf)) {
                if let Err(error) = read {
                    opening.fail_io(error);
                }
                continue;
            }
        }
        let Some(deadline) = io.deadline else {
            return Poll::Pending;
        };
        let at = epoch + Duration::from_nanos(deadline.as_nanos());
        let timer = timer.get_or_insert_with(|| R::timer(at));
        timer.reset(at);
        ready!(timer.poll_fire(cx));
        opening.handle_deadline(deadline);
    })
    .await
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
    let epoch = R::now();
    let opening = Opening::client(&request, settings, Instant::ZERO)?;
    let no_decision = |_| std::future::ready(Verdict::accept());
    let (driver, _) = open(&mut stream, opening, epoch, no_decision).await?;
    Ok(WebSocket::from_core(Core::with_driver(
        stream, *driver, epoch,
    )))
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
