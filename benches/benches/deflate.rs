//! The floor under a compressed echo: what the deflate engine alone costs per echoed
//! message, on the bytes of the compressed scenarios (`deflate-1k`, `deflate-64k` in
//! `benches/compare.sh`, messages from `sockeye_benches::json`).
//!
//! One iteration is what an echo server's codec does for one message, the way Sockeye's
//! driver (`engine/src/compression.rs`) does it: inflate the client's compressed payload
//! into a 16 KiB scratch, piece by piece, then compress the message for the echo into a
//! buffer of half its size (grown as needed) with a sync flush and the tail stripped.
//! Level 1, 15-bit windows, as Sockeye's `DeflateConfig::DEFAULT` and the comparison.
//!
//! - `no_takeover/driver`: no context takeover both ways, as the driver does it: after
//!   every message each codec hands its engine (reset) to the thread's pool and takes
//!   it back for the next (`release_engine` / `adopt_engine`), so nothing is built
//!   again and an idle connection holds nothing.
//! - `no_takeover/rebuilt`: the same, but each engine is freed after every message and
//!   built again for the next (the driver before the pool): what rebuilding costs.
//! - `takeover/kept`: context takeover both ways, engines kept (a busy connection).
//!
//! The floor the comparison quotes is `no_takeover/driver`: the codec's work for one
//! echo, with nothing of the server's (no framing, masking, UTF-8, I/O).
//!
//! `cargo bench -p sockeye-benches --bench deflate [-- FILTER]`

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sockeye_benches::json;
use sockeye_proto::deflate::{Deflater, Inflater};
use sockeye_proto::extension::Direction;

/// The driver's inflate scratch (`SCRATCH` in `engine/src/compression.rs`).
const SCRATCH: usize = 16 * 1024;

/// What happens to the codec engines between messages.
#[derive(Clone, Copy, PartialEq)]
enum Between {
    /// Handed to a pool and taken back (the driver).
    Pooled,
    /// Freed, and built again for the next message.
    Rebuilt,
    /// Kept by the connection (context takeover).
    Kept,
}

/// The codec of one echoing connection (server side).
struct Echo {
    inflater: Inflater,
    deflater: Deflater,
    between: Between,
    scratch: Vec<u8>,
}

impl Echo {
    fn new(direction: Direction, between: Between) -> Self {
        let inflater = Inflater::new(direction);
        Echo {
            inflater: match between {
                Between::Pooled => inflater.keeping_engine(),
                _ => inflater,
            },
            deflater: Deflater::new(direction, 1),
            between,
            scratch: vec![0; SCRATCH],
        }
    }

    /// Inflates one message's payload and compresses the message again; returns the
    /// inflated length and the compressed echo.
    fn echo(&mut self, payload: &[u8], message: &[u8]) -> (usize, Vec<u8>) {
        let mut input = payload;
        let mut inflated = 0;
        loop {
            let step = self
                .inflater
                .inflate(input, true, &mut self.scratch)
                .expect("inflate");
            input = &input[step.consumed..];
            inflated += step.produced;
            if step.done {
                break;
            }
        }
        let mut out = Vec::with_capacity(message.len() / 2 + 64);
        self.deflater
            .compress(message, true, &mut out)
            .expect("compress");
        match self.between {
            Between::Pooled => {
                // A pool of one: the engines leave the connection and come back.
                let deflate = self.deflater.release_engine().expect("deflate engine");
                let inflate = self.inflater.release_engine().expect("inflate engine");
                assert!(self.deflater.adopt_engine(deflate).is_none());
                assert!(self.inflater.adopt_engine(inflate).is_none());
            }
            Between::Rebuilt => self.deflater.release(),
            Between::Kept => {}
        }
        (inflated, out)
    }
}

fn echo(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_echo");
    for size in [1024usize, 64 << 10] {
        let message = json::records(size, 1);
        let variants = [
            ("no_takeover/driver", false, Between::Pooled),
            ("no_takeover/rebuilt", false, Between::Rebuilt),
            ("takeover/kept", true, Between::Kept),
        ];
        for (name, takeover, between) in variants {
            let direction = Direction {
                window_bits: 15,
                context_takeover: takeover,
            };
            // The client's payload: what the load generator sends (each message on its
            // own without takeover; with takeover, the same message again, compressed
            // against the previous ones, like a client that keeps its context).
            let mut client = Deflater::new(direction, 1);
            let mut payload = Vec::new();
            client
                .compress(&message, true, &mut payload)
                .expect("client");
            if takeover {
                payload.clear();
                client
                    .compress(&message, true, &mut payload)
                    .expect("client");
            }
            let mut server = Echo::new(direction, between);
            if takeover {
                // Prime the server's windows with the message the client compressed first.
                let mut first = Deflater::new(direction, 1);
                let mut p = Vec::new();
                first.compress(&message, true, &mut p).expect("first");
                server.echo(&p, &message);
            }
            let (inflated, out) = server.echo(&payload, &message);
            assert_eq!(inflated, size);
            if !takeover {
                eprintln!(
                    "deflate_echo {size} B: client payload {} B ({:.2}:1), echo {} B ({:.2}:1)",
                    payload.len(),
                    size as f64 / payload.len() as f64,
                    out.len(),
                    size as f64 / out.len() as f64
                );
            }
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_function(BenchmarkId::new(name, size), |b| {
                if takeover {
                    // With takeover each payload depends on the ones before: the client
                    // keeps compressing, the server inflates what it sent.
                    b.iter(|| {
                        payload.clear();
                        client
                            .compress(&message, true, &mut payload)
                            .expect("client");
                        black_box(server.echo(black_box(&payload), &message))
                    });
                } else {
                    b.iter(|| black_box(server.echo(black_box(&payload), &message)));
                }
            });
            if takeover {
                // The client's compress is in that loop: measured alone to subtract.
                group.bench_function(BenchmarkId::new("takeover/client_compress", size), |b| {
                    b.iter(|| {
                        payload.clear();
                        client
                            .compress(&message, true, &mut payload)
                            .expect("client");
                        black_box(payload.len())
                    });
                });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, echo);
criterion_main!(benches);
