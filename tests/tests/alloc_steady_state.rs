//! No allocation per frame: a counting global allocator watches thousands of frames
//! (text, binary, fragmented, pings and pongs, large frames streaming through a small
//! buffer) go through a client/server pair in steady state, and sees none.
//!
//! The harness preallocates (counting recorders, reserved pipes and scratch buffers) and
//! warms up first; only the steady-state section is counted, on this thread only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sockeye_proto::{DataKind, MIN_INPUT_BUFFER};
use sockeye_tests::{Chunking, Pair, Side};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LARGE_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Allocations of at least this many bytes are also counted apart.
const LARGE: usize = 1 << 20;

fn note(size: usize) {
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            if size >= LARGE {
                let _ = LARGE_ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
            }
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialized thread local without a destructor, so counting never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Counts the allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    counted(f).0
}

/// The allocations `f` makes on this thread: all of them, and those of `LARGE` bytes
/// or more.
fn counted(f: impl FnOnce()) -> (u64, u64) {
    ALLOCATIONS.with(|n| n.set(0));
    LARGE_ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    (
        ALLOCATIONS.with(|n| n.get()),
        LARGE_ALLOCATIONS.with(|n| n.get()),
    )
}

#[test]
fn the_counter_counts() {
    let n = allocations(|| {
        let v = vec![1u8; 10];
        std::hint::black_box(v);
    });
    assert_eq!(n, 1);
}

/// One round of traffic both ways: every frame kind the steady state has.
fn round(pair: &mut Pair, text: &[u8], blob: &[u8], big: &[u8]) {
    pair.send(Side::Client, DataKind::Text, text).unwrap();
    pair.send(Side::Client, DataKind::Binary, blob).unwrap();
    pair.send_fragments(
        Side::Client,
        DataKind::Text,
        &[&text[..5], &text[5..9], &text[9..]],
    )
    .unwrap();
    pair.ping(Side::Client, b"client ping").unwrap();
    pair.send(Side::Server, DataKind::Binary, blob).unwrap();
    pair.send(Side::Server, DataKind::Text, text).unwrap();
    pair.ping(Side::Server, b"server ping").unwrap();
    pair.send_fragments(Side::Server, DataKind::Binary, &[b"", blob, b"x"])
        .unwrap();
    pair.send(Side::Client, DataKind::Binary, big).unwrap();
    pair.flush();
}

#[test]
fn zero_allocations_per_frame_in_steady_state() {
    // "κόσμε" is cut inside a character by the fragment boundaries above.
    let text = "κόσμε, hello world €𝄞".as_bytes();
    let blob: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let big = vec![0x5A; 70_000];
    for (buffer, chunking) in [
        (MIN_INPUT_BUFFER, Chunking::Whole),
        (4096, Chunking::Random { seed: 1, max: 777 }),
    ] {
        let mut pair = Pair::builder()
            .read_buffer(buffer)
            .chunking(chunking)
            .counting()
            .reserve(256 << 10)
            .build();
        for _ in 0..10 {
            round(&mut pair, text, &blob, &big);
        }
        let before = (*pair.client.tally(), *pair.server.tally());
        let rounds = 500;
        let n = allocations(|| {
            for _ in 0..rounds {
                round(&mut pair, text, &blob, &big);
            }
        });
        let frames = pair.client.stats().data_frames
            + pair.client.stats().control_frames
            + pair.server.stats().data_frames
            + pair.server.stats().control_frames;
        let server = *pair.server.tally();
        let client = *pair.client.tally();
        assert_eq!(server.messages - before.1.messages, rounds * 4);
        assert_eq!(server.pings - before.1.pings, rounds);
        assert_eq!(client.messages - before.0.messages, rounds * 3);
        assert_eq!(client.pongs - before.0.pongs, rounds);
        assert!(frames > 5000, "{frames} frames");
        eprintln!(
            "buffer {buffer}: {frames} frames, {} input calls, {n} allocations in steady state",
            pair.server.stats().input_calls + pair.client.stats().input_calls
        );
        assert_eq!(n, 0, "allocations in steady state (buffer {buffer})");
        assert_eq!(pair.client.outcome(), None);
        assert_eq!(pair.server.outcome(), None);
    }
}

