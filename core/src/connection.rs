//! [`Connection`]: one WebSocket connection after the handshake, as a state machine.
//!
//! It is a thin shell over the frame decoder, the close state machine, a
//! fixed table of timers and fixed control-frame slots. Bytes and time go in; events,
//! bytes to send and the next deadline come out. Nothing here allocates.

use core::num::NonZeroU64;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::close::{CloseCode, CloseFrame, MAX_REASON_LEN};
use crate::config::{Config, Packed};
use crate::error::{ProtocolError, SendError};
use crate::frame::{apply_mask, FrameHead, Header, OpCode, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN};
use crate::machine::{self, Ending, State, Trigger};
use crate::time::Instant;
use crate::utf8;
use crate::Status;

/// Which end of the connection this is. Clients mask what they send; servers must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The end that sent the upgrade request.
    Client,
    /// The end that accepted it.
    Server,
}

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// Where a chunk of message data ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// More of this frame follows.
    Continues,
    /// This frame ends here; the message continues in another frame.
    FrameEnd,
    /// This chunk ends the message.
    MessageEnd,
}

impl Boundary {
    /// Whether this chunk ends its message.
    pub fn is_message_end(self) -> bool {
        self == Boundary::MessageEnd
    }
}

/// Something the peer did, borrowed from the input buffer where it carries data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'b> {
    /// A chunk of a text message, always whole characters.
    Text {
        /// The text.
        text: &'b str,
        /// Whether the frame or message ends with this chunk.
        end: Boundary,
    },
    /// A chunk of a binary message.
    Binary {
        /// The bytes.
        bytes: &'b [u8],
        /// Whether the frame or message ends with this chunk.
        end: Boundary,
    },
    /// A chunk of a compressed message (permessage-deflate), still deflated: inflate it
    /// (with the `deflate` feature, `deflate::Inflater`), then check text for UTF-8 and
    /// the inflated size against the message limit; fail the connection with
    /// [`Connection::fail`] if either is wrong. Only when compression was enabled with
    /// [`Connection::enable_compression`].
    Compressed {
        /// The kind of the message.
        kind: DataKind,
        /// The compressed bytes (unmasked).
        bytes: &'b [u8],
        /// Whether the frame or message ends with this chunk.
        end: Boundary,
    },
    /// A Ping arrived; the Pong is already queued.
    Ping(&'b [u8]),
    /// A Pong arrived.
    Pong(&'b [u8]),
    /// The peer's Close arrived: the connection is half-closed, our reply is queued (or
    /// this was the reply to ours). Nothing more is read from the peer.
    Close(CloseFrame<'b>),
    /// The connection is over; this is the last event.
    Closed(Closed),
}

/// How a connection ended. Reported once, as [`Event::Closed`] (or, for
/// [`Closed::Failed`], as the `Err` of [`Connection::handle_input`]), and kept by
/// [`Connection::outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The close handshake completed: a normal disconnect.
    Clean(CleanClose),
    /// The transport ended without a completed close handshake (close code 1006).
    Abnormal,
    /// The peer broke the protocol; we sent a Close with the error's code.
    Failed(ProtocolError),
    /// A timer ended the connection.
    TimedOut(Timeout),
}

impl Closed {
    /// Whether this was a normal disconnect (the close handshake completed).
    pub fn is_clean(&self) -> bool {
        matches!(self, Closed::Clean(_))
    }
}

/// The close codes of a completed close handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanClose {
    /// The code in the Close we sent (`None` for an empty Close).
    pub sent: Option<CloseCode>,
    /// The code in the peer's Close (`None` for an empty Close, which means 1005).
    pub received: Option<CloseCode>,
    /// Whether we sent our Close first.
    pub initiated_locally: bool,
}

/// The timer that ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timeout {
    /// The peer did not finish the close handshake in time.
    Close,
    /// The peer did not answer a keepalive Ping in time.
    KeepAlive,
    /// No message arrived within the idle timeout.
    Idle,
    /// The peer stopped reading: bytes queued for it made no progress within the
    /// write-stall timeout. The core has no send queue and never reports this; the
    /// engines that queue bytes (`sockeye-engine`) do.
    WriteStall,
}

/// What one [`Connection::handle_input`] call did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input<'b> {
    /// How many bytes from the front of the input were used; the rest must be passed
    /// again, at the front of the next input.
    pub consumed: usize,
    /// The event produced, if any. `consumed == 0` with no event means more bytes are
    /// needed.
    pub event: Option<Event<'b>>,
}

/// Something for the transport to do, from [`Connection::poll_transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transmit {
    /// Write the first `n` bytes of the output buffer.
    Bytes(usize),
    /// All frames are out: shut the transport down (close the socket / its write half).
    Shutdown,
}

/// The smallest input buffer that always makes progress: a control frame with the
/// longest header (139 bytes) plus up to 3 bytes of a character split across frames.
pub const MIN_INPUT_BUFFER: usize = MAX_HEADER_LEN + MAX_CONTROL_PAYLOAD + 3;

/// The smallest output buffer for [`Connection::poll_transmit`]: one masked control frame.
pub const MIN_TRANSMIT_BUFFER: usize = 6 + MAX_CONTROL_PAYLOAD;

/// The RSV1 bit of a frame header's `rsv` field: permessage-deflate's "compressed".
const RSV1: u8 = 0b100;

/// A control payload waiting to be sent (or the peer's Close payload), held inline.
#[derive(Clone, Copy)]
struct ControlSlot {
    full: bool,
    len: u8,
    bytes: [u8; MAX_CONTROL_PAYLOAD],
}

