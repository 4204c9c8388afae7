//! A multi-room chat server: what a first real server looks like.
//!
//! ```text
//! cargo run --release -p sockeye-tokio --example chat -- [ADDR]
//! cargo run --release -p sockeye-tokio --example client -- ws://127.0.0.1:9002/room/lobby
//! ```
//!
//! - `ws://ADDR/room/NAME` joins room NAME: every text message goes to everyone in it.
//!   The room is decided in the handshake and carried into the task
//!   (`accept_with_data`); `?nick=ann` names the sender.
//! - Plain HTTP on the same port: `GET /health` answers `200 ok`, anything else `404`.
//! - Keepalive is on by default (a Ping after 30 s of silence): dead peers behind
//!   proxies are noticed.
//! - Each line is framed once for the whole room (`PreparedMessage`) and queued on every
//!   member's connection by reference, with no copy per member.
//! - A slow reader never holds the room up: messages are queued with
//!   `try_feed_prepared`, and a peer whose queue is full (or who falls behind the room)
//!   is closed with 1008.
//! - Every disconnect is logged as clean (with its code and reason) or abnormal.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sockeye_tokio::{
    accept_with_data, CloseCode, Message, PreparedMessage, Settings, TrySendError, Verdict,
};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// How many messages a room keeps for a subscriber that is behind.
const ROOM_BACKLOG: usize = 256;

type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<PreparedMessage>>>>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let listener = TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    let rooms = Rooms::default();
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(serve(tcp, peer, rooms.clone()));
    }
}

async fn serve(tcp: tokio::net::TcpStream, peer: std::net::SocketAddr, rooms: Rooms) {
    let accepted = accept_with_data(tcp, Settings::default(), |request| {
        match (request.is_upgrade(), request.path()) {
            (false, "/health") => Verdict::from(Verdict::reject(200, "OK").with_body("ok")),
            (true, path) if path.starts_with("/room/") && path.len() > 6 => {
                let nick = request
                    .query()
                    .and_then(|query| query.strip_prefix("nick="))
                    .unwrap_or("anonymous");
                let joined = (path[6..].to_owned(), nick.to_owned());
                Verdict::from(Verdict::accept().with_data(Some(joined)))
            }
            _ => Verdict::from(Verdict::reject(404, "Not Found").with_body("no such room")),
        }
    })
    .await;
    let (ws, (room, nick)) = match accepted {
        Ok((ws, Some(joined))) => (ws, joined),
        Ok((_, None)) => return,
        // Our own answers (a health check, a 404) and bad requests: nothing to log.
        Err(sockeye_tokio::Error::Refused(_)) => return,
        Err(error) => return eprintln!("{peer}: {error}"),
    };
    let sender = rooms
        .lock()
        .unwrap()
        .entry(room.clone())
        .or_insert_with(|| broadcast::channel(ROOM_BACKLOG).0)
        .clone();
    let mut room_feed = sender.subscribe();
    let (mut reader, mut writer) = ws.split();
    let _ = sender.send(PreparedMessage::text(format!("* {nick} joined {room}")));

    // The room to this peer: never waits on it.
    let writing = tokio::spawn(async move {
        loop {
            let line = match room_feed.recv().await {
                Ok(line) => line,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = writer.close(CloseCode::POLICY, "too slow").await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            match writer.try_feed_prepared(&line) {
                Ok(()) => {
                    // Whatever the socket takes now; the rest goes with the next.
                    let _ =
                        tokio::time::timeout(std::time::Duration::from_millis(1), writer.flush())
                            .await;
                }
                Err(TrySendError::Full(_)) => {
                    let _ = writer.close(CloseCode::POLICY, "too slow").await;
                    return;
                }
                Err(TrySendError::Failed(_)) => return,
            }
        }
    });

    // This peer to the room.
    while let Some(message) = reader.recv().await {
        if let Message::Text(text) = message {
            let _ = sender.send(PreparedMessage::text(format!("{nick}: {text}")));
        }
    }
    writing.abort();
    let _ = sender.send(PreparedMessage::text(format!("* {nick} left")));
    match reader.outcome() {
        Some(outcome) if outcome.is_clean() => println!("{peer} {room}: {outcome}"),
        Some(outcome) => println!("{peer} {room}: ABNORMAL {outcome}"),
        None => println!("{peer} {room}: ended"),
    }
}
