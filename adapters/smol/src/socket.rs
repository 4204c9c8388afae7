//! [`WebSocket`] and its split halves: a [`Driver`] over a `futures-io` stream.

use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use async_io::Timer;
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_sink::Sink;
use sockeye_proto::driver::{Abnormal, Driver, Message, Outcome, Received};
use sockeye_proto::{CloseCode, Closed, DataKind, Event, Instant, SendError, State, StdClock};

use crate::Error;

/// How long the last bytes may take to go out once the connection is over, when the
/// close timeout is off.
const DEFAULT_LINGER: Duration = Duration::from_secs(30);

/// Loop turns one poll may take before it yields to the executor.
const BUDGET: usize = 64;

/// What one receive step produced.
enum Got<T> {
    Item(T),
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
pub(crate) struct Inner<S> {
    stream: S,
    driver: Driver,
    clock: StdClock,
    timer: Option<Timer>,
    timer_at: Option<std::time::Instant>,
    protocol: Option<String>,
    /// How the connection ended, once it has.
    outcome: Option<Outcome>,
    /// An error for the receive side to report once the last bytes are out.
    pending_error: Option<Error>,
    /// The write side was closed (or given up on).
    shut: bool,
    /// When to stop trying to write the last bytes after the end.
    linger_until: Option<Instant>,
    /// Set once split.
    wakers: Option<Arc<WriteWakers>>,
}

impl<S> Inner<S> {
    pub(crate) fn new(
        stream: S,
        driver: Driver,
        clock: StdClock,
        protocol: Option<String>,
    ) -> Self {
        Inner {
            stream,
            driver,
            clock,
            timer: None,
            timer_at: None,
            protocol,
            outcome: None,
            pending_error: None,
            shut: false,
            linger_until: None,
            wakers: None,
        }
    }

    /// Records the end (once).
    fn end(&mut self, outcome: Outcome, now: Instant) {
        if self.outcome.is_none() {
            let linger = self
                .driver
                .connection()
                .config()
                .close_timeout
                .unwrap_or(DEFAULT_LINGER);
            self.linger_until = Some(now + linger);
            self.outcome = Some(outcome);
        }
    }

    /// The transport failed: the connection is over.
    fn fail(&mut self, error: &io::Error) {
        let outcome = self.driver.fail_io(error.kind());
        let now = self.clock.now();
        self.end(outcome, now);
        self.shut = true;
    }

