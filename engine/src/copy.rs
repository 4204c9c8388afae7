//! Payload copies in pieces of at most [`PIECE`] bytes.
//!
//! `memcpy` switches to `rep movsb` for copies of a few KiB and more (glibc: from 2 KiB
//! or more, depending on the CPU), and on AMD Zen processors `rep movsb` is 10-20 times
//! slower when the destination lies a power of two plus a few bytes away from the
//! source. A payload copied out of a read buffer into a message buffer is typically just
//! that: two large, page-aligned allocations, the payload a 2-14 byte header into one of
//! them. On the bench machine (AMD EPYC, glibc 2.36) 64 KiB copied to a destination 14
//! bytes off took 27 µs in one call and 1.4 µs in 2 KiB pieces, the same as an aligned
//! copy; the 64 KiB text echo spent a quarter of the server's time in that one copy.
//! Pieces this small take `memcpy`'s vector loop, which has no such cliff, and cost
//! nothing measurable where there is none.

use std::string::String;
use std::vec::Vec;

/// Below every `rep movsb` threshold we know of.
const PIECE: usize = 2048;

/// `dst.copy_from_slice(src)`, piece by piece.
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    for (to, from) in dst.chunks_mut(PIECE).zip(src.chunks(PIECE)) {
        to.copy_from_slice(from);
    }
}

/// `vec.extend_from_slice(src)`, piece by piece.
pub(crate) fn extend(vec: &mut Vec<u8>, src: &[u8]) {
    vec.reserve(src.len());
    for piece in src.chunks(PIECE) {
        vec.extend_from_slice(piece);
    }
}

/// `string.push_str(text)`, piece by piece (cut at character boundaries).
pub(crate) fn push_str(string: &mut String, mut text: &str) {
    string.reserve(text.len());
    while text.len() > PIECE {
        let mut cut = PIECE;
        // A character is at most 4 bytes, so this steps back at most 3 times.
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let (piece, rest) = text.split_at(cut);
        string.push_str(piece);
        text = rest;
    }
    string.push_str(text);
}

/// `buf.copy_within(from, 0)`, piece by piece: each piece moves down to where the pieces
/// before it went, below what is still to move, so nothing is overwritten before it
/// is read.
pub(crate) fn move_to_front(buf: &mut [u8], from: core::ops::Range<usize>) {
    let mut to = 0;
    let mut at = from.start;
    while at < from.end {
        let n = (from.end - at).min(PIECE);
        buf.copy_within(at..at + n, to);
        to += n;
        at += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 131 + i / 251) as u8).collect()
    }

    #[test]
    fn each_copy_equals_the_plain_one() {
        for len in [0, 1, PIECE - 1, PIECE, PIECE + 1, 3 * PIECE + 17, 70_000] {
            let src = sample(len);
            let mut dst = vec![0u8; len];
            copy(&mut dst, &src);
            assert_eq!(dst, src);

            let mut vec = vec![9u8; 5];
            extend(&mut vec, &src);
            assert_eq!(&vec[..5], &[9; 5]);
            assert_eq!(&vec[5..], &src[..]);

            for start in [0, 1, 14, PIECE - 1, PIECE + 3] {
                let mut buf = sample(start + len + 9);
                let expected = buf[start..start + len].to_vec();
                move_to_front(&mut buf, start..start + len);
                assert_eq!(&buf[..len], &expected[..], "len {len} start {start}");
            }
        }
    }

    #[test]
    fn text_is_cut_only_between_characters() {
        for filler in ["a", "é", "€", "𝄞", "aé€𝄞"] {
            for len in [PIECE - 3, PIECE + 1, 5 * PIECE + 2] {
                let text: String = filler.chars().cycle().take(len).collect();
                let mut string = String::from("<");
                push_str(&mut string, &text);
                assert_eq!(string[1..], text[..]);
            }
        }
    }
}
