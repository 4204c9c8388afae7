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
//!
//! Options:
//!
//! - `--reconnect`: stay connected with `ReconnectingClient`: keepalive on (20 s / 10 s
//!   unless set below), reconnect with backoff when the connection is lost, and print every
//!   state change as a `# ...` line (`# connecting`, `# open`, `# closed abnormal: ...`,
//!   `# reconnecting in 1200ms (attempt 3)`, `# gave up: ...`). Lines typed while
//!   disconnected are queued (`# queued (not connected)`) and sent after the reconnect.
//!   Exits 1 if it gave up.
//! - `--ping-interval SECS`, `--pong-timeout SECS`: the keepalive (a Ping after SECS of
//!   quiet; the connection is declared dead if nothing arrives within the pong timeout).
//!   Fractions are fine (`0.5`).
//! - `--close-timeout SECS`: how long to wait for the server's side of the close handshake.
//! - `--compress`: offer permessage-deflate (RFC 7692); the answer is printed if agreed.
//! - `--header 'NAME: VALUE'` (repeatable): an extra request header (`Authorization`,
//!   `Cookie` ...), sent on every attempt.
//! - `--protocol NAME` (repeatable): a subprotocol to offer; the one agreed on prints as
//!   `# subprotocol NAME`.
//!
//! A server that turns the upgrade down prints its status and body:
//! `# cannot connect: the server answered 401 Unauthorized` then `# body: ...`.

use std::io::Write;
use std::time::Duration;

use sockeye_tokio::reconnect::{
    ClientEvent, ReconnectOptions, ReconnectingClient, Sent, StateChange,
};
use sockeye_tokio::{
    connect_url_with, CloseCode, DeflateConfig, Error, KeepAlive, Message, RequestExtras, Settings,
};
use tokio::io::{AsyncBufReadExt, BufReader};

const USAGE: &str = "usage: client [--reconnect] [--ping-interval SECS] [--pong-timeout SECS] \
                     [--close-timeout SECS] [--header 'NAME: VALUE']... [--protocol NAME]... [--compress] \
                     URL";

/// The command line.
struct Args {
    url: String,
    reconnect: bool,
    ping_interval: Option<Duration>,
    pong_timeout: Option<Duration>,
    close_timeout: Option<Duration>,
    /// Offer permessage-deflate.
    compress: bool,
    request: RequestExtras,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        url: String::new(),
        reconnect: false,
        ping_interval: None,
        pong_timeout: None,
        close_timeout: None,
        compress: false,
        request: RequestExtras::new(),
    };
    let seconds = |flag: &str, value: Option<String>| -> Result<Duration, String> {
        let value = value.ok_or_else(|| format!("{flag} needs a value"))?;
        value
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| format!("{flag}: not a number of seconds: {value}"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--reconnect" => parsed.reconnect = true,
            "--compress" => parsed.compress = true,
            "--ping-interval" => parsed.ping_interval = Some(seconds(&arg, args.next())?),
            "--pong-timeout" => parsed.pong_timeout = Some(seconds(&arg, args.next())?),
            "--close-timeout" => parsed.close_timeout = Some(seconds(&arg, args.next())?),
            "--header" => {
                let line = args.next().ok_or("--header needs 'NAME: VALUE'")?;
                let (name, value) = line
                    .split_once(':')
                    .ok_or_else(|| format!("--header: no ':' in {line:?}"))?;
                parsed.request = parsed.request.with_header(name.trim(), value.trim());
            }
            "--protocol" => {
                let name = args.next().ok_or("--protocol needs a name")?;
                parsed.request = parsed.request.with_protocol(name);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            url if parsed.url.is_empty() => parsed.url = url.to_string(),
            extra => return Err(format!("unexpected argument {extra}")),
        }
    }
    if parsed.url.is_empty() {
        return Err("no URL".to_string());
    }
    Ok(parsed)
}

