//! A client and a server joined by in-memory pipes, on a virtual clock.

use core::time::Duration;

use sockeye_proto::{CloseCode, Config, DataKind, Instant, Role, SendError};

use crate::endpoint::{Endpoint, DEFAULT_READ_BUFFER, DEFAULT_SEED};
use crate::XorShift;

/// One end of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The client (masks what it sends).
    Client,
    /// The server.
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }

    /// The protocol role of this side.
    pub fn role(self) -> Role {
        match self {
            Side::Client => Role::Client,
            Side::Server => Role::Server,
        }
    }
}

/// How a byte stream is cut into reads. Each chunk is delivered as one read, or several
/// when the receiver's buffer has less room.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Chunking {
    /// Everything available at once.
    #[default]
    Whole,
    /// Chunks of this many bytes (0 counts as 1).
    Fixed(usize),
    /// Chunk sizes taken in turn, cycling (0 counts as 1).
    Cycle(Vec<usize>),
    /// Cut the stream at these absolute offsets (counted from the first byte this
    /// chunking delivered); ascending.
    SplitAt(Vec<usize>),
    /// Random sizes in `1..=max` from a seeded generator.
    Random {
        /// The generator's seed.
        seed: u64,
        /// The largest chunk.
        max: usize,
    },
}

/// The running state of a [`Chunking`] over one stream.
#[derive(Clone, Debug, Default)]
pub struct Chunker {
    index: usize,
    offset: usize,
    rng: Option<XorShift>,
}

impl Chunker {
    /// The size of the next chunk when `available` bytes are waiting (`1..=available`),
    /// assuming the caller delivers all of it.
    pub fn next(&mut self, chunking: &Chunking, available: usize) -> usize {
        if available == 0 {
            return 0;
        }
        let want = match chunking {
            Chunking::Whole => available,
            Chunking::Fixed(n) => *n,
            Chunking::Cycle(sizes) if sizes.is_empty() => available,
            Chunking::Cycle(sizes) => {
                let n = sizes[self.index % sizes.len()];
                self.index += 1;
                n
            }
            Chunking::SplitAt(cuts) => cuts
                .iter()
                .find(|&&cut| cut > self.offset)
                .map_or(available, |cut| cut - self.offset),
            Chunking::Random { seed, max } => {
                let rng = self.rng.get_or_insert_with(|| XorShift::new(*seed));
                rng.range(1, (*max).max(1))
            }
        };
        let n = want.clamp(1, available);
        self.offset += n;
        n
    }
}

#[derive(Debug, Default)]
struct Link {
    chunking: Chunking,
    chunker: Chunker,
    paused: bool,
    hold_eof: bool,
}

/// Builds a [`Pair`].
#[derive(Clone, Debug)]
pub struct PairBuilder {
    client_config: Config,
    server_config: Config,
    client_buffer: usize,
    server_buffer: usize,
    to_client: Chunking,
    to_server: Chunking,
    counting: bool,
    seed: [u8; 32],
    start: Instant,
    reserve: usize,
}

impl PairBuilder {
    /// The same settings on both sides.
    pub fn config(mut self, config: Config) -> Self {
        self.client_config = config;
        self.server_config = config;
        self
    }

    /// The client's settings.
    pub fn client_config(mut self, config: Config) -> Self {
        self.client_config = config;
        self
    }

    /// The server's settings.
    pub fn server_config(mut self, config: Config) -> Self {
        self.server_config = config;
        self
    }

    /// The read buffer size of both sides.
    pub fn read_buffer(mut self, size: usize) -> Self {
        self.client_buffer = size;
        self.server_buffer = size;
        self
    }

    /// The read buffer size of one side.
    pub fn read_buffer_of(mut self, side: Side, size: usize) -> Self {
        match side {
            Side::Client => self.client_buffer = size,
            Side::Server => self.server_buffer = size,
        }
        self
    }

    /// How bytes are cut into reads in both directions.
    pub fn chunking(mut self, chunking: Chunking) -> Self {
        self.to_client = chunking.clone();
        self.to_server = chunking;
        self
    }

    /// How bytes are cut into reads on their way to `side`.
    pub fn chunking_to(mut self, side: Side, chunking: Chunking) -> Self {
        match side {
            Side::Client => self.to_client = chunking,
            Side::Server => self.to_server = chunking,
        }
        self
    }

