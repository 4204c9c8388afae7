//! # sockeye-embedded-io: Sockeye over `embedded-io-async`
//!
//! A thin adapter that runs the Sockeye core ([`sockeye_proto`]) over any
//! [`embedded_io_async::Read`] + [`embedded_io_async::Write`] transport: an embassy-net
//! `TcpSocket`, a smoltcp socket wrapped by hand, a UART, or (in tests) a tokio stream.
//! It is `no_std`, has no `unsafe`, and needs no allocator:
//!
//! - **Buffers are the caller's** ([`Buffers`]): one for input (frames are decoded and
//!   unmasked in place, and larger frames stream through it in chunks) and one for output
//!   (control frames, handshake heads, and copies of outgoing payload, which go out as
//!   fragments when they are larger than it).
//! - **Time is the caller's** ([`Clock`]): `now` and `sleep_until`, so embassy-time, a
//!   hardware timer or a tick counter plugs in. The keepalive, idle and close timers of the
//!   [`Config`] are honoured while waiting for input, and the handshake has its own timeout
//!   ([`Options::handshake_timeout`]).
//! - **Randomness is the caller's**: a client takes the application's [`RngCore`]
//!   ([`connect`]) for its key nonce and the seed of its masking keys; a server needs none.
//!
//! Both roles: [`accept`] / [`accept_with`] run the server's handshake (a bad request is
//! answered with its HTTP error, 400 and so on), [`connect`] the client's. Both return a
//! [`WebSocket`]: [`WebSocket::next`] yields the core's [`Event`]s (text and binary
//! chunks, pings, pongs, the peer's Close, then [`Event::Closed`] once), and
//! [`WebSocket::send`], [`WebSocket::ping`] and [`WebSocket::close`] write.
//!
//! ## Why not the std engine
//!
//! The other adapters (tokio, smol, mio) share the core's buffered engine
//! (`sockeye-engine`'s `Driver`), which grows its buffers and assembles whole messages in a
//! `Vec`: it needs `std`. Here there is no allocator, so this crate drives
//! [`Connection`] and the allocation-free handshake functions
//! ([`sockeye_proto::parse_request`], [`sockeye_proto::ClientHandshake`]) directly, over
//! fixed buffers, and hands messages out in chunks ([`Boundary`]) as the core does.
//!
//! ## One task per connection
//!
//! A [`WebSocket`] owns its transport and is driven from one task: the application
//! alternates between [`next`](WebSocket::next) (which also answers pings and runs the
//! timers) and its sends. The transport's `read` is raced against the clock and dropped when
//! a timer fires first, so it must be cancel-safe (embassy-net's `TcpSocket::read` and
//! tokio's streams are). Writes are not raced: a peer that stops reading holds a write until
//! the transport gives up.
//!
//! ## Using it from embassy
//!
//! An embassy application implements [`Clock`] over `embassy_time` (one line each) and
//! passes its `TcpSocket` (it implements the `embedded-io-async` traits). The server below
//! is generic over those traits, so it compiles without embassy:
//!
//! ```
//! use core::time::Duration;
//! use sockeye_embedded_io::{
//!     accept, Buffers, Clock, Config, DataKind, Error, Event, Instant, KeepAlive, Options,
//! };
//! use embedded_io_async::{Read, Write};
//!
//! /// With embassy: `Instant::from_nanos(embassy_time::Instant::now().as_micros() * 1000)`
//! /// and `embassy_time::Timer::at(embassy_time::Instant::from_micros(at.as_nanos() / 1000)).await`.
//! struct EmbassyClock;
//! # impl Clock for EmbassyClock {
//! #     fn now(&mut self) -> Instant { Instant::ZERO }
//! #     async fn sleep_until(&mut self, _deadline: Instant) { core::future::pending().await }
//! # }
//!
//! /// Echo every message back, chunk by chunk (a chunk ends where `end` says), until the
//! /// client closes; then give the socket back to be closed (embassy: `socket.close()`).
//! async fn echo<T: Read + Write>(socket: T) -> Result<T, Error<T::Error>> {
//!     let (mut input, mut output) = ([0u8; 1024], [0u8; 512]);
//!     let buffers = Buffers::new(&mut input, &mut output);
//!     let options = Options::DEFAULT.with_config(
//!         Config::DEFAULT.with_keepalive(Some(KeepAlive::new(Duration::from_secs(20), Duration::from_secs(10)))),
//!     );
//!     let mut ws = accept(socket, EmbassyClock, buffers, &options).await?;
//!     let mut echo = [0u8; 1024];
//!     loop {
//!         // The event borrows the input buffer: copy it out before sending.
//!         let (kind, bytes, end) = match ws.next().await? {
//!             Event::Text { text, end } => (DataKind::Text, text.as_bytes(), end),
//!             Event::Binary { bytes, end } => (DataKind::Binary, bytes, end),
//!             Event::Closed(_) => break,
//!             _ => continue, // pings are answered already
//!         };
//!         let len = bytes.len();
//!         echo[..len].copy_from_slice(bytes);
//!         ws.send_chunk(kind, end.is_message_end(), &mut echo[..len]).await?;
//!     }
//!     Ok(ws.into_inner().0)
//! }
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use core::fmt;
use core::future::{poll_fn, Future};
use core::ops::Range;
use core::pin::pin;
use core::task::Poll;
use core::time::Duration;

