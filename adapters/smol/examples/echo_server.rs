//! An echo server: every text and binary message comes back unchanged.
//!
//! ```text
//! cargo run --release -p sockeye-smol --example echo_server -- [ADDR]
//! ```
//!
//! ADDR defaults to `127.0.0.1:9001`; the server prints `listening on ADDR` and serves
//! until killed. Every connection gets the full protocol: bad requests are answered
//! with 400 / 426 / 431, the handshake times out after 10 s, messages are limited to
//! 64 MiB, pings are answered, and the close handshake is completed (or times out after
//! 30 s). This is the server tested by Autobahn|Testsuite (`scripts/autobahn.sh smol`).
//!
//! Runtime: smol's global executor. `RUST_LOG=sockeye=debug` logs each handshake and
//! how each connection ended (`tracing`).

use std::future::Future;
use std::net::SocketAddr;

use smol::net::{TcpListener, TcpStream};
use sockeye_smol::{accept, DeflateConfig, Settings};

fn main() -> std::io::Result<()> {
    // `RUST_LOG` chooses what is logged (nothing by default).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    // One thread, like tokio's current_thread runtime: connections run on a local
    // executor that `block_on` drives together with the reactor, so no wakeup crosses
    // threads (the global executor would run them on a thread of its own).
    let executor = smol::LocalExecutor::new();
    smol::block_on(executor.run(serve(&executor, addr)))
}

async fn serve(executor: &smol::LocalExecutor<'_>, addr: String) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr.as_str()).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors and the like: keep serving the others.
            Err(error) => {
                eprintln!("accept: {error}");
                smol::Timer::after(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        executor.spawn(echo(tcp, peer)).detach();
    }
}

/// One connection's task. A function that starts the handshake and returns the rest as
/// an `async` block, rather than an `async fn`: the task then keeps neither the stream
/// (moved into the handshake) nor a copy of the arguments, so an idle connection's task
/// is little more than its `WebSocket`.
fn echo(tcp: TcpStream, peer: SocketAddr) -> impl Future<Output = ()> {
    let _ = tcp.set_nodelay(true);
    let handshake = accept(
        tcp,
        Settings::default().with_compression(DeflateConfig::DEFAULT),
    );
    async move {
        let mut ws = match handshake.await {
            Ok(ws) => ws,
            Err(error) => {
                tracing::debug!(target: "sockeye", %peer, %error, "handshake failed");
                return;
            }
        };
        loop {
            // (A `match` rather than `while let` and `if message.is_data()`, which would
            // keep the message twice more in the task while `feed` waits.)
            let message = match ws.recv().await {
                Some(message) if message.is_data() => message,
                Some(_) => continue,
                None => break,
            };
            // `feed` queues the echo; the next `recv` writes it (coalescing echoes of
            // messages that arrived together) before it waits for more input.
            if ws.feed(message).await.is_err() {
                break;
            }
        }
        // A failed send ended the connection; `recv` then finishes it.
        while ws.recv().await.is_some() {}
        if let Some(outcome) = ws.outcome() {
            tracing::debug!(target: "sockeye", %peer, %outcome, "closed");
        }
    }
}
