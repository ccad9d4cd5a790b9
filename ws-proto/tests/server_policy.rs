//! The sans-IO server policy: path, origin, verification, subprotocols,
//! headers, config, upgrades done elsewhere, routing, request info.

use std::time::Instant;
use ws_proto::http::{self, header, HeaderValue};
use ws_proto::server::{is_upgrade_request, parse_request_head, RequestInfo, Router, ServerPolicy};
use ws_proto::{
    ClientHandshake, Config, DeflateConfig, HandshakeError, Reject, ServerHandshake, Transmit,
};

fn get(path: &str) -> http::request::Builder {
    http::Request::get(path)
}

fn upgrade_req(path: &str) -> http::request::Builder {
    get(path)
        .header("host", "example.com")
        .header("upgrade", "websocket")
        .header("connection", "keep-alive, Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
}

#[test]
fn default_accepts_everything_without_protocol() {
    let a = ServerPolicy::new()
        .decide(
            &get("/any?x=1")
                .header("sec-websocket-protocol", "a")
                .body(())
                .unwrap(),
        )
        .unwrap();
    assert_eq!(a.protocol, None);
    assert!(a.headers.is_empty());
}

#[test]
fn path_restriction_ignores_query_and_rejects_404() {
    let p = ServerPolicy::new().path("/a").path("/b");
    assert!(p.decide(&get("/a?q=1").body(()).unwrap()).is_ok());
    assert!(p.decide(&get("/b").body(()).unwrap()).is_ok());
    let r = p.decide(&get("/a/").body(()).unwrap()).unwrap_err();
    assert_eq!(r.status, 404);
    assert!(!r.body.is_empty());
    assert!(p.matches_path("/a?z"));
    assert!(!p.matches_path("/c"));
}

#[test]
fn origin_check() {
    let p = ServerPolicy::new().allow_origin("https://Good.example");
    let ok = get("/")
        .header("origin", "https://good.example")
        .body(())
        .unwrap();
    assert!(p.decide(&ok).is_ok());
    let bad = get("/")
        .header("origin", "https://evil.example")
        .body(())
        .unwrap();
    assert_eq!(p.decide(&bad).unwrap_err().status, 403);
    // HyBi version 8 sends Sec-WebSocket-Origin.
    let bad8 = get("/")
        .header("sec-websocket-origin", "https://evil.example")
        .body(())
        .unwrap();
    assert_eq!(p.decide(&bad8).unwrap_err().status, 403);
    // No Origin: not a browser; allowed.
    assert!(p.decide(&get("/").body(()).unwrap()).is_ok());
}

#[test]
fn verify_rejects_with_custom_status_and_headers() {
    let p = ServerPolicy::new().verify(|req| match req.headers().get("authorization") {
        Some(v) if v == "Bearer s3cret" => Ok(()),
        _ => Err(Reject::new(401)
            .header(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"chat\""),
            )
            .body("who are you?")),
    });
    let r = p.decide(&get("/").body(()).unwrap()).unwrap_err();
    assert_eq!(r.status, 401);
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"chat\"");
    assert_eq!(r.body, b"who are you?");
    let ok = get("/")
        .header("authorization", "Bearer s3cret")
        .body(())
        .unwrap();
    assert!(p.decide(&ok).is_ok());
}

#[test]
fn checks_run_in_documented_order() {
    // A wrong path is 404 even when the origin and verification would fail.
    let p = ServerPolicy::new()
        .path("/ok")
        .allow_origin("https://a")
        .verify(|_| Err(Reject::new(401)));
    let req = get("/nope").header("origin", "https://b").body(()).unwrap();
    assert_eq!(p.decide(&req).unwrap_err().status, 404);
    let req = get("/ok").header("origin", "https://b").body(()).unwrap();
    assert_eq!(p.decide(&req).unwrap_err().status, 403);
    let req = get("/ok").header("origin", "https://a").body(()).unwrap();
    assert_eq!(p.decide(&req).unwrap_err().status, 401);
}

#[test]
fn protocol_selection_client_order_among_supported() {
    let p = ServerPolicy::new().protocols(["v3", "v2"]);
    let req = get("/")
        .header("sec-websocket-protocol", "v1, v2")
        .header("sec-websocket-protocol", "v3")
        .body(())
        .unwrap();
    assert_eq!(p.decide(&req).unwrap().protocol.as_deref(), Some("v2"));
    let none = get("/")
        .header("sec-websocket-protocol", "v1")
        .body(())
        .unwrap();
    assert_eq!(p.decide(&none).unwrap().protocol, None);
}

