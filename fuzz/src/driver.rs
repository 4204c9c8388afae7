//! The buffered [`Driver`]: whatever its buffer sizes, its direct-read threshold and the
//! sizes of the reads, it must hand out exactly what a plain configuration does for the
//! same bytes (a differential target), and never panic.

use arbitrary::{Arbitrary, Unstructured};
use sockeye_engine::{Driver, DriverConfig, Message, Outcome};
use sockeye_proto::frame::apply_mask;
use sockeye_proto::{Config, Connection, Instant, MIN_INPUT_BUFFER};
use std::task::Poll;

/// What the client sends: mostly well-formed masked frames (so the fuzzer reaches deep
/// into large-frame handling), with raw bytes mixed in.
#[derive(Arbitrary, Debug)]
enum Piece {
    /// A data message (binary or text) in fragments of these sizes (the rest last).
    Message {
        text: bool,
        /// The payload: `len` bytes of a pattern (large payloads cost no input bytes).
        len: u32,
        seed: u8,
        fragments: Vec<u16>,
        key: [u8; 4],
    },
    /// A control frame (opcode 8, 9 or 10 by `kind % 3`), payload cut to 125 bytes.
    Control {
        kind: u8,
        payload: Vec<u8>,
        key: [u8; 4],
    },
    /// Raw bytes, valid or not.
    Raw(Vec<u8>),
}

fn frame(out: &mut Vec<u8>, fin: bool, opcode: u8, payload: &[u8], key: [u8; 4]) {
    out.push((u8::from(fin) << 7) | opcode);
    let len = payload.len();
    match len {
        0..=125 => out.push(0x80 | len as u8),
        126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], key, 0);
}

fn wire(pieces: &[Piece]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Message {
                text,
                len,
                seed,
                fragments,
                key,
            } => {
                // Up to 256 KiB per message, 1 MiB in all: large frames, bounded time.
                let len = (*len % (256 << 10)) as usize;
                if out.len() + len > 1 << 20 {
                    continue;
                }
                let payload: Vec<u8> = if *text {
                    "añ€𝄞"
                        .bytes()
                        .cycle()
                        .skip(usize::from(*seed) % 10)
                        .take(len)
                        .collect()
                } else {
                    (0..len)
                        .map(|i| (i as u8).wrapping_mul(*seed | 1))
                        .collect()
                };
                let mut rest = &payload[..];
                let mut first = true;
                for &size in fragments.iter().take(8) {
                    let size = usize::from(size).min(rest.len());
                    let (now, later) = rest.split_at(size);
                    frame(
                        &mut out,
                        false,
                        if first { 1 + u8::from(!*text) } else { 0 },
                        now,
                        *key,
                    );
                    first = false;
                    rest = later;
                }
                frame(
                    &mut out,
                    true,
                    if first { 1 + u8::from(!*text) } else { 0 },
                    rest,
                    *key,
                );
            }
            Piece::Control { kind, payload, key } => {
                let payload = &payload[..payload.len().min(125)];
                frame(&mut out, true, 8 + kind % 3, payload, *key);
            }
            Piece::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
    out
}

/// Everything the driver hands out for `wire`, read in pieces of the `reads` sizes
/// (cycled), then end of stream.
/// The messages, then the end (as `Err`) if the connection ended.
fn run(wire: &[u8], config: DriverConfig, reads: &[u32]) -> Vec<Result<Message, Outcome>> {
    let now = Instant::ZERO;
    let mut driver = Driver::new(Connection::server(Config::default(), now), config);
    let mut out = Vec::new();
    let mut offset = 0;
    let mut turn = 0;
    // Every turn reads at least one byte, reaches the end of stream, or ends.
    for _ in 0..2 * wire.len() + 64 {
        if let Some(message) = driver.poll_message(now) {
            out.push(Ok(message));
            continue;
        }
        if let Some(outcome) = driver.outcome() {
            out.push(Err(outcome.clone()));
            return out;
        }
        let limit = reads
            .get(turn % reads.len().max(1))
            .map_or(usize::MAX, |&r| r.max(1) as usize);
        turn += 1;
        let read = driver.read_with(|buf: &mut [u8]| -> Poll<Result<usize, ()>> {
            let n = buf.len().min(limit).min(wire.len() - offset);
            buf[..n].copy_from_slice(&wire[offset..offset + n]);
            offset += n;
            Poll::Ready(Ok(n))
        });
        assert!(matches!(read, Poll::Ready(Ok(_))), "{read:?}");
    }
    panic!(
        "the driver neither ended nor kept reading ({offset} of {} bytes)",
        wire.len()
    );
}

/// Differential: a fuzzed configuration and read pattern against 64 KiB reads through
/// the read buffer only.
pub fn driver_reads(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let (Ok(buffer), Ok(threshold), Ok(reads), Ok(pieces)) = (
        u8::arbitrary(&mut u),
        u8::arbitrary(&mut u),
        Vec::<u32>::arbitrary(&mut u),
        Vec::<Piece>::arbitrary(&mut u),
    ) else {
        return;
    };
    let wire = wire(&pieces);
    let read_buffer = [MIN_INPUT_BUFFER, 200, 1024, 4096, 65536][usize::from(buffer) % 5];
    let threshold = [0, 256, 1024, 16 * 1024, usize::MAX][usize::from(threshold) % 5];
    let reads: Vec<u32> = reads.into_iter().take(16).map(|r| r % 200_000).collect();
    let fuzzed = DriverConfig::default()
        .with_read_buffer_size(read_buffer)
        .with_direct_read_threshold(threshold);
    let plain = DriverConfig::default().with_direct_read_threshold(usize::MAX);
    let expected = run(&wire, plain, &[]);
    let got = run(&wire, fuzzed, &reads);
    assert!(
        got == expected,
        "read buffer {read_buffer}, threshold {threshold}, reads {reads:?}: {} items vs {}",
        got.len(),
        expected.len()
    );
}
