//! [`ReadHalf`] and [`WriteHalf`]: one connection used from two tasks.
//!
//! Both halves lock the same [`Core`]. Every registration with the stream or the timer
//! is made with one proxy waker that wakes both halves, so neither loses a wakeup when
//! the other polls the same socket (a stream keeps one waker per direction). A writer
//! that changes the timers (a Close arms the close timer) or ends the connection wakes
//! the reader so it re-arms or finishes.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_core::Stream;
use futures_sink::Sink;
use sockeye_engine::{Message, Outcome, PreparedMessage};
use sockeye_proto::{CloseCode, DataKind, DeflateParams, Event};

use crate::connection::Core;
use crate::runtime::{Runtime, Transport};
use crate::{Error, WebSocket};

#[derive(Debug, Default)]
struct Wakers {
    reader: Mutex<Option<Waker>>,
    writer: Mutex<Option<Waker>>,
}

fn take(slot: &Mutex<Option<Waker>>) -> Option<Waker> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn store(slot: &Mutex<Option<Waker>>, waker: &Waker) {
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    match &*slot {
        Some(stored) if stored.will_wake(waker) => {}
        _ => *slot = Some(waker.clone()),
    }
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(waker) = take(&self.reader) {
            waker.wake();
        }
        if let Some(waker) = take(&self.writer) {
            waker.wake();
        }
    }
}

#[derive(Debug)]
struct Shared<S: Transport<R>, R: Runtime> {
    core: Mutex<Core<S, R>>,
    wakers: Arc<Wakers>,
    proxy: Waker,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    Reader,
    Writer,
}

impl<S: Transport<R>, R: Runtime> Shared<S, R> {
    fn lock(&self) -> MutexGuard<'_, Core<S, R>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core with the proxy waker, after registering this half's waker.
    fn poll<T>(
        &self,
        half: Half,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Core<S, R>, &mut Context<'_>) -> T,
    ) -> T {
        match half {
            Half::Reader => store(&self.wakers.reader, cx.waker()),
            Half::Writer => store(&self.wakers.writer, cx.waker()),
        }
        let mut proxy_cx = Context::from_waker(&self.proxy);
        let mut core = self.lock();
        let deadline = core.deadline();
        let ended = core.outcome().is_some();
        let result = f(&mut core, &mut proxy_cx);
        let changed = core.deadline() != deadline || core.outcome().is_some() != ended;
        drop(core);
        if half == Half::Writer && changed {
            if let Some(reader) = take(&self.wakers.reader) {
                reader.wake();
            }
        }
        result
    }

    /// A synchronous call from the writer (no waker to register).
    fn call<T>(&self, f: impl FnOnce(&mut Core<S, R>) -> T) -> T {
        let mut core = self.lock();
        let deadline = core.deadline();
        let result = f(&mut core);
        let changed = core.deadline() != deadline;
        drop(core);
        if changed {
            if let Some(reader) = take(&self.wakers.reader) {
                reader.wake();
            }
        }
        result
    }
}

pub(crate) fn split<S: Transport<R>, R: Runtime>(
    core: Core<S, R>,
) -> (ReadHalf<S, R>, WriteHalf<S, R>) {
    let wakers = Arc::new(Wakers::default());
    let shared = Arc::new(Shared {
        core: Mutex::new(core),
        proxy: Waker::from(wakers.clone()),
        wakers,
    });
    (
        ReadHalf {
            shared: shared.clone(),
        },
        WriteHalf { shared },
    )
}

/// The two halves, handed back by a [`ReadHalf::reunite`] that does not match.
pub type Halves<S, R> = (ReadHalf<S, R>, WriteHalf<S, R>);

/// The receiving half of a [`WebSocket::split`] connection. Polling it also writes
/// Pongs and close replies, fires timers and finishes the connection, so keep a task
/// reading it. Its futures are cancel-safe, as [`WebSocket::recv`]'s are.
#[derive(Debug)]
pub struct ReadHalf<S: Transport<R>, R: Runtime> {
    shared: Arc<Shared<S, R>>,
}

/// The sending half of a [`WebSocket::split`] connection.
#[derive(Debug)]
pub struct WriteHalf<S: Transport<R>, R: Runtime> {
    shared: Arc<Shared<S, R>>,
}

impl<S: Transport<R>, R: Runtime> ReadHalf<S, R> {
    /// The next message, or `None` once the connection is over (see
    /// [`WebSocket::recv`]).
    pub async fn recv(&mut self) -> Option<Message> {
        poll_fn(|cx| {
            self.shared
                .poll(Half::Reader, cx, |core, cx| core.poll_recv(cx))
        })
        .await
    }

