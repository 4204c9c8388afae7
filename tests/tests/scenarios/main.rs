//! The scenario suite over loopback TCP, once per adapter: `suite.rs` holds the
//! scenarios and the [`suite::Adapter`] interface (read its documentation to add an
//! adapter); each adapter module implements the interface and instantiates the
//! scenarios with `crate::scenarios!(..)`.
//!
//! Run one adapter's scenarios with `cargo test -p sockeye-tests --test scenarios tokio::`.

#[macro_use]
mod suite;

mod faulted;
mod mio;
mod smol;
mod tokio;
