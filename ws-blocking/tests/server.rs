//! The blocking server: policy, request info, client tracking, broadcast
//! from other threads, upgrades of pre-read streams routed by path. Over
//! real TCP on 127.0.0.1; every test is bounded by a watchdog.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
use ws_blocking::server::{
    is_upgrade_request, read_request, write_reject, QueueError, Router, Server, ServerPolicy,
    Upgrader,
};
use ws_blocking::{http, CloseCode, Config, Error, HandshakeError, Message, Reject, WebSocket};

const LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` on a thread and fails if it does not finish within `LIMIT`.
fn within(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = mpsc::channel();
    let t = thread::spawn(move || {
        f();
        let _ = tx.send(());
    });
    match rx.recv_timeout(LIMIT) {
        Ok(()) => t.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {LIMIT:?}"),
    }
}

fn connect(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    let req = http::Request::get(format!("ws://{addr}{path}"))
        .body(())
        .unwrap();
    ws_blocking::connect_with(req, Config::default()).unwrap().0
}

fn connect_req(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocket<TcpStream>, Error> {
    let mut b = http::Request::get(format!("ws://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    ws_blocking::connect_with(b.body(()).unwrap(), Config::default()).map(|(ws, _)| ws)
}

fn status<T>(r: Result<T, Error>) -> u16 {
    match r {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, .. })) => status,
        Err(e) => panic!("expected a refusal, got {e:?}"),
        Ok(_) => panic!("expected a refusal, got a connection"),
    }
}

fn next_text(ws: &mut WebSocket<TcpStream>) -> String {
    loop {
        match ws.recv() {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn wait_for(mut cond: impl FnMut() -> bool) {
    while !cond() {
        thread::yield_now();
    }
}

/// A chat: "all:x" goes to everyone, other text to all but the sender.
fn spawn_chat(server: Server) {
    thread::spawn(move || loop {
        let (mut reader, _writer, _info) = server.accept().unwrap();
        let clients = server.clients();
        thread::spawn(move || {
            while let Some(Ok(msg)) = reader.recv() {
                if let Message::Text(t) = msg {
                    if let Some(rest) = t.strip_prefix("all:") {
                        clients.broadcast(Message::text(rest.to_string()));
                    } else {
                        clients.broadcast_except(reader.client_id(), Message::Text(t));
                    }
                }
            }
        });
    });
}

#[test]
fn request_info_and_tracking() {
    within(|| {
        let server = Server::bind("127.0.0.1:0", ServerPolicy::new().protocols(["chat"])).unwrap();
        let addr = server.local_addr().unwrap();
        let client = thread::spawn(move || {
            connect_req(
                addr,
                "/room?u=1",
                &[
                    ("x-forwarded-for", "192.0.2.1, 10.0.0.1"),
                    ("sec-websocket-protocol", "chat"),
                ],
            )
            .unwrap()
        });
        let (mut reader, writer, info) = server.accept().unwrap();
        let mut cws = client.join().unwrap();
        assert_eq!(info.path(), "/room");
        assert_eq!(info.query(), Some("u=1"));
        assert_eq!(info.protocol(), Some("chat"));
        assert_eq!(info.client_ip(2), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(info.peer_addr(), Some(cws.get_ref().local_addr().unwrap()));
        let clients = server.clients();
        assert_eq!(clients.len(), 1);
        let handle = clients.get(reader.client_id()).unwrap();
        assert_eq!(handle.info().query(), Some("u=1"));
        // From another thread, while nobody on the server side is sending.
        handle.send(Message::text("hi")).unwrap();
        assert_eq!(next_text(&mut cws), "hi");
        // The end, reported by the reading half: out of the set.
        cws.close(CloseCode::NORMAL, "").unwrap();
        let c = thread::spawn(move || while cws.recv().is_some() {});
        while reader.recv().is_some() {}
        c.join().unwrap();
        assert!(clients.is_empty());
        assert!(handle.is_closed());
        assert_eq!(handle.send(Message::text("late")), Err(QueueError::Closed));
        drop(writer);

        // Dropped halves: out at once.
        let client = thread::spawn(move || connect(addr, "/"));
        let (reader, writer, _) = server.accept().unwrap();
        let _cws = client.join().unwrap();
        assert_eq!(clients.len(), 1);
        drop((reader, writer));
        assert!(clients.is_empty());
    });
}

#[test]
fn broadcast_to_all_and_all_but_the_sender() {
    within(|| {
        let server = Server::bind("127.0.0.1:0", ServerPolicy::new()).unwrap();
        let addr = server.local_addr().unwrap();
        let clients = server.clients();
        spawn_chat(server);
        let mut a = connect(addr, "/");
        let mut b = connect(addr, "/");
        let mut c = connect(addr, "/");
        wait_for(|| clients.len() == 3);
        a.send(Message::text("from a")).unwrap();
        assert_eq!(next_text(&mut b), "from a");
        assert_eq!(next_text(&mut c), "from a");
        b.send(Message::text("all:everyone")).unwrap();
        for ws in [&mut a, &mut b, &mut c] {
            assert_eq!(next_text(ws), "everyone");
        }
        c.send(Message::text("from c")).unwrap();
        // a's next message is c's: its own never came back.
        assert_eq!(next_text(&mut a), "from c");
        assert_eq!(next_text(&mut b), "from c");
        assert_eq!(clients.broadcast(Message::binary(vec![9u8; 3000])), 3);
        for ws in [&mut a, &mut b, &mut c] {
            loop {
                match ws.recv().unwrap().unwrap() {
                    Message::Binary(bin) => {
                        assert_eq!(&bin[..], &[9u8; 3000][..]);
                        break;
                    }
                    other => assert!(!other.is_data(), "{other:?}"),
                }
            }
        }
    });
}

#[test]
fn refusals_and_limits() {
    within(|| {
        let policy = ServerPolicy::new()
            .path("/ws")
            .allow_origin("https://good.example")
            .verify(|req| {
                if req.uri().query() == Some("t=1") {
                    Ok(())
                } else {
                    Err(Reject::new(401))
                }
            })
            .max_payload(100);
        let server = Server::bind("127.0.0.1:0", policy).unwrap();
        let addr = server.local_addr().unwrap();
        let accepted = thread::spawn(move || {
            let (mut reader, _writer, info) = server.accept().unwrap();
            let mut end = None;
            while let Some(m) = reader.recv() {
                if let Err(e) = m {
                    end = Some(e);
                }
            }
            (info.query().map(String::from), end)
        });
        let good = ("origin", "https://good.example");
        assert_eq!(status(connect_req(addr, "/x?t=1", &[good])), 404);
        assert_eq!(
            status(connect_req(
                addr,
                "/ws?t=1",
                &[("origin", "https://evil.example")]
            )),
            403
        );
        assert_eq!(status(connect_req(addr, "/ws", &[good])), 401);
        let mut ws = connect_req(addr, "/ws?t=1", &[good]).unwrap();
        ws.send(Message::binary(vec![0u8; 101])).unwrap();
        let mut code = None;
        while let Some(m) = ws.recv() {
            match m {
                Ok(Message::Close(Some(f))) => code = Some(f.code),
                Err(Error::Closed(info)) => code = Some(info.code()),
                _ => {}
            }
        }
        assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
        let (query, end) = accepted.join().unwrap();
        assert_eq!(query.as_deref(), Some("t=1"));
        assert!(matches!(end, Some(Error::Protocol(_))), "{end:?}");
    });
}

#[test]
fn several_endpoints_on_one_port_with_handle_upgrade() {
    within(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route("/foo", Upgrader::new(ServerPolicy::new()))
            .route("/bar", Upgrader::new(ServerPolicy::new()));
        let foo_clients = router.find("/foo").unwrap().clients();
        thread::spawn(move || loop {
            let (mut tcp, peer) = listener.accept().unwrap();
            let router = router.clone();
            thread::spawn(move || -> Result<(), Error> {
                let (req, head) = read_request(&mut tcp, &Config::default())?;
                if !is_upgrade_request(&req) {
                    tcp.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npage",
                    )?;
                    return Ok(());
                }
                let Some(up) = router.find(req.uri().path()) else {
                    return write_reject(&mut tcp, &router.not_found());
                };
                let (mut reader, mut writer, info) = up.handle_upgrade(tcp, &head, Some(peer))?;
                writer.send(Message::text(format!("hello from {}", info.path())))?;
                while let Some(Ok(m)) = reader.recv() {
                    if m.is_data() {
                        writer.send(m)?;
                    }
                }
                Ok(())
            });
        });
        let mut foo_ws = connect(addr, "/foo");
        let mut bar_ws = connect(addr, "/bar?x");
        assert_eq!(next_text(&mut foo_ws), "hello from /foo");
        assert_eq!(next_text(&mut bar_ws), "hello from /bar");
        assert_eq!(foo_clients.len(), 1);
        bar_ws.send(Message::text("echo")).unwrap();
        assert_eq!(next_text(&mut bar_ws), "echo");
        assert_eq!(status(connect_req(addr, "/baz", &[])), 404);
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut page = String::new();
        tcp.read_to_string(&mut page).unwrap();
        assert!(page.ends_with("\r\n\r\npage"), "{page}");
        // A head in two pieces with the first frame right behind it.
        let raw = b"GET /foo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.write_all(&raw[..20]).unwrap();
        let mut rest = raw[20..].to_vec();
        rest.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
        tcp.write_all(&rest).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(&[0x81, 2, b'h', b'i']) {
            let n = tcp.read(&mut buf).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 101"));
    });
}

#[test]
fn client_handle_close() {
    within(|| {
        let server = Server::bind("127.0.0.1:0", ServerPolicy::new()).unwrap();
        let addr = server.local_addr().unwrap();
        let client = thread::spawn(move || connect(addr, "/"));
        let (mut reader, _writer, _) = server.accept().unwrap();
        let mut cws = client.join().unwrap();
        let handle = server.clients().get(reader.client_id()).unwrap();
        handle.close(CloseCode::GOING_AWAY, "bye").unwrap();
        let s = thread::spawn(move || while reader.recv().is_some() {});
        let mut close = None;
        while let Some(m) = cws.recv() {
            if let Ok(Message::Close(f)) = m {
                close = f;
            }
        }
        assert_eq!(close.map(|f| f.code), Some(CloseCode::GOING_AWAY));
        s.join().unwrap();
        assert!(server.clients().is_empty());
        let untracked = Upgrader::new(ServerPolicy::new()).track_clients(false);
        assert!(untracked.clients().is_empty());
    });
}
