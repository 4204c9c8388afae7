//! The Autobahn|Testsuite client loop (for `wstest -m fuzzingserver`).
//!
//! ```text
//! cargo run --release -p sockeye-tokio --example autobahn_client -- [URL] [AGENT]
//! ```
//!
//! URL defaults to `ws://127.0.0.1:9001`, AGENT to `sockeye-tokio`. Asks the server for
//! the number of cases (`/getCaseCount`), runs each case (`/runCase`) echoing every text
//! and binary message, then asks it to write its reports (`/updateReports`).

use sockeye_tokio::{connect_url, DeflateConfig, Message, Settings};

fn main() {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let agent = args.next().unwrap_or_else(|| "sockeye-tokio".to_owned());
    let url = url.trim_end_matches('/').to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(run(&url, &agent));
    std::process::exit(code);
}

async fn run(url: &str, agent: &str) -> i32 {
    let count = match case_count(url).await {
        Ok(count) => count,
        Err(error) => {
            eprintln!("getCaseCount: {error}");
            return 1;
        }
    };
    println!("{count} cases");
    for case in 1..=count {
        let case_url = format!("{url}/runCase?case={case}&agent={agent}");
        if let Err(error) = echo(&case_url).await {
            eprintln!("case {case}: {error}");
        }
    }
    match echo(&format!("{url}/updateReports?agent={agent}")).await {
        Ok(()) => {
            println!("reports updated");
            0
        }
        Err(error) => {
            eprintln!("updateReports: {error}");
            1
        }
    }
}

async fn case_count(url: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let mut ws = connect_url(&format!("{url}/getCaseCount"), settings()).await?;
    let mut count = None;
    while let Some(message) = ws.recv().await {
        if let Message::Text(text) = message {
            count = Some(text.trim().parse()?);
        }
    }
    Ok(count.ok_or("no case count")?)
}

async fn echo(url: &str) -> Result<(), sockeye_tokio::Error> {
    let mut ws = connect_url(url, settings()).await?;
    while let Some(message) = ws.recv().await {
        if message.is_data() && ws.feed(message).await.is_err() {
            break;
        }
    }
    while ws.recv().await.is_some() {}
    Ok(())
}

/// Every connection offers permessage-deflate, so the 12.* and 13.* cases run.
fn settings() -> Settings {
    Settings::default().with_compression(DeflateConfig::DEFAULT)
}
