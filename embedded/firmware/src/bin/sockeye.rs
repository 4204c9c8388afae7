//! A WebSocket server and client in one image, over smoltcp on a loopback link, with
//! Sockeye (sockeye-embedded-io): handshake, text and binary echoes, a ping, a clean
//! close with code and reason. Output through semihosting; exit status 0 on success.
#![no_std]
#![no_main]

use core::cell::RefCell;
use core::future::Future;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use smoltcp::iface::{SocketSet, SocketStorage};
use sockeye_embedded_io::{
    accept_with, connect, Buffers, ClientRequest, Clock, CloseCode, Closed, Connection, Event,
    Instant, Options, Rejection, WebSocket,
};
use sockeye_firmware::{fail, pass, report, Loopback, Net, Tcp, Tick, XorShift, PORT};

/// Sockeye's clock: the tick counter, in nanoseconds.
#[derive(Clone, Copy)]
struct TickClock<'t>(&'t Tick);

impl Clock for TickClock<'_> {
    fn now(&mut self) -> Instant {
        Instant::from_millis(self.0.ms())
    }

    fn sleep_until(&mut self, deadline: Instant) -> impl Future<Output = ()> {
        // Compared in nanoseconds: no 64-bit division.
        let tick = self.0;
        core::future::poll_fn(move |_| {
            if Instant::from_millis(tick.ms()) >= deadline {
                core::task::Poll::Ready(())
            } else {
                core::task::Poll::Pending
            }
        })
    }
}

const BINARY_LEN: usize = 200;

async fn server(mut tcp: Tcp<'_, '_>, tick: &Tick) -> bool {
    tcp.established().await;
    let (mut input, mut output) = ([0u8; 512], [0u8; 256]);
    let buffers = Buffers::new(&mut input, &mut output);
    let ws = accept_with(
        tcp,
        TickClock(tick),
        buffers,
        &Options::DEFAULT,
        |request| match request.path() {
            "/ws" => Ok(()),
            _ => Err(Rejection::custom(404, "Not Found", &[])),
        },
    )
    .await;
    let Ok(mut ws) = ws else {
        hprintln!("server: handshake failed");
        return false;
    };
    hprintln!("server: accepted /ws");
    let mut echo = [0u8; 512];
    let clean = loop {
        let next = ws.next().await;
        let (kind, len) = match next {
            Ok(Event::Text { text, end }) if end.is_message_end() => {
                echo[..text.len()].copy_from_slice(text.as_bytes());
                (sockeye_embedded_io::DataKind::Text, text.len())
            }
            Ok(Event::Binary { bytes, end }) if end.is_message_end() => {
                echo[..bytes.len()].copy_from_slice(bytes);
                (sockeye_embedded_io::DataKind::Binary, bytes.len())
            }
            Ok(Event::Ping(payload)) => {
                hprintln!("server: ping {} bytes, pong sent", payload.len());
                continue;
            }
            Ok(Event::Close(frame)) => {
                hprintln!(
                    "server: close received, code {} reason \"{}\"",
                    frame.code.map_or(0, |c| c.0),
                    frame.reason
                );
                continue;
            }
            Ok(Event::Closed(closed)) => break closed.is_clean(),
            Ok(_) => {
                hprintln!("server: unexpected chunk");
                break false;
            }
            Err(_) => {
                hprintln!("server: error");
                break false;
            }
        };
        if ws.send(kind, &echo[..len]).await.is_err() {
            break false;
        }
        hprintln!("server: echoed {} bytes", len);
    };
    let wants_shutdown = ws.wants_shutdown();
    let (mut tcp, _) = ws.into_inner();
    tcp.close().await;
    hprintln!("server: closed cleanly: {}", clean && wants_shutdown);
    clean && wants_shutdown
}

