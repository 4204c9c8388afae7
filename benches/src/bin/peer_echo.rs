//! Echo servers built on the peer libraries, for the end-to-end comparison.
//!
//! usage: peer_echo --impl tungstenite|fastwebsockets|tokio-websockets|yawc|axum|tcp-floor [ADDR]
//!
//! ADDR defaults to 127.0.0.1:9001. Each server runs on a tokio current_thread
//! runtime (one core, like the Sockeye echo servers), uses its library's
//! default settings, echoes every text and binary message back unchanged,
//! answers Close, and prints `listening on ADDR` once it accepts connections.
//! Each loop is the one the library's own echo example uses.
//!
//! `yawc` accepts permessage-deflate at the settings of Sockeye's default
//! `DeflateConfig` (level 1, no context takeover either way, 15-bit windows,
//! messages under 256 B sent as they are), validates text as UTF-8 and takes
//! messages up to 64 MiB like the Sockeye servers (its defaults: no validation,
//! 1 MiB); its upgrade runs on hyper, as in its own examples. `axum` is axum's
//! built-in `WebSocketUpgrade` (tokio-tungstenite inside, no compression) behind
//! a `Router` with one `any("/")` route.
//!
//! `tcp-floor` is not a WebSocket library but the reference below them all: it
//! moves the same bytes through the same sockets and does no WebSocket work
//! ([`sockeye_benches::floor`]), so its CPU per message is the kernel's share.

use std::io::{self, IoSlice};
use std::net::SocketAddr;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use sockeye_benches::{floor, upgrade};

#[derive(Clone, Copy, Debug)]
enum Impl {
    Tungstenite,
    Fastwebsockets,
    TokioWebsockets,
    Yawc,
    Axum,
    TcpFloor,
}

const USAGE: &str =
    "usage: peer_echo --impl tungstenite|fastwebsockets|tokio-websockets|yawc|axum|tcp-floor [ADDR]";

fn main() {
    let mut imp = None;
    let mut addr = "127.0.0.1:9001".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--impl" => {
                imp = match args.next().as_deref() {
                    Some("tungstenite" | "tokio-tungstenite") => Some(Impl::Tungstenite),
                    Some("fastwebsockets") => Some(Impl::Fastwebsockets),
                    Some("tokio-websockets") => Some(Impl::TokioWebsockets),
                    Some("yawc") => Some(Impl::Yawc),
                    Some("axum") => Some(Impl::Axum),
                    Some("tcp-floor") => Some(Impl::TcpFloor),
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
            eprintln!("peer_echo: bad address {addr:?}: {e}");
            std::process::exit(2);
        }
    };
    sockeye_benches::sys::raise_nofile_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(serve(imp, addr)) {
        eprintln!("peer_echo: {e}");
        std::process::exit(1);
    }
}

async fn serve(imp: Impl, addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    if let Impl::Axum = imp {
        return axum_serve(listener).await;
    }
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, for example: keep serving the others.
                eprintln!("peer_echo: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let r = match imp {
                Impl::Tungstenite => tungstenite_echo(stream).await,
                Impl::Fastwebsockets => fastwebsockets_echo(stream).await,
                Impl::TokioWebsockets => tokio_websockets_echo(stream).await,
                Impl::Yawc => yawc_serve(stream).await,
                Impl::Axum => unreachable!("served by axum::serve"),
                Impl::TcpFloor => floor_echo(stream).await,
            };
            if let Err(e) = r {
                if std::env::var_os("PEER_ECHO_VERBOSE").is_some() {
                    eprintln!("peer_echo: connection: {e}");
                }
            }
        });
    }
}

use sockeye_benches::upgrade::BoxError;

async fn tungstenite_echo(stream: TcpStream) -> Result<(), BoxError> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

async fn tokio_websockets_echo(stream: TcpStream) -> Result<(), BoxError> {
    let (_request, mut ws) = tokio_websockets::ServerBuilder::new()
        .accept(stream)
        .await?;
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.is_text() || msg.is_binary() {
            ws.send(msg).await?;
        }
    }
    Ok(())
}

/// yawc's options: compression at the settings of Sockeye's default `DeflateConfig`.
fn yawc_options() -> yawc::Options {
    yawc::Options::default()
        .with_low_latency_compression()
        .server_no_context_takeover()
        .client_no_context_takeover()
        .with_compression_threshold(256)
        .with_utf8()
        .with_no_delay()
        .with_limits(64 << 20, 128 << 20)
}

