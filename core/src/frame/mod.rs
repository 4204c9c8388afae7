//! Frames (RFC 6455 §5.2): header decoding and encoding, and payload masking.

mod header;
mod mask;

pub use header::{FrameHead, Header, OpCode, MAX_HEADER_LEN};
pub use mask::apply_mask;

/// The largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;
