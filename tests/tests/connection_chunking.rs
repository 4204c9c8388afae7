//! The chunking invariant: however a byte stream is cut into reads, and whatever the read
//! buffer size (from `MIN_INPUT_BUFFER` up), a connection reports the same transcript and
//! writes the same bytes back.
//!
//! The stream is nontrivial on purpose: a fragmented text message whose multi-byte
//! characters are split across frames, pings and a pong between its fragments, empty
//! frames, binary messages in every length form, masking keys of every phase, a close
//! frame, and junk after the close (which must be ignored).

use proptest::prelude::*;
use sockeye_proto::{CleanClose, CloseCode, Closed, Config, Instant, Role, MIN_INPUT_BUFFER};
use sockeye_tests::wire::{stream, Length};
use sockeye_tests::{Chunking, Endpoint, Entry, Frame, Transcript, XorShift};

/// The peer of the receiving role (who writes the stream).
fn sender(receiver: Role) -> Role {
    match receiver {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    }
}

/// Masks with a different key per frame when the sender is a client.
fn mask(frame: Frame, sender: Role, n: u8) -> Frame {
    match sender {
        Role::Client => frame.masked([0x11 ^ n, 0x80 | n, n.wrapping_mul(37), 0xFF - n]),
        Role::Server => frame,
    }
}

/// The stream a `receiver` reads, and what it must report.
fn conversation(receiver: Role) -> (Vec<u8>, Transcript) {
    let from = sender(receiver);
    let greek = "κόσμε"; // 2-byte characters
    let mixed = "€𝄞ж"; // 3, 4 and 2 bytes
    let g = greek.as_bytes();
    let m = mixed.as_bytes();
    let blob = XorShift::new(99).bytes(300);
    let frames = vec![
        // "κόσμε€𝄞ж" in five fragments, cut inside characters, with controls between.
        Frame::text_bytes(&g[..3]).fin(false),
        Frame::ping(b"ping 1"),
        Frame::continuation(&g[3..7]).fin(false),
        Frame::continuation(b"").fin(false),
        Frame::pong(b"unsolicited"),
        Frame::continuation(&[&g[7..], &m[..1]].concat()).fin(false),
        Frame::ping(&[0xAB; 125]).length(Length::Long),
        Frame::continuation(&m[1..6]).fin(false),
        Frame::continuation(&m[6..]),
        // Binary in the 16-bit length form, then in a needless 64-bit form.
        Frame::binary(&blob),
        Frame::binary(&blob[..5]).length(Length::Long),
        // Empty messages of both kinds, one of them fragmented.
        Frame::text(""),
        Frame::binary(b"").fin(false),
        Frame::continuation(b""),
        // A 4-byte character alone, split over two frames with a ping between.
        Frame::text_bytes(&"𝄞".as_bytes()[..2]).fin(false),
        Frame::ping(b""),
        Frame::continuation(&"𝄞".as_bytes()[2..]),
        Frame::text("done ✓").length(Length::Medium),
        Frame::close(4001, "fin ✓"),
        // After the Close: ignored, even though invalid.
        Frame::text("ignored"),
        Frame::new(0xF, b"junk").rsv(7),
    ];
    let frames: Vec<Frame> = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| mask(f, from, i as u8))
        .collect();
    let mut expected = vec![
        Entry::ping(b"ping 1"),
        Entry::pong(b"unsolicited"),
        Entry::ping(&[0xAB; 125]),
        Entry::text("κόσμε€𝄞ж"),
        Entry::binary(&blob),
        Entry::binary(&blob[..5]),
        Entry::text(""),
        Entry::binary(b""),
        Entry::ping(b""),
        Entry::text("𝄞"),
        Entry::text("done ✓"),
        Entry::close(CloseCode(4001), "fin ✓"),
    ];
    if receiver == Role::Server {
        // The server ends at once (it closes TCP first); the client waits for the FIN.
        expected.push(Entry::Closed(Closed::Clean(CleanClose {
            sent: Some(CloseCode(4001)),
            received: Some(CloseCode(4001)),
            initiated_locally: false,
        })));
    }
    (stream(&frames), Transcript::of(expected))
}

/// Feeds `bytes` cut at `cuts` into a fresh `role` endpoint; returns what it saw and wrote.
fn run(role: Role, buffer: usize, bytes: &[u8], chunking: &Chunking) -> (Transcript, Vec<u8>) {
    let mut endpoint = Endpoint::new(role, Config::default(), Instant::ZERO).read_buffer(buffer);
    endpoint.receive_chunked(bytes, chunking, Instant::ZERO);
    (endpoint.transcript().clone(), endpoint.sent().to_vec())
}

