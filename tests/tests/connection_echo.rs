//! Echo through a client/server pair: every payload size class, small read buffers
//! (frames far larger than the buffer stream through), whole and fragmented messages,
//! odd chunkings of the byte stream.

use sockeye_proto::{Config, DataKind, MIN_INPUT_BUFFER};
use sockeye_tests::{mixed_text, Chunking, Entry, Pair, Side, XorShift};

/// 0, 1, the largest 7-bit length, the smallest 16-bit, the largest 16-bit, the
/// smallest 64-bit, and 1 MiB.
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

fn payload(kind: DataKind, size: usize, seed: u64) -> Entry {
    match kind {
        DataKind::Text => Entry::Text(mixed_text(size, seed)),
        DataKind::Binary => Entry::Binary(XorShift::new(seed).bytes(size)),
    }
}

fn bytes(entry: &Entry) -> &[u8] {
    match entry {
        Entry::Text(text) => text.as_bytes(),
        Entry::Binary(bytes) => bytes,
        other => panic!("not a message: {other:?}"),
    }
}

/// The client sends, the server echoes what it received; both transcripts hold exactly
/// the message.
fn echo(pair: &mut Pair, kind: DataKind, message: &Entry) {
    let before_server = pair.server.transcript().len();
    let before_client = pair.client.transcript().len();
    pair.send(Side::Client, kind, bytes(message)).unwrap();
    pair.flush();
    let got = &pair.server.transcript().entries()[before_server..];
    assert_eq!(got.len(), 1, "server saw {got:?}");
    assert!(got[0] == *message, "server got {}", got[0].summary());
    let echoed = got[0].clone();
    pair.send(Side::Server, kind, bytes(&echoed)).unwrap();
    pair.flush();
    let got = &pair.client.transcript().entries()[before_client..];
    assert_eq!(got.len(), 1, "client saw {got:?}");
    assert!(got[0] == *message, "client got {}", got[0].summary());
}

#[test]
fn echo_every_size_class_with_small_read_buffers() {
    for buffer in [MIN_INPUT_BUFFER, 4096] {
        let mut pair = Pair::builder().read_buffer(buffer).build();
        for (i, size) in SIZES.into_iter().enumerate() {
            for kind in [DataKind::Text, DataKind::Binary] {
                let message = payload(kind, size, i as u64 + 1);
                echo(&mut pair, kind, &message);
            }
        }
        // Memory stayed O(buffer): the 1 MiB messages went through in many reads.
        let calls = pair.server.stats().input_calls;
        assert!(calls as usize > 2 * (1 << 20) / buffer, "{calls} calls");
        assert_eq!(pair.server.read_buffer_size(), buffer);
        assert_eq!(pair.server.outcome(), None);
        assert_eq!(pair.client.outcome(), None);
    }
}

#[test]
fn echo_with_odd_chunkings() {
    let chunkings = [
        Chunking::Fixed(1),
        Chunking::Fixed(3),
        Chunking::Cycle(vec![1, 2, 5, 13, 127, 4000]),
        Chunking::Random { seed: 42, max: 300 },
    ];
    for chunking in chunkings {
        for buffer in [MIN_INPUT_BUFFER, 1000] {
            let mut pair = Pair::builder()
                .read_buffer(buffer)
                .chunking(chunking.clone())
                .build();
            for (i, size) in [0, 1, 125, 126, 3000, 65536].into_iter().enumerate() {
                for kind in [DataKind::Text, DataKind::Binary] {
                    echo(&mut pair, kind, &payload(kind, size, 100 + i as u64));
                }
            }
        }
    }
}

#[test]
fn fragmented_messages_arrive_whole() {
    let text = mixed_text(5000, 9);
    let bytes = text.as_bytes();
    for buffer in [MIN_INPUT_BUFFER, 4096] {
        let mut pair = Pair::builder()
            .read_buffer(buffer)
            .chunking(Chunking::Random { seed: 7, max: 500 })
            .build();
        // Cuts at every kind of place, including inside characters and empty fragments.
        let cuts = [0, 0, 1, 2, 3, 7, 8, 9, 10, 500, 501, 4999, 5000];
        let fragments: Vec<&[u8]> = cuts
            .windows(2)
            .map(|w| &bytes[w[0]..w[1]])
            .chain([&bytes[5000..]])
            .collect();
        pair.send_fragments(Side::Client, DataKind::Text, &fragments)
            .unwrap();
        pair.send_fragments(Side::Client, DataKind::Binary, &fragments)
            .unwrap();
        pair.send_fragments(Side::Server, DataKind::Text, &[b"", b""])
            .unwrap();
        pair.flush();
        assert_eq!(
            pair.server.transcript().messages(),
            vec![Entry::Text(text.clone()), Entry::Binary(bytes.to_vec())]
        );
        assert_eq!(pair.client.transcript().messages(), vec![Entry::text("")]);
    }
}

#[test]
fn control_frames_between_fragments() {
    let mut pair = Pair::builder().read_buffer(MIN_INPUT_BUFFER).build();
    let now = pair.now();
    let client = &mut pair.client;
    client
        .send_frame(DataKind::Text, false, "κόσ".as_bytes())
        .unwrap();
    client.ping(b"mid", now).unwrap();
    client
        .send_frame(DataKind::Text, false, "με".as_bytes())
        .unwrap();
    client.send_frame(DataKind::Text, true, b"!").unwrap();
    pair.flush();
    assert_eq!(
        pair.server.transcript().entries(),
        &[Entry::ping(b"mid"), Entry::text("κόσμε!")]
    );
    // The Pong went back while the message was still in progress.
    assert_eq!(pair.client.transcript().entries(), &[Entry::pong(b"mid")]);
}

#[test]
fn messages_up_to_the_limits_pass() {
    let config = Config::default()
        .with_max_frame_size(1000)
        .with_max_message_size(3000);
    let mut pair = Pair::builder()
        .config(config)
        .read_buffer(MIN_INPUT_BUFFER)
        .build();
    let data = XorShift::new(5).bytes(3000);
    pair.send_fragments(
        Side::Client,
        DataKind::Binary,
        &[&data[..1000], &data[1000..2000], &data[2000..]],
    )
    .unwrap();
    pair.send(Side::Client, DataKind::Binary, &data[..1000])
        .unwrap();
    pair.flush();
    assert_eq!(
        pair.server.transcript().messages(),
        vec![Entry::binary(&data), Entry::binary(&data[..1000])]
    );
    assert_eq!(pair.server.outcome(), None);
}
