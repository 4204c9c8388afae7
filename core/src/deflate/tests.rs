//! The codec against RFC 7692's examples, hand-built edge cases, and round trips over
//! every parameter and fragmentation (proptest).

extern crate std;

use super::*;
use alloc::vec;
use alloc::vec::Vec;
use proptest::prelude::*;

fn dir(window_bits: u8, context_takeover: bool) -> Direction {
    Direction {
        window_bits,
        context_takeover,
    }
}

/// Compresses `message` in pieces that end at `splits` (offsets, any order, clamped).
fn compress(deflater: &mut Deflater, message: &[u8], splits: &[usize]) -> Vec<u8> {
    let mut cuts: Vec<usize> = splits.iter().map(|&s| s.min(message.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut from = 0;
    for cut in cuts {
        deflater
            .compress(&message[from..cut], false, &mut out)
            .unwrap();
        from = cut;
    }
    deflater.compress(&message[from..], true, &mut out).unwrap();
    out
}

/// Inflates one message's `payload` fed `chunk` bytes at a time into an `out` of
/// `out_len` bytes, checking the per-call contract.
fn inflate(
    inflater: &mut Inflater,
    payload: &[u8],
    chunk: usize,
    out_len: usize,
) -> Result<Vec<u8>, InflateError> {
    let mut message = Vec::new();
    let mut buf = vec![0u8; out_len];
    let mut pos = 0;
    // Each call either consumes or produces (or finishes): bounded by the sizes.
    let mut calls_left = 4 * (payload.len() + 16) * 1_000_000;
    loop {
        let end = (pos + chunk.max(1)).min(payload.len());
        let fin = end == payload.len();
        let step = inflater.inflate(&payload[pos..end], fin, &mut buf)?;
        assert!(step.produced <= buf.len());
        assert!(step.consumed <= end - pos);
        message.extend_from_slice(&buf[..step.produced]);
        pos += step.consumed;
        if step.done {
            assert_eq!(pos, payload.len());
            return Ok(message);
        }
        calls_left -= 1;
        assert!(calls_left > 0, "no progress");
    }
}

fn inflate_whole(inflater: &mut Inflater, payload: &[u8]) -> Result<Vec<u8>, InflateError> {
    inflate(inflater, payload, payload.len(), 1 << 16)
}

const HELLO: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

#[test]
fn rfc7692_hello() {
    // §7.2.3.1: "Hello", whole and in the two fragments of the example.
    for bits in 8..=15 {
        for takeover in [false, true] {
            let mut inflater = Inflater::new(dir(bits, takeover));
            assert_eq!(inflate_whole(&mut inflater, HELLO).unwrap(), b"Hello");
            let mut inflater = Inflater::new(dir(bits, takeover));
            let mut out = [0u8; 16];
            let first = inflater.inflate(&HELLO[..3], false, &mut out).unwrap();
            assert_eq!((first.consumed, first.done), (3, false));
            let mut text = out[..first.produced].to_vec();
            let second = inflater.inflate(&HELLO[3..], true, &mut out).unwrap();
            assert_eq!((second.consumed, second.done), (4, true));
            text.extend_from_slice(&out[..second.produced]);
            assert_eq!(text, b"Hello");
        }
    }
}

#[test]
fn rfc7692_shared_window() {
    // §7.2.3.2: the second "Hello" refers back into the first message.
    let mut inflater = Inflater::new(dir(15, true));
    assert_eq!(inflate_whole(&mut inflater, HELLO).unwrap(), b"Hello");
    let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
    assert_eq!(inflate_whole(&mut inflater, &again).unwrap(), b"Hello");
    // Released in between: the window is restored with set-dictionary.
    inflater.release();
    assert_eq!(inflater.held_bytes(), 1 << 15);
    assert_eq!(inflate_whole(&mut inflater, &again).unwrap(), b"Hello");
    // Without takeover the reference reaches before the message: corrupt.
    let mut inflater = Inflater::new(dir(15, false));
    inflate_whole(&mut inflater, HELLO).unwrap();
    assert_eq!(
        inflate_whole(&mut inflater, &again),
        Err(InflateError::Corrupt)
    );
}

#[test]
fn rfc7692_deflater_output() {
    // The examples were made with zlib; this engine gives the same first message.
    let mut deflater = Deflater::new(dir(15, true), 6);
    let mut inflater = Inflater::new(dir(15, true));
    assert_eq!(compress(&mut deflater, b"Hello", &[]), HELLO);
    inflate_whole(&mut inflater, HELLO).unwrap();
    // The second "Hello" refers to the first: zlib-rs encodes the match as 02 13 00 00
    // where zlib wrote f2 00 11 00 00; both are a 5-byte match at distance 5.
    let second = compress(&mut deflater, b"Hello", &[]);
    assert!(second.len() <= 5, "{second:02x?}");
    assert_eq!(inflate_whole(&mut inflater, &second).unwrap(), b"Hello");
    // Rebuilt from the kept window: still a match into the previous message (zlib's
    // very bytes, this time).
    deflater.release();
    let third = compress(&mut deflater, b"Hello", &[]);
    assert!(third.len() <= 5, "{third:02x?}");
    assert_eq!(inflate_whole(&mut inflater, &third).unwrap(), b"Hello");
    let mut deflater = Deflater::new(dir(15, false), 6);
    assert_eq!(compress(&mut deflater, b"Hello", &[]), HELLO);
    assert_eq!(compress(&mut deflater, b"Hello", &[]), HELLO);
}

#[test]
fn rfc7692_stored_block() {
    // §7.2.3.3: a block with no compression. The trailing 0x00 is the header of the
    // empty stored block that the appended 00 00 ff ff completes.
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, b'H', b'e', b'l', b'l', b'o', 0x00,
    ];
    let mut inflater = Inflater::new(dir(15, true));
    for _ in 0..2 {
        assert_eq!(inflate(&mut inflater, &stored, 1, 1).unwrap(), b"Hello");
    }
}

#[test]
fn rfc7692_final_block() {
    // §7.2.3.4: BFINAL = 1 then a 0x00 byte; whatever follows the final block in the
    // message is ignored, and with takeover the window carries to the next message.
    let final_block = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    for chunk in [1, 3, 8] {
        for out_len in [1, 2, 5, 64] {
            let mut inflater = Inflater::new(dir(15, true));
            let text = inflate(&mut inflater, &final_block, chunk, out_len).unwrap();
            assert_eq!(text, b"Hello");
            let mut trailing = final_block.to_vec();
            trailing.extend_from_slice(b"ignored garbage \xff\xff");
            let text = inflate(&mut inflater, &trailing, chunk, out_len).unwrap();
            assert_eq!(text, b"Hello");
            let again = [0xf2, 0x00, 0x11, 0x00, 0x00];
            let text = inflate(&mut inflater, &again, chunk, out_len).unwrap();
            assert_eq!(text, b"Hello");
        }
    }
}

#[test]
fn rfc7692_two_blocks() {
    // §7.2.3.5: two DEFLATE blocks in one message.
    let payload = [
        0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    let mut inflater = Inflater::new(dir(15, false));
    assert_eq!(inflate(&mut inflater, &payload, 1, 1).unwrap(), b"Hello");
}

#[test]
fn empty_messages() {
    for bits in 8..=15 {
        for takeover in [false, true] {
            for level in [0, 1, 6, 9] {
                let mut deflater = Deflater::new(dir(bits, takeover), level);
                let mut inflater = Inflater::new(dir(bits, takeover));
                for message in [&b""[..], b"", b"x", b"", b"xx", b""] {
                    let payload = compress(&mut deflater, message, &[0, 0]);
                    if message.is_empty() {
                        assert_eq!(payload, [0x00]);
                    }
                    assert_eq!(inflate(&mut inflater, &payload, 1, 1).unwrap(), message);
                }
                // An empty payload is an empty message too.
                assert_eq!(inflate_whole(&mut inflater, &[]).unwrap(), b"");
                let step = inflater.inflate(&[], true, &mut [0u8; 4]).unwrap();
                assert_eq!(
                    step,
                    Inflated {
                        consumed: 0,
                        produced: 0,
                        done: true
                    }
                );
            }
        }
    }
}

#[test]
fn output_exactly_full() {
    // The message fills `out` exactly: not done until a call finds nothing more.
    let mut deflater = Deflater::new(dir(15, false), 6);
    let payload = compress(&mut deflater, b"0123456789", &[]);
    let mut inflater = Inflater::new(dir(15, false));
    let mut out = [0u8; 10];
    let step = inflater.inflate(&payload, true, &mut out).unwrap();
    assert_eq!(
        (step.consumed, step.produced, step.done),
        (payload.len(), 10, false)
    );
    assert_eq!(&out, b"0123456789");
    let step = inflater.inflate(&[], true, &mut out).unwrap();
    assert_eq!(
        step,
        Inflated {
            consumed: 0,
            produced: 0,
            done: true
        }
    );
    // An empty `out` never finishes a message, and never writes.
    let mut inflater = Inflater::new(dir(15, false));
    let step = inflater.inflate(&payload, true, &mut []).unwrap();
    assert_eq!((step.produced, step.done), (0, false));
}

#[test]
fn corrupt_data_is_an_error_and_stays_one() {
    // BTYPE = 11 is reserved.
    let mut inflater = Inflater::new(dir(15, true));
    assert_eq!(
        inflate_whole(&mut inflater, &[0xff, 0xff, 0xff]),
        Err(InflateError::Corrupt)
    );
    assert_eq!(
        inflater.inflate(HELLO, true, &mut [0; 16]),
        Err(InflateError::Corrupt)
    );
    assert_eq!(inflater.held_bytes(), 0);
    // A stored block whose NLEN is not the complement of LEN.
    let mut inflater = Inflater::new(dir(15, false));
    assert_eq!(
        inflate_whole(
            &mut inflater,
            &[0x00, 0x05, 0x00, 0x00, 0x00, 1, 2, 3, 4, 5]
        ),
        Err(InflateError::Corrupt)
    );
}

#[test]
fn held_bytes_between_messages() {
    for bits in 8..=15u8 {
        let mut deflater = Deflater::new(dir(bits, false), 1);
        let mut inflater = Inflater::new(dir(bits, false));
        assert_eq!((deflater.held_bytes(), inflater.held_bytes()), (0, 0));
        let payload = compress(&mut deflater, &[7u8; 5000], &[]);
        assert!(deflater.held_bytes() > 100_000);
        inflate_whole(&mut inflater, &payload).unwrap();
        // Without takeover the inflater drops its engine at each message's end.
        assert_eq!(inflater.held_bytes(), 0);
        deflater.release();
        assert_eq!(deflater.held_bytes(), 0);

        let mut deflater = Deflater::new(dir(bits, true), 1);
        let mut inflater = Inflater::new(dir(bits, true));
        let payload = compress(&mut deflater, &[7u8; 5000], &[]);
        inflate_whole(&mut inflater, &payload).unwrap();
        deflater.release();
        inflater.release();
        assert_eq!(deflater.held_bytes(), 1 << bits);
        assert_eq!(inflater.held_bytes(), 1 << bits);
    }
}

#[test]
fn release_in_the_middle_of_a_message_keeps_it() {
    let mut deflater = Deflater::new(dir(10, false), 6);
    let mut payload = Vec::new();
    deflater
        .compress(b"abcabcabc", false, &mut payload)
        .unwrap();
    deflater.release();
    deflater.compress(b"abcabcabc", true, &mut payload).unwrap();
    let mut inflater = Inflater::new(dir(10, false));
    let mut out = [0u8; 4];
    let step = inflater.inflate(&payload[..2], false, &mut out).unwrap();
    let mut text = out[..step.produced].to_vec();
    inflater.release();
    text.extend(inflate(&mut inflater, &payload[step.consumed..], 1, 4).unwrap());
    assert_eq!(text, b"abcabcabcabcabcabc");
}

/// Random bytes, then `gap` other random bytes, then the first again: a compressor
/// with a window larger than `gap` would refer back to the first copy.
fn far_repeat(gap: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    let mut byte = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 56) as u8
    };
    let first: Vec<u8> = (0..300).map(|_| byte()).collect();
    let mut data = first.clone();
    data.extend((0..gap).map(|_| byte()));
    data.extend_from_slice(&first);
    data
}

