//! [`ReconnectingClient`]: a client that keeps a connection up by itself: keepalive to
//! notice a dead link, reconnects with backoff, and a stream of state changes to watch.
//!
//! The decisions (what a failure means, how long to wait, what to do with sends while
//! disconnected) are the engine's [`Supervisor`]; this module only connects, sleeps and
//! moves messages.

use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_sink::Sink;
use sockeye_engine::supervisor::{Action, Stopping, Supervisor};
use sockeye_engine::{Abnormal, CloseReason, Message, Outcome, Settings};
use sockeye_proto::handshake::Url;
use sockeye_proto::reconnect_policy::{Failure, IoKind};
use sockeye_proto::{CloseCode, DeflateParams, Instant, State};

pub use sockeye_engine::supervisor::{
    ClientEvent, NotSent, OfflineSends, ReconnectOptions, Sent, StateChange, Unsent,
};
pub use sockeye_proto::reconnect_policy::{Backoff, GiveUp, Multiplier, ReconnectPolicy};

use crate::handshake::connect_over;
use crate::runtime::{Runtime, Timer, Transport};
use crate::{Error, WebSocket};
use sockeye_engine::RequestExtras;

/// Why a [`ReconnectingClient::send`] failed: not taken (the message is handed back), or
/// the write failed.
pub type SendError = sockeye_engine::supervisor::SendError<Error>;

/// The handle given to the [`on_connect`](ReconnectingClient::on_connect) hook after every
/// (re)connect, to send what a new connection needs first (a login, subscriptions).
#[derive(Debug)]
pub struct OnConnect<'a, S: Transport<R>, R: Runtime> {
    ws: &'a mut WebSocket<S, R>,
    attempt: u32,
}

impl<S: Transport<R>, R: Runtime> OnConnect<'_, S, R> {
    /// Queues `message` on the new connection, ahead of the sends held while disconnected
    /// and of anything the application sends next. It is written as the client is driven.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        Pin::new(&mut *self.ws).start_send(message)
    }

    /// The subprotocol the server chose.
    pub fn protocol(&self) -> Option<&str> {
        self.ws.protocol()
    }

    /// The permessage-deflate parameters this connection agreed on (see
    /// [`WebSocket::compression`]).
    pub fn compression(&self) -> Option<DeflateParams> {
        self.ws.compression()
    }

    /// 0 for the first connection, then the reconnect attempt that succeeded.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// What a connector returns for one attempt: the future of an open stream (TCP, TLS
/// over TCP, anything) to speak WebSocket over.
pub type OpenStream<S> = Pin<Box<dyn Future<Output = io::Result<S>> + Send>>;

