//! cargo-fuzz wrapper: permessage-deflate compress then inflate is the identity.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sockeye_fuzz::deflate::deflate_roundtrip(data));
