//! A broadcast (fan-out) server: every text message from any connection goes to every
//! other connection. The server of the benchmark's fan-out scenarios (`benches/`,
//! `compare --scenarios fanout-1k,fanout-10k,fanout-1k-deflate`).
//!
//! ```text
//! cargo run --release -p sockeye-tokio --example broadcast_server -- \
//!     [--deflate] [--slow-consumer drop|close-1008|close-1013] [ADDR]
//! ```
//!
//! ADDR defaults to `127.0.0.1:9003`; the server prints `listening on ADDR` and serves
//! until killed, on tokio's current-thread scheduler (one core), with `TCP_NODELAY`.
//! Each subscriber is a socket: for 10,000 of them raise the open-file limit first
//! (`ulimit -n 20000`; `benches/compare.sh` does).
//!
//! How it broadcasts, the way a Sockeye application would:
//!
//! - Each connection is split; its write half goes into the [`Hub`], a registry of
//!   subscribers, and its read half stays with the connection's task, which reads
//!   (and so answers Pings and Closes) and hands every text message to the hub.
//! - A message is framed once (`PreparedMessage`) and queued on every other
//!   subscriber's send queue by reference (`try_feed_prepared`): no copy, no task
//!   wake-up and no system call per subscriber.
//! - The queued frames are written by one flusher task, woken once per burst: the
//!   publisher's task queues every message its last read brought, and only when it
//!   waits for more does the flusher run, so each subscriber gets one vectored write
//!   for the whole burst. The flusher polls each write once and never waits on a slow
//!   subscriber: what its socket does not take now, that subscriber's own task writes
//!   when the socket drains (a connection's halves share their wake-ups).
//!
//! Slow consumers: each send queue is bounded (`SEND_QUEUE_BYTES`, about 1,000
//! messages of 125 bytes, like the peers' `broadcast` channel of 1,024). A subscriber
//! whose queue is full when a message comes (`TrySendError::Full`) gets the policy of
//! `--slow-consumer` ([`SlowConsumer`]):
//!
//! - `drop` (the default): it misses that message and stays subscribed, as a lagging
//!   receiver of a tokio `broadcast` channel skips messages. Right for feeds where the
//!   next message supersedes the last (prices, positions, presence).
//! - `close-1008` / `close-1013`: it is unsubscribed and closed with 1008 (policy
//!   violation) or 1013 (try again later: a client may reconnect and resynchronize).
//!   The Close goes out after what its queue already holds; its own task finishes the
//!   close handshake (or the close timeout does). Right where a gap is worse than a
//!   reconnect (chat, order books sent as deltas).
//!
//! `--deflate` accepts permessage-deflate (no context takeover either way, level 1,
//! 15-bit windows: `DeflateConfig::DEFAULT`, but compressing messages from 64 bytes,
//! not 256) and compresses each broadcast once (`with_compression`): every subscriber
//! that agreed to `server_no_context_takeover` shares the same compressed frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt as _;
use sockeye_tokio::{
    accept, CloseCode, DeflateConfig, Message, PreparedMessage, Settings, TrySendError, WriteHalf,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Bytes a subscriber may have queued before it is a slow consumer.
pub const SEND_QUEUE_BYTES: usize = 128 << 10;

/// Compression settings of `--deflate`: the default, but for short messages too (the
/// benchmark broadcasts 125-byte messages; the default threshold is 256 bytes).
const DEFLATE: DeflateConfig = DeflateConfig {
    threshold: 64,
    ..DeflateConfig::DEFAULT
};

/// What happens to a subscriber whose send queue is full when a message comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowConsumer {
    /// It misses the message and stays subscribed.
    Drop,
    /// It is unsubscribed and closed with this code (1008 or 1013).
    Close(CloseCode),
}

/// How the server runs: the command line.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen.
    pub addr: String,
    /// Accept permessage-deflate and compress each broadcast once.
    pub deflate: bool,
    /// The slow-consumer policy.
    pub slow_consumer: SlowConsumer,
}

const USAGE: &str =
    "usage: broadcast_server [--deflate] [--slow-consumer drop|close-1008|close-1013] [ADDR]";

