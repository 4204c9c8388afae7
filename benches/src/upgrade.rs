//! The HTTP upgrade of the peer servers that have none of their own.

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A boxed error, as the peer servers report them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTP upgrade fastwebsockets leaves to the application (or to hyper, with
/// its `upgrade` feature), and the floor's: the same exchange without hyper. The
/// request is read into a heap buffer freed before the echo loop starts, so the
/// handshake adds nothing to the memory an idle connection keeps. `Ok(false)`:
/// the peer left.
pub async fn plain_upgrade(stream: &mut TcpStream) -> Result<bool, BoxError> {
    Ok(upgrade(stream, false).await?.is_some())
}

/// The answer to a permessage-deflate offer of the floor: no context takeover either
/// way, so that each client message is a whole deflate stream, valid as an echo.
const DEFLATE_ANSWER: &[u8] = b"Sec-WebSocket-Extensions: permessage-deflate; \
    server_no_context_takeover; client_no_context_takeover\r\n";

/// [`plain_upgrade`], also accepting a permessage-deflate offer when `accept_deflate`
/// (the floor's, in the compressed scenarios). `None`: the peer left; else whether
/// compression was agreed.
pub async fn upgrade(
    stream: &mut TcpStream,
    accept_deflate: bool,
) -> Result<Option<bool>, BoxError> {
    let mut head = Vec::with_capacity(1024);
    loop {
        if stream.read_buf(&mut head).await? == 0 {
            return Ok(None);
        }
        if let Some(end) = crate::ws::head_end(&head) {
            if end != head.len() {
                return Err("bytes after the request head".into());
            }
            break;
        }
        if head.len() > 8192 {
            return Err("request head too large".into());
        }
    }
    let mut response = crate::ws::server_response(&head)?;
    let offer = b"permessage-deflate";
    let deflate = accept_deflate
        && head
            .windows(offer.len())
            .any(|w| w.eq_ignore_ascii_case(offer));
    if deflate {
        // In the head, before the blank line that ends it.
        response.truncate(response.len() - 2);
        response.extend_from_slice(DEFLATE_ANSWER);
        response.extend_from_slice(b"\r\n");
    }
    stream.write_all(&response).await?;
    Ok(Some(deflate))
}
