//! An echo server: `cargo run --release -p sockeye-smol --example echo_server -- [ADDR]`.
//!
//! Listens on ADDR (default `127.0.0.1:9001`), prints `listening on ADDR`, and echoes every
//! text and binary message on every connection, with the full protocol: rejections, the
//! close handshake, limits and timeouts. Serves until killed.

use sockeye_smol::{accept, Message, Settings};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    smol::block_on(async {
        let listener = smol::net::TcpListener::bind(addr.as_str()).await?;
        println!("listening on {}", listener.local_addr()?);
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(error) => {
                    eprintln!("accept: {error}");
                    smol::Timer::after(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            smol::spawn(async move {
                let mut ws = match accept(stream, Settings::default()).await {
                    Ok(ws) => ws,
                    Err(error) => {
                        eprintln!("handshake: {error}");
                        return;
                    }
                };
                while let Some(received) = ws.recv().await {
                    match received {
                        Ok(message @ (Message::Text(_) | Message::Binary(_))) => {
                            if ws.send(message).await.is_err() {
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(error) => eprintln!("connection: {error}"),
                    }
                }
                // Finish the close handshake (or time out) if sending failed first.
                while ws.recv().await.is_some() {}
            })
            .detach();
        }
    })
}