impl ControlSlot {
    const EMPTY: ControlSlot = ControlSlot {
        full: false,
        len: 0,
        bytes: [0; MAX_CONTROL_PAYLOAD],
    };

    fn fill(&mut self, parts: &[&[u8]]) {
        let mut len = 0;
        for part in parts {
            self.bytes[len..len + part.len()].copy_from_slice(part);
            len += part.len();
        }
        self.len = len as u8;
        self.full = true;
    }

    fn payload(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// The receive side of the frame decoder.
#[derive(Clone, Copy, Debug)]
enum Rx {
    /// Expecting a frame header.
    Header,
    /// Inside a data frame's payload. The mask key is rotated as payload is unmasked,
    /// so that it always starts at the next byte (no frame length to keep for the phase).
    Payload {
        fin: bool,
        mask: Option<[u8; 4]>,
        remaining: u64,
    },
}

/// A deadline in nanoseconds since the epoch, `None` when disarmed. A deadline lies
/// after the instant that armed it, so it is never 0, and `None` costs no space.
type Deadline = Option<NonZeroU64>;

/// The deadline `nanos` after `now` (at least 1 ns after it, so that `poll_timeout`
/// never returns a deadline that `handle_timeout(now)` has just handled), saturating.
///
/// On a 32-bit target its 64-bit arithmetic takes a dozen instructions, so it is kept out
/// of line there (one copy instead of one per timer armed); elsewhere the compiler decides.
#[cfg_attr(target_pointer_width = "32", inline(never))]
fn deadline(now: Instant, nanos: u64) -> Deadline {
    NonZeroU64::new(now.as_nanos().saturating_add(nanos.max(1)))
}

/// One of the connection's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// Send a keepalive Ping (after a quiet interval).
    KeepAlive,
    /// Give up waiting for anything after the keepalive Ping.
    Pong,
    /// End the connection for want of messages.
    Idle,
    /// Give up on the close handshake.
    Close,
}

/// The four timers in two slots (the flags saying which timer of a slot is armed are
/// [`TimerKinds`], kept apart so that they fit among the connection's small fields). The
/// keepalive Ping and the wait after it never run at once (the wait is armed as the Ping
/// goes out, and inbound bytes disarm it before they re-arm the Ping), nor do the idle
/// and close timers (the idle timer runs only while open, and the close timer is armed
/// on leaving open, once the idle timer is disarmed).
#[derive(Clone, Copy, Debug, Default)]
struct Timers {
    /// The keepalive Ping, or the wait after it.
    keepalive: Deadline,
    /// The idle timer, or the close timer.
    ending: Deadline,
}

/// Which timer of each slot of [`Timers`] is armed.
#[derive(Clone, Copy, Debug, Default)]
struct TimerKinds {
    /// The keepalive slot holds the wait after the Ping.
    after_ping: bool,
    /// The ending slot holds the close timer.
    closing: bool,
}

impl Timers {
    fn earliest(&self) -> Option<Instant> {
        let at = match (self.keepalive, self.ending) {
            (Some(keepalive), Some(ending)) => Some(keepalive.min(ending)),
            (keepalive, ending) => keepalive.or(ending),
        };
        at.map(|at| Instant::from_nanos(at.get()))
    }
}

/// Where the peer's Close is kept once it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PeerClose {
    /// Not received.
    None,
    /// Its payload (code and reason) is in the Pong slot, which is free for good once the
    /// peer's Close arrived (no Pong is queued after it).
    InPongSlot,
    /// Only its code is kept: it arrived while a Pong was still queued, which only a
    /// caller that does not drain `poll_transmit` after every call sees.
    CodeOnly(Option<CloseCode>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shutdown {
    No,
    Wanted,
    Done,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Terminal {
    Running,
    /// Decided; reported by the next `handle_input` call.
    Pending(Closed),
    Reported(Closed),
}

/// One WebSocket connection (after the handshake), without I/O.
///
/// Drive it with bytes ([`handle_input`](Self::handle_input),
/// [`handle_eof`](Self::handle_eof)), time ([`handle_timeout`](Self::handle_timeout)) and
/// local calls ([`send`](Self::send), [`ping`](Self::ping), [`close`](Self::close)); after
/// every call drain [`poll_transmit`](Self::poll_transmit) and sleep until
/// [`poll_timeout`](Self::poll_timeout). See the crate documentation for the loop.
pub struct Connection {
    role: Role,
    config: Packed,
    state: State,
    rx: Rx,
    /// The kind of the message being received, if one is in progress.
    rx_message: Option<DataKind>,
    rx_message_len: u64,
    /// Bytes at the front of the next input that are already unmasked text: the start of
    /// a character split across reads or frames.
    held: u8,
    /// Bytes left unconsumed by the last `handle_input`: they come back at the front of
    /// the next input and are not new activity (for keepalive).
    unread: usize,
    /// Whether the message being received is compressed (RSV1 on its first frame).
    rx_compressed: bool,
    /// permessage-deflate was negotiated: RSV1 marks a compressed message.
    compression: bool,
    /// The kind of the message being sent in fragments, if any.
    tx_message: Option<DataKind>,
    /// The Pong to send; once the peer's Close arrived, that Close's payload (see
    /// [`PeerClose`]).
    pong: ControlSlot,
    /// Our Ping or our Close: a queued Close replaces a Ping not yet sent, and nothing is
    /// pinged once closing, so the two share one slot.
    outgoing: ControlSlot,
    outgoing_is_close: bool,
    close_sent: bool,
    sent_code: Option<CloseCode>,
    peer_close: PeerClose,
    initiated_locally: bool,
    shutdown: Shutdown,
    terminal: Terminal,
    timers: Timers,
    timer_kinds: TimerKinds,
    masks: MaskKeys,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("rx", &self.rx)
            .field("timers", &self.timers)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection that has just finished its handshake at `now`.
    ///
    /// `seed` seeds the ChaCha generator of the client's masking keys (RFC 6455 §5.3 wants
    /// them unpredictable: pass 32 bytes from the OS RNG). A server never masks, so any
    /// seed will do there.
    pub fn new(role: Role, config: Config, seed: [u8; 32], now: Instant) -> Self {
        let mut connection = Connection {
            role,
            config: Packed::new(&config),
            state: State::Open,
            rx: Rx::Header,
            rx_message: None,
            rx_message_len: 0,
            held: 0,
            unread: 0,
            rx_compressed: false,
            compression: false,
            tx_message: None,
            pong: ControlSlot::EMPTY,
            outgoing: ControlSlot::EMPTY,
            outgoing_is_close: false,
            close_sent: false,
            sent_code: None,
            peer_close: PeerClose::None,
            initiated_locally: false,
            shutdown: Shutdown::No,
            terminal: Terminal::Running,
            timers: Timers::default(),
            timer_kinds: TimerKinds::default(),
            masks: MaskKeys::new(seed),
        };
        connection.arm_keepalive(now);
        connection.arm_idle(now);
        connection
    }

    /// A server-side connection (servers never mask, so no seed is needed).
    pub fn server(config: Config, now: Instant) -> Self {
        Self::new(Role::Server, config, [0; 32], now)
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The settings in use (by value: the connection keeps them packed, durations in
    /// nanoseconds, so a duration of 584 years or more reads back as 2^64 - 2 ns).
    pub fn config(&self) -> Config {
        self.config.unpack()
    }

    /// Where the connection stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// How the connection ended, once it has.
    pub fn outcome(&self) -> Option<Closed> {
        match self.terminal {
            Terminal::Running => None,
            Terminal::Pending(closed) | Terminal::Reported(closed) => Some(closed),
        }
    }

    /// The peer's Close frame, once it arrived (its reason kept inline).
    ///
    /// The reason is kept where the Pong to a Ping waits, which is free for good once the
    /// peer's Close arrived. Only if that Close arrives while a Pong is still queued (the
    /// transmits were not drained after the call that read the Ping, as the driving loop
    /// asks) is the reason not kept: this then reports the code with an empty reason
    /// (the [`Event::Close`] had it).
    pub fn peer_close(&self) -> Option<CloseFrame<'_>> {
        match self.peer_close {
            PeerClose::None => None,
            PeerClose::InPongSlot => CloseFrame::parse(self.pong.payload()).ok(),
            PeerClose::CodeOnly(code) => Some(CloseFrame { code, reason: "" }),
        }
    }

    /// Whether a fragmented message is being sent (the next [`send`](Self::send) continues it).
    pub fn is_sending_message(&self) -> bool {
        self.tx_message.is_some()
    }

    /// Payload bytes of the data frame being received that have not been handed out yet
    /// (0 between frames). Lets a caller that gathers a message reserve its whole size
    /// at once instead of growing it chunk by chunk.
    pub fn frame_remaining(&self) -> u64 {
        match self.rx {
            Rx::Payload { remaining, .. } => remaining,
            Rx::Header => 0,
        }
    }

    /// Reads at most one item from the front of `input`: a frame header, a chunk of
    /// payload, a control frame, or the terminal event. Payload is unmasked in place and
    /// handed out as a slice of `input`.
    ///
    /// Call it again with the unconsumed rest (plus any new bytes) until it returns
    /// `consumed == 0` and no event. On a protocol error the connection has failed: the
    /// Close with the error's code is queued, then [`Transmit::Shutdown`]; the error is the
    /// connection's terminal report.
    pub fn handle_input<'b>(
        &mut self,
        input: &'b mut [u8],
        now: Instant,
    ) -> Result<Input<'b>, ProtocolError> {
        match self.terminal {
            Terminal::Running => {}
            Terminal::Pending(closed) => {
                self.terminal = Terminal::Reported(closed);
                return Ok(Input {
                    consumed: 0,
                    event: Some(Event::Closed(closed)),
                });
            }
            Terminal::Reported(_) => {
                return Ok(Input {
                    consumed: input.len(),
                    event: None,
                })
            }
        }
        if self.state == State::CloseReceived {
            // RFC 6455 §5.5.1: nothing after a Close is processed.
            return Ok(Input {
                consumed: input.len(),
                event: None,
            });
        }
        // Only bytes beyond those passed back from the last call are new: an adapter
        // that re-runs its input loop on a wakeup must not keep a dead peer alive.
        let input_len = input.len();
        if input_len > self.unread {
            self.note_inbound(now);
        }
        match self.read(input, now) {
            Ok(read) => {
                self.unread = input_len - read.consumed;
                if let Some(Event::Text { .. } | Event::Binary { .. }) = read.event {
                    self.arm_idle(now);
                }
                Ok(read)
            }
            Err(error) => {
                self.fail(error);
                Err(error)
            }
        }
    }

    /// The transport reached end of stream. Returns the terminal event (abnormal unless
    /// the close handshake had completed).
    pub fn handle_eof(&mut self, _now: Instant) -> Option<Event<'static>> {
        if let Terminal::Pending(closed) = self.terminal {
            self.terminal = Terminal::Reported(closed);
            return Some(Event::Closed(closed));
        }
        self.apply(Trigger::Eof).map(|closed| self.report(closed))
    }

    /// Fires every timer that expired at `now`. Harmless when called early. Returns the
    /// terminal event if a timer ended the connection.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Event<'static>> {
        if self.terminal != Terminal::Running {
            return None;
        }
        for (timer, trigger) in [
            (Timer::Pong, Trigger::KeepAliveTimer),
            (Timer::Close, Trigger::CloseTimer),
            (Timer::Idle, Trigger::IdleTimer),
        ] {
            if self.is_due(timer, now) {
                self.disarm(timer);
                if let Some(closed) = self.apply(trigger) {
                    return Some(self.report(closed));
                }
            }
        }
        if self.is_due(Timer::KeepAlive, now) {
            self.disarm(Timer::KeepAlive);
            if let (State::Open, Some((_, timeout))) = (self.state, self.config.keepalive()) {
                self.queue_ping(&now.as_nanos().to_be_bytes());
                self.arm(Timer::Pong, now, timeout);
            }
        }
        None
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) has work,
    /// or `None` when no timer is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.terminal != Terminal::Running {
            return None;
        }
        self.timers.earliest()
    }

    /// Turns on RSV1 as permessage-deflate defines it (RFC 7692), once the handshake agreed
    /// the extension: a message whose first frame has RSV1 set arrives as
    /// [`Event::Compressed`], and [`send_compressed`](Self::send_compressed) may be used.
    /// Without it RSV1 is a protocol error, as RFC 6455 requires.
    pub fn enable_compression(&mut self) {
        self.compression = true;
    }

    /// Whether [`enable_compression`](Self::enable_compression) was called.
    pub fn is_compression_enabled(&self) -> bool {
        self.compression
    }

    /// Fails the connection for an error found in a message's content after the core
    /// passed it on (a compressed message that does not inflate, is too large once
    /// inflated, or is not UTF-8): the Close with `error`'s code is queued, then
    /// [`Transmit::Shutdown`], and the connection's end is [`Closed::Failed`]. Does
    /// nothing once the connection has ended.
    pub fn fail(&mut self, error: ProtocolError) {
        if self.terminal != Terminal::Running {
            return;
        }
        let step = machine::step(self.role, self.state, Trigger::ProtocolError);
        if step.send_close {
            self.queue_close(Some(error.close_code()), error.as_str());
        }
        self.state = step.next;
        self.shutdown = Shutdown::Wanted;
        self.disarm_all();
        self.terminal = Terminal::Reported(Closed::Failed(error));
    }

    /// [`send`](Self::send) for a message compressed with permessage-deflate: the first
    /// frame of the message carries RSV1. `payload` is the compressed bytes (without the
    /// trailing `00 00 ff ff`, RFC 7692 §7.2.1).
    pub fn send_compressed(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: &mut [u8],
    ) -> Result<FrameHead, SendError> {
        if !self.compression {
            return Err(SendError::CompressionNotNegotiated);
        }
        self.send_data(kind, fin, true, payload)
    }

    /// Sends a whole message whose unmasked frame the caller built once, to write it on
    /// many connections (a broadcast): the checks and state of
    /// [`send`](Self::send) (or [`send_compressed`](Self::send_compressed) when
    /// `compressed`) with `fin`, for a payload of `payload_len` bytes. Returns the
    /// header, the same as the prepared one. Only a server can: a client must mask every
    /// frame with a key of its own ([`SendError::MaskRequired`]).
    pub fn send_prepared(
        &mut self,
        kind: DataKind,
        compressed: bool,
        payload_len: usize,
    ) -> Result<FrameHead, SendError> {
        if self.role == Role::Client {
            return Err(SendError::MaskRequired);
        }
        if compressed && !self.compression {
            return Err(SendError::CompressionNotNegotiated);
        }
        // A server's frame is not masked: the header is all that depends on this
        // connection.
        Ok(self
            .data_header(kind, true, compressed, payload_len as u64)?
            .head())
    }

    /// Starts a data frame of `kind` carrying `payload`, and returns its header for a
    /// vectored write of `[head, payload]`. A client masks `payload` in place.
    ///
    /// With `fin == false` the message continues: later calls (with the same `kind`) send
    /// continuation frames until one with `fin == true`. Text payloads must be UTF-8 as a
    /// whole message (fragments may split characters).
    ///
    /// Control frames queued meanwhile must only be written between data frames: call
    /// [`poll_transmit`](Self::poll_transmit) after `payload` is fully written.
    pub fn send(
        &mut self,
        kind: DataKind,
        fin: bool,
        payload: &mut [u8],
    ) -> Result<FrameHead, SendError> {
        self.send_data(kind, fin, false, payload)
    }

    fn send_data(
        &mut self,
        kind: DataKind,
        fin: bool,
        compressed: bool,
        payload: &mut [u8],
    ) -> Result<FrameHead, SendError> {
        let header = self.data_header(kind, fin, compressed, payload.len() as u64)?;
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        Ok(header.head())
    }

    /// The header of the next data frame, with this end's mask, and the state it
    /// changes (the message in progress).
    fn data_header(
        &mut self,
        kind: DataKind,
        fin: bool,
        compressed: bool,
        payload_len: u64,
    ) -> Result<Header, SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        let opcode = match self.tx_message {
            Some(current) if current != kind => return Err(SendError::MessageInProgress),
            Some(_) => OpCode::Continuation,
            None => match kind {
                DataKind::Text => OpCode::Text,
                DataKind::Binary => OpCode::Binary,
            },
        };
        self.tx_message = if fin { None } else { Some(kind) };
        let mask = self.next_mask();
        // RSV1 marks the whole message as compressed, on its first frame only (RFC 7692 §6).
        let rsv = if compressed && opcode != OpCode::Continuation {
            RSV1
        } else {
            0
        };
        Ok(Header {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        })
    }

    /// Queues a Ping with `payload` (at most 125 bytes), replacing one not yet sent.
    pub fn ping(&mut self, payload: &[u8], _now: Instant) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong);
        }
        self.queue_ping(payload);
        Ok(())
    }

    /// Queues an unsolicited Pong (a one-way heartbeat, RFC 6455 §5.5.3), replacing a
    /// Pong not yet sent.
    pub fn pong(&mut self, payload: &[u8]) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(SendError::ControlTooLong);
        }
        self.pong.fill(&[payload]);
        Ok(())
    }

    /// Starts the close handshake: queues a Close with `code` and `reason` (at most 123
    /// bytes) and arms the close timer.
    pub fn close(&mut self, code: CloseCode, reason: &str, now: Instant) -> Result<(), SendError> {
        if self.state != State::Open {
            return Err(SendError::Closed);
        }
        if !code.is_sendable() {
            return Err(SendError::InvalidCloseCode(code.0));
        }
        if reason.len() > MAX_REASON_LEN {
            return Err(SendError::ControlTooLong);
        }
        self.queue_close(Some(code), reason);
        self.initiated_locally = true;
        let step = machine::step(self.role, self.state, Trigger::LocalClose);
        self.state = step.next;
        if step.arm_close_timer {
            self.arm_close_timer(now);
        }
        Ok(())
    }

    /// Writes the next queued control frame into `out`, or says to shut the transport
    /// down once everything is out. `None` when there is nothing to do.
    ///
    /// `out` must hold at least [`MIN_TRANSMIT_BUFFER`] bytes; a smaller buffer gets
    /// `None`. Call it only between data frames.
    pub fn poll_transmit(&mut self, out: &mut [u8]) -> Option<Transmit> {
        if out.len() < MIN_TRANSMIT_BUFFER {
            return None;
        }
        // Nothing may follow our Close (RFC 6455 §5.5.1); a Pong queued before it goes first.
        if !self.close_sent {
            let slot = if self.pong.full {
                Some((OpCode::Pong, &mut self.pong))
            } else if self.outgoing.full {
                let opcode = if self.outgoing_is_close {
                    OpCode::Close
                } else {
                    OpCode::Ping
                };
                Some((opcode, &mut self.outgoing))
            } else {
                None
            };
            if let Some((opcode, slot)) = slot {
                slot.full = false;
                let payload = *slot;
                self.close_sent = opcode == OpCode::Close;
                let n = self.write_control(opcode, payload.payload(), out);
                return Some(Transmit::Bytes(n));
            }
        }
        if self.shutdown == Shutdown::Wanted && !self.close_pending() {
            self.shutdown = Shutdown::Done;
            return Some(Transmit::Shutdown);
        }
        None
    }

    fn write_control(&mut self, opcode: OpCode, payload: &[u8], out: &mut [u8]) -> usize {
        let mask = self.next_mask();
        let header = Header {
            fin: true,
            rsv: 0,
            opcode,
            mask,
            payload_len: payload.len() as u64,
        };
        let head = header.head();
        let head_len = head.len();
        out[..head_len].copy_from_slice(&head);
        let body = &mut out[head_len..head_len + payload.len()];
        body.copy_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(body, key, 0);
        }
        head_len + payload.len()
    }

    fn next_mask(&mut self) -> Option<[u8; 4]> {
        match self.role {
            Role::Client => Some(self.masks.next_key()),
            Role::Server => None,
        }
    }

    /// The decoder: one item from `input`.
    fn read<'b>(&mut self, input: &'b mut [u8], now: Instant) -> Result<Input<'b>, ProtocolError> {
        let held = usize::from(self.held);
        match self.rx {
            Rx::Payload { .. } => self.read_payload(input, 0),
            Rx::Header => {
                // The held bytes must come back at the front of the input; if a caller
                // dropped them there is nothing to decode until it does.
                let Some(after_held) = input.get(held..) else {
                    return Ok(NEED_MORE);
                };
                let (header, header_len) = match Header::decode(after_held)? {
                    Status::Partial => return Ok(NEED_MORE),
                    Status::Complete(decoded) => decoded,
                };
                self.check_header(&header)?;
                if header.opcode.is_control() {
                    self.read_control(input, header, header_len, now)
                } else {
                    self.start_data_frame(header)?;
                    // Move the held start of a character up against this frame's payload,
                    // over the header bytes already decoded.
                    input.copy_within(..held, header_len);
                    let read = self.read_payload(&mut input[header_len..], header_len)?;
                    Ok(read)
                }
            }
        }
    }

    fn check_header(&self, header: &Header) -> Result<(), ProtocolError> {
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        // RSV1 is permessage-deflate's, once negotiated, and only on the first frame of a
        // data message (RFC 7692 §6.1); RSV2 and RSV3 are never ours.
        let rsv1_allowed = self.compression
            && matches!(header.opcode, OpCode::Text | OpCode::Binary)
            && header.rsv == RSV1;
        if header.rsv != 0 && !rsv1_allowed {
            return Err(ProtocolError::ReservedBits);
        }
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if header.payload_len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
        }
        Ok(())
    }

    fn start_data_frame(&mut self, header: Header) -> Result<(), ProtocolError> {
        let kind = match (header.opcode, self.rx_message) {
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(kind)) => kind,
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (OpCode::Text, None) => DataKind::Text,
            (_, None) => DataKind::Binary,
        };
        if header.payload_len > self.config.max_frame_size {
            return Err(ProtocolError::FrameTooLarge);
        }
        let message_len = self.rx_message_len.saturating_add(header.payload_len);
        if message_len > self.config.max_message_size {
            return Err(ProtocolError::MessageTooLarge);
        }
        if header.opcode != OpCode::Continuation {
            self.rx_compressed = header.rsv == RSV1;
        }
        self.rx_message = Some(kind);
        self.rx_message_len = message_len;
        self.rx = Rx::Payload {
            fin: header.fin,
            mask: header.mask,
            remaining: header.payload_len,
        };
        Ok(())
    }

    /// Payload bytes of the current data frame, from `input` whose first `held` bytes
    /// are the carried start of a character. `skipped` bytes before `input` (a header)
    /// count as consumed.
    fn read_payload<'b>(
        &mut self,
        input: &'b mut [u8],
        skipped: usize,
    ) -> Result<Input<'b>, ProtocolError> {
        let Rx::Payload {
            fin,
            mut mask,
            remaining,
        } = self.rx
        else {
            return Ok(NEED_MORE);
        };
        let held = usize::from(self.held);
        if input.len() < held {
            return Ok(NEED_MORE);
        }
        let available = (input.len() - held).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let fresh = &mut input[held..held + available];
        if let Some(key) = &mut mask {
            apply_mask(fresh, *key, 0);
            // The key from the next byte on: a rotation of its little-endian word (the
            // first byte is the low one), one instruction.
            let phase = (available % 4) as u32;
            *key = u32::from_le_bytes(*key)
                .rotate_right(8 * phase)
                .to_le_bytes();
        }
        let remaining = remaining - available as u64;
        let frame_done = remaining == 0;
        let message_done = frame_done && fin;
        let end = match (frame_done, fin) {
            (false, _) => Boundary::Continues,
            (true, false) => Boundary::FrameEnd,
            (true, true) => Boundary::MessageEnd,
        };
        self.rx = if frame_done {
            Rx::Header
        } else {
            Rx::Payload {
                fin,
                mask,
                remaining,
            }
        };
        if message_done {
            self.rx_message_len = 0;
        }
        let kind = self.rx_message.unwrap_or(DataKind::Binary);
        if message_done {
            self.rx_message = None;
        }
        let input: &'b [u8] = input;
        let chunk = &input[..held + available];
        if self.rx_compressed {
            // Deflated bytes: UTF-8 is checked after inflating (`held` is 0 here).
            if available == 0 && !frame_done {
                return Ok(Input {
                    consumed: skipped,
                    event: None,
                });
            }
            return Ok(Input {
                consumed: skipped + available,
                event: Some(Event::Compressed {
                    kind,
                    bytes: chunk,
                    end,
                }),
            });
        }
        match kind {
            DataKind::Binary => {
                if available == 0 && !frame_done {
                    return Ok(Input {
                        consumed: skipped,
                        event: None,
                    });
                }
                Ok(Input {
                    consumed: skipped + available,
                    event: Some(Event::Binary { bytes: chunk, end }),
                })
            }
            DataKind::Text => {
                let text = utf8::complete_prefix(chunk).map_err(|_| ProtocolError::InvalidUtf8)?;
                if message_done && text.len() != chunk.len() {
                    return Err(ProtocolError::InvalidUtf8);
                }
                self.held = (chunk.len() - text.len()) as u8;
                if text.is_empty() && !frame_done {
                    return Ok(Input {
                        consumed: skipped,
                        event: None,
                    });
                }
                Ok(Input {
                    consumed: skipped + text.len(),
                    event: Some(Event::Text { text, end }),
                })
            }
        }
    }

    /// A whole control frame at `input[held..]`, or `Partial` until it is all there.
    fn read_control<'b>(
        &mut self,
        input: &'b mut [u8],
        header: Header,
        header_len: usize,
        now: Instant,
    ) -> Result<Input<'b>, ProtocolError> {
        let held = usize::from(self.held);
        let payload_len = header.payload_len as usize;
        let frame_len = header_len + payload_len;
        if input.len() < held + frame_len {
            return Ok(NEED_MORE);
        }
        // Rotate the held start of a character behind this frame, so the frame can be
        // consumed while the character stays at the front of the next input.
        // (At most 3 bytes, the start of one character: a byte at a time, a frame of at
        // most 139 bytes moved each time, in less code than a general rotation.)
        let frame_end = held + frame_len;
        for _ in 0..held {
            let first = input[0];
            input.copy_within(1..frame_end, 0);
            input[frame_end - 1] = first;
        }
        let payload = &mut input[header_len..frame_len];
        if let Some(key) = header.mask {
            apply_mask(payload, key, 0);
        }
        let payload: &'b [u8] = payload;
        let event = match header.opcode {
            OpCode::Ping => {
                if self.state == State::Open {
                    self.pong.fill(&[payload]);
                }
                Event::Ping(payload)
            }
            OpCode::Pong => Event::Pong(payload),
            _ => {
                let frame = CloseFrame::parse(payload)?;
                self.receive_close(payload, frame, now);
                Event::Close(frame)
            }
        };
        Ok(Input {
            consumed: frame_len,
            event: Some(event),
        })
    }

    fn receive_close(&mut self, payload: &[u8], frame: CloseFrame<'_>, now: Instant) {
        // Nothing fills the Pong slot once the peer's Close arrived (a Ping is answered
        // only while open), so it keeps the Close, unless a Pong still waits in it.
        if self.pong.full {
            self.peer_close = PeerClose::CodeOnly(frame.code);
        } else {
            self.pong.fill(&[payload]);
            self.pong.full = false;
            self.peer_close = PeerClose::InPongSlot;
        }
        let step = machine::step(self.role, self.state, Trigger::PeerClose);
        if step.send_close {
            // Echo the peer's code (RFC 6455 §5.5.1); an empty Close gets an empty reply.
            self.queue_close(frame.code, "");
        }
        self.state = step.next;
        if step.arm_close_timer {
            self.arm_close_timer(now);
        }
        self.disarm(Timer::KeepAlive);
        self.disarm(Timer::Pong);
        self.disarm(Timer::Idle);
        if step.shutdown {
            self.shutdown = Shutdown::Wanted;
        }
        if let Some(ending) = step.ending {
            self.terminal = Terminal::Pending(self.closed_for(ending, None));
        }
    }

    /// Applies a trigger that may end the connection; returns the ending if it did.
    fn apply(&mut self, trigger: Trigger) -> Option<Closed> {
        if self.terminal != Terminal::Running {
            return None;
        }
        let step = machine::step(self.role, self.state, trigger);
        // Of the triggers applied here, only the idle timer closes politely.
        if step.send_close {
            self.queue_close(Some(CloseCode::GOING_AWAY), "idle timeout");
        }
        self.state = step.next;
        if step.shutdown {
            self.shutdown = Shutdown::Wanted;
        }
        let ending = step.ending?;
        self.disarm_all();
        Some(self.closed_for(ending, None))
    }

    fn report(&mut self, closed: Closed) -> Event<'static> {
        self.terminal = Terminal::Reported(closed);
        Event::Closed(closed)
    }

    fn closed_for(&self, ending: Ending, error: Option<ProtocolError>) -> Closed {
        match ending {
            Ending::Clean => Closed::Clean(CleanClose {
                sent: self.sent_code,
                received: self.peer_close().and_then(|frame| frame.code),
                initiated_locally: self.initiated_locally,
            }),
            Ending::Abnormal => Closed::Abnormal,
            Ending::CloseTimedOut => Closed::TimedOut(Timeout::Close),
            Ending::KeepAliveTimedOut => Closed::TimedOut(Timeout::KeepAlive),
            Ending::IdleTimedOut => Closed::TimedOut(Timeout::Idle),
            Ending::Failed => error.map_or(Closed::Abnormal, Closed::Failed),
        }
    }

    fn queue_close(&mut self, code: Option<CloseCode>, reason: &str) {
        if self.close_pending() || self.close_sent {
            return;
        }
        self.sent_code = code;
        match code {
            // Replaces a Ping not yet sent: pointless once closing. A Pong for a Ping that
            // arrived before still goes out first.
            Some(code) => self
                .outgoing
                .fill(&[&code.0.to_be_bytes(), reason.as_bytes()]),
            None => self.outgoing.fill(&[]),
        }
        self.outgoing_is_close = true;
    }

    fn close_pending(&self) -> bool {
        self.outgoing.full && self.outgoing_is_close
    }

    fn queue_ping(&mut self, payload: &[u8]) {
        if !self.close_pending() {
            self.outgoing.fill(&[payload]);
            self.outgoing_is_close = false;
        }
    }

    fn disarm_all(&mut self) {
        self.timers = Timers::default();
    }

    /// The slot of `timer`, the flag of the slot, and the flag's value for `timer`.
    fn timer_slot(&mut self, timer: Timer) -> (&mut Deadline, &mut bool, bool) {
        let (timers, kinds) = (&mut self.timers, &mut self.timer_kinds);
        match timer {
            Timer::KeepAlive => (&mut timers.keepalive, &mut kinds.after_ping, false),
            Timer::Pong => (&mut timers.keepalive, &mut kinds.after_ping, true),
            Timer::Idle => (&mut timers.ending, &mut kinds.closing, false),
            Timer::Close => (&mut timers.ending, &mut kinds.closing, true),
        }
    }

    /// Whether `timer` is armed for `now` or earlier.
    fn is_due(&self, timer: Timer, now: Instant) -> bool {
        let (timers, kinds) = (&self.timers, &self.timer_kinds);
        let (deadline, flag, value) = match timer {
            Timer::KeepAlive => (timers.keepalive, kinds.after_ping, false),
            Timer::Pong => (timers.keepalive, kinds.after_ping, true),
            Timer::Idle => (timers.ending, kinds.closing, false),
            Timer::Close => (timers.ending, kinds.closing, true),
        };
        flag == value && deadline.is_some_and(|at| at.get() <= now.as_nanos())
    }

    /// Arms `timer` for `nanos` after `now`.
    fn arm(&mut self, timer: Timer, now: Instant, nanos: u64) {
        let (slot, flag, value) = self.timer_slot(timer);
        debug_assert!(
            slot.is_none() || *flag == value,
            "{timer:?} armed over the other timer of its slot"
        );
        *slot = deadline(now, nanos);
        *flag = value;
    }

    fn disarm(&mut self, timer: Timer) {
        let (deadline, flag, value) = self.timer_slot(timer);
        if *flag == value {
            *deadline = None;
        }
    }

    fn note_inbound(&mut self, now: Instant) {
        self.disarm(Timer::Pong);
        if self.state == State::Open {
            self.arm_keepalive(now);
        }
    }

    fn arm_keepalive(&mut self, now: Instant) {
        if let Some((interval, _)) = self.config.keepalive() {
            self.arm(Timer::KeepAlive, now, interval);
        }
    }

    fn arm_idle(&mut self, now: Instant) {
        // Once closing, only the close timer matters (data may still arrive).
        if let (State::Open, Some(idle)) = (self.state, self.config.idle_timeout()) {
            self.arm(Timer::Idle, now, idle);
        }
    }

    fn arm_close_timer(&mut self, now: Instant) {
        self.disarm(Timer::KeepAlive);
        self.disarm(Timer::Pong);
        self.disarm(Timer::Idle);
        if let Some(timeout) = self.config.close_timeout() {
            self.arm(Timer::Close, now, timeout);
        }
    }
}