    /// Keep counts only (no transcripts, no sent-bytes logs): a steady state allocates
    /// nothing.
    pub fn counting(mut self) -> Self {
        self.counting = true;
        self
    }

    /// Reserve room for payloads and backlogs up to `bytes` on both sides.
    pub fn reserve(mut self, bytes: usize) -> Self {
        self.reserve = bytes;
        self
    }

    /// The client's masking seed.
    pub fn seed(mut self, seed: [u8; 32]) -> Self {
        self.seed = seed;
        self
    }

    /// The virtual clock's start.
    pub fn start(mut self, start: Instant) -> Self {
        self.start = start;
        self
    }

    /// The pair.
    pub fn build(self) -> Pair {
        let make = |role, config, buffer| {
            let mut endpoint =
                Endpoint::with_seed(role, config, self.seed, self.start).read_buffer(buffer);
            if self.counting {
                endpoint = endpoint.counting();
            }
            endpoint.reserve(self.reserve);
            endpoint
        };
        Pair {
            client: make(Role::Client, self.client_config, self.client_buffer),
            server: make(Role::Server, self.server_config, self.server_buffer),
            now: self.start,
            to_client: Link {
                chunking: self.to_client,
                ..Link::default()
            },
            to_server: Link {
                chunking: self.to_server,
                ..Link::default()
            },
        }
    }
}

/// A client [`Endpoint`] and a server [`Endpoint`] joined by in-memory pipes, with a
/// virtual clock.
///
/// Local calls ([`send`](Self::send), [`ping`](Self::ping), [`close`](Self::close)) only
/// put bytes in the sender's outbound pipe; [`flush`](Self::flush) carries bytes across
/// (cut into reads by each direction's [`Chunking`]) until nothing moves, and turns a
/// side's `Transmit::Shutdown` into end of stream for the other once its bytes are read.
/// [`advance`](Self::advance) moves the clock, fires both sides' timers and flushes.
#[derive(Debug)]
pub struct Pair {
    /// The client side.
    pub client: Endpoint,
    /// The server side.
    pub server: Endpoint,
    now: Instant,
    to_client: Link,
    to_server: Link,
}

impl Default for Pair {
    fn default() -> Self {
        Pair::new()
    }
}

impl Pair {
    /// A pair with default settings, 4 KiB read buffers and whole reads.
    pub fn new() -> Pair {
        Pair::builder().build()
    }

