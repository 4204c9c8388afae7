//! # sockeye-engine: the engine every `std` adapter of Sockeye drives
//!
//! [`sockeye_proto`] is the protocol alone: `no_std`, no allocation, no buffers of its
//! own. This crate puts the buffers and the connection's whole life around it, once, for
//! every adapter that has `std` (tokio, smol, mio, hyper): [`Driver`] (read buffer,
//! owned [`Message`]s, send queue, the lifecycle), the opening handshake over buffered
//! heads ([`ServerUpgrade`], [`ClientUpgrade`]), the [`Settings`] of a connection, the
//! [`Outcome`] of its end, and the reconnecting client's [`supervisor`]. Like the core
//! it does no I/O and reads no clock: adapters move bytes and keep time.
//!
//! ## The driver
//!
//! The runtime adapters (tokio, smol, mio) share everything but the I/O calls, and that
//! shared part lives here rather than behind a runtime trait: [`Driver`] owns the read
//! buffer, assembles whole owned [`Message`]s, and keeps a send queue that coalesces small
//! frames into one write and hands large payloads to a vectored write without copying.
//! Control frames from [`Connection::poll_transmit`](sockeye_proto::Connection::poll_transmit) are moved into the send queue after
//! every core call, so Pongs and Close replies go out whenever the adapter flushes.
//!
//! Large binary frames (see [`DriverConfig::direct_read_threshold`]) skip the read buffer:
//! [`Driver::read_with`] hands the adapter's read the rest of the frame inside the message
//! being assembled, so their payload is never copied in user space. That applies to
//! [`Driver::poll_message`]; the streaming [`Driver::poll_event_with`] always reads through
//! the read buffer.
//!
//! Memory: read buffers come from a small per-thread pool and go back to it whenever no
//! partial frame is left, and the send queue frees its buffers when it drains, so an idle
//! connection holds no buffer at all. Large message buffers, once written out, are kept
//! per thread for the next large message (eight of 4 KiB to 1 MiB, and one larger of up
//! to 64 MiB), so that an echo or a proxy does not allocate and zero one per message.
//! A new large buffer is asked of the allocator already zeroed (fresh pages are), and a
//! buffer that must grow is zeroed only a step (1 MiB) ahead of the bytes received: a
//! frame header announcing 16 MiB commits about what actually arrived, not 16 MiB.
//!
//! The driver does no I/O: the adapter calls [`Driver::read_with`] with a closure that
//! performs one non-blocking read into the buffer it is given (returning
//! `Poll::Pending` when the socket has nothing), and writes [`Driver::write_slices`] with a
//! vectored write, then reports progress with [`Driver::advance`].
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The README's examples are compiled as doc tests, so the snippet shown on crates.io
// stays correct.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod buffers;
mod compression;
mod config;
mod copy;
mod driver;
mod error;
pub mod handshake;
mod lifecycle;
mod message;
pub mod opening;
mod outcome;
mod prepared;
pub mod readiness;
mod settings;
pub mod supervisor;
mod trace;
pub mod verdict;

pub use config::DriverConfig;
pub use driver::Driver;
pub use error::Error;
pub use handshake::{
    ClientAnswer, ClientUpgrade, IntoRequest, Refusal, RejectedResponse, RequestExtras,
    RequestHead, ServerAnswer, ServerUpgrade,
};
pub use lifecycle::{Io, Next, DEFAULT_LINGER};
pub use message::{CloseReason, Message};
pub use opening::Opening;
pub use outcome::{Abnormal, Outcome};
pub use prepared::PreparedMessage;
pub use readiness::{Action, Lifecycle};
pub use settings::Settings;
pub use verdict::Verdict;
