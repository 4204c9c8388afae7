//! Both roles of the negotiation (RFC 7692 §5, §7.1): the server answers an offer, the
//! client writes its offer and checks the answer. Header values are written into a
//! fixed-size [`ExtensionHeader`], so nothing allocates.

use core::fmt;

use super::parse::{parse_item, DeflateOffer, ExtensionError, Side};
use super::{
    clamp_window_bits, DeflateConfig, DeflateParams, MAX_WINDOW_BITS, MIN_WINDOW_BITS,
    PERMESSAGE_DEFLATE,
};

/// The longest value written: the name and all four parameters with two-digit values.
const CAPACITY: usize = 128;

/// One `Sec-WebSocket-Extensions` value for permessage-deflate, held inline (an offer
/// from [`DeflateConfig::offer`] or an answer from [`DeflateParams::answer`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtensionHeader {
    buf: [u8; CAPACITY],
    len: usize,
}

impl ExtensionHeader {
    fn new() -> Self {
        let mut header = ExtensionHeader {
            buf: [0; CAPACITY],
            len: 0,
        };
        header.push(PERMESSAGE_DEFLATE);
        header
    }

    fn push(&mut self, s: &str) {
        // Everything pushed fits by construction (see CAPACITY); were it not to, the
        // value would be cut at a parameter boundary rather than panic.
        let end = self.len + s.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
        }
    }

    fn param(&mut self, name: &str) {
        self.push("; ");
        self.push(name);
    }

    fn param_bits(&mut self, name: &str, bits: u8) {
        self.param(name);
        self.push("=");
        let digits = [b'0' + bits / 10, b'0' + bits % 10];
        let digits = if bits >= 10 {
            &digits[..]
        } else {
            &digits[1..]
        };
        self.push(core::str::from_utf8(digits).unwrap_or_default());
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever pushed.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Display for ExtensionHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ExtensionHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl AsRef<str> for ExtensionHeader {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Whether `bits` is a window size RFC 7692 allows.
const fn valid_bits(bits: u8) -> bool {
    MIN_WINDOW_BITS <= bits && bits <= MAX_WINDOW_BITS
}

impl DeflateParams {
    /// The server's `Sec-WebSocket-Extensions` answer stating these parameters. A window
    /// size of 15 is left out (its absence means 15); so `client_max_window_bits` is
    /// written only when it limits the client, which [`negotiate`] does only for an offer
    /// that holds it (Firefox fails the connection otherwise). `None` if a window size is
    /// outside 8–15.
    ///
    /// ```
    /// use sockeye_proto::DeflateParams;
    ///
    /// let params = DeflateParams { server_no_context_takeover: true, ..DeflateParams::BARE };
    /// let answer = params.answer().unwrap();
    /// assert_eq!(answer.as_str(), "permessage-deflate; server_no_context_takeover");
    /// ```
    pub fn answer(&self) -> Option<ExtensionHeader> {
        self.answer_stating(false)
    }

    /// [`answer`](Self::answer), stating `server_max_window_bits` even at 15 when
    /// `state_server_window` (the client asked for it: RFC 7692 §7.1.2.1 lets any answer
    /// state it, and a client that asked may insist on seeing it, as Python `websockets`
    /// does).
    pub fn answer_stating(&self, state_server_window: bool) -> Option<ExtensionHeader> {
        if !valid_bits(self.server_max_window_bits) || !valid_bits(self.client_max_window_bits) {
            return None;
        }
        let mut header = ExtensionHeader::new();
        if self.server_no_context_takeover {
            header.param("server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            header.param("client_no_context_takeover");
        }
        if self.server_max_window_bits < MAX_WINDOW_BITS || state_server_window {
            header.param_bits("server_max_window_bits", self.server_max_window_bits);
        }
        if self.client_max_window_bits < MAX_WINDOW_BITS {
            header.param_bits("client_max_window_bits", self.client_max_window_bits);
        }
        Some(header)
    }
}

/// Server: the answer to the first of `offers` (extension list items, such as
/// [`UpgradeRequest::extensions`](crate::handshake::UpgradeRequest::extensions)) that
/// `config` can honour; items naming other extensions and invalid offers are skipped.
/// `None`: no permessage-deflate.
///
/// An offer is honoured with `config`'s limits: the server's window is the smaller of
/// the offer's `server_max_window_bits` and [`DeflateConfig::compress_window_bits`]; the
/// client's window is limited to [`DeflateConfig::decompress_window_bits`] only when the
/// offer holds `client_max_window_bits` (an offer without it, when the config needs a
/// window below 15, cannot be honoured); `server_no_context_takeover` is granted when
/// asked or when this end does not keep its context, `client_no_context_takeover` when
/// the client announces it or this end does not keep a window for it.
///
/// ```
/// use sockeye_proto::extension::negotiate;
/// use sockeye_proto::{DeflateConfig, DeflateParams};
///
/// // Chrome's offer, and this end's default policy (no context takeover either way).
/// let offers = ["permessage-deflate; client_max_window_bits"];
/// let params = negotiate(offers, &DeflateConfig::default()).unwrap();
/// assert_eq!(
///     params.answer().unwrap().as_str(),
///     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
/// );
///
/// // A small inflate window needs `client_max_window_bits` in the offer: Firefox's bare
/// // offer cannot be honoured, the next one can.
/// let small = DeflateConfig { decompress_window_bits: 10, ..DeflateConfig::default() };
/// let offers = ["permessage-deflate", "permessage-deflate; client_max_window_bits"];
/// assert_eq!(negotiate(offers, &small).unwrap().client_max_window_bits, 10);
/// ```
pub fn negotiate<'a>(
    offers: impl IntoIterator<Item = &'a str>,
    config: &DeflateConfig,
) -> Option<DeflateParams> {
    super::parse::deflate_offers(offers)
        .filter_map(Result::ok)
        .find_map(|offer| honour(&offer, config))
}

/// The answer to one valid offer under `config`, if it can be honoured.
pub(crate) fn honour(offer: &DeflateOffer, config: &DeflateConfig) -> Option<DeflateParams> {
    let compress = clamp_window_bits(config.compress_window_bits);
    let decompress = clamp_window_bits(config.decompress_window_bits);
    let client_max_window_bits = match offer.client_max_window_bits {
        // The client cannot be limited, and it would use up to 15 bits.
        None if decompress < MAX_WINDOW_BITS => return None,
        None => MAX_WINDOW_BITS,
        Some(offered) => offered.unwrap_or(MAX_WINDOW_BITS).min(decompress),
    };
    Some(DeflateParams {
        server_no_context_takeover: offer.server_no_context_takeover
            || !config.compress_context_takeover,
        client_no_context_takeover: offer.client_no_context_takeover
            || !config.decompress_context_takeover,
        server_max_window_bits: offer
            .server_max_window_bits
            .unwrap_or(MAX_WINDOW_BITS)
            .min(compress),
        client_max_window_bits,
    })
}

impl DeflateConfig {
    /// Server: the answer to the first of `offers` this policy can honour (see
    /// [`negotiate`]).
    pub fn negotiate<'a>(
        &self,
        offers: impl IntoIterator<Item = &'a str>,
    ) -> Option<DeflateParams> {
        negotiate(offers, self)
    }

    /// Client: the offer to send. A bare `permessage-deflate` without
    /// [`offer_parameters`](Self::offer_parameters); otherwise
    /// `client_max_window_bits` (with this end's window when below 15, so the server may
    /// answer with a smaller one), `server_max_window_bits` when this end inflates with
    /// less than 15 bits, and each `*_no_context_takeover` this policy wants.
    ///
    /// ```
    /// use sockeye_proto::DeflateConfig;
    ///
    /// assert_eq!(
    ///     DeflateConfig::default().offer().as_str(),
    ///     "permessage-deflate; client_max_window_bits; server_no_context_takeover; \
    ///      client_no_context_takeover"
    /// );
    /// let bare = DeflateConfig::default().with_bare_offer();
    /// assert_eq!(bare.offer().as_str(), "permessage-deflate");
    /// ```
    pub fn offer(&self) -> ExtensionHeader {
        let mut header = ExtensionHeader::new();
        if !self.offer_parameters {
            return header;
        }
        let compress = clamp_window_bits(self.compress_window_bits);
        let decompress = clamp_window_bits(self.decompress_window_bits);
        if compress < MAX_WINDOW_BITS {
            header.param_bits("client_max_window_bits", compress);
        } else {
            header.param("client_max_window_bits");
        }
        if decompress < MAX_WINDOW_BITS {
            header.param_bits("server_max_window_bits", decompress);
        }
        if !self.decompress_context_takeover {
            header.param("server_no_context_takeover");
        }
        if !self.compress_context_takeover {
            header.param("client_no_context_takeover");
        }
        header
    }

    /// Client: checks the server's answer `item` (one extension list item naming
    /// permessage-deflate) against the [`offer`](Self::offer) this policy made, and
    /// returns the agreed parameters.
    ///
    /// ```
    /// use sockeye_proto::extension::ExtensionError;
    /// use sockeye_proto::DeflateConfig;
    ///
    /// let config = DeflateConfig::default();
    /// let params = config
    ///     .check_answer("permessage-deflate; server_no_context_takeover; client_max_window_bits=12")
    ///     .unwrap();
    /// assert_eq!(params.client_max_window_bits, 12);
    /// // The offer asked for `server_no_context_takeover`.
    /// assert_eq!(
    ///     config.check_answer("permessage-deflate"),
    ///     Err(ExtensionError::MissingServerNoContextTakeover)
    /// );
    /// ```
    pub fn check_answer(&self, item: &str) -> Result<DeflateParams, ExtensionError> {
        // Another extension's name is no answer to this offer.
        let answer = parse_item(item, Side::Answer).ok_or(ExtensionError::Syntax)??;
        let params = DeflateParams {
            server_no_context_takeover: answer.server_no_context_takeover,
            client_no_context_takeover: answer.client_no_context_takeover,
            server_max_window_bits: answer.server_max_window_bits.unwrap_or(MAX_WINDOW_BITS),
            client_max_window_bits: answer
                .client_max_window_bits
                .flatten()
                .unwrap_or(MAX_WINDOW_BITS),
        };
        if !self.offer_parameters {
            // A bare offer lets the server choose anything but the client's window.
            if answer.client_max_window_bits.is_some() {
                return Err(ExtensionError::ClientWindowBitsNotOffered);
            }
            return Ok(params);
        }
        // Without it the server inflates with 15 bits, whatever this end compresses with.
        if answer.client_max_window_bits.is_some()
            && params.client_max_window_bits > clamp_window_bits(self.compress_window_bits)
        {
            return Err(ExtensionError::ClientWindowTooLarge);
        }
        if params.server_max_window_bits > clamp_window_bits(self.decompress_window_bits) {
            return Err(ExtensionError::ServerWindowTooLarge);
        }
        if !self.decompress_context_takeover && !params.server_no_context_takeover {
            return Err(ExtensionError::MissingServerNoContextTakeover);
        }
        Ok(params)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    const TAKEOVER: DeflateConfig = DeflateConfig::DEFAULT.with_context_takeover(15);

    fn answer(offers: &[&str], config: &DeflateConfig) -> Option<std::string::String> {
        negotiate(offers.iter().copied(), config).map(|p| p.answer().unwrap().as_str().into())
    }

    #[test]
    fn the_server_answers_browsers() {
        let chrome = ["permessage-deflate; client_max_window_bits"];
        let firefox = ["permessage-deflate"];
        assert_eq!(
            answer(&chrome, &TAKEOVER).as_deref(),
            Some("permessage-deflate")
        );
        assert_eq!(
            answer(&firefox, &TAKEOVER).as_deref(),
            Some("permessage-deflate")
        );
        let default = DeflateConfig::DEFAULT;
        let both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        assert_eq!(answer(&chrome, &default).as_deref(), Some(both));
        assert_eq!(answer(&firefox, &default).as_deref(), Some(both));
    }

    #[test]
    fn negotiation_rules() {
        let small = |compress, decompress| DeflateConfig {
            compress_window_bits: compress,
            decompress_window_bits: decompress,
            ..TAKEOVER
        };
        for (offers, config, expected) in [
            // The offered server window, or this end's if smaller.
            (
                &["permessage-deflate; server_max_window_bits=10"][..],
                small(15, 15),
                Some("permessage-deflate; server_max_window_bits=10"),
            ),
            (
                &["permessage-deflate; server_max_window_bits=12"],
                small(9, 15),
                Some("permessage-deflate; server_max_window_bits=9"),
            ),
            // Stated even when not offered, when smaller than 15.
            (
                &["permessage-deflate"],
                small(11, 15),
                Some("permessage-deflate; server_max_window_bits=11"),
            ),
            // The client's window: only if offered, at most this end's.
            (
                &["permessage-deflate; client_max_window_bits"],
                small(15, 10),
                Some("permessage-deflate; client_max_window_bits=10"),
            ),
            (
                &["permessage-deflate; client_max_window_bits=9"],
                small(15, 10),
                Some("permessage-deflate; client_max_window_bits=9"),
            ),
            (
                &["permessage-deflate; client_max_window_bits=12"],
                small(15, 15),
                Some("permessage-deflate; client_max_window_bits=12"),
            ),
            // A bare offer cannot be limited: declined.
            (&["permessage-deflate"], small(15, 10), None),
            // Takeover: what the offer asks, and what this end wants.
            (
                &["permessage-deflate; server_no_context_takeover; client_no_context_takeover"],
                TAKEOVER,
                Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            ),
            (
                &["permessage-deflate"],
                DeflateConfig {
                    compress_context_takeover: false,
                    ..TAKEOVER
                },
                Some("permessage-deflate; server_no_context_takeover"),
            ),
            (
                &["permessage-deflate"],
                DeflateConfig {
                    decompress_context_takeover: false,
                    ..TAKEOVER
                },
                Some("permessage-deflate; client_no_context_takeover"),
            ),
            // Invalid and unknown offers are skipped; the first that can be honoured wins.
            (
                &[
                    "x-foo",
                    "permessage-deflate; bogus",
                    "permessage-deflate; server_max_window_bits=8",
                    "permessage-deflate",
                ],
                TAKEOVER,
                Some("permessage-deflate; server_max_window_bits=8"),
            ),
            (
                &[
                    "permessage-deflate",
                    "permessage-deflate; client_max_window_bits=\"11\"",
                ],
                small(15, 12),
                Some("permessage-deflate; client_max_window_bits=11"),
            ),
            (&["x-foo"], TAKEOVER, None),
            (&[], TAKEOVER, None),
        ] {
            assert_eq!(
                answer(offers, &config).as_deref(),
                expected,
                "{offers:?} {config:?}"
            );
        }
    }

    #[test]
    fn out_of_range_policies_are_clamped() {
        let wild = DeflateConfig {
            compress_window_bits: 99,
            decompress_window_bits: 0,
            ..TAKEOVER
        };
        let params = negotiate(["permessage-deflate; client_max_window_bits"], &wild).unwrap();
        assert_eq!(
            (params.server_max_window_bits, params.client_max_window_bits),
            (15, 8)
        );
        assert_eq!(
            wild.offer().as_str(),
            "permessage-deflate; client_max_window_bits; server_max_window_bits=8"
        );
        let bad = DeflateParams {
            client_max_window_bits: 7,
            ..DeflateParams::BARE
        };
        assert_eq!(bad.answer(), None);
    }

    #[test]
    fn the_client_offers_its_policy() {
        let config = DeflateConfig {
            compress_window_bits: 9,
            decompress_window_bits: 10,
            ..DeflateConfig::DEFAULT
        };
        let offer = config.offer();
        assert_eq!(
            offer.as_str(),
            "permessage-deflate; client_max_window_bits=9; server_max_window_bits=10; \
             server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(std::format!("{offer}"), offer.as_str());
        assert_eq!(
            std::format!("{offer:?}"),
            std::format!("{:?}", offer.as_str())
        );
        assert_eq!(
            TAKEOVER.offer().as_str(),
            "permessage-deflate; client_max_window_bits"
        );
        // The longest value fits.
        let longest = DeflateParams {
            server_no_context_takeover: true,
            client_no_context_takeover: true,
            server_max_window_bits: 10,
            client_max_window_bits: 12,
        };
        let text = longest.answer().unwrap();
        assert!(text.as_str().ends_with("client_max_window_bits=12"));
        assert_eq!(text.as_str().len(), CAPACITY);
    }

    #[test]
    fn the_client_checks_the_answer() {
        use ExtensionError::*;
        let config = DeflateConfig {
            compress_window_bits: 12,
            decompress_window_bits: 10,
            ..DeflateConfig::DEFAULT
        };
        let ok = config.check_answer(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; \
             client_max_window_bits=11; client_no_context_takeover",
        );
        assert_eq!(
            ok,
            Ok(DeflateParams {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 9,
                client_max_window_bits: 11,
            })
        );
        for (item, error) in [
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=11",
                ServerWindowTooLarge,
            ),
            (
                "permessage-deflate; server_no_context_takeover",
                ServerWindowTooLarge,
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
                 client_max_window_bits=13",
                ClientWindowTooLarge,
            ),
            (
                "permessage-deflate; server_max_window_bits=10",
                MissingServerNoContextTakeover,
            ),
            (
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; \
                 client_max_window_bits",
                MissingValue,
            ),
            ("permessage-deflate; x=1", UnknownParameter),
            ("x-foo", Syntax),
        ] {
            assert_eq!(config.check_answer(item), Err(error), "{item}");
        }

        // A bare offer: any valid answer, but no client window.
        let bare = DeflateConfig::DEFAULT.with_bare_offer();
        assert_eq!(
            bare.check_answer("permessage-deflate; server_max_window_bits=8")
                .map(|p| p.server_max_window_bits),
            Ok(8)
        );
        assert_eq!(
            bare.check_answer("permessage-deflate; client_max_window_bits=15"),
            Err(ClientWindowBitsNotOffered)
        );
    }

    #[test]
    fn both_ends_agree_on_what_the_answer_says() {
        for compress in 8..=15 {
            for decompress in [8, 12, 15] {
                for takeover in [false, true] {
                    let config = DeflateConfig {
                        compress_window_bits: compress,
                        decompress_window_bits: decompress,
                        compress_context_takeover: takeover,
                        decompress_context_takeover: takeover,
                        ..DeflateConfig::DEFAULT
                    };
                    let offer = config.offer();
                    let server = negotiate([offer.as_str()], &TAKEOVER).unwrap();
                    let client = config.check_answer(server.answer().unwrap().as_str());
                    assert_eq!(client, Ok(server), "{config:?}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_policy_pair_agrees_or_declines(
            c in (8u8..=15, 8u8..=15, proptest::bool::ANY, proptest::bool::ANY, proptest::bool::ANY),
            s in (0u8..=20, 0u8..=20, proptest::bool::ANY, proptest::bool::ANY),
        ) {
            let client = DeflateConfig {
                compress_window_bits: c.0,
                decompress_window_bits: c.1,
                compress_context_takeover: c.2,
                decompress_context_takeover: c.3,
                offer_parameters: c.4,
                ..DeflateConfig::DEFAULT
            };
            let server = DeflateConfig {
                compress_window_bits: s.0,
                decompress_window_bits: s.1,
                compress_context_takeover: s.2,
                decompress_context_takeover: s.3,
                ..DeflateConfig::DEFAULT
            };
            let offer = client.offer();
            if let Some(params) = negotiate([offer.as_str()], &server) {
                let answer = params.answer().unwrap();
                proptest::prop_assert_eq!(client.check_answer(answer.as_str()), Ok(params));
                // Never more than the server itself allows.
                proptest::prop_assert!(
                    params.client_max_window_bits <= clamp_window_bits(server.decompress_window_bits)
                );
                proptest::prop_assert!(
                    params.server_max_window_bits <= clamp_window_bits(server.compress_window_bits)
                );
            } else {
                // Declined only when the server needs to limit a client that cannot be.
                proptest::prop_assert!(!c.4 && clamp_window_bits(s.1) < MAX_WINDOW_BITS);
            }
        }
    }
}
