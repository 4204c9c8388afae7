//! [`WebSocket`] and its split halves: a [`Driver`] over a `futures-io` stream.

use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use async_io::Timer;
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_sink::Sink;
use sockeye_engine::Settings;
use sockeye_engine::{Abnormal, Driver, Message, Outcome, Received};
use sockeye_proto::{
    CloseCode, Closed, Connection, DataKind, Event, Instant, Role, State, StdClock,
};

use crate::Error;

/// How long the last bytes may take to go out once the connection is over, when the
/// close timeout is off.
const DEFAULT_LINGER: Duration = Duration::from_secs(30);

/// Loop turns one poll may take before it yields to the executor.
const BUDGET: usize = 64;

/// What one receive step produced.
enum Got<T> {
    /// An item for the application; `replied` when the core queued an answer to it (the
    /// Pong to a Ping, the reply to a Close), which is written at once.
    Item {
        item: T,
        replied: bool,
    },
    End(Closed),
}

/// The wakers of every task waiting for write progress: with split halves both the
/// reader (flushing Pongs and Close replies) and the writer may wait on the same stream,
/// which keeps only one waker per direction; this set wakes them all.
#[derive(Default)]
struct WriteWakers {
    wakers: Mutex<Vec<Waker>>,
}

impl WriteWakers {
    fn register(&self, waker: &Waker) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
        if wakers.iter().any(|w| w.will_wake(waker)) {
            return;
        }
        if wakers.len() >= 8 {
            // Stale wakers of tasks that moved on: waking them is harmless.
            wakers.drain(..).for_each(Waker::wake);
        }
        wakers.push(waker.clone());
    }
}

impl WriteWakers {
    /// Write progress was made by the task of `current`: every other waiting task
    /// re-checks (the stream wakes only the task whose write would block, and what
    /// another task waited for may be done already). `current` stays registered only
    /// while it still waits.
    fn progress(&self, current: &Waker, still_waiting: bool) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        for waker in wakers {
            if waker.will_wake(current) {
                if still_waiting {
                    self.register(&waker);
                }
            } else {
                waker.wake();
            }
        }
    }
}

impl Wake for WriteWakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|e| e.into_inner()));
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// The connection state shared by [`WebSocket`] and, after a split, both halves.
///
/// Kept small, since an idle connection is this and its task: the timer, the
/// subprotocol and the end, and the split state are boxed, made only when needed.
pub(crate) struct Inner<S> {
    stream: S,
    driver: Driver,
    clock: StdClock,
    /// The latest clock reading, taken after each read and for each timer check, Ping
    /// and Close. Frames parsed out of buffered input are given this time (their bytes
    /// arrived by then, which is what the core's timers count from), and so are data
    /// sends, which start no timer: a burst of frames read at once costs one reading,
    /// not one per message. Reading only forward keeps the core's time monotonic.
    now: Instant,
    /// The one timer, made when first needed (an `async-io` timer is 56 bytes).
    alarm: Option<Box<Alarm>>,
    /// The subprotocol and the end, once there is either.
    rare: Option<Box<Rare>>,
    /// The write side was closed (or given up on).
    shut: bool,
    /// Set once split.
    split: Option<Box<Split>>,
}

/// What only some connections need, boxed so that the others do not pay for it.
#[derive(Default)]
struct Rare {
    /// The subprotocol agreed in the handshake.
    protocol: Option<String>,
    /// How the connection ended, once it has.
    end: Option<End>,
}

/// The timer and when it is set for (`None` once it fired: it must be set again).
struct Alarm {
    timer: Timer,
    at: Option<std::time::Instant>,
}

/// How the connection ended.
struct End {
    outcome: Outcome,
    /// When to stop trying to write the last bytes.
    linger_until: Instant,
}

/// What the halves of a split connection share besides the connection.
struct Split {
    wakers: Arc<WriteWakers>,
    /// The reader's waker while it waits, woken when the writer changes what it waits
    /// for (a Close arms the close timer; a failed write ends the connection).
    read_waker: Option<Waker>,
}

