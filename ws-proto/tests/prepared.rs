//! Prepared messages (broadcast): one frame built once, queued on many
//! server connections, compressed once where the negotiated parameters
//! allow it.

mod util;

use std::io::IoSlice;
use util::*;
use ws_proto::{
    Config, Connection, DataKind, DeflateConfig, Event, OpCode, PreparedMessage, Role, UsageError,
};

fn deflate_pair(client: DeflateConfig, server: DeflateConfig) -> Pair {
    let p = Pair::with(Opts {
        client: Config::default().deflate(Some(client)),
        server: Config::default().deflate(Some(server)),
        ..Opts::default()
    });
    assert!(p.server.conn.deflate().is_some(), "negotiated");
    p
}

/// Text that compresses well and refers back a lot.
fn chatty(n: usize, tag: &str) -> String {
    let mut s = String::new();
    let mut i = 0u32;
    while s.len() < n {
        s.push_str(&format!("{tag} line {} of the broadcast; ", i % 37));
        i += 1;
    }
    s.truncate(n);
    s
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .collect()
}

#[test]
fn bytes_on_the_wire_equal_a_normal_send() {
    for len in [0, 5, 125, 126, 4095, 4096, 70_000] {
        let text = chatty(len, "a");
        let bin = binary(len);
        let pt = PreparedMessage::text(text.clone());
        let pb = PreparedMessage::binary(bin.clone());
        assert_eq!(pt.kind(), DataKind::Text);
        assert_eq!(pb.kind(), DataKind::Binary);
        assert!(!pt.is_compressed());

        let mut a = Connection::server(Config::default());
        let mut b = Connection::server(Config::default());
        a.send_prepared(&pt).unwrap();
        a.send_prepared(&pb).unwrap();
        b.send_text(text.clone()).unwrap();
        b.send_binary(bin.clone()).unwrap();
        assert_eq!(a.buffered_amount(), b.buffered_amount());
        let (wa, _) = drain_transmit(&mut a);
        let (wb, _) = drain_transmit(&mut b);
        assert_eq!(wa, wb, "len {len}");
        let frames = decode_frames(&wa);
        assert_eq!(frames[0].opcode, OpCode::Text);
        assert_eq!(frames[0].payload, text.as_bytes());
        assert_eq!(frames[1].payload, bin);
    }
}