#[test]
fn never_refers_beyond_the_window() {
    // Inflating with 1-byte outputs makes the engine check every distance against the
    // window it keeps (2^bits), not against a large output buffer.
    for bits in 8..=14u8 {
        let data = far_repeat(1 << bits, u64::from(bits));
        for level in [1, 6, 9] {
            for takeover in [false, true] {
                let mut deflater = Deflater::new(dir(bits, takeover), level);
                let mut inflater = Inflater::new(dir(bits, takeover));
                for _ in 0..2 {
                    let payload = compress(&mut deflater, &data, &[]);
                    assert_eq!(inflate(&mut inflater, &payload, 7, 1).unwrap(), data);
                }
            }
        }
        // The check itself works: a 15-bit compressor's output is refused.
        let mut deflater = Deflater::new(dir(15, false), 9);
        let payload = compress(&mut deflater, &data, &[]);
        let mut inflater = Inflater::new(dir(bits, false));
        assert_eq!(
            inflate(&mut inflater, &payload, 7, 1),
            Err(InflateError::Corrupt)
        );
    }
}

#[test]
fn bomb_inflates_in_bounded_steps() {
    // 8 MiB of zeros compress to about 8 KiB; inflating into 4 KiB steps never
    // writes more than a step and holds the same memory throughout.
    let mut deflater = Deflater::new(dir(15, false), 9);
    let zeros = vec![0u8; 1 << 20];
    let mut payload = Vec::new();
    for _ in 0..8 {
        deflater.compress(&zeros, false, &mut payload).unwrap();
    }
    deflater.compress(&[], true, &mut payload).unwrap();
    assert!(payload.len() < 16 << 10, "{}", payload.len());

    let mut inflater = Inflater::new(dir(15, false));
    let mut out = vec![0u8; 4096];
    let (mut input, mut total, mut held) = (&payload[..], 0usize, None);
    loop {
        let step = inflater.inflate(input, true, &mut out).unwrap();
        assert!(step.produced <= out.len());
        assert!(out[..step.produced].iter().all(|&b| b == 0));
        total += step.produced;
        input = &input[step.consumed..];
        if step.done {
            break;
        }
        let now = inflater.held_bytes();
        assert_eq!(*held.get_or_insert(now), now);
    }
    assert_eq!(total, 8 << 20);
}

