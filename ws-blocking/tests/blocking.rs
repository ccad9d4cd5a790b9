//! The blocking adapter on one thread per end, over TCP on 127.0.0.1 (and a
//! Unix socket pair): echo, close from each side, timeouts, pings,
//! handshakes. Every test is bounded in time and none sleeps to wait.

// `accept_with` callbacks return the core's `Result<Accept, Reject>`,
// whose error side is large; fine for a once-per-connection decision.
#![allow(clippy::result_large_err)]

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use util::*;
use ws_blocking::{
    http, Accept, CloseCode, CloseFrame, Config, DeflateConfig, Error, HandshakeError, Message,
    ProtocolError, Reject,
};
use ws_proto::Ending;

const SIZES: &[usize] = &[
    0,
    1,
    125,
    126,
    127,
    1000,
    65535,
    65536,
    65537,
    1 << 20,
    4 << 20,
];

#[test]
fn echo_round_trips() {
    bounded(|| {
        let (addr, server) = echo_server(Config::default());
        let (mut ws, resp) = ws_blocking::connect(&url(addr)).expect("connect");
        assert_eq!(resp.status(), 101);
        for (i, &n) in SIZES.iter().enumerate() {
            for text in [true, false] {
                let m = data(n, i as u8, text);
                ws.send(m.clone()).expect("send");
                let got = ws.recv().expect("a message").expect("no error");
                assert_eq!(got, m, "size {n}, text {text}");
            }
        }
        // Multi-byte UTF-8 survives.
        ws.send(Message::text("héllo wörld ✓ 🦀")).unwrap();
        assert_eq!(
            ws.recv().unwrap().unwrap(),
            Message::text("héllo wörld ✓ 🦀")
        );
        ws.close(CloseCode::NORMAL, "done").unwrap();
        assert_eq!(
            ws.recv().unwrap().unwrap(),
            Message::Close(Some(CloseFrame::new(1000, "")))
        );
        assert!(ws.recv().is_none());
        assert!(ws.recv().is_none(), "stays ended");
        let info = server.join().unwrap();
        assert!(info.is_clean());
        assert!(info.remote_initiated);
        assert_eq!(info.received, Some(CloseFrame::new(1000, "done")));
    })
}

/// permessage-deflate is the core's business: the adapter only carries the
/// config, and echoes come back intact.
#[test]
fn echo_with_permessage_deflate() {
    bounded(|| {
        let config = Config::default().deflate(Some(DeflateConfig::default()));
        let (addr, server) = echo_server(config.clone());
        let req = http::Request::get(url(addr)).body(()).unwrap();
        let (mut ws, resp) = ws_blocking::connect_with(req, config).unwrap();
        let ext = resp.headers()["sec-websocket-extensions"].to_str().unwrap();
        assert!(ext.starts_with("permessage-deflate"), "{ext}");
        for (i, &n) in SIZES.iter().enumerate() {
            let m = data(n, i as u8, i % 2 == 0);
            ws.send(m.clone()).unwrap();
            assert_eq!(ws.recv().unwrap().unwrap(), m, "size {n}");
        }
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().is_some() {}
        assert!(server.join().unwrap().is_clean());
    })
}

#[test]
fn feed_batches_then_flush() {
    bounded(|| {
        let (addr, server) = echo_server(Config::default());
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        for i in 0..100u32 {
            ws.feed(Message::text(format!("m{i}"))).unwrap();
        }
        assert!(ws.buffered_amount() > 0);
        ws.flush().unwrap();
        assert_eq!(ws.buffered_amount(), 0);
        for i in 0..100u32 {
            assert_eq!(ws.recv().unwrap().unwrap(), Message::text(format!("m{i}")));
        }
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().is_some() {}
        assert!(server.join().unwrap().is_clean());
    })
}