#[test]
fn the_close_handshake_allocates_nothing_either() {
    let mut pair = Pair::builder().counting().reserve(4096).build();
    pair.send(Side::Client, DataKind::Text, b"warm up").unwrap();
    pair.flush();
    let n = allocations(|| {
        pair.close(Side::Server, sockeye_proto::CloseCode::NORMAL, "bye")
            .unwrap();
        pair.flush();
    });
    assert!(pair.is_done());
    assert_eq!(n, 0);
}

/// A driver that ends while holding its read buffer (here: in the middle of a frame)
/// hands it to the next driver on the thread, which then reads without allocating.
#[test]
fn a_dropped_driver_hands_its_read_buffer_to_the_next() {
    use sockeye_proto::driver::{Driver, DriverConfig};
    use sockeye_proto::{Config, Connection, Instant};
    use std::task::Poll;

    // Two bytes of a masked frame header: not enough for the core to consume them.
    let feed = |driver: &mut Driver| {
        let read = driver.read_with(|buf| {
            buf[..2].copy_from_slice(&[0x82, 0xFE]);
            Poll::Ready(Ok::<_, ()>(2))
        });
        assert_eq!(read, Poll::Ready(Ok(2)));
        assert!(matches!(driver.poll_message(Instant::ZERO), Ok(None)));
    };
    let new_driver = || {
        Driver::new(
            Connection::server(Config::default(), Instant::ZERO),
            DriverConfig::default(),
        )
    };

    let mut first = new_driver();
    feed(&mut first);
    drop(first);
    let mut second = new_driver();
    assert_eq!(allocations(|| feed(&mut second)), 0);
}

/// An echo of messages larger than the pooled 1 MiB buffers: each one, once written
/// back, is the buffer the next is read into, so the next is neither allocated nor
/// zeroed again.
#[test]
fn an_echoed_large_message_lends_its_buffer_to_the_next() {
    use sockeye_proto::driver::{Driver, DriverConfig, Received};
    use sockeye_proto::{Config, Connection, Instant};
    use sockeye_tests::Frame;
    use std::task::Poll;

    let size = 3 << 20;
    let mut wire = Vec::new();
    for seed in 0..3u8 {
        Frame::binary(&vec![seed; size])
            .masked([1, 2, 3, 4])
            .encode_into(&mut wire);
    }
    let mut driver = Driver::new(
        Connection::server(Config::default(), Instant::ZERO),
        DriverConfig::default(),
    );
    let mut offset = 0;
    // Reads and echoes one message; bounded by the bytes left.
    let mut echo_one = |driver: &mut Driver| {
        for _ in 0..=wire.len() {
            match driver.poll_message(Instant::ZERO).unwrap() {
                Some(Received::Message(message)) => {
                    driver.send(message, Instant::ZERO).unwrap();
                    sockeye_tests::write_all_queued(driver);
                    return;
                }
                Some(Received::Closed(closed)) => panic!("closed: {closed:?}"),
                None => {}
            }
            let read = driver.read_with(|buf: &mut [u8]| -> Poll<Result<usize, ()>> {
                let n = buf.len().min(wire.len() - offset);
                buf[..n].copy_from_slice(&wire[offset..offset + n]);
                offset += n;
                Poll::Ready(Ok(n))
            });
            assert!(matches!(read, Poll::Ready(Ok(n)) if n > 0), "{read:?}");
        }
        panic!("no message");
    };
    let (_, first) = counted(|| echo_one(&mut driver));
    assert_eq!(first, 1, "the first message's buffer is allocated");
    for _ in 0..2 {
        let (_, large) = counted(|| echo_one(&mut driver));
        assert_eq!(large, 0, "a later message allocated a large buffer");
    }
}
