//! A controllable fake WebSocket server for the reconnect tests: std blocking sockets on
//! 127.0.0.1 and the sockeye-proto core driven by hand (no adapter, so it cannot share a
//! bug with the client under test).
//!
//! Modes (for new connections; [`FakeServer::set_mode`] switches at any time):
//! - [`Mode::Echo`]: echoes text and binary messages, answers pings and closes.
//! - [`Mode::Silent`]: accepts TCP and completes the handshake, then never sends a byte
//!   (no pongs): a dead peer behind a live socket.
//! - [`Mode::Reject`]: answers the upgrade with this HTTP status.
//! - [`Mode::Unavailable`]: answers the upgrade with 503 and this `Retry-After`.
//! - [`Mode::CloseWith`]: opens, then closes at once with this code and reason.
//!
//! Every upgrade request's `Authorization` header and offered subprotocols are kept
//! ([`FakeServer::requests`]); an accepted one gets the subprotocol `chat` if offered.
//!
//! [`FakeServer::stop`] stops listening and cuts every connection (what a killed server
//! looks like from the client: FIN, no Close frame); [`FakeServer::start`] listens again on
//! the same port. Every loop is bounded: threads give up after [`MAX_LIFETIME`].
#![allow(dead_code)]

use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use sockeye_engine::{
    Driver, DriverConfig, Io, Message, Next, ServerAnswer, ServerUpgrade, Verdict,
};
use sockeye_proto::handshake::HeadLimits;
use sockeye_proto::{CloseCode, Config, Connection, StdClock};

/// No thread of the fake server lives longer than this.
pub const MAX_LIFETIME: Duration = Duration::from_secs(60);
/// How often blocked loops look at the stop flag.
const TICK: Duration = Duration::from_millis(10);

/// How the server treats new connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Echo data messages.
    Echo,
    /// Handshake, then silence.
    Silent,
    /// Refuse the upgrade with this status.
    Reject(u16),
    /// Refuse the upgrade with 503 and this `Retry-After` value.
    Unavailable(&'static str),
    /// Open, then close with this code and reason.
    CloseWith(u16, &'static str),
}

/// What an upgrade request carried, as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRequest {
    /// Its `Authorization` header.
    pub authorization: Option<String>,
    /// The subprotocols it offered.
    pub protocols: Vec<String>,
}

type Requests = Arc<Mutex<Vec<SeenRequest>>>;

/// The live connections of one listening period: a handle to cut each, and its thread.
type Connections = Arc<Mutex<Vec<(TcpStream, JoinHandle<()>)>>>;

struct Generation {
    stop: Arc<AtomicBool>,
    accept: JoinHandle<()>,
    connections: Connections,
}

/// The fake server; cheap to share (`Arc`) with a thread that restarts it.
pub struct FakeServer {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    accepted: Arc<AtomicUsize>,
    requests: Requests,
    running: Mutex<Option<Generation>>,
}

impl FakeServer {
    /// Listens on a free loopback port.
    pub fn start_new(mode: Mode) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let server = Arc::new(FakeServer {
            addr: listener.local_addr().expect("local addr"),
            mode: Arc::new(Mutex::new(mode)),
            accepted: Arc::new(AtomicUsize::new(0)),
            requests: Arc::default(),
            running: Mutex::new(None),
        });
        server.run(listener);
        server
    }

    /// A server on a free port that is not listening yet (connections are refused until
    /// [`start`](Self::start)).
    pub fn stopped(mode: Mode) -> Arc<Self> {
        let server = Self::start_new(mode);
        server.stop();
        server
    }

    /// `ws://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted so far (over every restart).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The upgrade requests received so far, in order.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Switches the mode for new connections.
    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Listens again on the same port (retrying briefly if the port is still busy).
    pub fn start(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    thread::sleep(TICK);
                }
                Err(error) => panic!("cannot listen on {} again: {error}", self.addr),
            }
        };
        self.run(listener);
    }

    /// Stops listening and cuts every connection (no Close frame), then waits for the
    /// server's threads.
    pub fn stop(&self) {
        let Some(generation) = self.running.lock().unwrap().take() else {
            return;
        };
        generation.stop.store(true, Ordering::SeqCst);
        let _ = generation.accept.join();
        let connections = std::mem::take(&mut *generation.connections.lock().unwrap());
        for (stream, thread) in connections {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
    }

    fn run(&self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (stop, connections) = (stop.clone(), connections.clone());
            let (mode, accepted) = (self.mode.clone(), self.accepted.clone());
            let requests = self.requests.clone();
            thread::spawn(move || {
                accept_loop(listener, stop, connections, mode, accepted, requests)
            })
        };
        let previous = self.running.lock().unwrap().replace(Generation {
            stop,
            accept,
            connections,
        });
        assert!(previous.is_none(), "start() while running");
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    connections: Connections,
    mode: Arc<Mutex<Mode>>,
    accepted: Arc<AtomicUsize>,
    requests: Requests,
) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let started = Instant::now();
    while !stop.load(Ordering::SeqCst) && started.elapsed() < MAX_LIFETIME {
        match listener.accept() {
            Ok((stream, _)) => {
                accepted.fetch_add(1, Ordering::SeqCst);
                let Ok(handle) = stream.try_clone() else {
                    continue;
                };
                let mode = *mode.lock().unwrap();
                let (stop, requests) = (stop.clone(), requests.clone());
                let thread = thread::spawn(move || serve(stream, mode, &stop, &requests));
                connections.lock().unwrap().push((handle, thread));
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => thread::sleep(TICK),
            Err(_) => thread::sleep(TICK),
        }
    }
    // The listener is dropped here: new connections are refused.
}

