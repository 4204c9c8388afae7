//! The end-to-end echo comparison: one command, one markdown table per scenario.
//!
//! usage: compare [options]      (benches/compare.sh builds everything first)
//!
//!   --scenarios LIST  latency,small,bulk,text,large,idle,crowd,handshake,
//!                     deflate-1k,deflate-64k,deflate-idle,
//!                     fanout-1k,fanout-10k,fanout-1k-deflate (default: all)
//!   --servers LIST    server names (default: every available one; see --list)
//!   --reps N          repetitions, interleaved A B C A B C ... (default 3)
//!   --warmup SECS     before each measured window (default 1)
//!   --duration SECS   measured window (default 3)
//!   --idle-conns N    connections of the idle and crowd scenarios (default 10000)
//!   --deflate-idle-conns N  connections of deflate-idle (default 2000: a server
//!                     that keeps its codecs holds hundreds of KB for each)
//!   --fanout-10k-subscribers N  subscribers of fanout-10k (default 10000, fewer
//!                     if the open-file limit is lower)
//!   --quick           1 rep, 0.5 s warmup, 2 s windows, 2000 idle connections
//!   --server-cpu N    CPU the server is pinned to (default 0)
//!   --client-cpu N    CPU the load generator is pinned to (default 1)
//!   --no-pin          do not use taskset
//!   --client-congestion NAME  TCP congestion control of the load generator's
//!                     sockets (default cubic; `system` keeps the kernel's
//!                     default). The servers always keep the kernel's default.
//!   --client-copy-echoes  the load generator copies echoed payloads out of the
//!                     kernel (`loadgen --copy-echoes`) instead of dropping them
//!   --floor           also run the references, never the "best peer":
//!                     `tcp-floor`, which moves the same bytes with no WebSocket
//!                     work (`peer_echo --impl tcp-floor`): its CPU per message
//!                     is the kernel's share, the floor under every library (it
//!                     sits out the idle, deflate-idle and handshake scenarios;
//!                     in the other compressed ones it echoes the compressed
//!                     frames as they came); and, in
//!                     fan-out, `tungstenite-batched`, tokio-tungstenite's
//!                     broadcast flushing once per burst rather than per message
//!                     (`peer_broadcast --impl tungstenite-batched`)
//!   --max-other X     a run during which the rest of the machine used more
//!                     than X of a core (steal time included) is noisy: marked
//!                     ‡ in the table, and run again (default 0.25)
//!   --retries N       how many times a noisy run is run again, 5 s apart; the
//!                     least noisy attempt is kept (default 2; 0: never)
//!   --no-build        do not run cargo (use the binaries already built)
//!   --out FILE        also write the report there
//!                     (default: TARGET/bench-results/latest.md)
//!   --list            list the servers and whether each is available
//!
//! Each run starts a fresh server (pinned to one core, on a free loopback
//! port), waits for its `listening on ADDR`, runs `loadgen` (pinned to the
//! other core) with `--server-pid`, and kills the server by its PID. Servers
//! are the peer echo servers of this crate (`peer_echo --impl ...`) and the
//! Sockeye adapters' `echo_server` examples, which join the table as soon as
//! `adapters/NAME/examples/echo_server.rs` exists: see `SERVERS`.
//!
//! The fan-out scenarios (`fanout-*`) run broadcast servers instead: the peers'
//! (`peer_broadcast --impl ...`: a tokio `broadcast` channel and a task per
//! connection, each library's idiomatic way) and Sockeye's `broadcast_server`
//! example (tokio; `--deflate` in fanout-1k-deflate), against `loadgen --scenario
//! fanout`: one publisher, N subscribers, 125 B stamped text messages.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sockeye_benches::stats::{median, si};
use sockeye_benches::sys;

