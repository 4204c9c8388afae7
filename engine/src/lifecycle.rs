//! The life of a connection, decided in one place: what the transport must do next
//! ([`Driver::poll_io`]), the end ([`Outcome`], decided once, I/O failures included),
//! the linger after the end, the write-stall timer and the end-of-stream guard.
//!
//! An adapter asks [`Driver::poll_io`] after every call and does what it says; it holds
//! no policy of its own about when to read, when to stop, or how long to wait.

use std::string::String;
use std::time::Duration;

use sockeye_proto::{Instant, Timeout};

use crate::buffers::RecvBuffer;
use crate::driver::Driver;
use crate::message::CloseReason;
use crate::outcome::{Abnormal, Outcome};

/// What the transport should do next: the one answer of [`Driver::poll_io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Move bytes as [`Io`] says, and call [`Driver::handle_deadline`] at its deadline.
    Io(Io),
    /// Every queued byte is written and the protocol is done writing: shut the
    /// transport's write side down (its result does not matter), then call
    /// [`Driver::shutdown_done`].
    Shutdown,
    /// The connection is over: [`Driver::outcome`] says how; drop the transport.
    Done,
}

/// The transport work of [`Next::Io`] (by default: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    /// Read into [`Driver::read_with`] when the transport is readable. False while the
    /// send queue is full (a peer that does not read cannot make us queue more: no
    /// Pongs, no echoes), at end of stream, and after the end.
    pub read: bool,
    /// Write [`Driver::write_slices`] when the transport is writable, then
    /// [`Driver::advance`].
    pub write: bool,
    /// When to call [`Driver::handle_deadline`]: the core's next timer, the write-stall
    /// timer, or the linger after the end.
    pub deadline: Option<Instant>,
}

/// What only some connections need, boxed so the others do not pay for it.
#[derive(Debug, Default)]
pub(crate) struct Rare {
    /// The subprotocol agreed in the handshake.
    pub(crate) protocol: Option<String>,
    /// The end, once decided.
    pub(crate) outcome: Option<Outcome>,
    /// When flushing after the end gives up.
    pub(crate) linger_until: Option<Instant>,
    /// The peer's Close, kept as it arrived (the core keeps only the code if a Pong was
    /// still queued then).
    pub(crate) peer_close: Option<Option<CloseReason>>,
    /// permessage-deflate, when the handshake agreed it (boxed again: most connections
    /// that need the rest never compress).
    pub(crate) deflate: Option<Box<crate::compression::Compression>>,
    /// The connection's `tracing` span, when a subscriber wants it.
    #[cfg(feature = "tracing")]
    pub(crate) span: Option<tracing::Span>,
}

/// No write-stall timer is running.
pub(crate) const NO_STALL: u64 = u64::MAX;

/// How long the end may take to flush our last frames when no close timeout is set.
pub const DEFAULT_LINGER: Duration = Duration::from_secs(30);

impl Driver {
    /// What the transport should do next. `now` is the latest clock reading the adapter
    /// has (it starts the write-stall timer).
    pub fn poll_io(&mut self, now: Instant) -> Next {
        if self.rare_outcome().is_none() {
            self.guard_end_of_stream(now);
        }
        let pending = self.send.pending;
        if self.shutdown_asked && pending == 0 && !self.write_closed {
            return Next::Shutdown;
        }
        if self.rare_outcome().is_some() {
            if pending == 0 || self.write_closed {
                return Next::Done;
            }
            return Next::Io(Io {
                read: false,
                write: true,
                deadline: self.rare.as_ref().and_then(|rare| rare.linger_until),
            });
        }
        let write = pending > 0 && !self.write_closed;
        if write {
            if self.stall_from == NO_STALL || self.progressed {
                self.stall_from = now.as_nanos();
                self.progressed = false;
            }
        } else {
            self.stall_from = NO_STALL;
        }
        let stall = self.stall_deadline();
        let core = self.connection.poll_timeout();
        let deadline = match (core, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Next::Io(Io {
            read: !self.eof && self.is_writable(),
            write,
            deadline,
        })
    }

    fn stall_deadline(&self) -> Option<Instant> {
        let timeout = self.tuning.config().write_stall_timeout?;
        (self.stall_from != NO_STALL).then(|| Instant::from_nanos(self.stall_from) + timeout)
    }

    /// Fires what is due at `now`: the core's timers (keepalive, close, idle), the
    /// write-stall timer, the linger after the end.
    pub fn handle_deadline(&mut self, now: Instant) {
        if self.rare_outcome().is_some() {
            let linger = self.rare.as_ref().and_then(|rare| rare.linger_until);
            if linger.is_some_and(|until| until <= now) {
                // Gave up flushing: the peer does not read our last frames.
                self.write_closed = true;
                self.send = Default::default();
            }
            return;
        }
        if self.connection.poll_timeout().is_some_and(|at| at <= now) {
            if let Some(closed) = self.handle_timeout(now) {
                self.end(Outcome::from_closed(closed, self.peer_close_reason()), now);
                return;
            }
        }
        if self.progressed {
            self.stall_from = now.as_nanos();
            self.progressed = false;
        } else if self.stall_deadline().is_some_and(|at| at <= now) && self.send.pending > 0 {
            // The peer stopped reading: nothing queued moved for the whole timeout.
            self.end(Outcome::TimedOut(Timeout::WriteStall), now);
            self.write_closed = true;
            self.send = Default::default();
        }
    }

    /// The transport failed (a read or write error): nothing more is read or written,
    /// both buffers are freed, and the end is [`Abnormal::Io`] unless the connection had
    /// ended already (a clean close whose last write failed stays clean).
    pub fn fail_io(&mut self, kind: std::io::ErrorKind) {
        self.eof = true;
        self.write_closed = true;
        self.shutdown_asked = false;
        self.recv = RecvBuffer::default();
        self.send = Default::default();
        self.partial = None;
        self.direct = 0;
        let outcome = self
            .core_outcome()
            .unwrap_or(Outcome::Abnormal(Abnormal::Io(kind)));
        self.record(outcome, None);
    }

    /// The transport's write side was shut down, as [`Next::Shutdown`] asked.
    pub fn shutdown_done(&mut self) {
        self.shutdown_asked = false;
        self.write_closed = true;
    }

    /// How the connection ended, once it has: decided once, and kept.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.rare_outcome()
    }

