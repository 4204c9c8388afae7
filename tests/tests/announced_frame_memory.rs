//! A frame header announces the payload's length before any of it arrives. A peer that
//! announces a large frame and then sends little of it must not make the server commit
//! memory for bytes it never sent: the message buffer comes zeroed from the allocator
//! (fresh pages, resident only once written), instead of being zeroed whole before the
//! first read.
//!
//! Alone in its own test binary: it reads this process's resident memory, which other
//! tests running on other threads would disturb.
#![cfg(target_os = "linux")]

use sockeye_engine::{Driver, DriverConfig};
use sockeye_proto::{Config, Connection, Instant};
use sockeye_tests::Frame;

/// Resident memory of this process, from `/proc/self/statm` (in pages of 4 KiB, as
/// every Linux target this runs on uses).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .expect("resident pages");
    pages * 4096
}

/// Feeds `wire` to a new server driver (it never completes a message) and returns how
/// much this process's resident memory grew meanwhile.
fn resident_growth_feeding(wire: &[u8]) -> u64 {
    let mut driver = Driver::new(
        Connection::server(Config::default(), Instant::ZERO),
        DriverConfig::default(),
    );
    let before = resident_bytes();
    let mut at = 0;
    for _ in 0..=wire.len() {
        if at == wire.len() {
            break;
        }
        let polled = driver.poll_message(Instant::ZERO);
        assert!(polled.is_none(), "{polled:?}");
        assert!(sockeye_tests::read_from(&mut driver, wire, &mut at, usize::MAX) > 0);
    }
    let polled = driver.poll_message(Instant::ZERO);
    assert!(polled.is_none(), "{polled:?}");
    resident_bytes().saturating_sub(before)
}

/// `frame` encoded and masked, cut `missing` bytes short.
fn cut_short(frame: Frame, missing: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    frame.masked([1, 2, 3, 4]).encode_into(&mut wire);
    wire.truncate(wire.len() - missing);
    wire.shrink_to_fit();
    wire
}

#[test]
fn an_announced_frame_costs_only_the_bytes_that_arrived() {
    // The default `max_frame_size`.
    const ANNOUNCED: usize = 16 << 20;
    const SENT: usize = 64 << 10;
    const BOUND: u64 = 4 << 20;
    let payload = vec![7; ANNOUNCED];

    // A message's first frame: its buffer is new.
    let first = cut_short(Frame::binary(&payload), ANNOUNCED - SENT);
    let grown = resident_growth_feeding(&first);
    assert!(
        grown < BOUND,
        "first frame: {grown} bytes became resident for {SENT} bytes of a {ANNOUNCED}-byte frame"
    );

    // A later frame of a message: the buffer the first frame filled must grow.
    let mut fragmented = Vec::new();
    Frame::binary(&payload[..SENT])
        .fin(false)
        .masked([1, 2, 3, 4])
        .encode_into(&mut fragmented);
    fragmented.extend(cut_short(Frame::continuation(&payload), ANNOUNCED - SENT));
    let grown = resident_growth_feeding(&fragmented);
    assert!(
        grown < BOUND,
        "continuation: {grown} bytes became resident for {} bytes of a message announcing {}",
        2 * SENT,
        SENT + ANNOUNCED
    );
}