impl Args {
    /// The keepalive asked for: either flag turns it on (the other keeps its default).
    fn keepalive(&self) -> Option<KeepAlive> {
        let default = ReconnectOptions::DEFAULT_KEEPALIVE;
        if self.ping_interval.is_none() && self.pong_timeout.is_none() {
            return None;
        }
        Some(KeepAlive::new(
            self.ping_interval.unwrap_or(default.interval),
            self.pong_timeout.unwrap_or(default.timeout),
        ))
    }

    fn settings(&self) -> Settings {
        let mut config = Settings::default()
            .protocol
            .with_keepalive(self.keepalive());
        if let Some(timeout) = self.close_timeout {
            config = config.with_close_timeout(Some(timeout));
        }
        let settings = Settings::default().with_protocol(config);
        if self.compress {
            settings.with_compression(DeflateConfig::DEFAULT)
        } else {
            settings
        }
    }
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = if args.reconnect {
        runtime.block_on(run_reconnecting(&args))
    } else {
        runtime.block_on(run(&args))
    };
    let _ = std::io::stdout().flush();
    // Exit at once: tokio's stdin reader is a blocking thread that cannot be cancelled.
    std::process::exit(code);
}

/// What a failed connection attempt prints: the error, and a rejection's body.
fn report_failure(error: &Error) {
    eprintln!("# cannot connect: {error}");
    if let Error::Rejected(rejected) = error {
        if !rejected.body.is_empty() {
            eprintln!("# body: {}", String::from_utf8_lossy(&rejected.body));
        }
    }
}

async fn run(args: &Args) -> i32 {
    let mut ws = match connect_url_with(&args.url, &args.request, args.settings()).await {
        Ok(ws) => ws,
        Err(error) => {
            report_failure(&error);
            return 1;
        }
    };
    if let Some(protocol) = ws.protocol() {
        println!("# subprotocol {protocol}");
    }
    if let Some(deflate) = ws.compression() {
        println!("# compression {deflate:?}");
    }
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

/// `--reconnect`: the same loop over a `ReconnectingClient`, printing state changes.
async fn run_reconnecting(args: &Args) -> i32 {
    let options = ReconnectOptions::default().with_keepalive(Some(
        args.keepalive()
            .unwrap_or(ReconnectOptions::DEFAULT_KEEPALIVE),
    ));
    let mut client = match ReconnectingClient::new(args.url.as_str(), args.settings(), options) {
        Ok(client) => client.with_request(args.request.clone()),
        Err(error) => {
            eprintln!("# cannot connect: {error}");
            return 1;
        }
    };
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut code = 0;
    loop {
        tokio::select! {
            // `next_event` is cancel-safe, and it drives connecting, backoff and keepalive.
            event = client.next_event() => match event {
                Some(ClientEvent::State(change)) => {
                    println!("# {change}");
                    match change {
                        StateChange::Open => {
                            if let Some(protocol) = client.protocol() {
                                println!("# subprotocol {protocol}");
                            }
                        }
                        StateChange::Failed(_) => {
                            if let Some(Error::Rejected(rejected)) = client.last_error() {
                                if !rejected.body.is_empty() {
                                    println!("# body: {}", String::from_utf8_lossy(&rejected.body));
                                }
                            }
                        }
                        StateChange::GaveUp(_) => code = 1,
                        StateChange::Closed(outcome) if !stdin_open => {
                            code = i32::from(!outcome.is_clean());
                        }
                        _ => {}
                    }
                }
                Some(ClientEvent::Message(Message::Text(text))) => println!("< {text}"),
                Some(ClientEvent::Message(Message::Binary(bytes))) => {
                    println!("< [{} bytes]", bytes.len());
                }
                Some(_) => {}
                None => break,
            },
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => match client.send(Message::text(line)).await {
                    Ok(Sent::Written) => {}
                    Ok(Sent::Queued) => println!("# queued (not connected)"),
                    Err(error) => eprintln!("# cannot send: {error}"),
                },
                Ok(None) | Err(_) => {
                    stdin_open = false;
                    let _ = client.close(CloseCode::NORMAL, "");
                }
            },
        }
    }
    code
}
