//! The axum extractor, named and shaped like axum's own `WebSocketUpgrade`, so that
//! switching is a change of `use` line.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use axum_core::body::Body as AxumBody;
use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use sockeye_engine::{RequestHead, Settings, Verdict};
use sockeye_proto::DeflateConfig;
use sockeye_tokio::Error;

use crate::server::{Answer, IncomingUpgrade, Rejected, WebSocket};

/// Extractor for a WebSocket upgrade in an axum handler, over HTTP/1.1 or HTTP/2
/// (extended CONNECT: route it with `any(..)`, since it is not a `GET`, and serve with
/// HTTP/2's `enable_connect_protocol`, as `axum::serve` does with its `http2` feature).
///
/// It mirrors axum's `WebSocketUpgrade` ([`on_upgrade`](Self::on_upgrade),
/// [`protocols`](Self::protocols), [`requested_protocols`](Self::requested_protocols),
/// [`selected_protocol`](Self::selected_protocol),
/// [`on_failed_upgrade`](Self::on_failed_upgrade), the size settings) and adds what
/// Sockeye's connections have: the typed [`Outcome`](sockeye_tokio::Outcome) of every
/// connection, keepalive on by default, a Close sent when the socket is dropped,
/// permessage-deflate ([`compression`](Self::compression)) and every [`Settings`]. The
/// handler is the verdict: it may await anything (a session store) and return any other
/// response instead of upgrading.
///
/// ```no_run
/// use axum::extract::Path;
/// use axum::routing::any;
/// use axum::Router;
/// use axum::response::Response;
/// use sockeye_hyper::axum::WebSocketUpgrade;
/// use sockeye_hyper::Message;
///
/// async fn chat(Path(room): Path<String>, ws: WebSocketUpgrade) -> Response {
///     ws.protocols(["chat.v1"]).on_upgrade(move |mut socket| async move {
///         while let Some(message) = socket.recv().await {
///             if let Message::Text(text) = message {
///                 let _ = socket.send(Message::text(format!("{room}: {text}"))).await;
///             }
///         }
///         println!("closed: {:?}", socket.outcome());
///     })
/// }
///
/// let app: Router = Router::new().route("/chat/{room}", any(chat));
/// # let _ = app;
/// ```
pub struct WebSocketUpgrade<F = DefaultOnFailedUpgrade> {
    incoming: IncomingUpgrade,
    settings: Settings,
    protocol: Option<String>,
    compression: Option<Option<DeflateConfig>>,
    headers: Vec<(String, Vec<u8>)>,
    on_failed_upgrade: F,
}

impl<F> fmt::Debug for WebSocketUpgrade<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocketUpgrade")
            .field("incoming", &self.incoming)
            .field("settings", &self.settings)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for WebSocketUpgrade {
    type Rejection = WebSocketUpgradeRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let incoming = IncomingUpgrade::from_parts(parts).map_err(WebSocketUpgradeRejection)?;
        Ok(WebSocketUpgrade {
            incoming,
            settings: Settings::default(),
            protocol: None,
            compression: None,
            headers: Vec::new(),
            on_failed_upgrade: DefaultOnFailedUpgrade,
        })
    }
}

impl<F> WebSocketUpgrade<F> {
    /// Chooses the subprotocol: the first the client offers (in its order of preference)
    /// that `protocols` holds; none if there is none.
    pub fn protocols<I>(mut self, protocols: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<Cow<'static, str>>,
    {
        let supported: Vec<Cow<'static, str>> = protocols.into_iter().map(Into::into).collect();
        let supported: Vec<&str> = supported.iter().map(|p| p.as_ref()).collect();
        self.protocol = self
            .incoming
            .head()
            .select_protocol(&supported)
            .map(String::from);
        self
    }

    /// The subprotocols the client offers, in its order of preference.
    pub fn requested_protocols(&self) -> impl Iterator<Item = &str> {
        self.incoming.head().protocols().iter().map(String::as_str)
    }

    /// Chooses this subprotocol, which must be one the client offered (else the answer
    /// is a `500`).
    pub fn set_selected_protocol(&mut self, protocol: impl Into<String>) {
        self.protocol = Some(protocol.into());
    }

    /// The chosen subprotocol.
    pub fn selected_protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The request: path, query, host, origin, offers, headers.
    pub fn head(&self) -> &RequestHead {
        self.incoming.head()
    }

    /// The HTTP version the request came over: `HTTP/1.1`, or `HTTP/2` for an extended
    /// CONNECT (RFC 8441).
    pub fn version(&self) -> http::Version {
        self.incoming.version()
    }

    /// Every setting of the connection at once (replaces those set before).
    pub fn settings(mut self, settings: impl Into<Settings>) -> Self {
        self.settings = settings.into();
        self
    }

    /// The largest message accepted (64 MiB by default); a larger one ends the
    /// connection with 1009.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.settings.protocol.max_message_size = bytes as u64;
        self
    }