#[test]
fn iterator_yields_messages_then_close() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (mut ws, _) = ws_blocking::accept_tcp(&l).unwrap();
            for i in 0..3 {
                ws.send(Message::text(format!("{i}"))).unwrap();
            }
            ws.close(CloseCode::GOING_AWAY, "bye").unwrap();
            let rest: Vec<_> = ws.by_ref().collect();
            assert_eq!(
                rest,
                vec![Ok(Message::Close(Some(CloseFrame::new(1001, ""))))]
            );
        });
        let (ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        let all: Vec<_> = ws.collect::<Result<_, _>>().unwrap();
        assert_eq!(
            all,
            vec![
                Message::text("0"),
                Message::text("1"),
                Message::text("2"),
                Message::Close(Some(CloseFrame::new(1001, "bye"))),
            ]
        );
        server.join().unwrap();
    })
}

#[test]
fn client_closes() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (mut ws, _) = ws_blocking::accept_tcp(&l).unwrap();
            assert_eq!(
                ws.recv().unwrap().unwrap(),
                Message::Close(Some(CloseFrame::new(4000, "client bye")))
            );
            assert!(ws.recv().is_none());
            ws.close_info().cloned().unwrap()
        });
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        ws.close(CloseCode(4000), "client bye").unwrap();
        assert_eq!(
            ws.send(Message::text("late")),
            Err(Error::Usage(ws_blocking::UsageError::Closed))
        );
        assert_eq!(
            ws.recv().unwrap().unwrap(),
            Message::Close(Some(CloseFrame::new(4000, "")))
        );
        assert!(ws.recv().is_none());
        let mine = ws.close_info().unwrap();
        assert!(mine.is_clean() && !mine.remote_initiated);
        assert_eq!(mine.sent, Some(CloseFrame::new(4000, "client bye")));
        let theirs = server.join().unwrap();
        assert!(theirs.is_clean() && theirs.remote_initiated);
    })
}

#[test]
fn server_closes() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (mut ws, _) = ws_blocking::accept_tcp(&l).unwrap();
            ws.send(Message::text("before")).unwrap();
            ws.close(CloseCode::NORMAL, "server bye").unwrap();
            assert_eq!(
                ws.recv().unwrap().unwrap(),
                Message::Close(Some(CloseFrame::new(1000, "")))
            );
            assert!(ws.recv().is_none());
            ws.close_info().cloned().unwrap()
        });
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("before"));
        assert_eq!(
            ws.recv().unwrap().unwrap(),
            Message::Close(Some(CloseFrame::new(1000, "server bye")))
        );
        assert!(ws.recv().is_none());
        let mine = ws.close_info().unwrap();
        assert!(mine.is_clean() && mine.remote_initiated);
        let theirs = server.join().unwrap();
        assert!(theirs.is_clean() && !theirs.remote_initiated);
    })
}

/// Checks a close-timeout ending: `Err(Closed(Timeout))`, then `None`, no
/// sooner than `timeout` after `t0` and well before the test limit.
fn assert_timed_out(r: Option<Result<Message, Error>>, t0: Instant, timeout: Duration) {
    match r {
        Some(Err(Error::Closed(info))) => assert_eq!(info.ending, Ending::Timeout, "{info}"),
        other => panic!("expected a close timeout, got {other:?}"),
    }
    let waited = t0.elapsed();
    assert!(waited >= timeout, "ended after {waited:?}");
    assert!(
        waited < timeout + Duration::from_secs(5),
        "ended after {waited:?}"
    );
}

