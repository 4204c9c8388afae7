//! What the driver tests share: a counting allocator (the one way to see what a call
//! allocates), drivers, and moving bytes from one driver to another.
// Each test file uses its own part of this.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::task::Poll;

use sockeye_engine::{Driver, DriverConfig, Message};
use sockeye_proto::{Config, Connection, Instant, Role};

/// Counts the bytes this thread allocates while `COUNTING` is set.
struct Counting;

/// How many of the largest allocations [`counted`] remembers.
const KEPT: usize = 8;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Allocations of at least this many bytes are remembered, with their address.
    static LARGE_FROM: Cell<usize> = const { Cell::new(usize::MAX) };
    static LARGE: Cell<[(usize, usize); KEPT]> = const { Cell::new([(0, 0); KEPT]) };
    static LARGE_COUNT: Cell<usize> = const { Cell::new(0) };
}

/// Notes an allocation of `size` bytes at `at` (nothing here allocates).
fn note(size: usize, at: *mut u8) {
    let _ = COUNTING.try_with(|counting| {
        if !counting.get() {
            return;
        }
        ALLOCATED.with(|a| a.set(a.get() + size));
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        if size >= LARGE_FROM.with(Cell::get) {
            let index = LARGE_COUNT.with(|n| {
                n.set(n.get() + 1);
                n.get() - 1
            });
            if index < KEPT {
                LARGE.with(|large| {
                    let mut kept = large.get();
                    kept[index] = (size, at as usize);
                    large.set(kept);
                });
            }
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let at = unsafe { System.alloc(layout) };
        note(layout.size(), at);
        at
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as given.
        let at = unsafe { System.alloc_zeroed(layout) };
        note(layout.size(), at);
        at
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as given.
        let at = unsafe { System.realloc(ptr, layout, new_size) };
        note(new_size, at);
        at
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated on this thread by `f`.
pub fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let (out, counts) = counted(usize::MAX, f);
    (out, counts.bytes)
}

/// What one piece of code allocated on this thread (a reallocation counts as one
/// allocation of its new size).
#[derive(Debug)]
pub struct Counts {
    /// Bytes allocated.
    pub bytes: usize,
    /// Allocations made.
    pub count: usize,
    /// The allocations of at least the size asked for, as (size, address), in order (the
    /// first few only; `large_count` counts them all).
    pub large: Vec<(usize, usize)>,
    pub large_count: usize,
}

/// What `f` allocates on this thread, remembering the allocations of at least
/// `large_from` bytes.
pub fn counted<T>(large_from: usize, f: impl FnOnce() -> T) -> (T, Counts) {
    ALLOCATED.with(|a| a.set(0));
    ALLOCATIONS.with(|n| n.set(0));
    LARGE_COUNT.with(|n| n.set(0));
    LARGE_FROM.with(|l| l.set(large_from));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    let large_count = LARGE_COUNT.with(Cell::get);
    let counts = Counts {
        bytes: ALLOCATED.with(Cell::get),
        count: ALLOCATIONS.with(Cell::get),
        large: LARGE.with(Cell::get)[..large_count.min(KEPT)].to_vec(),
        large_count,
    };
    (out, counts)
}

pub fn driver(role: Role) -> Driver {
    Driver::new(
        Connection::new(role, Config::default(), [5; 32], Instant::ZERO),
        DriverConfig::default(),
    )
}

/// Everything `from` has queued, as the bytes on the wire.
pub fn take_wire(from: &mut Driver) -> Vec<u8> {
    let mut wire = Vec::new();
    for _ in 0..100_000 {
        let mut slices = [std::io::IoSlice::new(&[]); 16];
        let count = from.write_slices(&mut slices);
        let n: usize = slices[..count].iter().map(|s| s.len()).sum();
        for slice in &slices[..count] {
            wire.extend_from_slice(slice);
        }
        if n == 0 {
            return wire;
        }
        from.advance(n);
    }
    panic!("the queue never drained");
}

/// The messages `to` reads from `wire`.
pub fn read(to: &mut Driver, wire: &[u8]) -> Vec<Message> {
    let mut rest = wire;
    let mut messages = Vec::new();
    for _ in 0..100_000 {
        while let Some(message) = to.poll_message(Instant::ZERO) {
            messages.push(message);
        }
        if rest.is_empty() {
            return messages;
        }
        let Poll::Ready(Ok(n)) = to.read_with(|buf: &mut [u8]| -> Poll<Result<usize, ()>> {
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Poll::Ready(Ok(n))
        }) else {
            panic!("the read failed")
        };
        rest = &rest[n..];
    }
    panic!("too many reads");
}
