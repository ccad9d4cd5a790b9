//! The bound on the send queue (`Config::max_send_buffer`): refused sends
//! leave the state unchanged, a message always fits an empty queue, close
//! is never refused.

mod util;

use std::time::Instant;
use util::*;
use ws_proto::{
    CloseCode, Config, Connection, DataKind, Event, Message, PreparedMessage, SendBufferPolicy,
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
fn refuses_past_the_bound_and_accepts_after_draining() {
    let mut c = Connection::server(bounded(1000));
    assert_eq!(c.send_capacity(), 1000);
    assert!(!c.would_block(5000), "an empty queue takes anything");
    c.send_binary(vec![1u8; 600]).unwrap();
    let queued = c.buffered_amount();
    assert_eq!(queued, 604);
    assert_eq!(c.send_capacity(), 1000 - 604);
    assert!(c.would_block(600));
    assert!(!c.would_block(396));
    // Every kind of send is refused, and nothing changes.
    assert_eq!(
        c.send_binary(vec![2u8; 600]),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(
        c.send_text("é".repeat(300)),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(
        c.send_message(DataKind::Binary, vec![0u8; 600], false),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(
        c.send(Instant::now(), Message::binary(vec![0u8; 600])),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(
        c.send_prepared(&PreparedMessage::binary(vec![0u8; 600])),
        Err(UsageError::SendBufferFull)
    );
    assert_eq!(c.buffered_amount(), queued);
    // Within the bound: accepted.
    c.send_binary(vec![3u8; 300]).unwrap();
    assert_eq!(c.buffered_amount(), queued + 304);
    let (bytes, _) = drain_transmit(&mut c);
    let f = decode_frames(&bytes);
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].payload, vec![1u8; 600]);
    assert_eq!(f[1].payload, vec![3u8; 300]);
    // Drained: the big one goes now.
    assert_eq!(c.send_capacity(), 1000);
    c.send_binary(vec![2u8; 600]).unwrap();
}

#[test]
fn a_message_larger_than_the_bound_fits_an_empty_queue() {
    let mut c = Connection::server(bounded(100));
    c.send_binary(vec![7u8; 10_000]).unwrap();
    assert_eq!(c.send_binary(vec![7u8; 1]), Err(UsageError::SendBufferFull));
    assert_eq!(c.send_capacity(), 0);
}

#[test]
fn control_frames_and_close() {
    let mut c = Connection::server(bounded(100));
    c.send_binary(vec![0u8; 200]).unwrap();
    assert_eq!(c.send_ping("p"), Err(UsageError::SendBufferFull));
    assert_eq!(c.send_pong("p"), Err(UsageError::SendBufferFull));
    // Closing is always possible.
    c.close(Instant::now(), CloseCode::NORMAL, "bye").unwrap();
    let (bytes, _) = drain_transmit(&mut c);
    let f = decode_frames(&bytes);
    assert_eq!(f.len(), 2);
    assert_eq!(f[1].opcode, ws_proto::OpCode::Close);
}

#[test]
fn a_refused_fragment_leaves_the_message_state_unchanged() {
    let mut c = Connection::server(bounded(10));
    // "é" split across fragments; the second is refused, then retried.
    c.send_fragment(DataKind::Text, vec![b'a'; 20], false)
        .unwrap();
    assert_eq!(
        c.send_fragment(DataKind::Text, vec![b'b', 0xc3], false),
        Err(UsageError::SendBufferFull)
    );
    let (first, _) = drain_transmit(&mut c);
    c.send_fragment(DataKind::Text, vec![b'b', 0xc3], false)
        .unwrap();
    c.send_fragment(DataKind::Text, vec![0xa9], true).unwrap();
    let (rest, _) = drain_transmit(&mut c);
    let mut all = first;
    all.extend(rest);
    // A client decodes one valid message.
    let mut p = Pair::new();
    p.client.inbox.extend_from_slice(&all);
    p.drive();
    let mut want = "a".repeat(20);
    want.push_str("bé");
    assert!(
        p.client
            .events
            .iter()
            .any(|e| matches!(e, Event::Text(t) if *t == *want.as_str())),
        "{:?}",
        p.client.events
    );
}

#[test]
fn auto_pongs_and_the_heartbeat_are_not_refused() {
    // Answers the core owes the peer are not the caller's sends.
    let mut p = Pair::with(Opts {
        server: bounded(10),
        ..Opts::default()
    });
    p.server.conn.send_binary(vec![0u8; 100]).unwrap();
    let now = p.now;
    p.server
        .conn
        .handle_input(now, &cframe(0x89, b"are you there"));
    assert!(p.server.conn.buffered_amount() > 104);
    let (bytes, _) = drain_transmit(&mut p.server.conn);
    let f = decode_frames(&bytes);
    assert_eq!(f[1].opcode, ws_proto::OpCode::Pong);
    assert_eq!(f[1].payload, b"are you there");
}

#[test]
fn should_wait_follows_the_policy() {
    let mut wait = Connection::server(bounded(100));
    let mut fail = Connection::server(bounded(100).send_buffer_policy(SendBufferPolicy::Fail));
    for c in [&mut wait, &mut fail] {
        assert!(!c.should_wait(1000), "an empty queue takes anything");
        c.send_binary(vec![0u8; 90]).unwrap();
        assert!(c.would_block(10));
    }
    assert!(wait.should_wait(10));
    assert!(!wait.should_wait(4));
    // With Fail nobody waits: the send is made and refused.
    assert!(!fail.should_wait(10));
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
    assert!(!wait.should_wait(10));
    wait.send_binary(vec![0u8; 10]).unwrap();
}
