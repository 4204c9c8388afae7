//! The Autobahn|Testsuite fuzzingserver client loop:
//!
//! ```text
//! cargo run --release -p sockeye-smol --example autobahn_client -- [URL] [AGENT]
//! ```
//!
//! Reads the case count from `URL/getCaseCount`, runs every case (`/runCase`, echoing each
//! text and binary message until the connection ends), then asks for the reports
//! (`/updateReports`). URL defaults to `ws://127.0.0.1:9001`, AGENT to `sockeye-smol`.

use sockeye_smol::{connect_url, DeflateConfig, Message, Settings};

async fn echo_case(url: &str) -> Result<(), sockeye_smol::Error> {
    let mut ws = connect_url(url, settings()).await?;
    while let Some(message) = ws.recv().await {
        if message.is_data() && ws.feed(message).await.is_err() {
            break;
        }
    }
    while ws.recv().await.is_some() {}
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:9001".to_owned());
    let base = base.trim_end_matches('/').to_owned();
    let agent = args.next().unwrap_or_else(|| "sockeye-smol".to_owned());
    smol::block_on(async {
        let mut ws = connect_url(&format!("{base}/getCaseCount"), settings())
            .await
            .expect("getCaseCount");
        let mut count = 0u32;
        while let Some(message) = ws.recv().await {
            if let Message::Text(text) = message {
                count = text.trim().parse().expect("case count");
            }
        }
        println!("running {count} cases as {agent}");
        for case in 1..=count {
            let url = format!("{base}/runCase?case={case}&agent={agent}");
            if let Err(error) = echo_case(&url).await {
                eprintln!("case {case}: {error}");
            }
        }
        let url = format!("{base}/updateReports?agent={agent}");
        match connect_url(&url, settings()).await {
            Ok(mut ws) => while ws.recv().await.is_some() {},
            Err(error) => eprintln!("updateReports: {error}"),
        }
        println!("done");
    });
}

/// Every connection offers permessage-deflate, so the 12.* and 13.* cases run.
fn settings() -> Settings {
    Settings::default().with_compression(DeflateConfig::DEFAULT)
}
