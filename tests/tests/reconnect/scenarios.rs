//! The reconnect scenarios. The reconnecting client is one implementation
//! (`sockeye-async`), so they run once, through the tokio facade (`super::adapter`);
//! what is smol's own (its timers and TCP) has a smoke test in `sockeye-smol`'s tests.
//! Short configured intervals and generous bounds throughout.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::fake::{FakeServer, Mode};
use super::{adapter, run, tcp_connect, Tcp};
use adapter::reconnect::{
    Backoff, ClientEvent, GiveUp, NotSent, OfflineSends, ReconnectOptions, ReconnectPolicy,
    ReconnectingClient, SendError, Sent, StateChange,
};
use adapter::{CloseCode, Error, KeepAlive, Message, Outcome, Settings, Timeout};
use sockeye_proto::reconnect_policy::Failure;
use std::time::Instant;

fn backoff() -> Backoff {
    Backoff::DEFAULT
        .with_initial(Duration::from_millis(100))
        .with_cap(Duration::from_millis(400))
}

fn options() -> ReconnectOptions {
    ReconnectOptions::default().with_policy(ReconnectPolicy::DEFAULT.with_backoff(backoff()))
}

fn client(server: &FakeServer, options: ReconnectOptions) -> ReconnectingClient {
    ReconnectingClient::new(server.url(), Settings::default(), options).expect("a ws:// URL")
}

/// Events with the time they arrived.
type Log = Vec<(Instant, ClientEvent)>;

/// Collects events until `done` says so (the matching event included); panics if the
/// stream ends first.
async fn until(client: &mut ReconnectingClient, mut done: impl FnMut(&ClientEvent) -> bool) -> Log {
    let mut log = Vec::new();
    loop {
        let event = client
            .next_event()
            .await
            .unwrap_or_else(|| panic!("the client ended early: {log:#?}"));
        let stop = done(&event);
        log.push((Instant::now(), event));
        if stop {
            return log;
        }
    }
}

/// Collects every event until the stream ends.
async fn to_end(client: &mut ReconnectingClient) -> Log {
    let mut log = Vec::new();
    while let Some(event) = client.next_event().await {
        log.push((Instant::now(), event));
        assert!(log.len() < 1000, "runaway client: {log:#?}");
    }
    log
}

fn is_state(event: &ClientEvent, f: impl Fn(&StateChange) -> bool) -> bool {
    matches!(event, ClientEvent::State(change) if f(change))
}

fn is_open(event: &ClientEvent) -> bool {
    is_state(event, |c| *c == StateChange::Open)
}

fn states(log: &Log) -> Vec<StateChange> {
    log.iter()
        .filter_map(|(_, event)| match event {
            ClientEvent::State(change) => Some(change.clone()),
            _ => None,
        })
        .collect()
}

fn texts(log: &Log) -> Vec<String> {
    log.iter()
        .filter_map(|(_, event)| match event {
            ClientEvent::Message(Message::Text(text)) => Some(text.to_string()),
            _ => None,
        })
        .collect()
}

