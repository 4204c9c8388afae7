//! Property tests: random bytes and random mutations of valid heads never panic, never report
//! more consumed than given, and every complete parse is stable under truncation to its head.

use proptest::prelude::*;
use sockeye_proto::handshake::{
    parse_request, Accept, ClientHandshake, ClientRequest, Response, EMPTY_HEADER,
};
use sockeye_proto::Status;

const REQUEST: &[u8] = b"GET /chat?x=1 HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: keep-alive, Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
    Sec-WebSocket-Version: 13\r\n\
    \r\n";

const RESPONSE: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
    Sec-WebSocket-Protocol: chat\r\n\
    Sec-WebSocket-Extensions: permessage-deflate\r\n\
    \r\n";

const CLIENT_REQUEST: ClientRequest<'static> = ClientRequest::new("server.example.com", "/chat")
    .with_protocols(&["chat", "superchat"])
    .with_extensions(&["permessage-deflate; client_max_window_bits"]);

fn check_request(data: &[u8]) {
    let mut headers = [EMPTY_HEADER; 16];
    match parse_request(data, &mut headers) {
        Ok(Status::Partial) => {}
        Ok(Status::Complete(upgrade)) => {
            let head = upgrade.head_len();
            assert!(head > 0 && head <= data.len());
            // The same request from its head alone; one byte less is Partial.
            let mut again = [EMPTY_HEADER; 16];
            let alone = parse_request(&data[..head], &mut again)
                .unwrap()
                .complete()
                .unwrap();
            assert_eq!(alone.head_len(), head);
            assert_eq!(alone.key(), upgrade.key());
            let mut short = [EMPTY_HEADER; 16];
            assert_eq!(
                parse_request(&data[..head - 1], &mut short),
                Ok(Status::Partial)
            );
            // Accepting with whatever was offered works.
            let protocol = upgrade.protocols().next();
            let mut out = [0u8; 8192];
            let accept = Accept::new().with_protocol(protocol);
            upgrade.accept(&accept, &mut out).unwrap();
            let _ = upgrade.extensions().count();
        }
        Err(error) => {
            let mut out = [0u8; 512];
            let n = error.rejection().write(&mut out).unwrap();
            assert!(n <= out.len());
        }
    }
}

fn check_response(data: &[u8]) {
    let client = ClientHandshake::new(*b"the sample nonce");
    let mut headers = [EMPTY_HEADER; 16];
    match client.parse_response(&CLIENT_REQUEST, data, &mut headers) {
        Ok(Status::Partial) | Err(_) => {}
        Ok(Status::Complete(response)) => {
            let consumed = response.consumed();
            assert!(consumed > 0 && consumed <= data.len());
            if let Response::Accepted(accepted) = response {
                if let Some(protocol) = accepted.protocol() {
                    assert!(CLIENT_REQUEST.protocols.contains(&protocol));
                }
            }
            let mut again = [EMPTY_HEADER; 16];
            let alone = client
                .parse_response(&CLIENT_REQUEST, &data[..consumed], &mut again)
                .unwrap()
                .complete()
                .unwrap();
            assert_eq!(alone.consumed(), consumed);
        }
    }
}

/// A valid head with a few random edits: flip, insert, delete, truncate.
fn mutated(base: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    let edit = (0usize..4, any::<prop::sample::Index>(), any::<u8>());
    prop::collection::vec(edit, 1..6).prop_map(move |edits| {
        let mut bytes = base.to_vec();
        for (kind, at, byte) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => {
                    bytes.remove(i);
                }
                _ => bytes.truncate(i),
            }
        }
        bytes
    })
}

/// Bytes that look like HTTP often enough to get past the first line.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        &b"GET "[..],
        b"HTTP/1.1",
        b" 101 ",
        b"\r\n",
        b": ",
        b",",
        b"Upgrade",
        b"websocket",
        b"Connection",
        b"Host",
        b"Sec-WebSocket-Key",
        b"dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version",
        b"13",
        b"Sec-WebSocket-Accept",
        b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        b"Sec-WebSocket-Protocol",
        b"chat",
        b"/",
        b"\xff",
    ]);
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        check_request(&data);
        check_response(&data);
    }

    #[test]
    fn http_ish_bytes_never_panic(data in http_ish()) {
        check_request(&data);
        check_response(&data);
    }

    #[test]
    fn mutated_requests_never_panic(data in mutated(REQUEST)) {
        check_request(&data);
    }

    #[test]
    fn mutated_responses_never_panic(data in mutated(RESPONSE)) {
        check_response(&data);
    }
}

#[test]
fn the_bases_are_valid() {
    let mut headers = [EMPTY_HEADER; 16];
    assert!(parse_request(REQUEST, &mut headers)
        .unwrap()
        .complete()
        .is_some());
    let client = ClientHandshake::new(*b"the sample nonce");
    let mut headers = [EMPTY_HEADER; 16];
    assert!(matches!(
        client.parse_response(&CLIENT_REQUEST, RESPONSE, &mut headers),
        Ok(Status::Complete(Response::Accepted(_)))
    ));
}