impl<S> Inner<S> {
    pub(crate) fn new(
        stream: S,
        driver: Driver,
        clock: StdClock,
        protocol: Option<String>,
    ) -> Self {
        let now = clock.now();
        Inner {
            stream,
            driver,
            clock,
            now,
            alarm: None,
            rare: protocol.map(|protocol| {
                Box::new(Rare {
                    protocol: Some(protocol),
                    end: None,
                })
            }),
            shut: false,
            split: None,
        }
    }

    /// The subprotocol agreed in the handshake.
    fn protocol(&self) -> Option<&str> {
        self.rare.as_ref()?.protocol.as_deref()
    }

    /// How the connection ended, once it has.
    fn outcome(&self) -> Option<&Outcome> {
        Some(&self.end()?.outcome)
    }

    fn end(&self) -> Option<&End> {
        self.rare.as_ref()?.end.as_ref()
    }

    /// Split: lets a waiting reader re-check its timers and the end.
    fn wake_reader(&mut self) {
        if let Some(waker) = self
            .split
            .as_mut()
            .and_then(|split| split.read_waker.take())
        {
            waker.wake();
        }
    }

    /// Reads the clock (see [`Inner::now`]).
    fn read_clock(&mut self) -> Instant {
        self.now = self.clock.now().max(self.now);
        self.now
    }

    /// Records the end (once).
    fn set_end(&mut self, outcome: Outcome, now: Instant) {
        if self.end().is_none() {
            let linger = self
                .driver
                .connection()
                .config()
                .close_timeout
                .unwrap_or(DEFAULT_LINGER);
            self.rare.get_or_insert_with(Box::default).end = Some(End {
                outcome,
                linger_until: now + linger,
            });
        }
    }

    /// The transport failed: the connection is over.
    fn fail(&mut self, error: &io::Error) {
        let outcome = self.driver.fail_io(error.kind());
        let now = self.read_clock();
        self.set_end(outcome, now);
        self.shut = true;
        self.wake_reader();
    }

