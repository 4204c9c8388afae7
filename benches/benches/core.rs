//! Criterion micro-benchmarks of the sans-IO core: frame headers, UTF-8 validation, the
//! upgrade handshake, an in-memory client/server round trip, and the driver receiving
//! a 16 MiB message. Masking against
//! `memcpy` is `cargo bench -p sockeye-proto --bench mask`.
//!
//! `cargo bench -p sockeye-benches --bench core [-- FILTER]`

// criterion_group! generates undocumented public items.
#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sockeye_proto::connection::{DataKind, Event};
use sockeye_proto::frame::{Header, OpCode};
use sockeye_proto::handshake::{parse_request, Accept, ClientHandshake, Url, EMPTY_HEADER};
use sockeye_proto::{utf8, Config, Connection, Instant, Role, Status, MIN_TRANSMIT_BUFFER};

fn frame_header(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_header");
    let header = |opcode, mask, payload_len| Header {
        fin: true,
        rsv: 0,
        opcode,
        mask,
        payload_len,
    };
    let headers = [
        ("small_unmasked", header(OpCode::Text, None, 16)),
        (
            "medium_masked",
            header(OpCode::Binary, Some([1, 2, 3, 4]), 1024),
        ),
        (
            "large_masked",
            header(OpCode::Binary, Some([1, 2, 3, 4]), 1 << 20),
        ),
    ];
    for (name, header) in headers {
        let mut wire = [0u8; 14];
        let len = header.encode(&mut wire).expect("14 bytes hold any header");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(BenchmarkId::new("decode", name), |b| {
            b.iter(|| Header::decode(black_box(&wire[..len])))
        });
        group.bench_function(BenchmarkId::new("encode", name), |b| {
            let mut out = [0u8; 14];
            b.iter(|| black_box(header).encode(&mut out))
        });
    }
    group.finish();
}

fn utf8_validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("utf8");
    let ascii: String = "The quick brown fox jumps over the lazy dog. "
        .chars()
        .cycle()
        .take(64 * 1024)
        .collect();
    let mixed: String = "Grüße, 世界! Καλημέρα 🦀 "
        .chars()
        .cycle()
        .take(64 * 1024 / 3)
        .collect();
    for (name, text) in [
        ("ascii", &ascii[..4096]),
        ("ascii", &ascii[..]),
        ("mixed", &mixed[..]),
    ] {
        let bytes = text.as_bytes();
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        let id = format!("{name}/{}", bytes.len());
        group.bench_function(BenchmarkId::new("validate_complete", &id), |b| {
            b.iter(|| utf8::validate_complete(black_box(bytes)).map(str::len))
        });
        group.bench_function(BenchmarkId::new("std_from_utf8", &id), |b| {
            b.iter(|| core::str::from_utf8(black_box(bytes)).map(str::len))
        });
    }
    group.finish();
}

/// A request as a browser sends it.
const BROWSER_REQUEST: &[u8] = b"GET /chat?room=rust HTTP/1.1\r\n\
Host: example.com:9001\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("handshake");
    group.throughput(Throughput::Bytes(BROWSER_REQUEST.len() as u64));
    group.bench_function("parse_request_and_accept", |b| {
        let mut out = [0u8; 512];
        b.iter(|| {
            let mut headers = [EMPTY_HEADER; 32];
            match parse_request(black_box(BROWSER_REQUEST), &mut headers) {
                Ok(Status::Complete(upgrade)) => upgrade.accept(&Accept::new(), &mut out).ok(),
                _ => None,
            }
        })
    });

    let url = Url::parse("ws://example.com:9001/chat").expect("a valid URL");
    let request = url.request();
    let client = ClientHandshake::new(*b"the sample nonce");
    let mut wire = [0u8; 512];
    let n = client
        .write_request(&request, &mut wire)
        .expect("the request fits");
    let mut headers = [EMPTY_HEADER; 32];
    let response = match parse_request(&wire[..n], &mut headers) {
        Ok(Status::Complete(upgrade)) => {
            let mut out = [0u8; 512];
            let m = upgrade
                .accept(&Accept::new(), &mut out)
                .expect("the 101 fits");
            out[..m].to_vec()
        }
        other => panic!("the server refused its own client: {other:?}"),
    };
    group.throughput(Throughput::Bytes(response.len() as u64));
    group.bench_function("client_parse_response", |b| {
        b.iter(|| {
            let mut headers = [EMPTY_HEADER; 16];
            client
                .parse_response(&request, black_box(&response), &mut headers)
                .is_ok()
        })
    });
    group.bench_function("client_write_request", |b| {
        let mut out = [0u8; 512];
        b.iter(|| client.write_request(black_box(&request), &mut out))
    });
    group.finish();
}

