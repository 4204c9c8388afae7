//! [`Server`]: many [`Session`]s on one `mio::Poll`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use sockeye_engine::{Message, RequestHead, Settings, Verdict};

use crate::Session;

/// The listener's token; session `key` has token `key + 1`.
const LISTENER: Token = Token(0);

/// What a [`Server`] calls. Only [`on_message`](Handler::on_message) is required, and any
/// `FnMut(&mut Session, Message)` is a handler.
pub trait Handler {
    /// Decides a request (path, query, headers, offered subprotocols). Default: accept
    /// without a subprotocol. Plain HTTP requests come here too
    /// ([`RequestHead::is_upgrade`] is false): answer them with any status and body
    /// (accepting one answers 400). Invalid upgrades never get here: they are answered
    /// with their 400 / 426 / 431.
    fn on_request(&mut self, request: &RequestHead) -> Verdict {
        let _ = request;
        Verdict::accept().into()
    }

    /// A session finished its handshake.
    fn on_open(&mut self, session: &mut Session) {
        let _ = session;
    }

    /// A message arrived (data, Ping, Pong, or the peer's Close). Reply with
    /// [`Session::send`]; queued bytes are written right after.
    fn on_message(&mut self, session: &mut Session, message: Message);

    /// A session is over and about to be dropped: see [`Session::outcome`] (a connection
    /// that opened) and [`Session::error`] (a failed handshake, an I/O or protocol error).
    fn on_close(&mut self, session: &mut Session) {
        let _ = session;
    }
}

impl<F: FnMut(&mut Session, Message)> Handler for F {
    fn on_message(&mut self, session: &mut Session, message: Message) {
        self(session, message)
    }
}

/// A WebSocket server on one thread: a listener and a [`Slab`] of [`Session`]s on one
/// [`mio::Poll`], with the sessions' rejections, handshake timeouts, keepalive and close
/// timers, calling a [`Handler`].
///
/// A turn costs what its events and expired timers cost, not the number of sessions:
/// only the sessions that had an event, were accepted or had a timer fire are looked
/// at again, and the deadlines wait in a heap.
///
/// ```no_run
/// use sockeye_mio::{Handler, Message, RequestHead, Server, Session, Settings, Verdict};
///
/// struct Chat;
///
/// impl Handler for Chat {
///     fn on_request(&mut self, request: &RequestHead) -> Verdict {
///         match request.path() {
///             "/chat" => Verdict::accept().into(),
///             // A plain GET for a health check, on the same port.
///             "/health" if !request.is_upgrade() => Verdict::reject(200, "OK").with_body("ok").into(),
///             _ => Verdict::reject(404, "Not Found").into(),
///         }
///     }
///
///     fn on_message(&mut self, session: &mut Session, message: Message) {
///         if let Message::Text(text) = message {
///             let _ = session.send(Message::text(text.to_uppercase()));
///         }
///     }
/// }
///
/// let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), Settings::default(), Chat)?;
/// for _ in 0..100 {
///     server.turn(Some(std::time::Duration::from_millis(10)))?;
/// }
/// # Ok::<_, std::io::Error>(())
/// ```
pub struct Server<H> {
    poll: Poll,
    events: Events,
    listener: TcpListener,
    sessions: Slab<Entry>,
    /// Each session's deadline as scheduled (`Entry::scheduled`), earliest first, with
    /// stale entries (the session moved its deadline, or ended) skipped when they come up.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    /// The sessions this turn touched, to settle at its end.
    touched: Vec<usize>,
    settings: Settings,
    handler: H,
}

/// A session and the deadline it has in the timer heap.
struct Entry {
    session: Session,
    scheduled: Option<Instant>,
}