    /// Whether the connection may still send.
    fn check_open(&self) -> Result<(), Error> {
        if self.outcome.is_some() {
            return Err(Error::Closed);
        }
        Ok(())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    /// Polls the timer for `deadline`; `Ready` once it passed.
    fn poll_timer(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let at = self.clock.to_std(deadline);
        match &mut self.timer {
            Some(timer) if self.timer_at == Some(at) => {}
            Some(timer) => timer.set_at(at),
            None => self.timer = Some(Timer::at(at)),
        }
        self.timer_at = Some(at);
        let timer = self.timer.as_mut().expect("timer armed above");
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => {
                // A fired timer must be set again before it can fire again.
                self.timer_at = None;
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
        let result = match self.wakers.clone() {
            Some(wakers) => {
                wakers.register(cx.waker());
                let merged = Waker::from(wakers);
                self.write_loop(&mut Context::from_waker(&merged))
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
        let now = self.clock.now();
        let until = self.linger_until.unwrap_or(now);
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
    ) -> Poll<Option<Result<T, Error>>> {
        let mut eof = false;
        for _ in 0..BUDGET {
            if self.outcome.is_some() {
                if self.poll_finish(cx).is_pending() {
                    return Poll::Pending;
                }
                return Poll::Ready(self.pending_error.take().map(Err));
            }
            let now = self.clock.now();
            match step(&mut self.driver, now) {
                Ok(Some(Got::Item(item))) => {
                    // Pongs and Close replies go out even when the application only reads.
                    let _ = self.poll_write_queue(cx);
                    return Poll::Ready(Some(Ok(item)));
                }
                Ok(Some(Got::End(closed))) => {
                    let outcome = Outcome::from_closed(closed, self.driver.connection());
                    self.end(outcome, now);
                    continue;
                }
                Err(error) => {
                    self.end(Outcome::Abnormal(Abnormal::Protocol(error)), now);
                    self.pending_error = Some(Error::Protocol(error));
                    continue;
                }
                Ok(None) if eof => {
                    // End of stream that the core did not turn into an end (it always
                    // does; this keeps the loop finite regardless).
                    let outcome = self
                        .driver
                        .outcome()
                        .unwrap_or(Outcome::Abnormal(Abnormal::Eof));
                    self.end(outcome, now);
                    continue;
                }
                Ok(None) => {}
            }
            if let Poll::Ready(Err(error)) = self.poll_write_queue(cx) {
                self.pending_error = Some(Error::Io(error));
                continue;
            }
            if let Some(deadline) = self.driver.poll_timeout() {
                if deadline <= now || self.poll_timer(cx, deadline).is_ready() {
                    let now = self.clock.now().max(deadline);
                    if let Some(closed) = self.driver.handle_timeout(now) {
                        self.end(Outcome::from_closed(closed, self.driver.connection()), now);
                    }
                    continue;
                }
            }
            let stream = &mut self.stream;
            match self
                .driver
                .read_with(|buf| Pin::new(stream).poll_read(cx, buf))
            {
                Poll::Ready(Ok(0)) => eof = true,
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(error)) => {
                    self.fail(&error);
                    self.pending_error = Some(Error::Io(error));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        // Plenty of input: let other tasks run, then carry on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        self.poll_recv(cx, |driver, now| {
            Ok(driver.poll_message(now)?.map(|received| match received {
                Received::Message(message) => Got::Item(message),
                Received::Closed(closed) => Got::End(closed),
            }))
        })
    }

    fn poll_event<R>(
        &mut self,
        cx: &mut Context<'_>,
        f: &mut Option<impl FnOnce(Event<'_>) -> R>,
    ) -> Poll<Option<Result<R, Error>>> {
        self.poll_recv(cx, |driver, now| {
            driver.poll_event_with(now, |event| match event {
                Event::Closed(closed) => Got::End(closed),
                event => match f.take() {
                    Some(f) => Got::Item(f(event)),
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
        let now = self.clock.now();
        self.driver.send(message, now).map_err(Error::Send)
    }

    fn send_fragment(&mut self, kind: DataKind, fin: bool, payload: Vec<u8>) -> Result<(), Error> {
        self.check_open()?;
        self.driver
            .send_frame(kind, fin, payload)
            .map_err(Error::Send)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.outcome.is_some() && !self.driver.wants_write() {
            return Poll::Ready(Ok(()));
        }
        self.poll_write_queue(cx).map_err(Error::Io)
    }

    /// Queues our Close (unless the close handshake already started).
    fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.outcome.is_some() || self.driver.connection().state() != State::Open {
            return Ok(());
        }
        let now = self.clock.now();
        match self.driver.close(code, reason, now) {
            Ok(()) | Err(SendError::Closed) => Ok(()),
            Err(error) => Err(Error::Send(error)),
        }
    }
}

/// A WebSocket connection over a `futures-io` stream (`AsyncRead + AsyncWrite + Unpin`):
/// a TCP stream from smol / async-net / async-io, a TLS stream, anything.
///
/// Receive with [`recv`](Self::recv) (whole [`Message`]s) or
/// [`recv_with`](Self::recv_with) (chunks of a large message, never whole in memory);
/// send with [`send`](Self::send); end with [`close`](Self::close). It is also a
/// [`Stream`] of messages and a [`Sink`] of messages, and [`split`](Self::split)s into a
/// reader and a writer for two tasks.
///
/// Everything runs when the connection is polled: Pongs and Close replies are written
/// while the application receives, and timers (keepalive, close handshake) fire while it
/// waits in [`recv`](Self::recv). An application that stops receiving stops those too.
///
/// **Cancel safety**: [`recv`](Self::recv) and [`recv_with`](Self::recv_with) are cancel
/// safe (use them in `select`/`race`): a dropped receive loses nothing, since read bytes
/// and half-assembled messages live in the connection, not in the future. A dropped
/// [`send`](Self::send) either never queued the message (it was waiting for room) or
/// queued it whole: it goes out with the next send, flush, receive or close. A dropped
/// [`close`](Self::close) leaves the Close queued; receive to the end to finish it.
pub struct WebSocket<S> {
    inner: Inner<S>,
}

impl<S> fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("driver", &self.inner.driver)
            .field("outcome", &self.inner.outcome)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    pub(crate) fn from_inner(inner: Inner<S>) -> Self {
        WebSocket { inner }
    }

    /// The next message: `Some(Ok(message))`, `Some(Err(error))` once when the
    /// connection failed (a protocol error: our Close with its code was sent; an I/O
    /// error), and `None` once the connection is over (see [`outcome`](Self::outcome)).
    /// A Ping is answered automatically and still shown; [`Message::Close`] is the peer's
    /// Close (our reply is on its way), after which `None` follows. Cancel safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| self.inner.poll_message(cx)).await
    }

    /// The streaming receive: passes the next raw [`Event`] (a chunk of a text or binary
    /// message with its [`Boundary`](sockeye_proto::Boundary), a Ping, Pong or the peer's
    /// Close) to `f`, borrowed from the read buffer, and returns what `f` returns. A
    /// message larger than the read buffer comes in several chunks and is never whole in
    /// memory. `None` once the connection is over. Do not mix with
    /// [`recv`](Self::recv) in the middle of a message. Cancel safe.
    pub async fn recv_with<R>(
        &mut self,
        f: impl FnOnce(Event<'_>) -> R,
    ) -> Option<Result<R, Error>> {
        let mut f = Some(f);
        poll_fn(|cx| self.inner.poll_event(cx, &mut f)).await
    }

    /// Sends a message: waits while the send queue is over its limit (backpressure),
    /// queues the message, and writes until the queue is empty.
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_ready(cx)).await?;
        self.inner.start_send(message)?;
        self.flush().await
    }

    /// Sends one frame of a message in fragments (`fin == false` continues it), for
    /// sending a large message without holding it whole.
    pub async fn send_fragment(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_ready(cx)).await?;
        self.inner.send_fragment(kind, fin, payload)?;
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.inner.poll_flush(cx)).await
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes) and waits
    /// for the end, discarding messages that still arrive; returns how the connection
    /// ended. If the peer does not answer, the close timeout ends it
    /// ([`Outcome::TimedOut`]). If the connection is already closing or over, just waits.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<Outcome, Error> {
        self.inner.start_close(code, reason)?;
        while self.recv().await.is_some() {}
        Ok(self
            .inner
            .outcome
            .clone()
            .unwrap_or(Outcome::Abnormal(Abnormal::Eof)))
    }

    /// The subprotocol agreed on in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.inner.protocol.as_deref()
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.inner.outcome.as_ref()
    }

    /// Bytes queued but not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.inner.driver.pending_bytes()
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner.stream
    }

    /// Splits into a reader and a writer, for two tasks. The reader still writes Pongs
    /// and Close replies, and runs the timers.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let mut inner = self.inner;
        inner.wakers = Some(Arc::new(WriteWakers::default()));
        let shared = Arc::new(Mutex::new(inner));
        (
            ReadHalf {
                shared: shared.clone(),
            },
            WriteHalf { shared },
        )
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocket<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_message(cx)
    }
}

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

