//! Every protocol error the peer can commit, with the close code that goes on the wire.
//!
//! Each case feeds bytes to a fresh connection of one role and checks: the error is the
//! terminal report (`Closed::Failed`), exactly one Close frame went out carrying the
//! error's code and reason, then `Transmit::Shutdown`, and nothing more is processed.

use sockeye_proto::frame::OpCode;
use sockeye_proto::{
    CloseCode, Closed, Config, DataKind, Instant, ProtocolError, Role, MIN_INPUT_BUFFER,
};
use sockeye_tests::wire::{stream, Length};
use sockeye_tests::{Endpoint, Entry, Frame};

fn peer(role: Role) -> Role {
    match role {
        Role::Client => Role::Server,
        Role::Server => Role::Client,
    }
}

/// Feeds `bytes` to a fresh `role` endpoint (in one read, and byte by byte) and checks the
/// failure and the Close on the wire. Returns the endpoint (of the whole-read run).
fn fails(role: Role, config: Config, bytes: &[u8], error: ProtocolError, code: u16) -> Endpoint {
    assert_eq!(error.close_code(), CloseCode(code), "{error:?}");
    let mut result = None;
    for byte_by_byte in [false, true] {
        let mut endpoint = Endpoint::new(role, config, Instant::ZERO).read_buffer(MIN_INPUT_BUFFER);
        if byte_by_byte {
            for b in bytes {
                endpoint.receive(std::slice::from_ref(b), Instant::ZERO);
            }
        } else {
            endpoint.receive(bytes, Instant::ZERO);
        }
        let label = format!("{role:?} {error:?} byte_by_byte={byte_by_byte}");
        assert_eq!(endpoint.outcome(), Some(Closed::Failed(error)), "{label}");
        assert_eq!(
            endpoint.connection().outcome(),
            Some(Closed::Failed(error)),
            "{label}"
        );
        let frames = endpoint.sent_frames();
        let close = frames
            .last()
            .unwrap_or_else(|| panic!("{label}: no Close sent"));
        assert_eq!(close.opcode, OpCode::Close, "{label}");
        assert_eq!(close.close_code(), Some(CloseCode(code)), "{label}");
        assert_eq!(close.close_reason(), error.as_str(), "{label}");
        assert_eq!(close.mask.is_some(), role == Role::Client, "{label}");
        assert_eq!(
            frames.iter().filter(|f| f.opcode == OpCode::Close).count(),
            1
        );
        assert!(endpoint.shutdown_sent(), "{label}");
        assert_eq!(endpoint.connection().poll_timeout(), None, "{label}");
        // Nothing after the failure is processed.
        let more = stream(&[
            Frame::text("x").from_role(peer(role)),
            Frame::ping(b"y").from_role(peer(role)),
        ]);
        let seen = endpoint.transcript().len();
        endpoint.receive(&more, Instant::ZERO);
        endpoint.eof(Instant::ZERO);
        assert_eq!(endpoint.transcript().len(), seen, "{label}");
        assert_eq!(endpoint.sent_frames().len(), frames.len(), "{label}");
        result = Some(endpoint);
    }
    result.unwrap()
}

fn both_roles(frame: Frame, error: ProtocolError, code: u16) {
    for role in [Role::Server, Role::Client] {
        let bytes = frame.clone().from_role(peer(role)).encode();
        fails(role, Config::default(), &bytes, error, code);
    }
}

#[test]
fn unmasked_frame_to_a_server() {
    for frame in [Frame::text("hi"), Frame::ping(b""), Frame::close(1000, "")] {
        fails(
            Role::Server,
            Config::default(),
            &frame.encode(),
            ProtocolError::UnmaskedFrame,
            1002,
        );
    }
}

#[test]
fn masked_frame_to_a_client() {
    for frame in [Frame::text("hi"), Frame::pong(b""), Frame::close(1000, "")] {
        let bytes = frame.masked([1, 2, 3, 4]).encode();
        fails(
            Role::Client,
            Config::default(),
            &bytes,
            ProtocolError::MaskedFrame,
            1002,
        );
    }
}