/// Compressible text, random bytes, or a mix.
fn message() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        proptest::collection::vec(
            proptest::sample::select(b"{}\":, abcdefgh0123456789".to_vec()),
            0..3000
        ),
        (0usize..40, any::<u64>()).prop_map(|(n, seed)| {
            let mut data = Vec::new();
            for i in 0..n as u64 {
                let line = std::format!("{{\"id\":{},\"seed\":{},\"ok\":true}}", i, seed % 977);
                data.extend_from_slice(line.as_bytes());
            }
            data
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn round_trip(
        bits in 8u8..=15,
        takeover in any::<bool>(),
        level in proptest::sample::select(vec![0u8, 1, 6, 9]),
        messages in proptest::collection::vec(message(), 1..4),
        splits in proptest::collection::vec(0usize..3000, 0..4),
        chunk in prop_oneof![Just(1usize), 1usize..64, Just(usize::MAX / 2)],
        out_len in prop_oneof![Just(1usize), 1usize..100, Just(1usize << 16)],
        release in any::<bool>(),
    ) {
        let mut deflater = Deflater::new(dir(bits, takeover), level);
        let mut inflater = Inflater::new(dir(bits, takeover));
        for message in &messages {
            let payload = compress(&mut deflater, message, &splits);
            let text = inflate(&mut inflater, &payload, chunk, out_len).unwrap();
            prop_assert_eq!(&text, message);
            if release {
                deflater.release();
                inflater.release();
                let window = if takeover { 1 << bits } else { 0 };
                prop_assert!(deflater.held_bytes() <= window);
                prop_assert!(inflater.held_bytes() <= window);
            }
        }
    }

    #[test]
    fn arbitrary_input_never_panics(
        bits in 8u8..=15,
        takeover in any::<bool>(),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..4),
        chunk in 1usize..50,
        out_len in 1usize..300,
    ) {
        let mut inflater = Inflater::new(dir(bits, takeover));
        for payload in &payloads {
            if inflate(&mut inflater, payload, chunk, out_len).is_err() {
                break;
            }
        }
    }
}

