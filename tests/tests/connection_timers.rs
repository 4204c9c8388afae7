//! Timers as data: keepalive against a silent peer and kept alive by pongs, the idle
//! timeout, and `poll_timeout` never handing back a deadline at or before `now` right
//! after `handle_timeout(now)`.

use core::time::Duration;

use sockeye_proto::frame::OpCode;
use sockeye_proto::{
    CloseCode, Closed, Config, Connection, DataKind, Instant, KeepAlive, Role, Timeout,
};
use sockeye_tests::{Endpoint, Entry, Frame, Pair, Side, XorShift};

const INTERVAL: Duration = Duration::from_secs(10);
const PONG_TIMEOUT: Duration = Duration::from_secs(5);

fn keepalive() -> Config {
    Config::default().with_keepalive(Some(KeepAlive::new(INTERVAL, PONG_TIMEOUT)))
}

fn just_before(at: Instant) -> Instant {
    Instant::from_nanos(at.as_nanos() - 1)
}

fn sent_opcodes(endpoint: &Endpoint) -> Vec<OpCode> {
    endpoint.sent_frames().iter().map(|f| f.opcode).collect()
}

#[test]
fn keepalive_against_a_silent_peer() {
    for side in [Side::Client, Side::Server] {
        let mut pair = Pair::builder()
            .config(Config::default())
            .client_config(if side == Side::Client {
                keepalive()
            } else {
                Config::default()
            })
            .server_config(if side == Side::Server {
                keepalive()
            } else {
                Config::default()
            })
            .start(Instant::from_millis(500))
            .build();
        let start = pair.now();
        // The peer is silent: it never reads, so never answers.
        pair.pause(side.peer());
        let ping_at = start + INTERVAL;
        assert_eq!(pair.next_deadline(), Some(ping_at));
        pair.advance_to(just_before(ping_at));
        assert!(
            pair.endpoint(side).sent().is_empty(),
            "{side:?} pinged early"
        );
        pair.advance_to(ping_at);
        assert_eq!(sent_opcodes(pair.endpoint(side)), [OpCode::Ping]);
        let give_up = ping_at + PONG_TIMEOUT;
        assert_eq!(
            pair.endpoint(side).connection().poll_timeout(),
            Some(give_up)
        );
        pair.advance_to(just_before(give_up));
        assert_eq!(pair.endpoint(side).outcome(), None);
        pair.advance_to(give_up);
        assert_eq!(
            pair.endpoint(side).transcript().entries(),
            &[Entry::Closed(Closed::TimedOut(Timeout::KeepAlive))]
        );
        // No Close for a dead peer: only the transport goes.
        assert_eq!(sent_opcodes(pair.endpoint(side)), [OpCode::Ping]);
        assert!(pair.endpoint(side).shutdown_sent());
        assert_eq!(pair.endpoint(side).connection().poll_timeout(), None);
    }
}

#[test]
fn keepalive_kept_alive_by_pongs() {
    let mut pair = Pair::builder().client_config(keepalive()).build();
    for round in 1..=20u64 {
        let at = pair.next_deadline().expect("keepalive armed");
        assert_eq!(at, Instant::ZERO + INTERVAL * round as u32, "round {round}");
        pair.advance_to(at);
        assert_eq!(pair.client.outcome(), None);
    }
    let pings = pair
        .server
        .transcript()
        .entries()
        .iter()
        .filter(|e| matches!(e, Entry::Ping(_)))
        .count();
    let pongs = pair.client.tally().pongs;
    assert_eq!((pings, pongs), (20, 20));
    // The Pong echoes the Ping's payload.
    let ping = pair.server.transcript().entries()[0].clone();
    let Entry::Ping(payload) = ping else { panic!() };
    assert_eq!(pair.client.transcript().entries()[0], Entry::Pong(payload));
}

#[test]
fn keepalive_kept_alive_by_any_inbound_bytes() {
    let mut pair = Pair::builder().client_config(keepalive()).build();
    for _ in 0..50 {
        pair.advance(INTERVAL - Duration::from_millis(1));
        pair.send(Side::Server, DataKind::Binary, b"tick").unwrap();
        pair.flush();
    }
    assert_eq!(pair.client.stats().control_frames, 0, "no ping needed");
    // Bytes after the Ping count as an answer too.
    pair.advance(INTERVAL);
    assert_eq!(pair.client.stats().control_frames, 1);
    pair.pause(Side::Server);
    pair.advance(PONG_TIMEOUT - Duration::from_millis(1));
    pair.send(Side::Server, DataKind::Text, b"late but fine")
        .unwrap();
    pair.flush();
    pair.advance(Duration::from_millis(1));
    assert_eq!(pair.client.outcome(), None);
}

