//! The runtime trait: what the one async implementation needs of tokio or smol, and
//! nothing more. A clock, a resettable timer, TCP connect, and the stream calls.

use std::fmt::Debug;
use std::future::Future;
use std::io::{self, IoSlice};
use std::task::{Context, Poll};
use std::time::Instant as StdInstant;

/// An async runtime: its clock, its timers and its TCP.
///
/// The clock is the runtime's own (`tokio::time::Instant` under tokio, so a paused
/// clock in tests drives every timer of a connection).
pub trait Runtime: Debug + Send + Sync + Unpin + 'static {
    /// A timer that can be moved to a new deadline.
    type Timer: Timer;
    /// The runtime's TCP stream.
    type TcpStream: Transport<Self> + Send + Debug + 'static;

    /// The current time on the runtime's clock.
    fn now() -> StdInstant;

    /// A timer that fires at `deadline`.
    fn timer(deadline: StdInstant) -> Self::Timer;

    /// Opens a TCP connection (with `TCP_NODELAY`).
    fn connect_tcp(
        host: String,
        port: u16,
    ) -> impl Future<Output = io::Result<Self::TcpStream>> + Send;
}

/// A resettable timer of a [`Runtime`].
pub trait Timer: Debug + Send + Unpin {
    /// Moves the deadline.
    fn reset(&mut self, deadline: StdInstant);
    /// Ready once the deadline has passed.
    fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

/// A byte stream of a [`Runtime`]: the runtime's own read and write traits, seen
/// through one set of calls. Implemented for every tokio `AsyncRead + AsyncWrite +
/// Unpin` stream (runtime [`Tokio`]) and every futures-io one (runtime [`Smol`]).
pub trait Transport<R: ?Sized>: Unpin {
    /// Reads into `buf`; `Ready(Ok(0))` is end of stream.
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
    /// Writes some of `bufs`.
    fn poll_write_vectored(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>>;
    /// Flushes.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Shuts the write side down.
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

#[cfg(feature = "tokio")]
pub use self::tokio_runtime::Tokio;

#[cfg(feature = "tokio")]
mod tokio_runtime {
    use super::*;
    use std::pin::Pin;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// The tokio runtime (its time driver must be enabled).
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Tokio;

    impl Runtime for Tokio {
        type Timer = Pin<Box<tokio::time::Sleep>>;
        type TcpStream = tokio::net::TcpStream;

        fn now() -> StdInstant {
            tokio::time::Instant::now().into_std()
        }

        fn timer(deadline: StdInstant) -> Self::Timer {
            Box::pin(tokio::time::sleep_until(deadline.into()))
        }

        async fn connect_tcp(host: String, port: u16) -> io::Result<Self::TcpStream> {
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(tcp)
        }
    }

    impl Timer for Pin<Box<tokio::time::Sleep>> {
        fn reset(&mut self, deadline: StdInstant) {
            let at = tokio::time::Instant::from_std(deadline);
            if self.deadline() != at {
                self.as_mut().reset(at);
            }
        }

        fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            self.as_mut().poll(cx)
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Transport<Tokio> for S {
        fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut read = ReadBuf::new(buf);
            std::task::ready!(Pin::new(self).poll_read(cx, &mut read))?;
            Poll::Ready(Ok(read.filled().len()))
        }

        fn poll_write_vectored(
            &mut self,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(self).poll_write_vectored(cx, bufs)
        }

        fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(self).poll_flush(cx)
        }

        fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(self).poll_shutdown(cx)
        }
    }
}

#[cfg(feature = "smol")]
pub use self::smol_runtime::Smol;

#[cfg(feature = "smol")]
mod smol_runtime {
    use super::*;
    use futures_io::{AsyncRead, AsyncWrite};
    use std::pin::Pin;

    /// futures-io streams with async-io timers and async-net TCP: smol, or any
    /// executor.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Smol;

    /// An async-io timer.
    #[derive(Debug)]
    pub struct SmolTimer {
        timer: async_io::Timer,
    }

    impl Runtime for Smol {
        type Timer = SmolTimer;
        type TcpStream = async_net::TcpStream;

        fn now() -> StdInstant {
            StdInstant::now()
        }

        fn timer(deadline: StdInstant) -> Self::Timer {
            SmolTimer {
                timer: async_io::Timer::at(deadline),
            }
        }

        async fn connect_tcp(host: String, port: u16) -> io::Result<Self::TcpStream> {
            let tcp = async_net::TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            Ok(tcp)
        }
    }

    impl Timer for SmolTimer {
        fn reset(&mut self, deadline: StdInstant) {
            // Always: a timer that fired is spent until it is set again.
            self.timer.set_at(deadline);
        }

        fn poll_fire(&mut self, cx: &mut Context<'_>) -> Poll<()> {
            Pin::new(&mut self.timer).poll(cx).map(|_| ())
        }
    }

    impl<S: AsyncRead + AsyncWrite + Unpin> Transport<Smol> for S {
        fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            Pin::new(self).poll_read(cx, buf)
        }

        fn poll_write_vectored(
            &mut self,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            Pin::new(self).poll_write_vectored(cx, bufs)
        }

        fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(self).poll_flush(cx)
        }

        fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(self).poll_close(cx)
        }
    }
}
