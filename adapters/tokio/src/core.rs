//! The engine behind [`WebSocket`](crate::WebSocket) and its split halves: a [`Driver`]
//! plus the stream, a clock and one timer, driven by `poll_*` methods that keep every
//! bit of state in the struct (so the futures built on them are cancel-safe).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use sockeye_engine::Settings;
use sockeye_engine::{Abnormal, Driver, Message, Outcome, Received};
use sockeye_proto::{CloseCode, Connection, DataKind, Event, Instant, ProtocolError, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::Error;

/// How long the end may take to flush our last frames when no close timeout is set.
const DEFAULT_LINGER: Duration = Duration::from_secs(30);

/// Most slices handed to one vectored write.
const MAX_SLICES: usize = 64;

/// Core `Instant`s measured from a tokio instant (so tokio's paused clock drives the core).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.epoch);
        Instant::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX))
    }

    fn to_tokio(self, at: Instant) -> tokio::time::Instant {
        self.epoch + Duration::from_nanos(at.as_nanos())
    }
}

/// Reads once from `stream` into `buf`: the closure given to `Driver::read_with`.
pub(crate) fn poll_read_into<S: AsyncRead + Unpin>(
    stream: &mut S,
    cx: &mut Context<'_>,
    buf: &mut [u8],
) -> Poll<io::Result<usize>> {
    let mut read = ReadBuf::new(buf);
    ready!(Pin::new(stream).poll_read(cx, &mut read))?;
    Poll::Ready(Ok(read.filled().len()))
}

/// One connection after the handshake.
///
/// Kept small, since an idle connection is this and its task: what only some
/// connections need is boxed ([`Rare`]), and the timer is made only when first needed.
#[derive(Debug)]
pub(crate) struct Core<S> {
    pub(crate) stream: S,
    pub(crate) driver: Driver,
    clock: Clock,
    /// The latest clock reading, taken after each read and for each timer check, Ping
    /// and Close. Frames parsed out of buffered input are given this time (their bytes
    /// arrived by then, which is what the core's timers count from), and so are data
    /// sends, which start no timer: a burst of frames read at once costs one reading,
    /// not one per message (those were a tenth of a small echo's CPU). Reading only
    /// forward keeps the core's time monotonic.
    now: Instant,
    /// The one timer: the core's next deadline, or the linger deadline after the end.
    /// Made only when first needed, so a connection without timers holds none.
    sleep: Option<Pin<Box<Sleep>>>,
    /// The subprotocol and the end, once there is either.
    rare: Option<Box<Rare>>,
    /// Nothing more can be written (the transport failed or was shut down).
    write_closed: bool,
    /// The stream reached its end (a read returned 0).
    eof: bool,
    /// The end was reached and the last frames were flushed (or given up on).
    finished: bool,
}

/// What only some connections need, boxed so that the others do not pay for it.
#[derive(Debug, Default)]
struct Rare {
    /// The subprotocol agreed in the handshake.
    protocol: Option<String>,
    /// The end, once known (the reader returns `None` after it).
    outcome: Option<Outcome>,
    /// When flushing after the end gives up (set when it first waits).
    linger: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Core<S> {
    pub(crate) fn new(
        stream: S,
        role: Role,
        settings: &Settings,
        protocol: Option<String>,
        early: &[u8],
    ) -> Result<Self, Error> {
        let clock = Clock::new();
        let seed = match role {
            Role::Client => crate::random()?,
            Role::Server => [0; 32],
        };
        let now = clock.now();
        let connection = Connection::new(role, settings.protocol, seed, now);
        let mut driver = Driver::new(connection, settings.buffers);
        driver.push_bytes(early);
        Ok(Core {
            stream,
            driver,
            clock,
            now,
            sleep: None,
            rare: protocol.map(|protocol| {
                Box::new(Rare {
                    protocol: Some(protocol),
                    ..Rare::default()
                })
            }),
            write_closed: false,
            eof: false,
            finished: false,
        })
    }

    /// Reads the clock (see [`Core::now`]).
    fn read_clock(&mut self) -> Instant {
        self.now = self.clock.now().max(self.now);
        self.now
    }

    /// The subprotocol agreed in the handshake.
    pub(crate) fn protocol(&self) -> Option<&str> {
        self.rare.as_ref()?.protocol.as_deref()
    }

    /// How the connection ended, once it has.
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.rare.as_ref()?.outcome.as_ref()
    }

    fn fail(&mut self, error: &io::Error) {
        let outcome = self.driver.fail_io(error.kind());
        self.end(outcome);
        self.write_closed = true;
    }

    /// Records the end (the first one counts).
    fn end(&mut self, outcome: Outcome) {
        self.rare
            .get_or_insert_with(Box::default)
            .outcome
            .get_or_insert(outcome);
    }

