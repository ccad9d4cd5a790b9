//! Client features (the `client` module, on async-net) against our own
//! server, loopback proxies, a scripted HTTP server, and third-party peers
//! (Python websockets, Node ws). Runs on smol; one test also on async-std.

#![allow(clippy::result_large_err)]

#[path = "../../ws-tokio/tests/client_support/mod.rs"]
mod client_support;

use client_support::{http_proxy, node_ws, python_websockets, scripted, socks5_proxy, Reply};
use futures_io::{AsyncRead, AsyncWrite};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ws_async_std::client::{
    connect_with_options, Backoff, ClientOptions, ClientStream, Connector, Proxy, ProxySetting,
};
use ws_async_std::http::{header, HeaderValue};
use ws_async_std::{
    Accept, CloseCode, Config, DeflateConfig, Error, HandshakeError, Message, WebSocket,
};

/// Runs `f` on smol, failing after 20 s.
fn run<F: std::future::Future<Output = ()>>(f: F) {
    smol::block_on(async {
        smol::future::or(f, async {
            async_io::Timer::after(Duration::from_secs(20)).await;
            panic!("test timed out");
        })
        .await
    })
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S) {
    serve_on(io, false).await
}

/// `on_async_std`: accept with async-std's functions, which shut an
/// `async_std::net::TcpStream`'s write half on close.
async fn serve_on<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: S, on_async_std: bool) {
    let path = Arc::new(Mutex::new(String::new()));
    let p2 = path.clone();
    let config = Config::default().deflate(Some(DeflateConfig::default()));
    let decide = move |req: &ws_async_std::http::Request<()>| {
        *p2.lock().unwrap() = req.uri().to_string();
        let mut a = Accept::new();
        if let Some(p) = req.headers().get("sec-websocket-protocol") {
            if p.to_str().unwrap().split(',').any(|p| p.trim() == "chat") {
                a = a.protocol("chat");
            }
        }
        Ok(a)
    };
    let ws = if on_async_std {
        ws_async_std::async_std::accept_with(io, config, decide).await
    } else {
        ws_async_std::smol::accept_with(io, config, decide).await
    };
    let Ok(mut ws) = ws else {
        return;
    };
    let p = path.lock().unwrap().clone();
    if ws.send(Message::text(format!("path {p}"))).await.is_err() {
        return;
    }
    while let Some(Ok(m)) = ws.recv().await {
        if ws.send(m).await.is_err() {
            return;
        }
    }
}

async fn echo_server() -> std::net::SocketAddr {
    let l = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    smol::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            smol::spawn(serve(tcp)).detach();
        }
    })
    .detach();
    addr
}

async fn exchange(ws: &mut WebSocket<ClientStream>) -> String {
    let greeting = match ws.recv().await.unwrap().unwrap() {
        Message::Text(t) => t.to_string(),
        m => panic!("expected the greeting, got {m:?}"),
    };
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::text("hello"));
    let big = vec![7u8; 100_000];
    ws.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(ws.recv().await.unwrap().unwrap(), Message::binary(big));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    while ws.recv().await.is_some() {}
    greeting
}

#[test]
fn connect_offers_deflate_by_default() {
    run(async {
        let addr = echo_server().await;
        let (ws, resp) = ws_async_std::smol::connect(&format!("ws://{addr}/"))
            .await
            .unwrap();
        assert!(ws.connection().deflate().is_some());
        assert!(resp.headers().contains_key("sec-websocket-extensions"));
        let (mut ws, _) = connect_with_options(&format!("ws://{addr}/a?b=c"), ClientOptions::new())
            .await
            .unwrap();
        assert!(ws.connection().deflate().is_some());
        assert_eq!(exchange(&mut ws).await, "path /a?b=c");
        let (ws, _) =
            connect_with_options(&format!("ws://{addr}/"), ClientOptions::new().deflate(None))
                .await
                .unwrap();
        assert!(ws.connection().deflate().is_none());
    })
}

#[test]
fn on_async_std_too() {
    async_std::task::block_on(async {
        let l = async_std::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        async_std::task::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            serve_on(tcp, true).await;
        });
        let (mut ws, _) = connect_with_options(&format!("ws://{addr}/std"), ClientOptions::new())
            .await
            .unwrap();
        assert_eq!(exchange(&mut ws).await, "path /std");
    })
}

#[test]
fn options_reach_the_server() {
    run(async {
        let (addr, seen) = scripted(|_| Reply::Upgrade);
        let opts = ClientOptions::new()
            .origin("https://app.example")
            .protocols(["chat", "v2"])
            .header(header::COOKIE, HeaderValue::from_static("sid=1"));
        connect_with_options(&format!("ws://u:pw@{addr}/o?x"), opts)
            .await
            .unwrap();
        let s = seen.lock().unwrap()[0].clone();
        assert_eq!(s.path, "/o?x");
        assert_eq!(s.header("origin"), Some("https://app.example"));
        assert_eq!(s.header("sec-websocket-protocol"), Some("chat, v2"));
        assert_eq!(s.header("cookie"), Some("sid=1"));
        assert_eq!(s.header("authorization"), Some("Basic dTpwdw=="));
    })
}

