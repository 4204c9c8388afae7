//! Client handshake: golden request bytes, every response split at every byte, and the full
//! round trip client request → server parse → server answer → client parse.

use sockeye_proto::handshake::{
    parse_request, Accept, ClientHandshake, ClientRequest, Rejection, RequestError, Response,
    ResponseError, Url, EMPTY_HEADER,
};
use sockeye_proto::Status;

const NONCE: [u8; 16] = *b"the sample nonce";

#[test]
fn golden_request() {
    let client = ClientHandshake::new(NONCE);
    let url = Url::parse("ws://[::1]:9001/chat?room=1").unwrap();
    let request = url
        .request()
        .with_protocols(&["chat", "superchat"])
        .with_extensions(&["permessage-deflate; client_max_window_bits"])
        .with_headers(&[
            ("Origin", b"http://example.com"),
            ("Authorization", b"Bearer abc"),
        ]);
    let mut out = [0u8; 1024];
    let n = client.write_request(&request, &mut out).unwrap();
    assert_eq!(
        std::str::from_utf8(&out[..n]).unwrap(),
        "GET /chat?room=1 HTTP/1.1\r\n\
         Host: [::1]:9001\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
         Origin: http://example.com\r\n\
         Authorization: Bearer abc\r\n\
         \r\n"
    );
}

/// Runs the whole handshake in memory and returns the client's view of the answer.
fn round_trip(
    request: &ClientRequest<'_>,
    choose: impl Fn(
        &sockeye_proto::UpgradeRequest<'_, '_>,
    ) -> Result<Accept<'static>, Rejection<'static>>,
    check: impl Fn(Response<'_, '_>),
) {
    let client = ClientHandshake::new(NONCE);
    let mut wire = [0u8; 2048];
    let n = client.write_request(request, &mut wire).unwrap();
    // Early frame bytes after the head stay with the connection.
    wire[n..n + 2].copy_from_slice(b"\x81\x80");

    let mut headers = [EMPTY_HEADER; 32];
    let upgrade = parse_request(&wire[..n + 2], &mut headers)
        .unwrap()
        .complete()
        .unwrap();
    assert_eq!(upgrade.head_len(), n);
    assert_eq!(upgrade.key(), Some(client.key()));
    assert_eq!(upgrade.accept_key(), Some(client.expected_accept()));
    assert!(upgrade.protocols().eq(request.protocols.iter().copied()));

    let mut reply = [0u8; 2048];
    let m = match choose(&upgrade) {
        Ok(accept) => upgrade.accept(&accept, &mut reply).unwrap(),
        Err(rejection) => rejection.write(&mut reply).unwrap(),
    };
    reply[m] = 0x81; // a first frame byte from the server

    let mut headers = [EMPTY_HEADER; 32];
    let response = client
        .parse_response(request, &reply[..m + 1], &mut headers)
        .unwrap()
        .complete()
        .unwrap();
    assert_eq!(response.consumed(), m);
    check(response);
}

#[test]
fn round_trip_accepts() {
    let request = Url::parse("ws://example.com:8080/chat")
        .unwrap()
        .request()
        .with_protocols(&["v2.chat", "v1.chat"])
        .with_extensions(&["permessage-deflate; client_max_window_bits", "x-foo"]);
    round_trip(
        &request,
        |upgrade| {
            assert_eq!(upgrade.host(), "example.com:8080");
            assert_eq!(upgrade.path(), "/chat");
            let protocol = upgrade.select_protocol(&["v1.chat", "v2.chat"]);
            assert_eq!(protocol, Some("v2.chat"));
            Ok(Accept::new()
                .with_protocol(Some("v2.chat"))
                .with_extensions(&["permessage-deflate; server_no_context_takeover"])
                .with_headers(&[("Server", b"sockeye")]))
        },
        |response| {
            let Response::Accepted(accepted) = response else {
                panic!("{response:?}");
            };
            assert_eq!(accepted.protocol(), Some("v2.chat"));
            assert!(accepted
                .extensions()
                .eq(["permessage-deflate; server_no_context_takeover"]));
            assert_eq!(accepted.header("server"), Some(&b"sockeye"[..]));
        },
    );
    // Nothing offered, nothing chosen.
    round_trip(
        &ClientRequest::new("a", "/"),
        |_| Ok(Accept::new()),
        |response| {
            let Response::Accepted(accepted) = response else {
                panic!("{response:?}");
            };
            assert_eq!(accepted.protocol(), None);
            assert_eq!(accepted.extensions().count(), 0);
        },
    );
}

#[test]
fn round_trip_rejections_are_reported() {
    let rejections = [
        Rejection::BAD_REQUEST,
        Rejection::UPGRADE_REQUIRED,
        Rejection::custom(401, "Unauthorized", &[("WWW-Authenticate", b"Bearer")]),
        Rejection::custom(403, "Forbidden", &[]),
        Rejection::custom(404, "Not Found", &[]),
    ];
    for rejection in rejections {
        round_trip(
            &ClientRequest::new("a", "/private"),
            |_| Err(rejection),
            |response| {
                let Response::Rejected(rejected) = response else {
                    panic!("{response:?}");
                };
                assert_eq!(rejected.status(), rejection.status());
                assert_eq!(rejected.reason(), rejection.reason());
                for (name, value) in rejection.headers() {
                    assert_eq!(rejected.header(name), Some(*value));
                }
            },
        );
    }
}

