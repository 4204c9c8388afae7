//! sockeye-hyper end to end on loopback: hyper's HTTP/1.1 upgrade and HTTP/2 extended
//! CONNECT (h2c and TLS with ALPN `h2`), the axum extractor with state and path/query
//! extraction, rejections, a Close on drop, and interop of the HTTP/2 path with
//! independent peers: a raw hyper CONNECT client carrying tokio-tungstenite frames,
//! and axum's own (tungstenite) WebSocket server.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use sockeye_hyper::axum::WebSocketUpgrade;
use sockeye_hyper::{
    connect_h2, Answer, Body, CloseCode, DeflateConfig, Error, IncomingUpgrade, Message, Outcome,
    RequestExtras, Settings, Verdict,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every test's bound: nothing here may hang.
const LIMIT: Duration = Duration::from_secs(20);

async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .expect("the test finished in time")
}

/// Serves `app` with axum::serve (HTTP/1.1 and h2c, extended CONNECT announced).
async fn serve(app: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn echo(mut ws: sockeye_hyper::WebSocket) {
    while let Some(message) = ws.recv().await {
        if message.is_data() && ws.send(message).await.is_err() {
            break;
        }
    }
}

fn echo_app() -> Router {
    Router::new().route(
        "/echo",
        any(|ws: WebSocketUpgrade| async move {
            ws.protocols(["v2", "v1"])
                .compression(DeflateConfig::DEFAULT)
                .on_upgrade(echo)
        }),
    )
}

/// An HTTP/2 connection (h2c) to `addr`.
async fn h2c(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(connection);
    sender
}

async fn round_trip(ws: &mut sockeye_hyper::WebSocket) {
    let big = "sockeye ".repeat(64 * 1024);
    for message in [
        Message::text("hello"),
        Message::binary(vec![1, 2, 3]),
        Message::text(big.clone()),
    ] {
        ws.send(message.clone()).await.unwrap();
        assert_eq!(ws.recv().await, Some(message));
    }
    ws.close(CloseCode::NORMAL, "bye").await.unwrap();
    while ws.recv().await.is_some() {}
    assert!(
        matches!(ws.outcome(), Some(Outcome::Clean { .. })),
        "{:?}",
        ws.outcome()
    );
}

#[tokio::test]
async fn axum_over_http1_negotiates_and_echoes() {
    bounded(async {
        let addr = serve(echo_app()).await;
        let request = sockeye_tokio::ClientRequest::new("127.0.0.1", "/echo")
            .with_port(Some(addr.port()))
            .with_protocols(&["v1"]);
        let tcp = TcpStream::connect(addr).await.unwrap();
        let settings = Settings::default().with_compression(DeflateConfig::DEFAULT);
        let mut ws = sockeye_tokio::connect(tcp, request, settings)
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("v1"));
        assert!(ws.compression().is_some());
        let big = "sockeye ".repeat(64 * 1024);
        ws.send(Message::text(big.clone())).await.unwrap();
        assert_eq!(ws.recv().await, Some(Message::text(big)));
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        while ws.recv().await.is_some() {}
        assert!(matches!(ws.outcome(), Some(Outcome::Clean { .. })));
    })
    .await
}

#[tokio::test]
async fn axum_over_h2c_negotiates_and_echoes() {
    bounded(async {
        let addr = serve(echo_app()).await;
        let mut sender = h2c(addr).await;
        let uri = format!("http://{addr}/echo").parse().unwrap();
        let extras = RequestExtras::new().with_protocol("v1");
        let settings = Settings::default().with_compression(DeflateConfig::DEFAULT);
        let mut ws = connect_h2(&mut sender, uri, &extras, settings)
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("v1"));
        assert!(ws.compression().is_some());
        // A second WebSocket on the same HTTP/2 connection, beside the first.
        let uri = format!("http://{addr}/echo").parse().unwrap();
        let mut second = connect_h2(&mut sender, uri, &RequestExtras::new(), Settings::default())
            .await
            .unwrap();
        assert_eq!(second.protocol(), None);
        assert!(second.compression().is_none());
        round_trip(&mut ws).await;
        round_trip(&mut second).await;
    })
    .await
}

