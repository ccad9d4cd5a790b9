//! The writing half of a split socket runs the core's timers while its
//! write waits: with an idle timeout set and a peer that stopped reading,
//! `send` on the writer ends with an error whether the reading half was
//! dropped, is never polled, or waits in `recv` in another task (which
//! then reports the idle timeout). On smol.

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};
use std::future::Future;
use std::time::{Duration, Instant};
use ws_async_std::{Accept, Config, Error, Message, WebSocketReader, WebSocketWriter};

/// `fut`, or a panic saying `what` after `secs` seconds.
async fn bounded<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    let timeout = async {
        smol::Timer::after(Duration::from_secs(secs)).await;
        panic!("{what} after {secs} s");
    };
    smol::future::or(fut, timeout).await
}

/// A client that completes the handshake and then reads nothing.
async fn silent_client(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// A server socket (idle timeout 300 ms) split in halves, and the silent
/// peer, kept open by the caller.
async fn halves() -> (
    WebSocketReader<TcpStream>,
    WebSocketWriter<TcpStream>,
    TcpStream,
) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let client = smol::spawn(silent_client(addr));
    let (tcp, _) = l.accept().await.unwrap();
    let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
    let ws = ws_async_std::smol::accept_with(tcp, config, |_| Ok(Accept::new()))
        .await
        .unwrap();
    let peer = client.await;
    let (r, w) = ws.split();
    (r, w, peer)
}

/// Sends 256 KiB messages until one fails (at most 64 MiB, at most 15 s).
async fn send_until_error(w: &mut WebSocketWriter<TcpStream>) -> (Error, Duration) {
    let t0 = Instant::now();
    let chunk = Message::binary(vec![0x5a; 256 << 10]);
    let run = async {
        for _ in 0..256 {
            if let Err(e) = w.send(chunk.clone()).await {
                return e;
            }
        }
        panic!("64 MiB taken by a peer that reads nothing");
    };
    let e = bounded(15, "the writer's send is still blocked", run).await;
    (e, t0.elapsed())
}

fn assert_timed_out(e: &Error, took: Duration) {
    match e {
        Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
}

fn assert_idle_timeout(got: Option<Result<Message, Error>>) {
    match got {
        Some(Err(Error::Closed(info))) => {
            assert_eq!(info.ending, ws_proto::Ending::IdleTimeout, "{info}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn writer_alone_times_out() {
    smol::block_on(async {
        let (r, mut w, _peer) = halves().await;
        drop(r);
        let (e, took) = send_until_error(&mut w).await;
        assert_timed_out(&e, took);
    })
}

#[test]
fn writer_times_out_while_the_reader_is_not_polled() {
    smol::block_on(async {
        let (mut r, mut w, _peer) = halves().await;
        let (e, took) = send_until_error(&mut w).await;
        assert_timed_out(&e, took);
        // The reader, polled now, reports how the connection ended.
        assert_idle_timeout(bounded(5, "recv still waits", r.recv()).await);
    })
}

#[test]
fn reader_waiting_in_recv_also_sees_the_timeout() {
    smol::block_on(async {
        let (mut r, mut w, _peer) = halves().await;
        let reader = smol::spawn(async move {
            let got = bounded(15, "recv still waits", r.recv()).await;
            (got, r)
        });
        let (e, took) = send_until_error(&mut w).await;
        // Whichever half's timer fires first ends the connection: the
        // writer's wait ends with `TimedOut`, or (the reader fired it and
        // dropped what was unwritten) the next send finds it closed.
        match &e {
            Error::Usage(ws_proto::UsageError::Closed) => {
                assert!(took < Duration::from_secs(10), "{took:?}")
            }
            _ => assert_timed_out(&e, took),
        }
        let (got, _r) = reader.await;
        assert_idle_timeout(got);
    })
}

/// Messages queued for a peer that does not read, when the reading half's
/// timer ends the connection: the writer's next flush fails (`TimedOut`),
/// it does not report them written. Here nobody flushes while the reader
/// times out: the writer's sends were cancelled with their messages queued.
#[test]
fn queued_messages_dropped_by_the_readers_timeout_fail_the_flush() {
    smol::block_on(async {
        let (mut r, mut w, _peer) = halves().await;
        let chunk = Message::binary(vec![0x5a; 256 << 10]);
        // Send until a send waits (the socket is full), then cancel it:
        // its message stays queued.
        let mut waited = false;
        for _ in 0..256 {
            let send = async { Some(w.send(chunk.clone()).await) };
            let wait = async {
                smol::Timer::after(Duration::from_millis(50)).await;
                None
            };
            match smol::future::or(send, wait).await {
                Some(res) => res.unwrap(),
                None => {
                    waited = true;
                    break;
                }
            }
        }
        assert!(waited, "64 MiB taken by a peer that reads nothing");
        assert!(w.buffered_amount() > 0);
        // The reader's timer ends the connection while the writer waits.
        assert_idle_timeout(bounded(5, "recv still waits", r.recv()).await);
        let flushed = bounded(5, "flush still waits", w.flush()).await;
        match flushed {
            Err(Error::Io(io)) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut),
            other => panic!("what was queued was not written, yet flush said {other:?}"),
        }
    })
}
