//! The reconnecting client's brain, shared by the async adapters (feature `std`).
//!
//! [`Supervisor`] sits on top of the pure [`Reconnect`] policy state and turns what
//! happens to a client's connections (an attempt opened, an attempt failed, an open
//! connection ended with some [`Outcome`]) into the changes the application watches
//! ([`StateChange`]) and the next thing the adapter must do ([`Action`]): connect now,
//! sleep until a deadline, or stop. It also holds the application's sends while no
//! connection is open, per the [`OfflineSends`] policy, and hands them back for replay
//! when the next connection opens.
//!
//! Like the rest of the core it does no I/O and reads no clock or RNG: the adapter
//! passes `now` and, for every failure, a uniform random `u64` for the backoff jitter.
//! That keeps the adapters' part to moving bytes and sleeping (see `ReconnectingClient`
//! in `sockeye-tokio` and `sockeye-smol`).
//!
//! # The state changes
//!
//! Each [`StateChange`] has a one-line `Display` form, which the example client prints as
//! `# ...` lines:
//!
//! | change | display |
//! | --- | --- |
//! | [`Connecting`](StateChange::Connecting) | `connecting` (the first connect), `connecting (attempt 3)` |
//! | [`Open`](StateChange::Open) | `open` |
//! | [`Failed`](StateChange::Failed) (an attempt failed before opening) | `connect failed: connection refused`, `handshake rejected with HTTP 403` ... |
//! | [`Closed`](StateChange::Closed) (an open connection ended) | `closed clean code=1008 reason=...`, `closed abnormal: ...`, `closed timeout: keepalive` |
//! | [`Reconnecting`](StateChange::Reconnecting) | `reconnecting in 1200ms (attempt 3)` |
//! | [`GaveUp`](StateChange::GaveUp) | `gave up: handshake rejected with HTTP 403`, `gave up after 5 reconnect attempts` |
//!
//! A client's life reads as: `Connecting`, then `Open` or `Failed`; after `Failed` or
//! `Closed` comes `Reconnecting` (then `Connecting` again once the delay is over) or
//! `GaveUp`, which is final. When the application itself closes (see
//! [`Supervisor::stop`]) the last change is the `Closed` of the open connection, if there
//! was one, and nothing is retried.
//!
//! # Sends while disconnected
//!
//! While no connection is open (connecting, waiting to reconnect), an application send goes
//! to [`Supervisor::offline_send`], which follows [`OfflineSends`]:
//!
//! - [`OfflineSends::Queue`] (the default, 256 messages / 1 MiB): text and binary messages
//!   are kept, in order, and [`Supervisor::handle_open`] returns them to be sent on the new
//!   connection before anything else the application sends. A message that does not fit
//!   is refused with [`NotSent::QueueFull`] (the queue keeps what it has: older messages
//!   win). Pings, Pongs and Closes are never queued ([`NotSent::Disconnected`]): they only
//!   mean something on the connection they were meant for.
//! - [`OfflineSends::Reject`]: every send fails at once with [`NotSent::Disconnected`], and
//!   the application decides what to do (typically: resynchronise after the next `Open`).
//!
//! Either way the message comes back in the error ([`Unsent`]), so nothing is lost
//! silently. After the client stopped, sends fail with [`NotSent::Stopped`], and
//! [`Supervisor::take_queued`] returns what was still queued. Delivery is at most once:
//! a message written to a connection that then dies is not sent again.
//!
//! ```
//! use core::time::Duration;
//! use sockeye_engine::supervisor::{Action, ReconnectOptions, StateChange, Supervisor};
//! use sockeye_engine::{Abnormal, Message, Outcome};
//! use sockeye_proto::reconnect_policy::{Failure, IoKind};
//! use sockeye_proto::Instant;
//!
//! let mut client = Supervisor::new(&ReconnectOptions::default());
//! let t = |ms| Instant::from_millis(ms);
//!
//! assert_eq!(client.poll_action(t(0)), Action::Connect { attempt: 0 });
//! client.handle_open(t(50));
//! let changes: Vec<String> = client.changes().map(|c| c.to_string()).collect();
//! assert_eq!(changes, ["connecting", "open"]);
//!
//! // The server goes away; `u64::MAX` draws the whole first ceiling (500 ms).
//! client.handle_closed(Outcome::Abnormal(Abnormal::Eof), u64::MAX, t(2_000));
//! assert_eq!(client.poll_action(t(2_100)), Action::Wait { until: t(2_500) });
//! client.offline_send(Message::text("queued")).unwrap();
//! assert_eq!(client.poll_action(t(2_500)), Action::Connect { attempt: 1 });
//! client.handle_connect_failure(Failure::ConnectFailed(IoKind::Refused), 0, t(2_501));
//! let changes: Vec<String> = client.changes().map(|c| c.to_string()).collect();
//! assert_eq!(
//!     changes,
//!     [
//!         "closed abnormal: end of stream without a close handshake (1006)",
//!         "reconnecting in 500ms (attempt 1)",
//!         "connecting (attempt 1)",
//!         "connect failed: connection refused",
//!         "reconnecting in 10ms (attempt 2)",
//!     ]
//! );
//! assert_eq!(client.poll_action(t(2_511)), Action::Connect { attempt: 2 });
//! let replay = client.handle_open(t(2_520));
//! assert_eq!(replay, [Message::text("queued")]);
//! ```

