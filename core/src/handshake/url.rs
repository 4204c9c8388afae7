//! A small no-alloc parser for `ws://` and `wss://` URLs (RFC 6455 §3), for adapters that
//! connect from a URL.

use core::fmt;

use super::client::ClientRequest;
use super::write::is_visible_ascii;

/// A parsed `ws://` or `wss://` URL, borrowing the text.
///
/// ```
/// use sockeye_proto::handshake::Url;
///
/// let url = Url::parse("wss://[::1]:9001/chat?room=1").unwrap();
/// assert!(url.is_tls());
/// assert_eq!((url.host(), url.port()), ("::1", 9001)); // what to connect to
/// assert_eq!(url.host_header(), "[::1]:9001");
/// assert_eq!(url.resource(), "/chat?room=1");
///
/// let url = Url::parse("ws://example.com").unwrap();
/// assert_eq!((url.host(), url.port(), url.resource()), ("example.com", 80, "/"));
/// assert_eq!(url.request().host, "example.com");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Url<'a> {
    tls: bool,
    host: &'a str,
    port: u16,
    authority: &'a str,
    resource: &'a str,
}

impl<'a> Url<'a> {
    /// Parses `ws://host[:port][/path][?query]` or the same with `wss://`.
    ///
    /// The scheme is case-insensitive. The host is a name (ASCII; internationalized names must
    /// be given in punycode), an IPv4 address or a bracketed IPv6 address. The default ports
    /// are 80 and 443. User info (`user@`) and fragments (`#...`, RFC 6455 §3) are refused, and
    /// so are spaces and non-ASCII characters in the path (percent-encode them).
    pub fn parse(url: &'a str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::UnsupportedScheme)?;
        let (tls, default_port) = if scheme.eq_ignore_ascii_case("ws") {
            (false, 80)
        } else if scheme.eq_ignore_ascii_case("wss") {
            (true, 443)
        } else {
            return Err(UrlError::UnsupportedScheme);
        };

        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(end);
        if resource.contains('#') {
            return Err(UrlError::Fragment);
        }
        if !resource.is_empty() && !is_visible_ascii(resource.as_bytes()) {
            return Err(UrlError::InvalidResource);
        }

        if authority.is_empty() {
            return Err(UrlError::MissingHost);
        }
        let (host, port) = if let Some(literal) = authority.strip_prefix('[') {
            let (host, after) = literal.split_once(']').ok_or(UrlError::InvalidHost)?;
            let ipv6 = host.contains(':')
                && host
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            if !ipv6 {
                return Err(UrlError::InvalidHost);
            }
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or(UrlError::InvalidHost)?),
                ),
            }
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if host.is_empty() {
                return Err(UrlError::MissingHost);
            }
            if !host.bytes().all(is_reg_name_char) {
                return Err(UrlError::InvalidHost);
            }
            (host, port)
        };
        let port = match port {
            None => default_port,
            Some(port) => parse_port(port)?,
        };

        Ok(Url {
            tls,
            host,
            port,
            authority,
            resource,
        })
    }

    /// Whether the scheme is `wss` (connect with TLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host to connect to: a name, an IPv4 address, or an IPv6 address without its
    /// brackets.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The port to connect to: the URL's, or 80 for `ws` and 443 for `wss`.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `Host` header value: the URL's authority as written (`example.com`,
    /// `[::1]:9001`).
    pub fn host_header(&self) -> &'a str {
        self.authority
    }

    /// The resource to request: path and query as written, `/` when the URL has neither. A URL
    /// with a query but no path (`ws://host?x`) gives `?x`, which [`ClientRequest`] writes as
    /// `/?x`.
    pub fn resource(&self) -> &'a str {
        match self.resource {
            "" => "/",
            resource => resource,
        }
    }

    /// A [`ClientRequest`] for this URL (host header and resource); add subprotocols and
    /// headers with its `with_*` methods.
    pub fn request(&self) -> ClientRequest<'a> {
        ClientRequest::new(self.authority, self.resource())
    }
}

/// `unreserved / pct-encoded / sub-delims` of RFC 3986 (a registered name or IPv4 address).
fn is_reg_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

fn parse_port(port: &str) -> Result<u16, UrlError> {
    if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::InvalidPort);
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(UrlError::InvalidPort),
        Ok(port) => Ok(port),
    }
}

