//! The adapters over a misbehaving transport ([`Faulty`] for tokio and smol; a
//! [`FaultProxy`](sockeye_tests::FaultProxy) in front of mio, which owns its sockets): short reads and writes,
//! `Pending` and interrupted calls at seeded random points, and streams cut in the middle
//! of a frame. Whatever the seed: no panic, no hang (every run is bounded), every message
//! that arrives arrives intact and in order, and every connection ends with an outcome
//! that says why. Without a cut, everything arrives and both ends close cleanly.
//!
//! A failing case prints its seeds; `Faults::from_seed(seed)` replays it.

use std::time::Duration;

use proptest::prelude::*;
use sockeye_engine::{Message, Outcome, Settings};
use sockeye_proto::{CloseCode, Config};
use sockeye_tests::{Faults, Faulty, XorShift};

/// The longest one exchange may take.
const LIMIT: Duration = Duration::from_secs(20);

fn settings() -> Settings {
    Settings::from(
        Config::default()
            .with_close_timeout(Some(Duration::from_secs(2)))
            .with_keepalive(None),
    )
    .with_handshake_timeout(Some(Duration::from_secs(5)))
}

/// Six messages of the sizes that matter (empty, one byte, the 7-bit, 16-bit and 64-bit
/// length forms, larger than a read buffer), text and binary.
fn messages(seed: u64) -> Vec<Message> {
    let mut rng = XorShift::new(seed);
    [0usize, 1, 125, 126, 4096, 70_000]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            if i % 2 == 0 {
                Message::text("é".repeat(len / 2) + &"x".repeat(len % 2))
            } else {
                Message::binary((0..len).map(|_| rng.next_u64() as u8).collect::<Vec<_>>())
            }
        })
        .collect()
}

/// What one exchange saw: the client's echoes and both ends' outcomes (`None` for a
/// side whose handshake failed).
#[derive(Debug)]
struct Exchange {
    echoes: Vec<Message>,
    client: Option<Outcome>,
    server: Option<Outcome>,
}

fn check(sent: &[Message], exchange: &Exchange, cut: bool) {
    assert!(
        exchange.echoes.len() <= sent.len() && exchange.echoes[..] == sent[..exchange.echoes.len()],
        "echoes are not an intact prefix of what was sent: {} of {}",
        exchange.echoes.len(),
        sent.len()
    );
    if !cut {
        assert_eq!(exchange.echoes.len(), sent.len(), "{exchange:?}");
        assert!(
            exchange.client.as_ref().is_some_and(Outcome::is_clean),
            "{exchange:?}"
        );
        assert!(
            exchange.server.as_ref().is_some_and(Outcome::is_clean),
            "{exchange:?}"
        );
    }
}

mod over_tokio {
    use super::*;
    use sockeye_tokio::{accept, connect};

    pub async fn exchange(sent: Vec<Message>, client: Faults, server: Faults) -> Exchange {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let serving = tokio::spawn(async move {
            let mut ws = accept(Faulty::new(a, server), settings()).await.ok()?;
            while let Some(message) = ws.recv().await {
                if message.is_data() && ws.send(message).await.is_err() {
                    break;
                }
            }
            while ws.recv().await.is_some() {}
            ws.outcome()
        });
        let mut echoes = Vec::new();
        let client = match connect(Faulty::new(b, client), "ws://localhost/", settings()).await {
            Err(_) => None,
            Ok(ws) => {
                // Read while writing: a peer that only writes while its peer's echo
                // waits for it to read would deadlock on full socket buffers.
                let (mut reader, mut writer) = ws.split();
                let writing = tokio::spawn(async move {
                    for message in sent {
                        if writer.send(message).await.is_err() {
                            return;
                        }
                    }
                    let _ = writer.close(CloseCode::NORMAL, "done").await;
                });
                while let Some(message) = reader.recv().await {
                    if message.is_data() {
                        echoes.push(message);
                    }
                }
                writing.await.expect("the writer did not panic");
                reader.outcome()
            }
        };
        let server = serving.await.expect("the server task did not panic");
        Exchange {
            echoes,
            client,
            server,
        }
    }
}

mod over_smol {
    use super::*;
    use sockeye_smol::{accept, connect};

    pub async fn exchange(sent: Vec<Message>, client: Faults, server: Faults) -> Exchange {
        let (a, b) = smol::net::unix::UnixStream::pair().unwrap();
        let serving = smol::spawn(async move {
            let mut ws = accept(Faulty::new(a, server), settings()).await.ok()?;
            while let Some(message) = ws.recv().await {
                if message.is_data() && ws.send(message).await.is_err() {
                    break;
                }
            }
            while ws.recv().await.is_some() {}
            ws.outcome()
        });
        let mut echoes = Vec::new();
        let client = match connect(Faulty::new(b, client), "ws://localhost/", settings()).await {
            Err(_) => None,
            Ok(ws) => {
                // Read while writing: a peer that only writes while its peer's echo
                // waits for it to read would deadlock on full socket buffers.
                let (mut reader, mut writer) = ws.split();
                let writing = smol::spawn(async move {
                    for message in sent {
                        if writer.send(message).await.is_err() {
                            return;
                        }
                    }
                    let _ = writer.close(CloseCode::NORMAL, "done").await;
                });
                while let Some(message) = reader.recv().await {
                    if message.is_data() {
                        echoes.push(message);
                    }
                }
                writing.await;
                reader.outcome()
            }
        };
        let server = serving.await;
        Exchange {
            echoes,
            client,
            server,
        }
    }
}

