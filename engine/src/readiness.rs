//! [`Lifecycle`]: a connection's whole life, the opening handshake included, behind one
//! set of calls, for adapters driven by readiness (mio, a hand-written poll loop): one
//! answer to what the transport does next, one read, one write, one deadline, whatever
//! the phase.

use std::boxed::Box;
use std::io::{self, IoSlice};
use std::task::Poll;

use sockeye_proto::Instant;

use crate::driver::write_queued;
use crate::opening::{Opening, Step};
use crate::{Driver, Error, Io, Next, RequestHead, Verdict};

/// What the transport should do next: the one answer of [`Lifecycle::poll`].
#[derive(Debug)]
pub enum Action {
    /// Move bytes as [`Io`] says ([`Lifecycle::read_with`], [`Lifecycle::write_slices`]
    /// then [`Lifecycle::advance`]) and call [`Lifecycle::handle_deadline`] at its
    /// deadline.
    Io(Io),
    /// Server: decide on the request and give the verdict to [`Lifecycle::answer`].
    Decide(RequestHead),
    /// Shut the transport's write side (its result does not matter), then call
    /// [`Lifecycle::shutdown_done`].
    Shutdown,
    /// The handshake is done: the connection is open (its driver is
    /// [`Lifecycle::driver`]). Poll again.
    Opened,
    /// Over: drop the transport. [`Lifecycle::error`] says why the handshake failed or
    /// the transport broke; the driver's [`outcome`](Driver::outcome) how an open
    /// connection ended.
    Done,
}

/// A connection from its first handshake byte to its end: an [`Opening`], then a
/// [`Driver`], driven the same way throughout.
#[derive(Debug)]
pub struct Lifecycle {
    phase: Phase,
    /// The request path, once a server accepted it.
    path: Option<Box<str>>,
    error: Option<Box<Error>>,
}

#[derive(Debug)]
enum Phase {
    Opening(Box<Opening>),
    Open(Box<Driver>),
}

impl Lifecycle {
    /// A connection that starts with `opening`.
    pub fn new(opening: Opening) -> Self {
        Lifecycle {
            phase: Phase::Opening(Box::new(opening)),
            path: None,
            error: None,
        }
    }

    /// What the transport should do next (see [`Action`]).
    pub fn poll(&mut self, now: Instant) -> Action {
        match &mut self.phase {
            Phase::Opening(opening) => match opening.poll(now) {
                Step::Io(io) => Action::Io(io),
                Step::Decide(head) => Action::Decide(head),
                Step::Shutdown => Action::Shutdown,
                Step::Open { driver, path } => {
                    (self.phase, self.path) = (Phase::Open(driver), path);
                    Action::Opened
                }
                Step::Failed(error) => {
                    self.error.get_or_insert(Box::new(error));
                    Action::Done
                }
            },
            Phase::Open(driver) => match driver.poll_io(now) {
                Next::Io(io) => Action::Io(io),
                Next::Shutdown => Action::Shutdown,
                Next::Done => Action::Done,
            },
        }
    }

    /// Server: the verdict on the request [`Action::Decide`] showed.
    pub fn answer(&mut self, verdict: impl Into<Verdict>, now: Instant) {
        if let Phase::Opening(opening) = &mut self.phase {
            opening.answer(verdict, now);
        }
    }

    /// Reads once, when [`Io::read`] asks for it; `Ready(Ok(0))` is end of stream.
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        match &mut self.phase {
            Phase::Opening(opening) => opening.read_with(read),
            Phase::Open(driver) => driver.read_with(read),
        }
    }

    /// The bytes to write, when [`Io::write`] asks for it, as slices in `out`; how many.
    /// None while a client waits for its transport to connect.
    pub fn write_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        match &self.phase {
            Phase::Opening(opening) if opening.is_connecting() || out.is_empty() => 0,
            Phase::Opening(opening) => {
                out[0] = IoSlice::new(opening.pending());
                usize::from(!opening.pending().is_empty())
            }
            Phase::Open(driver) => driver.write_slices(out),
        }
    }

    /// Writes once, when [`Io::write`] asks for it, through `write`, the transport's
    /// vectored write (`Pending` when it would block), and advances past what it took:
    /// `Ready(Ok(0))` when nothing waits (or a client's transport is still connecting).
    /// A signal's interruption is retried; a failed write, or one of zero bytes, ends the
    /// connection ([`fail_io`](Self::fail_io): [`error`](Self::error) keeps it) and an
    /// error of its kind is returned.
    pub fn write_with(
        &mut self,
        write: impl FnMut(&[IoSlice<'_>]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match core::task::ready!(write_queued(|out| self.write_slices(out), write)) {
            Ok(n) => {
                self.advance(n);
                Poll::Ready(Ok(n))
            }
            Err(error) => {
                let kind = error.kind();
                self.fail_io(error);
                Poll::Ready(Err(kind.into()))
            }
        }
    }

    /// `n` bytes of what [`write_slices`](Self::write_slices) gave were written.
    pub fn advance(&mut self, n: usize) {
        match &mut self.phase {
            Phase::Opening(opening) => opening.advance(n),
            Phase::Open(driver) => driver.advance(n),
        }
    }

    /// The write side is shut ([`Action::Shutdown`]).
    pub fn shutdown_done(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Opening(opening) => opening.shutdown_done(now),
            Phase::Open(driver) => driver.shutdown_done(),
        }
    }

    /// Fires what is due at `now` (see [`Opening::handle_deadline`] and
    /// [`Driver::handle_deadline`]).
    pub fn handle_deadline(&mut self, now: Instant) {
        match &mut self.phase {
            Phase::Opening(opening) => opening.handle_deadline(now),
            Phase::Open(driver) => driver.handle_deadline(now),
        }
    }

    /// The transport failed.
    pub fn fail_io(&mut self, error: io::Error) {
        match &mut self.phase {
            Phase::Opening(opening) => opening.fail_io(error),
            Phase::Open(driver) => {
                driver.fail_io(error.kind());
                self.error.get_or_insert(Box::new(Error::Io(error)));
            }
        }
    }

    /// Client: whether the transport is still connecting.
    pub fn is_connecting(&self) -> bool {
        matches!(&self.phase, Phase::Opening(opening) if opening.is_connecting())
    }

    /// Client: the transport has connected.
    pub fn connected(&mut self, now: Instant) {
        if let Phase::Opening(opening) = &mut self.phase {
            opening.connected(now);
        }
    }

    /// Ends a connection still in its handshake with `error` (an open one is closed
    /// through its driver instead).
    pub fn abort(&mut self, error: Error) {
        if let Phase::Opening(opening) = &mut self.phase {
            opening.abort(error);
        }
    }

    /// The open connection's driver.
    pub fn driver(&self) -> Option<&Driver> {
        match &self.phase {
            Phase::Open(driver) => Some(driver),
            Phase::Opening(_) => None,
        }
    }

    /// The open connection's driver, to send on.
    pub fn driver_mut(&mut self) -> Option<&mut Driver> {
        match &mut self.phase {
            Phase::Open(driver) => Some(driver),
            Phase::Opening(_) => None,
        }
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        match &self.phase {
            Phase::Opening(opening) => opening.pending().len(),
            Phase::Open(driver) => driver.pending_bytes(),
        }
    }

    /// The request path, without the query (server, once accepted).
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// Why the handshake failed or the transport broke, once it has.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }
}
