//! The scenario suite over `sockeye-mio`: each server and client runs its own
//! `mio::Poll` loop on its own thread, driving [`Session`]s by readiness and deadlines,
//! with a small interpreter that runs the [`Script`] as events arrive (messages are
//! handled as they are parsed, in the session's handler, like `recv` in the async
//! adapters).

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use ::mio::net::TcpListener;
use ::mio::{Events, Interest, Poll, Token, Waker};
use sockeye_mio::{Error, Session};

use crate::suite::*;

#[derive(Clone, Copy, Debug)]
pub struct Mio;

fn failure(error: Option<&Error>) -> HandshakeFailure {
    HandshakeFailure {
        status: error.and_then(Error::status),
        message: error.map_or_else(|| "no error".to_owned(), ToString::to_string),
    }
}

/// Runs a [`Script`] on a session, step by step, as events allow.
struct Runner {
    script: Script,
    step: usize,
    /// The current Send / Fragments step queued its frames and waits for the flush.
    queued: bool,
    sleep_until: Option<Instant>,
    /// Readiness seen while sleeping (the connection is not driven meanwhile).
    deferred: (bool, bool),
    /// Messages received but not yet taken by a step.
    inbox: VecDeque<Message>,
    run: Run,
    limit: Instant,
}

impl Runner {
    fn new(script: Script, now: Instant) -> Self {
        Runner {
            script,
            step: 0,
            queued: false,
            sleep_until: None,
            deferred: (false, false),
            inbox: VecDeque::new(),
            run: Run::default(),
            limit: now + RUN_LIMIT,
        }
    }

    fn sleeping(&self, now: Instant) -> bool {
        self.sleep_until.is_some_and(|until| now < until)
    }

    /// A message was parsed: the script sees it now (before the next one is parsed).
    fn on_message(&mut self, session: &mut Session, message: Message, now: Instant) {
        self.inbox.push_back(message);
        self.run.max_pending = self.run.max_pending.max(session.pending_bytes());
        self.advance(session, now);
        self.run.max_pending = self.run.max_pending.max(session.pending_bytes());
    }

    /// Runs steps until one has to wait.
    fn advance(&mut self, session: &mut Session, now: Instant) {
        let over = session.is_done() || session.outcome().is_some();
        if !over && !session.is_open() {
            // Still in the opening handshake.
            return;
        }
        while let Some(step) = self.script.steps.get(self.step).cloned() {
            match step {
                Step::Send(message) => {
                    if !self.queued {
                        if let Err(error) = session.send(message) {
                            self.run.errors.push(format!("send: {error}"));
                        }
                        self.queued = true;
                    }
                    if session.pending_bytes() > 0 && !over {
                        return;
                    }
                    self.queued = false;
                }
                Step::Feed(message) => {
                    if !session.is_writable() && !over {
                        return;
                    }
                    match session.send(message) {
                        Ok(()) => self.script.note_fed(),
                        Err(error) => self.run.errors.push(format!("feed: {error}")),
                    }
                }
                Step::Fragments(kind, parts) => {
                    if !self.queued {
                        for (i, part) in parts.iter().enumerate() {
                            let fin = i + 1 == parts.len();
                            if let Err(error) = session.send_fragment(kind, fin, part.clone()) {
                                self.run.errors.push(format!("fragment: {error}"));
                            }
                        }
                        self.queued = true;
                    }
                    if session.pending_bytes() > 0 && !over {
                        return;
                    }
                    self.queued = false;
                }
                Step::Recv => match self.inbox.pop_front() {
                    Some(message) => self.run.received.push(message),
                    // The connection is over: the script stops.
                    None if over => self.step = self.script.steps.len() - 1,
                    None => return,
                },
                Step::Echo => {
                    while let Some(message) = self.inbox.pop_front() {
                        self.run.received.push(message.clone());
                        if message.is_data() {
                            if let Err(error) = session.send(message) {
                                self.run.errors.push(format!("echo: {error}"));
                            }
                        }
                    }
                    if !over {
                        return;
                    }
                }
                Step::Close(code, reason) => {
                    if let Err(error) = session.close(code, &reason, now) {
                        self.run.errors.push(format!("close: {error}"));
                    }
                }
                Step::TryFeedUntilFull(message) => {
                    // mio's sessions never wait: `is_writable` is the "would block".
                    let mut queued = 0;
                    while queued < 10_000 {
                        if !session.is_writable() {
                            self.run.queued_before_full = Some(queued);
                            break;
                        }
                        match session.send(message.clone()) {
                            Ok(()) => queued += 1,
                            Err(error) => {
                                self.run.errors.push(format!("try_feed: {error}"));
                                break;
                            }
                        }
                    }
                    self.run.max_pending = self.run.max_pending.max(session.pending_bytes());
                }
                Step::Sleep(duration) => match self.sleep_until {
                    None => {
                        self.sleep_until = Some(now + duration);
                        return;
                    }
                    Some(until) if now < until => return,
                    Some(_) => self.sleep_until = None,
                },
            }
            self.step += 1;
        }
        // After the script: receive until the end.
        self.run.received.extend(self.inbox.drain(..));
    }