#[test]
fn server_errors_reach_the_client_as_rejections() {
    // A client speaking another version gets 426 and can see which version to use.
    let request = b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let mut headers = [EMPTY_HEADER; 16];
    let error = parse_request(request, &mut headers).unwrap_err();
    assert_eq!(error, RequestError::UnsupportedVersion);
    let mut out = [0u8; 512];
    let n = error.rejection().write(&mut out).unwrap();
    let client = ClientHandshake::new(NONCE);
    let mut headers = [EMPTY_HEADER; 16];
    let Status::Complete(Response::Rejected(rejected)) = client
        .parse_response(&ClientRequest::new("a", "/"), &out[..n], &mut headers)
        .unwrap()
    else {
        panic!("rejected");
    };
    assert_eq!(rejected.status(), 426);
    assert_eq!(rejected.header("Sec-WebSocket-Version"), Some(&b"13"[..]));
}

/// Every response case: (name, bytes, expected outcome) where the outcome is the status for a
/// rejection, 101 for an accept, or the error.
fn response_cases() -> Vec<(&'static str, Vec<u8>, Result<u16, ResponseError>)> {
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    let with = |from: &str, to: &str| ok.replacen(from, to, 1).into_bytes();
    vec![
        ("101", ok.as_bytes().to_vec(), Ok(101)),
        (
            "101 lower-case, lists",
            b"HTTP/1.1 101 x\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n\
              sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
                .to_vec(),
            Ok(101),
        ),
        (
            "100 then 101",
            [b"HTTP/1.1 100 Continue\r\n\r\n".as_slice(), ok.as_bytes()].concat(),
            Ok(101),
        ),
        (
            "403",
            b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec(),
            Ok(403),
        ),
        (
            "404 body",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno!".to_vec(),
            Ok(404),
        ),
        ("HTTP/1.0 200", b"HTTP/1.0 200 OK\r\n\r\n".to_vec(), Ok(200)),
        (
            "garbage",
            b"SSH-2.0-OpenSSH_9.6\r\n\r\n".to_vec(),
            Err(ResponseError::Malformed),
        ),
        (
            "101 over 1.0",
            with("HTTP/1.1", "HTTP/1.0"),
            Err(ResponseError::HttpVersion),
        ),
        (
            "no upgrade",
            with("Upgrade: websocket", "Upgrade: h2c"),
            Err(ResponseError::NotUpgrade),
        ),
        (
            "no connection",
            with("Connection: Upgrade", "Connection: close"),
            Err(ResponseError::ConnectionNotUpgrade),
        ),
        (
            "no accept",
            with("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", ""),
            Err(ResponseError::MissingAccept),
        ),
        (
            "wrong accept",
            with("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "dGhlIHNhbXBsZSBub25jZQ=="),
            Err(ResponseError::AcceptMismatch),
        ),
        (
            "unrequested protocol",
            with("\r\n\r\n", "\r\nSec-WebSocket-Protocol: chat\r\n\r\n"),
            Err(ResponseError::ProtocolNotRequested),
        ),
        (
            "unrequested extension",
            with(
                "\r\n\r\n",
                "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
            ),
            Err(ResponseError::ExtensionNotRequested),
        ),
    ]
}

fn outcome(response: &[u8]) -> Result<Status<(u16, usize)>, ResponseError> {
    let client = ClientHandshake::new(NONCE);
    let mut headers = [EMPTY_HEADER; 16];
    let status = client.parse_response(&ClientRequest::new("a", "/"), response, &mut headers)?;
    Ok(match status {
        Status::Partial => Status::Partial,
        Status::Complete(Response::Accepted(a)) => Status::Complete((101, a.consumed())),
        Status::Complete(Response::Rejected(r)) => Status::Complete((r.status(), r.consumed())),
    })
}

#[test]
fn every_response_split_at_every_byte() {
    for (name, response, expected) in response_cases() {
        let whole = outcome(&response);
        match expected {
            Ok(status) => {
                let Ok(Status::Complete((got, consumed))) = whole else {
                    panic!("{name}: {whole:?}");
                };
                assert_eq!(got, status, "{name}");
                let body = if name == "404 body" { 3 } else { 0 };
                assert_eq!(consumed, response.len() - body, "{name}");
                // Every strict prefix of the head is Partial.
                for split in 0..consumed {
                    assert_eq!(
                        outcome(&response[..split]),
                        Ok(Status::Partial),
                        "{name} {split}"
                    );
                }
            }
            Err(error) => {
                assert_eq!(whole, Err(error), "{name}");
                for split in 0..response.len() {
                    match outcome(&response[..split]) {
                        Ok(Status::Partial) => {}
                        other => assert_eq!(other, Err(error), "{name} {split}"),
                    }
                }
            }
        }
    }
}
