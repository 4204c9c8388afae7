//! `tracing` events (feature `tracing`), under the target `sockeye`. Without the
//! feature the macro expands to nothing, so the arguments are not even evaluated.

/// A `debug`-level event, compiled only with the `tracing` feature.
macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        {
            ::tracing::debug!(target: "sockeye", $($arg)*);
        }
    }};
}

pub(crate) use debug;