use core::fmt;
use core::time::Duration;
use std::collections::VecDeque;
use std::vec::Vec;

use crate::{Abnormal, Message, Outcome, Settings};
use sockeye_proto::reconnect_policy::{
    Decision, Failure, GiveUp, IoKind, Reconnect, ReconnectPolicy,
};
use sockeye_proto::Instant;
use sockeye_proto::KeepAlive;
use sockeye_proto::Timeout;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// What a reconnecting client does with sends while no connection is open (see the
/// [module docs](self#sends-while-disconnected)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OfflineSends {
    /// Keep text and binary messages, up to both bounds, and send them first on the next
    /// connection. A message that would cross a bound is refused with
    /// [`NotSent::QueueFull`].
    Queue {
        /// The most messages held.
        max_messages: usize,
        /// The most payload bytes held.
        max_bytes: usize,
    },
    /// Refuse every send at once with [`NotSent::Disconnected`].
    Reject,
}

impl OfflineSends {
    /// The default: a queue of up to 256 messages and 1 MiB.
    pub const DEFAULT: OfflineSends = OfflineSends::Queue {
        max_messages: 256,
        max_bytes: 1 << 20,
    };
}

impl Default for OfflineSends {
    fn default() -> Self {
        OfflineSends::DEFAULT
    }
}

/// The settings of a reconnecting client beyond those of one connection: the reconnect
/// policy, the keepalive, and the offline send policy.
///
/// ```
/// # use sockeye_engine::supervisor::{OfflineSends, ReconnectOptions};
/// # use sockeye_engine::Settings;
/// # use sockeye_proto::reconnect_policy::ReconnectPolicy;
/// # use sockeye_proto::KeepAlive;
/// use std::time::Duration;
///
/// let options = ReconnectOptions::default()
///     .with_policy(ReconnectPolicy::DEFAULT.with_max_attempts(Some(10)))
///     .with_keepalive(Some(KeepAlive::new(Duration::from_secs(5), Duration::from_secs(3))))
///     .with_offline(OfflineSends::Reject);
/// let settings = options.apply(Settings::default());
/// assert_eq!(settings.protocol.keepalive.unwrap().interval, Duration::from_secs(5));
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ReconnectOptions {
    /// Backoff, attempt limit, stability reset and failure classification. Default
    /// [`ReconnectPolicy::DEFAULT`].
    pub policy: ReconnectPolicy,
    /// The keepalive of every connection (it overrides the one in the connection's
    /// [`Config`](sockeye_proto::Config)): the way a client notices a connection that died
    /// silently. Default [`ReconnectOptions::DEFAULT_KEEPALIVE`] (ping after 20 s of quiet,
    /// give up 10 s later); `None` turns it off.
    pub keepalive: Option<KeepAlive>,
    /// Sends while disconnected. Default [`OfflineSends::DEFAULT`].
    pub offline: OfflineSends,
}

impl ReconnectOptions {
    /// The keepalive a reconnecting client uses unless told otherwise: a Ping after 20 s
    /// without inbound bytes, and the connection is declared dead if nothing arrives in
    /// the 10 s after it.
    pub const DEFAULT_KEEPALIVE: KeepAlive =
        KeepAlive::new(Duration::from_secs(20), Duration::from_secs(10));

    /// The defaults: [`ReconnectPolicy::DEFAULT`], [`Self::DEFAULT_KEEPALIVE`],
    /// [`OfflineSends::DEFAULT`].
    pub const DEFAULT: ReconnectOptions = ReconnectOptions {
        policy: ReconnectPolicy::DEFAULT,
        keepalive: Some(Self::DEFAULT_KEEPALIVE),
        offline: OfflineSends::DEFAULT,
    };

    /// Sets [`ReconnectOptions::policy`].
    pub const fn with_policy(mut self, policy: ReconnectPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`ReconnectOptions::keepalive`].
    pub const fn with_keepalive(mut self, keepalive: Option<KeepAlive>) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Sets [`ReconnectOptions::offline`].
    pub const fn with_offline(mut self, offline: OfflineSends) -> Self {
        self.offline = offline;
        self
    }

    /// `settings` with this keepalive: what each connection of the client is opened with.
    pub fn apply(&self, settings: Settings) -> Settings {
        let protocol = settings.protocol.with_keepalive(self.keepalive);
        settings.with_protocol(protocol)
    }
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        ReconnectOptions::DEFAULT
    }
}

// ---------------------------------------------------------------------------------------------
// What the application sees
// ---------------------------------------------------------------------------------------------

