//! The futures-io server: policy, request info, client tracking,
//! broadcast, upgrades of pre-read streams routed by path; each scenario on
//! async-std and on smol, over real TCP on 127.0.0.1.

#![allow(clippy::result_large_err)]

mod common;

use common::Rt;
use smol::future::yield_now;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::net::SocketAddr;
use ws_async_std::server::{
    is_upgrade_request, read_request, write_reject, QueueError, Router, Server, ServerPolicy,
    Upgrader,
};
use ws_async_std::{http, CloseCode, Config, Error, HandshakeError, Message, Reject, WebSocket};

fn url(addr: SocketAddr, path: &str) -> String {
    format!("ws://{addr}{path}")
}

async fn next_text<S>(ws: &mut WebSocket<S>) -> String
where
    S: futures_io::AsyncRead + futures_io::AsyncWrite + Unpin,
{
    loop {
        match ws.recv().await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

fn status<T>(r: Result<T, Error>) -> u16 {
    match r {
        Err(Error::Handshake(HandshakeError::UnexpectedStatus { status, .. })) => status,
        Err(e) => panic!("expected a refusal, got {e:?}"),
        Ok(_) => panic!("expected a refusal, got a connection"),
    }
}

/// Serves a chat: text "all:x" goes to everyone, other text to everyone
/// but the sender. Keep the returned task: dropping a smol task cancels it.
fn spawn_chat<R: Rt>(server: Server) -> common::BoxFut<'static, ()> {
    R::spawn(async move {
        let mut tasks = Vec::new();
        loop {
            let (mut ws, _info) = server.accept().await.unwrap();
            let clients = server.clients();
            tasks.push(R::spawn(async move {
                while let Some(Ok(msg)) = ws.recv().await {
                    if let Message::Text(t) = msg {
                        if let Some(rest) = t.strip_prefix("all:") {
                            clients.broadcast(Message::text(rest.to_string()));
                        } else {
                            clients.broadcast_except(ws.client_id(), Message::Text(t));
                        }
                    }
                }
            }));
        }
    })
}

async fn info_tracking_and_broadcast<R: Rt>() {
    let server = Server::bind("127.0.0.1:0", ServerPolicy::new().protocols(["chat"]))
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    // Request info and the client set, with the server's own socket.
    let client = R::spawn(R::connect_with(
        http::Request::get(url(addr, "/room?x=1"))
            .header("x-forwarded-for", "203.0.113.5")
            .header("sec-websocket-protocol", "chat")
            .body(())
            .unwrap(),
    ));
    let (mut sws, info) = server.accept().await.unwrap();
    let (mut cws, _) = client.await.unwrap();
    assert_eq!(info.path(), "/room");
    assert_eq!(info.query(), Some("x=1"));
    assert_eq!(info.protocol(), Some("chat"));
    assert_eq!(info.forwarded_for(), ["203.0.113.5"]);
    assert_eq!(
        info.peer_addr().map(|a| a.ip()),
        Some([127, 0, 0, 1].into())
    );
    let clients = server.clients();
    assert_eq!(clients.len(), 1);
    let handle = clients.get(sws.client_id()).unwrap();
    assert_eq!(handle.info().path(), "/room");
    // Ends: out of the set.
    cws.close(CloseCode::NORMAL, "").await.unwrap();
    let drain_client = R::spawn(async move { while cws.recv().await.is_some() {} });
    while sws.recv().await.is_some() {}
    drain_client.await;
    assert!(clients.is_empty());
    assert_eq!(handle.send(Message::text("late")), Err(QueueError::Closed));

    // Broadcast through a chat server.
    let clients = server.clients();
    let _chat = spawn_chat::<R>(server);
    let mut a = R::connect(url(addr, "/")).await.unwrap();
    let mut b = R::connect(url(addr, "/")).await.unwrap();
    let mut c = R::connect(url(addr, "/")).await.unwrap();
    while clients.len() < 3 {
        yield_now().await;
    }
    a.send(Message::text("from a")).await.unwrap();
    assert_eq!(next_text(&mut b).await, "from a");
    assert_eq!(next_text(&mut c).await, "from a");
    b.send(Message::text("all:everyone")).await.unwrap();
    assert_eq!(next_text(&mut a).await, "everyone");
    assert_eq!(next_text(&mut b).await, "everyone");
    assert_eq!(next_text(&mut c).await, "everyone");
    assert_eq!(clients.broadcast(Message::text("outside")), 3);
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(next_text(ws).await, "outside");
    }
    drop(c);
    while clients.len() > 2 {
        yield_now().await;
    }
}

