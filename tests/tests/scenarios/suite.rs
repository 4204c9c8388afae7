//! # One scenario suite over every adapter
//!
//! The scenarios are written once, as blocking code against a **scripted raw TCP peer**
//! ([`Raw`]: std sockets, frames built with `sockeye_tests::Frame`), and run against each
//! adapter as a server and as a client. An adapter takes part by implementing the small
//! blocking interface [`Adapter`]; it runs its own runtime on its own thread(s).
//!
//! ## Adding an adapter
//!
//! 1. Add the adapter's package to `[dev-dependencies]` in `tests/Cargo.toml`.
//! 2. Create `tests/tests/scenarios/NAME.rs`:
//!
//!    ```ignore
//!    use crate::suite::*;
//!
//!    #[derive(Clone, Copy)]
//!    pub struct Name;
//!
//!    impl Adapter for Name {
//!        fn start_server(&self, settings: Settings, script: Script) -> Server { .. }
//!        fn run_client(&self, url: &str, settings: Settings, script: Script) -> ClientResult { .. }
//!    }
//!
//!    crate::scenarios!(Name);
//!    ```
//!
//! 3. Add `mod NAME;` to `main.rs`. Every scenario becomes a test `NAME::scenario_name`
//!    (`cargo test -p sockeye-tests --test scenarios NAME::`).
//!
//! ## What an adapter does
//!
//! Both roles run a [`Script`] on an open connection, then keep receiving until the
//! connection is over, and report a [`Run`]: every message received (pings, pongs and
//! the peer's Close included), the [`Outcome`], and any send errors. The steps are in
//! [`Step`] (each says exactly what to do). A whole run is bounded by [`RUN_LIMIT`]: past
//! it the adapter drops the connection and reports an error. `tokio.rs` is the
//! reference implementation (about 100 lines).
//!
//! - [`Adapter::start_server`]: listen on `127.0.0.1:0`; for every accepted connection
//!   run the handshake with `settings` (accepting any path, no subprotocol) and the
//!   script, and send the result on the [`Server`]'s channel: `Ok(run)`, or
//!   `Err(HandshakeFailure)` for a refused or failed handshake (with the HTTP status we
//!   answered). Keep serving until the `Server`'s stop function is called (it is called
//!   when the `Server` is dropped; it must return once the server stopped).
//! - [`Adapter::run_client`]: connect to the `ws://` URL with `settings`, run the script,
//!   and return the run, or the handshake failure (with the server's status for a
//!   non-`101` answer). Blocking.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub use sockeye_engine::{
    Abnormal, CloseReason, DriverConfig, Message, Outcome, RequestHead, Settings, Verdict,
};
pub use sockeye_proto::{CloseCode, Config, DataKind, KeepAlive, Role, Timeout};

use sockeye_proto::frame::{apply_mask, Header, OpCode};
use sockeye_proto::handshake::AcceptKey;
use sockeye_proto::{ProtocolError, Status};
use sockeye_tests::{FaultProxy, Faults, Frame, Length, WireFrame};

/// The longest any run (or any wait in a scenario) may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);
/// How long a raw peer waits for bytes before failing the test.
const READ_LIMIT: Duration = Duration::from_secs(15);

/// One step of a [`Script`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Queue the message and wait until it is written. A failure is recorded in
    /// [`Run::errors`] and the script goes on.
    Send(Message),
    /// Queue the message, waiting only while the send queue is full (backpressure);
    /// then add 1 to [`Script::fed`]. A failure is recorded and the script goes on.
    Feed(Message),
    /// Send a message of `kind` as one frame per part (FIN on the last), then flush.
    Fragments(DataKind, Vec<Vec<u8>>),
    /// Receive one message into [`Run::received`]; if the connection is over instead,
    /// the script stops.
    Recv,
    /// Until the connection is over: receive (recording everything) and send every text
    /// and binary message back unchanged.
    Echo,
    /// Start the close handshake with this code and reason (our Close is written).
    Close(CloseCode, String),
    /// Do nothing for this long (the connection is not driven meanwhile).
    Sleep(Duration),
    /// Queue copies of the message without ever waiting, until the adapter says the send
    /// queue is full (`try_feed`'s `Full`; mio: `is_writable` false), at most 10,000;
    /// record how many were queued in [`Run::queued_before_full`], then go on.
    TryFeedUntilFull(Message),
}

/// What a connection does once open. After the steps, the adapter receives until the
/// connection is over (recording every message).
#[derive(Clone, Debug, Default)]
pub struct Script {
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// How many [`Step::Feed`]s completed, live (shared with the scenario).
    pub fed: Arc<AtomicUsize>,
}

impl Script {
    /// A script of these steps.
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Script {
            steps: steps.into_iter().collect(),
            fed: Arc::default(),
        }
    }

    /// Echo until the end.
    pub fn echo() -> Self {
        Script::new([Step::Echo])
    }

    /// Just receive until the end.
    pub fn listen() -> Self {
        Script::new([])
    }

    /// Adds 1 to the feed counter (for adapters).
    pub fn note_fed(&self) {
        self.fed.fetch_add(1, Ordering::SeqCst);
    }
}

/// What one connection saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Every message received, in order.
    pub received: Vec<Message>,
    /// How the connection ended (`None` only if the run limit cut it short).
    pub outcome: Option<Outcome>,
    /// Send failures and the like, as text.
    pub errors: Vec<String>,
    /// The most bytes the connection's send queue held, as the engine counts them,
    /// seen after each message received and each send.
    pub max_pending: usize,
    /// What the connection carries from the application's verdict (see [`Decide`]).
    pub request: Option<String>,
    /// How many messages [`Step::TryFeedUntilFull`] queued before the queue was full.
    pub queued_before_full: Option<usize>,
}

impl Run {
    /// The outcome, which must be there.
    pub fn outcome(&self) -> &Outcome {
        self.outcome
            .as_ref()
            .unwrap_or_else(|| panic!("no outcome: {self:?}"))
    }

    /// The data messages received.
    pub fn data(&self) -> Vec<&Message> {
        self.received.iter().filter(|m| m.is_data()).collect()
    }
}

/// A handshake that did not open a connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandshakeFailure {
    /// The HTTP status: the one we answered (server) or the server's (client), if any.
    pub status: Option<u16>,
    /// The error, as text.
    pub message: String,
}

/// The result of a client run.
pub type ClientResult = Result<Run, HandshakeFailure>;

