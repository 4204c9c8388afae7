//! The opening handshake over a tokio stream: [`accept`], [`accept_with`], [`connect`],
//! [`connect_url`]. The HTTP work is the driver's (`ServerUpgrade`, `ClientUpgrade`);
//! this module only moves bytes and applies the timeouts.

use std::future::{poll_fn, Future};
use std::io;
use std::time::Duration;

use sockeye_engine::Settings;
use sockeye_engine::{
    AnswersAtOnce, ClientAnswer, ClientUpgrade, Decider, IntoRequest, RequestExtras, RequestHead,
    ServerAnswer, ServerUpgrade, Verdict,
};
use sockeye_proto::handshake::{ClientRequest, Url};
use sockeye_proto::{Role, UpgradeRequest};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::core::{poll_read_into, Core};
use crate::{Error, WebSocket};

/// After refusing a request, how long to keep reading (and discarding) what the client
/// still sends, so closing the socket does not reset it before it read the response.
const LINGER_AFTER_REFUSAL: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

async fn within<T>(
    timeout: Option<Duration>,
    on_timeout: Error,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match timeout {
        Some(timeout) => match tokio::time::timeout(timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(on_timeout),
        },
        None => work.await,
    }
}

/// Accepts a WebSocket connection on `stream` (a server): reads and validates the
/// upgrade request, answers `101`, and returns the connection. Any path and no
/// subprotocol are accepted; see [`accept_with`] to look at the request first.
///
/// A request that is not a valid upgrade gets its response (400, 426 with
/// `Sec-WebSocket-Version: 13`, 431) written and flushed, the socket is shut down, and
/// the error is [`Error::Refused`]. A client that does not finish its request within
/// [`Settings::handshake_timeout`] (default 10 s) is dropped with
/// [`Error::HandshakeTimeout`]. Needs a runtime with the time driver enabled.
///
/// `settings` is a [`Settings`] or a core [`Config`](crate::Config).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use sockeye_tokio::{accept, Config, Message};
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     tokio::spawn(async move {
///         let Ok(mut ws) = accept(tcp, Config::default()).await else { return };
///         while let Some(message) = ws.recv().await {
///             if message.is_data() && ws.send(message).await.is_err() {
///                 break;
///             }
///         }
///         println!("ended: {}", ws.outcome().unwrap());
///     });
/// }
/// # }
/// ```
pub fn accept<S>(
    stream: S,
    settings: impl Into<Settings>,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, settings, |_: &UpgradeRequest<'_, '_>| {
        Verdict::accept()
    })
}

/// [`accept`], letting `decide` look at the request (path, query, headers, offered
/// subprotocols) and answer with a [`Verdict`]: accept with a subprotocol and extra
/// headers, or reject with an HTTP status ([`Error::Refused`] with
/// [`Refusal::Rejected`](crate::Refusal::Rejected) is then returned, after the response
/// was written).
///
/// ```no_run
/// # async fn run(tcp: tokio::net::TcpStream) -> Result<(), sockeye_tokio::Error> {
/// use sockeye_tokio::{accept_with, Settings, Verdict};
///
/// let ws = accept_with(tcp, Settings::default(), |request| {
///     if request.path() != "/chat" {
///         return Verdict::reject(404, "Not Found");
///     }
///     match request.select_protocol(&["v2.chat", "chat"]) {
///         Some(protocol) => Verdict::accept().with_protocol(protocol),
///         None => Verdict::accept(),
///     }
/// })
/// .await?;
/// println!("subprotocol: {:?}", ws.protocol());
/// # Ok(()) }
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
    // Boxed, and returned as it is rather than awaited in an `async fn` (whose future
    // would keep the stream and the settings besides the box): the handshake's state
    // (buffers, timers) is freed once it is done, and a task that accepts and then
    // waits in `recv` holds only a pointer for it, so it is no larger than the
    // connection.
    Box::pin(server_handshake(
        stream,
        settings.into(),
        Decider::<F, AnswersAtOnce>::Now(Some(decide)),
    ))
}

/// [`accept_with`] for a decision that has to wait: `decide` gets the valid request,
/// owned ([`RequestHead`]), and returns a future of the [`Verdict`]: look the session
/// up, ask an authorization service. The wait counts toward
/// [`Settings::handshake_timeout`]; an invalid request is refused without asking.
///
/// ```no_run
/// # async fn run(tcp: tokio::net::TcpStream) -> Result<(), sockeye_tokio::Error> {
/// # async fn session_is_valid(_: &[u8]) -> bool { true }
/// use sockeye_tokio::{accept_with_async, Settings, Verdict};
///
/// let ws = accept_with_async(tcp, Settings::default(), |request| async move {
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
    // Boxed and not awaited here, as in `accept_with`.
    Box::pin(server_handshake(
        stream,
        settings.into(),
        Decider::<fn(&UpgradeRequest<'_, '_>) -> Verdict, F>::Later(Some(decide)),
    ))
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
    let handshake = async {
        let mut upgrade = ServerUpgrade::new(settings.head_limits);
        let answer = loop {
            let n =
                poll_fn(|cx| upgrade.read_with(|buf| poll_read_into(&mut stream, cx, buf))).await?;
            if let Some(answer) = decider.answer(&mut upgrade).await {
                break answer;
            }
            if n == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
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
                Ok(Ok((protocol, early)))
            }
            ServerAnswer::Refuse { response, refusal } => {
                stream.write_all(&response).await?;
                stream.flush().await?;
                Ok(Err(refusal))
            }
        }
    };
    let answer = within(
        settings.handshake_timeout,
        Error::HandshakeTimeout,
        handshake,
    )
    .await?;
    match answer {
        Ok((protocol, early)) => Ok(WebSocket::from_core(Core::new(
            stream,
            Role::Server,
            &settings,
            protocol,
            &early,
        )?)),
        Err(refusal) => {
            let _ = stream.shutdown().await;
            // Read what the client still sends until it closes, briefly, so that
            // closing does not reset the connection before the response was read.
            let drain = async {
                let mut sink = [0u8; 1024];
                let mut left = LINGER_BYTES;
                while left > 0 {
                    match stream.read(&mut sink).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            };
            let _ = tokio::time::timeout(LINGER_AFTER_REFUSAL, drain).await;
            Err(Error::Refused(refusal))
        }
    }
}