#[test]
fn keepalive_stops_once_closing() {
    let mut pair = Pair::builder().config(keepalive()).build();
    pair.pause(Side::Server);
    pair.close(Side::Client, CloseCode::NORMAL, "").unwrap();
    // Only the close timer is left.
    assert_eq!(
        pair.client.connection().poll_timeout(),
        Some(Instant::from_millis(30_000))
    );
    pair.advance(Duration::from_secs(30));
    assert_eq!(
        pair.client.outcome(),
        Some(Closed::TimedOut(Timeout::Close))
    );
    assert_eq!(sent_opcodes(&pair.client), [OpCode::Close]);
}

#[test]
fn idle_timeout() {
    let idle = Duration::from_secs(60);
    let config = Config::default()
        .with_keepalive(None)
        .with_idle_timeout(Some(idle));
    let mut pair = Pair::builder().server_config(config).build();
    // Messages re-arm it; pings and pongs do not.
    pair.advance(Duration::from_secs(59));
    pair.send(Side::Client, DataKind::Text, b"still here")
        .unwrap();
    pair.flush();
    let deadline = pair.now() + idle;
    assert_eq!(pair.server.connection().poll_timeout(), Some(deadline));
    pair.advance(Duration::from_secs(30));
    pair.ping(Side::Client, b"not a message").unwrap();
    pair.flush();
    assert_eq!(pair.server.connection().poll_timeout(), Some(deadline));
    pair.advance_to(just_before(deadline));
    assert_eq!(pair.server.outcome(), None);
    pair.advance_to(deadline);
    // The server closes politely (1001), ends at once, and the client sees a clean close.
    assert_eq!(pair.server.outcome(), Some(Closed::TimedOut(Timeout::Idle)));
    let close = pair
        .server
        .sent_frames()
        .into_iter()
        .find(|f| f.opcode == OpCode::Close)
        .unwrap();
    assert_eq!(close.close_code(), Some(CloseCode::GOING_AWAY));
    assert_eq!(
        pair.client.transcript().close(),
        Some((Some(CloseCode::GOING_AWAY), "idle timeout"))
    );
    assert!(pair.client.outcome().unwrap().is_clean());
}

#[test]
fn timers_can_all_be_off() {
    let config = Config::default()
        .with_keepalive(None)
        .with_close_timeout(None);
    let mut conn = Connection::new(Role::Client, config, [1; 32], Instant::ZERO);
    assert_eq!(conn.poll_timeout(), None);
    conn.close(CloseCode::NORMAL, "", Instant::ZERO).unwrap();
    assert_eq!(conn.poll_timeout(), None);
    assert_eq!(conn.handle_timeout(Instant::MAX), None);
}

#[test]
fn zero_durations_still_give_deadlines_after_now() {
    let config = Config::default()
        .with_keepalive(Some(KeepAlive::new(Duration::ZERO, Duration::ZERO)))
        .with_idle_timeout(Some(Duration::ZERO))
        .with_close_timeout(Some(Duration::ZERO));
    for role in [Role::Client, Role::Server] {
        let mut endpoint = Endpoint::new(role, config, Instant::from_nanos(100));
        let mut now = Instant::from_nanos(100);
        while endpoint.outcome().is_none() {
            let deadline = endpoint.connection().poll_timeout().expect("armed");
            assert!(deadline > now);
            now = deadline;
            endpoint.timeout(now);
        }
    }
}

#[test]
fn handle_timeout_early_is_harmless() {
    let mut endpoint = Endpoint::new(Role::Client, keepalive(), Instant::ZERO);
    for ms in (0..10_000).step_by(7) {
        endpoint.timeout(Instant::from_millis(ms));
    }
    assert!(endpoint.sent().is_empty());
    assert_eq!(
        endpoint.connection().poll_timeout(),
        Some(Instant::ZERO + INTERVAL)
    );
}

