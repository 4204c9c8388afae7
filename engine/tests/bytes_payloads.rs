//! Message payloads as shared bytes, seen through a counting allocator: a received
//! message is the buffer it was assembled in (no copy after the read buffer), a sent
//! `Bytes` is written from where it is (no copy), one `Bytes` sent to many connections
//! is shared by all of them, and a payload nothing else holds goes back to the pool for
//! the next message to be read into.

// The counting global allocator of `support` is the one way to see what a call allocates.
#![allow(unsafe_code)]

mod support;

use std::io::IoSlice;

use sockeye_engine::{Bytes, Driver, Message, Utf8Bytes};
use sockeye_proto::{Instant, Role};
use support::{counted, driver, read, take_wire};

/// A large payload: over the coalescing limit and the direct-read threshold (16 KiB).
const LARGE: usize = 256 * 1024;
/// A payload small enough to go through the read buffer, but not tiny.
const SMALL: usize = 8 * 1024;

fn binary_payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// `len` bytes of text, with two-byte characters that chunks of the read buffer cut.
fn text_payload(len: usize) -> String {
    let mut text = String::with_capacity(len);
    for c in "κόσμε hello ".chars().cycle() {
        if text.len() + c.len_utf8() > len {
            break;
        }
        text.push(c);
    }
    while text.len() < len {
        text.push('.');
    }
    text
}

/// The wire a client (masking) or server sends for `messages`, made on another thread
/// so that its buffers do not land in this thread's pools.
fn wire_from(role: Role, messages: Vec<Message>) -> Vec<u8> {
    std::thread::spawn(move || {
        let mut sender = driver(role);
        for message in messages {
            sender.send(message, Instant::ZERO).unwrap();
        }
        take_wire(&mut sender)
    })
    .join()
    .unwrap()
}

/// A server that has read one small message, so its read buffer is in the pool.
fn warm_server() -> Driver {
    let mut server = driver(Role::Server);
    let wire = wire_from(Role::Client, vec![Message::text("warm up")]);
    assert_eq!(read(&mut server, &wire), [Message::text("warm up")]);
    server
}

/// The (address, length) of every slice `driver` would write now.
fn queued_slices(driver: &Driver) -> Vec<(usize, usize)> {
    let mut slices = [IoSlice::new(&[]); 64];
    let count = driver.write_slices(&mut slices);
    slices[..count]
        .iter()
        .map(|slice| (slice.as_ptr() as usize, slice.len()))
        .collect()
}

/// Writes everything `driver` queued to nowhere (nothing allocated for it).
fn write_out(driver: &mut Driver) {
    loop {
        let mut slices = [IoSlice::new(&[]); 16];
        let count = driver.write_slices(&mut slices);
        let n: usize = slices[..count].iter().map(|s| s.len()).sum();
        if n == 0 {
            return;
        }
        driver.advance(n);
    }
}

/// Reads one whole message of at least `len` bytes, counting what that allocates (the
/// read buffer is pooled already): the message's own buffer is the one allocation of
/// its size, and the message hands out that very buffer.
fn assert_received_without_a_copy(wire: &[u8], len: usize, expected: &Message) {
    let mut server = warm_server();
    let (received, counts) = counted(len / 2, || read(&mut server, wire));
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert!(message == expected, "the message arrived changed");
    assert_eq!(
        counts.large_count, 1,
        "one buffer of the message's size: {counts:?}"
    );
    let (size, at) = counts.large[0];
    assert!(size >= len, "{counts:?}");
    assert_eq!(
        message.as_bytes().as_ptr() as usize,
        at,
        "the payload is the buffer the message was assembled in"
    );
    // Nothing else of the message's size: the buffer and a little bookkeeping.
    assert!(
        counts.bytes < size + 4096,
        "{} bytes allocated for a message of {len}: {counts:?}",
        counts.bytes
    );
}

#[test]
fn a_received_binary_message_is_its_buffer() {
    for len in [SMALL, LARGE] {
        let payload = binary_payload(len);
        let wire = wire_from(Role::Client, vec![Message::binary(payload.clone())]);
        assert_received_without_a_copy(&wire, len, &Message::binary(payload));
    }
}

#[test]
fn a_received_text_message_is_its_buffer() {
    for len in [SMALL, LARGE] {
        let text = text_payload(len);
        let wire = wire_from(Role::Client, vec![Message::text(text.clone())]);
        assert_received_without_a_copy(&wire, text.len(), &Message::text(text));
    }
}