#[test]
fn handle_protocols_callback() {
    let p = ServerPolicy::new().handle_protocols(|offered, req| {
        if req.uri().path() == "/last" {
            offered.last().cloned()
        } else {
            Some("never-offered".into())
        }
    });
    let req = get("/last")
        .header("sec-websocket-protocol", "a, b, c")
        .body(())
        .unwrap();
    assert_eq!(p.decide(&req).unwrap().protocol.as_deref(), Some("c"));
    let bad = get("/x")
        .header("sec-websocket-protocol", "a")
        .body(())
        .unwrap();
    assert_eq!(p.decide(&bad).unwrap_err().status, 500);
}

#[test]
fn extra_headers_and_config() {
    let p = ServerPolicy::new()
        .header(
            header::SET_COOKIE,
            HeaderValue::from_static("session=1; HttpOnly"),
        )
        .max_payload(1000)
        .deflate(DeflateConfig::default());
    assert_eq!(p.config().max_message_size, 1000);
    assert_eq!(p.config().max_frame_size, 1000);
    assert!(p.config().deflate.is_some());
    let a = p.decide(&get("/").body(()).unwrap()).unwrap();
    assert_eq!(a.headers[header::SET_COOKIE], "session=1; HttpOnly");
    let p = ServerPolicy::new().with_config(Config::default().max_frame_size(10));
    assert_eq!(p.config().max_frame_size, 10);
}

/// The policy's decision applied by a real `ServerHandshake`: the 101
/// carries the protocol and headers; a rejection carries status, headers,
/// body; max_payload is enforced by the connection.
#[test]
fn policy_drives_server_handshake() {
    let now = Instant::now();
    let policy = ServerPolicy::new()
        .path("/chat")
        .protocols(["chat"])
        .header(header::SERVER, HeaderValue::from_static("ws-proto-test"))
        .max_payload(8);
    let run = |path: &str| {
        let req = http::Request::get(format!("ws://127.0.0.1{path}"))
            .header("sec-websocket-protocol", "x, chat")
            .body(())
            .unwrap();
        let mut client = ClientHandshake::new(now, req, Config::default(), [1; 32]).unwrap();
        let mut out = Vec::new();
        while let Some(Transmit::Data) = client.poll_transmit(&mut out) {}
        let mut server = ServerHandshake::new(now, policy.config().clone());
        let req = server.handle_input(&out).unwrap().unwrap();
        (client, server.decide(now, policy.decide(&req)).unwrap())
    };
    let (mut client, accepted) = run("/chat");
    let mut conn = accepted.unwrap();
    let mut out = Vec::new();
    while let Some(Transmit::Data) = conn.poll_transmit(&mut out) {}
    let text = String::from_utf8_lossy(&out).to_lowercase();
    assert!(text.starts_with("http/1.1 101"));
    assert!(text.contains("sec-websocket-protocol: chat\r\n"));
    assert!(text.contains("server: ws-proto-test\r\n"));
    assert!(client.handle_input(&out).unwrap());
    let (_, mut cconn) = client.into_connection(now).unwrap();
    cconn.send_binary(vec![0u8; 9]).unwrap();
    let mut frames = Vec::new();
    while let Some(Transmit::Data) = cconn.poll_transmit(&mut frames) {}
    conn.handle_input(now, &frames);
    // The server fails the connection with 1009: its close frame says so
    // (RFC 6455 §5.5.1: unmasked from a server, code first).
    let mut out = Vec::new();
    while let Some(Transmit::Data) = conn.poll_transmit(&mut out) {}
    assert_eq!(out[0], 0x88, "{out:?}");
    assert_eq!(&out[2..4], &[0x03, 0xF1], "{out:?}");

    let (_, rejected) = run("/elsewhere");
    let mut hs = rejected.unwrap_err();
    let mut out = Vec::new();
    while let Some(Transmit::Data) = hs.poll_transmit(&mut out) {}
    assert!(out.starts_with(b"HTTP/1.1 404 Not Found\r\n"));
}