    /// Sleeps until `deadline` with the one stored timer.
    fn poll_sleep(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let at = self.clock.to_tokio(deadline);
        match &mut self.sleep {
            Some(sleep) => {
                if sleep.deadline() != at {
                    sleep.as_mut().reset(at);
                }
            }
            None => self.sleep = Some(Box::pin(tokio::time::sleep_until(at))),
        }
        match &mut self.sleep {
            Some(sleep) => sleep.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }

    /// Writes queued bytes until the queue is empty (then flushes the stream, and shuts
    /// it down when the core asked for that). `Ready(Err)` has already ended the
    /// connection.
    pub(crate) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.write_closed {
            return Poll::Ready(Ok(()));
        }
        while self.driver.wants_write() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = self.driver.write_slices(&mut slices);
            let written = match Pin::new(&mut self.stream).poll_write_vectored(cx, &slices[..count])
            {
                Poll::Ready(Ok(0)) => {
                    let error = io::Error::from(io::ErrorKind::WriteZero);
                    self.fail(&error);
                    return Poll::Ready(Err(error));
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(error)) => {
                    self.fail(&error);
                    return Poll::Ready(Err(error));
                }
                Poll::Pending => return Poll::Pending,
            };
            self.driver.advance(written);
        }
        if let Err(error) = ready!(Pin::new(&mut self.stream).poll_flush(cx)) {
            self.fail(&error);
            return Poll::Ready(Err(error));
        }
        if self.driver.wants_shutdown() {
            // An error here (the peer already reset) changes nothing: we are done writing.
            let _ = ready!(Pin::new(&mut self.stream).poll_shutdown(cx));
            self.write_closed = true;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes what is queued without waiting (pongs, close replies); errors end the
    /// connection and are reported through the outcome.
    fn flush_best_effort(&mut self, cx: &mut Context<'_>) {
        let _ = self.poll_write_out(cx);
    }

    /// One round of reader I/O: fire timers, read, and write out what is queued once the
    /// read would block. `Ready` when something may have changed (input, end of stream,
    /// an error, a timer), `Pending` when blocked.
    ///
    /// Writing only before blocking (not before every read) lets the replies to a whole
    /// burst of input leave in one vectored write.
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if let Some(deadline) = self.driver.poll_timeout() {
            let now = self.read_clock();
            let fired = deadline <= now || self.poll_sleep(cx, deadline).is_ready();
            if fired {
                // The timer says the deadline passed, even if the clock rounds below it.
                self.now = now.max(deadline);
                if let Some(closed) = self.driver.handle_timeout(self.now) {
                    let outcome = Outcome::from_closed(closed, self.driver.connection());
                    self.end(outcome);
                }
                return Poll::Ready(());
            }
        }
        if self.driver.is_finished() {
            return Poll::Ready(());
        }
        let stream = &mut self.stream;
        match self.driver.read_with(|buf| poll_read_into(stream, cx, buf)) {
            Poll::Ready(Ok(n)) => {
                self.eof |= n == 0;
                self.read_clock();
                Poll::Ready(())
            }
            Poll::Ready(Err(error)) => {
                self.fail(&error);
                Poll::Ready(())
            }
            Poll::Pending => match self.poll_write_out(cx) {
                Poll::Ready(Err(_)) => Poll::Ready(()),
                _ => Poll::Pending,
            },
        }
    }

