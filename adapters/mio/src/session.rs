//! [`Session`]: one WebSocket connection over a non-blocking `mio` TCP stream, driven by
//! readiness events. The handshake is a phase of the session; once open, the session
//! does what the engine's [`Driver::poll_io`] says (read, write, sleep until, shut down,
//! done) and holds no lifecycle policy of its own.

use std::fmt;
use std::io::{self, ErrorKind, IoSlice, Read as _, Write};
use std::net::{Shutdown, ToSocketAddrs};
use std::task::Poll;
use std::time::{Duration, Instant};

use mio::event::{Event, Source as _};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use sockeye_engine::{
    Action, Driver, Io, Lifecycle, Message, Opening, Outcome, RequestExtras, RequestHead, Settings,
    Verdict,
};
use sockeye_proto::handshake::{ClientRequest, Url};
use sockeye_proto::{CloseCode, DataKind, DeflateParams, SendError, StdClock};

use crate::{Error, Handler};

/// The engine's time: nanoseconds from the session's epoch.
type At = sockeye_proto::Instant;

/// A read's result, `Pending` when the socket would block.
type Read = Poll<io::Result<usize>>;

/// What the driver says to a send.
type Sent = Result<(), SendError>;

/// The application's callback deciding an upgrade request.
type Decide = Box<dyn FnOnce(&RequestHead) -> Verdict + Send>;

/// One WebSocket connection over a [`mio::net::TcpStream`], driven by the caller's own
/// [`mio::Poll`] loop: no futures, no threads, no hidden clock (every call takes `now`).
///
/// A session starts in a handshake phase (server: [`Session::server`]; client:
/// [`Session::client`] / [`Session::connect_url`]), becomes open, and ends with an
/// [`Outcome`] (or, if the handshake failed, an [`Error`]). Drive it with:
///
/// - [`on_event`](Self::on_event) on each of its events: on a readable event it reads
///   until the socket is drained, calling your handler with each message as it is
///   parsed (Pongs and Close replies are queued and written at once); on a writable
///   event it writes what is queued ([`on_readable`](Self::on_readable) and
///   [`on_writable`](Self::on_writable) do each half, for loops that do not keep the
///   event);
/// - [`on_timeout`](Self::on_timeout) when [`next_timeout`](Self::next_timeout) has
///   passed (pass that to [`mio::Poll::poll`]): handshake timeout, keepalive, close
///   timeout;
/// - after each, [`update_interest`](Self::update_interest) (or re-register with
///   [`interest`](Self::interest)): `READABLE`, plus `WRITABLE` while bytes wait;
/// - once [`is_done`](Self::is_done), drop it (which closes the socket).
///
/// [`send`](Self::send) and [`close`](Self::close) queue and write what the socket takes
/// at once; the rest goes out on writable events. Backpressure: while more than
/// [`DriverConfig::max_pending_bytes`](sockeye_engine::DriverConfig) wait to be
/// written, [`is_writable`](Self::is_writable) is false and the session stops reading
/// (so a peer that does not read cannot make it queue Pongs or echoes); reading resumes
/// from [`on_writable`](Self::on_writable), which then hands the messages it reads to
/// its handler, and a peer that never drains is ended by the write-stall timeout.
pub struct Session {
    stream: TcpStream,
    clock: StdClock,
    /// The connection's whole life, as the engine runs it.
    life: Lifecycle,
    /// The session's own decision on a request, if it has one (else the handler's
    /// `on_request` decides).
    decide: Option<Decide>,
    /// What the engine last asked for: to read (not while the send queue is full, at end
    /// of stream, after the end), to write (or wait for the connect), the next deadline.
    io: Io,
    /// An event reported the read side closed (or an error): from then on every read
    /// goes on until `WouldBlock` or end of stream, because no further event may come
    /// for bytes, or an end of stream, that are already waiting.
    hangup: bool,
    /// Inside a handler call: sends are written after it returns.
    dispatching: bool,
    done: bool,
    registered: Option<Interest>,
    /// The session's `tracing` span (feature `tracing`).
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("stream", &self.stream)
            .field("open", &self.is_open())
            .field("outcome", &self.outcome())
            .field("error", &self.error())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

/// Whether a read that returns fewer bytes than it asked for shows the socket's receive
/// buffer empty. With epoll and kqueue it does (tokio's `PollEvented` relies on the same,
/// on the same systems); elsewhere only `WouldBlock` does.
const SHORT_READ_DRAINS: bool = cfg!(any(
    target_os = "android",
    target_os = "linux",
    target_os = "illumos",
    target_os = "redox",
    target_os = "dragonfly",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_vendor = "apple",
));

/// Enters the session's `tracing` span for the rest of the scope.
macro_rules! in_span {
    ($session:expr) => {
        #[cfg(feature = "tracing")]
        let _span = $session.span.clone().entered();
    };
}

/// One non-blocking read for a `read_with`: `Pending` when the socket would block;
/// `short` says whether it brought fewer bytes than asked for (but some).
fn reader<'a>(
    stream: &'a mut TcpStream,
    short: &'a mut bool,
) -> impl FnOnce(&mut [u8]) -> Read + 'a {
    move |buf| loop {
        match stream.read(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            result => return nonblocking(result.inspect(|n| *short = *n > 0 && *n < buf.len())),
        }
    }
}

