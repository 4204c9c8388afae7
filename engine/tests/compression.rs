//! permessage-deflate through the driver: messages round-trip compressed in every mode,
//! small ones go as they are, and a bad compressed message (a bomb, broken data, bad
//! UTF-8 once inflated) ends the connection with the right close code, within its limit.

use std::task::Poll;

use sockeye_engine::{Abnormal, Driver, DriverConfig, Message, Outcome};
use sockeye_proto::deflate::Deflater;
use sockeye_proto::extension::Direction;
use sockeye_proto::{
    CloseCode, Config, Connection, DeflateConfig, DeflateParams, Event, Instant, ProtocolError,
    Role,
};

fn driver(role: Role, config: Config) -> Driver {
    Driver::new(
        Connection::new(role, config, [3; 32], Instant::ZERO),
        DriverConfig::default(),
    )
}

/// A client and a server that agreed `params`.
fn pair(params: DeflateParams, local: DeflateConfig, config: Config) -> (Driver, Driver) {
    let mut client = driver(Role::Client, config);
    let mut server = driver(Role::Server, config);
    client.enable_compression(params, local);
    server.enable_compression(params, local);
    (client, server)
}

/// Everything `from` has queued, as the bytes on the wire.
fn take_wire(from: &mut Driver) -> Vec<u8> {
    let mut wire = Vec::new();
    for _ in 0..100_000 {
        let n = {
            let mut slices = [std::io::IoSlice::new(&[]); 16];
            let count = from.write_slices(&mut slices);
            for slice in &slices[..count] {
                wire.extend_from_slice(slice);
            }
            slices[..count].iter().map(|s| s.len()).sum::<usize>()
        };
        if n == 0 {
            return wire;
        }
        from.advance(n);
    }
    panic!("the queue never drained");
}

/// Feeds `wire` to `to` in reads of at most `chunk` bytes and collects the messages.
fn feed(to: &mut Driver, wire: &[u8], chunk: usize) -> Vec<Message> {
    let mut messages = Vec::new();
    let mut rest = wire;
    for _ in 0..1_000_000 {
        while let Some(message) = to.poll_message(Instant::ZERO) {
            messages.push(message);
        }
        if rest.is_empty() || to.outcome().is_some() {
            break;
        }
        let taken = match to.read_with(|buf: &mut [u8]| -> Poll<Result<usize, ()>> {
            let n = buf.len().min(rest.len()).min(chunk);
            buf[..n].copy_from_slice(&rest[..n]);
            Poll::Ready(Ok(n))
        }) {
            Poll::Ready(Ok(n)) => n,
            other => panic!("{other:?}"),
        };
        rest = &rest[taken..];
    }
    while let Some(message) = to.poll_message(Instant::ZERO) {
        messages.push(message);
    }
    messages
}

/// JSON-like text that compresses well.
fn json(len: usize) -> String {
    let mut text = String::new();
    let mut i = 0u64;
    while text.len() < len {
        text.push_str(&format!(
            "{{\"id\":{i},\"name\":\"user{}\",\"tags\":[\"a\",\"é\"],\"ok\":true}},",
            i % 97
        ));
        i += 1;
    }
    text.truncate(text.char_indices().take_while(|(at, _)| *at < len).count());
    text
}

/// Bytes no compressor can shrink.
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn rsv1(frame_start: &[u8]) -> bool {
    frame_start[0] & 0x40 != 0
}

fn params(takeover: bool, bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: !takeover,
        client_no_context_takeover: !takeover,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    }
}

#[test]
fn messages_round_trip_compressed_in_every_mode_both_ways() {
    let messages = [
        Message::text(json(300)),
        Message::text(json(40_000)),
        Message::binary(json(70_000).into_bytes()),
        Message::text(json(300)),
        Message::binary(noise(5_000)),
        Message::text(json(1 << 20)),
        Message::text(json(300)),
    ];
    for takeover in [false, true] {
        for bits in [8, 9, 12, 15] {
            let local = if takeover {
                DeflateConfig::DEFAULT.with_context_takeover(15)
            } else {
                DeflateConfig::DEFAULT
            };
            let (mut client, mut server) = pair(params(takeover, bits), local, Config::default());
            for (chunk, client_sends) in [(7, true), (65_536, false)] {
                let (from, to) = if client_sends {
                    (&mut client, &mut server)
                } else {
                    (&mut server, &mut client)
                };
                for message in &messages {
                    from.send(message.clone(), Instant::ZERO).unwrap();
                }
                let wire = take_wire(from);
                let received = feed(to, &wire, chunk);
                assert_eq!(
                    received, messages,
                    "takeover {takeover}, {bits} bits, reads of {chunk}"
                );
                let total: usize = messages.iter().map(|m| m.as_bytes().len()).sum();
                assert!(
                    wire.len() < total / 2,
                    "{} wire bytes for {total}: not compressed",
                    wire.len()
                );
            }
        }
    }
}