/// How a server under test is started.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// `peer_echo --impl IMPL ADDR` (this crate), or `peer_broadcast --impl IMPL ADDR`
    /// as a broadcast server.
    Peer(&'static str),
    /// Also `peer_echo --impl IMPL ADDR`, but a yardstick rather than a
    /// library: run only when asked for, never the "best peer".
    Reference(&'static str),
    /// An example of a workspace package (`echo_server` for the adapters,
    /// `broadcast_server`): `ADDR` is its last argument and it prints `listening on ADDR`.
    Example {
        package: &'static str,
        dir: &'static str,
        example: &'static str,
    },
}

#[derive(Clone, Copy, Debug)]
struct Server {
    name: &'static str,
    /// How it serves the echo scenarios (`None`: it does not, or was not built).
    echo: Option<Kind>,
    /// How it serves the fan-out scenarios, as a broadcast server, if it does.
    broadcast: Option<Kind>,
    /// Accepts permessage-deflate: runs the deflate-* scenarios (and fanout-1k-deflate).
    deflate: bool,
}

/// Every server the comparison knows. Adding one is one line here.
const SERVERS: &[Server] = &[
    Server {
        name: "tokio-tungstenite",
        echo: Some(Kind::Peer("tungstenite")),
        broadcast: Some(Kind::Peer("tungstenite")),
        deflate: false,
    },
    Server {
        name: "fastwebsockets",
        echo: Some(Kind::Peer("fastwebsockets")),
        broadcast: Some(Kind::Peer("fastwebsockets")),
        deflate: false,
    },
    Server {
        name: "tokio-websockets",
        echo: Some(Kind::Peer("tokio-websockets")),
        broadcast: Some(Kind::Peer("tokio-websockets")),
        deflate: false,
    },
    Server {
        name: "yawc",
        echo: Some(Kind::Peer("yawc")),
        broadcast: Some(Kind::Peer("yawc")),
        deflate: true,
    },
    Server {
        name: "sockeye-tokio",
        echo: Some(Kind::Example {
            package: "sockeye-tokio",
            dir: "adapters/tokio",
            example: "echo_server",
        }),
        broadcast: Some(Kind::Example {
            package: "sockeye-tokio",
            dir: "adapters/tokio",
            example: "broadcast_server",
        }),
        deflate: true,
    },
    Server {
        name: "sockeye-smol",
        echo: Some(Kind::Example {
            package: "sockeye-smol",
            dir: "adapters/smol",
            example: "echo_server",
        }),
        broadcast: None,
        deflate: true,
    },
    Server {
        name: "sockeye-mio",
        echo: Some(Kind::Example {
            package: "sockeye-mio",
            dir: "adapters/mio",
            example: "echo_server",
        }),
        broadcast: None,
        deflate: true,
    },
    // axum's own WebSocketUpgrade (tokio-tungstenite) and Sockeye's in its place: the
    // same axum route serving the echo.
    Server {
        name: "axum-tungstenite",
        echo: Some(Kind::Peer("axum")),
        broadcast: None,
        deflate: false,
    },
    Server {
        name: "sockeye-axum",
        echo: Some(Kind::Example {
            package: "sockeye-hyper",
            dir: "adapters/hyper",
            example: "axum_echo",
        }),
        broadcast: None,
        deflate: true,
    },
    Server {
        name: "tcp-floor",
        echo: Some(Kind::Reference("tcp-floor")),
        broadcast: None,
        deflate: true,
    },
    // tokio-tungstenite's broadcast with one flush per burst instead of one per message.
    Server {
        name: "tungstenite-batched",
        echo: None,
        broadcast: Some(Kind::Reference("tungstenite-batched")),
        deflate: false,
    },
];

/// The fan-out scenarios, run against broadcast servers.
fn is_fanout(scenario: &str) -> bool {
    scenario.starts_with("fanout-")
}

/// The compressed scenarios: the deflate-* echoes and fanout-1k-deflate.
fn is_compressed(scenario: &str) -> bool {
    scenario.starts_with("deflate-") || scenario.ends_with("-deflate")
}

/// How `server` serves `scenario`: its broadcast server in the fan-out scenarios, its
/// echo server in the others.
fn kind_in(server: &Server, scenario: &str) -> Option<Kind> {
    if is_fanout(scenario) {
        server.broadcast
    } else {
        server.echo
    }
}

/// Whether `server` is a reference (`tcp-floor`, `tungstenite-batched`), not a library
/// as its users run it.
fn is_reference(server: &Server) -> bool {
    matches!(server.echo, Some(Kind::Reference(_)))
        || matches!(server.broadcast, Some(Kind::Reference(_)))
}

/// Whether `server` takes part in `scenario`: the floor measures what moving
/// messages costs, so it sits out the idle memory and handshake scenarios (the
/// compressed one too); the compressed scenarios are for the servers that accept
/// permessage-deflate; the fan-out scenarios for those with a broadcast server.
fn runs_in(server: &Server, scenario: &str) -> bool {
    let Some(kind) = kind_in(server, scenario) else {
        return false;
    };
    let reference = matches!(kind, Kind::Reference(_));
    if is_compressed(scenario) && !server.deflate {
        return false;
    }
    !reference || !matches!(scenario, "idle" | "handshake" | "deflate-idle")
}

/// Peer crates whose versions the report names (read from Cargo.lock).
const PEER_CRATES: &[&str] = &[
    "tokio-tungstenite",
    "tungstenite",
    "fastwebsockets",
    "tokio-websockets",
    "yawc",
    "axum",
    "zlib-rs",
    "tokio",
];

const ALL_SCENARIOS: &[&str] = &[
    "latency",
    "small",
    "bulk",
    "text",
    "large",
    "idle",
    "crowd",
    "handshake",
    "deflate-1k",
    "deflate-64k",
    "deflate-idle",
    "fanout-1k",
    "fanout-10k",
    "fanout-1k-deflate",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    High,
    Low,
}

/// One column of a scenario's table: a RESULT key, its header, a scale
/// factor, whether it gets a "vs best peer" ratio column, and whether it gets a
/// ratio to the same server's value in another scenario.
struct Column {
    key: &'static str,
    header: &'static str,
    scale: f64,
    ratio: Option<Better>,
    against: Option<&'static str>,
}

const fn col(key: &'static str, header: &'static str, scale: f64, ratio: Option<Better>) -> Column {
    Column {
        key,
        header,
        scale,
        ratio,
        against: None,
    }
}

impl Column {
    /// Also a column of this value over the same server's in `scenario`.
    const fn against(self, scenario: &'static str) -> Column {
        Column {
            against: Some(scenario),
            ..self
        }
    }
}

/// Description and columns of each scenario's table.
fn scenario_table(name: &str) -> (&'static str, Vec<Column>) {
    use Better::{High, Low};
    let cpu = [
        col("server_cpu", "server CPU", 1.0, None),
        col("client_cpu", "client CPU", 1.0, None),
        col("other_cpu", "other CPU", 1.0, None),
    ];
    match name {
        "latency" => (
            "1 connection, 16 B text, 1 in flight: round-trip time (lower is better)",
            [
                col("p50_us", "p50 µs", 1.0, Some(Low)),
                col("p99_us", "p99 µs", 1.0, None),
                col("msg_per_s", "msg/s", 1.0, None),
                col("server_us_per_op", "server µs/msg", 1.0, None),
            ]
            .into_iter()
            .chain(cpu)
            .collect(),
        ),
        "small" => (
            "64 connections x 16 B text x 16 in flight: messages per second",
            [
                col("msg_per_s", "msg/s", 1.0, Some(High)),
                col("server_us_per_op", "server µs/msg", 1.0, Some(Low)),
                col("p99_us", "p99 µs", 1.0, None),
            ]
            .into_iter()
            .chain(cpu)
            .collect(),
        ),
        "bulk" | "text" => (
            if name == "bulk" {
                "16 connections x 64 KiB binary x 2 in flight: throughput (MB = 10^6 B, each way)"
            } else {
                "16 connections x 64 KiB text (UTF-8 validated) x 2 in flight: throughput \
                (MB = 10^6 B, each way)"
            },
            [
                col("mb_per_s", "MB/s", 1.0, Some(High)),
                col("msg_per_s", "msg/s", 1.0, None),
                col("server_us_per_op", "server µs/msg", 1.0, Some(Low)),
            ]
            .into_iter()
            .chain(cpu)
            .collect(),
        ),
        "large" => (
            "1 connection, one 16 MiB binary message at a time: throughput",
            [
                col("mb_per_s", "MB/s", 1.0, Some(High)),
                col("server_us_per_op", "server ms/msg", 1e-3, Some(Low)),
                col("p50_us", "p50 ms", 1e-3, None),
            ]
            .into_iter()
            .chain(cpu)
            .collect(),
        ),
        "deflate-1k" | "deflate-64k" => (
            if name == "deflate-1k" {
                "permessage-deflate (level 1, no context takeover either way, 15-bit windows), \
                16 connections x 1 KiB JSON text x 8 in flight: messages per second; wire ratio: \
                message bytes over the echoes' payload bytes"
            } else {
                "permessage-deflate (level 1, no context takeover either way, 15-bit windows), \
                16 connections x 64 KiB JSON text x 2 in flight: messages per second; wire ratio: \
                message bytes over the echoes' payload bytes"
            },
            [
                col("msg_per_s", "msg/s", 1.0, Some(High)),
                col("server_us_per_op", "server µs/msg", 1.0, Some(Low)),
                col("wire_ratio_echo", "wire ratio", 1.0, None),
                col("p99_us", "p99 µs", 1.0, None),
            ]
            .into_iter()
            .chain(cpu)
            .collect(),
        ),
        "idle" | "deflate-idle" => (
            if name == "idle" {
                "idle connections held open: server RSS growth per connection (lower is better)"
            } else {
                "idle connections with permessage-deflate agreed (no context takeover either \
                way): server RSS growth per connection after the handshake and after one 1 KiB \
                JSON echo each (lower is better)"
            },
            vec![
                col(
                    "bytes_per_conn_handshake",
                    "B/conn after handshake",
                    1.0,
                    Some(Low),
                ),
                col(
                    "bytes_per_conn_echo",
                    "B/conn after one echo",
                    1.0,
                    Some(Low),
                ),
                col("rss_echo_kib", "server RSS MiB", 1.0 / 1024.0, None),
                col("conns", "connections", 1.0, None),
            ],
        ),
        "crowd" => (
            "latency with many idle connections held open: 1 connection, 16 B text, 1 in \
            flight (what each turn of the server's event loop costs when it serves many)",
            [
                col("p50_us", "p50 µs", 1.0, Some(Low)),
                col("p99_us", "p99 µs", 1.0, None),
                col("server_us_per_op", "server µs/msg", 1.0, Some(Low)),
                col("held", "idle connections", 1.0, None),
            ]
            .into_iter()
            .chain(cpu)
            .collect(),
        ),
        "fanout-1k" | "fanout-10k" | "fanout-1k-deflate" => (
            match name {
                "fanout-1k" => {
                    "one publisher, 1,000 subscribers, 125 B text messages, each sent to every \
                    subscriber (up to 32 broadcasts outstanding per subscriber on average): \
                    messages delivered per second, latency from the publisher's send to each \
                    delivery"
                }
                "fanout-10k" => {
                    "one publisher, 10,000 subscribers, 125 B text messages, each sent to every \
                    subscriber (up to 32 broadcasts outstanding per subscriber on average): \
                    messages delivered per second, latency from the publisher's send to each \
                    delivery"
                }
                _ => {
                    "fanout-1k with permessage-deflate (level 1, no context takeover either \
                    way, 15-bit windows, messages from 64 B compressed): the same, and the server \
                    CPU per delivery over the same server's uncompressed one (fanout-1k, when run); \
                    wire ratio: message bytes over delivered payload bytes"
                }
            },
            {
                let mut cols = vec![
                    col("msg_per_s", "delivered msg/s", 1.0, Some(High)),
                    col("server_us_per_op", "server µs/delivery", 1.0, Some(Low)),
                ];
                if name == "fanout-1k-deflate" {
                    cols.pop();
                    cols.push(
                        col("server_us_per_op", "server µs/delivery", 1.0, Some(Low))
                            .against("fanout-1k"),
                    );
                    cols.push(col("wire_ratio", "wire ratio", 1.0, None));
                }
                cols.extend([
                    col("p50_us", "p50 ms", 1e-3, None),
                    col("p99_us", "p99 ms", 1e-3, None),
                    col("rss_kib", "server RSS MiB", 1.0 / 1024.0, None),
                    col("lost_share", "lost %", 100.0, None),
                ]);
                cols.extend(cpu);
                cols
            },
        ),
        "handshake" => (
            "64 concurrent loops of connect, upgrade, close handshake, server FIN",
            [
                col("hs_per_s", "handshakes/s", 1.0, Some(High)),
                col("server_us_per_op", "server µs/handshake", 1.0, Some(Low)),
            ]
            .into_iter()
            .chain(cpu)
            .collect(),
        ),
        _ => ("", Vec::new()),
    }
}

#[derive(Clone, Debug)]
struct Options {
    scenarios: Vec<String>,
    servers: Option<Vec<String>>,
    reps: usize,
    warmup: f64,
    duration: f64,
    idle_conns: usize,
    quick: bool,
    server_cpu: usize,
    client_cpu: usize,
    pin: bool,
    /// Connections of deflate-idle.
    deflate_idle_conns: usize,
    /// Subscribers of fanout-10k.
    fanout_10k_subscribers: usize,
    /// `loadgen --congestion`: `system` keeps the kernel's default.
    client_congestion: String,
    /// `loadgen --copy-echoes`.
    client_copy_echoes: bool,
    /// Run the `tcp-floor` reference too.
    floor: bool,
    /// Other CPU (fraction of a core) above which a run is noisy.
    max_other: f64,
    /// How many times a noisy run is run again.
    retries: usize,
    build: bool,
    out: Option<PathBuf>,
    list: bool,
}

fn usage() -> ! {
    let doc = include_str!("compare.rs");
    for line in doc.lines().take_while(|l| l.starts_with("//!")) {
        let text = line.trim_start_matches("//!");
        eprintln!("{}", text.strip_prefix(" ").unwrap_or(text));
    }
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut o = Options {
        scenarios: ALL_SCENARIOS.iter().map(|s| s.to_string()).collect(),
        servers: None,
        reps: 3,
        warmup: 1.0,
        duration: 3.0,
        idle_conns: 10_000,
        deflate_idle_conns: 2_000,
        fanout_10k_subscribers: 10_000,
        quick: false,
        server_cpu: 0,
        client_cpu: 1,
        pin: true,
        client_congestion: "cubic".to_string(),
        client_copy_echoes: false,
        floor: false,
        max_other: 0.25,
        retries: 2,
        build: true,
        out: None,
        list: false,
    };
    let (mut reps, mut warmup, mut duration, mut idle) = (None, None, None, None);
    let mut args = std::env::args().skip(1);
    let list = |s: String| -> Vec<String> {
        s.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    };
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        fn num<T: std::str::FromStr>(v: String) -> T {
            v.parse().unwrap_or_else(|_| {
                eprintln!("compare: bad number {v:?}");
                usage()
            })
        }
        match a.as_str() {
            "--scenarios" => o.scenarios = list(val()),
            "--servers" => o.servers = Some(list(val())),
            "--reps" => reps = Some(num::<usize>(val()).max(1)),
            "--warmup" => warmup = Some(num(val())),
            "--duration" => duration = Some(num(val())),
            "--idle-conns" => idle = Some(num(val())),
            "--deflate-idle-conns" => o.deflate_idle_conns = num(val()),
            "--fanout-10k-subscribers" => o.fanout_10k_subscribers = num(val()),
            "--quick" => o.quick = true,
            "--server-cpu" => o.server_cpu = num(val()),
            "--client-cpu" => o.client_cpu = num(val()),
            "--no-pin" => o.pin = false,
            "--client-congestion" => o.client_congestion = val(),
            "--client-copy-echoes" => o.client_copy_echoes = true,
            "--floor" => o.floor = true,
            "--max-other" => o.max_other = num(val()),
            "--retries" => o.retries = num(val()),
            "--no-build" => o.build = false,
            "--out" => o.out = Some(PathBuf::from(val())),
            "--list" => o.list = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("compare: unknown argument {other:?}");
                usage()
            }
        }
    }
    if o.quick {
        (o.reps, o.warmup, o.duration, o.idle_conns) = (1, 0.5, 2.0, 2000);
    }
    o.reps = reps.unwrap_or(o.reps);
    o.warmup = warmup.unwrap_or(o.warmup);
    o.duration = duration.unwrap_or(o.duration);
    o.idle_conns = idle.unwrap_or(o.idle_conns);
    for s in &o.scenarios {
        if !ALL_SCENARIOS.contains(&s.as_str()) {
            eprintln!("compare: unknown scenario {s:?} (known: {ALL_SCENARIOS:?})");
            std::process::exit(2);
        }
    }
    if let Some(servers) = &o.servers {
        for s in servers {
            if !SERVERS.iter().any(|k| k.name == s) {
                let known: Vec<_> = SERVERS.iter().map(|k| k.name).collect();
                eprintln!("compare: unknown server {s:?} (known: {known:?})");
                std::process::exit(2);
            }
        }
    }
    o
}