#[derive(Clone)]
struct Rooms {
    greeting: Arc<str>,
}

#[derive(serde::Deserialize)]
struct Who {
    name: String,
}

#[tokio::test]
async fn axum_routes_see_state_path_and_query() {
    bounded(async {
        let app = Router::new()
            .route(
                "/room/{room}",
                any(
                    |State(rooms): State<Rooms>,
                     Path(room): Path<String>,
                     Query(who): Query<Who>,
                     ws: WebSocketUpgrade| async move {
                        ws.on_upgrade(move |mut ws| async move {
                            let hello = format!("{} {} in {room}", rooms.greeting, who.name);
                            let _ = ws.send(Message::text(hello)).await;
                            // Dropped while open: the peer gets a Close, not a bare EOF.
                            drop(ws);
                        })
                    },
                ),
            )
            .with_state(Rooms {
                greeting: Arc::from("welcome"),
            });
        let addr = serve(app).await;
        let url = format!("ws://{addr}/room/lobby?name=ada");
        let mut ws = sockeye_tokio::connect_url(&url, Settings::default())
            .await
            .unwrap();
        assert_eq!(ws.recv().await, Some(Message::text("welcome ada in lobby")));
        let Some(Message::Close(close)) = ws.recv().await else {
            panic!("a Close frame follows");
        };
        assert_eq!(close.map(|c| c.code), Some(CloseCode::NORMAL));
        while ws.recv().await.is_some() {}
        assert!(
            matches!(ws.outcome(), Some(Outcome::Clean { .. })),
            "dropping the server's socket is a normal disconnect: {:?}",
            ws.outcome()
        );
    })
    .await
}

/// Writes `request` on a fresh connection and returns the whole response head.
async fn raw_http1(addr: SocketAddr, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "the server answered before closing");
        response.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(response).unwrap().to_ascii_lowercase()
}

#[tokio::test]
async fn bad_requests_get_the_same_answers_as_accept() {
    bounded(async {
        let addr = serve(echo_app()).await;
        let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        // A plain request (a browser tab, a health check): 400.
        let plain = raw_http1(addr, "GET /echo HTTP/1.1\r\nHost: a\r\n\r\n").await;
        assert!(plain.starts_with("http/1.1 400"), "{plain}");
        // An upgrade with another method: 405 with Allow.
        let post = raw_http1(
            addr,
            &format!(
                "POST /echo HTTP/1.1\r\nHost: a\r\n{upgrade}Sec-WebSocket-Version: 13\r\n\r\n"
            ),
        )
        .await;
        assert!(post.starts_with("http/1.1 405"), "{post}");
        assert!(post.contains("allow: get\r\n"), "{post}");
        // Another version: 426 with the version we speak.
        let old = raw_http1(
            addr,
            &format!("GET /echo HTTP/1.1\r\nHost: a\r\n{upgrade}Sec-WebSocket-Version: 8\r\n\r\n"),
        )
        .await;
        assert!(old.starts_with("http/1.1 426"), "{old}");
        assert!(old.contains("sec-websocket-version: 13\r\n"), "{old}");
        // A bad key: 400.
        let key = raw_http1(
            addr,
            "GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .await;
        assert!(key.starts_with("http/1.1 400"), "{key}");
        // An HTTP/2 request that is no extended CONNECT: 400, and the connection serves on.
        let mut sender = h2c(addr).await;
        let plain = Request::get(format!("http://{addr}/echo"))
            .body(Empty::new())
            .unwrap();
        let response = sender.send_request(plain).await.unwrap();
        assert_eq!(response.status(), 400);
        let uri = format!("http://{addr}/echo").parse().unwrap();
        let mut ws = connect_h2(&mut sender, uri, &RequestExtras::new(), Settings::default())
            .await
            .unwrap();
        round_trip(&mut ws).await;
    })
    .await
}

/// A plain hyper service that decides with a `Verdict`: `/private` is refused with 403
/// and a body, `/chat` accepted with a subprotocol and data.
async fn verdict_service(mut request: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let incoming = match IncomingUpgrade::from_request(&mut request) {
        Ok(incoming) => incoming,
        Err(rejected) => return Ok(rejected.into_response()),
    };
    let verdict: Verdict<&'static str> = match incoming.head().path() {
        "/private" => Verdict::reject(403, "Forbidden")
            .with_header("Content-Type", "text/plain")
            .with_body("members only")
            .into(),
        _ => match incoming.head().select_protocol(&["chat"]) {
            Some(protocol) => Verdict::accept()
                .with_protocol(protocol)
                .with_data("lobby")
                .into(),
            None => Verdict::reject(400, "Bad Request").into(),
        },
    };
    match incoming.answer(verdict, Settings::default()) {
        Answer::Accept {
            response,
            upgrade,
            data,
        } => {
            tokio::spawn(async move {
                let mut ws = upgrade.await.unwrap();
                ws.send(Message::text(data)).await.unwrap();
                echo(ws).await;
            });
            Ok(response)
        }
        Answer::Refuse { response, .. } => Ok(response),
    }
}