async fn expect_echo<T, C>(ws: &mut WebSocket<'_, T, C>, want: &[u8], text: bool) -> bool
where
    T: embedded_io_async::Read + embedded_io_async::Write,
    C: Clock,
{
    match ws.next().await {
        Ok(Event::Text { text: got, end }) => {
            text && end.is_message_end() && got.as_bytes() == want
        }
        Ok(Event::Binary { bytes, end }) => !text && end.is_message_end() && bytes == want,
        _ => false,
    }
}

async fn client(mut tcp: Tcp<'_, '_>, tick: &Tick) -> bool {
    tcp.established().await;
    let (mut input, mut output) = ([0u8; 512], [0u8; 256]);
    let buffers = Buffers::new(&mut input, &mut output);
    let request = ClientRequest::new("127.0.0.1", "/ws").with_port(Some(PORT));
    let mut rng = XorShift(0x5e5e_5e5e);
    let connected = connect(
        tcp,
        TickClock(tick),
        buffers,
        &request,
        &mut rng,
        &Options::DEFAULT,
    )
    .await;
    let Ok(mut ws) = connected else {
        hprintln!("client: handshake failed");
        return false;
    };
    hprintln!("client: connected, 101 Switching Protocols");

    let text = "hello from the client";
    if ws.send_text(text).await.is_err() || !expect_echo(&mut ws, text.as_bytes(), true).await {
        return false;
    }
    hprintln!("client: text echo ok");

    let mut binary = [0u8; BINARY_LEN];
    for (i, byte) in binary.iter_mut().enumerate() {
        *byte = (i * 7) as u8;
    }
    if ws.send_binary(&binary).await.is_err() || !expect_echo(&mut ws, &binary, false).await {
        return false;
    }
    hprintln!("client: binary echo ok ({} bytes)", BINARY_LEN);

    if ws.ping(b"are you there").await.is_err() {
        return false;
    }
    match ws.next().await {
        Ok(Event::Pong(payload)) if payload == b"are you there" => hprintln!("client: pong ok"),
        _ => return false,
    }

    if ws
        .close(CloseCode::NORMAL, "bye from the client")
        .await
        .is_err()
    {
        return false;
    }
    match ws.next().await {
        Ok(Event::Close(frame)) if frame.code == Some(CloseCode::NORMAL) => {
            hprintln!("client: close reply received, code {}", CloseCode::NORMAL.0)
        }
        _ => return false,
    }
    let clean = matches!(ws.next().await, Ok(Event::Closed(Closed::Clean(_))));
    let (mut tcp, _) = ws.into_inner();
    tcp.close().await;
    hprintln!("client: closed cleanly: {}", clean);
    clean
}

#[entry]
fn main() -> ! {
    sockeye_firmware::paint_stack();
    hprintln!("sockeye firmware: WebSocket server and client over smoltcp (loopback)");
    let mut device = Loopback::new();
    let mut storage = [SocketStorage::EMPTY; 2];
    let (mut srx, mut stx, mut crx, mut ctx) = ([0u8; 1024], [0u8; 1024], [0u8; 1024], [0u8; 1024]);
    let mut net = Net::new(&mut device, SocketSet::new(&mut storage[..]));
    let server_socket = net.add(&mut srx, &mut stx);
    let client_socket = net.add(&mut crx, &mut ctx);
    net.socket(server_socket).listen(PORT).expect("listen");
    net.connect(client_socket, 49152);
    let net = RefCell::new(net);
    let tick = Tick::new();

    let outcome = sockeye_firmware::run(
        &net,
        &tick,
        server(Tcp::new(&net, server_socket), &tick),
        client(Tcp::new(&net, client_socket), &tick),
        30_000,
    );
    hprintln!(
        "sizes: Connection {} bytes, WebSocket {} bytes, buffers 512 + 256 bytes per connection",
        core::mem::size_of::<Connection>(),
        core::mem::size_of::<WebSocket<'static, Tcp<'static, 'static>, TickClock<'static>>>()
    );
    report("sockeye", &tick);
    match outcome {
        Some((true, true)) => pass(),
        Some(_) => fail("an end did not finish cleanly"),
        None => fail("timed out (30 s of simulated time)"),
    }
}
