//! [`Settings`]: everything one connection of an adapter is configured with.

use core::time::Duration;

use sockeye_proto::handshake::HeadLimits;
use sockeye_proto::Config;

use crate::config::DriverConfig;

/// The settings of one adapter connection: the protocol [`Config`], buffer sizes, and the
/// handshake's timeouts and limits. Every field has a safe default; a core [`Config`]
/// converts into `Settings` with the other defaults.
///
/// ```
/// use core::time::Duration;
/// use sockeye_engine::Settings;
/// use sockeye_proto::Config;
///
/// let settings = Settings::from(Config::default().with_max_message_size(1 << 20))
///     .with_handshake_timeout(Some(Duration::from_secs(5)));
/// assert_eq!(settings.protocol.max_message_size, 1 << 20);
/// assert_eq!(settings.connect_timeout, Some(Duration::from_secs(10)));
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
    };

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
