//! Masking throughput against `memcpy` of the same size (the physical limit).
//!
//! `cargo bench -p sockeye-proto --bench mask`

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sockeye_proto::frame::apply_mask;

const SIZES: [usize; 5] = [16, 125, 4096, 64 * 1024, 1024 * 1024];

fn mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x5Au8; size];
        group.bench_with_input(BenchmarkId::new("apply_mask", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box([1, 2, 3, 4]), 0))
        });
        // An unaligned start and a key phase carried from an earlier chunk.
        group.bench_with_input(
            BenchmarkId::new("apply_mask_offset3", size),
            &size,
            |b, _| b.iter(|| apply_mask(black_box(&mut buf[1..]), black_box([1, 2, 3, 4]), 3)),
        );
        let src = vec![0xA5u8; size];
        let mut dst = vec![0u8; size];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| dst.copy_from_slice(black_box(&src)))
        });
    }
    group.finish();
}

criterion_group!(benches, mask);
criterion_main!(benches);
