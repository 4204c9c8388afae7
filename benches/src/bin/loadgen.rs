//! Load generator for WebSocket echo servers, with its own minimal client.
//!
//! usage: loadgen --addr HOST:PORT --scenario SCENARIO [options]
//!
//! Scenarios (defaults in brackets, each overridable):
//!   latency    [1 conn, 16 B text, 1 in flight]        p50/p99 round trip
//!   small      [64 conns, 16 B text, 16 in flight]     msg/s
//!   bulk       [16 conns, 64 KiB binary, 2 in flight]  MB/s and msg/s
//!   large      [1 conn, 16 MiB binary, 1 in flight]    MB/s
//!   idle       [10000 conns]  server RSS growth per connection after the
//!              handshake and after one 16 B echo each (needs --server-pid)
//!   handshake  [64 concurrent loops]  connect, upgrade, close handshake, EOF
//!   deflate-1k   [16 conns, 1 KiB JSON text, 8 in flight]   with permessage-deflate
//!   deflate-64k  [16 conns, 64 KiB JSON text, 2 in flight]  with permessage-deflate
//!   deflate-idle [2000 conns]  idle, with permessage-deflate: server RSS growth
//!              per connection after the handshake and after one 1 KiB JSON echo
//!   fanout     [1000 subscribers, 125 B text, window 32]  a broadcast server
//!              (`peer_broadcast`, Sockeye's `broadcast_server`): N subscriber
//!              connections and one publisher; delivered messages/s, server CPU per
//!              delivered message, p50/p99 delivery latency, server RSS
//!
//! Fan-out (`--scenario fanout`): the load generator opens N subscribers
//! (`--subscribers N`, or `--conns`), upgraded and reading, then one publisher, which
//! sends stamped text messages (`--size`, sequence number and send time of the load
//! generator's monotonic clock, `sockeye_benches::fanout`); the server sends each to
//! every other connection. The publisher keeps the subscribers' average backlog
//! bounded: it sends broadcast `s` only while `s` minus the mean of the subscribers'
//! next expected sequence numbers is under `--window W` (a subscriber that missed
//! messages counts them as passed), and at most `--rate R` broadcasts/s if given, so
//! the server runs at its capacity with a bounded queue. All sockets are read from one
//! epoll loop (no task per connection); each subscriber decodes its frames and
//! records every message's delivery latency (histogram) and any gap in the sequence
//! (`lost`: messages a server skipped for a slow subscriber); `min_sub_msgs` is the
//! fewest messages a subscriber received over the run, `starved` how many received
//! none (both over the whole run, warmup included). With `--deflate` the
//! publisher still sends plain frames; compressed deliveries are inflated once per
//! broadcast (matched by content against the one inflated first) to read their stamp.
//!
//! Compressed runs (the deflate-* scenarios, or --deflate with any other) offer
//! `permessage-deflate; client_no_context_takeover; server_no_context_takeover`
//! and fail if the server declines. Messages are JSON-like records
//! (`sockeye_benches::json`), compressed once by the load generator's own engine
//! (flate2, level 1) and sent again and again; the first echo on each connection
//! is read whole, inflated and compared with the message, the rest are counted,
//! with their size on the wire: `wire_ratio_echo` is message bytes over echoed
//! payload bytes (the server's compression), `wire_ratio_sent` the same for what
//! the load generator sends.
//!
//! Options:
//!   --conns N  --size BYTES  --inflight K  --text | --binary
//!   --warmup SECS [1]  --duration SECS [5]
//!   --server-pid PID   read the server's CPU time (/proc/PID/stat) and RSS
//!   --hold N [0]       latency/small/bulk/large: first open N more connections
//!                      (upgraded, then silent) and hold them open throughout, so
//!                      a server whose every turn visits every connection shows it
//!   --congestion NAME [cubic]  TCP congestion control of the load generator's
//!                      own sockets (`system`: keep the kernel's default). With
//!                      BBR, the default on some kernels, and no `fq` qdisc, TCP
//!                      paces every send with a timer: on a VM that made the
//!                      load generator's core, not the server, the limit of bulk
//!                      runs, and made it cost more the less the server did
//!   --deflate          offer permessage-deflate and send compressed JSON messages
//!   --copy-echoes      copy echoed payloads into user space like an ordinary
//!                      client (default: drop them unread, see below)
//!   --subscribers N    fanout: subscriber connections (the same as --conns)
//!   --window W [32]    fanout: broadcasts outstanding, on average per subscriber
//!   --rate R [0]       fanout: at most R broadcasts per second (0: no limit)
//!
//! Frames are built and masked once, then written again and again; each
//! connection keeps K messages in flight (pipelined) and counts the echoes
//! with a small decoder that skips payloads without looking at them. Echoed
//! payloads of at least 4 KiB are not even copied out of the kernel (unless
//! `--copy-echoes`): the load generator reads each frame's head, then drops
//! the payload with `recv(MSG_TRUNC)`. That copy was over a quarter of its CPU
//! in bulk runs, where its core saturates before the servers'; the servers
//! see the same traffic either way. (Sending with `sendfile` from an in-memory
//! file, to spare the other copy, was tried: on loopback it cost the load
//! generator more than the copy, in per-page work.) The client's own
//! CPU time (getrusage) is reported so a saturated client is visible.
//! The last line on stdout is `RESULT key=value ...` (read by `compare`).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt as _};
use sockeye_benches::stats::{percentile, si};
use sockeye_benches::ws::{self, opcode, DecodeError, EchoDecoder};
use sockeye_benches::{fanout, json, sys};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, Interest};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Echoed payloads at least this long are dropped in the kernel (unless
/// `--copy-echoes`): below it, the extra read per frame costs more than the copy.
const DISCARD_MIN: usize = 4 << 10;
/// How much is read when a frame head is due and its payload will be dropped:
/// the longest head (10 bytes) and a few more frames' worth, little payload.
const HEAD_READ: usize = 64;
/// Receive buffer per connection in the throughput scenarios.
const READ_BUF: usize = 256 << 10;
/// Connections opened concurrently while setting up many.
const SETUP_CONCURRENCY: usize = 64;
/// Time limit for connect + upgrade of one connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Latency,
    Small,
    Bulk,
    Large,
    Idle,
    Handshake,
    Deflate1k,
    Deflate64k,
    DeflateIdle,
    Fanout,
}

