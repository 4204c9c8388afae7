//! The connection's life as the engine decides it: what `poll_io` asks for, the queue
//! bound under a peer that never reads, the write-stall timer, the linger after the
//! end, I/O failures, end of stream, and the peer's Close reason.

use std::task::Poll;
use std::time::Duration;

use sockeye_engine::{Abnormal, CloseReason, Driver, DriverConfig, Io, Message, Next, Outcome};
use sockeye_proto::{CloseCode, Config, Connection, Instant, Timeout};

/// A client frame with an all-zero mask (so the payload goes as it is).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut frame = vec![0x80 | opcode, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

fn close_frame(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    client_frame(0x8, &payload)
}

fn at(ms: u64) -> Instant {
    Instant::ZERO + Duration::from_millis(ms)
}

fn server(config: DriverConfig) -> Driver {
    Driver::new(Connection::server(Config::default(), at(0)), config)
}

/// Reads `bytes` into the driver as one read.
fn read(driver: &mut Driver, bytes: &[u8]) -> usize {
    match driver.read_with(|buf: &mut [u8]| -> Poll<Result<usize, ()>> {
        let n = buf.len().min(bytes.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        Poll::Ready(Ok(n))
    }) {
        Poll::Ready(Ok(n)) => n,
        other => panic!("{other:?}"),
    }
}

/// Writes everything queued to a peer that takes it all.
fn write_all(driver: &mut Driver) {
    for _ in 0..1000 {
        let n = {
            let mut slices = [std::io::IoSlice::new(&[]); 16];
            let count = driver.write_slices(&mut slices);
            slices[..count].iter().map(|s| s.len()).sum::<usize>()
        };
        if n == 0 {
            return;
        }
        driver.advance(n);
    }
    panic!("the queue never drained");
}

fn io(driver: &mut Driver, now: Instant) -> Io {
    match driver.poll_io(now) {
        Next::Io(io) => io,
        other => panic!("expected I/O, got {other:?}"),
    }
}

#[test]
fn a_ping_flood_cannot_grow_the_queue_past_its_bound() {
    let bound = 4 * 1024;
    let mut driver = server(DriverConfig::default().with_max_pending_bytes(bound));
    let ping = client_frame(0x9, &[7; 125]);
    let mut pings = 0;
    // The peer never reads: nothing is ever written. Feed pings while the engine asks
    // for them.
    for _ in 0..10_000 {
        while driver.poll_message(at(1)).is_some() {
            pings += 1;
        }
        assert!(
            driver.pending_bytes() <= bound + 127 + 2,
            "{} queued",
            driver.pending_bytes()
        );
        if !io(&mut driver, at(1)).read {
            break;
        }
        let batch: Vec<u8> = (0..64).flat_map(|_| ping.clone()).collect();
        let mut offset = 0;
        while offset < batch.len() {
            offset += read(&mut driver, &batch[offset..]);
            while driver.poll_message(at(1)).is_some() {
                pings += 1;
            }
        }
    }
    let io = io(&mut driver, at(1));
    assert!(!io.read, "reading goes on with a full queue");
    assert!(io.write);
    assert!(pings > bound / 127, "{pings} pings");
    // Once the peer reads again, the queue drains, the waiting Pong goes out (one for
    // all the Pings that came meanwhile) and reading resumes.
    write_all(&mut driver);
    assert!(driver.pending_bytes() <= 127 + 2);
    write_all(&mut driver);
    assert!(self::io(&mut driver, at(2)).read);
}

#[test]
fn a_peer_that_stops_reading_is_ended_by_the_write_stall_timeout() {
    let config = DriverConfig::default().with_write_stall_timeout(Some(Duration::from_secs(5)));
    let mut driver = server(config);
    driver.send(Message::binary(vec![1; 1000]), at(0)).unwrap();
    let deadline = io(&mut driver, at(0))
        .deadline
        .expect("the stall timer runs");
    assert_eq!(deadline, at(5_000));
    // Progress restarts the timer.
    driver.advance(10);
    driver.handle_deadline(at(5_000));
    assert_eq!(driver.outcome(), None);
    let deadline = io(&mut driver, at(5_000)).deadline.unwrap();
    assert_eq!(deadline, at(10_000));
    // No progress for the whole timeout ends it.
    driver.handle_deadline(at(10_000));
    assert_eq!(
        driver.outcome(),
        Some(&Outcome::TimedOut(Timeout::WriteStall))
    );
    assert_eq!(driver.poll_io(at(10_000)), Next::Done);
}

#[test]
fn after_the_end_the_last_frames_get_the_linger_then_are_given_up() {
    let config = DriverConfig::default().with_linger(Some(Duration::from_secs(2)));
    let mut driver = server(config);
    driver.close(CloseCode::NORMAL, "bye", at(0)).unwrap();
    read(&mut driver, &close_frame(1000, ""));
    assert_eq!(
        driver.poll_message(at(100)),
        Some(Message::Close(Some(CloseReason::new(
            CloseCode::NORMAL,
            ""
        ))))
    );
    while driver.poll_message(at(100)).is_some() {}
    assert!(
        driver.outcome().is_some_and(Outcome::is_clean),
        "{:?}",
        driver.outcome()
    );
    // Our Close is not written yet: write only, until the linger.
    let io = io(&mut driver, at(100));
    assert_eq!(
        (io.read, io.write, io.deadline),
        (false, true, Some(at(2_100)))
    );
    driver.handle_deadline(at(2_100));
    assert_eq!(driver.poll_io(at(2_100)), Next::Done);
}

#[test]
fn a_clean_close_shuts_down_once_written_then_is_done() {
    let mut driver = server(DriverConfig::default());
    read(&mut driver, &close_frame(1000, "done"));
    assert!(matches!(
        driver.poll_message(at(1)),
        Some(Message::Close(_))
    ));
    assert_eq!(driver.poll_message(at(1)), None);
    write_all(&mut driver);
    assert_eq!(driver.poll_io(at(1)), Next::Shutdown);
    driver.shutdown_done();
    assert_eq!(driver.poll_io(at(1)), Next::Done);
    let Some(Outcome::Clean { received, .. }) = driver.outcome() else {
        panic!()
    };
    assert_eq!(received, &Some(CloseReason::new(CloseCode::NORMAL, "done")));
}

#[test]
fn an_io_failure_is_the_outcome_and_ends_at_once() {
    let mut driver = server(DriverConfig::default());
    driver.send(Message::text("unsent"), at(0)).unwrap();
    driver.fail_io(std::io::ErrorKind::ConnectionReset);
    assert_eq!(
        driver.outcome(),
        Some(&Outcome::Abnormal(Abnormal::Io(
            std::io::ErrorKind::ConnectionReset
        )))
    );
    assert_eq!(driver.poll_io(at(0)), Next::Done);
    assert_eq!(driver.pending_bytes(), 0);
}

#[test]
fn end_of_stream_without_a_close_is_abnormal() {
    let mut driver = server(DriverConfig::default());
    read(&mut driver, &client_frame(0x1, b"hi"));
    assert_eq!(read(&mut driver, &[]), 0);
    assert_eq!(driver.poll_message(at(1)), Some(Message::text("hi")));
    assert_eq!(driver.poll_message(at(1)), None);
    assert_eq!(driver.outcome(), Some(&Outcome::Abnormal(Abnormal::Eof)));
    // The core closes its side too.
    assert_eq!(driver.poll_io(at(1)), Next::Shutdown);
    driver.shutdown_done();
    assert_eq!(driver.poll_io(at(1)), Next::Done);
}

/// The core keeps the peer's Close where a Pong waits; with a Pong still waiting (the
/// queue was full) it kept only the code. The engine keeps the reason as it arrived.
#[test]
fn the_peers_close_reason_survives_a_waiting_pong() {
    let mut driver = server(DriverConfig::default().with_max_pending_bytes(16));
    driver.send(Message::binary(vec![0; 64]), at(0)).unwrap();
    let mut wire = client_frame(0x9, b"are you there");
    wire.extend(close_frame(1008, "policy violated"));
    read(&mut driver, &wire);
    assert!(matches!(driver.poll_message(at(1)), Some(Message::Ping(_))));
    assert_eq!(
        driver.poll_message(at(1)),
        Some(Message::Close(Some(CloseReason::new(
            CloseCode(1008),
            "policy violated"
        ))))
    );
    while driver.poll_message(at(1)).is_some() {}
    write_all(&mut driver);
    write_all(&mut driver);
    let Some(Outcome::Clean { received, .. }) = driver.outcome() else {
        panic!("{:?}", driver.outcome())
    };
    assert_eq!(
        received,
        &Some(CloseReason::new(CloseCode(1008), "policy violated"))
    );
}
