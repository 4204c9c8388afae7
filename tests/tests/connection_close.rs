//! The close handshake (RFC 6455 §5.5.1, §7): from each side, simultaneous, a peer that
//! never answers, the client waiting for the server's FIN, end of stream mid-frame, and
//! nothing processed or sent after a Close.

use core::time::Duration;

use sockeye_proto::frame::OpCode;
use sockeye_proto::{
    CleanClose, CloseCode, Closed, Config, DataKind, Instant, Role, SendError, State, Timeout,
    MIN_INPUT_BUFFER,
};
use sockeye_tests::wire::stream;
use sockeye_tests::{Endpoint, Entry, Frame, Pair, Side};

const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

fn clean(sent: Option<u16>, received: Option<u16>, initiated_locally: bool) -> Closed {
    Closed::Clean(CleanClose {
        sent: sent.map(CloseCode),
        received: received.map(CloseCode),
        initiated_locally,
    })
}

fn opcodes(endpoint: &Endpoint) -> Vec<OpCode> {
    endpoint.sent_frames().iter().map(|f| f.opcode).collect()
}

#[test]
fn close_initiated_by_the_client() {
    let mut pair = Pair::builder().read_buffer(MIN_INPUT_BUFFER).build();
    pair.send(Side::Client, DataKind::Text, b"last words")
        .unwrap();
    pair.close(Side::Client, CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(pair.client.connection().state(), State::CloseSent);
    pair.flush();

    assert_eq!(
        pair.server.transcript().entries(),
        &[
            Entry::text("last words"),
            Entry::close(CloseCode::NORMAL, "bye"),
            Entry::Closed(clean(Some(1000), Some(1000), false)),
        ]
    );
    assert_eq!(
        pair.client.transcript().entries(),
        &[
            Entry::close(CloseCode::NORMAL, ""),
            Entry::Closed(clean(Some(1000), Some(1000), true)),
        ]
    );
    // One Close each way; the server shut TCP down first, the client followed.
    assert_eq!(opcodes(&pair.server), [OpCode::Close]);
    assert_eq!(opcodes(&pair.client), [OpCode::Text, OpCode::Close]);
    assert_eq!(
        pair.server.sent_frames()[0].close_code(),
        Some(CloseCode::NORMAL)
    );
    assert!(pair.server.shutdown_sent() && pair.client.eof_received());
    assert!(pair.client.shutdown_sent());
    assert_eq!(pair.client.connection().state(), State::Closed);
    assert_eq!(pair.server.connection().state(), State::Closed);
    assert_eq!(pair.next_deadline(), None);
    assert_eq!(
        pair.client.connection().peer_close().unwrap().code,
        Some(CloseCode::NORMAL)
    );
}

#[test]
fn close_initiated_by_the_server() {
    let mut pair = Pair::new();
    pair.close(Side::Server, CloseCode(4000), "going").unwrap();
    pair.flush();
    assert_eq!(
        pair.client.transcript().entries(),
        &[
            Entry::close(CloseCode(4000), "going"),
            Entry::Closed(clean(Some(4000), Some(4000), false)),
        ]
    );
    assert_eq!(
        pair.server.transcript().entries(),
        &[
            Entry::close(CloseCode(4000), ""),
            Entry::Closed(clean(Some(4000), Some(4000), true)),
        ]
    );
    assert_eq!(opcodes(&pair.server), [OpCode::Close]);
    assert_eq!(opcodes(&pair.client), [OpCode::Close]);
    assert!(pair.server.shutdown_sent() && pair.client.shutdown_sent());
}

#[test]
fn empty_close_gets_an_empty_reply() {
    let mut pair = Pair::new();
    let bytes = Frame::close_raw(b"").from_role(Role::Client).encode();
    let now = pair.now();
    pair.server.receive(&bytes, now);
    assert_eq!(
        pair.server.transcript().entries(),
        &[
            Entry::Close {
                code: None,
                reason: String::new()
            },
            Entry::Closed(clean(None, None, false)),
        ]
    );
    let reply = pair.server.sent_frames();
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0].opcode, OpCode::Close);
    assert!(reply[0].payload.is_empty());
    assert!(pair.server.shutdown_sent());
}

