//! `Connection::read_direct`: the rest of a large frame read straight into
//! the message, as ws-tokio does, gives the same events as `handle_input`.

mod util;

use bytes::BufMut;
use std::time::Instant;
use util::*;
use ws_proto::{Config, Connection, Ending, Event, OpCode, ProtocolError, Role, State};

/// What a client puts on the wire for these messages.
fn client_bytes(send: impl FnOnce(&mut Connection)) -> Vec<u8> {
    let mut c = Connection::client(Config::default(), [7; 32]);
    send(&mut c);
    let mut wire = Vec::new();
    while c.poll_transmit(&mut wire).is_some() {}
    wire
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Feeds `wire` to a server: reads of `read` bytes, each direct when the
/// core allows it (with `at_least`), through `handle_input` otherwise.
/// Returns the events and how many bytes went the direct way.
fn feed(wire: &[u8], read: usize, at_least: usize) -> (Vec<Event>, usize) {
    let now = Instant::now();
    let mut s = Connection::server(Config::default());
    let (mut off, mut direct) = (0, 0);
    let mut events = Vec::new();
    while off < wire.len() && s.state() == State::Open {
        let avail = &wire[off..(off + read).min(wire.len())];
        let took = s.read_direct(
            || now,
            at_least,
            |buf| {
                let n = avail.len().min(buf.remaining_mut());
                buf.put_slice(&avail[..n]);
                n
            },
        );
        let n = match took {
            Some(n) => {
                assert!(n > 0);
                direct += n;
                n
            }
            None => {
                s.handle_input(now, avail);
                avail.len()
            }
        };
        off += n;
        while let Some(ev) = s.poll_event() {
            events.push(ev);
        }
    }
    (events, direct)
}

#[test]
fn large_messages_read_directly_match_the_normal_path() {
    for len in [70_000usize, 300_000, (1 << 20) + 3, 3 << 20] {
        let data = payload(len);
        let wire = client_bytes(|c| {
            c.send_binary(data.clone()).unwrap();
            c.send_text("after").unwrap();
            c.send_binary(data.clone()).unwrap();
        });
        let (normal, none) = feed(&wire, 64 * 1024, usize::MAX);
        assert_eq!(none, 0);
        for read in [4096, 64 * 1024, 1 << 20, 5 << 20] {
            let (got, direct) = feed(&wire, read, 64 * 1024);
            assert_eq!(got, normal, "len {len}, reads of {read}");
            assert_eq!(got.len(), 3);
            assert_eq!(got[0], Event::Binary(data.clone().into()));
            assert_eq!(got[1], Event::Text("after".into()));
            // Each big frame came the direct way from the read that left
            // at least 64 KiB of it to come.
            let min = 2 * len.saturating_sub(64 * 1024 + read);
            assert!(direct >= min, "len {len}, reads of {read}: {direct}");
        }
    }
}

#[test]
fn not_offered_for_small_frames_control_frames_or_before_a_frame() {
    let wire = client_bytes(|c| {
        c.send_binary(payload(100_000)).unwrap();
    });
    let now = Instant::now();
    let mut s = Connection::server(Config::default());
    let mut called = false;
    // Nothing read yet: no frame in progress.
    assert!(s.read_direct(|| now, 1, |_| called = true).is_none());
    // The 14-byte header (64-bit length, mask key) and 6 payload bytes.
    s.handle_input(now, &wire[..20]);
    // 100,000 - 6 payload bytes to come: offered for at_least up to that.
    assert!(s
        .read_direct(|| now, 100_000 - 5, |_| called = true)
        .is_none());
    assert!(!called);
    let n = s
        .read_direct(
            || now,
            1,
            |buf| {
                assert_eq!(buf.remaining_mut(), 100_000 - 6);
                buf.put_slice(&wire[20..]);
            },
        )
        .map(|()| wire.len() - 20);
    assert_eq!(n, Some(100_000 - 6));
    assert_eq!(s.poll_event(), Some(Event::Binary(payload(100_000).into())));
    // A ping in progress is never read directly.
    let ping = client_bytes(|c| c.send_ping(vec![1; 100]).unwrap());
    s.handle_input(now, &ping[..8]);
    assert!(s.read_direct(|| now, 1, |_| called = true).is_none());
    assert!(!called);
}

#[test]
fn invalid_utf8_read_directly_fails_with_1007() {
    let now = Instant::now();
    let mut text = "é".repeat(60_000).into_bytes();
    text[100_000] = 0xFF;
    let wire = peer_frame(Role::Server, 0x81, &text);
    let mut s = Connection::server(Config::default());
    s.handle_input(now, &wire[..1000]);
    assert_eq!(s.state(), State::Open, "the start is valid");
    let direct = s.read_direct(|| now, 1, |buf| buf.put_slice(&wire[1000..]));
    assert!(direct.is_some());
    let (out, shut) = drain_transmit(&mut s);
    let frames = decode_frames(&out);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].opcode, OpCode::Close);
    assert_eq!(frames[0].payload[..2], 1007u16.to_be_bytes());
    assert!(shut);
    s.handle_eof(now);
    let ev = drain_events(&mut s);
    assert_eq!(
        the_close(&ev).ending,
        Ending::Protocol(ProtocolError::InvalidUtf8)
    );
}
