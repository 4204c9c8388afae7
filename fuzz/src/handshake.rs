//! Handshake parser targets.
//!
//! Invariants checked on every input:
//! - parsing never panics and never reports more bytes consumed than it was given;
//! - a complete parse gives the same result from its head alone, and `Partial` one byte short;
//! - a server error's rejection fits a 512-byte buffer and parses back as an HTTP response
//!   with the rejection's status;
//! - accepting a parsed request (with an offered subprotocol and extension) writes a `101`
//!   that the client side accepts;
//! - an accepted response's subprotocol and extensions were requested.

use sockeye_proto::handshake::{
    parse_request, Accept, ClientHandshake, ClientRequest, Response, UpgradeRequest, EMPTY_HEADER,
};
use sockeye_proto::Status;

/// Parses `data` as a client's upgrade request and checks the server's answers.
pub fn server_request(data: &[u8]) {
    let mut headers = [EMPTY_HEADER; 32];
    match parse_request(data, &mut headers) {
        Ok(Status::Partial) => assert!(data.len() < 8 * 1024),
        Ok(Status::Complete(upgrade)) => check_upgrade(data, &upgrade),
        Err(error) => {
            let rejection = error.rejection();
            let mut out = [0u8; 512];
            let n = rejection
                .write(&mut out)
                .expect("every rejection fits 512 bytes");
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            assert_eq!(response.parse(&out[..n]), Ok(httparse::Status::Complete(n)));
            assert_eq!(response.code, Some(rejection.status()));
        }
    }
}

fn check_upgrade(data: &[u8], upgrade: &UpgradeRequest<'_, '_>) {
    let head = upgrade.head_len();
    assert!(head > 0 && head <= data.len() && head <= 8 * 1024);

    let mut headers = [EMPTY_HEADER; 32];
    let alone = parse_request(&data[..head], &mut headers)
        .expect("the head alone parses")
        .complete()
        .expect("the head alone is complete");
    assert_eq!(alone.head_len(), head);
    assert_eq!(
        (alone.path(), alone.host(), alone.key()),
        (upgrade.path(), upgrade.host(), upgrade.key())
    );
    let mut headers = [EMPTY_HEADER; 32];
    assert_eq!(
        parse_request(&data[..head - 1], &mut headers),
        Ok(Status::Partial)
    );

    // Answer with the first offered subprotocol and extension, and check the client agrees.
    let protocols: Vec<&str> = upgrade.protocols().collect();
    let extensions: Vec<&str> = upgrade.extensions().collect();
    let accept = Accept::new()
        .with_protocol(protocols.first().copied())
        .with_extensions(&extensions[..extensions.len().min(1)]);
    let mut out = vec![0u8; 16 * 1024];
    let n = match upgrade.accept(&accept, &mut out) {
        Ok(n) => n,
        // An offered item may hold bytes that cannot be written back (a control character).
        Err(sockeye_proto::WriteError::InvalidField) => return,
        Err(other) => panic!("accept failed: {other:?}"),
    };
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut response = httparse::Response::new(&mut headers);
    assert_eq!(response.parse(&out[..n]), Ok(httparse::Status::Complete(n)));
    assert_eq!(response.code, Some(101));

    let Some(nonce) = nonce_of(upgrade.key()) else {
        panic!("a validated key decodes to 16 bytes");
    };
    let client = ClientHandshake::new(nonce);
    assert_eq!(client.key(), upgrade.key());
    let request = ClientRequest::new("fuzz", "/")
        .with_protocols(&protocols)
        .with_extensions(&extensions);
    let mut headers = [EMPTY_HEADER; 32];
    match client.parse_response(&request, &out[..n], &mut headers) {
        Ok(Status::Complete(Response::Accepted(accepted))) => {
            assert_eq!(accepted.consumed(), n);
            assert_eq!(accepted.protocol(), accept.protocol);
        }
        other => panic!("the client refused the server's 101: {other:?}"),
    }
}

/// Decodes a canonical base64 key back into its nonce.
fn nonce_of(key: &str) -> Option<[u8; 16]> {
    fn sextet(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let key = key.as_bytes().strip_suffix(b"==")?;
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::with_capacity(16);
    for &c in key {
        bits = (bits << 6) | sextet(c)?;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    out.try_into().ok()
}

/// The request `client_response` answers: two subprotocols, one extension.
const REQUEST: ClientRequest<'static> = ClientRequest::new("server.example.com", "/chat")
    .with_protocols(&["chat", "superchat"])
    .with_extensions(&["permessage-deflate; client_max_window_bits"]);

/// Parses `data` as the server's answer to [`REQUEST`] sent with the RFC 6455 sample nonce
/// (`Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`).
pub fn client_response(data: &[u8]) {
    let client = ClientHandshake::new(*b"the sample nonce");
    let mut headers = [EMPTY_HEADER; 32];
    let response = match client.parse_response(&REQUEST, data, &mut headers) {
        Ok(Status::Complete(response)) => response,
        Ok(Status::Partial) => {
            assert!(data.len() < 8 * 1024);
            return;
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    let consumed = response.consumed();
    assert!(consumed > 0 && consumed <= data.len() && consumed <= 8 * 1024);
    match response {
        Response::Accepted(accepted) => {
            if let Some(protocol) = accepted.protocol() {
                assert!(REQUEST.protocols.contains(&protocol));
            }
            for extension in accepted.extensions() {
                let name = extension.split(';').next().unwrap_or_default().trim();
                assert!(
                    name.eq_ignore_ascii_case("permessage-deflate"),
                    "{extension}"
                );
            }
        }
        Response::Rejected(rejected) => {
            assert!((100..=999).contains(&rejected.status()) && rejected.status() != 101);
        }
    }
    let mut headers = [EMPTY_HEADER; 32];
    let alone = client
        .parse_response(&REQUEST, &data[..consumed], &mut headers)
        .expect("the head alone parses")
        .complete()
        .expect("the head alone is complete");
    assert_eq!(alone.consumed(), consumed);
    let mut headers = [EMPTY_HEADER; 32];
    assert_eq!(
        client.parse_response(&REQUEST, &data[..consumed - 1], &mut headers),
        Ok(Status::Partial)
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn nonce_of_inverts_the_key() {
        let client = sockeye_proto::ClientHandshake::new(*b"the sample nonce");
        assert_eq!(super::nonce_of(client.key()), Some(*b"the sample nonce"));
        assert_eq!(super::nonce_of("short=="), None);
    }
}
