//! The frame header codec and masking.
//!
//! Invariants checked on every input:
//! - `Header::decode` never claims more bytes than it was given, claims exactly what the
//!   first two bytes announce, and reads every field from its bits;
//! - it says `Partial` exactly when the announced header is longer than the input, and
//!   for every prefix of a complete header;
//! - errors are only a reserved opcode or a 64-bit length with the top bit set, and
//!   exactly when the bits say so;
//! - a decoded header re-encodes (shortest form) and decodes back to itself; when the
//!   input used the shortest form, the bytes are identical;
//! - masking the rest of the input in two pieces (phase carried) equals masking it
//!   bytewise, and masking twice restores it.

use sockeye_proto::frame::{apply_mask, Header, OpCode, MAX_HEADER_LEN};
use sockeye_proto::{ProtocolError, Status};

/// The header length the first two bytes announce.
fn announced_len(first_two: [u8; 2]) -> usize {
    let len_bytes = match first_two[1] & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if first_two[1] & 0x80 != 0 { 4 } else { 0 };
    2 + len_bytes + mask
}

/// Decodes `data` as a frame header and checks the codec's invariants.
pub fn frame_header(data: &[u8]) {
    match Header::decode(data) {
        Ok(Status::Partial) => {
            if let [a, b, ..] = *data {
                assert!(
                    data.len() < announced_len([a, b]),
                    "partial with a whole header"
                );
            }
        }
        Ok(Status::Complete((header, n))) => check_complete(data, header, n),
        Err(ProtocolError::ReservedOpcode(op)) => {
            assert_eq!(op, data[0] & 0x0F);
            assert!(OpCode::from_bits(op).is_err());
        }
        Err(ProtocolError::InvalidLength) => {
            assert_eq!(data[1] & 0x7F, 127);
            assert!(data.len() >= 10 && data[2] & 0x80 != 0);
        }
        Err(other) => panic!("unexpected decode error {other:?}"),
    }
    masking(data);
}

fn check_complete(data: &[u8], header: Header, n: usize) {
    assert!(n <= data.len(), "claimed {n} of {} bytes", data.len());
    assert!((2..=MAX_HEADER_LEN).contains(&n));
    assert_eq!(n, announced_len([data[0], data[1]]));
    assert_eq!(header.fin, data[0] & 0x80 != 0);
    assert_eq!(header.rsv, (data[0] >> 4) & 7);
    assert_eq!(header.opcode.bits(), data[0] & 0x0F);
    assert_eq!(header.mask.is_some(), data[1] & 0x80 != 0);
    if let Some(key) = header.mask {
        assert_eq!(key, data[n - 4..n]);
    }
    assert!(header.payload_len < 1 << 63);
    for cut in 0..n {
        assert_eq!(
            Header::decode(&data[..cut]),
            Ok(Status::Partial),
            "prefix {cut}"
        );
    }
    // Re-encode in the shortest form and decode again.
    let mut again = [0u8; MAX_HEADER_LEN];
    let m = header.encode(&mut again).expect("a header fits 14 bytes");
    assert_eq!(m, header.encoded_len());
    assert!(m <= n);
    assert_eq!(
        Header::decode(&again[..m]),
        Ok(Status::Complete((header, m)))
    );
    assert_eq!(&header.head()[..], &again[..m]);
    let shortest = match data[1] & 0x7F {
        126 => header.payload_len > 125,
        127 => header.payload_len > 0xFFFF,
        _ => true,
    };
    if shortest {
        assert_eq!(&again[..m], &data[..n], "shortest-form bytes differ");
    } else {
        assert!(m < n);
    }
}

fn masking(data: &[u8]) {
    let Some((key, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let key = *key;
    let offset = usize::from(key[0] % 8);
    let split = if rest.is_empty() {
        0
    } else {
        usize::from(key[1]) % (rest.len() + 1)
    };
    let mut fast = rest.to_vec();
    let (a, b) = fast.split_at_mut(split);
    apply_mask(a, key, offset);
    apply_mask(b, key, offset + split);
    for (i, (&masked, &plain)) in fast.iter().zip(rest).enumerate() {
        assert_eq!(masked, plain ^ key[(offset + i) % 4], "byte {i}");
    }
    apply_mask(&mut fast, key, offset);
    assert_eq!(fast, rest);
}
