//! The one async implementation's API, tested once (through the tokio facade, so that
//! tokio's paused clock drives the timers): cancel safety, split halves, timers, the
//! handshake callback and async verdicts, rejections and their bodies, `Stream`/`Sink`,
//! the streaming API, backpressure and `try_feed`. Connections run over in-memory
//! duplex pipes or loopback TCP. What is runtime-specific stays with the facades, and
//! every adapter runs the scenario suite (`tests/tests/scenarios`).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockeye_tokio::{
    accept, accept_with, accept_with_async, connect, connect_url, Abnormal, Boundary,
    ClientRequest, CloseCode, Config, DeflateConfig, DriverConfig, Error, Event, KeepAlive,
    Message, Outcome, Refusal, RequestHead, Settings, Timeout, Verdict, WebSocket,
};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpListener;

/// A client and a server over an in-memory pipe.
async fn pair(settings: Settings) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    pair_with(settings, settings).await
}

async fn pair_with(
    client: Settings,
    server: Settings,
) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = duplex(1 << 20);
    let accepted = tokio::spawn(async move { accept(a, server).await.unwrap() });
    let client = connect(b, "ws://localhost/", client).await.unwrap();
    (client, accepted.await.unwrap())
}

#[tokio::test]
async fn echo_and_clean_close_over_a_pipe() {
    let (mut client, mut server) = pair(Settings::default()).await;
    client.send(Message::text("hello")).await.unwrap();
    assert_eq!(server.recv().await, Some(Message::text("hello")));
    server.close(CloseCode::NORMAL, "bye").await.unwrap();
    assert_eq!(
        client.recv().await,
        Some(Message::Close(Some(sockeye_tokio::CloseReason::new(
            CloseCode::NORMAL,
            "bye"
        ))))
    );
    // The server sees the client's reply, then each side finishes: the server at once,
    // the client when the server closes TCP.
    let (client_end, server_reply) = tokio::join!(client.recv(), server.recv());
    assert_eq!(client_end, None);
    assert!(matches!(server_reply, Some(Message::Close(_))));
    assert_eq!(server.recv().await, None);
    assert_eq!(
        client.outcome().unwrap().to_string(),
        "clean code=1000 reason=bye"
    );
    assert!(matches!(
        server.outcome(),
        Some(Outcome::Clean {
            initiated_locally: true,
            ..
        })
    ));
    // The end is reported once; afterwards recv keeps returning None and sends fail.
    assert_eq!(client.recv().await, None);
    assert!(matches!(
        client.send(Message::text("late")).await,
        Err(Error::Closed)
    ));
}

