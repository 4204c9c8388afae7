//! The reconnecting client over loopback against a fake server: restarts, a silent
//! server, fatal rejections and closes, the attempt limit, offline sends, the on-connect
//! hook, request extras and a connector (the scenarios are in `reconnect/scenarios.rs`,
//! the fake server in `reconnect/fake.rs`).

mod fake;
mod scenarios;

use sockeye_tokio as adapter;

/// Upper bound for any one test.
const TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Runs a scenario on a current-thread runtime (real clock: the fake server runs on real
/// threads), bounded by [`TEST_LIMIT`].
fn run<F: std::future::Future>(test: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        tokio::time::timeout(TEST_LIMIT, test)
            .await
            .expect("the test took too long")
    })
}

/// The runtime's TCP stream, for the connector scenario.
type Tcp = tokio::net::TcpStream;

/// A plain TCP connection to `addr`.
async fn tcp_connect(addr: std::net::SocketAddr) -> std::io::Result<Tcp> {
    tokio::net::TcpStream::connect(addr).await
}