    /// A builder with default settings, but keepalive off: the virtual clock jumps far,
    /// and the tests that want Pings configure them (keepalive is on by default in
    /// `Config`).
    pub fn builder() -> PairBuilder {
        let config = Config::default().with_keepalive(None);
        PairBuilder {
            client_config: config,
            server_config: config,
            client_buffer: DEFAULT_READ_BUFFER,
            server_buffer: DEFAULT_READ_BUFFER,
            to_client: Chunking::Whole,
            to_server: Chunking::Whole,
            counting: false,
            seed: DEFAULT_SEED,
            start: Instant::ZERO,
            reserve: 0,
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// One side.
    pub fn endpoint(&self, side: Side) -> &Endpoint {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// One side, mutably.
    pub fn endpoint_mut(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Sends a whole message from `side` in one frame (not yet delivered).
    pub fn send(&mut self, side: Side, kind: DataKind, payload: &[u8]) -> Result<(), SendError> {
        self.endpoint_mut(side).send(kind, payload)
    }

    /// Sends a message from `side` as these fragments (not yet delivered).
    pub fn send_fragments(
        &mut self,
        side: Side,
        kind: DataKind,
        fragments: &[&[u8]],
    ) -> Result<(), SendError> {
        self.endpoint_mut(side).send_fragments(kind, fragments)
    }

    /// Sends a Ping from `side` (not yet delivered).
    pub fn ping(&mut self, side: Side, payload: &[u8]) -> Result<(), SendError> {
        let now = self.now;
        self.endpoint_mut(side).ping(payload, now)
    }

    /// Starts the close handshake from `side` (not yet delivered).
    pub fn close(&mut self, side: Side, code: CloseCode, reason: &str) -> Result<(), SendError> {
        let now = self.now;
        self.endpoint_mut(side).close(code, reason, now)
    }

    /// Stops delivering bytes (and end of stream) to `side`; they wait in the pipe.
    pub fn pause(&mut self, to: Side) {
        self.link_mut(to).paused = true;
    }

    /// Delivers to `side` again (at the next flush).
    pub fn resume(&mut self, to: Side) {
        self.link_mut(to).paused = false;
    }

    /// Holds back end of stream to `side` (its bytes still flow) while `hold` is true.
    pub fn hold_eof(&mut self, to: Side, hold: bool) {
        self.link_mut(to).hold_eof = hold;
    }

    /// Changes how bytes are cut on their way to `side`.
    pub fn set_chunking(&mut self, to: Side, chunking: Chunking) {
        let link = self.link_mut(to);
        link.chunking = chunking;
        link.chunker = Chunker::default();
    }

    /// Throws away the bytes in flight to `side` (a black hole); returns how many.
    pub fn discard_in_flight(&mut self, to: Side) -> usize {
        let from = self.endpoint_mut(to.peer()).outbound_mut();
        let n = from.len();
        from.consume(n);
        n
    }

    /// The transport to `side` ends now (a reset or a dead link): `side` reads end of
    /// stream, whatever is still in flight to it is lost.
    pub fn cut(&mut self, to: Side) {
        self.discard_in_flight(to);
        let now = self.now;
        let endpoint = self.endpoint_mut(to);
        if !endpoint.eof_received() {
            endpoint.eof(now);
        }
    }

    fn link_mut(&mut self, to: Side) -> &mut Link {
        match to {
            Side::Client => &mut self.to_client,
            Side::Server => &mut self.to_server,
        }
    }

    /// Carries bytes to `side` until its peer's pipe is empty (or the link is paused);
    /// delivers end of stream after a Shutdown. Returns whether anything moved.
    pub fn deliver(&mut self, to: Side) -> bool {
        let now = self.now;
        let (from, into, link) = match to {
            Side::Client => (&mut self.server, &mut self.client, &mut self.to_client),
            Side::Server => (&mut self.client, &mut self.server, &mut self.to_server),
        };
        if link.paused {
            return false;
        }
        let mut moved = false;
        while !from.outbound().is_empty() {
            moved = true;
            if into.eof_received() {
                // The transport to it is gone: bytes are lost.
                let n = from.outbound().len();
                from.outbound_mut().consume(n);
                break;
            }
            let want = link.chunker.next(&link.chunking, from.outbound().len());
            into.receive(&from.outbound().as_slice()[..want], now);
            from.outbound_mut().consume(want);
        }
        if from.shutdown_sent()
            && from.outbound().is_empty()
            && !into.eof_received()
            && !link.hold_eof
        {
            into.eof(now);
            moved = true;
        }
        moved
    }

    /// Delivers both ways until nothing moves.
    pub fn flush(&mut self) {
        for _ in 0..100_000 {
            let to_server = self.deliver(Side::Server);
            let to_client = self.deliver(Side::Client);
            if !to_server && !to_client {
                return;
            }
        }
        panic!("flush does not settle");
    }

    /// Moves the clock forward by `duration`, then as [`advance_to`](Self::advance_to).
    pub fn advance(&mut self, duration: Duration) {
        let at = self.now + duration;
        self.advance_to(at);
    }

    /// Moves the clock to `at`, fires both sides' timers (checking that no deadline is
    /// left at or before `at`) and flushes.
    pub fn advance_to(&mut self, at: Instant) {
        assert!(at >= self.now, "the clock goes back");
        self.now = at;
        self.client.timeout(at);
        self.server.timeout(at);
        self.flush();
    }

    /// The earliest deadline of either side.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            self.client.connection().poll_timeout(),
            self.server.connection().poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether both sides reported their end.
    pub fn is_done(&self) -> bool {
        self.client.outcome().is_some() && self.server.outcome().is_some()
    }

    /// Flushes, then jumps from deadline to deadline until both sides ended or the next
    /// deadline lies beyond `limit` from now. Returns whether both ended.
    pub fn run_until_done(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        self.flush();
        while !self.is_done() {
            match self.next_deadline() {
                Some(deadline) if deadline <= end => {
                    assert!(deadline > self.now, "a deadline in the past");
                    self.advance_to(deadline);
                }
                _ => break,
            }
        }
        self.is_done()
    }
}