    /// Whether the connection may still send.
    fn check_open(&self) -> Result<(), Error> {
        if self.end().is_some() {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    /// Polls the timer for `deadline`; `Ready` once it passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let at = self.clock.to_std(deadline);
        let alarm = match &mut self.alarm {
            Some(alarm) => {
                if alarm.at != Some(at) {
                    alarm.timer.set_at(at);
                    alarm.at = Some(at);
                }
                alarm
            }
            None => self.alarm.insert(Box::new(Alarm {
                timer: Timer::at(at),
                at: Some(at),
            })),
        };
        match Pin::new(&mut alarm.timer).poll(cx) {
            Poll::Ready(_) => {
                // A fired timer must be set again before it can fire again.
                alarm.at = None;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes everything queued (vectored), then closes the write side if the core asked
    /// for it, then flushes the stream. `Ready(Ok)` when nothing is left to write. A write
    /// error ends the connection.
    fn poll_write_queue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.shut {
            return Poll::Ready(Ok(()));
        }
        let result = match self.split.as_ref().map(|split| split.wakers.clone()) {
            Some(wakers) => {
                wakers.register(cx.waker());
                let merged = Waker::from(wakers.clone());
                let before = self.driver.pending_bytes();
                let result = self.write_loop(&mut Context::from_waker(&merged));
                if result.is_ready() || self.driver.pending_bytes() != before {
                    wakers.progress(cx.waker(), result.is_pending());
                }
                result
            }
            None => self.write_loop(cx),
        };
        match result {
            Poll::Ready(Err(error)) => {
                self.fail(&error);
                Poll::Ready(Err(error))
            }
            other => other,
        }
    }

    fn write_loop(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = loop {
            if self.driver.wants_write() {
                let mut slices = [IoSlice::new(&[]); 32];
                let n = self.driver.write_slices(&mut slices);
                match Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..n]) {
                    Poll::Ready(Ok(0)) => break Err(io::ErrorKind::WriteZero.into()),
                    Poll::Ready(Ok(written)) => self.driver.advance(written),
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                    Poll::Ready(Err(e)) => break Err(e),
                    Poll::Pending => return Poll::Pending,
                }
            } else if self.driver.wants_shutdown() {
                match Pin::new(&mut self.stream).poll_close(cx) {
                    Poll::Ready(result) => {
                        self.shut = true;
                        // The peer may already be gone; the end is decided by the core.
                        let _ = result;
                        break Ok(());
                    }
                    Poll::Pending => return Poll::Pending,
                }
            } else {
                match Pin::new(&mut self.stream).poll_flush(cx) {
                    Poll::Ready(result) => break result,
                    Poll::Pending => return Poll::Pending,
                }
            }
        };
        Poll::Ready(result)
    }

    /// After the end: writes what is left (the Close reply, the Close of a failed
    /// connection), closes the write side, within the linger time.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shut {
            return Poll::Ready(());
        }
        match self.poll_write_queue(cx) {
            // Everything is out: close our side (the server shuts TCP down first; a
            // client got the server's FIN already, or gave up waiting for it).
            Poll::Ready(Ok(())) if !self.shut => {
                if Pin::new(&mut self.stream).poll_close(cx).is_ready() {
                    self.shut = true;
                    return Poll::Ready(());
                }
            }
            // Closed as the core asked, or failed: either way, done.
            Poll::Ready(_) => return Poll::Ready(()),
            Poll::Pending => {}
        }
        let now = self.read_clock();
        let until = self.end().map_or(now, |end| end.linger_until);
        if until <= now || self.poll_timer(cx, until).is_ready() {
            // The peer does not take the last bytes: give up on them.
            self.shut = true;
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// The receive loop shared by [`recv`](WebSocket::recv) and
    /// [`recv_with`](WebSocket::recv_with): `step` takes the next item from buffered
    /// input. Cancel safe: all state lives in `self`, none in the caller's future.
    fn poll_recv<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut step: impl FnMut(
            &mut Driver,
            Instant,
        ) -> Result<Option<Got<T>>, sockeye_proto::ProtocolError>,
    ) -> Poll<Option<T>> {
        let mut eof = false;
        for _ in 0..BUDGET {
            if self.end().is_some() {
                if self.poll_finish(cx).is_pending() {
                    return Poll::Pending;
                }
                return Poll::Ready(None);
            }
            match step(&mut self.driver, self.now) {
                Ok(Some(Got::Item { item, replied })) => {
                    // Pongs and Close replies go out even when the application only reads.
                    // Other queued frames wait for the flush before the next read, so a
                    // batch of echoes leaves in one write.
                    if replied {
                        let _ = self.poll_write_queue(cx);
                    }
                    return Poll::Ready(Some(item));
                }
                Ok(Some(Got::End(closed))) => {
                    let outcome = Outcome::from_closed(closed, self.driver.connection());
                    let now = self.read_clock();
                    self.set_end(outcome, now);
                    continue;
                }
                Err(error) => {
                    // Our Close with the error's code is queued: it goes out before the end.
                    let now = self.read_clock();
                    self.set_end(Outcome::Abnormal(Abnormal::Protocol(error)), now);
                    continue;
                }
                Ok(None) if eof => {
                    // End of stream that the core did not turn into an end (it always
                    // does; this keeps the loop finite regardless).
                    let outcome = self
                        .driver
                        .outcome()
                        .unwrap_or(Outcome::Abnormal(Abnormal::Eof));
                    let now = self.read_clock();
                    self.set_end(outcome, now);
                    continue;
                }
                Ok(None) => {}
            }
            if let Some(deadline) = self.driver.poll_timeout() {
                if deadline <= self.read_clock() || self.poll_timer(cx, deadline).is_ready() {
                    // The timer says the deadline passed, even if the clock rounds below it.
                    let now = self.read_clock().max(deadline);
                    self.now = now;
                    if let Some(closed) = self.driver.handle_timeout(now) {
                        self.set_end(Outcome::from_closed(closed, self.driver.connection()), now);
                    }
                    continue;
                }
            }
            let stream = &mut self.stream;
            match self
                .driver
                .read_with(|buf| Pin::new(stream).poll_read(cx, buf))
            {
                Poll::Ready(Ok(n)) => {
                    eof |= n == 0;
                    self.read_clock();
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(error)) => self.fail(&error),
                Poll::Pending => {
                    // Write out what is queued only once the read would block, so the
                    // replies to a burst of input leave in one vectored write.
                    if let Poll::Ready(Err(_)) = self.poll_write_queue(cx) {
                        // The connection failed; the outcome says how.
                        continue;
                    }
                    if let Some(split) = &mut self.split {
                        split.read_waker = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        }
        // Plenty of input: write out the replies so far, let other tasks run, then carry on.
        let _ = self.poll_write_queue(cx);
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.poll_recv(cx, |driver, now| {
            Ok(driver.poll_message(now)?.map(|received| match received {
                Received::Message(message) => Got::Item {
                    replied: matches!(message, Message::Ping(_) | Message::Close(_)),
                    item: message,
                },
                Received::Closed(closed) => Got::End(closed),
            }))
        })
    }

    fn poll_event<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: &mut Option<impl FnOnce(Event<'_>) -> R>,
    ) -> Poll<Option<R>> {
        self.poll_recv(cx, |driver, now| {
            driver.poll_event_with(now, |event| match event {
                Event::Closed(closed) => Got::End(closed),
                event => match f.take() {
                    Some(f) => Got::Item {
                        replied: matches!(event, Event::Ping(_) | Event::Close(_)),
                        item: f(event),
                    },
                    // Unreachable: one item ends the poll.
                    None => Got::End(Closed::Abnormal),
                },
            })
        })
    }

    /// Backpressure: `Ready` once the send queue has room.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.check_open()?;
        while !self.driver.is_writable() {
            match self.poll_write_queue(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(error)) => return Poll::Ready(Err(Error::Io(error))),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, message: Message) -> Result<(), Error> {
        self.check_open()?;
        // Only a Ping or a Close starts a timer: a data message needs no clock reading.
        let now = if message.is_data() {
            self.now
        } else {
            self.read_clock()
        };
        self.driver.send(message, now).map_err(Error::from)
    }

    fn start_send_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        self.check_open()?;
        self.driver
            .send_frame(kind, fin, payload)
            .map_err(Error::from)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.end().is_some() && !self.driver.wants_write() {
            return Poll::Ready(Ok(()));
        }
        self.poll_write_queue(cx).map_err(Error::Io)
    }

    /// Queues our Close.
    fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.check_open()?;
        let now = self.read_clock();
        self.driver.close(code, reason, now).map_err(Error::from)?;
        // The close timer is armed: a reader waiting for input must wait for it too.
        self.wake_reader();
        Ok(())
    }

    /// `Sink::poll_close`: a Close (1000) unless closing already, then flush.
    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.end().is_none() && self.driver.connection().state() == State::Open {
            self.start_close(CloseCode::NORMAL, "")?;
        }
        self.poll_flush(cx)
    }
}