    /// The next raw event, borrowed (see [`WebSocket::recv_with`]).
    pub async fn recv_with<T>(&mut self, f: impl FnOnce(Event<'_>) -> T) -> Option<T> {
        let mut f = Some(f);
        poll_fn(|cx| {
            self.shared.poll(Half::Reader, cx, |core, cx| {
                core.poll_event_with(cx, &mut f)
            })
        })
        .await
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.shared.lock().outcome().cloned()
    }

    /// The permessage-deflate parameters agreed in the handshake (see
    /// [`WebSocket::compression`]).
    pub fn compression(&self) -> Option<DeflateParams> {
        self.shared.lock().driver.compression()
    }

    /// Puts the halves back together (`Err` gives them back if they are not a pair).
    pub fn reunite(self, writer: WriteHalf<S, R>) -> Result<WebSocket<S, R>, Halves<S, R>> {
        if !Arc::ptr_eq(&self.shared, &writer.shared) {
            return Err((self, writer));
        }
        drop(writer);
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => Ok(WebSocket::from_core(
                shared
                    .core
                    .into_inner()
                    .unwrap_or_else(PoisonError::into_inner),
            )),
            // Unreachable: the pair held the only two references.
            Err(shared) => Err((
                ReadHalf {
                    shared: shared.clone(),
                },
                WriteHalf { shared },
            )),
        }
    }
}

impl<S: Transport<R>, R: Runtime> WriteHalf<S, R> {
    /// Queues `message` and waits until everything queued is written (see
    /// [`WebSocket::send`]).
    pub async fn send(&mut self, message: Message) -> Result<(), Error> {
        self.feed(message).await?;
        self.flush().await
    }

    /// Queues `message`, waiting first while the send queue is full (see
    /// [`WebSocket::feed`]).
    pub async fn feed(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared
                .poll(Half::Writer, cx, |core, cx| core.poll_ready(cx))
        })
        .await?;
        self.shared.call(|core| core.start_send(message))
    }

    /// Queues a prepared message and writes everything queued (see
    /// [`WebSocket::send_prepared`]).
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.feed_prepared(prepared).await?;
        self.flush().await
    }

    /// Queues a prepared message, waiting first while the send queue is full (see
    /// [`WebSocket::feed_prepared`]).
    pub async fn feed_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared
                .poll(Half::Writer, cx, |core, cx| core.poll_ready(cx))
        })
        .await?;
        self.shared.call(|core| core.start_send_prepared(prepared))
    }

    /// Queues a prepared message if the send queue has room, without waiting (see
    /// [`WebSocket::try_feed_prepared`]).
    pub fn try_feed_prepared(
        &mut self,
        prepared: &PreparedMessage,
    ) -> Result<(), crate::TrySendError<PreparedMessage>> {
        self.shared.call(|core| {
            if core.is_full() {
                return Err(crate::TrySendError::Full(prepared.clone()));
            }
            core.start_send_prepared(prepared)
                .map_err(crate::TrySendError::Failed)
        })
    }

    /// Queues one frame of a fragmented message (see [`WebSocket::feed_frame`]).
    pub async fn feed_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: Vec<u8>,
    ) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared
                .poll(Half::Writer, cx, |core, cx| core.poll_ready(cx))
        })
        .await?;
        self.shared
            .call(|core| core.start_send_frame(kind, fin, payload))
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| {
            self.shared
                .poll(Half::Writer, cx, |core, cx| core.poll_flush(cx))
        })
        .await
    }

    /// Starts the close handshake and writes our Close; the reader sees the rest (see
    /// [`WebSocket::close`]).
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.shared.call(|core| core.start_close(code, reason))?;
        self.flush().await
    }

    /// Queues `message` if the send queue has room, without waiting (see
    /// [`WebSocket::try_feed`]).
    pub fn try_feed(&mut self, message: Message) -> Result<(), crate::TrySendError> {
        self.shared.call(|core| {
            if core.is_full() {
                return Err(crate::TrySendError::Full(message));
            }
            core.start_send(message)
                .map_err(crate::TrySendError::Failed)
        })
    }

    /// Whether a [`feed`](Self::feed) would wait now: the send queue is over its bound.
    pub fn is_full(&self) -> bool {
        self.shared.lock().is_full()
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.shared.lock().outcome().cloned()
    }

    /// The permessage-deflate parameters agreed in the handshake (see
    /// [`WebSocket::compression`]).
    pub fn compression(&self) -> Option<DeflateParams> {
        self.shared.lock().driver.compression()
    }
}

impl<S: Transport<R>, R: Runtime> Stream for ReadHalf<S, R> {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.shared
            .poll(Half::Reader, cx, |core, cx| core.poll_recv(cx))
    }
}

impl<S: Transport<R>, R: Runtime> Sink<Message> for WriteHalf<S, R> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared
            .poll(Half::Writer, cx, |core, cx| core.poll_ready(cx))
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), Error> {
        self.shared.call(|core| core.start_send(message))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared
            .poll(Half::Writer, cx, |core, cx| core.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.shared
            .poll(Half::Writer, cx, |core, cx| core.poll_close(cx))
    }
}
