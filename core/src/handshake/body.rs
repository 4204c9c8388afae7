//! The body of a server's rejection: how long it is (RFC 9112 §6.3) and how to undo
//! chunked transfer coding (RFC 9112 §7.1), without allocating.
//!
//! A server that turns an upgrade down often says why in the body (`401` with a JSON
//! error, `503` with a maintenance page). A client that wants it asks
//! [`Rejected::body_length`](super::Rejected::body_length) how the body is delimited,
//! then reads that many bytes, decodes chunks with a [`ChunkedDecoder`], or reads until
//! the server closes.
//!
//! ```
//! use sockeye_proto::handshake::body::{BodyLength, ChunkedDecoder};
//!
//! let mut decoder = ChunkedDecoder::new();
//! let mut body = Vec::new();
//! // The input may end anywhere; what was not used is offered again with more bytes.
//! let used = decoder.decode(b"5\r\nhello\r\n6;lang=en\r\n world\r\n0\r\n", |piece| {
//!     body.extend_from_slice(piece)
//! })?;
//! // All 32 bytes are used, but the empty line that ends the body has not come yet.
//! assert_eq!((used, decoder.is_done()), (32, false));
//! decoder.decode(b"\r\n", |piece| body.extend_from_slice(piece))?;
//! assert!(decoder.is_done());
//! assert_eq!(body, b"hello world");
//! # Ok::<(), sockeye_proto::handshake::body::BodyError>(())
//! ```

use core::fmt;

use super::{item_name, Header, RawItems, TokenList};

/// How the body of a response to the upgrade `GET` is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyLength {
    /// No body: a `204` or `304` answer.
    Empty,
    /// Exactly this many bytes (`Content-Length`).
    Bytes(u64),
    /// Chunked transfer coding: decode it with a [`ChunkedDecoder`].
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// Why a response's body cannot be delimited or decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BodyError {
    /// `Content-Length` is not a number, or its values disagree.
    InvalidContentLength,
    /// A chunk's size line is malformed, or a chunk does not end with a line break.
    MalformedChunk,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BodyError::InvalidContentLength => "invalid Content-Length",
            BodyError::MalformedChunk => "malformed chunked body",
        })
    }
}

impl core::error::Error for BodyError {}

/// How the body of a response with this `status` and these `headers` is delimited
/// (RFC 9112 §6.3, for a response to a `GET`).
///
/// `Transfer-Encoding` wins over `Content-Length`; a transfer coding that does not end
/// in `chunked` is read until close. Several `Content-Length` values (lines or list
/// items) must agree.
///
/// ```
/// use sockeye_proto::handshake::body::{body_length, BodyLength};
/// use sockeye_proto::handshake::Header;
///
/// let json = [Header { name: "Content-Length", value: b"17" }];
/// assert_eq!(body_length(401, &json), Ok(BodyLength::Bytes(17)));
/// let chunked = [Header { name: "Transfer-Encoding", value: b"gzip, chunked" }];
/// assert_eq!(body_length(503, &chunked), Ok(BodyLength::Chunked));
/// assert_eq!(body_length(204, &json), Ok(BodyLength::Empty));
/// assert_eq!(body_length(403, &[]), Ok(BodyLength::UntilClose));
/// ```
pub fn body_length(status: u16, headers: &[Header<'_>]) -> Result<BodyLength, BodyError> {
    if matches!(status, 100..=199 | 204 | 304) {
        return Ok(BodyLength::Empty);
    }
    let mut codings = TokenList::new(headers, "Transfer-Encoding").peekable();
    if codings.peek().is_some() {
        let last = codings.last().map(item_name).unwrap_or_default();
        return Ok(if last.eq_ignore_ascii_case("chunked") {
            BodyLength::Chunked
        } else {
            BodyLength::UntilClose
        });
    }
    let mut length = None;
    for header in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("Content-Length"))
    {
        let mut items = RawItems::new(header.value).peekable();
        if items.peek().is_none() {
            return Err(BodyError::InvalidContentLength);
        }
        for item in items {
            let parsed = parse_length(item).ok_or(BodyError::InvalidContentLength)?;
            if length.is_some_and(|earlier| earlier != parsed) {
                return Err(BodyError::InvalidContentLength);
            }
            length = Some(parsed);
        }
    }
    Ok(length.map_or(BodyLength::UntilClose, BodyLength::Bytes))
}

