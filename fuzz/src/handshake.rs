//! Handshake parser targets.
//!
//! Invariants checked on every input:
//! - parsing never panics and never reports more bytes consumed than it was given;
//! - the driver's server handshake answers the same whether the verdict comes at once or
//!   later (`poll_head`, then `answer`), and the owned request matches the borrowed one;
//! - a complete parse gives the same result from its head alone, and `Partial` one byte short;
//! - a server error's rejection fits a 512-byte buffer and parses back as an HTTP response
//!   with the rejection's status;
//! - accepting a parsed request (with an offered subprotocol and extension) writes a `101`
//!   that the client side accepts;
//! - an accepted response's subprotocol and extensions were requested; a rejection's
//!   `Retry-After` reads the same with or without the date form;
//! - the driver's client handshake gives the same answer whatever sizes its reads come in,
//!   answers every rejection by end of stream, and keeps no more of a rejection's body
//!   than its limit (the exact length, when `Content-Length` says the body is whole).

use std::task::Poll;

use sockeye_engine::{ClientAnswer, ClientUpgrade, ServerUpgrade, Verdict};
use sockeye_proto::handshake::body::BodyLength;
use sockeye_proto::handshake::{
    parse_request, Accept, ClientHandshake, ClientRequest, HeadLimits, Response, UpgradeRequest,
    EMPTY_HEADER,
};
use sockeye_proto::Status;

/// Parses `data` as a client's upgrade request and checks the server's answers, then
/// runs the driver's server handshake over the same bytes.
pub fn server_request(data: &[u8]) {
    parse_request_checks(data);
    server_upgrade(data);
}

