//! The extended CONNECT form of the handshake (HTTP/2, RFC 8441): the client's fields, the
//! server's validation and answer, and the client's check of that answer, over header
//! name/value pairs as any HTTP/2 implementation hands them over.

use sockeye_proto::handshake::client::check_connect_response;
use sockeye_proto::handshake::{
    validate_extended_connect, validate_request, Accept, ClientRequest, Header, RequestError,
    Response, ResponseError, WriteError,
};
use sockeye_proto::{DeflateConfig, ExtensionError};

/// Owned fields, borrowed as `Header`s on demand.
struct Fields(Vec<(String, Vec<u8>)>);

impl Fields {
    fn of_request(request: &ClientRequest<'_>) -> Self {
        let mut fields = Vec::new();
        request
            .connect_fields(|name, value| {
                // HTTP/2 field names are lower case on the wire.
                fields.push((name.to_ascii_lowercase(), value.to_vec()))
            })
            .unwrap();
        Fields(fields)
    }

    fn headers(&self) -> Vec<Header<'_>> {
        self.0
            .iter()
            .map(|(name, value)| Header {
                name,
                value: value.as_slice(),
            })
            .collect()
    }
}

fn connect<'h, 'b>(
    headers: &'h [Header<'b>],
) -> Result<sockeye_proto::UpgradeRequest<'h, 'b>, RequestError> {
    validate_extended_connect(
        "CONNECT",
        Some("websocket"),
        "/chat?room=1",
        Some("example.com:8443"),
        headers,
    )
}

#[test]
fn a_full_round_trip_negotiates_subprotocol_and_compression() {
    let request = ClientRequest::new("example.com", "/chat?room=1")
        .with_protocols(&["v2", "v1"])
        .with_deflate(Some(DeflateConfig::default()))
        .with_headers(&[("Origin", b"https://example.com")]);
    let sent = Fields::of_request(&request);
    let headers = sent.headers();

    let upgrade = connect(&headers).unwrap();
    assert!(upgrade.is_extended_connect());
    assert_eq!(upgrade.key(), None);
    assert_eq!(upgrade.accept_key(), None);
    assert_eq!(upgrade.path(), "/chat?room=1");
    assert_eq!(upgrade.query(), Some("room=1"));
    assert_eq!(upgrade.host(), "example.com:8443");
    assert_eq!(upgrade.origin(), Some("https://example.com"));
    assert!(upgrade.protocols().eq(["v2", "v1"]));

    let deflate = upgrade.negotiate_deflate(&DeflateConfig::default());
    assert!(deflate.is_some());
    let accept = Accept::new()
        .with_protocol(upgrade.select_protocol(&["v1"]))
        .with_deflate(deflate)
        .with_headers(&[("Server", b"sockeye")]);
    let mut answer = Vec::new();
    let status = upgrade
        .answer(&accept, |name, value| {
            answer.push((name.to_ascii_lowercase(), value.to_vec()))
        })
        .unwrap();
    assert_eq!(status, 200);
    let names: Vec<&str> = answer.iter().map(|(name, _)| name.as_str()).collect();
    // No Upgrade, Connection or Sec-WebSocket-Accept in HTTP/2 (RFC 8441 §5).
    assert_eq!(
        names,
        [
            "sec-websocket-protocol",
            "sec-websocket-extensions",
            "server"
        ]
    );
    // An HTTP/1.1 head cannot answer it.
    assert_eq!(
        upgrade.accept(&accept, &mut [0; 512]),
        Err(WriteError::ExtendedConnect)
    );

    let answer = Fields(answer);
    let headers = answer.headers();
    let Ok(Response::Accepted(accepted)) = check_connect_response(&request, status, &headers)
    else {
        panic!("the answer fits the request");
    };
    assert_eq!(accepted.protocol(), Some("v1"));
    assert_eq!(accepted.deflate(), deflate);
    assert_eq!(accepted.consumed(), 0);
}

/// `:method`, `:protocol`, `:authority`, the fields, the error and its status.
type Case<'a> = (
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    &'a [Header<'a>],
    RequestError,
    u16,
);