#[test]
fn upgrade_for_external_servers() {
    let policy = ServerPolicy::new()
        .protocols(["p"])
        .header(header::SERVER, HeaderValue::from_static("t"))
        .deflate(DeflateConfig::default());
    let req = upgrade_req("/x")
        .header("sec-websocket-protocol", "p")
        .header("sec-websocket-extensions", "permessage-deflate")
        .body("ignored body")
        .unwrap();
    let up = policy.upgrade(&req).unwrap();
    let h = up.response.headers();
    assert_eq!(up.response.status(), 101);
    // RFC 6455 §1.3.
    assert_eq!(h["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(h["sec-websocket-protocol"], "p");
    assert_eq!(h["upgrade"], "websocket");
    assert_eq!(h["server"], "t");
    assert!(h["sec-websocket-extensions"]
        .to_str()
        .unwrap()
        .starts_with("permessage-deflate"));
    assert!(up.connection.deflate().is_some());
    assert_eq!(up.protocol.as_deref(), Some("p"));
    // Nothing is queued: the other server writes the response itself.
    let mut conn = up.connection;
    let mut out = Vec::new();
    assert_eq!(conn.poll_transmit(&mut out), None);

    // Without deflate in the config, the offer is declined.
    let up = ServerPolicy::new()
        .upgrade(
            &upgrade_req("/")
                .header("sec-websocket-extensions", "permessage-deflate")
                .body(())
                .unwrap(),
        )
        .unwrap();
    assert!(!up
        .response
        .headers()
        .contains_key("sec-websocket-extensions"));
    assert!(up.connection.deflate().is_none());
}

#[test]
fn upgrade_refuses_invalid_requests() {
    let p = ServerPolicy::new();
    let post = http::Request::post("/")
        .header("upgrade", "websocket")
        .body(())
        .unwrap();
    assert_eq!(p.upgrade(&post).unwrap_err().status, 405);
    let plain = get("/").header("host", "h").body(()).unwrap();
    assert_eq!(p.upgrade(&plain).unwrap_err().status, 400);
    let v = upgrade_req("/")
        .header("sec-websocket-version", "7")
        .body(())
        .unwrap();
    // Two version headers: the first (13) is read; build one with only 7.
    let mut v7 = v;
    v7.headers_mut()
        .insert("sec-websocket-version", HeaderValue::from_static("7"));
    let r = p.upgrade(&v7).unwrap_err();
    assert_eq!(r.status, 426);
    assert_eq!(r.headers["sec-websocket-version"], "13, 8");
    let mut bad_key = upgrade_req("/").body(()).unwrap();
    bad_key
        .headers_mut()
        .insert("sec-websocket-key", HeaderValue::from_static("c2hvcnQ="));
    assert_eq!(p.upgrade(&bad_key).unwrap_err().status, 400);
    let mut h10 = upgrade_req("/").body(()).unwrap();
    *h10.version_mut() = http::Version::HTTP_10;
    assert_eq!(p.upgrade(&h10).unwrap_err().status, 400);
    // RFC 9112 §3.2: Host missing (with an origin-form target) or repeated.
    let mut no_host = upgrade_req("/").body(()).unwrap();
    no_host.headers_mut().remove("host");
    assert_eq!(p.upgrade(&no_host).unwrap_err().status, 400);
    let two_hosts = upgrade_req("/").header("host", "other").body(()).unwrap();
    assert_eq!(p.upgrade(&two_hosts).unwrap_err().status, 400);
    // RFC 9112 §3.2: `*` and a bare authority are not targets of a GET.
    for target in ["*", "example.com:80"] {
        let r = upgrade_req(target).body(()).unwrap();
        assert_eq!(p.upgrade(&r).unwrap_err().status, 400, "{target}");
    }
    assert!(p
        .upgrade(&upgrade_req("ws://example.com/x").body(()).unwrap())
        .is_ok());
    // The policy still applies.
    let p = ServerPolicy::new().path("/only");
    assert_eq!(
        p.upgrade(&upgrade_req("/other").body(()).unwrap())
            .unwrap_err()
            .status,
        404
    );
}

#[test]
fn router_picks_by_path() {
    let r = Router::new().route("/a", 1).route("/b", 2).route("/a", 3);
    assert_eq!(r.find("/a"), Some(&1));
    assert_eq!(r.find("/b?x=y"), Some(&2));
    assert_eq!(r.find("/c"), None);
    assert_eq!(r.paths().collect::<Vec<_>>(), ["/a", "/b", "/a"]);
    assert_eq!(r.not_found().status, 404);
}

#[test]
fn parse_head_partial_complete_and_limits() {
    let cfg = Config::default();
    let head: &[u8] = b"GET /chat?room=1 HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nrest";
    let head_len = head.len() - 4;
    for i in 0..head_len {
        assert!(
            parse_request_head(&head[..i], &cfg).unwrap().is_none(),
            "{i}"
        );
    }
    let (req, len) = parse_request_head(head, &cfg).unwrap().unwrap();
    assert_eq!(len, head_len);
    assert_eq!(req.uri().path(), "/chat");
    assert_eq!(req.uri().query(), Some("room=1"));
    assert_eq!(req.headers()["host"], "h");
    assert!(is_upgrade_request(&req));
    let page = parse_request_head(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", &cfg)
        .unwrap()
        .unwrap()
        .0;
    assert!(!is_upgrade_request(&page));

    let small = Config::default().max_handshake_size(20);
    assert_eq!(
        parse_request_head(&head[..30], &small).unwrap_err(),
        HandshakeError::TooLarge
    );
    assert_eq!(
        parse_request_head(head, &small).unwrap_err(),
        HandshakeError::TooLarge
    );
    let few = Config::default().max_headers(2);
    assert_eq!(
        parse_request_head(head, &few).unwrap_err(),
        HandshakeError::TooManyHeaders
    );
    assert!(matches!(
        parse_request_head(b"\x16\x03\x01 garbage\r\n\r\n", &cfg),
        Err(HandshakeError::Malformed(_))
    ));
}

#[test]
fn request_info_accessors() {
    let req = get("/room/1?user=ann")
        .header("origin", "https://chat.example")
        .header("x-forwarded-for", "203.0.113.7, 10.0.0.1")
        .header("x-forwarded-for", "10.0.0.2")
        .body(())
        .unwrap();
    let peer: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let info = RequestInfo::new(req, Some(peer), Some("chat".into()));
    assert_eq!(info.path(), "/room/1");
    assert_eq!(info.query(), Some("user=ann"));
    assert_eq!(info.origin(), Some("https://chat.example"));
    assert_eq!(info.header("Origin"), Some("https://chat.example"));
    assert_eq!(info.protocol(), Some("chat"));
    assert_eq!(info.peer_addr(), Some(peer));
    assert_eq!(
        info.forwarded_for(),
        ["203.0.113.7", "10.0.0.1", "10.0.0.2"]
    );
    let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
    assert_eq!(info.client_ip(0), ip("127.0.0.1"));
    assert_eq!(info.client_ip(1), ip("10.0.0.2"));
    assert_eq!(info.client_ip(3), ip("203.0.113.7"));
    assert_eq!(info.client_ip(9), ip("203.0.113.7"));
    let junk = RequestInfo::new(
        get("/")
            .header("x-forwarded-for", "unknown")
            .body(())
            .unwrap(),
        Some(peer),
        None,
    );
    assert_eq!(junk.client_ip(1), ip("127.0.0.1"));
    let none = RequestInfo::new(get("/").body(()).unwrap(), None, None);
    assert_eq!(none.client_ip(1), None);
    assert!(none.forwarded_for().is_empty());
}

/// One configuration for every connection of a server: `shared_config`
/// hands out the policy's own copy (issue 5: memory per connection).
#[test]
fn shared_config_is_the_policys_copy() {
    let policy = ServerPolicy::new().max_payload(1000);
    let a = policy.shared_config();
    let b = policy.shared_config();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    assert!(std::ptr::eq(policy.config(), &*a));
    let conn = ws_proto::Connection::server(a);
    assert!(std::ptr::eq(conn.config(), policy.config()));
    assert_eq!(conn.config().max_message_size, 1000);
}

/// What accept loops do after `accept` failed: the same in every adapter.
#[test]
fn accept_failures_pause_or_retry() {
    use std::io::{Error, ErrorKind};
    use std::time::Duration;
    use ws_proto::server::{accept_retry_after, ACCEPT_PAUSE};
    // Only that connection is lost: the next one at once.
    for kind in [
        ErrorKind::ConnectionAborted,
        ErrorKind::ConnectionReset,
        ErrorKind::Interrupted,
    ] {
        assert_eq!(accept_retry_after(&Error::from(kind)), Duration::ZERO);
    }
    // Out of memory, or of file descriptors (EMFILE and ENFILE, which
    // std reports as an uncategorized kind): pause.
    assert_eq!(
        accept_retry_after(&Error::from(ErrorKind::OutOfMemory)),
        ACCEPT_PAUSE
    );
    #[cfg(target_os = "linux")]
    for errno in [24, 23, 105] {
        assert_eq!(
            accept_retry_after(&Error::from_raw_os_error(errno)),
            ACCEPT_PAUSE,
            "errno {errno}"
        );
    }
    assert!(ACCEPT_PAUSE > Duration::ZERO && ACCEPT_PAUSE <= Duration::from_millis(100));
}
