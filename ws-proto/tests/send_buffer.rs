//! The bound on the send queue (`Config::max_send_buffer`), a high-water
//! mark: sends are refused while the queue holds the bound or more, so the
//! queue never holds more than the bound plus one message. Refused sends
//! leave the state unchanged; close is never refused.

mod util;

use std::time::Instant;
use util::*;
use ws_proto::{
    CloseCode, Config, Connection, DataKind, Message, OpCode, PreparedMessage, SendBufferPolicy,
    UsageError,
};

fn bounded(max: usize) -> Config {
    Config::default().max_send_buffer(max)
}

#[test]
fn defaults() {
    let c = Config::default();
    assert_eq!(c.max_send_buffer, 16 << 20);
    assert_eq!(c.send_buffer_policy, SendBufferPolicy::Wait);
    let c = c.send_buffer_policy(SendBufferPolicy::Fail);
    assert_eq!(c.send_buffer_policy, SendBufferPolicy::Fail);
}

#[test]
fn refuses_at_the_bound_and_accepts_after_draining() {
    let mut c = Connection::server(bounded(1000));
    assert_eq!(c.send_capacity(), 1000);
    assert!(!c.would_block());
    c.send_binary(vec![1u8; 600]).unwrap();
    assert_eq!(c.buffered_amount(), 604);
    assert_eq!(c.send_capacity(), 1000 - 604);
    // Below the bound any message is taken, even one that goes past it.
    assert!(!c.would_block());
    c.send_binary(vec![2u8; 600]).unwrap();
    let queued = c.buffered_amount();
    assert_eq!(queued, 1208);
    assert_eq!(c.send_capacity(), 0);
    assert!(c.would_block());
    // Now every kind of send is refused, and nothing changes.
    assert_eq!(c.send_binary(vec![3u8; 1]), Err(UsageError::SendBufferFull));
    assert_eq!(c.send_text("é"), Err(UsageError::SendBufferFull));
    assert_eq!(
        c.send_message(DataKind::Binary, vec![0u8; 1], false),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(
        c.send(Instant::now(), Message::binary(vec![0u8; 1])),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(
        c.send_prepared(&PreparedMessage::binary(vec![0u8; 1])),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(c.send_ping("p"), Err(UsageError::SendBufferFull));
    assert_eq!(c.send_pong("p"), Err(UsageError::SendBufferFull));
    assert_eq!(c.buffered_amount(), queued);
    let (bytes, _) = drain_transmit(&mut c);
    let f = decode_frames(&bytes);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].payload, vec![1u8; 600]);
    assert_eq!(f[1].payload, vec![2u8; 600]);
    // Drained: accepted again.
    assert_eq!(c.send_capacity(), 1000);
    c.send_binary(vec![3u8; 1]).unwrap();
}

#[test]
fn a_message_larger_than_the_bound_is_taken_below_it() {
    let mut c = Connection::server(bounded(100));
    c.send_binary(vec![7u8; 10]).unwrap();
    c.send_binary(vec![7u8; 10_000]).unwrap();
    assert_eq!(c.send_binary(vec![7u8; 1]), Err(UsageError::SendBufferFull));
    // A bound of 0: only an empty queue takes a message.
    let mut c = Connection::server(bounded(0));
    c.send_binary(vec![7u8; 10]).unwrap();
    assert_eq!(c.send_binary(vec![7u8; 1]), Err(UsageError::SendBufferFull));
}

#[test]
fn close_is_never_refused() {
    let mut c = Connection::server(bounded(100));
    c.send_binary(vec![0u8; 200]).unwrap();
    assert!(c.would_block());
    c.close(Instant::now(), CloseCode::NORMAL, "bye").unwrap();
    let (bytes, _) = drain_transmit(&mut c);
    let f = decode_frames(&bytes);
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].opcode, OpCode::Close);
}

#[test]
fn a_refused_fragment_leaves_the_message_state_unchanged() {
    // "é" split across fragments; the second fragment is refused, then
    // sent again once the queue drained: the peer gets one valid message.
    let mut p = Pair::with(Opts {
        server: bounded(10),
        ..Opts::default()
    });
    let s = &mut p.server.conn;
    s.send_fragment(DataKind::Text, vec![b'a'; 20], false)
        .unwrap();
    assert_eq!(
        s.send_fragment(DataKind::Text, vec![b'b', 0xc3], false),
        Err(UsageError::SendBufferFull)
    );
    // A refused final fragment does not end the message either.
    assert_eq!(
        s.send_fragment(DataKind::Text, vec![b'b'], true),
        Err(UsageError::SendBufferFull)
    );
    p.drive();
    p.server
        .conn
        .send_fragment(DataKind::Text, vec![b'b', 0xc3], false)
        .unwrap();
    p.drive();
    p.server
        .conn
        .send_fragment(DataKind::Text, vec![0xa9], true)
        .unwrap();
    p.drive();
    let mut want = "a".repeat(20);
    want.push_str("bé");
    assert!(p.client.conn.is_open(), "{:?}", p.client.events);
    let texts: Vec<_> = p
        .client
        .events
        .iter()
        .filter_map(|e| match e {
            ws_proto::Event::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, vec![want]);
}

#[test]
fn auto_pongs_and_the_heartbeat_are_not_refused() {
    // Answers the core owes the peer are not the caller's sends.
    let mut p = Pair::with(Opts {
        server: bounded(10),
        ..Opts::default()
    });
    p.server.conn.send_binary(vec![0u8; 100]).unwrap();
    assert!(p.server.conn.would_block());
    let now = p.now;
    p.server
        .conn
        .handle_input(now, &cframe(0x89, b"are you there"));
    let (bytes, _) = drain_transmit(&mut p.server.conn);
    let f = decode_frames(&bytes);
    assert_eq!(f[1].opcode, OpCode::Pong);
    assert_eq!(f[1].payload, b"are you there");

    let cfg = bounded(10).ping_interval(Some(std::time::Duration::from_millis(100)));
    let mut c = Connection::server(cfg);
    let t0 = Instant::now();
    c.start(t0);
    c.send_binary(vec![0u8; 100]).unwrap();
    assert!(c.would_block());
    c.handle_timeout(t0 + std::time::Duration::from_millis(100));
    let (bytes, _) = drain_transmit(&mut c);
    let f = decode_frames(&bytes);
    assert_eq!(f[1].opcode, OpCode::Ping);
}

#[test]
fn should_wait_follows_the_policy() {
    let mut wait = Connection::server(bounded(100));
    let mut fail = Connection::server(bounded(100).send_buffer_policy(SendBufferPolicy::Fail));
    for c in [&mut wait, &mut fail] {
        assert!(!c.should_wait());
        c.send_binary(vec![0u8; 200]).unwrap();
        assert!(c.would_block());
    }
    assert!(wait.should_wait());
    // With Fail nobody waits: the send is made and refused.
    assert!(!fail.should_wait());
    assert_eq!(
        fail.send_binary(vec![0u8; 10]),
        Err(UsageError::SendBufferFull)
    );
    // The core refuses under Wait too: the driver is the one that waits.
    assert_eq!(
        wait.send_binary(vec![0u8; 10]),
        Err(UsageError::SendBufferFull)
    );
    drain_transmit(&mut wait);
    assert!(!wait.should_wait());
    wait.send_binary(vec![0u8; 10]).unwrap();
}
