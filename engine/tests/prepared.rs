//! Prepared messages: framed (and compressed) once, queued on many server connections by
//! reference, with no copy of the payload per connection (a counting allocator shows
//! it), and a per-connection fallback where the frame cannot be shared.

// The counting global allocator of `support` is the one way to see what a call allocates.
#![allow(unsafe_code)]

mod support;

use sockeye_engine::{Driver, Message, PreparedMessage};
use sockeye_proto::{DeflateConfig, DeflateParams, Instant, Role, SendError};
use support::{allocated_by, driver, read, take_wire};

#[test]
fn a_broadcast_queues_one_frame_by_reference_on_every_connection() {
    let payload = vec![0x5a_u8; 256 * 1024];
    let prepared = PreparedMessage::binary(payload.clone());
    let mut servers: Vec<Driver> = (0..100).map(|_| driver(Role::Server)).collect();
    let ((), allocated) = allocated_by(|| {
        for server in &mut servers {
            server.send_prepared(&prepared, Instant::ZERO).unwrap();
        }
    });
    // 100 copies would be 25 MiB; a reference per connection is a few bytes each.
    assert!(
        allocated < 64 * 1024,
        "{allocated} bytes allocated for 100 subscribers"
    );
    for server in &mut servers {
        assert_eq!(server.pending_bytes(), prepared.frame().len());
    }
    // What each writes is the one frame, which a client reads as the message.
    let wire = take_wire(&mut servers[7]);
    assert_eq!(&wire[..], &prepared.frame()[..]);
    let mut client = driver(Role::Client);
    assert_eq!(read(&mut client, &wire), [Message::Binary(payload)]);
}

#[test]
fn a_compressed_broadcast_is_compressed_once() {
    let text = "{\"symbol\":\"ACME\",\"price\":101.5,\"volume\":1200}\n".repeat(400);
    let config = DeflateConfig::default();
    let prepared = PreparedMessage::text(text.clone()).with_compression(&config);
    let compressed = prepared.compressed_frame().expect("it compresses").clone();
    assert!(compressed.len() * 5 < text.len());

    // Subscribers that agreed no context takeover (the default) share the compressed
    // frame: queuing it compresses nothing and copies nothing.
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut servers: Vec<Driver> = (0..50)
        .map(|_| {
            let mut server = driver(Role::Server);
            server.enable_compression(params, config);
            server
        })
        .collect();
    let ((), allocated) = allocated_by(|| {
        for server in &mut servers {
            server.send_prepared(&prepared, Instant::ZERO).unwrap();
        }
    });
    assert!(
        allocated < 16 * 1024,
        "{allocated} bytes for 50 subscribers"
    );
    let wire = take_wire(&mut servers[0]);
    assert_eq!(&wire[..], &compressed[..]);
    let mut client = driver(Role::Client);
    client.enable_compression(params, config);
    assert_eq!(read(&mut client, &wire), [Message::Text(text.clone())]);

    // One that keeps its context cannot share it: its own compressor sends the payload,
    // which still arrives whole.
    let takeover = DeflateParams {
        server_no_context_takeover: false,
        ..params
    };
    let local = DeflateConfig::default().with_context_takeover(15);
    let mut server = driver(Role::Server);
    server.enable_compression(takeover, local);
    server.send_prepared(&prepared, Instant::ZERO).unwrap();
    server.send_prepared(&prepared, Instant::ZERO).unwrap();
    let wire = take_wire(&mut server);
    // The second time, its compressor refers back to the first: not the shared frame.
    assert!(wire.len() < 2 * compressed.len(), "{}", wire.len());
    let mut client = driver(Role::Client);
    client.enable_compression(takeover, local);
    assert_eq!(
        read(&mut client, &wire),
        [Message::Text(text.clone()), Message::Text(text)]
    );
}

#[test]
fn clients_and_closed_connections_follow_the_ordinary_rules() {
    let prepared = PreparedMessage::text("hello");
    // A client masks every frame: the payload goes the ordinary way.
    let mut client = driver(Role::Client);
    client.send_prepared(&prepared, Instant::ZERO).unwrap();
    let wire = take_wire(&mut client);
    assert_ne!(&wire[..], &prepared.frame()[..]);
    assert_eq!(wire[1] & 0x80, 0x80, "masked");
    let mut server = driver(Role::Server);
    assert_eq!(read(&mut server, &wire), [Message::text("hello")]);

    // After our Close, nothing more.
    let mut server = driver(Role::Server);
    server
        .close(sockeye_proto::CloseCode::NORMAL, "", Instant::ZERO)
        .unwrap();
    assert_eq!(
        server.send_prepared(&prepared, Instant::ZERO),
        Err(SendError::Closed)
    );
}