#[test]
fn close_timeout_client_against_silent_peer() {
    bounded(|| {
        let (l, addr) = listener();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        // Completes the upgrade, then never answers (and keeps the socket
        // open until the test is over).
        let peer = std::thread::spawn(move || {
            let tcp = raw_upgrade(&l);
            let _ = done_rx.recv();
            drop(tcp);
        });
        let timeout = Duration::from_millis(200);
        let req = http::Request::get(url(addr)).body(()).unwrap();
        let (mut ws, _) =
            ws_blocking::connect_with(req, Config::default().close_timeout(timeout)).unwrap();
        let t0 = Instant::now();
        ws.close(CloseCode::NORMAL, "").unwrap();
        assert_timed_out(ws.recv(), t0, timeout);
        assert!(ws.recv().is_none());
        assert_eq!(ws.close_info().unwrap().ending, Ending::Timeout);
        done_tx.send(()).unwrap();
        peer.join().unwrap();
    })
}

#[test]
fn close_timeout_server_against_silent_peer() {
    bounded(|| {
        let (l, addr) = listener();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let peer = std::thread::spawn(move || {
            let tcp = raw_client(addr);
            let _ = done_rx.recv();
            drop(tcp);
        });
        let timeout = Duration::from_millis(200);
        let (tcp, _) = l.accept().unwrap();
        let mut ws =
            ws_blocking::accept_with(tcp, Config::default().close_timeout(timeout), |_| {
                Ok(Accept::new())
            })
            .unwrap();
        let t0 = Instant::now();
        ws.close(CloseCode::NORMAL, "").unwrap();
        assert_timed_out(ws.recv(), t0, timeout);
        assert!(ws.recv().is_none());
        done_tx.send(()).unwrap();
        peer.join().unwrap();
    })
}

#[test]
fn ping_pong_both_ways() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (mut ws, _) = ws_blocking::accept_tcp(&l).unwrap();
            // The client's ping is reported (and already answered).
            assert_eq!(
                ws.recv().unwrap().unwrap(),
                Message::Ping(b"from client"[..].into())
            );
            ws.ping(&b"from server"[..]).unwrap();
            assert_eq!(
                ws.recv().unwrap().unwrap(),
                Message::Pong(b"from server"[..].into())
            );
            // An unsolicited pong is delivered as is.
            assert_eq!(
                ws.recv().unwrap().unwrap(),
                Message::Pong(b"unsolicited"[..].into())
            );
            ws.close(CloseCode::NORMAL, "").unwrap();
            while ws.recv().is_some() {}
        });
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        ws.ping(&b"from client"[..]).unwrap();
        assert_eq!(
            ws.recv().unwrap().unwrap(),
            Message::Pong(b"from client"[..].into())
        );
        assert_eq!(
            ws.recv().unwrap().unwrap(),
            Message::Ping(b"from server"[..].into())
        );
        ws.send(Message::Pong(b"unsolicited"[..].into())).unwrap();
        assert!(matches!(ws.recv(), Some(Ok(Message::Close(_)))));
        assert!(ws.recv().is_none());
        server.join().unwrap();
    })
}

#[test]
fn oversized_ping_is_a_usage_error() {
    bounded(|| {
        let (addr, server) = echo_server(Config::default());
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        assert_eq!(
            ws.ping(vec![0u8; 126]),
            Err(Error::Usage(ws_blocking::UsageError::ControlPayloadTooLong))
        );
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().is_some() {}
        assert!(server.join().unwrap().is_clean());
    })
}

#[test]
fn peer_vanishes_without_close() {
    bounded(|| {
        let (l, addr) = listener();
        let peer = std::thread::spawn(move || drop(raw_upgrade(&l)));
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        peer.join().unwrap();
        match ws.recv() {
            Some(Err(Error::Closed(info))) => assert_eq!(info.ending, Ending::Abnormal),
            Some(Err(Error::Io(_))) => {} // a reset instead of a FIN
            other => panic!("expected an abnormal end, got {other:?}"),
        }
        assert!(ws.recv().is_none());
    })
}