/// A running server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// One result per accepted connection, in the order they finished.
    pub runs: mpsc::Receiver<Result<Run, HandshakeFailure>>,
    stop: Option<Box<dyn FnOnce() + Send>>,
}

impl Server {
    /// A server listening on `addr`, stopped by `stop`.
    pub fn new(
        addr: SocketAddr,
        runs: mpsc::Receiver<Result<Run, HandshakeFailure>>,
        stop: impl FnOnce() + Send + 'static,
    ) -> Self {
        Server {
            addr,
            runs,
            stop: Some(Box::new(stop)),
        }
    }

    /// `ws://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// The next connection's result (waits up to [`RUN_LIMIT`]).
    pub fn next(&self) -> Result<Run, HandshakeFailure> {
        self.runs
            .recv_timeout(RUN_LIMIT)
            .expect("the server reported no connection in time")
    }

    /// The next connection's run, which must have opened.
    pub fn next_run(&self) -> Run {
        self.next().expect("the handshake succeeded")
    }
}

impl Server {
    /// The same server behind a [`FaultProxy`] with `faults`: clients reach it through
    /// short pieces and pauses (see [`faulted`](crate::faulted)).
    pub fn behind_proxy(mut self, faults: Faults) -> Server {
        let proxy = FaultProxy::start(self.addr, faults).expect("the fault proxy starts");
        self.addr = proxy.addr();
        let inner = self.stop.take();
        self.stop = Some(Box::new(move || {
            drop(proxy);
            if let Some(stop) = inner {
                stop();
            }
        }));
        self
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop();
        }
    }
}

/// The application's decision on each request, as a server adapter's verdict hook
/// sees it: accept with data for the connection (the async adapters hand it back with
/// the `WebSocket`; mio's sessions keep the request path, which is what a deciding
/// server gives as data here), or answer any status.
pub type Decide = fn(&RequestHead) -> Verdict<String>;

/// The blocking interface an adapter implements (see the module documentation).
pub trait Adapter: Clone + Send + Sync + 'static {
    /// Starts a server on `127.0.0.1:0` running `script` on every connection.
    fn start_server(&self, settings: Settings, script: Script) -> Server {
        self.start_deciding_server(settings, None, script)
    }

    /// [`start_server`](Self::start_server) whose requests are answered by `decide`
    /// (every request without one), through the adapter's verdict hook. The data of an
    /// acceptance goes to [`Run::request`].
    fn start_deciding_server(
        &self,
        settings: Settings,
        decide: Option<Decide>,
        script: Script,
    ) -> Server;

    /// Connects to `url`, runs `script`, and returns what happened.
    fn run_client(&self, url: &str, settings: Settings, script: Script) -> ClientResult;

    /// [`run_client`](Self::run_client) on another thread.
    fn spawn_client(
        &self,
        url: &str,
        settings: Settings,
        script: Script,
    ) -> thread::JoinHandle<ClientResult> {
        let adapter = self.clone();
        let url = url.to_owned();
        thread::spawn(move || adapter.run_client(&url, settings, script))
    }
}

// ---------------------------------------------------------------------------------------
// The scripted raw peer.

/// A raw WebSocket peer over a blocking std socket: writes any bytes or frames, reads
/// frames one at a time. Client frames are masked ([`Frame::from_role`]).
pub struct Raw {
    /// The socket.
    pub stream: TcpStream,
    /// This peer's role.
    pub role: Role,
    buf: Vec<u8>,
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the adapter");
    stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A valid upgrade request for `path`.
pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Sends `request` on a fresh connection and returns everything the server wrote until
/// it closed the connection.
pub fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = tcp(addr);
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        // A reset after the response was read still shows the response.
        Err(error) if error.kind() == ErrorKind::ConnectionReset && !response.is_empty() => {}
        Err(error) => panic!("reading the response: {error} (got {response:?})"),
    }
    String::from_utf8_lossy(&response).into_owned()
}

impl Raw {
    /// Opens a WebSocket to the adapter's server at `addr` by hand.
    pub fn client(addr: SocketAddr, path: &str) -> Raw {
        let mut stream = tcp(addr);
        stream.write_all(upgrade_request(path).as_bytes()).unwrap();
        let mut raw = Raw {
            stream,
            role: Role::Client,
            buf: Vec::new(),
        };
        let head = raw.read_head();
        assert!(
            head.starts_with("HTTP/1.1 101 "),
            "expected 101, got {head:?}"
        );
        assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head:?}");
        raw
    }

    fn read_head(&mut self) -> String {
        let deadline = Instant::now() + READ_LIMIT;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                self.buf.drain(..end + 4);
                return head;
            }
            assert!(Instant::now() < deadline, "no HTTP head in time");
            assert!(
                self.fill(),
                "EOF before the HTTP head ended: {:?}",
                self.buf
            );
        }
    }

    /// Reads more bytes into the buffer; false at EOF.
    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(error) if error.kind() == ErrorKind::ConnectionReset => false,
            Err(error) => panic!("raw peer read: {error}"),
        }
    }

    /// Sends a frame (masked when this peer is a client).
    pub fn send(&mut self, frame: Frame) {
        let bytes = frame.from_role(self.role).encode();
        self.send_bytes(&bytes);
    }

    /// Sends raw bytes.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("raw peer write");
    }

    /// The next frame, or `None` at end of stream. Panics after [`READ_LIMIT`] of silence.
    pub fn frame(&mut self) -> Option<WireFrame> {
        loop {
            if let Ok(Status::Complete((header, len))) = Header::decode(&self.buf) {
                let end = len + usize::try_from(header.payload_len).unwrap();
                if self.buf.len() >= end {
                    let mut payload = self.buf[len..end].to_vec();
                    if let Some(key) = header.mask {
                        apply_mask(&mut payload, key, 0);
                    }
                    self.buf.drain(..end);
                    return Some(WireFrame {
                        fin: header.fin,
                        rsv: header.rsv,
                        opcode: header.opcode,
                        mask: header.mask,
                        payload,
                    });
                }
            }
            if !self.fill() {
                assert!(self.buf.is_empty(), "EOF inside a frame: {:?}", self.buf);
                return None;
            }
        }
    }

    /// The next frame, which must be there.
    pub fn expect_frame(&mut self) -> WireFrame {
        let frame = self.frame().expect("a frame, not end of stream");
        let masked = frame.mask.is_some();
        assert_eq!(
            masked,
            self.role == Role::Server,
            "frames from a client are masked, from a server not: {frame:?}"
        );
        frame
    }

    /// The next frame, which must have this opcode; returns its payload.
    pub fn expect(&mut self, opcode: OpCode) -> Vec<u8> {
        let frame = self.expect_frame();
        assert_eq!(frame.opcode, opcode, "{frame:?}");
        assert!(frame.fin);
        frame.payload
    }

    /// The next frame must be a Close with this code; returns its reason.
    pub fn expect_close(&mut self, code: CloseCode) -> String {
        let frame = self.expect_frame();
        assert_eq!(frame.opcode, OpCode::Close, "{frame:?}");
        assert_eq!(frame.close_code(), Some(code));
        frame.close_reason().to_owned()
    }

    /// The peer must close the connection (skipping nothing: no frame may come first).
    pub fn expect_eof(&mut self) {
        if let Some(frame) = self.frame() {
            panic!("expected end of stream, got {frame:?}");
        }
    }

    /// Closes our write side (half-close).
    pub fn shutdown_write(&self) {
        self.stream.shutdown(Shutdown::Write).unwrap();
    }
}

