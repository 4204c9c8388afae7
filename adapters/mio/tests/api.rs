//! The mio adapter's own API: the `Server` helper (echo, handler hooks, rejections,
//! handshake timeout, partial heads) and client sessions driven by a hand-written
//! `Poll` loop. Everything runs over loopback TCP with bounded loops.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use sockeye_mio::{
    CloseCode, CloseReason, Config, DeflateConfig, DeflateParams, Error, Handler, KeepAlive,
    Message, Outcome, Refusal, RequestExtras, RequestHead, Server, Session, Settings, Timeout,
    Verdict,
};

/// What the test handler saw.
#[derive(Default)]
struct Seen {
    opened: Vec<String>,
    /// The compression each opened session agreed on.
    compression: Vec<Option<DeflateParams>>,
    messages: Vec<Message>,
    ends: Vec<Result<String, String>>,
}

#[derive(Clone, Default)]
struct Echo(Arc<Mutex<Seen>>);

impl Handler for Echo {
    fn on_request(&mut self, request: &RequestHead) -> Verdict {
        match request.path() {
            "/private" => Verdict::reject(403, "Forbidden")
                .with_body("members only")
                .into(),
            "/members" if request.header("Authorization") != Some(&b"Bearer 7"[..]) => {
                Verdict::reject(401, "Unauthorized").into()
            }
            "/uncompressed" => Verdict::accept().without_compression().into(),
            _ => match request.select_protocol(&["chat"]) {
                Some(protocol) => Verdict::accept().with_protocol(protocol).into(),
                None => Verdict::accept().into(),
            },
        }
    }

    fn on_open(&mut self, session: &mut Session) {
        let path = session.path().unwrap_or_default().to_owned();
        let mut seen = self.0.lock().unwrap();
        seen.opened.push(path);
        seen.compression.push(session.compression());
    }

    fn on_message(&mut self, session: &mut Session, message: Message) {
        self.0.lock().unwrap().messages.push(message.clone());
        if message.is_data() {
            session.send(message).unwrap();
        }
    }

    fn on_close(&mut self, session: &mut Session) {
        let end = match (session.outcome(), session.error()) {
            (Some(outcome), _) => Ok(outcome.to_string()),
            (None, Some(error)) => Err(error.to_string()),
            (None, None) => Err("no end".to_owned()),
        };
        self.0.lock().unwrap().ends.push(end);
    }
}

/// A server on its own thread, stopped (and joined) on drop.
struct Running {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn serve(settings: Settings) -> Running {
    let handler = Echo::default();
    let seen = handler.0.clone();
    let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), settings, handler).unwrap();
    let addr = server.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = thread::spawn(move || {
        let limit = Instant::now() + Duration::from_secs(60);
        while !stopping.load(Ordering::SeqCst) && Instant::now() < limit {
            server.turn(Some(Duration::from_millis(10))).unwrap();
        }
    });
    Running {
        addr,
        seen,
        stop,
        thread: Some(thread),
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Drives one client session to its end with its own `Poll` and `Session::on_event`,
/// calling `script` after every turn (with the messages of that turn).
fn drive(
    session: Session,
    script: impl FnMut(&mut Session, &[Message]),
) -> (Session, Vec<Message>) {
    drive_by(Dispatch::Event, session, script)
}

/// How a test loop hands readiness events to its session.
#[derive(Clone, Copy, PartialEq)]
enum Dispatch {
    /// `on_event`.
    Event,
    /// `on_readable` and `on_writable`.
    Halves,
}

fn drive_by(
    dispatch: Dispatch,
    mut session: Session,
    mut script: impl FnMut(&mut Session, &[Message]),
) -> (Session, Vec<Message>) {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(16);
    session.register(poll.registry(), Token(7)).unwrap();
    let mut all = Vec::new();
    let limit = Instant::now() + Duration::from_secs(20);
    while !session.is_done() {
        assert!(
            Instant::now() < limit,
            "the session did not end: {session:?}"
        );
        let wait = session
            .next_timeout(Instant::now())
            .map_or(Duration::from_millis(100), |t| {
                t.min(Duration::from_millis(100))
            });
        poll.poll(&mut events, Some(wait)).unwrap();
        let now = Instant::now();
        let mut turn = Vec::new();
        for event in events.iter() {
            let mut collect = |_: &mut Session, message: Message| turn.push(message);
            if dispatch == Dispatch::Event {
                session.on_event(event, now, &mut collect);
                continue;
            }
            if event.is_readable() || event.is_read_closed() {
                session.on_readable(now, &mut collect);
            }
            if event.is_writable() {
                session.on_writable(now, &mut collect);
            }
        }
        session.on_timeout(now);
        script(&mut session, &turn);
        session.flush(now);
        all.extend(turn);
        session.update_interest(poll.registry(), Token(7)).unwrap();
    }
    (session, all)
}

fn connect(addr: SocketAddr, path: &str, settings: Settings) -> Session {
    Session::connect_url(&format!("ws://{addr}{path}"), settings, Instant::now()).unwrap()
}

/// Sends `request` and reads the whole response until the server closes.
fn http_exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::ConnectionReset && !response.is_empty() => {}
        Err(error) => panic!("{error} after {response:?}"),
    }
    String::from_utf8_lossy(&response).into_owned()
}