/// `recv` inside `select!` loses nothing when another branch wins, even in the middle
/// of a fragmented message arriving slowly.
#[tokio::test(start_paused = true)]
async fn recv_is_cancel_safe_in_select() {
    let (a, mut raw) = duplex(1 << 16);
    let server = tokio::spawn(async move { accept(a, Settings::default()).await.unwrap() });
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut ws = server.await.unwrap();
    let mut head = [0u8; 129];
    raw.read_exact(&mut head).await.unwrap();
    assert!(head.starts_with(b"HTTP/1.1 101"));

    // A masked text message "héllo wörld" in three fragments, written a few bytes at a
    // time with pauses, so the receiver is cancelled many times mid-message.
    let mut wire = Vec::new();
    for (opcode, fin, part) in [
        (0x1u8, false, "hél".as_bytes()),
        (0x0, false, "lo w".as_bytes()),
        (0x0, true, "örld".as_bytes()),
    ] {
        let key = [9u8, 8, 7, 6];
        wire.push(u8::from(fin) << 7 | opcode);
        wire.push(0x80 | part.len() as u8);
        wire.extend_from_slice(&key);
        wire.extend(part.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
    let writer = tokio::spawn(async move {
        for chunk in wire.chunks(3) {
            raw.write_all(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        raw
    });

    let mut cancelled = 0;
    let message = loop {
        tokio::select! {
            message = ws.recv() => break message,
            _ = tokio::time::sleep(Duration::from_millis(3)) => cancelled += 1,
        }
    };
    assert_eq!(message, Some(Message::text("héllo wörld")));
    assert!(cancelled > 5, "recv was cancelled only {cancelled} times");
    drop(writer.await.unwrap());
    assert_eq!(ws.recv().await, None);
    assert_eq!(ws.outcome(), Some(Outcome::Abnormal(Abnormal::Eof)));
}

/// The reader half alone answers pings and completes the close handshake while the
/// writer half sits in another task.
#[tokio::test]
async fn split_reader_answers_pings_and_closes() {
    let (mut client, server) = pair(Settings::default()).await;
    let (mut reader, mut writer) = server.split();
    let reading = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(message) = reader.recv().await {
            seen.push(message);
        }
        (seen, reader.outcome())
    });
    client
        .send(Message::ping(b"are you there".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        client.recv().await,
        Some(Message::pong(b"are you there".to_vec()))
    );
    writer.send(Message::text("from the writer")).await.unwrap();
    assert_eq!(client.recv().await, Some(Message::text("from the writer")));
    client.close(CloseCode::NORMAL, "done").await.unwrap();
    assert!(matches!(client.recv().await, Some(Message::Close(_))));
    assert_eq!(client.recv().await, None);
    assert!(client.outcome().unwrap().is_clean());
    let (seen, outcome) = reading.await.unwrap();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(outcome.unwrap().is_clean());
    assert!(matches!(
        writer.send(Message::text("late")).await,
        Err(Error::Closed)
    ));
}

/// A Close sent by the writer half arms the close timer that the (already waiting)
/// reader then fires: a peer that never answers is timed out.
#[tokio::test(start_paused = true)]
async fn split_writer_close_arms_the_readers_timer() {
    let settings =
        Settings::from(Config::default().with_close_timeout(Some(Duration::from_secs(5))));
    let (client, server) = pair(settings).await;
    let (mut reader, mut writer) = server.split();
    let reading = tokio::spawn(async move {
        while reader.recv().await.is_some() {}
        reader.outcome()
    });
    // Let the reader block first, then close from the writer.
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    writer.close(CloseCode::NORMAL, "").await.unwrap();
    // The client never reads, so it never answers.
    let outcome = reading.await.unwrap();
    assert_eq!(outcome, Some(Outcome::TimedOut(Timeout::Close)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    drop(client);
}

/// Split halves reunite; a forwarded `Stream` into a `Sink` echoes.
#[tokio::test]
async fn stream_sink_forward_and_reunite() {
    let (mut client, server) = pair(Settings::default()).await;
    let (reader, writer) = server.split();
    let echo = tokio::spawn(async move {
        let mut writer = writer;
        let mut reader = reader;
        // Echo the first two messages through Stream -> Sink, then give the halves back.
        let mut two = (&mut reader).take(2).map(Ok);
        writer.send_all(&mut two).await.unwrap();
        reader.reunite(writer).unwrap()
    });
    SinkExt::send(&mut client, Message::text("one"))
        .await
        .unwrap();
    SinkExt::send(&mut client, Message::binary(vec![2u8; 70_000]))
        .await
        .unwrap();
    assert_eq!(client.next().await, Some(Message::text("one")));
    assert_eq!(
        client.next().await,
        Some(Message::binary(vec![2u8; 70_000]))
    );
    let mut server = echo.await.unwrap();
    // Sink::close sends a Close (1000).
    SinkExt::close(&mut client).await.unwrap();
    assert_eq!(
        server.recv().await,
        Some(Message::Close(Some(sockeye_tokio::CloseReason::new(
            CloseCode::NORMAL,
            ""
        ))))
    );
    assert_eq!(server.recv().await, None);
    // The server's reply, then the end.
    assert!(matches!(client.next().await, Some(Message::Close(_))));
    assert_eq!(client.next().await, None);
    assert!(client.outcome().unwrap().is_clean());
}

/// `recv_with` streams a message larger than the read buffer in chunks, never whole;
/// fragmented sends arrive as one message.
#[tokio::test]
async fn streaming_receive_and_fragmented_send() {
    let buffers = DriverConfig::default().with_read_buffer_size(16 * 1024);
    let (mut client, mut server) = pair(Settings::default().with_buffers(buffers)).await;
    let big = vec![7u8; 1 << 20];
    // Queued now, written while the server reads (it does not fit the pipe at once).
    client.feed(Message::binary(big.clone())).await.unwrap();
    let sending = tokio::spawn(async move {
        client.flush().await.unwrap();
        client
    });
    let (mut chunks, mut total, mut largest) = (0, 0, 0);
    loop {
        let end = server
            .recv_with(|event| match event {
                Event::Binary { bytes, end } => {
                    assert!(bytes.iter().all(|&b| b == 7));
                    (bytes.len(), end)
                }
                other => panic!("{other:?}"),
            })
            .await
            .unwrap();
        chunks += 1;
        total += end.0;
        largest = largest.max(end.0);
        if end.1 == Boundary::MessageEnd {
            break;
        }
    }
    assert_eq!(total, big.len());
    assert!(chunks > 16, "{chunks} chunks");
    assert!(largest <= 16 * 1024, "a chunk of {largest} bytes");
    let mut client = sending.await.unwrap();

    use sockeye_tokio::DataKind;
    client
        .feed_frame(DataKind::Text, false, b"stream".to_vec())
        .await
        .unwrap();
    client
        .feed_frame(DataKind::Text, false, b"ed ".to_vec())
        .await
        .unwrap();
    client
        .feed_frame(DataKind::Text, true, b"text".to_vec())
        .await
        .unwrap();
    client.flush().await.unwrap();
    assert_eq!(server.recv().await, Some(Message::text("streamed text")));
}

/// The callback picks a subprotocol, adds a header, or rejects with a status the
/// client sees with its headers.
#[tokio::test]
async fn accept_with_subprotocols_and_rejection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut results = Vec::new();
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let result = accept_with(tcp, Settings::default(), |request| {
                assert_eq!(request.protocols(), ["v1", "v2"]);
                if request.path() == "/private" {
                    return Verdict::from(
                        Verdict::reject(401, "Unauthorized")
                            .with_header("WWW-Authenticate", "Bearer"),
                    );
                }
                Verdict::from(
                    Verdict::accept()
                        .with_protocol(request.select_protocol(&["v2", "v3"]).unwrap())
                        .with_header("X-Served-By", "sockeye"),
                )
            })
            .await;
            results.push(result.map(|ws| ws.protocol().map(str::to_owned)));
        }
        results
    });

    let host = addr.to_string();
    for (path, expected) in [("/private", Some(401)), ("/chat", None)] {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = ClientRequest::new(&host, path).with_protocols(&["v1", "v2"]);
        match connect(tcp, request, Settings::default()).await {
            Ok(ws) => {
                assert_eq!(expected, None);
                assert_eq!(ws.protocol(), Some("v2"));
            }
            Err(Error::Rejected(rejected)) => {
                assert_eq!(Some(rejected.status), expected);
                assert_eq!(rejected.header("www-authenticate"), Some(&b"Bearer"[..]));
            }
            Err(other) => panic!("{other}"),
        }
    }
    let results = server.await.unwrap();
    assert!(matches!(
        results[0],
        Err(Error::Refused(Refusal::Rejected(401)))
    ));
    assert_eq!(results[1].as_ref().unwrap().as_deref(), Some("v2"));
}

/// An application's rejection can carry a body, written after the head with its length.
#[tokio::test]
async fn a_rejection_carries_its_body() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = r#"{"error":"unknown room","room":"/lobby"}"#;
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        accept_with(tcp, Settings::default(), |request| {
            Verdict::reject(404, "Not Found")
                .with_header("Content-Type", "application/json")
                .with_body(format!(
                    r#"{{"error":"unknown room","room":"{}"}}"#,
                    request.path()
                ))
        })
        .await
    });
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(
        b"GET /lobby HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut response = Vec::new();
    raw.read_to_end(&mut response).await.unwrap();
    let expected = format!(
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(String::from_utf8_lossy(&response), expected);
    // Closing ends the server's linger (it reads until the client closes, for 1 s at most).
    drop(raw);
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::Refused(Refusal::Rejected(404)))
    ));
}

