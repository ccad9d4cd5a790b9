//! The writing half of a split socket runs the core's timers while its
//! write waits: with an idle timeout set and a peer that stopped reading,
//! `send` on the writer ends with an error whether the reading half was
//! dropped, is never polled, or waits in `recv` in another task (which
//! then reports the idle timeout).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::{Accept, Config, Error, Message, WebSocketReader, WebSocketWriter};

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
    let client = tokio::spawn(silent_client(addr));
    let (tcp, _) = l.accept().await.unwrap();
    let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
    let ws = ws_tokio::accept_with(tcp, config, |_| Ok(Accept::new()))
        .await
        .unwrap();
    let peer = client.await.unwrap();
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
    let e = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("the writer's send is still blocked after 15 s");
    (e, t0.elapsed())
}

fn assert_timed_out(e: &Error, took: Duration) {
    match e {
        Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("{other}"),
    }
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test]
async fn writer_alone_times_out() {
    let (r, mut w, _peer) = halves().await;
    drop(r);
    let (e, took) = send_until_error(&mut w).await;
    assert_timed_out(&e, took);
}

#[tokio::test]
async fn writer_times_out_while_the_reader_is_not_polled() {
    let (r, mut w, _peer) = halves().await;
    let (e, took) = send_until_error(&mut w).await;
    assert_timed_out(&e, took);
    // The reader, polled now, reports how the connection ended.
    let mut r = r;
    match tokio::time::timeout(Duration::from_secs(5), r.recv()).await {
        Ok(Some(Err(Error::Closed(info)))) => {
            assert_eq!(info.ending, ws_proto::Ending::IdleTimeout, "{info}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_waiting_in_recv_also_sees_the_timeout() {
    let (mut r, mut w, _peer) = halves().await;
    let reader = tokio::spawn(async move {
        let got = tokio::time::timeout(Duration::from_secs(15), r.recv()).await;
        (got, r)
    });
    let (e, took) = send_until_error(&mut w).await;
    // Whichever half's timer fires first ends the connection: the writer's
    // wait ends with `TimedOut`, or (the reader fired it and the core
    // dropped what was queued) the next send finds the connection closed.
    match &e {
        Error::Usage(ws_proto::UsageError::Closed) => {
            assert!(took < Duration::from_secs(10), "{took:?}")
        }
        _ => assert_timed_out(&e, took),
    }
    let (got, _r) = reader.await.unwrap();
    match got {
        Ok(Some(Err(Error::Closed(info)))) => {
            assert_eq!(info.ending, ws_proto::Ending::IdleTimeout, "{info}")
        }
        other => panic!("{other:?}"),
    }
}

/// The `Sink` of an unsplit socket and of the writing half: `send` (which
/// polls `poll_ready`, `start_send`, `poll_flush`) runs the timers too.
#[tokio::test]
async fn sink_send_times_out() {
    use futures_util::SinkExt;
    let (r, w, _peer) = halves().await;
    let mut ws = r.unsplit(w);
    let chunk = Message::binary(vec![0x5a; 256 << 10]);
    let t0 = Instant::now();
    let run = async {
        for _ in 0..256 {
            if let Err(e) = SinkExt::send(&mut ws, chunk.clone()).await {
                return e;
            }
        }
        panic!("64 MiB taken by a peer that reads nothing");
    };
    let e = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("Sink::send is still blocked after 15 s");
    assert_timed_out(&e, t0.elapsed());

    let (_r, mut w, _peer) = halves().await;
    let t0 = Instant::now();
    let run = async {
        for _ in 0..256 {
            if let Err(e) = SinkExt::send(&mut w, chunk.clone()).await {
                return e;
            }
        }
        panic!("64 MiB taken by a peer that reads nothing");
    };
    let e = tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .expect("the writer's Sink::send is still blocked after 15 s");
    assert_timed_out(&e, t0.elapsed());
}

/// Messages queued for a peer that does not read, when the reading half's
/// timer ends the connection: the writer's next flush fails (`TimedOut`),
/// it does not report them written. Here nobody flushes while the reader
/// times out: the writer's sends were cancelled with their messages queued.
#[tokio::test]
async fn queued_messages_dropped_by_the_readers_timeout_fail_the_flush() {
    let (mut r, mut w, _peer) = halves().await;
    let chunk = Message::binary(vec![0x5a; 256 << 10]);
    // Send until a send waits (the socket is full), then cancel it: its
    // message stays queued.
    let mut waited = false;
    for _ in 0..256 {
        match tokio::time::timeout(Duration::from_millis(50), w.send(chunk.clone())).await {
            Ok(res) => res.unwrap(),
            Err(_) => {
                waited = true;
                break;
            }
        }
    }
    assert!(waited, "64 MiB taken by a peer that reads nothing");
    assert!(w.buffered_amount() > 0);
    // The reader's timer ends the connection while the writer waits.
    match tokio::time::timeout(Duration::from_secs(5), r.recv()).await {
        Ok(Some(Err(Error::Closed(info)))) => {
            assert_eq!(info.ending, ws_proto::Ending::IdleTimeout, "{info}")
        }
        other => panic!("{other:?}"),
    }
    let flushed = tokio::time::timeout(Duration::from_secs(5), w.flush())
        .await
        .expect("flush still waits");
    match flushed {
        Err(Error::Io(io)) => assert_eq!(io.kind(), std::io::ErrorKind::TimedOut),
        other => panic!("what was queued was not written, yet flush said {other:?}"),
    }
}
