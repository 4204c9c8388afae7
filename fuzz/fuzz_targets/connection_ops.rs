//! cargo-fuzz wrapper: an arbitrary list of operations on one connection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::connection::connection_ops(data));