/// A change in a reconnecting client's connection state (see the
/// [module docs](self#the-state-changes) for the order and the display forms).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StateChange {
    /// A connection attempt starts. `attempt` is 0 for the first connect and counts
    /// reconnect attempts from 1 (it starts over after a stable connection).
    Connecting {
        /// 0 for the first connect, then the reconnect attempt.
        attempt: u32,
    },
    /// The handshake completed: messages flow (queued sends were handed over first).
    Open,
    /// The attempt failed before the connection opened (refused, timed out, rejected by
    /// the server ...).
    Failed(Failure),
    /// The open connection ended: cleanly (with the server's code and reason),
    /// abnormally (with the cause) or by a timer (keepalive, close handshake).
    Closed(Outcome),
    /// The client will connect again after `delay`.
    Reconnecting {
        /// The jittered delay before the attempt.
        delay: Duration,
        /// The reconnect attempt that will follow.
        attempt: u32,
    },
    /// The client stopped reconnecting (a fatal failure, or too many attempts). Final.
    GaveUp(GiveUp),
}

impl StateChange {
    /// Whether nothing follows this change ([`StateChange::GaveUp`]).
    pub fn is_final(&self) -> bool {
        matches!(self, StateChange::GaveUp(_))
    }
}

impl fmt::Display for StateChange {
    /// `connecting (attempt 3)`, `open`, `connect failed: connection refused`,
    /// `closed clean code=1000 reason=bye`, `reconnecting in 1200ms (attempt 3)`,
    /// `gave up: closed by the server with code 1008` ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateChange::Connecting { attempt: 0 } => f.write_str("connecting"),
            StateChange::Connecting { attempt } => write!(f, "connecting (attempt {attempt})"),
            StateChange::Open => f.write_str("open"),
            StateChange::Failed(failure) => failure.fmt(f),
            StateChange::Closed(outcome) => write!(f, "closed {outcome}"),
            StateChange::Reconnecting { delay, attempt } => write!(
                f,
                "reconnecting in {}ms (attempt {attempt})",
                delay.as_millis()
            ),
            StateChange::GaveUp(give_up) => give_up.fmt(f),
        }
    }
}

/// Why a send was not taken (the message is handed back in [`Unsent`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotSent {
    /// No connection is open, and the policy is [`OfflineSends::Reject`] (or the message is
    /// a control frame, which is never queued).
    Disconnected,
    /// No connection is open and the offline queue is full.
    QueueFull,
    /// The client stopped (it gave up, or the application closed it).
    Stopped,
}

impl fmt::Display for NotSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotSent::Disconnected => "not connected",
            NotSent::QueueFull => "not connected and the send queue is full",
            NotSent::Stopped => "the client has stopped",
        })
    }
}

/// A message the client did not take, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsent {
    /// Why.
    pub reason: NotSent,
    /// The message, back to the caller.
    pub message: Message,
}

impl fmt::Display for Unsent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "message not sent: {}", self.reason)
    }
}

impl std::error::Error for Unsent {}

/// What a reconnecting client yields: a change of connection state, or a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The connection state changed (`Display` gives the `# ...` line of the example
    /// client: `connecting (attempt 2)`, `open`, `closed clean code=1000 reason=bye`,
    /// `reconnecting in 1200ms (attempt 3)`, `gave up: ...`).
    State(StateChange),
    /// A message from the server: text and binary, and also pings, pongs and the
    /// server's Close, as the adapters' `WebSocket::recv` gives them.
    Message(Message),
}

/// Where a reconnecting client's send went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Sent {
    /// Written to the open connection (delivery is at most once: a connection that dies
    /// right after may lose it).
    Written,
    /// Held for the next connection ([`OfflineSends::Queue`]).
    Queued,
}

/// Why a reconnecting client's send failed; `E` is the adapter's error type.
#[derive(Debug)]
#[non_exhaustive]
pub enum SendError<E> {
    /// The client did not take the message ([`NotSent`]: disconnected under
    /// [`OfflineSends::Reject`], queue full, or stopped); the message is handed back.
    NotSent(Unsent),
    /// The connection was open but the message could not be written: the connection
    /// failed meanwhile (the client reports it and reconnects), or the message is invalid
    /// (a control payload over 125 bytes ...).
    Failed(E),
}