/// Where things are: the workspace root and the release directory holding
/// this binary, `peer_echo` and `loadgen`.
struct Paths {
    root: PathBuf,
    release: PathBuf,
}

impl Paths {
    fn find() -> Paths {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .to_path_buf();
        let release = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| root.join("target/release"));
        Paths { root, release }
    }

    fn target_dir(&self) -> PathBuf {
        self.release
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.join("target"))
    }

    /// Where the comparison keeps server `name`'s build of `example`.
    fn example_binary(&self, name: &str, example: &str) -> PathBuf {
        self.release
            .join("bench-servers")
            .join(format!("{name}-{example}"))
    }
}

fn example_exists(root: &Path, dir: &str, example: &str) -> bool {
    let d = root.join(dir).join("examples");
    d.join(format!("{example}.rs")).is_file() || d.join(example).join("main.rs").is_file()
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.arg("build").arg("--release");
    c
}

/// Builds what the runs need; returns the servers that can run, and notes on
/// those that cannot.
fn prepare(o: &Options, paths: &Paths) -> (Vec<Server>, Vec<String>) {
    let mut notes = Vec::new();
    if o.build {
        eprintln!("== building peer_echo, peer_broadcast and loadgen (release)");
        let ok = cargo()
            .args(["-p", "sockeye-benches", "--bins", "--target-dir"])
            .arg(paths.target_dir())
            .current_dir(&paths.root)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("compare: building sockeye-benches failed");
            std::process::exit(1);
        }
    }
    for bin in ["peer_echo", "peer_broadcast", "loadgen"] {
        if !paths.release.join(bin).is_file() {
            eprintln!(
                "compare: {} missing; run benches/compare.sh (or drop --no-build)",
                paths.release.join(bin).display()
            );
            std::process::exit(1);
        }
    }
    let wanted = |s: &Server| match &o.servers {
        Some(names) => names.iter().any(|n| n == s.name),
        None => o.floor || !is_reference(s),
    };
    let echo_wanted = o.scenarios.iter().any(|sc| !is_fanout(sc));
    let broadcast_wanted = o.scenarios.iter().any(|sc| is_fanout(sc));
    let mut ready = Vec::new();
    for s in SERVERS.iter().filter(|s| wanted(s)) {
        let mut s = *s;
        for (role, slot, needed) in [
            ("echo", &mut s.echo, echo_wanted),
            ("broadcast", &mut s.broadcast, broadcast_wanted),
        ] {
            if !needed {
                *slot = None;
            }
            let Some(Kind::Example {
                package,
                dir,
                example,
            }) = *slot
            else {
                continue;
            };
            *slot = None;
            if !example_exists(&paths.root, dir, example) {
                notes.push(format!(
                    "{}: no {role} server, {dir}/examples/{example}.rs does not exist yet",
                    s.name
                ));
                continue;
            }
            let bin = paths.example_binary(s.name, example);
            if o.build {
                // Several packages have an example named echo_server and cargo
                // uplifts one at a time: copy each right after its build.
                eprintln!("== building {package} --example {example} (release)");
                let ok = cargo()
                    .args(["-p", package, "--example", example, "--target-dir"])
                    .arg(paths.target_dir())
                    .current_dir(&paths.root)
                    .status()
                    .map(|st| st.success())
                    .unwrap_or(false);
                let built = paths.release.join("examples").join(example);
                let copied = ok
                    && std::fs::create_dir_all(bin.parent().expect("dir")).is_ok()
                    && std::fs::copy(&built, &bin).is_ok();
                if !copied {
                    notes.push(format!(
                        "{}: no {role} server, {example} did not build",
                        s.name
                    ));
                    continue;
                }
            }
            if bin.is_file() {
                *slot = Some(Kind::Example {
                    package,
                    dir,
                    example,
                });
            } else {
                notes.push(format!(
                    "{}: no {role} server, {} not built",
                    s.name,
                    bin.display()
                ));
            }
        }
        if s.echo.is_some() || s.broadcast.is_some() {
            ready.push(s);
        }
    }
    (ready, notes)
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(19001)
}