/// Serves `verdict_service` over HTTP/1.1 and HTTP/2 (hyper-util's auto builder).
async fn serve_hyper(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http2().enable_connect_protocol();
            let service = service_fn(verdict_service);
            let _ = match tls {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(tcp).await else {
                        return;
                    };
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .await
                }
                None => {
                    builder
                        .serve_connection_with_upgrades(TokioIo::new(tcp), service)
                        .await
                }
            };
        });
    }
}

#[tokio::test]
async fn hyper_verdicts_accept_with_data_and_refuse_with_a_body() {
    bounded(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve_hyper(listener, None));

        // HTTP/1.1
        let request = sockeye_tokio::ClientRequest::new("127.0.0.1", "/chat")
            .with_port(Some(addr.port()))
            .with_protocols(&["chat"]);
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut ws = sockeye_tokio::connect(tcp, request, Settings::default())
            .await
            .unwrap();
        assert_eq!(ws.recv().await, Some(Message::text("lobby")));
        let request =
            sockeye_tokio::ClientRequest::new("127.0.0.1", "/private").with_port(Some(addr.port()));
        let tcp = TcpStream::connect(addr).await.unwrap();
        match sockeye_tokio::connect(tcp, request, Settings::default()).await {
            Err(Error::Rejected(rejected)) => {
                assert_eq!(rejected.status, 403);
                assert_eq!(rejected.body, b"members only");
            }
            other => panic!("403 expected, got {other:?}"),
        }

        // HTTP/2: the same verdicts.
        let mut sender = h2c(addr).await;
        let extras = RequestExtras::new().with_protocol("chat");
        let uri = format!("http://{addr}/chat").parse().unwrap();
        let mut ws = connect_h2(&mut sender, uri, &extras, Settings::default())
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("chat"));
        assert_eq!(ws.recv().await, Some(Message::text("lobby")));
        round_trip(&mut ws).await;
        let uri = format!("http://{addr}/private").parse().unwrap();
        match connect_h2(&mut sender, uri, &RequestExtras::new(), Settings::default()).await {
            Err(Error::Rejected(rejected)) => {
                assert_eq!(rejected.status, 403);
                assert_eq!(rejected.body, b"members only");
                assert!(rejected.body_complete);
            }
            other => panic!("403 expected, got {:?}", other.map(|_| ())),
        }
    })
    .await
}

fn tls_configs() -> (rustls::ServerConfig, rustls::ClientConfig) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    (server, client)
}

#[tokio::test]
async fn http2_over_tls_with_alpn_h2() {
    bounded(async {
        let (server, client) = tls_configs();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        tokio::spawn(serve_hyper(listener, Some(acceptor)));

        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (mut sender, connection) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
            TokioExecutor::new(),
            TokioIo::new(tls),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let extras = RequestExtras::new().with_protocol("chat");
        let uri = format!("https://localhost:{}/chat", addr.port())
            .parse()
            .unwrap();
        let mut ws = connect_h2(&mut sender, uri, &extras, Settings::default())
            .await
            .unwrap();
        assert_eq!(ws.recv().await, Some(Message::text("lobby")));
        round_trip(&mut ws).await;
    })
    .await
}