use embedded_io_async::{Read, Write};
pub use rand_core::RngCore;
use sockeye_proto::handshake::{Accept, Response, UpgradeRequest, EMPTY_HEADER};
use sockeye_proto::{parse_request, RequestError, ResponseError, Status, Transmit, WriteError};

pub use sockeye_proto::handshake::{ClientRequest, Rejection};
pub use sockeye_proto::{
    Boundary, CloseCode, CloseFrame, Closed, Config, Connection, DataKind, Event, Instant,
    KeepAlive, ProtocolError, SendError, MIN_INPUT_BUFFER, MIN_TRANSMIT_BUFFER,
};

/// How many request or response header lines the handshake parses (on the stack).
pub const MAX_HEADERS: usize = 24;

/// The largest frame head (2 bytes, 8 of extended length, 4 of mask).
const MAX_HEAD: usize = 14;

/// The application's clock: the current time, and a way to wait for a deadline.
///
/// Times are [`Instant`]s (nanoseconds since any fixed epoch). With embassy-time:
/// `now` is `Instant::from_nanos(embassy_time::Instant::now().as_micros() * 1000)` and
/// `sleep_until` awaits `embassy_time::Timer::at(..)`. A firmware without a timer driver can
/// count loop iterations.
#[allow(async_fn_in_trait)]
pub trait Clock {
    /// The current time.
    fn now(&mut self) -> Instant;
    /// Completes at `deadline` or later (at once if it has passed). It may be dropped
    /// before then.
    async fn sleep_until(&mut self, deadline: Instant);
}

impl<C: Clock + ?Sized> Clock for &mut C {
    fn now(&mut self) -> Instant {
        (**self).now()
    }

    async fn sleep_until(&mut self, deadline: Instant) {
        (**self).sleep_until(deadline).await
    }
}

/// The caller's buffers for one connection.
///
/// `input` must hold at least [`MIN_INPUT_BUFFER`] bytes and the peer's whole handshake
/// head (a browser's request is 400 to 800 bytes; a server's `101` under 200). `output`
/// must hold at least [`MIN_TRANSMIT_BUFFER`] bytes and our own handshake head (about 200
/// bytes plus subprotocols and extra headers); payloads larger than `output` less 14 bytes
/// go out as several fragments. Too small a buffer is [`Error::BufferTooSmall`].
#[derive(Debug)]
pub struct Buffers<'b> {
    input: &'b mut [u8],
    output: &'b mut [u8],
}

impl<'b> Buffers<'b> {
    /// The input and output buffers.
    pub fn new(input: &'b mut [u8], output: &'b mut [u8]) -> Self {
        Buffers { input, output }
    }

    /// One buffer cut in two: the first `input_len` bytes for input, the rest for output.
    pub fn split(buffer: &'b mut [u8], input_len: usize) -> Self {
        let (input, output) = buffer.split_at_mut(input_len.min(buffer.len()));
        Buffers { input, output }
    }
}