/// Messages unlike each other, so that a stale window or hash chain would show in the
/// output.
fn varied_messages() -> Vec<Vec<u8>> {
    let json = br#"{"symbol":"ACME","price":101.5,"volume":1200,"side":"buy"}"#.repeat(40);
    let counting: Vec<u8> = (0..9000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
    vec![
        json,
        counting,
        b"short".to_vec(),
        Vec::new(),
        vec![0x55; 70_000],
    ]
}

#[test]
fn a_travelling_deflate_engine_compresses_as_a_new_one() {
    let mut first = Deflater::new(dir(15, false), 1);
    let mut second = Deflater::new(dir(15, false), 1);
    for message in varied_messages() {
        let mut fresh = Deflater::new(dir(15, false), 1);
        let expected = compress(&mut fresh, &message, &[]);
        // The engine goes back and forth between two deflaters, never rebuilt.
        let payload = compress(&mut first, &message, &[]);
        assert_eq!(payload, expected);
        let engine = first.release_engine().expect("an engine to hand out");
        assert_eq!(first.held_bytes(), 0);
        assert!(first.needs_engine());
        assert!(second.adopt_engine(engine).is_none());
        assert!(!second.needs_engine());
        core::mem::swap(&mut first, &mut second);
    }
}

#[test]
fn a_deflate_engine_goes_only_where_it_fits() {
    let mut donor = Deflater::new(dir(15, false), 1);
    compress(&mut donor, b"hello hello hello", &[]);
    let engine = donor.release_engine().unwrap();
    assert_eq!(engine.key(), (1, 15));
    let engine = Deflater::new(dir(15, false), 6)
        .adopt_engine(engine)
        .expect("handed back");
    let engine = Deflater::new(dir(12, false), 1)
        .adopt_engine(engine)
        .expect("handed back");
    let engine = Deflater::new(dir(15, true), 1)
        .adopt_engine(engine)
        .expect("handed back");
    let mut busy = Deflater::new(dir(15, false), 1);
    busy.compress(b"half of a", false, &mut Vec::new()).unwrap();
    let engine = busy.adopt_engine(engine).expect("handed back");
    // In the middle of a message, or with takeover, nothing travels.
    assert!(busy.release_engine().is_none());
    let mut keeper = Deflater::new(dir(15, true), 1);
    compress(&mut keeper, b"kept", &[]);
    assert!(keeper.release_engine().is_none());
    assert_eq!(keeper.held_bytes(), 1 << 15);
    assert!(Deflater::new(dir(15, false), 1)
        .adopt_engine(engine)
        .is_none());
}

#[test]
fn a_travelling_inflate_engine_inflates_as_a_new_one() {
    let mut deflater = Deflater::new(dir(15, false), 1);
    let mut first = Inflater::new(dir(15, false)).keeping_engine();
    let mut second = Inflater::new(dir(15, false)).keeping_engine();
    for message in varied_messages() {
        let payload = compress(&mut deflater, &message, &[]);
        assert_eq!(inflate(&mut first, &payload, 700, 4096).unwrap(), message);
        // Kept (reset) after the message, until handed out. (An empty message never
        // needs an engine: the one held, if any, is handed on all the same.)
        if !message.is_empty() {
            assert!(first.held_bytes() > 40_000);
        }
        let engine = first.release_engine();
        assert!(engine.is_some() || message.is_empty());
        assert_eq!(first.held_bytes(), 0);
        if let Some(engine) = engine {
            assert!(second.adopt_engine(engine).is_none());
        }
        core::mem::swap(&mut first, &mut second);
    }
}

#[test]
fn an_inflate_engine_goes_only_where_it_fits() {
    let mut deflater = Deflater::new(dir(15, false), 1);
    let payload = compress(&mut deflater, b"hello hello hello", &[]);
    let mut donor = Inflater::new(dir(15, false)).keeping_engine();
    inflate_whole(&mut donor, &payload).unwrap();
    let engine = donor.release_engine().unwrap();
    // Other windows and takeover would be reset to the wrong state.
    let engine = Inflater::new(dir(12, false))
        .adopt_engine(engine)
        .expect("handed back");
    let engine = Inflater::new(dir(15, true))
        .adopt_engine(engine)
        .expect("handed back");
    let mut failed = Inflater::new(dir(15, false));
    assert!(inflate_whole(&mut failed, &[0xff, 0xff, 0xff]).is_err());
    let engine = failed.adopt_engine(engine).expect("handed back");
    // Without `keeping_engine` the engine is freed at the message's end, as before.
    let mut plain = Inflater::new(dir(15, false));
    inflate_whole(&mut plain, &payload).unwrap();
    assert_eq!(plain.held_bytes(), 0);
    assert!(plain.release_engine().is_none());
    assert!(plain.adopt_engine(engine).is_none());
    assert_eq!(
        inflate_whole(&mut plain, &payload).unwrap(),
        b"hello hello hello"
    );
}
