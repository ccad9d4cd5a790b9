//! A peer that floods pings and reads nothing cannot hold the reading
//! thread: `recv` writes pongs only as far as the stream takes them at
//! once, keeps delivering what arrives after the flood, and writes the
//! rest of the answers by itself once the peer reads again.
//!
//! Over a Unix socket pair, whose small fixed buffers take far less than
//! the 7.5 MiB of pongs the flood asks for (a blocking pong write would
//! wait forever).
#![cfg(unix)]

mod util;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread::JoinHandle;
use util::bounded;
use ws_blocking::{CloseCode, Config, Message, WebSocket};
use ws_proto::Connection;

/// Pings in the flood.
const PINGS: u32 = 60_000;

/// What may wait to be written at any time (the core coalesces pongs
/// beyond 64 KiB).
const MAX_QUEUED: usize = 192 << 10;

/// A masked client frame (the mask key is zero, so the payload is as is).
fn frame(op: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 125);
    let mut f = vec![0x80 | op, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

fn ping_payload(i: u32) -> Vec<u8> {
    i.to_be_bytes().repeat(31)
}

/// Reads one unmasked server frame: opcode and payload; `None` at EOF.
fn read_frame(s: &mut UnixStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    if s.read_exact(&mut h).is_err() {
        return None;
    }
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = (h[1] & 0x7f) as usize;
    assert!(len <= 125, "only control frames expected");
    let mut p = vec![0; len];
    s.read_exact(&mut p).expect("payload");
    Some((h[0] & 0x0f, p))
}

/// The flooding peer: writes every ping and then a text message without
/// reading; then reads pongs until the answer to the last ping arrives
/// (which `recv` must write by itself: nobody sends), closes, and reads
/// the close echo and the end. Returns the pongs it read.
fn flooding_peer(mut s: UnixStream) -> JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..PINGS {
            batch.extend(frame(0x9, &ping_payload(i)));
            if batch.len() > 32 << 10 || i + 1 == PINGS {
                s.write_all(&batch).expect("flood");
                batch.clear();
            }
        }
        s.write_all(&frame(0x1, b"after the flood")).unwrap();
        let last = ping_payload(PINGS - 1);
        let mut pongs = 0;
        loop {
            match read_frame(&mut s) {
                Some((0xA, p)) => {
                    pongs += 1;
                    if p == last {
                        break;
                    }
                }
                other => panic!("expected pongs, got {other:?}"),
            }
        }
        s.write_all(&frame(0x8, &1000u16.to_be_bytes())).unwrap();
        assert_eq!(
            read_frame(&mut s),
            Some((0x8, 1000u16.to_be_bytes().to_vec()))
        );
        assert_eq!(read_frame(&mut s), None);
        pongs
    })
}

/// Receives the flood through `recv`; returns the pings, the largest
/// queue seen, and the first other item.
fn take_flood(
    mut recv: impl FnMut() -> Option<Result<Message, ws_blocking::Error>>,
    buffered: impl Fn() -> usize,
) -> (u32, usize, Option<Result<Message, ws_blocking::Error>>) {
    let (mut pings, mut max_queued) = (0, 0);
    loop {
        match recv() {
            Some(Ok(Message::Ping(_))) => {
                pings += 1;
                max_queued = max_queued.max(buffered());
            }
            other => return (pings, max_queued, other),
        }
    }
}

fn server(s: UnixStream) -> WebSocket<UnixStream> {
    WebSocket::from_connection(s, Connection::server(Config::default()))
}

#[test]
fn recv_is_not_held_by_a_peer_that_floods_pings() {
    bounded(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = flooding_peer(b);
        let ws = std::cell::RefCell::new(server(a));
        let (pings, max_queued, next) =
            take_flood(|| ws.borrow_mut().recv(), || ws.borrow().buffered_amount());
        let mut ws = ws.into_inner();
        assert_eq!(pings, PINGS);
        assert!(max_queued <= MAX_QUEUED, "{max_queued} bytes queued");
        assert_eq!(next.unwrap().unwrap(), Message::text("after the flood"));
        // The peer reads now; the pongs left go out from `recv` alone.
        match ws.recv() {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::NORMAL),
            other => panic!("expected the peer's close, got {other:?}"),
        }
        assert!(ws.recv().is_none());
        let pongs = peer.join().unwrap();
        assert!(pongs > 0 && pongs <= PINGS as usize, "{pongs} pongs");
    });
}

#[test]
fn reading_half_is_not_held_by_a_peer_that_floods_pings() {
    bounded(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let peer = flooding_peer(b);
        let (rx, tx) = server(a).split();
        let rx = std::cell::RefCell::new(rx);
        let (pings, max_queued, next) =
            take_flood(|| rx.borrow_mut().recv(), || tx.buffered_amount());
        assert_eq!(pings, PINGS);
        assert!(max_queued <= MAX_QUEUED, "{max_queued} bytes queued");
        assert_eq!(next.unwrap().unwrap(), Message::text("after the flood"));
        let mut rx = rx.into_inner();
        match rx.recv() {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::NORMAL),
            other => panic!("expected the peer's close, got {other:?}"),
        }
        assert!(rx.recv().is_none());
        let pongs = peer.join().unwrap();
        assert!(pongs > 0 && pongs <= PINGS as usize, "{pongs} pongs");
        drop(tx);
    });
}

/// What `recv` could not write goes out first with the writing half's
/// next send, in order.
#[test]
fn a_send_writes_the_answers_left_first() {
    bounded(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let (rx, mut tx) = server(a).split();
        let mut peer = b.try_clone().unwrap();
        // Flood without reading until the reader has queued answers it
        // could not write.
        let flood = std::thread::spawn(move || {
            let mut batch = Vec::new();
            for i in 0..PINGS {
                batch.extend(frame(0x9, &ping_payload(i)));
            }
            batch.extend(frame(0x1, b"end"));
            peer.write_all(&batch).unwrap();
        });
        let rx = std::cell::RefCell::new(rx);
        let (pings, _, next) = take_flood(|| rx.borrow_mut().recv(), || 0);
        assert_eq!(pings, PINGS);
        assert_eq!(next.unwrap().unwrap(), Message::text("end"));
        flood.join().unwrap();
        assert!(tx.buffered_amount() > 0, "the peer read nothing yet");
        // The writer's send writes the reader's leftovers, then its text.
        let sender = std::thread::spawn(move || {
            tx.send(Message::text("from the writer")).unwrap();
            tx
        });
        let mut b = b;
        let last = ping_payload(PINGS - 1);
        let (mut pongs_before, mut prev) = (0, None);
        loop {
            match read_frame(&mut b).expect("a frame") {
                (0xA, p) => {
                    // In order: the leftovers of one write, then the rest.
                    let i = u32::from_be_bytes(p[..4].try_into().unwrap());
                    assert!(prev < Some(i), "pong {i} after {prev:?}");
                    prev = Some(i);
                    pongs_before += 1;
                }
                (0x1, p) => {
                    assert_eq!(p, b"from the writer");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(pongs_before > 0, "the leftovers go out before the text");
        // Everything the send wrote is in the socket once it returns; then
        // the connection goes away and the peer reads to the end.
        let tx = sender.join().unwrap();
        drop((tx, rx));
        let mut saw_last = prev == Some(PINGS - 1);
        while let Some((op, p)) = read_frame(&mut b) {
            assert_eq!(op, 0xA);
            saw_last |= p == last;
        }
        assert!(saw_last, "the answer to the last ping was written");
    });
}
