//! Helpers shared by the integration tests: a time bound for every test,
//! blocking echo peers and raw TCP peers that misbehave on purpose.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;
use ws_blocking::{CloseInfo, Config, Message, WebSocket};

/// Upper bound for any one test.
pub const TEST_LIMIT: Duration = Duration::from_secs(30);

/// Runs `f` on a thread and fails the test if it takes longer than
/// [`TEST_LIMIT`] (so that a hang is a failure, not a stuck run). Panics in
/// `f` are propagated.
pub fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(TEST_LIMIT) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {TEST_LIMIT:?}"),
    }
}

/// A listener on an ephemeral port of 127.0.0.1.
pub fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

/// The `ws://` URL of `addr`.
pub fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/")
}

/// A one-connection echo server on the blocking adapter: echoes data
/// messages until the end and returns how the connection ended.
pub fn echo_server(config: Config) -> (SocketAddr, JoinHandle<CloseInfo>) {
    let (l, addr) = listener();
    let h = std::thread::spawn(move || {
        let (tcp, _) = l.accept().expect("accept");
        let mut ws = ws_blocking::accept_with(tcp, config, |_| Ok(ws_blocking::Accept::new()))
            .expect("server handshake");
        echo(&mut ws);
        ws.close_info().cloned().expect("ended")
    });
    (addr, h)
}

/// Echoes data messages until `recv` returns `None`.
pub fn echo(ws: &mut WebSocket<TcpStream>) {
    while let Some(msg) = ws.recv() {
        match msg {
            Ok(m) if m.is_data() => {
                if ws.feed(m).is_err() {
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => {}
        }
    }
}

/// Reads an HTTP head (up to the blank line) byte by byte.
pub fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut b).expect("read head");
        assert_eq!(n, 1, "eof in the HTTP head");
        head.push(b[0]);
    }
    String::from_utf8(head).expect("ascii head")
}

/// Value of a header in an HTTP head (case-insensitive name).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Accepts one TCP connection and answers its upgrade request with a valid
/// 101 by hand; returns the raw socket.
pub fn raw_upgrade(l: &TcpListener) -> TcpStream {
    let (mut tcp, _) = l.accept().expect("accept");
    let head = read_head(&mut tcp);
    let key = header(&head, "sec-websocket-key").expect("key");
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        ws_proto::accept_key(key.as_bytes())
    );
    tcp.write_all(resp.as_bytes()).expect("write 101");
    tcp
}

/// Connects to `addr` and performs a client upgrade by hand; returns the
/// raw socket.
pub fn raw_client(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).expect("write request");
    let head = read_head(&mut tcp);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    tcp
}

/// A text or binary payload of `n` bytes with a recognizable pattern.
pub fn payload(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// The data message with `n` bytes: text when `text` (ASCII), else binary.
pub fn data(n: usize, seed: u8, text: bool) -> Message {
    if text {
        let s: String = (0..n)
            .map(|i| (b'a' + ((i + seed as usize) % 26) as u8) as char)
            .collect();
        Message::text(s)
    } else {
        Message::binary(payload(n, seed))
    }
}