impl Options {
    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut options = Options {
            addr: "127.0.0.1:9003".to_owned(),
            deflate: false,
            slow_consumer: SlowConsumer::Drop,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--deflate" => options.deflate = true,
                "--slow-consumer" => {
                    options.slow_consumer = match args.next().as_deref() {
                        Some("drop") => SlowConsumer::Drop,
                        Some("close-1008") => SlowConsumer::Close(CloseCode::POLICY),
                        Some("close-1013") => SlowConsumer::Close(CloseCode::TRY_AGAIN_LATER),
                        other => return Err(format!("bad --slow-consumer {other:?}")),
                    }
                }
                flag if flag.starts_with('-') => return Err(format!("unknown flag {flag}")),
                _ => options.addr = arg,
            }
        }
        Ok(options)
    }
}

/// The subscribers' write halves, by connection id.
#[derive(Default)]
struct Subscribers {
    writers: HashMap<u64, WriteHalf<TcpStream>>,
    next_id: u64,
    /// Frames were queued since the flusher last ran.
    dirty: bool,
}

/// The registry, the slow-consumer policy and the flusher's wake-up.
pub struct Hub {
    subscribers: Mutex<Subscribers>,
    flush: Notify,
    slow_consumer: SlowConsumer,
}

impl Hub {
    fn new(slow_consumer: SlowConsumer) -> Hub {
        Hub {
            subscribers: Mutex::default(),
            flush: Notify::new(),
            slow_consumer,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Subscribers> {
        self.subscribers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn join(&self, writer: WriteHalf<TcpStream>) -> u64 {
        let mut subscribers = self.lock();
        subscribers.next_id += 1;
        let id = subscribers.next_id;
        subscribers.writers.insert(id, writer);
        id
    }

    fn leave(&self, id: u64) {
        self.lock().writers.remove(&id);
    }

    /// Queues `message` on every subscriber but `from`; the flusher writes it.
    fn broadcast(&self, from: u64, message: &PreparedMessage) {
        let mut subscribers = self.lock();
        subscribers.writers.retain(|&id, writer| {
            if id == from {
                return true;
            }
            match writer.try_feed_prepared(message) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => match self.slow_consumer {
                    SlowConsumer::Drop => true,
                    SlowConsumer::Close(code) => {
                        // Queues the Close (a full queue still takes it) and writes what
                        // the socket takes now; the connection's task does the rest.
                        let _ = writer.close(code, "too slow").now_or_never();
                        false
                    }
                },
                // Closing or over: its task ends and would remove it anyway.
                Err(TrySendError::Failed(_)) => false,
            }
        });
        if !subscribers.dirty {
            subscribers.dirty = true;
            self.flush.notify_one();
        }
    }

    /// Writes what was queued, one vectored write per subscriber per burst, without
    /// waiting for any: a write the socket does not take whole is finished by that
    /// connection's own task.
    async fn flusher(self: Arc<Self>) {
        loop {
            self.flush.notified().await;
            let mut subscribers = self.lock();
            subscribers.dirty = false;
            subscribers
                .writers
                .retain(|_, writer| !matches!(writer.flush().now_or_never(), Some(Err(_))));
        }
    }
}

fn main() -> std::io::Result<()> {
    let options = Options::parse(std::env::args().skip(1)).unwrap_or_else(|error| {
        eprintln!("broadcast_server: {error}\n{USAGE}");
        std::process::exit(2)
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&options.addr).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener, options).await
    })
}

/// Serves broadcasts on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, options: Options) -> std::io::Result<()> {
    let hub = Arc::new(Hub::new(options.slow_consumer));
    tokio::spawn(hub.clone().flusher());
    let mut settings = Settings::default().with_max_pending_bytes(SEND_QUEUE_BYTES);
    if options.deflate {
        settings = settings.with_compression(DEFLATE);
    }
    let deflate = options.deflate;
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: keep serving the others.
            Err(error) => {
                eprintln!("accept: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let handshake = accept(tcp, settings);
        let hub = hub.clone();
        tokio::spawn(async move {
            let Ok(ws) = handshake.await else { return };
            let (mut reader, writer) = ws.split();
            let id = hub.join(writer);
            while let Some(message) = reader.recv().await {
                if let Message::Text(text) = message {
                    let mut prepared = PreparedMessage::text(text);
                    if deflate {
                        // Compressed once, for every subscriber.
                        prepared = prepared.with_compression(&DEFLATE);
                    }
                    hub.broadcast(id, &prepared);
                }
            }
            hub.leave(id);
        });
    }
}
