//! cargo-fuzz wrapper: a stream of peer bytes to a client connection.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::connection::connection_client(data));