impl<E: fmt::Display> fmt::Display for SendError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::NotSent(unsent) => unsent.fmt(f),
            SendError::Failed(error) => write!(f, "send failed: {error}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for SendError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SendError::NotSent(unsent) => Some(unsent),
            SendError::Failed(error) => Some(error),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Failures from outcomes
// ---------------------------------------------------------------------------------------------

impl From<&Outcome> for Failure {
    /// How an ended connection counts for the reconnect policy: a clean close is
    /// [`Failure::Closed`] with the server's code; end of stream is
    /// [`Failure::Abnormal`]; an I/O error is [`Failure::Io`]; a protocol error is
    /// [`Failure::ProtocolError`] with its close code; the keepalive, idle and write-stall timers are
    /// [`Failure::KeepAliveTimedOut`] (nothing arrived: the link is presumed dead); the
    /// close timer is [`Failure::CloseTimedOut`].
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Clean { received, .. } => Failure::Closed {
                code: received.as_ref().map(|close| close.code),
            },
            Outcome::Abnormal(Abnormal::Eof) => Failure::Abnormal,
            Outcome::Abnormal(Abnormal::Io(kind)) => Failure::Io(IoKind::from(*kind)),
            Outcome::Abnormal(Abnormal::Protocol(error)) => {
                Failure::ProtocolError(error.close_code())
            }
            Outcome::TimedOut(Timeout::KeepAlive | Timeout::Idle | Timeout::WriteStall) => {
                Failure::KeepAliveTimedOut
            }
            Outcome::TimedOut(Timeout::Close) => Failure::CloseTimedOut,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The supervisor
// ---------------------------------------------------------------------------------------------

/// What the adapter should do next (see [`Supervisor::poll_action`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Start a connection attempt now; report its result with
    /// [`handle_open`](Supervisor::handle_open) or
    /// [`handle_connect_failure`](Supervisor::handle_connect_failure).
    Connect {
        /// 0 for the first connect, then the reconnect attempt.
        attempt: u32,
    },
    /// Keep driving the attempt or the connection in progress; report how it ends.
    Drive,
    /// Sleep until `until`, then ask again (sends may arrive meanwhile).
    Wait {
        /// When the next attempt is due.
        until: Instant,
    },
    /// The client is done: drop everything and end the application's event stream.
    Stop,
}

/// What [`Supervisor::stop`] asks of the adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stopping {
    /// A connection is open: start its close handshake and keep driving it; report the end
    /// with [`handle_closed`](Supervisor::handle_closed) (nothing is retried).
    CloseConnection,
    /// Nothing is open: drop any attempt in progress or timer. The client has stopped.
    Stopped,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not started: the first `poll_action` connects.
    Idle,
    Connecting {
        attempt: u32,
    },
    Open {
        closing: bool,
    },
    Waiting {
        attempt: u32,
        until: Instant,
    },
    Stopped,
}

/// The reconnecting client as a state machine: connection results in, state changes and
/// actions out, plus the offline send queue. See the [module docs](self).
///
/// Drive it from one place (the adapter's event loop):
///
/// 1. [`poll_action`](Self::poll_action)`(now)`: connect, sleep until a deadline, keep
///    driving, or stop.
/// 2. Report each attempt's result: [`handle_open`](Self::handle_open) (which hands back
///    the queued sends to replay) or [`handle_connect_failure`](Self::handle_connect_failure);
///    and an open connection's end: [`handle_closed`](Self::handle_closed).
/// 3. After each call, drain [`poll_change`](Self::poll_change) (or
///    [`changes`](Self::changes)) to the application.
///
/// Sends go to the open connection when [`is_open`](Self::is_open), and otherwise to
/// [`offline_send`](Self::offline_send). The application's close is
/// [`stop`](Self::stop).
#[derive(Debug)]
pub struct Supervisor {
    reconnect: Reconnect,
    offline: OfflineSends,
    phase: Phase,
    queue: VecDeque<Message>,
    queued_bytes: usize,
    changes: VecDeque<StateChange>,
}

impl Supervisor {
    /// A client that has not connected yet.
    pub fn new(options: &ReconnectOptions) -> Self {
        Supervisor {
            reconnect: Reconnect::new(options.policy),
            offline: options.offline,
            phase: Phase::Idle,
            queue: VecDeque::new(),
            queued_bytes: 0,
            changes: VecDeque::new(),
        }
    }

    fn emit(&mut self, change: StateChange) {
        crate::trace::debug!(?change, "reconnecting client");
        self.changes.push_back(change);
    }

    /// The next state change for the application, oldest first.
    pub fn poll_change(&mut self) -> Option<StateChange> {
        self.changes.pop_front()
    }

