//! The whole scenario suite again, every adapter behind a [`FaultProxy`]: each byte
//! stream arrives in random short pieces with random pauses (short reads, `WouldBlock`
//! in the middle of a frame or a head), both ways, for servers and clients alike. The
//! scenarios' expectations do not change: a transport that misbehaves this way loses
//! nothing.
//!
//! The faults come from one seed, `SOCKEYE_FAULT_SEED` (a number) or a fixed default,
//! so a failure replays: `SOCKEYE_FAULT_SEED=N cargo test -p sockeye-tests --test
//! scenarios faulted::`.

use sockeye_tests::{FaultProxy, Faults};

use crate::suite::*;

/// An adapter whose servers and clients talk through a [`FaultProxy`].
#[derive(Clone, Copy, Debug)]
pub struct Faulted<A>(pub A);

fn faults() -> Faults {
    let seed = std::env::var("SOCKEYE_FAULT_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or(0x5EED_FA17);
    Faults::from_seed(seed)
}

impl<A: Adapter> Adapter for Faulted<A> {
    fn start_deciding_server(
        &self,
        settings: Settings,
        decide: Option<Decide>,
        script: Script,
    ) -> Server {
        self.0
            .start_deciding_server(settings, decide, script)
            .behind_proxy(faults())
    }

    fn run_client(&self, url: &str, settings: Settings, script: Script) -> ClientResult {
        // `ws://HOST:PORT/path`: the proxy goes in front of HOST:PORT.
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// URL");
        let target = authority.parse().expect("an IP address and port");
        let proxy = FaultProxy::start(target, faults()).expect("the fault proxy starts");
        let url = url.replacen(authority, &proxy.addr().to_string(), 1);
        self.0.run_client(&url, settings, script)
    }
}

/// Every scenario but the two backpressure ones, which time how soon the sender stops
/// while nobody reads: through the proxy's pieces and pauses the pipe fills more slowly
/// than their timing assumes (what they check holds; the flood scenarios check the
/// bound itself).
macro_rules! faulted_scenarios {
    ($adapter:expr) => {
        $crate::scenario_tests!($adapter;
            server_rejects_bad_requests_and_keeps_serving,
            server_echoes_every_size,
            server_fragmentation_with_interleaved_ping,
            server_ping_pong,
            server_close_from_client,
            server_close_from_server,
            server_half_close,
            server_peer_never_closes,
            server_abrupt_eof,
            server_protocol_error,
            server_keepalive_silent_peer,
            server_keepalive_answered,
            client_echoes_every_size,
            client_rejected_with_status,
            client_bad_accept_key,
            client_fragmentation_with_interleaved_ping,
            client_close_from_server,
            client_close_from_client,
            client_peer_never_closes,
            client_abrupt_eof,
            client_protocol_error,
            client_keepalive_silent_peer,
            server_ping_flood_from_a_peer_that_never_reads,
            server_data_flood_from_a_peer_that_never_reads,
            server_frames_after_the_peers_close_are_dropped,
            server_tiny_fragments_hit_the_message_limit,
            server_empty_continuations_hold_nothing,
            server_an_announced_giant_frame_is_refused_from_its_header,
            server_a_frame_that_never_completes_is_timed_out,
            server_verdicts_answer_every_request,
            server_try_feed_fills_without_waiting,
        );
    };
}

mod tokio {
    faulted_scenarios!(super::Faulted(crate::tokio::Tokio));
}

mod smol {
    faulted_scenarios!(super::Faulted(crate::smol::Smol));
}

mod mio {
    faulted_scenarios!(super::Faulted(crate::mio::Mio));
}