const UPGRADE: &str =
    "GET /slow HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn server_helper_echoes_and_reports_each_end() {
    let server = serve(Settings::default());
    let sent = [Message::text("hello"), Message::binary(vec![9u8; 100_000])];
    let mut next = 0;
    let request_protocols = connect(server.addr, "/chat", Settings::default());
    let (session, received) = drive(request_protocols, |session, turn| {
        if session.is_open() && next == 0 {
            for message in &sent {
                session.send(message.clone()).unwrap();
            }
            next = 1;
        }
        if turn.iter().filter(|m| m.is_data()).count() > 0 && next == 1 {
            next = 2;
        }
        let echoed = turn.iter().any(|m| *m == sent[1]);
        if echoed {
            session
                .close(CloseCode::NORMAL, "bye", Instant::now())
                .unwrap();
        }
    });
    assert_eq!(
        received,
        [
            sent[0].clone(),
            sent[1].clone(),
            Message::Close(Some(CloseReason::new(CloseCode::NORMAL, "")))
        ]
    );
    let outcome = session.outcome().unwrap();
    assert!(
        matches!(
            outcome,
            Outcome::Clean {
                initiated_locally: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    wait_until("the server to see the end", || {
        !server.seen.lock().unwrap().ends.is_empty()
    });
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.opened, ["/chat"]);
    assert_eq!(seen.messages[..2], sent);
    assert_eq!(seen.ends, [Ok("clean code=1000 reason=bye".to_owned())]);
}

#[test]
fn server_helper_rejects_and_keeps_serving() {
    let settings = Settings::default().with_handshake_timeout(Some(Duration::from_millis(300)));
    let server = serve(settings);

    let plain = http_exchange(server.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(plain.starts_with("HTTP/1.1 400 "), "{plain:?}");
    let private = UPGRADE.replace("/slow", "/private");
    let forbidden = http_exchange(server.addr, private.as_bytes());
    assert!(
        forbidden.starts_with("HTTP/1.1 403 Forbidden\r\n"),
        "{forbidden:?}"
    );

    // A client that never finishes its request: closed without a response.
    let started = Instant::now();
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{rest:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // A request written a few bytes at a time still opens.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for piece in UPGRADE.as_bytes().chunks(7) {
        stream.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");

    wait_until("every end to be reported", || {
        server.seen.lock().unwrap().ends.len() >= 3
    });
    let seen = server.seen.lock().unwrap();
    assert_eq!(
        seen.ends[0],
        Err(
            "handshake refused: 400 (not a WebSocket upgrade (no `Upgrade: websocket`))".to_owned()
        )
    );
    assert_eq!(
        seen.ends[1],
        Err("handshake refused: 403 (rejected by the application)".to_owned())
    );
    assert_eq!(
        seen.ends[2],
        Err("the opening handshake timed out".to_owned())
    );
    assert_eq!(seen.opened, ["/slow"]);
}

#[test]
fn client_sessions_report_handshake_failures() {
    let server = serve(Settings::default());
    let (session, _) = drive(
        connect(server.addr, "/private", Settings::default()),
        |_, _| {},
    );
    assert!(session.outcome().is_none());
    let Some(Error::Rejected(rejected)) = session.error() else {
        panic!("{session:?}")
    };
    assert_eq!(rejected.status, 403);
    assert_eq!(
        (rejected.body.as_slice(), rejected.body_complete),
        (&b"members only"[..], true)
    );
    assert_eq!(session.error().unwrap().status(), Some(403));

    // Nothing listens on a port we just closed.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (session, _) = drive(connect(addr, "/", Settings::default()), |_, _| {});
    assert!(matches!(session.error(), Some(Error::Io(_))), "{session:?}");

    assert!(matches!(
        Session::connect_url("wss://example.com/", Settings::default(), Instant::now()),
        Err(Error::TlsRequired)
    ));
    assert!(matches!(
        Session::connect_url("http://example.com/", Settings::default(), Instant::now()),
        Err(Error::Url(_))
    ));
}

/// A server that says no and then stalls in its body: at the handshake timeout the
/// session reports the rejection with what came of the body, not a bare timeout.
#[test]
fn a_stalled_rejection_body_still_reports_the_rejection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0u8; 1024];
        let n = stream.read(&mut request).unwrap();
        assert!(request[..n].starts_with(b"GET / HTTP/1.1\r\n"));
        stream
            .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\nback at")
            .unwrap();
        // Hold the socket open until the client is done with it.
        let _ = wait.recv_timeout(Duration::from_secs(20));
    });
    let settings = Settings::default().with_handshake_timeout(Some(Duration::from_millis(300)));
    let started = Instant::now();
    let (session, _) = drive(connect(addr, "/", settings), |_, _| {});
    let waited = started.elapsed();
    let Some(Error::Rejected(rejected)) = session.error() else {
        panic!("{session:?}")
    };
    assert_eq!(rejected.status, 503);
    assert_eq!(
        (rejected.body.as_slice(), rejected.body_complete),
        (&b"back at"[..], false)
    );
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    done.send(()).unwrap();
    peer.join().unwrap();
}

