//! The same job as the `sockeye` image with the `embedded-websocket` crate (0.9), for the
//! size report: a server and a client over the same smoltcp loopback link and the same
//! `embedded-io-async` sockets, with the thin glue such an application writes (read a
//! frame, answer pings and the close, copy payloads out). embedded-websocket has no
//! timers, so this image runs none.
#![no_std]
#![no_main]

use core::cell::RefCell;

use cortex_m_rt::entry;
use cortex_m_semihosting::hprintln;
use embedded_io_async::{Read, Write};
use embedded_websocket::{
    self as ews, WebSocket, WebSocketCloseStatusCode, WebSocketOptions,
    WebSocketReceiveMessageType as Rx, WebSocketSendMessageType as Tx, WebSocketType,
};
use smoltcp::iface::{SocketSet, SocketStorage};
use sockeye_firmware::{fail, pass, report, Loopback, Net, Tcp, Tick, XorShift, PORT};

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

/// The input side of one connection: the buffer and its unconsumed bytes.
struct Input {
    buf: [u8; 512],
    start: usize,
    end: usize,
}

impl Input {
    fn new() -> Self {
        Input {
            buf: [0; 512],
            start: 0,
            end: 0,
        }
    }

    /// Reads more bytes; false at the end of the stream.
    async fn fill(&mut self, tcp: &mut Tcp<'_, '_>) -> bool {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        matches!(tcp.read(&mut self.buf[self.end..]).await, Ok(n) if n > 0 && { self.end += n; true })
    }
}

/// Reads one whole frame's payload into `payload`: its type, length and close code.
async fn read_frame<R: rand_core::RngCore, S: WebSocketType>(
    ws: &mut WebSocket<R, S>,
    tcp: &mut Tcp<'_, '_>,
    input: &mut Input,
    payload: &mut [u8],
) -> Option<(Rx, usize, Option<u16>)> {
    let mut got = 0;
    loop {
        if input.start < input.end {
            match ws.read(&input.buf[input.start..input.end], &mut payload[got..]) {
                Ok(read) => {
                    input.start += read.len_from;
                    got += read.len_to;
                    if read.end_of_message {
                        // A Close's payload starts with its code.
                        let code = read
                            .close_status
                            .map(|_| u16::from_be_bytes([payload[0], payload[1]]));
                        return Some((read.message_type, got, code));
                    }
                    continue;
                }
                Err(ews::Error::ReadFrameIncomplete) => {}
                Err(_) => return None,
            }
        }
        if !input.fill(tcp).await {
            return None;
        }
    }
}

async fn send<R: rand_core::RngCore, S: WebSocketType>(
    ws: &mut WebSocket<R, S>,
    tcp: &mut Tcp<'_, '_>,
    kind: Tx,
    payload: &[u8],
    output: &mut [u8],
) -> bool {
    match ws.write(kind, true, payload, output) {
        Ok(n) => write_all(tcp, &output[..n]).await,
        Err(_) => false,
    }
}