#[test]
fn a_message_below_the_threshold_goes_uncompressed_and_one_above_it_compressed() {
    let (mut client, mut server) = pair(
        params(false, 15),
        DeflateConfig::DEFAULT.with_threshold(100),
        Config::default(),
    );
    server
        .send(Message::text("x".repeat(99)), Instant::ZERO)
        .unwrap();
    let small = take_wire(&mut server);
    assert!(!rsv1(&small));
    server
        .send(Message::text("x".repeat(100)), Instant::ZERO)
        .unwrap();
    let large = take_wire(&mut server);
    assert!(rsv1(&large));
    assert!(large.len() < 50, "{} bytes", large.len());
    let received = feed(&mut client, &[small, large].concat(), 1 << 16);
    assert_eq!(
        received,
        [
            Message::text("x".repeat(99)),
            Message::text("x".repeat(100))
        ]
    );
}

#[test]
fn incompressible_data_goes_uncompressed_without_context_takeover() {
    let (mut client, mut server) =
        pair(params(false, 15), DeflateConfig::DEFAULT, Config::default());
    let payload = noise(4096);
    server
        .send(Message::binary(payload.clone()), Instant::ZERO)
        .unwrap();
    let wire = take_wire(&mut server);
    assert!(!rsv1(&wire));
    assert_eq!(
        feed(&mut client, &wire, 1 << 16),
        [Message::binary(payload)]
    );
}

#[test]
fn the_rfc_7692_hello_example_inflates() {
    // RFC 7692 §7.2.3.1: "Hello" compressed, unfragmented, from a server.
    let (mut client, _) = pair(params(false, 15), DeflateConfig::DEFAULT, Config::default());
    let wire = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(feed(&mut client, &wire, 3), [Message::text("Hello")]);
    // §7.2.3.1 too: the same, in two fragments, only the first with RSV1.
    let wire = [
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(feed(&mut client, &wire, 1), [Message::text("Hello")]);
}

/// A server-to-client frame carrying `payload` (unmasked), RSV1 set.
fn compressed_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0xc0 | opcode];
    match payload.len() {
        len @ 0..=125 => frame.push(len as u8),
        len @ 126..=65535 => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame
}

fn compress(payload: &[u8]) -> Vec<u8> {
    let mut deflater = Deflater::new(
        Direction {
            window_bits: 15,
            context_takeover: false,
        },
        9,
    );
    let mut out = Vec::new();
    deflater.compress(payload, true, &mut out).unwrap();
    out
}

fn failed_with(driver: &Driver) -> ProtocolError {
    match driver.outcome() {
        Some(Outcome::Abnormal(Abnormal::Protocol(error))) => *error,
        other => panic!("expected a protocol error, got {other:?}"),
    }
}

/// The close code of the Close frame `driver` queued last (the last bytes queued).
fn close_code_sent(driver: &mut Driver) -> u16 {
    let wire = take_wire(driver);
    let close = wire
        .windows(2)
        .rposition(|w| w[0] == 0x88)
        .expect("a Close frame");
    // A client's frame is masked: the key follows the length.
    let (mask, payload) = if wire[close + 1] & 0x80 != 0 {
        (&wire[close + 2..close + 6], close + 6)
    } else {
        (&[0u8; 4][..], close + 2)
    };
    u16::from_be_bytes([wire[payload] ^ mask[0], wire[payload + 1] ^ mask[1]])
}

