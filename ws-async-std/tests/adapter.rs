//! The adapter over real TCP on 127.0.0.1, each scenario on async-std and
//! on smol. Nothing sleeps to wait: timers run on a virtual clock, and
//! every test is bounded by `common::LIMIT`.

// The decide callbacks return `Result<Accept, Reject>`, and `Reject` (the
// core's type) is large.
#![allow(clippy::result_large_err)]

mod common;

use common::{BoxFut, Clock, Rt};
use smol::future::{poll_once, yield_now};
use std::pin::pin;
use std::time::Duration;
use ws_async_std::{http, CloseCode, CloseFrame, Config, Error, HandshakeError, Message, Reject};
use ws_proto::Ending;

/// What a server's `recv` yielded besides data, and its close info.
type Ending2 = (Vec<Result<Message, Error>>, Option<ws_async_std::CloseInfo>);

/// Accepts one connection and echoes its data messages until the end.
fn echo_server<R: Rt>(l: R::Listener) -> BoxFut<'static, Ending2> {
    R::spawn(async move {
        let mut ws = R::accept_tcp(&l).await.expect("accept");
        let mut rest = Vec::new();
        while let Some(m) = ws.recv().await {
            match m {
                Ok(m) if m.is_data() => ws.feed(m).expect("feed"),
                other => rest.push(other),
            }
        }
        (rest, ws.close_info().cloned())
    })
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn url(addr: std::net::SocketAddr) -> String {
    format!("ws://{addr}/")
}

async fn echo_round_trips<R: Rt>() {
    let (l, addr) = R::bind().await;
    let server = echo_server::<R>(l);
    let mut ws = R::connect(url(addr)).await.expect("connect");
    let msgs = [
        Message::text("hello"),
        Message::text(""),
        Message::text("héllo ✓ 𝄞"),
        Message::binary(Vec::new()),
        Message::binary((0..=255u8).collect::<Vec<_>>()),
        Message::binary(pattern(200_000, 1)),
        Message::text("x".repeat(3 << 20)),
    ];
    for m in &msgs {
        ws.send(m.clone()).await.expect("send");
        assert_eq!(ws.recv().await.unwrap().unwrap(), *m);
    }
    // Many queued with `feed`, written by one `flush`, echoed in order.
    for i in 0..100 {
        ws.feed(Message::text(format!("m{i}"))).unwrap();
    }
    assert!(ws.buffered_amount() > 0);
    ws.flush().await.unwrap();
    for i in 0..100 {
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::text(format!("m{i}"))
        );
    }
    ws.close(CloseCode::NORMAL, "done").await.unwrap();
    assert!(matches!(
        ws.recv().await,
        Some(Ok(Message::Close(Some(f)))) if f.code == CloseCode::NORMAL
    ));
    assert!(ws.recv().await.is_none());
    assert!(ws.recv().await.is_none(), "None stays None");
    let info = ws.close_info().expect("close info");
    assert!(info.is_clean() && !info.remote_initiated);
    drop(ws);
    let (rest, info) = server.await;
    assert_eq!(
        rest,
        vec![Ok(Message::Close(Some(CloseFrame::new(1000, "done"))))]
    );
    assert!(info.unwrap().remote_initiated);
}

async fn stream_and_sink<R: Rt>() {
    use futures_util::{SinkExt, StreamExt};
    let (l, addr) = R::bind().await;
    let server = echo_server::<R>(l);
    let mut ws = R::connect(url(addr)).await.expect("connect");
    for i in 0..10u8 {
        SinkExt::send(&mut ws, Message::binary(vec![i; 1000]))
            .await
            .unwrap();
        assert_eq!(
            ws.next().await.unwrap().unwrap(),
            Message::binary(vec![i; 1000])
        );
    }
    SinkExt::close(&mut ws).await.unwrap();
    // Closing again (or after `Pending`) is not an error.
    SinkExt::close(&mut ws).await.unwrap();
    let rest: Vec<_> = ws.collect().await;
    assert_eq!(rest.len(), 1);
    assert!(matches!(&rest[0], Ok(Message::Close(Some(_)))));
    server.await;
}

