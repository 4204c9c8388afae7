//! The opening handshake's lifecycle (`Opening`), without I/O: every way it ends, the
//! timeouts, the refusal's linger and drain, frames that arrive with the handshake.

use std::io::IoSlice;
use std::task::Poll;
use std::time::Duration;

use sockeye_engine::opening::{Opening, Step};
use sockeye_engine::{Error, Io, Message, Refusal, Settings, Verdict};
use sockeye_proto::handshake::{AcceptKey, ClientRequest};
use sockeye_proto::Instant;

const REQUEST: &[u8] = b"GET /room?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

/// Feeds `bytes` as one read; how many were taken.
fn feed(opening: &mut Opening, bytes: &[u8]) -> usize {
    let read = opening.read_with(|buf| {
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Poll::<Result<usize, ()>>::Ready(Ok(n))
    });
    match read {
        Poll::Ready(Ok(n)) => n,
        other => panic!("not read: {other:?}"),
    }
}

fn io(read: bool, write: bool, deadline: Option<Instant>) -> Io {
    Io {
        read,
        write,
        deadline,
    }
}

fn written(opening: &mut Opening) -> Vec<u8> {
    let bytes = opening.pending().to_vec();
    opening.advance(bytes.len());
    bytes
}

#[test]
fn a_server_decides_then_opens_with_the_101_first_and_the_early_frame_kept() {
    let settings = Settings::default().with_handshake_timeout(Some(Duration::from_secs(5)));
    let mut opening = Opening::server(settings, at(0));
    assert!(
        matches!(opening.poll(at(0)), Step::Io(io) if io == self::io(true, false, Some(at(5000))))
    );
    // The request and a masked text frame "hi" in one read.
    let mut wire = REQUEST.to_vec();
    wire.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
    feed(&mut opening, &wire[..20]);
    assert!(matches!(opening.poll(at(1)), Step::Io(_)));
    feed(&mut opening, &wire[20..]);
    let Step::Decide(head) = opening.poll(at(2)) else {
        panic!("no decision asked")
    };
    assert_eq!((head.path(), head.query()), ("/room", Some("x=1")));
    // Nothing is read while the application decides; the timeout still runs.
    assert!(
        matches!(opening.poll(at(3)), Step::Io(io) if io == self::io(false, false, Some(at(5000))))
    );
    opening.answer(Verdict::accept(), at(4));
    let Step::Open { mut driver, path } = opening.poll(at(4)) else {
        panic!("not open")
    };
    assert_eq!(path.as_deref(), Some("/room"));
    let mut slices = [IoSlice::new(&[]); 4];
    let n = driver.write_slices(&mut slices);
    assert!(n >= 1 && slices[0].starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
    assert_eq!(driver.poll_message(at(5)), Some(Message::text("hi")));
}

#[test]
fn an_invalid_request_is_refused_written_shut_then_drained_until_the_client_leaves() {
    let linger = Duration::from_millis(300);
    let mut opening = Opening::server(Settings::default().with_refusal_linger(linger), at(0));
    feed(&mut opening, b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 12\r\n\r\n");
    // Refused without asking the application: written first, nothing read meanwhile.
    assert!(
        matches!(opening.poll(at(10)), Step::Io(io) if io == self::io(false, true, Some(at(310))))
    );
    let response = written(&mut opening);
    assert!(response.starts_with(b"HTTP/1.1 426 "), "{response:?}");
    assert!(matches!(opening.poll(at(11)), Step::Shutdown));
    opening.shutdown_done(at(20));
    assert!(
        matches!(opening.poll(at(21)), Step::Io(io) if io == self::io(true, false, Some(at(320))))
    );
    // What the client still sends is dropped; its end of stream ends the refusal.
    assert_eq!(feed(&mut opening, b"more"), 4);
    assert!(matches!(opening.poll(at(22)), Step::Io(_)));
    assert_eq!(feed(&mut opening, b""), 0);
    match opening.poll(at(23)) {
        Step::Failed(Error::Refused(Refusal::Invalid(_))) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_refusal_ends_at_the_linger_or_once_the_client_sent_too_much() {
    let linger = Duration::from_millis(300);
    let settings = Settings::default().with_refusal_linger(linger);
    let refused = |opening: &mut Opening| {
        feed(opening, REQUEST);
        let Step::Decide(_) = opening.poll(at(0)) else {
            panic!("no decision asked")
        };
        opening.answer(Verdict::reject(403, "Forbidden"), at(0));
        assert!(written(opening).starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
        assert!(matches!(opening.poll(at(1)), Step::Shutdown));
        opening.shutdown_done(at(1));
    };

    let mut silent = Opening::server(settings, at(0));
    refused(&mut silent);
    silent.handle_deadline(at(300));
    assert!(matches!(silent.poll(at(300)), Step::Io(_)), "fired early");
    silent.handle_deadline(at(301));
    assert!(matches!(
        silent.poll(at(301)),
        Step::Failed(Error::Refused(Refusal::Rejected(403)))
    ));

    let mut chatty = Opening::server(settings, at(0));
    refused(&mut chatty);
    let mut reads = 0;
    loop {
        match chatty.poll(at(2)) {
            Step::Io(_) => {
                assert_eq!(feed(&mut chatty, &[0; 4096]), 4096);
                reads += 1;
                assert!(reads <= 16, "drained past 64 KiB");
            }
            Step::Failed(Error::Refused(Refusal::Rejected(403))) => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(reads, 16);
}

#[test]
fn a_server_handshake_times_out_and_a_transport_error_ends_it() {
    let settings = Settings::default().with_handshake_timeout(Some(Duration::from_secs(1)));
    let mut slow = Opening::server(settings, at(0));
    feed(&mut slow, &REQUEST[..10]);
    assert!(matches!(slow.poll(at(500)), Step::Io(_)));
    slow.handle_deadline(at(1000));
    assert!(matches!(
        slow.poll(at(1000)),
        Step::Failed(Error::HandshakeTimeout)
    ));
    // Handed out once.
    assert!(matches!(slow.poll(at(1001)), Step::Failed(Error::Closed)));

    let mut broken = Opening::server(settings, at(0));
    broken.fail_io(std::io::ErrorKind::ConnectionReset.into());
    assert!(
        matches!(broken.poll(at(1)), Step::Failed(Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionReset)
    );

    let mut left = Opening::server(settings, at(0));
    feed(&mut left, &REQUEST[..10]);
    feed(&mut left, b"");
    assert!(
        matches!(left.poll(at(1)), Step::Failed(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    );
}

#[test]
fn a_client_connects_within_its_timeout_then_writes_and_checks_the_answer() {
    let settings = Settings::default()
        .with_connect_timeout(Some(Duration::from_secs(2)))
        .with_handshake_timeout(Some(Duration::from_secs(5)));
    let request = ClientRequest::new("example.com", "/");
    let opening = Opening::client_with_keys(&request, settings, at(0), [7; 16], [9; 32]).unwrap();
    let mut opening = opening.connecting(at(0));
    assert!(opening.is_connecting());
    // Waiting for the connect: writable wanted, nothing read, the connect timeout.
    assert!(
        matches!(opening.poll(at(1)), Step::Io(io) if io == self::io(false, true, Some(at(2000))))
    );
    opening.connected(at(100));
    assert!(
        matches!(opening.poll(at(100)), Step::Io(io) if io == self::io(true, true, Some(at(5100))))
    );
    let sent = written(&mut opening);
    assert!(sent.starts_with(b"GET / HTTP/1.1\r\n"));
    // The key of nonce [7; 16].
    let key = String::from_utf8_lossy(&sent)
        .lines()
        .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: ").map(str::to_owned))
        .unwrap();
    let accept = AcceptKey::derive(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        accept.as_str()
    );
    let mut wire = response.into_bytes();
    wire.extend_from_slice(&[0x81, 0x02, b'o', b'k']);
    feed(&mut opening, &wire);
    let Step::Open { mut driver, path } = opening.poll(at(200)) else {
        panic!("not open")
    };
    assert_eq!(path, None);
    assert_eq!(driver.poll_message(at(200)), Some(Message::text("ok")));

    let settings = Settings::default().with_connect_timeout(Some(Duration::from_secs(2)));
    let mut unreachable = Opening::client_with_keys(&request, settings, at(0), [7; 16], [9; 32])
        .unwrap()
        .connecting(at(0));
    unreachable.handle_deadline(at(2000));
    assert!(matches!(
        unreachable.poll(at(2000)),
        Step::Failed(Error::ConnectTimeout)
    ));
}

#[test]
fn a_client_reports_a_rejection_with_its_body_and_a_server_that_left() {
    let request = ClientRequest::new("example.com", "/");
    let settings = Settings::default();
    let mut rejected =
        Opening::client_with_keys(&request, settings, at(0), [7; 16], [9; 32]).unwrap();
    written(&mut rejected);
    feed(
        &mut rejected,
        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 7\r\n\r\nexpi",
    );
    assert!(matches!(rejected.poll(at(1)), Step::Io(_)));
    feed(&mut rejected, b"red");
    match rejected.poll(at(2)) {
        Step::Failed(Error::Rejected(response)) => {
            assert_eq!(
                (response.status, &response.body[..]),
                (401, &b"expired"[..])
            );
        }
        other => panic!("{other:?}"),
    }

    let mut left = Opening::client_with_keys(&request, settings, at(0), [7; 16], [9; 32]).unwrap();
    written(&mut left);
    feed(&mut left, b"HTTP/1.1 10");
    feed(&mut left, b"");
    assert!(
        matches!(left.poll(at(1)), Step::Failed(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof)
    );
}
