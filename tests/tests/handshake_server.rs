//! Server handshake: golden bytes for every rejection and for the 101, and the chunking
//! invariant (every request split at every byte gives `Partial`, then the same result).

use sockeye_proto::handshake::{
    parse_request, parse_request_with, Accept, HeadLimits, Rejection, RequestError, WriteError,
    EMPTY_HEADER,
};
use sockeye_proto::Status;

/// The RFC 6455 §1.3 opening handshake.
const VALID: &[u8] = b"GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\n\
    Sec-WebSocket-Version: 13\r\n\
    \r\n";

const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const BAD_REQUEST_WITH_VERSION: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
    Sec-WebSocket-Version: 13\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const UPGRADE_REQUIRED: &[u8] = b"HTTP/1.1 426 Upgrade Required\r\n\
    Upgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\n\
    Content-Length: 0\r\n\r\n";
const METHOD_NOT_ALLOWED: &[u8] = b"HTTP/1.1 405 Method Not Allowed\r\n\
    Allow: GET\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
    Connection: close\r\nContent-Length: 0\r\n\r\n";

/// What an adapter does with a complete head: the bytes to send back.
fn respond(request: &[u8], accept: &Accept<'_>) -> Result<Vec<u8>, RequestError> {
    let mut headers = [EMPTY_HEADER; 32];
    let mut out = [0u8; 1024];
    match parse_request(request, &mut headers) {
        Ok(Status::Complete(upgrade)) => {
            let n = upgrade.accept(accept, &mut out).expect("accept");
            Ok(out[..n].to_vec())
        }
        Ok(Status::Partial) => panic!("partial: {:?}", String::from_utf8_lossy(request)),
        Err(error) => {
            let n = error.rejection().write(&mut out).expect("rejection");
            assert_eq!(&out[..n], golden_for(error), "{error:?}");
            Err(error)
        }
    }
}

fn golden_for(error: RequestError) -> &'static [u8] {
    match error.rejection().status() {
        400 if error == RequestError::MissingVersion => BAD_REQUEST_WITH_VERSION,
        400 => BAD_REQUEST,
        405 => METHOD_NOT_ALLOWED,
        426 => UPGRADE_REQUIRED,
        431 => TOO_LARGE,
        other => panic!("unexpected status {other}"),
    }
}

fn written(rejection: Rejection<'_>) -> Vec<u8> {
    let mut out = [0u8; 512];
    let n = rejection.write(&mut out).expect("fits");
    out[..n].to_vec()
}

/// `VALID` with the header line starting with `name` replaced by `line` (or removed).
fn with(name: &str, line: Option<&str>) -> Vec<u8> {
    let text = std::str::from_utf8(VALID).unwrap();
    let mut out = String::new();
    for l in text.split_inclusive("\r\n") {
        if l.to_ascii_lowercase()
            .starts_with(&format!("{}:", name.to_ascii_lowercase()))
        {
            if let Some(line) = line {
                out.push_str(line);
                out.push_str("\r\n");
            }
        } else {
            out.push_str(l);
        }
    }
    out.into_bytes()
}

#[test]
fn golden_rejection_constants() {
    assert_eq!(written(Rejection::BAD_REQUEST), BAD_REQUEST);
    assert_eq!(
        written(Rejection::BAD_REQUEST_WITH_VERSION),
        BAD_REQUEST_WITH_VERSION
    );
    assert_eq!(written(Rejection::UPGRADE_REQUIRED), UPGRADE_REQUIRED);
    assert_eq!(
        written(Rejection::REQUEST_HEADER_FIELDS_TOO_LARGE),
        TOO_LARGE
    );
}

