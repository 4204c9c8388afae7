//! [`Opening`]: the opening handshake's whole life without I/O — reading the request or
//! the response, the application's decision, writing the answer, the timeouts, the
//! linger after a refusal — for adapters driven by readiness, which ask it what to do
//! next as they ask the [`Driver`] once the connection is open.

use std::boxed::Box;
use std::io;
use std::task::Poll;
use std::vec::Vec;

use sockeye_proto::handshake::ClientRequest;
use sockeye_proto::{Connection, Instant, Role};

use crate::buffers::Segment;
use crate::handshake::{Agreed, ClientAnswer, ClientUpgrade, Refusal, RequestHead, ServerAnswer};
use crate::{Driver, Error, Io, ServerUpgrade, Settings, Verdict};

/// How much of what a refused client still sends is read (and dropped) before closing.
const REFUSAL_DRAIN: usize = 64 * 1024;

/// What the transport should do next during the opening handshake: the one answer of
/// [`Opening::poll`].
#[derive(Debug)]
pub enum Step {
    /// Move bytes as [`Io`] says (write [`Opening::pending`], then
    /// [`Opening::advance`]; read with [`Opening::read_with`]), and call
    /// [`Opening::handle_deadline`] at its deadline.
    Io(Io),
    /// Server: the request is complete. Decide (at once or later) and give the verdict to
    /// [`Opening::answer`]; nothing is read meanwhile. A plain HTTP request is shown too
    /// ([`RequestHead::is_upgrade`] false); an invalid upgrade is refused without asking.
    Decide(RequestHead),
    /// Server: the refusal is written. Shut the transport's write side (its result does
    /// not matter), then call [`Opening::shutdown_done`].
    Shutdown,
    /// The connection is open: drive it with the [`Driver`] from now on (a server's
    /// `101` is queued in it, before any frame).
    Open {
        /// The connection, with any frames that arrived with the handshake.
        driver: Box<Driver>,
        /// The request path, without the query (server).
        path: Option<Box<str>>,
    },
    /// The handshake is over without a connection: why (a server's refusal, once
    /// written and lingered on, is [`Error::Refused`]). Drop the transport.
    Failed(Error),
}

/// The opening handshake of one connection, either role, as a state machine over the
/// bytes the adapter moves and the time it passes in.
///
/// Drive it like the [`Driver`]: after every call, [`poll`](Self::poll) says what to do
/// next, until it hands over the open connection ([`Step::Open`]) or the error that ended
/// the handshake ([`Step::Failed`]). It applies [`Settings::connect_timeout`],
/// [`Settings::handshake_timeout`] and [`Settings::refusal_linger`]: a refused client is
/// given the response, then what it still sends (at most 64 KiB) is read and dropped until
/// it closes or the linger ends, so that closing does not reset the connection before the
/// response is read.
///
/// ```
/// use std::task::Poll;
/// use sockeye_engine::opening::{Opening, Step};
/// use sockeye_engine::{Settings, Verdict};
/// use sockeye_proto::Instant;
///
/// let request = b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n";
/// let now = Instant::ZERO;
/// let mut opening = Opening::server(Settings::default(), now);
/// let _ = opening.read_with(|buf| {
///     buf[..request.len()].copy_from_slice(request);
///     Poll::<Result<usize, ()>>::Ready(Ok(request.len()))
/// });
/// let Step::Decide(head) = opening.poll(now) else { panic!() };
/// assert_eq!(head.path(), "/chat");
/// opening.answer(Verdict::accept(), now);
/// let Step::Open { driver, path } = opening.poll(now) else { panic!() };
/// assert_eq!(path.as_deref(), Some("/chat"));
/// // The `101` goes out first, with the connection's frames.
/// let mut slices = [std::io::IoSlice::new(&[]); 4];
/// driver.write_slices(&mut slices);
/// assert!(slices[0].starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
/// ```
#[derive(Debug)]
pub struct Opening {
    side: Side,
    stage: Stage,
    settings: Settings,
    /// The bytes to write: the request, the `101`, a refusal.
    out: Vec<u8>,
    deadline: Option<Instant>,
    /// The transport reached its end of stream.
    eof: bool,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // boxed as a whole by the adapters that keep one
enum Side {
    Server(ServerUpgrade),
    /// The response being read, the masking seed, and whether the transport is connected.
    Client(ClientUpgrade, [u8; 32], bool),
}

#[derive(Debug)]
enum Stage {
    Handshaking,
    /// Server: waiting for [`Opening::answer`], with the request's path.
    Deciding(Box<str>),
    /// Server: accepted, the `101` queued first in the connection's driver, with the
    /// request's path: handed over at the next poll.
    Accepted(Box<Driver>, Option<Box<str>>),
    /// Server: writing the refusal, then (once shut) draining at most `left` bytes.
    Refusing {
        refusal: Refusal,
        shut: bool,
        left: usize,
    },
    /// Over: the error not yet handed out, if any.
    Ended(Option<Error>),
}

impl Opening {
    /// A server's handshake on a freshly accepted transport: reads the request within
    /// [`Settings::handshake_timeout`] from `now`.
    pub fn server(settings: Settings, now: Instant) -> Self {
        let upgrade =
            ServerUpgrade::new(settings.head_limits).with_compression(settings.compression);
        Opening::new(Side::Server(upgrade), settings, Vec::new(), now)
    }

