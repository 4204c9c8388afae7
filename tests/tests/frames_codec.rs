//! The frame layer from outside: header round trips over arbitrary fields, partial
//! headers, the RFC 6455 §5.7 examples through a connection, client masking, and the size
//! of a `Connection`.

use proptest::prelude::*;
use sockeye_proto::frame::{apply_mask, Header, OpCode, MAX_HEADER_LEN};
use sockeye_proto::{Config, Connection, DataKind, Instant, Role, Status};
use sockeye_tests::{Endpoint, Entry, Frame, Length};

fn opcode() -> impl Strategy<Value = OpCode> {
    prop_oneof![
        Just(OpCode::Continuation),
        Just(OpCode::Text),
        Just(OpCode::Binary),
        Just(OpCode::Close),
        Just(OpCode::Ping),
        Just(OpCode::Pong),
    ]
}

fn length() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=130,
        0xFF00u64..=0x1_0100,
        0u64..(1 << 63),
        Just((1 << 63) - 1)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn headers_round_trip(
        fin in any::<bool>(),
        rsv in 0u8..8,
        opcode in opcode(),
        mask in proptest::option::of(any::<[u8; 4]>()),
        payload_len in length(),
        trailing in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let header = Header { fin, rsv, opcode, mask, payload_len };
        let mut buf = [0u8; MAX_HEADER_LEN];
        let n = header.encode(&mut buf).unwrap();
        prop_assert_eq!(n, header.encoded_len());
        prop_assert_eq!(&header.head()[..], &buf[..n]);
        let mut input = buf[..n].to_vec();
        input.extend_from_slice(&trailing);
        prop_assert_eq!(Header::decode(&input), Ok(Status::Complete((header, n))));
        for cut in 0..n {
            prop_assert_eq!(Header::decode(&buf[..cut]), Ok(Status::Partial));
        }
    }

    #[test]
    fn decode_never_claims_more_than_its_input(bytes in proptest::collection::vec(any::<u8>(), 0..20)) {
        if let Ok(Status::Complete((header, n))) = Header::decode(&bytes) {
            prop_assert!(n <= bytes.len() && (2..=MAX_HEADER_LEN).contains(&n));
            // A non-minimal length form decodes to the same header as the minimal one.
            let mut again = [0u8; MAX_HEADER_LEN];
            let m = header.encode(&mut again).unwrap();
            prop_assert!(m <= n);
            prop_assert_eq!(Header::decode(&again[..m]), Ok(Status::Complete((header, m))));
        }
    }

    #[test]
    fn masking_in_pieces_equals_masking_whole(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        key in any::<[u8; 4]>(),
        cuts in proptest::collection::vec(0usize..600, 0..8),
    ) {
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for (i, b) in whole.iter().enumerate() {
            prop_assert_eq!(*b, data[i] ^ key[i % 4]);
        }
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.push(0);
        cuts.push(data.len());
        cuts.sort_unstable();
        let mut pieces = data.clone();
        for w in cuts.windows(2) {
            apply_mask(&mut pieces[w[0]..w[1]], key, w[0]);
        }
        prop_assert_eq!(pieces, whole);
    }
}

