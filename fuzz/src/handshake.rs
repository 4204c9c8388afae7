//! Handshake parser targets.

/// The server's request parser.
pub fn server_request(_data: &[u8]) {}

/// The client's response parser.
pub fn client_response(_data: &[u8]) {}
