//! # sockeye-async: Sockeye's async WebSockets, written once
//!
//! The one async implementation behind `sockeye-tokio` and `sockeye-smol`: a
//! [`WebSocket`] (with [`split`](WebSocket::split) halves), the handshake functions and
//! the [`ReconnectingClient`], generic over a small [`Runtime`] trait (a clock, a
//! resettable timer, TCP connect) and a [`Transport`] (the runtime's read, write, flush
//! and shutdown). The protocol is `sockeye-proto`'s and the connection's whole life
//! (buffers, when to read, when to stop, how long to linger) is `sockeye-engine`'s
//! [`Driver`](sockeye_engine::Driver): this crate moves bytes and keeps time, and holds
//! no policy of its own.
//!
//! Use it through a facade: `sockeye-tokio` (feature `tokio`, runtime [`Tokio`]) or
//! `sockeye-smol` (feature `smol`, runtime [`Smol`]), which name these types for their
//! runtime (`sockeye_tokio::WebSocket<S>` is `WebSocket<S, Tokio>`). A new runtime needs
//! an implementation of [`Runtime`] and [`Transport`] here, and a facade.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled as doc tests, so the snippet shown on crates.io
// stays correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod connection;
mod facade;
mod handshake;
pub mod reconnecting_client;
mod runtime;
mod split;
mod websocket;

pub use handshake::{
    accept, accept_with, accept_with_async, accept_with_data, accept_with_data_async, connect,
    connect_url, connect_url_with,
};
pub use reconnecting_client::ReconnectingClient;
#[cfg(feature = "smol")]
pub use runtime::Smol;
#[cfg(feature = "tokio")]
pub use runtime::Tokio;
pub use runtime::{Runtime, Timer, Transport};
pub use sockeye_engine::Error;
pub use split::{ReadHalf, WriteHalf};
pub use websocket::WebSocket;

use sockeye_engine::Message;

/// Why [`WebSocket::try_feed`] (or [`try_feed_prepared`](WebSocket::try_feed_prepared),
/// with `T` a [`PreparedMessage`](sockeye_engine::PreparedMessage)) did not queue a
/// message.
#[derive(Debug)]
pub enum TrySendError<T = Message> {
    /// The send queue is over its bound: the message, handed back.
    Full(T),
    /// The connection cannot send (it is closing or over, or the message is invalid).
    Failed(Error),
}

impl<T> std::fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the send queue is full"),
            TrySendError::Failed(error) => error.fmt(f),
        }
    }
}

impl<T: std::fmt::Debug> std::error::Error for TrySendError<T> {}

/// Random bytes from the OS (the client's key nonce and masking seed).
pub(crate) fn random<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes)
        .map_err(|error| Error::Io(std::io::Error::other(error.to_string())))?;
    Ok(bytes)
}

#[doc(hidden)]
pub use sockeye_engine as __engine;
#[doc(hidden)]
pub use sockeye_proto as __proto;
