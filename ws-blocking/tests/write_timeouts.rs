//! Writes to a peer that stopped reading: a write timeout the user set on
//! the socket before handing it over still ends a blocked `send` with an
//! I/O error, and the core's deadlines (the heartbeat's idle timeout) end
//! one too when no user timeout is set.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};
use ws_blocking::{Accept, Config, Error, Message};

/// A client that completes the handshake and then reads nothing; returned
/// so that the test decides when it goes away.
fn silent_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// Sends 256 KiB messages until one fails; the error and the time taken.
fn send_until_error(ws: &mut ws_blocking::WebSocket<TcpStream>) -> (Error, Duration) {
    let t0 = Instant::now();
    let chunk = Message::binary(vec![0x5a; 256 << 10]);
    for _ in 0..256 {
        if let Err(e) = ws.send(chunk.clone()) {
            return (e, t0.elapsed());
        }
    }
    panic!("64 MiB taken by a peer that reads nothing");
}

fn accept(
    l: &TcpListener,
    config: Config,
    user_timeout: Option<Duration>,
) -> ws_blocking::WebSocket<TcpStream> {
    let (tcp, _) = l.accept().unwrap();
    tcp.set_write_timeout(user_timeout).unwrap();
    ws_blocking::accept_with(tcp, config, |_| Ok(Accept::new())).unwrap()
}

#[test]
fn the_users_write_timeout_is_kept() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let client = std::thread::spawn(move || silent_client(addr));
    let mut ws = accept(&l, Config::default(), Some(Duration::from_millis(300)));
    let _client = client.join().unwrap();
    let (e, took) = send_until_error(&mut ws);
    match &e {
        Error::Io(io) => assert!(
            matches!(
                io.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(
        ws.get_ref().write_timeout().unwrap(),
        Some(Duration::from_millis(300)),
        "the user's write timeout is left in place"
    );
}

#[test]
fn the_idle_timeout_ends_a_blocked_send() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let client = std::thread::spawn(move || silent_client(addr));
    let config = Config::default().idle_timeout(Some(Duration::from_millis(500)));
    let mut ws = accept(&l, config, None);
    let _client = client.join().unwrap();
    let (e, took) = send_until_error(&mut ws);
    match &e {
        Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
    match ws.recv() {
        Some(Err(Error::Closed(info))) => {
            assert_eq!(info.ending, ws_proto::Ending::IdleTimeout, "{info}")
        }
        other => panic!("{other:?}"),
    }
    assert!(ws.recv().is_none());
}
