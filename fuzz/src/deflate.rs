//! The permessage-deflate codec (`sockeye_proto::deflate`).
//!
//! Input layout (both targets): four parameter bytes, then messages, each a length
//! byte and that many bytes (the last takes whatever is left):
//! - byte 0: window bits 8 + (b & 7), context takeover (b & 8), level (b >> 4) % 10;
//! - byte 1: `out` size 1 + b (inflate);
//! - byte 2: input piece size 1 + b % 64 (inflate), and compression split points;
//! - byte 3: flags: 1 = release between messages, 2 (inflate) = compress the message
//!   first, then flip a byte of the payload (plausible but damaged streams), 4 = the
//!   engines travel: after each message they go to a second codec (`release_engine`,
//!   `adopt_engine`), which works the next message.
//!
//! Invariants: nothing panics; a call never writes past `out` nor claims more input
//! than it was given; every call makes progress until the message is done; a failed
//! inflater keeps failing; compress then inflate is the identity, whatever the
//! parameters and pieces; released state holds at most the window.

use sockeye_proto::deflate::{Deflater, Inflater};
use sockeye_proto::extension::Direction;

struct Params<'a> {
    direction: Direction,
    level: u8,
    out_len: usize,
    piece: usize,
    release: bool,
    damage: bool,
    travel: bool,
    messages: Vec<&'a [u8]>,
}

fn params(data: &[u8]) -> Option<Params<'_>> {
    let (&[b0, b1, b2, b3], mut rest) = data.split_first_chunk::<4>()?;
    let mut messages = Vec::new();
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        messages.push(&tail[..len]);
        rest = &tail[len..];
    }
    if messages.is_empty() {
        messages.push(&[][..]);
    }
    Some(Params {
        direction: Direction {
            window_bits: 8 + (b0 & 7),
            context_takeover: b0 & 8 != 0,
        },
        level: (b0 >> 4) % 10,
        out_len: 1 + usize::from(b1),
        piece: 1 + usize::from(b2 % 64),
        release: b3 & 1 != 0,
        damage: b3 & 2 != 0,
        travel: b3 & 4 != 0,
        messages,
    })
}

/// Compresses `message` in pieces of `piece` bytes.
fn compress(deflater: &mut Deflater, message: &[u8], piece: usize) -> Vec<u8> {
    let mut payload = Vec::new();
    let mut pieces = message.chunks(piece).peekable();
    while let Some(chunk) = pieces.next() {
        let fin = pieces.peek().is_none();
        deflater
            .compress(chunk, fin, &mut payload)
            .expect("compress");
        if fin {
            return payload;
        }
    }
    deflater
        .compress(&[], true, &mut payload)
        .expect("compress");
    payload
}

/// Inflates one message's payload in pieces into an `out` of `out_len` bytes,
/// checking the per-call contract. `Err` when the data is refused.
fn inflate(
    inflater: &mut Inflater,
    payload: &[u8],
    piece: usize,
    out_len: usize,
) -> Result<Vec<u8>, ()> {
    let mut out = vec![0u8; out_len];
    let mut message = Vec::new();
    let mut pos = 0;
    // Every call but the last consumes or produces; output is bounded by the window's
    // worth per input bit (258 bytes per 1 bit at most), so this bounds the calls.
    let mut calls_left = (payload.len() + 8) * 8 * 258 + 16;
    loop {
        let end = (pos + piece).min(payload.len());
        let fin = end == payload.len();
        let step = match inflater.inflate(&payload[pos..end], fin, &mut out) {
            Ok(step) => step,
            Err(_) => {
                assert!(
                    inflater.inflate(&[], true, &mut out).is_err(),
                    "a failed inflater recovered"
                );
                return Err(());
            }
        };
        assert!(step.produced <= out.len(), "wrote past out");
        assert!(step.consumed <= end - pos, "consumed more than given");
        message.extend_from_slice(&out[..step.produced]);
        pos += step.consumed;
        if step.done {
            assert_eq!(pos, payload.len(), "done with input left");
            return Ok(message);
        }
        calls_left -= 1;
        assert!(calls_left > 0, "no progress");
    }
}

