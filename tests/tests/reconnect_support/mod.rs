//! Support for the reconnect tests (`reconnect_tokio.rs`, `reconnect_smol.rs`): the fake
//! server; the scenarios themselves are in `scenarios.rs`, `include!`d by each test crate.

pub mod fake;