async fn server(mut tcp: Tcp<'_, '_>) -> bool {
    tcp.established().await;
    let mut input = Input::new();
    let mut output = [0u8; 256];
    let mut payload = [0u8; 512];
    // The request head.
    let key = loop {
        let mut headers = [httparse::EMPTY_HEADER; 24];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&input.buf[..input.end]) {
            Ok(httparse::Status::Complete(len)) => {
                let path_ok = request.path == Some("/ws");
                let context =
                    ews::read_http_header(request.headers.iter().map(|h| (h.name, h.value)));
                input.start = len;
                match context {
                    Ok(Some(context)) if path_ok => break context.sec_websocket_key,
                    _ => {
                        write_all(&mut tcp, b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                        return false;
                    }
                }
            }
            Ok(httparse::Status::Partial) if input.end < input.buf.len() => {}
            _ => return false,
        }
        if !input.fill(&mut tcp).await {
            return false;
        }
    };
    let mut ws = ews::WebSocketServer::new_server();
    let Ok(n) = ws.server_accept(&key, None, &mut output) else {
        return false;
    };
    if !write_all(&mut tcp, &output[..n]).await {
        return false;
    }
    hprintln!("server: accepted /ws");
    loop {
        let Some((kind, len, code)) = read_frame(&mut ws, &mut tcp, &mut input, &mut payload).await
        else {
            return false;
        };
        let ok = match kind {
            Rx::Text | Rx::Binary => {
                let kind = if kind == Rx::Text {
                    Tx::Text
                } else {
                    Tx::Binary
                };
                let ok = send(&mut ws, &mut tcp, kind, &payload[..len], &mut output).await;
                hprintln!("server: echoed {} bytes", len);
                ok
            }
            Rx::Ping => {
                hprintln!("server: ping {} bytes, pong sent", len);
                send(&mut ws, &mut tcp, Tx::Pong, &payload[..len], &mut output).await
            }
            Rx::CloseMustReply => {
                let reason = core::str::from_utf8(&payload[2.min(len)..len]).unwrap_or("");
                hprintln!(
                    "server: close received, code {} reason \"{}\"",
                    code.unwrap_or(0),
                    reason
                );
                // Reply with the code, as Sockeye does.
                let ok = send(
                    &mut ws,
                    &mut tcp,
                    Tx::CloseReply,
                    &payload[..2.min(len)],
                    &mut output,
                )
                .await;
                tcp.close().await;
                hprintln!("server: closed cleanly: {}", ok);
                return ok;
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
}

async fn expect<R: rand_core::RngCore, S: WebSocketType>(
    ws: &mut WebSocket<R, S>,
    tcp: &mut Tcp<'_, '_>,
    input: &mut Input,
    want_kind: Rx,
    want: &[u8],
) -> bool {
    let mut payload = [0u8; 512];
    match read_frame(ws, tcp, input, &mut payload).await {
        Some((kind, len, _)) => kind == want_kind && &payload[..len] == want,
        None => false,
    }
}

async fn client(mut tcp: Tcp<'_, '_>) -> bool {
    tcp.established().await;
    let mut input = Input::new();
    let mut output = [0u8; 256];
    let mut ws = ews::WebSocketClient::new_client(XorShift(0x5e5e_5e5e));
    let options = WebSocketOptions {
        path: "/ws",
        host: "127.0.0.1:8080",
        origin: "",
        sub_protocols: None,
        additional_headers: None,
    };
    let Ok((n, key)) = ws.client_connect(&options, &mut output) else {
        return false;
    };
    if !write_all(&mut tcp, &output[..n]).await {
        return false;
    }
    loop {
        match ws.client_accept(&key, &input.buf[..input.end]) {
            Ok((len, _)) => {
                input.start = len;
                break;
            }
            Err(ews::Error::HttpHeaderIncomplete) => {}
            Err(_) => return false,
        }
        if !input.fill(&mut tcp).await {
            return false;
        }
    }
    hprintln!("client: connected, 101 Switching Protocols");

    let text = "hello from the client";
    if !send(&mut ws, &mut tcp, Tx::Text, text.as_bytes(), &mut output).await
        || !expect(&mut ws, &mut tcp, &mut input, Rx::Text, text.as_bytes()).await
    {
        return false;
    }
    hprintln!("client: text echo ok");

    let mut binary = [0u8; BINARY_LEN];
    for (i, byte) in binary.iter_mut().enumerate() {
        *byte = (i * 7) as u8;
    }
    if !send(&mut ws, &mut tcp, Tx::Binary, &binary, &mut output).await
        || !expect(&mut ws, &mut tcp, &mut input, Rx::Binary, &binary).await
    {
        return false;
    }
    hprintln!("client: binary echo ok ({} bytes)", BINARY_LEN);

    if !send(&mut ws, &mut tcp, Tx::Ping, b"are you there", &mut output).await
        || !expect(&mut ws, &mut tcp, &mut input, Rx::Pong, b"are you there").await
    {
        return false;
    }
    hprintln!("client: pong ok");

    let Ok(n) = ws.close(
        WebSocketCloseStatusCode::NormalClosure,
        Some("bye from the client"),
        &mut output,
    ) else {
        return false;
    };
    if !write_all(&mut tcp, &output[..n]).await {
        return false;
    }
    let mut payload = [0u8; 512];
    match read_frame(&mut ws, &mut tcp, &mut input, &mut payload).await {
        Some((Rx::CloseCompleted, _, Some(1000))) => {
            hprintln!("client: close reply received, code 1000")
        }
        _ => return false,
    }
    // The server closes TCP first; then the end of stream.
    let clean = !input.fill(&mut tcp).await;
    tcp.close().await;
    hprintln!("client: closed cleanly: {}", clean);
    clean
}

#[entry]
fn main() -> ! {
    sockeye_firmware::paint_stack();
    hprintln!("embedded-websocket firmware: WebSocket server and client over smoltcp (loopback)");
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
    hprintln!(
        "sizes: WebSocketServer {} bytes, WebSocketClient {} bytes, buffers 512 + 256 + 512 (payload) bytes per connection",
        core::mem::size_of::<ews::WebSocketServer>(),
        core::mem::size_of::<ews::WebSocketClient<XorShift>>()
    );
    report("embedded-websocket", &tick);
    match outcome {
        Some((true, true)) => pass(),
        Some(_) => fail("an end did not finish cleanly"),
        None => fail("timed out (30 s of simulated time)"),
    }
}