#[test]
fn simultaneous_close() {
    for first in [Side::Client, Side::Server] {
        let mut pair = Pair::new();
        pair.close(first, CloseCode::NORMAL, "a").unwrap();
        pair.close(first.peer(), CloseCode::GOING_AWAY, "b")
            .unwrap();
        pair.flush();
        let code = |side: Side| match side {
            Side::Client if first == Side::Client => 1000,
            Side::Server if first == Side::Server => 1000,
            _ => 1001,
        };
        for side in [Side::Client, Side::Server] {
            let endpoint = pair.endpoint(side);
            let (mine, theirs) = (code(side), code(side.peer()));
            let reason = if theirs == 1000 { "a" } else { "b" };
            assert_eq!(
                endpoint.transcript().entries(),
                &[
                    Entry::close(CloseCode(theirs), reason),
                    Entry::Closed(clean(Some(mine), Some(theirs), true)),
                ],
                "{side:?}"
            );
            // Each sent its own Close and no reply.
            assert_eq!(opcodes(endpoint), [OpCode::Close], "{side:?}");
            assert!(endpoint.shutdown_sent());
        }
    }
}

#[test]
fn a_peer_that_never_answers_times_out_exactly_at_the_deadline() {
    for side in [Side::Client, Side::Server] {
        let mut pair = Pair::builder().start(Instant::from_millis(1234)).build();
        pair.pause(side.peer());
        let start = pair.now();
        pair.close(side, CloseCode::NORMAL, "").unwrap();
        pair.flush();
        let deadline = start + CLOSE_TIMEOUT;
        assert_eq!(
            pair.endpoint(side).connection().poll_timeout(),
            Some(deadline)
        );
        pair.advance_to(Instant::from_nanos(deadline.as_nanos() - 1));
        assert_eq!(pair.endpoint(side).outcome(), None, "{side:?} ended early");
        pair.advance_to(deadline);
        assert_eq!(
            pair.endpoint(side).transcript().entries(),
            &[Entry::Closed(Closed::TimedOut(Timeout::Close))]
        );
        assert!(pair.endpoint(side).shutdown_sent());
        assert_eq!(pair.endpoint(side).connection().poll_timeout(), None);
        // Time going on changes nothing.
        pair.advance(Duration::from_secs(3600));
        assert_eq!(pair.endpoint(side).transcript().len(), 1);
    }
}

#[test]
fn a_custom_close_timeout_and_none() {
    let config = Config::default().with_close_timeout(Some(Duration::from_millis(250)));
    let mut pair = Pair::builder().config(config).build();
    pair.pause(Side::Server);
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    assert_eq!(pair.next_deadline(), Some(Instant::from_millis(250)));
    assert!(pair.run_until_done(Duration::from_secs(1)) || pair.client.outcome().is_some());
    assert_eq!(
        pair.client.outcome(),
        Some(Closed::TimedOut(Timeout::Close))
    );

    let config = Config::default()
        .with_keepalive(None)
        .with_close_timeout(None);
    let mut pair = Pair::builder().config(config).build();
    pair.pause(Side::Server);
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    assert_eq!(pair.next_deadline(), None);
    pair.advance(Duration::from_secs(1 << 30));
    assert_eq!(pair.client.outcome(), None);
}

#[test]
fn the_client_waits_for_the_servers_fin() {
    // Client-initiated: the server answers and closes TCP, but the FIN is late.
    let mut pair = Pair::new();
    pair.hold_eof(Side::Client, true);
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    pair.flush();
    assert!(pair.server.outcome().unwrap().is_clean());
    assert_eq!(
        pair.client.transcript().entries(),
        &[Entry::close(CloseCode::NORMAL, "")]
    );
    assert_eq!(pair.client.connection().state(), State::CloseReceived);
    assert!(
        !pair.client.shutdown_sent(),
        "the client must not close TCP first"
    );
    pair.advance(Duration::from_secs(10));
    assert_eq!(pair.client.outcome(), None);
    pair.hold_eof(Side::Client, false);
    pair.flush();
    assert_eq!(
        pair.client.outcome(),
        Some(clean(Some(1000), Some(1000), true))
    );
    assert!(pair.client.shutdown_sent());
}

#[test]
fn the_client_ends_cleanly_when_the_fin_never_comes() {
    for initiator in [Side::Client, Side::Server] {
        let mut pair = Pair::new();
        pair.hold_eof(Side::Client, true);
        pair.advance(Duration::from_secs(5));
        pair.close(initiator, CloseCode::NORMAL, "x").unwrap();
        pair.flush();
        assert_eq!(pair.client.connection().state(), State::CloseReceived);
        // The timer started when the client sent or answered the Close.
        let deadline = Instant::from_millis(5_000) + CLOSE_TIMEOUT;
        assert_eq!(pair.client.connection().poll_timeout(), Some(deadline));
        pair.advance_to(Instant::from_nanos(deadline.as_nanos() - 1));
        assert_eq!(pair.client.outcome(), None);
        pair.advance_to(deadline);
        let local = initiator == Side::Client;
        assert_eq!(
            pair.client.outcome(),
            Some(clean(Some(1000), Some(1000), local))
        );
        // Both Close frames went through: a clean end, and the client now closes TCP.
        assert!(pair.client.shutdown_sent());
    }
}