fn pinned(pin: bool, cpu: usize, program: &Path) -> Command {
    if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu.to_string()).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A running server, killed (by its PID) when dropped.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(
    o: &Options,
    paths: &Paths,
    server: &Server,
    scenario: &str,
    addr: &str,
    log: &Path,
) -> Result<Running, String> {
    let kind = kind_in(server, scenario)
        .ok_or_else(|| format!("{} does not serve {scenario}", server.name))?;
    let peer_bin = if is_fanout(scenario) {
        "peer_broadcast"
    } else {
        "peer_echo"
    };
    let mut cmd = match kind {
        Kind::Peer(imp) | Kind::Reference(imp) => {
            let mut c = pinned(o.pin, o.server_cpu, &paths.release.join(peer_bin));
            c.args(["--impl", imp]);
            c
        }
        Kind::Example { example, .. } => {
            let mut c = pinned(
                o.pin,
                o.server_cpu,
                &paths.example_binary(server.name, example),
            );
            // The broadcast server compresses only when told (the peers' accept
            // compression whenever it is offered, as the echo servers do).
            if is_fanout(scenario) && is_compressed(scenario) {
                c.arg("--deflate");
            }
            c
        }
    };
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("{}: {e}", log.display()))?;
    cmd.arg(addr)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", server.name))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let running = Running { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut line = String::new();
        while r.read_line(&mut line).unwrap_or(0) > 0 {
            if line.contains("listening on") {
                let _ = tx.send(());
                // Keep draining so the server never blocks on a full pipe.
                let _ = std::io::copy(&mut r, &mut std::io::sink());
                return;
            }
            line.clear();
        }
    });
    rx.recv_timeout(Duration::from_secs(15)).map_err(|_| {
        format!(
            "{} did not print `listening on` within 15 s (log: {})",
            server.name,
            log.display()
        )
    })?;
    Ok(running)
}

