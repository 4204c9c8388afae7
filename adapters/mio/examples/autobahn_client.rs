//! The Autobahn|Testsuite fuzzingserver client loop:
//! `cargo run --release -p sockeye-mio --example autobahn_client -- [URL] [AGENT]`.
//!
//! Reads the case count from `URL/getCaseCount`, runs every case (`/runCase`, echoing each
//! text and binary message until the connection ends), then asks for the reports
//! (`/updateReports`). URL defaults to `ws://127.0.0.1:9001`, AGENT to `sockeye-mio`.
//! Each connection is a [`Session`] driven by its own small `mio::Poll` loop.

use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use sockeye_mio::{DeflateConfig, Message, Session, Settings};

/// Runs one client session until it is done, calling `on_message` for each message.
fn run(
    url: &str,
    mut on_message: impl FnMut(&mut Session, Message),
) -> Result<Session, sockeye_mio::Error> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(64);
    let mut session = Session::connect_url(url, settings(), Instant::now())?;
    session.register(poll.registry(), Token(0))?;
    let give_up = Instant::now() + Duration::from_secs(120);
    while !session.is_done() && Instant::now() < give_up {
        let wait = session
            .next_timeout(Instant::now())
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        poll.poll(&mut events, Some(wait))?;
        let now = Instant::now();
        for event in events.iter() {
            session.on_event(event, now, &mut on_message);
        }
        session.on_timeout(now);
        session.flush(now);
        session.update_interest(poll.registry(), Token(0))?;
    }
    Ok(session)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/').to_owned();
    let agent = args.next().unwrap_or_else(|| "sockeye-mio".to_owned());

    let mut count = 0u32;
    run(&format!("{base}/getCaseCount"), |_, message| {
        if let Message::Text(text) = message {
            count = text.trim().parse().expect("case count");
        }
    })
    .expect("getCaseCount");
    println!("running {count} cases as {agent}");
    for case in 1..=count {
        let url = format!("{base}/runCase?case={case}&agent={agent}");
        let echo = |session: &mut Session, message: Message| {
            if message.is_data() {
                let _ = session.send(message);
            }
        };
        if let Err(error) = run(&url, echo) {
            eprintln!("case {case}: {error}");
        }
    }
    if let Err(error) = run(&format!("{base}/updateReports?agent={agent}"), |_, _| {}) {
        eprintln!("updateReports: {error}");
    }
    println!("done");
}

/// Every connection offers permessage-deflate, so the 12.* and 13.* cases run.
fn settings() -> Settings {
    Settings::default().with_compression(DeflateConfig::DEFAULT)
}
