//! [`WebSocket`]: one open connection.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_sink::Sink;
use sockeye_engine::{Message, Outcome, PreparedMessage, Settings};
use sockeye_proto::{CloseCode, DataKind, DeflateParams, Event, Role, State};

use crate::connection::Core;
use crate::runtime::{Runtime, Transport};
use crate::split::{ReadHalf, WriteHalf};
use crate::Error;

/// An open WebSocket connection over a stream `S` of runtime `R` (a `TcpStream`, a TLS
/// stream, anything the runtime reads and writes: see [`Transport`]).
///
/// - **Receiving**: [`recv`](Self::recv) returns whole [`Message`]s (text, binary, ping,
///   pong, and the peer's close), then `None` once the connection is over; how it ended
///   is then [`outcome`](Self::outcome). [`recv_with`](Self::recv_with) hands out the
///   raw chunks of large messages instead, without buffering them whole. Receiving also
///   drives the connection: it writes Pongs and close replies, fires keepalive and close
///   timers, and shuts the transport down at the end, so keep calling it.
/// - **Sending**: [`send`](Self::send) queues a message and waits until it is written;
///   [`feed`](Self::feed) only queues it (waiting only while the send queue is over its
///   bound: backpressure), and the next `recv` or [`flush`](Self::flush) writes it.
///   [`close`](Self::close) starts the close handshake.
/// - `futures` [`Stream`] of `Message`s and [`Sink`] of `Message`s; [`split`](Self::split)
///   into halves for two tasks.
///
/// # Cancel safety
///
/// `recv`, `recv_with` and `feed` are cancel-safe: every bit of state (buffered input, a
/// half-assembled message, timers) lives in the `WebSocket`, not in the future, so
/// dropping one of these futures (say, the losing branch of a `select!`) loses
/// nothing, and the next call carries on. `feed` either queued the message or did not.
/// `send`, `flush` and `close` may be dropped too; what they queued stays queued and
/// goes out with the next write.
#[derive(Debug)]
pub struct WebSocket<S: Transport<R>, R: Runtime> {
    core: Core<S, R>,
}

impl<S: Transport<R>, R: Runtime> WebSocket<S, R> {
    pub(crate) fn from_core(core: Core<S, R>) -> Self {
        WebSocket { core }
    }

    /// A connection over a `stream` whose handshake was done elsewhere (say by an HTTP
    /// server that handed over the upgraded socket). `early` holds bytes already read
    /// after the handshake.
    pub fn from_raw(
        stream: S,
        role: Role,
        settings: impl Into<Settings>,
        early: &[u8],
    ) -> Result<Self, Error> {
        Ok(WebSocket {
            core: Core::new(stream, role, &settings.into(), None, None, early)?,
        })
    }

    /// A connection over a `stream` whose handshake an HTTP server did, with what that
    /// handshake agreed: the subprotocol and the permessage-deflate (as
    /// [`FieldAnswer::Accept`](sockeye_engine::handshake::FieldAnswer::Accept) or
    /// [`ClientAnswer::Accepted`](sockeye_engine::ClientAnswer::Accepted) give them). The
    /// hyper adapter starts its connections here.
    pub fn from_upgraded(
        stream: S,
        role: Role,
        settings: impl Into<Settings>,
        protocol: Option<String>,
        compression: Option<sockeye_engine::handshake::Agreed>,
    ) -> Result<Self, Error> {
        Ok(WebSocket {
            core: Core::new(stream, role, &settings.into(), protocol, compression, &[])?,
        })
    }

