//! With the `tracing` feature, a connection's life shows as events in its span: the
//! handshake's result and the end with its outcome, under the target `sockeye`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use sockeye_tokio::{accept, connect, CloseCode, Message, Settings};
use tokio::io::duplex;

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_connection_is_traced_from_handshake_to_outcome() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("sockeye=debug")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (a, b) = duplex(1 << 16);
            let server = tokio::spawn(async move {
                let mut ws = accept(a, Settings::default()).await.unwrap();
                while ws.recv().await.is_some() {}
            });
            let mut client = connect(b, "ws://localhost/feed", Settings::default())
                .await
                .unwrap();
            client.send(Message::text("hi")).await.unwrap();
            client.close(CloseCode::NORMAL, "bye").await.unwrap();
            while client.recv().await.is_some() {}
            server.await.unwrap();
        });
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("upgrade accepted"), "{log}");
    assert!(log.contains("path=\"/feed\""), "{log}");
    assert!(log.contains("upgrade accepted by the server"), "{log}");
    // Both ends report their end inside their connection's span.
    let ends: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connection ended"))
        .collect();
    assert_eq!(ends.len(), 2, "{log}");
    assert!(
        ends.iter()
            .any(|l| l.contains("websocket{role=Server}")
                && l.contains("clean code=1000 reason=bye")),
        "{log}"
    );
    assert!(
        ends.iter().any(|l| l.contains("websocket{role=Client}")),
        "{log}"
    );
}
