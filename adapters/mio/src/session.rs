//! [`Session`]: one WebSocket connection over a non-blocking `mio` TCP stream, driven by
//! readiness events. The handshake is a phase of the session; once open, the session
//! does what the engine's [`Driver::poll_io`] says (read, write, sleep until, shut down,
//! done) and holds no lifecycle policy of its own.

use std::fmt;
use std::io::{self, ErrorKind, IoSlice, Read as _, Write};
use std::net::{Shutdown, ToSocketAddrs};
use std::task::Poll;
use std::time::{Duration, Instant};

use mio::event::{Event, Source};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use sockeye_engine::{
    ClientAnswer, ClientUpgrade, Driver, Message, Next, Outcome, RequestExtras, RequestHead,
    ServerAnswer, ServerUpgrade, Settings, Verdict,
};
use sockeye_proto::handshake::{ClientRequest, Url};
use sockeye_proto::{CloseCode, Connection, DataKind, DeflateParams, Role, SendError, StdClock};

use crate::{Error, Handler};

/// The engine's time: nanoseconds from the session's epoch.
type At = sockeye_proto::Instant;

/// A read's result, `Pending` when the socket would block.
type Read = Poll<io::Result<usize>>;

/// What the driver says to a send.
type Sent = Result<(), SendError>;

/// The application's callback deciding an upgrade request.
type Decide = Box<dyn FnOnce(&RequestHead) -> Verdict + Send>;

/// How much of what a refused client still sends is read (and dropped) before closing.
const REFUSAL_DRAIN: usize = 64 * 1024;

/// Where a session stands. Every phase with state keeps it boxed, so a session is small
/// (an idle server holds many): the handshake's state, with the settings (which only the
/// handshake needs), is freed once the connection is open.
///
/// Once the session is done (`Session::done`) its phase stays as it was and only
/// answers questions (the outcome, the subprotocol) until the session is dropped.
enum Phase {
    /// Server: reading the request head; client: waiting for the TCP connect, writing
    /// the request, reading the response.
    Handshake(Box<(Side, Settings)>),
    /// The WebSocket connection, its whole life in the engine's driver.
    Open(Box<Driver>),
    /// Server: writing a refusal (the linger is `Some` until it is out and the write side
    /// shut), then reading and dropping what the client still sends (at most the count)
    /// until it closes, so that closing does not reset the connection before the
    /// response is read.
    Refusing(Option<Duration>, usize),
}

/// The handshake's side (boxed as a whole, so the sizes of its variants matter little).
#[allow(clippy::large_enum_variant)]
enum Side {
    /// The request being read, and the session's own decision, if it has one (else the
    /// handler's `on_request` decides).
    Server(ServerUpgrade, Option<Decide>),
    /// The response being read, the masking seed, and whether the TCP connect is done.
    Client(ClientUpgrade, [u8; 32], bool),
}

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
    phase: Phase,
    /// Handshake bytes (request, `101`, refusal), written before anything else.
    head: Vec<u8>,
    /// The next deadline: the handshake's, the refusal linger's, or the driver's.
    deadline: Option<At>,
    path: Option<Box<str>>,
    /// Why the session failed, once it has.
    error: Option<Box<Error>>,
    /// What the driver asks for: to read (false while its send queue is full, at end of
    /// stream, after the end), and to write (or the handshake has bytes to write).
    read: bool,
    write: bool,
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
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Poll::Pending,
            result => return Poll::Ready(result.inspect(|n| *short = *n > 0 && *n < buf.len())),
        }
    }
}

impl Session {
    fn new(stream: TcpStream, now: Instant, side: Side, settings: Settings, head: Vec<u8>) -> Self {
        // A client (which has its request to write) first waits for the TCP connect.
        let connect = settings.connect_timeout.filter(|_| !head.is_empty());
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!(
            target: "sockeye",
            "websocket",
            role = if matches!(side, Side::Server(..)) { "server" } else { "client" },
            // A client still connecting has no peer yet.
            peer = ?stream.peer_addr().ok(),
        );
        Session {
            stream,
            clock: StdClock::with_epoch(now),
            phase: Phase::Handshake(Box::new((side, settings))),
            deadline: connect.or(settings.handshake_timeout).map(|t| At::ZERO + t),
            write: !head.is_empty(),
            head,
            path: None,
            error: None,
            read: true,
            hangup: false,
            dispatching: false,
            done: false,
            registered: None,
            #[cfg(feature = "tracing")]
            span,
        }
    }

