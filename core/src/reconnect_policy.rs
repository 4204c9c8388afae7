//! Reconnect policy: exponential backoff with full jitter, as pure data.
//!
//! A reconnecting client asks one question whenever a connection attempt fails or an open
//! connection ends: *try again, and when?* [`Reconnect`] answers it without a clock or an RNG:
//! the caller passes the current [`Instant`] and a uniform random `u64`, and gets back a
//! [`Decision`]: retry at a deadline (with the delay and the attempt number), or give up
//! (with the reason).
//!
//! - **Backoff** ([`Backoff`]): the ceiling for reconnect attempt `n` (counted from 1) is
//!   `min(cap, initial × multiplierⁿ⁻¹)`; the delay is drawn uniformly from
//!   `[min(floor, ceiling), ceiling]` ("full jitter", as in the AWS architecture blog's
//!   *Exponential Backoff And Jitter*). Defaults: 500 ms, ×2, 30 s, floor 10 ms.
//! - **Attempts** ([`ReconnectPolicy`]): an optional maximum number of reconnect attempts in a
//!   row (default: unlimited), and a reset: a connection that stayed up for `stable_after`
//!   (default 10 s) starts the count again from attempt 1.
//! - **Classification** ([`Failure`], [`Retry`], [`Classifier`]): what ended the attempt or the
//!   connection decides whether retrying can help. The default is
//!   [`Failure::default_retry`]; an application replaces it with its own `fn`, or classifies
//!   with any closure and calls [`Reconnect::handle_failure_as`].
//! - **The server's word**: a rejected upgrade that carries `Retry-After` (a 503 or 429
//!   under load, say; seconds, or a date the adapter turns into a delay) is retried no
//!   sooner than that, up to
//!   [`ReconnectPolicy::max_retry_after`] (default 5 minutes), so clients turned away
//!   together do not come back before the server said it could take them.
//!
//! Only failures are reported. When the *application* closes the connection, the client is
//! shutting down: it does not consult the policy at all.
//!
//! ```
//! use core::time::Duration;
//! use sockeye_proto::close::CloseCode;
//! use sockeye_proto::reconnect_policy::{Decision, Failure, GiveUp, IoKind, Reconnect, ReconnectPolicy};
//! use sockeye_proto::Instant;
//!
//! let mut reconnect = Reconnect::new(ReconnectPolicy::DEFAULT.with_max_attempts(Some(5)));
//! let now = Instant::from_millis(1_000);
//!
//! // The first connect is refused. `u64::MAX` is the top of the random range: the delay is
//! // the whole ceiling, 500 ms for attempt 1.
//! let decision = reconnect.handle_failure(Failure::ConnectFailed(IoKind::Refused), u64::MAX, now);
//! assert_eq!(
//!     decision,
//!     Decision::Retry {
//!         attempt: 1,
//!         delay: Duration::from_millis(500),
//!         deadline: Instant::from_millis(1_500),
//!     }
//! );
//! assert_eq!(decision.to_string(), "reconnecting in 500ms (attempt 1)");
//!
//! // Attempt 1 connects; 2 s later the server restarts (1012). The connection was not up
//! // for `stable_after` (10 s), so this is attempt 2, with a ceiling of 1 s; a draw of 0 is the
//! // bottom of the range, the 10 ms floor.
//! reconnect.handle_connected(Instant::from_millis(1_600));
//! let closed = Failure::Closed { code: Some(CloseCode::SERVICE_RESTART) };
//! let decision = reconnect.handle_failure(closed, 0, Instant::from_millis(3_600));
//! assert_eq!(decision.delay(), Some(Duration::from_millis(10)));
//! assert_eq!(decision.attempt(), Some(2));
//!
//! // A policy violation will not get better by asking again.
//! let decision = reconnect.handle_failure(
//!     Failure::Closed { code: Some(CloseCode::POLICY) },
//!     0,
//!     Instant::from_millis(4_000),
//! );
//! assert!(matches!(decision, Decision::GiveUp(GiveUp::Fatal(_))));
//! assert_eq!(decision.to_string(), "gave up: closed by the server with code 1008");
//! ```

use core::fmt;
use core::time::Duration;

use crate::close::CloseCode;
use crate::time::Instant;

/// A duration in whole nanoseconds, saturating at `u64::MAX` (about 584 years, the range of
/// [`Instant`]).
fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Backoff
// ---------------------------------------------------------------------------------------------

/// How much the backoff ceiling grows per attempt, in thousandths (an integer, so the schedule
/// is exact and the same on every target).
///
/// Values below 1000 (×1.0) are raised to 1000: the backoff never shrinks.
///
/// ```
/// use sockeye_proto::reconnect_policy::Multiplier;
/// assert_eq!(Multiplier::TWO.permille(), 2000);
/// assert_eq!(Multiplier::from_permille(1500).to_string(), "1.5");
/// assert_eq!(Multiplier::from_permille(500), Multiplier::ONE);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Multiplier(u32);

impl Multiplier {
    /// ×1: a constant ceiling (every attempt draws from `[floor, initial]`).
    pub const ONE: Multiplier = Multiplier(1000);
    /// ×2: the ceiling doubles per attempt (the default).
    pub const TWO: Multiplier = Multiplier(2000);

    /// A multiplier of `permille / 1000`, raised to [`Multiplier::ONE`] if smaller.
    pub const fn from_permille(permille: u32) -> Self {
        if permille < 1000 {
            Multiplier::ONE
        } else {
            Multiplier(permille)
        }
    }

    /// The multiplier in thousandths (2000 for ×2).
    pub const fn permille(self) -> u32 {
        self.0
    }
}

impl Default for Multiplier {
    fn default() -> Self {
        Multiplier::TWO
    }
}

impl fmt::Display for Multiplier {
    /// The decimal value without trailing zeros: `2`, `1.5`, `1.001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, mut frac) = (self.0 / 1000, self.0 % 1000);
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let mut width = 3;
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        write!(f, "{whole}.{frac:0width$}")
    }
}

/// Exponential backoff with full jitter: the delay before reconnect attempt `n`.
///
/// - The **ceiling** for attempt `n` (counted from 1) is `min(cap, initial × multiplierⁿ⁻¹)`,
///   computed exactly in integer nanoseconds, rounding each step up (see [`Backoff::ceiling`]).
/// - The **delay** is uniform in `[min(floor, ceiling), ceiling]` (see [`Backoff::delay`]).
///   Plain full jitter draws from `[0, ceiling]`; a delay of zero would let a fleet of clients
///   whose draws land near zero reconnect in a hot loop, so a small floor (default 10 ms) is
///   kept. The ceiling wins over the floor: with `cap` (or `initial`) below `floor`, every
///   delay is exactly the ceiling, and a zero ceiling means "reconnect at once".
///
/// ```
/// use core::time::Duration;
/// use sockeye_proto::reconnect_policy::Backoff;
///
/// let backoff = Backoff::DEFAULT;
/// assert_eq!(backoff.ceiling(1), Duration::from_millis(500));
/// assert_eq!(backoff.ceiling(4), Duration::from_secs(4));
/// assert_eq!(backoff.ceiling(7), Duration::from_secs(30)); // 32 s, capped
/// assert_eq!(backoff.delay(4, 0), Duration::from_millis(10)); // bottom of the range: the floor
/// assert_eq!(backoff.delay(4, u64::MAX), Duration::from_secs(4)); // top: the ceiling
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Backoff {
    /// The ceiling for the first reconnect attempt. Default 500 ms.
    pub initial: Duration,
    /// Growth of the ceiling per attempt. Default ×2.
    pub multiplier: Multiplier,
    /// The largest ceiling, hence the longest delay. Default 30 s.
    pub cap: Duration,
    /// The smallest delay (unless the ceiling is smaller). Default 10 ms.
    pub floor: Duration,
}

