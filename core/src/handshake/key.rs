//! `Sec-WebSocket-Key` and `Sec-WebSocket-Accept` (RFC 6455 §4.1, §4.2.2).

use core::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// The GUID appended to the client's key before hashing (RFC 6455 §1.3).
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A `Sec-WebSocket-Accept` value: base64 of SHA-1(key ++ [`GUID`]), 28 ASCII bytes.
///
/// ```
/// use sockeye_proto::handshake::AcceptKey;
///
/// // The example of RFC 6455 §1.3.
/// let accept = AcceptKey::derive(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AcceptKey([u8; 28]);

impl AcceptKey {
    /// The accept value for a `Sec-WebSocket-Key` value, given as sent (the base64 text,
    /// trimmed; it is hashed, not decoded).
    pub fn derive(key: &[u8]) -> AcceptKey {
        let mut sha = Sha1::new();
        sha.update(key);
        sha.update(GUID.as_bytes());
        let digest = sha.finalize();
        let mut out = [0u8; 28];
        // 20 bytes encode to exactly 28 characters, so this cannot fail.
        let _ = STANDARD.encode_slice(digest, &mut out);
        AcceptKey(out)
    }

    /// The value as text.
    pub fn as_str(&self) -> &str {
        // Base64 output is ASCII.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The value as bytes.
    pub fn as_bytes(&self) -> &[u8; 28] {
        &self.0
    }
}

impl fmt::Debug for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AcceptKey").field(&self.as_str()).finish()
    }
}

impl fmt::Display for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `Sec-WebSocket-Key` for a 16-byte nonce: its base64, 24 ASCII bytes.
pub(crate) fn encode_nonce(nonce: &[u8; 16]) -> [u8; 24] {
    let mut out = [0u8; 24];
    // 16 bytes encode to exactly 24 characters, so this cannot fail.
    let _ = STANDARD.encode_slice(nonce, &mut out);
    out
}

/// Whether `key` (already trimmed) is base64 of exactly 16 bytes, in the canonical padded form
/// a client produces (24 characters ending in `==`).
pub(crate) fn is_valid_key(key: &[u8]) -> bool {
    if key.len() != 24 {
        return false;
    }
    let mut nonce = [0u8; 18];
    matches!(STANDARD.decode_slice(key, &mut nonce), Ok(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_section_1_3_vector() {
        let accept = AcceptKey::derive(b"dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(accept.as_str(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(accept.as_bytes(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn rfc6455_section_4_1_nonce_example() {
        // §4.1: the nonce 0x01..0x10 is sent as "AQIDBAUGBwgJCgsMDQ4PEC==" in the RFC's prose,
        // which is not canonical base64; the canonical encoding ends in "EA==".
        let nonce: [u8; 16] = core::array::from_fn(|i| i as u8 + 1);
        assert_eq!(&encode_nonce(&nonce), b"AQIDBAUGBwgJCgsMDQ4PEA==");
        assert!(is_valid_key(b"AQIDBAUGBwgJCgsMDQ4PEA=="));
        assert!(is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=="));
    }

    #[test]
    fn keys_must_be_base64_of_16_bytes() {
        assert!(!is_valid_key(b""));
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ")); // unpadded
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ=")); // short padding
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZQ===")); // 25 chars
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZ!==")); // not base64
        assert!(!is_valid_key(b"dGhlIHNhbXBsZSBub25jZXg=")); // 17 bytes
        assert!(!is_valid_key(b"AQIDBAUGBwgJCgsMDQ4PEC==")); // non-zero trailing bits
        assert!(!is_valid_key(b"AAAAAAAAAAAAAAAAAAAAAAAAAAAA")); // 28 characters
    }

    #[test]
    fn display_and_debug() {
        extern crate std;
        use std::format;
        let accept = AcceptKey::derive(b"dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(format!("{accept}"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_eq!(
            format!("{accept:?}"),
            "AcceptKey(\"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\")"
        );
    }
}