/// The server is killed and comes back 700 ms later: the client reports the loss,
/// retries with delays inside the policy's bounds (measured, too), reconnects, and the
/// connection works again.
#[test]
fn server_restart_reconnects_with_backoff() {
    run(async {
        let server = FakeServer::start_new(Mode::Echo);
        let mut client = client(&server, options());
        until(&mut client, is_open).await;
        assert_eq!(
            client.send(Message::text("before")).await.unwrap(),
            Sent::Written
        );
        let log = until(&mut client, |e| matches!(e, ClientEvent::Message(_))).await;
        assert_eq!(texts(&log), ["before"]);

        server.stop();
        let restarter = {
            let server = server.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(700));
                server.start();
            })
        };
        let log = until(&mut client, is_open).await;
        restarter.join().unwrap();

        let changes = states(&log);
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        // The loss first: the server vanished without a Close.
        assert!(
            matches!(&changes[0], StateChange::Closed(outcome) if !outcome.is_clean()),
            "{shown:#?}"
        );
        // Then: reconnecting (n) / connecting (n) [/ failed / reconnecting (n+1) ...] / open.
        let mut expected_attempt = 1;
        let mut failures = 0;
        let mut i = 1;
        while i < log.len() {
            let (at, event) = &log[i];
            match event {
                ClientEvent::State(StateChange::Reconnecting { delay, attempt }) => {
                    assert_eq!(*attempt, expected_attempt, "{shown:#?}");
                    let ceiling = backoff().ceiling(*attempt);
                    let floor = backoff().floor.min(ceiling);
                    assert!(
                        (floor..=ceiling).contains(delay),
                        "{delay:?} outside [{floor:?}, {ceiling:?}]"
                    );
                    // The next attempt starts after the delay, not before.
                    let (next_at, next) = &log[i + 1];
                    assert_eq!(
                        *next,
                        ClientEvent::State(StateChange::Connecting { attempt: *attempt })
                    );
                    let waited = next_at.duration_since(*at);
                    assert!(
                        waited + Duration::from_millis(50) >= *delay,
                        "waited {waited:?} < {delay:?}"
                    );
                    assert!(
                        waited < *delay + Duration::from_secs(1),
                        "waited {waited:?}"
                    );
                    i += 2;
                }
                ClientEvent::State(StateChange::Failed(failure)) => {
                    assert!(matches!(failure, Failure::ConnectFailed(_)), "{shown:#?}");
                    failures += 1;
                    expected_attempt += 1;
                    i += 1;
                }
                ClientEvent::State(StateChange::Open) => {
                    assert_eq!(i, log.len() - 1);
                    i += 1;
                }
                other => panic!("unexpected {other:?} in {shown:#?}"),
            }
        }
        // Down for 700 ms with ceilings of 100, 200, 400 ms: at least one refused attempt.
        assert!(failures >= 1, "{shown:#?}");
        assert!(
            shown
                .iter()
                .any(|line| line.starts_with("reconnecting in ")),
            "{shown:#?}"
        );

        // The new connection works.
        assert_eq!(
            client.send(Message::text("after")).await.unwrap(),
            Sent::Written
        );
        let log = until(&mut client, |e| matches!(e, ClientEvent::Message(_))).await;
        assert_eq!(texts(&log), ["after"]);
        assert_eq!(server.accepted(), 2);

        client.close(CloseCode::NORMAL, "bye").unwrap();
        let log = to_end(&mut client).await;
        let last = states(&log).pop().expect("a last change");
        assert!(
            matches!(&last, StateChange::Closed(outcome) if outcome.is_clean()),
            "{last}"
        );
    });
}

/// The server accepts and completes the handshake, then never answers: the keepalive
/// notices within ping interval + pong timeout (+ slack), and the client retries.
#[test]
fn silent_server_is_detected_by_keepalive() {
    run(async {
        let server = FakeServer::start_new(Mode::Silent);
        let interval = Duration::from_millis(300);
        let timeout = Duration::from_millis(300);
        let options = options().with_keepalive(Some(KeepAlive::new(interval, timeout)));
        let mut client = client(&server, options);
        let opened = until(&mut client, is_open).await.pop().unwrap().0;
        let log = until(&mut client, |e| {
            is_state(e, |c| matches!(c, StateChange::Reconnecting { .. }))
        })
        .await;
        let changes = states(&log);
        assert_eq!(
            changes[0],
            StateChange::Closed(Outcome::TimedOut(Timeout::KeepAlive))
        );
        assert_eq!(changes[0].to_string(), "closed timeout: keepalive");
        assert!(matches!(
            changes[1],
            StateChange::Reconnecting { attempt: 1, .. }
        ));
        let detected = log[0].0.duration_since(opened);
        assert!(
            detected + Duration::from_millis(100) >= interval + timeout,
            "too early: {detected:?}"
        );
        assert!(
            detected < interval + timeout + Duration::from_secs(2),
            "too late: {detected:?}"
        );

        // Closing while waiting to reconnect ends the client at once.
        client.close(CloseCode::NORMAL, "").unwrap();
        assert!(to_end(&mut client).await.is_empty());
    });
}

