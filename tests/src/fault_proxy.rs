//! [`FaultProxy`]: a loopback TCP proxy that delivers bytes the way a bad network does,
//! for adapters that own their sockets (mio) and so cannot be given a [`Faulty`]
//! stream: each direction is forwarded in random short pieces with random pauses, up to
//! a bound (the receiver sees short reads and `WouldBlock` at arbitrary points of a
//! frame), and with a cut the connection is closed after a chosen number of bytes (end
//! of stream in the middle of whatever was passing). Driven by the same seeded
//! [`Faults`] as [`Faulty`], so a failure replays.
//!
//! [`Faulty`]: crate::Faulty

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::{Faults, XorShift};

/// How long a forwarding thread waits for bytes before it looks at the stop flag.
const POLL: Duration = Duration::from_millis(20);

/// The most one direction of a connection pauses in all. The pauses come per piece, and
/// each costs what a sleep costs (more than it asks for, more on a busy machine):
/// unbounded, a seed with pieces of a few bytes holds a 70 KB message back for seconds,
/// longer than a close timeout, and the peer that sent it gives up on its Close before
/// the echo is back. The bound leaves room for a thousand pauses or so (a handshake and
/// the first frames split everywhere), and an exchange in pieces of one byte crosses
/// well within a close timeout of two seconds.
const PAUSES: Duration = Duration::from_millis(250);

/// A proxy on `127.0.0.1` forwarding every connection to `upstream` through faults.
/// Dropping it stops accepting and closes what it forwards.
pub struct FaultProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream` with `faults` (its `cut_after` counts the bytes
    /// of both directions together; `max_chunk` and `pending_one_in` shape the pieces
    /// and the pauses).
    pub fn start(upstream: SocketAddr, faults: Faults) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let acceptor = thread::spawn(move || {
            let mut forwarders = Vec::new();
            let mut connections = 0u64;
            while !stopping.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let Ok(server) = TcpStream::connect(upstream) else {
                            continue;
                        };
                        connections += 1;
                        let seed = faults.seed ^ connections.wrapping_mul(0x9E37_79B9);
                        forwarders.extend(forward(client, server, faults, seed, &stopping));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
            for forwarder in forwarders {
                let _ = forwarder.join();
            }
        });
        Ok(FaultProxy {
            addr,
            stop,
            acceptor: Some(acceptor),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// The two forwarding threads of one connection.
fn forward(
    client: TcpStream,
    server: TcpStream,
    faults: Faults,
    seed: u64,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<()>> {
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(
        faults.cut_after.map_or(u64::MAX, |(bytes, _)| bytes),
    ));
    let mut threads = Vec::new();
    for (from, to, seed) in [
        (client.try_clone(), server.try_clone(), seed),
        (server.try_clone(), client.try_clone(), seed.rotate_left(29)),
    ] {
        let (Ok(mut from), Ok(mut to)) = (from, to) else {
            continue;
        };
        let stop = stop.clone();
        let budget = budget.clone();
        threads.push(thread::spawn(move || {
            let _ = from.set_read_timeout(Some(POLL));
            let mut rng = XorShift::new(seed);
            let mut buf = vec![0u8; 64 * 1024];
            // How long this direction has paused so far.
            let mut paused = Duration::ZERO;
            while !stop.load(Ordering::SeqCst) {
                let n = match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue
                    }
                    Err(_) => break,
                };
                let mut sent = 0;
                while sent < n {
                    let piece = 1 + (rng.next_u64() as usize % faults.max_chunk.max(1));
                    let piece = piece.min(n - sent);
                    // The cut: the bytes both directions may still carry.
                    let left = budget.load(Ordering::SeqCst);
                    let piece = piece.min(usize::try_from(left).unwrap_or(usize::MAX));
                    if piece == 0 {
                        let _ = from.shutdown(Shutdown::Both);
                        let _ = to.shutdown(Shutdown::Both);
                        return;
                    }
                    budget.fetch_sub(piece as u64, Ordering::SeqCst);
                    if to.write_all(&buf[sent..sent + piece]).is_err() {
                        // The receiver is gone: stop this direction only, and let the
                        // other deliver what it still carries (a Close on its way), as a
                        // network would.
                        let _ = from.shutdown(Shutdown::Read);
                        return;
                    }
                    sent += piece;
                    if faults.pending_one_in > 0
                        && rng.next_u64() % u64::from(faults.pending_one_in) == 0
                    {
                        // Short, and no more once this direction has paused for
                        // `PAUSES` in all (the pieces stay as short).
                        let pause = Duration::from_micros(rng.next_u64() % 200);
                        if paused < PAUSES {
                            let started = Instant::now();
                            thread::sleep(pause);
                            paused += started.elapsed();
                        }
                    }
                }
            }
            // The end of one direction is passed on as such.
            let _ = to.shutdown(Shutdown::Write);
        }));
    }
    threads
}
