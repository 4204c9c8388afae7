//! `memcpy` of a message-sized buffer: the physical limit any pass over the
//! payload (masking, UTF-8 validation) is compared against. Same sizes as the
//! masking bench in issue 7: 16 B, 125 B (largest control payload), 4 KiB,
//! 64 KiB, 1 MiB.
//!
//! cargo bench -p sockeye-benches --bench memcpy

// criterion_group! generates an undocumented pub fn.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// The payload sizes every per-byte bench uses.
const SIZES: [usize; 5] = [16, 125, 4 << 10, 64 << 10, 1 << 20];

fn memcpy(c: &mut Criterion) {
    let mut group = c.benchmark_group("memcpy");
    for size in SIZES {
        let src: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut dst = vec![0u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &src, |b, src| {
            b.iter(|| {
                dst.copy_from_slice(black_box(src));
                black_box(&mut dst);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, memcpy);
criterion_main!(benches);
