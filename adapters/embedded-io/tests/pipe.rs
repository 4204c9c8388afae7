//! The adapter over in-memory pipes (tokio's duplex streams seen through
//! `embedded-io-adapters`), with tokio's paused clock as the caller's clock: the
//! handshakes, echoes, ping/pong, keepalive and close timeouts, close handshakes with code
//! and reason, a bad request answered 400, refusals and protocol errors.

use std::time::Duration;

use embedded_io_adapters::tokio_1::FromTokio;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sockeye_embedded_io::{
    accept, accept_with, connect, Boundary, Buffers, ClientRequest, Clock, CloseCode, Closed,
    Config, DataKind, Error, Event, Instant, KeepAlive, Options, ProtocolError, Rejection,
    WebSocket,
};
use sockeye_proto::{RequestError, Timeout};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

type Io = FromTokio<DuplexStream>;

/// tokio's clock (paused in these tests, so timeouts take no real time).
#[derive(Clone, Copy)]
struct TokioClock(tokio::time::Instant);

impl TokioClock {
    fn new() -> Self {
        TokioClock(tokio::time::Instant::now())
    }
}

impl Clock for TokioClock {
    fn now(&mut self) -> Instant {
        Instant::from_nanos(self.0.elapsed().as_nanos() as u64)
    }

    async fn sleep_until(&mut self, deadline: Instant) {
        tokio::time::sleep_until(self.0 + Duration::from_nanos(deadline.as_nanos())).await
    }
}

fn pipe() -> (Io, Io) {
    let (a, b) = tokio::io::duplex(4096);
    (FromTokio::new(a), FromTokio::new(b))
}

/// The client's RNG (a device would use its TRNG).
fn rng() -> ChaCha8Rng {
    ChaCha8Rng::from_seed([42; 32])
}

fn request() -> ClientRequest<'static> {
    ClientRequest::new("device.local", "/ws")
}

/// Runs a client and a server over a pipe with the given buffers and options.
async fn pair<'b>(
    client_buffers: Buffers<'b>,
    server_buffers: Buffers<'b>,
    client_options: &Options<'b>,
    server_options: &Options<'b>,
    request: &ClientRequest<'b>,
) -> (WebSocket<'b, Io, TokioClock>, WebSocket<'b, Io, TokioClock>) {
    let (a, b) = pipe();
    let clock = TokioClock::new();
    let mut rng = rng();
    let (client, server) = tokio::join!(
        connect(a, clock, client_buffers, request, &mut rng, client_options),
        accept(b, clock, server_buffers, server_options),
    );
    (client.unwrap(), server.unwrap())
}

/// The next event, owned for comparison.
#[derive(Debug, PartialEq, Eq)]
enum Owned {
    Text(String, Boundary),
    Binary(Vec<u8>, Boundary),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<CloseCode>, String),
    Closed(Closed),
}

async fn next<C: Clock>(ws: &mut WebSocket<'_, Io, C>) -> Owned {
    match ws.next().await.unwrap() {
        Event::Text { text, end } => Owned::Text(text.to_owned(), end),
        Event::Binary { bytes, end } | Event::Compressed { bytes, end, .. } => {
            Owned::Binary(bytes.to_vec(), end)
        }
        Event::Ping(p) => Owned::Ping(p.to_vec()),
        Event::Pong(p) => Owned::Pong(p.to_vec()),
        Event::Close(frame) => Owned::Close(frame.code, frame.reason.to_owned()),
        Event::Closed(closed) => Owned::Closed(closed),
    }
}

/// A whole message of either kind, gathered from its chunks.
async fn message<C: Clock>(ws: &mut WebSocket<'_, Io, C>) -> (DataKind, Vec<u8>) {
    let mut gathered = Vec::new();
    loop {
        let (kind, end) = match ws.next().await.unwrap() {
            Event::Text { text, end } => {
                gathered.extend_from_slice(text.as_bytes());
                (DataKind::Text, end)
            }
            Event::Binary { bytes, end } => {
                gathered.extend_from_slice(bytes);
                (DataKind::Binary, end)
            }
            Event::Ping(_) | Event::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        };
        if end.is_message_end() {
            return (kind, gathered);
        }
    }
}