    /// A server session on a freshly accepted `stream`: reads the request and accepts it
    /// (no subprotocol) or writes its refusal (400 / 426 / 431) and closes, within
    /// [`Settings::handshake_timeout`].
    pub fn server(stream: TcpStream, settings: impl Into<Settings>, now: Instant) -> Self {
        Session::accepting(stream, settings.into(), now, None)
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
        Session::accepting(stream, settings.into(), now, Some(Box::new(decide)))
    }

    fn accepting(stream: TcpStream, settings: Settings, now: Instant, d: Option<Decide>) -> Self {
        let upgrade =
            ServerUpgrade::new(settings.head_limits).with_compression(settings.compression);
        let side = Side::Server(upgrade, d);
        Session::new(stream, now, side, settings, Vec::new())
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
        let settings = settings.into();
        let (mut nonce, mut seed) = ([0u8; 16], [0u8; 32]);
        for buf in [&mut nonce[..], &mut seed[..]] {
            getrandom::getrandom(buf).map_err(|e| io::Error::other(e.to_string()))?;
        }
        // The request's own permessage-deflate offer, or else the settings'.
        let request = request.with_deflate(request.deflate.or(settings.compression));
        let (upgrade, bytes) =
            ClientUpgrade::new(nonce, &request, settings.head_limits).map_err(Error::Request)?;
        let side = Side::Client(upgrade, seed, false);
        Ok(Session::new(stream, now, side, settings, bytes))
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
        in_span!(self);
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
        in_span!(self);
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
        in_span!(self);
        self.settle(self.clock.at(now));
    }

    /// Fires what expired at `now`: the handshake timeout (the session ends with
    /// [`Error::HandshakeTimeout`]), the driver's deadlines (keepalive, close timeout,
    /// write stall, the linger after the end), the refusal linger. Harmless when called
    /// early.
    pub fn on_timeout(&mut self, now: Instant) {
        in_span!(self);
        let now = self.clock.at(now);
        if self.done || self.deadline.is_none_or(|deadline| deadline > now) {
            return;
        }
        let error = match &mut self.phase {
            Phase::Open(driver) => {
                driver.handle_deadline(now);
                return self.settle(now);
            }
            Phase::Handshake(handshake) => match &mut handshake.0 {
                Side::Server(..) => Error::HandshakeTimeout,
                Side::Client(_, _, false) => Error::ConnectTimeout,
                // A server that said no but never finished its body still said no.
                Side::Client(upgrade, _, true) => upgrade.timed_out(),
            },
            Phase::Refusing(..) => return self.close_now(),
        };
        self.finish_with(error);
    }