/// A 403 to the upgrade is fatal: the client gives up without a single retry.
#[test]
fn rejection_403_gives_up_at_once() {
    run(async {
        let server = FakeServer::start_new(Mode::Reject(403));
        let mut client = client(&server, options());
        let started = Instant::now();
        let log = to_end(&mut client).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        let shown: Vec<String> = states(&log).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "connecting",
                "handshake rejected with HTTP 403",
                "gave up: handshake rejected with HTTP 403",
            ]
        );
        assert_eq!(
            states(&log)[2],
            StateChange::GaveUp(GiveUp::Fatal(Failure::Rejected {
                status: 403,
                retry_after: None
            }))
        );
        let Some(Error::Rejected(response)) = client.last_error() else {
            panic!("{:?}", client.last_error())
        };
        assert_eq!(
            (response.status, response.reason.as_str()),
            (403, "Forbidden")
        );
        assert_eq!(server.accepted(), 1);
        // Sends after the end are refused, with the message handed back.
        match client.send(Message::text("late")).await {
            Err(SendError::NotSent(unsent)) => {
                assert_eq!(unsent.reason, NotSent::Stopped);
                assert_eq!(unsent.message, Message::text("late"));
            }
            other => panic!("{other:?}"),
        }
    });
}

/// A 503 with `Retry-After: 1` is retried, never sooner than the server asked, although
/// the backoff alone would come back within 400 ms; the application sees the server's
/// delay in the failure and in the reconnect delay.
#[test]
fn rejection_503_waits_for_retry_after() {
    run(async {
        let server = FakeServer::start_new(Mode::Unavailable("1"));
        let policy = ReconnectPolicy::DEFAULT
            .with_backoff(backoff())
            .with_max_attempts(Some(2));
        let mut client = client(&server, options().with_policy(policy));
        let log = to_end(&mut client).await;
        let shown: Vec<String> = states(&log).iter().map(ToString::to_string).collect();
        let rejected = "handshake rejected with HTTP 503, retry after 1 s";
        assert_eq!(
            shown,
            [
                "connecting",
                rejected,
                "reconnecting in 1000ms (attempt 1)",
                "connecting (attempt 1)",
                rejected,
                "reconnecting in 1000ms (attempt 2)",
                "connecting (attempt 2)",
                rejected,
                "gave up after 2 reconnect attempts",
            ],
            "{shown:#?}"
        );
        let failure = Failure::Rejected {
            status: 503,
            retry_after: Some(Duration::from_secs(1)),
        };
        assert!(states(&log).contains(&StateChange::Failed(failure)));
        // Measured: each attempt came at least a second after the rejection before it.
        let at = |wanted: &str, nth: usize| {
            log.iter()
                .filter(|(_, event)| {
                    matches!(event, ClientEvent::State(change) if change.to_string() == wanted)
                })
                .nth(nth)
                .map(|(at, _)| *at)
                .unwrap_or_else(|| panic!("no {wanted:?} #{nth}: {shown:#?}"))
        };
        for attempt in 1..=2 {
            let waited =
                at(&format!("connecting (attempt {attempt})"), 0) - at(rejected, attempt - 1);
            assert!(
                waited >= Duration::from_millis(990) && waited < Duration::from_secs(10),
                "attempt {attempt} after {waited:?}"
            );
        }
        let Some(Error::Rejected(response)) = client.last_error() else {
            panic!("{:?}", client.last_error())
        };
        assert_eq!(response.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(server.accepted(), 3);
    });
}

/// `Retry-After` as an HTTP date is read against the wall clock: a date decades ahead
/// holds the next attempt back for the policy's cap (1 s here), not the backoff's
/// 100-400 ms.
#[test]
fn rejection_503_with_an_http_date_waits_up_to_the_cap() {
    run(async {
        let server = FakeServer::start_new(Mode::Unavailable("Wed, 21 Oct 2099 07:28:00 GMT"));
        let policy = ReconnectPolicy::DEFAULT
            .with_backoff(backoff())
            .with_max_attempts(Some(1))
            .with_max_retry_after(Duration::from_secs(1));
        let mut client = client(&server, options().with_policy(policy));
        let log = to_end(&mut client).await;
        let changes = states(&log);
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(shown[2], "reconnecting in 1000ms (attempt 1)", "{shown:#?}");
        let StateChange::Failed(Failure::Rejected {
            status: 503,
            retry_after: Some(asked),
        }) = changes[1]
        else {
            panic!("{shown:#?}")
        };
        // What the server asked for: over 70 years from now.
        assert!(asked > Duration::from_secs(70 * 365 * 86_400), "{asked:?}");
        let waited = log[3].0 - log[1].0;
        assert!(waited >= Duration::from_millis(990), "{waited:?}");
        assert_eq!(server.accepted(), 2);
    });
}

/// The server closes with 1008 and a reason: the application sees both (in the Close
/// message and in the closed state), and 1008 is fatal by default.
#[test]
fn close_1008_shows_code_and_reason_and_gives_up() {
    run(async {
        let reason = "policy: too many subscriptions";
        let server = FakeServer::start_new(Mode::CloseWith(1008, reason));
        let mut client = client(&server, options());
        let log = to_end(&mut client).await;
        let close = log.iter().find_map(|(_, event)| match event {
            ClientEvent::Message(Message::Close(close)) => Some(close.clone()),
            _ => None,
        });
        let close = close.flatten().expect("the server's Close");
        assert_eq!(
            (close.code, close.reason.as_str()),
            (CloseCode::POLICY, reason)
        );
        let shown: Vec<String> = states(&log).iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "connecting".to_string(),
                "open".to_string(),
                format!("closed clean code=1008 reason={reason}"),
                "gave up: closed by the server with code 1008".to_string(),
            ]
        );
        match &states(&log)[2] {
            StateChange::Closed(Outcome::Clean {
                received: Some(received),
                ..
            }) => {
                assert_eq!(received.code, CloseCode::POLICY);
                assert_eq!(received.reason, reason);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.accepted(), 1);
    });
}