impl Scenario {
    fn parse(s: &str) -> Option<Scenario> {
        Some(match s {
            "latency" => Scenario::Latency,
            "small" => Scenario::Small,
            "bulk" => Scenario::Bulk,
            "large" => Scenario::Large,
            "idle" => Scenario::Idle,
            "handshake" => Scenario::Handshake,
            "deflate-1k" => Scenario::Deflate1k,
            "deflate-64k" => Scenario::Deflate64k,
            "deflate-idle" => Scenario::DeflateIdle,
            "fanout" => Scenario::Fanout,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::Latency => "latency",
            Scenario::Small => "small",
            Scenario::Bulk => "bulk",
            Scenario::Large => "large",
            Scenario::Idle => "idle",
            Scenario::Handshake => "handshake",
            Scenario::Deflate1k => "deflate-1k",
            Scenario::Deflate64k => "deflate-64k",
            Scenario::DeflateIdle => "deflate-idle",
            Scenario::Fanout => "fanout",
        }
    }

    /// The scenarios that always offer permessage-deflate.
    fn deflate(self) -> bool {
        matches!(
            self,
            Scenario::Deflate1k | Scenario::Deflate64k | Scenario::DeflateIdle
        )
    }

    fn idle(self) -> bool {
        matches!(self, Scenario::Idle | Scenario::DeflateIdle)
    }

    /// (connections, message size, in flight, text?)
    fn defaults(self) -> (usize, usize, usize, bool) {
        match self {
            Scenario::Latency => (1, 16, 1, true),
            Scenario::Small => (64, 16, 16, true),
            Scenario::Bulk => (16, 64 << 10, 2, false),
            Scenario::Large => (1, 16 << 20, 1, false),
            Scenario::Idle => (10_000, 16, 1, true),
            Scenario::Handshake => (64, 0, 1, true),
            Scenario::Deflate1k => (16, 1 << 10, 8, true),
            Scenario::Deflate64k => (16, 64 << 10, 2, true),
            Scenario::DeflateIdle => (2_000, 1 << 10, 1, true),
            // (subscribers, message size, window)
            Scenario::Fanout => (1_000, 125, 32, true),
        }
    }
}

#[derive(Clone, Debug)]
struct Config {
    addr: SocketAddr,
    scenario: Scenario,
    conns: usize,
    size: usize,
    inflight: usize,
    text: bool,
    warmup: Duration,
    duration: Duration,
    server_pid: Option<u32>,
    hold: usize,
    /// `None`: the kernel's default.
    congestion: Option<String>,
    /// Copy echoed payloads out of the kernel instead of dropping them there.
    copy_echoes: bool,
    /// Offer permessage-deflate and send compressed JSON messages.
    deflate: bool,
    /// fanout: at most this many broadcasts per second (0: no limit).
    rate: f64,
}

/// The congestion control every connection of this process sets
/// (`--congestion`), once, before any connects.
static CONGESTION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
/// What the kernel says the first connection uses, for the RESULT line.
static CONGESTION_USED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn usage() -> ! {
    let doc = include_str!("loadgen.rs");
    for line in doc.lines().take_while(|l| l.starts_with("//!")) {
        let text = line.trim_start_matches("//!");
        eprintln!("{}", text.strip_prefix(" ").unwrap_or(text));
    }
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut addr = None;
    let mut scenario = None;
    let (mut conns, mut size, mut inflight, mut text) = (None, None, None, None);
    let (mut warmup, mut duration, mut server_pid) = (1.0f64, 5.0f64, None);
    let mut hold = 0;
    let mut congestion = Some("cubic".to_string());
    let mut copy_echoes = false;
    let mut deflate = false;
    let mut rate = 0.0f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |name: &str| {
            args.next().unwrap_or_else(|| {
                eprintln!("loadgen: {name} needs a value");
                usage()
            })
        };
        fn num<T: std::str::FromStr>(name: &str, v: String) -> T {
            v.parse().unwrap_or_else(|_| {
                eprintln!("loadgen: bad value {v:?} for {name}");
                usage()
            })
        }
        match a.as_str() {
            "--addr" => addr = Some(num::<SocketAddr>("--addr", val("--addr"))),
            "--scenario" => {
                let v = val("--scenario");
                scenario = Some(Scenario::parse(&v).unwrap_or_else(|| {
                    eprintln!("loadgen: unknown scenario {v:?}");
                    usage()
                }))
            }
            "--conns" | "--subscribers" => conns = Some(num(&a, val(&a))),
            "--size" => size = Some(num("--size", val("--size"))),
            "--inflight" | "--window" => inflight = Some(num(&a, val(&a))),
            "--rate" => rate = num("--rate", val("--rate")),
            "--text" => text = Some(true),
            "--binary" => text = Some(false),
            "--warmup" => warmup = num("--warmup", val("--warmup")),
            "--duration" => duration = num("--duration", val("--duration")),
            "--server-pid" => server_pid = Some(num("--server-pid", val("--server-pid"))),
            "--hold" => hold = num("--hold", val("--hold")),
            "--congestion" => {
                congestion = Some(val("--congestion")).filter(|name| name != "system")
            }
            "--copy-echoes" => copy_echoes = true,
            "--deflate" => deflate = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("loadgen: unknown argument {other:?}");
                usage()
            }
        }
    }
    let (Some(addr), Some(scenario)) = (addr, scenario) else {
        usage()
    };
    let d = scenario.defaults();
    let cfg = Config {
        addr,
        scenario,
        conns: conns.unwrap_or(d.0).max(1),
        size: size.unwrap_or(d.1),
        inflight: inflight.unwrap_or(d.2).max(1),
        text: text.unwrap_or(d.3),
        warmup: Duration::from_secs_f64(warmup.clamp(0.0, 600.0)),
        duration: Duration::from_secs_f64(duration.clamp(0.1, 600.0)),
        server_pid,
        hold: if scenario.idle() || scenario == Scenario::Handshake {
            0
        } else {
            hold
        },
        congestion,
        copy_echoes,
        deflate: deflate || scenario.deflate(),
        rate: rate.max(0.0),
    };
    if cfg.deflate && scenario == Scenario::Handshake {
        eprintln!("loadgen: the handshake scenario has no compressed variant");
        usage()
    }
    if cfg.scenario.idle() && cfg.server_pid.is_none() {
        eprintln!("loadgen: the idle scenario needs --server-pid to read the server's RSS");
        usage()
    }
    cfg
}

