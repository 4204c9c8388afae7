//! The buffered [`Driver`] assembling whole messages, whatever the read sizes: large
//! binary frames are read straight into their message (`direct_read_threshold`), the
//! rest goes through the read buffer; both must give the same messages.

use proptest::prelude::*;
use sockeye_engine::{Abnormal, Driver, DriverConfig, Message, Outcome};
use sockeye_proto::{Config, Connection, Instant, ProtocolError};
use sockeye_tests::{write_all_queued, Frame};
use std::task::Poll;

/// What the client sends: data messages, each in one or more frames, with control
/// frames in between.
#[derive(Clone, Debug)]
enum Item {
    Binary {
        payload: Vec<u8>,
        fragments: Vec<usize>,
    },
    Text {
        text: String,
        fragments: Vec<usize>,
    },
    Ping(Vec<u8>),
}

fn at(seconds: u64) -> Instant {
    Instant::from_millis(seconds * 1000)
}

/// A payload whose bytes differ from position to position (a misplaced chunk shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Splits `len` bytes at the cut points (taken modulo the length), in order.
fn pieces(len: usize, cuts: &[usize]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut % (len + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut start = 0;
    for point in points.into_iter().chain([len]) {
        if point > start || (out.is_empty() && point == len) {
            out.push((start, point));
            start = point;
        }
    }
    out
}

fn encode(items: &[Item]) -> (Vec<u8>, Vec<Message>) {
    let key = [0x5A, 0x17, 0xC3, 0x08];
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for item in items {
        match item {
            Item::Binary { payload, fragments } => {
                let parts = pieces(payload.len(), fragments);
                for (index, &(start, end)) in parts.iter().enumerate() {
                    let frame = if index == 0 {
                        Frame::binary(&payload[start..end])
                    } else {
                        Frame::continuation(&payload[start..end])
                    };
                    frame
                        .fin(index + 1 == parts.len())
                        .masked(key)
                        .encode_into(&mut wire);
                }
                expected.push(Message::binary(payload.clone()));
            }
            Item::Text { text, fragments } => {
                let bytes = text.as_bytes();
                let parts = pieces(bytes.len(), fragments);
                for (index, &(start, end)) in parts.iter().enumerate() {
                    let frame = if index == 0 {
                        Frame::text_bytes(&bytes[start..end])
                    } else {
                        Frame::continuation(&bytes[start..end])
                    };
                    frame
                        .fin(index + 1 == parts.len())
                        .masked(key)
                        .encode_into(&mut wire);
                }
                expected.push(Message::text(text.clone()));
            }
            Item::Ping(payload) => {
                Frame::ping(payload).masked(key).encode_into(&mut wire);
                expected.push(Message::ping(payload.clone()));
            }
        }
    }
    (wire, expected)
}

/// Feeds `wire` to a server driver, each read taking at most the next of `reads`
/// (cycled) bytes; returns the messages and the size of the slice each read was offered.
fn receive(
    wire: &[u8],
    reads: &[usize],
    config: DriverConfig,
) -> Result<(Vec<Message>, Vec<usize>), ProtocolError> {
    let mut driver = Driver::new(Connection::server(Config::default(), at(0)), config);
    let mut messages = Vec::new();
    let mut offset = 0;
    let mut offers = Vec::new();
    let mut turn = 0;
    // Bounded: every turn either reads at least one byte or ends.
    for _ in 0..(wire.len() + 16) * 2 {
        match driver.poll_message(at(1)) {
            Some(message) => {
                if message.is_data() {
                    // Echo it: once written, its buffer goes back to the per-thread pool
                    // (old bytes and all) and later messages are assembled in it.
                    driver.send(message.clone(), at(1)).unwrap();
                    write_all_queued(&mut driver);
                }
                messages.push(message);
                continue;
            }
            None => match driver.outcome() {
                Some(Outcome::Abnormal(Abnormal::Protocol(error))) => return Err(*error),
                Some(_) => break,
                None => {}
            },
        }
        if offset == wire.len() {
            break;
        }
        let limit = reads[turn % reads.len()].max(1);
        turn += 1;
        let read = driver.read_with(|buf: &mut [u8]| -> Poll<Result<usize, ()>> {
            offers.push(buf.len());
            let n = buf.len().min(limit).min(wire.len() - offset);
            buf[..n].copy_from_slice(&wire[offset..offset + n]);
            offset += n;
            Poll::Ready(Ok(n))
        });
        assert!(matches!(read, Poll::Ready(Ok(n)) if n > 0), "{read:?}");
    }
    assert_eq!(offset, wire.len(), "the driver stopped reading");
    assert!(!driver.has_buffered_input());
    Ok((messages, offers))
}

fn config(read_buffer: usize, threshold: usize) -> DriverConfig {
    DriverConfig::default()
        .with_read_buffer_size(read_buffer)
        .with_direct_read_threshold(threshold)
}

#[test]
fn large_frames_are_read_straight_into_the_message() {
    let payload = pattern(1 << 20, 7);
    let items = [
        Item::Binary {
            payload: payload.clone(),
            fragments: vec![],
        },
        Item::Binary {
            payload: pattern(100, 1),
            fragments: vec![],
        },
        Item::Binary {
            payload: pattern(200_000, 3),
            fragments: vec![],
        },
    ];
    let (wire, expected) = encode(&items);
    let read_buffer = 4096;

    let (messages, offers) = receive(&wire, &[usize::MAX], config(read_buffer, 16 * 1024)).unwrap();
    let largest = offers.iter().max().copied().unwrap_or(0);
    assert_eq!(messages, expected);
    // The rest of a 1 MiB frame was offered in one piece, not through the 4 KiB buffer.
    assert!(largest > 900_000, "largest read offered: {largest}");

    let (messages, offers) =
        receive(&wire, &[usize::MAX], config(read_buffer, usize::MAX)).unwrap();
    assert_eq!(messages, expected);
    let largest = offers.iter().max().copied().unwrap_or(0);
    assert_eq!(largest, read_buffer, "direct reads are off");
}

#[test]
fn a_stream_of_large_frames_takes_one_read_per_frame() {
    let items: Vec<Item> = (0..4)
        .map(|seed| Item::Binary {
            payload: pattern(64 * 1024, seed),
            fragments: vec![],
        })
        .collect();
    let (wire, expected) = encode(&items);
    let (messages, offers) = receive(&wire, &[usize::MAX], config(64 * 1024, 16 * 1024)).unwrap();
    assert_eq!(messages, expected);
    // First the whole read buffer (nothing known yet: it takes all but the end of the
    // first message), then the end of that message, read straight into it; then one read
    // per message: the rest of its frame straight into the message. Each direct read
    // runs 256 bytes past its frame, for the next header and the start of the next
    // payload (the only bytes copied).
    assert_eq!(offers[0], 64 * 1024, "offers: {offers:?}");
    assert!(offers[1] <= 256 + 14, "offers: {offers:?}");
    for &offer in &offers[2..] {
        assert!(
            (65536 - 256..=65536 + 256).contains(&offer),
            "offers: {offers:?}"
        );
    }
    assert_eq!(offers.len(), items.len() + 1, "offers: {offers:?}");
}

/// Text is not read directly (it is validated as it is copied into its `String`), so
/// large text frames must not hold reads down to the few bytes meant for the next header
/// of a binary stream: they go through the read buffer in reads of its full size.
#[test]
fn large_text_frames_are_read_in_full_buffer_reads() {
    let items: Vec<Item> = (0..4)
        .map(|seed| Item::Text {
            text: "é".repeat(32 * 1024) + &seed.to_string(),
            fragments: vec![],
        })
        .collect();
    let (wire, expected) = encode(&items);
    let read_buffer = 64 * 1024;
    let (messages, offers) = receive(&wire, &[usize::MAX], config(read_buffer, 16 * 1024)).unwrap();
    assert_eq!(messages, expected);
    assert!(
        offers.iter().all(|&offer| offer >= read_buffer / 2),
        "offers: {offers:?}"
    );
    assert!(
        offers.len() <= wire.len() / read_buffer + 4,
        "offers: {offers:?}"
    );
}

fn item() -> impl Strategy<Value = Item> {
    let size = prop_oneof![
        0usize..200,
        3_000usize..5_000,
        15_000usize..18_000,
        60_000usize..140_000,
    ];
    prop_oneof![
        (
            size.clone(),
            any::<u8>(),
            proptest::collection::vec(any::<usize>(), 0..4)
        )
            .prop_map(|(len, seed, fragments)| Item::Binary {
                payload: pattern(len, seed),
                fragments,
            }),
        (size, proptest::collection::vec(any::<usize>(), 0..4)).prop_map(|(len, fragments)| {
            // Multi-byte characters, so fragments and reads split them.
            let text: String = "añ€𝄞".chars().cycle().take(len / 3).collect();
            Item::Text { text, fragments }
        }),
        proptest::collection::vec(any::<u8>(), 0..126).prop_map(Item::Ping),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the read sizes, buffer size and threshold, the messages come out whole
    /// and in order, exactly as the ones read through the buffer alone.
    #[test]
    fn messages_survive_any_reads(
        items in proptest::collection::vec(item(), 1..6),
        reads in proptest::collection::vec(1usize..100_000, 1..8),
        read_buffer in prop_oneof![Just(200usize), Just(4096), Just(65536)],
        threshold in prop_oneof![Just(0usize), Just(1024), Just(16 * 1024), Just(usize::MAX)],
    ) {
        let (wire, expected) = encode(&items);
        let (messages, _) = receive(&wire, &reads, config(read_buffer, threshold)).unwrap();
        prop_assert_eq!(messages, expected);
    }
}