/// The client reads the body of a rejection (the server's reason in words) and answers
/// as soon as it has ended, without waiting for the server to close.
#[tokio::test(start_paused = true)]
async fn the_client_gets_a_rejections_body() {
    let (a, b) = duplex(4096);
    let started = tokio::time::Instant::now();
    let server = tokio::spawn(accept_with(a, Settings::default(), |_| {
        Verdict::reject(401, "Unauthorized")
            .with_header("Content-Type", "application/json")
            .with_body(r#"{"error":"token expired"}"#)
    }));
    let result = connect(b, ClientRequest::new("x", "/"), Settings::default()).await;
    let Err(Error::Rejected(rejected)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(rejected.status, 401);
    assert_eq!(
        rejected.header("content-type"),
        Some(&b"application/json"[..])
    );
    assert_eq!(rejected.body, br#"{"error":"token expired"}"#);
    assert!(rejected.body_complete);
    // The server lingers up to 1 s for the client to close; the client did not wait
    // for that (the clock is paused, so only waiting moves it).
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::Refused(Refusal::Rejected(401)))
    ));
}

/// `accept_with_async`: the verdict waits for a future (a session lookup here, 2 s of
/// paused time), sees the request owned, and reaches the client like any other; a
/// decision slower than the handshake timeout ends the handshake.
#[tokio::test(start_paused = true)]
async fn an_async_verdict_accepts_or_rejects_after_waiting() {
    let decide = |request: RequestHead| async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        match request.header("Authorization") {
            Some(b"Bearer good") => match request.select_protocol(&["chat"]) {
                Some(protocol) => Verdict::from(Verdict::accept().with_protocol(protocol)),
                None => Verdict::from(Verdict::accept()),
            },
            _ => Verdict::from(Verdict::reject(401, "Unauthorized").with_body("token expired")),
        }
    };
    for (token, accepted) in [("Bearer good", true), ("Bearer old", false)] {
        let (a, b) = duplex(4096);
        let started = tokio::time::Instant::now();
        let server = tokio::spawn(accept_with_async(a, Settings::default(), decide));
        let headers = [("Authorization", token.as_bytes())];
        let request = ClientRequest::new("x", "/")
            .with_protocols(&["chat"])
            .with_headers(&headers);
        let client = connect(b, request, Settings::default()).await;
        assert!(started.elapsed() >= Duration::from_secs(2));
        if accepted {
            assert_eq!(client.unwrap().protocol(), Some("chat"));
            assert_eq!(server.await.unwrap().unwrap().protocol(), Some("chat"));
        } else {
            let Err(Error::Rejected(rejected)) = client else {
                panic!("{client:?}")
            };
            assert_eq!(
                (rejected.status, rejected.body.as_slice()),
                (401, &b"token expired"[..])
            );
            assert!(matches!(
                server.await.unwrap(),
                Err(Error::Refused(Refusal::Rejected(401)))
            ));
        }
    }

    let (a, b) = duplex(4096);
    let settings = Settings::default().with_handshake_timeout(Some(Duration::from_secs(1)));
    let server = tokio::spawn(accept_with_async(a, settings, decide));
    let client = tokio::spawn(connect(
        b,
        ClientRequest::new("x", "/"),
        Settings::default(),
    ));
    assert!(matches!(
        server.await.unwrap(),
        Err(Error::HandshakeTimeout)
    ));
    assert!(client.await.unwrap().is_err());
}