#[test]
fn through_proxies() {
    run(async {
        let server = echo_server().await;
        let url = format!("ws://localhost:{}/via", server.port());
        let (hp, hlog) = http_proxy(Some("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
        let (sp, slog) = socks5_proxy(Some(("user", "pass")));
        for p in [
            Proxy::http("127.0.0.1", hp.port()).with_credentials("aladdin", "opensesame"),
            Proxy::socks5("127.0.0.1", sp.port()).with_credentials("user", "pass"),
        ] {
            let opts = ClientOptions::new().proxy(ProxySetting::Explicit(p));
            let (mut ws, _) = connect_with_options(&url, opts).await.unwrap();
            assert_eq!(exchange(&mut ws).await, "path /via");
        }
        assert_eq!(hlog.tunnels.load(Ordering::SeqCst), 1);
        assert_eq!(
            slog.targets.lock().unwrap()[0],
            format!("domain:localhost:{}", server.port())
        );
        for p in [
            Proxy::http("127.0.0.1", hp.port()),
            Proxy::socks5("127.0.0.1", sp.port()).with_credentials("user", "no"),
        ] {
            let opts = ClientOptions::new().proxy(ProxySetting::Explicit(p));
            let e = connect_with_options(&url, opts).await.unwrap_err();
            assert!(
                matches!(e, Error::Handshake(HandshakeError::Proxy(_))),
                "{e:?}"
            );
        }
    })
}

#[test]
fn redirects() {
    run(async {
        let (b, seen_b) = scripted(|_| Reply::Upgrade);
        let (a, seen_a) = scripted(move |path| match path {
            "/cross" => Reply::Redirect(format!("ws://{b}/landed")),
            "/same" => Reply::Redirect("/ws".into()),
            "/loop" => Reply::Redirect("loop".into()),
            _ => Reply::Upgrade,
        });
        let secret = ClientOptions::new()
            .follow_redirects(true)
            .header(
                header::AUTHORIZATION,
                HeaderValue::from_static("Bearer s3cret"),
            )
            .header(header::COOKIE, HeaderValue::from_static("k=v"));
        connect_with_options(&format!("ws://{a}/same"), secret.clone())
            .await
            .unwrap();
        let s = seen_a.lock().unwrap().clone();
        assert_eq!(s[1].path, "/ws");
        assert_eq!(s[1].header("authorization"), Some("Bearer s3cret"));
        connect_with_options(&format!("ws://{a}/cross"), secret.clone())
            .await
            .unwrap();
        let s = seen_b.lock().unwrap().clone();
        assert_eq!(s[0].path, "/landed");
        assert_eq!(s[0].header("authorization"), None);
        assert_eq!(s[0].header("cookie"), None);
        seen_a.lock().unwrap().clear();
        let e = connect_with_options(&format!("ws://{a}/loop"), secret.max_redirects(1))
            .await
            .unwrap_err();
        assert_eq!(e, Error::Handshake(HandshakeError::TooManyRedirects(1)));
        assert_eq!(seen_a.lock().unwrap().len(), 2);
    })
}

#[test]
fn unexpected_response_and_timeout() {
    run(async {
        let body: Vec<u8> = (0..5000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let b2 = body.clone();
        let (addr, _) = scripted(move |_| Reply::Status(403, b2.clone()));
        match connect_with_options(&format!("ws://{addr}/"), ClientOptions::new())
            .await
            .unwrap_err()
        {
            Error::Handshake(HandshakeError::UnexpectedStatus {
                status, body: got, ..
            }) => {
                assert_eq!(status, 403);
                assert_eq!(got, body);
            }
            e => panic!("{e:?}"),
        }
        let (addr, _) = scripted(|_| Reply::Silence);
        let start = Instant::now();
        let opts = ClientOptions::new().handshake_timeout(Some(Duration::from_millis(300)));
        let e = connect_with_options(&format!("ws://{addr}/"), opts)
            .await
            .unwrap_err();
        assert_eq!(e, Error::Handshake(HandshakeError::Timeout));
        assert!(start.elapsed() < Duration::from_secs(5));
    })
}

#[cfg(unix)]
#[test]
fn unix_socket() {
    run(async {
        let dir = std::env::temp_dir().join(format!("ws-async-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let l = async_net::unix::UnixListener::bind(&path).unwrap();
        smol::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            serve(s).await;
        })
        .detach();
        let url = format!("ws+unix:{}:/unix?q=1", path.display());
        let (mut ws, _) = connect_with_options(&url, ClientOptions::new())
            .await
            .unwrap();
        assert!(matches!(ws.get_ref(), ClientStream::Unix(_)));
        assert_eq!(exchange(&mut ws).await, "path /unix?q=1");
        let _ = std::fs::remove_dir_all(&dir);
    })
}

#[test]
fn reconnect_with_backoff() {
    run(async {
        let l = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let (down_tx, down_rx) = async_channel_pair();
        smol::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            serve(tcp).await;
            drop(l);
            down_tx.send(()).unwrap();
            async_io::Timer::after(Duration::from_millis(400)).await;
            let l = async_net::TcpListener::bind(addr).await.unwrap();
            let (tcp, _) = l.accept().await.unwrap();
            serve(tcp).await;
        })
        .detach();
        let backoff = Backoff::new()
            .initial(Duration::from_millis(50))
            .max(Duration::from_millis(200));
        let mut rc = Connector::new(ClientOptions::new())
            .reconnect(format!("ws://{addr}/again"))
            .backoff(backoff);
        let (mut ws, _) = rc.next().await.unwrap();
        assert_eq!(exchange(&mut ws).await, "path /again");
        while down_rx.try_recv().is_err() {
            async_io::Timer::after(Duration::from_millis(5)).await;
        }
        let start = Instant::now();
        let (mut ws, _) = rc.next().await.unwrap();
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert_eq!(exchange(&mut ws).await, "path /again");
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut rc = Connector::new(ClientOptions::new())
            .reconnect(format!("ws://{closed}/"))
            .backoff(Backoff::new().initial(Duration::from_millis(10)))
            .max_failures(3);
        assert!(matches!(rc.next().await, Err(Error::Io(_))));
    })
}

fn async_channel_pair() -> (std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>) {
    std::sync::mpsc::channel()
}

#[test]
fn python_websockets_peer() {
    let Some(peer) = python_websockets(None) else {
        return;
    };
    run(async {
        let url = format!("ws://127.0.0.1:{}/py", peer.port);
        let (mut ws, resp) = connect_with_options(&url, ClientOptions::new().protocol("chat"))
            .await
            .unwrap();
        assert_eq!(resp.headers()["sec-websocket-protocol"], "chat");
        assert!(ws.connection().deflate().is_some());
        assert_eq!(exchange(&mut ws).await, "path /py");
        let (hp, _) = http_proxy(None);
        let opts = ClientOptions::new()
            .protocol("chat")
            .proxy(ProxySetting::Explicit(Proxy::http("127.0.0.1", hp.port())));
        let (mut ws, _) = connect_with_options(&url, opts).await.unwrap();
        assert_eq!(exchange(&mut ws).await, "path /py");
    })
}

#[test]
fn node_ws_peer() {
    let Some(peer) = node_ws() else { return };
    run(async {
        let url = format!("ws://127.0.0.1:{}/node", peer.port);
        let (mut ws, _) = connect_with_options(&url, ClientOptions::new().protocol("chat"))
            .await
            .unwrap();
        assert!(ws.connection().deflate().is_some());
        assert_eq!(exchange(&mut ws).await, "path /node");
        let (sp, _) = socks5_proxy(None);
        let opts = ClientOptions::new()
            .protocol("chat")
            .proxy(ProxySetting::Explicit(Proxy::socks5(
                "127.0.0.1",
                sp.port(),
            )));
        let (mut ws, _) = connect_with_options(&url, opts).await.unwrap();
        assert_eq!(exchange(&mut ws).await, "path /node");
    })
}

/// wss:// through the TLS hook: directly and through both proxies.
#[test]
fn wss_directly_and_through_proxies() {
    use ws_async_std::tls::{rustls, ClientTls, ServerTls, TlsAcceptor};
    run(async {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = ck.cert.der().clone();
        let key = rustls::pki_types::PrivateKeyDer::try_from(ck.key_pair.serialize_der()).unwrap();
        let acceptor = TlsAcceptor::from(ServerTls::new(vec![cert.clone()], key).build().unwrap());
        let l = async_net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        smol::spawn(async move {
            while let Ok((tcp, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                smol::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls).await;
                    }
                })
                .detach();
            }
        })
        .detach();
        let trust = ClientTls::new()
            .without_webpki_roots()
            .add_root(cert)
            .build()
            .unwrap();
        let url = format!("wss://localhost:{port}/secure");
        let (hp, hlog) = http_proxy(None);
        let (sp, slog) = socks5_proxy(None);
        for proxy in [
            ProxySetting::None,
            ProxySetting::Explicit(Proxy::http("127.0.0.1", hp.port())),
            ProxySetting::Explicit(Proxy::socks5("127.0.0.1", sp.port())),
        ] {
            let connector =
                Connector::new(ClientOptions::new().proxy(proxy)).tls_config(trust.clone());
            let (mut ws, _) = connector.connect(&url).await.unwrap();
            assert!(matches!(ws.get_ref(), ClientStream::Tls(_)));
            assert_eq!(exchange(&mut ws).await, "path /secure");
        }
        assert_eq!(hlog.tunnels.load(Ordering::SeqCst), 1);
        assert_eq!(slog.tunnels.load(Ordering::SeqCst), 1);
        let e = connect_with_options(&url, ClientOptions::new())
            .await
            .unwrap_err();
        assert!(ws_async_std::tls::tls_error(&e).is_some(), "{e:?}");
    })
}
