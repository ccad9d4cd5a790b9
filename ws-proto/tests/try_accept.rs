//! `ServerHandshake::try_accept`: a usage error leaves the handshake as it
//! was (the caller can still reject, or accept differently); a success
//! spends it.

use std::time::Instant;
use ws_proto::http::HeaderMap;
use ws_proto::{Config, Event, ServerHandshake, Transmit, UsageError};

/// A request offering the subprotocol `chat`, followed by a masked text
/// frame "hi" (mask key 0) sent before the 101 arrived.
const REQUEST: &[u8] =
    b"GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: chat\r\n\r\n\x81\x82\0\0\0\0hi";

fn ready() -> ServerHandshake {
    let mut hs = ServerHandshake::new(Instant::now(), Config::default());
    hs.handle_input(REQUEST)
        .unwrap()
        .expect("a complete request");
    hs
}

fn drain(conn: &mut ws_proto::Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(Transmit::Data) = conn.poll_transmit(&mut out) {}
    out
}

#[test]
fn a_protocol_not_offered_leaves_the_handshake_to_retry() {
    let now = Instant::now();
    let mut hs = ready();
    let e = hs.try_accept(now, Some("other"), &HeaderMap::new());
    assert_eq!(e.unwrap_err(), UsageError::ProtocolNotOffered);
    // Nothing was queued and the request is still there.
    let mut out = Vec::new();
    assert_eq!(hs.poll_transmit(&mut out), None);
    assert!(out.is_empty());
    assert_eq!(hs.offered_protocols(), ["chat".to_string()]);
    let mut conn = hs.try_accept(now, Some("chat"), &HeaderMap::new()).unwrap();
    let head = String::from_utf8(drain(&mut conn)).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(
        head.contains("\r\nSec-WebSocket-Protocol: chat\r\n"),
        "{head}"
    );
    assert!(
        head.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    // The frame that followed the request went to the connection.
    match conn.poll_event() {
        Some(Event::Text(t)) => assert_eq!(t, "hi"),
        other => panic!("{other:?}"),
    }
    // The handshake is spent.
    assert_eq!(
        hs.try_accept(now, None, &HeaderMap::new()).unwrap_err(),
        UsageError::HandshakeIncomplete
    );
    assert!(hs.handle_input(b"GET / HTTP/1.1\r\n\r\n").is_err());
}

#[test]
fn a_protocol_not_offered_can_still_be_rejected() {
    let now = Instant::now();
    let mut hs = ready();
    assert_eq!(
        hs.try_accept(now, Some("other"), &HeaderMap::new())
            .unwrap_err(),
        UsageError::ProtocolNotOffered
    );
    hs.reject(400, &HeaderMap::new(), b"no such subprotocol");
    let mut out = Vec::new();
    assert_eq!(hs.poll_transmit(&mut out), Some(Transmit::Data));
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.ends_with("no such subprotocol"), "{text}");
    assert_eq!(hs.poll_transmit(&mut Vec::new()), Some(Transmit::Shutdown));
}

#[test]
fn accepting_before_the_request_changes_nothing() {
    let now = Instant::now();
    let mut hs = ServerHandshake::new(now, Config::default());
    assert_eq!(
        hs.try_accept(now, None, &HeaderMap::new()).unwrap_err(),
        UsageError::HandshakeIncomplete
    );
    hs.handle_input(REQUEST)
        .unwrap()
        .expect("a complete request");
    let mut conn = hs.try_accept(now, None, &HeaderMap::new()).unwrap();
    let head = String::from_utf8(drain(&mut conn)).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(!head.contains("Sec-WebSocket-Protocol"), "{head}");
}

#[test]
fn accept_by_value_still_works() {
    let mut conn = ready()
        .accept(Instant::now(), Some("chat"), &HeaderMap::new())
        .unwrap();
    assert!(String::from_utf8(drain(&mut conn))
        .unwrap()
        .starts_with("HTTP/1.1 101 "));
    assert!(matches!(conn.poll_event(), Some(Event::Text(_))));
}
