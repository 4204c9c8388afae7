//! A small wscat: sends each line of stdin as a text message and prints what arrives.
//!
//! ```text
//! cargo run --release -p sockeye-tokio --example client -- URL
//! ```
//!
//! Received text prints as `< TEXT`, binary as `< [N bytes]`. At the end it prints how
//! the connection ended (`# closed clean code=1000 reason=...`, `# closed abnormal: ...`,
//! `# closed timeout: ...`). End of stdin closes with 1000; the client exits 0 once the
//! close handshake completed cleanly, 1 otherwise. Plain `ws://` URLs only (see the
//! `tls` example for TLS).

use std::io::Write;

use sockeye_tokio::{connect_url, CloseCode, Message, Settings};
use tokio::io::{AsyncBufReadExt, BufReader};

fn main() {
    let Some(url) = std::env::args().nth(1) else {
        eprintln!("usage: client URL");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(run(&url));
    let _ = std::io::stdout().flush();
    // Exit at once: tokio's stdin reader is a blocking thread that cannot be cancelled.
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
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            // `recv` is cancel-safe: losing the race to stdin loses nothing.
            message = ws.recv() => match message {
                Some(Message::Text(text)) => println!("< {text}"),
                Some(Message::Binary(bytes)) => println!("< [{} bytes]", bytes.len()),
                Some(_) => {}
                None => break,
            },
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => {
                    if let Err(error) = ws.send(Message::text(line)).await {
                        eprintln!("# cannot send: {error}");
                    }
                }
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    // Errors mean the connection is already closing; recv reports it.
                    let _ = ws.close(CloseCode::NORMAL, "").await;
                }
            },
        }
    }
    let outcome = ws.outcome().expect("recv returned None: the connection is over");
    println!("# closed {outcome}");
    if outcome.is_clean() {
        0
    } else {
        1
    }
}