/// A non-blocking call's result as a `Poll`: `Pending` when it would block.
fn nonblocking(result: io::Result<usize>) -> Read {
    match result {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Poll::Pending,
        result => Poll::Ready(result),
    }
}

impl Session {
    fn new(stream: TcpStream, now: Instant, opening: Opening, decide: Option<Decide>) -> Self {
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!(
            target: "sockeye",
            "websocket",
            role = if opening.is_client() { "client" } else { "server" },
            // A client still connecting has no peer yet.
            peer = ?stream.peer_addr().ok(),
        );
        let mut session = Session {
            stream,
            clock: StdClock::with_epoch(now),
            life: Lifecycle::new(opening),
            decide,
            io: Io::default(),
            hangup: false,
            dispatching: false,
            done: false,
            registered: None,
            #[cfg(feature = "tracing")]
            span,
        };
        session.settle(At::ZERO, &mut ignore);
        session
    }

    /// A server session on a freshly accepted `stream`: reads the request and accepts it
    /// (no subprotocol) or writes its refusal (400 / 426 / 431) and closes, within
    /// [`Settings::handshake_timeout`].
    pub fn server(stream: TcpStream, settings: impl Into<Settings>, now: Instant) -> Self {
        let opening = Opening::server(settings.into(), At::ZERO);
        Session::new(stream, now, opening, None)
    }

    /// As [`Session::server`], with `decide` seeing the request (path, query, headers,
    /// offered subprotocols; plain HTTP requests too, with
    /// [`RequestHead::is_upgrade`] false) and answering with a [`Verdict`].
    pub fn server_with(
        stream: TcpStream,
        settings: impl Into<Settings>,
        now: Instant,
        decide: impl FnOnce(&RequestHead) -> Verdict + Send + 'static,
    ) -> Self {
        let opening = Opening::server(settings.into(), At::ZERO);
        Session::new(stream, now, opening, Some(Box::new(decide)))
    }

    /// A client session on `stream`, connected or still connecting (as
    /// [`TcpStream::connect`] returns it): once connected, writes `request` and checks the
    /// answer. The TCP connect is bounded by [`Settings::connect_timeout`], the handshake
    /// by [`Settings::handshake_timeout`]. Register it for `READABLE | WRITABLE` (its
    /// [`interest`](Self::interest)).
    pub fn client(
        stream: TcpStream,
        request: &ClientRequest<'_>,
        settings: impl Into<Settings>,
        now: Instant,
    ) -> Result<Self, Error> {
        let opening = Opening::client(request, settings.into(), At::ZERO)?.connecting(At::ZERO);
        Ok(Session::new(stream, now, opening, None))
    }

    /// Starts a client session for a `ws://host[:port]/path` URL: resolves the host (a
    /// blocking lookup unless it is an IP address), starts a non-blocking TCP connect
    /// (`TCP_NODELAY` on) and returns the session; register it and drive it as usual.
    /// `wss://` is [`Error::TlsRequired`].
    pub fn connect_url(
        url: &str,
        settings: impl Into<Settings>,
        now: Instant,
    ) -> Result<Self, Error> {
        Session::connect_url_with(url, &RequestExtras::new(), settings, now)
    }