impl Backoff {
    /// The default backoff: 500 ms initial ceiling, ×2, capped at 30 s, floor 10 ms.
    pub const DEFAULT: Backoff = Backoff {
        initial: Duration::from_millis(500),
        multiplier: Multiplier::TWO,
        cap: Duration::from_secs(30),
        floor: Duration::from_millis(10),
    };

    /// Sets [`Backoff::initial`].
    pub const fn with_initial(mut self, initial: Duration) -> Self {
        self.initial = initial;
        self
    }

    /// Sets [`Backoff::multiplier`].
    pub const fn with_multiplier(mut self, multiplier: Multiplier) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// Sets [`Backoff::cap`].
    pub const fn with_cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Sets [`Backoff::floor`].
    pub const fn with_floor(mut self, floor: Duration) -> Self {
        self.floor = floor;
        self
    }

    /// The ceiling for reconnect attempt `attempt` (counted from 1; 0 is treated as 1):
    /// `min(cap, initial × multiplierᵃᵗᵗᵉᵐᵖᵗ⁻¹)`.
    ///
    /// Computed in integer nanoseconds (saturating at `u64::MAX` ns), one multiplication per
    /// attempt, each rounded up so that any multiplier above ×1 always grows the ceiling; the
    /// loop stops as soon as the cap is reached, so a huge `attempt` costs no more than the
    /// climb to the cap (a few dozen steps for the defaults).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        Duration::from_nanos(self.ceiling_nanos(attempt))
    }

    fn ceiling_nanos(&self, attempt: u32) -> u64 {
        let cap = nanos(self.cap);
        let mut ceiling = nanos(self.initial).min(cap);
        let permille = u128::from(self.multiplier.0);
        if permille <= 1000 {
            return ceiling;
        }
        for _ in 1..attempt {
            // At the cap it stays there; at zero it stays zero.
            if ceiling >= cap || ceiling == 0 {
                break;
            }
            let next = (u128::from(ceiling) * permille).div_ceil(1000);
            ceiling = u64::try_from(next).unwrap_or(u64::MAX).min(cap);
        }
        ceiling
    }

    /// The delay before reconnect attempt `attempt`, from a uniform `random` draw.
    ///
    /// `random` should be uniform over all of `u64` (e.g. `RngCore::next_u64`). With
    /// `ceiling = self.ceiling(attempt)`, `floor = min(self.floor, ceiling)` and
    /// `span = ceiling - floor` in nanoseconds, the delay is
    ///
    /// ```text
    /// floor + ⌊random × (span + 1) / 2⁶⁴⌋  nanoseconds
    /// ```
    ///
    /// so `random = 0` gives exactly the floor, `random = u64::MAX` exactly the ceiling, the
    /// delay never decreases as `random` grows, and every nanosecond in the range is hit by
    /// (almost exactly) the same share of draws. Only the high bits matter: a caller with a
    /// 32-bit generator may pass `u64::from(x) << 32`.
    pub fn delay(&self, attempt: u32, random: u64) -> Duration {
        let ceiling = self.ceiling_nanos(attempt);
        let floor = nanos(self.floor).min(ceiling);
        let span = u128::from(ceiling - floor) + 1; // <= 2^64
        let offset = (u128::from(random) * span) >> 64; // <= span - 1 = ceiling - floor
        let offset = u64::try_from(offset).unwrap_or(u64::MAX);
        Duration::from_nanos(floor + offset.min(ceiling - floor))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::DEFAULT
    }
}

// ---------------------------------------------------------------------------------------------
// Failures and their classification
// ---------------------------------------------------------------------------------------------

/// The kind of an I/O error, small enough for the core; adapters map `std::io::ErrorKind` to
/// it (with the `std` feature, `IoKind::from(kind)` does exactly that).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoKind {
    /// The connection was refused (nothing listening, or a firewall rejecting it).
    Refused,
    /// The connection was reset, aborted, or cut mid-stream (broken pipe, unexpected EOF).
    Reset,
    /// An operation timed out.
    TimedOut,
    /// The host or network is unreachable or down, or no local address is available.
    Unreachable,
    /// A local or configuration problem that retrying cannot fix: invalid input (a bad
    /// address), permission denied, an unsupported operation, invalid data (e.g. a TLS
    /// certificate rejected).
    Invalid,
    /// Anything else, including name resolution failures (which `std` does not categorize).
    Other,
}

impl IoKind {
    /// A short description: `"connection refused"`, `"connection reset"` ...
    pub const fn as_str(self) -> &'static str {
        match self {
            IoKind::Refused => "connection refused",
            IoKind::Reset => "connection reset",
            IoKind::TimedOut => "timed out",
            IoKind::Unreachable => "network unreachable",
            IoKind::Invalid => "invalid request or configuration",
            IoKind::Other => "i/o error",
        }
    }
}

impl fmt::Display for IoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
impl From<std::io::ErrorKind> for IoKind {
    /// `ConnectionRefused` → `Refused`; `ConnectionReset`, `ConnectionAborted`, `BrokenPipe`,
    /// `NotConnected`, `UnexpectedEof` → `Reset`; `TimedOut` → `TimedOut`;
    /// `HostUnreachable`, `NetworkUnreachable`, `NetworkDown`, `AddrNotAvailable` →
    /// `Unreachable`; `InvalidInput`, `InvalidData`, `PermissionDenied`, `Unsupported` →
    /// `Invalid`; anything else → `Other`.
    fn from(kind: std::io::ErrorKind) -> Self {
        use std::io::ErrorKind as K;
        match kind {
            K::ConnectionRefused => IoKind::Refused,
            K::ConnectionReset
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::NotConnected
            | K::UnexpectedEof => IoKind::Reset,
            K::TimedOut => IoKind::TimedOut,
            K::HostUnreachable | K::NetworkUnreachable | K::NetworkDown | K::AddrNotAvailable => {
                IoKind::Unreachable
            }
            K::InvalidInput | K::InvalidData | K::PermissionDenied | K::Unsupported => {
                IoKind::Invalid
            }
            _ => IoKind::Other,
        }
    }
}

