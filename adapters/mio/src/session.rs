//! [`Session`]: one WebSocket connection over a non-blocking `mio` TCP stream, driven by
//! readiness events. The handshake is a phase of the session; once open, the session
//! does what the engine's [`Driver::poll_io`] says (read, write, sleep until, shut down,
//! done) and holds no lifecycle policy of its own.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::task::Poll;
use std::time::Duration;

use mio::event::Event;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use sockeye_engine::{
    ClientAnswer, ClientUpgrade, Driver, Message, Next, Outcome, RequestExtras, RequestHead,
    ServerAnswer, ServerUpgrade, Settings, Verdict,
};
use sockeye_proto::handshake::{ClientRequest, Url};
use sockeye_proto::{CloseCode, Connection, DataKind, Instant, Role, SendError, State, StdClock};

use crate::{Error, Handler};

/// The application's callback deciding an upgrade request.
type Decide = Box<dyn FnOnce(&RequestHead) -> Verdict + Send>;

/// Where a session stands. Every phase with state keeps it boxed, so a session is small
/// (an idle server holds many): the handshake's state, with the settings (which only the
/// handshake needs), is freed once the connection is open.
enum Phase {
    /// Server: reading the request head.
    Accepting(Box<Accepting>),
    /// Client: waiting for the TCP connect, writing the request, reading the response.
    Connecting(Box<Connecting>),
    /// The WebSocket connection, its whole life in the engine's driver.
    Open(Box<Driver>),
    /// Server: writing a refusal, then reading what the client still sends until it
    /// closes (so closing does not reset the connection before the response is read).
    Refusing(Duration),
    /// Nothing more to do.
    Closed,
}

/// A server's handshake.
struct Accepting {
    upgrade: ServerUpgrade,
    decide: Option<Decide>,
    settings: Settings,
}

/// A client's handshake.
struct Connecting {
    connected: bool,
    upgrade: ClientUpgrade,
    seed: [u8; 32],
    settings: Settings,
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
    head_written: usize,
    /// The next deadline: the handshake's, the refusal linger's, or the driver's.
    deadline: Option<Instant>,
    path: Option<Box<str>>,
    /// Why the session failed, once it has.
    error: Option<Box<Error>>,
    /// The driver asked to read (false while its send queue is full, at end of stream,
    /// after the end).
    read_wanted: bool,
    /// The driver (or the handshake) has bytes to write.
    write_wanted: bool,
    /// An event reported the read side closed (or an error): from then on every read
    /// goes on until `WouldBlock` or end of stream, because no further event may come
    /// for bytes, or an end of stream, that are already waiting.
    hangup_seen: bool,
    /// Inside a handler call: sends are written after it returns.
    dispatching: bool,
    done: bool,
    registered: Option<Interest>,
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
    target_os = "ios",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "tvos",
    target_os = "visionos",
    target_os = "watchos",
));

/// One non-blocking read: `Pending` when the socket would block.
fn read_once(stream: &mut TcpStream, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    loop {
        return match stream.read(buf) {
            Ok(n) => Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Poll::Ready(Err(e)),
        };
    }
}

fn random_bytes() -> Result<[u8; 48], Error> {
    let mut random = [0u8; 48];
    getrandom::getrandom(&mut random).map_err(|e| Error::Io(io::Error::other(e.to_string())))?;
    Ok(random)
}

impl Session {
    fn new(stream: TcpStream, now: std::time::Instant, phase: Phase) -> Self {
        Session {
            stream,
            clock: StdClock::with_epoch(now),
            phase,
            head: Vec::new(),
            head_written: 0,
            deadline: None,
            path: None,
            error: None,
            read_wanted: true,
            write_wanted: false,
            hangup_seen: false,
            dispatching: false,
            done: false,
            registered: None,
        }
    }