    /// A client's handshake: writes `request` (offering permessage-deflate as
    /// [`ClientRequest::deflate`] says, or else [`Settings::compression`]) and checks the
    /// answer. The key and the masking seed are drawn from the operating system's random
    /// source (an error if it has none).
    pub fn client(
        request: &ClientRequest<'_>,
        settings: Settings,
        now: Instant,
    ) -> Result<Self, Error> {
        Opening::client_with_keys(request, settings, now, random()?, random()?)
    }

    /// [`client`](Self::client) with the key's `nonce` and the masking `seed` given:
    /// fresh random bytes (fixed ones only in tests).
    pub fn client_with_keys(
        request: &ClientRequest<'_>,
        settings: Settings,
        now: Instant,
        nonce: [u8; 16],
        seed: [u8; 32],
    ) -> Result<Self, Error> {
        let request = request.with_deflate(request.deflate.or(settings.compression));
        let (upgrade, bytes) =
            ClientUpgrade::new(nonce, &request, settings.head_limits).map_err(Error::Request)?;
        Ok(Opening::new(
            Side::Client(upgrade, seed, true),
            settings,
            bytes,
            now,
        ))
    }

    fn new(side: Side, settings: Settings, out: Vec<u8>, now: Instant) -> Self {
        Opening {
            side,
            stage: Stage::Handshaking,
            deadline: settings.handshake_timeout.map(|timeout| now + timeout),
            settings,
            out,
            eof: false,
        }
    }

    /// Client: the transport is still connecting; [`poll`](Self::poll) asks to wait for
    /// it to become writable, within [`Settings::connect_timeout`] from `now`, and then
    /// [`connected`](Self::connected) is to be called.
    pub fn connecting(mut self, now: Instant) -> Self {
        if let Side::Client(_, _, connected) = &mut self.side {
            *connected = false;
            let connect = self.settings.connect_timeout.map(|timeout| now + timeout);
            self.deadline = connect.or(self.deadline);
        }
        self
    }

    /// Client: the transport has connected; the handshake timeout starts at `now`.
    pub fn connected(&mut self, now: Instant) {
        if let Side::Client(_, _, connected @ false) = &mut self.side {
            *connected = true;
            self.deadline = self.settings.handshake_timeout.map(|timeout| now + timeout);
        }
    }

    /// Whether this is a client's handshake.
    pub fn is_client(&self) -> bool {
        matches!(self.side, Side::Client(..))
    }

    /// Whether this is a client still waiting for its transport to connect.
    pub fn is_connecting(&self) -> bool {
        matches!(self.side, Side::Client(_, _, false))
    }