/// The server side of an echo: returns how the connection ended and the client's Close
/// (code and reason) if one came.
async fn echo_server(
    mut ws: WebSocket<'_, Io, TokioClock>,
) -> (Closed, Option<(CloseCode, String)>) {
    let mut message = Vec::new();
    let mut peer_close = None;
    loop {
        let reply = match ws.next().await.unwrap() {
            Event::Text { text, end } => {
                message.extend_from_slice(text.as_bytes());
                end.is_message_end().then_some(DataKind::Text)
            }
            Event::Binary { bytes, end } => {
                message.extend_from_slice(bytes);
                end.is_message_end().then_some(DataKind::Binary)
            }
            Event::Close(frame) => {
                peer_close = frame.code.map(|code| (code, frame.reason.to_owned()));
                None
            }
            Event::Closed(closed) => {
                assert!(ws.wants_shutdown() || !closed.is_clean());
                // Shut the transport down: the client sees EOF.
                drop(ws.into_inner());
                return (closed, peer_close);
            }
            _ => None,
        };
        if let Some(kind) = reply {
            ws.send(kind, &message).await.unwrap();
            message.clear();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_supported_subprotocol_is_agreed() {
    let (mut ci, mut co, mut si, mut so) = ([0u8; 512], [0u8; 256], [0u8; 512], [0u8; 256]);
    let protocols = ["chat"];
    let req = request().with_protocols(&["superchat", "chat"]);
    let server_options = Options::DEFAULT.with_protocols(&protocols);
    let (client, server) = pair(
        Buffers::new(&mut ci, &mut co),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
        &server_options,
        &req,
    )
    .await;
    assert_eq!(client.protocol(), Some("chat"));
    assert_eq!(server.protocol(), Some("chat"));
}

#[tokio::test(start_paused = true)]
async fn echo_text_binary_ping_then_clean_close() {
    let (mut ci, mut co, mut si, mut so) = ([0u8; 512], [0u8; 256], [0u8; 512], [0u8; 256]);
    let req = request();
    let (mut client, server) = pair(
        Buffers::new(&mut ci, &mut co),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
        &Options::DEFAULT,
        &req,
    )
    .await;
    let client_side = async {
        client.send_text("hello, sockeye").await.unwrap();
        assert_eq!(
            next(&mut client).await,
            Owned::Text("hello, sockeye".into(), Boundary::MessageEnd)
        );
        client.send_binary(&[0, 1, 2, 254, 255]).await.unwrap();
        assert_eq!(
            next(&mut client).await,
            Owned::Binary(vec![0, 1, 2, 254, 255], Boundary::MessageEnd)
        );
        client.ping(b"are you there").await.unwrap();
        assert_eq!(
            next(&mut client).await,
            Owned::Pong(b"are you there".to_vec())
        );
        client.close(CloseCode::NORMAL, "done here").await.unwrap();
        // The server's reply echoes the code.
        assert_eq!(
            next(&mut client).await,
            Owned::Close(Some(CloseCode::NORMAL), String::new())
        );
        let Owned::Closed(closed) = next(&mut client).await else {
            panic!("the end")
        };
        assert!(closed.is_clean(), "{closed:?}");
        assert!(matches!(client.next().await, Err(Error::Closed)));
    };
    let (_, (server_closed, peer_close)) = tokio::join!(client_side, echo_server(server));
    assert!(server_closed.is_clean(), "{server_closed:?}");
    assert_eq!(peer_close, Some((CloseCode::NORMAL, "done here".into())));
}

#[tokio::test(start_paused = true)]
async fn server_closes_first_and_the_client_sees_code_and_reason() {
    let (mut ci, mut co, mut si, mut so) = ([0u8; 512], [0u8; 256], [0u8; 512], [0u8; 256]);
    let req = request();
    let (mut client, mut server) = pair(
        Buffers::new(&mut ci, &mut co),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
        &Options::DEFAULT,
        &req,
    )
    .await;
    let server_side = async {
        server
            .close(CloseCode::GOING_AWAY, "rebooting")
            .await
            .unwrap();
        // The client's reply echoes the code.
        assert_eq!(
            next(&mut server).await,
            Owned::Close(Some(CloseCode::GOING_AWAY), String::new())
        );
        let Owned::Closed(closed) = next(&mut server).await else {
            panic!("the end")
        };
        assert!(closed.is_clean());
        assert!(server.wants_shutdown());
        drop(server.into_inner());
    };
    let client_side = async {
        assert_eq!(
            next(&mut client).await,
            Owned::Close(Some(CloseCode::GOING_AWAY), "rebooting".into())
        );
        let peer = client.connection().peer_close().unwrap();
        assert_eq!(peer.reason, "rebooting");
        let Owned::Closed(closed) = next(&mut client).await else {
            panic!("the end")
        };
        assert!(closed.is_clean(), "{closed:?}");
    };
    tokio::join!(server_side, client_side);
}

#[tokio::test(start_paused = true)]
async fn large_messages_fragment_out_and_stream_in_through_small_buffers() {
    // Output buffers of 160 bytes: a 5000-byte message goes out as 34 fragments; input
    // buffers of 200 bytes: it comes in as chunks.
    let (mut ci, mut co, mut si, mut so) = ([0u8; 300], [0u8; 160], [0u8; 200], [0u8; 160]);
    let req = request();
    let (mut client, server) = pair(
        Buffers::new(&mut ci, &mut co),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
        &Options::DEFAULT,
        &req,
    )
    .await;
    let text: String = "héllo wörld ✓ ".repeat(300);
    let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let client_side = async {
        client.send_text(&text).await.unwrap();
        assert_eq!(
            message(&mut client).await,
            (DataKind::Text, text.clone().into_bytes())
        );
        client.send_binary(&bytes).await.unwrap();
        assert_eq!(
            message(&mut client).await,
            (DataKind::Binary, bytes.clone())
        );
        client.send_binary(&[]).await.unwrap();
        assert_eq!(message(&mut client).await, (DataKind::Binary, vec![]));
        client.close(CloseCode::NORMAL, "").await.unwrap();
        while !matches!(next(&mut client).await, Owned::Closed(_)) {}
    };
    let (_, (closed, _)) = tokio::join!(client_side, echo_server(server));
    assert!(closed.is_clean());
}

#[tokio::test(start_paused = true)]
async fn send_chunk_sends_fragments_without_a_copy() {
    let (mut ci, mut co, mut si, mut so) = ([0u8; 512], [0u8; 256], [0u8; 512], [0u8; 256]);
    let req = request();
    let (mut client, server) = pair(
        Buffers::new(&mut ci, &mut co),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
        &Options::DEFAULT,
        &req,
    )
    .await;
    let client_side = async {
        let (mut a, mut b) = (*b"split ", *b"message");
        client
            .send_chunk(DataKind::Text, false, &mut a)
            .await
            .unwrap();
        client
            .send_chunk(DataKind::Text, true, &mut b)
            .await
            .unwrap();
        assert_eq!(
            message(&mut client).await,
            (DataKind::Text, b"split message".to_vec())
        );
        client.close(CloseCode::NORMAL, "bye").await.unwrap();
        while !matches!(next(&mut client).await, Owned::Closed(_)) {}
    };
    tokio::join!(client_side, echo_server(server));
}

#[tokio::test(start_paused = true)]
async fn keepalive_pings_and_times_out_a_silent_peer() {
    let mut rng = rng();
    let (a, mut raw) = tokio::io::duplex(4096);
    let mut raw_head = [0u8; 1024];
    let config = Config::DEFAULT.with_keepalive(Some(KeepAlive::new(
        Duration::from_secs(5),
        Duration::from_secs(3),
    )));
    let options = Options::DEFAULT.with_config(config);
    let (mut ci, mut co) = ([0u8; 512], [0u8; 256]);
    let req = request();
    let started = tokio::time::Instant::now();
    let client = async {
        let mut client = connect(
            FromTokio::new(a),
            TokioClock::new(),
            Buffers::new(&mut ci, &mut co),
            &req,
            &mut rng,
            &options,
        )
        .await
        .unwrap();
        let Owned::Closed(closed) = next(&mut client).await else {
            panic!("the end")
        };
        closed
    };
    // A peer that accepts by hand, then never says anything again.
    let peer = async {
        let n = raw.read(&mut raw_head).await.unwrap();
        let head = std::str::from_utf8(&raw_head[..n]).unwrap();
        let key = head
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let accept = sockeye_proto::AcceptKey::derive(key.as_bytes());
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        raw.write_all(reply.as_bytes()).await.unwrap();
        // The keepalive Ping arrives after 5 s: a masked Ping (0x89, mask bit set).
        let mut frame = [0u8; 2];
        raw.read_exact(&mut frame).await.unwrap();
        assert_eq!(frame[0], 0x89);
        assert_eq!(started.elapsed().as_secs(), 5);
        raw
    };
    let (closed, _raw) = tokio::join!(client, peer);
    assert_eq!(closed, Closed::TimedOut(Timeout::KeepAlive));
    assert_eq!(started.elapsed().as_secs(), 8);
}

#[tokio::test(start_paused = true)]
async fn close_timeout_ends_a_close_handshake_the_peer_ignores() {
    let mut rng = rng();
    let (a, b) = pipe();
    let (mut ci, mut co, mut si, mut so) = ([0u8; 512], [0u8; 256], [0u8; 512], [0u8; 256]);
    let config = Config::DEFAULT.with_close_timeout(Some(Duration::from_secs(2)));
    let options = Options::DEFAULT.with_config(config);
    let req = request();
    let clock = TokioClock::new();
    let (client, server) = tokio::join!(
        connect(
            a,
            clock,
            Buffers::new(&mut ci, &mut co),
            &req,
            &mut rng,
            &options
        ),
        accept(b, clock, Buffers::new(&mut si, &mut so), &options),
    );
    let (mut client, server) = (client.unwrap(), server.unwrap());
    let started = tokio::time::Instant::now();
    client.close(CloseCode::NORMAL, "bye").await.unwrap();
    // The server never reads (it is kept alive, silent).
    let Owned::Closed(closed) = next(&mut client).await else {
        panic!("the end")
    };
    assert_eq!(closed, Closed::TimedOut(Timeout::Close));
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    drop(server);
}

#[tokio::test(start_paused = true)]
async fn a_bad_request_is_answered_400() {
    let (a, mut raw) = tokio::io::duplex(4096);
    let (mut si, mut so) = ([0u8; 512], [0u8; 256]);
    let server = accept(
        FromTokio::new(a),
        TokioClock::new(),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
    );
    let peer = async {
        raw.write_all(b"GET / HTTP/1.1\r\nHost: device.local\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        let mut chunk = [0u8; 256];
        loop {
            let n = raw.read(&mut chunk).await.unwrap();
            reply.extend_from_slice(&chunk[..n]);
            if n == 0 || reply.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        String::from_utf8(reply).unwrap()
    };
    let (server, reply) = tokio::join!(server, peer);
    assert!(matches!(
        server,
        Err(Error::Request(RequestError::NotUpgrade))
    ));
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
}

#[tokio::test(start_paused = true)]
async fn a_head_larger_than_the_input_buffer_is_answered_431() {
    let (a, mut raw) = tokio::io::duplex(4096);
    let (mut si, mut so) = ([0u8; 200], [0u8; 256]);
    let server = accept(
        FromTokio::new(a),
        TokioClock::new(),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
    );
    let peer = async {
        let long = format!("GET / HTTP/1.1\r\nHost: {}\r\n", "h".repeat(300));
        raw.write_all(long.as_bytes()).await.unwrap();
        let mut reply = [0u8; 256];
        let n = raw.read(&mut reply).await.unwrap();
        String::from_utf8(reply[..n].to_vec()).unwrap()
    };
    let (server, reply) = tokio::join!(server, peer);
    assert!(matches!(
        server,
        Err(Error::Request(RequestError::HeadTooLarge))
    ));
    assert!(reply.starts_with("HTTP/1.1 431 "), "{reply}");
}

#[tokio::test(start_paused = true)]
async fn the_application_refuses_and_the_client_sees_the_status() {
    let mut rng = rng();
    let (a, b) = pipe();
    let (mut ci, mut co, mut si, mut so) = ([0u8; 512], [0u8; 256], [0u8; 512], [0u8; 256]);
    let clock = TokioClock::new();
    let req = ClientRequest::new("device.local", "/nowhere");
    let (client, server) = tokio::join!(
        connect(
            a,
            clock,
            Buffers::new(&mut ci, &mut co),
            &req,
            &mut rng,
            &Options::DEFAULT
        ),
        accept_with(
            b,
            clock,
            Buffers::new(&mut si, &mut so),
            &Options::DEFAULT,
            |request| match request.path() {
                "/ws" => Ok(()),
                _ => Err(Rejection::custom(404, "Not Found", &[])),
            },
        ),
    );
    assert!(matches!(client, Err(Error::Rejected(404))));
    assert!(matches!(server, Err(Error::Refused(404))));
}

#[tokio::test(start_paused = true)]
async fn the_handshake_times_out() {
    let (a, _raw) = tokio::io::duplex(4096);
    let (mut si, mut so) = ([0u8; 512], [0u8; 256]);
    let started = tokio::time::Instant::now();
    let server = accept(
        FromTokio::new(a),
        TokioClock::new(),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT.with_handshake_timeout(Some(Duration::from_secs(3))),
    )
    .await;
    assert!(matches!(server, Err(Error::HandshakeTimeout)));
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

/// The adapter has no codec: a request asking for permessage-deflate goes out without
/// the offer, and a server that answers with the extension anyway is refused.
#[tokio::test(start_paused = true)]
async fn the_client_never_offers_deflate() {
    let (a, mut raw) = tokio::io::duplex(4096);
    let (mut ci, mut co) = ([0u8; 512], [0u8; 256]);
    let req = request().with_deflate(Some(sockeye_proto::DeflateConfig::DEFAULT));
    let mut rng = rng();
    let client = connect(
        FromTokio::new(a),
        TokioClock::new(),
        Buffers::new(&mut ci, &mut co),
        &req,
        &mut rng,
        &Options::DEFAULT,
    );
    let peer = async {
        let mut head = Vec::new();
        let mut chunk = [0u8; 256];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = raw.read(&mut chunk).await.unwrap();
            head.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let accept = sockeye_proto::AcceptKey::derive(key.as_bytes());
        let reply = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
        );
        raw.write_all(reply.as_bytes()).await.unwrap();
        head
    };
    let (client, head) = tokio::join!(client, peer);
    assert!(!head.contains("Sec-WebSocket-Extensions"), "{head}");
    assert!(matches!(
        client,
        Err(Error::Response(
            sockeye_proto::ResponseError::ExtensionNotRequested
        ))
    ));
}

#[tokio::test(start_paused = true)]
async fn buffers_below_the_minimum_are_refused() {
    let (a, _raw) = tokio::io::duplex(4096);
    let (mut si, mut so) = ([0u8; 100], [0u8; 256]);
    let server = accept(
        FromTokio::new(a),
        TokioClock::new(),
        Buffers::new(&mut si, &mut so),
        &Options::DEFAULT,
    )
    .await;
    assert!(matches!(server, Err(Error::BufferTooSmall(Some(_)))));
}

#[tokio::test(start_paused = true)]
async fn an_unmasked_client_frame_fails_the_server_with_1002() {
    let (a, mut raw) = tokio::io::duplex(4096);
    let (mut si, mut so) = ([0u8; 512], [0u8; 256]);
    let server = async {
        let mut ws = accept(
            FromTokio::new(a),
            TokioClock::new(),
            Buffers::new(&mut si, &mut so),
            &Options::DEFAULT,
        )
        .await
        .unwrap();
        let error = ws.next().await.unwrap_err();
        assert!(ws.wants_shutdown());
        error
    };
    let peer = async {
        raw.write_all(
            b"GET /ws HTTP/1.1\r\nHost: d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\
              \x81\x02hi",
        )
        .await
        .unwrap();
        let mut all = Vec::new();
        raw.read_to_end(&mut all).await.unwrap();
        all
    };
    let (error, all) = tokio::join!(server, peer);
    assert!(
        matches!(error, Error::Protocol(ProtocolError::UnmaskedFrame)),
        "{error:?}"
    );
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    // The Close frame after the 101: opcode 8, unmasked, code 1002, then a reason.
    assert_eq!(all[head_end], 0x88);
    assert_eq!(&all[head_end + 2..head_end + 4], &[0x03, 0xea]);
}