mod over_mio {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc, Mutex};
    use std::time::Instant;

    use sockeye_mio::{Handler, Server, Session};
    use sockeye_tests::FaultProxy;

    /// Echoes, and keeps how each session ended.
    struct Echo(Arc<Mutex<Vec<Option<Outcome>>>>);

    impl Handler for Echo {
        fn on_message(&mut self, session: &mut Session, message: Message) {
            if message.is_data() {
                let _ = session.send(message);
            }
        }

        fn on_close(&mut self, session: &mut Session) {
            self.0.lock().unwrap().push(session.outcome());
        }
    }

    /// A mio server behind a [`FaultProxy`] shaping both directions with `network`
    /// (mio owns its sockets, so the faults come from the network, not a wrapper), and a
    /// tokio client through it.
    pub fn exchange(sent: Vec<Message>, network: Faults) -> Exchange {
        let ended = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (addr_tx, addr_rx) = mpsc::channel();
        let serving = {
            let (ended, stop) = (ended.clone(), stop.clone());
            std::thread::spawn(move || {
                let addr = "127.0.0.1:0".parse().unwrap();
                let mut server = Server::bind(addr, settings(), Echo(ended)).unwrap();
                addr_tx.send(server.local_addr().unwrap()).unwrap();
                while !stop.load(Ordering::SeqCst) {
                    server.turn(Some(Duration::from_millis(10))).unwrap();
                }
            })
        };
        let proxy = FaultProxy::start(addr_rx.recv().unwrap(), network).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (echoes, client) = runtime.block_on(async {
            tokio::time::timeout(LIMIT, async {
                let url = format!("ws://{}/", proxy.addr());
                let mut echoes = Vec::new();
                let Ok(ws) = sockeye_tokio::connect_url(&url, settings()).await else {
                    return (echoes, None);
                };
                let (mut reader, mut writer) = ws.split();
                let writing = tokio::spawn(async move {
                    for message in sent {
                        if writer.send(message).await.is_err() {
                            return;
                        }
                    }
                    let _ = writer.close(CloseCode::NORMAL, "done").await;
                });
                while let Some(message) = reader.recv().await {
                    if message.is_data() {
                        echoes.push(message);
                    }
                }
                writing.await.expect("the writer did not panic");
                (echoes, reader.outcome())
            })
            .await
            .unwrap_or_else(|_| panic!("hung: {network:?}"))
        });
        // The server reports its end once its close (or timeout) is done.
        let deadline = Instant::now() + LIMIT;
        let server = loop {
            if let Some(outcome) = ended.lock().unwrap().first() {
                break outcome.clone();
            }
            if client.is_none() || Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        drop(proxy);
        stop.store(true, Ordering::SeqCst);
        serving.join().expect("the server thread did not panic");
        Exchange {
            echoes,
            client,
            server,
        }
    }
}

fn run_tokio(sent: Vec<Message>, client: Faults, server: Faults) -> Exchange {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(LIMIT, over_tokio::exchange(sent, client, server))
            .await
            .unwrap_or_else(|_| panic!("hung: client {client:?}, server {server:?}"))
    })
}

fn run_smol(sent: Vec<Message>, client: Faults, server: Faults) -> Exchange {
    smol::block_on(futures_lite::future::or(
        async { Some(over_smol::exchange(sent, client, server).await) },
        async {
            smol::Timer::after(LIMIT).await;
            None
        },
    ))
    .unwrap_or_else(|| panic!("hung: client {client:?}, server {server:?}"))
}

/// Faults for both sides from one seed; with `cut`, one side's stream is cut somewhere
/// in the first ~150 KB (the handshake, a header, a payload, the close).
fn faults(seed: u64, cut: Option<(u64, bool, bool)>) -> (Faults, Faults) {
    let client = Faults::from_seed(seed);
    let server = Faults::from_seed(seed.rotate_left(17) ^ 0xA5A5);
    match cut {
        None => (client, server),
        Some((at, eof, on_client)) if on_client => (client.with_cut(at, eof), server),
        Some((at, eof, _)) => (client, server.with_cut(at, eof)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn tokio_survives_a_misbehaving_transport(seed in any::<u64>()) {
        let (client, server) = faults(seed, None);
        check(&messages(seed), &run_tokio(messages(seed), client, server), false);
    }

    #[test]
    fn tokio_reports_a_cut_stream(seed in any::<u64>(), at in 0u64..150_000, eof in any::<bool>(), on_client in any::<bool>()) {
        let (client, server) = faults(seed, Some((at, eof, on_client)));
        let exchange = run_tokio(messages(seed), client, server);
        check(&messages(seed), &exchange, true);
    }

    #[test]
    fn mio_survives_a_misbehaving_network(seed in any::<u64>()) {
        let network = Faults::from_seed(seed);
        check(&messages(seed), &over_mio::exchange(messages(seed), network), false);
    }

    #[test]
    fn mio_reports_a_cut_connection(seed in any::<u64>(), at in 0u64..150_000) {
        let network = Faults::from_seed(seed).with_cut(at, true);
        let exchange = over_mio::exchange(messages(seed), network);
        check(&messages(seed), &exchange, true);
        // The server knows how it ended (unless the cut came before the handshake).
        prop_assert!(exchange.client.is_none() || exchange.server.is_some() || at < 300);
    }

    #[test]
    fn smol_survives_a_misbehaving_transport(seed in any::<u64>()) {
        let (client, server) = faults(seed, None);
        check(&messages(seed), &run_smol(messages(seed), client, server), false);
    }

    #[test]
    fn smol_reports_a_cut_stream(seed in any::<u64>(), at in 0u64..150_000, eof in any::<bool>(), on_client in any::<bool>()) {
        let (client, server) = faults(seed, Some((at, eof, on_client)));
        let exchange = run_smol(messages(seed), client, server);
        check(&messages(seed), &exchange, true);
    }
}