/// `connect_url_with` sends the subprotocols and headers: the server agrees on `chat`
/// and lets the token in; without the header the same path is a 401.
#[test]
fn connect_url_with_sends_protocols_and_headers() {
    let server = serve(Settings::default());
    let url = format!("ws://{}/members", server.addr);
    let extras = RequestExtras::new()
        .with_protocol("chat")
        .with_header("Authorization", "Bearer 7");
    let session =
        Session::connect_url_with(&url, &extras, Settings::default(), Instant::now()).unwrap();
    let (session, _) = drive(session, |session, _| {
        if session.is_open() {
            assert_eq!(session.protocol(), Some("chat"));
            let _ = session.close(CloseCode::NORMAL, "", Instant::now());
        }
    });
    assert!(
        session.outcome().is_some_and(|o| o.is_clean()),
        "{session:?}"
    );

    let (session, _) = drive(
        connect(server.addr, "/members", Settings::default()),
        |_, _| {},
    );
    assert_eq!(session.error().and_then(Error::status), Some(401));
}

#[test]
fn sends_before_the_handshake_and_after_the_end_fail() {
    let server = serve(Settings::default());
    let mut session = connect(server.addr, "/", Settings::default());
    assert!(matches!(
        session.send(Message::text("early")),
        Err(Error::Handshaking)
    ));
    let (mut session, _) = drive(session, |session, _| {
        if session.is_open() {
            let _ = session.close(CloseCode::NORMAL, "", Instant::now());
        }
    });
    assert!(session.outcome().unwrap().is_clean());
    assert!(matches!(
        session.send(Message::text("late")),
        Err(Error::Closed)
    ));
}

