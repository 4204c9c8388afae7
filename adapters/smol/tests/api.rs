//! The smol adapter's own API: cancel safety, split halves, timers, the handshake
//! callback, `Stream`/`Sink`, the streaming API, backpressure. Connections run over Unix
//! socket pairs or loopback TCP, on smol's executor with real (short) timers.

use std::time::{Duration, Instant};

use futures_lite::future;
use futures_util::{SinkExt, StreamExt};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::unix::UnixStream;
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use sockeye_smol::{
    accept, accept_with, accept_with_async, connect, connect_url, Abnormal, Boundary,
    ClientRequest, CloseCode, CloseReason, Config, DataKind, DriverConfig, Error, Event, KeepAlive,
    Message, Outcome, Refusal, RequestHead, Settings, Timeout, Verdict, WebSocket,
};

/// A client and a server over a Unix socket pair.
async fn pair(settings: Settings) -> (WebSocket<UnixStream>, WebSocket<UnixStream>) {
    pair_with(settings, settings).await
}

async fn pair_with(
    client: Settings,
    server: Settings,
) -> (WebSocket<UnixStream>, WebSocket<UnixStream>) {
    let (a, b) = UnixStream::pair().unwrap();
    let accepted = smol::spawn(async move { accept(a, server).await.unwrap() });
    let client = connect(b, "ws://localhost/", client).await.unwrap();
    (client, accepted.await)
}

/// Runs `test` with a time limit, so a hang fails instead of blocking CI.
fn run<T>(test: impl std::future::Future<Output = T>) -> T {
    smol::block_on(future::or(test, async {
        Timer::after(Duration::from_secs(60)).await;
        panic!("the test took over 60 s");
    }))
}

#[test]
fn echo_and_clean_close_over_a_socket_pair() {
    run(async {
        let (mut client, mut server) = pair(Settings::default()).await;
        client.send(Message::text("hello")).await.unwrap();
        assert_eq!(server.recv().await, Some(Message::text("hello")));
        server.close(CloseCode::NORMAL, "bye").await.unwrap();
        assert_eq!(
            client.recv().await,
            Some(Message::Close(Some(CloseReason::new(
                CloseCode::NORMAL,
                "bye"
            ))))
        );
        // Each side finishes: the server once the reply arrives, the client at EOF.
        let server_rest = async {
            let mut rest = Vec::new();
            while let Some(message) = server.recv().await {
                rest.push(message);
            }
            rest
        };
        let (client_end, server_rest) = future::zip(client.recv(), server_rest).await;
        assert_eq!(client_end, None);
        // The client's reply (the initiator sees it as the end of the handshake).
        assert!(
            server_rest.iter().all(|m| matches!(m, Message::Close(_))),
            "{server_rest:?}"
        );
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
    });
}

/// `recv` raced against a timer loses nothing when the timer wins, even in the middle
/// of a fragmented message arriving slowly.
#[test]
fn recv_is_cancel_safe_in_a_race() {
    run(async {
        let (a, mut raw) = UnixStream::pair().unwrap();
        let server = smol::spawn(async move { accept(a, Settings::default()).await.unwrap() });
        raw.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await
        .unwrap();
        let mut ws = server.await;
        let mut head = [0u8; 129];
        raw.read_exact(&mut head).await.unwrap();
        assert!(head.starts_with(b"HTTP/1.1 101"));

        // A masked text message "héllo wörld" in three fragments, written a few bytes at
        // a time with pauses, so the receiver is cancelled many times mid-message.
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
        let writer = smol::spawn(async move {
            for chunk in wire.chunks(3) {
                raw.write_all(chunk).await.unwrap();
                Timer::after(Duration::from_millis(20)).await;
            }
            raw
        });

        let mut cancelled = 0;
        let message = loop {
            let received = future::or(async { Some(ws.recv().await) }, async {
                Timer::after(Duration::from_millis(3)).await;
                None
            })
            .await;
            match received {
                Some(message) => break message,
                None => cancelled += 1,
            }
        };
        assert_eq!(message, Some(Message::text("héllo wörld")));
        assert!(cancelled > 5, "recv was cancelled only {cancelled} times");
        drop(writer.await);
        assert_eq!(ws.recv().await, None);
        assert_eq!(ws.outcome(), Some(Outcome::Abnormal(Abnormal::Eof)));
    });
}