    /// The next message, or `None` once the connection is over (then see
    /// [`outcome`](Self::outcome)). The peer's Close arrives as [`Message::Close`]: the
    /// connection is half-closed, our reply is on its way, and `None` follows once the
    /// close handshake completed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Message> {
        poll_fn(|cx| self.core.poll_recv(cx)).await
    }

    /// The next raw event, passed to `f` while it borrows the read buffer: chunks of text
    /// (always whole characters) and binary data with their [`Boundary`](sockeye_proto::Boundary),
    /// pings, pongs and the peer's close. A message larger than the read buffer comes in
    /// several chunks and is never held whole. Returns `None` (without calling `f`) once
    /// the connection is over. Cancel-safe. Do not switch between `recv` and `recv_with`
    /// in the middle of a message.
    ///
    /// ```no_run
    /// # use sockeye_async::{Runtime, Transport, WebSocket};
    /// # use sockeye_proto::Event;
    /// # async fn run<S: Transport<R>, R: Runtime>(mut ws: WebSocket<S, R>) {
    /// let mut total = 0;
    /// while let Some(done) = ws
    ///     .recv_with(|event| match event {
    ///         Event::Binary { bytes, end } => {
    ///             total += bytes.len();
    ///             end.is_message_end()
    ///         }
    ///         _ => false,
    ///     })
    ///     .await
    /// {
    ///     if done {
    ///         println!("a message of {total} bytes");
    ///         total = 0;
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn recv_with<T>(&mut self, f: impl FnOnce(Event<'_>) -> T) -> Option<T> {
        let mut f = Some(f);
        poll_fn(|cx| self.core.poll_event_with(cx, &mut f)).await
    }

    /// Queues `message` and waits until everything queued is written. Text and binary
    /// messages are written without a copy when large (a client masks them in place).
    /// [`Message::Ping`], [`Message::Pong`] and [`Message::Close`] send those frames.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues `message`, waiting first while the send queue is over
    /// [`DriverConfig::max_pending_bytes`](sockeye_engine::DriverConfig::max_pending_bytes)
    /// (backpressure). The next [`recv`](Self::recv) or [`flush`](Self::flush) writes it.
    /// Cancel-safe: the message is queued when this returns, not before.
    pub fn feed(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        // A `poll_fn` rather than an `async fn`, whose future would keep the message
        // twice (96 bytes instead of 40, in the task of every connection that echoes).
        let mut message = Some(message);
        poll_fn(move |cx| {
            ready!(self.core.poll_ready(cx))?;
            // `None` only if polled again after it returned.
            Poll::Ready(message.take().map_or(Ok(()), |m| self.core.start_send(m)))
        })
    }

    /// Queues a [`PreparedMessage`] and waits until everything queued is written: a
    /// broadcast framed (and compressed) once, written on every subscriber's connection
    /// by reference, without a copy (see [`PreparedMessage`] for when a connection
    /// takes its own copy instead).
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.feed_prepared(prepared).await?;
        self.flush().await
    }

    /// Queues a [`PreparedMessage`], waiting first while the send queue is full, like
    /// [`feed`](Self::feed).
    pub async fn feed_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_ready(cx)).await?;
        self.core.start_send_prepared(prepared)
    }

    /// Queues a [`PreparedMessage`] if the send queue has room, without waiting, like
    /// [`try_feed`](Self::try_feed): a broadcaster decides what a slow subscriber gets
    /// (skip it, or close it with 1008 or 1013) instead of waiting for it. `Full` hands
    /// back a clone (a reference count).
    pub fn try_feed_prepared(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), crate::TrySendError<PreparedMessage>> {
        if self.core.is_full() {
            return Err(crate::TrySendError::Full(prepared.clone()));
        }
        self.core
            .start_send_prepared(prepared)
            .map_err(crate::TrySendError::Failed)
    }

    /// Sends one frame of a message in fragments (the streaming send): `fin == false`
    /// continues the message with the next call. Waits like [`feed`](Self::feed).
    pub async fn feed_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_ready(cx)).await?;
        self.core.start_send_frame(kind, fin, payload)
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.core.poll_flush(cx)).await
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes) and writes
    /// our Close. Keep calling [`recv`](Self::recv) until `None` to see the peer's answer:
    /// the outcome is clean once it arrived, or timed out after
    /// [`Config::close_timeout`](sockeye_proto::Config::close_timeout).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.core.start_close(code, reason)?;
        self.flush().await
    }

    /// How the connection ended, once `recv` returned `None` (or a send failed).
    pub fn outcome(&self) -> Option<Outcome> {
        self.core.outcome().cloned()
    }

    /// Queues `message` if the send queue has room, without waiting: a broadcaster
    /// that must never wait for one slow peer. `Err(TrySendError::Full(message))` hands
    /// the message back when the queue is over
    /// [`DriverConfig::max_pending_bytes`](sockeye_engine::DriverConfig::max_pending_bytes)
    /// (the queue drains as `recv`, `flush` or `send` run).
    pub fn try_feed(&mut self, message: Message) -> Result<(), crate::TrySendError> {
        if self.core.is_full() {
            return Err(crate::TrySendError::Full(message));
        }
        self.core
            .start_send(message)
            .map_err(crate::TrySendError::Failed)
    }

    /// Whether a [`feed`](Self::feed) would wait now: the send queue is over its bound.
    pub fn is_full(&self) -> bool {
        self.core.is_full()
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        self.core.driver.connection().state()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.core.driver.protocol()
    }

    /// The permessage-deflate parameters agreed in the handshake (see
    /// [`Settings::compression`]); `None` if the connection does not compress.
    pub fn compression(&self) -> Option<DeflateParams> {
        self.core.driver.compression()
    }

    /// Bytes queued but not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.core.driver.pending_bytes()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.core.stream
    }

    /// The stream, mutably (reading or writing it directly corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.core.stream
    }

    /// Splits the connection into a reader and a writer for two tasks. They share the
    /// connection behind a lock: the reader keeps answering pings and closes (and fires
    /// timers) while the writer is busy or idle, and the writer's backpressure waits only
    /// on the writer.
    pub fn split(self) -> (ReadHalf<S, R>, WriteHalf<S, R>) {
        crate::split::split(self.core)
    }
}

/// Whole messages; the stream ends (`None`) when the connection is over, and
/// [`WebSocket::outcome`] says how. To forward into a `Sink` that wants `Result`s,
/// map with `Ok`.
impl<S: Transport<R>, R: Runtime> Stream for WebSocket<S, R> {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().core.poll_recv(cx)
    }
}

/// Messages in; `poll_ready` applies backpressure, `poll_close` sends a Close (1000)
/// unless one was sent, and flushes.
impl<S: Transport<R>, R: Runtime> Sink<Message> for WebSocket<S, R> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().core.start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().core.poll_close(cx)
    }
}