/// One read with a short timeout: `Pending` when nothing came.
fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Poll<io::Result<usize>> {
    match stream.read(buf) {
        Ok(n) => Poll::Ready(Ok(n)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Poll::Pending
        }
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Poll::Pending,
        Err(e) => Poll::Ready(Err(e)),
    }
}

fn serve(mut stream: TcpStream, mode: Mode, stop: &AtomicBool, requests: &Requests) {
    let started = Instant::now();
    let alive = || !stop.load(Ordering::SeqCst) && started.elapsed() < MAX_LIFETIME;
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    if stream.set_read_timeout(Some(TICK)).is_err() {
        return;
    }

    // The opening handshake.
    let mut upgrade = ServerUpgrade::new(HeadLimits::DEFAULT);
    let decide = move |request: &sockeye_engine::RequestHead| {
        requests.lock().unwrap().push(SeenRequest {
            authorization: request
                .header("Authorization")
                .map(|value| String::from_utf8_lossy(value).into_owned()),
            protocols: request.protocols().to_vec(),
        });
        match mode {
            Mode::Reject(status) => Verdict::from(Verdict::reject(status, "Forbidden")),
            Mode::Unavailable(retry_after) => Verdict::from(
                Verdict::reject(503, "Service Unavailable").with_header("Retry-After", retry_after),
            ),
            _ => match request.select_protocol(&["chat"]) {
                Some(protocol) => Verdict::from(Verdict::accept().with_protocol(protocol)),
                None => Verdict::from(Verdict::accept()),
            },
        }
    };
    let mut decide = Some(decide);
    let answer = loop {
        if !alive() {
            return;
        }
        match upgrade.read_with(|buf| read_some(&mut stream, buf)) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return,
            Poll::Ready(Ok(_)) | Poll::Pending => {}
        }
        let answer = match upgrade.poll_head() {
            None => None,
            Some(Err(refusal)) => Some(refusal),
            Some(Ok(head)) => {
                let verdict = match decide.take() {
                    Some(decide) => decide(&head),
                    None => Verdict::from(Verdict::accept()),
                };
                upgrade.answer(verdict)
            }
        };
        if let Some(answer) = answer {
            break answer;
        }
    };
    let early = match answer {
        ServerAnswer::Accept {
            response, early, ..
        } => {
            if stream.write_all(&response).is_err() {
                return;
            }
            early
        }
        ServerAnswer::Refuse { response, .. } => {
            let _ = stream.write_all(&response);
            let _ = stream.shutdown(Shutdown::Write);
            // Read until the client leaves, briefly, so it sees the response, not a reset.
            let mut sink = [0u8; 1024];
            let until = Instant::now() + Duration::from_secs(1);
            while alive() && Instant::now() < until {
                match read_some(&mut stream, &mut sink) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break,
                    _ => {}
                }
            }
            return;
        }
    };

    if mode == Mode::Silent {
        // Swallow everything, answer nothing, until cut or the client leaves.
        let mut sink = [0u8; 4096];
        while alive() {
            if let Poll::Ready(Ok(0) | Err(_)) = read_some(&mut stream, &mut sink) {
                break;
            }
        }
        return;
    }

    let clock = StdClock::new();
    let mut driver = Driver::new(
        Connection::server(Config::default(), clock.now()),
        DriverConfig::default(),
    );
    driver.push_bytes(&early);
    if let Mode::CloseWith(code, reason) = mode {
        let _ = driver.close(CloseCode(code), reason, clock.now());
    }
    while alive() {
        // Everything already read.
        while let Some(message) = driver.poll_message(clock.now()) {
            if matches!(message, Message::Text(_) | Message::Binary(_)) {
                let _ = driver.send(message, clock.now());
            }
        }
        let next = driver.poll_io(clock.now());
        if let Next::Io(Io {
            deadline: Some(deadline),
            ..
        }) = next
        {
            if deadline <= clock.now() {
                driver.handle_deadline(clock.now());
            }
        }
        // Write what is queued.
        while driver.pending_bytes() > 0 && !driver.is_write_closed() {
            let mut slices = [IoSlice::new(&[]); 16];
            let count = driver.write_slices(&mut slices);
            match stream.write_vectored(&slices[..count]) {
                Ok(0) | Err(_) => return,
                Ok(n) => driver.advance(n),
            }
        }
        if driver.poll_io(clock.now()) == Next::Shutdown {
            let _ = stream.shutdown(Shutdown::Write);
            driver.shutdown_done();
        }
        if driver.poll_io(clock.now()) == Next::Done {
            // Give the client a moment to read our last bytes and close its side.
            let mut sink = [0u8; 1024];
            let until = Instant::now() + Duration::from_secs(1);
            while alive() && Instant::now() < until {
                if let Poll::Ready(Ok(0) | Err(_)) = read_some(&mut stream, &mut sink) {
                    break;
                }
            }
            return;
        }
        match driver.read_with(|buf| read_some(&mut stream, buf)) {
            Poll::Ready(Err(error)) => {
                driver.fail_io(error.kind());
                return;
            }
            Poll::Ready(Ok(_)) | Poll::Pending => {}
        }
    }
}