#[tokio::test]
async fn an_independent_http2_client_talks_to_sockeye() {
    // hyper's own client does the extended CONNECT (no Sockeye handshake code) and
    // tokio-tungstenite frames the stream.
    bounded(async {
        let addr = serve(echo_app()).await;
        let mut sender = h2c(addr).await;
        let mut request = Request::connect(format!("http://{addr}/echo"))
            .version(http::Version::HTTP_2)
            .header("sec-websocket-version", "13")
            .header("sec-websocket-protocol", "v2")
            .body(Empty::<Bytes>::new())
            .unwrap();
        request
            .extensions_mut()
            .insert(hyper::ext::Protocol::from_static("websocket"));
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["sec-websocket-protocol"], "v2");
        assert!(response.headers().get("sec-websocket-accept").is_none());
        let upgraded = hyper::upgrade::on(response).await.unwrap();
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        use tokio_tungstenite::tungstenite::Message as Tung;
        ws.send(Tung::text("over h2")).await.unwrap();
        assert_eq!(ws.next().await.unwrap().unwrap(), Tung::text("over h2"));
        ws.send(Tung::binary(vec![9u8; 100_000])).await.unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Tung::binary(vec![9u8; 100_000])
        );
        ws.close(None).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await
}

#[tokio::test]
async fn sockeye_talks_to_axums_own_http2_websocket_server() {
    // axum's built-in WebSocketUpgrade (tokio-tungstenite) serves extended CONNECT.
    use axum::extract::ws::{Message as AxumMessage, WebSocketUpgrade as AxumUpgrade};
    bounded(async {
        let app = Router::new().route(
            "/echo",
            any(|ws: AxumUpgrade| async move {
                ws.protocols(["v1"]).on_upgrade(|mut socket| async move {
                    while let Some(Ok(message)) = socket.recv().await {
                        let echo = matches!(message, AxumMessage::Text(_) | AxumMessage::Binary(_));
                        if echo && socket.send(message).await.is_err() {
                            break;
                        }
                    }
                })
            }),
        );
        let addr = serve(app).await;
        let mut sender = h2c(addr).await;
        let uri = format!("http://{addr}/echo").parse().unwrap();
        let extras = RequestExtras::new().with_protocol("v1");
        let mut ws = connect_h2(&mut sender, uri, &extras, Settings::default())
            .await
            .unwrap();
        assert_eq!(ws.protocol(), Some("v1"));
        let big = "sockeye ".repeat(64 * 1024);
        for message in [
            Message::text("hello"),
            Message::binary(vec![7; 3]),
            Message::text(big),
        ] {
            ws.send(message.clone()).await.unwrap();
            assert_eq!(ws.recv().await, Some(message));
        }
        ws.close(CloseCode::NORMAL, "bye").await.unwrap();
        while ws.recv().await.is_some() {}
        // axum drops its socket without ending the stream, and hyper then resets it
        // (RST_STREAM), which may discard the Close reply still in flight: the end is
        // seen either way, clean or as that reset.
        match ws.outcome() {
            Some(Outcome::Clean { .. }) | Some(Outcome::Abnormal(_)) => {}
            other => panic!("the connection ended: {other:?}"),
        }
    })
    .await
}

#[tokio::test]
async fn rejections_are_typed_before_any_verdict() {
    let mut request = Request::post("/")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("host", "a")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    assert!(sockeye_hyper::is_upgrade_request(&request));
    let rejected = IncomingUpgrade::from_request(&mut request).unwrap_err();
    assert_eq!(
        rejected.error(),
        Some(sockeye_proto::handshake::RequestError::MethodNotGet)
    );
    assert_eq!(rejected.status(), 405);
    // A valid request without hyper's upgrade handle (built by hand): 426.
    *request.method_mut() = http::Method::GET;
    let rejected = IncomingUpgrade::from_request(&mut request).unwrap_err();
    assert_eq!(rejected.error(), None);
    assert_eq!(rejected.status(), 426);
    let body = rejected
        .into_response()
        .into_body()
        .collect()
        .await
        .unwrap();
    assert!(body.to_bytes().is_empty());
    let plain = Request::get("/").body(()).unwrap();
    assert!(!sockeye_hyper::is_upgrade_request(&plain));
}
