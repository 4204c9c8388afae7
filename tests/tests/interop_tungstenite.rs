//! Interop with `tokio-tungstenite` over loopback TCP: our server with its client, and
//! our client with its server.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use sockeye_tokio::{accept, connect_url, CloseCode, Message, Outcome, Settings};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as TMessage;

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn our_server_with_a_tungstenite_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept(tcp, Settings::default()).await.unwrap();
        let mut seen = Vec::new();
        while let Some(message) = ws.recv().await {
            if message.is_data() {
                ws.send(message.clone()).await.unwrap();
            }
            seen.push(message);
        }
        (seen, ws.outcome())
    });

    let test = async {
        let url = format!("ws://{addr}/interop");
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut peer, response) = tokio_tungstenite::client_async(url.as_str(), tcp)
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        peer.send(TMessage::text("héllo")).await.unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), TMessage::text("héllo"));
        let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        peer.send(TMessage::binary(big.clone())).await.unwrap();
        assert_eq!(peer.next().await.unwrap().unwrap(), TMessage::binary(big));
        peer.send(TMessage::Ping(b"ping".to_vec().into()))
            .await
            .unwrap();
        assert_eq!(
            peer.next().await.unwrap().unwrap(),
            TMessage::Pong(b"ping".to_vec().into())
        );
        peer.close(Some(CloseFrame {
            code: TCloseCode::Normal,
            reason: "tungstenite done".into(),
        }))
        .await
        .unwrap();
        // Our reply completes the handshake; then the stream ends.
        while let Some(message) = peer.next().await {
            match message {
                Ok(TMessage::Close(frame)) => {
                    assert_eq!(frame.unwrap().code, TCloseCode::Normal)
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => break,
            }
        }
        server.await.unwrap()
    };
    let (seen, outcome) = tokio::time::timeout(LIMIT, test).await.unwrap();
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert_eq!(
        outcome.unwrap().to_string(),
        "clean code=1000 reason=tungstenite done"
    );
}

#[tokio::test]
async fn our_client_with_a_tungstenite_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut peer = tokio_tungstenite::accept_async(tcp).await.unwrap();
        // Echo until the client closes (tungstenite answers the Close itself).
        while let Some(Ok(message)) = peer.next().await {
            if message.is_text() || message.is_binary() {
                peer.send(message).await.unwrap();
            }
        }
    });

    let test = async {
        let mut ws = connect_url(&format!("ws://{addr}/"), Settings::default())
            .await
            .unwrap();
        ws.send(Message::text("from sockeye ✓")).await.unwrap();
        assert_eq!(ws.recv().await, Some(Message::text("from sockeye ✓")));
        let big = vec![0xC3u8; 1 << 20];
        ws.send(Message::binary(big.clone())).await.unwrap();
        assert_eq!(ws.recv().await, Some(Message::binary(big)));
        ws.send(Message::ping(b"p".to_vec())).await.unwrap();
        assert_eq!(ws.recv().await, Some(Message::pong(b"p".to_vec())));
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        assert!(matches!(ws.recv().await, Some(Message::Close(_))));
        assert_eq!(ws.recv().await, None);
        server.await.unwrap();
        ws.outcome()
    };
    let outcome = tokio::time::timeout(LIMIT, test).await.unwrap().unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Clean {
                initiated_locally: true,
                ..
            }
        ),
        "{outcome:?}"
    );
}
