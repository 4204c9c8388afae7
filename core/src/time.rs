//! Time as an input.
//!
//! The core never reads a clock: every method that cares about time takes the
//! current [`Instant`] as an argument, and deadlines come back out as `Instant`s.
//! An `Instant` is a count of nanoseconds since an epoch the caller chooses
//! (process start, boot, the first connection...). Only differences matter.

use core::time::Duration;

/// A point in time: nanoseconds since an epoch chosen by the caller.
///
/// ```
/// use core::time::Duration;
/// use sockeye_proto::Instant;
///
/// let start = Instant::from_nanos(1_000);
/// let later = start + Duration::from_millis(5);
/// assert_eq!(later.saturating_duration_since(start), Duration::from_millis(5));
/// assert_eq!(start.saturating_duration_since(later), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(u64);

impl Instant {
    /// The epoch itself.
    pub const ZERO: Instant = Instant(0);
    /// The last representable instant (about 584 years after the epoch); used as "never".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `nanos` nanoseconds after the epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        Instant(nanos)
    }

    /// An instant `millis` milliseconds after the epoch (saturating).
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1_000_000))
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at [`Instant::MAX`].
    pub fn saturating_add(self, duration: Duration) -> Self {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(nanos))
    }

    /// The time elapsed from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

impl core::ops::Add<Duration> for Instant {
    type Output = Instant;
    /// Saturating addition: deadlines far in the future clamp to [`Instant::MAX`].
    fn add(self, rhs: Duration) -> Instant {
        self.saturating_add(rhs)
    }
}

/// A clock for `std` users: `Instant`s measured from the moment the clock was made.
///
/// Adapters keep one per connection (or per process) and pass `clock.now()` to the core.
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
#[derive(Clone, Copy, Debug)]
pub struct StdClock {
    epoch: std::time::Instant,
}

#[cfg(feature = "std")]
impl StdClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        StdClock {
            epoch: std::time::Instant::now(),
        }
    }

    /// A clock whose epoch is `epoch`.
    pub fn with_epoch(epoch: std::time::Instant) -> Self {
        StdClock { epoch }
    }

    /// The current time as an [`Instant`].
    pub fn now(&self) -> Instant {
        self.at(std::time::Instant::now())
    }

    /// Converts a `std::time::Instant` to this clock's [`Instant`] (saturating at the epoch).
    pub fn at(&self, instant: std::time::Instant) -> Instant {
        let nanos = instant.saturating_duration_since(self.epoch).as_nanos();
        Instant(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Converts a core [`Instant`] back to a `std::time::Instant`, e.g. to sleep until a deadline.
    pub fn to_std(&self, instant: Instant) -> std::time::Instant {
        self.epoch + Duration::from_nanos(instant.0)
    }
}

#[cfg(feature = "std")]
impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_saturates() {
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(
            Instant::from_nanos(5) + Duration::from_nanos(7),
            Instant::from_nanos(12)
        );
        assert_eq!(Instant::from_millis(u64::MAX), Instant::MAX);
    }
}