impl<H> fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("listener", &self.listener)
            .field("sessions", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Server<H> {
    /// Listens on `addr` (port 0 picks a free port: see [`local_addr`](Self::local_addr)).
    pub fn bind(addr: SocketAddr, settings: impl Into<Settings>, handler: H) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(addr)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        Ok(Server {
            poll,
            events: Events::with_capacity(1024),
            listener,
            sessions: Slab::new(),
            timers: BinaryHeap::new(),
            touched: Vec::new(),
            settings: settings.into(),
            handler,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until an I/O error of the poll itself.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            self.turn(None)?;
        }
    }

    /// One turn: waits for events (at most `max_wait`, and never past the next session
    /// deadline), handles them, fires expired timers, and drops finished sessions.
    pub fn turn(&mut self, max_wait: Option<Duration>) -> io::Result<()> {
        let now = Instant::now();
        let mut wait = self
            .next_deadline()
            .map(|deadline| deadline.saturating_duration_since(now));
        if let Some(max) = max_wait {
            wait = Some(wait.map_or(max, |w| w.min(max)));
        }
        match self.poll.poll(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let mut accept = false;
        for event in self.events.iter() {
            if event.token() == LISTENER {
                accept = true;
                continue;
            }
            let key = event.token().0 - 1;
            let Some(entry) = self.sessions.get_mut(key) else {
                continue;
            };
            entry.session.on_event_with(event, now, &mut self.handler);
            entry.session.flush(now);
            self.touched.push(key);
        }
        if accept {
            self.accept(now)?;
        }
        while let Some(&Reverse((deadline, key))) = self.timers.peek() {
            if deadline > now {
                break;
            }
            self.timers.pop();
            match self.sessions.get_mut(key) {
                Some(entry) if entry.scheduled == Some(deadline) => {
                    entry.scheduled = None;
                    entry.session.on_timeout(now);
                    self.touched.push(key);
                }
                // Stale: the session moved its deadline or ended.
                _ => {}
            }
        }
        self.settle();
        Ok(())
    }

    /// The earliest deadline of any session, dropping stale heap entries on the way.
    fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(&Reverse((deadline, key))) = self.timers.peek() {
            match self.sessions.get(key) {
                Some(entry) if entry.scheduled == Some(deadline) => return Some(deadline),
                _ => {
                    self.timers.pop();
                }
            }
        }
        None
    }

    /// For each session touched this turn: drops it if it is done, else updates its
    /// registration and schedules its next deadline.
    fn settle(&mut self) {
        let registry = self.poll.registry();
        for key in self.touched.drain(..) {
            // A session can be touched twice in a turn (an event and a timer).
            let Some(entry) = self.sessions.get_mut(key) else {
                continue;
            };
            let session = &mut entry.session;
            if session.is_done() || session.update_interest(registry, Token(key + 1)).is_err() {
                let mut session = self.sessions.remove(key).session;
                let _ = session.deregister(registry);
                self.handler.on_close(&mut session);
                continue;
            }
            let deadline = session.deadline_std();
            if deadline != entry.scheduled {
                entry.scheduled = deadline;
                if let Some(deadline) = deadline {
                    self.timers.push(Reverse((deadline, key)));
                }
            }
        }
        // Sessions that keep moving their deadline leave stale entries behind; rebuild
        // the heap once they outnumber the live ones, so it stays proportional to the
        // sessions (at amortized constant cost per entry).
        if self.timers.len() > 2 * self.sessions.len() + 64 {
            self.timers = self
                .sessions
                .iter()
                .filter_map(|(key, entry)| entry.scheduled.map(|at| Reverse((at, key))))
                .collect();
        }
    }

    fn accept(&mut self, now: Instant) -> io::Result<()> {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // Out of descriptors, a connection reset before it was accepted ...:
                // keep serving the others.
                Err(_) => return Ok(()),
            };
            let _ = stream.set_nodelay(true);
            let entry = self.sessions.vacant_entry();
            let key = entry.key();
            let mut session = Session::server(stream, self.settings, now);
            if session
                .register(self.poll.registry(), Token(key + 1))
                .is_ok()
            {
                entry.insert(Entry {
                    session,
                    scheduled: None,
                });
                // Settled at the end of the turn: its handshake deadline goes on the heap.
                self.touched.push(key);
            }
        }
    }

    /// Open and handshaking sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, KeepAlive};

    /// Whether every live session is on the heap at the deadline it reports, and the
    /// heap holds no more than the compaction bound.
    fn timers_are_consistent<H: Handler>(server: &Server<H>) -> Result<(), String> {
        for (key, entry) in server.sessions.iter() {
            if entry.scheduled != entry.session.deadline_std() {
                return Err(format!("session {key}: scheduled {:?}", entry.scheduled));
            }
            let queued = entry
                .scheduled
                .is_none_or(|at| server.timers.iter().any(|t| t.0 == (at, key)));
            if !queued {
                return Err(format!("session {key}: its deadline is not on the heap"));
            }
        }
        if server.timers.len() > 2 * server.sessions.len() + 64 {
            return Err(format!("{} heap entries", server.timers.len()));
        }
        Ok(())
    }

    /// A busy session moves its keepalive deadline with every message it receives; the
    /// stale heap entries that leaves are dropped, and silent connections still get
    /// their handshake timeout from the heap while the busy one keeps being served.
    #[test]
    fn deadlines_stay_on_a_bounded_heap_and_fire() {
        let keepalive = KeepAlive::new(Duration::from_secs(30), Duration::from_secs(30));
        let settings = Settings::from(Config::default().with_keepalive(Some(keepalive)))
            .with_handshake_timeout(Some(Duration::from_millis(300)));
        let echo = |session: &mut Session, message: Message| {
            if message.is_data() {
                let _ = session.send(message);
            }
        };
        let mut server = Server::bind("127.0.0.1:0".parse().unwrap(), settings, echo).unwrap();
        let addr = server.local_addr().unwrap();

        let silent: Vec<_> = (0..20)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(16);
        let url = format!("ws://{addr}/");
        let mut client = Session::connect_url(&url, Settings::default(), Instant::now()).unwrap();
        client.register(poll.registry(), Token(1)).unwrap();

        let started = Instant::now();
        let (mut sent, mut echoed) = (0, 0);
        let mut silent_closed_at = None;
        while echoed < 1000 || silent_closed_at.is_none() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "sent {sent}, echoed {echoed}, {} sessions",
                server.len()
            );
            server.turn(Some(Duration::from_millis(1))).unwrap();
            if let Err(error) = timers_are_consistent(&server) {
                panic!("after {echoed} echoes: {error}");
            }
            poll.poll(&mut events, Some(Duration::from_millis(1)))
                .unwrap();
            let now = Instant::now();
            for event in events.iter() {
                client.on_event(event, now, |_, message| {
                    if message.is_data() {
                        echoed += 1;
                    }
                });
            }
            if client.is_open() && sent < echoed + 4 && sent < 1000 {
                client.send(Message::text("tick")).unwrap();
                sent += 1;
            }
            client.flush(now);
            client.update_interest(poll.registry(), Token(1)).unwrap();
            if silent_closed_at.is_none() && server.len() == 1 {
                silent_closed_at = Some(started.elapsed());
            }
        }
        // The silent connections were dropped at their handshake timeout, not before.
        let closed_at = silent_closed_at.unwrap();
        assert!(closed_at >= Duration::from_millis(300), "{closed_at:?}");
        assert_eq!(server.len(), 1);
        drop(silent);
    }
}