/// Opens a WebSocket over `stream` (a client): writes the upgrade request, checks the
/// answer, and returns the connection. `stream` is any `AsyncRead + AsyncWrite`, so TLS
/// is a `tokio-rustls` (or other) stream you opened. The key nonce and the masking seed
/// come from the OS RNG.
///
/// A non-`101` answer is [`Error::Rejected`] with its status, reason, headers and body
/// (up to [`max_rejection_body`](crate::HeadLimits::max_rejection_body), 64 KiB; a body
/// still coming at the timeout is reported as far as it came); an invalid one is
/// [`Error::Response`]. The whole exchange is limited by
/// [`Settings::handshake_timeout`].
///
/// ```no_run
/// # async fn run() -> Result<(), sockeye_tokio::Error> {
/// use sockeye_tokio::{connect, ClientRequest, Message, Settings};
///
/// let tcp = tokio::net::TcpStream::connect("127.0.0.1:9001").await?;
/// let request = ClientRequest::new("127.0.0.1:9001", "/chat").with_protocols(&["chat"]);
/// let mut ws = connect(tcp, request, Settings::default()).await?;
/// ws.send(Message::text("hello")).await?;
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
    // Boxed for the same reason as `accept_with`.
    Box::pin(client_handshake(
        stream,
        request.into_request()?,
        settings.into(),
    ))
    .await
}

async fn client_handshake<S>(
    mut stream: S,
    request: ClientRequest<'_>,
    settings: Settings,
) -> Result<WebSocket<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let nonce: [u8; 16] = crate::random()?;
    let (mut upgrade, bytes) =
        ClientUpgrade::new(nonce, &request, settings.head_limits).map_err(Error::Request)?;
    let handshake = async {
        stream.write_all(&bytes).await?;
        stream.flush().await?;
        loop {
            let n =
                poll_fn(|cx| upgrade.read_with(|buf| poll_read_into(&mut stream, cx, buf))).await?;
            if let Some(answer) = upgrade.poll(&request).map_err(Error::Response)? {
                return Ok(answer);
            }
            if n == 0 {
                return Err(Error::Io(io::ErrorKind::UnexpectedEof.into()));
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
        } => Ok(WebSocket::from_core(Core::new(
            stream,
            Role::Client,
            &settings,
            protocol,
            &early,
        )?)),
        ClientAnswer::Rejected(rejected) => Err(Error::Rejected(rejected)),
    }
}

/// Connects to a `ws://host[:port]/path` URL over plain TCP (with
/// [`Settings::connect_timeout`], `TCP_NODELAY` set) and opens a WebSocket on it. For
/// `wss://`, open the TLS stream yourself and call [`connect`].
///
/// ```no_run
/// # async fn run() -> Result<(), sockeye_tokio::Error> {
/// use sockeye_tokio::{connect_url, Settings};
///
/// let mut ws = connect_url("ws://127.0.0.1:9001/", Settings::default()).await?;
/// while let Some(message) = ws.recv().await {
///     println!("{message:?}");
/// }
/// println!("# closed {}", ws.outcome().unwrap());
/// # Ok(()) }
/// ```
pub async fn connect_url(
    url: &str,
    settings: impl Into<Settings>,
) -> Result<WebSocket<TcpStream>, Error> {
    connect_url_with(url, &RequestExtras::new(), settings).await
}

/// As [`connect_url`], offering subprotocols and sending headers (`Authorization`,
/// `Cookie`, `Origin` ...) with the upgrade request.
///
/// ```no_run
/// # async fn run() -> Result<(), sockeye_tokio::Error> {
/// use sockeye_tokio::{connect_url_with, RequestExtras, Settings};
///
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
) -> Result<WebSocket<TcpStream>, Error> {
    let parsed = Url::parse(url)?;
    if parsed.is_tls() {
        return Err(Error::TlsRequired);
    }
    let open = open_tcp(parsed.host().to_owned(), parsed.port());
    connect_over(open, parsed, extras, settings.into()).await
}

/// A TCP connection to `host:port` with `TCP_NODELAY` set.
pub(crate) async fn open_tcp(host: String, port: u16) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
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
