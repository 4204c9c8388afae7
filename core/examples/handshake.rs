//! The upgrade handshake, both roles, in memory: a client request, the server's 101, the
//! client's check, and two requests the server turns down.
//!
//! Run with `cargo run -p sockeye-proto --example handshake`.

use sockeye_proto::handshake::{
    parse_request, Accept, ClientHandshake, Response, Url, EMPTY_HEADER,
};
use sockeye_proto::Status;

fn show(title: &str, bytes: &[u8]) {
    println!("--- {title} ({} bytes)", bytes.len());
    print!("{}", String::from_utf8_lossy(bytes).replace("\r\n", "\n"));
}

/// What a server adapter does with the bytes it has read: the bytes to write back.
fn serve(request: &[u8], out: &mut [u8]) -> usize {
    let mut headers = [EMPTY_HEADER; 32];
    match parse_request(request, &mut headers) {
        Ok(Status::Complete(upgrade)) => {
            let protocol = upgrade.select_protocol(&["chat"]);
            println!(
                "server: upgrade to {} on {} (key {:?}, protocol {:?})",
                upgrade.path(),
                upgrade.host(),
                upgrade.key(),
                protocol
            );
            let accept = Accept::new().with_protocol(protocol);
            upgrade
                .accept(&accept, out)
                .expect("the buffer holds a 101")
        }
        Ok(Status::Partial) => unreachable!("every request here is complete"),
        Err(error) => {
            println!("server: refused: {error}");
            error
                .rejection()
                .write(out)
                .expect("the buffer holds a rejection")
        }
    }
}

fn main() {
    // The client: a URL and a fresh nonce (from the application's RNG; fixed here).
    let url = Url::parse("ws://localhost:9001/chat?room=rust").expect("a valid URL");
    println!(
        "client: connect to {}:{} (tls: {})",
        url.host(),
        url.port(),
        url.is_tls()
    );
    let client = ClientHandshake::new(*b"the sample nonce");
    let request = url
        .request()
        .with_protocols(&["chat", "superchat"])
        .with_headers(&[("Origin", b"http://localhost")]);
    let mut wire = [0u8; 1024];
    let n = client
        .write_request(&request, &mut wire)
        .expect("the buffer holds the request");
    show("client request", &wire[..n]);

    // The server answers.
    let mut reply = [0u8; 1024];
    let m = serve(&wire[..n], &mut reply);
    show("server response", &reply[..m]);

    // The client checks the answer.
    let mut headers = [EMPTY_HEADER; 32];
    match client.parse_response(&request, &reply[..m], &mut headers) {
        Ok(Status::Complete(Response::Accepted(accepted))) => println!(
            "client: connected, protocol {:?}, {} bytes of handshake\n",
            accepted.protocol(),
            accepted.consumed()
        ),
        other => println!("client: failed: {other:?}\n"),
    }

    // Two requests the server turns down.
    let plain = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    show("plain HTTP request", plain);
    let m = serve(plain, &mut reply);
    show("server response", &reply[..m]);
    println!();

    let old = b"GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Version: 8\r\n\r\n";
    show("request with version 8", old);
    let m = serve(old, &mut reply);
    show("server response", &reply[..m]);
}