#[test]
fn a_compression_bomb_ends_with_1009_after_at_most_the_limit() {
    // 64 MiB of zeros compresses to about 64 KiB; the limit is 1 MiB.
    let limit = 1 << 20;
    let config = Config::default().with_max_message_size(limit);
    let (mut client, _) = pair(params(false, 15), DeflateConfig::DEFAULT, config);
    let bomb = compress(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 128 * 1024, "{} bytes", bomb.len());
    let received = feed(&mut client, &compressed_frame(0x2, &bomb), 1 << 16);
    assert!(received.is_empty());
    assert_eq!(failed_with(&client), ProtocolError::MessageTooLarge);
    assert_eq!(close_code_sent(&mut client), CloseCode::TOO_BIG.0);
}

#[test]
fn a_streamed_compressed_message_comes_out_in_bounded_chunks() {
    let (mut client, mut server) =
        pair(params(false, 15), DeflateConfig::DEFAULT, Config::default());
    let text = json(3 << 20);
    server
        .send(Message::text(text.clone()), Instant::ZERO)
        .unwrap();
    let wire = take_wire(&mut server);
    let mut rest = &wire[..];
    let mut assembled = String::new();
    let mut largest = 0;
    let mut ended = false;
    for _ in 0..1_000_000 {
        let event = client.poll_event_with(Instant::ZERO, |event| match event {
            Event::Text { text, end } => Some((text.to_owned(), end.is_message_end())),
            other => panic!("{other:?}"),
        });
        if let Some(Some((chunk, end))) = event {
            largest = largest.max(chunk.len());
            assembled.push_str(&chunk);
            ended = end;
            if ended {
                break;
            }
            continue;
        }
        let Poll::Ready(Ok(n)) = client.read_with(|buf: &mut [u8]| -> Poll<Result<usize, ()>> {
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            Poll::Ready(Ok(n))
        }) else {
            panic!()
        };
        rest = &rest[n..];
    }
    assert!(ended);
    assert_eq!(assembled, text);
    assert!(largest <= 16 * 1024, "a chunk of {largest} bytes");
}

#[test]
fn broken_compressed_data_ends_with_1007() {
    let (mut client, _) = pair(params(false, 15), DeflateConfig::DEFAULT, Config::default());
    // Block type 3 is reserved in DEFLATE (RFC 1951 §3.2.3).
    let received = feed(
        &mut client,
        &compressed_frame(0x1, &[0xff, 0xff, 0xff]),
        1 << 16,
    );
    assert!(received.is_empty());
    assert_eq!(failed_with(&client), ProtocolError::InvalidCompressedData);
    assert_eq!(close_code_sent(&mut client), CloseCode::INVALID_PAYLOAD.0);
}

#[test]
fn text_that_is_not_utf8_once_inflated_ends_with_1007() {
    let (mut client, _) = pair(params(false, 15), DeflateConfig::DEFAULT, Config::default());
    let mut bad = json(50_000).into_bytes();
    bad[40_000] = 0xff;
    let received = feed(
        &mut client,
        &compressed_frame(0x1, &compress(&bad)),
        1 << 16,
    );
    assert!(received.is_empty());
    assert_eq!(failed_with(&client), ProtocolError::InvalidUtf8);
    assert_eq!(close_code_sent(&mut client), CloseCode::INVALID_PAYLOAD.0);
}

#[test]
fn rsv1_on_a_continuation_frame_is_a_protocol_error() {
    let (mut client, _) = pair(params(false, 15), DeflateConfig::DEFAULT, Config::default());
    let wire = [
        0x41, 0x03, 0xf2, 0x48, 0xcd, 0xc0, 0x04, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert!(feed(&mut client, &wire, 1 << 16).is_empty());
    assert_eq!(failed_with(&client), ProtocolError::ReservedBits);
}

#[test]
fn rsv1_without_compression_is_a_protocol_error() {
    let mut client = driver(Role::Client, Config::default());
    let wire = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert!(feed(&mut client, &wire, 1 << 16).is_empty());
    assert_eq!(failed_with(&client), ProtocolError::ReservedBits);
}

#[test]
fn an_empty_compressed_message_inflates_to_nothing() {
    let (mut client, _) = pair(params(false, 15), DeflateConfig::DEFAULT, Config::default());
    // As Chrome sends it: one 0x00 byte; and as some peers do: no payload at all.
    let wire = [compressed_frame(0x1, &[0x00]), compressed_frame(0x2, &[])].concat();
    assert_eq!(
        feed(&mut client, &wire, 1 << 16),
        [Message::text(""), Message::binary(Vec::new())]
    );
}
