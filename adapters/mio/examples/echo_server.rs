//! An echo server: `cargo run --release -p sockeye-mio --example echo_server -- [ADDR]`.
//!
//! Listens on ADDR (default `127.0.0.1:9001`), prints `listening on ADDR`, and echoes every
//! text and binary message on every connection, with the full protocol: rejections, the
//! close handshake, limits and timeouts. One thread, one `mio::Poll`. Serves until killed.

use std::net::ToSocketAddrs;

use sockeye_mio::{DeflateConfig, Message, Server, Session, Settings};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".to_owned());
    let addr = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address"))?;
    let echo = |session: &mut Session, message: Message| {
        if message.is_data() {
            let _ = session.send(message);
        }
    };
    let mut server = Server::bind(
        addr,
        Settings::default().with_compression(DeflateConfig::DEFAULT),
        echo,
    )?;
    println!("listening on {}", server.local_addr()?);
    server.run()
}
