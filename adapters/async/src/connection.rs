//! [`Core`]: the engine's [`Driver`] with a transport, a clock and one timer, driven by
//! `poll_*` methods that keep all their state in the struct (so every future built on
//! them is cancel-safe). It does what [`Driver::poll_io`] says and holds no policy of
//! its own.

use std::io;
use std::marker::PhantomData;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant as StdInstant};

use sockeye_engine::handshake::Agreed;
use sockeye_engine::{Driver, Message, Next, Outcome, PreparedMessage, Settings};
use sockeye_proto::{CloseCode, Connection, DataKind, Event, Instant, Role, State};

use crate::runtime::{Runtime, Timer, Transport};
use crate::Error;

/// The deadline of a timer that fired and is not set again yet.
const SPENT: u64 = u64::MAX;

/// Loop turns one poll may take before it yields to the executor, so that a peer
/// whose bytes keep coming cannot keep a task from ever returning.
const BUDGET: usize = 64;

/// What one round of I/O did.
enum Step {
    /// Something may have changed: look at the driver again.
    Progress,
    /// The connection is over.
    Done,
}

/// One connection after the handshake.
///
/// Kept small, since an idle connection is this and its task: the timer is made only
/// when first needed, and what only some connections need is boxed inside the driver.
#[derive(Debug)]
pub(crate) struct Core<S: Transport<R>, R: Runtime> {
    pub(crate) stream: S,
    pub(crate) driver: Driver,
    /// Where the core's time starts, on the runtime's clock.
    epoch: StdInstant,
    /// The latest clock reading, taken after each read and for each timer check, Ping
    /// and Close. Frames parsed out of buffered input are given this time (their bytes
    /// arrived by then, which is what the core's timers count from), and so are data
    /// sends, which start no timer: a burst of frames read at once costs one reading,
    /// not one per message. Reading only forward keeps the core's time monotonic.
    now: Instant,
    /// The one timer, with the deadline it is set to. Made only when first needed.
    /// (Its deadline in ns of the core's clock, [`SPENT`] once it fired: 8 bytes, not
    /// the 16 of an `Option<Instant>`, in every connection's task.)
    timer: Option<(u64, R::Timer)>,
    runtime: PhantomData<fn() -> R>,
}

/// Enters the connection's `tracing` span (if it has one) for the rest of the scope.
macro_rules! in_span {
    ($core:expr) => {
        #[cfg(feature = "tracing")]
        let _span = $core.driver.span().cloned().map(tracing::Span::entered);
    };
}

impl<S: Transport<R>, R: Runtime> Drop for Core<S, R> {
    fn drop(&mut self) {
        self.close_on_drop()
    }
}

impl<S: Transport<R>, R: Runtime> Core<S, R> {
    pub(crate) fn new(
        stream: S,
        role: Role,
        settings: &Settings,
        protocol: Option<String>,
        compression: Option<Agreed>,
        early: &[u8],
    ) -> Result<Self, Error> {
        let seed = match role {
            Role::Client => crate::random()?,
            Role::Server => [0; 32],
        };
        let connection = Connection::new(role, settings.protocol, seed, Instant::ZERO);
        let mut driver = Driver::new(connection, settings.buffers);
        driver.open_with(protocol, compression, early);
        Ok(Core::with_driver(stream, driver, R::now()))
    }

    /// A connection over `stream` run by `driver`, whose times count from `epoch` on the
    /// runtime's clock.
    #[cfg_attr(not(feature = "tracing"), allow(unused_mut))]
    pub(crate) fn with_driver(stream: S, mut driver: Driver, epoch: StdInstant) -> Self {
        #[cfg(feature = "tracing")]
        {
            let role = driver.connection().role();
            driver.set_span(tracing::debug_span!(target: "sockeye", "websocket", ?role));
        }
        Core {
            stream,
            driver,
            epoch,
            now: Instant::ZERO,
            timer: None,
            runtime: PhantomData,
        }
    }

    /// A connection dropped while open ends with a Close (1000) rather than a bare end of
    /// stream, so the peer sees a normal disconnect: queued, and written with what else
    /// is queued if the transport takes it now (there is no waiting in `drop`).
    fn close_on_drop(&mut self) {
        in_span!(self);
        if self.driver.connection().state() == State::Open && self.check_open().is_ok() {
            let _ = self.start_close(CloseCode::NORMAL, "");
        }
        if self.driver.pending_bytes() > 0 {
            let _ = self.poll_write_out(&mut Context::from_waker(std::task::Waker::noop()));
        }
    }

