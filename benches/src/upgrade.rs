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
    let mut head = Vec::with_capacity(1024);
    loop {
        if stream.read_buf(&mut head).await? == 0 {
            return Ok(false);
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
    let response = crate::ws::server_response(&head)?;
    stream.write_all(&response).await?;
    Ok(true)
}