fn check_released(deflater: &Deflater, inflater: &Inflater, direction: Direction) {
    let window = if direction.context_takeover {
        1 << direction.window_bits
    } else {
        0
    };
    assert!(
        deflater.held_bytes() <= window,
        "released deflater holds more than the window"
    );
    assert!(
        inflater.held_bytes() <= window,
        "released inflater holds more than the window"
    );
}

/// One end's codecs, and a second pair the engines travel to (flag 4).
struct Codecs {
    deflaters: [Deflater; 2],
    inflaters: [Inflater; 2],
    travel: bool,
}

impl Codecs {
    fn new(p: &Params<'_>) -> Self {
        let inflater = || {
            let inflater = Inflater::new(p.direction);
            if p.travel {
                inflater.keeping_engine()
            } else {
                inflater
            }
        };
        Codecs {
            deflaters: [
                Deflater::new(p.direction, p.level),
                Deflater::new(p.direction, p.level),
            ],
            inflaters: [inflater(), inflater()],
            travel: p.travel,
        }
    }

    fn deflater(&mut self) -> &mut Deflater {
        &mut self.deflaters[0]
    }

    fn inflater(&mut self) -> &mut Inflater {
        &mut self.inflaters[0]
    }

    /// Between messages: the engines move to the other pair, which works the next one.
    fn between_messages(&mut self) {
        if !self.travel {
            return;
        }
        let [this, other] = &mut self.deflaters;
        if let Some(engine) = this.release_engine() {
            assert!(this.needs_engine(), "a released deflater kept its engine");
            // The other pair is idle: it takes an engine of its own settings.
            assert!(other.adopt_engine(engine).is_none() || !other.needs_engine());
        }
        let [this, other] = &mut self.inflaters;
        if let Some(engine) = this.release_engine() {
            assert!(this.needs_engine(), "a released inflater kept its engine");
            let _ = other.adopt_engine(engine);
        }
        self.deflaters.swap(0, 1);
        self.inflaters.swap(0, 1);
    }
}

/// Arbitrary (or damaged compressed) payloads under arbitrary parameters.
pub fn inflate_target(data: &[u8]) {
    let Some(p) = params(data) else { return };
    let mut codecs = Codecs::new(&p);
    for (i, message) in p.messages.iter().enumerate() {
        let payload = if p.damage {
            let mut payload = compress(codecs.deflater(), message, p.piece);
            if !payload.is_empty() {
                let at = (i * 7 + p.piece) % payload.len();
                payload[at] ^= 1 << (p.out_len % 8);
            }
            payload
        } else {
            message.to_vec()
        };
        if inflate(codecs.inflater(), &payload, p.piece, p.out_len).is_err() {
            return;
        }
        if p.release {
            codecs.inflater().release();
            codecs.deflater().release();
            check_released(&codecs.deflaters[0], &codecs.inflaters[0], p.direction);
        }
        codecs.between_messages();
    }
}

/// Compress then inflate is the identity, for every parameter and fragmentation.
pub fn deflate_roundtrip(data: &[u8]) {
    let Some(p) = params(data) else { return };
    let mut codecs = Codecs::new(&p);
    for message in &p.messages {
        // Repeat the message so that some compress: fuzz bytes alone rarely do.
        let message = message.repeat(1 + p.out_len % 5);
        let payload = compress(codecs.deflater(), &message, p.piece);
        let inflated = inflate(codecs.inflater(), &payload, 1 + p.piece % 17, p.out_len)
            .expect("our own output refused");
        assert!(inflated == message, "round trip changed the message");
        if p.release {
            codecs.deflater().release();
            codecs.inflater().release();
            check_released(&codecs.deflaters[0], &codecs.inflaters[0], p.direction);
        }
        codecs.between_messages();
    }
}