/// The halves work from two tasks, and both write: the reading half
/// answers pings while the writing half sends.
async fn split_halves_two_tasks<R: Rt>() {
    const N: usize = 48;
    let (l, addr) = R::bind().await;
    // Echoes each message followed by a ping carrying its index; counts
    // the pongs.
    let server = R::spawn(async move {
        let mut ws = R::accept_tcp(&l).await.expect("accept");
        let mut i = 0usize;
        let mut pongs = Vec::new();
        let mut end = None;
        while let Some(m) = ws.recv().await {
            match m.unwrap() {
                m if m.is_data() => {
                    ws.feed(m).unwrap();
                    ws.feed(Message::Ping(i.to_string().into())).unwrap();
                    i += 1;
                }
                Message::Pong(p) => pongs.push(String::from_utf8(p.to_vec()).unwrap()),
                other => end = Some(other),
            }
        }
        (pongs, end)
    });
    let (ws, _) = R::connect_with(http::Request::get(url(addr)).body(()).unwrap())
        .await
        .expect("connect");
    let (mut rx, mut tx) = ws.split();
    let (seen_last_ping, got_it) = smol::channel::bounded::<()>(1);
    let reader = R::spawn(async move {
        let mut data = Vec::new();
        let mut pings = 0;
        let mut end = None;
        while let Some(m) = rx.recv().await {
            match m.unwrap() {
                Message::Binary(b) => data.push(b),
                Message::Ping(p) => {
                    pings += 1;
                    if p == (N - 1).to_string().as_bytes() {
                        seen_last_ping.send(()).await.unwrap();
                    }
                }
                other => end = Some(other),
            }
        }
        (rx, data, pings, end)
    });
    for i in 0..N {
        tx.send(Message::binary(pattern(64 << 10, i as u8)))
            .await
            .unwrap();
    }
    // The pong for the last ping is queued before our close frame.
    got_it.recv().await.unwrap();
    tx.close(CloseCode::NORMAL, "").await.unwrap();
    let (rx, data, pings, end) = reader.await;
    assert_eq!(data.len(), N);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(&d[..], &pattern(64 << 10, i as u8)[..], "message {i}");
    }
    assert_eq!(pings, N);
    assert!(matches!(end, Some(Message::Close(_))));
    assert!(rx.close_info().unwrap().is_clean());
    let ws = rx.unsplit(tx);
    assert!(ws.connection().is_closed());
    drop(ws);
    let (pongs, end) = server.await;
    // Beyond a queue limit the core answers only the latest ping.
    assert!(!pongs.is_empty() && pongs.len() <= N);
    assert_eq!(pongs.last().unwrap(), &(N - 1).to_string());
    assert!(matches!(end, Some(Message::Close(_))));
}

async fn close_from_client<R: Rt>() {
    let (l, addr) = R::bind().await;
    let server = echo_server::<R>(l);
    let mut ws = R::connect(url(addr)).await.expect("connect");
    ws.close(CloseCode(4000), "bye").await.unwrap();
    // Sending after close is the caller's fault.
    assert!(matches!(
        ws.send(Message::text("late")).await,
        Err(Error::Usage(_))
    ));
    match ws.recv().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode(4000)),
        other => panic!("{other:?}"),
    }
    assert!(ws.recv().await.is_none());
    let info = ws.close_info().unwrap();
    assert!(info.is_clean() && !info.remote_initiated);
    assert_eq!(info.sent, Some(CloseFrame::new(4000, "bye")));
    drop(ws);
    let (rest, info) = server.await;
    assert_eq!(
        rest,
        vec![Ok(Message::Close(Some(CloseFrame::new(4000, "bye"))))]
    );
    let info = info.unwrap();
    assert!(info.is_clean() && info.remote_initiated);
}

async fn close_from_server<R: Rt>() {
    let (l, addr) = R::bind().await;
    let server = R::spawn(async move {
        let mut ws = R::accept_tcp(&l).await.expect("accept");
        ws.send(Message::text("first")).await.unwrap();
        ws.close(CloseCode::GOING_AWAY, "restart").await.unwrap();
        let mut rest = Vec::new();
        while let Some(m) = ws.recv().await {
            rest.push(m);
        }
        (rest, ws.close_info().cloned().unwrap())
    });
    let mut ws = R::connect(url(addr)).await.expect("connect");
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("first"));
    assert_eq!(
        ws.recv().await.unwrap().unwrap(),
        Message::Close(Some(CloseFrame::new(1001, "restart")))
    );
    assert!(ws.recv().await.is_none());
    let info = ws.close_info().unwrap();
    assert!(info.is_clean() && info.remote_initiated);
    drop(ws);
    let (rest, info) = server.await;
    assert_eq!(rest.len(), 1);
    assert!(matches!(&rest[0], Ok(Message::Close(Some(f))) if f.code == CloseCode::GOING_AWAY));
    assert!(info.is_clean() && !info.remote_initiated);
}

