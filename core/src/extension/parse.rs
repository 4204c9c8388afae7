//! Reading one `Sec-WebSocket-Extensions` list item as a permessage-deflate offer or
//! answer (RFC 7692 §7, in the grammar of RFC 6455 §9.1).

use core::fmt;

use super::{MAX_WINDOW_BITS, MIN_WINDOW_BITS, PERMESSAGE_DEFLATE};
use crate::handshake::unquoted;
use crate::handshake::write::is_token;

/// Why a permessage-deflate offer or answer cannot be used.
///
/// The first group is about the text itself (an offer with one of these is skipped by
/// the server); the second is the client's checks of the server's answer against its
/// offer (see [`DeflateConfig::check_answer`](super::DeflateConfig::check_answer)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExtensionError {
    /// Not `name *(";" param)` with `param = token ["=" (token / quoted-string)]`: an
    /// empty parameter, a name that is not a token, an unterminated quoted string.
    Syntax,
    /// A parameter RFC 7692 does not define.
    UnknownParameter,
    /// The same parameter twice.
    DuplicateParameter,
    /// A window size that is not a decimal integer from 8 to 15 without leading zeros.
    InvalidWindowBits,
    /// A value on `server_no_context_takeover` or `client_no_context_takeover`, which
    /// take none.
    UnexpectedValue,
    /// `server_max_window_bits` without a value (or, in an answer,
    /// `client_max_window_bits` without one).
    MissingValue,
    /// The answer holds permessage-deflate more than once.
    MultipleAnswers,
    /// The answer sets `client_max_window_bits`, which the offer did not hold.
    ClientWindowBitsNotOffered,
    /// The answer's `client_max_window_bits` is larger than the offer's.
    ClientWindowTooLarge,
    /// The answer's `server_max_window_bits` is larger than the offer asked for (or is
    /// missing, which means 15).
    ServerWindowTooLarge,
    /// The offer asked for `server_no_context_takeover` and the answer does not hold it.
    MissingServerNoContextTakeover,
}

impl fmt::Display for ExtensionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExtensionError::Syntax => "malformed extension parameters",
            ExtensionError::UnknownParameter => "unknown permessage-deflate parameter",
            ExtensionError::DuplicateParameter => "repeated permessage-deflate parameter",
            ExtensionError::InvalidWindowBits => "window bits not an integer from 8 to 15",
            ExtensionError::UnexpectedValue => "a value on a `*_no_context_takeover` parameter",
            ExtensionError::MissingValue => "a `*_max_window_bits` parameter without a value",
            ExtensionError::MultipleAnswers => "permessage-deflate accepted more than once",
            ExtensionError::ClientWindowBitsNotOffered => {
                "`client_max_window_bits` set though not offered"
            }
            ExtensionError::ClientWindowTooLarge => "`client_max_window_bits` larger than offered",
            ExtensionError::ServerWindowTooLarge => {
                "`server_max_window_bits` larger than requested"
            }
            ExtensionError::MissingServerNoContextTakeover => {
                "`server_no_context_takeover` requested but not granted"
            }
        })
    }
}

impl core::error::Error for ExtensionError {}

/// One permessage-deflate offer from a client, its parameters as sent.
///
/// ```
/// use sockeye_proto::extension::DeflateOffer;
///
/// // Chrome's offer.
/// let offer = DeflateOffer::parse("permessage-deflate; client_max_window_bits");
/// let offer = offer.unwrap().unwrap();
/// assert_eq!(offer.client_max_window_bits, Some(None));
/// assert_eq!(offer.server_max_window_bits, None);
///
/// // Another extension is no offer of this one.
/// assert!(DeflateOffer::parse("x-webkit-deflate-frame").is_none());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DeflateOffer {
    /// The client asks the server to start every message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client says it will start every message with an empty window (a hint).
    pub client_no_context_takeover: bool,
    /// The largest window the client lets the server use; `None`: any.
    pub server_max_window_bits: Option<u8>,
    /// `None`: not sent, so the server may not limit the client's window. `Some(None)`:
    /// sent without a value (the server may limit it). `Some(Some(n))`: the client
    /// will use at most `n` bits, and the server may limit it further.
    pub client_max_window_bits: Option<Option<u8>>,
}

impl DeflateOffer {
    /// Parses one extension list item (`permessage-deflate; server_max_window_bits=10`).
    /// `None` if the item names another extension.
    pub fn parse(item: &str) -> Option<Result<DeflateOffer, ExtensionError>> {
        parse_item(item, Side::Offer)
    }
}

/// The permessage-deflate offers among extension list items, each parsed (see
/// [`deflate_offers`]).
#[derive(Clone, Debug)]
pub struct DeflateOffers<I> {
    items: I,
}