    /// As [`connect_url`](Self::connect_url), offering subprotocols and sending headers
    /// (`Authorization`, `Cookie`, `Origin` ...) with the upgrade request.
    pub fn connect_url_with(
        url: &str,
        extras: &RequestExtras,
        settings: impl Into<Settings>,
        now: Instant,
    ) -> Result<Self, Error> {
        let url = Url::parse(url)?;
        if url.is_tls() {
            return Err(Error::TlsRequired);
        }
        let mut addrs = (url.host(), url.port()).to_socket_addrs()?;
        let no_address = || io::Error::new(ErrorKind::NotFound, "host has no address");
        let stream = TcpStream::connect(addrs.next().ok_or_else(no_address)?)?;
        stream.set_nodelay(true)?;
        let (protocols, headers) = extras.borrowed();
        let request = url.request().with_protocols(&protocols);
        Session::client(stream, &request.with_headers(&headers), settings, now)
    }

    /// Reads until the socket would block (or the send queue is full), calling `handle`
    /// with each message as it is parsed: what `handle` sends goes out before anything
    /// after that message is processed (so a reply is sent even when the peer then breaks
    /// the protocol). Handshake phases advance here too: a server answers the request
    /// once it is complete, a client checks the response. Pongs and Close replies are
    /// queued and written here.
    pub fn on_readable(&mut self, now: Instant, mut handle: impl FnMut(&mut Session, Message)) {
        self.drive(now, true, false, &mut handle);
    }

    /// [`on_readable`](Self::on_readable) with a whole [`Handler`] (requests for a
    /// session without its own callback, opening, messages).
    pub fn on_readable_with(&mut self, now: Instant, handler: &mut dyn Handler) {
        self.drive(now, true, false, handler);
    }

    /// Writes what is queued (and, for a client, completes the TCP connect and writes
    /// the request). If reading had stopped for backpressure and the queue drained,
    /// reading resumes, calling `handle` for each message read.
    pub fn on_writable(&mut self, now: Instant, mut handle: impl FnMut(&mut Session, Message)) {
        self.drive(now, false, false, &mut handle);
    }

    /// [`on_writable`](Self::on_writable) with a whole [`Handler`].
    pub fn on_writable_with(&mut self, now: Instant, handler: &mut dyn Handler) {
        self.drive(now, false, false, handler);
    }

    /// Handles one readiness event of this session's socket: what
    /// [`on_readable`](Self::on_readable) does for a readable, read-closed or error
    /// event, then what [`on_writable`](Self::on_writable) does for a writable or error
    /// event.
    ///
    /// Knowing the event saves a system call per readable event: on Linux, Android, the
    /// BSDs and Apple systems a read that returns less than it asked for shows the
    /// socket drained, so reading stops there instead of reading once more for
    /// `WouldBlock` (mio's events are edge-triggered, and bytes arriving later raise a
    /// new event). Once an event reports the read side closed, this session reads until
    /// `WouldBlock` again, as the end of stream may already be waiting.
    pub fn on_event(
        &mut self,
        event: &Event,
        now: Instant,
        mut handle: impl FnMut(&mut Session, Message),
    ) {
        self.on_event_with(event, now, &mut handle);
    }

