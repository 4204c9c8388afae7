//! # sockeye-smol: Sockeye WebSockets on smol, or any executor
//!
//! A thin driver of the sans-IO [`sockeye_proto`] core over `futures-io` streams
//! (`AsyncRead + AsyncWrite + Unpin`) with `async-io` timers, so it runs on smol,
//! async-std, or any executor. The protocol, buffers and send queue are the core's
//! [`Driver`]; this crate only moves bytes and time.
//!
//! - Server: [`accept`] / [`accept_with`] (a callback sees the request and answers with a
//!   [`Verdict`]; [`accept_with_async`] when the answer has to wait). A bad request gets its 400 / 426 / 431 written and flushed, the socket
//!   closed, and [`Error::Refused`] returned; a peer that never finishes its request is
//!   dropped after [`Settings::handshake_timeout`] (10 s).
//! - Client: [`connect`] over any stream (TLS is the caller's stream) and [`connect_url`]
//!   (or [`connect_url_with`], with subprotocols and headers) for plain `ws://` TCP with
//!   a connect timeout. A non-`101` answer is
//!   [`Error::Rejected`] with the status, headers and body.
//! - [`WebSocket`]: [`recv`](WebSocket::recv) whole [`Message`]s or
//!   [`recv_with`](WebSocket::recv_with) raw chunks; [`send`](WebSocket::send),
//!   [`feed`](WebSocket::feed) (backpressure), [`feed_frame`](WebSocket::feed_frame)
//!   (fragments), [`close`](WebSocket::close); [`Stream`](futures_core::Stream) +
//!   [`Sink`](futures_sink::Sink); [`split`](WebSocket::split) into a reader and a
//!   writer for two tasks. Receives are cancel-safe.
//!
//! The surface is the same as `sockeye-tokio`'s, name for name.
//!
//! ## How a connection ends
//!
//! Every connection ends exactly once, and `recv` says so by returning **`None`**; then
//! [`WebSocket::outcome`] holds the [`Outcome`]: `Clean` (the close handshake completed:
//! both codes and the peer's reason), `Abnormal` (end of stream without a close = 1006,
//! an I/O error, or a protocol violation by the peer, whose Close we sent), or
//! `TimedOut` (close handshake, keepalive, idle). Its `Display` form is
//! `clean code=1000 reason=bye`, `abnormal: ...`, `timeout: ...`. The peer's Close frame
//! itself arrives before that, as [`Message::Close`]. Sends after the end fail with
//! [`Error::Closed`]; [`Error`] is otherwise only for handshakes and local misuse.
//!
//! ## Driving, timers and memory
//!
//! Receiving drives the connection: after every call queued control frames are written,
//! one `async-io` timer sleeps until the core's next deadline (keepalive, close, idle),
//! and at the end the transport is closed (`poll_close`). Reads are poll-based
//! (`AsyncRead::poll_read` into the driver's buffer): the read buffer (64 KiB by
//! default, [`DriverConfig`]) comes from a per-thread pool only while a read is in
//! progress or a partial frame is buffered, so an idle connection holds none, and no
//! timer exists until one is armed. Sends are queued (small frames coalesced, large
//! payloads written in place with vectored writes) up to
//! [`DriverConfig::max_pending_bytes`] (1 MiB), beyond which `send` and `feed` wait.
//!
//! ```no_run
//! use sockeye_smol::{accept, Message, Settings};
//!
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:9001").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         smol::spawn(async move {
//!             let Ok(mut ws) = accept(stream, Settings::default()).await else { return };
//!             while let Some(message) = ws.recv().await {
//!                 if message.is_data() && ws.send(message).await.is_err() {
//!                     break;
//!                 }
//!             }
//!             while ws.recv().await.is_some() {}
//!             println!("closed {}", ws.outcome().expect("recv returned None"));
//!         })
//!         .detach();
//!     }
//!     # #[allow(unreachable_code)]
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! A client:
//!
//! ```no_run
//! use sockeye_smol::{connect_url, CloseCode, Message, Settings};
//!
//! smol::block_on(async {
//!     let mut ws = connect_url("ws://127.0.0.1:9001/chat", Settings::default()).await?;
//!     ws.send(Message::text("hello")).await?;
//!     if let Some(Message::Text(echo)) = ws.recv().await {
//!         println!("< {echo}");
//!     }
//!     ws.close(CloseCode::NORMAL, "bye").await?;
//!     while ws.recv().await.is_some() {}
//!     println!("# closed {}", ws.outcome().expect("recv returned None"));
//!     Ok::<_, sockeye_smol::Error>(())
//! })?;
//! # Ok::<_, sockeye_smol::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled (and the core's run) as doc tests, so the
// snippet shown on crates.io stays correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub mod reconnect;
mod socket;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::time::Duration;