/// An open WebSocket connection over a `futures-io` stream `S` (`AsyncRead + AsyncWrite
/// + Unpin`): a smol / async-net / async-io TCP stream, a TLS stream, anything.
///
/// - **Receiving**: [`recv`](Self::recv) returns whole [`Message`]s (text, binary, ping,
///   pong, and the peer's close), then `None` once the connection is over; how it ended
///   is then [`outcome`](Self::outcome). [`recv_with`](Self::recv_with) hands out the
///   raw chunks of large messages instead, without buffering them whole. Receiving also
///   drives the connection: it writes Pongs and close replies, fires keepalive and close
///   timers (`async-io` timers from the core's `poll_timeout`), and shuts the transport
///   down at the end, so keep calling it.
/// - **Sending**: [`send`](Self::send) queues a message and waits until it is written;
///   [`feed`](Self::feed) only queues it (waiting only while the send queue is over its
///   bound: backpressure), and the next `recv` or [`flush`](Self::flush) writes it.
///   [`feed_frame`](Self::feed_frame) sends a large message in fragments.
///   [`close`](Self::close) starts the close handshake.
/// - [`Stream`] of `Message`s and [`Sink`] of `Message`s; [`split`](Self::split) into
///   halves for two tasks.
///
/// # Cancel safety
///
/// `recv`, `recv_with` and `feed` are cancel-safe: every bit of state (buffered input, a
/// half-assembled message, timers) lives in the `WebSocket`, not in the future, so
/// dropping one of these futures (the losing side of `futures_lite::future::race` or
/// `select!`) loses nothing, and the next call carries on. `feed` either queued the
/// message or did not. `send`, `flush` and `close` may be dropped too; what they queued
/// stays queued and goes out with the next write.
pub struct WebSocket<S> {
    inner: Inner<S>,
}