#[test]
fn reserved_bits() {
    for rsv in 1..8 {
        both_roles(Frame::text("x").rsv(rsv), ProtocolError::ReservedBits, 1002);
        both_roles(Frame::ping(b"").rsv(rsv), ProtocolError::ReservedBits, 1002);
    }
}

#[test]
fn reserved_opcodes() {
    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        both_roles(
            Frame::new(op, b"??"),
            ProtocolError::ReservedOpcode(op),
            1002,
        );
    }
}

#[test]
fn fragmented_control_frames() {
    for op in [0x8, 0x9, 0xA] {
        both_roles(
            Frame::new(op, b"").fin(false),
            ProtocolError::FragmentedControlFrame,
            1002,
        );
    }
}

#[test]
fn control_frames_over_125_bytes() {
    for op in [0x8, 0x9, 0xA] {
        let mut payload = vec![b'a'; 126];
        payload[..2].copy_from_slice(&1000u16.to_be_bytes());
        both_roles(
            Frame::new(op, &payload),
            ProtocolError::ControlFrameTooLong,
            1002,
        );
        // Refused from the header alone, whatever length form.
        let head = &Frame::new(op, &payload)
            .length(Length::Raw64(1 << 40))
            .from_role(Role::Client)
            .encode()[..14];
        fails(
            Role::Server,
            Config::default(),
            head,
            ProtocolError::ControlFrameTooLong,
            1002,
        );
    }
}

#[test]
fn continuation_without_a_start() {
    both_roles(
        Frame::continuation(b"x"),
        ProtocolError::UnexpectedContinuation,
        1002,
    );
    // Also right after a message ended.
    for role in [Role::Server, Role::Client] {
        let bytes = stream(&[
            Frame::text("a").fin(false).from_role(peer(role)),
            Frame::continuation(b"b").from_role(peer(role)),
            Frame::continuation(b"c").from_role(peer(role)),
        ]);
        let endpoint = fails(
            role,
            Config::default(),
            &bytes,
            ProtocolError::UnexpectedContinuation,
            1002,
        );
        assert_eq!(endpoint.transcript().messages(), vec![Entry::text("ab")]);
    }
}

#[test]
fn new_message_inside_a_fragmented_one() {
    for role in [Role::Server, Role::Client] {
        for second in [
            Frame::text("b"),
            Frame::binary(b"b"),
            Frame::text("b").fin(false),
        ] {
            let bytes = stream(&[
                Frame::binary(b"a").fin(false).from_role(peer(role)),
                Frame::ping(b"ok").from_role(peer(role)),
                second.from_role(peer(role)),
            ]);
            let endpoint = fails(
                role,
                Config::default(),
                &bytes,
                ProtocolError::ExpectedContinuation,
                1002,
            );
            assert_eq!(endpoint.transcript().entries()[0], Entry::ping(b"ok"));
        }
    }
}

#[test]
fn length_with_the_top_bit_set() {
    for raw in [1u64 << 63, u64::MAX] {
        for op in [0x1, 0x2, 0x9] {
            both_roles(
                Frame::new(op, b"").length(Length::Raw64(raw)),
                ProtocolError::InvalidLength,
                1002,
            );
        }
    }
}

#[test]
fn frame_over_max_frame_size_is_refused_before_its_payload() {
    let config = Config::default().with_max_frame_size(1000);
    for role in [Role::Server, Role::Client] {
        for len in [1001usize, 65536, 1 << 20] {
            let frame = Frame::binary(&vec![0; len]).from_role(peer(role)).encode();
            // Only the header: the refusal needs no payload byte.
            let header_len = frame.len() - len;
            fails(
                role,
                config,
                &frame[..header_len],
                ProtocolError::FrameTooLarge,
                1009,
            );
        }
        // A lying 64-bit length near 2^63.
        let bytes = Frame::binary(b"")
            .length(Length::Raw64((1 << 63) - 1))
            .from_role(peer(role))
            .encode();
        fails(
            role,
            Config::default(),
            &bytes,
            ProtocolError::FrameTooLarge,
            1009,
        );
    }
    // The default limit is 16 MiB.
    let head = Frame::binary(b"")
        .length(Length::Raw64((16 << 20) + 1))
        .from_role(Role::Client)
        .encode();
    fails(
        Role::Server,
        Config::default(),
        &head,
        ProtocolError::FrameTooLarge,
        1009,
    );
}