/// A server that says no and then stalls in its body: at the handshake timeout the
/// client reports the rejection with what came of the body, not a bare timeout.
#[tokio::test(start_paused = true)]
async fn a_stalled_rejection_body_still_reports_the_rejection() {
    let (a, mut raw) = duplex(4096);
    let started = tokio::time::Instant::now();
    let client = tokio::spawn(connect(
        a,
        ClientRequest::new("x", "/"),
        Settings::default(),
    ));
    let mut request = [0u8; 1024];
    let n = raw.read(&mut request).await.unwrap();
    assert!(request[..n].starts_with(b"GET / HTTP/1.1\r\n"));
    raw.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nback at")
        .await
        .unwrap();
    let result = client.await.unwrap();
    let Err(Error::Rejected(rejected)) = result else {
        panic!("{result:?}")
    };
    assert_eq!(rejected.status, 503);
    assert_eq!(
        (rejected.body.as_slice(), rejected.body_complete),
        (&b"back at"[..], false)
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    drop(raw);
}

/// A client that never finishes its request is dropped after the handshake timeout.
#[tokio::test(start_paused = true)]
async fn slowloris_hits_the_handshake_timeout() {
    let (a, mut raw) = duplex(4096);
    let started = tokio::time::Instant::now();
    let server = tokio::spawn(accept(a, Settings::default()));
    raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let result = server.await.unwrap();
    assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(11),
        "{waited:?}"
    );
    // The socket is closed without a response.
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}