type Result1 = BTreeMap<String, f64>;

/// How long to wait before running a noisy run again: the host's bursts of
/// load here last from seconds to minutes.
const RETRY_PAUSE: Duration = Duration::from_secs(5);

/// The CPU the rest of the machine used during a run, in cores (0 where the
/// scenario does not measure it, as `idle`).
fn other_cpu(r: &Result1) -> f64 {
    r.get("other_cpu").copied().unwrap_or(0.0)
}

/// Runs `attempt` (given its number, from 1) until a run is quiet (the rest of
/// the machine used at most `max_other` of a core) or `retries` more runs were
/// made, `pause` apart. Returns the least noisy run and how many were made; a
/// failed run ends it.
fn least_noisy(
    max_other: f64,
    retries: usize,
    pause: Duration,
    mut attempt: impl FnMut(usize) -> Result<Result1, String>,
) -> Result<(Result1, usize), String> {
    let mut kept = attempt(1)?;
    let mut made = 1;
    while other_cpu(&kept) > max_other && made <= retries {
        std::thread::sleep(pause);
        made += 1;
        let r = attempt(made)?;
        if other_cpu(&r) < other_cpu(&kept) {
            kept = r;
        }
    }
    Ok((kept, made))
}

/// What the noisy-run retries did over a comparison.
#[derive(Debug, Default)]
struct Noise {
    /// Runs measured (not counting retries).
    runs: usize,
    /// Runs that were run again at least once.
    redone: usize,
    /// Runs whose kept attempt was still noisy.
    still_noisy: usize,
}

fn run_loadgen(
    o: &Options,
    paths: &Paths,
    scenario: &str,
    addr: &str,
    pid: u32,
) -> Result<Result1, String> {
    let mut cmd = pinned(o.pin, o.client_cpu, &paths.release.join("loadgen"));
    // crowd is loadgen's latency scenario with the idle connections held open; text is
    // its bulk scenario with text messages.
    let loadgen_scenario = match scenario {
        "crowd" => "latency",
        "text" => "bulk",
        fanout if is_fanout(fanout) => "fanout",
        other => other,
    };
    cmd.args(["--addr", addr, "--scenario", loadgen_scenario])
        .args(["--server-pid", &pid.to_string()])
        .args(["--warmup", &o.warmup.to_string()])
        .args(["--duration", &o.duration.to_string()])
        .args(["--congestion", &o.client_congestion]);
    if o.client_copy_echoes {
        cmd.arg("--copy-echoes");
    }
    match scenario {
        "idle" => {
            cmd.args(["--conns", &o.idle_conns.to_string()]);
        }
        "deflate-idle" => {
            cmd.args([
                "--conns",
                &o.deflate_idle_conns.min(o.idle_conns).to_string(),
            ]);
        }
        "crowd" => {
            cmd.args(["--hold", &o.idle_conns.to_string()]);
        }
        "text" => {
            cmd.arg("--text");
        }
        "fanout-1k" => {
            cmd.args(["--subscribers", "1000"]);
        }
        "fanout-10k" => {
            cmd.args(["--subscribers", &o.fanout_10k_subscribers.to_string()]);
        }
        "fanout-1k-deflate" => {
            cmd.args(["--subscribers", "1000", "--deflate"]);
        }
        _ => {}
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start loadgen: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    // Bounded: the window plus generous setup time (10,000 handshakes).
    let limit = Duration::from_secs_f64(o.warmup + o.duration + 120.0);
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("wait loadgen: {e}")),
        }
    };
    let out = out_t.join().unwrap_or_default();
    let err = err_t.join().unwrap_or_default();
    let Some(status) = status else {
        return Err(format!("loadgen timed out after {limit:?}"));
    };
    let line = out.lines().rev().find(|l| l.starts_with("RESULT "));
    match (status.success(), line) {
        (true, Some(line)) => Ok(line
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k.to_string(), v)))
            .collect()),
        _ => Err(format!(
            "loadgen failed ({status}): {}",
            err.trim().lines().last().unwrap_or("")
        )),
    }
}