/// A raw server for client scenarios.
pub struct RawListener {
    listener: TcpListener,
}

impl RawListener {
    /// Listens on `127.0.0.1:0`.
    pub fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        RawListener { listener }
    }

    /// `ws://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{}", self.listener.local_addr().unwrap(), path)
    }

    /// The next connection (waits up to [`READ_LIMIT`]).
    pub fn accept(&self) -> TcpStream {
        let deadline = Instant::now() + READ_LIMIT;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
                    stream.set_nodelay(true).unwrap();
                    return stream;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "no client connected in time");
                    thread::sleep(Duration::from_millis(5));
                }
                Err(error) => panic!("accept: {error}"),
            }
        }
    }

    /// Accepts a connection, reads the request and answers `response` (`{accept}` in it
    /// is replaced by the right `Sec-WebSocket-Accept`). Returns the peer and the request.
    pub fn accept_with(&self, response: &str) -> (Raw, String) {
        let mut raw = Raw {
            stream: self.accept(),
            role: Role::Server,
            buf: Vec::new(),
        };
        let request = raw.read_head();
        let key = request
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key")
                    .then(|| value.trim().to_owned())
            })
            .expect("the request has a key");
        let accept = AcceptKey::derive(key.as_bytes());
        let response = response.replace("{accept}", accept.as_str());
        raw.send_bytes(response.as_bytes());
        (raw, request)
    }

    /// Accepts a WebSocket connection by hand.
    pub fn accept_ws(&self) -> Raw {
        let (raw, request) = self.accept_with(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n\r\n",
        );
        assert!(request.starts_with("GET "), "{request:?}");
        raw
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn text_of(len: usize) -> String {
    // Multi-byte characters too, cut to a character boundary near `len` bytes.
    let unit = "sockeye héllo wörld → ✓ ";
    let mut text = unit.repeat(len / unit.len() + 1);
    let mut cut = len.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text
}

fn bytes_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

/// Sizes from empty to over 1 MiB, around every length-encoding boundary.
pub const SIZES: &[usize] = &[
    0,
    1,
    125,
    126,
    127,
    1000,
    65_535,
    65_536,
    65_537,
    200_000,
    (1 << 20) + 1,
];

fn close_message(code: CloseCode, reason: &str) -> Message {
    Message::Close(Some(CloseReason::new(code, reason)))
}

fn assert_clean(run: &Run, received: Option<(CloseCode, &str)>, initiated_locally: bool) {
    match run.outcome() {
        Outcome::Clean {
            received: got,
            initiated_locally: local,
            ..
        } => {
            let got = got.as_ref().map(|c| (c.code, c.reason.as_str()));
            assert_eq!(got, received, "{run:?}");
            assert_eq!(*local, initiated_locally, "{run:?}");
        }
        other => panic!("expected a clean close, got {other} in {run:?}"),
    }
}

fn within(limit: Duration, started: Instant, what: &str) {
    let took = started.elapsed();
    assert!(took < limit, "{what} took {took:?} (limit {limit:?})");
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + RUN_LIMIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Instantiates every scenario as a `#[test]` for `$adapter` (an expression of a type
/// implementing [`Adapter`]).
#[macro_export]
macro_rules! scenarios {
    ($adapter:expr) => {
        $crate::scenario_tests!($adapter;
            server_rejects_bad_requests_and_keeps_serving,
            server_echoes_every_size,
            server_fragmentation_with_interleaved_ping,
            server_ping_pong,
            server_close_from_client,
            server_close_from_server,
            server_half_close,
            server_peer_never_closes,
            server_abrupt_eof,
            server_protocol_error,
            server_keepalive_silent_peer,
            server_keepalive_answered,
            server_backpressure_slow_reader,
            client_echoes_every_size,
            client_rejected_with_status,
            client_bad_accept_key,
            client_fragmentation_with_interleaved_ping,
            client_close_from_server,
            client_close_from_client,
            client_peer_never_closes,
            client_abrupt_eof,
            client_protocol_error,
            client_keepalive_silent_peer,
            client_backpressure_slow_reader,
            server_ping_flood_from_a_peer_that_never_reads,
            server_data_flood_from_a_peer_that_never_reads,
            server_frames_after_the_peers_close_are_dropped,
            server_tiny_fragments_hit_the_message_limit,
            server_empty_continuations_hold_nothing,
            server_an_announced_giant_frame_is_refused_from_its_header,
            server_a_frame_that_never_completes_is_timed_out,
            server_verdicts_answer_every_request,
            server_try_feed_fills_without_waiting,
        );
    };
}

/// One `#[test]` per scenario name.
#[macro_export]
macro_rules! scenario_tests {
    ($adapter:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::$name(&$adapter);
            }
        )*
    };
}

fn fast_close() -> Settings {
    Settings::from(Config::default().with_close_timeout(Some(Duration::from_millis(300))))
}

fn keepalive() -> Settings {
    Settings::from(Config::default().with_keepalive(Some(KeepAlive::new(
        Duration::from_millis(200),
        Duration::from_millis(300),
    ))))
}

// ---------------------------------------------------------------------------------------
// Our server, a raw client.

/// Plain HTTP gets 400, version 12 gets 426 with `Sec-WebSocket-Version: 13`, a missing
/// version 400 with it, an oversized head 431, garbage 400; each is reported as a
/// refused handshake, and the server keeps serving a valid client afterwards.
pub fn server_rejects_bad_requests_and_keeps_serving(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let addr = server.addr;

    let plain = http_exchange(addr, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 400 "), "{plain:?}");
    assert_eq!(server.next().unwrap_err().status, Some(400));

    let v12 = upgrade_request("/").replace("Version: 13", "Version: 12");
    let response = http_exchange(addr, v12.as_bytes());
    assert!(response.starts_with("HTTP/1.1 426 "), "{response:?}");
    assert!(
        response.contains("Sec-WebSocket-Version: 13\r\n"),
        "{response:?}"
    );
    assert_eq!(server.next().unwrap_err().status, Some(426));

    let no_version = upgrade_request("/").replace("Sec-WebSocket-Version: 13\r\n", "");
    let response = http_exchange(addr, no_version.as_bytes());
    assert!(response.starts_with("HTTP/1.1 400 "), "{response:?}");
    assert!(
        response.contains("Sec-WebSocket-Version: 13\r\n"),
        "{response:?}"
    );
    assert_eq!(server.next().unwrap_err().status, Some(400));

    let huge = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let response = http_exchange(addr, huge.as_bytes());
    assert!(response.starts_with("HTTP/1.1 431 "), "{response:?}");
    assert_eq!(server.next().unwrap_err().status, Some(431));

    let garbage = http_exchange(
        addr,
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    );
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage:?}");
    assert_eq!(server.next().unwrap_err().status, Some(400));

    let mut raw = Raw::client(addr, "/after");
    raw.send(Frame::text("still serving"));
    assert_eq!(raw.expect(OpCode::Text), b"still serving");
    raw.send(Frame::close(1000, ""));
    raw.expect_close(CloseCode::NORMAL);
    raw.expect_eof();
    let run = server.next_run();
    assert_eq!(run.data(), [&Message::text("still serving")]);
}

/// Text and binary messages of every size come back unchanged, unfragmented.
pub fn server_echoes_every_size(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let mut raw = Raw::client(server.addr, "/");
    let mut expected = Vec::new();
    for &size in SIZES {
        let text = text_of(size);
        raw.send(Frame::text(&text));
        let echoed = raw.expect(OpCode::Text);
        assert_eq!(echoed.len(), text.len(), "text of {size} bytes");
        assert!(echoed == text.as_bytes(), "text of {size} bytes differs");
        let bytes = bytes_of(size);
        raw.send(Frame::binary(&bytes));
        let echoed = raw.expect(OpCode::Binary);
        assert!(echoed == bytes, "binary of {size} bytes differs");
        expected.push(Message::text(text));
        expected.push(Message::binary(bytes));
    }
    raw.send(Frame::close(1000, "done"));
    assert_eq!(raw.expect_close(CloseCode::NORMAL), "");
    raw.expect_eof();
    let run = server.next_run();
    assert!(
        run.data().into_iter().eq(expected.iter()),
        "the server saw other messages"
    );
    assert_clean(&run, Some((CloseCode::NORMAL, "done")), false);
}

/// A text message split inside a character across frames, with a Ping between the
/// fragments: the Pong comes first, then the whole message; a binary message in three
/// large fragments comes back whole.
pub fn server_fragmentation_with_interleaved_ping(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let mut raw = Raw::client(server.addr, "/");
    raw.send(Frame::text_bytes(b"h\xc3").fin(false));
    raw.send(Frame::ping(b"between"));
    raw.send(Frame::continuation(b"\xa9l").fin(false));
    raw.send(Frame::continuation(b"lo"));
    assert_eq!(raw.expect(OpCode::Pong), b"between");
    assert_eq!(raw.expect(OpCode::Text), "héllo".as_bytes());

    let part = bytes_of(100_000);
    raw.send(Frame::binary(&part).fin(false));
    raw.send(Frame::continuation(&part).fin(false));
    raw.send(Frame::continuation(&part));
    assert_eq!(raw.expect(OpCode::Binary), part.repeat(3));

    raw.send(Frame::close(1000, ""));
    raw.expect_close(CloseCode::NORMAL);
    raw.expect_eof();
    let run = server.next_run();
    assert_eq!(
        run.received[..3],
        [
            Message::ping(b"between".to_vec()),
            Message::text("héllo"),
            Message::binary(part.repeat(3)),
        ]
    );
}

/// Pings get Pongs with the same payload (up to 125 bytes); unsolicited Pongs are seen.
pub fn server_ping_pong(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::listen());
    let mut raw = Raw::client(server.addr, "/");
    for payload in [&b""[..], b"x", &[7u8; 125]] {
        raw.send(Frame::ping(payload));
        assert_eq!(raw.expect(OpCode::Pong), payload);
    }
    raw.send(Frame::pong(b"unsolicited"));
    raw.send(Frame::close(1000, ""));
    raw.expect_close(CloseCode::NORMAL);
    raw.expect_eof();
    let run = server.next_run();
    assert_eq!(run.received.len(), 5, "{run:?}");
    assert_eq!(run.received[3], Message::pong(b"unsolicited".to_vec()));
    assert_eq!(run.received[4], close_message(CloseCode::NORMAL, ""));
}

