//! The fan-out scenario against Sockeye's broadcast server (the tokio example, compiled
//! into this test and served from a thread of it): every subscriber of a short
//! `loadgen --scenario fanout` run gets messages, plain and compressed; and the
//! example's slow-consumer policies do what they say to a subscriber that stops reading.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sockeye_tokio::{connect_url, CloseCode, Message, Settings, WebSocket};
use tokio::net::TcpStream;
use tokio::time::timeout;

#[allow(dead_code)] // its `main`
#[path = "../../adapters/tokio/examples/broadcast_server.rs"]
mod broadcast_server;

use broadcast_server::{Options, SlowConsumer};

/// The example's server on a thread of its own (its own current-thread runtime, as in
/// the example), stopped and joined when dropped.
struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(deflate: bool, slow_consumer: SlowConsumer) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let options = Options {
            addr: addr.to_string(),
            deflate,
            slow_consumer,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::select! {
                    served = broadcast_server::serve(listener, options) => {
                        panic!("the server stopped: {served:?}")
                    }
                    _ = stopped => {}
                }
            });
            // Dropping the runtime ends every connection's task.
        });
        Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A `loadgen --scenario fanout` run's RESULT fields (the numeric ones).
fn fanout_run(addr: SocketAddr, extra: &[&str]) -> std::collections::BTreeMap<String, f64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--addr", &addr.to_string(), "--scenario", "fanout"])
        .args(["--server-pid", &std::process::id().to_string()])
        .args(["--subscribers", "20", "--warmup", "0.2", "--duration", "1"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start loadgen");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("loadgen fanout hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("loadgen output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen fanout failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line in {stdout:?}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k.to_string(), v)))
        .collect()
}

#[test]
fn every_subscriber_receives_the_broadcasts() {
    let server = Server::start(false, SlowConsumer::Drop);
    let r = fanout_run(server.addr, &[]);
    assert_eq!(r["subscribers"], 20.0, "{r:?}");
    assert_eq!(r["errors"], 0.0, "{r:?}");
    assert_eq!(r["starved"], 0.0, "a subscriber received nothing: {r:?}");
    assert!(r["min_sub_msgs"] > 0.0, "{r:?}");
    assert!(r["msg_per_s"] > 0.0 && r["p50_us"] > 0.0, "{r:?}");
    // 32 broadcasts outstanding per subscriber never fill a send queue: nothing dropped.
    assert_eq!(r["lost"], 0.0, "{r:?}");
    assert!(r["rss_kib"] > 0.0, "{r:?}");
}

#[test]
fn every_subscriber_receives_the_compressed_broadcasts() {
    let server = Server::start(true, SlowConsumer::Drop);
    let r = fanout_run(server.addr, &["--deflate"]);
    assert_eq!(r["subscribers"], 20.0, "{r:?}");
    assert_eq!(r["errors"], 0.0, "{r:?}");
    assert_eq!(r["starved"], 0.0, "a subscriber received nothing: {r:?}");
    assert_eq!(r["lost"], 0.0, "{r:?}");
    // Every delivery compressed, and smaller than the message.
    assert_eq!(r["compressed_share"], 1.0, "{r:?}");
    assert!(r["wire_ratio"] > 1.2, "{r:?}");
}

/// Messages the publisher floods a subscriber with: more than the kernel's socket
/// buffers and the server's send queue hold together.
const FLOOD: usize = 6_000;
const FLOOD_SIZE: usize = 4096;

fn numbered(i: usize) -> String {
    let mut text = format!("{i:08}");
    text.extend(std::iter::repeat_n('x', FLOOD_SIZE - text.len()));
    text
}

/// What a subscriber that stopped reading during a flood received afterwards: the
/// numbers of the flood messages that reached it (in order), the Close it got if any,
/// and whether it still receives broadcasts after the flood.
struct AfterFlood {
    received: Vec<usize>,
    close: Option<CloseCode>,
    still_subscribed: bool,
}

async fn ws(addr: SocketAddr) -> WebSocket<TcpStream> {
    connect_url(&format!("ws://{addr}/"), Settings::default())
        .await
        .expect("connect")
}

async fn flood_a_subscriber_that_does_not_read(addr: SocketAddr) -> AfterFlood {
    let mut subscriber = ws(addr).await;
    let mut publisher = ws(addr).await;
    // Both are registered once a probe from the publisher reaches the subscriber.
    let mut registered = false;
    for _ in 0..50 {
        publisher.send(Message::text("probe")).await.expect("probe");
        if let Ok(Some(Message::Text(_))) =
            timeout(Duration::from_millis(100), subscriber.recv()).await
        {
            registered = true;
            break;
        }
    }
    assert!(registered, "the subscriber never received a probe");
    // Probes still in flight arrive before the flood; they are not numbered.
    while let Ok(Some(_)) = timeout(Duration::from_millis(200), subscriber.recv()).await {}

    // The subscriber does not read while the publisher floods it.
    for i in 0..FLOOD {
        publisher
            .feed(Message::text(numbered(i)))
            .await
            .expect("feed");
    }
    publisher.flush().await.expect("flush");

    // Then it reads what reached it, until the server has nothing more for it (or
    // closed it): a second without a message.
    let mut after = AfterFlood {
        received: Vec::new(),
        close: None,
        still_subscribed: false,
    };
    for _ in 0..FLOOD + 10 {
        match timeout(Duration::from_secs(1), subscriber.recv()).await {
            Ok(Some(Message::Text(text))) => {
                after
                    .received
                    .push(text[..8].parse().expect("a numbered message"));
            }
            Ok(Some(Message::Close(reason))) => {
                after.close = reason.map(|r| r.code);
                break;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
    if after.close.is_none() {
        // Its queue is empty now: a new broadcast reaches it if it is still subscribed.
        publisher.send(Message::text("after")).await.expect("after");
        after.still_subscribed = matches!(
            timeout(Duration::from_secs(5), subscriber.recv()).await,
            Ok(Some(Message::Text(text))) if text == "after"
        );
    }
    after
}

#[tokio::test]
async fn a_slow_subscriber_misses_messages_and_stays_subscribed_by_default() {
    let server = Server::start(false, SlowConsumer::Drop);
    let after = flood_a_subscriber_that_does_not_read(server.addr).await;
    assert!(after.close.is_none(), "closed with {:?}", after.close);
    assert!(
        !after.received.is_empty() && after.received.len() < FLOOD,
        "received {} of {FLOOD}",
        after.received.len()
    );
    assert!(
        after.received.windows(2).all(|w| w[0] < w[1]),
        "out of order"
    );
    assert!(after.still_subscribed, "no broadcast after the flood");
}

#[tokio::test]
async fn a_slow_subscriber_is_closed_with_the_policys_code() {
    for code in [CloseCode::POLICY, CloseCode::TRY_AGAIN_LATER] {
        let server = Server::start(false, SlowConsumer::Close(code));
        let after = flood_a_subscriber_that_does_not_read(server.addr).await;
        assert_eq!(after.close, Some(code));
        // What was queued before the queue filled still arrived, in order, then the Close.
        assert!(
            !after.received.is_empty() && after.received.len() < FLOOD,
            "received {} of {FLOOD}",
            after.received.len()
        );
        assert!(
            after.received.windows(2).all(|w| w[0] < w[1]),
            "out of order"
        );
    }
}

/// A `peer_broadcast` server, killed (by its PID) when dropped.
struct Peer(std::process::Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn every_broadcast_peer_serves_the_fan_out() {
    use std::io::BufRead as _;
    for imp in [
        "tungstenite",
        "fastwebsockets",
        "tokio-websockets",
        "yawc",
        "tungstenite-batched",
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_peer_broadcast"))
            .args(["--impl", imp, "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start peer_broadcast");
        let stdout = child.stdout.take().expect("stdout");
        let peer = Peer(child);
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read peer_broadcast stdout");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{imp}: unexpected first line {line:?}"));
        // The later --server-pid wins: the peer's CPU and memory, not this test's.
        let pid = peer.0.id().to_string();
        let r = fanout_run(addr, &["--server-pid", &pid]);
        assert_eq!(r["errors"], 0.0, "{imp}: {r:?}");
        assert_eq!(r["starved"], 0.0, "{imp}: {r:?}");
        assert!(r["msg_per_s"] > 0.0, "{imp}: {r:?}");
        if imp == "yawc" {
            let r = fanout_run(addr, &["--deflate", "--server-pid", &pid]);
            assert_eq!(r["errors"], 0.0, "{imp} compressed: {r:?}");
            assert_eq!(r["compressed_share"], 1.0, "{imp} compressed: {r:?}");
        }
    }
}