/// What ended a connection attempt or an open connection.
///
/// The first four happen before the connection opens, the rest after. A close the local
/// application asked for is not a failure and is never reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Failure {
    /// The transport could not be established (TCP connect, name resolution, TLS).
    ConnectFailed(IoKind),
    /// The server did not complete the opening handshake in time.
    HandshakeTimedOut,
    /// The server answered the upgrade request with this HTTP status instead of 101.
    Rejected {
        /// The HTTP status code (403, 503 ...).
        status: u16,
        /// The server's `Retry-After`, if it gave one in seconds: the next attempt waits at
        /// least this long (up to [`ReconnectPolicy::max_retry_after`]).
        retry_after: Option<Duration>,
    },
    /// The server answered 101 but the response was invalid (wrong accept key, missing
    /// `Upgrade`, an extension or subprotocol that was not offered ...).
    BadHandshake,
    /// The server closed the connection with a Close frame (the close handshake completed or
    /// the server shut down right after it). `None`: the Close frame carried no code (1005).
    Closed {
        /// The server's close code, if any.
        code: Option<CloseCode>,
    },
    /// The connection ended without a Close frame (EOF; reported as 1006).
    Abnormal,
    /// The keepalive Ping got no answer in time: the connection is presumed dead.
    KeepAliveTimedOut,
    /// The close handshake did not finish in time.
    CloseTimedOut,
    /// A read or write failed on the open connection.
    Io(IoKind),
    /// The server broke the protocol; the connection was failed with this close code (1002
    /// protocol, 1007 invalid UTF-8, 1009 too big ...).
    ProtocolError(CloseCode),
}

impl Failure {
    /// The default classification. This is the default [`ReconnectPolicy::classify`]:
    ///
    /// | failure | default |
    /// | --- | --- |
    /// | `ConnectFailed(kind)`, `Io(kind)` | retry, except [`IoKind::Invalid`] (fatal) |
    /// | `HandshakeTimedOut`, `Abnormal` (1006), `KeepAliveTimedOut`, `CloseTimedOut` | retry |
    /// | `Rejected { status }` | see [`Retry::for_status`]: 408, 425, 429 and 5xx retry; other statuses are fatal |
    /// | `BadHandshake` | fatal |
    /// | `Closed { code: None }` (1005) | retry |
    /// | `Closed { code: Some(c) }`, `ProtocolError(c)` | see [`Retry::for_close_code`] |
    pub const fn default_retry(&self) -> Retry {
        match *self {
            Failure::ConnectFailed(kind) | Failure::Io(kind) => Retry::for_io(kind),
            Failure::HandshakeTimedOut
            | Failure::Abnormal
            | Failure::KeepAliveTimedOut
            | Failure::CloseTimedOut
            | Failure::Closed { code: None } => Retry::Yes,
            Failure::Rejected { status, .. } => Retry::for_status(status),
            Failure::BadHandshake => Retry::No,
            Failure::Closed { code: Some(code) } | Failure::ProtocolError(code) => {
                Retry::for_close_code(code)
            }
        }
    }

    /// Whether the failure happened before the connection opened.
    pub const fn before_open(&self) -> bool {
        matches!(
            self,
            Failure::ConnectFailed(_)
                | Failure::HandshakeTimedOut
                | Failure::Rejected { .. }
                | Failure::BadHandshake
        )
    }
}

impl fmt::Display for Failure {
    /// A short lowercase phrase: `connect failed: connection refused`,
    /// `handshake rejected with HTTP 403`, `closed by the server with code 1008` ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ConnectFailed(kind) => write!(f, "connect failed: {kind}"),
            Failure::HandshakeTimedOut => f.write_str("handshake timed out"),
            Failure::Rejected {
                status,
                retry_after: None,
            } => write!(f, "handshake rejected with HTTP {status}"),
            Failure::Rejected {
                status,
                retry_after: Some(after),
            } => write!(
                f,
                "handshake rejected with HTTP {status}, retry after {} s",
                after.as_secs()
            ),
            Failure::BadHandshake => f.write_str("invalid handshake response"),
            Failure::Closed { code: Some(code) } => {
                write!(f, "closed by the server with code {code}")
            }
            Failure::Closed { code: None } => f.write_str("closed by the server without a code"),
            Failure::Abnormal => f.write_str("connection lost without a close frame (1006)"),
            Failure::KeepAliveTimedOut => f.write_str("keepalive timed out (no pong)"),
            Failure::CloseTimedOut => f.write_str("close handshake timed out"),
            Failure::Io(kind) => write!(f, "i/o failed: {kind}"),
            Failure::ProtocolError(code) => {
                write!(f, "protocol error by the server (closed with {code})")
            }
        }
    }
}

/// Whether a [`Failure`] is worth retrying: the answer of a [`Classifier`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Retry {
    /// Transient: reconnect after a backoff delay.
    Yes,
    /// Fatal: retrying cannot help; give up.
    No,
}

impl Retry {
    /// The default for a close code, whoever sent it (the server in a Close frame, or this
    /// client when it failed the connection for a protocol error):
    ///
    /// | code | default | why |
    /// | --- | --- | --- |
    /// | 1000 normal, 1005 no code | retry | see below |
    /// | 1001 going away, 1006 abnormal, 1011 internal error, 1012 service restart, 1013 try again later, 1014 bad gateway | retry | the service is temporarily unavailable |
    /// | 1002 protocol, 1003 unsupported data, 1007 invalid payload, 1008 policy, 1009 too big, 1010 extension required, 1015 TLS | fatal | someone broke the protocol or the contract; the same client talking to the same server will do it again |
    /// | 3000 unauthorized, 3003 forbidden (IANA registry) | fatal | like HTTP 401/403 |
    /// | anything else (3008 timeout, other 3xxx, application 4xxx, unknown) | retry | unknown meaning: a capped backoff is the safe side for a client that must stay connected |
    ///
    /// **1000 from the server retries.** A client in reconnecting mode wants a connection for
    /// as long as it runs, and in practice servers send 1000 when they end a session for their
    /// own reasons: a graceful shutdown or deploy (many server libraries close with 1000 by
    /// default rather than 1001/1012), an idle or maximum-session-lifetime limit, a load
    /// balancer draining. Stopping there would leave the application silently disconnected
    /// after every deploy, which is exactly what a reconnecting client exists to prevent. A
    /// server that wants the client gone should say so with 1008 or an application code, and
    /// an application whose protocol gives 1000 the meaning "done" overrides the classifier.
    pub const fn for_close_code(code: CloseCode) -> Retry {
        match code.0 {
            1002 | 1003 | 1007 | 1008 | 1009 | 1010 | 1015 | 3000 | 3003 => Retry::No,
            _ => Retry::Yes,
        }
    }