    /// The settings the handshake was started with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What the transport should do next (see [`Step`]).
    pub fn poll(&mut self, now: Instant) -> Step {
        let io = |read, write, deadline| {
            Step::Io(Io {
                read,
                write,
                deadline,
            })
        };
        let pending = !self.out.is_empty();
        match &mut self.stage {
            Stage::Ended(error) => Step::Failed(error.take().unwrap_or(Error::Closed)),
            Stage::Refusing { .. } if pending => io(false, true, self.deadline),
            Stage::Refusing { shut: false, .. } => Step::Shutdown,
            Stage::Refusing { refusal, left, .. } if self.eof || *left == 0 => {
                let refused = Error::Refused(*refusal);
                self.end(refused)
            }
            Stage::Refusing { .. } => io(true, false, self.deadline),
            Stage::Accepted(..) => match std::mem::replace(&mut self.stage, Stage::Ended(None)) {
                Stage::Accepted(driver, path) => Step::Open { driver, path },
                _ => unreachable!("matched above"),
            },
            Stage::Deciding(_) => io(false, false, self.deadline),
            Stage::Handshaking => match &mut self.side {
                Side::Client(_, _, false) => io(false, true, self.deadline),
                Side::Client(upgrade, seed, true) => match upgrade.poll() {
                    Ok(Some(ClientAnswer::Accepted {
                        protocol,
                        compression,
                        early,
                        ..
                    })) => {
                        let (role, seed) = (Role::Client, *seed);
                        let driver = self.open(role, seed, protocol, compression, &early, now);
                        self.stage = Stage::Ended(None);
                        Step::Open { driver, path: None }
                    }
                    Ok(Some(ClientAnswer::Rejected(rejected))) => {
                        self.end(Error::Rejected(rejected))
                    }
                    Ok(None) if self.eof => self.end(peer_left()),
                    Ok(None) => io(true, pending, self.deadline),
                    Err(error) => self.end(Error::Response(error)),
                },
                Side::Server(upgrade) => match upgrade.poll_head() {
                    None if self.eof => self.end(peer_left()),
                    None => io(true, false, self.deadline),
                    Some(Err(ServerAnswer::Refuse { response, refusal })) => {
                        self.refuse(response, refusal, now);
                        self.poll(now)
                    }
                    // `poll_head` only ever refuses.
                    Some(Err(ServerAnswer::Accept { .. })) => self.end(Error::Closed),
                    Some(Ok(head)) => {
                        self.stage = Stage::Deciding(head.path().into());
                        Step::Decide(head)
                    }
                },
            },
        }
    }

    /// Server: the application's verdict on the request [`Step::Decide`] showed; the
    /// `101` or the refusal is then to be written.
    pub fn answer(&mut self, verdict: impl Into<Verdict>, now: Instant) {
        self.answer_with(verdict.into(), now);
    }

    /// [`answer`](Self::answer) with a verdict that carries data for the connection's
    /// task ([`Accept::with_data`](crate::verdict::Accept::with_data)): an acceptance's
    /// data comes back.
    pub fn answer_with<T>(&mut self, verdict: impl Into<Verdict<T>>, now: Instant) -> Option<T> {
        let (Stage::Deciding(path), Side::Server(upgrade)) = (&mut self.stage, &mut self.side)
        else {
            return None;
        };
        let path = Some(std::mem::take(path));
        match upgrade.answer(verdict) {
            Some(ServerAnswer::Accept {
                response,
                protocol,
                compression,
                early,
                data,
            }) => {
                let mut driver =
                    self.open(Role::Server, [0; 32], protocol, compression, &early, now);
                driver.queue_head(response);
                self.stage = Stage::Accepted(driver, path);
                Some(data)
            }
            Some(ServerAnswer::Refuse { response, refusal }) => {
                self.refuse(response, refusal, now);
                None
            }
            None => {
                self.stage = Stage::Ended(Some(Error::Closed));
                None
            }
        }
    }

    fn refuse(&mut self, response: Vec<u8>, refusal: Refusal, now: Instant) {
        let linger = self.settings.refusal_linger;
        (self.out, self.deadline) = (response, Some(now + linger));
        self.stage = Stage::Refusing {
            refusal,
            shut: false,
            left: REFUSAL_DRAIN,
        };
    }