    /// Handles readiness (deferred while sleeping).
    fn on_event(&mut self, session: &mut Session, readable: bool, writable: bool, now: Instant) {
        if self.sleeping(now) {
            self.deferred.0 |= readable;
            self.deferred.1 |= writable;
            return;
        }
        let mut handle = |session: &mut Session, message: Message| {
            self.on_message(session, message, now);
        };
        if readable {
            session.on_readable(now, &mut handle);
        }
        if writable {
            session.on_writable(now, &mut handle);
        }
    }

    /// After the events of a turn: deferred readiness, timers, the script, the flush.
    fn tick(&mut self, session: &mut Session, now: Instant) {
        if self.sleeping(now) {
            return;
        }
        let (readable, writable) = std::mem::take(&mut self.deferred);
        if readable || writable {
            self.on_event(session, readable, writable, now);
        }
        if session
            .deadline_std()
            .is_some_and(|deadline| deadline <= now)
        {
            session.on_timeout(now);
        }
        self.advance(session, now);
        session.flush(now);
    }

    /// The next time this session needs a turn without an event.
    fn deadline(&self, session: &Session) -> Option<Instant> {
        [self.sleep_until, session.deadline_std(), Some(self.limit)]
            .into_iter()
            .flatten()
            .min()
    }

    /// The result once the session is done (or the run limit passed).
    fn finish(mut self, session: &Session, now: Instant) -> Option<Result<Run, HandshakeFailure>> {
        if now >= self.limit && !session.is_done() {
            self.run.errors.push("the run limit passed".to_owned());
        } else if !session.is_done() {
            return None;
        }
        // What this adapter carries from the verdict: the request path.
        self.run.request = session.path().map(String::from);
        match session.outcome() {
            Some(outcome) => {
                self.run.outcome = Some(outcome.clone());
                Some(Ok(self.run))
            }
            None if now >= self.limit => Some(Ok(self.run)),
            None => Some(Err(failure(session.error()))),
        }
    }
}

fn wait_for(deadline: Option<Instant>, now: Instant) -> Duration {
    deadline.map_or(Duration::from_secs(1), |d| {
        d.saturating_duration_since(now).min(Duration::from_secs(1))
    })
}

const LISTENER: Token = Token(0);
const STOP: Token = Token(1);