impl<S> fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("driver", &self.inner.driver)
            .field("outcome", &self.inner.outcome())
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    pub(crate) fn from_inner(inner: Inner<S>) -> Self {
        WebSocket { inner }
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
        let settings = settings.into();
        let seed = match role {
            Role::Client => crate::random()?,
            Role::Server => [0; 32],
        };
        let clock = StdClock::new();
        let connection = Connection::new(role, settings.protocol, seed, clock.now());
        let mut driver = Driver::new(connection, settings.buffers);
        driver.push_bytes(early);
        Ok(WebSocket::from_inner(Inner::new(
            stream, driver, clock, None,
        )))
    }

    /// The next message, or `None` once the connection is over (then see
    /// [`outcome`](Self::outcome)). The peer's Close arrives as [`Message::Close`]: the
    /// connection is half-closed, our reply is on its way, and `None` follows once the
    /// close handshake completed. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Message> {
        poll_fn(|cx| self.inner.poll_message(cx)).await
    }

    /// The next raw event, passed to `f` while it borrows the read buffer: chunks of text
    /// (always whole characters) and binary data with their
    /// [`Boundary`](sockeye_proto::Boundary), pings, pongs and the peer's close. A message
    /// larger than the read buffer comes in several chunks and is never held whole.
    /// Returns `None` (without calling `f`) once the connection is over. Cancel-safe. Do
    /// not switch between `recv` and `recv_with` in the middle of a message.
    ///
    /// ```no_run
    /// # async fn run(mut ws: sockeye_smol::WebSocket<smol::net::TcpStream>) {
    /// use sockeye_smol::Event;
    ///
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
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Option<R> {
        let mut f = Some(f);
        poll_fn(|cx| self.inner.poll_event(cx, &mut f)).await
    }

    /// Queues `message` and waits until everything queued is written. Text and binary
    /// messages are written without a copy when large (a client masks them in place).
    /// [`Message::Ping`], [`Message::Pong`] and [`Message::Close`] send those frames.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues `message`, waiting first while the send queue is over
    /// [`DriverConfig::max_pending_bytes`](crate::DriverConfig::max_pending_bytes)
    /// (backpressure). The next [`recv`](Self::recv) or [`flush`](Self::flush) writes it.
    /// Cancel-safe: the message is queued when this returns, not before.
    pub fn feed(&mut self, message: Message) -> impl Future<Output = Result<(), Error>> + '_ {
        // A `poll_fn` rather than an `async fn`, whose future would keep the message
        // twice (96 bytes instead of 40, in the task of every connection that echoes).
        let mut message = Some(message);
        poll_fn(move |cx| {
            ready!(self.inner.poll_ready(cx))?;
            // `None` only if polled again after it returned.
            Poll::Ready(message.take().map_or(Ok(()), |m| self.inner.start_send(m)))
        })
    }

    /// Sends one frame of a message in fragments (the streaming send): `fin == false`
    /// continues the message with the next call. Waits like [`feed`](Self::feed).
    pub async fn feed_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_ready(cx)).await?;
        self.inner.start_send_frame(kind, fin, payload)
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_flush(cx)).await
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes) and writes
    /// our Close. Keep calling [`recv`](Self::recv) until `None` to see the peer's answer:
    /// the outcome is clean once it arrived, or timed out after
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.inner.start_close(code, reason)?;
        self.flush().await
    }

    /// How the connection ended, once `recv` returned `None` (or a send failed).
    pub fn outcome(&self) -> Option<&Outcome> {
        self.inner.outcome()
    }

    /// Where the close handshake stands.
    pub fn state(&self) -> State {
        self.inner.driver.connection().state()
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.inner.protocol()
    }

    /// Bytes queued but not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.inner.driver.pending_bytes()
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.stream
    }

    /// The stream, mutably (reading or writing it directly corrupts the connection).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner.stream
    }

    /// Splits the connection into a reader and a writer for two tasks. They share the
    /// connection behind a lock: the reader keeps answering pings and closes (and fires
    /// timers) while the writer is busy or idle, and both are woken by write progress.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let mut inner = self.inner;
        inner.split = Some(Box::new(Split {
            wakers: Arc::new(WriteWakers::default()),
            read_waker: None,
        }));
        let shared = Arc::new(Mutex::new(inner));
        (
            ReadHalf {
                shared: shared.clone(),
            },
            WriteHalf { shared },
        )
    }
}

