//! Owned event transcripts, and the [`Recorder`] that builds them from core events.

use sockeye_proto::{Boundary, CloseCode, Closed, DataKind, Event, ProtocolError};

/// One thing a side saw, owned. Data arrives as whole messages, whatever the chunking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A whole text message.
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A Ping with its payload.
    Ping(Vec<u8>),
    /// A Pong with its payload.
    Pong(Vec<u8>),
    /// The peer's Close frame.
    Close {
        /// The code (`None` for an empty Close payload).
        code: Option<CloseCode>,
        /// The reason.
        reason: String,
    },
    /// The terminal report. A protocol error (the `Err` of `handle_input`) is recorded as
    /// `Closed::Failed(error)`, as [`Connection::outcome`](sockeye_proto::Connection::outcome)
    /// reports it.
    Closed(Closed),
}

impl Entry {
    /// A text message entry.
    pub fn text(text: &str) -> Entry {
        Entry::Text(text.to_owned())
    }

    /// A binary message entry.
    pub fn binary(bytes: &[u8]) -> Entry {
        Entry::Binary(bytes.to_vec())
    }

    /// A Ping entry.
    pub fn ping(payload: &[u8]) -> Entry {
        Entry::Ping(payload.to_vec())
    }

    /// A Pong entry.
    pub fn pong(payload: &[u8]) -> Entry {
        Entry::Pong(payload.to_vec())
    }

    /// A Close entry with a code.
    pub fn close(code: CloseCode, reason: &str) -> Entry {
        Entry::Close {
            code: Some(code),
            reason: reason.to_owned(),
        }
    }

    /// Whether this is a data message.
    pub fn is_message(&self) -> bool {
        matches!(self, Entry::Text(_) | Entry::Binary(_))
    }

    /// A one-line summary that keeps large payloads readable in assertion failures.
    pub fn summary(&self) -> String {
        fn bytes(b: &[u8]) -> String {
            if b.len() <= 32 {
                format!("{b:02x?}")
            } else {
                format!("{} bytes {:02x?}..", b.len(), &b[..16])
            }
        }
        match self {
            Entry::Text(t) if t.len() <= 64 => format!("Text({t:?})"),
            Entry::Text(t) => {
                let cut = (0..=32).rev().find(|&i| t.is_char_boundary(i)).unwrap_or(0);
                format!("Text({} bytes {:?}..)", t.len(), &t[..cut])
            }
            Entry::Binary(b) => format!("Binary({})", bytes(b)),
            Entry::Ping(b) => format!("Ping({})", bytes(b)),
            Entry::Pong(b) => format!("Pong({})", bytes(b)),
            Entry::Close { code, reason } => format!("Close({code:?}, {reason:?})"),
            Entry::Closed(closed) => format!("Closed({closed:?})"),
        }
    }
}

