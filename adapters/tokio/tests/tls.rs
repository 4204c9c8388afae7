//! WebSockets over TLS: a `tokio-rustls` server and client with a self-signed
//! certificate made at test time with `rcgen`. The adapter only sees an
//! `AsyncRead + AsyncWrite` stream.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sockeye_tokio::{accept, connect, CloseCode, Message, Settings};
use tokio::net::{TcpListener, TcpStream};
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

#[tokio::test]
async fn wss_echo_with_a_self_signed_certificate() {
    let (server_config, client_config) = tls_configs();
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();

    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut ws = accept(tls, Settings::default()).await.unwrap();
        while let Some(message) = ws.recv().await {
            if message.is_data() {
                ws.send(message).await.unwrap();
            }
        }
        ws.outcome().cloned()
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
    ws.send(Message::Binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await, Some(Message::Binary(big)));

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