impl Adapter for Mio {
    fn start_deciding_server(
        &self,
        settings: Settings,
        decide: Option<Decide>,
        script: Script,
    ) -> Server {
        let (addr_tx, addr_rx) = mpsc::channel();
        let (runs_tx, runs_rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), STOP).unwrap());
        let stopping = stop.clone();
        let thread = thread::spawn(move || {
            let mut listener = TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            poll.registry()
                .register(&mut listener, LISTENER, Interest::READABLE)
                .unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let mut sessions: Vec<Option<(Session, Runner)>> = Vec::new();
            let mut events = Events::with_capacity(256);
            while !stopping.load(Ordering::SeqCst) {
                let now = Instant::now();
                let deadline = sessions
                    .iter()
                    .flatten()
                    .filter_map(|(session, runner)| runner.deadline(session))
                    .min();
                match poll.poll(&mut events, Some(wait_for(deadline, now))) {
                    Ok(()) => {}
                    Err(error) if error.kind() == ErrorKind::Interrupted => {}
                    Err(error) => panic!("poll: {error}"),
                }
                let now = Instant::now();
                for event in events.iter() {
                    match event.token() {
                        STOP => {}
                        LISTENER => loop {
                            let stream = match listener.accept() {
                                Ok((stream, _)) => stream,
                                Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                                Err(error) => panic!("accept: {error}"),
                            };
                            stream.set_nodelay(true).unwrap();
                            let key = sessions.len();
                            let mut session = match decide {
                                None => Session::server(stream, settings, now),
                                // mio's verdicts carry no data: the session keeps the path.
                                Some(decide) => {
                                    Session::server_with(stream, settings, now, move |head| {
                                        match decide(head) {
                                            Verdict::Accept(accept) => accept.with_data(()).into(),
                                            Verdict::Reject(reject) => reject.into(),
                                        }
                                    })
                                }
                            };
                            session.register(poll.registry(), Token(key + 2)).unwrap();
                            sessions.push(Some((session, Runner::new(script.clone(), now))));
                        },
                        Token(token) => {
                            if let Some(Some((session, runner))) = sessions.get_mut(token - 2) {
                                let readable = event.is_readable()
                                    || event.is_read_closed()
                                    || event.is_error();
                                let writable = event.is_writable() || event.is_error();
                                runner.on_event(session, readable, writable, now);
                            }
                        }
                    }
                }
                for (key, slot) in sessions.iter_mut().enumerate() {
                    let Some((session, runner)) = slot else {
                        continue;
                    };
                    runner.tick(session, now);
                    let _ = session.update_interest(poll.registry(), Token(key + 2));
                    if session.is_done() || now >= runner.limit {
                        let (mut session, runner) = slot.take().expect("present");
                        let _ = session.deregister(poll.registry());
                        if let Some(result) = runner.finish(&session, now) {
                            let _ = runs_tx.send(result);
                        }
                    }
                }
            }
        });
        let addr = addr_rx.recv().expect("the server started");
        Server::new(addr, runs_rx, move || {
            stop.store(true, Ordering::SeqCst);
            let _ = waker.wake();
            thread.join().expect("the server thread ended cleanly");
        })
    }

    fn run_client(&self, url: &str, settings: Settings, script: Script) -> ClientResult {
        let mut poll = Poll::new().unwrap();
        let mut events = Events::with_capacity(64);
        let now = Instant::now();
        let mut session = match Session::connect_url(url, settings, now) {
            Ok(session) => session,
            Err(error) => return Err(failure(Some(&error))),
        };
        session.register(poll.registry(), Token(0)).unwrap();
        let mut runner = Runner::new(script, now);
        loop {
            let now = Instant::now();
            if session.is_done() || now >= runner.limit {
                return runner
                    .finish(&session, now)
                    .expect("done or past the limit");
            }
            match poll.poll(&mut events, Some(wait_for(runner.deadline(&session), now))) {
                Ok(()) => {}
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => panic!("poll: {error}"),
            }
            let now = Instant::now();
            for event in events.iter() {
                let readable = event.is_readable() || event.is_read_closed() || event.is_error();
                let writable = event.is_writable() || event.is_error();
                runner.on_event(&mut session, readable, writable, now);
            }
            runner.tick(&mut session, now);
            let _ = session.update_interest(poll.registry(), Token(0));
        }
    }
}

crate::scenarios!(Mio);
