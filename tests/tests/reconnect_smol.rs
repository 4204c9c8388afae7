//! `sockeye_smol::ReconnectingClient` over loopback against the fake server: restarts,
//! a silent server, fatal rejections and closes, the attempt limit, offline sends, the
//! on-connect hook, request extras and a connector (the scenarios are in
//! `reconnect_support/scenarios.rs`).

mod reconnect_support;

use sockeye_smol as adapter;

/// Upper bound for any one test.
const TEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

fn too_long<T>() -> T {
    panic!("the test took too long")
}

/// Runs a scenario with `smol::block_on`, bounded by [`TEST_LIMIT`].
fn run<F: std::future::Future>(test: F) -> F::Output {
    smol::block_on(futures_lite::future::or(test, async {
        smol::Timer::after(TEST_LIMIT).await;
        too_long()
    }))
}

/// The runtime's TCP stream, for the connector scenario.
type Tcp = smol::net::TcpStream;

/// A plain TCP connection to `addr`.
async fn tcp_connect(addr: std::net::SocketAddr) -> std::io::Result<Tcp> {
    smol::net::TcpStream::connect(addr).await
}

include!("reconnect_support/scenarios.rs");
