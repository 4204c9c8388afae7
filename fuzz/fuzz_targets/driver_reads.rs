//! cargo-fuzz wrapper: the buffered driver hands out the same messages whatever its
//! buffer sizes, direct-read threshold and read sizes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::driver::driver_reads(data));
