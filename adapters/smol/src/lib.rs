//! # sockeye-smol: Sockeye WebSockets on smol, or any executor
//!
//! A thin driver of the sans-IO [`sockeye_proto`] core over `futures-io` streams
//! (`AsyncRead + AsyncWrite + Unpin`) with `async-io` timers, so it runs on smol,
//! async-std, or any executor. The protocol, buffers and send queue are the core's
//! [`Driver`](sockeye_proto::driver::Driver); this crate only moves bytes and time.
//!
//! - Server: [`accept`] / [`accept_with`] (a callback sees the request and answers with a
//!   [`Verdict`]). A bad request gets its 400 / 426 / 431 written and flushed, the socket
//!   closed, and [`Error::Refused`] returned; a peer that never finishes its request is
//!   dropped after [`Settings::handshake_timeout`] (10 s).
//! - Client: [`connect`] over any stream (TLS is the caller's stream) and [`connect_url`]
//!   for plain `ws://` TCP with a connect timeout. A non-`101` answer is
//!   [`Error::Rejected`] with the status.
//! - [`WebSocket`]: [`recv`](WebSocket::recv) / [`send`](WebSocket::send) /
//!   [`close`](WebSocket::close), streaming receive ([`recv_with`](WebSocket::recv_with))
//!   and fragmented sends, [`Stream`](futures_core::Stream) +
//!   [`Sink`](futures_sink::Sink), [`split`](WebSocket::split) into halves for two tasks.
//!   Receives are cancel safe.
//! - The end is reported once, as an [`Outcome`]: clean (codes and reasons), abnormal
//!   (EOF without a close handshake, I/O error, protocol error) or timed out.
//!
//! Memory: an idle connection holds no read buffer (it comes from a per-thread pool when
//! bytes arrive and goes back when no partial frame is left) and no write buffer.
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
//!             while let Some(Ok(message)) = ws.recv().await {
//!                 if message.is_data() && ws.send(message).await.is_err() {
//!                     break;
//!                 }
//!             }
//!             println!("closed {}", ws.outcome().expect("over"));
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
//!     if let Some(Ok(Message::Text(echo))) = ws.recv().await {
//!         println!("< {echo}");
//!     }
//!     let outcome = ws.close(CloseCode::NORMAL, "bye").await?;
//!     println!("# closed {outcome}");
//!     Ok::<_, sockeye_smol::Error>(())
//! })?;
//! # Ok::<_, sockeye_smol::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod socket;

use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::time::Duration;

use async_io::Timer;
use futures_io::{AsyncRead, AsyncWrite};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use sockeye_proto::driver::{ClientAnswer, ClientUpgrade, Driver, ServerAnswer, ServerUpgrade};
use sockeye_proto::{Connection, Role, StdClock};

pub use socket::{ReadHalf, WebSocket, WriteHalf};
pub use sockeye_proto;
pub use sockeye_proto::driver::{
    Abnormal, CloseReason, DriverConfig, Message, Outcome, Refusal, RejectedResponse, Settings,
    Verdict,
};
pub use sockeye_proto::handshake::{ClientRequest, UpgradeRequest, Url};
pub use sockeye_proto::{
    Boundary, CloseCode, Config, DataKind, Event, KeepAlive, ProtocolError, ResponseError,
    SendError, Timeout, UrlError, WriteError,
};

/// A WebSocket over a plain TCP stream, as [`connect_url`] makes.
pub type TcpWebSocket = WebSocket<async_net::TcpStream>;

/// Everything that can go wrong, split by cause. A normal close is not an error: it is the
/// [`Outcome`] of the connection.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed (a peer that left in the middle of the handshake is
    /// `UnexpectedEof`; a TCP connect that took too long is `TimedOut`).
    Io(io::Error),
    /// Server: the request was turned down (invalid, or by the application's
    /// [`Verdict`]); the response was written and the connection closed.
    Refused(Refusal),
    /// Client: the server answered with a status other than `101`.
    Rejected(RejectedResponse),
    /// Client: the server's `101` breaks RFC 6455 §4.1, or is not HTTP.
    Response(ResponseError),
    /// Client: the URL cannot be used.
    Url(UrlError),
    /// Client: a `wss://` URL; connect a TLS stream yourself and use [`connect`].
    TlsUnsupported,
    /// Client: the request cannot be written (a malformed header, say).
    Request(WriteError),
    /// The opening handshake took longer than [`Settings::handshake_timeout`].
    HandshakeTimeout,
    /// The peer broke the protocol: our Close with the error's code was sent and the
    /// connection is over.
    Protocol(ProtocolError),
    /// A message that cannot be sent (a control payload over 125 bytes, a close code that
    /// may not be sent, sending after our Close ...).
    Send(SendError),
    /// The connection is over (see [`WebSocket::outcome`]).
    Closed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "i/o error: {error}"),
            Error::Refused(refusal) => write!(f, "handshake refused: {refusal}"),
            Error::Rejected(response) => write!(f, "server rejected the handshake: {response}"),
            Error::Response(error) => write!(f, "invalid handshake response: {error}"),
            Error::Url(error) => write!(f, "invalid URL: {error}"),
            Error::TlsUnsupported => f.write_str("wss:// needs a TLS stream: use connect()"),
            Error::Request(error) => write!(f, "cannot write the handshake request: {error}"),
            Error::HandshakeTimeout => f.write_str("handshake timed out"),
            Error::Protocol(error) => write!(f, "protocol error: {error}"),
            Error::Send(error) => write!(f, "cannot send: {error}"),
            Error::Closed => f.write_str("connection closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(error) => Some(error),
            Error::Response(error) => Some(error),
            Error::Protocol(error) => Some(error),
            Error::Send(error) => Some(error),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(error)
    }
}

