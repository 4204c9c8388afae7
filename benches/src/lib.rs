//! Sockeye benchmarks: shared pieces of the end-to-end echo comparison.
//!
//! The binaries in `src/bin/` use this library:
//!
//! - `peer_echo`: echo servers built on the peer libraries (tokio-tungstenite,
//!   fastwebsockets, tokio-websockets), each with its default settings, and
//!   the reference below them all ([`floor`]: the kernel's share of an echo);
//! - `peer_broadcast`: broadcast (fan-out) servers on the same peer libraries,
//!   each the idiomatic way (a tokio `broadcast` channel, a task per connection);
//! - `loadgen`: a load generator with its own minimal WebSocket client
//!   ([`ws`]: handshake, pre-masked frames, a small decoder of server frames);
//! - `compare`: starts every server in turn, runs the load generator against
//!   it, and prints medians and ratios as a markdown table.
//!
//! [`fanout`] holds the fan-out scenario's message stamps and subscriber decoder;
//! [`upgrade`] the plain HTTP upgrade of the peers that have none.
//! [`json`] makes the messages of the compressed scenarios (permessage-deflate).
//! [`sys`] reads CPU time and memory of this process and of the server under
//! test (`getrusage`, `/proc/PID/stat`, `/proc/PID/status`); [`stats`] holds
//! the few statistics the tables need.

pub mod fanout;
pub mod floor;
pub mod json;
pub mod stats;
pub mod sys;
pub mod upgrade;
pub mod ws;
