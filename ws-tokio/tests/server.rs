//! The tokio server: policy, request info, client tracking, broadcast,
//! upgrades of pre-read streams routed by path.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::server::{
    is_upgrade_request, read_request, write_reject, QueueError, Router, Server, ServerPolicy,
    Upgrader,
};
use ws_tokio::{http, CloseCode, Config, Error, Message, Reject, WebSocket};

const LIMIT: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out")
}

async fn connect(addr: SocketAddr, path: &str) -> WebSocket<TcpStream> {
    ws_tokio::connect(&format!("ws://{addr}{path}"))
        .await
        .unwrap()
        .0
}

async fn connect_req(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<WebSocket<TcpStream>, Error> {
    let mut b = http::Request::get(format!("ws://{addr}{path}"));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    ws_tokio::connect_with(b.body(()).unwrap(), Config::default())
        .await
        .map(|(ws, _)| ws)
}

async fn next_text<S>(ws: &mut WebSocket<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        match ws.recv().await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// Runs each accepted connection in a task that echoes into a broadcast
/// to everyone but the sender, prefixed with the sender's id.
fn spawn_chat(server: Server) -> SocketAddr {
    let addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut ws, _info) = server.accept().await.unwrap();
            let clients = server.clients();
            tokio::spawn(async move {
                while let Some(Ok(msg)) = ws.recv().await {
                    if let Message::Text(t) = msg {
                        if let Some(rest) = t.strip_prefix("all:") {
                            clients.broadcast(Message::text(rest.to_string()));
                        } else {
                            clients.broadcast_except(ws.client_id(), Message::Text(t));
                        }
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn request_info_peer_and_forwarded_for() {
    within(async {
        let server = Server::bind("127.0.0.1:0", ServerPolicy::new().protocols(["chat"]))
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let ws = connect_req(
                addr,
                "/room/7?user=ann",
                &[
                    ("x-forwarded-for", "203.0.113.9, 10.1.1.1"),
                    ("sec-websocket-protocol", "chat"),
                ],
            )
            .await
            .unwrap();
            let local = ws.get_ref().local_addr().unwrap();
            (ws, local)
        });
        let (ws, info) = server.accept().await.unwrap();
        let (_cws, client_local) = client.await.unwrap();
        assert_eq!(info.path(), "/room/7");
        assert_eq!(info.query(), Some("user=ann"));
        assert_eq!(info.peer_addr(), Some(client_local));
        assert_eq!(info.forwarded_for(), ["203.0.113.9", "10.1.1.1"]);
        assert_eq!(info.client_ip(2), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(info.client_ip(0), Some(client_local.ip()));
        assert_eq!(info.protocol(), Some("chat"));
        assert_ne!(ws.client_id(), 0);
        let tracked = server.clients().get(ws.client_id()).unwrap();
        assert_eq!(tracked.info().path(), "/room/7");
    })
    .await
}

#[tokio::test]
async fn clients_are_tracked_until_their_connection_ends() {
    within(async {
        let server = Server::bind("127.0.0.1:0", ServerPolicy::new())
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        let clients = server.clients();
        let mut conns = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..3 {
            let c = tokio::spawn(async move { connect(addr, "/").await });
            let (ws, _) = server.accept().await.unwrap();
            conns.push(c.await.unwrap());
            servers.push(ws);
        }
        assert_eq!(clients.len(), 3);
        let mut ids: Vec<u64> = clients.iter().map(|c| c.id()).collect();
        ids.sort();
        let mut expect: Vec<u64> = servers.iter().map(|w| w.client_id()).collect();
        expect.sort();
        assert_eq!(ids, expect);

        // Ended by the peer: out once the server's recv reports the end.
        let mut c0 = conns.remove(0);
        c0.close(CloseCode::NORMAL, "bye").await.unwrap();
        let mut s0 = servers.remove(0);
        let gone = s0.client_id();
        let handle = clients.get(gone).unwrap();
        let (first, ()) = tokio::join!(s0.recv(), async { while c0.recv().await.is_some() {} });
        assert!(matches!(first, Some(Ok(Message::Close(_)))), "{first:?}");
        assert_eq!(clients.len(), 2);
        assert!(clients.get(gone).is_none());
        assert!(handle.is_closed());
        assert_eq!(handle.send(Message::text("late")), Err(QueueError::Closed));
        assert!(s0.recv().await.is_none());

        // Dropped by the server: out at once.
        drop(servers.remove(0));
        assert_eq!(clients.len(), 1);

        // Untracked upgrader: nothing in the set.
        let untracked = Upgrader::new(ServerPolicy::new()).track_clients(false);
        assert!(untracked.clients().is_empty());
    })
    .await
}

#[tokio::test]
async fn broadcast_to_all_and_to_all_but_the_sender() {
    within(async {
        let server = Server::bind("127.0.0.1:0", ServerPolicy::new())
            .await
            .unwrap();
        let clients = server.clients();
        let addr = spawn_chat(server);
        let mut a = connect(addr, "/").await;
        let mut b = connect(addr, "/").await;
        let mut c = connect(addr, "/").await;
        while clients.len() < 3 {
            tokio::task::yield_now().await;
        }
        a.send(Message::text("from a")).await.unwrap();
        assert_eq!(next_text(&mut b).await, "from a");
        assert_eq!(next_text(&mut c).await, "from a");
        b.send(Message::text("all:everyone")).await.unwrap();
        for ws in [&mut a, &mut b, &mut c] {
            assert_eq!(next_text(ws).await, "everyone");
        }
        // `a` got nothing of its own: the next thing it sees is from c.
        c.send(Message::text("from c")).await.unwrap();
        assert_eq!(next_text(&mut a).await, "from c");
        assert_eq!(next_text(&mut b).await, "from c");
        // From outside any connection task, e.g. a timer.
        assert_eq!(clients.broadcast(Message::binary(vec![1, 2, 3])), 3);
        for ws in [&mut a, &mut b, &mut c] {
            loop {
                match ws.recv().await.unwrap().unwrap() {
                    Message::Binary(bin) => {
                        assert_eq!(&bin[..], [1, 2, 3]);
                        break;
                    }
                    other => assert!(!other.is_data(), "{other:?}"),
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn client_handle_close_and_queue_bound() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server =
            Server::from_listener(listener, Upgrader::new(ServerPolicy::new()).max_queue(10));
        let addr = server.local_addr().unwrap();
        let c = tokio::spawn(async move { connect(addr, "/").await });
        let (mut sws, _) = server.accept().await.unwrap();
        let mut cws = c.await.unwrap();
        let handle = server.clients().get(sws.client_id()).unwrap();
        // Nobody drains the queue while the server task is not in recv.
        handle.send(Message::text("0123456789")).unwrap();
        assert_eq!(handle.send(Message::text("x")), Err(QueueError::Full));
        handle.close(CloseCode::GOING_AWAY, "going away").unwrap();
        let server_task = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(m) = sws.recv().await {
                got.push(m);
            }
            got
        });
        assert_eq!(next_text(&mut cws).await, "0123456789");
        let mut close = None;
        while let Some(m) = cws.recv().await {
            if let Ok(Message::Close(f)) = m {
                close = f;
            }
        }
        let f = close.expect("close frame");
        assert_eq!(f.code, CloseCode::GOING_AWAY);
        assert_eq!(f.reason, "going away");
        let got = server_task.await.unwrap();
        assert!(matches!(got.last(), Some(Ok(Message::Close(_)))), "{got:?}");
        assert!(server.clients().is_empty());
        assert!(handle.send("x").is_err());
    })
    .await
}

#[tokio::test]
async fn refusals_are_answered_and_skipped() {
    within(async {
        let policy = ServerPolicy::new()
            .path("/ws")
            .allow_origin("https://good.example")
            .verify(|req| {
                if req.uri().query() == Some("token=1") {
                    Ok(())
                } else {
                    Err(Reject::new(401).header(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Token"),
                    ))
                }
            })
            .max_payload(100);
        let server = Server::bind("127.0.0.1:0", policy).await.unwrap();
        let addr = server.local_addr().unwrap();
        let accepted = tokio::spawn(async move {
            let (mut ws, info) = server.accept().await.unwrap();
            // The message-size limit comes from the policy's config.
            let end = loop {
                match ws.recv().await {
                    Some(Err(e)) => break e,
                    Some(Ok(_)) => continue,
                    None => panic!("no error"),
                }
            };
            (info.query().map(String::from), end, server)
        });
        let status = |r: Result<WebSocket<TcpStream>, Error>| match r {
            Err(Error::Handshake(ws_tokio::HandshakeError::UnexpectedStatus {
                status,
                headers,
                ..
            })) => (status, headers),
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        };
        let (s, _) = status(connect_req(addr, "/other?token=1", &[]).await);
        assert_eq!(s, 404);
        let (s, _) =
            status(connect_req(addr, "/ws?token=1", &[("origin", "https://evil.example")]).await);
        assert_eq!(s, 403);
        let (s, h) = status(connect_req(addr, "/ws", &[]).await);
        assert_eq!(s, 401);
        assert!(h
            .iter()
            .any(|(k, v)| k == "www-authenticate" && v == b"Token"));
        // A request that is not a WebSocket upgrade at all.
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = String::new();
        tcp.read_to_string(&mut buf).await.unwrap();
        assert!(buf.starts_with("HTTP/1.1 400"), "{buf}");

        let mut ws = connect_req(addr, "/ws?token=1", &[("origin", "https://good.example")])
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
        let (query, end, _server) = accepted.await.unwrap();
        assert_eq!(query.as_deref(), Some("token=1"));
        assert!(
            matches!(
                end,
                Error::Protocol(ws_tokio::ProtocolError::FrameTooLarge)
                    | Error::Protocol(ws_tokio::ProtocolError::MessageTooLarge)
            ),
            "{end:?}"
        );
    })
    .await
}

#[tokio::test]
async fn a_slow_handshake_does_not_hold_up_others_and_times_out() {
    within(async {
        let policy = ServerPolicy::new()
            .with_config(Config::default().handshake_timeout(Some(Duration::from_millis(300))));
        let server = Server::bind("127.0.0.1:0", policy).await.unwrap();
        let addr = server.local_addr().unwrap();
        // Connects and sends half a request, then nothing.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        let fast = tokio::spawn(async move { connect(addr, "/fast").await });
        let (_ws, info) = server.accept().await.unwrap();
        assert_eq!(info.path(), "/fast");
        let _fast = fast.await.unwrap();
        // The slow one is dropped when its deadline passes (while accept
        // is polled).
        let accept = tokio::spawn(async move {
            let _ = server.accept().await;
        });
        let mut buf = [0u8; 64];
        let n = slow.read(&mut buf).await.unwrap_or(0);
        assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
        accept.abort();
    })
    .await
}

/// `ws`'s "multiple servers sharing a single HTTP server": one port, a
/// page at `/`, two WebSocket endpoints routed by path, 404 elsewhere.
#[tokio::test]
async fn several_endpoints_on_one_port_with_handle_upgrade() {
    within(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route("/foo", Upgrader::new(ServerPolicy::new()))
            .route("/bar", Upgrader::new(ServerPolicy::new()));
        let foo_clients = router.find("/foo").unwrap().clients();
        let bar_clients = router.find("/bar").unwrap().clients();
        tokio::spawn(async move {
            loop {
                let (mut tcp, peer) = listener.accept().await.unwrap();
                let router = router.clone();
                tokio::spawn(async move {
                    let (req, head) = read_request(&mut tcp, &Config::default()).await?;
                    if !is_upgrade_request(&req) {
                        tcp.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npage")
                            .await?;
                        return Ok::<_, Error>(());
                    }
                    let Some(up) = router.find(req.uri().path()) else {
                        return write_reject(&mut tcp, &router.not_found()).await;
                    };
                    let (mut ws, info) = up.handle_upgrade(tcp, &head, Some(peer)).await?;
                    ws.send(Message::text(format!("hello from {}", info.path())))
                        .await?;
                    while let Some(Ok(m)) = ws.recv().await {
                        if m.is_data() {
                            ws.send(m).await?;
                        }
                    }
                    Ok(())
                });
            }
        });
        let mut foo_ws = connect(addr, "/foo").await;
        let mut bar_ws = connect(addr, "/bar?x").await;
        assert_eq!(next_text(&mut foo_ws).await, "hello from /foo");
        assert_eq!(next_text(&mut bar_ws).await, "hello from /bar");
        assert_eq!(foo_clients.len(), 1);
        assert_eq!(bar_clients.len(), 1);
        foo_ws.send(Message::text("echo")).await.unwrap();
        assert_eq!(next_text(&mut foo_ws).await, "echo");
        match connect_req(addr, "/baz", &[]).await {
            Err(Error::Handshake(ws_tokio::HandshakeError::UnexpectedStatus {
                status, ..
            })) => assert_eq!(status, 404),
            other => panic!("{:?}", other.map(|_| ())),
        }
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut page = String::new();
        tcp.read_to_string(&mut page).await.unwrap();
        assert!(page.ends_with("\r\n\r\npage"), "{page}");
        // The head may arrive in pieces and carry the first frame with it:
        // `handle_upgrade` gets whatever was read, however much it is.
        let raw = b"GET /foo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let (a, b) = raw.split_at(20);
        tcp.write_all(a).await.unwrap();
        tcp.flush().await.unwrap();
        tokio::task::yield_now().await;
        // Rest of the head plus a masked text frame "hi".
        let mut rest = b.to_vec();
        rest.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
        tcp.write_all(&rest).await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        // The 101, the hello, then the echo of "hi".
        while !got.ends_with(&[0x81, 2, b'h', b'i']) {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&got));
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(b"HTTP/1.1 101"));
    })
    .await
}

/// With deflate in the policy, a broadcast is compressed once and every
/// client (with or without deflate) reads it back intact.
#[tokio::test]
async fn broadcast_with_deflate_reaches_every_kind_of_client() {
    within(async {
        let server = Server::bind(
            "127.0.0.1:0",
            ServerPolicy::new().deflate(ws_tokio::DeflateConfig::default()),
        )
        .await
        .unwrap();
        let clients = server.clients();
        let addr = spawn_chat(server);
        let req = |deflate: bool| {
            let cfg = if deflate {
                Config::default().deflate(Some(ws_tokio::DeflateConfig::default()))
            } else {
                Config::default()
            };
            (
                http::Request::get(format!("ws://{addr}/"))
                    .body(())
                    .unwrap(),
                cfg,
            )
        };
        let (r, c) = req(true);
        let (mut a, resp) = ws_tokio::connect_with(r, c).await.unwrap();
        assert!(resp.headers().contains_key("sec-websocket-extensions"));
        let (r, c) = req(false);
        let (mut b, resp) = ws_tokio::connect_with(r, c).await.unwrap();
        assert!(!resp.headers().contains_key("sec-websocket-extensions"));
        while clients.len() < 2 {
            tokio::task::yield_now().await;
        }
        let text = "compress me ".repeat(500);
        for round in 0..3 {
            let msg = format!("{round}{text}");
            assert_eq!(clients.broadcast(Message::text(msg.clone())), 2);
            assert_eq!(next_text(&mut a).await, msg);
            assert_eq!(next_text(&mut b).await, msg);
        }
        // Per-connection compression goes on working after a broadcast.
        a.send(Message::text(format!("all:{text}"))).await.unwrap();
        assert_eq!(next_text(&mut a).await, text);
        assert_eq!(next_text(&mut b).await, text);
    })
    .await
}

/// Queued messages that wait for room in a small send buffer go out as
/// soon as a flush makes room, without any other event.
#[tokio::test]
async fn queued_messages_wait_for_room_in_the_send_buffer() {
    within(async {
        let policy = ServerPolicy::new().with_config(Config::default().max_send_buffer(1024));
        let server = Server::bind("127.0.0.1:0", policy).await.unwrap();
        let addr = server.local_addr().unwrap();
        let c = tokio::spawn(async move { connect(addr, "/").await });
        let (mut sws, _) = server.accept().await.unwrap();
        let mut cws = c.await.unwrap();
        let handle = server.clients().get(sws.client_id()).unwrap();
        // Queued before the connection's task runs: more than fits at once.
        for i in 0..50u8 {
            handle.send(Message::binary(vec![i; 800])).unwrap();
        }
        let server_task = tokio::spawn(async move { while sws.recv().await.is_some() {} });
        for i in 0..50u8 {
            match cws.recv().await.unwrap().unwrap() {
                Message::Binary(b) => assert_eq!(&b[..], &[i; 800][..]),
                other => panic!("{other:?}"),
            }
        }
        cws.close(CloseCode::NORMAL, "").await.unwrap();
        while cws.recv().await.is_some() {}
        server_task.await.unwrap();
    })
    .await
}
