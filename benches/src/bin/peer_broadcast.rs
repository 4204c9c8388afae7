//! Broadcast (fan-out) servers built on the peer libraries, for the fan-out scenarios.
//!
//! usage: peer_broadcast --impl IMPL [ADDR]
//!
//! IMPL: tungstenite, fastwebsockets, tokio-websockets, yawc, or tungstenite-batched
//! (a reference, not the usual way: see below).
//!
//! ADDR defaults to 127.0.0.1:9003. The protocol of every broadcast server in the
//! comparison (Sockeye's is `adapters/tokio/examples/broadcast_server.rs`): every
//! WebSocket connection is a subscriber, and a text message received from any
//! connection goes to every other connection (not back to its sender). Each server
//! runs on a tokio current_thread runtime (one core, like the echo servers), sets
//! `TCP_NODELAY`, and prints `listening on ADDR` once it accepts connections.
//!
//! Each is written the way the library's users write a broadcast: one
//! `tokio::sync::broadcast` channel (capacity 1,024) carrying `(sender id, message)`,
//! and per connection a task that reads the connection (publishing its text
//! messages) and forwards the channel to it with the library's `send`, one message
//! at a time. A receiver that lags more than the capacity behind skips the messages
//! it missed (`RecvError::Lagged`), as broadcast users do.
//!
//! - tokio-tungstenite and tokio-websockets: one task per connection, `select!` over
//!   the connection's `next()` (a `Stream`, cancel-safe) and the channel's `recv()`.
//! - fastwebsockets: its `read_frame` is not cancel-safe (it consumes a header before
//!   awaiting the payload), so its users split the connection (`split`, the crate's
//!   `unstable-split` feature, as in its `echo_server_split` example): one task reads,
//!   another forwards the channel with `write_frame`. Its upgrade is the hand-written
//!   one of `peer_echo` (the library leaves it to hyper or the caller).
//! - yawc (the permessage-deflate peer): like tokio-tungstenite, its upgrade on hyper as
//!   in `peer_echo`, at the compression settings of Sockeye's `broadcast_server
//!   --deflate` (level 1, no context takeover either way, 15-bit windows, messages from
//!   64 bytes). Each connection compresses each message it sends itself: yawc has no
//!   way to share one compressed frame between connections.
//!
//! `tungstenite-batched` is a reference rather than the usual way: tokio-tungstenite
//! whose connection task, woken by the channel, also takes every message already
//! waiting (`try_recv`), queues each (`feed`) and flushes once, so a burst costs one
//! write per subscriber as in Sockeye's server. It shows how much of the gap is
//! batching the writes (which any library's users could do) and how much is the rest.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt as _, StreamExt as _};
use sockeye_benches::upgrade::{plain_upgrade, BoxError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Messages the channel keeps for a receiver that is behind.
const CHANNEL_CAPACITY: usize = 1024;

const USAGE: &str = "usage: peer_broadcast --impl tungstenite|fastwebsockets|tokio-websockets|\
                     yawc|tungstenite-batched [ADDR]";

#[derive(Clone, Copy, Debug)]
enum Impl {
    Tungstenite,
    Fastwebsockets,
    TokioWebsockets,
    Yawc,
    TungsteniteBatched,
}

fn main() {
    let mut imp = None;
    let mut addr = "127.0.0.1:9003".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--impl" => {
                imp = match args.next().as_deref() {
                    Some("tungstenite" | "tokio-tungstenite") => Some(Impl::Tungstenite),
                    Some("fastwebsockets") => Some(Impl::Fastwebsockets),
                    Some("tokio-websockets") => Some(Impl::TokioWebsockets),
                    Some("yawc") => Some(Impl::Yawc),
                    Some("tungstenite-batched") => Some(Impl::TungsteniteBatched),
                    _ => None,
                }
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            _ => addr = a,
        }
    }
    let Some(imp) = imp else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    let addr: SocketAddr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("peer_broadcast: bad address {addr:?}: {e}");
            std::process::exit(2);
        }
    };
    sockeye_benches::sys::raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let served = rt.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        println!("listening on {}", listener.local_addr()?);
        match imp {
            Impl::Tungstenite => {
                let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
                accept_loop(listener, move |s, id| tungstenite_conn(s, id, tx.clone())).await
            }
            Impl::TokioWebsockets => {
                let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
                accept_loop(listener, move |s, id| {
                    tokio_websockets_conn(s, id, tx.clone())
                })
                .await
            }
            Impl::Fastwebsockets => {
                let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
                accept_loop(listener, move |s, id| {
                    fastwebsockets_conn(s, id, tx.clone())
                })
                .await
            }
            Impl::TungsteniteBatched => {
                let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
                accept_loop(listener, move |s, id| {
                    tungstenite_batched_conn(s, id, tx.clone())
                })
                .await
            }
            Impl::Yawc => {
                let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
                accept_loop(listener, move |s, id| yawc_conn(s, id, tx.clone())).await
            }
        }
    });
    if let Err(e) = served {
        eprintln!("peer_broadcast: {e}");
        std::process::exit(1);
    }
}

/// Accepts connections forever, each served by `serve(stream, id)` in a task of its own.
async fn accept_loop<F, Fut>(listener: TcpListener, mut serve: F) -> std::io::Result<()>
where
    F: FnMut(TcpStream, u64) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    let mut next_id = 0u64;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, for example: keep serving the others.
                eprintln!("peer_broadcast: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let connection = serve(stream, next_id);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                if std::env::var_os("PEER_ECHO_VERBOSE").is_some() {
                    eprintln!("peer_broadcast: connection: {e}");
                }
            }
        });
    }
}

