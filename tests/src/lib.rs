//! Shared test harness for Sockeye's integration tests.