/// `parse_request` over `data`.
fn parse_request_checks(data: &[u8]) {
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

/// The driver's server handshake over `data`: deciding later (`poll_head`, then
/// `answer`) gives the same answer as deciding at once (`poll`), for an acceptance with
/// the first offered subprotocol and for a rejection with a body; the owned request
/// matches the borrowed one.
fn server_upgrade(data: &[u8]) {
    let read_all = |upgrade: &mut ServerUpgrade| {
        let mut rest = data;
        while !rest.is_empty() {
            let read = upgrade.read_with(|buf| {
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                Poll::<Result<usize, ()>>::Ready(Ok(n))
            });
            if read == Poll::Ready(Ok(0)) {
                break;
            }
        }
    };
    let verdicts = |offered: Option<String>| {
        let accept = match offered {
            Some(protocol) => Verdict::accept().with_protocol(protocol),
            None => Verdict::accept(),
        };
        let accept: Verdict = accept.into();
        [
            accept,
            Verdict::reject(403, "Forbidden").with_body("no").into(),
        ]
    };
    for which in 0..2 {
        let mut now = ServerUpgrade::new(HeadLimits::DEFAULT);
        read_all(&mut now);
        // The borrowed request, as the core parses it: what the owned one must match.
        let mut headers = [sockeye_proto::handshake::EMPTY_HEADER; 64];
        let mut seen =
            match sockeye_proto::parse_request_with(data, &mut headers, HeadLimits::DEFAULT) {
                Ok(sockeye_proto::Status::Complete(request)) => Some((
                    request.path().to_owned(),
                    request.host().to_owned(),
                    request.protocols().next().map(String::from),
                )),
                _ => None,
            };
        // Deciding twice on the same bytes gives the same answer, byte for byte.
        let at_once = match now.poll_head() {
            None => None,
            Some(Err(refusal)) => Some(refusal),
            Some(Ok(head)) => {
                let [accept, reject] = verdicts(head.protocols().first().cloned());
                now.answer(if which == 0 { accept } else { reject })
            }
        };

        let mut later = ServerUpgrade::new(HeadLimits::DEFAULT);
        read_all(&mut later);
        let deferred = match later.poll_head() {
            None => None,
            Some(Err(refusal)) => Some(refusal),
            Some(Ok(head)) if !head.is_upgrade() => {
                // A plain request (the core refused it): the application answers it.
                assert_eq!(seen.take(), None);
                let [accept, reject] = verdicts(None);
                later.answer(if which == 0 { accept } else { reject })
            }
            Some(Ok(head)) => {
                let first = head.protocols().first().cloned();
                assert_eq!(
                    seen.take(),
                    Some((
                        head.target().to_owned(),
                        head.host().to_owned(),
                        first.clone()
                    ))
                );
                let [accept, reject] = verdicts(first);
                later.answer(if which == 0 { accept } else { reject })
            }
        };
        assert_eq!(at_once, deferred);
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

    let Some(nonce) = upgrade.key().and_then(nonce_of) else {
        panic!("a validated key decodes to 16 bytes");
    };
    let client = ClientHandshake::new(nonce);
    assert_eq!(Some(client.key()), upgrade.key());
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
/// (`Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`), and runs the driver's client
/// handshake over the same bytes.
pub fn client_response(data: &[u8]) {
    parse_response(data);
    client_upgrade(data);
}

/// `ClientHandshake::parse_response` over `data`.
fn parse_response(data: &[u8]) {
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
            // A date is read only where a number of seconds is not there.
            let at = rejected.retry_after_at(1_764_000_000);
            if let Some(seconds) = rejected.retry_after() {
                assert_eq!(at, Some(seconds));
            }
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

/// Feeds `wire` to the driver's client handshake twice, in reads of two sizes, then ends
/// the stream. A checksum of the bytes picks the small read size and the body limit, so
/// that every input is also a whole response (the seeds serve both checks).
fn client_upgrade(wire: &[u8]) {
    let knobs = wire.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte));
    let piece = usize::from(knobs % 61) + 1;
    let limit = usize::from(knobs / 61) * 97;
    let limits = HeadLimits::DEFAULT.with_max_rejection_body(limit);
    let answer = upgrade_in_reads(wire, piece, limits);
    // Frames behind a `101` come with it, as many as the read brought: not compared.
    let without_early = |answer: &Answer| {
        let mut answer = answer.clone();
        if let Some(Ok(ClientAnswer::Accepted { early, .. })) = &mut answer {
            early.clear();
        }
        answer
    };
    assert_eq!(
        without_early(&answer),
        without_early(&upgrade_in_reads(wire, wire.len().max(1), limits))
    );
    let Some(Ok(ClientAnswer::Rejected(rejected))) = answer else {
        return;
    };
    assert!(rejected.body.len() <= limit);
    let headers: Vec<_> = rejected
        .headers
        .iter()
        .map(|(name, value)| httparse::Header { name, value })
        .collect();
    let length = sockeye_proto::handshake::body::body_length(rejected.status, &headers);
    if let (Ok(BodyLength::Bytes(n)), true) = (length, rejected.body_complete) {
        assert_eq!(rejected.body.len() as u64, n);
    }
}

type Answer = Option<Result<ClientAnswer, sockeye_proto::handshake::ResponseError>>;

/// The first answer (or error) `ClientUpgrade::poll` gives for `wire` read `piece` bytes at
/// a time and then end of stream; `None` if there is none.
fn upgrade_in_reads(wire: &[u8], piece: usize, limits: HeadLimits) -> Answer {
    let (mut upgrade, _) =
        ClientUpgrade::new(*b"the sample nonce", &REQUEST, limits).expect("the request");
    let mut rest = wire;
    loop {
        let read = upgrade.read_with(|buf| {
            let n = buf.len().min(rest.len()).min(piece);
            buf[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            Poll::<Result<usize, ()>>::Ready(Ok(n))
        });
        let Poll::Ready(Ok(n)) = read else {
            unreachable!()
        };
        match upgrade.poll() {
            Ok(None) if n > 0 => continue,
            Ok(None) => {
                // End of stream with no answer: the head never ended, so there is no
                // rejection to take either.
                assert!(upgrade.take_rejection().is_none());
                return None;
            }
            Ok(Some(answer)) => return Some(Ok(answer)),
            Err(error) => return Some(Err(error)),
        }
    }
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