use async_io::Timer;
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sockeye_proto::driver::{
    AnswersAtOnce, ClientAnswer, ClientUpgrade, Decider, Driver, ServerAnswer, ServerUpgrade,
};
use sockeye_proto::{Connection, StdClock};

pub use reconnect::{ClientEvent, ReconnectingClient};
pub use socket::{ReadHalf, WebSocket, WriteHalf};
pub use sockeye_proto;
pub use sockeye_proto::driver::{
    Abnormal, CloseReason, DriverConfig, Message, Outcome, Refusal, RejectedResponse,
    RequestExtras, RequestHead, Settings, Verdict,
};
pub use sockeye_proto::driver::{Error, IntoRequest};
pub use sockeye_proto::handshake::{ClientRequest, HeadLimits, Url};
pub use sockeye_proto::{
    Boundary, CloseCode, Config, DataKind, Event, KeepAlive, Role, State, Timeout, UpgradeRequest,
};

/// A WebSocket over a plain TCP stream, as [`connect_url`] makes.
pub type TcpWebSocket = WebSocket<async_net::TcpStream>;

/// Random bytes from the OS (the client's key nonce and masking seed).
pub(crate) fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|error| Error::Io(io::Error::other(error.to_string())))?;
    Ok(bytes)
}

/// Accepts a WebSocket upgrade on `stream` (a freshly accepted connection): reads the
/// request, answers `101` (no subprotocol) or the request's rejection. A rejected request
/// is [`Error::Refused`]: the response was written and flushed and the connection closed.
/// The whole handshake is bounded by [`Settings::handshake_timeout`]. A [`Config`]
/// converts into [`Settings`].
pub fn accept<S>(
    stream: S,
    settings: impl Into<Settings>,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let decide = Decider::<fn(&UpgradeRequest<'_, '_>) -> Verdict, AnswersAtOnce>::Now(None);
    accepting(stream, settings.into(), decide)
}

/// As [`accept`], with `decide` seeing the valid request (path, headers, offered
/// subprotocols) and answering with a [`Verdict`]: accept (with a subprotocol and extra
/// headers) or reject with a status.
///
/// ```no_run
/// use sockeye_smol::{accept_with, Settings, Verdict};
///
/// # async fn serve(stream: smol::net::TcpStream) -> Result<(), sockeye_smol::Error> {
/// let ws = accept_with(stream, Settings::default(), |request| {
///     if request.path() != "/chat" {
///         return Verdict::reject(404, "Not Found");
///     }
///     match request.select_protocol(&["v2.chat", "chat"]) {
///         Some(protocol) => Verdict::accept().with_protocol(protocol),
///         None => Verdict::accept(),
///     }
/// })
/// .await?;
/// # let _ = ws; Ok(()) }
/// ```
pub fn accept_with<S, F>(
    stream: S,
    settings: impl Into<Settings>,
    decide: F,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest<'_, '_>) -> Verdict,
{
    accepting(
        stream,
        settings.into(),
        Decider::<F, AnswersAtOnce>::Now(Some(decide)),
    )
}

