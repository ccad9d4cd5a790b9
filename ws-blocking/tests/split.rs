//! Split halves: one thread blocked in `recv` while another sends, pongs
//! and close echoes written by the reader next to the writer's frames, the
//! close timer started by the writer, and a writer stuck on a peer that
//! stopped reading. Every test is bounded in time and none sleeps to wait.

// `accept_with` callbacks return the core's `Result<Accept, Reject>`,
// whose error side is large; fine for a once-per-connection decision.
#![allow(clippy::result_large_err)]

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::*;
use ws_blocking::{
    http, CloseCode, CloseFrame, Config, Error, Message, UsageError, WebSocketReader,
    WebSocketWriter,
};
use ws_proto::Ending;

#[test]
fn halves_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<WebSocketReader<TcpStream>>();
    check::<WebSocketWriter<TcpStream>>();
    check::<ws_blocking::WebSocket<TcpStream>>();
}

/// The reader waits in `recv` (the server sends nothing until it receives)
/// while the writer sends; the server pings after every message, so the
/// reader writes pongs while the writer writes large frames. The server's
/// core would fail the connection on any interleaved frame.
#[test]
fn send_while_another_thread_receives() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (mut ws, _) = ws_blocking::accept_tcp(&l).unwrap();
            let mut pongs = 0;
            let mut n = 0u32;
            while let Some(msg) = ws.recv() {
                match msg.expect("no protocol error") {
                    m if m.is_data() => {
                        ws.feed(Message::Ping(n.to_be_bytes().to_vec().into()))
                            .unwrap();
                        ws.feed(m).unwrap();
                        n += 1;
                    }
                    Message::Pong(_) => pongs += 1,
                    _ => {}
                }
            }
            (ws.close_info().cloned().unwrap(), pongs, n)
        });
        let (ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        let (rx, mut tx) = ws.split();
        let reader = std::thread::spawn(move || {
            let mut data = Vec::new();
            let mut pings = 0;
            let mut end = None;
            for msg in rx {
                match msg {
                    Ok(m) if m.is_data() => data.push(m),
                    Ok(Message::Ping(_)) => pings += 1,
                    Ok(other) => end = Some(Ok(other)),
                    Err(e) => end = Some(Err(e)),
                }
            }
            (data, pings, end)
        });
        let sizes = [1usize, 200, 5000, 70_000, 300_000];
        let mut sent = Vec::new();
        for i in 0..200 {
            let m = data(sizes[i % sizes.len()], i as u8, i % 2 == 0);
            tx.send(m.clone()).unwrap();
            sent.push(m);
        }
        tx.close(CloseCode::NORMAL, "done").unwrap();
        let (got, pings, end) = reader.join().unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "echoes differ");
        assert_eq!(pings, sent.len());
        assert_eq!(
            end,
            Some(Ok(Message::Close(Some(CloseFrame::new(1000, "")))))
        );
        let (info, pongs, n) = server.join().unwrap();
        assert!(info.is_clean(), "{info}");
        assert_eq!(n as usize, sent.len());
        // Auto-pong may answer only the latest of several pings (RFC 6455
        // §5.5.3) while a large frame waits to be sent.
        assert!(pongs >= 1 && pongs <= sent.len(), "{pongs} pongs");
    })
}

#[test]
fn writer_close_is_timed_out_by_the_blocked_reader() {
    bounded(|| {
        let (l, addr) = listener();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        // Completes the upgrade, then never answers.
        let peer = std::thread::spawn(move || {
            let tcp = raw_upgrade(&l);
            let _ = done_rx.recv();
            drop(tcp);
        });
        let timeout = Duration::from_millis(300);
        let req = http::Request::get(url(addr)).body(()).unwrap();
        let (ws, _) =
            ws_blocking::connect_with(req, Config::default().close_timeout(timeout)).unwrap();
        let (mut rx, mut tx) = ws.split();
        let (ready_tx, ready_rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            ready_tx.send(()).unwrap();
            // Blocks with no deadline known yet: the writer's close arms one.
            let first = rx.recv();
            let second = rx.recv();
            (first, second, rx.close_info())
        });
        ready_rx.recv().unwrap();
        let t0 = Instant::now();
        tx.close(CloseCode::NORMAL, "").unwrap();
        let (first, second, info) = reader.join().unwrap();
        match first {
            Some(Err(Error::Closed(info))) => assert_eq!(info.ending, Ending::Timeout),
            other => panic!("expected a close timeout, got {other:?}"),
        }
        assert!(second.is_none());
        assert_eq!(info.unwrap().ending, Ending::Timeout);
        let waited = t0.elapsed();
        assert!(waited >= timeout, "{waited:?}");
        assert!(waited < timeout * 2 + Duration::from_secs(5), "{waited:?}");
        assert_eq!(
            tx.send(Message::text("late")),
            Err(Error::Usage(UsageError::Closed))
        );
        done_tx.send(()).unwrap();
        peer.join().unwrap();
    })
}