/// Handshake settings and the connection's [`Config`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Options<'a> {
    /// The connection's limits and timers (keepalive, idle, close).
    pub config: Config,
    /// How long the handshake may take, from the call to its end. Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// Server: the subprotocols it speaks, in order of preference; the first one the client
    /// offers is agreed. (A client offers its own in its [`ClientRequest`].)
    pub protocols: &'a [&'a str],
}

impl Options<'static> {
    /// The default [`Config`], a 10 s handshake timeout, no subprotocols.
    pub const DEFAULT: Options<'static> = Options {
        config: Config::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(10)),
        protocols: &[],
    };
}

impl<'a> Options<'a> {
    /// These options with another [`Config`].
    pub const fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// These options with another handshake timeout (`None`: wait forever).
    pub const fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// These options with the subprotocols a server speaks.
    pub const fn with_protocols<'p>(self, protocols: &'p [&'p str]) -> Options<'p>
    where
        'a: 'p,
    {
        Options {
            config: self.config,
            handshake_timeout: self.handshake_timeout,
            protocols,
        }
    }
}

impl Default for Options<'static> {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a handshake or a connection call failed. `E` is the transport's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The transport failed.
    Io(E),
    /// The transport ended during the handshake.
    Eof,
    /// The handshake did not finish within [`Options::handshake_timeout`].
    HandshakeTimeout,
    /// Server: the request was not a valid upgrade; its HTTP error (400, 426, 431) was sent.
    Request(RequestError),
    /// Server: the application turned the request down with this status, which was sent.
    Refused(u16),
    /// Client: the server's response broke RFC 6455.
    Response(ResponseError),
    /// Client: the server answered with this HTTP status instead of 101.
    Rejected(u16),
    /// A buffer is smaller than the minimum, or than a handshake head (the size needed,
    /// when known).
    BufferTooSmall(Option<usize>),
    /// The handshake head could not be written (an invalid field in the request).
    Write(WriteError),
    /// The peer broke the protocol; the Close with the error's code was sent.
    Protocol(ProtocolError),
    /// A local call that the connection refused (closing, a bad close code...).
    Send(SendError),
    /// The connection is over: [`Event::Closed`] was already returned.
    Closed,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(error) => write!(f, "transport error: {error:?}"),
            Error::Eof => f.write_str("the transport ended during the handshake"),
            Error::HandshakeTimeout => f.write_str("the handshake timed out"),
            Error::Request(error) => write!(f, "bad upgrade request: {error}"),
            Error::Refused(status) => write!(f, "request refused with {status}"),
            Error::Response(error) => write!(f, "bad upgrade response: {error}"),
            Error::Rejected(status) => write!(f, "the server answered {status}"),
            Error::BufferTooSmall(needed) => write!(f, "buffer too small (needed {needed:?})"),
            Error::Write(error) => write!(f, "cannot write the handshake: {error}"),
            Error::Protocol(error) => write!(f, "protocol error: {error}"),
            Error::Send(error) => write!(f, "{error}"),
            Error::Closed => f.write_str("the connection is closed"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

impl<E> From<SendError> for Error<E> {
    fn from(error: SendError) -> Self {
        Error::Send(error)
    }
}

impl<E> From<WriteError> for Error<E> {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::BufferTooSmall { needed } => Error::BufferTooSmall(Some(needed)),
            other => Error::Write(other),
        }
    }
}

/// Runs `future` until it completes (`Some`) or `deadline` passes first (`None`, and the
/// future is dropped). Without a deadline it just awaits the future.
async fn race<F: Future, C: Clock>(
    future: F,
    clock: &mut C,
    deadline: Option<Instant>,
) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut sleep = pin!(async {
        match deadline {
            Some(deadline) => clock.sleep_until(deadline).await,
            None => core::future::pending().await,
        }
    });
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

async fn write_all<T: Write>(io: &mut T, mut bytes: &[u8]) -> Result<(), Error<T::Error>> {
    while !bytes.is_empty() {
        match io.write(bytes).await.map_err(Error::Io)? {
            // A transport that takes nothing will never take the rest.
            0 => return Err(Error::Closed),
            n => bytes = &bytes[n..],
        }
    }
    Ok(())
}

