//! The chat room: who is in it, what was said, and one task per WebSocket.
//!
//! The protocol is JSON text messages. The page sends `{"type":"say","text":..}` (a chat
//! line, or a command: `/kick NAME [reason]`, `/who`, `/help`) and
//! `{"type":"ping","id":N}` (its heartbeat); the server sends [`Event`]s.
//!
//! Each connection's task owns its [`WebSocket`] and a bounded channel the room writes
//! into; the room never waits for one client. A client whose channel is full (it stopped
//! reading) is dropped from the room, and its task closes it with 1008.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sockeye_hyper::{CloseCode, DeflateConfig, Message, PreparedMessage, WebSocket};
use tokio::sync::{mpsc, Notify};

/// The longest chat line, in characters. The page's input stops there; a longer one
/// closes the connection with 1008 (policy violation) and says why.
pub const MAX_TEXT_CHARS: usize = 1000;
/// The longest WebSocket message the server reads (a larger one is closed with 1009 by
/// Sockeye itself, before it is buffered).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// The longest close reason (RFC 6455 §5.5: a control frame's payload is at most 125
/// bytes, two of them the code).
const MAX_REASON_BYTES: usize = 123;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 24;
/// Lines (and commands) one client may send at once; then [`LINES_PER_SECOND`]. Beyond
/// that a line is not sent, and the client is told.
pub const LINES_BURST: u32 = 10;
/// The sustained rate of lines one client may send.
pub const LINES_PER_SECOND: u32 = 2;
/// Chat lines kept for those who join (and for a page that reconnects).
const HISTORY: usize = 50;
/// Events queued for one client before the room gives up on it.
const QUEUE: usize = 256;
/// How long a closing connection may take before its task lets it go.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The HTTP version a WebSocket came over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Http {
    /// An HTTP/1.1 upgrade (`101 Switching Protocols`).
    #[serde(rename = "HTTP/1.1")]
    Http1,
    /// An HTTP/2 extended CONNECT (RFC 8441), one stream of a shared connection.
    #[serde(rename = "HTTP/2")]
    Http2,
}

impl Http {
    /// From the request's version.
    pub fn of(version: http::Version) -> Http {
        if version >= http::Version::HTTP_2 {
            Http::Http2
        } else {
            Http::Http1
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Http::Http1 => "HTTP/1.1",
            Http::Http2 => "HTTP/2",
        }
    }
}

/// What the server sends the page, one JSON text message each.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Event {
    /// The first message on every connection.
    Welcome {
        /// The name this connection speaks as (the one asked for, made unique).
        you: String,
        /// Changes when the server restarts (the page then forgets the sequence numbers
        /// it has seen).
        server: String,
        /// `HTTP/1.1` or `HTTP/2`: how this WebSocket reached the server.
        http: Http,
        /// Whether permessage-deflate was negotiated.
        compression: bool,
        /// Who is in the room, this connection included.
        users: Vec<User>,
        /// The last chat lines.
        history: Vec<Chat>,
        /// The longest chat line the server takes, in characters.
        max_text: usize,
    },
    /// A chat line.
    Chat(Chat),
    /// Someone came in.
    Join {
        /// Their name.
        name: String,
        /// How their WebSocket came.
        http: Http,
    },
    /// Someone left.
    Leave {
        /// Their name.
        name: String,
        /// Why, in a few words.
        why: String,
    },
    /// A line from the server to this connection only (answers to commands).
    Info {
        /// The text.
        text: String,
    },
    /// The answer to a heartbeat.
    Pong {
        /// The ping's id.
        id: u64,
    },
}

/// One chat line.
#[derive(Clone, Debug, Serialize)]
pub struct Chat {
    /// Increasing within one run of the server.
    pub seq: u64,
    /// Who said it.
    pub from: String,
    /// What they said.
    pub text: String,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
}

/// What the page sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Request {
    Say { text: String },
    Ping { id: u64 },
}

/// What the room asks of a connection's task.
#[derive(Debug)]
enum Out {
    /// A room event, framed (and compressed) once for every member.
    Send(PreparedMessage),
    Close(CloseCode, String),
}

/// Counts of WebSockets per HTTP version, for `/stats`.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    /// Accepted since the server started.
    pub accepted: u64,
    /// Open now.
    pub open: u64,
}

/// The room's numbers, served as JSON at `/stats`.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// WebSockets that came over HTTP/1.1.
    pub http1: Counts,
    /// WebSockets that came over HTTP/2 (RFC 8441).
    pub http2: Counts,
    /// Of those accepted, how many negotiated permessage-deflate.
    pub compressed: u64,
    /// Chat lines said since the server started.
    pub messages: u64,
    /// Who is in the room, and how each came.
    pub users: Vec<User>,
    /// Seconds since the server started.
    pub uptime_secs: u64,
}