type Connecting<S, R> = Pin<Box<dyn Future<Output = Result<WebSocket<S, R>, Error>> + Send>>;
type Connector<S> = Box<dyn FnMut(&Url<'_>) -> OpenStream<S> + Send>;
type Hook<S, R> = Box<dyn FnMut(&mut OnConnect<'_, S, R>) + Send>;
type RequestHook = Box<dyn FnMut(&mut RequestExtras) + Send>;

enum Link<S: Transport<R>, R: Runtime> {
    Down,
    Connecting {
        attempt: u32,
        future: Connecting<S, R>,
    },
    Open(Box<WebSocket<S, R>>),
}

/// A WebSocket client that stays connected: it pings a quiet connection to notice when
/// it died (keepalive, on by default: 20 s / 10 s), reconnects with exponential backoff
/// and jitter when it is lost, and reports every state change along with the messages.
///
/// - **Events**: [`next_event`](Self::next_event) (or the [`Stream`]) yields
///   [`ClientEvent::State`] changes ([`StateChange`]: connecting, open, failed, closed,
///   reconnecting, gave up) and [`ClientEvent::Message`]s, and `None` once the client is
///   done: it gave up, or the application closed it. Like [`WebSocket::recv`], receiving
///   **drives** everything: connecting, the backoff timer, pongs and keepalive, so keep
///   calling it (in a `select!` with the rest of the application; it is cancel-safe).
/// - **Sends**: [`send`](Self::send) writes to the open connection; while disconnected
///   it follows [`ReconnectOptions::offline`]: queue (the default, up to 256 messages /
///   1 MiB, sent first on the next connection) or refuse at once with the message handed
///   back. See [`OfflineSends`].
/// - **The request**: [`with_request`](Self::with_request) sets the subprotocols and
///   headers (`Authorization`, `Cookie` ...) every attempt sends, and an optional
///   [`before_connect`](Self::before_connect) hook may change them before each attempt
///   (a token that expires). [`protocol`](Self::protocol) is the subprotocol the open
///   connection agreed on.
/// - **On every (re)connect**, an optional [`on_connect`](Self::on_connect) hook queues
///   what a fresh connection needs first (re-subscribe, log in).
/// - **Policy**: [`ReconnectOptions::policy`] sets the backoff (500 ms doubling to 30 s,
///   full jitter), the attempt limit and which failures are fatal (by default a 4xx
///   handshake rejection and closes such as 1008 policy violation give up at once;
///   refused connections, resets, timeouts, 5xx and 1001/1006/1011/1012/1013 retry), and
///   how long a server's `Retry-After` may hold the next attempt back (a 503 or 429 that
///   carries one, in seconds or as a date, is retried no sooner; up to 5 minutes by
///   default).
/// - [`close`](Self::close) ends it: the open connection is closed with a close
///   handshake and nothing is retried.
///
/// [`new`](Self::new) connects over plain TCP (`ws://`); for `wss://` or any other
/// stream, [`with_connector`](Self::with_connector) takes a function that opens it.
/// The runtime needs its time driver. Jitter comes from the OS RNG.
///
/// ```no_run
/// use sockeye_tokio::reconnect::{ClientEvent, ReconnectOptions, ReconnectingClient};
/// use sockeye_tokio::{Message, Settings};
///
/// # async fn run() -> Result<(), sockeye_tokio::Error> {
/// let mut client =
///     ReconnectingClient::new("ws://127.0.0.1:9001/feed", Settings::default(), ReconnectOptions::default())?
///         .on_connect(|conn| {
///             let _ = conn.send(Message::text(r#"{"subscribe":"prices"}"#));
///         });
/// while let Some(event) = client.next_event().await {
///     match event {
///         ClientEvent::State(change) => println!("# {change}"),
///         ClientEvent::Message(Message::Text(text)) => println!("< {text}"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
pub struct ReconnectingClient<S: Transport<R>, R: Runtime> {
    url: String,
    connector: Connector<S>,
    settings: Settings,
    supervisor: Supervisor,
    epoch: std::time::Instant,
    link: Link<S, R>,
    sleep: Option<R::Timer>,
    on_connect: Option<Hook<S, R>>,
    request: RequestExtras,
    before_connect: Option<RequestHook>,
    last_error: Option<Error>,
}

impl<S: Transport<R>, R: Runtime> fmt::Debug for ReconnectingClient<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = match &self.link {
            Link::Down => "down",
            Link::Connecting { .. } => "connecting",
            Link::Open(_) => "open",
        };
        f.debug_struct("ReconnectingClient")
            .field("url", &self.url)
            .field("link", &link)
            .field("supervisor", &self.supervisor)
            .finish_non_exhaustive()
    }
}

impl<R: Runtime> ReconnectingClient<R::TcpStream, R> {
    /// A client for the `ws://` `url` over TCP (`TCP_NODELAY` set), opening each
    /// connection with `settings` (a [`Settings`] or a [`Config`](sockeye_proto::Config)) and
    /// `options`'s keepalive. Nothing happens until the first
    /// [`next_event`](Self::next_event), which connects.
    ///
    /// Fails at once for a URL that cannot be used ([`Error::Url`], and
    /// [`Error::TlsRequired`] for `wss://`: see [`with_connector`](Self::with_connector)).
    pub fn new(
        url: impl Into<String>,
        settings: impl Into<Settings>,
        options: ReconnectOptions,
    ) -> Result<Self, Error> {
        let url = url.into();
        if Url::parse(&url)?.is_tls() {
            return Err(Error::TlsRequired);
        }
        let tcp = |url: &Url<'_>| -> OpenStream<R::TcpStream> {
            Box::pin(R::connect_tcp(url.host().to_owned(), url.port()))
        };
        ReconnectingClient::with_connector(url, settings, options, tcp)
    }
}