/// Nothing listens: after `max_attempts` reconnect attempts the client gives up.
#[test]
fn max_attempts_reached_gives_up() {
    run(async {
        let server = FakeServer::stopped(Mode::Echo);
        let policy = ReconnectPolicy::DEFAULT
            .with_backoff(backoff())
            .with_max_attempts(Some(3));
        let mut client = client(&server, options().with_policy(policy));
        let log = to_end(&mut client).await;
        let shown: Vec<String> = states(&log).iter().map(ToString::to_string).collect();
        let expected_shape: Vec<&str> = shown
            .iter()
            .map(|line| line.split(" in ").next().unwrap_or(line))
            .map(|line| match line {
                l if l.starts_with("reconnecting") => "reconnecting",
                l => l,
            })
            .collect();
        assert_eq!(
            expected_shape,
            [
                "connecting",
                "connect failed: connection refused",
                "reconnecting",
                "connecting (attempt 1)",
                "connect failed: connection refused",
                "reconnecting",
                "connecting (attempt 2)",
                "connect failed: connection refused",
                "reconnecting",
                "connecting (attempt 3)",
                "connect failed: connection refused",
                "gave up after 3 reconnect attempts",
            ],
            "{shown:#?}"
        );
        assert_eq!(
            states(&log).last(),
            Some(&StateChange::GaveUp(GiveUp::MaxAttempts { attempts: 3 }))
        );
    });
}

