//! permessage-deflate (RFC 7692): what one end is willing to agree to
//! ([`DeflateConfig`]) and what both ends agreed ([`DeflateParams`]).
//!
//! Negotiation needs no allocator and is always available; compressing and inflating
//! messages needs the `deflate` feature.
//!
//! - Parsing: [`DeflateOffer::parse`] reads one `Sec-WebSocket-Extensions` list item,
//!   [`deflate_offers`] every permessage-deflate offer among a request's items.
//! - Server: [`negotiate`] answers the first offer a [`DeflateConfig`] can honour, and
//!   [`DeflateParams::answer`] writes the answer.
//! - Client: [`DeflateConfig::offer`] writes the offer and
//!   [`DeflateConfig::check_answer`] checks the server's answer against it.
//!
//! The handshake does all of it when asked to:
//! [`ClientRequest::with_deflate`](crate::handshake::ClientRequest::with_deflate) and
//! [`Accept::with_deflate`](crate::handshake::Accept::with_deflate).

use crate::connection::Role;

mod negotiate;
mod parse;

pub use negotiate::{negotiate, ExtensionHeader};
pub use parse::{deflate_offers, DeflateOffer, DeflateOffers, ExtensionError};

/// The extension's registered name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// The smallest LZ77 window RFC 7692 allows (256 bytes).
pub const MIN_WINDOW_BITS: u8 = 8;
/// The largest LZ77 window RFC 7692 allows (32 KiB), and the default.
pub const MAX_WINDOW_BITS: u8 = 15;

/// What this end is willing to agree to, in either role.
///
/// The server answers the first offer it can honour with these limits; the client offers
/// them and checks the server's answer against them.
///
/// The default keeps **no compression state between messages** in either direction
/// (`no_context_takeover` both ways): an idle connection holds nothing for compression,
/// and the working state exists only while a message is compressed or inflated. Context
/// takeover compresses small, similar messages better, at the cost of a window per
/// direction kept for the life of the connection (see
/// [`with_context_takeover`](Self::with_context_takeover)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeflateConfig {
    /// The largest window (8–15 bits) this end compresses with. A smaller window uses
    /// less memory while compressing and compresses less.
    pub compress_window_bits: u8,
    /// The largest window (8–15 bits) this end accepts from the peer: the memory the
    /// inflater needs. Below 15 the server asks for it with `client_max_window_bits`
    /// (and declines an offer that does not allow it), the client with
    /// `server_max_window_bits`.
    pub decompress_window_bits: u8,
    /// Whether this end keeps its compression context from one message to the next.
    /// `false` announces `server_no_context_takeover` (server) or
    /// `client_no_context_takeover` (client).
    pub compress_context_takeover: bool,
    /// Whether this end lets the peer keep its context between messages (and so keeps a
    /// window for it). `false` asks for `client_no_context_takeover` (server) or
    /// `server_no_context_takeover` (client).
    pub decompress_context_takeover: bool,
    /// The compression level, 0 (store only) to 9 (smallest output, slowest).
    pub level: u8,
    /// Messages shorter than this many bytes are sent uncompressed: compressing them
    /// costs more CPU than it saves bytes.
    pub threshold: usize,
    /// Client only: send the offer's parameters. `false` offers a bare
    /// `permessage-deflate` (some gateways refuse any parameter), and then the client
    /// accepts whatever valid answer the server gives.
    pub offer_parameters: bool,
}

impl DeflateConfig {
    /// No context takeover either way, 15-bit windows, level 1, 256-byte threshold.
    pub const DEFAULT: DeflateConfig = DeflateConfig {
        compress_window_bits: MAX_WINDOW_BITS,
        decompress_window_bits: MAX_WINDOW_BITS,
        compress_context_takeover: false,
        decompress_context_takeover: false,
        level: 1,
        threshold: 256,
        offer_parameters: true,
    };

    /// Context takeover both ways with `window_bits` windows (clamped to 8–15): better
    /// compression of small similar messages, for a window per direction kept per
    /// connection (2^`window_bits` bytes each).
    pub const fn with_context_takeover(mut self, window_bits: u8) -> Self {
        let bits = clamp_window_bits(window_bits);
        self.compress_window_bits = bits;
        self.decompress_window_bits = bits;
        self.compress_context_takeover = true;
        self.decompress_context_takeover = true;
        self
    }

    /// With this compression level (clamped to 0–9).
    pub const fn with_level(mut self, level: u8) -> Self {
        self.level = if level > 9 { 9 } else { level };
        self
    }

    /// With this threshold: shorter messages go uncompressed.
    pub const fn with_threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// Client only: offer a bare `permessage-deflate`, with no parameters.
    pub const fn with_bare_offer(mut self) -> Self {
        self.offer_parameters = false;
        self
    }
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig::DEFAULT
    }
}

/// `bits` within 8–15.
pub(crate) const fn clamp_window_bits(bits: u8) -> u8 {
    if bits < MIN_WINDOW_BITS {
        MIN_WINDOW_BITS
    } else if bits > MAX_WINDOW_BITS {
        MAX_WINDOW_BITS
    } else {
        bits
    }
}

/// The parameters both ends agreed, as the server's answer states them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeflateParams {
    /// The server starts every message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty window.
    pub client_no_context_takeover: bool,
    /// The server's largest window (8–15; 15 when the answer does not say).
    pub server_max_window_bits: u8,
    /// The client's largest window (8–15; 15 when the answer does not say).
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    /// No parameters: 15-bit windows and context takeover both ways.
    pub const BARE: DeflateParams = DeflateParams {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: MAX_WINDOW_BITS,
        client_max_window_bits: MAX_WINDOW_BITS,
    };

    /// How `role` compresses what it sends.
    pub const fn outgoing(&self, role: Role) -> Direction {
        match role {
            Role::Server => Direction {
                window_bits: self.server_max_window_bits,
                context_takeover: !self.server_no_context_takeover,
            },
            Role::Client => Direction {
                window_bits: self.client_max_window_bits,
                context_takeover: !self.client_no_context_takeover,
            },
        }
    }

    /// How the peer of `role` compresses what `role` receives.
    pub const fn incoming(&self, role: Role) -> Direction {
        match role {
            Role::Server => self.outgoing(Role::Client),
            Role::Client => self.outgoing(Role::Server),
        }
    }
}

/// One direction of an agreed permessage-deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Direction {
    /// The largest LZ77 window the sender may use (8–15 bits).
    pub window_bits: u8,
    /// Whether the sender keeps its context between messages (so the receiver must keep
    /// its window too).
    pub context_takeover: bool,
}