async fn refusals_and_limits<R: Rt>() {
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
    let server = Server::bind("127.0.0.1:0", policy).await.unwrap();
    let addr = server.local_addr().unwrap();
    let accepted = R::spawn(async move {
        let (mut ws, info) = server.accept().await.unwrap();
        let mut end = None;
        while let Some(m) = ws.recv().await {
            if let Err(e) = m {
                end = Some(e);
            }
        }
        (info.query().map(String::from), end)
    });
    let req = |path: &str, origin: &str| {
        http::Request::get(url(addr, path))
            .header("origin", origin)
            .body(())
            .unwrap()
    };
    assert_eq!(
        status(R::connect_with(req("/x?t=1", "https://good.example")).await),
        404
    );
    assert_eq!(
        status(R::connect_with(req("/ws?t=1", "https://evil.example")).await),
        403
    );
    assert_eq!(
        status(R::connect_with(req("/ws", "https://good.example")).await),
        401
    );
    let (mut ws, _) = R::connect_with(req("/ws?t=1", "https://good.example"))
        .await
        .unwrap();
    ws.send(Message::binary(vec![0u8; 101])).await.unwrap();
    let mut code = None;
    while let Some(m) = ws.recv().await {
        match m {
            Ok(Message::Close(Some(f))) => code = Some(f.code),
            Err(Error::Closed(info)) => code = Some(info.code()),
            _ => {}
        }
    }
    assert_eq!(code, Some(CloseCode::MESSAGE_TOO_BIG));
    let (query, end) = accepted.await;
    assert_eq!(query.as_deref(), Some("t=1"));
    assert!(matches!(end, Some(Error::Protocol(_))), "{end:?}");
}

async fn routed_handle_upgrade<R: Rt>() {
    let (listener, addr) = R::bind().await;
    let timer = R::Timer::default();
    let router = Router::new()
        .route("/foo", Upgrader::new(ServerPolicy::new(), timer))
        .route("/bar", Upgrader::new(ServerPolicy::new(), timer));
    let foo_clients = router.find("/foo").unwrap().clients();
    let _server = R::spawn(async move {
        let mut tasks = Vec::new();
        loop {
            let mut tcp = R::tcp_accept(&listener).await;
            let router = router.clone();
            tasks.push(R::spawn(async move {
                let (req, head) = read_request(&mut tcp, &Config::default(), &timer).await?;
                if !is_upgrade_request(&req) {
                    tcp.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npage",
                    )
                    .await?;
                    tcp.close().await?;
                    return Ok::<_, Error>(());
                }
                let Some(up) = router.find(req.uri().path()) else {
                    return write_reject(&mut tcp, &router.not_found()).await;
                };
                let (mut ws, info) = up.handle_upgrade(tcp, &head, None).await?;
                ws.send(Message::text(format!("hello from {}", info.path())))
                    .await?;
                while let Some(Ok(m)) = ws.recv().await {
                    if m.is_data() {
                        ws.send(m).await?;
                    }
                }
                Ok(())
            }));
        }
    });
    let mut foo_ws = R::connect(url(addr, "/foo")).await.unwrap();
    let mut bar_ws = R::connect(url(addr, "/bar")).await.unwrap();
    assert_eq!(next_text(&mut foo_ws).await, "hello from /foo");
    assert_eq!(next_text(&mut bar_ws).await, "hello from /bar");
    assert_eq!(foo_clients.len(), 1);
    bar_ws.send(Message::text("echo")).await.unwrap();
    assert_eq!(next_text(&mut bar_ws).await, "echo");
    assert_eq!(
        status(R::connect_with(http::Request::get(url(addr, "/baz")).body(()).unwrap()).await),
        404
    );
    let mut tcp = R::tcp_connect(addr).await;
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tcp.read_to_string(&mut page).await.unwrap();
    assert!(page.ends_with("\r\n\r\npage"), "{page}");
}

