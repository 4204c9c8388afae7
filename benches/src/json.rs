//! The messages of the compressed scenarios: JSON-like text, deterministic, that
//! deflate at level 1 shrinks about 4-5:1 as 1 KiB messages each compressed on its own
//! (as without context takeover: zlib-rs's level 1 uses fixed Huffman codes, and the
//! first record of each message is all literals), and about 8:1 as 64 KiB messages.
//!
//! Shared by the load generator (`loadgen --deflate`) and the criterion floor
//! (`benches/deflate.rs`), so that the end-to-end figures and the engine's floor are
//! measured on the same bytes.

/// `len` bytes of JSON-like records (an array of trades, cut at `len`),
/// generated from `seed`: valid UTF-8 (ASCII), the same for the same arguments.
pub fn records(len: usize, seed: u64) -> Vec<u8> {
    const SYMBOLS: [&str; 4] = ["BTC-USD", "ETH-USD", "SOL-USD", "BTC-EUR"];
    const SIDES: [&str; 2] = ["buy", "sell"];
    const STATUS: [&str; 3] = ["filled", "filled", "partial"];
    let mut state = seed.wrapping_mul(2).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let mut data = Vec::with_capacity(len + 256);
    data.push(b'[');
    let mut id = 40_000_000 + next() % 1_000_000;
    let mut ms = next() % 60_000;
    while data.len() < len {
        let r = next();
        id += 1;
        ms = (ms + r % 200) % 60_000;
        let record = format!(
            "{{\"id\":{id},\"symbol\":\"{}\",\"side\":\"{}\",\"price\":\"43{:02}0.50\",\
             \"size\":\"0.{}000\",\"time\":\"2026-12-05T10:23:{:02}.{:03}Z\",\"status\":\"{}\"}},",
            SYMBOLS[(r % 2) as usize],
            SIDES[((r >> 2) % 2) as usize],
            (r >> 3) % 100,
            (r >> 13) % 4,
            ms / 1000,
            ms % 1000 / 100 * 100,
            STATUS[((r >> 20) % 3) as usize],
        );
        data.extend_from_slice(record.as_bytes());
    }
    data.truncate(len);
    data
}

#[cfg(test)]
mod tests {
    use super::records;

    /// Raw deflate of `data` at `level`, sync-flushed, the way permessage-deflate
    /// sends one message without context takeover.
    fn deflated_len(data: &[u8], level: u32) -> usize {
        let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
        let mut out = Vec::with_capacity(data.len() + 64);
        c.compress_vec(data, &mut out, flate2::FlushCompress::Sync)
            .unwrap();
        out.len() - 4
    }

    #[test]
    fn records_are_deterministic_ascii_of_the_asked_length() {
        for len in [0, 1, 1024, 65536] {
            let a = records(len, 7);
            assert_eq!(a.len(), len);
            assert_eq!(a, records(len, 7));
            assert!(a.is_ascii());
        }
        assert_ne!(records(1024, 1), records(1024, 2));
    }

    #[test]
    fn records_compress_about_five_to_one_at_level_1() {
        for (len, low, high) in [(1024, 3.5, 6.5), (65536, 5.0, 12.0)] {
            let data = records(len, 1);
            let ratio = len as f64 / deflated_len(&data, 1) as f64;
            println!("{len} B: {ratio:.2}:1");
            assert!(ratio > low && ratio < high, "{len} B: {ratio:.2}:1");
        }
    }
}