/// The reader half alone answers pings and completes the close handshake while the
/// writer half sits in another task.
#[test]
fn split_reader_answers_pings_and_closes() {
    run(async {
        let (mut client, server) = pair(Settings::default()).await;
        let (mut reader, mut writer) = server.split();
        let reading = smol::spawn(async move {
            let mut seen = Vec::new();
            while let Some(message) = reader.recv().await {
                seen.push(message);
            }
            (seen, reader.outcome())
        });
        client
            .send(Message::Ping(b"are you there".to_vec()))
            .await
            .unwrap();
        assert_eq!(
            client.recv().await,
            Some(Message::Pong(b"are you there".to_vec()))
        );
        writer.send(Message::text("from the writer")).await.unwrap();
        assert_eq!(client.recv().await, Some(Message::text("from the writer")));
        client.close(CloseCode::NORMAL, "done").await.unwrap();
        assert!(matches!(client.recv().await, Some(Message::Close(_))));
        assert_eq!(client.recv().await, None);
        assert!(client.outcome().unwrap().is_clean());
        let (seen, outcome) = reading.await;
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(outcome.unwrap().is_clean());
        assert!(matches!(
            writer.send(Message::text("late")).await,
            Err(Error::Closed)
        ));
    });
}

/// Both halves wait on the same stream at once: the reader for input, the writer for
/// room (the peer is not reading). Write progress must wake the writer even though the
/// reader polled the stream last.
#[test]
fn split_halves_wait_on_the_same_stream() {
    run(async {
        let buffers = DriverConfig::default().with_max_pending_bytes(64 * 1024);
        let settings = Settings::default().with_buffers(buffers);
        let (mut client, server) = pair(settings).await;
        let (mut reader, mut writer) = server.split();
        let reading = smol::spawn(async move {
            let mut pings = 0;
            while let Some(message) = reader.recv().await {
                pings += usize::from(matches!(message, Message::Ping(_)));
            }
            pings
        });
        let writing = smol::spawn(async move {
            for _ in 0..64 {
                writer
                    .send(Message::binary(vec![5u8; 32 * 1024]))
                    .await
                    .unwrap();
            }
            writer.close(CloseCode::NORMAL, "sent").await.unwrap();
        });
        // Let the writer fill the pipe, then read everything, pinging in between.
        Timer::after(Duration::from_millis(100)).await;
        let mut received = 0;
        while let Some(message) = client.recv().await {
            match message {
                Message::Binary(bytes) => {
                    assert_eq!(bytes.len(), 32 * 1024);
                    received += 1;
                    if received % 16 == 0 {
                        client.feed(Message::Ping(vec![1])).await.unwrap();
                    }
                }
                Message::Close(_) | Message::Pong(_) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(received, 64);
        writing.await;
        assert_eq!(reading.await, 4);
        assert!(client.outcome().unwrap().is_clean());
    });
}

/// A Close sent by the writer half arms the close timer that the (already waiting)
/// reader then fires: a peer that never answers is timed out.
#[test]
fn split_writer_close_arms_the_readers_timer() {
    run(async {
        let settings =
            Settings::from(Config::default().with_close_timeout(Some(Duration::from_millis(300))));
        let (client, server) = pair(settings).await;
        let (mut reader, mut writer) = server.split();
        let reading = smol::spawn(async move {
            while reader.recv().await.is_some() {}
            reader.outcome()
        });
        // Let the reader block first, then close from the writer.
        Timer::after(Duration::from_millis(20)).await;
        let started = Instant::now();
        writer.close(CloseCode::NORMAL, "").await.unwrap();
        // The client never reads, so it never answers.
        let outcome = reading.await;
        assert_eq!(outcome, Some(Outcome::TimedOut(Timeout::Close)));
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        drop(client);
    });
}

/// Split halves reunite; a forwarded `Stream` into a `Sink` echoes.
#[test]
fn stream_sink_forward_and_reunite() {
    run(async {
        let (mut client, server) = pair(Settings::default()).await;
        let (reader, writer) = server.split();
        let echo = smol::spawn(async move {
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
        let mut server = echo.await;
        // Sink::close sends a Close (1000).
        SinkExt::close(&mut client).await.unwrap();
        assert_eq!(
            server.recv().await,
            Some(Message::Close(Some(CloseReason::new(
                CloseCode::NORMAL,
                ""
            ))))
        );
        assert_eq!(server.recv().await, None);
        // The server's reply, then the end.
        assert!(matches!(client.next().await, Some(Message::Close(_))));
        assert_eq!(client.next().await, None);
        assert!(client.outcome().unwrap().is_clean());
    });
}

/// `recv_with` streams a message larger than the read buffer in chunks, never whole;
/// fragmented sends arrive as one message.
#[test]
fn streaming_receive_and_fragmented_send() {
    run(async {
        let buffers = DriverConfig::default().with_read_buffer_size(16 * 1024);
        let (mut client, mut server) = pair(Settings::default().with_buffers(buffers)).await;
        let big = vec![7u8; 1 << 20];
        // The socket pair holds far less than 1 MiB: send while the server reads.
        let sending = async {
            client.send(Message::Binary(big.clone())).await.unwrap();
        };
        let (mut chunks, mut total, mut largest) = (0, 0, 0);
        let receiving = async {
            loop {
                let (len, end) = server
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
                total += len;
                largest = largest.max(len);
                if end == Boundary::MessageEnd {
                    break;
                }
            }
        };
        future::zip(sending, receiving).await;
        assert_eq!(total, big.len());
        assert!(chunks > 16, "{chunks} chunks");
        assert!(largest <= 16 * 1024, "a chunk of {largest} bytes");

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
    });
}

/// The callback picks a subprotocol, adds a header, or rejects with a status the
/// client sees with its headers.
#[test]
fn accept_with_subprotocols_and_rejection() {
    run(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = smol::spawn(async move {
            let mut results = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let result = accept_with(tcp, Settings::default(), |request| {
                    assert_eq!(request.protocols(), ["v1", "v2"]);
                    if request.path() == "/private" {
                        return Verdict::reject(401, "Unauthorized")
                            .with_header("WWW-Authenticate", "Bearer");
                    }
                    Verdict::accept()
                        .with_protocol(request.select_protocol(&["v2", "v1"]).unwrap())
                        .with_header("X-Served-By", "sockeye")
                })
                .await;
                results.push(result.map(|ws| ws.protocol().map(str::to_owned)));
            }
            results
        });

        let host = addr.to_string();
        for (path, expected) in [("/private", Some(401)), ("/chat", None)] {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let request = ClientRequest::new(&host, path).with_protocols(&["v1", "v2"]);
            match connect(tcp, request, Settings::default()).await {
                Ok(ws) => {
                    assert_eq!(expected, None);
                    // The client's order of preference wins.
                    assert_eq!(ws.protocol(), Some("v1"));
                }
                Err(Error::Rejected(rejected)) => {
                    assert_eq!(Some(rejected.status), expected);
                    assert_eq!(rejected.header("www-authenticate"), Some(&b"Bearer"[..]));
                }
                Err(other) => panic!("{other}"),
            }
        }
        let results = server.await;
        assert!(matches!(
            results[0],
            Err(Error::Refused(Refusal::Rejected(401)))
        ));
        assert_eq!(results[1].as_ref().unwrap().as_deref(), Some("v1"));
    });
}

/// The client reads the body of a rejection and answers as soon as it has ended, without
/// waiting for the server to close (it lingers up to 1 s for the client to go first).
#[test]
fn the_client_gets_a_rejections_body() {
    run(async {
        let (a, b) = UnixStream::pair().unwrap();
        let started = Instant::now();
        let server = smol::spawn(accept_with(a, Settings::default(), |_| {
            Verdict::reject(401, "Unauthorized").with_body(r#"{"error":"token expired"}"#)
        }));
        let result = connect(b, ClientRequest::new("x", "/"), Settings::default()).await;
        let Err(Error::Rejected(rejected)) = result else {
            panic!("{result:?}")
        };
        assert_eq!(rejected.status, 401);
        assert_eq!(rejected.body, br#"{"error":"token expired"}"#);
        assert!(rejected.body_complete);
        assert!(
            started.elapsed() < Duration::from_millis(900),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(server.await.unwrap_err().status(), Some(401));
    });
}

/// `accept_with_async`: the verdict waits for a future (200 ms here), sees the request
/// owned, and reaches the client like any other; a decision slower than the handshake
/// timeout ends the handshake.
#[test]
fn an_async_verdict_accepts_or_rejects_after_waiting() {
    run(async {
        let decide = |request: RequestHead| async move {
            Timer::after(Duration::from_millis(200)).await;
            match request.header("Authorization") {
                Some(b"Bearer good") => match request.select_protocol(&["chat"]) {
                    Some(protocol) => Verdict::accept().with_protocol(protocol),
                    None => Verdict::accept(),
                },
                _ => Verdict::reject(401, "Unauthorized").with_body("token expired"),
            }
        };
        for (token, accepted) in [("Bearer good", true), ("Bearer old", false)] {
            let (a, b) = UnixStream::pair().unwrap();
            let started = Instant::now();
            let server = smol::spawn(accept_with_async(a, Settings::default(), decide));
            let headers = [("Authorization", token.as_bytes())];
            let request = ClientRequest::new("x", "/")
                .with_protocols(&["chat"])
                .with_headers(&headers);
            let client = connect(b, request, Settings::default()).await;
            assert!(started.elapsed() >= Duration::from_millis(200));
            if accepted {
                assert_eq!(client.unwrap().protocol(), Some("chat"));
                assert_eq!(server.await.unwrap().protocol(), Some("chat"));
            } else {
                let Err(Error::Rejected(rejected)) = client else {
                    panic!("{client:?}")
                };
                assert_eq!(
                    (rejected.status, rejected.body.as_slice()),
                    (401, &b"token expired"[..])
                );
                assert_eq!(server.await.unwrap_err().status(), Some(401));
            }
        }

        let (a, b) = UnixStream::pair().unwrap();
        let settings = Settings::default().with_handshake_timeout(Some(Duration::from_millis(100)));
        let server = smol::spawn(accept_with_async(a, settings, decide));
        let client = smol::spawn(connect(
            b,
            ClientRequest::new("x", "/"),
            Settings::default(),
        ));
        assert!(matches!(server.await, Err(Error::HandshakeTimeout)));
        assert!(client.await.is_err());
    });
}

/// A server that says no and then stalls in its body: at the handshake timeout the
/// client reports the rejection with what came of the body, not a bare timeout.
#[test]
fn a_stalled_rejection_body_still_reports_the_rejection() {
    run(async {
        let (a, mut raw) = UnixStream::pair().unwrap();
        let settings = Settings::default().with_handshake_timeout(Some(Duration::from_millis(300)));
        let started = Instant::now();
        let client = smol::spawn(connect(a, ClientRequest::new("x", "/"), settings));
        let mut request = [0u8; 1024];
        let n = raw.read(&mut request).await.unwrap();
        assert!(request[..n].starts_with(b"GET / HTTP/1.1\r\n"));
        raw.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nback at")
            .await
            .unwrap();
        let result = client.await;
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
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    });
}

/// A client that never finishes its request is dropped after the handshake timeout.
#[test]
fn slowloris_hits_the_handshake_timeout() {
    run(async {
        let (a, mut raw) = UnixStream::pair().unwrap();
        let settings = Settings::default().with_handshake_timeout(Some(Duration::from_millis(300)));
        let started = Instant::now();
        let server = smol::spawn(accept(a, settings));
        raw.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let result = server.await;
        assert!(matches!(result, Err(Error::HandshakeTimeout)), "{result:?}");
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        // The socket is closed without a response.
        let mut rest = Vec::new();
        raw.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
}

/// A bad request gets its response written and flushed, then the socket closes.
#[test]
fn rejections_are_written_then_closed() {
    run(async {
        let (a, mut raw) = UnixStream::pair().unwrap();
        let server = smol::spawn(accept(a, Settings::default()));
        raw.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
        )
        .await
        .unwrap();
        let mut response = String::new();
        raw.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 426 "), "{response:?}");
        assert!(response.contains("Sec-WebSocket-Version: 13\r\n"));
        let result = server.await;
        assert_eq!(result.unwrap_err().status(), Some(426));
    });
}

/// Keepalive: Pings after the interval, answered by the peer's `recv`; then the peer
/// stops reading and the pong deadline ends the connection.
#[test]
fn keepalive_pings_then_times_out() {
    run(async {
        let keepalive = KeepAlive::new(Duration::from_millis(100), Duration::from_millis(200));
        let settings = Settings::from(Config::default().with_keepalive(Some(keepalive)));
        // Before the pair exists: the server's keepalive timer counts from its creation,
        // so a clock started after it would see the timeout early.
        let started = Instant::now();
        let (mut client, server) = pair_with(Settings::default(), settings).await;
        let (mut reader, _writer) = server.split();
        let reading = smol::spawn(async move {
            while reader.recv().await.is_some() {}
            (reader.outcome(), Instant::now())
        });
        // The client answers three pings (recv does that), then stops reading.
        for _ in 0..3 {
            assert!(matches!(client.recv().await, Some(Message::Ping(_))));
        }
        let (outcome, ended) = reading.await;
        assert_eq!(outcome, Some(Outcome::TimedOut(Timeout::KeepAlive)));
        // Three answered rounds of 100 ms, then 100 ms + 200 ms unanswered.
        let took = ended - started;
        assert!(
            took >= Duration::from_millis(600) && took < Duration::from_secs(10),
            "{took:?}"
        );
    });
}

#[test]
fn connect_url_errors() {
    run(async {
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
    });
}

/// `feed` waits while the queue is over its bound and the peer does not read.
#[test]
fn feed_waits_for_a_slow_reader() {
    run(async {
        let buffers = DriverConfig::default().with_max_pending_bytes(64 * 1024);
        let settings = Settings::default().with_buffers(buffers);
        let (mut client, mut server) = pair(settings).await;
        let mut fed = 0;
        let blocked = loop {
            let feed = async {
                client
                    .feed(Message::Binary(vec![1; 16 * 1024]))
                    .await
                    .unwrap();
                true
            };
            let timeout = async {
                Timer::after(Duration::from_millis(100)).await;
                false
            };
            if future::or(feed, timeout).await {
                fed += 1;
                assert!(fed < 1000, "feed never waited");
            } else {
                break fed;
            }
        };
        assert!(client.pending_bytes() <= 64 * 1024 + 16 * 1024 + 14);
        // Once the server reads, everything queued arrives.
        let reading = smol::spawn(async move {
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
        assert_eq!(reading.await, blocked);
    });
}

/// Messages that arrive in one read are given that read's time: the idle timer counts
/// from when their bytes came in, not from when the application got round to each.
#[test]
fn the_idle_timer_counts_from_the_read_that_brought_the_message() {
    run(async {
        let idle = Duration::from_secs(2);
        let settings = Settings::from(Config::default().with_idle_timeout(Some(idle)));
        let (mut client, mut server) = pair_with(Settings::default(), settings).await;
        // Both messages in one write, so the server's first read takes both.
        client.feed(Message::text("one")).await.unwrap();
        client.feed(Message::text("two")).await.unwrap();
        SinkExt::flush(&mut client).await.unwrap();
        let answering = smol::spawn(async move { while client.recv().await.is_some() {} });
        let started = Instant::now();
        assert_eq!(server.recv().await, Some(Message::text("one")));
        // Past the idle deadline before the application looks at the second message.
        Timer::after(Duration::from_secs(3)).await;
        assert_eq!(server.recv().await, Some(Message::text("two")));
        assert_eq!(server.recv().await, None);
        let ended = started.elapsed();
        assert_eq!(server.outcome(), Some(Outcome::TimedOut(Timeout::Idle)));
        // The deadline (2 s after the read) passed during the sleep, so the end comes
        // right after it; counted from the second message's turn it would come at 5 s.
        assert!(
            ended >= Duration::from_secs(3) && ended < Duration::from_secs(4),
            "{ended:?}"
        );
        answering.await;
    });
}
