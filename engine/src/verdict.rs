//! The application's answer to a request: [`Verdict`], built from an [`Accept`] or a
//! [`Reject`], so that what only makes sense for one (a subprotocol, a body) cannot be
//! set on the other.

use std::string::String;
use std::vec::Vec;

use sockeye_proto::DeflateConfig;

use crate::handshake::OwnedHeaders;

/// The application's answer to a request (see
/// [`ServerUpgrade::answer`](crate::ServerUpgrade::answer)): accept the upgrade (with a
/// subprotocol, headers, and data `T` for the connection's task), or answer with any
/// other status.
///
/// ```
/// # use sockeye_engine::Verdict;
/// let yes: Verdict = Verdict::accept().with_protocol("chat").with_header("Server", "sockeye").into();
/// let no: Verdict = Verdict::reject(403, "Forbidden").into();
/// assert!(matches!(no, Verdict::Reject(ref reject) if reject.status() == 403));
/// // What the task needs (a room, a user) rides on the acceptance.
/// let room: Verdict<String> = Verdict::accept().with_data(String::from("lobby")).into();
/// # let _ = (yes, room);
/// ```
///
/// A decision function may return an [`Accept`] or a [`Reject`] as it is; one that can
/// answer either way makes each a `Verdict` with `Verdict::from`:
///
/// ```
/// # use sockeye_engine::{RequestHead, Verdict};
/// fn decide(request: &RequestHead) -> Verdict {
///     match request.path() {
///         "/chat" => Verdict::from(Verdict::accept().with_protocol("chat")),
///         "/health" => Verdict::from(Verdict::reject(200, "OK").with_body("ok")),
///         _ => Verdict::from(Verdict::reject(404, "Not Found")),
///     }
/// }
/// # let _ = decide;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<T = ()> {
    /// Accept the upgrade.
    Accept(Accept<T>),
    /// Answer with another status (401, 403, 404 ...; a health check's 200).
    Reject(Reject),
}

impl Verdict {
    /// Accept, without a subprotocol, headers or data.
    pub fn accept() -> Accept {
        Accept {
            protocol: None,
            headers: Vec::new(),
            compression: None,
            data: (),
        }
    }

    /// Answer with `status` and `reason` instead.
    pub fn reject(status: u16, reason: impl Into<String>) -> Reject {
        Reject {
            status,
            reason: reason.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// An acceptance (see [`Verdict::accept`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept<T = ()> {
    pub(crate) protocol: Option<String>,
    pub(crate) headers: OwnedHeaders,
    /// `None`: the settings' policy; `Some(None)`: no compression.
    pub(crate) compression: Option<Option<DeflateConfig>>,
    pub(crate) data: T,
}

impl<T> Accept<T> {
    /// Sets the subprotocol (one the client offered).
    pub fn with_protocol(mut self, chosen: impl Into<String>) -> Self {
        self.protocol = Some(chosen.into());
        self
    }

    /// Adds a response header (`Server`, `Set-Cookie` ...).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Negotiates permessage-deflate with this policy instead of
    /// [`Settings::compression`](crate::Settings::compression): whether and how this
    /// connection compresses (window sizes, context takeover) may depend on the request.
    /// It is agreed only if the client offered it (see
    /// [`RequestHead::deflate_offered`](crate::RequestHead::deflate_offered)) in a form
    /// the policy can honour.
    ///
    /// ```
    /// # use sockeye_engine::{RequestHead, Verdict};
    /// # use sockeye_proto::DeflateConfig;
    /// fn decide(request: &RequestHead) -> Verdict {
    ///     match request.path() {
    ///         // A feed of similar small messages: keep the context between them.
    ///         "/feed" => Verdict::accept()
    ///             .with_compression(DeflateConfig::default().with_context_takeover(12))
    ///             .into(),
    ///         // Already compressed media: do not bother.
    ///         "/video" => Verdict::accept().without_compression().into(),
    ///         _ => Verdict::accept().into(),
    ///     }
    /// }
    /// # let _ = decide;
    /// ```
    pub fn with_compression(mut self, config: DeflateConfig) -> Self {
        self.compression = Some(Some(config));
        self
    }

    /// Declines permessage-deflate for this connection, whatever
    /// [`Settings::compression`](crate::Settings::compression) says.
    pub fn without_compression(mut self) -> Self {
        self.compression = Some(None);
        self
    }

    /// Carries `data` into the connection: what the application decided with the request
    /// (a room from the path, a user from a cookie), handed back with the `WebSocket`.
    pub fn with_data<U>(self, data: U) -> Accept<U> {
        Accept {
            protocol: self.protocol,
            headers: self.headers,
            compression: self.compression,
            data,
        }
    }

    /// The chosen subprotocol.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }
}

/// A refusal with a status of the application's choosing (see [`Verdict::reject`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub(crate) status: u16,
    pub(crate) reason: String,
    pub(crate) headers: OwnedHeaders,
    pub(crate) body: Vec<u8>,
}

impl Reject {
    /// Adds a response header (`WWW-Authenticate`, `Location`, `Content-Type` ...).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the response body; `Content-Length` is written for it.
    ///
    /// ```
    /// # use sockeye_engine::Verdict;
    /// let no = Verdict::reject(401, "Unauthorized")
    ///     .with_header("WWW-Authenticate", "Bearer")
    ///     .with_header("Content-Type", "text/plain")
    ///     .with_body("log in first");
    /// assert_eq!(no.body(), b"log in first");
    /// ```
    pub fn with_body(mut self, content: impl Into<Vec<u8>>) -> Self {
        self.body = content.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl<T> From<Accept<T>> for Verdict<T> {
    fn from(accept: Accept<T>) -> Self {
        Verdict::Accept(accept)
    }
}

impl<T> From<Reject> for Verdict<T> {
    fn from(reject: Reject) -> Self {
        Verdict::Reject(reject)
    }
}