/// Random operations over a keepalive + idle pair; `Endpoint::timeout` asserts after
/// every `handle_timeout(now)` that the next deadline lies after `now`.
#[test]
fn deadlines_never_in_the_past_under_random_driving() {
    let config = Config::default()
        .with_keepalive(Some(KeepAlive::new(
            Duration::from_millis(30),
            Duration::from_millis(20),
        )))
        .with_idle_timeout(Some(Duration::from_millis(200)))
        .with_close_timeout(Some(Duration::from_millis(50)));
    for seed in 1..=200 {
        let mut rng = XorShift::new(seed);
        let mut pair = Pair::builder().config(config).build();
        for _ in 0..60 {
            match rng.range(0, 9) {
                0 => pair.advance(Duration::from_millis(rng.range(0, 40) as u64)),
                1 => {
                    if let Some(at) = pair.next_deadline() {
                        pair.advance_to(at);
                    }
                }
                2 => pair.pause(if rng.range(0, 1) == 0 {
                    Side::Client
                } else {
                    Side::Server
                }),
                3 => {
                    pair.resume(Side::Client);
                    pair.resume(Side::Server);
                }
                4 => {
                    let side = if rng.range(0, 1) == 0 {
                        Side::Client
                    } else {
                        Side::Server
                    };
                    let _ = pair.close(side, CloseCode::NORMAL, "");
                }
                5 => {
                    let _ = pair.ping(Side::Server, b"x");
                }
                _ => {
                    let side = if rng.range(0, 1) == 0 {
                        Side::Client
                    } else {
                        Side::Server
                    };
                    let _ = pair.send(side, DataKind::Binary, b"data");
                }
            }
            pair.flush();
            let now = pair.now();
            for side in [Side::Client, Side::Server] {
                if let Some(deadline) = pair.endpoint(side).connection().poll_timeout() {
                    // Deadlines armed by input at `now` lie after it too.
                    assert!(deadline > now, "seed {seed}: {deadline:?} <= {now:?}");
                }
            }
        }
        pair.resume(Side::Client);
        pair.resume(Side::Server);
        assert!(pair.run_until_done(Duration::from_secs(3600)) || pair.next_deadline().is_none());
    }
}

/// An adapter whose loop calls `handle_input` on every wakeup, passing back the bytes
/// it could not consume yet (a partial frame), must not keep a dead peer alive: bytes
/// seen before are not inbound activity.
#[test]
fn leftover_bytes_passed_again_are_not_activity() {
    let mut conn = Connection::new(Role::Client, keepalive(), [3; 32], Instant::ZERO);
    // Three bytes of a frame header arrive and wait for the rest.
    let mut leftover = Frame::binary(&[0; 300]).encode()[..3].to_vec();
    let read = conn.handle_input(&mut leftover, Instant::ZERO).unwrap();
    assert_eq!((read.consumed, read.event), (0, None));
    let ping_at = Instant::ZERO + INTERVAL;
    assert_eq!(conn.handle_timeout(ping_at), None);
    let give_up = ping_at + PONG_TIMEOUT;
    assert_eq!(conn.poll_timeout(), Some(give_up));
    // A wakeup re-runs the input loop with the same leftover: no new bytes.
    let read = conn
        .handle_input(&mut leftover, just_before(give_up))
        .unwrap();
    assert_eq!((read.consumed, read.event), (0, None));
    assert_eq!(conn.poll_timeout(), Some(give_up));
    assert_eq!(
        conn.handle_timeout(give_up),
        Some(sockeye_proto::Event::Closed(Closed::TimedOut(
            Timeout::KeepAlive
        )))
    );
}

/// Once our Close is out only the close timer matters: data still arriving must not
/// re-arm the idle timer (a deadline at which `handle_timeout` would have nothing to do).
#[test]
fn data_after_our_close_arms_no_idle_timer() {
    let config = Config::default().with_idle_timeout(Some(Duration::from_secs(5)));
    let mut pair = Pair::builder().server_config(config).build();
    pair.pause(Side::Client);
    pair.close(Side::Server, CloseCode::NORMAL, "").unwrap();
    let close_deadline = Instant::ZERO + Duration::from_secs(30);
    assert_eq!(
        pair.server.connection().poll_timeout(),
        Some(close_deadline)
    );
    pair.send(Side::Client, DataKind::Text, b"crossing the close")
        .unwrap();
    pair.flush();
    assert_eq!(
        pair.server.transcript().messages(),
        vec![Entry::text("crossing the close")]
    );
    assert_eq!(
        pair.server.connection().poll_timeout(),
        Some(close_deadline)
    );
}

#[test]
fn a_ping_with_a_peer_frame_to_the_client() {
    let mut client = Endpoint::new(Role::Client, keepalive(), Instant::ZERO);
    client.receive(&Frame::ping(b"hi").encode(), Instant::ZERO);
    assert_eq!(client.sent_frames()[0].opcode, OpCode::Pong);
    assert_eq!(client.sent_frames()[0].payload, b"hi");
}