/// A decimal length: ASCII digits only, no sign, no overflow.
fn parse_length(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &digit| {
        if !digit.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

/// Undoes chunked transfer coding incrementally: feed it the body's bytes in pieces of
/// any size, and it hands out the data inside the chunks. Chunk extensions and trailer
/// fields are skipped. Lines end in CRLF, as `httparse` (which reads the size lines)
/// requires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, with this many bytes to go.
    Data(u64),
    /// After a chunk's data: expecting its line break.
    DataEnd,
    /// After the last chunk: skipping trailer lines up to the empty one.
    Trailers,
    /// The body has ended.
    Done,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub const fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
        }
    }

    /// Whether the last chunk and the trailer section have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes what it can of `input`, passing each run of chunk data to `data`, and
    /// returns how many bytes of `input` it used. It stops at the end of the body, or
    /// where `input` ends inside a line it needs whole: offer the unused bytes again,
    /// followed by more.
    pub fn decode<'i>(
        &mut self,
        input: &'i [u8],
        mut data: impl FnMut(&'i [u8]),
    ) -> Result<usize, BodyError> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                ChunkState::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((line, size))) => {
                        used += line;
                        self.state = if size == 0 {
                            ChunkState::Trailers
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => return Ok(used),
                    Err(_) => return Err(BodyError::MalformedChunk),
                },
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(used);
                    }
                    let take =
                        usize::try_from(left).map_or(rest.len(), |left| left.min(rest.len()));
                    data(&rest[..take]);
                    used += take;
                    // `take` is at most `left`, so this cannot wrap.
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        used += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok(used),
                    _ => return Err(BodyError::MalformedChunk),
                },
                ChunkState::Trailers => match rest.iter().position(|&b| b == b'\n') {
                    Some(end) => {
                        let line = &rest[..end];
                        used += end + 1;
                        if line.is_empty() || line == b"\r" {
                            self.state = ChunkState::Done;
                        }
                    }
                    None => return Ok(used),
                },
                ChunkState::Done => return Ok(used),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    extern crate std;
    use std::vec::Vec;

    fn header<'a>(name: &'a str, value: &'a [u8]) -> Header<'a> {
        Header { name, value }
    }

    /// Decodes `wire` fed in the given piece sizes (cycled), re-offering unused bytes as
    /// a caller must; returns the data and whether the decoder finished.
    fn decode_in_pieces(wire: &[u8], sizes: &[usize]) -> Result<(Vec<u8>, bool), BodyError> {
        let mut decoder = ChunkedDecoder::new();
        let mut body = Vec::new();
        let (mut start, mut end) = (0, 0);
        for size in sizes.iter().cycle() {
            end = (end + size.max(&1)).min(wire.len());
            start += decoder.decode(&wire[start..end], |piece| body.extend_from_slice(piece))?;
            if decoder.is_done() || end == wire.len() {
                break;
            }
        }
        start += decoder.decode(&wire[start..end], |piece| body.extend_from_slice(piece))?;
        assert!(start <= end);
        Ok((body, decoder.is_done()))
    }

    #[test]
    fn lengths_follow_rfc_9112() {
        let cl = |v: &'static [u8]| [header("Content-Length", v)];
        assert_eq!(body_length(200, &cl(b"0")), Ok(BodyLength::Bytes(0)));
        assert_eq!(body_length(403, &cl(b" 42 ")), Ok(BodyLength::Bytes(42)));
        assert_eq!(body_length(403, &cl(b"7, 7")), Ok(BodyLength::Bytes(7)));
        for bad in [
            &b"7, 8"[..],
            b"-1",
            b"+3",
            b"0x10",
            b"",
            b" , ",
            b"\xff",
            b"99999999999999999999",
            b"1 2",
        ] {
            assert_eq!(
                body_length(403, &cl(bad)),
                Err(BodyError::InvalidContentLength),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
        let two = [
            header("Content-Length", b"3"),
            header("content-length", b"4"),
        ];
        assert_eq!(body_length(403, &two), Err(BodyError::InvalidContentLength));
        for status in [100, 199, 204, 304] {
            assert_eq!(body_length(status, &cl(b"5")), Ok(BodyLength::Empty));
        }
        assert_eq!(body_length(500, &[]), Ok(BodyLength::UntilClose));
    }

    #[test]
    fn transfer_encoding_wins_and_only_a_final_chunked_is_chunked() {
        let both = [
            header("Content-Length", b"3"),
            header("Transfer-Encoding", b"Chunked"),
        ];
        assert_eq!(body_length(400, &both), Ok(BodyLength::Chunked));
        let gzip_last = [header("Transfer-Encoding", b"chunked, gzip")];
        assert_eq!(body_length(400, &gzip_last), Ok(BodyLength::UntilClose));
        let split = [
            header("Transfer-Encoding", b"gzip"),
            header("Transfer-Encoding", b"chunked"),
        ];
        assert_eq!(body_length(400, &split), Ok(BodyLength::Chunked));
        // An invalid length does not matter when Transfer-Encoding delimits the body.
        let ignored = [
            header("Transfer-Encoding", b"chunked"),
            header("Content-Length", b"x"),
        ];
        assert_eq!(body_length(400, &ignored), Ok(BodyLength::Chunked));
    }

    #[test]
    fn chunks_with_extensions_and_trailers() {
        let wire = b"4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n";
        let (body, done) = decode_in_pieces(wire, &[wire.len()]).unwrap();
        assert!(done);
        assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
        let mut decoder = ChunkedDecoder::new();
        assert_eq!(decoder.decode(wire, |_| {}), Ok(wire.len()));
        // Nothing after the body is taken.
        assert_eq!(decoder.decode(b"more", |_| {}), Ok(0));
    }

    #[test]
    fn malformed_chunks_are_errors() {
        for wire in [
            &b"zz\r\n"[..],
            b"3\r\nabcX\r\n",
            b"3\r\nabc\r\r",
            b"3\r\nabc\n0\r\n",
            b"-1\r\n",
            b"3\nabc\r\n",
        ] {
            let mut decoder = ChunkedDecoder::new();
            assert_eq!(
                decoder.decode(wire, |_| {}),
                Err(BodyError::MalformedChunk),
                "{:?}",
                core::str::from_utf8(wire)
            );
        }
    }

    #[test]
    fn an_unfinished_body_is_not_done() {
        let (body, done) = decode_in_pieces(b"5\r\nhel", &[2]).unwrap();
        assert_eq!((body.as_slice(), done), (&b"hel"[..], false));
        let (_, done) = decode_in_pieces(b"0\r\nTrailer: x\r\n", &[1]).unwrap();
        assert!(!done);
    }

    fn encode(chunks: &[Vec<u8>], extension: bool) -> Vec<u8> {
        let mut wire = Vec::new();
        for chunk in chunks.iter().filter(|c| !c.is_empty()) {
            wire.extend_from_slice(std::format!("{:x}", chunk.len()).as_bytes());
            if extension {
                wire.extend_from_slice(b";ext=\"v\"");
            }
            wire.extend_from_slice(b"\r\n");
            wire.extend_from_slice(chunk);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
        wire
    }

    proptest! {
        #[test]
        fn any_split_decodes_to_the_same_data(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8),
            extension in any::<bool>(),
            sizes in proptest::collection::vec(1usize..64, 1..6),
        ) {
            let wire = encode(&chunks, extension);
            let (body, done) = decode_in_pieces(&wire, &sizes).unwrap();
            prop_assert!(done);
            prop_assert_eq!(body, chunks.concat());
        }

        #[test]
        fn arbitrary_input_never_panics(wire in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut decoder = ChunkedDecoder::new();
            if let Ok(used) = decoder.decode(&wire, |_| {}) {
                prop_assert!(used <= wire.len());
            }
            let headers = [Header { name: "Content-Length", value: &wire }];
            let _ = body_length(400, &headers);
        }
    }
}
