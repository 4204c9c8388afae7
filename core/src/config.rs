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
    /// time: how a connection behind a proxy or a load balancer notices that it died
    /// silently, and keeps idle ones from being cut (most cut after 60 s of silence).
    /// Default on, both roles: a Ping after 30 s without input, and 30 s for an answer
    /// ([`KeepAlive::DEFAULT`]); `None` turns it off.
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
        keepalive: Some(KeepAlive::DEFAULT),
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
    /// A Ping after 30 s without input, and 30 s for anything to come back: under the
    /// 60 s idle cut of the common proxies and load balancers (nginx, AWS ALB), and a
    /// dead link noticed within a minute.
    pub const DEFAULT: KeepAlive = KeepAlive::new(Duration::from_secs(30), Duration::from_secs(30));

    /// A keepalive with the given ping interval and pong timeout.
    pub const fn new(interval: Duration, timeout: Duration) -> Self {
        KeepAlive { interval, timeout }
    }
}

/// A [`Config`] as a [`Connection`](crate::connection::Connection) keeps it: durations in
/// nanoseconds, [`Packed::OFF`] for a timer that is off. 48 bytes instead of the 80 of a
/// `Config` (whose `Option<Duration>`s take 16 bytes each), in every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Packed {
    pub(crate) max_frame_size: u64,
    pub(crate) max_message_size: u64,
    close_timeout: u64,
    keepalive_interval: u64,
    keepalive_timeout: u64,
    idle_timeout: u64,
}

impl Packed {
    /// A timer that is off.
    const OFF: u64 = u64::MAX;

    pub(crate) fn new(config: &Config) -> Self {
        let keepalive = config.keepalive;
        Packed {
            max_frame_size: config.max_frame_size,
            max_message_size: config.max_message_size,
            close_timeout: Self::pack(config.close_timeout),
            keepalive_interval: Self::pack(keepalive.map(|k| k.interval)),
            keepalive_timeout: Self::pack(keepalive.map(|k| k.timeout)),
            idle_timeout: Self::pack(config.idle_timeout),
        }
    }

    /// The settings as a `Config` again: the same as given, except that a duration of
    /// 2^64 - 1 ns (584 years) or more reads back as 2^64 - 2 ns (for a deadline it is
    /// never either way).
    pub(crate) fn unpack(&self) -> Config {
        let keepalive = Self::duration(self.keepalive_interval).map(|interval| KeepAlive {
            interval,
            timeout: Self::duration(self.keepalive_timeout).unwrap_or_default(),
        });
        Config {
            max_frame_size: self.max_frame_size,
            max_message_size: self.max_message_size,
            close_timeout: Self::duration(self.close_timeout),
            keepalive,
            idle_timeout: Self::duration(self.idle_timeout),
        }
    }

    /// The close timeout in nanoseconds, if on.
    pub(crate) fn close_timeout(&self) -> Option<u64> {
        Self::nanos(self.close_timeout)
    }

    /// The keepalive interval and pong timeout in nanoseconds, if on.
    pub(crate) fn keepalive(&self) -> Option<(u64, u64)> {
        Self::nanos(self.keepalive_interval).map(|interval| (interval, self.keepalive_timeout))
    }

    /// The idle timeout in nanoseconds, if on.
    pub(crate) fn idle_timeout(&self) -> Option<u64> {
        Self::nanos(self.idle_timeout)
    }

    // Once per connection, four times: one copy of its 64-bit arithmetic is enough.
    #[inline(never)]
    fn pack(duration: Option<Duration>) -> u64 {
        match duration {
            Some(duration) => u64::try_from(duration.as_nanos())
                .unwrap_or(Self::OFF)
                .min(Self::OFF - 1),
            None => Self::OFF,
        }
    }

    fn nanos(packed: u64) -> Option<u64> {
        (packed != Self::OFF).then_some(packed)
    }

    fn duration(packed: u64) -> Option<Duration> {
        Self::nanos(packed).map(Duration::from_nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_config_reads_back_unchanged() {
        let configs = [
            Config::DEFAULT,
            Config::DEFAULT
                .with_max_frame_size(u64::MAX)
                .with_max_message_size(0)
                .with_close_timeout(None)
                .with_idle_timeout(Some(Duration::ZERO))
                .with_keepalive(Some(KeepAlive::new(
                    Duration::new(7, 123_456_789),
                    Duration::from_nanos(1),
                ))),
            Config::DEFAULT.with_keepalive(Some(KeepAlive::new(Duration::ZERO, Duration::ZERO))),
        ];
        for config in configs {
            assert_eq!(Packed::new(&config).unpack(), config);
        }
        // Beyond 584 years: clamped just below "off".
        let far = Config::DEFAULT.with_idle_timeout(Some(Duration::MAX));
        assert_eq!(
            Packed::new(&far).unpack().idle_timeout,
            Some(Duration::from_nanos(u64::MAX - 1))
        );
    }
}
