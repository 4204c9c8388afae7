//! The demo's server end to end on loopback, with Sockeye clients over HTTP/1.1 and
//! HTTP/2 (h2c): the room's protocol, its closes (1008, 1003, 1001), `/stats` per HTTP
//! version, the origin check and the page. The browser side is
//! `scripts/node/demo_test.mjs`.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use sockeye_demo::{app, serve, Room};
use sockeye_hyper::DeflateConfig;
use sockeye_hyper::{connect_h2, CloseCode, Error, Message, RequestExtras, Settings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type H1 = sockeye_tokio::WebSocket<TcpStream>;

const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("the test finished in time")
}

async fn start() -> (SocketAddr, Room) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let room = Room::new();
    tokio::spawn(serve(
        listener,
        app(room.clone()),
        None,
        std::future::pending(),
    ));
    (addr, room)
}

async fn join_h1(addr: SocketAddr, name: &str) -> (H1, Value) {
    let settings = Settings::default().with_compression(DeflateConfig::DEFAULT);
    let mut ws = sockeye_tokio::connect_url(&format!("ws://{addr}/ws?name={name}"), settings)
        .await
        .unwrap();
    let welcome = event(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

async fn join_h2(addr: SocketAddr, name: &str) -> (sockeye_hyper::WebSocket, Value) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let uri = format!("http://{addr}/ws?name={name}").parse().unwrap();
    let mut ws = connect_h2(&mut sender, uri, &RequestExtras::new(), Settings::default())
        .await
        .unwrap();
    let welcome = event(&mut ws).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (ws, welcome)
}

/// The next event (JSON text message), skipping heartbeat answers.
async fn event<S, R>(ws: &mut sockeye_async::WebSocket<S, R>) -> Value
where
    S: sockeye_async::Transport<R>,
    R: sockeye_async::Runtime,
{
    loop {
        match ws.recv().await {
            Some(Message::Text(text)) => {
                let value: Value = serde_json::from_str(&text).unwrap();
                if value["type"] != "pong" {
                    return value;
                }
            }
            Some(Message::Close(close)) => {
                let close = close.expect("a close code");
                return serde_json::json!({"type": "close", "code": close.code.0, "reason": close.reason});
            }
            Some(_) => {}
            None => return serde_json::json!({"type": "end"}),
        }
    }
}

async fn say<S, R>(ws: &mut sockeye_async::WebSocket<S, R>, text: &str)
where
    S: sockeye_async::Transport<R>,
    R: sockeye_async::Runtime,
{
    let json = serde_json::json!({"type": "say", "text": text}).to_string();
    ws.send(Message::text(json)).await.unwrap();
}

async fn get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).await.unwrap();
    response
}

async fn stats(addr: SocketAddr) -> Value {
    let response = get(addr, "/stats").await;
    let body = response.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap()
}