    /// Drains every pending state change.
    pub fn changes(&mut self) -> impl Iterator<Item = StateChange> + '_ {
        self.changes.drain(..)
    }

    /// What to do next, at `now`. In the first call, and once a reconnect delay is over,
    /// this starts an attempt (and emits [`StateChange::Connecting`]); while an attempt or a
    /// connection is in progress it says [`Action::Drive`]; while waiting it gives the
    /// deadline; once stopped, [`Action::Stop`].
    pub fn poll_action(&mut self, now: Instant) -> Action {
        match self.phase {
            Phase::Idle => self.start_attempt(0),
            Phase::Waiting { attempt, until } if now >= until => self.start_attempt(attempt),
            Phase::Waiting { until, .. } => Action::Wait { until },
            Phase::Connecting { .. } | Phase::Open { .. } => Action::Drive,
            Phase::Stopped => Action::Stop,
        }
    }

    fn start_attempt(&mut self, attempt: u32) -> Action {
        self.phase = Phase::Connecting { attempt };
        self.emit(StateChange::Connecting { attempt });
        Action::Connect { attempt }
    }

    /// The attempt opened at `now` (the handshake completed): emits
    /// [`StateChange::Open`] and returns the queued sends, oldest first, to write on the new
    /// connection before anything else.
    pub fn handle_open(&mut self, now: Instant) -> VecDeque<Message> {
        if self.phase == Phase::Stopped {
            return VecDeque::new();
        }
        self.phase = Phase::Open { closing: false };
        self.reconnect.handle_connected(now);
        self.emit(StateChange::Open);
        self.queued_bytes = 0;
        core::mem::take(&mut self.queue)
    }

    /// The attempt failed before opening, at `now`; `random` is a uniform draw for the
    /// backoff. Emits [`StateChange::Failed`], then [`StateChange::Reconnecting`] or
    /// [`StateChange::GaveUp`].
    pub fn handle_connect_failure(&mut self, failure: Failure, random: u64, now: Instant) {
        if self.phase == Phase::Stopped {
            return;
        }
        self.emit(StateChange::Failed(failure));
        self.decide(failure, random, now);
    }

    /// The open connection ended at `now` with `outcome`; `random` is a uniform draw for
    /// the backoff. Emits [`StateChange::Closed`], then (unless the application asked to
    /// close, see [`stop`](Self::stop)) [`StateChange::Reconnecting`] or
    /// [`StateChange::GaveUp`].
    pub fn handle_closed(&mut self, outcome: Outcome, random: u64, now: Instant) {
        let closing = matches!(self.phase, Phase::Open { closing: true });
        if self.phase == Phase::Stopped {
            return;
        }
        let failure = Failure::from(&outcome);
        self.emit(StateChange::Closed(outcome));
        if closing {
            self.phase = Phase::Stopped;
        } else {
            self.decide(failure, random, now);
        }
    }

    fn decide(&mut self, failure: Failure, random: u64, now: Instant) {
        match self.reconnect.handle_failure(failure, random, now) {
            Decision::Retry {
                attempt,
                delay,
                deadline,
            } => {
                self.phase = Phase::Waiting {
                    attempt,
                    until: deadline,
                };
                self.changes
                    .push_back(StateChange::Reconnecting { delay, attempt });
            }
            Decision::GiveUp(give_up) => {
                self.phase = Phase::Stopped;
                self.emit(StateChange::GaveUp(give_up));
            }
        }
    }

    /// The application closes the client. With a connection open, the adapter closes it
    /// ([`Stopping::CloseConnection`]) and reports its end as usual; otherwise the client
    /// stops at once. Either way nothing is retried, and later sends fail with
    /// [`NotSent::Stopped`].
    pub fn stop(&mut self) -> Stopping {
        match self.phase {
            Phase::Open { .. } => {
                self.phase = Phase::Open { closing: true };
                Stopping::CloseConnection
            }
            _ => {
                self.phase = Phase::Stopped;
                Stopping::Stopped
            }
        }
    }

    /// Whether a connection is open (sends go to it).
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open { .. })
    }

    /// Whether the client is done (gave up or was closed).
    pub fn is_stopped(&self) -> bool {
        self.phase == Phase::Stopped
    }

    /// Whether the application asked to close ([`stop`](Self::stop)).
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Open { closing: true } | Phase::Stopped)
    }

    /// A send with no usable connection: queued or refused per [`OfflineSends`] (see the
    /// [module docs](self#sends-while-disconnected)). The adapter also calls this when the
    /// connection it has is already closing, so that the message is not lost in it.
    pub fn offline_send(&mut self, message: Message) -> Result<(), Unsent> {
        if self.is_closing() {
            return Err(Unsent {
                reason: NotSent::Stopped,
                message,
            });
        }
        let OfflineSends::Queue {
            max_messages,
            max_bytes,
        } = self.offline
        else {
            return Err(Unsent {
                reason: NotSent::Disconnected,
                message,
            });
        };
        if !message.is_data() {
            return Err(Unsent {
                reason: NotSent::Disconnected,
                message,
            });
        }
        let size = message.as_bytes().len();
        if self.queue.len() >= max_messages || size > max_bytes.saturating_sub(self.queued_bytes) {
            return Err(Unsent {
                reason: NotSent::QueueFull,
                message,
            });
        }
        self.queued_bytes += size;
        self.queue.push_back(message);
        Ok(())
    }

    /// Messages waiting for the next connection.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Takes the queued messages (say, after the client stopped, to keep them elsewhere).
    pub fn take_queued(&mut self) -> Vec<Message> {
        self.queued_bytes = 0;
        core::mem::take(&mut self.queue).into()
    }

    /// The reconnect state (the attempt count, when the connection opened).
    pub fn reconnect(&self) -> &Reconnect {
        &self.reconnect
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CloseReason;
    use sockeye_proto::reconnect_policy::Backoff;
    use sockeye_proto::CloseCode;
    use sockeye_proto::ProtocolError;
    use std::string::{String, ToString};
    use std::vec;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn drain(s: &mut Supervisor) -> Vec<String> {
        s.changes().map(|c| c.to_string()).collect()
    }

    fn refused() -> Failure {
        Failure::ConnectFailed(IoKind::Refused)
    }

    fn clean_from_server(code: CloseCode, reason: &str) -> Outcome {
        Outcome::Clean {
            sent: Some(code),
            received: Some(CloseReason::new(code, reason)),
            initiated_locally: false,
        }
    }

    #[test]
    fn first_connect_then_open() {
        let mut s = Supervisor::new(&ReconnectOptions::default());
        assert!(!s.is_open());
        assert_eq!(s.poll_action(t(0)), Action::Connect { attempt: 0 });
        assert_eq!(s.poll_action(t(1)), Action::Drive);
        assert_eq!(
            s.poll_change(),
            Some(StateChange::Connecting { attempt: 0 })
        );
        assert!(s.handle_open(t(5)).is_empty());
        assert!(s.is_open());
        assert_eq!(s.poll_change(), Some(StateChange::Open));
        assert_eq!(s.poll_change(), None);
        assert_eq!(s.poll_action(t(10)), Action::Drive);
        assert_eq!(s.reconnect().connected_since(), Some(t(5)));
    }

    /// A server restart in virtual time with scripted draws: the exact schedule.
    #[test]
    fn restart_schedule_with_fixed_draws() {
        let mut s = Supervisor::new(&ReconnectOptions::default());
        s.poll_action(t(0));
        s.handle_open(t(10));
        s.handle_closed(Outcome::Abnormal(Abnormal::Eof), u64::MAX, t(3_000));
        assert_eq!(
            drain(&mut s),
            [
                "connecting",
                "open",
                "closed abnormal: end of stream without a close handshake (1006)",
                "reconnecting in 500ms (attempt 1)",
            ]
        );
        assert!(!s.is_open());
        // Early calls only say how long to wait, and emit nothing.
        assert_eq!(s.poll_action(t(3_000)), Action::Wait { until: t(3_500) });
        assert_eq!(s.poll_action(t(3_499)), Action::Wait { until: t(3_500) });
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.poll_action(t(3_500)), Action::Connect { attempt: 1 });
        // Refused twice: ceilings 1 s then 2 s, draws at the top and the middle.
        s.handle_connect_failure(refused(), u64::MAX, t(3_501));
        assert_eq!(s.poll_action(t(4_501)), Action::Connect { attempt: 2 });
        s.handle_connect_failure(refused(), 1 << 63, t(4_502));
        assert_eq!(
            s.poll_action(t(4_502)),
            Action::Wait {
                until: t(4_502) + Duration::from_nanos(10_000_000 + 995_000_000)
            }
        );
        assert_eq!(s.poll_action(t(5_600)), Action::Connect { attempt: 3 });
        s.handle_open(t(5_610));
        assert_eq!(
            drain(&mut s),
            [
                "connecting (attempt 1)",
                "connect failed: connection refused",
                "reconnecting in 1000ms (attempt 2)",
                "connecting (attempt 2)",
                "connect failed: connection refused",
                "reconnecting in 1005ms (attempt 3)",
                "connecting (attempt 3)",
                "open",
            ]
        );
        // Up for 10 s (stable_after): the count starts over.
        s.handle_closed(
            clean_from_server(CloseCode::SERVICE_RESTART, "deploy"),
            0,
            t(15_610),
        );
        assert_eq!(
            drain(&mut s),
            [
                "closed clean code=1012 reason=deploy",
                "reconnecting in 10ms (attempt 1)"
            ]
        );
    }

    #[test]
    fn rejected_403_gives_up_at_once() {
        let mut s = Supervisor::new(&ReconnectOptions::default());
        s.poll_action(t(0));
        s.handle_connect_failure(
            Failure::Rejected {
                status: 403,
                retry_after: None,
            },
            0,
            t(1),
        );
        assert_eq!(
            drain(&mut s),
            [
                "connecting",
                "handshake rejected with HTTP 403",
                "gave up: handshake rejected with HTTP 403",
            ]
        );
        assert!(s.is_stopped());
        assert_eq!(s.poll_action(t(100_000)), Action::Stop);
        assert_eq!(
            s.offline_send(Message::text("x")).unwrap_err().reason,
            NotSent::Stopped
        );
    }

    #[test]
    fn policy_close_1008_gives_up_with_code_and_reason() {
        let mut s = Supervisor::new(&ReconnectOptions::default());
        s.poll_action(t(0));
        s.handle_open(t(1));
        let outcome = clean_from_server(CloseCode::POLICY, "banned");
        s.handle_closed(outcome.clone(), 0, t(2));
        let changes: Vec<StateChange> = s.changes().collect();
        assert_eq!(
            changes,
            [
                StateChange::Connecting { attempt: 0 },
                StateChange::Open,
                StateChange::Closed(outcome),
                StateChange::GaveUp(GiveUp::Fatal(Failure::Closed {
                    code: Some(CloseCode::POLICY)
                })),
            ]
        );
        assert_eq!(
            changes[2].to_string(),
            "closed clean code=1008 reason=banned"
        );
        assert_eq!(
            changes[3].to_string(),
            "gave up: closed by the server with code 1008"
        );
        assert!(changes[3].is_final() && !changes[2].is_final());
        assert_eq!(s.poll_action(t(3)), Action::Stop);
    }

    #[test]
    fn max_attempts_gives_up() {
        let options = ReconnectOptions::default().with_policy(
            ReconnectPolicy::DEFAULT
                .with_max_attempts(Some(2))
                .with_backoff(Backoff::DEFAULT.with_initial(Duration::from_millis(100))),
        );
        let mut s = Supervisor::new(&options);
        let mut now = t(0);
        let mut actions = vec![];
        for _ in 0..10 {
            match s.poll_action(now) {
                Action::Connect { attempt } => {
                    actions.push(attempt);
                    s.handle_connect_failure(refused(), u64::MAX, now);
                }
                Action::Wait { until } => now = until,
                Action::Stop => break,
                Action::Drive => unreachable!(),
            }
        }
        assert_eq!(actions, [0, 1, 2]);
        let changes = drain(&mut s);
        assert_eq!(
            changes.last().map(String::as_str),
            Some("gave up after 2 reconnect attempts")
        );
        assert_eq!(
            changes
                .iter()
                .filter(|c| c.starts_with("reconnecting in"))
                .collect::<Vec<_>>(),
            [
                "reconnecting in 100ms (attempt 1)",
                "reconnecting in 200ms (attempt 2)"
            ]
        );
        assert_eq!(now, t(300));
    }

    #[test]
    fn keepalive_timeout_and_other_ends_are_retried() {
        for (outcome, failure, line) in [
            (
                Outcome::TimedOut(Timeout::KeepAlive),
                Failure::KeepAliveTimedOut,
                "closed timeout: keepalive",
            ),
            (
                Outcome::TimedOut(Timeout::Idle),
                Failure::KeepAliveTimedOut,
                "closed timeout: idle",
            ),
            (
                Outcome::TimedOut(Timeout::Close),
                Failure::CloseTimedOut,
                "closed timeout: close handshake",
            ),
            (
                Outcome::Abnormal(Abnormal::Io(std::io::ErrorKind::ConnectionReset)),
                Failure::Io(IoKind::Reset),
                "closed abnormal: i/o error: connection reset",
            ),
            (
                clean_from_server(CloseCode::NORMAL, ""),
                Failure::Closed {
                    code: Some(CloseCode::NORMAL),
                },
                "closed clean code=1000 reason=",
            ),
            (
                Outcome::Clean {
                    sent: None,
                    received: None,
                    initiated_locally: false,
                },
                Failure::Closed { code: None },
                "closed clean code=1005 (no code)",
            ),
        ] {
            assert_eq!(Failure::from(&outcome), failure);
            let mut s = Supervisor::new(&ReconnectOptions::default());
            s.poll_action(t(0));
            s.handle_open(t(0));
            s.handle_closed(outcome, u64::MAX, t(1));
            assert_eq!(
                drain(&mut s)[2..],
                [line, "reconnecting in 500ms (attempt 1)"]
            );
        }
        let protocol = Outcome::Abnormal(Abnormal::Protocol(ProtocolError::InvalidUtf8));
        assert_eq!(
            Failure::from(&protocol),
            Failure::ProtocolError(CloseCode::INVALID_PAYLOAD)
        );
    }

    #[test]
    fn offline_queue_is_bounded_and_replayed_in_order() {
        let options = ReconnectOptions::default().with_offline(OfflineSends::Queue {
            max_messages: 3,
            max_bytes: 10,
        });
        let mut s = Supervisor::new(&options);
        s.poll_action(t(0));
        // Before the first open, sends queue too.
        s.offline_send(Message::text("abcd")).unwrap();
        s.offline_send(Message::binary(vec![1, 2, 3, 4])).unwrap();
        // 8 of 10 bytes used: 3 more do not fit, 2 do.
        let full = s.offline_send(Message::text("xyz")).unwrap_err();
        assert_eq!(
            (full.reason, full.message.clone()),
            (NotSent::QueueFull, Message::text("xyz"))
        );
        assert_eq!(
            full.to_string().as_str(),
            "message not sent: not connected and the send queue is full"
        );
        s.offline_send(Message::text("ef")).unwrap();
        // Three messages: full by count, even when empty.
        assert_eq!(
            s.offline_send(Message::text("")).unwrap_err().reason,
            NotSent::QueueFull
        );
        // Control frames are never queued.
        assert_eq!(
            s.offline_send(Message::Ping(vec![])).unwrap_err().reason,
            NotSent::Disconnected
        );
        assert_eq!(s.queued(), 3);
        let replay: Vec<Message> = s.handle_open(t(1)).into();
        assert_eq!(
            replay,
            [
                Message::text("abcd"),
                Message::binary(vec![1, 2, 3, 4]),
                Message::text("ef")
            ]
        );
        assert_eq!(s.queued(), 0);
        // The byte count starts over with the queue.
        s.handle_closed(Outcome::Abnormal(Abnormal::Eof), 0, t(2));
        s.offline_send(Message::text("0123456789")).unwrap();
        assert!(s.handle_open(t(100)).len() == 1);
    }

    #[test]
    fn reject_policy_refuses_every_offline_send() {
        let options = ReconnectOptions::default().with_offline(OfflineSends::Reject);
        let mut s = Supervisor::new(&options);
        s.poll_action(t(0));
        let unsent = s.offline_send(Message::text("now")).unwrap_err();
        assert_eq!(unsent.reason, NotSent::Disconnected);
        assert_eq!(unsent.message, Message::text("now"));
        assert!(s.handle_open(t(1)).is_empty());
    }

    #[test]
    fn stop_while_open_closes_then_ends_without_retry() {
        let mut s = Supervisor::new(&ReconnectOptions::default());
        s.poll_action(t(0));
        s.handle_open(t(1));
        assert_eq!(s.stop(), Stopping::CloseConnection);
        assert!(s.is_open() && s.is_closing());
        assert_eq!(s.poll_action(t(2)), Action::Drive);
        // Sends during the close are refused (the connection is going away).
        assert_eq!(
            s.offline_send(Message::text("late")).unwrap_err().reason,
            NotSent::Stopped
        );
        let outcome = Outcome::Clean {
            sent: Some(CloseCode::NORMAL),
            received: Some(CloseReason::new(CloseCode::NORMAL, "")),
            initiated_locally: true,
        };
        s.handle_closed(outcome, 0, t(3));
        assert_eq!(
            drain(&mut s),
            ["connecting", "open", "closed clean code=1000 reason="]
        );
        assert_eq!(s.poll_action(t(4)), Action::Stop);
        // Late reports change nothing.
        s.handle_closed(Outcome::Abnormal(Abnormal::Eof), 0, t(5));
        s.handle_connect_failure(refused(), 0, t(5));
        assert!(s.handle_open(t(5)).is_empty());
        assert!(drain(&mut s).is_empty());
        assert_eq!(s.stop(), Stopping::Stopped);
    }

    #[test]
    fn stop_while_waiting_or_connecting_stops_at_once() {
        let mut s = Supervisor::new(&ReconnectOptions::default());
        s.poll_action(t(0));
        s.offline_send(Message::text("kept")).unwrap();
        s.handle_connect_failure(refused(), 0, t(1));
        assert!(matches!(s.poll_action(t(1)), Action::Wait { .. }));
        assert_eq!(s.stop(), Stopping::Stopped);
        assert_eq!(s.poll_action(t(1_000)), Action::Stop);
        assert_eq!(s.take_queued(), [Message::text("kept")]);

        let mut s = Supervisor::new(&ReconnectOptions::default());
        s.poll_action(t(0));
        assert_eq!(s.stop(), Stopping::Stopped);
        s.handle_connect_failure(refused(), 0, t(1));
        assert_eq!(drain(&mut s), ["connecting"]);
        assert_eq!(s.poll_action(t(1)), Action::Stop);
    }

    #[test]
    fn options_apply_the_keepalive() {
        let settings = ReconnectOptions::default().apply(Settings::default());
        assert_eq!(
            settings.protocol.keepalive,
            Some(KeepAlive::new(
                Duration::from_secs(20),
                Duration::from_secs(10)
            ))
        );
        let off = ReconnectOptions::default()
            .with_keepalive(None)
            .apply(Settings::default());
        assert_eq!(off.protocol.keepalive, None);
        assert_eq!(OfflineSends::default(), OfflineSends::DEFAULT);
    }

    #[test]
    fn display_forms() {
        let lines = [
            (StateChange::Connecting { attempt: 0 }, "connecting"),
            (
                StateChange::Connecting { attempt: 4 },
                "connecting (attempt 4)",
            ),
            (StateChange::Open, "open"),
            (
                StateChange::Failed(Failure::HandshakeTimedOut),
                "handshake timed out",
            ),
            (
                StateChange::Reconnecting {
                    delay: Duration::from_micros(1_200_999),
                    attempt: 3,
                },
                "reconnecting in 1200ms (attempt 3)",
            ),
            (
                StateChange::GaveUp(GiveUp::MaxAttempts { attempts: 5 }),
                "gave up after 5 reconnect attempts",
            ),
        ];
        for (change, line) in lines {
            assert_eq!(change.to_string(), line);
        }
        assert_eq!(NotSent::Disconnected.to_string(), "not connected");
    }
}
