//! `Upgrader::upgrade_hyper` behind a real hyper 1.x server: plain HTTP
//! and WebSocket on one port, refusals as HTTP responses, client tracking.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ws_tokio::server::{is_upgrade_request, ServerPolicy, Upgrader};
use ws_tokio::{http, Message};

const LIMIT: Duration = Duration::from_secs(10);

async fn service(
    upgrader: Upgrader,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !is_upgrade_request(&req) {
        return Ok(Response::new(Full::from("plain http")));
    }
    match upgrader.upgrade_hyper(&mut req, Some(peer)) {
        Ok((resp, pending)) => {
            tokio::spawn(async move {
                let (mut ws, info) = pending.finish().await.expect("upgrade");
                let hello = format!("path={} peer={}", info.path(), info.peer_addr().is_some());
                ws.send(Message::text(hello)).await.unwrap();
                while let Some(Ok(msg)) = ws.recv().await {
                    if msg.is_data() {
                        ws.send(msg).await.unwrap();
                    }
                }
            });
            Ok(resp)
        }
        Err(refusal) => Ok(refusal),
    }
}

async fn start(upgrader: Upgrader) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = listener.accept().await.unwrap();
            let up = upgrader.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| service(up.clone(), peer, req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn raw_request(addr: SocketAddr, req: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tcp.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn hyper_server_upgrades_and_serves_plain_http() {
    tokio::time::timeout(LIMIT, async {
        let upgrader = Upgrader::new(ServerPolicy::new().path("/ws").protocols(["echo"]));
        let addr = start(upgrader.clone()).await;

        let page = raw_request(addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(page.starts_with("HTTP/1.1 200"), "{page}");
        assert!(page.ends_with("plain http"), "{page}");

        let req = http::Request::get(format!("ws://{addr}/ws?a=1"))
            .header("sec-websocket-protocol", "other, echo")
            .body(())
            .unwrap();
        let (mut ws, resp) = ws_tokio::connect_with(req, ws_tokio::Config::default())
            .await
            .unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], "echo");
        let hello = ws.recv().await.unwrap().unwrap();
        assert_eq!(hello, Message::text("path=/ws peer=true"));
        assert_eq!(upgrader.clients().len(), 1);
        ws.send(Message::binary(vec![7u8; 100_000])).await.unwrap();
        assert_eq!(
            ws.recv().await.unwrap().unwrap(),
            Message::binary(vec![7u8; 100_000])
        );
        // Broadcast through the client set reaches the hyper-upgraded socket.
        assert_eq!(upgrader.clients().broadcast(Message::text("all")), 1);
        assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("all"));
        ws.close(ws_tokio::CloseCode::NORMAL, "").await.unwrap();
        while ws.recv().await.is_some() {}
        // The server's loop ends and drops its socket: out of the set.
        while !upgrader.clients().is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn hyper_refusals_are_http_responses() {
    tokio::time::timeout(LIMIT, async {
        let upgrader = Upgrader::new(ServerPolicy::new().path("/ws").verify(|req| {
            if req.headers().contains_key("x-token") {
                Ok(())
            } else {
                Err(ws_tokio::Reject::new(401).body("token please"))
            }
        }));
        let addr = start(upgrader.clone()).await;
        let upgrade = |path: &str, extra: &str| {
            format!(
                "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
            )
        };
        let r = raw_request(addr, &upgrade("/nope", "")).await;
        assert!(r.starts_with("HTTP/1.1 404"), "{r}");
        let r = raw_request(addr, &upgrade("/ws", "")).await;
        assert!(r.starts_with("HTTP/1.1 401"), "{r}");
        assert!(r.ends_with("token please"), "{r}");
        let r = raw_request(
            addr,
            &upgrade("/ws", "x-token: 1\r\n").replace("Version: 13", "Version: 6"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 426"), "{r}");
        assert!(r.to_lowercase().contains("sec-websocket-version: 13, 8"), "{r}");
        let r = raw_request(addr, &upgrade("/ws", "x-token: 1\r\n")).await;
        assert!(r.starts_with("HTTP/1.1 101"), "{r}");
        assert!(r.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{r}");
    })
    .await
    .expect("test timed out");
}
