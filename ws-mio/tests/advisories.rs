//! Issue 8's advisories (see `ws-proto/tests/advisories.rs` and the
//! README's "Security and limits" table) against the mio loop's server and
//! client over loopback: a hostile raw peer on a thread of its own sends
//! the input that triggered each advisory in another library; the loop
//! runs on the test thread. We check the outcome (close code, HTTP status,
//! handshake error), that what waits to be written stays bounded, and
//! that it all takes bounded time ([`BUDGET`]: generous for linear work in
//! a debug build on a busy machine, far below the quadratic or unbounded
//! cost of the advisories).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ws_mio::ws_proto::{self, FrameHeader, HandshakeError, OpCode, ProtocolError};
use ws_mio::{
    http, Accept, Bytes, CloseInfo, Config, Connection, DeflateConfig, Ending, Error, Event,
    EventLoop, Handler, Reject, Role, Token,
};

const BUDGET: Duration = Duration::from_secs(15);
const IO_TIMEOUT: Duration = Duration::from_secs(20);
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// What the loop reported.
#[derive(Default)]
struct Rec {
    /// The subprotocol the server picks.
    protocol: Option<&'static str>,
    /// Header counts of the requests the server decided on.
    requests: Vec<usize>,
    /// Messages each connection of this role sends once open.
    send_on_open: Option<(Role, Vec<Bytes>)>,
    /// Echo data messages back.
    echo: bool,
    /// Client connections opened, with the subprotocol of the response.
    client_open: Vec<Option<String>>,
    server_open: usize,
    errors: Vec<Error>,
    closed: Vec<(Role, CloseInfo)>,
    pings: usize,
    /// The most `buffered_amount` was after an event.
    max_buffered: usize,
}

impl Handler for Rec {
    fn on_request(&mut self, _: Token, r: &http::Request<()>) -> Result<Accept, Reject> {
        self.requests.push(r.headers().len());
        Ok(match self.protocol {
            Some(p) => Accept::new().protocol(p),
            None => Accept::new(),
        })
    }

    fn on_open(&mut self, _: Token, conn: &mut Connection, resp: Option<&http::Response<()>>) {
        match resp {
            Some(r) => self.client_open.push(
                r.headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap().to_string()),
            ),
            None => self.server_open += 1,
        }
        if let Some((role, msgs)) = &self.send_on_open {
            if *role == conn.role() {
                for m in msgs {
                    conn.send_binary(m.clone()).unwrap();
                }
            }
        }
    }

    fn on_event(&mut self, _: Token, conn: &mut Connection, event: Event) {
        match event {
            Event::Ping(_) => self.pings += 1,
            Event::Binary(b) if self.echo => {
                let _ = conn.send_binary(b);
            }
            Event::Closed(i) => self.closed.push((conn.role(), i)),
            _ => {}
        }
        self.max_buffered = self.max_buffered.max(conn.buffered_amount());
    }

    fn on_error(&mut self, _: Token, e: Error) {
        self.errors.push(e);
    }
}

/// Turns the loop until `done` or the budget is spent (then panics).
fn run_until(el: &mut EventLoop, h: &mut Rec, mut done: impl FnMut(&EventLoop, &Rec) -> bool) {
    let t0 = Instant::now();
    while !done(el, h) {
        assert!(t0.elapsed() < BUDGET, "not done within {BUDGET:?}");
        el.turn(h, Some(Duration::from_millis(10))).unwrap();
    }
}

/// Turns the loop until the raw peer's thread ended; returns its result.
fn run_with<T>(el: &mut EventLoop, h: &mut Rec, peer: JoinHandle<T>) -> T {
    run_until(el, h, |_, _| peer.is_finished());
    peer.join().expect("the raw peer panicked")
}