/// RFC 6455 §5.7, byte for byte.
#[test]
fn rfc_6455_examples_through_a_connection() {
    let cases: [(Role, &[u8], Entry); 6] = [
        // A single-frame unmasked text message, to a client.
        (
            Role::Client,
            &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            Entry::text("Hello"),
        ),
        // A single-frame masked text message, to a server.
        (
            Role::Server,
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
            Entry::text("Hello"),
        ),
        // A fragmented unmasked text message.
        (
            Role::Client,
            &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
            Entry::text("Hello"),
        ),
        // Unmasked Ping with "Hello", to a client.
        (
            Role::Client,
            &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            Entry::ping(b"Hello"),
        ),
        // Masked Pong with "Hello", to a server.
        (
            Role::Server,
            &[
                0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ],
            Entry::pong(b"Hello"),
        ),
        // 256 bytes binary in a single unmasked frame.
        (
            Role::Client,
            &[0x82, 0x7E, 0x01, 0x00],
            Entry::binary(&[0; 256]),
        ),
    ];
    for (role, bytes, expected) in cases {
        let mut input = bytes.to_vec();
        if let Entry::Binary(payload) = &expected {
            input.extend_from_slice(payload);
        }
        let mut endpoint = Endpoint::new(role, Config::default(), Instant::ZERO);
        endpoint.receive(&input, Instant::ZERO);
        assert_eq!(
            endpoint.transcript().entries(),
            &[expected],
            "{role:?} {bytes:02x?}"
        );
    }
    // 64 KiB binary in a single unmasked frame.
    let mut input = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0];
    input.extend(std::iter::repeat_n(0x42, 65536));
    let mut client = Endpoint::new(Role::Client, Config::default(), Instant::ZERO);
    client.receive(&input, Instant::ZERO);
    assert_eq!(
        client.transcript().messages(),
        vec![Entry::binary(&[0x42; 65536])]
    );
    // What our own encoder writes for the same messages.
    assert_eq!(
        Frame::text("Hello").encode(),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    assert_eq!(
        Frame::binary(&[0; 256]).length(Length::Shortest).encode()[..4],
        [0x82, 0x7E, 0x01, 0x00]
    );
}

#[test]
fn a_server_sends_unmasked_frames_in_the_shortest_form() {
    let mut server = Connection::server(Config::default(), Instant::ZERO);
    for (len, head) in [
        (0usize, vec![0x82, 0x00]),
        (125, vec![0x82, 125]),
        (126, vec![0x82, 126, 0, 126]),
        (65535, vec![0x82, 126, 0xFF, 0xFF]),
        (65536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
    ] {
        let mut payload = vec![9u8; len];
        let got = server.send(DataKind::Binary, true, &mut payload).unwrap();
        assert_eq!(&got[..], &head[..], "{len}");
        assert!(payload.iter().all(|&b| b == 9), "a server never masks");
    }
    let mut payload = *b"ab";
    assert_eq!(
        &server.send(DataKind::Text, false, &mut payload).unwrap()[..],
        [0x01, 2]
    );
    assert_eq!(
        &server.send(DataKind::Text, true, &mut payload).unwrap()[..],
        [0x80, 2]
    );
}

#[test]
fn clients_mask_every_frame_with_fresh_keys() {
    let mut client = Connection::new(Role::Client, Config::default(), [42; 32], Instant::ZERO);
    let mut keys = std::collections::HashSet::new();
    for i in 0..1000 {
        let mut payload = *b"same payload";
        let head = client.send(DataKind::Binary, true, &mut payload).unwrap();
        let (header, n) = Header::decode(&head).unwrap().complete().unwrap();
        assert_eq!(n, head.len());
        let key = header.mask.expect("client frames are masked");
        apply_mask(&mut payload, key, 0);
        assert_eq!(&payload, b"same payload");
        keys.insert(key);
        assert!(keys.len() as u32 + 2 >= i, "repeating keys");
    }
    // Another seed, other keys.
    let mut other = Connection::new(Role::Client, Config::default(), [43; 32], Instant::ZERO);
    let head = other.send(DataKind::Binary, true, &mut [0u8; 1]).unwrap();
    let key = Header::decode(&head)
        .unwrap()
        .complete()
        .unwrap()
        .0
        .mask
        .unwrap();
    assert!(!keys.contains(&key) || keys.len() < 1000);
}

/// The size of a `Connection`, printed (run with `--nocapture`) and held under a
/// budget so growth is noticed: every idle connection holds one. More than half of it is
/// inline storage by design: the two 125-byte control slots (the Pong's keeps the peer's
/// Close once it arrived), then the masking keys' seed and a few keys.
#[test]
fn size_of_connection() {
    let size = core::mem::size_of::<Connection>();
    eprintln!("size_of::<Connection>() = {size} bytes");
    assert!(size <= 464, "Connection grew to {size} bytes");
}