    /// Reads the clock (see [`Core::now`]).
    fn read_clock(&mut self) -> Instant {
        let elapsed = R::now().saturating_duration_since(self.epoch);
        let now = Instant::from_nanos(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        self.now = now.max(self.now);
        self.now
    }

    /// Whether `deadline` has passed, by the one stored timer: `Pending` registers the
    /// task's waker with it.
    ///
    /// The keepalive deadline moves with every read, so the timer is moved only to an
    /// earlier deadline; set for an earlier time than the deadline, it fires early and
    /// is moved on then. A busy connection so resets its timer about once per keepalive
    /// interval instead of once per read, and reads no clock for it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let target = deadline.as_nanos().min(SPENT - 1);
        let at = |nanos: u64| self.epoch + Duration::from_nanos(nanos);
        let (armed, timer) = match &mut self.timer {
            Some((armed, timer)) => {
                // A spent timer (it fired) or one set for later is set anew.
                if target < *armed {
                    *armed = target;
                    timer.reset(at(target));
                }
                (armed, timer)
            }
            None => {
                let (armed, timer) = self.timer.insert((target, R::timer(at(target))));
                (armed, timer)
            }
        };
        for _ in 0..2 {
            ready!(timer.poll_fire(cx));
            if target <= *armed {
                *armed = SPENT;
                return Poll::Ready(());
            }
            // It fired for an earlier deadline that has since moved on.
            *armed = target;
            timer.reset(at(target));
        }
        Poll::Pending
    }