fn binary(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn a_large_payload_is_shared_not_copied() {
    let msg = PreparedMessage::binary(binary(64 << 10));
    let mut conns: Vec<Connection> = (0..3)
        .map(|_| Connection::server(Config::default()))
        .collect();
    for c in &mut conns {
        c.send_prepared(&msg).unwrap();
        let mut slices = [IoSlice::new(&[]); 8];
        let n = c.transmit_slices(&mut slices);
        // The header, then the payload: the very bytes of the prepared
        // message, not a copy.
        assert_eq!(n, 2);
        assert_eq!(slices[0].len(), 10);
        assert_eq!(slices[1].as_ptr(), msg.payload().as_ptr());
        assert_eq!(slices[1].len(), msg.payload().len());
    }
}

#[test]
fn a_client_connection_refuses_it() {
    let mut p = Pair::new();
    let msg = PreparedMessage::text("hello");
    assert_eq!(
        p.client.conn.send_prepared(&msg),
        Err(UsageError::ServerOnly)
    );
    assert_eq!(p.client.conn.buffered_amount(), 0);
    assert!(p.client.conn.is_open());
    assert_eq!(p.client.conn.role(), Role::Client);
    // The connection goes on.
    p.client.conn.send_text("still fine").unwrap();
    p.drive();
    assert_eq!(texts(&p.server.events), vec!["still fine"]);
}

#[test]
fn refused_when_closed_or_in_a_fragmented_message() {
    let mut c = Connection::server(Config::default());
    let msg = PreparedMessage::text("x");
    c.send_fragment(DataKind::Text, "a", false).unwrap();
    assert_eq!(
        c.send_prepared(&msg),
        Err(UsageError::FragmentedMessageInProgress)
    );
    c.send_fragment(DataKind::Text, "b", true).unwrap();
    c.send_prepared(&msg).unwrap();
    c.close(std::time::Instant::now(), ws_proto::CloseCode::NORMAL, "")
        .unwrap();
    assert_eq!(c.send_prepared(&msg), Err(UsageError::Closed));
}

#[test]
fn compressed_once_equals_a_normal_compressed_send_on_a_fresh_connection() {
    let cfg = DeflateConfig::default();
    let text = chatty(5000, "x");
    let msg = PreparedMessage::text(text.clone()).with_deflate(&cfg);
    assert!(msg.is_compressed());
    let mut p1 = deflate_pair(cfg.clone(), cfg.clone());
    let mut p2 = deflate_pair(cfg.clone(), cfg.clone());
    p1.server.conn.send_prepared(&msg).unwrap();
    p2.server.conn.send_text(text.clone()).unwrap();
    let (w1, _) = drain_transmit(&mut p1.server.conn);
    let (w2, _) = drain_transmit(&mut p2.server.conn);
    assert_eq!(w1, w2);
    let f = decode_frames(&w1);
    assert_eq!(f[0].rsv, 0b100, "RSV1: compressed");
    assert!(f[0].payload.len() < text.len() / 4);
    // And the peer inflates it.
    p1.client.inbox.extend_from_slice(&w1);
    p1.drive();
    assert_eq!(texts(&p1.client.events), vec![text]);
}

#[test]
fn context_takeover_connection_still_works_around_it() {
    // The connection compresses with context takeover; a prepared message
    // (compressed with an empty history) goes out in the middle. The
    // messages after it must not refer back across it.
    let cfg = DeflateConfig::default();
    let mut p = deflate_pair(cfg.clone(), cfg.clone());
    assert!(!p.server.conn.deflate().unwrap().local_no_context_takeover);
    let m1 = chatty(3000, "first");
    let shared = chatty(3000, "shared");
    let msg = PreparedMessage::text(shared.clone()).with_deflate(&cfg);
    let mut expected = Vec::new();
    for _ in 0..3 {
        p.server.conn.send_text(m1.clone()).unwrap();
        p.server.conn.send_prepared(&msg).unwrap();
        p.server.conn.send_text(m1.clone()).unwrap();
        expected.extend([m1.clone(), shared.clone(), m1.clone()]);
    }
    p.drive();
    assert!(p.client.conn.is_open(), "{:?}", p.client.events);
    assert_eq!(texts(&p.client.events), expected);
}

#[test]
fn no_context_takeover_and_small_windows() {
    let text = chatty(4000, "w");
    // server_no_context_takeover negotiated: the prepared bytes are used.
    let cfg = DeflateConfig::default().server_no_context_takeover(true);
    let msg = PreparedMessage::text(text.clone()).with_deflate(&cfg);
    let mut p = deflate_pair(DeflateConfig::default(), cfg.clone());
    assert!(p.server.conn.deflate().unwrap().local_no_context_takeover);
    for _ in 0..2 {
        p.server.conn.send_prepared(&msg).unwrap();
        p.server.conn.send_text(text.clone()).unwrap();
    }
    p.drive();
    assert_eq!(texts(&p.client.events), vec![text.clone(); 4]);

    // The client limits the server's window below the prepared one's: the
    // connection compresses the message itself (and the peer decodes it).
    let msg = PreparedMessage::text(text.clone()).with_deflate(&DeflateConfig::default());
    let mut p = deflate_pair(
        DeflateConfig::default().server_max_window_bits(9),
        DeflateConfig::default(),
    );
    assert_eq!(p.server.conn.deflate().unwrap().local_max_window_bits, 9);
    p.server.conn.send_prepared(&msg).unwrap();
    let (w, _) = drain_transmit(&mut p.server.conn);
    let f = decode_frames(&w);
    assert_eq!(f[0].rsv, 0b100);
    p.client.inbox.extend_from_slice(&w);
    p.drive();
    assert_eq!(texts(&p.client.events), vec![text.clone()]);

    // A prepared message built with the smaller window fits both.
    let small = PreparedMessage::text(text.clone())
        .with_deflate(&DeflateConfig::default().server_max_window_bits(9));
    for server_bits in [9, 15] {
        let mut p = deflate_pair(
            DeflateConfig::default().server_max_window_bits(server_bits),
            DeflateConfig::default(),
        );
        p.server.conn.send_prepared(&small).unwrap();
        p.server.conn.send_prepared(&small).unwrap();
        p.drive();
        assert_eq!(texts(&p.client.events), vec![text.clone(); 2]);
    }
}

#[test]
fn without_deflate_on_the_connection_it_goes_uncompressed() {
    let text = chatty(4000, "u");
    let msg = PreparedMessage::text(text.clone()).with_deflate(&DeflateConfig::default());
    let mut p = Pair::new();
    p.server.conn.send_prepared(&msg).unwrap();
    let (w, _) = drain_transmit(&mut p.server.conn);
    let f = decode_frames(&w);
    assert_eq!(f[0].rsv, 0);
    assert_eq!(f[0].payload, text.as_bytes());
    p.client.inbox.extend_from_slice(&w);
    p.drive();
    assert_eq!(texts(&p.client.events), vec![text]);
}

#[test]
fn below_the_threshold_or_unprepared_it_goes_uncompressed() {
    let cfg = DeflateConfig::default();
    let short = PreparedMessage::text("short").with_deflate(&cfg);
    assert!(!short.is_compressed());
    let plain = PreparedMessage::binary(binary(5000));
    let mut p = deflate_pair(cfg.clone(), cfg);
    p.server.conn.send_prepared(&short).unwrap();
    p.server.conn.send_prepared(&plain).unwrap();
    let (w, _) = drain_transmit(&mut p.server.conn);
    let f = decode_frames(&w);
    assert_eq!((f[0].rsv, f[1].rsv), (0, 0));
    p.client.inbox.extend_from_slice(&w);
    p.drive();
    assert_eq!(texts(&p.client.events), vec!["short"]);
    assert!(p
        .client
        .events
        .iter()
        .any(|e| matches!(e, Event::Binary(b) if b.len() == 5000)));
}
