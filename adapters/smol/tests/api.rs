//! What only smol's reactor can show: split halves waiting on one stream (async-io keeps
//! one waker per direction). The behaviours of the shared implementation are tested once,
//! in `adapters/async/tests/api.rs`, and every adapter runs the scenario suite
//! (`tests/tests/scenarios`).

use std::time::Duration;

use futures_lite::future;
use smol::net::unix::UnixStream;
use smol::Timer;
use sockeye_smol::{accept, connect, CloseCode, DriverConfig, Message, Settings, WebSocket};

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
                        client.feed(Message::ping(vec![1])).await.unwrap();
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

/// The reconnecting client on smol's timers and TCP (its behaviour is tested once, in
/// the workspace's reconnect scenarios): the server drops the first connection, the
/// client comes back after its backoff, and a message goes through the new one.
#[test]
fn the_reconnecting_client_comes_back_on_smols_timers() {
    use sockeye_smol::reconnect::{
        Backoff, ClientEvent, ReconnectOptions, ReconnectPolicy, ReconnectingClient, StateChange,
    };
    run(async {
        let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = smol::spawn(async move {
            let (first, _) = listener.accept().await.unwrap();
            let mut ws = accept(first, Settings::default()).await.unwrap();
            drop(ws.get_mut().shutdown(std::net::Shutdown::Both));
            drop(ws);
            let (second, _) = listener.accept().await.unwrap();
            let mut ws = accept(second, Settings::default()).await.unwrap();
            while let Some(message) = ws.recv().await {
                if message.is_data() {
                    ws.send(message).await.unwrap();
                }
            }
        });
        let backoff = Backoff::DEFAULT
            .with_initial(Duration::from_millis(50))
            .with_cap(Duration::from_millis(100));
        let options =
            ReconnectOptions::default().with_policy(ReconnectPolicy::DEFAULT.with_backoff(backoff));
        let mut client =
            ReconnectingClient::new(format!("ws://{addr}/"), Settings::default(), options).unwrap();
        let mut changes = Vec::new();
        let mut opened = 0;
        while opened < 2 {
            match client.next_event().await.expect("the client runs") {
                ClientEvent::State(change) => {
                    opened += usize::from(change == StateChange::Open);
                    changes.push(change.to_string());
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(
            changes.iter().any(|c| c.starts_with("reconnecting in")),
            "{changes:?}"
        );
        client.send(Message::text("again")).await.unwrap();
        loop {
            match client.next_event().await.expect("the client runs") {
                ClientEvent::Message(Message::Text(text)) => {
                    assert_eq!(text, "again");
                    break;
                }
                ClientEvent::State(change) => panic!("{change}"),
                _ => {}
            }
        }
        client.close(CloseCode::NORMAL, "done").unwrap();
        while client.next_event().await.is_some() {}
        server.await;
    });
}