fn listen(el: &mut EventLoop, config: Config) -> SocketAddr {
    el.listen("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

fn request(addr: SocketAddr) -> http::Request<()> {
    http::Request::get(format!("ws://{addr}/"))
        .body(())
        .unwrap()
}

fn tcp(addr: SocketAddr) -> TcpStream {
    let t = TcpStream::connect(addr).unwrap();
    t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    t.set_nodelay(true).unwrap();
    t
}

fn request_head(addr: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    )
}

/// Reads an HTTP head byte by byte (nothing after it is consumed).
fn read_head(t: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(t.read(&mut b).unwrap(), 1, "EOF in a head");
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// The value of header `name` (any case) in an HTTP head.
fn header_value(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// The 101 answer to a request head, with extra header lines.
fn switching(head: &str, extra: &str) -> String {
    let key = header_value(head, "sec-websocket-key").expect("a key");
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{extra}\r\n",
        ws_proto::accept_key(key.as_bytes())
    )
}

/// A raw server for one client connection: answers the request with
/// `answer(head)` (dribbled or not), then runs `then`.
fn raw_server<T: Send + 'static>(
    answer: impl FnOnce(&str) -> String + Send + 'static,
    dribbled: bool,
    then: impl FnOnce(&mut TcpStream) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let (mut t, _) = l.accept().unwrap();
        t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        t.set_nodelay(true).unwrap();
        let head = read_head(&mut t);
        let resp = answer(&head);
        if dribbled {
            dribble(&mut t, resp.as_bytes());
        } else {
            let _ = t.write_all(resp.as_bytes());
        }
        then(&mut t)
    });
    (addr, h)
}

/// Writes in pieces of 1 to 16 bytes; stops at the first error.
fn dribble(t: &mut TcpStream, b: &[u8]) {
    let mut sizes = [1usize, 7, 2, 16, 3, 11, 5, 13].iter().cycle();
    let mut rest = b;
    while !rest.is_empty() {
        let (a, r) = rest.split_at((*sizes.next().unwrap()).min(rest.len()));
        if t.write_all(a).is_err() {
            return;
        }
        rest = r;
    }
}

/// Reads until EOF or an error; once a close frame arrived, shuts the
/// write half (so a client on the other end sees the server's end).
fn read_to_end(t: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut shut = false;
    while let Ok(n) = t.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if !shut && close_code(&out).is_some() {
            let _ = t.shutdown(Shutdown::Write);
            shut = true;
        }
    }
    out
}

/// The complete frames at the start of `b`, unmasked, with their keys.
fn frames(mut b: &[u8]) -> Vec<(OpCode, Vec<u8>, Option<[u8; 4]>)> {
    let mut v = Vec::new();
    while let Ok(Some((h, n))) = FrameHeader::decode(b) {
        let len = h.len as usize;
        if b.len() < n + len {
            break;
        }
        let mut p = b[n..n + len].to_vec();
        if let Some(k) = h.mask {
            ws_proto::apply_mask(&mut p, k, 0);
        }
        v.push((h.opcode, p, h.mask));
        b = &b[n + len..];
    }
    v
}

fn close_code(b: &[u8]) -> Option<u16> {
    frames(b)
        .into_iter()
        .find(|(op, _, _)| *op == OpCode::Close)
        .map(|(_, p, _)| u16::from_be_bytes([p[0], p[1]]))
}

/// A frame header declaring `len` bytes, masked when `masked`.
fn header(b0: u8, len: u64, masked: bool) -> Vec<u8> {
    let m = if masked { 0x80 } else { 0 };
    let mut v = vec![b0];
    if len < 126 {
        v.push(m | len as u8);
    } else if len <= 0xffff {
        v.push(m | 126);
        v.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        v.push(m | 127);
        v.extend_from_slice(&len.to_be_bytes());
    }
    if masked {
        v.extend_from_slice(&KEY);
    }
    v
}

fn frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut v = header(b0, payload.len() as u64, masked);
    if masked {
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    } else {
        v.extend_from_slice(payload);
    }
    v
}

fn long_headers(size: usize) -> String {
    let mut s = format!("X-Long: {}\r\n", "a".repeat(size / 2));
    let mut i = 0;
    while s.len() < size {
        s.push_str(&format!("X-{i}: {}\r\n", "b".repeat(40)));
        i += 1;
    }
    s
}

fn many_headers(n: usize) -> String {
    (0..n).map(|i| format!("X-{i}: v\r\n")).collect()
}

fn big_limits() -> Config {
    Config::default()
        .max_handshake_size(1 << 20)
        .max_headers(10_000)
        .handshake_timeout(None)
}

