//! The driver's buffer and queue settings.

use std::time::Duration;

use sockeye_proto::MIN_INPUT_BUFFER;

/// Buffer and queue settings of a [`Driver`](crate::Driver).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Size of a read buffer (taken from the per-thread pool). Larger frames stream
    /// through it in chunks. Default 64 KiB; at least [`MIN_INPUT_BUFFER`].
    pub read_buffer_size: usize,
    /// Payloads up to this size are copied into the coalescing write buffer (many small
    /// frames per write); larger ones are written from where they are. Default 16 KiB.
    pub coalesce_limit: usize,
    /// The send queue's bound: while more than this many bytes wait to be written,
    /// [`Driver::is_writable`](crate::Driver::is_writable) is false (sends wait), the
    /// connection stops reading (so a peer that never reads cannot make it queue Pongs
    /// or echoes), and control frames wait in the core's fixed slots. Default 1 MiB.
    pub max_pending_bytes: usize,
    /// A peer that stops reading: when queued bytes make no progress for this long, the
    /// connection ends with `Outcome::TimedOut(Timeout::WriteStall)`. Default 30 s;
    /// `None` waits forever.
    pub write_stall_timeout: Option<Duration>,
    /// After the end, how long our last frames (a Close reply) may take to leave before
    /// the transport is dropped. `None` (the default): the close timeout, or 30 s
    /// without one.
    pub linger: Option<Duration>,
    /// Binary frames with at least this many payload bytes are read straight into the
    /// message being assembled by [`Driver::poll_message`](crate::Driver::poll_message) instead of through the read
    /// buffer, which saves copying them. Default 16 KiB; `usize::MAX` turns it off.
    ///
    /// While such frames keep coming, reads into the read buffer (for the next frame's
    /// header) take at most 256 bytes, so that little of the next payload lands there and
    /// has to be copied.
    pub direct_read_threshold: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig::DEFAULT
    }
}

impl DriverConfig {
    /// The default settings (64 KiB reads, 16 KiB coalescing, 1 MiB backpressure, frames
    /// of 16 KiB and more read straight into their message).
    pub const DEFAULT: DriverConfig = DriverConfig {
        read_buffer_size: 64 * 1024,
        coalesce_limit: 16 * 1024,
        max_pending_bytes: 1024 * 1024,
        direct_read_threshold: 16 * 1024,
        write_stall_timeout: Some(Duration::from_secs(30)),
        linger: None,
    };

    /// Sets [`DriverConfig::read_buffer_size`] (raised to [`MIN_INPUT_BUFFER`] if smaller).
    pub fn with_read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes.max(MIN_INPUT_BUFFER);
        self
    }

    /// Sets [`DriverConfig::max_pending_bytes`].
    pub fn with_max_pending_bytes(mut self, bytes: usize) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// Sets [`DriverConfig::coalesce_limit`].
    pub fn with_coalesce_limit(mut self, bytes: usize) -> Self {
        self.coalesce_limit = bytes;
        self
    }

    /// Sets [`DriverConfig::write_stall_timeout`].
    pub fn with_write_stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.write_stall_timeout = timeout;
        self
    }

    /// Sets [`DriverConfig::linger`].
    pub fn with_linger(mut self, linger: Option<Duration>) -> Self {
        self.linger = linger;
        self
    }

    /// Sets [`DriverConfig::direct_read_threshold`] (`usize::MAX`: never read directly).
    pub fn with_direct_read_threshold(mut self, bytes: usize) -> Self {
        self.direct_read_threshold = bytes;
        self
    }

    /// While large frames keep coming: how far a direct read runs past its frame, and
    /// how much a read into the read buffer takes. Enough for the next frame's header (so
    /// a stream of large frames takes one read per frame) and a little of what follows,
    /// but no more, because those bytes are copied (into the read buffer, then into the
    /// next message). It fits in the read buffer.
    pub(crate) fn lookahead(&self) -> usize {
        LOOKAHEAD.min(self.read_buffer_size)
    }
}

/// How far past the received bytes a growing message buffer is zeroed for direct
/// reads (each read then fills at most this much).
pub(crate) const ZEROED_AHEAD: usize = 1 << 20;

/// See [`DriverConfig::lookahead`]: a header is at most 14 bytes; the rest leaves room
/// for a control frame or two.
const LOOKAHEAD: usize = 256;

/// [`DriverConfig`] as every driver keeps it: sizes as `u32` (larger values saturate) and
/// durations in milliseconds, 24 bytes instead of 80 in each connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    read_buffer_size: u32,
    coalesce_limit: u32,
    max_pending_bytes: u32,
    direct_read_threshold: u32,
    /// Milliseconds (saturating below `u32::MAX`, about 49 days); `u32::MAX` is `None`.
    write_stall_ms: u32,
    linger_ms: u32,
}

fn pack_ms(duration: Option<Duration>) -> u32 {
    duration.map_or(u32::MAX, |d| {
        u32::try_from(d.as_millis())
            .unwrap_or(u32::MAX - 1)
            .min(u32::MAX - 1)
    })
}

fn unpack_ms(ms: u32) -> Option<Duration> {
    (ms != u32::MAX).then(|| Duration::from_millis(u64::from(ms)))
}

impl Tuning {
    pub(crate) fn new(config: DriverConfig) -> Self {
        let narrow = |bytes: usize| u32::try_from(bytes).unwrap_or(u32::MAX);
        Tuning {
            read_buffer_size: narrow(config.read_buffer_size.max(MIN_INPUT_BUFFER)),
            coalesce_limit: narrow(config.coalesce_limit),
            max_pending_bytes: narrow(config.max_pending_bytes),
            direct_read_threshold: narrow(config.direct_read_threshold),
            write_stall_ms: pack_ms(config.write_stall_timeout),
            linger_ms: pack_ms(config.linger),
        }
    }

    pub(crate) fn config(self) -> DriverConfig {
        let widen = |bytes: u32| usize::try_from(bytes).unwrap_or(usize::MAX);
        DriverConfig {
            read_buffer_size: widen(self.read_buffer_size),
            coalesce_limit: widen(self.coalesce_limit),
            max_pending_bytes: widen(self.max_pending_bytes),
            direct_read_threshold: widen(self.direct_read_threshold),
            write_stall_timeout: unpack_ms(self.write_stall_ms),
            linger: unpack_ms(self.linger_ms),
        }
    }
}
