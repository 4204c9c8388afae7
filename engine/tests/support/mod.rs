//! What the driver tests share: a counting allocator (the one way to see what a call
//! allocates), drivers, and moving bytes from one driver to another.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::task::Poll;

use sockeye_engine::{Driver, DriverConfig, Message};
use sockeye_proto::{Config, Connection, Instant, Role};

/// Counts the bytes this thread allocates while `COUNTING` is set.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = COUNTING.try_with(|counting| {
            if counting.get() {
                ALLOCATED.with(|a| a.set(a.get() + layout.size()));
            }
        });
        // SAFETY: forwarded as given.
        unsafe { System.alloc(layout) }
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
    ALLOCATED.with(|a| a.set(0));
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    (out, ALLOCATED.with(Cell::get))
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