/// Writes `head` (a rejection or acceptance) and flushes it.
async fn send_head<T: Write>(io: &mut T, head: &[u8]) -> Result<(), Error<T::Error>> {
    write_all(io, head).await?;
    io.flush().await.map_err(Error::Io)
}

/// Reads more of a handshake head into `input[*len..]`, within `deadline`.
async fn read_head<T: Read, C: Clock>(
    io: &mut T,
    clock: &mut C,
    input: &mut [u8],
    len: &mut usize,
    deadline: Option<Instant>,
) -> Result<(), Error<T::Error>> {
    match race(io.read(&mut input[*len..]), clock, deadline).await {
        None => Err(Error::HandshakeTimeout),
        Some(Ok(0)) => Err(Error::Eof),
        Some(Ok(n)) => {
            *len += n;
            Ok(())
        }
        Some(Err(error)) => Err(Error::Io(error)),
    }
}

fn check_buffers<E>(buffers: &Buffers<'_>) -> Result<(), Error<E>> {
    if buffers.input.len() < MIN_INPUT_BUFFER {
        return Err(Error::BufferTooSmall(Some(MIN_INPUT_BUFFER)));
    }
    if buffers.output.len() < MIN_TRANSMIT_BUFFER {
        return Err(Error::BufferTooSmall(Some(MIN_TRANSMIT_BUFFER)));
    }
    Ok(())
}

/// What a step of a handshake decided: send the first `send` bytes of the output buffer
/// (none if 0), then read more of the peer's head or end.
struct Step<'p, E> {
    send: usize,
    then: Then<'p, E>,
}

/// What follows a step's send.
enum Then<'p, E> {
    /// Read more of the peer's head, then step again.
    Read,
    /// The handshake is over: the length of the peer's head and the agreed subprotocol,
    /// or the error.
    End(Result<(usize, Option<&'p str>), Error<E>>),
}

impl<'p, E> Step<'p, E> {
    fn end(send: usize, outcome: Result<(usize, Option<&'p str>), Error<E>>) -> Self {
        Step {
            send,
            then: Then::End(outcome),
        }
    }

    fn fail(error: impl Into<Error<E>>) -> Self {
        Step::end(0, Err(error.into()))
    }

    const READ: Self = Step {
        send: 0,
        then: Then::Read,
    };
}

/// A role's step of the handshake: given the peer's head so far, whether it fills the
/// input buffer, and the output buffer, what to send and what then.
type StepFn<'s, 'b, E> = dyn FnMut(&[u8], bool, &mut [u8]) -> Step<'b, E> + 's;

/// The handshake of either role: `step` sees the peer's head so far (and whether it fills
/// the input buffer) and says what to send and whether to read on. One loop for both roles,
/// the roles' steps behind a `dyn` so that it is compiled once.
async fn handshake<'b, T: Read + Write, C: Clock>(
    mut io: T,
    mut clock: C,
    buffers: Buffers<'b>,
    options: &Options<'_>,
    role: sockeye_proto::Role,
    seed: [u8; 32],
    step: &mut StepFn<'_, 'b, T::Error>,
) -> Result<WebSocket<'b, T, C>, Error<T::Error>> {
    check_buffers(&buffers)?;
    let Buffers { input, output } = buffers;
    let deadline = options.handshake_timeout.map(|t| now(&mut clock) + t);
    let mut len = 0;
    let (head_len, protocol) = loop {
        let Step { send, then } = step(&input[..len], len == input.len(), output);
        if send > 0 {
            send_head(&mut io, &output[..send]).await?;
        }
        match then {
            Then::Read => read_head(&mut io, &mut clock, input, &mut len, deadline).await?,
            Then::End(outcome) => break outcome?,
        }
    };
    let connection = Connection::new(role, options.config, seed, now(&mut clock));
    Ok(WebSocket::new(
        io,
        clock,
        connection,
        input,
        head_len..len,
        output,
        protocol,
    ))
}

/// The clock's time. One call site for all: the application's `now` is inlined once.
#[inline(never)]
fn now<C: Clock>(clock: &mut C) -> Instant {
    clock.now()
}