/// Keepalive on a client session: Pings go out on `on_timeout`, the server's Pongs
/// keep it alive, and closing ends it cleanly; `next_timeout` never overshoots the
/// interval.
#[test]
fn keepalive_pings_from_on_timeout() {
    let server = serve(Settings::default());
    let keepalive = KeepAlive::new(Duration::from_millis(100), Duration::from_millis(500));
    let settings = Settings::from(Config::default().with_keepalive(Some(keepalive)));
    let started = Instant::now();
    let mut closing = false;
    let (session, received) = drive(connect(server.addr, "/", settings), |session, turn| {
        if session.is_open() && !closing {
            // The keepalive interval or the pong deadline, never the 30 s close timer.
            let next = session.next_timeout(Instant::now()).unwrap();
            assert!(next <= Duration::from_millis(500), "{next:?}");
        }
        let pongs = turn
            .iter()
            .filter(|m| matches!(m, Message::Pong(_)))
            .count();
        if pongs > 0 && started.elapsed() > Duration::from_millis(350) && !closing {
            session
                .close(CloseCode::NORMAL, "enough", Instant::now())
                .unwrap();
            closing = true;
        }
    });
    let pongs = received
        .iter()
        .filter(|m| matches!(m, Message::Pong(_)))
        .count();
    assert!(pongs >= 3, "{received:?}");
    assert!(session.outcome().unwrap().is_clean(), "{session:?}");
}

/// A client whose server stops answering: the keepalive deadline ends it.
#[test]
fn keepalive_times_out_a_silent_server() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).unwrap();
            request.push(byte[0]);
        }
        let request = String::from_utf8(request).unwrap();
        let key = request
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap();
        let accept = sockeye_mio::sockeye_proto::AcceptKey::derive(key.trim().as_bytes());
        write!(
            stream,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            accept.as_str()
        )
        .unwrap();
        // Read (and ignore) until the client goes away.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
    });
    let keepalive = KeepAlive::new(Duration::from_millis(100), Duration::from_millis(200));
    let settings = Settings::from(Config::default().with_keepalive(Some(keepalive)));
    let started = Instant::now();
    let (session, _) = drive(connect(addr, "/", settings), |_, _| {});
    assert_eq!(
        session.outcome(),
        Some(Outcome::TimedOut(Timeout::KeepAlive))
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
    silent.join().unwrap();
}

#[test]
fn refusal_reports_carry_the_status() {
    let error = Error::Refused(Refusal::Rejected(401));
    assert_eq!(error.status(), Some(401));
    assert_eq!(Error::Closed.status(), None);
}

/// A raw server for one client: answers the upgrade, then, when `go` says so, writes
/// `last` and closes its side in one go (no Close frame), so the bytes and the end of
/// stream reach the client before it next polls.
fn abrupt_server(
    last: Vec<u8>,
) -> (
    SocketAddr,
    std::sync::mpsc::Sender<()>,
    thread::JoinHandle<()>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let peer = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(stream.read(&mut byte).unwrap(), 1, "request cut short");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let key = head
            .lines()
            .find_map(|line| line.strip_prefix("Sec-WebSocket-Key: "))
            .or_else(|| {
                head.lines()
                    .find_map(|line| line.strip_prefix("sec-websocket-key: "))
            })
            .expect("no key in the request");
        let accept = sockeye_mio::sockeye_proto::AcceptKey::derive(key.trim().as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            accept.as_str()
        );
        stream.write_all(response.as_bytes()).unwrap();
        wait.recv_timeout(Duration::from_secs(20)).unwrap();
        stream.write_all(&last).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        // Hold the socket open until the client is done with it.
        let _ = stream.read(&mut byte);
    });
    (addr, go, peer)
}

/// A message and the end of stream that arrive together are both read, whichever way
/// events reach the session: with `on_event` the read that returns the message comes
/// back short, which would end reading on an ordinary readable event, but the event
/// says the read side closed, so the session reads on and finds the end of stream (no
/// later event would report it).
#[test]
fn an_end_of_stream_that_arrives_with_the_last_bytes_is_read() {
    for dispatch in [Dispatch::Event, Dispatch::Halves] {
        let (addr, go, peer) = abrupt_server(b"\x81\x0alast words".to_vec());
        let mut go = Some(go);
        let (session, messages) = drive_by(
            dispatch,
            connect(addr, "/", Settings::default()),
            |session, _| {
                if session.is_open() {
                    if let Some(go) = go.take() {
                        go.send(()).unwrap();
                        // Let the bytes and the FIN both arrive before the next poll.
                        thread::sleep(Duration::from_millis(100));
                    }
                }
            },
        );
        assert_eq!(messages, [Message::text("last words")]);
        assert!(
            matches!(
                session.outcome(),
                Some(Outcome::Abnormal(sockeye_mio::Abnormal::Eof))
            ),
            "{:?}",
            session.outcome()
        );
        peer.join().unwrap();
    }
}