#[test]
fn protocol_error_from_peer() {
    bounded(|| {
        let (l, addr) = listener();
        let peer = std::thread::spawn(move || {
            let mut tcp = raw_upgrade(&l);
            // RFC 6455 §5.1: a server must not mask its frames.
            tcp.write_all(&[0x81, 0x81, 1, 2, 3, 4, b'x' ^ 1]).unwrap();
            // The client fails the connection with 1002 and waits for us to
            // close TCP first.
            let mut got = [0u8; 4];
            tcp.read_exact(&mut got).unwrap();
            assert_eq!(got[0], 0x88, "a close frame");
            assert!(got[1] & 0x7f >= 2);
            let mut key_and_code = [0u8; 2 + 4];
            key_and_code[..2].copy_from_slice(&got[2..]);
            tcp.read_exact(&mut key_and_code[2..]).unwrap();
            let key = &key_and_code[..4];
            let code = [key_and_code[4] ^ key[0], key_and_code[5] ^ key[1]];
            assert_eq!(u16::from_be_bytes(code), 1002);
            drop(tcp);
        });
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        assert_eq!(
            ws.recv(),
            Some(Err(Error::Protocol(ProtocolError::MaskedFrame)))
        );
        assert!(ws.recv().is_none());
        peer.join().unwrap();
    })
}

#[test]
fn handshake_timeout_server() {
    bounded(|| {
        let (l, addr) = listener();
        let silent = std::net::TcpStream::connect(addr).unwrap();
        let (tcp, _) = l.accept().unwrap();
        let timeout = Duration::from_millis(200);
        let t0 = Instant::now();
        let r = ws_blocking::accept_with(
            tcp,
            Config::default().handshake_timeout(Some(timeout)),
            |_| Ok(Accept::new()),
        );
        assert_eq!(r.unwrap_err(), Error::Handshake(HandshakeError::Timeout));
        assert!(t0.elapsed() >= timeout);
        drop(silent);
    })
}

#[test]
fn handshake_timeout_client() {
    bounded(|| {
        let (l, addr) = listener();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let peer = std::thread::spawn(move || {
            let (tcp, _) = l.accept().unwrap();
            let _ = done_rx.recv();
            drop(tcp);
        });
        let timeout = Duration::from_millis(200);
        let t0 = Instant::now();
        let req = http::Request::get(url(addr)).body(()).unwrap();
        let r = ws_blocking::connect_with(req, Config::default().handshake_timeout(Some(timeout)));
        assert_eq!(r.unwrap_err(), Error::Handshake(HandshakeError::Timeout));
        assert!(t0.elapsed() >= timeout);
        done_tx.send(()).unwrap();
        peer.join().unwrap();
    })
}

#[test]
fn bad_request_gets_an_http_error() {
    bounded(|| {
        let (l, addr) = listener();
        let peer = std::thread::spawn(move || {
            let mut tcp = std::net::TcpStream::connect(addr).unwrap();
            tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut resp = String::new();
            tcp.read_to_string(&mut resp).unwrap();
            resp
        });
        let (tcp, _) = l.accept().unwrap();
        let r = ws_blocking::accept(tcp);
        assert!(
            matches!(r, Err(Error::Handshake(HandshakeError::BadRequest(_)))),
            "{r:?}"
        );
        let resp = peer.join().unwrap();
        assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    })
}

#[test]
fn reject_and_subprotocol() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            // First connection: rejected by the callback.
            let (tcp, _) = l.accept().unwrap();
            let r = ws_blocking::accept_with(tcp, Config::default(), |req| {
                assert_eq!(req.uri().path(), "/private");
                Err(Reject::new(403).body("go away"))
            });
            assert_eq!(
                r.unwrap_err(),
                Error::Handshake(HandshakeError::Rejected(403))
            );
            // Second: accepted with the subprotocol "b".
            let (tcp, _) = l.accept().unwrap();
            let mut ws = ws_blocking::accept_with(tcp, Config::default(), |req| {
                let offered = req.headers()["sec-websocket-protocol"].to_str().unwrap();
                assert_eq!(offered, "a, b");
                Ok(Accept::new().protocol("b"))
            })
            .unwrap();
            echo(&mut ws);
        });
        let req = http::Request::get(format!("ws://{addr}/private"))
            .body(())
            .unwrap();
        match ws_blocking::connect_with(req, Config::default()) {
            Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, .. })) => {
                assert_eq!(status, 403)
            }
            other => panic!("expected a 403, got {other:?}"),
        }
        let req = http::Request::get(url(addr))
            .header("Sec-WebSocket-Protocol", "a, b")
            .body(())
            .unwrap();
        let (mut ws, resp) = ws_blocking::connect_with(req, Config::default()).unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], "b");
        ws.send(Message::text("x")).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::text("x"));
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().is_some() {}
        server.join().unwrap();
    })
}

