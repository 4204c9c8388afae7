//! cargo-fuzz wrapper: the frame header codec and masking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::frames::frame_header(data));