fn progress_line(scenario: &str, r: &Result1) -> String {
    let g = |k: &str| r.get(k).copied().unwrap_or(f64::NAN);
    let head = match scenario {
        "latency" | "crowd" => format!("p50 {:.1} µs, p99 {:.1} µs", g("p50_us"), g("p99_us")),
        "small" => format!("{} msg/s", si(g("msg_per_s"))),
        "bulk" | "text" | "large" => {
            format!("{} MB/s, {} msg/s", si(g("mb_per_s")), si(g("msg_per_s")))
        }
        "deflate-1k" | "deflate-64k" => format!(
            "{} msg/s, {:.2} µs/msg, wire ratio {:.2}",
            si(g("msg_per_s")),
            g("server_us_per_op"),
            g("wire_ratio_echo")
        ),
        "idle" | "deflate-idle" => format!(
            "{:.0} B/conn after handshake, {:.0} after echo",
            g("bytes_per_conn_handshake"),
            g("bytes_per_conn_echo")
        ),
        "handshake" => format!("{} handshakes/s", si(g("hs_per_s"))),
        fanout if is_fanout(fanout) => format!(
            "{} delivered/s, {:.3} µs/delivery, p50 {:.1} ms, p99 {:.1} ms, RSS {:.1} MiB, \
             {} lost",
            si(g("msg_per_s")),
            g("server_us_per_op"),
            g("p50_us") / 1e3,
            g("p99_us") / 1e3,
            g("rss_kib") / 1024.0,
            g("lost")
        ),
        _ => String::new(),
    };
    if scenario.ends_with("idle") {
        return head;
    }
    format!(
        "{head} (server cpu {:.2}, client cpu {:.2}, other {:.2})",
        g("server_cpu"),
        g("client_cpu"),
        g("other_cpu")
    )
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn crate_versions(root: &Path) -> String {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let mut found = Vec::new();
    let mut name = "";
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"');
        } else if let Some(v) = line.strip_prefix("version = ") {
            if PEER_CRATES.contains(&name) {
                found.push(format!("{name} {}", v.trim_matches('"')));
            }
        }
    }
    found.join(", ")
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!(", {} GiB", (kb + (1 << 19)) >> 20)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("{cpus} x {model}{mem}, Linux {}, {rustc}", kernel.trim())
}

fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        si(v)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn report(
    o: &Options,
    paths: &Paths,
    servers: &[Server],
    notes: &[String],
    results: &BTreeMap<(String, &'static str), Vec<Result1>>,
    noise: &Noise,
    failures: &[String],
) -> String {
    let mut md = String::new();
    let w = &mut md;
    use std::fmt::Write as _;
    let echoes = o.scenarios.iter().any(|sc| !is_fanout(sc));
    let fanouts = o.scenarios.iter().any(|sc| is_fanout(sc));
    let title = match (echoes, fanouts) {
        (true, true) => "Echo and fan-out comparison",
        (false, true) => "Fan-out comparison",
        _ => "Echo comparison",
    };
    let _ = writeln!(w, "### {title}, {}\n", today());
    let _ = writeln!(w, "- machine: {}", machine());
    let _ = writeln!(w, "- crates: {}", crate_versions(&paths.root));
    let _ = writeln!(
        w,
        "- command: `benches/compare.sh {}`",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let _ = writeln!(
        w,
        "- {} repetition(s) interleaved, {} s warmup + {} s window each; medians shown; \
         servers on tokio current_thread (peers) {}",
        o.reps,
        o.warmup,
        o.duration,
        if o.pin {
            format!(
                "pinned to CPU {}, load generator to CPU {}",
                o.server_cpu, o.client_cpu
            )
        } else {
            "not pinned".to_string()
        }
    );
    let system = sys::default_congestion_control().unwrap_or_else(|| "unknown".to_string());
    let client = if o.client_congestion == "system" {
        &system
    } else {
        &o.client_congestion
    };
    let _ = writeln!(
        w,
        "- TCP congestion control: servers {system} (the kernel's default), load generator {client}"
    );
    let _ = writeln!(
        w,
        "- noisy runs (the rest of the machine over {} of a core): {} of {} run again (up to {} \
         times, {} s apart, the least noisy attempt kept), {} still noisy",
        o.max_other,
        noise.redone,
        noise.runs,
        o.retries,
        RETRY_PAUSE.as_secs(),
        noise.still_noisy
    );
    if echoes {
        let _ = writeln!(
            w,
            "- the load generator {} echoed payloads of 4 KiB or more",
            if o.client_copy_echoes {
                "copies out"
            } else {
                "drops (unread, in the kernel)"
            }
        );
    }
    if echoes
        && servers
            .iter()
            .any(|s| matches!(s.echo, Some(Kind::Reference(_))))
    {
        let _ = writeln!(
            w,
            "- tcp-floor is a reference, not a library: it echoes each frame once whole with \
             its header rewritten and its payload still masked (no unmasking, no validation), \
             so its CPU per message is the kernel's share of an echo; in the compressed \
             scenarios it accepts permessage-deflate and echoes the client's compressed \
             frames as they came (a valid echo of the same size; each connection's first \
             one unmasked, for the load generator's check), so no codec work either"
        );
    }
    if fanouts
        && servers
            .iter()
            .any(|s| matches!(s.broadcast, Some(Kind::Reference(_))))
    {
        let _ = writeln!(
            w,
            "- tungstenite-batched is a reference, not the usual way: tokio-tungstenite's \
             broadcast whose task takes every message waiting in the channel and flushes once \
             per burst (as Sockeye's server writes once per subscriber per burst), where its \
             users flush each message"
        );
    }
    if o.scenarios.iter().any(|s| s.starts_with("deflate-")) {
        let _ = writeln!(
            w,
            "- deflate-*: the load generator offers permessage-deflate with no context takeover \
             either way and sends JSON-like text compressed once at level 1; every server \
             compresses at level 1 with 15-bit windows and no context takeover (Sockeye's \
             default `DeflateConfig`; yawc configured to match, on the same engine, zlib-rs, \
             through its `zlib` feature), so each message costs an inflate and a deflate"
        );
    }
    if fanouts {
        let _ = writeln!(
            w,
            "- fanout-*: broadcast servers; every text message from one connection goes to \
             every other. Sockeye: `adapters/tokio/examples/broadcast_server.rs` (one \
             `PreparedMessage` per broadcast, `try_feed_prepared` on every subscriber, one \
             flusher task; slow consumers miss messages). Peers: `peer_broadcast` (a tokio \
             `broadcast` channel of 1,024 and a task per connection that sends each message, \
             as their users write it; lagging receivers skip messages). The load generator \
             (`loadgen --scenario fanout`) opens the subscribers, then one publisher that \
             stamps each 125 B message with its send time and keeps at most 32 broadcasts \
             per subscriber outstanding on average, so latency at this saturation is mostly \
             that queue (32 over the broadcast rate). Server µs/delivery: server CPU time over \
             messages delivered; lost: messages a server skipped for a lagging subscriber"
        );
    }
    for n in notes {
        let _ = writeln!(w, "- {n}");
    }
    for scenario in &o.scenarios {
        let (title, cols) = scenario_table(scenario);
        let _ = writeln!(w, "\n#### {scenario}: {title}\n");
        let mut header = vec!["server".to_string()];
        for c in &cols {
            header.push(c.header.to_string());
            if c.ratio.is_some() {
                header.push("vs best peer".to_string());
            }
            if let Some(other) = c.against {
                header.push(format!("vs {other}"));
            }
        }
        let _ = writeln!(w, "| {} |", header.join(" | "));
        let _ = writeln!(
            w,
            "|{}",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { " --- |" } else { " ---: |" })
                .collect::<String>()
        );
        let med_in = |scenario: &str, server: &'static str, key: &str| -> f64 {
            let v: Vec<f64> = results
                .get(&(scenario.to_string(), server))
                .map(|runs| runs.iter().filter_map(|r| r.get(key).copied()).collect())
                .unwrap_or_default();
            median(&v).unwrap_or(f64::NAN)
        };
        let med = |server: &'static str, key: &str| med_in(scenario, server, key);
        for s in servers.iter().filter(|s| runs_in(s, scenario)) {
            let mut row = vec![s.name.to_string()];
            let mut marks = String::new();
            if med(s.name, "client_cpu") > 0.9 {
                marks.push('†');
            }
            if med(s.name, "other_cpu") > o.max_other {
                marks.push('‡');
            }
            if med(s.name, "errors") > 0.0 {
                marks.push('!');
            }
            row[0].push_str(&marks);
            for c in &cols {
                let v = med(s.name, c.key) * c.scale;
                row.push(fmt_value(v));
                if let Some(better) = c.ratio {
                    let peers = servers
                        .iter()
                        .filter(|p| matches!(kind_in(p, scenario), Some(Kind::Peer(_))))
                        .map(|p| med(p.name, c.key) * c.scale)
                        .filter(|x| x.is_finite() && *x > 0.0);
                    let best = match better {
                        Better::High => peers.fold(f64::NAN, f64::max),
                        Better::Low => peers.fold(f64::NAN, f64::min),
                    };
                    row.push(if v.is_finite() && best.is_finite() {
                        format!("{:.2}x", v / best)
                    } else {
                        "–".into()
                    });
                }
                if let Some(other) = c.against {
                    let base = med_in(other, s.name, c.key) * c.scale;
                    row.push(if v.is_finite() && base.is_finite() && base > 0.0 {
                        format!("{:.2}x", v / base)
                    } else {
                        "–".into()
                    });
                }
            }
            let _ = writeln!(w, "| {} |", row.join(" | "));
        }
    }
    let _ = writeln!(
        w,
        "\nCPU columns are fractions of one core over the window (other: everything else on \
         the machine, steal time included). † the load generator's core was saturated \
         (compare server CPU per message instead); ‡ in the median, the rest of the machine \
         used more than {} of a core meanwhile (noisy, even after retries); ! some \
         connections failed. Ratios: the value over the best peer's (for throughput higher \
         is better, for time, CPU and memory lower is better).",
        o.max_other
    );
    if !failures.is_empty() {
        let _ = writeln!(w, "\nFailed runs:\n");
        for f in failures {
            let _ = writeln!(w, "- {f}");
        }
    }
    md
}

