//! cargo-fuzz wrapper: the permessage-deflate inflater on arbitrary or damaged payloads.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::deflate::inflate_target(data));
