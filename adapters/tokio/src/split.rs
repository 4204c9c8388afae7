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
use sockeye_engine::{Message, Outcome};
use sockeye_proto::{CloseCode, DataKind, Event};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::core::Core;
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
struct Shared<S> {
    core: Mutex<Core<S>>,
    wakers: Arc<Wakers>,
    proxy: Waker,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Half {
    Reader,
    Writer,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Core<S>> {
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the core with the proxy waker, after registering this half's waker.
    fn poll<R>(
        &self,
        half: Half,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Core<S>, &mut Context<'_>) -> R,
    ) -> R {
        match half {
            Half::Reader => store(&self.wakers.reader, cx.waker()),
            Half::Writer => store(&self.wakers.writer, cx.waker()),
        }
        let mut proxy_cx = Context::from_waker(&self.proxy);
        let mut core = self.lock();
        let deadline = core.driver.poll_timeout();
        let ended = core.outcome().is_some();
        let result = f(&mut core, &mut proxy_cx);
        let changed = core.driver.poll_timeout() != deadline || core.outcome().is_some() != ended;
        drop(core);
        if half == Half::Writer && changed {
            if let Some(reader) = take(&self.wakers.reader) {
                reader.wake();
            }
        }
        result
    }

    /// A synchronous call from the writer (no waker to register).
    fn call<R>(&self, f: impl FnOnce(&mut Core<S>) -> R) -> R {
        let mut core = self.lock();
        let deadline = core.driver.poll_timeout();
        let result = f(&mut core);
        let changed = core.driver.poll_timeout() != deadline;
        drop(core);
        if changed {
            if let Some(reader) = take(&self.wakers.reader) {
                reader.wake();
            }
        }
        result
    }
}

pub(crate) fn split<S: AsyncRead + AsyncWrite + Unpin>(
    core: Core<S>,
) -> (ReadHalf<S>, WriteHalf<S>) {
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

/// The receiving half of a [`WebSocket::split`] connection. Polling it also writes
/// Pongs and close replies, fires timers and finishes the connection, so keep a task
/// reading it. Its futures are cancel-safe, as [`WebSocket::recv`]'s are.
#[derive(Debug)]
pub struct ReadHalf<S> {
    shared: Arc<Shared<S>>,
}

/// The sending half of a [`WebSocket::split`] connection.
#[derive(Debug)]
pub struct WriteHalf<S> {
    shared: Arc<Shared<S>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
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
    pub async fn recv_with<R>(&mut self, f: impl FnOnce(Event<'_>) -> R) -> Option<R> {
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

    /// Puts the halves back together (`Err` gives them back if they are not a pair).
    pub fn reunite(
        self,
        writer: WriteHalf<S>,
    ) -> Result<WebSocket<S>, (ReadHalf<S>, WriteHalf<S>)> {
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

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
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
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.shared
            .poll(Half::Reader, cx, |core, cx| core.poll_recv(cx))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
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