    /// The default for an HTTP status that rejected the upgrade: 408 request timeout, 425 too
    /// early, 429 too many requests and every 5xx retry; everything else is fatal: other 4xx
    /// (401, 403, 404 ...) say the request itself is wrong, 3xx redirects are not followed, and
    /// a 1xx/2xx means the URL is not a WebSocket endpoint.
    pub const fn for_status(status: u16) -> Retry {
        match status {
            408 | 425 | 429 | 500..=599 => Retry::Yes,
            _ => Retry::No,
        }
    }

    /// The default for an I/O error: everything retries except [`IoKind::Invalid`].
    pub const fn for_io(kind: IoKind) -> Retry {
        match kind {
            IoKind::Invalid => Retry::No,
            _ => Retry::Yes,
        }
    }
}

/// The classification hook: a plain function, so a [`ReconnectPolicy`] stays `Copy` and
/// allocation-free. For a classifier with state, classify yourself and call
/// [`Reconnect::handle_failure_as`].
///
/// ```
/// use sockeye_proto::close::CloseCode;
/// use sockeye_proto::reconnect_policy::{Failure, ReconnectPolicy, Retry};
///
/// // This application's protocol uses 1000 for "you are done, do not come back",
/// // and its own 4001 for "session expired, log in again".
/// fn classify(failure: &Failure) -> Retry {
///     match failure {
///         Failure::Closed { code: Some(CloseCode::NORMAL | CloseCode(4001)) } => Retry::No,
///         other => other.default_retry(),
///     }
/// }
/// let policy = ReconnectPolicy::DEFAULT.with_classifier(classify);
/// assert_eq!((policy.classify)(&Failure::Closed { code: Some(CloseCode(4001)) }), Retry::No);
/// assert_eq!((policy.classify)(&Failure::Abnormal), Retry::Yes);
/// ```
pub type Classifier = fn(&Failure) -> Retry;

// ---------------------------------------------------------------------------------------------
// Policy and state
// ---------------------------------------------------------------------------------------------

/// Reconnect settings: the backoff, a limit on attempts, the stability reset and the
/// classification hook.
///
/// ```
/// use core::time::Duration;
/// use sockeye_proto::reconnect_policy::{Backoff, ReconnectPolicy};
///
/// let policy = ReconnectPolicy::DEFAULT
///     .with_backoff(Backoff::DEFAULT.with_initial(Duration::from_millis(100)))
///     .with_max_attempts(Some(10))
///     .with_stable_after(Duration::from_secs(60));
/// assert_eq!(policy.backoff.cap, Duration::from_secs(30));
/// ```
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ReconnectPolicy {
    /// The delay schedule. Default [`Backoff::DEFAULT`].
    pub backoff: Backoff,
    /// The most reconnect attempts in a row (not counting the first connect): with `Some(3)`
    /// the client tries attempts 1, 2 and 3, and the failure after attempt 3 gives up.
    /// `Some(0)` never reconnects. Default `None`: retry forever.
    pub max_attempts: Option<u32>,
    /// A connection that stayed open at least this long resets the count: the failure that
    /// ends it is followed by attempt 1 again. `Duration::ZERO` resets on every successful
    /// open. Default 10 s.
    pub stable_after: Duration,
    /// Decides which failures are retried. Default [`Failure::default_retry`].
    pub classify: Classifier,
    /// The longest wait a server's `Retry-After` can impose: after a rejection that
    /// carries one ([`Failure::Rejected`]), the next attempt waits for the longer of the
    /// backoff delay and `Retry-After`, capped at this. `Duration::ZERO` ignores
    /// `Retry-After`. Default 5 minutes, so a server cannot park its clients for hours.
    pub max_retry_after: Duration,
}

impl ReconnectPolicy {
    /// The default policy: [`Backoff::DEFAULT`], unlimited attempts, reset after 10 s up,
    /// [`Failure::default_retry`], a server's `Retry-After` honoured up to 5 minutes.
    pub const DEFAULT: ReconnectPolicy = ReconnectPolicy {
        backoff: Backoff::DEFAULT,
        max_attempts: None,
        stable_after: Duration::from_secs(10),
        classify: Failure::default_retry,
        max_retry_after: Duration::from_secs(300),
    };

    /// Sets [`ReconnectPolicy::backoff`].
    pub const fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets [`ReconnectPolicy::max_attempts`].
    pub const fn with_max_attempts(mut self, max_attempts: Option<u32>) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Sets [`ReconnectPolicy::stable_after`].
    pub const fn with_stable_after(mut self, stable_after: Duration) -> Self {
        self.stable_after = stable_after;
        self
    }

    /// Sets [`ReconnectPolicy::classify`].
    pub const fn with_classifier(mut self, classify: Classifier) -> Self {
        self.classify = classify;
        self
    }

    /// Sets [`ReconnectPolicy::max_retry_after`].
    pub const fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy::DEFAULT
    }
}

/// What to do after a failure: the answer of [`Reconnect::handle_failure`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Reconnect at `deadline` (`now + delay`, saturating).
    Retry {
        /// The reconnect attempt this will be, counted from 1 since the last reset.
        attempt: u32,
        /// The jittered delay.
        delay: Duration,
        /// When to connect again.
        deadline: Instant,
    },
    /// Stop reconnecting.
    GiveUp(GiveUp),
}

impl Decision {
    /// When to reconnect, or `None` when giving up.
    pub const fn deadline(&self) -> Option<Instant> {
        match *self {
            Decision::Retry { deadline, .. } => Some(deadline),
            Decision::GiveUp(_) => None,
        }
    }

    /// The delay before reconnecting, or `None` when giving up.
    pub const fn delay(&self) -> Option<Duration> {
        match *self {
            Decision::Retry { delay, .. } => Some(delay),
            Decision::GiveUp(_) => None,
        }
    }

    /// The number of the coming reconnect attempt, or `None` when giving up.
    pub const fn attempt(&self) -> Option<u32> {
        match *self {
            Decision::Retry { attempt, .. } => Some(attempt),
            Decision::GiveUp(_) => None,
        }
    }

    /// Whether this is [`Decision::GiveUp`].
    pub const fn is_give_up(&self) -> bool {
        matches!(self, Decision::GiveUp(_))
    }
}

impl fmt::Display for Decision {
    /// `reconnecting in 1200ms (attempt 3)` (whole milliseconds, rounded down), or the
    /// [`GiveUp`] line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Retry { attempt, delay, .. } => {
                write!(
                    f,
                    "reconnecting in {}ms (attempt {attempt})",
                    delay.as_millis()
                )
            }
            Decision::GiveUp(give_up) => give_up.fmt(f),
        }
    }
}

/// Why reconnecting stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GiveUp {
    /// The classifier called this failure fatal ([`Retry::No`]).
    Fatal(Failure),
    /// [`ReconnectPolicy::max_attempts`] reconnect attempts failed in a row.
    MaxAttempts {
        /// How many reconnect attempts were made (the configured maximum).
        attempts: u32,
    },
}

