//! `sockeye_smol::ReconnectingClient` over loopback against the fake server: restarts,
//! a silent server, fatal rejections and closes, the attempt limit, offline sends and the
//! on-connect hook (the scenarios are in `reconnect_support/scenarios.rs`).

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

include!("reconnect_support/scenarios.rs");