fn handshake_error(e: &Error) -> Option<&HandshakeError> {
    match e {
        Error::Handshake(h) => Some(h),
        _ => None,
    }
}

/// tungstenite RUSTSEC-2023-0065: a 256 KiB handshake dribbled in writes
/// of 1 to 16 bytes is parsed in linear time (server and client), and is
/// refused at the default 16 KiB limit (431 from the server).
#[test]
fn rustsec_2023_0065_quadratic_header_parsing() {
    let extra = long_headers(256 << 10);
    let t0 = Instant::now();
    // Server, limits raised: accepted, every header seen.
    let mut el = EventLoop::new().unwrap();
    let addr = listen(&mut el, big_limits());
    let req = format!("{}{extra}\r\n", request_head(addr));
    let n_headers = req.matches("\r\n").count() - 2;
    let peer = std::thread::spawn(move || {
        let mut t = tcp(addr);
        dribble(&mut t, req.as_bytes());
        read_head(&mut t)
    });
    let mut h = Rec::default();
    let head = run_with(&mut el, &mut h, peer);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(h.requests, [n_headers]);
    // Server, default limits: 431.
    let mut el = EventLoop::new().unwrap();
    let addr = listen(&mut el, Config::default());
    let req = format!("{}{extra}\r\n", request_head(addr));
    let peer = std::thread::spawn(move || {
        let mut t = tcp(addr);
        let mut w = t.try_clone().unwrap();
        let writer = std::thread::spawn(move || dribble(&mut w, req.as_bytes()));
        let got = read_to_end(&mut t);
        drop(t);
        writer.join().unwrap();
        got
    });
    let mut h = Rec::default();
    let resp = run_with(&mut el, &mut h, peer);
    assert!(resp.starts_with(b"HTTP/1.1 431 "), "{resp:?}");
    assert!(matches!(
        handshake_error(&h.errors[0]),
        Some(HandshakeError::TooLarge)
    ));
    // Client, both ways.
    for (config, ok) in [(big_limits(), true), (Config::default(), false)] {
        let e = extra.clone();
        let (addr, peer) = raw_server(
            move |head| switching(head, &e),
            true,
            |t: &mut TcpStream| {
                read_to_end(t);
            },
        );
        let mut el = EventLoop::new().unwrap();
        let mut h = Rec::default();
        el.connect(request(addr), config).unwrap();
        run_until(&mut el, &mut h, |_, h| {
            !h.client_open.is_empty() || !h.errors.is_empty()
        });
        if ok {
            assert_eq!(h.client_open.len(), 1, "{:?}", h.errors);
        } else {
            assert!(matches!(
                handshake_error(&h.errors[0]),
                Some(HandshakeError::TooLarge)
            ));
        }
        drop(el);
        peer.join().unwrap();
    }
    assert!(t0.elapsed() < BUDGET, "{:?}", t0.elapsed());
}

/// rust-websocket RUSTSEC-2022-0035: a header declaring 2^62 bytes fails
/// the connection with 1009 at once (server and client), without waiting
/// for or allocating the payload.
#[test]
fn rustsec_2022_0035_declared_length_2_pow_62() {
    let t0 = Instant::now();
    // Server.
    let mut el = EventLoop::new().unwrap();
    let addr = listen(&mut el, Config::default());
    let peer = std::thread::spawn(move || {
        let mut t = tcp(addr);
        t.write_all(request_head(addr).as_bytes()).unwrap();
        t.write_all(b"\r\n").unwrap();
        read_head(&mut t);
        t.write_all(&header(0x82, 1 << 62, true)).unwrap();
        read_to_end(&mut t)
    });
    let mut h = Rec::default();
    let got = run_with(&mut el, &mut h, peer);
    assert_eq!(close_code(&got), Some(1009));
    // Client.
    let (addr, peer) = raw_server(
        |head| switching(head, ""),
        false,
        |t: &mut TcpStream| {
            t.write_all(&header(0x82, 1 << 62, false)).unwrap();
            read_to_end(t)
        },
    );
    el.connect(request(addr), Config::default()).unwrap();
    let got = run_with(&mut el, &mut h, peer);
    assert_eq!(close_code(&got), Some(1009));
    run_until(&mut el, &mut h, |_, h| h.closed.len() == 2);
    for (_, i) in &h.closed {
        assert_eq!(i.ending, Ending::Protocol(ProtocolError::FrameTooLarge));
    }
    assert!(t0.elapsed() < BUDGET, "{:?}", t0.elapsed());
}