    /// [`on_event`](Self::on_event) with a whole [`Handler`].
    pub fn on_event_with(&mut self, event: &Event, now: Instant, handler: &mut dyn Handler) {
        self.hangup |= event.is_read_closed() || event.is_error();
        let short = SHORT_READ_DRAINS && !self.hangup;
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.drive(now, true, short, handler);
        }
        if event.is_writable() || event.is_error() {
            self.drive(now, false, short, handler);
        }
    }

    /// Writes what is queued now, as far as the socket takes it (the rest goes out on
    /// writable events).
    pub fn flush(&mut self, now: Instant) {
        self.settle(self.clock.at(now), &mut ignore);
    }

    /// Fires what expired at `now`: the handshake timeout (the session ends with
    /// [`Error::HandshakeTimeout`]), the driver's deadlines (keepalive, close timeout,
    /// write stall, the linger after the end), the refusal linger. Harmless when called
    /// early.
    pub fn on_timeout(&mut self, now: Instant) {
        let now = self.clock.at(now);
        if self.done || self.io.deadline.is_none_or(|deadline| deadline > now) {
            return;
        }
        self.life.handle_deadline(now);
        self.settle(now, &mut ignore);
    }

    /// The next deadline as a time to wait from `now` (zero if it passed): pass the
    /// smallest over all sessions to [`mio::Poll::poll`], then call
    /// [`on_timeout`](Self::on_timeout).
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        Some(self.deadline_std()?.saturating_duration_since(now))
    }

    /// The next deadline, as a `std::time::Instant`.
    pub fn deadline_std(&self) -> Option<Instant> {
        Some(self.clock.to_std(self.io.deadline.filter(|_| !self.done)?))
    }

    /// Queues a message (text, binary, ping, pong, close) and writes what the socket
    /// takes now. Fails while the handshake runs ([`Error::Handshaking`]) and after the
    /// end ([`Error::Closed`]). The queue is not bounded here: check
    /// [`is_writable`](Self::is_writable) to apply backpressure.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.queue(self.clock.now(), |driver, now| driver.send(message, now))
    }

    /// Queues a [`PreparedMessage`](crate::PreparedMessage), framed (and
    /// compressed) once for any number of sessions and queued here by reference, and
    /// writes what the socket takes now. Check [`is_writable`](Self::is_writable) first
    /// to skip or close a subscriber that does not keep up.
    pub fn send_prepared(&mut self, prepared: &crate::PreparedMessage) -> Result<(), Error> {
        self.queue(self.clock.now(), |d, now| d.send_prepared(prepared, now))
    }

    /// Queues one frame of a fragmented message (`fin == false` continues it), and
    /// writes what the socket takes now.
    pub fn send_fragment(&mut self, kind: DataKind, fin: bool, buf: Vec<u8>) -> Result<(), Error> {
        self.queue(self.clock.now(), |d, _| d.send_frame(kind, fin, buf))
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes). The end
    /// comes with the peer's answer (or the close timeout): keep driving the session
    /// until [`is_done`](Self::is_done). Does nothing if the close handshake already
    /// started; ends a handshaking session at once.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), Error> {
        self.life.abort(Error::Closed);
        let close = |driver: &mut Driver, now| driver.close(code, reason, now);
        match self.queue(self.clock.at(now), close) {
            Err(Error::Closed) => Ok(()),
            result => result,
        }
    }

    /// Runs `f` on the open driver, then writes (inside a handler, after it returns: one
    /// write for many).
    fn queue(&mut self, now: At, f: impl FnOnce(&mut Driver, At) -> Sent) -> Result<(), Error> {
        match self.life.driver_mut() {
            Some(driver) if !driver.is_finished() && !driver.is_write_closed() => f(driver, now)?,
            None if !self.done => return Err(Error::Handshaking),
            _ => return Err(Error::Closed),
        }
        if !self.dispatching {
            self.settle(now, &mut ignore);
        }
        Ok(())
    }

    /// The interest to register: `READABLE`, plus `WRITABLE` while bytes wait to be
    /// written (or a client's TCP connect is in progress).
    pub fn interest(&self) -> Interest {
        if self.io.write && !self.done {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Registers the session's socket with its [`interest`](Self::interest).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        self.registered = Some(interest);
        self.stream.register(registry, token, interest)
    }

    /// Re-registers the socket if its [`interest`](Self::interest) changed since the
    /// last registration (call after handling the session's events).
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        if self.done || self.registered == Some(interest) {
            return Ok(());
        }
        self.registered = Some(interest);
        self.stream.reregister(registry, token, interest)
    }

    /// Removes the socket from `registry`.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.registered = None;
        self.stream.deregister(registry)
    }

    fn driver(&self) -> Option<&Driver> {
        self.life.driver()
    }

    /// Whether the handshake is done and the connection has not ended.
    pub fn is_open(&self) -> bool {
        self.driver().is_some_and(|driver| !driver.is_finished())
    }

    /// Whether the session is over: nothing more to read or write. Drop it.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Backpressure: whether the send queue is within its bound.
    pub fn is_writable(&self) -> bool {
        self.driver().is_none_or(Driver::is_writable)
    }

    /// Bytes queued but not written yet.
    pub fn pending_bytes(&self) -> usize {
        self.life.pending_bytes()
    }

    /// How the connection ended, once it has (after the handshake).
    pub fn outcome(&self) -> Option<Outcome> {
        self.driver()?.outcome().cloned()
    }

    /// Why the session failed: the handshake (refused, rejected, timed out, the peer
    /// left), or an I/O error (after the handshake [`outcome`](Self::outcome) says the
    /// same). A protocol error by the peer is in the outcome only.
    pub fn error(&self) -> Option<&Error> {
        self.life.error()
    }

    /// The request path, without the query (server, once accepted).
    pub fn path(&self) -> Option<&str> {
        self.life.path()
    }

    /// The subprotocol agreed on in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.driver()?.protocol()
    }

    /// The permessage-deflate parameters agreed in the handshake (offered and
    /// negotiated with [`Settings::compression`]; a server's [`Verdict`] may choose
    /// otherwise per request); `None` before the connection is open or if it does not
    /// compress.
    pub fn compression(&self) -> Option<DeflateParams> {
        self.driver()?.compression()
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Does what the engine asks for until the socket would block: writes, shuts down,
    /// asks for a verdict, opens (calling `on_open`), ends; then records the interest
    /// and the deadline.
    fn settle(&mut self, now: At, handler: &mut dyn Handler) {
        in_span!(self);
        if self.life.is_connecting() {
            match is_connected(&self.stream) {
                Ok(true) => self.life.connected(now),
                Ok(false) => {}
                Err(error) => self.life.fail_io(error),
            }
        }
        while !self.done {
            let io = match self.life.poll(now) {
                Action::Io(io) => io,
                Action::Decide(head) => {
                    let verdict = match self.decide.take() {
                        Some(decide) => decide(&head),
                        None => handler.on_request(&head),
                    };
                    self.life.answer(verdict, now);
                    continue;
                }
                Action::Shutdown => {
                    let _ = self.stream.shutdown(Shutdown::Write);
                    self.life.shutdown_done(now);
                    continue;
                }
                Action::Opened => {
                    #[cfg(feature = "tracing")]
                    if let Some(driver) = self.life.driver_mut() {
                        driver.set_span(self.span.clone());
                    }
                    handler.on_open(self);
                    continue;
                }
                Action::Done => {
                    if self.life.driver().is_none() {
                        let _ = self.stream.shutdown(Shutdown::Both);
                    }
                    return self.done = true;
                }
            };
            self.io = io;
            let stream = &mut self.stream;
            let write = |slices: &[IoSlice<'_>]| nonblocking(stream.write_vectored(slices));
            let wrote = io.write.then(|| self.life.write_with(write));
            if matches!(wrote, None | Some(Poll::Ready(Ok(0)) | Poll::Pending)) {
                return;
            }
        }
    }

    /// Advances the session: the handshake, then the open connection's messages, each
    /// handed to `handler` as it is parsed, reading while the phase asks to (the socket
    /// would block, or with `short` a read came back short; the send queue is full; the
    /// connection ended), and writing between reads when the queue fills. Reads only when
    /// `readable`, or when the driver resumes reading after backpressure.
    ///
    /// `short`: a read that returns less than it asked for ends reading (the caller knows
    /// no end of stream is waiting unannounced; see [`on_event`](Self::on_event)).
    fn drive(&mut self, now: Instant, readable: bool, short: bool, handler: &mut dyn Handler) {
        in_span!(self);
        let now = self.clock.at(now);
        let paused = !self.io.read;
        self.dispatching = true;
        self.settle(now, handler);
        // Whether the socket is known to be drained, so only buffered input is processed
        // (a writable event may resume reading that backpressure had paused).
        let mut drained = !(readable || (paused && self.io.read));
        while !self.done {
            let polling = self.life.driver().is_some_and(Driver::is_writable);
            if let Some(driver) = self.life.driver_mut().filter(|_| polling) {
                if let Some(message) = driver.poll_message(now) {
                    handler.on_message(self, message);
                    continue;
                }
            }
            // Writes what is queued; a handshake goes as far as what was read takes it.
            self.settle(now, handler);
            if !self.is_writable() {
                // Backpressure: what the handler would send has no room; the rest of the
                // input waits for the queue to drain.
                break;
            }
            if !polling && self.life.driver().is_some() {
                // Just opened, or the queue made room: what is buffered comes first.
                continue;
            }
            if drained || self.done || !self.io.read {
                break;
            }
            let mut was_short = false;
            let read = reader(&mut self.stream, &mut was_short);
            match self.life.read_with(read) {
                Poll::Ready(Ok(_)) => drained = short && was_short,
                Poll::Ready(Err(error)) => self.life.fail_io(error),
                Poll::Pending => break,
            }
        }
        self.dispatching = false;
        self.settle(now, handler);
    }
}

/// Whether a non-blocking connect has completed (its error if it failed).
fn is_connected(stream: &TcpStream) -> io::Result<bool> {
    if let Some(error) = stream.take_error()? {
        return Err(error);
    }
    match stream.peer_addr() {
        Err(error) if error.kind() == ErrorKind::NotConnected => Ok(false),
        result => result.map(|_| true),
    }
}

/// A handler for the calls that read nothing, so never see a request or a message.
fn ignore(_: &mut Session, _: Message) {}