/// Masking keys from ChaCha8 (RFC 6455 §5.3 wants them unpredictable): the words of the
/// ChaCha8 stream of the seed, in order, made [`MASK_KEYS`] at a time.
///
/// Every connection has one (a server never uses it), so it keeps the seed and the stream
/// position (72 bytes with the keys, 8-byte aligned) rather than a ChaCha core (48 bytes
/// but 16-byte aligned, which aligned the whole connection to 16) and a share of its
/// output; the generator is rebuilt from them for each refill, on the stack.
#[derive(Clone)]
struct MaskKeys {
    seed: [u8; 32],
    /// Keys handed out so far: the stream position of the next one.
    position: u64,
    /// The keys from `position` rounded down to a multiple of [`MASK_KEYS`] on.
    keys: [u32; MASK_KEYS],
}

/// Keys per refill. A refill runs ChaCha8 for 64 words whatever this is (about 100 ns),
/// so more keys make masking cheaper and every connection larger: 8 keys cost a client
/// some 13 ns per frame, and 32 bytes.
const MASK_KEYS: usize = 8;

impl MaskKeys {
    fn new(seed: [u8; 32]) -> Self {
        MaskKeys {
            seed,
            position: 0,
            keys: [0; MASK_KEYS],
        }
    }

    fn next_key(&mut self) -> [u8; 4] {
        let index = (self.position % MASK_KEYS as u64) as usize;
        if index == 0 {
            let mut rng = ChaCha8Rng::from_seed(self.seed);
            rng.set_word_pos(u128::from(self.position));
            for key in &mut self.keys {
                *key = rng.next_u32();
            }
        }
        self.position += 1;
        self.keys[index].to_ne_bytes()
    }
}