#[test]
fn message_over_max_message_size() {
    let config = Config::default()
        .with_max_frame_size(100)
        .with_max_message_size(250);
    for role in [Role::Server, Role::Client] {
        let p = peer(role);
        let bytes = stream(&[
            Frame::binary(&[1; 100]).fin(false).from_role(p),
            Frame::continuation(&[2; 100]).fin(false).from_role(p),
            Frame::continuation(&[3; 100]).from_role(p),
        ]);
        // Refused at the header of the frame that crosses the limit.
        let header = 2 + if p == Role::Client { 4 } else { 0 };
        let header_of_third = 2 * (header + 100) + header;
        fails(
            role,
            config,
            &bytes[..header_of_third],
            ProtocolError::MessageTooLarge,
            1009,
        );
        // Whole messages under the limit reset the count.
        let ok = stream(&[
            Frame::binary(&[1; 100]).fin(false).from_role(p),
            Frame::continuation(&[2; 100]).from_role(p),
            Frame::binary(&[3; 100]).fin(false).from_role(p),
            Frame::continuation(&[4; 100]).from_role(p),
        ]);
        let mut endpoint = Endpoint::new(role, config, Instant::ZERO);
        endpoint.receive(&ok, Instant::ZERO);
        assert_eq!(endpoint.transcript().messages().len(), 2);
        assert_eq!(endpoint.outcome(), None);
    }
}

#[test]
fn invalid_utf8_fails_fast_in_the_first_fragment() {
    for role in [Role::Server, Role::Client] {
        let p = peer(role);
        // A first fragment with an invalid byte; the message never ends.
        let bytes = Frame::text_bytes(b"ok \xff")
            .fin(false)
            .from_role(p)
            .encode();
        fails(
            role,
            Config::default(),
            &bytes,
            ProtocolError::InvalidUtf8,
            1007,
        );
        // Inside a long frame: refused before the frame is complete.
        let mut payload = vec![b'a'; 10_000];
        payload[100] = 0xC0;
        let frame = Frame::text_bytes(&payload).from_role(p).encode();
        let endpoint = fails(
            role,
            Config::default(),
            &frame[..frame.len() - 5000],
            ProtocolError::InvalidUtf8,
            1007,
        );
        assert!(endpoint.tally().message_bytes < 10_000);
        // A sequence that can never complete (beyond U+10FFFF, a surrogate), cut right
        // after its second byte.
        for bad in [&b"\xf4\x90"[..], b"\xed\xa0", b"\xe0\x80"] {
            let bytes = Frame::text_bytes(bad).fin(false).from_role(p).encode();
            fails(
                role,
                Config::default(),
                &bytes,
                ProtocolError::InvalidUtf8,
                1007,
            );
        }
        // In a continuation, after a valid first fragment.
        let bytes = stream(&[
            Frame::text("fine").fin(false).from_role(p),
            Frame::continuation(b"\x80").fin(false).from_role(p),
        ]);
        fails(
            role,
            Config::default(),
            &bytes,
            ProtocolError::InvalidUtf8,
            1007,
        );
        // A character left incomplete at the end of the message.
        let bytes = stream(&[
            Frame::text_bytes(b"\xe2\x82").fin(false).from_role(p),
            Frame::continuation(b"").from_role(p),
        ]);
        fails(
            role,
            Config::default(),
            &bytes,
            ProtocolError::InvalidUtf8,
            1007,
        );
        let bytes = Frame::text_bytes(b"abc\xf0\x9d\x84").from_role(p).encode();
        fails(
            role,
            Config::default(),
            &bytes,
            ProtocolError::InvalidUtf8,
            1007,
        );
    }
}