/// Keepalive on the paused clock: a Ping after exactly the interval, a timeout after the
/// pong deadline when the peer stays silent, and the peer's answers keep it alive.
#[tokio::test(start_paused = true)]
async fn keepalive_on_the_paused_clock() {
    let keepalive = KeepAlive::new(Duration::from_secs(20), Duration::from_secs(5));
    let settings = Settings::from(Config::default().with_keepalive(Some(keepalive)));
    let (mut client, server) = pair_with(Settings::default(), settings).await;
    let (mut reader, _writer) = server.split();
    let started = tokio::time::Instant::now();
    let reading = tokio::spawn(async move {
        while reader.recv().await.is_some() {}
        (reader.outcome(), tokio::time::Instant::now())
    });
    // The client answers three pings (recv does that), then stops reading.
    for _ in 0..3 {
        assert!(matches!(client.recv().await, Some(Message::Ping(_))));
    }
    let (outcome, ended) = reading.await.unwrap();
    assert_eq!(outcome, Some(Outcome::TimedOut(Timeout::KeepAlive)));
    // Three answered rounds of 20 s, then 20 s + 5 s unanswered.
    assert_eq!(ended - started, Duration::from_secs(3 * 20 + 25));
}

#[tokio::test]
async fn connect_url_errors() {
    assert!(matches!(
        connect_url("wss://example.com/", Settings::default()).await,
        Err(Error::TlsRequired)
    ));
    assert!(matches!(
        connect_url("http://example.com/", Settings::default()).await,
        Err(Error::Url(_))
    ));
    // Nothing listens on a port we just closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let result = connect_url(&format!("ws://127.0.0.1:{port}/"), Settings::default()).await;
    assert!(matches!(result, Err(Error::Io(_))), "{result:?}");
}

/// `feed` waits while the queue is over its bound and the peer does not read.
#[tokio::test]
async fn feed_waits_for_a_slow_reader() {
    let buffers = DriverConfig::default().with_max_pending_bytes(64 * 1024);
    let (a, b) = duplex(16 * 1024);
    let settings = Settings::default().with_buffers(buffers);
    let server = tokio::spawn(async move { accept(a, settings).await.unwrap() });
    let mut client = connect(b, "ws://localhost/", settings).await.unwrap();
    let mut server = server.await.unwrap();
    let mut fed = 0;
    let blocked = loop {
        let feed = client.feed(Message::binary(vec![1; 16 * 1024]));
        match tokio::time::timeout(Duration::from_millis(100), feed).await {
            Ok(result) => {
                result.unwrap();
                fed += 1;
                assert!(fed < 100, "feed never waited");
            }
            Err(_) => break fed,
        }
    };
    assert!(client.pending_bytes() <= 64 * 1024 + 16 * 1024 + 14);
    // Once the server reads, everything queued arrives.
    let reading = tokio::spawn(async move {
        let mut count = 0;
        while let Some(message) = server.recv().await {
            if message.is_data() {
                count += 1;
            }
        }
        count
    });
    client.close(CloseCode::NORMAL, "").await.unwrap();
    while client.recv().await.is_some() {}
    assert!(client.outcome().unwrap().is_clean());
    // Every message whose feed completed arrived (the one cut off by the timeout was
    // not queued: feed is cancel-safe).
    assert_eq!(reading.await.unwrap(), blocked);
}