/// The client closes: the server echoes the code, closes TCP, and reports a clean end
/// with the client's reason; the Close was seen as a message first.
pub fn server_close_from_client(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let mut raw = Raw::client(server.addr, "/");
    raw.send(Frame::close(4000, "bye"));
    assert_eq!(raw.expect_close(CloseCode(4000)), "");
    raw.expect_eof();
    let run = server.next_run();
    assert_eq!(run.received, [close_message(CloseCode(4000), "bye")]);
    assert_clean(&run, Some((CloseCode(4000), "bye")), false);
    assert_eq!(run.outcome().to_string(), "clean code=4000 reason=bye");
}

/// The server closes: the client answers, the server closes TCP; clean, initiated
/// locally.
pub fn server_close_from_server(adapter: &impl Adapter) {
    let script = Script::new([Step::Close(CloseCode::GOING_AWAY, "going away".into())]);
    let server = adapter.start_server(Settings::default(), script);
    let mut raw = Raw::client(server.addr, "/");
    assert_eq!(raw.expect_close(CloseCode::GOING_AWAY), "going away");
    raw.send(Frame::close(1001, "ok"));
    raw.expect_eof();
    let run = server.next_run();
    assert_clean(&run, Some((CloseCode::GOING_AWAY, "ok")), true);
}