    /// Writes queued bytes until the queue is empty, then flushes (and shuts the write
    /// side down if that is what the driver asks next). An error has already ended the
    /// connection when it is returned.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.driver.pending_bytes() > 0 && !self.driver.is_write_closed() {
            let stream = &mut self.stream;
            ready!(self
                .driver
                .write_with(|slices| stream.poll_write_vectored(cx, slices)))?;
        }
        if let Err(error) = ready!(self.stream.poll_flush(cx)) {
            if error.kind() == io::ErrorKind::Interrupted {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            return Poll::Ready(Err(self.fail(error)));
        }
        if self.driver.poll_io(self.now) == Next::Shutdown {
            // An error here (the peer already reset) changes nothing: we are done writing.
            let _ = ready!(self.stream.poll_shutdown(cx));
            self.driver.shutdown_done();
        }
        Poll::Ready(Ok(()))
    }

    fn fail(&mut self, error: io::Error) -> io::Error {
        self.driver.fail_io(error.kind());
        error
    }

    /// One round of I/O as the driver asks: fire a due deadline, read, and write out
    /// what is queued once the read would block (so the replies to a whole burst of
    /// input leave in one vectored write). Only the receiving side reads (`reading`):
    /// a sender waiting for room or a flush moves bytes out and keeps the deadlines
    /// (a peer that stops reading is ended by the write-stall timeout, not waited for).
    fn poll_io(&mut self, cx: &mut Context<'_>, reading: bool) -> Poll<Step> {
        loop {
            let io = match self.driver.poll_io(self.now) {
                Next::Done => return Poll::Ready(Step::Done),
                Next::Shutdown => {
                    let _ = ready!(self.stream.poll_shutdown(cx));
                    self.driver.shutdown_done();
                    continue;
                }
                Next::Io(io) => io,
            };
            if let Some(deadline) = io.deadline {
                if deadline <= self.now || self.poll_deadline(cx, deadline).is_ready() {
                    // The timer says the deadline passed, even if the clock rounds below it.
                    self.now = self.read_clock().max(deadline);
                    self.driver.handle_deadline(self.now);
                    return Poll::Ready(Step::Progress);
                }
            }
            if io.read && reading {
                let stream = &mut self.stream;
                match self.driver.read_with(|buf| stream.poll_read(cx, buf)) {
                    Poll::Ready(Ok(_)) => {
                        self.read_clock();
                        return Poll::Ready(Step::Progress);
                    }
                    Poll::Ready(Err(error)) if error.kind() == io::ErrorKind::Interrupted => {
                        return Poll::Ready(Step::Progress);
                    }
                    Poll::Ready(Err(error)) => {
                        self.fail(error);
                        return Poll::Ready(Step::Progress);
                    }
                    Poll::Pending => {}
                }
            }
            if io.write {
                let before = self.driver.pending_bytes();
                match self.poll_write_out(cx) {
                    Poll::Ready(_) => return Poll::Ready(Step::Progress),
                    Poll::Pending if self.driver.pending_bytes() < before => {
                        return Poll::Ready(Step::Progress)
                    }
                    Poll::Pending => {}
                }
            }
            return Poll::Pending;
        }
    }

    /// Writes what is queued without waiting (a Pong, a Close reply); errors end the
    /// connection and show in its outcome.
    fn flush_best_effort(&mut self, cx: &mut Context<'_>) {
        let _ = self.poll_write_out(cx);
    }

    /// The next whole message, or `None` once the connection is over.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        in_span!(self);
        for _ in 0..BUDGET {
            if let Some(message) = self.driver.poll_message(self.now) {
                if matches!(message, Message::Ping(_) | Message::Close(_)) {
                    self.flush_best_effort(cx);
                }
                return Poll::Ready(Some(message));
            }
            if let Step::Done = ready!(self.poll_io(cx, true)) {
                return Poll::Ready(None);
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// The next raw event (a chunk of a message, a control frame), passed to `f` while
    /// it borrows the read buffer; `None` once the connection is over.
    pub(crate) fn poll_event_with<F, T>(
        &mut self,
        cx: &mut Context<'_>,
        f: &mut Option<F>,
    ) -> Poll<Option<T>>
    where
        F: FnOnce(Event<'_>) -> T,
    {
        in_span!(self);
        for _ in 0..BUDGET {
            let Some(call) = f.take() else {
                // Polled again after it returned: nothing to hand out.
                return Poll::Ready(None);
            };
            let mut call = Some(call);
            let polled = self.driver.poll_event_with(self.now, |event| {
                let control = matches!(event, Event::Ping(_) | Event::Close(_));
                (call.take().map(|call| call(event)), control)
            });
            *f = call;
            if let Some((result, control)) = polled {
                if control {
                    self.flush_best_effort(cx);
                }
                return Poll::Ready(result);
            }
            if let Step::Done = ready!(self.poll_io(cx, true)) {
                return Poll::Ready(None);
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Waits until the send queue has room (writing meanwhile).
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        in_span!(self);
        loop {
            self.check_open()?;
            if self.driver.is_writable() {
                return Poll::Ready(Ok(()));
            }
            if let Step::Done = ready!(self.poll_io(cx, false)) {
                return Poll::Ready(Err(Error::Closed));
            }
        }
    }

    /// Whether a send would have to wait for the queue to drain.
    pub(crate) fn is_full(&self) -> bool {
        !self.driver.is_writable()
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.driver.is_finished() || self.driver.is_write_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Queues a message (after [`poll_ready`](Self::poll_ready)).
    pub(crate) fn start_send(&mut self, message: Message) -> Result<(), Error> {
        self.check_open()?;
        // Only a Ping or a Close starts a timer: a data message needs no clock reading.
        let now = if message.is_data() {
            self.now
        } else {
            self.read_clock()
        };
        self.driver.send(message, now).map_err(Error::from)
    }

    /// Queues a prepared message (after [`poll_ready`](Self::poll_ready)).
    pub(crate) fn start_send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.check_open()?;
        self.driver
            .send_prepared(prepared, self.now)
            .map_err(Error::from)
    }

    /// Queues one frame of a fragmented message.
    pub(crate) fn start_send_frame(
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

    /// Queues our Close.
    pub(crate) fn start_close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        in_span!(self);
        self.check_open()?;
        let now = self.read_clock();
        self.driver.close(code, reason, now).map_err(Error::from)
    }

    /// Writes everything queued (ending the connection if the peer stops reading for
    /// the write-stall timeout).
    pub(crate) fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        in_span!(self);
        loop {
            if self.driver.pending_bytes() == 0 || self.driver.is_write_closed() {
                ready!(self.poll_write_out(cx))?;
                return Poll::Ready(Ok(()));
            }
            if let Step::Done = ready!(self.poll_io(cx, false)) {
                return match self.driver.outcome() {
                    Some(outcome) if outcome.is_clean() => Poll::Ready(Ok(())),
                    _ => Poll::Ready(Err(Error::Closed)),
                };
            }
        }
    }

    /// `Sink::poll_close`: sends a Close (1000) unless closing already, and flushes.
    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.driver.connection().state() == State::Open && self.check_open().is_ok() {
            self.start_close(CloseCode::NORMAL, "")?;
        }
        self.poll_flush(cx)
    }

    /// How the connection ended, once it has.
    pub(crate) fn outcome(&self) -> Option<&Outcome> {
        self.driver.outcome()
    }

    /// The next deadline the reader sleeps until, to tell when a writer moved it.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.driver.connection().poll_timeout()
    }
}
