//! # sockeye-hyper: Sockeye WebSockets in hyper and axum servers
//!
//! Most Rust servers receive WebSockets through hyper, often behind axum. This crate
//! turns such a request into a Sockeye [`WebSocket`] (the tokio adapter's, on the
//! connection hyper hands over), with the core's validation and negotiation:
//!
//! - **HTTP/1.1**: `GET` with `Upgrade: websocket`, answered `101 Switching Protocols`.
//! - **HTTP/2** (RFC 8441): extended CONNECT with `:protocol websocket` on one stream of
//!   a shared connection, answered `200`; serve with
//!   `hyper::server::conn::http2::Builder::enable_connect_protocol` (or hyper-util's
//!   `auto` builder's `http2().enable_connect_protocol()`). Browsers use it for `wss://`
//!   to a server that announced it on an HTTP/2 connection they already have.
//!   [`connect_h2`] is the client side.
//!
//! Bad requests get the same answers as the other adapters' `accept`: `400` for a plain
//! HTTP request (a browser tab, a health check), `405` for an upgrade with another
//! method, `426` with `Sec-WebSocket-Version: 13` for another version. Subprotocols and
//! permessage-deflate are negotiated as in `accept`, and the application may answer
//! any request with its own status instead ([`IncomingUpgrade::answer`] with a
//! [`Verdict`]).
//!
//! - [`upgrade`] / [`upgrade_with`]: the one-call form for a hyper `service_fn`.
//! - [`IncomingUpgrade`]: look at the request ([`RequestHead`]), then answer with a
//!   [`Verdict`] (subprotocol, headers, compression policy, data; or a refusal).
//! - `axum::WebSocketUpgrade` (feature `axum`): the extractor, shaped like axum's own.
//!
//! Every connection is a full Sockeye connection: keepalive on by default, the typed
//! [`Outcome`] of its end, a Close sent when it is dropped while open, bounded memory.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use hyper::body::Incoming;
//! use hyper::server::conn::http1;
//! use hyper::service::service_fn;
//! use hyper::{Request, Response};
//! use hyper_util::rt::TokioIo;
//! use sockeye_hyper::{Body, Message};
//!
//! async fn echo(mut request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
//!     match sockeye_hyper::upgrade(&mut request) {
//!         Ok((response, upgrade)) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut ws) = upgrade.await else { return };
//!                 while let Some(message) = ws.recv().await {
//!                     if matches!(message, Message::Text(_) | Message::Binary(_)) {
//!                         let _ = ws.send(message).await;
//!                     }
//!                 }
//!             });
//!             Ok(response)
//!         }
//!         Err(rejected) => Ok(rejected.into_response()),
//!     }
//! }
//!
//! # async fn serve() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! loop {
//!     let (tcp, _) = listener.accept().await?;
//!     tokio::spawn(
//!         http1::Builder::new()
//!             .serve_connection(TokioIo::new(tcp), service_fn(echo))
//!             .with_upgrades(),
//!     );
//! }
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod client;
mod server;

pub use client::connect_h2;
pub use server::{
    is_upgrade_request, upgrade, upgrade_with, Answer, Body, IncomingUpgrade, Rejected, UpgradeFut,
    Upgraded, WebSocket,
};
pub use sockeye_engine::handshake::Refusal;
pub use sockeye_engine::{RequestExtras, RequestHead, Verdict};
pub use sockeye_proto::{CloseCode, DeflateConfig, DeflateParams};
pub use sockeye_tokio::{
    Bytes, Error, FromUtf8Error, Message, Outcome, PreparedMessage, Settings, TrySendError,
    Utf8Bytes,
};