    /// A server session on a freshly accepted `stream`: reads the request and accepts it
    /// (no subprotocol) or writes its refusal (400 / 426 / 431) and closes, within
    /// [`Settings::handshake_timeout`].
    pub fn server(
        stream: TcpStream,
        settings: impl Into<Settings>,
        now: std::time::Instant,
    ) -> Self {
        let settings = settings.into();
        let phase = Phase::Accepting(Box::new(Accepting {
            upgrade: ServerUpgrade::new(settings.head_limits),
            decide: None,
            settings,
        }));
        let mut session = Session::new(stream, now, phase);
        session.deadline = settings.handshake_timeout.map(|t| Instant::ZERO + t);
        session
    }

    /// As [`Session::server`], with `decide` seeing the request (path, query, headers,
    /// offered subprotocols; plain HTTP requests too, with
    /// [`RequestHead::is_upgrade`] false) and answering with a [`Verdict`].
    pub fn server_with(
        stream: TcpStream,
        settings: impl Into<Settings>,
        now: std::time::Instant,
        decide: impl FnOnce(&RequestHead) -> Verdict + Send + 'static,
    ) -> Self {
        let mut session = Session::server(stream, settings, now);
        if let Phase::Accepting(accepting) = &mut session.phase {
            accepting.decide = Some(Box::new(decide));
        }
        session
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
        now: std::time::Instant,
    ) -> Result<Self, Error> {
        let settings = settings.into();
        let random = random_bytes()?;
        let mut nonce = [0u8; 16];
        let mut seed = [0u8; 32];
        nonce.copy_from_slice(&random[..16]);
        seed.copy_from_slice(&random[16..]);
        let (upgrade, bytes) =
            ClientUpgrade::new(nonce, request, settings.head_limits).map_err(Error::Request)?;
        let phase = Phase::Connecting(Box::new(Connecting {
            connected: false,
            upgrade,
            seed,
            settings,
        }));
        let mut session = Session::new(stream, now, phase);
        session.head = bytes;
        session.write_wanted = true;
        session.deadline = settings
            .connect_timeout
            .or(settings.handshake_timeout)
            .map(|t| Instant::ZERO + t);
        Ok(session)
    }

    /// Starts a client session for a `ws://host[:port]/path` URL: resolves the host (a
    /// blocking lookup unless it is an IP address), starts a non-blocking TCP connect
    /// (`TCP_NODELAY` on) and returns the session; register it and drive it as usual.
    /// `wss://` is [`Error::TlsRequired`].
    pub fn connect_url(
        url: &str,
        settings: impl Into<Settings>,
        now: std::time::Instant,
    ) -> Result<Self, Error> {
        Session::connect_url_with(url, &RequestExtras::new(), settings, now)
    }

    /// As [`connect_url`](Self::connect_url), offering subprotocols and sending headers
    /// (`Authorization`, `Cookie`, `Origin` ...) with the upgrade request.
    pub fn connect_url_with(
        url: &str,
        extras: &RequestExtras,
        settings: impl Into<Settings>,
        now: std::time::Instant,
    ) -> Result<Self, Error> {
        let url = Url::parse(url)?;
        if url.is_tls() {
            return Err(Error::TlsRequired);
        }
        let addr: SocketAddr = (url.host(), url.port())
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host has no address"))?;
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let (protocols, headers) = extras.borrowed();
        let request = url
            .request()
            .with_protocols(&protocols)
            .with_headers(&headers);
        Session::client(stream, &request, settings, now)
    }

    /// Reads until the socket would block (or the send queue is full), calling `handle`
    /// with each message as it is parsed: what `handle` sends goes out before anything
    /// after that message is processed (so a reply is sent even when the peer then breaks
    /// the protocol). Handshake phases advance here too: a server answers the request
    /// once it is complete, a client checks the response. Pongs and Close replies are
    /// queued and written here.
    pub fn on_readable(
        &mut self,
        now: std::time::Instant,
        mut handle: impl FnMut(&mut Session, Message),
    ) {
        self.on_readable_with(now, &mut handle);
    }