/// A frame sent in the same write as the upgrade request is echoed at once: the read that
/// brought both came back short, so the session reads no more from the socket, but it
/// still processes the frame it already has (no further event would come for it).
#[test]
fn a_frame_behind_the_request_is_answered_without_another_event() {
    let server = serve(Settings::default());
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let key = [1u8, 2, 3, 4];
    let mut wire = UPGRADE.as_bytes().to_vec();
    wire.extend_from_slice(&[0x81, 0x82]);
    wire.extend_from_slice(&key);
    wire.extend(b"hi".iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
    stream.write_all(&wire).unwrap();

    let mut received = Vec::new();
    let mut byte = [0u8; 1];
    while !received.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "{received:?}");
        received.push(byte[0]);
    }
    assert!(received.starts_with(b"HTTP/1.1 101"), "{received:?}");
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"\x81\x02hi");
}

/// A refusal is written, the write side shut, and the client's further bytes drained
/// (so the client reads the whole answer, not a reset) until the client closes, for at
/// most the refusal linger, or until it sent more than the drain allows.
#[test]
fn a_refusal_lingers_for_the_client_then_closes() {
    let linger = Duration::from_millis(400);
    let server = serve(Settings::default().with_refusal_linger(linger));
    let private = UPGRADE.replace("/slow", "/private");

    // A client that stays silent after its request: the answer, then the end of stream
    // once the linger is over.
    let mut silent = TcpStream::connect(server.addr).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    silent.write_all(private.as_bytes()).unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    silent.read_to_end(&mut answer).unwrap();
    assert!(
        answer.starts_with(b"HTTP/1.1 403 Forbidden\r\n"),
        "{answer:?}"
    );
    // Our write side was shut at once: the answer ended before the linger did, and the
    // session ended with the linger.
    assert!(started.elapsed() < linger, "{:?}", started.elapsed());
    wait_until("the refusal to be reported", || {
        server.seen.lock().unwrap().ends.len() == 1
    });
    let waited = started.elapsed();
    assert!(
        waited >= linger && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // A client that keeps sending: dropped once it sent more than the drain allows,
    // long before the linger would end.
    let server = serve(Settings::default().with_refusal_linger(Duration::from_secs(30)));
    let mut noisy = TcpStream::connect(server.addr).unwrap();
    noisy.write_all(private.as_bytes()).unwrap();
    let started = Instant::now();
    let chunk = [0u8; 16 * 1024];
    let closed = (0..1024).any(|_| noisy.write_all(&chunk).is_err());
    assert!(closed, "the server kept draining");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    wait_until("the refusal to be reported", || {
        server.seen.lock().unwrap().ends.len() == 1
    });
}

#[test]
fn compression_is_negotiated_by_settings_and_verdicts() {
    let on = Settings::default().with_compression(DeflateConfig::default());
    let server = serve(on);
    let run = |path: &str, settings: Settings| {
        let (session, _) = drive(connect(server.addr, path, settings), |session, _| {
            if session.is_open() {
                let _ = session.close(CloseCode::NORMAL, "", Instant::now());
            }
        });
        assert!(
            session.outcome().is_some_and(|o| o.is_clean()),
            "{session:?}"
        );
        session.compression()
    };
    let agreed = run("/", on);
    assert!(agreed.is_some());
    assert_eq!(run("/", Settings::default()), None);
    assert_eq!(run("/uncompressed", on), None);
    wait_until("every open to be seen", || {
        server.seen.lock().unwrap().compression.len() == 3
    });
    assert_eq!(
        server.seen.lock().unwrap().compression,
        [agreed, None, None]
    );
}