    /// The largest frame accepted (by default as large as a message).
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.settings.protocol.max_frame_size = bytes as u64;
        self
    }

    /// The read buffer (64 KiB by default; held only while a read is in progress).
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.settings.buffers.read_buffer_size = bytes;
        self
    }

    /// The bound of the send queue (1 MiB by default), beyond which sends wait.
    pub fn max_write_buffer_size(mut self, bytes: usize) -> Self {
        self.settings.buffers.max_pending_bytes = bytes;
        self
    }

    /// Negotiates permessage-deflate with this policy, if the client offers it.
    pub fn compression(mut self, config: DeflateConfig) -> Self {
        self.compression = Some(Some(config));
        self
    }

    /// Declines permessage-deflate, whatever the settings say.
    pub fn without_compression(mut self) -> Self {
        self.compression = Some(None);
        self
    }

    /// Adds a header to the response (`Set-Cookie`, `Server` ...).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// What to do when the upgrade fails after the response was sent (the client went
    /// away first): by default nothing.
    pub fn on_failed_upgrade<C: OnFailedUpgrade>(self, callback: C) -> WebSocketUpgrade<C> {
        WebSocketUpgrade {
            incoming: self.incoming,
            settings: self.settings,
            protocol: self.protocol,
            compression: self.compression,
            headers: self.headers,
            on_failed_upgrade: callback,
        }
    }

    /// Accepts: returns the response (`101`, or `200` over HTTP/2) and runs `callback`
    /// with the [`WebSocket`] in a new task once the connection is handed over.
    pub fn on_upgrade<C, Fut>(self, callback: C) -> Response
    where
        C: FnOnce(WebSocket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
        F: OnFailedUpgrade,
    {
        let mut accept = Verdict::accept();
        if let Some(protocol) = self.protocol {
            accept = accept.with_protocol(protocol);
        }
        for (name, value) in self.headers {
            accept = accept.with_header(name, value);
        }
        accept = match self.compression {
            Some(Some(config)) => accept.with_compression(config),
            Some(None) => accept.without_compression(),
            None => accept,
        };
        match self.incoming.answer(accept, self.settings) {
            Answer::Accept {
                response, upgrade, ..
            } => {
                let on_failed_upgrade = self.on_failed_upgrade;
                tokio::spawn(async move {
                    match upgrade.await {
                        Ok(socket) => callback(socket).await,
                        Err(error) => on_failed_upgrade.call(error),
                    }
                });
                response.map(AxumBody::new)
            }
            Answer::Refuse { response, .. } => response.map(AxumBody::new),
        }
    }
}

/// What [`WebSocketUpgrade::on_failed_upgrade`] calls.
pub trait OnFailedUpgrade: Send + 'static {
    /// Called with the error.
    fn call(self, error: Error);
}

impl<F: FnOnce(Error) + Send + 'static> OnFailedUpgrade for F {
    fn call(self, error: Error) {
        self(error)
    }
}

/// The default [`OnFailedUpgrade`]: does nothing.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct DefaultOnFailedUpgrade;

impl OnFailedUpgrade for DefaultOnFailedUpgrade {
    fn call(self, _error: Error) {}
}

/// Why [`WebSocketUpgrade`] could not be extracted: the request is not a valid upgrade.
/// As a response it is the `400` / `405` / `426` / `431` the core chose.
#[derive(Debug)]
pub struct WebSocketUpgradeRejection(pub Rejected);

impl fmt::Display for WebSocketUpgradeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for WebSocketUpgradeRejection {}

impl IntoResponse for WebSocketUpgradeRejection {
    fn into_response(self) -> Response {
        self.0.into_response().map(AxumBody::new)
    }
}