impl fmt::Display for GiveUp {
    /// `gave up: handshake rejected with HTTP 403` or `gave up after 5 reconnect attempts`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GiveUp::Fatal(failure) => write!(f, "gave up: {failure}"),
            GiveUp::MaxAttempts { attempts: 1 } => f.write_str("gave up after 1 reconnect attempt"),
            GiveUp::MaxAttempts { attempts } => {
                write!(f, "gave up after {attempts} reconnect attempts")
            }
        }
    }
}

/// Reconnect state: the attempt count and when the current connection opened.
///
/// Drive it with events, passing the time in:
///
/// 1. Connect. If the attempt fails, call [`handle_failure`](Reconnect::handle_failure) and
///    sleep until the returned deadline (or stop on [`Decision::GiveUp`]).
/// 2. When the connection opens (handshake done), call
///    [`handle_connected`](Reconnect::handle_connected).
/// 3. When it ends for any reason other than a local close, call
///    [`handle_failure`](Reconnect::handle_failure); if it had stayed up for
///    [`stable_after`](ReconnectPolicy::stable_after), the count starts over at attempt 1.
///
/// The state never latches: after a [`Decision::GiveUp`] the caller simply stops (or calls
/// [`reset`](Reconnect::reset) to start over). Each call is O(1) apart from
/// [`Backoff::ceiling`]'s short loop.
#[derive(Clone, Copy, Debug)]
pub struct Reconnect {
    policy: ReconnectPolicy,
    attempt: u32,
    connected_at: Option<Instant>,
}

impl Reconnect {
    /// A fresh state: no attempt made yet, not connected.
    pub const fn new(policy: ReconnectPolicy) -> Self {
        Reconnect {
            policy,
            attempt: 0,
            connected_at: None,
        }
    }

    /// The policy in use.
    pub const fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// The last reconnect attempt scheduled since the last reset (0: none; the next failure
    /// schedules attempt 1). A stable connection resets it when that connection ends.
    pub const fn attempt(&self) -> u32 {
        self.attempt
    }

    /// When the current connection opened, if it is open.
    pub const fn connected_since(&self) -> Option<Instant> {
        self.connected_at
    }

    /// When the current connection counts as stable (opened + `stable_after`), if it is open.
    pub fn stable_at(&self) -> Option<Instant> {
        self.connected_at
            .map(|at| at.saturating_add(self.policy.stable_after))
    }

    /// The connection opened at `now` (the handshake completed).
    pub fn handle_connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// A connection attempt failed or the open connection ended, at `now`; `random` is a
    /// uniform `u64` draw (see [`Backoff::delay`] for how it maps to the delay). Classifies the
    /// failure with [`ReconnectPolicy::classify`].
    pub fn handle_failure(&mut self, failure: Failure, random: u64, now: Instant) -> Decision {
        let retry = (self.policy.classify)(&failure);
        self.handle_failure_as(failure, retry, random, now)
    }

    /// Like [`handle_failure`](Reconnect::handle_failure), with the classification made by the
    /// caller (e.g. by a closure holding state); the policy's classifier is not consulted.
    ///
    /// In order: the connection, if open, is marked closed, and if it stayed up for
    /// `stable_after` the count resets; [`Retry::No`] gives up with [`GiveUp::Fatal`]; the
    /// next attempt past `max_attempts` gives up with [`GiveUp::MaxAttempts`] (the count
    /// stays at the maximum); otherwise the count advances and the delay is drawn (and
    /// raised to a rejection's `Retry-After`, up to
    /// [`max_retry_after`](ReconnectPolicy::max_retry_after)).
    pub fn handle_failure_as(
        &mut self,
        failure: Failure,
        retry: Retry,
        random: u64,
        now: Instant,
    ) -> Decision {
        if let Some(opened) = self.connected_at.take() {
            if now.saturating_duration_since(opened) >= self.policy.stable_after {
                self.attempt = 0;
            }
        }
        if retry == Retry::No {
            return Decision::GiveUp(GiveUp::Fatal(failure));
        }
        let next = self.attempt.checked_add(1);
        let attempt = match (self.policy.max_attempts, next) {
            (Some(max), Some(attempt)) if attempt <= max => attempt,
            (Some(max), _) => return Decision::GiveUp(GiveUp::MaxAttempts { attempts: max }),
            // Unlimited: the count sticks at u32::MAX (the ceiling is long capped by then).
            (None, next) => next.unwrap_or(u32::MAX),
        };
        self.attempt = attempt;
        let mut delay = self.policy.backoff.delay(attempt, random);
        if let Failure::Rejected {
            retry_after: Some(asked),
            ..
        } = failure
        {
            delay = delay.max(asked.min(self.policy.max_retry_after));
        }
        Decision::Retry {
            attempt,
            delay,
            deadline: now.saturating_add(delay),
        }
    }

