//! cargo-fuzz wrapper: the server's upgrade request parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::handshake::server_request(data));
