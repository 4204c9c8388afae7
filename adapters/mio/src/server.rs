//! [`Server`]: many [`Session`]s on one `mio::Poll`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use sockeye_proto::driver::{Message, Settings, Verdict};
use sockeye_proto::handshake::UpgradeRequest;

use crate::Session;

/// The listener's token; session `key` has token `key + 1`.
const LISTENER: Token = Token(0);

/// What a [`Server`] calls. Only [`on_message`](Handler::on_message) is required, and any
/// `FnMut(&mut Session, Message)` is a handler.
pub trait Handler {
    /// Decides a valid upgrade request (path, headers, offered subprotocols). Default:
    /// accept without a subprotocol. Invalid requests never get here: they are answered
    /// with their 400 / 426 / 431.
    fn on_request(&mut self, request: &UpgradeRequest<'_, '_>) -> Verdict {
        let _ = request;
        Verdict::accept()
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
/// ```no_run
/// use sockeye_mio::{Handler, Message, Server, Session, Settings, UpgradeRequest, Verdict};
///
/// struct Chat;
///
/// impl Handler for Chat {
///     fn on_request(&mut self, request: &UpgradeRequest<'_, '_>) -> Verdict {
///         match request.path() {
///             "/chat" => Verdict::accept(),
///             _ => Verdict::reject(404, "Not Found"),
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
    sessions: Slab<Session>,
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
            .sessions
            .iter()
            .filter_map(|(_, session)| session.next_timeout(now))
            .min();
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
            let Some(session) = self.sessions.get_mut(key) else {
                continue;
            };
            session.on_event_with(event, now, &mut self.handler);
            session.flush(now);
        }
        if accept {
            self.accept(now)?;
        }
        // Timers, registrations, and the end of finished sessions.
        let registry = self.poll.registry();
        let mut finished = Vec::new();
        for (key, session) in self.sessions.iter_mut() {
            if session
                .deadline_std()
                .is_some_and(|deadline| deadline <= now)
            {
                session.on_timeout(now);
            }
            if session.is_done() || session.update_interest(registry, Token(key + 1)).is_err() {
                finished.push(key);
            }
        }
        for key in finished {
            let mut session = self.sessions.remove(key);
            let _ = session.deregister(registry);
            self.handler.on_close(&mut session);
        }
        Ok(())
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
            let token = Token(entry.key() + 1);
            let mut session = Session::server(stream, self.settings, now);
            if session.register(self.poll.registry(), token).is_ok() {
                entry.insert(session);
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
