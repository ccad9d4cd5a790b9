//! The core's heartbeat and prepared (broadcast) messages driven by the
//! mio loop: the loop only re-reads `poll_timeout` after each drive, and
//! sends with `Connection::send_prepared`.

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use ws_mio::ws_proto::PreparedMessage;
use ws_mio::{
    http, Accept, Bytes, CloseCode, CloseInfo, Config, Connection, Ending, Event, EventLoop,
    Handler, Reject, Role, Token,
};

const MS: Duration = Duration::from_millis(1);

fn run_until<H: Handler>(
    el: &mut EventLoop,
    h: &mut H,
    mut done: impl FnMut(&EventLoop, &H) -> bool,
) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while !done(el, h) {
        assert!(Instant::now() < give_up, "the loop did not finish");
        el.turn(h, Some(Duration::from_millis(20))).unwrap();
    }
}

#[derive(Default)]
struct Rec {
    server_open: Vec<Token>,
    client_open: Vec<Token>,
    server_pongs: usize,
    client_pings: usize,
    client_texts: Vec<(Token, Bytes)>,
    server_ends: Vec<CloseInfo>,
    client_ends: Vec<CloseInfo>,
}

impl Handler for Rec {
    fn on_request(&mut self, _: Token, _: &http::Request<()>) -> Result<Accept, Reject> {
        Ok(Accept::new())
    }

    fn on_open(&mut self, token: Token, conn: &mut Connection, _: Option<&http::Response<()>>) {
        match conn.role() {
            Role::Server => self.server_open.push(token),
            Role::Client => self.client_open.push(token),
        }
    }

    fn on_event(&mut self, token: Token, conn: &mut Connection, event: Event) {
        match (conn.role(), event) {
            (Role::Server, Event::Pong(_)) => self.server_pongs += 1,
            (Role::Server, Event::Closed(i)) => self.server_ends.push(i),
            (Role::Client, Event::Ping(_)) => self.client_pings += 1,
            (Role::Client, Event::Text(t)) => self.client_texts.push((token, t.into_bytes())),
            (Role::Client, Event::Closed(i)) => self.client_ends.push(i),
            (_, ev) => panic!("unexpected {ev:?}"),
        }
    }
}

fn listen(el: &mut EventLoop, config: Config) -> String {
    let addr = el.listen("127.0.0.1:0".parse().unwrap(), config).unwrap();
    format!("127.0.0.1:{}", addr.port())
}

#[test]
fn heartbeat_drops_a_silent_client() {
    let mut el = EventLoop::new().unwrap();
    let addr = listen(
        &mut el,
        Config::default()
            .ping_interval(Some(50 * MS))
            .idle_timeout(Some(300 * MS)),
    );
    let mut silent = std::net::TcpStream::connect(&addr).unwrap();
    silent
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut h = Rec::default();
    run_until(&mut el, &mut h, |_, h| !h.server_ends.is_empty());
    assert_eq!(h.server_ends[0].ending, Ending::IdleTimeout);
    assert!(el.is_empty(), "the socket was dropped");
    // The client got the 101, some empty pings, then the end of the stream.
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut all = Vec::new();
    silent.read_to_end(&mut all).unwrap();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let frames = &all[head_end..];
    assert!(!frames.is_empty() && frames.len() % 2 == 0, "{frames:?}");
    assert!(frames.chunks(2).all(|f| f == [0x89, 0x00]), "{frames:?}");
}

#[test]
fn heartbeat_keeps_an_answering_client() {
    let mut el = EventLoop::new().unwrap();
    let addr = listen(
        &mut el,
        Config::default()
            .ping_interval(Some(50 * MS))
            .idle_timeout(Some(300 * MS)),
    );
    let url = format!("ws://{addr}/");
    let req = http::Request::get(&url).body(()).unwrap();
    el.connect(req, Config::default()).unwrap();
    let mut h = Rec::default();
    let start = Instant::now();
    // Well past the idle timeout, the client (auto-pong) is still there.
    run_until(&mut el, &mut h, |_, h| {
        h.server_pongs >= 16 && start.elapsed() > 800 * MS
    });
    assert!(h.server_ends.is_empty() && h.client_ends.is_empty());
    assert!(h.client_pings >= h.server_pongs);
    assert_eq!(el.len(), 2);
    let server = h.server_open[0];
    el.connection_mut(server)
        .unwrap()
        .close(Instant::now(), CloseCode::NORMAL, "bye")
        .unwrap();
    run_until(&mut el, &mut h, |el, _| el.is_empty());
    assert!(h.server_ends[0].is_clean(), "{}", h.server_ends[0]);
    assert!(h.client_ends[0].is_clean(), "{}", h.client_ends[0]);
}

#[test]
fn broadcast_with_a_prepared_message() {
    const N: usize = 5;
    let mut el = EventLoop::new().unwrap();
    let addr = listen(&mut el, Config::default());
    let url = format!("ws://{addr}/");
    for _ in 0..N {
        let req = http::Request::get(&url).body(()).unwrap();
        el.connect(req, Config::default()).unwrap();
    }
    let mut h = Rec::default();
    run_until(&mut el, &mut h, |_, h| {
        h.server_open.len() == N && h.client_open.len() == N
    });
    let text = "x".repeat(10_000);
    let msg = PreparedMessage::text(text.clone());
    for t in h.server_open.clone() {
        el.connection_mut(t).unwrap().send_prepared(&msg).unwrap();
    }
    run_until(&mut el, &mut h, |_, h| h.client_texts.len() == N);
    let mut tokens: Vec<Token> = h.client_texts.iter().map(|(t, _)| *t).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), N, "each client got it once");
    assert!(h.client_texts.iter().all(|(_, b)| b == text.as_bytes()));
    // A client connection refuses it.
    let c = h.client_open[0];
    assert_eq!(
        el.connection_mut(c).unwrap().send_prepared(&msg),
        Err(ws_mio::ws_proto::UsageError::ServerOnly)
    );
}

/// The handler picks a subprotocol the client did not offer: a server bug,
/// so the client gets a 500 and the end of the stream (not a silent drop),
/// and the handler hears of the usage error.
#[test]
fn unoffered_subprotocol_is_answered_with_500() {
    struct Wrong(Vec<ws_mio::Error>);
    impl Handler for Wrong {
        fn on_request(&mut self, _: Token, _: &http::Request<()>) -> Result<Accept, Reject> {
            Ok(Accept::new().protocol("mqtt"))
        }
        fn on_event(&mut self, _: Token, _: &mut Connection, ev: Event) {
            panic!("unexpected {ev:?}");
        }
        fn on_error(&mut self, _: Token, e: ws_mio::Error) {
            self.0.push(e);
        }
    }
    let mut el = EventLoop::new().unwrap();
    let addr = listen(&mut el, Config::default());
    let mut client = std::net::TcpStream::connect(&addr).unwrap();
    client
        .write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Protocol: chat\r\n\r\n",
        )
        .unwrap();
    let mut h = Wrong(Vec::new());
    run_until(&mut el, &mut h, |el, h| !h.0.is_empty() && el.is_empty());
    assert_eq!(
        h.0,
        [ws_mio::Error::Usage(
            ws_mio::ws_proto::UsageError::ProtocolNotOffered
        )]
    );
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut all = Vec::new();
    client.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}