/// Everything one side saw, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    entries: Vec<Entry>,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Transcript::default()
    }

    /// A transcript of these entries (an expected transcript in a test).
    pub fn of(entries: impl IntoIterator<Item = Entry>) -> Self {
        Transcript {
            entries: entries.into_iter().collect(),
        }
    }

    /// Appends an entry.
    pub fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    /// All entries in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The data messages only.
    pub fn messages(&self) -> Vec<Entry> {
        self.entries
            .iter()
            .filter(|e| e.is_message())
            .cloned()
            .collect()
    }

    /// The peer's Close, if one arrived.
    pub fn close(&self) -> Option<(Option<CloseCode>, &str)> {
        self.entries.iter().find_map(|e| match e {
            Entry::Close { code, reason } => Some((*code, reason.as_str())),
            _ => None,
        })
    }

    /// The terminal report, if the connection ended.
    pub fn closed(&self) -> Option<Closed> {
        self.entries.iter().find_map(|e| match e {
            Entry::Closed(closed) => Some(*closed),
            _ => None,
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A readable multi-line rendering (payloads abbreviated).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (i, entry) in self.entries.iter().enumerate() {
            out.push_str(&format!("{i:3}: {}\n", entry.summary()));
        }
        out
    }
}

/// Counts of what a side saw, kept without allocating (for the zero-allocation test and
/// for long runs where whole transcripts would be too big).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Data events (chunks) seen.
    pub chunks: u64,
    /// Whole messages.
    pub messages: u64,
    /// Bytes of message data.
    pub message_bytes: u64,
    /// Pings.
    pub pings: u64,
    /// Pongs.
    pub pongs: u64,
    /// Close frames.
    pub closes: u64,
    /// An FNV-1a hash over every message's kind, bytes and length: equal tallies mean
    /// (with overwhelming probability) equal message streams, whatever the chunking.
    pub hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Tally {
    fn fold(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash = (self.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
}

/// Builds a [`Transcript`] (or only a [`Tally`]) from core events, checking as it goes:
///
/// - nothing is reported after the terminal report, and it comes at most once;
/// - after the peer's Close only the terminal report may follow (nothing is processed
///   after a Close), and at most one Close arrives;
/// - every chunk of a message has the message's kind; text chunks are `&str`, so valid;
/// - a message is never larger than `max_message` (when set).
///
/// A violated invariant panics with a description.
#[derive(Clone, Debug)]
pub struct Recorder {
    keep: bool,
    transcript: Transcript,
    tally: Tally,
    partial_kind: Option<DataKind>,
    partial_text: String,
    partial_binary: Vec<u8>,
    partial_len: u64,
    close_seen: bool,
    terminal: Option<Closed>,
    max_message: Option<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    /// A recorder that keeps the whole transcript.
    pub fn new() -> Self {
        Recorder {
            keep: true,
            transcript: Transcript::new(),
            tally: Tally {
                hash: FNV_OFFSET,
                ..Tally::default()
            },
            partial_kind: None,
            partial_text: String::new(),
            partial_binary: Vec::new(),
            partial_len: 0,
            close_seen: false,
            terminal: None,
            max_message: None,
        }
    }

    /// A recorder that only counts (and hashes), never allocating.
    pub fn counting() -> Self {
        Recorder {
            keep: false,
            ..Recorder::new()
        }
    }

    /// Also asserts that no message grows beyond `bytes`.
    pub fn with_max_message(mut self, bytes: u64) -> Self {
        self.max_message = Some(bytes);
        self
    }

    /// Records one event from `handle_input`, `handle_eof` or `handle_timeout`.
    pub fn event(&mut self, event: &Event<'_>) {
        assert!(
            self.terminal.is_none(),
            "event after the terminal report {:?}: {event:?}",
            self.terminal
        );
        match *event {
            Event::Text { text, end } => self.chunk(DataKind::Text, text.as_bytes(), end),
            Event::Binary { bytes, end } => self.chunk(DataKind::Binary, bytes, end),
            // These endpoints never enable compression: the core must not produce it.
            Event::Compressed { .. } => panic!("a compressed chunk without compression: {event:?}"),
            Event::Ping(payload) => {
                self.not_after_close(event);
                self.tally.pings += 1;
                if self.keep {
                    self.transcript.push(Entry::Ping(payload.to_vec()));
                }
            }
            Event::Pong(payload) => {
                self.not_after_close(event);
                self.tally.pongs += 1;
                if self.keep {
                    self.transcript.push(Entry::Pong(payload.to_vec()));
                }
            }
            Event::Close(frame) => {
                self.not_after_close(event);
                self.close_seen = true;
                self.tally.closes += 1;
                if self.keep {
                    self.transcript.push(Entry::Close {
                        code: frame.code,
                        reason: frame.reason.to_owned(),
                    });
                }
            }
            Event::Closed(closed) => self.terminal(closed),
        }
    }

    /// Records the `Err` of `handle_input`: the connection failed, and this is its
    /// terminal report.
    pub fn error(&mut self, error: ProtocolError) {
        assert!(
            self.terminal.is_none(),
            "error after the terminal report {:?}: {error:?}",
            self.terminal
        );
        self.terminal(Closed::Failed(error));
    }

    fn terminal(&mut self, closed: Closed) {
        self.terminal = Some(closed);
        // A message cut short by the end is not a message.
        self.partial_kind = None;
        self.partial_len = 0;
        if self.keep {
            self.partial_text.clear();
            self.partial_binary.clear();
            self.transcript.push(Entry::Closed(closed));
        }
    }

    fn not_after_close(&self, event: &Event<'_>) {
        assert!(!self.close_seen, "event after the peer's Close: {event:?}");
    }

    fn chunk(&mut self, kind: DataKind, bytes: &[u8], end: Boundary) {
        assert!(
            !self.close_seen,
            "data after the peer's Close: {kind:?} {bytes:02x?}"
        );
        match self.partial_kind {
            Some(current) => assert_eq!(current, kind, "chunk of another kind inside a message"),
            None => self.partial_kind = Some(kind),
        }
        self.tally.chunks += 1;
        self.tally.message_bytes += bytes.len() as u64;
        self.tally.fold(bytes);
        self.partial_len += bytes.len() as u64;
        if let Some(max) = self.max_message {
            assert!(
                self.partial_len <= max,
                "message of {} bytes > limit {max}",
                self.partial_len
            );
        }
        if self.keep {
            match kind {
                DataKind::Text => self
                    .partial_text
                    .push_str(core::str::from_utf8(bytes).expect("text chunk is UTF-8")),
                DataKind::Binary => self.partial_binary.extend_from_slice(bytes),
            }
        }
        if end == Boundary::MessageEnd {
            self.tally.messages += 1;
            let kind_tag = match kind {
                DataKind::Text => 1u8,
                DataKind::Binary => 2u8,
            };
            self.tally.fold(&[kind_tag]);
            self.tally.fold(&self.partial_len.to_le_bytes());
            self.partial_kind = None;
            self.partial_len = 0;
            if self.keep {
                let entry = match kind {
                    DataKind::Text => Entry::Text(core::mem::take(&mut self.partial_text)),
                    DataKind::Binary => Entry::Binary(core::mem::take(&mut self.partial_binary)),
                };
                self.transcript.push(entry);
            }
        }
    }

    /// The transcript so far (empty for a counting recorder).
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The counts so far.
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// The terminal report, once it came.
    pub fn outcome(&self) -> Option<Closed> {
        self.terminal
    }

    /// Whether the peer's Close arrived.
    pub fn close_seen(&self) -> bool {
        self.close_seen
    }

    /// Bytes of the message in progress.
    pub fn partial_len(&self) -> u64 {
        self.partial_len
    }
}