/// A peer that drops TCP without a close handshake: one `Err`, then `None`.
async fn abnormal_end<R: Rt>() {
    let (l, addr) = R::bind().await;
    let server = R::spawn(async move {
        let ws = R::accept_tcp(&l).await.expect("accept");
        drop(ws);
    });
    let mut ws = R::connect(url(addr)).await.expect("connect");
    server.await;
    assert!(matches!(ws.recv().await, Some(Err(_))));
    assert!(ws.recv().await.is_none());
    assert_eq!(ws.close_info().unwrap().ending, Ending::Abnormal);
    assert!(ws.send(Message::text("x")).await.is_err());
}

/// Dropping `recv` at any point loses nothing: every message arrives
/// once, in order, with `recv` cancelled whenever it would wait.
async fn cancel_safety_recv<R: Rt>() {
    const N: usize = 300;
    let size = |i: usize| (i * 7919) % 150_000;
    let (l, addr) = R::bind().await;
    let server = R::spawn(async move {
        let mut ws = R::accept_tcp(&l).await.expect("accept");
        for i in 0..N {
            ws.feed(Message::binary(pattern(size(i), i as u8))).unwrap();
            if i % 7 == 0 {
                ws.flush().await.unwrap();
            }
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        while ws.recv().await.is_some() {}
    });
    let mut ws = R::connect(url(addr)).await.expect("connect");
    let mut got = 0;
    let mut cancelled = 0u64;
    loop {
        match poll_once(ws.recv()).await {
            None => {
                // The recv future is dropped here, mid-message or not.
                cancelled += 1;
                yield_now().await;
            }
            Some(Some(Ok(Message::Binary(b)))) => {
                assert_eq!(&b[..], &pattern(size(got), got as u8)[..], "message {got}");
                got += 1;
            }
            Some(Some(Ok(Message::Close(_)))) => {}
            Some(None) => break,
            Some(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(got, N);
    assert!(cancelled > 0);
    assert!(ws.close_info().unwrap().is_clean());
    drop(ws);
    server.await;
}

/// A `send` dropped after its first poll still sends its message, once
/// (16 MiB in all: below the default `max_send_buffer` when each send
/// starts, so that none waits for room before queuing).
async fn cancel_safety_send<R: Rt>() {
    const N: usize = 4;
    const SIZE: usize = 4 << 20;
    let (l, addr) = R::bind().await;
    let (go, wait) = smol::channel::bounded::<()>(1);
    let server = R::spawn(async move {
        let mut ws = R::accept_tcp(&l).await.expect("accept");
        // Let the client fill the socket buffers first.
        wait.recv().await.unwrap();
        let mut got = Vec::new();
        while let Some(m) = ws.recv().await {
            match m.unwrap() {
                Message::Close(_) => {}
                m => got.push(m),
            }
        }
        got
    });
    let mut ws = R::connect(url(addr)).await.expect("connect");
    let mut pending = 0;
    for i in 0..N {
        if poll_once(ws.send(Message::binary(pattern(SIZE, i as u8))))
            .await
            .is_none()
        {
            pending += 1;
        }
    }
    // The socket cannot take 16 MiB while the peer does not read.
    assert!(pending > 0);
    assert!(ws.buffered_amount() > 0);
    go.send(()).await.unwrap();
    ws.send(Message::text("end")).await.unwrap();
    assert_eq!(ws.buffered_amount(), 0);
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while ws.recv().await.is_some() {}
    drop(ws);
    let got = server.await;
    assert_eq!(got.len(), N + 1);
    for (i, m) in got[..N].iter().enumerate() {
        assert_eq!(m.as_payload(), &pattern(SIZE, i as u8)[..], "message {i}");
    }
    assert_eq!(got[N], Message::text("end"));
}

/// The crate-root functions with a timer argument; a rejected request.
async fn reject_handshake<R: Rt>() {
    let (l, addr) = R::bind().await;
    let server = R::spawn(async move {
        let tcp = R::tcp_accept(&l).await;
        ws_async_std::accept_with(tcp, Config::default(), R::Timer::default(), |req| {
            assert_eq!(req.uri().path(), "/private");
            Err(Reject::new(403).body("no"))
        })
        .await
    });
    match R::connect(format!("ws://{addr}/private")).await {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, .. })) => {
            assert_eq!(status, 403)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        server.await.unwrap_err(),
        Error::Handshake(HandshakeError::Rejected(403))
    );
}

/// `accept_prefixed` with bytes of the request already read.
async fn accept_prefixed_head<R: Rt>() {
    use smol::io::AsyncReadExt;
    let (l, addr) = R::bind().await;
    let server = R::spawn(async move {
        let mut tcp = R::tcp_accept(&l).await;
        let mut head = [0u8; 10];
        tcp.read_exact(&mut head).await.unwrap();
        assert_eq!(&head[..4], b"GET ");
        let mut ws = R::accept_prefixed(tcp, head.to_vec())
            .await
            .expect("accept");
        while let Some(Ok(m)) = ws.recv().await {
            if m.is_data() {
                ws.feed(m).unwrap();
            }
        }
    });
    let mut ws = R::connect(url(addr)).await.expect("connect");
    ws.send(Message::text("prefixed")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("prefixed"));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while ws.recv().await.is_some() {}
    drop(ws);
    server.await;
}

/// The close timeout runs on the adapter's timer: a peer that never answers
/// our close frame ends the connection when the (virtual) time is up.
async fn close_timeout_on_virtual_clock<R: Rt>() {
    let (l, addr) = R::bind().await;
    let (done, wait) = smol::channel::bounded::<()>(1);
    let server = R::spawn(async move {
        // Accepts, then neither reads nor answers until the test ends.
        let ws = R::accept_tcp(&l).await.expect("accept");
        wait.recv().await.unwrap();
        drop(ws);
    });
    let clock = Clock::default();
    let tcp = R::tcp_connect(addr).await;
    let req = http::Request::get(url(addr)).body(()).unwrap();
    let (mut ws, _) = ws_async_std::client_handshake(tcp, req, Config::default(), clock.clone())
        .await
        .expect("handshake");
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    {
        let mut recv = pin!(ws.recv());
        assert!(poll_once(recv.as_mut()).await.is_none());
        assert_eq!(clock.sleepers(), 1, "recv waits for the close timer");
        clock.advance(Duration::from_secs(9));
        assert!(poll_once(recv.as_mut()).await.is_none());
        clock.advance(Duration::from_secs(2));
        match recv.await {
            Some(Err(Error::Closed(info))) => assert_eq!(info.ending, Ending::Timeout),
            other => panic!("{other:?}"),
        }
    }
    assert!(ws.recv().await.is_none());
    assert_eq!(ws.close_info().unwrap().ending, Ending::Timeout);
    done.send(()).await.unwrap();
    server.await;
}

/// The handshake timeout runs on the adapter's timer too.
async fn handshake_timeout_on_virtual_clock<R: Rt>() {
    let (l, addr) = R::bind().await;
    // A client that connects and says nothing.
    let client = R::tcp_connect(addr).await;
    let tcp = R::tcp_accept(&l).await;
    let clock = Clock::default();
    let mut accept = pin!(ws_async_std::accept(tcp, clock.clone()));
    assert!(poll_once(accept.as_mut()).await.is_none());
    assert_eq!(clock.sleepers(), 1);
    clock.advance(Duration::from_secs(11));
    assert_eq!(
        accept.await.unwrap_err(),
        Error::Handshake(HandshakeError::Timeout)
    );
    drop(client);
}

on_both_runtimes!(
    echo_round_trips,
    stream_and_sink,
    split_halves_two_tasks,
    close_from_client,
    close_from_server,
    abnormal_end,
    cancel_safety_recv,
    cancel_safety_send,
    reject_handshake,
    accept_prefixed_head,
    close_timeout_on_virtual_clock,
    handshake_timeout_on_virtual_clock,
);
