//! [`Faulty`]: a stream wrapper that misbehaves the way real transports do, driven by a
//! seed so a failure replays: short reads and writes, `Pending` at random points (the
//! waker is woken, so a correct driver never hangs), interrupted calls, and, optionally,
//! end of stream or an error in the middle of the byte stream.
//!
//! It implements tokio's `AsyncRead + AsyncWrite` and futures-io's, so the tokio and smol
//! adapters (and anything built on them) run over it unchanged.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::XorShift;

/// What a [`Faulty`] stream does wrong, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Faults {
    /// The seed of every random choice.
    pub seed: u64,
    /// One call in this many returns `Pending` first (0: never).
    pub pending_one_in: u32,
    /// One call in this many returns `ErrorKind::Interrupted` (0: never).
    pub interrupted_one_in: u32,
    /// Reads and writes move at most this many bytes at a time (at least 1; a random
    /// length up to it).
    pub max_chunk: usize,
    /// After this many bytes read, reads end: `Some((n, true))` is end of stream,
    /// `Some((n, false))` a `ConnectionReset` error. Writes fail with `BrokenPipe` after
    /// the same count of bytes written.
    pub cut_after: Option<(u64, bool)>,
}

impl Faults {
    /// Faults from `seed` alone: everything but a cut, at rates that make every call
    /// likely to misbehave now and then.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = XorShift::new(seed);
        Faults {
            seed,
            pending_one_in: 2 + (rng.next_u64() % 6) as u32,
            interrupted_one_in: 4 + (rng.next_u64() % 16) as u32,
            max_chunk: 1 + (rng.next_u64() % 4096) as usize,
            cut_after: None,
        }
    }

    /// These faults, and a cut after `bytes` (end of stream if `eof`, else an error).
    pub fn with_cut(mut self, bytes: u64, eof: bool) -> Self {
        self.cut_after = Some((bytes, eof));
        self
    }
}

/// A stream that misbehaves as its [`Faults`] say.
#[derive(Debug)]
pub struct Faulty<S> {
    inner: S,
    faults: Faults,
    rng: XorShift,
    read: u64,
    written: u64,
}

impl<S> Faulty<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, faults: Faults) -> Self {
        Faulty {
            inner,
            rng: XorShift::new(faults.seed ^ 0x9E37_79B9_7F4A_7C15),
            faults,
            read: 0,
            written: 0,
        }
    }

    fn one_in(&mut self, n: u32) -> bool {
        n != 0 && self.rng.next_u64() % u64::from(n) == 0
    }

    /// `Some` when this call misbehaves before touching the stream.
    fn misbehave<T>(&mut self, cx: &mut Context<'_>) -> Option<Poll<io::Result<T>>> {
        if self.one_in(self.faults.pending_one_in) {
            cx.waker().wake_by_ref();
            return Some(Poll::Pending);
        }
        if self.one_in(self.faults.interrupted_one_in) {
            return Some(Poll::Ready(Err(io::ErrorKind::Interrupted.into())));
        }
        None
    }

    fn chunk(&mut self, len: usize, done: u64) -> Option<usize> {
        let mut limit = 1 + (self.rng.next_u64() % self.faults.max_chunk.max(1) as u64) as usize;
        if let Some((cut, _)) = self.faults.cut_after {
            let left = cut.saturating_sub(done);
            if left == 0 {
                return None;
            }
            limit = limit.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        Some(len.min(limit))
    }

    fn cut_read<T: Default>(&self) -> Poll<io::Result<T>> {
        match self.faults.cut_after {
            Some((_, true)) => Poll::Ready(Ok(T::default())),
            _ => Poll::Ready(Err(io::ErrorKind::ConnectionReset.into())),
        }
    }
}

fn first_slice<'a>(bufs: &'a [IoSlice<'a>]) -> &'a [u8] {
    bufs.iter()
        .find(|b| !b.is_empty())
        .map_or(&[][..], |b| &b[..])
}

mod tokio_io {
    use super::*;
    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    impl<S: AsyncRead + Unpin> AsyncRead for Faulty<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if let Some(poll) = this.misbehave(cx) {
                return poll;
            }
            let Some(n) = this.chunk(buf.remaining(), this.read) else {
                return this.cut_read();
            };
            let mut limited = ReadBuf::new(buf.initialize_unfilled_to(n));
            let poll = Pin::new(&mut this.inner).poll_read(cx, &mut limited);
            let got = limited.filled().len();
            if let Poll::Ready(Ok(())) = poll {
                buf.advance(got);
                this.read += got as u64;
            }
            poll
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Faulty<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            if let Some(poll) = this.misbehave(cx) {
                return poll;
            }
            let Some(n) = this.chunk(buf.len(), this.written) else {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            };
            let poll = Pin::new(&mut this.inner).poll_write(cx, &buf[..n]);
            if let Poll::Ready(Ok(n)) = poll {
                this.written += n as u64;
            }
            poll
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            self.poll_write(cx, first_slice(bufs))
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }

        fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
        }
    }
}

mod futures_io_impl {
    use super::*;
    use futures_io::{AsyncRead, AsyncWrite};

    impl<S: AsyncRead + Unpin> AsyncRead for Faulty<S> {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            if let Some(poll) = this.misbehave(cx) {
                return poll;
            }
            let Some(n) = this.chunk(buf.len(), this.read) else {
                return this.cut_read();
            };
            let poll = Pin::new(&mut this.inner).poll_read(cx, &mut buf[..n]);
            if let Poll::Ready(Ok(got)) = poll {
                this.read += got as u64;
            }
            poll
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Faulty<S> {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            if let Some(poll) = this.misbehave(cx) {
                return poll;
            }
            let Some(n) = this.chunk(buf.len(), this.written) else {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            };
            let poll = Pin::new(&mut this.inner).poll_write(cx, &buf[..n]);
            if let Poll::Ready(Ok(n)) = poll {
                this.written += n as u64;
            }
            poll
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_flush(cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.get_mut().inner).poll_close(cx)
        }
    }
}