/// ws-rs RUSTSEC-2020-0043, pings: a client sends 60 000 pings of 124
/// bytes (7.5 MiB of pongs, more than the loopback socket buffers take)
/// and reads nothing until it is done. The server delivers every
/// ping and what waits in the core stays under 192 KiB.
#[test]
fn rustsec_2020_0043_ping_flood() {
    const N: u32 = 60_000;
    let t0 = Instant::now();
    let mut el = EventLoop::new().unwrap();
    let addr = listen(&mut el, Config::default());
    let peer = std::thread::spawn(move || {
        let mut t = tcp(addr);
        t.write_all(request_head(addr).as_bytes()).unwrap();
        t.write_all(b"\r\n").unwrap();
        read_head(&mut t);
        let mut batch = Vec::new();
        for i in 0..N {
            batch.extend(frame(0x89, &i.to_be_bytes().repeat(31), true));
            if batch.len() > 16 << 10 || i + 1 == N {
                t.write_all(&batch).unwrap();
                batch.clear();
            }
        }
        t.shutdown(Shutdown::Write).unwrap();
        read_to_end(&mut t)
    });
    let mut h = Rec::default();
    let got = run_with(&mut el, &mut h, peer);
    run_until(&mut el, &mut h, |_, h| !h.closed.is_empty());
    eprintln!(
        "ping flood: at most {} bytes waited in the core",
        h.max_buffered
    );
    assert_eq!(h.pings, N as usize);
    assert!(
        h.max_buffered <= 192 << 10,
        "{} bytes waited",
        h.max_buffered
    );
    let pongs = frames(&got)
        .iter()
        .filter(|(op, _, _)| *op == OpCode::Pong)
        .count();
    assert!(pongs > 0 && pongs <= N as usize, "{pongs} pongs");
    assert_eq!(h.closed[0].1.ending, Ending::Abnormal);
    assert!(t0.elapsed() < BUDGET, "{:?}", t0.elapsed());
}