/// One HTTP/1.1 connection on hyper, upgraded by yawc (which negotiates
/// permessage-deflate itself), then yawc's echo loop.
async fn yawc_serve(stream: TcpStream) -> Result<(), BoxError> {
    let service = hyper::service::service_fn(|mut request| async move {
        let (response, upgrade) =
            yawc::WebSocket::upgrade_with_options(&mut request, yawc_options())?;
        tokio::spawn(async move {
            if let Err(e) = yawc_echo(upgrade).await {
                if std::env::var_os("PEER_ECHO_VERBOSE").is_some() {
                    eprintln!("peer_echo: yawc: {e}");
                }
            }
        });
        Ok::<_, yawc::WebSocketError>(response)
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .with_upgrades()
        .await?;
    Ok(())
}

async fn yawc_echo(upgrade: yawc::UpgradeFut) -> Result<(), BoxError> {
    let mut ws = upgrade.await?;
    while let Some(frame) = ws.next().await {
        match frame.opcode() {
            yawc::OpCode::Text | yawc::OpCode::Binary => ws.send(frame).await?,
            _ => {}
        }
    }
    Ok(())
}

/// axum's `WebSocketUpgrade` behind a `Router` with one route, as an axum app
/// serves WebSockets.
async fn axum_serve(listener: TcpListener) -> io::Result<()> {
    use axum::extract::ws::{Message, WebSocketUpgrade};
    use axum::serve::ListenerExt as _;
    async fn upgrade(ws: WebSocketUpgrade) -> axum::response::Response {
        ws.max_message_size(64 << 20)
            .on_upgrade(|mut socket| async move {
                // A Close is answered by tungstenite on the next `recv`, which then
                // ends the stream: keep receiving until it does.
                while let Some(Ok(message)) = socket.recv().await {
                    if let Message::Text(_) | Message::Binary(_) = message {
                        if socket.send(message).await.is_err() {
                            break;
                        }
                    }
                }
            })
    }
    let app = axum::Router::new().route("/", axum::routing::any(upgrade));
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}

async fn fastwebsockets_echo(mut stream: TcpStream) -> Result<(), BoxError> {
    if !upgrade::plain_upgrade(&mut stream).await? {
        return Ok(());
    }
    let ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
    let mut ws = fastwebsockets::FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            fastwebsockets::OpCode::Close => break,
            fastwebsockets::OpCode::Text | fastwebsockets::OpCode::Binary => {
                ws.write_frame(frame).await?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The reference echo ([`sockeye_benches::floor`]): reads as much as the socket
/// holds, echoes every whole frame with one `writev`, keeps a partial frame for
/// the next read. Sequential like the peers' loops: read, write, read.
async fn floor_echo(mut stream: TcpStream) -> Result<(), BoxError> {
    let Some(deflate) = upgrade::upgrade(&mut stream, true).await? else {
        return Ok(());
    };
    // With compression the load generator inflates the first echo to check it: that
    // one goes back unmasked; the rest as they came, as without.
    let mut unmask_data = deflate;
    /// The longest header: what must fit to learn a frame's length.
    const MAX_HEADER: usize = 14;
    // Small until reads fill it: 256 KiB for each connection (zeroed, past the
    // allocator's mmap threshold) made every handshake cost a map and an unmap.
    let mut buf = vec![0u8; 4096];
    let (mut start, mut filled) = (0, 0);
    let mut frames = Vec::new();
    loop {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let grow = filled == buf.len() && buf.len() < FLOOR_READ_SIZE;
        frames.clear();
        let scan = floor::rewrite_frames(&mut buf, start, filled, &mut frames, &mut unmask_data)?;
        write_ranges(&mut stream, &buf, &frames).await?;
        if scan.closed {
            stream.shutdown().await?;
            return Ok(());
        }
        if grow {
            buf.resize(buf.len() * 2, 0);
        }
        start = scan.next;
        if start == filled {
            (start, filled) = (0, 0);
            continue;
        }
        let needed = scan.pending_frame_len.unwrap_or(MAX_HEADER);
        if start + needed > buf.len() {
            buf.copy_within(start..filled, 0);
            (start, filled) = (0, filled - start);
            if needed > buf.len() {
                buf.resize(needed, 0);
            }
        }
    }
}

/// What the floor reads at once at most, and its buffer's size once reads filled
/// the smaller ones, until a larger frame comes.
const FLOOR_READ_SIZE: usize = 256 * 1024;

/// Writes `buf[range]` for each range, many per `writev`.
async fn write_ranges(
    stream: &mut TcpStream,
    buf: &[u8],
    ranges: &[std::ops::Range<usize>],
) -> io::Result<()> {
    const BATCH: usize = 64;
    for batch in ranges.chunks(BATCH) {
        let mut slices = [IoSlice::new(&[]); BATCH];
        for (slice, range) in slices.iter_mut().zip(batch) {
            *slice = IoSlice::new(&buf[range.clone()]);
        }
        let mut slices = &mut slices[..batch.len()];
        while !slices.is_empty() {
            let n = stream.write_vectored(slices).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            IoSlice::advance_slices(&mut slices, n);
        }
    }
    Ok(())
}
