//! WebSockets over TLS with `tokio-rustls`: a `wss://` echo server with a self-signed
//! certificate made at start-up (`rcgen`), and a client that trusts it.
//!
//! ```text
//! cargo run -p sockeye-tokio --example tls
//! ```
//!
//! The adapter never sees TLS: `accept` and `connect` take any
//! `AsyncRead + AsyncWrite + Unpin` stream, here a `tokio_rustls` server or client stream.

use std::error::Error;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sockeye_tokio::{accept, connect, CloseCode, Message, Settings};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    // A certificate for "localhost", and a client that trusts only it.
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();

    // The server: TLS first, then the WebSocket handshake on the TLS stream.
    let acceptor = TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("listening on wss://localhost:{}", addr.port());
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let tls = acceptor.accept(tcp).await?;
        let mut ws = accept(tls, Settings::default()).await?;
        while let Some(message) = ws.recv().await {
            if message.is_data() {
                ws.send(message).await?;
            }
        }
        println!("server: closed {}", ws.outcome().expect("ended"));
        Ok::<_, Box<dyn Error + Send + Sync>>(())
    });

    // The client: connect TLS, then the WebSocket handshake.
    let connector = TlsConnector::from(Arc::new(client_config));
    let tcp = TcpStream::connect(addr).await?;
    let tls = connector
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let url = format!("wss://localhost:{}/", addr.port());
    let mut ws = connect(tls, &url, Settings::default()).await?;
    ws.send(Message::text("hello over TLS")).await?;
    if let Some(Message::Text(text)) = ws.recv().await {
        println!("< {text}");
    }
    ws.close(CloseCode::NORMAL, "bye").await?;
    while ws.recv().await.is_some() {}
    println!("client: closed {}", ws.outcome().expect("ended"));
    server.await?.map_err(|e| e.to_string())?;
    Ok(())
}