/// ws-rs RUSTSEC-2020-0043, echoes: a client sends 64 KiB messages to an
/// echo server and never reads. The loop stops reading while its answers
/// wait to be written, so the client's writes stall (a write times out)
/// long before 64 MiB, and the core's queue stays bounded.
#[test]
fn rustsec_2020_0043_echo_flood_stops_reading() {
    const CAP: usize = 64 << 20;
    let mut el = EventLoop::new().unwrap();
    let addr = listen(&mut el, Config::default());
    let peer = std::thread::spawn(move || {
        let mut t = tcp(addr);
        t.write_all(request_head(addr).as_bytes()).unwrap();
        t.write_all(b"\r\n").unwrap();
        read_head(&mut t);
        t.set_write_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let msg = frame(0x82, &[0xab; 64 << 10], true);
        let mut sent = 0;
        while sent < CAP {
            match t.write(&msg) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        (sent, t)
    });
    let mut h = Rec {
        echo: true,
        ..Rec::default()
    };
    let (sent, t) = run_with(&mut el, &mut h, peer);
    eprintln!(
        "echo flood: the server took {sent} bytes, at most {} waited in the core",
        h.max_buffered
    );
    // The kernel buffers of both ends (a few MiB on loopback) and what
    // the loop holds.
    assert!(sent < 32 << 20, "the server never stopped reading: {sent}");
    assert!(h.max_buffered <= 2 << 20, "{} bytes waited", h.max_buffered);
    drop(t);
    run_until(&mut el, &mut h, |_, h| !h.closed.is_empty());
}

/// Node ws CVE-2021-32640: a client offering `a<256 KiB of spaces>b, c`
/// gets `c` from the server; both split the value in linear time.
#[test]
fn cve_2021_32640_redos_sec_websocket_protocol() {
    let t0 = Instant::now();
    let mut el = EventLoop::new().unwrap();
    let addr = listen(
        &mut el,
        Config::default()
            .max_handshake_size(1 << 20)
            .handshake_timeout(None),
    );
    let req = http::Request::get(format!("ws://{addr}/"))
        .header(
            "Sec-WebSocket-Protocol",
            format!("a{}b, c", " ".repeat(256 << 10)),
        )
        .body(())
        .unwrap();
    el.connect(req, Config::default()).unwrap();
    let mut h = Rec {
        protocol: Some("c"),
        ..Rec::default()
    };
    run_until(&mut el, &mut h, |_, h| {
        !h.client_open.is_empty() || !h.errors.is_empty()
    });
    assert_eq!(h.client_open, [Some("c".to_string())], "{:?}", h.errors);
    assert!(t0.elapsed() < BUDGET, "{:?}", t0.elapsed());
}

/// Node ws CVE-2024-37890: 10 000 headers get 431 and a handshake error
/// (at the size limit by default, at the header-count limit when the size
/// allows them), and the server goes on serving; a 101 with 10 000 headers
/// is a handshake error for the client.
#[test]
fn cve_2024_37890_too_many_headers() {
    for (config, expected) in [
        (Config::default(), HandshakeError::TooLarge),
        (
            Config::default().max_handshake_size(1 << 20),
            HandshakeError::TooManyHeaders,
        ),
    ] {
        let mut el = EventLoop::new().unwrap();
        let addr = listen(&mut el, config.clone());
        let req = format!("{}{}\r\n", request_head(addr), many_headers(10_000));
        let peer = std::thread::spawn(move || {
            let mut t = tcp(addr);
            let mut w = t.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                let _ = w.write_all(req.as_bytes());
            });
            let got = read_to_end(&mut t);
            drop(t);
            writer.join().unwrap();
            got
        });
        let mut h = Rec::default();
        let resp = run_with(&mut el, &mut h, peer);
        assert!(resp.starts_with(b"HTTP/1.1 431 "), "{resp:?}");
        assert_eq!(handshake_error(&h.errors[0]), Some(&expected));
        // Still serving: our own client connects.
        el.connect(request(addr), Config::default()).unwrap();
        run_until(&mut el, &mut h, |_, h| h.client_open.len() == 1);
        assert_eq!(h.server_open, 1);

        // The client side.
        let (addr, peer) = raw_server(
            |head| switching(head, &many_headers(10_000)),
            false,
            |t: &mut TcpStream| {
                read_to_end(t);
            },
        );
        let mut el = EventLoop::new().unwrap();
        let mut h = Rec::default();
        el.connect(request(addr), config).unwrap();
        run_until(&mut el, &mut h, |_, h| !h.errors.is_empty());
        assert_eq!(handshake_error(&h.errors[0]), Some(&expected));
        assert!(h.client_open.is_empty());
        drop(el);
        peer.join().unwrap();
    }
}

/// Floods of empty and 1-byte continuation frames: 1009 at the first
/// fragment over `max_fragments`, server and client, in bounded time.
#[test]
fn continuation_flood() {
    let t0 = Instant::now();
    for payload in [&b""[..], &b"x"[..]] {
        let flood = |masked: bool| {
            let mut f = frame(0x02, payload, masked);
            let one = frame(0x00, payload, masked);
            for _ in 0..200_000 {
                f.extend_from_slice(&one);
            }
            f
        };
        let send = |t: &mut TcpStream, f: Vec<u8>| {
            let mut w = t.try_clone().unwrap();
            let writer = std::thread::spawn(move || {
                let _ = w.write_all(&f);
            });
            let got = read_to_end(t);
            writer.join().unwrap();
            got
        };
        // Server.
        let mut el = EventLoop::new().unwrap();
        let addr = listen(&mut el, Config::default());
        let f = flood(true);
        let peer = std::thread::spawn(move || {
            let mut t = tcp(addr);
            t.write_all(request_head(addr).as_bytes()).unwrap();
            t.write_all(b"\r\n").unwrap();
            read_head(&mut t);
            send(&mut t, f)
        });
        let mut h = Rec::default();
        let got = run_with(&mut el, &mut h, peer);
        assert_eq!(close_code(&got), Some(1009));
        // Client.
        let f = flood(false);
        let (addr, peer) = raw_server(
            |head| switching(head, ""),
            false,
            move |t: &mut TcpStream| send(t, f),
        );
        el.connect(request(addr), Config::default()).unwrap();
        let got = run_with(&mut el, &mut h, peer);
        assert_eq!(close_code(&got), Some(1009));
        run_until(&mut el, &mut h, |_, h| h.closed.len() == 2);
        for (_, i) in &h.closed {
            assert_eq!(i.ending, Ending::Protocol(ProtocolError::TooManyFragments));
        }
    }
    assert!(t0.elapsed() < BUDGET, "{:?}", t0.elapsed());
}