#[test]
fn a_character_split_across_frames_is_fine() {
    for role in [Role::Server, Role::Client] {
        let p = peer(role);
        let clef = "𝄞".as_bytes();
        let bytes = stream(&[
            Frame::text_bytes(&clef[..1]).fin(false).from_role(p),
            Frame::ping(b"in between").from_role(p),
            Frame::continuation(&clef[1..3]).fin(false).from_role(p),
            Frame::continuation(b"").fin(false).from_role(p),
            Frame::continuation(&clef[3..]).from_role(p),
        ]);
        for buffer in [MIN_INPUT_BUFFER, 4096] {
            let mut endpoint =
                Endpoint::new(role, Config::default(), Instant::ZERO).read_buffer(buffer);
            for b in &bytes {
                endpoint.receive(std::slice::from_ref(b), Instant::ZERO);
            }
            assert_eq!(
                endpoint.transcript().entries(),
                &[Entry::ping(b"in between"), Entry::text("𝄞")]
            );
        }
    }
}

#[test]
fn binary_is_never_checked_for_utf8() {
    let bytes = Frame::binary(b"\xff\xfe").from_role(Role::Client).encode();
    let mut server = Endpoint::new(Role::Server, Config::default(), Instant::ZERO);
    server.receive(&bytes, Instant::ZERO);
    assert_eq!(
        server.transcript().messages(),
        vec![Entry::binary(b"\xff\xfe")]
    );
}

#[test]
fn invalid_utf8_in_a_close_reason() {
    both_roles(
        Frame::close_raw(b"\x03\xe8bad \xff"),
        ProtocolError::InvalidUtf8,
        1007,
    );
    both_roles(
        Frame::close_raw(b"\x03\xe8\xe2\x82"),
        ProtocolError::InvalidUtf8,
        1007,
    );
}

#[test]
fn one_byte_close_payload() {
    both_roles(
        Frame::close_raw(b"\x03"),
        ProtocolError::CloseFrameTooShort,
        1002,
    );
}

#[test]
fn invalid_close_codes() {
    for code in [
        0u16, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        both_roles(
            Frame::close(code, ""),
            ProtocolError::InvalidCloseCode(code),
            1002,
        );
    }
    // Every valid code passes.
    for code in (1000..=1003)
        .chain(1007..=1014)
        .chain([3000, 3999, 4000, 4999])
    {
        let mut server = Endpoint::new(Role::Server, Config::default(), Instant::ZERO);
        server.receive(
            &Frame::close(code, "ok").from_role(Role::Client).encode(),
            Instant::ZERO,
        );
        assert_eq!(
            server.transcript().close(),
            Some((Some(CloseCode(code)), "ok"))
        );
        assert!(server.outcome().unwrap().is_clean());
    }
}

#[test]
fn a_protocol_error_after_our_close_sends_no_second_close() {
    let mut server = Endpoint::new(Role::Server, Config::default(), Instant::ZERO);
    server
        .close(CloseCode::NORMAL, "bye", Instant::ZERO)
        .unwrap();
    server.receive(&Frame::text("x").encode(), Instant::ZERO);
    assert_eq!(
        server.outcome(),
        Some(Closed::Failed(ProtocolError::UnmaskedFrame))
    );
    let frames = server.sent_frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].close_code(), Some(CloseCode::NORMAL));
    assert!(server.shutdown_sent());
}

#[test]
fn a_protocol_error_after_good_messages_keeps_them() {
    let bytes = stream(&[
        Frame::text("one").from_role(Role::Client),
        Frame::binary(b"two").from_role(Role::Client),
        Frame::text("three").rsv(4).from_role(Role::Client),
    ]);
    let endpoint = fails(
        Role::Server,
        Config::default(),
        &bytes,
        ProtocolError::ReservedBits,
        1002,
    );
    assert_eq!(
        endpoint.transcript().entries(),
        &[
            Entry::text("one"),
            Entry::binary(b"two"),
            Entry::Closed(Closed::Failed(ProtocolError::ReservedBits)),
        ]
    );
    let _ = DataKind::Text;
}