/// The permessage-deflate offers among `items` (such as
/// [`UpgradeRequest::extensions`](crate::handshake::UpgradeRequest::extensions)), in the
/// client's order of preference; items naming other extensions are left out.
///
/// ```
/// use sockeye_proto::extension::{deflate_offers, ExtensionError};
///
/// let items = [
///     "permessage-deflate; client_max_window_bits=\"10\"",
///     "x-foo",
///     "permessage-deflate; server_max_window_bits=16",
///     "permessage-deflate",
/// ];
/// let offers: Vec<_> = deflate_offers(items).collect();
/// assert_eq!(offers.len(), 3);
/// assert_eq!(offers[0].unwrap().client_max_window_bits, Some(Some(10)));
/// assert_eq!(offers[1], Err(ExtensionError::InvalidWindowBits));
/// assert!(offers[2].is_ok());
/// ```
pub fn deflate_offers<'a, I>(items: I) -> DeflateOffers<I::IntoIter>
where
    I: IntoIterator<Item = &'a str>,
{
    DeflateOffers {
        items: items.into_iter(),
    }
}

impl<'a, I: Iterator<Item = &'a str>> Iterator for DeflateOffers<I> {
    type Item = Result<DeflateOffer, ExtensionError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.items.find_map(DeflateOffer::parse)
    }
}

/// Whether the text is an offer (`client_max_window_bits` may lack its value) or an
/// answer (every window size has one).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Offer,
    Answer,
}

/// Parses one list item; `None` for another extension's.
pub(crate) fn parse_item(item: &str, side: Side) -> Option<Result<DeflateOffer, ExtensionError>> {
    let mut parts = Parts { rest: item };
    let name = parts.next()?.trim_ascii();
    if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
        return None;
    }
    Some(parse_params(parts, side))
}

fn parse_params(parts: Parts<'_>, side: Side) -> Result<DeflateOffer, ExtensionError> {
    let mut offer = DeflateOffer::default();
    // Presence, separate from the values: a repeated flag parameter is an error too.
    let mut seen = [false; 4];
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (name.trim_ascii(), Some(value.trim_ascii())),
            None => (part.trim_ascii(), None),
        };
        if !is_token(name.as_bytes()) {
            return Err(ExtensionError::Syntax);
        }
        let index = [
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        ]
        .iter()
        .position(|known| known.eq_ignore_ascii_case(name))
        .ok_or(ExtensionError::UnknownParameter)?;
        if core::mem::replace(&mut seen[index], true) {
            return Err(ExtensionError::DuplicateParameter);
        }
        match index {
            0 | 1 if value.is_some() => return Err(ExtensionError::UnexpectedValue),
            0 => offer.server_no_context_takeover = true,
            1 => offer.client_no_context_takeover = true,
            2 => offer.server_max_window_bits = Some(window_bits(value)?),
            _ => {
                offer.client_max_window_bits = Some(match (value, side) {
                    (None, Side::Offer) => None,
                    (value, _) => Some(window_bits(value)?),
                })
            }
        }
    }
    Ok(offer)
}

/// A window size: a token or quoted string holding a decimal 8 to 15, no leading zero.
fn window_bits(value: Option<&str>) -> Result<u8, ExtensionError> {
    let value = value.ok_or(ExtensionError::MissingValue)?.as_bytes();
    let mut digits = [0u8; 2];
    let mut len = 0;
    let mut push = |b: u8| {
        let slot = digits
            .get_mut(len)
            .ok_or(ExtensionError::InvalidWindowBits)?;
        *slot = b;
        len += 1;
        Ok(())
    };
    match value {
        [b'"', inner @ .., b'"'] => {
            let mut bytes = inner.iter();
            while let Some(&b) = bytes.next() {
                let b = match b {
                    b'\\' => *bytes.next().ok_or(ExtensionError::Syntax)?,
                    b'"' => return Err(ExtensionError::Syntax),
                    b => b,
                };
                push(b)?;
            }
        }
        value if is_token(value) => value.iter().try_for_each(|&b| push(b))?,
        _ => return Err(ExtensionError::Syntax),
    }
    let bits = match digits[..len] {
        [d @ b'1'..=b'9'] => d - b'0',
        [b'1', d @ b'0'..=b'9'] => 10 + (d - b'0'),
        _ => return Err(ExtensionError::InvalidWindowBits),
    };
    if (MIN_WINDOW_BITS..=MAX_WINDOW_BITS).contains(&bits) {
        Ok(bits)
    } else {
        Err(ExtensionError::InvalidWindowBits)
    }
}