/// Server: reads the client's upgrade request from `io`, answers `101 Switching Protocols`
/// (agreeing on the first of [`Options::protocols`] the client offers) and returns the
/// connection. A request that is not a valid upgrade is answered with its HTTP error (400,
/// 426 or 431) and returned as [`Error::Request`].
pub async fn accept<'b, T: Read + Write, C: Clock>(
    io: T,
    clock: C,
    buffers: Buffers<'b>,
    options: &Options<'b>,
) -> Result<WebSocket<'b, T, C>, Error<T::Error>> {
    accept_with(io, clock, buffers, options, |_| Ok(())).await
}

/// [`accept`], with the application's say: `check` sees the valid request (path, host,
/// origin, headers) and may turn it down with a [`Rejection`] (404, 403, 401...), which is
/// sent and returned as [`Error::Refused`].
pub async fn accept_with<'b, T, C, F>(
    io: T,
    clock: C,
    buffers: Buffers<'b>,
    options: &Options<'b>,
    mut check: F,
) -> Result<WebSocket<'b, T, C>, Error<T::Error>>
where
    T: Read + Write,
    C: Clock,
    F: FnMut(&UpgradeRequest<'_, '_>) -> Result<(), Rejection<'static>>,
{
    let protocols = options.protocols;
    // Every answer, the 101 or an error, is written into `output` and sent; then the
    // connection starts or the error is returned.
    let mut step = |input: &[u8], full: bool, output: &mut [u8]| {
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        let invalid = match parse_request(input, &mut headers) {
            Ok(Status::Complete(request)) => match check(&request) {
                Ok(()) => {
                    let protocol = request.select_protocol(protocols);
                    return match request.accept(&Accept::new().with_protocol(protocol), output) {
                        Ok(n) => Step::end(n, Ok((request.head_len(), protocol))),
                        Err(error) => Step::fail(error),
                    };
                }
                Err(rejection) => Err(rejection),
            },
            Ok(Status::Partial) if !full => return Step::READ,
            // The head fills the buffer and has not ended.
            Ok(Status::Partial) => Ok(RequestError::HeadTooLarge),
            Err(error) => Ok(error),
        };
        // The request's HTTP error, or the application's refusal.
        let (rejection, error) = match invalid {
            Ok(error) => (error.rejection(), Error::Request(error)),
            Err(rejection) => (rejection, Error::Refused(rejection.status())),
        };
        match rejection.write(output) {
            Ok(n) => Step::end(n, Err(error)),
            Err(error) => Step::fail(error),
        }
    };
    let role = sockeye_proto::Role::Server;
    handshake(io, clock, buffers, options, role, [0; 32], &mut step).await
}

/// Client: sends the upgrade `request`, checks the server's `101` and returns the
/// connection. `rng` is the application's random number generator (a chip's TRNG driver,
/// or a CSPRNG seeded from it): 16 bytes of it make the `Sec-WebSocket-Key` nonce and 32
/// seed the core's ChaCha8 masking keys; nothing else draws from it. A server that answers
/// with another status is [`Error::Rejected`].
///
/// This adapter has no permessage-deflate codec, so it never offers compression:
/// [`ClientRequest::deflate`] is ignored.
pub async fn connect<'b, T: Read + Write, C: Clock>(
    io: T,
    clock: C,
    buffers: Buffers<'b>,
    request: &ClientRequest<'b>,
    rng: &mut impl RngCore,
    options: &Options<'_>,
) -> Result<WebSocket<'b, T, C>, Error<T::Error>> {
    let mut nonce = [0u8; 16];
    let mut mask_seed = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    rng.fill_bytes(&mut mask_seed);
    let handshake_state = sockeye_proto::ClientHandshake::new(nonce);
    let mut sent = false;
    let mut step = |input: &[u8], full: bool, output: &mut [u8]| {
        // The request is copied without permessage-deflate right before each use, so that
        // the compiler sees that it is never offered and leaves out the code that writes an
        // offer and checks an answer.
        let plain = request.with_deflate(None);
        if !sent {
            sent = true;
            return match handshake_state.write_request(&plain, output) {
                Ok(n) => Step {
                    send: n,
                    then: Then::Read,
                },
                Err(error) => Step::fail(error),
            };
        }
        let mut headers = [EMPTY_HEADER; MAX_HEADERS];
        match handshake_state.parse_response(&plain, input, &mut headers) {
            Ok(Status::Complete(Response::Accepted(accepted))) => {
                let protocol = accepted
                    .protocol()
                    .and_then(|agreed| request.protocols.iter().copied().find(|p| *p == agreed));
                Step::end(0, Ok((accepted.consumed(), protocol)))
            }
            Ok(Status::Complete(Response::Rejected(rejected))) => {
                Step::fail(Error::Rejected(rejected.status()))
            }
            Ok(Status::Partial) if !full => Step::READ,
            Ok(Status::Partial) => Step::fail(Error::BufferTooSmall(None)),
            Err(error) => Step::fail(Error::Response(error)),
        }
    };
    let role = sockeye_proto::Role::Client;
    handshake(io, clock, buffers, options, role, mask_seed, &mut step).await
}