    /// After the end: flush our last frames and shut down, giving up after the linger
    /// time. Ready when the connection is completely over.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while !self.finished {
            match self.poll_write_out(cx) {
                // Written (and shut down), or failed: either way over.
                Poll::Ready(_) => self.finished = true,
                Poll::Pending => {
                    let linger = self.linger_deadline();
                    ready!(self.poll_sleep(cx, linger));
                    self.finished = true;
                }
            }
        }
        Poll::Ready(())
    }

    /// When flushing after the end gives up: the close timeout (30 s without one) after
    /// it first had to wait.
    fn linger_deadline(&mut self) -> Instant {
        let (clock, driver) = (&self.clock, &self.driver);
        let linger = || {
            let linger_for = driver
                .connection()
                .config()
                .close_timeout
                .unwrap_or(DEFAULT_LINGER);
            clock.now() + linger_for
        };
        match &mut self.rare {
            Some(rare) => *rare.linger.get_or_insert_with(linger),
            None => linger(),
        }
    }

    /// A protocol error ended the connection (its Close is queued).
    fn protocol_error(&mut self, error: ProtocolError) {
        let outcome = self
            .driver
            .outcome()
            .unwrap_or(Outcome::Abnormal(Abnormal::Protocol(error)));
        self.end(outcome);
    }

    /// The next whole message, or `None` after the end.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        loop {
            if self.outcome().is_some() {
                ready!(self.poll_finish(cx));
                return Poll::Ready(None);
            }
            match self.driver.poll_message(self.now) {
                Ok(Some(Received::Message(message))) => {
                    if matches!(message, Message::Ping(_) | Message::Close(_)) {
                        self.flush_best_effort(cx);
                    }
                    return Poll::Ready(Some(message));
                }
                Ok(Some(Received::Closed(closed))) => {
                    let outcome = Outcome::from_closed(closed, self.driver.connection());
                    self.end(outcome);
                    continue;
                }
                Err(error) => {
                    self.protocol_error(error);
                    continue;
                }
                Ok(None) => {
                    if self.check_stuck() {
                        continue;
                    }
                }
            }
            ready!(self.poll_input(cx));
        }
    }

    /// The next raw event (a chunk of a message, a control frame), passed to `f` while
    /// it borrows the read buffer; `None` after the end.
    pub(crate) fn poll_event_with<F, R>(
        &mut self,
        cx: &mut Context<'_>,
        f: &mut Option<F>,
    ) -> Poll<Option<R>>
    where
        F: FnOnce(Event<'_>) -> R,
    {
        loop {
            if self.outcome().is_some() {
                ready!(self.poll_finish(cx));
                return Poll::Ready(None);
            }
            let polled = self.driver.poll_event_with(self.now, |event| match event {
                Event::Closed(closed) => Err(closed),
                other => {
                    let control = matches!(other, Event::Ping(_) | Event::Close(_));
                    Ok((f.take().map(|f| f(other)), control))
                }
            });
            match polled {
                Ok(Some(Ok((result, control)))) => {
                    if control {
                        self.flush_best_effort(cx);
                    }
                    match result {
                        Some(result) => return Poll::Ready(Some(result)),
                        // Polled again after it returned: nothing to hand out.
                        None => return Poll::Ready(None),
                    }
                }
                Ok(Some(Err(closed))) => {
                    let outcome = Outcome::from_closed(closed, self.driver.connection());
                    self.end(outcome);
                    continue;
                }
                Err(error) => {
                    self.protocol_error(error);
                    continue;
                }
                Ok(None) => {
                    if self.check_stuck() {
                        continue;
                    }
                }
            }
            ready!(self.poll_input(cx));
        }
    }

    /// Guards the read loop: once the driver is finished, or at end of stream with
    /// nothing left to parse, without a reported end (which the core never does), end
    /// the connection rather than spin.
    ///
    /// Called when the driver had nothing to hand out (so it has seen any end of
    /// stream); true if it ended the connection.
    fn check_stuck(&mut self) -> bool {
        let over = self.driver.is_finished() || self.eof;
        if self.outcome().is_some() || !over || self.driver.has_buffered_input() {
            return false;
        }
        let outcome = self
            .driver
            .outcome()
            .unwrap_or(Outcome::Abnormal(Abnormal::Eof));
        self.end(outcome);
        true
    }

    /// Waits until the send queue has room (writing meanwhile).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if self.write_closed {
                return Poll::Ready(Err(Error::Closed));
            }
            if self.driver.is_writable() {
                return Poll::Ready(Ok(()));
            }
            ready!(self.poll_write_out(cx))?;
        }
    }

    /// Queues a message (after [`poll_ready`](Self::poll_ready)).
    pub(crate) fn start_send(&mut self, message: Message) -> Result<(), Error> {
        if self.write_closed {
            return Err(Error::Closed);
        }
        // Only a Ping or a Close starts a timer: a data message needs no clock reading.
        let now = if message.is_data() {
            self.now
        } else {
            self.read_clock()
        };
        self.driver.send(message, now).map_err(Error::from)
    }

    /// Queues one frame of a fragmented message.
    pub(crate) fn start_send_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        if self.write_closed {
            return Err(Error::Closed);
        }
        self.driver
            .send_frame(kind, fin, payload)
            .map_err(Error::from)
    }

    /// Queues our Close.
    pub(crate) fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        if self.write_closed {
            return Err(Error::Closed);
        }
        let now = self.read_clock();
        self.driver.close(code, reason, now).map_err(Error::from)
    }

    /// Writes everything queued.
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        ready!(self.poll_write_out(cx))?;
        Poll::Ready(Ok(()))
    }

    /// `Sink::poll_close`: sends a Close (1000) unless closing already, and flushes.
    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.driver.connection().state() == sockeye_proto::State::Open && !self.write_closed {
            self.start_close(CloseCode::NORMAL, "")?;
        }
        match ready!(self.poll_write_out(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(error) => Poll::Ready(Err(Error::Io(error))),
        }
    }
}
