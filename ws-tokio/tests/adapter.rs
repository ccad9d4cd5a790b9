//! ws-tokio behaviour over in-memory pipes and loopback TCP.

use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use ws_tokio::{Accept, CloseCode, Config, Error, Message, Reject, WebSocket};

async fn pair_with(config: Config) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let server =
        tokio::spawn(async move { ws_tokio::accept_with(b, config, |_| Ok(Accept::new())).await });
    let req = ws_tokio::http::Request::get("ws://localhost/")
        .body(())
        .unwrap();
    let (client, resp) = ws_tokio::client_handshake(a, req, Config::default())
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    (client, server.await.unwrap().unwrap())
}

async fn pair() -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    pair_with(Config::default()).await
}

#[tokio::test]
async fn echo_sizes_both_kinds() {
    let (mut c, mut s) = pair().await;
    let echo = tokio::spawn(async move {
        while let Some(Ok(m)) = s.recv().await {
            if m.is_data() {
                s.send(m).await.unwrap();
            }
        }
        s.close_info().cloned()
    });
    for size in [0usize, 1, 125, 126, 65535, 65536, 1 << 20] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        c.send(Message::binary(payload.clone())).await.unwrap();
        assert_eq!(c.recv().await.unwrap().unwrap(), Message::binary(payload));
        let text = "é".repeat(size / 2);
        c.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(c.recv().await.unwrap().unwrap(), Message::text(text));
    }
    c.close(CloseCode::NORMAL, "bye").await.unwrap();
    match c.recv().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::NORMAL),
        other => panic!("expected close, got {other:?}"),
    }
    assert!(c.recv().await.is_none());
    let info = echo.await.unwrap().expect("server saw the end");
    assert!(info.is_clean());
    assert!(info.remote_initiated);
    assert_eq!(info.received.unwrap().reason, "bye");
}

#[tokio::test]
async fn server_initiated_close_and_ping() {
    let (mut c, mut s) = pair().await;
    s.ping(&b"are you there"[..]).await.unwrap();
    let client = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(m) = c.recv().await {
            seen.push(m.unwrap());
        }
        (seen, c.close_info().cloned().unwrap())
    });
    assert_eq!(
        s.recv().await.unwrap().unwrap(),
        Message::Pong(b"are you there"[..].into())
    );
    s.close(CloseCode(4000), "app close").await.unwrap();
    assert!(matches!(s.recv().await, Some(Ok(Message::Close(Some(_))))));
    assert!(s.recv().await.is_none());
    let (seen, info) = client.await.unwrap();
    assert_eq!(seen[0], Message::Ping(b"are you there"[..].into()));
    assert_eq!(
        seen.last().unwrap(),
        &Message::Close(Some(ws_tokio::CloseFrame::new(4000, "app close")))
    );
    assert!(info.is_clean() && info.remote_initiated);
}

#[tokio::test]
async fn stream_and_sink() {
    let (mut c, mut s) = pair().await;
    tokio::spawn(async move {
        while let Some(Ok(m)) = s.next().await {
            if m.is_data() {
                s.send(m).await.unwrap();
            }
        }
    });
    for i in 0..100 {
        c.feed(Message::text(format!("m{i}"))).unwrap();
    }
    SinkExt::flush(&mut c).await.unwrap();
    for i in 0..100 {
        assert_eq!(
            c.next().await.unwrap().unwrap(),
            Message::text(format!("m{i}"))
        );
    }
    SinkExt::close(&mut c).await.unwrap();
    assert!(matches!(c.next().await, Some(Ok(Message::Close(_)))));
    assert!(c.next().await.is_none());
}