#[test]
fn a_fragmented_message_is_assembled_once_and_handed_out_as_it_is() {
    // Four frames of 64 KiB: the buffer is sized by the first, grown for the others,
    // and becomes the payload.
    let payload = binary_payload(LARGE);
    let wire = std::thread::spawn({
        let payload = payload.clone();
        move || {
            let mut client = driver(Role::Client);
            let parts: Vec<&[u8]> = payload.chunks(LARGE / 4).collect();
            for (index, part) in parts.iter().enumerate() {
                let fin = index + 1 == parts.len();
                client
                    .send_frame(sockeye_proto::DataKind::Binary, fin, part.to_vec())
                    .unwrap();
            }
            take_wire(&mut client)
        }
    })
    .join()
    .unwrap();
    let mut server = warm_server();
    let (received, counts) = counted(LARGE / 8, || read(&mut server, &wire));
    assert_eq!(received, [Message::binary(payload)]);
    // Whatever the growth took, the last buffer is the message.
    let (_, last) = counts.large[counts.large.len() - 1];
    assert_eq!(received[0].as_bytes().as_ptr() as usize, last, "{counts:?}");
}

#[test]
fn a_server_sends_shared_bytes_without_a_copy() {
    for message in [
        Message::binary(binary_payload(LARGE)),
        Message::text(text_payload(LARGE)),
    ] {
        let mut server = warm_server();
        let payload = message.clone().into_payload();
        // The caller keeps its reference (`message`): the bytes are shared, not moved.
        let ((), counts) = counted(LARGE / 2, || {
            server.send(message.clone(), Instant::ZERO).unwrap();
        });
        assert_eq!(counts.large_count, 0, "a copy of the payload: {counts:?}");
        assert!(counts.bytes < 8 * 1024, "{counts:?}");
        // The queue writes the caller's bytes themselves, after the frame's head.
        let slices = queued_slices(&server);
        assert!(
            slices.contains(&(payload.as_ptr() as usize, payload.len())),
            "the payload is written from where it is: {slices:?}"
        );
        let wire = take_wire(&mut server);
        let mut client = driver(Role::Client);
        assert_eq!(read(&mut client, &wire), [message]);
    }
}

#[test]
fn a_client_masks_a_payload_it_alone_holds_in_place() {
    let payload = binary_payload(LARGE);
    let outgoing = payload.clone();
    let at = outgoing.as_ptr() as usize;
    let mut client = driver(Role::Client);
    let ((), counts) = counted(LARGE / 2, || {
        client
            .send(Message::binary(outgoing), Instant::ZERO)
            .unwrap();
    });
    assert_eq!(counts.large_count, 0, "a copy of the payload: {counts:?}");
    let slices = queued_slices(&client);
    assert!(slices.contains(&(at, LARGE)), "masked in place: {slices:?}");
    let wire = take_wire(&mut client);
    let mut server = driver(Role::Server);
    assert_eq!(read(&mut server, &wire), [Message::binary(payload)]);
}

#[test]
fn a_client_copies_shared_bytes_to_mask_them_and_leaves_them_unchanged() {
    let original = binary_payload(LARGE);
    let shared = Bytes::from(original.clone());
    let mut client = driver(Role::Client);
    let ((), counts) = counted(LARGE / 2, || {
        client
            .send(Message::Binary(shared.clone()), Instant::ZERO)
            .unwrap();
    });
    // The mask cannot be applied to bytes someone else reads: one copy.
    assert_eq!(counts.large_count, 1, "{counts:?}");
    assert_eq!(shared, original, "the caller's bytes were masked");
    let wire = take_wire(&mut client);
    let mut server = driver(Role::Server);
    assert_eq!(read(&mut server, &wire), [Message::binary(original)]);
}

#[test]
fn one_payload_sent_to_many_connections_is_shared_by_all() {
    let connections = 100;
    for message in [
        Message::binary(binary_payload(LARGE)),
        Message::text(text_payload(LARGE)),
    ] {
        let payload = message.clone().into_payload();
        let mut servers: Vec<Driver> = (0..connections).map(|_| warm_server()).collect();
        let ((), counts) = counted(LARGE / 2, || {
            for server in &mut servers {
                server.send(message.clone(), Instant::ZERO).unwrap();
            }
        });
        // 100 copies would be 25 MiB: each connection holds a reference and a frame
        // head.
        assert_eq!(counts.large_count, 0, "{counts:?}");
        assert!(
            counts.bytes < connections * 8 * 1024,
            "{} bytes for {connections} connections",
            counts.bytes
        );
        for server in &servers {
            assert!(queued_slices(server).contains(&(payload.as_ptr() as usize, LARGE)));
        }
        let wire = take_wire(&mut servers[42]);
        let mut client = driver(Role::Client);
        assert_eq!(read(&mut client, &wire), std::slice::from_ref(&message));
        // Written everywhere, the payload is still the caller's, unchanged.
        for server in &mut servers {
            write_out(server);
        }
        assert_eq!(message.into_payload(), payload);
    }
}

