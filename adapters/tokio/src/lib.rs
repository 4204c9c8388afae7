//! Sockeye on tokio (work in progress).
