//! No allocation per frame: a counting global allocator watches thousands of frames
//! (text, binary, fragmented, pings and pongs, large frames streaming through a small
//! buffer) go through a client/server pair in steady state, and sees none.
//!
//! The harness preallocates (counting recorders, reserved pipes and scratch buffers) and
//! warms up first; only the steady-state section is counted, on this thread only.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use sockeye_engine::{Driver, DriverConfig, Message};
use sockeye_proto::{DataKind, Instant, MIN_INPUT_BUFFER};
use sockeye_tests::{Chunking, Pair, Side};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LARGE_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static LARGE_ZEROED: Cell<u64> = const { Cell::new(0) };
}

/// Allocations of at least this many bytes are also counted apart.
const LARGE: usize = 1 << 20;

fn note(size: usize, zeroed: bool) {
    let bump = |n: &Cell<u64>| n.set(n.get() + 1);
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            let _ = ALLOCATIONS.try_with(bump);
            if size >= LARGE {
                let _ = LARGE_ALLOCATIONS.try_with(bump);
                if zeroed {
                    let _ = LARGE_ZEROED.try_with(bump);
                }
            }
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialized thread local without a destructor, so counting never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), false);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size(), true);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size, false);
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
    counted(f).all
}

/// The allocations one piece of code made on this thread.
#[derive(Debug)]
struct Counts {
    all: u64,
    /// Those of `LARGE` bytes or more.
    large: u64,
    /// Those of `LARGE` bytes or more asked for zeroed (`alloc_zeroed`).
    large_zeroed: u64,
}

/// The allocations `f` makes on this thread.
fn counted(f: impl FnOnce()) -> Counts {
    for counter in [&ALLOCATIONS, &LARGE_ALLOCATIONS, &LARGE_ZEROED] {
        counter.with(|n| n.set(0));
    }
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    Counts {
        all: ALLOCATIONS.with(Cell::get),
        large: LARGE_ALLOCATIONS.with(Cell::get),
        large_zeroed: LARGE_ZEROED.with(Cell::get),
    }
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
    use sockeye_engine::{Driver, DriverConfig};
    use sockeye_proto::{Config, Connection, Instant};
    use std::task::Poll;

    // Two bytes of a masked frame header: not enough for the core to consume them.
    let feed = |driver: &mut Driver| {
        let read = driver.read_with(|buf| {
            buf[..2].copy_from_slice(&[0x82, 0xFE]);
            Poll::Ready(Ok::<_, ()>(2))
        });
        assert_eq!(read, Poll::Ready(Ok(2)));
        assert!(driver.poll_message(Instant::ZERO).is_none());
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

/// `count` binary messages of `size` bytes, the `n`th filled with `n`, masked as a
/// client sends them.
fn large_messages(count: u8, size: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for seed in 0..count {
        sockeye_tests::Frame::binary(&vec![seed; size])
            .masked([1, 2, 3, 4])
            .encode_into(&mut wire);
    }
    wire
}

fn server_driver() -> Driver {
    use sockeye_proto::{Config, Connection};
    Driver::new(
        Connection::server(Config::default(), Instant::ZERO),
        DriverConfig::default(),
    )
}

/// The next message from `wire`, read as fast as the driver takes it.
fn next_message(driver: &mut Driver, wire: &[u8], offset: &mut usize) -> Message {
    sockeye_tests::next_message(driver, wire, offset, usize::MAX)
}

/// An echo of messages larger than the pooled 1 MiB buffers: each one, once written
/// back, is the buffer the next is read into, so the next is neither allocated nor
/// zeroed again.
#[test]
fn an_echoed_large_message_lends_its_buffer_to_the_next() {
    let wire = large_messages(3, 3 << 20);
    let mut driver = server_driver();
    let mut offset = 0;
    let mut echo_one = |driver: &mut Driver| {
        let message = next_message(driver, &wire, &mut offset);
        driver.send(message, Instant::ZERO).unwrap();
        sockeye_tests::write_all_queued(driver);
    };
    let first = counted(|| echo_one(&mut driver));
    assert_eq!(first.large, 1, "the first message's buffer is allocated");
    for _ in 0..2 {
        let later = counted(|| echo_one(&mut driver));
        assert_eq!(later.large, 0, "a later message allocated a large buffer");
    }
}

/// A large message the application keeps never comes back to lend its buffer, so the
/// next one needs a new buffer: it is asked for zeroed, which the allocator can meet
/// with fresh pages that are zero already, instead of taking an uninitialized one that
/// the driver would zero byte by byte before reading into it.
#[test]
fn a_kept_large_message_is_followed_by_a_buffer_asked_for_zeroed() {
    let size = 3 << 20;
    let wire = large_messages(3, size);
    let mut driver = server_driver();
    let mut offset = 0;
    let mut kept = Vec::with_capacity(3);
    for seed in 0..3 {
        let counts = counted(|| kept.push(next_message(&mut driver, &wire, &mut offset)));
        assert_eq!(
            (counts.large, counts.large_zeroed),
            (1, 1),
            "message {seed}: {counts:?}"
        );
    }
    for (seed, message) in kept.iter().enumerate() {
        let Message::Binary(bytes) = message else {
            panic!("message {seed}: {message:?}");
        };
        assert!(bytes.len() == size && bytes.iter().all(|&b| usize::from(b) == seed));
    }
}