/// Whole messages; the stream ends (`None`) when the connection is over, and
/// [`WebSocket::outcome`] says how.
impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.get_mut().inner.poll_message(cx)
    }
}

/// Messages in; `poll_ready` applies backpressure, `poll_close` sends a Close (1000)
/// unless one was sent, and flushes.
impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocket<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.get_mut().inner.start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_close(cx)
    }
}

fn lock<S>(shared: &Mutex<Inner<S>>) -> MutexGuard<'_, Inner<S>> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The receiving half of a split [`WebSocket`]: receives messages, and keeps answering
/// Pings, replying to Closes and running the timers.
pub struct ReadHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

/// The sending half of a split [`WebSocket`].
pub struct WriteHalf<S> {
    shared: Arc<Mutex<Inner<S>>>,
}

impl<S> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadHalf").finish_non_exhaustive()
    }
}

impl<S> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// As [`WebSocket::recv`]. Cancel-safe.
    pub async fn recv(&mut self) -> Option<Message> {
        poll_fn(|cx| lock(&self.shared).poll_message(cx)).await
    }

    /// As [`WebSocket::recv_with`]. Cancel-safe.
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Option<R> {
        let mut f = Some(f);
        poll_fn(|cx| lock(&self.shared).poll_event(cx, &mut f)).await
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        lock(&self.shared).outcome().cloned()
    }

    /// Joins the halves again (`Err` gives them back if they are not from the same
    /// connection).
    pub fn reunite(
        self,
        writer: WriteHalf<S>,
    ) -> Result<WebSocket<S>, (ReadHalf<S>, WriteHalf<S>)> {
        if !Arc::ptr_eq(&self.shared, &writer.shared) {
            return Err((self, writer));
        }
        drop(writer);
        match Arc::try_unwrap(self.shared) {
            Ok(mutex) => {
                let mut inner = mutex.into_inner().unwrap_or_else(|e| e.into_inner());
                inner.split = None;
                Ok(WebSocket { inner })
            }
            Err(shared) => {
                // Both halves were given, so this is the last reference.
                let inner = Arc::clone(&shared);
                Err((ReadHalf { shared }, WriteHalf { shared: inner }))
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        lock(&self.shared).poll_message(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// As [`WebSocket::send`].
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// As [`WebSocket::feed`]. Cancel-safe.
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_ready(cx)).await?;
        lock(&self.shared).start_send(message)
    }

    /// As [`WebSocket::feed_frame`].
    pub async fn feed_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_ready(cx)).await?;
        lock(&self.shared).start_send_frame(kind, fin, payload)
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_flush(cx)).await
    }

    /// As [`WebSocket::close`]: the reader sees the peer's answer and the end.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        lock(&self.shared).start_close(code, reason)?;
        self.flush().await
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        lock(&self.shared).outcome().cloned()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_ready(cx)
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        lock(&self.shared).start_send(message)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        lock(&self.shared).poll_close(cx)
    }
}