    /// Forgets the attempt count and the open connection, as if new.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.connected_at = None;
    }
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect::new(ReconnectPolicy::DEFAULT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const SEC: u64 = 1_000_000_000;

    /// A fixed, seedable random source (SplitMix64).
    struct SplitMix(u64);

    impl SplitMix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
    }

    /// `min(cap, initial * 2^(attempt-1))` computed independently, for ×2 schedules.
    fn doubling_ceiling(initial: u64, cap: u64, attempt: u32) -> u64 {
        let shift = attempt.max(1) - 1;
        let grown = if shift >= 64 {
            u128::MAX
        } else {
            u128::from(initial) << shift
        };
        u64::try_from(grown.min(u128::from(cap))).unwrap()
    }

    fn refused() -> Failure {
        Failure::ConnectFailed(IoKind::Refused)
    }

    /// Renders through `Display` into a fixed buffer (no alloc in this crate's tests).
    fn render<T: fmt::Display>(value: &T, buf: &mut [u8; 128]) -> usize {
        struct W<'a>(&'a mut [u8], usize);
        impl fmt::Write for W<'_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                let end = self.1 + s.len();
                self.0
                    .get_mut(self.1..end)
                    .ok_or(fmt::Error)?
                    .copy_from_slice(s.as_bytes());
                self.1 = end;
                Ok(())
            }
        }
        let mut w = W(buf, 0);
        fmt::write(&mut w, format_args!("{value}")).unwrap();
        w.1
    }

    fn assert_displays<T: fmt::Display>(value: T, expected: &str) {
        let mut buf = [0; 128];
        let n = render(&value, &mut buf);
        assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), expected);
    }

    #[test]
    fn exact_schedule_for_fixed_draws() {
        let mut r = Reconnect::default();
        let mut now = Instant::from_millis(1_000);
        // (draw, expected delay in ns). Ceilings: 0.5, 1, 2, 4, 8, 16, 30 (32 capped), 30 s.
        let script: [(u64, u64); 9] = [
            (u64::MAX, 500 * MS),
            (u64::MAX, SEC),
            (0, 10 * MS),
            // half of the range [10 ms, 4 s]: 10 ms + floor((3.99e9 + 1) / 2)
            (1 << 63, 10 * MS + 1_995_000_000),
            (u64::MAX, 8 * SEC),
            (u64::MAX, 16 * SEC),
            (u64::MAX, 30 * SEC),
            (u64::MAX, 30 * SEC),
            // a quarter of [10 ms, 30 s]: 10 ms + floor((29.99e9 + 1) / 4)
            (1 << 62, 10 * MS + 7_497_500_000),
        ];
        for (i, (draw, expected)) in script.into_iter().enumerate() {
            let decision = r.handle_failure(refused(), draw, now);
            let delay = Duration::from_nanos(expected);
            assert_eq!(
                decision,
                Decision::Retry {
                    attempt: i as u32 + 1,
                    delay,
                    deadline: now + delay,
                },
                "step {i}"
            );
            now = now + delay;
        }
        assert_eq!(r.attempt(), 9);
    }

    #[test]
    fn exact_schedule_for_a_seeded_source() {
        // The same seed always yields the same delays; pinned so that any change to the
        // mapping is visible.
        let mut rng = SplitMix(42);
        let mut r = Reconnect::default();
        let mut delays = [0u64; 8];
        for slot in &mut delays {
            let decision = r.handle_failure(Failure::Abnormal, rng.next(), Instant::ZERO);
            *slot = nanos(decision.delay().unwrap());
        }
        let mut rng = SplitMix(42);
        for (i, &delay) in delays.iter().enumerate() {
            let attempt = i as u32 + 1;
            let ceiling = doubling_ceiling(500 * MS, 30 * SEC, attempt);
            let span = u128::from(ceiling - 10 * MS) + 1;
            let expected = 10 * MS + ((u128::from(rng.next()) * span) >> 64) as u64;
            assert_eq!(delay, expected, "attempt {attempt}");
        }
        assert_eq!(
            delays,
            [
                373_366_791,
                168_311_289,
                564_416_249,
                1_383_320_959,
                313_861_046,
                13_892_966_944,
                6_559_971_759,
                24_020_949_983,
            ]
        );
    }

    #[test]
    fn jitter_stays_in_bounds_over_many_draws() {
        let backoff = Backoff::DEFAULT;
        let mut rng = SplitMix(7);
        for attempt in 1..=40u32 {
            let ceiling = doubling_ceiling(500 * MS, 30 * SEC, attempt);
            assert_eq!(nanos(backoff.ceiling(attempt)), ceiling);
            let (mut lowest, mut highest) = (u64::MAX, 0);
            for _ in 0..2_000 {
                let delay = nanos(backoff.delay(attempt, rng.next()));
                assert!((10 * MS..=ceiling).contains(&delay), "{attempt}: {delay}");
                assert!(delay <= 30 * SEC);
                lowest = lowest.min(delay);
                highest = highest.max(delay);
            }
            // The draws spread over the range (the chance of missing the outer 10 % by
            // luck is 2 * 0.9^2000, i.e. never).
            let tenth = (ceiling - 10 * MS) / 10;
            assert!(lowest < 10 * MS + tenth && highest > ceiling - tenth);
        }
    }

    #[test]
    fn delay_is_monotonic_in_the_draw() {
        let backoff = Backoff::DEFAULT;
        let mut previous = Duration::ZERO;
        let draws = (0..256u64).map(|i| i << 56).chain([u64::MAX - 1, u64::MAX]);
        for draw in draws {
            let delay = backoff.delay(3, draw);
            assert!(delay >= previous);
            previous = delay;
        }
        assert_eq!(previous, Duration::from_secs(2));
    }

    #[test]
    fn max_attempts_gives_up() {
        let policy = ReconnectPolicy::DEFAULT.with_max_attempts(Some(3));
        let mut r = Reconnect::new(policy);
        for attempt in 1..=3 {
            assert_eq!(
                r.handle_failure(refused(), 0, Instant::ZERO).attempt(),
                Some(attempt)
            );
        }
        let decision = r.handle_failure(refused(), 0, Instant::ZERO);
        assert_eq!(
            decision,
            Decision::GiveUp(GiveUp::MaxAttempts { attempts: 3 })
        );
        assert!(decision.is_give_up() && decision.deadline().is_none());
        assert_displays(decision, "gave up after 3 reconnect attempts");
        // Not latched, but still over the limit.
        assert!(r.handle_failure(refused(), 0, Instant::ZERO).is_give_up());
        assert_eq!(r.attempt(), 3);
        // After a reset it starts over.
        r.reset();
        assert_eq!(
            r.handle_failure(refused(), 0, Instant::ZERO).attempt(),
            Some(1)
        );

        let mut never = Reconnect::new(ReconnectPolicy::DEFAULT.with_max_attempts(Some(0)));
        assert_eq!(
            never.handle_failure(refused(), 0, Instant::ZERO),
            Decision::GiveUp(GiveUp::MaxAttempts { attempts: 0 })
        );
        assert_displays(
            GiveUp::MaxAttempts { attempts: 1 },
            "gave up after 1 reconnect attempt",
        );
    }

    #[test]
    fn a_stable_connection_resets_the_count() {
        let mut r = Reconnect::default();
        let t = Instant::from_millis(50_000);
        for _ in 0..3 {
            r.handle_failure(Failure::Abnormal, 0, t);
        }
        assert_eq!(r.attempt(), 3);

        // Up for just under 10 s: not stable, the count goes on.
        r.handle_connected(t);
        assert_eq!(r.connected_since(), Some(t));
        assert_eq!(r.stable_at(), Some(t + Duration::from_secs(10)));
        let closed = Failure::Closed {
            code: Some(CloseCode::GOING_AWAY),
        };
        let early = t + Duration::from_millis(9_999);
        assert_eq!(r.handle_failure(closed, u64::MAX, early).attempt(), Some(4));
        assert_eq!(r.connected_since(), None);

        // Up for exactly 10 s: stable, back to attempt 1 (ceiling 500 ms).
        r.handle_connected(t);
        let decision = r.handle_failure(closed, u64::MAX, t + Duration::from_secs(10));
        assert_eq!(decision.attempt(), Some(1));
        assert_eq!(decision.delay(), Some(Duration::from_millis(500)));

        // A connect failure after that (never connected) keeps counting.
        assert_eq!(r.handle_failure(refused(), 0, t).attempt(), Some(2));
    }

    fn rejected(status: u16, retry_after_secs: Option<u64>) -> Failure {
        Failure::Rejected {
            status,
            retry_after: retry_after_secs.map(Duration::from_secs),
        }
    }

    fn unavailable(retry_after_secs: Option<u64>) -> Failure {
        rejected(503, retry_after_secs)
    }

    #[test]
    fn retry_after_lengthens_the_delay_up_to_the_cap() {
        let now = Instant::from_millis(1_000);
        // Attempt 1 draws at most 500 ms: a longer Retry-After wins.
        let mut r = Reconnect::default();
        let decision = r.handle_failure(unavailable(Some(20)), u64::MAX, now);
        let twenty = Duration::from_secs(20);
        assert_eq!(
            decision,
            Decision::Retry {
                attempt: 1,
                delay: twenty,
                deadline: now + twenty,
            }
        );
        // A shorter one leaves the backoff's delay (attempt 7: the 30 s ceiling).
        let mut r = Reconnect::default();
        for _ in 0..6 {
            r.handle_failure(Failure::Abnormal, 0, now);
        }
        let decision = r.handle_failure(unavailable(Some(1)), u64::MAX, now);
        assert_eq!(decision.delay(), Some(Duration::from_secs(30)));
        // No Retry-After: the backoff alone.
        let mut r = Reconnect::default();
        let decision = r.handle_failure(unavailable(None), u64::MAX, now);
        assert_eq!(decision.delay(), Some(Duration::from_millis(500)));
        // Capped by the policy (default 5 minutes), even at u64::MAX seconds.
        let mut r = Reconnect::default();
        let decision = r.handle_failure(unavailable(Some(u64::MAX)), 0, now);
        assert_eq!(decision.delay(), Some(Duration::from_secs(300)));
        let policy = ReconnectPolicy::DEFAULT.with_max_retry_after(Duration::from_secs(2));
        let decision = Reconnect::new(policy).handle_failure(unavailable(Some(20)), 0, now);
        assert_eq!(decision.delay(), Some(Duration::from_secs(2)));
        // Zero ignores it.
        let policy = ReconnectPolicy::DEFAULT.with_max_retry_after(Duration::ZERO);
        let decision = Reconnect::new(policy).handle_failure(unavailable(Some(20)), 0, now);
        assert_eq!(decision.delay(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn retry_after_does_not_make_a_fatal_status_retry() {
        let forbidden = rejected(403, Some(1));
        let decision = Reconnect::default().handle_failure(forbidden, 0, Instant::ZERO);
        assert_eq!(decision, Decision::GiveUp(GiveUp::Fatal(forbidden)));
        assert_displays(
            unavailable(Some(30)),
            "handshake rejected with HTTP 503, retry after 30 s",
        );
        assert!(unavailable(Some(30)).before_open());
    }

    #[test]
    fn a_stable_connection_resets_even_past_max_attempts() {
        let mut r = Reconnect::new(ReconnectPolicy::DEFAULT.with_max_attempts(Some(1)));
        assert_eq!(
            r.handle_failure(refused(), 0, Instant::ZERO).attempt(),
            Some(1)
        );
        r.handle_connected(Instant::ZERO);
        let later = Instant::from_millis(60_000);
        assert_eq!(
            r.handle_failure(Failure::Abnormal, 0, later).attempt(),
            Some(1)
        );
        assert!(r.handle_failure(refused(), 0, later).is_give_up());
    }

    #[test]
    fn fatal_failures_give_up_at_once() {
        for failure in [
            rejected(403, None),
            rejected(401, None),
            rejected(404, None),
            Failure::BadHandshake,
            Failure::Closed {
                code: Some(CloseCode::POLICY),
            },
            Failure::ProtocolError(CloseCode::PROTOCOL),
            Failure::ConnectFailed(IoKind::Invalid),
        ] {
            let mut r = Reconnect::default();
            r.handle_failure(Failure::Abnormal, 0, Instant::ZERO);
            let decision = r.handle_failure(failure, 0, Instant::ZERO);
            assert_eq!(decision, Decision::GiveUp(GiveUp::Fatal(failure)));
            assert_eq!(r.attempt(), 1, "{failure:?} must not count as an attempt");
        }
        assert_displays(
            Decision::GiveUp(GiveUp::Fatal(rejected(403, None))),
            "gave up: handshake rejected with HTTP 403",
        );
    }

    #[test]
    fn default_close_code_table() {
        let retry = |c: u16| {
            Failure::Closed {
                code: Some(CloseCode(c)),
            }
            .default_retry()
        };
        for c in [
            1000, 1001, 1006, 1011, 1012, 1013, 1014, 1005, 3008, 3001, 4000, 4999,
        ] {
            assert_eq!(retry(c), Retry::Yes, "{c}");
        }
        for c in [1002, 1003, 1007, 1008, 1009, 1010, 1015, 3000, 3003] {
            assert_eq!(retry(c), Retry::No, "{c}");
        }
        assert_eq!(Failure::Closed { code: None }.default_retry(), Retry::Yes);
        // Detected on our side, same rule.
        assert_eq!(
            Failure::ProtocolError(CloseCode::TOO_BIG).default_retry(),
            Retry::No
        );
        assert_eq!(
            Failure::ProtocolError(CloseCode::INVALID_PAYLOAD).default_retry(),
            Retry::No
        );
        assert_eq!(
            Failure::ProtocolError(CloseCode::INTERNAL).default_retry(),
            Retry::Yes
        );
    }

    #[test]
    fn default_status_and_io_table() {
        let retry = |status: u16| rejected(status, None).default_retry();
        for s in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert_eq!(retry(s), Retry::Yes, "{s}");
        }
        for s in [100, 200, 301, 302, 400, 401, 403, 404, 405, 426, 431, 600] {
            assert_eq!(retry(s), Retry::No, "{s}");
        }
        for kind in [
            IoKind::Refused,
            IoKind::Reset,
            IoKind::TimedOut,
            IoKind::Unreachable,
            IoKind::Other,
        ] {
            assert_eq!(Failure::ConnectFailed(kind).default_retry(), Retry::Yes);
            assert_eq!(Failure::Io(kind).default_retry(), Retry::Yes);
        }
        assert_eq!(Failure::Io(IoKind::Invalid).default_retry(), Retry::No);
        for failure in [
            Failure::HandshakeTimedOut,
            Failure::Abnormal,
            Failure::KeepAliveTimedOut,
            Failure::CloseTimedOut,
        ] {
            assert_eq!(failure.default_retry(), Retry::Yes);
        }
        assert!(Failure::BadHandshake.before_open());
        assert!(!Failure::Abnormal.before_open());
    }

    #[test]
    fn custom_classifier_and_caller_classification() {
        fn never(_: &Failure) -> Retry {
            Retry::No
        }
        let mut r = Reconnect::new(ReconnectPolicy::DEFAULT.with_classifier(never));
        assert!(r
            .handle_failure(Failure::Abnormal, 0, Instant::ZERO)
            .is_give_up());

        // A stateful classifier: forgive the first 403 (a token being refreshed), not the second.
        let mut forgiven = 0;
        let mut classify = |failure: &Failure| match failure {
            Failure::Rejected {
                status: 403,
                retry_after: None,
            } if forgiven == 0 => {
                forgiven += 1;
                Retry::Yes
            }
            other => other.default_retry(),
        };
        let mut r = Reconnect::default();
        let f = rejected(403, None);
        let first = r.handle_failure_as(f, classify(&f), 0, Instant::ZERO);
        assert_eq!(first.attempt(), Some(1));
        let second = r.handle_failure_as(f, classify(&f), 0, Instant::ZERO);
        assert_eq!(second, Decision::GiveUp(GiveUp::Fatal(f)));
    }

    #[test]
    fn no_overflow_at_the_extremes() {
        // Huge attempt numbers, a u64::MAX draw, the end of time.
        let backoff = Backoff::DEFAULT;
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(30));
        assert_eq!(backoff.delay(u32::MAX, u64::MAX), Duration::from_secs(30));
        assert_eq!(backoff.ceiling(0), backoff.ceiling(1));

        let huge = Backoff::DEFAULT
            .with_initial(Duration::MAX)
            .with_cap(Duration::MAX)
            .with_floor(Duration::MAX);
        assert_eq!(
            huge.delay(u32::MAX, u64::MAX),
            Duration::from_nanos(u64::MAX)
        );
        assert_eq!(huge.delay(1, 0), Duration::from_nanos(u64::MAX));

        let unbounded = Backoff::DEFAULT.with_cap(Duration::MAX);
        assert_eq!(unbounded.ceiling(u32::MAX), Duration::from_nanos(u64::MAX));
        assert_eq!(
            unbounded.delay(u32::MAX, u64::MAX),
            Duration::from_nanos(u64::MAX)
        );

        // The slowest growth with no cap still terminates, and reaches the top.
        let slow = unbounded
            .with_initial(Duration::from_nanos(1))
            .with_multiplier(Multiplier::from_permille(1001));
        assert_eq!(slow.ceiling(u32::MAX), Duration::from_nanos(u64::MAX));

        let mut r = Reconnect::new(ReconnectPolicy::DEFAULT.with_backoff(unbounded));
        r.attempt = u32::MAX - 1;
        let decision = r.handle_failure(Failure::Abnormal, u64::MAX, Instant::MAX);
        assert_eq!(
            decision,
            Decision::Retry {
                attempt: u32::MAX,
                delay: Duration::from_nanos(u64::MAX),
                deadline: Instant::MAX,
            }
        );
        // The count saturates.
        assert_eq!(
            r.handle_failure(Failure::Abnormal, 0, Instant::MAX)
                .attempt(),
            Some(u32::MAX)
        );

        let mut capped = Reconnect::new(ReconnectPolicy::DEFAULT.with_max_attempts(Some(u32::MAX)));
        capped.attempt = u32::MAX;
        assert_eq!(
            capped.handle_failure(Failure::Abnormal, 0, Instant::ZERO),
            Decision::GiveUp(GiveUp::MaxAttempts { attempts: u32::MAX })
        );
    }

    #[test]
    fn zero_and_small_ceilings() {
        // initial 0: reconnect at once, every time, whatever the draw (the floor yields).
        let zero = Backoff::DEFAULT.with_initial(Duration::ZERO);
        for attempt in [1, 2, 1000, u32::MAX] {
            assert_eq!(zero.ceiling(attempt), Duration::ZERO);
            assert_eq!(zero.delay(attempt, u64::MAX), Duration::ZERO);
        }
        // A cap below the floor: the cap wins.
        let tight = Backoff::DEFAULT.with_cap(Duration::from_millis(5));
        assert_eq!(tight.delay(1, 0), Duration::from_millis(5));
        assert_eq!(tight.delay(9, u64::MAX), Duration::from_millis(5));
        // No floor: plain full jitter, a draw of 0 is a zero delay.
        let plain = Backoff::DEFAULT.with_floor(Duration::ZERO);
        assert_eq!(plain.delay(1, 0), Duration::ZERO);
        assert_eq!(plain.delay(1, u64::MAX), Duration::from_millis(500));
    }

    #[test]
    fn non_integer_multipliers() {
        let b = Backoff::DEFAULT
            .with_initial(Duration::from_nanos(3))
            .with_multiplier(Multiplier::from_permille(1500))
            .with_cap(Duration::from_nanos(20));
        // 3, ceil(4.5)=5, ceil(7.5)=8, 12, 18, min(27, 20)=20
        let ceilings: [u64; 7] = core::array::from_fn(|i| nanos(b.ceiling(i as u32 + 1)));
        assert_eq!(ceilings, [3, 5, 8, 12, 18, 20, 20]);
        // Rounding up means growth never stalls, even from 1 ns.
        let b = b.with_initial(Duration::from_nanos(1));
        assert_eq!(nanos(b.ceiling(2)), 2);

        let constant = Backoff::DEFAULT.with_multiplier(Multiplier::ONE);
        assert_eq!(constant.ceiling(50), Duration::from_millis(500));
        let shrinking = Backoff::DEFAULT.with_multiplier(Multiplier::from_permille(0));
        assert_eq!(shrinking.ceiling(50), Duration::from_millis(500));

        assert_displays(Multiplier::TWO, "2");
        assert_displays(Multiplier::from_permille(1500), "1.5");
        assert_displays(Multiplier::from_permille(1250), "1.25");
        assert_displays(Multiplier::from_permille(1001), "1.001");
        assert_displays(Multiplier::from_permille(10_050), "10.05");
    }

    #[test]
    fn display_lines() {
        assert_displays(
            Decision::Retry {
                attempt: 3,
                delay: Duration::from_micros(1_200_900),
                deadline: Instant::ZERO,
            },
            "reconnecting in 1200ms (attempt 3)",
        );
        assert_displays(refused(), "connect failed: connection refused");
        assert_displays(Failure::Io(IoKind::Reset), "i/o failed: connection reset");
        assert_displays(Failure::HandshakeTimedOut, "handshake timed out");
        assert_displays(
            Failure::Closed { code: None },
            "closed by the server without a code",
        );
        assert_displays(
            Failure::Abnormal,
            "connection lost without a close frame (1006)",
        );
        assert_displays(Failure::KeepAliveTimedOut, "keepalive timed out (no pong)");
        assert_displays(
            Failure::ProtocolError(CloseCode::PROTOCOL),
            "protocol error by the server (closed with 1002)",
        );
    }

    #[cfg(feature = "std")]
    #[test]
    fn io_kinds_from_std() {
        use std::io::ErrorKind as K;
        assert_eq!(IoKind::from(K::ConnectionRefused), IoKind::Refused);
        assert_eq!(IoKind::from(K::ConnectionReset), IoKind::Reset);
        assert_eq!(IoKind::from(K::BrokenPipe), IoKind::Reset);
        assert_eq!(IoKind::from(K::UnexpectedEof), IoKind::Reset);
        assert_eq!(IoKind::from(K::TimedOut), IoKind::TimedOut);
        assert_eq!(IoKind::from(K::NetworkUnreachable), IoKind::Unreachable);
        assert_eq!(IoKind::from(K::PermissionDenied), IoKind::Invalid);
        assert_eq!(IoKind::from(K::InvalidInput), IoKind::Invalid);
        assert_eq!(IoKind::from(K::WouldBlock), IoKind::Other);
        assert_eq!(IoKind::from(K::Other), IoKind::Other);
    }
}
