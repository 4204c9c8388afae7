//! cargo-fuzz wrapper: what one side sends, the other receives identically.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::connection::round_trip(data));