impl<S: Transport<R> + Send + 'static, R: Runtime> ReconnectingClient<S, R> {
    /// A client for `url` (`ws://` or `wss://`) whose every attempt opens its stream
    /// with `connector`, given the parsed URL (host, port, whether it is TLS): a TLS
    /// stream for `wss://`, a stream through a proxy, an in-memory pipe in a test.
    /// [`Settings::connect_timeout`] bounds the stream's opening and
    /// [`Settings::handshake_timeout`] the upgrade over it. Otherwise as
    /// [`new`](ReconnectingClient::new).
    ///
    /// Fails at once for a URL that cannot be parsed ([`Error::Url`]).
    ///
    /// ```no_run
    /// use sockeye_tokio::reconnect::{OpenStream, ReconnectOptions, ReconnectingClient};
    /// use sockeye_tokio::{Settings, Url};
    /// use tokio::net::TcpStream;
    ///
    /// # fn run() -> Result<(), sockeye_tokio::Error> {
    /// let connector = |url: &Url<'_>| -> OpenStream<TcpStream> {
    ///     let (host, port) = (url.host().to_owned(), url.port());
    ///     Box::pin(async move {
    ///         let tcp = TcpStream::connect((host.as_str(), port)).await?;
    ///         // A TLS crate's connector would wrap `tcp` here, `host` as the server name.
    ///         Ok(tcp)
    ///     })
    /// };
    /// let client = ReconnectingClient::with_connector(
    ///     "wss://example.com/feed",
    ///     Settings::default(),
    ///     ReconnectOptions::default(),
    ///     connector,
    /// )?;
    /// # let _ = client;
    /// # Ok(()) }
    /// ```
    pub fn with_connector(
        url: impl Into<String>,
        settings: impl Into<Settings>,
        options: ReconnectOptions,
        connector: impl FnMut(&Url<'_>) -> OpenStream<S> + Send + 'static,
    ) -> Result<Self, Error> {
        let url = url.into();
        Url::parse(&url)?;
        Ok(ReconnectingClient {
            url,
            connector: Box::new(connector),
            settings: options.apply(settings.into()),
            supervisor: Supervisor::new(&options),
            epoch: R::now(),
            link: Link::Down,
            sleep: None,
            on_connect: None,
            request: RequestExtras::new(),
            before_connect: None,
            last_error: None,
        })
    }

    /// Sends these subprotocols and headers with every attempt's upgrade request.
    pub fn with_request(mut self, request: RequestExtras) -> Self {
        self.request = request;
        self
    }

    /// Runs `hook` before every attempt to connect, with the subprotocols and headers
    /// the attempt will send (as the last hook left them): to put in a fresh token, say.
    /// It cannot wait; keep what it needs ready (a token refreshed elsewhere).
    pub fn before_connect(mut self, hook: impl FnMut(&mut RequestExtras) + Send + 'static) -> Self {
        self.before_connect = Some(Box::new(hook));
        self
    }

    /// Runs `hook` after every (re)connect, before the held sends are replayed and before
    /// [`StateChange::Open`] is reported: what it sends goes out first. It cannot wait;
    /// for a conversation (log in, await the answer), react to `Open` in the event loop
    /// and use [`OfflineSends::Reject`] so that nothing overtakes it.
    pub fn on_connect(
        mut self,
        hook: impl FnMut(&mut OnConnect<'_, S, R>) + Send + 'static,
    ) -> Self {
        self.on_connect = Some(Box::new(hook));
        self
    }

    /// The next state change or message; `None` once the client is done (it gave up, or
    /// [`close`](Self::close) finished). Drives the client. Cancel-safe.
    pub async fn next_event(&mut self) -> Option<ClientEvent> {
        poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Sends `message`: written to the open connection ([`Sent::Written`], waiting for
    /// room in the send queue and for the write), or, while disconnected, queued
    /// ([`Sent::Queued`]) or refused ([`SendError::NotSent`], the message handed back) per
    /// [`ReconnectOptions::offline`]. A connection that is already closing counts as
    /// disconnected.
    pub async fn send(&mut self, message: Message) -> Result<Sent, SendError> {
        if let Link::Open(ws) = &mut self.link {
            if !self.supervisor.is_closing() && ws.state() == State::Open {
                return match ws.send(message).await {
                    Ok(()) => Ok(Sent::Written),
                    Err(error) => Err(SendError::Failed(error)),
                };
            }
        }
        match self.supervisor.offline_send(message) {
            Ok(()) => Ok(Sent::Queued),
            Err(unsent) => Err(SendError::NotSent(unsent)),
        }
    }

    /// Closes the client: an open connection gets a Close with `code` and `reason` (keep
    /// calling [`next_event`](Self::next_event): its [`StateChange::Closed`] comes last,
    /// then `None`); an attempt in progress or a backoff wait is dropped, and the events
    /// end. Nothing is retried afterwards. An invalid `code` or an over-long `reason` is
    /// reported, and the connection is closed with 1000 instead.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        match self.supervisor.stop() {
            Stopping::CloseConnection => {
                let Link::Open(ws) = &mut self.link else {
                    return Ok(());
                };
                let close = Message::Close(Some(CloseReason::new(code, reason)));
                match Pin::new(&mut **ws).start_send(close) {
                    Ok(()) | Err(Error::Closed) => Ok(()),
                    Err(error) => {
                        let normal = Message::Close(Some(CloseReason::new(CloseCode::NORMAL, "")));
                        let _ = Pin::new(&mut **ws).start_send(normal);
                        Err(error)
                    }
                }
            }
            Stopping::Stopped => {
                self.link = Link::Down;
                self.sleep = None;
                Ok(())
            }
        }
    }

    /// Whether a connection is open now.
    pub fn is_open(&self) -> bool {
        matches!(self.link, Link::Open(_)) && self.supervisor.is_open()
    }

    /// How many sends are held for the next connection.
    pub fn queued(&self) -> usize {
        self.supervisor.queued()
    }

    /// Takes the sends held for the next connection (after the client gave up, say).
    pub fn take_queued(&mut self) -> Vec<Message> {
        self.supervisor.take_queued()
    }

    /// The error of the last failed attempt (its [`StateChange::Failed`] carries only the
    /// classified [`Failure`]): the I/O error, or the server's whole rejection with its
    /// headers ([`Error::Rejected`]).
    pub fn last_error(&self) -> Option<&Error> {
        self.last_error.as_ref()
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The subprotocols and headers the next attempt sends (before its
    /// [`before_connect`](Self::before_connect) hook runs).
    pub fn request(&self) -> &RequestExtras {
        &self.request
    }

    /// The subprotocol the open connection agreed on; `None` while disconnected, or if
    /// the server chose none.
    pub fn protocol(&self) -> Option<&str> {
        match &self.link {
            Link::Open(ws) => ws.protocol(),
            _ => None,
        }
    }

    /// The permessage-deflate parameters the open connection agreed on (every attempt
    /// offers [`Settings::compression`]); `None` while disconnected, or if none was
    /// agreed.
    pub fn compression(&self) -> Option<DeflateParams> {
        match &self.link {
            Link::Open(ws) => ws.compression(),
            _ => None,
        }
    }

    fn now(&self) -> Instant {
        let elapsed = R::now().saturating_duration_since(self.epoch);
        Instant::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The event loop: hand out state changes first, then drive the link.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        loop {
            if let Some(change) = self.supervisor.poll_change() {
                return Poll::Ready(Some(ClientEvent::State(change)));
            }
            match &mut self.link {
                Link::Open(ws) => match Pin::new(&mut **ws).poll_next(cx) {
                    Poll::Ready(Some(message)) => {
                        return Poll::Ready(Some(ClientEvent::Message(message)))
                    }
                    Poll::Ready(None) => {
                        let outcome = ws.outcome().unwrap_or(Outcome::Abnormal(Abnormal::Eof));
                        self.link = Link::Down;
                        let now = self.now();
                        self.supervisor.handle_closed(outcome, random(now), now);
                    }
                    Poll::Pending => return Poll::Pending,
                },
                Link::Connecting { attempt, future } => {
                    let attempt = *attempt;
                    match future.as_mut().poll(cx) {
                        Poll::Ready(Ok(ws)) => self.opened(ws, attempt),
                        Poll::Ready(Err(error)) => {
                            self.link = Link::Down;
                            let now = self.now();
                            let failure = failure_of(&error);
                            self.last_error = Some(error);
                            self.supervisor
                                .handle_connect_failure(failure, random(now), now);
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Link::Down => match self.supervisor.poll_action(self.now()) {
                    Action::Connect { attempt } => {
                        self.sleep = None;
                        if let Some(hook) = &mut self.before_connect {
                            hook(&mut self.request);
                        }
                        let url = self.url.clone();
                        let request = self.request.clone();
                        let settings = self.settings;
                        // Checked when the client was made.
                        let open = Url::parse(&url).map(|parsed| (self.connector)(&parsed));
                        self.link = Link::Connecting {
                            attempt,
                            future: Box::pin(async move {
                                let parsed = Url::parse(&url)?;
                                connect_over(open?, parsed, &request, settings).await
                            }),
                        };
                    }
                    Action::Wait { until } => {
                        let at = self.epoch + Duration::from_nanos(until.as_nanos());
                        let timer = match &mut self.sleep {
                            Some(timer) => {
                                timer.reset(at);
                                timer
                            }
                            None => self.sleep.insert(R::timer(at)),
                        };
                        if timer.poll_fire(cx).is_pending() {
                            return Poll::Pending;
                        }
                    }
                    // The supervisor says an attempt or a connection is in progress, but
                    // there is none: cannot happen; end rather than spin.
                    Action::Stop | Action::Drive => return Poll::Ready(None),
                },
            }
        }
    }

    /// A connection opened: run the hook, replay the held sends, report `Open`.
    fn opened(&mut self, mut ws: WebSocket<S, R>, attempt: u32) {
        let replay = self.supervisor.handle_open(self.now());
        if let Some(hook) = &mut self.on_connect {
            hook(&mut OnConnect {
                ws: &mut ws,
                attempt,
            });
        }
        for message in replay {
            if let Err(Error::Closed) = Pin::new(&mut ws).start_send(message.clone()) {
                // Already over: keep it for the next connection.
                let _ = self.supervisor.offline_send(message);
            }
        }
        self.link = Link::Open(Box::new(ws));
    }
}

/// State changes and messages; ends when the client is done. Drives the client.
impl<S: Transport<R> + Send + 'static, R: Runtime> Stream for ReconnectingClient<S, R> {
    type Item = ClientEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.get_mut().poll_event(cx)
    }
}

/// How a failed attempt counts for the policy.
fn failure_of(error: &Error) -> Failure {
    match error {
        Error::Io(error) => Failure::ConnectFailed(IoKind::from(error.kind())),
        Error::ConnectTimeout => Failure::ConnectFailed(IoKind::TimedOut),
        Error::HandshakeTimeout => Failure::HandshakeTimedOut,
        Error::Rejected(rejected) => Failure::Rejected {
            status: rejected.status,
            retry_after: rejected.retry_after_at(std::time::SystemTime::now()),
        },
        Error::Response(_) => Failure::BadHandshake,
        Error::Url(_) | Error::TlsRequired | Error::Request(_) | Error::Send(_) => {
            Failure::ConnectFailed(IoKind::Invalid)
        }
        _ => Failure::ConnectFailed(IoKind::Other),
    }
}

/// A uniform draw for the backoff jitter, from the OS RNG (the clock's low bits if the
/// OS RNG fails, which is still spread enough to de-synchronise clients).
fn random(now: Instant) -> u64 {
    let mut bytes = [0u8; 8];
    match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => now.as_nanos().wrapping_mul(0x9e37_79b9_7f4a_7c15),
    }
}