    /// Whether the end was decided: nothing more will be read.
    pub fn is_finished(&self) -> bool {
        self.rare_outcome().is_some()
    }

    /// Whether nothing more can be written (shut down, failed, or given up on).
    pub fn is_write_closed(&self) -> bool {
        self.write_closed
    }

    /// The subprotocol agreed in the handshake.
    pub fn protocol(&self) -> Option<&str> {
        self.rare.as_ref()?.protocol.as_deref()
    }

    /// Records the subprotocol agreed in the handshake.
    pub fn set_protocol(&mut self, protocol: Option<String>) {
        if protocol.is_some() {
            self.rare().protocol = protocol;
        }
    }

    pub(crate) fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Default::default)
    }

    /// Gives the connection its `tracing` span (feature `tracing`), which the adapter
    /// enters while it drives the driver, so that the driver's events (the end and its
    /// outcome) carry it. A disabled span (no subscriber wants it) is not kept, so an
    /// untraced connection costs nothing.
    #[cfg(feature = "tracing")]
    pub fn set_span(&mut self, span: tracing::Span) {
        if !span.is_disabled() {
            self.rare().span = Some(span);
        }
    }

    /// The span given with [`set_span`](Self::set_span), if kept.
    #[cfg(feature = "tracing")]
    pub fn span(&self) -> Option<&tracing::Span> {
        self.rare.as_ref()?.span.as_ref()
    }

    fn rare_outcome(&self) -> Option<&Outcome> {
        self.rare.as_ref()?.outcome.as_ref()
    }

    /// The peer's Close as it arrived, or as the core kept it.
    pub(crate) fn peer_close_reason(&self) -> Option<CloseReason> {
        match self.rare.as_ref().and_then(|rare| rare.peer_close.clone()) {
            Some(kept) => kept,
            None => self
                .connection
                .peer_close()
                .and_then(|frame| CloseReason::from_frame(&frame)),
        }
    }

    /// The end as the core decided it, if it has.
    pub(crate) fn core_outcome(&self) -> Option<Outcome> {
        let closed = self.connection.outcome()?;
        Some(Outcome::from_closed(closed, self.peer_close_reason()))
    }

    /// Decides the end (the first one counts) and starts the linger: how long our last
    /// frames may take to leave.
    pub(crate) fn end(&mut self, outcome: Outcome, now: Instant) {
        let linger = self
            .tuning
            .config()
            .linger
            .or(self.connection.config().close_timeout)
            .unwrap_or(DEFAULT_LINGER);
        self.record(outcome, Some(now + linger));
    }

    fn record(&mut self, outcome: Outcome, linger_until: Option<Instant>) {
        if self.outcome().is_none() {
            crate::trace::debug!(role = ?self.connection.role(), %outcome, "connection ended");
        }
        let rare = self.rare();
        if rare.outcome.is_none() {
            rare.outcome = Some(outcome);
            rare.linger_until = linger_until;
        }
        self.stall_from = NO_STALL;
    }

    /// At end of stream with nothing left to parse and no end reported (which the core
    /// never does), ends the connection rather than wait for input that cannot come.
    fn guard_end_of_stream(&mut self, now: Instant) {
        if self.eof && !self.has_buffered_input() {
            // The core reports the end at end of stream; ask it, in case nobody has.
            let _ = self.connection.handle_eof(now);
            let outcome = self
                .core_outcome()
                .unwrap_or(Outcome::Abnormal(Abnormal::Eof));
            self.end(outcome, now);
        }
    }
}