/// Sends while the server is down are queued and replayed after the reconnect, after
/// what the on-connect hook sends, which runs on every connect.
#[test]
fn offline_sends_are_replayed_after_the_hook() {
    run(async {
        let server = FakeServer::start_new(Mode::Echo);
        let hooks = Arc::new(AtomicU32::new(0));
        let mut client = {
            let hooks = hooks.clone();
            client(&server, options()).on_connect(move |conn| {
                let n = hooks.fetch_add(1, Ordering::SeqCst);
                conn.send(Message::text(format!(
                    "hello {n} (attempt {})",
                    conn.attempt()
                )))
                .unwrap();
            })
        };
        let log = until(&mut client, |e| matches!(e, ClientEvent::Message(_))).await;
        assert_eq!(texts(&log), ["hello 0 (attempt 0)"]);

        server.stop();
        until(&mut client, |e| {
            is_state(e, |c| matches!(c, StateChange::Reconnecting { .. }))
        })
        .await;
        assert!(!client.is_open());
        for text in ["queued 1", "queued 2"] {
            assert_eq!(
                client.send(Message::text(text)).await.unwrap(),
                Sent::Queued
            );
        }
        // Control frames only make sense on their own connection.
        assert!(matches!(
            client.send(Message::ping(vec![])).await,
            Err(SendError::NotSent(unsent)) if unsent.reason == NotSent::Disconnected
        ));
        assert_eq!(client.queued(), 2);
        server.start();
        until(&mut client, is_open).await;
        assert_eq!(client.queued(), 0);
        let mut echoed = Vec::new();
        while echoed.len() < 3 {
            let log = until(&mut client, |e| matches!(e, ClientEvent::Message(_))).await;
            echoed.extend(texts(&log));
        }
        assert_eq!(echoed[1..], ["queued 1", "queued 2"]);
        assert!(echoed[0].starts_with("hello 1 (attempt "), "{echoed:?}");
        assert_eq!(hooks.load(Ordering::SeqCst), 2);
    });
}

/// With `OfflineSends::Reject`, a send while disconnected fails at once and hands the
/// message back; so does a full queue.
#[test]
fn offline_reject_and_full_queue() {
    run(async {
        let server = FakeServer::stopped(Mode::Echo);
        let mut client = client(&server, options().with_offline(OfflineSends::Reject));
        match client.send(Message::text("now")).await {
            Err(SendError::NotSent(unsent)) => {
                assert_eq!(unsent.reason, NotSent::Disconnected);
                assert_eq!(unsent.message, Message::text("now"));
            }
            other => panic!("{other:?}"),
        }
        let small = OfflineSends::Queue {
            max_messages: 1,
            max_bytes: 100,
        };
        let mut client = self::client(&server, options().with_offline(small));
        assert_eq!(
            client.send(Message::text("one")).await.unwrap(),
            Sent::Queued
        );
        match client.send(Message::text("two")).await {
            Err(SendError::NotSent(unsent)) => assert_eq!(unsent.reason, NotSent::QueueFull),
            other => panic!("{other:?}"),
        }
        // Closing before any connection ends the client; the queue can be taken back.
        client.close(CloseCode::NORMAL, "").unwrap();
        assert!(to_end(&mut client).await.is_empty());
        assert_eq!(client.take_queued(), [Message::text("one")]);
    });
}