    /// The next deadline as a time to wait from `now` (zero if it passed): pass the
    /// smallest over all sessions to [`mio::Poll::poll`], then call
    /// [`on_timeout`](Self::on_timeout).
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        Some(self.deadline_std()?.saturating_duration_since(now))
    }

    /// The next deadline, as a `std::time::Instant`.
    pub fn deadline_std(&self) -> Option<Instant> {
        Some(self.clock.to_std(self.deadline.filter(|_| !self.done)?))
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
        self.queue(self.clock.now(), |driver, now| {
            driver.send_prepared(prepared, now)
        })
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
        if let Phase::Handshake(_) = self.phase {
            self.finish_with(Error::Closed);
        }
        let close = |driver: &mut Driver, now| driver.close(code, reason, now);
        match self.queue(self.clock.at(now), close) {
            Err(Error::Closed) => Ok(()),
            result => result,
        }
    }

    /// Runs `f` on the open driver, then writes (inside a handler, after it returns: one
    /// write for many).
    fn queue(&mut self, now: At, f: impl FnOnce(&mut Driver, At) -> Sent) -> Result<(), Error> {
        in_span!(self);
        match &mut self.phase {
            Phase::Open(driver) if !driver.is_finished() && !driver.is_write_closed() => {
                f(driver, now)?;
            }
            Phase::Handshake(_) if !self.done => return Err(Error::Handshaking),
            _ => return Err(Error::Closed),
        }
        if !self.dispatching {
            self.settle(now);
        }
        Ok(())
    }

    /// The interest to register: `READABLE`, plus `WRITABLE` while bytes wait to be
    /// written (or a client's TCP connect is in progress).
    pub fn interest(&self) -> Interest {
        if self.write && !self.done {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Registers the session's socket with its [`interest`](Self::interest).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        Source::register(self, registry, token, interest)
    }

    /// Re-registers the socket if its [`interest`](Self::interest) changed since the
    /// last registration (call after handling the session's events).
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        if self.done || self.registered == Some(interest) {
            return Ok(());
        }
        self.reregister(registry, token, interest)
    }

    /// Removes the socket from `registry`.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        Source::deregister(self, registry)
    }

    fn driver(&self) -> Option<&Driver> {
        match &self.phase {
            Phase::Open(driver) => Some(driver),
            _ => None,
        }
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
        self.driver().map_or(0, Driver::pending_bytes) + self.head.len()
    }

    /// How the connection ended, once it has (after the handshake).
    pub fn outcome(&self) -> Option<Outcome> {
        self.driver()?.outcome().cloned()
    }

    /// Why the session failed: the handshake (refused, rejected, timed out, the peer
    /// left), or an I/O error (after the handshake [`outcome`](Self::outcome) says the
    /// same). A protocol error by the peer is in the outcome only.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }

    /// The request path, without the query (server, once accepted).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
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

    /// Ends the session with `error` (the first one counts); `true`, for the handshake.
    fn finish_with(&mut self, error: Error) -> bool {
        self.error.get_or_insert(Box::new(error));
        self.close_now();
        true
    }

    fn close_now(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        (self.done, self.head) = (true, Vec::new());
    }

    /// The transport failed; `true`, for the handshake.
    fn fail(&mut self, error: io::Error) -> bool {
        if let Phase::Open(driver) = &mut self.phase {
            driver.fail_io(error.kind());
        }
        self.finish_with(Error::Io(error))
    }

    /// Writes until the socket would block: the handshake bytes, then what the phase
    /// asks for (the refusal's shutdown and linger; once open, what [`Driver::poll_io`]
    /// says: write, shut down, done); then records the interest and the deadline.
    fn settle(&mut self, now: At) {
        self.write = false;
        while !self.done {
            let mut slices = [IoSlice::new(&self.head); 32];
            let n = match &mut self.phase {
                _ if !self.head.is_empty() => 1,
                Phase::Open(driver) => match driver.poll_io(now) {
                    Next::Io(io) => {
                        (self.read, self.write, self.deadline) = (io.read, io.write, io.deadline);
                        match io.write {
                            true => driver.write_slices(&mut slices),
                            false => return,
                        }
                    }
                    Next::Shutdown => {
                        let _ = self.stream.shutdown(Shutdown::Write);
                        driver.shutdown_done();
                        continue;
                    }
                    Next::Done => return self.done = true,
                },
                Phase::Refusing(linger @ Some(_), _) => {
                    // The refusal is out: shut our side, then read until the client closes.
                    let _ = self.stream.shutdown(Shutdown::Write);
                    return self.deadline = linger.take().map(|linger| now + linger);
                }
                Phase::Handshake(handshake) => {
                    return self.write = matches!(handshake.0, Side::Client(_, _, false))
                }
                Phase::Refusing(None, _) => return,
            };
            match self.stream.write_vectored(&slices[..n]) {
                Ok(0) => drop(self.fail(ErrorKind::WriteZero.into())),
                Ok(n) => match &mut self.phase {
                    _ if !self.head.is_empty() => drop(self.head.drain(..n)),
                    Phase::Open(driver) => driver.advance(n),
                    _ => {}
                },
                Err(e) if e.kind() == ErrorKind::WouldBlock => return self.write = true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => drop(self.fail(e)),
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
        let now = self.clock.at(now);
        let paused = !self.read;
        self.settle(now);
        // Whether the socket is known to be drained, so only buffered input is processed
        // (a writable event may resume reading that backpressure had paused).
        let mut drained = !(readable || (paused && self.read));
        let mut eof = false;
        self.dispatching = true;
        while !self.done {
            match &mut self.phase {
                Phase::Open(driver) if !driver.is_writable() => {
                    // Backpressure: what the handler would send has no room; write first,
                    // and leave the rest of the input for when the queue drains.
                    self.settle(now);
                    if !self.is_writable() {
                        break;
                    }
                    continue;
                }
                Phase::Open(driver) => {
                    if let Some(message) = driver.poll_message(now) {
                        handler.on_message(self, message);
                        continue;
                    }
                }
                Phase::Handshake(_) => {
                    if self.handshake(now, eof, handler) {
                        self.settle(now);
                        if self.is_open() {
                            handler.on_open(self);
                        }
                        continue;
                    }
                }
                // Refusing: done at the client's end of stream, or once it sent too much.
                Phase::Refusing(None, left) if eof || *left == 0 => self.close_now(),
                Phase::Refusing(..) => {}
            }
            if drained {
                break;
            }
            self.settle(now);
            let mut was_short = false;
            let read = reader(&mut self.stream, &mut was_short);
            let read = match &mut self.phase {
                _ if self.done => break,
                Phase::Open(driver) if self.read => driver.read_with(read),
                Phase::Refusing(None, left) => {
                    let read = read(&mut [0; 4096]);
                    if let Poll::Ready(Ok(n)) = read {
                        *left = left.saturating_sub(n);
                    }
                    read
                }
                Phase::Handshake(handshake) if self.head.is_empty() => match &mut handshake.0 {
                    Side::Server(upgrade, _) => upgrade.read_with(read),
                    Side::Client(upgrade, _, true) => upgrade.read_with(read),
                    Side::Client(..) => break,
                },
                _ => break,
            };
            match read {
                Poll::Ready(Ok(n)) => (drained, eof) = (short && was_short, n == 0),
                Poll::Ready(Err(error)) => drop(self.fail(error)),
                Poll::Pending => break,
            }
        }
        self.dispatching = false;
        self.settle(now);
    }

    /// The handshake with what has been read (a client first waits for its TCP
    /// connect, then writes its request); `true` once the phase changed or the session
    /// failed. `eof`: the last read found the end of stream.
    fn handshake(&mut self, now: At, eof: bool, handler: &mut dyn Handler) -> bool {
        let Phase::Handshake(handshake) = &mut self.phase else {
            return false;
        };
        let (side, settings) = &mut **handshake;
        let settings = *settings;
        let left = || io::Error::new(ErrorKind::UnexpectedEof, "peer left during the handshake");
        let (connection, response, protocol, compression, early) = match side {
            Side::Client(_, _, connected @ false) => {
                let status = self.stream.take_error().and_then(|error| match error {
                    Some(error) => Err(error),
                    None => self.stream.peer_addr().map(drop),
                });
                match status {
                    Err(e) if e.kind() == ErrorKind::NotConnected => return false,
                    Err(error) => return self.fail(error),
                    Ok(()) => *connected = true,
                }
                self.deadline = settings.handshake_timeout.map(|t| now + t);
                self.settle(now);
                return false;
            }
            Side::Client(upgrade, seed, true) => match upgrade.poll() {
                Ok(Some(ClientAnswer::Accepted {
                    protocol,
                    compression,
                    early,
                    ..
                })) => {
                    let connection = Connection::new(Role::Client, settings.protocol, *seed, now);
                    (connection, Vec::new(), protocol, compression, early)
                }
                Ok(Some(ClientAnswer::Rejected(rejected))) => {
                    return self.finish_with(Error::Rejected(rejected))
                }
                Ok(None) if eof => return self.finish_with(Error::Io(left())),
                Ok(None) => return false,
                Err(error) => return self.finish_with(Error::Response(error)),
            },
            Side::Server(upgrade, decide) => {
                let (answer, path) = match upgrade.poll_head() {
                    None if eof => return self.finish_with(Error::Io(left())),
                    None => return false,
                    Some(Err(refusal)) => (refusal, None),
                    Some(Ok(head)) => {
                        let verdict = match decide.take() {
                            Some(decide) => decide(&head),
                            None => handler.on_request(&head),
                        };
                        match upgrade.answer(verdict) {
                            Some(answer) => (answer, Some(head.path().into())),
                            None => return false,
                        }
                    }
                };
                match answer {
                    ServerAnswer::Accept {
                        response,
                        protocol,
                        compression,
                        early,
                        ..
                    } => {
                        self.path = path;
                        let connection = Connection::server(settings.protocol, now);
                        (connection, response, protocol, compression, early)
                    }
                    ServerAnswer::Refuse { response, refusal } => {
                        let linger = settings.refusal_linger;
                        self.phase = Phase::Refusing(Some(linger), REFUSAL_DRAIN);
                        self.error = Some(Box::new(Error::Refused(refusal)));
                        (self.head, self.deadline) = (response, Some(now + linger));
                        return true;
                    }
                }
            }
        };
        let mut driver = Driver::new(connection, settings.buffers);
        #[cfg(feature = "tracing")]
        driver.set_span(self.span.clone());
        driver.push_bytes(&early);
        driver.set_protocol(protocol);
        if let Some((params, config)) = compression {
            driver.enable_compression(params, config);
        }
        (self.head, self.deadline) = (response, None);
        self.phase = Phase::Open(Box::new(driver));
        true
    }
}

impl Source for Session {
    fn register(&mut self, registry: &Registry, token: Token, with: Interest) -> io::Result<()> {
        self.registered = Some(with);
        self.stream.register(registry, token, with)
    }

    fn reregister(&mut self, registry: &Registry, token: Token, with: Interest) -> io::Result<()> {
        self.registered = Some(with);
        self.stream.reregister(registry, token, with)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.registered = None;
        self.stream.deregister(registry)
    }
}
