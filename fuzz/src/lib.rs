//! Fuzz target bodies: plain functions over bytes, called by the libFuzzer wrappers in
//! `fuzz_targets/` and replayed over `corpus/<target>/` by `cargo test -p sockeye-fuzz`.
//!
//! Each body checks invariants with `assert!`, so a violated invariant is a crash the
//! fuzzer reports, not only a panic inside the core.

pub mod connection;
pub mod deflate;
pub mod driver;
pub mod frames;
pub mod handshake;

/// A fuzz target body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its wrapper in `fuzz_targets/` and its corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("server_request", handshake::server_request),
    ("client_response", handshake::client_response),
    ("frame_header", frames::frame_header),
    ("connection_server", connection::connection_server),
    ("connection_client", connection::connection_client),
    ("connection_ops", connection::connection_ops),
    ("round_trip", connection::round_trip),
    ("driver_reads", driver::driver_reads),
    ("inflate", deflate::inflate_target),
    ("deflate_roundtrip", deflate::deflate_roundtrip),
];
