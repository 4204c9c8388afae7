//! cargo-fuzz wrapper: the client's upgrade response parser, and the driver's client
//! handshake over the same bytes (a rejection's body included).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::handshake::client_response(data));
