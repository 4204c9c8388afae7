//! Without context takeover the codec's engines are not rebuilt for every message: they
//! go back to the thread's pool between messages and come out again for the next one,
//! on the same connection or another (a counting allocator shows it).

// The counting global allocator of `support` is the one way to see what a call allocates.
#![allow(unsafe_code)]

mod support;

use sockeye_engine::{Driver, Message};
use sockeye_proto::{DeflateConfig, DeflateParams, Instant, Role};
use support::{allocated_by, driver, read, take_wire};

/// A compressor's engine at 15 bits is about 280 KiB, an inflater's about 46 KiB.
const DEFLATE_ENGINE: usize = 250 * 1024;
const INFLATE_ENGINE: usize = 40 * 1024;

fn compressing(role: Role) -> Driver {
    let params = DeflateParams {
        server_no_context_takeover: true,
        client_no_context_takeover: true,
        server_max_window_bits: 15,
        client_max_window_bits: 15,
    };
    let mut driver = driver(role);
    driver.enable_compression(params, DeflateConfig::default());
    driver
}

fn record(i: usize) -> String {
    format!("{{\"id\":{i},\"symbol\":\"ACME\",\"price\":101.5,\"side\":\"buy\"}}\n").repeat(60)
}

#[test]
fn engines_are_reused_from_message_to_message_and_across_connections() {
    let mut servers: Vec<Driver> = (0..10).map(|_| compressing(Role::Server)).collect();
    let mut client = compressing(Role::Client);
    // The first message on this thread builds the engines; from then on they travel.
    servers[0]
        .send(Message::Text(record(0)), Instant::ZERO)
        .unwrap();
    let wire = take_wire(&mut servers[0]);
    assert_eq!(read(&mut client, &wire), [Message::Text(record(0))]);

    let messages = 40;
    let mut compressing_allocated = 0;
    for i in 0..messages {
        let server = &mut servers[i % 10];
        let (wire, allocated) = allocated_by(|| {
            server
                .send(Message::Text(record(i)), Instant::ZERO)
                .unwrap();
            take_wire(server)
        });
        compressing_allocated += allocated;
        assert!(wire.len() * 4 < record(i).len(), "compressed");
        // Inflating: the client's inflater takes the same engine back every time.
        let (received, allocated) = allocated_by(|| read(&mut client, &wire));
        assert!(
            received == [Message::Text(record(i))],
            "message {i} differs"
        );
        assert!(
            allocated < INFLATE_ENGINE,
            "{allocated} bytes to inflate message {i}"
        );
    }
    // Rebuilt per message, the compressors alone would be 40 x 280 KiB.
    assert!(
        compressing_allocated < DEFLATE_ENGINE,
        "{compressing_allocated} bytes to compress {messages} messages on 10 connections"
    );
}
