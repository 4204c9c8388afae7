//! Payload masking (RFC 6455 §5.3), in place and safe.

/// XORs `buf` with the masking `key`, where `buf[0]` is byte `offset` of the payload.
///
/// Masking is its own inverse, so this both masks and unmasks. `offset` carries the key
/// phase across chunks: unmasking a payload in pieces gives the same bytes as in one go.
///
/// The bulk runs over 8-byte words in a loop the compiler vectorizes; no `unsafe`.
///
/// ```
/// use sockeye_proto::frame::apply_mask;
/// let key = [0x37, 0xfa, 0x21, 0x3d];
/// let mut data = *b"Hello";
/// apply_mask(&mut data, key, 0);
/// assert_eq!(data, [0x7f, 0x9f, 0x4d, 0x51, 0x58]); // RFC 6455 §5.7
/// apply_mask(&mut data[..2], key, 0);
/// apply_mask(&mut data[2..], key, 2);
/// assert_eq!(&data, b"Hello");
/// ```
#[inline]
pub fn apply_mask(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let phase = offset % 4;
    let rotated = [
        key[phase],
        key[(phase + 1) % 4],
        key[(phase + 2) % 4],
        key[(phase + 3) % 4],
    ];
    if buf.len() < 32 {
        mask_bytes(buf, rotated);
        return;
    }
    let word = u32::from_ne_bytes(rotated);
    let wide = u64::from(word) | (u64::from(word) << 32);
    // 8-byte words keep the key phase (8 is a multiple of 4), so no realignment is needed.
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    mask_bytes(chunks.into_remainder(), rotated);
}

#[inline]
fn mask_bytes(buf: &mut [u8], key: [u8; 4]) {
    for (byte, k) in buf.iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(buf: &mut [u8], key: [u8; 4], offset: usize) {
        for (i, byte) in buf.iter_mut().enumerate() {
            *byte ^= key[(offset + i) % 4];
        }
    }

    #[test]
    fn matches_bytewise_reference_at_every_length_and_offset() {
        let key = [0xA1, 0x5C, 0x03, 0xF0];
        let source: [u8; 300] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        for start in 0..8 {
            for len in 0..(source.len() - start) {
                for offset in 0..5 {
                    let mut fast = source;
                    let mut slow = source;
                    apply_mask(&mut fast[start..start + len], key, offset);
                    reference(&mut slow[start..start + len], key, offset);
                    assert_eq!(fast, slow, "start {start} len {len} offset {offset}");
                }
            }
        }
    }

    #[test]
    fn chunked_equals_whole() {
        let key = [1, 2, 3, 250];
        let source: [u8; 200] = core::array::from_fn(|i| i as u8);
        let mut whole = source;
        apply_mask(&mut whole, key, 0);
        for split in 0..source.len() {
            let mut parts = source;
            let (a, b) = parts.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(parts, whole, "split {split}");
        }
    }
}