    /// Queues a Close (1000) and writes it; the peer's answer is read by the stream side.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let inner = &mut self.get_mut().inner;
        inner.start_close(CloseCode::NORMAL, "")?;
        inner.poll_flush(cx)
    }
}

fn lock<S>(shared: &Mutex<Inner<S>>) -> MutexGuard<'_, Inner<S>> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The receiving half of a split [`WebSocket`]: receives messages, answers Pings, sends
/// Close replies and runs the timers.
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
    /// As [`WebSocket::recv`]. Cancel safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        poll_fn(|cx| lock(&self.shared).poll_message(cx)).await
    }

    /// As [`WebSocket::recv_with`]. Cancel safe.
    pub async fn recv_with<R>(
        &mut self,
        f: impl FnOnce(Event<'_>) -> R,
    ) -> Option<Result<R, Error>> {
        let mut f = Some(f);
        poll_fn(|cx| lock(&self.shared).poll_event(cx, &mut f)).await
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        lock(&self.shared).outcome.clone()
    }

    /// Joins the halves again (`Err` gives them back if they are not from the same
    /// connection).
    pub fn reunite(self, write: WriteHalf<S>) -> Result<WebSocket<S>, (ReadHalf<S>, WriteHalf<S>)> {
        if !Arc::ptr_eq(&self.shared, &write.shared) {
            return Err((self, write));
        }
        drop(write);
        match Arc::try_unwrap(self.shared) {
            Ok(mutex) => {
                let mut inner = mutex.into_inner().unwrap_or_else(|e| e.into_inner());
                inner.wakers = None;
                Ok(WebSocket { inner })
            }
            Err(_) => unreachable!("both halves were given"),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        lock(&self.shared).poll_message(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// As [`WebSocket::send`].
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_ready(cx)).await?;
        lock(&self.shared).start_send(message)?;
        self.flush().await
    }

    /// As [`WebSocket::send_fragment`].
    pub async fn send_fragment(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_ready(cx)).await?;
        lock(&self.shared).send_fragment(kind, fin, payload)?;
        self.flush().await
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| lock(&self.shared).poll_flush(cx)).await
    }

    /// Sends a Close with `code` and `reason` and writes it; the reader sees the end
    /// when the peer answers (or the close timeout fires).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        lock(&self.shared).start_close(code, reason)?;
        self.flush().await
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        lock(&self.shared).outcome.clone()
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
        let mut inner = lock(&self.shared);
        inner.start_close(CloseCode::NORMAL, "")?;
        inner.poll_flush(cx)
    }
}