/// What [`WebSocket::next`] found, with the position of its bytes in the input buffer (so
/// that the loop that finds it holds no borrow of the buffer: see `next`).
type Found = (Kind, Range<usize>);

/// The kind of event found, without its bytes.
enum Kind {
    Text(Boundary),
    Binary(Boundary),
    Ping,
    Pong,
    Close(Option<CloseCode>),
    Closed(Closed),
}

/// An event as positions in the input buffer that starts at address `base` (it always
/// does: events borrow the input).
fn locate(base: usize, event: Event<'_>) -> Found {
    let (kind, bytes): (Kind, &[u8]) = match event {
        Event::Text { text, end } => (Kind::Text(end), text.as_bytes()),
        Event::Binary { bytes, end } => (Kind::Binary(end), bytes),
        // This adapter never offers or accepts compression, so the core never enables it
        // and never produces this; were it to, the bytes are passed on as they are.
        Event::Compressed { bytes, end, .. } => (Kind::Binary(end), bytes),
        Event::Ping(payload) => (Kind::Ping, payload),
        Event::Pong(payload) => (Kind::Pong, payload),
        Event::Close(frame) => (Kind::Close(frame.code), frame.reason.as_bytes()),
        Event::Closed(closed) => (Kind::Closed(closed), &[]),
    };
    let start = (bytes.as_ptr() as usize).saturating_sub(base);
    (kind, start..start + bytes.len())
}

/// One WebSocket connection over the transport `T`, timed by the clock `C`, in the caller's
/// buffers. Made by [`accept`], [`accept_with`] or [`connect`].
pub struct WebSocket<'b, T, C> {
    io: T,
    clock: C,
    connection: Connection,
    input: &'b mut [u8],
    /// The unconsumed input: `input[start..end]`.
    start: usize,
    end: usize,
    output: &'b mut [u8],
    protocol: Option<&'b str>,
    /// A terminal event found while sending, reported by the next `next`.
    pending: Option<Closed>,
    /// [`Event::Closed`] was returned.
    finished: bool,
    /// The core asked for the transport to be shut down.
    shutdown: bool,
}

impl<T, C> fmt::Debug for WebSocket<'_, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("connection", &self.connection)
            .field("buffered", &(self.end - self.start))
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// Drains the core's control frames into the transport; notes a wanted shutdown.
async fn drain<T: Write>(
    connection: &mut Connection,
    io: &mut T,
    output: &mut [u8],
    shutdown: &mut bool,
) -> Result<(), Error<T::Error>> {
    let mut wrote = false;
    while let Some(transmit) = connection.poll_transmit(output) {
        match transmit {
            Transmit::Bytes(n) => {
                write_all(io, &output[..n]).await?;
                wrote = true;
            }
            Transmit::Shutdown => *shutdown = true,
        }
    }
    if wrote {
        io.flush().await.map_err(Error::Io)?;
    }
    Ok(())
}

impl<'b, T: Read + Write, C: Clock> WebSocket<'b, T, C> {
    fn new(
        io: T,
        clock: C,
        connection: Connection,
        input: &'b mut [u8],
        buffered: Range<usize>,
        output: &'b mut [u8],
        protocol: Option<&'b str>,
    ) -> Self {
        WebSocket {
            io,
            clock,
            connection,
            input,
            start: buffered.start,
            end: buffered.end,
            output,
            protocol,
            pending: None,
            finished: false,
            shutdown: false,
        }
    }