#[tokio::test]
async fn split_halves_from_two_tasks() {
    let (c, mut s) = pair().await;
    tokio::spawn(async move {
        while let Some(Ok(m)) = s.recv().await {
            if m.is_data() {
                s.send(m).await.unwrap();
            }
        }
    });
    let (mut rx, mut tx) = c.split();
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(m) = rx.recv().await {
            match m.unwrap() {
                Message::Binary(b) => {
                    assert_eq!(b.len(), 10_000);
                    n += 1;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
        n
    });
    for _ in 0..200 {
        tx.send(Message::binary(vec![7u8; 10_000])).await.unwrap();
    }
    tx.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(reader.await.unwrap(), 200);
}

#[tokio::test]
async fn recv_is_cancel_safe() {
    let (mut c, mut s) = pair().await;
    // Cancel many recv calls part-way; no message may be lost.
    let sender = tokio::spawn(async move {
        for i in 0..500u32 {
            s.send(Message::binary(i.to_be_bytes().to_vec()))
                .await
                .unwrap();
            if i % 7 == 0 {
                tokio::task::yield_now().await;
            }
        }
        s.close(CloseCode::NORMAL, "").await.unwrap();
        while s.recv().await.is_some() {}
    });
    let mut next = 0u32;
    loop {
        tokio::select! {
            biased;
            m = c.recv() => match m {
                Some(Ok(Message::Binary(b))) => {
                    assert_eq!(u32::from_be_bytes(b[..].try_into().unwrap()), next);
                    next += 1;
                }
                Some(Ok(Message::Close(_))) | None => break,
                other => panic!("{other:?}"),
            },
            _ = tokio::task::yield_now() => {}
        }
    }
    assert_eq!(next, 500);
    sender.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn close_timeout_when_peer_never_answers() {
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(async move {
        let config = Config::default().close_timeout(Duration::from_secs(3));
        ws_tokio::accept_with(a, config, |_| Ok(Accept::new())).await
    });
    // A raw client: does the handshake, then ignores everything.
    b.write_all(
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut s = server.await.unwrap().unwrap();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = b.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
        b
    });
    s.close(CloseCode::NORMAL, "").await.unwrap();
    let start = tokio::time::Instant::now();
    match s.recv().await {
        Some(Err(Error::Closed(info))) => {
            assert_eq!(info.ending, ws_proto::Ending::Timeout);
        }
        other => panic!("{other:?}"),
    }
    assert!(s.recv().await.is_none());
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    drop(s);
    drain.await.unwrap();
}

#[tokio::test]
async fn peer_vanishing_is_abnormal() {
    let (mut c, s) = pair().await;
    drop(s);
    match c.recv().await {
        Some(Err(Error::Closed(info))) => {
            assert_eq!(info.code(), CloseCode::ABNORMAL);
            assert!(!info.is_clean());
        }
        other => panic!("{other:?}"),
    }
    assert!(c.recv().await.is_none());
    assert!(matches!(
        c.send(Message::text("x")).await,
        Err(Error::Usage(_))
    ));
}

#[tokio::test]
async fn oversized_message_closes_with_1009() {
    let (mut c, mut s) = pair_with(Config::default().max_message_size(1000)).await;
    c.send(Message::binary(vec![0u8; 1001])).await.unwrap();
    // Drive both ends at once: the server's verdict comes when the client
    // has answered its close frame and the TCP close is done.
    let (server_end, client_end) = tokio::join!(s.recv(), c.recv());
    assert!(matches!(
        server_end,
        Some(Err(Error::Protocol(
            ws_proto::ProtocolError::MessageTooLarge
        )))
    ));
    match client_end {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::MESSAGE_TOO_BIG),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tcp_rejection_and_subprotocols() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        for _ in 0..2 {
            let (tcp, _) = listener.accept().await.unwrap();
            let res = ws_tokio::accept_with(tcp, Config::default(), |req| {
                if req.uri().path() == "/forbidden" {
                    Err(Reject::new(403).body("go away"))
                } else {
                    Ok(Accept::new().protocol("b"))
                }
            })
            .await;
            if let Ok(mut ws) = res {
                while ws.recv().await.is_some() {}
            }
        }
    });
    match ws_tokio::connect(&format!("ws://{addr}/forbidden")).await {
        Err(Error::Handshake(ws_proto::HandshakeError::UnexpectedStatus {
            status, body, ..
        })) => {
            assert_eq!(status, 403);
            assert_eq!(body, b"go away");
        }
        other => panic!("{other:?}"),
    }
    let req = ws_tokio::http::Request::get(format!("ws://{addr}/chat"))
        .header("sec-websocket-protocol", "a, b")
        .body(())
        .unwrap();
    let (mut ws, resp) = ws_tokio::connect_with(req, Config::default())
        .await
        .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "b");
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while ws.recv().await.is_some() {}
    server.await.unwrap();
}
