//! A small wscat: sends each line of stdin as a text message and prints what arrives.
//!
//! ```text
//! cargo run --release -p sockeye-smol --example client -- URL
//! ```
//!
//! Received text prints as `< TEXT`, binary as `< [N bytes]`. At the end it prints how
//! the connection ended (`# closed clean code=1000 reason=...`, `# closed abnormal: ...`,
//! `# closed timeout: ...`). End of stdin closes with 1000; the client exits 0 once the
//! close handshake completed cleanly, 1 otherwise. Plain `ws://` URLs only.

use std::io::Write;

use futures_lite::{future, AsyncBufReadExt, StreamExt};
use sockeye_smol::{connect_url, CloseCode, Message, Settings};

enum Next {
    Message(Option<Message>),
    Line(Option<String>),
}

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: client URL");
        std::process::exit(2);
    };
    let code = smol::block_on(run(&url));
    let _ = std::io::stdout().flush();
    // Exit at once: the stdin reader is a blocking thread that cannot be cancelled.
    std::process::exit(code);
}

async fn run(url: &str) -> i32 {
    let mut ws = match connect_url(url, Settings::default()).await {
        Ok(ws) => ws,
        Err(error) => {
            eprintln!("# cannot connect: {error}");
            return 1;
        }
    };
    let mut lines = smol::io::BufReader::new(smol::Unblock::new(std::io::stdin())).lines();
    let mut stdin_open = true;
    loop {
        // `recv` is cancel-safe: losing the race to stdin loses nothing.
        let next = if stdin_open {
            future::or(async { Next::Message(ws.recv().await) }, async {
                Next::Line(lines.next().await.and_then(Result::ok))
            })
            .await
        } else {
            Next::Message(ws.recv().await)
        };
        match next {
            Next::Message(Some(Message::Text(text))) => println!("< {text}"),
            Next::Message(Some(Message::Binary(bytes))) => println!("< [{} bytes]", bytes.len()),
            Next::Message(Some(_)) => {}
            Next::Message(None) => break,
            Next::Line(Some(line)) => {
                if let Err(error) = ws.send(Message::text(line)).await {
                    eprintln!("# cannot send: {error}");
                }
            }
            Next::Line(None) => {
                stdin_open = false;
                // Errors mean the connection is already closing; recv reports it.
                let _ = ws.close(CloseCode::NORMAL, "").await;
            }
        }
    }
    let outcome = ws
        .outcome()
        .expect("recv returned None: the connection is over");
    println!("# closed {outcome}");
    if outcome.is_clean() {
        0
    } else {
        1
    }
}