/// The writer is stuck writing a large message to a peer that stopped
/// reading; the peer's close frame and the close timer end the connection
/// in the reader, which wakes the writer instead of leaving it blocked.
#[test]
fn reader_end_wakes_a_stuck_writer() {
    bounded(|| {
        let (l, addr) = listener();
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let peer = std::thread::spawn(move || {
            let mut tcp = raw_upgrade(&l);
            // Read a little of the large message, so that the writer is
            // surely in the middle of it, then stop reading.
            let mut buf = vec![0u8; 1 << 20];
            tcp.read_exact(&mut buf).unwrap();
            tcp.write_all(&[0x88, 0x02, 0x03, 0xe8]).unwrap(); // close 1000
            let _ = done_rx.recv();
            drop(tcp);
        });
        let timeout = Duration::from_millis(300);
        let req = http::Request::get(url(addr)).body(()).unwrap();
        let (ws, _) =
            ws_blocking::connect_with(req, Config::default().close_timeout(timeout)).unwrap();
        let (mut rx, mut tx) = ws.split();
        let writer = std::thread::spawn(move || tx.send(Message::binary(vec![7u8; 24 << 20])));
        let end = rx.recv();
        assert!(
            matches!(end, Some(Ok(Message::Close(_))) | Some(Err(_))),
            "{end:?}"
        );
        assert!(rx.recv().is_none());
        let sent = writer.join().unwrap();
        assert!(matches!(sent, Err(Error::Io(_))), "{sent:?}");
        done_tx.send(()).unwrap();
        peer.join().unwrap();
    })
}

#[test]
fn peer_close_reaches_both_halves() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (mut ws, _) = ws_blocking::accept_tcp(&l).unwrap();
            assert_eq!(ws.recv().unwrap().unwrap(), Message::text("hi"));
            ws.close(CloseCode::GOING_AWAY, "restart").unwrap();
            while ws.recv().is_some() {}
            ws.close_info().cloned().unwrap()
        });
        let (ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        let (mut rx, mut tx) = ws.split();
        tx.send(Message::text("hi")).unwrap();
        assert_eq!(
            rx.recv().unwrap().unwrap(),
            Message::Close(Some(CloseFrame::new(1001, "restart")))
        );
        assert!(rx.recv().is_none());
        let info = rx.close_info().unwrap();
        assert!(info.is_clean() && info.remote_initiated);
        assert_eq!(
            tx.send(Message::text("late")),
            Err(Error::Usage(UsageError::Closed))
        );
        assert!(server.join().unwrap().is_clean());
    })
}

#[test]
fn unsplit_gives_the_socket_back() {
    bounded(|| {
        let (addr, server) = echo_server(Config::default());
        let (ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        let (mut rx, mut tx) = ws.split();
        tx.feed(Message::text("a")).unwrap();
        assert!(tx.buffered_amount() > 0);
        tx.flush().unwrap();
        tx.ping(&b"p"[..]).unwrap();
        // The server's core queues the pong as soon as it parses the ping,
        // possibly ahead of the echo of "a": take them in either order.
        let mut got = vec![rx.recv().unwrap().unwrap(), rx.recv().unwrap().unwrap()];
        got.sort_by_key(|m| m.is_data());
        assert_eq!(
            got,
            vec![Message::Pong(b"p"[..].into()), Message::text("a")]
        );
        let mut ws = rx.unsplit(tx);
        ws.send(Message::text("b")).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("b"));
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().is_some() {}
        assert!(ws.close_info().unwrap().is_clean());
        assert!(server.join().unwrap().is_clean());
    })
}

#[test]
#[should_panic(expected = "halves of different sockets")]
fn unsplit_rejects_foreign_halves() {
    let (addr1, _s1) = echo_server(Config::default());
    let (addr2, _s2) = echo_server(Config::default());
    let (a, _) = ws_blocking::connect(&url(addr1)).unwrap();
    let (b, _) = ws_blocking::connect(&url(addr2)).unwrap();
    let (rx, _tx) = a.split();
    let (_rx2, tx2) = b.split();
    let _ = rx.unsplit(tx2);
}