/// The `;`-separated parts of a list item; a `;` inside a quoted string does not split.
struct Parts<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Parts<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.rest.is_empty() {
            return None;
        }
        let end = unquoted(self.rest.as_bytes(), b';').unwrap_or(self.rest.len());
        let part = &self.rest[..end];
        // `;` is one byte, so `end + 1` is a character boundary (or the end).
        self.rest = match self.rest.get(end + 1..) {
            // A trailing `;` leaves an empty last part, which is a syntax error.
            Some("") if end < self.rest.len() => " ",
            Some(rest) => rest,
            None => "",
        };
        Some(part)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;

    fn offer(item: &str) -> Result<DeflateOffer, ExtensionError> {
        DeflateOffer::parse(item).expect("a permessage-deflate item")
    }

    #[test]
    fn browsers_offers() {
        // Chrome.
        assert_eq!(
            offer("permessage-deflate; client_max_window_bits"),
            Ok(DeflateOffer {
                client_max_window_bits: Some(None),
                ..DeflateOffer::default()
            })
        );
        // Firefox (and Safari) offer it bare.
        assert_eq!(offer("permessage-deflate"), Ok(DeflateOffer::default()));
        assert_eq!(offer("  PerMessage-Deflate  "), Ok(DeflateOffer::default()));
    }

    #[test]
    fn every_parameter_and_value_form() {
        let all = offer(
            "permessage-deflate;server_no_context_takeover ; client_no_context_takeover;\t\
             server_max_window_bits = \"9\" ;client_max_window_bits=\"1\\2\"",
        );
        assert_eq!(
            all,
            Ok(DeflateOffer {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(9),
                client_max_window_bits: Some(Some(12)),
            })
        );
        for bits in 8..=15u8 {
            let text = std::format!("permessage-deflate; server_max_window_bits={bits}");
            assert_eq!(offer(&text).unwrap().server_max_window_bits, Some(bits));
        }
    }

    #[test]
    fn invalid_offers_say_why() {
        use ExtensionError::*;
        for (item, error) in [
            ("permessage-deflate; x=1", UnknownParameter),
            ("permessage-deflate; server_max_window_bits", MissingValue),
            ("permessage-deflate; server_max_window_bits=", Syntax),
            (
                "permessage-deflate; server_max_window_bits=7",
                InvalidWindowBits,
            ),
            (
                "permessage-deflate; server_max_window_bits=16",
                InvalidWindowBits,
            ),
            (
                "permessage-deflate; server_max_window_bits=09",
                InvalidWindowBits,
            ),
            (
                "permessage-deflate; server_max_window_bits=010",
                InvalidWindowBits,
            ),
            (
                "permessage-deflate; server_max_window_bits=1a",
                InvalidWindowBits,
            ),
            (
                "permessage-deflate; server_max_window_bits=\"\"",
                InvalidWindowBits,
            ),
            ("permessage-deflate; server_max_window_bits=\"10", Syntax),
            (
                "permessage-deflate; server_max_window_bits=\"10\\\"",
                Syntax,
            ),
            (
                "permessage-deflate; server_max_window_bits=\"1\"0\"",
                Syntax,
            ),
            ("permessage-deflate; server_max_window_bits=1 0", Syntax),
            (
                "permessage-deflate; client_max_window_bits=99999",
                InvalidWindowBits,
            ),
            (
                "permessage-deflate; server_no_context_takeover=1",
                UnexpectedValue,
            ),
            (
                "permessage-deflate; client_no_context_takeover=",
                UnexpectedValue,
            ),
            (
                "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
                DuplicateParameter,
            ),
            (
                "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
                DuplicateParameter,
            ),
            ("permessage-deflate;", Syntax),
            ("permessage-deflate; ; server_no_context_takeover", Syntax),
            ("permessage-deflate; =10", Syntax),
            ("permessage-deflate; a b", Syntax),
        ] {
            assert_eq!(offer(item), Err(error), "{item}");
        }
    }

    #[test]
    fn an_answer_needs_every_window_size() {
        let answer = |item| parse_item(item, Side::Answer).unwrap();
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits"),
            Err(ExtensionError::MissingValue)
        );
        assert_eq!(
            answer("permessage-deflate; client_max_window_bits=10")
                .unwrap()
                .client_max_window_bits,
            Some(Some(10))
        );
    }

    #[test]
    fn other_extensions_are_not_offers() {
        assert_eq!(DeflateOffer::parse("x-webkit-deflate-frame"), None);
        assert_eq!(DeflateOffer::parse("permessage-deflate-x"), None);
        assert_eq!(DeflateOffer::parse(""), None);
        let items = ["x-foo; a=1", "permessage-deflate", "permessage-deflate; x"];
        let offers: std::vec::Vec<_> = deflate_offers(items).collect();
        assert_eq!(
            offers,
            [
                Ok(DeflateOffer::default()),
                Err(ExtensionError::UnknownParameter)
            ]
        );
    }

    #[test]
    fn errors_display() {
        for error in [
            ExtensionError::Syntax,
            ExtensionError::MissingServerNoContextTakeover,
        ] {
            assert!(!std::format!("{error}").is_empty());
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(item in "\\PC{0,64}") {
            let _ = parse_item(&item, Side::Offer);
            let _ = parse_item(&item, Side::Answer);
        }

        #[test]
        fn parsing_deflate_params_never_panics(
            params in "[ ;=\"\\\\a-z_0-9\t]{0,60}"
        ) {
            let item = std::format!("permessage-deflate{params}");
            let _ = parse_item(&item, Side::Offer);
        }
    }
}