#[test]
fn end_of_stream_mid_frame_is_abnormal() {
    let frames = stream(&[
        Frame::text("héllo").from_role(Role::Client),
        Frame::binary(&[9; 300]).from_role(Role::Client),
        Frame::ping(b"p").from_role(Role::Client),
        Frame::text_bytes("€uro".as_bytes())
            .fin(false)
            .from_role(Role::Client),
        Frame::continuation(b"!").from_role(Role::Client),
    ]);
    for cut in 0..=frames.len() {
        let mut server = Endpoint::new(Role::Server, Config::default(), Instant::ZERO)
            .read_buffer(MIN_INPUT_BUFFER);
        server.receive(&frames[..cut], Instant::ZERO);
        server.eof(Instant::ZERO);
        assert_eq!(server.outcome(), Some(Closed::Abnormal), "cut {cut}");
        assert!(server.shutdown_sent());
        // No Close goes out: the transport is gone.
        assert!(
            server
                .sent_frames()
                .iter()
                .all(|f| f.opcode == OpCode::Pong),
            "cut {cut}"
        );
    }
}

#[test]
fn end_of_stream_after_our_close_is_abnormal() {
    let mut pair = Pair::new();
    pair.pause(Side::Server);
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    pair.cut(Side::Client);
    assert_eq!(pair.client.outcome(), Some(Closed::Abnormal));
    assert_eq!(pair.client.connection().poll_timeout(), None);
}

#[test]
fn nothing_is_processed_after_a_close() {
    for role in [Role::Server, Role::Client] {
        let peer = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let bytes = stream(&[
            Frame::close(1000, "done").from_role(peer),
            Frame::text("after").from_role(peer),
            Frame::ping(b"after").from_role(peer),
            Frame::close(1001, "again").from_role(peer),
            // Not even a protocol error is noticed.
            Frame::binary(b"bad").rsv(7),
        ]);
        let mut endpoint = Endpoint::new(role, Config::default(), Instant::ZERO);
        endpoint.receive(&bytes, Instant::ZERO);
        let entries = endpoint.transcript().entries().to_vec();
        assert_eq!(
            entries[0],
            Entry::close(CloseCode::NORMAL, "done"),
            "{role:?}"
        );
        match role {
            Role::Server => {
                assert_eq!(entries.len(), 2);
                assert_eq!(
                    entries[1],
                    Entry::Closed(clean(Some(1000), Some(1000), false))
                );
            }
            Role::Client => assert_eq!(entries.len(), 1),
        }
        // Only the Close reply went out: no Pong for the late Ping.
        assert_eq!(opcodes(&endpoint), [OpCode::Close], "{role:?}");
        // And more bytes later are swallowed too.
        endpoint.receive(
            &Frame::text("later").from_role(peer).encode(),
            Instant::ZERO,
        );
        assert_eq!(endpoint.transcript().len(), entries.len());
        assert_eq!(endpoint.buffered(), 0);
    }
}

#[test]
fn data_still_flows_to_the_side_that_sent_close() {
    let mut pair = Pair::new();
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    // The server sends before it reads the Close.
    pair.send(Side::Server, DataKind::Text, b"in flight")
        .unwrap();
    pair.ping(Side::Server, b"p").unwrap();
    pair.flush();
    assert_eq!(
        pair.client.transcript().entries(),
        &[
            Entry::text("in flight"),
            Entry::ping(b"p"),
            Entry::close(CloseCode::NORMAL, ""),
            Entry::Closed(clean(Some(1000), Some(1000), true)),
        ]
    );
    // The client had sent its Close: it answers no Ping after it.
    assert_eq!(opcodes(&pair.client), [OpCode::Close]);
}