#[tokio::test]
async fn chat_over_http1_and_http2_counted_per_version() {
    bounded(async {
        let (addr, _room) = start().await;
        let (mut alice, welcome) = join_h1(addr, "alice").await;
        assert_eq!(welcome["you"], "alice");
        assert_eq!(welcome["http"], "HTTP/1.1");
        assert_eq!(welcome["compression"], true);
        let (mut bob, welcome) = join_h2(addr, "bob").await;
        assert_eq!(welcome["http"], "HTTP/2");
        assert_eq!(welcome["users"].as_array().unwrap().len(), 2);
        let joined = event(&mut alice).await;
        assert_eq!(
            (
                joined["type"].as_str(),
                joined["name"].as_str(),
                joined["http"].as_str()
            ),
            (Some("join"), Some("bob"), Some("HTTP/2"))
        );

        say(&mut alice, "  hello bob  ").await;
        for ws_event in [event(&mut alice).await, event(&mut bob).await] {
            assert_eq!(ws_event["type"], "chat");
            assert_eq!(ws_event["from"], "alice");
            assert_eq!(ws_event["text"], "hello bob");
            assert_eq!(ws_event["seq"], 1);
        }
        // A name already taken gets a suffix; history comes with the welcome.
        let (mut alice2, welcome) = join_h1(addr, "alice").await;
        assert_eq!(welcome["you"], "alice-2");
        assert_eq!(welcome["history"][0]["text"], "hello bob");

        let numbers = stats(addr).await;
        assert_eq!(
            numbers["http1"],
            serde_json::json!({"accepted": 2, "open": 2}),
            "{numbers}"
        );
        assert_eq!(
            numbers["http2"],
            serde_json::json!({"accepted": 1, "open": 1}),
            "{numbers}"
        );
        assert_eq!(numbers["compressed"], 2);
        assert_eq!(numbers["messages"], 1);

        // Leaving is seen by the others, and counted.
        bob.close(CloseCode::NORMAL, "bye").await.unwrap();
        while bob.recv().await.is_some() {}
        let _ = event(&mut alice).await; // alice-2 joined
        let left = event(&mut alice).await;
        assert_eq!(
            (
                left["type"].as_str(),
                left["name"].as_str(),
                left["why"].as_str()
            ),
            (Some("leave"), Some("bob"), Some("left (closed 1000)"))
        );
        assert_eq!(
            stats(addr).await["http2"],
            serde_json::json!({"accepted": 1, "open": 0})
        );
        alice2.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await
}

#[tokio::test]
async fn kick_and_broken_rules_close_with_a_code_and_reason() {
    bounded(async {
        let (addr, _room) = start().await;
        let (mut alice, _) = join_h1(addr, "alice").await;
        let (mut bob, _) = join_h2(addr, "bob").await;
        let _ = event(&mut alice).await; // bob joined
        say(&mut bob, "/kick alice too loud").await;
        assert_eq!(
            event(&mut alice).await,
            serde_json::json!({"type": "close", "code": 1008, "reason": "kicked by bob: too loud"})
        );
        while alice.recv().await.is_some() {}
        let info = event(&mut bob).await;
        assert_eq!(info["text"], "alice was kicked", "{info}");
        let left = event(&mut bob).await;
        assert_eq!(left["why"], "closed by the server (1008 kicked by bob: too loud)", "{left}");

        say(&mut bob, "/kick nobody").await;
        assert_eq!(event(&mut bob).await["text"], "nobody here is called \"nobody\"");

        let (mut long, _) = join_h1(addr, "long").await;
        say(&mut long, &"é".repeat(1001)).await;
        assert_eq!(
            event(&mut long).await,
            serde_json::json!({"type": "close", "code": 1008, "reason": "message too long: 1001 characters, the limit is 1000"})
        );
        let (mut binary, _) = join_h1(addr, "binary").await;
        binary.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(event(&mut binary).await["code"], 1003);
        let (mut garbage, _) = join_h1(addr, "garbage").await;
        garbage.send(Message::text("hello?")).await.unwrap();
        assert_eq!(event(&mut garbage).await["code"], 1008);
        // Over the transport's limit: Sockeye itself closes with 1009.
        let (mut huge, _) = join_h1(addr, "huge").await;
        huge.send(Message::text("x".repeat(sockeye_demo::room::MAX_MESSAGE_BYTES + 1)))
            .await
            .unwrap();
        assert_eq!(event(&mut huge).await["code"], 1009);
    })
    .await
}

#[tokio::test]
async fn shutdown_closes_everyone_with_1001_and_refuses_newcomers() {
    bounded(async {
        let (addr, room) = start().await;
        let (mut alice, _) = join_h1(addr, "alice").await;
        let (mut bob, _) = join_h2(addr, "bob").await;
        let _ = event(&mut alice).await;
        let left = room.shutdown("the server is shutting down", Duration::from_secs(5));
        let reading = async {
            let expected = serde_json::json!({"type": "close", "code": 1001, "reason": "the server is shutting down"});
            assert_eq!(event(&mut alice).await, expected);
            assert_eq!(event(&mut bob).await, expected);
            while alice.recv().await.is_some() {}
            while bob.recv().await.is_some() {}
        };
        let (left, ()) = tokio::join!(left, reading);
        assert_eq!(left, 0, "every connection task finished");
        match sockeye_tokio::connect_url(&format!("ws://{addr}/ws"), Settings::default()).await {
            Err(Error::Rejected(rejected)) => assert_eq!(rejected.status, 503),
            other => panic!("503 expected, got {:?}", other.map(|_| ())),
        }
    })
    .await
}

#[tokio::test]
async fn the_page_is_served_and_other_origins_are_refused() {
    bounded(async {
        let (addr, _room) = start().await;
        let page = get(addr, "/").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.contains("content-security-policy: default-src 'none'"));
        assert!(page.contains("<script src=\"/app.js\""));
        for asset in ["/app.js", "/style.css"] {
            assert!(get(addr, asset).await.starts_with("HTTP/1.1 200"));
        }
        let foreign = RequestExtras::new().with_header("Origin", "http://evil.example");
        match sockeye_tokio::connect_url_with(
            &format!("ws://{addr}/ws"),
            &foreign,
            Settings::default(),
        )
        .await
        {
            Err(Error::Rejected(rejected)) => assert_eq!(rejected.status, 403),
            other => panic!("403 expected, got {:?}", other.map(|_| ())),
        }
        let own = RequestExtras::new().with_header("Origin", format!("http://{addr}"));
        let mut ws =
            sockeye_tokio::connect_url_with(&format!("ws://{addr}/ws"), &own, Settings::default())
                .await
                .unwrap();
        let welcome = event(&mut ws).await;
        assert_eq!(welcome["you"], "guest-1");
        ws.send(Message::text(r#"{"type":"ping","id":7}"#))
            .await
            .unwrap();
        assert_eq!(
            ws.recv().await,
            Some(Message::text(r#"{"type":"pong","id":7}"#))
        );
    })
    .await
}

#[tokio::test]
async fn a_flood_is_held_to_the_rate_limit() {
    bounded(async {
        let (addr, _room) = start().await;
        let (mut flood, _) = join_h1(addr, "flood").await;
        let burst = sockeye_demo::room::LINES_BURST;
        for i in 0..burst + 3 {
            say(&mut flood, &format!("line {i}")).await;
        }
        let mut said = 0;
        let mut refused = 0;
        while said + refused < burst + 3 {
            let event = event(&mut flood).await;
            match event["type"].as_str() {
                Some("chat") => said += 1,
                Some("info") => {
                    assert!(
                        event["text"].as_str().unwrap().starts_with("slow down"),
                        "{event}"
                    );
                    refused += 1;
                }
                _ => panic!("{event}"),
            }
        }
        assert!(
            said >= burst && refused >= 1,
            "{said} said, {refused} refused"
        );
        // The connection stays open: the next line, a moment later, goes through.
        tokio::time::sleep(Duration::from_millis(600)).await;
        say(&mut flood, "calm again").await;
        assert_eq!(event(&mut flood).await["text"], "calm again");
    })
    .await
}
