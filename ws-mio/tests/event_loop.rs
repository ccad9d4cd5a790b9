//! The loop end to end over loopback TCP: server and clients in one loop.

use std::time::{Duration, Instant};
use ws_mio::{
    http, Accept, Bytes, CloseCode, CloseInfo, Config, Connection, Echo, Error, Event, EventLoop,
    Handler, Reject, Role, Token,
};

/// Turns until `done` says so; fails the test after 30 s.
fn run_until<H: Handler>(
    el: &mut EventLoop,
    h: &mut H,
    mut done: impl FnMut(&EventLoop, &H) -> bool,
) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !done(el, h) {
        assert!(Instant::now() < give_up, "the loop did not finish");
        el.turn(h, Some(Duration::from_millis(100))).unwrap();
    }
}

fn listen(el: &mut EventLoop, config: Config) -> String {
    let addr = el.listen("127.0.0.1:0".parse().unwrap(), config).unwrap();
    format!("ws://{addr}/")
}

fn request(url: &str) -> http::Request<()> {
    http::Request::get(url).body(()).unwrap()
}

/// Server side echoes; client side sends `messages` on open, checks the
/// echoes, and closes after the last.
#[derive(Default)]
struct Both {
    messages: Vec<Bytes>,
    received: Vec<(Token, Bytes)>,
    server_ends: Vec<CloseInfo>,
    client_ends: Vec<CloseInfo>,
    errors: Vec<Error>,
    reject: bool,
    /// Messages to receive before closing, if not `messages.len()`.
    expect: Option<usize>,
}

impl Handler for Both {
    fn on_request(&mut self, _: Token, _: &http::Request<()>) -> Result<Accept, Reject> {
        if self.reject {
            Err(Reject::new(403).body("no"))
        } else {
            Ok(Accept::new())
        }
    }

    fn on_open(&mut self, _: Token, conn: &mut Connection, response: Option<&http::Response<()>>) {
        if response.is_some() {
            assert_eq!(conn.role(), Role::Client);
            for m in &self.messages {
                conn.send_binary(m.clone()).unwrap();
            }
        }
    }

    fn on_event(&mut self, token: Token, conn: &mut Connection, event: Event) {
        match (conn.role(), event) {
            (Role::Server, Event::Closed(info)) => self.server_ends.push(info),
            (Role::Server, ev) => Echo.on_event(token, conn, ev),
            (Role::Client, Event::Binary(b)) => {
                self.received.push((token, b));
                let mine = self.received.iter().filter(|(t, _)| *t == token).count();
                if mine == self.expect.unwrap_or(self.messages.len()) {
                    conn.close(Instant::now(), CloseCode::NORMAL, "done")
                        .unwrap();
                }
            }
            (Role::Client, Event::Closed(info)) => self.client_ends.push(info),
            (_, ev) => panic!("unexpected {ev:?}"),
        }
    }

    fn on_error(&mut self, _: Token, error: Error) {
        self.errors.push(error);
    }
}

#[test]
fn echo_small_and_large_messages() {
    let mut el = EventLoop::new().unwrap();
    let url = listen(&mut el, Config::default());
    // 8 MiB is more than loopback socket buffers take at once: the server
    // and the client both see writes that would block.
    let big: Bytes = (0..8 << 20)
        .map(|i| (i % 251) as u8)
        .collect::<Vec<u8>>()
        .into();
    let mut h = Both {
        messages: vec![Bytes::from_static(b"hello"), big.clone(), Bytes::new()],
        ..Both::default()
    };
    let client = el.connect(request(&url), Config::default()).unwrap();
    run_until(&mut el, &mut h, |el, _| el.is_empty());
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    let got: Vec<&Bytes> = h
        .received
        .iter()
        .map(|(t, b)| {
            assert_eq!(*t, client);
            b
        })
        .collect();
    assert_eq!(got, [&Bytes::from_static(b"hello"), &big, &Bytes::new()]);
    assert_eq!(h.client_ends.len(), 1);
    assert!(h.client_ends[0].is_clean(), "{}", h.client_ends[0]);
    assert_eq!(h.server_ends.len(), 1);
    assert!(h.server_ends[0].is_clean(), "{}", h.server_ends[0]);
    assert_eq!(h.server_ends[0].reason(), "done");
}

#[test]
fn many_connections_on_one_thread() {
    const N: usize = 300;
    let mut el = EventLoop::new().unwrap();
    let url = listen(&mut el, Config::default());
    let mut h = Both {
        messages: vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")],
        ..Both::default()
    };
    for _ in 0..N {
        el.connect(request(&url), Config::default()).unwrap();
    }
    run_until(&mut el, &mut h, |el, _| el.is_empty());
    assert!(h.errors.is_empty(), "{:?}", h.errors);
    assert_eq!(h.received.len(), 2 * N);
    assert_eq!(h.client_ends.len(), N);
    assert_eq!(h.server_ends.len(), N);
    assert!(h
        .client_ends
        .iter()
        .chain(&h.server_ends)
        .all(|i| i.is_clean()));
}