const NEED_MORE: Input<'static> = Input {
    consumed: 0,
    event: None,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeepAlive;
    use core::time::Duration;

    const SECOND: Duration = Duration::from_secs(1);

    fn keepalive(interval: u64, timeout: u64) -> Config {
        Config::default().with_keepalive(Some(KeepAlive::new(
            SECOND * interval as u32,
            SECOND * timeout as u32,
        )))
    }

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    /// The masking keys are the ChaCha8 stream of the seed, word by word, across refills.
    #[test]
    fn mask_keys_are_the_chacha8_stream() {
        let mut keys = MaskKeys::new([5; 32]);
        let mut stream = ChaCha8Rng::from_seed([5; 32]);
        for _ in 0..3 * MASK_KEYS + 1 {
            assert_eq!(keys.next_key(), stream.next_u32().to_ne_bytes());
        }
    }

    /// Regression: unconsumed bytes passed back (as the contract asks) re-armed the
    /// keepalive and cleared the pong deadline, so an adapter that re-runs its input loop
    /// on every wakeup kept a dead peer alive forever.
    #[test]
    fn leftover_input_is_not_keepalive_activity() {
        let mut conn = Connection::new(Role::Client, keepalive(10, 5), [1; 32], at(0));
        // Half a frame header waits for the rest.
        let mut leftover = [0x82, 0x7E, 0x01];
        assert_eq!(conn.handle_input(&mut leftover, at(0)), Ok(NEED_MORE));
        assert_eq!(conn.handle_timeout(at(10)), None);
        assert_eq!(conn.poll_timeout(), Some(at(15)));
        for secs in 11..15 {
            assert_eq!(conn.handle_input(&mut leftover, at(secs)), Ok(NEED_MORE));
            assert_eq!(conn.poll_timeout(), Some(at(15)), "at {secs} s");
        }
        assert_eq!(
            conn.handle_timeout(at(15)),
            Some(Event::Closed(Closed::TimedOut(Timeout::KeepAlive)))
        );
    }

    /// New bytes behind the leftover still count as activity.
    #[test]
    fn new_bytes_behind_leftover_are_activity() {
        let mut conn = Connection::new(Role::Client, keepalive(10, 5), [1; 32], at(0));
        let mut input = [0x82, 0x7E, 0x01, 0x00, 0xAA];
        assert_eq!(conn.handle_input(&mut input[..3], at(0)), Ok(NEED_MORE));
        assert_eq!(conn.handle_timeout(at(10)), None);
        assert_eq!(conn.poll_timeout(), Some(at(15)));
        let read = conn.handle_input(&mut input, at(12)).unwrap();
        assert_eq!(read.consumed, 5);
        // The pong deadline is gone and the keepalive is re-armed from the new bytes.
        assert_eq!(conn.poll_timeout(), Some(at(22)));
    }

    /// Regression: data arriving after our Close re-armed the idle timer, so
    /// `poll_timeout` reported a deadline at which `handle_timeout` had nothing to do.
    #[test]
    fn data_after_our_close_does_not_arm_the_idle_timer() {
        let config = Config::default().with_idle_timeout(Some(SECOND * 5));
        let mut conn = Connection::server(config, at(0));
        conn.close(CloseCode::NORMAL, "", at(0)).unwrap();
        assert_eq!(conn.poll_timeout(), Some(at(30)));
        // A masked one-byte binary message from the client.
        let mut frame = [0x82, 0x81, 0, 0, 0, 0, b'x'];
        let read = conn.handle_input(&mut frame, at(1)).unwrap();
        assert!(matches!(
            read.event,
            Some(Event::Binary { bytes: b"x", .. })
        ));
        assert_eq!(conn.poll_timeout(), Some(at(30)));
    }
}
