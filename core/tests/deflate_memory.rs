//! The codec's `held_bytes` against what it really allocates, counted by a global
//! allocator. One test in this binary, so no other test's allocations are counted.
#![cfg(feature = "deflate")]
// A global allocator needs `unsafe impl GlobalAlloc`; it only forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use sockeye_proto::deflate::{Deflater, Inflater};
use sockeye_proto::extension::Direction;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to `System` unchanged; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Relaxed)
}

#[test]
fn held_bytes_is_what_is_allocated() {
    let message: Vec<u8> = (0..20_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let mut payload = Vec::with_capacity(200_000);
    let mut out = vec![0u8; 4096];
    for bits in 8..=15u8 {
        for takeover in [false, true] {
            let direction = Direction {
                window_bits: bits,
                context_takeover: takeover,
            };
            let base = live();
            let mut deflater = Deflater::new(direction, 6);
            assert_eq!(live() - base, 0, "Deflater::new allocates nothing");
            payload.clear();
            deflater.compress(&message, true, &mut payload).unwrap();
            let working = live() - base;
            assert_eq!(
                working,
                deflater.held_bytes(),
                "deflater bits {bits} takeover {takeover}"
            );
            deflater.release();
            assert_eq!(live() - base, deflater.held_bytes());
            assert_eq!(deflater.held_bytes(), if takeover { 1 << bits } else { 0 });

            let base = live();
            let mut inflater = Inflater::new(direction);
            assert_eq!(live() - base, 0, "Inflater::new allocates nothing");
            let mut input = &payload[..];
            let mut peak = 0;
            loop {
                let step = inflater.inflate(input, true, &mut out).unwrap();
                input = &input[step.consumed..];
                let now = live() - base;
                peak = peak.max(now);
                if step.done {
                    break;
                }
                assert_eq!(
                    now,
                    inflater.held_bytes(),
                    "inflater bits {bits} takeover {takeover}"
                );
            }
            inflater.release();
            assert_eq!(live() - base, inflater.held_bytes());
            assert_eq!(inflater.held_bytes(), if takeover { 1 << bits } else { 0 });
            eprintln!(
                "bits {bits:2} takeover {takeover:5}: deflater working {working:6} B, inflater peak {peak:6} B, released {} / {} B",
                deflater.held_bytes(),
                inflater.held_bytes()
            );
        }
    }
}