/// Messages that arrive in one read are given that read's time: the idle timer counts
/// from when their bytes came in, not from when the application got round to each.
#[tokio::test(start_paused = true)]
async fn the_idle_timer_counts_from_the_read_that_brought_the_message() {
    let idle = Duration::from_secs(15);
    let settings = Settings::from(Config::default().with_idle_timeout(Some(idle)));
    let (mut client, mut server) = pair_with(Settings::default(), settings).await;
    // Both messages in one write, so the server's first read takes both.
    client.feed(Message::text("one")).await.unwrap();
    client.feed(Message::text("two")).await.unwrap();
    SinkExt::flush(&mut client).await.unwrap();
    let answering = tokio::spawn(async move { while client.recv().await.is_some() {} });
    let started = tokio::time::Instant::now();
    assert_eq!(server.recv().await, Some(Message::text("one")));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(server.recv().await, Some(Message::text("two")));
    assert_eq!(server.recv().await, None);
    let ended = started.elapsed();
    assert_eq!(server.outcome(), Some(Outcome::TimedOut(Timeout::Idle)));
    // 15 s after the read at the start; counted from the second message's turn it
    // would have been 25 s.
    assert!(
        ended >= idle && ended < idle + Duration::from_secs(1),
        "{ended:?}"
    );
    answering.await.unwrap();
}