fn main() {
    let cfg = parse_args();
    let nofile = sys::raise_nofile_limit();
    let many = if cfg.scenario.idle() || cfg.scenario == Scenario::Fanout {
        cfg.conns
    } else {
        cfg.hold
    };
    if many > 0 && (nofile as usize) < cfg.conns + cfg.hold + 64 {
        eprintln!(
            "loadgen: open-file limit is {nofile}, too low for {} connections",
            cfg.conns + cfg.hold
        );
        std::process::exit(1);
    }
    CONGESTION
        .set(cfg.congestion.clone())
        .expect("set once, before any connects");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&rt, async {
        match cfg.scenario {
            Scenario::Idle | Scenario::DeflateIdle => idle(&cfg).await,
            Scenario::Handshake => handshakes(&cfg).await,
            Scenario::Fanout => fanout(&cfg).await,
            _ => throughput(&cfg).await,
        }
    });
    match result {
        Ok(fields) => {
            let line: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "RESULT scenario={} {} congestion={} echoes={} deflate={}",
                cfg.scenario.name(),
                line.join(" "),
                CONGESTION_USED.get().map_or("unknown", String::as_str),
                if cfg.copy_echoes { "copied" } else { "dropped" },
                u8::from(cfg.deflate)
            );
            // Exit at once: open connections are dropped by the kernel.
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(1);
        }
    }
}

