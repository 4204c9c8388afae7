//! Connection settings: limits and timers, each with a safe default.

use core::time::Duration;

/// Settings of a [`Connection`](crate::connection::Connection). Every limit has a safe
/// default and every timer can be turned off (`None`).
///
/// ```
/// use core::time::Duration;
/// use sockeye_proto::{Config, KeepAlive};
///
/// let config = Config::default()
///     .with_max_message_size(1 << 20)
///     .with_keepalive(Some(KeepAlive::new(Duration::from_secs(20), Duration::from_secs(10))));
/// assert_eq!(config.max_frame_size, 16 << 20);
/// assert_eq!(config.close_timeout, Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Largest accepted frame payload; a longer frame is refused from its header, before
    /// any payload is read (close 1009). Default 16 MiB.
    pub max_frame_size: u64,
    /// Largest accepted message (all fragments); refused at the frame that crosses it
    /// (close 1009). Default 64 MiB.
    pub max_message_size: u64,
    /// How long to wait for the peer to finish the close handshake (RFC 6455 §7.1.1),
    /// and for a client, for the server to close TCP afterwards. Default 30 s.
    pub close_timeout: Option<Duration>,
    /// Ping after a quiet interval and fail the connection if nothing comes back in
    /// time. Default off (the reconnecting clients in the adapters turn it on).
    pub keepalive: Option<KeepAlive>,
    /// End the connection (close 1001, then shut down) when no message arrives for this
    /// long. Default off.
    pub idle_timeout: Option<Duration>,
}

impl Config {
    /// The default settings.
    pub const DEFAULT: Config = Config {
        max_frame_size: 16 << 20,
        max_message_size: 64 << 20,
        close_timeout: Some(Duration::from_secs(30)),
        keepalive: None,
        idle_timeout: None,
    };

    /// Sets [`Config::max_frame_size`].
    pub const fn with_max_frame_size(mut self, bytes: u64) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub const fn with_max_message_size(mut self, bytes: u64) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::close_timeout`].
    pub const fn with_close_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.close_timeout = timeout;
        self
    }

    /// Sets [`Config::keepalive`].
    pub const fn with_keepalive(mut self, keepalive: Option<KeepAlive>) -> Self {
        self.keepalive = keepalive;
        self
    }

    /// Sets [`Config::idle_timeout`].
    pub const fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::DEFAULT
    }
}

/// Keepalive: after `interval` without inbound bytes a Ping is sent; if nothing at all
/// arrives within `timeout` after it, the connection ends as timed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeepAlive {
    /// Quiet time before a Ping is sent.
    pub interval: Duration,
    /// How long to wait for any inbound bytes (a Pong or anything else) after the Ping.
    pub timeout: Duration,
}

impl KeepAlive {
    /// A keepalive with the given ping interval and pong timeout.
    pub const fn new(interval: Duration, timeout: Duration) -> Self {
        KeepAlive { interval, timeout }
    }
}