fn main() {
    let o = parse_args();
    let paths = Paths::find();
    if o.list {
        for s in SERVERS {
            let describe = |kind: Kind, peer_bin: &str| match kind {
                Kind::Peer(imp) => format!("{peer_bin} --impl {imp}"),
                Kind::Reference(imp) => {
                    format!("{peer_bin} --impl {imp} (reference, with --floor)")
                }
                Kind::Example {
                    package,
                    dir,
                    example,
                } if example_exists(&paths.root, dir, example) => {
                    format!("cargo run --release -p {package} --example {example} -- ADDR")
                }
                Kind::Example { dir, example, .. } => {
                    format!("not yet: no {dir}/examples/{example}.rs")
                }
            };
            let mut avail: Vec<String> = s
                .echo
                .map(|k| describe(k, "peer_echo"))
                .into_iter()
                .collect();
            if let Some(k) = s.broadcast {
                avail.push(format!("fan-out: {}", describe(k, "peer_broadcast")));
            }
            let avail = avail.join("; ");
            println!("{:<20} {avail}", s.name);
        }
        return;
    }
    let nofile = sys::raise_nofile_limit();
    let mut o = o;
    if o.scenarios.iter().any(|s| s == "idle" || s == "crowd")
        && (nofile as usize) < o.idle_conns + 100
    {
        let n = (nofile as usize).saturating_sub(200).max(100);
        eprintln!("compare: open-file limit {nofile}: idle scenario uses {n} connections");
        o.idle_conns = n;
    }
    if o.scenarios.iter().any(|s| s == "fanout-10k")
        && (nofile as usize) < o.fanout_10k_subscribers + 100
    {
        let n = (nofile as usize).saturating_sub(200).max(100);
        eprintln!("compare: open-file limit {nofile}: fanout-10k uses {n} subscribers");
        o.fanout_10k_subscribers = n;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if o.pin {
        let ok = Command::new("taskset")
            .args(["-c", &o.server_cpu.to_string(), "true"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok || cpus < 2 || o.server_cpu.max(o.client_cpu) >= cpus {
            eprintln!(
                "compare: cannot pin to CPUs {} and {}; running unpinned",
                o.server_cpu, o.client_cpu
            );
            o.pin = false;
        }
    }
    let (servers, notes) = prepare(&o, &paths);
    for n in &notes {
        eprintln!("note: {n}");
    }
    if servers.is_empty() {
        eprintln!("compare: no server to run");
        std::process::exit(1);
    }
    let results_dir = paths.target_dir().join("bench-results");
    let _ = std::fs::create_dir_all(&results_dir);
    let runs_log = results_dir.join("runs.txt");
    let mut runs_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&runs_log)
        .ok();

    let total = o.reps
        * o.scenarios
            .iter()
            .map(|scenario| servers.iter().filter(|s| runs_in(s, scenario)).count())
            .sum::<usize>();
    let per_run = o.warmup + o.duration + 1.0;
    eprintln!(
        "== {total} runs ({} scenarios x {} reps x up to {} servers), about {:.0} min",
        o.scenarios.len(),
        o.reps,
        servers.len(),
        total as f64 * per_run / 60.0 + 0.5
    );
    let mut results: BTreeMap<(String, &'static str), Vec<Result1>> = BTreeMap::new();
    let mut failures = Vec::new();
    let mut noise = Noise::default();
    let mut i = 0;
    for scenario in &o.scenarios {
        for rep in 1..=o.reps {
            for s in servers.iter().filter(|s| runs_in(s, scenario)) {
                i += 1;
                noise.runs += 1;
                let prefix = format!("[{i}/{total}] {scenario:<9} {:<18} rep {rep}", s.name);
                let measured = least_noisy(o.max_other, o.retries, RETRY_PAUSE, |attempt| {
                    let addr = format!("127.0.0.1:{}", free_port());
                    let log = results_dir.join(format!("{}.log", s.name));
                    let r =
                        start_server(&o, &paths, s, scenario, &addr, &log).and_then(|server| {
                            let r = run_loadgen(&o, &paths, scenario, &addr, server.child.id());
                            drop(server);
                            r
                        })?;
                    if let Some(f) = runs_file.as_mut() {
                        let kv: Vec<String> = r.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        let _ = writeln!(
                            f,
                            "{} {} {scenario} {} rep={rep} attempt={attempt} {}",
                            today(),
                            s.name,
                            addr,
                            kv.join(" ")
                        );
                    }
                    let noisy = other_cpu(&r) > o.max_other;
                    eprintln!(
                        "{prefix}{}: {}{}",
                        if attempt > 1 {
                            format!(" attempt {attempt}")
                        } else {
                            String::new()
                        },
                        progress_line(scenario, &r),
                        if noisy { " noisy" } else { "" }
                    );
                    Ok(r)
                });
                match measured {
                    Ok((r, attempts)) => {
                        noise.redone += usize::from(attempts > 1);
                        noise.still_noisy += usize::from(other_cpu(&r) > o.max_other);
                        results
                            .entry((scenario.clone(), s.name))
                            .or_default()
                            .push(r);
                    }
                    Err(e) => {
                        eprintln!("{prefix}: FAILED: {e}");
                        failures.push(format!("{scenario} / {} rep {rep}: {e}", s.name));
                    }
                }
            }
        }
    }
    let md = report(&o, &paths, &servers, &notes, &results, &noise, &failures);
    println!("{md}");
    let out = o
        .out
        .clone()
        .unwrap_or_else(|| results_dir.join("latest.md"));
    match std::fs::write(&out, &md) {
        Ok(()) => eprintln!(
            "report written to {} (every run: {})",
            out.display(),
            runs_log.display()
        ),
        Err(e) => eprintln!("compare: cannot write {}: {e}", out.display()),
    }
    if !failures.is_empty() {
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs whose `other_cpu` values are `others`, in order.
    fn scripted(others: &[f64]) -> impl FnMut(usize) -> Result<Result1, String> + '_ {
        move |attempt| {
            let other = others[attempt - 1];
            Ok(Result1::from([
                ("other_cpu".to_string(), other),
                ("attempt".to_string(), attempt as f64),
            ]))
        }
    }

    fn server(name: &str) -> &'static Server {
        SERVERS.iter().find(|s| s.name == name).expect(name)
    }

    #[test]
    fn the_fan_out_scenarios_run_the_broadcast_servers() {
        for scenario in ["fanout-1k", "fanout-10k"] {
            for name in [
                "tokio-tungstenite",
                "fastwebsockets",
                "tokio-websockets",
                "yawc",
                "sockeye-tokio",
                "tungstenite-batched",
            ] {
                assert!(runs_in(server(name), scenario), "{name} in {scenario}");
            }
            for name in ["sockeye-mio", "axum-tungstenite", "tcp-floor"] {
                assert!(!runs_in(server(name), scenario), "{name} in {scenario}");
            }
        }
        // The compressed one: the servers that compress.
        for (name, runs) in [
            ("sockeye-tokio", true),
            ("yawc", true),
            ("fastwebsockets", false),
            ("tungstenite-batched", false),
        ] {
            assert_eq!(runs_in(server(name), "fanout-1k-deflate"), runs, "{name}");
        }
        // A broadcast-only reference has no echo server.
        assert!(!runs_in(server("tungstenite-batched"), "small"));
        assert!(matches!(
            kind_in(server("sockeye-tokio"), "fanout-1k"),
            Some(Kind::Example {
                example: "broadcast_server",
                ..
            })
        ));
        assert!(ALL_SCENARIOS
            .iter()
            .all(|s| !scenario_table(s).1.is_empty()));
    }

    #[test]
    fn a_quiet_run_is_kept_at_once() {
        let (r, made) = least_noisy(0.25, 2, Duration::ZERO, scripted(&[0.1])).unwrap();
        assert_eq!((r["attempt"], made), (1.0, 1));
    }

    #[test]
    fn a_noisy_run_is_run_again_until_quiet() {
        let (r, made) = least_noisy(0.25, 2, Duration::ZERO, scripted(&[0.9, 0.2])).unwrap();
        assert_eq!((r["attempt"], made), (2.0, 2));
    }

    #[test]
    fn after_the_retries_the_least_noisy_run_is_kept() {
        let (r, made) = least_noisy(0.25, 2, Duration::ZERO, scripted(&[0.6, 0.4, 0.8])).unwrap();
        assert_eq!((r["attempt"], made), (2.0, 3));
        let (r, made) = least_noisy(0.25, 0, Duration::ZERO, scripted(&[0.6])).unwrap();
        assert_eq!((r["attempt"], made), (1.0, 1));
    }

    #[test]
    fn a_run_without_other_cpu_is_quiet() {
        let (_, made) = least_noisy(0.25, 2, Duration::ZERO, |_| Ok(Result1::new())).unwrap();
        assert_eq!(made, 1);
    }

    #[test]
    fn a_failed_run_ends_the_attempts() {
        let mut calls = 0;
        let result = least_noisy(0.25, 2, Duration::ZERO, |attempt| {
            calls += 1;
            if attempt == 1 {
                Ok(Result1::from([("other_cpu".to_string(), 0.9)]))
            } else {
                Err("server did not start".to_string())
            }
        });
        assert_eq!(result, Err("server did not start".to_string()));
        assert_eq!(calls, 2);
    }
}