#[test]
fn a_payload_nothing_else_holds_is_the_next_message_s_buffer() {
    // Sent from a `Vec` (the only reference), written out: its buffer goes to the pool,
    // and the next large message is read into it.
    let mut server = warm_server();
    let outgoing = binary_payload(LARGE + 4096);
    let at = outgoing.as_ptr() as usize;
    server
        .send(Message::binary(outgoing), Instant::ZERO)
        .unwrap();
    write_out(&mut server);
    let incoming = binary_payload(LARGE);
    let wire = wire_from(Role::Client, vec![Message::binary(incoming.clone())]);
    let (received, counts) = counted(LARGE / 2, || read(&mut server, &wire));
    assert_eq!(received, [Message::binary(incoming)]);
    assert_eq!(counts.large_count, 0, "{counts:?}");
    assert_eq!(received[0].as_bytes().as_ptr() as usize, at);
}

#[test]
fn an_echo_of_large_messages_allocates_no_payload_after_the_first() {
    let messages: Vec<Message> = (0..4u8)
        .map(|seed| {
            if seed % 2 == 0 {
                Message::binary(vec![seed; LARGE])
            } else {
                Message::text(text_payload(LARGE))
            }
        })
        .collect();
    let wire = wire_from(Role::Client, messages.clone());
    let mut server = warm_server();
    let mut rest = &wire[..];
    for (index, expected) in messages.iter().enumerate() {
        let (same, counts) = counted(LARGE / 2, || {
            let message = next_message(&mut server, &mut rest);
            let same = &message == expected;
            // The echo hands the message back as it is: the driver's is the last
            // reference once it is written.
            server.send(message, Instant::ZERO).unwrap();
            write_out(&mut server);
            same
        });
        assert!(same, "message {index}");
        if index > 0 {
            // The previous payload, written back, is this one's buffer (text or binary).
            assert_eq!(counts.large_count, 0, "message {index}: {counts:?}");
        }
    }
}

/// The next whole message from `rest`, read as the driver asks for it.
fn next_message(driver: &mut Driver, rest: &mut &[u8]) -> Message {
    loop {
        if let Some(message) = driver.poll_message(Instant::ZERO) {
            return message;
        }
        assert!(!rest.is_empty(), "the wire ended first");
        let std::task::Poll::Ready(Ok(n)) =
            driver.read_with(|buf: &mut [u8]| -> std::task::Poll<Result<usize, ()>> {
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                std::task::Poll::Ready(Ok(n))
            })
        else {
            panic!("the read failed")
        };
        *rest = &rest[n..];
    }
}

#[test]
fn text_and_binary_round_trip_through_the_conversions() {
    // What users build messages from, and what they get back.
    let text = Message::text(String::from("héllo"));
    let Message::Text(utf8) = &text else {
        panic!("{text:?}")
    };
    assert_eq!(utf8, "héllo");
    assert_eq!(text.as_text(), Some("héllo"));
    assert_eq!(Message::from("héllo"), text);
    assert_eq!(Message::text(Utf8Bytes::from_static("héllo")), text);
    assert_eq!(
        Message::binary(&b"\x01\x02"[..]),
        Message::from(vec![1u8, 2])
    );
    assert_eq!(
        Message::binary(Bytes::from_static(b"\x01\x02")).into_payload(),
        [1u8, 2][..]
    );
    assert_eq!(Message::ping(vec![9]).as_bytes(), [9]);
    assert_eq!(Message::pong(Bytes::new()).as_bytes(), [0u8; 0]);
    assert_eq!(Message::binary(vec![1u8]).as_text(), None);
    let wire = wire_from(Role::Client, vec![text.clone(), Message::ping(vec![9])]);
    let mut server = driver(Role::Server);
    assert_eq!(read(&mut server, &wire), [text, Message::ping(vec![9])]);
}
