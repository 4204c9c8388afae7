//! Sockeye benchmarks.