#[test]
fn the_server_checks_what_rfc_8441_requires() {
    let version = [Header {
        name: "sec-websocket-version",
        value: b"13",
    }];
    let cases: [Case<'_>; 6] = [
        // A plain HTTP/2 request to the endpoint: no :protocol.
        (
            "GET",
            None,
            Some("a"),
            &version,
            RequestError::NotUpgrade,
            400,
        ),
        // Another protocol over CONNECT.
        (
            "CONNECT",
            Some("webtransport"),
            Some("a"),
            &version,
            RequestError::NotUpgrade,
            400,
        ),
        (
            "POST",
            Some("websocket"),
            Some("a"),
            &version,
            RequestError::MethodNotConnect,
            405,
        ),
        (
            "CONNECT",
            Some("websocket"),
            Some("a"),
            &[],
            RequestError::MissingVersion,
            400,
        ),
        (
            "CONNECT",
            Some("websocket"),
            Some("a"),
            &[Header {
                name: "sec-websocket-version",
                value: b"8",
            }],
            RequestError::UnsupportedVersion,
            426,
        ),
        (
            "CONNECT",
            Some("websocket"),
            None,
            &version,
            RequestError::MissingHost,
            400,
        ),
    ];
    for (method, protocol, authority, headers, error, status) in cases {
        let got = validate_extended_connect(method, protocol, "/", authority, headers);
        assert_eq!(got, Err(error), "{method} {protocol:?} {authority:?}");
        assert_eq!(error.rejection().status(), status);
    }
    // The protocol token is case-insensitive; without :authority the host field serves.
    let host = [
        version[0],
        Header {
            name: "host",
            value: b"example.com",
        },
    ];
    let upgrade =
        validate_extended_connect("CONNECT", Some("WebSocket"), "/", None, &host).unwrap();
    assert_eq!(upgrade.host(), "example.com");
    // A key is not needed, and not used if sent.
    let mut with_key = host.to_vec();
    with_key.push(Header {
        name: "sec-websocket-key",
        value: b"dGhlIHNhbXBsZSBub25jZQ==",
    });
    let upgrade =
        validate_extended_connect("CONNECT", Some("websocket"), "/", None, &with_key).unwrap();
    assert_eq!(upgrade.key(), None);
    assert_eq!(
        RequestError::MethodNotConnect.rejection().headers(),
        &[("Allow", &b"CONNECT"[..])]
    );
}

#[test]
fn an_http1_upgrade_from_parsed_parts_follows_the_same_rules() {
    let headers = [
        Header {
            name: "host",
            value: b"example.com",
        },
        Header {
            name: "upgrade",
            value: b"websocket",
        },
        Header {
            name: "connection",
            value: b"keep-alive, Upgrade",
        },
        Header {
            name: "sec-websocket-key",
            value: b"dGhlIHNhbXBsZSBub25jZQ==",
        },
        Header {
            name: "sec-websocket-version",
            value: b"13",
        },
    ];
    let upgrade = validate_request("GET", "/", 1, &headers).unwrap();
    let mut fields = Vec::new();
    let status = upgrade
        .answer(&Accept::new(), |name, value| {
            fields.push((name.to_owned(), value.to_vec()))
        })
        .unwrap();
    assert_eq!(status, 101);
    assert_eq!(
        fields[2],
        (
            String::from("Sec-WebSocket-Accept"),
            b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_vec()
        )
    );
    // HTTP/1.0, another method with the upgrade headers, a plain request.
    assert_eq!(
        validate_request("GET", "/", 0, &headers),
        Err(RequestError::HttpVersion)
    );
    let error = validate_request("PUT", "/", 1, &headers).unwrap_err();
    assert_eq!(error, RequestError::MethodNotGet);
    assert_eq!(error.rejection().status(), 405);
    assert_eq!(error.rejection().headers(), &[("Allow", &b"GET"[..])]);
    assert_eq!(
        validate_request("POST", "/", 1, &headers[..1]),
        Err(RequestError::NotUpgrade)
    );
}

#[test]
fn the_client_refuses_an_answer_that_does_not_fit_its_request() {
    let request = ClientRequest::new("example.com", "/")
        .with_protocols(&["chat"])
        .with_deflate(Some(DeflateConfig::default()));
    let unasked = [Header {
        name: "sec-websocket-protocol",
        value: b"other",
    }];
    assert_eq!(
        check_connect_response(&request, 200, &unasked),
        Err(ResponseError::ProtocolNotRequested)
    );
    let bad_deflate = [Header {
        name: "sec-websocket-extensions",
        value: b"permessage-deflate; server_max_window_bits=99",
    }];
    assert!(matches!(
        check_connect_response(&request, 200, &bad_deflate),
        Err(ResponseError::Extension(_))
    ));
    let twice = [
        Header {
            name: "sec-websocket-extensions",
            value: b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        },
        Header {
            name: "sec-websocket-extensions",
            value: b"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        },
    ];
    assert_eq!(
        check_connect_response(&request, 200, &twice),
        Err(ResponseError::Extension(ExtensionError::MultipleAnswers))
    );
    let Ok(Response::Rejected(rejected)) = check_connect_response(&request, 403, &[]) else {
        panic!("403 is a rejection");
    };
    assert_eq!(rejected.status(), 403);
    // Reserved or malformed extra fields are refused before anything is sent.
    let reserved = ClientRequest::new("a", "/").with_headers(&[("Sec-WebSocket-Key", b"x")]);
    assert_eq!(
        reserved.connect_fields(|_, _| panic!("no field on error")),
        Err(WriteError::InvalidField)
    );
}