/// Accepts a WebSocket upgrade on `stream` (a freshly accepted connection): reads the
/// request, answers `101` (no subprotocol) or the request's rejection. A rejected request
/// is [`Error::Refused`]: the response was written and flushed and the connection closed.
/// The whole handshake is bounded by [`Settings::handshake_timeout`]. A [`Config`]
/// converts into [`Settings`].
pub async fn accept<S>(stream: S, settings: impl Into<Settings>) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = settings.into();
    let decide: Option<fn(&UpgradeRequest<'_, '_>) -> Verdict> = None;
    with_timeout(
        settings.handshake_timeout,
        server_handshake(stream, settings, decide),
    )
    .await
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
pub async fn accept_with<S, F>(
    stream: S,
    settings: impl Into<Settings>,
    decide: F,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest<'_, '_>) -> Verdict,
{
    let settings = settings.into();
    with_timeout(
        settings.handshake_timeout,
        server_handshake(stream, settings, Some(decide)),
    )
    .await
}

/// Opens a WebSocket over `stream` (TCP, TLS, anything): writes `request`, checks the
/// answer. A non-`101` answer is [`Error::Rejected`]. Bounded by
/// [`Settings::handshake_timeout`].
///
/// ```no_run
/// use sockeye_smol::{connect, ClientRequest, Settings};
///
/// # async fn run() -> Result<(), sockeye_smol::Error> {
/// let stream = smol::net::TcpStream::connect("127.0.0.1:9001").await?;
/// let request = ClientRequest::new("127.0.0.1:9001", "/chat").with_protocols(&["chat"]);
/// let ws = connect(stream, &request, Settings::default()).await?;
/// assert!(ws.protocol().is_none() || ws.protocol() == Some("chat"));
/// # Ok(()) }
/// ```
pub async fn connect<S>(
    stream: S,
    request: &ClientRequest<'_>,
    settings: impl Into<Settings>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let settings = settings.into();
    with_timeout(
        settings.handshake_timeout,
        client_handshake(stream, request, settings),
    )
    .await
}

/// Connects to a `ws://host[:port]/path` URL over TCP (within
/// [`Settings::connect_timeout`], `TCP_NODELAY` on) and opens a WebSocket there.
/// `wss://` is [`Error::TlsUnsupported`]: connect a TLS stream and use [`connect`].
pub async fn connect_url(url: &str, settings: impl Into<Settings>) -> Result<TcpWebSocket, Error> {
    let settings = settings.into();
    let url = Url::parse(url).map_err(Error::Url)?;
    if url.is_tls() {
        return Err(Error::TlsUnsupported);
    }
    let tcp = async_net::TcpStream::connect((url.host(), url.port()));
    let stream = match settings.connect_timeout {
        Some(timeout) => {
            futures_lite::future::or(tcp, async {
                Timer::after(timeout).await;
                Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
            })
            .await?
        }
        None => tcp.await?,
    };
    stream.set_nodelay(true)?;
    connect(stream, &url.request(), settings).await
}

async fn with_timeout<T>(
    timeout: Option<Duration>,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout {
        Some(timeout) => {
            futures_lite::future::or(future, async {
                Timer::after(timeout).await;
                Err(Error::HandshakeTimeout)
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

async fn server_handshake<S, F>(
    mut stream: S,
    settings: Settings,
    decide: Option<F>,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&UpgradeRequest<'_, '_>) -> Verdict,
{
    let mut upgrade = ServerUpgrade::new(settings.head_limits);
    let mut decide = decide;
    let answer = loop {
        let n = read_head(&mut stream, |read| upgrade.read_with(read)).await?;
        if let Some(answer) = upgrade.poll(&mut decide) {
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
    let mut random = [0u8; 48];
    getrandom::getrandom(&mut random).map_err(|e| io::Error::other(e.to_string()))?;
    let mut nonce = [0u8; 16];
    let mut seed = [0u8; 32];
    nonce.copy_from_slice(&random[..16]);
    seed.copy_from_slice(&random[16..]);

    let (mut upgrade, bytes) =
        ClientUpgrade::new(nonce, request, settings.head_limits).map_err(Error::Request)?;
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    let answer = loop {
        let n = read_head(&mut stream, |read| upgrade.read_with(read)).await?;
        if let Some(answer) = upgrade.poll(request).map_err(Error::Response)? {
            break answer;
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server left during the handshake",
            )
            .into());
        }
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