    /// [`on_readable`](Self::on_readable) with a whole [`Handler`] (requests for a
    /// session without its own callback, opening, messages).
    pub fn on_readable_with(&mut self, now: std::time::Instant, handler: &mut dyn Handler) {
        let now = self.clock.at(now);
        self.drive(now, true, false, handler);
    }

    /// Writes what is queued (and, for a client, completes the TCP connect and writes
    /// the request). If reading had stopped for backpressure and the queue drained,
    /// reading resumes, calling `handle` for each message read.
    pub fn on_writable(
        &mut self,
        now: std::time::Instant,
        mut handle: impl FnMut(&mut Session, Message),
    ) {
        self.on_writable_with(now, &mut handle);
    }

    /// [`on_writable`](Self::on_writable) with a whole [`Handler`].
    pub fn on_writable_with(&mut self, now: std::time::Instant, handler: &mut dyn Handler) {
        let now = self.clock.at(now);
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
        now: std::time::Instant,
        mut handle: impl FnMut(&mut Session, Message),
    ) {
        self.on_event_with(event, now, &mut handle);
    }

    /// [`on_event`](Self::on_event) with a whole [`Handler`].
    pub fn on_event_with(
        &mut self,
        event: &Event,
        now: std::time::Instant,
        handler: &mut dyn Handler,
    ) {
        let hangup = event.is_read_closed() || event.is_error();
        self.hangup_seen |= hangup;
        let short_read_drains = SHORT_READ_DRAINS && !self.hangup_seen;
        let now = self.clock.at(now);
        if event.is_readable() || hangup {
            self.drive(now, true, short_read_drains, handler);
        }
        if event.is_writable() || event.is_error() {
            self.drive(now, false, short_read_drains, handler);
        }
    }

    /// Writes what is queued now, as far as the socket takes it (the rest goes out on
    /// writable events).
    pub fn flush(&mut self, now: std::time::Instant) {
        let now = self.clock.at(now);
        self.settle(now);
    }

    /// Fires what expired at `now`: the handshake timeout (the session ends with
    /// [`Error::HandshakeTimeout`]), the driver's deadlines (keepalive, close timeout,
    /// write stall, the linger after the end), the refusal linger. Harmless when called
    /// early.
    pub fn on_timeout(&mut self, now: std::time::Instant) {
        let now = self.clock.at(now);
        let expired = self.deadline.is_some_and(|deadline| deadline <= now);
        if self.done || !expired {
            return;
        }
        match &mut self.phase {
            Phase::Accepting(_) => self.finish_with(Error::HandshakeTimeout),
            Phase::Connecting(connecting) => {
                let error = if connecting.connected {
                    // A server that said no but never finished its body still said no.
                    connecting.upgrade.timed_out()
                } else {
                    Error::ConnectTimeout
                };
                self.finish_with(error);
            }
            Phase::Refusing(_) => self.close_now(),
            Phase::Open(driver) => {
                driver.handle_deadline(now);
                self.settle(now);
            }
            Phase::Closed => {}
        }
    }

    /// The next deadline as a time to wait from `now` (zero if it passed): pass the
    /// smallest over all sessions to [`mio::Poll::poll`], then call
    /// [`on_timeout`](Self::on_timeout).
    pub fn next_timeout(&self, now: std::time::Instant) -> Option<Duration> {
        self.deadline_std()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// The next deadline, as a `std::time::Instant`.
    pub fn deadline_std(&self) -> Option<std::time::Instant> {
        if self.done {
            return None;
        }
        self.deadline.map(|deadline| self.clock.to_std(deadline))
    }

    /// Queues a message (text, binary, ping, pong, close) and writes what the socket
    /// takes now. Fails while the handshake runs ([`Error::Handshaking`]) and after the
    /// end ([`Error::Closed`]). The queue is not bounded here: check
    /// [`is_writable`](Self::is_writable) to apply backpressure.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        let now = self.clock.now();
        self.open_driver()?
            .send(message, now)
            .map_err(Error::from)?;
        self.sent(now);
        Ok(())
    }