async fn client_handle_close_and_queue_bound<R: Rt>() {
    let (listener, addr) = R::bind().await;
    let up = Upgrader::new(ServerPolicy::new(), R::Timer::default()).max_queue(10);
    let clients = up.clients();
    let client = R::spawn(R::connect(url(addr, "/")));
    let tcp = R::tcp_accept(&listener).await;
    let (mut sws, _) = up.handle_upgrade(tcp, &[], None).await.unwrap();
    let mut cws = client.await.unwrap();
    let handle = clients.get(sws.client_id()).unwrap();
    handle.send(Message::text("0123456789")).unwrap();
    assert_eq!(handle.send(Message::text("x")), Err(QueueError::Full));
    handle.close(CloseCode::GOING_AWAY, "bye").unwrap();
    let server = R::spawn(async move { while sws.recv().await.is_some() {} });
    assert_eq!(next_text(&mut cws).await, "0123456789");
    let mut close = None;
    while let Some(m) = cws.recv().await {
        if let Ok(Message::Close(f)) = m {
            close = f;
        }
    }
    assert_eq!(close.map(|f| f.code), Some(CloseCode::GOING_AWAY));
    server.await;
    assert!(clients.is_empty());
    // Untracked: nothing in the set.
    let untracked = Upgrader::new(ServerPolicy::new(), R::Timer::default()).track_clients(false);
    assert!(untracked.clients().is_empty());
}

async fn queued_messages_wait_for_room<R: Rt>() {
    let (listener, addr) = R::bind().await;
    let policy = ServerPolicy::new().with_config(Config::default().max_send_buffer(1024));
    let up = Upgrader::new(policy, R::Timer::default());
    let client = R::spawn(R::connect(url(addr, "/")));
    let tcp = R::tcp_accept(&listener).await;
    let (mut sws, _) = up.handle_upgrade(tcp, &[], None).await.unwrap();
    let mut cws = client.await.unwrap();
    let handle = up.clients().get(sws.client_id()).unwrap();
    // More than the send buffer takes at once, queued before `recv` runs.
    for i in 0..50u8 {
        handle.send(Message::binary(vec![i; 800])).unwrap();
    }
    let server = R::spawn(async move { while sws.recv().await.is_some() {} });
    for i in 0..50u8 {
        match cws.recv().await.unwrap().unwrap() {
            Message::Binary(b) => assert_eq!(&b[..], &[i; 800][..]),
            other => panic!("{other:?}"),
        }
    }
    cws.close(CloseCode::NORMAL, "").await.unwrap();
    while cws.recv().await.is_some() {}
    server.await;
}

on_both_runtimes!(
    queued_messages_wait_for_room,
    info_tracking_and_broadcast,
    refusals_and_limits,
    routed_handle_upgrade,
    client_handle_close_and_queue_bound,
);

/// The accept callback picks a subprotocol the client did not offer: a
/// server bug, so the client sees a 500 (not a dropped connection) and
/// `accept_with` returns the usage error.
#[test]
fn unoffered_subprotocol_is_answered_with_500() {
    smol::block_on(async {
        let l = smol::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = smol::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            ws_async_std::smol::accept_with(tcp, Config::default(), |_| {
                Ok(ws_async_std::Accept::new().protocol("mqtt"))
            })
            .await
            .map(|_| ())
        });
        let req = http::Request::get(url(addr, "/"))
            .header("sec-websocket-protocol", "chat")
            .body(())
            .unwrap();
        let r = ws_async_std::smol::connect_with(req, Config::default()).await;
        assert_eq!(status(r), 500);
        assert_eq!(
            server.await,
            Err(Error::Usage(ws_async_std::UsageError::ProtocolNotOffered))
        );
    });
}
