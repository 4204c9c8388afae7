//! Test harness for Sockeye's integration tests.
//!
//! - [`transcript`]: what one side saw, as owned values ([`Entry`], [`Transcript`]), built
//!   from the core's borrowed [`Event`](sockeye_proto::Event)s by a [`Recorder`] that
//!   assembles whole messages from chunks and checks the event-order invariants (nothing
//!   after the terminal report, nothing but the end after the peer's Close, one kind per
//!   message). Adapter scenario suites build the same [`Transcript`] from their own
//!   receive APIs, so one expected transcript serves the core and every adapter.
//! - [`wire`]: raw frames for tests ([`Frame`] builds any frame, valid or not;
//!   [`parse_frames`] decodes what a side wrote, e.g. to read a close code on the wire).
//! - [`endpoint`]: one [`Connection`](sockeye_proto::Connection) with a fixed read buffer,
//!   an outbound pipe and a recorder, driven like an adapter drives it: after every call
//!   the transmit queue is drained.
//! - [`faulty`]: [`Faulty`], a stream wrapper (tokio and futures-io) that returns short
//!   reads and writes, `Pending` and interrupted calls at seeded random points, and can
//!   cut the stream (end of stream or an error) in the middle of a frame.
//! - [`pair`]: a client and a server [`Endpoint`] joined by in-memory pipes, with a
//!   virtual clock, per-direction [`Chunking`] of the byte stream, pausing, and
//!   `Transmit::Shutdown` delivered to the peer as end of stream.
//!
//! ```
//! use sockeye_proto::{CloseCode, DataKind};
//! use sockeye_tests::{Entry, Pair, Side};
//!
//! let mut pair = Pair::builder().read_buffer(sockeye_proto::MIN_INPUT_BUFFER).build();
//! pair.send(Side::Client, DataKind::Text, "héllo".as_bytes()).unwrap();
//! pair.close(Side::Server, CloseCode::NORMAL, "bye").unwrap();
//! pair.flush();
//! assert_eq!(pair.server.transcript().messages(), vec![Entry::text("héllo")]);
//! assert!(pair.client.outcome().unwrap().is_clean());
//! assert!(pair.server.outcome().unwrap().is_clean());
//! ```

pub mod endpoint;
pub mod fault_proxy;
pub mod faulty;
pub mod pair;
pub mod transcript;
pub mod wire;

pub use endpoint::{Endpoint, Pipe};
pub use fault_proxy::FaultProxy;
pub use faulty::{Faults, Faulty};
pub use pair::{Chunking, Pair, PairBuilder, Side};
pub use transcript::{Entry, Recorder, Tally, Transcript};
pub use wire::{parse_frames, Frame, Length, WireFrame};

/// Writes everything `driver` has queued to a peer that takes every byte at once (the
/// bytes go nowhere), so that written message buffers go back to the driver's pool.
pub fn write_all_queued(driver: &mut sockeye_engine::Driver) {
    while driver.pending_bytes() > 0 {
        let mut slices = [std::io::IoSlice::new(&[]); 8];
        let count = driver.write_slices(&mut slices);
        let written: usize = slices[..count].iter().map(|slice| slice.len()).sum();
        driver.advance(written);
    }
}

/// One [`Driver::read_with`](sockeye_engine::Driver::read_with) served from
/// `wire` as a socket would serve it: the bytes after `*at`, at most `max_read` of them
/// and what the driver's buffer takes. Returns how many were read (0 once `wire` is
/// used up, or once the driver has ended).
pub fn read_from(
    driver: &mut sockeye_engine::Driver,
    wire: &[u8],
    at: &mut usize,
    max_read: usize,
) -> usize {
    let read = driver.read_with(|buf: &mut [u8]| -> std::task::Poll<Result<usize, ()>> {
        let n = buf.len().min(max_read).min(wire.len() - *at);
        buf[..n].copy_from_slice(&wire[*at..*at + n]);
        *at += n;
        std::task::Poll::Ready(Ok(n))
    });
    match read {
        std::task::Poll::Ready(Ok(n)) => n,
        other => panic!("a read from memory cannot fail or wait: {other:?}"),
    }
}

/// Reads `wire` from `*at` into `driver` ([`read_from`], `max_read` at a time) until a
/// message is complete. Panics if the connection ends or `wire` runs out first.
pub fn next_message(
    driver: &mut sockeye_engine::Driver,
    wire: &[u8],
    at: &mut usize,
    max_read: usize,
) -> sockeye_engine::Message {
    for _ in 0..=wire.len() {
        if let Some(message) = driver.poll_message(sockeye_proto::Instant::ZERO) {
            return message;
        }
        assert!(
            driver.outcome().is_none(),
            "no message: the connection ended: {:?}",
            driver.outcome()
        );
        assert!(
            read_from(driver, wire, at, max_read) > 0,
            "the wire ran out"
        );
    }
    panic!("no message");
}

/// A deterministic xorshift generator for tests that want varied but repeatable input
/// (chunk sizes, payload bytes) without pulling in an RNG crate.
#[derive(Clone, Copy, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        assert!(low <= high);
        low + (self.next_u64() % (high - low + 1) as u64) as usize
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// `len` bytes of valid UTF-8 text mixing 1-, 2-, 3- and 4-byte characters (the last
/// character may be shortened to ASCII to hit `len` exactly).
pub fn mixed_text(len: usize, seed: u64) -> String {
    const CHARS: [char; 6] = ['a', 'é', '€', '𝄞', 'Z', 'ж'];
    let mut rng = XorShift::new(seed);
    let mut text = String::with_capacity(len);
    while text.len() < len {
        let c = CHARS[rng.range(0, CHARS.len() - 1)];
        if text.len() + c.len_utf8() <= len {
            text.push(c);
        } else {
            text.push('x');
        }
    }
    text
}