/// One message from a client to a server and back, both cores in memory: masking,
/// header encode/decode, unmasking in place, the echo, and the client's decode.
struct Pair {
    client: Connection,
    server: Connection,
    wire: Vec<u8>,
    payload: Vec<u8>,
}

impl Pair {
    fn new(size: usize) -> Pair {
        let now = Instant::ZERO;
        Pair {
            client: Connection::new(Role::Client, Config::default(), [7; 32], now),
            server: Connection::server(Config::default(), now),
            wire: Vec::with_capacity(size + 14 + MIN_TRANSMIT_BUFFER),
            payload: vec![0x61; size],
        }
    }

    /// `from` sends the payload; `to` decodes it. Returns the bytes received.
    fn hop(
        from: &mut Connection,
        to: &mut Connection,
        wire: &mut Vec<u8>,
        payload: &mut [u8],
    ) -> usize {
        let head = from
            .send(DataKind::Binary, true, payload)
            .expect("the connection is open");
        wire.clear();
        wire.extend_from_slice(&head);
        wire.extend_from_slice(payload);
        let mut received = 0;
        let mut at = 0;
        while at < wire.len() {
            let read = to
                .handle_input(&mut wire[at..], Instant::ZERO)
                .expect("valid frames");
            at += read.consumed;
            if let Some(Event::Binary { bytes, .. }) = read.event {
                received += bytes.len();
            }
            if read.consumed == 0 {
                break;
            }
        }
        received
    }

    fn round_trip(&mut self) -> usize {
        let there = Self::hop(
            &mut self.client,
            &mut self.server,
            &mut self.wire,
            &mut self.payload,
        );
        // The client masked its copy in place; the echo carries the same bytes back.
        let back = Self::hop(
            &mut self.server,
            &mut self.client,
            &mut self.wire,
            &mut self.payload,
        );
        there + back
    }
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    for size in [16usize, 1024, 64 * 1024] {
        group.throughput(Throughput::Bytes(size as u64));
        let mut pair = Pair::new(size);
        assert_eq!(pair.round_trip(), 2 * size);
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| pair.round_trip())
        });
    }
    group.finish();
}

/// A server driver receiving one 16 MiB message from an in-memory socket that hands
/// out 256 KiB per read: `echoed` sends the message back (its buffer then serves the
/// next message), `kept` hands it to the application for good (the next message needs
/// a new buffer).
fn large_message(c: &mut Criterion) {
    use sockeye_engine::{Driver, DriverConfig};

    const SIZE: usize = 16 << 20;
    const READ: usize = 256 << 10;
    let mut payload = vec![0x61; SIZE];
    let mut client = Connection::new(Role::Client, Config::default(), [7; 32], Instant::ZERO);
    let head = client
        .send(DataKind::Binary, true, &mut payload)
        .expect("the connection is open");
    let wire = [&head[..], &payload].concat();
    let receive = |driver: &mut Driver| sockeye_tests::next_message(driver, &wire, &mut 0, READ);
    let new_driver = || {
        Driver::new(
            Connection::server(Config::default(), Instant::ZERO),
            DriverConfig::default(),
        )
    };
    let mut group = c.benchmark_group("large_message");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(20);
    let mut driver = new_driver();
    group.bench_function("echoed", |b| {
        b.iter(|| {
            let message = receive(&mut driver);
            driver.send(message, Instant::ZERO).expect("open");
            sockeye_tests::write_all_queued(&mut driver);
        })
    });
    let mut driver = new_driver();
    group.bench_function("kept", |b| b.iter_with_large_drop(|| receive(&mut driver)));
    group.finish();
}

criterion_group!(
    benches,
    frame_header,
    utf8_validation,
    handshake,
    round_trip,
    large_message
);
criterion_main!(benches);
