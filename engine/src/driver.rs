//! [`Driver`]: a [`Connection`] with its buffers.

use std::io::{self, IoSlice};
use std::task::Poll;
use std::vec::Vec;

use bytes::Bytes;
use sockeye_proto::{
    Boundary, CloseCode, Closed, Connection, DataKind, DeflateConfig, DeflateParams, Event,
    Instant, ProtocolError, Role, SendError, State, Transmit, MIN_TRANSMIT_BUFFER,
};

use crate::buffers::{pool, RecvBuffer, SendQueue};
use crate::config::{DriverConfig, Tuning, ZEROED_AHEAD};
use crate::copy;
use crate::lifecycle::{Rare, NO_STALL};
use crate::message::{assemble, CloseReason, Message, Partial, Received};
use crate::outcome::{Abnormal, Outcome};

/// One vectored write of what `fill` puts in a stack array of slices (`fill` returns
/// how many; `Ok(0)` at once when none), tried again when a signal interrupts it; a
/// write of zero bytes is `WriteZero`, as in std's `write_all`.
pub(crate) fn write_queued<'q>(
    fill: impl FnOnce(&mut [IoSlice<'q>]) -> usize,
    mut write: impl FnMut(&[IoSlice<'_>]) -> Poll<io::Result<usize>>,
) -> Poll<io::Result<usize>> {
    // As many as a burst of frames takes; what does not fit goes in the next write.
    let mut slices = [IoSlice::new(&[]); 64];
    let count = fill(&mut slices);
    let slices = &slices[..count];
    if slices.is_empty() {
        return Poll::Ready(Ok(0));
    }
    loop {
        match core::task::ready!(write(slices)) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            result => return Poll::Ready(result),
        }
    }
}

/// A [`Connection`] with its buffers: the shared engine of the `std` adapters.
#[derive(Debug)]
pub struct Driver {
    pub(crate) connection: Connection,
    pub(crate) tuning: Tuning,
    pub(crate) recv: RecvBuffer,
    pub(crate) send: SendQueue,
    pub(crate) partial: Option<Partial>,
    /// Bytes read straight into the partial binary message after its `filled` bytes,
    /// not yet passed to the core (a direct read is at most `u32::MAX` bytes).
    pub(crate) direct: u32,
    /// Whether the current (or last) data frame is at least
    /// [`DriverConfig::direct_read_threshold`] long.
    pub(crate) large_frame: bool,
    /// Whether the caller assembles whole messages ([`Driver::poll_message`]) rather than
    /// streaming events, so reads may go straight into the message.
    pub(crate) assembling: bool,
    /// The transport's read side ended (or failed).
    pub(crate) eof: bool,
    /// The core asked for the transport to be shut down once the queue is written.
    pub(crate) shutdown_asked: bool,
    /// Nothing more can be written: shut down, failed, or given up on.
    pub(crate) write_closed: bool,
    /// A write made progress since the write-stall timer last started.
    pub(crate) progressed: bool,
    /// When the write-stall timer started (ns of [`Instant`]; `NO_STALL`: not running).
    pub(crate) stall_from: u64,
    /// The subprotocol, the end and the linger: boxed, since most connections need
    /// little of it for most of their life.
    pub(crate) rare: Option<Box<Rare>>,
}

impl Driver {
    /// A driver around `connection`. Bytes that arrived after the handshake head (early
    /// frames) can be handed over with [`Driver::push_bytes`].
    pub fn new(connection: Connection, config: DriverConfig) -> Self {
        Driver {
            connection,
            tuning: Tuning::new(config),
            recv: RecvBuffer::default(),
            send: SendQueue::default(),
            partial: None,
            direct: 0,
            large_frame: false,
            assembling: false,
            eof: false,
            shutdown_asked: false,
            write_closed: false,
            progressed: false,
            stall_from: NO_STALL,
            rare: None,
        }
    }

    /// Turns permessage-deflate on, as the handshake agreed it (`params`), with this
    /// end's own limits (`config`: level, threshold, windows). Call it before the first
    /// message is read or sent.
    pub fn enable_compression(&mut self, params: DeflateParams, config: DeflateConfig) {
        self.connection.enable_compression();
        self.rare().deflate = Some(Box::new(crate::compression::Compression::new(
            self.connection.role(),
            params,
            config,
        )));
    }

    /// Heap bytes held for permessage-deflate now (codec state, windows, scratch).
    pub fn compression_memory(&self) -> usize {
        self.rare
            .as_ref()
            .and_then(|rare| rare.deflate.as_ref())
            .map_or(0, |deflate| deflate.held_bytes())
    }

    /// The permessage-deflate parameters the handshake agreed, if any.
    pub fn compression(&self) -> Option<DeflateParams> {
        self.rare
            .as_ref()
            .and_then(|rare| rare.deflate.as_ref())
            .map(|deflate| deflate.params())
    }

    /// The connection inside (state, outcome, the peer's Close).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The buffer settings (sizes over `u32::MAX` read back as `u32::MAX`).
    pub fn config(&self) -> DriverConfig {
        self.tuning.config()
    }

    /// Adds bytes that were read elsewhere (e.g. frames that followed the handshake).
    pub fn push_bytes(&mut self, mut bytes: &[u8]) {
        let size = self.tuning.config().read_buffer_size;
        while !bytes.is_empty() {
            let n = self.recv.push(bytes, size);
            bytes = &bytes[n..];
            if n == 0 {
                break;
            }
        }
    }

    /// Whether unprocessed input is buffered (call [`Driver::poll_message`] before reading).
    pub fn has_buffered_input(&self) -> bool {
        !self.recv.is_empty() || self.direct > 0
    }

    /// Reads once: `read` gets free buffer space and returns how many bytes it put there
    /// (`Ready(Ok(0))` is end of stream) or `Pending` if nothing is available. When it
    /// is pending and no partial frame is buffered, the buffer goes back to the pool, so
    /// a connection waiting for data holds no read buffer.
    ///
    /// Returns `Ready(Ok(n))` with the byte count (0 at EOF, which is then fed to the core
    /// by the next [`Driver::poll_message`]).
    pub fn read_with<E>(
        &mut self,
        read: impl FnOnce(&mut [u8]) -> Poll<Result<usize, E>>,
    ) -> Poll<Result<usize, E>> {
        if self.eof || self.is_finished() {
            return Poll::Ready(Ok(0));
        }
        if let Some((region, frame_part)) = self.direct_region() {
            let region_len = region.len();
            let result = read(region);
            if let Poll::Ready(Ok(n)) = result {
                let n = n.min(region_len);
                self.eof |= n == 0;
                self.settle_direct_read(frame_part, n);
                return Poll::Ready(Ok(n));
            }
            return result;
        }
        let config = self.tuning.config();
        let limit = if self.assembling && self.large_frame {
            config.lookahead()
        } else {
            usize::MAX
        };
        let spare = self.recv.spare(config.read_buffer_size);
        let spare_len = spare.len().min(limit);
        let result = read(&mut spare[..spare_len]);
        match result {
            Poll::Ready(Ok(n)) => {
                let n = n.min(spare_len);
                if n == 0 {
                    self.eof = true;
                }
                self.recv.end += n;
                self.recv.release_if_empty();
                Poll::Ready(Ok(n))
            }
            other => {
                self.recv.release_if_empty();
                // Waiting for the peer: compression state an idle connection does not
                // need goes too.
                if let Some(deflate) = self
                    .rare
                    .as_deref_mut()
                    .and_then(|rare| rare.deflate.as_deref_mut())
                {
                    deflate.release_idle();
                }
                other
            }
        }
    }

    /// Where the next read goes when it can skip the read buffer: the rest of the current
    /// large binary frame, inside the message being assembled, and after it a few bytes
    /// of room (the message's spare capacity, see `lookahead`) for what follows
    /// the frame, so one read also brings the next header.
    /// Only with the read buffer empty, so the core sees the bytes in order.
    ///
    /// Returns the region and how many of its bytes belong to the current frame.
    fn direct_region(&mut self) -> Option<(&mut [u8], usize)> {
        if !self.assembling || !self.large_frame || self.direct != 0 || !self.recv.is_empty() {
            return None;
        }
        let config = self.tuning.config();
        let overshoot = config.lookahead();
        // One read fills at most `u32::MAX` bytes (what `direct` counts); the rest of a
        // larger frame comes with the next reads.
        let most = usize::try_from(u32::MAX).unwrap_or(usize::MAX) - overshoot;
        let remaining = usize::try_from(self.connection.frame_remaining())
            .unwrap_or(usize::MAX)
            .min(most);
        if remaining == 0 {
            return None;
        }
        let Some(Partial::Binary { buf, filled }) = &mut self.partial else {
            return None;
        };
        let frame_end = filled.checked_add(remaining)?;
        // Never grow the buffer for the overshoot (`assemble` reserved room for it).
        let end = frame_end.max(buf.capacity().min(frame_end.saturating_add(overshoot)));
        if buf.len() < end {
            // A buffer that must grow (a shorter recycled one, or a message's next
            // frame) is zeroed only a step ahead of the bytes that arrived: a header
            // can announce 16 MiB that never come, and zeroed memory is resident.
            let step = filled.saturating_add(ZEROED_AHEAD).max(buf.len());
            buf.resize(end.min(step), 0);
        }
        let end = end.min(buf.len());
        Some((&mut buf[*filled..end], remaining.min(end - *filled)))
    }

    /// After a direct read of `n` bytes into [`Driver::direct_region`]: the bytes past
    /// the first `frame_part` belong to the next frames and move to the read buffer
    /// (empty before the read, and at least as large as the overshoot).
    fn settle_direct_read(&mut self, frame_part: usize, n: usize) {
        self.direct = u32::try_from(n.min(frame_part)).unwrap_or(u32::MAX);
        let Some(Partial::Binary { buf, filled }) = &self.partial else {
            return;
        };
        if let Some(excess) = buf.get(filled + frame_part..filled + n) {
            let size = self.tuning.config().read_buffer_size;
            self.recv.push(excess, size);
        }
    }

    /// Passes the bytes read straight into the partial message to the core (which
    /// unmasks them where they are). Returns the message once it is complete.
    fn consume_direct(&mut self, now: Instant) -> Option<Message> {
        let direct = usize::try_from(core::mem::take(&mut self.direct)).unwrap_or(0);
        let Some(Partial::Binary { buf, filled }) = &mut self.partial else {
            return None;
        };
        let input = &mut buf[*filled..*filled + direct];
        let read = self.connection.handle_input(input, now);
        drain(
            &mut self.connection,
            &mut self.send,
            &mut self.shutdown_asked,
            self.write_closed,
            self.tuning,
        );
        let read = match read {
            Ok(read) => read,
            Err(error) => {
                self.partial = None;
                self.protocol_error(error, now);
                return None;
            }
        };
        match read.event {
            Some(Event::Binary { bytes, end }) => {
                *filled += bytes.len();
                if end != Boundary::MessageEnd {
                    return None;
                }
                let Some(Partial::Binary { mut buf, filled }) = self.partial.take() else {
                    return None;
                };
                buf.truncate(filled);
                Some(Message::Binary(Bytes::from(buf)))
            }
            Some(Event::Closed(closed)) => {
                // A timer ended the connection before these bytes were looked at.
                self.closed(closed, now);
                None
            }
            // Payload bytes make no other event; the core may have stopped reading.
            _ => None,
        }
    }

    /// The next whole message from buffered input; `None` when more input is needed or
    /// the connection is over (then [`Driver::poll_io`] says what is left to do, and
    /// [`Driver::outcome`] how it ended). A protocol error ends the connection: its
    /// Close is queued, and the outcome says which error.
    pub fn poll_message(&mut self, now: Instant) -> Option<Message> {
        self.assembling = true;
        if self.direct > 0 && !self.is_finished() {
            if let Some(message) = self.consume_direct(now) {
                return Some(message);
            }
        }
        let mut partial = self.partial.take();
        let overshoot = self.tuning.config().lookahead();
        let result = loop {
            match self.poll_event_hinted(now, |event, frame_remaining, large_frame| {
                let slack = if large_frame { overshoot } else { 0 };
                assemble(&mut partial, event, frame_remaining, slack)
            }) {
                Some(None) => continue,
                Some(Some(Received::Message(message))) => break Some(message),
                Some(Some(Received::Closed(_))) | None => break None,
            }
        };
        self.partial = partial;
        result
    }

    /// Passes the next raw event from buffered input to `f`, borrowing the read buffer:
    /// the streaming API (a large message in chunks, never whole in memory). `None`
    /// means more input is needed or the connection is over, as for
    /// [`Driver::poll_message`]; `f` never sees [`Event::Closed`] (the end is
    /// [`Driver::outcome`]). Do not mix with [`Driver::poll_message`] inside one message.
    pub fn poll_event_with<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(Event<'_>) -> R,
    ) -> Option<R> {
        self.assembling = false;
        let mut f = Some(f);
        loop {
            match self.poll_event_hinted(now, |event, _, _| match event {
                Event::Closed(_) => None,
                event => f.take().map(|f| f(event)),
            }) {
                Some(Some(result)) => return Some(result),
                Some(None) if !self.is_finished() => continue,
                _ => return None,
            }
        }
    }

    /// [`Driver::poll_event_with`], also telling `f` how many payload bytes of the current
    /// frame are still to come (to reserve a message's size once) and whether the frame
    /// is large enough to be read directly.
    fn poll_event_hinted<R>(
        &mut self,
        now: Instant,
        f: impl FnOnce(Event<'_>, usize, bool) -> R,
    ) -> Option<R> {
        if self.is_finished() {
            return None;
        }
        loop {
            // A compressed message's output that did not fit comes before new input.
            if let Some(deflate) = self
                .rare
                .as_deref_mut()
                .and_then(|rare| rare.deflate.as_deref_mut())
            {
                if deflate.has_backlog() {
                    let limit = self.connection.config().max_message_size;
                    match deflate.inflate_backlog(limit) {
                        Ok(Some(event)) => return Some(f(event, 0, false)),
                        Ok(None) => {}
                        Err(error) => {
                            self.fail_content(error, now);
                            return None;
                        }
                    }
                } else {
                    deflate.settle();
                }
            }
            let frame_start = self.connection.frame_remaining() == 0;
            let input = &mut self.recv.buf[self.recv.start..self.recv.end];
            let read = match self.connection.handle_input(input, now) {
                Ok(read) => read,
                Err(error) => {
                    self.recv.start = self.recv.end;
                    self.recv.release_if_empty();
                    self.drain();
                    self.protocol_error(error, now);
                    return None;
                }
            };
            self.recv.start += read.consumed;
            drain(
                &mut self.connection,
                &mut self.send,
                &mut self.shutdown_asked,
                self.write_closed,
                self.tuning,
            );
            if let Some(Event::Compressed { kind, bytes, end }) = read.event {
                if frame_start {
                    self.large_frame = false;
                }
                let limit = self.connection.config().max_message_size;
                let Some(deflate) = self
                    .rare
                    .as_deref_mut()
                    .and_then(|rare| rare.deflate.as_deref_mut())
                else {
                    continue;
                };
                match deflate.inflate_chunk(kind, bytes, end, limit) {
                    Ok(Some(event)) => return Some(f(event, 0, false)),
                    Ok(None) => continue,
                    Err(error) => {
                        self.fail_content(error, now);
                        return None;
                    }
                }
            }
            if let Some(event) = read.event {
                let ended = match &event {
                    Event::Closed(closed) => Some(*closed),
                    _ => None,
                };
                let peer_close = match &event {
                    Event::Close(frame) => Some(CloseReason::from_frame(frame)),
                    _ => None,
                };
                let frame_remaining =
                    usize::try_from(self.connection.frame_remaining()).unwrap_or(usize::MAX);
                if frame_start {
                    // Only binary payloads are read directly; text is validated as it is
                    // copied into its `String`, through the read buffer at full size.
                    self.large_frame = match &event {
                        Event::Binary { bytes, .. } => {
                            bytes.len().saturating_add(frame_remaining)
                                >= self.tuning.config().direct_read_threshold
                        }
                        _ => false,
                    };
                }
                let result = f(event, frame_remaining, self.large_frame);
                if let Some(reason) = peer_close {
                    self.rare().peer_close = Some(reason);
                }
                if let Some(closed) = ended {
                    self.closed(closed, now);
                }
                return Some(result);
            }
            if read.consumed == 0 {
                break;
            }
        }
        self.recv.release_if_empty();
        if self.eof {
            if let Some(event) = self.connection.handle_eof(now) {
                self.recv = RecvBuffer::default();
                self.drain();
                if let Event::Closed(closed) = event {
                    self.closed(closed, now);
                }
                return Some(f(event, 0, false));
            }
        }
        None
    }

    /// The core reported the end.
    fn closed(&mut self, closed: Closed, now: Instant) {
        self.end(Outcome::from_closed(closed, self.peer_close_reason()), now);
    }

    /// A message's content was bad once inflated: the core fails the connection with
    /// `error`'s close code, and nothing more is read.
    fn fail_content(&mut self, error: ProtocolError, now: Instant) {
        self.connection.fail(error);
        self.recv.start = self.recv.end;
        self.recv.release_if_empty();
        self.drain();
        self.protocol_error(error, now);
    }

    /// The peer broke the protocol: the core queued its Close and decided the end.
    fn protocol_error(&mut self, error: ProtocolError, now: Instant) {
        let outcome = self
            .core_outcome()
            .unwrap_or(Outcome::Abnormal(Abnormal::Protocol(error)));
        self.end(outcome, now);
    }

    /// Queues a whole message (text, binary, ping, pong or close). Large text and binary
    /// payloads are written from where they are, without a copy: a server's as they are
    /// (even when other messages share them), a client's masked in place when the
    /// payload is the only reference to its buffer (else in a copy, since the shared
    /// bytes cannot change). Small payloads are copied into the write buffer beside
    /// their header. A large payload's buffer that nothing else refers to once it is
    /// written (or once it is compressed) is kept for the messages this thread receives
    /// next. Ping and Close go through the core's control slots; a Pong is sent as
    /// given.
    pub fn send(&mut self, message: Message, now: Instant) -> Result<(), SendError> {
        match message {
            Message::Text(text) => self.send_data(DataKind::Text, text.into_bytes()),
            Message::Binary(bytes) => self.send_data(DataKind::Binary, bytes),
            Message::Ping(payload) => self.ping(&payload, now),
            Message::Pong(payload) => self.pong(&payload),
            Message::Close(reason) => {
                let (code, reason) = match &reason {
                    Some(close) => (close.code, close.reason.as_str()),
                    None => (CloseCode::NORMAL, ""),
                };
                self.close(code, reason, now)
            }
        }
    }

    /// Queues a [`PreparedMessage`](crate::PreparedMessage): its frame, shared by
    /// reference with every other connection it goes to, when this connection can take
    /// it as it is (a server; with permessage-deflate, one that may take the compressed
    /// frame, or the uncompressed one). Otherwise (a client, which masks; a connection
    /// with context takeover or a smaller window when the message was compressed) its
    /// payload is sent the ordinary way, as [`Driver::send`] does: compressed for this
    /// connection, or copied by a client to mask it.
    pub fn send_prepared(
        &mut self,
        prepared: &crate::PreparedMessage,
        // Unused since a data message needs no timer; kept so that every send takes
        // the time alike.
        _now: Instant,
    ) -> Result<(), SendError> {
        let kind = prepared.kind();
        let deflate = self
            .rare
            .as_deref()
            .and_then(|rare| rare.deflate.as_deref());
        let shared = match deflate {
            None => Some((prepared.frame(), prepared.payload().len(), false)),
            Some(deflate) if !deflate.wants(prepared.payload().len()) => {
                Some((prepared.frame(), prepared.payload().len(), false))
            }
            Some(deflate) => match prepared.compressed() {
                // Not compressed (not asked for, or it did not pay): uncompressed
                // messages may always go.
                None => Some((prepared.frame(), prepared.payload().len(), false)),
                Some((frame, len, window_bits)) if deflate.can_share(window_bits) => {
                    Some((frame, len, true))
                }
                Some(_) => None,
            },
        };
        match shared {
            Some((frame, payload_len, compressed))
                if self.connection.role() == sockeye_proto::Role::Server =>
            {
                let frame = frame.clone();
                self.connection
                    .send_prepared(kind, compressed, payload_len)?;
                self.send.push_shared(frame);
                Ok(())
            }
            // The payload by reference: `send_data` copies it only if it must (to mask).
            _ => self.send_data(kind, prepared.payload().clone()),
        }
    }

    /// Queues a whole data message, compressed when permessage-deflate was agreed and the
    /// message is at least the threshold long.
    fn send_data(&mut self, kind: DataKind, payload: Bytes) -> Result<(), SendError> {
        // Compress only what will go out now: with context takeover the compressor's
        // window must hold exactly what the peer sees.
        let sendable =
            self.connection.state() == State::Open && !self.connection.is_sending_message();
        if let Some(deflate) = self
            .rare
            .as_deref_mut()
            .and_then(|rare| rare.deflate.as_deref_mut())
        {
            if sendable && deflate.wants(payload.len()) {
                if let Some(mut compressed) = deflate.compress(&payload) {
                    let head = self
                        .connection
                        .send_compressed(kind, true, &mut compressed)?;
                    pool::recycle_bytes(payload);
                    self.send
                        .push_frame(&head, compressed, self.tuning.config().coalesce_limit);
                    return Ok(());
                }
            }
        }
        self.send_whole(kind, payload)
    }

    /// Queues a whole uncompressed data message in one frame, copying the payload only
    /// when a client must mask bytes that something else shares.
    fn send_whole(&mut self, kind: DataKind, payload: Bytes) -> Result<(), SendError> {
        let coalesce_limit = self.tuning.config().coalesce_limit;
        if self.connection.role() == Role::Server {
            // A server's frame is not masked, so the core need not see the payload: the
            // checks and state of `send` with only its length (what a prepared message
            // uses too), and the bytes go out as they are, shared or not.
            let head = self.connection.send_prepared(kind, false, payload.len())?;
            self.send.push_bytes_frame(&head, payload, coalesce_limit);
            return Ok(());
        }
        let payload = match payload.try_into_mut() {
            // The only reference: its buffer, masked in place (a `Bytes` made from a
            // `Vec`, as received payloads are, turns back into it without a copy).
            Ok(unique) => Vec::from(unique),
            Err(shared) => {
                let mut copied = pool::buffer(shared.len());
                copy::extend(&mut copied, &shared);
                copied
            }
        };
        self.send_frame(kind, true, payload)
    }

    /// Queues one data frame (for fragmented sends: `fin == false` continues the message).
    /// Frames sent this way are never compressed.
    pub fn send_frame(
        &mut self,
        kind: DataKind,
        fin: bool,
        mut payload: Vec<u8>,
    ) -> Result<(), SendError> {
        let head = self.connection.send(kind, fin, &mut payload)?;
        self.send
            .push_frame(&head, payload, self.tuning.config().coalesce_limit);
        Ok(())
    }

    /// Queues a Ping.
    pub fn ping(&mut self, payload: &[u8], now: Instant) -> Result<(), SendError> {
        self.connection.ping(payload, now)?;
        self.drain();
        Ok(())
    }

    /// Sends an unsolicited Pong (a unidirectional heartbeat, RFC 6455 §5.5.3).
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        self.connection.pong(payload)?;
        self.drain();
        Ok(())
    }

    /// Starts the close handshake.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        self.connection.close(code, reason, now)?;
        self.drain();
        Ok(())
    }

    /// Fires the core's expired timers. Returns the end if a timer ended the connection.
    pub(crate) fn handle_timeout(&mut self, now: Instant) -> Option<Closed> {
        let event = self.connection.handle_timeout(now);
        self.drain();
        match event {
            Some(Event::Closed(closed)) => Some(closed),
            _ => None,
        }
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.send.pending
    }

    /// Backpressure: whether the send queue is within [`DriverConfig::max_pending_bytes`].
    /// While it is not, sends should wait, and [`Driver::poll_io`] does not ask to read.
    pub fn is_writable(&self) -> bool {
        self.send.pending <= self.tuning.config().max_pending_bytes
    }

    /// Fills `out` with the bytes to write next, for a vectored write; returns how many
    /// slices were filled (0 when there is nothing to write).
    pub fn write_slices<'a>(&'a self, out: &mut [IoSlice<'a>]) -> usize {
        self.send.slices(out)
    }

    /// Writes once what is queued through `write`, the transport's vectored write
    /// (`Pending` when it would block), and advances past what it took: `Ready(Ok(0))`
    /// when nothing waits. A signal's interruption is retried; a failed write, or one of
    /// zero bytes, ends the connection ([`fail_io`](Self::fail_io)) and is returned.
    pub fn write_with(
        &mut self,
        write: impl FnMut(&[IoSlice<'_>]) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        let result = core::task::ready!(write_queued(|out| self.write_slices(out), write));
        match &result {
            Ok(n) => self.advance(*n),
            Err(error) => self.fail_io(error.kind()),
        }
        Poll::Ready(result)
    }

    /// `n` bytes from [`Driver::write_slices`] were written.
    pub fn advance(&mut self, n: usize) {
        let was_full = !self.is_writable();
        self.send.advance(n);
        self.progressed |= n > 0;
        if was_full && self.is_writable() {
            // Control frames held back while the queue was full go out now.
            self.drain();
        }
    }

    /// Moves queued control frames into the send queue (called after every core call),
    /// unless the queue is full: then they wait in the core's slots, where a newer Ping's
    /// Pong replaces an older one (RFC 6455 §5.5.3), so a peer that pings without
    /// reading cannot grow the queue.
    fn drain(&mut self) {
        drain(
            &mut self.connection,
            &mut self.send,
            &mut self.shutdown_asked,
            self.write_closed,
            self.tuning,
        );
    }
}

/// [`Driver::drain`] over the fields it needs, for callers that borrow the others.
fn drain(
    connection: &mut Connection,
    send: &mut SendQueue,
    shutdown_asked: &mut bool,
    write_closed: bool,
    tuning: Tuning,
) {
    let limit = tuning.config().max_pending_bytes;
    let mut frame = [0u8; MIN_TRANSMIT_BUFFER];
    while send.pending <= limit && !write_closed {
        match connection.poll_transmit(&mut frame) {
            Some(Transmit::Bytes(n)) => send.push_small(&frame[..n]),
            Some(Transmit::Shutdown) => *shutdown_asked = true,
            None => break,
        }
    }
}