type Hub<T> = broadcast::Sender<(u64, T)>;

async fn tungstenite_conn(
    stream: TcpStream,
    id: u64,
    hub: Hub<tokio_tungstenite::tungstenite::Message>,
) -> Result<(), BoxError> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    let mut feed = hub.subscribe();
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(message) => {
                    let message = message?;
                    if message.is_text() {
                        let _ = hub.send((id, message));
                    }
                }
                None => return Ok(()),
            },
            outgoing = feed.recv() => match outgoing {
                Ok((from, message)) if from != id => ws.send(message).await?,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

async fn tokio_websockets_conn(
    stream: TcpStream,
    id: u64,
    hub: Hub<tokio_websockets::Message>,
) -> Result<(), BoxError> {
    let (_request, mut ws) = tokio_websockets::ServerBuilder::new()
        .accept(stream)
        .await?;
    let mut feed = hub.subscribe();
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(message) => {
                    let message = message?;
                    if message.is_text() {
                        let _ = hub.send((id, message));
                    }
                }
                None => return Ok(()),
            },
            outgoing = feed.recv() => match outgoing {
                Ok((from, message)) if from != id => ws.send(message).await?,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

async fn fastwebsockets_conn(
    mut stream: TcpStream,
    id: u64,
    hub: Hub<Arc<[u8]>>,
) -> Result<(), BoxError> {
    use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, Role, WebSocket};
    if !plain_upgrade(&mut stream).await? {
        return Ok(());
    }
    let ws = WebSocket::after_handshake(stream, Role::Server);
    let (read, mut write) = ws.split(tokio::io::split);
    let mut read = FragmentCollectorRead::new(read);
    let mut feed = hub.subscribe();
    let writer = tokio::spawn(async move {
        loop {
            match feed.recv().await {
                Ok((from, text)) if from != id => {
                    if write
                        .write_frame(Frame::text(Payload::Borrowed(&text)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
        }
    });
    // The reader's obligated replies (Pong, the Close echo) would go through the write
    // half, which the writer task owns; the load generator sends neither Pings nor a
    // Close, so they are dropped here, as in the crate's own split example.
    let mut no_replies = |_: Frame<'_>| async { Ok::<(), BoxError>(()) };
    let result = loop {
        match read.read_frame(&mut no_replies).await {
            Ok(frame) => match frame.opcode {
                OpCode::Close => break Ok(()),
                OpCode::Text => {
                    let text: Arc<[u8]> = Arc::from(&frame.payload[..]);
                    let _ = hub.send((id, text));
                }
                _ => {}
            },
            Err(e) => break Err(e.into()),
        }
    };
    writer.abort();
    result
}

/// The compression of Sockeye's `broadcast_server --deflate`, and `peer_echo`'s other
/// yawc settings.
fn yawc_options() -> yawc::Options {
    yawc::Options::default()
        .with_low_latency_compression()
        .server_no_context_takeover()
        .client_no_context_takeover()
        .with_compression_threshold(64)
        .with_utf8()
        .with_no_delay()
        .with_limits(64 << 20, 128 << 20)
}

/// One HTTP/1.1 connection on hyper, upgraded by yawc, then the connection's loop.
async fn yawc_conn(stream: TcpStream, id: u64, hub: Hub<bytes::Bytes>) -> Result<(), BoxError> {
    let service = hyper::service::service_fn(move |mut request| {
        let hub = hub.clone();
        async move {
            let (response, upgrade) =
                yawc::WebSocket::upgrade_with_options(&mut request, yawc_options())?;
            tokio::spawn(async move {
                if let Err(e) = yawc_loop(upgrade, id, hub).await {
                    if std::env::var_os("PEER_ECHO_VERBOSE").is_some() {
                        eprintln!("peer_broadcast: yawc: {e}");
                    }
                }
            });
            Ok::<_, yawc::WebSocketError>(response)
        }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await?;
    Ok(())
}

async fn yawc_loop(
    upgrade: yawc::UpgradeFut,
    id: u64,
    hub: Hub<bytes::Bytes>,
) -> Result<(), BoxError> {
    let mut ws = upgrade.await?;
    let mut feed = hub.subscribe();
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(frame) => {
                    if frame.opcode() == yawc::OpCode::Text {
                        let _ = hub.send((id, frame.into_payload()));
                    }
                }
                None => return Ok(()),
            },
            outgoing = feed.recv() => match outgoing {
                Ok((from, text)) if from != id => ws.send(yawc::Frame::text(text)).await?,
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

/// tokio-tungstenite, one flush per burst (the `tungstenite-batched` reference).
async fn tungstenite_batched_conn(
    stream: TcpStream,
    id: u64,
    hub: Hub<tokio_tungstenite::tungstenite::Message>,
) -> Result<(), BoxError> {
    use tokio::sync::broadcast::error::TryRecvError;
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    let mut feed = hub.subscribe();
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(message) => {
                    let message = message?;
                    if message.is_text() {
                        let _ = hub.send((id, message));
                    }
                }
                None => return Ok(()),
            },
            outgoing = feed.recv() => {
                let mut next = outgoing;
                loop {
                    match next {
                        Ok((from, message)) if from != id => ws.feed(message).await?,
                        Ok(_) | Err(RecvError::Lagged(_)) => {}
                        Err(RecvError::Closed) => return Ok(()),
                    }
                    next = match feed.try_recv() {
                        Ok(x) => Ok(x),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                        Err(TryRecvError::Closed) => return Ok(()),
                    };
                }
                ws.flush().await?;
            }
        }
    }
}
