//! Sockeye on mio (work in progress).