/// [`accept_with`] for a decision that has to wait: `decide` gets the valid request,
/// owned ([`RequestHead`]), and returns a future of the [`Verdict`]: look the session
/// up, ask an authorization service. The wait counts toward
/// [`Settings::handshake_timeout`]; an invalid request is refused without asking.
///
/// ```no_run
/// use sockeye_smol::{accept_with_async, Settings, Verdict};
///
/// # async fn session_is_valid(_: &[u8]) -> bool { true }
/// # async fn serve(stream: smol::net::TcpStream) -> Result<(), sockeye_smol::Error> {
/// let ws = accept_with_async(stream, Settings::default(), |request| async move {
///     let cookie = request.header("Cookie").unwrap_or_default();
///     if session_is_valid(cookie).await {
///         Verdict::accept()
///     } else {
///         Verdict::reject(401, "Unauthorized").with_body("log in first")
///     }
/// })
/// .await?;
/// # let _ = ws; Ok(()) }
/// ```
pub fn accept_with_async<S, F, Fut>(
    stream: S,
    settings: impl Into<Settings>,
    decide: F,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(RequestHead) -> Fut,
    Fut: Future<Output = Verdict>,
{
    let decide = Decider::<fn(&UpgradeRequest<'_, '_>) -> Verdict, F>::Later(Some(decide));
    accepting(stream, settings.into(), decide)
}

/// The server handshake within [`Settings::handshake_timeout`], boxed: its state (head
/// buffer, timer) is freed once it is done. Returned as it is rather than awaited in an
/// `async fn` (whose future would keep the stream and the settings besides the box), so
/// a task that accepts and then waits in `recv` holds only a pointer for it and is no
/// larger than the connection.
fn accepting<S, F, A, Fut>(
    stream: S,
    settings: Settings,
    decide: Decider<F, A>,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest<'_, '_>) -> Verdict,
    A: FnOnce(RequestHead) -> Fut,
    Fut: Future<Output = Verdict>,
{
    Box::pin(within(
        settings.handshake_timeout,
        Error::HandshakeTimeout,
        server_handshake(stream, settings, decide),
    ))
}

/// Opens a WebSocket over `stream` (TCP, TLS, anything): writes `request`, checks the
/// answer. A non-`101` answer is [`Error::Rejected`], with its body (up to
/// [`HeadLimits::max_rejection_body`]). Bounded by
/// [`Settings::handshake_timeout`].
///
/// ```no_run
/// use sockeye_smol::{connect, ClientRequest, Settings};
///
/// # async fn run() -> Result<(), sockeye_smol::Error> {
/// let stream = smol::net::TcpStream::connect("127.0.0.1:9001").await?;
/// let request = ClientRequest::new("127.0.0.1:9001", "/chat").with_protocols(&["chat"]);
/// let ws = connect(stream, request, Settings::default()).await?;
/// assert!(ws.protocol().is_none() || ws.protocol() == Some("chat"));
/// # Ok(()) }
/// ```
pub async fn connect<'a, S, R>(
    stream: S,
    request: R,
    settings: impl Into<Settings>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: IntoRequest<'a>,
{
    let settings = settings.into();
    let request = request.into_request()?;
    Box::pin(client_handshake(stream, &request, settings)).await
}

/// Connects to a `ws://host[:port]/path` URL over plain TCP (within
/// [`Settings::connect_timeout`], `TCP_NODELAY` set) and opens a WebSocket on it. For
/// `wss://` ([`Error::TlsRequired`]), open the TLS stream yourself and call [`connect`].
pub async fn connect_url(url: &str, settings: impl Into<Settings>) -> Result<TcpWebSocket, Error> {
    connect_url_with(url, &RequestExtras::new(), settings).await
}

/// As [`connect_url`], offering subprotocols and sending headers (`Authorization`,
/// `Cookie`, `Origin` ...) with the upgrade request.
///
/// ```no_run
/// use sockeye_smol::{connect_url_with, RequestExtras, Settings};
///
/// # async fn run() -> Result<(), sockeye_smol::Error> {
/// let extras = RequestExtras::new()
///     .with_protocol("graphql-transport-ws")
///     .with_header("Authorization", "Bearer 0b5e");
/// let ws = connect_url_with("ws://127.0.0.1:9001/graphql", &extras, Settings::default()).await?;
/// assert_eq!(ws.protocol(), Some("graphql-transport-ws"));
/// # Ok(()) }
/// ```
pub async fn connect_url_with(
    url: &str,
    extras: &RequestExtras,
    settings: impl Into<Settings>,
) -> Result<TcpWebSocket, Error> {
    let parsed = Url::parse(url)?;
    if parsed.is_tls() {
        return Err(Error::TlsRequired);
    }
    let open = open_tcp(parsed.host().to_owned(), parsed.port());
    connect_over(open, parsed, extras, settings.into()).await
}

/// A TCP connection to `host:port` with `TCP_NODELAY` set.
pub(crate) async fn open_tcp(host: String, port: u16) -> io::Result<async_net::TcpStream> {
    let stream = async_net::TcpStream::connect((host.as_str(), port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens the stream with `open` (within [`Settings::connect_timeout`]), then the
/// WebSocket for `url` with `extras` over it.
pub(crate) async fn connect_over<S>(
    open: impl Future<Output = io::Result<S>>,
    url: Url<'_>,
    extras: &RequestExtras,
    settings: Settings,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let open = async { Ok(open.await?) };
    let stream = within(settings.connect_timeout, Error::ConnectTimeout, open).await?;
    let (protocols, headers) = extras.borrowed();
    let request = url
        .request()
        .with_protocols(&protocols)
        .with_headers(&headers);
    connect(stream, request, settings).await
}

/// Runs `future` within `timeout`, failing with `error` when it runs out.
async fn within<T>(
    timeout: Option<Duration>,
    error: Error,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout {
        Some(timeout) => {
            futures_lite::future::or(future, async {
                Timer::after(timeout).await;
                Err(error)
            })
            .await
        }
        None => future.await,
    }
}

/// One read into a handshake head buffer.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    read_with: impl FnMut(
        &mut dyn FnMut(&mut [u8]) -> std::task::Poll<io::Result<usize>>,
    ) -> std::task::Poll<io::Result<usize>>,
) -> io::Result<usize> {
    let mut read_with = read_with;
    loop {
        let result =
            poll_fn(|cx| read_with(&mut |buf| Pin::new(&mut *stream).poll_read(cx, buf))).await;
        match result {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

async fn server_handshake<S, F, A, Fut>(
    mut stream: S,
    settings: Settings,
    mut decider: Decider<F, A>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest<'_, '_>) -> Verdict,
    A: FnOnce(RequestHead) -> Fut,
    Fut: Future<Output = Verdict>,
{
    let mut upgrade = ServerUpgrade::new(settings.head_limits);
    let answer = loop {
        let n = read_head(&mut stream, |read| upgrade.read_with(read)).await?;
        if let Some(answer) = decider.answer(&mut upgrade).await {
            break answer;
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "peer left during the handshake",
            )
            .into());
        }
    };
    match answer {
        ServerAnswer::Accept {
            response,
            protocol,
            early,
        } => {
            stream.write_all(&response).await?;
            stream.flush().await?;
            let clock = StdClock::new();
            let connection = Connection::server(settings.protocol, clock.now());
            let mut driver = Driver::new(connection, settings.buffers);
            driver.push_bytes(&early);
            Ok(WebSocket::from_inner(socket::Inner::new(
                stream, driver, clock, protocol,
            )))
        }
        ServerAnswer::Refuse { response, refusal } => {
            if stream.write_all(&response).await.is_ok() && stream.flush().await.is_ok() {
                let _ = stream.close().await;
                linger(&mut stream).await;
            }
            Err(Error::Refused(refusal))
        }
    }
}

/// After a rejection: reads (and drops) what the client still sends until it closes, for
/// a short while, so closing the socket with unread bytes does not reset the connection
/// before the client has read the response.
async fn linger<S: AsyncRead + Unpin>(stream: &mut S) {
    let drain = async {
        let mut buf = [0u8; 1024];
        for _ in 0..64 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    futures_lite::future::or(drain, async {
        Timer::after(Duration::from_secs(1)).await;
    })
    .await;
}

async fn client_handshake<S>(
    mut stream: S,
    request: &ClientRequest<'_>,
    settings: Settings,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let nonce: [u8; 16] = random()?;
    let seed: [u8; 32] = random()?;

    let (mut upgrade, bytes) =
        ClientUpgrade::new(nonce, request, settings.head_limits).map_err(Error::Request)?;
    let handshake = async {
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        loop {
            let n = read_head(&mut stream, |read| upgrade.read_with(read)).await?;
            if let Some(answer) = upgrade.poll(request).map_err(Error::Response)? {
                return Ok(answer);
            }
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server left during the handshake",
                )
                .into());
            }
        }
    };
    let answer = match within(
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
            protocol, early, ..
        } => {
            let clock = StdClock::new();
            let connection = Connection::new(Role::Client, settings.protocol, seed, clock.now());
            let mut driver = Driver::new(connection, settings.buffers);
            driver.push_bytes(&early);
            Ok(WebSocket::from_inner(socket::Inner::new(
                stream, driver, clock, protocol,
            )))
        }
        ClientAnswer::Rejected(response) => Err(Error::Rejected(response)),
    }
}