/// One client, as `/stats` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    /// Its name.
    pub name: String,
    /// How its WebSocket came.
    pub http: Http,
    /// Whether it compresses.
    pub compression: bool,
}

struct Client {
    name: String,
    http: Http,
    compression: bool,
    tx: mpsc::Sender<Out>,
}

#[derive(Default)]
struct State {
    clients: HashMap<u64, Client>,
    history: VecDeque<Chat>,
    next_id: u64,
    next_seq: u64,
    http1: Counts,
    http2: Counts,
    compressed: u64,
    shutting_down: bool,
}

/// The room. Cheap to clone; every clone is the same room.
#[derive(Clone)]
pub struct Room {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    server: String,
    started: Instant,
    /// Connection tasks still running (open or closing).
    tasks: AtomicU64,
    idle: Notify,
}

impl Default for Room {
    fn default() -> Self {
        Room::new()
    }
}

impl Room {
    /// An empty room.
    pub fn new() -> Room {
        let mut seed = [0u8; 8];
        let _ = getrandom::getrandom(&mut seed);
        Room {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                server: format!("{:016x}", u64::from_le_bytes(seed)),
                started: Instant::now(),
                tasks: AtomicU64::new(0),
                idle: Notify::new(),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind: carry on with it.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The numbers for `/stats`.
    pub fn stats(&self) -> Stats {
        let state = self.state();
        let users = users(&state);
        Stats {
            http1: state.http1,
            http2: state.http2,
            compressed: state.compressed,
            messages: state.next_seq,
            users,
            uptime_secs: self.inner.started.elapsed().as_secs(),
        }
    }

    /// Whether [`shutdown`](Self::shutdown) was called (new WebSockets are then refused).
    pub fn is_shutting_down(&self) -> bool {
        self.state().shutting_down
    }

    /// Closes every connection with 1001 (going away) and `reason`, and waits up to
    /// `limit` for their tasks to finish. Returns how many were still running.
    pub async fn shutdown(&self, reason: &str, limit: Duration) -> u64 {
        let clients: Vec<Client> = {
            let mut state = self.state();
            state.shutting_down = true;
            state.clients.drain().map(|(_, c)| c).collect()
        };
        for client in clients {
            let _ = client
                .tx
                .try_send(Out::Close(CloseCode::GOING_AWAY, reason.to_owned()));
        }
        let wait = async {
            loop {
                let idle = self.inner.idle.notified();
                if self.inner.tasks.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
        self.inner.tasks.load(Ordering::SeqCst)
    }

    /// Runs one client's connection until it ends: `name` is the name asked for (made
    /// valid and unique), `http` how the WebSocket came, `peer` for the log.
    pub async fn run(&self, ws: WebSocket, name: Option<String>, http: Http, peer: String) {
        self.inner.tasks.fetch_add(1, Ordering::SeqCst);
        let _done = TaskDone(self);
        self.session(ws, name, http, peer).await;
    }

    async fn session(&self, mut ws: WebSocket, name: Option<String>, http: Http, peer: String) {
        let compression = ws.compression().is_some();
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let Some((id, name, welcome)) = self.join(name, http, compression, tx) else {
            let _ = ws
                .close(CloseCode::GOING_AWAY, "the server is shutting down")
                .await;
            drain(&mut ws).await;
            return;
        };
        log(format_args!(
            "ws #{id} {name}: open over {}{} from {peer}",
            http.as_str(),
            if compression {
                ", permessage-deflate"
            } else {
                ""
            }
        ));
        // Why the room (not the peer) ended it, for the others.
        let mut why = None;
        if ws.feed(Message::text(welcome)).await.is_ok() {
            why = self.serve(&mut ws, id, &name, &mut rx).await;
        }
        if let Some((code, reason)) = &why {
            let _ = ws.close(*code, reason).await;
        }
        drain(&mut ws).await;
        let outcome = ws.outcome();
        let ended = match (&why, &outcome) {
            (Some((code, reason)), _) => format!("closed by the server ({} {reason})", code.0),
            (None, Some(outcome)) => format!("left ({})", close_words(outcome)),
            (None, None) => "left".to_owned(),
        };
        self.leave(id, &name, http, &ended);
        match outcome {
            Some(outcome) => log(format_args!("ws #{id} {name}: ended: {outcome}")),
            None => log(format_args!("ws #{id} {name}: ended")),
        }
    }

    /// Reads the client and writes what the room sends it, until one of them ends.
    /// Returns the close the server chose, if it chose one.
    async fn serve(
        &self,
        ws: &mut WebSocket,
        id: u64,
        name: &str,
        rx: &mut mpsc::Receiver<Out>,
    ) -> Option<(CloseCode, String)> {
        let mut bucket = Bucket::new(Instant::now());
        loop {
            // Both branches are cancel-safe: `recv` keeps its state in the WebSocket.
            tokio::select! {
                message = ws.recv() => match message {
                    Some(Message::Text(text)) => {
                        if let Some(close) = self.handle(ws, id, name, &text, &mut bucket).await {
                            return Some(close);
                        }
                    }
                    Some(Message::Binary(_)) => {
                        return Some((CloseCode::UNSUPPORTED, "binary messages are not part of this chat".to_owned()));
                    }
                    // The peer's Close: our reply is on its way; wait for the end.
                    Some(Message::Close(_)) => return None,
                    Some(_) => {}
                    None => return None,
                },
                out = rx.recv() => match out {
                    Some(Out::Send(json)) => {
                        if ws.try_feed_prepared(&json).is_err() {
                            return Some((CloseCode::POLICY, "too slow: the send queue is full".to_owned()));
                        }
                    }
                    Some(Out::Close(code, reason)) => return Some((code, reason)),
                    // The room dropped this client: its queue overflowed.
                    None => return Some((CloseCode::POLICY, "too slow: fell behind the room".to_owned())),
                },
            }
        }
    }

    /// One text message from the client. Returns a close to send, if it broke the rules.
    async fn handle(
        &self,
        ws: &mut WebSocket,
        id: u64,
        name: &str,
        text: &str,
        bucket: &mut Bucket,
    ) -> Option<(CloseCode, String)> {
        let request: Request = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(_) => {
                return Some((
                    CloseCode::POLICY,
                    "not a message of this chat (JSON expected)".to_owned(),
                ))
            }
        };
        let reply = match request {
            Request::Ping { id } => Event::Pong { id },
            Request::Say { text } => {
                let chars = text.chars().count();
                if chars > MAX_TEXT_CHARS {
                    return Some((
                        CloseCode::POLICY,
                        format!(
                            "message too long: {chars} characters, the limit is {MAX_TEXT_CHARS}"
                        ),
                    ));
                }
                let text = text.trim();
                if text.is_empty() {
                    return None;
                }
                if !bucket.take(Instant::now()) {
                    let text = format!(
                        "slow down: at most {LINES_PER_SECOND} lines a second (bursts of \
                         {LINES_BURST}); this one was not sent"
                    );
                    Event::Info { text }
                } else {
                    match text.strip_prefix('/') {
                        Some(command) => Event::Info {
                            text: self.command(id, name, command),
                        },
                        None => {
                            self.say(name, text);
                            return None;
                        }
                    }
                }
            }
        };
        let json = serde_json::to_string(&reply).expect("events serialize");
        if ws.feed(Message::text(json)).await.is_err() {
            return None; // the connection is over; the next recv says so
        }
        None
    }

    fn command(&self, id: u64, name: &str, command: &str) -> String {
        let (verb, rest) = command
            .split_once(char::is_whitespace)
            .map_or((command, ""), |(v, r)| (v, r.trim()));
        match verb {
            "help" => "commands: /who (who is here), /kick NAME [reason] (closes NAME's \
                       connection with 1008 and the reason), /help"
                .to_owned(),
            "who" => {
                let mut names: Vec<String> = self
                    .state()
                    .clients
                    .values()
                    .map(|c| format!("{} ({})", c.name, c.http.as_str()))
                    .collect();
                names.sort();
                format!("here: {}", names.join(", "))
            }
            "kick" => {
                let (target, reason) = rest
                    .split_once(char::is_whitespace)
                    .map_or((rest, ""), |(t, r)| (t, r.trim()));
                if target.is_empty() {
                    return "usage: /kick NAME [reason]".to_owned();
                }
                let mut reason = if reason.is_empty() {
                    format!("kicked by {name}")
                } else {
                    format!("kicked by {name}: {reason}")
                };
                truncate(&mut reason, MAX_REASON_BYTES);
                let mut state = self.state();
                let found = state
                    .clients
                    .iter()
                    .find(|(_, c)| c.name == target)
                    .map(|(&cid, _)| cid);
                match found.and_then(|cid| state.clients.remove(&cid).map(|c| (cid, c))) {
                    Some((cid, client)) => {
                        let _ = client.tx.try_send(Out::Close(CloseCode::POLICY, reason));
                        if cid == id {
                            "you kicked yourself".to_owned()
                        } else {
                            format!("{target} was kicked")
                        }
                    }
                    None => format!("nobody here is called {target:?}"),
                }
            }
            _ => format!("unknown command /{verb}: try /help"),
        }
    }

    /// Adds a client. `None` while shutting down.
    fn join(
        &self,
        name: Option<String>,
        http: Http,
        compression: bool,
        tx: mpsc::Sender<Out>,
    ) -> Option<(u64, String, String)> {
        let mut state = self.state();
        if state.shutting_down {
            return None;
        }
        state.next_id += 1;
        let id = state.next_id;
        let name = unique_name(&state, name.as_deref().and_then(clean_name), id);
        let counts = match http {
            Http::Http1 => &mut state.http1,
            Http::Http2 => &mut state.http2,
        };
        counts.accepted += 1;
        counts.open += 1;
        if compression {
            state.compressed += 1;
        }
        let joined = Event::Join {
            name: name.clone(),
            http,
        };
        broadcast(&mut state, &joined);
        state.clients.insert(
            id,
            Client {
                name: name.clone(),
                http,
                compression,
                tx,
            },
        );
        let users = users(&state);
        let welcome = Event::Welcome {
            you: name.clone(),
            server: self.inner.server.clone(),
            http,
            compression,
            users,
            history: state.history.iter().cloned().collect(),
            max_text: MAX_TEXT_CHARS,
        };
        let welcome = serde_json::to_string(&welcome).expect("events serialize");
        Some((id, name, welcome))
    }

    fn leave(&self, id: u64, name: &str, http: Http, why: &str) {
        let mut state = self.state();
        // Gone already if it was kicked, fell behind or the server is shutting down.
        state.clients.remove(&id);
        let counts = match http {
            Http::Http1 => &mut state.http1,
            Http::Http2 => &mut state.http2,
        };
        counts.open -= 1;
        let left = Event::Leave {
            name: name.to_owned(),
            why: why.to_owned(),
        };
        broadcast(&mut state, &left);
    }

    fn say(&self, from: &str, text: &str) {
        let mut state = self.state();
        state.next_seq += 1;
        let chat = Chat {
            seq: state.next_seq,
            from: from.to_owned(),
            text: text.to_owned(),
            at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        };
        if state.history.len() == HISTORY {
            state.history.pop_front();
        }
        state.history.push_back(chat.clone());
        broadcast(&mut state, &Event::Chat(chat));
    }
}

/// Who is in the room, by name.
fn users(state: &State) -> Vec<User> {
    let mut users: Vec<User> = state
        .clients
        .values()
        .map(|c| User {
            name: c.name.clone(),
            http: c.http,
            compression: c.compression,
        })
        .collect();
    users.sort_by(|a, b| a.name.cmp(&b.name));
    users
}

/// Sends `event` to every client; drops those whose queue is full (their task then
/// closes them).
fn broadcast(state: &mut State, event: &Event) {
    let json = serde_json::to_string(event).expect("events serialize");
    // One frame for the whole room, queued on each connection by reference (and
    // compressed once for those that agreed to permessage-deflate).
    let prepared = PreparedMessage::text(json).with_compression(&DeflateConfig::DEFAULT);
    state
        .clients
        .retain(|_, client| client.tx.try_send(Out::Send(prepared.clone())).is_ok());
}

/// A token bucket: [`LINES_BURST`] lines at once, then [`LINES_PER_SECOND`].
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            tokens: LINES_BURST as f64,
            at: now,
        }
    }

