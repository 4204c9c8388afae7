//! # sockeye-smol: Sockeye WebSockets on smol, or any executor
//!
//! Sockeye over `futures-io` streams
//! (`AsyncRead + AsyncWrite + Unpin`) with `async-io` timers, so it runs on smol,
//! async-std, or any executor. This crate is a facade: it names the one async
//! implementation (`sockeye-async`, shared with `sockeye-tokio`) for the [`Smol`]
//! runtime; the buffers, send queue and the connection's life are `sockeye-engine`'s.
//!
//! - Server: [`accept`] / [`accept_with`] (a callback sees the request and answers with a
//!   [`Verdict`]; [`accept_with_async`] when the answer has to wait). A bad request gets its 400 / 426 / 431 written and flushed, the socket
//!   closed, and [`Error::Refused`] returned; a peer that never finishes its request is
//!   dropped after [`Settings::handshake_timeout`] (10 s).
//! - Client: [`connect`] over any stream (TLS is the caller's stream) and [`connect_url`]
//!   (or [`connect_url_with`], with subprotocols and headers) for plain `ws://` TCP with
//!   a connect timeout. A non-`101` answer is
//!   [`Error::Rejected`] with the status, headers and body.
//! - [`WebSocket`]: [`recv`](WebSocket::recv) whole [`Message`]s or
//!   [`recv_with`](WebSocket::recv_with) raw chunks; [`send`](WebSocket::send),
//!   [`feed`](WebSocket::feed) (backpressure), [`feed_frame`](WebSocket::feed_frame)
//!   (fragments), [`close`](WebSocket::close); `Stream` +
//!   `Sink`; [`split`](WebSocket::split) into a reader and a
//!   writer for two tasks. Receives are cancel-safe.
//!
//! The surface is the same as `sockeye-tokio`'s, name for name.
//!
//! ## How a connection ends
//!
//! Every connection ends exactly once, and `recv` says so by returning **`None`**; then
//! [`WebSocket::outcome`] holds the [`Outcome`]: `Clean` (the close handshake completed:
//! both codes and the peer's reason), `Abnormal` (end of stream without a close = 1006,
//! an I/O error, or a protocol violation by the peer, whose Close we sent), or
//! `TimedOut` (close handshake, keepalive, idle). Its `Display` form is
//! `clean code=1000 reason=bye`, `abnormal: ...`, `timeout: ...`. The peer's Close frame
//! itself arrives before that, as [`Message::Close`]. Sends after the end fail with
//! [`Error::Closed`]; [`Error`] is otherwise only for handshakes and local misuse.
//!
//! ## Driving, timers and memory
//!
//! **Keepalive is on by default** in both roles (a Ping after 30 s without input, 30 s
//! for an answer; `Settings::with_keepalive(None)` turns it off), and a peer that stops
//! reading is ended by the write-stall timeout (30 s). A client that only sends must
//! still keep a task receiving (split the connection), as with `sockeye-tokio`.
//!
//! Receiving drives the connection: after every call queued control frames are written,
//! one `async-io` timer sleeps until the core's next deadline (keepalive, close, idle),
//! and at the end the transport is closed (`poll_close`). Reads are poll-based
//! (`AsyncRead::poll_read` into the driver's buffer): the read buffer (64 KiB by
//! default, [`DriverConfig`]) comes from a per-thread pool only while a read is in
//! progress or a partial frame is buffered, so an idle connection holds none, and no
//! timer exists until one is armed. Sends are queued (small frames coalesced, large
//! payloads written in place with vectored writes) up to
//! [`DriverConfig::max_pending_bytes`] (1 MiB), beyond which `send` and `feed` wait.
//!
//! ```no_run
//! use sockeye_smol::{accept, Message, Settings};
//!
//! smol::block_on(async {
//!     let listener = smol::net::TcpListener::bind("127.0.0.1:9001").await?;
//!     loop {
//!         let (stream, _) = listener.accept().await?;
//!         smol::spawn(async move {
//!             let Ok(mut ws) = accept(stream, Settings::default()).await else { return };
//!             while let Some(message) = ws.recv().await {
//!                 if message.is_data() && ws.send(message).await.is_err() {
//!                     break;
//!                 }
//!             }
//!             while ws.recv().await.is_some() {}
//!             println!("closed {}", ws.outcome().expect("recv returned None"));
//!         })
//!         .detach();
//!     }
//!     # #[allow(unreachable_code)]
//!     Ok::<_, std::io::Error>(())
//! })?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! A client:
//!
//! ```no_run
//! use sockeye_smol::{connect_url, CloseCode, Message, Settings};
//!
//! smol::block_on(async {
//!     let mut ws = connect_url("ws://127.0.0.1:9001/chat", Settings::default()).await?;
//!     ws.send(Message::text("hello")).await?;
//!     if let Some(Message::Text(echo)) = ws.recv().await {
//!         println!("< {echo}");
//!     }
//!     ws.close(CloseCode::NORMAL, "bye").await?;
//!     while ws.recv().await.is_some() {}
//!     println!("# closed {}", ws.outcome().expect("recv returned None"));
//!     Ok::<_, sockeye_smol::Error>(())
//! })?;
//! # Ok::<_, sockeye_smol::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled as doc tests, so the snippet shown on crates.io
// stays correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use sockeye_async::Smol;

sockeye_async::facade!(sockeye_async::Smol, async_net::TcpStream);

/// A WebSocket over a plain TCP stream, as [`connect_url`] makes.
pub type TcpWebSocket = WebSocket<async_net::TcpStream>;
