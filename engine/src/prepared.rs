//! [`PreparedMessage`]: one message framed (and compressed) once, written to any number
//! of server connections by reference: a broadcast costs no copy per subscriber.

use bytes::{BufMut, Bytes, BytesMut};
use sockeye_proto::deflate::Deflater;
use sockeye_proto::extension::Direction;
use sockeye_proto::frame::{Header, OpCode};
use sockeye_proto::{DataKind, DeflateConfig};

/// The RSV1 bit in [`Header::rsv`]: a compressed message (RFC 7692 §6).
const RSV1: u8 = 0b100;

/// A text or binary message framed once for many connections (chat rooms, market data,
/// dashboards): give it to every subscriber's `send_prepared` (or `feed_prepared` /
/// `try_feed_prepared`) and each server connection queues the same bytes, shared by
/// reference count. Cloning it is cheap.
///
/// With [`with_compression`](Self::with_compression) it is also compressed once, for
/// the connections whose permessage-deflate lets them share it: those that agreed to
/// `server_no_context_takeover` (so no connection's window depends on what the others
/// were sent) with a window at least as large as the one it was compressed with. Any
/// other connection falls back to an ordinary send of the payload (compressed for it
/// alone, one copy), as does a client, which must mask each frame with its own key.
///
/// ```
/// # use sockeye_engine::PreparedMessage;
/// # use sockeye_proto::DeflateConfig;
/// let tick = PreparedMessage::text(r#"{"symbol":"ACME","price":101.5}"#);
/// assert_eq!(tick.payload().len(), 31);
/// // Framed once: a server's unmasked header, then the payload.
/// assert_eq!(&tick.frame()[..2], &[0x81, 31]);
///
/// let big = PreparedMessage::text("all work and no play ".repeat(100))
///     .with_compression(&DeflateConfig::default());
/// assert!(big.compressed_frame().unwrap().len() < 200);
/// ```
#[derive(Clone, Debug)]
pub struct PreparedMessage {
    kind: DataKind,
    payload: Bytes,
    frame: Bytes,
    compressed: Option<Compressed>,
}

/// The compressed frame, and the window it needs.
#[derive(Clone, Debug)]
struct Compressed {
    frame: Bytes,
    payload_len: usize,
    window_bits: u8,
}

impl PreparedMessage {
    /// A text message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::new(DataKind::Text, Bytes::from(text.into()))
    }

    /// A binary message (a `Vec<u8>` or `Bytes` is taken without a copy).
    pub fn binary(payload: impl Into<Bytes>) -> Self {
        Self::new(DataKind::Binary, payload.into())
    }

    fn new(kind: DataKind, payload: Bytes) -> Self {
        let frame = frame(kind, false, &payload);
        PreparedMessage {
            kind,
            payload,
            frame,
            compressed: None,
        }
    }

    /// Also compressed once with `config`'s level and window (without context
    /// takeover), when the payload reaches `config.threshold` and compressing makes it
    /// smaller; otherwise unchanged.
    pub fn with_compression(mut self, config: &DeflateConfig) -> Self {
        self.compressed = None;
        if self.payload.len() < config.threshold {
            return self;
        }
        let direction = Direction {
            window_bits: config.compress_window_bits,
            context_takeover: false,
        };
        let mut deflater = Deflater::new(direction, config.level);
        let mut out = Vec::with_capacity(self.payload.len() / 2 + 64);
        if deflater.compress(&self.payload, true, &mut out).is_ok()
            && out.len() < self.payload.len()
        {
            self.compressed = Some(Compressed {
                frame: frame(self.kind, true, &out),
                payload_len: out.len(),
                window_bits: direction.window_bits,
            });
        }
        self
    }

    /// Text or binary.
    pub fn kind(&self) -> DataKind {
        self.kind
    }

    /// The payload, uncompressed.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The whole uncompressed frame (a server's: unmasked, FIN set).
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// The whole compressed frame (RSV1 set), if it was compressed.
    pub fn compressed_frame(&self) -> Option<&Bytes> {
        self.compressed.as_ref().map(|c| &c.frame)
    }

    /// The compressed frame's payload length and window bits, if it was compressed.
    pub(crate) fn compressed(&self) -> Option<(&Bytes, usize, u8)> {
        self.compressed
            .as_ref()
            .map(|c| (&c.frame, c.payload_len, c.window_bits))
    }
}

/// A server's frame (unmasked, FIN) of `kind` carrying `payload`.
fn frame(kind: DataKind, compressed: bool, payload: &[u8]) -> Bytes {
    let opcode = match kind {
        DataKind::Text => OpCode::Text,
        DataKind::Binary => OpCode::Binary,
    };
    let head = Header {
        fin: true,
        rsv: if compressed { RSV1 } else { 0 },
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    }
    .head();
    let mut frame = BytesMut::with_capacity(head.as_bytes().len() + payload.len());
    frame.put_slice(head.as_bytes());
    frame.put_slice(payload);
    frame.freeze()
}