#[test]
fn a_pending_pong_goes_out_before_the_close_reply() {
    let bytes = stream(&[
        Frame::ping(b"first").from_role(Role::Client),
        Frame::close(1000, "").from_role(Role::Client),
    ]);
    let mut server = Endpoint::new(Role::Server, Config::default(), Instant::ZERO);
    // One read, but the endpoint drains after every event: Pong, then Close.
    server.receive(&bytes, Instant::ZERO);
    assert_eq!(opcodes(&server), [OpCode::Pong, OpCode::Close]);
    // Driven by hand without draining in between, the Pong still goes first.
    let mut conn = sockeye_proto::Connection::server(Config::default(), Instant::ZERO);
    let mut input = bytes.clone();
    let mut at = 0;
    while at < input.len() {
        let read = conn.handle_input(&mut input[at..], Instant::ZERO).unwrap();
        at += read.consumed;
    }
    let mut out = [0u8; 256];
    let mut kinds = Vec::new();
    while let Some(t) = conn.poll_transmit(&mut out) {
        kinds.push(t);
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    assert_eq!(kinds[2], sockeye_proto::Transmit::Shutdown);
}

#[test]
fn sending_after_close_is_an_error() {
    let mut pair = Pair::new();
    pair.send_fragments(Side::Client, DataKind::Text, &[b"a"])
        .unwrap();
    pair.client
        .send_frame(DataKind::Text, false, b"part")
        .unwrap();
    assert_eq!(
        pair.client.send_frame(DataKind::Binary, true, b"x"),
        Err(SendError::MessageInProgress)
    );
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    let now = pair.now();
    let client = pair.client.connection_mut();
    assert_eq!(
        client.send(DataKind::Text, true, &mut []),
        Err(SendError::Closed)
    );
    assert_eq!(client.ping(b"", now), Err(SendError::Closed));
    assert_eq!(
        client.close(CloseCode::NORMAL, "", now),
        Err(SendError::Closed)
    );
    // The peer's side, half-closed: it has not answered yet when asked.
    pair.pause(Side::Client);
    pair.flush();
    let server = pair.server.connection_mut();
    assert_eq!(server.state(), State::Closed);
    assert_eq!(
        server.send(DataKind::Binary, true, &mut [1]),
        Err(SendError::Closed)
    );
    assert_eq!(server.ping(b"", now), Err(SendError::Closed));
    assert_eq!(
        server.close(CloseCode::NORMAL, "", now),
        Err(SendError::Closed)
    );
    pair.resume(Side::Client);
    pair.flush();
    assert!(pair.client.outcome().unwrap().is_clean());
    let client = pair.client.connection_mut();
    assert_eq!(
        client.send(DataKind::Binary, true, &mut []),
        Err(SendError::Closed)
    );
    // A half-closed client (peer's Close received, FIN pending).
    let mut pair = Pair::new();
    pair.hold_eof(Side::Client, true);
    pair.close(Side::Server, CloseCode::NORMAL, "").unwrap();
    pair.flush();
    let client = pair.client.connection_mut();
    assert_eq!(client.state(), State::CloseReceived);
    assert_eq!(
        client.send(DataKind::Text, true, &mut []),
        Err(SendError::Closed)
    );
    assert_eq!(
        client.close(CloseCode::NORMAL, "", now),
        Err(SendError::Closed)
    );
}

#[test]
fn local_close_arguments_are_checked() {
    let mut pair = Pair::new();
    let now = pair.now();
    let conn = pair.client.connection_mut();
    for code in [0, 999, 1004, 1005, 1006, 1015, 2999, 5000] {
        assert_eq!(
            conn.close(CloseCode(code), "", now),
            Err(SendError::InvalidCloseCode(code))
        );
    }
    assert_eq!(
        conn.close(CloseCode::NORMAL, &"x".repeat(124), now),
        Err(SendError::ControlTooLong)
    );
    assert_eq!(conn.ping(&[0; 126], now), Err(SendError::ControlTooLong));
    assert_eq!(conn.state(), State::Open);
    // The longest reason fits.
    let reason = "é".repeat(61) + "x";
    conn.close(CloseCode(4999), &reason, now).unwrap();
    pair.client.drain();
    pair.flush();
    assert_eq!(
        pair.server.transcript().close(),
        Some((Some(CloseCode(4999)), reason.as_str()))
    );
}

#[test]
fn every_terminal_is_reported_once() {
    let mut pair = Pair::new();
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    pair.flush();
    let now = pair.now();
    for endpoint in [&mut pair.client, &mut pair.server] {
        let conn = endpoint.connection_mut();
        assert_eq!(conn.handle_eof(now), None);
        assert_eq!(conn.handle_timeout(now + CLOSE_TIMEOUT), None);
        let mut bytes = Frame::close(1000, "").encode();
        let read = conn.handle_input(&mut bytes, now).unwrap();
        assert_eq!(read.event, None);
        assert_eq!(read.consumed, bytes.len());
        let mut out = [0u8; 256];
        assert_eq!(conn.poll_transmit(&mut out), None);
    }
}