    /// Queues one frame of a fragmented message (`fin == false` continues it), and
    /// writes what the socket takes now.
    pub fn send_fragment(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        self.open_driver()?
            .send_frame(kind, fin, payload)
            .map_err(Error::from)?;
        self.sent(now);
        Ok(())
    }

    /// Inside a handler the bytes go out after the handler (one write for many).
    fn sent(&mut self, now: Instant) {
        if !self.dispatching {
            self.settle(now);
        }
    }

    /// Starts the close handshake with `code` and `reason` (at most 123 bytes). The end
    /// comes with the peer's answer (or the close timeout): keep driving the session
    /// until [`is_done`](Self::is_done). Does nothing if the close handshake already
    /// started; ends a handshaking session at once.
    pub fn close(
        &mut self,
        code: CloseCode,
        reason: &str,
        now: std::time::Instant,
    ) -> Result<(), Error> {
        let now = self.clock.at(now);
        match &mut self.phase {
            Phase::Open(driver) if !driver.is_finished() => {
                if driver.connection().state() == State::Open {
                    match driver.close(code, reason, now) {
                        Ok(()) | Err(SendError::Closed) => {}
                        Err(error) => return Err(Error::Send(error)),
                    }
                }
                self.sent(now);
            }
            Phase::Accepting(_) | Phase::Connecting(_) => self.finish_with(Error::Closed),
            _ => {}
        }
        Ok(())
    }

    /// The interest to register: `READABLE`, plus `WRITABLE` while bytes wait to be
    /// written (or a client's TCP connect is in progress).
    pub fn interest(&self) -> Interest {
        if self.write_wanted && !self.done {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        }
    }

