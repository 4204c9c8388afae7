//! # sockeye-demo: a chat room in the browser, on Sockeye
//!
//! ```sh
//! cargo run --release -p sockeye-demo            # then open the printed URL
//! cargo run --release -p sockeye-demo -- --tls   # HTTPS; browsers carry wss:// over HTTP/2
//! ```
//!
//! An axum app ([`app`]) serves one self-contained page (HTML, CSS and JS compiled into
//! the binary; nothing is fetched from elsewhere) and its WebSocket, `/ws`, accepted by
//! [`sockeye_hyper::axum::WebSocketUpgrade`] with permessage-deflate. `/stats` counts the
//! WebSockets by the HTTP version they came over: a browser that loaded the page over
//! HTTPS with HTTP/2 opens its `wss://` as an extended CONNECT stream (RFC 8441) on that
//! same connection.
//!
//! The page shows what a WebSocket client lives through: connecting, open (with the
//! HTTP version and compression the server saw), closed with a code and reason (`/kick
//! NAME` in the chat closes NAME with 1008; stopping the server closes everyone with
//! 1001; a killed server is 1006, abnormal), and reconnecting with exponential backoff
//! and full jitter, the policy of `sockeye_proto::reconnect_policy`.
#![forbid(unsafe_code)]

pub mod room;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde::Deserialize;
use sockeye_hyper::axum::WebSocketUpgrade;
use sockeye_hyper::DeflateConfig;
use tokio::net::TcpListener;

pub use room::{Http, Room, Stats};

const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// Everything the page may load: its own origin, nothing else (WebSockets included:
/// `'self'` covers `ws:`/`wss:` to the same host).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The app: `/` (the page, with `/app.js` and `/style.css`), `/ws` (the WebSocket,
/// `?name=NAME`) and `/stats` (JSON).
pub fn app(room: Room) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
        .route("/stats", get(stats))
        // `any`: an HTTP/2 WebSocket is a CONNECT, not a GET.
        .route("/ws", any(websocket))
        .with_state(room)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn stats(State(room): State<Room>) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], Json(room.stats())).into_response()
}

#[derive(Deserialize)]
struct Join {
    name: Option<String>,
}

async fn websocket(
    State(room): State<Room>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(join): Query<Join>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // A page from another site must not talk in this room with the visitor's
    // credentials (cross-site WebSocket hijacking): browsers send Origin, and it must
    // name this server. Clients that are no browser send none.
    if let Some(origin) = ws.head().origin() {
        let host = uri
            .authority()
            .map(|a| a.as_str())
            .or_else(|| headers.get(header::HOST).and_then(|h| h.to_str().ok()))
            .unwrap_or_default();
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if !origin_host.eq_ignore_ascii_case(host) {
            room::log(format_args!(
                "refused a WebSocket from origin {origin} (this server is {host})"
            ));
            return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
        }
    }
    if room.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let http = Http::of(ws.version());
    let peer = peer.to_string();
    ws.compression(DeflateConfig::DEFAULT)
        .max_message_size(room::MAX_MESSAGE_BYTES)
        .on_upgrade(move |socket| async move { room.run(socket, join.name, http, peer).await })
}

/// A TLS configuration with a fresh self-signed certificate for `localhost` and
/// 127.0.0.1, offering HTTP/2 and HTTP/1.1 by ALPN.
pub fn self_signed_tls() -> Result<rustls::ServerConfig, Box<dyn std::error::Error>> {
    let certified = rcgen::generate_simple_self_signed(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])?;
    let cert = CertificateDer::from(certified.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.key_pair.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Serves `app` on `listener` until `shutdown` completes: HTTP/1.1 and HTTP/2, over TLS
/// when `tls` is given (ALPN picks the version), else in clear (HTTP/1.1, and HTTP/2 with
/// prior knowledge). HTTP/2 announces extended CONNECT (RFC 8441), so WebSockets can
/// share its connections.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        // axum::serve speaks HTTP/1.1 and h2c, with extended CONNECT enabled.
        return axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors, say: wait a little rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let service =
            TowerToHyperService::new(app.clone().layer(axum::Extension(ConnectInfo(peer))));
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => stream,
                    _ => return, // a failed or slow TLS handshake
                };
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http2().enable_connect_protocol();
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}
