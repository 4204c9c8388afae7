//! [`Server`]: many [`Session`]s on one `mio::Poll`.

use std::{collections::BTreeSet, fmt, io, net::SocketAddr, time::Duration, time::Instant};

use mio::{net::TcpListener, Events, Interest, Poll, Token};
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
/// at again, and the deadlines wait in an ordered timer set.
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
    /// Each session with the deadline it has in `timers`.
    sessions: Slab<(Session, Option<Instant>)>,
    /// Every session's deadline with its key, earliest first.
    timers: BTreeSet<(Instant, usize)>,
    /// The sessions this turn touched, to settle at its end.
    touched: Vec<usize>,
    settings: Settings,
    handler: H,
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
            timers: BTreeSet::new(),
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
        let (now, next) = (Instant::now(), self.timers.first().map(|timer| timer.0));
        let next = next.map(|at| at.saturating_duration_since(now));
        let wait = next.into_iter().chain(max_wait).min();
        match self.poll.poll(&mut self.events, wait) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => return Err(e),
            _ => {}
        }
        let now = Instant::now();
        let mut accept = false;
        for event in self.events.iter() {
            let key = event.token().0.wrapping_sub(1);
            accept |= event.token() == LISTENER;
            if let Some((session, _)) = self.sessions.get_mut(key) {
                session.on_event_with(event, now, &mut self.handler);
                self.touched.push(key);
            }
        }
        while accept {
            accept = self.accept(now);
        }
        // A timer that fired is out of the set (its session's next deadline goes in when
        // the session is settled).
        while let Some(&(at, key)) = self.timers.first().filter(|timer| timer.0 <= now) {
            self.timers.remove(&(at, key));
            self.sessions[key].0.on_timeout(now);
            self.touched.push(key);
        }
        self.settle();
        Ok(())
    }

    /// For each session touched this turn: drops it if it is done, else updates its
    /// registration and its place among the timers.
    fn settle(&mut self) {
        let registry = self.poll.registry();
        for key in self.touched.drain(..) {
            // A session can be touched twice in a turn (an event and a timer).
            let Some((session, scheduled)) = self.sessions.get_mut(key) else {
                continue;
            };
            let done =
                session.is_done() || session.update_interest(registry, Token(key + 1)).is_err();
            let deadline = session.deadline_std().filter(|_| !done);
            if let Some(at) = std::mem::replace(scheduled, deadline) {
                self.timers.remove(&(at, key));
            }
            if let Some(at) = deadline {
                self.timers.insert((at, key));
            }
            if done {
                let (mut session, _) = self.sessions.remove(key);
                let _ = session.deregister(registry);
                self.handler.on_close(&mut session);
            }
        }
    }

    /// Accepts one connection; `false` once there is none left.
    fn accept(&mut self, now: Instant) -> bool {
        // None left (or out of descriptors, a connection reset before it was
        // accepted ...: keep serving the others).
        let stream = match self.listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => return e.kind() == io::ErrorKind::Interrupted,
        };
        let _ = stream.set_nodelay(true);
        let entry = self.sessions.vacant_entry();
        let key = entry.key();
        let mut session = Session::server(stream, self.settings, now);
        let registered = session.register(self.poll.registry(), Token(key + 1));
        if registered.is_ok() {
            entry.insert((session, None));
            // Settled at the end of the turn: its handshake deadline goes in the timers.
            self.touched.push(key);
        }
        true
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

    /// Whether every live session is among the timers at the deadline it reports, and
    /// the timers hold nothing else.
    fn timers_are_consistent<H: Handler>(server: &Server<H>) -> Result<(), String> {
        for (key, (session, scheduled)) in server.sessions.iter() {
            if *scheduled != session.deadline_std() {
                return Err(format!("session {key}: scheduled {scheduled:?}"));
            }
            if scheduled.is_some_and(|at| !server.timers.contains(&(at, key))) {
                return Err(format!(
                    "session {key}: its deadline is not among the timers"
                ));
            }
        }
        let scheduled = server
            .sessions
            .iter()
            .filter(|(_, entry)| entry.1.is_some());
        if server.timers.len() != scheduled.count() {
            return Err(format!("{} timers", server.timers.len()));
        }
        Ok(())
    }

    /// A busy session moves its keepalive deadline with every message it receives; the
    /// timers keep one entry per session, and silent connections still get their
    /// handshake timeout from the timers while the busy one keeps being served.
    #[test]
    fn deadlines_stay_one_per_session_and_fire() {
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
