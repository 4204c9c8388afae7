//! # sockeye-tokio: WebSockets on tokio
//!
//! Sockeye over any tokio `AsyncRead + AsyncWrite + Unpin` stream: TCP, TLS
//! (`tokio-rustls`), Unix sockets, in-memory duplex pipes. This crate is a facade: it
//! names the one async implementation (`sockeye-async`) for the [`Tokio`] runtime. The
//! protocol is the sans-IO `sockeye-proto` core's; the buffers, send queue and the
//! connection's life are `sockeye-engine`'s.
//!
//! - Server: [`accept`] / [`accept_with`] (look at the request, pick a subprotocol or
//!   reject with a status; [`accept_with_async`] when the answer has to wait). Bad requests get their 400 / 426 / 431 written before the
//!   socket is closed; slow handshakes time out (10 s by default).
//! - Client: [`connect`] over your stream (TLS included), or [`connect_url`] (or
//!   [`connect_url_with`], with subprotocols and headers) for `ws://` over plain TCP.
//! - [`WebSocket`]: [`recv`](WebSocket::recv) whole [`Message`]s or
//!   [`recv_with`](WebSocket::recv_with) raw chunks; [`send`](WebSocket::send),
//!   [`feed`](WebSocket::feed) (backpressure), [`close`](WebSocket::close); `Stream` +
//!   `Sink`; [`split`](WebSocket::split) into a reader and a writer.
//!
//! ## How a connection ends
//!
//! Every connection ends exactly once, and `recv` says so by returning **`None`**; then
//! [`WebSocket::outcome`] holds the [`Outcome`]: `Clean` (the close handshake completed:
//! both codes and the peer's reason), `Abnormal` (end of stream without a close = 1006,
//! an I/O error, or a protocol violation by the peer, whose Close we sent), or
//! `TimedOut` (close handshake, keepalive, idle). Its `Display` form is what the
//! example client prints: `clean code=1000 reason=bye`, `abnormal: ...`, `timeout: ...`.
//! The peer's Close frame itself arrives before that, as [`Message::Close`]. Sends
//! after the end fail with [`Error::Closed`]; [`Error`] is otherwise only for
//! handshakes and local misuse.
//!
//! ```no_run
//! use sockeye_tokio::{connect_url, CloseCode, Message, Settings};
//!
//! # async fn run() -> Result<(), sockeye_tokio::Error> {
//! let mut ws = connect_url("ws://127.0.0.1:9001/", Settings::default()).await?;
//! ws.send(Message::text("hello")).await?;
//! ws.close(CloseCode::NORMAL, "done").await?;
//! while let Some(message) = ws.recv().await {
//!     println!("< {message:?}");
//! }
//! println!("# closed {}", ws.outcome().expect("recv returned None"));
//! # Ok(()) }
//! ```
//!
//! ## Driving, timers and memory
//!
//! Receiving drives the connection: after every call queued control frames are written,
//! the one timer sleeps until the core's next deadline (keepalive, close, idle), and at
//! the end the transport is shut down. Reads are poll-based: the read buffer (64 KiB by
//! default, [`DriverConfig`]) is taken from a per-thread pool only while a read is in
//! progress or a partial frame is buffered, so an idle connection holds none, and no
//! timer is allocated unless one is armed. Sends are queued (small frames coalesced,
//! large payloads written in place with vectored writes) up to
//! [`DriverConfig::max_pending_bytes`] (1 MiB), beyond which `send` and `feed` wait.
//!
//! The runtime needs its time driver (`Builder::enable_time` or `enable_all`): timers
//! and the handshake timeout use `tokio::time`, so tests may pause the clock.
//!
//! **Keepalive is on by default** in both roles: a Ping after 30 s without input, and
//! 30 s for an answer, so a connection that died silently behind a proxy ends as
//! `Outcome::TimedOut(Timeout::KeepAlive)`. Change it with
//! `Settings::default().with_keepalive(..)` (`None` turns it off). A peer that stops
//! reading is ended by the write-stall timeout (30 s, [`DriverConfig`]).
//!
//! ## Sender-only clients
//!
//! Pongs, close replies and timers are driven by receiving. A client that only sends
//! must still receive, or the server's keepalive ends it: split the connection and keep
//! a task in `recv`.
//!
//! ```no_run
//! use sockeye_tokio::{connect_url, Message, Settings};
//!
//! # async fn run() -> Result<(), sockeye_tokio::Error> {
//! let ws = connect_url("ws://127.0.0.1:9001/feed", Settings::default()).await?;
//! let (mut reader, mut writer) = ws.split();
//! // The reader answers Pings and sees the end; its task ends with the connection.
//! let reading = tokio::spawn(async move {
//!     while reader.recv().await.is_some() {}
//!     reader.outcome()
//! });
//! for i in 0..10 {
//!     writer.send(Message::text(format!("tick {i}"))).await?;
//! }
//! writer.close(sockeye_tokio::CloseCode::NORMAL, "done").await?;
//! println!("# closed {:?}", reading.await);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled as doc tests, so the snippet shown on crates.io
// stays correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use sockeye_async::Tokio;

sockeye_async::facade!(sockeye_async::Tokio, tokio::net::TcpStream);
