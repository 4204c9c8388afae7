//! # sockeye-mio: Sockeye WebSockets on mio, readiness-driven
//!
//! No futures, no threads: a [`Session`] is one WebSocket connection over a
//! [`mio::net::TcpStream`] that the application's own [`mio::Poll`] loop drives with
//! readiness events ([`Session::on_event`]) and deadlines
//! ([`Session::next_timeout`], [`Session::on_timeout`]). The protocol, buffers and send
//! queue are the core's [`Driver`](sockeye_engine::Driver); the handshake runs as
//! a phase of the session (non-blocking, partial heads, rejections written then closed,
//! handshake timeout).
//!
//! [`Server`] runs many sessions on one `Poll` (a [`slab::Slab`] of sessions) with the
//! same rejections and timers, calling a [`Handler`] for each message.
//!
//! ```no_run
//! use sockeye_mio::{Message, Server, Session, Settings};
//!
//! let addr = "127.0.0.1:9001".parse().unwrap();
//! let echo = |session: &mut Session, message: Message| {
//!     if message.is_data() {
//!         let _ = session.send(message);
//!     }
//! };
//! let mut server = Server::bind(addr, Settings::default(), echo)?;
//! println!("listening on {}", server.local_addr()?);
//! server.run()?;
//! # Ok::<_, std::io::Error>(())
//! ```
//!
//! A client session in a hand-written loop:
//!
//! ```no_run
//! use std::time::Instant;
//! use mio::{Events, Poll, Token};
//! use sockeye_mio::{CloseCode, Message, Session, Settings};
//!
//! let mut poll = Poll::new()?;
//! let mut events = Events::with_capacity(16);
//! let mut ws = Session::connect_url("ws://127.0.0.1:9001/", Settings::default(), Instant::now())?;
//! ws.register(poll.registry(), Token(0))?;
//! let mut sent = false;
//! while !ws.is_done() {
//!     poll.poll(&mut events, ws.next_timeout(Instant::now()))?;
//!     let now = Instant::now();
//!     let reply = |ws: &mut Session, message: Message| {
//!         println!("< {message:?}");
//!         let _ = ws.close(CloseCode::NORMAL, "bye", Instant::now());
//!     };
//!     for event in events.iter() {
//!         ws.on_event(event, now, reply);
//!     }
//!     ws.on_timeout(now);
//!     if ws.is_open() && !sent {
//!         ws.send(Message::text("hello"))?;
//!         sent = true;
//!     }
//!     ws.update_interest(poll.registry(), Token(0))?;
//! }
//! println!("# closed {:?}", ws.outcome());
//! # Ok::<_, sockeye_mio::Error>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled (and the core's run) as doc tests, so the
// snippet shown on crates.io stays correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod server;
mod session;

pub use server::{Handler, Server};
pub use session::Session;
pub use sockeye_engine::{
    Abnormal, Bytes, CloseReason, DriverConfig, Error, FromUtf8Error, Message, Outcome,
    PreparedMessage, Refusal, RejectedResponse, RequestExtras, RequestHead, Settings, Utf8Bytes,
    Verdict,
};
pub use sockeye_proto;
pub use sockeye_proto::handshake::{ClientRequest, HeadLimits, Url};
pub use sockeye_proto::{
    CloseCode, Config, DataKind, DeflateConfig, DeflateParams, KeepAlive, Role, State, Timeout,
};