    /// The next event from the peer, borrowed from the input buffer: a chunk of a text or
    /// binary message (whole characters for text; [`Boundary`] says where it ends), a Ping
    /// (already answered), a Pong, the peer's Close (already answered, or the answer to
    /// ours), and last [`Event::Closed`] with how the connection ended. After that, calls
    /// return [`Error::Closed`].
    ///
    /// While it waits for input it runs the connection's timers: a keepalive Ping goes out,
    /// and a peer that does not answer, an idle connection or an unfinished close handshake
    /// ends it ([`Closed::TimedOut`]). After [`Event::Closed`], close the transport (see
    /// [`wants_shutdown`](Self::wants_shutdown)). A protocol violation by the peer is
    /// [`Error::Protocol`] (its Close was sent); the connection is then over.
    pub async fn next(&mut self) -> Result<Event<'_>, Error<T::Error>> {
        let (kind, range) = self.find().await?;
        let bytes = self.input.get(range).unwrap_or_default();
        // Text was validated by the core; it is checked again here because the event was
        // found in a loop that cannot hand out its borrow (safe code, no `unsafe`).
        let text = || core::str::from_utf8(bytes).unwrap_or_default();
        Ok(match kind {
            Kind::Text(end) => Event::Text { text: text(), end },
            Kind::Binary(end) => Event::Binary { bytes, end },
            Kind::Ping => Event::Ping(bytes),
            Kind::Pong => Event::Pong(bytes),
            Kind::Close(code) => Event::Close(CloseFrame {
                code,
                reason: text(),
            }),
            Kind::Closed(closed) => Event::Closed(closed),
        })
    }

    /// The loop of [`next`](Self::next): decode, and read or wait when more is needed.
    /// Whatever a round found, what the core queued goes out first (one `drain` for all).
    async fn find(&mut self) -> Result<Found, Error<T::Error>> {
        loop {
            let outcome = if let Some(closed) = self.pending.take() {
                self.finished = true;
                Some(Ok((Kind::Closed(closed), 0..0)))
            } else if self.finished {
                return Err(Error::Closed);
            } else {
                let now = now(&mut self.clock);
                let base = self.input.as_ptr() as usize;
                match self
                    .connection
                    .handle_input(&mut self.input[self.start..self.end], now)
                {
                    Ok(read) => {
                        self.start += read.consumed;
                        match read.event {
                            None if read.consumed > 0 => continue,
                            None => None,
                            Some(event) => {
                                let found = locate(base, event);
                                if let (Kind::Closed(_), _) = found {
                                    self.finished = true;
                                }
                                Some(Ok(found))
                            }
                        }
                    }
                    Err(error) => {
                        self.finished = true;
                        Some(Err(Error::Protocol(error)))
                    }
                }
            };
            self.drain().await?;
            if let Some(outcome) = outcome {
                return outcome;
            }
            // Nothing more in the buffer: read or wait. A terminal event is reported by
            // the next round, after what it queued has gone out.
            self.pending = self.read_more().await?;
        }
    }

    /// Reads more input, or runs the timers when one is due first. Returns the terminal
    /// event if the transport ended or a timer ended the connection.
    async fn read_more(&mut self) -> Result<Option<Closed>, Error<T::Error>> {
        if self.start > 0 {
            self.input.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.input.len() {
            // The core always progresses with MIN_INPUT_BUFFER bytes; never reached.
            return Err(Error::BufferTooSmall(None));
        }
        let deadline = self.connection.poll_timeout();
        let read = race(
            self.io.read(&mut self.input[self.end..]),
            &mut self.clock,
            deadline,
        )
        .await;
        let now = now(&mut self.clock);
        match read {
            Some(Ok(0)) => Ok(match self.connection.handle_eof(now) {
                Some(Event::Closed(closed)) => Some(closed),
                _ => Some(Closed::Abnormal),
            }),
            Some(Ok(n)) => {
                self.end += n;
                Ok(None)
            }
            Some(Err(error)) => Err(Error::Io(error)),
            None => Ok(match self.connection.handle_timeout(now) {
                Some(Event::Closed(closed)) => Some(closed),
                _ => None,
            }),
        }
    }

    async fn drain(&mut self) -> Result<(), Error<T::Error>> {
        drain(
            &mut self.connection,
            &mut self.io,
            self.output,
            &mut self.shutdown,
        )
        .await
    }

    /// Sends a whole message, copied through the output buffer: one frame, or several
    /// fragments when `payload` is larger than the output buffer less 14 bytes.
    pub async fn send(&mut self, kind: DataKind, payload: &[u8]) -> Result<(), Error<T::Error>> {
        // Control frames queued before go first. Nothing is queued while sending (only
        // input, timers, `ping` and `close` queue, and each drains), so nothing after.
        self.drain().await?;
        let room = self.output.len() - MAX_HEAD;
        let mut chunks = payload.chunks(room);
        let mut next = chunks.next();
        loop {
            let chunk = next.unwrap_or_default();
            next = chunks.next();
            let fin = next.is_none();
            let body = &mut self.output[MAX_HEAD..MAX_HEAD + chunk.len()];
            body.copy_from_slice(chunk);
            let head = self.connection.send(kind, fin, body)?;
            let at = MAX_HEAD - head.len();
            self.output[at..MAX_HEAD].copy_from_slice(&head);
            write_all(&mut self.io, &self.output[at..MAX_HEAD + chunk.len()]).await?;
            if fin {
                break;
            }
        }
        self.io.flush().await.map_err(Error::Io)
    }

    /// Sends a text message.
    // `send`'s future itself rather than an `async fn` around it: one state machine less.
    pub fn send_text<'s>(
        &'s mut self,
        text: &'s str,
    ) -> impl Future<Output = Result<(), Error<T::Error>>> + use<'s, 'b, T, C> {
        self.send(DataKind::Text, text.as_bytes())
    }

    /// Sends a binary message.
    pub fn send_binary<'s>(
        &'s mut self,
        bytes: &'s [u8],
    ) -> impl Future<Output = Result<(), Error<T::Error>>> + use<'s, 'b, T, C> {
        self.send(DataKind::Binary, bytes)
    }

    /// Sends one frame of a message from the caller's own buffer, without a copy: `payload`
    /// is masked in place on a client (so it is garbled afterwards). With `fin == false`
    /// the message continues with the next call of the same kind. Text fragments may split
    /// characters; the whole message must be UTF-8.
    pub async fn send_chunk(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: &mut [u8],
    ) -> Result<(), Error<T::Error>> {
        // As in `send`: queued control frames first, and nothing is queued meanwhile.
        self.drain().await?;
        let head = self.connection.send(kind, fin, payload)?;
        write_all(&mut self.io, &head).await?;
        write_all(&mut self.io, payload).await?;
        self.io.flush().await.map_err(Error::Io)
    }

    /// Sends a Ping with `payload` (at most 125 bytes); its Pong comes from
    /// [`next`](Self::next).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error<T::Error>> {
        let now = now(&mut self.clock);
        self.connection.ping(payload, now)?;
        self.drain().await
    }

    /// Starts the close handshake: sends a Close with `code` and `reason` (at most 123
    /// bytes). Keep calling [`next`](Self::next) until [`Event::Closed`]: it returns the
    /// peer's Close, then the end (bounded by [`Config::close_timeout`]).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error<T::Error>> {
        let now = now(&mut self.clock);
        self.connection.close(code, reason, now)?;
        self.drain().await
    }
}

impl<'b, T, C> WebSocket<'b, T, C> {
    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&'b str> {
        self.protocol
    }

    /// The core state machine (state, config, outcome, the peer's Close).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Whether the core asked for the transport to be shut down: all frames are out
    /// (after a close handshake or a failure). Close the socket then (embassy-net:
    /// `socket.close()`; a server closes first, the client waits for it).
    pub fn wants_shutdown(&self) -> bool {
        self.shutdown
    }

    /// The transport, to use beside the connection (socket options, addresses).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.io
    }

    /// The transport and the clock back, to close the socket at the end.
    pub fn into_inner(self) -> (T, C) {
        (self.io, self.clock)
    }
}