/// Python websockets CVE-2018-1000518: with permessage-deflate negotiated,
/// 16 MiB of zeros compress to about 16 KiB; the receiver (server, then
/// client), limited to 1 MiB, fails the connection with 1009 instead of
/// inflating it, and the sender sees 1009.
#[test]
fn cve_2018_1000518_decompression_bomb() {
    let t0 = Instant::now();
    for receiver in [Role::Server, Role::Client] {
        let deflate = Config::default().deflate(Some(DeflateConfig::default()));
        let limited = deflate.clone().max_message_size(1 << 20);
        let (server_config, client_config) = match receiver {
            Role::Server => (limited, deflate),
            Role::Client => (deflate, limited),
        };
        let sender = match receiver {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let mut el = EventLoop::new().unwrap();
        let addr = listen(&mut el, server_config);
        el.connect(request(addr), client_config).unwrap();
        let mut h = Rec {
            send_on_open: Some((sender, vec![Bytes::from(vec![0u8; 16 << 20])])),
            ..Rec::default()
        };
        run_until(&mut el, &mut h, |_, h| h.closed.len() == 2);
        for (role, i) in &h.closed {
            if *role == receiver {
                assert_eq!(i.ending, Ending::Protocol(ProtocolError::MessageTooLarge));
            } else {
                assert_eq!(i.received.as_ref().map(|f| f.code.0), Some(1009), "{i:?}");
            }
        }
    }
    assert!(t0.elapsed() < BUDGET, "{:?}", t0.elapsed());
}

/// The handshake key and the mask keys of 256 one-byte messages of one
/// client connection of the loop.
fn client_keys() -> (String, Vec<[u8; 4]>) {
    const N: usize = 256;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut t, _) = l.accept().unwrap();
        t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let head = read_head(&mut t);
        t.write_all(switching(&head, "").as_bytes()).unwrap();
        let key = header_value(&head, "sec-websocket-key").unwrap();
        let mut b = vec![0u8; N * 7];
        t.read_exact(&mut b).unwrap();
        let masks = frames(&b)
            .into_iter()
            .map(|(_, _, m)| m.expect("masked"))
            .collect::<Vec<_>>();
        assert_eq!(masks.len(), N);
        (key, masks)
    });
    let mut el = EventLoop::new().unwrap();
    let mut h = Rec {
        send_on_open: Some((
            Role::Client,
            (0..N).map(|i| Bytes::from(vec![i as u8])).collect(),
        )),
        ..Rec::default()
    };
    el.connect(request(addr), Config::default()).unwrap();
    run_with(&mut el, &mut h, peer)
}

/// gorilla/websocket GHSA-w67g-5rqw-f597: the loop's client connections
/// are seeded from the OS: keys differ between connections and mask keys
/// do not repeat within one.
#[test]
fn ghsa_w67g_5rqw_f597_predictable_mask_keys() {
    let (key1, masks1) = client_keys();
    let (key2, masks2) = client_keys();
    assert_ne!(key1, key2);
    let distinct = |m: &[[u8; 4]]| m.iter().collect::<HashSet<_>>().len();
    assert!(distinct(&masks1) >= 255);
    assert!(distinct(&masks2) >= 255);
    let same = masks1.iter().zip(&masks2).filter(|(a, b)| a == b).count();
    assert!(same <= 1, "{same} equal keys at the same position");
    assert!(masks1.iter().chain(&masks2).all(|k| *k != [0; 4]));
}
