//! [`facade!`](crate::facade): a runtime's names for the one implementation, so that
//! `sockeye-tokio` and `sockeye-smol` are declared, not written twice.

/// Declares a runtime facade in the calling crate: `WebSocket<S>`, `ReadHalf<S>`,
/// `WriteHalf<S>`, the handshake functions and the `reconnect` module, all for runtime
/// `$rt` (whose TCP stream is `$tcp`).
#[macro_export]
macro_rules! facade {
    ($rt:ty, $tcp:ty) => {
        /// An open WebSocket connection over a stream `S` of this runtime (see
        /// [`sockeye_async::WebSocket`]).
        pub type WebSocket<S> = $crate::WebSocket<S, $rt>;
        /// The receiving half of a [`split`](WebSocket::split) connection.
        pub type ReadHalf<S> = $crate::ReadHalf<S, $rt>;
        /// The sending half of a [`split`](WebSocket::split) connection.
        pub type WriteHalf<S> = $crate::WriteHalf<S, $rt>;

        /// Accepts a WebSocket on `stream` (server side), whatever the path and
        /// subprotocols. A bad request gets its 400 / 426 / 431 written before the
        /// stream is closed, and [`Error::Refused`]; a handshake slower than
        /// [`Settings::handshake_timeout`] is [`Error::HandshakeTimeout`].
        pub fn accept<S: $crate::Transport<$rt>>(
            stream: S,
            settings: impl Into<Settings>,
        ) -> impl ::std::future::Future<Output = Result<WebSocket<S>, Error>> {
            $crate::accept::<S, $rt>(stream, settings)
        }

        /// [`accept`], with `decide` looking at the request first (path, query,
        /// headers, offered subprotocols): accept with a subprotocol, or answer with
        /// another status, headers and a body. Plain HTTP requests are shown too
        /// ([`RequestHead::is_upgrade`] is false): answer them with a 404, a health
        /// check's 200, a redirect (accepting one answers 400). An invalid upgrade is
        /// refused without asking.
        pub fn accept_with<S, F, V>(
            stream: S,
            settings: impl Into<Settings>,
            decide: F,
        ) -> impl ::std::future::Future<Output = Result<WebSocket<S>, Error>>
        where
            S: $crate::Transport<$rt>,
            F: FnOnce(&RequestHead) -> V,
            V: Into<Verdict>,
        {
            $crate::accept_with::<S, $rt, F, V>(stream, settings, decide)
        }

        /// [`accept_with`], also handing back the data the acceptance carried
        /// (`Verdict::accept().with_data(room)`): what was decided from the request, for
        /// the connection's task.
        pub fn accept_with_data<S, F, V, T>(
            stream: S,
            settings: impl Into<Settings>,
            decide: F,
        ) -> impl ::std::future::Future<Output = Result<(WebSocket<S>, T), Error>>
        where
            S: $crate::Transport<$rt>,
            F: FnOnce(&RequestHead) -> V,
            V: Into<Verdict<T>>,
        {
            $crate::accept_with_data::<S, $rt, F, V, T>(stream, settings, decide)
        }

        /// [`accept_with`] for a decision that has to wait (a session looked up, an
        /// authorization service asked): `decide` gets the request owned and answers
        /// with a future. The wait counts toward the handshake timeout.
        pub fn accept_with_async<S, F, Fut>(
            stream: S,
            settings: impl Into<Settings>,
            decide: F,
        ) -> impl ::std::future::Future<Output = Result<WebSocket<S>, Error>>
        where
            S: $crate::Transport<$rt>,
            F: FnOnce(RequestHead) -> Fut,
            Fut: ::std::future::Future,
            Fut::Output: Into<Verdict>,
        {
            $crate::accept_with_async::<S, $rt, F, Fut>(stream, settings, decide)
        }

        /// [`accept_with_async`], also handing back the data the acceptance carried.
        pub fn accept_with_data_async<S, F, Fut, T>(
            stream: S,
            settings: impl Into<Settings>,
            decide: F,
        ) -> impl ::std::future::Future<Output = Result<(WebSocket<S>, T), Error>>
        where
            S: $crate::Transport<$rt>,
            F: FnOnce(RequestHead) -> Fut,
            Fut: ::std::future::Future,
            Fut::Output: Into<Verdict<T>>,
        {
            $crate::accept_with_data_async::<S, $rt, F, Fut, T>(stream, settings, decide)
        }

        /// Opens a WebSocket over `stream` (client side; TLS is your stream):
        /// `request` is a URL or a [`ClientRequest`] with subprotocols and headers. A
        /// non-`101` answer is [`Error::Rejected`] with the status, headers and body.
        pub async fn connect<'a, S, Q>(
            stream: S,
            request: Q,
            settings: impl Into<Settings>,
        ) -> Result<WebSocket<S>, Error>
        where
            S: $crate::Transport<$rt>,
            Q: IntoRequest<'a>,
        {
            $crate::connect::<S, $rt, Q>(stream, request, settings).await
        }

        /// Connects to a `ws://` URL over TCP (`TCP_NODELAY`, within
        /// [`Settings::connect_timeout`]); `wss://` is [`Error::TlsRequired`].
        pub async fn connect_url(
            url: &str,
            settings: impl Into<Settings>,
        ) -> Result<WebSocket<$tcp>, Error> {
            $crate::connect_url::<$rt>(url, settings).await
        }

        /// [`connect_url`] with subprotocols and headers (`Authorization`, `Cookie`).
        pub async fn connect_url_with(
            url: &str,
            extras: &RequestExtras,
            settings: impl Into<Settings>,
        ) -> Result<WebSocket<$tcp>, Error> {
            $crate::connect_url_with::<$rt>(url, extras, settings).await
        }

        /// The reconnecting client (see [`sockeye_async::reconnecting_client`]).
        pub mod reconnect {
            pub use $crate::reconnecting_client::{
                Backoff, ClientEvent, GiveUp, Multiplier, NotSent, OfflineSends, OpenStream,
                ReconnectOptions, ReconnectPolicy, SendError, Sent, StateChange, Unsent,
            };

            /// A WebSocket client that stays connected (see
            /// [`sockeye_async::ReconnectingClient`]).
            pub type ReconnectingClient<S = $tcp> = $crate::ReconnectingClient<S, $rt>;
            /// The handle given to the `on_connect` hook after every (re)connect.
            pub type OnConnect<'a, S = $tcp> = $crate::reconnecting_client::OnConnect<'a, S, $rt>;
        }
        pub use reconnect::{ClientEvent, ReconnectingClient};

        pub use $crate::__engine::{
            Abnormal, Bytes, CloseReason, DriverConfig, FromUtf8Error, IntoRequest, Message,
            Outcome, PreparedMessage, Refusal, RejectedResponse, RequestExtras, RequestHead,
            Settings, Utf8Bytes, Verdict,
        };
        pub use $crate::__proto::handshake::{ClientRequest, HeadLimits, Url};
        pub use $crate::__proto::{
            Boundary, CloseCode, Config, DataKind, DeflateConfig, DeflateParams, Event, KeepAlive,
            Role, State, Timeout,
        };
        pub use $crate::{Error, Transport, TrySendError};
    };
}
