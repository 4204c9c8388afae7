//! Throughput of the permessage-deflate codec: compress + inflate of JSON-like
//! messages (1 KiB and 64 KiB, ~4–6:1) at levels 1 and 6, with and without context
//! takeover, 15-bit and 9-bit windows. A plain timing loop; figures in
//! `core/src/deflate/ENGINE.md`.

use std::time::Instant;

use sockeye_proto::deflate::{Deflater, Inflater};
use sockeye_proto::extension::Direction;

/// JSON-like records, deterministic.
fn json(len: usize, seed: &mut u64) -> Vec<u8> {
    let names = ["alice", "bob", "carol", "dave", "eve", "mallory"];
    let mut data = Vec::new();
    while data.len() < len {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = *seed >> 33;
        let record = format!(
            "{{\"id\":{},\"user\":\"{}\",\"price\":{}.{:02},\"ok\":{},\"tag\":\"{:x}\"}},",
            r % 100_000,
            names[(r % 6) as usize],
            r % 1000,
            r % 100,
            r % 2 == 0,
            r % 65536
        );
        data.extend_from_slice(record.as_bytes());
    }
    data.truncate(len);
    data
}

fn run(direction: Direction, level: u8, messages: &[Vec<u8>], rounds: usize) -> (f64, f64) {
    let mut deflater = Deflater::new(direction, level);
    let mut inflater = Inflater::new(direction);
    let mut payload = Vec::new();
    let mut out = vec![0u8; 16 << 10];
    let (mut plain, mut packed) = (0usize, 0usize);
    let start = Instant::now();
    for _ in 0..rounds {
        for message in messages {
            payload.clear();
            deflater.compress(message, true, &mut payload).unwrap();
            let mut input = &payload[..];
            let mut produced = 0;
            loop {
                let step = inflater.inflate(input, true, &mut out).unwrap();
                input = &input[step.consumed..];
                produced += step.produced;
                if step.done {
                    break;
                }
            }
            assert_eq!(produced, message.len());
            plain += message.len();
            packed += payload.len();
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    (plain as f64 / seconds / 1e6, plain as f64 / packed as f64)
}

fn main() {
    let mut seed = 1;
    let small: Vec<Vec<u8>> = (0..2000).map(|_| json(1 << 10, &mut seed)).collect();
    let large: Vec<Vec<u8>> = (0..32).map(|_| json(64 << 10, &mut seed)).collect();
    println!("compress + inflate, MB/s of message bytes (ratio)");
    for bits in [15, 9] {
        for takeover in [true, false] {
            for level in [1, 6] {
                let direction = Direction {
                    window_bits: bits,
                    context_takeover: takeover,
                };
                let (s, sr) = run(direction, level, &small, 10);
                let (l, lr) = run(direction, level, &large, 10);
                println!(
                    "bits {bits:2} takeover {takeover:5} level {level}: 1 KiB {s:6.0} MB/s ({sr:.2}:1)   64 KiB {l:6.0} MB/s ({lr:.2}:1)"
                );
            }
        }
    }
}