/// Why a string is not a usable WebSocket URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UrlError {
    /// The scheme is missing or is not `ws` or `wss`.
    UnsupportedScheme,
    /// There is no host.
    MissingHost,
    /// The host holds characters a host cannot (including user info `user@`), or an IPv6
    /// literal is malformed.
    InvalidHost,
    /// The port is empty, not a number, 0 or above 65535.
    InvalidPort,
    /// The URL has a fragment (`#...`), which WebSocket URLs must not have.
    Fragment,
    /// The path or query holds spaces, control or non-ASCII characters.
    InvalidResource,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::UnsupportedScheme => "URL scheme is not ws:// or wss://",
            UrlError::MissingHost => "URL has no host",
            UrlError::InvalidHost => "URL host is invalid",
            UrlError::InvalidPort => "URL port is invalid",
            UrlError::Fragment => "WebSocket URLs cannot have a fragment",
            UrlError::InvalidResource => "URL path or query has invalid characters",
        })
    }
}

impl core::error::Error for UrlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        // (url, tls, host, port, host header, resource)
        for (url, tls, host, port, authority, resource) in [
            (
                "ws://example.com",
                false,
                "example.com",
                80,
                "example.com",
                "/",
            ),
            (
                "wss://example.com",
                true,
                "example.com",
                443,
                "example.com",
                "/",
            ),
            (
                "WS://Example.com:8080/chat",
                false,
                "Example.com",
                8080,
                "Example.com:8080",
                "/chat",
            ),
            ("wss://a:443/", true, "a", 443, "a:443", "/"),
            ("ws://a/p?q=1&r=%20", false, "a", 80, "a", "/p?q=1&r=%20"),
            ("ws://a?q", false, "a", 80, "a", "?q"),
            (
                "ws://127.0.0.1:9001",
                false,
                "127.0.0.1",
                9001,
                "127.0.0.1:9001",
                "/",
            ),
            ("ws://[::1]:9001/x", false, "::1", 9001, "[::1]:9001", "/x"),
            (
                "wss://[2001:db8::1]",
                true,
                "2001:db8::1",
                443,
                "[2001:db8::1]",
                "/",
            ),
            (
                "ws://[::ffff:1.2.3.4]",
                false,
                "::ffff:1.2.3.4",
                80,
                "[::ffff:1.2.3.4]",
                "/",
            ),
            ("ws://a:65535", false, "a", 65535, "a:65535", "/"),
        ] {
            let parsed = Url::parse(url).unwrap();
            assert_eq!(
                (
                    parsed.is_tls(),
                    parsed.host(),
                    parsed.port(),
                    parsed.host_header(),
                    parsed.resource()
                ),
                (tls, host, port, authority, resource),
                "{url}"
            );
            assert_eq!(parsed.request().host, authority);
            assert_eq!(parsed.request().resource, resource);
        }
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        use UrlError::*;
        for (url, error) in [
            ("http://a/", UnsupportedScheme),
            ("wsx://a/", UnsupportedScheme),
            ("example.com/chat", UnsupportedScheme),
            ("ws:/a", UnsupportedScheme),
            ("ws://", MissingHost),
            ("ws:///path", MissingHost),
            ("ws://:80/", MissingHost),
            ("ws://user@a/", InvalidHost),
            ("ws://a b/", InvalidHost),
            ("ws://exämple.com/", InvalidHost),
            ("ws://[::1/", InvalidHost),
            ("ws://[]/", InvalidHost),
            ("ws://[abc]/", InvalidHost),
            ("ws://[::1]x/", InvalidHost),
            ("ws://[fe80::1%25eth0]/", InvalidHost),
            ("ws://a:/", InvalidPort),
            ("ws://a:0/", InvalidPort),
            ("ws://a:65536/", InvalidPort),
            ("ws://a:123456/", InvalidPort),
            ("ws://a:+80/", InvalidPort),
            ("ws://a:80:81/", InvalidPort),
            ("ws://a/#frag", Fragment),
            ("ws://a#frag", Fragment),
            ("ws://a/a b", InvalidResource),
            ("ws://a/ü", InvalidResource),
        ] {
            assert_eq!(Url::parse(url), Err(error), "{url}");
            extern crate std;
            assert!(!std::format!("{error}").is_empty());
        }
    }
}