/// Half-close: the client sends a message and its Close, then shuts its write side. The
/// server still echoes, sees the Close before its reply goes out, replies, and ends
/// cleanly.
pub fn server_half_close(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let mut raw = Raw::client(server.addr, "/");
    raw.send(Frame::text("last words"));
    raw.send(Frame::close(1000, "done"));
    raw.shutdown_write();
    assert_eq!(raw.expect(OpCode::Text), b"last words");
    raw.expect_close(CloseCode::NORMAL);
    raw.expect_eof();
    let run = server.next_run();
    assert_eq!(
        run.received,
        [
            Message::text("last words"),
            close_message(CloseCode::NORMAL, "done")
        ]
    );
    assert_clean(&run, Some((CloseCode::NORMAL, "done")), false);
}

/// The server closes and the client never answers: the close timer ends it (timed
/// out), and the server closes TCP.
pub fn server_peer_never_closes(adapter: &impl Adapter) {
    let script = Script::new([Step::Close(CloseCode::NORMAL, "bye".into())]);
    let server = adapter.start_server(fast_close(), script);
    let mut raw = Raw::client(server.addr, "/");
    let started = Instant::now();
    assert_eq!(raw.expect_close(CloseCode::NORMAL), "bye");
    raw.expect_eof();
    within(Duration::from_secs(5), started, "the close timeout");
    let run = server.next_run();
    assert_eq!(run.outcome(), &Outcome::TimedOut(Timeout::Close));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

/// The client vanishes in the middle of a frame: abnormal end (1006).
pub fn server_abrupt_eof(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let mut raw = Raw::client(server.addr, "/");
    raw.send(Frame::text("complete"));
    assert_eq!(raw.expect(OpCode::Text), b"complete");
    let partial = Frame::text("truncated message")
        .from_role(Role::Client)
        .encode();
    raw.send_bytes(&partial[..8]);
    drop(raw);
    let run = server.next_run();
    assert_eq!(run.data(), [&Message::text("complete")]);
    assert!(
        matches!(
            run.outcome(),
            Outcome::Abnormal(Abnormal::Eof | Abnormal::Io(_))
        ),
        "{run:?}"
    );
    assert_eq!(run.outcome().code(), CloseCode::ABNORMAL);
}

/// An unmasked frame from a client: the server closes with 1002 and TCP.
pub fn server_protocol_error(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let mut raw = Raw::client(server.addr, "/");
    raw.send_bytes(&Frame::text("unmasked").encode());
    raw.expect_close(CloseCode::PROTOCOL);
    raw.expect_eof();
    let run = server.next_run();
    assert_eq!(
        run.outcome(),
        &Outcome::Abnormal(Abnormal::Protocol(ProtocolError::UnmaskedFrame))
    );
}

/// Keepalive against a client that never answers: a Ping arrives, then the server
/// gives up (timed out) and closes TCP.
pub fn server_keepalive_silent_peer(adapter: &impl Adapter) {
    let server = adapter.start_server(keepalive(), Script::listen());
    let mut raw = Raw::client(server.addr, "/");
    let started = Instant::now();
    raw.expect(OpCode::Ping);
    raw.expect_eof();
    within(Duration::from_secs(5), started, "the keepalive timeout");
    let run = server.next_run();
    assert_eq!(run.outcome(), &Outcome::TimedOut(Timeout::KeepAlive));
}

/// Keepalive against a client that answers every Ping: the connection stays open past
/// several intervals, and ends when the client closes.
pub fn server_keepalive_answered(adapter: &impl Adapter) {
    let server = adapter.start_server(keepalive(), Script::listen());
    let mut raw = Raw::client(server.addr, "/");
    for _ in 0..4 {
        let payload = raw.expect(OpCode::Ping);
        raw.send(Frame::pong(&payload));
    }
    raw.send(Frame::close(1000, ""));
    raw.expect_close(CloseCode::NORMAL);
    raw.expect_eof();
    let run = server.next_run();
    assert_clean(&run, Some((CloseCode::NORMAL, "")), false);
    assert_eq!(
        run.received
            .iter()
            .filter(|m| matches!(m, Message::Pong(_)))
            .count(),
        4
    );
}

const BACKPRESSURE_MESSAGES: usize = 256;
const BACKPRESSURE_SIZE: usize = 256 * 1024;

fn backpressure_script() -> Script {
    let message = Message::binary(vec![0xAB; BACKPRESSURE_SIZE]);
    let mut steps = vec![Step::Feed(message); BACKPRESSURE_MESSAGES];
    steps.push(Step::Close(CloseCode::NORMAL, "all sent".into()));
    Script::new(steps)
}

fn backpressure_settings() -> Settings {
    Settings::default().with_buffers(DriverConfig::default().with_max_pending_bytes(1 << 20))
}

/// While the peer does not read, the sender stops queueing (memory stays bounded by
/// the queue limit plus the kernel's socket buffers); once it reads, everything arrives.
fn check_backpressure(raw: &mut Raw, fed: &AtomicUsize) {
    wait_until("the first messages to be queued", || {
        fed.load(Ordering::SeqCst) > 0
    });
    thread::sleep(Duration::from_millis(500));
    let stalled = fed.load(Ordering::SeqCst);
    thread::sleep(Duration::from_millis(200));
    let later = fed.load(Ordering::SeqCst);
    assert_eq!(stalled, later, "the sender kept queueing while nobody read");
    assert!(
        stalled < BACKPRESSURE_MESSAGES,
        "nothing held the sender back"
    );
    // 1 MiB of queue, one message, and the kernel's buffers (a few MiB on loopback).
    assert!(
        stalled * BACKPRESSURE_SIZE <= (1 << 20) + BACKPRESSURE_SIZE + (24 << 20),
        "{stalled} messages queued"
    );
    for i in 0..BACKPRESSURE_MESSAGES {
        let payload = raw.expect(OpCode::Binary);
        assert_eq!(payload.len(), BACKPRESSURE_SIZE, "message {i}");
    }
    assert_eq!(raw.expect_close(CloseCode::NORMAL), "all sent");
    assert_eq!(fed.load(Ordering::SeqCst), BACKPRESSURE_MESSAGES);
}

/// Backpressure with a slow reader: the server's sends wait.
pub fn server_backpressure_slow_reader(adapter: &impl Adapter) {
    let script = backpressure_script();
    let fed = script.fed.clone();
    let server = adapter.start_server(backpressure_settings(), script);
    let mut raw = Raw::client(server.addr, "/");
    check_backpressure(&mut raw, &fed);
    raw.send(Frame::close(1000, ""));
    raw.expect_eof();
    let run = server.next_run();
    assert_clean(&run, Some((CloseCode::NORMAL, "")), true);
    assert!(run.errors.is_empty(), "{run:?}");
}

// ---------------------------------------------------------------------------------------
// Our client, a raw server.

/// The client sends every size and gets the raw server's echoes back.
pub fn client_echoes_every_size(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let mut steps = Vec::new();
    let mut expected = Vec::new();
    for &size in SIZES {
        for message in [
            Message::text(text_of(size)),
            Message::binary(bytes_of(size)),
        ] {
            steps.push(Step::Send(message.clone()));
            steps.push(Step::Recv);
            expected.push(message);
        }
    }
    steps.push(Step::Close(CloseCode::NORMAL, "done".into()));
    let client = adapter.spawn_client(
        &listener.url("/echo"),
        Settings::default(),
        Script::new(steps),
    );
    let mut raw = listener.accept_ws();
    for message in &expected {
        let frame = raw.expect_frame();
        assert!(frame.fin);
        match message {
            Message::Text(text) => {
                assert_eq!(frame.opcode, OpCode::Text);
                assert!(frame.payload == text.as_bytes());
                raw.send(Frame::text(text));
            }
            Message::Binary(bytes) => {
                assert_eq!(frame.opcode, OpCode::Binary);
                assert!(&frame.payload == bytes);
                raw.send(Frame::binary(bytes));
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(raw.expect_close(CloseCode::NORMAL), "done");
    raw.send(Frame::close(1000, "ok"));
    drop(raw);
    let run = client.join().unwrap().expect("connected");
    assert!(
        run.data().into_iter().eq(expected.iter()),
        "the client saw other messages"
    );
    assert_clean(&run, Some((CloseCode::NORMAL, "ok")), true);
}

/// A non-101 answer is a handshake failure carrying the status.
pub fn client_rejected_with_status(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let client = adapter.spawn_client(&listener.url("/"), Settings::default(), Script::listen());
    let (_raw, request) = listener
        .accept_with("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert!(
        request.contains("Sec-WebSocket-Version: 13\r\n"),
        "{request:?}"
    );
    let failure = client.join().unwrap().unwrap_err();
    assert_eq!(failure.status, Some(403), "{failure:?}");
}

/// A 101 with the wrong `Sec-WebSocket-Accept` is a handshake failure without status.
pub fn client_bad_accept_key(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let client = adapter.spawn_client(&listener.url("/"), Settings::default(), Script::listen());
    let _ = listener.accept_with(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
    );
    let failure = client.join().unwrap().unwrap_err();
    assert_eq!(failure.status, None, "{failure:?}");
}

/// Fragments with a Ping between them: the client pongs at once and assembles the text.
pub fn client_fragmentation_with_interleaved_ping(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let client = adapter.spawn_client(&listener.url("/"), Settings::default(), Script::listen());
    let mut raw = listener.accept_ws();
    raw.send(Frame::text_bytes(b"h\xc3").fin(false));
    raw.send(Frame::ping(b"between"));
    assert_eq!(raw.expect(OpCode::Pong), b"between");
    raw.send(Frame::continuation(b"\xa9l").fin(false));
    raw.send(Frame::continuation(b"lo"));
    raw.send(Frame::close(1000, "bye"));
    raw.expect_close(CloseCode::NORMAL);
    drop(raw);
    let run = client.join().unwrap().expect("connected");
    assert_eq!(
        run.received,
        [
            Message::ping(b"between".to_vec()),
            Message::text("héllo"),
            close_message(CloseCode::NORMAL, "bye"),
        ]
    );
    assert_clean(&run, Some((CloseCode::NORMAL, "bye")), false);
}

/// The server closes: the client sees the Close, replies, and ends cleanly once the
/// server closes TCP.
pub fn client_close_from_server(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let client = adapter.spawn_client(&listener.url("/"), Settings::default(), Script::listen());
    let mut raw = listener.accept_ws();
    raw.send(Frame::close(1001, "server going away"));
    assert_eq!(raw.expect_close(CloseCode::GOING_AWAY), "");
    drop(raw);
    let run = client.join().unwrap().expect("connected");
    assert_eq!(
        run.received,
        [close_message(CloseCode::GOING_AWAY, "server going away")]
    );
    assert_clean(
        &run,
        Some((CloseCode::GOING_AWAY, "server going away")),
        false,
    );
}

/// The client closes: the server replies and closes TCP; clean, initiated locally.
pub fn client_close_from_client(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let script = Script::new([Step::Close(CloseCode(4001), "client done".into())]);
    let client = adapter.spawn_client(&listener.url("/"), Settings::default(), script);
    let mut raw = listener.accept_ws();
    assert_eq!(raw.expect_close(CloseCode(4001)), "client done");
    raw.send(Frame::close(4001, ""));
    // The server closes TCP first; the client then ends.
    drop(raw);
    let run = client.join().unwrap().expect("connected");
    assert_clean(&run, Some((CloseCode(4001), "")), true);
}

/// The client closes and the server never answers: the close timer ends it.
pub fn client_peer_never_closes(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let script = Script::new([Step::Close(CloseCode::NORMAL, "bye".into())]);
    let started = Instant::now();
    let client = adapter.spawn_client(&listener.url("/"), fast_close(), script);
    let mut raw = listener.accept_ws();
    assert_eq!(raw.expect_close(CloseCode::NORMAL), "bye");
    let run = client.join().unwrap().expect("connected");
    within(Duration::from_secs(5), started, "the close timeout");
    assert_eq!(run.outcome(), &Outcome::TimedOut(Timeout::Close));
    raw.expect_eof();
}

/// The server vanishes after a message: abnormal end.
pub fn client_abrupt_eof(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let client = adapter.spawn_client(&listener.url("/"), Settings::default(), Script::listen());
    let mut raw = listener.accept_ws();
    raw.send(Frame::binary(b"\x01\x02"));
    drop(raw);
    let run = client.join().unwrap().expect("connected");
    assert_eq!(run.received, [Message::binary(vec![1, 2])]);
    assert!(
        matches!(
            run.outcome(),
            Outcome::Abnormal(Abnormal::Eof | Abnormal::Io(_))
        ),
        "{run:?}"
    );
}

/// A masked frame from the server: the client closes with 1002.
pub fn client_protocol_error(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let client = adapter.spawn_client(&listener.url("/"), Settings::default(), Script::listen());
    let mut raw = listener.accept_ws();
    raw.send_bytes(&Frame::text("masked").masked([1, 2, 3, 4]).encode());
    raw.expect_close(CloseCode::PROTOCOL);
    drop(raw);
    let run = client.join().unwrap().expect("connected");
    assert_eq!(
        run.outcome(),
        &Outcome::Abnormal(Abnormal::Protocol(ProtocolError::MaskedFrame))
    );
}

/// Keepalive against a server that never answers: a (masked) Ping goes out, then the
/// client gives up.
pub fn client_keepalive_silent_peer(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let client = adapter.spawn_client(&listener.url("/"), keepalive(), Script::listen());
    let mut raw = listener.accept_ws();
    let started = Instant::now();
    raw.expect(OpCode::Ping);
    let run = client.join().unwrap().expect("connected");
    within(Duration::from_secs(5), started, "the keepalive timeout");
    assert_eq!(run.outcome(), &Outcome::TimedOut(Timeout::KeepAlive));
    raw.expect_eof();
}

/// Backpressure with a slow reader: the client's sends wait.
pub fn client_backpressure_slow_reader(adapter: &impl Adapter) {
    let listener = RawListener::new();
    let script = backpressure_script();
    let fed = script.fed.clone();
    let client = adapter.spawn_client(&listener.url("/"), backpressure_settings(), script);
    let mut raw = listener.accept_ws();
    check_backpressure(&mut raw, &fed);
    raw.send(Frame::close(1000, ""));
    drop(raw);
    let run = client.join().unwrap().expect("connected");
    assert_clean(&run, Some((CloseCode::NORMAL, "")), true);
    assert!(run.errors.is_empty(), "{run:?}");
}

// ---------------------------------------------------------------------------------------
// Hostile peers: the memory a connection may take is bounded by its settings.

/// The send queue's bound in the flood scenarios.
const FLOOD_QUEUE: usize = 64 * 1024;

fn flood_settings() -> Settings {
    Settings::default().with_buffers(
        DriverConfig::default()
            .with_max_pending_bytes(FLOOD_QUEUE)
            .with_write_stall_timeout(Some(Duration::from_secs(1))),
    )
}

/// Writes `frame` over and over without ever reading, until the server stops taking
/// bytes (a write blocks for 500 ms) or `most` frames went out. Returns how many did.
fn flood(raw: &mut Raw, frame: Frame, most: usize) -> usize {
    raw.stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let batch: Vec<u8> = (0..64)
        .flat_map(|_| frame.clone().from_role(Role::Client).encode())
        .collect();
    let mut sent = 0;
    while sent < most {
        if raw.stream.write_all(&batch).is_err() {
            break;
        }
        sent += 64;
    }
    sent
}

/// The flooded connection ends by the write-stall timeout, its queue never past the
/// bound (plus the one frame that may cross it), while another connection on the same
/// server is served.
fn check_flood(adapter: &impl Adapter, frame: Frame, slack: usize) {
    let server = adapter.start_server(flood_settings(), Script::echo());
    let mut flooder = Raw::client(server.addr, "/flood");
    let sent = flood(&mut flooder, frame, 2_000_000);
    assert!(
        sent < 2_000_000,
        "the server never stopped reading ({sent} frames)"
    );
    // Someone else is served meanwhile.
    let mut other = Raw::client(server.addr, "/other");
    other.send(Frame::text("still here"));
    assert_eq!(other.expect(OpCode::Text), b"still here");
    other.send(Frame::close(1000, "bye"));
    assert_eq!(other.expect_close(CloseCode::NORMAL), "");
    let mut runs = [server.next_run(), server.next_run()];
    runs.sort_by_key(|run| run.outcome().is_clean());
    let [flooded, served] = runs;
    assert_clean(&served, Some((CloseCode::NORMAL, "bye")), false);
    assert_eq!(
        flooded.outcome(),
        &Outcome::TimedOut(Timeout::WriteStall),
        "sent {sent} frames"
    );
    assert!(
        flooded.max_pending <= FLOOD_QUEUE + slack,
        "the queue held {} bytes (bound {FLOOD_QUEUE})",
        flooded.max_pending
    );
    assert!(
        flooded.max_pending > 0,
        "nothing was ever queued: {sent} frames"
    );
    drop(flooder);
}

/// A peer that pings as fast as it can and never reads: Pongs wait in the core's slot
/// (a newer Ping replaces the one waiting) once the queue is full, reading stops, and
/// the write-stall timeout ends the connection.
pub fn server_ping_flood_from_a_peer_that_never_reads(adapter: &impl Adapter) {
    check_flood(adapter, Frame::ping(&[0x5A; 125]), 256);
}

/// A peer that sends data to an echo and never reads: the echo's sends wait once the
/// queue is full (one message may cross the bound), reading stops, and the write-stall
/// timeout ends the connection.
pub fn server_data_flood_from_a_peer_that_never_reads(adapter: &impl Adapter) {
    check_flood(adapter, Frame::binary(&[0xA5; 16 * 1024]), 16 * 1024 + 256);
}

/// Frames after the peer's Close (more Closes, data) are not messages: the close
/// handshake completes once, nothing after the Close is delivered or answered.
pub fn server_frames_after_the_peers_close_are_dropped(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::listen());
    let mut raw = Raw::client(server.addr, "/");
    let mut burst = Frame::close(1000, "first").from_role(Role::Client).encode();
    for i in 0..200 {
        let frame = if i % 2 == 0 {
            Frame::close(1001, "again")
        } else {
            Frame::text("after the close")
        };
        frame.from_role(Role::Client).encode_into(&mut burst);
    }
    let _ = raw.stream.write_all(&burst);
    assert_eq!(raw.expect_close(CloseCode::NORMAL), "");
    raw.expect_eof();
    let run = server.next_run();
    assert_clean(&run, Some((CloseCode::NORMAL, "first")), false);
    assert_eq!(
        run.received.len(),
        1,
        "{:?}",
        &run.received[..run.received.len().min(4)]
    );
}

/// A message sent as many one-byte fragments is bounded by the message limit like any
/// other: past it, 1009 and the end.
pub fn server_tiny_fragments_hit_the_message_limit(adapter: &impl Adapter) {
    let settings = Settings::default().with_max_message_size(4096);
    let server = adapter.start_server(settings, Script::listen());
    let mut raw = Raw::client(server.addr, "/");
    let mut burst = Frame::binary(b"x")
        .fin(false)
        .from_role(Role::Client)
        .encode();
    for _ in 0..5000 {
        Frame::continuation(b"x")
            .fin(false)
            .from_role(Role::Client)
            .encode_into(&mut burst);
    }
    let _ = raw.stream.write_all(&burst);
    raw.expect_close(CloseCode::TOO_BIG);
    let run = server.next_run();
    assert_eq!(
        run.outcome(),
        &Outcome::Abnormal(Abnormal::Protocol(ProtocolError::MessageTooLarge))
    );
    assert!(run.data().is_empty());
}

/// A flood of empty continuation frames costs no memory: the message stays empty, and
/// arrives whole once it ends.
pub fn server_empty_continuations_hold_nothing(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::echo());
    let mut raw = Raw::client(server.addr, "/");
    let mut burst = Frame::binary(b"")
        .fin(false)
        .from_role(Role::Client)
        .encode();
    for _ in 0..50_000 {
        Frame::continuation(b"")
            .fin(false)
            .from_role(Role::Client)
            .encode_into(&mut burst);
    }
    Frame::continuation(b"end")
        .from_role(Role::Client)
        .encode_into(&mut burst);
    raw.send_bytes(&burst);
    assert_eq!(raw.expect(OpCode::Binary), b"end");
    raw.send(Frame::close(1000, ""));
    raw.expect_close(CloseCode::NORMAL);
    let run = server.next_run();
    assert_eq!(run.data(), [&Message::binary(b"end".to_vec())]);
    assert!(run.max_pending < 1024, "{}", run.max_pending);
}

/// A header announcing 48 MiB (over the 16 MiB frame limit) is refused from the header,
/// before any payload is read or any memory committed: 1009.
pub fn server_an_announced_giant_frame_is_refused_from_its_header(adapter: &impl Adapter) {
    let server = adapter.start_server(Settings::default(), Script::listen());
    let mut raw = Raw::client(server.addr, "/");
    let frame = Frame::binary(b"")
        .length(Length::Raw64(48 << 20))
        .from_role(Role::Client);
    raw.send_bytes(&frame.encode());
    raw.expect_close(CloseCode::TOO_BIG);
    let run = server.next_run();
    assert_eq!(
        run.outcome(),
        &Outcome::Abnormal(Abnormal::Protocol(ProtocolError::FrameTooLarge))
    );
}

/// A peer that starts a frame and never finishes it is pinged, and timed out when
/// nothing more comes (keepalive, on by default; short here).
pub fn server_a_frame_that_never_completes_is_timed_out(adapter: &impl Adapter) {
    let server = adapter.start_server(keepalive(), Script::listen());
    let mut raw = Raw::client(server.addr, "/");
    let frame = Frame::binary(&[7; 100]).from_role(Role::Client).encode();
    raw.send_bytes(&frame[..60]);
    let started = Instant::now();
    raw.expect(OpCode::Ping);
    raw.expect_eof();
    within(Duration::from_secs(5), started, "the keepalive timeout");
    let run = server.next_run();
    assert_eq!(run.outcome(), &Outcome::TimedOut(Timeout::KeepAlive));
}

/// The verdict of [`server_verdicts_answer_every_request`]: rooms under `/room/` for
/// users named in the query, a health check on the same port, 404 for the rest.
fn rooms(request: &RequestHead) -> Verdict<String> {
    match (request.is_upgrade(), request.path(), request.query()) {
        (true, path, Some(query)) if path.starts_with("/room/") && query.starts_with("user=") => {
            Verdict::accept().with_data(path.to_owned()).into()
        }
        (false, "/health", _) => Verdict::reject(200, "OK")
            .with_header("Content-Type", "text/plain")
            .with_body("ok")
            .into(),
        _ => Verdict::reject(404, "Not Found").into(),
    }
}

/// The application answers every request through the adapter's verdict hook: an
/// upgrade it accepts carries its data (the room) into the connection; a plain GET is a
/// health check answered 200 with a body on the same port; unknown paths and upgrades it
/// refuses get its 404.
pub fn server_verdicts_answer_every_request(adapter: &impl Adapter) {
    let server = adapter.start_deciding_server(Settings::default(), Some(rooms), Script::echo());
    let addr = server.addr;

    let health = http_exchange(addr, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health:?}");
    assert!(health.ends_with("\r\n\r\nok"), "{health:?}");
    assert_eq!(server.next().unwrap_err().status, Some(200));

    let unknown = http_exchange(addr, b"GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert!(unknown.starts_with("HTTP/1.1 404 "), "{unknown:?}");
    assert_eq!(server.next().unwrap_err().status, Some(404));

    // An upgrade without a user: the application refuses it.
    let anonymous = http_exchange(addr, upgrade_request("/room/lobby").as_bytes());
    assert!(anonymous.starts_with("HTTP/1.1 404 "), "{anonymous:?}");
    assert_eq!(server.next().unwrap_err().status, Some(404));

    let mut raw = Raw::client(addr, "/room/lobby?user=ada");
    raw.send(Frame::text("hi"));
    assert_eq!(raw.expect(OpCode::Text), b"hi");
    raw.send(Frame::close(1000, ""));
    raw.expect_close(CloseCode::NORMAL);
    raw.expect_eof();
    let run = server.next_run();
    assert_eq!(run.request.as_deref(), Some("/room/lobby"));
    assert_eq!(run.data(), [&Message::text("hi")]);
}

/// A server that must never wait for one slow client queues without waiting until the
/// adapter says the queue is full (past its bound, and long before 10,000 messages of
/// 16 KiB), then everything queued still arrives once the client reads.
pub fn server_try_feed_fills_without_waiting(adapter: &impl Adapter) {
    let settings = Settings::default().with_max_pending_bytes(64 * 1024);
    let message = Message::binary(vec![7u8; 16 * 1024]);
    let script = Script::new(vec![Step::TryFeedUntilFull(message), Step::Echo]);
    let server = adapter.start_server(settings, script);
    let mut raw = Raw::client(server.addr, "/");
    // The script fills the queue before it reads anything, so the echo of this text
    // comes after every message it queued.
    raw.send(Frame::text("done?"));
    let mut queued = 0;
    loop {
        let frame = raw.expect_frame();
        match frame.opcode {
            OpCode::Binary => queued += 1,
            OpCode::Text => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    raw.send(Frame::close(1000, ""));
    raw.expect_close(CloseCode::NORMAL);
    raw.expect_eof();
    let run = server.next_run();
    let full_at = run
        .queued_before_full
        .expect("the queue said it was full before 10,000 messages");
    assert!(
        full_at >= 4,
        "at least the bound's worth was queued: {full_at}"
    );
    assert!(full_at < 10_000, "{full_at}");
    assert_eq!(queued, full_at, "every queued message arrived");
}