type Fields = Vec<(&'static str, String)>;

/// A point in time on both clocks, for window deltas.
#[derive(Clone, Copy)]
struct Snapshot {
    at: Instant,
    client_cpu: Duration,
    server_cpu: Option<Duration>,
    busy: Option<Duration>,
    count: u64,
}

fn snapshot(cfg: &Config, count: u64) -> Snapshot {
    Snapshot {
        at: Instant::now(),
        client_cpu: sys::self_cpu_time(),
        server_cpu: cfg.server_pid.and_then(|p| sys::process_cpu_time(p).ok()),
        busy: sys::system_busy_time().ok(),
        count,
    }
}

/// Wall seconds, count, client and server CPU (fraction of a core), server CPU
/// per item, and the CPU everything else on the machine used meanwhile.
fn window_fields(a: &Snapshot, b: &Snapshot, what: &'static str) -> (f64, u64, Fields) {
    let secs = (b.at - a.at).as_secs_f64();
    let n = b.count - a.count;
    let client = (b.client_cpu - a.client_cpu).as_secs_f64();
    let mut f: Fields = vec![
        ("secs", format!("{secs:.3}")),
        (what, n.to_string()),
        ("client_cpu", format!("{:.3}", client / secs)),
    ];
    let mut server = 0.0;
    if let (Some(sa), Some(sb)) = (a.server_cpu, b.server_cpu) {
        server = sb.saturating_sub(sa).as_secs_f64();
        f.push(("server_cpu", format!("{:.3}", server / secs)));
        if n > 0 {
            f.push((
                "server_us_per_op",
                format!("{:.3}", server * 1e6 / n as f64),
            ));
        }
    }
    if let (Some(ba), Some(bb)) = (a.busy, b.busy) {
        let other = bb.saturating_sub(ba).as_secs_f64() - client - server;
        f.push(("other_cpu", format!("{:.3}", (other / secs).max(0.0))));
    }
    (secs, n, f)
}

/// Connects and upgrades; returns the stream and any bytes read past the 101 head.
/// The upgrade request of this run: with the permessage-deflate offer when compressed.
fn upgrade_request(cfg: &Config) -> Vec<u8> {
    let host = cfg.addr.to_string();
    if cfg.deflate {
        ws::client_request_with_extensions(&host, "/", ws::DEFLATE_OFFER)
    } else {
        ws::client_request(&host, "/")
    }
}

/// What the server answered to the permessage-deflate offer (first connection), for
/// the RESULT line.
static DEFLATE_ANSWER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Connects and upgrades (checking the answer to a permessage-deflate offer when the
/// request made one); returns the stream and any bytes read past the 101 head.
async fn ws_connect(addr: SocketAddr, request: &[u8]) -> Result<(TcpStream, Vec<u8>), String> {
    let work = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let first = CONGESTION_USED.get().is_none();
        if let Some(name) = CONGESTION.get().and_then(Option::as_deref) {
            if let Err(e) = sys::set_congestion_control(s.as_raw_fd(), name) {
                // Not fatal: the run goes on with the kernel's default, and says so
                // (once: every connection asks for the same algorithm).
                if first {
                    eprintln!("loadgen: --congestion {name}: {e}; using the kernel's default");
                }
            }
        }
        if first {
            let used = sys::congestion_control(s.as_raw_fd()).unwrap_or_else(|_| "unknown".into());
            let _ = CONGESTION_USED.set(used);
        }
        s.write_all(request)
            .await
            .map_err(|e| format!("send upgrade request: {e}"))?;
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        loop {
            let n = s
                .read(&mut chunk)
                .await
                .map_err(|e| format!("read upgrade response: {e}"))?;
            if n == 0 {
                return Err("server closed during the handshake".to_string());
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = ws::head_end(&buf) {
                ws::check_response(&buf[..end])?;
                let offered = request
                    .windows(b"permessage-deflate".len())
                    .any(|w| w == b"permessage-deflate");
                if offered {
                    let answer = ws::response_extensions(&buf[..end]);
                    ws::check_deflate_answer(answer.as_deref())?;
                    let _ = DEFLATE_ANSWER.set(answer.unwrap_or_default());
                }
                return Ok((s, buf.split_off(end)));
            }
            if buf.len() > 16 << 10 {
                return Err("response head too large".to_string());
            }
        }
    };
    timeout(HANDSHAKE_TIMEOUT, work)
        .await
        .map_err(|_| "handshake timed out".to_string())?
}

/// Counters shared by the connections of one run (single-threaded runtime).
#[derive(Default)]
struct Shared {
    completed: Cell<u64>,
    recording: Cell<bool>,
    latencies_ns: RefCell<Vec<u64>>,
    errors: Cell<u64>,
    first_error: RefCell<Option<String>>,
    /// Echoed data messages, their payload bytes on the wire, and how many were
    /// compressed (all connections, whole run).
    echo_msgs: Cell<u64>,
    echo_wire_bytes: Cell<u64>,
    echo_compressed: Cell<u64>,
}

impl Shared {
    /// Adds what a decoder counted since `last` (its totals then); returns its totals now.
    fn wire(&self, dec: &EchoDecoder, last: (u64, u64, u64)) -> (u64, u64, u64) {
        let now = dec.wire_totals();
        let add = |c: &Cell<u64>, n: u64| c.set(c.get() + n);
        add(&self.echo_wire_bytes, now.0 - last.0);
        add(&self.echo_msgs, now.1 - last.1);
        add(&self.echo_compressed, now.2 - last.2);
        now
    }
}

impl Shared {
    fn error(&self, e: String) {
        self.errors.set(self.errors.get() + 1);
        self.first_error.borrow_mut().get_or_insert(e);
    }
}

/// Per connection: keeps `inflight` messages outstanding, writing pre-masked
/// frames and counting echoes, until the process exits.
async fn pump(
    stream: TcpStream,
    leftover: Vec<u8>,
    frames: Rc<Vec<u8>>,
    frame_len: usize,
    cfg: Rc<Config>,
    shared: Rc<Shared>,
) -> Result<(), String> {
    let mut dec = if cfg.deflate {
        EchoDecoder::with_compression(cfg.size as u64)
    } else {
        EchoDecoder::new(cfg.size as u64)
    };
    let mut wire = (0, 0, 0);
    let mut rbuf = vec![0u8; READ_BUF.min(cfg.size * cfg.inflight + 4096).max(4096)];
    let mut credits = cfg.inflight as u64;
    // Bytes still to write, and where in `frames` the next byte is (all
    // frames are identical, so any window of whole frames can be sent).
    let mut write_left = 0usize;
    let mut write_off = 0usize;
    // Send time of each group of messages queued together, and its size.
    let mut sent: VecDeque<(Instant, u64)> = VecDeque::new();
    let io_err = |what: &str, e: io::Error| format!("{what}: {e}");
    let drop_payloads = !cfg.copy_echoes && cfg.size >= DISCARD_MIN;
    let on_echoes = |done: u64, credits: &mut u64, sent: &mut VecDeque<(Instant, u64)>| {
        if done > 0 {
            *credits += done;
            shared.completed.set(shared.completed.get() + done);
            let now = Instant::now();
            let mut left = done;
            let recording = shared.recording.get();
            let mut lat = shared.latencies_ns.borrow_mut();
            while left > 0 {
                let Some(front) = sent.front_mut() else { break };
                let k = front.1.min(left);
                if recording {
                    let ns = (now - front.0).as_nanos() as u64;
                    lat.extend(std::iter::repeat_n(ns, k as usize));
                }
                front.1 -= k;
                left -= k;
                if front.1 == 0 {
                    sent.pop_front();
                }
            }
        }
    };
    let decode_err = |e: DecodeError| e.to_string();
    if !leftover.is_empty() {
        on_echoes(
            dec.feed(&leftover).map_err(decode_err)?,
            &mut credits,
            &mut sent,
        );
    }
    let fd = stream.as_raw_fd();
    loop {
        if credits > 0 {
            write_left += credits as usize * frame_len;
            sent.push_back((Instant::now(), credits));
            credits = 0;
        }
        while write_left > 0 {
            let end = (write_off + write_left).min(frames.len());
            match stream.try_write(&frames[write_off..end]) {
                Ok(n) => {
                    write_left -= n;
                    write_off += n;
                    if write_off == frames.len() {
                        write_off = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(io_err("write", e)),
            }
        }
        // Either drop the rest of a long payload unread, or read a frame head
        // (only a few bytes of it when its payload will be dropped next).
        let skippable = usize::try_from(dec.skippable()).unwrap_or(usize::MAX);
        let dropping = drop_payloads && skippable > 0;
        let want = if dropping {
            skippable.min(rbuf.len())
        } else if drop_payloads {
            HEAD_READ
        } else {
            rbuf.len()
        };
        // A short read drained the socket: report WouldBlock to tokio so it
        // clears the cached readiness now (the data is kept in `got`), which
        // saves the extra read that would only return EAGAIN.
        let mut got = 0;
        let r = stream.try_io(Interest::READABLE, || {
            let buf = &mut rbuf[..want];
            got = if dropping {
                sys::discard(fd, buf)?
            } else {
                sys::recv(fd, buf)?
            };
            if got > 0 && got < want {
                Err(io::ErrorKind::WouldBlock.into())
            } else {
                Ok(got)
            }
        });
        let n = match r {
            Ok(0) => return Err("server closed the connection".to_string()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => got,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    r = stream.readable() => r.map_err(|e| io_err("wait readable", e))?,
                    w = stream.writable(), if write_left > 0 => {
                        w.map_err(|e| io_err("wait writable", e))?
                    }
                }
                continue;
            }
            Err(e) => return Err(io_err("read", e)),
        };
        let done = if dropping {
            dec.skip(n as u64)
        } else {
            dec.feed(&rbuf[..n])
        };
        wire = shared.wire(&dec, wire);
        on_echoes(done.map_err(decode_err)?, &mut credits, &mut sent);
    }
}

async fn throughput(cfg: &Config) -> Result<Fields, String> {
    let cfg = Rc::new(cfg.clone());
    let op = if cfg.text {
        opcode::TEXT
    } else {
        opcode::BINARY
    };
    let message = Message::new(&cfg, op);
    let frame = message.frame.clone();
    let frame_len = frame.len();
    // Twice the window, so a write rarely stops at the end of the buffer.
    let copies = if frame_len >= 1 << 20 {
        cfg.inflight
    } else {
        2 * cfg.inflight
    };
    let frames = Rc::new(frame.repeat(copies));
    drop(frame);
    let request = upgrade_request(&cfg);
    let shared = Rc::new(Shared::default());
    // Silent connections, open until this function returns.
    let mut held = Vec::with_capacity(cfg.hold);
    let opened: Vec<_> = stream::iter(0..cfg.hold)
        .map(|_| ws_connect(cfg.addr, &request))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    for c in opened {
        held.push(c?.0);
    }

    let conns: Vec<_> = stream::iter(0..cfg.conns)
        .map(|_| ws_connect(cfg.addr, &request))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let mut handles = Vec::new();
    for c in conns {
        let (mut stream, leftover) = c?;
        if cfg.deflate {
            // The first echo read whole and inflated: the server compresses correctly.
            if !leftover.is_empty() {
                return Err("data before the first echo".to_string());
            }
            message.verify_echo(&mut stream).await?;
        }
        let (frames, cfg, shared) = (frames.clone(), cfg.clone(), shared.clone());
        handles.push(tokio::task::spawn_local(async move {
            if let Err(e) = pump(stream, leftover, frames, frame_len, cfg, shared.clone()).await {
                shared.error(e);
            }
        }));
    }

    tokio::time::sleep(cfg.warmup).await;
    let a = snapshot(&cfg, shared.completed.get());
    shared.recording.set(true);
    tokio::time::sleep(cfg.duration).await;
    shared.recording.set(false);
    let b = snapshot(&cfg, shared.completed.get());
    for h in &handles {
        h.abort();
    }

    let (secs, n, mut f) = window_fields(&a, &b, "msgs");
    let msg_per_s = n as f64 / secs;
    let mb_per_s = msg_per_s * cfg.size as f64 / 1e6;
    let mut lat = shared.latencies_ns.take();
    let p50 = percentile(&mut lat, 50.0).unwrap_or(0) as f64 / 1e3;
    let p99 = percentile(&mut lat, 99.0).unwrap_or(0) as f64 / 1e3;
    f.extend([
        ("conns", cfg.conns.to_string()),
        ("held", held.len().to_string()),
        ("size", cfg.size.to_string()),
        ("inflight", cfg.inflight.to_string()),
        ("msg_per_s", format!("{msg_per_s:.1}")),
        ("mb_per_s", format!("{mb_per_s:.1}")),
        ("p50_us", format!("{p50:.1}")),
        ("p99_us", format!("{p99:.1}")),
        ("errors", shared.errors.get().to_string()),
    ]);
    if cfg.deflate {
        f.extend(message.wire_fields(&shared));
    }
    eprintln!(
        "{}: {} conns x {} B x {} in flight ({} held idle): {} msg/s, {} MB/s, p50 {p50:.1} us, \
         p99 {p99:.1} us",
        cfg.scenario.name(),
        cfg.conns,
        cfg.size,
        cfg.inflight,
        held.len(),
        si(msg_per_s),
        si(mb_per_s)
    );
    if let Some(e) = shared.first_error.take() {
        eprintln!(
            "loadgen: {} connection(s) failed, first: {e}",
            shared.errors.get()
        );
        if n == 0 {
            return Err(e);
        }
    }
    Ok(f)
}

/// Sends one message and waits for its echo.
async fn echo_once(stream: &mut TcpStream, frame: &[u8], size: usize) -> Result<(), String> {
    let work = async {
        stream.write_all(frame).await.map_err(|e| e.to_string())?;
        let mut dec = EchoDecoder::new(size as u64);
        let mut buf = [0u8; 256];
        loop {
            let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("server closed the connection".to_string());
            }
            if dec.feed(&buf[..n]).map_err(|e| e.to_string())? > 0 {
                return Ok(());
            }
        }
    };
    timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| "echo timed out".to_string())?
}

async fn idle(cfg: &Config) -> Result<Fields, String> {
    let pid = cfg.server_pid.ok_or("no --server-pid")?;
    let rss = || sys::process_rss_bytes(pid).map_err(|e| format!("server RSS: {e}"));
    let settle = Duration::from_millis(500);
    let base = rss()?;
    let request = upgrade_request(cfg);
    let start = Instant::now();
    let results: Vec<_> = stream::iter(0..cfg.conns)
        .map(|_| ws_connect(cfg.addr, &request))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let mut conns = Vec::with_capacity(results.len());
    for r in results {
        conns.push(r?.0);
    }
    let setup = start.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let after_hs = rss()?;

    let op = if cfg.text {
        opcode::TEXT
    } else {
        opcode::BINARY
    };
    let message = Message::new(cfg, op);
    let echoes: Vec<_> = stream::iter(conns.iter_mut())
        .map(|s| async {
            if cfg.deflate {
                message.verify_echo(s).await
            } else {
                echo_once(s, &message.frame, cfg.size).await
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    for e in echoes {
        e?;
    }
    tokio::time::sleep(settle).await;
    let after_echo = rss()?;
    let n = conns.len() as f64;
    let per_hs = (after_hs as f64 - base as f64) / n;
    let per_echo = (after_echo as f64 - base as f64) / n;
    eprintln!(
        "idle: {} conns: server RSS {} KiB -> {} KiB after handshakes ({per_hs:.0} B/conn) -> \
         {} KiB after one echo each ({per_echo:.0} B/conn); setup {setup:.1} s",
        conns.len(),
        base >> 10,
        after_hs >> 10,
        after_echo >> 10
    );
    Ok(vec![
        ("conns", conns.len().to_string()),
        ("rss_base_kib", (base >> 10).to_string()),
        ("rss_handshake_kib", (after_hs >> 10).to_string()),
        ("rss_echo_kib", (after_echo >> 10).to_string()),
        ("bytes_per_conn_handshake", format!("{per_hs:.0}")),
        ("bytes_per_conn_echo", format!("{per_echo:.0}")),
        (
            "extensions",
            DEFLATE_ANSWER
                .get()
                .map_or(String::new(), |a| a.replace(' ', "")),
        ),
        ("setup_secs", format!("{setup:.2}")),
    ])
}

/// The message a run sends, and its frame (compressed when the run is).
struct Message {
    plain: Vec<u8>,
    frame: Vec<u8>,
    /// The frame's payload length.
    wire_len: usize,
    deflate: bool,
}

impl Message {
    fn new(cfg: &Config, op: u8) -> Message {
        if cfg.deflate {
            let plain = json::records(cfg.size, 1);
            let packed = ws::deflate_message(&plain, 1);
            let frame = ws::compressed_masked_frame(op, &packed, ws::MASK);
            Message {
                plain,
                frame,
                wire_len: packed.len(),
                deflate: true,
            }
        } else {
            let plain = ws::payload(cfg.size);
            let frame = ws::masked_frame(op, &plain, ws::MASK);
            Message {
                wire_len: plain.len(),
                plain,
                frame,
                deflate: false,
            }
        }
    }

    /// Sends the message once and reads the echo whole: inflated if compressed, it
    /// must equal the message.
    async fn verify_echo(&self, stream: &mut TcpStream) -> Result<(), String> {
        let work = async {
            stream
                .write_all(&self.frame)
                .await
                .map_err(|e| e.to_string())?;
            let (rsv1, payload) = read_message(stream).await?;
            let echoed = if rsv1 {
                ws::inflate_message(&payload, self.plain.len() + 1)
                    .ok_or("the echo is not valid deflate data")?
            } else {
                payload
            };
            if echoed != self.plain {
                return Err(format!(
                    "the echo differs from the message ({} B, compressed: {rsv1})",
                    echoed.len()
                ));
            }
            Ok(())
        };
        timeout(Duration::from_secs(10), work)
            .await
            .map_err(|_| "echo timed out".to_string())?
    }

    /// The RESULT fields of a compressed run.
    fn wire_fields(&self, shared: &Shared) -> Fields {
        let msgs = shared.echo_msgs.get();
        let wire = shared.echo_wire_bytes.get().max(1);
        let plain = self.plain.len() as f64;
        vec![
            (
                "wire_ratio_echo",
                format!("{:.3}", msgs as f64 * plain / wire as f64),
            ),
            (
                "wire_ratio_sent",
                format!("{:.3}", plain / self.wire_len.max(1) as f64),
            ),
            (
                "compressed_share",
                format!(
                    "{:.3}",
                    shared.echo_compressed.get() as f64 / msgs.max(1) as f64
                ),
            ),
            (
                "extensions",
                DEFLATE_ANSWER
                    .get()
                    .map_or(String::new(), |a| a.replace(' ', "")),
            ),
        ]
        .into_iter()
        .filter(|_| self.deflate)
        .collect()
    }
}

/// Reads one whole data message from a server (Ping and Pong skipped, Close an
/// error): whether it was compressed (RSV1) and its payload.
async fn read_message(stream: &mut TcpStream) -> Result<(bool, Vec<u8>), String> {
    let mut buf = Vec::new();
    let mut payload = Vec::new();
    let mut rsv1 = None;
    let mut chunk = [0u8; 16 << 10];
    loop {
        // Every whole frame in `buf`.
        loop {
            if buf.len() < 2 {
                break;
            }
            let (head, len) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (4, u64::from(u16::from_be_bytes([buf[2], buf[3]]))),
                127 if buf.len() >= 10 => (
                    10,
                    u64::from_be_bytes(buf[2..10].try_into().map_err(|_| "head")?),
                ),
                126 | 127 => break,
                n => (2, u64::from(n)),
            };
            let len = usize::try_from(len).map_err(|_| "frame too long")?;
            if buf.len() < head + len {
                break;
            }
            let (b0, op) = (buf[0], buf[0] & 0x0f);
            let frame: Vec<u8> = buf.drain(..head + len).skip(head).collect();
            match op {
                opcode::CLOSE => return Err("server sent Close".to_string()),
                opcode::PING | opcode::PONG => continue,
                _ => {}
            }
            rsv1.get_or_insert(b0 & 0x40 != 0);
            payload.extend_from_slice(&frame);
            if b0 & 0x80 != 0 {
                return Ok((rsv1.unwrap_or(false), payload));
            }
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("server closed the connection".to_string());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One connect, upgrade, close handshake; `Ok(true)` if the server then
/// closed TCP (as RFC 6455 §7.1.1 says it should), `Ok(false)` if we gave up
/// waiting for its FIN.
async fn one_handshake(addr: SocketAddr, request: &[u8], close: &[u8]) -> Result<bool, String> {
    let (mut s, leftover) = ws_connect(addr, request).await?;
    s.write_all(close)
        .await
        .map_err(|e| format!("send Close: {e}"))?;
    let mut dec = EchoDecoder::new(0);
    // Ok(true) once the server's Close frame has arrived.
    let mut check = |data: &[u8]| match dec.feed(data) {
        Err(DecodeError::Closed(_)) => Ok(true),
        Err(e) => Err(e.to_string()),
        Ok(0) => Ok(false),
        Ok(_) => Err("unexpected message before Close".to_string()),
    };
    let mut got_close = !leftover.is_empty() && check(&leftover)?;
    let mut buf = [0u8; 512];
    let wait = async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) if got_close => return Ok(()),
                Ok(0) => return Err("EOF without a Close from the server".to_string()),
                Ok(n) if !got_close => got_close = check(&buf[..n])?,
                Ok(_) => return Err("data after Close".to_string()),
                // A reset after the close handshake still ends it.
                Err(_) if got_close => return Ok(()),
                Err(e) => return Err(format!("read Close: {e}")),
            }
        }
    };
    match timeout(Duration::from_secs(2), wait).await {
        Ok(r) => r?,
        Err(_) if got_close => return Ok(false),
        Err(_) => return Err("no Close from the server".to_string()),
    }
    Ok(true)
}

async fn handshakes(cfg: &Config) -> Result<Fields, String> {
    let request = Rc::new(ws::client_request(&cfg.addr.to_string(), "/"));
    let close = Rc::new(ws::close_frame());
    let shared = Rc::new(Shared::default());
    let no_fin = Rc::new(Cell::new(0u64));
    let mut handles = Vec::new();
    for _ in 0..cfg.conns {
        let (request, close, shared, no_fin) = (
            request.clone(),
            close.clone(),
            shared.clone(),
            no_fin.clone(),
        );
        let addr = cfg.addr;
        handles.push(tokio::task::spawn_local(async move {
            // Bounded: the process exits after the window; errors back off.
            loop {
                match one_handshake(addr, &request, &close).await {
                    Ok(fin) => {
                        shared.completed.set(shared.completed.get() + 1);
                        if !fin {
                            no_fin.set(no_fin.get() + 1);
                        }
                    }
                    Err(e) => {
                        shared.error(e);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    tokio::time::sleep(cfg.warmup).await;
    let errors_before = shared.errors.get();
    let a = snapshot(cfg, shared.completed.get());
    tokio::time::sleep(cfg.duration).await;
    let b = snapshot(cfg, shared.completed.get());
    for h in &handles {
        h.abort();
    }
    let (secs, n, mut f) = window_fields(&a, &b, "handshakes");
    let per_s = n as f64 / secs;
    let errors = shared.errors.get() - errors_before;
    f.extend([
        ("conns", cfg.conns.to_string()),
        ("hs_per_s", format!("{per_s:.1}")),
        ("no_fin", no_fin.get().to_string()),
        ("errors", errors.to_string()),
    ]);
    eprintln!(
        "handshake: {} concurrent loops: {} handshakes/s",
        cfg.conns,
        si(per_s)
    );
    if let Some(e) = shared.first_error.take() {
        eprintln!(
            "loadgen: {} handshake(s) failed, first: {e}",
            shared.errors.get()
        );
        if n == 0 {
            return Err(e);
        }
    }
    Ok(f)
}

/// Broadcasts a message's inflated stamp is kept for, so that every subscriber of a
/// compressed run finds it without inflating it again.
const STAMP_CACHE: usize = 4096;

/// One subscriber of the fan-out scenario.
struct Subscriber {
    stream: std::net::TcpStream,
    reader: fanout::MessageReader,
    /// The sequence number it expects next: every broadcast before it arrived or was
    /// skipped by the server.
    next_seq: u64,
    /// Messages it received, over the whole run.
    delivered: u64,
    alive: bool,
}

/// What the subscribers counted.
#[derive(Default)]
struct FanoutCounts {
    delivered: u64,
    /// Broadcasts a subscriber never got (gaps in its sequence).
    lost: u64,
    /// Sum of every live subscriber's `next_seq`: how far they are, all together.
    progress: u64,
    /// Payload bytes of the deliveries, as they came on the wire, and how many were
    /// compressed.
    wire_bytes: u64,
    compressed: u64,
    /// Compressed deliveries that had to be inflated (not found in the cache).
    inflated: u64,
    latency_ns: sockeye_benches::stats::Histogram,
    recording: bool,
}

/// The stamps of recent compressed broadcasts, by sequence number: the payload as the
/// server compressed it, and what it said.
struct StampCache {
    slots: Vec<Option<(Vec<u8>, u64, u64)>>,
}

impl StampCache {
    /// The stamp of a compressed delivery, expected to be broadcast `expected`: from the
    /// cache if that broadcast's payload is the same bytes, else inflated (and cached).
    fn lookup(
        &mut self,
        payload: &[u8],
        expected: u64,
        size: usize,
        inflated: &mut u64,
    ) -> Result<(u64, u64), String> {
        let slot = (expected % STAMP_CACHE as u64) as usize;
        if let Some((bytes, seq, sent)) = &self.slots[slot] {
            if *seq == expected && bytes == payload {
                return Ok((*seq, *sent));
            }
        }
        *inflated += 1;
        let plain = ws::inflate_message(payload, size + 1)
            .ok_or("a compressed delivery is not valid deflate data")?;
        if plain.len() != size {
            return Err(format!("delivered {} bytes, sent {size}", plain.len()));
        }
        let (seq, sent) = fanout::read_stamp(&plain).ok_or("a delivery without a stamp")?;
        self.slots[(seq % STAMP_CACHE as u64) as usize] = Some((payload.to_vec(), seq, sent));
        Ok((seq, sent))
    }
}

async fn fanout(cfg: &Config) -> Result<Fields, String> {
    if cfg.size < fanout::MIN_SIZE {
        return Err(format!(
            "fanout messages are at least {} bytes",
            fanout::MIN_SIZE
        ));
    }
    let rss = || cfg.server_pid.and_then(|p| sys::process_rss_bytes(p).ok());
    let rss_base = rss();
    let request = upgrade_request(cfg);
    let start = Instant::now();
    let opened: Vec<_> = stream::iter(0..cfg.conns)
        .map(|_| ws_connect(cfg.addr, &request))
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    let mut subscribers = Vec::with_capacity(opened.len());
    for c in opened {
        subscribers.push(c?);
    }
    let publisher = ws_connect(cfg.addr, &request).await?;
    let setup = start.elapsed().as_secs_f64();
    // The server registers a subscriber once its handshake is done on its side, which
    // may be just after the 101 arrived here: let the last ones settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_subscribed = rss();
    let to_std = |(s, leftover): (TcpStream, Vec<u8>)| {
        s.into_std()
            .map(|s| (s, leftover))
            .map_err(|e| format!("into_std: {e}"))
    };
    let subscribers = subscribers
        .into_iter()
        .map(to_std)
        .collect::<Result<Vec<_>, _>>()?;
    let publisher = to_std(publisher)?;
    // The rest is one blocking epoll loop; nothing else runs on this runtime.
    let mut f = fanout_loop(cfg, subscribers, publisher)?;
    let rss_end = rss();
    let n = cfg.conns as f64;
    let kib = |b: Option<u64>| b.map_or("nan".to_string(), |b| (b >> 10).to_string());
    let per_sub = |b: Option<u64>| match (b, rss_base) {
        (Some(b), Some(base)) => format!("{:.0}", (b as f64 - base as f64) / n),
        _ => "nan".to_string(),
    };
    f.extend([
        ("rss_base_kib", kib(rss_base)),
        ("rss_subscribed_kib", kib(rss_subscribed)),
        ("rss_kib", kib(rss_end)),
        ("bytes_per_sub_subscribed", per_sub(rss_subscribed)),
        ("bytes_per_sub", per_sub(rss_end)),
        ("setup_secs", format!("{setup:.2}")),
    ]);
    Ok(f)
}

/// The fan-out measurement: publishes and reads every subscriber from one epoll loop
/// until the window ends.
fn fanout_loop(
    cfg: &Config,
    subscribers: Vec<(std::net::TcpStream, Vec<u8>)>,
    publisher: (std::net::TcpStream, Vec<u8>),
) -> Result<Fields, String> {
    use std::io::{Read as _, Write as _};
    use sys::{Epoll, EPOLL_IN, EPOLL_OUT};
    let io_err = |what: &str, e: io::Error| format!("{what}: {e}");
    let epoll = Epoll::new().map_err(|e| io_err("epoll", e))?;
    let epoch = Instant::now();
    let clock = || epoch.elapsed().as_nanos() as u64;
    let mut counts = FanoutCounts::default();
    let mut cache = StampCache {
        slots: vec![None; STAMP_CACHE],
    };
    let size = cfg.size;
    let mut first_error: Option<String> = None;
    let mut errors = 0u64;

    // A subscriber's data: every whole message advances its sequence.
    let deliver = |sub_next: &mut u64,
                   counts: &mut FanoutCounts,
                   cache: &mut StampCache,
                   now_ns: u64,
                   compressed: bool,
                   payload: &[u8]|
     -> Result<(), String> {
        let (seq, sent) = if compressed {
            counts.compressed += 1;
            cache.lookup(payload, *sub_next, size, &mut counts.inflated)?
        } else {
            if payload.len() != size {
                return Err(format!("delivered {} bytes, sent {size}", payload.len()));
            }
            fanout::read_stamp(payload).ok_or("a delivery without a stamp")?
        };
        if seq < *sub_next {
            return Err(format!("broadcast {seq} delivered again or out of order"));
        }
        counts.lost += seq - *sub_next;
        counts.progress += seq + 1 - *sub_next;
        *sub_next = seq + 1;
        counts.delivered += 1;
        counts.wire_bytes += payload.len() as u64;
        if counts.recording {
            counts.latency_ns.record(now_ns.saturating_sub(sent));
        }
        Ok(())
    };

    let mut subs: Vec<Subscriber> = Vec::with_capacity(subscribers.len());
    for (i, (stream, leftover)) in subscribers.into_iter().enumerate() {
        let mut sub = Subscriber {
            stream,
            reader: fanout::MessageReader::new(cfg.deflate),
            next_seq: 0,
            delivered: 0,
            alive: true,
        };
        let now = clock();
        let Subscriber {
            reader,
            next_seq,
            delivered,
            ..
        } = &mut sub;
        reader.feed(&leftover, &mut |c, p| {
            *delivered += 1;
            deliver(next_seq, &mut counts, &mut cache, now, c, p)
        })?;
        epoll
            .add(sub.stream.as_raw_fd(), i as u64, EPOLL_IN)
            .map_err(|e| io_err("epoll add", e))?;
        subs.push(sub);
    }
    let (mut publisher, leftover) = publisher;
    if !leftover.is_empty() {
        return Err("the server sent the publisher data before it published".into());
    }
    let pub_token = subs.len() as u64;
    epoll
        .add(publisher.as_raw_fd(), pub_token, EPOLL_IN)
        .map_err(|e| io_err("epoll add", e))?;
    let mut alive = subs.len() as u64;
    let window = cfg.inflight as u64;
    // Frames built but not yet taken by the publisher's socket, and from where.
    let mut out = Vec::<u8>::with_capacity(64 << 10);
    let mut out_at = 0usize;
    let mut waiting_writable = false;
    let mut sent = 0u64;
    let mut rbuf = vec![0u8; 64 << 10];
    let mut events = Epoll::events(1024);

    let warmup_end = cfg.warmup;
    let end = cfg.warmup + cfg.duration;
    let mut a: Option<(Snapshot, u64, u64)> = None;
    let mut b: Option<(Snapshot, u64, u64)> = None;
    // Bounded: the loop ends with the window (each wait is at most 1 ms).
    while b.is_none() {
        let elapsed = epoch.elapsed();
        if a.is_none() && elapsed >= warmup_end {
            counts.recording = true;
            a = Some((snapshot(cfg, counts.delivered), sent, counts.lost));
        } else if a.is_some() && elapsed >= end {
            counts.recording = false;
            b = Some((snapshot(cfg, counts.delivered), sent, counts.lost));
            break;
        }
        if alive == 0 {
            break;
        }
        // Publish while the subscribers' mean backlog is under the window (and the rate
        // allows), without queueing more than 64 KiB the socket has not taken.
        let rate_cap = if cfg.rate > 0.0 {
            (cfg.rate * elapsed.as_secs_f64()) as u64 + 1
        } else {
            u64::MAX
        };
        while sent * alive < counts.progress + window * alive
            && sent < rate_cap
            && out.len() - out_at < 64 << 10
        {
            let message = fanout::stamp(sent, clock(), size);
            out.extend_from_slice(&ws::masked_frame(opcode::TEXT, &message, ws::MASK));
            sent += 1;
        }
        while out_at < out.len() {
            match publisher.write(&out[out_at..]) {
                Ok(0) => return Err("the publisher's connection closed".into()),
                Ok(n) => out_at += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err("publish", e)),
            }
        }
        if out_at == out.len() {
            out.clear();
            out_at = 0;
        }
        let want_writable = out_at < out.len();
        if want_writable != waiting_writable {
            let ev = if want_writable {
                EPOLL_IN | EPOLL_OUT
            } else {
                EPOLL_IN
            };
            epoll
                .modify(publisher.as_raw_fd(), pub_token, ev)
                .map_err(|e| io_err("epoll mod", e))?;
            waiting_writable = want_writable;
        }
        let ready = epoll
            .wait(&mut events, 1)
            .map_err(|e| io_err("epoll wait", e))?;
        for ev in &events[..ready] {
            let (token, _) = Epoll::token_and_flags(ev);
            if token == pub_token {
                // Nothing is sent to the publisher; read whatever comes (a Ping) so the
                // socket does not stay readable, and stop at its end.
                match publisher.read(&mut rbuf) {
                    Ok(0) => return Err("the server closed the publisher's connection".into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io_err("publisher read", e)),
                }
                continue;
            }
            let sub = &mut subs[token as usize];
            if !sub.alive {
                continue;
            }
            // Read until a short read says the socket is drained (bounded: a few reads
            // at most, since the publisher is bounded too).
            let result = loop {
                let n = match sys::recv(sub.stream.as_raw_fd(), &mut rbuf) {
                    Ok(0) => break Err("the server closed a subscriber".to_string()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(io_err("subscriber read", e)),
                };
                let now = clock();
                let Subscriber {
                    reader,
                    next_seq,
                    delivered,
                    ..
                } = sub;
                if let Err(e) = reader.feed(&rbuf[..n], &mut |c, p| {
                    *delivered += 1;
                    deliver(next_seq, &mut counts, &mut cache, now, c, p)
                }) {
                    break Err(e);
                }
                if n < rbuf.len() {
                    break Ok(());
                }
            };
            if let Err(e) = result {
                errors += 1;
                first_error.get_or_insert(e);
                sub.alive = false;
                alive -= 1;
                counts.progress -= sub.next_seq;
                let _ = epoll.delete(sub.stream.as_raw_fd());
            }
        }
    }
    let (Some((a, sent_a, lost_a)), Some((b, sent_b, lost_b))) = (a, b) else {
        return Err(first_error.unwrap_or_else(|| "every subscriber failed".to_string()));
    };
    let (secs, n, mut f) = window_fields(&a, &b, "msgs");
    let delivered_per_s = n as f64 / secs;
    let broadcasts_per_s = (sent_b - sent_a) as f64 / secs;
    let lat = &counts.latency_ns;
    let p = |q: f64| lat.percentile(q).unwrap_or(0) as f64 / 1e3;
    let (p50, p99) = (p(50.0), p(99.0));
    let lost = lost_b - lost_a;
    // The fewest messages a live subscriber received over the whole run (0: one was
    // starved), and how many live ones received none.
    let live = subs.iter().filter(|s| s.alive);
    let min_sub_msgs = live.clone().map(|s| s.delivered).min().unwrap_or(0);
    let starved = live.filter(|s| s.delivered == 0).count();
    f.extend([
        ("conns", cfg.conns.to_string()),
        ("subscribers", alive.to_string()),
        ("size", size.to_string()),
        ("window", cfg.inflight.to_string()),
        ("rate", format!("{}", cfg.rate)),
        ("msg_per_s", format!("{delivered_per_s:.1}")),
        ("broadcasts_per_s", format!("{broadcasts_per_s:.1}")),
        ("p50_us", format!("{p50:.1}")),
        ("p99_us", format!("{p99:.1}")),
        ("lost", lost.to_string()),
        (
            "lost_share",
            format!("{:.4}", lost as f64 / (n + lost).max(1) as f64),
        ),
        ("errors", errors.to_string()),
        ("min_sub_msgs", min_sub_msgs.to_string()),
        ("starved", starved.to_string()),
    ]);
    if cfg.deflate {
        let total = counts.delivered.max(1);
        f.extend([
            (
                "wire_ratio",
                format!(
                    "{:.3}",
                    (total * size as u64) as f64 / counts.wire_bytes.max(1) as f64
                ),
            ),
            (
                "compressed_share",
                format!("{:.3}", counts.compressed as f64 / total as f64),
            ),
            ("inflated", counts.inflated.to_string()),
            (
                "extensions",
                DEFLATE_ANSWER
                    .get()
                    .map_or(String::new(), |a| a.replace(' ', "")),
            ),
        ]);
    }
    eprintln!(
        "fanout: {} subscribers ({alive} left) x {size} B, window {}: {} delivered/s \
         ({} broadcasts/s), p50 {p50:.1} us, p99 {p99:.1} us, {lost} lost",
        cfg.conns,
        cfg.inflight,
        si(delivered_per_s),
        si(broadcasts_per_s),
    );
    if let Some(e) = first_error {
        eprintln!("loadgen: {errors} subscriber(s) failed, first: {e}");
        if n == 0 {
            return Err(e);
        }
    }
    Ok(f)
}
