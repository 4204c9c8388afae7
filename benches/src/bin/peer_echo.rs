//! Echo servers built on the peer libraries, for the end-to-end comparison.
//!
//! usage: peer_echo --impl tungstenite|fastwebsockets|tokio-websockets [ADDR]
//!
//! ADDR defaults to 127.0.0.1:9001. Each server runs on a tokio current_thread
//! runtime (one core, like the Sockeye echo servers), uses its library's
//! default settings, echoes every text and binary message back unchanged,
//! answers Close, and prints `listening on ADDR` once it accepts connections.
//! Each loop is the one the library's own echo example uses.

use std::io;
use std::net::SocketAddr;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug)]
enum Impl {
    Tungstenite,
    Fastwebsockets,
    TokioWebsockets,
}

const USAGE: &str = "usage: peer_echo --impl tungstenite|fastwebsockets|tokio-websockets [ADDR]";

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
            };
            if let Err(e) = r {
                if std::env::var_os("PEER_ECHO_VERBOSE").is_some() {
                    eprintln!("peer_echo: connection: {e}");
                }
            }
        });
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

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

async fn fastwebsockets_echo(mut stream: TcpStream) -> Result<(), BoxError> {
    if !fastwebsockets_upgrade(&mut stream).await? {
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

/// The HTTP upgrade fastwebsockets leaves to the application (or to hyper, with
/// its `upgrade` feature): the same exchange without hyper. The request is read
/// into a heap buffer freed before the echo loop starts, so the handshake adds
/// nothing to the memory an idle connection keeps. `Ok(false)`: the peer left.
async fn fastwebsockets_upgrade(stream: &mut TcpStream) -> Result<bool, BoxError> {
    let mut head = Vec::with_capacity(1024);
    loop {
        if stream.read_buf(&mut head).await? == 0 {
            return Ok(false);
        }
        if let Some(end) = sockeye_benches::ws::head_end(&head) {
            if end != head.len() {
                return Err("bytes after the request head".into());
            }
            break;
        }
        if head.len() > 8192 {
            return Err("request head too large".into());
        }
    }
    let response = sockeye_benches::ws::server_response(&head)?;
    stream.write_all(&response).await?;
    Ok(true)
}
