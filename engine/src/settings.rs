//! [`Settings`]: everything one connection of an adapter is configured with.

use core::time::Duration;

use sockeye_proto::handshake::HeadLimits;
use sockeye_proto::{Config, DeflateConfig, KeepAlive};

use crate::config::DriverConfig;

/// The settings of one adapter connection: the protocol [`Config`], buffer sizes, and the
/// handshake's timeouts and limits. Every field has a safe default; a core [`Config`]
/// converts into `Settings` with the other defaults.
///
/// The common settings have their own setters (the same names on every adapter's
/// re-export of this type):
///
/// ```
/// # use sockeye_engine::Settings;
/// # use sockeye_proto::KeepAlive;
/// use std::time::Duration;
///
/// let settings = Settings::default()
///     .with_keepalive(Some(KeepAlive::new(Duration::from_secs(20), Duration::from_secs(10))))
///     .with_max_message_size(1 << 20)
///     .with_handshake_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(settings.protocol.max_message_size, 1 << 20);
/// assert_eq!(settings.connect_timeout, Some(Duration::from_secs(10)));
/// // Keepalive is on by default: a Ping after 30 s without input, 30 s for an answer.
/// assert_eq!(Settings::default().protocol.keepalive, Some(KeepAlive::DEFAULT));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Limits and timers of the connection itself.
    pub protocol: Config,
    /// Read buffer, write coalescing and backpressure.
    pub buffers: DriverConfig,
    /// How long the whole opening handshake may take (a server drops a peer that never
    /// finishes its request: slowloris). Default 10 s.
    pub handshake_timeout: Option<Duration>,
    /// How long a client may take to open the TCP connection. Default 10 s.
    pub connect_timeout: Option<Duration>,
    /// The largest request or response head. Default 8 KiB.
    pub head_limits: HeadLimits,
    /// After a server refused a handshake and wrote its answer: how long it reads (and
    /// drops, up to 64 KiB) what the client still sends before closing, so that closing
    /// does not reset the connection before the client read the answer. It comes after
    /// the handshake timeout, not inside it. Default 1 s.
    pub refusal_linger: Duration,
    /// permessage-deflate (RFC 7692): this end's policy, offered by a client and
    /// negotiated by a server (a server's [`Accept`](crate::verdict::Accept) may choose
    /// another per request). Default `None`: not offered, offers declined.
    pub compression: Option<DeflateConfig>,
}

impl Settings {
    /// The default settings.
    pub const DEFAULT: Settings = Settings {
        protocol: Config::DEFAULT,
        buffers: DriverConfig::DEFAULT,
        handshake_timeout: Some(Duration::from_secs(10)),
        connect_timeout: Some(Duration::from_secs(10)),
        head_limits: HeadLimits::DEFAULT,
        refusal_linger: Duration::from_secs(1),
        compression: None,
    };

    /// Sets the keepalive ([`Config::keepalive`]: on by default, a Ping after 30 s
    /// without input and 30 s for an answer; `None` turns it off).
    pub fn with_keepalive(mut self, keepalive: Option<KeepAlive>) -> Self {
        self.protocol.keepalive = keepalive;
        self
    }

    /// Sets the largest message accepted ([`Config::max_message_size`], 64 MiB).
    pub fn with_max_message_size(mut self, bytes: u64) -> Self {
        self.protocol.max_message_size = bytes;
        self
    }

    /// Sets the close handshake's timeout ([`Config::close_timeout`], 30 s).
    pub fn with_close_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.protocol.close_timeout = timeout;
        self
    }

    /// Sets the idle timeout ([`Config::idle_timeout`], off).
    pub fn with_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.protocol.idle_timeout = timeout;
        self
    }

    /// Sets the send queue's bound ([`DriverConfig::max_pending_bytes`], 1 MiB).
    pub fn with_max_pending_bytes(mut self, bytes: usize) -> Self {
        self.buffers.max_pending_bytes = bytes;
        self
    }

    /// Sets the write-stall timeout ([`DriverConfig::write_stall_timeout`], 30 s).
    pub fn with_write_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.buffers.write_stall_timeout = timeout;
        self
    }

    /// Sets [`Settings::protocol`].
    pub fn with_protocol(mut self, config: Config) -> Self {
        self.protocol = config;
        self
    }

    /// Sets [`Settings::buffers`].
    pub fn with_buffers(mut self, buffers: DriverConfig) -> Self {
        self.buffers = buffers;
        self
    }

    /// Sets [`Settings::handshake_timeout`].
    pub fn with_handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`Settings::connect_timeout`].
    pub fn with_connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Settings::refusal_linger`].
    pub fn with_refusal_linger(mut self, linger: Duration) -> Self {
        self.refusal_linger = linger;
        self
    }

    /// Turns permessage-deflate on with this policy ([`Settings::compression`]).
    ///
    /// ```
    /// # use sockeye_engine::Settings;
    /// # use sockeye_proto::DeflateConfig;
    /// let settings = Settings::default().with_compression(DeflateConfig::default());
    /// assert!(settings.compression.is_some());
    /// assert_eq!(settings.without_compression().compression, None);
    /// ```
    pub fn with_compression(mut self, config: DeflateConfig) -> Self {
        self.compression = Some(config);
        self
    }

    /// Turns permessage-deflate off (the default).
    pub fn without_compression(mut self) -> Self {
        self.compression = None;
        self
    }

    /// Sets [`Settings::head_limits`].
    pub fn with_head_limits(mut self, limits: HeadLimits) -> Self {
        self.head_limits = limits;
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::DEFAULT
    }
}

impl From<Config> for Settings {
    fn from(config: Config) -> Self {
        Settings::DEFAULT.with_protocol(config)
    }
}
