//! cargo-fuzz wrapper: the client's upgrade response parser.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::handshake::client_response(data));