/// Every attempt sends the configured subprotocols and headers, `before_connect` changes
/// them before each attempt (a fresh token), and the agreed subprotocol is visible while
/// a connection is open. A header the handshake reserves is a request that cannot be
/// sent: the client gives up at once and says why.
#[test]
fn every_attempt_sends_the_request_extras_the_hook_refreshed() {
    run(async {
        let server = FakeServer::start_new(Mode::Echo);
        let issued = Arc::new(AtomicU32::new(0));
        let extras = adapter::RequestExtras::new()
            .with_protocol("chat")
            .with_header("Authorization", "Bearer 0");
        let mut reconnecting = client(&server, options())
            .with_request(extras)
            .before_connect({
                let issued = issued.clone();
                move |request| {
                    let token = issued.fetch_add(1, Ordering::SeqCst) + 1;
                    request.set_header("Authorization", format!("Bearer {token}"));
                }
            });
        until(&mut reconnecting, is_open).await;
        assert_eq!(reconnecting.protocol(), Some("chat"));

        // The server goes away and comes back: the next connection has a new token.
        server.stop();
        server.start();
        until(&mut reconnecting, |e| {
            is_state(e, |c| !matches!(c, StateChange::Open))
        })
        .await;
        assert_eq!(reconnecting.protocol(), None);
        until(&mut reconnecting, is_open).await;
        assert_eq!(reconnecting.protocol(), Some("chat"));
        let seen = server.requests();
        let tokens: Vec<Option<&str>> = seen.iter().map(|r| r.authorization.as_deref()).collect();
        // Attempts refused while the server was down used tokens too; the server saw
        // the first and the latest.
        let latest = format!("Bearer {}", issued.load(Ordering::SeqCst));
        assert_eq!(tokens, [Some("Bearer 1"), Some(latest.as_str())]);
        assert_ne!(latest, "Bearer 1");
        assert!(seen.iter().all(|r| r.protocols == ["chat"]), "{seen:?}");
        assert_eq!(reconnecting.request().headers.len(), 1);
        reconnecting.close(CloseCode::NORMAL, "done").unwrap();
        to_end(&mut reconnecting).await;

        let reserved = adapter::RequestExtras::new().with_header("Sec-WebSocket-Key", "x");
        let mut refused = client(&server, options()).with_request(reserved);
        let log = to_end(&mut refused).await;
        assert!(
            matches!(
                states(&log).last(),
                Some(StateChange::GaveUp(GiveUp::Fatal(_)))
            ),
            "{log:#?}"
        );
        assert!(
            matches!(refused.last_error(), Some(Error::Request(_))),
            "{:?}",
            refused.last_error()
        );
        assert_eq!(server.requests().len(), 2);
    });
}

/// A connector opens every attempt's stream: it gets the parsed URL (a `wss://` one
/// too, which `new` refuses), and a stream it fails to open counts as a failed attempt
/// (retried) with the error's kind.
#[test]
fn a_connector_opens_every_attempts_stream() {
    run(async {
        let server = FakeServer::start_new(Mode::Echo);
        let addr = server.addr();
        let url = format!("wss://localhost:{}/feed", addr.port());
        assert!(matches!(
            ReconnectingClient::new(url.clone(), Settings::default(), options()),
            Err(Error::TlsRequired)
        ));
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let connector = {
            let calls = calls.clone();
            move |url: &adapter::Url<'_>| -> adapter::reconnect::OpenStream<Tcp> {
                let mut calls = calls.lock().unwrap();
                calls.push((url.host().to_owned(), url.port(), url.is_tls()));
                if calls.len() == 1 {
                    let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
                    return Box::pin(async move { Err(refused) });
                }
                // Plain TCP stands in for the TLS a real connector would add.
                Box::pin(tcp_connect(addr))
            }
        };
        let mut client =
            ReconnectingClient::with_connector(url, Settings::default(), options(), connector)
                .expect("a parsable URL");
        let log = until(&mut client, is_open).await;
        assert_eq!(
            states(&log)[1],
            StateChange::Failed(Failure::ConnectFailed(
                sockeye_proto::reconnect_policy::IoKind::Refused
            ))
        );
        assert_eq!(
            client
                .send(Message::text("over the connector"))
                .await
                .unwrap(),
            Sent::Written
        );
        let log = until(&mut client, |e| matches!(e, ClientEvent::Message(_))).await;
        assert_eq!(texts(&log), ["over the connector"]);

        server.stop();
        server.start();
        until(&mut client, |e| {
            is_state(e, |c| !matches!(c, StateChange::Open))
        })
        .await;
        until(&mut client, is_open).await;
        let calls = calls.lock().unwrap().clone();
        assert!(calls.len() >= 3, "{calls:?}");
        let expected = ("localhost".to_owned(), addr.port(), true);
        assert!(calls.iter().all(|call| *call == expected), "{calls:?}");
        assert_eq!(server.accepted(), 2);
    });
}