#[test]
fn rejected_request_reaches_the_client() {
    let mut el = EventLoop::new().unwrap();
    let url = listen(&mut el, Config::default());
    let mut h = Both {
        reject: true,
        ..Both::default()
    };
    el.connect(request(&url), Config::default()).unwrap();
    run_until(&mut el, &mut h, |el, _| el.is_empty());
    match &h.errors[..] {
        [Error::Handshake(ws_mio::ws_proto::HandshakeError::UnexpectedStatus {
            status,
            body,
            ..
        })] => {
            assert_eq!(*status, 403);
            assert_eq!(body, b"no");
        }
        other => panic!("{other:?}"),
    }
    assert!(h.client_ends.is_empty() && h.server_ends.is_empty());
}

#[test]
fn silent_client_hits_the_handshake_timeout() {
    let mut el = EventLoop::new().unwrap();
    let config = Config::default().handshake_timeout(Some(Duration::from_millis(50)));
    let url = listen(&mut el, config);
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let mut silent = std::net::TcpStream::connect(addr).unwrap();
    let mut h = Both::default();
    run_until(&mut el, &mut h, |el, h| {
        el.is_empty() && !h.errors.is_empty()
    });
    assert_eq!(
        h.errors,
        [Error::Handshake(ws_mio::ws_proto::HandshakeError::Timeout)]
    );
    // The server dropped the socket: the silent client sees the end.
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(std::io::Read::read(&mut silent, &mut buf).unwrap(), 0);
}

#[test]
fn refused_connect_is_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut el = EventLoop::new().unwrap();
    let mut h = Both::default();
    let token = el
        .connect(
            request(&format!("ws://127.0.0.1:{port}/")),
            Config::default(),
        )
        .unwrap();
    run_until(&mut el, &mut h, |el, _| !el.contains(token));
    match &h.errors[..] {
        [Error::Io(e)] => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused),
        other => panic!("{other:?}"),
    }
}

#[test]
fn wss_is_refused_for_now() {
    let mut el = EventLoop::new().unwrap();
    let r = el.connect(request("wss://127.0.0.1:1/"), Config::default());
    assert!(matches!(r, Err(Error::Usage(_))), "{r:?}");
}

#[test]
fn waker_and_connection_mut_send_from_outside() {
    let mut el = EventLoop::new().unwrap();
    let url = listen(&mut el, Config::default());
    let mut h = Both {
        messages: vec![Bytes::from_static(b"first")],
        ..Both::default()
    };
    // Send the first message only, then wait for the waker.
    h.expect = Some(2);
    let client = el.connect(request(&url), Config::default()).unwrap();
    let waker = el.waker().unwrap();
    let woke = std::thread::spawn(move || waker.wake().unwrap());
    let mut woken = false;
    let give_up = Instant::now() + Duration::from_secs(30);
    while !woken || h.received.is_empty() {
        assert!(Instant::now() < give_up);
        woken |= el.turn(&mut h, Some(Duration::from_millis(100))).unwrap();
    }
    woke.join().unwrap();
    // The second message, sent from outside the handler.
    el.connection_mut(client)
        .unwrap()
        .send_binary(Bytes::from_static(b"second"))
        .unwrap();
    run_until(&mut el, &mut h, |el, _| el.is_empty());
    let got: Vec<&[u8]> = h.received.iter().map(|(_, b)| &b[..]).collect();
    assert_eq!(got, [&b"first"[..], &b"second"[..]]);
    assert!(h.client_ends[0].is_clean() && h.server_ends[0].is_clean());
}

/// RFC 6455 §7.1.1: once both close frames are exchanged "the server MUST
/// close the underlying TCP connection immediately". The loop ends the
/// server's connection (and reports it) with that shutdown, not when the
/// client closes TCP in turn: this client keeps it open for HOLD.
#[test]
fn server_ends_at_once_after_the_close_handshake() {
    use std::io::{Read, Write};
    const HOLD: Duration = Duration::from_millis(1500);
    let mut el = EventLoop::new().unwrap();
    let url = listen(&mut el, Config::default());
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches('/')
        .to_string();
    let client = std::thread::spawn(move || {
        let mut t = std::net::TcpStream::connect(addr).unwrap();
        t.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = t.read(&mut buf).unwrap();
            assert!(n > 0, "EOF during the handshake");
            got.extend_from_slice(&buf[..n]);
        }
        // A masked close frame, code 1000 (mask 0: the payload as is).
        t.write_all(&[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]).unwrap();
        // The server's close frame, then its FIN.
        let mut rest = Vec::new();
        t.read_to_end(&mut rest).unwrap();
        std::thread::sleep(HOLD);
        rest
    });
    let mut h = Both::default();
    let start = Instant::now();
    run_until(&mut el, &mut h, |_, h| !h.server_ends.is_empty());
    let took = start.elapsed();
    assert!(h.server_ends[0].is_clean(), "{}", h.server_ends[0]);
    assert!(took < HOLD, "the server ended only after {took:?}");
    let rest = client.join().unwrap();
    assert!(rest.ends_with(&[0x88, 0x02, 0x03, 0xe8]), "{rest:?}");
    assert!(h.errors.is_empty(), "{:?}", h.errors);
}