#[test]
fn accept_prefixed_takes_the_peeked_bytes() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (mut tcp, _) = l.accept().unwrap();
            // A router read the start of the request.
            let mut head = [0u8; 10];
            tcp.read_exact(&mut head).unwrap();
            assert_eq!(&head[..4], b"GET ");
            let mut ws =
                ws_blocking::accept_prefixed(tcp, &head, Config::default(), |_| Ok(Accept::new()))
                    .unwrap();
            echo(&mut ws);
        });
        let (mut ws, _) = ws_blocking::connect(&url(addr)).unwrap();
        ws.send(Message::binary(vec![1, 2, 3])).unwrap();
        assert_eq!(ws.recv().unwrap().unwrap(), Message::binary(vec![1, 2, 3]));
        ws.close(CloseCode::NORMAL, "").unwrap();
        while ws.recv().is_some() {}
        server.join().unwrap();
    })
}

#[test]
fn wss_is_not_supported_yet() {
    assert_eq!(
        ws_blocking::connect("wss://127.0.0.1:1/").unwrap_err(),
        Error::Usage(ws_blocking::UsageError::InvalidRequest)
    );
}

#[cfg(unix)]
#[test]
fn generic_stream_unix_socket_pair() {
    use std::os::unix::net::UnixStream;
    bounded(|| {
        let (a, b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut ws = ws_blocking::accept(a).unwrap();
            while let Some(Ok(m)) = ws.recv() {
                if m.is_data() {
                    ws.send(m).unwrap();
                }
            }
            ws.close_info().cloned().unwrap()
        });
        let req = http::Request::get("ws://localhost/").body(()).unwrap();
        let (mut ws, _) = ws_blocking::client_handshake(b, req, Config::default()).unwrap();
        for &n in SIZES {
            let m = data(n, 7, false);
            ws.send(m.clone()).unwrap();
            assert_eq!(ws.recv().unwrap().unwrap(), m);
        }
        ws.close(CloseCode::NORMAL, "").unwrap();
        assert!(matches!(ws.recv(), Some(Ok(Message::Close(_)))));
        assert!(ws.recv().is_none());
        assert!(server.join().unwrap().is_clean());
    })
}

/// The accept callback picks a subprotocol the client did not offer: a
/// server bug, so the client gets a 500 (not a dropped connection) and the
/// server's `accept_with` returns the usage error.
#[test]
fn unoffered_subprotocol_is_answered_with_500() {
    bounded(|| {
        let (l, addr) = listener();
        let server = std::thread::spawn(move || {
            let (tcp, _) = l.accept().unwrap();
            ws_blocking::accept_with(tcp, Config::default(), |_| {
                Ok(ws_blocking::Accept::new().protocol("mqtt"))
            })
            .map(|_| ())
        });
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(TEST_LIMIT)).unwrap();
        let req = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).unwrap();
        let head = read_head(&mut tcp);
        assert!(
            head.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{head}"
        );
        // Then the server closes the connection.
        let mut rest = Vec::new();
        tcp.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{rest:?}");
        assert_eq!(
            server.join().unwrap(),
            Err(Error::Usage(ws_blocking::UsageError::ProtocolNotOffered))
        );
    });
}