#[test]
fn golden_custom_rejections() {
    let cases: &[(Rejection<'_>, &[u8])] = &[
        (
            Rejection::custom(
                401,
                "Unauthorized",
                &[("WWW-Authenticate", b"Basic realm=\"ws\"")],
            ),
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ws\"\r\n\
              Connection: close\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Rejection::custom(403, "Forbidden", &[]),
            b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Rejection::custom(
                404,
                "Not Found",
                &[
                    ("X-Reason", b"no such room"),
                    ("Cache-Control", b"no-store"),
                ],
            ),
            b"HTTP/1.1 404 Not Found\r\nX-Reason: no such room\r\nCache-Control: no-store\r\n\
              Connection: close\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Rejection::custom(503, "Service Unavailable", &[("Retry-After", b"5")]),
            b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n\
              Connection: close\r\nContent-Length: 0\r\n\r\n",
        ),
        (
            Rejection::custom(403, "Forbidden", &[("Content-Type", b"text/plain")])
                .with_body(b"origin not allowed\n"),
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n\
              Connection: close\r\nContent-Length: 19\r\n\r\norigin not allowed\n",
        ),
        // A body is bytes, whatever they are: a blank line inside is not a second head.
        (
            Rejection::custom(400, "Bad Request", &[]).with_body(b"\r\n\r\n\0\xff"),
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 6\r\n\r\n\
              \r\n\r\n\0\xff",
        ),
    ];
    for (rejection, golden) in cases {
        assert_eq!(written(*rejection), *golden, "{rejection:?}");
        // A buffer one byte short writes nothing.
        let mut short = vec![0xEE; golden.len() - 1];
        assert_eq!(
            rejection.write(&mut short),
            Err(WriteError::BufferTooSmall {
                needed: golden.len()
            })
        );
        assert!(short.iter().all(|&b| b == 0xEE));
    }
}

#[test]
fn golden_accept() {
    let response = respond(VALID, &Accept::new().with_protocol(Some("chat"))).unwrap();
    assert_eq!(
        response,
        b"HTTP/1.1 101 Switching Protocols\r\n\
          Upgrade: websocket\r\n\
          Connection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
          Sec-WebSocket-Protocol: chat\r\n\
          \r\n"
    );
    let response = respond(VALID, &Accept::new()).unwrap();
    assert_eq!(
        response,
        b"HTTP/1.1 101 Switching Protocols\r\n\
          Upgrade: websocket\r\n\
          Connection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
          \r\n"
    );
    let request = with(
        "Sec-WebSocket-Protocol",
        Some("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"),
    );
    let accept = Accept::new()
        .with_extensions(&["permessage-deflate; server_no_context_takeover"])
        .with_headers(&[("Server", b"sockeye"), ("Set-Cookie", b"id=1; HttpOnly")]);
    assert_eq!(
        respond(&request, &accept).unwrap(),
        b"HTTP/1.1 101 Switching Protocols\r\n\
          Upgrade: websocket\r\n\
          Connection: Upgrade\r\n\
          Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
          Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\
          Server: sockeye\r\n\
          Set-Cookie: id=1; HttpOnly\r\n\
          \r\n"
    );
}

/// Every rejection case of the table, with its exact response bytes.
fn rejection_cases() -> Vec<(&'static str, Vec<u8>, RequestError)> {
    use RequestError::*;
    let many_headers: Vec<u8> = {
        let mut r = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            r.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    let mut huge = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    huge.resize(9000, b'x');
    huge.extend_from_slice(b"\r\n\r\n");
    vec![
        (
            "plain HTTP GET",
            b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n".to_vec(),
            NotUpgrade,
        ),
        (
            "garbage",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(),
            Malformed,
        ),
        (
            "bad header line",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
            Malformed,
        ),
        (
            "POST",
            [b"POST".as_slice(), &VALID[3..]].concat(),
            MethodNotGet,
        ),
        (
            "HTTP/1.0",
            String::from_utf8_lossy(VALID)
                .replace("HTTP/1.1", "HTTP/1.0")
                .into_bytes(),
            HttpVersion,
        ),
        ("no Upgrade", with("Upgrade", None), NotUpgrade),
        (
            "Upgrade: h2c",
            with("Upgrade", Some("Upgrade: h2c")),
            NotUpgrade,
        ),
        (
            "no Connection",
            with("Connection", None),
            ConnectionNotUpgrade,
        ),
        (
            "Connection: keep-alive",
            with("Connection", Some("Connection: keep-alive")),
            ConnectionNotUpgrade,
        ),
        ("no Host", with("Host", None), MissingHost),
        ("empty Host", with("Host", Some("Host:")), InvalidHost),
        (
            "two Hosts",
            with("Host", Some("Host: a\r\nHost: b")),
            DuplicateHeader,
        ),
        (
            "no version",
            with("Sec-WebSocket-Version", None),
            MissingVersion,
        ),
        (
            "version 8",
            with("Sec-WebSocket-Version", Some("Sec-WebSocket-Version: 8")),
            UnsupportedVersion,
        ),
        (
            "version 14",
            with("Sec-WebSocket-Version", Some("Sec-WebSocket-Version: 14")),
            UnsupportedVersion,
        ),
        ("no key", with("Sec-WebSocket-Key", None), MissingKey),
        (
            "short key",
            with("Sec-WebSocket-Key", Some("Sec-WebSocket-Key: c2hvcnQ=")),
            InvalidKey,
        ),
        (
            "key not base64",
            with(
                "Sec-WebSocket-Key",
                Some("Sec-WebSocket-Key: ????????????????????????"),
            ),
            InvalidKey,
        ),
        (
            "key of 17 bytes",
            with(
                "Sec-WebSocket-Key",
                Some("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZXg="),
            ),
            InvalidKey,
        ),
        ("too many headers", many_headers, TooManyHeaders),
        ("head too large", huge, HeadTooLarge),
    ]
}

#[test]
fn golden_rejections_for_every_cause() {
    for (name, request, expected) in rejection_cases() {
        let error = respond(&request, &Accept::new()).expect_err(name);
        assert_eq!(error, expected, "{name}");
    }
}

#[test]
fn every_valid_request_split_at_every_byte() {
    let extra = b"GET /a/b?c=d&e HTTP/1.1\r\n\
        host: [::1]:9001\r\n\
        connection: keep-alive, Upgrade\r\n\
        upgrade: WebSocket\r\n\
        sec-websocket-version: 13\r\n\
        sec-websocket-key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\
        sec-websocket-extensions: permessage-deflate; client_max_window_bits\r\n\
        sec-websocket-extensions: x-foo\r\n\
        Authorization: Bearer abc\r\n\
        \r\n";
    let lf_only = b"GET / HTTP/1.1\nHost: a\nUpgrade: websocket\nConnection: Upgrade\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n";
    for request in [VALID, extra.as_slice(), lf_only.as_slice()] {
        let mut headers = [EMPTY_HEADER; 32];
        let whole = parse_request(request, &mut headers)
            .unwrap()
            .complete()
            .unwrap();
        assert_eq!(whole.head_len(), request.len());
        let whole_response = respond(request, &Accept::new()).unwrap();
        for split in 0..request.len() {
            let mut headers = [EMPTY_HEADER; 32];
            assert_eq!(
                parse_request(&request[..split], &mut headers),
                Ok(Status::Partial),
                "split {split}"
            );
            // The head followed by frame bytes: the same request, the frames left over.
            let mut more = request.to_vec();
            more.extend_from_slice(&request[..split]);
            let mut headers = [EMPTY_HEADER; 32];
            let again = parse_request(&more, &mut headers)
                .unwrap()
                .complete()
                .unwrap();
            assert_eq!(again, whole);
        }
        assert_eq!(respond(request, &Accept::new()).unwrap(), whole_response);
    }
}

#[test]
fn every_rejected_request_split_at_every_byte() {
    // A prefix is either still Partial or already the final error, never another answer.
    for (name, request, expected) in rejection_cases() {
        for split in 0..request.len() {
            let mut headers = [EMPTY_HEADER; 32];
            match parse_request(&request[..split], &mut headers) {
                Ok(Status::Partial) => {}
                Err(error) => assert_eq!(error, expected, "{name} split {split}"),
                Ok(Status::Complete(_)) => panic!("{name} split {split}: complete"),
            }
        }
    }
}

#[test]
fn head_limit_is_exact() {
    let mut headers = [EMPTY_HEADER; 32];
    let exact = HeadLimits::DEFAULT.with_max_head_bytes(VALID.len());
    assert!(parse_request_with(VALID, &mut headers, exact)
        .unwrap()
        .complete()
        .is_some());
    let short = HeadLimits::DEFAULT.with_max_head_bytes(VALID.len() - 1);
    assert_eq!(
        parse_request_with(VALID, &mut headers, short),
        Err(RequestError::HeadTooLarge)
    );
    // Too large is reported as soon as the limit is buffered, not when the head ends.
    for split in 0..VALID.len() {
        let result = parse_request_with(&VALID[..split], &mut headers, short);
        if split < VALID.len() - 1 {
            assert_eq!(result, Ok(Status::Partial), "split {split}");
        } else {
            assert_eq!(result, Err(RequestError::HeadTooLarge), "split {split}");
        }
    }
}