    fn open(
        &self,
        role: Role,
        seed: [u8; 32],
        protocol: Option<String>,
        compression: Option<Agreed>,
        early: &[u8],
        now: Instant,
    ) -> Box<Driver> {
        let connection = Connection::new(role, self.settings.protocol, seed, now);
        let mut driver = Box::new(Driver::new(connection, self.settings.buffers));
        driver.open_with(protocol, compression, early);
        driver
    }

    fn end(&mut self, error: Error) -> Step {
        self.stage = Stage::Ended(None);
        Step::Failed(error)
    }

    /// Reads once into the handshake's buffer (or, after a refusal, into a scratch whose
    /// bytes are dropped) when [`Step::Io`] asks to read; `Ready(Ok(0))` is end of stream.
    /// Otherwise nothing is read (`Pending`).
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        let result = match (&mut self.stage, &mut self.side) {
            (Stage::Handshaking, Side::Server(upgrade)) => upgrade.read_with(read),
            (Stage::Handshaking, Side::Client(upgrade, _, true)) => upgrade.read_with(read),
            (
                Stage::Refusing {
                    shut: true, left, ..
                },
                _,
            ) => {
                let result = read(&mut [0; 4096]);
                if let Poll::Ready(Ok(n)) = result {
                    *left = left.saturating_sub(n);
                }
                result
            }
            _ => return Poll::Pending,
        };
        self.eof |= matches!(result, Poll::Ready(Ok(0)));
        result
    }

    /// The bytes to write (when [`Step::Io`] asks to write).
    pub fn pending(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of [`pending`](Self::pending) were written.
    pub fn advance(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// The write side is shut after a refusal ([`Step::Shutdown`]): the linger starts.
    pub fn shutdown_done(&mut self, now: Instant) {
        if let Stage::Refusing { shut, .. } = &mut self.stage {
            *shut = true;
            self.deadline = Some(now + self.settings.refusal_linger);
        }
    }

    /// Fires the deadline if it is due at `now`: the connect or handshake timeout
    /// ([`Error::ConnectTimeout`], [`Error::HandshakeTimeout`], or a server's rejection
    /// whose body did not finish), the end of the refusal's linger.
    pub fn handle_deadline(&mut self, now: Instant) {
        if self.deadline.is_none_or(|deadline| deadline > now) {
            return;
        }
        let error = match (&mut self.stage, &mut self.side) {
            (Stage::Ended(_), _) => return,
            (Stage::Refusing { refusal, .. }, _) => Error::Refused(*refusal),
            (_, Side::Server(_)) => Error::HandshakeTimeout,
            (_, Side::Client(_, _, false)) => Error::ConnectTimeout,
            (_, Side::Client(upgrade, _, true)) => upgrade.timed_out(),
        };
        self.stage = Stage::Ended(Some(error));
    }

    /// The transport failed: the handshake ends with `error` (a refusal already decided
    /// stays the answer).
    pub fn fail_io(&mut self, error: io::Error) {
        self.abort(Error::Io(error));
    }

    /// Ends the handshake with `error` (the application gave up on it), unless it has
    /// ended already; a refusal already decided stays the answer.
    pub fn abort(&mut self, error: Error) {
        self.stage = Stage::Ended(Some(match &self.stage {
            Stage::Refusing { refusal, .. } => Error::Refused(*refusal),
            Stage::Ended(Some(_)) => return,
            _ => error,
        }));
    }
}

/// `N` bytes from the operating system's random source.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|error| Error::Io(io::Error::other(error.to_string())))?;
    Ok(bytes)
}

fn peer_left() -> Error {
    let error = io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "peer left during the handshake",
    );
    Error::Io(error)
}

impl Driver {
    /// Queues the handshake's answer (a server's `101`) before any frame.
    fn queue_head(&mut self, response: Vec<u8>) {
        self.send.pending += response.len();
        self.send.segments.push_front(Segment::Payload(response));
    }

    /// Takes what the handshake agreed: the subprotocol, permessage-deflate, and the
    /// frames that arrived with the handshake's last bytes.
    pub fn open_with(
        &mut self,
        protocol: Option<String>,
        compression: Option<Agreed>,
        early: &[u8],
    ) {
        self.push_bytes(early);
        self.set_protocol(protocol);
        if let Some((params, config)) = compression {
            self.enable_compression(params, config);
        }
    }
}