    /// Takes a token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * LINES_PER_SECOND as f64;
        self.tokens = (self.tokens + refill).min(LINES_BURST as f64);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Marks a connection task finished (also if it panicked).
struct TaskDone<'a>(&'a Room);

impl Drop for TaskDone<'_> {
    fn drop(&mut self) {
        self.0.inner.tasks.fetch_sub(1, Ordering::SeqCst);
        self.0.inner.idle.notify_waiters();
    }
}

/// Reads until the connection is over (the close handshake, bounded by Sockeye's close
/// timeout, and by [`CLOSE_WAIT`] here).
async fn drain(ws: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async { while ws.recv().await.is_some() {} }).await;
}

/// A name as asked for, if usable: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no
/// control characters.
fn clean_name(name: &str) -> Option<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && !name.chars().any(|c| c.is_control() || c.is_whitespace());
    ok.then(|| name.to_owned())
}

fn unique_name(state: &State, asked: Option<String>, id: u64) -> String {
    let taken = |n: &str| state.clients.values().any(|c| c.name == n);
    let base = asked.unwrap_or_else(|| format!("guest-{id}"));
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken(n))
        .expect("some suffix is free")
}

fn truncate(text: &mut String, max_bytes: usize) {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// How a connection ended, in the few words the others see.
fn close_words(outcome: &sockeye_hyper::Outcome) -> String {
    match outcome {
        sockeye_hyper::Outcome::Clean { .. } => format!("closed {}", outcome.code().0),
        _ => format!("{outcome}"),
    }
}

/// A log line on stderr, with the time since the Unix epoch.
pub fn log(line: std::fmt::Arguments<'_>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    eprintln!(
        "{:02}:{:02}:{:02}.{:03} {line}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis()
    );
}