    /// Registers the session's socket with its [`interest`](Self::interest).
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        registry.register(&mut self.stream, token, interest)?;
        self.registered = Some(interest);
        Ok(())
    }

    /// Re-registers the socket if its [`interest`](Self::interest) changed since the
    /// last registration (call after handling the session's events).
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let interest = self.interest();
        if self.done || self.registered == Some(interest) {
            return Ok(());
        }
        registry.reregister(&mut self.stream, token, interest)?;
        self.registered = Some(interest);
        Ok(())
    }

    /// Removes the socket from `registry`.
    pub fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.registered = None;
        registry.deregister(&mut self.stream)
    }

    /// Whether the handshake is done and the connection has not ended.
    pub fn is_open(&self) -> bool {
        matches!(&self.phase, Phase::Open(driver) if !driver.is_finished())
    }

    /// Whether the session is over: nothing more to read or write. Drop it.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Backpressure: whether the send queue is within its bound.
    pub fn is_writable(&self) -> bool {
        match &self.phase {
            Phase::Open(driver) => driver.is_writable(),
            _ => true,
        }
    }

    /// Bytes queued but not written yet.
    pub fn pending_bytes(&self) -> usize {
        let queued = match &self.phase {
            Phase::Open(driver) => driver.pending_bytes(),
            _ => 0,
        };
        queued + self.head.len() - self.head_written
    }

    /// How the connection ended, once it has (after the handshake).
    pub fn outcome(&self) -> Option<Outcome> {
        match &self.phase {
            Phase::Open(driver) => driver.outcome().cloned(),
            _ => None,
        }
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
        match &self.phase {
            Phase::Open(driver) => driver.protocol(),
            _ => None,
        }
    }

    /// The socket.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    fn open_driver(&mut self) -> Result<&mut Driver, Error> {
        match &mut self.phase {
            Phase::Open(driver) if !driver.is_finished() && !driver.is_write_closed() => Ok(driver),
            Phase::Accepting(_) | Phase::Connecting(_) => Err(Error::Handshaking),
            _ => Err(Error::Closed),
        }
    }

    /// Ends a handshaking session with `error`.
    fn finish_with(&mut self, error: Error) {
        self.error.get_or_insert(Box::new(error));
        self.close_now();
    }

    fn close_now(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.done = true;
        self.deadline = None;
        self.write_wanted = false;
        if !matches!(self.phase, Phase::Open(_)) {
            self.phase = Phase::Closed;
        }
        self.head = Vec::new();
        self.head_written = 0;
    }

    /// The transport failed.
    fn fail(&mut self, error: io::Error) {
        if let Phase::Open(driver) = &mut self.phase {
            driver.fail_io(error.kind());
        }
        self.finish_with(Error::Io(error));
    }

    /// Writes the handshake bytes until the socket would block. `true` once they are
    /// all out.
    fn write_head(&mut self) -> bool {
        while self.head_written < self.head.len() {
            match self.stream.write(&self.head[self.head_written..]) {
                Ok(0) => {
                    self.fail(io::ErrorKind::WriteZero.into());
                    return false;
                }
                Ok(n) => self.head_written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(e);
                    return false;
                }
            }
        }
        self.head = Vec::new();
        self.head_written = 0;
        true
    }

    /// Does what the phase asks for writing: the handshake bytes, then, once open, what
    /// [`Driver::poll_io`] says (write, shut down, done), until the socket would block;
    /// then records the interest and the deadline to wait for.
    fn settle(&mut self, now: Instant) {
        if self.done {
            return;
        }
        let head_out = self.write_head();
        if self.done {
            return;
        }
        match &mut self.phase {
            Phase::Refusing(linger) if head_out => {
                // The refusal is out: shut our side, then read until the client closes
                // (bounded).
                let linger = *linger;
                let _ = self.stream.shutdown(Shutdown::Write);
                self.phase = Phase::Refusing(Duration::ZERO);
                if linger > Duration::ZERO {
                    self.deadline = Some(now + linger);
                }
                self.write_wanted = false;
            }
            Phase::Open(_) if head_out => self.settle_open(now),
            Phase::Connecting(connecting) => {
                self.write_wanted = !head_out || !connecting.connected;
            }
            _ => self.write_wanted = !head_out,
        }
    }

    fn settle_open(&mut self, now: Instant) {
        for _ in 0..1024 {
            let Phase::Open(driver) = &mut self.phase else {
                return;
            };
            let io = match driver.poll_io(now) {
                Next::Done => {
                    self.done = true;
                    self.deadline = None;
                    self.write_wanted = false;
                    return;
                }
                Next::Shutdown => {
                    let _ = self.stream.shutdown(Shutdown::Write);
                    driver.shutdown_done();
                    continue;
                }
                Next::Io(io) => io,
            };
            self.read_wanted = io.read;
            self.write_wanted = io.write;
            self.deadline = io.deadline;
            if !io.write {
                return;
            }
            let result = {
                let mut slices = [IoSlice::new(&[]); 32];
                let n = driver.write_slices(&mut slices);
                self.stream.write_vectored(&slices[..n])
            };
            match result {
                Ok(0) => return self.fail(io::ErrorKind::WriteZero.into()),
                Ok(n) => driver.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(e),
            }
        }
    }

    /// Advances the session: handshake phases, then reading (when `readable`, or when
    /// the driver resumes reading after backpressure) and writing the open connection.
    ///
    /// `short_read_drains`: a read that returns less than it asked for ends reading (the
    /// caller knows no end of stream is waiting unannounced; see
    /// [`on_event`](Self::on_event)).
    fn drive(
        &mut self,
        now: Instant,
        readable: bool,
        short_read_drains: bool,
        handler: &mut dyn Handler,
    ) {
        // A handshake read that came back short leaves nothing for the open phase to read.
        let mut drained = false;
        // A writable event may resume reading that backpressure had paused.
        let was_paused = !self.read_wanted;
        self.settle(now);
        let readable = readable || (was_paused && self.read_wanted);
        // Each turn either moves to the next phase or returns.
        for _ in 0..4 {
            if self.done {
                return;
            }
            match self.phase {
                Phase::Accepting(_) => {
                    if !readable
                        || !self.accept_request(now, short_read_drains, &mut drained, handler)
                    {
                        return self.settle(now);
                    }
                    self.settle(now);
                    if self.is_open() {
                        handler.on_open(self);
                    }
                }
                Phase::Connecting(_) => {
                    if !self.client_handshake(now, readable, short_read_drains, &mut drained) {
                        return;
                    }
                    self.settle(now);
                    if self.is_open() {
                        handler.on_open(self);
                    }
                }
                Phase::Open(_) => {
                    self.dispatching = true;
                    self.read_messages(now, short_read_drains, drained || !readable, handler);
                    self.dispatching = false;
                    return self.settle(now);
                }
                Phase::Refusing(_) => {
                    if readable && self.head.is_empty() {
                        self.discard_input();
                    }
                    return;
                }
                Phase::Closed => return,
            }
        }
    }

    /// Server: reads the request; `true` once the phase changed.
    ///
    /// `drained`: set when the last read came back short and `short_read_drains`.
    fn accept_request(
        &mut self,
        now: Instant,
        short_read_drains: bool,
        drained: &mut bool,
        handler: &mut dyn Handler,
    ) -> bool {
        let Phase::Accepting(accepting) = &mut self.phase else {
            return false;
        };
        let Accepting {
            upgrade,
            decide,
            settings,
        } = &mut **accepting;
        let settings = *settings;
        let stream = &mut self.stream;
        let mut path = None;
        let answer = loop {
            let mut asked = 0;
            let read = upgrade.read_with(|buf| {
                asked = buf.len();
                read_once(stream, buf)
            });
            let n = match read {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(error)) => {
                    self.fail(error);
                    return true;
                }
                Poll::Pending => return false,
            };
            *drained = short_read_drains && n > 0 && n < asked;
            let answer = match upgrade.poll_head() {
                Some(Err(refusal)) => Some(refusal),
                Some(Ok(head)) => {
                    path = Some(head.path().to_owned());
                    let verdict = match decide.take() {
                        Some(decide) => decide(&head),
                        None => handler.on_request(&head),
                    };
                    upgrade.answer(verdict)
                }
                None => None,
            };
            if let Some(answer) = answer {
                break answer;
            }
            if n == 0 {
                let error = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "peer left during the handshake",
                );
                self.finish_with(Error::Io(error));
                return true;
            }
            if *drained {
                // The rest of the request comes with a later event.
                return false;
            }
        };
        self.head_written = 0;
        match answer {
            ServerAnswer::Accept {
                response,
                protocol,
                early,
                ..
            } => {
                let connection = Connection::server(settings.protocol, now);
                let mut driver = Driver::new(connection, settings.buffers);
                driver.push_bytes(&early);
                driver.set_protocol(protocol);
                self.head = response;
                self.path = path.map(String::into_boxed_str);
                self.deadline = None;
                self.phase = Phase::Open(Box::new(driver));
            }
            ServerAnswer::Refuse { response, refusal } => {
                self.head = response;
                self.error = Some(Box::new(Error::Refused(refusal)));
                self.phase = Phase::Refusing(settings.refusal_linger);
                self.deadline = Some(now + settings.refusal_linger);
            }
        }
        true
    }

    /// Client: connect, write the request, read the response; `true` once the phase
    /// changed. `drained`: as for [`accept_request`](Self::accept_request).
    fn client_handshake(
        &mut self,
        now: Instant,
        readable: bool,
        short_read_drains: bool,
        drained: &mut bool,
    ) -> bool {
        let Phase::Connecting(connecting) = &mut self.phase else {
            return false;
        };
        if !connecting.connected {
            let status = match self.stream.take_error() {
                Ok(Some(error)) | Err(error) => Err(error),
                Ok(None) => match self.stream.peer_addr() {
                    Ok(_) => Ok(true),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
                    Err(e) => Err(e),
                },
            };
            match status {
                Ok(true) => {
                    connecting.connected = true;
                    self.deadline = connecting.settings.handshake_timeout.map(|t| now + t);
                }
                Ok(false) => return false,
                Err(error) => {
                    self.fail(error);
                    return true;
                }
            }
        }
        self.settle(now);
        if self.done {
            return true;
        }
        if !self.head.is_empty() || !readable {
            return false;
        }
        let Phase::Connecting(connecting) = &mut self.phase else {
            return false;
        };
        let Connecting {
            upgrade,
            seed,
            settings,
            ..
        } = &mut **connecting;
        let stream = &mut self.stream;
        let answer = loop {
            let mut asked = 0;
            let read = upgrade.read_with(|buf| {
                asked = buf.len();
                read_once(stream, buf)
            });
            let n = match read {
                Poll::Ready(Ok(n)) => n,
                Poll::Ready(Err(error)) => {
                    self.fail(error);
                    return true;
                }
                Poll::Pending => return false,
            };
            *drained = short_read_drains && n > 0 && n < asked;
            match upgrade.poll() {
                Ok(Some(answer)) => break answer,
                Ok(None) if n == 0 => {
                    let error = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "server left during the handshake",
                    );
                    self.finish_with(Error::Io(error));
                    return true;
                }
                // The rest of the response comes with a later event.
                Ok(None) if *drained => return false,
                Ok(None) => {}
                Err(error) => {
                    self.finish_with(Error::Response(error));
                    return true;
                }
            }
        };
        match answer {
            ClientAnswer::Accepted {
                protocol, early, ..
            } => {
                let connection = Connection::new(Role::Client, settings.protocol, *seed, now);
                let mut driver = Driver::new(connection, settings.buffers);
                driver.push_bytes(&early);
                driver.set_protocol(protocol);
                self.deadline = None;
                self.phase = Phase::Open(Box::new(driver));
            }
            ClientAnswer::Rejected(response) => self.finish_with(Error::Rejected(response)),
        }
        true
    }

    /// Open: processes buffered input and reads while the driver asks to (the socket
    /// would block, or with `short_read_drains` a read came back short; the send queue is
    /// full; the connection ended), handing each message to `handler` before the next is
    /// parsed, and writing between reads when the queue fills. `drained`: the socket is
    /// known to be drained already, so only buffered input is processed.
    fn read_messages(
        &mut self,
        now: Instant,
        short_read_drains: bool,
        mut drained: bool,
        handler: &mut dyn Handler,
    ) {
        loop {
            if self.done {
                return;
            }
            let Phase::Open(driver) = &mut self.phase else {
                return;
            };
            if !driver.is_writable() {
                // Backpressure: what the handler would send has no room; write first,
                // and leave the rest of the input for when the queue drains.
                self.settle(now);
                if !self.is_writable() || self.done {
                    return;
                }
                continue;
            }
            if let Some(message) = driver.poll_message(now) {
                handler.on_message(self, message);
                continue;
            }
            if drained {
                return;
            }
            self.settle(now);
            let Phase::Open(driver) = &mut self.phase else {
                return;
            };
            if self.done || !self.read_wanted {
                return;
            }
            let stream = &mut self.stream;
            let mut asked = 0;
            let read = driver.read_with(|buf| {
                asked = buf.len();
                read_once(stream, buf)
            });
            match read {
                Poll::Ready(Ok(0)) => {}
                Poll::Ready(Ok(n)) => drained = short_read_drains && n < asked,
                Poll::Ready(Err(error)) => return self.fail(error),
                Poll::Pending => return,
            }
        }
    }

    /// Refusing: reads and drops what the client still sends; done at its end of stream.
    fn discard_input(&mut self) {
        let mut buf = [0u8; 4096];
        for _ in 0..64 {
            match read_once(&mut self.stream, &mut buf) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return self.close_now(),
                Poll::Ready(Ok(_)) => {}
                Poll::Pending => return,
            }
        }
        // A client that keeps sending after its refusal: stop listening.
        self.close_now();
    }
}

impl mio::event::Source for Session {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.registered = Some(interests);
        self.stream.register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        self.registered = Some(interests);
        self.stream.reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        self.registered = None;
        self.stream.deregister(registry)
    }
}