/// Sends `request` on a fresh connection to `addr` and returns the whole response.
async fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut raw = tokio::net::TcpStream::connect(addr).await.unwrap();
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    raw.read_to_end(&mut response).await.unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// Plain HTTP requests reach the application's decision (`is_upgrade() == false`): a
/// health check gets 200 with a body, an unknown path 404, on the same port as the
/// WebSockets; a plain request the application accepts gets the 400 it always got.
#[tokio::test]
async fn plain_requests_get_the_applications_answer() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut refusals = Vec::new();
        for _ in 0..3 {
            let (tcp, _) = listener.accept().await.unwrap();
            let result = accept_with(tcp, Settings::default(), |request| {
                if request.is_upgrade() {
                    return Verdict::from(Verdict::accept());
                }
                assert_eq!(request.method(), "GET");
                match request.path() {
                    "/health" => Verdict::from(Verdict::reject(200, "OK").with_body("ok")),
                    "/anything" => Verdict::from(Verdict::accept()),
                    _ => Verdict::from(Verdict::reject(404, "Not Found")),
                }
            })
            .await;
            refusals.push(result.err().and_then(|error| error.status()));
        }
        refusals
    });
    let health = http(addr, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(health.starts_with("HTTP/1.1 200 OK\r\n"), "{health:?}");
    assert!(health.ends_with("\r\n\r\nok"), "{health:?}");
    let missing = http(addr, "GET /nope?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing:?}"
    );
    let accepted = http(addr, "GET /anything HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(accepted.starts_with("HTTP/1.1 400 "), "{accepted:?}");
    assert_eq!(server.await.unwrap(), [Some(200), Some(404), Some(400)]);
}

/// What the decision found in the request rides into the connection's task.
#[tokio::test]
async fn the_verdict_carries_data_into_the_connection() {
    let (a, b) = duplex(64 * 1024);
    let accepted = tokio::spawn(async move {
        sockeye_tokio::accept_with_data(a, Settings::default(), |request| {
            assert_eq!(request.target(), "/room/lobby?nick=ann");
            assert_eq!(request.query(), Some("nick=ann"));
            let room = request.path().strip_prefix("/room/").map(str::to_owned);
            Verdict::accept().with_data(room)
        })
        .await
        .unwrap()
    });
    let mut client = connect(b, "ws://localhost/room/lobby?nick=ann", Settings::default())
        .await
        .unwrap();
    let (mut server, room) = accepted.await.unwrap();
    assert_eq!(room.as_deref(), Some("lobby"));
    client.send(Message::text("hi")).await.unwrap();
    assert_eq!(server.recv().await, Some(Message::text("hi")));
}

/// `try_feed` never waits: with the queue over its bound it hands the message back.
#[tokio::test]
async fn try_feed_hands_the_message_back_when_the_queue_is_full() {
    let bound = 16 * 1024;
    let settings =
        Settings::default().with_buffers(DriverConfig::default().with_max_pending_bytes(bound));
    let (mut client, _server) = pair(settings).await;
    let mut queued = 0;
    let handed_back = loop {
        match client.try_feed(Message::binary(vec![7; 8 * 1024])) {
            Ok(()) => queued += 1,
            Err(sockeye_tokio::TrySendError::Full(message)) => break message,
            Err(other) => panic!("{other}"),
        }
        assert!(queued < 100, "never full");
    };
    assert_eq!(handed_back, Message::binary(vec![7; 8 * 1024]));
    assert!(client.is_full());
    assert!(client.pending_bytes() > bound && client.pending_bytes() <= bound + 8 * 1024 + 64);
    // Once written out, there is room again.
    client.flush().await.unwrap();
    assert!(!client.is_full());
    client.try_feed(Message::text("room again")).unwrap();
}

/// permessage-deflate is agreed in the handshake when both ends have it on, and both
/// ends see the same parameters; off on either end, nothing is agreed.
#[tokio::test]
async fn compression_is_negotiated_only_when_both_ends_want_it() {
    let on = Settings::default().with_compression(DeflateConfig::default());
    let (client, server) = pair(on).await;
    let agreed = client.compression().expect("agreed");
    assert_eq!(server.compression(), Some(agreed));
    assert!(agreed.server_no_context_takeover && agreed.client_no_context_takeover);

    let takeover = on.with_compression(DeflateConfig::default().with_context_takeover(11));
    let (client, server) = pair_with(on, takeover).await;
    assert_eq!(client.compression(), server.compression());
    assert_eq!(
        client.compression().map(|p| p.server_max_window_bits),
        Some(11)
    );
    let (reader, writer) = client.split();
    assert_eq!(reader.compression(), server.compression());
    assert_eq!(writer.compression(), server.compression());

    for (client, server) in [(on, Settings::default()), (Settings::default(), on)] {
        let (client, server) = pair_with(client, server).await;
        assert_eq!((client.compression(), server.compression()), (None, None));
    }
}

/// The verdict decides per request: decline, or choose another policy.
#[tokio::test]
async fn a_verdict_can_decline_or_choose_compression() {
    let on = Settings::default().with_compression(DeflateConfig::default());
    let (a, b) = duplex(1 << 16);
    let accepted = tokio::spawn(async move {
        accept_with(a, on, |head: &RequestHead| {
            assert!(head.deflate_offered());
            assert_eq!(head.extensions().len(), 1);
            Verdict::accept().without_compression()
        })
        .await
        .unwrap()
    });
    let client = connect(b, "ws://localhost/", on).await.unwrap();
    let server = accepted.await.unwrap();
    assert_eq!((client.compression(), server.compression()), (None, None));

    // On for this request only, through an async verdict.
    let (a, b) = duplex(1 << 16);
    let accepted = tokio::spawn(async move {
        accept_with_async(a, Settings::default(), |_head: RequestHead| async {
            Verdict::accept().with_compression(DeflateConfig::default().with_context_takeover(9))
        })
        .await
        .unwrap()
    });
    let client = connect(b, "ws://localhost/", on).await.unwrap();
    let server = accepted.await.unwrap();
    assert_eq!(client.compression(), server.compression());
    assert_eq!(
        server.compression().map(|p| p.client_max_window_bits),
        Some(9)
    );
}

/// A server whose permessage-deflate answer does not fit the offer fails the client's
/// handshake with a typed error.
#[tokio::test]
async fn a_bad_deflate_answer_fails_the_handshake() {
    let (a, mut raw) = duplex(1 << 16);
    let on = Settings::default().with_compression(DeflateConfig::default());
    let client = tokio::spawn(async move { connect(a, "ws://localhost/", on).await });
    let mut request = vec![0u8; 4096];
    let mut n = 0;
    while !request[..n].ends_with(b"\r\n\r\n") {
        n += raw.read(&mut request[n..]).await.unwrap();
    }
    let head = String::from_utf8_lossy(&request[..n]).into_owned();
    assert!(head.contains("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"));
    let key = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap();
    let accept = sockeye_proto::AcceptKey::derive(key.trim().as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7\r\n\r\n",
        std::str::from_utf8(accept.as_bytes()).unwrap()
    );
    raw.write_all(response.as_bytes()).await.unwrap();
    let Err(Error::Response(error)) = client.await.unwrap() else {
        panic!("the handshake must fail")
    };
    assert_eq!(
        error,
        sockeye_proto::ResponseError::Extension(sockeye_proto::ExtensionError::InvalidWindowBits)
    );
    assert!(error.to_string().contains("permessage-deflate"));
}

/// With the default settings, a peer that goes silent (a connection that died behind a
/// proxy) is pinged after 30 s and ended 30 s later, on the paused clock.
#[tokio::test(start_paused = true)]
async fn default_keepalive_ends_a_silent_peer() {
    let (a, mut raw) = duplex(1 << 16);
    let server = tokio::spawn(async move { accept(a, Settings::default()).await.unwrap() });
    raw.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut ws = server.await.unwrap();
    let mut head = [0u8; 129];
    raw.read_exact(&mut head).await.unwrap();
    assert!(head.starts_with(b"HTTP/1.1 101"));

    let started = tokio::time::Instant::now();
    assert_eq!(ws.recv().await, None);
    let waited = started.elapsed();
    assert!(
        matches!(ws.outcome(), Some(Outcome::TimedOut(Timeout::KeepAlive))),
        "{:?}",
        ws.outcome()
    );
    // 30 s of silence, then 30 s for the Pong that never came.
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "{waited:?}"
    );
    // The silent peer was pinged (an unmasked server Ping, 0x89) before the end.
    let mut first = [0u8; 1];
    raw.read_exact(&mut first).await.unwrap();
    assert_eq!(first[0], 0x89);
}

