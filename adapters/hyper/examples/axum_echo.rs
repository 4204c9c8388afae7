//! An axum echo server on Sockeye: every text and binary message comes back, over
//! HTTP/1.1 upgrades and HTTP/2 extended CONNECT (h2c) alike, with permessage-deflate
//! accepted. `/` echoes; any other path is axum's 404. Autobahn|Testsuite and the
//! benchmarks drive it (`scripts/autobahn.sh axum`, `benches/compare.sh`).
//!
//!     cargo run --release -p sockeye-hyper --features axum --example axum_echo -- 127.0.0.1:9001
//!
//! It prints `listening on ADDR` once bound. `RUST_LOG=sockeye=debug` logs each
//! handshake and how each connection ended (`tracing`).

use axum::routing::any;
use axum::serve::ListenerExt as _;
use axum::Router;
use sockeye_hyper::axum::WebSocketUpgrade;
use sockeye_hyper::{DeflateConfig, WebSocket};

fn main() -> std::io::Result<()> {
    // `RUST_LOG` chooses what is logged (nothing by default).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    // One thread, as the other adapters' echo servers, so that benchmarks compare
    // like with like.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!("listening on {}", listener.local_addr()?);
        let app = Router::new().route("/", any(upgrade));
        // axum::serve speaks HTTP/1.1 and h2c, and announces extended CONNECT (RFC 8441).
        // No Nagle delay, as the other echo servers.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await
    })
}

async fn upgrade(ws: WebSocketUpgrade) -> axum::response::Response {
    ws.compression(DeflateConfig::DEFAULT).on_upgrade(echo)
}

async fn echo(mut ws: WebSocket) {
    loop {
        let message = match ws.recv().await {
            Some(message) if message.is_data() => message,
            Some(_) => continue,
            None => break,
        };
        // `feed` queues; the next `recv` writes, so a burst is echoed in one write.
        if ws.feed(message).await.is_err() {
            break;
        }
    }
    while ws.recv().await.is_some() {}
}
