//! Sockeye on smol (work in progress).