/// A prepared message goes to every subscriber, and a full subscriber hands it back
/// without waiting (the others keep getting it).
#[tokio::test]
async fn prepared_messages_reach_every_subscriber() {
    use sockeye_tokio::{PreparedMessage, TrySendError};
    let settings = Settings::default().with_max_pending_bytes(64 * 1024);
    let mut pairs = Vec::new();
    for _ in 0..3 {
        pairs.push(pair(settings).await);
    }
    let news = PreparedMessage::text("extra, extra");
    for (_, server) in &mut pairs {
        server.send_prepared(&news).await.unwrap();
    }
    for (client, _) in &mut pairs {
        assert_eq!(client.recv().await, Some(Message::text("extra, extra")));
    }
    // A subscriber that reads nothing fills its own queue; try_feed_prepared says so.
    let big = PreparedMessage::binary(vec![1u8; 32 * 1024]);
    let (_, slow) = &mut pairs[0];
    let mut queued = 0;
    let full = loop {
        match slow.try_feed_prepared(&big) {
            Ok(()) => queued += 1,
            Err(TrySendError::Full(back)) => break back,
            Err(TrySendError::Failed(error)) => panic!("{error}"),
        }
        assert!(queued < 1000, "the queue never filled");
    };
    assert_eq!(full.payload().len(), 32 * 1024);
    // The others are not held up.
    let (client, server) = &mut pairs[1];
    server.send_prepared(&news).await.unwrap();
    assert_eq!(client.recv().await, Some(Message::text("extra, extra")));
}