fn reference(role: Role) -> (Vec<u8>, Transcript, Vec<u8>) {
    let (bytes, expected) = conversation(role);
    let (transcript, sent) = run(role, 1 << 16, &bytes, &Chunking::Whole);
    assert_eq!(transcript, expected, "\n{}", transcript.render());
    (bytes, transcript, sent)
}

fn check(role: Role, buffer: usize, chunking: &Chunking) {
    let (bytes, expected, expected_sent) = reference(role);
    let (transcript, sent) = run(role, buffer, &bytes, chunking);
    assert_eq!(
        transcript,
        expected,
        "{role:?} buffer {buffer} {chunking:?}\n{}",
        transcript.render()
    );
    assert_eq!(
        sent, expected_sent,
        "{role:?} buffer {buffer} {chunking:?}: different bytes sent"
    );
}

#[test]
fn the_reference_transcript_is_right() {
    for role in [Role::Server, Role::Client] {
        let (_, transcript, sent) = reference(role);
        // Four pings answered, then the Close echoed.
        let frames = sockeye_tests::parse_frames(&sent);
        let pongs = frames
            .iter()
            .filter(|f| f.opcode == sockeye_proto::frame::OpCode::Pong)
            .count();
        assert_eq!(pongs, 3, "{role:?}");
        assert_eq!(frames.last().unwrap().close_code(), Some(CloseCode(4001)));
        assert!(transcript.len() >= 12);
    }
}

#[test]
fn splitting_at_every_position_gives_the_same_transcript() {
    for role in [Role::Server, Role::Client] {
        let (bytes, _) = conversation(role);
        for buffer in [MIN_INPUT_BUFFER, MIN_INPUT_BUFFER + 1, 200, 4096] {
            for cut in 0..=bytes.len() {
                check(role, buffer, &Chunking::SplitAt(vec![cut]));
            }
        }
    }
}

#[test]
fn splitting_at_every_pair_of_nearby_positions() {
    for role in [Role::Server, Role::Client] {
        let (bytes, _) = conversation(role);
        for first in 0..bytes.len() {
            for gap in 1..=6 {
                check(
                    role,
                    MIN_INPUT_BUFFER,
                    &Chunking::SplitAt(vec![first, first + gap]),
                );
            }
        }
    }
}

#[test]
fn byte_by_byte_and_fixed_sizes() {
    for role in [Role::Server, Role::Client] {
        for size in [1, 2, 3, 4, 5, 7, 13, 64, 141, 142, 143, 500] {
            for buffer in [MIN_INPUT_BUFFER, 300, 4096] {
                check(role, buffer, &Chunking::Fixed(size));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_chunkings_give_the_same_transcript(
        server in any::<bool>(),
        sizes in proptest::collection::vec(1usize..200, 1..40),
        buffer in MIN_INPUT_BUFFER..2048,
    ) {
        let role = if server { Role::Server } else { Role::Client };
        check(role, buffer, &Chunking::Cycle(sizes));
    }
}

/// A whole conversation over a pair, both directions cut differently: both transcripts
/// are the same whatever the chunking and buffer sizes.
fn pair_conversation(chunking: Chunking, buffer: usize) -> (Transcript, Transcript) {
    use sockeye_proto::DataKind;
    use sockeye_tests::{Pair, Side};
    let mut pair = Pair::builder()
        .read_buffer(buffer)
        .chunking_to(Side::Server, chunking.clone())
        .chunking_to(Side::Client, chunking)
        .build();
    let text = sockeye_tests::mixed_text(3000, 1);
    let t = text.as_bytes();
    pair.send_fragments(
        Side::Client,
        DataKind::Text,
        &[&t[..1], &t[1..1001], &t[1001..]],
    )
    .unwrap();
    pair.ping(Side::Client, b"c").unwrap();
    pair.send(Side::Server, DataKind::Binary, &[7; 70_000])
        .unwrap();
    pair.ping(Side::Server, b"s").unwrap();
    pair.send(Side::Server, DataKind::Text, "ünïcödé".as_bytes())
        .unwrap();
    pair.flush();
    pair.send(Side::Client, DataKind::Binary, b"").unwrap();
    pair.close(Side::Client, CloseCode(3000), "ok").unwrap();
    pair.flush();
    assert!(pair.is_done());
    (
        pair.client.transcript().clone(),
        pair.server.transcript().clone(),
    )
}

#[test]
fn a_pair_conversation_is_the_same_whatever_the_chunking() {
    let expected = pair_conversation(Chunking::Whole, 1 << 17);
    for chunking in [
        Chunking::Fixed(1),
        Chunking::Fixed(7),
        Chunking::Random { seed: 3, max: 100 },
        Chunking::Cycle(vec![200, 1, 1, 3]),
    ] {
        for buffer in [MIN_INPUT_BUFFER, 4096] {
            assert_eq!(
                pair_conversation(chunking.clone(), buffer),
                expected,
                "{chunking:?} {buffer}"
            );
        }
    }
}
