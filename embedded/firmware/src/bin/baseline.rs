//! The same network job without WebSocket, for the size report: the client sends the same
//! bytes over plain TCP, the server echoes them, both close. What the WebSocket images add
//! over this one is the WebSocket library and its glue.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use embedded_io_async::{Read, Write};
use smoltcp::iface::{SocketSet, SocketStorage};
use sockeye_firmware::{fail, pass, report, Loopback, Net, Tcp, Tick, PORT};

const BINARY_LEN: usize = 200;

async fn write_all(tcp: &mut Tcp<'_, '_>, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match tcp.write(bytes).await {
            Ok(n) if n > 0 => bytes = &bytes[n..],
            _ => return false,
        }
    }
    true
}

async fn server(mut tcp: Tcp<'_, '_>) -> bool {
    tcp.established().await;
    hprintln!("server: accepted");
    let mut input = [0u8; 512];
    loop {
        match tcp.read(&mut input).await {
            Ok(0) => break,
            Ok(n) => {
                if !write_all(&mut tcp, &input[..n]).await {
                    return false;
                }
                hprintln!("server: echoed {} bytes", n);
            }
            Err(_) => return false,
        }
    }
    tcp.close().await;
    hprintln!("server: closed");
    true
}

async fn exchange(tcp: &mut Tcp<'_, '_>, bytes: &[u8]) -> bool {
    if !write_all(tcp, bytes).await {
        return false;
    }
    let mut input = [0u8; 512];
    let mut got = 0;
    while got < bytes.len() {
        match tcp.read(&mut input[got..]).await {
            Ok(n) if n > 0 => got += n,
            _ => return false,
        }
    }
    &input[..got] == bytes
}

async fn client(mut tcp: Tcp<'_, '_>) -> bool {
    tcp.established().await;
    hprintln!("client: connected");
    let text = "hello from the client";
    if !exchange(&mut tcp, text.as_bytes()).await {
        return false;
    }
    hprintln!("client: text echo ok");
    let mut binary = [0u8; BINARY_LEN];
    for (i, byte) in binary.iter_mut().enumerate() {
        *byte = (i * 7) as u8;
    }
    if !exchange(&mut tcp, &binary).await {
        return false;
    }
    hprintln!("client: binary echo ok ({} bytes)", BINARY_LEN);
    if !exchange(&mut tcp, b"are you there").await {
        return false;
    }
    hprintln!("client: ping echo ok");
    tcp.close().await;
    hprintln!("client: closed");
    true
}

#[entry]
fn main() -> ! {
    sockeye_firmware::paint_stack();
    hprintln!("baseline firmware: TCP echo over smoltcp (loopback), no WebSocket");
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
        server(Tcp::new(&net, server_socket)),
        client(Tcp::new(&net, client_socket)),
        30_000,
    );
    report("baseline", &tick);
    match outcome {
        Some((true, true)) => pass(),
        Some(_) => fail("an end did not finish"),
        None => fail("timed out (30 s of simulated time)"),
    }
}
