//! WebSockets over TLS: a `tokio-rustls` server and client with a self-signed
//! certificate made at test time with `rcgen`. The adapter only sees an
//! `AsyncRead + AsyncWrite` stream. The reconnecting client's connector opens TLS over
//! TCP for every attempt, and the client comes back over TLS after the server drops it.
//! Loopback only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sockeye_tokio::reconnect::{
    Backoff, ClientEvent, OpenStream, ReconnectOptions, ReconnectPolicy, ReconnectingClient, Sent,
    StateChange,
};
use sockeye_tokio::{accept, connect, CloseCode, Message, Settings, Url, WebSocket};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn tls_configs() -> (rustls::ServerConfig, rustls::ClientConfig) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (server, client)
}

/// The next connection on `listener`, TLS first, then the WebSocket handshake.
async fn accept_over_tls(
    listener: &TcpListener,
    acceptor: &TlsAcceptor,
) -> WebSocket<tokio_rustls::server::TlsStream<TcpStream>> {
    let (tcp, _) = listener.accept().await.unwrap();
    let tls = acceptor.accept(tcp).await.unwrap();
    accept(tls, Settings::default()).await.unwrap()
}

#[tokio::test]
async fn wss_echo_with_a_self_signed_certificate() {
    let (server_config, client_config) = tls_configs();
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let server = tokio::spawn(async move {
        let mut ws = accept_over_tls(&listener, &acceptor).await;
        while let Some(message) = ws.recv().await {
            if message.is_data() {
                ws.send(message).await.unwrap();
            }
        }
        ws.outcome()
    });

    let connector = TlsConnector::from(Arc::new(client_config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let url = format!("wss://localhost:{}/secure", addr.port());
    let mut ws = connect(tls, &url, Settings::default()).await.unwrap();

    ws.send(Message::text("over tls")).await.unwrap();
    assert_eq!(ws.recv().await, Some(Message::text("over tls")));
    let big = vec![0x5Au8; 300_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await, Some(Message::binary(big)));

    ws.close(CloseCode::NORMAL, "tls done").await.unwrap();
    assert!(matches!(ws.recv().await, Some(Message::Close(_))));
    assert_eq!(ws.recv().await, None);
    assert!(ws.outcome().unwrap().is_clean(), "{:?}", ws.outcome());
    let server_outcome = server.await.unwrap().unwrap();
    assert_eq!(
        server_outcome.to_string(),
        "clean code=1000 reason=tls done"
    );
}

async fn next_message(client: &mut ReconnectingClient<TlsStream<TcpStream>>) -> Message {
    loop {
        let event = client.next_event().await.expect("the client ended early");
        if let ClientEvent::Message(message) = event {
            return message;
        }
    }
}

async fn until_open(client: &mut ReconnectingClient<TlsStream<TcpStream>>) -> Vec<StateChange> {
    let mut changes = Vec::new();
    loop {
        match client.next_event().await.expect("the client ended early") {
            ClientEvent::State(StateChange::Open) => return changes,
            ClientEvent::State(change) => changes.push(change),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_reconnecting_client_comes_back_over_tls() {
    let test = async {
        let (server_config, client_config) = tls_configs();
        let acceptor = TlsAcceptor::from(Arc::new(server_config));
        let connector = TlsConnector::from(Arc::new(client_config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Two connections: the first is cut after one echo (no Close), the second
        // echoes until the client closes.
        let server = tokio::spawn(async move {
            for connection in 0..2 {
                let mut ws = accept_over_tls(&listener, &acceptor).await;
                while let Some(message) = ws.recv().await {
                    if message.is_data() {
                        ws.send(message).await.unwrap();
                        if connection == 0 {
                            // Lost, not closed: the stream ends without a Close (a
                            // `WebSocket` dropped while open would send one).
                            tokio::io::AsyncWriteExt::shutdown(ws.get_mut())
                                .await
                                .unwrap();
                            break;
                        }
                    }
                }
            }
        });

        let opened = Arc::new(AtomicUsize::new(0));
        let tls_connector = {
            let opened = opened.clone();
            move |url: &Url<'_>| -> OpenStream<TlsStream<TcpStream>> {
                assert!(url.is_tls());
                opened.fetch_add(1, Ordering::SeqCst);
                let (connector, host, port) =
                    (connector.clone(), url.host().to_owned(), url.port());
                Box::pin(async move {
                    // The URL names the certificate's host; the socket goes to loopback.
                    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
                    let name = ServerName::try_from(host).map_err(std::io::Error::other)?;
                    connector.connect(name, tcp).await
                })
            }
        };
        let backoff = Backoff::DEFAULT
            .with_initial(Duration::from_millis(50))
            .with_cap(Duration::from_millis(200));
        let options =
            ReconnectOptions::default().with_policy(ReconnectPolicy::DEFAULT.with_backoff(backoff));
        let url = format!("wss://localhost:{port}/");
        let mut client =
            ReconnectingClient::with_connector(url, Settings::default(), options, tls_connector)
                .unwrap();

        until_open(&mut client).await;
        assert_eq!(
            client.send(Message::text("one")).await.unwrap(),
            Sent::Written
        );
        assert_eq!(next_message(&mut client).await, Message::text("one"));

        // The server dropped the first connection: the client reconnects, over TLS.
        let changes = until_open(&mut client).await;
        assert!(
            matches!(&changes[0], StateChange::Closed(outcome) if !outcome.is_clean()),
            "{changes:?}"
        );
        assert_eq!(
            client.send(Message::text("two")).await.unwrap(),
            Sent::Written
        );
        assert_eq!(next_message(&mut client).await, Message::text("two"));
        client.close(CloseCode::NORMAL, "done").unwrap();
        while client.next_event().await.is_some() {}
        server.await.unwrap();
        assert_eq!(opened.load(Ordering::SeqCst), 2);
    };
    tokio::time::timeout(Duration::from_secs(20), test)
        .await
        .expect("the test took too long");
}
